"""Command-line argument types shared by ``python -m fuzz`` and its subcommands: each names
the flag, the value and what would be accepted."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable, Sequence


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


def names(kind: str, known: Sequence[str], also: str = "") -> Callable[[str], list[str]]:
    """A comma-separated list of names from ``known`` (``also``: what else is accepted)."""
    def parse(text: str) -> list[str]:
        items = [t.strip() for t in text.split(",") if t.strip()]
        unknown = [t for t in items if t not in known]
        if unknown or not items:
            raise argparse.ArgumentTypeError(
                f"unknown {kind} {', '.join(unknown) or repr(text)}; accepted: "
                f"{', '.join(sorted(known))}{also}")
        return list(dict.fromkeys(items))
    return parse


def oracle_list(known: Sequence[str]) -> Callable[[str], list[str]]:
    """``--oracles``: comma-separated names from ``known``, or ``none``."""
    some = names("oracle", known, ", or none")

    def parse(text: str) -> list[str]:
        return [] if text.strip() == "none" else some(text)
    return parse


def oracle_rates(known: tuple[str, ...]) -> Callable[[str], dict[str, float]]:
    """``--oracle-rate``: one share for every oracle (``0.2``) or ``name=share`` pairs."""
    def share(flag_text: str, text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not 0 < value <= 1:
            raise argparse.ArgumentTypeError(
                f"--oracle-rate {flag_text!r}: {text!r} must be a share in (0, 1]")
        return value

    def parse(text: str) -> dict[str, float]:
        if "=" not in text:
            return dict.fromkeys(known, share(text, text))
        out = {}
        for item in text.split(","):
            name, _, value = item.partition("=")
            if name.strip() not in known:
                raise argparse.ArgumentTypeError(
                    f"--oracle-rate {text!r}: unknown oracle {name.strip()!r}; accepted: "
                    f"{', '.join(known)}")
            out[name.strip()] = share(text, value.strip())
        return out
    return parse


def share(flag: str) -> Callable[[str], float]:
    """A share in [0, 1] for ``flag``."""
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not 0 <= value <= 1:
            raise argparse.ArgumentTypeError(f"{flag} {text!r}: must be a share in [0, 1]")
        return value
    return parse


def _non_negative(flag: str, unit: str) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not 0 <= value < math.inf:
            raise argparse.ArgumentTypeError(f"{flag} {text!r} must be a number of {unit} >= 0 "
                                             "(0: no limit)")
        return value
    return parse


def add_limit_options(p: argparse.ArgumentParser) -> None:
    """``--max-memory`` and ``--max-cpu``: the workers' resource limits (``limits``)."""
    from extract.worker import DEFAULT_LIMITS

    p.add_argument("--max-memory", type=_non_negative("--max-memory", "GiB"),
                   default=DEFAULT_LIMITS.memory / 2**30, metavar="GIB",
                   help="address space of each worker in GiB, at least 1 (0: no limit); "
                        f"default {DEFAULT_LIMITS.memory / 2**30:g}")
    p.add_argument("--max-cpu", type=_non_negative("--max-cpu", "seconds"),
                   default=DEFAULT_LIMITS.cpu, metavar="SECONDS",
                   help="CPU seconds one program may use, all threads together, before its "
                        f"worker is ended (0: no limit); default {DEFAULT_LIMITS.cpu:g}")


def limits(a: argparse.Namespace, error: Callable[[str], object]):
    """The ``extract.worker.ResourceLimits`` that ``add_limit_options``' flags ask for."""
    from extract.worker import ResourceLimits

    try:
        return ResourceLimits(memory=int(a.max_memory * 2**30) or None, cpu=a.max_cpu or None)
    except ValueError as e:
        error(f"--max-memory/--max-cpu: {e}")


def levels_type(text: str) -> tuple[str, ...]:
    """``--levels``: comma-separated IR levels (``extract.levels``), or ``all``."""
    from extract.levels import check_levels

    try:
        return check_levels(text.strip())
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e).replace("levels=", "--levels ", 1)) from None
