"""TFQP_BCONV2D and TFQP_BFULLY_CONNECTED: XNOR-popcount layers on signs.

Contract: ``micro/include/tfqp/bconv2d.h``, ``bfully_connected.h``. Input: packed
signs, or int8 binarized on the fly (bit = q < zero point); weights: packed signs
(formats.h); output by its tensor type and options: int8 (transform rows W, bias,
multiplier, shift; P = input_pos, N = input_neg), packed signs (rows direction,
threshold: bit = direction * D < threshold), or int32 values with
``int32_output`` (rows M, s, B: value = B + ((M * D + 2^(s-1)) >> s)).
"""

import numpy as np

from tfq_plus.converters import packing
from tfq_plus.converters.ops.registry import (
    INT32_MAX, KERAS_SIGNS, WINDOW_OPTIONS, Option, OpSpec, OpView, register,
)

_INT8_OUTPUT = (
    Option("input_pos", -255, 255, required=False),
    Option("input_neg", -255, 255, required=False),
    Option("act_min", -128, 127, required=False),
    Option("act_max", -128, 127, required=False),
)
_INT32_OUTPUT = (Option("int32_output", 0, 1, required=False),)
INT8_KEYS = tuple(option.key for option in _INT8_OUTPUT)


def _check_int8_options(name, values):
    given = [key for key in INT8_KEYS if key in values]
    if given and len(given) != len(INT8_KEYS):
        raise ValueError(f"{name}: int8 output needs all of {list(INT8_KEYS)}; got {given}")
    if given and values["act_min"] > values["act_max"]:
        raise ValueError(f"{name}: act_min {values['act_min']} > act_max {values['act_max']}")


def _check_conv(values):
    _check_int8_options("TFQP_BCONV2D", values)
    taps = values["filter_height"] * values["filter_width"] * values["channels_in"]
    if taps >= 2**30:
        raise ValueError(f"TFQP_BCONV2D: filter_height * filter_width * channels_in must be < 2^30, got {taps}")


def _check_dense(values):
    _check_int8_options("TFQP_BFULLY_CONNECTED", values)


def _conv_macs(view: OpView) -> int:
    out = view.shape(0, output=True)
    cout, kh, kw, _ = view.shape(1)
    return int(np.prod(out[:3])) * cout * kh * kw * view.options["channels_in"]


def _dense_macs(view: OpView) -> int:
    out = view.shape(0, output=True)
    return out[0] * view.shape(1)[0] * view.options["channels_in"]


def _unpack(view: OpView) -> np.ndarray:
    """Weight signs +1 / -1 with channels_in on the last axis."""
    return packing.unpack_filter(view.constant(1), view.options["channels_in"]).astype(np.int32)


BCONV2D = register(OpSpec(
    name="TFQP_BCONV2D",
    summary="binary 2-D convolution (XNOR-popcount)",
    inputs=("input", "filter", "transform", "residual"),
    optional_inputs=1,
    options=(Option("channels_in", 1, INT32_MAX),) + WINDOW_OPTIONS + (Option("pad_value", 0, 1, default=0),)
    + _INT8_OUTPUT + _INT32_OUTPUT,
    constant_inputs=(1, 2),
    weights_input=1,
    policy=KERAS_SIGNS,
    mac_kind="binary",
    macs=_conv_macs,
    unpack_weights=_unpack,
    check=_check_conv,
))

BFULLY_CONNECTED = register(OpSpec(
    name="TFQP_BFULLY_CONNECTED",
    summary="binary fully-connected layer (XNOR-popcount)",
    inputs=("input", "weights", "transform", "residual"),
    optional_inputs=1,
    options=(Option("channels_in", 1, 2**30 - 1),) + _INT8_OUTPUT + _INT32_OUTPUT,
    constant_inputs=(1, 2),
    weights_input=1,
    policy=KERAS_SIGNS,
    mac_kind="binary",
    macs=_dense_macs,
    unpack_weights=_unpack,
    check=_check_dense,
))


def pack_weights(codes: np.ndarray) -> np.ndarray:
    """Binary codes (+1 / -1, channels_in last) -> packed int32 words (bit 1 = -1)."""
    return packing.pack_bits(np.asarray(codes) < 0)
