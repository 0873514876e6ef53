/* TFQP_FULLY_CONNECTED_INT8: validation, table and the portable kernel
 * (contract in tfqp/fully_connected_int8.h). */
#include "tfqp/fully_connected_int8.h"

#include <stddef.h>
#include <string.h>

#include "int8_arm.h"
#include "int8_op.h"
#include "tfqp/flexbuffer.h"
#include "tfqp/op.h"

#define KEY(field) {#field, offsetof(tfqp_fully_connected_int8_options, field)}
static const tfqp_option_key option_keys[] = {KEY(channels_in), KEY(int32_output),
                                               KEY(output_levels),
    KEY(output_bits), KEY(input_bits), KEY(input_code_zero)};
#undef KEY
#define OPTION_COUNT ((int32_t)(sizeof option_keys / sizeof option_keys[0]))

tfqp_status tfqp_fully_connected_int8_parse_options(const uint8_t *buffer, size_t length,
                                                    tfqp_fully_connected_int8_options *options,
                                                    tfqp_error *error) {
  const tfqp_status s = tfqp_flex_read_option_keys(buffer, length, option_keys, OPTION_COUNT,
                                                   TFQP_FC_INT8_REQUIRED, options, &options->present, error);
  /* int32_output, output_levels, output_bits, input_bits, input_code_zero */
  if (s == TFQP_OK) tfqp_int8_op_defaults(&options->int32_output, 5, options->present, 1);
  return s;
}

static tfqp_status check_input_side(const tfqp_fully_connected_int8_options *o,
                                    const tfqp_tensor *input, const tfqp_tensor *weights,
                                    tfqp_fully_connected_int8_params *p, tfqp_error *error) {
  tfqp_status s;
  if (o == NULL || input == NULL || weights == NULL || p == NULL) {
    return tfqp_fail(error, TFQP_ERROR_ARGUMENT, "NULL argument", "fully_connected_int8", 0);
  }
  if (!(o->present & TFQP_FC_INT8_REQUIRED)) {
    return tfqp_fail(error, TFQP_ERROR_OPTIONS, "required option missing", "channels_in", 0);
  }
  if ((s = tfqp_check_option_range(o->channels_in, 1, TFQP_INT8_OP_MAX_TAPS,
                                   "must be in [1, 66311] (K * 255 * 127 < 2^31)",
                                   "channels_in", error)) ||
      (s = tfqp_int8_op_check_output_options(o->int32_output, o->output_levels, error)) ||
      (s = tfqp_tensor_check(input, "input", TFQP_TYPE_INT8, 2, error)) ||
      (s = tfqp_tensor_check_dim(input, 1, o->channels_in,
                                 "int8 input depth must equal channels_in", "input", error)) ||
      (s = tfqp_int8_op_check_weights(weights, 2, &p->weights_int16, error)) ||
      (s = tfqp_tensor_check_dim(weights, 1, o->channels_in,
                                 "weights dim 1 must equal channels_in", "weights", error))) {
    return s;
  }
  if (input->zero_point < -128 || input->zero_point > 127) {
    return tfqp_fail(error, TFQP_ERROR_TENSOR_DATA, "int8 zero point must be in [-128, 127]",
                     "input", input->zero_point);
  }
  p->batch = input->dims[0];
  p->channels_in = o->channels_in;
  p->channels_out = weights->dims[0];
  p->input_zero_point = input->zero_point;
  p->int32_output = o->int32_output;
  p->output_levels = o->output_levels;
  p->codes_only = o->output_bits != 0;
  p->output_depth =
      tfqp_int8_op_output_depth(p->int32_output, p->output_levels, p->channels_out);
  p->table_bytes = tfqp_int8_op_table_bytes(p->int32_output, p->output_levels, p->channels_out);
  return TFQP_OK;
}

tfqp_status tfqp_fully_connected_int8_output_dims(
    const tfqp_fully_connected_int8_options *options, const tfqp_tensor *input,
    const tfqp_tensor *weights, int32_t dims[2], tfqp_error *error) {
  tfqp_fully_connected_int8_params p;
  tfqp_status s;
  memset(&p, 0, sizeof p);
  if ((s = check_input_side(options, input, weights, &p, error)) != TFQP_OK) return s;
  dims[0] = p.batch;
  dims[1] = p.output_depth;
  return TFQP_OK;
}

tfqp_status tfqp_fully_connected_int8_prepare(const tfqp_fully_connected_int8_options *options,
                                              const tfqp_tensor *input,
                                              const tfqp_tensor *weights,
                                              const tfqp_tensor *transform,
                                              const tfqp_tensor *output,
                                              tfqp_fully_connected_int8_params *p,
                                              tfqp_error *error) {
  tfqp_status s;
  if ((s = check_input_side(options, input, weights, p, error)) != TFQP_OK) return s;
  return tfqp_int8_op_check_output(p->int32_output, p->output_levels, output, transform, 2, &p->batch,
                                   p->channels_out, "weights", error);
}

tfqp_status tfqp_fully_connected_int8_init_table(const tfqp_fully_connected_int8_params *p,
                                                 const void *weights,
                                                 const int32_t *transform, int32_t *table,
                                                 size_t table_bytes, tfqp_error *error) {
  return tfqp_int8_op_init_table(p->int32_output, p->output_levels, p->codes_only, weights, p->weights_int16, transform,
                                 p->channels_out, p->channels_in, table, table_bytes,
                                 p->table_bytes, error);
}

void tfqp_fully_connected_int8_eval(const tfqp_fully_connected_int8_params *p,
                                    const int32_t *table, const int8_t *input,
                                    const void *weights, const int32_t *transform,
                                    void *output) {
  const int32_t cin = p->channels_in;
  const int32_t cout = p->channels_out;
  const int32_t zp = p->input_zero_point;
  int32_t n, co, i;
  for (n = 0; n < p->batch; ++n) {
    const int8_t *q = input + (size_t)n * cin;
    void *out = tfqp_int8_op_pixel_output(p->int32_output, p->output_levels, output, (size_t)n,
                                          p->output_depth);
    if (!p->int32_output && p->output_levels == 0) {
      for (i = 0; i < p->output_depth; ++i) ((tfqp_word *)out)[i] = 0;
    }
    for (co = 0; co < cout; ++co) {
      const size_t at = (size_t)co * cin;
      const int32_t acc = p->weights_int16
                              ? tfqp_int16_dot(q, (const int16_t *)weights + at, cin, zp)
                              : tfqp_int8_dot(q, (const int8_t *)weights + at, cin, zp);
      tfqp_int8_op_output(p->int32_output, p->output_levels, p->codes_only, table, transform,
                          cout, co, acc, out);
    }
  }
}

/* ------------------------------------------------------------- op table row */

static const char *const input_roles[] = {"input", "weights", "transform", "residual"};

static tfqp_status op_parse(const uint8_t *buffer, size_t length, tfqp_op_options *options,
                            tfqp_error *error) {
  return tfqp_fully_connected_int8_parse_options(buffer, length,
                                                 &options->fully_connected_int8, error);
}

static tfqp_kbit_options kbit_of(const tfqp_op_options *options) {
  const tfqp_fully_connected_int8_options *o = &options->fully_connected_int8;
  return tfqp_kbit_options_of(o->input_bits, o->input_code_zero, o->output_bits,
                              o->output_levels, (o->present & TFQP_FC_INT8_REQUIRED) ? o->channels_in : 0);
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
  *rank = 2;
  if ((s = tfqp_kbit_dims_view(&k, inputs, output_type, &input, &type, error)) ||
      (s = tfqp_int8_op_check_output_type(options->fully_connected_int8.output_levels, type, error)) ||
      (s = tfqp_fully_connected_int8_output_dims(&options->fully_connected_int8, &input, &inputs[1], dims, error))) {
    return s;
  }
  if ((s = tfqp_kbit_check_options(&k, error))) return s;
  tfqp_kbit_output_dims(&k, 2, dims);
  return TFQP_OK;
}

/* Whether Cortex-M builds run int8_arm.c's kernels (every output: packed
 * signs, int32 values, codes; -DTFQP_PORTABLE keeps the portable kernel). */
static int arm_path(const tfqp_fully_connected_int8_params *p) {
  (void)p;
  return TFQP_HAVE_ARM_DSP;
}

/* int8_arm.c gives accumulators to finish (value and codes outputs), not bits. */
static int32_t accumulates(const tfqp_fully_connected_int8_params *p) {
  return p->int32_output || p->output_levels != 0;
}

static tfqp_status op_prepare(const tfqp_op_options *options, const tfqp_tensor *inputs,
                              int32_t input_count, const tfqp_tensor *outputs,
                              tfqp_op_params *params, tfqp_op_buffers *buffers,
                              tfqp_error *error) {
  tfqp_fully_connected_int8_params *p = &params->fully_connected_int8;
  const tfqp_kbit_options k = kbit_of(options);
  tfqp_tensor input, output;
  tfqp_status s;
  if ((s = tfqp_kbit_prepare_view(&k, inputs, &outputs[0], &input, &output, error)) ||
      (s = tfqp_fully_connected_int8_prepare(&options->fully_connected_int8, &input, &inputs[1], &inputs[2], &output, p,
                               error)) ||
      (s = tfqp_value_prepare_residual(p->int32_output, inputs, input_count, &outputs[0],
                                       &p->residual, &p->output_count, error)) ||
      (s = tfqp_kbit_io_init(&p->kbit, &k, &input, &output,
                             arm_path(p) ? tfqp_arm_int8_scratch_bytes(p->channels_in, p->channels_out,
                                                                       0)
                                         : 0,
                             error))) {
    return s;
  }
  /* Cortex-M builds: int8_arm.c's table extension, and its window first in
   * the scratch (the k-bit conversions' regions after it) */
  buffers->table_bytes =
      p->table_bytes +
      (arm_path(p) ? tfqp_arm_int8_table_bytes(accumulates(p), p->channels_out, p->channels_in) : 0);
  buffers->scratch_bytes = p->kbit.scratch_bytes;
  return TFQP_OK;
}

static tfqp_status op_init_table(const tfqp_op_params *params, const void *const *constants,
                                 int32_t *table, size_t table_bytes, tfqp_error *error) {
  const tfqp_fully_connected_int8_params *p = &params->fully_connected_int8;
  tfqp_status s = tfqp_fully_connected_int8_init_table(&params->fully_connected_int8,
                                              constants[1],
                                              (const int32_t *)constants[2], table, table_bytes,
                                              error);
  if (s == TFQP_OK && arm_path(p)) {
    s = tfqp_arm_int8_init_table(accumulates(p), constants[1], p->weights_int16,
                                 p->channels_out, p->channels_in, table, table_bytes,
                                 p->table_bytes, error);
  }
  return s;
}

static void op_eval(const tfqp_op_params *params, const int32_t *table,
                    const void *const *inputs, void *const *outputs, void *scratch) {
  const tfqp_fully_connected_int8_params *p = &params->fully_connected_int8;
  const int8_t *input = tfqp_kbit_input(&p->kbit, inputs[0], scratch);
  void *output = tfqp_kbit_output(&p->kbit, outputs[0], scratch);
#if TFQP_HAVE_ARM_DSP
  if (arm_path(p)) {
    tfqp_arm_fully_connected_int8_eval(p, table, (const int32_t *)inputs[2], input, output,
                                       scratch);
  } else {
    tfqp_fully_connected_int8_eval(p, table, input, inputs[1], (const int32_t *)inputs[2],
                                   output);
  }
#else
  tfqp_fully_connected_int8_eval(p, table, input, inputs[1], (const int32_t *)inputs[2], output);
#endif
  tfqp_kbit_finish(&p->kbit, outputs[0], scratch);
  if (p->residual) {
    tfqp_value_add_residual((int32_t *)outputs[0], (const int32_t *)inputs[3], p->output_count);
  }
}

const tfqp_op tfqp_op_fully_connected_int8 = {
    "TFQP_FULLY_CONNECTED_INT8", 3, 4, 1, (1u << 1) | (1u << 2), input_roles,
    option_keys, OPTION_COUNT, offsetof(tfqp_fully_connected_int8_options, present),
    op_parse, op_output_dims, op_prepare, op_init_table, op_eval,
    sizeof(tfqp_fully_connected_int8_params)};
