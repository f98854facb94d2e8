"""``python -m fuzz export``: typed Parquet splits, the dataset card, near-dedup, refusals.

One small corpus per module (committed records plus injected variants, near copies and bad
lines), exported three times and loaded with ``datasets`` and pandas for real.
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
from collections import defaultdict
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

import fuzz.cli
import fuzz.publish.export as export
import fuzz.publish.near_dedup as near_dedup
from fuzz.corpus.schema import FIELDS, CorpusError
from fuzz.publish.dataset_card import card_header

REPO = Path(__file__).resolve().parents[1]
BASE = 36  # committed records copied into the test corpus
GROUPS, VARIANTS = 12, 3  # injected programs sharing a variant_group
BAD_LINES = 3


def _committed() -> list[dict]:
    """The smallest committed records, and the smallest one whose args hold a dict."""
    lines = (REPO / "corpus" / "shard-00000.jsonl").read_text(encoding="utf-8").splitlines()
    records = sorted((json.loads(line) for line in lines), key=lambda r: len(json.dumps(r)))
    tree = next(r for r in records if any(isinstance(a, dict) for a in r["args"]))
    return [tree] + [r for r in records if r is not tree][:BASE - 1]


def _renumbered(stablehlo: str) -> str:
    """The same module with every SSA value renamed."""
    return re.sub(r"%(\d+)", lambda m: f"%{int(m.group(1)) + 100}", stablehlo)


def _near_copy(stablehlo: str) -> str:
    """Renamed, and one op in the middle dropped: a near copy, not an exact one."""
    lines = _renumbered(stablehlo).splitlines(keepends=True)
    ops = [i for i, line in enumerate(lines) if line.lstrip().startswith("%")]
    return "".join(lines[:ops[len(ops) // 2]] + lines[ops[len(ops) // 2] + 1:])


def _jaccard(a: str, b: str) -> float:
    x, y = near_dedup.stablehlo_shingles(a), near_dedup.stablehlo_shingles(b)
    return len(x & y) / len(x | y)


def _digest(folder: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(folder.rglob("*")):
        h.update(str(p.relative_to(folder)).encode())
        if p.is_file():
            h.update(p.read_bytes())
    return h.hexdigest()


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """(corpus, injected ids, three exports: plain, plain again, near-dedup)."""
    root = tmp_path_factory.mktemp("export")
    corpus = root / "corpus"
    corpus.mkdir()
    base = _committed()
    variants = []
    for g in range(GROUPS):
        for v in range(VARIANTS):
            rec = dict(base[g + 1], id=f"group{g}-v{v}", variant_group=f"group-{g}",
                       stablehlo_hash=f"fake-{g}-{v}", stablehlo=None)
            variants.append(rec)
    exact = dict(base[1], id="copy-exact", variant_group="copy-exact", stablehlo_hash="e")
    big = max(base, key=lambda r: r["stablehlo"].count("\n"))
    near = dict(big, id="copy-near", variant_group="copy-near", stablehlo_hash="n",
                stablehlo=_near_copy(big["stablehlo"]))
    assert 0.8 < _jaccard(near["stablehlo"], big["stablehlo"]) < 1
    good, torn = (dict(base[i], id=f"shard1-{i}", variant_group=f"s{i}", stablehlo=None)
                  for i in (3, 4))
    lines = [json.dumps(r, sort_keys=True) + "\n" for r in [*base, *variants, exact, near]]
    (corpus / "shard-00000.jsonl").write_text("".join(lines), encoding="utf-8")
    (corpus / "shard-00001.jsonl").write_text(
        'not json\n{"id": "x"}\n' + json.dumps(good) + "\n" + json.dumps(torn),
        encoding="utf-8")
    before = _digest(corpus)
    summaries = {}
    for name, dedup in (("a", False), ("b", False), ("dedup", True)):
        summaries[name] = export.export_corpus(corpus, root / name, near_dedup=dedup)
    assert _digest(corpus) == before, "the export modified the corpus"
    return {"root": root, "corpus": corpus, "base": base, "summaries": summaries,
            "injected": {"copy-exact", "copy-near"}}


def _ids(out: Path) -> dict[str, list[str]]:
    return {p.name.split("-")[0]: pq.read_table(p, columns=["id"])["id"].to_pylist()
            for p in sorted((out / "data").glob("*.parquet"))}


def _header(out: Path) -> dict:
    text = (out / "README.md").read_text(encoding="utf-8")
    assert text.startswith("---\n")
    return yaml.safe_load(text.split("---\n")[1])


def _load(out: Path, tmp_path: Path):
    """``datasets.load_dataset`` of ``out``, offline, caching under ``tmp_path``."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_DATASETS_OFFLINE", "1")
        mp.setenv("HF_HUB_OFFLINE", "1")
        mp.setenv("HF_HOME", str(tmp_path / "hf"))
        import datasets

        return datasets.load_dataset(str(out), cache_dir=str(tmp_path / "cache"))


def test_loads_with_datasets_and_pandas(built, tmp_path):
    import datasets

    out = built["root"] / "a"
    ds = _load(out, tmp_path)
    summary = built["summaries"]["a"]
    assert {k: len(v) for k, v in ds.items()} == summary.rows
    assert sum(summary.rows.values()) == BASE + GROUPS * VARIANTS + 2 + 1
    train = ds["train"]
    schema = pq.read_schema(next((out / "data").glob("train-*.parquet")))
    assert train.features == datasets.Features.from_arrow_schema(schema)
    shapes = [leaf["shape"] for args in train["args"] for leaf in args]
    assert shapes and all(isinstance(d, int) for shape in shapes for d in shape)
    assert isinstance(train[0]["cost"], dict) and "flops" in train[0]["cost"]
    assert isinstance(train[0]["versions"]["jax"], str)
    frame = pd.read_parquet(out / "data")
    assert len(frame) == sum(summary.rows.values())
    assert set(frame["id"]) == {i for split in ds.values() for i in split["id"]}
    assert list(frame.columns) == [f.name for f in FIELDS]


def test_args_are_leaves_with_jax_key_paths(built):
    import jax

    tree = built["base"][0]
    table = pd.read_parquet(built["root"] / "a" / "data", filters=[("id", "==", tree["id"])])
    leaves = [(leaf["path"], leaf["shape"].tolist(), leaf["dtype"]) for leaf in table["args"][0]]
    want, _ = jax.tree_util.tree_flatten_with_path(
        tree["args"], is_leaf=lambda x: isinstance(x, list) and len(x) == 2
        and isinstance(x[1], str))
    assert leaves == [(jax.tree_util.keystr(path), shape, dtype) for path, (shape, dtype) in want]
    assert any("'" in path for path, _, _ in leaves)  # a dict argument
    assert all(leaf["shape"].dtype.kind == "i" for leaf in table["args"][0])


def test_columns_are_typed_from_the_schema(built):
    schema = pq.read_schema(next((built["root"] / "a" / "data").glob("train-*.parquet")))
    assert schema.names == [f.name for f in FIELDS]
    kinds = {f.name: f.kind for f in FIELDS}
    for name in schema.names:  # only the text fields are strings: no JSON-in-a-string
        assert pa.types.is_string(schema.field(name).type) == (kinds[name] in ("str", "reason"))
    assert schema.field("args").type == pa.list_(pa.struct(
        [("path", pa.string()), ("shape", pa.list_(pa.int64())), ("dtype", pa.string())]))
    assert pa.types.is_struct(schema.field("cost").type)
    assert {"flops", "bytes accessed"} <= {f.name for f in schema.field("cost").type}
    assert [f.name for f in schema.field("versions").type] == ["jax", "jaxlib", "jaxsmith"]
    sample = schema.field("outputs").type.value_type.field("samples").type.value_type
    assert sample == pa.struct([("index", pa.int64()), ("value", pa.float64())])
    assert schema.field("cost").metadata[b"description"] == b"XLA cost analysis"


def test_a_map_field_no_record_sets_is_a_null_column():
    schema = export.arrow_schema({})
    assert schema.field("mesh").type == pa.null()
    row = export.record_row({"id": "r", "source": "x", "mesh": {}}, {})
    assert row["mesh"] is None and row["args"] is None
    with pytest.raises(CorpusError, match="changed during the export"):
        export.record_row({"id": "r", "source": "x", "cost": {"flops": 1.0}}, {"cost": ["x"]})


def test_splits_are_disjoint_deterministic_and_keep_variants_together(built):
    a, b = built["root"] / "a", built["root"] / "b"
    ids = _ids(a)
    flat = [i for split in ids.values() for i in split]
    assert len(flat) == len(set(flat))
    assert {p.name for p in (a / "data").iterdir()} == {p.name for p in (b / "data").iterdir()}
    for p in (a / "data").iterdir():
        assert p.read_bytes() == (b / "data" / p.name).read_bytes(), p.name
    card_a = (a / "README.md").read_text().replace(str(a), "OUT")
    assert card_a == (b / "README.md").read_text().replace(str(b), "OUT")
    where = defaultdict(set)
    for split, split_ids in ids.items():
        for i in split_ids:
            if i.startswith("group"):
                where[i.split("-")[0]].add(split)
    assert len(where) == GROUPS and all(len(s) == 1 for s in where.values()), dict(where)


def test_split_ratios_are_honoured():
    keys = [f"k{i}" for i in range(20000)]
    counts = {s: 0 for s in export.SPLITS}
    for k in keys:
        counts[export.assign_split(k, (0.8, 0.15, 0.05))] += 1
    assert abs(counts["train"] / 20000 - 0.8) < 0.015
    assert abs(counts["validation"] / 20000 - 0.15) < 0.015
    assert {export.assign_split(k, (0.5, 0.0, 0.5)) for k in keys} == {"train", "test"}
    assert export.split_key({"id": "i", "stablehlo_hash": "h"}) == "h"
    assert export.split_key({"id": "i", "stablehlo_hash": "h", "variant_group": "g"}) == "g"


def test_card_header_and_body(built):
    out, summary = built["root"] / "dedup", built["summaries"]["dedup"]
    header = _header(out)
    schema = pq.read_schema(next((out / "data").glob("train-*.parquet")))
    assert header == card_header(summary, schema)  # yaml_text round-trips
    files = {p.name for p in (out / "data").iterdir()}
    for config in header["configs"][0]["data_files"]:
        assert any(re.fullmatch(config["path"].replace("*", ".*"), f"data/{n}") for n in files)
    splits = {s["name"]: s for s in header["dataset_info"]["splits"]}
    assert {k: v["num_examples"] for k, v in splits.items()} == summary.rows
    features = {f["name"]: f for f in header["dataset_info"]["features"]}
    assert list(features) == [f.name for f in FIELDS]
    assert {f["dtype"] for f in features["cost"]["struct"]} == {"float64"}  # datasets' name
    assert features["args"]["list"][1] == {"name": "shape", "list": "int64"}
    assert header["license"] == "unknown" and header["size_categories"] == ["n<1K"]
    assert header["dataset_info"]["download_size"] == sum(
        p.stat().st_size for p in (out / "data").iterdir())
    body = (out / "README.md").read_text()
    assert "# license: fill in" in body
    assert "not measured time" in body
    assert f"{summary.near_duplicates} of {summary.read} records were removed" in body
    assert f"python -m fuzz export {built['corpus']} --out {out}" in body
    assert f"Malformed corpus lines skipped: {BAD_LINES}." in body
    assert "| `stablehlo` | `string` | forward StableHLO text |" in body


def test_near_dedup_removes_copies_and_keeps_distinct_programs(built):
    summary = built["summaries"]["dedup"]
    assert summary.near_duplicates == len(built["injected"])
    plain = {i for split in _ids(built["root"] / "a").values() for i in split}
    kept = {i for split in _ids(built["root"] / "dedup").values() for i in split}
    assert plain - kept == built["injected"]
    assert built["summaries"]["a"].near_duplicates == 0


def test_near_dedup_on_stablehlo_text(built):
    one, two = (r["stablehlo"] for r in built["base"][1:3])
    dedup = near_dedup.NearDedup()
    assert not dedup.is_duplicate(one) and not dedup.is_duplicate(two)
    assert dedup.is_duplicate(_renumbered(one)) and dedup.is_duplicate(two)
    assert near_dedup.stablehlo_shingles(one) == near_dedup.stablehlo_shingles(_renumbered(one))
    assert _jaccard(one, two) < near_dedup.THRESHOLD
    every = near_dedup.NearDedup()  # an LSH candidate is a duplicate only if similar enough
    every._lsh.query = lambda sketch: range(len(every._kept))
    assert not every.is_duplicate(one) and not every.is_duplicate(two)


def test_malformed_lines_are_skipped_and_counted(built):
    summary = built["summaries"]["a"]
    assert summary.malformed == BAD_LINES
    assert summary.read == BASE + GROUPS * VARIANTS + 2 + 1  # one good line in shard 1
    assert f"malformed lines skipped: {BAD_LINES}" in summary.report()
    assert f"{summary.jsonl_bytes / summary.parquet_bytes:.1f}x smaller" in summary.report()


def _cli(*argv: str) -> int:
    return fuzz.cli.main(["export", *argv])


def test_cli_exports_and_prints_a_summary(built, tmp_path, capsys):
    assert _cli(str(built["corpus"]), "--out", str(tmp_path / "o"), "--split",
                "0.5,0.5,0", "--near-dedup") == 0
    out = capsys.readouterr().out
    assert "near-duplicates removed: 2" in out and "MiB out" in out
    assert sorted(_ids(tmp_path / "o")) == ["train", "validation"]


def test_a_split_without_records_is_left_out_of_the_card(built, tmp_path):
    corpus = tmp_path / "one"
    corpus.mkdir()
    (corpus / "shard-00000.jsonl").write_text(json.dumps(built["base"][5]) + "\n")
    summary = export.export_corpus(corpus, tmp_path / "out")
    (split,) = [k for k, n in summary.rows.items() if n]
    assert [s["name"] for s in _header(tmp_path / "out")["dataset_info"]["splits"]] == [split]
    assert {k: len(v) for k, v in _load(tmp_path / "out", tmp_path).items()} == {split: 1}


def test_a_corpus_without_a_valid_record_is_refused(built, tmp_path):
    corpus = tmp_path / "bad"
    corpus.mkdir()
    (corpus / "shard-00000.jsonl").write_text("not json\n")
    with pytest.raises(CorpusError, match="holds no record to export.*malformed lines "
                                          "skipped: 1"):
        export.export_corpus(corpus, tmp_path / "out")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad"]


@pytest.mark.parametrize("case", ["not_empty", "file", "missing", "no_shards", "inside",
                                  "unwritable", "split", "shard_mb"])
def test_refusals(built, tmp_path, monkeypatch, capsys, case):
    corpus, out = built["corpus"], tmp_path / "out"
    args = [str(corpus), "--out", str(out)]
    expect = {"not_empty": "--out", "file": "CORPUS", "missing": "CORPUS",
              "no_shards": "CORPUS", "inside": "inside CORPUS", "unwritable": "cannot write",
              "split": "--split", "shard_mb": "--shard-mb"}[case]
    if case == "not_empty":
        out.mkdir()
        (out / "keep.txt").write_text("mine")
    elif case == "file":
        args[0] = str(corpus / "shard-00000.jsonl")
    elif case == "missing":
        args[0] = str(tmp_path / "nowhere")
    elif case == "no_shards":
        (tmp_path / "empty").mkdir()
        args[0] = str(tmp_path / "empty")
    elif case == "inside":
        args[2] = str(corpus / "export")
    elif case == "unwritable":  # under a file: no directory can be made there
        (tmp_path / "file").write_text("")
        args[2] = str(tmp_path / "file" / "out")
    else:
        args += {"split": ["--split", "0.9,0.2,0.05"], "shard_mb": ["--shard-mb", "0"]}[case]
    before = sorted(p.name for p in tmp_path.iterdir())
    assert _cli(*args) == 2
    err = capsys.readouterr().err
    assert err.startswith("python -m fuzz: error: ") and expect in err and "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    assert not (corpus / "export").exists()
    if case == "not_empty":
        assert [p.name for p in out.iterdir()] == ["keep.txt"]


def test_an_empty_out_directory_is_used(built, tmp_path):
    (tmp_path / "out").mkdir()
    summary = export.export_corpus(built["corpus"], tmp_path / "out", ratios=(1, 0, 0))
    assert list(summary.rows) == ["train"] and (tmp_path / "out" / "README.md").is_file()


def test_shards_roll_over_and_are_renamed(built, tmp_path, monkeypatch):
    monkeypatch.setattr(export, "ROW_GROUP_ROWS", 4)
    summary = export.export_corpus(built["corpus"], tmp_path / "out", ratios=(1, 0, 0),
                                   shard_mb=0.05)
    files = sorted(p.name for p in (tmp_path / "out" / "data").iterdir())
    n = len(files)
    assert n > 2 and files == [f"train-{i:05d}-of-{n:05d}.parquet" for i in range(n)]
    assert summary.files["train"] == files
    metas = [pq.ParquetFile(tmp_path / "out" / "data" / f).metadata for f in files]
    assert sum(m.num_rows for m in metas) == summary.rows["train"]
    assert all(m.row_group(0).num_rows <= 4 for m in metas)
    assert all(m.row_group(0).column(0).compression == "ZSTD" for m in metas)


def test_a_failed_export_leaves_nothing(built, tmp_path, monkeypatch):
    def broken(record, map_keys):
        raise CorpusError("boom")

    monkeypatch.setattr(export, "record_row", broken)
    with pytest.raises(CorpusError, match="boom"):
        export.export_corpus(built["corpus"], tmp_path / "out")
    assert list(tmp_path.iterdir()) == []


def test_missing_extra_is_named(built, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "datasketch", None)
    with pytest.raises(CorpusError, match=re.escape("pip install -e '.[export]'")):
        export.export_corpus(built["corpus"], tmp_path / "out", near_dedup=True)
    assert list(tmp_path.iterdir()) == []
