"""Source styles: one program tree rendered the ways people write JAX.

Over 400 lines: the three rewrites below share their libcst helpers (dotted names, bound
names, the first effect of a statement) and are applied together by ``apply_style``.

A style changes the text only, never what JAX traces: the canonical StableHLO of a tree is
the same in every style (``tests/test_styles.py``).  Three rewrites of the rendered module,
each optional:

* ``inline``  a value used once, by the statement right after its own, is folded into that
  use (``jnp.sum(jnp.tanh(x0 @ w), axis=1)``), up to a nesting depth and 88 columns, and
  only where nothing is traced between its old place and its use (so the trace order, and
  the IR, stay the same);
* ``methods`` method and operator forms where JAX has them: ``jnp.sum(x, axis=1)`` ->
  ``x.sum(axis=1)``, ``jnp.matmul(a, b)`` -> ``a @ b``, ``jnp.transpose(x)`` -> ``x.T``,
  ``jnp.expand_dims(x, 1)`` -> ``x[:, None]`` (each checked to lower identically;
  ``jnp.clip`` is left out: its method lowers differently);
* ``names``   names from a vocabulary keyed by what a value is (its op family, rank and
  dtype, its role in a region), unique, never a module alias, keyword or builtin.

Every style but ``ssa`` is then laid out by ``black`` (a dependency for this: breaking long
calls the way most JAX code is formatted is what black is for).
"""

from __future__ import annotations

import builtins
import keyword
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import black
import libcst as cst

from grammar.ops import OPS
from grammar.program import Program, Region, walk
from grammar.syntax import METHODS, MODULE_ALIASES, paren

__all__ = ["STYLES", "Style", "apply_style", "vocabulary"]


@dataclass(frozen=True)
class Style:
    """Which rewrites a style applies."""

    inline: bool = False
    methods: bool = False
    names: bool = False


STYLES: Mapping[str, Style] = {
    "ssa": Style(),
    "inlined": Style(inline=True),
    "methods": Style(methods=True),
    "named": Style(names=True),
    "idiomatic": Style(inline=True, methods=True, names=True),
}
"""The styles by name; ``"ssa"`` (one call per statement, names ``x0``, ``t7``) comes first,
where shrinking goes."""

MAX_LINE = 88
"""The longest line inlining makes (black's default)."""
_BLACK = black.Mode(line_length=MAX_LINE)

# -- inlining ---------------------------------------------------------------------------------


class _Uses(cst.CSTVisitor):
    """How often each name is read and bound in a module (names are SSA: bound once, except
    in an unrolled ``for`` loop)."""

    def __init__(self) -> None:
        self.reads: Counter[str] = Counter()
        self.binds: Counter[str] = Counter()

    def visit_Name(self, node: cst.Name) -> None:
        self.reads[node.value] += 1

    def visit_AssignTarget(self, node: cst.AssignTarget) -> bool:
        self._bind(node.target)
        return False

    def visit_For(self, node: cst.For) -> None:
        self._bind(node.target)
        for stmt in node.body.body:  # bound each iteration: never inlined
            if isinstance(stmt, cst.SimpleStatementLine):
                for small in stmt.body:
                    if isinstance(small, cst.Assign):
                        for target in small.targets:
                            self.binds[_bound(target.target)] += 2

    def visit_Param(self, node: cst.Param) -> bool:
        self.binds[node.name.value] += 1
        return False

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        self.binds[node.name.value] += 1

    def _bind(self, target: cst.BaseExpression) -> None:
        for name in _names_in(target):
            self.binds[name] += 1


def _bound(target: cst.BaseExpression) -> str:
    return target.value if isinstance(target, cst.Name) else ""


def _names_in(target: cst.BaseExpression) -> Iterable[str]:
    if isinstance(target, cst.Name):
        yield target.value
    elif isinstance(target, cst.Tuple | cst.List):
        for element in target.elements:
            yield from _names_in(element.value)


def _first_effect(node: cst.CSTNode, target: str) -> str:
    """What Python meets first evaluating ``node``: ``"target"`` (a read of ``target``),
    ``"op"`` (an operation that completes, so it would be traced before the target), or
    ``"none"`` (only names, literals and module attributes)."""
    if isinstance(node, cst.Name):
        return "target" if node.value == target else "none"
    if isinstance(node, cst.Attribute):
        if dotted_name(node) is not None:
            return "none"  # jnp.float32, lax.add: a module attribute
        return _first_of([node.value], target) or "op"
    if isinstance(node, cst.Call):
        return _first_of([node.func, *(a.value for a in node.args)], target) or "op"
    if isinstance(node, cst.BinaryOperation):
        return _first_of([node.left, node.right], target) or "op"
    if isinstance(node, cst.UnaryOperation):
        return _first_of([node.expression], target) or "op"
    if isinstance(node, cst.Comparison):
        return _first_of([node.left, *(c.comparator for c in node.comparisons)], target) or "op"
    if isinstance(node, cst.Subscript):
        parts = [node.value]
        for element in node.slice:
            s = element.slice
            parts += [s.value] if isinstance(s, cst.Index) else [
                p for p in (s.lower, s.upper, s.step) if p is not None]
        return _first_of(parts, target) or "op"
    if isinstance(node, cst.Tuple | cst.List):
        return _first_of([e.value for e in node.elements], target) or "none"
    if isinstance(node, cst.Dict):
        return _first_of([x for e in node.elements for x in (e.key, e.value)], target) or "none"
    return "none" if isinstance(node, cst.Integer | cst.Float | cst.SimpleString) else "op"


def _first_of(nodes: Iterable[cst.CSTNode], target: str) -> str | None:
    for node in nodes:
        effect = _first_effect(node, target)
        if effect != "none":
            return effect
    return None


def dotted_name(node: cst.BaseExpression) -> str | None:
    """``"jnp.float32"`` for a chain of attributes on ``jax``, ``jnp`` or ``lax``, else None."""
    parts = []
    while isinstance(node, cst.Attribute):
        parts.append(node.attr.value)
        node = node.value
    if isinstance(node, cst.Name) and node.value in MODULE_ALIASES and parts:
        return ".".join([node.value, *reversed(parts)])
    return None


def _depth(node: cst.CSTNode) -> int:
    """Nesting depth of calls and operators in an expression."""
    children = [_depth(c) for c in node.children]
    deeper = max(children, default=0)
    is_op = isinstance(node, cst.Call | cst.BinaryOperation | cst.UnaryOperation)
    return deeper + 1 if is_op else deeper


class _Substitute(cst.CSTTransformer):
    def __init__(self, name: str, value: cst.BaseExpression):
        self.name, self.value = name, value

    def _bare(self, node: cst.BaseExpression) -> bool:
        return isinstance(node, cst.Name) and node.value == self.name

    def leave_Arg(self, original: cst.Arg, updated: cst.Arg) -> cst.Arg:
        # a call argument or a tuple element needs no parentheses
        return updated.with_changes(value=self.value) if self._bare(original.value) else updated

    def leave_Element(self, original: cst.Element, updated: cst.Element) -> cst.Element:
        return updated.with_changes(value=self.value) if self._bare(original.value) else updated

    def leave_Name(self, original: cst.Name, updated: cst.Name) -> cst.BaseExpression:
        return paren(self.value) if original.value == self.name else updated


def _value_of(stmt: cst.BaseStatement) -> tuple[cst.BaseSmallStatement, cst.BaseExpression] | None:
    if isinstance(stmt, cst.SimpleStatementLine) and len(stmt.body) == 1:
        small = stmt.body[0]
        if isinstance(small, cst.Assign | cst.Return) and small.value is not None:
            return small, small.value
    return None


class _Inline(cst.CSTTransformer):
    def __init__(self, uses: _Uses, depth: int):
        self.uses, self.depth = uses, depth

    def leave_IndentedBlock(self, original: cst.IndentedBlock,
                            updated: cst.IndentedBlock) -> cst.IndentedBlock:
        body = list(updated.body)
        i = 0
        while i + 1 < len(body):
            folded = self._fold(body[i], body[i + 1])
            if folded is None:
                i += 1
            else:
                body[i:i + 2] = [folded]
        return updated.with_changes(body=body)

    def _fold(self, first: cst.BaseStatement,
              second: cst.BaseStatement) -> cst.BaseStatement | None:
        """``second`` with ``first``'s value folded into it, or None when that could change
        the trace or the layout."""
        one, two = _value_of(first), _value_of(second)
        if one is None or two is None or not isinstance(one[0], cst.Assign):
            return None
        assign, value = one
        if len(assign.targets) != 1 or not isinstance(assign.targets[0].target, cst.Name):
            return None
        name = assign.targets[0].target.value
        if (self.uses.binds[name] != 1 or self.uses.reads[name] != 1
                or _first_effect(two[1], name) != "target" or _depth(value) >= self.depth):
            return None
        new = value if isinstance(two[1], cst.Name) else two[1].visit(_Substitute(name, value))
        folded = second.with_changes(body=[two[0].with_changes(value=new)])
        text = cst.Module(body=[folded]).code
        if max(len(line) for line in text.splitlines()) + 8 > MAX_LINE:  # 8: two indents
            return None
        return folded


# -- method and operator forms ----------------------------------------------------------------

ATTRIBUTES = {"jnp.real": "real", "jnp.imag": "imag", "jnp.matrix_transpose": "mT"}
"""``jnp.<name>(x)`` that a JAX array offers as the attribute ``x.<attr>``."""

OPERATORS = {"jnp.matmul": cst.MatrixMultiply, "jnp.add": cst.Add,
             "jnp.subtract": cst.Subtract, "jnp.multiply": cst.Multiply,
             "jnp.divide": cst.Divide}


def _literals(items) -> set[str]:
    """The integer literals among ``items`` (args or elements), as written (``"-1"``)."""
    out = set()
    for item in items:
        value = item.value
        if isinstance(value, cst.UnaryOperation) and isinstance(value.operator, cst.Minus) \
                and isinstance(value.expression, cst.Integer):
            out.add("-" + value.expression.value)
        elif isinstance(value, cst.Integer):
            out.add(value.value)
        else:
            out.add("?")
    return out


class _Methods(cst.CSTTransformer):
    # a call turned operator below an attribute or a subscript keeps parentheses around it:
    # jnp.add(x, 0.001).at[i] is (x + 0.001).at[i], not x + (0.001).at[i] (a 15-minute run's
    # trace:AttributeError bucket)
    def leave_Attribute(self, original: cst.Attribute,
                        updated: cst.Attribute) -> cst.Attribute:
        return updated.with_changes(value=paren(updated.value))

    def leave_Subscript(self, original: cst.Subscript,
                        updated: cst.Subscript) -> cst.Subscript:
        return updated.with_changes(value=paren(updated.value))

    def leave_Call(self, original: cst.Call, updated: cst.Call) -> cst.BaseExpression:
        path = dotted_name(updated.func)
        args = updated.args
        if path is None or not args or args[0].keyword is not None or isinstance(
                args[0].value, cst.Integer | cst.Float | cst.SimpleString):
            return updated
        first = paren(args[0].value)
        positional = [a for a in args if a.keyword is None]
        if path in OPERATORS and len(args) == 2 and len(positional) == 2:
            return cst.BinaryOperation(first, OPERATORS[path](), paren(args[1].value))
        if path == "jnp.transpose" and len(args) == 1:
            return cst.Attribute(first, cst.Name("T"))
        if path in ATTRIBUTES and len(args) == 1:
            return cst.Attribute(first, cst.Name(ATTRIBUTES[path]))
        if path == "jnp.swapaxes" and len(positional) == 3 and _literals(args[1:]) == {"-1", "-2"}:
            return cst.Attribute(first, cst.Name("mT"))  # the last two axes: what .mT swaps
        if path == "jnp.reshape" and len(positional) == 2 and _literals(
                getattr(args[1].value, "elements", [args[1]])) == {"-1"}:
            return cst.Call(cst.Attribute(first, cst.Name("flatten")), [])
        if path == "jnp.expand_dims" and len(args) == 2:
            axis = args[1].value
            if isinstance(axis, cst.Integer) and 0 <= int(axis.value) <= 3:
                index = [cst.SubscriptElement(cst.Slice(None, None))] * int(axis.value)
                return cst.Subscript(first, [*index, cst.SubscriptElement(
                    cst.Index(cst.Name("None")))])
            return updated
        name = path.removeprefix("jnp.")
        if path.startswith("jnp.") and name in METHODS:
            rest = [a.with_changes(comma=cst.MaybeSentinel.DEFAULT) for a in args[1:]]
            return cst.Call(cst.Attribute(first, cst.Name(name)), rest)
        return updated


# -- names ------------------------------------------------------------------------------------

_PARAMS = {  # (kind, rank) -> names for a parameter
    ("float", 0): ("scale", "alpha", "temperature", "eps"),
    ("float", 1): ("x", "bias", "v", "features"),
    ("float", 2): ("w", "inputs", "kernel", "weights"),
    ("float", 3): ("seq", "images", "volume"),
    ("int", 0): ("n", "step", "count"),
    ("int", 1): ("labels", "tokens", "idx"),
    ("int", 2): ("ids", "positions"),
    ("bool", 0): ("flag",),
    ("bool", 1): ("mask", "valid"),
    ("complex", 1): ("z", "signal"),
}
_FAMILIES = {  # op family -> names for what it returns
    "unary": ("h", "act", "y", "out"), "binary": ("y", "combined", "z", "res"),
    "activation": ("h", "hidden", "act"), "nn": ("h", "hidden", "normed"),
    "reduction": ("total", "pooled", "norm", "stat"), "linalg": ("proj", "logits", "scores"),
    "shape": ("reshaped", "flat", "stacked", "view"), "indexing": ("picked", "gathered", "rows"),
    "control": ("carry", "out", "acc"), "transform": ("mapped", "grads", "jac"),
    "random": ("noise", "sample", "draws"), "fft": ("spectrum", "freqs", "filtered"),
    "decomposition": ("factor", "solved", "basis"), "compare": ("mask", "is_close", "keep"),
    "window": ("pooled", "windows"), "pytree": ("tree", "leaves", "state"),
    "mesh": ("sharded", "gathered", "local"), "composite": ("h", "block", "layer"),
    "creation": ("init", "buf", "pos", "ramp"),
}
_REGION_PARAMS = ("carry", "xs", "x_t", "state")
_RESERVED = (frozenset(dir(builtins)) | frozenset(keyword.kwlist)
             | set(MODULE_ALIASES) | {"params", "batch", "example", "result", "f"})


def _kind(dtype: str) -> str:
    if dtype == "bool":
        return "bool"
    if dtype.startswith(("int", "uint")):
        return "int"
    return "complex" if dtype.startswith("complex") else "float"


def vocabulary(program: Program, present: Iterable[str] = ()) -> dict[str, str]:
    """A new name for every value, region and region parameter of ``program``: from the
    vocabulary of its kind, numbered when a word repeats (``h``, ``h2``), never one of the
    names in ``present`` (the rendered module's) that renaming keeps."""
    wanted: dict[str, tuple[str, ...]] = {}
    for i, p in enumerate(program.params):
        choices = _PARAMS.get((_kind(p.type.dtype), min(p.type.rank, 3)), ("arg",))
        wanted[p.name] = choices[i % len(choices):] + choices[:i % len(choices)]

    def region(r: Region, op: str) -> None:
        wanted[r.name] = (f"{op}_fn",)
        for j, p in enumerate(r.params):
            wanted.setdefault(p.name, ("i",) if p.type.rank == 0 and _kind(
                p.type.dtype) == "int" else (_REGION_PARAMS[j % len(_REGION_PARAMS)],))

    for k, (stmt, _) in enumerate(walk(program.body)):
        op = OPS[stmt.op]
        for out in stmt.outputs:
            words = ("mask",) if out.type.dtype == "bool" else _FAMILIES.get(
                op.family, ("out",))
            wanted[out.name] = words[k % len(words):] + words[:k % len(words)]
        for r in stmt.regions:
            region(r, stmt.op)
    fixed = {n for n in present if n not in wanted and n.partition("_")[0] not in wanted}
    taken: set[str] = set(_RESERVED) | fixed
    names: dict[str, str] = {}
    for old, words in wanted.items():
        new = next((w for w in words if w not in taken), None)
        n = 2
        while new is None:
            new = f"{words[0]}{n}" if f"{words[0]}{n}" not in taken else None
            n += 1
        taken.add(new)
        names[old] = new
    return names


class _Rename(cst.CSTTransformer):
    """Every name in ``names`` renamed, and the names a template derives from one
    (``t14_key`` from ``t14``) with it."""

    def __init__(self, names: Mapping[str, str]):
        self.names = names

    def leave_Name(self, original: cst.Name, updated: cst.Name) -> cst.Name:
        old = original.value
        if old in self.names:
            return updated.with_changes(value=self.names[old])
        base, sep, suffix = old.partition("_")
        if sep and base in self.names:
            return updated.with_changes(value=f"{self.names[base]}_{suffix}")
        return updated

    def leave_Attribute(self, original: cst.Attribute,
                        updated: cst.Attribute) -> cst.Attribute:
        return updated.with_changes(attr=original.attr)  # methods and module members stay

    def leave_Arg(self, original: cst.Arg, updated: cst.Arg) -> cst.Arg:
        return updated.with_changes(keyword=original.keyword)  # keywords stay


def apply_style(module: cst.Module, program: Program, style: str, depth: int) -> str:
    """The text of ``module`` (``program`` rendered in the SSA style) rewritten in ``style``;
    ``depth`` bounds the nesting that inlining makes.  Every style but ``ssa`` is then laid
    out by ``black`` (line length 88): long calls broken one argument per line, as most JAX
    code is formatted."""
    rules = STYLES[style]
    if rules == Style():
        return module.code
    if rules.inline:
        uses = _Uses()
        module.visit(uses)
        module = module.visit(_Inline(uses, depth))
    if rules.methods:
        module = module.visit(_Methods())
    if rules.names:
        uses = _Uses()
        module.visit(uses)
        module = module.visit(_Rename(vocabulary(program, uses.reads | uses.binds)))
    return black.format_str(module.code, mode=_BLACK)
