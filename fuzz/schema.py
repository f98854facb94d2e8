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

from extract.clean import ir_hash

__all__ = ["FIELDS", "FIELD_NAMES", "CorpusError", "Field", "encode_record", "normalize_record",
           "normalized_source_hash"]

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
#   reason       a string; True is stored as "skipped", False as null
#   int_list     a list of ints
#   inputs       {"seed": int, "recipe": str}
#   values       a list of output summaries (extract.values.summarize)
FIELDS: tuple[Field, ...] = (
    Field("id", "str", "short stable id: first 16 hex of source_hash unless given"),
    Field("source", "str", "the generated Python module"),
    Field("source_hash", "str", "sha256 of ast.dump(ast.parse(source)), set by the store"),
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
)
FIELD_NAMES: frozenset[str] = frozenset(f.name for f in FIELDS)
_KIND = {f.name: f.kind for f in FIELDS}


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


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


def _check_value(name: str, kind: str, value: Any) -> tuple[Any, str | None]:
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
        out = []
        if isinstance(value, list | tuple):
            for arg in value:
                if not (isinstance(arg, list | tuple) and len(arg) == 2):
                    break
                shape, dtype = arg
                if not (
                    isinstance(shape, list | tuple)
                    and all(_is_int(d) and d >= 0 for d in shape)
                    and isinstance(dtype, str)
                ):
                    break
                out.append([list(shape), dtype])
            else:
                return out, None
        return None, f"{name} must be a list of [shape, dtype] pairs or null, got {value!r:.60}"
    if kind == "float_map":
        if isinstance(value, Mapping) and all(
            isinstance(k, str) and (v is None or _is_number(v)) for k, v in value.items()
        ):
            return {
                k: (float(v) if v is not None and math.isfinite(v) else None)
                for k, v in value.items()
            }, None
        return None, f"{name} must be a dict of str -> number or null, got {value!r:.60}"
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


def normalized_source_hash(source: str) -> str:
    """sha256 hex of ``ast.dump(ast.parse(source))``: formatting and comments don't count."""
    try:
        tree = ast.parse(source)
    except SyntaxError as e:
        raise CorpusError(f"source does not parse ({e.msg}, line {e.lineno})") from e
    return hashlib.sha256(ast.dump(tree).encode("utf-8")).hexdigest()


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
            "(add new ones to fuzz.store.FIELDS)"
        )
    if not isinstance(record.get("source"), str):
        raise CorpusError("record field 'source' must be a string")
    out: dict[str, Any] = {}
    for f in FIELDS:
        value, problem = _check_value(f.name, f.kind, record.get(f.name))
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
