"""Complex arithmetic and FFTs.

``FFT_OPS`` are real-valued signal-processing templates: each goes to the complex domain and
back in one expression (magnitudes as ``real(z * conj(z))``, smooth everywhere, rather than
``abs(z)``, whose derivative is undefined at zero).  ``COMPLEX_VALUES`` take and make
``complex64`` values: parameters, ``lax.complex``, arithmetic, FFTs and the ways back to
float32.
"""

from __future__ import annotations

from grammar.opdef import Env, Op, Sig, choice, expression, same
from grammar.syntax import DType, binop, call
from grammar.types import TensorType

FFT = ("complex", "fft")
F32 = frozenset({"float32"})


def _power(z):
    return call("jnp.real", binop(z, "*", call("jnp.conj", z)))


def _power_spectrum(a, p, r):
    return _power(call("jnp.fft.rfft", a[0], axis=-1))


def _power_rule(inputs, params, regions):
    x = inputs[0]
    return (x.with_shape(x.shape[:-1] + (x.shape[-1] // 2 + 1,)),)


def _filter_signature(draw, x: TensorType, env: Env) -> Sig:
    return Sig((x,), {"gain": choice(draw, [0.5, 2.0, -1.0]), "n": x.shape[-1]})


def _lowpass(a, p, r):
    """rfft, scale, irfft back to the original length: a real round trip."""
    spectrum = binop(call("jnp.fft.rfft", a[0], axis=-1), "*", p["gain"])
    return call("jnp.fft.irfft", spectrum, n=p["n"], axis=-1)


def _correlate(a, p, r):
    """Circular cross-correlation through the full complex FFT."""
    product = binop(call("jnp.fft.fft", a[0], axis=-1), "*",
                    call("jnp.conj", call("jnp.fft.fft", a[1], axis=-1)))
    return call("jnp.real", call("jnp.fft.ifft", product, axis=-1))


def _fft2_roundtrip(a, p, r):
    return call("jnp.real", call("jnp.fft.ifft2", call("jnp.fft.fft2", a[0])))


def _complex_product(a, p, r):
    """The imaginary part of (x + iy)(y + ix), built with lax.complex."""
    return call("jnp.imag", binop(call("lax.complex", a[0], a[1]), "*",
                                  call("lax.complex", a[1], a[0])))


C64 = frozenset({"complex64"})


def _complex_signature(draw, x: TensorType, env: Env) -> Sig:
    """A complex value from two float32 arrays, or from one and zeros."""
    return Sig((x, x) if choice(draw, [True, False]) else (x,))


def _to_complex(a, p, r):
    if len(a) == 2:
        return call("lax.complex", a[0], a[1])
    return call("jnp.asarray", a[0], dtype=DType("complex64"))


def _unary_complex(name: str, fn: str, real: bool = False) -> Op:
    """An op on a complex value: complex to complex, or to its real (float32) part."""
    rule = (lambda i, p, r: (i[0].with_dtype("float32"),)) if real else same
    return Op(name, "complex", ("complex", "elementwise"), C64, (0, 4),
              lambda draw, x, env: Sig((x,)), rule,
              expression(lambda a, p, r: call(fn, a[0])), calls=(fn,))


def _complex_binary(name: str, op: str) -> Op:
    return Op(name, "complex", ("complex", "elementwise"), C64, (0, 4),
              lambda draw, x, env: Sig((x, x)), same,
              expression(lambda a, p, r: binop(a[0], op, a[1])), calls=())


def _fft_of_complex(fn: str):
    return expression(lambda a, p, r: call(fn, a[0], axis=-1))


COMPLEX_VALUES = [
    Op("to_complex", "complex", ("complex",), F32, (0, 4), _complex_signature,
       lambda i, p, r: (i[0].with_dtype("complex64"),), expression(_to_complex),
       calls=("lax.complex", "jnp.asarray")),
    _unary_complex("real", "jnp.real", real=True),
    _unary_complex("imag", "jnp.imag", real=True),
    _unary_complex("complex_abs", "jnp.abs", real=True),
    _unary_complex("angle", "jnp.angle", real=True),
    _unary_complex("conj", "jnp.conj"),
    _unary_complex("complex_exp", "jnp.exp"),
    _complex_binary("complex_add", "+"),
    _complex_binary("complex_multiply", "*"),
    Op("complex_fft", "fft", FFT, C64, (1, 4), lambda draw, x, env: Sig((x,)), same,
       _fft_of_complex("jnp.fft.fft"), calls=("jnp.fft.fft",)),
    Op("complex_ifft", "fft", FFT, C64, (1, 4), lambda draw, x, env: Sig((x,)), same,
       _fft_of_complex("jnp.fft.ifft"), calls=("jnp.fft.ifft",)),
]
"""Complex values as parameters and intermediates: ``complex64`` arguments, or values made
with ``lax.complex``, through complex arithmetic and FFTs, back to float32 with ``real``,
``imag``, ``abs`` or ``angle``.  The extractor differentiates only float arguments and
outputs, so a gradient flows through complex intermediates to real losses only."""

FFT_OPS = [
    Op("power_spectrum", "fft", FFT, F32, (1, 4), lambda draw, x, env: Sig((x,)),
       _power_rule, expression(_power_spectrum), calls=("jnp.fft.rfft", "jnp.real", "jnp.conj")),
    Op("rfft_filter", "fft", FFT, F32, (1, 4), _filter_signature, same, expression(_lowpass),
       calls=("jnp.fft.rfft", "jnp.fft.irfft")),
    Op("fft_correlate", "fft", FFT, F32, (1, 4), lambda draw, x, env: Sig((x, x)), same,
       expression(_correlate), calls=("jnp.fft.fft", "jnp.fft.ifft", "jnp.conj", "jnp.real")),
    Op("fft2_roundtrip", "fft", FFT, F32, (2, 4), lambda draw, x, env: Sig((x,)), same,
       expression(_fft2_roundtrip), calls=("jnp.fft.fft2", "jnp.fft.ifft2", "jnp.real")),
    Op("complex_product", "binary", ("complex", "elementwise"), F32, (0, 4),
       lambda draw, x, env: Sig((x, x)), same, expression(_complex_product),
       calls=("lax.complex", "jnp.imag")),
]
