"""What every oracle shares: the program under test (:class:`Context`), the discrepancy
exception (:class:`Violation`), oracle-name checking and the seeds of the oracles' draws."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .failures import ORACLE_STAGES as ORACLES
from .inputs import RECIPE
from .values import is_float

__all__ = ["CULPRIT_STAGE", "STRICT", "STRICT_STAGE", "Context", "Violation", "check_oracles",
           "derive", "is_float", "leaves", "oracle_of", "runner", "same_failure",
           "split_culprit"]

# XLA may keep float16/bfloat16 intermediates in float32 inside a fusion and round once
# (``xla_allow_excess_precision``, on by default); the references round after every op.
# XLA:CPU also computes float16/bfloat16 dots and convolutions in float32 and rounds once
# (the change-op-data-type pass); the reference accumulates in the narrow type.
STRICT = {"xla_allow_excess_precision": False, "xla_disable_hlo_passes": "change-op-data-type"}
_LOW_PRECISION = re.compile(r"[<x]b?f16>")  # tensor<f16>, tensor<2x3xbf16>
class Violation(Exception):
    """An oracle's reference and the compiled program disagree beyond tolerance."""

    def __init__(self, oracle: str, check: str, dtype: str, message: str,
                 culprit: str | None = None):
        super().__init__(message)
        self.oracle, self.check, self.dtype, self.message = oracle, check, dtype, message
        self.culprit = culprit

    @property
    def signature(self) -> str:
        """``oracle:check:dtype``, and ``:<pass>`` when disabling one XLA pass removes it."""
        base = f"{self.oracle}:{self.check}:{self.dtype}"
        return f"{base}:{self.culprit}" if self.culprit else base

    def failure(self) -> dict[str, Any]:
        """The failure record of this violation (stage: the oracle's name)."""
        return {"stage": self.oracle, "type": "Mismatch", "message": self.message,
                "signature": self.signature, "known": None}


_CULPRIT_SUFFIX = re.compile(r"^(?P<base>[\w:]+:value:\w+):(?P<culprit>[\w+-]+)$")


STRICT_STAGE, CULPRIT_STAGE = ":strict", ":culprit"
"""Suffixes of an oracle's stage while it compiles with non-default XLA options: without
excess precision, and with passes disabled in the culprit search. A worker that dies in the
strict compile is the oracle's own compile crashing, with the program's discrepancy behind
it; one that dies in the culprit search (XLA:CPU aborts on some modules with passes
disabled: ``ir_emitter.cc:3828``) runs the program again without it (``extract.pool``)."""


def oracle_of(stage: str) -> str:
    """The oracle of a stage in one of its own compiles (``"interpreter:culprit"`` gives
    ``"interpreter"``), else ``stage`` itself."""
    for suffix in (STRICT_STAGE, CULPRIT_STAGE):
        if stage.endswith(suffix):
            return stage.removesuffix(suffix)
    return stage


def split_culprit(signature: str) -> tuple[str, str | None]:
    """A failure signature without its culprit suffix, and the culprit (None if it has none):
    ``"jit_eager:value:float32:fusion"`` gives ``("jit_eager:value:float32", "fusion")``."""
    parts = _CULPRIT_SUFFIX.match(signature)
    return (parts["base"], parts["culprit"]) if parts else (signature, None)


def same_failure(signature: str | None, want: str) -> bool:
    """Whether a failure signed ``signature`` is the failure signed ``want``: the same up to
    the culprit, and the same culprit where both name one. (Whether the culprit search
    finishes within its compiles depends on the program's size, so a smaller program of the
    same discrepancy may gain a culprit its original did not have.)"""
    if signature is None:
        return False
    (base, culprit), (base_want, culprit_want) = split_culprit(signature), split_culprit(want)
    return base == base_want and (culprit is None or culprit_want is None
                                  or culprit == culprit_want)


def check_oracles(names: Sequence[str] | None) -> tuple[str, ...]:
    """``names`` as a tuple of known oracle names; ``ValueError`` names an unknown one."""
    if names is None:
        return ()
    if isinstance(names, str):
        raise ValueError(f"oracles={names!r} must be a list of names from {ORACLES}")
    names = list(names)  # read once: an iterator would be empty the second time
    unknown = [n for n in names if n not in ORACLES]
    if unknown:
        raise ValueError(f"oracles={list(names)!r}: unknown {', '.join(map(str, unknown))}; "
                         f"accepted: {', '.join(ORACLES)}")
    return tuple(dict.fromkeys(names))


def derive(seed: int, purpose: int, k: int = 0) -> int:
    """Seed of an oracle's own draws: ``(seed * 64 + purpose * 8 + k) mod 2**63``, for a
    purpose below 8 and a draw ``k`` below 8 (the streams never collide)."""
    return (int(seed) * 64 + purpose * 8 + k) % 2**63


def leaves(value: Any) -> list[np.ndarray]:
    """The leaves of a pytree of arrays, as NumPy arrays."""
    import jax

    return [np.asarray(x) for x in jax.tree_util.tree_leaves(value)]


def runner(lowered: Any) -> Callable[[dict, Sequence[np.ndarray]], list[np.ndarray]]:
    """``run(options, inputs)``: ``lowered`` compiled with XLA ``options`` (once per set of
    options, on first use), run on ``inputs``; the output leaves as NumPy arrays."""
    compiled: dict = {}

    def run(options: dict, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        key = tuple(sorted(options.items()))
        if key not in compiled:
            compiled[key] = lowered.compile(compiler_options=dict(options))
        return leaves(compiled[key](*inputs))

    return run


@dataclass
class Context:
    """What every oracle needs of one extracted program."""

    f: Callable
    run: Callable[[Sequence[np.ndarray]], list[np.ndarray]]  # compiled forward, leaves out
    specs: tuple
    seed: int
    inputs: list[np.ndarray]
    outputs: list[np.ndarray]
    stablehlo_text: str
    # run_with(options, inputs): the program compiled with XLA compiler options
    run_with: Callable[[dict, Sequence[np.ndarray]], list[np.ndarray]]
    grad: list[np.ndarray] | None = None  # recorded gradient, one per float argument
    source: str = ""  # the program's Python source
    exported: Any = None  # jax.export.Exported over polymorphic_shapes, if any
    polymorphic_shapes: tuple[str, ...] = ()
    namespace: dict | None = None  # the module globals the program's functions read
    passes: tuple[str, ...] = ()  # XLA passes that changed it while it compiled, latest first
    # on_stage(name): says which stage runs now; an oracle names the compiles it makes with
    # non-default XLA options ("interpreter:strict", "interpreter:culprit"), so that a
    # worker that dies in one is not taken for the program's own failure
    on_stage: Callable[[str], object] = lambda name: None
    # whether a value discrepancy's culprit pass is searched for (the pool turns it off for a
    # re-run after XLA crashed or hung in that search: see extract.pool)
    culprit_search: bool = True
    recipe: str = RECIPE  # of the inputs (extract.inputs); an oracle's batches use it too
    # the verdicts of the oracles judged so far on this program (the record's "oracles")
    verdicts: dict[str, str] = field(default_factory=dict)
    # what one oracle computes and another reuses (a screen's values: extract.oracles)
    shared: dict[str, Any] = field(default_factory=dict)

    def strict_run(self, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        """The program compiled without excess precision, on ``inputs``."""
        return self.run_with(STRICT, inputs)

    @property
    def low_precision(self) -> bool:
        """Whether the program computes in float16 or bfloat16 anywhere."""
        return bool(_LOW_PRECISION.search(self.stablehlo_text))

    @property
    def float_args(self) -> list[int]:
        """Indices of the floating arguments."""
        return [i for i, (_, d) in enumerate(self.specs) if is_float(d)]
