"""Running ``python -m fuzz`` from the tests, as a user would."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from fuzz.cli import COMMANDS

ROOT = Path(__file__).resolve().parents[1]

SMALL = ("--max-statements", "15")
"""The default size, 50, makes each compile several times slower; the runs in the tests check
the loop, not long programs."""


def fuzz(*args: str, timeout: float = 300,
         env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """``python -m fuzz ARGS`` in the repository, with ``env`` added to the environment; a
    fuzz run draws ``SMALL`` programs unless the arguments say otherwise."""
    if args and args[0] not in COMMANDS and "--max-statements" not in args:
        args = (*args, *SMALL)
    return subprocess.run([sys.executable, "-m", "fuzz", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout, env={**os.environ, **(env or {})})
