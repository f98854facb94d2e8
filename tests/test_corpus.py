"""The committed corpus: it spans every category, and it replays against the installed JAX."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fuzz.corpus.store import MalformedLine, iter_records
from fuzz.replay.command import replay
from grammar import CATEGORIES

CORPUS = Path(__file__).resolve().parents[1] / "corpus"


@pytest.fixture(scope="module")
def records() -> list[dict]:
    out = [rec for _, _, rec in iter_records(CORPUS)]
    assert out and not any(isinstance(r, MalformedLine) for r in out)
    return out


def test_corpus_spans_every_category(records):
    covered = {c for r in records for c in r["categories"]}
    assert covered == set(CATEGORIES)


def test_corpus_holds_a_reproducer_per_known_limitation_the_grammar_reaches():
    metas = [json.loads(p.read_text()) for p in CORPUS.glob("failures/*/repro.json")]
    assert "grad_dynamic_loop" in {m["known"] for m in metas}


def covering(records: list[dict]) -> list[dict]:
    """A greedy cover: records that together reach every category and op the corpus holds."""
    names = [{*r["categories"], *r["ops"]} for r in records]
    need = set().union(*names)
    chosen = []
    while need:
        best = max(range(len(records)), key=lambda i: len(need & names[i]))
        chosen.append(records[best])
        need -= names[best]
    return chosen


@pytest.mark.slow
def test_corpus_replays_without_regressions(records, tmp_path):
    """A JAX release that breaks a stored program fails here (IR changes are only reported).
    The suite replays the records that reach every category and op of the corpus (about a
    third of it, to keep CI within its time); ``python -m fuzz replay corpus`` replays all."""
    subset = covering(records)
    assert len(subset) < len(records)
    path = tmp_path / "cover.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in subset))
    report = replay(path, workers=2, cache_dir=tmp_path / "xla", timeout=120)
    assert not report.regressed, report.format()
    counts = report.counts
    assert counts.get("rejected", 0) == 0 and counts.get("malformed", 0) == 0, counts
