"""``--levels``: a record holds only the IR levels asked for, and costs only what they need."""

from __future__ import annotations

import json

import pytest
from runner import fuzz

from extract import extract_in_process
from extract.levels import LEVELS, check_levels
from fuzz.corpus.schema import storable
from fuzz.corpus.store import iter_records

SOURCE = "import jax.numpy as jnp\n\ndef f(x, n):\n    return jnp.sin(x) * 2.0, n + 1\n"
ARGS = [((3,), "float32"), ((), "int32")]


def test_check_levels_orders_and_refuses():
    assert check_levels(None) == check_levels("all") == LEVELS
    assert check_levels("stablehlo, jaxpr") == ("jaxpr", "stablehlo")
    with pytest.raises(ValueError, match="unknown level 'mlir'; choose among jaxpr"):
        check_levels("stablehlo,mlir")
    with pytest.raises(ValueError, match="must include 'stablehlo'"):
        check_levels(["jaxpr", "hlo"])


def test_without_hlo_optimized_nothing_compiles_or_runs():
    full = extract_in_process(SOURCE, "f", ARGS)
    rec = extract_in_process(SOURCE, "f", ARGS, levels=("jaxpr", "stablehlo"))
    assert rec["status"] == "ok" and rec["levels"] == ["jaxpr", "stablehlo"]
    assert full["levels"] == list(LEVELS)
    assert set(rec["timings"]) == {"trace", "lower", "grad_trace", "grad_lower"}
    for absent in ("hlo", "hlo_optimized", "cost", "grad_hlo", "grad_hlo_optimized",
                   "grad_cost", "outputs", "grad_outputs", "oracles", "inputs"):
        assert absent not in rec, absent
    for same in ("jaxpr", "stablehlo", "stablehlo_hash", "grad_jaxpr", "grad_stablehlo"):
        assert rec[same] == full[same], same
    hlo = extract_in_process(SOURCE, "f", ARGS, grad=False, levels=("stablehlo", "hlo"))
    assert hlo["hlo"] == full["hlo"] and "jaxpr" not in hlo and "hlo_optimized" not in hlo


def test_a_grad_failure_keeps_an_uncompiled_record_forward_only():
    result = {"status": "failed", "stablehlo": "module {}", "levels": ["stablehlo"],
              "failure": {"stage": "grad_trace", "known": "grad_dynamic_loop"}}
    assert storable(result)["grad_skipped"] == "known JAX limitation: grad_dynamic_loop"
    assert storable({**result, "levels": list(LEVELS)}) is None  # compiled, yet no HLO


@pytest.mark.slow
def test_cli_levels_run_then_replay(tmp_path):
    corpus = tmp_path / "c"
    done = fuzz("--budget", "4x", "--corpus", str(corpus), "--seed", "5", "--workers", "1",
                "--levels", "jaxpr,stablehlo", "--no-grad", "--quiet", "--no-minimize")
    assert done.returncode == 0, done.stderr
    recs = [rec for _, _, rec in iter_records(corpus)]
    assert recs and all(r["levels"] == ["jaxpr", "stablehlo"] for r in recs)
    assert all(r["stablehlo"] and r["hlo_optimized"] is None and r["outputs"] is None
               for r in recs)
    stats = json.loads((corpus / "stats.json").read_text())
    assert stats["levels"] == ["jaxpr", "stablehlo"]
    replayed = fuzz("replay", str(corpus), "--json", "--workers", "1")
    assert replayed.returncode == 0, replayed.stderr
    report = json.loads(replayed.stdout)
    assert {r["status"] for r in report["results"]} == {"unchanged"}, report["results"]


@pytest.mark.slow
def test_cli_refuses_bad_levels(tmp_path):
    done = fuzz("--budget", "1x", "--corpus", str(tmp_path / "c"), "--levels", "hlo")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "--levels 'hlo' must include 'stablehlo'" in done.stderr
    assert not (tmp_path / "c").exists()
