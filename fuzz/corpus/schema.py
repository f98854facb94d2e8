"""The corpus record schema: one typed field per key, so shards load as a table.

``FIELDS`` names every top-level field, its kind and what it holds; ``normalize_record``
checks a record against it and ``encode_record`` writes the exact bytes of its shard line.
"""

from __future__ import annotations

import ast
import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from extract.args import MAX_TREE_DEPTH
from extract.clean import ir_hash
from extract.failures import GRAD_STAGES
from extract.levels import COMPILED
from grammar.syntax import parse_python

__all__ = ["FIELDS", "FIELD_NAMES", "KIND", "REQUIRED", "CorpusError", "Field", "check_value",
           "encode_record", "json_schema", "normalize_record", "normalized_source_hash",
           "storable"]

_INT64 = 2**63


class CorpusError(ValueError):
    """A corpus directory cannot be used, or a record does not fit the schema."""


# --------------------------------------------------------------------------- schema


@dataclass(frozen=True)
class Field:
    """One top-level record field: its name, its kind and what it holds."""

    name: str
    kind: str
    doc: str


# kind -> what a non-null value must be
#   str          a string
#   int          an int in the int64 range (not a bool)
#   str_list     a list of strings
#   args         a list of [shape, dtype] pairs: shape a list of ints >= 0, dtype a string
#   float_map    a dict str -> float (ints widened; NaN and inf stored as null)
#   str_map      a dict str -> str
#   int_map      a dict str -> int >= 1 (a mesh's axis sizes)
#   reason       a string; True is stored as "skipped", False as null
#   int_list     a list of ints
#   inputs       {"seed": int, "recipe": str}
#   values       a list of output summaries (extract.values.summarize)
FIELDS: tuple[Field, ...] = (
    Field("id", "str", "short stable id: first 16 hex of source_hash unless given"),
    Field("source", "str", "the generated Python module"),
    Field("source_hash", "str", "sha256 of ast.dump(ast.parse(source)), set by the store "
          "(for a record added by hand, of that hash, ':' and the entry)"),
    Field("entry", "str", "name of the entry function in source"),
    Field("args", "args", "argument types: [[shape...], dtype] per argument"),
    Field("categories", "str_list", "feature categories the program exercises"),
    Field("ops", "str_list", "grammar ops used by the program"),
    Field("seed", "int", "generator seed"),
    Field("found_by", "str", "which generator or run produced the record"),
    Field("jaxpr", "str", "forward jaxpr text"),
    Field("stablehlo", "str", "forward StableHLO text"),
    Field("hlo", "str", "forward HLO text before optimisation"),
    Field("hlo_optimized", "str", "forward HLO text after optimisation"),
    Field("cost", "float_map", "XLA cost analysis"),
    Field("grad_jaxpr", "str", "backward jaxpr text"),
    Field("grad_stablehlo", "str", "backward StableHLO text"),
    Field("grad_hlo", "str", "backward HLO text before optimisation"),
    Field("grad_hlo_optimized", "str", "backward HLO text after optimisation"),
    Field("grad_cost", "float_map", "XLA cost analysis of the backward pass"),
    Field("grad_skipped", "reason", "why the backward pass was skipped, or null"),
    Field("versions", "str_map", "package versions, e.g. jax and jaxlib"),
    Field("backend", "str", "XLA backend platform"),
    Field("timings", "float_map", "seconds per extraction stage"),
    Field("stablehlo_hash", "str", "hash of the canonical StableHLO (from the extractor)"),
    Field("inputs", "inputs", "{seed, recipe}: the inputs are extract.make_inputs(args, seed)"),
    Field("outputs", "values", "summary of each forward output on those inputs"),
    Field("grad_outputs", "values", "summary of each gradient output on those inputs"),
    Field("sensitive", "int_list", "indices of the outputs that a one-ulp move of every "
          "floating input moves beyond the value tolerance (a kink, an ill-conditioned value)"),
    Field("oracles", "str_map", "verdict of each oracle: pass, skipped: ..., benign: ..., "
          "failed, not run, not sampled, off"),
    Field("devices", "int", "devices the compiled program runs on (its mesh's size; 1 for a "
          "single-device program)"),
    Field("mesh", "int_map", "the program's device mesh, axis name -> size, or null"),
    Field("polymorphic_shapes", "str_list", "category symbolic_shape: each argument leaf's "
          "shape in jax.export's notation ('b, 4'; the symbol b is the batch size, which "
          "args fix), or null"),
    Field("exported_stablehlo", "str", "StableHLO of the program exported by jax.export "
          "over polymorphic_shapes (dynamic shapes, shape assertions), or null"),
    Field("style", "str", "the source style of the generated program (grammar.STYLES: ssa, "
          "inlined, methods, named, idiomatic), or null"),
    Field("variant_group", "str", "hash of the program tree, the same for each of its "
          "styles: keep one group in one split"),
    Field("passes", "str_list", "the XLA HLO passes that changed the forward module while it "
          "compiled (extract.passes), sorted; null when not recorded"),
    Field("grad_passes", "str_list", "the same for the backward module"),
    Field("levels", "str_list", "the IR levels the record holds (python -m fuzz --levels: "
          "jaxpr, stablehlo, hlo, hlo_optimized, forward and backward); absent: all of them. "
          "Without hlo_optimized nothing was compiled or run: no cost, outputs or oracles"),
)
FIELD_NAMES: frozenset[str] = frozenset(f.name for f in FIELDS)
KIND = {f.name: f.kind for f in FIELDS}
"""Each field's kind, by name."""


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _arg_node(node: Any, depth: int = 1) -> Any:
    """One argument node as JSON (``extract.args``): a ``[shape, dtype]`` leaf, a list of
    nodes (a tuple) or an object of nodes (a dict), nested at most ``MAX_TREE_DEPTH``
    deep; None when it is none of them."""
    if isinstance(node, list | tuple) and len(node) == 2 and isinstance(node[1], str):
        shape = node[0]
        if isinstance(shape, list | tuple) and all(_is_int(d) and d >= 0 for d in shape):
            return [list(shape), node[1]]
        return None
    if depth > MAX_TREE_DEPTH:
        return None
    if isinstance(node, Mapping) and all(isinstance(k, str) for k in node):
        out = {k: _arg_node(v, depth + 1) for k, v in node.items()}
    elif isinstance(node, list | tuple):
        out = [_arg_node(v, depth + 1) for v in node]
    else:
        return None
    return out if all(v is not None for v in (out.values() if isinstance(out, dict) else out)) \
        else None


def _is_number(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool)


_SUMMARY_KEYS = {"shape", "dtype", "nonfinite", "sum", "abs_sum", "samples"}


def _is_summary(v: Any) -> bool:
    """An output summary as ``extract.values.summarize`` writes it."""
    return (isinstance(v, Mapping) and set(v) == _SUMMARY_KEYS
            and isinstance(v["shape"], list) and all(_is_int(d) for d in v["shape"])
            and isinstance(v["dtype"], str) and _is_int(v["nonfinite"])
            and _is_number(v["sum"]) and _is_number(v["abs_sum"])
            and isinstance(v["samples"], list)
            and all(isinstance(p, list) and len(p) == 2 and _is_int(p[0])
                    and (p[1] is None or _is_number(p[1])) for p in v["samples"]))


def check_value(name: str, kind: str, value: Any) -> tuple[Any, str | None]:
    """Return (normalised value, None) or (None, reason it does not fit ``kind``)."""
    if value is None:
        return None, None
    if kind == "str":
        if isinstance(value, str):
            return value, None
        return None, f"{name} must be a string or null, got {type(value).__name__}"
    if kind == "int":
        if _is_int(value) and -_INT64 <= value < _INT64:
            return value, None
        return None, f"{name} must be an int64 or null, got {value!r:.60}"
    if kind == "str_list":
        if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
            return list(value), None
        return None, f"{name} must be a list of strings or null, got {value!r:.60}"
    if kind == "args":
        if isinstance(value, list | tuple):
            out = [_arg_node(arg) for arg in value]
            if all(node is not None for node in out):
                return out, None
        return None, (f"{name} must be a list of [shape, dtype] pairs (or lists and objects "
                      f"of them) or null, got {value!r:.60}")
    if kind == "float_map":
        if isinstance(value, Mapping) and all(
            isinstance(k, str) and (v is None or _is_number(v)) for k, v in value.items()
        ):
            return {
                k: (float(v) if v is not None and math.isfinite(v) else None)
                for k, v in value.items()
            }, None
        return None, f"{name} must be a dict of str -> number or null, got {value!r:.60}"
    if kind == "int_map":
        if isinstance(value, Mapping) and all(
            isinstance(k, str) and _is_int(v) and 1 <= v < _INT64 for k, v in value.items()
        ):
            return dict(value), None
        return None, f"{name} must be a dict of str -> int >= 1 or null, got {value!r:.60}"
    if kind == "str_map":
        if isinstance(value, Mapping) and all(
            isinstance(k, str) and isinstance(v, str) for k, v in value.items()
        ):
            return dict(value), None
        return None, f"{name} must be a dict of str -> str or null, got {value!r:.60}"
    if kind == "int_list":
        if isinstance(value, list | tuple) and all(_is_int(v) for v in value):
            return list(value), None
        return None, f"{name} must be a list of ints or null, got {value!r:.60}"
    if kind == "inputs":
        if (isinstance(value, Mapping) and set(value) == {"seed", "recipe"}
                and _is_int(value["seed"]) and 0 <= value["seed"] < _INT64
                and isinstance(value["recipe"], str)):
            return {"seed": value["seed"], "recipe": value["recipe"]}, None
        return None, f"{name} must be {{'seed': int, 'recipe': str}} or null, got {value!r:.60}"
    if kind == "values":
        if isinstance(value, list | tuple) and all(_is_summary(v) for v in value):
            return [dict(v) for v in value], None
        return None, f"{name} must be a list of output summaries or null, got {value!r:.60}"
    if kind == "reason":
        if isinstance(value, bool):
            return ("skipped" if value else None), None
        if isinstance(value, str):
            return value, None
        return None, f"{name} must be a string, a bool or null, got {type(value).__name__}"
    raise AssertionError(f"unknown field kind {kind!r} for {name!r}")


# -- the same schema as JSON Schema, for corpora made elsewhere --------------------------

REQUIRED: tuple[str, ...] = ("id", "source", "entry", "args")
"""The fields a record needs to be replayed; the store writes every field (null if unknown)."""

_INT = {"type": "integer", "minimum": -_INT64, "maximum": _INT64 - 1}
_NUMBER = {"type": "number"}
_SUMMARY = {
    "type": "object",
    "required": sorted(_SUMMARY_KEYS),
    "additionalProperties": False,
    "properties": {
        "shape": {"type": "array", "items": {"type": "integer"}},
        "dtype": {"type": "string"},
        "nonfinite": {"type": "integer"},
        "sum": _NUMBER,
        "abs_sum": _NUMBER,
        "samples": {"type": "array", "items": {
            "type": "array", "minItems": 2, "maxItems": 2,
            "prefixItems": [{"type": "integer"}, {"type": ["number", "null"]}]}},
    },
}
def _arg_defs() -> dict[str, Any]:
    """``$defs`` of the argument nodes (``_arg_node``): ``arg<d>`` is a node at depth d."""
    leaf = {"type": "array", "minItems": 2, "maxItems": 2,
            "prefixItems": [{"type": "array", "items": {"type": "integer", "minimum": 0}},
                            {"type": "string"}]}
    defs: dict[str, Any] = {"arg_leaf": leaf, f"arg{MAX_TREE_DEPTH + 1}": {
        "$ref": "#/$defs/arg_leaf"}}
    for depth in range(1, MAX_TREE_DEPTH + 1):
        inner = {"$ref": f"#/$defs/arg{depth + 1}"}
        defs[f"arg{depth}"] = {"anyOf": [{"$ref": "#/$defs/arg_leaf"},
                                         {"type": "array", "items": inner},
                                         {"type": "object", "additionalProperties": inner}]}
    return defs


_KIND_SCHEMA: dict[str, dict[str, Any]] = {
    "str": {"type": "string"},
    "int": _INT,
    "str_list": {"type": "array", "items": {"type": "string"}},
    "args": {"type": "array", "items": {"$ref": "#/$defs/arg1"}},
    "float_map": {"type": "object", "additionalProperties": {"type": ["number", "null"]}},
    "str_map": {"type": "object", "additionalProperties": {"type": "string"}},
    "int_map": {"type": "object", "additionalProperties": {**_INT, "minimum": 1}},
    "reason": {"type": ["string", "boolean"]},
    "int_list": {"type": "array", "items": {"type": "integer"}},
    "inputs": {"type": "object", "required": ["recipe", "seed"], "additionalProperties": False,
               "properties": {"seed": {**_INT, "minimum": 0}, "recipe": {"type": "string"}}},
    "values": {"type": "array", "items": _SUMMARY},
}


def json_schema() -> dict[str, Any]:
    """``FIELDS`` as a JSON Schema (draft 2020-12) of one corpus line; README's
    ``schema/record.schema.json`` is this, written by ``python -m fuzz schema``."""
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "jaxsmith corpus record",
        "description": (
            "One line of a jaxsmith corpus shard (JSON Lines). Every field may be null "
            "except the required ones; integers are written without a fraction; NaN and "
            "infinity are stored as null. Generated from fuzz.corpus.schema.FIELDS."),
        "type": "object",
        "required": list(REQUIRED),
        "additionalProperties": False,
        "properties": {
            f.name: {"description": f.doc, **_KIND_SCHEMA[f.kind]} if f.name in REQUIRED else
            {"description": f.doc, "anyOf": [_KIND_SCHEMA[f.kind], {"type": "null"}]}
            for f in FIELDS
        },
        "$defs": _arg_defs(),
    }


def storable(result: Mapping[str, Any]) -> dict[str, Any] | None:
    """The record fields of an extraction result worth keeping, or None.

    An ``ok`` result keeps what it extracted.  One whose backward pass failed under a known
    JAX limitation after the forward pass extracted is kept forward-only, ``grad_skipped``
    naming the limitation.  Anything else (a failure, a duplicate) is not stored.
    """
    fields = {k: v for k, v in result.items() if k in FIELD_NAMES}
    if result.get("status") == "ok":
        return fields
    failure = result.get("failure") or {}
    if (result.get("status") == "failed" and failure.get("known")
            and failure.get("stage") in GRAD_STAGES
            and result.get("stablehlo") is not None
            and (result.get("hlo_optimized") is not None
                 or COMPILED not in result.get("levels", (COMPILED,)))):
        return {**fields, "grad_skipped": f"known JAX limitation: {failure['known']}"}
    return None


def normalized_source_hash(source: str) -> str:
    """sha256 hex of ``ast.dump(ast.parse(source))``: formatting and comments don't count.

    Raises ``CorpusError`` for a source that does not parse, or nests too deeply for Python's
    parser or for ``ast.dump``.
    """
    try:
        tree = parse_python(source)
        dumped = ast.dump(tree)
    except SyntaxError as e:
        raise CorpusError(f"source does not parse ({e.msg}, line {e.lineno})") from e
    except (ValueError, RecursionError, MemoryError, SystemError) as e:
        raise CorpusError(f"source cannot be parsed ({type(e).__name__}: {str(e)[:100]})") from e
    return hashlib.sha256(dumped.encode("utf-8")).hexdigest()


def normalize_record(record: Mapping[str, Any],
                     source_hash: str | None = None) -> dict[str, Any]:
    """Return a copy of ``record`` with every field of ``FIELDS`` present and checked.

    Assigns ``source_hash`` (``normalized_source_hash(source)``, unless the caller
    already computed it), ``id`` (when absent) and ``stablehlo_hash`` (when
    absent and ``stablehlo`` is given).  Raises ``CorpusError`` naming the field
    for an unknown key, a missing ``source`` or a value of the wrong type.
    """
    if not isinstance(record, Mapping):
        raise CorpusError(f"a record must be a dict, got {type(record).__name__}")
    unknown = sorted(set(record) - FIELD_NAMES)
    if unknown:
        raise CorpusError(
            f"record has unknown field(s) {unknown}; known fields are {sorted(FIELD_NAMES)} "
            "(add new ones to fuzz.corpus.store.FIELDS)"
        )
    if not isinstance(record.get("source"), str):
        raise CorpusError("record field 'source' must be a string")
    out: dict[str, Any] = {}
    for f in FIELDS:
        value, problem = check_value(f.name, f.kind, record.get(f.name))
        if problem:
            raise CorpusError(f"record field {problem}")
        out[f.name] = value
    out["source_hash"] = source_hash or normalized_source_hash(out["source"])
    if out["id"] is None:
        out["id"] = out["source_hash"][:16]
    if out["stablehlo_hash"] is None and out["stablehlo"] is not None:
        out["stablehlo_hash"] = ir_hash(out["stablehlo"])
    return out


def encode_record(record: Mapping[str, Any]) -> bytes:
    """The exact bytes of one shard line for an already normalised record."""
    try:
        text = json.dumps(record, sort_keys=True, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as e:
        raise CorpusError(f"record {record.get('id')!r} is not JSON-serialisable: {e}") from e
    return (text + "\n").encode("utf-8")
