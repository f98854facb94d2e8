"""Programs over a mesh of virtual devices: per-device bodies in ``jax.shard_map`` with the
collectives model code writes inside them, and arrays that XLA partitions over the mesh
(``sharding``: ``lax.with_sharding_constraint``, or a nested ``jax.jit`` with
``in_shardings``/``out_shardings``).

Every program has one mesh shape, ``jax.make_mesh((2, 4), ("x", "y"), axis_types=(Auto,
Auto))`` over the 8 virtual CPU devices of the extraction workers and the test suite: one
jitted program may use one set of devices, and an array cannot move between meshes of other
shapes over the same devices (eagerly on 0.10.2, under jit on 0.12.0.1:
``findings/shard_map_between_mesh_shapes.py``).  An op splits a dimension over
``"x"`` (2 devices), ``"y"`` (4) or both (8), whichever divides it.

A ``shard_map`` body is a region of the grammar on one device's block of the operand; it
returns a value of that block's type, and the op's collective over the split axes turns it
into the result, so the out specs and the global type follow by construction:

* ``psum``, ``pmean``, ``pmax``, ``pmin``: the same on every device, ``out_specs=P()``;
* ``all_gather`` (tiled or stacked), ``psum_scatter``, ``ppermute`` (a ring shift),
  ``all_to_all``, ``axis_index`` (added to the block) and no collective: one block per
  device, concatenated, ``out_specs=P(axes)``.

``check_vma=False``: a loop or branch in the body may carry a value that varies over the
devices from one that does not, which the check refuses.  A body is closed (it sees only its
block: closing over an array another mesh op made fails to trace, "Context mesh ...
Manual") and holds no mesh op of its own (inside a shard_map the mesh axes are manual).
"""

from __future__ import annotations

import libcst as cst

from grammar.opdef import Draw, Env, Op, RegionSpec, Sig, choice, dims, integer, recording
from grammar.ops_control import define
from grammar.syntax import DType, assign, binop, call, dotted, lit, method, tuple_
from grammar.types import FLOAT, NUMERIC, TensorType

MESH_SHAPE = (2, 4)
MESH_AXES = ("x", "y")
MESH_DEVICES = 8
"""Devices of the mesh: ``extract.pool.DEVICES`` virtual CPU devices are there."""
SPLITS = (("x",), ("y",), ("x", "y"))
"""The axes a dimension may be split over, and so the devices per block: 2, 4 or 8."""
REPLICATED = ("psum", "pmean", "pmax", "pmin")
MESH_OPS = frozenset({"shard_map", "sharding"})


def _size(axes: tuple[str, ...]) -> int:
    out = 1
    for a in axes:
        out *= MESH_SHAPE[MESH_AXES.index(a)]
    return out


def _axes(axes: tuple[str, ...]) -> cst.BaseExpression:
    """``"x"``, or ``("x", "y")`` for both axes."""
    return lit(axes[0]) if len(axes) == 1 else tuple_([lit(a) for a in axes])


def _fits(t: TensorType) -> bool:
    return t.rank >= 1 and t.shape[0] % 2 == 0


def _example(draw: Draw, env: Env) -> TensorType:
    """A fresh operand whose leading dimension the smallest split divides."""
    dtype = choice(draw, [d for d in env.dtypes if d in NUMERIC] or sorted(NUMERIC))
    rank = integer(draw, 1, env.limits.max_rank)
    lead = 2 * integer(draw, 1, max(1, min(env.limits.max_dim, 8) // 2))
    return TensorType((lead, *dims(draw, rank - 1, env.limits, env.limits.max_elements // lead)),
                      dtype)


def mesh_line(name: str) -> cst.BaseStatement:
    """``name = jax.make_mesh((2, 4), ("x", "y"), axis_types=(Auto, Auto))``."""
    auto = dotted("jax.sharding.AxisType.Auto")
    return assign([name], call("jax.make_mesh", tuple_(list(MESH_SHAPE)),
                               tuple_([lit(a) for a in MESH_AXES]),
                               axis_types=tuple_([auto] * len(MESH_AXES))))


# -- shard_map ------------------------------------------------------------------------

def _signature(draw: Draw, x: TensorType, env: Env) -> Sig:
    axes = choice(draw, [s for s in SPLITS if x.shape[0] % _size(s) == 0])
    n = _size(axes)
    block = x.with_shape((x.shape[0] // n, *x.shape[1:]))
    kinds = ["none", "all_gather", "all_gather_stacked", "ppermute", "axis_index"]
    if block.shape[0] % n == 0:
        kinds += ["psum_scatter", "all_to_all"]
    kinds += [k for k in REPLICATED if k != "pmean" or x.dtype in FLOAT]
    body = RegionSpec((block,), (block,), closed=True, excluded=MESH_OPS)
    return Sig((x,), {"axes": axes, "collective": choice(draw, kinds)}, (body,))


def _rule(inputs, params, regions):
    (block,) = regions[0]
    n, kind = _size(params["axes"]), params["collective"]
    if kind in REPLICATED:
        return (block,)
    lead = block.shape[0]
    per_device = {"all_gather": (n * lead, *block.shape[1:]),
                  "all_gather_stacked": (n, lead, *block.shape[1:]),
                  "psum_scatter": (lead // n, *block.shape[1:])}.get(kind, block.shape)
    return (block.with_shape((n * per_device[0], *per_device[1:])),)


def _collective(kind: str, axes: tuple[str, ...], dtype: str,
                value: cst.BaseExpression) -> cst.BaseExpression:
    name, n = _axes(axes), _size(axes)
    if kind in REPLICATED:
        return call(f"lax.{kind}", value, name)
    if kind == "all_gather":
        return call("lax.all_gather", value, name, tiled=True)
    if kind == "all_gather_stacked":
        return call("lax.all_gather", value, name)
    if kind == "psum_scatter":
        return call("lax.psum_scatter", value, name, scatter_dimension=0, tiled=True)
    if kind == "ppermute":
        return call("lax.ppermute", value, name, perm=[(i, (i + 1) % n) for i in range(n)])
    if kind == "all_to_all":
        return call("lax.all_to_all", value, name, 0, 0, tiled=True)
    if kind == "axis_index":
        return binop(value, "+", method(call("lax.axis_index", name), "astype", DType(dtype)))
    return value


def _render(out, a, p, r):
    body, axes, kind = r[0], p["axes"], p["collective"]
    mesh = f"{out[0]}_mesh"
    spec = call("jax.P") if kind in REPLICATED else call("jax.P", _axes(axes))
    mapped = call("jax.shard_map", cst.Name(body.name), mesh=cst.Name(mesh),
                  in_specs=call("jax.P", _axes(axes)), out_specs=spec, check_vma=False)
    return [mesh_line(mesh),
            define(body, results=[_collective(kind, axes, p["dtype"], body.results[0])]),
            assign(out, cst.Call(mapped, [cst.Arg(a[0])]))]


# -- sharding: XLA partitions the program over the mesh -----------------------------------

def _sharding_signature(draw: Draw, x: TensorType, env: Env) -> Sig:
    """A split of the leading dimension, and of the second over the other axis when it
    divides it; by a sharding constraint, or by a nested jit's ``in_shardings``."""
    first = choice(draw, [s for s in SPLITS if x.shape[0] % _size(s) == 0])
    rest = tuple(a for a in MESH_AXES if a not in first)
    spec = (first,)
    if rest and x.rank >= 2 and x.shape[1] % _size(rest) == 0 and integer(draw, 0, 1):
        spec = (first, rest)
    how = choice(draw, ["constraint", "jit"])
    return Sig((x,), {"spec": spec, "how": how},
               (RegionSpec((x,), (x,)),) if how == "jit" else ())


def _sharding(out, a, p, r):
    mesh = cst.Name(f"{out[0]}_mesh")
    sharded = call("jax.NamedSharding", mesh, call("jax.P", *(_axes(s) for s in p["spec"])))
    lines = [mesh_line(mesh.value)]
    if p["how"] == "constraint":
        return lines + [assign(out, call("lax.with_sharding_constraint", a[0], sharded))]
    jitted = call("jax.jit", cst.Name(r[0].name), in_shardings=sharded,
                  out_shardings=call("jax.NamedSharding", mesh, call("jax.P")))
    return lines + [define(r[0]), assign(out, cst.Call(jitted, [cst.Arg(a[0])]))]


COLLECTIVES = ("lax.psum", "lax.pmean", "lax.pmax", "lax.pmin", "lax.all_gather",
               "lax.psum_scatter", "lax.ppermute", "lax.all_to_all", "lax.axis_index")

PARALLEL_OPS = [
    Op("shard_map", "transform", ("transform", "shard_map"), NUMERIC, (1, 4),
       recording(_signature, "dtype"), _rule, _render,
       calls=("jax.make_mesh", "jax.shard_map", "jax.P", *COLLECTIVES),
       values=("jax.sharding.AxisType.Auto",), when=_fits, example=_example),
    Op("sharding", "transform", ("transform", "sharding"), NUMERIC, (1, 4),
       _sharding_signature, lambda i, p, r: (i[0],), _sharding,
       calls=("jax.make_mesh", "jax.NamedSharding", "jax.P", "lax.with_sharding_constraint",
              "jax.jit"),
       values=("jax.sharding.AxisType.Auto",), when=_fits, example=_example),
]
