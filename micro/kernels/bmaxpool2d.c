/* TFQP_BMAXPOOL2D: validation and kernel (contract in tfqp/bmaxpool2d.h). */
#include "tfqp/bmaxpool2d.h"

#include <stddef.h>
#include <string.h>

#include "tfqp/flexbuffer.h"

#define OPTION_COUNT 6

tfqp_status tfqp_bmaxpool2d_parse_options(const uint8_t *buffer, size_t length,
                                          tfqp_bmaxpool2d_options *options,
                                          tfqp_error *error) {
  const tfqp_option_field fields[OPTION_COUNT] = {
      {"channels", &options->channels},
      {"filter_height", &options->filter_height},
      {"filter_width", &options->filter_width},
      {"stride_height", &options->stride_height},
      {"stride_width", &options->stride_width},
      {"padding", &options->padding}};
  tfqp_status status;
  int32_t i;
  for (i = 0; i < OPTION_COUNT; ++i) *fields[i].value = 0;
  status = tfqp_flex_read_options(buffer, length, fields, OPTION_COUNT,
                                  &options->present, error);
  if (status != TFQP_OK) return status;
  for (i = 0; i < OPTION_COUNT; ++i) {
    if (!(options->present & (1u << i))) {
      return tfqp_fail(error, TFQP_ERROR_OPTIONS, "required option missing",
                       fields[i].key, 0);
    }
  }
  return TFQP_OK;
}

static tfqp_status check_at_least_one(int32_t value, const char *name,
                                      tfqp_error *error) {
  if (value < 1) {
    return tfqp_fail(error, TFQP_ERROR_OPTION_VALUE, "must be >= 1", name, value);
  }
  return TFQP_OK;
}

static tfqp_status check_input_side(const tfqp_bmaxpool2d_options *o,
                                    const tfqp_tensor *input,
                                    tfqp_bmaxpool2d_params *p, tfqp_error *error) {
  tfqp_status s;
  if (o == NULL || input == NULL || p == NULL) {
    return tfqp_fail(error, TFQP_ERROR_ARGUMENT, "NULL argument", "bmaxpool2d", 0);
  }
  if ((o->present & TFQP_BMAXPOOL2D_REQUIRED) != TFQP_BMAXPOOL2D_REQUIRED) {
    return tfqp_fail(error, TFQP_ERROR_OPTIONS, "required option missing",
                     "bmaxpool2d options", (int64_t)o->present);
  }
  if ((s = check_at_least_one(o->channels, "channels", error)) ||
      (s = check_at_least_one(o->filter_height, "filter_height", error)) ||
      (s = check_at_least_one(o->filter_width, "filter_width", error)) ||
      (s = check_at_least_one(o->stride_height, "stride_height", error)) ||
      (s = check_at_least_one(o->stride_width, "stride_width", error))) {
    return s;
  }
  if (o->padding != TFQP_PADDING_SAME && o->padding != TFQP_PADDING_VALID) {
    return tfqp_fail(error, TFQP_ERROR_OPTION_VALUE, "must be 0 (SAME) or 1 (VALID)",
                     "padding", o->padding);
  }
  if ((s = tfqp_tensor_check(input, "input", TFQP_TYPE_INT32, 4, error)) ||
      (s = tfqp_tensor_check_dim(input, 3, TFQP_WORDS(o->channels),
                                 "packed input depth must equal ceil(channels/32)",
                                 "input", error)) ||
      (s = tfqp_window_axis_init(&p->rows, input->dims[1], o->filter_height,
                                 o->stride_height, 1, o->padding, "height", error)) ||
      (s = tfqp_window_axis_init(&p->cols, input->dims[2], o->filter_width,
                                 o->stride_width, 1, o->padding, "width", error))) {
    return s;
  }
  p->batch = input->dims[0];
  p->channels = o->channels;
  p->words = TFQP_WORDS(o->channels);
  p->last_word_mask = TFQP_LAST_WORD_MASK(o->channels);
  return TFQP_OK;
}

tfqp_status tfqp_bmaxpool2d_output_dims(const tfqp_bmaxpool2d_options *options,
                                        const tfqp_tensor *input, int32_t dims[4],
                                        tfqp_error *error) {
  tfqp_bmaxpool2d_params p;
  tfqp_status s;
  memset(&p, 0, sizeof p);
  s = check_input_side(options, input, &p, error);
  if (s != TFQP_OK) return s;
  dims[0] = p.batch;
  dims[1] = p.rows.out;
  dims[2] = p.cols.out;
  dims[3] = p.words;
  return TFQP_OK;
}

tfqp_status tfqp_bmaxpool2d_prepare(const tfqp_bmaxpool2d_options *options,
                                    const tfqp_tensor *input,
                                    const tfqp_tensor *output,
                                    tfqp_bmaxpool2d_params *p, tfqp_error *error) {
  tfqp_status s;
  if ((s = check_input_side(options, input, p, error)) != TFQP_OK) return s;
  if (output == NULL) {
    return tfqp_fail(error, TFQP_ERROR_ARGUMENT, "NULL argument", "bmaxpool2d", 0);
  }
  if ((s = tfqp_tensor_check(output, "output", TFQP_TYPE_INT32, 4, error)) ||
      (s = tfqp_tensor_check_dim(output, 0, p->batch, "output batch must equal input batch",
                                 "output", error)) ||
      (s = tfqp_tensor_check_dim(output, 1, p->rows.out,
                                 "output height does not match the options", "output", error)) ||
      (s = tfqp_tensor_check_dim(output, 2, p->cols.out,
                                 "output width does not match the options", "output", error)) ||
      (s = tfqp_tensor_check_dim(output, 3, p->words,
                                 "packed output depth must equal ceil(channels/32)", "output",
                                 error))) {
    return s;
  }
  return TFQP_OK;
}

void tfqp_bmaxpool2d_eval(const tfqp_bmaxpool2d_params *p, const tfqp_word *input,
                          tfqp_word *output) {
  const int32_t words = p->words;
  const size_t row_words = (size_t)p->cols.in * words;
  const size_t image_words = (size_t)p->rows.in * row_words;
  int32_t n, oy, ox, ky, kx, w;
  for (n = 0; n < p->batch; ++n) {
    const tfqp_word *image = input + (size_t)n * image_words;
    for (oy = 0; oy < p->rows.out; ++oy) {
      const int32_t iy0 = oy * p->rows.stride - p->rows.pad_before;
      int32_t ky0, ky1;
      tfqp_window_axis_taps(&p->rows, oy, &ky0, &ky1);
      for (ox = 0; ox < p->cols.out; ++ox) {
        const int32_t ix0 = ox * p->cols.stride - p->cols.pad_before;
        tfqp_word *out =
            output + (((size_t)n * p->rows.out + oy) * p->cols.out + ox) * words;
        int32_t kx0, kx1;
        tfqp_window_axis_taps(&p->cols, ox, &kx0, &kx1);
        for (w = 0; w < words; ++w) out[w] = 0xFFFFFFFFu;
        for (ky = ky0; ky < ky1; ++ky) {
          const tfqp_word *row = image + (size_t)(iy0 + ky) * row_words;
          for (kx = kx0; kx < kx1; ++kx) {
            const tfqp_word *a = row + (size_t)(ix0 + kx) * words;
            for (w = 0; w < words; ++w) out[w] &= a[w];
          }
        }
        out[words - 1] &= p->last_word_mask;
      }
    }
  }
}
