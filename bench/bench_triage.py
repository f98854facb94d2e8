"""How far a run took its new buckets toward reports: read a corpus' failure folders.

    python bench/bench_triage.py CORPUS [CORPUS ...]

For each folder (a new unexplained bucket): statements before and after reduction, the
reduction's state and extractions, seconds from the bucket's first failure to its finished
report (``record.found_at`` to ``record.triage.finished_at``), the culprit and whether
``REPORT.md`` is there; then the issue's goals: the share of buckets at 6 statements or
fewer and the median statements (over those that reproduced when their reduction began: a
flaky one has nothing to reduce), the median minutes to a report. Reads files only: run it after
the fuzz run (``python -m fuzz --budget 300s --corpus CORPUS``).
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path


def rows(corpus: Path) -> list[dict]:
    out = []
    for meta in sorted((corpus / "failures").glob("*/repro.json")):
        record = json.loads(meta.read_text())["record"]
        triage = record.get("triage") or {}
        finished = triage.get("finished_at")
        found = record.get("found_at")
        culprit = (triage.get("culprit") or {}).get("passes")
        out.append({
            "bucket": meta.parent.name, "before": record.get("original_statements"),
            "after": record.get("statements"),
            "state": (record.get("reduction") or {}).get("state"),
            "extractions": (record.get("reduction") or {}).get("extractions"),
            "report_s": None if finished is None or found is None else finished - found,
            "culprit": "+".join(culprit) if culprit else "-",
            "report": (meta.parent / "REPORT.md").is_file()})
    return out


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    table = [r for corpus in argv for r in rows(Path(corpus))]
    for r in table:
        seconds = "pending" if r["report_s"] is None else f"{r['report_s']:.0f} s"
        print(f"{r['bucket'][:60]:<60} {r['before']:>3} -> {r['after']:>3} {r['state']:<8} "
              f"{r['extractions']:>4} extr  report {seconds:>8}  culprit {r['culprit']}"
              f"{'' if r['report'] else '  NO REPORT.md'}")
    if not table:
        print("no failure folders")
        return 0
    # a failure that did not happen again when its reduction began has nothing to reduce
    real = [r for r in table if r["state"] != "not reproduced"]
    small = sum(r["after"] <= 6 for r in real)
    times = [r["report_s"] for r in table if r["report_s"] is not None]
    timing = (f"median {statistics.median(times) / 60:.1f} min (max {max(times) / 60:.1f})"
              if times else "none")
    sizes = (f"{small / len(real):.0%} at 6 statements or fewer, median "
             f"{statistics.median(r['after'] for r in real)} statements" if real else "-")
    print(f"{len(table)} buckets, {len(table) - len(real)} not reproduced; of the others, "
          f"{sizes}; {sum(r['report'] for r in table)} with REPORT.md; reports finished in "
          f"the run: {len(times)}, {timing}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
