"""Control flow and transformations: ops whose bodies are nested regions of the grammar."""

from __future__ import annotations

from collections.abc import Sequence

import libcst as cst

from grammar.opdef import Env, Op, RegionCode, RegionSpec, Sig, flag, integer, recording
from grammar.syntax import assign, binop, call, funcdef, return_, subscript, tuple_
from grammar.types import ANY, FLOAT, TensorType

INDEX = TensorType((), "int32")


def define(region: RegionCode, params: Sequence[str] | None = None,
           prelude: Sequence[cst.BaseStatement] = (),
           results: Sequence[cst.BaseExpression] | None = None) -> cst.FunctionDef:
    """The ``def`` of a region, optionally with other parameters, a prelude and results."""
    body = [*prelude, *region.body, return_(region.results if results is None else results)]
    return funcdef(region.name, region.params if params is None else params, body)


def _names(regions: Sequence[RegionCode]) -> list[cst.Name]:
    return [cst.Name(r.name) for r in regions]


def _predicate(x: cst.BaseExpression, dtype: str) -> cst.BaseExpression:
    return call("jnp.any", x) if dtype == "bool" else binop(call("jnp.sum", x), ">", 0)


MAX_TRIPS = 4
"""The most iterations of a loop with a literal trip count (validate refuses more)."""


# -- loops ----------------------------------------------------------------------------

def _fori_signature(draw, x: TensorType, env: Env) -> Sig:
    lo = integer(draw, 0, 2)
    body = RegionSpec((INDEX, x), (x,), index_params=1, forced=_forced(env))
    return Sig((x,), {"lower": lo, "upper": lo + integer(draw, 1, MAX_TRIPS)}, (body,))


def _fori_dynamic_signature(draw, x: TensorType, env: Env) -> Sig:
    body = RegionSpec((INDEX, x), (x,), index_params=1, forced=_forced(env))
    return Sig((x, INDEX), {"modulus": integer(draw, 2, 5)}, (body,))


def _fori(out, a, p, r):
    upper = p["upper"] if "upper" in p else binop(a[1], "%", p["modulus"])
    lower = p.get("lower", 0)
    return [define(r[0]), assign(out, call("lax.fori_loop", lower, upper, cst.Name(r[0].name),
                                           a[0]))]


def _while_signature(draw, x: TensorType, env: Env) -> Sig:
    body = RegionSpec((INDEX, x), (x,), index_params=1, forced=_forced(env))
    return Sig((x,), {"trips": integer(draw, 1, MAX_TRIPS)}, (body,))


def _while(out, a, p, r):
    body = r[0]
    counter = cst.Name(body.params[0])
    cond_name = body.name.replace("body", "cond")
    cond = funcdef(cond_name, ["carry"], [return_([binop(subscript(cst.Name("carry"), [0]), "<",
                                                         p["trips"])])])
    unpack = assign(body.params, cst.Name("carry"))
    loop = define(body, ["carry"], [unpack], [binop(counter, "+", 1), *body.results])
    init = tuple_([0, a[0]])
    return [cond, loop, assign(out, subscript(call("lax.while_loop", cst.Name(cond_name),
                                                   cst.Name(body.name), init), [1]))]


def _scan_signature(draw, xs: TensorType, env: Env) -> Sig:
    carry = xs.with_shape(xs.shape[1:])
    body = RegionSpec((carry, carry), (carry, None),
                      max_result_elements=env.limits.max_elements // xs.shape[0],
                      forced=_forced(env))
    return Sig((xs, carry), {"reverse": flag(draw)}, (body,))


def _scan_rule(inputs, params, regions):
    xs = inputs[0]
    carry, y = regions[0]
    return (carry, y.with_shape((xs.shape[0],) + y.shape))


def _scan(out, a, p, r):
    kwargs = {"reverse": True} if p["reverse"] else {}
    return [define(r[0]), assign(out, call("lax.scan", cst.Name(r[0].name), a[1], a[0],
                                           **kwargs))]


# -- branches -------------------------------------------------------------------------

def _forced(env: Env) -> tuple[str, ...]:
    return ("cond",) if "nested" in env.hints else ()


def _cond_signature(draw, x: TensorType, env: Env) -> Sig:
    branch = RegionSpec((x,), (x,))
    return Sig((x,), {}, (RegionSpec((x,), (x,), forced=_forced(env)), branch))


def _cond(out, a, p, r):
    pred = _predicate(a[0], p["dtype"])
    return [define(r[0]), define(r[1]),
            assign(out, call("lax.cond", pred, *_names(r), a[0]))]


def _switch_signature(draw, x: TensorType, env: Env) -> Sig:
    n = integer(draw, 2, 3)
    first = RegionSpec((x,), (x,), forced=_forced(env))
    return Sig((x,), {}, (first,) + (RegionSpec((x,), (x,)),) * (n - 1))


def _switch(out, a, p, r):
    return [*(define(b) for b in r),
            assign(out, call("lax.switch", call("jnp.argmax", a[0]), list(_names(r)), a[0]))]


# -- transformations ------------------------------------------------------------------

def _vmap_signature(draw, x: TensorType, env: Env) -> Sig:
    ax = integer(draw, 0, x.rank - 1)
    row = x.with_shape(x.shape[:ax] + x.shape[ax + 1:])
    inputs = (x, row) if flag(draw) else (x,)
    fn = RegionSpec((row,) * len(inputs), (None,),
                    max_result_elements=env.limits.max_elements // x.shape[ax],
                    forced=_forced(env))
    return Sig(inputs, {"in_axis": ax}, (fn,))


def _vmap_rule(inputs, params, regions):
    (result,) = regions[0]
    return (result.with_shape((inputs[0].shape[params["in_axis"]],) + result.shape),)


def _vmap(out, a, p, r):
    ax = p["in_axis"]
    kwargs = {"in_axes": (ax, None)} if len(a) == 2 else ({"in_axes": ax} if ax else {})
    return [define(r[0]), assign(out, cst.Call(call("jax.vmap", cst.Name(r[0].name), **kwargs),
                                               [cst.Arg(v) for v in a]))]


def _grad_signature(draw, x: TensorType, env: Env) -> Sig:
    return Sig((x,), {}, (RegionSpec((x,), ("float_scalar",), reverse_diff=True,
                                     forced=_forced(env)),))


def apply_transform(fn: str):
    def render(out, a, p, r):
        return [define(r[0]), assign(out, cst.Call(call(fn, cst.Name(r[0].name)),
                                                   [cst.Arg(v) for v in a]))]
    return render


def _jvp_signature(draw, x: TensorType, env: Env) -> Sig:
    return Sig((x,), {}, (RegionSpec((x,), ("float",), forward_diff=True, forced=_forced(env)),))


def _jvp(out, a, p, r):
    tangent = call("jnp.ones_like", a[0])
    return [define(r[0]), assign(out, call("jax.jvp", cst.Name(r[0].name), tuple_([a[0]]),
                                           tuple_([tangent])))]


def _wrap_signature(draw, x: TensorType, env: Env) -> Sig:
    return Sig((x,), {}, (RegionSpec((x,), (None,), forced=_forced(env)),))


def _region_result(inputs, params, regions):
    return (regions[0][0],)


def _control(name, categories, dtypes, ranks, signature, rule, render, calls, *,
             family="control", differentiable=True, known_failure=None) -> Op:
    return Op(name, family, (family,) + categories, dtypes, ranks, signature, rule, render,
              calls=calls, differentiable=differentiable, known_failure=known_failure)


CONTROL = [
    _control("fori_loop", ("loop",), ANY, (0, 4), _fori_signature, _region_result, _fori,
             ("lax.fori_loop",)),
    _control("fori_loop_dynamic", ("loop", "dynamic_loop"), ANY, (0, 4), _fori_dynamic_signature,
             _region_result, _fori, ("lax.fori_loop",), differentiable=False,
             known_failure="grad_dynamic_loop"),
    _control("while_loop", ("loop", "while_loop"), ANY, (0, 4), _while_signature,
             _region_result, _while, ("lax.while_loop",), differentiable=False,
             known_failure="grad_dynamic_loop"),
    _control("scan", ("scan",), ANY, (1, 4), _scan_signature, _scan_rule, _scan, ("lax.scan",)),
    _control("cond", ("branch", "cond"), ANY, (0, 4), recording(_cond_signature, "dtype"),
             _region_result, _cond, ("lax.cond", "jnp.any", "jnp.sum")),
    _control("switch", ("branch", "switch"), ANY, (0, 4), _switch_signature, _region_result,
             _switch, ("lax.switch", "jnp.argmax")),
    _control("vmap", ("vmap",), ANY, (1, 4), _vmap_signature, _vmap_rule, _vmap,
             ("jax.vmap",), family="transform"),
    _control("grad", ("grad",), FLOAT, (0, 4), _grad_signature, lambda i, p, r: (i[0],),
             apply_transform("jax.grad"), ("jax.grad",), family="transform"),
    _control("value_and_grad", ("grad",), FLOAT, (0, 4), _grad_signature,
             lambda i, p, r: (r[0][0], i[0]), apply_transform("jax.value_and_grad"),
             ("jax.value_and_grad",), family="transform"),
    _control("jvp", ("jvp",), FLOAT, (0, 4), _jvp_signature, lambda i, p, r: (r[0][0],) * 2,
             _jvp, ("jax.jvp", "jnp.ones_like"), family="transform"),
    _control("checkpoint", ("checkpoint",), ANY, (0, 4), _wrap_signature, _region_result,
             apply_transform("jax.checkpoint"), ("jax.checkpoint",), family="transform"),
    _control("jit", ("jit",), ANY, (0, 4), _wrap_signature, _region_result,
             apply_transform("jax.jit"), ("jax.jit",), family="transform"),
]

