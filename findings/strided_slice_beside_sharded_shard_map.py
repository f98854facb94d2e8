"""XLA's SPMD partitioner produces a module its own verifier refuses (INTERNAL: during
context [hlo verifier]: Expected instruction to have shape equal to f32[2,1], actual shape
is f32[1,1] for a slice={[0:4:3], ...}) when a strided slice x[3::3] of an array is taken
beside a jax.shard_map that reads the same array sharded over a mesh axis of 4 devices
(in_specs=P("y")); with in_specs=P() it compiles (run with python).

Found by jaxsmith in a 30-minute default run (seed 7) as compile:JaxRuntimeError (hlo
verifier), reduced during the run from 26 statements to 2; jax 0.10.2 and 0.12.0.1. Exits 1
while the compile fails, 0 once it compiles.
"""
import os
import sys

os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "")
                           + " --xla_force_host_platform_device_count=8").strip()

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

mesh = jax.make_mesh((2, 4), ("x", "y"), axis_types=(jax.sharding.AxisType.Auto,) * 2)


def f(x):
    every_third = x[3::3]
    mapped = jax.shard_map(lambda c: c, mesh=mesh, in_specs=jax.P("y"), out_specs=jax.P(),
                           check_vma=False)(x)
    return every_third, mapped


print("jax", jax.__version__)
try:
    print(jax.jit(f)(jnp.ones((4, 1), jnp.float32)))
except jax.errors.JaxRuntimeError as e:
    print(type(e).__name__, str(e).splitlines()[0][:200])
    sys.exit(1)
