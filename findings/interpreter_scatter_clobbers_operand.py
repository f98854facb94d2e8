"""StableHLO reference interpreter: scatter writes into its operand (run with plain python)."""
import sys

import jax
import numpy as np
from jax._src.interpreters import mlir
from jaxlib.mlir import ir
from jaxlib.mlir.dialects import stablehlo


def f(x, u):
    return x, x.at[0].set(u)  # the operand x is also an output


x = np.arange(6, dtype=np.float32).reshape(3, 2)
u = np.full((2,), 9.0, np.float32)
with mlir.make_ir_context(), ir.Location.unknown():
    module = ir.Module.parse(jax.jit(f).lower(x, u).as_text())
    got = [np.array(r) for r in stablehlo.eval_module(
        module, [ir.DenseElementsAttr.get(x), ir.DenseElementsAttr.get(u)])]
want = [np.asarray(r) for r in jax.jit(f)(x, u)]
print("jax", jax.__version__)
print("interpreter x:", got[0].ravel(), " XLA x:", want[0].ravel())
sys.exit(0 if np.array_equal(got[0], want[0]) else 1)
