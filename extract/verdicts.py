"""The judgement of a discrepancy: an oracle's values against its reference, with every
difference either explained by a registered benign kind (:data:`BENIGN`, each with its
reason) or raised as a :class:`Violation` that names the XLA pass whose removal makes it go
away (delta debugging over the passes the program fired)."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

import numpy as np

from .accumulation import is_half, longest_half_sum, summed_tolerance
from .inputs import SPECIAL_RECIPE, make_inputs
from .oracle_context import CULPRIT_STAGE, STRICT_STAGE, Context, Violation, derive, is_float
from .passes import ddmin
from .values import Tolerance, compare_arrays, tolerance

__all__ = ["BENIGN", "BISECT_COMPILES", "compare", "sensitive_outputs"]

_PERTURB = 4  # derive() purpose of the ill-conditioning test (extract.oracles: 3, autodiff: 1, 2)

BISECT_COMPILES = 12
"""The most compiles a value discrepancy's delta debugging over the fired passes may take in
the worker (a single culprit among 30 passes takes about 10); ``python -m fuzz triage``
searches again without a cap, on the reproducer."""

BENIGN = {
    "surrogate_derivative": (
        "reverse mode and finite differences disagree in a program that passes a float "
        "through an integer (astype, bitcast_convert_type), through lax.reduce_precision, or "
        "through lax.stop_gradient (whose derivative is zero by request), "
        "or jvp and vjp disagree through lax.reduce_precision: JAX defines the derivative "
        "there (zero through integers; reduce_precision rounds the tangent in jvp and the "
        "cotangent in vjp, which are not adjoint) where finite differences measure the "
        "computed function"),
    "low_precision_rounding": (
        "jvp and vjp disagree, and agree once the program runs on float64 arguments (under "
        "jax.enable_x64): both are correct up to rounding, and the inner products cancel "
        "far below the magnitude of their terms"),
    "excess_precision": (
        "the values differ in a program that computes in float16 or bfloat16, and agree once "
        "the program is recompiled with xla_allow_excess_precision=false and without the "
        "change-op-data-type pass: XLA kept intermediates in float32 inside a fusion, or "
        "accumulated a float16 dot or convolution in float32 (documented XLA behaviour; the "
        "reference rounds after every op), and a near-tie downstream (argsort, comparison, "
        "ceil) amplified the last-bit difference"),
    "float_bits": (
        "integer outputs, or floats, differ, the program bitcasts floats of another type of "
        "the same width to their type (lax.bitcast_convert_type), and read back as those "
        "floats the values agree within the float tolerance: the outputs carry another "
        "float's bits, so a last-bit float difference shows as a difference of one or two "
        "in the integers, and a NaN's sign, which IEEE 754 leaves open, as a sign or a huge "
        "value in a bfloat16 that holds a float16's bits"),
    "reduce_init_count": (
        "XLA and the StableHLO interpreter differ, and agree once every non-empty sum's +0.0 "
        "init is -0.0 for the interpreter: the spec leaves how many init values a reduce "
        "adds to the implementation, the interpreter adds one (-0.0 + +0.0 is +0.0) and "
        "XLA none where it simplifies a reduce away (a sum over no dimension or one of "
        "size 1 keeps -0.0), so the sign of a zero sum, and what follows from it "
        "(arctan2, division, copysign), may differ in two correct results"),
    "accumulation_order": (
        "the values of a float16 or bfloat16 output differ, and agree within the error bound "
        "of summing in another order: the module sums K terms in half precision (a dot's "
        "contraction, a reduce), the spec leaves the order to the implementation (the "
        "interpreter adds one term after another, XLA in blocks), and the rounding error of "
        "a recursive sum is at most (K - 1) unit roundoffs of its terms (Higham, Accuracy "
        "and Stability of Numerical Algorithms, 4.2), taken on the output's scale"),
    "vector_sign": (
        "an output of a module that calls a LAPACK eigen-, singular-value or QR "
        "decomposition differs, and agrees once some of its columns are negated: those "
        "vectors are defined up to sign (LAPACK's, and jnp.linalg's, documentation), and a "
        "last-bit change upstream (a simplification pass, another order) may flip one"),
    "reduce_order": (
        "the values differ on special-value inputs holding a NaN, or only where one side is "
        "a NaN the program made and the other an infinity, in a module with a variadic "
        "reduce (an "
        "argmax's or argmin's value-and-index pair): such a body is not commutative once a "
        "NaN meets it (NaN > x and x > NaN are both false, so whichever operand comes first "
        "is kept), and the spec leaves the order in which the init and the elements meet "
        "the body to the implementation (the interpreter, and XLA's algsimp over a reduced "
        "dimension of size 1, each pick another)"),
    "integer_division": (
        "an integer or boolean output differs on special-value inputs in a module that "
        "divides integers "
        "(stablehlo.divide or remainder): XLA leaves a division by zero, and of the most "
        "negative value by -1, to the implementation, and its simplifier may pick another "
        "value than its run time does (jaxlib 0.12 folds lax.div(i, i) to 1 where i is 0, "
        "and runs 0 / 0 as -1), so neither side is wrong there"),
    "subnormal_flush": (
        "XLA and the StableHLO interpreter differ, and agree once the floats that a "
        "bitcast_convert makes of integer bits are zeros of their sign where they would be "
        "subnormal: XLA:CPU computes with denormals flushed to zero, the interpreter does "
        "not, and the recipe's small integers are subnormal floats (bitcast(1) is 1.4e-45 "
        "in float32), so a comparison or an argmax of them ties on one side only"),
    "reference_rounding": (
        "XLA and the StableHLO interpreter differ, and XLA's values are the interpreter's own "
        "on the same program lowered for float64 arguments, while the interpreter's on the "
        "program's types are not: the interpreter rounds every op's result to the program's "
        "type, where XLA:CPU may keep a product unrounded inside a fused multiply-add (so "
        "-1.07 * 3.4e38, which overflows alone, adds to inf as a finite number: inf, where "
        "the interpreter gets inf - inf = NaN); XLA's value is the more exact one, not a "
        "wrong one"),
    "ill_conditioned": (
        "the values differ, but moving each floating input by one ulp already moves the "
        "compiled program's output by more than the tolerance: the program is discontinuous "
        "or ill-conditioned at this input (floor, sign, comparisons, argmax/sort ties, "
        "casts to int, a huge derivative), so a correct one-ulp difference inside it can "
        "show as any difference outside"),
}


def _ulp_step(x: np.ndarray, direction: np.ndarray) -> np.ndarray:
    """``x`` moved by one ulp away from or toward zero where ``direction`` is 1 or 0; zeros,
    infinities, NaN and the largest finite values (special inputs) stay where they are."""
    uint = {2: np.uint16, 4: np.uint32, 8: np.uint64}[x.dtype.itemsize]
    bits = np.ascontiguousarray(x).view(uint).astype(np.int64)
    moved = np.where(direction.astype(bool), bits + 1, bits - 1)
    moved = moved.astype(uint).view(x.dtype).reshape(x.shape)
    with np.errstate(invalid="ignore"):  # a NaN moved may be a signalling one
        wide, after = x.astype(np.float64), moved.astype(np.float64)
    return np.where(np.isfinite(wide) & (wide != 0) & np.isfinite(after), moved, x)


def sensitive_outputs(ctx: Context, inputs: Sequence[np.ndarray],
                      reference: Sequence[np.ndarray]) -> set[int]:
    """Indices of the outputs that move away from ``reference`` (the compiled program's
    outputs at ``inputs``) beyond the value tolerance when every floating input moves by one
    ulp (two seeded random directions). Integer inputs cannot move: a program without
    floating inputs has no sensitive output by this test."""
    idx = [i for i, x in enumerate(inputs) if is_float(x.dtype) and x.size]
    moved_outputs: set[int] = set()
    for trial in range(2 if idx else 0):
        signs = make_inputs([(inputs[i].shape, "bool") for i in idx],
                            derive(ctx.seed, _PERTURB, trial))
        moved = list(inputs)
        for i, s in zip(idx, signs, strict=True):
            moved[i] = _ulp_step(inputs[i], s)
        out = ctx.run(moved)
        moved_outputs |= {k for k, (o, r) in enumerate(zip(out, reference, strict=True))
                          if compare_arrays(o, r) is not None}
    return moved_outputs


_F32 = re.compile(r"[x<]f32>")


def _module_tolerance(ctx: Context, want: np.ndarray) -> Tolerance | None:
    """The value tolerance of a ``float64`` output of a module that computes in ``float32``
    somewhere: float32's, since its value carries float32 rounding (``dot_product_attention``
    takes its softmax in float32, so XLA and the interpreter differ by 1e-7 in a float64
    program); None (the output dtype's own) otherwise."""
    if np.asarray(want).dtype == np.float64 and _F32.search(ctx.stablehlo_text):
        return tolerance(np.float32)
    return None


def compare(oracle: str, ctx: Context, got: Sequence[np.ndarray],
             want: Sequence[np.ndarray], inputs: Sequence[np.ndarray], what: str,
             strict: Callable[[], tuple[list, list]],
             baseline: Sequence[np.ndarray], bisect: bool | Sequence[str] = False) -> str:
    """``"pass"`` if every output of ``got`` matches ``want``; a registered benign verdict if
    every output that differs is explained; else :class:`Violation` at the first that is not.

    ``strict()`` gives (got, want) again with XLA's excess precision turned off;
    ``baseline`` is the compiled program's output on ``inputs``, which the ill-conditioning
    test moves away from (an output is excused only if it moves itself). With ``bisect``, a
    real discrepancy is blamed on the XLA pass whose removal makes it go away (the program
    under test is ``ctx``'s, on ``ctx.inputs``).
    """
    if len(got) != len(want):
        raise Violation(oracle, "structure", "-", f"{what}: {len(got)} outputs, want "
                        f"{len(want)}")
    problems = {k: p for k, (g, w) in enumerate(zip(got, want, strict=True))
                if (p := compare_arrays(g, w, _module_tolerance(ctx, w))) is not None}
    if not problems:
        return "pass"
    verdict = "benign: excess_precision"
    if ctx.low_precision:
        ctx.on_stage(f"{oracle}{STRICT_STAGE}")
        try:
            got2, want2 = strict()
        except Exception:  # the strict compile is not always possible: no explanation
            got2, want2 = got, want
        ctx.on_stage(oracle)
        problems = {k: p for k, p in problems.items()
                    if compare_arrays(got2[k], want2[k], _module_tolerance(ctx, want2[k]))
                    is not None}
    terms = longest_half_sum(ctx.stablehlo_text)
    if terms > 1 and any(is_half(want[k].dtype) for k in problems):
        verdict = "benign: accumulation_order"
        problems = {k: p for k, p in problems.items() if compare_arrays(
            got[k], want[k], summed_tolerance(want[k].dtype, terms)) is not None}
    if problems and _FACTORS.search(ctx.stablehlo_text):
        flipped = {k for k in problems if _same_up_to_column_signs(got[k], want[k])}
        if flipped:
            verdict = "benign: vector_sign"
            problems = {k: p for k, p in problems.items() if k not in flipped}
    bits = {k for k in problems if _same_as_float_bits(ctx, got[k], want[k])}
    if bits:
        verdict = "benign: float_bits"
        problems = {k: p for k, p in problems.items() if k not in bits}
    if problems and _VARIADIC_REDUCE.search(ctx.stablehlo_text) and (
            ctx.recipe == SPECIAL_RECIPE and any(is_float(x.dtype) and np.isnan(x).any()
                                                 for x in map(np.asarray, inputs))
            or all(_nan_against_infinity(got[k], want[k]) for k in problems)):
        return "benign: reduce_order"
    if problems and ctx.recipe == SPECIAL_RECIPE and _INTEGER_DIVISION.search(
            ctx.stablehlo_text):
        exact = {k for k in problems if np.dtype(want[k].dtype).kind in "iub"}
        if exact:
            verdict = "benign: integer_division"
            problems = {k: p for k, p in problems.items() if k not in exact}
    if problems:
        verdict = "benign: ill_conditioned"
        moving = sensitive_outputs(ctx, inputs, baseline)
        problems = {k: p for k, p in problems.items() if k not in moving}
    if not problems:
        return verdict
    k, problem = min(problems.items())
    if bisect and ctx.culprit_search:
        ctx.on_stage(f"{oracle}{CULPRIT_STAGE}")
        culprit = _culprit_pass(ctx, want, ctx.passes if bisect is True else tuple(bisect))
        ctx.on_stage(oracle)
    else:
        culprit = None
    blame = f"; disabling XLA pass {culprit} removes it" if culprit else ""
    raise Violation(oracle, "value", np.dtype(want[k].dtype).name,
                    f"{what}, output {k}: {problem}{blame}", culprit)


def _nan_against_infinity(got: np.ndarray, want: np.ndarray) -> bool:
    """Whether every element where ``got`` and ``want`` differ is NaN on one side and an
    infinity on the other: a NaN the program made (``log`` of 0, ``arccos`` of 2) met an
    argmax's body against its ``-inf`` init (or an argmin's ``+inf``), in one order or the
    other."""
    g, w = (np.asarray(x).astype(np.float64) for x in (got, want))
    if g.shape != w.shape or not is_float(np.asarray(want).dtype):
        return False
    differ = ~((g == w) | (np.isnan(g) & np.isnan(w)))
    swapped = (np.isnan(g) & np.isinf(w)) | (np.isinf(g) & np.isnan(w))
    return bool(differ.any()) and bool(swapped[differ].all())


# an integer divide or remainder (whose result by zero is the implementation's)
_INTEGER_DIVISION = re.compile(r"stablehlo\.(?:divide|remainder)\b[^\n]*tensor<(?:\d+x)*u?i\d+>")
# LAPACK factorizations whose vectors are defined up to sign (a unit phase when complex):
# eigh (syevd/heevd), eig (geev), svd (gesdd/gesvd), qr (geqrf)
_FACTORS = re.compile(r"custom_call @lapack_[sdcz](?:syevd|heevd|geev|gesdd|gesvd|geqrf)")


def _same_up_to_column_signs(got: np.ndarray, want: np.ndarray) -> bool:
    """Whether real ``got`` agrees with ``want`` once each column (the last axis, per batch)
    is negated where that brings it closer: eigenvectors and singular vectors of a
    decomposition are defined up to sign, and a last-bit change upstream may flip one."""
    got, want = np.asarray(got), np.asarray(want)
    if got.ndim < 2 or got.shape != want.shape or not is_float(want.dtype):
        return False
    g, w = got.astype(np.float64), want.astype(np.float64)
    flip = np.sum(np.abs(g + w), axis=-2, keepdims=True) < np.sum(np.abs(g - w), axis=-2,
                                                                   keepdims=True)
    return compare_arrays(np.where(flip, -got, got).astype(want.dtype), want) is None


_FLOATS_OF_WIDTH = {2: ("f16", "bf16"), 4: ("f32",), 8: ("f64",)}
_NUMPY_FLOAT = {"f16": "float16", "bf16": "bfloat16", "f32": "float32", "f64": "float64"}


def _same_as_float_bits(ctx: Context, got: np.ndarray, want: np.ndarray) -> bool:
    """Whether ``got`` and ``want``, integers or floats, agree as the floats of another type
    whose bits they hold, in a program that bitcasts such floats to their type."""
    got, want = np.asarray(got), np.asarray(want)
    if got.dtype != want.dtype:
        return False
    if want.dtype.kind in "iu":
        target = ("ui" if want.dtype.kind == "u" else "i") + str(8 * want.dtype.itemsize)
    else:
        target = next((m for m, n in _NUMPY_FLOAT.items() if n == want.dtype.name), None)
    for mlir_float in _FLOATS_OF_WIDTH.get(want.dtype.itemsize, ()):
        cast = (rf"bitcast_convert[^\n]*\(tensor<(?:\d+x)*{mlir_float}>\) -> "
                rf"tensor<(?:\d+x)*{target}>")
        if target not in (None, mlir_float) and re.search(cast, ctx.stablehlo_text):
            as_float = np.dtype(_NUMPY_FLOAT[mlir_float])
            if compare_arrays(got.view(as_float), want.view(as_float)) is None:
                return True
    return False


def _culprit_pass(ctx: Context, want: Sequence[np.ndarray],
                  passes: Sequence[str]) -> str | None:
    """The XLA passes, joined by ``+``, whose removal makes the compiled program agree with
    ``want`` on the recipe's inputs: a 1-minimal set by delta debugging over ``passes`` (the
    passes that fired while the program compiled, ``ctx.passes``, latest first, for most
    oracles); None when disabling them all does not remove the discrepancy, or past
    :data:`BISECT_COMPILES`."""
    compiles = [0]

    def removes(passes: frozenset[str]) -> bool:
        compiles[0] += 1
        try:
            out = ctx.run_with({"xla_disable_hlo_passes": ",".join(sorted(passes))},
                               ctx.inputs)
        except Exception:  # some passes are required (a bfloat16 dot needs its upcast)
            return False
        return all(compare_arrays(a, b) is None for a, b in zip(out, want, strict=True))

    found = ddmin(passes, removes, expired=lambda: compiles[0] >= BISECT_COMPILES)
    return "+".join(sorted(found.passes)) if found.passes and found.complete else None


# a reduce of two or more inputs, in the pretty form (``stablehlo.reduce(%1 init: %c0), (%2
# init: %c1)``) or the generic one (``"stablehlo.reduce"(%1, %2, %c0, %c1)``)
_VARIADIC_REDUCE = re.compile(r'stablehlo\.reduce\([^)]*init:[^)]*\), \(|'
                              r'"stablehlo\.reduce"\(%[\w#]+, %[\w#]+, %[\w#]+, %[\w#]+')
