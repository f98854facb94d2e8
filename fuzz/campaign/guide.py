"""Coverage-guided generation (``python -m fuzz --guide``): steer drawing toward what the
run has not reached yet.

A program whose record brings a feature the run had not seen (``fuzz.campaign.features``: a spec
op, an op pair, a primitive, an XLA pass, an oracle verdict) joins the pool of parents,
with its Hypothesis choice sequence. Three levers act on what is drawn next:

* **Best of several fresh draws.** For a fresh program the loop draws ``CANDIDATES``
  programs (a draw is milliseconds, a compile about a second) and compiles the one whose
  tree promises most that the stored records' trees lack (:func:`tree_features`: its ops
  and its producer -> consumer op pairs, the grammar's side of the StableHLO op pairs), per
  second its extraction is expected to take (:class:`CostModel`, fitted on the run's own).
* **Mutants.** A parent's choice sequence, changed at one place, replayed by Hypothesis
  (``ConjectureData`` with that prefix) and drawn on from there, so a mutant is valid by
  construction and shrinks like any draw. *Regrow* keeps the first ``k`` choices and draws
  the rest afresh; *point* changes one integer choice (another op, dtype, size or parameter
  at one place). A parent is chosen with weight the sum, over the features it brought, of
  1 / (records that have that feature since). How many programs are mutants follows a
  Thompson draw between the yields of mutants and of fresh draws (``MUTANT_SHARE``).
* **Op weights.** Every ``EPOCH`` programs, each op's draw weight is the run's own
  weight times how many new features the programs that drew it brought per second of
  extraction, against the mean (``FACTOR_RANGE``; an op never drawn counts twice the mean).

Everything is drawn from ``(seed, index)``, the pool and the weights at that moment: a
record's ``found_by`` names the candidate and the epoch of a fresh draw (the weights of
each epoch are in ``guide-<seed>.json``) or the parent and the mutation of a mutant.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from random import Random
from typing import Any

import numpy as np

from grammar.program import Program, Value, walk

__all__ = ["CANDIDATES", "COST_PRIOR", "EPOCH", "FACTOR_RANGE", "GUIDE_NAME", "MUTANT_SHARE",
           "CostModel", "Guide", "Mutation", "Plan", "mutate", "tree_features"]

MUTANT_SHARE = (0.05, 0.5)
"""The share of a guided run's programs that are mutants (the rest are fresh draws) while
mutants yield fewer new features than fresh draws, and while they yield more."""
CANDIDATES = 8
"""Fresh draws per fresh program of a guided run, of which it compiles the one ``pick``
prefers (8 draws and the pick take ~60 ms in the parent, an extraction ~2 s)."""
COST_PRIOR = 10
"""A program's extraction cost in statements beyond its own (what tracing, lowering and
compiling cost whatever the program), before the run's own timings say otherwise
(:class:`CostModel`). Without a cost the pick is the largest candidate: a tree's novelty
correlates 0.98 with its size over 200 draws, and the run slows down."""
OP_SHRINK = 4.0
"""Ridge penalty on an op's deviation from the mean statement's cost, in squared statements:
about this many statements of an op before its own cost counts half."""
PRIOR_SHARE = 0.05
"""Weight of :data:`COST_PRIOR`'s split of overhead and statement cost, against the run's
timings: enough to decide it while every program has as many statements."""
EPOCH = 16
"""Programs drawn under one set of op weights."""
GUIDE_NAME = "guide-{seed}.json"
"""File beside the shards with the op weights of each epoch of a guided run (its seed)."""
FACTOR_RANGE = (0.25, 8.0)
"""Least and most an op's weight is multiplied by, against the run's own weights."""


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
    epoch: int  # the weights its choices were drawn under


@dataclass(frozen=True)
class Plan:
    """How program ``index`` of a guided run is drawn: under the op weights of ``epoch``,
    from ``prefix`` (a mutant's, else None: a fresh draw, of which the loop draws
    ``CANDIDATES`` and keeps ``candidate``, the one :meth:`Guide.pick` prefers)."""

    epoch: int
    prefix: list[Any] | None = None
    mutation: Mutation | None = None
    candidate: int = 0


def tree_features(program: Program) -> set[str]:
    """What a program's tree promises before it is compiled: ``op:<name>`` for each op it
    uses and ``pair:<producer>><consumer>`` for each use of one statement's result by
    another (the grammar's counterpart of the StableHLO op pairs)."""
    made: dict[str, str] = {}
    out: set[str] = set()
    for stmt, _ in walk(program.body):
        out.add(f"op:{stmt.op}")
        out.update(f"pair:{made[v.name]}>{stmt.op}" for v in stmt.inputs
                   if isinstance(v, Value) and v.name in made)
        made.update((v.name, stmt.op) for v in stmt.outputs)
    return out


class CostModel:
    """Expected extraction seconds of a program, fitted on the run's extracted programs.

    A ridge regression of each program's seconds on its statements: overhead + the mean
    statement's cost x statements + each op's deviation from that mean x its statements. An
    op's deviation shrinks toward 0 (``OP_SHRINK``); the overhead and the mean toward
    ``COST_PRIOR``'s split of the run's seconds (``PRIOR_SHARE``). A solve of ~250 unknowns
    takes ~2 ms, once per program extracted, against its ~2 s of extraction.
    """

    def __init__(self, ops: Sequence[str]) -> None:
        self.column = {op: i + 2 for i, op in enumerate(ops)}
        self.xtx = np.zeros((len(ops) + 2,) * 2)
        self.xty = np.zeros(len(ops) + 2)
        self.seconds = 0.0  # of all programs
        self.programs = 0
        self.statements: Counter[str] = Counter()  # op -> statements extracted
        self.share: Counter[str] = Counter()  # op -> sum of its share of a program's statements
        self._fit: tuple[float, float, dict[str, float]] | None = None

    def add(self, ops: Sequence[str], seconds: float) -> None:
        """Count a program of statements ``ops`` (with repeats) that took ``seconds``."""
        counts = Counter(ops)
        x = {0: 1.0, 1: float(len(ops))}
        x.update((self.column[op], float(n)) for op, n in counts.items() if op in self.column)
        at, value = np.fromiter(x, int), np.fromiter(x.values(), float)
        self.xtx[np.ix_(at, at)] += np.outer(value, value)
        self.xty[at] += value * seconds
        self.seconds += seconds
        self.programs += 1
        self.statements.update(counts)
        self.share.update({op: n / len(ops) for op, n in counts.items()})
        self._fit = None

    @property
    def unit(self) -> float:
        """Seconds per statement as ``COST_PRIOR`` splits the run's seconds (0: none yet)."""
        return self.seconds / max(COST_PRIOR * self.programs + self.statements.total(), 1)

    def fit(self) -> tuple[float, float, dict[str, float]] | None:
        """(overhead seconds, the mean statement's seconds, op -> seconds of one of its
        statements), or None before any program. An op not extracted yet costs the mean.
        One number may be below 0 where the data cannot tell them apart (programs of one
        size: only overhead + statements x cost is known); what they predict is not."""
        if not self.programs:
            return None
        if self._fit is None:
            prior = np.zeros(len(self.xty))
            prior[:2] = COST_PRIOR * self.unit, self.unit
            penalty = np.full(len(self.xty), OP_SHRINK)
            penalty[:2] = PRIOR_SHARE * np.diag(self.xtx)[:2]
            beta = np.linalg.solve(self.xtx + np.diag(penalty), self.xty + penalty * prior)
            overhead, mean = float(beta[0]), float(beta[1])
            self._fit = overhead, mean, {op: mean + float(beta[i])
                                         for op, i in self.column.items()}
        return self._fit

    def predict(self, ops: Sequence[str]) -> float:
        """Expected seconds of a program of statements ``ops``; before any program, in units
        of a statement (``COST_PRIOR`` + statements)."""
        fitted = self.fit()
        if fitted is None:
            return COST_PRIOR + len(ops)
        overhead, mean, per = fitted
        # a program is never free, whatever the fit says (nor when every program so far
        # crashed before a stage was timed: the run's seconds are then 0)
        return max(overhead + sum(per.get(op, mean) for op in ops), 0.1 * self.unit, 1e-3)

    def op_seconds(self, op: str) -> float:
        """The fitted seconds the run spent on ``op``: its statements and its share of the
        overhead of the programs that drew it."""
        overhead, mean, per = self.fit() or (0.0, 0.0, {})
        return max(self.statements[op] * per.get(op, mean) + overhead * self.share[op], 0.0)


class Guide:
    """The pool of parents of a guided run, its op weights, and the plan of each program.

    ``ops``: every op the run may draw; ``base``: the run's own draw weights (default 1).
    """

    def __init__(self, seed: int, ops: Sequence[str] = (),
                 base: Mapping[str, int] | None = None) -> None:
        self.seed = seed
        self.ops, self.base = tuple(ops), dict(base or {})
        self.parents: list[_Parent] = []
        self.seen: Counter[str] = Counter()  # feature -> records that have it
        self.credit: Counter[str] = Counter()  # op -> its share of their new features
        self.epochs: list[dict[str, int]] = []  # the op weights of each epoch
        self.drawn = {"fresh": [0, 0], "mutant": [0, 0]}  # records, those with a new feature
        self.promised: set[str] = set()  # tree features of the stored records
        self.costs = CostModel(self.ops)

    def spent(self, program: Program, seconds: float) -> None:
        """Count ``seconds`` of extraction (whatever came of it: a record, a duplicate, a
        failure) toward the cost of ``program``'s statements."""
        self.costs.add([stmt.op for stmt, _ in walk(program.body)], seconds)

    def cost(self, program: Program) -> float:
        """The expected extraction seconds of ``program`` (:class:`CostModel`)."""
        return self.costs.predict([stmt.op for stmt, _ in walk(program.body)])

    def pick(self, candidates: Sequence[Program]) -> int:
        """The index of the candidate whose tree promises most that the stored records'
        trees do not have (a new op counts twice, a new pair once) per unit of its
        :meth:`cost` (the first on a tie)."""
        def novelty(program: Program) -> float:
            new = sum(2 if f.startswith("op:") else 1
                      for f in tree_features(program) - self.promised)
            return new / self.cost(program)

        scores = [novelty(p) for p in candidates]
        return scores.index(max(scores))

    def weights(self, epoch: int) -> dict[str, int]:
        """The op weights of ``epoch``, computed when it is first asked for from what the
        run has observed by then (epoch 0: the base weights)."""
        while len(self.epochs) <= epoch:
            self.epochs.append(self._weigh())
        return self.epochs[epoch]

    def _weigh(self) -> dict[str, int]:
        """New features per second of extraction of each op (its share of the features its
        records brought, over its share of the seconds spent on the programs that drew it),
        against the mean."""
        spent = self.costs.seconds
        if not (self.drawn["fresh"][0] + self.drawn["mutant"][0]) or not spent:  # no record
            return {op: self.base.get(op, 1) for op in self.ops}
        mean = max(sum(self.credit.values()) / spent, 1e-3)  # features per second
        unit = spent / self.costs.statements.total()  # seconds per statement
        low, high = FACTOR_RANGE
        out = {}
        for op in self.ops:  # an op not drawn yet counts as twice as productive as the mean
            rate = (self.credit[op] + 2 * mean * unit) / (self.costs.op_seconds(op) + unit)
            factor = min(high, max(low, rate / mean))
            out[op] = min(1000, max(1, round(self.base.get(op, 1) / low * factor)))
        return out

    def _mutant(self, rng: Random) -> bool:
        """Whether the next program is a mutant: with the top of ``MUTANT_SHARE``'s range
        when a Thompson draw of the mutants' yield of new features (records that brought
        one, of those stored; a Beta posterior) beats the fresh draws', else its bottom."""
        (nf, kf), (nm, km) = self.drawn["fresh"], self.drawn["mutant"]
        wins = rng.betavariate(km + 1, nm - km + 1) > rng.betavariate(kf + 1, nf - kf + 1)
        return rng.random() < MUTANT_SHARE[1 if wins else 0]

    def plan(self, index: int) -> Plan:
        """How program ``index`` is drawn."""
        self.weights(index // EPOCH)
        rng = Random(f"jaxsmith-guide:{self.seed}:{index}")
        if not self.parents or not self._mutant(rng):
            return self.fresh(index)
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
        return Plan(parent.epoch, mutate(parent.choices, mutation), mutation)

    @staticmethod
    def fresh(index: int) -> Plan:
        """The plan of a fresh draw of program ``index`` (also for a mutant that repeated
        a program the run had seen)."""
        return Plan(index // EPOCH)

    def observe(self, index: int, choices: Sequence[Any], found: Mapping[str, Iterable[str]],
                plan: Plan, program: Program | None = None) -> bool:
        """Count the features ``found`` in a stored record
        (``fuzz.campaign.features.record_features``, by kind) drawn by ``plan`` as
        ``program``; one that brings a new feature joins the pool, and its ops share the
        credit. Whether it did."""
        features = {f"{kind}:{name}" for kind, names in found.items() for name in names}
        new = frozenset(f for f in features if f not in self.seen)
        self.seen.update(features)
        drawn = set(program.ops) if program is not None else set()
        if program is not None:
            self.promised |= tree_features(program)
        for op in drawn:
            self.credit[op] += len(new) / len(drawn)
        tally = self.drawn["fresh" if plan.mutation is None else "mutant"]
        tally[0] += 1
        if new:
            tally[1] += 1
            self.parents.append(_Parent(index, tuple(choices), new, plan.epoch))
        return bool(new)

    def state(self) -> dict[str, Any]:
        """What replays the run's fresh draws: the op weights of each epoch."""
        return {"seed": self.seed, "programs_per_epoch": EPOCH, "weights": self.epochs}

    def stats(self) -> dict[str, Any]:
        return {"parents": len(self.parents), "mutants": self.drawn["mutant"][0],
                "mutants_with_new_features": self.drawn["mutant"][1],
                "fresh_with_new_features": self.drawn["fresh"][1],
                "epochs": len(self.epochs)}
