/* Output size and padding of a sliding window along one spatial axis, exactly
 * as TFLite computes them (ComputePaddingHeightWidth / ComputeOutSize):
 *   effective filter  e   = (filter - 1) * dilation + 1
 *   SAME  (padding 0): out = ceil(in / stride)
 *   VALID (padding 1): out = floor((in - e) / stride) + 1   (requires in >= e)
 *   total padding      t   = max(0, (out - 1) * stride + e - in)
 *   padding before         = floor(t / 2), the rest goes after.
 * Output position o reads input positions o * stride - before + k * dilation,
 * k = 0 .. filter-1; positions outside [0, in) are padding.
 */
#ifndef TFQP_GEOMETRY_H_
#define TFQP_GEOMETRY_H_

#include <stdint.h>

#include "tfqp/status.h"

#ifdef __cplusplus
extern "C" {
#endif

#define TFQP_PADDING_SAME 0
#define TFQP_PADDING_VALID 1

typedef struct {
  int32_t in;         /* input size */
  int32_t filter;     /* taps */
  int32_t stride;
  int32_t dilation;
  int32_t out;        /* output size */
  int32_t pad_before; /* padding before the first input position */
  /* Output positions whose window is cut by the image border:
   * [0, border_begin) at the start, [border_end, out) at the end; when
   * border_begin > border_end the two overlap. */
  int32_t border_begin;
  int32_t border_end;
} tfqp_window_axis;

/* Fills axis->out, pad_before, border_begin/end from in/filter/stride/dilation
 * (in a checked tensor dim, the others checked by tfqp_window_options_check:
 * see the limits of formats.h) and padding. `name` names the axis
 * ("height"/"width") in the error. Fails if VALID leaves no output or the
 * effective filter does not fit in int32. */
tfqp_status tfqp_window_axis_init(tfqp_window_axis *axis, int32_t in,
                                  int32_t filter, int32_t stride,
                                  int32_t dilation, int32_t padding,
                                  const char *name, tfqp_error *error);

/* The axis of output positions [first, first + count) of `axis` (count >= 1,
 * within axis->out) over the input positions [*in_first, *in_first + band->in)
 * they read: every window keeps its taps and which of them are in the input
 * (the band's pad_before and borders follow), so a kernel run on the band and
 * those input positions writes the same outputs. band->in >= 1. */
void tfqp_window_axis_band(const tfqp_window_axis *axis, int32_t first, int32_t count,
                           tfqp_window_axis *band, int32_t *in_first);

/* The window options of a 2-D op on NHWC input, as its options give them. */
typedef struct {
  int32_t filter_height;
  int32_t filter_width;
  int32_t stride_height;
  int32_t stride_width;
  int32_t dilation_height; /* 1 for ops without dilation */
  int32_t dilation_width;
  int32_t padding;         /* TFQP_PADDING_SAME / TFQP_PADDING_VALID */
} tfqp_window_options;

/* Checks filter, stride and dilation sizes in [1, TFQP_MAX_WINDOW] (formats.h:
 * the bound that keeps every window index in int32), then the padding; errors
 * name the option as TFQP_BCONV2D's options do ("dilation_height_factor"). */
tfqp_status tfqp_window_options_check(const tfqp_window_options *window,
                                      tfqp_error *error);

/* tfqp_window_axis_init of both axes over an input of height x width
 * (options checked). */
tfqp_status tfqp_window_init(const tfqp_window_options *window, int32_t height,
                             int32_t width, tfqp_window_axis *rows,
                             tfqp_window_axis *cols, tfqp_error *error);

/* The taps of output position `o` that fall inside the input:
 * k in [*first, *last) (possibly empty when dilation > 1). */
static inline void tfqp_window_axis_taps(const tfqp_window_axis *axis, int32_t o,
                                         int32_t *first, int32_t *last) {
  const int32_t start = o * axis->stride - axis->pad_before;
  int32_t k0 = 0;
  int32_t k1 = axis->filter;
  if (start < 0) k0 = (-start + axis->dilation - 1) / axis->dilation;
  /* last valid k: start + k * dilation <= in - 1 */
  if (start + (int64_t)(axis->filter - 1) * axis->dilation > axis->in - 1) {
    k1 = start > axis->in - 1 ? 0 : (axis->in - 1 - start) / axis->dilation + 1;
  }
  if (k1 < k0) k1 = k0;
  *first = k0;
  *last = k1;
}

/* Output positions fall into classes with identical valid-tap ranges: each
 * border position is its own class, all interior positions share one. With
 * overlapping borders (tiny inputs) every position is its own class. */
static inline int32_t tfqp_window_axis_class_count(const tfqp_window_axis *axis) {
  if (axis->border_begin > axis->border_end) return axis->out;
  return axis->border_begin + 1 + (axis->out - axis->border_end);
}

static inline int32_t tfqp_window_axis_class(const tfqp_window_axis *axis,
                                             int32_t o) {
  if (axis->border_begin > axis->border_end || o < axis->border_begin) return o;
  if (o >= axis->border_end) return axis->border_begin + 1 + (o - axis->border_end);
  return axis->border_begin;
}

/* Valid taps of every position of class `c`. */
static inline void tfqp_window_axis_class_taps(const tfqp_window_axis *axis,
                                               int32_t c, int32_t *first,
                                               int32_t *last) {
  if (axis->border_begin > axis->border_end || c < axis->border_begin) {
    tfqp_window_axis_taps(axis, c, first, last);
  } else if (c == axis->border_begin) {
    *first = 0;
    *last = axis->filter;
  } else {
    tfqp_window_axis_taps(axis, axis->border_end + (c - axis->border_begin - 1),
                          first, last);
  }
}

#ifdef __cplusplus
}
#endif

#endif /* TFQP_GEOMETRY_H_ */
