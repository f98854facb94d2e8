"""Which of XLA's HLO passes a reproducer's failure depends on.

:func:`find_culprit` runs a reproducer script (exit 0 once the bug is gone) once with XLA's
pass dump on, reads which passes changed a module, then delta-debugs (:func:`ddmin`) over
those passes, each try running the script with ``--xla_disable_hlo_passes=...``, for a
1-minimal set whose disabling makes the script exit 0. The result (:class:`Culprit`) also
holds the HLO just before and after the first culprit pass, from the first run's dump, and
round-trips through JSON so that triage can resume from it.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from extract.passes import (
    Step,
    ddmin,
    dump_flags,
    latest_first,
    make_dump_dir,
    remove_dump_dir,
    steps,
)
from extract.pool import merge_xla_flags

__all__ = ["Culprit", "find_culprit", "hlo_change", "trim"]

_OWN_FLAGS = ("--xla_dump_to", "--xla_dump_hlo_pass_re", "--xla_disable_hlo_passes")
_HANG_S, _HANG_FACTOR = 10.0, 5.0
"""A try with passes disabled gets 5 times the first run's seconds, at least 10 s."""
_DIFF_LINES = 200
_HLO_LINES = 300


@dataclass(frozen=True)
class Culprit:
    """What :func:`find_culprit` found; ``passes`` is None when no set of passes was found."""

    fired: tuple[str, ...]
    passes: tuple[str, ...] | None
    reason: str
    runs: int
    seconds: float
    module: str | None = None
    hlo_before: str | None = None
    hlo_after: str | None = None
    diff: str | None = None

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=1)

    @classmethod
    def from_json(cls, text: str) -> Culprit:
        d = json.loads(text)
        return cls(**{**d, "fired": tuple(d["fired"]),
                      "passes": None if d["passes"] is None else tuple(d["passes"])})


def hlo_change(dumped: Sequence[Step], passes: Iterable[str]) -> dict[int, tuple[Step, Step]]:
    """Per module id, the dumps just before and just after the first of ``passes`` to change
    that module; ``after`` is the last of a run of that pass's dumps (copy insertion's
    phases). ``dumped`` is ordered as :func:`extract.passes.steps` orders it."""
    wanted, out = set(passes), {}
    for i, s in enumerate(dumped):
        if (s.pass_name in wanted and s.module_id not in out and i > 0
                and dumped[i - 1].module_id == s.module_id):
            j = i
            while (j + 1 < len(dumped) and dumped[j + 1].module_id == s.module_id
                   and dumped[j + 1].pass_name == s.pass_name):
                j += 1
            out[s.module_id] = (dumped[i - 1], dumped[j])
    return out


def trim(lines: list[str], spans: Iterable[tuple[int, int]], *, limit: int = _HLO_LINES,
         context: int = 15) -> str:
    """``lines`` whole when at most ``limit``; else the first line and those within ``context``
    of the changed ``spans`` (half-open ranges), at most ``limit``, gaps marked."""
    if len(lines) <= limit:
        return "\n".join(lines)
    keep = sorted({0} | {k for a, b in spans
                         for k in range(max(a - context, 0), min(b + context, len(lines)))})
    out, last = [], -1
    for k in keep[:limit]:
        if k > last + 1:
            out.append(f"... ({k - last - 1} lines)")
        out.append(lines[k])
        last = k
    if last < len(lines) - 1:
        out.append(f"... ({len(lines) - 1 - last} lines)")
    return "\n".join(out)


def _report(dump: str, dumped: list[Step], passes: Sequence[str]) -> dict[str, str]:
    """The module, trimmed HLO before/after and diff for the first culprit pass. Of the modules
    it changed, the largest (by HLO lines before the pass) is taken, the earliest on a tie:
    JAX's one-op eager modules are tiny, the user's jitted function usually is not."""
    pairs = list(hlo_change(dumped, passes).values())
    if not pairs:
        return {}
    texts = {s: Path(dump, s.file).read_text(errors="replace").splitlines()
             for pair in pairs for s in pair}
    before, after = min(pairs, key=lambda p: (-len(texts[p[0]]), p[0].module_id))
    a, b = texts[before], texts[after]
    ops = [op for op in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes()
           if op[0] != "equal"]
    diff = list(difflib.unified_diff(a, b, before.file, after.file, lineterm=""))
    if len(diff) > _DIFF_LINES:
        diff = [*diff[:_DIFF_LINES], f"... ({len(diff) - _DIFF_LINES} more diff lines)"]
    return {"module": before.module, "diff": "\n".join(diff),
            "hlo_before": trim(a, [(i1, i2) for _, i1, i2, _, _ in ops]),
            "hlo_after": trim(b, [(j1, j2) for _, _, _, j1, j2 in ops])}


def _run(script: str, python: str, flags: str, timeout: float) -> int | None:
    """The script's exit code with ``flags`` added to the user's XLA_FLAGS; None on timeout."""
    env = {**os.environ, "XLA_FLAGS": merge_xla_flags(os.environ.get("XLA_FLAGS"), flags)}
    try:
        return subprocess.run([python, script], env=env, timeout=max(timeout, 0.0),
                              stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, check=False).returncode
    except subprocess.TimeoutExpired:
        return None


def find_culprit(script: str | Path, *, python: str = sys.executable, timeout: float = 120.0,
                 parallel: int = 2,
                 deadline: float | Callable[[], float | None] | None = None) -> Culprit:
    """The smallest set of fired XLA passes whose disabling makes ``script`` exit 0.

    The first run gets ``timeout`` seconds, each try after it the same or, if less, five
    times the first's and at least 10 s (cut to what is left before ``deadline``, a
    :func:`time.monotonic` value, or a function that gives the deadline as it stands); a run
    that times out counts as still failing. Raises
    ValueError when the user's XLA_FLAGS already set the flags this search needs.
    """
    user = os.environ.get("XLA_FLAGS") or ""
    if clash := [f for f in _OWN_FLAGS if any(t.split("=")[0] == f for t in user.split())]:
        raise ValueError(f"XLA_FLAGS already sets {', '.join(clash)}: unset it for the search")
    script, start, runs = str(script), time.monotonic(), []

    def limit() -> float | None:
        return deadline() if callable(deadline) else deadline

    def run(flags: str, most: float = timeout) -> int | None:
        runs.append(flags)
        end = limit()
        left = most if end is None else min(most, end - time.monotonic())
        return _run(script, python, flags, left)

    def done(passes: tuple[str, ...] | None, reason: str, **hlo: str) -> Culprit:
        return Culprit(tuple(fired), passes, reason, len(runs),
                       round(time.monotonic() - start, 3), **hlo)

    dump = make_dump_dir()
    try:
        code = run(dump_flags(dump))
        # a run far longer than the script's own is a hang that disabling passes caused
        # (without copy-insertion, XLA:CPU can wait forever): it counts as still failing
        most = min(timeout, max(_HANG_S, _HANG_FACTOR * (time.monotonic() - start)))
        dumped = steps(os.listdir(dump))
        order = latest_first(dumped)
        fired = sorted(order)
        if code == 0:
            return done(None, "the script exits 0 without any pass disabled: "
                              "it does not reproduce")
        found, complete = ddmin(
            order, lambda s: run(f"--xla_disable_hlo_passes={','.join(sorted(s))}", most) == 0,
            parallel=parallel,
            expired=lambda: (end := limit()) is not None and time.monotonic() >= end)
        found = tuple(sorted(found)) if found else None
        if not complete:
            return done(found, f"out of time after {len(runs)} runs" + (
                f": disabling {', '.join(found)} makes it exit 0, maybe not minimal"
                if found else ""), **_report(dump, dumped, found or ()))
        if found is None and not fired:
            return done(None, "no XLA pass changed a module before the failure: it happens "
                              "before XLA's pipeline (tracing or lowering), or in passes "
                              "that change nothing")
        if found is None:
            return done(None, f"the script still fails with all {len(fired)} fired passes "
                              "disabled: the failure does not depend on XLA's passes")
        return done(found, f"disabling {', '.join(found)} makes the script exit 0 (1-minimal: "
                           "re-enabling any one of them brings the failure back)",
                    **_report(dump, dumped, found))
    finally:
        remove_dump_dir(dump)
