"""jax.nn.dot_product_attention of bfloat16 arrays whose sequence length is 1 fails to
compile on XLA:CPU (jaxlib 0.10.2): "INVALID_ARGUMENT: Algorithm not supported by the
ElementalIrEmitter: ALG_DOT_BF16_BF16_F32" (shapes (1, 1, 1, 1) and (1, 1, 1, 2) fail,
(1, 2, 1, 1) and (1, 2, 1, 4) compile). Run with plain python; exits 1 while the compile
fails.
"""
import sys

import jax
import jax.numpy as jnp


def f(q):
    return jax.nn.dot_product_attention(q, q, q, is_causal=False)


print("jax", jax.__version__)
try:
    jax.jit(f).lower(jax.ShapeDtypeStruct((1, 1, 1, 1), jnp.bfloat16)).compile()
    jax.jit(f).lower(jax.ShapeDtypeStruct((1, 2, 1, 4), jnp.bfloat16)).compile()
except Exception as e:  # noqa: BLE001 - the failure is the finding
    print(f"{type(e).__name__}: {str(e).splitlines()[0]}")
    sys.exit(1)
print("compiles")
