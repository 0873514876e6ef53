// TFLite Micro registrations of the TFQP custom ops.
//
//   #include "tfqp/tflm/tfqp_ops.h"
//
//   tflite::MicroMutableOpResolver<kBuiltins + tfqp::kOpCount> resolver;
//   resolver.AddConv2D();  ...
//   if (tfqp::RegisterOps(resolver) != kTfLiteOk) { ... }
//
// or op by op (what tfq_plus.converters.write_c_array emits):
//   resolver.AddCustom("TFQP_BCONV2D", tfqp::Register_TFQP_BCONV2D());
//
// The adapters are thin: ONE generic Init / Prepare / Eval over a row of the C op
// table (tfqp/op.h: parse, output_dims, prepare, init_table, eval); option
// parsing, validation and arithmetic live in the portable C core
// (micro/include/tfqp, micro/kernels). Per op:
//   Init     parses the flexbuffer custom options (row.parse) into a persistent
//            buffer; a parse error is kept and reported by Prepare;
//   Prepare  checks the input/output counts (row arity), validates every tensor
//            against the options (row.prepare: types, shapes, byte sizes, zero
//            points), requires the row's constant inputs (filter/weights,
//            transform, mask) to be constant, allocates the op's precomputed table
//            with AllocatePersistentBuffer and fills it (row.init_table: validates
//            the constant data), and requests the scratch with
//            RequestScratchBufferInArena;
//   Eval     only calls row.eval. No heap use after Init, no allocation in Eval.
// Errors go through MicroPrintf as
//   "TFQP_BCONV2D: <rule> (<name> = <value>) [<status>]"
// and fail AllocateTensors with kTfLiteError.
#ifndef TFQP_TFLM_TFQP_OPS_H_
#define TFQP_TFLM_TFQP_OPS_H_

#include "tensorflow/lite/c/common.h"
#include "tensorflow/lite/micro/micro_common.h"
#include "tensorflow/lite/micro/micro_log.h"
#include "tensorflow/lite/micro/micro_mutable_op_resolver.h"
#include "tfqp/op.h"

namespace tfqp {

// Number of ops RegisterOps adds (count them in the resolver's N): the rows of
// the C op table.
constexpr unsigned int kOpCount = TFQP_OP_COUNT;

// Registrations for AddCustom (static storage), one per op of the C op table:
// Register_TFQP_BCONV2D(), Register_TFQP_UNPACK(), ... (TFQP_OP_LIST in tfqp/op.h).
#define TFQP_DECLARE_REGISTER(row, name) TFLMRegistration* Register_TFQP_##name();
TFQP_OP_LIST(TFQP_DECLARE_REGISTER)
#undef TFQP_DECLARE_REGISTER

// The registration of the op named `name` ("TFQP_BCONV2D"), or nullptr.
TFLMRegistration* Registration(const char* name);
// The registration of row `index` of tfqp_ops[], or nullptr.
TFLMRegistration* RegistrationAt(int index);

// Adds every TFQP op of the table to any tflite::MicroMutableOpResolver<N>:
//   tfqp::RegisterOps(resolver)   or   tfqp::RegisterOps(&resolver)
// N must count the TFQP ops (a resolver with N < kOpCount does not compile).
// Fails with kTfLiteError and one MicroPrintf line naming the op and what is
// needed when the resolver has fewer than kOpCount free slots, or already holds
// one of the ops (the ops added before the failing one stay in the resolver).
template <unsigned int tOpCount>
TfLiteStatus RegisterOps(tflite::MicroMutableOpResolver<tOpCount>& resolver) {
  static_assert(tOpCount >= kOpCount,
                "tfqp::RegisterOps: the resolver's N must count the tfqp::kOpCount TFQP ops");
  for (int i = 0; i < static_cast<int>(kOpCount); ++i) {
    const char* name = tfqp_ops[i]->name;
    if (resolver.AddCustom(name, RegistrationAt(i)) != kTfLiteOk) {
      MicroPrintf("tfqp::RegisterOps: could not add %s (TFQP op %d of %d): the resolver "
                  "needs %d free slots and must not hold a TFQP op already",
                  name, i + 1, static_cast<int>(kOpCount), static_cast<int>(kOpCount));
      return kTfLiteError;
    }
  }
  return kTfLiteOk;
}

template <unsigned int tOpCount>
TfLiteStatus RegisterOps(tflite::MicroMutableOpResolver<tOpCount>* resolver) {
  if (resolver == nullptr) {
    MicroPrintf("tfqp::RegisterOps: the resolver is a null pointer");
    return kTfLiteError;
  }
  return RegisterOps(*resolver);
}

}  // namespace tfqp

#endif  // TFQP_TFLM_TFQP_OPS_H_
