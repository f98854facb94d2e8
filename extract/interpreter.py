"""Run a lowered StableHLO module with the StableHLO reference interpreter jaxlib ships.

The interpreter is a second, independent implementation of the StableHLO spec, so comparing
its values with XLA's judges XLA's compilation itself. What it cannot do aborts the whole
process (``LLVM ERROR``, SIGABRT) rather than raising, so :func:`unsupported` checks the
module first: ``custom_call`` (LAPACK kernels, for instance) is never interpreted, nor is
``fft`` on jaxlib < 0.11 (measured: it aborts there). The caller records ``skipped`` for
such a module. :func:`backend` is the interpreter behind ``extract.backends``' interface,
the one the ``interpreter`` oracle runs. Modules are parsed afresh from text, because the
pass that legalises CHLO rewrites a module in place. An oracle's reproducer carries this
module's source (``fuzz.triage.oracle_repro``), so at module level it imports only the standard
library and numpy; and so its rewrites of a module (what the spec leaves open, what XLA:CPU
flushes) live here, past 400 lines, rather than in a module a reproducer would also copy.

The interpreter's ``stablehlo.scatter`` writes into its operand's buffer (found by this
oracle; docs/findings.md): every other use of the operand - a returned argument, a value
scattered twice - then sees the scattered values. :func:`run_module` gives each scatter a
fresh copy of its operands (an identity ``stablehlo.reshape``, which the interpreter
evaluates into a new tensor), so the reference computes what the spec says.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

__all__ = ["argument_count", "backend", "run_module", "unsupported"]

_OP = re.compile(r"\b((?:stablehlo|chlo|mhlo)\.[a-z_]+)\b")
_ALWAYS_UNSUPPORTED = ("stablehlo.custom_call",)
# Ops whose results the spec leaves to the implementation: the interpreter's bits need not be
# XLA's, so a module with one is not compared (rbg keys lower to rng_bit_generator).
_IMPLEMENTATION_DEFINED = ("stablehlo.rng_bit_generator", "stablehlo.rng")
# A convolution's dimension numbers; the interpreter of jaxlib 0.10 aborts the process on any
# but batch and feature first (Findings 25: jax.vjp's kernel cotangent is [f, b, 0, 1]...)
_CONV_DIMS = re.compile(r"dim_numbers = (\[[^\]]*\]x\[[^\]]*\]->\[[^\]]*\])")
_CANONICAL = re.compile(r"\[b, f(?:, \d+)*\]x\[o, i(?:, \d+)*\]->\[b, f(?:, \d+)*\]$")
# Ops counted in a module: the interpreter takes about 10 us per element of each op's result
# (4x4 tanh(x @ y): 0.2 ms; 64x64: 345 ms, cubic in n through the dot's inner loop), so a
# module is interpreted only below this many result elements summed over its ops.
# A reduce_window visits its window for every result element: its count is multiplied by the
# window's size (jnp.cumsum over n elements lowers to one with a window of n, n^2 visits; a
# 5-minute run met a program of such scans over 1,350 elements that took the interpreter
# 89 s, past the worker's timeout).
MAX_RESULT_ELEMENTS = 200_000
_TENSOR = re.compile(r"tensor<((?:\d+x)*)[a-z]\w*>")
_WINDOW = re.compile(r"window_dimensions = array<i64: ([\d, ]+)>")


def _jaxlib_version() -> tuple[int, ...]:
    import jaxlib

    return tuple(int(p) for p in re.findall(r"\d+", jaxlib.__version__)[:2])


def unsupported(text: str) -> str | None:
    """Why the interpreter must not run the module ``text`` (it would abort, or its results
    need not match XLA's), or None."""
    ops = set(_OP.findall(text))
    denied = [op for op in _ALWAYS_UNSUPPORTED if op in ops]
    if "stablehlo.fft" in ops and _jaxlib_version() < (0, 11):
        denied.append("stablehlo.fft")
    if denied:
        return f"unsupported op {', '.join(sorted(denied))}"
    if _jaxlib_version() < (0, 11) and any(not _CANONICAL.match(m.group(1))
                                           for m in _CONV_DIMS.finditer(text)):
        return ("a convolution with permuted dimension numbers (the interpreter aborts on "
                "them on jaxlib < 0.11: Findings 25)")
    partitions = re.search(r"mhlo\.num_partitions = (\d+)", text)
    if partitions and int(partitions.group(1)) > 1:
        return f"a program over {partitions.group(1)} devices (the interpreter runs one)"
    free = [op for op in _IMPLEMENTATION_DEFINED if op in ops]
    if free:
        return f"implementation-defined results ({', '.join(free)})"
    work, regions = 0, []  # per open region: the factor its op's result counts with
    for line in text.splitlines():
        closes = line.lstrip().startswith("})")  # a region op's types follow its region
        factor = regions.pop() if closes and regions else 1
        if line.rstrip().endswith("({"):
            window = _WINDOW.search(line)
            regions.append(int(np.prod([int(d) for d in window.group(1).split(",")],
                                       dtype=np.int64)) if window else 1)
        if not ("=" in line or closes) or ("->" not in line and ":" not in line):
            continue
        for dims in _TENSOR.findall(line.rsplit(":", 1)[-1]):
            work += factor * int(np.prod([int(d) for d in dims.split("x") if d], dtype=np.int64))
    if work > MAX_RESULT_ELEMENTS:
        return f"too large to interpret ({work} result elements > {MAX_RESULT_ELEMENTS})"
    return None


_MAIN = re.compile(r"func\.func public @main\(([^)]*)\)")


def argument_count(text: str) -> int:
    """Number of arguments of the module's ``main`` (jit drops unused ones by default)."""
    m = _MAIN.search(text)
    return 0 if m is None or not m.group(1).strip() else m.group(1).count("%arg")


def _attribute(ir, array: np.ndarray):
    """A DenseElementsAttr holding ``array`` (bool, bfloat16 and float16 need help)."""
    if array.dtype == np.bool_:
        return ir.DenseElementsAttr.get(array, type=ir.IntegerType.get_signless(1))
    if array.dtype.name == "bfloat16":
        return ir.DenseElementsAttr.get(array.view(np.uint16), type=ir.BF16Type.get(),
                                        shape=list(array.shape))
    signless = not np.issubdtype(array.dtype, np.unsignedinteger)
    return ir.DenseElementsAttr.get(np.array(array, order="C"), signless=signless)


def run_module(text: str, inputs: Sequence[np.ndarray], *,
               sums_without_init: bool = False,
               flush_bitcasts: bool = False) -> list[np.ndarray]:
    """Interpret the StableHLO module ``text`` on ``inputs``; its outputs as NumPy arrays.

    Raises ``ValueError`` when the interpreter rejects the module or its arguments. Check
    :func:`unsupported` first: an unsupported op aborts the process.

    The spec leaves to the implementation how many of a ``reduce``'s init values enter its
    schedule. The interpreter adds the init once, so a sum of ``-0.0`` with init ``+0.0``
    is ``+0.0``; XLA adds none where it simplifies a reduce away (over no dimension, or one
    of size 1) and gets ``-0.0``. Both are correct. With ``sums_without_init``, a non-empty
    sum's ``+0.0`` init becomes ``-0.0``, the identity of addition, which computes the
    other legal schedule: the sum without its init.

    XLA:CPU computes with denormals flushed to zero; the interpreter does not. With
    ``flush_bitcasts``, every float that ``bitcast_convert`` makes of an integer's bits is a
    zero of its sign where it would be subnormal, as XLA:CPU reads it (the recipe's small
    integers are subnormal floats: ``bitcast(1)`` is ``1.4e-45`` in float32).
    """
    from jax._src.interpreters import mlir as jax_mlir
    from jaxlib.mlir import ir
    from jaxlib.mlir.dialects import stablehlo
    from jaxlib.mlir.passmanager import PassManager

    stablehlo.register_stablehlo_passes()
    with jax_mlir.make_ir_context(), ir.Location.unknown():
        module = ir.Module.parse(text)
        PassManager.parse("builtin.module(func.func(chlo-legalize-to-stablehlo))").run(
            module.operation)
        _copy_scatter_operands(ir, stablehlo, module.operation)
        _total_order_compares(ir, stablehlo, module.operation)
        _defined_integer_division(ir, stablehlo, module.operation)
        if sums_without_init:
            _negative_zero_sum_inits(ir, stablehlo, module.operation)
        if flush_bitcasts:
            _flush_bitcast_subnormals(ir, stablehlo, module.operation)
        complex_results = _real_interface(ir, stablehlo, module)
        parts = [p for x in map(np.asarray, inputs)
                 for p in ((x.real, x.imag) if x.dtype.kind == "c" else (x,))]
        results = iter(_result_array(ir, r) for r in
                       stablehlo.eval_module(module, [_attribute(ir, p) for p in parts]))
        return [next(results) + 1j * next(results) if c else next(results)
                for c in complex_results]


def backend(stablehlo: str, inputs: Sequence[np.ndarray], *,
            sums_without_init: bool = False, flush_bitcasts: bool = False) -> list[np.ndarray]:
    """The interpreter as a backend (``extract.backends``): raises ``Unsupported`` for a
    module it must not run, else interprets it (``sums_without_init``, ``flush_bitcasts``:
    see :func:`run_module`)."""
    from extract.backends import Unsupported  # here: a reproducer copies the module

    reason = unsupported(stablehlo)
    if reason:
        raise Unsupported(reason)
    try:
        return run_module(stablehlo, [_flush_subnormals(x) for x in inputs],
                          sums_without_init=sums_without_init, flush_bitcasts=flush_bitcasts)
    except TypeError as e:  # the bindings cannot read a value of this type back (issue 28's
        if "Unsupported floating-point type" not in str(e):  # interpreter:TypeError bucket)
            raise
        raise Unsupported(f"a value type the interpreter's bindings cannot read: {e}") from None


def _real_interface(ir, stablehlo, module) -> list[bool]:
    """Give the module a ``main`` of real arrays only, which the bindings can pass and read
    (a complex array cannot be encoded): the old one becomes private, and the new one takes
    each complex argument as its real and imaginary parts, calls it, and returns each
    complex result as its two parts. Whether each of the old results is complex."""
    from jaxlib.mlir.dialects import func

    main = next(op for op in module.body.operations if op.operation.name == "func.func"
                and ir.StringAttr(op.attributes["sym_name"]).value == "main")
    kind = ir.FunctionType(ir.TypeAttr(main.attributes["function_type"]).value)

    def parts(types) -> list:
        return [p for t in types for p in ((_real_part(ir, t),) * 2 if _complex(ir, t) else (t,))]

    complex_results = [_complex(ir, t) for t in kind.results]
    if not any(complex_results) and not any(_complex(ir, t) for t in kind.inputs):
        return complex_results
    main.attributes["sym_name"] = ir.StringAttr.get("jaxsmith_complex_main")
    main.attributes["sym_visibility"] = ir.StringAttr.get("private")
    with ir.InsertionPoint(module.body):
        wrapper = func.FuncOp("main", ir.FunctionType.get(parts(kind.inputs),
                                                          parts(kind.results)))
    with ir.InsertionPoint(wrapper.add_entry_block()):
        given, args = iter(wrapper.arguments), []
        for t in kind.inputs:
            args.append(stablehlo.ComplexOp(next(given), next(given)).result
                        if _complex(ir, t) else next(given))
        call = func.CallOp(list(kind.results), ir.FlatSymbolRefAttr.get("jaxsmith_complex_main"),
                           args)
        outs = [p for r, c in zip(call.results, complex_results, strict=True)
                for p in ((stablehlo.RealOp(r).result, stablehlo.ImagOp(r).result) if c
                          else (r,))]
        func.ReturnOp(outs)
    return complex_results


def _complex(ir, kind) -> bool:
    return isinstance(ir.RankedTensorType(kind).element_type, ir.ComplexType)


def _real_part(ir, kind):
    """The real tensor type of a complex one's parts, same shape."""
    tensor = ir.RankedTensorType(kind)
    return ir.RankedTensorType.get(tensor.shape, ir.ComplexType(tensor.element_type).element_type)


def _flush_subnormals(x: np.ndarray) -> np.ndarray:
    """``x`` with its floats that are subnormal in the type XLA:CPU computes them in (float32
    for narrower ones: a float16 subnormal is a float32 normal, a bfloat16 one is not) as
    zeros of their sign: XLA:CPU computes with denormals-are-zero, so ``sign``, ``log`` and
    ``sqrt`` of ``-1e-45`` are what they are of ``-0.0`` there (0, ``-inf``, ``-0.0``),
    where the interpreter would see the subnormal."""
    x = np.asarray(x)
    if x.dtype.kind == "c":
        out = x.copy()
        out.real, out.imag = _flush_subnormals(x.real), _flush_subnormals(x.imag)
        return out
    if x.dtype.kind != "f" and x.dtype != np.dtype("bfloat16"):
        return x
    import ml_dtypes

    tiny = float(ml_dtypes.finfo(np.float64 if x.dtype == np.float64
                                 else np.float32).smallest_normal)
    wide = x.astype(np.float64)
    return np.where(np.abs(wide) < tiny, np.copysign(0.0, wide), wide).astype(x.dtype)


def _ops_named(root, name: str) -> list:
    """Every operation called ``name`` under ``root``, at any depth."""
    found = []

    def walk(op) -> None:
        for region in op.regions:
            for block in region.blocks:
                for child in block.operations:
                    if child.operation.name == name:
                        found.append(child.operation)
                    walk(child.operation)

    walk(root)
    return found


def _copy_scatter_operands(ir, stablehlo, root) -> None:
    """Feed every ``stablehlo.scatter`` copies of its operands (see the module docstring)."""
    for op in _ops_named(root, "stablehlo.scatter"):
        with ir.InsertionPoint(op):
            for i in range((len(op.operands) - 1) // 2):  # inputs..., indices, updates...
                op.operands[i] = stablehlo.ReshapeOp(op.operands[i].type, op.operands[i]).result


def _splat(ir, stablehlo, kind, value: int):
    """A constant tensor of integer type ``kind`` holding ``value`` everywhere."""
    element = ir.IntegerType(kind.element_type)
    return stablehlo.ConstantOp(ir.DenseElementsAttr.get_splat(
        kind, ir.IntegerAttr.get(element, value))).result


def _total_order_compares(ir, stablehlo, root) -> None:
    """Compare floats under ``TOTALORDER`` as the spec says (IEEE 754 totalOrder: -NaN < -inf
    < ... < -0 < +0 < ... < +inf < +NaN): as signed integers of their bits, each negative
    one's magnitude bits flipped. The interpreter compares them as ``FLOAT`` does, so
    ``1 < NaN`` and ``-0 < +0`` come out false and ``jnp.sort`` puts NaN anywhere (found by
    this oracle; docs/findings.md, Finding 22)."""
    for op in _ops_named(root, "stablehlo.compare"):
        if "compare_type" not in op.attributes or \
                "TOTALORDER" not in str(op.attributes["compare_type"]):
            continue
        lhs_type = ir.RankedTensorType(op.operands[0].type)
        try:
            width = ir.FloatType(lhs_type.element_type).width
        except ValueError:  # an integer's total order is its own
            continue
        as_int = ir.RankedTensorType.get(lhs_type.shape, ir.IntegerType.get_signless(width))
        with ir.InsertionPoint(op):
            keys = []
            for x in op.operands:
                bits = stablehlo.BitcastConvertOp(as_int, x).result
                sign = stablehlo.ShiftRightArithmeticOp(
                    bits, _splat(ir, stablehlo, as_int, width - 1)).result
                keys.append(stablehlo.XorOp(bits, stablehlo.ShiftRightLogicalOp(
                    sign, _splat(ir, stablehlo, as_int, 1)).result).result)
            signed = stablehlo.CompareOp(keys[0], keys[1], op.attributes["comparison_direction"],
                                         compare_type=stablehlo.ComparisonTypeAttr.get("SIGNED"))
        op.result.replace_all_uses_with(signed.result)
        op.operation.erase()


def _defined_integer_division(ir, stablehlo, root) -> None:
    """Give integer ``divide`` and ``remainder`` XLA's results where the spec leaves them to
    the implementation (by zero, and the most negative value by -1): ``x / 0 = -1``,
    ``x % 0 = x``, ``MIN / -1 = MIN``, ``MIN % -1 = 0``. The interpreter divides in C++
    there and the process dies of SIGFPE (docs/findings.md, Finding 23)."""
    eq = stablehlo.ComparisonDirectionAttr.get("EQ")
    for name, make, by_zero, overflow in (
            ("stablehlo.divide", stablehlo.DivOp, -1, None),
            ("stablehlo.remainder", stablehlo.RemOp, None, 0)):
        for op in _ops_named(root, name):
            kind = ir.RankedTensorType(op.result.type)
            try:
                element = ir.IntegerType(kind.element_type)
            except ValueError:  # a float's division is defined everywhere
                continue
            lhs, rhs = op.operands
            with ir.InsertionPoint(op):
                def const(value: int, kind=kind):
                    return _splat(ir, stablehlo, kind, value)

                zero = stablehlo.CompareOp(rhs, const(0), eq).result
                bad = over = None
                if not element.is_unsigned:
                    lowest = const(-(1 << (element.width - 1)))
                    over = stablehlo.AndOp(stablehlo.CompareOp(lhs, lowest, eq).result,
                                           stablehlo.CompareOp(rhs, const(-1), eq).result).result
                    bad = stablehlo.OrOp(zero, over).result
                out = make(lhs, stablehlo.SelectOp(bad or zero, const(1), rhs).result).result
                if over is not None:
                    out = stablehlo.SelectOp(over, lhs if overflow is None else const(overflow),
                                             out).result
                out = stablehlo.SelectOp(zero, lhs if by_zero is None else const(by_zero),
                                         out).result
            op.result.replace_all_uses_with(out)
            op.operation.erase()


_EXPONENT_BITS = {"f16": 0x7C00, "bf16": 0x7F80, "f32": 0x7F800000,
                  "f64": 0x7FF0000000000000}


def _signed(value: int, width: int) -> int:
    """``value``'s bits as a signed ``width``-bit integer."""
    return value - (1 << width) if value >= 1 << (width - 1) else value


def _flush_bitcast_subnormals(ir, stablehlo, root) -> None:
    """Feed every ``bitcast_convert`` of integers to floats its operand with the bits of a
    subnormal replaced by those of a zero of its sign (see :func:`run_module`)."""
    eq = stablehlo.ComparisonDirectionAttr.get("EQ")
    for op in _ops_named(root, "stablehlo.bitcast_convert"):
        out = ir.RankedTensorType(op.result.type)
        source = ir.RankedTensorType(op.operands[0].type)
        exponent = _EXPONENT_BITS.get(str(out.element_type))
        if exponent is None or source.shape != out.shape:
            continue
        try:
            width = ir.IntegerType(source.element_type).width
        except ValueError:  # a float's bits (float16 to bfloat16) were a float's already
            continue
        with ir.InsertionPoint(op):
            bits = op.operands[0]
            exponent_bits = stablehlo.AndOp(bits, _splat(ir, stablehlo, source, exponent)).result
            subnormal = stablehlo.CompareOp(exponent_bits, _splat(ir, stablehlo, source, 0),
                                            eq).result
            sign = stablehlo.AndOp(bits, _splat(ir, stablehlo, source,
                                                _signed(1 << (width - 1), width))).result
            op.operands[0] = stablehlo.SelectOp(subnormal, sign, bits).result


def _negative_zero_sum_inits(ir, stablehlo, root) -> None:
    """Give every non-empty ``stablehlo.reduce`` whose body adds an init of ``-0.0`` where
    it has a constant ``+0.0`` (see :func:`run_module`)."""
    for op in _ops_named(root, "stablehlo.reduce"):
        body = [o.operation.name for o in op.regions[0].blocks[0].operations]
        shape = ir.RankedTensorType(op.operands[0].type).shape
        if body != ["stablehlo.add", "stablehlo.return"] or \
                not all(shape[d] > 0 for d in op.attributes["dimensions"]):
            continue
        half = len(op.operands) // 2  # inputs..., inits...
        for i in range(half, len(op.operands)):
            init = op.operands[i].owner
            if getattr(init, "name", None) != "stablehlo.constant":
                continue
            value = np.array(init.attributes["value"])  # bf16 has no buffer: left alone
            if value.dtype.kind == "f" and value == 0 and not np.signbit(value):
                with ir.InsertionPoint(op):
                    op.operands[i] = stablehlo.ConstantOp(
                        _attribute(ir, np.array(-0.0, value.dtype))).result


_NUMBER = re.compile(r"0x[0-9A-Fa-f]+|[-+]?(?:inf|nan|\d+(?:\.\d*)?(?:e[-+]?\d+)?)")


def _result_array(ir, attr) -> np.ndarray:
    """NumPy value of a result attribute; bfloat16 has no buffer protocol, so it is read from
    the attribute's text (decimal values, or 0x-bit patterns for NaN and inf)."""
    shaped = ir.ShapedType(attr.type)
    if str(shaped.element_type) != "bf16":
        return np.array(attr)
    import ml_dtypes

    body = str(attr).split(":")[0]
    if '"0x' in body:  # a hex blob: little-endian bf16 bit patterns
        blob = bytes.fromhex(body.split('"0x', 1)[1].split('"', 1)[0])
        bits = np.frombuffer(blob, dtype="<u2")
    else:
        tokens = _NUMBER.findall(body.split("<", 1)[1])
        bits = np.array([int(t, 16) if t.startswith("0x") else
                         np.array(float(t), ml_dtypes.bfloat16).view(np.uint16)
                         for t in tokens], dtype=np.uint16)
    shape = tuple(shaped.shape)
    values = bits.view(ml_dtypes.bfloat16)
    if values.size == int(np.prod(shape, dtype=np.int64)):
        return values.reshape(shape)
    return np.broadcast_to(values.reshape(()), shape).copy()  # a splat: one value for all
