"""64-bit programs: ``jax_enable_x64`` with ``float64`` and ``int64`` values.

Compilers have float64 paths of their own (XLA:CPU's vectorised kernels, its float64
library calls), which a 32-bit program never reaches. One program in ``programs(x64=N)``'s N
is a 64-bit one: a draw at its start, so it replays, shrinks and reduces like any other,
makes its parameters ``float64``, ``int64`` or ``bool`` and keeps its ops to those that
:data:`X64_OPS` widens: an op of the families below takes ``float64`` where it takes
``float32`` and ``int64`` where it takes ``int32``, and none whose result type the table fixes
at 32 bits (``argmax``'s ``int32`` is JAX's ``int64`` under x64), nor one measured to refuse
64-bit operands (:data:`X64_EXCLUDED`). Its arguments are then 64-bit, and that is what makes
the extractor, replay and every reproducer turn x64 on (``extract.args.needs_x64``).
"""

from __future__ import annotations

from dataclasses import replace

from grammar.opdef import Op
from grammar.types import WIDE

__all__ = ["X64_EXCLUDED", "X64_FAMILIES", "widen"]

X64_FAMILIES = frozenset({"unary", "binary", "select", "conversion", "reduction", "shape",
                          "linalg"})
"""The op families a 64-bit program draws from: those whose results take their operands'
type."""
X64_EXCLUDED = frozenset({"argmax", "argmin", "reduce_argmax", "clamp", "bitcast"})
"""Ops of those families whose results are 32-bit whatever their operands (the index of
``argmax``, ``argmin`` and ``reduce_argmax``), or that refuse 64-bit ones (``lax.clamp``
takes its Python scalar bounds as 32-bit values), so a 64-bit program leaves them out; and
``bitcast``: the recipe's small int64 values are float64 subnormals, which XLA:CPU flushes
to zero and the interpreter does not (measured: 1 of 80 64-bit programs)."""


def widen(op: Op) -> Op:
    """``op`` taking the 64-bit dtype of each 32-bit one it takes, where a 64-bit program
    may draw it; else ``op`` itself."""
    if op.family not in X64_FAMILIES or op.name in X64_EXCLUDED:
        return op
    wide = frozenset(w for w, narrow in WIDE.items() if narrow in op.dtypes)
    return replace(op, dtypes=op.dtypes | wide) if wide else op
