"""Finding 15: jax.export over a symbolic batch of a vmapped shard_map whose body ends in a
non-tiled lax.all_gather emits a broadcast_in_dim with a dynamic result shape, which the
StableHLO verifier refuses ("Cannot lower jaxpr with verifier errors"). Exits 1 while the
bug is there."""
import os
import sys

os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "")
                           + " --xla_force_host_platform_device_count=8")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
from jax import export, lax  # noqa: E402

mesh = jax.make_mesh((2, 4), ("x", "y"),
                     axis_types=(jax.sharding.AxisType.Auto, jax.sharding.AxisType.Auto))


def example(x):
    return jax.shard_map(lambda c: lax.all_gather(c, "x"), mesh=mesh, in_specs=jax.P("x"),
                         out_specs=jax.P("x"), check_vma=False)(x)


def f(xs):
    return jax.vmap(example)(xs)


print("jax", jax.__version__)
print("jit at b=3:", jax.jit(f)(jnp.ones((3, 2, 7))).shape)
try:
    export.export(jax.jit(f))(*export.symbolic_args_specs(
        [jax.ShapeDtypeStruct((3, 2, 7), jnp.float32)], ["b, 2, 7"]))
except Exception as e:
    print(type(e).__name__, str(e).splitlines()[0], "\n", str(e).splitlines()[1][:300])
    sys.exit(1)
print("exported fine")
