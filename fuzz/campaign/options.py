"""What a fuzz run is told (:class:`Options`, as the CLI parsed it), what it keeps count of
(:class:`Tally`), and the defaults and time limits of both."""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from extract import ORACLES
from extract.levels import LEVELS
from extract.worker import DEFAULT_LIMITS, ResourceLimits
from fuzz.campaign.budget import Budget

__all__ = ["AFTER_RUN_S", "AFTER_RUN_SHARE", "DEFAULT_CORPUS", "DEFAULT_ORACLE_RATES", "DRAIN_S",
           "LARGE_SHAPES", "SPECIAL_SHARE", "X64", "Options", "Tally"]

DEFAULT_CORPUS = "jaxsmith-corpus"
DRAIN_S = 10.0
"""Seconds past a duration budget for the programs in flight and the reductions to end."""
AFTER_RUN_S, AFTER_RUN_SHARE = 45.0, 0.1
"""After a count budget's last program, reduction goes on for the larger of these: seconds,
and a share of the run's time (45 s, not the 60 s the issue allows: README's first command,
30 programs in about 35 s, then ends within 90 s)."""
# Share of programs each oracle checks by default: every one on every program it applies to,
# since cheap references (extract.screens) clear most programs without a compile of their own
# (bench/bench_fuzz.py --oracles; docs/benchmarks.md). symbolic runs on symbolic_shape
# programs only, pallas on programs with a Pallas kernel.
DEFAULT_ORACLE_RATES = {name: 1.0 for name in ("jit_eager", "autodiff", "vmap", "interpreter",
                                                "unsimplified", "symbolic", "pallas")}
X64 = 20
"""One program in this many is a 64-bit one by default (``grammar.programs(x64=)``, under
``jax_enable_x64``): 5 %."""
LARGE_SHAPES = 50
"""One program in this many has large shapes by default (``grammar.programs(large_shapes=)``):
2 %, at 0.4 to 3.4 s each with every oracle, against about 1 s for the rest."""
SPECIAL_SHARE = 0.125
"""Share of programs run on special-value inputs (``extract.inputs.SPECIAL_RECIPE``) by
default: one in eight, so the rest keep every oracle (autodiff skips special inputs)."""


@dataclass
class Options:
    """Everything a fuzz run needs, as the CLI parsed it."""

    budget: Budget
    corpus: Path = Path(DEFAULT_CORPUS)
    seed: int = 0
    workers: int = os.cpu_count() or 1
    grad: bool = True
    quiet: bool = False
    timeout: float = 60.0
    minimize: bool = True
    minimize_known: bool = False  # known JAX limitations are labelled, not minimised
    grammar: dict[str, Any] = field(default_factory=dict)
    oracle_rates: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_ORACLE_RATES))
    limits: ResourceLimits = DEFAULT_LIMITS
    levels: tuple[str, ...] = LEVELS
    engine: str = "local"  # or "ray" (extract.ray_pool)
    ray_address: str | None = None  # None: a local Ray instance for the run
    guide: bool = True  # coverage-guided generation (fuzz.campaign.guide); False: blind draws
    backends: tuple[str, ...] = ()  # extract.backends specs, each judged on every program
    special_inputs: float = SPECIAL_SHARE  # share of programs on special-value inputs


@dataclass
class Tally:
    """What the run has seen so far."""

    generated: int = 0
    extracted: int = 0
    ok: int = 0
    forward_only: int = 0
    failed: int = 0
    timeout: int = 0
    crashed: int = 0
    duplicate_source: int = 0
    duplicate_ir: int = 0
    added: int = 0
    overruns: int = 0
    minimized: int = 0
    pending: list = field(default_factory=list)  # signatures whose reduction was cut short
    reports_pending: list = field(default_factory=list)  # folders whose triage was cut short
    reduce_s: float = 0.0  # seconds the reductions took (on the reducing workers)
    side_crashes: int = 0  # candidates that crashed otherwise while failures were reduced
    abandoned: int = 0  # programs still extracting when a duration budget's drain ended
    first_result_s: float | None = None
    categories: Counter = field(default_factory=Counter)
    ops: Counter = field(default_factory=Counter)
    api_calls: Counter = field(default_factory=Counter)  # JAX calls in added records' sources
    api_methods: Counter = field(default_factory=Counter)
    buckets: dict = field(default_factory=dict)
    oracles: dict = field(default_factory=lambda: {name: Counter() for name in ORACLES})
    # ... and each backend's, under backend:<name>, as its verdicts arrive
