"""The extraction worker process: its resource limits, its main loop, and the check of every
message it sends, which the parent applies (``read_message``).

A worker runs untrusted programs, so it is fenced in three ways:

* it leads its own session (``os.setsid``), so the pool kills it with every process the
  program started (``kill_group``);
* it runs under ``setrlimit``: an address-space cap for the whole process (``memory``) and a
  CPU-time cap per task (``cpu``, re-armed at each task's start), which the kernel enforces
  even when the parent is gone;
* the parent unpickles its messages with no globals allowed and checks their shape, so a
  program that writes into the pipe ends as that worker's crash, never as the parent's.
"""

from __future__ import annotations

import contextlib
import io
import os
import pickle
import resource
import signal
from dataclasses import dataclass
from typing import Any

from .crash_log import redirect_stderr, relay, shows_logs, start_task
from .passes import fired, remove_dump_dir

__all__ = ["DEFAULT_LIMITS", "BadMessage", "ResourceLimits", "kill_group", "read_message",
           "worker_main"]

# A worker also clears JAX's caches after any task that leaves it above this RSS: the
# jit_eager oracle compiles every primitive of a program on its own, and those executables
# stay cached (measured: +27 MiB per program, 2.8 GiB per worker after 100 programs with
# every program checked; with a clear every 10 programs the growth levels off at ~0.5 GiB).
CLEAR_ABOVE_RSS = 1536 * 2**20
_WARMUP_SOURCE = "import jax.numpy as jnp\n\ndef f(x):\n    return jnp.sin(x).sum()\n"
_MAX_MESSAGE = 256 * 2**20
_STATUSES = frozenset({"ok", "failed", "duplicate"})


@dataclass(frozen=True)
class ResourceLimits:
    """Per-worker resource limits; None turns one off.

    ``memory``: bytes of address space (RLIMIT_AS) for the whole worker. An idle worker maps
    about 1.5 GiB; a program that asks for more than the rest fails to allocate (a failure
    or a crash of that program alone). ``cpu``: CPU seconds (RLIMIT_CPU) one task may use,
    all threads together; past it the kernel ends the worker with SIGXCPU.
    """

    memory: int | None = 8 * 2**30
    cpu: float | None = 600.0

    def __post_init__(self) -> None:
        if self.memory is not None and not (isinstance(self.memory, int)
                                            and self.memory >= 2**30):
            raise ValueError(f"memory limit {self.memory!r} must be None or an int of bytes "
                             ">= 1 GiB (a worker needs about 1.5 GiB)")
        if self.cpu is not None and not self.cpu >= 1:
            raise ValueError(f"cpu limit {self.cpu!r} must be None or >= 1 second")


DEFAULT_LIMITS = ResourceLimits()


def _apply_memory(limits: ResourceLimits) -> None:
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # a killed worker leaves no core file
    if limits.memory is not None:
        _, hard = resource.getrlimit(resource.RLIMIT_AS)
        soft = limits.memory if hard == resource.RLIM_INFINITY else min(limits.memory, hard)
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def _arm_cpu(limits: ResourceLimits) -> None:
    """Allow this task ``limits.cpu`` more CPU seconds than the worker has used so far."""
    if limits.cpu is None:
        return
    usage = resource.getrusage(resource.RUSAGE_SELF)
    soft = int(usage.ru_utime + usage.ru_stime + limits.cpu) + 1
    _, hard = resource.getrlimit(resource.RLIMIT_CPU)
    resource.setrlimit(resource.RLIMIT_CPU, (
        soft if hard == resource.RLIM_INFINITY else min(soft, hard), hard))


def kill_group(process: Any) -> None:
    """SIGKILL a worker and every process in its session; tolerates one already gone."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    with contextlib.suppress(OSError, ValueError):
        process.kill()


# -- messages -------------------------------------------------------------------------------


class BadMessage(Exception):
    """A worker sent something that is not a message of the protocol."""


class _NoGlobals(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        raise BadMessage(f"a worker message may hold plain data only, not {module}.{name}")


def read_message(conn: Any) -> tuple:
    """One message from a worker's pipe, checked: ``("ready",)``, ``("stage", id, str)`` or
    ``("result", id, {"status": ...})``.  Raises ``BadMessage`` for anything else and
    ``EOFError``/``OSError`` when the pipe is closed."""
    data = conn.recv_bytes(_MAX_MESSAGE)
    try:
        msg = _NoGlobals(io.BytesIO(data)).load()
    except BadMessage:
        raise
    except Exception as e:
        raise BadMessage(f"an undecodable message ({type(e).__name__})") from None
    ok = isinstance(msg, tuple) and msg and (
        (msg[0] == "ready" and len(msg) == 1)
        or (msg[0] == "stage" and len(msg) == 3 and isinstance(msg[2], str))
        or (msg[0] == "result" and len(msg) == 3 and isinstance(msg[2], dict)
            and msg[2].get("status") in _STATUSES))
    if not ok:
        raise BadMessage(f"an unexpected message {str(msg)[:80]!r}")
    return msg


# -- the worker process ---------------------------------------------------------------------


def _rss_bytes() -> int:
    """This process's resident set size (0 where /proc is missing)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def worker_main(conn, skip_hashes, cache_dir, clear_every, jax_config, limits,
                dump=None, backends=(), log=None) -> None:
    """Worker process: extract tasks one at a time until told to stop or the pipe closes.

    A closed pipe (the parent is gone) ends the worker quietly. ``dump``: its XLA pass dump
    folder, removed when it ends (the parent removes it after a kill). ``backends``: specs
    of the ``extract.backends`` every task runs through. ``log``: the file its stderr goes
    to (``extract.crash_log``), emptied as each task starts.
    """
    terminal = redirect_stderr(log) if log is not None else None
    os.setsid()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C
    _apply_memory(limits)
    try:
        with contextlib.suppress(BrokenPipeError, EOFError, ConnectionError):
            _serve(conn, skip_hashes, cache_dir, clear_every, jax_config, limits, dump,
                   backends, log, terminal if shows_logs() else None)
    finally:
        remove_dump_dir(dump)


def _serve(conn, skip_hashes, cache_dir, clear_every, jax_config, limits, dump,
           backends, log, terminal) -> None:
    import jax

    for name, value in (jax_config or {}).items():
        jax.config.update(name, value)
    from .backends import load_all
    from .core import extract_in_process, set_cache_dir
    from .failures import classify

    set_cache_dir(cache_dir)
    loaded = load_all(backends)
    # Warm up (backend, first-use lowering and compile paths) so that the first task's
    # timings and timeout are like every other task's.
    extract_in_process(_WARMUP_SOURCE, "f", [((2,), "float32")])
    skip = set(skip_hashes) if skip_hashes is not None else None
    conn.send(("ready",))
    done = 0
    while True:
        msg = conn.recv()
        if msg[0] == "stop":
            return
        if msg[0] == "skip":
            skip = (skip or set()) | set(msg[1])
            continue
        (_, task_id, source, entry, args, task_grad, seed, oracles, shapes, levels, culprit,
         recipe) = msg
        stage = ["trace"]
        if log is not None:
            start_task()

        def on_stage(name, task_id=task_id, stage=stage):
            stage[0] = name
            conn.send(("stage", task_id, name))

        _arm_cpu(limits)
        try:
            record = extract_in_process(
                source, entry, args, grad=task_grad, skip_hashes=skip, on_stage=on_stage,
                seed=seed, oracles=oracles, polymorphic_shapes=shapes, levels=levels,
                pass_dump=dump, backends=loaded, culprit_search=culprit, recipe=recipe,
            )
        except BaseException as exc:  # KeyboardInterrupt & co. raised by the program itself
            record = {"status": "failed", "failure": classify(stage[0], exc)}
        if dump is not None:
            fired(dump)  # leave the folder empty between programs
        if skip is not None and record["status"] != "duplicate" and "stablehlo_hash" in record:
            skip.add(record["stablehlo_hash"])
        if terminal is not None:
            relay(log, terminal)
        conn.send(("result", task_id, record))
        done += 1
        if clear_every and (done % clear_every == 0 or _rss_bytes() > CLEAR_ABOVE_RSS):
            jax.clear_caches()
