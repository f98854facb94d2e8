"""Contractions: dot, matmul, einsum, lax.dot_general, outer, and convolutions.

A convolution is not ``batchable``: under the symbolic_shape entry's ``jax.vmap`` a kernel
that varies per example becomes a ``feature_group_count`` of the symbolic batch size, which
``jax.export`` refuses ("Convolutions with non-static strides, dilation, feature_group_count,
or batch_group_count").
"""

from __future__ import annotations

from math import ceil, prod

from grammar.opdef import Env, Op, Sig, expression, flag, integer, permutation
from grammar.syntax import binop, call
from grammar.types import FLOAT, NUMERIC, TensorType

MATMUL = ("matmul",)
_LETTERS = "ijklmnop"


def _free_dim(draw, env: Env, *sizes: int) -> int:
    """A new dimension small enough to keep the output within the element budget."""
    budget = env.limits.max_elements // max(1, prod(sizes))
    return integer(draw, 1, max(1, min(env.limits.max_dim, budget)))


def _dot_signature(draw, x: TensorType, env: Env) -> Sig:
    n = x.shape[-1]
    y = (n,) if flag(draw) else (n, _free_dim(draw, env, *x.shape[:-1]))
    return Sig((x, x.with_shape(y)))


def _dot_rule(inputs, params, regions):
    x, y = inputs
    return (x.with_shape(x.shape[:-1] + y.shape[1:]),)


def _matmul_signature(draw, x: TensorType, env: Env) -> Sig:
    p = _free_dim(draw, env, *x.shape[:-1])
    return Sig((x, x.with_shape(x.shape[:-2] + (x.shape[-1], p))), {"form": "op" if flag(draw)
                                                                     else "fn"})


def _matmul_rule(inputs, params, regions):
    x, y = inputs
    return (x.with_shape(x.shape[:-1] + y.shape[-1:]),)


def _einsum_signature(draw, x: TensorType, env: Env) -> Sig:
    """Random valid subscripts: shared letters contract or batch; new letters are free."""
    xl = _LETTERS[:x.rank]
    sizes = dict(zip(xl, x.shape, strict=True))
    if flag(draw):  # one operand: transpose and/or sum out
        out = [c for c in xl if flag(draw)]
        out = [out[i] for i in permutation(draw, len(out))]
        return Sig((x,), {"spec": f"{xl}->{''.join(out)}"})
    shared = [c for c in xl if flag(draw)] or [xl[-1]]
    new = list(_LETTERS[x.rank:x.rank + integer(draw, 0, 2)])
    grown = x.size
    for c in new:
        sizes[c] = _free_dim(draw, env, grown)
        grown *= sizes[c]
    yl = shared + new
    yl = [yl[i] for i in permutation(draw, len(yl))]
    out = [c for c in xl + "".join(new) if c not in shared or flag(draw)]
    out = [out[i] for i in permutation(draw, len(out))]
    y = x.with_shape(tuple(sizes[c] for c in yl))
    return Sig((x, y), {"spec": f"{xl},{''.join(yl)}->{''.join(out)}"})


def _einsum_rule(inputs, params, regions):
    sizes: dict[str, int] = {}
    lhs, out = params["spec"].split("->")
    for letters, t in zip(lhs.split(","), inputs, strict=True):
        sizes.update(zip(letters, t.shape, strict=True))
    return (inputs[0].with_shape(tuple(sizes[c] for c in out)),)


def _dot_general_signature(draw, x: TensorType, env: Env) -> Sig:
    """Pick contracting and batch dims of x; y holds them (same sizes) plus free dims."""
    roles = [integer(draw, 0, 2) for _ in range(x.rank)]  # 0 free, 1 contract, 2 batch
    if 1 not in roles:
        roles[-1] = 1
    contract = [i for i, r in enumerate(roles) if r == 1]
    batch = [i for i, r in enumerate(roles) if r == 2]
    free_x = [i for i, r in enumerate(roles) if r == 0]
    ydims = [("b", i) for i in batch] + [("c", i) for i in contract]
    ydims += [("f", None)] * integer(draw, 0, 1)
    order = permutation(draw, len(ydims))
    ydims = [ydims[i] for i in order]
    # batch dims must come in the same relative order on both sides.
    ybatch_pos = sorted(j for j, (k, _) in enumerate(ydims) if k == "b")
    for j, i in zip(ybatch_pos, batch, strict=True):
        ydims[j] = ("b", i)
    budget_base = prod(x.shape[i] for i in batch + free_x)
    yshape = [x.shape[i] if k != "f" else _free_dim(draw, env, budget_base) for k, i in ydims]
    y_contract = tuple(ydims.index(("c", i)) for i in contract)
    y_batch = tuple(ydims.index(("b", i)) for i in batch)
    dn = ((tuple(contract), y_contract), (tuple(batch), y_batch))
    return Sig((x, x.with_shape(tuple(yshape))), {"dimension_numbers": dn})


def _dot_general_rule(inputs, params, regions):
    x, y = inputs
    (xc, yc), (xb, yb) = params["dimension_numbers"]
    free_x = [d for i, d in enumerate(x.shape) if i not in xc and i not in xb]
    free_y = [d for i, d in enumerate(y.shape) if i not in yc and i not in yb]
    return (x.with_shape(tuple(x.shape[i] for i in xb) + tuple(free_x) + tuple(free_y)),)


def _outer_signature(draw, x: TensorType, env: Env) -> Sig:
    return Sig((x, x.with_shape((_free_dim(draw, env, x.size),))))


def _conv_signature(draw, x: TensorType, env: Env) -> Sig:
    """x is (N, C, *spatial); the kernel (O, C, *window) fits inside the spatial dims."""
    window = tuple(integer(draw, 1, d) for d in x.shape[2:])
    kernel = x.with_shape((integer(draw, 1, 4), x.shape[1]) + window)
    strides = tuple(integer(draw, 1, 2) for _ in window)
    return Sig((x, kernel), {"window_strides": strides,
                             "padding": "SAME" if flag(draw) else "VALID"})


def _conv_rule(inputs, params, regions):
    x, w = inputs
    spatial = []
    for d, k, s in zip(x.shape[2:], w.shape[2:], params["window_strides"], strict=True):
        spatial.append(ceil(d / s) if params["padding"] == "SAME" else (d - k) // s + 1)
    return (x.with_shape((x.shape[0], w.shape[0], *spatial)),)


def _conv_transpose_signature(draw, x: TensorType, env: Env) -> Sig:
    """x is (N, *spatial, C) as flax writes it; the kernel is (*window, C, O)."""
    window = tuple(integer(draw, 1, 3) for _ in x.shape[1:-1])
    kernel = x.with_shape(window + (x.shape[-1], integer(draw, 1, 4)))
    strides = tuple(integer(draw, 1, 2) for _ in window)
    return Sig((x, kernel), {"strides": strides, "padding": "SAME" if flag(draw) else "VALID",
                             "dimension_numbers": _TRANSPOSE_LAYOUTS[x.rank]})


_TRANSPOSE_LAYOUTS = {3: ("NWC", "WIO", "NWC"), 4: ("NHWC", "HWIO", "NHWC")}


def _conv_transpose_rule(inputs, params, regions):
    """Each spatial dim grows by its stride: ``d * s``, plus what the window overhangs
    (``k - s``) with VALID padding."""
    x, w = inputs
    spatial = [d * s + (max(k - s, 0) if params["padding"] == "VALID" else 0)
               for d, k, s in zip(x.shape[1:-1], w.shape[:-2], params["strides"], strict=True)]
    return (x.with_shape((x.shape[0], *spatial, w.shape[-1])),)


LINALG = [
    Op("dot", "linalg", MATMUL, NUMERIC, (1, 2), _dot_signature, _dot_rule,
       expression(lambda a, p, r: call("jnp.dot", a[0], a[1])), calls=("jnp.dot",)),
    Op("matmul", "linalg", MATMUL, NUMERIC, (2, 4), _matmul_signature, _matmul_rule,
       expression(lambda a, p, r: binop(a[0], "@", a[1]) if p["form"] == "op"
                  else call("jnp.matmul", a[0], a[1])), calls=("jnp.matmul",)),
    Op("einsum", "linalg", MATMUL + ("einsum",), NUMERIC, (1, 3), _einsum_signature,
       _einsum_rule, expression(lambda a, p, r: call("jnp.einsum", p["spec"], *a)),
       calls=("jnp.einsum",)),
    Op("dot_general", "linalg", MATMUL, NUMERIC, (1, 3), _dot_general_signature,
       _dot_general_rule,
       expression(lambda a, p, r: call("lax.dot_general", a[0], a[1], p["dimension_numbers"])),
       calls=("lax.dot_general",)),
    Op("outer", "linalg", MATMUL, FLOAT, (1, 1), _outer_signature,
       lambda i, p, r: (i[0].with_shape((i[0].size, i[1].size)),),
       expression(lambda a, p, r: call("jnp.outer", a[0], a[1])), calls=("jnp.outer",)),
    Op("conv", "linalg", ("conv",), FLOAT, (3, 4), _conv_signature, _conv_rule,
       expression(lambda a, p, r: call("lax.conv_general_dilated", a[0], a[1],
                                       p["window_strides"], p["padding"])),
       calls=("lax.conv_general_dilated",), batchable=False),
    Op("conv_transpose", "linalg", ("conv",), FLOAT, (3, 4), _conv_transpose_signature,
       _conv_transpose_rule,
       expression(lambda a, p, r: call("lax.conv_transpose", a[0], a[1], p["strides"],
                                       p["padding"],
                                       dimension_numbers=p["dimension_numbers"])),
       calls=("lax.conv_transpose",), batchable=False),
]
