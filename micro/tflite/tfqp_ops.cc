// TensorFlow Lite adapters of the TFQP ops (tfqp/tflite/tfqp_ops.h): ONE generic
// init / free / prepare / invoke over a row of the C op table (tfqp/op.h); the
// glue shared with the TFLite Micro adapters is ../common/tfqp_glue.h.
#include "tfqp/tflite/tfqp_ops.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <new>
#include <utility>
#include <vector>

#include "tensorflow/lite/mutable_op_resolver.h"
#include "tfqp/op.h"
#include "tfqp_glue.h"

namespace tfqp {
namespace tflite {
namespace {

// "TFQP_BCONV2D: <rule> (<name> = <value>) [<status>]" through TF_LITE_KERNEL_LOG.
TfLiteStatus Report(TfLiteContext* context, const char* op, const tfqp_error& error) {
  glue::ErrorText text;
  glue::MakeErrorText(op, error, &text);
  TF_LITE_KERNEL_LOG(context, TFQP_ERROR_FORMAT, text.op, text.message, text.name, text.value,
                     text.status);
  return kTfLiteError;
}

TfLiteStatus Fail(TfLiteContext* context, const char* op, tfqp_status status,
                  const char* message, const char* name, int64_t value) {
  tfqp_error error;
  tfqp_fail(&error, status, message, name, value);
  return Report(context, op, error);
}

// The node's tensor `index` of `indices`, or nullptr (reported) when absent.
TfLiteTensor* NodeTensor(TfLiteContext* context, const char* op, const TfLiteIntArray* indices,
                         int index, const char* role) {
  const int tensor = indices->data[index];
  if (tensor < 0 || static_cast<size_t>(tensor) >= context->tensors_size) {
    Fail(context, op, TFQP_ERROR_ARGUMENT, "tensor missing (optional or out of range)", role,
         tensor);
    return nullptr;
  }
  return &context->tensors[tensor];
}

// Resizes `output` to `rank` dims (ResizeTensor takes the array).
TfLiteStatus ResizeOutput(TfLiteContext* context, TfLiteTensor* output, int rank,
                          const int32_t* dims) {
  TfLiteIntArray* shape = TfLiteIntArrayCreate(rank);
  if (shape == nullptr) return kTfLiteError;
  for (int i = 0; i < rank; ++i) shape->data[i] = dims[i];
  return context->ResizeTensor(context, output, shape);
}

struct OpData {
  glue::OpState state;
  std::vector<int32_t> table;  // empty: the op needs no table
  int scratch_tensor = -1;     // index of the scratch temporary in context->tensors
};

void* Init(const tfqp_op& op, TfLiteContext* context, const char* buffer, size_t length) {
  auto* data = new (std::nothrow) OpData();
  if (data == nullptr) return nullptr;
  glue::ParseOptions(op, buffer, length, &data->state);
  if (context->AddTensors(context, 1, &data->scratch_tensor) != kTfLiteOk) {
    data->scratch_tensor = -1;
  }
  return data;
}

void Free(TfLiteContext*, void* buffer) { delete static_cast<OpData*>(buffer); }

TfLiteStatus Prepare(const tfqp_op& op, TfLiteContext* context, TfLiteNode* node) {
  auto* data = static_cast<OpData*>(node->user_data);
  if (data == nullptr || data->scratch_tensor < 0) {
    return Fail(context, op.name, TFQP_ERROR_BUFFER, "init could not allocate the op data",
                "op data", 0);
  }
  if (data->state.options_error.status != TFQP_OK) {
    return Report(context, op.name, data->state.options_error);
  }
  tfqp_error error;
  if (glue::CheckArity(op, node, &error) != TFQP_OK) return Report(context, op.name, error);
  const int32_t count = node->inputs->size;
  data->state.input_count = count;
  TfLiteTensor* inputs[TFQP_OP_MAX_INPUTS] = {};
  tfqp_tensor in_t[TFQP_OP_MAX_INPUTS];
  for (int32_t i = 0; i < count; ++i) {
    inputs[i] = NodeTensor(context, op.name, node->inputs, i, op.input_roles[i]);
    if (inputs[i] == nullptr) return kTfLiteError;
  }
  TfLiteTensor* output = NodeTensor(context, op.name, node->outputs, 0, "output");
  if (output == nullptr) return kTfLiteError;
  for (int32_t i = 0; i < count; ++i) {
    const bool constant = (op.constant_inputs & (1u << i)) != 0;
    if (glue::Describe(inputs[i], op.input_roles[i], constant, &in_t[i], &error) != TFQP_OK) {
      return Report(context, op.name, error);
    }
  }
  tfqp_tensor out_t;
  if (glue::DescribeOutput(output, &out_t, &error) != TFQP_OK) {
    return Report(context, op.name, error);
  }
  // TFLite may resize inputs (e.g. the batch): the output follows the options.
  int32_t rank = 0;
  int32_t dims[TFQP_MAX_RANK];
  if (op.output_dims(&data->state.options, in_t, count, out_t.type, &rank, dims, &error) !=
      TFQP_OK) {
    return Report(context, op.name, error);
  }
  TF_LITE_ENSURE_OK(context, ResizeOutput(context, output, rank, dims));
  if (glue::DescribeOutput(output, &out_t, &error) != TFQP_OK) {
    return Report(context, op.name, error);
  }
  tfqp_op_buffers buffers;
  if (op.prepare(&data->state.options, in_t, count, &out_t, &data->state.params, &buffers,
                 &error) != TFQP_OK) {
    return Report(context, op.name, error);
  }
  const void* constants[TFQP_OP_MAX_INPUTS] = {};
  for (int32_t i = 0; i < count; ++i) {
    if (!(op.constant_inputs & (1u << i))) continue;
    if (glue::CheckConstant(inputs[i], op.input_roles[i], &error) != TFQP_OK) {
      return Report(context, op.name, error);
    }
    constants[i] = inputs[i]->data.data;
  }
  data->table.clear();
  if (buffers.table_bytes > 0) data->table.assign(buffers.table_bytes / sizeof(int32_t) + 1, 0);
  // init_table validates the constants even when the op keeps no table.
  if (op.init_table != nullptr &&
      op.init_table(&data->state.params, constants,
                    buffers.table_bytes > 0 ? data->table.data() : nullptr, buffers.table_bytes,
                    &error) != TFQP_OK) {
    return Report(context, op.name, error);
  }
  // The scratch lives in the interpreter's arena as an int8 temporary.
  const size_t scratch_bytes = buffers.scratch_bytes;
  if (scratch_bytes > static_cast<size_t>(INT32_MAX)) {
    return Fail(context, op.name, TFQP_ERROR_BUFFER, "scratch larger than 2^31 - 1 bytes",
                "scratch", static_cast<int64_t>(scratch_bytes));
  }
  TfLiteIntArrayFree(node->temporaries);
  node->temporaries = TfLiteIntArrayCreate(1);
  if (node->temporaries == nullptr) return kTfLiteError;
  node->temporaries->data[0] = data->scratch_tensor;
  TfLiteTensor* scratch = &context->tensors[data->scratch_tensor];
  scratch->type = kTfLiteInt8;
  scratch->allocation_type = kTfLiteArenaRw;
  const int32_t scratch_dims[1] = {static_cast<int32_t>(scratch_bytes > 0 ? scratch_bytes : 1)};
  return ResizeOutput(context, scratch, 1, scratch_dims);
}

TfLiteStatus Invoke(TfLiteContext* context, TfLiteNode* node) {
  const auto* data = static_cast<const OpData*>(node->user_data);
  const void* inputs[TFQP_OP_MAX_INPUTS];
  for (int32_t i = 0; i < data->state.input_count; ++i) {
    inputs[i] = context->tensors[node->inputs->data[i]].data.data;
  }
  void* outputs[TFQP_OP_MAX_OUTPUTS] = {context->tensors[node->outputs->data[0]].data.data};
  void* scratch = context->tensors[data->scratch_tensor].data.data;
  data->state.op->eval(&data->state.params, data->table.empty() ? nullptr : data->table.data(),
                       inputs, outputs, scratch);
  return kTfLiteOk;
}

// The callbacks of the op in row I of tfqp_ops[].
template <size_t I>
void* InitRow(TfLiteContext* context, const char* buffer, size_t length) {
  return Init(*tfqp_ops[I], context, buffer, length);
}

template <size_t I>
TfLiteStatus PrepareRow(TfLiteContext* context, TfLiteNode* node) {
  return Prepare(*tfqp_ops[I], context, node);
}

TfLiteRegistration MakeRegistration(void* (*init)(TfLiteContext*, const char*, size_t),
                                    TfLiteStatus (*prepare)(TfLiteContext*, TfLiteNode*)) {
  TfLiteRegistration registration = {};
  registration.init = init;
  registration.free = Free;
  registration.prepare = prepare;
  registration.invoke = Invoke;
  registration.version = 1;
  return registration;
}

// One registration per row of tfqp_ops[], in table order.
template <size_t... I>
TfLiteRegistration* Registrations(std::index_sequence<I...>) {
  static TfLiteRegistration registrations[] = {MakeRegistration(InitRow<I>, PrepareRow<I>)...};
  return registrations;
}

}  // namespace

TfLiteRegistration* RegistrationAt(int index) {
  if (index < 0 || index >= TFQP_OP_COUNT) return nullptr;
  return &Registrations(std::make_index_sequence<TFQP_OP_COUNT>{})[index];
}

TfLiteRegistration* Registration(const char* name) {
  for (int i = 0; i < tfqp_op_count; ++i) {
    if (strcmp(tfqp_ops[i]->name, name) == 0) return RegistrationAt(i);
  }
  return nullptr;
}

#define TFQP_DEFINE_REGISTER(row, name) \
  TfLiteRegistration* Register_TFQP_##name() { return Registration("TFQP_" #name); }
TFQP_OP_LIST(TFQP_DEFINE_REGISTER)
#undef TFQP_DEFINE_REGISTER

TfLiteStatus RegisterOps(::tflite::MutableOpResolver* resolver) {
  if (resolver == nullptr) return kTfLiteError;
  for (int i = 0; i < tfqp_op_count; ++i) {
    resolver->AddCustom(tfqp_ops[i]->name, RegistrationAt(i));
  }
  return kTfLiteOk;
}

}  // namespace tflite
}  // namespace tfqp

extern "C" void TfqpRegisterOps(::tflite::MutableOpResolver* resolver) {
  tfqp::tflite::RegisterOps(resolver);
}
