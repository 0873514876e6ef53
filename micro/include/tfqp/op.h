/* The C op table: one row per TFQP op, the only place the framework adapters
 * (micro/tflm, micro/tflite), the host extension (converters/_tfqp_kernels.c),
 * the Cortex-M test runner and the benchmarks learn what an op is.
 *
 * Every op runs the same life cycle, whatever drives it:
 *
 *   parse        custom options (flexbuffer bytes) -> tfqp_op_options
 *   output_dims  options + input tensors -> the output's dims for its type
 *                (frameworks that resize outputs call it; TFLite Micro checks)
 *   prepare      options + all tensors -> tfqp_op_params, the bytes of the
 *                persistent table and of the per-call scratch (no tensor data)
 *   init_table   the constant inputs' data -> the table (validates the data)
 *   eval         inputs -> outputs, with table and scratch; no checks, no
 *                allocation, nothing that prepare and init_table did not make
 *                safe for these tensors
 *
 * Adding an op is its kernel file (with its own typed API and a row
 * `const tfqp_op tfqp_op_<name>`) plus one line in kernels/op_table.c.
 */
#ifndef TFQP_OP_H_
#define TFQP_OP_H_

#include <stddef.h>
#include <stdint.h>

#include "tfqp/bconv2d.h"
#include "tfqp/bfully_connected.h"
#include "tfqp/bmaxpool2d.h"
#include "tfqp/status.h"
#include "tfqp/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

#define TFQP_OP_MAX_INPUTS 4
#define TFQP_OP_MAX_OUTPUTS 1

/* The parsed options of any op (each op reads its own member). */
typedef union {
  tfqp_bconv2d_options bconv2d;
  tfqp_bfully_connected_options bfully_connected;
  tfqp_bmaxpool2d_options bmaxpool2d;
} tfqp_op_options;

/* The prepared parameters of any op. */
typedef union {
  tfqp_bconv2d_params bconv2d;
  tfqp_bfully_connected_params bfully_connected;
  tfqp_bmaxpool2d_params bmaxpool2d;
} tfqp_op_params;

/* What prepare says the op needs beyond its tensors. */
typedef struct {
  size_t table_bytes;   /* persistent, 4-byte aligned; 0: no table */
  size_t scratch_bytes; /* per eval, 4-byte aligned; 0: no scratch */
} tfqp_op_buffers;

typedef struct {
  const char *name;          /* custom op code in the flatbuffer: "TFQP_BCONV2D" */
  int32_t min_inputs;        /* inputs the op accepts: [min_inputs, max_inputs] */
  int32_t max_inputs;
  int32_t outputs;
  uint32_t constant_inputs;  /* bit i: input i must be a constant of the model */
  const char *const *input_roles; /* max_inputs names for errors: "input", "filter" */
  /* buffer may be NULL with length 0 (no options). */
  tfqp_status (*parse)(const uint8_t *buffer, size_t length, tfqp_op_options *options,
                       tfqp_error *error);
  /* inputs: `input_count` tensors (data not needed). Writes *rank and dims. */
  tfqp_status (*output_dims)(const tfqp_op_options *options, const tfqp_tensor *inputs,
                             int32_t input_count, tfqp_type output_type, int32_t *rank,
                             int32_t dims[TFQP_MAX_RANK], tfqp_error *error);
  tfqp_status (*prepare)(const tfqp_op_options *options, const tfqp_tensor *inputs,
                         int32_t input_count, const tfqp_tensor *outputs,
                         tfqp_op_params *params, tfqp_op_buffers *buffers,
                         tfqp_error *error);
  /* constants[i]: data of input i when bit i of constant_inputs is set, else
   * NULL. May be NULL in the row when the op has no table. */
  tfqp_status (*init_table)(const tfqp_op_params *params, const void *const *constants,
                            int32_t *table, size_t table_bytes, tfqp_error *error);
  void (*eval)(const tfqp_op_params *params, const int32_t *table,
               const void *const *inputs, void *const *outputs, void *scratch);
} tfqp_op;

/* Every op, in a fixed order; tfqp_op_count entries. */
extern const tfqp_op *const tfqp_ops[];
extern const int32_t tfqp_op_count;

/* The op whose name is `name` (length bytes, not NUL-terminated necessarily),
 * or NULL. */
const tfqp_op *tfqp_find_op(const char *name, size_t length);

#ifdef __cplusplus
}
#endif

#endif /* TFQP_OP_H_ */
