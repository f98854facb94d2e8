"""The real-world op weights of ``--op-weights real``, cached on disk.

Computing them (``fuzz.report.api_coverage.op_weights``) resolves the measure's names, which
imports JAX: 1.4 s of a run's start, before the first program is drawn (docs/benchmarks.md,
Start-up), and the parent needs JAX for nothing else. The cache file is named for a hash of
what the weights depend on (the jax and jaxlib versions, the measure, the op table's calls,
the code that computes them), so a change of any of them computes them afresh. It lives in
``$JAXSMITH_CACHE``, else ``$XDG_CACHE_HOME/jaxsmith`` or ``~/.cache/jaxsmith``; a cache that
cannot be read or written is computed around, never an error.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from importlib import metadata, resources
from pathlib import Path

__all__ = ["cache_dir", "real_op_weights"]


def cache_dir() -> Path:
    """Where the cache lives (the module docstring)."""
    if os.environ.get("JAXSMITH_CACHE"):
        return Path(os.environ["JAXSMITH_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "jaxsmith"


def _key() -> str:
    """A hash of everything the weights depend on."""
    from fuzz.report import api_coverage
    from grammar.ops import OPS

    h = hashlib.sha256()
    for dist in ("jax", "jaxlib"):
        h.update(f"{dist}={metadata.version(dist)};".encode())
    h.update(resources.files("fuzz.data").joinpath("realworld-jax-api.tsv").read_bytes())
    h.update(Path(api_coverage.__file__).read_bytes())
    for name, op in sorted(OPS.items()):
        h.update(f"{name}:{op.family}:{','.join(op.calls)};".encode())
    return h.hexdigest()[:16]


def real_op_weights() -> dict[str, int]:
    """``api_coverage.op_weights()``, read from the cache when it holds them, else computed
    and stored there."""
    from fuzz.report.api_coverage import op_weights

    path = cache_dir() / f"op-weights-{_key()}.json"
    try:
        weights = json.loads(path.read_text())
        if isinstance(weights, dict) and all(isinstance(v, int) for v in weights.values()):
            return weights
    except (OSError, ValueError):
        pass
    weights = op_weights()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False,
                                         suffix=".tmp") as tmp:
            json.dump(weights, tmp)
        os.replace(tmp.name, path)  # whole or not at all, even beside another run
    except OSError:
        pass
    return weights
