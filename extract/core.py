"""In-process extraction of every IR level of one JAX program, forward and backward.

Stages, each timed with ``perf_counter`` into ``timings``:

* ``trace``   exec the source, ``jax.jit(f).trace(*args)`` -> ``jaxpr``. This is exactly what
  ``jax.make_jaxpr`` does internally (the text is identical, printed without terminal
  colours); keeping the ``Traced`` object
  lets ``lower`` reuse it instead of tracing a second time. Errors while executing the source
  or looking up ``entry`` are reported in this stage too (there is no separate load stage).
* ``lower``   ``traced.lower()`` -> ``stablehlo``, ``hlo``, ``stablehlo_hash``. If the hash is
  in ``skip_hashes`` the result is ``{"status": "duplicate", ...}`` and nothing is compiled.
* ``compile`` ``lowered.compile()`` -> ``hlo_optimized``, ``cost``.
* ``grad_trace`` / ``grad_lower`` / ``grad_compile``: the same for the gradient of the sum of
  all floating outputs with respect to every floating argument, -> ``grad_jaxpr``,
  ``grad_stablehlo``, ``grad_hlo``, ``grad_stablehlo_hash``, ``grad_hlo_optimized``,
  ``grad_cost``.

The floating outputs are known from the forward trace's ``out_info``, so no ``eval_shape`` is
needed. Any exception in a stage ends extraction with ``status="failed"`` and a ``failure``
record (see ``failures.classify``); fields computed before the failure are kept.
"""

from __future__ import annotations

import functools
import importlib.metadata
import math
from collections.abc import Callable, Iterable, Sequence
from time import perf_counter

import jax
import jax.numpy as jnp

from .args import normalize_args
from .clean import clean_hlo, clean_jaxpr, clean_mlir, ir_hash
from .failures import classify

__all__ = ["extract_in_process", "set_cache_dir", "versions"]

@functools.cache
def versions() -> dict[str, str]:
    """Installed versions of jax, jaxlib and jaxsmith ("unknown" when not installed)."""
    out = {}
    for dist in ("jax", "jaxlib", "jaxsmith"):
        try:
            out[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            out[dist] = "unknown"
    return out


def set_cache_dir(cache_dir: str | None) -> None:
    """Point JAX's persistent compilation cache at ``cache_dir``, caching every entry.

    ``None`` leaves JAX's configuration untouched.
    """
    if cache_dir is None:
        return
    cache_dir = str(cache_dir)
    if jax.config.jax_compilation_cache_dir == cache_dir:
        return
    jax.config.update("jax_compilation_cache_dir", cache_dir)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    try:  # the cache object is created once; make it pick up the new directory
        from jax._src import compilation_cache

        compilation_cache.reset_cache()
    except (ImportError, AttributeError):  # pragma: no cover - private API moved
        pass


def _cost(compiled) -> dict[str, float]:
    """Aggregate numeric cost-analysis entries ("bytes accessed", "flops", "transcendentals",
    and whatever else the backend reports in aggregate), sorted, as finite floats."""
    raw = compiled.cost_analysis()
    if isinstance(raw, (list, tuple)):
        raw = raw[0] if raw else {}
    out = {}
    for key in sorted(raw or {}):
        if "{" in key:  # per-operand breakdowns such as "bytes accessed0{}"
            continue
        try:
            value = float(raw[key])
        except (TypeError, ValueError):
            continue
        if math.isfinite(value):
            out[key] = value
    return out


def _is_float(dtype) -> bool:
    return jnp.issubdtype(dtype, jnp.floating)


def _grad_function(f: Callable, entry: str, argnums: tuple[int, ...], float_outputs: list[bool]):
    """``jax.grad`` of (sum of the floating outputs of ``f``, as float32)."""

    def summed(*args):
        leaves = jax.tree_util.tree_leaves(f(*args))
        total = None
        for leaf, keep in zip(leaves, float_outputs, strict=True):
            if keep:
                part = jnp.sum(leaf).astype(jnp.float32)
                total = part if total is None else total + part
        return total

    # The name shows up in the IR (module name jit_<name>): derive it from the entry only.
    summed.__name__ = summed.__qualname__ = f"{entry}_grad"
    return jax.grad(summed, argnums=argnums)


def _jaxpr_text(traced) -> str:
    # str(jaxpr) adds ANSI colours when stdout is a terminal; the artifact never has them.
    return clean_jaxpr(traced.jaxpr.pretty_print(use_color=False))


def _lower_texts(lowered) -> tuple[str, str]:
    return clean_mlir(lowered.as_text()), clean_hlo(lowered.as_text(dialect="hlo"))


def extract_in_process(
    source: str,
    entry: str,
    args: Sequence,
    *,
    grad: bool = True,
    skip_hashes: Iterable[str] | None = None,
    cache_dir: str | None = None,
    on_stage: Callable[[str], None] | None = None,
) -> dict:
    """Extract every IR level of ``entry`` in ``source`` for abstract ``args``.

    ``args`` is a list of ``(shape, dtype name)`` pairs; invalid specs raise ``ValueError``
    (a caller bug), everything raised by the program itself becomes a ``failed`` record.
    ``skip_hashes``: StableHLO hashes already seen; a match returns ``status="duplicate"``
    before compiling. ``cache_dir`` enables JAX's persistent compilation cache there.
    ``on_stage(stage)`` is called as each stage starts (the worker pool uses it to report
    which stage a timed-out task was in).
    """
    specs = normalize_args(args)
    set_cache_dir(cache_dir)
    timings: dict[str, float] = {}
    result: dict = {
        "status": "ok",
        "versions": dict(versions()),
        "backend": jax.default_backend(),
        "timings": timings,
    }
    stage = "trace"

    def start(name: str) -> float:
        nonlocal stage
        stage = name
        if on_stage is not None:
            on_stage(name)
        return perf_counter()

    try:
        t0 = start("trace")
        namespace: dict = {"__name__": "jaxsmith_program"}
        exec(compile(source, "<jaxsmith>", "exec"), namespace)
        f = namespace[entry]
        avals = [jax.ShapeDtypeStruct(shape, jnp.dtype(dtype)) for shape, dtype in specs]
        traced = jax.jit(f).trace(*avals)
        result["jaxpr"] = _jaxpr_text(traced)
        out_leaves = jax.tree_util.tree_leaves(traced.out_info)
        timings["trace"] = perf_counter() - t0

        t0 = start("lower")
        lowered = traced.lower()
        result["stablehlo"], result["hlo"] = _lower_texts(lowered)
        result["stablehlo_hash"] = h = ir_hash(result["stablehlo"])
        timings["lower"] = perf_counter() - t0
        if skip_hashes is not None and h in skip_hashes:
            return {
                "status": "duplicate",
                "stablehlo_hash": h,
                "versions": result["versions"],
                "backend": result["backend"],
                "timings": timings,
            }

        t0 = start("compile")
        compiled = lowered.compile()
        result["hlo_optimized"] = clean_hlo(compiled.as_text() or "")
        result["cost"] = _cost(compiled)
        timings["compile"] = perf_counter() - t0
        del traced, lowered, compiled

        argnums = tuple(i for i, (_, dtype) in enumerate(specs) if _is_float(jnp.dtype(dtype)))
        float_outputs = [_is_float(leaf.dtype) for leaf in out_leaves]
        if not grad:
            result["grad_skipped"] = "disabled"
        elif not argnums:
            result["grad_skipped"] = "no floating parameter"
        elif not any(float_outputs):
            result["grad_skipped"] = "no floating output"
        else:
            result["grad_skipped"] = None
            g = _grad_function(f, entry, argnums, float_outputs)

            t0 = start("grad_trace")
            traced = jax.jit(g).trace(*avals)
            result["grad_jaxpr"] = _jaxpr_text(traced)
            timings["grad_trace"] = perf_counter() - t0

            t0 = start("grad_lower")
            lowered = traced.lower()
            result["grad_stablehlo"], result["grad_hlo"] = _lower_texts(lowered)
            result["grad_stablehlo_hash"] = ir_hash(result["grad_stablehlo"])
            timings["grad_lower"] = perf_counter() - t0

            t0 = start("grad_compile")
            compiled = lowered.compile()
            result["grad_hlo_optimized"] = clean_hlo(compiled.as_text() or "")
            result["grad_cost"] = _cost(compiled)
            timings["grad_compile"] = perf_counter() - t0
    except (Exception, SystemExit) as exc:  # the program is untrusted: record, don't raise
        timings[stage] = perf_counter() - t0
        result["status"] = "failed"
        result["failure"] = classify(stage, exc)
    return result
