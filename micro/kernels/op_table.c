/* The C op table (tfqp/op.h): one row per TFQP op, defined in the op's
 * kernel file, listed here. */
#include "tfqp/op.h"

#include <stddef.h>
#include <string.h>

extern const tfqp_op tfqp_op_bconv2d;
extern const tfqp_op tfqp_op_bfully_connected;
extern const tfqp_op tfqp_op_bmaxpool2d;
extern const tfqp_op tfqp_op_binarize;
extern const tfqp_op tfqp_op_conv2d_int8;
extern const tfqp_op tfqp_op_fully_connected_int8;
extern const tfqp_op tfqp_op_unpack;

const tfqp_op *const tfqp_ops[] = {
    &tfqp_op_bconv2d,
    &tfqp_op_bfully_connected,
    &tfqp_op_bmaxpool2d,
    &tfqp_op_binarize,
    &tfqp_op_conv2d_int8,
    &tfqp_op_fully_connected_int8,
    &tfqp_op_unpack,
};

const int32_t tfqp_op_count = (int32_t)(sizeof tfqp_ops / sizeof tfqp_ops[0]);

/* TFQP_OP_COUNT (op.h) must count the rows above. */
typedef char tfqp_op_count_matches_table[(sizeof tfqp_ops / sizeof tfqp_ops[0]) == TFQP_OP_COUNT
                                             ? 1
                                             : -1];

const tfqp_op *tfqp_find_op(const char *name, size_t length) {
  int32_t i;
  if (name == NULL) return NULL;
  for (i = 0; i < tfqp_op_count; ++i) {
    const char *candidate = tfqp_ops[i]->name;
    if (strlen(candidate) == length && memcmp(candidate, name, length) == 0) return tfqp_ops[i];
  }
  return NULL;
}

tfqp_status tfqp_op_check_arity(const tfqp_op *op, int32_t inputs, int32_t outputs,
                                tfqp_error *error) {
  if (op == NULL) return tfqp_fail(error, TFQP_ERROR_ARGUMENT, "NULL argument", "op", 0);
  if (inputs < op->min_inputs || inputs > op->max_inputs) {
    return tfqp_fail(error, TFQP_ERROR_ARGUMENT, "wrong number of inputs", "inputs", inputs);
  }
  if (outputs != op->outputs) {
    return tfqp_fail(error, TFQP_ERROR_ARGUMENT, "wrong number of outputs", "outputs", outputs);
  }
  return TFQP_OK;
}

uint32_t tfqp_op_options_present(const tfqp_op *op, const tfqp_op_options *options) {
  uint32_t present;
  memcpy(&present, (const unsigned char *)options + op->present_offset, sizeof present);
  return present;
}

int32_t tfqp_op_option_value(const tfqp_op *op, const tfqp_op_options *options, int32_t key) {
  int32_t value;
  memcpy(&value, (const unsigned char *)options + op->option_keys[key].offset, sizeof value);
  return value;
}
