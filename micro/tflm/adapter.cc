// Internal helpers of the TFLite Micro adapters (adapter.h).
#include "adapter.h"

#include "tensorflow/lite/kernels/kernel_util.h"
#include "tensorflow/lite/micro/micro_log.h"

namespace tfqp {
namespace tflm {

void Report(const char* op, const tfqp_error& error) {
  // long: MCU printf implementations may lack %lld; the values reported are
  // option values, dims and small byte counts.
  MicroPrintf("%s: %s (%s = %ld) [%s]", op,
              error.message != nullptr ? error.message : "error",
              error.name != nullptr ? error.name : "?", static_cast<long>(error.value),
              tfqp_status_name(error.status));
}

TfLiteStatus Fail(const char* op, tfqp_status status, const char* message,
                  const char* name, int64_t value) {
  tfqp_error error;
  tfqp_fail(&error, status, message, name, value);
  Report(op, error);
  return kTfLiteError;
}

TfLiteStatus Describe(const char* op, const char* role, const TfLiteTensor* tensor,
                      tfqp_tensor* out) {
  tfqp_type type = TFQP_TYPE_OTHER;
  if (tensor->type == kTfLiteInt8) type = TFQP_TYPE_INT8;
  if (tensor->type == kTfLiteInt32) type = TFQP_TYPE_INT32;
  int32_t dims[TFQP_MAX_RANK] = {};
  int32_t rank = 0;
  if (tensor->dims != nullptr) {
    rank = tensor->dims->size;
    for (int32_t i = 0; i < rank && i < TFQP_MAX_RANK; ++i) dims[i] = tensor->dims->data[i];
  }
  int32_t zero_point = 0;
  if (type == TFQP_TYPE_INT8) {
    if (tensor->quantization.type == kTfLiteAffineQuantization &&
        tensor->quantization.params != nullptr) {
      const auto* affine =
          static_cast<const TfLiteAffineQuantization*>(tensor->quantization.params);
      if (affine->zero_point != nullptr && affine->zero_point->size != 1) {
        return Fail(op, TFQP_ERROR_TENSOR_TYPE,
                    "int8 activations must be per-tensor quantized (zero points)", role,
                    affine->zero_point->size);
      }
    }
    zero_point = tensor->params.zero_point;
  }
  tfqp_tensor_init(out, type, rank, dims, tensor->bytes, zero_point);
  return kTfLiteOk;
}

TfLiteStatus CheckConstantWords(const char* op, const char* role,
                                const TfLiteTensor* tensor) {
  if (!tflite::IsConstantTensor(tensor) || tensor->data.data == nullptr) {
    return Fail(op, TFQP_ERROR_TENSOR_DATA,
                "must be a constant tensor of the model (value: its allocation type)", role,
                tensor->allocation_type);
  }
  const uintptr_t address = reinterpret_cast<uintptr_t>(tensor->data.data);
  if (address % sizeof(tfqp_word) != 0) {
    return Fail(op, TFQP_ERROR_BUFFER,
                "constant data must be 4-byte aligned in the flatbuffer (misaligned by)", role,
                static_cast<int64_t>(address % sizeof(tfqp_word)));
  }
  return kTfLiteOk;
}

TfLiteStatus CheckArity(const char* op, const TfLiteNode* node, int inputs, int outputs) {
  if (node->inputs == nullptr || node->inputs->size != inputs) {
    return Fail(op, TFQP_ERROR_ARGUMENT, "wrong number of inputs", "inputs",
                node->inputs == nullptr ? 0 : node->inputs->size);
  }
  if (node->outputs == nullptr || node->outputs->size != outputs) {
    return Fail(op, TFQP_ERROR_ARGUMENT, "wrong number of outputs", "outputs",
                node->outputs == nullptr ? 0 : node->outputs->size);
  }
  return kTfLiteOk;
}

TfLiteTensor* TempTensors::Keep(const char* op, TfLiteTensor* tensor, const char* role,
                                int index) {
  if (tensor == nullptr) {
    Fail(op, TFQP_ERROR_ARGUMENT, "tensor missing (optional index -1 or not allocated)", role,
         index);
    return nullptr;
  }
  if (count_ == kMaxTensors) {  // the ops here use at most four
    context_->DeallocateTempTfLiteTensor(tensor);
    Fail(op, TFQP_ERROR_ARGUMENT, "too many temporary tensors", role, index);
    return nullptr;
  }
  tensors_[count_++] = tensor;
  return tensor;
}

TfLiteTensor* TempTensors::Input(const char* op, int index, const char* role) {
  return Keep(op, context_->AllocateTempInputTensor(node_, index), role, index);
}

TfLiteTensor* TempTensors::Output(const char* op, int index, const char* role) {
  return Keep(op, context_->AllocateTempOutputTensor(node_, index), role, index);
}

}  // namespace tflm
}  // namespace tfqp
