"""Benchmark the extractor (run by hand, not a test). Over 400 lines: one script for the three
measures below, which share its programs, timing and table helpers.

    python3 bench/bench_extract.py                  # per-stage medians + overhead ratio
    python3 bench/bench_extract.py --opt-level [--flag F]  # artifacts with XLA flag F and without
    python3 bench/bench_extract.py --cache          # persistent compilation cache, cold/warm

Overhead: for every program, extract_in_process and the same JAX stages called directly run
interleaved, ``--reps`` times each; the ratio is sum of per-program medians, extractor over
direct. Two direct baselines are measured: "literal" (make_jaxpr, then jit().lower(), and
eval_shape to decide the backward pass - the stages as one would write them) and "same"
(the calls extract_in_process makes: one jit().trace() reused for jaxpr and lowering), so
``extract / same`` is the cost of our own bookkeeping (cleaning, hashing, records).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

F32 = "float32"

HANDWRITTEN: list[tuple[str, str, str, list]] = [
    (
        "fori_loop",
        """
import jax.numpy as jnp
from jax import lax

def f(x):
    return lax.fori_loop(0, 5, lambda i, c: c * 0.5 + jnp.sin(c), x)
""",
        "f",
        [((8, 8), F32)],
    ),
    (
        "scan",
        """
import jax.numpy as jnp
from jax import lax

def f(xs, h):
    def step(c, x):
        c = jnp.tanh(c @ h + x)
        return c, c.sum()
    return lax.scan(step, jnp.zeros(xs.shape[1:]), xs)
""",
        "f",
        [((6, 4), F32), ((4, 4), F32)],
    ),
    (
        "cond",
        """
import jax.numpy as jnp
from jax import lax

def f(x, y):
    return lax.cond(x.sum() > 0, lambda a, b: a * b, lambda a, b: a - b, x, y)
""",
        "f",
        [((5,), F32), ((5,), F32)],
    ),
    (
        "vmap",
        """
import jax
import jax.numpy as jnp

def f(a, b):
    return jax.vmap(lambda r, s: jnp.dot(r, s) * jnp.exp(r))(a, b)
""",
        "f",
        [((7, 3), F32), ((7, 3), F32)],
    ),
    (
        "inner_grad",
        """
import jax
import jax.numpy as jnp

def f(w, x):
    loss = lambda w: jnp.mean((jnp.tanh(x @ w)) ** 2)
    return w - 0.1 * jax.grad(loss)(w)
""",
        "f",
        [((4, 2), F32), ((8, 4), F32)],
    ),
    (
        "mlp",
        """
import jax
import jax.numpy as jnp

def f(x, w1, w2):
    h = jax.nn.relu(x @ w1)
    return jax.nn.log_softmax(h @ w2, axis=-1)
""",
        "f",
        [((16, 32), F32), ((32, 64), F32), ((64, 10), F32)],
    ),
    (
        "attention",
        """
import jax
import jax.numpy as jnp

def f(q, k, v):
    s = jnp.einsum("qd,kd->qk", q, k) / jnp.sqrt(q.shape[-1])
    return jax.nn.softmax(s, axis=-1) @ v
""",
        "f",
        [((8, 16), F32), ((12, 16), F32), ((12, 16), F32)],
    ),
    (
        "layernorm_bf16",
        """
import jax.numpy as jnp

def f(x, g):
    m = x.mean(-1, keepdims=True)
    v = ((x - m) ** 2).mean(-1, keepdims=True)
    return (x - m) / jnp.sqrt(v + 1e-5) * g
""",
        "f",
        [((4, 32), "bfloat16"), ((32,), "bfloat16")],
    ),
    (
        "conv",
        """
import jax
import jax.numpy as jnp

def f(x, w):
    y = jax.lax.conv_general_dilated(x, w, (1, 1), "SAME")
    return jnp.maximum(y, 0.0).sum(axis=(2, 3))
""",
        "f",
        [((2, 3, 8, 8), F32), ((4, 3, 3, 3), F32)],
    ),
    (
        "sort_cumsum",
        """
import jax.numpy as jnp

def f(x):
    return jnp.cumsum(jnp.sort(x, axis=0), axis=1) + jnp.argmax(x, axis=0)
""",
        "f",
        [((6, 5), F32)],
    ),
    (
        "while_int",
        """
import jax.numpy as jnp
from jax import lax

def f(n):
    return lax.while_loop(lambda c: c[0] < n, lambda c: (c[0] + 1, c[1] * 2), (0, 1))
""",
        "f",
        [((), "int32")],
    ),
]

_UNARY = ["jnp.sin", "jnp.exp", "jnp.tanh", "jnp.abs", "jnp.sqrt", "jnp.log1p", "jax.nn.gelu"]
_TEMPLATES = {
    "chain": "def f(x):\n    return {u}({v}(x) * 2.0 + 1.0)\n",
    "reduce": "def f(x):\n    return {u}(x).sum(axis=-1) + {v}(x).max()\n",
    "matmul": "def f(x):\n    return {u}(x @ x.T) + {v}(x).mean()\n",
    "loop": (
        "def f(x):\n"
        "    return jax.lax.fori_loop(0, 3, lambda i, c: {u}(c) + {v}(c) * 0.1, x)\n"
    ),
}
_SHAPES = [(4,), (3, 5), (16, 16), (2, 3, 4)]


def generated(n: int = 90) -> list[tuple[str, str, str, list]]:
    """``n`` simple programs: templates x pairs of unary ops x shapes x dtypes."""
    out = []
    i = 0
    while len(out) < n:
        kind = list(_TEMPLATES)[i % len(_TEMPLATES)]
        u = _UNARY[i % len(_UNARY)]
        v = _UNARY[(i // len(_UNARY) + 3) % len(_UNARY)]
        shape = _SHAPES[(i // 3) % len(_SHAPES)]
        if kind == "matmul" and len(shape) != 2:
            shape = (shape[0], 6)
        dtype = "float32" if i % 5 else "bfloat16"
        body = _TEMPLATES[kind].format(u=u, v=v)
        out.append((f"gen{i}_{kind}", f"import jax\nimport jax.numpy as jnp\n\n{body}", "f",
                    [(shape, dtype)]))
        i += 1
    return out


def from_grammar(n: int) -> list[tuple[str, str, str, list]]:
    """``n`` programs drawn from the grammar (seed 99)."""
    from fuzz.campaign import sampling
    from grammar import programs as grammar_programs

    strategy = grammar_programs()
    drawn = (sampling.draw(strategy, 99, i)[0] for i in range(n))
    return [(f"grammar{i}", p.source, p.entry, p.args) for i, p in enumerate(drawn)]


def programs(n_generated: int, n_grammar: int = 0) -> list[tuple[str, str, str, list]]:
    return HANDWRITTEN + generated(n_generated) + from_grammar(n_grammar)


# -- direct JAX baselines -------------------------------------------------------------------


def _load(source, entry, args):
    import jax
    import jax.numpy as jnp

    ns: dict = {"__name__": "jaxsmith_program"}
    exec(compile(source, "<jaxsmith>", "exec"), ns)
    avals = [jax.ShapeDtypeStruct(tuple(s), jnp.dtype(d)) for s, d in args]
    return ns[entry], avals


def _grad_fn(f, avals, out_leaves):
    import jax
    import jax.numpy as jnp

    argnums = tuple(i for i, a in enumerate(avals) if jnp.issubdtype(a.dtype, jnp.floating))
    keep = [jnp.issubdtype(o.dtype, jnp.floating) for o in out_leaves]
    if not argnums or not any(keep):
        return None

    def summed(*a):
        leaves = jax.tree_util.tree_leaves(f(*a))
        return sum(jnp.sum(x).astype(jnp.float32) for x, k in zip(leaves, keep, strict=True) if k)

    return jax.grad(summed, argnums=argnums)


def _texts(out: dict, name: str, lowered) -> None:
    """The texts and cost of one lowering, as the extractor records them."""
    out[name + "stablehlo"] = lowered.as_text()
    out[name + "hlo"] = lowered.as_text(dialect="hlo")
    compiled = lowered.compile()
    out[name + "hlo_optimized"] = compiled.as_text()
    out[name + "cost"] = compiled.cost_analysis()


def direct_literal(source, entry, args):
    """The stages as written naively: make_jaxpr, jit().lower(), eval_shape."""
    import jax

    f, avals = _load(source, entry, args)
    out = {}
    for name, fn in (("", f), ("grad_", None)):
        if name:
            leaves = jax.tree_util.tree_leaves(jax.eval_shape(f, *avals))
            fn = _grad_fn(f, avals, leaves)
            if fn is None:
                break
        out[name + "jaxpr"] = str(jax.make_jaxpr(fn)(*avals))
        lowered = jax.jit(fn).lower(*avals)
        _texts(out, name, lowered)
    return out


def direct_same(source, entry, args):
    """The calls extract_in_process makes, without cleaning, hashing or bookkeeping."""
    import jax

    f, avals = _load(source, entry, args)
    out = {}
    leaves = None
    for name, fn in (("", f), ("grad_", None)):
        if name:
            fn = _grad_fn(f, avals, leaves)
            if fn is None:
                break
        traced = jax.jit(fn).trace(*avals)
        out[name + "jaxpr"] = str(traced.jaxpr)
        if leaves is None:
            leaves = jax.tree_util.tree_leaves(traced.out_info)
        lowered = traced.lower()
        _texts(out, name, lowered)
    return out


# -- modes ----------------------------------------------------------------------------------


def bench_overhead(progs, reps: int) -> None:
    from extract.core import extract_in_process

    runners = {
        "extract": lambda p: extract_in_process(p[1], p[2], p[3]),
        "literal": lambda p: direct_literal(p[1], p[2], p[3]),
        "same": lambda p: direct_same(p[1], p[2], p[3]),
    }
    for p in progs:  # warm-up: first-use costs of every primitive and lowering rule
        for run in runners.values():
            run(p)
    times = {k: {p[0]: [] for p in progs} for k in runners}
    stages: dict[str, list[float]] = {}
    for rep in range(reps):
        order = list(runners)[rep % 3 :] + list(runners)[: rep % 3]
        for p in progs:
            for k in order:
                t0 = time.perf_counter()
                rec = runners[k](p)
                times[k][p[0]].append(time.perf_counter() - t0)
                if k == "extract":
                    assert rec["status"] == "ok", (p[0], rec.get("failure"))
                    for s, v in rec["timings"].items():
                        stages.setdefault(s, []).append(v)
    med = {k: {n: statistics.median(v) for n, v in d.items()} for k, d in times.items()}
    total = {k: sum(d.values()) for k, d in med.items()}
    print(f"{len(progs)} programs x {reps} reps (medians)")
    print("per-stage median (ms):")
    for s, v in stages.items():
        print(f"  {s:13s} {1e3 * statistics.median(v):8.2f}")
    for k in runners:
        print(f"total of per-program medians, {k:8s}: {total[k]:.3f} s")
    for base in ("literal", "same"):
        ratios = [med["extract"][n] / med[base][n] for n in med[base]]
        print(
            f"overhead extract/{base}: sum ratio {total['extract'] / total[base]:.3f}, "
            f"median per-program ratio {statistics.median(ratios):.3f}"
        )


def _dump_compiles(progs, out_path: str) -> None:
    """Child of --opt-level: compile every program, dump its artifacts, outputs and time."""
    from extract.core import extract_in_process

    for p in progs[:3]:  # warm-up
        extract_in_process(p[1], p[2], p[3], grad=False)
    res = {}
    for name, source, entry, args in progs:
        times = []
        for _ in range(int(os.environ.get("JAXSMITH_BENCH_REPS", "3"))):
            rec = extract_in_process(source, entry, args, oracles=())
            times.append(rec["timings"].get("compile", 0.0)
                         + rec["timings"].get("grad_compile", 0.0))
        res[name] = {k: rec.get(k) for k in ARTIFACTS + VALUES}
        res[name]["compile_s"] = statistics.median(times)
    Path(out_path).write_text(json.dumps(res))


ARTIFACTS = ("jaxpr", "stablehlo", "hlo", "hlo_optimized", "cost", "grad_jaxpr",
             "grad_stablehlo", "grad_hlo", "grad_hlo_optimized", "grad_cost")
VALUES = ("outputs", "grad_outputs")


def bench_opt_level(progs, n_generated: int, n_grammar: int, flag: str) -> None:
    """Every artifact, the outputs and the compile time with XLA flag ``flag`` and without."""
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for label, flags in (("default", ""), ("flag", flag)):
            out = os.path.join(tmp, f"{label}.json")
            env = dict(os.environ, XLA_FLAGS=flags)
            cmd = [sys.executable, __file__, "--_dump", out, "--generated", str(n_generated),
                   "--grammar", str(n_grammar)]
            subprocess.run(cmd, env=env, check=True)
            results[label] = json.loads(Path(out).read_text())
    a, b = results["default"], results["flag"]
    print(f"{flag}: {len(a)} programs (forward + backward compile per program)")
    for key in ARTIFACTS + VALUES:
        differ = [n for n in a if a[n][key] != b[n][key]]
        print(f"  identical {key}: {len(a) - len(differ)}/{len(a)}"
              + "".join(f"; differs: {n}" for n in differ[:3]))
    ta = [a[n]["compile_s"] for n in a]
    tb = [b[n]["compile_s"] for n in a]
    print(f"compile median default {1e3 * statistics.median(ta):.1f} ms, "
          f"with the flag {1e3 * statistics.median(tb):.1f} ms; "
          f"sum {sum(ta):.2f} s vs {sum(tb):.2f} s")


def _cache_child(progs, cache_dir: str, out_path: str) -> None:
    from extract.core import extract_in_process

    times, texts = {}, {}
    for name, source, entry, args in progs:
        rec = extract_in_process(source, entry, args, cache_dir=cache_dir)
        times[name] = rec["timings"]["compile"] + rec["timings"].get("grad_compile", 0.0)
        texts[name] = [rec.get(k) for k in ("hlo_optimized", "grad_hlo_optimized", "cost")]
    Path(out_path).write_text(json.dumps({"times": times, "texts": texts}))


def bench_cache(progs, n_generated: int) -> None:
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        cache = os.path.join(tmp, "cache")
        for label in ("no cache", "cold cache", "warm cache"):
            out = os.path.join(tmp, "t.json")
            cmd = [sys.executable, __file__, "--_cache_child", out, "--generated",
                   str(n_generated)]
            if label != "no cache":
                cmd += ["--cache-dir", cache]
            subprocess.run(cmd, check=True)
            runs.append((label, json.loads(Path(out).read_text())))
    same = all(r["texts"] == runs[0][1]["texts"] for _, r in runs)
    print(f"hlo_optimized and cost identical with and without the cache: {same}")
    for label, r in runs:
        t = r["times"]
        med = 1e3 * statistics.median(t.values())
        print(f"{label:10s}: compile (fwd+grad) median {med:.1f} ms, "
              f"sum {sum(t.values()):.2f} s over {len(t)} programs (fresh process each)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--generated", type=int, default=30, help="generated programs to add")
    ap.add_argument("--grammar", type=int, default=0, help="programs from the grammar to add")
    ap.add_argument("--opt-level", action="store_true",
                    help="compare every artifact with --flag set and without")
    ap.add_argument("--flag", default="--xla_backend_optimization_level=0",
                    help="the XLA flag --opt-level checks")
    ap.add_argument("--cache", action="store_true")
    ap.add_argument("--cache-dir")
    ap.add_argument("--_dump", help=argparse.SUPPRESS)
    ap.add_argument("--_cache_child", help=argparse.SUPPRESS)
    ns = ap.parse_args()
    progs = programs(ns.generated, ns.grammar)
    if ns._dump:
        _dump_compiles(progs, ns._dump)
    elif ns._cache_child:
        _cache_child(progs, ns.cache_dir, ns._cache_child)
    elif ns.opt_level:
        bench_opt_level(progs, ns.generated, ns.grammar, ns.flag)
    elif ns.cache:
        bench_cache(progs, ns.generated)
    else:
        bench_overhead(progs, ns.reps)


if __name__ == "__main__":
    main()
