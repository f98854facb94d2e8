"""lax.top_k on XLA:CPU against the StableHLO reference (run with plain python).

lax.top_k documents that of two equal elements the lower index comes first. -0.0 and +0.0
are equal under IEEE comparison (jnp.sort keeps them in index order), but XLA:CPU's TopK
ranks +0.0 above -0.0; the reference decomposition of chlo.top_k (chlo-legalize-to-stablehlo,
run by the StableHLO interpreter) treats them as a tie. Exits 1 while they disagree.
"""
import sys

import jax
import numpy as np
from jax import lax
from jax._src.interpreters import mlir
from jaxlib.mlir import ir
from jaxlib.mlir.dialects import stablehlo
from jaxlib.mlir.passmanager import PassManager

x = np.array([-0.0, 0.0, -0.0, 1.0, 0.0], np.float32)


def f(x):
    return lax.top_k(x, 3)[1]


xla = np.asarray(jax.jit(f)(x))
stablehlo.register_stablehlo_passes()
with mlir.make_ir_context(), ir.Location.unknown():
    module = ir.Module.parse(jax.jit(f).lower(x).as_text())
    PassManager.parse("builtin.module(func.func(chlo-legalize-to-stablehlo))").run(
        module.operation)
    ref = np.array(stablehlo.eval_module(module, [ir.DenseElementsAttr.get(x)])[0])
print("jax", jax.__version__, "x =", x)
print("XLA top_k indices:      ", xla)
print("reference top_k indices:", ref)
sys.exit(0 if np.array_equal(xla, ref) else 1)
