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
 * `const tfqp_op tfqp_op_<name>`), one line in TFQP_OP_LIST below, and its
 * members in the two unions below.
 *
 * Callers check the input and output counts first (tfqp_op_check_arity): the
 * row functions may assume min_inputs <= input_count <= max_inputs. They call
 * init_table whenever the row has one (it validates the constant inputs),
 * with table NULL when prepare asked for none (table_bytes 0): an op whose
 * eval reads a constant where it is (the codes output's transform rows) keeps
 * no copy of it.
 */
#ifndef TFQP_OP_H_
#define TFQP_OP_H_

#include <stddef.h>
#include <stdint.h>

#include "tfqp/bconv2d.h"
#include "tfqp/bfully_connected.h"
#include "tfqp/binarize.h"
#include "tfqp/bmaxpool2d.h"
#include "tfqp/conv2d_int8.h"
#include "tfqp/flexbuffer.h"
#include "tfqp/fully_connected_int8.h"
#include "tfqp/max_pool_codes.h"
#include "tfqp/shift_conv2d.h"
#include "tfqp/shift_depthwise_conv2d.h"
#include "tfqp/shift_fully_connected.h"
#include "tfqp/status.h"
#include "tfqp/tensor.h"
#include "tfqp/unpack.h"
#include "tfqp/unpack_codes.h"

#ifdef __cplusplus
extern "C" {
#endif

#define TFQP_OP_MAX_INPUTS 5
#define TFQP_OP_MAX_OUTPUTS 1

/* Every TFQP op, once: X(row, NAME) for the row `tfqp_op_<row>` its kernel file
 * defines and the custom code "TFQP_<NAME>". kernels/op_table.c builds tfqp_ops[]
 * from this list and the adapters their Register_TFQP_<NAME>(); adding an op is
 * its kernel file, one line here and its members in the two unions below. */
#define TFQP_OP_LIST(X)                   \
  X(bconv2d, BCONV2D)                     \
  X(bfully_connected, BFULLY_CONNECTED)   \
  X(bmaxpool2d, BMAXPOOL2D)               \
  X(binarize, BINARIZE)                   \
  X(conv2d_int8, CONV2D_INT8)             \
  X(fully_connected_int8, FULLY_CONNECTED_INT8) \
  X(max_pool_codes, MAX_POOL_CODES)       \
  X(shift_conv2d, SHIFT_CONV2D)           \
  X(shift_depthwise_conv2d, SHIFT_DEPTHWISE_CONV2D) \
  X(shift_fully_connected, SHIFT_FULLY_CONNECTED) \
  X(unpack, UNPACK)                       \
  X(unpack_codes, UNPACK_CODES)

/* Rows of tfqp_ops[], a compile-time constant (the adapters size their
 * registrations with it). */
#define TFQP_OP_COUNT_ONE(row, name) +1
#define TFQP_OP_COUNT (0 TFQP_OP_LIST(TFQP_OP_COUNT_ONE))

/* The parsed options of any op (each op reads its own member). */
typedef union {
  tfqp_bconv2d_options bconv2d;
  tfqp_bfully_connected_options bfully_connected;
  tfqp_bmaxpool2d_options bmaxpool2d;
  tfqp_binarize_options binarize;
  tfqp_conv2d_int8_options conv2d_int8;
  tfqp_fully_connected_int8_options fully_connected_int8;
  tfqp_max_pool_codes_options max_pool_codes;
  tfqp_shift_conv2d_options shift_conv2d;
  tfqp_shift_depthwise_conv2d_options shift_depthwise_conv2d;
  tfqp_shift_fully_connected_options shift_fully_connected;
  tfqp_unpack_options unpack;
  tfqp_unpack_codes_options unpack_codes;
} tfqp_op_options;

/* The prepared parameters of any op. */
typedef union {
  tfqp_bconv2d_params bconv2d;
  tfqp_bfully_connected_params bfully_connected;
  tfqp_bmaxpool2d_params bmaxpool2d;
  tfqp_binarize_params binarize;
  tfqp_conv2d_int8_params conv2d_int8;
  tfqp_fully_connected_int8_params fully_connected_int8;
  tfqp_max_pool_codes_params max_pool_codes;
  tfqp_shift_conv2d_params shift_conv2d; /* also TFQP_SHIFT_DEPTHWISE_CONV2D's */
  tfqp_shift_fully_connected_params shift_fully_connected;
  tfqp_unpack_params unpack;
  tfqp_unpack_codes_params unpack_codes;
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
  /* The op's option keys, once: key and offset of its int32_t field in the
   * op's options struct (the member of tfqp_op_options, at offset 0), in the
   * order of the struct's present bits; present_offset locates that uint32_t.
   * parse reads these keys; tfqp_op_option_value / the host extension's
   * parse_options turn any op's options into key/value pairs with them. */
  const tfqp_option_key *option_keys;
  int32_t option_count;
  size_t present_offset;
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
   * NULL; table: table_bytes bytes, NULL iff table_bytes is 0. NULL in the row
   * when the op has no constants to validate. */
  tfqp_status (*init_table)(const tfqp_op_params *params, const void *const *constants,
                            int32_t *table, size_t table_bytes, tfqp_error *error);
  void (*eval)(const tfqp_op_params *params, const int32_t *table,
               const void *const *inputs, void *const *outputs, void *scratch);
  /* sizeof the op's member of tfqp_op_params: prepare writes and eval reads
   * only these bytes, so an adapter may keep just them per node (TFLite
   * Micro's arena) and pass them as the union. */
  size_t params_bytes;
} tfqp_op;

/* Every op, in a fixed order; tfqp_op_count entries. */
extern const tfqp_op *const tfqp_ops[];
extern const int32_t tfqp_op_count;

/* The op whose name is `name` (length bytes, not NUL-terminated necessarily),
 * or NULL. */
const tfqp_op *tfqp_find_op(const char *name, size_t length);

/* Fails with TFQP_ERROR_ARGUMENT "wrong number of inputs" (name "inputs") or
 * "wrong number of outputs" (name "outputs"), the value the count given,
 * unless min_inputs <= inputs <= max_inputs and outputs == op->outputs. */
tfqp_status tfqp_op_check_arity(const tfqp_op *op, int32_t inputs, int32_t outputs,
                                tfqp_error *error);

/* The present bits of parsed options, and option key i's value. */
uint32_t tfqp_op_options_present(const tfqp_op *op, const tfqp_op_options *options);
int32_t tfqp_op_option_value(const tfqp_op *op, const tfqp_op_options *options, int32_t key);

#ifdef __cplusplus
}
#endif

#endif /* TFQP_OP_H_ */
