"""Shape manipulation, static and dynamic slicing, gathers and scatters."""

from __future__ import annotations

import libcst as cst

from grammar.opdef import (
    Env,
    Op,
    Sig,
    axis,
    choice,
    dims,
    expression,
    flag,
    float_dtype,
    integer,
    literal,
    norm_axis,
    permutation,
)
from grammar.syntax import call, method, slice_, subscript
from grammar.types import ANY, NUMERIC, TensorType

SHAPE = ("shape",)
INDEXING = ("indexing",)


def _divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


def _reshape_signature(draw, x: TensorType, env: Env) -> Sig:
    rank = integer(draw, 1, env.limits.max_rank)
    left, shape = x.size, []
    for _ in range(rank - 1):
        d = choice(draw, _divisors(left))
        shape.append(d)
        left //= d
    shape.append(left)
    written = list(shape)
    if flag(draw):
        written[integer(draw, 0, rank - 1)] = -1
    return Sig((x,), {"shape": tuple(shape), "written": tuple(written), "form": flag(draw)})


def _reshape_render(a, p, r):
    if p["form"]:
        return method(a[0], "reshape", p["written"])
    return call("jnp.reshape", a[0], p["written"])


def _broadcast_to_signature(draw, x: TensorType, env: Env) -> Sig:
    budget = env.limits.max_elements // max(1, x.size)
    shape = []
    for d in x.shape:
        n = integer(draw, 1, max(1, min(env.limits.max_dim, budget))) if d == 1 else d
        budget //= n
        shape.append(n)
    lead = dims(draw, integer(draw, 0, env.limits.max_rank - x.rank), env.limits, budget)
    return Sig((x,), {"shape": lead + tuple(shape)})


def _concat_signature(draw, x: TensorType, env: Env) -> Sig:
    ax = axis(draw, x.rank)
    k = norm_axis(ax, x.rank)
    others, total = [], x.size
    for _ in range(integer(draw, 1, 2)):
        rest = max(1, x.size // x.shape[k])
        n = integer(draw, 1, max(1, min(env.limits.max_dim, (env.limits.max_elements - total)
                                        // rest)))
        if total + n * rest > env.limits.max_elements:
            break
        total += n * rest
        others.append(x.with_shape(x.shape[:k] + (n,) + x.shape[k + 1:]))
    return Sig((x, *others), {"axis": ax})


def _concat_rule(inputs, params, regions):
    x = inputs[0]
    k = norm_axis(params["axis"], x.rank)
    n = sum(t.shape[k] for t in inputs)
    return (x.with_shape(x.shape[:k] + (n,) + x.shape[k + 1:]),)


def _stack_signature(draw, x: TensorType, env: Env) -> Sig:
    n = integer(draw, 1, max(1, min(2, env.limits.max_elements // max(1, x.size) - 1)))
    return Sig((x,) * (n + 1), {"axis": integer(draw, 0, x.rank)})


def _stack_rule(inputs, params, regions):
    x, k = inputs[0], params["axis"]
    return (x.with_shape(x.shape[:k] + (len(inputs),) + x.shape[k:]),)


def _splittable(t: TensorType) -> bool:
    return any(d > 1 for d in t.shape)


def _split_signature(draw, x: TensorType, env: Env) -> Sig:
    k = choice(draw, [i for i, d in enumerate(x.shape) if d > 1])
    n = choice(draw, [d for d in _divisors(x.shape[k]) if 1 < d <= 4] or [x.shape[k]])
    return Sig((x,), {"sections": n, "axis": k})


def _split_rule(inputs, params, regions):
    x, k, n = inputs[0], params["axis"], params["sections"]
    return (x.with_shape(x.shape[:k] + (x.shape[k] // n,) + x.shape[k + 1:]),) * n


def _slice_signature(draw, x: TensorType, env: Env) -> Sig:
    """Per dim: keep all, a strided slice, or one integer index (drops the dim)."""
    index = []
    for d in x.shape:
        kind = integer(draw, 0, 2)
        if kind == 0 or d == 1 and kind == 1:
            index.append(("all",))
        elif kind == 1:
            start = integer(draw, 0, d - 1)
            stop = integer(draw, start + 1, d)
            step = integer(draw, 1, 3)
            index.append(("slice", start or None, None if stop == d else stop,
                          None if step == 1 else step))
        else:
            index.append(("int", integer(draw, -d, d - 1)))
    while index and index[-1] == ("all",):
        index.pop()
    if not index:
        index = [("int", 0)]
    return Sig((x,), {"index": tuple(index)})


def _slice_rule(inputs, params, regions):
    x, shape = inputs[0], []
    for i, d in enumerate(x.shape):
        spec = params["index"][i] if i < len(params["index"]) else ("all",)
        if spec[0] == "all":
            shape.append(d)
        elif spec[0] == "slice":
            shape.append(len(range(d)[slice(*spec[1:])]))
    return (x.with_shape(tuple(shape)),)


def _slice_render(a, p, r):
    parts = [slice_(None, None, None) if s[0] == "all" else slice_(*s[1:]) if s[0] == "slice"
             else s[1] for s in p["index"]]
    return subscript(a[0], parts)


def _pad_signature(draw, x: TensorType, env: Env) -> Sig:
    widths, size = [], x.size
    for d in x.shape:
        lo, hi = integer(draw, 0, 2), integer(draw, 0, 2)
        if size // d * (d + lo + hi) > env.limits.max_elements:
            lo = hi = 0
        size = size // d * (d + lo + hi)
        widths.append((lo, hi))
    return Sig((x,), {"pad_width": tuple(widths), "mode": choice(draw, ["constant", "edge"])})


def _pad_rule(inputs, params, regions):
    x = inputs[0]
    return (x.with_shape(tuple(d + lo + hi for d, (lo, hi) in
                               zip(x.shape, params["pad_width"], strict=True))),)


def _tile_signature(draw, x: TensorType, env: Env) -> Sig:
    reps, size = [], x.size
    for _ in x.shape:
        r = integer(draw, 1, max(1, min(3, env.limits.max_elements // size)))
        size *= r
        reps.append(r)
    return Sig((x,), {"reps": tuple(reps)})


def _repeat_signature(draw, x: TensorType, env: Env) -> Sig:
    r = integer(draw, 1, max(1, min(3, env.limits.max_elements // x.size)))
    return Sig((x,), {"repeats": r, "axis": None if flag(draw) else axis(draw, x.rank)})


def _repeat_rule(inputs, params, regions):
    x, r, ax = inputs[0], params["repeats"], params["axis"]
    if ax is None:
        return (x.with_shape((x.size * r,)),)
    k = norm_axis(ax, x.rank)
    return (x.with_shape(x.shape[:k] + (x.shape[k] * r,) + x.shape[k + 1:]),)


def _squeeze_signature(draw, x: TensorType, env: Env) -> Sig:
    return Sig((x,), {"axis": choice(draw, [i for i, d in enumerate(x.shape) if d == 1])})


def _squeeze_example(draw, env: Env) -> TensorType:
    from grammar.opdef import tensor
    t = tensor(draw, env, ANY, 1, 4)
    k = integer(draw, 0, t.rank - 1)
    return t.with_shape(t.shape[:k] + (1,) + t.shape[k + 1:])


def _dynamic_slice_signature(draw, x: TensorType, env: Env) -> Sig:
    sizes = tuple(integer(draw, 1, d) for d in x.shape)
    starts = tuple(integer(draw, 0, d - s) for d, s in zip(x.shape, sizes, strict=True))
    return Sig((x,), {"start_indices": starts, "slice_sizes": sizes})


def _dynamic_update_signature(draw, x: TensorType, env: Env) -> Sig:
    sizes = tuple(integer(draw, 1, d) for d in x.shape)
    starts = tuple(integer(draw, 0, d - s) for d, s in zip(x.shape, sizes, strict=True))
    return Sig((x, x.with_shape(sizes)), {"start_indices": starts})


def _take_signature(draw, x: TensorType, env: Env) -> Sig:
    ax = integer(draw, 0, x.rank - 1)
    d = x.shape[ax]
    budget = max(1, env.limits.max_elements * d // x.size)
    idx = [integer(draw, -d, d - 1) for _ in range(integer(draw, 1, min(4, budget)))]
    form = choice(draw, ["index", "at"]) if ax == 0 and flag(draw) else "take"
    return Sig((x,), {"axis": ax, "indices": idx, "form": form})


def _take_rule(inputs, params, regions):
    x, k = inputs[0], params["axis"]
    return (x.with_shape(x.shape[:k] + (len(params["indices"]),) + x.shape[k + 1:]),)


def _take_render(a, p, r):
    idx = call("jnp.array", p["indices"])
    if p["form"] == "index":
        return subscript(a[0], [idx])
    if p["form"] == "at":  # x.at[idx].get(): the same gather
        return method(subscript(cst.Attribute(a[0], cst.Name("at")), [idx]), "get")
    return call("jnp.take", a[0], idx, axis=p["axis"])


def _transpose_signature(draw, x: TensorType, env: Env) -> Sig:
    """Every axis reversed (of a matrix written ``jnp.transpose(x)``, ``x.T`` in the method
    style; of more axes with the axes spelled, ``x.transpose(axes)``) or a drawn
    permutation."""
    reverse = flag(draw)
    axes = tuple(reversed(range(x.rank))) if reverse else permutation(draw, x.rank)
    return Sig((x,), {"axes": axes, "reverse": reverse})


def _transpose_render(a, p, r):
    if p["reverse"] and len(p["axes"]) <= 2:  # a matrix: x.T in the method style
        return call("jnp.transpose", a[0])
    return call("jnp.transpose", a[0], p["axes"])


_SCATTER_METHODS = ("set", "add", "multiply", "min", "max")


def _scatter_signature(draw, x: TensorType, env: Env) -> Sig:
    """``x.at[index].method(value)``: index an int, a slice or an index array on axis 0."""
    d = x.shape[0]
    kind = integer(draw, 0, 2)
    if kind == 0:
        index, sub = ("int", integer(draw, -d, d - 1)), x.shape[1:]
    elif kind == 1:
        start = integer(draw, 0, d - 1)
        stop = integer(draw, start + 1, d)
        index, sub = ("slice", start or None, None if stop == d else stop, None), \
            (stop - start,) + x.shape[1:]
    else:
        ids = tuple(integer(draw, 0, d - 1) for _ in range(integer(draw, 1, 3)))
        index, sub = ("array", ids), (len(ids),) + x.shape[1:]
    value = literal(draw, x.dtype) if flag(draw) else x.with_shape(sub)
    methods = _SCATTER_METHODS
    if kind == 2 and (env.reverse or not env.known_failures):
        methods = tuple(m for m in methods if m != "multiply")  # no reverse-mode rule
    return Sig((x, value), {"index": index, "method": choice(draw, methods)})


def _scatter_known_failure(params) -> str | None:
    """JAX differentiates a scatter-multiply only with unique indices, which it cannot
    assume for an index array."""
    if params["method"] == "multiply" and params["index"][0] == "array":
        return "grad_scatter_mul"
    return None


def _scatter_render(a, p, r):
    kind, *rest = p["index"]
    idx = (rest[0] if kind == "int" else slice_(*rest) if kind == "slice"
           else call("jnp.array", list(rest[0])))
    at = cst.Attribute(a[0], cst.Name("at"))
    return method(subscript(at, [idx]), p["method"], a[1])


def _simple(name, family, categories, ranks, signature, rule, build, calls, dtypes=ANY,
            when=None, example=None, known_failure=None) -> Op:
    return Op(name, family, categories, dtypes, ranks, signature, rule, expression(build),
              calls=calls, when=when, example=example, known_failure=known_failure)


def _moved(x: TensorType, p) -> tuple[TensorType]:
    src, dst = norm_axis(p["source"], x.rank), norm_axis(p["destination"], x.rank)
    order = [i for i in range(x.rank) if i != src]
    order.insert(dst, src)
    return (x.with_shape(tuple(x.shape[i] for i in order)),)


def _swapped(x: TensorType, p) -> tuple[TensorType]:
    a, b = norm_axis(p["axis1"], x.rank), norm_axis(p["axis2"], x.rank)
    shape = list(x.shape)
    shape[a], shape[b] = shape[b], shape[a]
    return (x.with_shape(tuple(shape)),)


SHAPES = [
    _simple("reshape", "shape", SHAPE, (0, 4), _reshape_signature,
            lambda i, p, r: (i[0].with_shape(p["shape"]),), _reshape_render, ("jnp.reshape",)),
    _simple("transpose", "shape", SHAPE, (1, 4), _transpose_signature,
            lambda i, p, r: (i[0].with_shape(tuple(i[0].shape[k] for k in p["axes"])),),
            _transpose_render, ("jnp.transpose",)),
    _simple("ravel", "shape", SHAPE, (1, 4),
            lambda draw, x, env: Sig((x,), {"reshape": flag(draw)}),
            lambda i, p, r: (i[0].with_shape((i[0].size,)),),
            lambda a, p, r: call("jnp.reshape", a[0], -1) if p["reshape"]
            else call("jnp.ravel", a[0]), ("jnp.ravel", "jnp.reshape")),
    _simple("swapaxes", "shape", SHAPE, (2, 4),
            lambda draw, x, env: Sig((x,), {"axis1": axis(draw, x.rank),
                                            "axis2": axis(draw, x.rank)}),
            lambda i, p, r: _swapped(i[0], p),
            lambda a, p, r: call("jnp.swapaxes", a[0], p["axis1"], p["axis2"]),
            ("jnp.swapaxes",)),
    _simple("moveaxis", "shape", SHAPE, (2, 4),
            lambda draw, x, env: Sig((x,), {"source": axis(draw, x.rank),
                                            "destination": axis(draw, x.rank)}),
            lambda i, p, r: _moved(i[0], p),
            lambda a, p, r: call("jnp.moveaxis", a[0], p["source"], p["destination"]),
            ("jnp.moveaxis",)),
    _simple("expand_dims", "shape", SHAPE, (0, 3),
            lambda draw, x, env: Sig((x,), {"axis": integer(draw, 0, x.rank)}),
            lambda i, p, r: (i[0].with_shape(i[0].shape[:p["axis"]] + (1,)
                                             + i[0].shape[p["axis"]:]),),
            lambda a, p, r: call("jnp.expand_dims", a[0], p["axis"]), ("jnp.expand_dims",)),
    _simple("squeeze", "shape", SHAPE, (1, 4), _squeeze_signature,
            lambda i, p, r: (i[0].with_shape(i[0].shape[:p["axis"]]
                                             + i[0].shape[p["axis"] + 1:]),),
            lambda a, p, r: call("jnp.squeeze", a[0], axis=p["axis"]), ("jnp.squeeze",),
            when=lambda t: 1 in t.shape, example=_squeeze_example),
    _simple("broadcast_to", "shape", SHAPE, (0, 4), _broadcast_to_signature,
            lambda i, p, r: (i[0].with_shape(p["shape"]),),
            lambda a, p, r: call("jnp.broadcast_to", a[0], p["shape"]), ("jnp.broadcast_to",)),
    _simple("concatenate", "shape", SHAPE, (1, 4), _concat_signature, _concat_rule,
            lambda a, p, r: call("jnp.concatenate", list(a), axis=p["axis"]),
            ("jnp.concatenate",)),
    _simple("stack", "shape", SHAPE, (0, 3), _stack_signature, _stack_rule,
            lambda a, p, r: call("jnp.stack", list(a), axis=p["axis"]), ("jnp.stack",)),
    _simple("split", "shape", SHAPE, (1, 4), _split_signature, _split_rule,
            lambda a, p, r: call("jnp.split", a[0], p["sections"], axis=p["axis"]),
            ("jnp.split",), when=_splittable,
            example=lambda draw, env: TensorType((2 * integer(draw, 1, 4),),
                                                 float_dtype(env))),
    _simple("pad", "shape", SHAPE, (1, 4), _pad_signature, _pad_rule,
            lambda a, p, r: call("jnp.pad", a[0], p["pad_width"], mode=p["mode"]),
            ("jnp.pad",), dtypes=NUMERIC),
    _simple("tile", "shape", SHAPE, (1, 4), _tile_signature,
            lambda i, p, r: (i[0].with_shape(tuple(d * k for d, k in
                                                   zip(i[0].shape, p["reps"], strict=True))),),
            lambda a, p, r: call("jnp.tile", a[0], p["reps"]), ("jnp.tile",)),
    _simple("repeat", "shape", SHAPE, (1, 4), _repeat_signature, _repeat_rule,
            lambda a, p, r: call("jnp.repeat", a[0], p["repeats"], axis=p["axis"]),
            ("jnp.repeat",)),
    _simple("flip", "shape", SHAPE, (1, 4),
            lambda draw, x, env: Sig((x,), {"axis": None if flag(draw) else axis(draw, x.rank)}),
            lambda i, p, r: (i[0],), lambda a, p, r: call("jnp.flip", a[0], axis=p["axis"]),
            ("jnp.flip",)),
    _simple("roll", "shape", SHAPE, (1, 4),
            lambda draw, x, env: Sig((x,), {"shift": integer(draw, -3, 3),
                                            "axis": None if flag(draw) else axis(draw, x.rank)}),
            lambda i, p, r: (i[0],),
            lambda a, p, r: call("jnp.roll", a[0], p["shift"], axis=p["axis"]), ("jnp.roll",)),
    _simple("slice", "indexing", INDEXING, (1, 4), _slice_signature, _slice_rule,
            _slice_render, ()),
    _simple("dynamic_slice", "indexing", INDEXING, (1, 4), _dynamic_slice_signature,
            lambda i, p, r: (i[0].with_shape(p["slice_sizes"]),),
            lambda a, p, r: call("lax.dynamic_slice", a[0], p["start_indices"],
                                 p["slice_sizes"]), ("lax.dynamic_slice",)),
    _simple("dynamic_update_slice", "indexing", INDEXING, (1, 4), _dynamic_update_signature,
            lambda i, p, r: (i[0],),
            lambda a, p, r: call("lax.dynamic_update_slice", a[0], a[1], p["start_indices"]),
            ("lax.dynamic_update_slice",)),
    _simple("gather", "indexing", INDEXING, (1, 4), _take_signature, _take_rule, _take_render,
            ("jnp.take", "jnp.array")),
    _simple("scatter", "indexing", INDEXING, (1, 4), _scatter_signature, lambda i, p, r: (i[0],),
            _scatter_render, ("jnp.array",), dtypes=NUMERIC,
            known_failure=_scatter_known_failure),
]

