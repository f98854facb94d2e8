"""What a worker wrote to stderr before it died: where a native abort came from.

XLA reports a failed check on stderr, as a glog FATAL line, and then aborts::

    F1207 15:18:16.134914 4156 buffer_assignment_util.cc:46] Check failed: const_instr ...

followed by a C++ stack trace; LLVM says ``LLVM ERROR: ...``. Each worker's stderr goes to a
file of its own (:func:`new_log`, :func:`redirect_stderr`), emptied as each task starts
(:func:`start_task`), so the terminal stays the run's (unless the user asked for XLA's
logs: :func:`relay`), and the parent reads the abort's
source location from it when the worker dies (:func:`abort_site`): it becomes part of the
crash's signature (``crashed:SIGABRT:buffer_assignment_util.cc:46``), so two different
checks are two buckets, and a reduction keeps the check it started from.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile

__all__ = ["abort_site", "new_log", "redirect_stderr", "relay", "remove_log", "shows_logs",
           "start_task", "tail"]

_FATAL = re.compile(r"^F\d{4} [\d:.]+\s+\d+ ([\w.+-]+:\d+)\] (.*)$", re.M)
_LLVM = re.compile(r"^LLVM ERROR: (.*)$", re.M)
_TAIL_BYTES = 64 * 1024


def new_log() -> str:
    """A new empty file for one worker's stderr."""
    fd, path = tempfile.mkstemp(prefix="jaxsmith-worker-", suffix=".stderr")
    os.close(fd)
    return path


def redirect_stderr(path: str) -> int:
    """In the worker: file descriptor 2 (C++ and Python alike) appends to ``path``; returns
    a descriptor of the stderr it had (for :func:`relay`)."""
    terminal = os.dup(2)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND)
    os.dup2(fd, 2)
    os.close(fd)
    return terminal


def shows_logs() -> bool:
    """Whether this worker was started to show XLA's logs (the user set
    ``TF_CPP_MIN_LOG_LEVEL`` below 3): its log is then relayed to the terminal too."""
    return os.environ.get("TF_CPP_MIN_LOG_LEVEL", "3") != "3"


def relay(path: str, fd: int) -> None:
    """Copy the log at ``path`` to the descriptor ``fd``."""
    with contextlib.suppress(OSError), open(path, "rb") as f:
        os.write(fd, f.read())


def start_task() -> None:
    """In the worker: empty the log, so that it holds only this task's messages."""
    with contextlib.suppress(OSError):
        os.ftruncate(2, 0)


def tail(path: str | None) -> str:
    """The last 64 KiB of the log at ``path`` ('' if there is none)."""
    if path is None:
        return ""
    try:
        with open(path, "rb") as f:
            f.seek(max(0, os.fstat(f.fileno()).st_size - _TAIL_BYTES))
            return f.read().decode(errors="replace")
    except OSError:
        return ""


def abort_site(text: str) -> tuple[str, str] | None:
    """The source location and message of the first fatal check in ``text`` (a worker's
    stderr), or ``("LLVM", message)`` for an LLVM error; None if it has neither."""
    if fatal := _FATAL.search(text):
        return fatal[1], fatal[2].strip()
    if llvm := _LLVM.search(text):
        return "LLVM", llvm[1].strip()
    return None


def remove_log(path: str | None) -> None:
    """Remove a worker's log (nothing if it is gone already)."""
    if path is not None:
        with contextlib.suppress(OSError):
            os.remove(path)
