/* The op table's life cycle on exact-size heap buffers (see op_harness.h). */
#include "op_harness.h"

#include <stdlib.h>
#include <string.h>

/* malloc of exactly `bytes` (at least one byte, so that the pointer is
 * unique); NULL when out of memory. */
static void *exact(size_t bytes) { return malloc(bytes > 0 ? bytes : 1); }

static op_harness_result fail(op_harness_result r, const char *step, tfqp_status s) {
  r.status = s;
  r.step = step;
  return r;
}

int op_harness_dims_match(const op_harness_result *r, const tfqp_tensor *output) {
  int32_t i;
  if (r->dims_status != TFQP_OK || r->dims_rank != output->rank) return 0;
  for (i = 0; i < r->dims_rank; ++i) {
    if (r->dims[i] != output->dims[i]) return 0;
  }
  return 1;
}

op_harness_result op_harness_run(const op_harness_case *c, void *output) {
  const tfqp_op *op = c->op;
  op_harness_result r;
  tfqp_op_params params;
  const void *inputs[TFQP_OP_MAX_INPUTS] = {NULL, NULL, NULL, NULL};
  const void *constants[TFQP_OP_MAX_INPUTS] = {NULL, NULL, NULL, NULL};
  void *copies[TFQP_OP_MAX_INPUTS] = {NULL, NULL, NULL, NULL};
  void *outputs[TFQP_OP_MAX_OUTPUTS];
  int32_t *table = NULL;
  void *scratch = NULL;
  /* the params as TFLite Micro keeps them: op->params_bytes, not the union */
  tfqp_op_params *kept = NULL;
  tfqp_status s;
  int32_t i;
  memset(&r, 0, sizeof r);
  memset(&params, 0, sizeof params);
  if ((s = tfqp_op_check_arity(op, c->input_count, 1, &r.error))) return fail(r, "arity", s);
  r.dims_status = op->output_dims(&c->options, c->inputs, c->input_count, c->output.type,
                                  &r.dims_rank, r.dims, &r.error);
  if ((s = op->prepare(&c->options, c->inputs, c->input_count, &c->output, &params, &r.buffers,
                       &r.error))) {
    return fail(r, "prepare", s);
  }
  for (i = 0; i < c->input_count; ++i) {
    if ((copies[i] = exact(c->inputs[i].bytes)) == NULL) break;
    if (c->data[i] != NULL) {
      memcpy(copies[i], c->data[i], c->inputs[i].bytes);
    } else {
      memset(copies[i], 0, c->inputs[i].bytes);
    }
    inputs[i] = copies[i];
    if (op->constant_inputs & (1u << i)) constants[i] = copies[i];
  }
  s = i < c->input_count ? TFQP_ERROR_BUFFER : TFQP_OK;
  if (s == TFQP_OK) {
    kept = (tfqp_op_params *)exact(op->params_bytes);
    if (kept == NULL) {
      s = TFQP_ERROR_BUFFER;
    } else {
      memcpy(kept, &params, op->params_bytes);
    }
  }
  if (s == TFQP_OK && op->init_table != NULL) {
    /* init_table validates the constants even when the op keeps no table */
    if (r.buffers.table_bytes > 0 &&
        (table = (int32_t *)exact(r.buffers.table_bytes)) == NULL) {
      s = TFQP_ERROR_BUFFER;
    } else if ((s = op->init_table(kept, constants, table, r.buffers.table_bytes,
                                   &r.error)) != TFQP_OK) {
      r = fail(r, "init_table", s);
    }
  }
  if (s == TFQP_OK) {
    if (r.buffers.scratch_bytes > 0) scratch = exact(r.buffers.scratch_bytes);
    outputs[0] = exact(c->output.bytes);
    if (outputs[0] == NULL || (r.buffers.scratch_bytes > 0 && scratch == NULL)) {
      s = TFQP_ERROR_BUFFER;
    } else {
      op->eval(kept, table, inputs, outputs, scratch);
      if (output != NULL) memcpy(output, outputs[0], c->output.bytes);
      r.step = "eval";
    }
    free(outputs[0]);
  }
  if (s == TFQP_ERROR_BUFFER && r.step == NULL) {
    r = fail(r, "allocation", s);
    tfqp_fail(&r.error, s, "out of memory", "op_harness", 0);
  }
  free(kept);
  free(scratch);
  free(table);
  for (i = 0; i < c->input_count; ++i) free(copies[i]);
  return r;
}
