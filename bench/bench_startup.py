"""How long a fuzz run takes to its first stored record (issue 29: within 2 s), run by hand.

    python3 bench/bench_startup.py --reps 5

Each repetition starts ``python -m fuzz --budget 6x`` into a fresh corpus and polls the first
shard every 20 ms: the time from starting the process to the shard's first line, and to the
run's end. Then the start-up's parts, measured in this process: importing the CLI, the real
op weights (``fuzz.report.api_coverage.op_weights``, which resolves names through JAX), and an
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


def first_record(corpus: Path, seed: int) -> tuple[float, float]:
    """Seconds from starting a run to its first stored record, and to its end."""
    started = time.monotonic()
    run = subprocess.Popen([sys.executable, "-m", "fuzz", "--budget", "6x", "--corpus",
                            str(corpus), "--quiet", "--seed", str(seed)], cwd=ROOT,
                           stderr=subprocess.DEVNULL)
    first = None
    shard = corpus / "shard-00000.jsonl"
    while run.poll() is None:
        if first is None and shard.exists() and shard.stat().st_size > 0:
            first = time.monotonic() - started
        time.sleep(0.02)
    return (first if first is not None else float("nan")), time.monotonic() - started


def parts() -> dict[str, float]:
    """The start-up's parts, each timed in a fresh interpreter."""
    code = {
        "import fuzz.cli": "import fuzz.cli",
        "op weights": "from fuzz.report.api_coverage import op_weights; op_weights()",
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
                              text=True, check=True)
        out[name] = float(done.stdout.split()[-1])
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--reps", type=int, default=5)
    a = p.parse_args()
    firsts, ends = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for rep in range(a.reps):
            corpus = Path(tmp) / f"c{rep}"
            first, end = first_record(corpus, rep)
            firsts.append(first)
            ends.append(end)
            shutil.rmtree(corpus, ignore_errors=True)
    print(f"first record: median {statistics.median(firsts):.2f} s "
          f"(min {min(firsts):.2f}, max {max(firsts):.2f}) over {a.reps} runs of 6 programs; "
          f"runs ended after {statistics.median(ends):.1f} s median; {os.cpu_count()} cores")
    for name, seconds in parts().items():
        print(f"  {name}: {seconds:.2f} s")


if __name__ == "__main__":
    main()
