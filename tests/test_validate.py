"""The source validator: it agrees with the grammar, and hostile sources never run.

Over 400 lines: each hostile construct the validator rejects is a case of its own here."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings

from fuzz.replay.command import replay
from grammar import OPS, programs
from grammar.validate import ALLOWED_CONSTANTS, TRANSFORMS, validate

HEADER = "import jax\nimport jax.numpy as jnp\nfrom jax import lax\n\n\n"


def program(body: str, params: str = "x0", header: str = HEADER, after: str = "") -> str:
    """A module with the grammar's imports and ``def f(params)`` holding ``body``."""
    return f"{header}def f({params}):\n{textwrap.indent(textwrap.dedent(body), '    ')}{after}"


# name -> (source that creates the file CANARY when executed and f(x) called, what the
# validator must name).  Each is checked to really create its canary when run unvalidated.
HOSTILE = {
    "dunder_import": (program("""\
        t1 = __import__('os').system('touch CANARY')
        return x0
        """), "call to '__import__' is not allowed"),
    "getattr_chain": (program("""\
        t1 = getattr(getattr(jnp, '__builtins__')['__import__']('os'), 'system')('touch CANARY')
        return x0
        """), "call to 'getattr' is not allowed"),
    "getattr_concat": (program("""\
        t1 = getattr(jnp, '__built' + 'ins__')['op' + 'en']('CANARY', 'w')
        return x0
        """), "call to 'getattr' is not allowed"),
    "module_dict": (program("""\
        t1 = jnp.__dict__['__builtins__']['open']('CANARY', 'w')
        return x0
        """), "'jnp.__dict__' is not allowed"),
    "globals_walk": (program("""\
        t1 = jnp.ones.__globals__['__builtins__']['open']('CANARY', 'w')
        return x0
        """), "'jnp.ones.__globals__' is not allowed"),
    "class_walk": (program("""\
        t1 = x0.__class__.__repr__.__globals__['__builtins__']['open']('CANARY', 'w')
        return x0
        """), "attribute '__class__' is not allowed"),
    "subclasses_walk": (program("""\
        t1 = [c for c in ().__class__.__base__.__subclasses__() if c.__name__ == '_wrap_close']
        t2 = t1[0].__init__.__globals__['system']('touch CANARY')
        return x0
        """), "list comprehension is not allowed"),
    "builtins_name": (program("""\
        t1 = __builtins__['open']('CANARY', 'w') if isinstance(__builtins__, dict) else 0
        t2 = __builtins__.open('CANARY', 'w') if not isinstance(__builtins__, dict) else 0
        return x0
        """), "conditional expression is not allowed"),
    "lambda": (program("""\
        g = lambda: open('CANARY', 'w')
        t1 = g()
        return x0
        """), "lambda is not allowed"),
    "default_argument": (program("""\
        def g(y, o=open):
            t = o('CANARY', 'w')
            return y
        t1 = g(x0)
        return t1
        """), "default value of parameter 'o' is not allowed"),
    "entry_default": (program("""\
        t1 = o('CANARY', 'w')
        return x0
        """, params="x0, o=open"), "default value of parameter 'o' is not allowed"),
    "eval": (program("""\
        t1 = eval("open('CANARY', 'w')")
        return x0
        """), "call to 'eval' is not allowed"),
    "exec": (program("""\
        t1 = exec("open('CANARY', 'w')")
        return x0
        """), "call to 'exec' is not allowed"),
    "open": (program("""\
        t1 = open('CANARY', 'w')
        return x0
        """), "call to 'open' is not allowed"),
    "compile": (program("""\
        t1 = eval(compile("open('CANARY', 'w')", 's', 'eval'))
        return x0
        """), "call to 'compile' is not allowed"),
    "import_os": (program("""\
        t1 = os.system('touch CANARY')
        return x0
        """, header="import os\n" + HEADER), "import 'import os' is not allowed"),
    "from_os_import": (program("""\
        t1 = system('touch CANARY')
        return x0
        """, header="from os import system\n" + HEADER),
        "import 'from os import system' is not allowed"),
    "os_as_jnp": (program("""\
        t1 = jnp.system('touch CANARY')
        return x0
        """, header="import jax\nimport os as jnp\nfrom jax import lax\n"),
        "import 'import os as jnp' is not allowed"),
    "import_in_function": (program("""\
        import os
        t1 = os.system('touch CANARY')
        return x0
        """), "import inside a function is not allowed"),
    "decorator": (program("""\
        return x0
        """, header=HEADER + "@(lambda fn: open('CANARY', 'w'))\n"),
        "decorator on def 'f' is not allowed"),
    "class_definition": (program("""\
        return x0
        """, after="\n\nclass A:\n    t = open('CANARY', 'w')\n"),
        "class definition is not allowed"),
    "top_level_call": (program("""\
        return x0
        """, after="\n\njnp.save('CANARY', jnp.ones(1))\n"),
        "a top-level expression statement is not allowed"),
    "jnp_save": (program("""\
        t1 = jnp.save('CANARY', x0)
        return x0
        """), "call to 'jnp.save' is not allowed"),
    "with": (program("""\
        with open('CANARY', 'w'):
            t1 = x0
        return x0
        """), "'with' statement is not allowed"),
    "try": (program("""\
        try:
            t1 = open('CANARY', 'w')
        except Exception:
            t1 = x0
        return x0
        """), "'try' statement is not allowed"),
    "while": (program("""\
        while True:
            t1 = open('CANARY', 'w')
            break
        return x0
        """), "'while' loop is not allowed"),
    "for": (program("""\
        for t1 in [open('CANARY', 'w')]:
            t2 = x0
        return x0
        """), "a 'for' loop may only run over a tuple of literal numbers"),
    "for_body_calls_open": (program("""\
        for s in (1.0, 2.0):
            t1 = open('CANARY', 'w')
        return x0
        """), "call to 'open' is not allowed"),
    "for_else": (program("""\
        for s in (1.0, 2.0):
            t1 = x0
        else:
            t1 = open('CANARY', 'w')
        return x0
        """), "'for' loop with 'async' or 'else' is not allowed"),
    "walrus": (program("""\
        t1 = (o := open)('CANARY', 'w')
        return x0
        """), "walrus (:=) is not allowed"),
    "star_args": (program("""\
        t1 = eval(*["open('CANARY', 'w')"])
        return x0
        """), "star-args (*...) are not allowed"),
    "keyword_unpacking": (program("""\
        t1 = jnp.save(**{'file': 'CANARY', 'arr': x0})
        return x0
        """), "keyword unpacking (**...) is not allowed"),
    "f_string": (program("""\
        t1 = jnp.einsum(f"{open('CANARY', 'w')}ij->ji", x0)
        return x0
        """), "f-string is not allowed"),
    "global": (program("""\
        global t9
        t9 = open('CANARY', 'w')
        return x0
        """), "'global' is not allowed"),
    "method_walk": (program("""\
        t1 = x0.at.__class__.__init__.__globals__['__builtins__']['open']('CANARY', 'w')
        return x0
        """), "attribute '__class__' is not allowed"),
    "transform_of_builtin": (program("""\
        t1 = jax.jit(open, static_argnums=(0, 1))('CANARY', 'w')
        return x0
        """), "name 'open' is not allowed"),
}

# Sources that are not the grammar's even where they are harmless: each must be rejected.
NOT_GRAMMAR = {
    "import_jnp_as_os": (program("return x0\n", header=HEADER + "import jax.numpy as os\n"),
                         "import 'import jax.numpy as os' is not allowed"),
    "missing_import": (program("return x0\n", header="import jax\nimport jax.numpy as jnp\n"),
                       "missing 'from jax import lax'"),
    "jnp_load": (program("t1 = jnp.load('x.npy')\nreturn t1\n"),
                 "call to 'jnp.load' is not allowed"),
    "jax_experimental": (program("t1 = jax.experimental.io_callback(x0)\nreturn t1\n"),
                         "call to 'jax.experimental.io_callback' is not allowed"),
    "full_module_path": (program("t1 = jax.numpy.sin(x0)\nreturn t1\n"),
                         "call to 'jax.numpy.sin' is not allowed"),
    "bytes": (program("t1 = jnp.einsum(b'ij->ji', x0)\nreturn t1\n"),
              "string prefix 'b' is not allowed"),
    "string_concat": (program("t1 = jnp.einsum('ij' 'ji', x0)\nreturn t1\n"),
                      "string concatenation is not allowed"),
    "string_as_value": (program("t1 = 'ij->ji'\nreturn x0\n"),
                        "a string is only allowed as an argument of a JAX function, a subscript"),
    "subclasses": (program("t1 = x0.__class__.__base__.__subclasses__()\nreturn t1\n"),
                   "attribute '__subclasses__' is not allowed"),
    "unknown_method": (program("t1 = x0.tolist()\nreturn t1\n"),
                       "attribute 'tolist' is not allowed"),
    "module_as_value": (program("t1 = jnp.sin(jnp)\nreturn t1\n"),
                        "module 'jnp' may only be used as jnp.<function"),
    "function_as_value": (program("t1 = lax.fori_loop(0, 1, jnp.save, x0)\nreturn t1\n"),
                          "'jnp.save' is not allowed"),
    "allowed_function_as_value": (program("t1 = lax.fori_loop(0, 1, jnp.sin, x0)\nreturn t1\n"),
                                  "'jnp.sin' may only be called"),
    "rebind_alias": (program("jnp = x0\nreturn jnp\n"),
                     "rebinding the module alias 'jnp' is not allowed"),
    "shadow_builtin": (program("open = x0\nreturn open\n"),
                       "name 'open' is not allowed (it shadows a builtin)"),
    "call_a_value": (program("t1 = x0(1)\nreturn t1\n"), "call to 'x0' is not allowed"),
    "call_of_call": (program("def g(y):\n    return y\nt1 = jnp.sum(g)(x0)\nreturn t1\n"),
                     "calling the result of a call is only allowed for"),
    "unbound_name": (program("t1 = y + 1\nreturn t1\n"), "name 'y' is not defined"),
    "dict_key_not_a_string": (program("t1 = {x0: x0}\nreturn x0\n"),
                              "a dict key must be a plain string, not Name"),
    "dict_unpacking": (program("t1 = {**x0}\nreturn x0\n"), "dict unpacking (**) is not allowed"),
    "bytes_subscript": (program("t1 = x0[b'w']\nreturn t1\n"), "string prefix 'b' is not allowed"),
    "if": (program("if x0:\n    t1 = x0\nreturn x0\n"), "'if' statement is not allowed"),
    "for_many_trips": (program("for s in (1.0,) * 1000000:\n    t1 = x0 * s\nreturn x0\n"),
                       "a 'for' loop may only run over a tuple of literal numbers"),
    "for_five_trips": (program("for s in (1, 2, 3, 4, 5):\n    t1 = x0 * s\nreturn x0\n"),
                       "a loop of 5 trips is longer than the grammar's 4"),
    "for_body_def": (program("for s in (1.0, 2.0):\n    def g(y):\n        return y\n"
                             "return x0\n"), "a 'for' loop's body may only assign"),
    "aug_assign": (program("t1 = x0\nt1 += 1\nreturn t1\n"),
                   "augmented assignment is not allowed"),
    "attribute_target": (program("x0.y = 1\nreturn x0\n"),
                         "assignment to Attribute is not allowed"),
    "expression_statement": (program("jnp.sin(x0)\nreturn x0\n"),
                             "expression statement is not allowed"),
    "early_return": (program("return x0\nt1 = x0\nreturn t1\n"),
                     "return is only allowed as a function's last statement"),
    "no_return": (program("t1 = x0\n"), "def 'f' must end with a return statement"),
    "star_params": (program("return a\n", params="*a"), "star parameters"),
    "kwargs_param": (program("return x0\n", params="x0, **k"), "**kwargs parameter"),
    "annotation": (program("return x0\n", params="x0: int"),
                   "annotation of parameter 'x0' is not allowed"),
    "async_def": (HEADER + "async def f(x0):\n    return x0\n", "async def 'f' is not allowed"),
    "yield": (program("t1 = yield x0\nreturn t1\n"), "yield is not allowed"),
    "second_def": (program("return x0\n", after="\n\ndef g(x0):\n    return x0\n"),
                   "a second top-level def 'g' is not allowed"),
    "complex_literal": (program("t1 = x0 * 1j\nreturn t1\n"), "complex literal is not allowed"),
    "boolean_op": (program("t1 = x0 or x0\nreturn t1\n"), "'and'/'or' is not allowed"),
    "in_operator": (program("t1 = x0 in x0\nreturn t1\n"), "comparison In is not allowed"),
    "syntax_error": (HEADER + "def f(x0:\n    return x0\n", "source does not parse"),
}


def canary_source(name: str, folder: Path) -> tuple[str, Path]:
    canary = folder / f"canary-{name}.npy"  # .npy: jnp.save keeps the name as given
    return HOSTILE[name][0].replace("CANARY", str(canary)), canary


@pytest.mark.slow
@settings(max_examples=200)
@given(programs(max_statements=15))
def test_every_grammar_program_validates_clean(program_):
    assert validate(program_.source, program_.entry) == [], program_.source


@given(programs(max_depth=3, max_statements=15,
                categories=["nested_branch", "loop", "vmap", "grad", "scan"]))
@pytest.mark.slow
def test_control_flow_and_transforms_validate_clean(program_):
    assert validate(program_.source, program_.entry) == [], program_.source


def test_allowlists_come_from_the_op_table():
    assert {"jax.vmap", "jax.grad", "jax.jit"} <= TRANSFORMS
    assert "jnp.float32" in ALLOWED_CONSTANTS and "jnp.bool_" in ALLOWED_CONSTANTS


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_source_is_rejected_with_its_reason(name, tmp_path):
    source, _ = canary_source(name, tmp_path)  # canaries stay unfired: see the replay test
    problems = validate(source, "f")
    assert problems, source
    assert any(HOSTILE[name][1] in p for p in problems), problems
    assert all(p.startswith("line ") for p in problems)


@pytest.mark.parametrize("name", sorted(NOT_GRAMMAR))
def test_non_grammar_source_is_rejected_with_its_reason(name):
    source, reason = NOT_GRAMMAR[name]
    problems = validate(source, "f")
    assert any(reason in p for p in problems), problems


def test_problems_name_the_line():
    source = program("t1 = jnp.sin(x0)\nt2 = getattr(t1, 'shape')\nreturn t1\n")
    assert validate(source) == [
        "line 8: call to 'getattr' is not allowed (allowed: jnp.*, lax.* functions the grammar "
        "uses)",
        "line 8: a string is only allowed as an argument of a JAX function, a subscript or a "
        "dict key",
    ]


def test_entry_must_be_the_programs_function():
    source = program("return x0\n")
    assert validate(source, "f") == []
    assert validate(source, "g") == ["line 1: entry 'g' is not the program's function 'f'"]


def test_docstring_and_comments_are_allowed():
    source = '"""A reproducer."""\n' + program("# a comment\nt1 = jnp.sin(x0)  # why\nreturn t1\n")
    assert validate(source, "f") == []


def test_deeply_nested_source_is_rejected_not_crashing():
    assert validate(program("return " + "-" * 20000 + "x0\n"))
    assert validate("x = " + "(" * 5000)
    assert validate("\x00")
    assert validate(123)  # type: ignore[arg-type]


def test_hostile_sources_do_create_their_canary_when_run_unvalidated(tmp_path):
    """The control: executed without validation, every hostile source creates its canary."""
    jobs = [canary_source(name, tmp_path) for name in sorted(HOSTILE)]
    script = textwrap.dedent("""\
        import contextlib, json, sys
        import jax.numpy as jnp
        for source in json.load(sys.stdin):
            namespace = {}
            with contextlib.suppress(Exception):
                exec(compile(source, "<hostile>", "exec"), namespace)
                namespace["f"](jnp.ones(2))
        """)
    subprocess.run([sys.executable, "-c", script], input=json.dumps([s for s, _ in jobs]),
                   text=True, cwd=tmp_path, timeout=120, check=True, capture_output=True)
    missing = [c.name for _, c in jobs if not c.exists()]
    assert not missing


def test_replay_rejects_hostile_records_without_running_them(tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    jobs = {name: canary_source(name, tmp_path) for name in sorted(HOSTILE)}
    lines = [json.dumps({"id": name, "source": source, "entry": "f", "args": [[[2], "float32"]]})
             for name, (source, _) in jobs.items()]
    (corpus / "shard-00000.jsonl").write_text("\n".join(lines) + "\n")
    report = replay(corpus, workers=1, timeout=30)
    assert [o.status for o in report.outcomes] == ["rejected"] * len(jobs)
    for outcome in report.outcomes:
        assert any(HOSTILE[outcome.id][1] in p for p in outcome.problems), outcome
    assert not [c.name for _, c in jobs.values() if c.exists()]
    assert report.exit_code == 0


@pytest.mark.parametrize("name", sorted(OPS))
def test_every_op_renders_sources_the_validator_accepts(name):
    @settings(max_examples=3, deadline=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(programs(ops=[name], max_statements=3, swarm=False))
    def check(program):
        assert validate(program.source) == [], program.source

    check()


@pytest.mark.parametrize("expression, reason", [
    ("(0,) * 10 ** 10", "between two literals"),
    ("10 ** 10 ** 10", "between two literals"),
    ("jnp.ones((100000, 100000))", "larger than the grammar's"),
])
def test_resource_bombs_are_rejected(expression, reason):
    source = ("import jax\nimport jax.numpy as jnp\nfrom jax import lax\n\n\n"
              f"def f(x0):\n    t1 = {expression}\n    return t1\n")
    assert any(reason in p for p in validate(source))


def test_fullwidth_identifiers_cannot_rebind_module_aliases():
    source = ("import jax\nimport jax.numpy as jnp\nfrom jax import lax\n\n\n"
              "def f(x0):\n    def g(\uff4a\uff4e\uff50):\n        return jnp.sum(x0)\n"
              "    t1 = g(x0)\n    return t1\n")
    assert any("non-ASCII" in p for p in validate(source))


PALLAS_HEAD = ("import jax\nimport jax.numpy as jnp\nfrom jax import lax\n"
               "from jax.experimental import pallas as pl\n\n\n")


@pytest.mark.parametrize("body, reason", [
    # the forms a Pallas kernel needs are allowed only where the grammar writes them
    ("    jax[...] = x0\n    return x0\n", "module 'jax' may only be used"),
    ("    @jax.jit\n    def g(a):\n        return a\n    return g(x0)\n",
     "decorator on def 'g' is not allowed"),
    ("    @pl.pallas_call(x0)\n    def g():\n        x0[...] = 1.0\n    return x0\n",
     "decorator on def 'g' is not allowed"),
    ("    t1 = ...\n    return t1\n", "'...'"),
    ("    x0.at[0] = 1.0\n    return x0\n", "assignment to"),
    ("    x0[...] = __import__('os')\n    return x0\n", "call to '__import__'"),
])
def test_the_kernel_forms_open_nothing_else(body, reason):
    problems = validate(PALLAS_HEAD + "def f(x0):\n" + body)
    assert any(reason in p for p in problems), problems


def test_an_entry_needs_a_return_and_only_table_imports_pass():
    kernel = ("    def k(x_ref, o_ref):\n        @pl.when(pl.program_id(0) == 0)\n"
              "        def init():\n            o_ref[...] = x_ref[...]\n"
              "    return x0\n")
    assert validate(PALLAS_HEAD + "def f(x0):\n" + kernel) == []
    assert any("must end with a return" in p
               for p in validate(PALLAS_HEAD + "def f(x0):\n    t1 = x0\n"))
    other = PALLAS_HEAD.replace("pallas as pl", "mosaic_gpu as pl")
    assert any("is not allowed (only:" in p for p in validate(other + "def f(x0):\n"
                                                              "    return x0\n"))
