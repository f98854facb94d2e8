"""A ``jax.shard_map`` over a ``(4, 2)`` mesh cannot take the output of one over a ``(2, 4)``
mesh of the same 8 devices: ``IndivisibleError: shape=... is incompatible with
mesh_shape=...`` (run with python).  On jax 0.10.2 the program fails eagerly and runs under
``jax.jit``; on 0.12.0.1 it is the other way round.

Found by jaxsmith's ``jit_eager`` oracle on two ``shard_map`` ops with meshes of different
shapes (since then every program uses one mesh shape), minimised by hand.  Exits 1 while
either mode fails.
"""
import os
import sys

os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "")
                           + " --xla_force_host_platform_device_count=8").strip()

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

AUTO = (jax.sharding.AxisType.Auto,) * 2


def f(x):
    wide = jax.make_mesh((2, 4), ("x", "y"), axis_types=AUTO)
    tall = jax.make_mesh((4, 2), ("x", "y"), axis_types=AUTO)
    a = jax.shard_map(lambda c: -c, mesh=wide, in_specs=jax.P("x"), out_specs=jax.P("x"))(x)
    return jax.shard_map(lambda c: -c, mesh=tall, in_specs=jax.P("x"), out_specs=jax.P("x"))(a)


x = jnp.arange(4.0)
print("jax", jax.__version__)
failed = False
for mode, fn in (("jit", jax.jit(f)), ("eager", f)):
    try:
        print(mode, fn(x))
    except Exception as e:  # noqa: BLE001 - any error is the finding
        print(mode, type(e).__name__, str(e).splitlines()[0][:200])
        failed = True
sys.exit(1 if failed else 0)
