/* Internal: the per-channel output transform shared by TFQP_BCONV2D and
 * TFQP_BFULLY_CONNECTED.
 *
 * With x = popcount(a XOR s) over the valid taps, n valid taps, and
 * ps = popcount(s) over them, D = n - 2x and S = n - 2ps, so the contract's
 *   acc = W * ((P + N) * S + (P - N) * D) / 2 + bias
 *       = W * (P * n - (P + N) * ps) + bias  -  W * (P - N) * x
 *       = base - wpn * x
 * with no division. base depends on the channel and on the set of valid taps
 * (precomputed per border region), wpn = W * (P - N) on the channel only.
 * Validation bounds every accumulator by 2^31 - 1, so base - wpn * x computed
 * modulo 2^32 is exact. For the packed output D = dbase - 2x with dbase = n
 * (or K - 2 * popcount of s over the padded taps with pad_value 1).
 *
 * Table layout (int32), channels padded to a multiple of TFQP_CHANNEL_BLOCK
 * (`cpad`; padded channels are all zero and their outputs are never written):
 *   int8 output:   wpn[cpad], multiplier[cpad], left_shift[cpad], right_shift[cpad]
 *   packed output: direction[cpad], threshold[cpad]
 * then base[region][cpad], then (AVX2 builds) the filter repacked for the
 * vector kernel.
 */
#ifndef TFQP_KERNELS_BINARY_OUTPUT_H_
#define TFQP_KERNELS_BINARY_OUTPUT_H_

#include <stdint.h>

#include "tfqp/requantize.h"
#include "tfqp/status.h"
#include "xnor_popcount.h"

#define TFQP_TRANSFORM_INT8_COLUMNS 4   /* W, bias, multiplier, shift */
#define TFQP_TRANSFORM_PACKED_COLUMNS 2 /* direction, threshold */
#define TFQP_INT8_CHANNEL_FIELDS 4      /* wpn, multiplier, left, right */
#define TFQP_PACKED_CHANNEL_FIELDS 2    /* direction, threshold */

#if TFQP_HAVE_AVX2
#define TFQP_CHANNEL_BLOCK 16 /* two vectors of eight 32-bit lanes */
#else
#define TFQP_CHANNEL_BLOCK 1
#endif

/* Channels rounded up to TFQP_CHANNEL_BLOCK. */
static inline int64_t tfqp_padded_channels(int32_t channels) {
  return ((int64_t)channels + TFQP_CHANNEL_BLOCK - 1) / TFQP_CHANNEL_BLOCK * TFQP_CHANNEL_BLOCK;
}

/* Checks the transform rows (see tfqp_bconv2d_init_table) and writes the
 * per-channel constants (layout above). `taps` = K. */
tfqp_status tfqp_binary_channel_table(const int32_t *transform,
                                      int32_t channels_out, int32_t padded_channels,
                                      int32_t output_packed, int32_t input_pos,
                                      int32_t input_neg, int32_t taps,
                                      int32_t *table, tfqp_error *error);

/* base of channel co (int8 output) for a region with n valid taps, ps of them
 * with weight bit 1, and (pad_value 1) padded_ps weight bits 1 over the padded
 * taps, which count as inputs +1: x grows by padded_ps there. */
int32_t tfqp_binary_base_int8(const int32_t *transform_row, int32_t input_pos,
                              int32_t input_neg, int32_t n, int32_t ps,
                              int32_t padded_ps);

static inline int8_t tfqp_binary_output_int8(int32_t base, int32_t wpn,
                                             uint32_t x, int32_t multiplier,
                                             int32_t left, int32_t right,
                                             int32_t zero_point, int32_t act_min,
                                             int32_t act_max) {
  const int32_t acc = (int32_t)((uint32_t)base - (uint32_t)wpn * x);
  const int32_t shifted = (int32_t)((uint32_t)acc << left);
  /* clamp(v + zp, act_min, act_max) = clamp(v, act_min - zp, act_max - zp) + zp,
   * without the int32 sum v + zp, which wraps for v near -2^31 or 2^31 - 1 */
  const int32_t low = act_min - zero_point;
  const int32_t high = act_max - zero_point;
  int32_t v = tfqp_rounding_divide_by_pot(
      tfqp_saturating_rounding_doubling_high_mul(shifted, multiplier), right);
  if (v < low) v = low;
  if (v > high) v = high;
  return (int8_t)(v + zero_point);
}

/* 1 iff direction * D < threshold, D = dbase - 2x (|D| <= K < 2^30). */
static inline uint32_t tfqp_binary_output_bit(int32_t dbase, uint32_t x,
                                              int32_t direction,
                                              int32_t threshold) {
  const int32_t d = dbase - 2 * (int32_t)x;
  return (uint32_t)((direction > 0 ? d : -d) < threshold);
}

#endif /* TFQP_KERNELS_BINARY_OUTPUT_H_ */
