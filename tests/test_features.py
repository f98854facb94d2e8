"""Coverage features: XLA passes fired per program, op pairs, the run's union and its time
series."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from runner import fuzz

from extract import ExtractorPool
from fuzz.campaign.features import KINDS, SERIES_NAME, Coverage, record_features, stablehlo_op_pairs
from fuzz.corpus.store import iter_records

F32 = [((4,), "float32")]
PLAIN = "import jax.numpy as jnp\n\ndef f(x):\n    return jnp.sin(x) * 2.0\n"
LOOP = ("from jax import lax\n\ndef f(x):\n"
        "    return lax.fori_loop(0, 3, lambda i, c: c * 1.5 + 1.0, x)\n")
WHILE_PASSES = {"while-loop-trip-count-annotator", "while-loop-constant-sinking",
                "while-loop-invariant-code-motion", "simplify-while-loops"}

MODULE = """module @jit_f {
  func.func public @main(%arg0: tensor<3xf32>) -> (tensor<f32>) {
    %0 = stablehlo.sine %arg0 : tensor<3xf32>
    %cst = stablehlo.constant dense<0.0> : tensor<f32>
    %1 = stablehlo.reduce(%0 init: %cst) applies stablehlo.add across dimensions = [0]
    %2:2 = stablehlo.while(%iterArg = %1, %iterArg_0 = %1) : tensor<f32>, tensor<f32>
    %3 = stablehlo.multiply %2#1, %1 : tensor<f32>
    return %3 : tensor<f32>
  }
  func.func private @g(%arg0: tensor<f32>) -> tensor<f32> {
    %0 = stablehlo.negate %arg0 : tensor<f32>
    %1 = stablehlo.abs %0 : tensor<f32>
    return %1 : tensor<f32>
  }
}"""


def test_op_pairs_follow_the_data_flow():
    assert stablehlo_op_pairs(MODULE) == {
        "sine>reduce", "constant>reduce", "reduce>while", "while>multiply", "reduce>multiply",
        "negate>abs"}


def test_record_features_by_kind():
    fields = {"stablehlo": MODULE, "jaxpr": "{ lambda ; a:f32[3]. let b:f32[3] = sin a in (b,) }",
              "passes": ["fusion", "algsimp"], "grad_passes": ["dce"],
              "oracles": {"vmap": "pass", "interpreter": "skipped: unsupported op",
                          "autodiff": "not sampled", "jit_eager": "off"}}
    found = record_features(fields)
    assert set(found) == set(KINDS)
    assert found["stablehlo_ops"] == {"sine", "constant", "reduce", "while", "multiply",
                                      "negate", "abs", "add"}
    assert found["primitives"] == {"sin"} and found["passes"] == {"fusion", "algsimp"}
    assert found["oracle_verdicts"] == {"vmap:pass", "interpreter:skipped"}
    coverage = Coverage({"passes": ["layout-assignment"]})
    coverage.add(fields)
    assert coverage.counts()["passes"] == 3 and coverage.lists()["grad_passes"] == ["dce"]


@pytest.mark.slow
def test_passes_are_attributed_per_program_and_leave_the_hlo_alone():
    with ExtractorPool(1) as dumped, ExtractorPool(1, passes=False) as plain:
        folder = dumped._workers[0].dump
        assert folder and os.path.isdir(folder)
        for k, source in enumerate((PLAIN, LOOP, PLAIN)):
            dumped.submit(k, source, "f", F32)
            plain.submit(k, source, "f", F32)
        got = dict(dumped.results())
        without = dict(plain.results())
        assert all(r["status"] == "ok" for r in (*got.values(), *without.values()))
        assert WHILE_PASSES & set(got[1]["passes"]) and "layout-assignment" in got[0]["passes"]
        assert not WHILE_PASSES & set(got[0]["passes"])  # the loop's passes stay its own
        assert got[2]["passes"] == got[0]["passes"] and got[0]["grad_passes"]
        assert "passes" not in without[0]
        for k in got:  # the dump changes nothing the corpus records
            for key in ("hlo_optimized", "grad_hlo_optimized", "cost", "grad_cost"):
                assert got[k][key] == without[k][key], (k, key)
        assert os.listdir(folder) == []  # emptied after each program
    assert not os.path.exists(folder)


@pytest.mark.slow
def test_a_killed_worker_leaves_no_dump_behind():
    with ExtractorPool(1, timeout=3) as pool:
        first = pool._workers[0].dump
        pool.submit(0, "import time\n\ndef f(x):\n    time.sleep(60)\n    return x\n", "f", F32)
        assert [r["status"] for _, r in pool.results()] == ["timeout"]
        assert not os.path.exists(first) and pool._workers[0].dump != first


def test_a_new_pool_removes_the_dumps_of_parents_that_are_gone():
    # parent and workers killed at once: neither could remove its folder
    from extract.passes import PREFIX, make_dump_dir

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()
    fresh = make_dump_dir()
    base = os.path.dirname(fresh)
    stale = os.path.join(base, f"{PREFIX}{dead}-left")
    os.makedirs(os.path.join(stale, "sub"))
    mine = os.path.join(base, f"{PREFIX}{os.getpid()}-kept")
    os.makedirs(mine)
    made = [fresh, mine]
    try:
        assert os.path.basename(fresh).startswith(f"{PREFIX}{os.getpid()}-")
        made.append(make_dump_dir())
        assert not os.path.exists(stale) and os.path.isdir(mine)
    finally:
        for path in made:
            os.rmdir(path)


@pytest.mark.slow
def test_a_run_records_passes_and_a_time_series_that_resumes(tmp_path):
    corpus = tmp_path / "c"
    for seed in ("3", "4"):
        done = fuzz("--budget", "4x", "--seed", seed, "--workers", "1", "--corpus", str(corpus),
                    "--quiet", "--no-minimize", "--oracles", "none")
        assert done.returncode == 0, done.stderr
    records = [rec for _, _, rec in iter_records(corpus)]
    assert records and all(r["passes"] for r in records)
    stats = json.loads((corpus / "stats.json").read_text())
    assert stats["features"] == {k: len(v) for k, v in stats["feature_sets"].items()}
    union = set().union(*(set(r["passes"]) for r in records))
    assert union <= set(stats["feature_sets"]["passes"])  # the second run kept the first's
    rows = [line.split("\t") for line in (corpus / SERIES_NAME).read_text().splitlines()]
    assert rows[0] == ["elapsed_s", "records", *KINDS]
    assert all(r[0] != "elapsed_s" for r in rows[1:])  # one header across both runs
    elapsed = [float(r[0]) for r in rows[1:]]
    assert elapsed == sorted(elapsed) and len(elapsed) >= 4
    assert [int(x) for x in rows[-1][2:]] == [stats["features"][k] for k in KINDS]
