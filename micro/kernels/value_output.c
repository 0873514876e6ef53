/* The int32 value output's transform table (see value_output.h). */
#include "value_output.h"

#include <stddef.h>

tfqp_status tfqp_value_table(const int32_t *transform, int32_t channels, int32_t padded,
                             int64_t max_abs_acc, int32_t *table, tfqp_error *error) {
  int32_t co;
  for (co = 0; co < TFQP_VALUE_CHANNEL_FIELDS * padded; ++co) table[co] = 0;
  for (co = 0; co < channels; ++co) {
    const int32_t *row = transform + (size_t)co * TFQP_TRANSFORM_VALUE_COLUMNS;
    const int64_t m = row[0] < 0 ? -(int64_t)row[0] : (int64_t)row[0];
    if (row[1] < 0 || row[1] > TFQP_VALUE_SHIFT_MAX) {
      return tfqp_fail(error, TFQP_ERROR_TENSOR_DATA, "transform shift must be in [0, 40]",
                       "transform[:, 1]", row[1]);
    }
    /* |M| * max|acc| < 2^62, without overflow (|M| <= 2^31, max|acc| < 2^31) */
    if (max_abs_acc > 0 && m >= (((int64_t)1 << 62) + max_abs_acc - 1) / max_abs_acc) {
      return tfqp_fail(error, TFQP_ERROR_TENSOR_DATA,
                       "int64 product could overflow: |multiplier| * max|accumulator| >= 2^62",
                       "transform[:, 0]", row[0]);
    }
    table[co] = row[0];
    table[padded + co] = row[1];
    table[2 * padded + co] = row[2];
  }
  return TFQP_OK;
}

void tfqp_value_add_residual(int32_t *output, const int32_t *residual, size_t count) {
  size_t i;
  for (i = 0; i < count; ++i) {
    const int64_t v = (int64_t)output[i] + (int64_t)residual[i];
    output[i] = v > INT32_MAX ? INT32_MAX : v < INT32_MIN ? INT32_MIN : (int32_t)v;
  }
}

tfqp_status tfqp_value_prepare_residual(int32_t value_output, const tfqp_tensor *inputs,
                                        int32_t input_count, const tfqp_tensor *output,
                                        int32_t *residual_given, size_t *output_count,
                                        tfqp_error *error) {
  const tfqp_tensor *residual = input_count == 4 ? &inputs[3] : NULL;
  tfqp_status s;
  int32_t i;
  *residual_given = residual != NULL;
  *output_count = output->bytes / sizeof(int32_t);
  if (residual == NULL) return TFQP_OK;
  if (!value_output) {
    return tfqp_fail(error, TFQP_ERROR_ARGUMENT,
                     "a residual input needs the int32 value output (int32_output 1)", "residual",
                     0);
  }
  if ((s = tfqp_tensor_check(residual, "residual", TFQP_TYPE_INT32, output->rank, error))) {
    return s;
  }
  for (i = 0; i < output->rank; ++i) {
    if ((s = tfqp_tensor_check_dim(residual, i, output->dims[i],
                                   "residual dims must equal the output's", "residual", error))) {
      return s;
    }
  }
  return TFQP_OK;
}
