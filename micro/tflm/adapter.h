// Internal to the TFLite Micro adapters: TfLiteTensor -> tfqp_tensor, error
// reporting, and the temporary tensors of one Prepare call.
#ifndef TFQP_TFLM_ADAPTER_H_
#define TFQP_TFLM_ADAPTER_H_

#include <stddef.h>
#include <stdint.h>

#include "tensorflow/lite/c/common.h"
#include "tensorflow/lite/micro/micro_context.h"
#include "tfqp/tfqp.h"

namespace tfqp {
namespace tflm {

// "TFQP_BCONV2D: <rule> (<name> = <value>) [<status>]" through MicroPrintf.
void Report(const char* op, const tfqp_error& error);

// Reports an adapter-level rule (not from the portable core) the same way.
TfLiteStatus Fail(const char* op, tfqp_status status, const char* message,
                  const char* name, int64_t value);

// Fills *out with what the portable validation needs: element type (INT8,
// INT32 or OTHER), dims, byte size, and for int8 tensors the per-tensor zero
// point (per-channel quantized activations are rejected). `role` names the
// tensor in errors.
TfLiteStatus Describe(const char* op, const char* role, const TfLiteTensor* tensor,
                      tfqp_tensor* out);

// A constant (flatbuffer) int32 tensor whose data is 4-byte aligned: what
// init_table reads as words.
TfLiteStatus CheckConstantWords(const char* op, const char* role,
                                const TfLiteTensor* tensor);

// The node's input/output tensors of one Prepare call, given back to the
// MicroContext on every return path.
class TempTensors {
 public:
  TempTensors(tflite::MicroContext* context, const TfLiteNode* node)
      : context_(context), node_(node) {}
  ~TempTensors() {
    for (int i = 0; i < count_; ++i) context_->DeallocateTempTfLiteTensor(tensors_[i]);
  }
  TempTensors(const TempTensors&) = delete;
  TempTensors& operator=(const TempTensors&) = delete;

  // nullptr (and an error report) when the node has no such tensor.
  TfLiteTensor* Input(const char* op, int index, const char* role);
  TfLiteTensor* Output(const char* op, int index, const char* role);

 private:
  TfLiteTensor* Keep(const char* op, TfLiteTensor* tensor, const char* role, int index);

  static constexpr int kMaxTensors = 4;
  tflite::MicroContext* context_;
  const TfLiteNode* node_;
  TfLiteTensor* tensors_[kMaxTensors] = {};
  int count_ = 0;
};

// Checks the node's input and output counts.
TfLiteStatus CheckArity(const char* op, const TfLiteNode* node, int inputs, int outputs);

}  // namespace tflm
}  // namespace tfqp

#endif  // TFQP_TFLM_ADAPTER_H_
