"""The published JSON Schema of a corpus record (issue 13.4): generated from
``fuzz.corpus.schema.FIELDS``, committed, and in agreement with the store's own checks."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
from hypothesis import given
from hypothesis import strategies as st

from fuzz.corpus.schema import FIELDS, KIND, REQUIRED, check_value, json_schema
from fuzz.corpus.store import MalformedLine, iter_records

ROOT = Path(__file__).resolve().parents[1]
SCHEMA_FILE = ROOT / "schema" / "record.schema.json"
VALIDATOR = jsonschema.Draft202012Validator(json_schema())


@pytest.mark.slow
def test_the_committed_schema_is_the_generated_one():
    committed = json.loads(SCHEMA_FILE.read_text())
    assert committed == json_schema(), "regenerate: python -m fuzz schema > " \
                                       "schema/record.schema.json"
    jsonschema.Draft202012Validator.check_schema(committed)
    printed = subprocess.run([sys.executable, "-m", "fuzz", "schema"], cwd=ROOT, text=True,
                             capture_output=True, check=True, timeout=60).stdout
    assert json.loads(printed) == committed
    assert set(committed["properties"]) == {f.name for f in FIELDS}


def test_every_committed_record_fits_the_schema():
    n = 0
    for _, _, rec in iter_records(ROOT / "corpus"):
        assert not isinstance(rec, MalformedLine), rec
        errors = [e.message for e in VALIDATOR.iter_errors(rec)]
        assert not errors, (rec["id"], errors[:3])
        n += 1
    assert n > 100


# JSON values as a corpus line holds them: integers are written without a fraction (a float
# with an integral value is the one place where JSON Schema's "integer" and the store differ).
_json = st.recursive(
    st.none() | st.booleans() | st.integers(-2**64, 2**64) | st.text(max_size=4)
    | st.floats(allow_nan=False, allow_infinity=False).filter(lambda x: x != int(x)),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
        st.sampled_from(["seed", "recipe", "shape", "dtype", "nonfinite", "sum", "abs_sum",
                         "samples", "k"]), inner, max_size=6),
    max_leaves=12)
_summary = st.fixed_dictionaries({
    "shape": st.lists(st.integers(0, 9), max_size=3), "dtype": st.text(max_size=3),
    "nonfinite": st.integers(0, 9), "sum": st.floats(-9, 9), "abs_sum": st.floats(0, 9),
    "samples": st.lists(st.tuples(st.integers(0, 9), st.none() | st.floats(-9, 9)).map(list),
                        max_size=2)})
_near = {  # values close to each kind's shape, so that both sides are often valid
    "args": st.lists(st.recursive(
        st.tuples(st.lists(st.integers(-1, 4), max_size=3), st.text(max_size=3)).map(list),
        lambda nodes: st.lists(nodes, max_size=3) | st.dictionaries(st.text(max_size=2), nodes,
                                                                    max_size=3),
        max_leaves=8), max_size=2),
    "inputs": st.fixed_dictionaries({"seed": st.integers(-1, 2**63), "recipe": st.text()}),
    "values": st.lists(_summary, max_size=2),
    "float_map": st.dictionaries(st.text(max_size=3), st.none() | st.integers() | st.floats(
        allow_nan=False, allow_infinity=False).filter(lambda x: x != int(x)), max_size=3),
}


@given(st.sampled_from(FIELDS), st.data())
def test_the_schema_accepts_exactly_what_the_store_accepts(field, data):
    value = data.draw(_near.get(KIND[field.name], _json) | _json)
    record = {"id": "x", "source": "", "entry": "f", "args": [], field.name: value}
    by_schema = VALIDATOR.is_valid(record)
    _, problem = check_value(field.name, field.kind, value)
    by_store = problem is None and not (field.name in REQUIRED and value is None)
    assert by_schema == by_store, (field.name, value, problem)
