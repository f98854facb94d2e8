"""Coverage-guided generation: mutants replay from their parent, are valid draws, and a
guided run says which program each record mutated."""

from __future__ import annotations

import json
import re

from runner import fuzz

import grammar
from fuzz import sampling
from fuzz.features import record_features
from fuzz.guide import Guide, Mutation, mutate
from fuzz.store import iter_records

FIELDS = {"stablehlo": "%0 = stablehlo.sine %arg0 : tensor<3xf32>\n", "passes": ["fusion"]}


def test_a_mutant_replays_from_its_parent_and_its_mutation():
    strategy = grammar.programs()
    parent, choices = sampling.draw(strategy, 7, 3)
    for mutation in (Mutation(3, "regrow", len(choices) // 2),
                     Mutation(3, "point", next(i for i, c in enumerate(choices)
                                               if isinstance(c, int) and c > 0), 0)):
        first = sampling.draw(strategy, 7, 40, mutate(choices, mutation))
        again = sampling.draw(strategy, 7, 40, mutate(choices, mutation))
        assert first is not None and first[0].source == again[0].source
        compile(first[0].source, "<mutant>", "exec")  # a valid program, drawn as any other
    regrown = sampling.draw(strategy, 7, 40, mutate(choices, Mutation(3, "regrow", 0)))
    assert regrown[0].source == sampling.draw(strategy, 7, 40)[0].source  # nothing kept
    whole = sampling.draw(strategy, 7, 40, mutate(choices, Mutation(3, "regrow", len(choices))))
    assert whole[0].source == parent.source  # everything kept


def test_the_pool_keeps_programs_that_bring_a_new_feature():
    guide = Guide(seed=1)
    assert guide.plan(0) is None  # no parent yet: a fresh draw
    assert guide.observe(0, (1, 2, 3), record_features(FIELDS), None)
    assert not guide.observe(1, (4, 5), record_features(FIELDS), None)  # nothing new
    assert guide.observe(2, (6,), record_features({**FIELDS, "passes": ["dce"]}),
                         Mutation(0, "point", 1, 9))
    plans = [guide.plan(i) for i in range(3, 103)]
    mutants = [p for p in plans if p is not None]
    assert 30 <= len(mutants) <= 70  # about MUTANT_SHARE
    # the rarest feature's parent: "passes:dce" is seen once, the parent of 0 brought four
    assert sum(m.parent == 2 for _, m in mutants) > sum(m.parent == 0 for _, m in mutants) / 4
    assert guide.stats() == {"parents": 2, "mutants": len(mutants),
                             "mutants_with_new_features": 1, "fresh_with_new_features": 1}


def test_a_guided_run_names_each_mutants_parent(tmp_path):
    corpus = tmp_path / "c"
    done = fuzz("--budget", "12x", "--seed", "5", "--workers", "1", "--corpus", str(corpus),
                "--quiet", "--no-minimize", "--no-grad", "--oracles", "none", "--guide")
    assert done.returncode == 0, done.stderr
    found = [rec["found_by"] for _, _, rec in iter_records(corpus)]
    mutants = [f for f in found if "mutant of #" in f]
    assert mutants and all(f.startswith("python -m fuzz --seed 5 --guide, program #")
                           for f in found)
    indices = {int(re.search(r"program #(\d+)", f).group(1)) for f in found}
    assert all(int(re.search(r"mutant of #(\d+)", f).group(1)) in indices for f in mutants)
    stats = json.loads((corpus / "stats.json").read_text())
    assert stats["guide"]["mutants"] >= len(mutants) and stats["guide"]["parents"] >= 1
