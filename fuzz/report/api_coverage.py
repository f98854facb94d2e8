"""Real-world JAX API coverage: how much of the JAX people write a corpus (or the grammar)
says.

The measure is ``fuzz/data/realworld-jax-api.tsv``: the call sites of public ``jax.*`` names
in 10 public JAX codebases (its first line says how they were counted), and
``realworld-jax-methods.tsv`` for array methods and ``.at[]`` updates.  A name is matched
by the object it names, so ``jax.P`` counts as ``jax.sharding.PartitionSpec`` and
``jax.numpy.where`` as ``jnp.where``.  Names a generated program never holds are listed in
``LEFT_OUT`` with their reason, and do not count.  Pure functions but ``main``: a corpus's
texts are read with Python's ``ast``; nothing is executed.
"""

from __future__ import annotations

import ast
import csv
import json
import math
import warnings
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from grammar.syntax import MODULE_ALIASES, parse_python

__all__ = ["LEFT_OUT", "api_coverage", "api_use", "format_coverage", "headline"]

LEFT_OUT: dict[str, str] = {
    "jax.config.": "host-side configuration, set before a program runs",
    "jax.process_": "host-side query of the multi-host set-up",
    "jax.devices": "host-side device query",
    "jax.local_devices": "host-side device query",
    "jax.device_count": "host-side device query",
    "jax.local_device_count": "host-side device query",
    "jax.device_get": "copies a result to the host",
    "jax.set_mesh": "sets the mesh around a jitted call; JAX refuses it inside jax.jit "
                    "('set_mesh can only be used outside of jax.jit')",
    "jax.block_until_ready": "host-side synchronisation",
    "jax.distributed.": "multi-host initialisation",
    "jax.profiler.": "profiling, host-side",
    "jax.export.": "serialisation: the extractor exports symbolic_shape programs itself",
    "jax.ffi.": "foreign functions: the validator refuses native code",
    "jax.debug.": "host callbacks (printing, breakpoints): the validator refuses callbacks",
    "jax.pure_callback": "a host callback: the validator refuses callbacks",
    "jax.experimental.io_callback": "a host callback: the validator refuses callbacks",
    "jax.experimental.multihost_utils.": "multi-host utilities, host-side",
    "jax.experimental.compilation_cache.": "compilation-cache configuration, host-side",
    "jax.experimental.mosaic.": "TPU kernel language: needs a TPU",
    "jax.experimental.pallas.tpu.": "Pallas on TPU: needs a TPU",
    "jax.experimental.pallas.mosaic_gpu.": "Pallas on GPU: needs a GPU",
    "jax.clear_caches": "host-side cache control",
    "jax.live_arrays": "host-side memory query",
    "jax.default_backend": "host-side platform query",
    "jax.make_jaxpr": "prints a program rather than being one",
    "jax.eval_shape": "host-side shape query",
}
"""Names (or prefixes, ending in ``.`` or ``_``) that a generated program never holds,
with the reason; every other name of the measure counts."""

SKIPPED_METHODS = frozenset({".item()", ".tolist()", ".block_until_ready()"})
"""Methods that move a value to the host: never in a program."""

_ALIASES = {**MODULE_ALIASES, "np": "numpy"}


@dataclass(frozen=True)
class Name:
    """One row of the measure."""

    name: str
    count: int
    family: str


def _rows(filename: str) -> list[list[str]]:
    text = resources.files("fuzz").joinpath("data", filename).read_text(encoding="utf-8")
    lines = [line for line in text.splitlines() if line and not line.startswith("#")]
    return list(csv.reader(lines[1:], delimiter="\t"))


@cache
def measure() -> tuple[Name, ...]:
    """The real-world call counts, most used first."""
    return tuple(Name(r[1], int(r[2]), r[5]) for r in _rows("realworld-jax-api.tsv"))


@cache
def method_measure() -> tuple[tuple[str, int], ...]:
    """The real-world array-method counts (``.reshape()``, ``at[].set``, ``.T``)."""
    return tuple((r[0], int(r[1])) for r in _rows("realworld-jax-methods.tsv"))


def left_out(name: str) -> str | None:
    """Why ``name`` is never in a generated program, or None when it counts."""
    for key, reason in LEFT_OUT.items():
        if name == key or (key.endswith((".", "_")) and name.startswith(key)):
            return reason
    return None


def _full(name: str) -> str:
    head, _, rest = name.partition(".")
    return f"{_ALIASES.get(head, head)}.{rest}" if rest else _ALIASES.get(head, head)


@cache
def _object_key(name: str) -> str:
    """A key for what ``name`` refers to: the measure's spelling of the same object when
    JAX has it (``jax.P`` -> ``jax.sharding.PartitionSpec``), else the name itself."""
    return _by_object().get(_id_of(name), name)


def _id_of(name: str) -> int | None:
    obj = _resolve(name)
    return id(obj) if obj is not None else None


@cache
def _resolve(name: str) -> Any:
    """The callable or class ``name`` refers to, if it does. Cached, so the object stays
    alive: an id is then never reused by another object (an attribute made afresh on each
    lookup, freed at once, would pass its id on, and two names could seem one object,
    depending on where the allocator put things: the draw weights changed between runs)."""
    import importlib

    parts = _full(name).split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj: Any = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        try:
            with warnings.catch_warnings():  # deprecated names still name their object
                warnings.simplefilter("ignore")
                for part in parts[cut:]:
                    obj = getattr(obj, part)
        except AttributeError:
            return None
        return obj if callable(obj) or isinstance(obj, type) else None
    return None


@cache
def _by_object() -> dict[int, str]:
    out: dict[int, str] = {}
    for row in reversed(measure()):  # the most used spelling wins
        key = _id_of(row.name)
        if key is not None:
            out[key] = row.name
    return out


def _dotted(node: ast.AST) -> str | None:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name) and parts and node.id in MODULE_ALIASES:
        return ".".join([node.id, *reversed(parts)])
    return None


def api_use(source: str) -> tuple[Counter[str], Counter[str]]:
    """What ``source`` uses, in one walk of its ``ast``: the JAX functions it calls (and
    decorates with) as written (``jax.P``; ``api_coverage`` matches them to the measure),
    and the array methods, attributes and ``.at[]`` updates spelled as in the methods
    measure (``.reshape()``, ``.T``, ``at[].set``).  Needs no JAX."""
    calls: Counter[str] = Counter()
    methods: Counter[str] = Counter()
    known = {m for m, _ in method_measure()}
    for node in ast.walk(parse_python(source)):
        targets = [node.func] if isinstance(node, ast.Call) else []
        if isinstance(node, ast.FunctionDef):
            targets += node.decorator_list
        for target in targets:
            name = _dotted(target)
            if name is not None:
                calls[name] += 1
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            attr = node.func
            on = attr.value
            if isinstance(on, ast.Subscript) and isinstance(on.value, ast.Attribute) \
                    and on.value.attr == "at":
                methods[f"at[].{attr.attr}"] += 1
            elif _dotted(attr) is None:
                methods[f".{attr.attr}()"] += 1
        elif isinstance(node, ast.Attribute) and f".{node.attr}" in known \
                and _dotted(node) is None:
            methods[f".{node.attr}"] += 1
    return calls, methods


def _share(counts: Iterable[tuple[str, int]], seen: Iterable[str]) -> tuple[int, int]:
    seen = set(seen)
    pairs = list(counts)
    return sum(c for n, c in pairs if n in seen), sum(c for _, c in pairs)


@cache
def _real_calls() -> Counter[str]:
    """The in-program call sites of the measure, keyed as resolved calls are (two spellings
    of one object merge)."""
    real: Counter[str] = Counter()
    for r in measure():
        key = _object_key(r.name)
        if left_out(r.name) is None and left_out(key) is None:
            real[key] += r.count
    return real


def jensen_shannon(p: Mapping[str, float], q: Mapping[str, float]) -> float:
    """The Jensen-Shannon distance (base 2: 0 for the same distribution, 1 for disjoint
    ones) between two distributions given as unnormalised weights per name."""
    p_total, q_total = sum(p.values()), sum(q.values())
    if not p_total or not q_total:
        return 1.0
    divergence = 0.0
    for name in p.keys() | q.keys():
        a, b = p.get(name, 0) / p_total, q.get(name, 0) / q_total
        m = (a + b) / 2
        divergence += sum(x * math.log2(x / m) for x in (a, b) if x > 0) / 2
    return math.sqrt(max(0.0, divergence))


def api_coverage(calls: Mapping[str, int], methods: Mapping[str, int] | None = None,
                 top: int = 50) -> dict[str, Any]:
    """Coverage of the measure by ``calls`` (names as ``api_use`` spells them) and
    ``methods``: call sites of in-program names covered (weighted), the top ``top``
    in-program names covered, the methods covered by weight, and the missing names by
    family, most used first.  Resolving a name imports JAX."""
    resolved: Counter[str] = Counter()
    for name, count in calls.items():
        resolved[_object_key(name)] += count
    calls = resolved
    rows = [r for r in measure() if left_out(r.name) is None]
    covered, total = _share(((r.name, r.count) for r in rows), calls)
    ranked = rows[:top]
    missing: dict[str, list[str]] = {}
    for r in rows:
        if r.name not in calls:
            missing.setdefault(r.family, []).append(r.name)
    out: dict[str, Any] = {
        "call_sites_covered": round(covered / total, 4),
        "names_covered": sum(r.name in calls for r in rows),
        "names": len(rows),
        f"top{top}_covered": sum(r.name in calls for r in ranked),
        f"top{top}_missing": [r.name for r in ranked if r.name not in calls],
        "missing_by_family": {f: names[:8] for f, names in sorted(
            missing.items(), key=lambda kv: -sum(
                r.count for r in rows if r.name in kv[1]))},
        "left_out": sorted({reason for r in measure() if (reason := left_out(r.name))}),
        # how far the call distribution is from the real one, over the in-program names
        "jensen_shannon": round(jensen_shannon(
            _real_calls(), {n: c for n, c in calls.items() if left_out(n) is None}), 4),
    }
    if methods is not None:
        in_program = [(m, c) for m, c in method_measure() if m not in SKIPPED_METHODS]
        m_covered, m_total = _share(in_program, methods)
        out["methods_covered"] = round(m_covered / m_total, 4)
        out["methods_missing"] = [m for m, _ in in_program if m not in methods]
    return out


def headline(cov: Mapping[str, Any]) -> dict[str, Any]:
    """The figures of ``cov`` that a run's ``stats.json`` keeps."""
    keys = ("call_sites_covered", "names_covered", "names", "top50_covered",
            "methods_covered", "jensen_shannon", "top50_missing")
    return {k: cov[k] for k in keys if k in cov}


CONTROL_FLOOR = 2
"""The least weight of a control-flow op (loops, branches): real code calls ``while_loop``
and ``switch`` rarely, but the fuzzer needs them, and at weight 1 their categories fell
below 2 % of a run's records (issue 10)."""


def op_weights(scale: float = 1.0) -> dict[str, int]:
    """Draw weights (``grammar.programs(weights=...)``; ``python -m fuzz --op-weights real``)
    under which a run's calls track the real ones without losing the rare ops: every op 1 (a
    control-flow op ``CONTROL_FLOOR``), plus ``scale`` x the number of ops x its share of the
    in-program call sites (a name that several ops call is split between them).  At the
    default scale the real shares decide about half the draws: over 400 default programs the
    Jensen-Shannon distance from real calls falls from 0.65 (uniform) to 0.53 and every op is
    still drawn; scale 2 gained little more and 4 lost seven ops (bench/bench_op_weights.py).
    Resolving names imports JAX."""
    from grammar.ops import OPS

    real = _real_calls()
    total = sum(real.values())
    keys = {name: {_object_key(c) for c in op.calls} for name, op in OPS.items()}
    users = Counter(k for ks in keys.values() for k in ks)
    weights = {name: min(1000, 1 + round(scale * len(OPS) * sum(
        real[k] / users[k] for k in ks) / total)) for name, ks in keys.items()}
    return {name: max(w, CONTROL_FLOOR) if OPS[name].family == "control" else w
            for name, w in weights.items()}


def grammar_calls() -> Counter[str]:
    """What the grammar can emit: every JAX name in the op table's calls and values."""
    from grammar.ops import ALLOWED_CALLS, ALLOWED_VALUES

    return Counter(dict.fromkeys((*ALLOWED_CALLS, *ALLOWED_VALUES), 1))


def corpus_calls(path: str | Path) -> tuple[Counter[str], Counter[str], int]:
    """The calls and methods in every record's source of corpus ``path``, and how many
    records were read (a malformed line is skipped)."""
    from fuzz.corpus.records import MalformedLine, iter_file, shard_paths

    calls: Counter[str] = Counter()
    methods: Counter[str] = Counter()
    records = 0
    for shard in shard_paths(Path(path)):
        for _, _, rec in iter_file(shard):
            if isinstance(rec, MalformedLine) or not isinstance(rec.get("source"), str):
                continue
            try:
                used_calls, used_methods = api_use(rec["source"])
                calls.update(used_calls)
                methods.update(used_methods)
            except (SyntaxError, ValueError, RecursionError):
                continue
            records += 1
    return calls, methods, records


def format_coverage(title: str, cov: Mapping[str, Any]) -> str:
    lines = [f"{title}: {cov['call_sites_covered']:.1%} of the in-program real-world call "
             f"sites, {cov['names_covered']} of {cov['names']} names, top 50: "
             f"{cov['top50_covered']}"]
    if "methods_covered" in cov:
        lines.append(f"  array methods: {cov['methods_covered']:.1%} by weight; missing "
                     + ", ".join(cov["methods_missing"][:10]))
        lines.append(f"  Jensen-Shannon distance of its calls from the real ones: "
                     f"{cov['jensen_shannon']:.3f}")
    lines.append("  top 50 missing: " + ", ".join(cov["top50_missing"]))
    for family, names in list(cov["missing_by_family"].items())[:8]:
        lines.append(f"  missing {family}: {', '.join(names)}")
    return "\n".join(lines)


def main(argv: list[str], parser_class: Any) -> int:
    p = parser_class(prog="python -m fuzz api-coverage", description=(
        "Real-world JAX API coverage of the grammar and, given one, of a corpus "
        "(docs/corpus.md: Real-world API coverage)."))
    p.add_argument("corpus", type=Path, nargs="?")
    p.add_argument("--json", action="store_true", help="print the figures as JSON")
    a = p.parse_args(argv)
    report = {"grammar": api_coverage(grammar_calls())}
    if a.corpus is not None:
        if not a.corpus.is_dir():
            p.error(f"corpus {str(a.corpus)!r} is not a directory")
        calls, methods, records = corpus_calls(a.corpus)
        report["corpus"] = {**api_coverage(calls, methods), "records": records}
    if a.json:
        print(json.dumps(report, indent=1, sort_keys=True))
    else:
        print(format_coverage("grammar (what it can write)", report["grammar"]))
        if "corpus" in report:
            print(format_coverage(f"corpus ({report['corpus']['records']} records)",
                                  report["corpus"]))
        print("left out (never in a program): " + "; ".join(report["grammar"]["left_out"]))
    return 0
