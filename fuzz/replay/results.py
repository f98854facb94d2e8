"""What ``python -m fuzz replay`` reports: its outcomes counted (``Report``: the summary, the
compile-quality table, the exit code) and its status line's snapshot (``Progress``)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from fuzz.campaign.budget import clock
from fuzz.replay.diff import STATUSES, Outcome, format_quality, quality_summary

__all__ = ["Progress", "Report", "WARN_SHARE"]

WARN_SHARE = 0.05
"""A replay warns when more than this share of its records were rejected or malformed."""


@dataclass
class Report:
    """Everything one replay found; ``exit_code`` is 1 when it regressed."""

    path: str
    outcomes: list[Outcome]
    strict: bool
    elapsed_s: float
    versions: dict[str, Any]
    cache_dir: str | None
    oracles: tuple[str, ...] = ()

    @property
    def counts(self) -> dict[str, int]:
        found = Counter(o.status for o in self.outcomes)
        return {s: found.get(s, 0) for s in STATUSES}

    @property
    def regressed(self) -> bool:
        """A record that extracted ok now fails or computes other values; with ``strict``,
        also any changed IR and any rejected or malformed record."""
        c = self.counts
        bad = c["now_fails"] + c["value_changed"] + (
            c["ir_changed"] + c["rejected"] + c["malformed"] if self.strict else 0)
        return bad > 0

    @property
    def exit_code(self) -> int:
        return 1 if self.regressed else 0

    @property
    def quality(self) -> dict[str, Any]:
        """``quality_summary`` over the records that still extract."""
        return quality_summary((o.id, o.metrics) for o in self.outcomes if o.metrics)

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "summary": {"records": len(self.outcomes), **self.counts, "strict": self.strict,
                        "regressed": self.regressed, "exit_code": self.exit_code,
                        "elapsed_s": round(self.elapsed_s, 3), "oracles": list(self.oracles),
                        "warning": self.warning()},
            "versions": self.versions,
            "cache_dir": self.cache_dir,
            "quality": self.quality,
            "results": [o.to_json() for o in self.outcomes],
        }

    def summary(self) -> str:
        c = self.counts
        parts = ", ".join(f"{n} {s}" for s, n in c.items() if n)
        stored = ", ".join(self.versions.get("stored_jax", [])) or "unknown"
        verdict = ("REGRESSED" if c["now_fails"] + c["value_changed"] else "FAILED (--strict)") \
            if self.regressed else "ok"
        return (f"replayed {len(self.outcomes)} records of {self.path} in "
                f"{clock(self.elapsed_s)} with jax {self.versions.get('jax', '?')} (stored with "
                f"jax {stored}): {parts or 'nothing'} - {verdict}")

    def warning(self) -> str | None:
        """A line for a replay that left more than ``WARN_SHARE`` of its records unjudged."""
        c = self.counts
        skipped = c["rejected"] + c["malformed"]
        if not self.outcomes or skipped <= WARN_SHARE * len(self.outcomes):
            return None
        return (f"warning: {skipped} of {len(self.outcomes)} records "
                f"({100 * skipped / len(self.outcomes):.0f} %) were rejected or malformed and "
                "never ran; --strict makes that fail the replay, and records added with "
                "'python -m fuzz add' run only with --trusted")

    def format(self) -> str:
        lines = [o.describe() for o in self.outcomes
                 if o.status not in ("unchanged", "text_changed")]  # those are only counted
        warning = self.warning()
        return "\n".join([*lines, format_quality(self.quality), self.summary(),
                          *([warning] if warning else [])])


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
