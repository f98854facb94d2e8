"""The minimiser's shrink: Hypothesis' shrinker, with whole top-level statements deleted
between its rounds."""

from __future__ import annotations

import pytest

from fuzz.campaign import sampling
from fuzz.triage.minimize import _drop_statements, shrink
from grammar import programs

STRATEGY = programs(max_statements=4, ops=["sin", "cos", "tanh", "add", "multiply"],
                    dtypes=["float32"])


def has_multiply(program) -> bool:
    return "multiply" in program.ops


def drawn(n: int, keep) -> list:
    """The first ``n`` programs of seed 3 that ``keep`` accepts, with their choices."""
    found = []
    for index in range(1000):
        program, choices = sampling.draw(STRATEGY, 3, index)
        if keep(program):
            found.append((program, choices))
            if len(found) == n:
                return found
    raise AssertionError(f"only {len(found)} programs of seed 3 qualify")


def test_the_statement_pass_deletes_the_statements_that_only_feed_the_failing_one():
    # a chain whose last statement alone multiplies: Hypothesis deletes at most five
    # choices at a time, fewer than a statement's, so it can keep the chain
    [(program, choices)] = drawn(1, lambda p: p.statement_count >= 3 and p.body[-1].op ==
                                 "multiply" and p.ops.count("multiply") == 1)
    smaller = _drop_statements(STRATEGY, choices, has_multiply, lambda: False)
    assert smaller is not None and len(smaller) < len(choices)
    shrunk = sampling.draw(STRATEGY, 0, 0, prefix=smaller)[0]
    assert shrunk.ops == ("multiply",) and shrunk.statement_count == 1, shrunk.source
    assert _drop_statements(STRATEGY, smaller, has_multiply, lambda: False) is None  # no run
    assert _drop_statements(STRATEGY, choices, has_multiply, lambda: True) is None  # spent


@pytest.mark.slow
def test_every_shrink_ends_at_one_statement_where_one_fails():
    # without the statement pass about one shrink in thirteen kept 2 to 8 statements
    for program, choices in drawn(10, lambda p: has_multiply(p) and p.statement_count >= 2):
        best, calls, _ = shrink(STRATEGY, choices, has_multiply, max_calls=500)
        assert best is not None and best.statement_count == 1, (program.source, best.source)
        assert 0 < calls <= 500


def test_a_program_that_no_longer_fails_shrinks_to_nothing():
    [(_, choices)] = drawn(1, lambda p: not has_multiply(p))
    assert shrink(STRATEGY, choices, has_multiply)[:2] == (None, 1)


def test_past_its_budget_a_shrink_tries_nothing_more():
    [(_, choices)] = drawn(1, lambda p: has_multiply(p) and p.statement_count >= 3)
    tried = []

    def still_fails(program) -> bool:
        tried.append(program)
        return has_multiply(program)

    best, calls, _ = shrink(STRATEGY, choices, still_fails, max_calls=2)
    assert calls == len(tried) == 2 and best is not None and has_multiply(best)
