"""Output values: compact summaries for records, and comparison with stated tolerances.

Pure NumPy. A *summary* of one output leaf is ``{"shape", "dtype", "nonfinite", "sum",
"abs_sum", "samples"}``: ``sum`` and ``abs_sum`` over the finite elements in float64,
``samples`` up to 8 ``[flat_index, value]`` pairs at fixed positions (evenly spaced over the
flattened array, first and last included), every value a float (integers and bools too, so
that the column has one type for Arrow) and a non-finite one ``null`` (JSON has no NaN;
``nonfinite`` counts them).

Tolerances start from JAX's own test tolerances (``jax._src.public_test_util``: values
float32 1e-6, float16 1e-3, bfloat16 1e-2; gradients float32 2e-3, float16 1e-2, bfloat16
1e-1) and are *norm-wise*: an element may differ by ``rtol * max|reference|`` (plus ``atol``),
not by ``rtol`` of itself, because a program's outputs are often differences of larger
intermediates, where the element-wise relative error of a correct result is unbounded.
Each widening of a factor below has its reason beside it and a test in
``tests/test_values.py``. Non-finite values compare as such (NaN equals NaN, +inf equals
+inf); integer and bool outputs must match exactly. A complex output is summarized and
compared as its real view (real and imaginary parts side by side on a new last axis, with the
tolerance of its component float type); its summary keeps its own shape and dtype.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import ml_dtypes  # noqa: F401  (registers bfloat16 with NumPy)
import numpy as np

__all__ = [
    "GRAD_RTOL",
    "VALUE_RTOL",
    "Tolerance",
    "compare_arrays",
    "compare_summaries",
    "is_float",
    "summarize",
    "tolerance",
]

SAMPLES = 8

# jax._src.public_test_util._default_tolerance / default_gradient_tolerance.
VALUE_RTOL = {"float32": 1e-6, "float16": 1e-3, "bfloat16": 1e-2, "float64": 1e-15}
GRAD_RTOL = {"float32": 2e-3, "float16": 1e-2, "bfloat16": 1e-1, "float64": 1e-5}

# Widening of the value tolerance for a whole program rather than one op. A program chains
# up to ~15 ops, each correct to about one ulp in any order of evaluation (XLA fuses,
# reassociates reductions and contracts a*b+c to an FMA - jax#6566, jax#1816 call this
# expected), and a chain's error grows with its length: 64 ulps of float32 (7.6e-6) and
# a few ulps of float16/bfloat16.
PROGRAM_FACTOR = {"float32": 64.0, "float16": 4.0, "bfloat16": 4.0, "float64": 64.0}
# An output is judged on the scale of its reference or of the recipe's inputs, 1 (their
# magnitudes are 1/8 to 1.76), whichever is larger. An output that is zero or small is a
# cancellation or a function at one of its zeros, and its error is a few ulps of the
# operands, not of the result: for lgamma(2) in float32, XLA's jit gives 9.5e-7, eager 0
# and the StableHLO interpreter 4.8e-7 (8 and 4 ulps of 1).
INPUT_SCALE = 1.0
# atol = rtol * ATOL_FACTOR: outside the comparisons here (a case's own check), an output
# whose reference is all zeros still has an absolute tolerance.
ATOL_FACTOR = 1e-3


@dataclass(frozen=True)
class Tolerance:
    """``|got - want| <= atol + rtol * max|want|`` for every finite element."""

    rtol: float
    atol: float


def _float_name(dtype: Any) -> str | None:
    name = np.dtype(dtype).name
    return name if name in VALUE_RTOL else None


def tolerance(dtype: Any, kind: str = "value") -> Tolerance:
    """Tolerance for an output of ``dtype``: ``kind`` is "value" (whole-program values) or
    "grad" (derivatives); exact (0, 0) for integers and bools."""
    name = _float_name(dtype)
    if name is None:
        if np.issubdtype(np.dtype(dtype), np.inexact):  # complex: float32's
            name = "float32"
        else:
            return Tolerance(0.0, 0.0)
    if kind == "grad":
        rtol = GRAD_RTOL[name]
    elif kind == "value":
        rtol = VALUE_RTOL[name] * PROGRAM_FACTOR[name]
    else:
        raise ValueError(f"kind={kind!r} must be 'value' or 'grad'")
    return Tolerance(rtol, rtol * ATOL_FACTOR)


def is_float(dtype: Any) -> bool:
    """Whether ``dtype`` is floating (bfloat16 included)."""
    d = np.dtype(dtype)
    return np.issubdtype(d, np.floating) or d.name == "bfloat16"


def real_view(x: np.ndarray) -> np.ndarray:
    """``x``, or for a complex array its real and imaginary parts on a new last axis."""
    if np.issubdtype(x.dtype, np.complexfloating):
        return np.stack([x.real, x.imag], axis=-1)
    return x


def _sample_value(x: Any) -> float | None:
    if isinstance(x, (bool, np.bool_, int, np.integer)):
        return float(x)
    if not math.isfinite(float(x)):
        return None
    return float(str(x))  # the shortest text that reads back as the same value of its dtype


def sample_positions(n: int) -> list[int]:
    """Fixed flat positions: up to 8 evenly spaced over ``n`` elements, first and last."""
    if n <= 0:
        return []
    if n <= SAMPLES:
        return list(range(n))
    return sorted({round(i * (n - 1) / (SAMPLES - 1)) for i in range(SAMPLES)})


def _ten_digits(x: float) -> float:
    """``x`` to 10 significant digits, within float64's range (rounding up 1.7976931348e308
    would leave it)."""
    biggest = float(np.finfo(np.float64).max)
    return min(max(float(f"{x:.10g}"), -biggest), biggest)


def _sum(x: np.ndarray) -> float:
    """The sum of finite float64 ``x``, scaled by its largest magnitude so that the largest
    finite float64 values do not overflow on the way (a 64-bit program's special inputs hold
    1.8e308); ``inf`` only where the sum itself is beyond float64 (:func:`_ten_digits`
    holds it to the range)."""
    scale = float(np.abs(x).max()) if x.size else 0.0
    if scale <= 1.0:
        return float(x.sum())
    with np.errstate(over="ignore"):
        return float((x / scale).sum()) * scale


def summarize(value: Any) -> dict[str, Any]:
    """Summary of one output array (see the module docstring)."""
    x = np.asarray(value)
    flat = real_view(x).reshape(-1)
    if is_float(flat.dtype):
        wide = flat.astype(np.float64)
        finite = np.isfinite(wide)
        good = wide[finite]
        total, abs_total, nonfinite = _sum(good), _sum(np.abs(good)), int((~finite).sum())
    else:
        wide = flat.astype(np.float64)
        total, abs_total, nonfinite = float(wide.sum()), float(np.abs(wide).sum()), 0
    return {
        "shape": [int(d) for d in x.shape],
        "dtype": x.dtype.name,
        "nonfinite": nonfinite,
        "sum": _ten_digits(total),  # far finer than any tolerance
        "abs_sum": _ten_digits(abs_total),
        "samples": [[i, _sample_value(flat[i])] for i in sample_positions(flat.size)],
    }


def _fmt(x: Any) -> str:
    if isinstance(x, float) and x.is_integer() and abs(x) < 2**53:
        return str(int(x))  # an integer output's sample: every digit counts
    return f"{x:.9g}" if isinstance(x, float) else str(x)


def ulps_apart(got: Any, want: Any) -> int | None:
    """The most units in the last place between ``got`` and ``want`` (floating arrays of one
    dtype and shape; a complex one as its real view), over the elements finite on both
    sides; ``None`` for other arrays or where no element is finite on both. The distance
    counts the representable values between the two: consecutive floats are 1 apart, and
    -0.0 and +0.0 are 0 apart."""
    g, w = np.asarray(got), np.asarray(want)
    if np.issubdtype(w.dtype, np.complexfloating):
        g, w = real_view(g), real_view(w)
    if g.shape != w.shape or g.dtype != w.dtype or not is_float(w.dtype) or not w.size:
        return None
    both = np.isfinite(g.astype(np.float64)) & np.isfinite(w.astype(np.float64))
    if not both.any():
        return None
    signed = {2: np.int16, 4: np.int32, 8: np.int64}[w.dtype.itemsize]

    def ordinal(x: np.ndarray) -> np.ndarray:  # floats in order as integers, -0.0 == +0.0
        bits = np.ascontiguousarray(x).view(signed).astype(object if signed is np.int64
                                                           else np.int64)
        return np.where(bits < 0, np.iinfo(signed).min - bits, bits)

    return int(np.abs(ordinal(g[both]) - ordinal(w[both])).max())


def compare_arrays(got: Any, want: Any, tol: Tolerance | None = None) -> str | None:
    """``None`` if ``got`` matches ``want`` (the reference), else what differs, in one line.

    ``tol`` defaults to ``tolerance(want.dtype)``.
    """
    g, w = np.asarray(got), np.asarray(want)
    if g.shape != w.shape or g.dtype != w.dtype:
        return f"got {g.dtype.name}{list(g.shape)}, want {w.dtype.name}{list(w.shape)}"
    if g.size == 0:
        return None
    if np.issubdtype(w.dtype, np.complexfloating):
        return compare_arrays(real_view(g), real_view(w), tol or tolerance(w.dtype))
    if not is_float(w.dtype):
        bad = np.flatnonzero(g.reshape(-1) != w.reshape(-1))
        if bad.size:
            i = int(bad[0])
            return (f"{bad.size} of {w.size} elements differ; first at flat index {i}: "
                    f"got {g.reshape(-1)[i]}, want {w.reshape(-1)[i]}")
        return None
    tol = tol or tolerance(w.dtype)
    gf, wf = g.reshape(-1).astype(np.float64), w.reshape(-1).astype(np.float64)
    for name, test in (("NaN", np.isnan), ("+inf", np.isposinf), ("-inf", np.isneginf)):
        diff = np.flatnonzero(test(gf) != test(wf))
        if diff.size:
            i = int(diff[0])
            return (f"{name} pattern differs at {diff.size} of {w.size} elements; first at "
                    f"flat index {i}: got {_fmt(gf[i])}, want {_fmt(wf[i])}")
    finite = np.isfinite(wf)
    if not finite.any():
        return None
    scale = float(np.abs(wf[finite]).max())
    err = np.zeros_like(wf)
    err[finite] = np.abs(gf[finite] - wf[finite])  # non-finite patterns already agree
    i = int(err.argmax())
    limit = tol.atol + tol.rtol * max(scale, INPUT_SCALE)
    if err[i] > limit:
        of = f"max|want| {scale:.3g}" if scale >= INPUT_SCALE else "the inputs' scale, 1"
        return (f"max |diff| {err[i]:.3g} > {limit:.3g} (rtol {tol.rtol:g} x {of}) at flat "
                f"index {i}: got {_fmt(gf[i])}, want {_fmt(wf[i])}")
    return None


def _scale(summary: Mapping[str, Any]) -> float:
    """max(|finite samples|, mean |element|, the inputs' scale) of one output summary."""
    finite = [abs(v) for _, v in summary["samples"] if v is not None]
    return max([summary["abs_sum"] / max(1, math.prod(summary["shape"])), *finite,
                INPUT_SCALE])


def compare_summaries(got: Sequence[Mapping[str, Any]], want: Sequence[Mapping[str, Any]],
                      kind: str = "value", skip: Collection[int] = ()) -> str | None:
    """``None`` if two recorded output lists agree within ``tolerance(dtype, kind)``.

    Values compare output by output; a gradient ("grad") is one vector, the derivative of
    one scalar, so all its outputs compare against the scale of the largest: a component
    whose true value is 0 holds only rounding residue of the others' size. Outputs whose
    index is in ``skip`` are not compared.
    """
    if len(got) != len(want):
        return f"{len(got)} outputs, recorded {len(want)}"
    whole = max([_scale(w) for w in want] + [0.0]) if kind == "grad" else None
    for k, (g, w) in enumerate(zip(got, want, strict=True)):
        if k in skip:
            continue
        where = f"output {k}"
        if list(g["shape"]) != list(w["shape"]) or g["dtype"] != w["dtype"]:
            return (f"{where}: {g['dtype']}{list(g['shape'])}, recorded "
                    f"{w['dtype']}{list(w['shape'])}")
        if g["nonfinite"] != w["nonfinite"]:
            return f"{where}: {g['nonfinite']} non-finite elements, recorded {w['nonfinite']}"
        tol = tolerance(w["dtype"], kind)
        gs, ws = dict(map(tuple, g["samples"])), dict(map(tuple, w["samples"]))
        if gs.keys() != ws.keys():
            return f"{where}: sample positions differ"
        scale = _scale(w) if whole is None else whole
        for i in sorted(ws):
            a, b = gs[i], ws[i]
            if a is None or b is None:
                if a is not b:
                    return f"{where}[{i}]: {a}, recorded {b} (null: not finite)"
            elif abs(a - b) > tol.atol + tol.rtol * scale:
                return f"{where}[{i}]: {_fmt(a)}, recorded {_fmt(b)}"
        n = max(1, math.prod(w["shape"]))
        total = max(w["abs_sum"], g["abs_sum"], (INPUT_SCALE if whole is None else whole) * n)
        if abs(g["sum"] - w["sum"]) > tol.atol + tol.rtol * total:
            return f"{where}: sum {_fmt(g['sum'])}, recorded {_fmt(w['sum'])}"
    return None
