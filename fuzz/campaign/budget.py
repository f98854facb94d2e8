"""The run budget: a duration (``90s``, ``10m``, ``1h``) or a count of programs (``500x``)."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0}
_PATTERN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhx])\s*$")


@dataclass(frozen=True)
class Budget:
    """Seconds of wall time or a number of generated programs."""

    seconds: float | None = None
    programs: int | None = None

    @classmethod
    def parse(cls, text: str) -> Budget:
        match = _PATTERN.match(text)
        if not match or float(match.group(1)) <= 0:
            raise ValueError(f"--budget {text!r} is not a budget; accepted: a duration such as "
                             "90s, 10m, 1h, or a program count such as 500x")
        value, unit = float(match.group(1)), match.group(2)
        if unit == "x":
            if not value.is_integer():
                raise ValueError(f"--budget {text!r}: a program count must be a whole number")
            return cls(programs=int(value))
        return cls(seconds=value * _UNITS[unit])

    def exhausted(self, started: float, generated: int) -> bool:
        if self.programs is not None:
            return generated >= self.programs
        assert self.seconds is not None
        return time.monotonic() - started >= self.seconds

    def remaining(self, started: float, generated: int) -> str:
        if self.programs is not None:
            return f"{max(0, self.programs - generated)} programs left"
        assert self.seconds is not None
        return clock(max(0.0, self.seconds - (time.monotonic() - started))) + " left"

    def __str__(self) -> str:
        return f"{self.programs} programs" if self.programs is not None else clock(self.seconds)


def clock(seconds: float | None) -> str:
    s = int(seconds or 0)
    return f"{s // 3600:d}:{s // 60 % 60:02d}:{s % 60:02d}"
