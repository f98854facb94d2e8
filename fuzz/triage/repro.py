"""The standalone reproducer of a failure folder, ``repro.py``: the program and a main block
that raises the failure, or hands an oracle's failure to ``fuzz.triage.oracle_repro``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from extract.backends import Backend
from extract.failures import GRAD_STAGES, ORACLE_STAGES
from extract.inputs import RECIPE
from extract.oracle_context import oracle_of
from fuzz.triage.oracle_repro import (
    EXPORT,
    device_prelude,
    entry_on_leaves,
    oracle_reproducer,
    x64_prelude,
)

__all__ = ["reproducer"]

_FORWARD = "jax.jit(fn).lower(*abstract).compile()"
_BACKWARD = """\
def loss(*args):  # as the extractor: the sum of the floating outputs, as float32
        leaves = jax.tree_util.tree_leaves(fn(*args))
        return sum(jnp.sum(x).astype(jnp.float32) for x in leaves
                   if jnp.issubdtype(x.dtype, jnp.floating))

    wrt = tuple(i for i, (_, d) in enumerate(ARGS) if jnp.issubdtype(jnp.dtype(d), jnp.floating))
    jax.jit(jax.grad(loss, argnums=wrt)).lower(*abstract).compile()"""


def _comment(text: object) -> str:
    """One line of text, safe inside a ``#`` comment."""
    lines = str(text).splitlines()
    return lines[0][:200] if lines else ""


def reproducer(source: str, entry: str, args: list, failure: dict[str, Any],
               found_by: str, seed: int = 0,
               polymorphic_shapes: list[str] | None = None,
               backends: Mapping[str, Backend] | None = None, recipe: str = RECIPE) -> str:
    """A standalone script: the program, then a main block that raises the failure, or for
    an oracle's failure prints both values (on the inputs of ``seed`` by ``recipe``) and exits 1; a
    program with ``polymorphic_shapes`` is exported over them as the extractor does.
    ``backends``: the run's backends by stage, for a failure in one of them."""
    stage = failure.get("stage", "")
    backend = (backends or {}).get(stage)
    if oracle_of(stage) != stage:  # a crash in an oracle's own compile: what it was checking
        failure = {**failure, "stage": oracle_of(stage)}
        stage = failure["stage"]
    if stage in ORACLE_STAGES or stage in ("run", "grad_run") or backend is not None:
        return oracle_reproducer(source, entry, args, failure, found_by, seed,
                                 polymorphic_shapes, backend, recipe)
    steps = [_FORWARD] if stage not in GRAD_STAGES else []
    if stage == "export":
        steps.append("export_symbolic(fn)")
    if stage in GRAD_STAGES or failure.get("type") in ("Timeout", "Crash"):
        steps.append(_BACKWARD)
    defs, fn, shapes = entry_on_leaves(entry, args)
    body = "\n    ".join(steps)
    export = EXPORT if polymorphic_shapes is not None else ""
    return f"""# jaxsmith reproducer: run with `python` to see the failure.
#
# signature: {_comment(failure.get("signature"))}
# known:     {_comment(failure.get("known"))}
# stage:     {_comment(stage)}
# error:     {_comment(failure.get("type"))}: {_comment(failure.get("message", ""))}
# found by:  {_comment(found_by)}
{device_prelude(source)}{source}{x64_prelude(args)}{defs}{export}

if __name__ == "__main__":
    ARGS = {shapes!r}
    SHAPES = {polymorphic_shapes!r}
    abstract = [jax.ShapeDtypeStruct(tuple(s), jnp.dtype(d)) for s, d in ARGS]
    fn = {fn}
    {body}
    print("no error: the failure did not reproduce with jax", jax.__version__)
"""
