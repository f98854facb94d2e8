"""Complex arithmetic and FFTs, as real-valued signal-processing code uses them.

Values and parameters stay real (``args`` and the input recipe know no complex dtype yet):
each template goes to the complex domain and back in one expression, so the programs hold
``fft``, ``complex``, ``real``, ``imag`` and complex multiplies while their outputs and
gradients are real.  Magnitudes are taken as ``real(z * conj(z))``, smooth everywhere,
rather than ``abs(z)``, whose derivative is undefined at zero.
"""

from __future__ import annotations

from grammar.opdef import Env, Op, Sig, choice, expression, same
from grammar.syntax import binop, call
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
