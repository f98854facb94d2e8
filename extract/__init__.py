"""Extraction of every IR level of a JAX program, failure classification, worker pool.

``extract_in_process`` lives in ``extract.core``, which imports JAX; it is loaded on first
use so that ``import extract`` (and the pool's parent process) stays light.
"""

from .clean import canonical_stablehlo, ir_hash
from .failures import KNOWN, Known, classify, signature
from .inputs import RECIPE, make_inputs
from .oracles import ORACLES
from .pool import ExtractorPool, extract
from .values import compare_arrays, compare_summaries, summarize, tolerance
from .verdicts import BENIGN

__all__ = [
    "BENIGN",
    "KNOWN",
    "ORACLES",
    "RECIPE",
    "ExtractorPool",
    "Known",
    "canonical_stablehlo",
    "classify",
    "compare_arrays",
    "compare_summaries",
    "extract",
    "extract_in_process",
    "ir_hash",
    "make_inputs",
    "signature",
    "summarize",
    "tolerance",
]


def __getattr__(name: str):
    if name == "extract_in_process":
        from .core import extract_in_process

        return extract_in_process
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
