"""Seeded draws: the same (seed, index) gives the same program in any process state."""

import importlib
import sys

import pytest

import grammar
from fuzz.campaign import sampling


def test_a_draw_does_not_depend_on_the_local_modules_imported(tmp_path, monkeypatch):
    # Hypothesis mixes in constants from the local modules imported at the time of a draw;
    # the fuzz loop imports some of its own modules only when a result arrives.
    strategy = grammar.programs()
    before = [sampling.draw(strategy, 4, index)[0].source for index in range(30)]
    probe = tmp_path / "jaxsmith_constants_probe.py"
    probe.write_text("INTS = (" + ", ".join(str(n) for n in range(-300, 300, 7)) + ")\n"
                     "FLOATS = (" + ", ".join(f"{n}.25" for n in range(100)) + ")\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(sys.modules, "jaxsmith_constants_probe",
                        importlib.import_module("jaxsmith_constants_probe"))
    after = [sampling.draw(strategy, 4, index)[0].source for index in range(30)]
    assert before == after


def test_the_fuzz_loop_draws_never_fail():
    # index 110 of seed 20261130 scanned over a ravelled pytree too large for any ys value
    from fuzz.report.api_coverage import op_weights

    strategy = grammar.programs(weights=op_weights())
    for index in range(100, 250):
        assert sampling.draw(strategy, 20261130, index) is not None


def test_a_region_result_too_large_for_its_budget_is_summed():
    from grammar.generate import Builder, Config
    from grammar.opdef import RegionSpec
    from grammar.program import Value
    from grammar.types import Limits, TensorType

    cfg = Config(ops=("sum",), min_statements=1, max_statements=2, max_depth=1, max_params=1,
                 dtypes=("bool",), limits=Limits(4, 8, 64))
    builder = Builder(lambda strategy: 0, cfg, frozenset())
    big = Value("c1", TensorType((8, 8), "bool"))
    body: list = []
    result = builder.result(None, [big], body, RegionSpec((big.type,), (None,),
                                                           max_result_elements=4))
    assert [s.op for s in body] == ["any"] and body[0].inputs == (big,)
    assert result.type == TensorType((), "bool")


@pytest.mark.slow
def test_every_category_is_at_least_two_percent_of_the_fuzz_loop_draws():
    # issue 10's floor, on drawn programs (a run's records differ by the few that fail)
    from collections import Counter

    from fuzz.report.api_coverage import op_weights
    from grammar.categories import CATEGORIES, categories_of

    strategy = grammar.programs(weights=op_weights())
    n, counts = 600, Counter()
    for index in range(n):
        counts.update(categories_of(sampling.draw(strategy, 1, index)[0]))
    shares = {c: counts[c] / n for c in CATEGORIES}
    assert min(shares.values()) >= 0.02, sorted(shares.items(), key=lambda kv: kv[1])[:5]
