"""The op table: every op the grammar knows, one record each, by name."""

from __future__ import annotations

from types import MappingProxyType

from grammar.opdef import Op
from grammar.ops_autodiff import AUTODIFF_OPS, CUSTOM_RULES
from grammar.ops_control import CONTROL
from grammar.ops_creation import CREATION_OPS
from grammar.ops_decomp import DECOMPOSITIONS, LAPACK_EXTRA
from grammar.ops_elementwise import BINARY, SELECT, UNARY
from grammar.ops_fft import COMPLEX_VALUES, FFT_OPS
from grammar.ops_linalg import LINALG
from grammar.ops_misc import MISC_OPS
from grammar.ops_nn import NN_OPS
from grammar.ops_pallas import PALLAS_OPS
from grammar.ops_parallel import PARALLEL_OPS
from grammar.ops_pytree import PYTREE_OPS
from grammar.ops_random import RANDOM_OPS
from grammar.ops_reduce import CUMULATIVE, LAX_REDUCTIONS, REDUCTIONS
from grammar.ops_shape import SHAPES
from grammar.ops_special import SPECIAL_OPS
from grammar.ops_types import TYPE_OPS
from grammar.ops_window import WINDOW
from grammar.syntax import METHODS
from grammar.x64 import widen


def _table(*groups: list[Op]) -> MappingProxyType:
    table: dict[str, Op] = {}
    for op in (op for group in groups for op in group):
        if op.name in table:
            raise ValueError(f"op {op.name!r} is declared twice")
        table[op.name] = widen(op)  # the ops a 64-bit program draws take its dtypes
    return MappingProxyType(table)


OPS = _table(UNARY, BINARY, SELECT, REDUCTIONS, LAX_REDUCTIONS, CUMULATIVE, LINALG, SHAPES,
             NN_OPS, CONTROL, SPECIAL_OPS, WINDOW, DECOMPOSITIONS, LAPACK_EXTRA, RANDOM_OPS,
             AUTODIFF_OPS, FFT_OPS, COMPLEX_VALUES, MISC_OPS, PYTREE_OPS, PARALLEL_OPS,
             CREATION_OPS, TYPE_OPS, PALLAS_OPS)
"""Every op by name, in declaration order."""

FAMILIES: tuple[str, ...] = tuple(dict.fromkeys(op.family for op in OPS.values()))

OPTIONAL_IMPORTS: tuple[str, ...] = tuple(dict.fromkeys(
    line for op in OPS.values() for line in op.imports))
"""Import lines a module carries when one of its ops needs them (``import jax.ad_checkpoint``
makes ``jax.ad_checkpoint.checkpoint_name`` reachable), in declaration order."""

ALLOWED_CALLS: frozenset[str] = frozenset(
    {call for op in OPS.values() for call in op.calls}
    | {"jnp.abs", "jnp.clip", "jnp.ones", "jnp.sum", "jnp.array", "jax.nn.sigmoid", "jnp.tanh",
       "jnp.swapaxes", "jnp.eye"})
"""Every dotted JAX function a rendered program may call (op templates, guards, constants)."""

ALLOWED_VALUES: frozenset[str] = frozenset(v for op in OPS.values() for v in op.values)
"""Dotted JAX names a rendered program may use as values: pure functions passed to another
(``lax.add`` to ``lax.reduce_window``) and constants (``jnp.inf``)."""

ALLOWED_METHODS: frozenset[str] = frozenset({"astype", "reshape", "at", "set", "add",
                                             "multiply", "min", "max", "defjvp", "defvjp",
                                             "T", "mT", "real", "imag", "flatten", "get",
                                             "shape", "dtype"}) | METHODS
"""Attribute names a rendered program may use on its own values (``defjvp``/``defvjp`` on
what ``CALLABLE_RESULTS`` return; the array methods and attributes of the method style, each
a pure JAX array method; ``.shape`` and ``.dtype`` of a value or of ``jax.typeof``)."""

CALLABLE_RESULTS: frozenset[str] = frozenset(CUSTOM_RULES)
"""Calls whose result a program may bind to a name and call: ``g = jax.custom_jvp(f)``."""
