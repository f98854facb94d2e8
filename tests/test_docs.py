"""README as a front door (issue 30): short, every link resolves, the code blocks of README and
docs/ run (python) or parse (python -m fuzz command lines), and its findings table is the
registry's."""
from __future__ import annotations

import importlib
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from fuzz import cli
from fuzz.triage.known_findings import FINDINGS
from tests.runner import fuzz

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
DOCS = sorted((ROOT / "docs").glob("*.md"))


def test_the_readme_is_a_front_door():
    assert len(README.splitlines()) <= 250
    assert README.startswith("# jaxsmith\n\n```bash\n# install and fuzz")
    assert "pip install -e '.[test,export,ray,report]' && python3 -m pytest" in README


@pytest.mark.parametrize("page", [ROOT / "README.md", *DOCS], ids=lambda p: p.name)
def test_every_relative_link_resolves(page):
    text = re.sub(r"`[^`]*`", "", page.read_text(encoding="utf-8"))  # code is not a link
    for target in re.findall(r"\]\(([^)#:\s]+)(?:#[^)]*)?\)", text):
        assert (page.parent / target).exists(), f"{page.name}: {target}"


def test_every_doc_is_in_the_readme_table():
    linked = set(re.findall(r"\(docs/([\w-]+\.md)\)", README))
    assert linked == {p.name for p in DOCS}


STAND_INS = {
    "oracles.md": (
        "import jax\nfrom extract.args import normalize_args, unflatten_args\n\n\n"
        "def my_translation(*leaves):  # the suite's stand-in: the record's own program\n"
        "    namespace = {}\n"
        "    exec(rec['source'], namespace)\n"
        "    tree = unflatten_args(normalize_args(rec['args']), leaves)\n"
        "    return jax.jit(namespace[rec['entry']])(*tree)\n"),
    "your-tests.md": "import jax\n\n\n"
                     "def my_tool(fn):  # the suite's stand-in: a tool that keeps the values\n"
                     "    return jax.jit(fn)\n",
    "grammar.md": "import jax\nimport jax.numpy as jnp\nfrom jax import lax\n",
}
"""What a page's blocks leave to the reader (a tool of their own, the imports around a shown
program), defined before each of its blocks runs."""
EXAMPLES = ("from hypothesis import settings\n"
            "settings.register_profile('docs', max_examples=3, deadline=None)\n"
            "settings.load_profile('docs')\n")
CALL_TESTS = """
for _name, _test in list(globals().items()):  # the property tests a block defines run too
    if _name.startswith("test_") and callable(_test) and _name not in _CALLED:
        _CALLED.add(_name)
        if f"{_name}()" not in _BLOCK:
            _test()
"""
PAGES = [page for page in (ROOT / "README.md", *DOCS)
         if "```python\n" in page.read_text(encoding="utf-8")]


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """Where the blocks run: a small corpus (jaxsmith-corpus), its export (jaxsmith-dataset)
    and the record schema, under the names the docs use."""
    root = tmp_path_factory.mktemp("docs")
    corpus = root / "jaxsmith-corpus"
    for args in (("--budget", "4x", "--seed", "1", "--corpus", str(corpus), "--workers", "1",
                  "--quiet", "--no-minimize"),
                 ("export", str(corpus), "--out", str(root / "jaxsmith-dataset"))):
        done = fuzz(*args)
        assert done.returncode == 0, done.stderr
    (root / "schema").symlink_to(ROOT / "schema")
    return root


@pytest.mark.slow
@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_the_python_blocks_run(folder, tmp_path, page):
    """Every python block of README and docs/ runs as written, one page's blocks one after
    the other, in a folder holding what the docs name, after the stand-ins the page leaves
    to the reader; the property tests a block defines run too, on 3 examples."""
    blocks = re.findall(r"```python\n(.*?)```", page.read_text(encoding="utf-8"), re.S)
    script = STAND_INS.get(page.name, "") + EXAMPLES + "_CALLED = set()\n"
    for k, block in enumerate(blocks):
        script += f"\n# -- block {k} of {page.name}\n_BLOCK = {block!r}\n{block}{CALL_TESTS}"
    path = tmp_path / f"{page.stem}_blocks.py"  # a file of its own: Hypothesis reads it
    path.write_text(script)
    done = subprocess.run([sys.executable, str(path)], cwd=folder, capture_output=True,
                          text=True, timeout=300, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr[-2000:]


def fuzz_commands(text: str) -> list[str]:
    """The ``python -m fuzz`` command lines of ``text``'s bash blocks, continuation lines
    joined, comments and the brackets around optional parts dropped; a line that uses a
    shell variable is left out (its value is the shell's)."""
    lines = []
    for block in re.findall(r"```bash\n(.*?)```", text, re.S):
        for line in block.replace("\\\n", " ").splitlines():
            for part in re.findall(r"python3? -m fuzz\b([^&|#]*)", line):
                if "$" not in part:
                    lines.append(part.replace("[", "").replace("]", "").strip())
    return lines


COMMAND_LINES = [(page, line) for page in (ROOT / "README.md", *DOCS)
                 for line in fuzz_commands(page.read_text(encoding="utf-8"))]
PARSERS = {"replay": "fuzz.replay.command", "export": "fuzz.publish.export",
           "report": "fuzz.report.command", "add": "fuzz.corpus.add"}


@pytest.mark.parametrize("page, line", COMMAND_LINES,
                         ids=[f"{p.name}: {line[:40]}" for p, line in COMMAND_LINES])
def test_the_fuzz_command_lines_parse(page, line):
    """Every documented ``python -m fuzz`` command line is accepted by the parser it meets,
    flags and values alike (nothing runs)."""
    argv = shlex.split(line)
    if argv and argv[0] in cli.COMMANDS:
        assert argv[0] in PARSERS, f"{page.name}: give python -m fuzz {argv[0]} a parser here"
        importlib.import_module(PARSERS[argv[0]]).parser(cli._Parser).parse_args(argv[1:])
    else:
        cli.run_parser().parse_args(argv)


def test_a_rotten_command_line_is_caught():
    [line] = fuzz_commands("```bash\npython -m fuzz --budget 1x \\\n  --seed 3  # a run\n```")
    assert line.split() == ["--budget", "1x", "--seed", "3"]
    with pytest.raises(cli.UsageError, match="unrecognized arguments: --no-such-flag"):
        test_the_fuzz_command_lines_parse(ROOT / "README.md", "--budget 1x --no-such-flag")
    with pytest.raises(cli.UsageError, match="--budget"):
        test_the_fuzz_command_lines_parse(ROOT / "README.md", "--budget 1 hour")


def test_the_readme_findings_table_is_the_registry():
    rows = dict(re.findall(r"(?m)^\| (\d+) \| [\w ]+ \| (.+) \|$", README))
    assert {int(n): title for n, title in rows.items()} == {f.number: f.title
                                                            for f in FINDINGS}
