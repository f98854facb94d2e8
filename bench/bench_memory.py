"""Memory over a long run: RSS of the fuzz loop's parent and workers, sampled as it goes.

Run by hand (not in CI):  python bench/bench_memory.py [--programs 5000] [--workers 2]

Starts ``python -m fuzz --budget <programs>x`` in a temporary corpus and reads the resident
set size of the parent and of each worker from /proc every few seconds; prints the samples
and the growth of each from its first sample after warm-up to its peak.
"""

from __future__ import annotations

import argparse
import contextlib
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def rss_mib(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def children(pid: int) -> list[int]:
    out: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):
            out += [int(c) for c in (task / "children").read_text().split()]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--programs", type=int, default=5000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--every", type=float, default=10.0, help="seconds between samples")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as corpus:
        proc = subprocess.Popen([sys.executable, "-m", "fuzz", "--budget", f"{a.programs}x",
                                 "--corpus", corpus, "--seed", "5", "--workers",
                                 str(a.workers), "--quiet", "--no-minimize"], cwd=ROOT,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        samples: list[tuple[float, float, float]] = []
        start = time.monotonic()
        while proc.poll() is None:
            time.sleep(a.every)
            parent = rss_mib(proc.pid)
            workers = [r for r in map(rss_mib, children(proc.pid)) if r]
            if parent is None:
                break
            samples.append((time.monotonic() - start, parent, max(workers, default=0.0)))
            print(f"{samples[-1][0]:7.0f}s  parent {parent:7.1f} MiB  worker max "
                  f"{samples[-1][2]:7.1f} MiB", flush=True)
        tail = proc.stderr.read().strip().splitlines()
        print(tail[-1] if tail else "")
    warm = samples[min(2, len(samples) - 1):]
    for name, col in (("parent", 1), ("worker", 2)):
        first, peak = warm[0][col], max(s[col] for s in warm)
        print(f"{name}: {first:.1f} MiB after warm-up, peak {peak:.1f} MiB, growth "
              f"{peak - first:.1f} MiB over {a.programs} programs")


if __name__ == "__main__":
    main()
