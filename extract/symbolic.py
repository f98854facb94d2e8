"""Export over symbolic shapes (``jax.export``), and the ``symbolic`` oracle.

A program with ``polymorphic_shapes`` (category ``symbolic_shape``: its entry maps a
per-example function over a batch of size ``b``) is exported with ``jax.export.export``
over those shapes.  The record keeps the exported module's StableHLO (``exported_stablehlo``:
dynamic dimensions ``tensor<?x4xf32>``, ``get_dimension_size``, ``dynamic_*`` ops and the
shape assertions); every other field describes the program at the record's concrete
``args``.

The ``symbolic`` oracle calls the exported module, as a user of a serialized model would,
at the record's sizes and with every symbol at 1, against the program compiled for those
concrete shapes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .oracle_context import STRICT, Context, leaves, runner
from .verdicts import compare

__all__ = ["export", "symbolic"]


def export(f: Callable, specs: Sequence[tuple[tuple[int, ...], str]],
           shapes: Sequence[str]) -> Any:
    """``jax.export.export(jax.jit(f))`` over ``shapes`` (one per leaf of ``specs``, one
    scope for every symbol).

    The safety check on custom-call targets without a compatibility guarantee (the LAPACK
    kernels) is turned off for every target (``"ALL"``, which jax.export reads as every
    target): it guards deserializing the module under a later jaxlib, and jaxsmith never
    serializes it. Naming only the targets of the concrete module left it on for a target
    that only the symbolic lowering calls (issue 28's ``export:ValueError: Cannot
    serialize code with custom calls ...`` bucket).
    """
    import jax
    import jax.numpy as jnp
    from jax import export as jex

    avals = [jax.ShapeDtypeStruct(shape, jnp.dtype(dtype)) for shape, dtype in specs]
    symbolic = jex.symbolic_args_specs(avals, list(shapes))
    checks = [jex.DisabledSafetyCheck.custom_call("ALL")]
    return jex.export(jax.jit(f), disabled_checks=checks)(*symbolic)


def _at_one(x: np.ndarray, shape: str) -> np.ndarray:
    """``x`` cut to size 1 along every dimension that ``shape`` names by a symbol."""
    dims = [d.strip() for d in shape.split(",")] if shape.strip() else []
    return x[tuple(slice(None) if d.isdigit() else slice(0, 1) for d in dims)]


def symbolic(ctx: Context) -> str:
    """The module exported over symbolic shapes, called at the record's sizes and with every
    symbol at 1, against the program compiled for those shapes."""
    import jax


    if ctx.exported is None:
        return "skipped: not exported over symbolic shapes"
    if ctx.exported.nr_devices > 1:  # Exported.call refuses another device count
        return (f"skipped: exported for {ctx.exported.nr_devices} devices, and its call runs "
                "on one")
    call = jax.jit(ctx.exported.call)

    def strict_call(inputs):
        return leaves(call.lower(*inputs).compile(compiler_options=STRICT)(*inputs))

    got = leaves(call(*ctx.inputs))
    first = compare("symbolic", ctx, got, ctx.outputs, ctx.inputs,
                    "the exported module (got) against jit (want), at the record's sizes",
                    lambda: (strict_call(ctx.inputs), ctx.strict_run(ctx.inputs)),
                    ctx.outputs)
    one = [_at_one(x, s) for x, s in zip(ctx.inputs, ctx.polymorphic_shapes, strict=True)]
    run_with = runner(jax.jit(ctx.f).lower(*one))
    small = dataclasses.replace(ctx, run=lambda inputs: run_with({}, inputs), inputs=one,
                                run_with=run_with, outputs=run_with({}, one))
    second = compare("symbolic", small, leaves(call(*one)), small.outputs, one,
                     "the exported module (got) against jit (want), every symbol at 1",
                     lambda: (strict_call(one), small.strict_run(one)), small.outputs)
    return next((v for v in (first, second) if v != "pass"), "pass")
