"""Abstract values of the grammar: tensor types, scalar literals and size limits."""

from __future__ import annotations

from dataclasses import dataclass
from math import prod

FLOAT = frozenset({"float32", "bfloat16", "float16"})
INT = frozenset({"int32"})
BOOL = frozenset({"bool"})
COMPLEX = frozenset({"complex64"})
"""Complex values: only the ops that declare them take them (``grammar.ops_fft``)."""
NUMERIC = FLOAT | INT
ANY = NUMERIC | BOOL
ALL_DTYPES: tuple[str, ...] = ("float32", "int32", "bool", "bfloat16", "float16", "complex64")
WIDE = {"float64": "float32", "int64": "int32"}
"""The 64-bit dtypes of a 64-bit program (``programs(x64=...)``, under ``jax_enable_x64``),
each with the 32-bit dtype whose ops take it (``grammar.ops``)."""
X64_PARAM_DTYPES: tuple[str, ...] = ("float64", "int64", "bool")
"""A 64-bit program's parameter dtypes."""
INTEGERS = INT | frozenset({"int64"})
"""Every integer dtype a program's values take (a literal for them is an ``int``)."""
FLOATS = FLOAT | frozenset({"float64"})
"""Every floating dtype a program's real values take."""


@dataclass(frozen=True, slots=True)
class TensorType:
    """The abstract type of an array: a static shape and a NumPy dtype name."""

    shape: tuple[int, ...]
    dtype: str

    @property
    def rank(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return prod(self.shape)

    @property
    def is_float(self) -> bool:
        return self.dtype in FLOATS

    def with_shape(self, shape: tuple[int, ...]) -> TensorType:
        return TensorType(tuple(shape), self.dtype)

    def with_dtype(self, dtype: str) -> TensorType:
        return TensorType(self.shape, dtype)


@dataclass(frozen=True, slots=True)
class Lit:
    """A Python scalar literal operand; JAX types it weakly, so it takes the array's dtype."""

    value: bool | int | float
    dtype: str


@dataclass(frozen=True, slots=True)
class Limits:
    """Size bounds that keep every array, and so every compile, small."""

    max_rank: int = 4
    max_dim: int = 8
    max_elements: int = 4096


MAX_LIMITS = Limits(max_rank=4, max_dim=64, max_elements=2**16)
"""The largest ``Limits`` that ``programs`` accepts."""

LARGE_MIN_ELEMENTS, LARGE_ELEMENTS = 2**15, 2**20
"""A large-shape program's (``programs(large_shapes=...)``) first argument holds this many
elements, where size thresholds in compilers sit (jax#39103: a vmapped matvec wrong past
16,384 rows)."""
LARGE_LIMITS = Limits(max_rank=2, max_dim=8, max_elements=8 * LARGE_ELEMENTS)
"""The limits the rest of a large-shape program is drawn under: its other fresh dimensions
stay small (an op's partner shape takes a dimension of the large operand and adds one of at
most 8), so no array exceeds 8 x 2**20 elements."""

VALID_LIMITS = Limits(max_rank=MAX_LIMITS.max_rank, max_dim=LARGE_ELEMENTS,
                      max_elements=LARGE_LIMITS.max_elements)
"""The largest shapes any generated program has: the validator's caps derive from it."""


def axis_dtype(dtype: str) -> str:
    """The dtype of a reduction that turns integers and booleans into floats (mean, var):
    float64 of a 64-bit value (under ``jax_enable_x64`` JAX's default float is float64)."""
    return dtype if dtype in FLOATS else "float64" if dtype in WIDE else "float32"
