"""The real-world op weights' disk cache (fuzz.campaign.op_weights): the same weights, read
back without computing them again, and computed afresh where the cache cannot serve."""

from __future__ import annotations

import subprocess
import sys

import pytest

import fuzz.report.api_coverage
from fuzz.campaign.op_weights import cache_dir, real_op_weights


def test_the_cache_serves_the_computed_weights_and_survives_a_bad_file(tmp_path, monkeypatch):
    monkeypatch.setenv("JAXSMITH_CACHE", str(tmp_path))
    weights = real_op_weights()
    assert weights == fuzz.report.api_coverage.op_weights()
    (stored,) = tmp_path.glob("op-weights-*.json")

    def recompute():
        raise AssertionError("computed again")

    monkeypatch.setattr(fuzz.report.api_coverage, "op_weights", recompute)
    assert real_op_weights() == weights  # read back
    stored.write_text("{not json")
    with pytest.raises(AssertionError, match="computed again"):
        real_op_weights()  # a bad file is computed around


def test_an_unwritable_cache_is_computed_around(tmp_path, monkeypatch):
    blocked = tmp_path / "file"
    blocked.write_text("")
    monkeypatch.setenv("JAXSMITH_CACHE", str(blocked / "below"))
    assert cache_dir() == blocked / "below"
    assert real_op_weights() == fuzz.report.api_coverage.op_weights()


def test_a_cached_start_does_not_import_jax(tmp_path):
    code = ("import sys; from fuzz.campaign.op_weights import real_op_weights; "
            "real_op_weights(); print('jax' in sys.modules)")
    env = {"JAXSMITH_CACHE": str(tmp_path), "PATH": "/usr/bin:/bin"}
    first = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           env=env, timeout=120)
    second = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env=env, timeout=120)
    assert first.stdout.strip() == "True" and second.stdout.strip() == "False", \
        first.stderr + second.stderr
