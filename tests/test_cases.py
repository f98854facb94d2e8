"""Cases (extract.cases): programs with drawn inputs, their expected outputs, and the check."""

import subprocess
import sys

import jax
import jax.extend.core as jex
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import InvalidArgument

from extract.args import flatten_args
from extract.cases import assert_outputs_match, cases
from extract.inputs import make_inputs
from extract.interpreter import argument_count
from grammar import OPS
from grammar.opdef import Domain

FEW = settings(max_examples=8, deadline=None, derandomize=True, database=None,
               suppress_health_check=list(HealthCheck))


@pytest.mark.slow
@FEW
@given(cases(max_statements=6))
def test_a_case_runs_and_its_expected_outputs_are_jits(case):
    assert [(x.shape, x.dtype.name) for x in case.input_leaves] == list(
        flatten_args(case.program.args))
    assert case.fn is case.fn  # built once
    expected = case.expected()
    assert all(a is b for a, b in zip(expected, case.expected(), strict=True))  # run once
    outputs = jax.tree_util.tree_leaves(jax.jit(case.fn)(*case.inputs))
    assert len(outputs) == len(expected)
    for got, want in zip(outputs, expected, strict=True):
        np.testing.assert_array_equal(np.asarray(got), want)
    assert_outputs_match(jax.jit(case.fn)(*case.inputs), expected, where="jit")
    # eagerly on JAX arrays: on NumPy's, a method-style x.argmax() would be NumPy's (int64)
    eager_inputs = jax.tree_util.tree_map(jax.numpy.asarray, case.inputs)
    assert_outputs_match(case.fn(*eager_inputs), expected, where="eager")


def _recipe_value(x: np.ndarray) -> np.ndarray:
    """Whether each element is a value the input recipe can make (docs/oracles.md, "Inputs")."""
    if x.dtype.kind == "c":
        return _recipe_value(x.real) & _recipe_value(x.imag)
    if x.dtype.kind == "b":
        return np.ones(x.shape, bool)
    if x.dtype.kind in "iu":
        return np.abs(x) <= 4
    scaled = np.abs(x.astype(np.float64)) * 128
    return (scaled % 2 == 1) & (scaled >= 33) & (scaled <= 255)


@FEW
@given(cases(max_statements=4, dtypes=["float32", "int32", "bool", "float16", "bfloat16"]))
def test_drawn_inputs_take_the_recipes_values(case):
    for x in case.input_leaves:
        assert _recipe_value(x).all(), x
        assert not x.flags.writeable  # a tool cannot change what expected() ran on


GUARDED = sorted(n for n, op in OPS.items()
                 if any(d is not Domain.ANY for d in op.domain)
                 and "decomposition" not in op.categories)


@pytest.mark.slow
@FEW
@given(cases(ops=GUARDED, dtypes=["float32"], max_statements=4, max_depth=0))
def test_ops_with_an_input_domain_give_finite_values(case):
    # log, sqrt, arccosh, logit, divide ... each guarded into its domain by the source;
    # inputs outside the recipe's values (a zero, 1e30) could still make a NaN or an inf
    for x in case.expected():
        assert x.dtype.kind not in "fc" or np.isfinite(x).all(), case


@FEW
@given(cases(categories=["pytree"], max_statements=6))
def test_pytree_arguments_come_in_their_structure(case):
    def shape_of(arg):
        if isinstance(arg, np.ndarray):
            return [list(arg.shape), arg.dtype.name]
        if isinstance(arg, dict):
            return {k: shape_of(v) for k, v in arg.items()}
        return [shape_of(v) for v in arg]

    def spec_of(node):
        if isinstance(node, dict):
            return {k: spec_of(v) for k, v in node.items()}
        if isinstance(node[1], str):
            return [list(node[0]), node[1]]
        return [spec_of(v) for v in node]

    assert [shape_of(a) for a in case.inputs] == [spec_of(a) for a in case.program.args]
    leaves = jax.tree_util.tree_leaves(case.inputs)
    assert all(a is b for a, b in zip(leaves, case.input_leaves, strict=True))
    assert argument_count(case.stablehlo()) == len(case.input_leaves)  # unused ones kept
    assert case.stablehlo() is case.stablehlo()
    recipe = jax.tree_util.tree_leaves(case.recipe_inputs(5))
    for got, want in zip(recipe, make_inputs(case.program.args, 5), strict=True):
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("kwargs, message", [
    ({"categories": ["nope"]}, "unknown categories"),
    ({"max_statements": 0}, "max_statements=0"),
])
def test_bad_options_raise_as_programs_does(kwargs, message):
    with pytest.raises(InvalidArgument, match=message):
        cases(**kwargs)


def test_the_check_passes_within_tolerance():
    want = [np.linspace(-1, 2, 6, dtype=np.float32).reshape(2, 3), np.arange(3, dtype=np.int32),
            np.array([np.nan, np.inf, 1.0], np.float32)]
    got = {"a": want[0] + np.float32(1e-5), "b": (want[1].copy(), want[2].copy())}
    assert_outputs_match(got, want)


@pytest.mark.parametrize("got, want, needles", [
    ([np.zeros(3, np.float32), np.array([[1, 2, 3], [4, 5, 6.0]], np.float32)],
     [np.zeros(3, np.float32), np.array([[1, 2, 3], [4, 5.5, 6.0]], np.float32)],
     ["1 of 2 output leaves differ", "leaf 1 (float32[2, 3])", "max |diff| 0.5",
      "at flat index 4", "got 5, want 5.5", "6.4e-05 x max|want|"]),
    ([np.array([1, 2], np.int32)], [np.array([1, 3], np.int32)],
     ["leaf 0 (int32[2])", "first at flat index 1: got 2, want 3", "tolerance exact"]),
    ([np.array([np.nan, 1.0], np.float32)], [np.array([0.5, 1.0], np.float32)],
     ["NaN pattern differs", "flat index 0"]),
    ([np.zeros(2, np.float32)], [np.zeros(3, np.float32)], ["got float32[2], want float32[3]"]),
    ([np.zeros(2, np.float16)], [np.zeros(2, np.float32)], ["got float16[2], want float32[2]"]),
    ([np.zeros(2, np.float32)], [np.zeros(2, np.float32)] * 2,
     ["1 output leaves, expected 2"]),
])
def test_the_check_names_what_differs(got, want, needles):
    with pytest.raises(AssertionError) as info:
        assert_outputs_match(got, want, where="my tool")
    message = str(info.value)
    assert message.startswith("my tool: ")
    for needle in needles:
        assert needle in message, message


def simplify_wrongly(closed):
    """A jaxpr pass with a bug: it rewrites ``x * y`` to ``x`` (right only where y == 1)."""
    jaxpr, subst, eqns = closed.jaxpr, {}, []

    def swap(v):
        return subst.get(v, v) if isinstance(v, jex.Var) else v

    for eqn in jaxpr.eqns:
        eqn = eqn.replace(invars=[swap(v) for v in eqn.invars])
        if eqn.primitive.name == "mul" and eqn.invars[0].aval == eqn.outvars[0].aval:
            subst[eqn.outvars[0]] = eqn.invars[0]
        else:
            eqns.append(eqn)
    return closed.replace(jaxpr=jaxpr.replace(eqns=eqns, outvars=[swap(v) for v in jaxpr.outvars]))


def wrongly_simplified(case):
    """The tool under test: ``case.fn``'s jaxpr through ``simplify_wrongly``, run eagerly."""
    closed = jax.make_jaxpr(case.fn)(*case.inputs)
    return jex.jaxpr_as_fun(simplify_wrongly(closed))(*case.input_leaves)


@pytest.mark.slow
def test_a_wrong_tool_fails_and_shrinks_to_a_small_case():
    failing = []

    @settings(max_examples=100, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    @given(cases(ops=["multiply", "add", "sin", "sum", "exp", "transpose"], styles=["ssa"],
                 max_statements=4, max_elements=16, swarm=False))
    def the_tool_matches_jit(case):
        try:
            assert_outputs_match(wrongly_simplified(case), case.expected(), where="simplified")
        except AssertionError:
            failing.append(case)
            raise

    with pytest.raises(AssertionError) as info:
        the_tool_matches_jit()
    shrunk = failing[-1]  # Hypothesis replays the shrunk case last
    assert "multiply" in shrunk.program.ops
    assert shrunk.program.statement_count <= 2, shrunk
    assert all((x == 33 / 128).all() for x in shrunk.input_leaves), shrunk  # simplest value
    assert "simplified: 1 of 1 output leaves differ" in str(info.value)
    assert "Case(ops=['multiply']" in "\n".join(getattr(info.value, "__notes__", [])), info.value


def test_importing_cases_does_not_import_jax():
    done = subprocess.run([sys.executable, "-c", "import sys, extract.cases; "
                           "assert 'jax' not in sys.modules, 'jax imported'"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
