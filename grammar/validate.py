"""A whitelist validator: does a source text have the form of a program the grammar renders?

Over 400 lines: one checker (``_Checker``) walks a module, and its methods share its scopes and
the allowlists; split across files, one whitelist would be read in pieces.

Replay executes sources read from a corpus, which anyone may have edited.  ``validate``
accepts only the statement and expression forms that ``grammar.render`` and the op templates
produce, and returns one problem per rejected construct (empty: the source is safe to run):

* module level: an optional docstring, exactly ``import jax``, ``import jax.numpy as jnp``
  and ``from jax import lax``, any of the op table's ``OPTIONAL_IMPORTS``, and exactly one
  ``def`` (no decorators, defaults, star
  parameters or annotations);
* function bodies: assignments to a name, a tuple of names or a subscript of a name (a
  Pallas kernel writes ``o_ref[...] = value``), nested ``def`` s of the same form (which may
  carry a ``DECORATORS`` decorator, ``@pl.when(...)``, and need no ``return``), ``for name in
  (number, ...):`` over at most ``MAX_TRIPS`` literal numbers with assignments only in its
  body, and a final ``return``;
* expressions: bound local names; calls of the dotted JAX functions in ``ALLOWED_CALLS`` (the
  op table's), of nested functions, or of a transform's result (``jax.vmap(fn)(x)``);
  ``ALLOWED_METHODS`` on local values; the dtypes ``jnp.<dtype>``; numbers, ``True``,
  ``False``, ``None``; plain strings only as arguments of JAX functions, as subscripts
  (``params["w"]``) and as dict keys; ``...`` only as a subscript; tuples, lists, dicts
  with string keys, subscripts and the operators the grammar renders.

Everything else (builtins, dunders, lambdas, comprehensions, f-strings, other imports or
statements) is rejected, because each node kind must be explicitly allowed.  A second, smaller
whitelist over Python's own ``ast`` then checks the same text, so a difference between the
two parsers cannot smuggle anything through.

Sizes are capped at what the grammar can produce, cheapest check first, so hostile text costs
little to refuse: the length (``MAX_SOURCE_CHARS``) before any parser, then the nesting depth
and node count of Python's own tree (``MAX_DEPTH``, ``MAX_NODES``) before libcst sees the text;
integer literals, literal shapes and loop trip counts (``MAX_INT``, ``MAX_LITERAL_ELEMENTS``,
``MAX_TRIPS``); and, with ``check_args``, the argument types (the grammar's dtypes and
``Limits``).  Nothing here raises on any input.

The module is longer than the others on purpose: it is the whole safety boundary, and a
reviewer should be able to read every accepted form, and every cap, in one file.
"""

from __future__ import annotations

import ast
import builtins
import math
from collections.abc import Sequence

import libcst as cst
from libcst.metadata import MetadataWrapper, PositionProvider

from grammar.ops import (
    ALLOWED_CALLS,
    ALLOWED_METHODS,
    ALLOWED_VALUES,
    CALLABLE_RESULTS,
    OPS,
    OPTIONAL_IMPORTS,
)
from grammar.ops_control import MAX_TRIPS
from grammar.strategies import MAX_PARAMS, MAX_STATEMENTS
from grammar.syntax import _BINOPS, _COMPARES, MODULE_ALIASES, parse_python
from grammar.types import ALL_DTYPES, VALID_LIMITS, WIDE

MAX_ARG_RANK = VALID_LIMITS.max_rank + 1
"""An argument's largest rank: the grammar's, plus a symbolic_shape program's batch axis."""

__all__ = ["ALLOWED_CONSTANTS", "IMPORTS", "MAX_DEPTH", "MAX_INT", "MAX_LITERAL_ELEMENTS",
           "MAX_NODES", "MAX_SOURCE_CHARS", "MAX_TRIPS", "TRANSFORMS", "check_args", "validate"]

# Measured on generated programs (docs/grammar.md, "Safety"): at --max-statements 60 and
# --max-depth 4 the longest source was 5.4 KB, the deepest tree 14 levels and the largest
# 1,234 nodes; at the grammar's limit of MAX_STATEMENTS statements a source stays under 20 KB.
MAX_SOURCE_CHARS = 100_000
"""Longest source accepted: five times what ``MAX_STATEMENTS`` statements render to."""
MAX_DEPTH = 40
"""Deepest Python syntax tree accepted (generated programs: 14 at most)."""
MAX_NODES = 10 * 20 * MAX_STATEMENTS
"""Most Python syntax-tree nodes accepted: ten times the about 20 per statement that
generated programs have."""
MAX_INT = VALID_LIMITS.max_elements
"""Largest integer literal: no dimension, axis, index or count the grammar renders is larger
than the largest array it allows."""
MAX_LITERAL_ELEMENTS = VALID_LIMITS.max_elements
"""A tuple or list of integer literals (a shape) may not multiply to more than this."""

IMPORTS: tuple[str, ...] = ("import jax", "import jax.numpy as jnp", "from jax import lax")
"""The import statements of every rendered module, and the only ones allowed."""

GRAMMAR_DTYPES: tuple[str, ...] = ALL_DTYPES + tuple(WIDE)
"""Every dtype a generated program's values take (64-bit programs' too)."""

ALLOWED_CONSTANTS: frozenset[str] = frozenset(
    f"jnp.{'bool_' if d == 'bool' else d}" for d in GRAMMAR_DTYPES) | ALLOWED_VALUES
"""Dotted names a program may use as values: the dtypes (``.astype(jnp.int32)``), and the
functions and constants op templates pass (``ALLOWED_VALUES``)."""

TRANSFORMS: frozenset[str] = frozenset(
    c for op in OPS.values() if op.family == "transform" for c in op.calls
    if c.startswith(("jax.", "pl.")) and c in ALLOWED_CALLS)
"""Functions whose result a program may call: ``jax.vmap(fn, in_axes=0)(x)``,
``pl.pallas_call(kernel, ...)(x)``."""

DECORATORS: tuple[str, ...] = ("pl.when",)
"""Calls whose result may decorate a nested def: ``@pl.when(pl.program_id(0) == 0)``."""

_BUILTINS = frozenset(dir(builtins)) - {"True", "False", "None"}
_LITERAL_NAMES = frozenset({"True", "False", "None"})
_BINARY = tuple(_BINOPS.values())
_COMPARE = tuple(_COMPARES.values())
_UNARY = (cst.Minus, cst.BitInvert)
_CALLS_HINT = "allowed: jnp.*, lax.* functions the grammar uses"

# What each rejected node kind is called in a problem.
_KIND = {
    "Lambda": "lambda", "ListComp": "list comprehension", "SetComp": "set comprehension",
    "DictComp": "dict comprehension", "GeneratorExp": "generator expression",
    "NamedExpr": "walrus (:=)", "FormattedString": "f-string",
    "ConcatenatedString": "string concatenation", "IfExp": "conditional expression",
    "BooleanOperation": "'and'/'or'", "Await": "await", "Yield": "yield",
    "Ellipsis": "'...'", "Dict": "dict literal", "Set": "set literal",
    "Imaginary": "complex literal", "StarredElement": "star unpacking (*)",
    "With": "'with' statement", "Try": "'try' statement", "TryStar": "'try' statement",
    "While": "'while' loop", "For": "'for' loop", "If": "'if' statement",
    "Match": "'match' statement", "ClassDef": "class definition", "Global": "'global'",
    "Nonlocal": "'nonlocal'", "Del": "'del'", "Assert": "'assert'", "Raise": "'raise'",
    "Pass": "'pass'", "Break": "'break'", "Continue": "'continue'",
    "AugAssign": "augmented assignment", "AnnAssign": "annotated assignment",
    "Expr": "expression statement", "Import": "import", "ImportFrom": "import",
    "Subscript": "a subscript", "BinaryOperation": "an operator's result",
    "UnaryOperation": "an operator's result", "Comparison": "a comparison",
    "SimpleString": "a string", "Integer": "a number", "Float": "a number",
    "Tuple": "a tuple", "List": "a list",
}


def _kind(node: cst.CSTNode) -> str:
    name = type(node).__name__
    return _KIND.get(name, name)


def _dunder(name: str) -> bool:
    return name.startswith("__") or name.endswith("__")


def dotted(node: cst.BaseExpression) -> str | None:
    """``jnp.linalg.norm`` -> ``"jnp.linalg.norm"``; None for anything but a name chain."""
    parts = []
    while isinstance(node, cst.Attribute):
        parts.append(node.attr.value)
        node = node.value
    if not isinstance(node, cst.Name):
        return None
    parts.append(node.value)
    return ".".join(reversed(parts))


class _Scope:
    """The names bound so far in one function: ``"value"`` or ``"def"`` each."""

    def __init__(self, outer: _Scope | None = None):
        self.names: dict[str, str] = dict(outer.names) if outer else {}


class _Checker:
    def __init__(self, wrapper: MetadataWrapper):
        self.module = wrapper.module
        self.positions = wrapper.resolve(PositionProvider)
        self.problems: list[str] = []
        self.entry: str | None = None

    # -- reporting ------------------------------------------------------------------------

    def line(self, node: cst.CSTNode) -> int:
        pos = self.positions.get(node)
        return pos.start.line if pos is not None else 0

    def reject(self, node: cst.CSTNode, what: str) -> None:
        self.problems.append(f"line {self.line(node)}: {what}")

    # -- module ---------------------------------------------------------------------------

    def module_body(self) -> None:
        seen: set[str] = set()
        defs: list[cst.FunctionDef] = []
        for i, stmt in enumerate(self.module.body):
            if isinstance(stmt, cst.FunctionDef):
                defs.append(stmt)
                if len(defs) > 1:
                    self.reject(stmt, f"a second top-level def {stmt.name.value!r} is not "
                                      "allowed (exactly one entry function)")
                continue
            if not isinstance(stmt, cst.SimpleStatementLine):
                self.reject(stmt, f"{_kind(stmt)} is not allowed at module level")
                continue
            for small in stmt.body:
                if i == 0 and len(stmt.body) == 1 and self.docstring(small):
                    continue
                if isinstance(small, cst.Import | cst.ImportFrom):
                    self.import_(small, seen)
                elif isinstance(small, cst.Expr):
                    self.reject(small, "a top-level expression statement is not allowed")
                else:
                    self.reject(small, f"{_kind(small)} is not allowed at module level")
        for missing in (imp for imp in IMPORTS if imp not in seen):
            self.problems.append(f"line 1: missing {missing!r}")
        if not defs:
            self.problems.append("line 1: no entry function (one top-level def)")
        for fn in defs[:1]:
            self.entry = fn.name.value
            self.bind(fn.name, _Scope(), "def")
            self.function(fn, _Scope())

    def docstring(self, small: cst.BaseSmallStatement) -> bool:
        return (isinstance(small, cst.Expr) and isinstance(small.value, cst.SimpleString)
                and small.value.prefix == "")

    def import_(self, node: cst.Import | cst.ImportFrom, seen: set[str]) -> None:
        text = " ".join(self.module.code_for_node(node).split())
        if text not in IMPORTS and text not in OPTIONAL_IMPORTS:
            allowed = "; ".join(IMPORTS + OPTIONAL_IMPORTS)
            self.reject(node, f"import {text!r} is not allowed (only: {allowed})")
        elif text in seen:
            self.reject(node, f"duplicate {text!r}")
        seen.add(text)

    # -- functions and statements ---------------------------------------------------------

    def bind(self, name: cst.Name, scope: _Scope, kind: str) -> None:
        n = name.value
        if _dunder(n):
            self.reject(name, f"name {n!r} is not allowed (dunder names never are)")
        elif n in MODULE_ALIASES:
            self.reject(name, f"rebinding the module alias {n!r} is not allowed")
        elif n in _BUILTINS:
            self.reject(name, f"name {n!r} is not allowed (it shadows a builtin)")
        scope.names[n] = kind

    def function(self, fn: cst.FunctionDef, outer: _Scope, nested: bool = False) -> None:
        name = fn.name.value
        for decorator in fn.decorators:
            d = decorator.decorator
            if nested and isinstance(d, cst.Call) and self.module_path(d.func, outer) in \
                    DECORATORS:
                self.call(d, outer)
            else:
                self.reject(decorator, f"decorator on def {name!r} is not allowed (only "
                                       f"{', '.join(DECORATORS)}(...) on a nested def)")
        if fn.asynchronous is not None:
            self.reject(fn, f"async def {name!r} is not allowed")
        if fn.returns is not None:
            self.reject(fn.returns, f"return annotation on def {name!r} is not allowed")
        scope = _Scope(outer)
        params = fn.params
        if isinstance(params.star_arg, cst.Param | cst.ParamStar) or params.kwonly_params:
            self.reject(fn, f"star parameters (*args, keyword-only) of def {name!r} "
                            "are not allowed")
        if params.star_kwarg is not None:
            self.reject(params.star_kwarg, f"**kwargs parameter of def {name!r} is not allowed")
        if params.posonly_params or isinstance(params.posonly_ind, cst.ParamSlash):
            self.reject(fn, f"positional-only parameters of def {name!r} are not allowed")
        for p in params.params:
            if p.default is not None:
                self.reject(p, f"default value of parameter {p.name.value!r} is not allowed")
            if p.annotation is not None:
                self.reject(p, f"annotation of parameter {p.name.value!r} is not allowed")
            self.bind(p.name, scope, "value")
        body = fn.body.body if isinstance(fn.body, cst.IndentedBlock) else (fn.body,)
        for i, stmt in enumerate(body):
            self.statement(stmt, scope, last=i == len(body) - 1)
        if not _ends_in_return(body) and not (nested and not _returns(body)):
            self.reject(fn, f"def {name!r} must end with a return statement (a nested def "
                            "may have none)")

    def statement(self, stmt: cst.CSTNode, scope: _Scope, last: bool) -> None:
        if isinstance(stmt, cst.FunctionDef):
            self.function(stmt, scope, nested=True)
            self.bind(stmt.name, scope, "def")
            return
        if isinstance(stmt, cst.For):
            self.for_loop(stmt, scope)
            return
        if not isinstance(stmt, cst.SimpleStatementLine):
            self.reject(stmt, f"{_kind(stmt)} is not allowed")
            return
        for j, small in enumerate(stmt.body):
            if isinstance(small, cst.Assign):
                self.assign(small, scope)
            elif isinstance(small, cst.Return):
                if not (last and j == len(stmt.body) - 1):
                    self.reject(small, "return is only allowed as a function's last statement")
                if small.value is None:
                    self.reject(small, "return without a value is not allowed")
                else:
                    self.expr(small.value, scope)
            elif isinstance(small, cst.Import | cst.ImportFrom):
                self.reject(small, "import inside a function is not allowed")
            else:
                self.reject(small, f"{_kind(small)} is not allowed")

    def for_loop(self, node: cst.For, scope: _Scope) -> None:
        """``for name in (1.0, 0.5):`` with assignments only: a loop tracing unrolls."""
        if node.asynchronous is not None or node.orelse is not None:
            self.reject(node, "'for' loop with 'async' or 'else' is not allowed")
        items = node.iter.elements if isinstance(node.iter, cst.Tuple) else None
        if items is None or not all(_constant(e.value) and not isinstance(
                e.value, cst.Tuple | cst.List) for e in items):
            self.reject(node.iter, "a 'for' loop may only run over a tuple of literal numbers")
        elif len(items) > MAX_TRIPS:
            self.reject(node.iter, f"a loop of {len(items)} trips is longer than the "
                                   f"grammar's {MAX_TRIPS}")
        else:
            self.expr(node.iter, scope)
        if not isinstance(node.target, cst.Name):
            self.reject(node.target, "a 'for' loop's target must be a name")
        else:
            self.bind(node.target, scope, "value")
        body = node.body.body if isinstance(node.body, cst.IndentedBlock) else (node.body,)
        for stmt in body:
            if isinstance(stmt, cst.SimpleStatementLine) and all(
                    isinstance(small, cst.Assign) for small in stmt.body):
                self.statement(stmt, scope, last=False)
            else:
                self.reject(stmt, "a 'for' loop's body may only assign")

    def assign(self, node: cst.Assign, scope: _Scope) -> None:
        if len(node.targets) != 1:
            self.reject(node, "chained assignment (a = b = ...) is not allowed")
        self.expr(node.value, scope)
        for target in node.targets:
            t = target.target
            if isinstance(t, cst.Subscript) and isinstance(t.value, cst.Name):
                self.expr(t, scope)  # a Pallas kernel writes its output: o_ref[...] = value
                continue
            names = [t] if isinstance(t, cst.Name) else [
                e.value for e in t.elements] if isinstance(t, cst.Tuple) else []
            if not names or any(not isinstance(n, cst.Name) for n in names) or (
                    isinstance(t, cst.Tuple)
                    and any(isinstance(e, cst.StarredElement) for e in t.elements)):
                self.reject(t, f"assignment to {_kind(t)} is not allowed (only a name, a "
                               "tuple of names, or a subscript of a name)")
                continue
            callable_result = isinstance(node.value, cst.Call) and (
                self.module_path(node.value.func, scope) in CALLABLE_RESULTS)
            for n in names:
                self.bind(n, scope, "def" if callable_result and len(names) == 1 else "value")

    # -- expressions ----------------------------------------------------------------------

    def expr(self, node: cst.BaseExpression, scope: _Scope) -> None:
        if isinstance(node, cst.Name):
            self.name(node, scope)
        elif isinstance(node, cst.Integer):
            if len(node.value) > 8 or int(node.value, 0) > MAX_INT:
                self.reject(node, f"integer {node.value[:20]} is larger than the grammar's "
                                  f"{MAX_INT}")
        elif isinstance(node, cst.Float):
            pass
        elif isinstance(node, cst.Attribute):
            self.attribute(node, scope)
        elif isinstance(node, cst.Call):
            self.call(node, scope)
        elif isinstance(node, cst.Subscript):
            self.expr(node.value, scope)
            for element in node.slice:
                self.index(element.slice, scope)
        elif isinstance(node, cst.Tuple | cst.List):
            self.literal_shape(node)
            for element in node.elements:
                if isinstance(element, cst.StarredElement):
                    self.reject(element, "star unpacking (*) is not allowed")
                else:
                    self.expr(element.value, scope)
        elif isinstance(node, cst.BinaryOperation):
            if not isinstance(node.operator, _BINARY):
                self.reject(node, f"operator {type(node.operator).__name__} is not allowed")
            if _constant(node.left) and _constant(node.right):
                self.reject(node, "an operator between two literals is not allowed (the "
                                  "grammar always has a value on one side)")
            self.expr(node.left, scope)
            self.expr(node.right, scope)
        elif isinstance(node, cst.UnaryOperation):
            if not isinstance(node.operator, _UNARY):
                self.reject(node, f"unary operator {type(node.operator).__name__} is not "
                                  "allowed")
            self.expr(node.expression, scope)
        elif isinstance(node, cst.Comparison):
            self.expr(node.left, scope)
            for target in node.comparisons:
                if not isinstance(target.operator, _COMPARE):
                    self.reject(node, f"comparison {type(target.operator).__name__} is not "
                                      "allowed")
                self.expr(target.comparator, scope)
        elif isinstance(node, cst.Dict):
            for element in node.elements:
                if not isinstance(element, cst.DictElement):
                    self.reject(element, "dict unpacking (**) is not allowed")
                    continue
                self.plain_string(element.key, "a dict key")
                self.expr(element.value, scope)
        elif isinstance(node, cst.SimpleString):
            self.reject(node, "a string is only allowed as an argument of a JAX function, a "
                              "subscript or a dict key")
        else:
            self.reject(node, f"{_kind(node)} is not allowed")

    def literal_shape(self, node: cst.Tuple | cst.List) -> None:
        dims = [_int_value(e.value) for e in node.elements]
        if dims and all(d is not None and 0 <= d <= MAX_INT for d in dims):
            size = math.prod(dims)
            if size > MAX_LITERAL_ELEMENTS:
                self.reject(node, f"a literal shape of {size} elements is larger than the "
                                  f"grammar's {MAX_LITERAL_ELEMENTS}")

    def trip_count(self, node: cst.Call) -> None:
        """``lax.fori_loop(lower, upper, ...)`` with literal bounds runs at most MAX_TRIPS."""
        if len(node.args) < 2:
            return
        lower, upper = (_int_value(a.value) for a in node.args[:2])
        if lower is not None and upper is not None and upper - lower > MAX_TRIPS:
            self.reject(node, f"a loop of {upper - lower} trips is longer than the grammar's "
                              f"{MAX_TRIPS}")

    def name(self, node: cst.Name, scope: _Scope) -> None:
        n = node.value
        if n in scope.names or n in _LITERAL_NAMES:
            return
        if _dunder(n):
            self.reject(node, f"name {n!r} is not allowed (dunder names never are)")
        elif n in MODULE_ALIASES:
            self.reject(node, f"module {n!r} may only be used as {n}.<function the grammar "
                              "uses>")
        elif n in _BUILTINS:
            self.reject(node, f"name {n!r} is not allowed (builtins never are)")
        else:
            self.reject(node, f"name {n!r} is not defined")

    def module_path(self, node: cst.BaseExpression, scope: _Scope) -> str | None:
        """The dotted name when ``node`` is an attribute chain on a module alias."""
        path = dotted(node)
        if path is None or "." not in path:
            return None
        head = path.split(".", 1)[0]
        return path if head in MODULE_ALIASES and head not in scope.names else None

    def attribute(self, node: cst.Attribute, scope: _Scope) -> None:
        path = self.module_path(node, scope)
        if path is not None:
            if path in ALLOWED_CONSTANTS:
                return
            if path in ALLOWED_CALLS:
                self.reject(node, f"{path!r} may only be called, not used as a value")
            else:
                self.reject(node, f"{path!r} is not allowed ({_CALLS_HINT}, and jnp dtypes)")
            return
        attr = node.attr.value
        if _dunder(attr):
            self.reject(node, f"attribute {attr!r} is not allowed (dunder names never are)")
        elif attr not in ALLOWED_METHODS:
            self.reject(node, f"attribute {attr!r} is not allowed (allowed on values: "
                              f"{', '.join(sorted(ALLOWED_METHODS))})")
        self.expr(node.value, scope)

    def call(self, node: cst.Call, scope: _Scope) -> None:
        func = node.func
        path = self.module_path(func, scope)
        jax_function = False
        if path is not None:
            jax_function = path in ALLOWED_CALLS
            if not jax_function:
                self.reject(node, f"call to {path!r} is not allowed ({_CALLS_HINT})")
            elif path == "lax.fori_loop":
                self.trip_count(node)
        elif isinstance(func, cst.Name):
            n = func.value
            if scope.names.get(n) == "def":
                pass
            elif n in scope.names:
                self.reject(node, f"call to {n!r} is not allowed (only nested functions and "
                                  "JAX functions can be called)")
            elif _dunder(n) or n in _BUILTINS or n not in MODULE_ALIASES:
                self.reject(node, f"call to {n!r} is not allowed ({_CALLS_HINT})")
            else:
                self.reject(node, f"call to module {n!r} is not allowed ({_CALLS_HINT})")
        elif isinstance(func, cst.Attribute):
            self.attribute(func, scope)
        elif (isinstance(func, cst.Subscript) and isinstance(func.value, cst.Call)
              and self.module_path(func.value.func, scope) in TRANSFORMS):
            self.expr(func, scope)  # jax.vjp(f, x)[1](ct): the pullback
        elif isinstance(func, cst.Call):
            inner = self.module_path(func.func, scope)
            if inner not in TRANSFORMS:
                self.reject(node, "calling the result of a call is only allowed for "
                                  f"{', '.join(sorted(TRANSFORMS))}")
            self.call(func, scope)
        else:
            self.reject(node, f"call of {_kind(func)} is not allowed ({_CALLS_HINT})")
            self.expr(func, scope)
        for arg in node.args:
            self.argument(arg, scope, strings=jax_function)

    def argument(self, arg: cst.Arg, scope: _Scope, strings: bool) -> None:
        if arg.star == "*":
            self.reject(arg, "star-args (*...) are not allowed")
        elif arg.star == "**":
            self.reject(arg, "keyword unpacking (**...) is not allowed")
        if arg.keyword is not None and _dunder(arg.keyword.value):
            self.reject(arg, f"keyword {arg.keyword.value!r} is not allowed (dunder names "
                             "never are)")
        value = arg.value
        if isinstance(value, cst.SimpleString) and strings:
            self.plain_string(value, "a string argument")
        elif strings and isinstance(value, cst.Tuple | cst.List) and value.elements and all(
                isinstance(e.value, cst.SimpleString) for e in value.elements):
            for element in value.elements:  # axis names: jax.make_mesh((4,), ("x",))
                self.plain_string(element.value, "a string argument")
        else:
            self.expr(value, scope)

    def plain_string(self, node: cst.BaseExpression, what: str) -> None:
        if not isinstance(node, cst.SimpleString):
            self.reject(node, f"{what} must be a plain string, not {_kind(node)}")
        elif node.prefix != "":
            self.reject(node, f"string prefix {node.prefix!r} is not allowed (plain strings "
                              "only)")

    def index(self, index: cst.BaseSlice, scope: _Scope) -> None:
        if isinstance(index, cst.Index):
            if index.star is not None:
                self.reject(index, "star unpacking (*) in a subscript is not allowed")
            if isinstance(index.value, cst.SimpleString):  # a dict argument's key
                self.plain_string(index.value, "a subscript")
            elif isinstance(index.value, cst.Ellipsis):  # a whole Pallas ref: x_ref[...]
                pass
            else:
                self.expr(index.value, scope)
        elif isinstance(index, cst.Slice):
            for part in (index.lower, index.upper, index.step):
                if part is not None:
                    self.expr(part, scope)
        else:  # pragma: no cover - libcst has no other slice kinds
            self.reject(index, f"{_kind(index)} is not allowed")


def _returns(body: Sequence[cst.CSTNode]) -> bool:
    return any(isinstance(small, cst.Return) for stmt in body
               if isinstance(stmt, cst.SimpleStatementLine) for small in stmt.body)


def _ends_in_return(body: Sequence[cst.CSTNode]) -> bool:
    return bool(body) and isinstance(body[-1], cst.SimpleStatementLine) and isinstance(
        body[-1].body[-1], cst.Return)


# -- the second opinion: Python's own parser -----------------------------------------------

_AST_NODES = (
    ast.Module, ast.Expr, ast.Constant, ast.Import, ast.ImportFrom, ast.alias, ast.FunctionDef,
    ast.arguments, ast.arg, ast.Assign, ast.Return, ast.Name, ast.Load, ast.Store,
    ast.Attribute, ast.Call, ast.keyword, ast.Tuple, ast.List, ast.Dict, ast.Subscript,
    ast.Slice, ast.For,
    ast.BinOp, ast.UnaryOp, ast.Compare, ast.Add, ast.Sub, ast.Mult, ast.Div, ast.Pow,
    ast.Mod, ast.MatMult, ast.BitAnd, ast.BitOr, ast.BitXor, ast.FloorDiv, ast.LShift,
    ast.RShift, ast.USub,
    ast.Invert, ast.Lt, ast.LtE, ast.Gt, ast.GtE, ast.Eq, ast.NotEq,
)
_AST_CONSTANTS = (int, float, str, bool, type(None), type(...))


def _ast_decorator(node: ast.expr) -> bool:
    """``@pl.when(...)``, as ``DECORATORS`` allows."""
    func = node.func if isinstance(node, ast.Call) else None
    return (isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name)
            and f"{func.value.id}.{func.attr}" in DECORATORS)


def _python_check(tree: ast.Module) -> list[str]:
    """The same text through ``ast``: node kinds, constants and identifiers, coarsely."""
    problems = []
    for node in ast.walk(tree):
        line = getattr(node, "lineno", 1)
        if not isinstance(node, _AST_NODES):
            problems.append(f"line {line}: {type(node).__name__} is not allowed (Python parser)")
        elif isinstance(node, ast.Constant) and not isinstance(node.value, _AST_CONSTANTS):
            problems.append(f"line {line}: constant {type(node.value).__name__} is not allowed "
                            "(Python parser)")
        elif isinstance(node, ast.FunctionDef) and not all(
                _ast_decorator(d) for d in node.decorator_list):
            problems.append(f"line {line}: decorator is not allowed (Python parser)")
        elif isinstance(node, ast.arguments) and (
                node.defaults or node.kw_defaults or node.vararg or node.kwarg
                or node.kwonlyargs or node.posonlyargs):
            problems.append(f"line {line}: only plain parameters are allowed (Python parser)")
        elif isinstance(node, ast.Name) and node.id in _BUILTINS:
            problems.append(f"line {line}: builtin {node.id!r} is not allowed (Python parser)")
        for ident in (getattr(node, f, None) for f in ("id", "attr", "arg", "name", "asname")):
            if isinstance(ident, str) and "__" in ident:
                problems.append(f"line {line}: name {ident!r} is not allowed (Python parser)")
    return problems


def _int_value(node: cst.BaseExpression) -> int | None:
    """The value of an integer literal (``3``, ``-1``), or None."""
    sign = 1
    if isinstance(node, cst.UnaryOperation) and isinstance(node.operator, cst.Minus):
        sign, node = -1, node.expression
    if isinstance(node, cst.Integer) and len(node.value) <= 8:
        return sign * int(node.value, 0)
    return None


def _tree_size(tree: ast.AST) -> tuple[int, int]:
    """(depth, node count) of a Python syntax tree, without recursion; stops counting once
    either exceeds its cap."""
    depth, nodes, stack = 0, 0, [(tree, 1)]
    while stack and depth <= MAX_DEPTH and nodes <= MAX_NODES:
        node, d = stack.pop()
        depth, nodes = max(depth, d), nodes + 1
        stack.extend((child, d + 1) for child in ast.iter_child_nodes(node))
    return depth, nodes


def _constant(node: cst.BaseExpression) -> bool:
    """A literal number, or a tuple, list or operation of them only."""
    if isinstance(node, cst.Integer | cst.Float):
        return True
    if isinstance(node, cst.UnaryOperation):
        return _constant(node.expression)
    if isinstance(node, cst.BinaryOperation):
        return _constant(node.left) and _constant(node.right)
    if isinstance(node, cst.Tuple | cst.List):
        return all(_constant(e.value) for e in node.elements)
    return False


def _arg_leaves(args: list | tuple) -> list[tuple[str, object]] | str:
    """The leaves of a record's args, each with where it is, or what is wrong with the
    tree: the grammar nests one level (a dict or a tuple argument of arrays)."""
    leaves: list[tuple[str, object]] = []
    for i, arg in enumerate(args):
        if isinstance(arg, dict):
            if not all(isinstance(k, str) and k.isidentifier() for k in arg):
                return f"args[{i}] is a dict whose keys are not all identifiers"
            leaves.extend((f"args[{i}][{k!r}]", v) for k, v in arg.items())
        elif (isinstance(arg, list | tuple) and arg and all(
                isinstance(a, list | tuple) and len(a) == 2 and isinstance(a[1], str)
                for a in arg)):
            leaves.extend((f"args[{i}][{j}]", v) for j, v in enumerate(arg))
        else:
            leaves.append((f"args[{i}]", arg))
        if len(leaves) > MAX_PARAMS:
            return f"more than the grammar's {MAX_PARAMS} arrays in args"
    return leaves


def check_args(args: object) -> list[str]:
    """The problems that keep ``args`` (a record's ``[[shape, dtype], ...]``, an argument
    possibly a dict or a tuple of such pairs) from being the argument types of a generated
    program: at most ``MAX_PARAMS`` arrays, the grammar's dtypes, and shapes within
    ``VALID_LIMITS``.  Empty when they fit; never raises."""
    if not isinstance(args, list | tuple):
        return [f"args must be a list of [shape, dtype] pairs, got {type(args).__name__}"]
    leaves = _arg_leaves(args)
    if isinstance(leaves, str):
        return [leaves]
    problems = []
    for i, arg in leaves:
        shape, dtype = arg if isinstance(arg, list | tuple) and len(arg) == 2 else (None, None)
        if not (isinstance(shape, list | tuple) and all(
                isinstance(d, int) and not isinstance(d, bool) for d in shape)):
            problems.append(f"{i} must be a [shape, dtype] pair, got {str(arg)[:60]}")
            continue
        if dtype not in GRAMMAR_DTYPES:
            problems.append(f"{i} dtype {str(dtype)[:40]!r} is not one of the grammar's "
                            f"({', '.join(GRAMMAR_DTYPES)})")
        if len(shape) > MAX_ARG_RANK or any(
                not 0 <= d <= VALID_LIMITS.max_dim for d in shape) or math.prod(
                shape) > VALID_LIMITS.max_elements:
            problems.append(f"{i} shape {str(shape)[:60]} is outside the grammar's "
                            f"limits (rank <= {MAX_ARG_RANK}, dims <= "
                            f"{VALID_LIMITS.max_dim}, <= {VALID_LIMITS.max_elements} elements)")
    return problems


def validate(source: str, entry: str | None = None) -> list[str]:
    """The problems that keep ``source`` from being a program the grammar renders.

    An empty list means it has only grammar forms and is safe to execute.  Each problem names
    its line and what was rejected.  ``entry``, when given, must be the top-level def's name.
    """
    if not isinstance(source, str):
        return [f"line 1: source must be a string, got {type(source).__name__}"]
    if len(source) > MAX_SOURCE_CHARS:  # before anything reads the text
        return [f"line 1: source of {len(source)} characters is longer than the "
                f"{MAX_SOURCE_CHARS} accepted (generated programs stay under 20,000)"]
    if not source.isascii():
        # Python folds identifiers by NFKC, so a fullwidth 'ｊｎｐ' would rebind 'jnp'.
        line = next(i for i, text in enumerate(source.splitlines(), 1) if not text.isascii())
        return [f"line {line}: non-ASCII characters are not allowed (the grammar renders "
                "ASCII only)"]
    # Python's parser first: it refuses absurd nesting cleanly, and its tree is measured
    # before libcst, whose parser and visitors fail on deep nesting (KeyError, stack overflow).
    try:
        tree = parse_python(source)
    except SyntaxError as e:
        return [f"line {e.lineno or 1}: source does not parse: {e.msg}"]
    except (ValueError, RecursionError, MemoryError, SystemError) as e:
        return [f"line 1: source does not parse: {type(e).__name__}: {str(e)[:200]}"]
    depth, nodes = _tree_size(tree)
    if depth > MAX_DEPTH:
        return [f"line 1: source nests deeper than the {MAX_DEPTH} levels accepted "
                "(generated programs: 14 at most)"]
    if nodes > MAX_NODES:
        return [f"line 1: source has more than the {MAX_NODES} syntax nodes accepted"]
    try:
        wrapper = MetadataWrapper(cst.parse_module(source), unsafe_skip_copy=True)
        checker = _Checker(wrapper)
        checker.module_body()
    except cst.ParserSyntaxError as e:
        return [f"line {e.raw_line}: source does not parse: {e.message:.200}"]
    except Exception as e:  # libcst on text Python accepts: never let it end a replay
        return [f"line 1: source cannot be checked ({type(e).__name__}: {str(e)[:200]})"]
    if entry is not None and checker.entry is not None and entry != checker.entry:
        checker.problems.append(f"line 1: entry {entry!r} is not the program's function "
                                f"{checker.entry!r}")
    return checker.problems or _python_check(tree)
