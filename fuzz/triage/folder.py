"""What a failure folder holds (``failures/<slug>/``), made from a reduction's outcome.

``repro.py`` is the standalone reproducer (:func:`fuzz.triage.repro.reproducer`), ``repro.json``
its record, ``REPORT.md`` the report (:mod:`fuzz.triage.report_md`). The record keeps what
``python -m fuzz triage`` needs to go on where the run stopped: the reduction's state
(``done``, ``pending``, ``not reproduced``), and under ``resume`` the choice sequence of the
smallest program Hypothesis found and the arguments of ``grammar.programs`` it was drawn
with, so the same program is drawn again.
"""

from __future__ import annotations

import base64
import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from hypothesis.database import choices_from_bytes, choices_to_bytes

from extract.args import args_json
from extract.backends import Backend
from fuzz.corpus.store import write_failure_folder
from fuzz.triage.minimize import Outcome
from fuzz.triage.report_md import render_report
from fuzz.triage.repro import reproducer

__all__ = ["REPORT_NAME", "decode_choices", "encode_choices", "failure_files", "save"]

REPORT_NAME = "REPORT.md"


def encode_choices(choices: tuple) -> str:
    """A choice sequence as text for JSON (Hypothesis' own byte encoding, in base64)."""
    return base64.b64encode(choices_to_bytes(choices)).decode("ascii")


def decode_choices(text: str) -> tuple:
    """The choice sequence :func:`encode_choices` wrote."""
    decoded = choices_from_bytes(base64.b64decode(text))
    if decoded is None:
        raise ValueError(f"resume.choices={text[:40]!r}... is not a choice sequence")
    return tuple(decoded)


def failure_files(outcome: Outcome,
                  backends: Mapping[str, Backend] | None = None) -> tuple[dict[str, Any], str]:
    """The record (``repro.json``'s ``record``) and reproducer source of ``outcome``."""
    job, best = outcome.job, outcome.program
    # shown in the style it was found in (reduction works in another)
    best = dataclasses.replace(best, style=job.program.style,
                               inline_depth=job.program.inline_depth)
    failure = job.result.get("failure") or {}
    meta = {"signature": job.signature, "failure": failure, "source": best.source,
            "entry": best.entry, "args": args_json(best.args),
            "polymorphic_shapes": best.polymorphic_shapes, "style": best.style,
            "ops": list(best.ops), "statements": best.statement_count,
            "original_statements": job.program.statement_count,
            "original_source": job.program.source, "original_ops": list(job.program.ops),
            "status": job.result.get("status"),
            "reduction": {"state": outcome.state, "seconds": round(outcome.seconds, 3),
                          "extractions": outcome.extractions, "passes": outcome.steps},
            "resume": {"choices": encode_choices(outcome.choices),
                       "grammar": job.grammar or {}, "backends": list(job.backends),
                       "grad": job.grad},
            "side_crashes": [{**c, "args": args_json(c["args"])} for c in outcome.side],
            "found_at": job.found_at,
            "versions": job.result.get("versions"), "found_by": job.found_by,
            "inputs_seed": job.seed, "inputs_recipe": job.recipe}
    script = reproducer(best.source, best.entry, best.args, failure, job.found_by, job.seed,
                        best.polymorphic_shapes, backends, job.recipe)
    return meta, script


def save(folder: Path, meta: dict[str, Any], script: str | None = None) -> None:
    """Rewrite a failure folder: its reproducer (when ``script`` is given), its report from
    ``meta``'s record, then ``repro.json`` (``meta``)."""
    files = {} if script is None else {"repro.py": script}
    write_failure_folder(folder, meta, {**files, REPORT_NAME: render_report(meta["record"])})
