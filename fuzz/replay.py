"""``python -m fuzz replay DIR``: re-extract a corpus with the installed JAX and compare.

Every record of a corpus (its shards and its ``failures/*/repro.json``), or of a failures
folder, is first checked by ``grammar.validate`` (a source that fails is ``rejected`` and never
executed), then extracted again in an ``ExtractorPool`` with the same settings as the fuzz
loop, and compared field by field with what was stored.  Outcomes per record:

``unchanged``    extracts ok, every stored artifact is identical
``ir_changed``   extracts ok, some of jaxpr, stablehlo, hlo, hlo_optimized, cost, grad_* differ
``now_fails``    a corpus record that extracted ok now fails (a regression)
``fixed``        a saved failure now extracts ok
``still_fails``  a saved failure still fails (``signature_changed`` if it fails differently)
``rejected``     the source is not of the grammar's form: never executed
``malformed``    a line or file that is not a usable record: skipped

The artifacts are compared as the extractor writes them: they are already cleaned of
addresses, paths and other run-specific text, so equal programs give equal texts.  Compiles go
through JAX's persistent compilation cache (``--cache-dir``, by default
``~/.cache/jaxsmith/xla``), so a second replay of the same corpus compiles nothing.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from extract import ExtractorPool
from extract.failures import GRAD_STAGES
from fuzz.argtypes import positive_int, positive_seconds
from fuzz.budget import clock
from fuzz.status import StatusLine
from fuzz.store import FAILURES_DIR, MalformedLine, iter_records, shard_paths
from grammar.validate import validate

__all__ = ["COMPARED", "STATUSES", "Outcome", "Progress", "Report", "ReplayError",
           "default_cache_dir", "main", "replay"]

STATUSES = ("unchanged", "ir_changed", "now_fails", "fixed", "still_fails", "rejected",
            "malformed")
FORWARD = ("jaxpr", "stablehlo", "hlo", "hlo_optimized", "cost")
BACKWARD = ("grad_jaxpr", "grad_stablehlo", "grad_hlo", "grad_hlo_optimized", "grad_cost")
COMPARED = FORWARD + BACKWARD
"""The stored artifacts a replay compares."""

_KNOWN_LIMITATION = "known JAX limitation"  # how the fuzz loop marks forward-only records
_SNIPPET = 80


class ReplayError(ValueError):
    """The path cannot be replayed (not a corpus, cache directory unusable)."""


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/jaxsmith/xla``, or ``~/.cache/jaxsmith/xla``."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "jaxsmith" / "xla"


# -- results ------------------------------------------------------------------------------


@dataclass
class Outcome:
    """What replay found for one record.  ``where`` is ``file:line`` (shards) or the file."""

    status: str
    where: str
    id: str | None = None
    changed: dict[str, str] = field(default_factory=dict)
    failure: dict[str, Any] | None = None
    previous_signature: str | None = None
    signature_changed: bool = False
    problems: list[str] = field(default_factory=list)
    reason: str | None = None

    def describe(self) -> str:
        """One or a few lines for the human report."""
        head = f"{self.status:<11} {self.where}" + (f" [{self.id}]" if self.id else "")
        if self.status == "ir_changed":
            return "\n".join([head] + [f"    {k}: {v}" for k, v in self.changed.items()])
        if self.status in ("now_fails", "still_fails"):
            f = self.failure or {}
            known = f"known: {f['known']}" if f.get("known") else "UNEXPLAINED"
            line = f"{head}\n    [{known}] {f.get('signature')}"
            if self.signature_changed:
                line += f"\n    (was {self.previous_signature})"
            return line
        if self.status == "fixed":
            return f"{head}\n    was {self.previous_signature}"
        if self.status == "rejected":
            return "\n".join([head] + [f"    {p}" for p in self.problems])
        if self.status == "malformed":
            return f"{head}: {self.reason}"
        return head

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v not in (None, [], {}, False)}


@dataclass
class Report:
    """Everything one replay found; ``exit_code`` is 1 when it regressed."""

    path: str
    outcomes: list[Outcome]
    strict: bool
    elapsed_s: float
    versions: dict[str, Any]
    cache_dir: str | None

    @property
    def counts(self) -> dict[str, int]:
        found = Counter(o.status for o in self.outcomes)
        return {s: found.get(s, 0) for s in STATUSES}

    @property
    def regressed(self) -> bool:
        """A record that extracted ok now fails; with ``strict``, also any changed IR and any
        rejected or malformed record."""
        c = self.counts
        bad = c["now_fails"] + (c["ir_changed"] + c["rejected"] + c["malformed"]
                                if self.strict else 0)
        return bad > 0

    @property
    def exit_code(self) -> int:
        return 1 if self.regressed else 0

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "summary": {"records": len(self.outcomes), **self.counts, "strict": self.strict,
                        "regressed": self.regressed, "exit_code": self.exit_code,
                        "elapsed_s": round(self.elapsed_s, 3)},
            "versions": self.versions,
            "cache_dir": self.cache_dir,
            "results": [o.to_json() for o in self.outcomes],
        }

    def summary(self) -> str:
        c = self.counts
        parts = ", ".join(f"{n} {s}" for s, n in c.items() if n)
        stored = ", ".join(self.versions.get("stored_jax", [])) or "unknown"
        verdict = ("REGRESSED" if c["now_fails"] else "FAILED (--strict)") \
            if self.regressed else "ok"
        return (f"replayed {len(self.outcomes)} records of {self.path} in "
                f"{clock(self.elapsed_s)} with jax {self.versions.get('jax', '?')} (stored with "
                f"jax {stored}): {parts or 'nothing'} - {verdict}")

    def format(self) -> str:
        lines = [o.describe() for o in self.outcomes if o.status != "unchanged"]
        return "\n".join([*lines, self.summary()])


@dataclass(frozen=True)
class Progress:
    """A snapshot for the status line: records done of ``total``, outcomes so far."""

    done: int
    total: int
    counts: Mapping[str, int]
    elapsed_s: float

    def line(self) -> str:
        rate = self.done / max(self.elapsed_s, 1e-9)
        shown = " | ".join(f"{s} {self.counts.get(s, 0)}" for s in STATUSES)
        return f"#{self.done}/{self.total} {rate:.1f} rec/s | {shown} | {clock(self.elapsed_s)}" \
               " elapsed"


# -- reading the records ------------------------------------------------------------------


@dataclass
class _Item:
    where: str
    record: dict[str, Any]  # source, entry, args, id and the compared fields
    failure: dict[str, Any] | None = None  # the saved failure, for failures/*/repro.json


def _sources(root: Path) -> tuple[list[Path], list[Path]]:
    """The shards and the repro.json files under ``root``, whatever kind of folder it is."""
    if (root / "repro.json").is_file():  # one failure folder
        return [], [root / "repro.json"]
    shards = shard_paths(root)
    failures = root / FAILURES_DIR
    if shards or failures.is_dir():
        return shards, sorted(failures.glob("*/repro.json"))
    repros = sorted(root.glob("*/repro.json"))
    if repros:  # a failures folder itself
        return [], repros
    raise ReplayError(f"{str(root)!r} holds no corpus shards (shard-*.jsonl) and no failures "
                      "(*/repro.json)")


def _count(shards: list[Path], repros: list[Path]) -> int:
    total = len(repros)
    for shard in shards:
        with open(shard, "rb") as fh:
            total += sum(1 for raw in fh if raw.strip())
    return total


def _required(record: Mapping[str, Any]) -> str | None:
    """Why a decoded record cannot be replayed, or None."""
    if not isinstance(record.get("source"), str):
        return "field 'source' is missing or not a string"
    if not isinstance(record.get("entry"), str):
        return "field 'entry' is missing or not a string"
    if not isinstance(record.get("args"), list):
        return "field 'args' is missing or not a list"
    return None


def _slim(record: Mapping[str, Any]) -> dict[str, Any]:
    keep = ("id", "source", "entry", "args", "grad_skipped", "versions", *COMPARED)
    return {k: record[k] for k in keep if k in record}


def _items(root: Path, shards: list[Path], repros: list[Path]) -> Iterator[_Item | Outcome]:
    for file, line_no, rec in (iter_records(root) if shards else ()):
        where = f"{file}:{line_no}"
        if isinstance(rec, MalformedLine):
            yield Outcome("malformed", where, reason=rec.reason)
        elif (why := _required(rec)) is not None:
            yield Outcome("malformed", where, id=rec.get("id"), reason=why)
        else:
            yield _Item(where, _slim(rec))
    for file in repros:
        yield _repro(file)


def _repro(file: Path) -> _Item | Outcome:
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        return Outcome("malformed", f"{file}:{e.lineno}", reason=f"invalid JSON: {e.msg}")
    except (OSError, UnicodeDecodeError, RecursionError) as e:
        return Outcome("malformed", f"{file}:1", reason=f"unreadable: {e}")
    record = data.get("record") if isinstance(data, dict) else None
    if not isinstance(record, dict):
        return Outcome("malformed", f"{file}:1", reason="field 'record' is missing or not an "
                                                        "object")
    why = _required(record)
    if why is None and not isinstance(data.get("signature"), str):
        why = "field 'signature' is missing or not a string"
    if why is not None:
        return Outcome("malformed", f"{file}:1", reason=why)
    failure = record.get("failure") if isinstance(record.get("failure"), dict) else {}
    saved = {**failure, "signature": data["signature"], "known": data.get("known")}
    return _Item(str(file), _slim(record), failure=saved)


# -- comparing ----------------------------------------------------------------------------


def _text_diff(old: str | None, new: str | None) -> str:
    if old is None or new is None:
        def size(t):
            return "null" if t is None else f"{len(t.splitlines())} lines"
        return f"was {size(old)}, now {size(new)}"
    a, b = old.splitlines(), new.splitlines()
    i = next((k for k, (x, y) in enumerate(zip(a, b, strict=False)) if x != y),
             min(len(a), len(b)))
    before = repr(a[i][:_SNIPPET]) if i < len(a) else "(end)"
    after = repr(b[i][:_SNIPPET]) if i < len(b) else "(end)"
    return f"{len(a)} -> {len(b)} lines; first difference at line {i + 1}: {before} -> {after}"


def _cost_diff(old: Mapping | None, new: Mapping | None) -> str:
    if not isinstance(old, Mapping) or not isinstance(new, Mapping):
        return f"was {old!r:.{_SNIPPET}}, now {new!r:.{_SNIPPET}}"
    keys = sorted(set(old) | set(new))
    return "; ".join(f"{k} {old.get(k)} -> {new.get(k)}" for k in keys
                     if old.get(k) != new.get(k))


def _compare(stored: Mapping[str, Any], result: Mapping[str, Any],
             fields: tuple[str, ...]) -> dict[str, str]:
    """field -> a short diff, for every stored field the new extraction changed."""
    changed = {}
    for name in fields:
        if name not in stored:  # a hand-made record without it: nothing to compare
            continue
        old, new = stored[name], result.get(name)
        if old == new:
            continue
        changed[name] = _cost_diff(old, new) if name.endswith("cost") else _text_diff(old, new)
    return changed


def _failure(result: Mapping[str, Any]) -> dict[str, Any]:
    f = result.get("failure") or {}
    out = {k: f.get(k) for k in ("stage", "type", "signature", "known")}
    message = str(f.get("message") or "").strip().splitlines()
    out["message"] = message[0][:200] if message else ""
    return out


def _forward_only(stored: Mapping[str, Any], result: Mapping[str, Any]) -> bool:
    """A record the fuzz loop kept without its backward pass (a known JAX limitation) whose
    backward pass fails again with a known failure."""
    f = result.get("failure") or {}
    return (str(stored.get("grad_skipped") or "").startswith(_KNOWN_LIMITATION)
            and f.get("stage") in GRAD_STAGES and bool(f.get("known")))


def _grad_for(item: _Item, grad: bool) -> bool:
    if item.failure is not None:  # a backward failure is only reproduced with the backward pass
        return grad or item.failure.get("stage") in GRAD_STAGES
    return grad and item.record.get("grad_skipped") != "disabled"


def classify(item: _Item, result: Mapping[str, Any], grad: bool) -> Outcome:
    """The outcome of one replayed record."""
    rec = item.record
    ok = result.get("status") == "ok"
    if item.failure is not None:
        previous = item.failure.get("signature")
        if ok:
            return Outcome("fixed", item.where, rec.get("id"), previous_signature=previous)
        failure = _failure(result)
        return Outcome("still_fails", item.where, rec.get("id"), failure=failure,
                       previous_signature=previous,
                       signature_changed=failure["signature"] != previous)
    if ok or _forward_only(rec, result):
        fields = COMPARED if grad and ok else FORWARD
        changed = _compare(rec, result, fields)
        return Outcome("ir_changed" if changed else "unchanged", item.where, rec.get("id"),
                       changed=changed)
    return Outcome("now_fails", item.where, rec.get("id"), failure=_failure(result))


# -- the replay ---------------------------------------------------------------------------


def replay(path: str | os.PathLike, *, workers: int | None = None, grad: bool = True,
           strict: bool = False, timeout: float = 60.0,
           cache_dir: str | os.PathLike | None = None,
           progress: Callable[[Progress], None] | None = None) -> Report:
    """Re-extract every record under ``path`` and compare it with what was stored.

    ``path``: a corpus directory (its shards and ``failures/*/repro.json``), a failures
    folder, or one failure's folder.  ``workers``: extraction processes (default: the
    machine's cores).  ``grad=False`` skips every backward pass (and so compares only forward
    artifacts).  ``strict``: changed IR, rejected and malformed records count as regressions.
    ``timeout``: seconds per record.  ``cache_dir``: JAX's persistent compilation cache (None:
    none).  ``progress`` is called with a :class:`Progress` after every record.  Raises
    ``ReplayError`` when ``path`` holds nothing to replay.
    """
    root = Path(path)
    if not root.is_dir():
        raise ReplayError(f"{str(root)!r} is not a directory")
    workers = (os.cpu_count() or 1) if workers is None else workers
    if not isinstance(workers, int) or workers < 1:
        raise ReplayError(f"workers={workers!r} must be a positive int")
    if not timeout > 0:
        raise ReplayError(f"timeout={timeout!r} must be positive")
    if cache_dir is not None:
        cache_dir = Path(cache_dir)
        try:
            cache_dir.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise ReplayError(f"cannot create cache directory {str(cache_dir)!r}: "
                              f"{e.strerror or e}") from None
    shards, repros = _sources(root)
    total = _count(shards, repros)
    started = time.monotonic()
    outcomes: dict[int, Outcome] = {}
    counts: Counter = Counter()
    in_flight: dict[int, tuple[_Item, bool]] = {}
    stored_jax: set[str] = set()
    replayed: dict[str, Any] = {}
    pool: ExtractorPool | None = None

    def done(index: int, outcome: Outcome) -> None:
        outcomes[index] = outcome
        counts[outcome.status] += 1
        if progress is not None:
            progress(Progress(len(outcomes), max(total, len(outcomes)), dict(counts),
                              time.monotonic() - started))

    def collect(wait: float | None) -> None:
        for index, result in pool.poll(wait):
            item, task_grad = in_flight.pop(index)
            replayed.update(result.get("versions") or {})
            done(index, classify(item, result, task_grad))

    try:
        for index, item in enumerate(_items(root, shards, repros)):
            if isinstance(item, Outcome):
                done(index, item)
                continue
            versions = item.record.get("versions")
            if isinstance(versions, dict) and isinstance(versions.get("jax"), str):
                stored_jax.add(versions["jax"])
            problems = validate(item.record["source"], item.record["entry"])
            if problems:
                done(index, Outcome("rejected", item.where, item.record.get("id"),
                                    problems=problems))
                continue
            if pool is None:  # started on the first record that needs one
                pool = ExtractorPool(workers, timeout=timeout, grad=grad, cache_dir=cache_dir)
            task_grad = _grad_for(item, grad)
            try:
                pool.submit(index, item.record["source"], item.record["entry"],
                            item.record["args"], grad=task_grad)
            except ValueError as e:  # args the extractor cannot build
                done(index, Outcome("malformed", item.where, item.record.get("id"),
                                    reason=f"field 'args': {e}"))
                continue
            in_flight[index] = (item, task_grad)
            while pool.outstanding >= 2 * workers:
                collect(0.25)
        while pool is not None and pool.outstanding:
            collect(0.25)
    finally:
        if pool is not None:
            pool.close()
    versions = {**replayed, "stored_jax": sorted(stored_jax)}
    return Report(str(root), [outcomes[i] for i in sorted(outcomes)], strict,
                  time.monotonic() - started, versions,
                  None if cache_dir is None else str(cache_dir))


# -- the command line ---------------------------------------------------------------------


def parser(parser_class) -> Any:
    p = parser_class(prog="python -m fuzz replay", description=(
        "Re-extract every record of a corpus (or of a failures folder) with the installed JAX "
        "and report what changed.  Sources are validated against the grammar first and never "
        "executed when they do not fit it.  Exit status 0 when no record that used to extract "
        "now fails, 1 otherwise, 2 on bad arguments."))
    p.add_argument("path", metavar="DIR", type=Path,
                   help="a corpus directory, its failures/ folder, or one failure's folder")
    p.add_argument("--json", action="store_true",
                   help="print a machine-readable report (every record and a summary)")
    p.add_argument("--strict", action="store_true",
                   help="changed IR, rejected and malformed records also fail the replay")
    p.add_argument("--workers", type=positive_int("--workers"), default=os.cpu_count() or 1,
                   help="extraction worker processes; default: the machine's cores")
    p.add_argument("--no-grad", action="store_true",
                   help="skip the backward pass (compare forward artifacts only)")
    p.add_argument("--timeout", type=positive_seconds("--timeout"), default=60.0,
                   help="seconds one record may take before its worker is killed; default 60")
    p.add_argument("--cache-dir", type=Path, default=None,
                   help=f"JAX persistent compilation cache; default {default_cache_dir()}")
    p.add_argument("--no-cache", action="store_true",
                   help="do not use a persistent compilation cache")
    p.add_argument("--quiet", action="store_true",
                   help="no live status line: a log line every few seconds")
    return p


def main(argv, parser_class) -> int:
    """``python -m fuzz replay``; ``parser_class.error`` raises the CLI's usage error."""
    p = parser(parser_class)
    a = p.parse_args(list(argv))
    if a.no_cache and a.cache_dir is not None:
        p.error("--cache-dir and --no-cache exclude each other")
    cache_dir = None if a.no_cache else (a.cache_dir or default_cache_dir())
    status = StatusLine(a.quiet)
    try:
        report = replay(a.path, workers=a.workers, grad=not a.no_grad, strict=a.strict,
                        timeout=a.timeout, cache_dir=cache_dir,
                        progress=lambda p: status.update(p.line))
    except ReplayError as e:
        p.error(str(e))
    except KeyboardInterrupt:
        print("\ninterrupted: no report", file=sys.stderr)
        return 130
    status.finish()
    if a.json:
        print(json.dumps(report.to_json(), indent=1, sort_keys=True))
    else:
        print(report.format())
    return report.exit_code
