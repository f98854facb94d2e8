"""StableHLO reference interpreter: ``compare`` with ``TOTALORDER`` orders floats as ``FLOAT``
does, so ``1 < NaN`` and ``-0 < +0`` are false where IEEE 754 totalOrder (and XLA) says true,
and the interpreter's ``jnp.sort`` leaves a NaN among the numbers. Run with plain python;
exits 1 while the interpreter disagrees with totalOrder.
"""
import sys

import jax
import numpy as np
from jax._src.interpreters import mlir
from jaxlib.mlir import ir
from jaxlib.mlir.dialects import stablehlo

a = np.array([1.0, -0.0, np.nan, -2.0], np.float32)
b = np.array([np.nan, 0.0, 1.0, -1.0], np.float32)
text = jax.jit(lambda a, b: a < b).lower(a, b).as_text().replace(", FLOAT", ", TOTALORDER")
with mlir.make_ir_context(), ir.Location.unknown():
    module = ir.Module.parse(text)
    got = np.array(stablehlo.eval_module(
        module, [ir.DenseElementsAttr.get(a), ir.DenseElementsAttr.get(b)])[0])
want = np.array([True, True, False, True])  # totalOrder: -2 < -1 < -0 < +0 < 1 < +NaN
print("jax", jax.__version__)
print("a < b under TOTALORDER, interpreter:", got, " totalOrder:", want)
sys.exit(0 if np.array_equal(got, want) else 1)
