"""Testing a transformation: a hand-written batching function against ``jax.vmap``.

Run: ``python -m pytest -q examples/test_batching_example.py``. A failure prints the shrunk
program, its inputs, and the leaf that differs.
"""

import jax
import jax.numpy as jnp
import numpy as np
from hypothesis import HealthCheck, given, settings

import grammar
from extract.cases import assert_outputs_match, cases


def my_vmap(fn):
    """The tool under test: ``fn`` over the leading axis of every argument, one row at a
    time, the results stacked."""
    def batched(*args):
        size = jax.tree_util.tree_leaves(args)[0].shape[0]
        rows = [fn(*jax.tree_util.tree_map(lambda x, i=i: x[i], args)) for i in range(size)]
        return jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *rows)
    return batched


# jax.vmap has no batching rule for cholesky_update, and random bits drawn from a batch of
# rbg keys are not those of each key alone (jax.random promises exact vmap for threefry
# only): leave those ops out of the draw.
OPS = [name for name, op in grammar.OPS.items()
       if name != "cholesky_update" and "random" not in op.categories]

# Recommended settings: no deadline (a case compiles in milliseconds to seconds); few
# examples and a fixed seed on CI; raise max_examples to search for longer.
CI = settings(max_examples=6, deadline=None, derandomize=True,
              suppress_health_check=[HealthCheck.too_slow])


@CI
@given(cases(ops=OPS, max_statements=5))
def test_my_vmap_matches_jax_vmap(case):
    # A batch of three: the drawn inputs (shrunk on failure) and two from the input recipe.
    rows = [case.inputs, case.recipe_inputs(1), case.recipe_inputs(2)]
    batch = jax.tree_util.tree_map(lambda *xs: np.stack(xs), *rows)
    want = jax.jit(jax.vmap(case.fn))(*batch)
    got = jax.jit(my_vmap(case.fn))(*batch)
    assert_outputs_match(got, want, where="my_vmap against jax.vmap")
