"""Tests for extract/: failures, their classification and known limitations, and signatures."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from extract import (
    KNOWN,
    classify,
    extract_in_process,
    signature,
)
from extract.clean import clean_hlo
from extract.failures import STAGES
from extract.oracles import ORACLES
from tests.test_extract import F32, FORWARD, src

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
