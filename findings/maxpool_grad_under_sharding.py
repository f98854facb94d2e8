"""The reverse-mode derivative of max pooling is wrong when the pooled axis is split over 2
devices and the forward result is computed in the same ``jax.jit`` (run with python).

``f(x) = reduce_window(x, -inf, max, window (2,), stride (1,), 'SAME') = [max(x0, x1), x1]``,
its output constrained to ``P('x')`` on a 2-device mesh.  At ``x = [2, 1]`` (no tie) the
Jacobian is the identity, so ``J^T v = v``; ``jax.jit(lambda x, v: (f(x), vjp(f, x)(v)))``
returns ``[0, 1]`` for ``v = [1, 0]``: the cotangent of ``y0`` goes to ``x1``.  The jvp,
the vjp jitted alone, eager mode and the program without the constraint are right, and so
are central differences in float64; ``jax.jit(jax.value_and_grad(lambda x: f(x) @ v))`` is
wrong too.  The partitioned HLO splits ``select-and-scatter`` (max pooling's transpose)
with a halo exchange: XLA's SPMD partitioner, by all appearances.

Found by jaxsmith's ``autodiff`` oracle (jvp against vjp: -429.7 against -116.2) on a
generated program with max pooling under a ``jit`` with ``in_shardings``, in a 300-program
run (seed 301); minimised with a helper.  Wrong on jax 0.10.2 and 0.12.0.1 (CPU, 2 virtual
devices).  Exits 1 while the bug is there.
"""
import os
import sys

os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "")
                           + " --xla_force_host_platform_device_count=2").strip()

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from jax import lax  # noqa: E402

mesh = jax.make_mesh((2,), ("x",), axis_types=(jax.sharding.AxisType.Auto,))


def f(x):  # [max(x0, x1), x1]
    y = lax.reduce_window(x, -jnp.inf, lax.max, (2,), (1,), "SAME")
    return lax.with_sharding_constraint(y, jax.NamedSharding(mesh, jax.P("x")))


x = np.array([2.0, 1.0], np.float32)
u = v = np.array([1.0, 0.0], np.float32)
_, ju = jax.jvp(f, (x,), (u,))
_, jtv = jax.jit(lambda x, v: (f(x), jax.vjp(f, x)[1](v)[0]))(x, v)
print("jax", jax.__version__, "| J^T v =", np.asarray(jtv), "(want", v, ")")
print(f"<v, J u> (jvp) = {float(v @ ju)}, <J^T v, u> (vjp) = {float(jtv @ u)}")
sys.exit(1 if not np.allclose(jtv, v) else 0)
