/* The fuzzer's bytes read as small decisions: integers in ranges, flags and
 * raw values, consumed from the front. Past the end every read gives the low
 * end of its range, so any prefix of an input is itself a valid input and
 * libFuzzer's truncations stay meaningful. */
#ifndef TFQP_FUZZ_FUZZ_INPUT_H_
#define TFQP_FUZZ_FUZZ_INPUT_H_

#include <stddef.h>
#include <stdint.h>

typedef struct {
  const uint8_t *data;
  size_t size;
  size_t at;
} fuzz_input;

static inline uint32_t fuzz_u32(fuzz_input *in, int bytes) {
  uint32_t v = 0;
  int i;
  for (i = 0; i < bytes; ++i) {
    v = (v << 8) | (in->at < in->size ? in->data[in->at] : 0u);
    if (in->at < in->size) ++in->at;
  }
  return v;
}

/* An integer in [low, high] (low when high <= low; both in int32's range). */
static inline int64_t fuzz_range(fuzz_input *in, int64_t low, int64_t high) {
  const uint64_t span = high > low ? (uint64_t)(high - low) + 1u : 1u;
  const int bytes = span <= 0x100u ? 1 : span <= 0x10000u ? 2 : 4;
  return low + (int64_t)((uint64_t)fuzz_u32(in, bytes) % span);
}

/* 1 with probability about 1 / n. */
static inline int fuzz_one_in(fuzz_input *in, int n) { return fuzz_range(in, 0, n - 1) == 0; }

/* Any int32 (the raw values validation must reject or survive). */
static inline int32_t fuzz_raw_int32(fuzz_input *in) {
  const uint32_t u = fuzz_u32(in, 4);
  return u <= (uint32_t)INT32_MAX ? (int32_t)u : (int32_t)(u - 2147483648u) - 2147483647 - 1;
}

/* The bytes left (for tensor data, cycled by the caller). */
static inline const uint8_t *fuzz_rest(const fuzz_input *in, size_t *size) {
  *size = in->size - in->at;
  return in->data + in->at;
}

#endif /* TFQP_FUZZ_FUZZ_INPUT_H_ */
