/* Internal: helpers shared by the int8 baselines (see int8_baseline.h). */
#ifndef TFQP_BENCH_INT8_COMMON_H_
#define TFQP_BENCH_INT8_COMMON_H_

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "int8_baseline.h"

#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
#include <arm_acle.h>
#define BENCH_DSP 1
#else
#define BENCH_DSP 0
#endif

/* TFLite's MultiplyByQuantizedMultiplier (tfqp/requantize.h), bit-exact for
 * every input, in about a third of the instructions:
 * - SaturatingRoundingDoublingHighMul(a, b) = (a * b + 2^30) >> 31 (arithmetic):
 *   with gemmlowp's nudge (1 - 2^30 for negative products) and its truncating
 *   division, the negative case is ceil((ab + 1 - 2^30) / 2^31), which is
 *   floor((ab + 2^30) / 2^31) as well. The single overflow, a = b = INT32_MIN,
 *   is saturated to INT32_MAX as gemmlowp does (QADD doubles the high word).
 * - RoundingDivideByPOT(x, e) = (x >> e) + (remainder > threshold), the
 *   comparison taken from the sign of threshold - remainder (both in
 *   [0, 2^31)). */
static inline int32_t multiply_by_quantized_multiplier(int32_t x, int32_t multiplier,
                                                       int32_t shift) {
  const int32_t left = shift > 0 ? shift : 0;
  const int32_t right = shift > 0 ? 0 : -shift;
  const int64_t product = (int64_t)(int32_t)((uint32_t)x << left) * multiplier + (1 << 30);
  const int32_t high = (int32_t)(product >> 31) == INT32_MIN && product > 0
                           ? INT32_MAX
                           : (int32_t)(product >> 31);
  const int32_t mask = (int32_t)((1u << right) - 1u);
  const int32_t remainder = high & mask;
  const int32_t threshold = (mask >> 1) + (int32_t)((uint32_t)high >> 31);
  return (high >> right) + (int32_t)((uint32_t)(threshold - remainder) >> 31);
}

static inline int8_t requantize(const bench_int8_conv_params *p, int32_t acc,
                                int32_t multiplier, int32_t shift) {
  int32_t v = multiply_by_quantized_multiplier(acc, multiplier, shift) + p->output_offset;
  if (v < p->act_min) v = p->act_min;
  if (v > p->act_max) v = p->act_max;
  return (int8_t)v;
}

#if BENCH_DSP
/* Four int8 as one word (any alignment; compiles to one LDR). */
static inline uint32_t load4(const int8_t *p) {
  uint32_t v;
  memcpy(&v, p, sizeof v);
  return v;
}

/* Bytes 1 and 3 sign-extended to halfwords: SXTB16 with its rotate operand
 * (ACLE has no intrinsic for the rotated form). */
static inline uint32_t sxtb16_odd(uint32_t x) {
  uint32_t r;
  __asm__("sxtb16 %0, %1, ror #8" : "=r"(r) : "r"(x));
  return r;
}

/* Widens `count` (% 4 == 0) int8 values to int16 pairs in the SXTB16 order
 * (x0, x2), (x1, x3), ... adding `offset` to each; consecutive groups of four
 * are `step` words apart (2: packed, 4: interleaved with a second column). */
static inline void widen_with_offset(const int8_t *src, int32_t count, uint32_t offset2,
                              uint32_t *dst, int32_t step) {
  int32_t i;
  for (i = 0; i < count; i += 4) {
    const uint32_t v = load4(src + i);
    dst[0] = __sadd16(__sxtb16(v), offset2);
    dst[1] = __sadd16(sxtb16_odd(v), offset2);
    dst += step;
  }
}

#endif /* BENCH_DSP */

/* Plain C: one output, TFLite's loop order. */
static inline int32_t conv_output_c(const bench_int8_conv_params *p,
                                    const int8_t *input, const int8_t *filter, int32_t oy,
                                    int32_t ox, int32_t co, int32_t depthwise) {
  int32_t acc = 0;
  int32_t ky, kx, ci;
  for (ky = 0; ky < p->filter_height; ++ky) {
    const int32_t iy = oy * p->stride_height - p->pad_top + ky;
    if (iy < 0 || iy >= p->in_height) continue;
    for (kx = 0; kx < p->filter_width; ++kx) {
      const int32_t ix = ox * p->stride_width - p->pad_left + kx;
      const int8_t *x;
      if (ix < 0 || ix >= p->in_width) continue;
      x = input + ((size_t)iy * p->in_width + ix) * p->channels_in;
      if (depthwise) {
        acc += (x[co] + p->input_offset) *
               filter[((size_t)ky * p->filter_width + kx) * p->channels_out + co];
      } else {
        const int8_t *w =
            filter + (((size_t)co * p->filter_height + ky) * p->filter_width + kx) *
                         p->channels_in;
        for (ci = 0; ci < p->channels_in; ++ci) acc += (x[ci] + p->input_offset) * w[ci];
      }
    }
  }
  return acc;
}

#endif /* TFQP_BENCH_INT8_COMMON_H_ */
