"""``jax.grad`` through ``jax.checkpoint(..., policy=jax.checkpoint_policies.everything_saveable)``
of a function with a complex intermediate raises ``TypeError: reduce_precision does not
accept dtype complex64`` (run with python).

Without the policy, or with the intermediate real, the gradient is computed.  Found by
jaxsmith (``grad_trace:TypeError:reduce_precision does not accept dtype``, a
``checkpoint_policy`` region holding an ``rfft`` power spectrum, in the 10-minute default
run with ``--seed 20261130``), minimised by hand; jax 0.10.2 and 0.12.0.1.  Exits 1 while
the error is there.
"""
import sys

import jax
import jax.numpy as jnp


def f(t, x):
    def body(c):
        z = jnp.fft.rfft(x)
        return jnp.real(z * jnp.conj(z))
    return jax.checkpoint(body, policy=jax.checkpoint_policies.everything_saveable)(t)

print("jax", jax.__version__)
try:
    print(jax.grad(lambda t, x: jnp.sum(f(t, x)), argnums=1)(1.0, jnp.ones(4)))
except TypeError as e:
    print("TypeError", str(e)[:150])
    sys.exit(1)
