"""``python -m fuzz triage DIR``: finish each failure folder into a report a maintainer can
act on, with no person in the loop.

For each ``failures/<slug>/`` (a corpus' ``failures`` folder, a corpus, or one folder), in
order, each step's result kept in ``repro.json`` under ``record.triage`` so that a rerun
goes on where the last one stopped (a step with a result is not run again):

1. ``reduce``: a reduction the run left ``pending`` goes on (:mod:`fuzz.triage.minimize`), on
   ``--workers`` extraction workers; the folder's reproducer and record are rewritten;
2. ``run``: ``repro.py`` runs under this Python: exit status, output, versions, platform;
3. ``culprit``: for a wrong value or a crash, the XLA passes whose disabling makes it pass,
   by delta debugging over those that fired (:mod:`fuzz.triage.culprit`), with the HLO around it;
4. ``short``: the short plain-JAX reproducer (:mod:`fuzz.triage.short_repro`), kept if it fails;
   ``reference``: for a value discrepancy, how far each side is from the same program on
   float64 arguments, in ulps;
5. ``other``: with ``--python PATH``, ``repro.py`` under the other set-up's Python;
6. ``finding``: the registered finding it matches (:mod:`fuzz.triage.known_findings`);

then ``REPORT.md`` is written again (:mod:`fuzz.triage.report_md`). The fuzz loop runs the same
steps (but ``other``) on its reducing workers as soon as a folder is saved.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from extract.values import is_float, ulps_apart
from fuzz.argtypes import positive_int, positive_seconds
from fuzz.corpus.records import FAILURES_DIR
from fuzz.triage.culprit import find_culprit
from fuzz.triage.folder import save
from fuzz.triage.known_findings import match_finding
from fuzz.triage.report_md import culprit_passes, failure_class
from fuzz.triage.resume import resume_reduction
from fuzz.triage.short_repro import REFERENCE_MARK, reference_script, short_reproducer

__all__ = ["STEPS", "folders", "main", "run_script", "triage_folder"]

STEPS = ("reduce", "run", "culprit", "short", "reference", "other", "finding")
_OUTPUT_CHARS = 4000
_VERSIONS = ("import json, platform, sys\nimport jax, jaxlib\n"
             "print(json.dumps({'jax': jax.__version__, 'jaxlib': jaxlib.__version__, "
             "'python': platform.python_version(), 'platform': platform.platform(), "
             "'backend': jax.default_backend()}))")


def run_script(script: Path, python: str, timeout: float = 300.0) -> dict[str, Any]:
    """``script`` run with ``python`` in its folder: exit status (``-N`` for signal N,
    ``None`` past ``timeout``), the tail of its output, seconds."""
    started = time.monotonic()
    try:
        done = subprocess.run([python, script.name], cwd=script.parent, capture_output=True,
                              text=True, timeout=timeout, stdin=subprocess.DEVNULL)
        code, output = done.returncode, done.stdout + done.stderr
    except subprocess.TimeoutExpired as e:
        partial = e.stdout.decode(errors="replace") if isinstance(e.stdout, bytes) else ""
        code, output = None, f"(no exit after {timeout:.0f} s)\n{partial}"
    return {"exit": code, "output": output[-_OUTPUT_CHARS:],
            "seconds": round(time.monotonic() - started, 2)}


def versions_of(python: str, timeout: float = 120.0) -> dict[str, str]:
    """jax, jaxlib, Python and the platform of interpreter ``python``."""
    try:
        done = subprocess.run([python, "-c", _VERSIONS], capture_output=True, text=True,
                              timeout=timeout, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise ValueError(f"--python {python}: cannot run it: {e}") from None
    if done.returncode != 0:
        raise ValueError(f"--python {python}: cannot import jax there: "
                         f"{(done.stderr.strip().splitlines() or ['?'])[-1]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def folders(path: Path) -> list[Path]:
    """The failure folders under ``path``: a corpus, its failures folder, or one folder."""
    if (path / "repro.json").is_file():
        return [path]
    base = path / FAILURES_DIR if (path / FAILURES_DIR).is_dir() else path
    return sorted(p.parent for p in base.glob("*/repro.json"))


def _load(folder: Path) -> dict[str, Any]:
    return json.loads((folder / "repro.json").read_text(encoding="utf-8"))


def _short(folder: Path, record: dict[str, Any], python: str,
           timeout: float) -> dict[str, Any]:
    source = short_reproducer(record, culprit_passes(record))
    if source is None:
        return {"source": None, "exit": None, "reason": "no short form for this failure"}
    ran = _run_source(folder, source, python, timeout)
    return {"source": source, "exit": ran["exit"], "output": ran["output"]}


def _run_source(folder: Path, source: str, python: str, timeout: float) -> dict[str, Any]:
    """:func:`run_script` on ``source``, written to a scratch folder inside ``folder``."""
    with tempfile.TemporaryDirectory(dir=folder) as scratch:
        script = Path(scratch) / "script.py"
        script.write_text(source, encoding="utf-8")
        return run_script(script, python, timeout)


def _reference(folder: Path, record: dict[str, Any], python: str,
               timeout: float) -> dict[str, Any]:
    """How far each side of a value discrepancy is from the float64 reference, in ulps of
    the output's dtype (``fuzz.triage.short_repro.reference_script``)."""
    source = reference_script(record)
    if source is None:
        return {"outputs": None, "reason": "no float64 reference for this failure"}
    ran = _run_source(folder, source, python, timeout)
    lines = [ln for ln in ran["output"].splitlines() if ln.startswith(REFERENCE_MARK)]
    try:  # the marked line: warnings on stderr may follow it in the output
        rows = json.loads(lines[-1][len(REFERENCE_MARK):])
    except (ValueError, IndexError):
        return {"outputs": None, "reason": "the program does not run on float64 arguments"}
    outputs = []
    for dtype, got, other, ref in rows:
        if got is None or ref is None or not is_float(np.dtype(dtype)):
            continue
        want = np.asarray(ref, np.float64).astype(dtype)
        row: dict[str, Any] = {"dtype": dtype}
        for side, values in (("got", got), ("other", other)):
            if values is not None:
                v = np.asarray(values, np.float64).astype(dtype)
                row[side] = {"ulps": ulps_apart(v, want), "nan_differs": bool(
                    (np.isnan(v.astype(np.float64)) != np.isnan(want.astype(np.float64))).any())}
        outputs.append(row)
    return {"outputs": outputs}


def _culprit(folder: Path, record: dict[str, Any], python: str,
             deadline: Callable[[], float | None], parallel: int) -> dict[str, Any]:
    if failure_class(record) not in ("wrong value", "crash"):
        return {"passes": None, "reason": "not applicable: the failure is not in XLA's "
                                          "compiled code or values"}
    found = find_culprit(folder / "repro.py", python=python, parallel=parallel,
                         deadline=deadline)
    return json.loads(found.to_json())


def triage_folder(folder: Path, *, python: str = sys.executable,
                  other: str | None = None,
                  deadline: Callable[[], float | None] = lambda: None, parallel: int = 1,
                  reduce: Callable[[Path, dict], None] | None = None) -> bool:
    """Run the steps that ``folder`` still lacks; whether all of them are done (``False``
    when the deadline came first: ``deadline()`` gives it as it stands, a
    ``time.monotonic()`` value or None). ``reduce(folder, meta)`` goes on with a pending
    reduction first (the steps then run on the smaller program); without it (the fuzz
    loop) a pending folder gets the report of the smallest program so far."""
    meta = _load(folder)
    record = meta["record"]
    record.setdefault("triage", {})

    def late() -> bool:
        end = deadline()
        return end is not None and time.monotonic() > end

    def seconds(cap: float) -> float:  # a step's subprocess ends by the deadline too
        end = deadline()
        return cap if end is None else max(1.0, min(cap, end - time.monotonic()))

    if (record.get("reduction") or {}).get("state") == "pending" and reduce is not None:
        if late():  # without ``reduce``: a report of the smallest program so far
            return False
        reduce(folder, meta)
        meta = _load(folder)
        record = meta["record"]
        record.setdefault("triage", {})
    steps: dict[str, Callable[[], Any]] = {
        "run": lambda: {**run_script(folder / "repro.py", python, seconds(300)),
                        "versions": versions_of(python, seconds(120))},
        "culprit": lambda: _culprit(folder, record, python, deadline, parallel),
        "short": lambda: _short(folder, record, python, seconds(120)),
        "reference": lambda: _reference(folder, record, python, seconds(120)),
        "other": lambda: other and {**run_script(folder / "repro.py", other),
                                    "versions": versions_of(other)},
        "finding": lambda: _finding(record),
    }
    for name, step in steps.items():
        if record["triage"].get(name) is not None:
            continue
        if late():
            save(folder, meta)
            return False
        result = step()
        if result:
            record["triage"][name] = result
            save(folder, meta)
    if record["triage"].get("finished_at") is None:
        record["triage"]["finished_at"] = time.time()  # its report is complete
    save(folder, meta)
    return True


def _finding(record: dict[str, Any]) -> dict[str, Any]:
    """The registered finding the reduced program is an instance of."""
    culprit = culprit_passes(record)
    found = match_finding(str(record.get("signature", "")), record.get("ops") or [],
                          culprit[0] if len(culprit) == 1 else None)
    return {"number": found.number, "name": found.name, "title": found.title} if found \
        else {"number": None}


def main(argv: Sequence[str], parser: type) -> int:
    """``python -m fuzz triage``."""
    p = parser(prog="python -m fuzz triage", description=(
        "Finish failure folders into reports: go on with a pending reduction, find the "
        "culprit XLA pass, write a short reproducer and REPORT.md. Resumable: a step "
        "already done is not run again."))
    p.add_argument("path", type=Path, help="a corpus, its failures folder, or one folder")
    p.add_argument("--python", default=None, metavar="PATH",
                   help="the other set-up's Python (with its own jax): does it reproduce?")
    p.add_argument("--workers", type=positive_int("--workers"), default=os.cpu_count() or 1,
                   help="extraction workers for a pending reduction; default: the cores")
    p.add_argument("--max-seconds", type=positive_seconds("--max-seconds"), default=600.0,
                   help="seconds for each folder's pending reduction; default 600")
    a = p.parse_args(argv)
    if not a.path.exists():
        raise p.error(f"path {str(a.path)!r} does not exist")
    found = folders(a.path)
    if not found:
        raise p.error(f"no failure folder (failures/<slug>/repro.json) under {str(a.path)!r}")
    if a.python is not None:
        try:
            versions_of(a.python)  # a wrong path fails here, in one line
        except ValueError as e:
            p.error(str(e))
    status = 0
    for folder in found:
        started = time.monotonic()
        try:
            finished = triage_folder(
                folder, other=a.python, parallel=a.workers,
                reduce=lambda f, m: resume_reduction(f, m, workers=a.workers,
                                                     max_seconds=a.max_seconds))
            record = _load(folder)["record"]
        except (OSError, ValueError, KeyError, TypeError) as e:  # a folder it cannot read
            print(f"{folder.name}: not triaged: {type(e).__name__}: {e} (its repro.json must "
                  "be one that python -m fuzz wrote)", file=sys.stderr, flush=True)
            status = 1
            continue
        state = (record.get("reduction") or {}).get("state") or "not recorded"
        print(f"{folder.name}: {'done' if finished else 'out of time'} in "
              f"{time.monotonic() - started:.0f} s, {record.get('statements')} statements "
              f"(reduction {state}); "
              f"{folder / 'REPORT.md'}", flush=True)
    return status
