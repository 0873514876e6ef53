/* One op of the C op table (tfqp/op.h) through its whole life cycle, the way
 * the adapters drive it (arity, output_dims, prepare, init_table, eval), on
 * heap buffers of exactly the sizes the tensors and prepare give: every input
 * is copied into its own allocation of tensor.bytes bytes, the table and the
 * scratch are exactly table_bytes / scratch_bytes (scratch NULL when 0, as
 * TFLite Micro passes it), the output exactly output.bytes. Under
 * AddressSanitizer any access outside them is reported where it happens.
 *
 * Used by the C tests (reproducers of kernel bugs) and by the libFuzzer
 * targets of micro/fuzz.
 */
#ifndef TFQP_TESTS_OP_HARNESS_H_
#define TFQP_TESTS_OP_HARNESS_H_

#include <stddef.h>
#include <stdint.h>

#include "tfqp/op.h"

typedef struct {
  const tfqp_op *op;
  tfqp_op_options options; /* parsed */
  int32_t input_count;
  tfqp_tensor inputs[TFQP_OP_MAX_INPUTS];
  /* data of input i (inputs[i].bytes bytes), or NULL: zero bytes */
  const void *data[TFQP_OP_MAX_INPUTS];
  tfqp_tensor output;
} op_harness_case;

typedef struct {
  tfqp_status status;       /* the first failing step's, or TFQP_OK after eval */
  tfqp_error error;         /* filled when status != TFQP_OK */
  const char *step;         /* "arity", "prepare", "init_table", "allocation", "eval" */
  tfqp_status dims_status;  /* output_dims' status (run before prepare) */
  int32_t dims_rank;        /* output_dims' result when dims_status is TFQP_OK */
  int32_t dims[TFQP_MAX_RANK];
  tfqp_op_buffers buffers;  /* prepare's, when it passed */
} op_harness_result;

/* Runs the case; on TFQP_OK copies the output (output.bytes bytes) to `output`
 * (may be NULL). An allocation failure is TFQP_ERROR_BUFFER at step
 * "allocation". */
op_harness_result op_harness_run(const op_harness_case *c, void *output);

/* Whether output_dims agrees with the description of the output prepare
 * accepted (same rank and dims): what the TFLite adapter relies on when it
 * resizes the output before prepare. */
int op_harness_dims_match(const op_harness_result *result, const tfqp_tensor *output);

#endif /* TFQP_TESTS_OP_HARNESS_H_ */
