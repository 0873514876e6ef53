// Runs one inference of a converted model (TFLite Micro + TFQP ops) on the
// sample in sample.h and reports the predicted class and what the inference
// cost: the DWT cycle counter on a real Cortex-M4, and, under qemu, the exact
// instruction count between the two bench_mark() calls (`make run-counted`).
//
// The model comes from `tfq-plus convert ... --c-array DIR --name NAME`; the
// Makefile passes its names as MODEL_ARRAY / MODEL_RESOLVER / MODEL_REGISTER_OPS
// and force-includes NAME.h and NAME_op_resolver.h.
#include <cstdint>
#include <cstring>

#include "sample.h"  // sample_input[], sample_input_bytes, sample_label
#include "tensorflow/lite/micro/micro_interpreter.h"
#include "tensorflow/lite/schema/schema_generated.h"

extern "C" {
#include "semihosting.h"
void bench_mark(void);  // ../../cortex_m/bench/count_loop.S: the counter's marker
}

namespace {

alignas(16) uint8_t tensor_arena[ARENA_BYTES];

// Data Watchpoint and Trace unit: the cycle counter of Cortex-M3/M4/M7.
volatile uint32_t* const kDemcr = reinterpret_cast<uint32_t*>(0xE000EDFCu);
volatile uint32_t* const kDwtCtrl = reinterpret_cast<uint32_t*>(0xE0001000u);
volatile uint32_t* const kDwtCycles = reinterpret_cast<uint32_t*>(0xE0001004u);

void StartCycleCounter() {
  *kDemcr |= 1u << 24;  // TRCENA: enable DWT
  *kDwtCycles = 0;
  *kDwtCtrl |= 1u;  // CYCCNTENA
}

int Fail(const char* what) {
  semihosting_write("error: ");
  semihosting_write(what);
  semihosting_write("\n");
  return 1;
}

}  // namespace

int main() {
  MODEL_RESOLVER resolver;
  if (MODEL_REGISTER_OPS(resolver) != kTfLiteOk) return Fail("registering the model's ops");
  const tflite::Model* model = tflite::GetModel(MODEL_ARRAY);
  if (model->version() != TFLITE_SCHEMA_VERSION) return Fail("flatbuffer schema version");
  tflite::MicroInterpreter interpreter(model, resolver, tensor_arena, sizeof tensor_arena);
  if (interpreter.AllocateTensors() != kTfLiteOk) {
    return Fail("AllocateTensors (arena too small? raise ARENA_KB)");
  }
  TfLiteTensor* input = interpreter.input(0);
  if (input->type != kTfLiteInt8 || input->bytes != sample_input_bytes) {
    return Fail("sample.h does not match the model's int8 input");
  }
  std::memcpy(input->data.int8, sample_input, sample_input_bytes);

  StartCycleCounter();
  const uint32_t start = *kDwtCycles;
  bench_mark();
  const TfLiteStatus status = interpreter.Invoke();
  bench_mark();
  const uint32_t cycles = *kDwtCycles - start;
  if (status != kTfLiteOk) return Fail("Invoke");

  const TfLiteTensor* output = interpreter.output(0);
  int best = 0;
  for (int i = 1; i < output->dims->data[output->dims->size - 1]; ++i) {
    if (output->data.int8[i] > output->data.int8[best]) best = i;
  }
  semihosting_write("class: ");
  semihosting_write_int(best);
  semihosting_write(" (label ");
  semihosting_write_int(sample_label);
  semihosting_write(")\ncycles: ");
  if (cycles != 0) {
    semihosting_write_int(cycles);
  } else {
    semihosting_write("no cycle counter here (emulator): `make run-counted` counts instructions");
  }
  semihosting_write("\narena bytes used: ");
  semihosting_write_int(static_cast<int64_t>(interpreter.arena_used_bytes()));
  semihosting_write("\n");
  return 0;
}
