"""The short, plain-JAX reproducer of a report: the reduced program, its inputs written out,
and the one check that fails, in about 20 lines a maintainer reads at a glance.

``repro.py`` carries the input recipe, the comparison and the oracle's machinery (a few
hundred lines); a reduced program rarely needs them. Here the inputs are literal arrays (at
most :data:`MAX_ELEMENTS` elements in all) and the check is JAX's own: a compile for an
exception or crash, eager against jit for ``jit_eager``, and for ``interpreter`` (whose
reference cannot be written short) the same jit compiled without the culprit pass. Where no
short form says the same (pytrees, symbolic shapes, meshes, large inputs, other oracles)
there is none, and the report shows ``repro.py``. ``python -m fuzz triage`` runs the script
and keeps it only if it fails as ``repro.py`` does.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import black
import numpy as np

from extract.args import flatten_args, is_flat, normalize_args
from extract.failures import FORWARD_STAGES
from extract.inputs import RECIPE, make_inputs
from extract.values import INPUT_SCALE, is_float, tolerance
from fuzz.triage.oracle_repro import x64_prelude

__all__ = ["MAX_ELEMENTS", "REFERENCE_MARK", "reference_script", "short_reproducer"]

MAX_ELEMENTS = 64
"""The most input elements written out as literals."""

_HEADER = "import sys\n\nimport numpy as np\n"
_BLACK = black.Mode(line_length=100)


def _literal(x: np.ndarray) -> str:
    """``x`` as a NumPy expression that gives it back exactly."""
    dtype = x.dtype.name
    if is_float(x.dtype):
        as32 = x.astype(np.float32) if dtype == "bfloat16" else x
        values = ", ".join(
            "np.nan" if np.isnan(v) else ("np.inf" if v > 0 else "-np.inf") if np.isinf(v)
            else _number(v) for v in as32.ravel())
        maker = "jnp.bfloat16" if dtype == "bfloat16" else f"np.{dtype}"
    else:
        values = ", ".join(str(v) for v in x.ravel().tolist())
        maker = "np.bool_" if dtype == "bool" else f"np.{dtype}"
    return f"np.array([{values}], {maker}).reshape({tuple(x.shape)})"


def _number(v: float) -> str:
    """The shortest exact literal of a finite float: positional unless it is huge or tiny
    (the largest float32, a subnormal)."""
    if v != 0 and not 1e-4 <= abs(v) < 1e16:
        return np.format_float_scientific(v, unique=True, trim="0")
    return np.format_float_positional(v, unique=True, trim="0")


def _specs(args: Sequence) -> str:
    return ", ".join(f"jax.ShapeDtypeStruct({tuple(s)}, jnp.{'bool_' if d == 'bool' else d})"
                     for s, d in flatten_args(args))


def _inputs(args: Sequence, seed: int, recipe: str) -> str | None:
    arrays = make_inputs(args, seed, recipe)
    if sum(x.size for x in arrays) > MAX_ELEMENTS:
        return None
    return "\n".join(f"x{i} = {_literal(x)}" for i, x in enumerate(arrays)) + \
        f"\nxs = [{', '.join(f'x{i}' for i in range(len(arrays)))}]"


def _compare(dtypes: Sequence[str]) -> str:
    """Lines that exit 1 where ``got`` and ``want`` (lists of output leaves) differ."""
    tol = {d: (tolerance(d).rtol, tolerance(d).atol) for d in dtypes if is_float(np.dtype(d))}
    return f'''TOL = {tol!r}  # (rtol, atol): |got - want| <= atol + rtol * max(max|want|, 1)
bad = False
for k, (g, w) in enumerate(zip(got, want)):
    rtol, atol = TOL.get(np.asarray(w).dtype.name, (0, 0))
    g, w = np.asarray(g).astype(complex), np.asarray(w).astype(complex)
    limit = atol + rtol * max(np.max(np.abs(w[np.isfinite(w)]), initial=0), {INPUT_SCALE!r})
    ok = np.array_equal(np.isnan(g), np.isnan(w)) and np.allclose(g, w, 0, limit, True)
    print(f"output {{k}}: {{g.real.ravel()[:8]}} against {{w.real.ravel()[:8]}}:", ok)
    bad |= not ok
sys.exit(1 if bad else 0)
'''


def short_reproducer(record: dict[str, Any], culprit: Sequence[str] = ()) -> str | None:
    """The short reproducer of the failure folder whose record is ``record`` (its failure
    blamed on XLA passes ``culprit``, if any), laid out by ``black``, or ``None`` where there
    is no short form."""
    script = _script(record, culprit)
    return None if script is None else black.format_str(script, mode=_BLACK)


def _script(record: dict[str, Any], culprit: Sequence[str]) -> str | None:
    failure = record.get("failure") or {}
    stage, source = str(failure.get("stage", "")), str(record.get("source", ""))
    args, entry = normalize_args(record.get("args") or []), record.get("entry", "f")
    if not is_flat(args) or record.get("polymorphic_shapes") or "make_mesh" in source:
        return None
    head = _HEADER + source.rstrip() + "\n" + x64_prelude(args) + "\n\n"
    if stage in ("trace", "lower", "compile") or (
            record.get("status") in ("crashed", "timeout") and stage in FORWARD_STAGES):
        return head + f"jax.jit({entry}).lower({_specs(args)}).compile()  # raises, or crashes\n"
    inputs = _inputs(args, int(record.get("inputs_seed") or 0),
                     record.get("inputs_recipe") or RECIPE)
    if inputs is None:
        return None
    dtypes = list(dict.fromkeys(  # an output's dtype need not be an argument's
        [d for _, d in flatten_args(args)] + ["float32", "float16", "bfloat16"]))
    if stage == "run":
        return head + inputs + f"\nprint(jax.jit({entry})(*xs))  # raises\n"
    if stage == "jit_eager":
        return head + inputs + f'''
got = jax.tree.leaves(jax.jit({entry})(*xs))
with jax.disable_jit():
    want = jax.tree.leaves({entry}(*map(jnp.asarray, xs)))  # op by op
''' + _compare(dtypes)
    if stage == "interpreter" and culprit:
        return head + inputs + f'''
lowered = jax.jit({entry}).lower(*xs)
got = jax.tree.leaves(lowered.compile()(*xs))
want = jax.tree.leaves(lowered.compile({{"xla_disable_hlo_passes": {",".join(culprit)!r}}})(*xs))
''' + _compare(dtypes)
    return None


REFERENCE_MARK = "float64 reference: "
"""What starts the line of JSON that :func:`reference_script` prints."""

_SIDES = {"jit_eager": "\nwith jax.disable_jit():\n    eager = jax.tree.leaves({entry}(*xs))"}


def reference_script(record: dict[str, Any]) -> str | None:
    """A script that prints, after :data:`REFERENCE_MARK`, a JSON list per real floating
    output: the
    compiled program's values, eager's (for ``jit_eager``) or None, and the reference: the
    same program on float64 arguments under ``jax.enable_x64``, where it runs. None where the
    record has no short form (see :func:`short_reproducer`) or its failure is not a value
    discrepancy."""
    failure = record.get("failure") or {}
    stage, source = str(failure.get("stage", "")), str(record.get("source", ""))
    args, entry = normalize_args(record.get("args") or []), record.get("entry", "f")
    if ":value:" not in str(failure.get("signature", "")) or not is_flat(args) or \
            record.get("polymorphic_shapes") or "make_mesh" in source:
        return None
    inputs = _inputs(args, int(record.get("inputs_seed") or 0),
                     record.get("inputs_recipe") or RECIPE)
    if inputs is None:
        return None
    eager = _SIDES.get(stage, "\neager = None").format(entry=entry)
    return _HEADER + source.rstrip() + "\n\n\n" + inputs + f"""
import json

got = jax.tree.leaves(jax.jit({entry})(*xs)){eager}
with jax.enable_x64(True):
    wide = [x.astype(np.float64) if x.dtype.kind == "f" or x.dtype.name == "bfloat16" else x
            for x in xs]
    ref = jax.tree.leaves(jax.jit({entry})(*wide))


def real(v):
    v = np.asarray(v)
    return None if v.dtype.kind == "c" else v.astype(np.float64).ravel().tolist()


print({REFERENCE_MARK!r} + json.dumps([[np.asarray(g).dtype.name, real(g),
                                        eager and real(eager[k]), real(r)]
                                       for k, (g, r) in enumerate(zip(got, ref))]))
"""
