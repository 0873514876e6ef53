/* TFLite's fixed-point requantization, bit-exact.
 *
 * MultiplyByQuantizedMultiplier(x, multiplier, shift) of TFLite's reference
 * kernels (tensorflow/lite/kernels/internal/common.h, the default double-rounding
 * variant, as used by reference_integer_ops::ConvPerChannel and TFLite Micro):
 *   left  = max(shift, 0), right = max(-shift, 0)
 *   result = RoundingDivideByPOT(SaturatingRoundingDoublingHighMul(x * 2^left,
 *                                                                  multiplier),
 *                                right)
 * SaturatingRoundingDoublingHighMul(a, b) = round-half-away-from-zero of
 * a*b / 2^31 (saturating the single overflow case a = b = INT32_MIN), and
 * RoundingDivideByPOT(x, e) = x / 2^e rounded half away from zero — both from
 * gemmlowp. x * 2^left wraps modulo 2^32 like the reference's int32 product
 * (here without undefined behaviour).
 */
#ifndef TFQP_REQUANTIZE_H_
#define TFQP_REQUANTIZE_H_

#include <stdint.h>

static inline int32_t tfqp_saturating_rounding_doubling_high_mul(int32_t a,
                                                                 int32_t b) {
  if (a == INT32_MIN && b == INT32_MIN) return INT32_MAX;
  {
    const int64_t ab = (int64_t)a * (int64_t)b;
    const int64_t nudge = ab >= 0 ? ((int64_t)1 << 30) : (1 - ((int64_t)1 << 30));
    /* C99 division truncates toward zero, as gemmlowp's does. */
    return (int32_t)((ab + nudge) / ((int64_t)1 << 31));
  }
}

/* exponent in [0, 31]. */
static inline int32_t tfqp_rounding_divide_by_pot(int32_t x, int32_t exponent) {
  const int32_t mask = (int32_t)(((int64_t)1 << exponent) - 1);
  const int32_t remainder = x & mask;
  const int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
  /* Arithmetic right shift of a negative value: implementation-defined in C,
   * arithmetic on every compiler this code targets (as TFLite assumes). */
  return (x >> exponent) + (remainder > threshold ? 1 : 0);
}

/* shift in [-31, 31] (validated by every op before use). */
static inline int32_t tfqp_multiply_by_quantized_multiplier(int32_t x,
                                                            int32_t multiplier,
                                                            int32_t shift) {
  const int32_t left = shift > 0 ? shift : 0;
  const int32_t right = shift > 0 ? 0 : -shift;
  const int32_t shifted = (int32_t)((uint32_t)x << left);
  return tfqp_rounding_divide_by_pot(
      tfqp_saturating_rounding_doubling_high_mul(shifted, multiplier), right);
}

#endif /* TFQP_REQUANTIZE_H_ */
