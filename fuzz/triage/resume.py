"""Going on with a reduction a fuzz run left pending (``python -m fuzz triage``'s first
step): the program is drawn again from the choices and grammar its record keeps, and the
same reduction as in the run (:class:`fuzz.triage.minimize.Minimizer`) goes on from there."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from extract import ExtractorPool
from extract.backends import load_all
from extract.inputs import RECIPE
from fuzz.campaign import sampling
from fuzz.triage.folder import decode_choices, failure_files, save
from fuzz.triage.minimize import Job, Minimizer
from grammar import programs

__all__ = ["resume_reduction"]


def resume_reduction(folder: Path, meta: dict[str, Any], *, workers: int,
                     max_seconds: float) -> None:
    """Reduce the pending failure of ``folder`` (whose ``repro.json`` holds ``meta``) for
    at most ``max_seconds`` on ``workers`` workers, then rewrite its files."""
    record = meta["record"]
    resume = record["resume"]
    strategy = programs(**resume.get("grammar", {}))
    choices = decode_choices(resume["choices"])
    drawn = sampling.draw(strategy, 0, 0, prefix=choices)
    if drawn is None:
        raise ValueError(f"{folder}: its resume.choices no longer draw a program (the "
                         "grammar changed since the run): reduce it again from a new run")
    program, choices = drawn
    specs = tuple(resume.get("backends") or ())
    grad = bool(resume.get("grad", True))
    minimizer = Minimizer(strategy, lambda n: ExtractorPool(n, grad=grad, backends=specs),
                          grad, workers=workers, max_seconds=max_seconds)
    result = {"status": record.get("status"), "failure": record.get("failure")}
    minimizer.submit(Job(record["signature"], program, choices, result, record["found_by"],
                         int(record.get("inputs_seed") or 0), strategy,
                         resume.get("grammar"), specs, grad,
                         recipe=record.get("inputs_recipe") or RECIPE))
    minimizer.shutdown(finish=True, wait=max_seconds + 60)
    if minimizer.done.empty():
        raise ValueError(f"{folder}: its reduction stopped without a result (see above)")
    outcome = minimizer.done.get()
    outcome.extractions += record["reduction"].get("extractions", 0)
    outcome.seconds += record["reduction"].get("seconds", 0.0)
    fresh, script = failure_files(outcome, {b.stage: b for b in load_all(specs)})
    fresh["original_statements"] = record.get("original_statements")
    fresh["original_source"] = record.get("original_source")
    fresh["original_ops"] = record.get("original_ops")
    save(folder, {**meta, "record": fresh}, script)
