"""Pure text cleaning for IR artifacts, and the canonical form used for dedup hashing.

Every artifact the extractor stores must be byte-identical across runs and processes for the
same program, so anything that names the host or the Python call site is removed:

* MLIR: ``loc(...)`` attributes and ``#loc`` alias lines (JAX omits them with
  ``debug_info=False``; removing them again is a cheap guard);
* HLO: ``metadata={...}`` attributes (op_name, source_file, source_line, stack_frame_id) and the
  ``FileNames`` / ``FunctionNames`` / ``FileLocations`` / ``StackFrames`` tables;
* everywhere: host paths (``/home/...``, ``.../x.py:12``), ``File "...", line N`` frames and
  object addresses (``at 0x7f...``).

The scanners below are hand-written rather than regular expressions because attribute values
nest braces and parentheses and contain quoted strings.
"""

from __future__ import annotations

import hashlib
import re

__all__ = [
    "canonical_stablehlo",
    "clean_hlo",
    "clean_jaxpr",
    "clean_mlir",
    "ir_hash",
    "scrub_host",
]

_OPEN_CLOSE = {"(": ")", "{": "}", "[": "]"}


def _balanced_end(text: str, start: int) -> int:
    """Index just past the bracket group opening at ``text[start]``; quote-aware."""
    stack = [_OPEN_CLOSE[text[start]]]
    i, n = start + 1, len(text)
    while i < n and stack:
        c = text[i]
        if c == '"':
            i += 1
            while i < n and text[i] != '"':
                i += 2 if text[i] == "\\" else 1
        elif c in _OPEN_CLOSE:
            stack.append(_OPEN_CLOSE[c])
        elif c == stack[-1]:
            stack.pop()
        i += 1
    return i


def _remove_attr(text: str, opener: str, prefixes: tuple[str, ...]) -> str:
    """Remove every ``opener...`` group (balanced) with the first matching separator prefix.

    ``opener`` ends with the bracket that opens the group, e.g. ``"metadata={"``.
    """
    parts = []
    pos = 0
    while True:
        i = text.find(opener, pos)
        if i < 0:
            break
        cut = i
        for p in prefixes:
            if text.startswith(p, i - len(p)):
                cut = i - len(p)
                break
        if cut == i and i > 0 and (text[i - 1].isalnum() or text[i - 1] in "_."):
            # part of a longer identifier (e.g. "myloc("), not the attribute
            parts.append(text[pos : i + len(opener)])
            pos = i + len(opener)
            continue
        parts.append(text[pos:cut])
        pos = _balanced_end(text, i + len(opener) - 1)
    parts.append(text[pos:])
    return "".join(parts)


_LOC_ALIAS = re.compile(r"^#loc\d*\s*=.*(?:\n|$)", re.MULTILINE)
_HLO_TABLES = re.compile(
    r"^(?:FileNames|FunctionNames|FileLocations|StackFrames)\n(?:[^\n]+\n)*\n?", re.MULTILINE
)
_ADDRESS = re.compile(r"\bat 0x[0-9a-fA-F]+")
_PY_FRAME = re.compile(r'File "[^"\n]*", line \d+')
# An absolute path under a host root, or any path-like token naming a Python file.
_HOST_PATH = re.compile(
    r"(?<![\w/.])/(?:tmp|var|home|root|usr|opt|private|Users|work|mnt|nix|srv|scratch|proc|etc)"
    r"(?:/[\w.+@~-]+)*/?"
    r"|(?<![\w/.])(?:[\w.+@~-]*/)+[\w.+@~-]*\.py[cdx]?\b(?::\d+(?::\d+)?)?"
)


def scrub_host(text: str) -> str:
    """Mask host paths, Python frame references and object addresses."""
    if "0x" in text:
        text = _ADDRESS.sub("at 0xXXXXXXXXXXXX", text)
    if "File " in text:
        text = _PY_FRAME.sub('File "<path>", line <n>', text)
    if "/" in text:
        text = _HOST_PATH.sub("<path>", text)
    return text


def clean_mlir(text: str) -> str:
    """StableHLO / MLIR text without locations or host paths."""
    if "loc" in text:
        text = _LOC_ALIAS.sub("", text)
        text = _remove_attr(text, "loc(", (" ",))
    return scrub_host(text)


_BLANK_RUNS = re.compile(r"\n{3,}")


def clean_hlo(text: str) -> str:
    """HLO text without metadata attributes, stack-frame tables or host paths."""
    if "metadata={" in text:
        text = _remove_attr(text, "metadata={", (", ",))
    if "FileNames\n" in text or "StackFrames\n" in text:
        text = _HLO_TABLES.sub("", text)
    # One blank line between computations, whether or not tables were cut out (an
    # executable loaded from the persistent compilation cache has none).
    return scrub_host(_BLANK_RUNS.sub("\n\n", text).rstrip("\n") + "\n")


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def clean_jaxpr(text: str) -> str:
    """Jaxpr text without colour codes, host paths or object addresses (JAX prints no source
    info unless asked to)."""
    if "\x1b" in text:
        text = _ANSI.sub("", text)
    return scrub_host(text)


_MODULE_NAME = re.compile(r"\bmodule @(?:[\w.$-]+|\"[^\"]*\")")
_FUNC_DEF = re.compile(r"\bfunc\.func\s+(?:(?:public|private|nested)\s+)?@([\w.$-]+)")
_SYMBOL_REF = re.compile(r"@([\w.$-]+)")


def canonical_stablehlo(text: str) -> str:
    """StableHLO with the module name and every function name masked.

    The module name (``jit_<entry>``) becomes ``@m``; functions other than ``@main`` become
    ``@f0``, ``@f1``, ... in order of definition, so two programs that differ only in their
    Python function names have the same canonical text. Other symbols (custom-call targets,
    meshes) are untouched.
    """
    text = clean_mlir(text)
    text = _MODULE_NAME.sub("module @m", text, count=1)
    names: dict[str, str] = {}
    for name in _FUNC_DEF.findall(text):
        if name != "main" and name not in names:
            names[name] = f"f{len(names)}"
    if names:
        text = _SYMBOL_REF.sub(lambda m: "@" + names.get(m.group(1), m.group(1)), text)
    return text


def ir_hash(text: str) -> str:
    """Short sha256 of ``canonical_stablehlo(text)`` (16 hex digits)."""
    return hashlib.sha256(canonical_stablehlo(text).encode()).hexdigest()[:16]
