"""Small builders of libcst nodes: the vocabulary that op templates render with."""

from __future__ import annotations

import ast
from collections.abc import Sequence
from typing import Any

import libcst as cst

_ATOMS = (cst.Name, cst.Attribute, cst.Call, cst.Subscript, cst.Integer, cst.Float,
          cst.SimpleString, cst.Tuple, cst.List)


class DType(str):
    """A dtype parameter: renders as ``jnp.<name>``."""


MODULE_ALIASES = {"jax": "jax", "jnp": "jax.numpy", "lax": "jax.lax",
                  "pl": "jax.experimental.pallas"}
"""The module names a rendered module imports (every module the first three; ``pl`` with
the Pallas ops' optional import), and what they refer to."""


def dotted(path: str) -> cst.BaseExpression:
    """``"jnp.linalg.norm"`` -> the attribute chain ``jnp.linalg.norm``."""
    head, *rest = path.split(".")
    node: cst.BaseExpression = cst.Name(head)
    for part in rest:
        node = cst.Attribute(node, cst.Name(part))
    return node


def lit(value: Any) -> cst.BaseExpression:
    """A Python value (scalar, tuple, list, string, dtype, slice) as an expression."""
    if isinstance(value, cst.BaseExpression):
        return value
    if isinstance(value, DType):
        return dotted(f"jnp.{value}")
    if value is None or isinstance(value, bool):
        return cst.Name(str(value))
    if isinstance(value, int | float):
        node: cst.BaseExpression = (cst.Integer(str(abs(value))) if isinstance(value, int)
                                    else cst.Float(repr(abs(float(value)))))
        return cst.UnaryOperation(cst.Minus(), node) if value < 0 else node
    if isinstance(value, str):
        return cst.SimpleString(repr(value))
    if isinstance(value, tuple):
        return tuple_(value)
    if isinstance(value, list):
        return cst.List([cst.Element(lit(v)) for v in value])
    raise TypeError(f"cannot render {value!r} as a literal")


def string(text: str) -> cst.SimpleString:
    """A plain double-quoted string literal of an identifier-like ``text`` (a dict key)."""
    return cst.SimpleString(f'"{text}"')


def dict_(keys: Sequence[str], values: Sequence[cst.BaseExpression]) -> cst.Dict:
    """``{"k": v, ...}``: a dict literal with string keys."""
    return cst.Dict([cst.DictElement(string(k), v) for k, v in zip(keys, values, strict=True)])


def tuple_(items: Sequence[Any]) -> cst.Tuple:
    elements = [cst.Element(lit(v)) for v in items]
    if len(elements) == 1:
        elements = [cst.Element(elements[0].value, comma=cst.Comma())]
    return cst.Tuple(elements)


def paren(node: cst.BaseExpression) -> cst.BaseExpression:
    """Wrap anything that is not an atom in parentheses, so operators never re-associate."""
    if isinstance(node, _ATOMS) or node.lpar:
        return node
    return node.with_changes(lpar=[cst.LeftParen()], rpar=[cst.RightParen()])


def call(fn: str | cst.BaseExpression, *args: Any, **kwargs: Any) -> cst.Call:
    func = dotted(fn) if isinstance(fn, str) else fn
    arg_nodes = [cst.Arg(lit(a)) for a in args]
    arg_nodes += [cst.Arg(lit(v), keyword=cst.Name(k),
                          equal=cst.AssignEqual(cst.SimpleWhitespace(""), cst.SimpleWhitespace("")))
                  for k, v in kwargs.items()]
    return cst.Call(func, arg_nodes)


def method(obj: cst.BaseExpression, name: str, *args: Any, **kwargs: Any) -> cst.Call:
    return call(cst.Attribute(paren(obj), cst.Name(name)), *args, **kwargs)


_BINOPS = {
    "+": cst.Add, "-": cst.Subtract, "*": cst.Multiply, "/": cst.Divide, "**": cst.Power,
    "%": cst.Modulo, "@": cst.MatrixMultiply, "&": cst.BitAnd, "|": cst.BitOr,
    "^": cst.BitXor, "//": cst.FloorDivide, "<<": cst.LeftShift, ">>": cst.RightShift,
}
_COMPARES = {
    "<": cst.LessThan, "<=": cst.LessThanEqual, ">": cst.GreaterThan,
    ">=": cst.GreaterThanEqual, "==": cst.Equal, "!=": cst.NotEqual,
}


def binop(left: Any, op: str, right: Any) -> cst.BaseExpression:
    """``left op right`` with both operands parenthesised unless atomic."""
    lhs, rhs = paren(lit(left)), paren(lit(right))
    if op in _COMPARES:
        return cst.Comparison(lhs, [cst.ComparisonTarget(_COMPARES[op](), rhs)])
    return cst.BinaryOperation(lhs, _BINOPS[op](), rhs)


def unary(op: str, operand: Any) -> cst.BaseExpression:
    ops = {"-": cst.Minus, "~": cst.BitInvert}
    return cst.UnaryOperation(ops[op](), paren(lit(operand)))


def slice_(start: int | None, stop: int | None, step: int | None) -> cst.Slice:
    def part(v: int | None) -> cst.BaseExpression | None:
        return None if v is None else lit(v)
    return cst.Slice(part(start), part(stop), part(step))


def subscript(value: cst.BaseExpression, index: Sequence[Any]) -> cst.Subscript:
    """``value[i, j:k, idx]``: ints, slices (``cst.Slice``) or expressions."""
    elems = [cst.SubscriptElement(i if isinstance(i, cst.Slice) else cst.Index(lit(i)))
             for i in index]
    return cst.Subscript(paren(value), elems)


def targets(names: Sequence[str]) -> cst.BaseAssignTargetExpression:
    if len(names) == 1:
        return cst.Name(names[0])
    return cst.Tuple([cst.Element(cst.Name(n)) for n in names], lpar=[], rpar=[])


def assign(names: Sequence[str], value: cst.BaseExpression) -> cst.SimpleStatementLine:
    return cst.SimpleStatementLine([cst.Assign([cst.AssignTarget(targets(names))], value)])


def return_(values: Sequence[cst.BaseExpression]) -> cst.SimpleStatementLine:
    value = values[0] if len(values) == 1 else cst.Tuple(
        [cst.Element(v) for v in values], lpar=[], rpar=[])
    return cst.SimpleStatementLine([cst.Return(value)])


def funcdef(name: str, params: Sequence[str],
            body: Sequence[cst.BaseStatement]) -> cst.FunctionDef:
    return cst.FunctionDef(
        cst.Name(name),
        cst.Parameters([cst.Param(cst.Name(p)) for p in params]),
        cst.IndentedBlock(list(body)),
    )


def parse_python(source: str) -> ast.Module:
    """``ast.parse(source)``, tried again where the parser raises a spurious ``SystemError``
    ("AST constructor recursion depth mismatch": CPython < 3.11.8 and 3.12.1, gh-106905,
    when another thread parses at the same moment, as Hypothesis' minimiser thread does)."""
    for attempt in range(3):
        try:
            return ast.parse(source)
        except SystemError:
            if attempt == 2:
                raise
    raise AssertionError("unreachable")  # pragma: no cover


METHODS = frozenset({"sum", "mean", "max", "min", "prod", "std", "var", "argmax", "argmin",
                     "cumsum", "cumprod", "any", "all", "reshape", "squeeze", "swapaxes",
                     "ravel", "round", "conj", "transpose", "dot", "take", "repeat",
                     "argsort"})
"""``jnp.<name>(x, ...)`` that a JAX array offers as ``x.<name>(...)``, lowering the same."""
