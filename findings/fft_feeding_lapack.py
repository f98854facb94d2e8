"""XLA:CPU fails at run time when an FFT's result feeds a LAPACK solve (run with python).

``lax.linalg.triangular_solve`` (and ``jnp.linalg.solve``) of a matrix computed by
``jnp.fft.rfft`` compiles, then raises ``INTERNAL: RET_CHECK failure (.../cpu/runtime/
fft_thunk.cc:168) LayoutUtil::IsMonotonicWithDim0Major(input_shape_.layout())`` when run:
the FFT thunk requires a row-major operand layout that the compiled program does not give
it. The same function with ``@`` in place of the solve runs. Found by jaxsmith
(``python -m fuzz --seed 2026 --categories complex``, program #0, stage ``run``, minimised
to three statements, then by hand to this). Exits 1 while the error is there.
"""
import sys

import jax
import jax.numpy as jnp
from jax import lax


def f(x, b):
    a = jnp.real(jnp.fft.rfft(x, axis=-1))
    return lax.linalg.triangular_solve(a, b, left_side=True, lower=False)


x = jnp.arange(4.0, dtype=jnp.float32).reshape(2, 2) / 7 + 0.25
b = jnp.ones((2, 1), jnp.float32)
print("jax", jax.__version__)
try:
    print(jax.jit(f)(x, b))
except Exception as e:  # noqa: BLE001 - any error is the finding
    print(type(e).__name__, str(e).splitlines()[0][:300])
    sys.exit(1)
print("no error: fixed")
