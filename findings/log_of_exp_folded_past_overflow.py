"""XLA's algebraic simplifier folds ``log(exp(x))`` to ``x`` (jaxlib 0.10.2), also where
``exp(x)`` overflows to inf, so that ``log(exp(x))`` is finite under jax.jit and inf op by op,
with the pass off, and in the StableHLO spec. jaxlib 0.12 no longer folds it.
Run with plain python; exits 1 while jit gives a finite value where exp overflows.
"""
import sys

import jax
import jax.numpy as jnp
import numpy as np


def f(x):
    return jnp.log(jnp.exp(x))


x = np.array([1.0, 12.0, 100.0], np.float16)  # exp(12) and exp(100) overflow float16
jitted = np.asarray(jax.jit(f)(x))
with jax.disable_jit():
    eager = np.asarray(f(x))
print("jax", jax.__version__)
print("jit   log(exp(x)):", jitted)
print("eager log(exp(x)):", eager)
sys.exit(1 if np.isfinite(jitted[1:]).any() and not np.isfinite(eager[1:]).any() else 0)
