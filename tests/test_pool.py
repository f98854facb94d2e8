"""Tests for extract/: the worker pool — hangs, crashes, dedup, recycling, flags, logs and
the programs that need its workers (pytrees, complex values, virtual devices)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys

import jax
import jax.numpy as jnp
import pytest

from extract import (
    ExtractorPool,
    compare_summaries,
    extract,
    extract_in_process,
)
from extract.clean import clean_mlir
from extract.crash_log import abort_site
from extract.pool import merge_xla_flags
from tests.test_extract import F32, PROGRAMS, TEXT_FIELDS, src
from tests.test_failures import TRIGGERS

# -- the worker pool -----------------------------------------------------------------------

HANG = "import time\n\ndef f(*x):\n    time.sleep(100)\n    return x\n"
SEGV = "import os, signal\n\ndef f(*x):\n    os.kill(os.getpid(), signal.SIGSEGV)\n    return x\n"
ABORT = "import os\n\ndef f(*x):\n    os.abort()\n"
EXIT = "import os\n\ndef f(*x):\n    os._exit(3)\n"
# XLA's failed check as glog writes it (the first lines of one a 30-minute run met), then
# the abort: the worker's stderr says where
CHECK = ("import os, sys\n\ndef f(*x):\n    print('a warning before it', file=sys.stderr)\n"
         "    os.write(2, b'F1207 15:18:16.134914    4156 buffer_assignment_util.cc:46] Check "
         "failed: const_instr == nullptr (0x7f9a vs. (null))\\n*** Check failure stack trace:"
         " ***\\n')\n    os.abort()\n")


@pytest.mark.slow
def test_pool_survives_hang_and_crashes():
    ok_source, entry, args, _ = PROGRAMS["elementwise"]
    tasks = [
        ("ok1", ok_source), ("hang", HANG), ("ok2", ok_source), ("segv", SEGV),
        ("ok3", ok_source), ("abort", ABORT), ("exit", EXIT), ("ok4", ok_source),
    ]
    with ExtractorPool(1, timeout=60.0, max_tasks_per_worker=100) as pool:
        for task_id, source in tasks:
            pool.submit(task_id, source, entry, args,
                        timeout=1.5 if task_id == "hang" else None)
        got = dict(pool.results())
        assert pool.outstanding == 0
    assert set(got) == {t for t, _ in tasks}
    here = extract_in_process(ok_source, entry, args)
    for t in ("ok1", "ok2", "ok3", "ok4"):
        assert got[t]["status"] == "ok", got[t].get("failure")
        # byte-identical to this process's extraction
        for key in (*TEXT_FIELDS, "stablehlo_hash", "cost", "grad_cost"):
            assert got[t][key] == here[key], (t, key)
    hang = got["hang"]["failure"]
    assert got["hang"]["status"] == "timeout"
    assert hang["stage"] == "trace" and hang["type"] == "Timeout"
    assert hang["signature"] == "timeout" and hang["known"] is None
    for t, sig in (("segv", "SIGSEGV"), ("abort", "SIGABRT")):
        assert got[t]["status"] == "crashed"
        f = got[t]["failure"]
        assert f["type"] == "Crash" and f["signal"] == sig and f["stage"] == "trace"
        assert f["signature"] == f"crashed:{sig}"
    assert got["exit"]["status"] == "crashed"
    assert got["exit"]["failure"]["signature"] == "crashed:exit3"


@pytest.mark.slow
def test_a_failed_check_names_its_site_in_the_signature(capfd):
    ok_source, entry, args, _ = PROGRAMS["elementwise"]
    with ExtractorPool(1, timeout=60.0) as pool:
        for task_id, source in (("check", CHECK), ("abort", ABORT), ("ok", ok_source)):
            pool.submit(task_id, source, entry, args)
        got = dict(pool.results())
        logs = [w.log for w in pool._workers]
    check = got["check"]["failure"]
    assert check["signature"] == "crashed:SIGABRT:buffer_assignment_util.cc:46"
    assert "at buffer_assignment_util.cc:46: Check failed: const_instr == nullptr" in \
        check["message"]
    # the next task starts with an empty log: a plain abort has no site
    assert got["abort"]["failure"]["signature"] == "crashed:SIGABRT"
    assert got["ok"]["status"] == "ok"
    assert "Check failed" not in capfd.readouterr().err  # the terminal stays the run's
    assert logs and not any(os.path.exists(p) for p in logs)  # removed with their workers


# jit and eager disagree (a tracer adds 1), and the culprit search aborts: the worker's
# module patched as XLA:CPU behaves on some modules with passes disabled
CULPRIT_ABORT = """import os
import extract.verdicts

extract.verdicts._culprit_pass = lambda *a: os.abort()


def f(x):
    return x + (1.0 if type(x).__name__.endswith("Tracer") else 0.0)
"""


@pytest.mark.slow
def test_a_crash_in_the_culprit_search_runs_the_task_again_without_it():
    with ExtractorPool(1, timeout=60.0, grad=False) as pool:
        pool.submit("t", CULPRIT_ABORT, "f", [((3,), F32)], oracles=["jit_eager"])
        (task_id, record), = pool.results()
    failure = record["failure"]
    # the program's own discrepancy, not the search's crash; the record says what stopped it
    assert failure["signature"] == "jit_eager:value:float32", failure
    assert "SIGABRT in stage jit_eager:culprit" in record["culprit_search"]


@pytest.mark.parametrize(("text", "site"), [
    ("W1207 warn.cc:1] no\nF1207 15:18:16.134914    4156 a_b.cc:46] Check failed: x == y\n",
     ("a_b.cc:46", "Check failed: x == y")),
    ("LLVM ERROR: Cannot select: 0x5\n", ("LLVM", "Cannot select: 0x5")),
    ("Segmentation fault\n", None),
    ("", None),
])
def test_abort_site_reads_glog_and_llvm(text, site):
    assert abort_site(text) == site


@pytest.mark.slow
def test_pool_dedup_recycling_and_shared_hashes():
    ok_source, entry, args, _ = PROGRAMS["matmul"]
    other = PROGRAMS["elementwise"]
    with ExtractorPool(1, grad=False, skip_hashes=(), max_tasks_per_worker=2) as pool:
        pool.submit(1, ok_source, entry, args)
        pool.submit(2, ok_source.replace("def f", "def g"), "g", args)  # same IR
        first = dict([next(pool.results())])  # stop early: the other result is kept
        first.update(pool.results())
        assert first[1]["status"] == "ok" and first[1]["grad_skipped"] == "disabled"
        assert first[2]["status"] == "duplicate"
        # the worker was recycled after 2 tasks; its replacement inherits the hashes
        pool.submit(3, ok_source, entry, args)
        # hashes found elsewhere can be shared
        h_other = extract_in_process(other[0], other[1], other[2], grad=False)["stablehlo_hash"]
        pool.add_skip_hashes([h_other])
        pool.submit(4, other[0], other[1], other[2])
        later = dict(pool.results())
    assert later[3]["status"] == "duplicate"
    assert later[4]["status"] == "duplicate" and later[4]["stablehlo_hash"] == h_other


@pytest.mark.slow
def test_pool_poll_validation_and_cache(tmp_path):
    with pytest.raises(ValueError, match="workers=0"):
        ExtractorPool(0)
    flags = "--xla_backend_optimization_level=0"
    with ExtractorPool(1, cache_dir=tmp_path, xla_flags=flags) as pool:
        with pytest.raises(ValueError, match="dtype"):
            pool.submit(1, "def f(x):\n    return x\n", "f", [((2,), "nope")])
        for bad in ("complex256", "V8", "V1000000000", "(1000,1000)float32"):
            with pytest.raises(ValueError, match=r"is not supported; accepted: bool, int8"):
                pool.submit(1, "def f(x):\n    return x\n", "f", [((2,), bad)])
        with pytest.raises(ValueError, match=r"too large: at most 8 dimensions"):
            pool.submit(1, "def f(x):\n    return x\n", "f", [((40000, 40000), F32)])
        with pytest.raises(ValueError, match="seed=-1"):
            pool.submit(1, "def f(x):\n    return x\n", "f", [((2,), F32)], seed=-1)
        assert pool.poll(0) == []
        pool.submit(1, "def f(x):\n    return x * 2\n", "f", [((2,), F32)])
        done = []
        while not done:
            done = pool.poll(30)
        assert done[0][0] == 1 and done[0][1]["status"] == "ok"
        assert any(tmp_path.iterdir())  # the persistent compilation cache was written
        # workers run with the pool's XLA flags in their environment
        pool.submit(2, "import os\n\ndef f(x):\n    raise ValueError(os.environ['XLA_FLAGS'])\n",
                    "f", [((2,), F32)])
        (_, rec), = pool.results()
        assert flags in rec["failure"]["message"]
        # workers ignore Ctrl-C (the parent handles it)
        pid = pool._workers[0].process.pid
        os.kill(pid, signal.SIGINT)
        pool.submit(3, "def f(x):\n    return x + 1\n", "f", [((2,), F32)])
        (_, rec), = pool.results()
        assert rec["status"] == "ok" and pool._workers[0].process.pid == pid
    with pytest.raises(RuntimeError, match="closed"):
        pool.submit(2, "def f(x):\n    return x\n", "f", [((2,), F32)])


@pytest.mark.slow
def test_public_extract_reuses_one_worker():
    rec = extract(PROGRAMS["cond"][0], "f", PROGRAMS["cond"][2])
    assert rec["status"] == "ok" and rec["grad_skipped"] is None
    rec = extract(HANG, "f", [((2,), F32)], timeout=1.0)
    assert rec["status"] == "timeout"
    rec = extract(PROGRAMS["int_only"][0], "f", PROGRAMS["int_only"][2], grad=False)
    assert rec["status"] == "ok" and rec["grad_skipped"] == "disabled"


def testmerge_xla_flags():
    assert merge_xla_flags(None, "--a=0") == "--a=0"
    assert merge_xla_flags("--b=1", "--a=0") == "--b=1 --a=0"
    assert merge_xla_flags("--a=2 --b=1", "--a=0") == "--a=2 --b=1"  # the user's flag wins
    assert merge_xla_flags("--b=1", None) == "--b=1"


def test_eager_python_loop_index_also_covers_array_methods():
    source = src("""
        from jax import lax

        def f(x):
            return lax.fori_loop(0, 2, lambda i, c: c + i.reshape((1,)), x)
        """)
    rec = extract_in_process(source, "f", [((1,), "int32")], oracles=["jit_eager"])
    assert rec["oracles"]["jit_eager"] == "skipped: known JAX limitation eager_python_loop_index"


@pytest.mark.slow
def test_extract_works_from_a_plain_script_without_a_main_guard(tmp_path):
    """Spawned workers never re-import the caller's __main__ (issue 13)."""
    script = tmp_path / "script.py"
    script.write_text(
        "import extract\n"
        "src = 'import jax.numpy as jnp\\n\\ndef f(x):\\n    return jnp.sin(x)\\n'\n"
        "rec = extract.extract(src, 'f', [((3,), 'float32')], oracles=[])\n"
        "print('STATUS', rec['status'])\n")
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "STATUS ok" in done.stdout and "bootstrapping" not in done.stderr


@pytest.mark.slow
@pytest.mark.parametrize("level, quiet", [(None, True), ("0", False)])
def test_workers_keep_xla_error_logs_off_the_terminal(tmp_path, level, quiet):
    """XLA logs an error with a C++ stack trace before raising it; the worker records the
    exception, so the trace is kept off the user's terminal unless they ask for logs. The
    script imports JAX first, as ``python -m fuzz`` does: ``import jax`` sets the level to 1
    where it is unset, which printed the trace of every such failure of a fuzz run."""
    source, entry, args, _ = TRIGGERS["xla_cpu_fft_layout"]
    script = tmp_path / "script.py"
    script.write_text("import jax\nimport extract\n"
                      f"rec = extract.extract({source!r}, {entry!r}, {args!r}, "
                      "oracles=[])\nprint('KNOWN', rec['failure']['known'])\n")
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    if level is not None:
        env["TF_CPP_MIN_LOG_LEVEL"] = level
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          timeout=300, cwd=tmp_path, env=env)
    assert "KNOWN xla_cpu_fft_layout" in done.stdout, done.stderr[-2000:]
    assert ("stack trace" not in done.stderr) == quiet, done.stderr[-2000:]


PYTREE = src("""
    import jax
    import jax.numpy as jnp
    from jax import lax


    def f(x0, params, batch):
        x2, x3 = batch
        t1 = x0 * params["w"] + x2
        t2 = jnp.sum(x3) + params["b"]
        return {"loss": t2, "out": t1}
    """)
PYTREE_ARGS = [[[3], F32], {"w": [[3], F32], "b": [[], F32]}, [[[3], F32], [[2], "int32"]]]


def test_pytree_arguments_extract_to_the_ir_of_the_pytree_program():
    rec = extract_in_process(PYTREE, "f", PYTREE_ARGS)
    assert rec["status"] == "ok", rec.get("failure")
    assert set(rec["oracles"].values()) <= {
        "pass", "skipped: too small", "skipped: not exported over symbolic shapes",
        "skipped: no Pallas kernel"}, rec["oracles"]
    assert rec["grad_skipped"] is None
    namespace: dict = {}
    exec(PYTREE, namespace)
    tree = (jax.ShapeDtypeStruct((3,), jnp.float32),
            {"w": jax.ShapeDtypeStruct((3,), jnp.float32),
             "b": jax.ShapeDtypeStruct((), jnp.float32)},
            (jax.ShapeDtypeStruct((3,), jnp.float32), jax.ShapeDtypeStruct((2,), jnp.int32)))
    # the same module as jit of the function on the pytree itself (leaves in jax.tree order)
    assert rec["stablehlo"] == clean_mlir(jax.jit(namespace["f"]).lower(*tree).as_text())
    assert [o["shape"] for o in rec["outputs"]] == [[], [3]]  # {"loss", "out"} in key order


def test_complex_arguments_and_results_extract_and_are_checked():
    source = src("""
        import jax
        import jax.numpy as jnp
        from jax import lax


        def f(x0, x1):
            t1 = jnp.fft.fft(x0 * x0, axis=-1)
            t2 = jnp.abs(t1) + x1
            return t1, t2
        """)
    rec = extract_in_process(source, "f", [[[4], "complex64"], [[4], F32]])
    assert rec["status"] == "ok", rec.get("failure")
    assert rec["outputs"][0]["dtype"] == "complex64" and len(rec["outputs"][0]["samples"]) == 8
    assert rec["oracles"]["jit_eager"] == rec["oracles"]["vmap"] == "pass"
    # the interpreter takes complex values (its driver passes their parts), and fft from
    # jaxlib 0.11 on (it aborts on fft before)
    assert rec["oracles"]["interpreter"] in ("pass", "skipped: unsupported op stablehlo.fft")
    assert rec["grad_skipped"] is None  # with respect to x1, through the complex values


SHARD_MAP = src("""
    import jax
    import jax.numpy as jnp
    from jax import lax


    def f(x0):
        mesh = jax.make_mesh((4,), ('x',), axis_types=(jax.sharding.AxisType.Auto,))
        def body(c):
            t = jnp.sin(c) * 2.0
            return lax.psum(t, 'x'), lax.ppermute(t, 'x', perm=[(0, 1), (1, 2), (2, 3), (3, 0)])
        return jax.shard_map(body, mesh=mesh, in_specs=jax.P('x'),
                             out_specs=(jax.P(), jax.P('x')))(x0)
    """)


def test_a_shard_map_program_runs_on_the_workers_virtual_devices():
    rec = extract(SHARD_MAP, "f", [[[8, 3], F32]], timeout=120)  # in a worker of the pool
    assert rec["status"] == "ok", rec.get("failure")
    assert rec["devices"] == 4 and rec["mesh"] == {"x": 4}
    assert {"all_reduce", "collective_permute"} <= set(
        re.findall(r"stablehlo\.([a-z_]+)", rec["stablehlo"]))
    assert "num_partitions=4" in rec["hlo_optimized"] or "all-reduce" in rec["hlo_optimized"]
    oracles = rec["oracles"]
    assert oracles["jit_eager"] == oracles["vmap"] == oracles["autodiff"] == "pass", oracles
    assert oracles["interpreter"] == "skipped: a program over 4 devices (the interpreter runs one)"
    single = extract_in_process(src("""
        def f(x):
            return x * 2.0
        """), "f", [[[3], F32]])
    assert single["devices"] == 1 and single["mesh"] is None


SHARDED = src("""
    import jax
    import jax.numpy as jnp
    from jax import lax


    def f(x0):
        mesh = jax.make_mesh((2, 2), ('x', 'y'), axis_types=(jax.sharding.AxisType.Auto,
                                                             jax.sharding.AxisType.Auto))
        t1 = lax.with_sharding_constraint(jnp.sin(x0), jax.NamedSharding(mesh, jax.P('x', 'y')))
        return jnp.sum(t1 * t1, axis=0)
    """)


def test_a_sharded_program_is_partitioned_and_gives_its_unsharded_values():
    rec = extract_in_process(SHARDED, "f", [[[4, 6], F32]])
    assert rec["status"] == "ok", rec.get("failure")
    assert rec["devices"] == 4 and rec["mesh"] == {"x": 2, "y": 2}
    assert "sharding" in rec["stablehlo"]
    oracles = rec["oracles"]
    assert oracles["jit_eager"] == oracles["vmap"] == oracles["autodiff"] == "pass", oracles
    # the partitioned program's values are those of the same program on one device
    plain = extract_in_process(SHARDED.replace(
        "lax.with_sharding_constraint(jnp.sin(x0), jax.NamedSharding(mesh, jax.P('x', 'y')))",
        "jnp.sin(x0)"), "f", [[[4, 6], F32]])
    assert plain["devices"] == 1
    assert compare_summaries(rec["outputs"], plain["outputs"]) is None
