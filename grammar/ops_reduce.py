"""Reductions over axes, cumulative scans, sorting and top-k, and ``lax.reduce`` itself: with
a monoid (``reduce_xor``, ``reduce_and``, ...) or two operands and a Python function (the
generic ``reduce`` primitive)."""

from __future__ import annotations

import libcst as cst

from grammar.opdef import (
    Env,
    Op,
    Sig,
    axis,
    choice,
    expression,
    flag,
    integer,
    norm_axis,
    permutation,
    same,
)
from grammar.syntax import DType, assign, binop, call, dotted, funcdef, return_, tuple_, unary
from grammar.types import ANY, BOOL, FLOAT, NUMERIC, WIDE, TensorType, axis_dtype


def _reduce_signature(draw, x: TensorType, env: Env, tuple_axes: bool = True) -> Sig:
    """``axis`` is None, one axis, or (where allowed) a tuple of distinct axes."""
    kind = integer(draw, 0, (2 if tuple_axes and x.rank >= 2 else 1) if x.rank else 0)
    if kind == 0:
        ax = None
    elif kind == 1:
        ax = axis(draw, x.rank)
    else:
        picked = sorted({norm_axis(axis(draw, x.rank), x.rank) for _ in range(2)})
        ax = tuple(picked) if len(picked) > 1 else picked[0]
    return Sig((x,), {"axis": ax, "keepdims": flag(draw)})


def reduced_shape(shape: tuple[int, ...], ax, keepdims: bool) -> tuple[int, ...]:
    rank = len(shape)
    axes = set(range(rank)) if ax is None else {
        norm_axis(a, rank) for a in (ax if isinstance(ax, tuple) else (ax,))}
    if keepdims:
        return tuple(1 if i in axes else d for i, d in enumerate(shape))
    return tuple(d for i, d in enumerate(shape) if i not in axes)


def _reduction(name: str, fn: str, dtypes=NUMERIC, out=None, tuple_axes: bool = True,
               categories: tuple[str, ...] = ()) -> Op:
    def rule(inputs, params, regions):
        x = inputs[0]
        dtype = out(x.dtype) if out else x.dtype
        return (TensorType(reduced_shape(x.shape, params["axis"], params["keepdims"]), dtype),)

    return Op(name, "reduction", ("reduction",) + categories, dtypes, (0, 4),
              signature=lambda draw, x, env: _reduce_signature(draw, x, env, tuple_axes),
              rule=rule,
              render=expression(lambda a, p, r: call(fn, a[0], axis=p["axis"],
                                                     keepdims=p["keepdims"])),
              calls=(fn,))


REDUCTIONS = [
    _reduction("sum", "jnp.sum"),
    _reduction("mean", "jnp.mean", out=axis_dtype),
    _reduction("max", "jnp.max"),
    _reduction("min", "jnp.min"),
    _reduction("prod", "jnp.prod"),
    _reduction("var", "jnp.var", FLOAT),
    _reduction("std", "jnp.std", FLOAT),
    _reduction("logsumexp", "jax.nn.logsumexp", FLOAT),
    _reduction("argmax", "jnp.argmax", out=lambda d: "int32", tuple_axes=False),
    _reduction("argmin", "jnp.argmin", out=lambda d: "int32", tuple_axes=False),
    _reduction("any", "jnp.any", BOOL),
    _reduction("all", "jnp.all", BOOL),
    _reduction("norm", "jnp.linalg.norm", FLOAT, tuple_axes=False, categories=("linalg",)),
]


def _axis_signature(draw, x: TensorType, env: Env) -> Sig:
    return Sig((x,), {"axis": axis(draw, x.rank)})


def _lax_axis_signature(draw, x: TensorType, env: Env) -> Sig:
    """``lax`` functions take non-negative axes only."""
    return Sig((x,), {"axis": integer(draw, 0, x.rank - 1)})


def _scan_like(name: str, fn: str, out=None, family: str = "cumulative",
               dtypes=NUMERIC) -> Op:
    rule = same if out is None else (lambda i, p, r: (i[0].with_dtype(out),))
    signature = _lax_axis_signature if fn.startswith("lax.") else _axis_signature
    return Op(name, family, (family,), dtypes, (1, 4), signature, rule,
              expression(lambda a, p, r: call(fn, a[0], axis=p["axis"])), calls=(fn,))


def top_k_signature(draw, x: TensorType, env: Env) -> Sig:
    return Sig((x,), {"k": integer(draw, 1, x.shape[-1])})


def top_k_rule(inputs, params, regions):
    """The top ``k`` along the last axis: values, and their int32 indices."""
    x = inputs[0]
    shape = x.shape[:-1] + (params["k"],)
    return (x.with_shape(shape), TensorType(shape, "int32"))


CUMULATIVE = [
    _scan_like("cumsum", "jnp.cumsum"),
    _scan_like("cumprod", "jnp.cumprod"),
    _scan_like("cummax", "lax.cummax"),
    _scan_like("cummin", "lax.cummin"),
    _scan_like("cumlogsumexp", "lax.cumlogsumexp", dtypes=FLOAT),
    _scan_like("sort", "jnp.sort", family="sorting"),
    _scan_like("argsort", "jnp.argsort", out="int32", family="sorting"),
    Op("top_k", "sorting", ("sorting",), NUMERIC, (1, 4), top_k_signature, top_k_rule,
       expression(lambda a, p, r: call("lax.top_k", a[0], p["k"])), calls=("lax.top_k",)),
]


MONOIDS = {
    "float": (("lax.add", 0.0), ("lax.mul", 1.0), ("lax.max", "-inf"), ("lax.min", "inf")),
    "int32": (("lax.add", 0), ("lax.mul", 1), ("lax.bitwise_xor", 0), ("lax.bitwise_and", -1),
              ("lax.bitwise_or", 0)),
    "bool": (("lax.bitwise_xor", False), ("lax.bitwise_and", True), ("lax.bitwise_or", False)),
}
"""``lax.reduce``'s computations and their identities per dtype, which JAX lowers to
``reduce_sum``, ``reduce_prod``, ``reduce_max``, ``reduce_min``, ``reduce_xor``,
``reduce_and`` and ``reduce_or`` (an init that is not the identity would make the result
depend on XLA's reduction order)."""


def _dims_signature(draw, x: TensorType) -> tuple[int, ...]:
    """A non-empty, sorted set of dimensions to reduce."""
    order = permutation(draw, x.rank)
    return tuple(sorted(order[:integer(draw, 1, x.rank)]))


def _lax_reduce_signature(draw, x: TensorType, env: Env) -> Sig:
    kind = "float" if x.is_float else WIDE.get(x.dtype, x.dtype)
    fn, init = choice(draw, MONOIDS[kind])
    return Sig((x,), {"fn": fn, "init": init, "dimensions": _dims_signature(draw, x)})


def _reduced(inputs, params, regions):
    x = inputs[0]
    return (x.with_shape(tuple(d for i, d in enumerate(x.shape)
                               if i not in params["dimensions"])),)


def _lax_reduce(a, p, r):
    init = p["init"]
    if isinstance(init, str):
        init = unary("-", dotted("jnp.inf")) if init == "-inf" else dotted("jnp.inf")
    return call("lax.reduce", a[0], init, dotted(p["fn"]), p["dimensions"])


def argmax_monoid(name: str) -> cst.FunctionDef:
    """``def name(acc, cur)``: the larger (value, index) pair, the smaller index on a tie,
    so the combination is commutative and associative and any reduction order agrees."""
    n = cst.Name
    pick = binop(binop(n("cur_v"), ">", n("acc_v")), "|", binop(
        binop(n("cur_v"), "==", n("acc_v")), "&", binop(n("cur_i"), "<", n("acc_i"))))
    return funcdef(name, ["acc", "cur"], [
        assign(["acc_v", "acc_i"], n("acc")), assign(["cur_v", "cur_i"], n("cur")),
        assign(["pick"], pick),
        return_([call("jnp.where", n("pick"), n("cur_v"), n("acc_v")),
                 call("jnp.where", n("pick"), n("cur_i"), n("acc_i"))])])


def argmax_operands(x: cst.BaseExpression, t: TensorType, axis_: int) -> tuple:
    """The operands and initial values of a (value, index) reduction: the values, without a
    derivative (JAX cannot linearise a multi-operand reduction), and int32 indices along
    ``axis_``; (-inf, 0), typed as the operands are, is the monoid's identity."""
    operands = tuple_([call("lax.stop_gradient", x),
                       call("lax.broadcasted_iota", DType("int32"), t.shape, axis_)])
    return operands, tuple_([call("jnp.array", unary("-", dotted("jnp.inf")),
                                  dtype=DType(t.dtype)), 0])


def _reduce_argmax_signature(draw, x: TensorType, env: Env) -> Sig:
    dims = (integer(draw, 0, x.rank - 1),)
    return Sig((x,), {"dimensions": dims, "shape": x.shape, "dtype": x.dtype})


def _reduce_argmax(out, a, p, r):
    """The maximum and its index along one axis: ``lax.reduce`` of two operands with a
    Python function, JAX's generic ``reduce`` primitive."""
    fn = f"{out[0]}_argmax"
    operands, inits = argmax_operands(a[0], TensorType(p["shape"], p["dtype"]),
                                      p["dimensions"][0])
    return [argmax_monoid(fn), assign(out, call("lax.reduce", operands, inits, cst.Name(fn),
                                                p["dimensions"]))]


LAX_REDUCTIONS = [
    Op("lax_reduce", "reduction", ("reduction",), ANY, (1, 4), _lax_reduce_signature, _reduced,
       expression(_lax_reduce), calls=("lax.reduce",),
       values=tuple(dict.fromkeys(fn for group in MONOIDS.values() for fn, _ in group))
       + ("jnp.inf",)),
    Op("reduce_argmax", "reduction", ("reduction",), FLOAT, (1, 4), _reduce_argmax_signature,
       lambda i, p, r: (_reduced(i, p, r)[0], _reduced(i, p, r)[0].with_dtype("int32")),
       _reduce_argmax, calls=("lax.reduce", "lax.stop_gradient", "lax.broadcasted_iota",
                              "jnp.where", "jnp.array"), values=("jnp.inf",)),
]
