"""Random number generation as model code writes it: a key made from an int parameter, split
or folded, then a sampler, or dropout on an array.

A key is never a program parameter (``args`` describes arrays only): each op derives its key
from an ``int32`` scalar, in one of the three styles real code uses, a typed
``jax.random.key`` (threefry), a legacy ``jax.random.PRNGKey`` (uint32 data) or a typed key
of the ``rbg`` implementation (which lowers to ``rng_bit_generator``); then it may
``split`` it, ``fold_in`` a constant or ``clone`` it.  The key's names are the output's name
with a suffix, so they never clash with the program's own.
"""

from __future__ import annotations

import libcst as cst

from grammar.opdef import Env, Op, Sig, choice, dims, flag, integer
from grammar.syntax import DType, assign, binop, call
from grammar.types import FLOAT, NUMERIC, TensorType

RANDOM = ("random",)
SEED = frozenset({"int32"})
KEY_STYLES = ("key", "PRNGKey", "rbg")


def _key_params(draw) -> dict:
    return {"style": choice(draw, KEY_STYLES), "derive": choice(draw, ["none", "split",
                                                                       "fold_in", "clone"])}


def _key_lines(out: str, seed: cst.BaseExpression, p) -> tuple[list, cst.BaseExpression]:
    """The statements that make the key, and the key's expression."""
    key = f"{out}_key"
    if p["style"] == "rbg":
        made = call("jax.random.key", seed, impl="rbg")
    else:
        made = call(f"jax.random.{p['style']}", seed)
    lines = [assign([key], made)]
    if p["derive"] == "split":
        lines.append(assign([f"{out}_key0", f"{out}_key1"],
                            call("jax.random.split", cst.Name(key))))
        key = f"{out}_key1"
    elif p["derive"] == "fold_in":
        lines.append(assign([f"{out}_key0"], call("jax.random.fold_in", cst.Name(key), 7)))
        key = f"{out}_key0"
    elif p["derive"] == "clone":
        lines.append(assign([f"{out}_key0"], call("jax.random.clone", cst.Name(key))))
        key = f"{out}_key0"
    return lines, cst.Name(key)


_KEY_CALLS = ("jax.random.key", "jax.random.PRNGKey", "jax.random.split", "jax.random.fold_in",
              "jax.random.clone")


def _sample_signature(draw, s: TensorType, env: Env) -> Sig:
    rank = integer(draw, 0, min(3, env.limits.max_rank))
    dtypes = [d for d in env.dtypes if d in FLOAT] or ["float32"]
    return Sig((s,), {**_key_params(draw), "shape": dims(draw, rank, env.limits),
                      "dtype": choice(draw, dtypes)})


def _sampler(name: str, fn: str, out_dtype=None, shape_parameter: float | None = None,
             **extra) -> Op:
    """``shape_parameter``: a positional parameter before the shape (``gamma``'s ``a``)."""
    def render(out, a, p, r):
        lines, key = _key_lines(out[0], a[0], p)
        if shape_parameter is not None:
            value = call(fn, key, shape_parameter, p["shape"], DType(p["dtype"]))
        elif out_dtype is None:
            value = call(fn, key, p["shape"], DType(p["dtype"]), **extra)
        else:
            value = call(fn, key, shape=p["shape"], **extra)
        return [*lines, assign(out, value)]

    def rule(inputs, params, regions):
        return (TensorType(tuple(params["shape"]), out_dtype or params["dtype"]),)

    return Op(name, "random", RANDOM, SEED, (0, 0), _sample_signature, rule, render,
              calls=(fn, *_KEY_CALLS), example=lambda draw, env: TensorType((), "int32"))


def _array_signature(draw, x: TensorType, env: Env) -> Sig:
    return Sig((x, TensorType((), "int32")), _key_params(draw))


def _dropout(out, a, p, r):
    lines, key = _key_lines(out[0], a[1], p)
    keep = f"{out[0]}_keep"
    return [*lines, assign([keep], call("jax.random.bernoulli", key, p["rate"], p["shape"])),
            assign(out, call("jnp.where", cst.Name(keep), binop(a[0], "/", p["rate"]), 0.0))]


def _dropout_signature(draw, x: TensorType, env: Env) -> Sig:
    return Sig((x, TensorType((), "int32")), {**_key_params(draw), "shape": x.shape,
                                               "rate": choice(draw, [0.9, 0.5, 0.8])})


def _permutation(out, a, p, r):
    lines, key = _key_lines(out[0], a[1], p)
    return [*lines, assign(out, call("jax.random.permutation", key, a[0], axis=p["axis"],
                                     independent=p["independent"]))]


def _permutation_signature(draw, x: TensorType, env: Env) -> Sig:
    return Sig((x, TensorType((), "int32")), {**_key_params(draw),
                                               "axis": integer(draw, 0, x.rank - 1),
                                               "independent": flag(draw)})


def _categorical(out, a, p, r):
    lines, key = _key_lines(out[0], a[1], p)
    return [*lines, assign(out, call("jax.random.categorical", key, a[0], axis=-1))]


RANDOM_OPS = [
    _sampler("random_normal", "jax.random.normal"),
    _sampler("random_uniform", "jax.random.uniform"),
    _sampler("random_bernoulli", "jax.random.bernoulli", out_dtype="bool", p=0.5),
    _sampler("random_randint", "jax.random.randint", out_dtype="int32", minval=0, maxval=10),
    _sampler("random_gamma", "jax.random.gamma", shape_parameter=2.0),
    Op("dropout", "random", RANDOM + ("dropout",), FLOAT, (1, 4), _dropout_signature,
       lambda i, p, r: (i[0],), _dropout,
       calls=("jax.random.bernoulli", "jnp.where", *_KEY_CALLS)),
    Op("random_permutation", "random", RANDOM, NUMERIC, (1, 4), _permutation_signature,
       lambda i, p, r: (i[0],), _permutation,
       calls=("jax.random.permutation", *_KEY_CALLS)),
    Op("random_categorical", "random", RANDOM, FLOAT, (1, 3), _array_signature,
       lambda i, p, r: (TensorType(i[0].shape[:-1], "int32"),), _categorical,
       calls=("jax.random.categorical", *_KEY_CALLS)),
]
