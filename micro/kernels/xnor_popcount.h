/* Internal: popcount of XORed packed words, the inner loop of the binary ops.
 *
 * The fast paths are selected at compile time and produce the same counts as
 * the portable path (popcount is exact; only the word width read at a time
 * differs):
 *   TFQP_HAVE_POPCOUNT64  x86-64 with POPCNT (-mpopcnt): two packed words are
 *                         read as one 64-bit word.
 *   TFQP_HAVE_AVX2        x86-64 with AVX2: the vector kernels of xnor_avx2.h
 *                         replace these loops, and the int8 packer compares 32
 *                         bytes at once.
 * Define TFQP_PORTABLE to force the portable C99 path (32-bit words, SWAR
 * popcount), which is what MCU builds use.
 */
#ifndef TFQP_KERNELS_XNOR_POPCOUNT_H_
#define TFQP_KERNELS_XNOR_POPCOUNT_H_

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "tfqp/formats.h"

#if !defined(TFQP_PORTABLE) && defined(__x86_64__) && defined(__POPCNT__)
#define TFQP_HAVE_POPCOUNT64 1
#else
#define TFQP_HAVE_POPCOUNT64 0
#endif

#if !defined(TFQP_PORTABLE) && defined(__x86_64__) && defined(__AVX2__)
#define TFQP_HAVE_AVX2 1
#else
#define TFQP_HAVE_AVX2 0
#endif

static inline uint32_t tfqp_popcount32(uint32_t x) {
#if TFQP_HAVE_POPCOUNT64
  return (uint32_t)__builtin_popcount(x);
#else
  x = x - ((x >> 1) & 0x55555555u);
  x = (x & 0x33333333u) + ((x >> 2) & 0x33333333u);
  x = (x + (x >> 4)) & 0x0F0F0F0Fu;
  return (x * 0x01010101u) >> 24;
#endif
}

#if TFQP_HAVE_POPCOUNT64
/* Two consecutive packed words as one 64-bit word (little-endian, so word j
 * is the low half): any alignment, no aliasing issues. */
static inline uint64_t tfqp_load64(const tfqp_word *p) {
  uint64_t v;
  memcpy(&v, p, sizeof v);
  return v;
}

static inline uint32_t tfqp_popcount64(uint64_t x) {
  return (uint32_t)__builtin_popcountll(x);
}
#endif

/* acc += sum_j popcount(a[j] ^ f[j]), j < len. */
static inline uint32_t tfqp_xor_popcount_run1(const tfqp_word *a,
                                              const tfqp_word *f, int32_t len) {
  uint32_t c = 0;
  int32_t j = 0;
#if TFQP_HAVE_POPCOUNT64
  for (; j + 2 <= len; j += 2) c += tfqp_popcount64(tfqp_load64(a + j) ^ tfqp_load64(f + j));
#endif
  for (; j < len; ++j) c += tfqp_popcount32(a[j] ^ f[j]);
  return c;
}

/* acc[k] += sum_j popcount(a[j] ^ f[k * stride + j]), j < len, k < 4:
 * four output channels share every load of the input. */
static inline void tfqp_xor_popcount_run4(const tfqp_word *a, const tfqp_word *f,
                                          size_t stride, int32_t len,
                                          uint32_t acc[4]) {
  const tfqp_word *f0 = f;
  const tfqp_word *f1 = f + stride;
  const tfqp_word *f2 = f + 2 * stride;
  const tfqp_word *f3 = f + 3 * stride;
  uint32_t c0 = 0, c1 = 0, c2 = 0, c3 = 0;
  int32_t j = 0;
#if TFQP_HAVE_POPCOUNT64
  for (; j + 2 <= len; j += 2) {
    const uint64_t x = tfqp_load64(a + j);
    c0 += tfqp_popcount64(x ^ tfqp_load64(f0 + j));
    c1 += tfqp_popcount64(x ^ tfqp_load64(f1 + j));
    c2 += tfqp_popcount64(x ^ tfqp_load64(f2 + j));
    c3 += tfqp_popcount64(x ^ tfqp_load64(f3 + j));
  }
#endif
  for (; j < len; ++j) {
    const uint32_t x = a[j];
    c0 += tfqp_popcount32(x ^ f0[j]);
    c1 += tfqp_popcount32(x ^ f1[j]);
    c2 += tfqp_popcount32(x ^ f2[j]);
    c3 += tfqp_popcount32(x ^ f3[j]);
  }
  acc[0] += c0;
  acc[1] += c1;
  acc[2] += c2;
  acc[3] += c3;
}

#endif /* TFQP_KERNELS_XNOR_POPCOUNT_H_ */
