// What the TFLite Micro adapters (micro/tflm) and the TFLite adapters
// (micro/tflite) share around the op table (tfqp/op.h): both see TfLiteTensor
// and TfLiteNode from tensorflow/lite/c/common.h. Compiled into both; only the
// reporting call differs (MicroPrintf / TF_LITE_KERNEL_LOG), and both print
//
//   TFQP_ERROR_FORMAT with the fields of an ErrorText:
//   "TFQP_BCONV2D: <rule> (<name> = <value>) [<status>]"
//
// (the value formatted here, so no printf length modifier is needed).
#ifndef TFQP_COMMON_TFQP_GLUE_H_
#define TFQP_COMMON_TFQP_GLUE_H_

#include <stddef.h>
#include <stdint.h>

#include "tensorflow/lite/c/common.h"
#include "tfqp/op.h"

#define TFQP_ERROR_FORMAT "%s: %s (%s = %s) [%s]"

namespace tfqp {
namespace glue {

// The five strings of one error line.
struct ErrorText {
  const char* op;
  const char* message;
  const char* name;
  char value[24];  // the int64 value in decimal
  const char* status;
};

void MakeErrorText(const char* op, const tfqp_error& error, ErrorText* text);

// What one node of an op keeps between Init, Prepare and Eval (the options
// parsed once in Init; a parse error is kept and reported by Prepare).
struct OpState {
  const tfqp_op* op;
  tfqp_op_options options;
  tfqp_error options_error;  // status != TFQP_OK: the options did not parse
  tfqp_op_params params;
  int32_t input_count;
};

// Parses the node's custom options (buffer may be null) into *state.
void ParseOptions(const tfqp_op& op, const char* buffer, size_t length, OpState* state);

// The node's input and output counts against the op's arity.
tfqp_status CheckArity(const tfqp_op& op, const TfLiteNode* node, tfqp_error* error);

// What the portable validation needs of a tensor: element type (INT8, INT16,
// INT32 or OTHER), dims, byte size, and for int8 activations the zero point,
// after tfqp_quantization_check (tfqp/tensor.h) of its quantization: `constant`
// for the op's constant inputs (weights), whose data it passes on when it is
// aligned (tfqp/tensor.h: prepare may size a smaller table from it). `role`
// names it in errors.
tfqp_status Describe(const TfLiteTensor* tensor, const char* role, bool constant,
                     tfqp_tensor* out, tfqp_error* error);

// The output: not a constant tensor of the model (eval writes it), then
// Describe.
tfqp_status DescribeOutput(const TfLiteTensor* tensor, tfqp_tensor* out, tfqp_error* error);

// A constant input: a constant tensor of the model (kTfLiteMmapRo) with data,
// aligned for its element type (int32: 4 bytes), as init_table and eval read it.
tfqp_status CheckConstant(const TfLiteTensor* tensor, const char* role, tfqp_error* error);

}  // namespace glue
}  // namespace tfqp

#endif  // TFQP_COMMON_TFQP_GLUE_H_
