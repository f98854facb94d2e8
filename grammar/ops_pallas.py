"""Pallas kernels, run in interpret mode (``pl.pallas_call(..., interpret=True)``), which
works on CPU and lowers to a ``while`` over the grid with ``dynamic_slice`` and
``dynamic_update_slice`` of each block.  Real JAX code spends 4 % of its calls on Pallas
(``fuzz api-coverage``).

The operand's leading dimension is cut into blocks of a divisor of it; a grid of
``pl.cdiv(n, block)`` programs each sees one block through ``pl.BlockSpec`` refs, and the
kernel applies a region of the grammar (closed: it sees only its block) to it:

* ``map``: ``o_ref[...] = jax.jit(body)(x_ref[...])``, block by block, the result the
  operand's type (the nested jit keeps the body's constants out of the kernel, see
  ``_body``);
* ``program_id``: the same plus ``pl.program_id(0)``;
* ``accumulate``: one output block for every program, zeroed by the first
  (``@pl.when(pl.program_id(0) == 0)``), each program adding ``body`` of its block, which
  it reads as ``x_ref[pl.ds(0, block)]``.

JAX differentiates no ``pallas_call`` in interpret mode, and a symbolic batch size would
make the grid symbolic, so the op is neither differentiable nor ``batchable``.  The
``pallas`` oracle (``extract.pallas_reference``) runs the same kernel over plain ``jnp``
blocks in a Python loop and compares.
"""

from __future__ import annotations

import libcst as cst

from grammar.opdef import Draw, Env, Op, RegionSpec, Sig, choice
from grammar.ops_control import define
from grammar.ops_parallel import MESH_OPS
from grammar.syntax import (
    DType,
    assign,
    binop,
    call,
    funcdef,
    method,
    return_,
    subscript,
    tuple_,
)
from grammar.types import FLOAT, TensorType

PALLAS_IMPORT = "from jax.experimental import pallas as pl"
KINDS = ("map", "program_id", "accumulate")


def _signature(draw: Draw, x: TensorType, env: Env) -> Sig:
    n = x.shape[0]
    blocks = [b for b in range(1, n + 1) if n % b == 0 and b < n] or [n]
    block = choice(draw, blocks)
    kind = choice(draw, KINDS)
    body_type = x.with_shape((block, *x.shape[1:]))
    body = RegionSpec((body_type,), (body_type,), closed=True,
                      excluded=MESH_OPS | {"pallas_call"})
    return Sig((x,), {"block": block, "kind": kind, "dtype": x.dtype, "shape": x.shape},
               (body,))


def _rule(inputs, params, regions):
    x = inputs[0]
    if params["kind"] == "accumulate":
        return (x.with_shape((params["block"], *x.shape[1:])),)
    return (x,)


def _ref(name: str, index: cst.BaseExpression | None = None) -> cst.Subscript:
    return subscript(cst.Name(name), [cst.Ellipsis() if index is None else index])


def _body(name: str, block: cst.BaseExpression) -> cst.Call:
    """``jax.jit(body)(block)``: a kernel may not capture an array constant ("The kernel
    function in the pallas_call ... captures constants"), which a body's ops make (an index
    array, the coefficients of ``ndtri``); under a nested jit they stay inside it."""
    return cst.Call(call("jax.jit", cst.Name(name)), [cst.Arg(block)])


def _render(out, a, p, r):
    body, kind, block, shape = r[0], p["kind"], p["block"], p["shape"]
    stem = out[0]
    rest = [0] * (len(shape) - 1)
    program = call("pl.program_id", 0)
    if kind == "accumulate":
        zeros = call("jnp.zeros", cst.Attribute(cst.Name("o_ref"), cst.Name("shape")),
                     cst.Attribute(cst.Name("o_ref"), cst.Name("dtype")))
        init = funcdef(f"{stem}_init", [], [_store(zeros)]).with_changes(
            decorators=[cst.Decorator(call("pl.when", binop(program, "==", 0)))])
        read = _ref("x_ref", call("pl.ds", 0, block))
        kernel_body = [init, _store(binop(_ref("o_ref"), "+", _body(body.name, read)))]
    else:
        value = _body(body.name, _ref("x_ref"))
        if kind == "program_id":
            value = binop(value, "+", method(program, "astype", DType(p["dtype"])))
        kernel_body = [_store(value)]
    kernel = funcdef(f"{stem}_kernel", ["x_ref", "o_ref"], kernel_body)
    index = funcdef(f"{stem}_index", ["i"], [return_([tuple_([cst.Name("i"), *rest])])])
    out_index = index
    out_shape = shape
    if kind == "accumulate":
        out_index = funcdef(f"{stem}_total", ["i"], [return_([tuple_([0, *rest])])])
        out_shape = (block, *shape[1:])
    block_shape = (block, *shape[1:])
    pallas = call("pl.pallas_call", cst.Name(kernel.name.value),
                  out_shape=call("jax.ShapeDtypeStruct", out_shape, DType(p["dtype"])),
                  grid=tuple_([call("pl.cdiv", shape[0], block)]),
                  in_specs=[call("pl.BlockSpec", block_shape, cst.Name(index.name.value))],
                  out_specs=call("pl.BlockSpec", block_shape, cst.Name(out_index.name.value)),
                  interpret=True)
    defs = [define(body), kernel, index] + ([out_index] if out_index is not index else [])
    return defs + [assign(out, cst.Call(pallas, [cst.Arg(a[0])]))]


def _store(value: cst.BaseExpression) -> cst.SimpleStatementLine:
    """``o_ref[...] = value``."""
    return cst.SimpleStatementLine([cst.Assign([cst.AssignTarget(_ref("o_ref"))], value)])


PALLAS_OPS = [
    Op("pallas_call", "transform", ("transform", "pallas"), FLOAT, (1, 3), _signature, _rule,
       _render, calls=("pl.pallas_call", "pl.BlockSpec", "pl.program_id", "pl.when", "pl.ds",
                       "pl.cdiv", "jax.ShapeDtypeStruct", "jnp.zeros", "jax.jit"),
       differentiable=False, forward=False, batchable=False, imports=(PALLAS_IMPORT,),
       when=lambda t: t.shape[0] >= 2),
]
