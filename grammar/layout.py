"""The entry's layout: which parameters a program takes as one dict or tuple argument,
whether it returns a dict, whether it maps its body over a batch (``symbolic_shape``), and
the source style it is written in.

Drawn after the body, from the parameters and results it made, so a flat program's draws
are unchanged and the shrinker reaches the flat form by turning the flags off.  Dict keys
come from the names model code gives its parameters and outputs; they are sorted, and the
leaves follow them, so the order of ``Program.results`` is the order of
``jax.tree.leaves`` of what the entry returns.
"""

from __future__ import annotations

from collections.abc import Sequence

from grammar.opdef import Draw, flag, integer
from grammar.ops import OPS
from grammar.program import Apply, Group, Value, walk

PARAM_KEYS = ("w", "b", "scale", "kernel", "bias", "embedding", "gamma", "beta")
RESULT_KEYS = ("out", "aux", "logits", "state", "loss", "hidden", "mask", "stats")
GROUP_NAMES = {True: "params", False: "batch"}
"""The argument's name: a dict of parameters, or a tuple such as ``(inputs, targets)``."""


def _group(name: str, leaves: list[Value], keys: tuple[str, ...] | None) -> Group:
    if keys is None:
        return Group(name, tuple(leaves))
    pairs = sorted(zip(keys, leaves, strict=True))
    return Group(name, tuple(v for _, v in pairs), tuple(k for k, _ in pairs))


def draw_signature(draw: Draw, params: list[Value]) -> tuple[Value | Group, ...]:
    """``()`` (one array per parameter), or the first parameters as arrays and the last
    two or more as one dict or tuple argument (drawn one time in three)."""
    if len(params) < 3 or integer(draw, 0, 2) < 2:
        return ()
    size = integer(draw, 2, len(params) - 1)
    as_dict = size <= len(PARAM_KEYS) and flag(draw)
    grouped = params[-size:]
    keys = PARAM_KEYS[:size] if as_dict else None
    return (*params[:-size], _group(GROUP_NAMES[as_dict], grouped, keys))


def draw_returns(draw: Draw, results: tuple[Value, ...]) -> Group | None:
    """``None`` (a tuple of the results), or a dict of them under drawn keys (one time in
    four)."""
    n = len(results)
    if not 2 <= n <= len(RESULT_KEYS) or integer(draw, 0, 3) < 3:
        return None
    start = integer(draw, 0, len(RESULT_KEYS) - n)
    return _group("result", list(results), RESULT_KEYS[start:start + n])


STYLE_DRAWS = ("ssa", "inlined", "methods", "named", "named", "idiomatic", "idiomatic",
               "idiomatic")
"""The styles a program is drawn in, each as often as it is listed (``ssa`` first: where
shrinking goes)."""


def draw_style(draw: Draw, styles: tuple[str, ...]) -> tuple[str, int]:
    """A style among ``styles`` and, for an inlining style, its nesting depth (2 to 4)."""
    from grammar.styles import STYLES

    menu = [s for s in STYLE_DRAWS if s in styles]
    style = menu[integer(draw, 0, len(menu) - 1)]
    return style, integer(draw, 2, 4) if STYLES[style].inline else 2


BATCH_ODDS = 12
"""One program in ``BATCH_ODDS`` is batched, unless a run asks for ``symbolic_shape``."""
MAX_BATCH = 4


def draw_batch(draw: Draw, body: Sequence[Apply], params: Sequence[Value],
               results: Sequence[Value], budget: int, forced: bool) -> int:
    """0 (the entry calls the body directly), or the size of the batch the entry maps the
    body over with ``jax.vmap`` (``Program.batch``): one time in ``BATCH_ODDS``, always when
    ``forced``.  Only a body of batchable ops is batched, and only with every batched value
    within ``budget`` elements (a batched argument has one more dimension than the grammar's
    limits allow, which the validator admits)."""
    if not forced and integer(draw, 0, BATCH_ODDS - 1) < BATCH_ODDS - 1:
        return 0
    if any(not OPS[s.op].batchable for s, _ in walk(body)):
        return 0
    largest = max(v.type.size for v in (*params, *results))
    cap = min(MAX_BATCH, budget // max(1, largest))
    return integer(draw, 2, cap) if cap >= 2 else 0
