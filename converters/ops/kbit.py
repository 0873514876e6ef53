"""TFQP_UNPACK_CODES: packed k-bit activations as the int8 values a builtin op reads.

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
from tfq_plus.converters.ops.registry import INT32_MAX, BOOLEAN, Option, OpSpec, OpView, register


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
