"""Failure classification: stable signatures and a registry of known JAX limitations.

A failure record is ``{"stage", "type", "message", "signature", "known"}``.

``signature`` buckets failures: two instances of one bug share it, two different bugs do not,
and it survives JAX versions that only append a hint to a message. It keeps the *lead* of the
message - the first line, cut after its first sentence - because JAX puts the substance
there and appends hints ("Try using lax.scan ...", "See https://...") after it. Inside the lead,
everything instance-specific is masked: quoted strings, paths, shapes, dtypes, numbers and
generated identifiers (``t12``, ``body_3``, ``%5``).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from .backends import STAGE_PREFIX
from .clean import scrub_host

__all__ = ["KNOWN", "STAGES", "Known", "classify", "failure", "match_known", "signature"]

# The extractor's stages in order; "run" executes the compiled program on its inputs, and the
# oracles (extract.oracles.ORACLES) are stages of their own, as is each user backend
# (extract.backends: "backend:<name>").
FORWARD_STAGES = ("trace", "lower", "compile", "export", "run")
GRAD_STAGES = ("grad_trace", "grad_lower", "grad_compile", "grad_run")
ORACLE_STAGES = ("jit_eager", "autodiff", "vmap", "interpreter", "unsimplified", "symbolic",
                 "pallas")
STAGES = FORWARD_STAGES + GRAD_STAGES + ORACLE_STAGES

_MAX_MESSAGE = 4000
_MAX_LEAD = 120

_DTYPE = (
    r"(?:bfloat16|float8_\w+|float4_\w+|(?:u?int|float|complex)\d+|bool_?|pred|"
    r"bf16|tf32|[fsuic]\d{1,3})"
)
# Order matters: the broad constructs are masked before their parts.
_MASKS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r'"[^"\n]*"'), "<str>"),
    (re.compile(r"(?<![A-Za-z])'[^'\n]*'(?![A-Za-z])"), "<str>"),
    (re.compile(r"<path>(?::\d+)*|<jaxsmith>(?::\d+)*"), "<path>"),
    (re.compile(r"\bat 0x[0-9a-fA-F]+|\b0x[0-9a-fA-F]+\b"), "<addr>"),
    (re.compile(r"\btensor<[^<>]*>"), "<type>"),
    (re.compile(rf"\b{_DTYPE}\[[^\[\]]*\](?:\{{[\d,]*\}})?"), "<type>"),
    (re.compile(r"\bShape(?:d|Dtype)(?:Array|Struct)\([^()]*\)"), "<type>"),
    (
        re.compile(r"(?<![\w\]])\((?:\s*-?\d+\s*,)*\s*-?\d*\s*\)|\[(?:\s*-?\d+\s*,)*\s*-?\d*\s*\]"),
        "<shape>",
    ),
    (re.compile(rf"\b(?:dtype\()?{_DTYPE}\b\)?"), "<dtype>"),
    (re.compile(r"%[\w.$-]+"), "<id>"),
    (re.compile(r"\b(?:[A-Za-z]{1,2}\d+|[A-Za-z]\w*_\d+)\b"), "<id>"),
    (re.compile(r"(?<![\w<])[-+]?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?\b"), "<n>"),
)
_ABBREVIATIONS = re.compile(r"\b(?:e\.g|i\.e|etc|vs|cf)\.", re.IGNORECASE)
_SENTENCE_END = re.compile(r"[.!?](?:\s+|$)")
_SPACES = re.compile(r"\s+")


def _lead(message: str) -> str:
    """First non-empty line of ``message``, masked, cut after its first sentence."""
    lines = [ln.strip() for ln in str(message).splitlines() if ln.strip()]
    if not lines:
        return ""
    text = lines[0]
    # A header line such as "Invalid carry:" announces its substance on the next line.
    if text.endswith(":") and len(text) < 40 and len(lines) > 1:
        text = f"{text} {lines[1]}"
    text = scrub_host(text)
    for pattern, repl in _MASKS:
        text = pattern.sub(repl, text)
    text = _ABBREVIATIONS.sub(lambda m: m.group(0)[:-1], text)
    # Cut after the first sentence, unless that sentence is too short to identify anything.
    for m in _SENTENCE_END.finditer(text):
        if m.start() >= 20:
            text = text[: m.start()]
            break
    return _SPACES.sub(" ", text).strip().rstrip(".:;, ")


def signature(stage: str, exc_type: str, message: str) -> str:
    """Stable bucket key ``stage:ExcType:<masked lead of the message>``.

    A lead longer than 120 characters is truncated and suffixed with a short hash of the whole
    lead, so truncation never merges two different leads.
    """
    lead = _lead(message)
    if len(lead) > _MAX_LEAD:
        digest = hashlib.sha256(lead.encode()).hexdigest()[:8]
        lead = f"{lead[:_MAX_LEAD]}~{digest}"
    return f"{stage}:{exc_type}:{lead}"


@dataclass(frozen=True)
class Known:
    """A known JAX limitation: matched by stage, exception type name (``"A|B"``: either)
    and message regex.

    ``stages`` is the set of pipeline stages where it can surface; ``None`` means any (a
    limitation of ``jax.grad`` surfaces in ``trace`` when the program calls ``jax.grad``
    itself, and in ``grad_trace`` when the extractor differentiates the program).
    """

    name: str
    stages: frozenset[str] | None
    exc_type: str
    pattern: str
    description: str

    def __post_init__(self) -> None:
        if self.stages is not None and not self.stages <= set(STAGES):
            raise ValueError(f"Known {self.name!r}: stages={set(self.stages)} not in {STAGES}")
        object.__setattr__(self, "_regex", re.compile(self.pattern))

    def matches(self, stage: str, exc_type: str, message: str) -> bool:
        if self.stages is not None and stage not in self.stages:
            return False
        return (exc_type in self.exc_type.split("|")
                and self._regex.search(message) is not None)


_TRACE_STAGES = frozenset({"trace", "grad_trace"})

KNOWN: tuple[Known, ...] = (
    Known(
        "grad_dynamic_loop",
        _TRACE_STAGES,
        "ValueError",
        r"Reverse-mode differentiation does not work for lax\.while_loop",
        "reverse-mode AD through lax.while_loop, or lax.fori_loop with traced bounds",
    ),
    Known(
        "grad_integer_input",
        _TRACE_STAGES,
        "TypeError",
        r"grad requires real- or complex-valued inputs",
        "jax.grad with respect to an integer or boolean input",
    ),
    Known(
        "grad_non_scalar_output",
        _TRACE_STAGES,
        "TypeError",
        r"Gradient only defined for scalar-output functions",
        "jax.grad of a function whose output is not a scalar",
    ),
    Known(
        "grad_integer_output",
        _TRACE_STAGES,
        "TypeError",
        r"grad requires real-valued outputs",
        "jax.grad of a function with an integer, boolean or complex output",
    ),
    Known(
        "grad_pure_callback",
        _TRACE_STAGES,
        "ValueError",
        r"(?:Pure|IO|Buffer) callbacks do not support JVP",
        "differentiation through jax.pure_callback / io_callback",
    ),
    Known(
        "grad_rule_missing",
        _TRACE_STAGES | {"autodiff"},
        "NotImplementedError",
        r"(?:Differentiation|Transpose) rule .*not implemented",
        "a primitive without a JVP or transpose rule",
    ),
    Known(
        "grad_eig",
        _TRACE_STAGES | {"autodiff"},
        "NotImplementedError",
        r"Derivatives of non-symmetric eigenvectors are only valid under assumptions",
        "differentiating jnp.linalg.eig's eigenvectors (or reverse mode over the jvp of "
        "eigvals), which JAX refuses unless enable_eigvec_derivs=True",
    ),
    Known(
        "grad_scatter_mul",
        _TRACE_STAGES,
        "NotImplementedError",
        r"scatter_mul gradients are only implemented if `unique_indices=True`",
        "reverse-mode AD of x.at[index_array].multiply(...), whose indices may repeat",
    ),
    Known(
        "vmap_rule_missing",
        frozenset({"trace", "vmap"}),
        "NotImplementedError",
        r"Batching rule for .* not implemented",
        "jax.vmap over a primitive without a batching rule",
    ),
    Known(
        "vmap_pure_callback",
        frozenset({"trace", "vmap"}),
        "NotImplementedError",
        r"vmap is only supported for the pure_callback primitive when vmap_method",
        "jax.vmap over jax.pure_callback declared without a vmap_method",
    ),
    Known(
        "eager_python_loop_index",
        frozenset({"jit_eager"}),
        "ValueError|AttributeError",
        r"negative shift count|'int' object has no attribute",
        "under jax.disable_jit() a lax.fori_loop runs as a Python loop whose index is a "
        "Python int, so Python's int semantics apply (i >> -1 raises, i.reshape does not "
        "exist) where jit has an int32 array",
    ),
    Known(
        "eager_pallas_kernel_constant",
        frozenset({"jit_eager"}),
        "ValueError",
        r"The kernel function in the pallas_call .* captures constants",
        "under jax.disable_jit() the jax.jit that keeps the array constants of a Pallas "
        "kernel's body (an index array, a polynomial's coefficients) inside it is off too, "
        "and pallas_call refuses a kernel that captures constants; jit runs the program",
    ),
    Known(
        "jvp_of_custom_vjp",
        None,
        "TypeError",
        r"can't apply forward-mode autodiff \(jvp\) to a custom_vjp function",
        "forward-mode differentiation (jax.jvp, the autodiff oracle's jvp check) of a "
        "jax.custom_vjp function, which defines reverse mode only",
    ),
    Known(
        "xla_cpu_fft_layout",
        None,  # wherever a compiled program runs: run, grad_run, and the oracles' programs
        "JaxRuntimeError|XlaRuntimeError",
        r"fft_thunk\.cc.*IsMonotonicWithDim0Major",
        "an XLA:CPU bug, not a limitation: the FFT thunk refuses at run time an operand "
        "layout the compiled program gives it, as when an FFT's result feeds a LAPACK solve "
        "(docs/findings.md, Finding 6; findings/fft_feeding_lapack.py)",
    ),
    Known(
        "xla_cpu_collective_reduction",
        frozenset({"compile", "grad_compile"}),
        "JaxRuntimeError|XlaRuntimeError",
        r"UNIMPLEMENTED: Unsupported reduction computation",
        "XLA:CPU cannot run a cross-device reduction other than add, multiply, min and max: "
        "an integer lax.reduce with bitwise or/and/xor over a dimension sharded across "
        "devices becomes an all-reduce with that computation (both versions)",
    ),
    Known(
        "checkpoint_policy_complex",
        _TRACE_STAGES | {"autodiff"},
        "TypeError",
        r"reduce_precision does not accept dtype complex",
        "a JAX bug, not a limitation: jax.grad through jax.checkpoint with a saveable "
        "policy of a function with a complex intermediate (docs/findings.md, Finding 12; "
        "findings/checkpoint_policy_complex_residual.py)",
    ),
    Known(
        "export_batched_all_gather",
        frozenset({"export"}),
        "ValueError",
        r"Cannot lower jaxpr with verifier errors:\s*'stablehlo\.broadcast_in_dim' op "
        r"result #0 must be statically shaped",
        "a JAX bug, not a limitation: jax.export over a symbolic batch of a vmapped "
        "shard_map ending in a stacking lax.all_gather emits a broadcast_in_dim with a "
        "dynamic result, which the StableHLO verifier refuses (docs/findings.md, Finding 15; "
        "findings/all_gather_symbolic_batch_export.py)",
    ),
    Known(
        "grad_betainc_ab",
        _TRACE_STAGES,
        "ValueError",
        r"Betainc gradient with respect to a and b not supported",
        "jax.scipy.special.betainc differentiated with respect to a or b",
    ),
)


def match_known(stage: str, exc_type: str, message: str) -> str | None:
    """Name of the first KNOWN entry that matches, else None."""
    for known in KNOWN:
        if known.matches(stage, exc_type, message):
            return known.name
    return None


def failure(stage: str, exc_type: str, message: str) -> dict:
    """A failure record from its parts."""
    message = scrub_host(str(message))
    if len(message) > _MAX_MESSAGE:
        message = message[:_MAX_MESSAGE] + " ...[truncated]"
    return {
        "stage": stage,
        "type": exc_type,
        "message": message,
        "signature": signature(stage, exc_type, message),
        "known": match_known(stage, exc_type, message),
    }


def classify(stage: str, exc: BaseException) -> dict:
    """The failure record of ``exc`` raised in ``stage`` (one of ``STAGES``, or a backend's
    ``backend:<name>``)."""
    if stage not in STAGES and not stage.startswith(STAGE_PREFIX):
        raise ValueError(f"stage={stage!r} is not one of {STAGES} or {STAGE_PREFIX}<name>")
    return failure(stage, type(exc).__name__, str(exc))
