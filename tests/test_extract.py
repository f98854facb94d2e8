"""Tests for extract/: every field of a record, clean artifacts, determinism and dedup
(failures and signatures: tests/test_failures.py; the worker pool: tests/test_pool.py)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import jax
import jax.numpy as jnp
import pytest

from extract import (
    canonical_stablehlo,
    extract_in_process,
    ir_hash,
)
from extract.clean import clean_hlo, clean_jaxpr, clean_mlir
from extract.oracles import ORACLES

ROOT = Path(__file__).resolve().parents[1]
F32 = "float32"


def src(text: str) -> str:
    return textwrap.dedent(text).lstrip()


# name -> (source, entry, args, gradient expected)
PROGRAMS: dict[str, tuple[str, str, list, bool]] = {
    "elementwise": (
        src("""
        import jax.numpy as jnp

        def f(x, y):
            return jnp.sin(x) * y + jnp.exp(-x)
        """),
        "f", [((3, 4), F32), ((3, 4), F32)], True,
    ),
    "reduction": (
        src("""
        import jax.numpy as jnp

        def f(x):
            return x.sum(axis=0), jnp.max(x, axis=1), x.mean()
        """),
        "f", [((5, 6), F32)], True,
    ),
    "matmul": (
        src("""
        def f(a, b):
            return a @ b
        """),
        "f", [((4, 3), F32), ((3, 2), F32)], True,
    ),
    "fori_loop": (
        src("""
        import jax.numpy as jnp
        from jax import lax

        def f(x):
            return lax.fori_loop(0, 4, lambda i, c: c * 0.5 + jnp.cos(c), x)
        """),
        "f", [((8,), F32)], True,
    ),
    "scan": (
        src("""
        import jax.numpy as jnp
        from jax import lax

        def f(xs):
            def step(c, x):
                c = jnp.tanh(c + x)
                return c, c * 2
            return lax.scan(step, jnp.zeros(xs.shape[1:], xs.dtype), xs)
        """),
        "f", [((6, 3), F32)], True,
    ),
    "cond": (
        src("""
        from jax import lax

        def f(x, y):
            return lax.cond(x.sum() > 0, lambda a, b: a * b, lambda a, b: a - b, x, y)
        """),
        "f", [((5,), F32), ((5,), F32)], True,
    ),
    "vmap": (
        src("""
        import jax
        import jax.numpy as jnp

        def f(a, b):
            return jax.vmap(lambda r, s: jnp.dot(r, s) * r)(a, b)
        """),
        "f", [((7, 3), F32), ((7, 3), F32)], True,
    ),
    "inner_grad": (
        src("""
        import jax
        import jax.numpy as jnp

        def f(w, x):
            loss = lambda w: jnp.mean(jnp.tanh(x @ w) ** 2)
            return w - 0.1 * jax.grad(loss)(w)
        """),
        "f", [((4, 2), F32), ((8, 4), F32)], True,
    ),
    "mixed_pytree_bf16": (
        src("""
        import jax
        import jax.numpy as jnp

        @jax.jit
        def helper(x):
            return jnp.tanh(x)

        def f(x, n):
            y = helper(x) * 2
            return {"y": y, "pos": y > 0, "n": n + 1}
        """),
        "f", [((2, 3), "bfloat16"), ((), "int32")], True,
    ),
    "int_only": (
        src("""
        import jax.numpy as jnp

        def f(i, j):
            return jnp.bitwise_xor(i, j) + 1, i < j
        """),
        "f", [((4,), "int32"), ((4,), "int32")], False,
    ),
}

FORWARD = ("jaxpr", "stablehlo", "hlo", "hlo_optimized")
BACKWARD = ("grad_jaxpr", "grad_stablehlo", "grad_hlo", "grad_hlo_optimized")
TEXT_FIELDS = FORWARD + BACKWARD


@pytest.fixture(scope="module")
def records() -> dict[str, dict]:
    return {name: extract_in_process(s, e, a) for name, (s, e, a, _) in PROGRAMS.items()}


# -- fields --------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(PROGRAMS))
def test_every_field_present(records, name):
    rec = records[name]
    wants_grad = PROGRAMS[name][3]
    assert rec["status"] == "ok", rec.get("failure")
    for key in FORWARD:
        assert isinstance(rec[key], str) and rec[key].strip(), key
    assert re.fullmatch(r"[0-9a-f]{16}", rec["stablehlo_hash"])
    assert {"flops", "bytes accessed"} <= set(rec["cost"])
    assert list(rec["cost"]) == sorted(rec["cost"])
    assert all(type(v) is float for v in rec["cost"].values())
    assert set(rec["versions"]) == {"jax", "jaxlib", "jaxsmith"}
    assert rec["versions"]["jax"] == jax.__version__
    assert rec["backend"] == jax.default_backend()
    stages = ["trace", "lower", "compile", "run", "interpreter", "unsimplified", "vmap",
              "jit_eager", "symbolic", "pallas"]
    if wants_grad:
        assert rec["grad_skipped"] is None
        for key in BACKWARD:
            assert isinstance(rec[key], str) and rec[key].strip(), key
        assert rec["grad_cost"]
        stages += ["grad_trace", "grad_lower", "grad_compile", "grad_run"]
        assert len(rec["grad_outputs"]) == sum(jnp.issubdtype(d, jnp.floating)
                                               for _, d in PROGRAMS[name][2])
    else:
        assert rec["grad_skipped"] == "no floating parameter"
        assert not set(BACKWARD + ("grad_cost", "grad_outputs")) & set(rec)
    stages.append("autodiff")
    assert list(rec["timings"]) == stages
    assert rec["inputs"] == {"seed": 0, "recipe": "jaxsmith-inputs/1"}
    assert rec["outputs"] and all(set(o) == {"shape", "dtype", "nonfinite", "sum", "abs_sum",
                                             "samples"} for o in rec["outputs"])
    assert set(rec["oracles"]) == set(ORACLES)
    assert all(v.startswith(("pass", "skipped: ", "benign: "))
               for v in rec["oracles"].values()), rec["oracles"]
    assert all(t > 0 for t in rec["timings"].values())
    json.dumps(rec)  # JSON-ready


def test_grad_differentiates_float_args_only(records):
    rec = records["mixed_pytree_bf16"]
    # one floating parameter (x: bf16[2,3]); the int parameter gets no cotangent
    assert "-> (tensor<2x3xbf16>" in rec["grad_stablehlo"]
    assert rec["grad_stablehlo"].startswith("module @jit_f_grad ")


def test_grad_skip_reasons():
    source = "def f(x):\n    return x > 0\n"
    rec = extract_in_process(source, "f", [((3,), F32)])
    assert rec["status"] == "ok" and rec["grad_skipped"] == "no floating output"
    rec = extract_in_process(PROGRAMS["matmul"][0], "f", PROGRAMS["matmul"][2], grad=False)
    assert rec["grad_skipped"] == "disabled" and "grad_jaxpr" not in rec


def test_jaxpr_is_make_jaxpr_text(records):
    for name in ("scan", "inner_grad", "mixed_pytree_bf16"):
        source, entry, args, _ = PROGRAMS[name]
        ns: dict = {}
        exec(compile(source, "<jaxsmith>", "exec"), ns)
        avals = [jax.ShapeDtypeStruct(s, d) for s, d in args]
        jaxpr = jax.make_jaxpr(ns[entry])(*avals)
        assert records[name]["jaxpr"] == jaxpr.pretty_print(use_color=False)
    colored = jaxpr.pretty_print(use_color=True)
    assert "\x1b[" in colored and clean_jaxpr(colored) == records[name]["jaxpr"]


# -- clean artifacts -----------------------------------------------------------------------

_HOST_PATH = re.compile(r"(?<![\w<>])/[\w.-]+/|\.py\b")


@pytest.mark.parametrize("name", list(PROGRAMS))
def test_artifacts_are_clean(records, name):
    rec = records[name]
    for key in TEXT_FIELDS:
        text = rec.get(key, "")
        assert not _HOST_PATH.search(text), (key, _HOST_PATH.search(text))
        for bad in ("loc(", "#loc", "source_file", "source_line", "metadata=", "StackFrames",
                    "FileNames", "<jaxsmith>", "0x7f", "\x1b"):
            assert bad not in text, (key, bad)
        # nothing from the extractor's own call stack
        for ours in ("summed", "extract", "jaxsmith_program", "<lambda>_grad"):
            assert ours not in text, (key, ours)


def test_clean_hlo_removes_nested_metadata_and_tables():
    text = (
        'HloModule jit_f\n\nFileNames\n1 "/home/u/x.py"\n\nStackFrames\n1 {file_location_id=1}\n'
        '\nENTRY %main {\n'
        '  %a = f32[] parameter(0), metadata={op_name="jit(f)/{x}" source_file="/tmp/a.py" '
        'source_line=3}\n'
        '  ROOT %b = f32[] add(%a, %a), metadata={op_name="a, b}"}, '
        'backend_config={"k":1}\n}\n'
    )
    out = clean_hlo(text)
    assert out == (
        "HloModule jit_f\n\nENTRY %main {\n  %a = f32[] parameter(0)\n"
        '  ROOT %b = f32[] add(%a, %a), backend_config={"k":1}\n}\n'
    )


def test_clean_mlir_removes_locations():
    text = (
        '#loc1 = loc("/tmp/prog.py":3:4)\nmodule @jit_f {\n'
        "  %0 = stablehlo.add %a, %a : tensor<f32> loc(#loc1)\n"
        '  %1 = stablehlo.sine %0 : tensor<f32> loc(callsite("f"("<jaxsmith>":2:0) at #loc1))\n'
        "} loc(#loc)\n#loc = loc(unknown)\n"
    )
    assert clean_mlir(text) == (
        "module @jit_f {\n  %0 = stablehlo.add %a, %a : tensor<f32>\n"
        "  %1 = stablehlo.sine %0 : tensor<f32>\n}\n"
    )


# -- determinism and dedup -----------------------------------------------------------------

_CHILD = """
import json, sys
sys.path.insert(0, sys.argv[1])
from extract.core import extract_in_process
progs = json.load(sys.stdin)
out = {n: extract_in_process(s, e, a) for n, (s, e, a) in progs.items()}
json.dump({n: {k: v for k, v in r.items() if k != "timings"} for n, r in out.items()}, sys.stdout)
"""


@pytest.mark.slow
def test_byte_identical_across_processes(records):
    names = ["fori_loop", "mixed_pytree_bf16", "int_only"]
    payload = json.dumps({n: PROGRAMS[n][:3] for n in names})
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD, str(ROOT)],
        input=payload, capture_output=True, text=True, timeout=120, check=True,
    )
    child = json.loads(proc.stdout)
    for n in names:
        mine = json.loads(json.dumps({k: v for k, v in records[n].items() if k != "timings"}))
        assert child[n] == mine, n


def test_rerun_in_process_is_identical(records):
    source, entry, args, _ = PROGRAMS["scan"]
    again = extract_in_process(source, entry, args)
    for key in (*TEXT_FIELDS, "stablehlo_hash", "cost", "grad_cost"):
        assert again[key] == records["scan"][key], key


def test_duplicate_skips_compile(records):
    source, entry, args, _ = PROGRAMS["matmul"]
    h = records["matmul"]["stablehlo_hash"]
    rec = extract_in_process(source, entry, args, skip_hashes={h})
    assert rec["status"] == "duplicate" and rec["stablehlo_hash"] == h
    assert list(rec["timings"]) == ["trace", "lower"]
    assert "hlo_optimized" not in rec and "grad_jaxpr" not in rec


def test_hash_ignores_function_names():
    a = src("""
        import jax
        import jax.numpy as jnp

        @jax.jit
        def helper(x):
            return jnp.sin(x)

        def first(x):
            return helper(x) + 1
        """)
    b = a.replace("helper", "other_name").replace("first", "second")
    ra = extract_in_process(a, "first", [((3,), F32)], grad=False)
    rb = extract_in_process(b, "second", [((3,), F32)], grad=False)
    assert ra["stablehlo"] != rb["stablehlo"]
    assert ra["stablehlo_hash"] == rb["stablehlo_hash"]
    assert canonical_stablehlo(ra["stablehlo"]) == canonical_stablehlo(rb["stablehlo"])
    rc = extract_in_process(a.replace("jnp.sin", "jnp.cos"), "first", [((3,), F32)], grad=False)
    assert rc["stablehlo_hash"] != ra["stablehlo_hash"]
    assert ir_hash(ra["stablehlo"]) == ra["stablehlo_hash"]
