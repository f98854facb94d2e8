"""jax.grad of a function that passes an integer array through lax.optimization_barrier
beside its float argument, and reduces that integer array inside lax.cond, raises
TypeError: "Error interpreting argument to reshape as a JAX value ... ad_util.Zero"
(run with python); jax.jit of the same function runs. Found by jaxsmith in a 300-second
default run (seed 2112) as grad_trace:TypeError, reduced from 50 statements to 3 during the
run. jax 0.10.2 only: 0.12.0.1 computes the gradient. Exits 1 while the gradient raises.
"""
import sys

import jax
import jax.numpy as jnp
from jax import lax


def f(x):
    out, ints = lax.optimization_barrier((x, jnp.ones((7, 1), jnp.int32)))
    lax.cond(ints.sum() > 0, lambda c: c.prod(axis=1, keepdims=True), lambda c: c, ints)
    return out


print("jax", jax.__version__, "jit:", jax.jit(f)(1.0))
try:
    print("grad:", jax.grad(f)(1.0))
except TypeError as e:
    print("grad: TypeError:", str(e).splitlines()[0][:120])
    sys.exit(1)
