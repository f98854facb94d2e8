"""``python -m fuzz``: run the fuzzer, print a corpus' stats, or replay a corpus."""

from __future__ import annotations

import argparse
import os
import random
import sys
from collections.abc import Sequence
from pathlib import Path

from hypothesis.errors import InvalidArgument

from extract.levels import COMPILED, LEVELS
from extract.oracles import ORACLES
from extract.ray_pool import EngineError
from fuzz.argtypes import (
    add_limit_options,
    levels_type,
    limits,
    names,
    oracle_list,
    oracle_rates,
    positive_int,
    positive_seconds,
    share,
)
from fuzz.argtypes import seed as seed_type
from fuzz.campaign.budget import Budget
from fuzz.campaign.loop import DEFAULT_CORPUS, DEFAULT_ORACLE_RATES, FuzzRun, Options
from fuzz.campaign.options import LARGE_SHAPES, SPECIAL_SHARE, X64
from fuzz.corpus.store import CorpusError
from grammar import ALL_DTYPES, CATEGORIES, OPS, STYLES


class UsageError(Exception):
    """Bad command-line input: reported in one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):
        raise UsageError(message)


def _budget(text: str) -> Budget:
    try:
        return Budget.parse(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def run_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="python -m fuzz", description=(
        "Generate random JAX programs, extract every IR level forward and backward, keep "
        "the valid ones in a deduplicated corpus and minimise each new failure into a "
        "reproducer.  Other commands: 'python -m fuzz stats DIR' summarises a corpus; "
        "'python -m fuzz replay PATH' re-extracts one with the installed JAX; 'python -m fuzz "
        "add FILE.py --entry NAME --args JSON' stores a program you wrote; 'python -m fuzz "
        "schema' prints the record schema; 'python -m fuzz triage DIR' finishes failure "
        "folders into reports."))
    p.add_argument("--budget", type=_budget, default=Budget(seconds=60.0),
                   help="how long to run: a duration (90s, 10m, 1h) or a number of programs "
                        "(500x); default 60s")
    p.add_argument("--corpus", type=Path, default=Path(DEFAULT_CORPUS),
                   help=f"corpus directory, created if missing; default ./{DEFAULT_CORPUS} "
                        "(the committed corpus/ is only written when named here)")
    p.add_argument("--seed", type=seed_type, default=None,
                   help="seed of the run (printed at start); with --no-guide, the same seed, "
                        "budget count and --workers 1 give the same programs in the same order")
    p.add_argument("--workers", type=positive_int("--workers"), default=os.cpu_count() or 1,
                   help="extraction worker processes; default: the machine's cores")
    p.add_argument("--guide", action=argparse.BooleanOptionalAction, default=True,
                   help="coverage-guided generation: the most promising of several draws, "
                        "mutants of the programs that reached a new feature, op weights that "
                        "follow what is new (docs/campaign.md, Coverage-guided generation); "
                        "default: on; --no-guide draws every program from (seed, index) alone")
    p.add_argument("--engine", choices=("local", "ray"), default="local",
                   help="where programs are extracted: 'local' worker processes (default), or "
                        "'ray': one actor per worker on a Ray cluster (pip install -e '.[ray]')")
    p.add_argument("--ray-address", default=None, metavar="ADDR",
                   help="with --engine ray: the cluster to join (host:port of its head, as "
                        "'ray start --head' prints it); default: a local Ray instance for the "
                        "run, shut down at its end")
    p.add_argument("--timeout", type=positive_seconds("--timeout"), default=60.0,
                   help="seconds one program may take before its worker is killed; default 60")
    p.add_argument("--categories", type=names("category", CATEGORIES), default=None,
                   help="comma-separated categories every program must cover")
    p.add_argument("--ops", type=names("op", list(OPS)), default=None,
                   help="comma-separated ops to draw from (default: all)")
    p.add_argument("--dtypes", type=names("dtype", ALL_DTYPES), default=None,
                   help="comma-separated parameter dtypes (default: all)")
    p.add_argument("--styles", type=names("style", list(STYLES)), default=None,
                   help=f"comma-separated source styles ({', '.join(STYLES)}; default: all)")
    p.add_argument("--op-weights", choices=("real", "uniform"), default="real",
                   help="how often each op is drawn: 'real' (default) leans toward what real "
                        "JAX code calls most (python -m fuzz api-coverage), every op keeping "
                        "a share; 'uniform' draws every op alike")
    p.add_argument("--large-shapes", type=int, default=LARGE_SHAPES, metavar="N",
                   help="one program in N has large shapes: a first argument of 2**15 to "
                        "2**20 elements, at most 8 statements of ops about linear in size; "
                        f"1: all, 0: none; default {LARGE_SHAPES}")
    p.add_argument("--x64", type=int, default=X64, metavar="N",
                   help="one program in N is a 64-bit one: float64 and int64 values under "
                        f"jax_enable_x64; 1: all, 0: none; default {X64}")
    p.add_argument("--max-statements", type=positive_int("--max-statements"), default=50,
                   help="most statements per program, nested ones included; default 50")
    p.add_argument("--max-depth", type=int, default=2, choices=range(0, 5), metavar="0-4",
                   help="nesting depth of control flow and transforms; default 2")
    p.add_argument("--no-known-failures", action="store_true",
                   help="leave out ops JAX is known not to differentiate in reverse mode")
    p.add_argument("--no-grad", action="store_true", help="skip the backward pass")
    p.add_argument("--levels", type=levels_type, default=LEVELS,
                   help="comma-separated IR levels to extract, forward and backward: "
                        f"{', '.join(LEVELS)}, or all (default). stablehlo is required; "
                        "without hlo_optimized nothing is compiled, so nothing runs and no "
                        "oracle checks the program")
    p.add_argument("--oracles", type=oracle_list(ORACLES), default=list(ORACLES),
                   help="comma-separated oracles that check each program's values, or none; "
                        f"default: all ({','.join(ORACLES)})")
    p.add_argument("--oracle-rate", type=oracle_rates(ORACLES), default={},
                   help="share of programs each oracle checks: one number for all, or "
                        "name=share pairs; default: " + ",".join(
                            f"{k}={v:g}" for k, v in DEFAULT_ORACLE_RATES.items()))
    p.add_argument("--special-inputs", type=share("--special-inputs"), default=SPECIAL_SHARE,
                   metavar="SHARE",
                   help="share of programs run on inputs with special values (+-0, +-inf, "
                        "NaN, subnormals, the largest floats, INT_MIN, INT_MAX: recipe "
                        f"jaxsmith-inputs/1+special); 1 runs only those; default {SPECIAL_SHARE}")
    p.add_argument("--backend", action="append", default=[], dest="backends",
                   metavar="MODULE:FUNCTION",
                   help="another implementation to judge against XLA on every program that "
                        "runs: a function (stablehlo, inputs) -> outputs, or the name of an "
                        "installed backend (entry-point group jaxsmith.backends); repeatable "
                        "(docs/your-tests.md, Pluggable backends)")
    p.add_argument("--no-minimize", action="store_true",
                   help="count new failures without minimising them")
    p.add_argument("--minimize-known", action="store_true",
                   help="also minimise the first failure of each known JAX limitation "
                        "(by default they are labelled and counted only)")
    p.add_argument("--quiet", action="store_true",
                   help="no live status line: a log line every few seconds")
    add_limit_options(p)
    return p


def check_ray(engine: str, address: str | None) -> None:
    """Refuse ``--engine ray`` without Ray, and a ``--ray-address`` that is not ``HOST:PORT``
    or cannot be reached (Ray itself would wait minutes before it gave up)."""
    import importlib.util
    import socket

    if engine != "ray":
        raise UsageError(f"--ray-address {address!r} needs --engine ray")
    if importlib.util.find_spec("ray") is None:
        raise UsageError("--engine ray needs Ray, an optional extra: pip install -e '.[ray]'")
    if address is None or address == "auto":
        return
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise UsageError(f"--ray-address {address!r}: expected HOST:PORT (as 'ray start "
                         f"--head' prints it) or auto")
    try:
        socket.create_connection((host, int(port)), timeout=5).close()
    except OSError as e:
        raise UsageError(f"--ray-address {address!r}: cannot connect ({e.strerror or e}); "
                         f"start a cluster with 'ray start --head', or leave out "
                         f"--ray-address for a local Ray instance") from None


def check_backends(specs: Sequence[str], levels: Sequence[str]) -> None:
    """Refuse a ``--backend`` that names nothing callable, and backends in a run that
    compiles nothing (so runs nothing)."""
    from extract.backends import load_all

    if COMPILED not in levels:
        raise UsageError(f"--backend needs {COMPILED} in --levels: without it nothing is "
                         f"compiled, so nothing runs")
    try:
        load_all(specs)
    except ValueError as e:
        raise UsageError(f"--backend: {e}") from None


def _run(argv: Sequence[str]) -> int:
    p = run_parser()
    a = p.parse_args(argv)
    if a.large_shapes < 0:
        raise UsageError(f"--large-shapes {a.large_shapes}: must be 0 (none) or N >= 1 (one "
                         "program in N)")
    if a.x64 < 0:
        raise UsageError(f"--x64 {a.x64}: must be 0 (none) or N >= 1 (one program in N)")
    grammar = {"max_statements": a.max_statements, "max_depth": a.max_depth,
               "known_failures": not a.no_known_failures}
    for key in ("categories", "ops", "dtypes", "styles"):
        if getattr(a, key) is not None:
            grammar[key] = getattr(a, key)
    if a.large_shapes:
        grammar["large_shapes"] = a.large_shapes
    if a.x64:
        grammar["x64"] = a.x64
    if a.op_weights == "real":
        from fuzz.campaign.op_weights import real_op_weights

        grammar["weights"] = real_op_weights()
    if a.engine == "ray" or a.ray_address is not None:
        check_ray(a.engine, a.ray_address)
    if a.backends:
        check_backends(a.backends, a.levels)
    seed = a.seed if a.seed is not None else random.SystemRandom().randrange(2**32)
    rates = {**DEFAULT_ORACLE_RATES, **a.oracle_rate}
    options = Options(budget=a.budget, corpus=a.corpus, seed=seed, workers=a.workers,
                      grad=not a.no_grad, quiet=a.quiet, timeout=a.timeout,
                      minimize=not a.no_minimize, minimize_known=a.minimize_known,
                      grammar=grammar,
                      oracle_rates={name: rates[name] for name in a.oracles},
                      limits=limits(a, p.error), levels=a.levels, engine=a.engine,
                      ray_address=a.ray_address, guide=a.guide,
                      backends=tuple(a.backends), special_inputs=a.special_inputs)
    try:
        from grammar import programs
        programs(**grammar)
    except InvalidArgument as e:
        raise UsageError(str(e)) from None
    run = FuzzRun(options)
    try:
        run.run()
    except EngineError as e:
        raise UsageError(str(e)) from None
    return 130 if run.interrupted else 0


def _stats(argv: Sequence[str]) -> int:
    from fuzz.corpus.stats import corpus_stats, format_stats

    p = _Parser(prog="python -m fuzz stats", description="Summarise a corpus directory.")
    p.add_argument("corpus", type=Path)
    p.add_argument("--json", action="store_true", help="print the stats as JSON")
    a = p.parse_args(argv)
    if not a.corpus.is_dir():
        raise UsageError(f"corpus {str(a.corpus)!r} is not a directory")
    stats = corpus_stats(a.corpus)
    if a.json:
        import json
        print(json.dumps(stats, indent=1, sort_keys=True, default=str))
    else:
        print(format_stats(stats))
    return 0


def _replay(argv: Sequence[str]) -> int:
    from fuzz.replay.command import main as replay_main

    return replay_main(argv, _Parser)


def _add(argv: Sequence[str]) -> int:
    from fuzz.corpus.add import main as add_main

    return add_main(argv, _Parser)


def _schema(argv: Sequence[str]) -> int:
    import json

    from fuzz.corpus.schema import json_schema

    _Parser(prog="python -m fuzz schema", description=(
        "Print the JSON Schema of one corpus record (README: schema/record.schema.json)."
    )).parse_args(argv)
    print(json.dumps(json_schema(), indent=1))
    return 0


def _api_coverage(argv: Sequence[str]) -> int:
    from fuzz.report.api_coverage import main as coverage_main

    return coverage_main(list(argv), _Parser)


def _export(argv: Sequence[str]) -> int:
    from fuzz.publish.export import main as export_main

    return export_main(argv, _Parser)


def _triage(argv: Sequence[str]) -> int:
    from fuzz.triage.command import main as triage_main

    return triage_main(argv, _Parser)


def _report(argv: Sequence[str]) -> int:
    from fuzz.report.command import main as report_main

    return report_main(argv, _Parser)


COMMANDS = {"stats": _stats, "replay": _replay, "add": _add, "schema": _schema,
            "api-coverage": _api_coverage, "export": _export, "report": _report,
            "triage": _triage}


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = COMMANDS.get(argv[0]) if argv else None
    try:
        return command(argv[1:]) if command else _run(argv)
    except BrokenPipeError:  # the reader went away (``... | head``): stop quietly
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # so that exit's flush does not fail again
        return 0
    except UsageError as e:
        print(f"python -m fuzz: error: {e}", file=sys.stderr)
        return 2
    except CorpusError as e:
        print(f"python -m fuzz: error: {e}", file=sys.stderr)
        return 2
