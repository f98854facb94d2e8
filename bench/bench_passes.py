"""What recording XLA's passes costs, and how many a program fires.

Run by hand (not in CI):  python bench/bench_passes.py [--programs 150] [--seed 2026]

Two one-worker pools side by side, one dumping the passes (the default) and one not
(``ExtractorPool(passes=False)``), extract the same grammar programs in the same order; each
program's forward + backward compile time is compared between the two (median of the
per-program ratios, and of the summed times), and the dumping pool's records give the passes
fired per program and the distinct passes over all of them.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from extract import ExtractorPool  # noqa: E402
from fuzz.campaign import sampling  # noqa: E402
from grammar import programs  # noqa: E402


def compile_s(record: dict) -> float | None:
    t = record.get("timings") or {}
    return t["compile"] + t.get("grad_compile", 0.0) if "compile" in t else None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--programs", type=int, default=150)
    ap.add_argument("--seed", type=int, default=2026)
    args = ap.parse_args()
    strategy = programs()
    drawn = [sampling.draw(strategy, args.seed, i)[0] for i in range(args.programs)]
    results: dict[str, dict] = {}
    with ExtractorPool(1) as dumping, ExtractorPool(1, passes=False) as plain:
        for pool in (dumping, plain):
            for i, p in enumerate(drawn):
                pool.submit(i, p.source, p.entry, p.args, oracles=(),
                            polymorphic_shapes=p.polymorphic_shapes)
        results["dump"] = dict(dumping.results())
        results["plain"] = dict(plain.results())
    both = [i for i in results["dump"]
            if compile_s(results["dump"][i]) and compile_s(results["plain"][i])]
    ratios = [compile_s(results["dump"][i]) / compile_s(results["plain"][i]) for i in both]
    fwd = [len(results["dump"][i].get("passes") or ()) for i in both]
    bwd = [len(results["dump"][i]["grad_passes"]) for i in both
           if results["dump"][i].get("grad_passes")]
    seen = Counter(p for i in both for p in results["dump"][i].get("passes") or ())
    print(f"{len(both)} of {len(drawn)} programs compiled in both pools")
    q1, _, q3 = statistics.quantiles(ratios, n=4)
    print(f"compile (forward + backward) with the dump / without: median per-program ratio "
          f"{statistics.median(ratios):.3f} (quartiles {q1:.3f}-{q3:.3f}); "
          f"summed {sum(compile_s(results['dump'][i]) for i in both):.2f} s vs "
          f"{sum(compile_s(results['plain'][i]) for i in both):.2f} s")
    print(f"passes fired per program, forward: median {statistics.median(fwd):g}, max {max(fwd)}; "
          f"backward: median {statistics.median(bwd):g}, max {max(bwd)}")
    print(f"distinct passes (forward): {len(seen)}; in every program: "
          f"{sorted(p for p, n in seen.items() if n == len(both))}")
    print(f"rarest: {sorted(seen, key=seen.get)[:10]}")


if __name__ == "__main__":
    main()
