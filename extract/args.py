"""Validation of argument specs: a list of ``(shape, dtype)`` pairs.

Pure (NumPy and ml_dtypes only, no JAX), so the pool's parent process can validate a task
at ``submit`` time and fail loudly there instead of inside a worker.
"""

from __future__ import annotations

from collections.abc import Sequence
from numbers import Integral

import ml_dtypes  # noqa: F401  (registers bfloat16, float8_*, int4 ... with NumPy)
import numpy as np

ArgSpec = tuple[tuple[int, ...], str]


def normalize_args(args: Sequence) -> tuple[ArgSpec, ...]:
    """Return ``args`` as a tuple of ``(shape tuple, canonical dtype name)`` pairs.

    Raises ``ValueError`` / ``TypeError`` naming the offending position and value.
    """
    if isinstance(args, (str, bytes)) or not isinstance(args, Sequence):
        raise TypeError(f"args={args!r} must be a list of (shape, dtype) pairs")
    out = []
    for i, spec in enumerate(args):
        if isinstance(spec, (str, bytes)) or not isinstance(spec, Sequence) or len(spec) != 2:
            raise ValueError(f"args[{i}]={spec!r} must be a (shape, dtype) pair")
        shape, dtype = spec
        if isinstance(shape, (str, bytes)) or not isinstance(shape, Sequence):
            raise ValueError(f"args[{i}] shape={shape!r} must be a tuple or list of ints")
        dims = []
        for d in shape:
            if isinstance(d, bool) or not isinstance(d, Integral) or d < 0:
                raise ValueError(f"args[{i}] shape={shape!r} has an invalid dimension {d!r}")
            dims.append(int(d))
        try:
            name = np.dtype(dtype).name
        except TypeError as exc:
            raise ValueError(f"args[{i}] dtype={dtype!r} is not a NumPy dtype name") from exc
        out.append((tuple(dims), name))
    return tuple(out)
