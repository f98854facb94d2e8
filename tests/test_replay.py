"""``python -m fuzz replay``: a generated corpus replays unchanged; edits are caught, told
apart (values, IR, renumbering) and summarised."""

from __future__ import annotations

import copy
import json
import re
import shutil
from dataclasses import replace
from pathlib import Path

import pytest
from runner import fuzz

from fuzz.cli import main as cli_main
from fuzz.corpus.store import FIELD_NAMES
from fuzz.replay.canonical import canonical, canonical_hlo, canonical_jaxpr
from fuzz.replay.command import replay

SHARD = "shard-00000.jsonl"


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


@pytest.mark.slow
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


@pytest.mark.slow
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
    sound = next(r for r in lines(corpus) if not r.get("grad_skipped"))  # grad runs too
    (fixed / "repro.json").write_text(json.dumps({
        "signature": "trace:TypeError:an old bug", "known": None,
        "record": {"source": sound["source"], "entry": "f", "args": sound["args"]}}))
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


@pytest.mark.slow
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
    (["/no/such/dir"], "does not exist (expected a JSONL file, a corpus folder"),
    (["{empty}"], "holds no records: no *.jsonl file"),
    (["{corpus}", "--max-memory", "0.5"], "must be None or an int of bytes >= 1 GiB"),
    (["{corpus}", "--max-cpu", "-3"], "--max-cpu '-3' must be a number of seconds >= 0"),
    (["{corpus}", "--workers", "0"], "--workers '0' must be a whole number >= 1"),
    (["{corpus}", "--timeout", "-1"], "--timeout '-1' must be a positive number"),
    (["{corpus}", "--no-cache", "--cache-dir", "x"], "exclude each other"),
    (["{corpus}", "--bogus"], "unrecognized arguments"),
    (["{corpus}", "--oracles", "vmap,bogus"], "unknown oracle bogus"),
])
def test_bad_arguments_are_one_line_usage_errors(args, message, tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    (tmp_path / "corpus").mkdir()
    (tmp_path / "corpus" / SHARD).write_text("")
    argv = [a.format(empty=tmp_path / "empty", corpus=tmp_path / "corpus") for a in args]
    assert cli_main(["replay", *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1, err


# -- values, canonical IR and compile quality, on a tiny handwritten program ------------------

TINY = ("import jax\nimport jax.numpy as jnp\nfrom jax import lax\n\n\n"
        "def f(x0, x1):\n    t1 = jnp.sin(x0) * x1\n    t2 = jnp.sum(t1)\n    return t2\n")
TINY_ARGS = [[[3], "float32"], [[3], "float32"]]


@pytest.fixture(scope="module")
def tiny() -> dict:
    """The record the fuzz loop would store for TINY, extracted on the inputs of seed 5."""
    from extract import extract_in_process

    result = extract_in_process(TINY, "f", TINY_ARGS, seed=5, oracles=[])
    assert result["status"] == "ok", result.get("failure")
    record = {k: v for k, v in result.items() if k in FIELD_NAMES}
    record.update(id="tiny", source=TINY, entry="f", args=TINY_ARGS)
    assert record["inputs"]["seed"] == 5 and record["outputs"] and record["grad_outputs"]
    return record


def tiny_corpus(path: Path, records: list[dict]) -> Path:
    path.mkdir()
    (path / SHARD).write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in records))
    return path


def variant(record: dict, rid: str, **fields) -> dict:
    return {**copy.deepcopy(record), "id": rid, **fields}


def renumber(hlo: str) -> str:
    """Every numbered name renumbered (+100): what a new XLA's naming does to a module."""
    return re.sub(r"(?<![\w.\-])(%?[A-Za-z_][\w\-]*)\.(\d+)\b",
                  lambda m: f"{m[1]}.{int(m[2]) + 100}", hlo)


def test_edited_outputs_replay_as_value_changed_and_fail(tiny, cache, tmp_path):
    wrong = copy.deepcopy(tiny["outputs"])
    wrong[0]["samples"][0][1] += 0.5
    wrong[0]["sum"] += 0.5
    path = tiny_corpus(tmp_path / "values", [variant(tiny, "edited", outputs=wrong),
                                             variant(tiny, "same")])
    report = replay(path, workers=1, cache_dir=cache, oracles=["jit_eager"])
    edited, same = report.outcomes
    assert edited.status == "value_changed" and list(edited.values) == ["outputs"], edited
    assert "recorded" in edited.values["outputs"]
    assert same.status == "unchanged", same
    assert report.regressed and report.exit_code == 1
    data = report.to_json()
    assert data["summary"]["value_changed"] == 1 and data["summary"]["oracles"] == ["jit_eager"]
    assert "value_changed" in report.format() and "REGRESSED" in report.format()


def test_a_value_change_of_a_sensitive_record_is_no_regression(tiny, cache, tmp_path):
    """The record says a one-ulp move of its inputs moves its outputs: a compiler change of
    one ulp may then change them, so replay reports the difference but not as a regression."""
    assert tiny["sensitive"] == []
    wrong = copy.deepcopy(tiny["outputs"])
    wrong[0]["samples"][0][1] += 0.5
    path = tiny_corpus(tmp_path / "sensitive", [
        variant(tiny, "edited", outputs=wrong, sensitive=[0]),
        variant(tiny, "other", outputs=wrong, sensitive=[1])])
    report = replay(path, workers=1, cache_dir=cache)
    edited, other = report.outcomes
    assert edited.status == "ir_changed", edited
    assert list(edited.changed) == ["outputs (sensitive to rounding)"]
    # only the outputs that are sensitive are excused
    assert other.status == "value_changed", other
    assert report.regressed


def test_renumbering_costs_and_old_records(tiny, cache, tmp_path):
    renumbered = renumber(tiny["hlo_optimized"])
    assert renumbered != tiny["hlo_optimized"]
    cost = {**tiny["cost"], "flops": tiny["cost"]["flops"] * 2 + 8}
    old = {k: v for k, v in tiny.items() if k not in ("inputs", "oracles")}
    old["outputs"] = [{**old["outputs"][0], "sum": 1e6}]  # not on seed 0's inputs: not compared
    path = tiny_corpus(tmp_path / "ir", [
        variant(tiny, "renumbered", hlo_optimized=renumbered),
        variant(tiny, "cost", cost=cost),
        variant(old, "old"),
    ])
    report = replay(path, workers=1, cache_dir=cache)
    by_id = {o.id: o for o in report.outcomes}
    assert by_id["renumbered"].status == "text_changed", by_id["renumbered"]
    assert by_id["renumbered"].renumbered == ["hlo_optimized"]
    assert by_id["cost"].status == "ir_changed" and list(by_id["cost"].changed) == ["cost"]
    assert "flops" in by_id["cost"].changed["cost"]
    assert by_id["old"].status == "unchanged", by_id["old"]
    assert report.exit_code == 0 and replace(report, strict=True).exit_code == 1

    quality = report.to_json()["quality"]
    assert quality["records"] == 3
    assert quality["costs"]["cost.flops"] == {"more": 0, "fewer": 1, "same": 2}
    assert quality["costs"]["grad_cost.flops"] == {"more": 0, "fewer": 0, "same": 3}
    top = quality["largest"][0]
    assert (top["id"], top["metric"], top["before"]) == ("cost", "cost.flops", cost["flops"])
    assert top["relative"] < -0.5 and len(quality["largest"]) == 1
    hlo = quality["instructions"]["hlo_optimized"]
    assert hlo["before"] == hlo["after"] > 0 and hlo["records"] == 3
    text = report.format()
    assert "compiled quality over 3 records" in text and "cost cost.flops" in text
    assert "1 text_changed" in text and "renumbered" not in text.split("compiled")[0]


def test_canonical_hlo_masks_names_but_not_structure():
    module = ("HloModule jit_f, entry_computation_layout={(f32[2]{0})->f32[2]{0}}\n\n"
              "%fused_computation.3 (param_0.2: f32[2]) -> f32[2] {\n"
              "  %param_0.2 = f32[2]{0} parameter(0)\n"
              "  %constant.15 = f32[] constant(1)\n"
              "  %broadcast.4 = f32[2]{0} broadcast(%constant.15), dimensions={}\n"
              "  ROOT %subtract.1 = f32[2]{0} subtract(%param_0.2, %broadcast.4)\n}\n\n"
              "ENTRY %main.9 (x.1: f32[2]) -> f32[2] {\n"
              "  %x.1 = f32[2]{0} parameter(0)\n"
              "  ROOT %fusion = f32[2]{0} fusion(%x.1), kind=kLoop, "
              "calls=%fused_computation.3\n}\n")
    renamed = (module.replace("jit_f", "jit_g").replace("constant.15", "constant.2")
               .replace("fused_computation.3", "fused_computation").replace("%fusion", "%f.7"))
    assert canonical_hlo(renamed) == canonical_hlo(module)
    assert "%c0 (v0: f32[2])" in canonical_hlo(module) and "calls=%c0" in canonical_hlo(module)
    swapped = module.replace("subtract(%param_0.2, %broadcast.4)",
                             "subtract(%broadcast.4, %param_0.2)")
    assert canonical_hlo(swapped) != canonical_hlo(module)
    assert canonical("hlo", module.replace("kLoop", "kInput")) != canonical("hlo", module)
    compare = "  %lt.1 = pred[] compare(%x.1, %x.1), direction=LT, type=TOTALORDER\n"
    assert canonical_hlo(compare) == canonical_hlo(compare.replace("type=TOTALORDER",
                                                                   "order=TOTAL"))


def test_canonical_jaxpr_drops_default_and_loop_bookkeeping_params():
    old = ("{ lambda ; a:f32[3]. let\n"
           "    b:f32[] = reduce_max[axes=(0,)] a\n"
           "    c:f32[] = scan[\n"
           "      jaxpr={ lambda ; d:f32[]. let  in (d,) }\n"
           "      length=1\n      num_carry=1\n      num_consts=0\n      reverse=False\n"
           "    ] b\n"
           "    e:f32[3] f:i32[3] = top_k[k=3] a\n"
           "  in (c, e) }\n")
    new = (old.replace("axes=(0,)]", "axes=(0,) out_sharding=None]")
           .replace("top_k[k=3]", "top_k[is_stable=True k=3]")
           .replace("      num_carry=1\n      num_consts=0\n",
                    "      ft_in=((), (None,), ())\n      ft_out=((None,), ())\n"))
    assert canonical_jaxpr(new) == canonical_jaxpr(old)
    assert canonical_jaxpr(old.replace("axes=(0,)", "axes=(1,)")) != canonical_jaxpr(old)
    assert canonical_jaxpr(new.replace("is_stable=True", "is_stable=False")) != \
        canonical_jaxpr(old)


@pytest.mark.slow
def test_replay_reads_jsonl_files_of_any_name_and_several_paths(corpus, cache, tmp_path):
    """Issue 13.4: a renamed file, a folder whose file is named otherwise, and both at once."""
    records = lines(corpus)
    renamed = tmp_path / "records.jsonl"
    renamed.write_text("".join(json.dumps(r) + "\n" for r in records[:2]))
    folder = tmp_path / "exported"
    folder.mkdir()
    (folder / "part-a.jsonl").write_text(json.dumps(records[2]) + "\n")
    report = replay([renamed, folder], workers=1, cache_dir=cache, grad=False)
    assert [o.status for o in report.outcomes] == ["unchanged"] * 3
    assert [o.id for o in report.outcomes] == [r["id"] for r in records[:3]]
    done = fuzz("replay", str(renamed), "--no-grad", "--quiet", "--cache-dir", str(cache))
    assert done.returncode == 0, done.stderr
    assert "replayed 2 records" in done.stdout and "2 unchanged" in done.stdout
    assert "Traceback" not in done.stderr


@pytest.mark.slow
def test_a_replay_that_judges_few_records_warns(corpus, cache, tmp_path):
    """Issue 15.7: a corpus whose records are mostly rejected still exits 0, but says so; with
    --strict it fails."""
    good = lines(corpus)[0]
    alien = {"id": "alien", "source": "import os\n\ndef f(x):\n    return os.getcwd()\n",
             "entry": "f", "args": [[[2], "float32"]]}
    path = tmp_path / "mixed.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in (good, alien, alien | {"id": "b"})))
    report = replay(path, workers=1, cache_dir=cache, grad=False)
    assert report.counts["rejected"] == 2 and report.exit_code == 0
    assert report.warning() and "2 of 3 records (67 %)" in report.warning()
    assert report.format().endswith(report.warning())
    assert replay(path, workers=1, cache_dir=cache, grad=False, strict=True).exit_code == 1
    only_good = tmp_path / "good.jsonl"
    only_good.write_text(json.dumps(good) + "\n")
    assert replay(only_good, workers=1, cache_dir=cache, grad=False).warning() is None
