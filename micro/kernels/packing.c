/* int8 <-> packed conversions (see tfqp/packing.h and tfqp/formats.h). */
#include "tfqp/packing.h"

#include <stddef.h>
#include <string.h>

#include "xnor_arm.h"
#include "xnor_popcount.h"

#if TFQP_HAVE_AVX2
#include <immintrin.h>
#endif

#if TFQP_HAVE_ARM_DSP
/* Bits (q < zp) of the 8 int8 values at q, value i at bit i: SSUB8 sets the
 * GE flag of every byte with q - zp >= 0, SEL then takes 0 there and the
 * byte's bit weight (1, 2, 4, 8 / 16, 32, 64, 128) elsewhere, USAD8 / USADA8
 * add the weights of the eight bytes. */
static inline uint32_t arm_pack8(const int8_t *q, uint32_t zp4) {
  uint32_t a, b, lo, hi, sum;
  memcpy(&a, q, sizeof a);
  memcpy(&b, q + 4, sizeof b);
  __asm__("ssub8 %0, %1, %2\n\tsel %0, %3, %4"
          : "=&r"(lo) : "r"(a), "r"(zp4), "r"(0u), "r"(0x08040201u));
  __asm__("ssub8 %0, %1, %2\n\tsel %0, %3, %4"
          : "=&r"(hi) : "r"(b), "r"(zp4), "r"(0u), "r"(0x80402010u));
  __asm__("usad8 %0, %1, %2\n\tusada8 %0, %3, %2, %0"
          : "=&r"(sum) : "r"(lo), "r"(0u), "r"(hi));
  return sum;
}
#endif

void tfqp_pack_int8(const int8_t *input, int32_t pixels, int32_t channels,
                    int32_t zero_point, tfqp_word *output) {
  const int32_t full_words = channels / TFQP_WORD_BITS;
  const int32_t tail = channels % TFQP_WORD_BITS;
  int32_t p;
#if TFQP_HAVE_AVX2
  /* q < zp  <=>  zp > q: a byte compare, then one bit per byte in channel
   * order, which is exactly the bit order of formats.h. */
  const __m256i zp = _mm256_set1_epi8((char)zero_point);
#endif
  for (p = 0; p < pixels; ++p) {
    const int8_t *in = input + (size_t)p * channels;
    tfqp_word *out = output + (size_t)p * TFQP_WORDS(channels);
    int32_t w;
    for (w = 0; w < full_words; ++w) {
      const int8_t *q = in + (size_t)w * TFQP_WORD_BITS;
      uint32_t bits = 0;
#if TFQP_HAVE_AVX2
      const __m256i v = _mm256_loadu_si256((const __m256i *)(const void *)q);
      bits = (uint32_t)_mm256_movemask_epi8(_mm256_cmpgt_epi8(zp, v));
#elif TFQP_HAVE_ARM_DSP
      const uint32_t zp4 = (uint8_t)zero_point * 0x01010101u;
      bits = arm_pack8(q, zp4) | arm_pack8(q + 8, zp4) << 8 | arm_pack8(q + 16, zp4) << 16 |
             arm_pack8(q + 24, zp4) << 24;
#else
      int32_t b;
      for (b = 0; b < TFQP_WORD_BITS; ++b) bits |= (uint32_t)(q[b] < zero_point) << b;
#endif
      out[w] = bits;
    }
    if (tail != 0) {
      const int8_t *q = in + (size_t)full_words * TFQP_WORD_BITS;
      uint32_t bits = 0;
      int32_t b;
      for (b = 0; b < tail; ++b) bits |= (uint32_t)(q[b] < zero_point) << b;
      out[full_words] = bits;
    }
  }
}

void tfqp_unpack_int8(const tfqp_word *input, int32_t pixels, int32_t channels,
                      int8_t positive, int8_t negative, int8_t *output) {
  const int32_t words = TFQP_WORDS(channels);
  int32_t p;
  for (p = 0; p < pixels; ++p) {
    const tfqp_word *in = input + (size_t)p * words;
    int8_t *out = output + (size_t)p * channels;
    int32_t c;
    for (c = 0; c < channels; ++c) {
      const uint32_t bit = (in[TFQP_WORD_INDEX(c)] >> TFQP_BIT_INDEX(c)) & 1u;
      out[c] = bit ? negative : positive;
    }
  }
}

void tfqp_mask_packed(const tfqp_word *input, int32_t pixels, int32_t channels,
                      tfqp_word *output) {
  const int32_t words = TFQP_WORDS(channels);
  const uint32_t mask = TFQP_LAST_WORD_MASK(channels);
  int32_t p, w;
  for (p = 0; p < pixels; ++p) {
    const tfqp_word *in = input + (size_t)p * words;
    tfqp_word *out = output + (size_t)p * words;
    for (w = 0; w < words - 1; ++w) out[w] = in[w];
    out[words - 1] = in[words - 1] & mask;
  }
}

/* One row of `count` codes packed: word by word, the word's codes shifted in
 * from its last; a row's last word holds its remaining codes (the padding
 * codes 0). With `bits` a constant (the 2- and 4-bit activations, which every
 * k-bit op packs and unpacks per eval) the compiler unrolls the inner loops:
 * three instructions a code instead of a division and a shift. */
static inline void pack_row(const uint8_t *in, int32_t count, int32_t bits, tfqp_word *out) {
  const int32_t per_word = TFQP_CODES_PER_WORD(bits);
  int32_t i, k;
  for (i = 0; i + per_word <= count; i += per_word) {
    uint32_t word = 0;
    for (k = per_word - 1; k >= 0; --k) {
      word = word << bits | ((uint32_t)in[i + k] & TFQP_CODE_MASK(bits));
    }
    *out++ = word;
  }
  if (i < count) {
    uint32_t word = 0;
    for (k = count - i - 1; k >= 0; --k) {
      word = word << bits | ((uint32_t)in[i + k] & TFQP_CODE_MASK(bits));
    }
    *out = word;
  }
}

/* One row of `count` codes unpacked, word by word (see pack_row). */
static inline void unpack_row(const tfqp_word *row, int32_t count, int32_t bits, uint8_t *out) {
  const int32_t per_word = TFQP_CODES_PER_WORD(bits);
  int32_t i, k;
  for (i = 0; i + per_word <= count; i += per_word) {
    const uint32_t word = *row++;
    for (k = 0; k < per_word; ++k) {
      out[i + k] = (uint8_t)((word >> (k * bits)) & TFQP_CODE_MASK(bits));
    }
  }
  for (k = 0; i < count; ++i, ++k) {
    out[i] = (uint8_t)((*row >> (k * bits)) & TFQP_CODE_MASK(bits));
  }
}

void tfqp_pack_codes(const uint8_t *codes, int32_t rows, int32_t count, int32_t bits,
                     tfqp_word *output) {
  const size_t words = (size_t)TFQP_CODE_WORDS(count, bits);
  int32_t r;
  for (r = 0; r < rows; ++r) {
    const uint8_t *in = codes + (size_t)r * (size_t)count;
    tfqp_word *out = output + (size_t)r * words;
    if (bits == 4) {
      pack_row(in, count, 4, out);
    } else if (bits == 2) {
      pack_row(in, count, 2, out);
    } else {
      pack_row(in, count, bits, out);
    }
  }
}

void tfqp_unpack_codes(const tfqp_word *words, int32_t rows, int32_t count, int32_t bits,
                       uint8_t *codes) {
  const size_t row_words = (size_t)TFQP_CODE_WORDS(count, bits);
  int32_t r;
  for (r = 0; r < rows; ++r) {
    const tfqp_word *row = words + (size_t)r * row_words;
    uint8_t *out = codes + (size_t)r * (size_t)count;
    if (bits == 4) {
      unpack_row(row, count, 4, out);
    } else if (bits == 2) {
      unpack_row(row, count, 2, out);
    } else {
      unpack_row(row, count, bits, out);
    }
  }
}
