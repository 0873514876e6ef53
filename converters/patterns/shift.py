"""Layers on int8 values with a shift-family kernel -> TFQP_SHIFT_CONV2D /
TFQP_SHIFT_DEPTHWISE_CONV2D / TFQP_SHIFT_FULLY_CONNECTED.

The op reads the int8 tensor the stock op reads (scale s_in, zero point zp; on
binarized inputs the stock +-1 tensor, +-127 at scale 1/127) and the
plan's codes through its code table (``plans.ShiftCodes``): per class c the exact
accumulator A_c = sum (q - zp) * w_c[k]. Keras's layer output is
sum_c A_c * s_in * scales[c] (+ bias). The output is

- int8 values in the stock op's output tensor (its calibrated quantization): the
  layer, the BatchNormalization / bias folded, the stock op's fused activation as
  the clamp, in one transform row (d, B, M0, M1, s) per channel
  (``thresholds.shift_int8_transform``), or the stock op's own bias and multipliers
  where its filter holds the op's weights exactly and they agree with those
  (``stock_identity``: the bytes of the stock op);
- or packed signs or k-bit codes (one class only) against thresholds found on
  Keras's own chain, with the chain's max-pools and flatten, as every accumulator
  op (``outputs.emit``).
"""

import numpy as np

from tfq_plus.converters import code_lists, packing
from tfq_plus.converters import plans as P
from tfq_plus.converters import shift_codes
from tfq_plus.converters import stock_identity
from tfq_plus.converters import thresholds
from tfq_plus.converters.ops import shift as shift_ops
from tfq_plus.converters.patterns.context import Context
from tfq_plus.converters.patterns.int8 import accumulator_range, stock_int8_input
from tfq_plus.converters.patterns.outputs import Accumulator, emit, int8_target

OPS = {P.CONV2D: shift_ops.SHIFT_CONV2D, P.DEPTHWISE: shift_ops.SHIFT_DEPTHWISE_CONV2D,
       P.DENSE: shift_ops.SHIFT_FULLY_CONNECTED}


def options(plan: P.LayerPlan, channels_in: int) -> dict:
    """The op's options but the int8 output's clamp."""
    codes = plan.kernel.shift
    if plan.op == P.DENSE:
        return dict(channels_in=channels_in, terms=codes.terms)
    geometry = plan.geometry
    window = dict(
        filter_height=geometry.filter_height, filter_width=geometry.filter_width,
        stride_height=geometry.stride_height, stride_width=geometry.stride_width,
        dilation_height_factor=geometry.dilation_height, dilation_width_factor=geometry.dilation_width,
        padding=packing.PADDING_SAME if geometry.padding == "same" else packing.PADDING_VALID,
        terms=codes.terms,
    )
    if plan.op == P.DEPTHWISE:
        window["depth_multiplier"] = geometry.depth_multiplier
    return window


def apply(ctx: Context, plan: P.LayerPlan) -> None:
    g = ctx.graph
    anchor = ctx.anchor(plan)
    input_tensor, input_scale, zero_point = stock_int8_input(ctx, plan, anchor)
    if plan.input == P.SIGNS:
        # the stock +-1 tensor of the binarization: written from exact packed signs
        # where an earlier TFQP op computes them (``signs.unpack_for_builtins``)
        ctx.int8_signs_read.add(input_tensor)
    codes = plan.kernel.shift
    spec = OPS[plan.op]
    channels_in = int(g.shape(input_tensor)[-1])
    if plan.op == P.DENSE:
        channels_in = codes.taps
        if int(np.prod(g.shape(input_tensor))) % channels_in:
            raise ValueError(f"layer {plan.name!r}: the stock FULLY_CONNECTED input does not hold "
                             f"whole rows of {channels_in} features")
    constants = [
        ctx.constant(f"tfqp/{plan.name}/weights", packing.pack_codes(codes.codes, codes.bits)),
        ctx.constant(f"tfqp/{plan.name}/code_table", codes.table.astype(np.int16)),
    ]
    weights = shift_codes.decode(codes.codes, codes.table, codes.terms)  # [C, Cout, K]
    unit = np.float64(np.float32(input_scale)) * codes.scales  # [C, Cout]
    values = options(plan, channels_in)
    trailing = []
    if plan.op == P.DENSE:
        lists = code_lists.lists_for(ctx.code_lists, codes.codes, codes.table, codes.bits,
                                     codes.terms, int(np.prod(g.shape(input_tensor))) // channels_in)
        if lists is not None:
            trailing = [ctx.constant(f"tfqp/{plan.name}/code_lists", lists)]
    if plan.output in (P.PACKED, P.CODES):
        low, high = accumulator_range(weights[0], zero_point)
        emit(ctx, plan, anchor, spec, input_tensor, constants, values, Accumulator(unit[0], low, high),
             trailing)
        return
    target = int8_target(ctx, plan, anchor)
    try:
        rows = thresholds.shift_int8_transform(
            unit * target.slope[None, :], target.offset, np.abs(weights).sum(axis=-1), target.scale)
    except ValueError as error:
        raise ValueError(f"layer {plan.name!r}: no int8 output transform: {error}") from None
    stock = stock_identity.stock_rows(g.model, g.graph, g.ops[anchor], plan, weights[0])
    if stock is not None and stock_identity.agrees(stock, rows):
        rows = stock
    transform = ctx.constant(f"tfqp/{plan.name}/transform", rows)
    output = int(g.ops[anchor].outputs[0])
    op = g.custom_op(spec.name, [input_tensor] + constants + [transform] + trailing, [output],
                     spec.encode(**values, activation_min=target.act_min, activation_max=target.act_max))
    g.replace(anchor, [op])
    ctx.replaced[plan.name] = [spec.name]
