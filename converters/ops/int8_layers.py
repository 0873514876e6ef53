"""TFQP_CONV2D_INT8 and TFQP_FULLY_CONNECTED_INT8: int8 layers whose output is
binarized or kept exact.

A BNN's first layer (or any convolution / dense layer on int8 values whose output
is binarized, or added into a residual stream that is): int8 inputs q with zero
point zp, int8 weights w (symmetric, TFLite layout), the exact accumulator
A = sum (q - zp) * w over the valid taps (padded taps add 0, as TFLite pads int8
convolutions with the zero point), then packed signs (rows direction, threshold:
bit = direction * A < threshold) or, with ``int32_output``, int32 values (rows
M, s, B: value = B + ((M * A + 2^(s-1)) >> s)) or, with ``output_levels`` (L + 1),
the int8 code of a k-bit activation grid (rows d, base, t_1 .. t_L: out = base +
#{i : d * A >= t_i}). No sign is taken of a requantized int8 value.
"""

import numpy as np

from tfq_plus.converters.ops.registry import (
    KBIT_OPTIONS, KERAS_SIGNS, OUTPUT_LEVELS, WINDOW_OPTIONS, Option, OpSpec, OpView,
    check_kbit_options, check_output_levels, register,
)

# K * 255 * 127 < 2^31: the accumulator never overflows
MAX_TAPS = (2**31 - 1) // (255 * 127)



def _check_conv(values):
    check_output_levels("TFQP_CONV2D_INT8", values, ("int32_output",))
    check_kbit_options("TFQP_CONV2D_INT8", values)
    taps = values["filter_height"] * values["filter_width"] * values["channels_in"]
    if taps > MAX_TAPS:
        raise ValueError(f"TFQP_CONV2D_INT8: filter_height * filter_width * channels_in must be <= {MAX_TAPS}, got {taps}")


def _check_dense(values):
    check_output_levels("TFQP_FULLY_CONNECTED_INT8", values, ("int32_output",))
    check_kbit_options("TFQP_FULLY_CONNECTED_INT8", values)


def _conv_macs(view: OpView) -> int:
    out = view.shape(0, output=True)
    cout, kh, kw, cin = view.shape(1)
    return int(np.prod(out[:3])) * cout * kh * kw * cin


def _dense_macs(view: OpView) -> int:
    out = view.shape(0, output=True)
    cout, cin = view.shape(1)
    return out[0] * cout * cin


def _unpack(view: OpView) -> np.ndarray:
    return np.asarray(view.constant(1), dtype=np.int32)


CONV2D_INT8 = register(OpSpec(
    name="TFQP_CONV2D_INT8",
    summary="int8 2-D convolution with packed-sign or int32 output",
    inputs=("input", "weights", "transform", "residual"),
    optional_inputs=1,
    options=(Option("channels_in", 1, MAX_TAPS),) + WINDOW_OPTIONS
    + (Option("int32_output", 0, 1, required=False), OUTPUT_LEVELS) + KBIT_OPTIONS,
    constant_inputs=(1, 2),
    weights_input=1,
    policy=KERAS_SIGNS,
    mac_kind="int8",
    macs=_conv_macs,
    unpack_weights=_unpack,
    check=_check_conv,
))

FULLY_CONNECTED_INT8 = register(OpSpec(
    name="TFQP_FULLY_CONNECTED_INT8",
    summary="int8 fully-connected layer with packed-sign or int32 output",
    inputs=("input", "weights", "transform", "residual"),
    optional_inputs=1,
    options=(Option("channels_in", 1, MAX_TAPS), Option("int32_output", 0, 1, required=False),
             OUTPUT_LEVELS) + KBIT_OPTIONS,
    constant_inputs=(1, 2),
    weights_input=1,
    policy=KERAS_SIGNS,
    mac_kind="int8",
    macs=_dense_macs,
    unpack_weights=_unpack,
    check=_check_dense,
))


def pack_weights(codes: np.ndarray, wide: bool = False) -> np.ndarray:
    """The weights as stored (TFLite layout): int8 codes in [-127, 127], or int16
    (``wide``: a float kernel rounded finely; the C op bounds sum |w| * 255 < 2^31
    per channel)."""
    codes = np.asarray(codes)
    limit = 32767 if wide else 127
    if codes.min(initial=0) < -limit or codes.max(initial=0) > limit:
        raise ValueError(f"weight codes must be in [-{limit}, {limit}]")
    return codes.astype(np.int16 if wide else np.int8)
