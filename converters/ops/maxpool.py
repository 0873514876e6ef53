"""TFQP_BMAXPOOL2D: max-pool on packed signs.

The max of values in {+1, -1} is -1 only if all are: the pooled bit is the AND of
the window's bits. A channel marked in the optional constant ``or_mask`` (packed
like an activation pixel) takes the OR instead: the sign of a max-pool followed by
a decreasing per-channel function (a BatchNormalization with a negative multiplier).
"""

import numpy as np

from tfq_plus.converters import packing
from tfq_plus.converters.ops.registry import (
    BOOLEAN, INT32_MAX, PADDING_NAMES, Option, OpSpec, OpView, register,
)

BMAXPOOL2D = register(OpSpec(
    name="TFQP_BMAXPOOL2D",
    summary="max-pool on packed signs (AND / OR per channel)",
    inputs=("input", "or_mask"),
    optional_inputs=1,
    options=(
        Option("channels", 1, INT32_MAX),
        Option("filter_height", 1, INT32_MAX),
        Option("filter_width", 1, INT32_MAX),
        Option("stride_height", 1, INT32_MAX, default=1),
        Option("stride_width", 1, INT32_MAX, default=1),
        Option("padding", 0, 1, default=1, names=PADDING_NAMES),
    ),
    constant_inputs=(1,),
    policy=BOOLEAN,
))


def reference(view: OpView, packed: np.ndarray) -> np.ndarray:
    """numpy definition of the op: AND (OR where masked) over each window's
    in-image positions, TFLite's SAME/VALID geometry."""
    o = view.options
    channels = o["channels"]
    bits = packing.unpack_bits(packed, channels)  # [N, H, W, C] True = -1
    mask = np.zeros(channels, bool)
    if view.tensor(1) is not None:
        mask = packing.unpack_bits(view.constant(1), channels)
    out = pool_windows(bits, o, lambda window: np.where(mask, window.any(axis=1), window.all(axis=1)))
    return packing.pack_bits(out)


def pool_windows(values: np.ndarray, options, reduce) -> np.ndarray:
    """``reduce`` ([N, positions, C] -> [N, C]) of each window's in-image positions of
    ``values`` [N, H, W, C], windows from a pool's options (filter, strides, padding)
    in TFLite's SAME / VALID geometry: [N, OH, OW, C]."""
    o = options
    n, h, w, channels = values.shape
    out_h, pad_h = pool_axis(h, o["filter_height"], o["stride_height"], o["padding"])
    out_w, pad_w = pool_axis(w, o["filter_width"], o["stride_width"], o["padding"])
    out = np.zeros((n, out_h, out_w, channels), values.dtype)
    for y in range(out_h):
        y0 = y * o["stride_height"] - pad_h
        ys = slice(max(y0, 0), min(y0 + o["filter_height"], h))
        for x in range(out_w):
            x0 = x * o["stride_width"] - pad_w
            xs = slice(max(x0, 0), min(x0 + o["filter_width"], w))
            out[:, y, x, :] = reduce(values[:, ys, xs, :].reshape(n, -1, channels))
    return out


def pool_axis(size, kernel, stride, padding):
    """(output size, padding before) of a pool axis in TFLite's SAME / VALID geometry."""
    if padding == packing.PADDING_SAME:
        out = -(-size // stride)
        total = max((out - 1) * stride + kernel - size, 0)
        return out, total // 2
    return (size - kernel) // stride + 1, 0
