"""Standalone reproducers for failures that need the program's inputs (an oracle's, or one
raised while running the program): run with plain ``python`` (JAX, NumPy and ml_dtypes
only, no jaxsmith), they rebuild the inputs; for an oracle they print both values and their
difference and exit 1 while the discrepancy is there (0 once it is gone), for a run they
raise the failure.

The input recipe, the comparison and the interpreter driver are not written twice: their
source is taken from ``extract.inputs``, ``extract.values`` and ``extract.interpreter``.
"""

from __future__ import annotations

import ast
import importlib.util
import inspect
import re
import textwrap
from pathlib import Path
from typing import Any

from extract import args as _args
from extract import inputs as _inputs
from extract import oracles as _oracles
from extract import pool as _pool
from extract import values as _values
from extract.backends import Backend

__all__ = ["device_prelude", "entry_on_leaves", "oracle_reproducer", "x64_prelude"]


def _source(*objects: Any) -> str:
    return "\n\n".join(textwrap.dedent(inspect.getsource(o)) for o in objects)


def device_prelude(source: str) -> str:
    """Lines that give a program over a device mesh the workers' virtual CPU devices (they
    must run before ``import jax``); empty for a single-device program."""
    if "jax.make_mesh" not in source:
        return ""
    flag = f"--xla_force_host_platform_device_count={_pool.DEVICES}"
    return ("import os  # the program runs over a mesh of virtual CPU devices\n"
            f"os.environ['XLA_FLAGS'] = (os.environ.get('XLA_FLAGS', '') + ' {flag}').strip()\n")


def x64_prelude(args: list) -> str:
    """The line that turns ``jax_enable_x64`` on for a program with a 64-bit argument, as
    the extractor runs it (placed after the program's ``import jax``); empty otherwise."""
    if not _args.needs_x64(_args.flatten_args(_args.normalize_args(args))):
        return ""
    return '\njax.config.update("jax_enable_x64", True)  # a 64-bit program, as jaxsmith ran it\n'


def entry_on_leaves(entry: str, args: list) -> tuple[str, str, list]:
    """How a reproducer calls ``entry`` on one array per leaf of ``args``: (definitions to
    place before the main block, the function expression, the leaves as JSON).  A flat
    program is called as it is; a pytree one through ``extract.args.unflatten_args``."""
    tree = _args.normalize_args(args)
    leaves = _args.args_json(_args.flatten_args(tree))
    if _args.is_flat(tree):
        return "", entry, leaves
    defs = ("\n\nfrom collections.abc import Mapping, Sequence\n\n"
            + _source(_args.is_leaf, _args.unflatten_args)
            + f"\n\nTREE = {_args.args_json(tree)!r}  # the entry's pytree arguments\n")
    return defs, f"lambda *leaves: {entry}(*unflatten_args(TREE, leaves))", leaves


def _module_text(name: str) -> str:
    """Module ``name``'s source, read from its file, not imported (``extract.pallas_reference``
    imports JAX, which the fuzz loop's parent does not load)."""
    return Path(importlib.util.find_spec(name).origin).read_text(encoding="utf-8")


def _module_all(name: str) -> tuple[str, ...]:
    """Module ``name``'s ``__all__``, read from its source."""
    return next(tuple(ast.literal_eval(node.value)) for node in ast.parse(_module_text(name)).body
                if isinstance(node, ast.Assign) and ast.unparse(node.targets[0]) == "__all__")


def _module_body(name: str) -> str:
    """Module ``name``'s source without its docstring, ``__future__`` import and ``__all__``."""
    body = re.sub(r"^__all__ = \[.*?\]\n", "", _module_text(name).split('"""', 2)[2],
                  flags=re.M | re.S)
    return "\n".join(ln for ln in body.splitlines() if not ln.startswith("from __future__"))


_COMMON = '''
import sys
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import ml_dtypes  # noqa: F401
import numpy as np

# -- the input recipe {recipe} (extract/inputs.py) --
{words}


def make_inputs(args, seed, special=False):
    out = []
    for i, (s, d) in enumerate(args):
        n = word_count(tuple(s), np.dtype(d))
        x = from_words(_words(seed, i, n), tuple(s), np.dtype(d))
        out.append(with_specials(x, _special_words(seed, i, n)) if special else x)
    return out


# -- the comparison (extract/values.py): norm-wise, NaN == NaN, ints exact --
{compare}


def leaves(x):
    return [np.asarray(v) for v in jax.tree_util.tree_leaves(x)]


def report(got_name, got, want_name, want):
    bad = 0
    for k, (g, w) in enumerate(zip(got, want)):
        tol = Tolerance(*TOLERANCES.get(np.dtype(w.dtype).name, TOLERANCES["float32"]))
        problem = compare_arrays(g, w, tol)  # integers and bools: exact, whatever tol
        ulps = ulps_apart(g, w) if problem else None
        far = "" if ulps is None else f"; ulps apart: {{ulps}}"
        print(f"output {{k}} {{w.dtype}}{{list(w.shape)}}: {{problem or 'same'}}{{far}}")
        print(f"  {{got_name}}: {{np.array2string(np.asarray(g).reshape(-1)[:16])}}")
        print(f"  {{want_name}}: {{np.array2string(np.asarray(w).reshape(-1)[:16])}}")
        bad |= problem is not None
    return bad
'''

_BLOCKS = {
    "run": '''
    out = leaves(jax.jit(fn)(*inputs))  # the failure is raised here
    print("no error: the compiled program ran;", [o.shape for o in out])
    bad = 0''',
    "grad_run": '''
    fa = [i for i, (_, d) in enumerate(ARGS) if is_float(np.dtype(d))]

    def loss(*xs):  # as the extractor: the sum of the floating outputs, as float32
        args = list(inputs)
        for i, x in zip(fa, xs):
            args[i] = x
        return sum(jnp.sum(o).astype(jnp.float32) for o in jax.tree_util.tree_leaves(fn(*args))
                   if jnp.issubdtype(o.dtype, jnp.floating))

    out = leaves(jax.jit(jax.grad(loss, argnums=tuple(range(len(fa)))))(
        *[inputs[i] for i in fa]))  # the failure is raised here
    print("no error: the compiled gradient ran;", [o.shape for o in out])
    bad = 0''',
    "jit_eager": '''
    got = leaves(jax.jit(fn)(*inputs))
    with jax.disable_jit():
        want = leaves(fn(*[jax.device_put(x) for x in inputs]))
    bad = report("jit  ", got, "eager", want)''',
    "unsimplified": '''
    lowered = jax.jit(fn).lower(*inputs)
    got = leaves(lowered.compile()(*inputs))
    off = {"xla_disable_hlo_passes": ",".join(SIMPLIFICATION_PASSES)}
    want = leaves(lowered.compile(compiler_options=off)(*inputs))
    bad = report("jit         ", got, "unsimplified", want)''',
    "vmap": '''
    batch = [inputs] + [make_inputs(ARGS, (SEED * 64 + 3 * 8 + b) % 2**63, SPECIAL)
                        for b in (1, 2)]
    stacked = [np.stack(xs) for xs in zip(*batch)]
    rows = leaves(jax.jit(jax.vmap(fn))(*stacked))
    bad = 0
    for b, xs in enumerate(batch):
        print(f"-- example {b}")
        bad |= report("vmap row", [r[b] for r in rows], "f(example)", leaves(jax.jit(fn)(*xs)))''',
    "interpreter": '''
    lowered = jax.jit(fn, keep_unused=True).lower(*inputs)
    want = run_module(lowered.as_text(), inputs)
    got = leaves(lowered.compile()(*inputs))
    bad = report("XLA        ", got, "interpreter", want)''',
    "autodiff": '''
    fa = [i for i, (_, d) in enumerate(ARGS) if is_float(np.dtype(d))]
    outs = leaves(jax.jit(fn)(*inputs))
    keep = [is_float(o.dtype) for o in outs]
    tangents = make_inputs([ARGS[i] for i in fa], (SEED * 64 + 1 * 8) % 2**63)
    rtol = max(GRAD_RTOL.get(np.dtype(d).name, 2e-3) for d in
               [ARGS[i][1] for i in fa] + [o.dtype for o, k in zip(outs, keep) if k])

    def floats_only(*xs):
        args = list(inputs)
        for i, x in zip(fa, xs):
            args[i] = x
        return [o for o, k in zip(jax.tree_util.tree_leaves(fn(*args)), keep) if k]

    bad = 0
    if CHECK == "finite_differences":  # jax.grad of the summed outputs against FD along u
        u = [t if np.dtype(ARGS[i][1]) == np.float32 else np.zeros_like(t)
             for i, t in zip(fa, tangents)]
        total = lambda *xs: sum(jnp.sum(o).astype(jnp.float32) for o in floats_only(*xs))
        grads = leaves(jax.jit(jax.grad(total, argnums=tuple(range(len(fa)))))(
            *[inputs[i] for i in fa]))
        reverse = sum(float(np.sum(g.astype(np.float64) * t)) for g, t in zip(grads, u))
        scale = sum(float(np.sum(np.abs(g.astype(np.float64) * t))) for g, t in zip(grads, u))

        def summed(eps):
            moved = list(inputs)
            for i, t in zip(fa, u):
                moved[i] = (inputs[i].astype(np.float64) + eps * t).astype(inputs[i].dtype)
            return sum(float(np.sum(o, dtype=np.float64))
                       for o, k in zip(leaves(jax.jit(fn)(*moved)), keep) if k)

        fd = [(summed(e) - summed(-e)) / (2 * e) for e in (FD_EPS, FD_EPS / 2)]
        size = max(scale, abs(fd[0]), abs(fd[1]))
        floor = 16 * 2.0**-24 * sum(float(np.abs(o.astype(np.float64)).sum())
                                    for o, k in zip(outs, keep) if k) / FD_EPS
        print(f"reverse mode <grad, u> = {reverse!r}")
        print(f"central differences    = {fd[1]!r} (eps {FD_EPS / 2}; at eps {FD_EPS}: {fd[0]!r})")
        print(f"difference {abs(reverse - fd[1]):.3g}, tolerance {rtol} x {size:.3g} + {floor:.3g}")
        bad = abs(reverse - fd[1]) > rtol * size + floor
    else:  # <v, J u> from jax.jvp against <J^T v, u> from jax.vjp
        cot = make_inputs([(o.shape, o.dtype.name) for o, k in zip(outs, keep) if k],
                          (SEED * 64 + 2 * 8) % 2**63)

        def both(primals, tans, cots):
            _, forward = jax.jvp(floats_only, tuple(primals), tuple(tans))
            _, pull = jax.vjp(floats_only, *primals)
            return forward, pull(list(cots))

        forward, backward = jax.jit(both)([inputs[i] for i in fa], tangents, cot)
        lhs = sum(float(np.sum(v.astype(np.float64) * j)) for v, j in zip(cot, leaves(forward)))
        rhs = sum(float(np.sum(j.astype(np.float64) * t)) for j, t in zip(leaves(backward),
                                                                       tangents))
        size = max(sum(float(np.sum(np.abs(v.astype(np.float64) * j)))
                       for v, j in zip(cot, leaves(forward))),
                   sum(float(np.sum(np.abs(j.astype(np.float64) * t)))
                       for j, t in zip(leaves(backward), tangents)), 1e-6)
        print(f"<v, J u> (jax.jvp)   = {lhs!r}")
        print(f"<J^T v, u> (jax.vjp) = {rhs!r}")
        print(f"difference {abs(lhs - rhs):.3g}, tolerance {rtol} x {size:.3g}")
        bad = abs(lhs - rhs) > rtol * size''',
    "backend": '''
    backend = importlib.import_module(BACKEND.split(":")[0])
    for part in BACKEND.split(":")[1].split("."):
        backend = getattr(backend, part)
    lowered = jax.jit(fn, keep_unused=True).lower(*inputs)
    want = leaves(lowered.compile()(*inputs))
    given = fn if TAKES == "callable" else lowered.as_text()
    got = [np.asarray(x) for x in backend(given, [np.array(x) for x in inputs])]
    bad = report(f"{BACKEND:<11}", got, "XLA        ", want)''',
    "pallas": '''
    got = leaves(jax.jit(fn)(*inputs))
    real_pl, reference = pl, types.SimpleNamespace(**{n: globals()[n] for n in PALLAS_NAMES})
    globals()["pl"] = reference  # every kernel over jnp blocks, as the oracle runs it
    want = leaves(jax.jit(lambda *xs: fn(*xs))(*inputs))
    globals()["pl"] = real_pl
    bad = report("interpret ", got, "jnp blocks", want)''',
    "symbolic": '''
    exported = export_symbolic(fn)
    one = [x[tuple(slice(None) if d.strip().isdigit() else slice(0, 1)
                   for d in s.split(",") if d.strip())] for x, s in zip(inputs, SHAPES)]
    bad = 0
    for what, xs in (("at the record's sizes", inputs), ("every symbol at 1", one)):
        print("--", what)
        bad |= report("exported", leaves(jax.jit(exported.call)(*xs)),
                      "jit     ", leaves(jax.jit(fn)(*xs)))''',
}

EXPORT = '''

def export_symbolic(fn):
    """jax.export over SHAPES, as the extractor does (extract/symbolic.py)."""
    from jax import export
    abstract = [jax.ShapeDtypeStruct(tuple(s), jnp.dtype(d)) for s, d in ARGS]
    checks = [export.DisabledSafetyCheck.custom_call("ALL")]  # it is never serialized
    return export.export(jax.jit(fn), disabled_checks=checks)(
        *export.symbolic_args_specs(abstract, SHAPES))
'''
"""``export_symbolic(fn)``, for a reproducer of a program with ``polymorphic_shapes``."""


def _comment(text: object) -> str:
    lines = str(text).splitlines()
    return lines[0][:300] if lines else ""


def oracle_reproducer(source: str, entry: str, args: list, failure: dict[str, Any],
                      found_by: str, seed: int,
                      polymorphic_shapes: list[str] | None = None,
                      backend: Backend | None = None, recipe: str = _inputs.RECIPE) -> str:
    """The reproducer script of a failure while running the program (stage ``run`` or
    ``grad_run``) or of an oracle's (``failure["stage"]`` names the oracle);
    ``polymorphic_shapes`` as the extractor took them (the ``symbolic`` oracle needs them);
    ``recipe``: of the inputs (``extract.inputs``).
    A backend's failure (stage ``backend:<name>``) needs that ``backend``: the script
    imports it by its target, from the folder it is run in or from ``sys.path``."""
    oracle = failure.get("stage")
    if backend is not None and oracle == backend.stage:
        oracle = "backend"
    if oracle not in _BLOCKS:
        raise ValueError(f"failure stage={oracle!r} does not run the program; accepted: "
                         f"{list(_BLOCKS)}")
    check = str(failure.get("signature", "")).split(":")[1:2] or [""]
    common = _COMMON.format(
        recipe=recipe,
        words=_source(_inputs._words, _inputs.word_count, _inputs.from_words,
                      *((_inputs._special_words, _inputs._specials, _inputs.with_specials)
                        if recipe == _inputs.SPECIAL_RECIPE else ())),
        compare=_source(_values.Tolerance, _values.is_float, _values._fmt, _values.real_view,
                        _values.ulps_apart, _values.compare_arrays))
    tolerances = {name: (t.rtol, t.atol) for name in _values.VALUE_RTOL
                  for t in [_values.tolerance(name)]}
    extra = ""
    if oracle == "interpreter":
        extra = "\n# -- the StableHLO reference interpreter (extract/interpreter.py) --\n" + \
            _module_body("extract.interpreter")
    if oracle == "pallas":
        extra = ("\n# -- Pallas kernels over jnp blocks (extract/pallas_reference.py) --\n"
                 "import itertools\nimport types\nfrom collections.abc import Callable, "
                 "Sequence\n" + _module_body("extract.pallas_reference")
                 + f"\nPALLAS_NAMES = {_module_all('extract.pallas_reference')!r}\n")
    if oracle == "backend":
        extra = (f"\n# -- the backend under test, {backend.name}: imported from the folder this "
                 f"is run in, or from sys.path --\nimport importlib\nimport os\n\n"
                 f"sys.path.insert(0, os.getcwd())\nBACKEND = {backend.target!r}\n"
                 f"TAKES = {backend.takes!r}\n")
    if polymorphic_shapes is not None:
        extra += EXPORT
    defs, fn, shapes = entry_on_leaves(entry, args)
    return f'''# jaxsmith reproducer: run with `python`; exits 1 while the discrepancy is there.
#
# oracle:    {failure.get("stage")}
# signature: {_comment(failure.get("signature"))}
# found:     {_comment(failure.get("message", ""))}
# found by:  {_comment(found_by)}
{device_prelude(source)}{source}{x64_prelude(args)}
{common}{extra}{defs}

TOLERANCES = {tolerances!r}
INPUT_SCALE = {_values.INPUT_SCALE!r}
GRAD_RTOL = {dict(_values.GRAD_RTOL)!r}
FD_EPS = {_oracles.FD_EPS!r}
SIMPLIFICATION_PASSES = {_oracles.SIMPLIFICATION_PASSES!r}
CHECK = {check[0]!r}

if __name__ == "__main__":
    ARGS = {shapes!r}
    SHAPES = {polymorphic_shapes!r}
    SEED = {int(seed)!r}
    SPECIAL = {recipe == _inputs.SPECIAL_RECIPE!r}  # the recipe {recipe}
    fn = {fn}
    inputs = make_inputs(ARGS, SEED, SPECIAL)
    print("jax", jax.__version__, "on", jax.default_backend())
{textwrap.indent(textwrap.dedent(_BLOCKS[oracle]).strip(), "    ")}
    sys.exit(1 if bad else 0)
'''
