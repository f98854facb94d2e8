"""How long a fuzz run takes to its first stored record (issue 29: within 2 s), run by hand.

    python3 bench/bench_startup.py --reps 5

Each repetition starts ``python -m fuzz --budget 6x`` into a fresh corpus twice, side by
side: once with an empty op-weights cache (``fuzz.campaign.op_weights``: a first run on
this JAX) and once with it filled (every later run), and polls the first shard every 20 ms:
the time from starting the process to the shard's first line, and to the run's end. Then
the start-up's parts, each in a fresh interpreter: importing the CLI, the real op weights
computed (which resolves names through JAX) and read from the cache, and an
``ExtractorPool`` of 2 workers to its first result on a one-line program.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def first_record(corpus: Path, seed: int, cache: Path) -> tuple[float, float]:
    """Seconds from starting a run to its first stored record, and to its end."""
    started = time.monotonic()
    run = subprocess.Popen([sys.executable, "-m", "fuzz", "--budget", "6x", "--corpus",
                            str(corpus), "--quiet", "--seed", str(seed)], cwd=ROOT,
                           stderr=subprocess.DEVNULL, env={**os.environ,
                                                           "JAXSMITH_CACHE": str(cache)})
    first = None
    shard = corpus / "shard-00000.jsonl"
    while run.poll() is None:
        if first is None and shard.exists() and shard.stat().st_size > 0:
            first = time.monotonic() - started
        time.sleep(0.02)
    return (first if first is not None else float("nan")), time.monotonic() - started


def parts(cache: Path) -> dict[str, float]:
    """The start-up's parts, each timed in a fresh interpreter (``cache``: a filled one)."""
    code = {
        "import fuzz.cli": "import fuzz.cli",
        "op weights, computed": "from fuzz.report.api_coverage import op_weights; op_weights()",
        "op weights, from the cache": (
            "from fuzz.campaign.op_weights import real_op_weights; real_op_weights()"),
        "pool to first result": (
            "from extract.pool import ExtractorPool\n"
            "with ExtractorPool(2) as p:\n"
            "    p.submit(1, 'def f(x):\\n    return x * 2\\n', 'f', [((3,), 'float32')])\n"
            "    next(iter(p.results()))\n"),
    }
    out = {}
    for name, body in code.items():
        script = f"import time\nt = time.perf_counter()\n{body}\nprint(time.perf_counter() - t)"
        done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True,
                              text=True, check=True,
                              env={**os.environ, "JAXSMITH_CACHE": str(cache)})
        out[name] = float(done.stdout.split()[-1])
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--reps", type=int, default=5)
    a = p.parse_args()
    times: dict[str, list[float]] = {"empty": [], "filled": [], "end": []}
    with tempfile.TemporaryDirectory() as tmp:
        filled = Path(tmp) / "filled-cache"
        subprocess.run([sys.executable, "-c", "from fuzz.campaign.op_weights import "
                        "real_op_weights; real_op_weights()"], cwd=ROOT, check=True,
                       env={**os.environ, "JAXSMITH_CACHE": str(filled)})
        for rep in range(a.reps):
            for kind in ("empty", "filled"):
                cache = Path(tmp) / f"empty-cache-{rep}" if kind == "empty" else filled
                corpus = Path(tmp) / f"c{rep}-{kind}"
                first, end = first_record(corpus, rep, cache)
                times[kind].append(first)
                times["end"].append(end)
                shutil.rmtree(corpus, ignore_errors=True)
        for kind in ("empty", "filled"):
            xs = times[kind]
            print(f"first record, op-weights cache {kind}: median {statistics.median(xs):.2f} s "
                  f"(min {min(xs):.2f}, max {max(xs):.2f}) over {a.reps} runs of 6 programs")
        print(f"runs ended after {statistics.median(times['end']):.1f} s median; "
              f"{os.cpu_count()} cores")
        for name, seconds in parts(filled).items():
            print(f"  {name}: {seconds:.2f} s")


if __name__ == "__main__":
    main()
