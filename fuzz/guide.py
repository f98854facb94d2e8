"""Coverage-guided generation (``python -m fuzz --guide``): mutate the programs that reached
something new.

A program whose record brings a feature the run had not seen (``fuzz.features``: a spec
op, an op pair, a primitive, an XLA pass, an oracle verdict) joins the pool of parents,
with its Hypothesis choice sequence. Of the programs a guided run draws, ``MUTANT_SHARE``
are mutants: a parent's choice sequence, changed at one place, replayed by Hypothesis
(``ConjectureData`` with that prefix), and drawn on from there. A mutant is therefore valid
by construction, like any draw, and shrinks like one: where the changed choice no longer
fits what the grammar asks at that point, Hypothesis takes its simplest value instead.

Two mutations, chosen evenly: *regrow* keeps the parent's first ``k`` choices and draws the
rest afresh (the program keeps its start, its parameters and its swarm of op families, and
grows another tail); *point* changes one integer choice and keeps every other (another op,
dtype, size or parameter at one place). A parent is chosen with weight the sum, over the
features it brought, of 1 / (how many records have that feature since): parents of rare
features are mutated most.

Everything is drawn from ``(seed, index)`` and the pool at that moment; a mutant's record
names its parent and its mutation (``found_by``), and ``mutant`` rebuilds it from the
parent's choice sequence.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from random import Random
from typing import Any

__all__ = ["MUTANT_SHARE", "Guide", "Mutation", "mutate"]

MUTANT_SHARE = 0.5
"""Share of a guided run's programs that are mutants (the rest are fresh draws)."""


@dataclass(frozen=True)
class Mutation:
    """How a mutant's choice prefix was made from its parent's choices."""

    parent: int  # the parent's index in the run
    kind: str  # "regrow" or "point"
    at: int  # the choice changed (point) or the first one redrawn (regrow)
    value: int | None = None  # point: the new value

    def describe(self) -> str:
        change = f"choice {self.at} set to {self.value}" if self.kind == "point" \
            else f"choices from {self.at} redrawn"
        return f"mutant of #{self.parent} ({self.kind}: {change})"


def mutate(choices: Sequence[Any], mutation: Mutation) -> list[Any]:
    """The choice prefix of a mutant of a parent with ``choices``."""
    if mutation.kind == "regrow":
        return list(choices[:mutation.at])
    out = list(choices)
    out[mutation.at] = mutation.value
    return out


@dataclass
class _Parent:
    index: int
    choices: tuple
    brought: frozenset[str]  # the features it was first to reach


class Guide:
    """The pool of parents of a guided run, and the plan of each program it draws."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.parents: list[_Parent] = []
        self.seen: Counter[str] = Counter()  # feature -> records that have it
        self.mutants = 0
        self.mutants_new = 0  # mutants that brought a new feature
        self.fresh_new = 0

    def plan(self, index: int) -> tuple[list[Any], Mutation] | None:
        """The choice prefix and mutation of program ``index``, or None for a fresh draw."""
        rng = Random(f"jaxsmith-guide:{self.seed}:{index}")
        if not self.parents or rng.random() >= MUTANT_SHARE:
            return None
        weights = [sum(1.0 / self.seen[f] for f in p.brought) for p in self.parents]
        parent = rng.choices(self.parents, weights=weights)[0]
        ints = [i for i, c in enumerate(parent.choices)
                if isinstance(c, int) and not isinstance(c, bool)]
        if ints and rng.random() < 0.5:
            at = rng.choice(ints)
            old = parent.choices[at]
            value = rng.choice([old - 1, old + 1, rng.randint(0, 2 * abs(old) + 2)])
            mutation = Mutation(parent.index, "point", at, value)
        else:
            mutation = Mutation(parent.index, "regrow", rng.randrange(len(parent.choices) + 1))
        self.mutants += 1
        return mutate(parent.choices, mutation), mutation

    def observe(self, index: int, choices: Sequence[Any],
                found: Mapping[str, Iterable[str]], mutation: Mutation | None) -> bool:
        """Count the features ``found`` in a stored record (``fuzz.features.record_features``,
        by kind); one that brings a new feature joins the pool. Whether it did."""
        features = {f"{kind}:{name}" for kind, names in found.items() for name in names}
        new = frozenset(f for f in features if f not in self.seen)
        self.seen.update(features)
        if new:
            self.parents.append(_Parent(index, tuple(choices), new))
            if mutation is None:
                self.fresh_new += 1
            else:
                self.mutants_new += 1
        return bool(new)

    def stats(self) -> dict[str, int]:
        return {"parents": len(self.parents), "mutants": self.mutants,
                "mutants_with_new_features": self.mutants_new,
                "fresh_with_new_features": self.fresh_new}
