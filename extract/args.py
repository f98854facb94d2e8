"""Validation of argument specs: one node per positional argument.

A node is a leaf ``(shape, dtype)`` (in JSON ``[[8, 4], "float32"]``: a pair whose second
item is a string), a tuple of nodes (a JSON list that is not a leaf) or a dict of nodes with
string keys (a JSON object).  A flat program's args are leaves only, as before pytrees.
``flatten_args`` lists the leaves in JAX's order (dict keys sorted, as ``jax.tree`` does);
inputs are made per leaf, and ``unflatten_args`` builds the call's arguments back.

Pure (NumPy and ml_dtypes only, no JAX), so the pool's parent process can validate a task
at ``submit`` time and fail loudly there instead of inside a worker.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from numbers import Integral
from typing import Any

import ml_dtypes  # noqa: F401  (registers bfloat16, float8_*, int4 ... with NumPy)
import numpy as np

ArgSpec = tuple[tuple[int, ...], str]

DTYPES: tuple[str, ...] = ("bool", "int8", "int16", "int32", "int64", "uint8", "uint16",
                           "uint32", "uint64", "float16", "bfloat16", "float32", "float64",
                           "complex64", "complex128")
"""The argument dtypes jaxsmith accepts: those with an input recipe (``extract.inputs``)."""
X64_DTYPES = frozenset({"int64", "uint64", "float64", "complex128"})
"""Argument dtypes that exist only under ``jax_enable_x64``: a program that takes one is
extracted, replayed and reproduced with it on (without it JAX would make them 32-bit)."""
MAX_RANK = 8
MAX_TREE_DEPTH = 4
"""Deepest nesting of tuples and dicts in one argument."""
MAX_LEAVES = 256
"""Most leaves over all arguments."""
MAX_ELEMENTS = 2**24
"""The largest argument accepted (64 MiB of float32); generated programs stay under 2**16."""


def is_leaf(node: object) -> bool:
    """Whether an args node is a ``(shape, dtype)`` leaf: a pair whose second item is a
    string (a tuple node's items are nodes, never strings)."""
    return (isinstance(node, Sequence) and not isinstance(node, (str, bytes))
            and len(node) == 2 and isinstance(node[1], str))


def normalize_args(args: Sequence) -> tuple:
    """Return ``args`` with each leaf as a ``(shape tuple, canonical dtype name)`` pair,
    tuples as tuples and dicts with sorted keys.

    Raises ``ValueError`` / ``TypeError`` naming the offending position and value, for a
    dtype outside ``DTYPES``, a shape beyond ``MAX_RANK`` or ``MAX_ELEMENTS``, a node that
    is none of the three kinds, nesting deeper than ``MAX_TREE_DEPTH`` or more than
    ``MAX_LEAVES`` leaves.
    """
    if isinstance(args, (str, bytes)) or not isinstance(args, Sequence):
        raise TypeError(f"args={args!r:.80} must be a list of (shape, dtype) pairs (or "
                        "tuples and dicts of them)")
    count = [0]
    return tuple(_node(arg, f"args[{i}]", 1, count) for i, arg in enumerate(args))


def _node(node: object, where: str, depth: int, count: list[int]):
    if is_leaf(node):
        count[0] += 1
        if count[0] > MAX_LEAVES:
            raise ValueError(f"args hold more than {MAX_LEAVES} arrays")
        return _leaf(node, where)
    if depth > MAX_TREE_DEPTH:
        raise ValueError(f"{where} nests tuples and dicts deeper than {MAX_TREE_DEPTH}")
    if isinstance(node, Sequence) and node and all(isinstance(d, Integral) for d in node):
        raise ValueError(f"{where}={list(node)!r:.60} is a shape alone: an argument is a "
                         f"[shape, dtype] pair such as [{list(node)!r:.40}, \"float32\"]")
    if isinstance(node, Mapping):
        if not all(isinstance(k, str) for k in node):
            raise ValueError(f"{where} is a dict with a key that is not a string")
        return {k: _node(node[k], f"{where}[{k!r:.20}]", depth + 1, count)
                for k in sorted(node)}
    if isinstance(node, Sequence) and not isinstance(node, (str, bytes)) and (
            len(node) != 2 or not isinstance(node[0], Sequence)
            or isinstance(node[0], (str, bytes)) or not all(
                isinstance(d, Integral) for d in node[0])):
        return tuple(_node(x, f"{where}[{i}]", depth + 1, count) for i, x in enumerate(node))
    raise ValueError(f"{where}={node!r:.80} must be a (shape, dtype) pair, a tuple or a dict")


def flatten_args(args: Sequence) -> tuple[ArgSpec, ...]:
    """The leaves of ``args`` (normalized), in the order ``jax.tree.leaves`` gives them."""
    return leaves_of(normalize_args(args))


def leaves_of(tree: Sequence) -> tuple[ArgSpec, ...]:
    """``flatten_args`` of args ``normalize_args`` already returned (not checked again)."""
    out: list[ArgSpec] = []

    def visit(node):
        if is_leaf(node):
            out.append(node)
        else:
            for child in (node.values() if isinstance(node, Mapping) else node):
                visit(child)

    for arg in tree:
        visit(arg)
    return tuple(out)


def unflatten_args(args: Sequence, leaves: Sequence) -> list:
    """The call's arguments: ``args``' structure with its leaves replaced, in order, by
    ``leaves`` (arrays, say); tuples stay tuples and dicts dicts."""
    items = iter(leaves)

    def build(node):
        if is_leaf(node):
            return next(items)
        if isinstance(node, Mapping):
            return {k: build(node[k]) for k in sorted(node)}
        return tuple(build(child) for child in node)

    return [build(arg) for arg in args]


def is_flat(args: Sequence) -> bool:
    """Whether every argument is a leaf (the entry takes arrays only)."""
    return all(is_leaf(a) for a in args)


def args_json(args: Sequence) -> list:
    """``args`` as JSON values: leaves ``[[dims], dtype]``, tuples lists, dicts objects."""
    def convert(node):
        if is_leaf(node):
            return [list(node[0]), node[1]]
        if isinstance(node, Mapping):
            return {k: convert(node[k]) for k in sorted(node)}
        return [convert(child) for child in node]

    return [convert(a) for a in args]


_SYMBOL = re.compile(r"[a-z_][a-z0-9_]{0,15}")
MAX_SHAPE_CHARS = 200


def check_polymorphic_shapes(leaves: Sequence[ArgSpec], shapes: object) -> tuple[str, ...]:
    """``shapes``, one ``jax.export`` shape string per leaf of the normalized ``leaves`` (in
    their order), checked and normalized (``"b, 4"``).

    Each dimension is the leaf's own size or a symbol (a lowercase identifier) that stands
    for the same size wherever it appears, so the leaves are one instance of the shapes.
    Raises ``ValueError`` / ``TypeError`` naming the offending leaf and value.
    """
    if isinstance(shapes, (str, bytes)) or not isinstance(shapes, Sequence):
        raise TypeError(f"polymorphic_shapes={shapes!r:.80} must be a list of strings, one "
                        "per argument leaf")
    if len(shapes) != len(leaves):
        raise ValueError(f"polymorphic_shapes has {len(shapes)} entries, but args have "
                         f"{len(leaves)} leaves")
    sizes: dict[str, int] = {}
    out = []
    for i, (text, (shape, _)) in enumerate(zip(shapes, leaves, strict=True)):
        where = f"polymorphic_shapes[{i}]={text!r:.60}"
        if not isinstance(text, str) or len(text) > MAX_SHAPE_CHARS:
            raise ValueError(f"{where} must be a string of at most {MAX_SHAPE_CHARS} characters")
        dims = [d.strip() for d in text.split(",")] if text.strip() else []
        if len(dims) != len(shape):
            raise ValueError(f"{where} has {len(dims)} dimensions; the argument has shape "
                             f"{shape}")
        for d, size in zip(dims, shape, strict=True):
            if d.isdigit() and int(d) == size:
                continue
            if not _SYMBOL.fullmatch(d):
                raise ValueError(f"{where}: dimension {d!r:.20} is neither the argument's "
                                 f"size {size} nor a symbol (a lowercase identifier)")
            if sizes.setdefault(d, size) != size:
                raise ValueError(f"{where}: symbol {d!r} stands for {sizes[d]} elsewhere and "
                                 f"for {size} here")
        out.append(", ".join(dims))
    return tuple(out)


def _leaf(spec: Sequence, where: str) -> ArgSpec:
    shape, dtype = spec
    if isinstance(shape, (str, bytes)) or not isinstance(shape, Sequence):
        raise ValueError(f"{where} shape={shape!r:.80} must be a tuple or list of ints")
    dims = []
    for d in shape:
        if isinstance(d, bool) or not isinstance(d, Integral) or d < 0:
            raise ValueError(f"{where} shape={shape!r:.80} has an invalid dimension {d!r:.20}")
        dims.append(int(d))
    if len(dims) > MAX_RANK or math.prod(dims) > MAX_ELEMENTS:
        raise ValueError(f"{where} shape={shape!r:.80} is too large: at most {MAX_RANK} "
                         f"dimensions and {MAX_ELEMENTS} elements")
    try:
        name = np.dtype(dtype).name
    except (TypeError, ValueError, SyntaxError) as exc:
        raise ValueError(f"{where} dtype={dtype!r:.40} is not a NumPy dtype name; "
                         f"accepted: {', '.join(DTYPES)}") from exc
    if name not in DTYPES:
        raise ValueError(f"{where} dtype={dtype!r:.40} is not supported; accepted: "
                         f"{', '.join(DTYPES)}")
    return (tuple(dims), name)


def needs_x64(specs: Sequence[tuple[Any, str]]) -> bool:
    """Whether a program over the ``(shape, dtype)`` argument leaves ``specs`` runs under
    ``jax_enable_x64``: one of them is 64-bit (:data:`X64_DTYPES`)."""
    return any(str(dtype) in X64_DTYPES for _, dtype in specs)
