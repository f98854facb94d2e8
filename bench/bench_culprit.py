"""The culprit search (fuzz.triage.culprit) on every registered finding's reproducer.

    python bench/bench_culprit.py [--parallel N]

For each finding with a script that fails on the installed jax (fuzz.triage.known_findings): the
passes that fired, the 1-minimal set whose disabling makes the script exit 0 (or why there is
none), how many runs and seconds the search took, and the module the HLO excerpt comes from.
Run it with nothing else on the cores: each run is a fresh interpreter compiling.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import jax

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fuzz.triage.culprit import find_culprit  # noqa: E402
from fuzz.triage.known_findings import FINDINGS  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--parallel", type=int, default=os.cpu_count() or 1)
    a = p.parse_args()
    os.environ.pop("XLA_FLAGS", None)  # as a user runs the scripts
    print(f"jax {jax.__version__}")
    for f in FINDINGS:
        if not f.script or not f.reproduces.get(jax.__version__):
            continue
        found = find_culprit(ROOT / f.script, parallel=a.parallel)
        named = "+".join(found.passes) if found.passes else "-"
        print(f"Finding {f.number:>2} {f.name:<38} {f.kind:<16} fired {len(found.fired):>2} "
              f"culprit {named:<16} {found.runs:>2} runs {found.seconds:6.1f} s "
              f"{found.module or ''}\n    {found.reason}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
