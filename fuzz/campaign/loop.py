"""The budgeted fuzz loop: generate, extract in workers, store, reduce and report new
failures. Over 400 lines: one class, :class:`FuzzRun`, whose methods share the run's pool,
store, guide and tally (what a run is told and counts is in ``fuzz.campaign.options``)."""

from __future__ import annotations

import dataclasses
import signal
import sys
import threading
import time
from collections import Counter
from typing import Any, TextIO

from extract import ExtractorPool
from extract.args import args_json
from extract.backends import load_all
from fuzz.campaign import sampling
from fuzz.campaign.budget import clock
from fuzz.campaign.features import Coverage, Series, verdict_kind
from fuzz.campaign.guide import CANDIDATES, GUIDE_NAME, Guide, Plan
from fuzz.campaign.options import (  # noqa: F401 - DEFAULT_CORPUS, DEFAULT_ORACLE_RATES: the CLI's
    AFTER_RUN_S,
    AFTER_RUN_SHARE,
    DEFAULT_CORPUS,
    DEFAULT_ORACLE_RATES,
    DRAIN_S,
    Options,
    Tally,
)
from fuzz.campaign.status import StatusLine
from fuzz.campaign.summary import outcomes, summary
from fuzz.corpus.stats import STABLEHLO_OPS
from fuzz.corpus.store import STATS_NAME, CorpusError, CorpusStore, normalized_source_hash, storable
from fuzz.report.api_coverage import api_coverage, api_use, headline
from fuzz.triage.command import triage_folder
from fuzz.triage.folder import REPORT_NAME, failure_files
from fuzz.triage.known_findings import match_finding
from fuzz.triage.minimize import Job, Minimizer
from fuzz.triage.report_md import render_report
from grammar import OPS, programs


class FuzzRun:
    """One run of ``python -m fuzz``; :meth:`run` returns the final stats."""

    def __init__(self, options: Options, out: TextIO = sys.stderr):
        self.o, self.out = options, out
        self.tally = Tally()
        self.strategy = programs(**options.grammar)
        self._epoch_strategies: dict[int, Any] = {}
        self._epochs_saved = 0  # epochs of op weights in guide-<seed>.json
        self.started = time.monotonic()
        self.in_flight: dict[int, tuple[Any, tuple, str, tuple[int, str], Plan | None]] = {}
        self.minimizing: set[str] = set()
        self.line = StatusLine(options.quiet, out)
        self._last_stats = 0.0
        self.guide = Guide(options.seed, list(OPS), options.grammar.get("weights")) \
            if options.guide else None
        self.backends = {b.stage: b for b in load_all(options.backends)}
        self.interrupted = False
        self.new_hashes: list[str] = []
        self.failed_sources: set[str] = set()  # hashes of sources that failed in this run
        self.loop_s: float | None = None  # seconds until the last extraction finished

    # -- setup and teardown -----------------------------------------------------------

    def _pool(self, workers: int, dedup: bool = True, engine: str = "local") -> Any:
        """Extraction workers; with ``dedup`` they skip compiling IR the corpus holds. The
        minimiser's one worker is always local."""
        options = {"timeout": self.o.timeout, "grad": self.o.grad, "limits": self.o.limits,
                   "skip_hashes": self.store.known_ir_hashes() if dedup else None,
                   "levels": self.o.levels, "backends": self.o.backends}
        if engine == "ray":
            from extract.ray_pool import RayPool

            return RayPool(workers, address=self.o.ray_address, **options)
        return ExtractorPool(workers, **options)

    def run(self) -> dict[str, Any]:
        self.store = CorpusStore.open(self.o.corpus)
        self.coverage = Coverage.resume(self.o.corpus / STATS_NAME)
        self.series = Series(self.o.corpus)
        self.say(f"jaxsmith: seed {self.o.seed}, budget {self.o.budget}, {self.o.workers} "
                 f"workers, corpus {self.o.corpus} ({len(self.store)} records)")
        try:
            pool = self._pool(self.o.workers, engine=self.o.engine)
        except BaseException:  # a Ray cluster that cannot be reached, say
            self.store.close()
            raise
        minimizer = Minimizer(
            self.strategy, lambda n: self._pool(n, dedup=False), self.o.grad,
            workers=self.reducing_workers,
            triage=lambda folder, deadline: triage_folder(
                folder, deadline=deadline, parallel=self.reducing_workers)) \
            if self.o.minimize else None
        if minimizer is not None and self.o.budget.seconds is not None:
            minimizer.deadline = self.started + self.o.budget.seconds + DRAIN_S
        previous = self._catch_sigint()
        try:
            self._loop(pool, minimizer)
        except KeyboardInterrupt:
            self.interrupted = True
        finally:
            if self.interrupted:
                self.say("\ninterrupted: flushing what is done")
            self.loop_s = time.monotonic() - self.started
            pool.close()
            if minimizer is not None:
                self._finish_minimizing(minimizer)
            stats = self.stats()
            # resolving names imports JAX, which the parent otherwise never does: once, here
            stats["api_coverage"] = headline(api_coverage(self.tally.api_calls,
                                                          self.tally.api_methods))
            self._write_stats(stats)
            self.store.close()
            if previous is not None:
                signal.signal(signal.SIGINT, previous)
        self.line.finish()
        self.say(summary(stats, self.o.corpus))
        return stats

    def _catch_sigint(self) -> Any:
        """Make the first Ctrl-C a request the loop acts on between programs; the second
        interrupts. A KeyboardInterrupt raised at an arbitrary point can land in a garbage
        collector callback, where Python prints and swallows it. Returns the handler to put
        back, or None where SIGINT is ignored (a background job) or this is not the main
        thread."""
        if threading.current_thread() is not threading.main_thread() or \
                signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
            return None

        def request_stop(signum: int, frame: Any) -> None:
            if self.interrupted:
                raise KeyboardInterrupt
            self.interrupted = True

        return signal.signal(signal.SIGINT, request_stop)

    @property
    def reducing_workers(self) -> int:
        """Workers that reduce failures while the run goes on: one in four, at least one."""
        return max(1, self.o.workers // 4)

    def _finish_minimizing(self, minimizer: Minimizer) -> None:
        """Let queued reductions go on until the budget's end (a duration budget), or for
        ``AFTER_RUN_S`` or ``AFTER_RUN_SHARE`` of the run, the longer (a count budget); a
        Ctrl-C cuts them short. What is left is saved as pending, for ``python -m fuzz
        triage``."""
        if minimizer.deadline is None:
            minimizer.deadline = time.monotonic() + max(AFTER_RUN_S,
                                                        AFTER_RUN_SHARE * self.loop_s)
        try:
            if minimizer.waiting and not self.interrupted:
                left = max(0.0, minimizer.deadline - time.monotonic())
                self.say(f"reducing and reporting {minimizer.waiting} new failure(s) for at "
                         f"most {left:.0f} s; Ctrl-C cuts it short")
            while (minimizer.waiting or not minimizer.done.empty()) and \
                    not self.interrupted and time.monotonic() < minimizer.deadline:
                self._collect_minimized(minimizer)  # queues the triage of each saved one
                time.sleep(0.25)
            minimizer.shutdown(finish=False, wait=0)
        except KeyboardInterrupt:
            self.interrupted = True
            minimizer.shutdown(finish=False, wait=0)
        self._collect_minimized(minimizer)
        self.tally.reports_pending = list(minimizer.unfinished)

    # -- the loop ---------------------------------------------------------------------

    def _loop(self, pool: ExtractorPool, minimizer: Minimizer | None) -> None:
        seconds = self.o.budget.seconds
        while not self.interrupted:
            # while failures are being reduced, their workers' share of the cores is theirs
            depth = max(1, self.o.workers - self.reducing_workers) \
                if minimizer is not None and minimizer.waiting else 2 * self.o.workers
            exhausted = self.o.budget.exhausted(self.started, self.tally.generated)
            while not exhausted and pool.outstanding < depth:
                self._submit(pool)
                exhausted = self.o.budget.exhausted(self.started, self.tally.generated)
            if exhausted and not pool.outstanding:
                break
            if exhausted and seconds is not None and \
                    time.monotonic() - self.started > seconds + DRAIN_S:
                self.tally.abandoned = pool.outstanding  # the budget is the budget
                break
            for index, result in pool.poll(0.25):
                self._handle(index, result, minimizer)
            if self.new_hashes:  # other workers skip what one of them extracted
                pool.add_skip_hashes(self.new_hashes)
                self.new_hashes = []
            if minimizer is not None:
                self._collect_minimized(minimizer)
            self._tick()

    def _submit(self, pool: ExtractorPool) -> None:
        index = self.tally.generated
        self.tally.generated += 1
        plan = self.guide.plan(index) if self.guide is not None else None
        drawn, plan = self._draw(index, plan)
        try:
            source_hash = None if drawn is None else normalized_source_hash(drawn[0].source)
            if plan is not None and plan.mutation is not None and self._known(source_hash):
                # a mutant that repeats a program the run has seen: a fresh draw instead
                drawn, plan = self._draw(index, self.guide.fresh(index))
                source_hash = None if drawn is None else normalized_source_hash(drawn[0].source)
        except CorpusError:  # Python's parser failed on it: never stop the run for it
            drawn = None
        if drawn is None:
            self.tally.overruns += 1
            return
        program, choices = drawn
        if self._known(source_hash):
            self.tally.duplicate_source += 1
            return
        seed = sampling.input_seed(self.o.seed, index)
        recipe = sampling.input_recipe(self.o.seed, index, self.o.special_inputs)
        oracles = sampling.sampled_oracles(self.o.seed, index, source_hash, self.o.oracle_rates)
        self.in_flight[index] = (program, choices, source_hash, (seed, recipe), plan)
        pool.submit(index, program.source, program.entry, program.args, seed=seed,
                    oracles=oracles, polymorphic_shapes=program.polymorphic_shapes,
                    recipe=recipe)

    def _draw(self, index: int, plan: Plan | None) -> tuple[Any, Plan | None]:
        """Program ``index`` (and its choices) drawn as ``plan`` says, or None; a guided
        fresh draw is the best of ``CANDIDATES``, and the plan returned names it."""
        if plan is None or plan.mutation is not None:
            return sampling.draw(self._strategy(plan), self.o.seed, index,
                                 plan.prefix if plan else None), plan
        drawn = [sampling.draw(self._strategy(plan), self.o.seed, index, candidate=k)
                 for k in range(CANDIDATES)]
        ok = [k for k, d in enumerate(drawn) if d is not None]
        if ok:
            plan = dataclasses.replace(plan, candidate=ok[self.guide.pick([drawn[k][0]
                                                                             for k in ok])])
        return drawn[plan.candidate], plan

    def _known(self, source_hash: str | None) -> bool:
        """Whether this run failed on a program of ``source_hash`` or the corpus holds one."""
        return source_hash is not None and (source_hash in self.failed_sources
                                            or self.store.knows_source_hash(source_hash))

    def _verdicts(self, result: dict) -> None:
        """Count each oracle's verdict; one enabled but not drawn for this program becomes
        "not sampled" (the extractor says "off")."""
        verdicts = result.get("oracles")
        if not verdicts:
            return
        for name, verdict in verdicts.items():
            if verdict == "off" and name in self.o.oracle_rates:
                verdicts[name] = verdict = "not sampled"
            self.tally.oracles.setdefault(name, Counter())[verdict_kind(verdict)] += 1

    def _handle(self, index: int, result: dict, minimizer: Minimizer | None) -> None:
        program, choices, source_hash, (seed, recipe), plan = self.in_flight.pop(index)
        t = self.tally
        self._verdicts(result)
        t.extracted += 1
        if self.guide is not None:  # a hung program cost its timeout
            self.guide.spent(program, sum(result.get("timings", {}).values())
                             if result.get("status") != "timeout" else self.o.timeout)
        if t.first_result_s is None:
            t.first_result_s = time.monotonic() - self.started
        status = result.get("status")
        if status == "duplicate":
            t.duplicate_ir += 1
            return
        fields = storable(result)
        if status == "ok":
            t.ok += 1
            self._store(index, program, source_hash, fields, choices, plan)
            return
        self.failed_sources.add(source_hash)
        failure = result.get("failure") or {}
        signature, known = failure.get("signature", "unknown"), failure.get("known")
        kind = status if status in ("timeout", "crashed") else "failed"
        setattr(t, kind, getattr(t, kind) + 1)
        self.store.count_failure(signature, known)
        # a registered finding, by the signature and the program's form: counted, not reduced
        finding = None if known else match_finding(signature, program.ops)
        bucket = t.buckets.setdefault(signature, {"known": known, "count": 0,
                                                  "stage": failure.get("stage")})
        bucket["count"] += 1
        if finding is not None:
            bucket["finding"] = finding.label
        if fields is not None:  # stored forward-only under a known limitation
            t.forward_only += 1
            self._store(index, program, source_hash, fields, choices, plan)
        if (minimizer is not None and signature not in self.minimizing and finding is None
                and (known is None or self.o.minimize_known)
                and signature not in self.store.failure_signatures()):
            self.minimizing.add(signature)
            minimizer.submit(Job(signature, program, choices, result,
                                 self._found_by(index, plan), seed, self._strategy(plan),
                                 self._grammar(plan), self.o.backends, self.o.grad,
                                 recipe=recipe))

    def _strategy(self, plan: Plan | None) -> Any:
        """The strategy a program is drawn from: in a guided run, the grammar under the op
        weights of the plan's epoch (built once per epoch)."""
        if plan is None:
            return self.strategy
        if plan.epoch not in self._epoch_strategies:
            self._epoch_strategies[plan.epoch] = programs(**self._grammar(plan))
        return self._epoch_strategies[plan.epoch]

    def _grammar(self, plan: Plan | None) -> dict[str, Any]:
        """The arguments of ``grammar.programs`` that :meth:`_strategy` gives ``plan``."""
        if plan is None:
            return dict(self.o.grammar)
        return {**self.o.grammar, "weights": self.guide.weights(plan.epoch)}

    def _found_by(self, index: int, plan: Plan | None = None) -> str:
        guided = "" if plan is None else f", {plan.mutation.describe()}" if plan.mutation \
            else f", candidate {plan.candidate} of {CANDIDATES} under the op weights of epoch " \
                 f"{plan.epoch} ({GUIDE_NAME.format(seed=self.o.seed)})"
        flags = "".join(f" --backend {b}" for b in self.o.backends)
        return f"python -m fuzz --seed {self.o.seed} {'--guide' if self.guide else '--no-guide'}" \
               f"{flags}, program #{index}{guided}"

    def _store(self, index: int, program, source_hash: str, fields: dict, choices: tuple,
               plan: Plan | None) -> None:
        record = dict(fields)  # the extractor's fields
        record.update(source=program.source, entry=program.entry,
                      args=args_json(program.args),
                      polymorphic_shapes=program.polymorphic_shapes, style=program.style,
                      variant_group=program.variant_group,
                      categories=list(program.categories), ops=list(program.ops),
                      seed=self.o.seed, found_by=self._found_by(index, plan))
        outcome = self.store.add(record, source_hash)
        t = self.tally
        if outcome == "added":
            t.added += 1
            t.categories.update(program.categories)
            t.ops.update(program.ops)
            found = self.coverage.add(fields)
            if self.guide is not None:
                self.guide.observe(index, choices, found, plan, program)
            calls, methods = api_use(program.source)  # one parse for both
            t.api_calls.update(calls)
            t.api_methods.update(methods)
            self.new_hashes.append(fields["stablehlo_hash"])
        elif outcome == "duplicate_ir":
            t.duplicate_ir += 1
        else:
            t.duplicate_source += 1

    def _collect_minimized(self, minimizer: Minimizer) -> None:
        """Save each finished reduction's folder: reproducer, record and report."""
        while not minimizer.done.empty():
            outcome = minimizer.done.get()
            meta, script = failure_files(outcome, self.backends)
            failure = meta["failure"]
            folder = self.store.save_failure(outcome.job.signature, failure.get("known"), meta,
                                             script, files={REPORT_NAME: render_report(meta)})
            self.tally.reduce_s += outcome.seconds
            self.tally.side_crashes += len(outcome.side)
            finding = match_finding(outcome.job.signature, outcome.program.ops)
            if finding is not None:
                self.tally.buckets[outcome.job.signature]["finding"] = finding.label
            if outcome.state == "pending":
                self.tally.pending.append(outcome.job.signature)
            else:
                self.tally.minimized += 1
            if folder is not None and not self.interrupted:  # a pending one: its best so far
                minimizer.submit(folder)  # culprit, short reproducer, report

    # -- reporting --------------------------------------------------------------------

    def say(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    def _tick(self) -> None:
        now = time.monotonic()
        if now - self._last_stats >= 5.0:
            self._last_stats = now
            self._write_stats()
        self.line.update(self.status_text)

    def _write_stats(self, stats: dict[str, Any] | None = None) -> None:
        """``stats.json``, and a row of the coverage time series."""
        stats = stats if stats is not None else self.stats()
        self.store.write_stats(stats)
        if self.guide is not None and len(self.guide.epochs) > self._epochs_saved:
            self.store.write_json(GUIDE_NAME.format(seed=self.o.seed), self.guide.state())
            self._epochs_saved = len(self.guide.epochs)  # rewritten only when one is added
        self.series.append(stats["elapsed_s"], stats["corpus_records"], stats["features"])

    def status_text(self) -> str:
        t = self.tally
        elapsed = time.monotonic() - self.started
        known = sum(1 for b in t.buckets.values() if b["known"] or b.get("finding"))
        return (f"#{t.generated} {t.extracted / max(elapsed, 1e-9):.1f} prog/s | "
                f"{outcomes(t.ok, t.forward_only, t.buckets)} | corpus {len(self.store)} | "
                f"unique IR {t.added} | buckets {known} known / {len(t.buckets) - known} new | "
                f"stablehlo ops {len(self.coverage.sets['stablehlo_ops'])}/{len(STABLEHLO_OPS)} "
                f"| primitives {len(self.coverage.sets['primitives'])} | XLA passes "
                f"{len(self.coverage.sets['passes'] | self.coverage.sets['grad_passes'])} | "
                f"{clock(elapsed)} "
                f"elapsed, {self.o.budget.remaining(self.started, t.generated)}")

    def _valid_rate(self) -> float:
        t = self.tally
        done = t.ok + t.failed + t.timeout + t.crashed
        return t.ok / done if done else 1.0

    def stats(self) -> dict[str, Any]:
        t = self.tally
        elapsed = time.monotonic() - self.started
        extracting = self.loop_s if self.loop_s is not None else elapsed
        return {
            "seed": self.o.seed, "elapsed_s": round(elapsed, 3), "workers": self.o.workers,
            "grad": self.o.grad, "levels": list(self.o.levels), "engine": self.o.engine,
            "generated": t.generated, "extracted": t.extracted,
            "ok": t.ok, "forward_only": t.forward_only, "failed": t.failed,
            "timeout": t.timeout, "crashed": t.crashed, "added": t.added,
            "duplicate_source": t.duplicate_source, "duplicate_ir": t.duplicate_ir,
            "programs_per_s": round(t.extracted / max(extracting, 1e-9), 3),
            "minimize_s": round(elapsed - extracting, 3) if self.minimizing else 0.0,
            "first_result_s": t.first_result_s,
            "valid_rate": round(self._valid_rate(), 5), "minimized": t.minimized,
            "reduce_s": round(t.reduce_s, 3), "pending": list(t.pending),
            "reports_pending": list(t.reports_pending),
            "abandoned": t.abandoned, "side_crashes": t.side_crashes,
            "overruns": t.overruns,
            "categories": dict(sorted(t.categories.items())), "ops": dict(sorted(t.ops.items())),
            "stablehlo_ops": sorted(self.coverage.sets["stablehlo_ops"]),
            "stablehlo_coverage": f"{len(self.coverage.sets['stablehlo_ops'])}/"
                                  f"{len(STABLEHLO_OPS)}",
            "primitives": sorted(self.coverage.sets["primitives"]),
            "primitive_count": len(self.coverage.sets["primitives"]),
            "features": self.coverage.counts(), "feature_sets": self.coverage.lists(),
            "guide": self.guide.stats() if self.guide is not None else None,
            "buckets": dict(sorted(t.buckets.items())), "corpus_records": len(self.store),
            "oracle_rates": dict(self.o.oracle_rates),
            "oracles": {name: dict(sorted(c.items())) for name, c in t.oracles.items()},
        }
