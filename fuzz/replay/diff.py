"""Pure helpers of ``python -m fuzz replay``: one record's outcome (its artifacts and values
against the stored ones, through ``fuzz.replay.canonical``'s canonical forms) and the
compile-quality summary."""
from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from extract import compare_summaries
from extract.failures import GRAD_STAGES
from extract.inputs import RECIPES
from fuzz.replay.canonical import canonical, cost_diff, hlo_instructions, text_diff

__all__ = ["COMPARED", "STATUSES", "Outcome", "classify", "compare_artifacts", "compare_values",
           "format_quality", "quality_metrics", "quality_summary"]

STATUSES = ("unchanged", "text_changed", "ir_changed", "value_changed", "now_fails", "fixed",
            "still_fails", "rejected", "malformed")
FORWARD = ("jaxpr", "stablehlo", "hlo", "hlo_optimized", "cost", "exported_stablehlo")
BACKWARD = ("grad_jaxpr", "grad_stablehlo", "grad_hlo", "grad_hlo_optimized", "grad_cost")
COMPARED = FORWARD + BACKWARD
"""The stored artifacts a replay compares."""

_KNOWN_LIMITATION = "known JAX limitation"  # how the fuzz loop marks forward-only records
QUALITY_KEYS = ("flops", "bytes accessed")
TOP_CHANGES = 5

# -- one record's outcome ------------------------------------------------------------------


@dataclass
class Outcome:
    """What replay found for one record.  ``where`` is ``file:line`` (shards) or the file.
    ``changed``: artifact -> diff of its canonical form; ``renumbered``: artifacts whose text
    alone changed; ``values``: ``outputs``/``grad_outputs`` -> how they disagree."""

    status: str
    where: str
    id: str | None = None
    changed: dict[str, str] = field(default_factory=dict)
    renumbered: list[str] = field(default_factory=list)
    values: dict[str, str] = field(default_factory=dict)
    failure: dict[str, Any] | None = None
    previous_signature: str | None = None
    signature_changed: bool = False
    problems: list[str] = field(default_factory=list)
    reason: str | None = None
    metrics: dict[str, list] = field(default_factory=dict, repr=False)  # see quality_metrics

    def describe(self) -> str:
        """One or a few lines for the human report."""
        head = f"{self.status:<13} {self.where}" + (f" [{self.id}]" if self.id else "")
        if self.status in ("value_changed", "ir_changed", "text_changed"):
            lines = [head] + [f"    {k}: {v}" for k, v in {**self.values, **self.changed}.items()]
            if self.renumbered:
                lines.append(f"    {len(self.renumbered)} renumbered only: "
                             f"{', '.join(self.renumbered)}")
            return "\n".join(lines)
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
        return {k: v for k, v in asdict(self).items()
                if k != "metrics" and v not in (None, [], {}, False)}


def compare_artifacts(stored: Mapping[str, Any], result: Mapping[str, Any],
                      fields: Iterable[str]) -> tuple[dict[str, str], list[str]]:
    """``(changed, renumbered)``: for every stored field whose canonical form changed, a short
    diff (of the canonical forms); and the fields whose text alone changed."""
    changed: dict[str, str] = {}
    renumbered: list[str] = []
    for name in fields:
        if name not in stored:  # a hand-made record without it: nothing to compare
            continue
        old, new = stored[name], result.get(name)
        if old == new:
            continue
        a, b = canonical(name, old), canonical(name, new)
        if a == b:
            renumbered.append(name)
        elif name.endswith("cost"):
            changed[name] = cost_diff(old, new)
        else:
            changed[name] = text_diff(a, b) if isinstance(a, str) and isinstance(b, str) \
                else text_diff(old, new)
    return changed, renumbered


def _sensitive(stored: Mapping[str, Any], result: Mapping[str, Any], n: int) -> set[int]:
    """Outputs that either extraction found sensitive to a one-ulp move of the inputs."""
    out: set[int] = set()
    for rec in (stored, result):
        value = rec.get("sensitive")
        out |= set(range(n)) if value is True else set(value or [])
    return out


def compare_values(stored: Mapping[str, Any], result: Mapping[str, Any],
                   grad: bool) -> tuple[dict[str, str], dict[str, str]]:
    """How the new ``outputs`` (and with ``grad`` ``grad_outputs``) disagree with the stored
    ones, by ``extract.compare_summaries``: (regressions, differences in outputs that are
    sensitive to rounding); fields either side lacks are skipped."""
    out, sensitive = {}, {}
    for name, kind in (("outputs", "value"), ("grad_outputs", "grad"))[:2 if grad else 1]:
        old, new = stored.get(name), result.get(name)
        if old is None or new is None:
            continue
        sens = _sensitive(stored, result, len(old)) if name == "outputs" else set()
        try:
            why = compare_summaries(new, old, kind, skip=sens)
            loose = (compare_summaries(new, old, kind, skip=set(range(len(old))) - sens)
                     if sens else None)
        except (KeyError, TypeError, ValueError, AttributeError, IndexError) as e:
            why, loose = f"stored summary unreadable ({type(e).__name__}: {e})", None
        if why is not None:
            out[name] = why
        if loose is not None:
            sensitive[f"{name} (sensitive to rounding)"] = loose
    return out, sensitive


# -- one record ------------------------------------------------------------------------------


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


def classify(where: str, rec: Mapping[str, Any], result: Mapping[str, Any], grad: bool,
             saved: Mapping[str, Any] | None = None) -> Outcome:
    """The outcome of stored record ``rec`` (at ``where``; ``saved``: its saved failure, for
    a reproducer) given ``result``, its extraction again (``grad``: with its backward pass).
    Values are compared only when ``rec`` records inputs by a recipe of ``extract.inputs``."""
    ok = result.get("status") == "ok"
    if saved is not None:
        previous = saved.get("signature")
        if ok:
            return Outcome("fixed", where, rec.get("id"), previous_signature=previous)
        failure = _failure(result)
        return Outcome("still_fails", where, rec.get("id"), failure=failure,
                       previous_signature=previous,
                       signature_changed=failure["signature"] != previous)
    if not (ok or _forward_only(rec, result)):
        return Outcome("now_fails", where, rec.get("id"), failure=_failure(result))
    both = grad and ok
    changed, renumbered = compare_artifacts(rec, result, COMPARED if both else FORWARD)
    same_inputs = isinstance(rec.get("inputs"), Mapping) and rec["inputs"].get("recipe") in RECIPES
    values, sensitive = compare_values(rec, result, both) if same_inputs else ({}, {})
    changed.update(sensitive)  # a one-ulp change moves these outputs: not a regression
    status = ("value_changed" if values else "ir_changed" if changed
              else "text_changed" if renumbered else "unchanged")
    return Outcome(status, where, rec.get("id"), changed=changed, renumbered=renumbered,
                   values=values, metrics=quality_metrics(rec, result, both))


# -- compile quality -------------------------------------------------------------------------


def quality_metrics(stored: Mapping[str, Any], result: Mapping[str, Any],
                    grad: bool) -> dict[str, list]:
    """``{metric: [before, after]}`` for one record that still extracts: ``cost.flops``,
    ``cost.bytes accessed`` (and ``grad_cost.*``), ``hlo_optimized`` and
    ``grad_hlo_optimized`` (instruction counts); only those stored and extracted again."""
    out: dict[str, list] = {}
    for cost in ("cost", "grad_cost") if grad else ("cost",):
        old, new = stored.get(cost), result.get(cost)
        if isinstance(old, Mapping) and isinstance(new, Mapping):
            for key in QUALITY_KEYS:
                a, b = old.get(key, 0.0), new.get(key, 0.0)
                if isinstance(a, (int, float)) and isinstance(b, (int, float)):
                    out[f"{cost}.{key}"] = [a, b]
    for text in ("hlo_optimized", "grad_hlo_optimized") if grad else ("hlo_optimized",):
        old, new = stored.get(text), result.get(text)
        if isinstance(old, str) and isinstance(new, str):
            out[text] = [hlo_instructions(old), hlo_instructions(new)]
    return out


def _relative(before: float, after: float) -> float:
    return (after - before) / max(abs(before), 1.0)


def _factor(change: Mapping[str, Any]) -> float:
    """How far a change goes either way: halving and doubling rank alike."""
    return abs(math.log(max(change["after"], 1.0) / max(change["before"], 1.0)))


def quality_summary(records: Iterable[tuple[str | None, Mapping[str, list]]]) -> dict[str, Any]:
    """What a release changed in compiled quality over ``(id, quality_metrics)`` pairs: per
    cost metric how many records got more / fewer / the same, the ``TOP_CHANGES`` largest
    changes (ranked by ``|log(after / before)|``; ``relative``: ``(after - before) /
    max(before, 1)``), and the total optimized-HLO instruction counts before and after."""
    costs: dict[str, dict[str, int]] = {}
    instructions: dict[str, dict[str, int]] = {}
    changes = []
    n = 0
    for rid, metrics in records:
        n += 1
        for name, (before, after) in metrics.items():
            if "." not in name:
                total = instructions.setdefault(name, {"records": 0, "before": 0, "after": 0})
                total["records"] += 1
                total["before"] += before
                total["after"] += after
                continue
            tally = costs.setdefault(name, {"more": 0, "fewer": 0, "same": 0})
            tally["more" if after > before else "fewer" if after < before else "same"] += 1
            if after != before:
                changes.append({"id": rid, "metric": name, "before": before, "after": after,
                                "relative": round(_relative(before, after), 4)})
    changes.sort(key=lambda c: (-_factor(c), str(c["id"]), c["metric"]))
    return {"records": n, "costs": costs, "largest": changes[:TOP_CHANGES],
            "instructions": instructions}


def _num(x: float) -> str:
    return f"{x:.0f}" if math.isfinite(x) and x == int(x) else f"{x:g}"


def format_quality(summary: Mapping[str, Any]) -> str:
    """The quality summary as a short text block."""
    if not summary.get("records"):
        return "compiled quality: no record to compare"
    costs = ", ".join(f"{name} {t['more']}/{t['fewer']}/{t['same']}"
                      for name, t in summary["costs"].items())
    lines = [f"compiled quality over {summary['records']} records (more/fewer/same): "
             f"{costs or 'no costs'}"]
    if summary["instructions"]:
        lines.append("  optimized HLO instructions: " + ", ".join(
            f"{name} {t['before']} -> {t['after']}"
            for name, t in summary["instructions"].items()))
    if summary["largest"]:
        lines.append("  largest relative changes: " + ", ".join(
            f"{c['id']} {c['metric']} {_num(c['before'])} -> {_num(c['after'])} "
            f"({c['relative']:+.0%})" for c in summary["largest"]))
    return "\n".join(lines)
