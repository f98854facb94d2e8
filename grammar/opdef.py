"""The op record and the helpers every op declaration draws on.

An :class:`Op` holds everything about one operation: the dtypes and ranks of its primary
operand, the strategy for its other operands and static parameters (``signature``), its
shape and dtype rule (``rule``), the input domain of each operand, whether reverse- and
forward-mode differentiation work through it, and how it renders (``render``).
Strategies, rendering and tests are all derived from these records.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

import libcst as cst
from hypothesis import strategies as st

from grammar.syntax import assign
from grammar.types import INTEGERS, WIDE, Limits, Lit, TensorType

Draw = Callable[[st.SearchStrategy[Any]], Any]


class Domain(Enum):
    """Where an operand's values must lie; the renderer guards array operands to match."""

    ANY = "any"
    POSITIVE = "positive"          # >= 1: |x| + 1
    NONZERO = "nonzero"            # the same guard
    UNIT = "unit"                  # [-0.9, 0.9]: clipped
    ABOVE_ONE = "above_one"        # >= 1.5, for arccosh and zeta: |x| + 1.5
    PROBABILITY = "probability"    # (0, 1), for logit and ndtri: sigmoid(x)
    WELL_CONDITIONED = "well_conditioned"  # a square matrix, strictly diagonally dominant
    SPD = "spd"                    # a symmetric, strictly diagonally dominant matrix


@dataclass(frozen=True)
class Env:
    """What a signature strategy may depend on besides its primary operand."""

    limits: Limits
    dtypes: tuple[str, ...]
    hints: frozenset[str] = frozenset()
    reverse: bool = False          # inside a function differentiated in reverse mode
    forward: bool = False          # inside a function differentiated in forward mode
    known_failures: bool = True    # parameters that JAX cannot differentiate may be drawn


@dataclass(frozen=True)
class RegionSpec:
    """A nested function an op calls: its parameter types and what it must return.

    ``results`` holds, per result, an exact type, ``None`` (any value), or ``"float"``
    (any floating value) / ``"float_scalar"`` (closed with a ``jnp.sum`` if needed).
    ``index_params`` leading parameters are loop counters, never returned.
    """

    params: tuple[TensorType, ...]
    results: tuple[TensorType | str | None, ...]
    index_params: int = 0
    reverse_diff: bool = False     # the op differentiates the body in reverse mode (grad)
    forward_diff: bool = False     # ... in forward mode (jvp, jacfwd)
    max_result_elements: int = 4096
    forced: tuple[str, ...] = ()
    closed: bool = False  # the body sees only its parameters: no outer value, no new parameter
    excluded: frozenset[str] = frozenset()  # ops the body (and what it nests) never holds


@dataclass(frozen=True)
class Sig:
    """One draw of an op's signature: every operand type (primary first), params, regions."""

    inputs: tuple[TensorType | Lit, ...]
    params: Mapping[str, Any] = field(default_factory=dict)
    regions: tuple[RegionSpec, ...] = ()


@dataclass(frozen=True)
class RegionCode:
    """A rendered region, for the op template to place: ``def name(params): body; return``."""

    name: str
    params: tuple[str, ...]
    body: tuple[cst.BaseStatement, ...]
    results: tuple[cst.BaseExpression, ...]


Signature = Callable[[Draw, TensorType, Env], Sig]
Rule = Callable[[Sequence[TensorType | Lit], Mapping[str, Any], Sequence[Sequence[TensorType]]],
                tuple[TensorType, ...]]
Render = Callable[[Sequence[str], Sequence[cst.BaseExpression], Mapping[str, Any],
                   Sequence[RegionCode]], list[cst.BaseStatement]]


@dataclass(frozen=True)
class Op:
    """Everything about one op, in one record."""

    name: str
    family: str
    categories: tuple[str, ...]
    dtypes: frozenset[str]
    ranks: tuple[int, int]
    signature: Signature
    rule: Rule
    render: Render
    calls: tuple[str, ...]
    domain: tuple[Domain, ...] = ()
    differentiable: bool = True    # reverse mode (jax.grad) works through it
    forward: bool = True           # forward mode (jax.jvp) works through it
    batchable: bool = True         # jax.vmap over a symbolic batch size works through it
    known_failure: str | Callable[[Mapping[str, Any]], str | None] | None = None
    when: Callable[[TensorType], bool] | None = None
    example: Callable[[Draw, Env], TensorType] | None = None
    values: tuple[str, ...] = ()   # dotted JAX names the template passes as values
    imports: tuple[str, ...] = ()  # import lines the template needs beyond every module's

    def accepts(self, t: TensorType) -> bool:
        """Whether ``t`` can be this op's primary operand."""
        return (t.dtype in self.dtypes and self.ranks[0] <= t.rank <= self.ranks[1]
                and (self.when is None or self.when(t)))

    def fits(self, reverse: bool, forward: bool) -> bool:
        """Whether the op may stand in a body differentiated in these modes."""
        return (self.differentiable or not reverse) and (self.forward or not forward)

    def known_failure_of(self, params: Mapping[str, Any]) -> str | None:
        """The known JAX limitation this application of the op runs into, if any."""
        if callable(self.known_failure):
            return self.known_failure(params)
        return self.known_failure

    def domain_of(self, index: int) -> Domain:
        return self.domain[index] if index < len(self.domain) else Domain.ANY

    @property
    def has_regions(self) -> bool:
        return self.family in ("control", "transform", "pytree")


def recording(signature: Signature, *fields: str) -> Signature:
    """``signature``, with the primary operand's ``fields`` (``"dtype"``, ``"shape"``) copied
    into the params, for templates that spell them out."""
    def wrapped(draw: Draw, x: TensorType, env: Env) -> Sig:
        sig = signature(draw, x, env)
        return Sig(sig.inputs, {**sig.params, **{f: getattr(x, f) for f in fields}},
                   sig.regions)
    return wrapped


def expression(build: Callable[..., cst.BaseExpression]) -> Render:
    """A render for ops that are one expression: ``build(args, params, regions)``."""

    def render(out: Sequence[str], args: Sequence[cst.BaseExpression],
               params: Mapping[str, Any], regions: Sequence[RegionCode]) -> list:
        return [assign(out, build(args, params, regions))]

    return render


# -- small draws, arranged to shrink toward simpler values ------------------------------

def choice(draw: Draw, items: Sequence[Any]) -> Any:
    """One of ``items``; shrinks toward the first."""
    return items[draw(st.integers(0, len(items) - 1))] if len(items) > 1 else items[0]


def integer(draw: Draw, lo: int, hi: int) -> int:
    return lo if hi <= lo else draw(st.integers(lo, hi))


def flag(draw: Draw) -> bool:
    return draw(st.booleans())


def dims(draw: Draw, rank: int, limits: Limits, budget: int | None = None) -> tuple[int, ...]:
    """A shape of ``rank`` dims in 1..max_dim whose size stays within ``budget`` elements."""
    budget = limits.max_elements if budget is None else budget
    shape = []
    for _ in range(rank):
        d = integer(draw, 1, max(1, min(limits.max_dim, budget)))
        budget //= d
        shape.append(d)
    return tuple(shape)


def float_dtype(env: Env) -> str:
    """The float dtype an op's ``example`` takes: ``float64`` in a 64-bit program
    (``grammar.x64``), else ``float32``."""
    return "float64" if "float64" in env.dtypes else "float32"


def tensor(draw: Draw, env: Env, dtypes: Sequence[str] | frozenset[str],
           min_rank: int = 0, max_rank: int = 4) -> TensorType:
    """A fresh tensor type among ``dtypes`` (kept to the env's dtypes where they overlap)."""
    allowed = ([d for d in env.dtypes if d in dtypes] or sorted(d for d in dtypes if d not in WIDE)
               or sorted(dtypes))  # a 64-bit dtype only in a 64-bit program
    rank = integer(draw, min_rank, min(max_rank, env.limits.max_rank))
    return TensorType(dims(draw, rank, env.limits), choice(draw, allowed))


def axis(draw: Draw, rank: int) -> int:
    """An axis of a rank-``rank`` array, sometimes written negative."""
    return integer(draw, -rank, rank - 1)


def norm_axis(a: int, rank: int) -> int:
    return a + rank if a < 0 else a


def permutation(draw: Draw, n: int) -> tuple[int, ...]:
    """A permutation of range(n) by a Fisher-Yates walk; shrinks toward the identity."""
    items = list(range(n))
    for i in range(n - 1):
        j = integer(draw, i, n - 1)
        items[i], items[j] = items[j], items[i]
    return tuple(items)


def literal(draw: Draw, dtype: str, nonzero: bool = False, positive: bool = False) -> Lit:
    """A readable Python scalar literal for an array of ``dtype``."""
    if dtype == "bool":
        return Lit(flag(draw), dtype)
    if dtype in INTEGERS:
        values = [2, 1, 3, -1, 4, -2] if (nonzero or positive) else [2, 1, 0, 3, -1, 4]
        values = [v for v in values if v > 0] if positive else values
        return Lit(choice(draw, values), dtype)
    values = [2.0, 0.5, 1.0, -1.0, 3.0, 0.1, -0.5, 1e-3]
    values = [v for v in values if v > 0] if positive else values
    return Lit(choice(draw, values), dtype)


def same(inputs: Sequence[TensorType | Lit], params: Mapping[str, Any],
         regions: Sequence[Sequence[TensorType]]) -> tuple[TensorType, ...]:
    """The rule of type-preserving ops: the output has the primary operand's type."""
    first = inputs[0]
    assert isinstance(first, TensorType)
    return (first,)
