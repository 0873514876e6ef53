/* TFQP_UNPACK: validation and kernel (contract in tfqp/unpack.h). */
#include "tfqp/unpack.h"

#include <stddef.h>
#include <string.h>

#include "tfqp/flexbuffer.h"
#include "tfqp/op.h"
#include "tfqp/packing.h"

#define KEY(field) {#field, offsetof(tfqp_unpack_options, field)}
static const tfqp_option_key option_keys[] = {KEY(channels), KEY(positive), KEY(negative),
                                              KEY(group)};
#undef KEY
#define OPTION_COUNT ((int32_t)(sizeof option_keys / sizeof option_keys[0]))

tfqp_status tfqp_unpack_parse_options(const uint8_t *buffer, size_t length,
                                      tfqp_unpack_options *options, tfqp_error *error) {
  return tfqp_flex_read_option_keys(buffer, length, option_keys, OPTION_COUNT,
                                    TFQP_UNPACK_REQUIRED, options, &options->present, error);
}

static int32_t group_of(const tfqp_unpack_options *o) {
  return (o->present & TFQP_UNPACK_GROUP) ? o->group : o->channels;
}

static tfqp_status check_input(const tfqp_unpack_options *o, const tfqp_tensor *input,
                               tfqp_error *error) {
  tfqp_status s;
  if (o == NULL || input == NULL) {
    return tfqp_fail(error, TFQP_ERROR_ARGUMENT, "NULL argument", "unpack", 0);
  }
  if ((o->present & TFQP_UNPACK_REQUIRED) != TFQP_UNPACK_REQUIRED) {
    return tfqp_fail(error, TFQP_ERROR_OPTIONS, "required option missing", "unpack options",
                     (int64_t)o->present);
  }
  if ((s = tfqp_check_channels_option(o->channels, "channels", error)) ||
      ((o->present & TFQP_UNPACK_GROUP) &&
       (s = tfqp_check_option_range(o->group, 1, o->channels, "must be in [1, channels]", "group",
                                    error))) ||
      (s = tfqp_check_option_range(o->positive, -128, 127, "must be in [-128, 127]", "positive",
                                   error)) ||
      (s = tfqp_check_option_range(o->negative, -128, 127, "must be in [-128, 127]", "negative",
                                   error))) {
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
  if ((o->present & TFQP_UNPACK_GROUP) && o->channels % o->group != 0) {
    return tfqp_fail(error, TFQP_ERROR_OPTION_VALUE, "must divide channels", "group", o->group);
  }
  if ((s = tfqp_tensor_check(input, "input", TFQP_TYPE_INT32, input->rank, error)) ||
      (s = tfqp_tensor_check_dim(input, input->rank - 1,
                                 (o->channels / group_of(o)) * TFQP_WORDS(group_of(o)),
                                 "packed input depth must equal (channels/group) * "
                                 "ceil(group/32)",
                                 "input", error))) {
    return s;
  }
  return TFQP_OK;
}

tfqp_status tfqp_unpack_output_dims(const tfqp_unpack_options *options, const tfqp_tensor *input,
                                    int32_t *rank, int32_t dims[TFQP_MAX_RANK],
                                    tfqp_error *error) {
  int32_t i;
  const tfqp_status s = check_input(options, input, error);
  if (s != TFQP_OK) return s;
  *rank = input->rank;
  for (i = 0; i < input->rank - 1; ++i) dims[i] = input->dims[i];
  dims[input->rank - 1] = options->channels;
  return TFQP_OK;
}

tfqp_status tfqp_unpack_prepare(const tfqp_unpack_options *options, const tfqp_tensor *input,
                                const tfqp_tensor *output, tfqp_unpack_params *p,
                                tfqp_error *error) {
  static const char *const outer_rule = "output dims must equal the input's but the last";
  int32_t rank, dims[TFQP_MAX_RANK], i;
  int64_t pixels = 1;
  tfqp_status s = tfqp_unpack_output_dims(options, input, &rank, dims, error);
  if (s != TFQP_OK) return s;
  if (output == NULL || p == NULL) {
    return tfqp_fail(error, TFQP_ERROR_ARGUMENT, "NULL argument", "unpack", 0);
  }
  /* tfqp_tensor_check bounds the output's element count by 2^31 - 1 */
  if ((s = tfqp_tensor_check(output, "output", TFQP_TYPE_INT8, rank, error))) return s;
  for (i = 0; i < rank - 1; ++i) {
    if ((s = tfqp_tensor_check_dim(output, i, dims[i], outer_rule, "output", error))) return s;
    pixels *= dims[i];
  }
  if ((s = tfqp_tensor_check_dim(output, rank - 1, options->channels,
                                 "int8 output depth must equal channels", "output", error))) {
    return s;
  }
  /* every group is a pixel of the packed format: pixels * C / group of them */
  p->pixels = (int32_t)(pixels * (options->channels / group_of(options)));
  p->channels = group_of(options);
  p->positive = (int8_t)options->positive;
  p->negative = (int8_t)options->negative;
  return TFQP_OK;
}

void tfqp_unpack_eval(const tfqp_unpack_params *p, const tfqp_word *input, int8_t *output) {
  tfqp_unpack_int8(input, p->pixels, p->channels, p->positive, p->negative, output);
}

/* ------------------------------------------------------------- op table row */

static const char *const input_roles[] = {"input"};

static tfqp_status op_parse(const uint8_t *buffer, size_t length, tfqp_op_options *options,
                            tfqp_error *error) {
  return tfqp_unpack_parse_options(buffer, length, &options->unpack, error);
}

static tfqp_status op_output_dims(const tfqp_op_options *options, const tfqp_tensor *inputs,
                                  int32_t input_count, tfqp_type output_type, int32_t *rank,
                                  int32_t dims[TFQP_MAX_RANK], tfqp_error *error) {
  (void)input_count;
  if (output_type != TFQP_TYPE_INT8) {
    return tfqp_fail(error, TFQP_ERROR_TENSOR_TYPE, "output must be int8", "output",
                     output_type);
  }
  return tfqp_unpack_output_dims(&options->unpack, &inputs[0], rank, dims, error);
}

static tfqp_status op_prepare(const tfqp_op_options *options, const tfqp_tensor *inputs,
                              int32_t input_count, const tfqp_tensor *outputs,
                              tfqp_op_params *params, tfqp_op_buffers *buffers,
                              tfqp_error *error) {
  (void)input_count;
  buffers->table_bytes = 0;
  buffers->scratch_bytes = 0;
  return tfqp_unpack_prepare(&options->unpack, &inputs[0], &outputs[0], &params->unpack, error);
}

static void op_eval(const tfqp_op_params *params, const int32_t *table,
                    const void *const *inputs, void *const *outputs, void *scratch) {
  (void)table;
  (void)scratch;
  tfqp_unpack_eval(&params->unpack, (const tfqp_word *)inputs[0], (int8_t *)outputs[0]);
}

const tfqp_op tfqp_op_unpack = {
    "TFQP_UNPACK", 1, 1, 1, 0u, input_roles,
    option_keys, OPTION_COUNT, offsetof(tfqp_unpack_options, present),
    op_parse, op_output_dims, op_prepare, NULL, op_eval,
    sizeof(tfqp_unpack_params)};
