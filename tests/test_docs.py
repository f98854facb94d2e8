"""README as a front door (issue 30): short, every link resolves, its Python runs, and its
findings table is the registry's."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from fuzz.triage.known_findings import FINDINGS

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


@pytest.mark.slow
def test_the_readme_python_blocks_run(tmp_path):
    blocks = re.findall(r"```python\n(.*?)```", README, re.S)
    assert blocks
    for k, block in enumerate(blocks):  # a file of its own: Hypothesis reads its source
        path = tmp_path / f"readme_block_{k}.py"
        path.write_text(block)
        done = subprocess.run([sys.executable, str(path)], cwd=ROOT, capture_output=True,
                              text=True, timeout=300,
                              env={**os.environ, "PYTHONPATH": str(ROOT)})
        assert done.returncode == 0, done.stderr[-2000:]


def test_the_readme_findings_table_is_the_registry():
    rows = dict(re.findall(r"(?m)^\| (\d+) \| [\w ]+ \| (.+) \|$", README))
    assert {int(n): title for n, title in rows.items()} == {f.number: f.title
                                                            for f in FINDINGS}
