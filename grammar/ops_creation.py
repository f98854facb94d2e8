"""Array creation and the small linear-algebra helpers real JAX code calls most and the
grammar lacked (``fuzz api-coverage``): ``jnp.zeros``, ``zeros_like``, ``full``,
``full_like``, ``arange``, ``linspace``, ``tril``, ``triu``, ``cross``, ``vdot``.

``zeros`` and ``full`` make a fresh array of the primary operand's type (an initial carry, a
mask, a bias), so their output does not depend on the operand's values; ``arange`` and
``linspace`` combine with a vector of their length (positions, ramps; a vector only, since
programs never promote ranks implicitly).
"""

from __future__ import annotations

from grammar.opdef import Env, Op, Sig, choice, expression, float_dtype, recording, same
from grammar.syntax import DType, binop, call
from grammar.types import FLOAT, INTEGERS, NUMERIC, TensorType

CREATION = ("creation",)


def _value(draw, x: TensorType, env: Env) -> Sig:
    fill = choice(draw, [2, -1, 0]) if x.dtype in INTEGERS else choice(draw, [0.5, -1.0, 0.0])
    return Sig((x,), {"fill": fill})


def _last_axis(x: TensorType) -> int:
    return x.shape[-1]


def _pair(draw, x: TensorType, env: Env) -> Sig:
    return Sig((x, x))


CREATION_OPS = [
    Op("zeros", "creation", CREATION, NUMERIC, (0, 4),
       recording(lambda d, x, e: Sig((x,)), "shape", "dtype"), same,
       expression(lambda a, p, r: call("jnp.zeros", p["shape"], dtype=DType(p["dtype"]))),
       calls=("jnp.zeros",)),
    Op("full", "creation", CREATION, NUMERIC, (0, 4), recording(_value, "shape", "dtype"), same,
       expression(lambda a, p, r: call("jnp.full", p["shape"], p["fill"],
                                       dtype=DType(p["dtype"]))),
       calls=("jnp.full",)),
    Op("zeros_like", "creation", CREATION, NUMERIC, (0, 4), lambda d, x, e: Sig((x,)), same,
       expression(lambda a, p, r: call("jnp.zeros_like", a[0])), calls=("jnp.zeros_like",)),
    Op("full_like", "creation", CREATION, NUMERIC, (0, 4), _value, same,
       expression(lambda a, p, r: call("jnp.full_like", a[0], p["fill"])),
       calls=("jnp.full_like",)),
    Op("arange", "creation", CREATION, NUMERIC, (1, 1),
       recording(lambda d, x, e: Sig((x,), {"n": _last_axis(x)}), "dtype"), same,
       expression(lambda a, p, r: binop(a[0], "+", call("jnp.arange", p["n"],
                                                        dtype=DType(p["dtype"])))),
       calls=("jnp.arange",)),
    Op("linspace", "creation", CREATION, FLOAT, (1, 1),
       recording(lambda d, x, e: Sig((x,), {"n": _last_axis(x)}), "dtype"), same,
       expression(lambda a, p, r: binop(a[0], "*", call("jnp.linspace", 0.0, 1.0, p["n"],
                                                        dtype=DType(p["dtype"])))),
       calls=("jnp.linspace",)),
    Op("tril", "linalg", ("matmul",), NUMERIC, (2, 4), lambda d, x, e: Sig((x,)), same,
       expression(lambda a, p, r: call("jnp.tril", a[0])), calls=("jnp.tril",)),
    Op("triu", "linalg", ("matmul",), NUMERIC, (2, 4), lambda d, x, e: Sig((x,)), same,
       expression(lambda a, p, r: call("jnp.triu", a[0])), calls=("jnp.triu",)),
    Op("cross", "linalg", ("matmul",), frozenset({"float32"}), (1, 3), _pair, same,
       expression(lambda a, p, r: call("jnp.cross", a[0], a[1])), calls=("jnp.cross",),
       when=lambda x: x.shape[-1] == 3,
       example=lambda d, e: TensorType((3,), float_dtype(e))),
    Op("vdot", "linalg", ("matmul",), frozenset({"float32"}), (1, 3), _pair,
       lambda i, p, r: (i[0].with_shape(()),),
       expression(lambda a, p, r: call("jnp.vdot", a[0], a[1])), calls=("jnp.vdot",)),
]
