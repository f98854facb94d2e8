"""Inputs (the seeded recipe), output summaries and the comparison with stated tolerances."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys

import ml_dtypes
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from extract import RECIPE, compare_arrays, compare_summaries, make_inputs, summarize, tolerance
from extract.values import GRAD_RTOL, VALUE_RTOL

ARGS = [((4, 3), "float32"), ((5,), "int32"), ((3,), "bool"), ((2,), "bfloat16"),
        ((2, 2), "float16"), ((3,), "uint8")]
# sha256 of the arrays' bytes for ARGS and seed 12345: fixed by the recipe on every platform.
GOLDEN = "d66c3ff38c9ec86ba49400d1f2bfdd326b5a5bd30495e260c1636972a6b6ca1a"


def _digest(arrays) -> str:
    return hashlib.sha256(b"".join(x.tobytes() for x in arrays)).hexdigest()


def test_inputs_match_the_recipe_golden_digest():
    assert RECIPE == "jaxsmith-inputs/1"
    xs = make_inputs(ARGS, 12345)
    assert [(x.shape, x.dtype.name) for x in xs] == list(ARGS)
    assert _digest(xs) == GOLDEN
    assert xs[1].tolist() == [3, 0, -2, -1, 2]


def test_inputs_are_identical_in_another_process():
    code = ("import hashlib; from extract import make_inputs; "
            f"xs = make_inputs({ARGS!r}, 12345); "
            "print(hashlib.sha256(b''.join(x.tobytes() for x in xs)).hexdigest())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == GOLDEN


@given(st.integers(0, 2**63 - 1), st.sampled_from(["float32", "float16", "bfloat16"]))
def test_float_inputs_stay_off_the_kinks(seed, dtype):
    (x,) = make_inputs([((64,), dtype)], seed)
    v = x.astype(np.float64)
    assert np.all((np.abs(v) >= 0.25) & (np.abs(v) < 2.0))
    # odd multiples of 1/128: never an integer or half-integer, exact in every float dtype
    assert np.all((v * 128) % 2 == 1)
    assert np.array_equal(v, make_inputs([((64,), "float32")], seed)[0])


def test_inputs_reject_bad_seeds_and_dtypes():
    for seed in (-1, 2**63, 1.5, True):
        with pytest.raises(ValueError, match="seed="):
            make_inputs([((2,), "float32")], seed)
    with pytest.raises(ValueError, match="complex256"):
        make_inputs([((2,), "complex256")], 0)
    assert make_inputs([((0, 3), "float32")], 0)[0].shape == (0, 3)


def test_complex_inputs_pair_two_float_draws_and_keep_leaf_order():
    (z,) = make_inputs([((3, 2), "complex64")], 7)
    (words,) = make_inputs([((12,), "float32")], 7)  # the same stream, 2n words
    assert z.dtype == np.complex64 and z.shape == (3, 2)
    assert np.array_equal(z.real.reshape(-1), words[:6])
    assert np.array_equal(z.imag.reshape(-1), words[6:])
    # a pytree argument counts each leaf: the same arrays as the flat args in leaf order
    tree = make_inputs([[[2], "float32"], {"w": [[3], "int32"], "b": [[], "bool"]}], 5)
    flat = make_inputs([[[2], "float32"], [[], "bool"], [[3], "int32"]], 5)
    assert all(np.array_equal(a, b) for a, b in zip(tree, flat, strict=True))


def test_complex_outputs_compare_and_summarize_as_their_real_view():
    a = np.array([1 + 2j, 3 - 1j], np.complex64)
    assert tolerance("complex64") == tolerance("float32")
    assert compare_arrays(a, a * np.complex64(1 + 1e-7)) is None
    assert "flat index 3" in compare_arrays(a, a + np.complex64(0.1j))  # imag of element 1
    s = summarize(a)
    assert (s["shape"], s["dtype"], s["sum"], s["abs_sum"]) == ([2], "complex64", 5.0, 7.0)
    assert [v for _, v in s["samples"]] == [1.0, 2.0, 3.0, -1.0]
    assert compare_summaries([s], [summarize(a + np.complex64(1e-9))]) is None


def test_summary_fields_positions_and_json():
    x = np.arange(20, dtype=np.float32).reshape(4, 5)
    x[0, 0] = np.nan
    s = summarize(x)
    assert s["shape"] == [4, 5] and s["dtype"] == "float32" and s["nonfinite"] == 1
    assert s["sum"] == float(np.arange(1, 20).sum()) and s["abs_sum"] == s["sum"]
    assert [i for i, _ in s["samples"]] == [0, 3, 5, 8, 11, 14, 16, 19]
    assert s["samples"][0][1] is None and s["samples"][-1][1] == 19.0
    json.dumps(s, allow_nan=False)
    b = summarize(np.array([True, False]))
    assert b["samples"] == [[0, 1.0], [1, 0.0]] and b["dtype"] == "bool"
    h = summarize(np.array(1.5, ml_dtypes.bfloat16))
    assert h["shape"] == [] and h["samples"] == [[0, 1.5]]
    assert len(json.dumps([summarize(np.ones((64, 64), np.float32))] * 2)) < 1000


def test_tolerances_start_from_jax_and_state_their_widening():
    # JAX's own test tolerances (jax._src.public_test_util)
    assert VALUE_RTOL == {"float32": 1e-6, "float16": 1e-3, "bfloat16": 1e-2, "float64": 1e-15}
    assert GRAD_RTOL == {"float32": 2e-3, "float16": 1e-2, "bfloat16": 1e-1, "float64": 1e-5}
    assert tolerance("float32").rtol == pytest.approx(6.4e-5)
    assert tolerance("float64").rtol == pytest.approx(6.4e-14)  # 64 float64 ulps
    assert tolerance("int32").rtol == 0 and tolerance("bool").atol == 0
    assert tolerance("bfloat16", "grad").rtol == 0.1


def test_compare_is_normwise_exact_for_ints_and_nan_aware():
    want = np.array([1000.0, 1e-3], np.float32)
    # 0.01 off on the small element is 1000% relative to it, but 1e-5 of the norm: a
    # correct cancellation inside a program looks like this
    assert compare_arrays(np.array([1000.0, 1.1e-2], np.float32), want) is None
    assert "max |diff|" in compare_arrays(np.array([1000.5, 1e-3], np.float32), want)
    assert compare_arrays(np.array([np.nan, 1.0]), np.array([np.nan, 1.0])) is None
    assert "NaN pattern" in compare_arrays(np.array([np.nan, 1.0]), np.array([0.0, 1.0]))
    assert "+inf" in compare_arrays(np.array([np.inf]), np.array([-np.inf]))
    assert "1 of 2 elements differ" in compare_arrays(np.array([1, 2]), np.array([1, 3]))
    assert "want int32[2]" in compare_arrays(np.array([1.0, 2.0]), np.array([1, 2], np.int32))


def test_compare_summaries_tolerates_ulps_and_flags_changes():
    x = np.linspace(-2, 2, 50, dtype=np.float32)
    same = [summarize(x)]
    ulp = [summarize(np.nextafter(x, np.float32(10)))]
    assert compare_summaries(ulp, same) is None
    moved = [summarize(x * 1.01)]
    assert "recorded" in compare_summaries(moved, same)
    assert "outputs" in compare_summaries(same * 2, same)
    nan = x.copy()
    nan[3] = np.nan
    assert "non-finite" in compare_summaries([summarize(nan)], same)


def test_gradient_components_compare_against_the_whole_gradient():
    big = summarize(np.array([1.5, -2.0, 0.75], np.float32))
    residue = summarize(np.array([4.8e-6, 0.0], np.float32))  # a true zero, rounded
    zero = summarize(np.array([0.0, 0.0], np.float32))
    assert compare_summaries([big, zero], [big, residue], "grad") is None
    # as separate values, a residue is judged on the inputs' scale, 1: 40 ulps of it pass,
    # a thousandth does not
    assert compare_summaries([big, zero], [big, residue], "value") is None
    tenth = summarize(np.array([1e-3, 0.0], np.float32))
    assert compare_summaries([big, zero], [big, tenth], "value") is not None
    assert compare_summaries([big, summarize(np.array([0.1, 0.0], np.float32))],
                             [big, residue], "grad") is not None


def test_a_small_reference_is_judged_on_the_inputs_scale():
    zeros = np.zeros(4, np.float32)
    residue = np.full(4, 9.536743e-07, np.float32)  # jit's lgamma(2) in float32: 8 ulps of 1
    assert compare_arrays(residue, zeros) is None
    assert compare_arrays(residue, zeros + np.float32(4.768e-7)) is None  # the interpreter's
    assert compare_arrays(zeros + np.float32(1e-4), zeros) is not None  # 839 ulps of 1
    big = np.full(4, 1e3, np.float32)  # a larger reference keeps its own scale
    assert compare_arrays(big + np.float32(0.07), big) is not None


def test_jit_and_eager_lgamma_at_its_zero_pass_the_oracle():
    # the residue above, from the programs that raised it in a 30-minute run, reduced
    from extract import extract_in_process

    source = "import jax.numpy as jnp\nfrom jax import lax\n\n\ndef f(x):\n" \
             "    return lax.lgamma(jnp.abs(jnp.ones((1, 2), jnp.float32)) + 1.0) + 0 * x\n"
    rec = extract_in_process(source, "f", [((1, 2), "float32")], grad=False,
                             oracles=["jit_eager", "interpreter"])
    assert rec["status"] == "ok", rec.get("failure")


def test_a_summary_of_the_largest_float64_values_stays_json():
    # a 64-bit program on special inputs returns 1.8e308s: their sum is held to float64's
    # range, not inf (a corpus record must be JSON; found by a --x64 1 run on jax 0.12)
    import json

    biggest = np.finfo(np.float64).max
    summary = summarize(np.array([biggest, biggest, -biggest, np.inf, 1.0]))
    json.dumps(summary, allow_nan=False)
    assert summary["sum"] == summary["abs_sum"] == biggest and summary["nonfinite"] == 1
    assert summarize(np.array([1.5, 2.25]))["sum"] == 3.75
