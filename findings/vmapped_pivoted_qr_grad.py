"""jax.grad through jax.vmap of a pivoted QR (jax.scipy.linalg.qr(..., pivoting=True))
raises TypeError: "All inputs to triangular_solve must have the same number of batch
dimensions, but got [1, 2]" (run with python). The gradient of one matrix, and the vmapped
forward pass, work. Found by jaxsmith in a 30-minute default run (seed 7) as
grad_trace:TypeError, reduced from 47 statements to 1 during the run; jax 0.10.2 and
0.12.0.1. Exits 1 while the gradient raises, 0 once it is computed.
"""
import sys

import jax
import jax.numpy as jnp


def f(w):
    q, r, p = jax.scipy.linalg.qr(w + 4.0 * jnp.eye(2), pivoting=True)
    return (q @ r).sum()


w = jnp.ones((3, 2, 2))
print("jax", jax.__version__, "one matrix:", jax.grad(f)(w[0]).shape)
try:
    print("vmapped:", jax.grad(lambda w: jax.vmap(f)(w).sum())(w).shape)
except TypeError as e:
    print("vmapped: TypeError:", str(e).splitlines()[0])
    sys.exit(1)
