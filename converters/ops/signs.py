"""TFQP_BINARIZE and TFQP_UNPACK: between values and packed signs.

TFQP_BINARIZE packs the signs of int8 values (bit = q < zero point) or of int32
stream values (bit = v < 0): the signs of a residual stream, computed from exact
integers. TFQP_UNPACK writes packed signs as the int8 codes of +1 / -1 a builtin op
reads (the stock model's SELECT_V2 output), so builtin layers on binarized inputs
see Keras's signs; ``group`` says how many channels share packed words (a
flatten of packed pixels keeps each pixel's words).
"""

import numpy as np

from tfq_plus.converters import packing
from tfq_plus.converters.ops.registry import INT32_MAX, BOOLEAN, Option, OpSpec, OpView, register

BINARIZE = register(OpSpec(
    name="TFQP_BINARIZE",
    summary="signs of int8 or int32 values, packed",
    inputs=("input",),
    options=(),
    policy=BOOLEAN,
))

UNPACK = register(OpSpec(
    name="TFQP_UNPACK",
    summary="packed signs -> int8 codes of +1 / -1",
    inputs=("input",),
    options=(
        Option("channels", 1, INT32_MAX),
        Option("positive", -128, 127),
        Option("negative", -128, 127),
        Option("group", 1, INT32_MAX, required=False),
    ),
    policy=BOOLEAN,
))


def binarize_reference(values: np.ndarray, zero_point: int) -> np.ndarray:
    return packing.pack_bits(np.asarray(values) < zero_point)


def unpack_reference(view: OpView, packed: np.ndarray) -> np.ndarray:
    """Each group of ``group`` channels is packed on its own words."""
    o = view.options
    group = o.get("group", o["channels"])
    words = -(-group // 32)
    groups = packed.reshape(packed.shape[:-1] + (o["channels"] // group, words))
    values = packing.unpack_activations(groups, group, o["positive"], o["negative"])
    return values.reshape(packed.shape[:-1] + (o["channels"],))
