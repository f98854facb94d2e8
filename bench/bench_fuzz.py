"""jaxsmith against the bare-JAX floor: overhead, scaling, useful output per second.

Run by hand (not in CI):  python bench/bench_fuzz.py [--programs 120] [--reps 3]

1. Overhead: ``python -m fuzz`` (one worker) against the same programs' JAX stages called
   directly in one plain loop (exec, make_jaxpr, lower, as_text x2, compile, as_text,
   cost_analysis, and the same for the gradient).
2. Scaling: the fuzz loop with 1 and 2 workers against two floor processes side by side.
3. Useful output: IR-unique, fully extracted (forward + backward) records per second.
4. ``--oracles``: the cost of executing and checking programs: 2 workers with the default
   oracles (every one on every program) against ``--oracles none`` and against the former
   sampled rates, side by side in each repetition, and the workers' per-stage times.
5. ``--levels``: a run that extracts only ``jaxpr,stablehlo`` without the backward pass
   (nothing compiled, nothing run) against the default run (every level, backward pass,
   default oracle rates), 2 workers each, side by side in each repetition.
6. ``--ray``: the Ray engine (a local Ray instance) against the local pool, 2 workers and
   default options each, side by side in each repetition.

Throughput is steady-state: from the first finished program to the last, so the one-off
worker start (JAX import, ~2 s) is left out on both sides.  Medians over ``--reps``
repetitions, min-max beside them.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing as mp
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_extract import _grad_fn, _load  # noqa: E402

from extract.levels import LEVELS  # noqa: E402
from fuzz.campaign import sampling  # noqa: E402
from fuzz.campaign.budget import Budget  # noqa: E402
from fuzz.campaign.loop import FuzzRun, Options  # noqa: E402
from grammar import programs  # noqa: E402

SEED = 2026


def floor(indices: list[int], n: int, out: mp.Queue | None = None) -> dict:
    """The bare-JAX floor: every stage called directly in one plain loop, stage times summed.
    It compiles with the workers' XLA flags, so both sides do the same XLA work."""
    import jax

    stages = {"generate+render": 0.0, "trace+lower": 0.0, "compile": 0.0, "backward": 0.0}
    first = last = None
    for k, i in enumerate(indices):
        t0 = time.perf_counter()
        p = sampling.draw(programs(), SEED, i)[0]
        t1 = time.perf_counter()
        f, avals = _load(p.source, p.entry, p.args)
        str(jax.make_jaxpr(f)(*avals))
        lowered = jax.jit(f).lower(*avals)
        lowered.as_text()
        lowered.as_text(dialect="hlo")
        t2 = time.perf_counter()
        compiled = lowered.compile()
        compiled.as_text()
        compiled.cost_analysis()
        t3 = time.perf_counter()
        g = _grad_fn(f, avals, jax.tree_util.tree_leaves(jax.eval_shape(f, *avals)))
        if g is not None:
            with contextlib.suppress(Exception):  # known limitations fail here, as in jaxsmith
                str(jax.make_jaxpr(g)(*avals))
                gl = jax.jit(g).lower(*avals)
                gl.as_text()
                gl.as_text(dialect="hlo")
                gc = gl.compile()
                gc.as_text()
                gc.cost_analysis()
        t4 = time.perf_counter()
        for name, secs in zip(stages, (t1 - t0, t2 - t1, t3 - t2, t4 - t3), strict=True):
            stages[name] += secs
        first = t4 if k == 0 else first
        last = t4
    result = {"stages": stages, "steady_s": (last - first) if len(indices) > 1 else 0.0,
              "count": len(indices)}
    if out is not None:
        out.put(result)
    return result


def floor_processes(n: int, procs: int) -> float:
    """Steady-state programs/s of ``procs`` floor processes side by side."""
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    shares = [list(range(k, n, procs)) for k in range(procs)]
    ps = [ctx.Process(target=floor, args=(share, n, q)) for share in shares]
    for p in ps:
        p.start()
    results = [q.get() for _ in ps]
    for p in ps:
        p.join()
    return sum((r["count"] - 1) / r["steady_s"] for r in results if r["steady_s"])


def fuzz_run(n: int, workers: int, oracle_rates: dict[str, float] | None = None,
             xla_flags: str | None = None, grad: bool = True,
             levels: tuple[str, ...] = LEVELS, engine: str = "local") -> dict:
    rates = {} if oracle_rates is None else oracle_rates
    saved = os.environ.get("XLA_FLAGS")
    if xla_flags is not None:  # the workers inherit the user's flags
        os.environ["XLA_FLAGS"] = xla_flags
    try:
        with tempfile.TemporaryDirectory() as corpus, open(os.devnull, "w") as sink:
            stats = FuzzRun(Options(budget=Budget(programs=n), corpus=Path(corpus), seed=SEED,
                                    workers=workers, quiet=True, minimize=False,
                                    oracle_rates=rates, grad=grad, levels=levels,
                                    engine=engine),
                            out=sink).run()
            timings = _timings(corpus)
    finally:
        if xla_flags is not None:
            if saved is None:
                os.environ.pop("XLA_FLAGS", None)
            else:
                os.environ["XLA_FLAGS"] = saved
    steady = stats["elapsed_s"] - stats["first_result_s"]
    full = stats["added"] - stats["forward_only"]
    return {"rate": (stats["extracted"] - 1) / steady, "stats": stats, "timings": timings,
            "useful_per_s": full / stats["elapsed_s"]}


def _timings(corpus: str) -> dict[str, list[float]]:
    """Seconds per stage over the stored records, one list per stage."""
    from fuzz.corpus.store import iter_records

    timings: dict[str, list[float]] = {}
    for _, _, rec in iter_records(corpus):
        for k, v in (rec.get("timings") or {}).items():
            timings.setdefault(k, []).append(v)
    return timings


SAMPLED_RATES = {"jit_eager": 0.03, "autodiff": 0.25, "vmap": 0.15, "interpreter": 1.0,
                 "unsimplified": 0.25, "symbolic": 1.0, "pallas": 1.0}
"""The default oracle rates before every oracle ran on every program (issue 28)."""


def oracle_cost(n: int, reps: int) -> dict[str, list[float]]:
    """Throughput with the default oracles (every one on every program) against none, and
    against the sampled rates that were the default before."""
    from fuzz.campaign.loop import DEFAULT_ORACLE_RATES

    rows: dict[str, list[float]] = {}
    stage_times: dict[str, list[float]] = {}
    for _ in range(reps):
        none = fuzz_run(n, 2, {})
        sampled = fuzz_run(n, 2, SAMPLED_RATES)
        full = fuzz_run(n, 2, dict(DEFAULT_ORACLE_RATES))
        rows.setdefault("--oracles none (prog/s)", []).append(none["rate"])
        rows.setdefault("former sampled rates (prog/s)", []).append(sampled["rate"])
        rows.setdefault("default: every oracle on every program (prog/s)", []).append(
            full["rate"])
        rows.setdefault("ratio default / none", []).append(full["rate"] / none["rate"])
        rows.setdefault("ratio sampled / none", []).append(sampled["rate"] / none["rate"])
        for k, v in full["timings"].items():
            stage_times.setdefault(k, []).extend(v)
    for k, v in stage_times.items():
        rows[f"stage {k}: median ms over {len(v)} runs"] = [1e3 * statistics.median(v)]
    return rows


def levels_gain(n: int, reps: int) -> dict[str, list[float]]:
    """Throughput of ``--levels jaxpr,stablehlo --no-grad`` against the default run."""
    from fuzz.campaign.loop import DEFAULT_ORACLE_RATES

    rows: dict[str, list[float]] = {}
    for _ in range(reps):
        full = fuzz_run(n, 2, dict(DEFAULT_ORACLE_RATES))
        lean = fuzz_run(n, 2, dict(DEFAULT_ORACLE_RATES), grad=False,
                        levels=("jaxpr", "stablehlo"))
        rows.setdefault("default run (prog/s)", []).append(full["rate"])
        rows.setdefault("--levels jaxpr,stablehlo --no-grad (prog/s)", []).append(lean["rate"])
        rows.setdefault("ratio levels / default", []).append(lean["rate"] / full["rate"])
    return rows


def ray_ratio(n: int, reps: int) -> dict[str, list[float]]:
    """Throughput of the Ray engine against the local pool, default options."""
    from fuzz.campaign.loop import DEFAULT_ORACLE_RATES

    rows: dict[str, list[float]] = {}
    for _ in range(reps):
        local = fuzz_run(n, 2, dict(DEFAULT_ORACLE_RATES))
        on_ray = fuzz_run(n, 2, dict(DEFAULT_ORACLE_RATES), engine="ray")
        rows.setdefault("local pool, 2 workers (prog/s)", []).append(local["rate"])
        rows.setdefault("--engine ray, 2 workers (prog/s)", []).append(on_ray["rate"])
        rows.setdefault("ratio ray / local", []).append(on_ray["rate"] / local["rate"])
        rows.setdefault("ray start to first result (s)", []).append(
            on_ray["stats"]["first_result_s"])
        rows.setdefault("local start to first result (s)", []).append(
            local["stats"]["first_result_s"])
    return rows


def med(xs: list[float]) -> str:
    return f"{statistics.median(xs):7.2f}  ({min(xs):.2f}-{max(xs):.2f})"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--programs", type=int, default=120)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--oracles", action="store_true",
                    help="measure the cost of the oracles instead (see the docstring)")
    ap.add_argument("--levels", action="store_true",
                    help="measure the gain of --levels jaxpr,stablehlo --no-grad instead")
    ap.add_argument("--ray", action="store_true",
                    help="measure the Ray engine against the local pool instead")
    args = ap.parse_args()
    n = args.programs
    rows: dict[str, list[float]] = {}
    if args.oracles:
        rows = oracle_cost(n, args.reps)
    if args.levels:
        rows = levels_gain(n, args.reps)
    if args.ray:
        rows = ray_ratio(n, args.reps)
    for _ in range(0 if args.oracles or args.levels or args.ray else args.reps):
        f1 = floor(list(range(n)), n)
        rows.setdefault("floor, 1 process (prog/s)", []).append((n - 1) / f1["steady_s"])
        for name, secs in f1["stages"].items():
            rows.setdefault(f"floor stage {name} (ms/prog)", []).append(1e3 * secs / n)
        j1 = fuzz_run(n, 1)
        rows.setdefault("jaxsmith, 1 worker (prog/s)", []).append(j1["rate"])
        rows.setdefault("ratio 1 worker / floor", []).append(
            j1["rate"] / rows["floor, 1 process (prog/s)"][-1])
        f2 = floor_processes(n, 2)
        rows.setdefault("floor, 2 processes (prog/s)", []).append(f2)
        j2 = fuzz_run(n, 2)
        rows.setdefault("jaxsmith, 2 workers (prog/s)", []).append(j2["rate"])
        rows.setdefault("ratio 2 workers / 2-process floor", []).append(j2["rate"] / f2)
        rows.setdefault("useful records/s, 2 workers", []).append(j2["useful_per_s"])
        for k, v in j1["timings"].items():
            rows.setdefault(f"jaxsmith worker stage {k} (ms/prog)", []).append(1e3 * sum(v) / n)
    width = max(map(len, rows))
    print(f"{'measure':{width}}  median   (min-max), {args.reps} reps of {n} programs")
    for name, xs in rows.items():
        print(f"{name:{width}}  {med(xs)}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
