"""Cheap references: screens that clear most programs before an oracle's own reference runs.

Each oracle has a reference that costs compiles: ``jit_eager`` dispatches and compiles every
primitive alone (~10 compiles of a program), ``vmap`` compiles the batched program,
``autodiff`` the jvp and vjp. A screen computes the same values for a fraction of that:

* :func:`op_by_op` — the program's jaxpr evaluated primitive by primitive inside one
  ``jax.jit``, every primitive's results behind ``lax.optimization_barrier``, so XLA can
  neither fuse nor simplify across two of them: the op-by-op program in one compile (its
  compile costs less than the program's own, since nothing fuses).
* :func:`interpreted` — a function's lowering run by the StableHLO reference interpreter
  instead of compiled: the batched program for ``vmap``, the jvp and vjp for ``autodiff``;
  where it does not clear, the oracle compiles that same lowering.

A screen only clears: where its values agree with the compiled program the oracle passes;
anywhere else the oracle's own reference runs and decides, so a screen never adds a failure
nor a benign verdict. What a screen can miss is documented with each oracle
(docs/oracles.md): a discrepancy its reference shares with the compiled program.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from . import interpreter as interp
from .values import compare_arrays

__all__ = ["clears", "interpreted", "op_by_op"]

# call-like primitives whose body eager mode runs op by op (jax.disable_jit() inlines them);
# control flow (cond, while, scan) stays one primitive, compiled whole
_INLINE = frozenset({"pjit", "jit", "closed_call", "core_call", "custom_jvp_call",
                     "custom_vjp_call", "custom_vjp_call_jaxpr", "remat", "checkpoint"})


def _body(eqn: Any) -> tuple[Any, Sequence[Any]] | None:
    """The (jaxpr, consts) an inlined call runs, or None for a primitive bound whole."""
    if eqn.primitive.name not in _INLINE:
        return None
    for key in ("jaxpr", "call_jaxpr", "fun_jaxpr"):
        body = eqn.params.get(key)
        if body is not None:
            return (body.jaxpr, body.consts) if hasattr(body, "jaxpr") else (body, ())
    return None


def _evaluate(jaxpr: Any, consts: Sequence[Any], args: Sequence[Any]) -> list[Any]:
    """``jaxpr`` on ``args``, each primitive's results behind an optimization barrier."""
    from jax import lax

    env: dict = dict(zip(jaxpr.constvars, consts, strict=True))
    env.update(zip(jaxpr.invars, args, strict=True))

    def read(var: Any) -> Any:
        return var.val if type(var).__name__ == "Literal" else env[var]

    for eqn in jaxpr.eqns:
        ins = [read(v) for v in eqn.invars]
        body = _body(eqn)
        if body is not None:
            outs = _evaluate(body[0], body[1], ins)
        else:
            outs = eqn.primitive.bind(*ins, **eqn.params)
            outs = list(outs) if eqn.primitive.multiple_results else [outs]
            outs = list(lax.optimization_barrier(outs))
        env.update(zip(eqn.outvars, outs, strict=True))
    return [read(v) for v in jaxpr.outvars]


def op_by_op(f: Callable, inputs: Sequence[np.ndarray],
             options: dict[str, Any] | None = None) -> list[np.ndarray]:
    """``f(*inputs)``'s output leaves, computed op by op in one compile (module docstring)
    with XLA compiler ``options``. Raises what JAX raises where a primitive cannot be bound
    so (a key type the barrier refuses); the caller then runs its own reference."""
    import jax

    closed = jax.make_jaxpr(f)(*inputs)
    program = jax.jit(lambda *xs: _evaluate(closed.jaxpr, closed.consts, xs))
    compiled = program.lower(*inputs).compile(compiler_options=dict(options or {}))
    return [np.asarray(x) for x in jax.tree_util.tree_leaves(compiled(*inputs))]


def interpreted(lowered: Any, inputs: Sequence[Any]) -> list[np.ndarray] | None:
    """The output leaves of ``lowered`` (a ``jax.jit(..., keep_unused=True)`` lowering, whose
    caller compiles the same object where the screen does not clear) on ``inputs`` (a pytree
    per argument) by the StableHLO interpreter, or None where the interpreter must not run
    the module (``extract.interpreter.unsupported``) or cannot read a value back."""
    import jax

    from .backends import Unsupported

    try:
        out = interp.backend(lowered.as_text(), jax.tree_util.tree_leaves(inputs))
    except Unsupported:
        return None
    return [np.asarray(x) for x in out]


def clears(screen: Callable[[], Sequence[np.ndarray] | None],
           want: Sequence[np.ndarray]) -> bool:
    """Whether ``screen()``'s leaves agree with ``want`` within the value tolerance
    (``compare_arrays``). False where the screen returns None or raises: whatever stops a
    screen, the oracle's own reference then runs and meets it, or judges it."""
    try:
        got = screen()
    except Exception:  # noqa: BLE001 - the oracle's own reference decides
        return False
    return got is not None and len(got) == len(want) and all(
        np.shape(g) == np.shape(w) and compare_arrays(np.asarray(g), np.asarray(w)) is None
        for g, w in zip(got, want, strict=True))
