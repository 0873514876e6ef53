// The adapters' shared glue (tfqp_glue.h).
#include "tfqp_glue.h"

namespace tfqp {
namespace glue {

void MakeErrorText(const char* op, const tfqp_error& error, ErrorText* text) {
  text->op = op;
  text->message = error.message != nullptr ? error.message : "error";
  text->name = error.name != nullptr ? error.name : "?";
  text->status = tfqp_status_name(error.status);
  char digits[sizeof text->value];
  char* p = digits + sizeof digits - 1;
  uint64_t magnitude = error.value < 0 ? 0u - static_cast<uint64_t>(error.value)
                                       : static_cast<uint64_t>(error.value);
  *p = '\0';
  do {
    *--p = static_cast<char>('0' + magnitude % 10u);
    magnitude /= 10u;
  } while (magnitude != 0u);
  if (error.value < 0) *--p = '-';
  size_t i = 0;
  for (; p[i] != '\0'; ++i) text->value[i] = p[i];
  text->value[i] = '\0';
}

void ParseOptions(const tfqp_op& op, const char* buffer, size_t length, OpState* state) {
  state->op = &op;
  state->input_count = 0;
  state->options_error.status = TFQP_OK;
  op.parse(reinterpret_cast<const uint8_t*>(buffer), buffer == nullptr ? 0 : length,
           &state->options, &state->options_error);
}

tfqp_status CheckArity(const tfqp_op& op, const TfLiteNode* node, tfqp_error* error) {
  const int32_t inputs = node->inputs == nullptr ? 0 : node->inputs->size;
  const int32_t outputs = node->outputs == nullptr ? 0 : node->outputs->size;
  return tfqp_op_check_arity(&op, inputs, outputs, error);
}

// The quantization the model gives the tensor (counts 0 when it has none).
static tfqp_quantization QuantizationOf(const TfLiteTensor* tensor) {
  tfqp_quantization q = {0, nullptr, 0, nullptr};
  if (tensor->quantization.type == kTfLiteAffineQuantization &&
      tensor->quantization.params != nullptr) {
    const auto* affine =
        static_cast<const TfLiteAffineQuantization*>(tensor->quantization.params);
    if (affine->scale != nullptr) {
      q.scale_count = affine->scale->size;
      q.scales = affine->scale->data;
    }
    if (affine->zero_point != nullptr) {
      q.zero_point_count = affine->zero_point->size;
      q.zero_points = affine->zero_point->data;
    }
  }
  return q;
}

tfqp_status Describe(const TfLiteTensor* tensor, const char* role, bool constant,
                     tfqp_tensor* out, tfqp_error* error) {
  tfqp_type type = TFQP_TYPE_OTHER;
  if (tensor->type == kTfLiteInt8) type = TFQP_TYPE_INT8;
  if (tensor->type == kTfLiteInt32) type = TFQP_TYPE_INT32;
  if (tensor->type == kTfLiteInt16) type = TFQP_TYPE_INT16;
  int32_t dims[TFQP_MAX_RANK] = {};
  int32_t rank = 0;
  if (tensor->dims != nullptr) {
    rank = tensor->dims->size;
    for (int32_t i = 0; i < rank && i < TFQP_MAX_RANK; ++i) dims[i] = tensor->dims->data[i];
  }
  const tfqp_quantization quantization = QuantizationOf(tensor);
  int32_t zero_point = 0;
  const tfqp_status s =
      tfqp_quantization_check(&quantization, type, constant ? 1 : 0, role, &zero_point, error);
  if (s != TFQP_OK) return s;
  tfqp_tensor_init(out, type, rank, dims, tensor->bytes, zero_point);
  // A constant's data lets prepare lay out a smaller table (tfqp/tensor.h);
  // CheckConstant rejects what is not a usable constant before init_table.
  const size_t align = type == TFQP_TYPE_INT32 ? 4 : type == TFQP_TYPE_INT16 ? 2 : 1;
  if (constant && tensor->allocation_type == kTfLiteMmapRo && tensor->data.data != nullptr &&
      reinterpret_cast<uintptr_t>(tensor->data.data) % align == 0) {
    out->data = tensor->data.data;
  }
  return TFQP_OK;
}

tfqp_status DescribeOutput(const TfLiteTensor* tensor, tfqp_tensor* out, tfqp_error* error) {
  if (tensor->allocation_type == kTfLiteMmapRo) {
    return tfqp_fail(error, TFQP_ERROR_TENSOR_DATA,
                     "output must not be a constant tensor of the model (value: its allocation "
                     "type)",
                     "output", tensor->allocation_type);
  }
  return Describe(tensor, "output", false, out, error);
}

tfqp_status CheckConstant(const TfLiteTensor* tensor, const char* role, tfqp_error* error) {
  if (tensor->allocation_type != kTfLiteMmapRo || tensor->data.data == nullptr) {
    return tfqp_fail(error, TFQP_ERROR_TENSOR_DATA,
                     "must be a constant tensor of the model (value: its allocation type)", role,
                     tensor->allocation_type);
  }
  const uintptr_t alignment = tensor->type == kTfLiteInt32 ? sizeof(int32_t) : 1;
  const uintptr_t address = reinterpret_cast<uintptr_t>(tensor->data.data);
  if (address % alignment != 0) {
    return tfqp_fail(error, TFQP_ERROR_BUFFER,
                     "constant data must be 4-byte aligned in the flatbuffer (misaligned by)",
                     role, static_cast<int64_t>(address % alignment));
  }
  return TFQP_OK;
}

}  // namespace glue
}  // namespace tfqp
