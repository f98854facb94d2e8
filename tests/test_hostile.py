"""Hostile and malformed input (issues 15 and 13.7): replay, stats, the fuzz loop and the
worker pool fail closed, fast and quietly, and still report the good records beside them."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from runner import ROOT, fuzz

from extract import ExtractorPool
from extract.worker import ResourceLimits
from fuzz.corpus.store import MalformedLine, iter_records
from fuzz.replay.command import _judge

ARGS = [[[2], "float32"]]
SURVIVED = ("unchanged", "text_changed", "ir_changed")
"""What a good record of the committed corpus (made with jax 0.10) replays as on any jax."""
HEAD = "import jax\nimport jax.numpy as jnp\nfrom jax import lax\n\n\ndef f(x0):\n"


def gone(pid: int, seconds: float) -> bool:
    """Wait up to ``seconds`` for process ``pid`` to end; kill it if it does not."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.1)
    os.kill(pid, signal.SIGKILL)
    return False


def program(body: str) -> str:
    return HEAD + textwrap.indent(body, "    ")


# name -> (source, args, what the refusal says); each is an input seen to hurt the checker
HOSTILE = {
    "deep_1000": (program("t1 = " + "-" * 1000 + "x0\nreturn t1\n"), ARGS, "nests deeper"),
    "deep_5000": (program("t1 = " + "-" * 5000 + "x0\nreturn t1\n"), ARGS, "source does not"),
    "literal_2mb": (program("t1 = x0 + jnp.asarray([" + "1.0, " * 500_000 + "])\nreturn t1\n"),
                    ARGS, "characters is longer than the 100000 accepted"),
    "ones_40000": (program("t1 = jnp.ones((40000, 40000))\nreturn t1\n"), ARGS,
                   "a literal shape of 1600000000 elements"),
    "loop_60000": (program("def body(i, c):\n    return c\n\nt1 = lax.fori_loop(0, 60000, body, "
                           "x0)\nreturn t1\n"), ARGS, "a loop of 60000 trips"),
    "int_huge": (program("t1 = x0 + 1000000000\nreturn t1\n"), ARGS, "integer 1000000000"),
    "dtype_v8": (program("return x0\n"), [[[2], "V8"]], "dtype 'V8' is not one of"),
    "dtype_v1e9": (program("return x0\n"), [[[2], "V1000000000"]], "dtype 'V1000000000'"),
    "dtype_subarray": (program("return x0\n"), [[[2], "(1000,1000)float32"]],
                       "dtype '(1000,1000)float32'"),
    "arg_40000": (program("return x0\n"), [[[40000, 40000], "float32"]],
                  "outside the grammar's limits"),
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_each_hostile_record_is_refused_with_its_reason(name):
    source, args, reason = HOSTILE[name]
    problems = _judge({"source": source, "entry": "f", "args": args})
    assert any(reason in p for p in problems), problems


@pytest.fixture(scope="module")
def mixed(tmp_path_factory) -> tuple[Path, list[dict]]:
    """A corpus of three good records with every hostile one between them."""
    good = []
    for _, _, rec in iter_records(ROOT / "corpus"):
        if rec["grad_skipped"] is None and len(rec["source"]) < 400:
            good.append(rec)
        if len(good) == 3:
            break
    bad = [{"id": name, "source": s, "entry": "f", "args": a}
           for name, (s, a, _) in sorted(HOSTILE.items())]
    path = tmp_path_factory.mktemp("mixed")
    lines = [good[0], *bad[:5], good[1], *bad[5:], good[2]]
    (path / "shard-00000.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    return path, good


@pytest.mark.slow
def test_replay_stats_and_a_fuzz_run_survive_a_hostile_corpus(mixed, tmp_path):
    corpus, good = mixed
    before = (corpus / "shard-00000.jsonl").read_bytes()
    done = fuzz("replay", str(corpus), "--json", "--no-grad", "--workers", "1", "--quiet",
                "--cache-dir", str(tmp_path / "xla"))
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr[-3000:]
    report = json.loads(done.stdout)
    status = {r["id"]: r["status"] for r in report["results"]}
    # replayed with another jax, a good record may change IR; it must never regress
    assert all(status[r["id"]] in SURVIVED for r in good), status
    assert {status[name] for name in HOSTILE} == {"rejected"}
    assert "were rejected or malformed" in report["summary"]["warning"]
    strict = fuzz("replay", str(corpus), "--strict", "--no-grad", "--workers", "1", "--quiet",
                  "--cache-dir", str(tmp_path / "xla"))
    assert strict.returncode == 1 and "Traceback" not in strict.stderr

    stats = fuzz("stats", str(corpus), "--json")
    assert stats.returncode == 0 and json.loads(stats.stdout)["records"] == 3 + len(HOSTILE)

    run = fuzz("--corpus", str(corpus), "--budget", "2x", "--workers", "1", "--quiet",
               "--no-minimize", "--seed", "5")
    assert run.returncode == 0 and "Traceback" not in run.stderr, run.stderr[-3000:]
    assert (corpus / "shard-00000.jsonl").read_bytes().startswith(before)


@pytest.mark.slow
def test_a_shard_that_is_a_directory_and_a_closed_pipe_are_one_line_at_most(mixed, tmp_path):
    corpus, good = mixed
    odd = tmp_path / "odd"
    odd.mkdir()
    (odd / "shard-00000.jsonl").write_text(json.dumps(good[0]) + "\n")
    (odd / "shard-00001.jsonl").mkdir()
    done = fuzz("replay", str(odd), "--no-grad", "--workers", "1", "--quiet", "--no-cache")
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    assert "1 malformed" in done.stdout and "Traceback" not in done.stdout
    assert any(f"1 {s}, 1 malformed" in done.stdout for s in SURVIVED), done.stdout
    assert "shard-00001.jsonl:0" in done.stdout and "cannot read" in done.stdout
    stats = fuzz("stats", str(odd))
    assert stats.returncode == 0 and "malformed lines: 1" in stats.stdout, stats.stderr
    piped = subprocess.run(f"{sys.executable} -m fuzz stats {corpus} | head -1", shell=True,
                           cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert piped.stdout.startswith("corpus ") and piped.stderr == "", piped.stderr


@pytest.mark.slow
def test_the_pool_survives_programs_that_attack_it(tmp_path):
    """A message forged into the pipe, KeyboardInterrupt and BaseException from the program,
    the CPU and memory limits, and a child process left behind by a timed-out program."""
    pipe = HEAD.replace("def f(x0):\n", "import gc\nimport multiprocessing.connection as mc\n\n"
                        "def f(x0):\n") + textwrap.indent(textwrap.dedent("""\
        for o in gc.get_objects():
            if isinstance(o, mc.Connection):
                o.send({payload})
        return x0
        """), "    ")
    child_pid = tmp_path / "child.pid"
    spawner = ("import subprocess, sys, time\n\ndef f(x0):\n    p = subprocess.Popen("
               "[sys.executable, '-c', 'import time; time.sleep(600)'])\n"
               f"    open({str(child_pid)!r}, 'w').write(str(p.pid))\n"
               "    time.sleep(600)\n")
    cases = [
        ("object", pipe.format(payload="object()"), "crashed", "a malformed message"),
        ("short", pipe.format(payload="('result',)"), "crashed", "an unexpected message"),
        ("kbd", program("raise KeyboardInterrupt\n"), "failed", "KeyboardInterrupt"),
        ("base", program("raise BaseException('boom')\n"), "failed", "BaseException"),
        ("exit", program("raise SystemExit(3)\n"), "failed", "SystemExit"),
        ("cpu", program("while True:\n    pass\n"), "crashed", "CPU-time limit of 2 s"),
        ("memory", program("return jnp.ones((50000, 40000)) + x0[0]\n"), None, ""),
        ("children", spawner, "timeout", "timeout"),
        ("ok", program("return x0 * 2\n"), "ok", ""),
    ]
    with ExtractorPool(1, timeout=12, limits=ResourceLimits(memory=4 * 2**30, cpu=2)) as pool:
        for name, source, status, words in cases:
            pool.submit(name, source, "f", ARGS, grad=False, oracles=[])
            (done_id, record), = list(pool.results())
            failure = record.get("failure") or {}
            text = f"{failure.get('type')}: {failure.get('message')}"
            assert done_id == name
            if name == "memory":  # an 8 GB array in a 4 GiB worker: refused, the pool goes on
                assert record["status"] in ("failed", "crashed"), record
            else:
                assert record["status"] == status and words in text, (name, record)
    # the child was killed with its worker's session
    assert gone(int(child_pid.read_text()), 5), "the program's child outlived its worker"


@pytest.mark.slow
def test_a_worker_whose_parent_was_killed_exits_quietly(tmp_path):
    script = tmp_path / "parent.py"
    script.write_text(textwrap.dedent(f"""\
        import sys, time
        from extract import ExtractorPool
        pool = ExtractorPool(1, timeout=60)
        pool.submit(1, "import time\\n\\ndef f(x):\\n    time.sleep(3)\\n    return x\\n", "f",
                    {ARGS!r}, oracles=[])
        time.sleep(1.0)  # the task has started
        print(pool._workers[0].process.pid, flush=True)
        time.sleep(600)
        """))
    err = tmp_path / "stderr"
    with open(err, "w") as stderr:
        parent = subprocess.Popen([sys.executable, str(script)], cwd=tmp_path,
                                  stdout=subprocess.PIPE, stderr=stderr, text=True)
        worker = int(parent.stdout.readline())
        parent.kill()
        parent.wait()
        assert gone(worker, 30), "the orphaned worker did not exit"
    assert "Traceback" not in err.read_text(), err.read_text()[-2000:]


def test_hostile_lines_are_malformed_never_raised(tmp_path):
    corpus = tmp_path / "c"
    corpus.mkdir()
    deep = "[" * 100_000 + "]" * 100_000
    (corpus / "shard-00000.jsonl").write_text(f'{deep}\n{{"id": 1}}\n"x"\n')
    got = [rec for _, _, rec in iter_records(corpus)]
    assert all(isinstance(r, MalformedLine) for r in got) and len(got) == 3
