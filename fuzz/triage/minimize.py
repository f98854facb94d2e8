"""Failure minimisation: Hypothesis' shrink, statement spans and tree reduction, run by a
reducing thread (``Minimizer``) on the pool's workers."""

from __future__ import annotations

import queue
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, Phase, find, settings
from hypothesis import strategies as st
from hypothesis.database import InMemoryExampleDatabase, choices_from_bytes, choices_to_bytes
from hypothesis.errors import FlakyFailure, NoSuchExample, StopTest, Unsatisfiable
from hypothesis.internal.conjecture.data import ConjectureData

from extract.failures import ORACLE_STAGES
from extract.inputs import RECIPE
from extract.oracle_context import oracle_of, same_failure
from fuzz.triage.reduce import reduce, size
from grammar import STATEMENT_SPAN, Program

_KEY = b"jaxsmith-minimize"


def shrink(strategy: st.SearchStrategy[Program], choices: tuple,
           still_fails: Callable[[Program], bool], *, max_calls: int = 150,
           max_seconds: float = 120.0,
           stop: threading.Event | None = None) -> tuple[Program | None, int, tuple]:
    """The smallest program Hypothesis' shrinker finds, starting from ``choices``, for which
    ``still_fails`` holds; ``None`` if the original no longer fails.  Also returns how many
    extractions it spent, and the choices of the last program it shrank to.  Past
    ``max_calls``, ``max_seconds`` or ``stop``, untried candidates count as passing, and the
    best program so far is returned.

    Hypothesis deletes at most five choices at a time, and a statement takes more, so a
    statement that only feeds the failing one stays (one shrink in thirteen ended at 2 to 8
    statements where 1 fails): between shrinks, :func:`_drop_statements` deletes whole
    statement spans, and a shrink starts again from a deletion that still fails."""
    deadline = time.monotonic() + max_seconds
    seen: dict[tuple, bool] = {}
    best: list[Program] = []

    def spent() -> bool:
        return len(seen) >= max_calls or time.monotonic() > deadline or (
            stop is not None and stop.is_set())

    def condition(program: Program) -> bool:
        if spent():  # before rendering the source: past the budget nothing more is tried
            return False
        key = (program.source, repr(program.args))  # one source, other dtypes: another test
        if key not in seen:
            seen[key] = still_fails(program)
        if seen[key] and (not best or size(program) < size(best[0])):
            best[:] = [program]
        return seen[key]

    start: tuple | None = choices
    last = choices
    while start is not None and not spent():
        shrunk = _hypothesis_shrink(strategy, start, condition, max_calls)
        start = shrunk and _drop_statements(strategy, shrunk, condition, spent)
        last = start or shrunk or last
    return (best[0] if best else None), len(seen), last


def _hypothesis_shrink(strategy: st.SearchStrategy[Program], choices: tuple,
                       condition: Callable[[Program], bool], max_calls: int) -> tuple | None:
    """Hypothesis' shrink of ``choices`` under ``condition``: the choices of the smallest
    program it found, or ``None`` when the start no longer holds."""
    db = InMemoryExampleDatabase()
    # Under the secondary key: examples under the primary key count as already shrunk.
    db.save(_KEY + b".secondary", choices_to_bytes(choices))
    config = settings(database=db, phases=[Phase.reuse, Phase.shrink], max_examples=max_calls,
                      deadline=None, suppress_health_check=list(HealthCheck))
    try:
        find(strategy, condition, settings=config, database_key=_KEY)
    except (NoSuchExample, Unsatisfiable, FlakyFailure):
        return None
    return next((choices_from_bytes(b) for b in db.fetch(_KEY)), None)


def _replay(strategy: st.SearchStrategy[Program],
            choices: tuple) -> tuple[Program, ConjectureData] | None:
    """The program ``choices`` draw, and its (frozen) data; ``None`` when they run out."""
    data = ConjectureData.for_choices(choices)
    try:
        program = data.draw(strategy)
    except StopTest:
        return None
    data.freeze()
    return program, data


def _drop_statements(strategy: st.SearchStrategy[Program], choices: tuple,
                     condition: Callable[[Program], bool],
                     spent: Callable[[], bool]) -> tuple | None:
    """The choices less the longest run of top-level statement spans (the first run of
    that length) whose program still holds ``condition``; ``None`` if none does, or once
    the budget is ``spent``."""
    replayed = _replay(strategy, choices)
    spans = [] if replayed is None else [(s.start, s.end) for s in replayed[1].spans
                                         if s.label == STATEMENT_SPAN]
    for length in range(len(spans) - 1, 0, -1):
        for first, last in zip(spans, spans[length - 1:], strict=False):
            if spent():
                return None
            smaller = _replay(strategy, choices[:first[0]] + choices[last[1]:])
            if smaller is not None and condition(smaller[0]):
                return smaller[1].choices
    return None


@dataclass
class Job:
    """A first failure of a new signature, to reduce."""

    signature: str
    program: Program
    choices: tuple
    result: dict[str, Any]
    found_by: str
    seed: int = 0  # the input seed the failure was found with
    strategy: st.SearchStrategy[Program] | None = None  # drawn from (default: the minimiser's)
    grammar: dict[str, Any] | None = None  # programs()' arguments for ``strategy`` (resuming)
    backends: tuple[str, ...] = ()  # the run's --backend specs (resuming)
    grad: bool = True  # the run's --grad (resuming)
    found_at: float = field(default_factory=time.time)  # wall clock of the first failure
    recipe: str = RECIPE  # of the inputs the failure was found with (extract.inputs)


@dataclass
class Outcome:
    """What became of a job: the smallest failing program found and how."""

    job: Job
    program: Program
    choices: tuple  # of the smallest program Hypothesis found: where a resumed run starts
    state: str  # "done", "pending" (the budget ran out) or "not reproduced"
    extractions: int = 0
    seconds: float = 0.0
    steps: list[str] = field(default_factory=list)  # the tree passes that made each step
    side: list[dict[str, Any]] = field(default_factory=list)
    """Candidates that crashed with another signature than the job's: ``{"signature",
    "stage", "source", "entry", "args"}``, the first of each signature."""


class Minimizer:
    """Reduces failures on a background thread, on ``workers`` extraction workers of its own
    (a share of the run's), so the fuzz loop goes on meanwhile: Hypothesis' shrink and
    statement deletion, then the tree passes of :mod:`fuzz.triage.reduce`, candidates judged
    ``workers`` at a time. Past ``deadline`` (a ``time.monotonic()`` value the loop may set
    at any time) a job ends with its best program so far, and the jobs still queued end
    untouched, each as ``pending``."""

    def __init__(self, strategy: st.SearchStrategy[Program],
                 make_pool: Callable[[int], Any], grad: bool, *, workers: int = 1,
                 max_calls: int = 500, max_seconds: float = 240.0,
                 triage: Callable[[Path, Callable[[], float | None]], bool] | None = None):
        self.strategy, self.grad, self.workers = strategy, grad, max(1, workers)
        self.max_calls, self.max_seconds = max_calls, max_seconds
        self.deadline: float | None = None
        self._make_pool = make_pool
        self._triage = triage
        self._closed = False
        self.unfinished: list[str] = []  # folders whose triage the deadline cut short
        self._jobs: queue.Queue[Job | Path | None] = queue.Queue()
        self._stop = threading.Event()
        self._open = 0  # jobs submitted and not finished
        self._lock = threading.Lock()
        self.done: queue.Queue[Outcome] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="jaxsmith-minimizer", daemon=True)
        self._thread.start()

    def submit(self, job: Job | Path) -> None:
        """Queue a failure to reduce, or a saved failure folder to triage (after the
        reductions queued before it). After :meth:`shutdown` a job ends pending at once,
        and a folder is left unfinished."""
        if self._closed:
            self._give_up(job)
            return
        with self._lock:
            self._open += 1
        self._jobs.put(job)

    @property
    def waiting(self) -> int:
        """Jobs queued or in progress."""
        return self._open

    def now_deadline(self) -> float | None:
        """The deadline as it stands (the loop sets it late for a count budget); one that
        is past once the minimiser is stopped."""
        return float("-inf") if self._stop.is_set() else self.deadline

    def _past_deadline(self) -> bool:
        deadline = self.now_deadline()
        return deadline is not None and time.monotonic() > deadline

    def _give_up(self, job: Job | Path) -> None:
        """End ``job`` unfinished: a failure pending with its program as found, a folder
        left for ``python -m fuzz triage``."""
        if isinstance(job, Path):
            self.unfinished.append(job.name)
        else:
            self.done.put(Outcome(job, job.program, job.choices, "pending"))

    def _run(self) -> None:
        pool = None
        try:
            while (job := self._jobs.get()) is not None:
                try:
                    if isinstance(job, Path):
                        if not self._triaged(job):
                            self.unfinished.append(job.name)
                    elif self._past_deadline():
                        self._give_up(job)
                    else:
                        pool = pool or self._make_pool(self.workers)
                        outcome = self._reduce(job, pool)
                        if outcome is None:  # stopped mid-candidate: its workers were killed
                            pool.close()
                            pool = None
                            outcome = self._last
                        self.done.put(outcome)
                except Exception as e:  # noqa: BLE001 - one failure's reduction must not end
                    print(f"jaxsmith: reducing {getattr(job, 'signature', job)} stopped: "
                          f"{type(e).__name__}: {e}", file=sys.stderr, flush=True)
                    self._give_up(job)
                finally:
                    with self._lock:
                        self._open -= 1
        finally:
            if pool is not None:
                pool.close()

    def _triaged(self, folder: Path) -> bool:
        """Whether ``folder``'s triage finished; one that raises is left for ``python -m
        fuzz triage`` (which shows the error), and the run goes on."""
        try:
            return self._triage is not None and self._triage(folder, self.now_deadline)
        except Exception as e:  # noqa: BLE001 - a report step must not end the run
            print(f"jaxsmith: triage of {folder.name} stopped: {type(e).__name__}: {e}",
                  file=sys.stderr, flush=True)
            return False

    def _reduce(self, job: Job, pool: Any) -> Outcome | None:
        """``job`` reduced; None where the deadline came while candidates were extracting
        (the best program so far is then ``self._last``)."""
        started = time.monotonic()
        limit = started + self.max_seconds
        timeout = 10.0 if job.result.get("status") == "timeout" else 60.0
        stage = (job.result.get("failure") or {}).get("stage")
        oracles = [oracle_of(stage)] if oracle_of(stage) in ORACLE_STAGES else []
        calls = [0]
        side: dict[str, dict[str, Any]] = {}
        self._last = Outcome(job, job.program, job.choices, "pending")

        def spent() -> bool:
            return calls[0] >= self.max_calls or self._past_deadline() or \
                time.monotonic() > limit

        def still_fail(programs: Sequence[Program]) -> list[bool]:
            left = min(limit, self.now_deadline() or limit) - time.monotonic()
            for k, program in enumerate(programs):
                pool.submit(k, program.source, program.entry, program.args, grad=self.grad,
                            timeout=max(1.0, min(timeout, left)), seed=job.seed,
                            oracles=oracles, polymorphic_shapes=program.polymorphic_shapes,
                            recipe=job.recipe)
            calls[0] += len(programs)
            verdicts = [False] * len(programs)
            while pool.outstanding:
                if self._past_deadline():
                    raise _Stopped
                for k, result in pool.poll(0.25):
                    failure = result.get("failure") or {}
                    verdicts[k] = same_failure(failure.get("signature"), job.signature)
                    if result.get("status") == "crashed" and not verdicts[k]:
                        side.setdefault(failure.get("signature"), {
                            "signature": failure.get("signature"),
                            "stage": failure.get("stage"), "source": programs[k].source,
                            "entry": programs[k].entry, "args": programs[k].args})
            return verdicts

        def outcome(program: Program, choices: tuple, state: str,
                    steps: list[str] | None = None) -> Outcome:
            self._last = Outcome(job, program, choices, state, calls[0],
                                 time.monotonic() - started, steps or [], list(side.values()))
            return self._last

        # not ``job.strategy or ...``: bool() of a strategy draws a HypothesisWarning
        strategy = self.strategy if job.strategy is None else job.strategy
        share = started + min(_HYPOTHESIS_S, _HYPOTHESIS_SHARE * (
            min(limit, self.now_deadline() or limit) - started))
        try:
            best, shrinks, choices = shrink(
                strategy, job.choices, lambda p: still_fail([p])[0],
                max_calls=int(self.max_calls * _HYPOTHESIS_SHARE),
                max_seconds=share - time.monotonic(), stop=self._stop)
            calls[0] = shrinks
            if best is None:
                return outcome(job.program, job.choices,
                               "pending" if spent() else "not reproduced")
            outcome(best, choices, "pending")
            best, steps = reduce(best, still_fail, spent=spent, parallel=self.workers,
                                 progress=lambda p, steps: outcome(p, choices, "pending",
                                                                   list(steps)))
            return outcome(best, choices, "pending" if spent() else "done", steps)
        except _Stopped:
            return None

    def shutdown(self, finish: bool, wait: float,
                 cancelled: Callable[[], bool] = lambda: False) -> None:
        """Stop: with ``finish``, after the queued jobs (at most ``wait`` seconds, or until
        ``cancelled()``); else after the job in progress gives up (it returns its best
        program so far, and a candidate still extracting is killed). Jobs left then end
        as pending."""
        if not finish:
            self._stop.set()
        self._closed = True
        self._jobs.put(None)
        deadline = time.monotonic() + wait
        while self._thread.is_alive() and time.monotonic() < deadline and not cancelled():
            self._thread.join(0.25)
        self._stop.set()
        self._thread.join(_JOIN_S)


class _Stopped(Exception):
    """The deadline came while candidates were extracting."""


_JOIN_S = 30.0
"""The longest a stopped minimiser's thread is waited for: a triage step's subprocess that
ends by the deadline, or a pool's close."""

_HYPOTHESIS_SHARE, _HYPOTHESIS_S = 0.4, 20.0
"""The share of a job's calls and seconds Hypothesis' shrink may take, and at most that many
seconds; the tree passes, which cut a statement and all it alone feeds in one step, have the
rest. (Given 40 % of a count run's 240 s, the shrink of a 31-statement interpreter
discrepancy took 96 s to delete 3 statements.)"""
