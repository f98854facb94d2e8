"""Custom differentiation rules and higher-order transforms of model code.

``jax.custom_jvp`` and ``jax.custom_vjp`` wrap a region with rules that are correct by
construction: the jvp rule is ``jax.jvp`` of the same function, the vjp rule pulls back
through ``jax.vjp`` of it, so the autodiff oracle holds them to JAX's own derivative.  The
rest are ``jax.jacfwd``, ``jax.jacrev``, ``jax.hessian``, ``lax.map``,
``lax.stop_gradient``, and ``jax.checkpoint`` with a rematerialisation policy, which may
save the values ``jax.ad_checkpoint.checkpoint_name`` tagged.
"""

from __future__ import annotations

import libcst as cst

from grammar.opdef import Env, Op, RegionSpec, Sig, choice, expression, same
from grammar.ops_control import apply_transform, define
from grammar.syntax import assign, call, dotted, funcdef, return_, subscript
from grammar.types import ANY, FLOAT, TensorType

CUSTOM_RULES = ("jax.custom_jvp", "jax.custom_vjp")
"""Calls whose result is a function: the validator lets a program call what they return."""

POLICIES = ("jax.checkpoint_policies.nothing_saveable",
            "jax.checkpoint_policies.everything_saveable",
            "jax.checkpoint_policies.dots_saveable",
            "jax.checkpoint_policies.dots_with_no_batch_dims_saveable")
SAVE_NAMES = "jax.checkpoint_policies.save_only_these_names"
"""The policy that saves what ``checkpoint_name`` tagged with one of ``CHECKPOINT_NAMES``."""
CHECKPOINT_NAMES = ("hidden", "attn_out", "mlp_out")


def _region_result(inputs, params, regions):
    return (regions[0][0],)


def _closed_region(draw, x: TensorType, env: Env) -> Sig:
    """A custom rule's function sees only its argument: JAX's custom_jvp and custom_vjp do
    not differentiate values they close over (``jax.closure_convert`` would be needed)."""
    return Sig((x,), {}, (RegionSpec((x,), ("float",), reverse_diff=True, forward_diff=True,
                                     closed=True),))


def _custom_jvp(out, a, p, r):
    fn = r[0].name
    rule = funcdef(f"{fn}_jvp", ["primals", "tangents"], [return_([call(
        "jax.jvp", cst.Name(fn), cst.Name("primals"), cst.Name("tangents"))])])
    return [define(r[0]), assign([f"{fn}_custom"], call("jax.custom_jvp", cst.Name(fn))),
            rule,
            assign([f"{fn}_rule"], call(cst.Attribute(cst.Name(f"{fn}_custom"), cst.Name("defjvp")),
                                        cst.Name(rule.name.value))),
            assign(out, call(cst.Name(f"{fn}_custom"), *a))]


def _custom_vjp(out, a, p, r):
    fn = r[0].name
    fwd = funcdef(f"{fn}_fwd", ["primal"], [return_([call(cst.Name(fn), cst.Name("primal")),
                                                     cst.Name("primal")])])
    pullback = subscript(call("jax.vjp", cst.Name(fn), cst.Name("residual")), [1])
    bwd = funcdef(f"{fn}_bwd", ["residual", "cotangent"],
                  [return_([call(pullback, cst.Name("cotangent"))])])
    custom = cst.Name(f"{fn}_custom")
    return [define(r[0]), assign([custom.value], call("jax.custom_vjp", cst.Name(fn))), fwd,
            bwd, assign([f"{fn}_rule"], call(cst.Attribute(custom, cst.Name("defvjp")),
                                             cst.Name(fwd.name.value), cst.Name(bwd.name.value))),
            assign(out, call(custom, *a))]


def _jacobian_signature(draw, x: TensorType, env: Env) -> Sig:
    budget = env.limits.max_elements // max(1, x.size)
    return Sig((x,), {}, (RegionSpec((x,), ("float",), reverse_diff=True, forward_diff=True,
                                     max_result_elements=max(1, budget)),))


def _jacfwd_rule(inputs, params, regions):
    """Tangents are pushed forward: the Jacobian has the output's dtype."""
    (result,) = regions[0]
    return (result.with_shape(result.shape + inputs[0].shape),)


def _jacrev_rule(inputs, params, regions):
    """Cotangents are pulled back: the Jacobian has the input's dtype."""
    (result,) = regions[0]
    return (TensorType(result.shape + inputs[0].shape, inputs[0].dtype),)


def _hessian_signature(draw, x: TensorType, env: Env) -> Sig:
    return Sig((x,), {}, (RegionSpec((x,), ("float_scalar",), reverse_diff=True,
                                     forward_diff=True),))


def _linearize_signature(draw, x: TensorType, env: Env) -> Sig:
    return Sig((x,), {}, (RegionSpec((x,), ("float",), forward_diff=True),))


def _linearize(out, a, p, r):
    """The tangent of ``fn`` at ``x`` along ones, from the linear map ``jax.linearize``
    returns (called where it is made, as ``jax.vjp(...)[1]`` is)."""
    linear = subscript(call("jax.linearize", cst.Name(r[0].name), a[0]), [1])
    return [define(r[0]), assign(out, call(linear, call("jnp.ones_like", a[0])))]


def _map_signature(draw, x: TensorType, env: Env) -> Sig:
    row = x.with_shape(x.shape[1:])
    return Sig((x,), {}, (RegionSpec((row,), (None,),
                                     max_result_elements=env.limits.max_elements // x.shape[0]),))


def _map_rule(inputs, params, regions):
    (result,) = regions[0]
    return (result.with_shape((inputs[0].shape[0],) + result.shape),)


def _checkpoint_signature(draw, x: TensorType, env: Env) -> Sig:
    policy = choice(draw, (*POLICIES, SAVE_NAMES))
    return Sig((x,), {"policy": policy}, (RegionSpec((x,), (None,)),))


def _checkpoint(out, a, p, r):
    policy = (call(SAVE_NAMES, *CHECKPOINT_NAMES[:2]) if p["policy"] == SAVE_NAMES
              else dotted(p["policy"]))
    return [define(r[0]), assign(out, cst.Call(
        call("jax.checkpoint", cst.Name(r[0].name), policy=policy), [cst.Arg(v) for v in a]))]


def _transform_op(name: str, categories: tuple[str, ...], dtypes, ranks, signature, rule,
                  render, calls: tuple[str, ...], values: tuple[str, ...] = (),
                  when=None, forward: bool = True) -> Op:
    return Op(name, "transform", ("transform",) + categories, dtypes, ranks, signature, rule,
              render, calls=calls, values=values, when=when, forward=forward)


AUTODIFF_OPS = [
    _transform_op("custom_jvp", ("custom_rule",), FLOAT, (0, 4), _closed_region,
                  _region_result, _custom_jvp, ("jax.custom_jvp", "jax.jvp")),
    _transform_op("custom_vjp", ("custom_rule",), FLOAT, (0, 4), _closed_region,
                  _region_result, _custom_vjp, ("jax.custom_vjp", "jax.vjp"), forward=False),
    _transform_op("jacfwd", ("grad", "jacobian"), FLOAT, (0, 2), _jacobian_signature,
                  _jacfwd_rule, apply_transform("jax.jacfwd"), ("jax.jacfwd",),
                  when=lambda t: t.size <= 64),
    _transform_op("jacrev", ("grad", "jacobian"), FLOAT, (0, 2), _jacobian_signature,
                  _jacrev_rule, apply_transform("jax.jacrev"), ("jax.jacrev",),
                  when=lambda t: t.size <= 64),
    _transform_op("hessian", ("grad", "jacobian"), FLOAT, (0, 2), _hessian_signature,
                  lambda i, p, r: (i[0].with_shape(i[0].shape * 2),),
                  apply_transform("jax.hessian"), ("jax.hessian",), when=lambda t: t.size <= 32),
    _transform_op("linearize", ("jvp",), FLOAT, (0, 4), _linearize_signature, _region_result,
                  _linearize, ("jax.linearize", "jnp.ones_like")),
    _transform_op("lax_map", ("scan",), ANY, (1, 4), _map_signature, _map_rule,
                  lambda out, a, p, r: [define(r[0]), assign(out, call(
                      "lax.map", cst.Name(r[0].name), a[0]))], ("lax.map",)),
    _transform_op("checkpoint_policy", ("checkpoint",), ANY, (0, 4), _checkpoint_signature,
                  _region_result, _checkpoint, ("jax.checkpoint", SAVE_NAMES), POLICIES),
    Op("checkpoint_name", "unary", ("checkpoint",), ANY, (0, 4),
       lambda draw, x, env: Sig((x,), {"name": choice(draw, CHECKPOINT_NAMES)}), same,
       expression(lambda a, p, r: call("jax.ad_checkpoint.checkpoint_name", a[0], p["name"])),
       calls=("jax.ad_checkpoint.checkpoint_name",), imports=("import jax.ad_checkpoint",)),
    Op("stop_gradient", "unary", ("elementwise", "grad"), FLOAT, (0, 4),
       lambda draw, x, env: Sig((x,)), same,
       expression(lambda a, p, r: call("lax.stop_gradient", a[0])),
       calls=("lax.stop_gradient",)),
]
