"""Crash-safe, deduplicated corpus store: JSONL shards plus a failures folder.

On-disk layout of a corpus directory::

    corpus.lock              exclusive fcntl lock held by the one writer
    shard-00000.jsonl        one JSON record per line, sorted keys, UTF-8
    shard-00001.jsonl        ... a new shard starts when the last one is full
    stats.json               written atomically by ``write_stats``
    failures/<slug>/repro.py     reproducer source, written atomically
    failures/<slug>/REPORT.md    the report (fuzz.triage.report_md), written atomically
    failures/<slug>/repro.json   {"signature", "known", "record"}, written last

Every record carries every field of ``FIELDS`` (missing ones as null) with one
type per field, so the shards load as a table with pandas or HuggingFace
``datasets``.  A record is appended with one ``write`` on an ``O_APPEND`` file
descriptor, so a killed process leaves whole lines plus at most one torn last
line, which the next ``open`` truncates away.  Lines that fail to decode
anywhere else are skipped and counted, never deleted.

Only hashes are kept in memory (ids, normalised-source hashes, StableHLO
hashes), never the records themselves.

The record schema lives in ``fuzz.corpus.schema`` and reading in ``fuzz.corpus.records``; this module is
the writer, and re-exports both for its callers. It stays above 400 lines because
``CorpusStore`` is one class whose methods share the lock, the open shard and the hash sets.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import re
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from extract.clean import ir_hash
from fuzz.corpus.records import (
    _SHARD_RE,
    FAILURES_DIR,
    MalformedLine,
    _decode_line,
    _is_torn,
    _iter_lines,
    iter_records,
    reproducers,
    shard_paths,
)
from fuzz.corpus.schema import (
    FIELD_NAMES,
    FIELDS,
    CorpusError,
    Field,
    _is_int,
    _is_number,
    encode_record,
    normalize_record,
    normalized_source_hash,
    storable,
)

__all__ = [
    "FAILURES_DIR",
    "FIELDS",
    "FIELD_NAMES",
    "CorpusError",
    "CorpusStore",
    "Field",
    "MalformedLine",
    "iter_records",
    "normalized_source_hash",
    "reproducers",
    "shard_paths",
    "storable",
]

SHARD_PREFIX = "shard-"
SHARD_SUFFIX = ".jsonl"
LOCK_NAME = "corpus.lock"
STATS_NAME = "stats.json"
DEFAULT_SHARD_BYTES = 64 * 1024 * 1024


# --------------------------------------------------------------------------- writing


def _slug(signature: str) -> str:
    """A directory name for a failure signature: readable prefix + hash suffix."""
    readable = re.sub(r"[^a-z0-9]+", "-", signature.lower()).strip("-")[:60].rstrip("-")
    digest = hashlib.sha256(signature.encode("utf-8")).hexdigest()[:10]
    return f"{readable}-{digest}" if readable else digest


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temp file in the same folder and ``os.replace``."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    _fsync_dir(path.parent)


def write_failure_folder(folder: Path, meta: Mapping[str, Any],
                         files: Mapping[str, str]) -> None:
    """Write ``files`` (name -> text) into a failure folder, then its ``repro.json``
    (``meta``: the marker a reader trusts), each atomically; values JSON cannot hold are
    written with ``str``."""
    for name, text in files.items():
        _atomic_write(folder / name, text.encode("utf-8"))
    text = json.dumps(meta, sort_keys=True, ensure_ascii=False, indent=1, default=str)
    _atomic_write(folder / "repro.json", (text + "\n").encode("utf-8"))


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


class CorpusStore:
    """The one writer of a corpus directory.  Use ``CorpusStore.open(path)``.

    Attributes after open: ``malformed`` (bad lines skipped, kept on disk),
    ``dropped_partial`` (torn last lines truncated away: 0 or 1), and per-session
    counters ``added``, ``duplicate_source``, ``duplicate_ir``.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        shard_bytes: int = DEFAULT_SHARD_BYTES,
        create: bool = True,
        fsync_every: int = 100,
        fsync_interval: float = 1.0,
    ) -> None:
        if not _is_int(shard_bytes) or shard_bytes <= 0:
            raise CorpusError(f"shard_bytes={shard_bytes!r} must be a positive number of bytes")
        if not _is_int(fsync_every) or fsync_every < 1:
            raise CorpusError(f"fsync_every={fsync_every!r} must be an int >= 1")
        if not _is_number(fsync_interval) or fsync_interval < 0:
            raise CorpusError(f"fsync_interval={fsync_interval!r} must be a number >= 0")
        self.path = Path(path)
        self.shard_bytes = shard_bytes
        self.fsync_every = fsync_every
        self.fsync_interval = float(fsync_interval)

        self.added = 0
        self.duplicate_source = 0
        self.duplicate_ir = 0
        self.malformed = 0
        self.dropped_partial = 0
        self.last_id: str | None = None

        # Memory is hashes only.  A record's default id is the first 16 hex digits
        # of its source hash, so it is implied by its source key; only ids given
        # explicitly are kept as strings (with the source keys they belong to).
        self._source_keys: set[int] = set()
        self._explicit_ids: set[str] = set()
        self._explicit_keys: set[int] = set()
        self._ir_hashes: set[str] = set()
        self._count = 0
        self._failures: dict[str, str | None] = {}  # signature -> known name
        self._failure_counts: dict[str, int] = {}
        self._known_names: dict[str, str | None] = {}  # signature -> known name, from counts
        self._totals = {"added": 0, "duplicate_source": 0, "duplicate_ir": 0}
        self._last_stats: dict[str, Any] = {}

        self._lock_fd: int | None = None
        self._fd: int | None = None
        self._shard_index = 0
        self._shard_size = 0
        self._unsynced = 0
        self._last_sync = time.monotonic()

        self._open_dir(create)
        try:
            self._acquire_lock()
            self._scan_shards()
            self._load_failures()
            self._load_stats()
            self._open_shard()
        except BaseException:
            self._release()
            raise

    @classmethod
    def open(cls, path: str | os.PathLike[str], **options: Any) -> CorpusStore:
        """Open (creating by default) the corpus at ``path``; see ``__init__`` for options."""
        return cls(path, **options)

    # ----------------------------------------------------------------- open steps

    def _open_dir(self, create: bool) -> None:
        p = self.path
        if p.exists() and not p.is_dir():
            raise CorpusError(f"corpus path {p} exists but is not a directory")
        if not p.exists():
            if not create:
                raise CorpusError(f"corpus directory {p} does not exist (create=False)")
            try:
                p.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise CorpusError(f"cannot create corpus directory {p}: {e.strerror or e}") from e
        if not os.access(p, os.W_OK | os.X_OK):
            raise CorpusError(f"corpus directory {p} is not writable: permission denied")

    def _acquire_lock(self) -> None:
        lock = self.path / LOCK_NAME
        try:
            fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:
            raise CorpusError(
                f"corpus directory {self.path} is not writable: cannot open {lock}: "
                f"{e.strerror or e}"
            ) from e
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            holder = ""
            with contextlib.suppress(OSError, ValueError):
                holder = os.pread(fd, 32, 0).decode().strip()
            os.close(fd)
            if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                who = f" (pid {holder})" if holder else ""
                raise CorpusError(
                    f"corpus {self.path} is already open by another writer{who}; "
                    f"lock file {lock} is held"
                ) from e
            raise CorpusError(f"cannot lock {lock}: {e.strerror or e}") from e
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._lock_fd = fd

    def _scan_shards(self) -> None:
        try:
            self._scan_shard_files()
        except OSError as e:
            where = e.filename or self.path
            raise CorpusError(f"cannot read corpus shard {where}: {e.strerror or e}") from e

    def _scan_shard_files(self) -> None:
        shards = shard_paths(self.path)
        for i, file in enumerate(shards):
            is_last = i == len(shards) - 1
            last: tuple[int, bytes] | None = None  # (offset, raw) of the previous line
            for _, offset, raw in _iter_lines(file):
                if last is not None:
                    self._ingest(last[1])
                last = (offset, raw)
            if last is None:
                continue
            offset, raw = last
            if is_last and raw.strip() and _is_torn(raw):
                try:
                    os.truncate(file, offset)
                except OSError as e:
                    raise CorpusError(
                        f"cannot truncate torn last line of {file}: {e.strerror or e}"
                    ) from e
                self.dropped_partial += 1
            else:
                self._ingest(raw)
        if shards:
            m = _SHARD_RE.match(shards[-1].name)
            assert m is not None
            self._shard_index = int(m.group(1))

    def _ingest(self, raw: bytes) -> None:
        if not raw.strip():
            return
        decoded = _decode_line(raw)
        if isinstance(decoded, str):
            self.malformed += 1
            return
        self._remember(decoded)

    def _remember(self, record: Mapping[str, Any]) -> None:
        self._count += 1
        source_hash = record.get("source_hash")
        if not isinstance(source_hash, str):
            try:
                source_hash = normalized_source_hash(record["source"])
            except CorpusError:  # hand-written record whose source does not parse
                source_hash = hashlib.sha256(record["source"].encode("utf-8")).hexdigest()
        self._remember_id(record["id"], source_hash)
        ir = record.get("stablehlo_hash")
        if ir is None and isinstance(record.get("stablehlo"), str):
            ir = ir_hash(record["stablehlo"])
        if ir is not None:
            self._ir_hashes.add(ir)

    def _remember_id(self, record_id: str, source_hash: str) -> None:
        key = _source_key(source_hash)
        self._source_keys.add(key)
        if record_id != source_hash[:16]:
            self._explicit_ids.add(record_id)
            self._explicit_keys.add(key)

    def _has_id(self, record_id: str) -> bool:
        if record_id in self._explicit_ids:
            return True
        if len(record_id) != 16 or record_id != record_id.lower():
            return False
        try:
            key = int(record_id, 16)
        except ValueError:
            return False
        return key in self._source_keys and key not in self._explicit_keys

    def _load_failures(self) -> None:
        for _, signature, known in reproducers(self.path):
            self._failures[signature] = known

    def _load_stats(self) -> None:
        try:
            data = json.loads((self.path / STATS_NAME).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return
        store = data.get("store") if isinstance(data, dict) else None
        if not isinstance(store, dict):
            return
        totals = store.get("totals")
        if isinstance(totals, dict):
            for k in self._totals:
                if _is_int(totals.get(k)):
                    self._totals[k] = totals[k]
        counts = store.get("failure_counts")
        if isinstance(counts, dict):
            for sig, entry in counts.items():
                if isinstance(entry, dict) and _is_int(entry.get("count")):
                    self._failure_counts[sig] = entry["count"]
                    known = entry.get("known")
                    self._known_names[sig] = known if isinstance(known, str) else None

    def _shard_file(self, index: int) -> Path:
        return self.path / f"{SHARD_PREFIX}{index:05d}{SHARD_SUFFIX}"

    def _open_shard(self) -> None:
        file = self._shard_file(self._shard_index)
        existed = file.exists()
        try:
            fd = os.open(file, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        except OSError as e:
            raise CorpusError(f"cannot open shard {file} for appending: {e.strerror or e}") from e
        self._fd = fd
        self._shard_size = os.fstat(fd).st_size
        if not existed:
            _fsync_dir(self.path)

    # ----------------------------------------------------------------- records

    def add(self, record: Mapping[str, Any], source_hash: str | None = None) -> str:
        """Store ``record`` unless known; return "added", "duplicate_source" or "duplicate_ir".

        ``source_hash``: ``normalized_source_hash(record["source"])`` when the caller has it
        already (the fuzz loop checks it before extracting), so it is not computed twice.

        Raises ``CorpusError`` if the record does not fit ``FIELDS``, if its given
        id is already used by a different program, or if the write fails (the
        shard is then cut back to its last whole line).
        """
        self._check_open()
        rec = normalize_record(record, source_hash)
        self.last_id = rec["id"]
        key = _source_key(rec["source_hash"])
        if key in self._source_keys:
            self.duplicate_source += 1
            return "duplicate_source"
        ir = rec["stablehlo_hash"]
        if ir is not None and ir in self._ir_hashes:
            self.duplicate_ir += 1
            return "duplicate_ir"
        if self._has_id(rec["id"]):
            raise CorpusError(
                f"record id {rec['id']!r} is already in corpus {self.path} for a different source"
            )
        line = encode_record(rec)
        if self._shard_size > 0 and self._shard_size + len(line) > self.shard_bytes:
            self._roll()
        self._append(line)
        self._remember_id(rec["id"], rec["source_hash"])
        if ir is not None:
            self._ir_hashes.add(ir)
        self._count += 1
        self.added += 1
        return "added"

    def _append(self, line: bytes) -> None:
        assert self._fd is not None
        before = self._shard_size
        try:
            _write_all(self._fd, line)
        except OSError as e:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, before)
            raise CorpusError(
                f"cannot append to {self._shard_file(self._shard_index)}: {e.strerror or e}"
            ) from e
        self._shard_size += len(line)
        self._unsynced += 1
        now = time.monotonic()
        if self._unsynced >= self.fsync_every or now - self._last_sync >= self.fsync_interval:
            self.sync()

    def _roll(self) -> None:
        self.sync()
        assert self._fd is not None
        os.close(self._fd)
        self._fd = None
        self._shard_index += 1
        self._open_shard()

    def sync(self) -> None:
        """fsync the current shard now (``add`` does this every N records or T seconds)."""
        if self._fd is not None and self._unsynced:
            os.fsync(self._fd)
        self._unsynced = 0
        self._last_sync = time.monotonic()

    def known_ir_hashes(self) -> frozenset[str]:
        """A snapshot of every StableHLO hash in the corpus (for workers to skip duplicates)."""
        return frozenset(self._ir_hashes)

    def known_ids(self) -> frozenset[str]:
        """A snapshot of every record id in the corpus."""
        implied = (f"{k:016x}" for k in self._source_keys if k not in self._explicit_keys)
        return frozenset(implied) | self._explicit_ids

    def knows_source(self, source: str) -> bool:
        """Whether a program equal to ``source`` up to formatting is already stored."""
        return self.knows_source_hash(normalized_source_hash(source))

    def knows_source_hash(self, source_hash: str) -> bool:
        """``knows_source`` for a ``normalized_source_hash`` already computed."""
        return _source_key(source_hash) in self._source_keys

    def __len__(self) -> int:
        return self._count

    def __contains__(self, record_id: object) -> bool:
        """Whether a record with this id is stored."""
        return isinstance(record_id, str) and self._has_id(record_id)

    def _check_open(self) -> None:
        if self._fd is None:
            raise CorpusError(f"corpus {self.path} is closed")

    # ----------------------------------------------------------------- failures

    def save_failure(
        self,
        signature: str,
        known: str | None,
        record: Mapping[str, Any],
        reproducer_source: str,
        files: Mapping[str, str] | None = None,
    ) -> Path | None:
        """Save the first reproducer of ``signature``; return its folder, or None if saved before.

        Writes ``failures/<slug>/repro.py`` and ``files`` (name -> text, e.g. the report)
        then ``repro.json`` (the marker read back on open), each atomically.  ``record`` is
        stored as given; values JSON cannot hold are written with ``str``.
        """
        self._check_open()
        if not isinstance(signature, str) or not signature:
            raise CorpusError(f"signature={signature!r} must be a non-empty string")
        if signature in self._failures:
            return None
        folder = self.path / FAILURES_DIR / _slug(signature)
        try:
            folder.mkdir(parents=True, exist_ok=True)
            write_failure_folder(folder, {"signature": signature, "known": known,
                                          "record": dict(record)},
                                 {"repro.py": reproducer_source, **(files or {})})
        except OSError as e:
            raise CorpusError(f"cannot save failure into {folder}: {e.strerror or e}") from e
        self._failures[signature] = known
        return folder

    def failure_signatures(self) -> frozenset[str]:
        """Signatures that already have a saved reproducer."""
        return frozenset(self._failures)

    def count_failure(self, signature: str, known: str | None = None) -> int:
        """Count one more occurrence of ``signature``; return the total (kept in stats.json)."""
        self._check_open()
        n = self._failure_counts.get(signature, 0) + 1
        self._failure_counts[signature] = n
        if known is not None or signature not in self._known_names:
            self._known_names[signature] = known
        return n

    def failure_counts(self) -> dict[str, dict[str, Any]]:
        """signature -> {"known": name or None, "count": n}."""
        names = {**self._failures, **self._known_names}
        return {
            sig: {"known": names.get(sig), "count": n}
            for sig, n in sorted(self._failure_counts.items())
        }

    # ----------------------------------------------------------------- stats, close

    def store_stats(self) -> dict[str, Any]:
        """The store's own counters, as merged into stats.json under "store"."""
        session = {
            "added": self.added,
            "duplicate_source": self.duplicate_source,
            "duplicate_ir": self.duplicate_ir,
        }
        return {
            "records": self._count,
            "malformed_lines": self.malformed,
            "dropped_partial": self.dropped_partial,
            "shards": len(shard_paths(self.path)),
            "session": session,
            "totals": {k: self._totals[k] + session[k] for k in session},
            "failure_counts": self.failure_counts(),
        }

    def write_stats(self, stats: Mapping[str, Any] | None = None) -> Path:
        """Write ``stats`` plus the store's counters (key "store") to stats.json atomically.

        ``close`` writes the last given stats again so the counters persist.
        """
        self._check_open()
        if stats is not None:
            self._last_stats = dict(stats)
        return self.write_json(STATS_NAME, {**self._last_stats, "store": self.store_stats()})

    def write_json(self, name: str, data: Mapping[str, Any]) -> Path:
        """Write ``data`` as JSON to the file ``name`` beside the shards, atomically."""
        self._check_open()
        text = json.dumps(data, sort_keys=True, ensure_ascii=False, indent=1, default=str)
        target = self.path / name
        try:
            _atomic_write(target, (text + "\n").encode("utf-8"))
        except OSError as e:
            raise CorpusError(f"cannot write {target}: {e.strerror or e}") from e
        return target

    def close(self) -> None:
        """fsync, write stats.json, release the lock.  Safe to call twice."""
        if self._fd is None and self._lock_fd is None:
            return
        try:
            if self._fd is not None:
                self.sync()
                self.write_stats()
        finally:
            self._release()

    def _release(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None
        if self._lock_fd is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
                os.close(self._lock_fd)
            self._lock_fd = None

    @property
    def closed(self) -> bool:
        return self._fd is None

    def __enter__(self) -> CorpusStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self.closed else "open"
        return f"CorpusStore({str(self.path)!r}, records={self._count}, {state})"


def _source_key(source_hash: str) -> int:
    """Compact in-memory key for a source hash: its first 64 bits."""
    try:
        return int(source_hash[:16], 16)
    except ValueError:  # not hex (hand-edited record): hash it instead
        return int(hashlib.sha256(source_hash.encode("utf-8")).hexdigest()[:16], 16)
