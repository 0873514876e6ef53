// Runs a .tflite model with TFQP ops in tflite::MicroInterpreter on the host:
//
//   tflm_runner MODEL.tflite INPUTS.bin OUTPUTS.bin COUNT [ARENA_BYTES]
//
// INPUTS.bin holds COUNT samples, each the raw bytes of input tensor 0 (or of
// every input tensor in order); OUTPUTS.bin receives, per sample, the raw bytes
// of every output tensor in order. Prints "arena_used_bytes N" on success,
// after TFLite Micro's recording allocator's breakdown of the arena ("Arena
// allocation head": tensors and scratch; "tail": persistent: op data, the
// TFQP ops' tables, tensor structs; benchmarks/kbit_arena.py reads them).
// Exit status: 0 ok, 1 usage/file error, 2 model rejected (AllocateTensors,
// with the kernels' messages on stderr through MicroPrintf), 3 Invoke failed.
//
// The resolver holds the TFQP ops (tfqp::RegisterOps) and the builtin ops the
// converter's int8 models use.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <vector>

#include "flatbuffers/flatbuffers.h"
#include "tensorflow/lite/micro/micro_interpreter.h"
#include "tensorflow/lite/micro/recording_micro_interpreter.h"
#include "tensorflow/lite/micro/micro_mutable_op_resolver.h"
#include "tensorflow/lite/schema/schema_generated.h"
#include "tfqp/tflm/tfqp_ops.h"

namespace {

constexpr unsigned int kBuiltinOps = 21;
using Resolver = tflite::MicroMutableOpResolver<kBuiltinOps + tfqp::kOpCount>;

TfLiteStatus AddOps(Resolver* resolver) {
  const TfLiteStatus statuses[] = {
      resolver->AddAdd(),          resolver->AddAveragePool2D(), resolver->AddConcatenation(),
      resolver->AddConv2D(),       resolver->AddDepthwiseConv2D(), resolver->AddDequantize(),
      resolver->AddFullyConnected(), resolver->AddLogistic(),     resolver->AddMaxPool2D(),
      resolver->AddMean(),         resolver->AddMinimum(),       resolver->AddMul(),
      resolver->AddPad(),          resolver->AddQuantize(),      resolver->AddRelu(),
      resolver->AddRelu6(),        resolver->AddReshape(),       resolver->AddSoftmax(),
      resolver->AddStridedSlice(), resolver->AddSub(),           resolver->AddTanh(),
  };
  for (TfLiteStatus status : statuses) {
    if (status != kTfLiteOk) return status;
  }
  return tfqp::RegisterOps(resolver);
}

bool ReadFile(const char* path, std::vector<unsigned char>* data) {
  FILE* file = fopen(path, "rb");
  if (file == nullptr) return false;
  unsigned char chunk[1 << 16];
  size_t n;
  while ((n = fread(chunk, 1, sizeof chunk, file)) > 0) data->insert(data->end(), chunk, chunk + n);
  const bool ok = ferror(file) == 0;
  fclose(file);
  return ok;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 5 || argc > 6) {
    fprintf(stderr, "usage: %s MODEL.tflite INPUTS.bin OUTPUTS.bin COUNT [ARENA_BYTES]\n",
            argv[0]);
    return 1;
  }
  const long count = strtol(argv[4], nullptr, 10);
  const long arena_bytes = argc == 6 ? strtol(argv[5], nullptr, 10) : (4L << 20);
  if (count < 0 || arena_bytes <= 0) {
    fprintf(stderr, "COUNT must be >= 0 and ARENA_BYTES > 0\n");
    return 1;
  }
  std::vector<unsigned char> file;
  if (!ReadFile(argv[1], &file)) {
    fprintf(stderr, "cannot read %s\n", argv[1]);
    return 1;
  }
  // A max_align_t-aligned copy: the flatbuffer's constant buffers keep the
  // alignment the converter gave them relative to the start of the model.
  std::vector<max_align_t> model_storage(file.size() / sizeof(max_align_t) + 1);
  memcpy(model_storage.data(), file.data(), file.size());
  const unsigned char* model_bytes = reinterpret_cast<const unsigned char*>(model_storage.data());
  flatbuffers::Verifier verifier(model_bytes, file.size());
  if (!tflite::VerifyModelBuffer(verifier)) {
    fprintf(stderr, "%s is not a valid TFLite flatbuffer\n", argv[1]);
    return 2;
  }
  std::vector<unsigned char> inputs;
  if (!ReadFile(argv[2], &inputs)) {
    fprintf(stderr, "cannot read %s\n", argv[2]);
    return 1;
  }

  Resolver resolver;
  if (AddOps(&resolver) != kTfLiteOk) {
    fprintf(stderr, "op registration failed\n");
    return 1;
  }
  std::vector<max_align_t> arena(static_cast<size_t>(arena_bytes) / sizeof(max_align_t) + 1);
  tflite::RecordingMicroInterpreter interpreter(tflite::GetModel(model_bytes), resolver,
                                       reinterpret_cast<uint8_t*>(arena.data()),
                                       static_cast<size_t>(arena_bytes));
  if (interpreter.AllocateTensors() != kTfLiteOk) {
    fprintf(stderr, "AllocateTensors failed\n");
    return 2;
  }
  size_t sample_bytes = 0;
  for (size_t i = 0; i < interpreter.inputs_size(); ++i) {
    sample_bytes += interpreter.input(i)->bytes;
  }
  if (inputs.size() != sample_bytes * static_cast<size_t>(count)) {
    fprintf(stderr, "%s has %zu bytes; %ld samples of %zu bytes expected\n", argv[2],
            inputs.size(), count, sample_bytes);
    return 1;
  }
  FILE* out = fopen(argv[3], "wb");
  if (out == nullptr) {
    fprintf(stderr, "cannot write %s\n", argv[3]);
    return 1;
  }
  size_t offset = 0;
  for (long sample = 0; sample < count; ++sample) {
    for (size_t i = 0; i < interpreter.inputs_size(); ++i) {
      TfLiteTensor* input = interpreter.input(i);
      memcpy(input->data.raw, inputs.data() + offset, input->bytes);
      offset += input->bytes;
    }
    if (interpreter.Invoke() != kTfLiteOk) {
      fprintf(stderr, "Invoke failed on sample %ld\n", sample);
      fclose(out);
      return 3;
    }
    for (size_t i = 0; i < interpreter.outputs_size(); ++i) {
      const TfLiteTensor* output = interpreter.output(i);
      fwrite(output->data.raw, 1, output->bytes, out);
    }
  }
  if (fclose(out) != 0) {
    fprintf(stderr, "cannot write %s\n", argv[3]);
    return 1;
  }
  interpreter.GetMicroAllocator().PrintAllocations();
  printf("arena_used_bytes %zu\n", interpreter.arena_used_bytes());
  return 0;
}
