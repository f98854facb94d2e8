"""Seeded draws from a strategy, outside a test: each program replays from (seed, index)."""

from __future__ import annotations

from random import Random
from typing import Any

from hypothesis import strategies as st
from hypothesis.errors import StopTest
from hypothesis.internal.conjecture.data import ConjectureData


def draw(strategy: st.SearchStrategy[Any], seed: int, index: int) -> tuple[Any, tuple] | None:
    """The ``index``-th value of a run seeded with ``seed``, and its choice sequence.

    ``None`` when the draw overran Hypothesis' buffer (never seen with the default options).
    """
    data = ConjectureData(random=Random(f"jaxsmith:{seed}:{index}"))
    try:
        value = data.draw(strategy)
    except StopTest:
        return None
    return value, tuple(data.choices)
