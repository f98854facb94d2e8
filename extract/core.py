"""The extraction driver: every IR level of one JAX program, forward and backward, its run on
reproducible inputs and its oracles' verdicts, as one record.

It is a pipeline, modelled on JAX's own ``trace`` -> ``lower`` -> ``compile``: each stage is a
function of the program's state (``extract.stages.Program``) that adds to the record, and
the driver runs them in order, names the stage now running (``on_stage``, for the pool's
timeouts) and keeps each one's time in ``timings``:

* ``trace``   exec the source, ``jax.jit(f).trace(*args)`` -> ``jaxpr``, exactly what
  ``jax.make_jaxpr`` does; keeping the ``Traced`` object lets ``lower`` reuse it. Errors while
  executing the source or looking up ``entry`` are reported in this stage too.
* ``lower``   ``traced.lower()`` -> ``stablehlo``, ``hlo``, ``stablehlo_hash``. If the hash is
  in ``skip_hashes`` the result is ``{"status": "duplicate", ...}`` and nothing is compiled.
* ``compile`` ``lowered.compile()`` -> ``hlo_optimized``, ``cost``, ``passes``.
* ``export``  only with ``polymorphic_shapes``: ``jax.export`` over those symbolic shapes ->
  ``exported_stablehlo`` (``extract.symbolic``).
* ``run``     the executable on ``make_inputs`` -> ``outputs``; then the forward oracles
  (``FORWARD_ORACLES``) and the backends, walked as a list, each a stage named for itself.
* ``grad_trace`` / ``grad_lower`` / ``grad_compile`` / ``grad_run``: the same for the gradient
  of the sum of all floating outputs with respect to every floating argument; then
  ``autodiff``.

Any exception in a stage ends extraction with ``status="failed"`` and a ``failure`` record
(``failures.classify``) under the stage's name; fields computed before it are kept.
"""
from __future__ import annotations

import contextlib
import functools
import importlib.metadata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from time import perf_counter

import jax
import jax.numpy as jnp

from .args import check_polymorphic_shapes, leaves_of, needs_x64, normalize_args
from .backends import Backend, load
from .failures import classify
from .inputs import RECIPE, make_inputs
from .levels import COMPILED, LEVELS, check_levels
from .oracles import (
    ORACLES,
    Violation,
    backend_oracle,
    check_oracles,
    run_oracle,
)
from .passes import fired
from .stages import (
    Program,
    compile_lowered,
    export_program,
    grad_execute,
    grad_function,
    grad_lower,
    grad_skipped,
    grad_trace,
    lower,
    run_program,
    trace,
)
from .values import is_float
from .verdicts import sensitive_outputs

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


@dataclass
class _Clock:
    """The driver's clock: the stage now running, when it started, and every stage's time."""

    timings: dict[str, float]
    on_stage: Callable[[str], object] | None
    name: str = "trace"
    t0: float = field(default_factory=perf_counter)

    def enter(self, name: str) -> None:
        """Name the stage now running; an oracle names its own sub-stages (its culprit search)
        this way, on the clock of the stage it is part of."""
        self.name = name
        if self.on_stage is not None:
            self.on_stage(name)

    def run(self, name: str, stage: Callable, *args):
        """Run ``stage(*args)`` as stage ``name`` and keep its time; a stage that raises keeps
        its clock running, for the failure record."""
        self.enter(name)
        self.t0 = perf_counter()
        value = stage(*args)
        self.lap(name)
        return value

    def lap(self, name: str) -> None:
        self.timings[name] = perf_counter() - self.t0


FORWARD_ORACLES = ("interpreter", "unsimplified", "vmap", "jit_eager", "symbolic", "pallas")
"""The oracles judged on the forward program, in this order (the interpreter first: its
``pass`` clears ``unsimplified`` and ``jit_eager``, ``extract.oracles``); ``autodiff`` comes
after the gradient."""


def _judge(clock: _Clock, result: dict, name: str, oracle: Callable[[], str]) -> None:
    """Run one oracle as a stage; one that meets a known JAX limitation (vmap over a
    primitive without a batching rule, say) is skipped and says which."""
    try:
        verdict = clock.run(name, oracle)
    except Violation:
        raise
    except Exception as exc:
        known = None if name not in ORACLES else classify(name, exc)["known"]
        if known is None:
            raise
        verdict = f"skipped: known JAX limitation {known}"
        clock.lap(name)
    result["oracles"][name] = verdict


def _check(clock: _Clock, p: Program, names: Sequence[str], wanted: Sequence[str]) -> None:
    for name in names:
        if name in wanted:
            _judge(clock, p.result, name, functools.partial(run_oracle, name, p.ctx))


def _compile_stage(clock: _Clock, p: Program, lowered, prefix: str):
    if p.pass_dump is not None:
        fired(p.pass_dump)  # what earlier compiles (oracles, warm-up) left
    return clock.run(f"{prefix}compile", compile_lowered, p, lowered, prefix)


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
    set_cache_dir(cache_dir)
    result: dict = {
        "status": "ok",
        "versions": dict(versions()),
        "backend": jax.default_backend(),
        "timings": {},
        "levels": list(levels),
    }
    if execute:
        result["inputs"] = {"seed": int(seed), "recipe": recipe}
        result["oracles"] = {name: "not run" if name in wanted else "off" for name in ORACLES}
        result["oracles"].update({b.stage: "not run" for b in backends})
    p = Program(source, entry, tree, specs, shapes, levels,
             make_inputs(specs, seed, recipe) if execute else None, int(seed), recipe,
             pass_dump, culprit_search, result)
    clock = _Clock(result["timings"], on_stage)
    # a 64-bit argument: the program runs as its user runs it, under jax_enable_x64
    with jax.enable_x64(True) if needs_x64(specs) else contextlib.nullcontext():
        try:
            clock.run("trace", trace, p)
            clock.run("lower", lower, p)
            if skip_hashes is not None and result["stablehlo_hash"] in skip_hashes:
                return {key: result[key] for key in
                        ("stablehlo_hash", "versions", "backend", "timings")} | {
                            "status": "duplicate"}
            if COMPILED in levels:
                p.compiled = _compile_stage(clock, p, p.lowered, "")
            p.traced = None
            if shapes is not None:
                clock.run("export", export_program, p)
            if execute:
                clock.run("run", run_program, p, clock.enter)
                result["sensitive"] = sorted(sensitive_outputs(p.ctx, p.inputs, p.ctx.outputs))
                _check(clock, p, FORWARD_ORACLES, wanted)
                for b in backends:
                    _judge(clock, result, b.stage, functools.partial(backend_oracle, b, p.ctx))
            _gradient(clock, p, grad, execute)
            if p.ctx is not None:
                _check(clock, p, ("autodiff",), wanted)
        except Violation as v:
            clock.lap(clock.name)
            result["status"] = "failed"
            result["oracles"][clock.name] = "failed"
            result["failure"] = v.failure()
        except (Exception, SystemExit) as exc:  # the program is untrusted: record, don't raise
            clock.lap(clock.name)
            result["status"] = "failed"
            if clock.name in result.get("oracles", ()):
                result["oracles"][clock.name] = "failed"
            result["failure"] = classify(clock.name, exc)
    return result


def _gradient(clock: _Clock, p: Program, grad: bool, execute: bool) -> None:
    """The gradient's stages: trace, lower, compile and run the gradient of the sum of every
    floating output, or say in ``grad_skipped`` why not."""
    argnums = tuple(i for i, (_, dtype) in enumerate(p.specs) if is_float(jnp.dtype(dtype)))
    float_outputs = [is_float(leaf.dtype) for leaf in p.out_leaves]
    p.result["grad_skipped"] = skipped = grad_skipped(p, grad, argnums, float_outputs)
    if skipped is not None:
        return
    g = grad_function(p.f, p.entry, argnums, float_outputs)
    traced = clock.run("grad_trace", grad_trace, p, g)
    lowered = clock.run("grad_lower", grad_lower, p, traced)
    if COMPILED in p.levels:
        compiled = _compile_stage(clock, p, lowered, "grad_")
        if execute:
            clock.run("grad_run", grad_execute, p, compiled)
