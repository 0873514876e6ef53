// TFLite Micro adapters of the TFQP ops (tfqp/tflm/tfqp_ops.h): ONE generic
// Init / Prepare / Eval over a row of the C op table (tfqp/op.h); the glue
// shared with the TFLite adapters is ../common/tfqp_glue.h.
#include "tfqp/tflm/tfqp_ops.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <utility>

#include "tensorflow/lite/micro/kernels/kernel_util.h"
#include "tensorflow/lite/micro/micro_context.h"
#include "tensorflow/lite/micro/micro_log.h"
#include "tfqp/op.h"
#include "tfqp_glue.h"

namespace tfqp {
namespace {

// "TFQP_BCONV2D: <rule> (<name> = <value>) [<status>]" through MicroPrintf.
TfLiteStatus Report(const char* op, const tfqp_error& error) {
  glue::ErrorText text;
  glue::MakeErrorText(op, error, &text);
  MicroPrintf(TFQP_ERROR_FORMAT, text.op, text.message, text.name, text.value, text.status);
  return kTfLiteError;
}

TfLiteStatus Fail(const char* op, tfqp_status status, const char* message, const char* name,
                  int64_t value) {
  tfqp_error error;
  tfqp_fail(&error, status, message, name, value);
  return Report(op, error);
}

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
  TfLiteTensor* Input(const char* op, int index, const char* role) {
    return Keep(op, context_->AllocateTempInputTensor(node_, index), role, index);
  }
  TfLiteTensor* Output(const char* op, int index, const char* role) {
    return Keep(op, context_->AllocateTempOutputTensor(node_, index), role, index);
  }

 private:
  TfLiteTensor* Keep(const char* op, TfLiteTensor* tensor, const char* role, int index) {
    if (tensor == nullptr) {
      Fail(op, TFQP_ERROR_ARGUMENT, "tensor missing (optional index -1 or not allocated)", role,
           index);
      return nullptr;
    }
    if (count_ == kMaxTensors) {
      context_->DeallocateTempTfLiteTensor(tensor);
      Fail(op, TFQP_ERROR_ARGUMENT, "too many temporary tensors", role, index);
      return nullptr;
    }
    tensors_[count_++] = tensor;
    return tensor;
  }

  static constexpr int kMaxTensors = TFQP_OP_MAX_INPUTS + TFQP_OP_MAX_OUTPUTS;
  tflite::MicroContext* context_;
  const TfLiteNode* node_;
  TfLiteTensor* tensors_[kMaxTensors] = {};
  int count_ = 0;
};

// What a node keeps in the arena's persistent part, one allocation: the row,
// the table and the scratch index, then the prepared params (only the op's own
// member of tfqp_op_params: op.params_bytes, not the union). The options are
// parsed in Prepare from the node's custom data and not kept: eval needs only
// the params.
struct OpData {
  const tfqp_op* op;
  int32_t* table;  // nullptr: the op keeps no table
  int32_t input_count;
  int scratch_index;  // -1: no scratch
};

// Where the params start after the OpData.
constexpr size_t kParamsOffset =
    (sizeof(OpData) + alignof(tfqp_op_params) - 1) / alignof(tfqp_op_params) *
    alignof(tfqp_op_params);

// The params bytes a node keeps: the row's params_bytes (never beyond the union).
size_t KeptParamsBytes(const tfqp_op& op) {
  return op.params_bytes < sizeof(tfqp_op_params) ? op.params_bytes : sizeof(tfqp_op_params);
}

tfqp_op_params* ParamsOf(OpData* data) {
  return reinterpret_cast<tfqp_op_params*>(reinterpret_cast<uint8_t*>(data) + kParamsOffset);
}
const tfqp_op_params* ParamsOf(const OpData* data) {
  return reinterpret_cast<const tfqp_op_params*>(reinterpret_cast<const uint8_t*>(data) +
                                                 kParamsOffset);
}

void* Init(const tfqp_op& op, TfLiteContext* context, const char* buffer, size_t length) {
  (void)buffer;  // Prepare parses node->custom_initial_data, the same bytes
  (void)length;
  auto* data = static_cast<OpData*>(
      context->AllocatePersistentBuffer(context, kParamsOffset + KeptParamsBytes(op)));
  if (data == nullptr) return nullptr;  // Prepare reports it
  data->op = &op;
  data->table = nullptr;
  data->input_count = 0;
  data->scratch_index = -1;
  return data;
}

template <size_t I>
void* InitRow(TfLiteContext* context, const char* buffer, size_t length) {
  return Init(*tfqp_ops[I], context, buffer, length);
}

TfLiteStatus Prepare(const tfqp_op& op, TfLiteContext* context, TfLiteNode* node) {
  auto* data = static_cast<OpData*>(node->user_data);
  if (data == nullptr) {
    return Fail(op.name, TFQP_ERROR_BUFFER, "Init could not allocate the op data", "arena", 0);
  }
  tfqp_error error;
  tfqp_op_options options;
  const auto* custom = static_cast<const uint8_t*>(node->custom_initial_data);
  const size_t custom_bytes =
      custom == nullptr || node->custom_initial_data_size < 0
          ? 0
          : static_cast<size_t>(node->custom_initial_data_size);
  if (op.parse(custom, custom_bytes, &options, &error) != TFQP_OK) return Report(op.name, error);
  if (glue::CheckArity(op, node, &error) != TFQP_OK) return Report(op.name, error);
  const int32_t count = node->inputs->size;
  data->input_count = count;
  tflite::MicroContext* micro_context = tflite::GetMicroContext(context);
  TempTensors temps(micro_context, node);
  TfLiteTensor* inputs[TFQP_OP_MAX_INPUTS] = {};
  tfqp_tensor in_t[TFQP_OP_MAX_INPUTS];
  for (int32_t i = 0; i < count; ++i) {
    inputs[i] = temps.Input(op.name, i, op.input_roles[i]);
    if (inputs[i] == nullptr) return kTfLiteError;
  }
  TfLiteTensor* output = temps.Output(op.name, 0, "output");
  if (output == nullptr) return kTfLiteError;
  tfqp_tensor out_t;
  for (int32_t i = 0; i < count; ++i) {
    const bool constant = (op.constant_inputs & (1u << i)) != 0;
    if (glue::Describe(inputs[i], op.input_roles[i], constant, &in_t[i], &error) != TFQP_OK) {
      return Report(op.name, error);
    }
  }
  if (glue::DescribeOutput(output, &out_t, &error) != TFQP_OK) return Report(op.name, error);
  // TFLite Micro cannot resize tensors: prepare checks the output's shape.
  // The params are prepared on the stack and only the op's own bytes kept.
  tfqp_op_params params;
  tfqp_op_buffers buffers;
  if (op.prepare(&options, in_t, count, &out_t, &params, &buffers, &error) != TFQP_OK) {
    return Report(op.name, error);
  }
  memcpy(ParamsOf(data), &params, KeptParamsBytes(op));
  const void* constants[TFQP_OP_MAX_INPUTS] = {};
  for (int32_t i = 0; i < count; ++i) {
    if (!(op.constant_inputs & (1u << i))) continue;
    if (glue::CheckConstant(inputs[i], op.input_roles[i], &error) != TFQP_OK) {
      return Report(op.name, error);
    }
#ifdef USE_TFLM_COMPRESSION
    // init_table and the kernels read the constant data as stored.
    if (micro_context->IsTensorCompressed(node, i)) {
      return Fail(op.name, TFQP_ERROR_TENSOR_DATA,
                  "TFLM-compressed constant tensors are not supported", op.input_roles[i], i);
    }
#endif  // USE_TFLM_COMPRESSION
    constants[i] = inputs[i]->data.data;
  }
  data->table = nullptr;
  if (buffers.table_bytes > 0) {
    data->table = static_cast<int32_t*>(micro_context->AllocatePersistentBuffer(buffers.table_bytes));
    if (data->table == nullptr) {
      return Fail(op.name, TFQP_ERROR_BUFFER,
                  "arena too small for the precomputed table (bytes)", "table",
                  static_cast<int64_t>(buffers.table_bytes));
    }
  }
  // init_table validates the constants even when the op keeps no table.
  if (op.init_table != nullptr &&
      op.init_table(&params, constants, data->table, buffers.table_bytes, &error) != TFQP_OK) {
    return Report(op.name, error);
  }
  data->scratch_index = -1;
  if (buffers.scratch_bytes > 0 &&
      micro_context->RequestScratchBufferInArena(buffers.scratch_bytes,
                                                 &data->scratch_index) != kTfLiteOk) {
    return Fail(op.name, TFQP_ERROR_BUFFER, "scratch buffer request failed (bytes)", "scratch",
                static_cast<int64_t>(buffers.scratch_bytes));
  }
  return kTfLiteOk;
}

template <size_t I>
TfLiteStatus PrepareRow(TfLiteContext* context, TfLiteNode* node) {
  return Prepare(*tfqp_ops[I], context, node);
}

TfLiteStatus Eval(TfLiteContext* context, TfLiteNode* node) {
  const auto* data = static_cast<const OpData*>(node->user_data);
  const void* inputs[TFQP_OP_MAX_INPUTS];
  for (int32_t i = 0; i < data->input_count; ++i) {
    inputs[i] = tflite::micro::GetEvalInput(context, node, i)->data.data;
  }
  void* outputs[TFQP_OP_MAX_OUTPUTS] = {tflite::micro::GetEvalOutput(context, node, 0)->data.data};
  void* scratch = data->scratch_index >= 0
                      ? context->GetScratchBuffer(context, data->scratch_index)
                      : nullptr;
  data->op->eval(ParamsOf(data), data->table, inputs, outputs, scratch);
  return kTfLiteOk;
}

// One registration per row of tfqp_ops[], in table order.
template <size_t... I>
TFLMRegistration* Registrations(std::index_sequence<I...>) {
  static TFLMRegistration registrations[] = {
      tflite::micro::RegisterOp(InitRow<I>, PrepareRow<I>, Eval)...};
  return registrations;
}

}  // namespace

TFLMRegistration* RegistrationAt(int index) {
  if (index < 0 || index >= static_cast<int>(kOpCount)) return nullptr;
  return &Registrations(std::make_index_sequence<TFQP_OP_COUNT>{})[index];
}

TFLMRegistration* Registration(const char* name) {
  for (int i = 0; i < tfqp_op_count; ++i) {
    if (strcmp(tfqp_ops[i]->name, name) == 0) return RegistrationAt(i);
  }
  return nullptr;
}

#define TFQP_DEFINE_REGISTER(row, name) \
  TFLMRegistration* Register_TFQP_##name() { return Registration("TFQP_" #name); }
TFQP_OP_LIST(TFQP_DEFINE_REGISTER)
#undef TFQP_DEFINE_REGISTER

}  // namespace tfqp
