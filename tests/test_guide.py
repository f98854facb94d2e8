"""Coverage-guided generation: mutants replay from their parent, are valid draws, and a
guided run says which program each record mutated."""

from __future__ import annotations

import json
import re
from random import Random

import pytest
from runner import fuzz

import grammar
from fuzz.campaign import sampling
from fuzz.campaign.budget import Budget
from fuzz.campaign.features import record_features
from fuzz.campaign.guide import (
    COST_PRIOR,
    EPOCH,
    FACTOR_RANGE,
    MUTANT_SHARE,
    OP_SHRINK,
    CostModel,
    Guide,
    Mutation,
    Plan,
    mutate,
    tree_features,
)
from fuzz.campaign.loop import FuzzRun, Options
from fuzz.campaign.options import LARGE_SHAPES, X64
from fuzz.corpus.schema import normalized_source_hash
from fuzz.corpus.store import iter_records

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


def only(op: str, index: int = 0) -> grammar.Program:
    """A program of one op, drawn."""
    return sampling.draw(grammar.programs(ops=[op], max_statements=2), 1, index)[0]


def test_the_pool_keeps_programs_that_bring_a_new_feature():
    guide = Guide(seed=1, ops=["sin", "add"])
    assert guide.plan(0) == Plan(0)  # no parent yet: a fresh draw
    sin = only("sin")
    assert guide.observe(0, (1, 2, 3), record_features(FIELDS), Plan(0), sin)
    assert not guide.observe(1, (4, 5), record_features(FIELDS), Plan(0), sin)  # nothing new
    assert guide.observe(2, (6,), record_features({**FIELDS, "passes": ["dce"]}),
                         Plan(0, [6], Mutation(0, "point", 1, 9)), sin)
    plans = [guide.plan(i) for i in range(3, 103)]
    mutants = [p for p in plans if p.mutation is not None]
    # mutants brought 1 of 1, fresh draws 1 of 2: a Thompson draw favours mutants ~70 % of
    # the time, so about 0.7 x 50 % + 0.3 x 5 % of the programs are mutants
    assert 20 <= len(mutants) <= 55, len(mutants)
    # the rarest feature's parent: "passes:dce" is seen once, the parent of 0 brought four
    by = [p.mutation.parent for p in mutants]
    assert by.count(2) > by.count(0) / 4
    assert all(p.prefix is not None and p.epoch == 0 for p in mutants)  # parents' epoch
    assert [p.epoch for p in plans if p.mutation is None][-1] == 102 // EPOCH
    assert guide.stats() == {"parents": 2, "mutants": 1,  # stored: the one observed
                             "mutants_with_new_features": 1, "fresh_with_new_features": 1,
                             "epochs": 102 // EPOCH + 1}


def test_mutants_that_bring_nothing_become_rare():
    guide = Guide(seed=2, ops=["sin"])
    sin = only("sin")
    for i in range(40):  # fresh draws bring a new feature each, mutants none
        guide.observe(i, (i,), {"passes": {f"p{i}"}}, Plan(0), sin)
        guide.observe(100 + i, (i,), {}, Plan(0, [i], Mutation(i, "regrow", 0)), sin)
    share = sum(guide.plan(i).mutation is not None for i in range(200, 600)) / 400
    assert abs(share - MUTANT_SHARE[0]) < 0.03, share


def test_op_weights_follow_the_new_features_each_op_brought():
    guide = Guide(seed=1, ops=["sin", "add", "exp"], base={"add": 3})
    assert guide.weights(0) == {"sin": 1, "add": 3, "exp": 1}  # nothing seen: the run's own
    sines = [{"stablehlo_ops": {f"op{i}"}} for i in range(4)]  # each brings a new feature
    for i, found in enumerate(sines):
        guide.spent(only("sin"), 1.0)
        guide.observe(i, (), found, Plan(0), only("sin"))
    for i in range(4, 12):  # add brings nothing new
        guide.spent(only("add"), 1.0)
        guide.observe(i, (), {"stablehlo_ops": {"op0"}}, Plan(0), only("add"))
    w = guide.weights(1)
    # each program (2 statements) took 1 s: 2 of its 10 + 2 units, 1/6 s, go to its op.
    # mean 4 features / 2 s; a statement 1/12 s. sin (4 + 2 x 2/12) / (4/6 + 1/12) = 2.89x
    # the mean; add (0 + 2/12) / (8/6 + 1/12) = 0.12x (floor 1/4); exp, never drawn,
    # (0 + 2/12) / (1/12) = 2x; weights are base / (1/4) x factor
    assert w == {"sin": round(4 * 52 / 18), "add": 3, "exp": 8}, w
    assert guide.weights(0) == {"sin": 1, "add": 3, "exp": 1}  # an epoch's weights stay
    low, high = FACTOR_RANGE
    assert all(1 <= w[op] <= 1000 for op in w) and low < 1 < high


def test_op_weights_are_per_second_and_the_pick_per_expected_cost():
    guide = Guide(seed=1, ops=["sin", "exp"])
    sin, exp = only("sin"), only("exp")
    for i in range(4):  # as many new features per record, but exp's take 4 times as long
        guide.spent(sin, 1.0)
        guide.observe(2 * i, (), {"passes": {f"s{i}"}}, Plan(0), sin)
        guide.spent(exp, 4.0)
        guide.observe(2 * i + 1, (), {"passes": {f"e{i}"}}, Plan(0), exp)
    w = guide.weights(1)
    assert w["sin"] > w["exp"], w
    # every program has 2 statements: the fit knows overhead + 2 x an op's cost, 2.5 s on
    # average, and each op's deviation from it, +-1.5 s, shrunk by its 4 programs x 2^2
    # statements against OP_SHRINK: 16 / (16 + 4)
    assert guide.cost(sin) == pytest.approx(2.5 - 1.5 * 16 / (16 + OP_SHRINK))
    assert guide.cost(exp) == pytest.approx(2.5 + 1.5 * 16 / (16 + OP_SHRINK))
    guide.promised = set()  # both promise as much: the cheaper one is picked
    assert guide.pick([exp, sin]) == 1


def test_the_cost_model_learns_the_overhead_and_each_ops_cost():
    model = CostModel(["fast", "slow", "mid"])
    assert model.predict(["fast"] * 3) == COST_PRIOR + 3  # nothing extracted: in statements
    per = {"fast": 0.05, "slow": 0.4, "mid": 0.1}
    rng = Random(0)
    for _ in range(60):  # 0.6 s whatever the program, and its statements' costs
        ops = [rng.choice(list(per)) for _ in range(rng.randint(1, 12))]
        model.add(ops, 0.6 + sum(per[op] for op in ops))
    overhead, _, fitted = model.fit()
    # the prior (COST_PRIOR's split of the seconds, PRIOR_SHARE) pulls the overhead up a
    # little: 0.70 s here
    assert overhead == pytest.approx(0.6, rel=0.2), overhead
    assert fitted["slow"] == pytest.approx(0.4, rel=0.1) and fitted["fast"] < fitted["mid"]
    assert model.predict(["slow"] * 3) == pytest.approx(1.8, rel=0.05)
    assert model.predict(["fast"] * 3) == pytest.approx(0.75, rel=0.15)
    # the fixed split it replaced (10 statements of overhead, each statement its op's mean
    # part of the seconds) priced the two programs 1.53 and 1.48 s


def test_of_the_candidates_the_one_whose_tree_promises_most_is_picked():
    guide = Guide(seed=1, ops=["sin", "exp"])
    sin, exp = only("sin"), only("exp")
    assert "op:sin" in tree_features(sin)
    assert guide.pick([sin, exp]) == 0  # a tie: the first
    guide.observe(0, (), {}, Plan(0), sin)
    assert guide.pick([sin, exp]) == 1  # exp is new, sin is not
    chain = sampling.draw(grammar.programs(ops=["sin", "exp"], max_statements=6,
                                           styles=["ssa"]), 1, 2)[0]
    pairs = {f for f in tree_features(chain) if f.startswith("pair:")}
    assert pairs and pairs <= {"pair:sin>sin", "pair:sin>exp", "pair:exp>sin",
                               "pair:exp>exp"}, chain.source
    # as much promised by a longer program loses: novelty is per unit of cost
    strategy = grammar.programs(ops=["sin"], max_statements=8, styles=["ssa"])
    short = sin
    longer = next(p for i in range(50) if (p := sampling.draw(strategy, 3, i)[0])
                  and p.statement_count > short.statement_count
                  and tree_features(short) <= tree_features(p))
    guide.promised = tree_features(longer) - tree_features(short)
    assert guide.pick([longer, short]) == 1


def test_a_mutant_that_repeats_a_known_program_is_drawn_fresh(tmp_path, monkeypatch):
    run = FuzzRun(Options(budget=Budget(programs=1), corpus=tmp_path, seed=3, workers=1,
                          guide=True, quiet=True))
    parent, choices = sampling.draw(run.strategy, 3, 0)
    known = normalized_source_hash(parent.source)
    run.store = type("Store", (), {"knows_source_hash": staticmethod(lambda h: h == known)})()
    whole = Plan(0, list(choices), Mutation(0, "regrow", len(choices)))  # the parent again
    monkeypatch.setattr(run.guide, "plan", lambda index: whole)
    submitted = []
    run._submit(type("Pool", (), {"submit": lambda self, i, source, *a, **k:
                                  submitted.append(source)})())
    assert submitted and submitted[0] != parent.source and run.tally.duplicate_source == 0
    plan = run.in_flight[0][4]
    assert plan.mutation is None and "candidate" in run._found_by(0, plan)
    assert submitted[0] == sampling.draw(run._strategy(plan), 3, 0,
                                         candidate=plan.candidate)[0].source  # it replays


@pytest.mark.slow
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
    assert stats["guide"]["mutants"] == len(mutants) and stats["guide"]["parents"] >= 1
    # a fresh draw replays from its index and its epoch's op weights in guide-<seed>.json
    state = json.loads((corpus / "guide-5.json").read_text())
    fresh = {int(m.group(1)): (int(m.group(2)), int(m.group(3)), rec["source"]) for _, _, rec in
             iter_records(corpus) if (m := re.search(
                 r"program #(\d+), candidate (\d+) of 8 under the op weights of epoch (\d+) "
                 r"\(guide-5\.json\)",
                 rec["found_by"]))}
    assert fresh, found
    for index, (candidate, epoch, source) in fresh.items():
        strategy = grammar.programs(max_statements=15, weights=state["weights"][epoch],
                                    large_shapes=LARGE_SHAPES, x64=X64)  # the CLI defaults
        assert sampling.draw(strategy, 5, index, candidate=candidate)[0].source == source
