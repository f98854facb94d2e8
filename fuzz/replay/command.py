"""``python -m fuzz replay DIR``: re-extract a corpus with the installed JAX and compare.

Every record of a corpus (its shards and its ``failures/*/repro.json``), or of a failures
folder, is first checked by ``grammar.validate`` (a source that fails is ``rejected`` and never
executed), then extracted again in an ``ExtractorPool`` on its recorded inputs
(``inputs.seed``; seed 0 for a record without them), with no oracle unless ``oracles`` names
some, and compared with what was stored.  Outcomes per record, the first that applies:

``value_changed`` extracts ok, but its ``outputs`` or ``grad_outputs`` no longer agree with the
                  stored ones within ``extract.compare_summaries``' tolerances (a regression)
``ir_changed``    extracts ok, the canonical form of some artifact (jaxpr, stablehlo, hlo,
                  hlo_optimized, grad_*) or a cost differs
``text_changed``  extracts ok, some texts differ but only by renumbering and annotations
``unchanged``     extracts ok, every stored artifact is identical
``now_fails``     a corpus record that extracted ok now fails, an oracle included (a regression)
``fixed``         a saved failure now extracts ok
``still_fails``   a saved failure still fails (``signature_changed`` if it fails differently)
``rejected``      the source is not of the grammar's form: never executed
``malformed``     a line or file that is not a usable record: skipped

Canonical forms are ``fuzz.replay.diff``'s; the report ends with a summary of what the
release changed in compiled quality (costs and optimized-HLO instruction counts).  Compiles
go through JAX's persistent compilation cache (``--cache-dir``, by default
``~/.cache/jaxsmith/xla``), so a second replay of the same corpus compiles nothing.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from extract import ORACLES, ExtractorPool
from extract.failures import GRAD_STAGES
from extract.inputs import RECIPE
from extract.oracles import check_oracles
from extract.worker import DEFAULT_LIMITS, ResourceLimits
from fuzz.argtypes import add_limit_options, limits, oracle_list, positive_int, positive_seconds
from fuzz.campaign.status import StatusLine
from fuzz.corpus.records import FAILURES_DIR, MalformedLine, iter_file, shard_paths
from fuzz.replay.diff import COMPARED, STATUSES, Outcome, classify
from fuzz.replay.results import Progress, Report
from grammar.validate import check_args, validate

__all__ = ["COMPARED", "STATUSES", "Outcome", "Progress", "Report", "ReplayError",
           "default_cache_dir", "main", "replay"]


class ReplayError(ValueError):
    """The path cannot be replayed (not a corpus, cache directory unusable, bad option)."""


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/jaxsmith/xla``, or ``~/.cache/jaxsmith/xla``."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "jaxsmith" / "xla"


# -- reading the records ------------------------------------------------------------------


@dataclass
class _Item:
    where: str
    record: dict[str, Any]  # source, entry, args, id, inputs and the compared fields
    failure: dict[str, Any] | None = None  # the saved failure, for failures/*/repro.json

    @property
    def seed(self) -> int:
        """The seed of the record's inputs (a saved failure keeps it as ``inputs_seed``; an
        older record has none: 0)."""
        inputs = self.record.get("inputs")
        return inputs["seed"] if inputs is not None else self.record.get("inputs_seed") or 0

    @property
    def recipe(self) -> str:
        """The recipe of the record's inputs (``extract.inputs``; a saved failure keeps it as
        ``inputs_recipe``; an older record has none: ``jaxsmith-inputs/1``)."""
        inputs = self.record.get("inputs")
        return inputs["recipe"] if inputs is not None else \
            self.record.get("inputs_recipe") or RECIPE


def _folder(root: Path) -> tuple[list[Path], list[Path]]:
    """The JSONL files and repro.json files in folder ``root``, whatever kind of folder."""
    if (root / "repro.json").is_file():  # one failure folder
        return [], [root / "repro.json"]
    files = shard_paths(root) or sorted(p for p in root.glob("*.jsonl") if not p.is_dir())
    failures = root / FAILURES_DIR
    repros = sorted((failures if failures.is_dir() else root).glob("*/repro.json"))
    if not files and not repros:
        raise ReplayError(f"{str(root)!r} holds no records: no *.jsonl file and no failures "
                          "(*/repro.json)")
    return files, repros


def _sources(paths: Sequence[Path]) -> tuple[list[Path], list[Path]]:
    """The JSONL files and the repro.json files named by ``paths``, in order: a file is read
    as JSONL (one record per line) unless it is named repro.json; a folder gives its shards
    (or else its ``*.jsonl``) and its saved failures."""
    files: list[Path] = []
    repros: list[Path] = []
    for root in paths:
        if root.is_dir():
            more_files, more_repros = _folder(root)
        elif root.is_file():
            more_files, more_repros = ([], [root]) if root.name == "repro.json" else ([root], [])
        else:
            raise ReplayError(f"{str(root)!r} does not exist (expected a JSONL file, a corpus "
                              "folder or a failures folder)")
        files += [f for f in more_files if f not in files]
        repros += [f for f in more_repros if f not in repros]
    return files, repros


def _count(files: list[Path], repros: list[Path]) -> int:
    total = len(repros)
    for file in files:
        try:
            with open(file, "rb") as fh:
                total += sum(1 for raw in fh if raw.strip())
        except OSError:  # reported as malformed when read
            total += 1
    return total


def _required(record: Mapping[str, Any]) -> str | None:
    """Why a decoded record cannot be replayed, or None."""
    if not isinstance(record.get("source"), str):
        return "field 'source' is missing or not a string"
    if not isinstance(record.get("entry"), str):
        return "field 'entry' is missing or not a string"
    if not isinstance(record.get("args"), list):
        return "field 'args' is missing or not a list"
    inputs = record.get("inputs")
    seed = inputs.get("seed") if isinstance(inputs, Mapping) else (
        record.get("inputs_seed") or 0 if inputs is None else None)
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**63:
        return "field 'inputs' must be null or {'seed': int in [0, 2**63), 'recipe': str}"
    return None


def _judge(record: Mapping[str, Any]) -> list[str]:
    """Why a record's source or arguments are not what the grammar generates (empty: it may
    run).  A record that cannot be judged is refused too: this never raises."""
    try:
        return (validate(record["source"], record["entry"])
                + [f"line 1: {p}" for p in check_args(record["args"])])
    except Exception as e:  # pragma: no cover - validate and check_args do not raise
        return [f"line 1: record cannot be checked ({type(e).__name__}: {str(e)[:200]})"]


def _slim(record: Mapping[str, Any]) -> dict[str, Any]:
    keep = ("id", "source", "entry", "args", "polymorphic_shapes", "levels", "grad_skipped",
            "versions", "inputs", "inputs_seed", "outputs", "grad_outputs", "sensitive",
            *COMPARED)
    return {k: record[k] for k in keep if k in record}


def _items(files: list[Path], repros: list[Path]) -> Iterator[_Item | Outcome]:
    for file, line_no, rec in (row for f in files for row in iter_file(f)):
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


def _task(item: _Item, grad: bool, oracles: tuple[str, ...]) -> tuple[bool, tuple[str, ...]]:
    """The backward pass and oracles one record runs with: a saved failure is reproduced with
    the backward pass or the oracle it failed in."""
    if item.failure is None:
        return grad and item.record.get("grad_skipped") != "disabled", oracles
    stage = item.failure.get("stage")
    if stage in ORACLES and stage not in oracles:
        oracles = (*oracles, stage)
    return grad or stage in GRAD_STAGES or stage == "autodiff", oracles


# -- the replay ---------------------------------------------------------------------------


def replay(path: str | os.PathLike | Sequence[str | os.PathLike], *,
           workers: int | None = None, grad: bool = True, strict: bool = False,
           timeout: float = 60.0,
           cache_dir: str | os.PathLike | None = None, oracles: Sequence[str] = (),
           trusted: bool = False, limits: ResourceLimits = DEFAULT_LIMITS,
           progress: Callable[[Progress], None] | None = None) -> Report:
    """Re-extract every record under ``path`` and compare it with what was stored.

    ``path``: one path or a list of them, each a JSONL file of records (any name), a folder
    of them (a corpus' ``shard-*.jsonl`` in order, or else every ``*.jsonl``, with its
    ``failures/*/repro.json``), a failures folder, one failure's folder or its repro.json.
    ``workers``: extraction processes (default: the machine's cores).  ``grad=False`` skips
    every backward pass (and so compares only forward artifacts).  ``strict``: changed IR,
    rejected and malformed records count as regressions.
    ``timeout``: seconds per record.  ``cache_dir``: JAX's persistent compilation cache (None:
    none).  ``oracles``: names from ``extract.ORACLES`` run on every record (default none).
    ``trusted``: run every source without checking that it has the grammar's form (for
    records added by hand with ``python -m fuzz add``): only for sources you would run
    yourself.  ``limits``: the workers' resource limits.
    ``progress`` is called with a :class:`Progress` after every record.  Raises
    ``ReplayError`` when ``path`` holds nothing to replay or an argument is invalid.
    """
    paths = [Path(path)] if isinstance(path, str | os.PathLike) else [Path(p) for p in path]
    if not paths:
        raise ReplayError("no path to replay")
    workers = (os.cpu_count() or 1) if workers is None else workers
    if not isinstance(workers, int) or workers < 1:
        raise ReplayError(f"workers={workers!r} must be a positive int")
    if not timeout > 0:
        raise ReplayError(f"timeout={timeout!r} must be positive")
    try:
        oracles = check_oracles(oracles)
    except ValueError as e:
        raise ReplayError(str(e)) from None
    if cache_dir is not None:
        cache_dir = Path(cache_dir)
        try:
            cache_dir.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise ReplayError(f"cannot create cache directory {str(cache_dir)!r}: "
                              f"{e.strerror or e}") from None
    files, repros = _sources(paths)
    total = _count(files, repros)
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
            done(index, classify(item.where, item.record, result, task_grad, item.failure))

    try:
        for index, item in enumerate(_items(files, repros)):
            if isinstance(item, Outcome):
                done(index, item)
                continue
            versions = item.record.get("versions")
            if isinstance(versions, dict) and isinstance(versions.get("jax"), str):
                stored_jax.add(versions["jax"])
            problems = [] if trusted else _judge(item.record)
            if problems:
                done(index, Outcome("rejected", item.where, item.record.get("id"),
                                    problems=problems))
                continue
            if pool is None:  # started on the first record that needs one
                pool = ExtractorPool(workers, timeout=timeout, grad=grad, cache_dir=cache_dir,
                                     limits=limits)
            task_grad, task_oracles = _task(item, grad, oracles)
            try:
                pool.submit(index, item.record["source"], item.record["entry"],
                            item.record["args"], grad=task_grad, seed=item.seed,
                            oracles=task_oracles,
                            polymorphic_shapes=item.record.get("polymorphic_shapes"),
                            levels=item.record.get("levels"), recipe=item.recipe)
            except (ValueError, TypeError) as e:  # args the extractor cannot build
                done(index, Outcome("malformed", item.where, item.record.get("id"),
                                    reason=f"field 'args', 'polymorphic_shapes', 'levels' or "
                                           f"'inputs': {e}"))
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
    return Report(", ".join(map(str, paths)), [outcomes[i] for i in sorted(outcomes)], strict,
                  time.monotonic() - started, versions,
                  None if cache_dir is None else str(cache_dir), oracles)


# -- the command line ---------------------------------------------------------------------


def parser(parser_class) -> Any:
    p = parser_class(prog="python -m fuzz replay", description=(
        "Re-extract every record of a corpus (or of a failures folder) with the installed JAX "
        "and report what changed.  Sources are validated against the grammar first and never "
        "executed when they do not fit it.  Exit status 0 when no record that used to extract "
        "now fails or computes other values, 1 otherwise, 2 on bad arguments."))
    p.add_argument("path", metavar="PATH", type=Path, nargs="+",
                   help="a JSONL file of records (any name), a folder of them (a corpus), a "
                        "failures folder or one failure's folder; several may be given")
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
    p.add_argument("--oracles", type=oracle_list(ORACLES), default=(), metavar="LIST",
                   help=f"comma list of oracles to run on every record ({','.join(ORACLES)}) "
                        "or 'none' (the default): a failed oracle is a regression")
    add_limit_options(p)
    p.add_argument("--trusted", action="store_true",
                   help="run every source even when it is not of the grammar's form (records "
                        "added with 'python -m fuzz add'): it then runs as any Python program "
                        "you start would, under the workers' resource limits only")
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
                        timeout=a.timeout, cache_dir=cache_dir, oracles=a.oracles,
                        trusted=a.trusted, limits=limits(a, p.error),
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
