"""Windows, scans and gathers of model code: pooling with ``lax.reduce_window`` (whose
gradients are ``select_and_scatter_add`` and padded window sums; argmax pooling reduces
(value, index) pairs with a Python function, the generic primitive), associative scans,
``take_along_axis``, ``one_hot``, ``searchsorted``, multi-operand sort, ``approx_max_k`` and
``dot_product_attention``."""

from __future__ import annotations

from math import ceil, prod

import libcst as cst

from grammar.opdef import (
    Env,
    Op,
    Sig,
    axis,
    choice,
    expression,
    flag,
    float_dtype,
    integer,
    same,
)
from grammar.ops_reduce import argmax_monoid, argmax_operands, top_k_rule, top_k_signature
from grammar.syntax import assign, binop, call, dotted, tuple_, unary
from grammar.types import FLOAT, NUMERIC, TensorType

REDUCERS = ("lax.add", "lax.max", "lax.min")
"""Functions a template passes as values (``lax.reduce_window(x, 0.0, lax.add, ...)``)."""


def _pool_signature(draw, x: TensorType, env: Env) -> Sig:
    """x is (N, *spatial, C): a window and stride on each spatial dim, 1 on N and C."""
    window = (1, *(integer(draw, 1, min(3, d)) for d in x.shape[1:-1]), 1)
    strides = (1, *(integer(draw, 1, 2) for _ in x.shape[1:-1]), 1)
    return Sig((x,), {"window": window, "strides": strides,
                      "padding": "SAME" if flag(draw) else "VALID"})


def _pool_rule(inputs, params, regions):
    x = inputs[0]
    shape = tuple(ceil(d / s) if params["padding"] == "SAME" else (d - w) // s + 1
                  for d, w, s in zip(x.shape, params["window"], params["strides"], strict=True))
    return (x.with_shape(shape),)


def _pool(name: str, reducer: str, average: bool = False) -> Op:
    """Max pooling starts from -inf, min pooling from inf, sum and average pooling from 0
    (flax's templates)."""
    infinite = reducer in ("lax.max", "lax.min")

    def render(a, p, r):
        init = (unary("-", dotted("jnp.inf")) if reducer == "lax.max" else dotted("jnp.inf")
                if reducer == "lax.min" else 0.0)
        pooled = call("lax.reduce_window", a[0], init, dotted(reducer), p["window"],
                      p["strides"], p["padding"])
        return binop(pooled, "/", float(prod(p["window"]))) if average else pooled

    return Op(name, "window", ("pooling",), FLOAT, (3, 4), _pool_signature, _pool_rule,
              expression(render), calls=("lax.reduce_window",),
              values=(reducer, "jnp.inf") if infinite else (reducer,))


def _argmax_pool_signature(draw, x: TensorType, env: Env) -> Sig:
    sig = _pool_signature(draw, x, env)
    return Sig(sig.inputs, {**sig.params, "shape": x.shape, "dtype": x.dtype,
                            "axis": integer(draw, 1, x.rank - 2)})


def _argmax_pool(out, a, p, r):
    """Max pooling that also returns where each maximum lies along one spatial axis:
    ``lax.reduce_window`` of two operands with a Python function (the generic primitive)."""
    fn = f"{out[0]}_argmax"
    operands, inits = argmax_operands(a[0], TensorType(p["shape"], p["dtype"]),
                                     p["axis"])
    return [argmax_monoid(fn), assign(out, call(
        "lax.reduce_window", operands, inits, cst.Name(fn), p["window"], p["strides"],
        p["padding"]))]


def _associative_scan_signature(draw, x: TensorType, env: Env) -> Sig:
    return Sig((x,), {"fn": choice(draw, REDUCERS), "axis": integer(draw, 0, x.rank - 1),
                      "reverse": flag(draw)})


def _take_along_signature(draw, x: TensorType, env: Env) -> Sig:
    return Sig((x, x), {"axis": axis(draw, x.rank)})


def _one_hot_signature(draw, x: TensorType, env: Env) -> Sig:
    budget = env.limits.max_elements // max(1, x.size)
    return Sig((x,), {"num_classes": integer(draw, 2, max(2, min(8, budget)))})


def _searchsorted_signature(draw, a: TensorType, env: Env) -> Sig:
    return Sig((a, a.with_shape((integer(draw, 1, env.limits.max_dim),))),
               {"side": choice(draw, ["left", "right"])})


def _sort_signature(draw, x: TensorType, env: Env) -> Sig:
    return Sig((x, x), {"dimension": integer(draw, 0, x.rank - 1)})


def _attention_example(draw, env: Env) -> TensorType:
    """(batch, time, heads, head dim), within the element limit."""
    shape = tuple(integer(draw, 1, hi) for hi in (2, 6, 2, 8))
    return TensorType(shape, float_dtype(env))


def _attention_signature(draw, q: TensorType, env: Env) -> Sig:
    return Sig((q, q, q), {"is_causal": flag(draw)})


WINDOW = [
    _pool("max_pool", "lax.max"),
    _pool("avg_pool", "lax.add", average=True),
    _pool("sum_pool", "lax.add"),
    _pool("min_pool", "lax.min"),
    Op("argmax_pool", "window", ("pooling",), FLOAT, (3, 4), _argmax_pool_signature,
       lambda i, p, r: (_pool_rule(i, p, r)[0], _pool_rule(i, p, r)[0].with_dtype("int32")),
       _argmax_pool, calls=("lax.reduce_window", "lax.stop_gradient", "lax.broadcasted_iota",
                            "jnp.where"), values=("jnp.inf",)),
    Op("associative_scan", "cumulative", ("cumulative", "scan"), NUMERIC, (1, 4),
       _associative_scan_signature, same,
       expression(lambda a, p, r: call("lax.associative_scan", dotted(p["fn"]), a[0],
                                       reverse=p["reverse"], axis=p["axis"])),
       calls=("lax.associative_scan",), values=REDUCERS),
    Op("take_along_axis", "gather", ("indexing",), NUMERIC, (1, 4), _take_along_signature,
       same, expression(lambda a, p, r: call(
           "jnp.take_along_axis", a[0], call("jnp.argsort", a[1], axis=p["axis"]),
           axis=p["axis"])), calls=("jnp.take_along_axis", "jnp.argsort")),
    Op("one_hot", "gather", ("indexing",), frozenset({"int32"}), (0, 3), _one_hot_signature,
       lambda i, p, r: (TensorType(i[0].shape + (p["num_classes"],), "float32"),),
       expression(lambda a, p, r: call("jax.nn.one_hot", a[0], p["num_classes"])),
       calls=("jax.nn.one_hot",), when=lambda t: t.size <= 512),
    Op("searchsorted", "sorting", ("sorting",), frozenset({"float32", "int32"}), (1, 1),
       _searchsorted_signature, lambda i, p, r: (i[1].with_dtype("int32"),),
       expression(lambda a, p, r: call("jnp.searchsorted", call("jnp.sort", a[0]), a[1],
                                       side=p["side"])),
       calls=("jnp.searchsorted", "jnp.sort")),
    Op("sort_pair", "sorting", ("sorting",), NUMERIC, (1, 4), _sort_signature,
       lambda i, p, r: (i[0], i[1]),
       expression(lambda a, p, r: call("lax.sort", tuple_(a), dimension=p["dimension"],
                                       num_keys=1)),
       calls=("lax.sort",)),
    Op("approx_max_k", "sorting", ("sorting",), frozenset({"float32"}), (1, 4),
       top_k_signature, top_k_rule,
       expression(lambda a, p, r: call("lax.approx_max_k", a[0], p["k"])),
       calls=("lax.approx_max_k",)),
    Op("dot_product_attention", "linalg", ("attention",), frozenset({"float32", "bfloat16"}),
       (4, 4), _attention_signature, same,
       expression(lambda a, p, r: call("jax.nn.dot_product_attention", *a,
                                       is_causal=p["is_causal"])),
       calls=("jax.nn.dot_product_attention",), example=_attention_example),
]
