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

__all__ = ["dump_flags", "fired", "make_dump_dir", "remove_dump_dir"]

_AFTER = re.compile(r"\.after_([^.]+)\.before_[^.]+\.txt$")
_COPY_PHASE = re.compile(r"\.copy-insertion\.after_[^.]+\.txt$")
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
    """The sorted names of the passes dumped into ``path`` since it was last emptied
    (``pipeline-start`` aside), then empty it."""
    names: set[str] = set()
    try:
        entries = os.listdir(path)
    except OSError:
        return []
    for entry in entries:
        if m := _AFTER.search(entry):
            if m.group(1) != "pipeline-start":
                names.add(m.group(1))
        elif _COPY_PHASE.search(entry):
            names.add("copy-insertion")
        full = os.path.join(path, entry)
        if os.path.isdir(full):
            shutil.rmtree(full, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                os.unlink(full)
    return sorted(names)
