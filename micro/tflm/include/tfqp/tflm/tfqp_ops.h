// TFLite Micro registrations of the TFQP custom ops.
//
//   #include "tfqp/tflm/tfqp_ops.h"
//
//   tflite::MicroMutableOpResolver<8> resolver;   // builtin ops + 3 TFQP ops
//   resolver.AddConv2D();  ...
//   if (tfqp::RegisterOps(&resolver) != kTfLiteOk) { ... }
//
// or op by op (what tfq_plus.converters.write_c_array emits):
//   resolver.AddCustom("TFQP_BCONV2D", tfqp::Register_TFQP_BCONV2D());
//
// The adapters are thin: option parsing, validation and arithmetic live in the
// portable C core (micro/include/tfqp, micro/kernels). Per op:
//   Init     parses the flexbuffer custom options (tfqp_*_parse_options) into a
//            persistent buffer; a parse error is kept and reported by Prepare;
//   Prepare  validates every tensor against the options (tfqp_*_prepare: types,
//            shapes, byte sizes, zero points), requires the filter/weights and
//            transform to be constant, allocates the op's precomputed table with
//            AllocatePersistentBuffer and fills it (tfqp_*_init_table: validates
//            the constant data), and requests the scratch with
//            RequestScratchBufferInArena;
//   Eval     only calls tfqp_*_eval. No heap use after Init, no allocation in Eval.
// Errors go through MicroPrintf as
//   "TFQP_BCONV2D: <rule> (<name> = <value>) [<status>]"
// and fail AllocateTensors with kTfLiteError.
#ifndef TFQP_TFLM_TFQP_OPS_H_
#define TFQP_TFLM_TFQP_OPS_H_

#include "tensorflow/lite/c/common.h"
#include "tensorflow/lite/micro/micro_common.h"
#include "tensorflow/lite/micro/micro_mutable_op_resolver.h"

namespace tfqp {

// Custom op codes, as the converter writes them into the flatbuffer.
constexpr const char kBConv2DName[] = "TFQP_BCONV2D";
constexpr const char kBFullyConnectedName[] = "TFQP_BFULLY_CONNECTED";
constexpr const char kBMaxPool2DName[] = "TFQP_BMAXPOOL2D";

// Number of ops RegisterOps adds (count them in the resolver's N).
constexpr unsigned int kOpCount = 3;

// Registrations for MicroMutableOpResolver::AddCustom (static storage).
TFLMRegistration* Register_TFQP_BCONV2D();
TFLMRegistration* Register_TFQP_BFULLY_CONNECTED();
TFLMRegistration* Register_TFQP_BMAXPOOL2D();

// Adds the three TFQP ops. Fails (kTfLiteError, reported by the resolver) when
// the resolver has fewer than kOpCount free slots or one of them is present.
template <unsigned int tOpCount>
TfLiteStatus RegisterOps(tflite::MicroMutableOpResolver<tOpCount>* resolver) {
  if (resolver == nullptr) return kTfLiteError;
  TfLiteStatus status = resolver->AddCustom(kBConv2DName, Register_TFQP_BCONV2D());
  if (status != kTfLiteOk) return status;
  status = resolver->AddCustom(kBFullyConnectedName, Register_TFQP_BFULLY_CONNECTED());
  if (status != kTfLiteOk) return status;
  return resolver->AddCustom(kBMaxPool2DName, Register_TFQP_BMAXPOOL2D());
}

}  // namespace tfqp

#endif  // TFQP_TFLM_TFQP_OPS_H_
