"""Neural-network ops: jax.nn softmaxes and the multi-statement kernels LLM datasets hold."""

from __future__ import annotations

from math import sqrt

import libcst as cst

from grammar.opdef import Env, Op, Sig, axis, choice, expression, flag, integer, same
from grammar.syntax import DType, assign, binop, call
from grammar.types import FLOAT, TensorType

NN = ("nn",)


def _softmax_op(name: str, fn: str) -> Op:
    return Op(name, "nn", NN + ("softmax",), FLOAT, (1, 4),
              lambda draw, x, env: Sig((x,), {"axis": axis(draw, x.rank)}), same,
              expression(lambda a, p, r: call(fn, a[0], axis=p["axis"])), calls=(fn,))


def _name(out: str, part: str) -> cst.Name:
    return cst.Name(f"{out}_{part}")


def _stable_softmax(out, a, p, r):
    x, o = a[0], out[0]
    return [
        assign([f"{o}_shift"], binop(x, "-", call("jnp.max", x, axis=-1, keepdims=True))),
        assign([f"{o}_exp"], call("jnp.exp", _name(o, "shift"))),
        assign(out, binop(_name(o, "exp"), "/",
                          call("jnp.sum", _name(o, "exp"), axis=-1, keepdims=True))),
    ]


def _normalize(axis_: int):
    def render(out, a, p, r):
        x, o = a[0], out[0]
        centered = binop(x, "-", _name(o, "mean"))
        return [
            assign([f"{o}_mean"], call("jnp.mean", x, axis=axis_, keepdims=True)),
            assign([f"{o}_var"], call("jnp.var", x, axis=axis_, keepdims=True)),
            assign(out, binop(centered, "*", call("lax.rsqrt", binop(_name(o, "var"), "+",
                                                                     p["eps"])))),
        ]
    return render


def _norm_signature(draw, x: TensorType, env: Env) -> Sig:
    return Sig((x,), {"eps": choice(draw, [1e-5, 1e-6, 1e-3])})


def _attention_signature(draw, x: TensorType, env: Env) -> Sig:
    """q (..., s, d); k (..., t, d); v (..., t, e); a causal mask when s == t."""
    *batch, s, d = x.shape
    budget = max(1, env.limits.max_elements // max(1, x.size))
    t = s if flag(draw) else integer(draw, 1, min(env.limits.max_dim, max(1, budget * s)))
    e = integer(draw, 1, env.limits.max_dim)
    k = x.with_shape((*batch, t, d))
    v = x.with_shape((*batch, t, e))
    return Sig((x, k, v), {"causal": s == t and flag(draw), "scale": 1 / sqrt(d)})


def _attention_rule(inputs, params, regions):
    q, k, v = inputs
    return (q.with_shape(q.shape[:-1] + v.shape[-1:]),)


def _attention(out, a, p, r):
    q, k, v = a
    o = out[0]
    scores = binop(binop(q, "@", call("jnp.swapaxes", k, -1, -2)), "*", round(p["scale"], 6))
    lines = [assign([f"{o}_scores"], scores)]
    weights_in = _name(o, "scores")
    if p["causal"]:
        lines += [
            assign([f"{o}_mask"], call("jnp.tril", call("jnp.ones", p["mask_shape"],
                                                        dtype=DType("bool_")))),
            assign([f"{o}_masked"], call("jnp.where", _name(o, "mask"), _name(o, "scores"),
                                         -1e9)),
        ]
        weights_in = _name(o, "masked")
    lines += [assign([f"{o}_weights"], call("jax.nn.softmax", weights_in, axis=-1)),
              assign(out, binop(_name(o, "weights"), "@", v))]
    return lines


def _attention_full_signature(draw, x: TensorType, env: Env) -> Sig:
    sig = _attention_signature(draw, x, env)
    q, k, _ = sig.inputs
    mask = (1,) * (q.rank - 2) + (q.shape[-2], k.shape[-2])
    return Sig(sig.inputs, {**sig.params, "mask_shape": mask})


def _mlp_signature(draw, x: TensorType, env: Env) -> Sig:
    n, d = x.shape
    h = integer(draw, 1, env.limits.max_dim * 2)
    o = integer(draw, 1, env.limits.max_dim)
    return Sig((x, x.with_shape((d, h)), x.with_shape((1, h)), x.with_shape((h, o))),
               {"activation": choice(draw, ["jax.nn.relu", "jax.nn.gelu", "jnp.tanh",
                                            "jax.nn.silu"])})


def _mlp(out, a, p, r):
    x, w1, b1, w2 = a
    o = out[0]
    return [assign([f"{o}_hidden"], call(p["activation"], binop(binop(x, "@", w1), "+", b1))),
            assign(out, binop(_name(o, "hidden"), "@", w2))]


def _gelu_tanh(a, p, r):
    x = a[0]
    inner = binop(x, "+", binop(0.044715, "*", binop(x, "**", 3)))
    return binop(binop(0.5, "*", x), "*",
                 binop(1.0, "+", call("jnp.tanh", binop(0.7978845608028654, "*", inner))))


def _composite(name, categories, ranks, signature, rule, render, calls) -> Op:
    return Op(name, "composite", ("nn",) + categories, FLOAT, ranks, signature, rule, render,
              calls=calls)


NN_OPS = [
    _softmax_op("softmax", "jax.nn.softmax"),
    _softmax_op("log_softmax", "jax.nn.log_softmax"),
    _composite("stable_softmax", ("softmax",), (1, 4), lambda draw, x, env: Sig((x,)), same,
               _stable_softmax, ("jnp.max", "jnp.exp", "jnp.sum")),
    _composite("layernorm", ("layernorm",), (1, 4), _norm_signature, same, _normalize(-1),
               ("jnp.mean", "jnp.var", "lax.rsqrt")),
    _composite("batchnorm", ("batchnorm",), (2, 4), _norm_signature, same, _normalize(0),
               ("jnp.mean", "jnp.var", "lax.rsqrt")),
    _composite("attention", ("attention", "matmul", "softmax"), (2, 3),
               _attention_full_signature, _attention_rule, _attention,
               ("jnp.swapaxes", "jnp.tril", "jnp.ones", "jnp.where", "jax.nn.softmax")),
    _composite("mlp", ("mlp", "matmul"), (2, 2), _mlp_signature,
               lambda i, p, r: (i[0].with_shape((i[0].shape[0], i[3].shape[1])),), _mlp,
               ("jax.nn.relu", "jax.nn.gelu", "jnp.tanh", "jax.nn.silu")),
    _composite("gelu_tanh", ("gelu", "elementwise"), (0, 4), lambda draw, x, env: Sig((x,)),
               same, expression(_gelu_tanh), ("jnp.tanh",)),
]

