"""``python -m fuzz export CORPUS --out DIR``: publish a corpus as a Parquet dataset.

Three streaming passes, none holding the corpus in memory: a scan for the keys of the
map-like fields (each becomes a struct over them) and the lines to export, ``corpus_stats``
for the card, and the write.  A record goes to train, validation or test by a hash of its
``variant_group`` (else ``stablehlo_hash``, else ``id``): every source style of a program
lands in one split.  ``--near-dedup`` drops a record whose normalised StableHLO is a near
copy of one kept before it (MinHash-LSH), whose index is the only state that grows with
the corpus: about 10 KiB per kept record (datasketch's tables 8, the kept sketch 1.3).

Layout: ``DIR/data/<split>-NNNNN-of-MMMMM.parquet`` (the Hugging Face convention; shards are
numbered while streaming and renamed once their count is known), zstd, row groups of at
most 1,000 rows, and all splits' buffers written out as row groups whenever they hold 64 MiB
of text together (so memory stays flat and a reader streams a group at a time), a new shard
once one passes ``--shard-mb``;
``DIR/README.md`` is the dataset card (``fuzz.publish.dataset_card``).  Everything is written in a
hidden sibling of ``DIR`` that is renamed into place at the end: a failed export leaves
nothing behind, and the corpus is only read.
"""

from __future__ import annotations

import argparse
import hashlib
import math
import os
import re
import shlex
import shutil
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

from fuzz.corpus.records import MalformedLine, iter_file, shard_paths
from fuzz.corpus.schema import FIELDS, CorpusError, check_value
from fuzz.corpus.stats import corpus_stats
from fuzz.publish.dataset_card import ExportSummary, render_card
from fuzz.publish.near_dedup import EXTRA, NUM_PERM, SHINGLE, THRESHOLD, NearDedup, optional

__all__ = ["DEFAULT_SPLIT", "SPLITS", "ExportSummary", "arrow_schema", "assign_split",
           "export_corpus", "main", "parse_split", "record_row", "split_key"]

SPLITS = ("train", "validation", "test")
DEFAULT_SPLIT = (0.9, 0.05, 0.05)
DEFAULT_SHARD_MB = 500.0
ROW_GROUP_ROWS = 1000
ROW_GROUP_BYTES = 64 * 2**20
_MAP_VALUE = {"float_map": "float64", "str_map": "string", "int_map": "int64"}


def _kind_type(pa: ModuleType, kind: str, keys: Sequence[str]) -> Any:
    if kind in _MAP_VALUE:
        value = getattr(pa, _MAP_VALUE[kind])()
        return pa.struct([(k, value) for k in keys]) if keys else pa.null()
    shape = pa.list_(pa.int64())
    samples = pa.list_(pa.struct([("index", pa.int64()), ("value", pa.float64())]))
    types = {
        "str": pa.string(), "reason": pa.string(), "int": pa.int64(),
        "str_list": pa.list_(pa.string()), "int_list": pa.list_(pa.int64()),
        "args": pa.list_(pa.struct([("path", pa.string()), ("shape", shape),
                                    ("dtype", pa.string())])),
        "inputs": pa.struct([("seed", pa.int64()), ("recipe", pa.string())]),
        "values": pa.list_(pa.struct([
            ("shape", shape), ("dtype", pa.string()), ("nonfinite", pa.int64()),
            ("sum", pa.float64()), ("abs_sum", pa.float64()), ("samples", samples)])),
    }
    if kind not in types:
        raise AssertionError(f"field kind {kind!r} has no Arrow type: add one to "
                             "fuzz.publish.export._kind_type")
    return types[kind]


def arrow_schema(map_keys: Mapping[str, Sequence[str]]) -> Any:
    """The Arrow schema of the export: one column per ``FIELDS`` entry, typed by its kind.

    ``args`` is a list of its leaves ``{path, shape, dtype}``: an argument may be a tree of
    tuples and dicts nested up to four deep, which no fixed struct holds, while a list of
    leaves keeps every shape a typed ``list<int64>``.  ``path`` is the leaf's JAX key path
    among the positional arguments (``jax.tree_util.keystr``: ``[0]``, ``[1][0]``,
    ``[2]['w']``), from which the tree is rebuilt; an empty tuple or dict argument, which
    the grammar never draws, has no leaf and no entry.

    A map-like kind (``cost``, ``timings``, ``versions``, ``oracles``, ``mesh``) is a struct
    over the keys ``map_keys[name]`` (sorted; null where a record lacks one), not a
    ``map<string, …>``: ``datasets`` cannot load an Arrow map column (5.2: "does not have a
    datasets dtype equivalent"), and a struct gives ``row["cost"]["flops"]`` and names the
    keys in the card.  One no record sets is a null column (Parquet has no empty struct).
    ``outputs`` and ``grad_outputs``: lists of ``{shape, dtype, nonfinite, sum, abs_sum,
    samples: [{index, value}]}``.
    """
    pa = optional("pyarrow")
    return pa.schema([pa.field(f.name, _kind_type(pa, f.kind, sorted(map_keys.get(f.name, ()))),
                               metadata={"description": f.doc}) for f in FIELDS])


def _arg_leaves(node: Any, path: str) -> Iterator[dict[str, Any]]:
    if isinstance(node, list) and len(node) == 2 and isinstance(node[1], str):
        yield {"path": path, "shape": node[0], "dtype": node[1]}
    elif isinstance(node, dict):
        for key in sorted(node):
            yield from _arg_leaves(node[key], f"{path}[{key!r}]")
    else:
        for i, child in enumerate(node):
            yield from _arg_leaves(child, f"{path}[{i}]")


_CONVERT = {
    "args": lambda v: [leaf for i, a in enumerate(v) for leaf in _arg_leaves(a, f"[{i}]")],
    "values": lambda v: [{**s, "samples": [{"index": i, "value": x} for i, x in s["samples"]]}
                         for s in v],
}


def record_row(record: Mapping[str, Any], map_keys: Mapping[str, Sequence[str]]) -> dict:
    """``record`` (as ``fuzz.corpus.records`` reads it) as a row of ``arrow_schema(map_keys)``.

    Raises ``CorpusError`` for a map key outside ``map_keys`` (the corpus changed since the
    keys were scanned).
    """
    row: dict[str, Any] = {}
    for f in FIELDS:
        value, _ = check_value(f.name, f.kind, record.get(f.name))  # normalised, checked
        if value is not None and f.kind in _MAP_VALUE:
            keys = map_keys.get(f.name, ())
            if not set(value) <= set(keys):
                raise CorpusError(
                    f"record {record.get('id')!r}: {f.name} has key(s) "
                    f"{sorted(set(value) - set(keys))} the scan did not see: the corpus "
                    "changed during the export; export again")
            value = value if keys else None
        elif value is not None and f.kind in _CONVERT:
            value = _CONVERT[f.kind](value)
        row[f.name] = value
    return row


def parse_split(text: str) -> tuple[float, float, float]:
    """``"0.9,0.05,0.05"`` -> the train, validation and test ratios (argparse type)."""
    try:
        ratios = tuple(float(x) for x in text.split(","))
    except ValueError:
        ratios = ()
    if (len(ratios) != 3 or not all(math.isfinite(r) and r >= 0 for r in ratios)
            or abs(sum(ratios) - 1) > 1e-6):
        raise argparse.ArgumentTypeError(
            f"--split {text!r} must be three ratios >= 0 that sum to 1 (train,validation,"
            "test), e.g. 0.9,0.05,0.05; a 0 leaves that split out")
    return ratios  # type: ignore[return-value]


def split_key(record: Mapping[str, Any]) -> str:
    """What decides a record's split: ``variant_group``, else ``stablehlo_hash``, else ``id``."""
    return record.get("variant_group") or record.get("stablehlo_hash") or record["id"]


def assign_split(key: str, ratios: Sequence[float]) -> str:
    """The split of ``key``: the first 64 bits of its sha256, as a fraction of 2**64, against
    the cumulative ``ratios``; the same key always lands in the same split."""
    x = int.from_bytes(hashlib.sha256(key.encode("utf-8")).digest()[:8], "big") / 2**64
    total = 0.0
    for name, ratio in zip(SPLITS, ratios, strict=True):
        total += ratio
        if x < total:
            return name
    return next(n for n, r in zip(SPLITS[::-1], ratios[::-1], strict=True) if r > 0)


class _SplitWriter:
    """The Parquet shards of one split, written a row group at a time."""

    def __init__(self, schema: Any, folder: Path, split: str, shard_bytes: int) -> None:
        self.schema, self.folder, self.split, self.shard_bytes = schema, folder, split, shard_bytes
        self.files: list[Path] = []
        self.rows = self.nbytes = self.text = 0
        self._buffer: list[dict[str, Any]] = []
        self._writer: Any = None

    def add(self, row: dict[str, Any], text_bytes: int) -> None:
        self._buffer.append(row)
        self.text += text_bytes
        self.rows += 1
        if len(self._buffer) >= ROW_GROUP_ROWS:
            self.flush()

    def flush(self, last: bool = False) -> None:
        """Write the buffered rows as one row group (and close the shard if full or last)."""
        if self._buffer:
            table = optional("pyarrow").Table.from_pylist(self._buffer, schema=self.schema)
            self._buffer, self.text = [], 0
            if self._writer is None:
                self.files.append(self.folder / f"{self.split}-{len(self.files):05d}.partial")
                self._writer = optional("pyarrow.parquet").ParquetWriter(
                    self.files[-1], self.schema, compression="zstd")
            self._writer.write_table(table, row_group_size=table.num_rows)
            self.nbytes += table.nbytes
        if self._writer and (last or self.files[-1].stat().st_size >= self.shard_bytes):
            self._writer.close()
            self._writer = None

    def finish(self) -> list[str]:
        """Close the last shard and give every shard its final name; return the names."""
        self.flush(last=True)
        names = [f"{self.split}-{i:05d}-of-{len(self.files):05d}.parquet"
                 for i in range(len(self.files))]
        for file, name in zip(self.files, names, strict=True):
            file.rename(self.folder / name)
        return names


def _check_paths(corpus: Path, out: Path) -> None:
    if not corpus.is_dir() or not shard_paths(corpus):
        raise CorpusError(f"CORPUS {str(corpus)!r} is not a corpus directory: expected a "
                          "directory holding shard-NNNNN.jsonl files (python -m fuzz --corpus "
                          "DIR makes one)")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise CorpusError(f"--out {str(out)!r} exists and is not empty: give a new or empty "
                          "directory (nothing was written)")
    if out.resolve().is_relative_to(corpus.resolve()):
        raise CorpusError(f"--out {str(out)!r} is inside CORPUS {str(corpus)!r}: the export "
                          "never writes into a corpus")


def _scan(corpus: Path) -> tuple[dict[Path, int], dict[str, set[str]], int]:
    """(lines of each shard, keys of each map-like field, JSONL bytes): the first pass."""
    keys: dict[str, set[str]] = {f.name: set() for f in FIELDS if f.kind in _MAP_VALUE}
    lines: dict[Path, int] = {}
    size = 0
    for file in shard_paths(corpus):
        size += file.stat().st_size
        lines[file] = 0
        for _, line_no, rec in iter_file(file):
            lines[file] = line_no
            if isinstance(rec, dict):
                for name, seen in keys.items():
                    seen.update(rec.get(name) or ())
    return lines, keys, size


def _write(summary: ExportSummary, folder: Path, lines: Mapping[Path, int],
           map_keys: Mapping[str, Sequence[str]], shard_bytes: int) -> Any:
    """The second pass: every record of the scanned lines into its split; returns the schema."""
    schema = arrow_schema(map_keys)
    writers = {s: _SplitWriter(schema, folder, s, shard_bytes)
               for s, r in zip(SPLITS, summary.ratios, strict=True) if r > 0}
    dedup = NearDedup() if summary.near_dedup else None
    for file, last in lines.items():
        for _, line_no, rec in iter_file(file):
            if line_no > last:
                break
            if isinstance(rec, MalformedLine):
                summary.malformed += 1
                continue
            summary.read += 1
            if dedup and isinstance(rec.get("stablehlo"), str) and dedup.is_duplicate(
                    rec["stablehlo"]):
                summary.near_duplicates += 1
                continue
            text = sum(len(v) for v in rec.values() if isinstance(v, str))
            writers[assign_split(split_key(rec), summary.ratios)].add(
                record_row(rec, map_keys), text)
            if sum(w.text for w in writers.values()) >= ROW_GROUP_BYTES:
                for writer in writers.values():  # the buffers' bound, whatever the ratios
                    writer.flush()
            summary.jax_versions[(rec.get("versions") or {}).get("jax") or "unknown"] += 1
            summary.backends[rec.get("backend") or "unknown"] += 1
    for split, writer in writers.items():
        summary.files[split] = writer.finish()
        summary.rows[split], summary.nbytes[split] = writer.rows, writer.nbytes
    summary.parquet_bytes = sum(p.stat().st_size for p in folder.iterdir())
    return schema


def export_corpus(corpus: str | os.PathLike[str], out: str | os.PathLike[str], *,
                  ratios: Sequence[float] = DEFAULT_SPLIT,
                  shard_mb: float = DEFAULT_SHARD_MB,
                  near_dedup: bool = False) -> ExportSummary:
    """Export ``corpus`` to ``out`` (Parquet shards per split plus ``README.md``).

    Raises ``CorpusError`` when ``corpus`` is not a corpus directory, ``out`` exists and is
    not empty or lies inside ``corpus`` (nothing is written then), or pyarrow / datasketch
    are missing.
    """
    corpus, out = Path(corpus), Path(out)
    _check_paths(corpus, out)
    optional("pyarrow.parquet")
    if near_dedup:
        optional("datasketch")
    command = shlex.join(
        ["python", "-m", "fuzz", "export", str(corpus), "--out", str(out), "--split",
         ",".join(f"{r:g}" for r in ratios), "--shard-mb", f"{shard_mb:g}"]
        + (["--near-dedup"] if near_dedup else []))
    summary = ExportSummary(corpus, out, tuple(ratios), near_dedup, command)
    lines, keys, summary.jsonl_bytes = _scan(corpus)
    stats = corpus_stats(corpus)
    target = out.resolve()
    tmp = target.parent / f".{target.name}.export-{os.getpid()}"
    try:
        (tmp / "data").mkdir(parents=True)
        map_keys = {name: sorted(seen) for name, seen in keys.items()}
        schema = _write(summary, tmp / "data", lines, map_keys, int(shard_mb * 2**20))
        if not any(summary.rows.values()):
            raise CorpusError(f"CORPUS {str(corpus)!r} holds no record to export: "
                              + summary.report().splitlines()[0])
        (tmp / "README.md").write_text(render_card(summary, schema, stats), encoding="utf-8")
        os.replace(tmp, target)  # an empty directory at ``out`` is replaced
    except BaseException as e:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(e, OSError):
            raise CorpusError(f"--out {str(out)!r}: cannot write: {e.strerror or e}") from e
        raise
    return summary


def _shard_mb(text: str) -> float:
    value = float(text) if re.fullmatch(r"\d+\.?\d*|\.\d+", text) else 0.0
    if not 0 < value < math.inf:
        raise argparse.ArgumentTypeError(
            f"--shard-mb {text!r} must be a positive number of MiB, e.g. 500")
    return value


def parser(parser_class: type[argparse.ArgumentParser]) -> argparse.ArgumentParser:
    p = parser_class(prog="python -m fuzz export", description=(
        "Publish a corpus as a Hugging Face dataset: typed Parquet shards (zstd) split into "
        "train, validation and test by program, and a dataset card (README.md).  Needs the "
        f"export extra: {EXTRA}."))
    p.add_argument("corpus", type=Path, metavar="CORPUS", help="the corpus directory (read only)")
    p.add_argument("--out", type=Path, required=True,
                   help="the dataset directory to write: new or empty")
    p.add_argument("--split", type=parse_split, default=DEFAULT_SPLIT,
                   metavar="TRAIN,VALIDATION,TEST",
                   help="ratios of the splits, by a hash of each record's variant_group; "
                        "default " + ",".join(map(str, DEFAULT_SPLIT)))
    p.add_argument("--shard-mb", type=_shard_mb, default=DEFAULT_SHARD_MB,
                   help=f"start a new Parquet shard past this many MiB; default "
                        f"{DEFAULT_SHARD_MB:g}")
    p.add_argument("--near-dedup", action="store_true",
                   help=f"drop near-duplicate StableHLO (MinHash-LSH, {SHINGLE}-token shingles, "
                        f"{NUM_PERM} permutations, Jaccard >= {THRESHOLD}; the first is kept)")
    return p


def main(argv: Sequence[str], parser_class: type[argparse.ArgumentParser]) -> int:
    """``python -m fuzz export``; ``parser_class.error`` raises the CLI's usage error, and a
    ``CorpusError`` (bad corpus or --out) is reported by the CLI with exit status 2."""
    a = parser(parser_class).parse_args(list(argv))
    summary = export_corpus(a.corpus, a.out, ratios=a.split, shard_mb=a.shard_mb,
                            near_dedup=a.near_dedup)
    print(summary.report())
    return 0
