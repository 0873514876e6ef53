"""Layers on int8 values whose output is binarized (or joins a residual stream)
-> TFQP_CONV2D_INT8 / TFQP_FULLY_CONNECTED_INT8.

A BNN's first layer, and any convolution or dense layer on real values before a
sign: the int8 input tensor the stock op reads, the plan's int8 kernel codes (the
trained +-1 grid of a binary kernel, or the converter's rounding of a float
kernel), the exact accumulator A = sum (q - zp) * w. Keras's layer output is
A * input scale * kernel scale (+ bias); the sign comes from that accumulator
against the threshold found on Keras's own chain, never from a requantized int8
value.
"""

import numpy as np

from tfq_plus.converters import plans as P
from tfq_plus.converters.ops import int8_layers
from tfq_plus.converters.patterns.context import Context
from tfq_plus.converters.patterns.outputs import Accumulator, conv_options, emit, stock_input


def accumulator_range(codes: np.ndarray, zero_point: int):
    """Per output channel, the least and greatest A over int8 inputs."""
    flat = codes.reshape(codes.shape[0], -1).astype(np.int64)
    low_q, high_q = -128 - zero_point, 127 - zero_point
    low = np.minimum(flat * low_q, flat * high_q).sum(axis=1)
    high = np.maximum(flat * low_q, flat * high_q).sum(axis=1)
    return low, high


def stock_int8_input(ctx: Context, plan: P.LayerPlan, anchor: int):
    """(tensor, scale, zero point) of the int8 tensor the anchor op reads."""
    input_tensor = stock_input(ctx, anchor)
    quantization = ctx.graph.per_tensor(input_tensor)
    if quantization is None:
        raise ValueError(
            f"layer {plan.name!r}: its input in the stock model is not a per-tensor int8 "
            "tensor; an int8-input TFQP op needs one"
        )
    return input_tensor, quantization[0], quantization[1]


def apply(ctx: Context, plan: P.LayerPlan) -> None:
    g = ctx.graph
    anchor = ctx.anchor(plan)
    input_tensor, scale, zero_point = stock_int8_input(ctx, plan, anchor)
    codes = plan.kernel.codes
    channels_in = int(codes.shape[-1])
    if plan.op == "dense":
        spec = int8_layers.FULLY_CONNECTED_INT8
        options = dict(channels_in=channels_in)
        if len(g.shape(input_tensor)) != 2:
            raise ValueError(f"layer {plan.name!r}: the stock FULLY_CONNECTED reads a rank-"
                             f"{len(g.shape(input_tensor))} tensor; expected [batch, features]")
    else:
        spec = int8_layers.CONV2D_INT8
        options = conv_options(plan, channels_in)
    weights = ctx.constant(f"tfqp/{plan.name}/weights",
                           int8_layers.pack_weights(codes, wide=plan.kernel.kind == P.ROUNDED_KERNEL))
    low, high = accumulator_range(codes, zero_point)
    unit = np.float64(np.float32(scale)) * plan.kernel.scale
    emit(ctx, plan, anchor, spec, input_tensor, weights, options, Accumulator(unit, low, high))
