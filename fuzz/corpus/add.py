"""``python -m fuzz add FILE.py --entry NAME --args JSON``: store a program written by hand.

A JAX engineer keeps regression programs beside the generated ones: the function is
extracted like any generated program (every IR level, both directions, every oracle on
``make_inputs(args, seed)``) and, when it extracts, stored with ``found_by`` saying it was
added by hand.  Its source is not of the grammar's form, so ``replay`` runs it only with
``--trusted``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from extract import ORACLES, ExtractorPool
from extract.args import args_json, normalize_args
from extract.inputs import check_inputs
from extract.worker import DEFAULT_LIMITS, ResourceLimits
from fuzz.argtypes import add_limit_options, limits, oracle_list, positive_seconds
from fuzz.argtypes import seed as seed_type
from fuzz.campaign.loop import DEFAULT_CORPUS
from fuzz.corpus.store import CorpusStore, normalized_source_hash, storable

__all__ = ["add_program", "main"]

HAND = "added by hand"
"""How ``found_by`` of a hand-written record starts."""


def _args(text: str) -> list:
    try:
        value = json.loads(text)
        args = normalize_args(value)
        check_inputs(args, 0)
    except (ValueError, TypeError) as e:
        raise argparse.ArgumentTypeError(
            f"--args {text[:80]!r}: {e}; expected a JSON list of [shape, dtype] pairs, "
            "e.g. '[[[8, 4], \"float32\"], [[], \"int32\"]]', or of lists (tuples) and "
            "objects (dicts) of them") from None
    return args_json(args)


def parser(parser_class) -> argparse.ArgumentParser:
    p = parser_class(prog="python -m fuzz add", description=(
        "Extract a JAX function you wrote (every IR level, the gradient, every oracle) and "
        "store it in a corpus as a hand-added record.  Exit status 0 when it was stored or "
        "was already there, 1 when it failed to extract (nothing is stored), 2 on bad "
        "arguments."))
    p.add_argument("file", type=Path, metavar="FILE.py", help="the Python module to add")
    p.add_argument("--entry", required=True, help="name of the function to extract")
    p.add_argument("--args", required=True, type=_args,
                   help="its argument types as JSON: [[shape, dtype], ...]")
    p.add_argument("--corpus", type=Path, default=Path(DEFAULT_CORPUS),
                   help=f"corpus directory, created if missing; default ./{DEFAULT_CORPUS}")
    p.add_argument("--seed", type=seed_type, default=0,
                   help="seed of the program's inputs (extract.make_inputs); default 0")
    p.add_argument("--no-grad", action="store_true", help="skip the backward pass")
    p.add_argument("--oracles", type=oracle_list(ORACLES), default=list(ORACLES),
                   help=f"oracles to run, or none; default: all ({','.join(ORACLES)})")
    p.add_argument("--timeout", type=positive_seconds("--timeout"), default=120.0,
                   help="seconds the extraction may take; default 120")
    add_limit_options(p)
    return p


def add_program(source: str, entry: str, args: Sequence, corpus: str | Path, *,
                seed: int = 0, grad: bool = True, oracles: Sequence[str] = ORACLES,
                timeout: float = 120.0, found_by: str = HAND,
                limits: ResourceLimits = DEFAULT_LIMITS) -> tuple[str, dict[str, Any]]:
    """Extract ``source`` and store it in ``corpus``; return ``(outcome, result)``.

    ``outcome`` is ``CorpusStore.add``'s ("added", "duplicate_source", "duplicate_ir") or
    ``"failed"`` (then ``result["failure"]`` says why and nothing is stored).  The record's
    ``source_hash`` covers the entry too (``sha256(normalized_source_hash + ":" + entry)``),
    so that each function of one file is a record of its own.  Raises
    ``CorpusError`` when the corpus cannot be used or the source does not parse.
    """
    # One file may hold several functions worth keeping: each entry is its own record.
    source_hash = hashlib.sha256(
        f"{normalized_source_hash(source)}:{entry}".encode()).hexdigest()
    with CorpusStore.open(corpus) as store:
        if store.knows_source_hash(source_hash):
            return "duplicate_source", {"status": "duplicate"}
        with ExtractorPool(1, timeout=timeout, grad=grad, limits=limits) as pool:
            pool.submit("add", source, entry, args, seed=seed, oracles=oracles)
            (_, result), = pool.results()
        fields = storable(result)
        if fields is None:
            return "failed", result
        record = {**fields, "source": source, "entry": entry, "args": list(args),
                  "seed": seed, "found_by": found_by}
        return store.add(record, source_hash), result


def main(argv: Sequence[str], parser_class) -> int:
    """``python -m fuzz add``; ``parser_class.error`` raises the CLI's usage error."""
    p = parser(parser_class)
    a = p.parse_args(list(argv))
    try:
        source = a.file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        p.error(f"cannot read {str(a.file)!r}: {getattr(e, 'strerror', None) or e}")
    outcome, result = add_program(
        source, a.entry, a.args, a.corpus, seed=a.seed, grad=not a.no_grad, oracles=a.oracles,
        timeout=a.timeout, found_by=f"{HAND}: {a.file.name}, entry {a.entry}",
        limits=limits(a, p.error))
    if outcome == "failed":
        failure = result.get("failure") or {}
        print(f"{a.file}: {a.entry} failed to extract ({result.get('status')}, stage "
              f"{failure.get('stage')}): {failure.get('message', '')[:400]}\nnothing stored",
              file=sys.stderr)
        return 1
    if outcome == "added":
        verdicts = ", ".join(f"{k} {v}" for k, v in (result.get("oracles") or {}).items())
        print(f"added {a.entry} from {a.file} to {a.corpus}"
              + (f" (oracles: {verdicts})" if verdicts else "")
              + (f"; backward pass skipped: {result['grad_skipped']}"
                 if isinstance(result.get("grad_skipped"), str) else ""))
    else:
        print(f"{a.file}: {a.entry} is already in {a.corpus} ({outcome.replace('_', ' ')})")
    return 0
