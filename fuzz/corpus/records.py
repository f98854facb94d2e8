"""Reading a corpus: its shard files in order, their records, and its saved failures.

Lines that fail to decode are yielded as :class:`MalformedLine`, never dropped silently.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fuzz.corpus.schema import KIND, check_value

__all__ = ["FAILURES_DIR", "MalformedLine", "iter_file", "iter_records", "reproducers",
           "shard_paths"]

FAILURES_DIR = "failures"
_SHARD_RE = re.compile(r"^shard-(\d{5,})\.jsonl$")


@dataclass(frozen=True)
class MalformedLine:
    """A shard line that is not a valid record; ``iter_records`` yields it instead."""

    file: Path
    line_no: int
    reason: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line_no}: {self.reason}"


def _decode_line(raw: bytes) -> dict[str, Any] | str:
    """A record dict, or the reason the line is not one.  Never raises."""
    if not raw.endswith(b"\n"):
        return "incomplete last line (no trailing newline)"
    try:
        obj = json.loads(raw)
    except (ValueError, RecursionError) as e:
        return f"invalid JSON: {e}"
    if not isinstance(obj, dict):
        return f"not a JSON object but {type(obj).__name__}"
    if not isinstance(obj.get("source"), str):
        return "field 'source' is missing or not a string"
    if not isinstance(obj.get("id"), str):
        return "field 'id' is missing or not a string"
    for name, kind in KIND.items():
        _, problem = check_value(name, kind, obj.get(name))
        if problem:
            return f"wrong type: {problem}"
    return obj


def _is_torn(raw: bytes) -> bool:
    """A line cut short by a crash: no trailing newline, or not parseable as JSON."""
    if not raw.endswith(b"\n"):
        return True
    try:
        json.loads(raw)
    except (ValueError, RecursionError):
        return True
    return False


def shard_paths(path: str | os.PathLike[str]) -> list[Path]:
    """The shard files of corpus ``path`` in order (an empty list if there are none)."""
    root = Path(path)
    try:
        names = os.listdir(root)
    except FileNotFoundError:
        return []
    found = sorted((int(m.group(1)), n) for n in names if (m := _SHARD_RE.match(n)))
    return [root / n for _, n in found]


def _iter_lines(file: Path) -> Iterator[tuple[int, int, bytes]]:
    """(line_no from 1, byte offset, raw line including its newline if any)."""
    offset = 0
    with open(file, "rb") as fh:
        for line_no, raw in enumerate(fh, start=1):
            yield line_no, offset, raw
            offset += len(raw)


def reproducers(path: str | os.PathLike[str]) -> Iterator[tuple[Path, str, str | None]]:
    """``(folder, signature, known name)`` of each readable ``failures/*/repro.json``."""
    for meta in sorted((Path(path) / FAILURES_DIR).glob("*/repro.json")):
        try:
            data = json.loads(meta.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(data, dict) and isinstance(data.get("signature"), str):
            known = data.get("known")
            yield meta.parent, data["signature"], known if isinstance(known, str) else None


def iter_file(file: Path) -> Iterator[tuple[Path, int, dict[str, Any] | MalformedLine]]:
    """Yield ``(file, line_no, record_or_error)`` for every non-blank line of one JSONL file.

    A bad line (invalid JSON, not an object, a field of the wrong type, a torn last line)
    yields a ``MalformedLine`` naming file and line, and a file that cannot be read (a
    directory, no permission) one ``MalformedLine`` at line 0: this never raises.
    """
    try:
        for line_no, _, raw in _iter_lines(file):
            if not raw.strip():
                continue
            decoded = _decode_line(raw)
            if isinstance(decoded, str):
                yield file, line_no, MalformedLine(file, line_no, decoded)
            else:
                yield file, line_no, decoded
    except OSError as e:  # a directory named like a shard, a file unreadable or gone
        yield file, 0, MalformedLine(file, 0, f"cannot read: {e.strerror or e}")


def iter_records(
    path: str | os.PathLike[str],
) -> Iterator[tuple[Path, int, dict[str, Any] | MalformedLine]]:
    """``iter_file`` over every shard of corpus ``path``, in order."""
    for file in shard_paths(path):
        yield from iter_file(file)
