"""fuzz.triage.reduce: the tree passes make smaller, valid programs, and the driver reaches the
smallest one that keeps a property."""

from __future__ import annotations

import jax
import libcst
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from extract.args import flatten_args, normalize_args, unflatten_args
from fuzz.campaign import sampling
from fuzz.triage.reduce import PASSES, candidates, reduce, size
from grammar import programs
from grammar.program import Const, Value, walk

SMALL = programs(max_statements=8)
SETTINGS = settings(max_examples=25, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def abstract(args):
    """``args`` as the entry takes them, each leaf a ``jax.ShapeDtypeStruct``."""
    tree = normalize_args(args)
    return unflatten_args(tree, [jax.ShapeDtypeStruct(tuple(s), jax.numpy.dtype(d))
                                 for s, d in flatten_args(tree)])


def traces(program) -> bool:
    """Whether ``program`` traces on its arguments (shapes only: no compile)."""
    namespace: dict = {}
    exec(compile(program.source, "<candidate>", "exec"), namespace)  # noqa: S102
    try:
        jax.eval_shape(namespace[program.entry], *abstract(program.args))
    except Exception:  # noqa: BLE001
        return False
    return True


@pytest.mark.slow
@SETTINGS
@given(SMALL)
def test_every_candidate_is_strictly_smaller(program):
    own = size(program)
    for name, candidate in candidates(program):
        assert name in PASSES
        assert size(candidate) < own, (name, candidate.source)


@pytest.mark.slow
@SETTINGS
@given(SMALL)
def test_structural_candidates_are_valid_programs(program):
    # every pass but shapes/dtypes/literals keeps each op's own types: valid by construction
    if not traces(program):
        return  # a program outside what eval_shape can do (a mesh, say): not this test's
    for name, candidate in candidates(program):
        if name in ("results", "dead", "cut", "const", "hoist", "flatten", "unbatch"):
            assert traces(candidate), (name, program.source, candidate.source)


@SETTINGS
@given(programs(max_statements=10, ops=["sin", "cos", "tanh", "add", "multiply", "exp",
                                         "scan", "cond"], dtypes=["float32"]))
def test_reduction_keeps_the_property_and_reaches_one_statement(program):
    def has_sin(p) -> bool:
        return "sin" in p.ops

    if not has_sin(program):
        return
    batches = []

    def test(batch):
        batches.append(len(batch))
        return [has_sin(p) for p in batch]

    reduced, steps = reduce(program, test, parallel=3)
    assert has_sin(reduced) and reduced.statement_count == 1, reduced.source
    assert reduced.style == program.style
    assert all(n <= 3 for n in batches) and len(steps) <= sum(batches)


@given(st.integers(0, 5))
@settings(max_examples=6, deadline=None)
def test_a_spent_budget_stops_the_reduction_at_once(k):
    program = next(p for i in range(50) if (p := sampling.draw(SMALL, 1, i)[0]).statement_count
                   > 3)
    calls = []
    reduced, steps = reduce(program, lambda b: calls.append(b) or [True] * len(b),
                            spent=lambda: len(calls) >= k)
    assert len(calls) <= k and len(steps) == len(calls)


@SETTINGS
@given(SMALL)
def test_const_puts_ones_and_zeros_for_each_parameter_it_reads(program):
    # a failure that needs one value (lgamma at 1 is 0 exactly) rather than the recipe's
    read = {x.name for stmt, _ in walk(program.body) for x in stmt.inputs if hasattr(x, "name")}
    pinned = {v.name for v in program.results}
    wanted = [p for p in program.params if p.name in read and p.name not in pinned]
    if program.signature or not wanted:
        return
    made = [c for c in PASSES["const"](program)]
    for p in wanted:
        for zero in (False, True):
            assert any(all(not (isinstance(x, Value) and x.name == p.name)
                           for stmt, _ in walk(c.body) for x in stmt.inputs)
                       and any(isinstance(x, Const) and x.zero == zero and x.type == p.type
                               for stmt, _ in walk(c.body) for x in stmt.inputs)
                       for c in made), (p, zero, program.source)


def test_zeros_render_as_jnp_zeros():
    from grammar.render import operand
    from grammar.types import TensorType

    node = operand(Const(TensorType((2, 3), "float32"), zero=True))
    assert libcst.Module([]).code_for_node(node) == "jnp.zeros((2, 3), dtype=jnp.float32)"


@SETTINGS
@given(programs(max_statements=8, ops=["sin", "exp", "scan", "cond", "vmap", "jit"],
                dtypes=["float32"]))
def test_hoist_offers_each_region_also_on_ones(program):
    hoisted = list(PASSES["hoist"](program))
    assert len(hoisted) == 2 * sum(bool(r.body) for stmt, _ in walk(program.body)
                                   for r in stmt.regions)
    for free, on_ones in zip(hoisted[::2], hoisted[1::2], strict=True):
        assert free.render("ssa") == on_ones.render("ssa") or size(on_ones) < size(free)
        read = {x.name for stmt, _ in walk(on_ones.body) for x in stmt.inputs
                if isinstance(x, Value)}
        assert not read & ({p.name for p in on_ones.params} - {v.name for v in on_ones.results})
