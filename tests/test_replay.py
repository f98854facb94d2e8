"""``python -m fuzz replay``: a generated corpus replays unchanged; edits are caught."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from fuzz.cli import main as cli_main
from fuzz.replay import replay

ROOT = Path(__file__).resolve().parents[1]
SHARD = "shard-00000.jsonl"


def fuzz(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "fuzz", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout)


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("xla-cache")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("corpus")
    done = fuzz("--budget", "6x", "--seed", "2", "--workers", "1", "--quiet", "--corpus",
                str(path))
    assert done.returncode == 0, done.stderr
    assert len(lines(path)) >= 3, done.stderr
    return path


def lines(corpus: Path) -> list[dict]:
    return [json.loads(raw) for raw in (corpus / SHARD).read_text().splitlines()]


def copy_corpus(corpus: Path, dest: Path, records: list[dict], tail: str = "") -> Path:
    shutil.copytree(corpus, dest, ignore=shutil.ignore_patterns("corpus.lock", SHARD))
    text = "".join(json.dumps(r, sort_keys=True) + "\n" for r in records)
    (dest / SHARD).write_text(text + tail)
    return dest


def failing(source: str) -> str:
    """``source`` with a shape error as the entry's first statement."""
    head, sep, body = source.partition("):\n")
    return f"{head}{sep}    t99 = jnp.ones((2, 3)) @ jnp.ones((4, 5))\n{body}"


def test_a_fresh_corpus_replays_unchanged(corpus, cache):
    done = fuzz("replay", str(corpus), "--workers", "1", "--cache-dir", str(cache), "--json",
                "--quiet")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    n = len(lines(corpus))
    statuses = [r["status"] for r in report["results"]]
    assert statuses[:n] == ["unchanged"] * n, report
    assert set(statuses[n:]) <= {"still_fails"}  # the minimised failures, if any
    assert report["summary"]["exit_code"] == 0 and not report["summary"]["regressed"]
    assert report["versions"]["jax"] in report["versions"]["stored_jax"]
    assert any(cache.iterdir()), "the persistent compilation cache stayed empty"


def test_edits_failures_hostile_and_malformed_records(corpus, cache, tmp_path):
    records = lines(corpus)
    canary = tmp_path / "canary"
    records[0]["stablehlo"] = records[0]["stablehlo"].replace("func.func", "func.func  ", 1)
    records[1]["source"] = failing(records[1]["source"])
    records[2]["source"] = records[2]["source"].replace(
        "):\n", f"):\n    t0 = open({str(canary)!r}, 'w')\n", 1)
    bad = [
        '{"id": "x", "source": "import jax\\n", "entry": ',  # invalid JSON
        json.dumps({"id": "m1", "entry": "f", "args": []}),  # no source
        json.dumps({"id": "m2", "source": records[0]["source"], "entry": "f", "args": "x"}),
        json.dumps({"id": "m3", "source": records[0]["source"], "args": []}),  # no entry
    ]
    tail = "\n".join(bad) + "\n" + '{"id": "torn", "sou'  # a torn last line
    path = copy_corpus(corpus, tmp_path / "edited", records, tail)
    fixed = path / "failures" / "old-bug"
    fixed.mkdir(parents=True)
    (fixed / "repro.json").write_text(json.dumps({
        "signature": "trace:TypeError:an old bug", "known": None,
        "record": {"source": lines(corpus)[3 % len(records)]["source"], "entry": "f",
                   "args": lines(corpus)[3 % len(records)]["args"]}}))
    broken = path / "failures" / "broken"
    broken.mkdir()
    (broken / "repro.json").write_text('{"signature": "x",\n "record": ')

    report = replay(path, workers=1, cache_dir=cache, timeout=60)
    by_where = {o.where: o for o in report.outcomes}
    shard = path / SHARD

    edited = by_where[f"{shard}:1"]
    assert edited.status == "ir_changed" and list(edited.changed) == ["stablehlo"]
    assert "first difference at line" in edited.changed["stablehlo"]
    now_fails = by_where[f"{shard}:2"]
    assert now_fails.status == "now_fails"
    assert now_fails.failure["signature"].startswith("trace:")
    rejected = by_where[f"{shard}:3"]
    assert rejected.status == "rejected"
    assert any("call to 'open' is not allowed" in p for p in rejected.problems)
    assert not canary.exists()
    n = len(records)
    assert all(by_where[f"{shard}:{i}"].status == "unchanged" for i in range(4, n + 1))

    malformed = {o.where: o.reason for o in report.outcomes if o.status == "malformed"}
    assert "invalid JSON" in malformed[f"{shard}:{n + 1}"]
    assert "'source'" in malformed[f"{shard}:{n + 2}"]
    assert "args" in malformed[f"{shard}:{n + 3}"]
    assert "'entry'" in malformed[f"{shard}:{n + 4}"]
    assert "incomplete last line" in malformed[f"{shard}:{n + 5}"]
    assert any(w.startswith(str(broken / "repro.json")) for w in malformed)

    fixed_outcome = by_where[str(fixed / "repro.json")]
    assert fixed_outcome.status == "fixed"
    assert fixed_outcome.previous_signature == "trace:TypeError:an old bug"
    assert report.counts["now_fails"] == 1 and report.regressed and report.exit_code == 1
    json.dumps(report.to_json())
    text = report.format()
    assert "now_fails" in text and "REGRESSED" in text and f"{shard}:{n + 1}" in text


def test_changed_ir_fails_only_when_strict(corpus, cache, tmp_path):
    records = lines(corpus)
    records[0]["stablehlo"] += "// edited\n"
    path = copy_corpus(corpus, tmp_path / "ir", records)
    shutil.rmtree(path / "failures", ignore_errors=True)

    report = replay(path, workers=1, cache_dir=cache)
    assert report.counts["ir_changed"] == 1 and report.exit_code == 0
    assert replace(report, strict=True).exit_code == 1

    done = fuzz("replay", str(path), "--workers", "1", "--cache-dir", str(cache), "--strict",
                "--json", "--quiet")
    assert done.returncode == 1, done.stderr
    summary = json.loads(done.stdout)["summary"]
    assert summary["ir_changed"] == 1 and summary["strict"] and summary["regressed"]


@pytest.mark.parametrize("args, message", [
    (["/no/such/dir"], "is not a directory"),
    (["{empty}"], "holds no corpus shards"),
    (["{corpus}", "--workers", "0"], "--workers '0' must be a whole number >= 1"),
    (["{corpus}", "--timeout", "-1"], "--timeout '-1' must be a positive number"),
    (["{corpus}", "--no-cache", "--cache-dir", "x"], "exclude each other"),
    (["{corpus}", "--bogus"], "unrecognized arguments"),
])
def test_bad_arguments_are_one_line_usage_errors(args, message, tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    (tmp_path / "corpus").mkdir()
    (tmp_path / "corpus" / SHARD).write_text("")
    argv = [a.format(empty=tmp_path / "empty", corpus=tmp_path / "corpus") for a in args]
    assert cli_main(["replay", *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1, err
