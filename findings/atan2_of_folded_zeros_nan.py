"""lax.atan2(0, 0) is NaN under jax.jit on XLA:CPU (jaxlib 0.10.2) when the zeros reach the
fused atan2 as constants that HLO constant folding did not see (here they come out of a
lax.optimization_barrier); op by op, and with the zeros passed as an argument, it is 0, as
IEEE 754 and numpy.arctan2 say. jnp.angle of a complex zero goes the same way. Run with plain
python; exits 1 while jit gives NaN.
"""
import sys

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax


def f(x):
    y = lax.optimization_barrier(jnp.zeros((3,), jnp.float32))
    return lax.atan2(y, y), jnp.angle(lax.complex(y, y))


jit = [np.asarray(v) for v in jax.jit(f)(1.0)]
with jax.disable_jit():
    eager = [np.asarray(v) for v in f(1.0)]
print("jax", jax.__version__)
print("jit   atan2(0, 0), angle(0j):", jit)
print("eager atan2(0, 0), angle(0j):", eager)
sys.exit(1 if any(np.isnan(v).any() for v in jit) else 0)
