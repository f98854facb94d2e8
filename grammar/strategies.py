"""The public Hypothesis strategies of the grammar."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from functools import lru_cache

from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument

from grammar.categories import CATEGORIES, STRUCTURAL
from grammar.generate import Config, program_strategy
from grammar.ops import OPS
from grammar.program import Program
from grammar.styles import STYLES
from grammar.types import ALL_DTYPES, MAX_LIMITS, Limits


def _weights(weights: Mapping[str, int] | None) -> tuple[tuple[str, int], ...]:
    if weights is None:
        return ()
    _names("weights", weights, OPS)
    bad = {k: v for k, v in weights.items()
           if not isinstance(v, int) or isinstance(v, bool) or not 1 <= v <= 1000}
    if bad:
        raise InvalidArgument(f"weights={dict(list(bad.items())[:3])!r}: each weight must be "
                              "an integer from 1 to 1000")
    return tuple(sorted((k, v) for k, v in weights.items() if v != 1))


def _names(arg: str, value: Iterable[str] | None, known: Iterable[str]) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        value = [value]
    items = tuple(dict.fromkeys(value))
    unknown = [v for v in items if v not in known]
    if unknown:
        raise InvalidArgument(f"{arg}={list(items)!r} names unknown {arg} {unknown!r}; "
                              f"accepted: {', '.join(sorted(known))}")
    return items


def _check_int(arg: str, value: int, lo: int, hi: int | None = None) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < lo or (
            hi is not None and value > hi):
        bound = f"between {lo} and {hi}" if hi is not None else f"at least {lo}"
        raise InvalidArgument(f"{arg}={value!r} must be an integer {bound}")


def _forced(required: tuple[str, ...], ops: tuple[str, ...]) -> tuple:
    """The ops that must appear for each required category, with their construction hints."""
    forced: list[tuple[str, frozenset[str]]] = []
    for category in required:
        if category == "scalar_array":
            forced.append(("multiply", frozenset({"scalar"})))
        elif category == "nested_branch":
            forced.append(("cond", frozenset({"nested"})))
        elif category == "compound":
            forced += [("sum", frozenset()), ("add", frozenset())]
        elif category not in STRUCTURAL:
            candidates = [n for n in ops if category in OPS[n].categories]
            if not candidates:
                raise InvalidArgument(f"categories={list(required)!r}: no allowed op covers "
                                      f"{category!r}; add one of "
                                      f"{[n for n, op in OPS.items() if category in op.categories]}"
                                      " to ops")
            if not any(category in OPS[n].categories for n, _ in forced):
                forced.append((candidates[0], frozenset()))
    return tuple(forced)


MAX_STATEMENTS = 200
"""The most statements ``programs`` accepts (``max_statements``); validate's size caps
derive from it."""
MAX_PARAMS = 16
"""The most parameters ``programs`` accepts (``max_params``)."""


def programs(*, max_statements: int = 50, min_statements: int = 1,
             ops: Iterable[str] | None = None, categories: Iterable[str] | None = None,
             dtypes: Iterable[str] | None = None, max_depth: int = 2, max_params: int = 4,
             max_rank: int = 4, max_dim: int = 8, max_elements: int = 4096,
             known_failures: bool = True, swarm: bool = True,
             styles: Iterable[str] | None = None,
             weights: Mapping[str, int] | None = None,
             large_shapes: int = 0, x64: int = 0) -> st.SearchStrategy[Program]:
    """Random, valid JAX programs.

    ``ops`` restricts the ops drawn from (default: all); ``categories`` lists categories
    every program must cover; ``dtypes`` restricts the parameters' dtypes; ``max_depth``
    bounds nesting of control flow and transforms; ``known_failures=False`` leaves out ops
    that JAX is known not to differentiate in reverse mode (traced-bound ``fori_loop``,
    ``while_loop``); ``swarm`` enables a random subset of op families per program;
    ``styles`` restricts the source styles drawn (``grammar.STYLES``; default: all);
    ``weights`` draws an op that many times as often as one of weight 1 (default: every op
    once; ``python -m fuzz`` weighs them by real-world use, ``fuzz.report.api_coverage``);
    ``large_shapes=N`` makes one program in N (a draw, so it replays and shrinks) a
    large-shape one: a first argument of 2**15 to 2**20 elements, at most 8 statements of
    ops whose cost is about linear (``grammar.generate.LARGE_FAMILIES``); 0: none.
    ``x64=N`` makes one program in N (a draw) a 64-bit one: ``float64``, ``int64`` and
    ``bool`` parameters and the ops that take them (``grammar.x64``), run under
    ``jax_enable_x64``; 0: none.
    """
    _check_int("min_statements", min_statements, 1)
    _check_int("max_statements", max_statements, 1, MAX_STATEMENTS)
    if min_statements > max_statements:
        raise InvalidArgument(f"min_statements={min_statements} is larger than "
                              f"max_statements={max_statements}")
    _check_int("max_depth", max_depth, 0, 4)
    _check_int("max_params", max_params, 1, MAX_PARAMS)
    _check_int("max_rank", max_rank, 1, MAX_LIMITS.max_rank)
    _check_int("max_dim", max_dim, 1, MAX_LIMITS.max_dim)
    _check_int("max_elements", max_elements, 1, MAX_LIMITS.max_elements)
    _check_int("large_shapes", large_shapes, 0, 10**6)
    _check_int("x64", x64, 0, 10**6)
    op_names = _names("ops", ops, OPS) or tuple(OPS)
    if not known_failures:
        kept = tuple(n for n in op_names if not isinstance(OPS[n].known_failure, str))
        if not kept:
            raise InvalidArgument(f"ops={list(op_names)!r} are all known failures, which "
                                  "known_failures=False leaves out")
        op_names = kept
    required = _names("categories", categories, CATEGORIES)
    dtype_names = _names("dtypes", dtypes, ALL_DTYPES) or ALL_DTYPES
    style_names = _names("styles", styles, STYLES) or tuple(STYLES)
    weighed = _weights(weights)
    forced = _forced(required, op_names)
    if "nested_branch" in required and max_depth < 2:
        raise InvalidArgument(f"categories includes 'nested_branch', which needs max_depth >= 2,"
                              f" but max_depth={max_depth}")
    if any(OPS[n].has_regions for n, _ in forced) and max_depth < 1:
        raise InvalidArgument(f"categories={list(required)!r} needs control flow or transforms, "
                              f"which need max_depth >= 1, but max_depth={max_depth}")
    if max_depth == 0 and all(OPS[n].has_regions for n in op_names):
        raise InvalidArgument(f"ops={list(op_names)!r} all hold nested regions, which need "
                              "max_depth >= 1, but max_depth=0")
    floor = 2 if "multi_statement" in required else 3 if "compound" in required else 1
    symbolic = "symbolic_shape" in required
    if symbolic:  # room for a batch of 2 within the element budget
        if max_elements == 1:
            raise InvalidArgument("categories includes 'symbolic_shape', whose batch axis "
                                  "needs max_elements >= 2, but max_elements=1")
        max_elements //= 2
    cfg = Config(ops=op_names, min_statements=max(min_statements, floor, len(forced)),
                 max_statements=max(max_statements, floor, len(forced)), max_depth=max_depth,
                 max_params=max_params, dtypes=dtype_names,
                 limits=Limits(max_rank, max_dim, max_elements), forced=forced,
                 vector="vector" in required, swarm=swarm, known_failures=known_failures,
                 symbolic=symbolic, styles=style_names, weights=weighed, large=large_shapes,
                 x64=x64)
    return _strategy(cfg)


@lru_cache(maxsize=256)
def _strategy(cfg: Config) -> st.SearchStrategy[Program]:
    return program_strategy(cfg)
