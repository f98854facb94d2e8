"""The program tree: SSA statements over typed values, with nested regions for control flow.

A deliberate import circle: ``Program.render`` and ``Program.categories`` import
``grammar.render`` and ``grammar.categories`` when first called, which import this module,
so that a program carries its text and categories while the tree itself stays plain data.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from grammar.types import Lit, TensorType


@dataclass(frozen=True, slots=True)
class Value:
    """A named SSA value of a known type."""

    name: str
    type: TensorType


@dataclass(frozen=True, slots=True)
class Const:
    """An array of ones (of zeros with ``zero``), for an operand no value in scope can
    supply; the reduction puts zeros where a failure needs a value that is exactly zero."""

    type: TensorType
    zero: bool = False


Operand = Value | Lit | Const


@dataclass(frozen=True, eq=False)
class Region:
    """A nested function (loop body, branch, transformed function): params, statements, results."""

    name: str
    params: tuple[Value, ...]
    body: tuple[Apply, ...]
    results: tuple[Value, ...]


@dataclass(frozen=True, eq=False)
class Apply:
    """One statement: ``outputs = op(inputs, **params)``, with the regions it calls."""

    op: str
    inputs: tuple[Operand, ...]
    params: Mapping[str, Any]
    outputs: tuple[Value, ...]
    regions: tuple[Region, ...] = ()


@dataclass(frozen=True)
class Group:
    """Values passed as one pytree: a dict of ``leaves`` under ``keys`` (sorted, one per
    leaf), or a tuple when ``keys`` is empty.  A parameter group is the entry's argument
    ``name``; a result group is what the entry returns."""

    name: str
    leaves: tuple[Value, ...]
    keys: tuple[str, ...] = ()

    @property
    def is_dict(self) -> bool:
        return bool(self.keys)


def walk(body: tuple[Apply, ...], depth: int = 0) -> Iterator[tuple[Apply, int]]:
    """Every statement of a body and of its nested regions, with its nesting depth."""
    for stmt in body:
        yield stmt, depth
        for region in stmt.regions:
            yield from walk(region.body, depth + 1)


def reads(body: tuple[Apply, ...], names: set[str]) -> set[str]:
    """``names`` with the names of the values ``body`` reads added, its regions' included (a
    region that is not closed reads values of the scope around it, and returns its
    results)."""
    for stmt in body:
        names.update(v.name for v in stmt.inputs if isinstance(v, Value))
        for region in stmt.regions:
            names.update(v.name for v in region.results)
            reads(region.body, names)
    return names


@dataclass(frozen=True, eq=False)
class Program:
    """A complete generated program: one entry function and what it covers."""

    entry: str
    params: tuple[Value, ...]
    body: tuple[Apply, ...]
    results: tuple[Value, ...]
    expected_failures: tuple[str, ...] = field(default=())
    signature: tuple[Value | Group, ...] = ()
    """The entry's arguments when some are pytrees (``()``: ``params``, one array each)."""
    returns: Group | None = None
    """The entry's result when it is a dict (``None``: the tuple of ``results``)."""
    batch: int = 0
    """When positive, the body is a per-example function that the entry maps with
    ``jax.vmap`` over a leading axis of this size of every argument but a dict of parameters
    (shared by the examples); the program is then exported over a symbolic batch size."""
    style: str = "ssa"
    """The source style ``source`` is rendered in (``grammar.STYLES``)."""
    inline_depth: int = 2
    """The deepest nesting that an inlining style makes."""

    @cached_property
    def source(self) -> str:
        """The complete module text, imports included, ready for ``exec``, in ``style``."""
        return self.render()

    def render(self, style: str | None = None) -> str:
        """The module text in ``style`` (a name from ``grammar.STYLES``; default: the
        program's own); every style traces to the same IR."""
        from grammar.render import render

        return render(self, style)

    @cached_property
    def variant_group(self) -> str:
        """The first 16 hex digits of sha256 of the tree's SSA text: the same for every
        style of one program."""
        import hashlib

        return hashlib.sha256(self.render("ssa").encode()).hexdigest()[:16]

    @property
    def arguments(self) -> tuple[Value | Group, ...]:
        """The entry's arguments: ``signature``, or one array per parameter."""
        return self.signature or self.params

    def is_batched(self, arg: Value | Group) -> bool:
        """Whether the entry maps over a leading batch axis of argument ``arg``."""
        return self.batch > 0 and not (isinstance(arg, Group) and arg.is_dict)

    @property
    def args(self) -> list:
        """The entry's arguments as ``(shape, dtype)`` pairs; a dict argument as a dict of
        them, a tuple argument as a list (``extract.args`` reads this encoding)."""
        def spec(v: Value, batched: bool) -> tuple[tuple[int, ...], str]:
            return ((self.batch,) if batched else ()) + v.type.shape, v.type.dtype

        return [spec(p, self.is_batched(p)) if isinstance(p, Value) else
                {k: spec(v, False) for k, v in zip(p.keys, p.leaves, strict=True)} if p.is_dict
                else [spec(v, self.is_batched(p)) for v in p.leaves]
                for p in self.arguments]

    @property
    def polymorphic_shapes(self) -> list[str] | None:
        """For a batched program, each argument leaf's shape in ``jax.export``'s notation
        (in ``jax.tree.leaves`` order), the batch axis as the symbol ``b``: ``"b, 4, 3"``;
        ``None`` otherwise."""
        if not self.batch:
            return None
        return [", ".join((["b"] if self.is_batched(p) else []) + [str(d) for d in v.type.shape])
                for p in self.arguments
                for v in ((p,) if isinstance(p, Value) else p.leaves)]

    @cached_property
    def ops(self) -> tuple[str, ...]:
        """The names of the ops the program uses, sorted."""
        return tuple(sorted({stmt.op for stmt, _ in walk(self.body)}))

    @cached_property
    def categories(self) -> tuple[str, ...]:
        """The categories the program covers, sorted."""
        from grammar.categories import categories_of

        return categories_of(self)

    @property
    def statement_count(self) -> int:
        return sum(1 for _ in walk(self.body))

    @property
    def is_pytree(self) -> bool:
        """Whether an argument or the result is a dict or a tuple of arrays."""
        return bool(self.signature) or self.returns is not None

    def __repr__(self) -> str:
        return f"Program(ops={list(self.ops)}, args={self.args})\n{self.source}"

