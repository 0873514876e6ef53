"""Layers on signs with a binary kernel -> TFQP_BCONV2D / TFQP_BFULLY_CONNECTED.

The input is the packed signs of the Keras tensor the layer binarizes: written by
the planned layer whose chain ends there, by a TFQP_BINARIZE of an int32 stream,
or (when the tensor comes from builtin int8 ops) the int8 tensor the stock model
compares with zero, binarized by the op (bit = q < zero point; such signs are
counted by verify, not exact). The weights are the plan's +-1 codes, packed; the
accumulator is D = sum of sign products, and Keras's layer output is D * scale.
"""

import numpy as np

from tfq_plus.converters import plans as P
from tfq_plus.converters.ops import binary as binary_ops
from tfq_plus.converters.patterns import signs
from tfq_plus.converters.patterns.context import Context
from tfq_plus.converters.patterns.outputs import Accumulator, conv_options, emit


def apply(ctx: Context, plan: P.LayerPlan) -> None:
    anchor = ctx.anchor(plan)
    input_tensor = signs.signs_of(ctx, plan)
    codes = plan.kernel.codes
    channels_in = int(codes.shape[-1])
    offset = 0
    if plan.op == "dense":
        layout = ctx.padded_flatten.get(input_tensor)
        if layout is not None:
            codes = expand_for_padded_flatten(codes, layout)
            channels_in = int(codes.shape[-1])
            offset = layout.padding_taps
        spec = binary_ops.BFULLY_CONNECTED
        options = dict(channels_in=channels_in)
    else:
        spec = binary_ops.BCONV2D
        options = conv_options(plan, channels_in)
        options["pad_value"] = plan.geometry.pad_value
    weights = ctx.constant(f"tfqp/{plan.name}/weights", binary_ops.pack_weights(codes))
    taps = plan.kernel.taps
    accumulator = Accumulator(plan.kernel.scale, np.full(len(codes), -taps), np.full(len(codes), taps), offset)
    emit(ctx, plan, anchor, spec, input_tensor, weights, options, accumulator)


def expand_for_padded_flatten(codes: np.ndarray, layout) -> np.ndarray:
    """Dense codes [Cout, H*W*C] -> [Cout, H*W*32*words] with +1 at the padding
    positions of each pixel's last word (they meet input padding bits 0 = +1)."""
    cout = codes.shape[0]
    pixels = codes.reshape(cout, layout.height * layout.width, layout.channels)
    padded = np.ones((cout, layout.height * layout.width, 32 * layout.words), dtype=codes.dtype)
    padded[:, :, :layout.channels] = pixels
    return padded.reshape(cout, -1)


def keras_codes(codes: np.ndarray, layout) -> np.ndarray:
    """Inverse of :func:`expand_for_padded_flatten` (for verify's weight check)."""
    if layout is None:
        return codes
    cout = codes.shape[0]
    pixels = codes.reshape(cout, layout.height * layout.width, 32 * layout.words)
    return pixels[:, :, :layout.channels].reshape(cout, -1)
