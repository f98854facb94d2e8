"""Elementwise ops: unary functions, broadcasting binary ops, comparisons, select, casts."""

from __future__ import annotations

from grammar.opdef import (
    Domain,
    Env,
    Op,
    Sig,
    choice,
    expression,
    flag,
    integer,
    literal,
    recording,
    same,
)
from grammar.syntax import DType, binop, call, method, unary
from grammar.types import ANY, BOOL, FLOAT, INT, NUMERIC, TensorType

ELEMENTWISE = ("elementwise",)


def _unary(name: str, fn: str, dtypes=FLOAT, domain: Domain = Domain.ANY,
           categories: tuple[str, ...] = (), prefix: str | None = None,
           out: str | None = None) -> Op:
    """``fn(x)``, or the prefix operator ``prefix x``; ``out`` is a fixed output dtype."""
    if prefix:
        build = expression(lambda a, p, r: unary(prefix, a[0]))
    else:
        build = expression(lambda a, p, r: call(fn, a[0]))
    rule = same if out is None else (lambda i, p, r: (i[0].with_dtype(out),))
    return Op(name, "unary", ELEMENTWISE + ("unary",) + categories, dtypes, (0, 4),
              signature=lambda draw, x, env: Sig((x,)), rule=rule, render=build,
              calls=() if prefix else (fn,), domain=(domain,))


def _reduce_precision_signature(draw, x: TensorType, env: Env) -> Sig:
    exponent, mantissa = choice(draw, [(5, 10), (8, 7), (4, 3)])
    return Sig((x,), {"exponent_bits": exponent, "mantissa_bits": mantissa})


UNARY = [
    _unary("neg", "", NUMERIC, prefix="-"),
    _unary("abs", "jnp.abs", NUMERIC),
    _unary("sign", "jnp.sign", NUMERIC),
    _unary("floor", "jnp.floor"),
    _unary("ceil", "jnp.ceil"),
    _unary("round", "jnp.round"),
    _unary("square", "jnp.square", NUMERIC),
    _unary("sqrt", "jnp.sqrt", domain=Domain.POSITIVE),
    _unary("rsqrt", "lax.rsqrt", domain=Domain.POSITIVE),
    _unary("exp", "jnp.exp"),
    _unary("expm1", "jnp.expm1"),
    _unary("log", "jnp.log", domain=Domain.POSITIVE),
    _unary("log1p", "jnp.log1p", domain=Domain.POSITIVE),
    _unary("sin", "jnp.sin"),
    _unary("cos", "jnp.cos"),
    _unary("tan", "jnp.tan", domain=Domain.UNIT),
    _unary("tanh", "jnp.tanh"),
    _unary("arcsin", "jnp.arcsin", domain=Domain.UNIT),
    _unary("arccos", "jnp.arccos", domain=Domain.UNIT),
    # the same functions without their guard: NaN and -inf where the guarded ones never go,
    # as compilers meet them in real code (--ops log_unguarded,sqrt_unguarded,... alone)
    _unary("log_unguarded", "jnp.log"),
    _unary("sqrt_unguarded", "jnp.sqrt"),
    _unary("arccos_unguarded", "jnp.arccos"),
    _unary("arctan", "jnp.arctan"),
    _unary("sinh", "jnp.sinh"),
    _unary("cosh", "jnp.cosh"),
    _unary("erf", "lax.erf"),
    _unary("sigmoid", "jax.nn.sigmoid"),
    _unary("relu", "jax.nn.relu"),
    _unary("gelu", "jax.nn.gelu", categories=("gelu",)),
    _unary("softplus", "jax.nn.softplus"),
    _unary("silu", "jax.nn.silu"),
    _unary("logical_not", "jnp.logical_not", BOOL),
    _unary("invert", "", INT | BOOL, prefix="~"),
    _unary("cbrt", "jnp.cbrt"),
    _unary("round_afz", "lax.round"),
    _unary("isfinite", "jnp.isfinite", out="bool"),
    _unary("population_count", "lax.population_count", INT),
    _unary("clz", "lax.clz", INT),
    Op("reduce_precision", "unary", ELEMENTWISE + ("unary",), FLOAT, (0, 4),
       _reduce_precision_signature, same,
       expression(lambda a, p, r: call("lax.reduce_precision", a[0], **p)),
       calls=("lax.reduce_precision",)),
]


def _broadcast_partner(draw, x: TensorType, env: Env) -> TensorType:
    """A same-rank shape that broadcasts against ``x`` (size-1 dims on either side)."""
    shape = []
    budget = env.limits.max_elements // max(1, x.size)
    for d in x.shape:
        if d == 1 and budget > 1 and flag(draw):
            n = integer(draw, 1, min(env.limits.max_dim, budget))
            budget //= n
            shape.append(n)
        else:
            shape.append(choice(draw, [d, 1]) if d != 1 else 1)
    return TensorType(tuple(shape), x.dtype)


def binary_signature(draw, x: TensorType, env: Env, domain: Domain = Domain.ANY) -> Sig:
    """The second operand: the same type, a broadcasting array, a rank-0 array or a literal."""
    kind = 3 if "scalar" in env.hints else integer(draw, 0, 3)
    if kind == 3:
        lit = literal(draw, x.dtype, nonzero=domain is Domain.NONZERO,
                      positive=domain is Domain.POSITIVE)
        return Sig((x, lit), {"form": _form(draw)})
    other = (x, _broadcast_partner(draw, x, env), TensorType((), x.dtype))[kind]
    return Sig((x, other), {"form": _form(draw)})


def _form(draw) -> str:
    return "op" if flag(draw) else "fn"


def broadcast_rule(inputs, params, regions, out_dtype: str | None = None):
    x, y = inputs
    shape = x.shape
    if isinstance(y, TensorType) and y.rank:
        shape = tuple(max(a, b) for a, b in zip(x.shape, y.shape, strict=True))
    return (TensorType(shape, out_dtype or x.dtype),)


def _binary(name: str, fn: str, dtypes=NUMERIC, operator: str | None = None,
            out_dtype: str | None = None, domain: Domain = Domain.ANY,
            categories: tuple[str, ...] = ELEMENTWISE, first: Domain = Domain.ANY) -> Op:
    def build(a, p, r):
        if operator and p["form"] == "op":
            return binop(a[0], operator, a[1])
        return call(fn, a[0], a[1])

    return Op(name, "binary", categories, dtypes, (0, 4),
              signature=lambda draw, x, env: binary_signature(draw, x, env, domain),
              rule=lambda i, p, r: broadcast_rule(i, p, r, out_dtype),
              render=expression(build), calls=(fn,), domain=(first, domain))


COMPARE = ("elementwise", "compare")
BINARY = [
    _binary("add", "jnp.add", operator="+"),
    _binary("subtract", "jnp.subtract", operator="-"),
    _binary("multiply", "jnp.multiply", operator="*"),
    _binary("divide", "jnp.divide", FLOAT, operator="/", domain=Domain.NONZERO),
    _binary("power", "jnp.power", FLOAT, operator="**", first=Domain.POSITIVE),
    _binary("maximum", "jnp.maximum"),
    _binary("minimum", "jnp.minimum"),
    _binary("arctan2", "jnp.arctan2", FLOAT),
    _binary("remainder", "jnp.remainder", operator="%", domain=Domain.NONZERO),
    _binary("less", "jnp.less", operator="<", out_dtype="bool", categories=COMPARE),
    _binary("less_equal", "jnp.less_equal", operator="<=", out_dtype="bool", categories=COMPARE),
    _binary("greater", "jnp.greater", operator=">", out_dtype="bool", categories=COMPARE),
    _binary("greater_equal", "jnp.greater_equal", operator=">=", out_dtype="bool",
            categories=COMPARE),
    _binary("equal", "jnp.equal", operator="==", out_dtype="bool", categories=COMPARE),
    _binary("not_equal", "jnp.not_equal", operator="!=", out_dtype="bool", categories=COMPARE),
    _binary("logical_and", "jnp.logical_and", BOOL),
    _binary("logical_or", "jnp.logical_or", BOOL),
    _binary("logical_xor", "jnp.logical_xor", BOOL),
    _binary("bitwise_and", "jnp.bitwise_and", INT, operator="&"),
    _binary("bitwise_or", "jnp.bitwise_or", INT, operator="|"),
    _binary("bitwise_xor", "jnp.bitwise_xor", INT, operator="^"),
    _binary("left_shift", "jnp.left_shift", INT, operator="<<"),
    _binary("right_shift", "jnp.right_shift", INT, operator=">>"),
]


def _where_signature(draw, x: TensorType, env: Env) -> Sig:
    other = literal(draw, x.dtype) if flag(draw) else x
    return Sig((x, other), {"cmp": choice(draw, [">", "<", ">=", "!="]),
                            "threshold": literal(draw, x.dtype).value})


def _astype_signature(draw, x: TensorType, env: Env) -> Sig:
    targets = [d for d in env.dtypes if d != x.dtype] or [d for d in ANY if d != x.dtype]
    return Sig((x,), {"dtype": choice(draw, sorted(targets))})


_BITCAST = {"float32": "int32", "int32": "float32", "bfloat16": "float16",
            "float16": "bfloat16"}
"""Same-width reinterpretations ``lax.bitcast_convert_type`` keeps the shape for."""


def _iota_signature(draw, x: TensorType, env: Env) -> Sig:
    return Sig((x,), {"dimension": integer(draw, 0, x.rank - 1)})


def _iota_render(a, p, r):
    return binop(a[0], "+", call("lax.broadcasted_iota", DType(p["dtype"]), p["shape"],
                                 p["dimension"]))


def _clamp_signature(draw, x: TensorType, env: Env) -> Sig:
    lo = literal(draw, x.dtype).value
    return Sig((x,), {"lo": lo, "hi": lo + choice(draw, [1, 2, 4]) * type(lo)(1)})


SELECT = [
    # lax.clamp takes Python scalars as 32-bit values, so its operand must be 32-bit too.
    Op("clamp", "select", ELEMENTWISE + ("select",), frozenset({"float32", "int32"}), (0, 4),
       _clamp_signature, same,
       expression(lambda a, p, r: call("lax.clamp", p["lo"], a[0], p["hi"])),
       calls=("lax.clamp",)),
    Op("add_iota", "select", ELEMENTWISE, NUMERIC, (1, 4),
       recording(_iota_signature, "dtype", "shape"), same,
       expression(_iota_render), calls=("lax.broadcasted_iota",)),
    Op("bitcast", "conversion", ("conversion",), frozenset(_BITCAST), (0, 4),
       lambda draw, x, env: Sig((x,), {"dtype": _BITCAST[x.dtype]}),
       lambda i, p, r: (i[0].with_dtype(p["dtype"]),),
       expression(lambda a, p, r: call("lax.bitcast_convert_type", a[0], DType(p["dtype"]))),
       calls=("lax.bitcast_convert_type",)),
    Op("where", "select", ELEMENTWISE + ("select",), NUMERIC, (0, 4), _where_signature, same,
       expression(lambda a, p, r: call("jnp.where", binop(a[0], p["cmp"], p["threshold"]),
                                       a[0], a[1])),
       calls=("jnp.where",)),
    Op("clip", "select", ELEMENTWISE + ("select",), NUMERIC, (0, 4), _clamp_signature, same,
       expression(lambda a, p, r: call("jnp.clip", a[0], p["lo"], p["hi"])),
       calls=("jnp.clip",)),
    Op("astype", "conversion", ("conversion",), ANY, (0, 4), _astype_signature,
       lambda i, p, r: (i[0].with_dtype(p["dtype"]),),
       expression(lambda a, p, r: method(a[0], "astype", DType(_jnp_dtype(p["dtype"])))),
       calls=()),
]


def _jnp_dtype(dtype: str) -> str:
    return "bool_" if dtype == "bool" else dtype
