"""XLA's algebraic simplifier folds ``abs(x) >= 0`` to true for signed integers, but
``abs(INT_MIN)`` is ``INT_MIN`` (two's complement wraps, in XLA as in NumPy), so
``jnp.abs(x) >= 0`` is True under jax.jit where op by op, and with the pass off, it is False.
Run with plain python; exits 1 while jit says True for INT_MIN.
"""
import sys

import jax
import jax.numpy as jnp
import numpy as np


def f(x):
    return jnp.abs(x) >= 0, jnp.abs(x)


x = np.array([np.iinfo(np.int32).min, -3, 0, 5], np.int32)
jit_ge, jit_abs = (np.asarray(v) for v in jax.jit(f)(x))
with jax.disable_jit():
    eager_ge, _ = (np.asarray(v) for v in f(x))
print("jax", jax.__version__)
print("abs(x)            :", jit_abs)
print("jit   abs(x) >= 0 :", jit_ge)
print("eager abs(x) >= 0 :", eager_ge)
sys.exit(1 if bool(jit_ge[0]) and jit_abs[0] < 0 else 0)
