"""Seeded draws: the same (seed, index) gives the same program in any process state."""

import importlib
import sys

import grammar
from fuzz import sampling


def test_a_draw_does_not_depend_on_the_local_modules_imported(tmp_path, monkeypatch):
    # Hypothesis mixes in constants from the local modules imported at the time of a draw;
    # the fuzz loop imports some of its own modules only when a result arrives.
    strategy = grammar.programs()
    before = [sampling.draw(strategy, 4, index)[0].source for index in range(30)]
    probe = tmp_path / "jaxsmith_constants_probe.py"
    probe.write_text("INTS = (" + ", ".join(str(n) for n in range(-300, 300, 7)) + ")\n"
                     "FLOATS = (" + ", ".join(f"{n}.25" for n in range(100)) + ")\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(sys.modules, "jaxsmith_constants_probe",
                        importlib.import_module("jaxsmith_constants_probe"))
    after = [sampling.draw(strategy, 4, index)[0].source for index in range(30)]
    assert before == after
