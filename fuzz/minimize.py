"""Failure minimisation with Hypothesis' shrinker, and standalone reproducers."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from hypothesis import HealthCheck, Phase, find, settings
from hypothesis import strategies as st
from hypothesis.database import InMemoryExampleDatabase, choices_to_bytes
from hypothesis.errors import NoSuchExample, Unsatisfiable

from grammar import Program

_KEY = b"jaxsmith-minimize"
GRAD_STAGES = ("grad_trace", "grad_lower", "grad_compile")


def shrink(strategy: st.SearchStrategy[Program], choices: tuple,
           still_fails: Callable[[Program], bool], *, max_calls: int = 150,
           max_seconds: float = 120.0) -> tuple[Program | None, int]:
    """The smallest program Hypothesis' shrinker finds, starting from ``choices``, for which
    ``still_fails`` holds; ``None`` if the original no longer fails.  Returns the number of
    extractions it spent too."""
    db = InMemoryExampleDatabase()
    # Under the secondary key: examples under the primary key count as already shrunk.
    db.save(_KEY + b".secondary", choices_to_bytes(choices))
    deadline = time.monotonic() + max_seconds
    calls = 0

    def condition(program: Program) -> bool:
        nonlocal calls
        if calls >= max_calls or time.monotonic() > deadline:
            return False
        calls += 1
        return still_fails(program)

    config = settings(database=db, phases=[Phase.reuse, Phase.shrink], max_examples=max_calls,
                      deadline=None, suppress_health_check=list(HealthCheck))
    try:
        return find(strategy, condition, settings=config, database_key=_KEY), calls
    except (NoSuchExample, Unsatisfiable):
        return None, calls


_FORWARD = "jax.jit(fn).lower(*abstract).compile()"
_BACKWARD = """\
def loss(*args):
        leaves = jax.tree_util.tree_leaves(fn(*args))
        return sum(jnp.sum(x.astype(jnp.float32)) for x in leaves
                   if jnp.issubdtype(x.dtype, jnp.floating))

    wrt = tuple(i for i, (_, d) in enumerate(ARGS) if jnp.issubdtype(jnp.dtype(d), jnp.floating))
    jax.jit(jax.grad(loss, argnums=wrt)).lower(*abstract).compile()"""


def reproducer(source: str, entry: str, args: list, failure: dict[str, Any],
               found_by: str) -> str:
    """A standalone script: the program, then a main block that raises the failure."""
    stage = failure.get("stage", "")
    steps = [_FORWARD] if stage not in GRAD_STAGES else []
    if stage in GRAD_STAGES or failure.get("type") in ("Timeout", "Crash"):
        steps.append(_BACKWARD)
    message = str(failure.get("message", "")).splitlines()[0][:200] if failure.get(
        "message") else ""
    shapes = [[list(shape), dtype] for shape, dtype in args]
    body = "\n    ".join(steps)
    return f'''"""jaxsmith reproducer: run with `python` to see the failure.

signature: {failure.get("signature")}
known:     {failure.get("known")}
stage:     {stage}
error:     {failure.get("type")}: {message}
found by:  {found_by}
"""
{source}

if __name__ == "__main__":
    ARGS = {shapes!r}
    abstract = [jax.ShapeDtypeStruct(tuple(s), jnp.dtype(d)) for s, d in ARGS]
    fn = {entry}
    {body}
    print("no error: the failure did not reproduce with jax", jax.__version__)
'''


@dataclass
class Job:
    """A first failure of a new signature, to minimise."""

    signature: str
    program: Program
    choices: tuple
    result: dict[str, Any]
    found_by: str


class Minimizer:
    """Minimises failures on a background thread with a one-worker extractor of its own,
    so the fuzz loop keeps its workers busy meanwhile."""

    def __init__(self, strategy: st.SearchStrategy[Program], make_pool: Callable[[], Any],
                 grad: bool, *, max_calls: int = 150, max_seconds: float = 120.0):
        self.strategy, self.grad = strategy, grad
        self.max_calls, self.max_seconds = max_calls, max_seconds
        self._make_pool = make_pool
        self._pool = None
        self._jobs: queue.Queue[Job | None] = queue.Queue()
        self.done: queue.Queue[tuple[Job, Program, int]] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="jaxsmith-minimizer", daemon=True)
        self._thread.start()

    def submit(self, job: Job) -> None:
        self._jobs.put(job)

    def _signature_of(self, program: Program, timeout: float) -> str | None:
        assert self._pool is not None
        self._pool.submit(0, program.source, program.entry, program.args, grad=self.grad,
                          timeout=timeout)
        for _, result in self._pool.results():
            failure = result.get("failure") or {}
            return failure.get("signature")
        return None

    def _run(self) -> None:
        while (job := self._jobs.get()) is not None:
            if self._pool is None:
                self._pool = self._make_pool()
            timeout = 10.0 if job.result.get("status") == "timeout" else 60.0
            best, calls = shrink(
                self.strategy, job.choices,
                lambda p, j=job, t=timeout: self._signature_of(p, t) == j.signature,
                max_calls=self.max_calls, max_seconds=self.max_seconds)
            self.done.put((job, best or job.program, calls))

    def shutdown(self, wait: float) -> None:
        """Stop taking jobs; wait up to ``wait`` seconds for the one in progress."""
        self._jobs.put(None)
        self._thread.join(wait)
        if self._pool is not None:
            self._pool.close()
