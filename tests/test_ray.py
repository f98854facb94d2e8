"""The Ray engine (``--engine ray``): in-process, through the CLI, and on a two-node cluster
started and stopped here. Each test marks its environment, which every process it starts
inherits (Ray's daemons, its workers, their extraction workers), so that it can tell its own
processes from those of a suite running beside it; each gets its own RAY_TMPDIR too."""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from runner import ROOT, SMALL

pytest.importorskip("ray")

from extract.ray_pool import EngineError, RayPool  # noqa: E402
from fuzz.corpus.store import iter_records  # noqa: E402

F32 = [((3,), "float32")]


MARK = "JAXSMITH_RAY_TEST"


@pytest.fixture
def ray_tmp(monkeypatch):
    """The test's mark, and a short RAY_TMPDIR (Ray's socket paths must fit in 107 bytes),
    removed afterwards."""
    path = tempfile.mkdtemp(prefix="ray", dir="/tmp")
    monkeypatch.setenv("RAY_TMPDIR", path)
    mark = f"{MARK}={secrets.token_hex(8)}".encode()
    monkeypatch.setenv(MARK, mark.split(b"=")[1].decode())
    yield mark
    shutil.rmtree(path, ignore_errors=True)


def ray_processes(mark: bytes, wait: float = 20.0) -> list[str]:
    """Live processes (this one aside) whose environment holds ``mark``, once none is left or
    ``wait`` seconds have passed (a loaded machine takes a while to reap what exits)."""
    deadline = time.monotonic() + wait
    while (found := _marked(mark)) and time.monotonic() < deadline:
        time.sleep(0.5)
    return found


def _marked(mark: bytes) -> list[str]:
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            if mark in (proc / "environ").read_bytes().split(b"\0"):
                found.append((proc / "cmdline").read_bytes().replace(b"\0", b" ")[:120])
        except OSError:  # gone meanwhile, or not ours to read
            continue
    return [line.decode(errors="replace") for line in found]


@pytest.mark.slow
def test_ray_pool_classifies_hangs_and_crashes_and_goes_on(ray_tmp):
    import ray

    with RayPool(2, timeout=30) as pool:
        pool.submit("ok", "def f(x):\n    return x * 2\n", "f", F32)
        pool.submit("abort", "import os\n\ndef f(x):\n    os.abort()\n", "f", F32)
        pool.submit("hang", "import time\n\ndef f(x):\n    time.sleep(60)\n    return x\n", "f",
                    F32, timeout=3)
        pool.submit("after", "def f(x):\n    return x + 1\n", "f", F32, grad=False,
                    levels=("stablehlo",))
        got = dict(pool.results())
        assert got["ok"]["status"] == "ok" and got["ok"]["hlo_optimized"]
        assert got["abort"]["failure"]["signature"] == "crashed:SIGABRT"
        assert got["hang"]["status"] == "timeout"
        assert got["after"]["status"] == "ok" and got["after"]["levels"] == ["stablehlo"]
        assert "hlo_optimized" not in got["after"] and got["after"]["grad_skipped"] == "disabled"
        # shared hashes reach every actor, whichever lowered the first copy
        pool.add_skip_hashes([got["ok"]["stablehlo_hash"]])
        for k in range(2):
            pool.submit(k, "def f(y):\n    return y * 2\n", "f", F32)
        assert [r["status"] for _, r in pool.results()] == ["duplicate"] * 2
        assert pool.outstanding == 0 and ray.is_initialized()
    assert not ray.is_initialized() and not ray_processes(ray_tmp)


def fuzz(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "fuzz", *args, *SMALL], cwd=ROOT,
                          capture_output=True, text=True, timeout=300,
                          env={**os.environ, **(env or {})})


def sources(corpus: Path) -> list[str]:
    return [rec["source"] for _, _, rec in iter_records(corpus)]


@pytest.mark.slow
def test_cli_ray_engine_stores_what_the_local_pool_stores(tmp_path, ray_tmp):
    common = ("--budget", "4x", "--seed", "4", "--workers", "1", "--no-grad", "--quiet",
              "--no-minimize", "--no-guide")  # a guided run's draws follow its timings
    local = fuzz(*common, "--corpus", str(tmp_path / "local"))
    on_ray = fuzz(*common, "--corpus", str(tmp_path / "ray"), "--engine", "ray")
    assert local.returncode == 0 and on_ray.returncode == 0, on_ray.stderr
    assert sources(tmp_path / "ray") == sources(tmp_path / "local") != []
    assert '"engine": "ray"' in (tmp_path / "ray" / "stats.json").read_text()
    assert not ray_processes(ray_tmp), "the run left Ray processes behind"


@pytest.mark.slow
def test_cli_refuses_ray_options_it_cannot_use(tmp_path):
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    for args, message in (
        (("--ray-address", "h:1"), "needs --engine ray"),
        (("--engine", "ray", "--ray-address", "nohost"), "expected HOST:PORT"),
        (("--engine", "ray", "--ray-address", f"127.0.0.1:{port}"), "cannot connect"),
    ):
        done = fuzz("--budget", "1x", "--corpus", str(tmp_path / "c"), *args)
        assert done.returncode == 2 and message in done.stderr, done.stderr
        assert "Traceback" not in done.stderr
    assert not (tmp_path / "c").exists()


def _start_node(args: list[str], env: dict) -> subprocess.Popen:
    """``ray start ... --block`` in a session of its own: killing the session stops the node
    and every process it started."""
    beside = Path(sys.executable).with_name("ray")  # this Python's Ray, not one on PATH
    ray = [str(beside)] if beside.exists() else [sys.executable, "-m", "ray.scripts.scripts"]
    return subprocess.Popen([*ray, "start", *args, "--num-cpus=1", "--block"], env=env,
                            start_new_session=True, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)


def _stop(nodes: list[subprocess.Popen]) -> None:
    """Kill each node's session at once (``ray stop --force`` kills too, but every Ray node
    on the machine, a suite's beside this one included)."""
    for node in nodes:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(node.pid, signal.SIGKILL)
        node.wait()


@pytest.mark.slow
def test_a_run_on_a_two_node_cluster(tmp_path, ray_tmp):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(16)}
    nodes = [_start_node(["--head", f"--port={port}", "--include-dashboard=false"], env)]
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "the head node did not start"
                time.sleep(0.5)
        nodes.append(_start_node([f"--address=127.0.0.1:{port}"], env))
        # one CPU per node: two workers need both nodes (the pool waits for the second)
        done = fuzz("--budget", "4x", "--seed", "6", "--workers", "2", "--quiet",
                    "--no-minimize", "--corpus", str(tmp_path / "c"), "--engine", "ray",
                    "--ray-address", f"127.0.0.1:{port}", env=env)
        assert done.returncode == 0, done.stderr[-3000:]
        assert len(sources(tmp_path / "c")) >= 3
    finally:
        _stop(nodes)
    assert not ray_processes(ray_tmp), "stopping the nodes left Ray processes behind"


@pytest.mark.slow
def test_a_pool_refuses_more_workers_than_the_cluster_has_cpus(ray_tmp):
    import ray

    ray.init(address="local", num_cpus=1, include_dashboard=False, logging_level="ERROR",
             object_store_memory=100 * 2**20)
    try:
        with pytest.raises(EngineError, match="2 workers need 2 CPUs, and the Ray cluster"):
            RayPool(2, cpu_wait=0.5)
    finally:
        ray.shutdown()
