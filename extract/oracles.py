"""Differential oracles: the compiled program's values checked against independent references.

* ``jit_eager``   the program op by op under ``jax.disable_jit()``, against the compiled one.
* ``autodiff``    (a) forward against reverse mode: <v, J u> from ``jax.jvp`` equals
  <J^T v, u> from ``jax.vjp`` for a random tangent u and cotangent v (one extra compile);
  (b) the recorded gradient (reverse mode, v = 1) against central finite differences of the
  compiled program in one random direction u, where the program is smooth at the point
  (the difference quotients at eps and eps/2 agree), as ``jax._src.public_test_util
  .check_vjp`` does. A wrong derivative rule is consistent between jvp and vjp, so only (b)
  catches it; (a) catches a wrong transpose or linearisation.
* ``vmap``        ``jax.jit(jax.vmap(f))`` over a batch of 3 inputs against f on each.
* ``interpreter`` the lowered StableHLO run by the StableHLO reference interpreter
  (``extract.interpreter``), against XLA.

Every oracle returns ``"pass"``, ``"skipped: <reason>"`` or ``"benign: <name>"`` (a
discrepancy of a registered benign kind, see ``BENIGN``), or raises :class:`Violation`.
Anything else it raises is JAX disagreeing with itself (eager raising where jit did not,
for instance) and is classified by the caller like any failure.

Seeds: the inputs come from ``make_inputs(args, seed)``; the oracles' other draws use
``derive(seed, purpose)`` with the purposes below, all through the same recipe.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .failures import ORACLE_STAGES as ORACLES
from .inputs import make_inputs
from .values import GRAD_RTOL, compare_arrays

__all__ = ["BENIGN", "ORACLES", "Context", "Violation", "check_oracles", "derive", "run_oracle"]

_TANGENT, _COTANGENT, _BATCH, _PERTURB = 1, 2, 3, 4
BATCH = 3
# Central differences: eps = 2**-10 keeps x +- eps*u exact in float32 for recipe inputs
# (multiples of 2**-7 plus multiples of 2**-17); rounding error ~ 6e-8 * |f| / eps = 6e-5
# relative and truncation error ~ eps**2 * |f'''| / 6 = 2e-7 * |f'''|, both well inside
# the float32 gradient tolerance 2e-3.
FD_EPS = 2.0**-10

# XLA may keep float16/bfloat16 intermediates in float32 inside a fusion and round once
# (``xla_allow_excess_precision``, on by default); the references round after every op.
STRICT = {"xla_allow_excess_precision": False}
_LOW_PRECISION = re.compile(r"\b(?:bf16|f16)\b")

BENIGN = {
    "excess_precision": (
        "the values differ in a program that computes in float16 or bfloat16, and agree once "
        "the program is recompiled with xla_allow_excess_precision=false: XLA kept "
        "intermediates in float32 inside a fusion (documented XLA behaviour; the reference "
        "rounds after every op), and a near-tie downstream (argsort, comparison) amplified "
        "the last-bit difference"),
    "ill_conditioned": (
        "the values differ, but moving each floating input by one ulp already moves the "
        "compiled program's output by more than the tolerance: the program is discontinuous "
        "or ill-conditioned at this input (floor, sign, comparisons, argmax/sort ties, "
        "casts to int, a huge derivative), so a correct one-ulp difference inside it can "
        "show as any difference outside"),
}


class Violation(Exception):
    """An oracle's reference and the compiled program disagree beyond tolerance."""

    def __init__(self, oracle: str, check: str, dtype: str, message: str):
        super().__init__(message)
        self.oracle, self.check, self.dtype, self.message = oracle, check, dtype, message

    @property
    def signature(self) -> str:
        return f"{self.oracle}:{self.check}:{self.dtype}"

    def failure(self) -> dict[str, Any]:
        """The failure record of this violation (stage: the oracle's name)."""
        return {"stage": self.oracle, "type": "Mismatch", "message": self.message,
                "signature": self.signature, "known": None}


def check_oracles(names: Sequence[str] | None) -> tuple[str, ...]:
    """``names`` as a tuple of known oracle names; ``ValueError`` names an unknown one."""
    if names is None:
        return ()
    if isinstance(names, str):
        raise ValueError(f"oracles={names!r} must be a list of names from {ORACLES}")
    unknown = [n for n in names if n not in ORACLES]
    if unknown:
        raise ValueError(f"oracles={list(names)!r}: unknown {', '.join(map(str, unknown))}; "
                         f"accepted: {', '.join(ORACLES)}")
    return tuple(dict.fromkeys(names))


def derive(seed: int, purpose: int) -> int:
    """Seed of an oracle's own draws: ``(seed * 8 + purpose) mod 2**63``."""
    return (int(seed) * 8 + purpose) % 2**63


def _is_float(dtype: Any) -> bool:
    d = np.dtype(dtype)
    return np.issubdtype(d, np.floating) or d.name == "bfloat16"


def _leaves(value: Any) -> list[np.ndarray]:
    import jax

    return [np.asarray(x) for x in jax.tree_util.tree_leaves(value)]


@dataclass
class Context:
    """What every oracle needs of one extracted program."""

    f: Callable
    run: Callable[[Sequence[np.ndarray]], list[np.ndarray]]  # compiled forward, leaves out
    specs: tuple
    seed: int
    inputs: list[np.ndarray]
    outputs: list[np.ndarray]
    stablehlo_text: str
    strict_run: Callable[[Sequence[np.ndarray]], list[np.ndarray]] | None = None
    grad: list[np.ndarray] | None = None  # recorded gradient, one per float argument
    notes: dict[str, Any] = field(default_factory=dict)

    @property
    def low_precision(self) -> bool:
        """Whether the program computes in float16 or bfloat16 anywhere."""
        return bool(_LOW_PRECISION.search(self.stablehlo_text))

    @property
    def float_args(self) -> list[int]:
        return [i for i, (_, d) in enumerate(self.specs) if _is_float(d)]


def _ulp_step(x: np.ndarray, direction: np.ndarray) -> np.ndarray:
    """``x`` moved by one ulp away from or toward zero where ``direction`` is 1 or 0."""
    uint = {2: np.uint16, 4: np.uint32, 8: np.uint64}[x.dtype.itemsize]
    bits = np.ascontiguousarray(x).view(uint).astype(np.int64)
    moved = np.where(direction.astype(bool), bits + 1, bits - 1)
    return moved.astype(uint).view(x.dtype).reshape(x.shape)


def ill_conditioned(ctx: Context, inputs: Sequence[np.ndarray],
                    reference: Sequence[np.ndarray]) -> bool:
    """True if moving every floating input of ``inputs`` by one ulp (two seeded random
    directions) moves the compiled program's output away from ``reference`` (its output at
    ``inputs``) beyond the value tolerance. Integer inputs cannot move: a program without floating inputs is never
    ill-conditioned by this test."""
    idx = [i for i, x in enumerate(inputs) if _is_float(x.dtype) and x.size]
    if not idx:
        return False
    for trial in range(2):
        signs = make_inputs([(inputs[i].shape, "bool") for i in idx],
                            derive(ctx.seed, _PERTURB) + trial)
        moved = list(inputs)
        for i, s in zip(idx, signs, strict=True):
            moved[i] = _ulp_step(inputs[i], s)
        out = ctx.run(moved)
        if any(compare_arrays(o, r) is not None for o, r in zip(out, reference, strict=True)):
            return True
    return False


def _compare(oracle: str, ctx: Context, got: Sequence[np.ndarray],
             want: Sequence[np.ndarray], inputs: Sequence[np.ndarray], what: str,
             strict: Callable[[], tuple[list, list]],
             baseline: Sequence[np.ndarray]) -> str:
    """``"pass"`` if every output of ``got`` matches ``want``; else a registered benign
    verdict, or :class:`Violation` at the first output that differs.

    ``strict()`` gives (got, want) again with XLA's excess precision turned off;
    ``baseline`` is the compiled program's output on ``inputs``, which the ill-conditioning
    test moves away from.
    """
    if len(got) != len(want):
        raise Violation(oracle, "structure", "-", f"{what}: {len(got)} outputs, want "
                        f"{len(want)}")
    for k, (g, w) in enumerate(zip(got, want, strict=True)):
        problem = compare_arrays(g, w)
        if problem is None:
            continue
        if ctx.low_precision:
            got2, want2 = strict()
            if all(compare_arrays(a, b) is None for a, b in zip(got2, want2, strict=True)):
                return "benign: excess_precision"
        if ill_conditioned(ctx, inputs, baseline):
            return "benign: ill_conditioned"
        raise Violation(oracle, "value", np.dtype(w.dtype).name, f"{what}, output {k}: {problem}")
    return "pass"


def jit_eager(ctx: Context) -> str:
    import jax

    arrays = [jax.device_put(x) for x in ctx.inputs]  # as a user calls it: on jax.Arrays
    with jax.disable_jit():
        eager = _leaves(ctx.f(*arrays))
    return _compare("jit_eager", ctx, ctx.outputs, eager, ctx.inputs,
                    "jit (got) against eager (want)",
                    lambda: (ctx.strict_run(ctx.inputs), eager), ctx.outputs)


def vmap(ctx: Context) -> str:
    import jax

    if not ctx.specs:
        return "skipped: no argument to batch"
    batch = [ctx.inputs] + [make_inputs(ctx.specs, derive(ctx.seed, _BATCH) + b)
                            for b in range(1, BATCH)]
    stacked = [np.stack([inputs[i] for inputs in batch]) for i in range(len(ctx.specs))]
    batched_fn = jax.jit(jax.vmap(ctx.f))
    batched = _leaves(batched_fn(*stacked))
    for b, inputs in enumerate(batch):
        single = ctx.outputs if b == 0 else ctx.run(inputs)

        def strict(b=b, inputs=inputs):
            compiled = batched_fn.lower(*stacked).compile(compiler_options=STRICT)
            return ([x[b] for x in _leaves(compiled(*stacked))], ctx.strict_run(inputs))

        verdict = _compare("vmap", ctx, [x[b] for x in batched], single, inputs,
                           f"vmap row {b} (got) against the program on example {b} (want)",
                           strict, single)
        if verdict != "pass":
            return verdict
    return "pass"


def interpreter(ctx: Context) -> str:
    import jax

    from . import interpreter as interp

    text = ctx.stablehlo_text
    reason = interp.unsupported(text)
    if reason:
        return f"skipped: {reason}"
    if interp.argument_count(text) != len(ctx.inputs):  # jit dropped unused arguments
        text = jax.jit(ctx.f, keep_unused=True).lower(*ctx.inputs).as_text()
    reference = interp.run_module(text, ctx.inputs)
    return _compare("interpreter", ctx, ctx.outputs, reference, ctx.inputs,
                    "XLA (got) against the StableHLO interpreter (want)",
                    lambda: (ctx.strict_run(ctx.inputs), reference), ctx.outputs)


def _grad_rtol(dtypes: Sequence[Any]) -> float:
    names = [np.dtype(d).name for d in dtypes if _is_float(d)]
    return max([GRAD_RTOL.get(n, GRAD_RTOL["float32"]) for n in names] or [GRAD_RTOL["float32"]])


def _dot(a: Sequence[np.ndarray], b: Sequence[np.ndarray]) -> tuple[float, float]:
    """<a, b> and sum |a_i b_i| in float64."""
    total = scale = 0.0
    for x, y in zip(a, b, strict=True):
        p = np.asarray(x, np.float64) * np.asarray(y, np.float64)
        total, scale = total + float(p.sum()), scale + float(np.abs(p).sum())
    return total, scale


def autodiff(ctx: Context) -> str:
    import jax

    fa = ctx.float_args
    out_float = [_is_float(o.dtype) for o in ctx.outputs]
    if ctx.grad is None:
        return "skipped: no reverse-mode gradient"
    if not fa or not any(out_float):
        return "skipped: no floating argument or output"
    if not all(np.isfinite(o.astype(np.float64)).all() for o, k in zip(ctx.outputs, out_float,
                                                                        strict=True) if k):
        return "skipped: non-finite output"
    tangents = make_inputs([ctx.specs[i] for i in fa], derive(ctx.seed, _TANGENT))
    rtol = _grad_rtol([ctx.specs[i][1] for i in fa] + [o.dtype for o in ctx.outputs])

    # (b) recorded gradient against finite differences, in the float32 arguments only (a
    # step of 2**-10 is below the resolution of float16 and bfloat16 inputs).
    u = [t if np.dtype(ctx.specs[i][1]) == np.float32 else np.zeros_like(t)
         for i, t in zip(fa, tangents, strict=True)]
    verdict = "pass"
    if ctx.low_precision:  # a 2**-10 step is below their resolution: the quotient is noise
        verdict = "skipped: float16/bfloat16 inside (finite differences cannot resolve them)"
    elif any(x.any() for x in u):
        ad, scale = _dot(ctx.grad, u)

        def total(eps: float) -> float:
            moved = list(ctx.inputs)
            for i, t in zip(fa, u, strict=True):
                moved[i] = (ctx.inputs[i].astype(np.float64) + eps * t).astype(
                    ctx.inputs[i].dtype)
            return sum(float(np.sum(o, dtype=np.float64)) for o, k in
                       zip(ctx.run(moved), out_float, strict=True) if k)

        fd = [(total(e) - total(-e)) / (2 * e) for e in (FD_EPS, FD_EPS / 2)]
        size = max(scale, abs(fd[0]), abs(fd[1]), 1e-6)
        ctx.notes["fd"] = fd
        ctx.notes["reverse"] = ad
        if not all(np.isfinite(fd)) or abs(fd[0] - fd[1]) > rtol * size:
            verdict = "skipped: not smooth at the input (finite differences)"
        elif abs(ad - fd[1]) > rtol * size:
            raise Violation("autodiff", "finite_differences", "float32",
                            f"reverse-mode <grad, u> = {ad:.9g}, central differences "
                            f"{fd[1]:.9g} (eps {FD_EPS / 2:g}; at eps {FD_EPS:g}: {fd[0]:.9g});"
                            f" |diff| {abs(ad - fd[1]):.3g} > rtol {rtol:g} x {size:.3g}")
    else:
        verdict = "skipped: no float32 argument for finite differences"

    # (a) forward against reverse mode, in every floating argument and output.
    fixed = list(ctx.inputs)

    def floats_only(*xs):
        args = list(fixed)
        for i, x in zip(fa, xs, strict=True):
            args[i] = x
        leaves = jax.tree_util.tree_leaves(ctx.f(*args))
        return [leaf for leaf, k in zip(leaves, out_float, strict=True) if k]

    cot_specs = [(o.shape, o.dtype.name) for o, k in zip(ctx.outputs, out_float, strict=True)
                 if k]
    cotangents = make_inputs(cot_specs, derive(ctx.seed, _COTANGENT))

    def both(primals, tans, cots):
        _, forward = jax.jvp(floats_only, tuple(primals), tuple(tans))
        _, pull = jax.vjp(floats_only, *primals)
        return forward, pull(list(cots))

    forward, backward = jax.jit(both)([ctx.inputs[i] for i in fa], tangents, cotangents)
    lhs, s1 = _dot(cotangents, _leaves(forward))
    rhs, s2 = _dot(_leaves(backward), tangents)
    size = max(s1, s2, 1e-6)
    if not np.isfinite(lhs) or not np.isfinite(rhs):
        return verdict if verdict != "pass" else "skipped: non-finite jvp or vjp"
    if abs(lhs - rhs) > rtol * size:
        raise Violation("autodiff", "jvp_vjp", np.dtype(cot_specs[0][1]).name,
                        f"<v, J u> from jax.jvp = {lhs:.9g}, <J^T v, u> from jax.vjp = "
                        f"{rhs:.9g}; |diff| {abs(lhs - rhs):.3g} > rtol {rtol:g} x {size:.3g}")
    return verdict


_ORACLES: dict[str, Callable[[Context], str]] = {
    "jit_eager": jit_eager, "autodiff": autodiff, "vmap": vmap, "interpreter": interpreter}


def run_oracle(name: str, ctx: Context) -> str:
    """Run oracle ``name`` on ``ctx``: its verdict, or :class:`Violation`."""
    return _ORACLES[name](ctx)
