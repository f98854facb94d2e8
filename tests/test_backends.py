"""Pluggable backends (extract.backends): loading by name, judging against XLA in the
extractor, a backend that raises or hangs, and a fuzz run that flags a wrong one."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from extract import ExtractorPool, oracles
from extract.backends import Backend, declare, installed, load, load_all
from extract.core import extract_in_process
from extract.interpreter import backend as interpreter_backend
from tests.runner import ROOT, fuzz

TOOLS = '''
"""Backends of tests/test_backends.py."""
import time

import jax
import numpy as np

from extract.backends import Unsupported, declare
from extract.interpreter import backend as interpret

CONSTANT = 3


def right(stablehlo, inputs):
    return interpret(stablehlo, inputs)


def wrong(stablehlo, inputs):
    """The interpreter, off by 0.5 on every floating output."""
    return [o + np.asarray(0.5, o.dtype) if np.issubdtype(o.dtype, np.floating) else o
            for o in interpret(stablehlo, inputs)]


def raises(stablehlo, inputs):
    raise RuntimeError("my tool cannot parse this module")


def hangs(stablehlo, inputs):
    time.sleep(3600)


def refuses(stablehlo, inputs):
    raise Unsupported("no tanh in my tool")


def a_dict(stablehlo, inputs):
    return {"out": inputs[0]}


def arity(stablehlo, inputs):
    """Passes only if the module has one argument per input."""
    assert stablehlo.count("%arg") and f"%arg{len(inputs) - 1}:" in stablehlo, stablehlo
    return interpret(stablehlo, inputs)


@declare(takes="callable")
def simplified(fn, inputs):
    """tests/test_cases.py's jaxpr pass with a bug (x * y becomes x), as a transformation."""
    import jax.extend.core as jex

    from tests.test_cases import simplify_wrongly

    closed = jax.make_jaxpr(fn)(*inputs)
    return [np.asarray(x) for x in jex.jaxpr_as_fun(simplify_wrongly(closed))(*inputs)]


@declare(takes="callable", name="eager")
def op_by_op(fn, inputs):
    with jax.disable_jit():
        return [np.asarray(x) for x in jax.tree_util.tree_leaves(fn(*inputs))]
'''

DIST_INFO = {
    "METADATA": "Metadata-Version: 2.1\nName: jaxsmith-testtools\nVersion: 0.1\n",
    "entry_points.txt": "[jaxsmith.backends]\ngood = tool_mod:right\n",
}

TANH = "import jax.numpy as jnp\n\n\ndef f(x, y):\n    return jnp.tanh(x) * y, x + 1\n"
TWO = [((3,), "float32"), ((3,), "float32")]


@pytest.fixture(scope="module")
def tools(tmp_path_factory):
    """A folder on ``sys.path`` with the module ``tool_mod``, a module that fails on import,
    and an installed distribution that declares ``good`` in the entry-point group."""
    folder = tmp_path_factory.mktemp("tools")
    (folder / "tool_mod.py").write_text(TOOLS)
    (folder / "broken_mod.py").write_text("raise RuntimeError('boom at import')\n")
    info = folder / "jaxsmith_testtools-0.1.dist-info"
    info.mkdir()
    for name, text in DIST_INFO.items():
        (info / name).write_text(text)
    with pytest.MonkeyPatch.context() as mp:
        mp.syspath_prepend(str(folder))
        yield folder


def test_a_backend_loads_by_module_and_name_or_by_entry_point(tools):
    b = load("tool_mod:wrong")
    assert (b.name, b.target, b.takes, b.stage) == ("wrong", "tool_mod:wrong", "stablehlo",
                                                    "backend:wrong")
    marked = load("tool_mod:op_by_op")
    assert (marked.name, marked.takes) == ("eager", "callable")
    assert installed() == {"good": "tool_mod:right"}
    good = load("good")
    assert (good.name, good.target, good.stage) == ("good", "tool_mod:right", "backend:good")


@pytest.mark.parametrize(("spec", "needle"), [
    ("", "expected module:function, or the name of an installed backend (installed: good)"),
    ("nosuchname", "installed: good"),
    ("tool_mod", "installed: good"),
    ("tool_mod:", "expected module:function"),
    ("no_such_module_x:f", "cannot import module 'no_such_module_x'"),
    ("tool_mod:missing", "module 'tool_mod' has no 'missing'"),
    ("tool_mod:CONSTANT", "is a int, not a function of (stablehlo, inputs)"),
    ("broken_mod:f", "importing module 'broken_mod' raised RuntimeError: boom at import"),
])
def test_a_bad_spec_says_what_would_be_accepted(tools, spec, needle):
    with pytest.raises(ValueError, match="backend") as e:
        load(spec)
    assert needle in str(e.value)


def test_two_backends_of_one_name_are_refused(tools):
    with pytest.raises(ValueError, match="two are named right"):
        load_all(["tool_mod:right", "tool_mod:right"])
    with pytest.raises(ValueError, match="takes='text'"):
        declare(takes="text")
    with pytest.raises(ValueError, match="name='a b'"):
        declare(name="a b")


def verdicts(source: str, args, *specs: str) -> dict:
    result = extract_in_process(source, "f", args, grad=False, oracles=["interpreter"],
                                backends=specs)
    return result


def test_a_wrong_backend_fails_as_an_oracle_named_after_it(tools):
    r = verdicts(TANH, TWO, "tool_mod:right", "tool_mod:wrong")
    assert r["status"] == "failed"
    assert r["oracles"] == {**r["oracles"], "interpreter": "pass", "backend:right": "pass",
                            "backend:wrong": "failed"}
    f = r["failure"]
    assert (f["stage"], f["type"], f["signature"]) == ("backend:wrong", "Mismatch",
                                                       "backend:wrong:value:float32")
    assert f["message"].startswith("backend wrong (got) against XLA (want), output 0: max |diff|")


def test_a_right_backend_passes_and_one_that_declines_is_skipped(tools):
    r = verdicts(TANH, TWO, "tool_mod:right", "tool_mod:refuses", "tool_mod:op_by_op")
    assert r["status"] == "ok", r.get("failure")
    assert {k: v for k, v in r["oracles"].items() if k.startswith("backend:")} == {
        "backend:right": "pass", "backend:refuses": "skipped: no tanh in my tool",
        "backend:eager": "pass"}


def test_the_module_a_backend_gets_keeps_unused_arguments(tools):
    unused = "import jax.numpy as jnp\n\n\ndef f(x, y, z):\n    return jnp.sin(y)\n"
    r = verdicts(unused, [((2,), "float32")] * 3, "tool_mod:arity")
    assert r["oracles"]["backend:arity"] == "pass", r.get("failure")


@pytest.mark.parametrize(("spec", "signature"), [
    ("tool_mod:raises", "backend:raises:RuntimeError:my tool cannot parse this module"),
    ("tool_mod:a_dict", "backend:a_dict:structure:-"),
])
def test_a_backend_that_raises_or_returns_no_list_is_a_failure_of_its_own(tools, spec,
                                                                         signature):
    r = verdicts(TANH, TWO, spec)
    assert (r["status"], r["failure"]["signature"]) == ("failed", signature)


def test_the_interpreter_oracle_is_the_builtin_backend():
    builtin = Backend("interpreter", interpreter_backend, "extract.interpreter:backend",
                      reference=True)
    assert builtin == oracles.INTERPRETER
    assert oracles.INTERPRETER.stage == "interpreter"
    ok = extract_in_process(TANH, "f", TWO, grad=False, oracles=["interpreter"])
    assert ok["oracles"]["interpreter"] == "pass"
    lapack = "import jax.numpy as jnp\n\n\ndef f(x):\n    return jnp.linalg.inv(x)\n"
    skipped = extract_in_process(lapack, "f", [((3, 3), "float32")], grad=False,
                                 oracles=["interpreter"])
    assert skipped["oracles"]["interpreter"] == \
        "skipped: unsupported op stablehlo.custom_call"


@pytest.mark.slow
def test_a_hanging_backend_times_out_in_a_bucket_of_its_own_and_the_pool_goes_on(tools):
    sin = TANH.replace("tanh", "sin")
    with ExtractorPool(1, timeout=60, backends=["tool_mod:hangs"]) as pool:
        pool.submit(0, TANH, "f", TWO, grad=False, timeout=4, oracles=[])
        pool.submit(1, sin, "f", TWO, grad=False, timeout=4, oracles=[])
        got = dict(pool.results())
    for r in got.values():
        assert r["status"] == "timeout"
        assert (r["failure"]["stage"], r["failure"]["signature"]) == ("backend:hangs",
                                                                     "backend:hangs:timeout")
    with pytest.raises(ValueError, match="module 'tool_mod' has no 'nope'"):
        ExtractorPool(1, backends=["tool_mod:nope"])


@pytest.mark.slow
def test_a_short_fuzz_run_flags_a_wrong_backend_with_a_minimised_reproducer(tools, tmp_path):
    # the wrong tool of tests/test_cases.py (README alone finds it with cases()), as a
    # transformation backend, beside a correct one installed as an entry point
    corpus = tmp_path / "corpus"
    env = {"PYTHONPATH": f"{tools}{os.pathsep}{ROOT}"}
    r = fuzz("--budget", "10x", "--seed", "3", "--workers", "2", "--corpus", str(corpus),
             "--ops", "sin,cos,tanh,add,multiply", "--dtypes", "float32",
             "--max-statements", "4", "--no-grad", "--oracles", "interpreter",
             "--backend", "good", "--backend", "tool_mod:simplified", "--quiet", env=env)
    assert r.returncode == 0, r.stderr
    assert "failure x" in r.stderr and "backend:simplified:value:float32" in r.stderr
    stats = json.loads((corpus / "stats.json").read_text())
    good, wrong = stats["oracles"]["backend:good"], stats["oracles"]["backend:simplified"]
    assert good.get("pass", 0) >= 5 and "failed" not in good, good
    assert wrong.get("failed", 0) >= 1, wrong
    [bucket] = (corpus / "failures").glob("backend-simplified-value-float32-*")
    meta = json.loads((bucket / "repro.json").read_text())["record"]
    assert meta["statements"] == 1 and meta["ops"] == ["multiply"], meta["source"]
    assert "--backend good --backend tool_mod:simplified" in meta["found_by"]
    run = subprocess.run([sys.executable, str(bucket / "repro.py")], cwd=tools, env={
        **os.environ, **env}, capture_output=True, text=True, timeout=120)
    assert run.returncode == 1, run.stdout + run.stderr
    # both values: the tool's output is the multiply's first operand, XLA's the product
    lines = {ln.split(":")[0].strip(): ln for ln in run.stdout.splitlines() if ": [" in ln}
    assert set(lines) == {"tool_mod", "XLA"}, run.stdout
    got, want = (np.array(lines[k].split(": ", 1)[1].strip("[] ").split(), float)
                 for k in ("tool_mod", "XLA"))
    assert got.shape == want.shape and not np.allclose(got, want), run.stdout


@pytest.mark.slow
def test_the_cli_refuses_a_bad_backend_without_a_traceback(tools):
    r = fuzz("--budget", "1x", "--backend", "no_such_module_x:f",
             env={"PYTHONPATH": str(tools)})
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "--backend: backend 'no_such_module_x:f': cannot import module" in r.stderr
    r = fuzz("--budget", "1x", "--backend", "good", "--levels", "jaxpr,stablehlo",
             env={"PYTHONPATH": str(tools)})
    assert r.returncode == 2 and "--backend needs hlo_optimized in --levels" in r.stderr

