"""``REPORT.md``: a failure folder's report, ready to paste into a JAX or XLA issue.

Rendered from the folder's record (``repro.json``'s ``record``) alone, a pure function: the
fuzz run writes it when it saves the folder, and ``python -m fuzz triage`` again once it has
added what it found (``record["triage"]``): the culprit pass and the HLO around it, the
reproducer's own output, the versions and platform, the other set-up's verdict, the short
plain-JAX reproducer and the registered finding it matches. What is not known yet is said,
with the command that finds it.
"""

from __future__ import annotations

import re
from typing import Any

from extract.failures import ORACLE_STAGES
from extract.oracle_context import CULPRIT_STAGE, oracle_of
from grammar.ops import OPS

__all__ = ["culprit_passes", "failure_class", "render_report", "title"]

CLASSES = ("crash", "hang", "wrong gradient", "wrong value", "exception")

_VALUE_STAGES = ORACLE_STAGES
_ROUNDING_ULPS = 4
"""At most this many ulps apart (and no NaN or infinity pattern differs), a value
discrepancy reads as rounding, which maintainers close as expected behaviour."""


def failure_class(record: dict[str, Any]) -> str:
    """One of :data:`CLASSES`, from the failure's status, stage and type."""
    failure = record.get("failure") or {}
    status, stage = record.get("status"), str(failure.get("stage", ""))
    if status == "crashed" or str(failure.get("signature", "")).startswith("crashed"):
        return "crash"
    if status == "timeout" or failure.get("type") == "Timeout":
        return "hang"
    if failure.get("type") == "Mismatch" or (stage in _VALUE_STAGES and ":value:" in str(
            failure.get("signature", ""))):
        return "wrong gradient" if stage == "autodiff" else "wrong value"
    return "exception"


def _api(ops: list[str]) -> str:
    """The JAX calls of ``ops``, as a maintainer names them: ``jnp.exp, jnp.linalg.cholesky``."""
    calls = [OPS[o].calls[0] for o in ops if o in OPS and OPS[o].calls]
    calls = list(dict.fromkeys(calls))
    return ", ".join(f"`{c}`" for c in calls[:4]) + (" and others" if len(calls) > 4 else "") \
        or "a generated program"


def _check(failure: dict[str, Any]) -> list[str]:
    """The signature after its stage: ``[check, dtype, culprit]`` of a discrepancy."""
    stage, sig = str(failure.get("stage", "")), str(failure.get("signature", ""))
    return sig[len(stage) + 1:].split(":") if sig.startswith(stage + ":") else sig.split(":")


def culprit_passes(record: dict[str, Any]) -> list[str]:
    """The XLA passes the failure is blamed on: triage's search, else the worker's."""
    found = ((record.get("triage") or {}).get("culprit") or {}).get("passes")
    if found:
        return list(found)
    parts = _check(record.get("failure") or {})
    return parts[2].split("+") if len(parts) > 2 and parts[0] == "value" else []


_DOING = {"trace": "tracing", "lower": "lowering", "compile": "compiling", "run": "running"}
_WHAT = {
    "jit_eager": "`jax.jit` gives other values than eager (op-by-op) execution",
    "interpreter": "XLA:CPU gives other values than the StableHLO reference interpreter",
    "vmap": "`jax.vmap` gives other values than the program on each example",
    "symbolic": "`jax.export` over a symbolic shape gives other values than `jax.jit`",
    "unsimplified": "`jax.jit` gives other values once XLA's simplification passes are off",
    "pallas": "a Pallas kernel in interpret mode gives other values than the same kernel "
              "over `jnp` blocks",
    "autodiff": "reverse and forward mode disagree",
}


def title(record: dict[str, Any]) -> str:
    """The issue title, in the form maintainers use: the platform, the symptom, the API."""
    failure = record.get("failure") or {}
    kind, stage = failure_class(record), str(failure.get("stage", ""))
    api = _api(record.get("ops") or [])
    culprit = culprit_passes(record)
    after = f" (XLA pass `{'`, `'.join(culprit)}`)" if culprit else ""
    if kind == "crash":
        parts = str(failure.get("signature", "")).split("crashed:", 1)[-1].split(":", 1)
        signal = parts[0] + (f" at {parts[1]}" if len(parts) > 1 else "")  # SIGABRT at x.cc:46
        doing = _DOING.get(stage.removeprefix("grad_"), f"at `{stage}` of")
        if oracle_of(stage) != stage:
            what = "culprit search" if stage.endswith(CULPRIT_STAGE) else "strict recompile"
            doing = (f"compiling with non-default XLA options (the `{oracle_of(stage)}` "
                     f"oracle's {what}) of")
        who = "JAX" if stage.removeprefix("grad_") == "trace" else "XLA:CPU"
        grad = "the gradient of " if stage.startswith("grad_") else ""
        return f"{who} crashes ({signal}) {doing} {grad}a program with {api}{after}"
    if kind == "hang":
        return f"JAX hangs at `{stage}` of a program with {api}"
    if kind in ("wrong value", "wrong gradient"):
        dtype = _check(failure)[1:2] or [""]
        what = _WHAT.get(stage, f"`{stage}` disagrees with XLA")
        return f"{what} for {api} ({dtype[0]}){after}"
    message = str(failure.get("message", "")).splitlines()[0][:100] if failure.get(
        "message") else ""
    return f"{failure.get('type', 'Error')} at `{stage}` of a program with {api}: {message}"


def _ulps(output: str) -> int | None:
    found = [int(n) for n in re.findall(r"ulps apart: (\d+)", output)]
    return max(found) if found else None


def _judgement(record: dict[str, Any], output: str) -> str:
    """How far apart the values are, and what that says: rounding or a wrong value."""
    kind = failure_class(record)
    if kind != "wrong value":  # a gradient check compares inner products, not elements
        return ""
    pattern = re.search(r"(NaN|inf) pattern differs", output)
    if pattern:
        return (f"How far apart: the {pattern.group(1)} patterns differ (a value is NaN or "
                "infinite on one side only): a wrong value, not rounding.")
    ulps = _ulps(output)
    if ulps is None and output:
        return ("How far apart: not in ulps: the outputs that differ are integers or booleans, "
                "which must match exactly.")
    if ulps is None:
        return "How far apart: not measured yet (`python -m fuzz triage` runs the reproducer)."
    if ulps <= _ROUNDING_ULPS:
        return (f"How far apart: at most {ulps} ulps: likely rounding (a different but "
                "legal order or precision of operations), not a wrong value.")
    return f"How far apart: up to {ulps} ulps: more than rounding explains."


_SIDE = {"jit_eager": ("`jax.jit`", "eager"), "interpreter": ("XLA", "the interpreter")}


def _against_float64(record: dict[str, Any]) -> str:
    """Each side's distance from the float64 reference, and which side it points at."""
    outputs = ((record.get("triage") or {}).get("reference") or {}).get("outputs")
    if not outputs:
        return ""
    stage = str((record.get("failure") or {}).get("stage", ""))
    got_name, other_name = _SIDE.get(stage, ("XLA", stage))

    def far(side: dict[str, Any] | None) -> str:
        if side is None:
            return "not measured"
        text = "NaN where float64 has none, or none where it has" if side["nan_differs"] \
            else "no NaN pattern difference"
        return f"{side['ulps']} ulps away ({text})" if side["ulps"] is not None else text

    parts = [f"output {k} ({o['dtype']}): {got_name} {far(o.get('got'))}, {other_name} "
             f"{far(o.get('other'))}" for k, o in enumerate(outputs)]
    return ("Against the float64 reference (the same program on float64 arguments, "
            "`jax.enable_x64`): " + "; ".join(parts) + ". The side far from it is the one "
            "to doubt; two sides a few ulps from it are rounding.")


def _block(text: str, lang: str = "") -> str:
    return f"```{lang}\n{text.rstrip()}\n```"


def _set_up(versions: dict[str, Any]) -> str:
    """A set-up in one line: jax, jaxlib, Python, platform and backend."""
    order = ("jax", "jaxlib", "python", "platform", "backend")
    return ", ".join(f"{k} {versions[k]}" for k in order if versions.get(k)) or "unknown"


def render_report(record: dict[str, Any]) -> str:
    """The report's Markdown for the failure folder whose record is ``record``."""
    failure = record.get("failure") or {}
    triage = record.get("triage") or {}
    run = triage.get("run") or {}
    output = run.get("output", "")
    reduction = record.get("reduction") or {}
    kind = failure_class(record)
    lines = [f"# {title(record)}", "",
             f"**Class:** {kind}. **Signature:** `{failure.get('signature', '')}`. "
             f"**Stage:** `{failure.get('stage', '')}`.", ""]
    if reduction.get("state") == "not reproduced":
        lines += ["**Did not reproduce:** the program passed when its reduction began "
                  f"({reduction.get('extractions', 0)} extraction): a flaky failure, such as a "
                  "timeout on a loaded machine, or one that depends on what the worker ran "
                  "before. Not a report to file as it stands.", ""]
    finding = triage.get("finding")
    if finding and finding.get("number"):
        lines += [f"**Known:** this is jaxsmith's Finding {finding['number']} "
                  f"({finding['name']}): {finding['title']}", ""]
    lines += ["## What happened", "", str(failure.get("message", "")).strip()[:1500] or "-", ""]
    if failure.get("culprit_search"):
        lines += ["The search for a culprit pass stopped, so none is named: "
                  f"{failure['culprit_search']} (XLA with some passes disabled; "
                  "`xla_disable_hlo_passes` is a debugging option).", ""]
    for judged in (_judgement(record, output), _against_float64(record)):
        if judged:
            lines += [judged, ""]
    short = triage.get("short") or {}
    lines += ["## Reproducer", ""]
    if short.get("source") and short.get("exit") not in (0, None):
        lines += [f"Plain JAX, {short['source'].count(chr(10))} lines; exits "
                  f"{short['exit']} while the bug is there, 0 once it is fixed:", "",
                  _block(short["source"], "python"), ""]
    else:
        lines += ["`repro.py` beside this report runs with plain `python` (JAX, NumPy and "
                  "ml_dtypes, no jaxsmith) and exits non-zero while the failure is there. "
                  "The program it runs:", "", _block(record.get("source", ""), "python"), ""]
    if output:
        lines += ["Its output:", "", _block(output[-2000:]), ""]
    mine = run.get("versions") or record.get("versions") or {}
    lines += ["## Versions", "", f"- this set-up: {_set_up(mine)}"]
    other = triage.get("other")
    if other:
        verdict = "reproduces it" if other.get("exit") not in (0, None) else \
            "does not reproduce it (exits 0)"
        lines.append(f"- the other set-up, {_set_up(other.get('versions') or {})}: {verdict}")
    else:
        lines.append("- the other set-up: not checked yet (`python -m fuzz triage DIR "
                     "--python OTHER_PYTHON`)")
    lines += ["", "## Culprit", ""]
    culprit = triage.get("culprit")
    if culprit and culprit.get("passes"):
        lines += [f"Disabling XLA pass(es) `{'`, `'.join(culprit['passes'])}` "
                  f"(`XLA_FLAGS=--xla_disable_hlo_passes={','.join(culprit['passes'])}`) "
                  f"makes the reproducer pass; found by delta debugging over the "
                  f"{len(culprit.get('fired') or [])} passes that fired, in "
                  f"{culprit.get('runs')} runs."]
        if culprit.get("diff"):
            lines += ["", f"HLO of `{culprit.get('module')}` before and after "
                      f"`{culprit['passes'][0]}` (from XLA's dump), as a diff:", "",
                      _block(culprit["diff"], "diff")]
    elif culprit:
        lines.append(culprit.get("reason", "none found"))
    elif culprit_passes(record):
        named = "`, `".join(culprit_passes(record))
        lines.append(f"Disabling XLA pass(es) `{named}` removed it in the "
                     "worker (delta debugging over the passes this module fired); the HLO "
                     "around it: not extracted yet (`python -m fuzz triage DIR`).")
    elif kind in ("wrong value", "crash"):
        lines.append("Not searched yet (`python -m fuzz triage DIR`).")
    else:
        lines.append("Not applicable: the failure is not in XLA's compiled values.")
    side = record.get("side_crashes") or []
    if side:
        lines += ["", "## Other crashes met while reducing", "",
                  f"{len(side)} candidate program(s) crashed in another way (in `repro.json`, "
                  "`side_crashes`, with their source): "
                  + "; ".join(f"`{c['signature']}` at `{c['stage']}`" for c in side) + "."]
    lines += ["", "## How it was found", "",
              f"{record.get('found_by', '')}; reduced from {record.get('original_statements')}"
              f" to {record.get('statements')} statements in {reduction.get('seconds', '?')} s "
              f"({reduction.get('extractions', '?')} extractions; reduction "
              f"{reduction.get('state', '?')}; passes: "
              f"{', '.join(reduction.get('passes') or []) or 'Hypothesis shrink only'})."]
    return "\n".join(lines) + "\n"
