"""How far a half-precision sum may move when its terms are added in another order.

The StableHLO spec leaves the order of a ``reduce`` and of a ``dot_general``'s contraction to
the implementation: the reference interpreter adds one term after another, XLA in blocks. A
recursive sum of K terms has a rounding error of at most (K - 1) unit roundoffs of its terms
(Higham, *Accuracy and Stability of Numerical Algorithms*, 4.2), so two correct float16 or
bfloat16 results may differ by that much: the oracles' ``accumulation_order`` benign kind.
"""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np

from .values import Tolerance, tolerance

__all__ = ["is_half", "longest_half_sum", "summed_tolerance"]

_UNIT_ROUNDOFF = {"float16": 2.0**-11, "bfloat16": 2.0**-8}
_HALF_DOT = re.compile(r"stablehlo\.dot_general [^\n]*contracting_dims = \[([\d, ]*)\] x "
                       r"[^\n]*: \(tensor<((?:\d+x)*)b?f16>")
_HALF_SUM = re.compile(r"stablehlo\.reduce\([^\n]*applies stablehlo\.add across dimensions = "
                       r"\[([\d, ]*)\] : \(tensor<((?:\d+x)*)b?f16>")


def longest_half_sum(text: str) -> int:
    """The most float16 or bfloat16 terms one element of a sum adds in the StableHLO module
    ``text``: a ``dot_general``'s contraction or a ``reduce`` with ``add``; 1 if none."""
    longest = 1
    for match in (*_HALF_DOT.finditer(text), *_HALF_SUM.finditer(text)):
        dims = [int(d) for d in match[2].split("x") if d]
        axes = [int(a) for a in match[1].split(",") if a.strip()]
        longest = max(longest, math.prod(dims[a] for a in axes if a < len(dims)))
    return longest


def summed_tolerance(dtype: Any, terms: int) -> Tolerance:
    """The value tolerance of ``dtype`` widened by the bound on reordering a sum of
    ``terms`` half-precision terms (``accumulation_order``)."""
    tol = tolerance(dtype)
    extra = (terms - 1) * _UNIT_ROUNDOFF.get(np.dtype(dtype).name, 0.0)
    return Tolerance(tol.rtol + extra, tol.atol + extra)


def is_half(dtype: Any) -> bool:
    """Whether ``dtype`` is float16 or bfloat16."""
    return np.dtype(dtype).name in _UNIT_ROUNDOFF
