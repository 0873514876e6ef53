// TensorFlow Lite adapters of the TFQP ops (tfqp/tflite/tfqp_ops.h): the
// TfLiteRegistration life cycle around the portable C core, nothing else.
#include "tfqp/tflite/tfqp_ops.h"

#include <stddef.h>
#include <stdint.h>

#include <new>
#include <vector>

#include "tensorflow/lite/mutable_op_resolver.h"
#include "tfqp/tfqp.h"

namespace tfqp {
namespace tflite {
namespace {

TfLiteStatus Report(TfLiteContext* context, const char* op, const tfqp_error& error) {
  TF_LITE_KERNEL_LOG(context, "%s: %s (%s = %lld) [%s]", op,
                     error.message != nullptr ? error.message : "error",
                     error.name != nullptr ? error.name : "?",
                     static_cast<long long>(error.value), tfqp_status_name(error.status));
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

TfLiteStatus CheckArity(TfLiteContext* context, const char* op, const TfLiteNode* node,
                        int inputs, int outputs) {
  if (node->inputs == nullptr || node->inputs->size != inputs) {
    return Fail(context, op, TFQP_ERROR_ARGUMENT, "wrong number of inputs", "inputs",
                node->inputs == nullptr ? 0 : node->inputs->size);
  }
  if (node->outputs == nullptr || node->outputs->size != outputs) {
    return Fail(context, op, TFQP_ERROR_ARGUMENT, "wrong number of outputs", "outputs",
                node->outputs == nullptr ? 0 : node->outputs->size);
  }
  return kTfLiteOk;
}

// What the portable validation needs to know of a tensor: element type, dims,
// byte size and (int8) the per-tensor zero point.
TfLiteStatus Describe(TfLiteContext* context, const char* op, const char* role,
                      const TfLiteTensor* tensor, tfqp_tensor* out) {
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
        return Fail(context, op, TFQP_ERROR_TENSOR_TYPE,
                    "int8 activations must be per-tensor quantized (zero points)", role,
                    affine->zero_point->size);
      }
    }
    zero_point = tensor->params.zero_point;
  }
  tfqp_tensor_init(out, type, rank, dims, tensor->bytes, zero_point);
  return kTfLiteOk;
}

// Constant (flatbuffer) int32 data, 4-byte aligned: what init_table reads as words.
TfLiteStatus CheckConstantWords(TfLiteContext* context, const char* op, const char* role,
                                const TfLiteTensor* tensor) {
  if (tensor->allocation_type != kTfLiteMmapRo || tensor->data.data == nullptr) {
    return Fail(context, op, TFQP_ERROR_TENSOR_DATA,
                "must be a constant tensor of the model (value: its allocation type)", role,
                tensor->allocation_type);
  }
  const uintptr_t address = reinterpret_cast<uintptr_t>(tensor->data.data);
  if (address % sizeof(tfqp_word) != 0) {
    return Fail(context, op, TFQP_ERROR_BUFFER,
                "constant data must be 4-byte aligned in the flatbuffer (misaligned by)", role,
                static_cast<int64_t>(address % sizeof(tfqp_word)));
  }
  return kTfLiteOk;
}

// Resizes `output` to `rank` dims (ResizeTensor takes the array).
TfLiteStatus ResizeOutput(TfLiteContext* context, TfLiteTensor* output, int rank,
                          const int32_t* dims) {
  TfLiteIntArray* shape = TfLiteIntArrayCreate(rank);
  if (shape == nullptr) return kTfLiteError;
  for (int i = 0; i < rank; ++i) shape->data[i] = dims[i];
  return context->ResizeTensor(context, output, shape);
}

// TFQP_BCONV2D and TFQP_BFULLY_CONNECTED share their life cycle; the traits
// bind it to one op's C API.
struct BConv2D {
  static constexpr const char* kName = kBConv2DName;
  static constexpr const char* kWeightsRole = "filter";
  static constexpr int kOutputRank = 4;
  using Options = tfqp_bconv2d_options;
  using Params = tfqp_bconv2d_params;
  static tfqp_status Parse(const uint8_t* buffer, size_t length, Options* o, tfqp_error* e) {
    return tfqp_bconv2d_parse_options(buffer, length, o, e);
  }
  static tfqp_status OutputDims(const Options* o, const tfqp_tensor* in, const tfqp_tensor* w,
                                tfqp_type type, int32_t* dims, tfqp_error* e) {
    return tfqp_bconv2d_output_dims(o, in, w, type, dims, e);
  }
  static tfqp_status Prepare(const Options* o, const tfqp_tensor* in, const tfqp_tensor* w,
                             const tfqp_tensor* t, const tfqp_tensor* out, Params* p,
                             tfqp_error* e) {
    return tfqp_bconv2d_prepare(o, in, w, t, out, p, e);
  }
  static tfqp_status InitTable(const Params* p, const tfqp_word* w, const int32_t* t,
                               int32_t* table, size_t bytes, tfqp_error* e) {
    return tfqp_bconv2d_init_table(p, w, t, table, bytes, e);
  }
  static void Eval(const Params* p, const int32_t* table, const void* in, const tfqp_word* w,
                   void* out, void* scratch) {
    tfqp_bconv2d_eval(p, table, in, w, out, scratch);
  }
};

struct BFullyConnected {
  static constexpr const char* kName = kBFullyConnectedName;
  static constexpr const char* kWeightsRole = "weights";
  static constexpr int kOutputRank = 2;
  using Options = tfqp_bfully_connected_options;
  using Params = tfqp_bfully_connected_params;
  static tfqp_status Parse(const uint8_t* buffer, size_t length, Options* o, tfqp_error* e) {
    return tfqp_bfully_connected_parse_options(buffer, length, o, e);
  }
  static tfqp_status OutputDims(const Options* o, const tfqp_tensor* in, const tfqp_tensor* w,
                                tfqp_type type, int32_t* dims, tfqp_error* e) {
    return tfqp_bfully_connected_output_dims(o, in, w, type, dims, e);
  }
  static tfqp_status Prepare(const Options* o, const tfqp_tensor* in, const tfqp_tensor* w,
                             const tfqp_tensor* t, const tfqp_tensor* out, Params* p,
                             tfqp_error* e) {
    return tfqp_bfully_connected_prepare(o, in, w, t, out, p, e);
  }
  static tfqp_status InitTable(const Params* p, const tfqp_word* w, const int32_t* t,
                               int32_t* table, size_t bytes, tfqp_error* e) {
    return tfqp_bfully_connected_init_table(p, w, t, table, bytes, e);
  }
  static void Eval(const Params* p, const int32_t* table, const void* in, const tfqp_word* w,
                   void* out, void* scratch) {
    tfqp_bfully_connected_eval(p, table, in, w, out, scratch);
  }
};

constexpr int kInput = 0;
constexpr int kWeights = 1;
constexpr int kTransform = 2;
constexpr int kOutput = 0;

template <typename Op>
struct BinaryOpData {
  typename Op::Options options;
  tfqp_error options_error;  // status != TFQP_OK: init could not parse the options
  typename Op::Params params;
  std::vector<int32_t> table;
  int scratch_tensor = -1;  // index of the scratch temporary in context->tensors
};

template <typename Op>
void* BinaryInit(TfLiteContext* context, const char* buffer, size_t length) {
  auto* data = new (std::nothrow) BinaryOpData<Op>();
  if (data == nullptr) return nullptr;
  data->options_error.status = TFQP_OK;
  Op::Parse(reinterpret_cast<const uint8_t*>(buffer), buffer == nullptr ? 0 : length,
            &data->options, &data->options_error);
  if (context->AddTensors(context, 1, &data->scratch_tensor) != kTfLiteOk) {
    data->scratch_tensor = -1;
  }
  return data;
}

template <typename Op>
void BinaryFree(TfLiteContext*, void* buffer) {
  delete static_cast<BinaryOpData<Op>*>(buffer);
}

template <typename Op>
TfLiteStatus BinaryPrepare(TfLiteContext* context, TfLiteNode* node) {
  auto* data = static_cast<BinaryOpData<Op>*>(node->user_data);
  if (data == nullptr || data->scratch_tensor < 0) {
    return Fail(context, Op::kName, TFQP_ERROR_BUFFER, "init could not allocate the op data",
                "op data", 0);
  }
  if (data->options_error.status != TFQP_OK) return Report(context, Op::kName, data->options_error);
  TF_LITE_ENSURE_OK(context, CheckArity(context, Op::kName, node, 3, 1));
  TfLiteTensor* input = NodeTensor(context, Op::kName, node->inputs, kInput, "input");
  TfLiteTensor* weights = NodeTensor(context, Op::kName, node->inputs, kWeights, Op::kWeightsRole);
  TfLiteTensor* transform = NodeTensor(context, Op::kName, node->inputs, kTransform, "transform");
  TfLiteTensor* output = NodeTensor(context, Op::kName, node->outputs, kOutput, "output");
  if (input == nullptr || weights == nullptr || transform == nullptr || output == nullptr) {
    return kTfLiteError;
  }
  tfqp_tensor in_t, weights_t, transform_t, out_t;
  TF_LITE_ENSURE_OK(context, Describe(context, Op::kName, "input", input, &in_t));
  TF_LITE_ENSURE_OK(context, Describe(context, Op::kName, Op::kWeightsRole, weights, &weights_t));
  TF_LITE_ENSURE_OK(context, Describe(context, Op::kName, "transform", transform, &transform_t));
  TF_LITE_ENSURE_OK(context, Describe(context, Op::kName, "output", output, &out_t));
  tfqp_error error;
  int32_t dims[4];
  if (Op::OutputDims(&data->options, &in_t, &weights_t, out_t.type, dims, &error) != TFQP_OK) {
    return Report(context, Op::kName, error);
  }
  TF_LITE_ENSURE_OK(context, ResizeOutput(context, output, Op::kOutputRank, dims));
  TF_LITE_ENSURE_OK(context, Describe(context, Op::kName, "output", output, &out_t));
  if (Op::Prepare(&data->options, &in_t, &weights_t, &transform_t, &out_t, &data->params,
                  &error) != TFQP_OK) {
    return Report(context, Op::kName, error);
  }
  TF_LITE_ENSURE_OK(context, CheckConstantWords(context, Op::kName, Op::kWeightsRole, weights));
  TF_LITE_ENSURE_OK(context, CheckConstantWords(context, Op::kName, "transform", transform));
  const size_t table_bytes = data->params.table_bytes;
  data->table.assign(table_bytes / sizeof(int32_t) + 1, 0);
  if (Op::InitTable(&data->params, static_cast<const tfqp_word*>(weights->data.data),
                    static_cast<const int32_t*>(transform->data.data), data->table.data(),
                    table_bytes, &error) != TFQP_OK) {
    return Report(context, Op::kName, error);
  }
  // The scratch lives in the interpreter's arena as an int8 temporary.
  const size_t scratch_bytes = data->params.scratch_bytes;
  if (scratch_bytes > static_cast<size_t>(INT32_MAX)) {
    return Fail(context, Op::kName, TFQP_ERROR_BUFFER, "scratch larger than 2^31 - 1 bytes",
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

template <typename Op>
TfLiteStatus BinaryInvoke(TfLiteContext* context, TfLiteNode* node) {
  const auto* data = static_cast<const BinaryOpData<Op>*>(node->user_data);
  const TfLiteTensor& input = context->tensors[node->inputs->data[kInput]];
  const TfLiteTensor& weights = context->tensors[node->inputs->data[kWeights]];
  TfLiteTensor& output = context->tensors[node->outputs->data[kOutput]];
  void* scratch = context->tensors[data->scratch_tensor].data.data;
  Op::Eval(&data->params, data->table.data(), input.data.data,
           static_cast<const tfqp_word*>(weights.data.data), output.data.data, scratch);
  return kTfLiteOk;
}

struct BMaxPool2DData {
  tfqp_bmaxpool2d_options options;
  tfqp_error options_error;
  tfqp_bmaxpool2d_params params;
};

constexpr const char* kMaxPoolName = kBMaxPool2DName;

void* BMaxPool2DInit(TfLiteContext*, const char* buffer, size_t length) {
  auto* data = new (std::nothrow) BMaxPool2DData();
  if (data == nullptr) return nullptr;
  data->options_error.status = TFQP_OK;
  tfqp_bmaxpool2d_parse_options(reinterpret_cast<const uint8_t*>(buffer),
                                buffer == nullptr ? 0 : length, &data->options,
                                &data->options_error);
  return data;
}

void BMaxPool2DFree(TfLiteContext*, void* buffer) {
  delete static_cast<BMaxPool2DData*>(buffer);
}

TfLiteStatus BMaxPool2DPrepare(TfLiteContext* context, TfLiteNode* node) {
  auto* data = static_cast<BMaxPool2DData*>(node->user_data);
  if (data == nullptr) {
    return Fail(context, kMaxPoolName, TFQP_ERROR_BUFFER, "init could not allocate the op data",
                "op data", 0);
  }
  if (data->options_error.status != TFQP_OK) {
    return Report(context, kMaxPoolName, data->options_error);
  }
  TF_LITE_ENSURE_OK(context, CheckArity(context, kMaxPoolName, node, 1, 1));
  TfLiteTensor* input = NodeTensor(context, kMaxPoolName, node->inputs, kInput, "input");
  TfLiteTensor* output = NodeTensor(context, kMaxPoolName, node->outputs, kOutput, "output");
  if (input == nullptr || output == nullptr) return kTfLiteError;
  tfqp_tensor in_t, out_t;
  TF_LITE_ENSURE_OK(context, Describe(context, kMaxPoolName, "input", input, &in_t));
  tfqp_error error;
  int32_t dims[4];
  if (tfqp_bmaxpool2d_output_dims(&data->options, &in_t, dims, &error) != TFQP_OK) {
    return Report(context, kMaxPoolName, error);
  }
  TF_LITE_ENSURE_OK(context, ResizeOutput(context, output, 4, dims));
  TF_LITE_ENSURE_OK(context, Describe(context, kMaxPoolName, "output", output, &out_t));
  if (tfqp_bmaxpool2d_prepare(&data->options, &in_t, &out_t, &data->params, &error) !=
      TFQP_OK) {
    return Report(context, kMaxPoolName, error);
  }
  return kTfLiteOk;
}

TfLiteStatus BMaxPool2DInvoke(TfLiteContext* context, TfLiteNode* node) {
  const auto* data = static_cast<const BMaxPool2DData*>(node->user_data);
  const TfLiteTensor& input = context->tensors[node->inputs->data[kInput]];
  TfLiteTensor& output = context->tensors[node->outputs->data[kOutput]];
  tfqp_bmaxpool2d_eval(&data->params, static_cast<const tfqp_word*>(input.data.data),
                       static_cast<tfqp_word*>(output.data.data));
  return kTfLiteOk;
}

TfLiteRegistration MakeRegistration(void* (*init)(TfLiteContext*, const char*, size_t),
                                    void (*free)(TfLiteContext*, void*),
                                    TfLiteStatus (*prepare)(TfLiteContext*, TfLiteNode*),
                                    TfLiteStatus (*invoke)(TfLiteContext*, TfLiteNode*)) {
  TfLiteRegistration registration = {};
  registration.init = init;
  registration.free = free;
  registration.prepare = prepare;
  registration.invoke = invoke;
  registration.version = 1;
  return registration;
}

}  // namespace

TfLiteRegistration* Register_TFQP_BCONV2D() {
  static TfLiteRegistration registration =
      MakeRegistration(BinaryInit<BConv2D>, BinaryFree<BConv2D>, BinaryPrepare<BConv2D>,
                       BinaryInvoke<BConv2D>);
  return &registration;
}

TfLiteRegistration* Register_TFQP_BFULLY_CONNECTED() {
  static TfLiteRegistration registration = MakeRegistration(
      BinaryInit<BFullyConnected>, BinaryFree<BFullyConnected>, BinaryPrepare<BFullyConnected>,
      BinaryInvoke<BFullyConnected>);
  return &registration;
}

TfLiteRegistration* Register_TFQP_BMAXPOOL2D() {
  static TfLiteRegistration registration =
      MakeRegistration(BMaxPool2DInit, BMaxPool2DFree, BMaxPool2DPrepare, BMaxPool2DInvoke);
  return &registration;
}

TfLiteStatus RegisterOps(::tflite::MutableOpResolver* resolver) {
  if (resolver == nullptr) return kTfLiteError;
  resolver->AddCustom(kBConv2DName, Register_TFQP_BCONV2D());
  resolver->AddCustom(kBFullyConnectedName, Register_TFQP_BFULLY_CONNECTED());
  resolver->AddCustom(kBMaxPool2DName, Register_TFQP_BMAXPOOL2D());
  return kTfLiteOk;
}

}  // namespace tflite
}  // namespace tfqp

extern "C" void TfqpRegisterOps(::tflite::MutableOpResolver* resolver) {
  tfqp::tflite::RegisterOps(resolver);
}
