"""Coverage-guided generation against blind generation, same budget and seeds.

Run by hand (not in CI):  python bench/bench_guide.py [--programs 300] [--seeds 1 2 3]

For each seed, a default run (one worker, forward + backward, default oracle rates) without
and with ``--guide``, the two side by side in two processes (so that both meet the same load
on a shared machine); at the end of each, the distinct features of each kind
(``fuzz.campaign.features``), IR-unique records per second, what became of the programs (added,
duplicates, failures: where records/s goes) and seconds per extracted program; and from
``coverage.tsv`` the distinct op pairs + XLA passes (forward and backward) at each quarter of
the budget, to see whether a curve keeps rising where the other flattens. Medians over seeds,
min-max beside.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fuzz.campaign.budget import Budget  # noqa: E402
from fuzz.campaign.features import SERIES_NAME  # noqa: E402
from fuzz.campaign.loop import DEFAULT_ORACLE_RATES, FuzzRun, Options  # noqa: E402

TARGET = ("stablehlo_op_pairs", "passes", "grad_passes")
OUTCOMES = ("added", "duplicate_ir", "duplicate_source", "failed", "timeout", "forward_only")
"""What became of the programs (stats.json): where records/s goes."""


def run(n: int, seed: int, guide: bool) -> dict:
    with tempfile.TemporaryDirectory() as corpus, open(os.devnull, "w") as sink:
        stats = FuzzRun(Options(budget=Budget(programs=n), corpus=Path(corpus), seed=seed,
                                workers=1, quiet=True, minimize=False, guide=guide,
                                oracle_rates=dict(DEFAULT_ORACLE_RATES)), out=sink).run()
        rows = [line.split("\t") for line in
                (Path(corpus) / SERIES_NAME).read_text().splitlines()]
    header, rows = rows[0], [list(map(float, r)) for r in rows[1:]]
    target = [sum(r[header.index(k)] for k in TARGET) for r in rows]
    end = rows[-1][0]
    quarters = [next((t for r, t in zip(rows, target, strict=True) if r[0] >= q * end),
                     target[-1]) for q in (0.25, 0.5, 0.75, 1.0)]
    return {"features": stats["features"], "target": sum(stats["features"][k] for k in TARGET),
            "unique_per_s": stats["added"] / stats["elapsed_s"], "quarters": quarters,
            "guide": stats["guide"],
            "outcomes": {k: stats[k] for k in OUTCOMES},
            "s_per_extracted": stats["elapsed_s"] / max(stats["extracted"], 1)}


def _child(n: int, seed: int, guide: bool, out: mp.Queue) -> None:
    out.put((guide, run(n, seed, guide)))


def side_by_side(n: int, seed: int) -> tuple[dict, dict]:
    """The blind and the guided run of ``seed`` at once, each in a process of its own (not a
    pool's: its daemonic workers could not start extraction workers)."""
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    procs = [ctx.Process(target=_child, args=(n, seed, guide, out)) for guide in (False, True)]
    for p in procs:
        p.start()
    results = dict(out.get() for _ in procs)
    for p in procs:
        p.join()
    return results[False], results[True]


def med(xs: list[float]) -> str:
    return f"{statistics.median(xs):8.2f}  ({min(xs):.2f}-{max(xs):.2f})"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--programs", type=int, default=300)
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    args = ap.parse_args()
    rows: dict[str, list[float]] = {}
    for seed in args.seeds:
        blind, guided = side_by_side(args.programs, seed)
        for kind in blind["features"]:
            rows.setdefault(f"{kind}: blind", []).append(blind["features"][kind])
            rows.setdefault(f"{kind}: guided", []).append(guided["features"][kind])
        rows.setdefault("op pairs + passes: blind", []).append(blind["target"])
        rows.setdefault("op pairs + passes: guided", []).append(guided["target"])
        rows.setdefault("ratio guided / blind (goal >= 1.2)", []).append(
            guided["target"] / blind["target"])
        rows.setdefault("IR-unique records/s: blind", []).append(blind["unique_per_s"])
        rows.setdefault("IR-unique records/s: guided", []).append(guided["unique_per_s"])
        rows.setdefault("ratio of records/s (goal >= 0.85)", []).append(
            guided["unique_per_s"] / blind["unique_per_s"])
        for kind in OUTCOMES:
            rows.setdefault(f"programs {kind}: blind", []).append(blind["outcomes"][kind])
            rows.setdefault(f"programs {kind}: guided", []).append(guided["outcomes"][kind])
        rows.setdefault("seconds per extracted program: blind", []).append(
            blind["s_per_extracted"])
        rows.setdefault("seconds per extracted program: guided", []).append(
            guided["s_per_extracted"])
        for q, (b, g) in enumerate(zip(blind["quarters"], guided["quarters"], strict=True)):
            rows.setdefault(f"op pairs + passes at {25 * (q + 1)} %: blind", []).append(b)
            rows.setdefault(f"op pairs + passes at {25 * (q + 1)} %: guided", []).append(g)
        print(f"seed {seed}: guide {guided['guide']}", flush=True)
    width = max(map(len, rows))
    print(f"{'measure':{width}}  median    (min-max), seeds {args.seeds}, "
          f"{args.programs} programs each")
    for name, xs in rows.items():
        print(f"{name:{width}}  {med(xs)}")


if __name__ == "__main__":
    main()
