"""Checking a model's translation against a corpus record.

A record holds a program's ``source``, its ``args``, the seed of its inputs (``inputs``:
recipe ``jaxsmith-inputs/1``) and a summary of each output (``outputs``; README, "Outputs").
A model that translates Python to StableHLO is checked by running its text on the record's
inputs and comparing the summaries, without running JAX on the source. Run:
``python -m pytest -q examples/test_translation_record_example.py``.
"""

from pathlib import Path

import pytest

from extract import compare_summaries, make_inputs, summarize
from extract.args import flatten_args
from extract.interpreter import argument_count, run_module, unsupported
from fuzz.corpus.records import iter_records

CORPUS = Path(__file__).resolve().parents[1] / "corpus"


def interpretable(record: dict) -> bool:
    """Records the interpreter ran (its oracle passed) whose module takes every input: jit
    drops an unused argument from a record's StableHLO, and a translation keeps it."""
    return ((record.get("oracles") or {}).get("interpreter") == "pass"
            and argument_count(record["stablehlo"]) == len(flatten_args(record["args"])))


RECORDS = [r for _, _, r in iter_records(CORPUS) if isinstance(r, dict) and interpretable(r)][:3]


def my_model(source: str, record: dict) -> str:
    """Stands in for the model under test (Python source in, StableHLO text out): it returns
    the record's own StableHLO, so this example passes. Call your model here."""
    return record["stablehlo"]


@pytest.mark.parametrize("record", RECORDS, ids=[r["id"][:12] for r in RECORDS])
def test_translation_reproduces_the_recorded_outputs(record):
    text = my_model(record["source"], record)
    assert unsupported(text) is None, unsupported(text)  # else the interpreter would abort
    inputs = make_inputs(record["args"], record["inputs"]["seed"])  # one array per leaf
    outputs = run_module(text, inputs)
    # ``sensitive`` outputs move beyond tolerance when the inputs move by one ulp: replay
    # does not compare them either.
    problem = compare_summaries([summarize(x) for x in outputs], record["outputs"],
                                skip=record.get("sensitive") or ())
    assert problem is None, f"{record['id']}: {problem}"
