"""The registry of findings (fuzz/triage/known_findings.py) against docs/findings.md, findings/, the
grammar's op names, extract.failures.KNOWN and the reproducers themselves."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import jax
import pytest
from hypothesis import given
from hypothesis import strategies as st

from extract.failures import KNOWN, failure
from extract.oracle_context import Violation
from extract.verdicts import BENIGN
from fuzz.triage.known_findings import FINDINGS, Finding, finding, match_finding
from grammar.ops import OPS

ROOT = Path(__file__).resolve().parent.parent
RETIRED_OPS = frozenset({"composite"})
"""Ops that left the grammar (Finding 9) but that stored programs may still name."""

# One failure per matchable finding, as the extractor and the oracles record it.
EXAMPLES: dict[int, dict] = {
    1: Violation("jit_eager", "value", "float32", "jit (got) against eager (want)",
                 "fusion").failure(),
    2: Violation("interpreter", "value", "int32", "XLA (got) against the interpreter").failure(),
    3: Violation("interpreter", "value", "int32", "XLA (got) against the interpreter").failure(),
    4: failure("jit_eager", "AttributeError", "'int' object has no attribute 'reshape'"),
    5: Violation("autodiff", "jvp_vjp", "float32", "<v, J u> != <J^T v, u>").failure(),
    6: failure("run", "JaxRuntimeError",
               "INTERNAL: RET_CHECK failure (external/xla/xla/backends/cpu/runtime/fft_thunk.cc:"
               "168) LayoutUtil::IsMonotonicWithDim0Major(input_shape_.layout())"),
    8: failure("grad_run", "TypeError", "Computation compiled for 4 inputs but called with 3"),
    9: {"stage": "compile", "type": "Crash", "signature": "crashed:SIGSEGV", "known": None},
    10: failure("vmap", "AssertionError", "[True]"),
    11: failure("jit_eager", "IndivisibleError", "shape=(4,) is incompatible with "
                "mesh_shape=OrderedDict([('x', 4), ('y', 2)])"),
    12: failure("grad_trace", "TypeError", "reduce_precision does not accept dtype complex64. "
                "Accepted dtypes are subtypes of floating."),
    13: Violation("autodiff", "jvp_vjp", "float32", "<v, J u> != <J^T v, u>").failure(),
    14: Violation("symbolic", "value", "float16", "exported (got) against jit").failure(),
    15: failure("export", "ValueError", "Cannot lower jaxpr with verifier errors:\n\t"
                "'stablehlo.broadcast_in_dim' op result #0 must be statically shaped"),
    16: failure("jit_eager", "ValueError", "The kernel function in the pallas_call body at "
                "/tmp/p.py:9 captures constants [i32[3]]. You should pass them as inputs"),
    17: failure("grad_trace", "TypeError", "All inputs to triangular_solve must have the same "
                "number of batch dimensions, but got [1, 2] batch dimensions for the inputs."),
    18: failure("grad_trace", "TypeError", "Error interpreting argument to reshape as a JAX "
                "value. The problematic value is of type <class 'jax._src.ad_util.Zero'>"),
    19: failure("compile", "JaxRuntimeError", "INTERNAL: during context [hlo verifier]: "
                "Expected instruction to have shape equal to f32[2,1], actual shape is "
                "f32[1,1]:"),
    20: Violation("interpreter", "value", "float32", "XLA (got) against the interpreter (want), "
                  "output 1: NaN pattern differs").failure(),
    21: Violation("unsimplified", "value", "bool", "jit (got) against jit with XLA's "
                  "simplification passes off (want)", "algsimp").failure(),
    24: Violation("unsimplified", "value", "bool", "jit (got) against jit with XLA's "
                  "simplification passes off (want)", "algsimp").failure(),
    26: failure("compile", "JaxRuntimeError", "INVALID_ARGUMENT: Algorithm not supported by "
                "the ElementalIrEmitter: ALG_DOT_BF16_BF16_F32"),
}
MATCHABLE = [f for f in FINDINGS if f.signatures]
REFERENCED = frozenset().union(*(f.ops.union(*f.any_ops) for f in FINDINGS))
UNRELATED = sorted(set(OPS) - REFERENCED)


def _readme_items() -> dict[int, str]:
    """docs/findings.md's numbered items under "## Findings", by number."""
    text = (ROOT / "docs" / "findings.md").read_text()
    section = text.split("\n## Findings\n", 1)[1].split("\n## ", 1)[0]
    parts = re.split(r"^(\d+)\. (?=\*\*)", section, flags=re.M)
    return {int(n): body for n, body in zip(parts[1::2], parts[2::2], strict=True)}


def _form(f: Finding, draw: st.DrawFn) -> frozenset[str]:
    """The required ops and one drawn member of each ``any_ops`` set."""
    return f.ops | {draw(st.sampled_from(sorted(g))) for g in f.any_ops}


def test_every_readme_finding_has_one_record() -> None:
    assert sorted(_readme_items()) == list(range(1, len(FINDINGS) + 1))
    assert [f.number for f in FINDINGS] == sorted(_readme_items())
    assert len({f.name for f in FINDINGS}) == len(FINDINGS)


@pytest.mark.parametrize("f", FINDINGS, ids=lambda f: f.name)
def test_script_is_the_one_its_readme_item_names(f: Finding) -> None:
    named = set(re.findall(r"findings/\w+\.py", _readme_items()[f.number]))
    assert named == ({f.script} if f.script else set())


def test_every_reproducer_belongs_to_one_record() -> None:
    scripts = [f.script for f in FINDINGS if f.script]
    assert len(scripts) == len(set(scripts))
    assert set(scripts) == {p.relative_to(ROOT).as_posix()
                            for p in (ROOT / "findings").glob("*.py")}


def test_ops_are_grammar_ops() -> None:
    assert not REFERENCED - set(OPS) - RETIRED_OPS
    assert not RETIRED_OPS & set(OPS)


def test_known_and_benign_names_cross_check() -> None:
    names = {k.name for k in KNOWN}
    for f in FINDINGS:
        assert f.known is None or f.known in names, f.name
        assert f.benign is None or f.benign in BENIGN, f.name
        if f.number in EXAMPLES:  # KNOWN recognises exactly the failures registered there
            assert EXAMPLES[f.number]["known"] == f.known, f.name


def test_examples_cover_the_matchable_findings() -> None:
    assert set(EXAMPLES) == {f.number for f in MATCHABLE}


@pytest.mark.parametrize("f", MATCHABLE, ids=lambda f: f.name)
@given(data=st.data())
def test_match_goes_by_signature_and_form(f: Finding, data: st.DataObject) -> None:
    signature = EXAMPLES[f.number]["signature"]
    form = _form(f, data.draw)
    assert form, "a finding that matches by its signature alone"
    extra = frozenset(data.draw(st.lists(st.sampled_from(UNRELATED), max_size=8)))
    assert match_finding(signature, form) is f
    assert match_finding(signature, form | extra) is f
    for op in form:  # the same signature without one op of the form
        assert match_finding(signature, (form - {op}) | extra) is None, op
    other = data.draw(st.sampled_from(sorted(
        {e["signature"] for e in EXAMPLES.values() if not f.matches(e["signature"], form)})))
    assert match_finding(other, form | extra) is not f


def test_culprits_agree() -> None:
    cholesky = finding("exp_of_failed_cholesky")
    assert finding(1) is cholesky
    for sig in ("jit_eager:value:float32", "vmap:value:bool"):
        assert match_finding(sig, ["cholesky", "exp"], "fusion") is cholesky
        assert match_finding(sig, ["cholesky", "exp"]) is cholesky
        assert match_finding(sig, ["cholesky", "exp"], "algsimp") is None
    assert match_finding("jit_eager:value:float32:fusion", ["cholesky"]) is cholesky
    assert match_finding("jit_eager:value:float32:algsimp", ["cholesky"]) is None
    # a finding that names no culprit accepts any
    assert match_finding("symbolic:value:float16:algsimp", ["random_gamma"]) is finding(14)


def test_finding_by_unknown_key() -> None:
    with pytest.raises(KeyError):
        finding(0)
    with pytest.raises(KeyError):
        finding("no_such_finding")


def test_a_finding_without_a_form_matches_nothing() -> None:
    rbg = finding(7)
    assert not rbg.signatures
    assert not any(rbg.matches(e["signature"], OPS) for e in EXAMPLES.values())


@pytest.mark.slow
@pytest.mark.parametrize("f", [f for f in FINDINGS if f.script], ids=lambda f: f.name)
def test_reproducer_exits_1_where_readme_says(f: Finding) -> None:
    """A reproducer exits 1 while its finding is there and 0 once it is gone; one that dies
    of an uncaught exception (a traceback) proves nothing."""
    if jax.__version__ not in f.reproduces:
        pytest.skip(f"no record of {f.script} on jax {jax.__version__}")
    if f.reproduces[jax.__version__] is None:
        pytest.skip(f"{f.script} depends on the machine or the run on jax {jax.__version__}")
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}  # as a user runs it
    proc = subprocess.run([sys.executable, f.script], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)
    output = proc.stdout + proc.stderr
    assert "Traceback (most recent call last)" not in proc.stderr, output
    assert proc.returncode == (1 if f.reproduces[jax.__version__] else 0), output


def test_the_cumprod_symptom_of_finding_18_counts_as_it() -> None:
    signature = failure("grad_trace", "TypeError", "primal and tangent arguments to jax.jvp must "
                        "have the same tree structure; primals have tree structure "
                        "PyTreeDef((*,)) whereas tangents have tree structure "
                        "PyTreeDef((CustomNode(Zero[float0[2,8]], []),)).")["signature"]
    assert match_finding(signature, {"optimization_barrier", "cumprod"}) is finding(18)
    assert match_finding(signature, {"cumprod"}) is None
