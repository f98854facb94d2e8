"""Where a run's CPU goes: the parent against its workers, and what the parent spends it on.

Run by hand (not in CI):  python bench/bench_parent.py [--programs 80] [--reps 3] [--profile]

Each repetition runs ``python -m fuzz --budget Nx --oracles none --no-minimize`` (2 workers,
guided, seed 31) twice, side by side: as it runs by default, and with
``OPENBLAS_NUM_THREADS=1`` (the parent's and, inherited, the workers' OpenBLAS on one thread:
the guide's cost model is a ~300x300 solve that takes 0.8 ms alone and 36 ms with OpenBLAS
threads spinning against busy workers). It reports
wall seconds, programs per second, and the CPU seconds of the parent and of the workers
(``getrusage`` of the child that runs the loop: itself, and its own children), as medians
with min-max. ``--profile`` also prints the parent's cProfile, grouped by what the time was
for (drawing, rendering, the guide's model, waiting on the workers).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHILD = r"""
import cProfile, json, pstats, resource, sys, tempfile, time
from pathlib import Path
sys.path.insert(0, {root!r})
from fuzz.campaign.budget import Budget
from fuzz.campaign.loop import FuzzRun, Options

n, profile = {n}, {profile}
with tempfile.TemporaryDirectory() as d:
    o = Options(budget=Budget.parse(f"{{n}}x"), corpus=Path(d), seed=31, workers=2, quiet=True,
                minimize=False, oracle_rates={{}})
    prof = cProfile.Profile() if profile else None
    t0 = time.perf_counter()
    if prof:
        prof.enable()
    FuzzRun(o).run()
    if prof:
        prof.disable()
    wall = time.perf_counter() - t0
    me, kids = (resource.getrusage(w) for w in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
    out = {{"wall": wall, "parent": me.ru_utime + me.ru_stime,
            "workers": kids.ru_utime + kids.ru_stime}}
    if prof:
        stats = pstats.Stats(prof).stats
        groups = {{"draw (candidates included)": "fuzz/campaign/sampling.py:44(draw)",
                   "render and style": "grammar/render.py:133(render)",
                   "guide's cost model": "fuzz/campaign/guide.py:166(fit)",
                   "wait on workers": "extract/pool.py:351(_wait)",
                   "store a record": "fuzz/campaign/loop.py:320(_store)"}}
        out["profile"] = {{name: sum(v[3] for k, v in stats.items()
                                    if f"{{k[0]}}:{{k[1]}}({{k[2]}})".endswith(where))
                          for name, where in groups.items()}}
    print(json.dumps(out))
"""


def run(n: int, threads: str | None, profile: bool) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
    if threads is not None:
        env["OPENBLAS_NUM_THREADS"] = threads
    done = subprocess.run([sys.executable, "-c", CHILD.format(root=str(ROOT), n=n,
                                                              profile=profile)],
                          capture_output=True, text=True, env=env, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def med(xs: list[float]) -> str:
    return f"{statistics.median(xs):.2f} ({min(xs):.2f}-{max(xs):.2f})"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--programs", type=int, default=80)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--profile", action="store_true")
    a = ap.parse_args()
    sides = {"default": None, "OPENBLAS_NUM_THREADS=1": "1"}
    got: dict[str, list[dict]] = {name: [] for name in sides}
    with tempfile.TemporaryDirectory():
        for _ in range(a.reps):
            for name, threads in sides.items():
                got[name].append(run(a.programs, threads, a.profile))
    print(f"{a.programs} programs, --oracles none, guided, 2 workers; medians (min-max) "
          f"over {a.reps} repetitions")
    for name, runs in got.items():
        walls = [r["wall"] for r in runs]
        print(f"{name}: wall {med(walls)} s, {med([a.programs / w for w in walls])} prog/s, "
              f"parent CPU {med([r['parent'] for r in runs])} s "
              f"({med([r['parent'] / r['wall'] for r in runs])} of a core), "
              f"workers CPU {med([r['workers'] for r in runs])} s")
        if a.profile:
            for group in runs[0]["profile"]:
                print(f"    {group}: {med([r['profile'][group] for r in runs])} s")
    base, other = (got[name] for name in sides)
    print("throughput ratio OPENBLAS_NUM_THREADS=1 / default: " +
          med([b["wall"] / o["wall"] for b, o in zip(base, other, strict=True)]))


if __name__ == "__main__":
    main()
