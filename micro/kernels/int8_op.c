/* What the int8-input ops share (see int8_op.h). */
#include "int8_op.h"

void tfqp_int8_op_defaults(int32_t *first, int32_t count, uint32_t present, int32_t first_bit) {
  int32_t i;
  for (i = 0; i < count; ++i) {
    if (!(present & (1u << (first_bit + i)))) first[i] = 0;
  }
}

tfqp_status tfqp_int8_op_check_output_options(int32_t int32_output, int32_t output_levels,
                                              tfqp_error *error) {
  tfqp_status s;
  if ((s = tfqp_check_option_range(int32_output, 0, 1, "must be 0 or 1", "int32_output",
                                   error)) ||
      (s = tfqp_levels_check_option(output_levels, "output_levels", error))) {
    return s;
  }
  if (int32_output && output_levels != 0) {
    return tfqp_fail(error, TFQP_ERROR_OPTIONS,
                     "output_levels (the codes output) excludes int32_output 1 (the value "
                     "output)",
                     "output_levels", output_levels);
  }
  return TFQP_OK;
}

int32_t tfqp_int8_op_output_depth(int32_t int32_output, int32_t output_levels,
                                  int32_t channels_out) {
  return int32_output || output_levels != 0 ? channels_out : TFQP_WORDS(channels_out);
}

tfqp_status tfqp_int8_op_check_output_type(int32_t output_levels, tfqp_type output_type,
                                           tfqp_error *error) {
  if (output_levels != 0 && output_type != TFQP_TYPE_INT8) {
    return tfqp_fail(error, TFQP_ERROR_TENSOR_TYPE,
                     "output must be int8 (codes) with output_levels", "output", output_type);
  }
  if (output_levels == 0 && output_type != TFQP_TYPE_INT32) {
    return tfqp_fail(error, TFQP_ERROR_TENSOR_TYPE,
                     "output must be int32 (packed bits, or values with int32_output 1)",
                     "output", output_type);
  }
  return TFQP_OK;
}

tfqp_status tfqp_int8_op_check_output(int32_t int32_output, int32_t output_levels,
                                      const tfqp_tensor *output,
                                      const tfqp_tensor *transform, int32_t rank,
                                      const int32_t *outer, int32_t channels_out,
                                      const char *weights_role, tfqp_error *error) {
  tfqp_status s;
  (void)weights_role;
  if (output == NULL || transform == NULL) {
    return tfqp_fail(error, TFQP_ERROR_ARGUMENT, "NULL argument", "output", 0);
  }
  if (output_levels != 0) {
    if ((s = tfqp_int8_op_check_output_type(output_levels, output->type, error)) ||
        (s = tfqp_tensor_check_output(output, TFQP_TYPE_INT8, rank, outer, channels_out,
                                      "codes output depth must equal weights dim 0", error))) {
      return s;
    }
    return tfqp_levels_check_transform(transform, channels_out, output_levels, error);
  }
  if (output->type != TFQP_TYPE_INT32) {
    return tfqp_fail(error, TFQP_ERROR_TENSOR_TYPE,
                     "output must be int32 (packed bits, or values with int32_output 1)",
                     "output", output->type);
  }
  if ((s = tfqp_tensor_check_output(output, TFQP_TYPE_INT32, rank, outer,
                                    int32_output ? channels_out : TFQP_WORDS(channels_out),
                                    int32_output
                                        ? "int32 value output depth must equal weights dim 0"
                                        : "packed output depth must equal ceil(weights dim 0 / 32)",
                                    error)) ||
      (s = tfqp_tensor_check(transform, "transform", TFQP_TYPE_INT32, 2, error)) ||
      (s = tfqp_tensor_check_dim(transform, 0, channels_out,
                                 "transform dim 0 must equal weights dim 0", "transform",
                                 error)) ||
      (s = tfqp_tensor_check_dim(transform, 1, int32_output ? TFQP_TRANSFORM_VALUE_COLUMNS : 2,
                                 int32_output
                                     ? "transform must be [Cout, 3] for int32 value output"
                                     : "transform must be [Cout, 2] for packed output",
                                 "transform", error))) {
    return s;
  }
  return TFQP_OK;
}

size_t tfqp_int8_op_table_bytes(int32_t int32_output, int32_t output_levels,
                                int32_t channels_out) {
  if (output_levels != 0) return 0; /* the transform rows are the table */
  return (size_t)(int32_output ? TFQP_VALUE_CHANNEL_FIELDS : 2) * (size_t)channels_out *
         sizeof(int32_t);
}

tfqp_status tfqp_int8_op_check_weights(const tfqp_tensor *weights, int32_t rank,
                                       int32_t *is_int16, tfqp_error *error) {
  if (weights == NULL) return tfqp_fail(error, TFQP_ERROR_ARGUMENT, "tensor missing", "weights", 0);
  if (weights->type != TFQP_TYPE_INT8 && weights->type != TFQP_TYPE_INT16) {
    return tfqp_fail(error, TFQP_ERROR_TENSOR_TYPE, "weights must be int8 or int16", "weights",
                     weights->type);
  }
  *is_int16 = weights->type == TFQP_TYPE_INT16;
  return tfqp_tensor_check(weights, "weights", weights->type, rank, error);
}

tfqp_status tfqp_int8_op_init_table(int32_t int32_output, int32_t output_levels,
                                    int32_t codes_only, const void *weights,
                                    int32_t weights_int16, const int32_t *transform,
                                    int32_t channels_out, int32_t taps, int32_t *table,
                                    size_t table_bytes, size_t needed_bytes, tfqp_error *error) {
  const size_t count = (size_t)channels_out * (size_t)taps;
  int64_t max_abs_acc = (int64_t)taps * TFQP_INT8_OP_MAX_PRODUCT;
  size_t i;
  int32_t co;
  (void)codes_only; /* eval reads it: the rows' bases are validated either way */
  if (weights == NULL || transform == NULL || (table == NULL && needed_bytes > 0)) {
    return tfqp_fail(error, TFQP_ERROR_ARGUMENT, "NULL argument", "table", 0);
  }
  if (table_bytes < needed_bytes || ((uintptr_t)table % sizeof(int32_t)) != 0) {
    return tfqp_fail(error, TFQP_ERROR_BUFFER,
                     "table smaller than params.table_bytes or not 4-byte aligned", "table",
                     (int64_t)table_bytes);
  }
  if (!weights_int16) {
    /* symmetric int8 weights: -128 would break the accumulator bound */
    const int8_t *w = (const int8_t *)weights;
    for (i = 0; i < count; ++i) {
      if (w[i] == -128) {
        return tfqp_fail(error, TFQP_ERROR_TENSOR_DATA,
                         "weights must be in [-127, 127] (value: the flat index)", "weights",
                         (int64_t)i);
      }
    }
  } else {
    /* every partial sum of a channel is bounded by 255 * sum |w| */
    const int16_t *w = (const int16_t *)weights;
    max_abs_acc = 0;
    for (co = 0; co < channels_out; ++co) {
      int64_t sum = 0;
      for (i = 0; i < (size_t)taps; ++i) {
        const int32_t v = w[(size_t)co * (size_t)taps + i];
        sum += v < 0 ? -(int64_t)v : (int64_t)v;
      }
      if (sum * 255 > INT32_MAX) {
        return tfqp_fail(error, TFQP_ERROR_TENSOR_DATA,
                         "int16 weights: sum |w| * 255 over a channel must be < 2^31 (value: "
                         "the channel)",
                         "weights", co);
      }
      if (sum * 255 > max_abs_acc) max_abs_acc = sum * 255;
    }
  }
  if (output_levels != 0) {
    return tfqp_levels_check_rows(transform, channels_out, output_levels, error);
  }
  if (int32_output) {
    return tfqp_value_table(transform, channels_out, channels_out, max_abs_acc, table, error);
  }
  for (co = 0; co < channels_out; ++co) {
    const int32_t *row = transform + (size_t)co * 2;
    if (row[0] != 1 && row[0] != -1) {
      return tfqp_fail(error, TFQP_ERROR_TENSOR_DATA, "transform direction must be +1 or -1",
                       "transform[:, 0]", row[0]);
    }
    table[co] = row[0];
    table[channels_out + co] = row[1];
  }
  return TFQP_OK;
}
