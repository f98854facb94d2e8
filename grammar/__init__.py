"""A typed, shape-aware grammar of JAX programs, drawn through Hypothesis strategies."""

from grammar.categories import CATEGORIES
from grammar.generate import STATEMENT_SPAN
from grammar.ops import OPS
from grammar.program import Program
from grammar.strategies import programs
from grammar.styles import STYLES
from grammar.types import ALL_DTYPES, TensorType

__all__ = ["ALL_DTYPES", "CATEGORIES", "OPS", "STATEMENT_SPAN", "STYLES", "Program", "TensorType",
           "programs"]
