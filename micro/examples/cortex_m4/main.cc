// Runs a converted model (TFLite Micro + TFQP ops) on the test images of
// sample.h and reports, per image, the predicted class, then what an inference
// costs: the DWT cycle counter on a real Cortex-M4, and, under qemu, the exact
// instruction counts between bench_mark() calls (`make run-counted`): one pair
// around each image's Invoke(), then one pair around each op of one more
// Invoke() of image 0 under a profiler (per-op breakdown).
//
// The model comes from `tfq-plus convert ... --c-array DIR --name NAME`; the
// Makefile passes its names as MODEL_ARRAY / MODEL_RESOLVER / MODEL_REGISTER_OPS
// and force-includes NAME.h and NAME_op_resolver.h.
#include <cstdint>
#include <cstring>

#include "sample.h"  // sample_count, sample_inputs[][], sample_input_bytes, sample_labels[]
#include "tensorflow/lite/micro/micro_interpreter.h"
#include "tensorflow/lite/micro/micro_profiler_interface.h"
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

// Calls the counter's marker at the start and the end of every op Invoke() runs
// and keeps the ops' names, printed after the run (printing inside it would be
// counted). The interpreter passes the op's name as the tag.
class OpMarkerProfiler : public tflite::MicroProfilerInterface {
 public:
  uint32_t BeginEvent(const char* tag) override {
    if (count_ < kMaxOps) tags_[count_] = tag;
    ++count_;
    bench_mark();
    return 0;
  }
  void EndEvent(uint32_t) override { bench_mark(); }

  void Print() const {
    for (int i = 0; i < count_ && i < kMaxOps; ++i) {
      semihosting_write("op ");
      semihosting_write_int(i);
      semihosting_write(": ");
      semihosting_write(tags_[i] != nullptr ? tags_[i] : "?");
      semihosting_write("\n");
    }
  }

 private:
  static constexpr int kMaxOps = 128;
  const char* tags_[kMaxOps] = {};
  int count_ = 0;
};

// The index of the largest output value (the predicted class).
int ArgMax(const TfLiteTensor* output) {
  int best = 0;
  for (int i = 1; i < output->dims->data[output->dims->size - 1]; ++i) {
    if (output->data.int8[i] > output->data.int8[best]) best = i;
  }
  return best;
}

// Builds an interpreter over the arena; AllocateTensors and the input checked.
bool Prepare(tflite::MicroInterpreter& interpreter) {
  if (interpreter.AllocateTensors() != kTfLiteOk) {
    Fail("AllocateTensors (arena too small? raise ARENA_KB)");
    return false;
  }
  const TfLiteTensor* input = interpreter.input(0);
  if (input->type != kTfLiteInt8 || input->bytes != sample_input_bytes) {
    Fail("sample.h does not match the model's int8 input");
    return false;
  }
  return true;
}

}  // namespace

int main() {
  MODEL_RESOLVER resolver;
  if (MODEL_REGISTER_OPS(resolver) != kTfLiteOk) return Fail("registering the model's ops");
  const tflite::Model* model = tflite::GetModel(MODEL_ARRAY);
  if (model->version() != TFLITE_SCHEMA_VERSION) return Fail("flatbuffer schema version");

  semihosting_write("images: ");
  semihosting_write_int(sample_count);
  semihosting_write("\n");
  uint32_t first_cycles = 0;
  {
    tflite::MicroInterpreter interpreter(model, resolver, tensor_arena, sizeof tensor_arena);
    if (!Prepare(interpreter)) return 1;
    StartCycleCounter();
    for (int image = 0; image < sample_count; ++image) {
      std::memcpy(interpreter.input(0)->data.int8, sample_inputs[image], sample_input_bytes);
      const uint32_t start = *kDwtCycles;
      bench_mark();
      const TfLiteStatus status = interpreter.Invoke();
      bench_mark();
      if (image == 0) first_cycles = *kDwtCycles - start;
      if (status != kTfLiteOk) return Fail("Invoke");
      semihosting_write("image ");
      semihosting_write_int(image);
      semihosting_write(": class ");
      semihosting_write_int(ArgMax(interpreter.output(0)));
      semihosting_write(" (label ");
      semihosting_write_int(sample_labels[image]);
      semihosting_write(")\n");
    }
    semihosting_write("cycles: ");
    if (first_cycles != 0) {
      semihosting_write_int(first_cycles);
    } else {
      semihosting_write("no cycle counter here (emulator): `make run-counted` counts instructions");
    }
    semihosting_write("\narena bytes used: ");
    semihosting_write_int(static_cast<int64_t>(interpreter.arena_used_bytes()));
    semihosting_write("\n");
  }

  // The per-op breakdown: a second interpreter on the same arena (the first is
  // gone), so the counts above carry no profiler calls.
  OpMarkerProfiler profiler;
  tflite::MicroInterpreter interpreter(model, resolver, tensor_arena, sizeof tensor_arena,
                                       nullptr, &profiler);
  if (!Prepare(interpreter)) return 1;
  std::memcpy(interpreter.input(0)->data.int8, sample_inputs[0], sample_input_bytes);
  if (interpreter.Invoke() != kTfLiteOk) return Fail("Invoke (profiled)");
  profiler.Print();
  return 0;
}
