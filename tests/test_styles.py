"""Source styles: one program tree, several texts, one IR."""

from __future__ import annotations

import ast
import builtins
import dataclasses
import keyword

import jax
import libcst as cst
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import InvalidArgument

from extract.args import flatten_args, normalize_args
from extract.clean import clean_mlir, ir_hash
from extract.stages import on_leaves
from grammar import STYLES, programs
from grammar.styles import MAX_LINE
from grammar.validate import validate
from tests.runner import fuzz

SMALL = 12


def canonical_ir(program, style: str) -> str:
    """The hash of the canonical StableHLO of ``program`` rendered in ``style``."""
    namespace: dict = {}
    exec(program.render(style), namespace)
    f = on_leaves(namespace[program.entry], normalize_args(program.args), program.entry)
    avals = [jax.ShapeDtypeStruct(s, np.dtype(d)) for s, d in flatten_args(program.args)]
    return ir_hash(clean_mlir(jax.jit(f).lower(*avals).as_text()))


@settings(max_examples=20, deadline=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
@pytest.mark.slow
@given(programs(max_statements=SMALL))
def test_every_style_traces_to_the_same_ir(program):  # 500 trees: bench/bench_styles.py
    """A style changes the text only: every style of one tree lowers to the same canonical
    StableHLO, round-trips through libcst and passes the replay validator."""
    texts = {style: program.render(style) for style in STYLES}
    assert texts[program.style] == program.source
    for style, text in texts.items():
        assert cst.parse_module(text).code == text
        assert validate(text, program.entry) == [], (style, text)
    reference = canonical_ir(program, "ssa")
    for style in STYLES:
        assert canonical_ir(program, style) == reference, (style, texts[style])


def _bound(text: str) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.append(node.id)
        elif isinstance(node, ast.FunctionDef):
            names.append(node.name)
            names += [a.arg for a in node.args.args]
    return names


@settings(max_examples=40, deadline=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
@given(programs(max_statements=SMALL, styles=["named"]))
def test_vocabulary_names_are_unique_and_shadow_nothing(program):
    bound = _bound(program.source)
    reserved = set(dir(builtins)) | set(keyword.kwlist) | {"jax", "jnp", "lax"}
    assert not reserved & set(bound), program.source
    ssa_bound = _bound(program.render("ssa"))
    assert len(bound) == len(ssa_bound)  # one new name per old one ...
    assert len(set(bound)) == len(set(ssa_bound))  # ... and no two old names merged
    assert not any(n.startswith(("t", "x")) and n[1:].isdigit() for n in bound)


@settings(max_examples=40, deadline=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
@given(programs(max_statements=SMALL, styles=["inlined"]))
def test_inlining_folds_within_its_limits(program):
    """Inlining only removes statements, and black keeps every line within 88 columns."""
    def statements(text: str) -> int:
        return sum(isinstance(node, ast.stmt) for node in ast.walk(ast.parse(text)))

    text = program.source
    assert statements(text) <= statements(program.render("ssa"))
    assert max(len(line) for line in text.splitlines()) <= MAX_LINE, text


@pytest.mark.slow
def test_each_style_rewrites_what_it_says():
    drawn = {}

    @settings(max_examples=60, deadline=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(programs(max_statements=SMALL, ops=["sum", "matmul", "tanh", "add", "transpose"],
                    swarm=False))
    def collect(program):
        for style in STYLES:
            drawn.setdefault(style, []).append(program.render(style))

    collect()
    joined = {style: "\n".join(texts) for style, texts in drawn.items()}
    assert "jnp.sum(" in joined["ssa"] and ".sum(" in joined["methods"]
    assert "jnp.sum(" not in joined["methods"] and " @ " in joined["methods"]
    assert "t1 =" in joined["ssa"] and "t1 =" not in joined["named"]
    assert len(joined["inlined"].splitlines()) < len(joined["ssa"].splitlines())


def test_programs_draw_only_the_styles_asked_for():
    @settings(max_examples=20, deadline=None, derandomize=True)
    @given(programs(max_statements=5, styles=["methods", "named"]))
    def check(program):
        assert program.style in ("methods", "named")
        ssa = dataclasses.replace(program, style="ssa")
        assert ssa.source == program.render("ssa")
        assert ssa.variant_group == program.variant_group and len(program.variant_group) == 16
        with pytest.raises(ValueError, match="style='fancy' is not one of"):
            program.render("fancy")

    check()
    with pytest.raises(InvalidArgument, match="unknown styles"):
        programs(styles=["fancy"])


@pytest.mark.slow
def test_a_run_records_style_and_variant_group(tmp_path):
    import json

    corpus = tmp_path / "corpus"
    run = fuzz("--budget", "3x", "--corpus", str(corpus), "--seed", "5", "--styles",
               "idiomatic", "--quiet", "--max-statements", "6", "--oracles", "none")
    assert run.returncode == 0, run.stderr
    records = [json.loads(line) for f in corpus.glob("*.jsonl") for line in f.open()]
    assert records and all(r["style"] == "idiomatic" for r in records)
    assert all(len(r["variant_group"]) == 16 for r in records)
    bad = fuzz("--styles", "fancy", "--budget", "1x")
    assert bad.returncode == 2 and "unknown style fancy" in bad.stderr


@pytest.mark.parametrize("call, written", [
    ("jnp.swapaxes(x, -1, -2)", "x.mT"),
    ("jnp.swapaxes(x, 0, -1)", "x.swapaxes(0, -1)"),
    ("jnp.reshape(x, (-1,))", "x.flatten()"),
    ("jnp.reshape(x, (6, -1))", "x.reshape((6, -1))"),
    ("jnp.real(z)", "z.real"),
    ("jnp.imag(z)", "z.imag"),
    ("jnp.take(x, i, axis=1)", "x.take(i, axis=1)"),
    ("jnp.repeat(x, 2, axis=0)", "x.repeat(2, axis=0)"),
    ("jnp.argsort(x, axis=1)", "x.argsort(axis=1)"),
    ("jnp.reshape(x, -1)", "x.flatten()"),
    ("jnp.ravel(x)", "x.ravel()"),
    ("jnp.transpose(x)", "x.T"),
    # an operator formed under an attribute or subscript keeps its parentheses (a 15-minute
    # run's bucket: x + (0.001).at[...], an AttributeError at trace)
    ("jnp.add(x, 0.5).at[i].get()", "(x + 0.5).at[i].get()"),
    ("jnp.multiply(x, 2.0)[0]", "(x * 2.0)[0]"),
])
def test_method_forms_lower_as_the_calls_they_replace(call, written):
    import jax.numpy as jnp

    from grammar.styles import _Methods

    assert cst.Module([]).code_for_node(cst.parse_expression(call).visit(_Methods())) == written
    x, z, i = jnp.ones((2, 3, 4)), jnp.ones(3, jnp.complex64), jnp.array([0, 2])

    def lowered(text):
        return jax.jit(lambda x, z, i: eval(text, {"jnp": jnp}, {"x": x, "z": z, "i": i})) \
            .lower(x, z, i).as_text()

    assert lowered(call) == lowered(written)
