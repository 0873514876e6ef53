/* The codes output's validation and table (see level_output.h). */
#include "level_output.h"

#include <stddef.h>

tfqp_status tfqp_levels_check_option(int32_t levels, const char *option, tfqp_error *error) {
  if (levels == 0) return TFQP_OK;
  return tfqp_check_option_range(levels, TFQP_LEVELS_MIN, TFQP_LEVELS_MAX,
                                 "must be 0 (no codes output) or in [2, 256]", option, error);
}

tfqp_status tfqp_levels_check_transform(const tfqp_tensor *transform, int32_t channels,
                                        int32_t levels, tfqp_error *error) {
  tfqp_status s;
  if ((s = tfqp_tensor_check(transform, "transform", TFQP_TYPE_INT32, 2, error)) ||
      (s = tfqp_tensor_check_dim(transform, 0, channels,
                                 "transform dim 0 must equal the output channels", "transform",
                                 error))) {
    return s;
  }
  return tfqp_tensor_check_dim(transform, 1, TFQP_LEVELS_COLUMNS(levels),
                               "transform must be [Cout, 1 + output_levels] (d, base, "
                               "output_levels - 1 thresholds) for the codes output",
                               "transform", error);
}

tfqp_status tfqp_levels_check_rows(const int32_t *transform, int32_t channels, int32_t levels,
                                   tfqp_error *error) {
  const int32_t count = levels - 1;
  int32_t co, i;
  for (co = 0; co < channels; ++co) {
    const int32_t *row = tfqp_level_row(transform, levels, co);
    if (row[0] != 1 && row[0] != -1) {
      return tfqp_fail(error, TFQP_ERROR_TENSOR_DATA,
                       "transform d must be +1 or -1 (value: the output channel)",
                       "transform[:, 0]", co);
    }
    if (row[1] < -128 || row[1] > 127 - count) {
      return tfqp_fail(error, TFQP_ERROR_TENSOR_DATA,
                       "transform base must be in [-128, 127 - (output_levels - 1)] (value: the "
                       "output channel)",
                       "transform[:, 1]", co);
    }
    for (i = 1; i < count; ++i) {
      if (row[2 + i] < row[1 + i]) {
        return tfqp_fail(error, TFQP_ERROR_TENSOR_DATA,
                         "transform thresholds must be non-decreasing along a row (value: the "
                         "output channel)",
                         "transform[:, 2:]", co);
      }
    }
  }
  return TFQP_OK;
}
