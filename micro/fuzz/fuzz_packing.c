/* libFuzzer target of the packed format's conversions (tfqp/packing.h):
 * tfqp_pack_int8, tfqp_unpack_int8 and tfqp_mask_packed on exact-size heap
 * buffers, each compared with a bit-by-bit reference of formats.h, and the
 * round trip unpack(pack(q)) = the signs of q - zp. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_input.h"
#include "tfqp/packing.h"

static void fail(const char *what) {
  fprintf(stderr, "fuzz_packing: %s\n", what);
  abort();
}

static void *exact(size_t bytes) {
  void *p = malloc(bytes > 0 ? bytes : 1);
  if (p == NULL) fail("out of memory");
  return p;
}

static void check_pack(const int8_t *q, int32_t pixels, int32_t channels, int32_t zp) {
  const int32_t words = (channels + 31) / 32;
  uint32_t *packed = (uint32_t *)exact((size_t)pixels * words * 4);
  int8_t *signs = (int8_t *)exact((size_t)pixels * channels);
  int32_t p, c;
  tfqp_pack_int8(q, pixels, channels, zp, packed);
  for (p = 0; p < pixels; ++p) {
    for (c = 0; c < words * 32; ++c) {
      const uint32_t bit = (packed[p * words + c / 32] >> (c % 32)) & 1u;
      const uint32_t expected = c < channels ? (uint32_t)(q[p * channels + c] < zp) : 0u;
      if (bit != expected) fail("tfqp_pack_int8 bit differs from q < zp (or padding not 0)");
    }
  }
  tfqp_unpack_int8(packed, pixels, channels, 1, -1, signs);
  for (p = 0; p < pixels * channels; ++p) {
    if (signs[p] != (q[p] < zp ? -1 : 1)) fail("unpack(pack(q)) is not the sign of q - zp");
  }
  free(signs);
  free(packed);
}

static void check_unpack_and_mask(const uint32_t *words_in, int32_t pixels, int32_t channels,
                                  int8_t positive, int8_t negative) {
  const int32_t words = (channels + 31) / 32;
  int8_t *values = (int8_t *)exact((size_t)pixels * channels);
  uint32_t *masked = (uint32_t *)exact((size_t)pixels * words * 4);
  int32_t p, c;
  tfqp_unpack_int8(words_in, pixels, channels, positive, negative, values);
  tfqp_mask_packed(words_in, pixels, channels, masked);
  for (p = 0; p < pixels; ++p) {
    for (c = 0; c < words * 32; ++c) {
      const uint32_t bit = (words_in[p * words + c / 32] >> (c % 32)) & 1u;
      const uint32_t kept = (masked[p * words + c / 32] >> (c % 32)) & 1u;
      if (kept != (c < channels ? bit : 0u)) fail("tfqp_mask_packed kept a padding bit or lost data");
      if (c < channels && values[p * channels + c] != (bit ? negative : positive)) {
        fail("tfqp_unpack_int8 value differs from the bit");
      }
    }
  }
  free(masked);
  free(values);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fuzz_input in = {data, size, 0};
  const int32_t pixels = (int32_t)fuzz_range(&in, 1, 8);
  const int32_t channels = (int32_t)fuzz_range(&in, 1, 300);
  const int32_t zp = (int32_t)fuzz_range(&in, -128, 127);
  const int8_t positive = (int8_t)fuzz_range(&in, -128, 127);
  const int8_t negative = (int8_t)fuzz_range(&in, -128, 127);
  const size_t values = (size_t)pixels * channels;
  const size_t words = (size_t)pixels * ((channels + 31) / 32);
  int8_t *q = (int8_t *)exact(values);
  uint32_t *packed = (uint32_t *)exact(words * 4);
  size_t rest, i;
  const uint8_t *bytes = fuzz_rest(&in, &rest);
  for (i = 0; i < values; ++i) q[i] = (int8_t)(rest > 0 ? bytes[i % rest] ^ (uint8_t)(i / rest) : i);
  for (i = 0; i < words * 4; ++i) {
    ((uint8_t *)packed)[i] = rest > 0 ? bytes[(i + 7) % rest] : (uint8_t)(i * 37u);
  }
  check_pack(q, pixels, channels, zp);
  check_unpack_and_mask(packed, pixels, channels, positive, negative);
  free(packed);
  free(q);
  return 0;
}
