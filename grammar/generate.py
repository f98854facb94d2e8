"""Building one program from Hypothesis draws, valid by construction.

Every choice is a draw, so each program replays from its choice sequence and shrinks.
Nothing is filtered: an op is only picked when some value can feed it, or a fresh parameter
of a type it accepts is made for it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import lru_cache

from hypothesis import strategies as st

from grammar.layout import draw_batch, draw_returns, draw_signature, draw_style
from grammar.opdef import Draw, Env, Op, RegionSpec, choice, flag, integer, tensor
from grammar.ops import FAMILIES, OPS
from grammar.program import Apply, Const, Operand, Program, Region, Value, reads
from grammar.types import (
    COMPLEX,
    LARGE_ELEMENTS,
    LARGE_LIMITS,
    LARGE_MIN_ELEMENTS,
    WIDE,
    X64_PARAM_DTYPES,
    Limits,
    Lit,
    TensorType,
)
from grammar.x64 import X64_EXCLUDED

_INDEX = {name: i for i, name in enumerate(OPS)}
_OPS = tuple(OPS.values())
Diff = tuple[bool, bool]
"""The modes a body is differentiated in: (reverse, forward)."""
_DIFFS: tuple[Diff, ...] = ((False, False), (True, False), (False, True), (True, True))
_BRANCH_OPS = tuple(i for i, op in enumerate(_OPS) if "branch" in op.categories)
_PLAIN = {diff: frozenset(i for i, op in enumerate(_OPS) if not op.has_regions and op.fits(*diff))
          for diff in _DIFFS}
"""Ops without regions, by the modes they must be differentiable in."""


@dataclass(frozen=True)
class Config:
    """Validated options of :func:`grammar.programs` (hashable: strategies are cached by it)."""

    ops: tuple[str, ...]
    min_statements: int
    max_statements: int
    max_depth: int
    max_params: int
    dtypes: tuple[str, ...]
    limits: Limits
    forced: tuple[tuple[str, frozenset[str]], ...] = ()
    vector: bool = False
    swarm: bool = True
    known_failures: bool = True
    symbolic: bool = False  # every program is batched (category symbolic_shape)
    styles: tuple[str, ...] = ("ssa", "inlined", "methods", "named", "idiomatic")
    weights: tuple[tuple[str, int], ...] = ()  # op -> how many times as often (default 1)
    large: int = 0  # one program in this many has large shapes (LARGE_LIMITS); 0: none
    x64: int = 0  # one program in this many is a 64-bit one (grammar.x64); 0: none
    entry: str = "f"


@lru_cache(maxsize=1024)
def _accepting(t: TensorType) -> frozenset[int]:
    """Indices of the ops that accept ``t`` as their primary operand."""
    return frozenset(i for i, op in enumerate(_OPS) if op.accepts(t))


class Builder:
    """The mutable state of one program's construction."""

    def __init__(self, draw: Draw, cfg: Config, enabled: frozenset[int]):
        self.draw, self.cfg = draw, cfg
        self.env = Env(cfg.limits, cfg.dtypes)
        self.params: list[Value] = []
        self.counter = 0
        self.expected: set[str] = set()
        self.budget = 0
        self.reserved = 0
        self.closed = 0  # depth of closed regions being built
        self.branches = 0  # depth of branch regions (cond, switch) being built
        self.excluded: frozenset[int] = frozenset()  # ops the regions being built refuse
        top = sorted(enabled)
        weight = {_INDEX[name]: w for name, w in cfg.weights}
        self.enabled = [i for i in top for _ in range(weight.get(i, 1))]
        self.menus = {
            (region_ok, diff): [i for i in top
                                if (region_ok or not _OPS[i].has_regions) and _OPS[i].fits(*diff)]
            for region_ok in (True, False) for diff in _DIFFS}

    def recent(self, values: list[Value]) -> Value:
        """One of ``values`` (newest first), usually one of the newest three."""
        return choice(self.draw, values if flag(self.draw) else values[:3])

    def fresh(self, prefix: str = "t") -> str:
        self.counter += 1
        return f"{prefix}{self.counter}"

    def new_param(self, t: TensorType) -> Value:
        value = Value(f"x{len(self.params)}", t)
        self.params.append(value)
        return value

    @property
    def can_add_param(self) -> bool:
        """Whether a statement may take a new program parameter: not inside a closed region
        (a custom rule's body must not close over the program's values)."""
        return not self.closed and len(self.params) < self.cfg.max_params

    def pick_op(self, scope: list[Value], depth: int, diff: Diff) -> Op:
        """A drawn op for the next statement.  The draw indexes one fixed list of the enabled
        ops; an op that does not fit here gives way to the next one that does, so a choice
        means the same op wherever it is allowed (which helps the shrinker move statements)."""
        index = choice(self.draw, self.enabled)
        allowed = set(self.menu(depth, diff)) - self.excluded
        order = self.enabled
        if not allowed:  # every enabled op is excluded here: any other plain op will do
            allowed = set(_PLAIN[diff]) - self.excluded
            order = sorted(allowed)
        if not self.can_add_param:
            usable = frozenset().union(*(_accepting(v.type) for v in scope))
            if self.closed and not allowed & usable:
                # A closed body cannot take a parameter: any op outside the drawn families
                # that fits one of its values (without a region, differentiable) will do.
                plain = (usable & _PLAIN[diff]) - self.excluded
                allowed, order = set(plain), sorted(plain)
            else:
                allowed = allowed & usable or allowed
        if self.branches:  # now and then a branch in a branch (category nested_branch)
            nested = [i for i in _BRANCH_OPS if i in allowed]
            if nested and integer(self.draw, 0, 7) == 7:
                return _OPS[choice(self.draw, nested)]
        position = order.index(index) if index in order else 0
        for i in order[position:] + order[:position]:
            if i in allowed:
                return _OPS[i]
        raise AssertionError("no op fits: the menus were validated non-empty")

    def menu(self, depth: int, diff: Diff) -> list[int]:
        """The ops a statement at ``depth`` may use: ops with regions only while depth is
        left, and preferably only while the budget has room for their bodies."""
        deeper = depth < self.cfg.max_depth
        roomy = deeper and self.budget - self.reserved >= 1
        return self.menus[(roomy, diff)] or self.menus[(deeper, diff)]

    def primary(self, op: Op, scope: list[Value]) -> Value:
        candidates = [v for v in reversed(scope) if op.accepts(v.type)]
        if candidates:
            return self.recent(candidates)
        t = op.example(self.draw, self.env) if op.example else tensor(
            self.draw, self.env, op.dtypes, *op.ranks)
        return self.new_param(t)

    def resolve(self, t: TensorType | Lit, scope: list[Value]) -> Operand:
        """An operand of exactly type ``t``: a value in scope, a new parameter, or ones."""
        if isinstance(t, Lit):
            return t
        candidates = [v for v in reversed(scope) if v.type == t]
        if candidates and (not self.can_add_param or flag(self.draw)):
            return self.recent(candidates)
        if self.can_add_param:
            return self.new_param(t)
        return Const(t)

    def statement(self, scope: list[Value], depth: int, diff: Diff,
                  forced: tuple[str, frozenset[str]] | None = None) -> Apply:
        """One statement, drawn as a span of its own: the shrinker can delete it, or replace
        it with a statement nested inside it."""
        return self.draw(_STATEMENT(self, scope, depth, diff, forced))

    def _statement(self, scope: list[Value], depth: int, diff: Diff,
                   forced: tuple[str, frozenset[str]] | None) -> Apply:
        op = OPS[forced[0]] if forced else self.pick_op(scope, depth, diff)
        env = Env(self.cfg.limits, self.cfg.dtypes, forced[1] if forced else frozenset(),
                  *diff, self.cfg.known_failures)
        x = self.primary(op, scope)
        sig = op.signature(self.draw, x.type, env)
        inputs = (x, *(self.resolve(t, scope) for t in sig.inputs[1:]))
        branch = "branch" in op.categories
        self.branches += branch
        regions = tuple(self.region(spec, scope, depth + 1,
                                    (diff[0] or spec.reverse_diff, diff[1] or spec.forward_diff))
                        for spec in sig.regions)
        self.branches -= branch
        types = op.rule(sig.inputs, sig.params, [[v.type for v in r.results] for r in regions])
        if known := op.known_failure_of(sig.params):
            self.expected.add(known)
        return Apply(op.name, inputs, sig.params, tuple(Value(self.fresh(), t) for t in types),
                     regions)

    def block(self, scope: list[Value], forced: list[tuple[str, frozenset[str]]]) -> list[Apply]:
        """The top-level body: statements while the budget lasts (nested statements spend it
        too) and a drawn "one more" says so, the ``forced`` ops among them."""
        body: list[Apply] = []
        scope = list(scope)
        self.budget, self.reserved = self.cfg.max_statements, len(forced)
        while True:
            self.budget -= 1
            stmt, more = self.draw(_ITERATION(self, scope, forced))
            body.append(stmt)
            scope.extend(stmt.outputs)
            if not forced and (self.budget <= 0 or (
                    len(body) >= self.cfg.min_statements and not more)):
                return body

    def _iteration(self, scope: list[Value],
                   forced: list[tuple[str, frozenset[str]]]) -> tuple[Apply, bool]:
        """One top-level statement and the "one more?" draw after it, in one span: deleting
        the span deletes both, so the statements after it keep their meaning."""
        # Shrinks toward taking a forced op at once, so minimal programs stay short.
        take = forced and (self.budget < len(forced) or not flag(self.draw))
        self.reserved = len(forced) - (1 if take else 0)
        stmt = self._statement(scope, 0, (False, False), forced.pop(0) if take else None)
        return stmt, integer(self.draw, 0, 7) > 0

    def region(self, spec: RegionSpec, scope: list[Value], depth: int, diff: Diff) -> Region:
        name = self.fresh(_REGION_PREFIX.get(len(spec.params), "fn"))
        params = [Value(self.fresh("c" if i >= spec.index_params else "i"), t)
                  for i, t in enumerate(spec.params)]
        inner = ([] if spec.closed else list(scope)) + params
        body: list[Apply] = []
        least = 1 if self.menu(depth, diff) else 0
        count = integer(self.draw, least, least and max(1, min(4, self.budget - self.reserved)))
        self.budget -= count
        self.closed += spec.closed
        outer_excluded = self.excluded
        self.excluded = outer_excluded | {_INDEX[n] for n in spec.excluded}
        for k in range(count):
            force = (spec.forced[0], frozenset()) if k == 0 and spec.forced else None
            stmt = self.statement(inner, depth, diff, force)
            body.append(stmt)
            inner.extend(stmt.outputs)
        self.closed -= spec.closed
        self.excluded = outer_excluded
        local = params[spec.index_params:] + [v for s in body for v in s.outputs]
        results = tuple(self.result(want, local, body, spec) for want in spec.results)
        return Region(name, tuple(params), tuple(body), results)

    def result(self, want, local: list[Value], body: list[Apply], spec: RegionSpec) -> Value:
        """A region result meeting ``want``; a float scalar is closed with ``jnp.sum``, and
        so is any result when every value is too large for ``spec.max_result_elements`` (a
        value over the element budget, as a ravelled pytree can be, is scanned over)."""
        if isinstance(want, TensorType):
            return self.recent([v for v in reversed(local) if v.type == want])
        floats = [v for v in reversed(local) if v.type.is_float]
        if want == "float_scalar":
            fits = [v for v in floats if v.type.rank == 0]
            if fits and not flag(self.draw):
                return self.recent(fits)
            return self.total(self.recent(floats), body)
        pool = list(reversed(local)) if want is None else floats
        fits = [v for v in pool if v.type.size <= spec.max_result_elements]
        reducible = [v for v in pool if _total_op(v.type)]
        if fits or not reducible:  # a complex value alone is returned over the budget
            return self.recent(fits or pool)
        return self.total(self.recent(reducible), body)

    def total(self, source: Value, body: list[Apply]) -> Value:
        """``jnp.sum(source)`` (``jnp.any`` of a bool), appended to ``body``."""
        op = _total_op(source.type) or "sum"
        params = {"axis": None, "keepdims": False}
        total = Value(self.fresh(), OPS[op].rule((source.type,), params, [])[0])
        body.append(Apply(op, (source,), params, (total,)))
        return total


def _total_op(t: TensorType) -> str | None:
    """The reduction that closes a value of type ``t`` into a scalar, if one does."""
    return next((op for op in ("sum", "any") if OPS[op].accepts(t)), None)


_REGION_PREFIX = {1: "fn", 2: "body"}
@st.composite
def _STATEMENT(draw: Draw, builder: Builder, *args) -> Apply:  # noqa: N802
    builder.draw = draw  # the same choice sequence, now inside this statement's span
    return builder._statement(*args)


@st.composite
def _ITERATION(draw: Draw, builder: Builder, *args) -> tuple[Apply, bool]:  # noqa: N802
    builder.draw = draw
    return builder._iteration(*args)


STATEMENT_SPAN = _ITERATION(None).label
"""The label of a top-level statement's span in a program's choice sequence (the statement
and its "one more?" draw): deleting the span deletes the statement, and the choices after it
keep their meaning (the minimiser's statement pass, ``fuzz.triage.minimize``)."""


LARGE_FAMILIES = frozenset({"unary", "binary", "select", "conversion", "reduction", "sorting",
                            "shape", "indexing", "gather", "nn", "misc", "creation", "linalg"})
"""The op families of a large-shape program: those whose cost grows about linearly with
the elements, and contractions (a matmul whose operands and result each hold at most
2**20 elements does at most 2**30 multiply-adds: a matvec over many rows is where jax#39103
broke). No decomposition, window or cumulative op: a cumsum over 2**20 elements is a
reduce_window of 2**40 steps on XLA:CPU."""
LARGE_EXCLUDED = frozenset({"conv", "conv_transpose", "dot_product_attention"})
"""Contractions over windows or heads, whose cost is not bounded that way."""
LARGE_STATEMENTS = 8


def _large(draw: Draw, cfg: Config) -> Config | None:
    """``cfg`` for a large-shape program when this draw makes one (one in ``cfg.large``)."""
    if not cfg.large or cfg.forced or cfg.symbolic or cfg.vector:
        return None
    if integer(draw, 0, cfg.large - 1) != cfg.large - 1:
        return None
    ops = tuple(n for n in cfg.ops
                if OPS[n].family in LARGE_FAMILIES and n not in LARGE_EXCLUDED)
    if not ops:  # a run restricted to ops that large shapes leave out
        return None
    return replace(cfg, ops=ops, limits=LARGE_LIMITS, large=0,
                   min_statements=min(cfg.min_statements, LARGE_STATEMENTS),
                   max_statements=min(cfg.max_statements, LARGE_STATEMENTS))


def _large_tensor(draw: Draw, dtypes: Sequence[str]) -> TensorType:
    """The first argument of a large-shape program: 2**15 to 2**20 elements, rank 1 or 2."""
    n = integer(draw, LARGE_MIN_ELEMENTS, LARGE_ELEMENTS)
    rows = integer(draw, 1, 64)
    shape = (n,) if rows == 1 else (rows, max(n // rows, LARGE_MIN_ELEMENTS // rows))
    return TensorType(shape, choice(draw, list(dtypes)))


def _x64(draw: Draw, cfg: Config) -> Config | None:
    """``cfg`` for a 64-bit program when this draw makes one (one in ``cfg.x64``)."""
    if not cfg.x64 or cfg.forced or cfg.symbolic or cfg.vector:
        return None
    if integer(draw, 0, cfg.x64 - 1) != cfg.x64 - 1:
        return None
    ops = tuple(n for n in cfg.ops if WIDE.keys() & OPS[n].dtypes and n not in X64_EXCLUDED)
    if not ops:  # a run restricted to ops that 64-bit programs leave out
        return None
    return replace(cfg, ops=ops, dtypes=X64_PARAM_DTYPES, x64=0)


def build_program(draw: Draw, cfg: Config) -> Program:
    """Draw one program under ``cfg``."""
    large = _large(draw, cfg)
    x64 = None if large else _x64(draw, cfg)
    cfg = large or x64 or cfg
    families = [f for f in FAMILIES if flag(draw)] if cfg.swarm else FAMILIES
    enabled = frozenset(_INDEX[n] for n in cfg.ops if OPS[n].family in families)
    forced_ops = frozenset(_INDEX[n] for n, _ in cfg.forced)
    b = Builder(draw, cfg, enabled or frozenset(_INDEX[n] for n in cfg.ops) | forced_ops)
    if cfg.symbolic:
        b.excluded = frozenset(i for i, op in enumerate(_OPS) if not op.batchable)
    first_rank = (1, 1) if cfg.vector else (0, cfg.limits.max_rank)
    # Few ops take complex values: a complex parameter comes when one of them asks for it.
    first_dtypes = [d for d in cfg.dtypes if d not in COMPLEX] or cfg.dtypes
    if x64:  # a 64-bit argument: what turns jax_enable_x64 on (extract.args.needs_x64)
        first_dtypes = [d for d in cfg.dtypes if d in WIDE]
    b.new_param(_large_tensor(draw, first_dtypes) if large else
                tensor(draw, b.env, first_dtypes, *first_rank))
    body = b.block(list(b.params), list(cfg.forced))
    used = reads(body, set())
    results = tuple(v for s in body for v in s.outputs if v.name not in used)
    signature = draw_signature(draw, b.params)
    returns = draw_returns(draw, results)
    # a run that asks for symbolic_shape draws within half the element budget (strategies),
    # so that a batch of 2 always fits in the whole of it
    budget = cfg.limits.max_elements * (2 if cfg.symbolic else 1)
    batch = draw_batch(draw, body, b.params, results, budget, cfg.symbolic)
    style, depth = draw_style(draw, cfg.styles)
    return Program(cfg.entry, tuple(b.params), tuple(body),
                   returns.leaves if returns else results, tuple(sorted(b.expected)),
                   signature, returns, batch, style, depth)


def program_strategy(cfg: Config) -> st.SearchStrategy[Program]:
    return st.composite(build_program)(cfg)
