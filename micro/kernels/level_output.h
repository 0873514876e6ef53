/* Internal: the "codes output" (option output_levels) of the int8-activation
 * ops TFQP_SHIFT_CONV2D, TFQP_SHIFT_DEPTHWISE_CONV2D,
 * TFQP_SHIFT_FULLY_CONNECTED, TFQP_CONV2D_INT8 and TFQP_FULLY_CONNECTED_INT8
 * (contract in tfqp/shift_layer.h and tfqp/conv2d_int8.h):
 *
 *   out = base + #{ i < L : d * A >= t_i }
 *
 * with L = output_levels - 1 thresholds per output channel from the transform
 * rows (d, base, t_1 .. t_L), A the op's exact int32 accumulator. A trained
 * k-bit activation grid's code is a step function of A whose steps the
 * converter finds by evaluating Keras's own float computation, so the op
 * reproduces Keras's rounding (half to even, after BN / bias / clip) exactly
 * where TFLite's requantization (half away from zero) would not.
 *
 * The op reads the rows from its constant transform tensor (INT32 [Cout,
 * 1 + output_levels], in flash on a microcontroller), not from a copy in its
 * table: the thresholds are most of a k-bit layer's constants (15 words per
 * channel at 4 bits), and a RAM copy of them would cost a 4-bit model more
 * arena than packing its activations saves. init_table validates the rows
 * once (tfqp_levels_check_rows); every path (portable, AVX2, AVX-512,
 * Cortex-M) computes d * A its own way and counts with tfqp_level_count, so
 * the bytes agree.
 */
#ifndef TFQP_KERNELS_LEVEL_OUTPUT_H_
#define TFQP_KERNELS_LEVEL_OUTPUT_H_

#include <stddef.h>
#include <stdint.h>

#include "tfqp/status.h"
#include "tfqp/tensor.h"

#define TFQP_LEVELS_MIN 2
#define TFQP_LEVELS_MAX 256
#define TFQP_LEVELS_COLUMNS(levels) (2 + (levels) - 1) /* d, base, t_1 .. t_L */

/* #{ i < count : t[i] <= v } of non-decreasing t[0 .. count): a branch-light
 * binary search (count <= 255: at most 8 halvings), straight compares for
 * count <= 3, unrolled for count 15. */
static inline int32_t tfqp_level_count(const int32_t *t, int32_t count, int32_t v) {
  const int32_t *first = t;
  int32_t n = count;
  if (count <= 3) {
    int32_t u = 0, i;
    for (i = 0; i < count; ++i) u += t[i] <= v;
    return u;
  }
  if (count == 15) {
    /* the 16-level (4-bit) codes output, every output of a k-bit layer:
     * the four halvings unrolled (half the instructions of the loop) */
    const int32_t *p = t;
    if (p[7] <= v) p += 8;
    if (p[3] <= v) p += 4;
    if (p[1] <= v) p += 2;
    if (p[0] <= v) p += 1;
    return (int32_t)(p - t);
  }
  /* invariant: every t before `first` is <= v, every t from first + n on > v */
  while (n > 1) {
    const int32_t half = n / 2;
    first = first[half - 1] <= v ? first + half : first;
    n -= half;
  }
  return (int32_t)(first - t) + (first[0] <= v);
}

/* Channel co's transform row (d, base, t_1 .. t_L). */
static inline const int32_t *tfqp_level_row(const int32_t *transform, int32_t levels,
                                            int32_t co) {
  return transform + (size_t)co * (size_t)TFQP_LEVELS_COLUMNS(levels);
}

/* The sign d of channel co. */
static inline int32_t tfqp_level_direction(const int32_t *transform, int32_t levels,
                                           int32_t co) {
  return tfqp_level_row(transform, levels, co)[0];
}

/* Channel co's output from its signed accumulator d * A: base + the count of
 * thresholds reached, or the count alone when `codes_only` (packed codes:
 * the base is validated, not added). */
static inline int32_t tfqp_level_output(const int32_t *transform, int32_t levels,
                                        int32_t codes_only, int32_t co, int32_t signed_acc) {
  const int32_t *row = tfqp_level_row(transform, levels, co);
  return (codes_only ? 0 : row[1]) + tfqp_level_count(row + 2, levels - 1, signed_acc);
}

/* Checks output_levels: 0 (absent) or in [2, 256]; `option` names it. */
tfqp_status tfqp_levels_check_option(int32_t levels, const char *option, tfqp_error *error);

/* Checks the transform tensor: int32 [channels, 2 + levels - 1]. */
tfqp_status tfqp_levels_check_transform(const tfqp_tensor *transform, int32_t channels,
                                        int32_t levels, tfqp_error *error);

/* Checks every transform row (d in {+1, -1}; base in [-128, 127 - L];
 * t_1 <= ... <= t_L), once, at init_table: eval then reads them as they are. */
tfqp_status tfqp_levels_check_rows(const int32_t *transform, int32_t channels, int32_t levels,
                                   tfqp_error *error);

#endif /* TFQP_KERNELS_LEVEL_OUTPUT_H_ */
