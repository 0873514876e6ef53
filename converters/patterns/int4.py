"""4-bit uniform kernels on int8 values with an int8 output -> the stock op with an
INT4 filter (builtin CONV_2D / DEPTHWISE_CONV_2D / FULLY_CONNECTED), so stock
TFLite Micro, CMSIS-NN and TFLite run the layer without a custom op.

The stock op stays where it is, with its input, output tensor and fused
activation; its filter becomes the layer's integer levels (``plans.ShiftCodes``
of the uniform grid, one class) and its bias and filter scales are recomputed
from Keras's layer and the affine chain folded into the stock op
(``outputs.int8_target``: y = slope * s_in * unit * A + offset):

    filter[c] = sign(slope[c]) * level,  filter scale[c] = unit[c] * |slope[c]|,
    bias[c] = round(offset[c] / (s_in * filter scale[c])),

so the op's exact accumulator is the coded op's, and TFLite's requantization of
it (scale s_in * filter scale / s_out) rounds Keras's value once more (the bias
rounded to a unit of the accumulator: within one output step, as the coded ops).

Where the runtimes cannot run a layer so, it stays a coded op (``shift.apply``):
levels outside [-8, 7] after the sign (a level -8 on a channel whose BatchNorm
negates it), a channel with slope 0, a bias beyond int32, a fully-connected layer
whose channels need different scales (TFLite Micro's and CMSIS-NN's int4
FULLY_CONNECTED take one filter scale), a depthwise layer with an odd number of
input channels and a depth multiplier above 1 (CMSIS-NN's s4 depthwise kernel
computes other values there).
"""

from typing import Optional

import numpy as np

from tfq_plus.converters import plans as P
from tfq_plus.converters import shift_codes
from tfq_plus.converters import tflite_schema as schema
from tfq_plus.converters.patterns import shift
from tfq_plus.converters.patterns.context import Context
from tfq_plus.converters.patterns.int8 import stock_int8_input
from tfq_plus.converters.patterns.outputs import int8_target

BIAS_LIMIT = 2**30  # |bias| well inside int32, room for the accumulator
# the filter's per-channel axis in TFLite's layout
QUANTIZED_DIMENSION = {P.CONV2D: 0, P.DEPTHWISE: 3, P.DENSE: 0}


class Int4Filter:
    """What the stock op gets: INT4 filter values in TFLite's layout, filter scales,
    int32 bias and its scales."""

    def __init__(self, values, scales, bias, bias_scales):
        self.values, self.scales, self.bias, self.bias_scales = values, scales, bias, bias_scales


def apply(ctx: Context, plan: P.LayerPlan) -> None:
    g = ctx.graph
    anchor = ctx.anchor(plan)
    built = int4_filter(ctx, plan, anchor)
    if built is None:
        shift.apply(ctx, plan)
        return
    op = g.ops[anchor]
    filter_tensor = g.tensors[int(op.inputs[1])]
    quant = _quantization(built.scales, QUANTIZED_DIMENSION[plan.op])
    new_filter = g.add_tensor(f"tfqp/{plan.name}/weights", schema.shape(filter_tensor), schema.TensorType.INT4,
                              data=schema.pack_int4(built.values), quant=quant)
    bias = g.add_tensor(f"tfqp/{plan.name}/bias", [len(built.bias)], schema.TensorType.INT32,
                        data=built.bias.astype(np.int32), quant=_quantization(built.bias_scales, 0))
    inputs = list(op.inputs)
    while len(inputs) < 3:
        inputs.append(-1)
    inputs[1], inputs[2] = new_filter, bias
    op.inputs = np.asarray(inputs, dtype=np.int32)
    g.replace(anchor, [op])  # the same op, reading the new filter and bias
    ctx.replaced[plan.name] = [schema.op_name(g.model, op)]


def _quantization(scales: np.ndarray, dimension: int):
    quant = schema.fb.QuantizationParametersT()
    quant.scale = np.asarray(scales, np.float32)
    quant.zeroPoint = np.zeros(len(quant.scale), np.int64)
    quant.quantizedDimension = dimension
    return quant


def int4_filter(ctx: Context, plan: P.LayerPlan, anchor: int) -> Optional[Int4Filter]:
    """The stock op's INT4 filter, scales and bias, or None where a runtime cannot
    run the layer as a builtin op (see the module doc)."""
    g = ctx.graph
    input_tensor, input_scale, _ = stock_int8_input(ctx, plan, anchor)
    target = int8_target(ctx, plan, anchor)
    codes = plan.kernel.shift
    # the levels over their common factor (uniform_codes stores them times a
    # power of two for a finer accumulator unit), the unit times it
    common = int(np.gcd.reduce(np.abs(codes.table[0]).astype(np.int64))) or 1
    levels = shift_codes.decode(codes.codes, codes.table, 1)[0] // common  # [Cout, K]
    slope = np.asarray(target.slope, np.float64)
    if np.any(slope == 0):
        return None
    signed = levels * np.where(slope < 0, -1, 1)[:, None]
    low, high = schema.INT4_RANGE
    if signed.min(initial=0) < low or signed.max(initial=0) > high:
        return None
    scales = np.float32(codes.scales[0] * common * np.abs(slope))
    if plan.op == P.DENSE and np.unique(scales).size > 1:
        return None
    if int(np.prod(g.shape(int(g.ops[anchor].inputs[1])))) != signed.size:
        return None  # the stock filter is not the layer's kernel shape (a reshaped dense input)
    channels_in = int(g.shape(input_tensor)[-1])
    if plan.op == P.DEPTHWISE and channels_in % 2 and plan.geometry.depth_multiplier > 1:
        return None
    if not np.all(np.isfinite(scales) & (scales > 0)):
        return None
    bias_scales = np.float32(np.float64(np.float32(input_scale)) * scales.astype(np.float64))
    bias = np.round(np.asarray(target.offset, np.float64) / bias_scales.astype(np.float64))
    if np.any(np.abs(bias) >= BIAS_LIMIT) or not np.all(bias_scales > 0):
        return None
    if plan.op == P.DENSE:  # one filter scale (and so one bias scale)
        scales, bias_scales = scales[:1], bias_scales[:1]
    return Int4Filter(_tflite_layout(signed, plan), scales, bias.astype(np.int64), bias_scales)


def _tflite_layout(rows: np.ndarray, plan: P.LayerPlan) -> np.ndarray:
    """Rows [Cout, K] (TFLite's tap order) as the builtin filter: conv [Cout, KH, KW,
    Cin], depthwise [1, KH, KW, Cout], dense [Cout, Cin]."""
    geometry = plan.geometry
    if plan.op == P.CONV2D:
        return rows.reshape(len(rows), geometry.filter_height, geometry.filter_width, -1)
    if plan.op == P.DEPTHWISE:
        return rows.T.reshape(1, geometry.filter_height, geometry.filter_width, len(rows))
    return rows
