"""Command-line argument types shared by ``python -m fuzz`` and its subcommands: each names
the flag, the value and what would be accepted."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable


def positive_int(flag: str) -> Callable[[str], int]:
    def parse(text: str) -> int:
        if not text.isdigit() or int(text) < 1:
            raise argparse.ArgumentTypeError(f"{flag} {text!r} must be a whole number >= 1")
        return int(text)
    return parse


def positive_seconds(flag: str) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not 0 < value < math.inf:
            raise argparse.ArgumentTypeError(f"{flag} {text!r} must be a positive number of "
                                             "seconds")
        return value
    return parse


def seed(text: str) -> int:
    if not text.isdigit() or int(text) >= 2**63:
        raise argparse.ArgumentTypeError(f"--seed {text!r} must be a whole number from 0 to "
                                         f"{2**63 - 1}")
    return int(text)
