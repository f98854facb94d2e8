"""Measure the source styles over seeded default programs (run by hand, not a test).

    python3 bench/bench_styles.py --programs 500 --seed 1

For each program drawn as the fuzz loop draws it (``fuzz.campaign.sampling.draw``, default options
but ``--max-statements``): the canonical StableHLO of every style against the ``ssa`` one,
the drawn style, the deepest expression nesting of the drawn text, whether it uses
vocabulary names, and the time to draw it and to render it.
"""

from __future__ import annotations

import argparse
import ast
import os
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=8")

_NESTING = (ast.Call, ast.BinOp, ast.UnaryOp, ast.Compare)


def nesting(source: str) -> int:
    """The deepest nesting of calls and operators in any statement of ``source``."""
    def depth(node: ast.AST) -> int:
        inner = max((depth(c) for c in ast.iter_child_nodes(node)), default=0)
        return inner + 1 if isinstance(node, _NESTING) else inner

    return max((depth(s.value) for s in ast.walk(ast.parse(source))
                if isinstance(s, ast.Assign | ast.Return) and s.value is not None), default=0)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--programs", type=int, default=500)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--max-statements", type=int, default=50)
    a = p.parse_args()
    import jax
    import numpy as np

    from extract.args import flatten_args, normalize_args
    from extract.clean import clean_mlir, ir_hash
    from extract.stages import on_leaves
    from fuzz.campaign import sampling
    from grammar import STYLES, programs

    def ir(program, style):
        namespace: dict = {}
        exec(program.render(style), namespace)
        f = on_leaves(namespace[program.entry], normalize_args(program.args), program.entry)
        avals = [jax.ShapeDtypeStruct(s, np.dtype(d)) for s, d in flatten_args(program.args)]
        return ir_hash(clean_mlir(jax.jit(f).lower(*avals).as_text()))

    strategy = programs(max_statements=a.max_statements)
    styles: Counter = Counter()
    same = differ = failed = named = 0
    depths, draw_s, render_s, lower_s = [], [], [], []
    for index in range(a.programs):
        t0 = time.perf_counter()
        drawn = sampling.draw(strategy, a.seed, index)
        draw_s.append(time.perf_counter() - t0)
        if drawn is None:
            continue
        program = drawn[0]
        t0 = time.perf_counter()
        source = program.source
        render_s.append(time.perf_counter() - t0)
        styles[program.style] += 1
        depths.append(nesting(source))
        named += program.style in ("named", "idiomatic")
        try:
            t0 = time.perf_counter()
            reference = ir(program, "ssa")
            lower_s.append(time.perf_counter() - t0)
        except Exception:  # a program JAX rejects in every style: not a style question
            failed += 1
            continue
        if all(ir(program, s) == reference for s in STYLES if s != "ssa"):
            same += 1
        else:
            differ += 1
            print("IR differs across styles:\n" + program.render("ssa"), file=sys.stderr)
    n = sum(styles.values())
    print(f"jax {jax.__version__}; {n} programs (seed {a.seed}, --max-statements "
          f"{a.max_statements})")
    print(f"same canonical StableHLO in all {len(STYLES)} styles: {same} of {same + differ} "
          f"lowered ({failed} failed to lower in ssa)")
    print("drawn styles: " + ", ".join(f"{s} {c / n:.1%}" for s, c in styles.most_common())
          + f"; not ssa {1 - styles['ssa'] / n:.1%}")
    print(f"vocabulary names: {named / n:.1%}; nesting depth: mean {statistics.mean(depths):.2f}"
          f", median {statistics.median(depths)}, max {max(depths)}")
    print(f"per program: draw median {statistics.median(draw_s) * 1e3:.1f} ms, render "
          f"{statistics.median(render_s) * 1e3:.1f} ms (max {max(render_s) * 1e3:.1f}); "
          f"ssa trace+lower median {statistics.median(lower_s) * 1e3:.0f} ms")


if __name__ == "__main__":
    main()
