"""The shift-op layers both benchmarks run (benchmarks/mcu_cycles.py on Cortex-M4,
benchmarks/kernels_host.py on the host): random coded weights of a kind, and the
op's inputs and options.

Kinds: ``po2`` (4-bit power of two: code 0 -> 0, 1..7 -> +2^0..+2^6, 9..15 ->
-2^0..-2^6, 8 unused), ``ternary`` (2-bit: 0, +1, -1), ``binary`` (1-bit: +1, -1,
a BNN's first layer on int8 input), ``uniform4`` / ``uniform2`` (uniform k-bit
weights, the code table the grid's integer levels -2^(k-1) .. 2^(k-1) - 1, code c
the two's complement); ``pruned`` sets that percentage of the codes to 0
(unstructured, as TFMOT's magnitude pruning leaves them). ``activation_bits`` 4: the
layer reads and writes packed 4-bit activations (formats.h, "Packed k-bit
activations"): input codes with code zero 8, 16-level codes output.
"""

from typing import NamedTuple

import numpy as np

from tfq_plus.converters import packing
from tfq_plus.converters.ops import (
    SHIFT_CONV2D, SHIFT_DEPTHWISE_CONV2D, SHIFT_FULLY_CONNECTED,
)

# kind -> (bits, code table, codes drawn for a dense layer)
WEIGHTS = {
    "po2": (4, [0, 1, 2, 4, 8, 16, 32, 64, 0, -1, -2, -4, -8, -16, -32, -64],
            [c for c in range(1, 16) if c != 8]),
    "ternary": (2, [0, 1, -1, 0], [0, 1, 2]),
    "binary": (1, [1, -1], [0, 1]),
    "uniform4": (4, [c if c < 8 else c - 16 for c in range(16)], list(range(16))),
    "uniform2": (2, [0, 1, -2, -1], [0, 1, 2, 3]),
}
ACTIVATION_CODE_ZERO = 8  # 4-bit activations: u - 8 in [-8, 7]

INPUT_ZERO_POINT, OUTPUT_ZERO_POINT = -7, 5


class ShiftLayer(NamedTuple):
    """A shift op ready to prepare: its registry spec, inputs (input, codes, code table,
    transform), encoded options, and its MACs (one per tap and output)."""

    spec: object
    inputs: list
    options: bytes
    macs: int


def coded_weights(rng, kind: str, cout: int, taps: int, pruned: float = 0.0):
    """(packed codes int32 [Cout, W_row], code table int16 [1, 2^b], the weights' RMS)."""
    bits, table, drawn = WEIGHTS[kind]
    codes = rng.choice(drawn, size=(cout, taps))
    codes[rng.random(codes.shape) < pruned / 100] = 0
    values = np.asarray(table, np.int64)[codes]
    rms = float(np.sqrt(np.mean(values.astype(np.float64) ** 2))) or 1.0
    return packing.pack_codes(codes, bits), np.asarray([table], np.int16), rms


def int8_transform(rng, cout: int, taps: int, rms: float) -> np.ndarray:
    """int8-output rows (d, B, M0, 0, s) whose outputs span the int8 range."""
    s = -int(np.round(np.log2(np.sqrt(taps) * 128 * rms / 60.0))) - 1
    return np.stack([rng.choice([-1, 1], cout), rng.integers(-5000, 5001, cout),
                     rng.integers(2**30, 2**31, cout), np.zeros(cout, np.int64),
                     np.full(cout, np.clip(s, -31, 30))], axis=1).astype(np.int32)


def levels_transform(rng, cout: int, taps: int, rms: float, levels: int) -> np.ndarray:
    """Codes-output rows (d, base, t_1 .. t_L): thresholds spread over the accumulators'
    typical range (|u - 8| about 4.6 for uniform 4-bit codes), sorted."""
    typical = np.sqrt(taps) * rms * 4.6
    thresholds = np.sort(np.round(rng.normal(0, typical, (cout, levels - 1))), axis=1)
    return np.concatenate([rng.choice([-1, 1], (cout, 1)), np.full((cout, 1), -8),
                           thresholds], axis=1).astype(np.int32)


def shift_layer(rng, op: str, kind: str, *, height=1, width=1, cin, cout=None, k=3,
                pruned: float = 0.0, activation_bits: int = 0,
                code_lists: bool = False) -> ShiftLayer:
    """``op``: "conv" (k x k, SAME), "depthwise" (k x k, SAME, Cout = Cin) or "dense";
    batch 1; int8 input and output, or (``activation_bits`` 4) packed 4-bit codes in and
    out. ``code_lists`` (dense): with the live-code lists input (formats.h)."""
    if op == "dense":
        x = rng.integers(-128, 128, size=(1, cin)).astype(np.int8)
        taps, spec, options, positions = cin, SHIFT_FULLY_CONNECTED, dict(channels_in=cin), 1
    else:
        x = rng.integers(-128, 128, size=(1, height, width, cin)).astype(np.int8)
        depthwise = op == "depthwise"
        cout = cin if depthwise else cout
        taps = k * k * (1 if depthwise else cin)
        spec = SHIFT_DEPTHWISE_CONV2D if depthwise else SHIFT_CONV2D
        options = dict(filter_height=k, filter_width=k, padding="same")
        positions = height * width
    codes, table, rms = coded_weights(rng, kind, cout, taps, pruned)
    inputs = [x, codes, table, int8_transform(rng, cout, taps, rms)]
    if activation_bits:
        levels = 1 << activation_bits
        u = rng.integers(0, levels, size=x.shape)
        inputs[0] = packing.pack_kbit_activations(u, activation_bits)
        inputs[3] = levels_transform(rng, cout, taps, rms, levels)
        options.update(channels_in=cin, input_bits=activation_bits,
                       input_code_zero=ACTIVATION_CODE_ZERO, output_bits=activation_bits,
                       output_levels=levels)
    if code_lists:
        bits = WEIGHTS[kind][0]
        inputs.append(packing.pack_code_lists(packing.unpack_codes(codes, bits, taps), table[0]))
    return ShiftLayer(spec, inputs, spec.encode(**options), positions * cout * taps)
