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

import libcst as cst

from grammar.opdef import Domain, Env, Op, Sig, choice, expression, flag, integer
from grammar.syntax import assign, binop, call, method, subscript
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


# -- LAPACK kernels without a derivative rule, and outputs made convention-free -----------
#
# Where a decomposition's factors carry a sign or order convention (Schur vectors, Householder
# reflectors, pivots), the op returns a quantity that does not: the product of the factors
# (the input again, to rounding), absolute values, or sorted eigenvalues.

NO_RULE = "grad_rule_missing"


def _names(out: str, *parts: str) -> list[str]:
    return [f"{out}_{p}" for p in parts]


def _swap(x) -> cst.BaseExpression:
    return call("jnp.swapaxes", x, -1, -2)


def _no_rule(name: str, ranks, signature, rule, render, calls, domain=(), when=None,
             example=None, batchable=True) -> Op:
    """An op JAX cannot differentiate in either mode: ``Differentiation rule for ... not
    implemented`` (extract.failures: ``grad_rule_missing``)."""
    return Op(name, "decomposition", DECOMP, F32, ranks, signature, rule, render, calls=calls,
              domain=domain, differentiable=False, forward=False, known_failure=NO_RULE,
              when=when, example=example, batchable=batchable)


def _eigvals(a, p, r):
    """Sorted real eigenvalues of ``tanh(a) / 2n + diag(1..n)``: its Gershgorin discs (radius
    below 1/2, centres 1 apart) are disjoint, so each holds one real, simple eigenvalue, and
    the eigenvalues are smooth in ``a``."""
    n = p["n"]
    shifted = binop(binop(call("jnp.tanh", a[0]), "*", 0.5 / n), "+",
                    call("jnp.diag", call("jnp.arange", 1.0, n + 1.0)))
    return call("jnp.sort", call("jnp.real", call("jnp.linalg.eigvals", shifted)))


def _schur(out, a, p, r):
    t, z = _names(out[0], "t", "z")
    return [assign([t, z], call("jax.scipy.linalg.schur", a[0])),
            assign(out, binop(binop(cst.Name(z), "@", cst.Name(t)), "@", _swap(cst.Name(z))))]


def _qr_pivoted(out, a, p, r):
    """``q @ r`` is ``a[:, piv]``; undoing the permutation gives ``a`` whatever the pivots."""
    q, rr, piv = _names(out[0], "q", "r", "p")
    return [assign([q, rr, piv], call("jax.scipy.linalg.qr", a[0], pivoting=True)),
            assign(out, call("jnp.take", binop(cst.Name(q), "@", cst.Name(rr)),
                             call("jnp.argsort", cst.Name(piv)), axis=-1))]


def _qr_raw(out, a, p, r):
    """``geqrf`` by ``jnp.linalg.qr(mode="raw")``, then Q applied to R (``ormqr``) or formed
    (``householder_product``): both give ``a`` back."""
    h, tau, ht = _names(out[0], "h", "tau", "ht")
    upper = call("jnp.triu", cst.Name(ht))
    if p["apply"] == "ormqr":
        value = call("lax.linalg.ormqr", cst.Name(ht), cst.Name(tau), upper)
    else:
        value = binop(call("lax.linalg.householder_product", cst.Name(ht), cst.Name(tau)), "@",
                      upper)
    return [assign([h, tau], call("jnp.linalg.qr", a[0], mode="raw")),
            assign([ht], _swap(cst.Name(h))), assign(out, value)]


def _tridiagonal(out, a, p, r):
    """The diagonal and the off-diagonal's magnitudes: what does not depend on the signs of
    the Householder vectors."""
    arr, e, taus = _names(out[0], "a", "e", "taus")
    return [assign([arr, out[0], e, taus], call("lax.linalg.tridiagonal", a[0],
                                                lower=p["lower"])),
            assign([out[1]], call("jnp.abs", cst.Name(e)))]


def _tridiagonal_solve_signature(draw, dl: TensorType, env: Env) -> Sig:
    n = dl.shape[0]
    k = integer(draw, 1, max(1, min(env.limits.max_dim, env.limits.max_elements // n)))
    return Sig((dl, dl, dl, dl.with_shape((n, k))))


def _tridiagonal_solve(a, p, r):
    """Off-diagonals in (-1, 1), their outer ends zero as LAPACK's gtsv expects, and a
    diagonal of at least 3: strictly diagonally dominant, so nonsingular."""
    lower = method(subscript(cst.Attribute(call("jnp.tanh", a[0]), cst.Name("at")), [0]),
                   "set", 0.0)
    upper = method(subscript(cst.Attribute(call("jnp.tanh", a[2]), cst.Name("at")), [-1]),
                   "set", 0.0)
    return call("lax.linalg.tridiagonal_solve", lower,
                binop(call("jnp.abs", a[1]), "+", 3.0), upper, a[3])


def _symmetric_product_signature(draw, a: TensorType, env: Env) -> Sig:
    n = a.shape[0]
    return Sig((a, a.with_shape((n, n))), {"alpha": choice(draw, [1.0, 0.5, -2.0]),
                                           "beta": choice(draw, [0.0, 1.0, 0.5])})


def _symmetric_product(a, p, r):
    """``alpha a aᵀ + beta c`` for a symmetric ``c``, with both triangles written."""
    c = binop(a[1], "+", _swap(a[1]))
    return call("lax.linalg.symmetric_product", a[0], c, alpha=p["alpha"], beta=p["beta"],
                symmetrize_output=True)


def _cholesky_update(a, p, r):
    """An upper-triangular factor with a dominant positive diagonal, updated by ``w wᵀ``:
    the updated matrix stays positive definite."""
    n = p["n"]
    factor = binop(call("jnp.triu", call("jnp.tanh", a[0])), "+",
                   binop(2.0 * n, "*", call("jnp.eye", n)))
    return call("lax.linalg.cholesky_update", factor, a[1])


def _with_n(signature):
    def wrapped(draw, x: TensorType, env: Env) -> Sig:
        sig = signature(draw, x, env)
        return Sig(sig.inputs, {**sig.params, "n": x.shape[-1]}, sig.regions)
    return wrapped


def _same_rule(inputs, params, regions):
    return (inputs[0],)


LAPACK_EXTRA = [
    Op("eigvals", "decomposition", DECOMP, F32, (2, 2), _with_n(lambda d, x, e: Sig((x,))),
       lambda i, p, r: (_vector(i[0]),), expression(_eigvals),
       calls=("jnp.linalg.eigvals", "jnp.sort", "jnp.real", "jnp.diag", "jnp.arange"),
       when=_square, example=_square_example, forward=False),  # grad of its jvp: grad_eig
    Op("qr_pivoted", "decomposition", DECOMP, F32, (2, 2), lambda d, x, e: Sig((x,)),
       _same_rule, _qr_pivoted, calls=("jax.scipy.linalg.qr", "jnp.take", "jnp.argsort"),
       domain=(WELL,), when=_square, example=_square_example),
    Op("tridiagonal_solve", "decomposition", DECOMP, F32, (1, 1),
       _tridiagonal_solve_signature, lambda i, p, r: (i[3],), expression(_tridiagonal_solve),
       calls=("lax.linalg.tridiagonal_solve",)),
    _no_rule("schur", (2, 2), lambda d, x, e: Sig((x,)), _same_rule, _schur,
             ("jax.scipy.linalg.schur",), (WELL,), _square, _square_example),
    _no_rule("hessenberg", (2, 2), lambda d, x, e: Sig((x,)), _same_rule,
             expression(lambda a, p, r: call("jnp.abs", call("jax.scipy.linalg.hessenberg",
                                                             a[0]))),
             ("jax.scipy.linalg.hessenberg",), (WELL,), _square, _square_example),
    _no_rule("qr_raw", (2, 2), lambda d, x, e: Sig((x,), {"apply": choice(
        d, ["ormqr", "householder_product"])}), _same_rule, _qr_raw,
        ("jnp.linalg.qr", "lax.linalg.ormqr", "lax.linalg.householder_product", "jnp.triu"),
        (WELL,), _square, _square_example),
    _no_rule("tridiagonal", (2, 2), lambda d, x, e: Sig((x,), {"lower": flag(d)}),
             lambda i, p, r: (_vector(i[0]), i[0].with_shape((i[0].shape[0] - 1,))),
             _tridiagonal, ("lax.linalg.tridiagonal",), (SPD,),
             lambda t: _square(t) and t.shape[0] >= 2,
             lambda d, e: TensorType((integer(d, 2, max(2, e.limits.max_dim)),) * 2,
                                     "float32")),
    _no_rule("symmetric_product", (2, 2), _symmetric_product_signature,
             lambda i, p, r: (i[1],), expression(_symmetric_product),
             ("lax.linalg.symmetric_product",)),
    _no_rule("cholesky_update", (2, 2), _with_n(lambda d, x, e: Sig((x, _vector(x)))),
             _same_rule, expression(_cholesky_update),
             ("lax.linalg.cholesky_update", "jnp.triu"), (), _square, _square_example,
             batchable=False),  # "Batching rule for 'cholesky_update' not implemented"
]
