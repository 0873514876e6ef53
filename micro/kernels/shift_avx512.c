/* The AVX-512 VNNI kernels of the shift ops' x86 path (interface and layout
 * in shift_x86.h), compiled for that instruction set function by function
 * and called by shift_avx2.c only when CPUID reports AVX-512 F, BW and VNNI
 * (and the OS saves the 512-bit state): one VPDPBUSD multiplies 16 channels
 * by 4 taps of u bytes and adds the four products of each channel to its
 * 32-bit accumulator, exactly (the products' sum fits an int32). */
#include "shift_fast.h"

#if TFQP_HAVE_AVX2 && defined(__GNUC__)

#include <immintrin.h>
#include <string.h>

#include "shift_x86.h"

#define TFQP_AVX512 __attribute__((target("avx512f,avx512bw,avx512vnni")))

/* -DTFQP_SHIFT_NO_AVX512 keeps the AVX2 kernels on every CPU (make -C micro
 * test builds that variant too, so both kernel sets are compared). */
int tfqp_shift_avx512_available(void) {
  static int known = 0, available = 0;
#ifdef TFQP_SHIFT_NO_AVX512
  known = 1;
#endif
  if (!known) {
    __builtin_cpu_init();
    available = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                __builtin_cpu_supports("avx512vnni");
    known = 1;
  }
  return available;
}

static inline int32_t load_u32(const uint8_t *p) {
  int32_t v;
  memcpy(&v, p, sizeof v);
  return v;
}

TFQP_AVX512 void tfqp_shift_avx512_rows(const uint8_t *const *rows, const int8_t *weights,
                                        size_t block_bytes, int32_t blocks, int32_t groups,
                                        int32_t *acc) {
  __m512i a[TFQP_AVX512_ROWS][2];
  int32_t g, r;
  for (r = 0; r < TFQP_AVX512_ROWS; ++r) a[r][0] = a[r][1] = _mm512_setzero_si512();
  if (blocks == 2) {
    for (g = 0; g < groups; ++g) {
      const int8_t *w = weights + (size_t)g * TFQP_X86_GROUP_BYTES;
      const __m512i w0 = _mm512_loadu_si512((const void *)w);
      const __m512i w1 = _mm512_loadu_si512((const void *)(w + block_bytes));
      for (r = 0; r < TFQP_AVX512_ROWS; ++r) {
        const __m512i u = _mm512_set1_epi32(load_u32(rows[r] + 4 * g));
        a[r][0] = _mm512_dpbusd_epi32(a[r][0], u, w0);
        a[r][1] = _mm512_dpbusd_epi32(a[r][1], u, w1);
      }
    }
  } else {
    for (g = 0; g < groups; ++g) {
      const __m512i w0 =
          _mm512_loadu_si512((const void *)(weights + (size_t)g * TFQP_X86_GROUP_BYTES));
      for (r = 0; r < TFQP_AVX512_ROWS; ++r) {
        a[r][0] = _mm512_dpbusd_epi32(a[r][0], _mm512_set1_epi32(load_u32(rows[r] + 4 * g)), w0);
      }
    }
  }
  for (r = 0; r < TFQP_AVX512_ROWS; ++r) {
    _mm512_storeu_si512((void *)(acc + (size_t)r * 2 * TFQP_X86_BLOCK), a[r][0]);
    _mm512_storeu_si512((void *)(acc + (size_t)r * 2 * TFQP_X86_BLOCK + TFQP_X86_BLOCK), a[r][1]);
  }
}

/* Channels 0 .. 15 of four tap rows (q bytes) as [channel][4 taps] u bytes. */
TFQP_AVX512 static inline __m512i transpose16x4(const uint8_t *const *taps) {
  const __m128i flip = _mm_set1_epi8((char)0x80);
  const __m128i t0 = _mm_xor_si128(_mm_loadu_si128((const __m128i *)(const void *)taps[0]), flip);
  const __m128i t1 = _mm_xor_si128(_mm_loadu_si128((const __m128i *)(const void *)taps[1]), flip);
  const __m128i t2 = _mm_xor_si128(_mm_loadu_si128((const __m128i *)(const void *)taps[2]), flip);
  const __m128i t3 = _mm_xor_si128(_mm_loadu_si128((const __m128i *)(const void *)taps[3]), flip);
  const __m128i a = _mm_unpacklo_epi8(t0, t1), b = _mm_unpackhi_epi8(t0, t1);
  const __m128i c = _mm_unpacklo_epi8(t2, t3), d = _mm_unpackhi_epi8(t2, t3);
  const __m256i low = _mm256_set_m128i(_mm_unpackhi_epi16(a, c), _mm_unpacklo_epi16(a, c));
  const __m256i high = _mm256_set_m128i(_mm_unpackhi_epi16(b, d), _mm_unpacklo_epi16(b, d));
  return _mm512_inserti64x4(_mm512_castsi256_si512(low), high, 1);
}

TFQP_AVX512 void tfqp_shift_avx512_depthwise(const uint8_t *const *taps, const int8_t *weights,
                                             int32_t groups, int32_t *acc) {
  __m512i sum = _mm512_setzero_si512();
  int32_t g;
  for (g = 0; g < groups; ++g) {
    sum = _mm512_dpbusd_epi32(
        sum, transpose16x4(taps + 4 * g),
        _mm512_loadu_si512((const void *)(weights + (size_t)g * TFQP_X86_GROUP_BYTES)));
  }
  _mm512_storeu_si512((void *)acc, sum);
}

#else
/* ISO C wants a declaration in every translation unit */
typedef int tfqp_shift_avx512_unused;
#endif
