/* Per-channel output transform of the binary ops (see binary_output.h). */
#include "binary_output.h"

#include <stddef.h>

static int64_t abs64(int64_t v) { return v < 0 ? -v : v; }

tfqp_status tfqp_binary_channel_table(const int32_t *transform,
                                      int32_t channels_out, int32_t padded_channels,
                                      int32_t output_packed, int32_t input_pos,
                                      int32_t input_neg, int32_t taps,
                                      int32_t *table, tfqp_error *error) {
  const int32_t fields = output_packed ? TFQP_PACKED_CHANNEL_FIELDS : TFQP_INT8_CHANNEL_FIELDS;
  int32_t co, f;
  for (f = 0; f < fields * padded_channels; ++f) table[f] = 0;
  if (output_packed) {
    for (co = 0; co < channels_out; ++co) {
      const int32_t *row = transform + (size_t)co * TFQP_TRANSFORM_PACKED_COLUMNS;
      if (row[0] != 1 && row[0] != -1) {
        return tfqp_fail(error, TFQP_ERROR_TENSOR_DATA, "transform direction must be +1 or -1",
                         "transform[:, 0]", row[0]);
      }
      table[co] = row[0];
      table[padded_channels + co] = row[1];
    }
    return TFQP_OK;
  }
  {
    const int64_t max_input = abs64(input_pos) > abs64(input_neg) ? abs64(input_pos)
                                                                   : abs64(input_neg);
    const int64_t per_weight = max_input * taps; /* < 2^8 * 2^30 */
    for (co = 0; co < channels_out; ++co) {
      const int32_t *row = transform + (size_t)co * TFQP_TRANSFORM_INT8_COLUMNS;
      const int64_t w = abs64(row[0]);
      const int64_t bias = abs64(row[1]);
      if (row[3] < -31 || row[3] > 31) {
        return tfqp_fail(error, TFQP_ERROR_TENSOR_DATA, "transform shift must be in [-31, 31]",
                         "transform[:, 3]", row[3]);
      }
      /* |W| * max(|P|,|N|) * K + |bias| <= INT32_MAX, without overflow */
      if (bias > INT32_MAX || (per_weight > 0 && w > (INT32_MAX - bias) / per_weight)) {
        return tfqp_fail(error, TFQP_ERROR_TENSOR_DATA,
                         "int32 accumulator could overflow: |W| * max(|P|,|N|) * K + |bias| > "
                         "2^31-1",
                         "transform[:, 0]", row[0]);
      }
      if (w * abs64((int64_t)input_pos - input_neg) > INT32_MAX) {
        return tfqp_fail(error, TFQP_ERROR_TENSOR_DATA, "|W * (P - N)| exceeds 2^31-1",
                         "transform[:, 0]", row[0]);
      }
      table[co] = (int32_t)(row[0] * ((int64_t)input_pos - input_neg));
      table[padded_channels + co] = row[2];
      table[2 * padded_channels + co] = row[3] > 0 ? row[3] : 0;
      table[3 * padded_channels + co] = row[3] > 0 ? 0 : -row[3];
    }
  }
  return TFQP_OK;
}

int32_t tfqp_binary_base_int8(const int32_t *transform_row, int32_t input_pos,
                              int32_t input_neg, int32_t n, int32_t ps,
                              int32_t padded_ps) {
  /* the accumulator of the input that agrees with the weights on every valid
   * tap and is +1 on the padded ones: bounded like every accumulator */
  const int64_t sum = (int64_t)input_pos * n -
                      ((int64_t)input_pos + input_neg) * ps -
                      ((int64_t)input_pos - input_neg) * padded_ps;
  return (int32_t)((int64_t)transform_row[0] * sum + transform_row[1]);
}
