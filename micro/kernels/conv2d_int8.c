/* TFQP_CONV2D_INT8: validation, table and the portable kernel (contract in
 * tfqp/conv2d_int8.h). The kernel walks the valid taps of each output pixel
 * directly (no im2col); with dilation_width 1 the taps of a filter row are one
 * contiguous run of KW * Cin values in both the input and the weights, summed
 * by tfqp_int8_dot (AVX2 on hosts that have it; the same integers). */
#include "tfqp/conv2d_int8.h"

#include <stddef.h>
#include <string.h>

#include "int8_arm.h"
#include "int8_op.h"
#include "tfqp/flexbuffer.h"
#include "tfqp/op.h"

#define KEY(field) {#field, offsetof(tfqp_conv2d_int8_options, field)}
static const tfqp_option_key option_keys[] = {
    KEY(channels_in),   KEY(filter_height), KEY(filter_width),
    KEY(stride_height), KEY(stride_width),  KEY(dilation_height_factor),
    KEY(dilation_width_factor), KEY(padding), KEY(int32_output), KEY(output_levels),
    KEY(output_bits), KEY(input_bits), KEY(input_code_zero)};
#undef KEY
#define OPTION_COUNT ((int32_t)(sizeof option_keys / sizeof option_keys[0]))

tfqp_status tfqp_conv2d_int8_parse_options(const uint8_t *buffer, size_t length,
                                           tfqp_conv2d_int8_options *options,
                                           tfqp_error *error) {
  const tfqp_status s = tfqp_flex_read_option_keys(buffer, length, option_keys, OPTION_COUNT,
                                                   TFQP_CONV2D_INT8_REQUIRED, options, &options->present, error);
  /* int32_output, output_levels, output_bits, input_bits, input_code_zero */
  if (s == TFQP_OK) tfqp_int8_op_defaults(&options->int32_output, 5, options->present, 8);
  return s;
}

static tfqp_status check_input_side(const tfqp_conv2d_int8_options *o, const tfqp_tensor *input,
                                    const tfqp_tensor *weights, tfqp_conv2d_int8_params *p,
                                    tfqp_error *error) {
  tfqp_window_options window;
  tfqp_status s;
  int64_t taps;
  if (o == NULL || input == NULL || weights == NULL || p == NULL) {
    return tfqp_fail(error, TFQP_ERROR_ARGUMENT, "NULL argument", "conv2d_int8", 0);
  }
  if ((o->present & TFQP_CONV2D_INT8_REQUIRED) != TFQP_CONV2D_INT8_REQUIRED) {
    return tfqp_fail(error, TFQP_ERROR_OPTIONS, "required option missing",
                     "conv2d_int8 options", (int64_t)o->present);
  }
  window.filter_height = o->filter_height;
  window.filter_width = o->filter_width;
  window.stride_height = o->stride_height;
  window.stride_width = o->stride_width;
  window.dilation_height = o->dilation_height_factor;
  window.dilation_width = o->dilation_width_factor;
  window.padding = o->padding;
  if ((s = tfqp_check_channels_option(o->channels_in, "channels_in", error)) ||
      (s = tfqp_window_options_check(&window, error)) ||
      (s = tfqp_int8_op_check_output_options(o->int32_output, o->output_levels, error))) {
    return s;
  }
  taps = (int64_t)o->filter_height * o->filter_width * o->channels_in;
  if (taps > TFQP_INT8_OP_MAX_TAPS) {
    return tfqp_fail(error, TFQP_ERROR_OPTION_VALUE,
                     "filter_height * filter_width * channels_in must be <= 66311 "
                     "(K * 255 * 127 < 2^31)",
                     "channels_in", taps);
  }
  if ((s = tfqp_tensor_check(input, "input", TFQP_TYPE_INT8, 4, error)) ||
      (s = tfqp_tensor_check_dim(input, 3, o->channels_in,
                                 "int8 input depth must equal channels_in", "input", error)) ||
      (s = tfqp_int8_op_check_weights(weights, 4, &p->weights_int16, error)) ||
      (s = tfqp_tensor_check_dim(weights, 1, o->filter_height,
                                 "weights dim 1 must equal filter_height", "weights", error)) ||
      (s = tfqp_tensor_check_dim(weights, 2, o->filter_width,
                                 "weights dim 2 must equal filter_width", "weights", error)) ||
      (s = tfqp_tensor_check_dim(weights, 3, o->channels_in,
                                 "weights dim 3 must equal channels_in", "weights", error))) {
    return s;
  }
  if (input->zero_point < -128 || input->zero_point > 127) {
    return tfqp_fail(error, TFQP_ERROR_TENSOR_DATA, "int8 zero point must be in [-128, 127]",
                     "input", input->zero_point);
  }
  if ((s = tfqp_window_init(&window, input->dims[1], input->dims[2], &p->rows, &p->cols,
                            error))) {
    return s;
  }
  p->batch = input->dims[0];
  p->channels_in = o->channels_in;
  p->channels_out = weights->dims[0];
  p->input_zero_point = input->zero_point;
  p->int32_output = o->int32_output;
  p->output_levels = o->output_levels;
  p->codes_only = o->output_bits != 0;
  p->taps = (int32_t)taps;
  p->output_depth =
      tfqp_int8_op_output_depth(p->int32_output, p->output_levels, p->channels_out);
  p->table_bytes = tfqp_int8_op_table_bytes(p->int32_output, p->output_levels, p->channels_out);
  return TFQP_OK;
}

tfqp_status tfqp_conv2d_int8_output_dims(const tfqp_conv2d_int8_options *options,
                                         const tfqp_tensor *input, const tfqp_tensor *weights,
                                         int32_t dims[4], tfqp_error *error) {
  tfqp_conv2d_int8_params p;
  tfqp_status s;
  memset(&p, 0, sizeof p);
  if ((s = check_input_side(options, input, weights, &p, error)) != TFQP_OK) return s;
  dims[0] = p.batch;
  dims[1] = p.rows.out;
  dims[2] = p.cols.out;
  dims[3] = p.output_depth;
  return TFQP_OK;
}

tfqp_status tfqp_conv2d_int8_prepare(const tfqp_conv2d_int8_options *options,
                                     const tfqp_tensor *input, const tfqp_tensor *weights,
                                     const tfqp_tensor *transform, const tfqp_tensor *output,
                                     tfqp_conv2d_int8_params *p, tfqp_error *error) {
  tfqp_status s;
  if ((s = check_input_side(options, input, weights, p, error)) != TFQP_OK) return s;
  {
    const int32_t outer[3] = {p->batch, p->rows.out, p->cols.out};
    return tfqp_int8_op_check_output(p->int32_output, p->output_levels, output, transform, 4, outer,
                                     p->channels_out, "weights", error);
  }
}

tfqp_status tfqp_conv2d_int8_init_table(const tfqp_conv2d_int8_params *p, const void *weights,
                                        const int32_t *transform, int32_t *table,
                                        size_t table_bytes, tfqp_error *error) {
  return tfqp_int8_op_init_table(p->int32_output, p->output_levels, p->codes_only, weights, p->weights_int16, transform,
                                 p->channels_out, p->taps, table, table_bytes, p->table_bytes,
                                 error);
}

void tfqp_conv2d_int8_eval(const tfqp_conv2d_int8_params *p, const int32_t *table,
                           const int8_t *input, const void *weights, const int32_t *transform,
                           void *output) {
  const int32_t cin = p->channels_in;
  const int32_t cout = p->channels_out;
  const int32_t kw = p->cols.filter;
  const int32_t dh = p->rows.dilation;
  const int32_t dw = p->cols.dilation;
  const int32_t zp = p->input_zero_point;
  const size_t row_values = (size_t)p->cols.in * cin;
  const size_t image_values = (size_t)p->rows.in * row_values;
  const size_t filter_values = (size_t)p->taps;
  int32_t n, oy, ox, co, ky, kx, i;
  for (n = 0; n < p->batch; ++n) {
    const int8_t *image = input + (size_t)n * image_values;
    for (oy = 0; oy < p->rows.out; ++oy) {
      const int32_t iy0 = oy * p->rows.stride - p->rows.pad_before;
      int32_t ky0, ky1;
      tfqp_window_axis_taps(&p->rows, oy, &ky0, &ky1);
      for (ox = 0; ox < p->cols.out; ++ox) {
        const int32_t ix0 = ox * p->cols.stride - p->cols.pad_before;
        const size_t pixel = ((size_t)n * p->rows.out + oy) * p->cols.out + ox;
        void *out = tfqp_int8_op_pixel_output(p->int32_output, p->output_levels, output, pixel,
                                              p->output_depth);
        int32_t kx0, kx1;
        tfqp_window_axis_taps(&p->cols, ox, &kx0, &kx1);
        if (!p->int32_output && p->output_levels == 0) {
          for (i = 0; i < p->output_depth; ++i) ((tfqp_word *)out)[i] = 0;
        }
        for (co = 0; co < cout; ++co) {
          const size_t f = (size_t)co * filter_values;
          int32_t acc = 0;
          for (ky = ky0; ky < ky1; ++ky) {
            const int8_t *row = image + (size_t)(iy0 + ky * dh) * row_values;
            const size_t frow = f + (size_t)ky * kw * cin;
            for (kx = kx0; kx < kx1; kx += (dw == 1 ? kx1 - kx0 : 1)) {
              /* dilation 1: the row's valid taps are one run of KW' * Cin values */
              const int32_t run = dw == 1 ? (kx1 - kx0) * cin : cin;
              const int8_t *q = row + (size_t)(ix0 + kx * dw) * cin;
              const size_t at = frow + (size_t)kx * cin;
              acc += p->weights_int16 ? tfqp_int16_dot(q, (const int16_t *)weights + at, run, zp)
                                      : tfqp_int8_dot(q, (const int8_t *)weights + at, run, zp);
            }
          }
          tfqp_int8_op_output(p->int32_output, p->output_levels, p->codes_only, table, transform,
                          cout, co, acc, out);
        }
      }
    }
  }
}

/* ------------------------------------------------------------- op table row */

static const char *const input_roles[] = {"input", "weights", "transform", "residual"};

static tfqp_status op_parse(const uint8_t *buffer, size_t length, tfqp_op_options *options,
                            tfqp_error *error) {
  return tfqp_conv2d_int8_parse_options(buffer, length, &options->conv2d_int8, error);
}

static tfqp_kbit_options kbit_of(const tfqp_op_options *options) {
  const tfqp_conv2d_int8_options *o = &options->conv2d_int8;
  return tfqp_kbit_options_of(o->input_bits, o->input_code_zero, o->output_bits,
                              o->output_levels, (o->present & TFQP_CONV2D_INT8_REQUIRED) ? o->channels_in : 0);
}

/* On the tensors the kernel reads: a packed input or codes output as int8. */
static tfqp_status op_output_dims(const tfqp_op_options *options, const tfqp_tensor *inputs,
                                  int32_t input_count, tfqp_type output_type, int32_t *rank,
                                  int32_t dims[TFQP_MAX_RANK], tfqp_error *error) {
  const tfqp_kbit_options k = kbit_of(options);
  tfqp_tensor input;
  tfqp_type type;
  tfqp_status s;
  (void)input_count;
  *rank = 4;
  if ((s = tfqp_kbit_dims_view(&k, inputs, output_type, &input, &type, error)) ||
      (s = tfqp_int8_op_check_output_type(options->conv2d_int8.output_levels, type, error)) ||
      (s = tfqp_conv2d_int8_output_dims(&options->conv2d_int8, &input, &inputs[1], dims, error))) {
    return s;
  }
  if ((s = tfqp_kbit_check_options(&k, error))) return s;
  tfqp_kbit_output_dims(&k, 4, dims);
  return TFQP_OK;
}

/* Whether Cortex-M builds run int8_arm.c's kernels (every output: packed
 * signs, int32 values, codes; -DTFQP_PORTABLE keeps the portable kernel). */
static int arm_path(const tfqp_conv2d_int8_params *p) {
  (void)p;
  return TFQP_HAVE_ARM_DSP;
}

/* int8_arm.c gives accumulators to finish (value and codes outputs), not bits. */
static int32_t accumulates(const tfqp_conv2d_int8_params *p) {
  return p->int32_output || p->output_levels != 0;
}

static tfqp_status op_prepare(const tfqp_op_options *options, const tfqp_tensor *inputs,
                              int32_t input_count, const tfqp_tensor *outputs,
                              tfqp_op_params *params, tfqp_op_buffers *buffers,
                              tfqp_error *error) {
  tfqp_conv2d_int8_params *p = &params->conv2d_int8;
  const tfqp_kbit_options k = kbit_of(options);
  tfqp_tensor input, output;
  tfqp_status s;
  if ((s = tfqp_kbit_prepare_view(&k, inputs, &outputs[0], &input, &output, error)) ||
      (s = tfqp_conv2d_int8_prepare(&options->conv2d_int8, &input, &inputs[1], &inputs[2], &output, p,
                               error)) ||
      (s = tfqp_value_prepare_residual(p->int32_output, inputs, input_count, &outputs[0],
                                       &p->residual, &p->output_count, error)) ||
      (s = tfqp_kbit_io_init_rows(&p->kbit, &k, &input, &output, &p->rows,
                                  arm_path(p) ? tfqp_arm_int8_scratch_bytes(
                                                    p->taps, p->channels_out, 1)
                                              : 0,
                                  error))) {
    return s;
  }
  /* Cortex-M builds: int8_arm.c's table extension, and its window first in
   * the scratch (the k-bit conversions' regions after it) */
  buffers->table_bytes =
      p->table_bytes +
      (arm_path(p) ? tfqp_arm_int8_table_bytes(accumulates(p), p->channels_out, p->taps) : 0);
  buffers->scratch_bytes = p->kbit.scratch_bytes;
  return TFQP_OK;
}

static tfqp_status op_init_table(const tfqp_op_params *params, const void *const *constants,
                                 int32_t *table, size_t table_bytes, tfqp_error *error) {
  const tfqp_conv2d_int8_params *p = &params->conv2d_int8;
  tfqp_status s = tfqp_conv2d_int8_init_table(p, constants[1], (const int32_t *)constants[2],
                                              table, table_bytes, error);
  if (s == TFQP_OK && arm_path(p)) {
    s = tfqp_arm_int8_init_table(accumulates(p), constants[1], p->weights_int16,
                                 p->channels_out, p->taps, table, table_bytes, p->table_bytes,
                                 error);
  }
  return s;
}

/* The kernel the build runs (Cortex-M DSP or portable). */
static void run_kernel(const tfqp_conv2d_int8_params *p, const int32_t *table,
                       const int8_t *input, const void *weights, const int32_t *transform,
                       void *output, void *scratch) {
#if TFQP_HAVE_ARM_DSP
  if (arm_path(p)) {
    tfqp_arm_conv2d_int8_eval(p, table, transform, input, output, scratch);
    return;
  }
#endif
  (void)scratch;
  tfqp_conv2d_int8_eval(p, table, input, weights, transform, output);
}

/* One band of output rows (tfqp_kbit_eval_rows): the same params on the band. */
static void run_rows(const void *params, const int32_t *table, const tfqp_window_axis *rows,
                     const int8_t *input, const void *const *inputs, void *output,
                     void *scratch) {
  tfqp_conv2d_int8_params band = *(const tfqp_conv2d_int8_params *)params;
  band.batch = 1;
  band.rows = *rows;
  run_kernel(&band, table, input, inputs[1], (const int32_t *)inputs[2], output, scratch);
}

static void op_eval(const tfqp_op_params *params, const int32_t *table,
                    const void *const *inputs, void *const *outputs, void *scratch) {
  const tfqp_conv2d_int8_params *p = &params->conv2d_int8;
  if (p->kbit.banded) {
    tfqp_kbit_eval_rows(&p->kbit, run_rows, p, table, inputs, outputs[0], scratch);
  } else {
    run_kernel(p, table, (const int8_t *)inputs[0], inputs[1], (const int32_t *)inputs[2],
               outputs[0], scratch);
  }
  if (p->residual) {
    tfqp_value_add_residual((int32_t *)outputs[0], (const int32_t *)inputs[3], p->output_count);
  }
}

const tfqp_op tfqp_op_conv2d_int8 = {
    "TFQP_CONV2D_INT8", 3, 4, 1, (1u << 1) | (1u << 2), input_roles,
    option_keys, OPTION_COUNT, offsetof(tfqp_conv2d_int8_options, present),
    op_parse, op_output_dims, op_prepare, op_init_table, op_eval,
    sizeof(tfqp_conv2d_int8_params)};
