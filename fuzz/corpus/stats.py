"""Corpus statistics: what a corpus directory holds and how much of StableHLO it covers.

``corpus_stats(path)`` reads the shards with ``fuzz.corpus.store.iter_records`` (so a
bad line is counted, never fatal) plus ``failures/`` and ``stats.json``;
``format_stats(stats)`` renders the result as a short report.
"""

from __future__ import annotations

import json
import os
import re
import textwrap
from collections import Counter
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from fuzz.corpus.store import STATS_NAME, MalformedLine, iter_records, reproducers, shard_paths

__all__ = ["STABLEHLO_OPS", "corpus_stats", "format_stats", "jaxpr_primitives",
           "stablehlo_op_names"]

# The op sections of the StableHLO specification (openxla/stablehlo docs/spec.md, "Ops"),
# in the spec's order.  Deprecated ops that the spec lists only under "Deprecated
# Operations" (broadcast, create_token, cross-replica-sum, dot, einsum,
# torch_index_select, unary_einsum) and func-dialect ops (return, call) are not in it.
STABLEHLO_OPS: tuple[str, ...] = (
    "abs", "add", "after_all", "all_gather", "all_reduce", "all_to_all", "and", "atan2",
    "batch_norm_grad", "batch_norm_inference", "batch_norm_training", "bitcast_convert",
    "broadcast_in_dim", "case", "cbrt", "ceil", "cholesky", "clamp", "collective_broadcast",
    "collective_permute", "compare", "complex", "composite", "concatenate", "constant",
    "convert", "convolution", "cosine", "count_leading_zeros", "custom_call", "divide",
    "dot_general", "dynamic_broadcast_in_dim", "dynamic_conv", "dynamic_gather",
    "dynamic_iota", "dynamic_pad", "dynamic_reshape", "dynamic_slice", "dynamic_update_slice",
    "exponential", "exponential_minus_one", "fft", "floor", "gather", "get_dimension_size",
    "get_tuple_element", "if", "imag", "infeed", "iota", "is_finite", "log", "log_plus_one",
    "logistic", "map", "maximum", "minimum", "multiply", "negate", "not",
    "optimization_barrier", "or", "outfeed", "pad", "partition_id", "popcnt", "power", "real",
    "recv", "reduce", "reduce_precision", "reduce_scatter", "reduce_window", "remainder",
    "replica_id", "reshape", "reverse", "rng", "rng_bit_generator", "round_nearest_afz",
    "round_nearest_even", "rsqrt", "scatter", "select", "select_and_scatter", "send",
    "shift_left", "shift_right_arithmetic", "shift_right_logical", "sign", "sine", "slice",
    "sort", "sqrt", "subtract", "tan", "tanh", "transpose", "triangular_solve", "tuple",
    "uniform_dequantize", "uniform_quantize", "while", "xor",
)  # fmt: skip
_SPEC_OPS = frozenset(STABLEHLO_OPS)

# An op name in MLIR text: `stablehlo.add %a, %b` (pretty) or `"stablehlo.add"(...)`
# (generic).  Attributes and types (`#stablehlo.gather<...>`, `!stablehlo.token`) are
# preceded by '#' or '!' and are not ops.
_OP_RE = re.compile(r"(?<![\w.#!])stablehlo\.([a-z_][a-z0-9_]*)")


def stablehlo_op_names(text: str) -> set[str]:
    """The StableHLO op names (without the dialect prefix) used in MLIR ``text``."""
    return set(_OP_RE.findall(text))


# A jaxpr equation: `b:f32[3] = sin a`, `_:i32[] c:f32[] = scan[...]`; parameters are
# written without spaces around '=' (`length=3`, `name=f`), so they never match.  Some
# names hold a hyphen (`scatter-add`).
_PRIMITIVE_RE = re.compile(r" = ([a-z_][a-z0-9_-]*)")


def jaxpr_primitives(text: str) -> set[str]:
    """The JAX primitives applied in jaxpr ``text``, nested jaxprs included."""
    return set(_PRIMITIVE_RE.findall(text))


def _median(hist: Counter[int]) -> float | None:
    """Median of a histogram value -> count (exact, without expanding it)."""
    n = sum(hist.values())
    if n == 0:
        return None
    lo, hi = (n - 1) // 2, n // 2  # the two middle ranks (equal when n is odd)
    seen, low_value = 0, None
    for value in sorted(hist):
        seen += hist[value]
        if low_value is None and seen > lo:
            low_value = value
        if seen > hi:
            return (low_value + value) / 2
    raise AssertionError("unreachable")


def _size_summary(hist: Counter[int]) -> dict[str, Any]:
    return {"median": _median(hist), "max": max(hist) if hist else None, "n": sum(hist.values())}


def _line_count(text: str) -> int:
    return text.count("\n") + (0 if text.endswith("\n") or not text else 1)


def _coverage(seen: Iterable[str]) -> dict[str, Any]:
    seen = set(seen)
    covered = sorted(seen & _SPEC_OPS)
    return {
        "covered": len(covered),
        "total": len(STABLEHLO_OPS),
        "covered_ops": covered,
        "missing_ops": [op for op in STABLEHLO_OPS if op not in seen],
        "non_spec_ops": sorted(seen - _SPEC_OPS),
    }


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _failure_buckets(root: Path, counts: Mapping[str, Any]) -> list[dict[str, Any]]:
    buckets: dict[str, dict[str, Any]] = {
        signature: {"signature": signature, "known": known, "count": None,
                    "reproducer": str(folder)}
        for folder, signature, known in reproducers(root)}
    for sig, entry in counts.items():
        if not isinstance(entry, dict):
            continue
        bucket = buckets.setdefault(
            sig, {"signature": sig, "known": None, "count": None, "reproducer": None}
        )
        if isinstance(entry.get("count"), int):
            bucket["count"] = entry["count"]
        if bucket["known"] is None and isinstance(entry.get("known"), str):
            bucket["known"] = entry["known"]
    return sorted(buckets.values(), key=lambda b: (-(b["count"] or 0), b["signature"]))


def corpus_stats(path: str | os.PathLike[str], *, malformed_examples: int = 5) -> dict[str, Any]:
    """Statistics of the corpus directory ``path`` as a JSON-ready dict.

    Keys: path, shards, bytes, records, malformed_lines, malformed_examples,
    categories and ops (histograms: how often each name is listed), stablehlo_ops
    (records whose forward StableHLO, or exported module for a symbolic_shape record, uses
    each op), stablehlo_coverage (forward and exported)
    and stablehlo_coverage_with_grad (forward or backward), each
    {covered, total, covered_ops, missing_ops, non_spec_ops}; sizes
    (source_lines, stablehlo_lines: {median, max, n}); grad {with_grad,
    skipped, records}; failures (list of {signature, known, count, reproducer});
    dedup (stats.json's store totals, or None if there is no stats.json).
    """
    root = Path(path)
    if not root.is_dir():
        raise ValueError(f"corpus path {root} is not a directory")
    shards = shard_paths(root)
    records = 0
    malformed = 0
    examples: list[str] = []
    categories: Counter[str] = Counter()
    ops: Counter[str] = Counter()
    hlo_ops: Counter[str] = Counter()
    primitives: set[str] = set()
    seen_with_grad: set[str] = set()
    source_lines: Counter[int] = Counter()
    hlo_lines: Counter[int] = Counter()
    with_grad = 0
    grad_skipped = 0

    for _, _, rec in iter_records(root):
        if isinstance(rec, MalformedLine):
            malformed += 1
            if len(examples) < malformed_examples:
                examples.append(str(rec))
            continue
        records += 1
        categories.update(rec.get("categories") or ())
        ops.update(rec.get("ops") or ())
        source_lines[_line_count(rec["source"])] += 1
        for key in ("jaxpr", "grad_jaxpr"):
            if isinstance(rec.get(key), str):
                primitives |= jaxpr_primitives(rec[key])
        forward = rec.get("stablehlo")
        if isinstance(forward, str):
            names = stablehlo_op_names(forward)
            if isinstance(rec.get("exported_stablehlo"), str):  # the same program, exported
                names |= stablehlo_op_names(rec["exported_stablehlo"])
            hlo_ops.update(names)
            seen_with_grad |= names
            hlo_lines[_line_count(forward)] += 1
        backward = rec.get("grad_stablehlo")
        if isinstance(backward, str):
            with_grad += 1
            seen_with_grad |= stablehlo_op_names(backward)
        elif rec.get("grad_skipped") is not None:
            grad_skipped += 1

    saved = _read_json(root / STATS_NAME)
    store = saved.get("store") if isinstance(saved, dict) else None
    store = store if isinstance(store, dict) else {}
    counts = store.get("failure_counts")
    dedup = None
    if isinstance(saved, dict):
        totals = store.get("totals")
        dedup = dict(totals) if isinstance(totals, dict) else {}

    return {
        "path": str(root),
        "shards": len(shards),
        "bytes": sum(p.stat().st_size for p in shards),
        "records": records,
        "malformed_lines": malformed,
        "malformed_examples": examples,
        "categories": dict(categories.most_common()),
        "ops": dict(ops.most_common()),
        "stablehlo_ops": dict(hlo_ops.most_common()),
        "stablehlo_coverage": _coverage(hlo_ops),
        "stablehlo_coverage_with_grad": _coverage(seen_with_grad),
        "primitives": sorted(primitives),
        "sizes": {
            "source_lines": _size_summary(source_lines),
            "stablehlo_lines": _size_summary(hlo_lines),
        },
        "grad": {"with_grad": with_grad, "skipped": grad_skipped, "records": records},
        "failures": _failure_buckets(root, counts if isinstance(counts, dict) else {}),
        "dedup": dedup,
    }


def _histogram_line(label: str, hist: Mapping[str, int], top: int) -> str:
    if not hist:
        return f"{label}: none"
    items = list(hist.items())
    shown = ", ".join(f"{name} {n}" for name, n in items[:top])
    more = f", ... (+{len(items) - top} more)" if len(items) > top else ""
    return f"{label} ({len(items)}): {shown}{more}"


def _num(x: float | None) -> str:
    if x is None:
        return "-"
    return str(int(x)) if float(x).is_integer() else f"{x:.1f}"


def _wrap(prefix: str, words: list[str]) -> list[str]:
    if not words:
        return []
    return textwrap.wrap(
        ", ".join(words), width=96, initial_indent=prefix, subsequent_indent=" " * len(prefix)
    )


def format_stats(stats: Mapping[str, Any], *, top: int = 15) -> str:
    """A compact human-readable report of ``corpus_stats`` output."""
    lines = [f"corpus {stats['path']}"]
    mib = stats["bytes"] / (1024 * 1024)
    lines.append(
        f"records: {stats['records']}  malformed lines: {stats['malformed_lines']}  "
        f"shards: {stats['shards']} ({mib:.1f} MiB)"
    )
    lines.extend(f"  {example}" for example in stats["malformed_examples"])
    dedup = stats.get("dedup")
    if dedup:
        lines.append(
            "dedup (all runs): "
            + ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in sorted(dedup.items()))
        )
    grad = stats["grad"]
    if grad["records"]:
        pct = 100.0 * grad["with_grad"] / grad["records"]
        lines.append(
            f"grad: {grad['with_grad']}/{grad['records']} records with a backward pass "
            f"({pct:.0f}%), {grad['skipped']} skipped"
        )
    src, hlo = stats["sizes"]["source_lines"], stats["sizes"]["stablehlo_lines"]
    lines.append(
        f"sizes: source lines median {_num(src['median'])}, max {_num(src['max'])}; "
        f"StableHLO lines median {_num(hlo['median'])}, max {_num(hlo['max'])}"
    )
    cov, cov_grad = stats["stablehlo_coverage"], stats["stablehlo_coverage_with_grad"]
    lines.append(
        f"StableHLO op coverage: {cov['covered']}/{cov['total']} spec ops "
        f"(with grad: {cov_grad['covered']}/{cov_grad['total']})"
    )
    lines.append(f"JAX primitives in the jaxprs (forward and backward): "
                 f"{len(stats['primitives'])}")
    lines.extend(_wrap("  missing: ", cov_grad["missing_ops"]))
    lines.extend(_wrap("  not in spec: ", cov_grad["non_spec_ops"]))
    lines.append(_histogram_line("categories", stats["categories"], top))
    lines.append(_histogram_line("ops", stats["ops"], top))
    lines.append(_histogram_line("StableHLO ops", stats["stablehlo_ops"], top))
    failures = stats["failures"]
    lines.append(f"failures: {len(failures)} signature(s)")
    for bucket in failures[:top]:
        known = bucket["known"] or "NEW"
        count = "?" if bucket["count"] is None else bucket["count"]
        sig = bucket["signature"].splitlines()[0] if bucket["signature"] else ""
        lines.append(f"  {count:>6}  {known:<24.24}  {sig:.100}")
    if len(failures) > top:
        lines.append(f"  ... (+{len(failures) - top} more)")
    return "\n".join(lines)
