"""Matrix decompositions and solvers of ``jnp.linalg``, ``jax.scipy.linalg`` and ``lax.linalg``.

Every matrix operand is guarded into a well-conditioned one by construction (``Domain``):
``tanh(a) + 2n I`` is strictly diagonally dominant, so nonsingular with a condition number
below 3, and its symmetric form ``tanh(a + aᵀ) + 2n I`` is positive definite.  Values and
gradients stay finite, and the oracles compare numbers that mean something.  Only values
that do not depend on a sign or order convention are returned by the ops that could have
one (eigenvalues, singular values), except where the convention is LAPACK's own and the
same on every path (``eigh``, ``qr``, ``lu``).
"""

from __future__ import annotations

from grammar.opdef import Domain, Env, Op, Sig, expression, flag, integer
from grammar.syntax import call
from grammar.types import TensorType

DECOMP = ("linalg", "decomposition")
F32 = frozenset({"float32"})
WELL, SPD = Domain.WELL_CONDITIONED, Domain.SPD


def _square(t: TensorType) -> bool:
    return t.shape[-1] == t.shape[-2]


def _square_example(draw, env: Env) -> TensorType:
    n = integer(draw, 1, env.limits.max_dim)
    return TensorType((n, n), "float32")


def _rhs_signature(draw, a: TensorType, env: Env) -> Sig:
    """A right-hand side (n, k) for the square matrix ``a``."""
    n = a.shape[0]
    k = integer(draw, 1, max(1, min(env.limits.max_dim, env.limits.max_elements // n)))
    return Sig((a, a.with_shape((n, k))), {"lower": flag(draw)})


def _matrix(name: str, template, rule, domain: Domain, calls: tuple[str, ...],
            signature=lambda draw, x, env: Sig((x,))) -> Op:
    return Op(name, "decomposition", DECOMP, F32, (2, 2), signature, rule,
              expression(template), calls=calls, domain=(domain,), when=_square,
              example=_square_example)


def _vector(t: TensorType) -> TensorType:
    return t.with_shape((t.shape[0],))


def _scalar(t: TensorType) -> TensorType:
    return t.with_shape(())


DECOMPOSITIONS = [
    _matrix("cholesky", lambda a, p, r: call("jnp.linalg.cholesky", a[0]),
            lambda i, p, r: (i[0],), SPD, ("jnp.linalg.cholesky",)),
    _matrix("triangular_solve", lambda a, p, r: call(
        "lax.linalg.triangular_solve", a[0], a[1], left_side=True, lower=p["lower"]),
        lambda i, p, r: (i[1],), WELL, ("lax.linalg.triangular_solve",), _rhs_signature),
    _matrix("solve_triangular", lambda a, p, r: call(
        "jax.scipy.linalg.solve_triangular", a[0], a[1], lower=p["lower"]),
        lambda i, p, r: (i[1],), WELL, ("jax.scipy.linalg.solve_triangular",), _rhs_signature),
    _matrix("solve", lambda a, p, r: call("jnp.linalg.solve", a[0], a[1]),
            lambda i, p, r: (i[1],), WELL, ("jnp.linalg.solve",), _rhs_signature),
    _matrix("inv", lambda a, p, r: call("jnp.linalg.inv", a[0]), lambda i, p, r: (i[0],),
            WELL, ("jnp.linalg.inv",)),
    _matrix("det", lambda a, p, r: call("jnp.linalg.det", a[0]),
            lambda i, p, r: (_scalar(i[0]),), WELL, ("jnp.linalg.det",)),
    _matrix("slogdet", lambda a, p, r: call("jnp.linalg.slogdet", a[0]),
            lambda i, p, r: (_scalar(i[0]), _scalar(i[0])), WELL, ("jnp.linalg.slogdet",)),
    _matrix("eigvalsh", lambda a, p, r: call("jnp.linalg.eigvalsh", a[0]),
            lambda i, p, r: (_vector(i[0]),), SPD, ("jnp.linalg.eigvalsh",)),
    _matrix("eigh", lambda a, p, r: call("jnp.linalg.eigh", a[0]),
            lambda i, p, r: (_vector(i[0]), i[0]), SPD, ("jnp.linalg.eigh",)),
    _matrix("svdvals", lambda a, p, r: call("jnp.linalg.svd", a[0], compute_uv=False),
            lambda i, p, r: (_vector(i[0]),), WELL, ("jnp.linalg.svd",)),
    _matrix("qr", lambda a, p, r: call("jnp.linalg.qr", a[0]), lambda i, p, r: (i[0], i[0]),
            WELL, ("jnp.linalg.qr",)),
    _matrix("lu", lambda a, p, r: call("jax.scipy.linalg.lu", a[0]),
            lambda i, p, r: (i[0], i[0], i[0]), WELL, ("jax.scipy.linalg.lu",)),
    _matrix("lu_solve", lambda a, p, r: call(
        "jax.scipy.linalg.lu_solve", call("jax.scipy.linalg.lu_factor", a[0]), a[1]),
        lambda i, p, r: (i[1],), WELL,
        ("jax.scipy.linalg.lu_solve", "jax.scipy.linalg.lu_factor"), _rhs_signature),
]
