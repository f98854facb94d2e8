"""What 8 virtual CPU devices per worker cost a single-device program.

Run by hand (not in CI):  python bench/bench_devices.py [--programs 40] [--reps 3]

Two extractor pools of 2 workers extract the same single-device grammar programs (no mesh
op), one with ``devices=1`` and one with the default ``devices=8``, side by side in each
repetition (the order alternates).  Throughput is steady-state, from the first finished
program to the last (the workers' start is left out); medians over the repetitions with
min-max, and the ratio of each repetition.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from extract import ExtractorPool  # noqa: E402
from fuzz.campaign import sampling  # noqa: E402
from grammar import OPS, programs  # noqa: E402
from grammar.ops_parallel import MESH_OPS  # noqa: E402


def run(drawn: list, devices: int) -> float:
    """Programs per second of one pool with ``devices`` virtual devices per worker."""
    with ExtractorPool(2, devices=devices, timeout=120) as pool:
        for i, p in enumerate(drawn):
            pool.submit(i, p.source, p.entry, p.args, seed=i)
        first = last = None
        done = 0
        for _ in pool.results():
            now = time.perf_counter()
            first = first or now
            last = now
            done += 1
    return (done - 1) / (last - first)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--programs", type=int, default=40)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--seed", type=int, default=8)
    a = ap.parse_args()
    strategy = programs(ops=[n for n in OPS if n not in MESH_OPS], max_statements=15)
    drawn = [sampling.draw(strategy, a.seed, i)[0] for i in range(a.programs)]
    rates: dict[int, list[float]] = {1: [], 8: []}
    for rep in range(a.reps):
        for devices in ((1, 8) if rep % 2 == 0 else (8, 1)):
            rates[devices].append(run(drawn, devices))
        print(f"rep {rep}: devices=1 {rates[1][-1]:.2f} prog/s, devices=8 "
              f"{rates[8][-1]:.2f} prog/s", flush=True)
    ratios = [b / a for a, b in zip(rates[1], rates[8], strict=True)]
    for devices, r in rates.items():
        print(f"devices={devices}: {statistics.median(r):.2f} prog/s ({min(r):.2f}-{max(r):.2f})")
    print(f"ratio devices=8 / devices=1: {statistics.median(ratios):.3f} "
          f"({min(ratios):.3f}-{max(ratios):.3f})")


if __name__ == "__main__":
    main()
