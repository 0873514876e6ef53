/* TFQP_BMAXPOOL2D: validation and kernel (contract in tfqp/bmaxpool2d.h). */
#include "tfqp/bmaxpool2d.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "tfqp/flexbuffer.h"
#include "tfqp/op.h"

/* The options of TFQP_BMAXPOOL2D, once: order = the TFQP_BMAXPOOL2D_* bit order. */
#define KEY(field) {#field, offsetof(tfqp_bmaxpool2d_options, field)}
static const tfqp_option_key option_keys[] = {KEY(channels),      KEY(filter_height),
                                              KEY(filter_width),  KEY(stride_height),
                                              KEY(stride_width),  KEY(padding)};
#undef KEY
#define OPTION_COUNT ((int32_t)(sizeof option_keys / sizeof option_keys[0]))

tfqp_status tfqp_bmaxpool2d_parse_options(const uint8_t *buffer, size_t length,
                                          tfqp_bmaxpool2d_options *options,
                                          tfqp_error *error) {
  return tfqp_flex_read_option_keys(buffer, length, option_keys, OPTION_COUNT,
                                    TFQP_BMAXPOOL2D_REQUIRED, options, &options->present, error);
}

/* The window options of TFQP_BMAXPOOL2D (o not NULL): no dilation. */
static tfqp_window_options window_options(const tfqp_bmaxpool2d_options *o) {
  const tfqp_window_options window = {o->filter_height, o->filter_width, o->stride_height,
                                      o->stride_width,  1,                1,
                                      o->padding};
  return window;
}

static tfqp_status check_input_side(const tfqp_bmaxpool2d_options *o,
                                    const tfqp_tensor *input,
                                    tfqp_bmaxpool2d_params *p, tfqp_error *error) {
  tfqp_window_options window;
  tfqp_status s;
  if (o == NULL || input == NULL || p == NULL) {
    return tfqp_fail(error, TFQP_ERROR_ARGUMENT, "NULL argument", "bmaxpool2d", 0);
  }
  if ((o->present & TFQP_BMAXPOOL2D_REQUIRED) != TFQP_BMAXPOOL2D_REQUIRED) {
    return tfqp_fail(error, TFQP_ERROR_OPTIONS, "required option missing",
                     "bmaxpool2d options", (int64_t)o->present);
  }
  window = window_options(o);
  if ((s = tfqp_check_channels_option(o->channels, "channels", error)) ||
      (s = tfqp_window_options_check(&window, error)) ||
      (s = tfqp_tensor_check(input, "input", TFQP_TYPE_INT32, 4, error)) ||
      (s = tfqp_tensor_check_dim(input, 3, TFQP_WORDS(o->channels),
                                 "packed input depth must equal ceil(channels/32)",
                                 "input", error)) ||
      (s = tfqp_window_init(&window, input->dims[1], input->dims[2], &p->rows, &p->cols,
                            error))) {
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

tfqp_status tfqp_bmaxpool2d_prepare_or_mask(const tfqp_bmaxpool2d_options *options,
                                            const tfqp_tensor *input,
                                            const tfqp_tensor *or_mask,
                                            const tfqp_tensor *output,
                                            tfqp_bmaxpool2d_params *p, tfqp_error *error) {
  tfqp_status s;
  if ((s = check_input_side(options, input, p, error)) != TFQP_OK) return s;
  if (output == NULL) {
    return tfqp_fail(error, TFQP_ERROR_ARGUMENT, "NULL argument", "bmaxpool2d", 0);
  }
  p->or_mask = or_mask != NULL;
  p->table_bytes = 0;
  if (or_mask != NULL) {
    if ((s = tfqp_tensor_check(or_mask, "or_mask", TFQP_TYPE_INT32, 1, error)) ||
        (s = tfqp_tensor_check_dim(or_mask, 0, p->words,
                                   "or_mask must be [ceil(channels/32)]", "or_mask", error))) {
      return s;
    }
    p->table_bytes = (size_t)p->words * sizeof(tfqp_word);
  }
  {
    const int32_t outer[3] = {p->batch, p->rows.out, p->cols.out};
    return tfqp_tensor_check_output(output, TFQP_TYPE_INT32, 4, outer, p->words,
                                    "packed output depth must equal ceil(channels/32)", error);
  }
}

tfqp_status tfqp_bmaxpool2d_prepare(const tfqp_bmaxpool2d_options *options,
                                    const tfqp_tensor *input,
                                    const tfqp_tensor *output,
                                    tfqp_bmaxpool2d_params *p, tfqp_error *error) {
  return tfqp_bmaxpool2d_prepare_or_mask(options, input, NULL, output, p, error);
}

tfqp_status tfqp_bmaxpool2d_init_table(const tfqp_bmaxpool2d_params *p,
                                       const tfqp_word *or_mask, int32_t *table,
                                       size_t table_bytes, tfqp_error *error) {
  int32_t w;
  if (or_mask == NULL || table == NULL) {
    return tfqp_fail(error, TFQP_ERROR_ARGUMENT, "NULL argument", "bmaxpool2d", 0);
  }
  if (table_bytes < p->table_bytes || ((uintptr_t)table % sizeof(int32_t)) != 0) {
    return tfqp_fail(error, TFQP_ERROR_BUFFER,
                     "table smaller than params.table_bytes or not 4-byte aligned", "table",
                     (int64_t)table_bytes);
  }
  if (or_mask[p->words - 1] & ~p->last_word_mask) {
    return tfqp_fail(error, TFQP_ERROR_TENSOR_DATA,
                     "or_mask padding bits (bits of channels >= C) must be 0", "or_mask",
                     (int64_t)or_mask[p->words - 1]);
  }
  for (w = 0; w < p->words; ++w) table[w] = (int32_t)or_mask[w];
  return TFQP_OK;
}

static inline void pool_eval(const tfqp_bmaxpool2d_params *p, const tfqp_word *input,
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
        /* every window has an in-image position (TFLite's padding): start
         * from the first one */
        {
          const tfqp_word *first = image + (size_t)(iy0 + ky0) * row_words +
                                   (size_t)(ix0 + kx0) * words;
          for (w = 0; w < words; ++w) out[w] = first[w];
        }
        for (ky = ky0; ky < ky1; ++ky) {
          const tfqp_word *row = image + (size_t)(iy0 + ky) * row_words;
          for (kx = ky == ky0 ? kx0 + 1 : kx0; kx < kx1; ++kx) {
            const tfqp_word *a = row + (size_t)(ix0 + kx) * words;
            for (w = 0; w < words; ++w) out[w] &= a[w];
          }
        }
        out[words - 1] &= p->last_word_mask;
      }
    }
  }
}

/* With an OR mask m: AND over the window where m is 0, OR where it is 1. */
static void pool_eval_or_mask(const tfqp_bmaxpool2d_params *p, const tfqp_word *mask,
                              const tfqp_word *input, tfqp_word *output) {
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
        for (w = 0; w < words; ++w) {
          tfqp_word all = 0xFFFFFFFFu, any = 0;
          for (ky = ky0; ky < ky1; ++ky) {
            const tfqp_word *row = image + (size_t)(iy0 + ky) * row_words + w;
            for (kx = kx0; kx < kx1; ++kx) {
              const tfqp_word a = row[(size_t)(ix0 + kx) * words];
              all &= a;
              any |= a;
            }
          }
          out[w] = (all & ~mask[w]) | (any & mask[w]);
        }
        out[words - 1] &= p->last_word_mask;
      }
    }
  }
}

void tfqp_bmaxpool2d_eval(const tfqp_bmaxpool2d_params *p, const tfqp_word *input,
                          tfqp_word *output) {
  pool_eval(p, input, output);
}

void tfqp_bmaxpool2d_eval_or_mask(const tfqp_bmaxpool2d_params *p, const int32_t *table,
                                  const tfqp_word *input, tfqp_word *output) {
  if (p->or_mask) {
    pool_eval_or_mask(p, (const tfqp_word *)table, input, output);
  } else {
    pool_eval(p, input, output);
  }
}

/* ------------------------------------------------------------- op table row */

static const char *const input_roles[] = {"input", "or_mask"};

static tfqp_status op_parse(const uint8_t *buffer, size_t length, tfqp_op_options *options,
                            tfqp_error *error) {
  return tfqp_bmaxpool2d_parse_options(buffer, length, &options->bmaxpool2d, error);
}

static tfqp_status op_output_dims(const tfqp_op_options *options, const tfqp_tensor *inputs,
                                  int32_t input_count, tfqp_type output_type, int32_t *rank,
                                  int32_t dims[TFQP_MAX_RANK], tfqp_error *error) {
  (void)input_count;
  (void)output_type; /* prepare checks the output's type */
  *rank = 4;
  return tfqp_bmaxpool2d_output_dims(&options->bmaxpool2d, &inputs[0], dims, error);
}

static tfqp_status op_prepare(const tfqp_op_options *options, const tfqp_tensor *inputs,
                              int32_t input_count, const tfqp_tensor *outputs,
                              tfqp_op_params *params, tfqp_op_buffers *buffers,
                              tfqp_error *error) {
  const tfqp_status s =
      tfqp_bmaxpool2d_prepare_or_mask(&options->bmaxpool2d, &inputs[0],
                                      input_count > 1 ? &inputs[1] : NULL, &outputs[0],
                                      &params->bmaxpool2d, error);
  buffers->table_bytes = s == TFQP_OK ? params->bmaxpool2d.table_bytes : 0;
  buffers->scratch_bytes = 0;
  return s;
}

static tfqp_status op_init_table(const tfqp_op_params *params, const void *const *constants,
                                 int32_t *table, size_t table_bytes, tfqp_error *error) {
  if (params->bmaxpool2d.table_bytes == 0) return TFQP_OK; /* no or_mask input */
  return tfqp_bmaxpool2d_init_table(&params->bmaxpool2d, (const tfqp_word *)constants[1], table,
                                    table_bytes, error);
}

static void op_eval(const tfqp_op_params *params, const int32_t *table,
                    const void *const *inputs, void *const *outputs, void *scratch) {
  (void)scratch;
  if (params->bmaxpool2d.or_mask) {
    pool_eval_or_mask(&params->bmaxpool2d, (const tfqp_word *)table,
                      (const tfqp_word *)inputs[0], (tfqp_word *)outputs[0]);
    return;
  }
  pool_eval(&params->bmaxpool2d, (const tfqp_word *)inputs[0], (tfqp_word *)outputs[0]);
}

const tfqp_op tfqp_op_bmaxpool2d = {
    "TFQP_BMAXPOOL2D", 1, 2, 1, 1u << 1, input_roles,
    option_keys, OPTION_COUNT, offsetof(tfqp_bmaxpool2d_options, present),
    op_parse, op_output_dims, op_prepare, op_init_table, op_eval,
    sizeof(tfqp_bmaxpool2d_params)};
