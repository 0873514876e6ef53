/* Internal: the Cortex-M (Armv7E-M / Armv8-M Main with the DSP extension)
 * XOR-popcount kernels, selected at compile time; they produce exactly the
 * counts of the portable path (see xnor_arm.c for how).
 *
 *   TFQP_HAVE_ARM_DSP  Thumb-2 with the DSP extension (Cortex-M4/M7/M33/M55...)
 *                      and not TFQP_PORTABLE: bconv2d and bfully_connected run
 *                      their XOR-popcount loops in the assembly kernels below.
 *
 * The kernels count x_c = sum_j popcount(window[j] ^ f[c * n + j]), j < n, for
 * up to 32 channels c at once: `window` is the receptive field of one output
 * (conv: gathered by the caller, padded taps 0; fc: the input row), the
 * filters of consecutive channels are n words apart. Internally they add 17 * x
 * to a 32-bit accumulator per channel (see xnor_arm.c).
 */
#ifndef TFQP_KERNELS_XNOR_ARM_H_
#define TFQP_KERNELS_XNOR_ARM_H_

#include <stddef.h>
#include <stdint.h>

#include "tfqp/binary_op.h"
#include "tfqp/formats.h"

#if !defined(TFQP_PORTABLE) && defined(__thumb2__) && defined(__ARM_FEATURE_DSP) && \
    __ARM_FEATURE_DSP && (defined(__GNUC__) || defined(__clang__))
#define TFQP_HAVE_ARM_DSP 1
#else
#define TFQP_HAVE_ARM_DSP 0
#endif

#if TFQP_HAVE_ARM_DSP

/* Accumulator start for a "count >= threshold" bit: after adding 17 * x the
 * accumulator is >= 2^31 exactly when x >= threshold (flip = 0), or exactly
 * when x < threshold (flip = 1, by wrapping past 2^32). threshold is clamped
 * to [0, taps + 1]; 17 * (taps + 1) < 2^31 (see tfqp_arm_supported). */
uint32_t tfqp_arm_bit_start(int64_t threshold, int32_t taps, int32_t flip);

/* The accumulator start of a packed output bit "direction * D < threshold"
 * when D = e - 2x (e: D at x = 0) and x <= taps:
 *   direction +1: e - 2x < threshold  <=>  x >= floor((e - threshold) / 2) + 1
 *   direction -1: 2x - e < threshold  <=>  x <  ceil((e + threshold) / 2) */
uint32_t tfqp_arm_packed_start(int32_t direction, int32_t threshold, int64_t e, int32_t taps);

/* Whether rows of `taps` bits fit the accumulators (17 * (taps + 1) < 2^31). */
static inline int tfqp_arm_supported(int64_t taps) {
  return taps >= 0 && 17 * (taps + 1) < ((int64_t)1 << 31);
}

/* Output bits of channels [0, count), count in [1, 32]: bit c is set iff
 * start[c] + 17 * x_c >= 2^31 (mod 2^32), x_c over the n words of `window`
 * and of f + c * n. */
uint32_t tfqp_arm_xor_bits(const tfqp_word *window, const tfqp_word *f, int32_t n,
                           const uint32_t *start, int32_t count);

/* A run of output pixels of a conv whose window is three rows of three words
 * (a 3x3 filter on <= 32 input channels, dilation_width 1), for one block of
 * 32 output channels with packed output; see tfqp_arm_conv9_row_asm. */
typedef struct {
  tfqp_word *col;               /* 9 words of scratch */
  const tfqp_word *pos;         /* first window row of the first pixel */
  uint32_t row_stride;          /* bytes from one window row to the next */
  uint32_t step;                /* bytes from one pixel's window to the next's */
  int32_t pixels;               /* >= 1 */
  const tfqp_word *f;           /* the 32 channels' filters, 9 words each */
  const uint32_t *const *starts; /* per pixel: the 32 accumulator starts */
  tfqp_word *out;               /* output word of the first pixel */
  uint32_t out_stride;          /* bytes from one pixel's output word to the next's */
} tfqp_arm_row9;

void tfqp_arm_conv9_row_asm(const tfqp_arm_row9 *job);

/* int8 outputs in the kernels (TFQP_OUT8 in xnor_arm.c): from the count 17x
 * of channel c, one record of TFQP_ARM_OUT8_RECORD_WORDS words per channel
 * (and border region: B depends on it), {B, W, M, M2, C low, C high, K,
 * shift | flags}, gives
 *   a = B - W * 17x    (MLS, mod 2^32) = 2^left * acc exactly (|a| < 2^31)
 *   N = C + a (M + M2) + K [a < 0]      (three SMLALs, int64)
 *   out = ssat8(high word of N >> shift)
 * TFLite computes v = floor((a M + 2^30) / 2^31) (SaturatingRoundingDoubling-
 * HighMul, which never saturates here: a != INT32_MIN) and then
 * floor((v + 2^(e-1) - [v < 0]) / 2^e) + zero_point; nested floors make that
 * one floor of N / 2^(31+e) with, for e > 0, C = 2^30 + 2^(30+e) +
 * zero_point 2^(31+e), K = -2^31, M2 = 0 and shift e - 1; for e = 0 (no
 * rounding term) N doubled: M2 = M, C = 2^31 + zero_point 2^32, K = 0, shift
 * 0. With M > 0 (a negative M is stored as -M with B and W negated) a < 0
 * differs from v < 0 only where v = 0, whose output is the same either way.
 * The last channel's record carries TFQP_ARM_OUT8_LAST. act_min / act_max
 * narrower than int8 are applied after (tfqp_arm_clamp_int8).
 *
 * The op's table keeps one template per channel, B holding the factor that
 * turns a region's base into B (tfqp_arm_out8_place); a conv builds the
 * records of one row of border regions at a time in its scratch, a fully-
 * connected layer (one region) keeps them in the table. */
#define TFQP_ARM_OUT8_RECORD_WORDS 8
#define TFQP_ARM_OUT8_LAST 256u

/* Writes the template of a channel whose int8 output is
 * tfqp_binary_output_int8(base, wpn, x, ...) and whose accumulator is bounded
 * by max_abs_acc; 0 (not usable) when M = INT32_MIN, when TFLite's left
 * shift could wrap (|acc| 2^left >= 2^31), or N could leave int64 (e > 24, or
 * e = 0 with |a M| near 2^62). Channels whose |v| < 2^(e-1) (every output the
 * zero point) get a constant record. */
int tfqp_arm_out8_record(uint32_t *record, int32_t wpn, int32_t multiplier, int32_t left,
                         int32_t right, int32_t zero_point, int64_t max_abs_acc, int32_t last);

/* |W| * max(|P|, |N|) * taps + |bias|: the bound validation puts on every
 * accumulator of a transform row (W, bias, ...). */
int64_t tfqp_arm_out8_max_abs_acc(const int32_t *transform_row, int32_t input_pos,
                                  int32_t input_neg, int32_t taps);

/* The templates of every channel (table: the per-channel constants,
 * binary_output.h); 0 when a channel's is not usable. */
int tfqp_arm_out8_records(uint32_t *records, const int32_t *table, int32_t cpad,
                          const int32_t *transform, const tfqp_binary_io *io, int32_t taps);

/* The records of `channels` channels for the region whose values are `base`
 * (records may be templates itself). */
void tfqp_arm_out8_place(uint32_t *records, const uint32_t *templates, const int32_t *base,
                         int32_t channels);

/* Places the templates at the end of an op's table of *table_bytes bytes (a
 * usable flag, then the templates): returns their word offset and grows
 * *table_bytes, or 0 (none: the int8 outputs are requantized in C) when the
 * table would exceed TFQP_MAX_BUFFER_BYTES. */
static inline int32_t tfqp_arm_out8_table(int32_t channels, size_t *table_bytes) {
  const uint64_t bytes =
      (1 + (uint64_t)channels * TFQP_ARM_OUT8_RECORD_WORDS) * sizeof(uint32_t);
  const int32_t offset = (int32_t)(*table_bytes / sizeof(int32_t));
  if (bytes > (uint64_t)TFQP_MAX_BUFFER_BYTES - (uint64_t)*table_bytes) return 0;
  *table_bytes += (size_t)bytes;
  return offset;
}

/* The table's templates (NULL when it has none or a channel's was not
 * usable). */
static inline const uint32_t *tfqp_arm_out8_templates(const int32_t *table, int32_t table_arm) {
  if (table_arm == 0 || table[table_arm] == 0) return NULL;
  return (const uint32_t *)(table + table_arm + 1);
}

/* Clamps `count` int8 outputs to [act_min, act_max] (nothing to do for the
 * full range, which the kernels' SSAT gives). */
void tfqp_arm_clamp_int8(int8_t *out, size_t count, int32_t act_min, int32_t act_max);

/* tfqp_arm_conv9_row_asm with int8 outputs: every channel of each pixel; the
 * job's f: every channel's filter, starts[pixel]: the records of the pixel's
 * region, out: the first pixel's first int8 output (cast), out_stride: the
 * channel count (the pixels' bytes are consecutive). */
void tfqp_arm_conv9_out8_row_asm(const tfqp_arm_row9 *job);

/* For each of the kh (>= 1) row pointers: copies `run` (>= 1) words from
 * rows[k] + offset_bytes to col, one run after the other. */
void tfqp_arm_gather(tfqp_word *col, const tfqp_word *const *rows, int32_t kh,
                     uint32_t offset_bytes, int32_t run);

/* x[c] = the count of channel c, c < count (any count >= 1). */
void tfqp_arm_xor_counts(const tfqp_word *window, const tfqp_word *f, int32_t n,
                         uint32_t *x, int32_t count);

/* tfqp_binary_output_int8 (binary_output.h), the same value for every input,
 * in about half the instructions:
 * - SaturatingRoundingDoublingHighMul(a, b) = floor((a * b + 2^30) / 2^31):
 *   gemmlowp truncates (ab + nudge) / 2^31 toward zero with nudge 1 - 2^30
 *   for negative products, and for those ceil((ab + 1 - 2^30) / 2^31) is
 *   floor((ab + 2^30) / 2^31) again. The 64-bit sum's high word doubled with
 *   QADD saturates exactly in gemmlowp's one overflow case, a = b = INT32_MIN.
 * - RoundingDivideByPOT(v, e) = (v >> e) + (remainder > threshold), with the
 *   comparison taken from the sign of threshold - remainder (both < 2^31). */
static inline int8_t tfqp_arm_output_int8(int32_t base, int32_t wpn, uint32_t x,
                                          int32_t multiplier, int32_t left, int32_t right,
                                          int32_t zero_point, int32_t act_min,
                                          int32_t act_max) {
  const int32_t acc = (int32_t)((uint32_t)base - (uint32_t)wpn * x);
  const int64_t product =
      (int64_t)(int32_t)((uint32_t)acc << left) * multiplier + ((int64_t)1 << 30);
  const int32_t high = (int32_t)(uint32_t)((uint64_t)product >> 32);
  int32_t doubled, v;
  uint32_t mask, remainder, threshold;
  __asm__("qadd %0, %1, %1" : "=r"(doubled) : "r"(high));
  v = (int32_t)((uint32_t)doubled | ((uint32_t)product >> 31));
  mask = (1u << right) - 1u;
  remainder = (uint32_t)v & mask;
  threshold = (mask >> 1) + ((uint32_t)v >> 31);
  v = (v >> right) + (int32_t)((threshold - remainder) >> 31);
  /* the clamp before the zero point, as tfqp_binary_output_int8 */
  if (v < act_min - zero_point) v = act_min - zero_point;
  if (v > act_max - zero_point) v = act_max - zero_point;
  return (int8_t)(v + zero_point);
}

/* The outputs of output pixel `pixel` (a conv pixel, an fc row) from its
 * window of n words, the filters of consecutive channels n words apart; table
 * layout as binary_output.h, `base` the pixel's region values (packed output:
 * the accumulator starts). int8 output: `records` the region's records (NULL:
 * none), x: Cout words of scratch for the path without them. */
void tfqp_arm_outputs(const tfqp_word *window, const tfqp_word *f, int32_t n,
                      const tfqp_binary_io *io, const int32_t *table, int32_t cpad,
                      const int32_t *base, const uint32_t *records, size_t pixel, uint32_t *x,
                      void *output);

#endif /* TFQP_HAVE_ARM_DSP */

#endif /* TFQP_KERNELS_XNOR_ARM_H_ */
