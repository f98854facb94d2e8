"""Which of XLA's HLO passes changed a program while it compiled.

A worker runs with ``--xla_dump_to=DIR --xla_dump_hlo_pass_re=.*``: with that regex exactly,
XLA writes the module after each pass that changed it, as
``module_<id>.<name>.<step>.<pipeline>.after_<pass>.before_<next>.txt`` (and
``...copy-insertion.after_<phase>.txt`` for copy insertion's phases). The extractor empties
``DIR`` before a compile and reads the pass names right after it, so each program's passes
are its own. ``DIR`` lives in RAM (``/dev/shm`` where there is one): the dump costs a few
per cent of a compile there.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import NamedTuple

__all__ = ["Reduction", "Step", "ddmin", "dump_flags", "fired", "latest_first", "make_dump_dir",
           "remove_dump_dir", "steps"]

_AFTER = re.compile(r"\.after_([^.]+)\.before_[^.]+\.txt$")
_COPY_PHASE = re.compile(r"\.copy-insertion\.after_[^.]+\.txt$")
_STEP = re.compile(r"^module_(\d+)\.(.+)\.(\d+)\.([^.]+)\.after_[^.]+(?:\.before_[^.]+)?\.txt$")
_SHM = "/dev/shm"
PREFIX = "jaxsmith-xla-dump-"


def dump_flags(path: str) -> str:
    """The XLA flags that dump each pass that changes a module into ``path``."""
    return f"--xla_dump_to={path} --xla_dump_hlo_pass_re=.*"


def make_dump_dir() -> str:
    """A new empty folder for one worker's dumps, in RAM where the machine has it, named
    after this (the parent) process; first, those of parents that are gone are removed
    (left by a kill of parent and workers at once, when neither could clean up)."""
    base = _SHM if os.path.isdir(_SHM) and os.access(_SHM, os.W_OK) else tempfile.gettempdir()
    with contextlib.suppress(OSError):
        for entry in os.listdir(base):
            pid = entry[len(PREFIX):].split("-", 1)[0]
            if entry.startswith(PREFIX) and pid.isdigit() and not _alive(int(pid)):
                shutil.rmtree(os.path.join(base, entry), ignore_errors=True)
    return tempfile.mkdtemp(prefix=f"{PREFIX}{os.getpid()}-", dir=base)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # another user's: alive
        return True
    return True


def remove_dump_dir(path: str | None) -> None:
    if path:
        shutil.rmtree(path, ignore_errors=True)


def fired(path: str) -> list[str]:
    """The names of the passes dumped into ``path`` since it was last emptied
    (``pipeline-start`` aside), latest first (:func:`latest_first`: the order the culprit
    search tries them in; ``sorted`` gives the record's), then empty it."""
    try:
        entries = os.listdir(path)
    except OSError:
        return []
    names = latest_first(steps(entries))
    for entry in entries:
        full = os.path.join(path, entry)
        if os.path.isdir(full):
            shutil.rmtree(full, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                os.unlink(full)
    return names


class Step(NamedTuple):
    """One dumped file: ``module``'s HLO after ``pass_name`` ran in ``pipeline``
    (``pipeline-start`` for a pipeline's first dump; each of copy insertion's phases counts as
    ``copy-insertion``)."""

    module_id: int
    step: int
    module: str
    pipeline: str
    pass_name: str
    file: str


def steps(names: Iterable[str]) -> list[Step]:
    """The pass dumps among the file ``names`` of a dump folder, ordered by module id, then
    step; unlike :func:`fired`, deletes nothing."""
    out = []
    for name in names:
        if not (m := _STEP.match(name)):
            continue
        if a := _AFTER.search(name):
            pass_name = a.group(1)
        elif _COPY_PHASE.search(name):
            pass_name = "copy-insertion"
        else:
            continue
        out.append(Step(int(m[1]), int(m[3]), m[2], m[4], pass_name, name))
    return sorted(out)


class Reduction(NamedTuple):
    """``passes``: the smallest set found that passes the test (None: none does);
    ``complete``: False when stopped by ``expired``, when ``passes`` may not be 1-minimal."""

    passes: tuple[str, ...] | None
    complete: bool


class _Expired(Exception):
    pass


def ddmin(items: Sequence[str], test: Callable[[frozenset[str]], bool], *, parallel: int = 1,
          expired: Callable[[], bool] = lambda: False) -> Reduction:
    """Zeller's ddmin: a 1-minimal subset of ``items`` that passes ``test`` (the empty set is
    taken to fail), or None when ``items`` itself fails. Parts are tried, then complements,
    ``parallel`` candidates at a time; the first success in order wins, so the result does not
    depend on timing. ``expired`` is asked before each batch."""
    seen: dict[frozenset[str], bool] = {}

    def first(candidates: list[tuple[str, ...]]) -> int | None:
        for start in range(0, len(candidates), parallel):
            if expired():
                raise _Expired
            batch = [frozenset(c) for c in candidates[start:start + parallel]]
            new = list(dict.fromkeys(k for k in batch if k not in seen))
            seen.update(zip(new, pool.map(test, new), strict=True))
            hit = next((i for i, k in enumerate(batch) if seen[k]), None)
            if hit is not None:
                return start + hit
        return None

    found: tuple[str, ...] | None = None
    with ThreadPoolExecutor(parallel) as pool:
        try:
            if not items or first([tuple(items)]) is None:
                return Reduction(None, True)
            found, n = tuple(items), 2
            while len(found) >= 2:
                parts = [found[k * len(found) // n:(k + 1) * len(found) // n] for k in range(n)]
                comps = [tuple(x for x in found if x not in p) for p in parts] if n > 2 else []
                hit = first(parts + comps)
                if hit is None:
                    if n >= len(found):
                        break
                    n = min(2 * n, len(found))
                elif hit < n:
                    found, n = parts[hit], 2
                else:
                    found, n = comps[hit - n], max(n - 1, 2)
        except _Expired:
            return Reduction(found, False)
    return Reduction(found, True)


def latest_first(dumped: Iterable[Step]) -> list[str]:
    """The passes that changed a module (``pipeline-start`` aside), latest first: ordered by
    the earliest step at which each did, descending, then by name. :func:`ddmin` keeps to the
    first parts it can, so when several sets would do, it finds late passes: those nearest the
    generated code, which usually make the wrong code rather than expose it to a later pass."""
    first: dict[str, int] = {}
    for s in dumped:
        if s.pass_name != "pipeline-start":
            first[s.pass_name] = min(s.step, first.get(s.pass_name, s.step))
    return sorted(first, key=lambda p: (-first[p], p))
