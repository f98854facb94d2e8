"""A pool of extraction worker processes that survives hangs and native crashes.

Each worker is a ``spawn``-ed process with its own duplex pipe and runs one task at a time
(``extract.worker``: its session, resource limits and message checks). The parent records
when each in-flight task started and which stage it reached (the worker reports every stage
as it starts); a task past its timeout has its worker's whole session killed with SIGKILL
and the worker replaced, and yields ``status="timeout"``. A worker that dies on its own
(segfault, abort, ``os._exit``, a resource limit) or sends a malformed message yields
``status="crashed"`` and is replaced too. A crash or hang in an oracle's culprit search
(``<oracle>:culprit``: XLA compiling with passes disabled, which ``xla_disable_hlo_passes``
does not promise to support) is not the program's failure: the task runs again with the
search off, and its record says in ``culprit_search`` what stopped it.

The module stays above 400 lines because ``ExtractorPool`` is one state machine (spawn,
dispatch, pump, timeout, death, retirement over the same worker table) that reads best whole.

Protocol - parent to worker: ``("task", id, source, entry, args, grad, seed, oracles,
polymorphic_shapes, levels, culprit_search, recipe)``,
``("skip", hashes)``, ``("stop",)``; worker to parent: ``("ready",)``, ``("stage", id, stage)``,
``("result", id, record)``.

This module does not import JAX: the parent sets ``XLA_FLAGS`` (and, unless the user set it
to other than JAX's default, ``TF_CPP_MIN_LOG_LEVEL=3``) in the environment each worker is
spawned with, so XLA reads them before any backend exists.
"""

from __future__ import annotations

import atexit
import contextlib
import itertools
import os
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Hashable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from multiprocessing import connection, get_context
from typing import Any

from .args import check_polymorphic_shapes, leaves_of, normalize_args
from .backends import STAGE_PREFIX, load_all
from .crash_log import abort_site, new_log, remove_log, tail
from .inputs import RECIPE, check_inputs
from .levels import LEVELS, check_levels
from .oracle_context import CULPRIT_STAGE
from .oracles import ORACLES, check_oracles
from .passes import dump_flags, make_dump_dir, remove_dump_dir
from .worker import (
    DEFAULT_LIMITS,
    BadMessage,
    ResourceLimits,
    kill_group,
    read_message,
    worker_main,
)

__all__ = ["DEFAULT_LIMITS", "DEFAULT_XLA_FLAGS", "DEVICES", "ExtractorPool", "ResourceLimits",
           "extract"]

# Extra XLA_FLAGS for the workers; none: the programs' executables run and the oracles judge
# their values, so they are compiled the way users compile them. (The first wave compiled
# with --xla_backend_optimization_level=0, which left every artifact identical but changes
# LLVM's instruction selection, FMA contraction and vectorised reduction order - exactly
# where CPU miscompiles live.)
DEFAULT_XLA_FLAGS: str | None = None
DEVICES = 8
"""Virtual CPU devices each worker presents (``--xla_force_host_platform_device_count``), for
programs over a device mesh (``shard_map``); a single-device program runs on the first."""
_STARTUP_FAILURES = 3
_STARTUP_LINES = 20  # of the last worker's stderr, in the error when workers fail to start
_SITE_CHARS = 300  # of a failed check's message, in a crash's message
_environ_lock = threading.Lock()
# XLA logs an error with a C++ stack trace to stderr before raising it as an exception, which
# the worker records anyway: workers log fatal messages only, unless the user set the level.
# `import jax` sets the level to "1" where it is unset (jax/__init__.py), so "1" in a parent
# that imported JAX says nothing of the user: it counts as unset.
_LOG_LEVEL = "3"
_JAX_LOG_LEVEL = "1"
_WORKER_ENV = ("XLA_FLAGS", "TF_CPP_MIN_LOG_LEVEL")


def merge_xla_flags(existing: str | None, extra: str | None) -> str | None:
    """User flags win: an extra flag is added only if the user did not set the same flag."""
    if not extra:
        return existing
    have = {tok.split("=", 1)[0] for tok in (existing or "").split()}
    added = [tok for tok in extra.split() if tok.split("=", 1)[0] not in have]
    return " ".join([*(existing or "").split(), *added]) or None


@contextlib.contextmanager
def _main_hidden() -> Iterator[None]:
    """Hide the caller's ``__main__`` from ``spawn`` while a worker starts.

    ``spawn`` makes a child re-import the parent's main module (by its ``__spec__`` or its
    file) so that pickled objects from it resolve; a user's script without an
    ``if __name__ == "__main__":`` guard would then run again in the worker and fail. The
    worker's code lives in this module, so it needs nothing from ``__main__``.
    """
    main = sys.modules.get("__main__")
    saved = {k: getattr(main, k) for k in ("__spec__", "__file__") if hasattr(main, k)}
    try:
        if main is not None:
            main.__spec__ = None
            if "__file__" in saved:
                del main.__file__
        yield
    finally:
        for k, v in saved.items():
            setattr(main, k, v)


@dataclass
class Task:
    """One program to extract, as a worker receives it."""

    task_id: Hashable
    source: str
    entry: str
    args: tuple
    grad: bool
    timeout: float
    seed: int
    oracles: tuple[str, ...]
    polymorphic_shapes: tuple[str, ...] | None
    levels: tuple[str, ...]
    culprit_search: bool = True
    recipe: str = RECIPE


def make_task(task_id: Hashable, source: str, entry: str, args, *, grad: bool,
              timeout: float, seed: int, oracles: Sequence[str] | None,
              polymorphic_shapes: Sequence[str] | None, levels: Sequence[str] | None,
              recipe: str = RECIPE) -> Task:
    """One task, checked: invalid ``timeout``, ``args``, ``seed``, ``oracles``,
    ``polymorphic_shapes`` or ``levels`` raise ``ValueError`` here, not in a worker."""
    if not timeout > 0:
        raise ValueError(f"timeout={timeout!r} must be positive")
    wanted = check_oracles(oracles)
    check_inputs(args, seed, recipe)  # the program will run: fail here, not in the worker
    tree = normalize_args(args)
    shapes = (None if polymorphic_shapes is None
              else check_polymorphic_shapes(leaves_of(tree), polymorphic_shapes))
    return Task(task_id, str(source), str(entry), tree, bool(grad), float(timeout), seed, wanted,
                shapes, check_levels(levels), recipe=recipe)


@dataclass(eq=False)
class _Worker:
    process: Any
    conn: Any
    ready: bool = False
    task: Task | None = None
    started: float = 0.0
    stage: str | None = None
    done: int = 0
    dead: bool = False
    bad_message: str | None = None
    dump: str | None = None  # its XLA pass dump folder (extract.passes), removed when it ends
    log: str | None = None  # its stderr (extract.crash_log), removed when it ends

    def forget(self) -> None:
        """Remove what the worker leaves on disk: its dump folder and its stderr log."""
        remove_dump_dir(self.dump)
        remove_log(self.log)


def _own(stage: str, signature: str) -> str:
    """A timeout's or crash's signature, in a bucket of its own when a backend caused it."""
    return f"{stage}:{signature}" if stage.startswith(STAGE_PREFIX) else signature


def _failure(status: str, stage: str, kind: str, message: str, sig: str, **extra) -> dict:
    failure = {"stage": stage, "type": kind, "message": message, "signature": sig, "known": None}
    failure.update(extra)
    return {"status": status, "failure": failure}


class ExtractorPool:
    """``workers`` extraction processes; see the module docstring.

    ``timeout``: default seconds per task (``submit`` may override). ``grad``: default for
    the backward pass. ``skip_hashes``: StableHLO hashes to report as ``duplicate``; ``None``
    turns dedup off until ``add_skip_hashes`` is called. With dedup on, each worker also skips
    hashes it lowered itself (whatever the outcome after lowering), and the pool remembers
    every hash it saw so that replacement workers start with them. Not thread-safe.
    ``max_tasks_per_worker``: recycle a worker after this many tasks.
    ``clear_caches_every``: call ``jax.clear_caches()`` in a worker every this many tasks,
    and after any task that leaves it above ``CLEAR_ABOVE_RSS``
    (0: never). The default, 100, keeps worker RSS flat: over 600 grammar programs it stayed
    at ~385 MiB, against 495 MiB and growing without it.
    ``cache_dir``: JAX persistent compilation cache directory. ``jax_config``: ``jax.config``
    options applied in each worker (e.g. ``{"jax_enable_x64": True}``).
    ``xla_flags``: added to the user's ``XLA_FLAGS`` for the workers (user flags win).
    ``devices``: virtual CPU devices per worker (a user's own device-count flag wins).
    ``limits``: each worker's resource limits (``extract.worker.ResourceLimits``).
    ``levels``: default IR levels of a task (``extract.levels``; all of them).
    ``passes``: record the XLA passes each compile fires (``extract.passes``; each worker
    dumps into a RAM folder of its own, removed when the worker ends), unless the user's
    ``XLA_FLAGS`` dump somewhere already. ``backends``: specs of ``extract.backends`` that
    judge every program that runs; loaded here first, so a wrong one raises ``ValueError``.
    """

    def __init__(
        self,
        workers: int,
        *,
        timeout: float = 60.0,
        grad: bool = True,
        skip_hashes: Iterable[str] | None = None,
        max_tasks_per_worker: int = 500,
        clear_caches_every: int = 100,
        cache_dir: str | os.PathLike | None = None,
        jax_config: Mapping[str, Any] | None = None,
        xla_flags: str | None = DEFAULT_XLA_FLAGS,
        limits: ResourceLimits = DEFAULT_LIMITS,
        devices: int = DEVICES,
        levels: Sequence[str] | None = LEVELS,
        passes: bool = True,
        backends: Sequence[str] = (),
    ) -> None:
        if not isinstance(workers, int) or workers < 1:
            raise ValueError(f"workers={workers!r} must be a positive int")
        if not timeout > 0:
            raise ValueError(f"timeout={timeout!r} must be positive")
        if not isinstance(max_tasks_per_worker, int) or max_tasks_per_worker < 1:
            raise ValueError(f"max_tasks_per_worker={max_tasks_per_worker!r} must be >= 1")
        if not isinstance(clear_caches_every, int) or clear_caches_every < 0:
            raise ValueError(f"clear_caches_every={clear_caches_every!r} must be >= 0")
        self._ctx = get_context("spawn")
        self._timeout = float(timeout)
        self._grad = bool(grad)
        self._levels = check_levels(levels)
        self._passes = bool(passes)
        self._shows_logs = False  # the user asked for XLA's logs: set as workers start
        if isinstance(backends, str):
            raise ValueError(f"backends={backends!r} must be a list of specs")
        self._backends = tuple(backends)
        load_all(self._backends)
        self._skip = set(skip_hashes) if skip_hashes is not None else None
        self._max_tasks = max_tasks_per_worker
        self._clear_every = clear_caches_every
        self._cache_dir = os.fspath(cache_dir) if cache_dir is not None else None
        self._jax_config = dict(jax_config or {})
        if isinstance(devices, bool) or not isinstance(devices, int) or devices < 1:
            raise ValueError(f"devices={devices!r} must be a positive int")
        self._xla_flags = merge_xla_flags(
            xla_flags, f"--xla_force_host_platform_device_count={devices}")
        if not isinstance(limits, ResourceLimits):
            raise ValueError(f"limits={limits!r} must be an extract.worker.ResourceLimits")
        self._limits = limits
        self._pending: deque[Task] = deque()
        self._finished: deque[tuple[Hashable, dict]] = deque()
        self._retiring: list[_Worker] = []
        self._stopped_search: dict[Hashable, str] = {}  # task id -> what stopped its search
        self._startup_failures = 0
        self._closed = False
        self._workers = [self._spawn() for _ in range(workers)]

    # -- public API -------------------------------------------------------------------------

    def submit(
        self,
        task_id: Hashable,
        source: str,
        entry: str,
        args,
        *,
        grad: bool | None = None,
        timeout: float | None = None,
        seed: int = 0,
        oracles: Sequence[str] | None = ORACLES,
        polymorphic_shapes: Sequence[str] | None = None,
        levels: Sequence[str] | None = None,
        recipe: str = RECIPE,
    ) -> None:
        """Queue one task; never blocks on extraction. Invalid ``args``, ``seed``, ``recipe``,
        ``oracles``, ``polymorphic_shapes`` or ``levels`` raise here. The program runs on
        ``make_inputs(args, seed, recipe)`` and every oracle named in ``oracles`` checks it
        (``None`` or ``[]``: none); with ``polymorphic_shapes`` it is also exported over them.
        ``levels``: the IR levels extracted (``extract.levels``; default: the pool's)."""
        if self._closed:
            raise RuntimeError("submit() on a closed ExtractorPool")
        task = make_task(task_id, source, entry, args,
                         grad=self._grad if grad is None else bool(grad),
                         timeout=self._timeout if timeout is None else timeout, seed=seed,
                         oracles=oracles, polymorphic_shapes=polymorphic_shapes,
                         levels=self._levels if levels is None else levels, recipe=recipe)
        self._pending.append(task)
        self._dispatch()

    def poll(self, timeout: float | None = 0.0) -> list[tuple[Hashable, dict]]:
        """Results finished so far, waiting up to ``timeout`` seconds (None: no limit) for at
        least one. Returns ``[]`` when nothing finished in time or nothing is outstanding."""
        self._wait(timeout)
        out = list(self._finished)
        self._finished.clear()
        return out

    def results(self) -> Iterator[tuple[Hashable, dict]]:
        """Yield ``(task_id, record)`` as tasks finish, until none is outstanding. Stopping
        the iteration early loses nothing: later results stay for the next call."""
        while self._finished or self.outstanding:
            self._wait(None)
            while self._finished:
                yield self._finished.popleft()

    @property
    def outstanding(self) -> int:
        """Tasks submitted and not yet finished (queued or running)."""
        return len(self._pending) + sum(w.task is not None for w in self._workers)

    def add_skip_hashes(self, hashes: Iterable[str]) -> None:
        """Share StableHLO hashes (e.g. found by other workers) with every worker."""
        new = set(hashes)
        self._skip = (self._skip or set()) | new
        for w in self._workers:
            self._send(w, ("skip", sorted(new)))

    def close(self) -> None:
        """Stop every worker (killing those that do not exit promptly); drop queued tasks."""
        if self._closed:
            return
        self._closed = True
        self._pending.clear()
        workers, self._workers = self._workers + self._retiring, []
        self._retiring = []
        for w in workers:
            if w.task is not None:
                kill_group(w.process)
            else:
                self._send(w, ("stop",))
        for w in workers:
            w.process.join(2.0)
            kill_group(w.process)  # still running, or left children behind
            w.process.join()
            w.forget()
            w.conn.close()

    def __enter__(self) -> ExtractorPool:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- internals --------------------------------------------------------------------------

    def _wait(self, timeout: float | None) -> None:
        """Handle worker events until a result is finished, nothing is outstanding, or
        ``timeout`` seconds (None: no limit) have passed; always handles pending events once."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            wait = None if deadline is None else max(0.0, deadline - time.monotonic())
            self._pump(wait)
            if self._finished or not self.outstanding:
                return
            if deadline is not None and time.monotonic() >= deadline:
                return

    def _spawn(self) -> _Worker:
        parent_conn, child_conn = self._ctx.Pipe(duplex=True)
        user_dump = "--xla_dump_to" in (os.environ.get("XLA_FLAGS") or "")
        dump = make_dump_dir() if self._passes and not user_dump else None
        log = new_log()
        process = self._ctx.Process(
            target=worker_main,
            args=(
                child_conn,
                None if self._skip is None else sorted(self._skip),
                self._cache_dir,
                self._clear_every,
                self._jax_config,
                self._limits,
                dump,
                self._backends,
                log,
            ),
            name="jaxsmith-extract",
            daemon=True,
        )
        with _environ_lock:  # pools on other threads spawn too: restore exactly what we saw
            saved = {name: os.environ.get(name) for name in _WORKER_ENV}
            flags = f"{self._xla_flags or ''} {dump_flags(dump) if dump else ''}"
            wanted = {"XLA_FLAGS": merge_xla_flags(saved["XLA_FLAGS"], flags.strip()),
                      "TF_CPP_MIN_LOG_LEVEL": _LOG_LEVEL if saved["TF_CPP_MIN_LOG_LEVEL"] in
                      (None, "", _JAX_LOG_LEVEL) else saved["TF_CPP_MIN_LOG_LEVEL"]}
            self._shows_logs = wanted["TF_CPP_MIN_LOG_LEVEL"] != _LOG_LEVEL
            try:
                os.environ.update({k: v for k, v in wanted.items() if v is not None})
                with _main_hidden():
                    process.start()
            finally:
                for name, value in saved.items():
                    if value is None:
                        os.environ.pop(name, None)
                    else:
                        os.environ[name] = value
        child_conn.close()
        return _Worker(process, parent_conn, dump=dump, log=log)

    @staticmethod
    def _send(w: _Worker, msg) -> bool:
        try:
            w.conn.send(msg)
            return True
        except (OSError, ValueError):  # the worker is gone; its death is handled in _pump
            w.dead = True
            return False

    def _dispatch(self) -> None:
        for w in self._workers:
            if not self._pending:
                return
            if w.ready and w.task is None and not w.dead:
                task = self._pending.popleft()
                w.task, w.started, w.stage = task, time.monotonic(), None
                msg = ("task", task.task_id, task.source, task.entry, task.args, task.grad,
                       task.seed, task.oracles, task.polymorphic_shapes, task.levels,
                       task.culprit_search, task.recipe)
                if not self._send(w, msg):
                    w.task = None
                    self._pending.appendleft(task)

    def _pump(self, wait: float | None) -> None:
        """Wait up to ``wait`` seconds for worker events, then handle them all."""
        now = time.monotonic()
        for w in self._workers:
            if w.task is not None:
                left = w.started + w.task.timeout - now
                wait = left if wait is None else min(wait, left)
        handles = {}
        for w in self._workers:
            handles[w.conn] = w
            handles[w.process.sentinel] = w
        ready = connection.wait(list(handles), None if wait is None else max(0.0, wait))
        for handle in ready:
            w = handles[handle]
            if handle is w.conn:
                self._drain(w)
            else:
                w.dead = True
        for i, w in enumerate(self._workers):
            if w.dead:
                self._drain(w)
                self._workers[i] = self._on_death(w)
            elif w.task is not None and time.monotonic() - w.started > w.task.timeout:
                self._workers[i] = self._on_timeout(w)
        self._reap_retiring()
        self._dispatch()

    def _drain(self, w: _Worker) -> None:
        try:
            while not w.dead and w.conn.poll():
                self._handle(w, read_message(w.conn))
        except (EOFError, OSError):
            w.dead = True
        except BadMessage as e:  # the program wrote into the pipe: end that worker
            w.bad_message = str(e)
            kill_group(w.process)
            w.dead = True

    def _handle(self, w: _Worker, msg) -> None:
        kind = msg[0]
        if kind == "ready":
            w.ready = True
            self._startup_failures = 0
        elif kind == "stage":
            if w.task is not None and msg[1] == w.task.task_id:
                w.stage = msg[2]
        elif kind == "result":
            task_id, record = msg[1], msg[2]
            w.task, w.stage = None, None
            if (stopped := self._stopped_search.pop(task_id, None)) is not None:
                record["culprit_search"] = stopped
                if record.get("failure"):
                    record["failure"]["culprit_search"] = stopped
            w.done += 1
            if self._skip is not None and "stablehlo_hash" in record:
                self._skip.add(record["stablehlo_hash"])
            self._finished.append((task_id, record))
            if w.done >= self._max_tasks and not w.dead:
                self._send(w, ("stop",))
                w.dead = True  # replaced in _pump; its exit is reaped without a report
                w.task = None
                self._retiring.append(w)

    def _replace(self, w: _Worker) -> _Worker:
        w.conn.close()
        return self._spawn()

    def _on_timeout(self, w: _Worker) -> _Worker:
        task, stage = w.task, w.stage or "compile"
        kill_group(w.process)
        w.process.join()
        w.forget()
        message = f"extraction exceeded the {task.timeout:g} s timeout in stage {stage}"
        if self._search_again(task, stage, message):
            return self._replace(w)
        self._finished.append(
            (task.task_id, _failure("timeout", stage, "Timeout", message, _own(stage, "timeout")))
        )
        return self._replace(w)

    def _on_death(self, w: _Worker) -> _Worker:
        if w in self._retiring:
            return self._spawn()
        w.process.join(5.0)
        kill_group(w.process)  # children it left behind; itself, if only its pipe broke
        w.process.join()
        stderr = tail(w.log)
        if self._shows_logs:
            sys.stderr.write(stderr)
        w.forget()
        code = w.process.exitcode
        if w.bad_message is not None:
            sig, how, key = None, f"a malformed message ({w.bad_message})", "bad_message"
        elif code is not None and code < 0:
            try:
                sig = signal.Signals(-code).name
            except ValueError:
                sig = f"SIG{-code}"
            how, key = f"signal {sig}", sig
            if site := abort_site(stderr):  # a failed check: where, in the signature too
                how, key = f"{how} at {site[0]}: {site[1][:_SITE_CHARS]}", f"{sig}:{site[0]}"
            if sig == "SIGXCPU":
                how += f" (its CPU-time limit of {self._limits.cpu:g} s per task)"
        else:
            sig, how, key = None, f"exit code {code}", f"exit{code}"
        if w.task is not None:
            stage = w.stage or "compile"
            message = f"extraction worker {'sent' if w.bad_message else 'died with'} {how} in " \
                      f"stage {stage}"
            if self._search_again(w.task, stage, message):
                return self._replace(w)
            record = _failure("crashed", stage, "Crash", message, _own(stage, f"crashed:{key}"),
                              signal=sig)
            self._finished.append((w.task.task_id, record))
        elif not w.ready:
            self._startup_failures += 1
            if self._startup_failures >= _STARTUP_FAILURES:
                self.close()
                last = stderr.strip().splitlines()[-_STARTUP_LINES:]
                raise RuntimeError(f"extraction workers fail to start ({how}); the last worker's "
                                   "stderr ended:\n" + "\n".join(last))
        return self._replace(w)

    def _search_again(self, task: Task, stage: str, message: str) -> bool:
        """Queue ``task`` again without the culprit search if it crashed or hung in one."""
        if not (stage.endswith(CULPRIT_STAGE) and task.culprit_search):
            return False
        self._stopped_search[task.task_id] = message
        self._pending.appendleft(replace(task, culprit_search=False))
        return True

    def _reap_retiring(self) -> None:
        still = []
        for w in self._retiring:
            if w.process.is_alive():
                still.append(w)
            else:
                w.process.join()
                w.forget()
                w.conn.close()
        self._retiring = still


# -- the public one-shot API ----------------------------------------------------------------

_shared: ExtractorPool | None = None
_shared_lock = threading.Lock()
_task_ids = itertools.count()


def _close_shared() -> None:
    global _shared
    if _shared is not None:
        with contextlib.suppress(Exception):
            _shared.close()
        _shared = None


atexit.register(_close_shared)


def extract(source: str, entry: str, args, *, grad: bool = True, timeout: float = 60.0,
            seed: int = 0, oracles: Sequence[str] | None = ORACLES,
            polymorphic_shapes: Sequence[str] | None = None, recipe: str = RECIPE) -> dict:
    """Extract one program in a reused single-worker pool (started lazily, closed at exit),
    so a hang gives ``status="timeout"`` and a native crash ``status="crashed"``. The
    program runs on ``make_inputs(args, seed, recipe)``, checked by every oracle in ``oracles``;
    with ``polymorphic_shapes`` it is also exported over them."""
    global _shared
    with _shared_lock:
        if _shared is None or _shared._closed:
            _shared = ExtractorPool(1, timeout=timeout)
        task_id = ("extract", next(_task_ids))
        _shared.submit(task_id, source, entry, args, grad=grad, timeout=timeout, seed=seed,
                       oracles=oracles, polymorphic_shapes=polymorphic_shapes, recipe=recipe)
        for done_id, record in _shared.results():
            if done_id == task_id:
                return record
    raise RuntimeError("extraction task vanished")  # pragma: no cover
