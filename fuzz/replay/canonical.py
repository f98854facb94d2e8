"""Canonical forms and short diffs of a record's artifacts, for ``python -m fuzz replay``.

A new JAX release reprints the same program with different names and annotations.  Replay
tells such churn (``text_changed``) from a change of the program's IR (``ir_changed``) by
comparing *canonical* forms, one canonicaliser per artifact kind:

* HLO (``hlo``, ``hlo_optimized``, ``grad_hlo``, ``grad_hlo_optimized``): the module name is
  masked (``HloModule m``) and every name the module defines (computations, instructions,
  parameters) is renamed by order of first appearance (``%constant.15`` -> ``%v3``,
  ``%fused_computation.2`` -> ``%c1``, ``region_0.1`` -> ``c0``).  Names carry no meaning in
  HLO, so two texts with equal canonical forms are the same module, instruction for
  instruction and in the same order.  A comparison's ``type=TOTALORDER`` is spelled as
  XLA now prints it, ``order=TOTAL``.
* jaxpr: parameters a newer JAX prints with their default value (``out_sharding=None``,
  ``sharding=None``, ``is_stable=True``) are dropped, as are a loop's bookkeeping
  parameters, which JAX 0.12 re-expresses (``num_consts``/``num_carry`` became
  ``ft_in``/``ft_out``, the same partition of the loop's operands as a pytree); parameter
  lists and equations the printer wrapped are written on one line.
* StableHLO: ``extract.canonical_stablehlo`` (module and function names masked; its SSA
  values are numbered in order already).
* costs: entries equal to 0 are dropped (XLA leaves them out); any other difference is a
  change of the IR.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from extract import canonical_stablehlo

__all__ = ["canonical", "canonical_hlo", "canonical_jaxpr", "cost_diff", "hlo_instructions",
           "text_diff"]

SNIPPET = 80  # characters of a differing line shown

# -- HLO -------------------------------------------------------------------------------------

_NAME = r"[A-Za-z_][\w.\-]*"
_HLO_MODULE = re.compile(r"^HloModule\s+[^\s,]+", re.MULTILINE)
_HLO_COMPUTATION = re.compile(rf"^(?:ENTRY\s+)?%?({_NAME})\s+[({{]", re.MULTILINE)
_HLO_INSTRUCTION = re.compile(rf"^[ \t]+(?:ROOT[ \t]+)?%?({_NAME})[ \t]+=[ \t]", re.MULTILINE)
_HLO_TOKEN = re.compile(rf"(?<![\w.\-%])(%?)({_NAME})")
# Attributes a newer XLA spells differently, old -> new.
_HLO_SPELLINGS = ((", type=TOTALORDER", ", order=TOTAL"),)


def hlo_instructions(text: str | None) -> int:
    """How many instructions an HLO module text defines (its ``name = ...`` lines)."""
    return len(_HLO_INSTRUCTION.findall(text or ""))


def canonical_hlo(text: str) -> str:
    """HLO text with the module name masked and every defined name renamed in order."""
    computations = {m for m in _HLO_COMPUTATION.findall(text) if m != "HloModule"}
    values = set(_HLO_INSTRUCTION.findall(text)) - computations
    renamed: dict[str, str] = {}
    counts = {"c": 0, "v": 0}

    def rename(m: re.Match) -> str:
        name = m.group(2)
        kind = "c" if name in computations else "v" if name in values else None
        nxt = m.string[m.end():m.end() + 1]
        if kind is None or nxt in ("(", "="):  # an opcode or an attribute's key
            return m.group(0)
        if name not in renamed:
            renamed[name] = f"{kind}{counts[kind]}"
            counts[kind] += 1
        return m.group(1) + renamed[name]

    text = _HLO_MODULE.sub("HloModule m", text, count=1)
    for old, new in _HLO_SPELLINGS:
        text = text.replace(old, new)
    return _HLO_TOKEN.sub(rename, text)


# -- jaxpr -----------------------------------------------------------------------------------

# Parameters dropped when they have this value (None: whatever the value).
_JAXPR_CHURN: dict[str, str | None] = {
    "out_sharding": "None", "sharding": "None", "is_stable": "True",
    "num_consts": None, "num_carry": None, "ft_in": None, "ft_out": None,
}
_JAXPR_PARAM = re.compile(r"(?<=[\s\[])(" + "|".join(_JAXPR_CHURN) + r")=")
_CLOSE = {"(": ")", "[": "]", "{": "}"}
_EMPTY_PARAMS = re.compile(r"(= \w+)\[\s*\]")  # an equation's parameter list left empty


def _value_end(text: str, i: int) -> int:
    """End of the parameter value starting at ``text[i]``: whitespace or ``]`` at depth 0."""
    stack: list[str] = []
    while i < len(text):
        c = text[i]
        if c in _CLOSE:
            stack.append(_CLOSE[c])
        elif stack and c == stack[-1]:
            stack.pop()
        elif not stack and (c.isspace() or c == "]"):
            break
        i += 1
    return i


def _drop_params(text: str) -> str:
    out, pos = [], 0
    for m in _JAXPR_PARAM.finditer(text):
        if m.start() < pos:
            continue
        end = _value_end(text, m.end())
        wanted = _JAXPR_CHURN[m.group(1)]
        if wanted is not None and text[m.end():end] != wanted:
            continue
        start = m.start()
        while start > 0 and text[start - 1] in " \t\n":  # the separator before it
            start -= 1
        if start == m.start():  # first of its list: the separator after it
            while end < len(text) and text[end] in " \t":
                end += 1
        out.append(text[pos:start])
        pos = end
    out.append(text[pos:])
    text = "".join(out)
    return _EMPTY_PARAMS.sub(r"\1", text)


_PARAM_BLOCK = re.compile(r"\[\n(?P<body>(?:[ \t]+[^\n{}]*\n)+?)[ \t]*\]")


_OPERAND = r"-?[\w.+]+(?::\w+\[[\d,]*\])?"
# A line of operands only: the printer wrapped an equation that was too long.
_CONTINUATION = re.compile(rf"\n[ \t]+({_OPERAND}(?:[ \t]+{_OPERAND})*)[ \t]*(?=\n|$)")


def canonical_jaxpr(text: str) -> str:
    """Jaxpr text without default-valued or loop-bookkeeping parameters; parameter lists and
    wrapped equations on one line."""
    text = _drop_params(text)
    text = _PARAM_BLOCK.sub(lambda m: "[" + " ".join(m["body"].split()) + "]", text)
    return _CONTINUATION.sub(r" \1", text)


# -- costs and dispatch ----------------------------------------------------------------------


def canonical_cost(cost: Any) -> Any:
    """A cost dict without its zero entries (anything else as it is)."""
    if not isinstance(cost, Mapping):
        return cost
    return {k: v for k, v in sorted(cost.items()) if v != 0}


def canonical(name: str, value: Any) -> Any:
    """The canonical form of stored artifact ``name`` (see the module docstring)."""
    if name.endswith("cost"):
        return canonical_cost(value)
    if not isinstance(value, str):
        return value
    if name.endswith("jaxpr"):
        return canonical_jaxpr(value)
    if name.endswith("stablehlo"):
        return canonical_stablehlo(value)
    if name.endswith(("hlo", "hlo_optimized")):
        return canonical_hlo(value)
    return value


def text_diff(old: str | None, new: str | None) -> str:
    """Line counts and the first differing line of two texts."""
    if old is None or new is None:
        def size(t: str | None) -> str:
            return "null" if t is None else f"{len(t.splitlines())} lines"
        return f"was {size(old)}, now {size(new)}"
    a, b = old.splitlines(), new.splitlines()
    i = next((k for k, (x, y) in enumerate(zip(a, b, strict=False)) if x != y),
             min(len(a), len(b)))
    before = repr(a[i][:SNIPPET]) if i < len(a) else "(end)"
    after = repr(b[i][:SNIPPET]) if i < len(b) else "(end)"
    return f"{len(a)} -> {len(b)} lines; first difference at line {i + 1}: {before} -> {after}"


def cost_diff(old: Any, new: Any) -> str:
    """``key old -> new`` for every cost entry that differs."""
    if not isinstance(old, Mapping) or not isinstance(new, Mapping):
        return f"was {old!r:.{SNIPPET}}, now {new!r:.{SNIPPET}}"
    keys = sorted(set(old) | set(new))
    return "; ".join(f"{k} {old.get(k)} -> {new.get(k)}" for k in keys
                     if old.get(k) != new.get(k))
