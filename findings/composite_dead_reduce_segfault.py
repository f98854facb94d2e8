"""XLA:CPU crashes (SIGSEGV) compiling a ``lax.composite`` whose body holds an unused
two-operand ``lax.reduce`` (run with python).

The same body compiles without the composite, and the composite compiles once the reduce's
result is used.  Found by jaxsmith's grammar (a ``composite`` op over a generated body that
held a dead ``reduce_argmax``; stage ``compile``, ``crashed:SIGSEGV``), minimised by hand to
this, on jax 0.10.2 and 0.12.0.1.  The compile runs in a child process, so this script
survives the crash: it exits 1 while the crash is there, 0 once it is gone.
"""
import subprocess
import sys

CHILD = """
import jax, jax.numpy as jnp
from jax import lax

def body(c):
    lax.reduce((c, c), (0.0, 0.0),
               lambda a, b: (jnp.where(a[0] > b[0], a[0], b[0]), a[1] + b[1]), (0,))
    return c

jax.jit(lambda x: lax.composite(body, name="my.body")(x)).lower(jnp.ones(2)).compile()
print("jax", jax.__version__, "compiled")
"""

child = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True)
print(child.stdout.strip() or f"the compile ended with exit status {child.returncode}")
sys.exit(0 if child.returncode == 0 else 1)
