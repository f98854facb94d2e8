"""The sections of ``python -m fuzz report``: what a run's corpus holds, read and turned into
tables and figure data.

What it reads: ``stats.json`` (the run's counts, shown as written there), ``coverage.tsv``
(coverage over time), the records (program sizes, stage timings, XLA passes and, through
``fuzz.corpus.stats``, StableHLO ops and categories) and ``failures/``.  ``--compare``
adds other corpora to the coverage and throughput figures and to the passes never fired.
``build`` turns what was read into sections of tables (cells already formatted) and figure
data; ``fuzz.report.figures`` lays them out: figures and the HTML page, or text tables;
``fuzz.report.command`` is the command.
"""

from __future__ import annotations

import ast
import json
import statistics
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from extract.failures import STAGES
from fuzz.campaign.features import KINDS, SERIES_NAME
from fuzz.corpus.stats import STABLEHLO_OPS, _median, corpus_stats
from fuzz.corpus.store import STATS_NAME, MalformedLine, iter_records

__all__ = ["Corpus", "Section", "Table", "build", "read_corpus", "statements"]

EXTRA = "pip install -e '.[report]'"
TOP = 12  # most and least common StableHLO ops and passes shown
SERIES_ROWS = 12  # rows of a coverage time series in its table
RUN_KEYS = ("generated", "extracted", "ok", "forward_only", "failed", "timeout", "crashed",
            "added", "duplicate_source", "duplicate_ir", "corpus_records", "minimized",
            "elapsed_s", "programs_per_s", "valid_rate", "stablehlo_coverage",
            "primitive_count", "seed", "workers")
VERDICTS = ("pass", "skipped", "benign", "failed", "not run", "not sampled", "off")
# Where the docs describe a known limitation beyond the list in "The extractor" (none
# has an upstream issue we know of).
README_MENTIONS = {
    "eager_python_loop_index": "docs/findings.md, Findings 4",
    "eager_pallas_kernel_constant": "docs/findings.md, Findings 16",
    "xla_cpu_fft_layout": "docs/findings.md, Findings 6; findings/fft_feeding_lapack.py",
    "xla_cpu_collective_reduction": "docs/findings.md, Findings 11",
    "checkpoint_policy_complex":
        "docs/findings.md, Findings 12; findings/checkpoint_policy_complex_residual.py",
    "export_batched_all_gather":
        "docs/findings.md, Findings 15; findings/all_gather_symbolic_batch_export.py",
}
KNOWN_MENTION = "docs/oracles.md, The extractor (extract.KNOWN)"
_IDLE = ("skipped", "not ", "off")  # verdicts of an oracle that did not judge the program


@dataclass
class Corpus:
    """What the report reads from one corpus directory."""

    name: str
    path: Path
    stats: dict[str, Any]  # stats.json; empty when missing or unreadable
    series: list[dict[str, float]] | None  # coverage.tsv rows; None when there is none
    summary: dict[str, Any]  # fuzz.corpus.stats.corpus_stats
    sizes: Counter[int] = field(default_factory=Counter)  # statements -> records
    timings: dict[str, list[float]] = field(default_factory=dict)  # stage -> seconds
    passes: dict[str, Counter[str]] = field(default_factory=dict)  # forward, backward, either
    with_passes: int = 0  # records that hold a passes field


@dataclass
class Table:
    id: str
    header: list[str]
    rows: list[list[str]]
    caption: str = ""
    fold: bool = False  # the figure shows it: folded away on the page


@dataclass
class Section:
    id: str
    title: str
    notes: list[str]
    tables: list[Table]
    plot: dict[str, Any] | None = None  # the figure's data (fuzz.report.figures), if any


# --------------------------------------------------------------------------- reading


def statements(source: str, entry: str) -> int | None:
    """Statements of function ``entry`` in ``source``, counted on its syntax tree: nested
    ``def``s and their bodies included, a call laid out over several lines counted once."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return None
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == entry:
            return sum(isinstance(n, ast.stmt) for n in ast.walk(node)) - 1
    return None


def _series(root: Path) -> list[dict[str, float]] | None:
    """The rows of ``coverage.tsv`` by its header; a torn or foreign row is left out."""
    try:
        lines = (root / SERIES_NAME).read_text(encoding="utf-8").splitlines()
    except OSError:
        return None
    header, rows = None, []
    for line in lines:
        cells = line.split("\t")
        if cells[0] == "elapsed_s":
            header = cells
        elif header is not None and len(cells) == len(header):
            try:
                rows.append(dict(zip(header, map(float, cells), strict=True)))
            except ValueError:
                continue
    return rows


def read_corpus(path: Path, name: str) -> Corpus:
    """Read corpus ``path`` (a directory) for the report, labelled ``name``."""
    try:
        stats = json.loads((path / STATS_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        stats = {}
    corpus = Corpus(name, path, stats if isinstance(stats, dict) else {}, _series(path),
                    corpus_stats(path))
    corpus.passes = {"forward": Counter(), "backward": Counter(), "either": Counter()}
    for _, _, rec in iter_records(path):
        if isinstance(rec, MalformedLine):
            continue
        if (n := statements(rec["source"], rec.get("entry") or "")) is not None:
            corpus.sizes[n] += 1
        verdicts = rec.get("oracles") or {}
        for stage, seconds in (rec.get("timings") or {}).items():
            if seconds is not None and not verdicts.get(stage, "").startswith(_IDLE):
                corpus.timings.setdefault(stage, []).append(seconds)
        forward, backward = rec.get("passes"), rec.get("grad_passes")
        if forward is not None or backward is not None:
            corpus.with_passes += 1
        corpus.passes["forward"].update(forward or ())
        corpus.passes["backward"].update(backward or ())
        corpus.passes["either"].update(set(forward or ()) | set(backward or ()))
    return corpus


# --------------------------------------------------------------------------- building


def _raw(value: Any) -> str:
    """A stats.json value as written there."""
    return "-" if value is None else value if isinstance(value, str) else json.dumps(value)


def _share(n: int, total: int) -> str:
    return f"{n / total:.1%}" if total else "-"


def _counts(c: Corpus, key: str) -> tuple[dict[str, int], str]:
    """Counts of ``key`` (categories, ops): stats.json's when its run added every record,
    else the records'."""
    run = c.stats.get(key)
    if isinstance(run, dict) and c.stats.get("added") == c.summary["records"]:
        return run, f"stats.json ({c.summary['records']} records)"
    return c.summary[key], (f"the {c.summary['records']} records (stats.json counts only "
                            f"its run's {c.stats.get('added', 0)} added records)")


def _ranked(counts: dict[str, int]) -> tuple[list[tuple[str, int]], list[tuple[str, int]]]:
    """The ``TOP`` most common of ``counts``, then the ``TOP`` least common of the rest."""
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    return ranked[:TOP], ranked[TOP:][-TOP:]


def _run(corpora: list[Corpus]) -> Section:
    names = [c.name for c in corpora]
    rows = [[key, *(_raw(c.stats.get(key)) for c in corpora)] for key in RUN_KEYS]
    guides = [c.stats.get("guide") or {} for c in corpora]  # a --guide run's parents, mutants
    rows += [[f"guide {key}", *(_raw(g.get(key)) for g in guides)]
             for key in dict.fromkeys(k for g in guides for k in g)]
    rows += [["records read", *(str(c.summary["records"]) for c in corpora)],
             ["malformed lines", *(str(c.summary["malformed_lines"]) for c in corpora)]]
    notes = [f"{c.name}: no stats.json, so no run counts" for c in corpora if not c.stats]
    return Section("run", "Run (stats.json)", notes, [Table("run", ["", *names], rows)])


def _coverage(corpora: list[Corpus]) -> list[Section]:
    names = [c.name for c in corpora]
    features = [[k, *(_raw((c.stats.get("features") or {}).get(k)) for c in corpora)]
                for k in KINDS]
    drawn = {c.name: c.series for c in corpora if c.series}
    notes = [f"{c.name}: no {SERIES_NAME} (a corpus made before the time series)"
             for c in corpora if not c.series]
    tables = [Table("features", ["kind", *names], features)]
    for c in corpora:
        if c.series:
            n = len(c.series)
            picked = sorted({round(i * (n - 1) / (SERIES_ROWS - 1)) for i in range(SERIES_ROWS)})
            columns = ("elapsed_s", "records", *KINDS)
            tables.append(Table(f"series-{c.name}", list(columns),
                                [[f"{c.series[i].get(k, 0):g}" for k in columns] for i in picked],
                                f"{SERIES_NAME} of {c.name}", fold=True))
    plot = {"series": drawn} if drawn else None
    return [
        Section("coverage", "Coverage over time", [
            "Distinct features of each kind (fuzz.campaign.features) against elapsed seconds; the "
            "table gives the final counts (stats.json features) and the series "
            f"({SERIES_NAME}, at most {SERIES_ROWS} rows of each).", *notes], tables, plot),
        Section("records", "Throughput", [
            "Records in the corpus over time; programs/s: "
            + ", ".join(f"{c.name} {_raw(c.stats.get('programs_per_s'))}" for c in corpora)
            + " (stats.json).", *notes], [], plot),
    ]


def _timings(c: Corpus) -> Section:
    order = {stage: i for i, stage in enumerate(STAGES)}
    stages = sorted(c.timings, key=lambda s: (order.get(s, len(order)), s))
    rows = []
    for stage in stages:
        v = c.timings[stage]
        quartiles = statistics.quantiles(v * 2 if len(v) == 1 else v, n=4, method="inclusive")
        rows.append([stage, str(len(v)), *(f"{q * 1000:.1f}" for q in (*quartiles, max(v)))])
    table = Table("timings", ["stage", "records", "p25 ms", "median ms", "p75 ms", "max ms"],
                  rows)
    notes = ["Time per extraction stage in each record's timings (forward, backward, "
             "oracles), over the records that ran the stage: an oracle's only where it judged "
             "the program (not skipped)."]
    return Section("timings", "Stage timings", notes if rows else ["No record holds timings."],
                   [table], {"stages": {s: c.timings[s] for s in stages}} if rows else None)


def _sizes(c: Corpus) -> Section:
    if not c.sizes:
        return Section("sizes", "Program size", ["No record's entry function was found."], [])
    low, high = min(c.sizes), max(c.sizes)
    width = max(1, -(-(high - low + 1) // 15))  # at most 15 bins
    bins = [(str(lo) if width == 1 else f"{lo}-{lo + width - 1}",
             sum(c.sizes[n] for n in range(lo, lo + width))) for lo in range(low, high + 1, width)]
    rows = [[label, str(n)] for label, n in bins]
    total = sum(c.sizes.values())
    median = _median(c.sizes)
    notes = [f"Statements per program: the statements of the entry function's syntax tree, "
             f"nested defs and their bodies included ({total} records; median {median:g}, "
             f"max {high})."]
    return Section("sizes", "Program size", notes, [
        Table("sizes", ["statements", "records"], rows, "statements per program", fold=True)],
        {"bins": bins})


def _shares(c: Corpus) -> list[Section]:
    from grammar.ops import OPS

    categories, source = _counts(c, "categories")
    records = c.summary["records"]
    cats = sorted(categories.items(), key=lambda kv: (-kv[1], kv[0]))
    ops, op_source = _counts(c, "ops")
    families: Counter[str] = Counter()
    for name, n in ops.items():
        families[OPS[name].family if name in OPS else "unknown"] += n
    uses = sum(families.values())
    fams = families.most_common()
    return [
        Section("categories", "Categories", [
            f"Share of records covering each category (a record covers several); from "
            f"{source}."], [Table("categories", ["category", "records", "share"],
                                  [[k, str(n), _share(n, records)] for k, n in cats], "categories",
                                  fold=True)],
            {"bars": [(k, n / records) for k, n in cats], "xlabel": "share of records"}
            if cats and records else None),
        Section("families", "Op families", [
            f"Share of op uses (a record's distinct grammar ops) by family "
            f"(grammar.ops.OPS[name].family), from {op_source}."],
            [Table("families", ["family", "op uses", "share"],
                   [[k, str(n), _share(n, uses)] for k, n in fams], "op families",
                   fold=True)],
            {"bars": [(k, n / uses) for k, n in fams], "xlabel": "share of op uses"}
            if fams else None),
    ]


def _stablehlo(c: Corpus) -> Section:
    spec = set(STABLEHLO_OPS)  # region terminators (return) are not ops of the spec
    counts = {op: n for op, n in c.summary["stablehlo_ops"].items() if op in spec}
    records = c.summary["records"]
    most, least = _ranked(counts)
    rows = [[op, str(n), _share(n, records)] for op, n in most + least]
    return Section("stablehlo_ops", "StableHLO ops", [
        f"Records whose forward (or exported) StableHLO uses each op: the {TOP} most and "
        f"{TOP} least common of the {len(counts)} spec ops seen "
        f"(fuzz.corpus.stats.STABLEHLO_OPS)."],
        [Table("stablehlo_ops", ["op", "records", "share"], rows, "most and least common ops",
               fold=True)],
        {"most": most, "least": least, "xlabel": "records"} if counts else None)


def _passes(main: Corpus, others: list[Corpus]) -> Section:
    fired, forward, backward = (main.passes[k] for k in ("either", "forward", "backward"))
    most, least = _ranked(dict(fired))
    rows = [[name, str(n), str(forward[name]), str(backward[name]),
             _share(n, main.with_passes)] for name, n in most + least]
    notes = [f"XLA passes that changed a module while it compiled: the records in which "
             f"each fired, forward or backward, of the {main.with_passes} that hold passes; "
             f"the {TOP} most and {TOP} least common of {len(fired)}." if main.with_passes
             else "No record holds passes (a corpus made before they were recorded)."]
    seen = {p: [o.name for o in others if o.passes["either"][p]]
            for o in others for p in o.passes["either"] if p not in fired}
    never = Table("never_fired", ["pass", "fired in"],
                  [[p, ", ".join(seen[p])] for p in sorted(seen)], "passes never fired")
    notes.append("XLA publishes no list of its passes, so 'never fired' means fired in a "
                 "record of a compared corpus but in none of this one's: "
                 + (f"{len(never.rows)} such passes." if others else
                    "run with --compare OTHER_CORPUS to list them."))
    return Section("passes", "XLA passes", notes, [
        Table("passes", ["pass", "records", "forward", "backward", "share"], rows,
              "most and least common passes", fold=True),
        never],
        {"most": most, "least": least, "xlabel": "records"} if fired else None)


def _oracles(c: Corpus) -> Section:
    oracles = c.stats.get("oracles") or {}
    seen = {v for counts in oracles.values() for v in counts}
    verdicts = [v for v in VERDICTS if v in seen] + sorted(seen - set(VERDICTS))
    rows = [[name, *(str(counts.get(v, 0)) for v in verdicts)]
            for name, counts in oracles.items()]
    notes = ["Verdicts of each oracle over the run's programs (stats.json oracles)."
             if oracles else "stats.json holds no oracle verdicts."]
    return Section("oracles", "Oracle verdicts", notes,
                   [Table("oracles", ["oracle", *verdicts], rows)],
                   {"oracles": oracles, "verdicts": verdicts} if rows else None)


def _failures(c: Corpus) -> Section:
    run = c.stats.get("buckets") or {}
    every = {b["signature"]: b for b in c.summary["failures"]}
    rows = []
    for sig in sorted(set(run) | set(every), key=lambda s: (
            -(run.get(s) or {}).get("count", 0), -((every.get(s) or {}).get("count") or 0), s)):
        bucket, saved = run.get(sig) or {}, every.get(sig) or {}
        known = bucket.get("known") or saved.get("known")
        rows.append([_raw(bucket.get("count")), _raw(saved.get("count")),
                     _raw(bucket.get("stage")), known or "NEW", sig,
                     saved.get("reproducer") or "-",
                     README_MENTIONS.get(known, KNOWN_MENTION) if known else "-"])
    notes = ["Failure buckets: count in the run (stats.json buckets) and over all runs "
             "(stats.json store), each with its reproducer (failures/*/repro.json) and, for "
             "a known limitation, where the docs describe it." if rows else
             "No failures."]
    return Section("failures", "Failures", notes, [Table("failures", [
        "run", "all runs", "stage", "known", "signature", "reproducer", "README"], rows)])


def build(main: Corpus, others: Sequence[Corpus] = ()) -> list[Section]:
    """The report's sections for ``main``, compared with ``others``."""
    others = list(others)
    return [_run([main, *others]), *_coverage([main, *others]), _timings(main), _sizes(main),
            *_shares(main), _stablehlo(main), _passes(main, others), _oracles(main),
            _failures(main)]
