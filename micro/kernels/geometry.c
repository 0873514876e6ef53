/* Sliding-window geometry as TFLite computes it (see tfqp/geometry.h). */
#include "tfqp/geometry.h"

tfqp_status tfqp_window_axis_init(tfqp_window_axis *axis, int32_t in,
                                  int32_t filter, int32_t stride,
                                  int32_t dilation, int32_t padding,
                                  const char *name, tfqp_error *error) {
  const int64_t effective = (int64_t)(filter - 1) * dilation + 1;
  int64_t out;
  int64_t total;
  int64_t last_inner;
  if (effective > INT32_MAX) {
    return tfqp_fail(error, TFQP_ERROR_OPTION_VALUE,
                     "dilated filter size exceeds 2^31-1", name, effective);
  }
  if (padding == TFQP_PADDING_SAME) {
    out = ((int64_t)in + stride - 1) / stride;
  } else {
    if ((int64_t)in < effective) {
      return tfqp_fail(error, TFQP_ERROR_TENSOR_SHAPE,
                       "VALID padding: dilated filter larger than the input",
                       name, in);
    }
    out = ((int64_t)in - effective) / stride + 1;
  }
  total = (out - 1) * stride + effective - in;
  if (total < 0) total = 0;
  axis->in = in;
  axis->filter = filter;
  axis->stride = stride;
  axis->dilation = dilation;
  axis->out = (int32_t)out;
  axis->pad_before = (int32_t)(total / 2);
  /* first o with o * stride >= pad_before */
  {
    int64_t begin = ((int64_t)axis->pad_before + stride - 1) / stride;
    axis->border_begin = (int32_t)(begin < out ? begin : out);
  }
  /* first o with o * stride - pad_before + (filter - 1) * dilation > in - 1 */
  last_inner = (int64_t)in - 1 + axis->pad_before - (effective - 1);
  if (last_inner < 0) {
    axis->border_end = 0;
  } else {
    int64_t end = last_inner / stride + 1;
    axis->border_end = (int32_t)(end < out ? end : out);
  }
  return TFQP_OK;
}
