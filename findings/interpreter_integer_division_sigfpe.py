"""StableHLO reference interpreter: an integer ``divide`` by zero (or of the most negative
value by -1) kills the process with SIGFPE. The spec leaves those results to the
implementation (XLA gives -1 and INT_MIN); a reference must not crash on them. Run with plain
python; exits 1 while the interpreter dies (it runs in a child process).
"""
import subprocess
import sys

CHILD = """
import jax, numpy as np
from jax._src.interpreters import mlir
from jaxlib.mlir import ir
from jaxlib.mlir.dialects import stablehlo
x = np.array([7, -2147483648], np.int32)
d = np.array([0, -1], np.int32)
with mlir.make_ir_context(), ir.Location.unknown():
    module = ir.Module.parse(jax.jit(jax.lax.div).lower(x, d).as_text())
    print(np.array(stablehlo.eval_module(
        module, [ir.DenseElementsAttr.get(x), ir.DenseElementsAttr.get(d)])[0]))
"""
import jax  # noqa: E402

done = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True)
print("jax", jax.__version__)
print("interpreter's [7, INT_MIN] // [0, -1]:", done.stdout.strip() or f"exit {done.returncode}")
sys.exit(1 if done.returncode < 0 else 0)
