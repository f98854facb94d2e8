"""The oracles' cheap references (extract.screens): they compute what the compiled program
does, they clear the programs they agree on, and a discrepancy still reaches the oracle's own
reference, which decides."""

from __future__ import annotations

import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import extract.screens
from extract import extract_in_process, make_inputs
from extract.oracles import EAGER_EVERY
from extract.screens import clears, interpreted, op_by_op

F32 = "float32"


def _program(body: str) -> str:
    return "import jax\nimport jax.numpy as jnp\nfrom jax import lax\n\n\n" + \
        textwrap.dedent(body).strip() + "\n"


def test_op_by_op_computes_the_program_through_calls_custom_rules_and_control_flow():
    def f(x, k):
        y = jax.nn.relu(x) @ jnp.linalg.inv(jnp.eye(4) + 0.1 * x)  # custom_jvp, pjit, LAPACK
        z = jax.lax.fori_loop(0, 3, lambda i, c: jnp.sin(c) + i, y)
        noise = jax.random.normal(jax.random.key(k), (4, 4))  # a key type through barriers
        return jnp.cumsum(z, axis=0) + noise, jnp.argmax(z)

    inputs = make_inputs([((4, 4), F32), ((), "int32")], 5)
    want = [np.asarray(v) for v in jax.tree_util.tree_leaves(jax.jit(f)(*inputs))]
    assert clears(lambda: op_by_op(f, inputs), want)


def test_op_by_op_keeps_xla_from_simplifying_across_ops():
    # one primitive per barrier, as eager mode compiles them: XLA cannot see the whole
    # expression, so the module holds a barrier for each of the program's primitives
    def f(x):
        return jnp.log(jnp.exp(x)) * 2.0

    closed = jax.make_jaxpr(f)(np.ones(3, np.float32))
    text = jax.jit(lambda x: extract.screens._evaluate(closed.jaxpr, closed.consts, [x])) \
        .lower(np.ones(3, np.float32)).as_text()
    assert text.count("stablehlo.optimization_barrier") == len(closed.jaxpr.eqns) == 3


def test_a_screen_that_cannot_run_or_disagrees_does_not_clear():
    want = [np.ones(3, np.float32)]
    assert not clears(lambda: None, want)
    assert not clears(lambda: [np.ones(3, np.float32) + 1.0], want)
    assert not clears(lambda: [np.ones(4, np.float32)], want)
    assert not clears(lambda: 1 / 0, want)
    assert clears(lambda: [np.ones(3, np.float32) + 1e-7], want)


def test_interpreted_runs_a_pytree_functions_lowering_and_declines_what_it_must_not_run():
    inputs = ({"x": np.ones(2, np.float32)}, np.arange(3, dtype=np.int32))
    lowered = jax.jit(lambda a, b: (a["x"] * 2.0, b), keep_unused=True).lower(*inputs)
    assert [o.tolist() for o in interpreted(lowered, inputs)] == [[2.0, 2.0], [0, 1, 2]]
    eye = (np.eye(3, dtype=np.float32),)
    assert interpreted(jax.jit(jnp.linalg.inv).lower(*eye), eye) is None  # LAPACK


@pytest.mark.parametrize("seed, verdict", [(3, "pass"), (EAGER_EVERY * 3, "failed")])
def test_jit_eager_runs_eager_mode_itself_on_one_program_in_eager_every(seed, verdict):
    # a function that computes otherwise on tracers: the screen traces as jit does and
    # agrees with it, so only eager mode meets it, on the programs whose seed is drawn
    source = _program("""
        def f(x):
            return x * (2.0 if isinstance(x, jax.core.Tracer) else 3.0)
        """)
    record = extract_in_process(source, "f", [((3,), F32)], seed=seed, grad=False,
                                oracles=["jit_eager"])
    assert record["oracles"]["jit_eager"] == verdict


def test_a_discrepancy_the_screen_sees_is_decided_by_eager_mode(monkeypatch):
    # a screen that disagrees hands the program to eager mode, which agrees with jit: pass
    monkeypatch.setattr(extract.screens, "op_by_op", lambda f, xs: [np.zeros(3, np.float32)])
    source = _program("""
        def f(x):
            return jnp.sin(x) + 1.0
        """)
    record = extract_in_process(source, "f", [((3,), F32)], seed=3, grad=False,
                                oracles=["jit_eager"])
    assert record["oracles"]["jit_eager"] == "pass"


def test_vmap_and_autodiff_are_cleared_by_the_interpreter(monkeypatch):
    cleared = []

    def spy(lowered, inputs):
        out = interpreted(lowered, inputs)
        cleared.append(out is not None)
        return out

    monkeypatch.setattr(extract.screens, "interpreted", spy)
    source = _program("""
        def f(x, y):
            return jnp.tanh(x @ y).sum(axis=0), jnp.exp(x)
        """)
    record = extract_in_process(source, "f", [((3, 4), F32), ((4, 2), F32)], seed=3,
                                oracles=["vmap", "autodiff"])
    assert record["oracles"]["vmap"] == "pass"
    assert record["oracles"]["autodiff"] == "pass"
    assert cleared == [True, True]  # the batched module, then the jvp-and-vjp module


@pytest.mark.parametrize("body, screened", [
    ("return jnp.sin(x) @ x", 0),  # the interpreter passes it: no other reference runs
    ("return jnp.linalg.inv(x + 4.0 * jnp.eye(3))", 1),  # LAPACK: one screen for both
])
def test_the_interpreters_pass_clears_unsimplified_and_jit_eager(monkeypatch, body, screened):
    calls = []

    def spy(f, inputs, options=None):
        calls.append(options)
        return op_by_op(f, inputs, options)

    monkeypatch.setattr(extract.screens, "op_by_op", spy)
    record = extract_in_process(_program(f"def f(x):\n    {body}\n"), "f", [((3, 3), F32)],
                                seed=3, grad=False,
                                oracles=["interpreter", "unsimplified", "jit_eager"])
    assert record["oracles"]["interpreter"] == (
        "pass" if not screened else "skipped: unsupported op stablehlo.custom_call")
    assert record["oracles"]["unsimplified"] == record["oracles"]["jit_eager"] == "pass"
    assert len(calls) == screened
    assert all("algsimp" in options["xla_disable_hlo_passes"] for options in calls)


def test_a_convolution_the_old_interpreter_aborts_on_is_refused_before_it_runs():
    # Findings 25: jaxlib 0.10's interpreter aborts on the kernel cotangent's [f, b, 0, 1]
    # layout, which autodiff's screen met in a 300-program run; the screen compiles instead
    from jax import lax

    from extract.interpreter import _jaxlib_version, unsupported

    def f(x):
        return lax.conv_general_dilated(jnp.ones((1, 5, 8, 8), jnp.float32), x, (2, 1), "SAME")

    x = np.ones((2, 5, 2, 7), np.float32)
    cot = np.ones(jax.eval_shape(f, x).shape, np.float32)
    vjp = jax.jit(lambda x, c: jax.vjp(f, x)[1](c)).lower(x, cot).as_text()
    assert "[f, b, 0, 1]" in vjp
    assert (unsupported(vjp) is not None) == (_jaxlib_version() < (0, 11))
    assert unsupported(jax.jit(f).lower(x).as_text()) is None  # the forward layout runs
    source = _program("""
        def f(x):
            return lax.conv_general_dilated(jnp.ones((1, 5, 8, 8), jnp.float32), x, (2, 1),
                                            "SAME")
        """)
    record = extract_in_process(source, "f", [((2, 5, 2, 7), F32)], seed=3,
                                oracles=["autodiff"])
    assert record["oracles"]["autodiff"].startswith("pass"), record.get("failure")
