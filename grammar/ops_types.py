"""Types as values, the way model code reads them (``fuzz api-coverage`` found them among the
most used names the grammar lacked): ``jax.typeof(x).shape``, and ``jax.eval_shape`` over a
``jax.ShapeDtypeStruct`` to learn what a function returns without running it.

``typeof_scale`` scales by the inverse square root of the last dimension, as attention does
(``x * jax.typeof(x).shape[-1] ** -0.5``: a Python float, so the dtype stays).
``eval_shape`` makes zeros of the type a region returns for an argument of the operand's
type (an initial state or buffer); the region itself is only traced, never run.
"""

from __future__ import annotations

import libcst as cst

from grammar.opdef import Env, Op, RegionSpec, Sig, expression, same
from grammar.ops_control import define
from grammar.syntax import assign, binop, call, subscript
from grammar.types import ANY, FLOAT, TensorType


def _attr(value: cst.BaseExpression, name: str) -> cst.Attribute:
    return cst.Attribute(value, cst.Name(name))


def _scale(a, p, r) -> cst.BaseExpression:
    last = subscript(_attr(call("jax.typeof", a[0]), "shape"), [-1])
    return binop(a[0], "*", binop(last, "**", -0.5))


def _eval_shape_signature(draw, x: TensorType, env: Env) -> Sig:
    return Sig((x,), {}, (RegionSpec((x,), (None,)),))


def _eval_shape(out, a, p, r):
    struct = cst.Name(f"{out[0]}_struct")
    spec = call("jax.ShapeDtypeStruct", _attr(a[0], "shape"), _attr(a[0], "dtype"))
    return [define(r[0]),
            assign([struct.value], call("jax.eval_shape", cst.Name(r[0].name), spec)),
            assign(out, call("jnp.zeros", _attr(struct, "shape"), _attr(struct, "dtype")))]


TYPE_OPS = [
    Op("typeof_scale", "nn", ("elementwise",), FLOAT, (1, 4), lambda d, x, e: Sig((x,)), same,
       expression(_scale), calls=("jax.typeof",)),
    Op("eval_shape", "transform", ("transform",), ANY, (0, 4), _eval_shape_signature,
       lambda i, p, r: (r[0][0],), _eval_shape,
       calls=("jax.eval_shape", "jax.ShapeDtypeStruct", "jnp.zeros")),
]
