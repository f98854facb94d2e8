"""Reproducible program inputs: a pure NumPy function of the argument types and a seed.

Recipe ``jaxsmith-inputs/1`` (docs/oracles.md, "Inputs", says the same step by step):

1. For argument ``i`` (0-based) with ``n`` elements, draw ``n`` raw 64-bit words
   ``w = numpy.random.PCG64(numpy.random.SeedSequence([seed, i])).random_raw(n)``.
   PCG64 and SeedSequence streams are fixed by NumPy's compatibility policy; no distribution
   method is used, since those may change between NumPy versions.
2. Floating dtypes: ``k = 16 + (w >> 11) % 112``, magnitude ``(2k + 1) / 128`` (odd
   multiples of 1/128 in [0.258, 1.992]), negative where ``w & 1``. An odd numerator below
   256 has at most 8 significant bits, so every value is exact in bfloat16, float16 and
   float32 (the same numbers whatever the dtype); none is zero, an integer or a half-integer,
   so ``abs``, ``relu``, ``sign``, ``floor``, ``round`` and friends are not evaluated at
   their kinks, and each value is at least 1/128 away from one.
3. Signed integers: ``(w >> 11) % 9 - 4`` (-4..4); unsigned: ``(w >> 11) % 9``.
4. ``bool``: ``(w & 1) == 1``.
5. Complex dtypes: ``2n`` words instead of ``n``; the first ``n`` give the real parts and the
   last ``n`` the imaginary parts, each by step 2.

Only integer arithmetic on the raw words, then one exact conversion: the arrays are identical
in every process and on every platform.

Recipe ``jaxsmith-inputs/1+special`` puts the values where compilers break into a quarter of
the elements: the arrays of ``jaxsmith-inputs/1``, then, for argument ``i``, ``n`` more words
``v`` from ``SeedSequence([seed, i, 1])`` (``2n`` for a complex one, real parts first), and
every element whose ``v % 4 == 0`` becomes ``SPECIALS[kind][(v >> 2) % len(SPECIALS[kind])]``
for its dtype's kind: ±0, ±inf, NaN, the smallest subnormal, the smallest normal and the
largest finite value of either sign for floats; ``INT_MIN``, ``INT_MAX``, 0 and -1 for signed
integers; 0 and the largest value for unsigned ones; ``bool`` stays as it is.
"""

from __future__ import annotations

from collections.abc import Sequence

import ml_dtypes  # registers bfloat16 with NumPy; its finfo knows bfloat16
import numpy as np

from .args import flatten_args, normalize_args

__all__ = ["RECIPE", "RECIPES", "SPECIAL_RECIPE", "check_inputs", "check_recipe", "from_words",
           "make_inputs", "with_specials", "word_count"]

RECIPE = "jaxsmith-inputs/1"
SPECIAL_RECIPE = "jaxsmith-inputs/1+special"
RECIPES = (RECIPE, SPECIAL_RECIPE)


def _words(seed: int, index: int, n: int) -> np.ndarray:
    bits = np.random.PCG64(np.random.SeedSequence([seed, index]))
    return np.asarray(bits.random_raw(n), dtype=np.uint64).reshape(-1)


def _special_words(seed: int, index: int, n: int) -> np.ndarray:
    bits = np.random.PCG64(np.random.SeedSequence([seed, index, 1]))
    return np.asarray(bits.random_raw(n), dtype=np.uint64).reshape(-1)


def word_count(shape: tuple[int, ...], dtype: np.dtype) -> int:
    """Raw words per argument: one per element, two for a complex one."""
    n = int(np.prod(shape, dtype=np.int64))
    return 2 * n if np.issubdtype(dtype, np.complexfloating) else n


def from_words(words: np.ndarray, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    """The recipe's array of ``shape`` and ``dtype`` from its raw 64-bit ``words``."""
    if np.issubdtype(dtype, np.complexfloating):
        n = words.size // 2
        part = np.dtype(f"float{dtype.itemsize * 4}")
        real, imag = from_words(words[:n], shape, part), from_words(words[n:], shape, part)
        return (real + 1j * imag).astype(dtype)
    high = words >> np.uint64(11)
    if dtype == np.bool_:
        values = (words & np.uint64(1)) == 1
    elif np.issubdtype(dtype, np.unsignedinteger):
        values = (high % np.uint64(9)).astype(np.int64)
    elif np.issubdtype(dtype, np.integer):
        values = (high % np.uint64(9)).astype(np.int64) - 4
    elif np.issubdtype(dtype, np.floating) or dtype == np.dtype("bfloat16"):
        odd = 2 * (16 + (high % np.uint64(112)).astype(np.int64)) + 1
        sign = np.where((words & np.uint64(1)) == 1, -1.0, 1.0)
        values = sign * odd.astype(np.float64) / 128.0
    else:  # normalize_args admits only extract.args.DTYPES
        raise AssertionError(f"dtype {dtype.name!r} has no input recipe")
    return values.astype(dtype).reshape(shape)


def _specials(dtype: np.dtype) -> list:
    """The special values of ``dtype`` (the module docstring's ``SPECIALS``), in order."""
    if np.issubdtype(dtype, np.floating) or dtype == np.dtype("bfloat16"):
        info = ml_dtypes.finfo(dtype)
        tiny, sub = float(info.smallest_normal), float(info.smallest_subnormal)
        big = float(info.max)
        return [0.0, -0.0, np.inf, -np.inf, np.nan, sub, -sub, tiny, -tiny, big, -big]
    if np.issubdtype(dtype, np.signedinteger):
        info = np.iinfo(dtype)
        return [info.min, info.max, 0, -1]
    if np.issubdtype(dtype, np.unsignedinteger):
        return [0, np.iinfo(dtype).max]
    return []


def with_specials(values: np.ndarray, words: np.ndarray) -> np.ndarray:
    """``values`` with special values of their dtype where ``words % 4 == 0`` (the second
    stream of recipe ``jaxsmith-inputs/1+special``; one word per element, two if complex)."""
    if np.issubdtype(values.dtype, np.complexfloating):
        n, out = words.size // 2, np.array(values)  # an array, even of shape ()
        out.real = with_specials(values.real.copy(), words[:n])
        out.imag = with_specials(values.imag.copy(), words[n:])  # not real + 1j * inf: NaN
        return out
    table = _specials(values.dtype)
    if not table:
        return values
    flat, hit = values.reshape(-1).copy(), (words % np.uint64(4)) == 0
    pick = ((words >> np.uint64(2)) % np.uint64(len(table))).astype(np.int64)
    flat[hit] = np.asarray(table, dtype=np.float64 if values.dtype.kind == "f" or
                           values.dtype == np.dtype("bfloat16") else values.dtype)[pick[hit]]
    return flat.reshape(values.shape)


def check_recipe(recipe: str) -> None:
    """Raise ``ValueError`` unless ``recipe`` is one of ``RECIPES``."""
    if recipe not in RECIPES:
        raise ValueError(f"recipe={recipe!r} must be one of {', '.join(RECIPES)}")


def _check_seed(seed: int) -> None:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not (
            0 <= seed < 2**63):
        raise ValueError(f"seed={seed!r} must be an int in [0, 2**63)")


def check_inputs(args: Sequence, seed: int, recipe: str = RECIPE) -> None:
    """Raise ``ValueError`` unless ``make_inputs(args, seed, recipe)`` can draw (nothing is
    drawn): ``normalize_args`` accepts only dtypes that have a recipe."""
    _check_seed(seed)
    check_recipe(recipe)
    normalize_args(args)


def make_inputs(args: Sequence, seed: int, recipe: str = RECIPE) -> list[np.ndarray]:
    """One array per ``(shape, dtype)`` leaf of ``args`` (``extract.args.flatten_args``
    order; argument ``i`` of the recipe is leaf ``i``), by ``recipe`` (one of ``RECIPES``)
    from ``seed``.

    ``seed`` must be an int in [0, 2**63); invalid ``args`` or ``recipe`` raise ``ValueError``.
    """
    _check_seed(seed)
    check_recipe(recipe)
    out = []
    for index, (shape, dtype) in enumerate(flatten_args(args)):
        count = word_count(shape, np.dtype(dtype))
        values = from_words(_words(int(seed), index, count), shape, np.dtype(dtype))
        if recipe == SPECIAL_RECIPE:
            values = with_specials(values, _special_words(int(seed), index, count))
        out.append(values)
    return out
