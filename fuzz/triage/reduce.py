"""Tree reduction: C-Reduce-style passes over a program tree, after Hypothesis' shrink.

Hypothesis shrinks a program's choice sequence; once a choice no longer maps to a smaller
program (a statement that only feeds the failing one, a wrapper the failure does not need),
these passes take over on the typed tree itself. Each pass is a small generator of smaller
candidate programs that knows nothing of why the program is interesting:

- ``results``: keep one result, drop one, or return an earlier value instead;
- ``dead``: drop dead statements (all at once, or one at a time, at any depth), and
  ``params``: the parameters nothing reads;
- ``cut``: a top-level statement's outputs become parameters of their type (its inputs die);
- ``const``: a statement's outputs become constants of their type (ones, or zeros), and so
  does a parameter of the program or of a region (a failure that needs one value, not the
  recipe's inputs);
- ``hoist``: the body of a region (a ``scan``, ``cond``, ``jit``, ``vmap``, ``shard_map``,
  ``checkpoint``, … body) becomes the whole program, its free values parameters (or ones):
  unwraps a transform the failure does not need;
- ``flatten``: pytree arguments and results become plain arrays; ``unbatch``: the entry's
  ``vmap`` over a batch axis goes;
- ``literals``: a scalar literal becomes 1;
- ``shapes``: a parameter loses its leading axis, or every axis is halved, and ``dtypes``: a
  half-precision parameter becomes float32 (the types downstream are inferred again with the
  op table's shape rules; in region-free programs only).

:func:`reduce` is the driver: it tries the candidates of every pass, smallest first, in
batches that the caller's ``test`` may judge in parallel, takes the smallest that still
fails, and starts again, until a whole round changes nothing or the budget is spent. Every
candidate is strictly smaller by :func:`size`, so it ends.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Sequence

from grammar.ops import OPS
from grammar.program import Apply, Const, Operand, Program, Value, reads, walk
from grammar.types import Lit, TensorType

__all__ = ["PASSES", "candidates", "reduce", "size"]

Body = tuple[Apply, ...]


def size(program: Program) -> tuple[int, int, int, int, int, int]:
    """What reduction makes smaller, most important first: statements, parameter elements,
    parameters, operands that are values (a constant in their place is one data dependency
    less), what is not plain (half-precision parameters, literals other than 1), source
    characters (in the ``ssa`` style)."""
    elements = sum(v.type.size for v in program.params)
    operands = [x for stmt, _ in walk(program.body) for x in stmt.inputs]
    fancy = sum(p.type.dtype in _HALF for p in program.params) + sum(
        isinstance(x, Lit) and x != _simple_literal(x) for x in operands)
    return (program.statement_count, elements, len(program.params),
            sum(isinstance(x, Value) for x in operands), fancy, len(program.render("ssa")))


# -- what a body reads --------------------------------------------------------------------

def _defines(body: Body) -> set[str]:
    names = set()
    for stmt, _ in walk(body):
        names.update(v.name for v in stmt.outputs)
        for region in stmt.regions:
            names.update(v.name for v in region.params)
    return names


def _program_reads(program: Program) -> set[str]:
    return reads(program.body, {v.name for v in program.results})


def _with(program: Program, **changes) -> Program:
    return dataclasses.replace(program, **changes)


# -- the passes ---------------------------------------------------------------------------

def _results(program: Program) -> Iterator[Program]:
    """One result kept, or one dropped, or an earlier value returned instead (what follows
    it dies); each also without what then feeds nothing."""
    if program.returns is not None:
        return
    results = program.results
    kept = [(v,) for v in results] + [results[:k] + results[k + 1:]
                                      for k in range(len(results))] if len(results) > 1 else []
    kept += [(v,) for stmt in program.body for v in stmt.outputs if v not in results]
    for chosen in kept:
        fewer = _with(program, results=chosen)
        yield fewer
        yield _unused_params_dropped(_without_dead(fewer))


def _drop_dead(body: Body, live: set[str], only: int | None, counter: list[int]) -> Body:
    """``body`` less its dead statements (every one, or the ``only``-th met, counting
    depth first), region bodies included; ``live``: the names read after ``body``."""
    kept: list[Apply] = []
    for stmt in reversed(body):
        dead = not any(v.name in live for v in stmt.outputs)
        if dead:
            counter[0] += 1
            if only is None or counter[0] - 1 == only:
                continue
        regions = tuple(dataclasses.replace(r, body=_drop_dead(
            r.body, {v.name for v in r.results} | live, only, counter))
            for r in stmt.regions)
        stmt = dataclasses.replace(stmt, regions=regions) if regions else stmt
        kept.append(stmt)
        live = live | reads((stmt,), set())
    return tuple(reversed(kept))


def _without_dead(program: Program, only: int | None = None) -> Program:
    return _with(program, body=_drop_dead(program.body, {v.name for v in program.results},
                                          only, [0]))


def _dead(program: Program) -> Iterator[Program]:
    everything = _without_dead(program)
    if everything.statement_count == program.statement_count:
        return
    yield everything
    counter = [0]  # the dead statements one at a time: as many as a pass that drops none meets
    _drop_dead(program.body, {v.name for v in program.results}, -1, counter)
    for k in range(counter[0]):
        yield _without_dead(program, only=k)


def _unused_params_dropped(program: Program) -> Program:
    if program.signature:
        return program
    read = _program_reads(program)
    params = tuple(p for p in program.params if p.name in read)
    return _with(program, params=params or program.params[:1])


def _params(program: Program) -> Iterator[Program]:
    """The program without the parameters it does not read."""
    fewer = _unused_params_dropped(program)
    if len(fewer.params) < len(program.params):
        yield fewer


def _cut(program: Program) -> Iterator[Program]:
    """Each top-level statement whose outputs are read, replaced by parameters."""
    if program.signature:
        return
    read = _program_reads(program)
    for k, stmt in enumerate(program.body):
        if any(v.name in read for v in stmt.outputs):
            cut = _with(program, params=program.params + stmt.outputs,
                        body=program.body[:k] + program.body[k + 1:])
            yield _unused_params_dropped(_without_dead(cut))


def _replace_inputs(body: Body, subst: dict[str, Operand]) -> Body:
    def one(stmt: Apply) -> Apply:
        return dataclasses.replace(
            stmt, inputs=tuple(subst.get(x.name, x) if isinstance(x, Value) else x
                               for x in stmt.inputs),
            regions=tuple(dataclasses.replace(r, body=_replace_inputs(r.body, subst))
                          for r in stmt.regions))
    return tuple(one(s) for s in body)


def _pinned(program: Program) -> set[str]:
    """The values a constant cannot stand for: the program's and its regions' results."""
    pinned = {v.name for v in program.results}
    for stmt, _ in walk(program.body):
        for region in stmt.regions:
            pinned.update(v.name for v in region.results)
    return pinned


def _const(program: Program) -> Iterator[Program]:
    """Each statement, at any depth, read only as an operand, replaced by constants (names
    are unique in a program, so its readers are found by name wherever they are); then each
    parameter so read."""
    pinned = _pinned(program)
    read = _program_reads(program)
    for stmt, _ in walk(program.body):
        names = {v.name for v in stmt.outputs}
        if names & read and not names & pinned:
            for zero in (False, True):
                subst: dict[str, Operand] = {v.name: Const(v.type, zero)
                                             for v in stmt.outputs}
                body = _replace_inputs(_without(program.body, stmt), subst)
                yield _unused_params_dropped(_without_dead(_with(program, body=body)))
    params = [] if program.signature else list(program.params)
    params += [p for stmt, _ in walk(program.body) for r in stmt.regions for p in r.params]
    for p in params:
        if p.name in read and p.name not in pinned:
            for zero in (False, True):
                body = _replace_inputs(program.body, {p.name: Const(p.type, zero)})
                yield _unused_params_dropped(_with(program, body=body))


def _without(body: Body, gone: Apply) -> Body:
    """``body`` less the statement ``gone``, at whatever depth it is."""
    return tuple(dataclasses.replace(s, regions=tuple(
        dataclasses.replace(r, body=_without(r.body, gone)) for r in s.regions))
        if s.regions else s for s in body if s is not gone)


def _hoist(program: Program) -> Iterator[Program]:
    """Each region's body as the whole program: its parameters and the outer values it
    reads become the entry's parameters."""
    for stmt, _ in walk(program.body):
        for region in stmt.regions:
            if not region.body:
                continue
            inner = _defines(region.body) | {p.name for p in region.params}
            free: dict[str, Value] = {}  # outer values the body reads, nested regions too
            for s, _ in walk(region.body):
                read = [x for x in s.inputs if isinstance(x, Value)]
                read += [v for r in s.regions for v in r.results]
                free.update((x.name, x) for x in read if x.name not in inner)
            free.update((v.name, v) for v in region.results if v.name not in inner)
            hoisted = Program(program.entry, tuple(region.params) + tuple(free.values()),
                              region.body, region.results, program.expected_failures,
                              style=program.style, inline_depth=program.inline_depth)
            yield hoisted
            yield _constant_params(hoisted)


def _constant_params(program: Program) -> Program:
    """``program`` with ones for every parameter a constant can stand for: a region that
    fails on the values its transform passes it, not on the recipe's."""
    pinned = _pinned(program)
    subst = {p.name: Const(p.type) for p in program.params if p.name not in pinned}
    return _unused_params_dropped(_with(program, body=_replace_inputs(program.body, subst)))


def _flatten(program: Program) -> Iterator[Program]:
    if program.signature or program.returns is not None:
        yield _with(program, signature=(), returns=None)


def _unbatch(program: Program) -> Iterator[Program]:
    if program.batch:
        yield _with(program, batch=0)


def _simple_literal(x: Lit) -> Lit:
    return x if x.dtype == "bool" else Lit(1 if isinstance(x.value, int) else 1.0, x.dtype)


def _literals(program: Program) -> Iterator[Program]:
    for k, stmt in enumerate(program.body):
        inputs = tuple(_simple_literal(x) if isinstance(x, Lit) else x for x in stmt.inputs)
        if inputs != stmt.inputs:
            body = program.body[:k] + (dataclasses.replace(stmt, inputs=inputs),) + \
                program.body[k + 1:]
            yield _with(program, body=body)


def _retyped(program: Program, types: dict[str, TensorType]) -> Program | None:
    """``program`` with parameters of ``types`` (by name), each statement's outputs typed
    again by its op's shape rule; None where a rule refuses, or the program has regions,
    pytrees or a batch (their types are not inferred here)."""
    if program.signature or program.returns is not None or program.batch or any(
            s.regions for s in program.body):
        return None
    env = {p.name: Value(p.name, types.get(p.name, p.type)) for p in program.params}

    def operand(x: Operand) -> Operand | TensorType:
        return env[x.name] if isinstance(x, Value) else x

    body = []
    for stmt in program.body:
        op = OPS[stmt.op]
        inputs = tuple(operand(x) for x in stmt.inputs)
        shapes = tuple(x.type if isinstance(x, Value | Const) else x for x in inputs)
        if not all(op.accepts(t) for t in shapes if isinstance(t, TensorType)):
            return None
        try:
            out = op.rule(shapes, stmt.params, [])
        except Exception:  # noqa: BLE001 - a rule refusing these types: no candidate
            return None
        if len(out) != len(stmt.outputs):
            return None
        outputs = tuple(Value(v.name, t) for v, t in zip(stmt.outputs, out, strict=True))
        env.update((v.name, v) for v in outputs)
        body.append(dataclasses.replace(stmt, inputs=inputs, outputs=outputs))
    return _with(program, params=tuple(env[p.name] for p in program.params), body=tuple(body),
                 results=tuple(env[v.name] for v in program.results))


def _smaller_shapes(shape: tuple[int, ...]) -> Iterator[tuple[int, ...]]:
    if shape:
        yield shape[1:]
    halved = tuple((d + 1) // 2 for d in shape)
    if halved != shape:
        yield halved


def _shapes(program: Program) -> Iterator[Program]:
    for p in program.params:
        for shape in _smaller_shapes(p.type.shape):
            retyped = _retyped(program, {p.name: p.type.with_shape(shape)})
            if retyped is not None:
                yield retyped


_HALF = ("float16", "bfloat16")


def _dtypes(program: Program) -> Iterator[Program]:
    for p in program.params:
        if p.type.dtype in _HALF:
            retyped = _retyped(program, {p.name: p.type.with_dtype("float32")})
            if retyped is not None:
                yield retyped


PASSES: dict[str, Callable[[Program], Iterator[Program]]] = {
    "results": _results, "dead": _dead, "params": _params, "cut": _cut, "const": _const,
    "hoist": _hoist, "flatten": _flatten, "unbatch": _unbatch, "literals": _literals,
    "shapes": _shapes, "dtypes": _dtypes,
}
"""Every pass by name, each a generator of candidates smaller than its program."""


def candidates(program: Program) -> list[tuple[str, Program]]:
    """Every pass's candidates for ``program`` that are strictly smaller (:func:`size`),
    one per distinct program, smallest first; each with the name of its pass."""
    own = size(program)
    seen: dict[tuple[str, str], tuple[tuple, str, Program]] = {}
    for name, make in PASSES.items():
        for candidate in make(program):
            key = (candidate.render("ssa"), repr(candidate.args))
            measure = size(candidate)
            if measure < own and key not in seen:
                seen[key] = (measure, name, candidate)
    return [(name, c) for _, name, c in sorted(seen.values(), key=lambda t: t[0])]


def reduce(program: Program, test: Callable[[Sequence[Program]], list[bool]], *,
           spent: Callable[[], bool] = lambda: False, parallel: int = 1,
           progress: Callable[[Program, list[str]], object] | None = None,
           ) -> tuple[Program, list[str]]:
    """The smallest program the passes reach from ``program`` for which ``test`` holds
    (``test`` judges a batch of up to ``parallel`` candidates at once, and says of each
    whether it still fails as ``program`` does), and the passes that made each step. Stops
    when a whole round changes nothing, or when ``spent()``; ``program`` is taken to
    fail. ``progress(best, steps)`` hears of each step as it is made."""
    current = program  # in its own style: a failure may be the rendering's (a literal
    # inlined where a method is called on it), which the ssa style would not show
    steps: list[str] = []
    tried: set[tuple[str, str]] = set()
    while not spent():
        todo = [(n, c) for n, c in candidates(current)
                if (c.render("ssa"), repr(c.args)) not in tried]
        found = None
        for start in range(0, len(todo), max(1, parallel)):
            if spent():
                break
            batch = todo[start:start + max(1, parallel)]
            tried.update((c.render("ssa"), repr(c.args)) for _, c in batch)
            verdicts = test([c for _, c in batch])
            found = next(((n, c) for (n, c), ok in zip(batch, verdicts, strict=True) if ok),
                         None)
            if found is not None:
                break
        if found is None:
            break
        steps.append(found[0])
        current = found[1]
        if progress is not None:
            progress(current, steps)
    return current, steps

