"""jit(exp(cholesky(x))) on a matrix that is not positive definite (run with plain python).

jnp.linalg.cholesky marks a failed factorisation with NaN; exp(NaN) is NaN. Under jax.jit,
with exp fused into cholesky's epilogue, XLA:CPU returns exp(0) = 1 everywhere instead.
Exits 1 while jit and eager disagree.
"""
import sys

import jax
import jax.numpy as jnp
import numpy as np

x = np.array([[1.0, 2.0], [2.0, 1.0]], np.float32)  # symmetric, eigenvalues 3 and -1


def f(x):
    return jnp.exp(jnp.linalg.cholesky(x))


jit = np.asarray(jax.jit(f)(x))
with jax.disable_jit():
    eager = np.asarray(f(jnp.asarray(x)))
print("jax", jax.__version__, jax.default_backend())
print("cholesky alone, jit:", np.asarray(jax.jit(jnp.linalg.cholesky)(x)).ravel())
print("exp(cholesky), jit:  ", jit.ravel())
print("exp(cholesky), eager:", eager.ravel())
sys.exit(0 if np.array_equal(np.isnan(jit), np.isnan(eager)) else 1)
