"""Cases: generated programs with concrete inputs, for other people's property tests.

A case is a ``grammar.Program`` and one input array per argument leaf, drawn through
Hypothesis, so a failing test shrinks the program and the input values together::

    from hypothesis import given, settings
    from extract.cases import assert_outputs_match, cases

    @settings(deadline=None)  # compile times vary
    @given(cases(max_statements=8))
    def test_my_batching(case):
        assert_outputs_match(my_batching(case.fn)(*case.inputs), case.expected())

Inputs stay in the values of the input recipe (``extract.inputs``): each element is drawn as
the recipe's raw word and converted by the recipe's own code, so floats are odd multiples of
1/128 in ±[0.258, 1.992] (never zero, an integer or a half-integer), signed integers lie in
-4..4 and bools are either. The grammar guards every operand with a restricted domain in the
source itself (``jnp.log(jnp.abs(x) + 1.0)``, ``jnp.clip`` before ``arcsin``: ``Domain`` in
``grammar.opdef``), so any such input is valid. Shrinking moves floats toward 0.2578125,
integers toward 0, bools toward False.

Programs over a device mesh (categories ``shard_map``, ``sharding``) need 8 devices: set
``XLA_FLAGS=--xla_force_host_platform_device_count=8`` before JAX starts, or pass ``ops=``
without them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property, lru_cache
from typing import Any

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from grammar import Program, programs

from .args import flatten_args, unflatten_args
from .inputs import from_words, make_inputs, word_count
from .values import compare_arrays, is_float, tolerance

__all__ = ["Case", "assert_outputs_match", "cases"]


@dataclass(frozen=True, eq=False)
class Case:
    """A program and its inputs: ``input_leaves`` holds one read-only array per argument
    leaf of ``program.args``, in ``jax.tree_util.tree_leaves`` order."""

    program: Program
    input_leaves: tuple[np.ndarray, ...]

    @property
    def source(self) -> str:
        """The program's module text."""
        return self.program.source

    @cached_property
    def fn(self) -> Callable:
        """The entry function, from the source executed in a fresh namespace."""
        namespace: dict = {"__name__": "jaxsmith_program"}
        exec(compile(self.source, "<jaxsmith>", "exec"), namespace)
        return namespace[self.program.entry]

    @property
    def inputs(self) -> tuple:
        """The entry's arguments: ``input_leaves`` in the structure of ``program.args``
        (a dict argument as a dict, a tuple argument as a tuple); call ``fn(*inputs)``."""
        return tuple(unflatten_args(self.program.args, self.input_leaves))

    def expected(self) -> list[np.ndarray]:
        """The outputs of ``jax.jit(fn)`` on ``inputs``, leaves in ``tree_leaves`` order
        (computed once)."""
        return list(self._expected)

    @cached_property
    def _expected(self) -> tuple[np.ndarray, ...]:
        import jax

        return tuple(np.asarray(x) for x in jax.tree_util.tree_leaves(
            jax.jit(self.fn)(*self.inputs)))

    def stablehlo(self) -> str:
        """The program lowered by ``jax.jit`` to StableHLO text, one ``main`` argument per
        input leaf (``keep_unused=True``: an unused argument stays); computed once.
        ``extract.clean.clean_mlir`` of it is what a corpus record's ``stablehlo`` holds,
        up to the unused arguments jit drops there."""
        return self._stablehlo

    @cached_property
    def _stablehlo(self) -> str:
        import jax

        return jax.jit(self.fn, keep_unused=True).lower(*self.inputs).as_text()

    def recipe_inputs(self, seed: int) -> tuple:
        """The arguments of the input recipe (``extract.make_inputs(program.args, seed)``,
        what a record's ``inputs`` seed stands for), structured as ``inputs``."""
        args = self.program.args
        return tuple(unflatten_args(args, make_inputs(args, seed)))

    def __repr__(self) -> str:
        lines = [f"Case(ops={list(self.program.ops)}, args={self.program.args})",
                 self.source.rstrip()]
        for i, x in enumerate(self.input_leaves):
            values = np.array2string(x.reshape(-1), threshold=12, separator=", ")
            lines.append(f"# input leaf {i}: {x.dtype.name}{list(x.shape)}, flat {values}")
        return "\n".join(lines)

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:  # Hypothesis' printer
        printer.text(repr(self))


# -- drawing inputs: one choice per element, mapped to the recipe's raw words -------------------

def _choices(dtype: np.dtype) -> tuple[int, Callable[[np.ndarray], np.ndarray]]:
    """How many values an element of ``dtype`` may take in the recipe, and the raw word
    (``extract.inputs``) that gives value number ``i``; ``i = 0`` is the simplest."""
    if dtype == np.bool_:
        return 2, lambda i: i
    if is_float(dtype) or np.issubdtype(dtype, np.complexfloating):
        return 224, lambda i: (i >> 1) << 11 | (i & 1)  # 112 magnitudes, either sign
    if np.issubdtype(dtype, np.unsignedinteger):
        return 9, lambda i: i << 11
    return 9, lambda i: (i + 4) % 9 << 11  # signed: 0, 1, 2, 3, 4, -4, -3, -2, -1


@lru_cache(maxsize=1024)
def _leaf(shape: tuple[int, ...], dtype_name: str) -> st.SearchStrategy[np.ndarray]:
    dtype = np.dtype(dtype_name)
    count, word = _choices(dtype)
    choices = arrays(np.uint64, word_count(shape, dtype), elements=st.integers(0, count - 1))

    def build(i: np.ndarray) -> np.ndarray:
        x = from_words(word(i), shape, dtype)
        x.setflags(write=False)  # a tool under test cannot change what expected() saw
        return x

    return choices.map(build)


@st.composite
def _cases(draw: st.DrawFn, strategy: st.SearchStrategy[Program]) -> Case:
    program = draw(strategy)
    leaves = tuple(draw(_leaf(shape, dtype)) for shape, dtype in flatten_args(program.args))
    return Case(program, leaves)


def cases(**options: Any) -> st.SearchStrategy[Case]:
    """Cases of ``grammar.programs(**options)``: the same keyword arguments, checked the same
    way (a bad one raises ``InvalidArgument`` here), each program with inputs drawn from the
    recipe's values."""
    return _cases(programs(**options))


# -- checking a tool's outputs ----------------------------------------------------------------

def _tolerance_text(dtype: np.dtype) -> str:
    tol = tolerance(dtype)
    if tol.rtol == 0:
        return "exact"
    return f"|got - want| <= {tol.atol:g} + {tol.rtol:g} x max|want| (norm-wise)"


def assert_outputs_match(actual: Any, expected: Any, *, where: str = "") -> None:
    """Raise ``AssertionError`` unless the leaves of ``actual`` (any pytree of arrays, such as
    a tool's outputs) match those of ``expected`` (``Case.expected()``) one by one.

    The oracles' rules (``extract.values``): equal leaf counts, shapes and dtypes; floats
    within the value tolerance of their dtype, norm-wise; NaN where NaN, infinities of the
    same sign; integers and bools exact; complex as real and imaginary parts. The message
    names each leaf that differs, its shape and dtype, the largest difference and its flat
    index (integers and bools: the first, and how many differ), both values there and the
    tolerance; ``where`` starts it.
    """
    import jax

    got = [np.asarray(x) for x in jax.tree_util.tree_leaves(actual)]
    want = [np.asarray(x) for x in jax.tree_util.tree_leaves(expected)]
    head = f"{where}: " if where else ""
    if len(got) != len(want):
        raise AssertionError(f"{head}{len(got)} output leaves, expected {len(want)}: got "
                             f"{[f'{g.dtype.name}{list(g.shape)}' for g in got]}, want "
                             f"{[f'{w.dtype.name}{list(w.shape)}' for w in want]}")
    problems = [f"  leaf {k} ({w.dtype.name}{list(w.shape)}): {problem}; tolerance "
                f"{_tolerance_text(w.dtype)}"
                for k, (g, w) in enumerate(zip(got, want, strict=True))
                if (problem := compare_arrays(g, w)) is not None]
    if problems:
        raise AssertionError(f"{head}{len(problems)} of {len(want)} output leaves differ "
                             "(got: actual, want: expected)\n" + "\n".join(problems))
