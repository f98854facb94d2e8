"""Test-wide settings: Hypothesis profiles and strict JAX rank promotion."""

import os
import tempfile

# As in the extraction workers (extract.pool.DEVICES): programs over a device mesh run here too.
os.environ["XLA_FLAGS"] = " ".join(
    [os.environ.get("XLA_FLAGS", ""), "--xla_force_host_platform_device_count=8"]).strip()

# The real-world op weights' cache (fuzz.campaign.op_weights) of the runs the tests make.
os.environ["JAXSMITH_CACHE"] = tempfile.mkdtemp(prefix="jaxsmith-test-cache-")

import jax  # noqa: E402
import pytest  # noqa: E402
from hypothesis import HealthCheck, settings

jax.config.update("jax_numpy_rank_promotion", "raise")

settings.register_profile(
    "ci",
    max_examples=25,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "dev",
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "long",
    max_examples=2000,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile(os.environ.get("JAXSMITH_PROFILE", "ci"))


@pytest.fixture
def eager_always(monkeypatch):
    """``jit_eager`` runs eager mode on every program, not one in ``EAGER_EVERY``: for
    programs planted to compute otherwise on tracers, which its screen traces like jit."""
    import extract.oracles

    monkeypatch.setattr(extract.oracles, "EAGER_EVERY", 1)
