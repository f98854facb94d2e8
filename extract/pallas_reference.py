"""What a Pallas kernel computes, written in ``jnp``: the ``pallas`` oracle's reference.

A program's module refers to Pallas as ``pl``; the oracle runs it again with ``pl`` bound to
this module, so that every ``pl.pallas_call`` runs the kernel in a Python loop over the grid
(row-major, as Pallas iterates) on plain ``jnp`` blocks instead of Pallas' interpreter: each
``BlockSpec`` cuts the block its index map names out of the operand, the kernel reads and
writes it through a :class:`Ref`, and the output blocks are written back.  Outputs start as
Pallas' interpreter starts them (NaN for floats, zero otherwise), so a block no program
writes reads the same on both sides.  Only what Pallas promises is modelled; refs, ``ds``,
``when``, ``program_id``, ``num_programs`` and ``cdiv`` are enough for the grammar's kernels.
Pure JAX and NumPy: a reproducer embeds this module's source.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["MAX_GRID_STEPS", "BlockSpec", "GridTooLarge", "cdiv", "ds", "num_programs",
           "pallas_call", "program_id", "when"]

MAX_GRID_STEPS = 256
"""The most grid steps a kernel may have here: the loop runs while jit traces, so each step
adds the kernel's ops to the module again (a 4,101-step kernel took the oracle past the
worker's 60 s timeout in a 15-minute run: at least 15 ms a step)."""


class GridTooLarge(Exception):
    """A kernel's grid has more than :data:`MAX_GRID_STEPS` steps."""

_GRID: list[tuple[tuple[int, ...], tuple[int, ...]]] = []  # (ids, grid) of running kernels


class Slice:
    """``ds(start, size)``: ``size`` elements from ``start``."""

    def __init__(self, start: int, size: int):
        self.start, self.size = start, size


def ds(start: int, size: int) -> Slice:
    return Slice(start, size)


def _index(idx: Any) -> Any:
    if isinstance(idx, Slice):
        return slice(idx.start, idx.start + idx.size)
    if isinstance(idx, tuple):
        return tuple(_index(i) for i in idx)
    return idx


class Ref:
    """A mutable block: reads and writes go to the array it holds."""

    def __init__(self, value: jax.Array):
        self.value = value

    shape = property(lambda self: self.value.shape)
    dtype = property(lambda self: self.value.dtype)
    ndim = property(lambda self: self.value.ndim)

    def __getitem__(self, idx: Any) -> jax.Array:
        return self.value[_index(idx)]

    def __setitem__(self, idx: Any, value: Any) -> None:
        self.value = self.value.at[_index(idx)].set(jnp.asarray(value, self.value.dtype))


class BlockSpec:
    """The block of shape ``block_shape`` at block index ``index_map(*program ids)``."""

    def __init__(self, block_shape: Sequence[int] | None = None,
                 index_map: Callable[..., Any] | None = None):
        self.block_shape, self.index_map = block_shape, index_map

    def window(self, shape: tuple[int, ...], ids: tuple[int, ...]) -> tuple[slice, ...]:
        if self.block_shape is None:
            return tuple(slice(None) for _ in shape)
        blocks = self.index_map(*ids) if self.index_map else (0,) * len(shape)
        blocks = blocks if isinstance(blocks, tuple) else (blocks,)
        return tuple(slice(int(b) * s, int(b) * s + s)
                     for b, s in zip(blocks, self.block_shape, strict=True))


def cdiv(a: int, b: int) -> int:
    return -(-a // b)


def program_id(axis: int) -> np.int32:
    """A NumPy scalar: concrete under ``jax.jit``, so that ``when`` can test it."""
    return np.int32(_GRID[-1][0][axis])


def num_programs(axis: int) -> int:
    return _GRID[-1][1][axis]


def when(condition: Any) -> Callable[[Callable[[], None]], Callable[[], None]]:
    """Run the decorated function now when ``condition`` holds (program ids are concrete)."""
    def decorate(fn: Callable[[], None]) -> Callable[[], None]:
        if bool(condition):
            fn()
        return fn
    return decorate


def _listed(x: Any) -> tuple[list, bool]:
    return (list(x), True) if isinstance(x, tuple | list) else ([x], False)


def pallas_call(kernel: Callable, out_shape: Any, *, grid: Any = (), in_specs: Any = None,
                out_specs: Any = None, **_: Any) -> Callable:
    grid = tuple(grid) if isinstance(grid, tuple | list) else (grid,)
    if (steps := int(np.prod(grid, dtype=np.int64))) > MAX_GRID_STEPS:
        raise GridTooLarge(f"a grid of {steps} steps (the reference unrolls it while jit "
                           f"traces; at most {MAX_GRID_STEPS})")
    shapes, several = _listed(out_shape)
    out_blocks = _listed(out_specs)[0] if out_specs is not None else [BlockSpec()] * len(shapes)

    def run(*args: jax.Array) -> Any:
        in_blocks = list(in_specs) if in_specs is not None else [BlockSpec()] * len(args)
        outs = [jnp.full(s.shape, jnp.nan if jnp.issubdtype(s.dtype, jnp.inexact) else 0,
                         s.dtype) for s in shapes]
        for ids in itertools.product(*(range(g) for g in grid)):
            ins = [Ref(a[spec.window(a.shape, ids)]) for a, spec in zip(args, in_blocks,
                                                                       strict=True)]
            windows = [spec.window(o.shape, ids) for o, spec in zip(outs, out_blocks,
                                                                     strict=True)]
            refs = [Ref(o[w]) for o, w in zip(outs, windows, strict=True)]
            _GRID.append((ids, grid))
            try:
                kernel(*ins, *refs)
            finally:
                _GRID.pop()
            outs = [o.at[w].set(r.value) for o, w, r in zip(outs, windows, refs, strict=True)]
        return tuple(outs) if several else outs[0]

    return run
