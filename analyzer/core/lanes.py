"""Eight float64 lanes compared at once: the inner count of analyzer.core.knn.

numba's own loops over a few array elements are unrolled to scalar compares (a signed
index may wrap around); these intrinsics emit one LLVM vector load, subtract and compare
and a popcount. LLVM lowers them to one AVX-512 instruction each, or to two AVX2 / four
SSE2 halves on older CPUs: the same result everywhere.

Callers guarantee ``values[first : first + 8]`` is inside the array (no bounds check).
"""

from __future__ import annotations

from llvmlite import ir
from numba import types
from numba.extending import intrinsic

LANES = 8


def _splat(builder, value):
    """value in all LANES lanes of an LLVM vector."""
    vector = ir.VectorType(value.type, LANES)
    first = builder.insert_element(
        ir.Constant(vector, ir.Undefined), value, ir.Constant(ir.IntType(32), 0)
    )
    return builder.shuffle_vector(
        first,
        ir.Constant(vector, ir.Undefined),
        ir.Constant(ir.VectorType(ir.IntType(32), LANES), [0] * LANES),
    )


def _lane_count(right_of_x: bool):
    """An intrinsic (values, first, x, d) -> int64: how many of values[first : first + 8]
    lie within distance d of x on one side: values[j] - x < d (right_of_x) or x - values[j]
    < d (float64 differences, as written; a NaN compares false)."""

    @intrinsic
    def count(typingctx, values, first, x, d):
        if not (isinstance(values, types.Array) and values.dtype == types.float64):
            return None
        signature = types.int64(values, first, types.float64, types.float64)

        def codegen(context, builder, sig, args):
            array_value, first_value, x_value, d_value = args
            array = context.make_array(sig.args[0])(context, builder, array_value)
            pointer = builder.gep(array.data, [first_value])
            vector_type = ir.VectorType(ir.DoubleType(), LANES)
            lanes = builder.load(builder.bitcast(pointer, vector_type.as_pointer()), align=8)
            xs = _splat(builder, context.cast(builder, x_value, sig.args[2], types.float64))
            ds = _splat(builder, context.cast(builder, d_value, sig.args[3], types.float64))
            gap = builder.fsub(lanes, xs) if right_of_x else builder.fsub(xs, lanes)
            inside = builder.bitcast(builder.fcmp_ordered("<", gap, ds), ir.IntType(LANES))
            return builder.zext(builder.ctpop(inside), ir.IntType(64))

        return signature, codegen

    return count


count_right_within = _lane_count(right_of_x=True)
"""count_right_within(values, first, x, d): #j in [first, first + 8) with values[j] - x < d."""

count_left_within = _lane_count(right_of_x=False)
"""count_left_within(values, first, x, d): #j in [first, first + 8) with x - values[j] < d."""
