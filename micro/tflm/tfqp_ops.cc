// TFLite Micro adapters of the TFQP ops (tfqp/tflm/tfqp_ops.h): the TFLM
// life cycle around the portable C core, nothing else.
#include "tfqp/tflm/tfqp_ops.h"

#include <stddef.h>
#include <stdint.h>

#include "adapter.h"
#include "tensorflow/lite/micro/kernels/kernel_util.h"
#include "tensorflow/lite/micro/micro_context.h"
#include "tfqp/tfqp.h"

namespace tfqp {
namespace {

// TFQP_BCONV2D and TFQP_BFULLY_CONNECTED share their life cycle: options,
// prepare (tensors), init_table (constant weights + transform -> persistent
// table), eval with a scratch buffer. The traits bind it to one op's C API.
struct BConv2D {
  static constexpr const char* kName = kBConv2DName;
  static constexpr const char* kWeightsRole = "filter";
  using Options = tfqp_bconv2d_options;
  using Params = tfqp_bconv2d_params;
  static tfqp_status Parse(const uint8_t* buffer, size_t length, Options* o, tfqp_error* e) {
    return tfqp_bconv2d_parse_options(buffer, length, o, e);
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
  using Options = tfqp_bfully_connected_options;
  using Params = tfqp_bfully_connected_params;
  static tfqp_status Parse(const uint8_t* buffer, size_t length, Options* o, tfqp_error* e) {
    return tfqp_bfully_connected_parse_options(buffer, length, o, e);
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
  tfqp_error options_error;  // status != TFQP_OK: Init could not parse the options
  typename Op::Params params;
  int32_t* table;
  int scratch_index;  // -1: no scratch needed
};

template <typename Op>
void* BinaryInit(TfLiteContext* context, const char* buffer, size_t length) {
  auto* data = static_cast<BinaryOpData<Op>*>(
      context->AllocatePersistentBuffer(context, sizeof(BinaryOpData<Op>)));
  if (data == nullptr) return nullptr;  // Prepare reports it
  data->table = nullptr;
  data->scratch_index = -1;
  data->options_error.status = TFQP_OK;
  Op::Parse(reinterpret_cast<const uint8_t*>(buffer), buffer == nullptr ? 0 : length,
            &data->options, &data->options_error);
  return data;
}

template <typename Op>
TfLiteStatus BinaryPrepare(TfLiteContext* context, TfLiteNode* node) {
  auto* data = static_cast<BinaryOpData<Op>*>(node->user_data);
  if (data == nullptr) {
    return tflm::Fail(Op::kName, TFQP_ERROR_BUFFER, "Init could not allocate the op data",
                      "arena", 0);
  }
  if (data->options_error.status != TFQP_OK) {
    tflm::Report(Op::kName, data->options_error);
    return kTfLiteError;
  }
  TF_LITE_ENSURE_OK(context, tflm::CheckArity(Op::kName, node, 3, 1));
  tflite::MicroContext* micro_context = tflite::GetMicroContext(context);
  tflm::TempTensors temps(micro_context, node);
  const TfLiteTensor* input = temps.Input(Op::kName, kInput, "input");
  const TfLiteTensor* weights = temps.Input(Op::kName, kWeights, Op::kWeightsRole);
  const TfLiteTensor* transform = temps.Input(Op::kName, kTransform, "transform");
  const TfLiteTensor* output = temps.Output(Op::kName, kOutput, "output");
  if (input == nullptr || weights == nullptr || transform == nullptr || output == nullptr) {
    return kTfLiteError;
  }
  tfqp_tensor in_t, weights_t, transform_t, out_t;
  TF_LITE_ENSURE_OK(context, tflm::Describe(Op::kName, "input", input, &in_t));
  TF_LITE_ENSURE_OK(context, tflm::Describe(Op::kName, Op::kWeightsRole, weights, &weights_t));
  TF_LITE_ENSURE_OK(context, tflm::Describe(Op::kName, "transform", transform, &transform_t));
  TF_LITE_ENSURE_OK(context, tflm::Describe(Op::kName, "output", output, &out_t));
  tfqp_error error;
  if (Op::Prepare(&data->options, &in_t, &weights_t, &transform_t, &out_t, &data->params,
                  &error) != TFQP_OK) {
    tflm::Report(Op::kName, error);
    return kTfLiteError;
  }
  TF_LITE_ENSURE_OK(context, tflm::CheckConstantWords(Op::kName, Op::kWeightsRole, weights));
  TF_LITE_ENSURE_OK(context, tflm::CheckConstantWords(Op::kName, "transform", transform));
#ifdef USE_TFLM_COMPRESSION
  // init_table and the portable kernels read the words as stored.
  if (micro_context->IsTensorCompressed(node, kWeights) ||
      micro_context->IsTensorCompressed(node, kTransform)) {
    return tflm::Fail(Op::kName, TFQP_ERROR_TENSOR_DATA,
                      "TFLM-compressed constant tensors are not supported", Op::kWeightsRole, 0);
  }
#endif  // USE_TFLM_COMPRESSION
  const size_t table_bytes = data->params.table_bytes;
  data->table = static_cast<int32_t*>(micro_context->AllocatePersistentBuffer(table_bytes));
  if (data->table == nullptr) {
    return tflm::Fail(Op::kName, TFQP_ERROR_BUFFER,
                      "arena too small for the precomputed table (bytes)", "table",
                      static_cast<int64_t>(table_bytes));
  }
  if (Op::InitTable(&data->params, static_cast<const tfqp_word*>(weights->data.data),
                    static_cast<const int32_t*>(transform->data.data), data->table, table_bytes,
                    &error) != TFQP_OK) {
    tflm::Report(Op::kName, error);
    return kTfLiteError;
  }
  data->scratch_index = -1;
  if (data->params.scratch_bytes > 0 &&
      micro_context->RequestScratchBufferInArena(data->params.scratch_bytes,
                                                 &data->scratch_index) != kTfLiteOk) {
    return tflm::Fail(Op::kName, TFQP_ERROR_BUFFER, "scratch buffer request failed (bytes)",
                      "scratch", static_cast<int64_t>(data->params.scratch_bytes));
  }
  return kTfLiteOk;
}

template <typename Op>
TfLiteStatus BinaryEval(TfLiteContext* context, TfLiteNode* node) {
  const auto* data = static_cast<const BinaryOpData<Op>*>(node->user_data);
  const TfLiteEvalTensor* input = tflite::micro::GetEvalInput(context, node, kInput);
  const TfLiteEvalTensor* weights = tflite::micro::GetEvalInput(context, node, kWeights);
  TfLiteEvalTensor* output = tflite::micro::GetEvalOutput(context, node, kOutput);
  void* scratch = data->scratch_index >= 0
                      ? context->GetScratchBuffer(context, data->scratch_index)
                      : nullptr;
  Op::Eval(&data->params, data->table, input->data.data,
           static_cast<const tfqp_word*>(weights->data.data), output->data.data, scratch);
  return kTfLiteOk;
}

// TFQP_BMAXPOOL2D: no table, no scratch.
struct BMaxPool2DData {
  tfqp_bmaxpool2d_options options;
  tfqp_error options_error;
  tfqp_bmaxpool2d_params params;
};

constexpr const char* kMaxPoolName = kBMaxPool2DName;

void* BMaxPool2DInit(TfLiteContext* context, const char* buffer, size_t length) {
  auto* data = static_cast<BMaxPool2DData*>(
      context->AllocatePersistentBuffer(context, sizeof(BMaxPool2DData)));
  if (data == nullptr) return nullptr;
  data->options_error.status = TFQP_OK;
  tfqp_bmaxpool2d_parse_options(reinterpret_cast<const uint8_t*>(buffer),
                                buffer == nullptr ? 0 : length, &data->options,
                                &data->options_error);
  return data;
}

TfLiteStatus BMaxPool2DPrepare(TfLiteContext* context, TfLiteNode* node) {
  auto* data = static_cast<BMaxPool2DData*>(node->user_data);
  if (data == nullptr) {
    return tflm::Fail(kMaxPoolName, TFQP_ERROR_BUFFER, "Init could not allocate the op data",
                      "arena", 0);
  }
  if (data->options_error.status != TFQP_OK) {
    tflm::Report(kMaxPoolName, data->options_error);
    return kTfLiteError;
  }
  TF_LITE_ENSURE_OK(context, tflm::CheckArity(kMaxPoolName, node, 1, 1));
  tflm::TempTensors temps(tflite::GetMicroContext(context), node);
  const TfLiteTensor* input = temps.Input(kMaxPoolName, kInput, "input");
  const TfLiteTensor* output = temps.Output(kMaxPoolName, kOutput, "output");
  if (input == nullptr || output == nullptr) return kTfLiteError;
  tfqp_tensor in_t, out_t;
  TF_LITE_ENSURE_OK(context, tflm::Describe(kMaxPoolName, "input", input, &in_t));
  TF_LITE_ENSURE_OK(context, tflm::Describe(kMaxPoolName, "output", output, &out_t));
  tfqp_error error;
  if (tfqp_bmaxpool2d_prepare(&data->options, &in_t, &out_t, &data->params, &error) !=
      TFQP_OK) {
    tflm::Report(kMaxPoolName, error);
    return kTfLiteError;
  }
  return kTfLiteOk;
}

TfLiteStatus BMaxPool2DEval(TfLiteContext* context, TfLiteNode* node) {
  const auto* data = static_cast<const BMaxPool2DData*>(node->user_data);
  const TfLiteEvalTensor* input = tflite::micro::GetEvalInput(context, node, kInput);
  TfLiteEvalTensor* output = tflite::micro::GetEvalOutput(context, node, kOutput);
  tfqp_bmaxpool2d_eval(&data->params, static_cast<const tfqp_word*>(input->data.data),
                       static_cast<tfqp_word*>(output->data.data));
  return kTfLiteOk;
}

}  // namespace

TFLMRegistration* Register_TFQP_BCONV2D() {
  static TFLMRegistration registration = tflite::micro::RegisterOp(
      BinaryInit<BConv2D>, BinaryPrepare<BConv2D>, BinaryEval<BConv2D>);
  return &registration;
}

TFLMRegistration* Register_TFQP_BFULLY_CONNECTED() {
  static TFLMRegistration registration = tflite::micro::RegisterOp(
      BinaryInit<BFullyConnected>, BinaryPrepare<BFullyConnected>, BinaryEval<BFullyConnected>);
  return &registration;
}

TFLMRegistration* Register_TFQP_BMAXPOOL2D() {
  static TFLMRegistration registration =
      tflite::micro::RegisterOp(BMaxPool2DInit, BMaxPool2DPrepare, BMaxPool2DEval);
  return &registration;
}

}  // namespace tfqp
