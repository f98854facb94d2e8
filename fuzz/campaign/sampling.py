"""Seeded draws from a strategy, outside a test: each program replays from (seed, index).

The same (seed, index) also fixes the program's input seed and which of the sampled oracles
check it, so a run replays exactly.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from random import Random
from typing import Any

from hypothesis import strategies as st
from hypothesis.errors import StopTest
from hypothesis.internal.conjecture.choice import choice_permitted
from hypothesis.internal.conjecture.data import ConjectureData
from hypothesis.internal.conjecture.providers import GLOBAL_CONSTANTS, HypothesisProvider

from extract.inputs import RECIPE, SPECIAL_RECIPE


class _SeededProvider(HypothesisProvider):
    """Hypothesis' own provider, less the constants it collects from the local modules that
    happen to be imported at the time of a draw: which of ours are imported depends on when a
    worker's result arrives, so with them the same (seed, index) could draw another program
    (seen in CI: ``zeta`` once, ``gammainc`` the next time).  The global constants stay."""

    _pools: dict[tuple[Any, ...], tuple[Any, ...]] = {}

    def _maybe_draw_constant(self, choice_type: Any, constraints: Any, *,
                             p: float = 0.05) -> Any:
        assert self._random is not None
        if self._random.random() > p:
            return None
        key = (choice_type, repr(sorted(constraints.items())))
        if key not in self._pools:
            self._pools[key] = tuple(c for c in GLOBAL_CONSTANTS.set_for_type(choice_type)
                                     if choice_permitted(c, constraints))
        pool = self._pools[key]
        return self._random.choice(pool) if pool else None


def draw(strategy: st.SearchStrategy[Any], seed: int, index: int,
         prefix: Sequence[Any] | None = None,
         candidate: int = 0) -> tuple[Any, tuple] | None:
    """The ``index``-th value of a run seeded with ``seed``, and its choice sequence;
    ``prefix``: choices to replay first (a mutant's, ``fuzz.campaign.guide``), drawing on after
    them;
    ``candidate``: another draw for the same index (a guided run picks among several).

    ``None`` when the draw overran Hypothesis' buffer (never seen with the default options).
    """
    key = f"jaxsmith:{seed}:{index}" + (f":{candidate}" if candidate else "")
    data = ConjectureData(random=Random(key), provider=_SeededProvider,
                          prefix=None if prefix is None else list(prefix))
    try:
        value = data.draw(strategy)
    except StopTest:
        return None
    return value, tuple(data.choices)


def _unit(*parts: object) -> int:
    text = ":".join(str(p) for p in parts)
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big") >> 1


def input_seed(seed: int, index: int) -> int:
    """Input seed of program ``index`` of a run seeded ``seed``: the first 8 bytes of
    sha256("jaxsmith-inputs:<seed>:<index>"), big-endian, shifted right once (< 2**63)."""
    return _unit("jaxsmith-inputs", seed, index)


def input_recipe(seed: int, index: int, special_share: float) -> str:
    """The input recipe of program ``index``: ``jaxsmith-inputs/1+special`` (special values,
    ``extract.inputs``) for a share ``special_share`` of programs, drawn from sha256 of
    ("jaxsmith-recipe", seed, index), else ``jaxsmith-inputs/1``."""
    special = _unit("jaxsmith-recipe", seed, index) < special_share * 2**63
    return SPECIAL_RECIPE if special else RECIPE


def sampled_oracles(seed: int, index: int, source_hash: str,
                    rates: Mapping[str, float]) -> list[str]:
    """The oracles that check program ``index`` (whose normalised source hashes to
    ``source_hash``): each ``name`` with probability ``rates[name]``, drawn from sha256 of
    (seed, index, source_hash, name), so the choice replays and differs between programs
    drawn at the same index under other grammar options."""
    return [name for name, rate in rates.items() if rate >= 1.0 or
            _unit("jaxsmith-oracle", seed, index, source_hash, name) < rate * 2**63]
