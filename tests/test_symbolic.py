"""Programs exported over a symbolic batch size (category symbolic_shape): the grammar's
batched entry, the export stage, the ``symbolic`` oracle, reproducers and the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import jax.numpy as jnp
import pytest
from hypothesis import HealthCheck, given, settings

from extract import extract_in_process
from extract.args import check_polymorphic_shapes, flatten_args, leaves_of, normalize_args
from extract.stages import on_leaves
from extract.symbolic import export
from fuzz.corpus.schema import normalize_record, storable
from fuzz.triage.repro import reproducer
from grammar import programs
from grammar.ops import OPS
from grammar.validate import check_args, validate
from tests.runner import fuzz


def src(text: str) -> str:
    return "import jax\nimport jax.numpy as jnp\nfrom jax import lax\n" + textwrap.dedent(text)


# The function sees whether its batch size is symbolic: jit and the exported module differ.
PLANTED = src("""
    def f(x):
        if isinstance(x.shape[0], int):
            return x * 2.0
        return x * 3.0
    """)
BATCHED = src("""
    def f(x0, params):
        def example(x0, params):
            t1 = jnp.tanh(x0) @ params["w"]
            return jnp.sum(t1)
        return jax.vmap(example, in_axes=(0, None))(x0, params)
    """)
BATCHED_ARGS = [[[3, 4], "float32"], {"w": [[4, 2], "float32"]}]


@settings(max_examples=12, deadline=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
@given(programs(categories=["symbolic_shape"], max_statements=10))
def test_batched_programs_export_over_a_symbolic_batch(program):
    """The entry maps the body over a batch; its args are one instance of its polymorphic
    shapes, it validates, and jax.export gives a module with a dynamic batch axis."""
    assert program.batch >= 2 and "symbolic_shape" in program.categories
    assert "jax.vmap(example" in program.source
    assert validate(program.source, program.entry) == [] and check_args(program.args) == []
    assert not any(not OPS[name].batchable for name in program.ops)
    tree = normalize_args(program.args)
    leaves = leaves_of(tree)
    assert check_polymorphic_shapes(leaves, program.polymorphic_shapes)
    assert any(s.startswith("b") for s in program.polymorphic_shapes)
    namespace: dict = {}
    exec(program.source, namespace)
    f = on_leaves(namespace[program.entry], tree, program.entry)
    text = export(f, leaves, program.polymorphic_shapes).mlir_module()
    assert "tensor<?x" in text


def test_export_allows_every_custom_call_target():
    # a LAPACK kernel has no compatibility guarantee; jaxsmith never serializes the module
    def f(x):
        return jnp.linalg.cholesky(x @ jnp.swapaxes(x, -1, -2) + 4 * jnp.eye(2)[None])

    text = export(f, [((3, 2, 2), "float32")], ["b, 2, 2"]).mlir_module()
    assert "stablehlo.custom_call" in text and "tensor<?x2x2xf32>" in text


def test_unbatched_programs_say_so():
    @settings(max_examples=20, deadline=None, derandomize=True)
    @given(programs(max_statements=5))
    def check(program):
        assert (program.polymorphic_shapes is None) == (program.batch == 0)
        assert ("symbolic_shape" in program.categories) == (program.batch > 0)

    check()


@pytest.mark.parametrize("name, source, message", [
    ("conv", src("""
        def f(x, k):
            return jax.vmap(lambda a, b: lax.conv_general_dilated(a, b, (1,), 'VALID'))(x, k)
        """), "non-static"),
    ("cholesky_update", src("""
        def f(x, v):
            return jax.vmap(lax.linalg.cholesky_update)(x, v)
        """), "Batching rule for 'cholesky_update' not implemented"),
])
def test_ops_declared_not_batchable_fail_under_a_symbolic_batch(name, source, message):
    """Each op the table declares not batchable really fails under the batched entry (the
    reason stated where it is declared); when JAX lifts the limitation this test fails."""
    assert not OPS[name].batchable
    shapes = {"conv": [((3, 1, 2, 5), "b, 1, 2, 5"), ((3, 1, 2, 2), "b, 1, 2, 2")],
              "cholesky_update": [((3, 2, 2), "b, 2, 2"), ((3, 2), "b, 2")]}[name]
    result = extract_in_process(source, "f", [[list(s), "float32"] for s, _ in shapes],
                                grad=False, execute=False,
                                polymorphic_shapes=[p for _, p in shapes])
    assert result["status"] == "failed"
    assert message in result["failure"]["message"]


def test_extraction_records_the_exported_module_and_the_oracle_passes():
    result = extract_in_process(BATCHED, "f", BATCHED_ARGS, polymorphic_shapes=["b, 4", "4, 2"])
    assert result["status"] == "ok", result.get("failure")
    exported = result["exported_stablehlo"]
    assert "tensor<?x4xf32>" in exported and "shape_assertion" in exported
    assert "stablehlo.get_dimension_size" in exported
    assert "?" not in result["stablehlo"].split("func.func")[1].split("{")[0]
    assert result["oracles"]["symbolic"] == "pass"
    assert "export" in result["timings"]
    record = {"source": BATCHED, "entry": "f", "args": BATCHED_ARGS,
              "polymorphic_shapes": ["b, 4", "4, 2"], **storable(result)}
    assert normalize_record(record)["exported_stablehlo"] == exported
    plain = extract_in_process(BATCHED, "f", BATCHED_ARGS)
    assert "exported_stablehlo" not in plain
    assert plain["oracles"]["symbolic"] == "skipped: not exported over symbolic shapes"


def test_the_symbolic_oracle_catches_a_planted_difference():
    result = extract_in_process(PLANTED, "f", [[[3], "float32"]], polymorphic_shapes=["b"],
                                oracles=["symbolic"])
    assert result["status"] == "failed"
    assert result["failure"]["signature"] == "symbolic:value:float32"
    assert "the exported module (got) against jit (want)" in result["failure"]["message"]


@pytest.mark.parametrize("shapes, message", [
    (["b"], "has 1 entries, but args have 2 leaves"),
    (["b, 4", "4"], "has 1 dimensions"),
    (["b, 5", "4, 2"], "neither the argument's size 4 nor a symbol"),
    (["b, 4", "b, 2"], "symbol 'b' stands for 3 elsewhere and for 4 here"),
    (["B, 4", "4, 2"], "neither the argument's size 3 nor a symbol"),
    (["b, 4", "4, 2; import os"], "neither"),
    ("b, 4", "must be a list of strings"),
    ([["b"], "4, 2"], "must be a string"),
])
def test_bad_polymorphic_shapes_name_the_entry(shapes, message):
    with pytest.raises((ValueError, TypeError), match=message.replace("(", r"\(")):
        check_polymorphic_shapes(flatten_args(BATCHED_ARGS), shapes)


@pytest.mark.slow
@pytest.mark.parametrize("stage", ["symbolic", "export"])
def test_reproducers_export_as_the_extractor_does(tmp_path, stage):
    script = reproducer(BATCHED, "f", BATCHED_ARGS, {"stage": stage, "signature": "s"},
                        "a test", 0, ["b, 4", "4, 2"])
    path = tmp_path / "repro.py"
    path.write_text(script)
    run = subprocess.run([sys.executable, str(path)], capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    assert ("every symbol at 1" in run.stdout) == (stage == "symbolic")


@pytest.mark.slow
def test_a_symbolic_shape_run_stores_exported_records(tmp_path):
    corpus = tmp_path / "corpus"
    run = fuzz("--budget", "3x", "--corpus", str(corpus), "--seed", "3", "--categories",
               "symbolic_shape", "--quiet", "--max-statements", "6")
    assert run.returncode == 0, run.stderr
    records = [json.loads(line) for f in corpus.glob("*.jsonl") for line in f.open()]
    assert records
    for r in records:
        assert "symbolic_shape" in r["categories"]
        assert r["polymorphic_shapes"] and "tensor<?x" in r["exported_stablehlo"]
    assert "oracle symbolic:" in run.stdout + run.stderr
