"""Rendering a program tree to Python source with libcst."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import MappingProxyType

import libcst as cst

from grammar.opdef import Domain, RegionCode
from grammar.ops import OPS, OPTIONAL_IMPORTS
from grammar.program import Apply, Const, Group, Operand, Program, Region, Value
from grammar.styles import STYLES, apply_style
from grammar.syntax import (
    DType,
    assign,
    binop,
    call,
    dict_,
    funcdef,
    lit,
    return_,
    string,
    subscript,
)
from grammar.types import INTEGERS

_IMPORTS = cst.parse_module("import jax\nimport jax.numpy as jnp\nfrom jax import lax\n").body


def _dtype(name: str) -> DType:
    return DType("bool_" if name == "bool" else name)


Aliases = Mapping[str, cst.BaseExpression]
"""How values are read that are not plain names: a dict argument's leaf is ``params["w"]``."""
NO_ALIASES: Aliases = MappingProxyType({})


def name(v: Value, aliases: Aliases) -> cst.BaseExpression:
    return aliases.get(v.name) or cst.Name(v.name)


def operand(x: Operand, domain: Domain = Domain.ANY,
            aliases: Aliases = NO_ALIASES) -> cst.BaseExpression:
    """An operand as an expression, guarded into ``domain`` when it is an array."""
    if isinstance(x, Value):
        node: cst.BaseExpression = name(x, aliases)
        dtype = x.type.dtype
    elif isinstance(x, Const):
        node = call("jnp.zeros" if x.zero else "jnp.ones", x.type.shape,
                    dtype=_dtype(x.type.dtype))
        dtype = x.type.dtype
    else:
        return lit(x.value)
    one = 1 if dtype in INTEGERS else 1.0
    if domain in (Domain.POSITIVE, Domain.NONZERO):
        return binop(call("jnp.abs", node), "+", one)
    if domain is Domain.UNIT:
        return call("jnp.clip", node, -0.9, 0.9)
    if domain is Domain.ABOVE_ONE:
        return binop(call("jnp.abs", node), "+", 1.5)
    if domain is Domain.PROBABILITY:
        return call("jax.nn.sigmoid", node)
    if domain in (Domain.WELL_CONDITIONED, Domain.SPD):
        # tanh keeps every entry in (-1, 1), so a diagonal of 2n dominates each row strictly:
        # nonsingular with a condition number below 3; symmetric as well, it is positive
        # definite.
        n = x.type.shape[-1]
        if domain is Domain.SPD:
            node = binop(node, "+", call("jnp.swapaxes", node, -1, -2))
        return binop(call("jnp.tanh", node), "+", binop(2.0 * n, "*", call("jnp.eye", n)))
    return node


def statements(body: Sequence[Apply], aliases: Aliases = NO_ALIASES) -> list[cst.BaseStatement]:
    """The statements of a body, regions defined just before the statement that calls them."""
    lines: list[cst.BaseStatement] = []
    for stmt in body:
        op = OPS[stmt.op]
        args = [operand(x, op.domain_of(i), aliases) for i, x in enumerate(stmt.inputs)]
        regions = [region_code(r, aliases) for r in stmt.regions]
        lines.extend(op.render([v.name for v in stmt.outputs], args, stmt.params, regions))
    return lines


def region_code(region: Region, aliases: Aliases = NO_ALIASES) -> RegionCode:
    return RegionCode(region.name, tuple(p.name for p in region.params),
                      tuple(statements(region.body, aliases)),
                      tuple(name(v, aliases) for v in region.results))


EXAMPLE = "example"
"""The name of a batched program's per-example function, nested in the entry."""


def _batched(program: Program, fn: cst.FunctionDef) -> list[cst.BaseStatement]:
    """The entry's body for a batched program: ``fn`` (the per-example function), mapped
    with ``jax.vmap`` over the batch axis of every argument but a dict of parameters."""
    names = [p.name for p in program.arguments]
    axes = [0 if program.is_batched(p) else None for p in program.arguments]
    kwargs = {} if all(a == 0 for a in axes) else {"in_axes": tuple(axes)}
    mapped = cst.Call(call("jax.vmap", cst.Name(EXAMPLE), **kwargs),
                      [cst.Arg(cst.Name(n)) for n in names])
    return [fn.with_changes(name=cst.Name(EXAMPLE)),
            cst.SimpleStatementLine([cst.Return(mapped)])]


def to_module(program: Program) -> cst.Module:
    """The libcst module of ``program``: the imports and the entry function.  A dict
    argument's leaves are read where they are used (``params["w"]``), a tuple argument is
    unpacked first (``x1, x2 = batch``), a dict result is returned as a dict literal.  A
    batched program's body is the per-example function ``example``, nested in the entry,
    which maps it with ``jax.vmap``."""
    aliases = {v.name: subscript(cst.Name(g.name), [string(k)])
               for g in program.signature if isinstance(g, Group) and g.is_dict
               for k, v in zip(g.keys, g.leaves, strict=True)}
    body: list[cst.BaseStatement] = [
        assign([v.name for v in g.leaves], cst.Name(g.name)) for g in program.signature
        if isinstance(g, Group) and not g.is_dict]
    body += statements(program.body, aliases)
    results = [name(v, aliases) for v in program.results]
    returns = program.returns
    body.append(return_([dict_(returns.keys, results)] if returns else results))
    fn = funcdef(program.entry, [p.name for p in program.arguments], body)
    if program.batch:
        fn = fn.with_changes(body=cst.IndentedBlock(_batched(program, fn)))
    blank = [cst.EmptyLine(), cst.EmptyLine()]
    needed = {line for op in program.ops for line in OPS[op].imports}
    extra = [cst.parse_statement(line + "\n") for line in OPTIONAL_IMPORTS if line in needed]
    return cst.Module(body=[*_IMPORTS, *extra, fn.with_changes(leading_lines=blank)])


def render(program: Program, style: str | None = None) -> str:
    """The complete module text of ``program`` in ``style`` (default: ``program.style``);
    the same tree always gives the same text."""
    style = program.style if style is None else style
    if style not in STYLES:
        raise ValueError(f"style={style!r} is not one of {', '.join(STYLES)}")
    return apply_style(to_module(program), program, style, program.inline_depth)
