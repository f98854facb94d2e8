"""Measure how a run's JAX calls track real code under each draw weighting (run by hand).

    python3 bench/bench_op_weights.py --programs 1000 --seed 1 --scales 0,1,2

Draws the same seeded programs the fuzz loop would (``fuzz.campaign.sampling.draw``, default
options) with uniform op weights (scale 0) and with
``fuzz.report.api_coverage.op_weights(scale)``, and reports for each, from the programs' own
text: the Jensen-Shannon distance of their calls from the real-world ones, the in-program call
sites and top-50 names covered, array methods covered, how many of the table's ops were drawn at
all (the rare ops the fuzzer needs), and the four rarest categories.
Nothing is compiled.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--programs", type=int, default=1000)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--scales", default="0,1,2")
    a = p.parse_args()
    from fuzz.campaign import sampling
    from fuzz.report.api_coverage import api_coverage, api_use, op_weights
    from grammar import programs
    from grammar.ops import OPS

    print(f"{a.programs} programs per row (seed {a.seed}), default options")
    print("scale | Jensen-Shannon | call sites | top 50 | methods | ops drawn | rarest "
          "categories (share of programs)")
    for scale in (float(s) for s in a.scales.split(",")):
        strategy = programs(weights=op_weights(scale) if scale else None)
        calls: Counter = Counter()
        methods: Counter = Counter()
        ops: set[str] = set()
        categories: Counter = Counter()
        for index in range(a.programs):
            drawn = sampling.draw(strategy, a.seed, index)
            if drawn is None:
                continue
            used_calls, used_methods = api_use(drawn[0].source)
            calls.update(used_calls)
            methods.update(used_methods)
            ops.update(drawn[0].ops)
            categories.update(drawn[0].categories)
        cov = api_coverage(calls, methods)
        print(f"{scale:g} | {cov['jensen_shannon']:.3f} | {cov['call_sites_covered']:.1%} | "
              f"{cov['top50_covered']} | {cov['methods_covered']:.1%} | {len(ops)} of "
              f"{len(OPS)} | " + ", ".join(f"{c} {n / a.programs:.1%}" for c, n in sorted(
                  categories.items(), key=lambda kv: kv[1])[:4]))


if __name__ == "__main__":
    main()
