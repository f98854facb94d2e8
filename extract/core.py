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
* ``export``  only with ``polymorphic_shapes``: ``jax.export`` over those symbolic shapes ->
  ``exported_stablehlo`` (``extract.symbolic``).
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
import re
from collections.abc import Callable, Iterable, Sequence
from time import perf_counter

import jax
import jax.numpy as jnp
import numpy as np

from .args import check_polymorphic_shapes, is_flat, leaves_of, normalize_args, unflatten_args
from .backends import Backend, load
from .clean import clean_hlo, clean_jaxpr, clean_mlir, ir_hash
from .failures import classify
from .inputs import RECIPE, make_inputs
from .levels import COMPILED, LEVELS, check_levels
from .oracle_context import runner
from .oracles import (
    ORACLES,
    Context,
    Violation,
    backend_oracle,
    check_oracles,
    run_oracle,
    sensitive_outputs,
)
from .passes import fired
from .symbolic import export
from .values import is_float, summarize

__all__ = ["extract_in_process", "set_cache_dir", "versions"]

NO_DERIVATIVE = re.compile(r"\bpallas_call\[")
"""A primitive in the forward jaxpr that JAX cannot differentiate: the gradient is skipped."""


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


def _on_leaves(f: Callable, tree: tuple, entry: str) -> Callable:
    """``f`` taking the leaves of its pytree arguments ``tree`` one by one: what ``jax.jit``
    does to it anyway, so the IR is the same, and every oracle sees arrays only."""

    def on_leaves(*leaves):
        return f(*unflatten_args(tree, leaves))

    on_leaves.__name__ = on_leaves.__qualname__ = entry  # the IR's module is jit_<entry>
    return on_leaves


_PARTITIONS = re.compile(r"mhlo\.num_partitions = (\d+)")
_MESH = re.compile(r"sdy\.mesh @[\w.$-]+ = <\[([^\]]*)\]>")
_MESH_AXIS = re.compile(r'"([^"]+)"=(\d+)')


def _devices(stablehlo: str) -> tuple[int, dict[str, int] | None]:
    """The devices a lowered module runs on, and its mesh (axis -> size) if it has one."""
    partitions = _PARTITIONS.search(stablehlo)
    mesh = _MESH.search(stablehlo)
    axes = {name: int(size) for name, size in _MESH_AXIS.findall(mesh.group(1))} if mesh else {}
    return (int(partitions.group(1)) if partitions else 1), (axes or None)


def _jaxpr_text(traced) -> str:
    # str(jaxpr) adds ANSI colours when stdout is a terminal; the artifact never has them.
    return clean_jaxpr(traced.jaxpr.pretty_print(use_color=False))


def _lower_texts(lowered, levels: Sequence[str], result: dict, prefix: str) -> str:
    """Put the cleaned StableHLO (and the HLO, when ``levels`` has it) into ``result`` under
    ``prefix``; return the raw StableHLO text (the interpreter's input)."""
    raw = lowered.as_text()
    result[f"{prefix}stablehlo"] = clean_mlir(raw)
    if "hlo" in levels:
        result[f"{prefix}hlo"] = clean_hlo(lowered.as_text(dialect="hlo"))
    return raw


def _run(executable, inputs) -> list[np.ndarray]:
    return [np.asarray(x) for x in jax.tree_util.tree_leaves(executable(*inputs))]


def extract_in_process(
    source: str,
    entry: str,
    args: Sequence,
    *,
    grad: bool = True,
    skip_hashes: Iterable[str] | None = None,
    cache_dir: str | None = None,
    on_stage: Callable[[str], None] | None = None,
    seed: int = 0,
    execute: bool = True,
    oracles: Sequence[str] | None = ORACLES,
    polymorphic_shapes: Sequence[str] | None = None,
    levels: Sequence[str] | None = LEVELS,
    pass_dump: str | None = None,
    backends: Sequence[Backend | str] = (),
    culprit_search: bool = True,
    recipe: str = RECIPE,
) -> dict:
    """Extract every IR level of ``entry`` in ``source`` for abstract ``args``, run it on
    ``make_inputs(args, seed, recipe)`` and check it with ``oracles``.

    ``args`` is a list of ``(shape, dtype name)`` pairs, or of tuples and dicts of them
    (``extract.args``: the entry is called on that pytree); invalid specs, seeds and oracle
    names raise ``ValueError`` (a caller bug), everything raised by the program itself
    becomes a ``failed`` record. ``skip_hashes``: StableHLO hashes already seen; a match
    returns ``status="duplicate"`` before compiling. ``cache_dir`` enables JAX's persistent
    compilation cache there. ``on_stage(stage)`` is called as each stage starts (the worker
    pool uses it to report which stage a timed-out task was in). ``execute=False`` compiles
    only (no inputs, outputs or oracles). ``oracles``: names from ``ORACLES``, each run on
    this program (never sampled); ``None`` or ``[]`` runs none. ``polymorphic_shapes``: one
    ``jax.export`` shape per argument leaf (``"b, 4"``), of which ``args`` is an instance;
    the program is then also exported over them. ``levels`` (``extract.levels``): the IR
    levels to extract, forward and backward; without ``hlo_optimized`` nothing is compiled,
    so nothing runs (``execute`` is then ignored). ``pass_dump``: the folder this process's
    XLA dumps changed modules into (``extract.passes``); the passes each compile fired go
    into ``passes`` and ``grad_passes``. ``backends`` (``extract.backends``: loaded, or
    specs to load): each runs every executed program and is judged against XLA, its verdict
    under ``backend:<name>`` in ``oracles``. ``culprit_search=False``: a value discrepancy
    is reported without searching for its culprit pass.
    """
    levels = check_levels(levels)
    execute = execute and COMPILED in levels
    tree = normalize_args(args)
    specs = leaves_of(tree)  # normalized once: the tree is not checked again
    shapes = (None if polymorphic_shapes is None
              else check_polymorphic_shapes(specs, polymorphic_shapes))
    wanted = check_oracles(oracles if execute else ())
    backends = tuple(b if isinstance(b, Backend) else load(b) for b in backends) \
        if execute else ()
    inputs = make_inputs(specs, seed, recipe) if execute else None
    set_cache_dir(cache_dir)
    timings: dict[str, float] = {}
    result: dict = {
        "status": "ok",
        "versions": dict(versions()),
        "backend": jax.default_backend(),
        "timings": timings,
        "levels": list(levels),
    }
    if execute:
        result["inputs"] = {"seed": int(seed), "recipe": recipe}
        result["oracles"] = {name: "not run" if name in wanted else "off" for name in ORACLES}
        result["oracles"].update({b.stage: "not run" for b in backends})
    stage = "trace"
    t0 = perf_counter()

    def start(name: str) -> float:
        nonlocal stage
        stage = name
        if on_stage is not None:
            on_stage(name)
        return perf_counter()

    order: dict[str, list[str]] = {}  # by prefix: the passes fired, latest first

    def compile_into(lowered, prefix: str):
        """Compile ``lowered``; its optimized HLO and cost go into ``result`` under
        ``prefix``."""
        nonlocal t0
        if pass_dump is not None:
            fired(pass_dump)  # what earlier compiles (oracles, warm-up) left
        t0 = start(f"{prefix}compile")
        compiled = lowered.compile()
        result[f"{prefix}hlo_optimized"] = clean_hlo(compiled.as_text() or "")
        result[f"{prefix}cost"] = _cost(compiled)
        timings[f"{prefix}compile"] = perf_counter() - t0
        if pass_dump is not None:
            order[prefix] = fired(pass_dump)
            result[f"{prefix}passes"] = sorted(order[prefix])
        return compiled

    def check(names: Sequence[str], ctx: Context) -> None:
        """Run the wanted oracles among ``names``; an oracle that meets a known JAX
        limitation (vmap over a primitive without a batching rule, say) is skipped."""
        for name in names:
            if name in wanted:
                judge(name, lambda name=name: run_oracle(name, ctx))

    def judge(name: str, oracle: Callable[[], str]) -> None:
        nonlocal t0
        t0 = start(name)  # a failing oracle's time is taken from here
        try:
            verdict = oracle()
        except Violation:
            raise
        except Exception as exc:
            known = None if name not in ORACLES else classify(name, exc)["known"]
            if known is None:
                raise
            verdict = f"skipped: known JAX limitation {known}"
        result["oracles"][name] = verdict
        timings[name] = perf_counter() - t0

    try:
        t0 = start("trace")
        namespace: dict = {"__name__": "jaxsmith_program"}
        exec(compile(source, "<jaxsmith>", "exec"), namespace)
        f = namespace[entry]
        if not is_flat(tree):
            f = _on_leaves(f, tree, entry)
        avals = [jax.ShapeDtypeStruct(shape, jnp.dtype(dtype)) for shape, dtype in specs]
        traced = jax.jit(f).trace(*avals)
        jaxpr = _jaxpr_text(traced)
        if "jaxpr" in levels:
            result["jaxpr"] = jaxpr
        out_leaves = jax.tree_util.tree_leaves(traced.out_info)
        timings["trace"] = perf_counter() - t0

        t0 = start("lower")
        lowered = traced.lower()
        raw_stablehlo = _lower_texts(lowered, levels, result, "")
        result["devices"], result["mesh"] = _devices(raw_stablehlo)
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

        if COMPILED in levels:
            compiled = compile_into(lowered, "")
        del traced

        exported = None
        if shapes is not None:
            t0 = start("export")
            exported = export(f, specs, shapes)
            result["exported_stablehlo"] = clean_mlir(exported.mlir_module())
            timings["export"] = perf_counter() - t0

        ctx = None
        if execute:
            t0 = start("run")
            outputs = _run(compiled, inputs)
            result["outputs"] = [summarize(x) for x in outputs]
            timings["run"] = perf_counter() - t0
            ctx = Context(f, functools.partial(_run, compiled), specs, int(seed), inputs,
                          outputs, raw_stablehlo, runner(lowered), source=source,
                          exported=exported, polymorphic_shapes=shapes or (),
                          namespace=namespace, passes=tuple(order.get("", ())),
                          on_stage=start, culprit_search=culprit_search,
                          recipe=recipe)
            result["sensitive"] = sorted(sensitive_outputs(ctx, inputs, outputs))
            check(("unsimplified", "interpreter", "vmap", "jit_eager", "symbolic", "pallas"), ctx)
            for b in backends:
                judge(b.stage, lambda b=b: backend_oracle(b, ctx))

        argnums = tuple(i for i, (_, dtype) in enumerate(specs) if is_float(jnp.dtype(dtype)))
        float_outputs = [is_float(leaf.dtype) for leaf in out_leaves]
        if not grad:
            result["grad_skipped"] = "disabled"
        elif not argnums:
            result["grad_skipped"] = "no floating parameter"
        elif not any(float_outputs):
            result["grad_skipped"] = "no floating output"
        elif NO_DERIVATIVE.search(jaxpr):
            # jax 0.10.2 and 0.12.0.1 fail inside JAX (an empty AssertionError, or "Linearization
            # failed"): tests/test_oracles.py::test_pallas_kernels_are_checked_against_jnp_blocks
            result["grad_skipped"] = "a Pallas kernel: pallas_call in interpret mode has no " \
                                     "derivative rule"
        else:
            result["grad_skipped"] = None
            g = _grad_function(f, entry, argnums, float_outputs)

            t0 = start("grad_trace")
            traced = jax.jit(g).trace(*avals)
            if "jaxpr" in levels:
                result["grad_jaxpr"] = _jaxpr_text(traced)
            timings["grad_trace"] = perf_counter() - t0

            t0 = start("grad_lower")
            lowered = traced.lower()
            _lower_texts(lowered, levels, result, "grad_")
            result["grad_stablehlo_hash"] = ir_hash(result["grad_stablehlo"])
            timings["grad_lower"] = perf_counter() - t0

            if COMPILED in levels:
                grad_compiled = compile_into(lowered, "grad_")

            if execute:
                t0 = start("grad_run")
                ctx.grad = _run(grad_compiled, inputs)
                result["grad_outputs"] = [summarize(x) for x in ctx.grad]
                timings["grad_run"] = perf_counter() - t0
        if ctx is not None:
            check(("autodiff",), ctx)
    except Violation as v:
        timings[stage] = perf_counter() - t0
        result["status"] = "failed"
        result["oracles"][stage] = "failed"
        result["failure"] = v.failure()
    except (Exception, SystemExit) as exc:  # the program is untrusted: record, don't raise
        timings[stage] = perf_counter() - t0
        result["status"] = "failed"
        if stage in result.get("oracles", ()):
            result["oracles"][stage] = "failed"
        result["failure"] = classify(stage, exc)
    return result
