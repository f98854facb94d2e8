"""The Ray engine: ``ExtractorPool``'s interface over the actors of a Ray cluster.

Each actor (one CPU) holds a one-worker ``ExtractorPool``, so a program that hangs or
crashes kills and replaces that actor's worker process, exactly as on one machine, and
comes back classified (``timeout``, ``crashed``); an actor that dies itself (its node
lost, say) is replaced and its program is classified ``crashed:ray_actor``. The driver
keeps the dedup set: every StableHLO hash a result carries is added to it and sent to every
actor, and a replacement actor starts with the whole set. Programs are drawn and stored on
the driver, so a run's records are the same as with the local pool.

``ray`` is an optional extra (``pip install -e '.[ray]'``), imported when a pool starts.
Without an address the pool starts a local Ray instance of ``workers`` CPUs and shuts it
down on ``close``; with one it joins that cluster and on ``close`` kills its actors only.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Hashable, Iterable, Iterator, Mapping, Sequence
from typing import Any

from .inputs import RECIPE
from .levels import LEVELS, check_levels
from .oracles import ORACLES
from .pool import ExtractorPool, Task, make_task
from .worker import DEFAULT_LIMITS, ResourceLimits

__all__ = ["EngineError", "RayPool"]

OBJECT_STORE_BYTES = 200 * 2**20
"""Object store of a local instance: tasks and records are small, and Ray's default (30 %
of memory) would reserve gigabytes of shared memory for nothing."""


CPU_WAIT_S = 60.0
"""How long a pool waits for a cluster to offer one CPU per worker (nodes still joining, an
autoscaler adding them) before it gives up."""


class EngineError(RuntimeError):
    """Ray is missing, the cluster cannot be joined, or it has too few CPUs for the pool."""


class _Extractor:
    """A Ray actor: one extraction worker process, replaced when a program kills it."""

    def __init__(self, skip: list[str] | None, options: Mapping[str, Any]):
        self.pool = ExtractorPool(1, skip_hashes=skip, **options)

    def extract(self, task: Task) -> dict:
        self.pool.submit(task.task_id, task.source, task.entry, task.args, grad=task.grad,
                         timeout=task.timeout, seed=task.seed, oracles=task.oracles,
                         polymorphic_shapes=task.polymorphic_shapes, levels=task.levels,
                         recipe=task.recipe)
        for _, record in self.pool.results():
            return record
        raise RuntimeError("the extraction task vanished")  # pragma: no cover

    def add_skip_hashes(self, hashes: list[str]) -> None:
        self.pool.add_skip_hashes(hashes)

    def close(self) -> None:
        self.pool.close()


def _join(ray: Any, address: str | None, workers: int) -> None:
    """Start a local Ray instance of ``workers`` CPUs, or join the cluster at ``address``."""
    local = address is None
    try:
        ray.init(address="local" if local else address, include_dashboard=False,
                 log_to_driver=False, logging_level="ERROR",
                 **({"num_cpus": workers, "object_store_memory": OBJECT_STORE_BYTES}
                    if local else {}))
    except ConnectionError as e:
        raise EngineError(
            f"cannot join the Ray cluster at {address or 'local'}: {str(e).splitlines()[0]} "
            f"(a cluster with token authentication needs the same RAY_AUTH_TOKEN here as on "
            f"its nodes)") from None


def _lost(message: str) -> dict:
    return {"status": "crashed", "failure": {
        "stage": "compile", "type": "Crash", "message": message[:500],
        "signature": "crashed:ray_actor", "known": None, "signal": None}}


class RayPool:
    """``workers`` extraction actors on a Ray cluster (``address``; None: a local instance),
    with ``ExtractorPool``'s options and methods (``submit``, ``poll``, ``results``,
    ``outstanding``, ``add_skip_hashes``, ``close``). ``cpu_wait``: seconds to wait for the
    cluster to offer ``workers`` CPUs."""

    def __init__(self, workers: int, *, address: str | None = None, timeout: float = 60.0,
                 grad: bool = True, skip_hashes: Iterable[str] | None = None,
                 levels: Sequence[str] | None = LEVELS,
                 limits: ResourceLimits = DEFAULT_LIMITS, cpu_wait: float = CPU_WAIT_S,
                 **options: Any) -> None:
        if not isinstance(workers, int) or workers < 1:
            raise ValueError(f"workers={workers!r} must be a positive int")
        try:
            import ray
        except ImportError:
            raise EngineError("the Ray engine needs Ray: pip install -e '.[ray]'") from None
        self._ray = ray
        self._timeout, self._grad = float(timeout), bool(grad)
        self._levels = check_levels(levels)
        self._options = {"timeout": timeout, "grad": grad, "levels": self._levels,
                         "limits": limits, **options}
        self._skip = set(skip_hashes) if skip_hashes is not None else None
        self._owns = not ray.is_initialized()
        if self._owns:
            _join(ray, address, workers)
        deadline = time.monotonic() + cpu_wait
        while (cpus := ray.cluster_resources().get("CPU", 0)) < workers and \
                time.monotonic() < deadline:
            time.sleep(0.5)
        if cpus < workers:
            if self._owns:
                ray.shutdown()
            raise EngineError(f"{workers} workers need {workers} CPUs, and the Ray cluster at "
                              f"{address or 'local'} has {cpus:g}: ask for fewer workers, or "
                              f"add nodes")
        self._actor = ray.remote(num_cpus=1)(_Extractor)
        self._idle = [self._spawn() for _ in range(workers)]
        self._pending: deque[Task] = deque()
        self._running: dict[Any, tuple[Any, Task]] = {}  # result ref -> (actor, task)
        self._finished: deque[tuple[Hashable, dict]] = deque()
        self._closed = False

    # -- ExtractorPool's interface ------------------------------------------------------------

    def submit(self, task_id: Hashable, source: str, entry: str, args, *,
               grad: bool | None = None, timeout: float | None = None, seed: int = 0,
               oracles: Sequence[str] | None = ORACLES,
               polymorphic_shapes: Sequence[str] | None = None,
               levels: Sequence[str] | None = None, recipe: str = RECIPE) -> None:
        """Queue one task (checked here, as ``ExtractorPool.submit`` does)."""
        if self._closed:
            raise RuntimeError("submit() on a closed RayPool")
        self._pending.append(make_task(
            task_id, source, entry, args, grad=self._grad if grad is None else grad,
            timeout=self._timeout if timeout is None else timeout, seed=seed, oracles=oracles,
            polymorphic_shapes=polymorphic_shapes,
            levels=self._levels if levels is None else levels, recipe=recipe))
        self._dispatch()

    def poll(self, timeout: float | None = 0.0) -> list[tuple[Hashable, dict]]:
        """Results finished so far, waiting up to ``timeout`` seconds (None: no limit) for at
        least one."""
        self._dispatch()
        if not self._finished and self._running:
            ready, _ = self._ray.wait(list(self._running), num_returns=1, timeout=timeout)
            if ready:
                ready, _ = self._ray.wait(list(self._running), num_returns=len(self._running),
                                          timeout=0)
            for ref in ready:
                self._collect(ref)
            self._dispatch()
        out = list(self._finished)
        self._finished.clear()
        return out

    def results(self) -> Iterator[tuple[Hashable, dict]]:
        """Yield ``(task_id, record)`` as tasks finish, until none is outstanding."""
        while self._finished or self.outstanding:
            yield from self.poll(None)

    @property
    def outstanding(self) -> int:
        return len(self._pending) + len(self._running)

    def add_skip_hashes(self, hashes: Iterable[str]) -> None:
        """Share StableHLO hashes with every actor (and every later one)."""
        new = sorted(set(hashes))
        self._skip = (self._skip or set()) | set(new)
        for actor in self._actors():
            actor.add_skip_hashes.remote(new)

    def close(self) -> None:
        """Stop every actor and its worker; shut down the Ray instance this pool started."""
        if self._closed:
            return
        self._closed = True
        self._pending.clear()
        actors = self._actors()
        closing = [actor.close.remote() for actor in actors]
        try:
            self._ray.wait(closing, num_returns=len(closing), timeout=10)
        finally:
            for actor in actors:
                self._ray.kill(actor)
            self._running.clear()
            self._idle = []
            if self._owns:
                self._ray.shutdown()

    def __enter__(self) -> RayPool:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- internals ----------------------------------------------------------------------------

    def _spawn(self) -> Any:
        skip = None if self._skip is None else self._ray.put(sorted(self._skip))
        return self._actor.remote(skip, self._options)

    def _actors(self) -> list[Any]:
        return self._idle + [actor for actor, _ in self._running.values()]

    def _dispatch(self) -> None:
        while self._pending and self._idle:
            actor, task = self._idle.pop(), self._pending.popleft()
            self._running[actor.extract.remote(task)] = (actor, task)

    def _collect(self, ref: Any) -> None:
        actor, task = self._running.pop(ref)
        try:
            record = self._ray.get(ref)
        except self._ray.exceptions.RayError as e:  # the actor died, or raised
            self._ray.kill(actor)
            actor, record = self._spawn(), _lost(f"the Ray actor died: {e}")
        if self._skip is not None and "stablehlo_hash" in record:
            self._skip.add(record["stablehlo_hash"])
        self._idle.append(actor)
        self._finished.append((task.task_id, record))
