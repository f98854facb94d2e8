"""Validation of argument specs: a list of ``(shape, dtype)`` pairs.

Pure (NumPy and ml_dtypes only, no JAX), so the pool's parent process can validate a task
at ``submit`` time and fail loudly there instead of inside a worker.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from numbers import Integral

import ml_dtypes  # noqa: F401  (registers bfloat16, float8_*, int4 ... with NumPy)
import numpy as np

ArgSpec = tuple[tuple[int, ...], str]

DTYPES: tuple[str, ...] = ("bool", "int8", "int16", "int32", "int64", "uint8", "uint16",
                           "uint32", "uint64", "float16", "bfloat16", "float32", "float64")
"""The argument dtypes jaxsmith accepts: those with an input recipe (``extract.inputs``)."""
MAX_RANK = 8
MAX_ELEMENTS = 2**24
"""The largest argument accepted (64 MiB of float32); generated programs stay under 2**16."""


def normalize_args(args: Sequence) -> tuple[ArgSpec, ...]:
    """Return ``args`` as a tuple of ``(shape tuple, canonical dtype name)`` pairs.

    Raises ``ValueError`` / ``TypeError`` naming the offending position and value, for a
    dtype outside ``DTYPES`` and for a shape beyond ``MAX_RANK`` or ``MAX_ELEMENTS``.
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
                raise ValueError(f"args[{i}] shape={shape!r:.80} has an invalid dimension "
                                 f"{d!r:.20}")
            dims.append(int(d))
        if len(dims) > MAX_RANK or math.prod(dims) > MAX_ELEMENTS:
            raise ValueError(f"args[{i}] shape={shape!r:.80} is too large: at most {MAX_RANK} "
                             f"dimensions and {MAX_ELEMENTS} elements")
        try:
            name = np.dtype(dtype).name
        except (TypeError, ValueError, SyntaxError) as exc:
            raise ValueError(f"args[{i}] dtype={dtype!r:.40} is not a NumPy dtype name; "
                             f"accepted: {', '.join(DTYPES)}") from exc
        if name not in DTYPES:
            raise ValueError(f"args[{i}] dtype={dtype!r:.40} is not supported; accepted: "
                             f"{', '.join(DTYPES)}")
        out.append((tuple(dims), name))
    return tuple(out)
