"""``python -m fuzz report CORPUS``: one self-contained HTML page, or text tables, of a run
(``fuzz.report.sections`` reads it, ``fuzz.report.figures`` draws it)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from fuzz.report.figures import png, render_html, render_text
from fuzz.report.sections import EXTRA, build, read_corpus


def parser(parser_class: type[argparse.ArgumentParser]) -> argparse.ArgumentParser:
    p = parser_class(prog="python -m fuzz report", description=(
        "Report on a fuzz run: coverage over time, throughput and stage timings, program "
        "sizes, categories and op families, StableHLO ops and XLA passes, oracle verdicts "
        "and failures, as one self-contained HTML file (figures need matplotlib: "
        f"{EXTRA}) or, with --text, as tables on stdout."))
    p.add_argument("corpus", type=Path, help="the corpus directory")
    p.add_argument("--compare", type=Path, action="append", default=[],
                   metavar="OTHER_CORPUS",
                   help="another corpus to draw beside it, e.g. a --guide run beside a blind "
                        "one (repeatable)")
    p.add_argument("--out", type=Path, default=Path("report.html"),
                   help="the HTML file to write; default report.html")
    p.add_argument("--text", action="store_true", help="print tables instead of writing HTML")
    return p


def _names(paths: Sequence[Path]) -> list[str]:
    """Each corpus's directory name, or its path where two names would be the same."""
    names = [p.resolve().name for p in paths]
    return [n if names.count(n) == 1 else str(p) for n, p in zip(names, paths, strict=True)]


def main(argv: Sequence[str], parser_class: type[argparse.ArgumentParser]) -> int:
    """``python -m fuzz report``; ``parser_class.error`` raises the CLI's usage error."""
    p = parser(parser_class)
    a = p.parse_args(list(argv))
    paths = [a.corpus, *a.compare]
    for path in paths:
        if not path.is_dir():
            p.error(f"corpus {str(path)!r} is not a directory")
    if not a.text:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            p.error(f"the HTML report needs matplotlib, an optional extra: {EXTRA} "
                    "(or use --text)")
    corpora = [read_corpus(path, name) for path, name in zip(paths, _names(paths),
                                                             strict=True)]
    sections = build(corpora[0], corpora[1:])
    if a.text:
        print(render_text(corpora[0], sections))
        return 0
    images = {s.id: png(s.id, s.plot) for s in sections if s.plot is not None}
    try:
        a.out.write_text(render_html(corpora[0], sections, images), encoding="utf-8")
    except OSError as e:
        p.error(f"cannot write --out {str(a.out)!r}: {e.strerror or e}")
    print(f"wrote {a.out}: {len(sections)} sections, {len(images)} figures")
    return 0
