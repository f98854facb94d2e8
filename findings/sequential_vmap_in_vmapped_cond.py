"""``jax.vmap`` of a ``lax.cond`` with a batched predicate raises an internal
``AssertionError: [True]`` when one branch calls a ``jax.custom_batching.sequential_vmap``
function on an unbatched value (run with python).

The function itself runs, jitted or not; only its vmap fails.  Found by jaxsmith's vmap
oracle (``vmap:AssertionError:[True]``, the ``sequential_vmap`` op in a ``cond`` branch),
minimised by hand to this, on jax 0.10.2 and 0.12.0.1.  Exits 1 while the error is there.
"""
import sys

import jax
import jax.numpy as jnp
from jax import lax


def f(p, x):
    def keep(c):
        return c

    def other(c):
        def first(v):
            return jnp.take(v, jnp.array([0]), axis=0)
        jax.custom_batching.sequential_vmap(first)(lax.stop_gradient(x))
        return c

    return lax.cond(p, keep, other, x)


print("jax", jax.__version__, f(True, jnp.ones(3)))
try:
    jax.vmap(f)(jnp.array([True, False]), jnp.ones((2, 3)))
except AssertionError as e:
    print("AssertionError", e)
    sys.exit(1)
