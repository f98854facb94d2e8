"""Reductions over axes, cumulative scans, sorting and top-k."""

from __future__ import annotations

from grammar.opdef import Env, Op, Sig, axis, expression, flag, integer, norm_axis, same
from grammar.syntax import call
from grammar.types import BOOL, FLOAT, NUMERIC, TensorType, axis_dtype


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
