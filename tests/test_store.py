"""The corpus store: dedup, shards, resume, crash safety, locking, failures, stats.

Over 400 lines: one test per promise of the store, whose crash-safety tests need their own
planted crashes and partial files."""

import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pandas as pd
import pytest

from fuzz.corpus.stats import (
    STABLEHLO_OPS,
    corpus_stats,
    format_stats,
    jaxpr_primitives,
    stablehlo_op_names,
)
from fuzz.corpus.store import (
    FIELD_NAMES,
    CorpusError,
    CorpusStore,
    MalformedLine,
    iter_records,
    normalized_source_hash,
    shard_paths,
)

REPO = Path(__file__).resolve().parents[1]


def make_record(i: int, *, pad: int = 0, **extra):
    """A small valid record; program i has its own source and its own StableHLO."""
    rec = {
        "source": f"import jax.numpy as jnp\n\n\ndef f(x):\n    return jnp.sin(x) + {i}\n",
        "entry": "f",
        "args": [[[2, 3], "float32"]],
        "categories": ["elementwise"] + (["reduction"] if i % 2 else []),
        "ops": ["sin", "add"],
        "seed": i,
        "stablehlo": (
            "module @jit_f {\n  func.func public @main(%arg0: tensor<2x3xf32>) {\n"
            f"    %0 = stablehlo.sine %arg0 : tensor<2x3xf32>  // {i}\n"
            "    %1 = stablehlo.add %0, %0 : tensor<2x3xf32>\n"
            "    return %1 : tensor<2x3xf32>\n  }\n}\n" + "//" + "x" * pad + "\n"
        ),
        "cost": {"flops": 6, "bytes accessed": 48.0},
    }
    rec.update(extra)
    return rec


def read_all(path):
    return [r for _, _, r in iter_records(path)]


# ------------------------------------------------------------------------- add / dedup


def test_add_dedups_on_normalised_source_and_on_ir(tmp_path):
    with CorpusStore.open(tmp_path / "c") as store:
        assert store.add(make_record(0)) == "added"
        reformatted = make_record(0)
        reformatted["source"] = (
            "# a comment\nimport jax.numpy as jnp\ndef f(x):\n    return (jnp.sin(x)  +  0)\n"
        )
        reformatted["stablehlo"] = "different text, but the same program"
        assert store.add(reformatted) == "duplicate_source"
        same_ir = make_record(1, stablehlo_hash="h-1")
        assert store.add(same_ir) == "added"
        other_source_same_ir = make_record(2, stablehlo_hash="h-1")
        assert store.add(other_source_same_ir) == "duplicate_ir"
        # Without an extractor hash, the store hashes the StableHLO text itself.
        assert store.add(make_record(3, stablehlo=make_record(0)["stablehlo"])) == "duplicate_ir"
        assert (store.added, store.duplicate_source, store.duplicate_ir) == (2, 1, 2)
        assert len(store) == 2
        assert "h-1" in store.known_ir_hashes()
        assert store.knows_source("import jax.numpy as jnp\ndef f(x): return jnp.sin(x) + 1")

    records = read_all(tmp_path / "c")
    assert len(records) == 2
    first = records[0]
    assert first["source_hash"] == normalized_source_hash(make_record(0)["source"])
    assert first["id"] == first["source_hash"][:16]
    assert records[1]["stablehlo_hash"] == "h-1"


def test_every_record_has_every_field_with_one_type(tmp_path):
    with CorpusStore.open(tmp_path) as store:
        store.add({"source": "x = 1\n"})
        store.add(make_record(1, grad_skipped=True, versions={"jax": "0.10.2"}))
        store.add(make_record(2, id="given-id", grad_skipped="integer inputs"))
    lines = (tmp_path / "shard-00000.jsonl").read_text(encoding="utf-8").splitlines()
    records = [json.loads(line) for line in lines]
    assert all(set(r) == FIELD_NAMES for r in records)
    assert records[0]["stablehlo"] is None and records[0]["stablehlo_hash"] is None
    assert records[1]["grad_skipped"] == "skipped"
    assert records[1]["cost"] == {"flops": 6.0, "bytes accessed": 48.0}  # always floats
    assert records[2]["id"] == "given-id"
    assert lines[1] == json.dumps(records[1], sort_keys=True, ensure_ascii=False)


@pytest.mark.parametrize(
    ("record", "message"),
    [
        ({"stablehlo": "x"}, "'source'"),
        ({"source": "def f(:\n"}, "does not parse"),
        ({"source": "x = 1", "colour": "red"}, "unknown field(s) ['colour']"),
        ({"source": "x = 1", "seed": "7"}, "seed must be an int64"),
        ({"source": "x = 1", "ops": "sin"}, "ops must be a list of strings"),
        ({"source": "x = 1", "args": [[[2], 3]]}, "args must be a list of [shape, dtype]"),
        ({"source": "x = 1", "cost": {"flops": "many"}}, "cost must be a dict"),
    ],
)
def test_bad_records_are_rejected_with_the_field_named(tmp_path, record, message):
    with CorpusStore.open(tmp_path) as store, pytest.raises(CorpusError, match=None) as info:
        store.add(record)
    assert message in str(info.value)
    assert read_all(tmp_path) == []


def test_given_id_reused_for_another_program_is_an_error(tmp_path):
    with CorpusStore.open(tmp_path) as store:
        store.add(make_record(0, id="same"))
        with pytest.raises(CorpusError, match="'same' is already in corpus"):
            store.add(make_record(1, id="same"))


# ------------------------------------------------------------------------- shards, resume


def test_shards_roll_over_at_the_size_limit(tmp_path):
    limit = 2000
    with CorpusStore.open(tmp_path, shard_bytes=limit) as store:
        for i in range(30):
            assert store.add(make_record(i)) == "added"
        store.add(make_record(99, pad=3 * limit))  # a record larger than a shard: alone in one
    shards = shard_paths(tmp_path)
    assert len(shards) > 5
    assert [p.name for p in shards[:2]] == ["shard-00000.jsonl", "shard-00001.jsonl"]
    for p in shards:
        lines = p.read_bytes().splitlines(keepends=True)
        assert p.stat().st_size <= limit or len(lines) == 1
    seeds = [r["seed"] for r in read_all(tmp_path)]
    assert seeds == [*range(30), 99]


def test_reopen_knows_every_id_and_hash_and_adds_no_duplicates(tmp_path):
    with CorpusStore.open(tmp_path, shard_bytes=1500) as store:
        for i in range(20):
            store.add(make_record(i))
        ids, irs = store.known_ids(), store.known_ir_hashes()
    with CorpusStore.open(tmp_path, shard_bytes=1500) as store:
        assert len(store) == 20
        assert store.known_ids() == ids and store.known_ir_hashes() == irs
        assert [store.add(make_record(i)) for i in range(25)].count("added") == 5
        assert store.duplicate_source == 20
    records = read_all(tmp_path)
    assert len(records) == 25 and len({r["id"] for r in records}) == 25


def test_torn_last_line_is_dropped_and_the_rest_kept(tmp_path):
    with CorpusStore.open(tmp_path) as store:
        for i in range(3):
            store.add(make_record(i))
    shard = tmp_path / "shard-00000.jsonl"
    whole = shard.read_bytes()
    half = json.dumps(make_record(7)).encode()[:57]
    shard.write_bytes(whole + half)
    with CorpusStore.open(tmp_path) as store:
        assert store.dropped_partial == 1 and store.malformed == 0
        assert len(store) == 3
        assert shard.read_bytes() == whole
        assert store.add(make_record(7)) == "added"
    assert [r["seed"] for r in read_all(tmp_path)] == [0, 1, 2, 7]


def test_bad_lines_in_the_middle_are_counted_and_kept(tmp_path):
    with CorpusStore.open(tmp_path, shard_bytes=1200) as store:
        for i in range(4):
            store.add(make_record(i))
    first = shard_paths(tmp_path)[0]
    junk = b'{"not": "closed"\n[1, 2]\n{"source": "x = 1", "id": "q", "seed": "seven"}\n'
    first.write_bytes(junk + first.read_bytes())
    before = {p: p.read_bytes() for p in shard_paths(tmp_path)}
    with CorpusStore.open(tmp_path) as store:
        assert store.malformed == 3 and store.dropped_partial == 0
        assert len(store) == 4
    after = {p: p.read_bytes() for p in shard_paths(tmp_path)}
    assert after == before  # nothing deleted


def test_complete_last_line_of_the_wrong_type_is_kept(tmp_path):
    with CorpusStore.open(tmp_path) as store:
        store.add(make_record(0))
    shard = tmp_path / "shard-00000.jsonl"
    shard.write_bytes(shard.read_bytes() + b'{"source": "y = 2", "id": "w", "ops": 3}\n')
    with CorpusStore.open(tmp_path) as store:
        assert (store.malformed, store.dropped_partial, len(store)) == (1, 0, 1)
    assert shard.read_bytes().endswith(b'"ops": 3}\n')


def test_iter_records_reports_bad_lines_and_never_raises(tmp_path):
    with CorpusStore.open(tmp_path) as store:
        store.add(make_record(0))
    shard = tmp_path / "shard-00000.jsonl"
    shard.write_bytes(
        shard.read_bytes() + b"{oops\n" + b'"a string"\n' + b"\xff\xfe\n" + b'{"source": 5}\n'
        b'{"id": "x", "source": "y"'
    )
    out = list(iter_records(tmp_path))
    assert isinstance(out[0][2], dict)
    errors = [r for _, _, r in out[1:]]
    assert all(isinstance(e, MalformedLine) for e in errors)
    assert [e.line_no for e in errors] == [2, 3, 4, 5, 6]
    assert "shard-00000.jsonl:2: invalid JSON" in str(errors[0])
    assert "not a JSON object" in errors[1].reason
    assert "incomplete last line" in errors[4].reason
    assert list(iter_records(tmp_path / "missing")) == []


_WRITER = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, {repo!r})
    sys.path.insert(0, {tests!r})
    from test_store import make_record
    from fuzz.corpus.store import CorpusStore

    store = CorpusStore.open({path!r}, shard_bytes=40_000, fsync_every=5)
    i = int(sys.argv[1])
    while True:
        store.add(make_record(i, pad=3000 + 50 * (i % 7)))
        i += 1
    """
)


def _start_writer(path: Path, start: int) -> subprocess.Popen:
    code = _WRITER.format(repo=str(REPO), tests=str(REPO / "tests"), path=str(path))
    return subprocess.Popen([sys.executable, "-c", code, str(start)], stderr=subprocess.PIPE)


def _wait_for_bytes(proc: subprocess.Popen, path: Path, n: int) -> None:
    deadline = time.monotonic() + 10
    while sum(p.stat().st_size for p in shard_paths(path)) < n:
        if proc.poll() is not None:
            raise AssertionError(f"writer exited early: {proc.stderr.read().decode()}")
        assert time.monotonic() < deadline, "writer made no progress"
        time.sleep(0.005)


@pytest.mark.slow
def test_sigkill_at_a_random_moment_loses_nothing_complete(tmp_path):
    rng = random.Random()
    path = tmp_path / "c"
    for round_no in range(3):
        delay = rng.uniform(0, 0.15)
        proc = _start_writer(path, start=0)
        _wait_for_bytes(proc, path, 20_000 * (round_no + 1))
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait()

        with CorpusStore.open(path, shard_bytes=40_000) as store:
            n = len(store)
            assert store.malformed == 0, f"delay={delay:.3f}"
            assert store.dropped_partial in (0, 1)
            # A resumed run starting over adds no duplicates.
            statuses = [store.add(make_record(i, pad=3000 + 50 * (i % 7))) for i in range(n + 3)]
            assert statuses.count("added") == 3, f"delay={delay:.3f}"
        records = read_all(path)
        assert all(isinstance(r, dict) for r in records), f"delay={delay:.3f}"
        seeds = [r["seed"] for r in records]
        assert seeds == list(range(len(seeds))), "records are whole and in order"


# ------------------------------------------------------------------------- readers


def test_pandas_loads_the_shards(tmp_path):
    with CorpusStore.open(tmp_path, shard_bytes=1500) as store:
        for i in range(12):
            store.add(make_record(i))
        store.add({"source": "x = 1\n"})
        store.add(make_record(50, grad_stablehlo="module {}", grad_skipped=False))
    shards = shard_paths(tmp_path)
    assert len(shards) > 1
    frame = pd.concat([pd.read_json(p, lines=True, dtype=False) for p in shards])
    assert len(frame) == 14
    assert set(frame.columns) == FIELD_NAMES
    assert list(frame["seed"].iloc[:3]) == [0, 1, 2]
    assert frame["source"].map(type).eq(str).all()


# ------------------------------------------------------------------------- lock, paths


def test_lock_refuses_a_second_writer(tmp_path):
    store = CorpusStore.open(tmp_path)
    with pytest.raises(CorpusError, match="already open by another writer") as info:
        CorpusStore.open(tmp_path)
    assert str(tmp_path) in str(info.value)
    code = f"import sys; sys.path.insert(0, {str(REPO)!r})\n" + textwrap.dedent(
        f"""
        from fuzz.corpus.store import CorpusError, CorpusStore
        try:
            CorpusStore.open({str(tmp_path)!r})
        except CorpusError as e:
            print("refused:", e)
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert f"refused: corpus {tmp_path} is already open" in out.stdout
    assert f"pid {os.getpid()}" in out.stdout
    store.close()
    store.close()  # idempotent
    with CorpusStore.open(tmp_path) as again:
        assert len(again) == 0
    with pytest.raises(CorpusError, match="closed"):
        store.add(make_record(0))


def test_unwritable_path_gives_a_clear_error(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    with pytest.raises(CorpusError, match="cannot create corpus directory") as info:
        CorpusStore.open(blocker / "corpus")
    assert str(blocker / "corpus") in str(info.value)
    with pytest.raises(CorpusError, match="exists but is not a directory"):
        CorpusStore.open(blocker)
    with pytest.raises(CorpusError, match="does not exist"):
        CorpusStore.open(tmp_path / "nope", create=False)
    if os.geteuid() != 0:  # root can write anywhere
        ro = tmp_path / "ro"
        ro.mkdir(mode=0o555)
        with pytest.raises(CorpusError, match="not writable"):
            CorpusStore.open(ro)


def test_bad_options_name_the_argument(tmp_path):
    with pytest.raises(CorpusError, match="shard_bytes=0 must be a positive"):
        CorpusStore.open(tmp_path, shard_bytes=0)
    with pytest.raises(CorpusError, match="fsync_every=0"):
        CorpusStore.open(tmp_path, fsync_every=0)


# ------------------------------------------------------------------------- failures, stats


def test_failures_are_saved_once_and_counted_across_runs(tmp_path):
    sig = "XlaRuntimeError: INTERNAL: during context [pre-optimization]: bad shape"
    with CorpusStore.open(tmp_path) as store:
        folder = store.save_failure(sig, None, make_record(0), "print('repro')\n")
        assert folder is not None and folder.parent == tmp_path / "failures"
        assert folder.name.startswith("xlaruntimeerror-internal-during-context")
        assert (folder / "repro.py").read_text() == "print('repro')\n"
        meta = json.loads((folder / "repro.json").read_text())
        assert meta["signature"] == sig and meta["record"]["seed"] == 0
        assert store.save_failure(sig, None, make_record(1), "other\n") is None
        assert store.count_failure(sig, None) == 1
        assert store.count_failure(sig, None) == 2
        store.count_failure("known crash", "jax-issue-123")
        assert not list(folder.glob(".*tmp*"))
    with CorpusStore.open(tmp_path) as store:
        assert store.failure_signatures() == {sig}
        assert store.save_failure(sig, None, make_record(2), "again\n") is None
        assert store.count_failure(sig, None) == 3
    assert (folder / "repro.py").read_text() == "print('repro')\n"
    saved = json.loads((tmp_path / "stats.json").read_text())
    assert saved["store"]["failure_counts"] == {
        sig: {"known": None, "count": 3},
        "known crash": {"known": "jax-issue-123", "count": 1},
    }


def test_write_stats_merges_the_store_counters(tmp_path):
    with CorpusStore.open(tmp_path) as store:
        store.add(make_record(0))
        store.add(make_record(0))
        store.write_stats({"programs": 2, "elapsed_s": 1.5})
        first = json.loads((tmp_path / "stats.json").read_text())
        assert first["programs"] == 2
        assert first["store"]["session"] == {"added": 1, "duplicate_source": 1, "duplicate_ir": 0}
    with CorpusStore.open(tmp_path) as store:
        store.add(make_record(0))
    totals = json.loads((tmp_path / "stats.json").read_text())["store"]["totals"]
    assert totals == {"added": 1, "duplicate_source": 2, "duplicate_ir": 0}
    assert not [p for p in tmp_path.iterdir() if ".tmp" in p.name]


def test_corpus_stats_matches_what_was_written(tmp_path):
    with CorpusStore.open(tmp_path, shard_bytes=3000) as store:
        for i in range(6):
            extra = {"grad_stablehlo": "%0 = stablehlo.multiply %a, %b\n"} if i < 2 else {}
            if i == 5:
                extra = {"grad_skipped": "integer inputs"}
            store.add(make_record(i, **extra))
        store.add({"source": "x = 1\n", "categories": ["constant"], "stablehlo": None})
        store.add(make_record(0))
        store.save_failure("Boom: x", "known-boom", {"seed": 9}, "raise SystemExit\n")
        store.count_failure("Boom: x", "known-boom")
        store.count_failure("Boom: x", "known-boom")
    shard = shard_paths(tmp_path)[0]
    shard.write_bytes(shard.read_bytes() + b"garbage\n")

    stats = corpus_stats(tmp_path)
    assert stats["records"] == 7 and stats["malformed_lines"] == 1
    assert stats["categories"] == {"elementwise": 6, "reduction": 3, "constant": 1}
    assert stats["ops"] == {"sin": 6, "add": 6}
    assert stats["stablehlo_ops"] == {"sine": 6, "add": 6}
    cov = stats["stablehlo_coverage"]
    assert (cov["covered"], cov["total"]) == (2, len(STABLEHLO_OPS))
    assert stats["stablehlo_coverage_with_grad"]["covered_ops"] == ["add", "multiply", "sine"]
    assert stats["sizes"]["source_lines"] == {"median": 5.0, "max": 5, "n": 7}
    assert stats["sizes"]["stablehlo_lines"]["max"] == 8  # 7 + the padding line
    assert stats["grad"] == {"with_grad": 2, "skipped": 1, "records": 7}
    [bucket] = stats["failures"]
    assert (bucket["signature"], bucket["known"], bucket["count"]) == ("Boom: x", "known-boom", 2)
    assert bucket["reproducer"].startswith(str(tmp_path / "failures" / "boom-x-"))
    assert stats["dedup"] == {"added": 7, "duplicate_source": 1, "duplicate_ir": 0}
    report = format_stats(stats)
    assert f"StableHLO op coverage: 2/{len(STABLEHLO_OPS)}" in report
    assert "known-boom" in report and "records: 7" in report
    json.dumps(stats)  # JSON-ready


def test_stablehlo_op_names_and_the_spec_table():
    text = (
        '%0 = "stablehlo.add"(%a, %b) : ...\n'
        "%1 = stablehlo.compare GT, %0, %0, FLOAT : ...\n"
        "#stablehlo.gather<offset_dims = [0]> !stablehlo.token\n"
        "stablehlo.return %1\n"
    )
    assert stablehlo_op_names(text) == {"add", "compare", "return"}
    assert len(set(STABLEHLO_OPS)) == len(STABLEHLO_OPS) == 105
    assert list(STABLEHLO_OPS) == sorted(STABLEHLO_OPS)
    assert {"add", "abs", "and", "atan2", "while", "xor"} <= set(STABLEHLO_OPS)


def test_jaxpr_primitives_of_a_real_jaxpr():
    """Names with a hyphen count (``scatter-add``); parameters (``length=3``) never do."""
    import jax
    import jax.numpy as jnp

    def f(x):
        y = x.at[0].add(1.0)
        return jax.lax.fori_loop(0, 3, lambda i, c: jnp.sin(c), y)

    text = str(jax.make_jaxpr(f)(jnp.ones(3)))
    assert {"scatter-add", "sin"} <= jaxpr_primitives(text)
    assert not {"length", "upper", "x"} & jaxpr_primitives(text)


def test_explicit_and_implied_ids_are_all_known(tmp_path):
    with CorpusStore.open(tmp_path) as store:
        store.add(make_record(0))
        store.add(make_record(1, id="mine"))
        store.add(make_record(2))
        auto = store.last_id
        assert store.known_ids() == {read_all(tmp_path)[0]["id"], "mine", auto}
    with CorpusStore.open(tmp_path) as store:
        assert "mine" in store and auto in store and "nope" not in store
        assert len(store.known_ids()) == 3
        # An explicit id that equals another record's implied id is a clash too.
        with pytest.raises(CorpusError, match="already in corpus"):
            store.add(make_record(3, id=auto))
