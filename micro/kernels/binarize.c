/* TFQP_BINARIZE: validation and kernel (contract in tfqp/binarize.h). */
#include "tfqp/binarize.h"

#include <stddef.h>
#include <string.h>

#include "tfqp/flexbuffer.h"
#include "tfqp/op.h"
#include "tfqp/packing.h"

tfqp_status tfqp_binarize_parse_options(const uint8_t *buffer, size_t length,
                                        tfqp_binarize_options *options, tfqp_error *error) {
  options->present = 0;
  if (buffer == NULL || length == 0) return TFQP_OK; /* no options */
  /* a map: every key is unknown */
  return tfqp_flex_read_option_keys(buffer, length, NULL, 0, 0u, options, &options->present,
                                    error);
}

static tfqp_status check_input(const tfqp_tensor *input, tfqp_error *error) {
  tfqp_status s;
  if (input == NULL) return tfqp_fail(error, TFQP_ERROR_ARGUMENT, "NULL argument", "binarize", 0);
  if (input->type != TFQP_TYPE_INT8 && input->type != TFQP_TYPE_INT32) {
    return tfqp_fail(error, TFQP_ERROR_TENSOR_TYPE, "input must be int8 or int32", "input",
                     input->type);
  }
  if (input->rank < 1 || input->rank > TFQP_MAX_RANK) {
    return tfqp_fail(error, TFQP_ERROR_TENSOR_SHAPE, "input rank must be in [1, 6]", "input",
                     input->rank);
  }
  if ((s = tfqp_tensor_check(input, "input", input->type, input->rank, error))) return s;
  if (input->type == TFQP_TYPE_INT8 && (input->zero_point < -128 || input->zero_point > 127)) {
    return tfqp_fail(error, TFQP_ERROR_TENSOR_DATA, "int8 zero point must be in [-128, 127]",
                     "input", input->zero_point);
  }
  return TFQP_OK;
}

tfqp_status tfqp_binarize_output_dims(const tfqp_tensor *input, int32_t *rank,
                                      int32_t dims[TFQP_MAX_RANK], tfqp_error *error) {
  int32_t i;
  const tfqp_status s = check_input(input, error);
  if (s != TFQP_OK) return s;
  *rank = input->rank;
  for (i = 0; i < input->rank - 1; ++i) dims[i] = input->dims[i];
  dims[input->rank - 1] = TFQP_WORDS(input->dims[input->rank - 1]);
  return TFQP_OK;
}

tfqp_status tfqp_binarize_prepare(const tfqp_tensor *input, const tfqp_tensor *output,
                                  tfqp_binarize_params *p, tfqp_error *error) {
  static const char *const outer_rule = "output dims must equal the input's but the last";
  int32_t rank, dims[TFQP_MAX_RANK], i;
  int64_t pixels = 1;
  tfqp_status s = tfqp_binarize_output_dims(input, &rank, dims, error);
  if (s != TFQP_OK) return s;
  if (output == NULL || p == NULL) {
    return tfqp_fail(error, TFQP_ERROR_ARGUMENT, "NULL argument", "binarize", 0);
  }
  if ((s = tfqp_tensor_check(output, "output", TFQP_TYPE_INT32, rank, error))) return s;
  for (i = 0; i < rank - 1; ++i) {
    if ((s = tfqp_tensor_check_dim(output, i, dims[i], outer_rule, "output", error))) return s;
    pixels *= dims[i];
  }
  if ((s = tfqp_tensor_check_dim(output, rank - 1, dims[rank - 1],
                                 "packed output depth must equal ceil(input depth/32)", "output",
                                 error))) {
    return s;
  }
  p->pixels = (int32_t)pixels; /* <= the input's element count, checked < 2^31 */
  p->channels = input->dims[rank - 1];
  p->int32_input = input->type == TFQP_TYPE_INT32;
  p->zero_point = p->int32_input ? 0 : input->zero_point;
  return TFQP_OK;
}

void tfqp_binarize_eval(const tfqp_binarize_params *p, const void *input, tfqp_word *output) {
  const int32_t channels = p->channels;
  const int32_t words = TFQP_WORDS(channels);
  const int32_t *values = (const int32_t *)input;
  int32_t n, c;
  if (!p->int32_input) {
    tfqp_pack_int8((const int8_t *)input, p->pixels, channels, p->zero_point, output);
    return;
  }
  for (n = 0; n < p->pixels; ++n) {
    const int32_t *v = values + (size_t)n * channels;
    tfqp_word *out = output + (size_t)n * words;
    for (c = 0; c < words; ++c) out[c] = 0;
    for (c = 0; c < channels; ++c) {
      out[TFQP_WORD_INDEX(c)] |= (tfqp_word)(v[c] < 0) << TFQP_BIT_INDEX(c);
    }
  }
}

/* ------------------------------------------------------------- op table row */

static const char *const input_roles[] = {"input"};

static tfqp_status op_parse(const uint8_t *buffer, size_t length, tfqp_op_options *options,
                            tfqp_error *error) {
  return tfqp_binarize_parse_options(buffer, length, &options->binarize, error);
}

static tfqp_status op_output_dims(const tfqp_op_options *options, const tfqp_tensor *inputs,
                                  int32_t input_count, tfqp_type output_type, int32_t *rank,
                                  int32_t dims[TFQP_MAX_RANK], tfqp_error *error) {
  (void)options;
  (void)input_count;
  (void)output_type; /* prepare checks the output's type */
  return tfqp_binarize_output_dims(&inputs[0], rank, dims, error);
}

static tfqp_status op_prepare(const tfqp_op_options *options, const tfqp_tensor *inputs,
                              int32_t input_count, const tfqp_tensor *outputs,
                              tfqp_op_params *params, tfqp_op_buffers *buffers,
                              tfqp_error *error) {
  (void)options;
  (void)input_count;
  buffers->table_bytes = 0;
  buffers->scratch_bytes = 0;
  return tfqp_binarize_prepare(&inputs[0], &outputs[0], &params->binarize, error);
}

static void op_eval(const tfqp_op_params *params, const int32_t *table,
                    const void *const *inputs, void *const *outputs, void *scratch) {
  (void)table;
  (void)scratch;
  tfqp_binarize_eval(&params->binarize, inputs[0], (tfqp_word *)outputs[0]);
}

const tfqp_op tfqp_op_binarize = {
    "TFQP_BINARIZE", 1, 1, 1, 0u, input_roles,
    NULL, 0, offsetof(tfqp_binarize_options, present),
    op_parse, op_output_dims, op_prepare, NULL, op_eval,
    sizeof(tfqp_binarize_params)};
