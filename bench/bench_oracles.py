"""Measure the oracles on grammar programs (run by hand, not a test).

    python3 bench/bench_oracles.py --programs 300 --seed 1 --out /tmp/oracles.jsonl

One process, the workers' XLA flags, every oracle on every program: per-stage medians, each
oracle's verdicts, and every failure, one JSON line per program in ``--out``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--programs", type=int, default=200)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--out", type=Path, default=None)
    p.add_argument("--xla-flags", default=None, help="XLA_FLAGS for this process")
    a = p.parse_args()
    if a.xla_flags is not None:
        os.environ["XLA_FLAGS"] = a.xla_flags
    from extract.core import extract_in_process
    from extract.oracles import ORACLES
    from fuzz.campaign import sampling
    from grammar import programs

    strategy = programs()
    stages: dict[str, list[float]] = defaultdict(list)
    verdicts: dict[str, Counter] = {name: Counter() for name in ORACLES}
    failures: Counter = Counter()
    out = a.out.open("w") if a.out else None
    t_start = time.perf_counter()
    for index in range(a.programs):
        drawn = sampling.draw(strategy, a.seed, index)
        if drawn is None:
            continue
        program = drawn[0]
        r = extract_in_process(program.source, program.entry, program.args, seed=index)
        for k, v in r.get("timings", {}).items():
            stages[k].append(v)
        for name, verdict in (r.get("oracles") or {}).items():
            verdicts[name][verdict.split(" (")[0][:60]] += 1
        if r["status"] != "ok":
            f = r.get("failure") or {}
            failures[(f.get("signature"), f.get("known"))] += 1
        if out:
            out.write(json.dumps({"index": index, "status": r["status"], "failure":
                                  r.get("failure"), "oracles": r.get("oracles"), "timings":
                                  r.get("timings"), "source": program.source,
                                  "args": program.args}) + "\n")
            out.flush()
    total = time.perf_counter() - t_start
    print(f"{a.programs} programs in {total:.1f} s")
    for k, v in stages.items():
        print(f"  {k:13s} n={len(v):4d} median {1e3 * statistics.median(v):8.1f} ms  "
              f"max {1e3 * max(v):8.1f} ms  total {sum(v):7.1f} s")
    for name, c in verdicts.items():
        print(f"  {name}: {dict(c.most_common())}")
    for (sig, known), n in failures.most_common():
        print(f"  failure x{n} [{known}] {sig}")


if __name__ == "__main__":
    main()
