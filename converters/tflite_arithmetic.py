"""TFLite's integer arithmetic, reproduced exactly in Python.

The TFQP ops and the converter's transforms must agree bit for bit with what
TFLite and TFLite Micro compute (``tensorflow/lite/kernels/internal/common.h``,
``quantization_util.cc``), and with ``micro/include/tfqp/requantize.h`` which is
the C mirror of the same functions.
"""

from typing import Tuple

import numpy as np

from tfq_plus.converters import tflite_schema as schema

INT32_MIN = -(2**31)
INT32_MAX = 2**31 - 1


def round_half_away(value: float) -> int:
    """std::round (TfLiteRound) as an int: halves go away from zero."""
    magnitude = abs(value)
    floor = np.floor(magnitude)
    rounded = int(floor + 1 if magnitude - floor >= 0.5 else floor)
    return -rounded if value < 0 else rounded


def quantize_multiplier(real_multiplier: float) -> Tuple[int, int]:
    """TFLite's QuantizeMultiplier: (q31 significand, shift) of a real multiplier.

    frexp, then round(significand * 2^31) half away from zero, with the 2^31
    carry and the flush to zero below 2^-31.
    """
    if real_multiplier == 0.0:
        return 0, 0
    significand, shift = np.frexp(np.float64(real_multiplier))
    q_fixed = round_half_away(float(significand) * 2.0**31)
    if q_fixed == 2**31:
        q_fixed //= 2
        shift += 1
    if shift < -31:
        return 0, 0
    return int(q_fixed), int(shift)


def saturating_rounding_doubling_high_mul(a: int, b: int) -> int:
    """gemmlowp's SaturatingRoundingDoublingHighMul on int32 values."""
    if a == b == INT32_MIN:
        return INT32_MAX
    product = a * b
    nudge = (1 << 30) if product >= 0 else 1 - (1 << 30)
    total = product + nudge
    quotient = abs(total) >> 31  # division truncating toward zero
    return quotient if total >= 0 else -quotient


def rounding_divide_by_pot(x: int, exponent: int) -> int:
    """gemmlowp's RoundingDivideByPOT: x / 2^exponent, halves away from zero."""
    mask = (1 << exponent) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (1 if x < 0 else 0)
    return (x >> exponent) + (1 if remainder > threshold else 0)


def multiply_by_quantized_multiplier(x: int, multiplier: int, shift: int) -> int:
    """TFLite's MultiplyByQuantizedMultiplier (double rounding; x << left wraps in int32)."""
    left, right = max(shift, 0), max(-shift, 0)
    shifted = ((x << left) + 2**31) % 2**32 - 2**31
    return rounding_divide_by_pot(saturating_rounding_doubling_high_mul(shifted, multiplier), right)


def multiply_by_quantized_multiplier_array(x: np.ndarray, multiplier: np.ndarray,
                                           shift: np.ndarray) -> np.ndarray:
    """Vectorised :func:`multiply_by_quantized_multiplier` (int64 arrays, broadcast)."""
    x = np.asarray(x, dtype=np.int64)
    multiplier = np.asarray(multiplier, dtype=np.int64)
    shift = np.asarray(shift, dtype=np.int64)
    left, right = np.maximum(shift, 0), np.maximum(-shift, 0)
    shifted = ((x << left) + 2**31) % 2**32 - 2**31
    product = shifted * multiplier  # |product| < 2^62
    nudge = np.where(product >= 0, 1 << 30, 1 - (1 << 30))
    total = product + nudge
    high = np.where(total >= 0, total >> 31, -((-total) >> 31))
    saturate = (shifted == INT32_MIN) & (multiplier == INT32_MIN)
    high = np.where(saturate, INT32_MAX, high)
    mask = (np.int64(1) << right) - 1
    remainder = high & mask
    threshold = (mask >> 1) + (high < 0)
    return (high >> right) + (remainder > threshold)


def activation_range(activation: int, scale, zero_point: int) -> Tuple[int, int]:
    """TFLite's CalculateActivationRangeQuantized for int8 (float32 arithmetic)."""

    def quantize(value: float) -> int:
        ratio = np.float32(value) / np.float32(scale)
        return zero_point + round_half_away(float(ratio))

    low, high = -128, 127
    act = schema.ActivationFunctionType
    if activation == act.NONE:
        return low, high
    if activation == act.RELU:
        return max(low, quantize(0.0)), high
    if activation == act.RELU6:
        return max(low, quantize(0.0)), min(high, quantize(6.0))
    if activation == act.RELU_N1_TO_1:
        return max(low, quantize(-1.0)), min(high, quantize(1.0))
    raise ValueError(f"fused activation {activation} has no int8 range")


def quantize_values(values: np.ndarray, scale: float, zero_point: int,
                    dtype=np.int8) -> np.ndarray:
    """Float values -> integer codes as TFLite's QUANTIZE does: the ratio in float32,
    rounded half away from zero (TfLiteRound), plus the zero point, saturated."""
    info = np.iinfo(dtype)
    ratio = (np.asarray(values, dtype=np.float32) / np.float32(scale)).astype(np.float64)
    q = np.sign(ratio) * np.floor(np.abs(ratio) + 0.5) + zero_point
    return np.clip(q, info.min, info.max).astype(dtype)
