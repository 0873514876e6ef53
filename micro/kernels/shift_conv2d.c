/* TFQP_SHIFT_CONV2D and TFQP_SHIFT_DEPTHWISE_CONV2D: validation and the
 * patch gathers (contracts in tfqp/shift_conv2d.h and
 * tfqp/shift_depthwise_conv2d.h). The two differ only in a row's taps and in
 * how a patch is laid out:
 *   convolution  patch[(ky * KW + kx) * Cin + ci], every channel reads all of it
 *   depthwise    patch[ci * K + ky * KW + kx], channel co reads input channel
 *                co / depth_multiplier's K values
 * The compute is shift_op.h's. */
#include "tfqp/shift_conv2d.h"

#include <stddef.h>
#include <string.h>

#include "shift_fast.h"
#include "shift_op.h"
#include "tfqp/flexbuffer.h"
#include "tfqp/op.h"
#include "tfqp/shift_depthwise_conv2d.h"

#define WINDOW_KEYS(type)                                                                    \
  {"filter_height", offsetof(type, window.filter_height)},                                   \
      {"filter_width", offsetof(type, window.filter_width)},                                 \
      {"stride_height", offsetof(type, window.stride_height)},                               \
      {"stride_width", offsetof(type, window.stride_width)},                                 \
      {"dilation_height_factor", offsetof(type, window.dilation_height)},                    \
      {"dilation_width_factor", offsetof(type, window.dilation_width)},                      \
      {"padding", offsetof(type, window.padding)}
#define OUTPUT_KEYS(type)                                                                    \
  {"terms", offsetof(type, output.terms)},                                                   \
      {"activation_min", offsetof(type, output.activation_min)},                             \
      {"activation_max", offsetof(type, output.activation_max)},                             \
      {"output_levels", offsetof(type, output.output_levels)},                               \
      {"output_bits", offsetof(type, output.output_bits)},                                   \
      {"input_bits", offsetof(type, output.input_bits)},                                     \
      {"input_code_zero", offsetof(type, output.input_code_zero)}

static const tfqp_option_key conv_keys[] = {
    WINDOW_KEYS(tfqp_shift_conv2d_options), OUTPUT_KEYS(tfqp_shift_conv2d_options),
    {"channels_in", offsetof(tfqp_shift_conv2d_options, channels_in)}};
static const tfqp_option_key depthwise_keys[] = {
    WINDOW_KEYS(tfqp_shift_depthwise_conv2d_options),
    {"depth_multiplier", offsetof(tfqp_shift_depthwise_conv2d_options, depth_multiplier)},
    OUTPUT_KEYS(tfqp_shift_depthwise_conv2d_options),
    {"channels_in", offsetof(tfqp_shift_depthwise_conv2d_options, channels_in)}};
#define CONV_KEY_COUNT ((int32_t)(sizeof conv_keys / sizeof conv_keys[0]))
#define DEPTHWISE_KEY_COUNT ((int32_t)(sizeof depthwise_keys / sizeof depthwise_keys[0]))

tfqp_status tfqp_shift_conv2d_parse_options(const uint8_t *buffer, size_t length,
                                            tfqp_shift_conv2d_options *options,
                                            tfqp_error *error) {
  const tfqp_status s =
      tfqp_flex_read_option_keys(buffer, length, conv_keys, CONV_KEY_COUNT,
                                 TFQP_SHIFT_CONV2D_REQUIRED, options, &options->present, error);
  if (s == TFQP_OK) {
    tfqp_shift_output_defaults(&options->output, options->present, 7);
    if (!(options->present & TFQP_SHIFT_CONV2D_CHANNELS_IN)) options->channels_in = 0;
  }
  return s;
}

tfqp_status tfqp_shift_depthwise_conv2d_parse_options(
    const uint8_t *buffer, size_t length, tfqp_shift_depthwise_conv2d_options *options,
    tfqp_error *error) {
  const tfqp_status s = tfqp_flex_read_option_keys(buffer, length, depthwise_keys,
                                                   DEPTHWISE_KEY_COUNT,
                                                   TFQP_SHIFT_DEPTHWISE_CONV2D_REQUIRED, options,
                                                   &options->present, error);
  if (s == TFQP_OK) {
    tfqp_shift_output_defaults(&options->output, options->present, 8);
    if (!(options->present & TFQP_SHIFT_DEPTHWISE_CONV2D_CHANNELS_IN)) options->channels_in = 0;
  }
  return s;
}

/* What the checks read of either op's options. */
typedef struct {
  const tfqp_window_options *window;
  int32_t depthwise;
  int32_t depth_multiplier; /* depthwise only */
  const tfqp_shift_output_options *output;
  int32_t channels_in;      /* 0: not given */
  int32_t complete;         /* every required key was given */
} conv_view;

static conv_view view_of(const tfqp_window_options *window, int32_t depthwise,
                         int32_t depth_multiplier, const tfqp_shift_output_options *output,
                         int32_t channels_in, uint32_t present, uint32_t required) {
  conv_view v;
  v.channels_in = channels_in;
  v.window = window;
  v.depthwise = depthwise;
  v.depth_multiplier = depth_multiplier;
  v.output = output;
  v.complete = (present & required) == required;
  return v;
}

static conv_view view_conv(const tfqp_shift_conv2d_options *o) {
  return view_of(&o->window, 0, 1, &o->output, o->channels_in, o->present,
                 TFQP_SHIFT_CONV2D_REQUIRED);
}

static conv_view view_depthwise(const tfqp_shift_depthwise_conv2d_options *o) {
  return view_of(&o->window, 1, o->depth_multiplier, &o->output, o->channels_in, o->present,
                 TFQP_SHIFT_DEPTHWISE_CONV2D_REQUIRED);
}

static tfqp_status check_input_side(const conv_view *v, const tfqp_tensor *input,
                                    const tfqp_tensor *codes, const tfqp_tensor *code_table,
                                    tfqp_type output_type, tfqp_shift_conv2d_params *p,
                                    tfqp_error *error) {
  const char *op = v->depthwise ? "shift_depthwise_conv2d options"
                                       : "shift_conv2d options";
  int64_t taps;
  tfqp_status s;
  if (input == NULL || codes == NULL || code_table == NULL) {
    return tfqp_fail(error, TFQP_ERROR_ARGUMENT, "NULL argument", "input", 0);
  }
  if (!v->complete) return tfqp_fail(error, TFQP_ERROR_OPTIONS, "required option missing", op, 0);
  if ((s = tfqp_window_options_check(v->window, error)) ||
      (v->depthwise &&
       (s = tfqp_check_channels_option(v->depth_multiplier, "depth_multiplier", error))) ||
      (v->channels_in != 0 &&
       (s = tfqp_check_channels_option(v->channels_in, "channels_in", error))) ||
      (s = tfqp_tensor_check(input, "input", TFQP_TYPE_INT8, 4, error))) {
    return s;
  }
  if (v->channels_in != 0 && v->channels_in != input->dims[3]) {
    return tfqp_fail(error, TFQP_ERROR_TENSOR_SHAPE,
                     "int8 input depth must equal channels_in (when given)", "input",
                     input->dims[3]);
  }
  /* < 2^62; times Cin only while <= 2^31 - 1 (check_codes rejects more) */
  taps = (int64_t)v->window->filter_height * v->window->filter_width;
  if (!v->depthwise && taps <= INT32_MAX) taps *= input->dims[3];
  if ((s = tfqp_shift_layer_check_codes(&p->layer, v->output, taps, input, codes, code_table,
                                        output_type, error))) {
    return s;
  }
  if (v->depthwise &&
      (int64_t)codes->dims[0] != (int64_t)input->dims[3] * v->depth_multiplier) {
    return tfqp_fail(error, TFQP_ERROR_TENSOR_SHAPE,
                     "codes dim 0 must equal input depth * depth_multiplier", "codes",
                     codes->dims[0]);
  }
  if ((s = tfqp_window_init(v->window, input->dims[1], input->dims[2], &p->rows, &p->cols,
                            error))) {
    return s;
  }
  p->batch = input->dims[0];
  p->channels_in = input->dims[3];
  return TFQP_OK;
}

static tfqp_status output_dims(const conv_view *v, const tfqp_tensor *input,
                               const tfqp_tensor *codes, const tfqp_tensor *code_table,
                               tfqp_type output_type, int32_t dims[4], tfqp_error *error) {
  tfqp_shift_conv2d_params p;
  tfqp_status s;
  memset(&p, 0, sizeof p);
  if ((s = check_input_side(v, input, codes, code_table, output_type, &p, error))) return s;
  dims[0] = p.batch;
  dims[1] = p.rows.out;
  dims[2] = p.cols.out;
  dims[3] = p.layer.output_depth;
  return TFQP_OK;
}

/* A fast path's scratch for the whole op, or (banded: run one output row at a
 * time, tfqp_kbit_eval_rows) for its worst row. */
static size_t fast_scratch_bytes(const tfqp_shift_conv2d_params *p, int32_t depthwise,
                                 int32_t banded) {
  tfqp_shift_conv2d_params band;
  if (!banded) return tfqp_shift_fast_conv2d_scratch_bytes(p, depthwise);
  band = *p;
  band.batch = 1;
  tfqp_kbit_worst_band(&p->rows, &band.rows);
  band.layer.pixels = band.rows.out * band.cols.out;
  return tfqp_shift_fast_conv2d_scratch_bytes(&band, depthwise);
}

static tfqp_status prepare(const conv_view *v, const tfqp_tensor *input,
                           const tfqp_tensor *codes, const tfqp_tensor *code_table,
                           const tfqp_tensor *transform, const tfqp_tensor *output,
                           tfqp_shift_conv2d_params *p, int32_t banded, tfqp_error *error) {
  tfqp_status s;
  if (output == NULL || p == NULL) {
    return tfqp_fail(error, TFQP_ERROR_ARGUMENT, "NULL argument", "output", 0);
  }
  if ((s = check_input_side(v, input, codes, code_table, output->type, p, error))) return s;
  {
    const int32_t outer[3] = {p->batch, p->rows.out, p->cols.out};
    const int64_t pixels = (int64_t)p->batch * p->rows.out * p->cols.out;
    const int32_t taps = p->layer.taps;
    size_t fast;
    s = !v->depthwise
            ? tfqp_shift_layer_check_output(&p->layer, transform, output, 4, outer, pixels, taps,
                                            0, 1, error)
            : tfqp_shift_layer_check_output(&p->layer, transform, output, 4, outer, pixels,
                                            (int64_t)taps * p->channels_in, taps,
                                            v->depth_multiplier, error);
    if (s != TFQP_OK) return s;
    fast = fast_scratch_bytes(p, v->depthwise, banded);
    if (fast > p->layer.scratch_bytes) p->layer.scratch_bytes = fast;
    return TFQP_OK;
  }
}

tfqp_status tfqp_shift_conv2d_output_dims(const tfqp_shift_conv2d_options *options,
                                          const tfqp_tensor *input, const tfqp_tensor *codes,
                                          const tfqp_tensor *code_table, tfqp_type output_type,
                                          int32_t dims[4], tfqp_error *error) {
  conv_view v;
  if (options == NULL) return tfqp_fail(error, TFQP_ERROR_ARGUMENT, "NULL argument", "options", 0);
  v = view_conv(options);
  return output_dims(&v, input, codes, code_table, output_type, dims, error);
}

tfqp_status tfqp_shift_depthwise_conv2d_output_dims(
    const tfqp_shift_depthwise_conv2d_options *options, const tfqp_tensor *input,
    const tfqp_tensor *codes, const tfqp_tensor *code_table, tfqp_type output_type,
    int32_t dims[4], tfqp_error *error) {
  conv_view v;
  if (options == NULL) return tfqp_fail(error, TFQP_ERROR_ARGUMENT, "NULL argument", "options", 0);
  v = view_depthwise(options);
  return output_dims(&v, input, codes, code_table, output_type, dims, error);
}

tfqp_status tfqp_shift_conv2d_prepare(const tfqp_shift_conv2d_options *options,
                                      const tfqp_tensor *input, const tfqp_tensor *codes,
                                      const tfqp_tensor *code_table,
                                      const tfqp_tensor *transform, const tfqp_tensor *output,
                                      tfqp_shift_conv2d_params *params, tfqp_error *error) {
  conv_view v;
  if (options == NULL) return tfqp_fail(error, TFQP_ERROR_ARGUMENT, "NULL argument", "options", 0);
  v = view_conv(options);
  return prepare(&v, input, codes, code_table, transform, output, params, 0, error);
}

tfqp_status tfqp_shift_depthwise_conv2d_prepare(
    const tfqp_shift_depthwise_conv2d_options *options, const tfqp_tensor *input,
    const tfqp_tensor *codes, const tfqp_tensor *code_table, const tfqp_tensor *transform,
    const tfqp_tensor *output, tfqp_shift_conv2d_params *params, tfqp_error *error) {
  conv_view v;
  if (options == NULL) return tfqp_fail(error, TFQP_ERROR_ARGUMENT, "NULL argument", "options", 0);
  v = view_depthwise(options);
  return prepare(&v, input, codes, code_table, transform, output, params, 0, error);
}

tfqp_status tfqp_shift_conv2d_init_table(const tfqp_shift_conv2d_params *params,
                                         const tfqp_word *codes, const int16_t *code_table,
                                         const int32_t *transform, int32_t *table,
                                         size_t table_bytes, tfqp_error *error) {
  return tfqp_shift_layer_init_table(&params->layer, codes, code_table, transform, NULL, table,
                                     table_bytes, error);
}

/* ------------------------------------------------------------------ gathers */

/* The image of output position `pixel` and the position's first input row and
 * column and valid tap ranges. */
typedef struct {
  const int8_t *image;
  int32_t iy0, ix0, ky0, ky1, kx0, kx1;
} window_at;

static window_at locate(const tfqp_shift_conv2d_params *p, const int8_t *input, int32_t pixel) {
  const int32_t per_image = p->rows.out * p->cols.out;
  const int32_t n = pixel / per_image;
  const int32_t oy = pixel % per_image / p->cols.out;
  const int32_t ox = pixel % p->cols.out;
  window_at w;
  w.image = input + (size_t)n * p->rows.in * p->cols.in * p->channels_in;
  w.iy0 = oy * p->rows.stride - p->rows.pad_before;
  w.ix0 = ox * p->cols.stride - p->cols.pad_before;
  tfqp_window_axis_taps(&p->rows, oy, &w.ky0, &w.ky1);
  tfqp_window_axis_taps(&p->cols, ox, &w.kx0, &w.kx1);
  return w;
}

/* The input values of tap (ky, kx) (Cin of them), or NULL for a padded tap. */
static const int8_t *tap_values(const tfqp_shift_conv2d_params *p, const window_at *w, int32_t ky,
                                int32_t kx) {
  if (ky < w->ky0 || ky >= w->ky1 || kx < w->kx0 || kx >= w->kx1) return NULL;
  return w->image + ((size_t)(w->iy0 + ky * p->rows.dilation) * p->cols.in +
                     (size_t)(w->ix0 + kx * p->cols.dilation)) *
                        p->channels_in;
}

static void gather_conv(const void *params, const int8_t *input, int32_t pixel, int16_t *patch) {
  const tfqp_shift_conv2d_params *p = (const tfqp_shift_conv2d_params *)params;
  const window_at w = locate(p, input, pixel);
  const int32_t cin = p->channels_in;
  const int32_t zp = p->layer.input_zero_point;
  int32_t ky, kx, ci;
  for (ky = 0; ky < p->rows.filter; ++ky) {
    for (kx = 0; kx < p->cols.filter; ++kx, patch += cin) {
      const int8_t *q = tap_values(p, &w, ky, kx);
      for (ci = 0; ci < cin; ++ci) patch[ci] = (int16_t)(q != NULL ? q[ci] - zp : 0);
    }
  }
}

static void gather_depthwise(const void *params, const int8_t *input, int32_t pixel,
                             int16_t *patch) {
  const tfqp_shift_conv2d_params *p = (const tfqp_shift_conv2d_params *)params;
  const window_at w = locate(p, input, pixel);
  const int32_t cin = p->channels_in;
  const size_t taps = (size_t)p->layer.taps;
  const int32_t zp = p->layer.input_zero_point;
  int32_t ky, kx, ci;
  size_t k = 0;
  for (ky = 0; ky < p->rows.filter; ++ky) {
    for (kx = 0; kx < p->cols.filter; ++kx, ++k) {
      const int8_t *q = tap_values(p, &w, ky, kx);
      for (ci = 0; ci < cin; ++ci) {
        patch[(size_t)ci * taps + k] = (int16_t)(q != NULL ? q[ci] - zp : 0);
      }
    }
  }
}

void tfqp_shift_conv2d_eval(const tfqp_shift_conv2d_params *params, const int32_t *table,
                            const int8_t *input, const tfqp_word *codes,
                            const int32_t *transform, void *scratch, void *output) {
  if (tfqp_shift_fast_conv2d(params, 0, table, transform, input, codes, scratch, output)) return;
  tfqp_shift_eval(&params->layer, table, transform, codes, params, gather_conv, input, scratch,
                  output);
}

void tfqp_shift_depthwise_conv2d_eval(const tfqp_shift_conv2d_params *params,
                                      const int32_t *table, const int8_t *input,
                                      const tfqp_word *codes, const int32_t *transform,
                                      void *scratch, void *output) {
  if (tfqp_shift_fast_conv2d(params, 1, table, transform, input, codes, scratch, output)) return;
  tfqp_shift_eval(&params->layer, table, transform, codes, params, gather_depthwise, input,
                  scratch, output);
}

/* ------------------------------------------------------------- op table rows */

static const char *const input_roles[] = {"input", "codes", "code_table", "transform"};
#define CONSTANT_INPUTS ((1u << 1) | (1u << 2) | (1u << 3))

static tfqp_status conv_parse(const uint8_t *buffer, size_t length, tfqp_op_options *options,
                              tfqp_error *error) {
  return tfqp_shift_conv2d_parse_options(buffer, length, &options->shift_conv2d, error);
}

static tfqp_status depthwise_parse(const uint8_t *buffer, size_t length,
                                   tfqp_op_options *options, tfqp_error *error) {
  return tfqp_shift_depthwise_conv2d_parse_options(buffer, length,
                                                   &options->shift_depthwise_conv2d, error);
}

/* Either op's view and k-bit options (the row functions'). */
static conv_view row_view(const tfqp_op_options *options, int32_t depthwise,
                          tfqp_kbit_options *k) {
  const conv_view v = depthwise ? view_depthwise(&options->shift_depthwise_conv2d)
                                : view_conv(&options->shift_conv2d);
  *k = tfqp_shift_kbit_options(v.output, v.channels_in);
  return v;
}

static tfqp_status row_output_dims(const tfqp_op_options *options, int32_t depthwise,
                                   const tfqp_tensor *inputs, tfqp_type output_type,
                                   int32_t *rank, int32_t dims[TFQP_MAX_RANK],
                                   tfqp_error *error) {
  tfqp_kbit_options k;
  const conv_view v = row_view(options, depthwise, &k);
  tfqp_tensor input;
  tfqp_type type;
  tfqp_status s;
  *rank = 4;
  if ((s = tfqp_kbit_dims_view(&k, inputs, output_type, &input, &type, error)) ||
      (s = output_dims(&v, &input, &inputs[1], &inputs[2], type, dims, error))) {
    return s;
  }
  if ((s = tfqp_kbit_check_options(&k, error))) return s;
  tfqp_kbit_output_dims(&k, 4, dims);
  return TFQP_OK;
}

static tfqp_status conv_output_dims(const tfqp_op_options *options, const tfqp_tensor *inputs,
                                    int32_t input_count, tfqp_type output_type, int32_t *rank,
                                    int32_t dims[TFQP_MAX_RANK], tfqp_error *error) {
  (void)input_count;
  return row_output_dims(options, 0, inputs, output_type, rank, dims, error);
}

static tfqp_status depthwise_output_dims(const tfqp_op_options *options,
                                         const tfqp_tensor *inputs, int32_t input_count,
                                         tfqp_type output_type, int32_t *rank,
                                         int32_t dims[TFQP_MAX_RANK], tfqp_error *error) {
  (void)input_count;
  return row_output_dims(options, 1, inputs, output_type, rank, dims, error);
}

/* The op's prepare on the tensors its kernels read (a packed input or codes
 * output as int8), then the k-bit conversions' scratch after its own. */
static tfqp_status row_prepare(const tfqp_op_options *options, int32_t depthwise,
                               const tfqp_tensor *inputs, const tfqp_tensor *outputs,
                               tfqp_op_params *params, tfqp_op_buffers *buffers,
                               tfqp_error *error) {
  tfqp_shift_conv2d_params *p = &params->shift_conv2d;
  tfqp_kbit_options k;
  const conv_view v = row_view(options, depthwise, &k);
  tfqp_tensor input, output;
  tfqp_status s;
  /* a packed input or output: run by output rows (tfqp_kbit_io_init_rows) */
  const int32_t banded = TFQP_KBIT_VALID(k.input_bits) || TFQP_KBIT_VALID(k.output_bits);
  if ((s = tfqp_kbit_prepare_view(&k, inputs, &outputs[0], &input, &output, error)) ||
      (s = prepare(&v, &input, &inputs[1], &inputs[2], &inputs[3], &output, p, banded, error)) ||
      (s = tfqp_kbit_io_init_rows(&p->kbit, &k, &input, &output, &p->rows,
                                  p->layer.scratch_bytes, error))) {
    return s;
  }
  buffers->table_bytes = p->layer.table_bytes;
  buffers->scratch_bytes = p->kbit.scratch_bytes;
  return TFQP_OK;
}

static tfqp_status conv_prepare(const tfqp_op_options *options, const tfqp_tensor *inputs,
                                int32_t input_count, const tfqp_tensor *outputs,
                                tfqp_op_params *params, tfqp_op_buffers *buffers,
                                tfqp_error *error) {
  (void)input_count;
  return row_prepare(options, 0, inputs, outputs, params, buffers, error);
}

static tfqp_status depthwise_prepare(const tfqp_op_options *options, const tfqp_tensor *inputs,
                                     int32_t input_count, const tfqp_tensor *outputs,
                                     tfqp_op_params *params, tfqp_op_buffers *buffers,
                                     tfqp_error *error) {
  (void)input_count;
  return row_prepare(options, 1, inputs, outputs, params, buffers, error);
}

/* Both ops' params are the union's shift_conv2d member. */
static tfqp_status op_init_table(const tfqp_op_params *params, const void *const *constants,
                                 int32_t *table, size_t table_bytes, tfqp_error *error) {
  return tfqp_shift_conv2d_init_table(&params->shift_conv2d, (const tfqp_word *)constants[1],
                                      (const int16_t *)constants[2],
                                      (const int32_t *)constants[3], table, table_bytes, error);
}

/* The params of a band of output rows (tfqp_kbit_eval_rows). */
static tfqp_shift_conv2d_params band_params(const void *params, const tfqp_window_axis *rows) {
  tfqp_shift_conv2d_params band = *(const tfqp_shift_conv2d_params *)params;
  band.batch = 1;
  band.rows = *rows;
  band.layer.pixels = rows->out * band.cols.out;
  return band;
}

static void conv_rows(const void *params, const int32_t *table, const tfqp_window_axis *rows,
                      const int8_t *input, const void *const *inputs, void *output,
                      void *scratch) {
  const tfqp_shift_conv2d_params band = band_params(params, rows);
  tfqp_shift_conv2d_eval(&band, table, input, (const tfqp_word *)inputs[1],
                         (const int32_t *)inputs[3], scratch, output);
}

static void depthwise_rows(const void *params, const int32_t *table,
                           const tfqp_window_axis *rows, const int8_t *input,
                           const void *const *inputs, void *output, void *scratch) {
  const tfqp_shift_conv2d_params band = band_params(params, rows);
  tfqp_shift_depthwise_conv2d_eval(&band, table, input, (const tfqp_word *)inputs[1],
                                   (const int32_t *)inputs[3], scratch, output);
}

static void row_eval(const tfqp_op_params *params, int32_t depthwise, const int32_t *table,
                     const void *const *inputs, void *const *outputs, void *scratch) {
  const tfqp_shift_conv2d_params *p = &params->shift_conv2d;
  const int8_t *input = (const int8_t *)inputs[0];
  if (p->kbit.banded) {
    tfqp_kbit_eval_rows(&p->kbit, depthwise ? depthwise_rows : conv_rows, p, table, inputs,
                        outputs[0], scratch);
  } else if (depthwise) {
    tfqp_shift_depthwise_conv2d_eval(p, table, input, (const tfqp_word *)inputs[1],
                                     (const int32_t *)inputs[3], scratch, outputs[0]);
  } else {
    tfqp_shift_conv2d_eval(p, table, input, (const tfqp_word *)inputs[1],
                           (const int32_t *)inputs[3], scratch, outputs[0]);
  }
}

static void conv_eval(const tfqp_op_params *params, const int32_t *table,
                      const void *const *inputs, void *const *outputs, void *scratch) {
  row_eval(params, 0, table, inputs, outputs, scratch);
}

static void depthwise_eval(const tfqp_op_params *params, const int32_t *table,
                           const void *const *inputs, void *const *outputs, void *scratch) {
  row_eval(params, 1, table, inputs, outputs, scratch);
}

const tfqp_op tfqp_op_shift_conv2d = {
    "TFQP_SHIFT_CONV2D", 4, 4, 1, CONSTANT_INPUTS, input_roles,
    conv_keys, CONV_KEY_COUNT, offsetof(tfqp_shift_conv2d_options, present),
    conv_parse, conv_output_dims, conv_prepare, op_init_table, conv_eval,
    sizeof(tfqp_shift_conv2d_params)};

const tfqp_op tfqp_op_shift_depthwise_conv2d = {
    "TFQP_SHIFT_DEPTHWISE_CONV2D", 4, 4, 1, CONSTANT_INPUTS, input_roles,
    depthwise_keys, DEPTHWISE_KEY_COUNT, offsetof(tfqp_shift_depthwise_conv2d_options, present),
    depthwise_parse, depthwise_output_dims, depthwise_prepare, op_init_table, depthwise_eval,
    sizeof(tfqp_shift_conv2d_params)};
