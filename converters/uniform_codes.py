"""Uniform k-bit kernels as codes of the coded-weight ops (``plans.ShiftCodes``).

A uniform grid (``QuantGrid`` kind UNIFORM: LSQ, Uniform, larq's DoReFa in weights
mode, a ProgressiveQuantizer at its final width) has per output channel the values
``range_min + q * step``, q = 0 .. levels - 1. Written as integers times a unit:

    value = (offset + multiple * q) * unit,  unit = step / multiple,

with ``multiple`` 1 where range_min is a whole number of steps (LSQ, symmetric
Uniform, asymmetric Uniform: its zero point) and 2 where it is an odd number of
half steps (DoReFa: levels (2q - (2^k - 1)) / (2^k - 1), odd integers over the unit
1 / (2^k - 1)). The integer levels go into the ops' INT16 code table, the unit into
the output transform (as the shift families' scale); the zero point of an
asymmetric grid is in the levels themselves, so nothing is folded into the bias.

Code q of a channel is the index of its level in the table, which holds every
level of the grid in ascending order: ``b = k`` bits where every channel has the
same grid (per tensor, or per-channel steps with one zero point), more where
per-channel zero points shift the channels' levels apart (at most 5 bits: the
ops' code width).

The levels are stored times a power of two ``fine`` (up to 2^8, within the table's
2^14 and the accumulator's bound) and the unit divided by it: the same products,
but an accumulator unit fine enough for the int8 output's bias. The bias of an
int8 output is an integer in accumulator units; at one level per unit a 2-bit
grid's unit can be several output LSBs (measured: 5.8 on accuracy.py's 2-bit fc2,
whose deploy outputs then missed Keras's by up to 3.4 LSB).

Keras computes some of these values in two float32 roundings (DoReFa's
``2 * q / n - 1``, fake quant's ``q * step + min``), so the Keras kernel is the
integer level times the unit within a few float32 ulps, not bit for bit:
``ShiftCodes.tolerance`` says how far (a fraction of the unit), and verify checks the
levels against it.
"""

import numpy as np

from tfq_plus.converters import plans as P
from tfq_plus.converters import shift_codes

FAMILY = "uniform"
MIN_BITS, MAX_BITS = 2, shift_codes.MAX_BITS
# |Keras value - level * unit| / unit above this is a value off the grid; float32
# roundings of a k <= 5 bit grid stay below 2^-16 of the unit.
TOLERANCE = 2.0**-10
FINE_MAX = 2**8  # the levels' scale-up: unit / 256 is far below an output LSB
# sum |w| * 255 per channel below this leaves room for the bias in int32
FINE_ACCUMULATOR = 2**29


def fine_factor(table_levels: np.ndarray, levels: np.ndarray) -> int:
    """The largest power of two <= FINE_MAX that keeps the table entries within
    2^14 and every channel's sum |w| * 255 below FINE_ACCUMULATOR."""
    largest_entry = int(np.abs(table_levels).max(initial=1)) or 1
    largest_sum = int(np.abs(levels).sum(axis=-1).max(initial=1)) * 255 or 1
    fine = FINE_MAX
    while fine > 1 and (largest_entry * fine > shift_codes.MAX_ENTRY
                        or largest_sum * fine >= FINE_ACCUMULATOR):
        fine //= 2
    return fine


def channel_rows(layer: str, parameter, shape, axis, op: str, what: str) -> np.ndarray:
    """A grid parameter (scalar, or per channel along ``axis`` of the Keras kernel)
    as one float64 value per output channel, checking it is constant within each."""
    values = np.asarray(parameter, np.float64)
    if values.ndim and values.size > 1:
        broadcast = [1] * len(shape)
        broadcast[axis] = values.size
        values = values.reshape(broadcast)
    full = shift_codes.rows(np.broadcast_to(values, shape), op)
    per_channel = full[:, 0]
    if not np.array_equal(full, np.broadcast_to(per_channel[:, None], full.shape)):
        raise ValueError(
            f"layer {layer!r}: its kernel quantizer's {what} varies within an output channel "
            f"(per-channel axis {axis}); uniform kernels deploy with one {what} per output channel"
        )
    return per_channel


def _multiple(layer: str, offsets: np.ndarray) -> int:
    """1 where every channel's range_min is whole steps, 2 where half steps."""
    for multiple in (1, 2):
        scaled = offsets * multiple
        if np.all(np.abs(scaled - np.round(scaled)) <= TOLERANCE):
            return multiple
    raise ValueError(
        f"layer {layer!r}: its uniform grid starts {offsets.tolist()} steps from zero; uniform "
        "kernels deploy when zero is on the grid or half a step from it"
    )


def uniform_codes(layer: str, grid, quantized: np.ndarray, op: str) -> P.ShiftCodes:
    """The codes of a uniform kernel: ``quantized`` is the Keras layer's quantized
    kernel in Keras's layout, ``grid`` its quantizer's deploy grid."""
    bits = int(grid.bits)
    if not MIN_BITS <= bits <= MAX_BITS:
        raise ValueError(
            f"layer {layer!r}: a {bits}-bit uniform kernel has no coded-weight form; uniform "
            f"kernels deploy with {MIN_BITS} to {MAX_BITS} bits (or 8 bits symmetric)"
        )
    quantized = np.asarray(quantized, np.float32)
    shape, axis = quantized.shape, grid.axis
    step = channel_rows(layer, grid.scale, shape, axis, op, "step")
    low = channel_rows(layer, grid.range_min, shape, axis, op, "range")
    high = channel_rows(layer, grid.range_max, shape, axis, op, "range")
    if np.any(step <= 0):
        raise ValueError(f"layer {layer!r}: its uniform grid has a step <= 0")
    multiple = _multiple(layer, low / step)
    unit = step / multiple
    offset = np.round(low / unit).astype(np.int64)
    count = np.round((high - low) / step).astype(np.int64) + 1
    if np.any(count > 2**bits):
        raise ValueError(f"layer {layer!r}: its uniform grid has more than 2^{bits} levels")
    values = shift_codes.rows(quantized, op).reshape(len(step), -1)
    levels = _levels(layer, values, unit, offset, multiple, count)
    table_levels = np.unique(np.concatenate(
        [o + multiple * np.arange(c) for o, c in zip(offset.tolist(), count.tolist())]))
    code_bits = max(bits, int(np.ceil(np.log2(len(table_levels)))))
    if code_bits > MAX_BITS:
        raise ValueError(
            f"layer {layer!r}: its per-channel zero points spread the grid over "
            f"{len(table_levels)} levels; coded weights hold at most 2^{MAX_BITS}"
        )
    fine = fine_factor(table_levels, levels)
    table = np.zeros((1, 2**code_bits), np.int16)
    table[0, :len(table_levels)] = table_levels * fine
    codes = np.searchsorted(table_levels, levels).astype(np.uint8)
    shift_codes.check_accumulator(layer, levels[None] * fine)
    return P.ShiftCodes(f"{FAMILY} {bits}-bit", codes, code_bits, 1, table, unit[None, :] / fine,
                        values, tolerance=TOLERANCE * fine)


def _levels(layer, values, unit, offset, multiple, count) -> np.ndarray:
    """The integer level of every Keras value, [Cout, K], checked on the channel's grid."""
    ratio = values.astype(np.float64) / unit[:, None]
    levels = np.round(ratio).astype(np.int64)
    index = (levels - offset[:, None]) / multiple
    off_grid = (np.abs(ratio - levels) > TOLERANCE) | (index != np.round(index)) \
        | (index < 0) | (index >= count[:, None])
    if np.any(off_grid):
        channel, tap = np.argwhere(off_grid)[0]
        raise ValueError(
            f"layer {layer!r}: kernel value {values[channel, tap]!r} (output channel {channel}) is not "
            "on the uniform grid its quantizer describes"
        )
    return levels


def differing(weights: np.ndarray, scales: np.ndarray, values: np.ndarray, tolerance: float) -> np.ndarray:
    """Which Keras values [Cout, K] the one-class integer weights [1, Cout, K] times the
    units [1, Cout] miss by more than ``tolerance`` units."""
    unit = scales[0][:, None]
    return np.abs(values.astype(np.float64) - weights[0] * unit) > tolerance * unit
