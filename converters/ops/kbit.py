"""TFQP_UNPACK_CODES and TFQP_MAX_POOL_CODES: the ops on packed k-bit activations
besides the five int8-activation ops that read and write them.

TFQP_UNPACK_CODES turns packed codes into the int8 values a builtin op reads;
TFQP_MAX_POOL_CODES max-pools packed codes into packed codes of the same width.

The format is ``micro/include/tfqp/formats.h`` ("Packed k-bit activations", mirrored by
``packing.pack_kbit_activations``): codes u in [0, 2^k), k in {2, 4}, 32 / k per word,
each pixel on its own words. The op writes q = zp_out + (u - code_zero), the value
(u - code_zero) * scale on the output's quantization (contract:
``micro/include/tfqp/unpack_codes.h``). The five int8-activation ops read and write
the format themselves (options ``input_bits``, ``input_code_zero``, ``output_bits``:
``registry.KBIT_OPTIONS``).
"""

import numpy as np

from tfq_plus.converters import packing
from tfq_plus.converters.ops.maxpool import pool_windows
from tfq_plus.converters.ops.registry import (
    BOOLEAN, INT32_MAX, PADDING_NAMES, Option, OpSpec, OpView, register,
)


def _check(values):
    bits, zero = values["bits"], values.get("code_zero", 0)
    if bits not in packing.KBIT_BITS:
        raise ValueError(f"TFQP_UNPACK_CODES: bits must be 2 or 4, got {bits}")
    if zero >= 1 << bits:
        raise ValueError(f"TFQP_UNPACK_CODES: code_zero must be in [0, {1 << bits}), got {zero}")


UNPACK_CODES = register(OpSpec(
    name="TFQP_UNPACK_CODES",
    summary="packed k-bit activation codes -> int8 values",
    inputs=("input",),
    options=(
        Option("channels", 1, INT32_MAX),
        Option("bits", 2, 4),
        Option("code_zero", 0, 15, required=False),
    ),
    policy=BOOLEAN,
    check=_check,
))


def unpack_codes_reference(view: OpView, packed: np.ndarray, output_zero_point: int) -> np.ndarray:
    """q = zp_out + (u - code_zero) of every code (int8)."""
    o = view.options
    codes = packing.unpack_kbit_activations(packed, o["bits"], o["channels"]).astype(np.int64)
    return (output_zero_point + codes - o.get("code_zero", 0)).astype(np.int8)


def _check_pool(values):
    if values["bits"] not in packing.KBIT_BITS:
        raise ValueError(f"TFQP_MAX_POOL_CODES: bits must be 2 or 4, got {values['bits']}")


MAX_POOL_CODES = register(OpSpec(
    name="TFQP_MAX_POOL_CODES",
    summary="max-pool on packed k-bit activation codes",
    inputs=("input",),
    options=(
        Option("channels", 1, INT32_MAX),
        Option("bits", 2, 4),
        Option("filter_height", 1, INT32_MAX),
        Option("filter_width", 1, INT32_MAX),
        Option("stride_height", 1, INT32_MAX, default=1),
        Option("stride_width", 1, INT32_MAX, default=1),
        Option("padding", 0, 1, default=1, names=PADDING_NAMES),
    ),
    policy=BOOLEAN,
    check=_check_pool,
))


def max_pool_codes_reference(view: OpView, packed: np.ndarray) -> np.ndarray:
    """numpy definition of TFQP_MAX_POOL_CODES: the max of each channel's codes over
    the window's in-image positions (TFLite MAX_POOL_2D's SAME / VALID geometry),
    packed again."""
    o = view.options
    codes = packing.unpack_kbit_activations(packed, o["bits"], o["channels"])
    out = pool_windows(codes, o, lambda window: window.max(axis=1))
    return packing.pack_kbit_activations(out, o["bits"])
