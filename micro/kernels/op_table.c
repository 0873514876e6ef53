/* The C op table (tfqp/op.h): one row per TFQP op, defined in the op's
 * kernel file, listed by TFQP_OP_LIST. */
#include "tfqp/op.h"

#include <stddef.h>
#include <string.h>

#define TFQP_DECLARE_ROW(row, name) extern const tfqp_op tfqp_op_##row;
TFQP_OP_LIST(TFQP_DECLARE_ROW)
#undef TFQP_DECLARE_ROW

#define TFQP_LIST_ROW(row, name) &tfqp_op_##row,
const tfqp_op *const tfqp_ops[] = {TFQP_OP_LIST(TFQP_LIST_ROW)};
#undef TFQP_LIST_ROW

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
