"""What a fuzz run tells a person at its end: what the extracted programs became, each
oracle's verdicts, the failure buckets and where their reproducers are."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fuzz.campaign.budget import clock


def outcomes(ok: int, forward_only: int, buckets: dict[str, dict[str, Any]]) -> str:
    """What the extracted programs became, in words a new user reads right."""
    unexplained = sum(b["count"] for b in buckets.values()
                      if not b["known"] and not b.get("finding"))
    return (f"{ok} fully extracted, {forward_only} forward-only (known limitation), "
            f"{unexplained} unexplained failures")


def summary(stats: dict[str, Any], corpus: Path) -> str:
    """The final summary of a run whose ``stats.json`` is ``stats``, into ``corpus``."""
    minimizing = (f"; then {clock(stats['minimize_s'])} minimising new failures"
                  if stats["minimize_s"] >= 1 else "")
    lines = [f"done in {clock(stats['elapsed_s'])}: {stats['generated']} generated, "
             f"{stats['extracted']} extracted ({stats['programs_per_s']} prog/s"
             f"{minimizing}), {stats['added']} added to {corpus} (now "
             f"{stats['corpus_records']}), {stats['duplicate_source']} duplicate sources, "
             f"{stats['duplicate_ir']} duplicate IR; "
             f"{outcomes(stats['ok'], stats['forward_only'], stats['buckets'])}"]
    api = stats.get("api_coverage")
    if api:
        lines.append(f"  real-world JAX API: {api['call_sites_covered']:.1%} of in-program "
                     f"call sites, {api['top50_covered']} of the top 50 names, array "
                     f"methods {api['methods_covered']:.1%} (python -m fuzz api-coverage)")
    for name, counts in stats["oracles"].items():
        if counts:
            lines.append(f"  oracle {name}: " + ", ".join(
                f"{n} {verdict}" for verdict, n in sorted(counts.items())))
    for signature, bucket in stats["buckets"].items():
        label = f"known: {bucket['known']}" if bucket["known"] else \
            f"registered: {bucket['finding']}" if bucket.get("finding") else "UNEXPLAINED"
        lines.append(f"  failure x{bucket['count']} [{label}] {signature}")
    reduced = f" (reduction took {stats.get('reduce_s', 0):.0f} s)" \
        if stats.get("reduce_s") else ""
    if stats["minimized"] or stats.get("pending"):
        lines.append(f"  {stats['minimized']} new failures reduced, each with repro.py and "
                     f"REPORT.md, in {corpus / 'failures'}{reduced}")
    if stats.get("pending"):
        lines.append(f"  {len(stats['pending'])} reduction(s) left pending at the budget's "
                     f"end: {', '.join(stats['pending'])}; finish them with: python -m fuzz "
                     f"triage {corpus / 'failures'}")
    if stats.get("reports_pending"):
        lines.append(f"  {len(stats['reports_pending'])} report(s) not finished at the budget's "
                     f"end ({', '.join(stats['reports_pending'])}); finish them with: python -m "
                     f"fuzz triage {corpus / 'failures'}")
    if stats.get("side_crashes"):
        lines.append(f"  {stats['side_crashes']} reduction candidate(s) crashed in another way: "
                     "each REPORT.md names them, repro.json keeps their source")
    if stats.get("abandoned"):
        lines.append(f"  {stats['abandoned']} program(s) still extracting at the budget's end "
                     "were dropped")
    return "\n".join(lines)
