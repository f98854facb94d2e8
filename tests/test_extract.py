"""Tests for extract/: artifacts, cleanliness, determinism, failures, signatures, the pool."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import jax
import jax.numpy as jnp
import pytest
from hypothesis import given
from hypothesis import strategies as st

from extract import (
    KNOWN,
    ExtractorPool,
    canonical_stablehlo,
    classify,
    compare_summaries,
    extract,
    extract_in_process,
    ir_hash,
    signature,
)
from extract.clean import clean_hlo, clean_jaxpr, clean_mlir
from extract.crash_log import abort_site
from extract.failures import STAGES
from extract.oracles import ORACLES
from extract.pool import merge_xla_flags

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
    stages = ["trace", "lower", "compile", "run", "unsimplified", "interpreter", "vmap",
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


# -- failures ------------------------------------------------------------------------------

# KNOWN name -> (source, entry, args, stage where it surfaces[, polymorphic shapes])
BARE_PRIMITIVE = src("""
    from jax.extend.core import Primitive
    from jax.interpreters import mlir

    identity_p = Primitive("identity_without_rules")
    identity_p.def_impl(lambda x: x)
    identity_p.def_abstract_eval(lambda x: x)
    mlir.register_lowering(identity_p, lambda ctx, x: [x])
    """)

TRIGGERS: dict[str, tuple] = {
    "grad_scatter_mul": (
        src("""
        import jax.numpy as jnp

        def f(x, v):
            return x.at[jnp.array([0, 0])].multiply(v)
        """),
        "f", [((3,), F32), ((2,), F32)], "grad_trace",
    ),
    "grad_dynamic_loop": (
        src("""
        from jax import lax

        def f(x, n):
            return lax.fori_loop(0, n, lambda i, c: c * 1.5, x)
        """),
        "f", [((4,), F32), ((), "int32")], "grad_trace",
    ),
    "grad_integer_input": (
        src("""
        import jax

        def f(x):
            return jax.grad(lambda y: (y * 2).sum())(x)
        """),
        "f", [((4,), "int32")], "trace",
    ),
    "grad_non_scalar_output": (
        src("""
        import jax

        def f(x):
            return jax.grad(lambda y: y * 2)(x)
        """),
        "f", [((4,), F32)], "trace",
    ),
    "grad_integer_output": (
        src("""
        import jax
        import jax.numpy as jnp

        def f(x):
            return jax.grad(lambda y: (y * 2).sum().astype(jnp.int32))(x)
        """),
        "f", [((4,), F32)], "trace",
    ),
    "grad_pure_callback": (
        src("""
        import jax
        import numpy as np

        def f(x):
            return jax.pure_callback(np.sin, jax.ShapeDtypeStruct(x.shape, x.dtype), x)
        """),
        "f", [((4,), F32)], "grad_trace",
    ),
    # a primitive with an implementation and a lowering, but no JVP and no batching rule
    "grad_rule_missing": (
        BARE_PRIMITIVE + src("""
        def f(x):
            return identity_p.bind(x) * 2.0
        """),
        "f", [((4,), F32)], "grad_trace",
    ),
    "grad_eig": (
        src("""
        import jax.numpy as jnp

        def f(a):
            return jnp.real(jnp.linalg.eig(a)[1])
        """),
        "f", [((3, 3), F32)], "grad_trace",
    ),
    "xla_cpu_collective_reduction": (
        src("""
        import jax
        from jax import lax

        def f(x):
            mesh = jax.make_mesh((2, 4), ('x', 'y'), axis_types=(jax.sharding.AxisType.Auto,
                                                                 jax.sharding.AxisType.Auto))
            t = lax.with_sharding_constraint(x, jax.NamedSharding(mesh, jax.P('x')))
            return lax.reduce(t, 0, lax.bitwise_or, (0,))
        """),
        "f", [((4,), "int32")], "compile",
    ),
    "checkpoint_policy_complex": (
        src("""
        import jax
        import jax.numpy as jnp

        def f(t, x):
            def body(c):
                z = jnp.fft.rfft(x)
                return jnp.real(z * jnp.conj(z))
            return jax.checkpoint(body, policy=jax.checkpoint_policies.everything_saveable)(t)
        """),
        "f", [((), F32), ((4,), F32)], "grad_trace",
    ),
    "vmap_rule_missing": (
        BARE_PRIMITIVE + src("""
        import jax

        def f(x):
            return jax.vmap(identity_p.bind)(x)
        """),
        "f", [((4,), F32)], "trace",
    ),
    "vmap_pure_callback": (
        src("""
        import jax
        import numpy as np

        def f(x):
            spec = jax.ShapeDtypeStruct((), x.dtype)
            return jax.vmap(lambda r: jax.pure_callback(np.sin, spec, r))(x)
        """),
        "f", [((4,), F32)], "trace",
    ),
    "eager_python_loop_index": (
        src("""
        from jax import lax

        def f(x):
            return lax.fori_loop(0, 2, lambda i, c: c + (i >> -1), x)
        """),
        "f", [((2,), "int32")], "jit_eager",
    ),
    "eager_pallas_kernel_constant": (  # grammar.ops_pallas's kernel, with an index array
        src("""
        import jax
        import jax.numpy as jnp
        from jax.experimental import pallas as pl

        def f(x):
            def body(c):
                return c.at[jnp.array([1, 0])].add(1.0)
            def kernel(x_ref, o_ref):
                o_ref[...] = jax.jit(body)(x_ref[...])
            return pl.pallas_call(kernel, out_shape=jax.ShapeDtypeStruct(x.shape, x.dtype),
                                  interpret=True)(x)
        """),
        "f", [((3,), F32)], "jit_eager",
    ),
    "jvp_of_custom_vjp": (
        src("""
        import jax
        import jax.numpy as jnp

        def f(x):
            def g(c):
                return jnp.sin(c)
            g_custom = jax.custom_vjp(g)
            def g_fwd(primal):
                return g(primal), primal
            def g_bwd(residual, cotangent):
                return jax.vjp(g, residual)[1](cotangent)
            g_rule = g_custom.defvjp(g_fwd, g_bwd)
            return g_custom(x)
        """),
        "f", [((3,), F32)], "autodiff",
    ),
    "xla_cpu_fft_layout": (
        src("""
        import jax.numpy as jnp
        from jax import lax

        def f(x, b):
            a = jnp.real(jnp.fft.rfft(x, axis=-1))
            return lax.linalg.triangular_solve(a, b, left_side=True, lower=False)
        """),
        "f", [((2, 2), F32), ((2, 1), F32)], "run",
    ),
    "grad_betainc_ab": (
        src("""
        import jax

        def f(a):
            return jax.scipy.special.betainc(a, 2.0, 0.5)
        """),
        "f", [((3,), F32)], "grad_trace",
    ),
    "export_batched_all_gather": (  # the fifth item: the entry's polymorphic shapes
        src("""
        import jax
        from jax import lax

        def f(xs):
            mesh = jax.make_mesh((2, 4), ('x', 'y'), axis_types=(jax.sharding.AxisType.Auto,
                                                                 jax.sharding.AxisType.Auto))
            gather = jax.shard_map(lambda c: lax.all_gather(c, 'x'), mesh=mesh,
                                   in_specs=jax.P('x'), out_specs=jax.P('x'), check_vma=False)
            return jax.vmap(gather)(xs)
        """),
        "f", [((3, 2, 7), F32)], "export", ["b, 2, 7"],
    ),
}


def test_every_known_entry_has_a_trigger():
    assert {k.name for k in KNOWN} == set(TRIGGERS)
    assert len({k.name for k in KNOWN}) == len(KNOWN)


@pytest.mark.parametrize("name", list(TRIGGERS))
def test_known_entry_is_triggered_and_labelled(name):
    source, entry, args, stage, *shapes = TRIGGERS[name]
    rec = extract_in_process(source, entry, args, polymorphic_shapes=shapes[0] if shapes else None)
    if stage in ORACLES:  # a limitation of the reference, not of the program: skipped
        assert rec["status"] == "ok", rec.get("failure")
        assert rec["oracles"][stage] == f"skipped: known JAX limitation {name}"
        return
    assert rec["status"] == "failed"
    failure = rec["failure"]
    assert failure["known"] == name, failure
    assert failure["stage"] == stage
    assert failure["signature"].startswith(f"{stage}:{failure['type']}:")
    if stage.startswith("grad_"):  # forward fields survive a backward failure
        for key in FORWARD:
            assert rec[key], key
        assert rec["grad_skipped"] is None
        assert list(rec["timings"])[:4] == ["trace", "lower", "compile", "run"]
    if name in ("grad_pure_callback", "grad_rule_missing"):  # the vmap oracle meets it first
        assert rec["oracles"]["vmap"].startswith("skipped: known JAX limitation vmap_")


def test_plain_while_loop_is_grad_dynamic_loop():
    source = src("""
        from jax import lax

        def f(x):
            return lax.while_loop(lambda c: c.sum() < 10.0, lambda c: c * 2.0, x)
        """)
    rec = extract_in_process(source, "f", [((3,), F32)])
    assert rec["failure"]["known"] == "grad_dynamic_loop"
    assert rec["failure"]["signature"] == extract_in_process(
        TRIGGERS["grad_dynamic_loop"][0], "f", TRIGGERS["grad_dynamic_loop"][2]
    )["failure"]["signature"]


@pytest.mark.parametrize(
    ("source", "entry", "exc_type"),
    [
        ("def f(x:\n    return x\n", "f", "SyntaxError"),
        ("def f(x):\n    return x\n", "g", "KeyError"),
        ("raise RuntimeError('at import')\n", "f", "RuntimeError"),
        ("import sys\ndef f(x):\n    sys.exit(3)\n", "f", "SystemExit"),
        ("import jax.numpy as jnp\ndef f(x):\n    return x + jnp.ones(4)\n", "f", "TypeError"),
    ],
)
def test_program_errors_are_trace_failures(source, entry, exc_type):
    rec = extract_in_process(source, entry, [((3,), F32)])
    assert rec["status"] == "failed"
    assert rec["failure"]["stage"] == "trace"
    assert rec["failure"]["type"] == exc_type
    assert rec["failure"]["known"] is None
    assert "jaxpr" not in rec


def test_invalid_args_raise():
    with pytest.raises(ValueError, match="dtype='floaty'"):
        extract_in_process("def f(x):\n    return x\n", "f", [((3,), "floaty")])
    with pytest.raises(ValueError, match=r"args\[0\] shape"):
        extract_in_process("def f(x):\n    return x\n", "f", [((-1,), F32)])


# -- signatures ----------------------------------------------------------------------------

NON_SCALAR_010 = "Gradient only defined for scalar-output functions. Output had shape: (4,)."
NON_SCALAR_012 = (
    "Gradient only defined for scalar-output functions. Output had shape: (4,). "
    "If you want to differentiate a non-scalar output, use jax.jacrev or jax.vjp."
)


def test_signature_survives_a_trailing_hint():
    a = signature("grad_trace", "TypeError", NON_SCALAR_010)
    assert a == signature("grad_trace", "TypeError", NON_SCALAR_012)
    assert a == signature("grad_trace", "TypeError", NON_SCALAR_010 + "\nSee the FAQ.")
    assert a == "grad_trace:TypeError:Gradient only defined for scalar-output functions"
    loop = "Reverse-mode differentiation does not work for lax.while_loop or lax.fori_loop "
    assert signature("grad_trace", "ValueError", loop + "with dynamic start/stop values.") == (
        signature("grad_trace", "ValueError", loop + "with dynamic start/stop values. Try using "
                  "lax.scan, or using fori_loop with static start/stop.")
    )


def test_signature_masks_instance_details():
    def sig(msg):
        return signature("trace", "TypeError", msg)

    assert sig("add got incompatible shapes for broadcasting: (3,), (4, 5).") == sig(
        "add got incompatible shapes for broadcasting: (7, 1), [2,2]."
    )
    assert sig("dot_general requires float32 operands, got int32 and bf16 for t12") == sig(
        "dot_general requires f16 operands, got uint8 and bfloat16 for body_3"
    )
    assert sig("Abstract tracer value encountered: traced array with shape float32[4,3]") == sig(
        "Abstract tracer value encountered: traced array with shape int32[]"
    )
    assert sig("unknown name 'foo' in function at /home/me/prog.py:12") == sig(
        'unknown name "bar_baz" in function at /tmp/other.py:7'
    )
    assert "1234" not in sig("index 1234 is out of bounds for axis 0 with size 5")


def test_signature_separates_different_bugs():
    sigs = {
        signature("grad_trace", "TypeError", NON_SCALAR_010),
        signature("trace", "TypeError", NON_SCALAR_010),
        signature("grad_trace", "ValueError", NON_SCALAR_010),
        signature("grad_trace", "TypeError", "grad requires real- or complex-valued inputs "
                  "(input dtype that is a sub-dtype of np.inexact), but got int32."),
        signature("trace", "TypeError", "add got incompatible shapes for broadcasting: (3,)."),
        signature("trace", "TypeError", "mul got incompatible shapes for broadcasting: (3,)."),
        signature("trace", "TypeError", "expm1 does not accept dtype int32."),
        signature("trace", "TypeError", "atan2 does not accept dtype int32."),
    }
    assert len(sigs) == 8


_shapes = st.lists(st.integers(0, 4096), max_size=4).map(tuple)
_dtypes = st.sampled_from(["float32", "int32", "bfloat16", "bool", "f32", "s8", "complex64"])


@given(_shapes, _shapes, _dtypes)
def test_signature_ignores_shapes_and_dtypes(s1, s2, dtype):
    msg = f"dot_general requires contracting dimensions to match, got {s1} and {s2} ({dtype})."
    assert signature("lower", "TypeError", msg) == signature(
        "lower", "TypeError", "dot_general requires contracting dimensions to match, "
        "got (1, 2) and (3,) (float16)."
    )


_hlo_string = st.text(alphabet='ab{}()[],= /"\\', max_size=30).map(
    lambda t: t.replace("\\", "\\\\").replace('"', '\\"')
)


@given(_hlo_string, _hlo_string)
def test_clean_hlo_removes_any_metadata(op_name, path):
    line = (f'  %x = f32[] add(%a, %b), metadata={{op_name="{op_name}" source_file="{path}" '
            f'source_line=3}}, sharding={{replicated}}\n')
    assert clean_hlo(line) == "  %x = f32[] add(%a, %b), sharding={replicated}\n"


def test_signature_is_short_and_truncation_keeps_distinct():
    long_a = "x" * 300 + " alpha"
    long_b = "x" * 300 + " beta"
    sa, sb = signature("lower", "E", long_a), signature("lower", "E", long_b)
    assert sa != sb and len(sa) < 150 and len(sb) < 150


def test_classify():
    f = classify("compile", RuntimeError("INTERNAL: something broke at /usr/lib/x.so"))
    assert f["stage"] == "compile" and f["type"] == "RuntimeError" and f["known"] is None
    assert "/usr" not in f["message"]
    assert set(f) == {"stage", "type", "message", "signature", "known"}
    with pytest.raises(ValueError, match="stage='bogus'"):
        classify("bogus", RuntimeError("x"))
    assert set(STAGES) == {"trace", "lower", "compile", "export", "run", "grad_trace",
                           "grad_lower", "grad_compile", "grad_run", "jit_eager", "autodiff",
                           "vmap", "interpreter", "unsimplified", "symbolic", "pallas"}


# -- the worker pool -----------------------------------------------------------------------

HANG = "import time\n\ndef f(*x):\n    time.sleep(100)\n    return x\n"
SEGV = "import os, signal\n\ndef f(*x):\n    os.kill(os.getpid(), signal.SIGSEGV)\n    return x\n"
ABORT = "import os\n\ndef f(*x):\n    os.abort()\n"
EXIT = "import os\n\ndef f(*x):\n    os._exit(3)\n"
# XLA's failed check as glog writes it (the first lines of one a 30-minute run met), then
# the abort: the worker's stderr says where
CHECK = ("import os, sys\n\ndef f(*x):\n    print('a warning before it', file=sys.stderr)\n"
         "    os.write(2, b'F1207 15:18:16.134914    4156 buffer_assignment_util.cc:46] Check "
         "failed: const_instr == nullptr (0x7f9a vs. (null))\\n*** Check failure stack trace:"
         " ***\\n')\n    os.abort()\n")


@pytest.mark.slow
def test_pool_survives_hang_and_crashes(records):
    ok_source, entry, args, _ = PROGRAMS["elementwise"]
    tasks = [
        ("ok1", ok_source), ("hang", HANG), ("ok2", ok_source), ("segv", SEGV),
        ("ok3", ok_source), ("abort", ABORT), ("exit", EXIT), ("ok4", ok_source),
    ]
    with ExtractorPool(1, timeout=60.0, max_tasks_per_worker=100) as pool:
        for task_id, source in tasks:
            pool.submit(task_id, source, entry, args,
                        timeout=1.5 if task_id == "hang" else None)
        got = dict(pool.results())
        assert pool.outstanding == 0
    assert set(got) == {t for t, _ in tasks}
    for t in ("ok1", "ok2", "ok3", "ok4"):
        assert got[t]["status"] == "ok", got[t].get("failure")
        # byte-identical to this process's extraction
        for key in (*TEXT_FIELDS, "stablehlo_hash", "cost", "grad_cost"):
            assert got[t][key] == records["elementwise"][key], (t, key)
    hang = got["hang"]["failure"]
    assert got["hang"]["status"] == "timeout"
    assert hang["stage"] == "trace" and hang["type"] == "Timeout"
    assert hang["signature"] == "timeout" and hang["known"] is None
    for t, sig in (("segv", "SIGSEGV"), ("abort", "SIGABRT")):
        assert got[t]["status"] == "crashed"
        f = got[t]["failure"]
        assert f["type"] == "Crash" and f["signal"] == sig and f["stage"] == "trace"
        assert f["signature"] == f"crashed:{sig}"
    assert got["exit"]["status"] == "crashed"
    assert got["exit"]["failure"]["signature"] == "crashed:exit3"


@pytest.mark.slow
def test_a_failed_check_names_its_site_in_the_signature(capfd):
    ok_source, entry, args, _ = PROGRAMS["elementwise"]
    with ExtractorPool(1, timeout=60.0) as pool:
        for task_id, source in (("check", CHECK), ("abort", ABORT), ("ok", ok_source)):
            pool.submit(task_id, source, entry, args)
        got = dict(pool.results())
        logs = [w.log for w in pool._workers]
    check = got["check"]["failure"]
    assert check["signature"] == "crashed:SIGABRT:buffer_assignment_util.cc:46"
    assert "at buffer_assignment_util.cc:46: Check failed: const_instr == nullptr" in \
        check["message"]
    # the next task starts with an empty log: a plain abort has no site
    assert got["abort"]["failure"]["signature"] == "crashed:SIGABRT"
    assert got["ok"]["status"] == "ok"
    assert "Check failed" not in capfd.readouterr().err  # the terminal stays the run's
    assert logs and not any(os.path.exists(p) for p in logs)  # removed with their workers


# jit and eager disagree (a tracer adds 1), and the culprit search aborts: the worker's
# module patched as XLA:CPU behaves on some modules with passes disabled
CULPRIT_ABORT = """import os
import extract.oracles

extract.oracles._culprit_pass = lambda *a: os.abort()


def f(x):
    return x + (1.0 if type(x).__name__.endswith("Tracer") else 0.0)
"""


@pytest.mark.slow
def test_a_crash_in_the_culprit_search_runs_the_task_again_without_it():
    with ExtractorPool(1, timeout=60.0, grad=False) as pool:
        pool.submit("t", CULPRIT_ABORT, "f", [((3,), F32)], oracles=["jit_eager"])
        (task_id, record), = pool.results()
    failure = record["failure"]
    # the program's own discrepancy, not the search's crash; the record says what stopped it
    assert failure["signature"] == "jit_eager:value:float32", failure
    assert "SIGABRT in stage jit_eager:culprit" in record["culprit_search"]


@pytest.mark.parametrize(("text", "site"), [
    ("W1207 warn.cc:1] no\nF1207 15:18:16.134914    4156 a_b.cc:46] Check failed: x == y\n",
     ("a_b.cc:46", "Check failed: x == y")),
    ("LLVM ERROR: Cannot select: 0x5\n", ("LLVM", "Cannot select: 0x5")),
    ("Segmentation fault\n", None),
    ("", None),
])
def test_abort_site_reads_glog_and_llvm(text, site):
    assert abort_site(text) == site


@pytest.mark.slow
def test_pool_dedup_recycling_and_shared_hashes():
    ok_source, entry, args, _ = PROGRAMS["matmul"]
    other = PROGRAMS["elementwise"]
    with ExtractorPool(1, grad=False, skip_hashes=(), max_tasks_per_worker=2) as pool:
        pool.submit(1, ok_source, entry, args)
        pool.submit(2, ok_source.replace("def f", "def g"), "g", args)  # same IR
        first = dict([next(pool.results())])  # stop early: the other result is kept
        first.update(pool.results())
        assert first[1]["status"] == "ok" and first[1]["grad_skipped"] == "disabled"
        assert first[2]["status"] == "duplicate"
        # the worker was recycled after 2 tasks; its replacement inherits the hashes
        pool.submit(3, ok_source, entry, args)
        # hashes found elsewhere can be shared
        h_other = extract_in_process(other[0], other[1], other[2], grad=False)["stablehlo_hash"]
        pool.add_skip_hashes([h_other])
        pool.submit(4, other[0], other[1], other[2])
        later = dict(pool.results())
    assert later[3]["status"] == "duplicate"
    assert later[4]["status"] == "duplicate" and later[4]["stablehlo_hash"] == h_other


@pytest.mark.slow
def test_pool_poll_validation_and_cache(tmp_path):
    with pytest.raises(ValueError, match="workers=0"):
        ExtractorPool(0)
    flags = "--xla_backend_optimization_level=0"
    with ExtractorPool(1, cache_dir=tmp_path, xla_flags=flags) as pool:
        with pytest.raises(ValueError, match="dtype"):
            pool.submit(1, "def f(x):\n    return x\n", "f", [((2,), "nope")])
        for bad in ("complex256", "V8", "V1000000000", "(1000,1000)float32"):
            with pytest.raises(ValueError, match=r"is not supported; accepted: bool, int8"):
                pool.submit(1, "def f(x):\n    return x\n", "f", [((2,), bad)])
        with pytest.raises(ValueError, match=r"too large: at most 8 dimensions"):
            pool.submit(1, "def f(x):\n    return x\n", "f", [((40000, 40000), F32)])
        with pytest.raises(ValueError, match="seed=-1"):
            pool.submit(1, "def f(x):\n    return x\n", "f", [((2,), F32)], seed=-1)
        assert pool.poll(0) == []
        pool.submit(1, "def f(x):\n    return x * 2\n", "f", [((2,), F32)])
        done = []
        while not done:
            done = pool.poll(30)
        assert done[0][0] == 1 and done[0][1]["status"] == "ok"
        assert any(tmp_path.iterdir())  # the persistent compilation cache was written
        # workers run with the pool's XLA flags in their environment
        pool.submit(2, "import os\n\ndef f(x):\n    raise ValueError(os.environ['XLA_FLAGS'])\n",
                    "f", [((2,), F32)])
        (_, rec), = pool.results()
        assert flags in rec["failure"]["message"]
        # workers ignore Ctrl-C (the parent handles it)
        pid = pool._workers[0].process.pid
        os.kill(pid, signal.SIGINT)
        pool.submit(3, "def f(x):\n    return x + 1\n", "f", [((2,), F32)])
        (_, rec), = pool.results()
        assert rec["status"] == "ok" and pool._workers[0].process.pid == pid
    with pytest.raises(RuntimeError, match="closed"):
        pool.submit(2, "def f(x):\n    return x\n", "f", [((2,), F32)])


@pytest.mark.slow
def test_public_extract_reuses_one_worker():
    rec = extract(PROGRAMS["cond"][0], "f", PROGRAMS["cond"][2])
    assert rec["status"] == "ok" and rec["grad_skipped"] is None
    rec = extract(HANG, "f", [((2,), F32)], timeout=1.0)
    assert rec["status"] == "timeout"
    rec = extract(PROGRAMS["int_only"][0], "f", PROGRAMS["int_only"][2], grad=False)
    assert rec["status"] == "ok" and rec["grad_skipped"] == "disabled"


def testmerge_xla_flags():
    assert merge_xla_flags(None, "--a=0") == "--a=0"
    assert merge_xla_flags("--b=1", "--a=0") == "--b=1 --a=0"
    assert merge_xla_flags("--a=2 --b=1", "--a=0") == "--a=2 --b=1"  # the user's flag wins
    assert merge_xla_flags("--b=1", None) == "--b=1"


def test_eager_python_loop_index_also_covers_array_methods():
    source = src("""
        from jax import lax

        def f(x):
            return lax.fori_loop(0, 2, lambda i, c: c + i.reshape((1,)), x)
        """)
    rec = extract_in_process(source, "f", [((1,), "int32")], oracles=["jit_eager"])
    assert rec["oracles"]["jit_eager"] == "skipped: known JAX limitation eager_python_loop_index"


@pytest.mark.slow
def test_extract_works_from_a_plain_script_without_a_main_guard(tmp_path):
    """Spawned workers never re-import the caller's __main__ (issue 13)."""
    script = tmp_path / "script.py"
    script.write_text(
        "import extract\n"
        "src = 'import jax.numpy as jnp\\n\\ndef f(x):\\n    return jnp.sin(x)\\n'\n"
        "rec = extract.extract(src, 'f', [((3,), 'float32')], oracles=[])\n"
        "print('STATUS', rec['status'])\n")
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "STATUS ok" in done.stdout and "bootstrapping" not in done.stderr


@pytest.mark.slow
@pytest.mark.parametrize("level, quiet", [(None, True), ("0", False)])
def test_workers_keep_xla_error_logs_off_the_terminal(tmp_path, level, quiet):
    """XLA logs an error with a C++ stack trace before raising it; the worker records the
    exception, so the trace is kept off the user's terminal unless they ask for logs. The
    script imports JAX first, as ``python -m fuzz`` does: ``import jax`` sets the level to 1
    where it is unset, which printed the trace of every such failure of a fuzz run."""
    source, entry, args, _ = TRIGGERS["xla_cpu_fft_layout"]
    script = tmp_path / "script.py"
    script.write_text("import jax\nimport extract\n"
                      f"rec = extract.extract({source!r}, {entry!r}, {args!r}, "
                      "oracles=[])\nprint('KNOWN', rec['failure']['known'])\n")
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    if level is not None:
        env["TF_CPP_MIN_LOG_LEVEL"] = level
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          timeout=300, cwd=tmp_path, env=env)
    assert "KNOWN xla_cpu_fft_layout" in done.stdout, done.stderr[-2000:]
    assert ("stack trace" not in done.stderr) == quiet, done.stderr[-2000:]


PYTREE = src("""
    import jax
    import jax.numpy as jnp
    from jax import lax


    def f(x0, params, batch):
        x2, x3 = batch
        t1 = x0 * params["w"] + x2
        t2 = jnp.sum(x3) + params["b"]
        return {"loss": t2, "out": t1}
    """)
PYTREE_ARGS = [[[3], F32], {"w": [[3], F32], "b": [[], F32]}, [[[3], F32], [[2], "int32"]]]


def test_pytree_arguments_extract_to_the_ir_of_the_pytree_program():
    rec = extract_in_process(PYTREE, "f", PYTREE_ARGS)
    assert rec["status"] == "ok", rec.get("failure")
    assert set(rec["oracles"].values()) <= {
        "pass", "skipped: too small", "skipped: not exported over symbolic shapes",
        "skipped: no Pallas kernel"}, rec["oracles"]
    assert rec["grad_skipped"] is None
    namespace: dict = {}
    exec(PYTREE, namespace)
    tree = (jax.ShapeDtypeStruct((3,), jnp.float32),
            {"w": jax.ShapeDtypeStruct((3,), jnp.float32),
             "b": jax.ShapeDtypeStruct((), jnp.float32)},
            (jax.ShapeDtypeStruct((3,), jnp.float32), jax.ShapeDtypeStruct((2,), jnp.int32)))
    # the same module as jit of the function on the pytree itself (leaves in jax.tree order)
    assert rec["stablehlo"] == clean_mlir(jax.jit(namespace["f"]).lower(*tree).as_text())
    assert [o["shape"] for o in rec["outputs"]] == [[], [3]]  # {"loss", "out"} in key order


def test_complex_arguments_and_results_extract_and_are_checked():
    source = src("""
        import jax
        import jax.numpy as jnp
        from jax import lax


        def f(x0, x1):
            t1 = jnp.fft.fft(x0 * x0, axis=-1)
            t2 = jnp.abs(t1) + x1
            return t1, t2
        """)
    rec = extract_in_process(source, "f", [[[4], "complex64"], [[4], F32]])
    assert rec["status"] == "ok", rec.get("failure")
    assert rec["outputs"][0]["dtype"] == "complex64" and len(rec["outputs"][0]["samples"]) == 8
    assert rec["oracles"]["jit_eager"] == rec["oracles"]["vmap"] == "pass"
    assert rec["oracles"]["interpreter"].startswith("skipped:")
    assert rec["grad_skipped"] is None  # with respect to x1, through the complex values


SHARD_MAP = src("""
    import jax
    import jax.numpy as jnp
    from jax import lax


    def f(x0):
        mesh = jax.make_mesh((4,), ('x',), axis_types=(jax.sharding.AxisType.Auto,))
        def body(c):
            t = jnp.sin(c) * 2.0
            return lax.psum(t, 'x'), lax.ppermute(t, 'x', perm=[(0, 1), (1, 2), (2, 3), (3, 0)])
        return jax.shard_map(body, mesh=mesh, in_specs=jax.P('x'),
                             out_specs=(jax.P(), jax.P('x')))(x0)
    """)


def test_a_shard_map_program_runs_on_the_workers_virtual_devices():
    rec = extract(SHARD_MAP, "f", [[[8, 3], F32]], timeout=120)  # in a worker of the pool
    assert rec["status"] == "ok", rec.get("failure")
    assert rec["devices"] == 4 and rec["mesh"] == {"x": 4}
    assert {"all_reduce", "collective_permute"} <= set(
        re.findall(r"stablehlo\.([a-z_]+)", rec["stablehlo"]))
    assert "num_partitions=4" in rec["hlo_optimized"] or "all-reduce" in rec["hlo_optimized"]
    oracles = rec["oracles"]
    assert oracles["jit_eager"] == oracles["vmap"] == oracles["autodiff"] == "pass", oracles
    assert oracles["interpreter"] == "skipped: a program over 4 devices (the interpreter runs one)"
    single = extract_in_process(src("""
        def f(x):
            return x * 2.0
        """), "f", [[[3], F32]])
    assert single["devices"] == 1 and single["mesh"] is None


SHARDED = src("""
    import jax
    import jax.numpy as jnp
    from jax import lax


    def f(x0):
        mesh = jax.make_mesh((2, 2), ('x', 'y'), axis_types=(jax.sharding.AxisType.Auto,
                                                             jax.sharding.AxisType.Auto))
        t1 = lax.with_sharding_constraint(jnp.sin(x0), jax.NamedSharding(mesh, jax.P('x', 'y')))
        return jnp.sum(t1 * t1, axis=0)
    """)


def test_a_sharded_program_is_partitioned_and_gives_its_unsharded_values():
    rec = extract_in_process(SHARDED, "f", [[[4, 6], F32]])
    assert rec["status"] == "ok", rec.get("failure")
    assert rec["devices"] == 4 and rec["mesh"] == {"x": 2, "y": 2}
    assert "sharding" in rec["stablehlo"]
    oracles = rec["oracles"]
    assert oracles["jit_eager"] == oracles["vmap"] == oracles["autodiff"] == "pass", oracles
    # the partitioned program's values are those of the same program on one device
    plain = extract_in_process(SHARDED.replace(
        "lax.with_sharding_constraint(jnp.sin(x0), jax.NamedSharding(mesh, jax.P('x', 'y')))",
        "jnp.sin(x0)"), "f", [[[4, 6], F32]])
    assert plain["devices"] == 1
    assert compare_summaries(rec["outputs"], plain["outputs"]) is None
