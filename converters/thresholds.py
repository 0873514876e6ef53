"""Sign thresholds and output transforms from the Keras model's own float32 computation.

A TFQP op computes an exact integer accumulator per output value: D (the sum of
sign products of a binary layer) or A (the int8 sum of a layer on int8 inputs).
The Keras model computes, from the same inputs, the layer's float32 output y and
then the chain of layers the op folds (BatchNormalization, activations, ...):
h(y). For every channel this module finds, by evaluating those very Keras layers
on every value the accumulator can take,

- the sign threshold: bit = h(y(acc)) < 0 is a step function of acc (the chain
  is monotone), so bit = direction * acc < threshold exactly; max-pools in the
  chain take the AND (or, after a decreasing step, the OR) of the bits;
- for int8 and int32 outputs, the affine map h(y) = a * acc + b of an affine chain
  (from the layers' parameters in float64) and its integer form.

So a deploy model's signs equal Keras's wherever the accumulator equals what Keras
sums (a kernel on a trained grid): no sign is taken of a requantized int8 value.
"""

from typing import Callable, List, NamedTuple, Optional, Tuple

import numpy as np
import tensorflow as tf

from tfq_plus.converters import plans as P
from tfq_plus.converters.tflite_arithmetic import (
    INT32_MAX, INT32_MIN, quantize_multiplier, round_half_away,
)

# Evaluate every accumulator value when a channel's range is at most this long;
# longer ranges are searched on a grid first (the chain is monotone).
FULL_RANGE = 1 << 16
GRID_POINTS = 4097


class SignTransform(NamedTuple):
    """Per channel: bit = 1 iff direction * acc < threshold (int32 [Cout, 2] rows)."""

    rows: np.ndarray  # int32 [Cout, 2]
    or_masks: List[np.ndarray]  # per max-pool of the chain: bool [Cout], True = OR


def chain_values(plan: P.LayerPlan, y: np.ndarray) -> np.ndarray:
    """Keras's float32 chain (elementwise steps; pools and flatten act on several
    pixels and are skipped) on per-channel layer outputs ``y`` [n, C]."""
    values = np.asarray(y, dtype=np.float32)
    n, channels = values.shape
    tensor = tf.constant(values.reshape(1, 1, n, channels) if plan.op != P.DENSE else values)
    for step in plan.chain:
        if step.kind == P.ELEMENTWISE:
            tensor = step.function(tensor)
    return np.asarray(tensor).reshape(n, channels)


def layer_values(plan: P.LayerPlan, accumulators: np.ndarray, unit: np.ndarray) -> np.ndarray:
    """The Keras layer's float32 output for accumulators [n, C]: acc * unit[c]
    (+ bias), rounded to float32 once (Keras sums the same products in float32; with
    +-1 kernels and signs the sum is exact)."""
    y = (accumulators.astype(np.float64) * unit[None, :]).astype(np.float32)
    if plan.bias is not None:
        y = y + plan.bias.astype(np.float32)[None, :]
    return y


def _bits(plan, accumulators, unit) -> np.ndarray:
    return chain_values(plan, layer_values(plan, accumulators, unit)) < 0


def sign_transform(plan: P.LayerPlan, unit: np.ndarray, low: np.ndarray,
                   high: np.ndarray) -> SignTransform:
    """Thresholds for ``plan``'s packed output.

    Args:
        unit: float64 [Cout]: the layer's output per unit of accumulator (the kernel
            scale; times the input scale for int8 inputs).
        low, high: int64 [Cout]: the accumulator's range.

    Raises:
        ValueError: a channel whose sign is not a step function of the accumulator
            (a non-monotone chain), naming the layer and the channel.
    """
    channels = plan.kernel.channels_out
    low = np.asarray(low, np.int64)
    high = np.asarray(high, np.int64)
    # Bracket the change of every channel: [lo, hi] holds it, bits at the ends known.
    lo, hi = low.copy(), high.copy()
    while int((hi - lo).max()) + 1 > FULL_RANGE:
        fractions = np.linspace(0.0, 1.0, GRID_POINTS)
        grid = lo[None, :] + np.round(np.outer(fractions, (hi - lo).astype(np.float64))).astype(np.int64)
        bits = _bits(plan, grid, unit)
        changes = np.count_nonzero(bits[1:] != bits[:-1], axis=0)
        _check_monotone(plan, changes)
        where = np.argmax(bits[1:] != bits[:-1], axis=0)
        changed = changes > 0
        new_lo = np.where(changed, grid[where, np.arange(channels)], lo)
        new_hi = np.where(changed, grid[where + 1, np.arange(channels)], lo)
        lo, hi = new_lo, np.maximum(new_hi, new_lo)
    span = int((hi - lo).max()) + 1
    offsets = np.arange(span, dtype=np.int64)
    grid = np.minimum(lo[None, :] + offsets[:, None], hi[None, :])
    bits = _bits(plan, grid, unit)
    # the full range's end bits decide constant channels and the direction
    ends = _bits(plan, np.stack([low, high]), unit)
    rows = np.zeros((channels, 2), dtype=np.int64)
    for c in range(channels):
        column = bits[:, c]
        at_low, at_high = bool(ends[0, c]), bool(ends[1, c])
        changes = np.count_nonzero(column[1:] != column[:-1])
        if at_low == at_high:
            if changes:
                _check_monotone(plan, np.array([2]), c)
            rows[c] = (1, INT32_MAX) if at_low else (1, INT32_MIN)
            continue
        if changes != 1:
            _check_monotone(plan, np.array([2]), c)
        first = int(grid[np.argmax(column == at_high), c])  # first acc with the high-end bit
        if at_low:  # 1 below `first`: bit = acc < first
            rows[c] = (1, first)
        else:  # bit = acc >= first  <=>  -acc < 1 - first
            rows[c] = (-1, 1 - first)
    return SignTransform(rows.astype(np.int32), pool_or_masks(plan))


def _check_monotone(plan, changes, channel=None):
    if np.any(changes > 1):
        c = int(np.argmax(changes > 1)) if channel is None else channel
        raise ValueError(
            f"layer {plan.name!r}: the sign of {[s.name for s in plan.chain]} after it is not "
            f"a step function of the layer's output in channel {c} (a non-monotone "
            "computation); it cannot be binarized by a threshold"
        )


def pool_or_masks(plan: P.LayerPlan) -> List[np.ndarray]:
    """Per max-pool of the chain: the channels whose elementwise steps after the pool
    are decreasing (the pooled sign is then the OR of the window's signs)."""
    masks = []
    channels = plan.kernel.channels_out
    for index, step in enumerate(plan.chain):
        if step.kind != P.MAX_POOL:
            continue
        direction = np.ones(channels, np.int64)
        for later in plan.chain[index + 1:]:
            if later.kind == P.ELEMENTWISE:
                direction = direction * later.direction
        masks.append(direction < 0)
    return masks


# --- affine outputs ----------------------------------------------------------------


def affine_map(plan: P.LayerPlan, unit: np.ndarray, steps: Optional[List[P.ChainStep]] = None):
    """(a, b) float64 [Cout] with h = a * acc + b, composing the layer (acc * unit +
    bias) and the affine ``steps`` (default: the whole chain's elementwise steps)."""
    a = np.asarray(unit, np.float64).copy()
    b = (plan.bias.astype(np.float64) if plan.bias is not None else np.zeros_like(a))
    for step in (plan.chain if steps is None else steps):
        if step.kind != P.ELEMENTWISE:
            continue
        if step.affine is None:
            raise ValueError(f"layer {plan.name!r}: {step.name!r} is not affine")
        sa, sb = step.affine
        a, b = a * sa, b * sa + sb
    return a, b


def int8_transform(a: np.ndarray, b: np.ndarray, taps: int, output_scale: float):
    """Rows (W, bias, multiplier, shift) of the binary ops' int8 output with
    P = 1, N = -1 (acc = W * D + bias), such that zp + MultiplyByQuantizedMultiplier(
    acc, multiplier, shift) is (a * D + b) / output_scale rounded (to within the
    rounding of TFLite's fixed-point multiply) for every |D| <= taps."""
    rows = []
    for ac, bc in zip(a.tolist(), b.tolist()):
        rows.append(_int8_row(ac, bc, taps, float(np.float32(output_scale))))
    return np.array(rows, dtype=np.int32)


def _int8_row(a: float, b: float, taps: int, scale: float):
    if a == 0.0 or abs(b) / scale > 2.0**20:
        # constant output (or saturated for every D): acc = bias, multiplier 2^-16
        target = b / scale
        bias = int(np.clip(round_half_away(target * 2.0**16), -(2**30), 2**30))
        multiplier, shift = quantize_multiplier(2.0**-16)
        return (0, bias, multiplier, shift)
    ratio = abs(b) / abs(a)
    for k in range(24, -1, -1):
        weight = 2**k
        bias = round_half_away(b / abs(a) * weight)
        if weight * taps + abs(bias) > INT32_MAX - 1:
            continue
        multiplier, shift = quantize_multiplier(abs(a) / (scale * weight))
        if multiplier == 0 or not -31 <= shift <= 31:
            continue
        return (weight if a > 0 else -weight, bias, multiplier, shift)
    raise ValueError(
        f"no int8 output transform for a = {a}, b = {b} (b / a = {ratio}) with {taps} taps"
    )


def int32_transform(a: np.ndarray, b: np.ndarray, stream_scale: float, max_accumulator: int):
    """Rows (M, s, B) with value = B + ((M * acc + 2^(s-1)) >> s) = (a * acc + b) /
    stream_scale to within 1 + |acc| / 2^(s+1) units (B and the result rounded, M
    rounded to 2^-s; s as large as keeps |M| < 2^31, so the last term is about
    |value| / 2^32) for |acc| <= max_accumulator."""
    rows = []
    for ac, bc in zip(a.tolist(), b.tolist()):
        slope = ac / stream_scale
        bias = round_half_away(bc / stream_scale)
        if abs(bias) > INT32_MAX or abs(slope) * max_accumulator > 2.0**31:
            raise ValueError(
                "the residual stream's scale is too small for a layer's output (|value| "
                f"up to {abs(ac) * max_accumulator + abs(bc):.4g}); calibrate with data "
                "that covers the stream's range"
            )
        shift = 40
        while shift > 0 and abs(slope) * 2.0**shift > 2.0**31 - 1:
            shift -= 1
        rows.append((round_half_away(slope * 2.0**shift), shift, bias))
    return np.array(rows, dtype=np.int64).astype(np.int32)


def int32_values(rows: np.ndarray, accumulators: np.ndarray) -> np.ndarray:
    """The C kernels' int32 output for accumulators [..., Cout] (mirrors the C)."""
    multiplier = rows[:, 0].astype(np.int64)
    shift = rows[:, 1].astype(np.int64)
    bias = rows[:, 2].astype(np.int64)
    acc = np.asarray(accumulators, np.int64)
    rounding = np.where(shift > 0, np.left_shift(np.int64(1), np.maximum(shift - 1, 0)), 0)
    values = bias + ((multiplier * acc + rounding) >> shift)
    return np.clip(values, INT32_MIN, INT32_MAX).astype(np.int32)


# --- shift ops' int8 output ---------------------------------------------------------

# The C kernels' bound: sum_k |w_c[k]| * 255 + |B| < 2^31 per channel (formats.h).
SHIFT_BOUND = 2**31 - 1


def shift_int8_transform(a: np.ndarray, b: np.ndarray, weight_sums: np.ndarray,
                         output_scale: float) -> np.ndarray:
    """Rows (d, B, M0, M1, s) of a TFQP_SHIFT_* op's int8 output (formats.h): with
    V = d * A_0 + B,

    - one class: out = zp + MultiplyByQuantizedMultiplier(V, M0, s), TFLite's
      double rounding (M1 = 0);
    - two classes: out = zp + round((V * M0 + d * A_1 * M1) / 2^s), exact int64,

    equal to zp + (sum_c a[c] * A_c + b) / output_scale within the output's rounding
    (half a step, plus the bias rounded to a unit of A_0 and the multipliers to
    2^-31 relative) for every accumulator the weights allow.

    Args:
        a: float64 [C, Cout]: the real output per unit of each class's accumulator
            (the classes' signs agree per channel).
        b: float64 [Cout]: the real output at zero accumulators.
        weight_sums: int [C, Cout]: sum_k |w_c[k]| (the accumulators' bound / 255).
        output_scale: the int8 output tensor's scale.
    """
    a = np.asarray(a, np.float64)
    scale = float(np.float32(output_scale))
    rows = []
    for channel in range(a.shape[1]):
        slopes = a[:, channel] / scale
        target = float(b[channel]) / scale
        reach = int(np.max(weight_sums[:, channel])) * 255
        try:
            rows.append(_shift_row(slopes, target, reach))
        except ValueError as error:
            raise ValueError(f"output channel {channel}: {error}") from None
    return np.asarray(rows, dtype=np.int64).astype(np.int32)


def _shift_row(slopes: np.ndarray, target: float, reach: int):
    signs = np.sign(slopes[slopes != 0])
    if signs.size and not np.all(signs == signs[0]):
        raise ValueError("the accumulator classes' output multipliers differ in sign")
    d = int(signs[0]) if signs.size else 1
    magnitudes = np.abs(slopes)
    room = SHIFT_BOUND - reach
    if room < 0:
        raise ValueError(f"the accumulator can reach {reach}, beyond the int32 bound")
    if magnitudes[0] == 0 or quantize_multiplier(magnitudes[0])[0] == 0:
        # class 0 contributes nothing: V = B carries the constant (scaled by 2^16)
        if len(magnitudes) > 1 and magnitudes[1] != 0:
            raise ValueError("accumulator class 0 has a zero multiplier but class 1 has not")
        # (a tiny slope times the accumulator stays below 2^-8 steps)
        unit = max(2.0**-31, min(2.0**-16, 2.0**-8 / max(reach, 1)))
    else:
        unit = float(magnitudes[0])
    bias = round_half_away(target / unit)
    if abs(bias) > room:
        # fine only where the output saturates for every accumulator
        if abs(target) - unit * reach - float(np.sum(magnitudes[1:])) * reach <= 256:
            raise ValueError(
                f"its bias ({target:.4g} output steps) is too large for the int32 accumulator at "
                f"{unit:.4g} steps per unit"
            )
        bias = int(np.sign(bias)) * room
    if len(magnitudes) == 1:
        multiplier, shift = quantize_multiplier(unit)
        if not -31 <= shift <= 30:
            raise ValueError(f"output multiplier {unit:.4g} is out of TFLite's range")
        return (d, bias, multiplier, 0, shift)
    largest = max(unit, float(magnitudes[1]))
    shift = 62
    while shift > 0 and round_half_away(largest * 2.0**shift) >= 2**31:
        shift -= 1
    m0 = round_half_away(unit * 2.0**shift)
    m1 = round_half_away(float(magnitudes[1]) * 2.0**shift)
    if m0 >= 2**31 or m1 >= 2**31:
        raise ValueError(f"output multipliers {unit:.4g}, {magnitudes[1]:.4g} are too large")
    return (d, bias, m0, m1, shift)


# --- k-bit codes outputs ------------------------------------------------------------


def _codes(plan: P.LayerPlan, accumulators: np.ndarray, unit: np.ndarray) -> np.ndarray:
    """Keras's codes (int64 [n, C]) for accumulators [n, C]: the layer, its chain's
    elementwise steps and the consumer's quantizer, all in float32."""
    return plan.output_grid.codes(chain_values(plan, layer_values(plan, accumulators, unit)))


def code_transform(plan: P.LayerPlan, unit: np.ndarray, low: np.ndarray,
                   high: np.ndarray) -> np.ndarray:
    """Rows (d, base, t_1 .. t_L) of ``plan``'s codes output (the contract's
    ``output_levels`` transform, L = levels - 1): with u = #{i : d * acc >= t_i}, the
    op writes base + u, and u is Keras's code of the accumulator's value.

    Each channel's code is a monotone step function of acc (a monotone chain, a
    non-decreasing quantizer): d orients it upwards, and t_i is the least d * acc in
    the accumulator's range whose code reaches i (found by bisection on Keras's own
    float32 computation; one past the range where it never does). The result is
    checked against Keras at every threshold, one below it, and on a grid over the
    range.

    Args:
        unit, low, high: as ``sign_transform``.

    Raises:
        ValueError: a channel whose code is not a monotone function of the
            accumulator, naming the layer and the channel.
    """
    grid = plan.output_grid
    levels = grid.levels
    channels = plan.kernel.channels_out
    low = np.asarray(low, np.int64)
    high = np.asarray(high, np.int64)
    ends = _codes(plan, np.stack([low, high]), unit)
    d = np.where(ends[1] >= ends[0], 1, -1).astype(np.int64)
    x_low = np.where(d > 0, low, -high)
    x_high = np.where(d > 0, high, -low)
    wanted = np.arange(1, levels, dtype=np.int64)[:, None]  # [L, 1]
    first = np.broadcast_to(x_low, (levels - 1, channels)).copy()
    past = np.broadcast_to(x_high + 1, (levels - 1, channels)).copy()
    while np.any(first < past):
        middle = (first + past) // 2
        reached = _codes(plan, d[None, :] * np.minimum(middle, x_high[None, :]), unit) >= wanted
        reached &= middle <= x_high[None, :]
        past = np.where(reached & (first < past), middle, past)
        first = np.where(~reached & (first < past), middle + 1, first)
    thresholds = first.T  # [C, L]
    _check_codes(plan, unit, d, thresholds, x_low, x_high)
    if thresholds.max() > INT32_MAX or thresholds.min() < INT32_MIN:
        raise ValueError(f"layer {plan.name!r}: a codes threshold does not fit int32")
    rows = np.concatenate([d[:, None], np.full((channels, 1), grid.base, np.int64), thresholds], axis=1)
    return rows.astype(np.int32)


def codes_of(rows: np.ndarray, accumulators: np.ndarray) -> np.ndarray:
    """The codes u (int64 [..., C]) rows (d, base, t_1 ..) give accumulators [..., C]."""
    d = rows[:, 0].astype(np.int64)
    x = np.asarray(accumulators, np.int64) * d
    return np.sum(x[..., None] >= rows[:, 2:].astype(np.int64), axis=-1)


def _check_codes(plan, unit, d, thresholds, x_low, x_high):
    """Keras's codes at every threshold, one below, and on a grid over the range
    equal the thresholds' count there (a bisection on a non-monotone code would not)."""
    fractions = np.linspace(0.0, 1.0, GRID_POINTS)[:, None]
    grid = x_low[None, :] + np.round(fractions * (x_high - x_low)[None, :]).astype(np.int64)
    points = np.concatenate([grid, np.clip(thresholds.T, x_low, x_high),
                             np.clip(thresholds.T - 1, x_low, x_high)])
    keras = _codes(plan, d[None, :] * points, unit)
    rows = np.concatenate([d[:, None], np.zeros_like(d)[:, None], thresholds], axis=1)
    ours = codes_of(rows, d[None, :] * points)
    wrong = np.any(keras != ours, axis=0)
    if np.any(wrong):
        c = int(np.argmax(wrong))
        raise ValueError(
            f"layer {plan.name!r}: the k-bit codes of {[s.name for s in plan.chain]} after it are not "
            f"a monotone function of the layer's output in channel {c}; they cannot be computed "
            "by thresholds"
        )
