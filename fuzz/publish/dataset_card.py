"""The dataset card of an export: ``README.md`` with the Hugging Face YAML header.

``render_card`` is pure: it reads what the export did (``ExportSummary``, whose ``report`` is
the printed summary), its Arrow schema and ``fuzz.corpus.stats.corpus_stats`` of the corpus.
The header is written by ``yaml_text`` (PyYAML is not a dependency of the export).
"""

from __future__ import annotations

import json
import re
import textwrap
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fuzz.corpus.schema import FIELDS
from fuzz.publish.near_dedup import NUM_PERM, SHINGLE, THRESHOLD

__all__ = ["ExportSummary", "card_header", "features_yaml", "render_card", "size_category",
           "yaml_text"]

_SIZES = ((10**3, "n<1K"), (10**4, "1K<n<10K"), (10**5, "10K<n<100K"), (10**6, "100K<n<1M"),
          (10**7, "1M<n<10M"), (10**8, "10M<n<100M"), (10**9, "100M<n<1B"))
_DTYPE = {"double": "float64"}  # Arrow's name -> datasets' name, where they differ
_PLAIN = re.compile(r"[A-Za-z_][\w.<>/-]*\*?\Z")  # a string YAML reads back as that string
_RESERVED = {"true", "false", "yes", "no", "on", "off", "y", "n", "null"}
NOTES = {
    "args": "one entry per array leaf: `path` is its JAX key path among the positional "
            "arguments (`[0]`, `[1]['w']`), from which a tuple or dict argument is rebuilt",
    "cost": "XLA's static `cost_analysis` estimates of the compiled program, not measured "
            "time",
    "grad_cost": "XLA's static `cost_analysis` estimates, not measured time",
    "timings": "measured wall-clock seconds on the machine that built the corpus",
}


@dataclass
class ExportSummary:
    """What one export read and wrote: what the card describes (``fuzz.publish.export``)."""

    corpus: Path
    out: Path
    ratios: tuple[float, ...]
    near_dedup: bool
    command: str
    read: int = 0
    malformed: int = 0
    near_duplicates: int = 0
    jsonl_bytes: int = 0
    parquet_bytes: int = 0
    rows: dict[str, int] = field(default_factory=dict)
    nbytes: dict[str, int] = field(default_factory=dict)
    files: dict[str, list[str]] = field(default_factory=dict)
    jax_versions: Counter[str] = field(default_factory=Counter)
    backends: Counter[str] = field(default_factory=Counter)

    def report(self) -> str:
        """The short report ``python -m fuzz export`` prints."""
        splits = ", ".join(f"{k} {n}" for k, n in self.rows.items())
        shards = sum(map(len, self.files.values()))
        dedup = (f"near-duplicates removed: {self.near_duplicates}" if self.near_dedup
                 else "near-dedup off")
        ratio = self.jsonl_bytes / self.parquet_bytes if self.parquet_bytes else float("nan")
        return "\n".join([
            f"exported {sum(self.rows.values())} of {self.read} records from {self.corpus} to "
            f"{self.out} (malformed lines skipped: {self.malformed}, {dedup})",
            f"  {splits} records in {shards} Parquet shard(s)",
            f"  JSONL {self.jsonl_bytes / 2**20:.1f} MiB in, Parquet "
            f"{self.parquet_bytes / 2**20:.1f} MiB out ({ratio:.1f}x smaller)",
        ])


def size_category(n: int) -> str:
    """The Hugging Face ``size_categories`` bucket of ``n`` examples."""
    return next((name for bound, name in _SIZES if n < bound), "n>1B")


def _feature(arrow_type: Any) -> dict[str, Any]:
    import pyarrow as pa

    if pa.types.is_struct(arrow_type):
        return {"struct": [_named(f) for f in arrow_type]}
    if pa.types.is_list(arrow_type):
        inner = _feature(arrow_type.value_type)
        return {"list": inner.get("struct", inner.get("dtype"))}
    return {"dtype": _DTYPE.get(str(arrow_type), str(arrow_type))}


def _named(arrow_field: Any) -> dict[str, Any]:
    return {"name": arrow_field.name, **_feature(arrow_field.type)}


def features_yaml(schema: Any) -> list[dict[str, Any]]:
    """``dataset_info.features`` of an Arrow schema, in the form ``datasets`` writes."""
    return [_named(f) for f in schema]


def card_header(summary: ExportSummary, schema: Any) -> dict[str, Any]:
    """The YAML header as a dict (``license`` is a placeholder: see the card)."""
    splits = [s for s, n in summary.rows.items() if n]  # an empty split has no files
    return {
        "license": "unknown",
        "pretty_name": "jaxsmith corpus",
        "tags": ["jax", "stablehlo", "hlo", "xla", "compilers", "code"],
        "size_categories": [size_category(sum(summary.rows.values()))],
        "configs": [{"config_name": "default", "data_files": [
            {"split": s, "path": f"data/{s}-*"} for s in splits]}],
        "dataset_info": {
            "features": features_yaml(schema),
            "splits": [{"name": s, "num_bytes": summary.nbytes[s],
                        "num_examples": summary.rows[s]} for s in splits],
            "download_size": summary.parquet_bytes,
            "dataset_size": sum(summary.nbytes.values()),
        },
    }


def _scalar(value: Any) -> str:
    plain = isinstance(value, str) and _PLAIN.match(value) and value.lower() not in _RESERVED
    return value if plain else json.dumps(value, ensure_ascii=False)


def yaml_text(value: Any, indent: str = "") -> str:
    """Block YAML of nested dicts and lists; a scalar (or an empty container) plain when
    YAML reads it back unchanged, else as JSON (which YAML reads as the same value)."""
    lines: list[str] = []
    items = value.items() if isinstance(value, Mapping) else ((None, v) for v in value)
    for key, item in items:
        head = f"{indent}- " if key is None else f"{indent}{_scalar(key)}: "
        if isinstance(item, Mapping | list) and item:
            nested = yaml_text(item, indent + "  ")
            if key is None:  # the first line goes after the dash
                lines.append(head + nested[len(indent) + 2:])
                continue
            lines.append(head.rstrip())
            lines.append(nested.rstrip("\n"))
        else:
            lines.append(head + _scalar(item))
    return "\n".join(line.rstrip("\n") for line in lines) + "\n"


def _short_type(arrow_type: Any) -> str:
    import pyarrow as pa

    if pa.types.is_struct(arrow_type):
        return "struct{" + ", ".join(f.name for f in arrow_type) + "}"
    if pa.types.is_list(arrow_type):
        return f"list<{_short_type(arrow_type.value_type)}>"
    return _DTYPE.get(str(arrow_type), str(arrow_type))


def _columns(schema: Any) -> list[str]:
    rows = ["| column | type | holds |", "|---|---|---|"]
    for f in FIELDS:
        note = f" ({NOTES[f.name]})" if f.name in NOTES else ""
        kind = _short_type(schema.field(f.name).type).replace("|", "\\|")
        rows.append(f"| `{f.name}` | `{kind}` | {f.doc}{note} |")
    return rows


def _share_table(hist: Mapping[str, int], total: int, label: str) -> list[str]:
    rows = [f"| {label} | records | share |", "|---|---:|---:|"]
    rows += [f"| {k} | {n} | {n / total:.1%} |" for k, n in hist.items()]
    return rows


def _num(x: float | None) -> str:
    return "-" if x is None else f"{x:g}"


def _wrapped(names: list[str]) -> list[str]:
    return textwrap.wrap(", ".join(f"`{n}`" for n in names), width=96) or ["none"]


def _contents(stats: Mapping[str, Any], summary: ExportSummary) -> list[str]:
    total = max(stats["records"], 1)
    cov, grad = stats["stablehlo_coverage"], stats["stablehlo_coverage_with_grad"]
    top = list(stats["stablehlo_ops"].items())[:20]
    sizes = stats["sizes"]
    versions = ", ".join(f"{v} ({n})" for v, n in summary.jax_versions.most_common())
    backends = ", ".join(f"{v} ({n})" for v, n in summary.backends.most_common())
    return [
        "## Contents", "",
        f"Figures over the source corpus ({stats['records']} records, as `python -m fuzz "
        f"stats` reports them), before near-duplicate removal.", "",
        f"JAX versions of the exported records: {versions or 'none'}; backends: "
        f"{backends or 'none'}.", "",
        "Lines per record: " + "; ".join(
            f"{label} median {_num(sizes[key]['median'])}, max {_num(sizes[key]['max'])}"
            for key, label in (("source_lines", "source"), ("stablehlo_lines", "StableHLO")))
        + ".", "",
        "**Categories** (a record lists each feature its program exercises, so shares add up "
        "to more than 100 %):", "",
        *_share_table(stats["categories"], total, "category"), "",
        f"**StableHLO ops**: the forward programs use {cov['covered']} of the {cov['total']} "
        f"ops of the StableHLO specification, {grad['covered']} with the gradients. Most "
        "used (records whose forward StableHLO uses the op):", "",
        *_share_table(dict(top), total, "op"), "",
        "Not covered:", "", *_wrapped(grad["missing_ops"]), "",
        f"**JAX primitives** in the jaxprs (forward and backward): {len(stats['primitives'])}",
        "", *_wrapped(stats["primitives"]), "",
    ]


def _body(summary: ExportSummary, schema: Any, stats: Mapping[str, Any]) -> list[str]:
    written = sum(summary.rows.values())
    ratios = "/".join(f"{r:g}" for r in summary.ratios)
    split_rows = [f"| {s} | {summary.rows[s]} | {len(summary.files[s])} |" for s in summary.rows]
    if summary.near_dedup:
        dedup = (f"{summary.near_duplicates} of {summary.read} records were removed as near "
                 f"duplicates of a record kept before them: MinHash-LSH over the "
                 f"{SHINGLE}-token shingles of the canonical StableHLO (function names "
                 f"masked, every SSA value read as `%`), {NUM_PERM} permutations, estimated "
                 f"Jaccard similarity >= {THRESHOLD}; the first record of each cluster is "
                 "kept.")
    else:
        dedup = ("Not applied (exported without `--near-dedup`). The corpus store already "
                 "keeps one record per normalised source and per canonical StableHLO.")
    return [
        "# jaxsmith corpus", "",
        f"{written} random JAX programs made by jaxsmith, a grammar-based fuzzer: each "
        "record holds the Python source, its jaxpr, StableHLO, HLO before and after XLA's "
        "passes, the same for its gradient, XLA's cost analysis, and a summary of its "
        "outputs on reproducible inputs, checked by differential oracles.", "",
        "**License**: not set. The header's `license: unknown` is a placeholder: replace it "
        "with the license you publish this dataset under.", "",
        "```python",
        "from datasets import load_dataset",
        "ds = load_dataset(\"path/to/this/directory\")  # or the Hub repository",
        "```", "",
        "## Splits", "",
        "| split | records | Parquet shards |", "|---|---:|---:|", *split_rows, "",
        f"A record's split is decided by the sha256 of its `variant_group` (a hash of the "
        f"program tree; `stablehlo_hash`, then `id`, when absent) against the ratios "
        f"{ratios} (train/validation/test), so every source style of one program is in the "
        f"same split and a new export puts each program where it was.", "",
        "## Near-duplicates", "", dedup, "",
        f"Malformed corpus lines skipped: {summary.malformed}.", "",
        "## Columns", "",
        "Map-like columns are structs over the keys the corpus uses (null where a record "
        "lacks one). Text is zstd-compressed Parquet; a row group holds at most 1,000 rows.",
        "", *_columns(schema), "",
        *_contents(stats, summary),
        "## Regenerating", "",
        "Made by:", "", "```bash", summary.command, "```", "",
        "with the export extra installed (`pip install -e '.[export]'` in a jaxsmith "
        "checkout). The same corpus gives the same files. A corpus is made by `python -m "
        "fuzz --corpus DIR --budget 1h --seed N` and re-extracted with the installed JAX by "
        "`python -m fuzz replay DIR`.", "",
    ]


def render_card(summary: ExportSummary, schema: Any, stats: Mapping[str, Any]) -> str:
    """The whole ``README.md``: YAML header, then the body."""
    header = yaml_text(card_header(summary, schema)).replace(
        "license: unknown\n",
        "# license: fill in the license you publish under (an SPDX id such as apache-2.0)\n"
        "license: unknown\n", 1)
    return "---\n" + header + "---\n\n" + "\n".join(_body(summary, schema, stats))
