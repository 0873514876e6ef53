"""TFQP_SHIFT_CONV2D, TFQP_SHIFT_DEPTHWISE_CONV2D and TFQP_SHIFT_FULLY_CONNECTED:
int8 activations times coded weights.

Contract: ``micro/include/tfqp/shift_layer.h`` (what the three share) and
``shift_conv2d.h``, ``shift_depthwise_conv2d.h``, ``shift_fully_connected.h``. The
weights are b-bit codes (b in 1..5, T codes per tap, packed by
:func:`packing.pack_codes`) decoded through an int16 code table ``[C, 2^b]`` of C
accumulator classes: ``w_c[k] = sum_t table[c][code(k, t)]``. The exact int32
accumulators ``A_c = sum (q - zp) * w_c`` (padded taps add 0) become, per output
channel, an int8 value (transform rows ``d, B, M0, M1, s``: one class through
TFLite's requantization of ``d*A_0 + B``, two classes as the exact
``round((V*M0 + d*A_1*M1) / 2^s)``) or a packed sign (rows ``d, threshold``: bit =
``d*A_0 < threshold``). The output tensor's type chooses. With ``output_levels``
(L + 1 levels, one class, int8 output) the int8 output is a k-bit activation's code:
rows ``d, base, t_1 .. t_L``, ``out = base + #{i : d*A_0 >= t_i}``.
TFQP_SHIFT_FULLY_CONNECTED takes an optional fifth constant input, the live-code lists
(:func:`packing.pack_code_lists`, one class): the Cortex-M path runs pruned channels
from them in batch 1, every other path checks and ignores them.
"""

from typing import Dict

import numpy as np

from tfq_plus.converters import packing
from tfq_plus.converters.ops.registry import (
    INT32_MAX, KBIT_OPTIONS, KERAS_VALUES, OUTPUT_LEVELS, WINDOW_OPTIONS, Option, OpSpec,
    OpView, check_kbit_options, check_output_levels, register,
)

INPUTS = ("input", "codes", "code_table", "transform")
CONSTANT_INPUTS = (1, 2, 3)
CODE_LISTS_INPUT = 4  # TFQP_SHIFT_FULLY_CONNECTED's optional live-code lists
MAX_CODE_VALUE = 2**14  # |code table entry|
TRANSFORM_INT8_COLUMNS = 5  # d, B, M0, M1, s
TRANSFORM_PACKED_COLUMNS = 2  # d, threshold

# What every shift op has after its geometry; the C ops default absent ones to
# terms 1, activation_min -128, activation_max 127.
_OUTPUT_OPTIONS = (
    Option("terms", 1, INT32_MAX, required=False),
    Option("activation_min", -128, 127, required=False),
    Option("activation_max", -128, 127, required=False),
    OUTPUT_LEVELS,
) + KBIT_OPTIONS
# Cin of a convolution's packed input (required with input_bits; an int8 input's depth
# otherwise)
_CHANNELS_IN = (Option("channels_in", 1, INT32_MAX, required=False),)


def _check_output(name: str, values: Dict[str, int], taps_known: int):
    """activation_min <= activation_max, terms * (the taps the options fix) < 2^31, and
    output_levels without the activation clamps."""
    check_output_levels(name, values, ("activation_min", "activation_max"))
    check_kbit_options(name, values)
    low, high = values.get("activation_min", -128), values.get("activation_max", 127)
    if low > high:
        raise ValueError(f"{name}: activation_min {low} > activation_max {high}")
    codes = taps_known * values.get("terms", 1)
    if codes > INT32_MAX:
        raise ValueError(f"{name}: terms * taps must be <= 2^31 - 1 codes per output channel, "
                         f"got at least {codes}")


def _check_conv(values):
    _check_output("TFQP_SHIFT_CONV2D", values, values["filter_height"] * values["filter_width"])


def _check_depthwise(values):
    _check_output("TFQP_SHIFT_DEPTHWISE_CONV2D", values,
                  values["filter_height"] * values["filter_width"])


def _check_dense(values):
    _check_output("TFQP_SHIFT_FULLY_CONNECTED", values, values["channels_in"])


# ----------------------------------------------------------------------------- weights


def code_bits(view: OpView) -> int:
    """b of the op's code table ``[C, 2^b]``."""
    columns = view.shape(2)[1]
    return int(columns).bit_length() - 1


def taps(view: OpView) -> int:
    """K: the taps of one output channel (conv KH*KW*Cin, depthwise KH*KW, dense Cin)."""
    o = view.options
    if view.name == SHIFT_FULLY_CONNECTED.name:
        return o["channels_in"]
    window = o["filter_height"] * o["filter_width"]
    # Cin: channels_in where given (a packed input's depth is its words)
    channels_in = o.get("channels_in") or view.shape(0)[3]
    return window if view.name == SHIFT_DEPTHWISE_CONV2D.name else window * channels_in


def codes(view: OpView) -> np.ndarray:
    """The op's codes as ``uint8 [Cout, K, T]``."""
    terms = view.options.get("terms", 1)
    count = taps(view) * terms
    unpacked = packing.unpack_codes(view.constant(1), code_bits(view), count)
    return unpacked.reshape(len(unpacked), count // terms, terms)


def class_weights(view: OpView) -> np.ndarray:
    """The integer weights ``w_c[k]`` as ``int64 [C, Cout, K]``."""
    table = np.asarray(view.constant(2), dtype=np.int64)
    return table[:, codes(view)].sum(axis=-1)


def _unpack(view: OpView) -> np.ndarray:
    """The integer weights in TFLite's layout: conv ``[Cout, KH, KW, Cin]``, depthwise
    ``[1, KH, KW, Cout]``, dense ``[Cout, Cin]``; with two accumulator classes a leading
    class axis ``[2, ...]``."""
    weights = class_weights(view)
    classes, cout, _ = weights.shape
    o = view.options
    if view.name == SHIFT_CONV2D.name:
        weights = weights.reshape(classes, cout, o["filter_height"], o["filter_width"], -1)
    elif view.name == SHIFT_DEPTHWISE_CONV2D.name:
        weights = weights.reshape(classes, cout, o["filter_height"], o["filter_width"])
        weights = weights.transpose(0, 2, 3, 1)[:, None]
    return weights[0] if classes == 1 else weights


# ----------------------------------------------------------------------------- MACs


def _output_positions(view: OpView) -> int:
    return int(np.prod(view.shape(0, output=True)[:-1]))


def _macs(view: OpView) -> int:
    """One MAC per tap of every output channel (the T codes of a tap are one weight)."""
    return _output_positions(view) * view.shape(1)[0] * taps(view)


def _mac_kind(view) -> str:
    """"shift" when every code decodes to zero or a signed power of two (power-of-two,
    log base 2, ternary, ShiftCNN terms), else "k-bit" (a uniform grid's integers)."""
    table = np.abs(np.asarray(view.constant(2), dtype=np.int64)).ravel()
    powers = table[table != 0]
    return "shift" if np.all(powers & (powers - 1) == 0) else "k-bit"


def _spec(name, summary, geometry, check, after=(), lists=False) -> OpSpec:
    return register(OpSpec(
        name=name,
        summary=summary,
        inputs=INPUTS + (("code_lists",) if lists else ()),
        optional_inputs=int(lists),
        options=geometry + _OUTPUT_OPTIONS + after,
        constant_inputs=CONSTANT_INPUTS + ((CODE_LISTS_INPUT,) if lists else ()),
        weights_input=1,
        policy=KERAS_VALUES,
        mac_kind=_mac_kind,
        macs=_macs,
        unpack_weights=_unpack,
        check=check,
    ))


SHIFT_CONV2D = _spec("TFQP_SHIFT_CONV2D", "2-D convolution of int8 values with coded weights",
                     WINDOW_OPTIONS, _check_conv, _CHANNELS_IN)
SHIFT_DEPTHWISE_CONV2D = _spec(
    "TFQP_SHIFT_DEPTHWISE_CONV2D", "depthwise 2-D convolution of int8 values with coded weights",
    WINDOW_OPTIONS + (Option("depth_multiplier", 1, INT32_MAX, default=1),), _check_depthwise,
    _CHANNELS_IN)
SHIFT_FULLY_CONNECTED = _spec(
    "TFQP_SHIFT_FULLY_CONNECTED", "fully-connected layer of int8 values with coded weights",
    (Option("channels_in", 1, INT32_MAX),), _check_dense, lists=True)
SHIFT_OPS = tuple(spec.name for spec in (SHIFT_CONV2D, SHIFT_DEPTHWISE_CONV2D, SHIFT_FULLY_CONNECTED))
