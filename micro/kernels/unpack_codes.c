/* TFQP_UNPACK_CODES: validation and kernel (contract in tfqp/unpack_codes.h). */
#include "tfqp/unpack_codes.h"

#include <stddef.h>
#include <string.h>

#include "tfqp/flexbuffer.h"
#include "tfqp/op.h"

#define KEY(field) {#field, offsetof(tfqp_unpack_codes_options, field)}
static const tfqp_option_key option_keys[] = {KEY(channels), KEY(bits), KEY(code_zero)};
#undef KEY
#define OPTION_COUNT ((int32_t)(sizeof option_keys / sizeof option_keys[0]))

tfqp_status tfqp_unpack_codes_parse_options(const uint8_t *buffer, size_t length,
                                            tfqp_unpack_codes_options *options,
                                            tfqp_error *error) {
  const tfqp_status s =
      tfqp_flex_read_option_keys(buffer, length, option_keys, OPTION_COUNT,
                                 TFQP_UNPACK_CODES_REQUIRED, options, &options->present, error);
  if (s == TFQP_OK && !(options->present & TFQP_UNPACK_CODES_ZERO)) options->code_zero = 0;
  return s;
}

static tfqp_status check_input(const tfqp_unpack_codes_options *o, const tfqp_tensor *input,
                               tfqp_error *error) {
  tfqp_status s;
  if (o == NULL || input == NULL) {
    return tfqp_fail(error, TFQP_ERROR_ARGUMENT, "NULL argument", "unpack_codes", 0);
  }
  if ((o->present & TFQP_UNPACK_CODES_REQUIRED) != TFQP_UNPACK_CODES_REQUIRED) {
    return tfqp_fail(error, TFQP_ERROR_OPTIONS, "required option missing",
                     "unpack_codes options", (int64_t)o->present);
  }
  if ((s = tfqp_check_channels_option(o->channels, "channels", error))) return s;
  if (!TFQP_KBIT_VALID(o->bits)) {
    return tfqp_fail(error, TFQP_ERROR_OPTION_VALUE, "must be 2 or 4", "bits", o->bits);
  }
  if ((s = tfqp_check_option_range(o->code_zero, 0, (1 << o->bits) - 1,
                                   "must be in [0, 2^bits)", "code_zero", error))) {
    return s;
  }
  if (input->type != TFQP_TYPE_INT32) {
    return tfqp_fail(error, TFQP_ERROR_TENSOR_TYPE, "input must be packed int32", "input",
                     input->type);
  }
  if (input->rank < 1 || input->rank > TFQP_MAX_RANK) {
    return tfqp_fail(error, TFQP_ERROR_TENSOR_SHAPE, "input rank must be in [1, 6]", "input",
                     input->rank);
  }
  if ((s = tfqp_tensor_check(input, "input", TFQP_TYPE_INT32, input->rank, error))) return s;
  return tfqp_tensor_check_dim(input, input->rank - 1, TFQP_KBIT_WORDS(o->channels, o->bits),
                               "packed input depth must equal ceil(channels / (32 / bits))",
                               "input", error);
}

tfqp_status tfqp_unpack_codes_output_dims(const tfqp_unpack_codes_options *options,
                                          const tfqp_tensor *input, int32_t *rank,
                                          int32_t dims[TFQP_MAX_RANK], tfqp_error *error) {
  int32_t i;
  const tfqp_status s = check_input(options, input, error);
  if (s != TFQP_OK) return s;
  *rank = input->rank;
  for (i = 0; i < input->rank - 1; ++i) dims[i] = input->dims[i];
  dims[input->rank - 1] = options->channels;
  return TFQP_OK;
}

tfqp_status tfqp_unpack_codes_prepare(const tfqp_unpack_codes_options *options,
                                      const tfqp_tensor *input, const tfqp_tensor *output,
                                      tfqp_unpack_codes_params *p, tfqp_error *error) {
  int32_t rank, dims[TFQP_MAX_RANK], i;
  int64_t offset; /* any int32 zero point: no overflow */
  int64_t pixels = 1;
  tfqp_status s = tfqp_unpack_codes_output_dims(options, input, &rank, dims, error);
  if (s != TFQP_OK) return s;
  if (output == NULL || p == NULL) {
    return tfqp_fail(error, TFQP_ERROR_ARGUMENT, "NULL argument", "unpack_codes", 0);
  }
  if ((s = tfqp_tensor_check(output, "output", TFQP_TYPE_INT8, rank, error))) return s;
  for (i = 0; i < rank; ++i) {
    if ((s = tfqp_tensor_check_dim(output, i, dims[i],
                                   "output dims must equal the input's, the last channels",
                                   "output", error))) {
      return s;
    }
    if (i < rank - 1) pixels *= dims[i];
  }
  offset = (int64_t)output->zero_point - options->code_zero;
  if (offset < -128 || offset + (1 << options->bits) - 1 > 127) {
    return tfqp_fail(error, TFQP_ERROR_TENSOR_DATA,
                     "output zero point - code_zero + every code must lie in [-128, 127]",
                     "output", output->zero_point);
  }
  p->pixels = (int32_t)pixels; /* <= the output's elements < 2^31 */
  p->channels = options->channels;
  p->bits = options->bits;
  p->offset = (int32_t)offset; /* in [-128, 127] */
  return TFQP_OK;
}

void tfqp_unpack_codes_eval(const tfqp_unpack_codes_params *p, const tfqp_word *input,
                            int8_t *output) {
  const size_t words = (size_t)TFQP_KBIT_WORDS(p->channels, p->bits);
  int32_t n, c;
  for (n = 0; n < p->pixels; ++n) {
    const tfqp_word *pixel = input + (size_t)n * words;
    int8_t *out = output + (size_t)n * (size_t)p->channels;
    for (c = 0; c < p->channels; ++c) {
      out[c] = (int8_t)((int32_t)tfqp_code_at(pixel, c, p->bits) + p->offset);
    }
  }
}

/* ------------------------------------------------------------- op table row */

static const char *const input_roles[] = {"input"};

static tfqp_status op_parse(const uint8_t *buffer, size_t length, tfqp_op_options *options,
                            tfqp_error *error) {
  return tfqp_unpack_codes_parse_options(buffer, length, &options->unpack_codes, error);
}

static tfqp_status op_output_dims(const tfqp_op_options *options, const tfqp_tensor *inputs,
                                  int32_t input_count, tfqp_type output_type, int32_t *rank,
                                  int32_t dims[TFQP_MAX_RANK], tfqp_error *error) {
  (void)input_count;
  if (output_type != TFQP_TYPE_INT8) {
    return tfqp_fail(error, TFQP_ERROR_TENSOR_TYPE, "output must be int8", "output",
                     output_type);
  }
  return tfqp_unpack_codes_output_dims(&options->unpack_codes, &inputs[0], rank, dims, error);
}

static tfqp_status op_prepare(const tfqp_op_options *options, const tfqp_tensor *inputs,
                              int32_t input_count, const tfqp_tensor *outputs,
                              tfqp_op_params *params, tfqp_op_buffers *buffers,
                              tfqp_error *error) {
  (void)input_count;
  buffers->table_bytes = 0;
  buffers->scratch_bytes = 0;
  return tfqp_unpack_codes_prepare(&options->unpack_codes, &inputs[0], &outputs[0],
                                   &params->unpack_codes, error);
}

static void op_eval(const tfqp_op_params *params, const int32_t *table,
                    const void *const *inputs, void *const *outputs, void *scratch) {
  (void)table;
  (void)scratch;
  tfqp_unpack_codes_eval(&params->unpack_codes, (const tfqp_word *)inputs[0],
                         (int8_t *)outputs[0]);
}

const tfqp_op tfqp_op_unpack_codes = {
    "TFQP_UNPACK_CODES", 1, 1, 1, 0u, input_roles,
    option_keys, OPTION_COUNT, offsetof(tfqp_unpack_codes_options, present),
    op_parse, op_output_dims, op_prepare, NULL, op_eval,
    sizeof(tfqp_unpack_codes_params)};
