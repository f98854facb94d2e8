"""``python -m fuzz add`` (issue 13.5): a hand-written program becomes a record, which replay
runs only with ``--trusted``."""

from __future__ import annotations

import json

import pytest
from runner import fuzz

from fuzz.corpus.store import MalformedLine, iter_records

USER_PROGRAM = '''\
import jax
import jax.numpy as jnp


def layer(w, x):
    """Not grammar-shaped: a method, an attribute, a keyword argument."""
    h = jnp.tanh(x @ w.T)
    return jax.nn.softmax(h, axis=-1).sum()


def broken(w, x):
    return w @ x
'''
ARGS = '[[[8, 4], "float32"], [[2, 4], "float32"]]'


@pytest.mark.slow
def test_add_then_replay_only_when_trusted(tmp_path):
    program = tmp_path / "mine.py"
    program.write_text(USER_PROGRAM)
    corpus = tmp_path / "corpus"
    added = fuzz("add", str(program), "--entry", "layer", "--args", ARGS, "--corpus",
                 str(corpus))
    assert added.returncode == 0, added.stderr
    assert f"added layer from {program}" in added.stdout and "interpreter pass" in added.stdout
    (rec,) = [r for _, _, r in iter_records(corpus)]
    assert not isinstance(rec, MalformedLine)
    assert rec["found_by"] == "added by hand: mine.py, entry layer"
    assert rec["source"] == USER_PROGRAM and rec["args"] == json.loads(ARGS)
    assert rec["inputs"]["seed"] == 0 and rec["outputs"] and rec["grad_stablehlo"]
    assert rec["categories"] is None and rec["ops"] is None

    again = fuzz("add", str(program), "--entry", "layer", "--args", ARGS, "--corpus",
                 str(corpus))
    assert again.returncode == 0 and "already in" in again.stdout

    failed = fuzz("add", str(program), "--entry", "broken", "--args", ARGS, "--corpus",
                  str(corpus))
    assert failed.returncode == 1 and "nothing stored" in failed.stderr
    assert "Traceback" not in failed.stderr
    assert len(list(iter_records(corpus))) == 1

    refused = fuzz("replay", str(corpus), "--no-cache", "--quiet")
    assert refused.returncode == 0 and "1 rejected" in refused.stdout
    assert "run only with --trusted" in refused.stdout
    trusted = fuzz("replay", str(corpus), "--trusted", "--no-cache", "--quiet")
    assert trusted.returncode == 0 and "1 unchanged" in trusted.stdout, trusted.stdout


@pytest.mark.slow
def test_add_refuses_bad_input_in_one_line(tmp_path):
    program = tmp_path / "mine.py"
    program.write_text(USER_PROGRAM)
    for argv, message in [
        (["--args", '[[8, 4], "float32"]'], "args[0]=[8, 4] is a shape alone"),
        (["--args", '[[[2], "V8"]]'], "dtype='V8' is not supported; accepted: bool"),
        (["--args", "[[[2"], "Expecting"),
    ]:
        done = fuzz("add", str(program), "--entry", "layer", *argv, "--corpus",
                    str(tmp_path / "c"))
        assert done.returncode == 2 and message in done.stderr, done.stderr
        assert done.stderr.count("\n") == 1
    missing = fuzz("add", str(tmp_path / "nope.py"), "--entry", "f", "--args", "[]",
                   "--corpus", str(tmp_path / "c"))
    assert missing.returncode == 2 and "cannot read" in missing.stderr
    assert not (tmp_path / "c").exists()
