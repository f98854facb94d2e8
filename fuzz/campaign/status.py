"""The live status line of the fuzz loop and of replay: redrawn in place on a terminal
(twice a second), logged as a line every 5 s otherwise or with ``quiet``."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO


class StatusLine:
    def __init__(self, quiet: bool, out: TextIO = sys.stderr):
        self.out = out
        self.live = not quiet and out.isatty()
        self.period = 0.5 if self.live else 5.0
        self.last = time.monotonic()  # the first line comes one period in, with news
        self.latest: Callable[[], str] | None = None
        self.shown = True

    def update(self, text: Callable[[], str]) -> None:
        """Note the newest state; ``text`` is only rendered when a line is due."""
        self.latest, self.shown = text, False
        now = time.monotonic()
        if now - self.last >= self.period:
            self.last = now
            self._show(final=False)

    def finish(self) -> None:
        """The last state, on its own line, unless that exact line was just logged."""
        if self.latest is not None and (self.live or not self.shown):
            self._show(final=True)

    def _show(self, final: bool) -> None:
        assert self.latest is not None
        if self.live:
            print("\r" + self.latest() + " " * 4, end="\n" if final else "", file=self.out,
                  flush=True)
        else:
            print(self.latest(), file=self.out, flush=True)
        self.shown = True
