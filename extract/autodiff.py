"""The ``autodiff`` oracle: reverse mode against finite differences and jvp against vjp.

(b) the recorded gradient (reverse mode, cotangent v = 1) against central differences of
the compiled program along one seeded direction u, where the program is smooth at the point
(the quotients at eps and eps/2 agree), as ``jax._src.public_test_util.check_vjp`` does; a
wrong derivative rule is consistent between jvp and vjp, so only this catches it.
(a) <v, J u> from ``jax.jvp`` against <J^T v, u> from ``jax.vjp`` for seeded u and v, in one
extra compile: a wrong transpose or linearisation rule.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np

from . import screens
from .inputs import SPECIAL_RECIPE, make_inputs
from .oracle_context import Context, Violation, derive, is_float, leaves
from .values import GRAD_RTOL

__all__ = ["FD_EPS", "autodiff"]

_TANGENT, _COTANGENT, _NEARBY = 1, 2, 5  # derive() purposes
# A nearby point: every float32 or float64 argument moved by up to 0.4 of the recipe's grid step
# (2**-7, extract.inputs), so that no two of its elements tie any longer (order statistics:
# max, sort, top_k, argmax; kinks: abs, relu, clip at a grid value) while a smooth function's
# derivative hardly moves.
_NEARBY_STEP = 0.4 * 2.0**-7
F64_GRAD_RTOL = 1e-5  # jax._src.public_test_util's gradient tolerance for float64
# Central differences: eps = 2**-10 keeps x +- eps*u exact in float32 for recipe inputs
# (multiples of 2**-7 plus multiples of 2**-17); rounding error ~ 6e-8 * |f| / eps = 6e-5
# relative and truncation error ~ eps**2 * |f'''| / 6 = 2e-7 * |f'''|, both well inside
# the float32 gradient tolerance 2e-3.
FD_EPS = 2.0**-10
# In float64 (the rerun that tells float32 rounding from a wrong rule): rounding ~ 1e-16 *
# |f| / eps = 1e-10 relative, truncation ~ eps**2 * |f'''| / 6 = 1e-13 * |f'''|.
F64_EPS = 2.0**-20

# Ops whose JAX derivative is defined rather than computed: a float -> integer conversion
# or bitcast (zero: integers carry no tangent, yet the value depends on the input) and
# reduce_precision (passes the tangent through, yet the value is piecewise constant); and,
# read from the source, lax.stop_gradient (zero by request; it leaves no trace in StableHLO).
_SURROGATE = re.compile(
    r"stablehlo\.reduce_precision\b|stablehlo\.(?:convert|bitcast_convert)\b[^\n]*"
    r"\(tensor<[\dx]*b?f\d+>\)\s*->\s*tensor<[\dx]*u?i\d+>")

# ulps of sum |v y| that <v, J u> and <J^T v, u> may differ by when they cancel: 64 in a
# float32 program (a chain of ops, each within an ulp), 4 of the narrowest type in a program
# that computes in float16 or bfloat16 (their ulp is 2**13 or 2**16 times float32's, so 64
# of them would hide a wrong rule; tests/test_oracles.py triggers both floors and checks
# that a wrong transpose rule in float16 and bfloat16 is still caught).
_FD_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))  # finite differences resolve them
_FLOOR_ULPS = {"float32": (64, 2.0**-23), "float16": (4, 2.0**-10), "bfloat16": (4, 2.0**-7)}


def _rounding_floor(stablehlo: str, cot_dtype: str) -> float:
    """The rounding floor of jvp against vjp, as a multiple of sum |v y| (see _FLOOR_ULPS);
    0 for float64."""
    if re.search(r"[<x]bf16>", stablehlo):
        narrowest = "bfloat16"
    elif re.search(r"[<x]f16>", stablehlo):
        narrowest = "float16"
    else:
        narrowest = cot_dtype
    ulps, eps = _FLOOR_ULPS.get(narrowest, (0, 0.0))
    return ulps * eps


def _grad_rtol(dtypes: Sequence[Any]) -> float:
    names = [np.dtype(d).name for d in dtypes if is_float(d)]
    return max([GRAD_RTOL.get(n, GRAD_RTOL["float32"]) for n in names] or [GRAD_RTOL["float32"]])


def _dot(a: Sequence[np.ndarray], b: Sequence[np.ndarray]) -> tuple[float, float]:
    """<a, b> and sum |a_i b_i| in float64."""
    total = scale = 0.0
    for x, y in zip(a, b, strict=True):
        p = np.asarray(x, np.float64) * np.asarray(y, np.float64)
        total, scale = total + float(p.sum()), scale + float(np.abs(p).sum())
    return total, scale


def autodiff(ctx: Context) -> str:

    fa = ctx.float_args
    out_float = [is_float(o.dtype) for o in ctx.outputs]
    if not fa or not any(out_float):
        return "skipped: no floating argument or output"
    if ctx.grad is None:
        return "skipped: no reverse-mode gradient"
    if ctx.recipe == SPECIAL_RECIPE:
        # a derivative at +-inf, NaN or the largest floats is undefined, and a step of
        # finite differences from a subnormal or a zero of either sign crosses a kink
        return "skipped: special values in the inputs (jaxsmith-inputs/1+special)"
    if not all(np.isfinite(o.astype(np.float64)).all() for o, k in zip(ctx.outputs, out_float,
                                                                        strict=True) if k):
        return "skipped: non-finite output"
    tangents = make_inputs([ctx.specs[i] for i in fa], derive(ctx.seed, _TANGENT))
    rtol = _grad_rtol([ctx.specs[i][1] for i in fa] + [o.dtype for o in ctx.outputs])

    # (b) recorded gradient against finite differences, in the float32 and float64
    # arguments only (a step of 2**-10 is below the resolution of float16 and bfloat16).
    u = [t if np.dtype(ctx.specs[i][1]) in _FD_DTYPES else np.zeros_like(t)
         for i, t in zip(fa, tangents, strict=True)]
    fd_dtype = "float64" if any(np.dtype(ctx.specs[i][1]) == np.float64 and t.any()
                                for i, t in zip(fa, u, strict=True)) else "float32"
    verdict = "pass"
    if ctx.low_precision:  # a 2**-10 step is below their resolution: the quotient is noise
        verdict = "skipped: float16/bfloat16 inside (finite differences cannot resolve them)"
    elif any(x.any() for x in u):
        ad, scale = _dot(ctx.grad, u)

        fd, size, limit, floor = _differences(ctx, ctx.inputs, ctx.outputs, u, out_float,
                                              scale, rtol)
        if not all(np.isfinite(fd)) or abs(fd[0] - fd[1]) > limit:
            verdict = "skipped: not smooth at the input (finite differences)"
        elif abs(ad - fd[1]) > limit and (_SURROGATE.search(ctx.stablehlo_text)
                                          or "lax.stop_gradient(" in ctx.source):
            verdict = "benign: surrogate_derivative"
        elif abs(ad - fd[1]) > limit and _agrees_nearby(ctx, fa, u, out_float, rtol):
            verdict = ("skipped: not smooth at the input (a tie or a kink: at a nearby point "
                       "reverse mode and finite differences agree)")
        elif abs(ad - fd[1]) > limit and abs(ad - (fd64 := _float64_differences(
                ctx, u))) <= limit:
            verdict = "benign: low_precision_rounding"
        elif abs(ad - fd[1]) > limit:
            raise Violation("autodiff", "finite_differences", fd_dtype,
                            f"reverse-mode <grad, u> = {ad:.9g}, central differences "
                            f"{fd[1]:.9g} (eps {FD_EPS / 2:g}; at eps {FD_EPS:g}: {fd[0]:.9g};"
                            f" in float64 at eps {F64_EPS:g}: {fd64:.9g}); |diff| "
                            f"{abs(ad - fd[1]):.3g} > rtol {rtol:g} x {size:.3g} + "
                            f"rounding floor {floor:.3g}")
    else:
        verdict = "skipped: no float32 or float64 argument for finite differences"

    # (a) forward against reverse mode, in every floating argument and output
    lhs, rhs, size, cot_dtype, primal = _jvp_vjp(ctx, fa, out_float, tangents, screen=rtol)
    if not np.isfinite(lhs) or not np.isfinite(rhs):
        return verdict if verdict != "pass" else "skipped: non-finite jvp or vjp"
    if not _within(ctx, rtol, lhs, rhs, size, cot_dtype, primal):
        if "stablehlo.reduce_precision" in ctx.stablehlo_text:  # rounds u in jvp, v in vjp
            return "benign: surrogate_derivative"
        import jax

        try:
            with jax.enable_x64(True):  # the same program on float64 arguments
                up = [t.astype(np.float64) for t in tangents]
                lhs64, rhs64, size64, _, primal64 = _jvp_vjp(ctx, fa, out_float, up,
                                                              upcast=np.float64)
        except Exception:  # not every program runs on float64 (a bitcast, a carry dtype)
            lhs64, rhs64, size64, primal64 = 1.0, 0.0, 0.0, 0.0
        if abs(lhs64 - rhs64) <= F64_GRAD_RTOL * size64 + 64 * 2.0**-52 * primal64:
            return "benign: low_precision_rounding"
        raise Violation("autodiff", "jvp_vjp", cot_dtype,
                        f"<v, J u> from jax.jvp = {lhs:.9g}, <J^T v, u> from jax.vjp = "
                        f"{rhs:.9g}; |diff| {abs(lhs - rhs):.3g} > rtol {rtol:g} x {size:.3g}"
                        f" + rounding floor "
                        f"{_rounding_floor(ctx.stablehlo_text, cot_dtype) * primal:.3g}")
    if verdict.startswith("skipped"):  # jvp against vjp ran and agreed
        return f"pass (jvp/vjp only; finite differences {verdict})"
    return verdict


def _float64_differences(ctx: Context, u: Sequence[np.ndarray]) -> float:
    """Central differences of the summed floating outputs along ``u``, with the program run
    on float64 copies of its floating arguments (step ``F64_EPS``): what float32 rounding of
    a large or cancelling sum leaves of the float32 ones (seen: the power spectrum of a
    6x6 ``eigvals``, off by 0.03 in float32 and right to 1e-8 in float64). NaN when the
    program does not run on float64."""
    import jax

    fa = ctx.float_args
    try:
        with jax.enable_x64(True):
            fn = jax.jit(ctx.f)

            def total(eps: float) -> float:
                moved = list(ctx.inputs)
                for i, t in zip(fa, u, strict=True):
                    moved[i] = ctx.inputs[i].astype(np.float64) + eps * t.astype(np.float64)
                return sum(float(np.sum(np.asarray(o), dtype=np.float64))
                           for o in jax.tree_util.tree_leaves(fn(*moved))
                           if is_float(np.asarray(o).dtype))

            return (total(F64_EPS) - total(-F64_EPS)) / (2 * F64_EPS)
    except Exception:  # not every program runs on float64 (a bitcast, a carry dtype)
        return float("nan")


def _differences(ctx: Context, inputs: Sequence[np.ndarray], outputs: Sequence[np.ndarray],
                 u: Sequence[np.ndarray], out_float: list[bool], scale: float,
                 rtol: float) -> tuple[list[float], float, float, float]:
    """Central differences of the summed floating outputs at ``inputs`` (where the program
    gives ``outputs``) along ``u`` (steps ``FD_EPS`` and half of it), the size of the
    terms, the tolerance, its rounding floor."""
    fa = ctx.float_args

    def total(eps: float) -> float:
        moved = list(inputs)
        for i, t in zip(fa, u, strict=True):
            moved[i] = (inputs[i].astype(np.float64) + eps * t).astype(inputs[i].dtype)
        return sum(float(np.sum(o, dtype=np.float64)) for o, k in
                   zip(ctx.run(moved), out_float, strict=True) if k)

    fd = [(total(e) - total(-e)) / (2 * e) for e in (FD_EPS, FD_EPS / 2)]
    size = max(scale, abs(fd[0]), abs(fd[1]))
    # Each evaluation rounds every output to half an ulp (2**-24 of it in float32), so a
    # quotient cannot resolve less than 2**-24 * sum|outputs| / eps; allow 16 times that for
    # the rounding inside the program.
    floor = 16 * 2.0**-24 * sum(float(np.abs(o.astype(np.float64)).sum()) for o, k in
                                zip(outputs, out_float, strict=True) if k) / FD_EPS
    return fd, size, rtol * size + floor, floor


def _agrees_nearby(ctx: Context, fa: list[int], u: list[np.ndarray], out_float: list[bool],
                   rtol: float) -> bool:
    """Whether reverse mode and finite differences agree at a nearby point (the float32
    arguments moved by up to ``_NEARBY_STEP``, seeded): then the input sat on a tie or a
    kink, where reverse mode takes one subgradient and a difference quotient another, and
    no rule is to blame. A wrong rule is as wrong nearby. Costs a compile of the gradient,
    only when the check is about to fail."""
    import jax
    import jax.numpy as jnp

    # continuous shifts: two tied elements never move by the same amount (the recipe's 224
    # values would tie again as often as the inputs did)
    shift = np.random.default_rng(derive(ctx.seed, _NEARBY))
    near = list(ctx.inputs)
    for i in fa:
        if np.dtype(ctx.specs[i][1]) in _FD_DTYPES:
            x = ctx.inputs[i]
            near[i] = (x + _NEARBY_STEP * shift.uniform(-1, 1, x.shape)).astype(x.dtype)
    fixed = [jax.device_put(x) for x in near]

    def loss(*xs):  # as the extractor's gradient: the summed floating outputs, as float32
        args = list(fixed)
        for i, x in zip(fa, xs, strict=True):
            args[i] = x
        return sum(jnp.sum(o).astype(jnp.float32) for o, k in
                   zip(jax.tree_util.tree_leaves(ctx.f(*args)), out_float, strict=True) if k)

    try:
        grad = leaves(jax.jit(jax.grad(loss, argnums=tuple(range(len(fa)))))(
            *[near[i] for i in fa]))
    except Exception:  # noqa: BLE001 - no gradient nearby: no excuse either
        return False
    ad, scale = _dot(grad, u)
    fd, _, limit, _ = _differences(ctx, near, ctx.run(near), u, out_float, scale, rtol)
    return all(np.isfinite(fd)) and abs(fd[0] - fd[1]) <= limit and abs(ad - fd[1]) <= limit


def _within(ctx: Context, rtol: float, lhs: float, rhs: float, size: float, cot_dtype: str,
            primal: float) -> bool:
    """Whether jvp and vjp agree: finite, and within ``rtol`` of their terms plus the
    rounding floor. Where <v, J u> cancels to nothing (a function constant along u), what is
    left of it is rounding of terms as large as the outputs: a few ulps of sum |v y| (seen:
    attention over values of ones, jvp 0 against vjp -1.8e-8 in float32 and 2e-7 in
    bfloat16, where the float64 rerun cannot help: dot_product_attention refuses float64)."""
    floor = _rounding_floor(ctx.stablehlo_text, cot_dtype) * primal
    return bool(np.isfinite(lhs) and np.isfinite(rhs)) and abs(lhs - rhs) <= rtol * size + floor


def _jvp_vjp(ctx: Context, fa: list[int], out_float: list[bool],
             tangents: list[np.ndarray], upcast: type | None = None,
             screen: float | None = None) -> tuple[float, float, float, str, float]:
    """<v, J u> from jax.jvp, <J^T v, u> from jax.vjp (one module), the scale of their terms,
    the first cotangent's dtype and sum |v y| over the outputs y; ``upcast`` runs the
    floating arguments as that dtype. With ``screen`` (a gradient rtol) the module runs on
    the StableHLO interpreter first (``extract.screens``) and is compiled only where jvp and
    vjp do not agree there within it (:func:`_within`)."""
    import jax

    fixed = [jax.device_put(x) for x in ctx.inputs]  # as a user calls it: on jax.Arrays
    primals = [ctx.inputs[i].astype(upcast) if upcast else ctx.inputs[i] for i in fa]

    def floats_only(*xs):
        args = list(fixed)
        for i, x in zip(fa, xs, strict=True):
            args[i] = x
        every = jax.tree_util.tree_leaves(ctx.f(*args))
        return [leaf for leaf, k in zip(every, out_float, strict=True) if k]

    outs = jax.eval_shape(floats_only, *primals)
    cotangents = make_inputs([(o.shape, np.dtype(o.dtype).name) for o in outs],
                             derive(ctx.seed, _COTANGENT))

    def both(primals, tans, cots):
        ys, forward = jax.jvp(floats_only, tuple(primals), tuple(tans))
        _, pull = jax.vjp(floats_only, *primals)
        return ys, forward, pull(list(cots))

    args = (primals, tangents, cotangents)
    lowered = jax.jit(both, keep_unused=True).lower(*args)

    def products(ys, forward, backward) -> tuple[float, float, float, str, float]:
        lhs, s1 = _dot(cotangents, leaves(forward))
        rhs, s2 = _dot(leaves(backward), tangents)
        return lhs, rhs, max(s1, s2, 1e-6), np.dtype(outs[0].dtype).name, \
            _dot(cotangents, leaves(ys))[1]

    if screen is not None:
        try:
            flat = screens.interpreted(lowered, args)
        except Exception:  # noqa: BLE001 - a screen only clears; the compiled module decides
            flat = None
        if flat is not None:
            screened = products(*jax.tree_util.tree_unflatten(lowered.out_tree, flat))
            if _within(ctx, screen, *screened):
                return screened
    return products(*lowered.compile()(*args))
