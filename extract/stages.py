"""The stages of extraction, each a function of one program's state (``Program``) that adds
to its record; ``extract.core`` is the driver that runs them in order, names and times them."""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import jax
import jax.numpy as jnp
import numpy as np

from .args import is_flat, unflatten_args
from .clean import clean_hlo, clean_jaxpr, clean_mlir, ir_hash
from .oracle_context import Context, runner
from .passes import fired
from .symbolic import export
from .values import summarize

NO_DERIVATIVE = re.compile(r"\bpallas_call\[")
"""A primitive in the forward jaxpr that JAX cannot differentiate: the gradient is skipped."""


def cost(compiled) -> dict[str, float]:
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


def grad_function(f: Callable, entry: str, argnums: tuple[int, ...], float_outputs: list[bool]):
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


def on_leaves(f: Callable, tree: tuple, entry: str) -> Callable:
    """``f`` taking the leaves of its pytree arguments ``tree`` one by one: what ``jax.jit``
    does to it anyway, so the IR is the same, and every oracle sees arrays only."""

    def on_leaves(*leaves):
        return f(*unflatten_args(tree, leaves))

    on_leaves.__name__ = on_leaves.__qualname__ = entry  # the IR's module is jit_<entry>
    return on_leaves


_PARTITIONS = re.compile(r"mhlo\.num_partitions = (\d+)")
_MESH = re.compile(r"sdy\.mesh @[\w.$-]+ = <\[([^\]]*)\]>")
_MESH_AXIS = re.compile(r'"([^"]+)"=(\d+)')


def devices(stablehlo: str) -> tuple[int, dict[str, int] | None]:
    """The devices a lowered module runs on, and its mesh (axis -> size) if it has one."""
    partitions = _PARTITIONS.search(stablehlo)
    mesh = _MESH.search(stablehlo)
    axes = {name: int(size) for name, size in _MESH_AXIS.findall(mesh.group(1))} if mesh else {}
    return (int(partitions.group(1)) if partitions else 1), (axes or None)


def jaxpr_text(traced) -> str:
    # str(jaxpr) adds ANSI colours when stdout is a terminal; the artifact never has them.
    return clean_jaxpr(traced.jaxpr.pretty_print(use_color=False))


def lower_texts(lowered, levels: Sequence[str], result: dict, prefix: str) -> str:
    """Put the cleaned StableHLO (and the HLO, when ``levels`` has it) into ``result`` under
    ``prefix``; return the raw StableHLO text (the interpreter's input)."""
    raw = lowered.as_text()
    result[f"{prefix}stablehlo"] = clean_mlir(raw)
    if "hlo" in levels:
        result[f"{prefix}hlo"] = clean_hlo(lowered.as_text(dialect="hlo"))
    return raw


def run_leaves(executable, inputs) -> list[np.ndarray]:
    return [np.asarray(x) for x in jax.tree_util.tree_leaves(executable(*inputs))]


@dataclass
class Program:
    """One program on its way through the stages: what was asked, then what each stage adds.
    ``result`` is the record being built."""

    source: str
    entry: str
    tree: tuple
    specs: list
    shapes: tuple | None
    levels: tuple[str, ...]
    inputs: list | None
    seed: int
    recipe: str
    pass_dump: str | None
    culprit_search: bool
    result: dict
    namespace: dict = field(default_factory=lambda: {"__name__": "jaxsmith_program"})
    f: Callable | None = None
    avals: list = field(default_factory=list)
    traced: object = None
    jaxpr: str = ""
    out_leaves: list = field(default_factory=list)
    lowered: object = None
    raw_stablehlo: str = ""
    compiled: object = None
    exported: object = None
    ctx: Context | None = None
    fired: dict[str, list[str]] = field(default_factory=dict)  # by prefix, latest first


def trace(p: Program) -> None:
    """Exec the source and trace its entry on abstract arguments."""
    exec(compile(p.source, "<jaxsmith>", "exec"), p.namespace)
    p.f = p.namespace[p.entry]
    if not is_flat(p.tree):
        p.f = on_leaves(p.f, p.tree, p.entry)
    p.avals = [jax.ShapeDtypeStruct(shape, jnp.dtype(dtype)) for shape, dtype in p.specs]
    p.traced = jax.jit(p.f).trace(*p.avals)
    p.jaxpr = jaxpr_text(p.traced)
    if "jaxpr" in p.levels:
        p.result["jaxpr"] = p.jaxpr
    p.out_leaves = jax.tree_util.tree_leaves(p.traced.out_info)


def lower(p: Program) -> None:
    p.lowered = p.traced.lower()
    p.raw_stablehlo = lower_texts(p.lowered, p.levels, p.result, "")
    p.result["devices"], p.result["mesh"] = devices(p.raw_stablehlo)
    p.result["stablehlo_hash"] = ir_hash(p.result["stablehlo"])


def compile_lowered(p: Program, lowered, prefix: str):
    """Compile ``lowered``; its optimized HLO, cost and the passes it fired go into the
    record under ``prefix``."""
    compiled = lowered.compile()
    p.result[f"{prefix}hlo_optimized"] = clean_hlo(compiled.as_text() or "")
    p.result[f"{prefix}cost"] = cost(compiled)
    if p.pass_dump is not None:
        p.fired[prefix] = fired(p.pass_dump)
        p.result[f"{prefix}passes"] = sorted(p.fired[prefix])
    return compiled


def export_program(p: Program) -> None:
    p.exported = export(p.f, p.specs, p.shapes)
    p.result["exported_stablehlo"] = clean_mlir(p.exported.mlir_module())


def run_program(p: Program, on_stage: Callable[[str], object]) -> None:
    """Run the compiled program on the recipe's inputs; the oracles' context is built here."""
    outputs = run_leaves(p.compiled, p.inputs)
    p.result["outputs"] = [summarize(x) for x in outputs]
    p.ctx = Context(p.f, functools.partial(run_leaves, p.compiled), p.specs, p.seed, p.inputs,
                    outputs, p.raw_stablehlo, runner(p.lowered), source=p.source,
                    exported=p.exported, polymorphic_shapes=p.shapes or (),
                    namespace=p.namespace, passes=tuple(p.fired.get("", ())),
                    on_stage=on_stage, culprit_search=p.culprit_search, recipe=p.recipe,
                    verdicts=p.result["oracles"])


def grad_skipped(p: Program, grad: bool, argnums: tuple[int, ...],
                  float_outputs: list[bool]) -> str | None:
    """Why the gradient is not extracted, or ``None``."""
    if not grad:
        return "disabled"
    if not argnums:
        return "no floating parameter"
    if not any(float_outputs):
        return "no floating output"
    if NO_DERIVATIVE.search(p.jaxpr):
        # jax 0.10.2 and 0.12.0.1 fail inside JAX (an empty AssertionError, or "Linearization
        # failed"): tests/test_oracles.py::test_pallas_kernels_are_checked_against_jnp_blocks
        return "a Pallas kernel: pallas_call in interpret mode has no derivative rule"
    return None


def grad_trace(p: Program, g: Callable):
    traced = jax.jit(g).trace(*p.avals)
    if "jaxpr" in p.levels:
        p.result["grad_jaxpr"] = jaxpr_text(traced)
    return traced


def grad_lower(p: Program, traced):
    lowered = traced.lower()
    lower_texts(lowered, p.levels, p.result, "grad_")
    p.result["grad_stablehlo_hash"] = ir_hash(p.result["grad_stablehlo"])
    return lowered


def grad_execute(p: Program, compiled) -> None:
    p.ctx.grad = run_leaves(compiled, p.inputs)
    p.result["grad_outputs"] = [summarize(x) for x in p.ctx.grad]
