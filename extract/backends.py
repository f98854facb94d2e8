"""Pluggable backends: other implementations a program runs on, each judged against XLA.

A backend is a callable ``backend(stablehlo: str, inputs: list[numpy.ndarray]) ->
list[numpy.ndarray]``: the program's StableHLO module (one argument per input, unused ones
kept) and its inputs in, its outputs out as the flat list of leaves in
``jax.tree_util.tree_leaves`` order. A transformation backend takes the program's Python
callable instead (``backend(fn, inputs)``, ``fn`` taking one array per leaf); it says so
with :func:`declare`. A backend that does not handle a program raises :class:`Unsupported`
(the verdict is ``skipped: <its message>``); anything else it raises is a failure of its
stage, ``backend:<name>``, bucketed and minimised like any other.

A backend is named on the command line as ``module:function`` (``module:Class.method``
too), or by its name in the ``jaxsmith.backends`` entry-point group of an installed package
(``[project.entry-points."jaxsmith.backends"] mytool = "mypkg.jaxsmith:run"``). The
StableHLO reference interpreter is the built-in backend the ``interpreter`` oracle runs
(``extract.oracles.INTERPRETER``), so this interface is used on every program.

Loading imports the backend's module: the fuzz loop loads each backend once in the parent
(so a wrong name fails before any work, with a message saying what would be accepted) and
once in every worker, by its ``target``.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

__all__ = ["ENTRY_POINT_GROUP", "STAGE_PREFIX", "Backend", "Unsupported", "declare",
           "installed", "load", "load_all"]

ENTRY_POINT_GROUP = "jaxsmith.backends"
STAGE_PREFIX = "backend:"
TAKES = ("stablehlo", "callable")
_TARGET = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")
_NAME = re.compile(r"^[A-Za-z_][\w.-]*$")
F = TypeVar("F", bound=Callable[..., Any])


class Unsupported(Exception):  # noqa: N818 - a verdict, not an error
    """Raised by a backend for a program it does not handle; its message says why."""


def declare(*, takes: str = "stablehlo", name: str | None = None) -> Callable[[F], F]:
    """Mark a function as a backend that takes ``takes`` (``"stablehlo"``: the module's
    text, ``"callable"``: the program's Python function) and is named ``name`` in records
    and failure signatures (default: the function's name)."""
    if takes not in TAKES:
        raise ValueError(f"takes={takes!r}: expected one of {', '.join(TAKES)}")
    if name is not None and not _NAME.match(name):
        raise ValueError(f"name={name!r}: expected letters, digits, '_', '.' or '-'")

    def mark(fn: F) -> F:
        fn.jaxsmith_backend = {"takes": takes, "name": name}  # type: ignore[attr-defined]
        return fn

    return mark


@dataclass(frozen=True)
class Backend:
    """A loaded backend: ``fn`` called on what ``takes`` says, ``target`` the
    ``module:qualname`` it was loaded from. ``reference``: the backend is trusted and XLA
    is the one judged (the interpreter); otherwise the backend is judged against XLA."""

    name: str
    fn: Callable[..., Any]
    target: str
    takes: str = "stablehlo"
    reference: bool = False

    @property
    def stage(self) -> str:
        """The stage and oracle name of its verdicts and failures."""
        return self.name if self.reference else f"{STAGE_PREFIX}{self.name}"


def installed() -> dict[str, str]:
    """The backends installed packages declare: entry-point name -> ``module:qualname``."""
    return {ep.name: ep.value.replace(" ", "")
            for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)}


def _accepted() -> str:
    names = sorted(installed())
    have = f"installed: {', '.join(names)}" if names else \
        f"no package installs one in the {ENTRY_POINT_GROUP!r} entry-point group"
    return f"expected module:function, or the name of an installed backend ({have})"


def load(spec: str) -> Backend:
    """The backend ``spec`` names (``module:function`` or an entry-point name); a spec that
    names nothing callable raises ``ValueError`` saying what would be accepted."""
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError(f"backend {spec!r}: {_accepted()}")
    spec = spec.strip()
    target = spec if ":" in spec else installed().get(spec)
    if target is None or not _TARGET.match(target):
        raise ValueError(f"backend {spec!r}: {_accepted()}")
    module_name, qualname = target.split(":")
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as e:
        raise ValueError(f"backend {spec!r}: cannot import module {module_name!r} ({e}); "
                         f"is it on sys.path (run from its folder, or install it)?") from None
    except Exception as e:  # the user's module failed while it was imported
        raise ValueError(f"backend {spec!r}: importing module {module_name!r} raised "
                         f"{type(e).__name__}: {e}") from None
    for part in qualname.split("."):
        if not hasattr(obj, part):
            raise ValueError(f"backend {spec!r}: module {module_name!r} has no {qualname!r}")
        obj = getattr(obj, part)
    if not callable(obj):
        raise ValueError(f"backend {spec!r}: {target} is a {type(obj).__name__}, not a "
                         f"function of (stablehlo, inputs)")
    marks = getattr(obj, "jaxsmith_backend", None) or {}
    name = marks.get("name") or (spec if ":" not in spec else qualname.rsplit(".", 1)[-1])
    return Backend(name, obj, target, marks.get("takes", "stablehlo"))


def load_all(specs: Sequence[str]) -> tuple[Backend, ...]:
    """Every backend of ``specs``, loaded; two backends of one name raise ``ValueError``."""
    loaded = tuple(load(s) for s in specs)
    names = [b.name for b in loaded]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ValueError(f"backends {list(specs)!r}: two are named {', '.join(twice)}; give "
                         f"one another name with @extract.backends.declare(name=...)")
    return loaded
