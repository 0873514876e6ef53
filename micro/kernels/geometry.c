/* Sliding-window geometry as TFLite computes it (see tfqp/geometry.h). */
#include "tfqp/geometry.h"

#include "tfqp/formats.h"

/* border_begin / border_end of an axis whose other fields are set. */
static void set_borders(tfqp_window_axis *axis) {
  const int64_t effective = (int64_t)(axis->filter - 1) * axis->dilation + 1;
  const int64_t begin = ((int64_t)axis->pad_before + axis->stride - 1) / axis->stride;
  const int64_t last_inner = (int64_t)axis->in - 1 + axis->pad_before - (effective - 1);
  axis->border_begin = (int32_t)(begin < axis->out ? begin : axis->out);
  if (last_inner < 0) {
    axis->border_end = 0;
  } else {
    const int64_t end = last_inner / axis->stride + 1;
    axis->border_end = (int32_t)(end < axis->out ? end : axis->out);
  }
}

tfqp_status tfqp_window_axis_init(tfqp_window_axis *axis, int32_t in,
                                  int32_t filter, int32_t stride,
                                  int32_t dilation, int32_t padding,
                                  const char *name, tfqp_error *error) {
  const int64_t effective = (int64_t)(filter - 1) * dilation + 1;
  int64_t out;
  int64_t total;
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
  /* border_begin: first o with o * stride >= pad_before; border_end: first o
   * with o * stride - pad_before + (filter - 1) * dilation > in - 1 */
  set_borders(axis);
  return TFQP_OK;
}

void tfqp_window_axis_band(const tfqp_window_axis *axis, int32_t first, int32_t count,
                           tfqp_window_axis *band, int32_t *in_first) {
  /* the span of the band's windows, clipped to the input: taps before it are
   * before the input, taps after it past the input, as in the whole axis */
  const int64_t start = (int64_t)first * axis->stride - axis->pad_before;
  const int64_t end = (int64_t)(first + count - 1) * axis->stride - axis->pad_before +
                      (int64_t)(axis->filter - 1) * axis->dilation + 1;
  int64_t lo = start < 0 ? 0 : start;
  int64_t hi = end < axis->in ? end : axis->in;
  if (lo > axis->in - 1) lo = axis->in - 1; /* a window wholly past the input */
  if (hi < lo + 1) hi = lo + 1;             /* one row the band's taps never reach */
  *band = *axis;
  band->in = (int32_t)(hi - lo);
  band->out = count;
  band->pad_before = (int32_t)(lo - start); /* < filter * dilation + stride */
  set_borders(band);
  *in_first = (int32_t)lo;
}

tfqp_status tfqp_window_options_check(const tfqp_window_options *window,
                                      tfqp_error *error) {
  /* TFQP_MAX_WINDOW (formats.h): every window index then fits int32 */
  static const char *const rule = "must be in [1, 2^15]";
  tfqp_status s;
  if ((s = tfqp_check_option_range(window->filter_height, 1, TFQP_MAX_WINDOW, rule,
                                   "filter_height", error)) ||
      (s = tfqp_check_option_range(window->filter_width, 1, TFQP_MAX_WINDOW, rule,
                                   "filter_width", error)) ||
      (s = tfqp_check_option_range(window->stride_height, 1, TFQP_MAX_WINDOW, rule,
                                   "stride_height", error)) ||
      (s = tfqp_check_option_range(window->stride_width, 1, TFQP_MAX_WINDOW, rule,
                                   "stride_width", error)) ||
      (s = tfqp_check_option_range(window->dilation_height, 1, TFQP_MAX_WINDOW, rule,
                                   "dilation_height_factor", error)) ||
      (s = tfqp_check_option_range(window->dilation_width, 1, TFQP_MAX_WINDOW, rule,
                                   "dilation_width_factor", error))) {
    return s;
  }
  return tfqp_check_option_range(window->padding, TFQP_PADDING_SAME, TFQP_PADDING_VALID,
                                 "must be 0 (SAME) or 1 (VALID)", "padding", error);
}

tfqp_status tfqp_window_init(const tfqp_window_options *window, int32_t height,
                             int32_t width, tfqp_window_axis *rows,
                             tfqp_window_axis *cols, tfqp_error *error) {
  const tfqp_status s = tfqp_window_axis_init(rows, height, window->filter_height,
                                              window->stride_height, window->dilation_height,
                                              window->padding, "height", error);
  if (s != TFQP_OK) return s;
  return tfqp_window_axis_init(cols, width, window->filter_width, window->stride_width,
                               window->dilation_width, window->padding, "width", error);
}
