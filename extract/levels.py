"""The IR levels a record can hold, and the choice of them (``python -m fuzz --levels``).

``stablehlo`` is always extracted: its hash is the corpus's dedup key. ``hlo_optimized``
is the one level that needs XLA's compile, the bulk of a program's cost; without it a
program is traced and lowered only, so nothing runs: no outputs, no oracles, no cost.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["COMPILED", "LEVELS", "check_levels"]

LEVELS: tuple[str, ...] = ("jaxpr", "stablehlo", "hlo", "hlo_optimized")
"""Forward and backward: ``jaxpr``/``grad_jaxpr``, ``stablehlo``/``grad_stablehlo``,
``hlo``/``grad_hlo`` (before optimisation), ``hlo_optimized``/``grad_hlo_optimized``."""
COMPILED = "hlo_optimized"


def check_levels(levels: Iterable[str] | str | None) -> tuple[str, ...]:
    """``levels`` in ``LEVELS``' order; ``None`` or ``"all"`` for all of them. A level not in
    ``LEVELS``, or a choice without ``stablehlo``, raises ``ValueError``."""
    if levels is None or levels == "all":
        return LEVELS
    names = [s.strip() for s in levels.split(",")] if isinstance(levels, str) else list(levels)
    unknown = [n for n in names if n not in LEVELS]
    if unknown:
        raise ValueError(f"levels={','.join(map(str, names))!r}: unknown level "
                         f"{unknown[0]!r}; choose among {', '.join(LEVELS)}, or 'all'")
    if "stablehlo" not in names:
        raise ValueError(f"levels={','.join(names)!r} must include 'stablehlo' (the "
                         f"corpus dedups records by their StableHLO's hash)")
    return tuple(n for n in LEVELS if n in names)
