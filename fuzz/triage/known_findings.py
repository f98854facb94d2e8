"""A registry of the project's findings (docs/findings.md), as ``extract.failures.KNOWN``
is one of known JAX limitations.

Each :class:`Finding` records what docs/findings.md says of one finding: its number, a slug, an
issue-style title, its kind, its reproducer under ``findings/`` and on which set-ups that
reproducer exits 1, and how a fuzz failure is recognised as an instance of it: by its
signature *and* by the program's form (grammar op names, ``grammar.ops.OPS``) *and*, where
both name one, by the XLA pass whose disabling removes it.  A finding whose form the op names
cannot show (Finding 7: the key's implementation is not an op) has no signatures and
matches nothing.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from extract.oracle_context import split_culprit

__all__ = ["FINDINGS", "KINDS", "Finding", "finding", "match_finding"]

KINDS = ("crash", "wrong value", "wrong gradient", "exception", "hang", "rounding",
         "reference defect", "limitation")
"""``reference defect``: a defect of one of our references (the StableHLO interpreter);
``limitation``: documented JAX behaviour, registered as known or benign."""

_FFT = frozenset({"power_spectrum", "rfft_filter", "fft_correlate", "fft2_roundtrip",
                  "complex_fft", "complex_ifft"})
_COMPLEX = _FFT | {"to_complex", "complex_product", "real", "imag", "complex_abs", "angle",
                   "conj", "complex_exp", "complex_add", "complex_multiply"}
_LAPACK_SOLVES = frozenset({"solve", "triangular_solve", "solve_triangular", "lu_solve", "inv"})
_BOTH = {"0.10.2": True, "0.12.0.1": True}
_OLD_ONLY = {"0.10.2": True, "0.12.0.1": False}
_MACHINE = {"0.10.2": None, "0.12.0.1": False}  # on an AVX-512 EPYC both sides agree
_OLD_ALWAYS = {"0.10.2": True, "0.12.0.1": None}  # 0.12: garbage, sometimes the NaN itself


@dataclass(frozen=True, eq=False)
class Finding:
    """One finding of docs/findings.md and the failures that are instances of it.

    ``signatures`` are regexes searched in a failure signature stripped of its culprit
    suffix; ``ops`` must all be among the program's ops, and each set of ``any_ops`` must
    meet them; ``culprit`` is the XLA pass whose disabling removes it. ``reproduces`` maps a
    ``jax.__version__`` to whether ``script`` exits 1 there (``None``: it depends on the
    machine or the run). ``known`` names the
    ``extract.failures.KNOWN`` entry, ``benign`` the ``extract.verdicts.BENIGN`` kind, that
    excuse it.
    """

    number: int
    name: str
    title: str
    kind: str
    script: str | None = None
    reproduces: Mapping[str, bool | None] = field(default_factory=dict)
    signatures: tuple[str, ...] = ()
    ops: frozenset[str] = frozenset()
    any_ops: tuple[frozenset[str], ...] = ()
    culprit: str | None = None
    known: str | None = None
    benign: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"Finding {self.number}: kind={self.kind!r} not in {KINDS}")
        if (self.script is None) != (not self.reproduces):
            raise ValueError(f"Finding {self.number}: a script needs `reproduces`, and only it")
        object.__setattr__(self, "reproduces", MappingProxyType(dict(self.reproduces)))
        object.__setattr__(self, "_regexes", tuple(re.compile(s) for s in self.signatures))

    @property
    def label(self) -> str:
        """How a run's summary names it: ``Finding 9: composite_dead_reduce_segfault``."""
        return f"Finding {self.number}: {self.name}"

    def matches(self, signature: str, ops: Iterable[str], culprit: str | None = None) -> bool:
        """Whether a failure with ``signature`` (and ``culprit``: else its signature's
        suffix) in a program using ``ops`` is an instance of this finding."""
        signature, suffix = split_culprit(signature)
        culprit = culprit or suffix
        if not any(r.search(signature) for r in self._regexes):
            return False
        if self.culprit and culprit and self.culprit not in culprit.split("+"):
            return False
        ops = set(ops)
        return self.ops <= ops and all(group & ops for group in self.any_ops)


FINDINGS: tuple[Finding, ...] = (
    Finding(1, "exp_of_failed_cholesky",
            "XLA:CPU: jnp.exp after a failed jnp.linalg.cholesky returns garbage instead of "
            "NaN under jit (fusion)", "wrong value", "findings/exp_of_failed_cholesky.py",
            _OLD_ALWAYS, (r"^jit_eager:value:\w+$", r"^vmap:value:\w+$"), frozenset({"cholesky"}),
            culprit="fusion"),
    Finding(2, "interpreter_scatter_clobbers_operand",
            "StableHLO reference interpreter (jaxlib 0.10.2): scatter writes its result into "
            "its operand", "reference defect", "findings/interpreter_scatter_clobbers_operand.py",
            _OLD_ONLY, (r"^interpreter:value:\w+$",), frozenset({"scatter"})),
    Finding(3, "top_k_signed_zero",
            "XLA:CPU: lax.top_k ranks +0.0 above -0.0, where the StableHLO reference "
            "decomposition of chlo.top_k ties them (lower index first)", "wrong value",
            "findings/top_k_signed_zero.py", _BOTH, (r"^interpreter:value:int32$",),
            frozenset({"top_k"})),
    Finding(4, "eager_fori_loop_python_index",
            "Under jax.disable_jit(), lax.fori_loop with static bounds passes a Python int as "
            "the loop index", "limitation",
            signatures=(r"^jit_eager:ValueError:negative shift count$",
                        r"^jit_eager:AttributeError:<str> object has no attribute <str>$"),
            ops=frozenset({"fori_loop"}), known="eager_python_loop_index"),
    Finding(5, "reduce_precision_not_adjoint",
            "lax.reduce_precision's JVP rounds the tangent and its transpose the cotangent, "
            "so <v, J u> != <J^T v, u>", "limitation",
            signatures=(r"^autodiff:jvp_vjp:\w+$",), ops=frozenset({"reduce_precision"}),
            benign="surrogate_derivative"),
    Finding(6, "fft_feeding_lapack",
            "XLA:CPU: RET_CHECK failure in fft_thunk.cc (IsMonotonicWithDim0Major) at run "
            "time when an FFT's result feeds a LAPACK solve", "exception",
            "findings/fft_feeding_lapack.py", _BOTH,
            (r"^\w+:(?:Jax|Xla)RuntimeError:INTERNAL: RET_CHECK failure \(\S*fft_thunk\.cc",),
            any_ops=(_FFT, _LAPACK_SOLVES), known="xla_cpu_fft_layout"),
    Finding(7, "rbg_keys_under_vmap",
            "jax.vmap over rbg keys (jax.random.key(s, impl='rbg')) draws other bits than "
            "each key alone", "limitation"),
    Finding(8, "custom_jvp_closure_aot",
            "jax.jit(jax.grad(f)).trace(...).lower().compile() accepts a custom_jvp function "
            "closing over a tracer, which jax.jit(jax.grad(f)) rejects; the executable then "
            "expects a hidden argument", "exception",
            signatures=(r"^grad_run:TypeError:Computation compiled for <n> inputs but called "
                        r"with <n>$",),
            any_ops=(frozenset({"custom_jvp", "custom_vjp"}),)),
    Finding(9, "composite_dead_reduce_segfault",
            "XLA:CPU crashes converting a dead lax.reduce with a jnp.where reducer to HLO "
            "(r * 0 of its result, or inside lax.composite or sequential_vmap)", "crash",
            "findings/composite_dead_reduce_segfault.py", _BOTH,
            (r"^crashed:SIG(?:SEGV|ABRT)(?::|$)",), frozenset({"reduce_argmax"})),
    Finding(10, "sequential_vmap_in_vmapped_cond",
            "jax.vmap of lax.cond with a batched predicate raises AssertionError: [True] when "
            "a branch calls a sequential_vmap function on an unbatched value", "exception",
            "findings/sequential_vmap_in_vmapped_cond.py", _BOTH,
            (r"^vmap:AssertionError:\[True\]$",), frozenset({"sequential_vmap"}),
            (frozenset({"cond", "switch"}),)),
    Finding(11, "shard_map_between_mesh_shapes",
            "jax.shard_map cannot take the output of a shard_map over another mesh shape of "
            "the same devices: IndivisibleError", "exception",
            "findings/shard_map_between_mesh_shapes.py", _BOTH,
            (r"^\w+:IndivisibleError:shape=<shape> is incompatible with mesh_shape",),
            frozenset({"shard_map"})),
    Finding(12, "checkpoint_policy_complex_residual",
            "jax.grad through jax.checkpoint with a saveable policy fails on a complex "
            "intermediate: reduce_precision does not accept dtype complex64", "exception",
            "findings/checkpoint_policy_complex_residual.py", _BOTH,
            (r"^(?:grad_trace|trace|autodiff):TypeError:reduce_precision does not accept "
             r"dtype <dtype>$",),
            frozenset({"checkpoint_policy"}), (_COMPLEX,),
            known="checkpoint_policy_complex"),
    Finding(13, "maxpool_grad_under_sharding",
            "XLA SPMD: wrong reverse-mode derivative of max pooling (select-and-scatter) when "
            "the pooled axis is sharded", "wrong gradient",
            "findings/maxpool_grad_under_sharding.py", _BOTH, (r"^autodiff:jvp_vjp:\w+$",),
            frozenset({"max_pool", "sharding"})),
    Finding(14, "float16_gamma_exported_folding",
            "XLA:CPU: a float16 jax.random.gamma sample differs by ulps between a "
            "symbolic-batch export and jax.jit (constant multiplications folded)", "rounding",
            "findings/float16_gamma_exported_folding.py", _MACHINE,
            (r"^symbolic:value:float16$",), frozenset({"random_gamma"})),
    Finding(15, "all_gather_symbolic_batch_export",
            "jax.export over a symbolic batch fails on a vmapped shard_map ending in a "
            "stacking lax.all_gather: broadcast_in_dim with a dynamic result shape",
            "exception", "findings/all_gather_symbolic_batch_export.py", _BOTH,
            (r"^export:ValueError:Cannot lower jaxpr with verifier errors$",),
            frozenset({"shard_map"}), known="export_batched_all_gather"),
    Finding(16, "eager_pallas_kernel_constant",
            "Under jax.disable_jit(), a Pallas kernel whose body jits an array constant "
            "raises 'captures constants'", "limitation",
            signatures=(r"^jit_eager:ValueError:The kernel function in the pallas_call .* "
                        r"captures constants",),
            ops=frozenset({"pallas_call"}),
            known="eager_pallas_kernel_constant"),
    Finding(17, "vmapped_pivoted_qr_grad",
            "jax.grad through jax.vmap of jax.scipy.linalg.qr(..., pivoting=True) raises "
            "TypeError: triangular_solve inputs with different batch dimensions",
            "exception", "findings/vmapped_pivoted_qr_grad.py", _BOTH,
            (r"^grad_trace:TypeError:All inputs to triangular_solve must have the same "
             r"number of batch dimensions",), frozenset({"qr_pivoted"})),
    Finding(18, "optimization_barrier_int_grad",
            "jax.grad of an integer array passed through lax.optimization_barrier and reduced "
            "in lax.cond raises TypeError: reshape of ad_util.Zero", "exception",
            "findings/optimization_barrier_int_grad.py", _OLD_ONLY,
            (r"^grad_trace:TypeError:Error interpreting argument to reshape as a JAX value",
             # the same symbolic-zero tangent met by cumprod's jvp (a 150-program run)
             r"^grad_trace:TypeError:primal and tangent arguments to jax\.jvp must have the "
             r"same tree structure; primals have tree structure PyTreeDef\(\(\*,\)\) w"),
            frozenset({"optimization_barrier"})),
    Finding(19, "strided_slice_beside_sharded_shard_map",
            "XLA SPMD partitioner: the hlo verifier refuses a strided slice of an array that a "
            "shard_map reads sharded over 4 devices (slice shape f32[1,1], expected f32[2,1])",
            "exception", "findings/strided_slice_beside_sharded_shard_map.py", _BOTH,
            (r"^compile:JaxRuntimeError:INTERNAL: during context \[hlo verifier\]: Expected "
             r"instruction to have shape",), frozenset({"shard_map"})),
    Finding(20, "atan2_of_folded_zeros_nan",
            "XLA:CPU (jaxlib 0.10.2): lax.atan2(0, 0) and jnp.angle(0j) are NaN under jax.jit "
            "when the zeros reach the fused atan2 as constants (out of "
            "lax.optimization_barrier); 0 op by op", "wrong value",
            "findings/atan2_of_folded_zeros_nan.py", _OLD_ONLY,
            (r"^(?:interpreter|jit_eager|unsimplified|vmap):value:float32$",),
            frozenset({"optimization_barrier"}), (frozenset({"angle", "arctan2"}),)),
    Finding(21, "abs_of_int_min_folded_nonnegative",
            "XLA algebraic simplifier (jaxlib 0.10.2): jnp.abs(x) >= 0 folds to True for int32, "
            "but abs(INT_MIN) is INT_MIN", "wrong value",
            "findings/abs_of_int_min_folded_nonnegative.py", _OLD_ONLY,
            (r"^(?:unsimplified|jit_eager|interpreter|vmap):value:bool$",),
            frozenset({"abs"}), (frozenset({"greater", "greater_equal"}),), culprit="algsimp"),
    Finding(22, "interpreter_totalorder_compare",
            "StableHLO reference interpreter: compare with TOTALORDER orders floats as FLOAT "
            "does (1 < NaN and -0 < +0 are false)", "reference defect",
            "findings/interpreter_totalorder_compare.py", _BOTH),
    Finding(23, "interpreter_integer_division_sigfpe",
            "StableHLO reference interpreter: an integer divide or remainder by zero, or of "
            "INT_MIN by -1, kills the process with SIGFPE", "reference defect",
            "findings/interpreter_integer_division_sigfpe.py", _BOTH),
    Finding(24, "log_of_exp_folded_past_overflow",
            "XLA algebraic simplifier (jaxlib 0.10.2): log(exp(x)) folds to x, also where "
            "exp(x) overflows to inf", "wrong value",
            "findings/log_of_exp_folded_past_overflow.py", _OLD_ONLY,
            (r"^(?:unsimplified|jit_eager|interpreter|vmap):value:\w+$",), frozenset({"exp"}),
            (frozenset({"log", "log_unguarded"}),), culprit="algsimp"),
    Finding(25, "interpreter_convolution_permuted_dims_abort",
            "StableHLO reference interpreter (jaxlib 0.10.2): a convolution whose dimension "
            "numbers put the feature dimension first aborts the process (Incompatible index "
            "and shape found while flattening index)", "reference defect",
            "findings/interpreter_convolution_permuted_dims_abort.py", _OLD_ONLY),
    Finding(26, "bfloat16_attention_dot_algorithm_compile_error",
            "XLA:CPU (jaxlib 0.10.2): jax.nn.dot_product_attention of bfloat16 arrays with a "
            "sequence length of 1 fails to compile: Algorithm not supported by the "
            "ElementalIrEmitter: ALG_DOT_BF16_BF16_F32", "exception",
            "findings/bfloat16_attention_dot_algorithm_compile_error.py", _OLD_ONLY,
            (r"^compile:JaxRuntimeError:INVALID_ARGUMENT: Algorithm not supported by the "
             r"ElementalIrEmitter",), frozenset({"dot_product_attention"})),
)
"""The findings in docs/findings.md's order; ``match_finding`` returns the first that matches."""

_BY_KEY: dict[int | str, Finding] = {k: f for f in FINDINGS for k in (f.number, f.name)}


def finding(number_or_name: int | str) -> Finding:
    """The finding with this number (docs/findings.md) or name; ``KeyError`` if there is none."""
    try:
        return _BY_KEY[number_or_name]
    except KeyError:
        raise KeyError(f"no finding {number_or_name!r}; accepted: the numbers 1 to "
                       f"{len(FINDINGS)} and the names {', '.join(f.name for f in FINDINGS)}"
                       ) from None


def match_finding(signature: str, ops: Iterable[str],
                  culprit: str | None = None) -> Finding | None:
    """The first finding of which a failure with ``signature`` in a program using ``ops``
    (with ``culprit``, the XLA pass that removes it, if known) is an instance, else None."""
    ops = frozenset(ops)
    return next((f for f in FINDINGS if f.matches(signature, ops, culprit)), None)
