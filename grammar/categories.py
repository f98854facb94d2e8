"""Program categories: those an op declares, and the structural ones read off the tree."""

from __future__ import annotations

from typing import TYPE_CHECKING

from grammar.ops import OPS
from grammar.program import walk
from grammar.types import Lit

if TYPE_CHECKING:
    from grammar.program import Program

STRUCTURAL: dict[str, str] = {
    "multi_statement": "two or more statements",
    "compound": "three or more statements drawing on two or more op families",
    "nested_branch": "a cond or switch inside a branch of another",
    "vector": "a rank-1 parameter",
    "scalar_array": "a binary op between an array and a Python scalar literal",
    "symbolic_shape": "the entry maps a per-example function over a batch (jax.vmap), and "
                      "the program is exported over a symbolic batch size",
}
"""Categories that come from the program's shape rather than from one op."""

OP_CATEGORIES: frozenset[str] = frozenset(c for op in OPS.values() for c in op.categories)
CATEGORIES: tuple[str, ...] = tuple(sorted(OP_CATEGORIES | set(STRUCTURAL)))

_BRANCHES = frozenset(name for name, op in OPS.items() if "branch" in op.categories)


def _nested_branch(body, inside: bool = False) -> bool:
    for stmt in body:
        is_branch = stmt.op in _BRANCHES
        if is_branch and inside:
            return True
        if any(_nested_branch(r.body, inside or is_branch) for r in stmt.regions):
            return True
    return False


def categories_of(program: Program) -> tuple[str, ...]:
    """Every category ``program`` covers, sorted."""
    stmts = [s for s, _ in walk(program.body)]
    found = {c for s in stmts for c in OPS[s.op].categories}
    families = {OPS[s.op].family for s in stmts}
    if len(stmts) >= 2:
        found.add("multi_statement")
    if len(stmts) >= 3 and len(families) >= 2:
        found.add("compound")
    if _nested_branch(program.body):
        found.add("nested_branch")
    if any(p.type.rank == 1 for p in program.params):
        found.add("vector")
    if program.is_pytree:  # besides the pytree ops: a dict or tuple argument, a dict result
        found.add("pytree")
    if program.batch:
        found.add("symbolic_shape")
    if any(OPS[s.op].family == "binary" and any(isinstance(i, Lit) for i in s.inputs)
           for s in stmts):
        found.add("scalar_array")
    return tuple(sorted(found))
