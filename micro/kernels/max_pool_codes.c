/* TFQP_MAX_POOL_CODES: validation and kernel (contract in tfqp/max_pool_codes.h). */
#include "tfqp/max_pool_codes.h"

#include <stddef.h>
#include <string.h>

#include "tfqp/flexbuffer.h"
#include "tfqp/op.h"

/* The options once: order = the present bits' order. */
#define KEY(field) {#field, offsetof(tfqp_max_pool_codes_options, field)}
static const tfqp_option_key option_keys[] = {
    KEY(channels),      KEY(bits),         KEY(filter_height), KEY(filter_width),
    KEY(stride_height), KEY(stride_width), KEY(padding)};
#undef KEY
#define OPTION_COUNT ((int32_t)(sizeof option_keys / sizeof option_keys[0]))

tfqp_status tfqp_max_pool_codes_parse_options(const uint8_t *buffer, size_t length,
                                              tfqp_max_pool_codes_options *options,
                                              tfqp_error *error) {
  return tfqp_flex_read_option_keys(buffer, length, option_keys, OPTION_COUNT,
                                    TFQP_MAX_POOL_CODES_REQUIRED, options, &options->present,
                                    error);
}

static tfqp_status check_input_side(const tfqp_max_pool_codes_options *o,
                                    const tfqp_tensor *input, tfqp_max_pool_codes_params *p,
                                    tfqp_error *error) {
  tfqp_window_options window;
  tfqp_status s;
  if (o == NULL || input == NULL || p == NULL) {
    return tfqp_fail(error, TFQP_ERROR_ARGUMENT, "NULL argument", "max_pool_codes", 0);
  }
  if ((o->present & TFQP_MAX_POOL_CODES_REQUIRED) != TFQP_MAX_POOL_CODES_REQUIRED) {
    return tfqp_fail(error, TFQP_ERROR_OPTIONS, "required option missing",
                     "max_pool_codes options", (int64_t)o->present);
  }
  window.filter_height = o->filter_height;
  window.filter_width = o->filter_width;
  window.stride_height = o->stride_height;
  window.stride_width = o->stride_width;
  window.dilation_height = 1;
  window.dilation_width = 1;
  window.padding = o->padding;
  /* the sizes first (channels, window), then the width */
  if ((s = tfqp_check_channels_option(o->channels, "channels", error)) ||
      (s = tfqp_window_options_check(&window, error))) {
    return s;
  }
  if (!TFQP_KBIT_VALID(o->bits)) {
    return tfqp_fail(error, TFQP_ERROR_OPTION_VALUE, "must be 2 or 4", "bits", o->bits);
  }
  if ((s = tfqp_tensor_check(input, "input", TFQP_TYPE_INT32, 4, error)) ||
      (s = tfqp_tensor_check_dim(input, 3, TFQP_KBIT_WORDS(o->channels, o->bits),
                                 "packed input depth must equal ceil(channels / (32 / bits))",
                                 "input", error)) ||
      (s = tfqp_window_init(&window, input->dims[1], input->dims[2], &p->rows, &p->cols,
                            error))) {
    return s;
  }
  {
    const int32_t per_word = 32 / o->bits;
    const int32_t used = o->channels - (TFQP_KBIT_WORDS(o->channels, o->bits) - 1) * per_word;
    p->last_word_mask =
        used == per_word ? 0xFFFFFFFFu : (((tfqp_word)1 << (used * o->bits)) - 1u);
  }
  p->batch = input->dims[0];
  p->bits = o->bits;
  p->words = TFQP_KBIT_WORDS(o->channels, o->bits);
  return TFQP_OK;
}

tfqp_status tfqp_max_pool_codes_output_dims(const tfqp_max_pool_codes_options *options,
                                            const tfqp_tensor *input, int32_t dims[4],
                                            tfqp_error *error) {
  tfqp_max_pool_codes_params p;
  tfqp_status s;
  memset(&p, 0, sizeof p);
  if ((s = check_input_side(options, input, &p, error)) != TFQP_OK) return s;
  dims[0] = p.batch;
  dims[1] = p.rows.out;
  dims[2] = p.cols.out;
  dims[3] = p.words;
  return TFQP_OK;
}

tfqp_status tfqp_max_pool_codes_prepare(const tfqp_max_pool_codes_options *options,
                                        const tfqp_tensor *input, const tfqp_tensor *output,
                                        tfqp_max_pool_codes_params *p, tfqp_error *error) {
  tfqp_status s;
  if ((s = check_input_side(options, input, p, error)) != TFQP_OK) return s;
  if (output == NULL) {
    return tfqp_fail(error, TFQP_ERROR_ARGUMENT, "NULL argument", "max_pool_codes", 0);
  }
  {
    const int32_t outer[3] = {p->batch, p->rows.out, p->cols.out};
    return tfqp_tensor_check_output(
        output, TFQP_TYPE_INT32, 4, outer, p->words,
        "packed output depth must equal ceil(channels / (32 / bits))", error);
  }
}

/* The code-wise max of two words of 32 / bits codes. */
static tfqp_word max_codes(tfqp_word a, tfqp_word b, int32_t bits) {
  const tfqp_word mask = ((tfqp_word)1 << bits) - 1u;
  tfqp_word out = 0;
  int32_t shift;
  for (shift = 0; shift < 32; shift += bits) {
    const tfqp_word x = (a >> shift) & mask;
    const tfqp_word y = (b >> shift) & mask;
    out |= (x > y ? x : y) << shift;
  }
  return out;
}

void tfqp_max_pool_codes_eval(const tfqp_max_pool_codes_params *p, const tfqp_word *input,
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
        tfqp_word *out = output + (((size_t)n * p->rows.out + oy) * p->cols.out + ox) * words;
        int32_t kx0, kx1;
        tfqp_window_axis_taps(&p->cols, ox, &kx0, &kx1);
        /* every window has an in-image position (TFLite's padding): start
         * from the first one */
        {
          const tfqp_word *first =
              image + (size_t)(iy0 + ky0) * row_words + (size_t)(ix0 + kx0) * words;
          for (w = 0; w < words; ++w) out[w] = first[w];
        }
        for (ky = ky0; ky < ky1; ++ky) {
          const tfqp_word *row = image + (size_t)(iy0 + ky) * row_words;
          for (kx = ky == ky0 ? kx0 + 1 : kx0; kx < kx1; ++kx) {
            const tfqp_word *a = row + (size_t)(ix0 + kx) * words;
            for (w = 0; w < words; ++w) out[w] = max_codes(out[w], a[w], p->bits);
          }
        }
        out[words - 1] &= p->last_word_mask;
      }
    }
  }
}

/* ------------------------------------------------------------- op table row */

static const char *const input_roles[] = {"input"};

static tfqp_status op_parse(const uint8_t *buffer, size_t length, tfqp_op_options *options,
                            tfqp_error *error) {
  return tfqp_max_pool_codes_parse_options(buffer, length, &options->max_pool_codes, error);
}

static tfqp_status op_output_dims(const tfqp_op_options *options, const tfqp_tensor *inputs,
                                  int32_t input_count, tfqp_type output_type, int32_t *rank,
                                  int32_t dims[TFQP_MAX_RANK], tfqp_error *error) {
  (void)input_count;
  if (output_type != TFQP_TYPE_INT32) {
    return tfqp_fail(error, TFQP_ERROR_TENSOR_TYPE, "output must be packed int32", "output",
                     output_type);
  }
  *rank = 4;
  return tfqp_max_pool_codes_output_dims(&options->max_pool_codes, &inputs[0], dims, error);
}

static tfqp_status op_prepare(const tfqp_op_options *options, const tfqp_tensor *inputs,
                              int32_t input_count, const tfqp_tensor *outputs,
                              tfqp_op_params *params, tfqp_op_buffers *buffers,
                              tfqp_error *error) {
  (void)input_count;
  buffers->table_bytes = 0;
  buffers->scratch_bytes = 0;
  return tfqp_max_pool_codes_prepare(&options->max_pool_codes, &inputs[0], &outputs[0],
                                     &params->max_pool_codes, error);
}

static void op_eval(const tfqp_op_params *params, const int32_t *table,
                    const void *const *inputs, void *const *outputs, void *scratch) {
  (void)table;
  (void)scratch;
  tfqp_max_pool_codes_eval(&params->max_pool_codes, (const tfqp_word *)inputs[0],
                           (tfqp_word *)outputs[0]);
}

const tfqp_op tfqp_op_max_pool_codes = {
    "TFQP_MAX_POOL_CODES", 1, 1, 1, 0u, input_roles,
    option_keys, OPTION_COUNT, offsetof(tfqp_max_pool_codes_options, present),
    op_parse, op_output_dims, op_prepare, NULL, op_eval,
    sizeof(tfqp_max_pool_codes_params)};
