"""Differential oracles: the compiled program's values checked against independent references.

* ``jit_eager``   the program op by op under ``jax.disable_jit()``, against the compiled one.
* ``autodiff``    reverse mode against finite differences, jvp against vjp
  (``extract.autodiff``).
* ``vmap``        ``jax.jit(jax.vmap(f))`` over a batch of 3 inputs against f on each.
* ``interpreter`` the lowered StableHLO run by the StableHLO reference interpreter
  (``extract.interpreter``), against XLA: the built-in backend :data:`INTERPRETER`.
* ``unsimplified`` the same module compiled once more with XLA's simplification passes off
  (:data:`SIMPLIFICATION_PASSES`), against the compiled program: one compile, where
  ``jit_eager`` dispatches and compiles every primitive alone.
* ``backend:<name>`` a user's backend (``extract.backends``) judged against XLA, on every
  program that runs (:func:`backend_oracle`).
* ``symbolic``    the module exported over symbolic shapes, called at two sizes, against
  jit (``extract.symbolic``; programs with ``polymorphic_shapes`` only).
* ``pallas``      the program with every Pallas kernel run over ``jnp`` blocks in a Python
  loop (``extract.pallas_reference``), against Pallas' interpreter (programs that import
  Pallas only).

Every oracle returns ``"pass"``, ``"skipped: <reason>"`` or ``"benign: <name>"`` (a
discrepancy of a registered benign kind, ``extract.verdicts.BENIGN``), or raises :class:`Violation`.
Anything else it raises is JAX disagreeing with itself (eager raising where jit did not,
for instance) and is classified by the caller like any failure.

Seeds: the inputs come from ``make_inputs(args, seed)``; the oracles' other draws use
``derive(seed, purpose)`` (``extract.oracle_context``), all through the same recipe.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable

import numpy as np

from . import interpreter as interp
from . import screens
from .autodiff import FD_EPS, autodiff
from .backends import Backend, Unsupported
from .inputs import make_inputs
from .oracle_context import (
    ORACLES,
    STRICT,
    Context,
    Violation,
    check_oracles,
    derive,
    is_float,
    leaves,
)
from .symbolic import symbolic
from .values import compare_arrays
from .verdicts import compare

__all__ = ["FD_EPS", "INTERPRETER", "ORACLES", "STRICT", "Context", "Violation",
           "backend_oracle", "check_oracles", "derive", "run_oracle"]

_BATCH = 3  # derive() purpose (autodiff uses 1 and 2, extract.verdicts 4)
BATCH_SIZE = 3  # examples in the vmap oracle's batch


EAGER_EVERY = 32
"""``jit_eager`` runs the program under ``jax.disable_jit()`` on every program whose input
seed is a multiple of this, whatever the screen says: one in 32 of a run's (its seeds are
hashes), as many as the former default rate of 0.03 ran eagerly, at 1,482 ms median a
program (docs/benchmarks.md). The screen traces the program as jit does, so only eager mode
itself meets a JAX function that computes otherwise on concrete values than on tracers."""


def jit_eager(ctx: Context) -> str:
    """The compiled program against the same program op by op under ``jax.disable_jit()``;
    cleared without it (:func:`_cleared`), except on one program in :data:`EAGER_EVERY`."""
    import jax

    if ctx.seed % EAGER_EVERY and _cleared(ctx):
        return "pass"
    arrays = [jax.device_put(x) for x in ctx.inputs]  # as a user calls it: on jax.Arrays
    with jax.disable_jit():
        eager = leaves(ctx.f(*arrays))
    return compare("jit_eager", ctx, ctx.outputs, eager, ctx.inputs,
                    "jit (got) against eager (want)",
                    lambda: (ctx.strict_run(ctx.inputs), eager), ctx.outputs, bisect=True)


def vmap(ctx: Context) -> str:
    """``jax.jit(jax.vmap(f))`` on a batch of 3 examples against the program on each: its
    lowering run by the interpreter, and compiled where that does not clear it."""
    import jax

    if not ctx.specs:
        return "skipped: no argument to batch"
    if "stablehlo.rng_bit_generator" in ctx.stablehlo_text:
        # jax.random's table of implementations promises "exact jax.vmap over keys" for
        # threefry only: a batch of rbg keys draws other bits than each key alone.
        return "skipped: rbg keys (rng_bit_generator) are not exact under vmap"
    batch = [ctx.inputs] + [make_inputs(ctx.specs, derive(ctx.seed, _BATCH, b), ctx.recipe)
                            for b in range(1, BATCH_SIZE)]
    stacked = [np.stack([inputs[i] for inputs in batch]) for i in range(len(ctx.specs))]
    singles = [ctx.outputs] + [ctx.run(inputs) for inputs in batch[1:]]
    rows = [x for single in singles for x in single]  # the interpreted batch, row by row
    lowered = jax.jit(jax.vmap(ctx.f), keep_unused=True).lower(*stacked)
    if screens.clears(lambda: _rows(screens.interpreted(lowered, stacked)), rows):
        return "pass"
    batched = leaves(lowered.compile()(*stacked))
    verdicts = []
    for b, (inputs, single) in enumerate(zip(batch, singles, strict=True)):  # every row: a
        # benign row must not hide a bad one

        def strict(b=b, inputs=inputs):
            compiled = lowered.compile(compiler_options=STRICT)
            return ([x[b] for x in leaves(compiled(*stacked))], ctx.strict_run(inputs))

        verdicts.append(compare(
            "vmap", ctx, [x[b] for x in batched], single, inputs,
            f"vmap row {b} (got) against the program on example {b} (want)", strict, single))
    return next((v for v in verdicts if v != "pass"), "pass")


def _rows(batched: list[np.ndarray] | None) -> list[np.ndarray] | None:
    """The rows of a batch's output leaves, example by example (None stays None)."""
    return None if batched is None else [x[b] for b in range(BATCH_SIZE) for x in batched]


INTERPRETER = Backend("interpreter", interp.backend, "extract.interpreter:backend",
                      reference=True)
"""The StableHLO reference interpreter: the backend the ``interpreter`` oracle runs. It is
the reference, so XLA is judged against it, and a discrepancy is blamed on an XLA pass."""


def backend_oracle(backend: Backend, ctx: Context) -> str:
    """``backend``'s outputs on the program's inputs against XLA's (a reference backend
    judges XLA; any other is judged by XLA). A backend that raises ``Unsupported`` is
    skipped; one that returns something other than a list of arrays violates ``structure``.
    """
    import jax

    inputs = [np.array(x) for x in ctx.inputs]  # copies: the backend may write into them
    try:
        if backend.takes == "callable":
            out = backend.fn(ctx.f, inputs)
        else:
            text = ctx.stablehlo_text
            if interp.argument_count(text) != len(inputs):  # jit dropped unused arguments
                text = jax.jit(ctx.f, keep_unused=True).lower(*ctx.inputs).as_text()
            out = backend.fn(text, inputs)
    except Unsupported as e:
        return f"skipped: {e}"
    if not isinstance(out, (list, tuple)):
        raise Violation(backend.stage, "structure", "-", f"backend {backend.name} returned a "
                        f"{type(out).__name__}, not a list of arrays (the output leaves)")
    got = [np.asarray(x) for x in out]
    if backend.reference:
        return compare(backend.stage, ctx, ctx.outputs, got, ctx.inputs,
                       f"XLA (got) against the {backend.name} (want)",
                       lambda: (ctx.strict_run(ctx.inputs), got), ctx.outputs, bisect=True)
    return compare(backend.stage, ctx, got, ctx.outputs, ctx.inputs,
                   f"backend {backend.name} (got) against XLA (want)",
                   lambda: (got, ctx.strict_run(ctx.inputs)), ctx.outputs)


def interpreter(ctx: Context) -> str:
    """XLA's values against the StableHLO reference interpreter's, on the same module; a
    discrepancy the other legal schedule of the module's sums removes, one that flushing the
    subnormals a bitcast makes removes, or one where XLA agrees with the interpreter on
    float64 arguments, is benign."""
    try:
        return backend_oracle(INTERPRETER, ctx)
    except Violation as violation:
        if violation.check != "value":
            raise
        for marker, option, kind in _RERUNS:
            if marker in ctx.stablehlo_text and _agrees_with_interpreter(ctx, **{option: True}):
                return f"benign: {kind}"
        if violation.dtype.startswith(("float", "bfloat")) and \
                _agrees_with_float64_interpreter(ctx):
            return "benign: reference_rounding"
        raise violation from None


_RERUNS = (("stablehlo.reduce", "sums_without_init", "reduce_init_count"),
           ("stablehlo.bitcast_convert", "flush_bitcasts", "subnormal_flush"))
"""The interpreter's reruns for a value discrepancy: in a module holding the op, the option
of ``extract.interpreter.run_module`` that computes the other legal result, and the benign
kind it shows when XLA agrees with it."""


def _agrees_with_interpreter(ctx: Context, **options: bool) -> bool:
    """Whether XLA agrees with the interpreter run with ``options``: a rerun only excuses, so
    one that fails for any reason excuses nothing."""
    rerun = dataclasses.replace(INTERPRETER, fn=functools.partial(interp.backend, **options))
    try:
        return not backend_oracle(rerun, ctx).startswith("skipped")
    except Exception:  # noqa: BLE001
        return False


def _agrees_with_float64_interpreter(ctx: Context) -> bool:
    """Whether every output of XLA agrees with the interpreter's run of the program lowered
    for float64 copies of its floating arguments (``jax.enable_x64``), rounded to the
    output's type: the reference rounding far less. XLA takes no part in it, so a
    miscompile XLA makes at every precision is not excused."""
    import jax

    try:
        with jax.enable_x64(True):
            wide = [x.astype(np.float64) if is_float(x.dtype) and x.dtype.kind != "c" else x
                    for x in ctx.inputs]
            text = jax.jit(ctx.f).lower(*wide).as_text()
        reference = interp.backend(text, wide)
    except Exception:  # a bitcast, a carry's dtype, an op the interpreter refuses
        return False
    return len(reference) == len(ctx.outputs) and all(
        np.shape(r) == np.shape(o) and compare_arrays(o, np.asarray(r).astype(o.dtype)) is None
        for o, r in zip(ctx.outputs, reference, strict=True))


def pallas(ctx: Context) -> str:
    """Pallas' interpreter against the same kernels run over plain ``jnp`` blocks: the
    program again, its module's ``pl`` bound to ``extract.pallas_reference``."""
    import jax

    from . import pallas_reference

    if ctx.namespace is None or "pl" not in ctx.namespace:
        return "skipped: no Pallas kernel"
    real = ctx.namespace["pl"]
    ctx.namespace["pl"] = pallas_reference
    try:  # a new function object, so that jit traces it again with the reference bound
        want = leaves(jax.jit(lambda *xs: ctx.f(*xs))(*ctx.inputs))
    except pallas_reference.GridTooLarge as e:
        return f"skipped: {e}"
    finally:
        ctx.namespace["pl"] = real
    return compare("pallas", ctx, ctx.outputs, want, ctx.inputs,
                   "pallas_call in interpret mode (got) against the kernel over jnp blocks "
                   "(want)", lambda: (ctx.strict_run(ctx.inputs), want), ctx.outputs)


SIMPLIFICATION_PASSES = (
    "algsimp", "batch-dot-simplification", "constant_folding", "cse", "dce", "reshape-mover",
    "simplify-conditional", "simplify-sorts", "simplify-while-loops",
    "small-while-loop-hoisting", "transpose-folding", "tuple-simplifier",
    "while-loop-constant-sinking", "while-loop-invariant-code-motion")
"""The XLA:CPU passes the ``unsimplified`` oracle turns off: those that rewrite a module into
an equivalent one, none that the backend needs (``gather_simplifier`` is: without it
XLA:CPU aborts on a gather; measured on 150 programs of a 30-minute run, all of which
compiled, ran and agreed without these). ``fusion`` stays on: without it a compile takes
twice as long; ``jit_eager`` covers it."""


def unsimplified(ctx: Context) -> str:
    """The compiled program against the same module compiled with
    :data:`SIMPLIFICATION_PASSES` off, where :func:`_cleared` does not clear it; a discrepancy
    is blamed on the fewest of them (of those that fired, where the pass dump says) whose
    removal alone removes it."""
    if _cleared(ctx):
        return "pass"
    off = ",".join(SIMPLIFICATION_PASSES)
    want = ctx.run_with({"xla_disable_hlo_passes": off}, ctx.inputs)
    strict_off = {**STRICT, "xla_disable_hlo_passes": f"{off},{STRICT['xla_disable_hlo_passes']}"}
    return compare("unsimplified", ctx, ctx.outputs, want, ctx.inputs,
                   "jit (got) against jit with XLA's simplification passes off (want)",
                   lambda: (ctx.strict_run(ctx.inputs), ctx.run_with(strict_off, ctx.inputs)),
                   ctx.outputs, bisect=[p for p in SIMPLIFICATION_PASSES
                                        if not ctx.passes or p in ctx.passes])


def _cleared(ctx: Context) -> bool:
    """Whether ``jit_eager`` and ``unsimplified`` may pass ``ctx`` without their own
    reference: the interpreter passed it (XLA computed what the spec says the module
    computes, so no pass changed its values: what both ask), or else the program op by op
    in one compile with :data:`SIMPLIFICATION_PASSES` off agrees (``extract.screens``: one
    compile for both, where their own references cost one and a dozen)."""
    if ctx.verdicts.get("interpreter") == "pass":
        return True
    if "unoptimized" not in ctx.shared:
        options = {"xla_disable_hlo_passes": ",".join(SIMPLIFICATION_PASSES)}
        ctx.shared["unoptimized"] = screens.clears(
            lambda: screens.op_by_op(ctx.f, ctx.inputs, options), ctx.outputs)
    return ctx.shared["unoptimized"]


_ORACLES: dict[str, Callable[[Context], str]] = {
    "jit_eager": jit_eager, "autodiff": autodiff, "vmap": vmap, "interpreter": interpreter,
    "unsimplified": unsimplified, "symbolic": symbolic, "pallas": pallas}


def run_oracle(name: str, ctx: Context) -> str:
    """Run oracle ``name`` on ``ctx``: its verdict, or :class:`Violation`."""
    return _ORACLES[name](ctx)
