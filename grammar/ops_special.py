"""Special functions and the activations of model code: unary and binary elementwise ops.

Each guards its operands into its domain (``Domain``) so that values and gradients stay
finite: ``lgamma`` and ``digamma`` away from their poles, ``arccosh`` and ``zeta`` above one,
``logit`` and ``ndtri`` inside (0, 1).
"""

from __future__ import annotations

from grammar.opdef import Domain, Op, Sig, choice, expression, same
from grammar.ops_elementwise import ELEMENTWISE, binary_signature, broadcast_rule
from grammar.syntax import call
from grammar.types import FLOAT, NUMERIC

SPECIAL = ELEMENTWISE + ("special",)
ACTIVATION = ELEMENTWISE + ("activation",)
F32 = frozenset({"float32"})


def _unary(name: str, fn: str, categories: tuple[str, ...], domain: Domain = Domain.ANY,
           dtypes=FLOAT, differentiable: bool = True) -> Op:
    return Op(name, "unary", categories + ("unary",), dtypes, (0, 4),
              signature=lambda draw, x, env: Sig((x,)), rule=same,
              render=expression(lambda a, p, r: call(fn, a[0])), calls=(fn,),
              domain=(domain,), differentiable=differentiable)


def _binary(name: str, fn: str, first: Domain = Domain.ANY, second: Domain = Domain.ANY,
            dtypes=FLOAT, differentiable: bool = True, known_failure: str | None = None,
            forward: bool = True) -> Op:
    return Op(name, "binary", SPECIAL, dtypes, (0, 4),
              signature=lambda draw, x, env: binary_signature(draw, x, env, second),
              rule=broadcast_rule, render=expression(lambda a, p, r: call(fn, a[0], a[1])),
              calls=(fn,), domain=(first, second), differentiable=differentiable,
              known_failure=known_failure, forward=forward)


def _leaky_relu_signature(draw, x, env) -> Sig:
    return Sig((x,), {"negative_slope": choice(draw, [0.01, 0.2, 0.1])})


def _betainc_signature(draw, x, env) -> Sig:
    """``a`` and ``b`` are literals of at least one: JAX differentiates ``betainc`` in ``x``
    only, and the derivative in ``x`` stays finite at the ends of (0, 1)."""
    return Sig((x,), {"a": choice(draw, [2.0, 1.5, 3.0, 1.0]),
                      "b": choice(draw, [1.5, 2.0, 1.0, 4.0])})


SPECIAL_OPS = [
    _unary("lgamma", "lax.lgamma", SPECIAL, Domain.POSITIVE),
    _unary("digamma", "lax.digamma", SPECIAL, Domain.POSITIVE),
    _unary("erfc", "lax.erfc", SPECIAL),
    _unary("erf_inv", "lax.erf_inv", SPECIAL, Domain.UNIT),
    _unary("gammaln", "jax.scipy.special.gammaln", SPECIAL, Domain.POSITIVE),
    _unary("i0e", "jax.scipy.special.i0e", SPECIAL),
    _unary("i1e", "jax.scipy.special.i1e", SPECIAL),
    _unary("exp2", "jnp.exp2", SPECIAL),
    _unary("log2", "jnp.log2", SPECIAL, Domain.POSITIVE),
    _unary("log10", "jnp.log10", SPECIAL, Domain.POSITIVE),
    _unary("arcsinh", "jnp.arcsinh", SPECIAL),
    _unary("arccosh", "jnp.arccosh", SPECIAL, Domain.ABOVE_ONE),
    _unary("arctanh", "jnp.arctanh", SPECIAL, Domain.UNIT),
    _unary("logit", "jax.scipy.special.logit", SPECIAL, Domain.PROBABILITY),
    _unary("ndtri", "jax.scipy.special.ndtri", SPECIAL, Domain.PROBABILITY, F32),
    _unary("log_ndtr", "jax.scipy.special.log_ndtr", SPECIAL, dtypes=F32),
    _unary("entr", "jax.scipy.special.entr", SPECIAL, Domain.POSITIVE),
    _unary("sinc", "jnp.sinc", SPECIAL),
    _binary("logaddexp", "jnp.logaddexp"),
    _binary("logaddexp2", "jnp.logaddexp2"),
    _binary("hypot", "jnp.hypot", second=Domain.NONZERO),
    _binary("copysign", "jnp.copysign", second=Domain.NONZERO),
    _binary("nextafter", "jnp.nextafter", differentiable=False,
            known_failure="grad_rule_missing", forward=False),
    _binary("xlogy", "jax.scipy.special.xlogy", second=Domain.POSITIVE),
    _binary("xlog1py", "jax.scipy.special.xlog1py", second=Domain.POSITIVE),
    _binary("zeta", "jax.scipy.special.zeta", Domain.ABOVE_ONE, Domain.POSITIVE),
    _binary("gammainc", "jax.scipy.special.gammainc", Domain.POSITIVE, Domain.POSITIVE),
    _binary("fmod", "jnp.fmod", second=Domain.NONZERO, dtypes=NUMERIC),
    _binary("gammaincc", "jax.scipy.special.gammaincc", Domain.POSITIVE, Domain.POSITIVE),
    Op("betainc", "unary", SPECIAL + ("unary",), F32, (0, 4), _betainc_signature, same,
       expression(lambda a, p, r: call("jax.scipy.special.betainc", p["a"], p["b"], a[0])),
       calls=("jax.scipy.special.betainc",), domain=(Domain.PROBABILITY,)),
    _unary("elu", "jax.nn.elu", ACTIVATION),
    _unary("selu", "jax.nn.selu", ACTIVATION),
    _unary("celu", "jax.nn.celu", ACTIVATION),
    _unary("relu6", "jax.nn.relu6", ACTIVATION),
    _unary("hard_tanh", "jax.nn.hard_tanh", ACTIVATION),
    _unary("mish", "jax.nn.mish", ACTIVATION),
    _unary("log_sigmoid", "jax.nn.log_sigmoid", ACTIVATION),
    _unary("soft_sign", "jax.nn.soft_sign", ACTIVATION),
    Op("leaky_relu", "unary", ACTIVATION + ("unary",), FLOAT, (0, 4), _leaky_relu_signature,
       same, expression(lambda a, p, r: call("jax.nn.leaky_relu", a[0], **p)),
       calls=("jax.nn.leaky_relu",)),
]
