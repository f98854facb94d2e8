"""64-bit programs (grammar.x64): drawn with float64 and int64 values, extracted, checked
and reproduced under jax_enable_x64, replayed from their records."""

from __future__ import annotations

import json
import subprocess
import sys

import jax
import pytest
from hypothesis import given
from hypothesis import strategies as st

from extract import extract_in_process
from extract.args import flatten_args, needs_x64, normalize_args
from fuzz.triage.repro import reproducer
from grammar import programs
from grammar.ops import OPS
from grammar.types import WIDE, X64_PARAM_DTYPES
from grammar.x64 import X64_EXCLUDED, X64_FAMILIES


@given(programs(x64=1))
def test_a_64_bit_program_takes_64_bit_values_and_ops_that_take_them(program):
    dtypes = [d for _, d in flatten_args(normalize_args(program.args))]
    assert set(dtypes) <= set(X64_PARAM_DTYPES) and dtypes[0] in WIDE
    assert needs_x64(flatten_args(normalize_args(program.args)))
    for op in program.ops:
        assert OPS[op].family in X64_FAMILIES or not WIDE.keys() & OPS[op].dtypes, op
        assert op not in X64_EXCLUDED


@given(programs(max_statements=6))
def test_an_ordinary_program_stays_32_bit(program):
    assert not needs_x64(flatten_args(normalize_args(program.args)))
    assert "float64" not in program.source and "int64" not in program.source


@given(programs(x64=1, max_statements=5), st.integers(0, 2**31))
def test_a_64_bit_program_extracts_checks_and_computes_in_64_bits(program, seed):
    record = extract_in_process(program.source, program.entry, program.args, seed=seed,
                                oracles=["interpreter", "unsimplified", "vmap", "autodiff"])
    assert record["status"] == "ok" or record["failure"]["known"], record.get("failure")
    assert "xf64>" in record["stablehlo"] or "xi64>" in record["stablehlo"] or \
        "<f64>" in record["stablehlo"] or "<i64>" in record["stablehlo"]
    assert not jax.config.jax_enable_x64  # turned on for the program only


SOURCE = """import jax
import jax.numpy as jnp


def f(x, i):
    y = jnp.sin(x) + i
    if isinstance(x, jax.core.Tracer):
        y = y + 1e-12  # below float32's resolution of y, far above float64's
    return y
"""


def test_float64_precision_is_what_the_oracles_judge(tmp_path, eager_always):
    # a difference float32 cannot hold: a 32-bit run would round it away, so the program
    # must run under x64 in the oracle and in the reproducer alike
    args = [((3,), "float64"), ((3,), "int64")]
    record = extract_in_process(SOURCE, "f", args, seed=3, grad=False, oracles=["jit_eager"])
    assert record["outputs"][0]["dtype"] == "float64"
    assert record["failure"]["signature"] == "jit_eager:value:float64", record.get("failure")
    script = reproducer(SOURCE, "f", args, record["failure"], "test", 3)
    assert 'jax.config.update("jax_enable_x64", True)' in script
    path = tmp_path / "repro.py"
    path.write_text(script)
    done = subprocess.run([sys.executable, str(path)], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 1 and "float64" in done.stdout, done.stdout + done.stderr


@pytest.mark.slow
def test_a_64_bit_run_stores_records_that_replay(tmp_path):
    corpus = tmp_path / "corpus"
    done = subprocess.run([sys.executable, "-m", "fuzz", "--budget", "4x", "--seed", "3",
                           "--x64", "1", "--workers", "1", "--quiet", "--corpus", str(corpus),
                           "--oracle-rate", "interpreter=1,vmap=1,autodiff=1"],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    records = [json.loads(line) for shard in sorted(corpus.glob("shard-*.jsonl"))
               for line in shard.read_text().splitlines()]
    assert records and all(needs_x64(flatten_args(normalize_args(r["args"]))) for r in records)
    replayed = subprocess.run([sys.executable, "-m", "fuzz", "replay", str(corpus)],
                              capture_output=True, text=True, timeout=600)
    assert replayed.returncode == 0 and "regress" not in replayed.stdout.split("-")[0], \
        replayed.stdout + replayed.stderr


def test_a_float64_output_of_a_module_that_computes_in_float32_is_judged_as_float32(
        eager_always):
    # dot_product_attention takes its softmax in float32: XLA and the interpreter differ by
    # 1e-7 in a float64 program, float32 rounding, not a wrong value; a float64 module is
    # held to float64's tolerance
    attention = """import jax
import jax.numpy as jnp


def f(q):
    return jax.nn.dot_product_attention(q, q, q) * 1.0
"""
    exact = """import jax
import jax.numpy as jnp


def f(q):
    y = jnp.sin(q)
    if isinstance(q, jax.core.Tracer):
        y = y + 1e-10  # far below float32's tolerance, far above float64's
    return y
"""
    args = [((2, 5, 2, 4), "float64")]
    record = extract_in_process(attention, "f", args, seed=5, grad=False,
                                oracles=["interpreter"])
    assert record["oracles"]["interpreter"] == "pass", record.get("failure")
    record = extract_in_process(exact, "f", args, seed=5, grad=False, oracles=["jit_eager"])
    assert record["failure"]["signature"] == "jit_eager:value:float64", record["oracles"]
