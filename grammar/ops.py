"""The op table: every op the grammar knows, one record each, by name."""

from __future__ import annotations

from types import MappingProxyType

from grammar.opdef import Op
from grammar.ops_control import CONTROL
from grammar.ops_elementwise import BINARY, SELECT, UNARY
from grammar.ops_linalg import LINALG
from grammar.ops_nn import NN_OPS
from grammar.ops_reduce import CUMULATIVE, REDUCTIONS
from grammar.ops_shape import SHAPES


def _table(*groups: list[Op]) -> MappingProxyType:
    table: dict[str, Op] = {}
    for op in (op for group in groups for op in group):
        if op.name in table:
            raise ValueError(f"op {op.name!r} is declared twice")
        table[op.name] = op
    return MappingProxyType(table)


OPS = _table(UNARY, BINARY, SELECT, REDUCTIONS, CUMULATIVE, LINALG, SHAPES, NN_OPS, CONTROL)
"""Every op by name, in declaration order."""

FAMILIES: tuple[str, ...] = tuple(dict.fromkeys(op.family for op in OPS.values()))

MODULE_ALIASES = {"jax": "jax", "jnp": "jax.numpy", "lax": "jax.lax"}
"""The names a rendered module imports, and what they refer to."""

ALLOWED_CALLS: frozenset[str] = frozenset(
    {call for op in OPS.values() for call in op.calls}
    | {"jnp.abs", "jnp.clip", "jnp.ones", "jnp.sum", "jnp.array"})
"""Every dotted JAX function a rendered program may call (op templates, guards, constants)."""

ALLOWED_METHODS: frozenset[str] = frozenset({"astype", "reshape", "at", "set", "add",
                                             "multiply", "min", "max"})
"""Attribute names a rendered program may use on its own values."""
