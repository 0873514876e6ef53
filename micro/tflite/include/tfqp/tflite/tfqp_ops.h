// TensorFlow Lite (mobile) registrations of the TFQP custom ops.
//
//   #include "tensorflow/lite/kernels/register.h"
//   #include "tfqp/tflite/tfqp_ops.h"
//
//   tflite::ops::builtin::BuiltinOpResolver resolver;
//   tfqp::tflite::RegisterOps(&resolver);
//   tflite::InterpreterBuilder(*model, resolver)(&interpreter);
//
// Python (stock tf.lite.Interpreter): load the shared library built by
// micro/tflite/Makefile with RTLD_GLOBAL and pass the registerer's name:
//   ctypes.CDLL("libtfqp_tflite.so", mode=ctypes.RTLD_GLOBAL)
//   tf.lite.Interpreter(model_content=..., custom_op_registerers=["TfqpRegisterOps"])
//
// The kernels are thin TfLiteRegistrations: ONE generic init / prepare /
// invoke over a row of the C op table (tfqp/op.h), as the TFLite Micro adapters:
//   init     parses the flexbuffer custom options (row.parse; a parse error is
//            kept and reported by prepare);
//   prepare  checks the input/output counts, resizes the output to the shape
//            the options give (row.output_dims), validates the tensors
//            (row.prepare), requires the row's constant inputs to be constant,
//            builds the precomputed table from them (row.init_table) and sizes
//            the scratch as a temporary tensor in the interpreter's arena;
//   invoke   calls row.eval.
// Errors go through TF_LITE_KERNEL_LOG as
//   "TFQP_BCONV2D: <rule> (<name> = <value>) [<status>]".
#ifndef TFQP_TFLITE_TFQP_OPS_H_
#define TFQP_TFLITE_TFQP_OPS_H_

#include "tensorflow/lite/c/common.h"
#include "tfqp/op.h"

namespace tflite {
class MutableOpResolver;
}  // namespace tflite

namespace tfqp {
namespace tflite {

// Registrations for AddCustom (static storage), one per op of the C op table:
// Register_TFQP_BCONV2D(), Register_TFQP_UNPACK(), ... (TFQP_OP_LIST in tfqp/op.h).
#define TFQP_DECLARE_REGISTER(row, name) TfLiteRegistration* Register_TFQP_##name();
TFQP_OP_LIST(TFQP_DECLARE_REGISTER)
#undef TFQP_DECLARE_REGISTER

// The registration of the op named `name` ("TFQP_BCONV2D"), or nullptr.
TfLiteRegistration* Registration(const char* name);
// The registration of row `index` of the C op table (tfqp_ops[]), or nullptr.
TfLiteRegistration* RegistrationAt(int index);

// Adds every TFQP op of the table (version 1) to `resolver`; kTfLiteError if
// it is null.
TfLiteStatus RegisterOps(::tflite::MutableOpResolver* resolver);

}  // namespace tflite
}  // namespace tfqp

// The same as a C symbol, in the form tf.lite.Interpreter's
// custom_op_registerers looks up by name.
extern "C" void TfqpRegisterOps(::tflite::MutableOpResolver* resolver);

#endif  // TFQP_TFLITE_TFQP_OPS_H_
