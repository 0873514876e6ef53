/* Internal: the int32 value output of TFQP_BCONV2D / TFQP_BFULLY_CONNECTED
 * (option int32_output 1) and of TFQP_CONV2D_INT8 / TFQP_FULLY_CONNECTED_INT8.
 *
 * Transform int32 [Cout, 3], rows (multiplier M, shift s, bias B), of an exact
 * accumulator D (the binary ops' D, the int8 ops' A):
 *   value = saturate_int32(B + ((M * D + (s > 0 ? 2^(s-1) : 0)) >> s))
 * in int64, where >> is the floor (arithmetic) shift of a two's complement
 * int64: round half up. s in [0, TFQP_VALUE_SHIFT_MAX]; init_table checks
 * |M| * max|D| < 2^62, so M * D plus the rounding term cannot overflow.
 * (C99 leaves >> of a negative value implementation-defined; every compiler
 * these kernels target shifts arithmetically, as TFLite assumes too.)
 *
 * Residual (optional input 3 of these ops, int32 values shaped like the output):
 * added after the value is computed and saturated, saturating again:
 *   output = saturate_int32(value + residual)
 * (a residual stream's shortcut, fused into the layer that computes the other
 * operand of the Add).
 *
 * Table: the rows' three fields per channel, channels padded to the op's
 * block: multiplier[cpad], shift[cpad], bias[cpad].
 */
#ifndef TFQP_KERNELS_VALUE_OUTPUT_H_
#define TFQP_KERNELS_VALUE_OUTPUT_H_

#include <stdint.h>

#include <stddef.h>

#include "tfqp/status.h"
#include "tfqp/tensor.h"

/* Keeps a cold path (the value output) out of the hot eval it is called from,
 * so that it does not change how the compiler builds the hot loops. */
#if defined(__GNUC__) || defined(__clang__)
#define TFQP_NOINLINE __attribute__((noinline))
#else
#define TFQP_NOINLINE
#endif

#define TFQP_TRANSFORM_VALUE_COLUMNS 3 /* multiplier, shift, bias */
#define TFQP_VALUE_CHANNEL_FIELDS 3
#define TFQP_VALUE_SHIFT_MAX 40

static inline int32_t tfqp_value_output(int64_t acc, int32_t multiplier, int32_t shift,
                                        int32_t bias) {
  const int64_t rounding = shift > 0 ? (int64_t)1 << (shift - 1) : 0;
  const int64_t v = (((int64_t)multiplier * acc + rounding) >> shift) + bias;
  return v > INT32_MAX ? INT32_MAX : v < INT32_MIN ? INT32_MIN : (int32_t)v;
}

/* output[i] = saturate_int32(output[i] + residual[i]) for `count` values. */
void tfqp_value_add_residual(int32_t *output, const int32_t *residual, size_t count);

/* prepare, after the op's own checks: input 3, when input_count is 4, is a
 * residual (int32, the output's rank and dims), allowed only with the int32 value
 * output. Sets *residual (0 / 1) and *output_count (the output's elements). */
tfqp_status tfqp_value_prepare_residual(int32_t value_output, const tfqp_tensor *inputs,
                                        int32_t input_count, const tfqp_tensor *output,
                                        int32_t *residual, size_t *output_count,
                                        tfqp_error *error);

/* Checks every row (shift in [0, TFQP_VALUE_SHIFT_MAX]; |M| * max_abs_acc <
 * 2^62) and writes the table's three fields (channels [channels, padded) 0). */
tfqp_status tfqp_value_table(const int32_t *transform, int32_t channels, int32_t padded,
                             int64_t max_abs_acc, int32_t *table, tfqp_error *error);

#endif /* TFQP_KERNELS_VALUE_OUTPUT_H_ */
