"""For the examples: 8 virtual CPU devices, so that programs over a device mesh (categories
``shard_map``, ``sharding``) run. The flag must be set before JAX starts its backend; a test
suite of your own would do the same in its conftest.py."""

import os

if "--xla_force_host_platform_device_count" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = " ".join(
        [os.environ.get("XLA_FLAGS", ""), "--xla_force_host_platform_device_count=8"]).strip()
