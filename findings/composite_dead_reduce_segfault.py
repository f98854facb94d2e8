"""XLA crashes (SIGSEGV; in a fuzz worker also SIGABRT, "LLVM ERROR: Failed to infer result
type(s)") on a dead ``lax.reduce`` whose reducer calls ``jnp.where`` (a ``func.call`` of a
private function in StableHLO): inside a construct whose lowering keeps dead code (a
``lax.composite``, or a ``jax.custom_batching.sequential_vmap``), or with no wrapper at all
once the result is made dead by a fold, ``r * 0`` or ``r - r`` of an integer result (run
with python).

The same body compiles once the reduce's result is used (``r``, ``r + 1``), or with
``lax.select`` in the reducer. The unwrapped form was found by jaxsmith's own reduction: a
300-second default run (seed 2112) met a 31-statement ``crashed:SIGSEGV`` program and
reduced it, during the run, to the 3 statements ``reduce_argmax``, ``sum``, ``bitwise_xor(t,
t)``. Found by jaxsmith twice: a ``composite`` over a generated body
with a dead ``reduce_argmax`` (stage ``compile``, ``crashed:SIGSEGV``), and a 300-program run
with a ``sequential_vmap`` body holding one (stage ``lower``: converting the module to HLO;
``crashed:SIGABRT``); minimised by hand; on jax 0.10.2 and 0.12.0.1. Each compile runs in a
child process, so this script survives the crash: it exits 1 while a crash is there, 0 once
both are gone.
"""
import subprocess
import sys

CHILD = """
import jax, jax.numpy as jnp
from jax import lax

def body(c):
    lax.reduce(c, 0.0, lambda a, b: jnp.where(a > b, a, b), (0,))  # dead
    return c


def folded(c):  # no wrapper: the reduce's result dies in a fold
    r = lax.reduce(c.astype(jnp.int32), 0, lambda a, b: jnp.where(a > b, a, b), (0,))
    return r * 0

wrap = {"composite": lambda f: lax.composite(f, name="my.body"),
        "sequential_vmap": jax.custom_batching.sequential_vmap,
        "none": lambda f: folded}[WRAPPER]
jax.jit(lambda x: wrap(body)(x)).lower(jnp.ones((2, 3))).compile()
print("jax", jax.__version__, WRAPPER, "compiled")
"""

crashed = False
for wrapper in ("composite", "sequential_vmap", "none"):
    child = subprocess.run([sys.executable, "-c", f"WRAPPER = {wrapper!r}\n" + CHILD],
                           capture_output=True, text=True)
    print(child.stdout.strip() or f"{wrapper}: the compile ended with exit status "
                                    f"{child.returncode}")
    crashed |= child.returncode != 0
sys.exit(1 if crashed else 0)
