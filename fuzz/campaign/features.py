"""Coverage features of records, their union over a run, and the run's time series.

Each stored record contributes features of six kinds (``KINDS``): the StableHLO spec ops of
its forward module (and of its exported module), the producer → consumer op pairs of the
forward module's data flow, the JAX primitives of its forward and backward jaxprs, the XLA
passes its forward and its backward compile fired (``extract.passes``), and its oracle
verdicts (``vmap:pass``, ``interpreter:skipped``). A run keeps the union of each kind and
writes it into ``stats.json``; a resumed run starts from the union stored there.

``coverage.tsv`` beside the shards is the run's time series (AFL's ``plot_data`` is the
model): one row per status period, elapsed seconds, records in the corpus and the distinct
count of each kind. A resumed run appends to it, its elapsed seconds continuing from the
last row.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from fuzz.corpus.stats import STABLEHLO_OPS, jaxpr_primitives, stablehlo_op_names

__all__ = ["KINDS", "SERIES_NAME", "Coverage", "Series", "record_features", "verdict_kind",
           "stablehlo_op_pairs"]

KINDS = ("stablehlo_ops", "stablehlo_op_pairs", "primitives", "passes", "grad_passes",
         "oracle_verdicts")
SERIES_NAME = "coverage.tsv"
_SPEC_OPS = frozenset(STABLEHLO_OPS)
_ASSIGN = re.compile(r'\s*((?:%[\w.$-]+(?::\d+)?\s*,?\s*)+)=\s*"?stablehlo\.([a-z_][a-z0-9_]*)')
_VALUE = re.compile(r"%([\w.$-]+)")


def stablehlo_op_pairs(text: str) -> set[str]:
    """``producer>consumer`` for every use of one StableHLO op's result by another in MLIR
    ``text`` (function arguments and block arguments produce nothing)."""
    pairs: set[str] = set()
    producers: dict[str, str] = {}
    for line in text.splitlines():
        if "func.func" in line:  # value names are unique within one function
            producers = {}
        m = _ASSIGN.match(line)
        if m is None:
            continue
        op = m.group(2)
        for use in _VALUE.findall(line[m.end():]):
            if (producer := producers.get(use)) is not None:
                pairs.add(f"{producer}>{op}")
        for name in _VALUE.findall(m.group(1)):
            producers[name] = op
    return pairs


def verdict_kind(verdict: str) -> str:
    """An oracle verdict without its detail: ``skipped: ...`` -> ``skipped``."""
    return verdict.split(":")[0].split(" (")[0]


def record_features(fields: Mapping[str, Any]) -> dict[str, set[str]]:
    """The features of one record's fields, by kind."""
    forward = fields.get("stablehlo") or ""
    ops = stablehlo_op_names(forward) | stablehlo_op_names(fields.get("exported_stablehlo") or "")
    verdicts = fields.get("oracles") or {}
    return {
        "stablehlo_ops": ops & _SPEC_OPS,  # region terminators (return) are not coverage
        "stablehlo_op_pairs": stablehlo_op_pairs(forward),
        "primitives": (jaxpr_primitives(fields.get("jaxpr") or "")
                       | jaxpr_primitives(fields.get("grad_jaxpr") or "")),
        "passes": set(fields.get("passes") or ()),
        "grad_passes": set(fields.get("grad_passes") or ()),
        "oracle_verdicts": {f"{name}:{verdict_kind(v)}" for name, v in verdicts.items()
                            if isinstance(v, str) and v not in ("off", "not sampled")},
    }


class Coverage:
    """The union of each feature kind over a run (``seed``: a previous run's, by kind)."""

    def __init__(self, seed: Mapping[str, Iterable[str]] | None = None) -> None:
        self.sets: dict[str, set[str]] = {k: set((seed or {}).get(k) or ()) for k in KINDS}

    @classmethod
    def resume(cls, stats_path: Path) -> Coverage:
        """The union a previous run left in ``stats_path`` (``stats.json``), if any."""
        try:
            data = json.loads(stats_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return cls()
        sets = data.get("feature_sets") if isinstance(data, dict) else None
        if not isinstance(sets, dict):
            return cls()
        return cls({k: [x for x in v if isinstance(x, str)] for k, v in sets.items()
                    if k in KINDS and isinstance(v, list)})

    def add(self, fields: Mapping[str, Any]) -> dict[str, set[str]]:
        """Add one record's features; return them (the guide weighs the same ones)."""
        features = record_features(fields)
        for kind, found in features.items():
            self.sets[kind] |= found
        return features

    def counts(self) -> dict[str, int]:
        return {k: len(v) for k, v in self.sets.items()}

    def lists(self) -> dict[str, list[str]]:
        return {k: sorted(v) for k, v in self.sets.items()}


class Series:
    """``coverage.tsv`` of corpus ``path``: a header, then one row per ``append``."""

    HEADER = ("elapsed_s", "records", *KINDS)

    def __init__(self, path: Path) -> None:
        self.path = Path(path) / SERIES_NAME
        self.offset = self._last_elapsed()

    def _last_elapsed(self) -> float:
        try:
            lines = self.path.read_text(encoding="utf-8").splitlines()
        except OSError:
            return 0.0
        for line in reversed(lines):
            first = line.split("\t", 1)[0]
            try:
                return float(first)
            except ValueError:
                continue
        return 0.0

    def append(self, elapsed: float, records: int, counts: Mapping[str, int]) -> None:
        row = [f"{self.offset + elapsed:.1f}", str(records), *(str(counts[k]) for k in KINDS)]
        with self.path.open("a+b") as f:
            if f.tell() == 0:
                f.write(("\t".join(self.HEADER) + "\n").encode())
            else:  # a row torn by a kill: end it before this one
                f.seek(-1, 2)
                if f.read(1) != b"\n":
                    f.write(b"\n")
            f.write(("\t".join(row) + "\n").encode())
