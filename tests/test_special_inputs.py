"""Special-value inputs (recipe ``jaxsmith-inputs/1+special``, issue 28): the recipe, its
share of a run, the interpreter driver's rules for what the spec leaves open, and public
kinds of XLA bug caught on generated inputs."""
from __future__ import annotations

import re
import subprocess
import sys

import jax
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from extract.core import extract_in_process
from extract.inputs import RECIPE, SPECIAL_RECIPE, check_recipe, make_inputs
from extract.interpreter import run_module
from fuzz.campaign.sampling import input_recipe
from fuzz.triage.known_findings import finding
from fuzz.triage.repro import reproducer

FLOATS = ("float32", "float16", "bfloat16")


def test_the_special_recipe_keeps_the_plain_values_and_adds_every_special_one():
    plain = make_inputs([((4000,), "float32"), ((4000,), "int32")], 5)
    x, i = make_inputs([((4000,), "float32"), ((4000,), "int32")], 5, SPECIAL_RECIPE)
    kept = x == plain[0]
    assert 0.7 < kept.mean() < 0.8  # a quarter of the elements is special (some by chance equal)
    assert np.isnan(x).any() and np.isposinf(x).any() and np.isneginf(x).any()
    assert (np.signbit(x) & (x == 0)).any() and (~np.signbit(x) & (x == 0)).any()
    assert (x == np.finfo(np.float32).max).any() and (x == -np.finfo(np.float32).max).any()
    assert ((x != 0) & (np.abs(x) < np.finfo(np.float32).tiny)).any()  # subnormals
    assert (i == np.iinfo(np.int32).min).any() and (i == np.iinfo(np.int32).max).any()
    again = make_inputs([((4000,), "float32"), ((4000,), "int32")], 5, SPECIAL_RECIPE)
    assert all(np.array_equal(a, b, equal_nan=True) for a, b in zip(again, (x, i), strict=True))
    b, = make_inputs([((64,), "bool")], 5, SPECIAL_RECIPE)
    assert np.array_equal(b, make_inputs([((64,), "bool")], 5)[0])  # bool has no specials


@pytest.mark.parametrize("shape", [(), (1,), (3, 2)])
def test_complex_scalars_and_arrays_take_specials(shape):
    for seed in range(40):  # a 150-program run met a complex64 argument of shape ()
        x, = make_inputs([(shape, "complex64")], seed, SPECIAL_RECIPE)
        assert x.shape == shape and x.dtype == np.complex64


@pytest.mark.parametrize("dtype", [*FLOATS, "complex64", "uint8", "int8"])
def test_each_dtype_gets_the_specials_of_its_own_type(dtype):
    x, = make_inputs([((2000,), dtype)], 3, SPECIAL_RECIPE)
    assert x.dtype == np.dtype(dtype)
    if dtype in FLOATS:
        wide = x.astype(np.float64)
        assert np.isinf(wide).any() and np.nanmax(wide[np.isfinite(wide)]) == float(
            __import__("ml_dtypes").finfo(dtype).max)
    elif dtype == "complex64":
        assert np.isnan(x.real).any() and np.isinf(x.imag).any()
    else:
        assert x.min() == np.iinfo(dtype).min or x.max() == np.iinfo(dtype).max


def test_an_unknown_recipe_is_refused_with_the_accepted_ones():
    with pytest.raises(ValueError, match=r"recipe='jaxsmith-inputs/9' must be one of "
                                         r"jaxsmith-inputs/1, jaxsmith-inputs/1\+special"):
        check_recipe("jaxsmith-inputs/9")


@settings(max_examples=20, deadline=None)
@given(st.integers(0, 2**32), st.sampled_from([0.0, 0.125, 0.5, 1.0]))
def test_the_share_of_special_programs_is_drawn_from_seed_and_index(seed, share):
    drawn = [input_recipe(seed, index, share) for index in range(400)]
    assert drawn == [input_recipe(seed, index, share) for index in range(400)]
    special = drawn.count(SPECIAL_RECIPE) / len(drawn)
    assert abs(special - share) < 0.1 and set(drawn) <= {RECIPE, SPECIAL_RECIPE}


def _oracles(body: str, args, seed: int = 3) -> dict:
    source = f"import jax\nimport jax.numpy as jnp\nfrom jax import lax\n\n\ndef f(x, i):\n" \
             f"    return {body}\n"
    record = extract_in_process(source, "f", args, seed=seed, recipe=SPECIAL_RECIPE,
                                grad=False, oracles=["interpreter", "jit_eager", "vmap"])
    assert record["inputs"] == {"seed": seed, "recipe": SPECIAL_RECIPE}
    return record


@pytest.mark.parametrize("body", [
    "jnp.sort(x), lax.top_k(x, 5)[0], jnp.argmax(x)",  # NaN under TOTALORDER (Finding 22)
    "i // (i - 1), i % (i + 1), lax.div(i, i), lax.rem(i, i)",  # by zero, INT_MIN / -1 (23)
    "jnp.sign(x), jnp.log(x), jnp.sqrt(x), jnp.arccos(x)",  # subnormals: denormals-are-zero
    "jnp.maximum(x, x[::-1]), jnp.max(x), jnp.minimum(x, 0.5), jnp.clip(x, -1, 1)",  # NaN
])
@pytest.mark.parametrize("dtype", FLOATS)
def test_the_oracles_agree_with_xla_where_the_spec_or_xla_defines_the_result(body, dtype):
    record = _oracles(body, [((64,), dtype), ((16,), "int32")])
    assert record["status"] == "ok", record.get("failure")
    # lax.div(i, i): jaxlib 0.12's simplifier folds it to 1 where i is 0 (run time: -1)
    allowed = ("pass", "benign: integer_division") if "lax.div" in body else ("pass",)
    assert record["oracles"]["interpreter"] in allowed, record["oracles"]


def test_a_variadic_reduce_meeting_nan_is_benign_reduce_order():
    """A 150-program special run's bucket: an argmax-style reduce over a sum that is NaN; XLA
    keeps the init (-inf), the interpreter the NaN, and both orders are legal."""
    source = (
        "import jax\nimport jax.numpy as jnp\nfrom jax import lax\n\n\ndef f(t13, t5):\n"
        "    t8 = jnp.sum(t5, axis=None, keepdims=True)\n"
        "    def t10_argmax(acc, cur):\n"
        "        acc_v, acc_i = acc\n"
        "        cur_v, cur_i = cur\n"
        "        pick = (cur_v > acc_v) | ((cur_v == acc_v) & (cur_i < acc_i))\n"
        "        return jnp.where(pick, cur_v, acc_v), jnp.where(pick, cur_i, acc_i)\n"
        "    t10, t11 = lax.reduce((t8, lax.broadcasted_iota(jnp.int32, (1, 1, 1, 1), 2)), "
        "(jnp.array(-jnp.inf, dtype=jnp.float32), 0), t10_argmax, (2,))\n"
        "    return jnp.less_equal(t10, jnp.ones((4, 8, 2), dtype=jnp.float32))\n")
    args = [((), "float32"), ((3, 2, 3, 2), "float32")]
    record = extract_in_process(source, "f", args, seed=6427722627688731815, grad=False,
                                recipe=SPECIAL_RECIPE, oracles=["interpreter"])
    assert record["oracles"]["interpreter"] == "benign: reduce_order", record.get("failure")


def test_a_variadic_reduce_without_a_nan_in_its_inputs_is_not_excused(eager_always):
    """reduce_order needs a NaN to meet the body: on special inputs without one, a planted
    difference beside a variadic reduce is still a failure."""
    source = (
        "import jax\nimport jax.numpy as jnp\nfrom jax import lax\n\n\ndef f(x):\n"
        "    v, i = lax.reduce((x, lax.broadcasted_iota(jnp.int32, x.shape, 0)), "
        "(jnp.array(-jnp.inf, dtype=jnp.float32), 0), lambda a, b: (jnp.maximum(a[0], b[0]), "
        "jnp.minimum(a[1], b[1])), (0,))\n"
        "    return v + (1.0 if isinstance(x, jax.core.Tracer) else 0.0), i\n")
    args = [((3,), "float32")]
    seed = next(s for s in range(100)
                if not np.isnan(make_inputs(args, s, SPECIAL_RECIPE)[0]).any())
    record = extract_in_process(source, "f", args, seed=seed, grad=False,
                                recipe=SPECIAL_RECIPE, oracles=["jit_eager"])
    assert record["oracles"]["jit_eager"] == "failed", record["oracles"]


def test_algsimp_over_a_variadic_reduce_meeting_nan_is_benign_reduce_order():
    """The 2,000-program run's bucket (50 -> 2 statements): algsimp folds an argmax-style
    reduce over a dimension of size 1 to its element, the pass-less compile applies the body
    to (init, element), and a NaN makes the two orders differ."""
    source = (
        "import jax\nimport jax.numpy as jnp\nfrom jax import lax\n\n\ndef f(x2):\n"
        "    t23 = jnp.einsum('i,jki->jk', jnp.ones((60,), dtype=jnp.float32), x2)\n"
        "    def t43_argmax(acc, cur):\n"
        "        acc_v, acc_i = acc\n"
        "        cur_v, cur_i = cur\n"
        "        pick = (cur_v > acc_v) | ((cur_v == acc_v) & (cur_i < acc_i))\n"
        "        return jnp.where(pick, cur_v, acc_v), jnp.where(pick, cur_i, acc_i)\n"
        "    t43, t44 = lax.reduce((t23, lax.broadcasted_iota(jnp.int32, (1, 3), 0)), "
        "(jnp.array(-jnp.inf, dtype=jnp.float32), 0), t43_argmax, (0,))\n"
        "    return t43\n")
    record = extract_in_process(source, "f", [((1, 3, 60), "float32")],
                                seed=3263570170292899338, grad=False, recipe=SPECIAL_RECIPE,
                                oracles=["unsimplified"])
    assert record["oracles"]["unsimplified"] in ("pass", "benign: reduce_order"), \
        record.get("failure")


def test_a_dot_that_xla_fuses_into_multiply_adds_is_reference_rounding():
    """The 2,000-program run's bucket (19 -> 1 statement): w.dot(x) meeting inf and the largest
    float32: -1.0703125 * 3.4028235e38 overflows alone, so the interpreter adds -inf to inf
    (NaN), where XLA:CPU 0.10.2 keeps the product inside a fused multiply-add and gets inf,
    as the program does on float64 arguments."""
    source = "import jax\nimport jax.numpy as jnp\n\n\ndef f(w, x):\n    return w.dot(x)\n"
    args = [((1, 6), "float32"), ((6, 1), "float32")]
    record = extract_in_process(source, "f", args, seed=6763311169721436211, grad=False,
                                recipe=SPECIAL_RECIPE, oracles=["interpreter"])
    assert record["oracles"]["interpreter"] in ("pass", "benign: reference_rounding"), \
        record.get("failure")


def test_the_interpreter_driver_divides_integers_as_xla_does_where_the_spec_is_open():
    x = np.array([7, -7, np.iinfo(np.int32).min, 9], np.int32)
    d = np.array([0, 0, -1, 2], np.int32)
    for op in (jax.lax.div, jax.lax.rem):
        text = jax.jit(op).lower(x, d).as_text()
        assert run_module(text, [x, d])[0].tolist() == np.asarray(jax.jit(op)(x, d)).tolist()


def test_the_interpreter_driver_compares_under_totalorder_as_the_spec_says():
    a = np.array([1.0, -0.0, np.nan, -2.0], np.float32)
    b = np.array([np.nan, 0.0, 1.0, -1.0], np.float32)
    text = jax.jit(lambda a, b: a < b).lower(a, b).as_text().replace(", FLOAT", ", TOTALORDER")
    assert run_module(text, [a, b])[0].tolist() == [True, True, False, True]


def test_abs_of_int_min_folded_to_nonnegative_is_caught_on_special_inputs():
    """Finding 21, the public ``abs(x) >= 0`` fold: caught by ``unsimplified`` on generated
    special inputs where the folding jaxlib runs, and blamed on algsimp."""
    args = [((64,), "int32")]
    assert np.iinfo(np.int32).min in make_inputs(args, 3, SPECIAL_RECIPE)[0]
    source = "import jax.numpy as jnp\n\n\ndef f(i):\n    return jnp.abs(i) >= 0\n"
    plain = extract_in_process(source, "f", args, seed=3, grad=False, oracles=["unsimplified"])
    assert plain["status"] == "ok"  # the plain recipe never draws INT_MIN
    record = extract_in_process(source, "f", args, seed=3, recipe=SPECIAL_RECIPE, grad=False,
                                oracles=["unsimplified"])
    if not finding(21).reproduces.get(jax.__version__):
        assert record["status"] == "ok", record.get("failure")
        return
    failure = record["failure"]
    assert failure["signature"] == "unsimplified:value:bool:algsimp", failure
    assert finding(21).matches(failure["signature"], {"abs", "greater_equal"})


@pytest.mark.slow
def test_a_reproducer_rebuilds_the_special_inputs(tmp_path):
    source = "import jax.numpy as jnp\n\n\ndef f(x):\n    return jnp.sign(x) * 2.0\n"
    failure = {"stage": "jit_eager", "signature": "jit_eager:value:float32", "message": "-"}
    script = reproducer(source, "f", [((64,), "float32")], failure, "test", 3,
                        recipe=SPECIAL_RECIPE)
    assert re.search(r"SPECIAL = True\b", script) and "def with_specials" in script
    path = tmp_path / "repro.py"
    exit_line = "    sys.exit(1 if bad else 0)"
    assert exit_line in script
    path.write_text(script.replace(exit_line, "    np.save(sys.argv[1], inputs[0])\n" + exit_line))
    out = tmp_path / "x.npy"
    done = subprocess.run([sys.executable, str(path), str(out)], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr  # eager and jit agree: exit 0, inputs saved
    want, = make_inputs([((64,), "float32")], 3, SPECIAL_RECIPE)
    assert np.array_equal(np.load(out), want, equal_nan=True)


ARGMAX_OF_A_MADE_NAN = """import jax
import jax.numpy as jnp
from jax import lax


def f(scale):
    h = jnp.log(jnp.zeros((3, 1), dtype=jnp.bfloat16))
    act = jnp.cos(h)  # cos(-inf): a NaN the program makes on plain inputs

    def norm_argmax(acc, cur):
        acc_v, acc_i = acc
        cur_v, cur_i = cur
        pick = (cur_v > acc_v) | ((cur_v == acc_v) & (cur_i < acc_i))
        return jnp.where(pick, cur_v, acc_v), jnp.where(pick, cur_i, acc_i)

    norm, stat = lax.reduce(
        (lax.stop_gradient(act), lax.broadcasted_iota(jnp.int32, (3, 1), 1)),
        (jnp.array(-jnp.inf, dtype=jnp.bfloat16), 0),
        norm_argmax,
        (1,),
    )
    return norm, scale * 2.0 + {shift}
"""


@pytest.mark.parametrize("shift, verdicts", [
    ("0.0", ("benign: reduce_order", "pass")),  # XLA keeps the NaN, the interpreter -inf
    ("(1.0 if isinstance(scale, jax.core.Tracer) else 0.0)", ("failed",)),  # a finite one
])
def test_a_nan_the_program_makes_meeting_an_argmax_is_reduce_order(shift, verdicts,
                                                                    eager_always):
    """A 1,000-program default run's two new buckets (47 -> 3 and 51 -> 3 statements): a NaN
    made inside the program (cos(log(0)), arccos(2)) meets an argmax over a dimension of
    size 1, and XLA keeps it where the interpreter and the pass-less compile keep -inf. NaN
    against an infinity is excused; any other difference beside such a reduce is not."""
    from extract.interpreter import _jaxlib_version

    if _jaxlib_version() < (0, 11):  # where the run met it: the discrepancy is there
        verdicts = verdicts[:1]
    source = ARGMAX_OF_A_MADE_NAN.replace("{shift}", shift)
    oracle = "jit_eager" if "Tracer" in shift else "interpreter"
    record = extract_in_process(source, "f", [((), "float32")], seed=3, grad=False,
                                oracles=[oracle])
    assert record["oracles"][oracle] in verdicts, record.get("failure")


BITCAST_SUBNORMALS = """import jax
import jax.numpy as jnp
from jax import lax


def f(seq):
    out = lax.bitcast_convert_type(jnp.ones((3, 2, 5), dtype=jnp.int32), jnp.float32)

    def cond_fn(carry):
        return jnp.maximum(jnp.ones((3, 2, 5), dtype=jnp.float32), 1.0)

    def cond_fn2(carry2):
        return carry2

    return lax.cond(jnp.sum(out) > 0, cond_fn, cond_fn2, out)
"""


@pytest.mark.parametrize("planted, verdict", [(False, "benign: subnormal_flush"),
                                              (True, "failed")])
def test_subnormals_a_bitcast_makes_are_flushed_as_xla_cpu_does(planted, verdict,
                                                                monkeypatch):
    """A 1,000-program default run's bucket (29 -> 3 statements): bitcast(1) is a subnormal
    float32; XLA:CPU (jaxlib 0.10.2) reads it as zero, so the sum is 0 and lax.cond takes
    the other branch, where the interpreter's sum is positive. Flushed in the interpreter,
    they agree; a real difference (planted in the interpreter's run) still fails."""
    import extract.interpreter

    if extract.interpreter._jaxlib_version() >= (0, 11):
        pytest.skip("jaxlib 0.12's XLA:CPU agrees with the interpreter on this program")
    if planted:  # the reference computes otherwise, flushed or not
        real = extract.interpreter.run_module
        monkeypatch.setattr(extract.interpreter, "run_module",
                            lambda *a, **k: [x + 1 for x in real(*a, **k)])
    record = extract_in_process(BITCAST_SUBNORMALS, "f", [((3,), "float32")], seed=3,
                                grad=False, oracles=["interpreter"])
    assert record["oracles"]["interpreter"] == verdict, record.get("failure")
