"""``python -m fuzz report`` (issue 17.3): a self-contained HTML page and text tables whose
numbers are stats.json's, from two real fuzz runs."""

from __future__ import annotations

import base64
import contextlib
import io
import json
import re
import shutil
import statistics
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest
from runner import ROOT, fuzz

from extract.failures import KNOWN
from fuzz import cli
from fuzz.campaign.features import KINDS, verdict_kind
from fuzz.corpus.store import CorpusStore, iter_records
from fuzz.report import command, figures, sections

FIGURES = ("coverage", "records", "timings", "sizes", "categories", "families",
           "stablehlo_ops", "passes", "oracles")
PNG = b"\x89PNG\r\n\x1a\n"


class Page(HTMLParser):
    """What a test reads off the page: tables by id (header row first), images by id, the
    tags used, every URL attribute and the text."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self.images: dict[str, str] = {}
        self.tags: set[str] = set()
        self.urls: list[str] = []
        self.text: list[str] = []
        self._table: list[list[str]] | None = None
        self._cell: list[str] | None = None
        self.feed(text)
        self.close()

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.add(tag)
        self.urls += [attrs[k] for k in ("src", "href") if k in attrs]
        if tag == "table":
            self._table = self.tables.setdefault(attrs["id"].removeprefix("tab-"), [])
        elif tag == "tr" and self._table is not None:
            self._table.append([])
        elif tag in ("td", "th"):
            self._cell = []
        elif tag == "img":
            self.images[attrs["id"].removeprefix("fig-")] = attrs["src"]

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self._table[-1].append("".join(self._cell))
            self._cell = None
        elif tag == "table":
            self._table = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)
        self.text.append(data)


def text_tables(text: str) -> dict[str, list[list[str]]]:
    """The ``[id]`` tables of ``--text`` output, header row first (an empty header cell, the
    run table's first, is dropped by the split)."""
    tables: dict[str, list[list[str]]] = {}
    current = None
    for line in text.splitlines():
        if m := re.match(r"\[([\w.-]+)\]", line):
            current = tables.setdefault(m.group(1), [])
        elif current is not None and line.startswith("  "):
            current.append(re.split(r"\s{2,}", line.strip()))
        else:
            current = None
    return tables


def build_html(argv: list[str]) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert command.main(argv, cli._Parser) == 0
    return out.getvalue()


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two short real runs: ``a`` (6 programs, blind) and ``b`` (4, guided)."""
    root = tmp_path_factory.mktemp("runs")
    for name, budget, seed, guide in (("a", "6x", "1", "--no-guide"), ("b", "4x", "2", "--guide")):
        done = fuzz("--budget", budget, "--seed", seed, "--workers", "1", "--quiet",
                    "--no-minimize", "--corpus", str(root / name), guide)
        assert done.returncode == 0, done.stderr
    return root / "a", root / "b"


@pytest.fixture(scope="module")
def page(runs):
    out = runs[0].parent / "report.html"
    said = build_html([str(runs[0]), "--compare", str(runs[1]), "--out", str(out)])
    assert f"wrote {out}" in said
    return Page(out.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def text(runs):
    return build_html([str(runs[0]), "--compare", str(runs[1]), "--text"])


def stats(corpus: Path) -> dict:
    return json.loads((corpus / "stats.json").read_text())


def check_numbers(tables: dict[str, list[list[str]]], a: dict, b: dict) -> None:
    """Every count the tables share with stats.json equals it."""
    run = {row[0]: row[1:] for row in tables["run"][1:]}
    for key in ("generated", "extracted", "ok", "forward_only", "failed", "added",
                "corpus_records", "elapsed_s", "programs_per_s", "valid_rate", "seed"):
        assert [json.loads(cell) for cell in run[key]] == [a[key], b[key]], key
    assert run["stablehlo_coverage"] == [a["stablehlo_coverage"], b["stablehlo_coverage"]]
    assert a["guide"] is None and b["guide"]
    assert {k: run[f"guide {k}"] for k in b["guide"]} == {
        k: ["-", str(n)] for k, n in b["guide"].items()}
    features = {row[0]: [int(c) for c in row[1:]] for row in tables["features"][1:]}
    assert features == {k: [a["features"][k], b["features"][k]] for k in KINDS}
    header, *rows = tables["oracles"]
    assert {v for counts in a["oracles"].values() for v in counts} == set(header[1:])
    assert {row[0]: dict(zip(header[1:], map(int, row[1:]), strict=True)) for row in rows} \
        == {name: {v: counts.get(v, 0) for v in header[1:]}
            for name, counts in a["oracles"].items()}
    assert {row[0]: int(row[1]) for row in tables["categories"][1:]} == a["categories"]
    from grammar.ops import OPS
    families: dict[str, int] = {}
    for name, n in a["ops"].items():
        families[OPS[name].family] = families.get(OPS[name].family, 0) + n
    assert {row[0]: int(row[1]) for row in tables["families"][1:]} == families


@pytest.mark.slow
def test_every_figure_is_embedded_and_decodes(page):
    from matplotlib.image import imread

    assert set(page.images) == set(FIGURES)
    for name, src in page.images.items():
        prefix = "data:image/png;base64,"
        assert src.startswith(prefix), name
        data = base64.b64decode(src[len(prefix):], validate=True)
        assert data.startswith(PNG), name
        height, width, _ = imread(io.BytesIO(data), format="png").shape
        assert width >= 800 and height >= 200, (name, width, height)
    # nothing to fetch: no scripts, stylesheets or remote images, links only within the page
    assert not page.tags & {"script", "link", "iframe"}
    assert all(u.startswith(("data:image/png;base64,", "#")) for u in page.urls)


@pytest.mark.slow
def test_numbers_equal_stats_json(page, runs):
    check_numbers(page.tables, stats(runs[0]), stats(runs[1]))
    records = [r for _, _, r in iter_records(runs[0])]
    sizes = sum(int(row[1]) for row in page.tables["sizes"][1:])
    assert sizes == len(records) == stats(runs[0])["corpus_records"]


@pytest.mark.slow
def test_text_view_has_the_same_numbers(page, text, runs):
    tables = text_tables(text)
    check_numbers(tables, stats(runs[0]), stats(runs[1]))
    assert set(tables) == set(page.tables)
    for name, rows in page.tables.items():
        assert tables[name][1:] == rows[1:], name
        assert tables[name][0] == [c for c in rows[0] if c], name


@pytest.mark.slow
def test_stage_timings_leave_out_oracles_that_did_not_judge(page, runs):
    records = [r for _, _, r in iter_records(runs[0])]
    rows = {row[0]: row[1:] for row in page.tables["timings"][1:]}
    assert {"trace", "lower", "compile", "interpreter"} <= set(rows)
    for stage, (n, _, median, _, top) in rows.items():
        judged = [r["timings"][stage] for r in records if stage in (r["timings"] or {})
                  and verdict_kind((r["oracles"] or {}).get(stage, "pass"))
                  in ("pass", "failed", "benign")]
        assert int(n) == len(judged), stage
        assert float(median) == round(statistics.median(judged) * 1000, 1), stage
        assert float(top) == round(max(judged) * 1000, 1), stage


@pytest.mark.slow
def test_passes_never_fired_are_those_only_a_compared_run_fired(page, text, runs):
    def fired(corpus):
        seen = [set(r.get("passes") or ()) | set(r.get("grad_passes") or ())
                for _, _, r in iter_records(corpus)]
        return seen

    a, b = fired(runs[0]), fired(runs[1])
    never = sorted(set().union(*b) - set().union(*a))
    assert [row[0] for row in page.tables.get("never_fired", [[]])[1:]] == never
    assert f"{len(never)} such passes" in text
    for name, n, *_ in page.tables["passes"][1:]:
        assert int(n) == sum(name in s for s in a)


@pytest.mark.slow
def test_compare_draws_two_runs(runs, page):
    corpora = [sections.read_corpus(p, p.name) for p in runs]
    parts = {s.id: s for s in sections.build(corpora[0], corpora[1:])}
    coverage = figures.figure("coverage", parts["coverage"].plot)
    axes = [ax for ax in coverage.axes if ax.get_lines()]
    assert [ax.get_title() for ax in axes] == [k.replace("_", " ") for k in KINDS]
    for ax, kind in zip(axes, KINDS, strict=True):
        lines = ax.get_lines()
        assert [line.get_label() for line in lines] == ["a", "b"]
        assert [line.get_ydata()[-1] for line in lines] == \
            [stats(p)["features"][kind] for p in runs]
    (ax,) = figures.figure("records", parts["records"].plot).axes
    assert [line.get_ydata()[-1] for line in ax.get_lines()] == \
        [stats(p)["corpus_records"] for p in runs]
    assert page.tables["features"][0] == ["kind", "a", "b"]


@pytest.mark.slow
def test_corpus_without_time_series_reports_with_a_note(runs, tmp_path):
    old = tmp_path / "old"
    shutil.copytree(runs[0], old, ignore=shutil.ignore_patterns("coverage.tsv"))
    out = tmp_path / "old.html"
    build_html([str(old), "--out", str(out)])
    page = Page(out.read_text(encoding="utf-8"))
    assert set(page.images) == set(FIGURES) - {"coverage", "records"}
    assert "old: no coverage.tsv (a corpus made before the time series)" in "".join(page.text)
    # the committed corpus is older still: no coverage.tsv, no passes, no features
    said = build_html([str(ROOT / "corpus"), "--text"])
    assert "corpus: no coverage.tsv" in said and "No record holds passes" in said


def test_failures_name_reproducer_and_readme_mention(runs, tmp_path):
    corpus = tmp_path / "failing"
    shutil.copytree(runs[0], corpus)
    saved = stats(corpus)
    with CorpusStore.open(corpus) as store:
        store.count_failure("grad_trace:TypeError:<x>", "checkpoint_policy_complex")
        folder = store.save_failure("run:FooError:bar", None, {"source": "..."}, "print()\n")
    saved["store"] = stats(corpus)["store"]
    saved["buckets"] = {"run:FooError:bar": {"known": None, "count": 3, "stage": "run"}}
    (corpus / "stats.json").write_text(json.dumps(saved))
    rows = {row[4]: row for row in text_tables(build_html([str(corpus), "--text"]))["failures"]}
    assert rows["run:FooError:bar"] == ["3", "-", "run", "NEW", "run:FooError:bar",
                                       str(folder), "-"]
    assert rows["grad_trace:TypeError:<x>"] == [
        "-", "1", "-", "checkpoint_policy_complex", "grad_trace:TypeError:<x>", "-",
        "docs/findings.md, Findings 12; findings/checkpoint_policy_complex_residual.py"]


def test_readme_mentions_are_in_the_readme():
    readme = "\n".join(p.read_text(encoding="utf-8") for p in (ROOT / "docs").glob("*.md"))
    findings = (ROOT / "docs" / "findings.md").read_text(encoding="utf-8").split(
        "\n## Findings\n", 1)[1].split("\n## ", 1)[0]
    items = dict(re.findall(r"(?m)^(\d+)\. (.*?)(?=^\d+\. |\Z)", findings, re.S))
    assert set(sections.README_MENTIONS) <= {k.name for k in KNOWN}
    for name, mention in sections.README_MENTIONS.items():
        number = re.search(r"Findings (\d+)", mention).group(1)
        assert name in items[number] or f"`{name}` (Findings {number})" in readme, name
        for path in re.findall(r"findings/\S+\.py", mention):
            assert (ROOT / path).is_file() and path in items[number], path


def test_statements_counts_the_entry_function_syntax_tree():
    source = ("import jax.numpy as jnp\n\n\ndef g(x):\n    return x\n\n\ndef f(x):\n"
              "    t1 = jnp.sin(x)\n    def h(c):\n        return c + 1\n"
              "    t2 = h(\n        t1,\n    )\n    return t2\n")
    assert sections.statements(source, "f") == 5  # t1, def h, its return, t2, return
    assert sections.statements(source, "g") == 1
    assert sections.statements(source, "missing") is None
    assert sections.statements("def f(:\n", "f") is None


@pytest.fixture
def cli_report(monkeypatch, capsys):
    """``python -m fuzz report ARGS`` through the CLI's error handling: (status, stdout,
    stderr)."""
    monkeypatch.setitem(cli.COMMANDS, "report", lambda argv: command.main(argv, cli._Parser))

    def run(*argv: str) -> tuple[int, str, str]:
        status = cli.main(["report", *argv])
        out, err = capsys.readouterr()
        return status, out, err

    return run


def test_refusals_are_one_line(cli_report, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    for argv, says in (
            ([str(a_file)], "is not a directory"),
            ([str(tmp_path / "missing")], "is not a directory"),
            ([str(empty), "--compare", str(a_file)], "is not a directory"),
            ([str(empty), "--out", str(a_file / "report.html")], "cannot write --out"),
            ([str(empty), "--out", str(tmp_path)], "cannot write --out")):
        status, _, err = cli_report(*argv)
        assert status == 2 and says in err, (argv, err)
        assert err.count("\n") == 1 and "Traceback" not in err, err
    status, out, _ = cli_report(str(empty), "--out", str(tmp_path / "empty.html"))
    assert status == 0 and (tmp_path / "empty.html").stat().st_size > 0, out


def test_html_without_matplotlib_names_the_extra(cli_report, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib fails
    status, _, err = cli_report(str(tmp_path), "--out", str(tmp_path / "r.html"))
    assert status == 2 and "pip install -e '.[report]'" in err and err.count("\n") == 1
    assert not (tmp_path / "r.html").exists()
    status, out, _ = cli_report(str(tmp_path), "--text")
    assert status == 0 and "== Oracle verdicts ==" in out
