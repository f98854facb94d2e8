"""Near-deduplication of an export: MinHash-LSH over the token shingles of each record's
canonical StableHLO (``python -m fuzz export --near-dedup``), and the export extra's optional
imports."""

from __future__ import annotations

import importlib
import re
from types import ModuleType
from typing import Any

from extract.clean import canonical_stablehlo
from fuzz.corpus.schema import CorpusError

__all__ = ["EXTRA", "NUM_PERM", "SHINGLE", "THRESHOLD", "NearDedup", "optional",
           "stablehlo_shingles"]

SHINGLE, NUM_PERM, THRESHOLD = 5, 256, 0.7
"""Near-dedup: token 5-grams, 256 permutations, Jaccard 0.7 (BigCode's near-deduplication
defaults for The Stack)."""
EXTRA = "pip install -e '.[export]'"


def optional(name: str) -> ModuleType:
    """Import ``name``, a module of the export extra, or say how to install it."""
    try:
        return importlib.import_module(name)
    except ImportError as e:
        raise CorpusError(f"python -m fuzz export needs {name.split('.')[0]}, which is not "
                          f"installed ({e}); install the export extra: {EXTRA}") from None


_TOKEN = re.compile(r"%[\w#.]+|\w+|[^\w\s]")


def stablehlo_shingles(text: str, n: int = SHINGLE) -> set[str]:
    """The ``n``-token shingles of ``canonical_stablehlo(text)``, each SSA value name
    (``%0``, ``%arg1``, ``%cst_2``) read as ``%`` so that renumbering does not count."""
    tokens = ["%" if t[0] == "%" else t for t in _TOKEN.findall(canonical_stablehlo(text))]
    return {" ".join(tokens[i:i + n]) for i in range(max(1, len(tokens) - n + 1))}


class NearDedup:
    """Greedy MinHash-LSH filter: ``is_duplicate(text)`` is True when the estimated Jaccard
    similarity of ``text``'s shingles to those of a StableHLO kept before is at least
    ``threshold``; otherwise ``text`` is kept (indexed) and it is False.  So one record per
    cluster stays, the first seen."""

    def __init__(self, threshold: float = THRESHOLD, num_perm: int = NUM_PERM) -> None:
        ds = optional("datasketch")
        self._empty = ds.MinHash(num_perm=num_perm)  # its copies share its permutations
        self._lsh = ds.MinHashLSH(threshold=threshold, num_perm=num_perm)
        self._kept: list[Any] = []
        self.threshold = threshold

    def is_duplicate(self, text: str) -> bool:
        sketch = self._empty.copy()
        sketch.update_batch([s.encode("utf-8") for s in stablehlo_shingles(text)])
        if any(sketch.jaccard(self._kept[k]) >= self.threshold for k in self._lsh.query(sketch)):
            return True
        self._lsh.insert(len(self._kept), sketch)
        self._kept.append(sketch)
        return False
