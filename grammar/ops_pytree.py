"""Pytrees and Python structure inside a program: ``jax.tree.map`` over tuples and dicts,
``jax.tree.leaves``, a helper function defined once and called several times, and a Python
loop over constants that tracing unrolls.

Each op takes two or three values of one type, so the function it maps or calls is one
region of the grammar whose result type is the same for every leaf.
"""

from __future__ import annotations

import libcst as cst

from grammar.opdef import Env, Op, RegionSpec, Sig, choice, integer, tensor
from grammar.ops_control import define
from grammar.syntax import assign, binop, call, dict_, dotted, string, subscript, tuple_
from grammar.types import ANY, FLOAT, TensorType

PYTREE = ("pytree",)
KEYS = ("a", "b", "c")
FACTORS = ((0.5, 2.0), (1.0, 0.5, 0.25), (0.9, 0.9, 0.9, 0.9), (2.0, -1.0))
"""The constants a Python loop runs over (at most ``MAX_TRIPS``, which validate checks)."""


def _mapped_signature(draw, x: TensorType, env: Env) -> Sig:
    """``count`` values of ``x``'s type and a function of one of them, whose result may be
    any value (its parameter included: the bound is the largest array the limits allow)."""
    count = integer(draw, 2, 3)
    fn = RegionSpec((x,), (None,), max_result_elements=max(env.limits.max_elements, x.size))
    return Sig((x,) * count, {"as_dict": bool(integer(draw, 0, 1)),
                              "util": bool(integer(draw, 0, 1))}, (fn,))


SPELLINGS = {False: ("jax.tree.map", "jax.tree.leaves"),
             True: ("jax.tree_util.tree_map", "jax.tree_util.tree_leaves")}
"""The two spellings real code uses about equally (``python -m fuzz api-coverage``)."""


def _per_leaf(inputs, params, regions):
    (result,) = regions[0]
    return (result,) * len(inputs)


def _tree_map(out, a, p, r):
    fn = cst.Name(r[0].name)
    tree_map = SPELLINGS[p["util"]][0]
    if not p["as_dict"]:
        return [define(r[0]), assign(out, call(tree_map, fn, tuple_(list(a))))]
    tree = f"{out[0]}_tree"
    keys = KEYS[:len(a)]
    return [define(r[0]), assign([tree], call(tree_map, fn, dict_(keys, a))),
            assign(out, tuple_([subscript(cst.Name(tree), [string(k)])
                                for k in keys]))]


def _helper(out, a, p, r):
    fn = cst.Name(r[0].name)
    return [define(r[0]), *(assign([o], call(fn, x)) for o, x in zip(out, a, strict=True))]


def _unrolled_signature(draw, x: TensorType, env: Env) -> Sig:
    return Sig((x,), {"factors": choice(draw, FACTORS)}, (RegionSpec((x,), (x,)),))


def _unrolled(out, a, p, r):
    """``t = x; for scale in (...): t = fn(t) * scale``: tracing runs the Python loop."""
    (name,) = out
    step = assign(out, binop(call(cst.Name(r[0].name), cst.Name(name)), "*", cst.Name("scale")))
    loop = cst.For(cst.Name("scale"), tuple_(list(p["factors"])), cst.IndentedBlock([step]))
    return [define(r[0]), assign(out, a[0]), loop]


def _ravel_signature(draw, x: TensorType, env: Env) -> Sig:
    return Sig((x, tensor(draw, env, frozenset({x.dtype}))), {"util": bool(integer(draw, 0, 1))})


def _ravel_rule(inputs, params, regions):
    x, y = inputs
    return (TensorType((x.size + y.size,), x.dtype),)


def _tree_ravel(out, a, p, r):
    """The leaves of a dict, flattened and joined: what ``ravel_pytree`` does."""
    tree_map, tree_leaves = SPELLINGS[p["util"]]
    leaves = call(tree_leaves, call(tree_map, dotted("jnp.ravel"), dict_(KEYS[:2], a)))
    return [assign(out, call("jnp.concatenate", leaves))]


def _region_op(name, categories, dtypes, signature, rule, render, calls) -> Op:
    return Op(name, "pytree", PYTREE + categories, dtypes, (0, 4), signature, rule, render,
              calls=calls)


PYTREE_OPS = [
    _region_op("tree_map", (), ANY, _mapped_signature, _per_leaf, _tree_map,
               ("jax.tree.map", "jax.tree_util.tree_map")),
    _region_op("helper", (), ANY, _mapped_signature, _per_leaf, _helper, ()),
    _region_op("unrolled_loop", (), FLOAT, _unrolled_signature,
               lambda i, p, r: (i[0],), _unrolled, ()),
    Op("tree_ravel", "shape", PYTREE + ("shape",), ANY, (0, 4), _ravel_signature, _ravel_rule,
       _tree_ravel,
       calls=(*SPELLINGS[False], *SPELLINGS[True], "jnp.concatenate"), values=("jnp.ravel",)),
]
