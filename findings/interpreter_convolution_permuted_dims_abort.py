"""StableHLO reference interpreter: a ``convolution`` whose dimension numbers put the
feature dimension before the batch (``[f, b, 0, 1]x[i, o, 0, 1]->[f, b, 0, 1]``, the layout
``jax.vjp`` of a convolution uses for the kernel's cotangent) aborts the process with
"LLVM ERROR: Incompatible index and shape found while flattening index". The same
convolution in the default layout runs. Run with plain python; exits 1 while the interpreter
dies (it runs in a child process).
"""
import subprocess
import sys

CHILD = """
import jax, numpy as np
from jax._src.interpreters import mlir
from jaxlib.mlir import ir
from jaxlib.mlir.dialects import stablehlo
a = np.ones((5, 1, 8, 8), np.float32)
b = np.ones((5, 2, 2, 7), np.float32)
def f(a, b):
    return jax.lax.conv_general_dilated(a, b, (1, 1), "VALID",
                                        dimension_numbers=("CNHW", "IOHW", "CNHW"))
with mlir.make_ir_context(), ir.Location.unknown():
    module = ir.Module.parse(jax.jit(f).lower(a, b).as_text())
    out = stablehlo.eval_module(module, [ir.DenseElementsAttr.get(a), ir.DenseElementsAttr.get(b)])
    print(np.array(out[0]).shape)
"""
import jax  # noqa: E402

done = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True)
print("jax", jax.__version__)
print("interpreter's convolution in layout CNHW:",
      done.stdout.strip() or f"exit {done.returncode}: {done.stderr.strip()[-120:]}")
sys.exit(1 if done.returncode < 0 else 0)
