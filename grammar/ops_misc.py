"""Identity-like primitives and function wrappers: ``lax.optimization_barrier``,
``jax.device_put`` and ``jax.custom_batching.sequential_vmap`` (``custom_vmap_call``).

JAX has no derivative rule for a custom_vmap function (``jax.grad`` fails with a
ValueError), so its operand goes in through ``lax.stop_gradient``: the derivative is zero by
request, and the wrapped body is closed (it sees only its parameter), so nothing inside it is
ever differentiated.  ``jax.lax.composite`` wraps a body the same way but is left out: XLA
crashes compiling one whose body holds a dead two-operand reduce
(``findings/composite_dead_reduce_segfault.py``), and generated bodies often hold dead code.
"""

from __future__ import annotations

import libcst as cst

from grammar.opdef import Env, Op, RegionSpec, Sig, expression, flag, same, tensor
from grammar.ops_control import define
from grammar.syntax import assign, call, tuple_
from grammar.types import ANY, TensorType


def _barrier_signature(draw, x: TensorType, env: Env) -> Sig:
    """One operand, or a pair whose second operand may have any type."""
    if flag(draw):
        return Sig((x,), {"pair": False})
    return Sig((x, tensor(draw, env, ANY)), {"pair": True})


def _barrier(a, p, r):
    return call("lax.optimization_barrier", tuple_(a) if p["pair"] else a[0])


def _wrapped_signature(draw, x: TensorType, env: Env) -> Sig:
    """The body keeps no ``reduce_argmax``: XLA crashes (SIGSEGV, or SIGABRT "Failed to
    infer result type(s)") on a dead ``lax.reduce`` whose reducer calls ``jnp.where``
    inside a ``custom_vmap_call``, which keeps dead code (docs/findings.md, Finding 9)."""
    return Sig((x,), {}, (RegionSpec((x,), (None,), closed=True,
                                     excluded=frozenset({"reduce_argmax"})),))


def _wrapper(fn: str, **kwargs):
    """``fn(body, **kwargs)(lax.stop_gradient(x))`` after the body's ``def``."""
    def render(out, a, p, r):
        wrapped = call(fn, cst.Name(r[0].name), **kwargs)
        return [define(r[0]), assign(out, cst.Call(wrapped, [cst.Arg(
            call("lax.stop_gradient", a[0]))]))]
    return render


MISC_OPS = [
    Op("optimization_barrier", "misc", ("misc",), ANY, (0, 4), _barrier_signature,
       lambda i, p, r: tuple(i), expression(_barrier), calls=("lax.optimization_barrier",)),
    Op("device_put", "misc", ("misc",), ANY, (0, 4), lambda draw, x, env: Sig((x,)), same,
       expression(lambda a, p, r: call("jax.device_put", a[0])), calls=("jax.device_put",)),
    Op("sequential_vmap", "transform", ("transform", "custom_rule"), ANY, (0, 4),
       _wrapped_signature, lambda i, p, r: (r[0][0],),
       _wrapper("jax.custom_batching.sequential_vmap"),
       calls=("jax.custom_batching.sequential_vmap", "lax.stop_gradient")),
]
