"""Shift ops that compute the stock int8 reference's bytes.

Where the stock reference holds a layer's weights exactly, the shift op takes the
stock op's integer arithmetic too and its int8 output is byte-identical with the
reference op's on the same input (docs/design.md, invariant 2). That is the case for a
one-class binary or ternary kernel in a convolution (per-channel int8 filters): its
levels are +-127 (``shift_codes.sign_levels``) and the stock filter, the kernel
times the folded BatchNorm rounded per channel to 127, is d * the codes' weights
with d = +-1 per channel. The op then takes the stock bias (int32, in accumulator
units) and TFLite's per-channel multiplier (``PopulateConvolutionQuantizationParams``:
input scale x filter scale / output scale in double, ``QuantizeMultiplier``).

Only where the stock arithmetic is Keras's too: its bias within one accumulator
unit of the one the converter derives from the Keras layers, its multipliers
within rounding (``agrees``). (The stock converter's BatchNorm fold into a
depthwise convolution on the +-1 output of a binarization was seen to double the
bias; such a layer keeps the converter's own transform.)

``verify`` finds the stock op of such a deploy op, runs it (TFLite Micro, the op
alone) on the deploy op's own input and compares the bytes.
"""

from typing import Optional

import numpy as np

from tfq_plus.converters import plans as P
from tfq_plus.converters import tflite_schema as schema
from tfq_plus.converters.tflite_arithmetic import quantize_multiplier


def filter_rows(filter_values: np.ndarray, op: str) -> np.ndarray:
    """A stock filter (conv [Cout, KH, KW, Cin], depthwise [1, KH, KW, Cout]) as rows
    [Cout, K] in the shift ops' tap order."""
    if op == P.DEPTHWISE:
        return np.moveaxis(filter_values[0], -1, 0).reshape(filter_values.shape[-1], -1)
    return filter_values.reshape(filter_values.shape[0], -1)


def directions(stock: np.ndarray, weights: np.ndarray) -> Optional[np.ndarray]:
    """d [Cout] with stock rows == d * weights exactly, or None where the stock
    filter does not hold the weights."""
    stock = stock.astype(np.int64)
    positive = np.all(stock == weights, axis=1)
    negative = np.all(stock == -weights, axis=1)
    if not np.all(positive | negative):
        return None
    return np.where(positive, 1, -1)


def stock_rows(model, graph, op, plan: P.LayerPlan, weights: np.ndarray) -> Optional[np.ndarray]:
    """Transform rows (d, B, M0, 0, s) that reproduce the stock op ``op`` (a CONV_2D
    or DEPTHWISE_CONV_2D with per-channel int8 filters) from the shift op's one-class
    weights [Cout, K], or None where the stock filter does not hold them exactly."""
    if plan.op == P.DENSE or plan.kernel.shift.classes != 1:
        return None
    tensors = graph.tensors
    inputs = [int(t) for t in op.inputs]
    filter_tensor = tensors[inputs[1]]
    stock = schema.constant(model, filter_tensor)
    filter_quantization = schema.quantization(filter_tensor)
    if stock is None or stock.dtype != np.int8 or filter_quantization is None:
        return None
    d = directions(filter_rows(stock, plan.op), weights)
    if d is None:
        return None
    channels = len(d)
    filter_scales = np.broadcast_to(filter_quantization[0], (channels,))
    input_scale = schema.per_tensor_quantization(tensors[inputs[0]])[0]
    output_scale = schema.per_tensor_quantization(tensors[int(op.outputs[0])])[0]
    bias = np.zeros(channels, np.int64)
    if len(inputs) > 2 and inputs[2] >= 0:
        bias = schema.constant(model, tensors[inputs[2]]).astype(np.int64)
    rows = []
    for channel in range(channels):
        effective = float(np.float64(input_scale) * np.float64(filter_scales[channel]) / np.float64(output_scale))
        multiplier, shift = quantize_multiplier(effective)
        rows.append((int(d[channel]), int(bias[channel]), multiplier, 0, shift))
    return np.asarray(rows, np.int64).astype(np.int32)


def agrees(stock: np.ndarray, rows: np.ndarray) -> bool:
    """Whether stock rows (d, B, M0, 0, s) compute the converter's own rows' output
    to within rounding: the same d, B within one unit, the same real multiplier to
    2^-20 relative."""
    stock = stock.astype(np.int64)
    rows = rows.astype(np.int64)
    if rows.shape != stock.shape or np.any(rows[:, 3] != 0) or np.any(stock[:, 0] != rows[:, 0]):
        return False
    if np.any(np.abs(stock[:, 1] - rows[:, 1]) > 1):
        return False
    real = stock[:, 2] * np.ldexp(1.0, stock[:, 4].astype(int))
    ours = rows[:, 2] * np.ldexp(1.0, rows[:, 4].astype(int))
    return bool(np.all(np.abs(real - ours) <= 2.0**-20 * np.maximum(np.abs(ours), 2.0**-62)))
