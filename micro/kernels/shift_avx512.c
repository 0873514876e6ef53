/* The AVX-512 VNNI kernels of the shift ops' x86 path (interface and layout
 * in shift_x86.h), compiled for that instruction set function by function
 * and called by shift_avx2.c only when CPUID reports AVX-512 F, BW, VL and
 * VNNI (and the OS saves the 512-bit state): one VPDPBUSD multiplies 16 channels
 * by 4 taps of u bytes and adds the four products of each channel to its
 * 32-bit accumulator, exactly (the products' sum fits an int32). */
#include "shift_fast.h"

#if TFQP_HAVE_AVX2 && defined(__GNUC__)

#include <immintrin.h>
#include <string.h>

#include "shift_x86.h"

#define TFQP_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni")))

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
                __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni");
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

/* The n <= 16 bytes of b to out: a whole vector with a plain store (AMD's
 * masked byte stores and VPMOVDB to memory are slow), else a masked one. */
TFQP_AVX512 static inline void store_bytes(int8_t *out, __m128i b, int32_t n, __mmask16 store) {
  if (n == TFQP_X86_BLOCK) {
    _mm_storeu_si128((__m128i *)(void *)out, b);
  } else {
    _mm_mask_storeu_epi8(out, store, b);
  }
}

/* MultiplyByQuantizedMultiplier on 16 lanes, mult in [0, 2^31) (never the
 * saturating case): high = floor((a * mult + 2^30) / 2^31) from the 64-bit
 * products of the even and the odd lanes, then RoundingDivideByPOT. The
 * channel fields are loaded once per 16 channels (requant_lanes), the rows
 * are independent (their latencies overlap); d = -wpn is a lane mask
 * (subtract, else add). */
typedef struct {
  __m512i base, m, m_odd, left, right, mask, half;
  __mmask16 negative;
} requant_lanes;

typedef struct {
  __m512i nudge, one;
  __m256i zero_point, act_min, act_max; /* int16 lanes */
  int full_range;
} requant_constants;

TFQP_AVX512 static inline requant_constants requant_constants_of(const tfqp_x86_requant *q) {
  requant_constants k;
  k.nudge = _mm512_set1_epi64((long long)1 << 30);
  k.one = _mm512_set1_epi32(1);
  k.zero_point = _mm256_set1_epi16((short)q->zero_point);
  k.act_min = _mm256_set1_epi16((short)q->act_min);
  k.act_max = _mm256_set1_epi16((short)q->act_max);
  k.full_range = q->act_min == -128 && q->act_max == 127;
  return k;
}

/* The fields of channels c .. c + 15. */
TFQP_AVX512 static inline requant_lanes requant_lanes_of(const tfqp_x86_requant *q, int32_t c,
                                                         const requant_constants *k) {
  const int32_t *f = q->fields + c;
  requant_lanes l;
  l.base = _mm512_loadu_si512((const void *)f);
  l.negative = _mm512_cmpgt_epi32_mask(_mm512_loadu_si512((const void *)(f + q->stride)),
                                       _mm512_setzero_si512());
  l.m = _mm512_loadu_si512((const void *)(f + 2 * q->stride));
  l.m_odd = _mm512_srli_epi64(l.m, 32);
  l.left = _mm512_loadu_si512((const void *)(f + 3 * q->stride));
  l.right = _mm512_loadu_si512((const void *)(f + 4 * q->stride));
  l.mask = _mm512_sub_epi32(_mm512_sllv_epi32(k->one, l.right), k->one);
  l.half = _mm512_srli_epi32(l.mask, 1);
  return l;
}

/* The 16 int8 outputs of accumulators x. */
TFQP_AVX512 static inline __m128i requantize16(const requant_lanes *l, const requant_constants *k,
                                               __m512i x) {
  const __m512i value =
      _mm512_mask_sub_epi32(_mm512_add_epi32(l->base, x), l->negative, l->base, x);
  const __m512i a = _mm512_sllv_epi32(value, l->left);
  const __m512i even =
      _mm512_srli_epi64(_mm512_add_epi64(_mm512_mul_epi32(a, l->m), k->nudge), 31);
  const __m512i odd = _mm512_slli_epi64(
      _mm512_add_epi64(_mm512_mul_epi32(_mm512_srli_epi64(a, 32), l->m_odd), k->nudge), 1);
  const __m512i high = _mm512_mask_blend_epi32((__mmask16)0xAAAA, even, odd);
  const __m512i threshold = _mm512_add_epi32(l->half, _mm512_srli_epi32(high, 31));
  const __mmask16 up = _mm512_cmpgt_epi32_mask(_mm512_and_si512(high, l->mask), threshold);
  const __m512i shifted = _mm512_srav_epi32(high, l->right);
  /* The contract clamps before adding the zero point (a value near INT32_MIN
   * plus zp must not wrap to +127): saturating to int16 first is that clamp
   * (|zp| <= 128 keeps every int8 output inside int16), then the zero point
   * is a saturating int16 add, and the signed saturation to int8 is the clamp
   * to the full int8 range. */
  __m256i v = _mm256_adds_epi16(
      _mm512_cvtsepi32_epi16(_mm512_mask_add_epi32(shifted, up, shifted, k->one)), k->zero_point);
  if (!k->full_range) v = _mm256_min_epi16(_mm256_max_epi16(v, k->act_min), k->act_max);
  return _mm256_cvtsepi16_epi8(v);
}

TFQP_AVX512 void tfqp_shift_avx512_outputs_int8(const tfqp_x86_requant *q, const int32_t *acc,
                                                size_t acc_stride, int32_t rows, int32_t count,
                                                int8_t *out, size_t out_stride) {
  const requant_constants k = requant_constants_of(q);
  int32_t c, r;
  for (c = 0; c < count; c += TFQP_X86_BLOCK) {
    const requant_lanes l = requant_lanes_of(q, c, &k);
    const int32_t n = count - c < TFQP_X86_BLOCK ? count - c : TFQP_X86_BLOCK;
    const __mmask16 store = (__mmask16)((1u << n) - 1u);
    for (r = 0; r < rows; ++r) {
      const __m512i x = _mm512_loadu_si512((const void *)(acc + (size_t)r * acc_stride + c));
      store_bytes(out + (size_t)r * out_stride + c, requantize16(&l, &k, x), n, store);
    }
  }
}

/* The two-block windows product with the eight windows' pointers and the 16
 * accumulators in registers: a tap's groups are read at windows[r] + index,
 * index running from the tap's offset in steps of 4 bytes (no per-tap
 * pointer set-up). */
#define TFQP_AVX512_DOT2(r)                                             \
  do {                                                                  \
    const __m512i x##r = _mm512_set1_epi32(load_u32(u##r + index));     \
    a##r##0 = _mm512_dpbusd_epi32(a##r##0, x##r, w0);                   \
    a##r##1 = _mm512_dpbusd_epi32(a##r##1, x##r, w1);                   \
  } while (0)
#define TFQP_AVX512_STORE2(r)                                                          \
  do {                                                                                 \
    _mm512_storeu_si512((void *)(acc + (r) * 2 * TFQP_X86_BLOCK), a##r##0);            \
    _mm512_storeu_si512((void *)(acc + (r) * 2 * TFQP_X86_BLOCK + TFQP_X86_BLOCK), a##r##1); \
  } while (0)

#define TFQP_AVX512_OUTPUT2(r)                                                  \
  do {                                                                          \
    if ((r) < count) {                                                          \
      int8_t *const row = out + (r) * out_stride;                               \
      _mm_storeu_si128((__m128i *)(void *)row, requantize16(&l0, &k, a##r##0)); \
      _mm_storeu_si128((__m128i *)(void *)(row + TFQP_X86_BLOCK),               \
                       requantize16(&l1, &k, a##r##1));                         \
    }                                                                           \
  } while (0)

/* acc (q NULL), or the int8 outputs of the first `count` rows of 32
 * channels (q: their requantization) to out + r * out_stride. */
TFQP_AVX512 static inline void windows_two_blocks(const uint8_t *const *windows,
                                                  const size_t *offsets, int32_t taps,
                                                  int32_t tap_groups, const int8_t *weights,
                                                  size_t block_bytes, int32_t *acc,
                                                  const tfqp_x86_requant *q, int32_t count,
                                                  int8_t *out, size_t out_stride) {
  const uint8_t *const u0 = windows[0], *const u1 = windows[1], *const u2 = windows[2];
  const uint8_t *const u3 = windows[3], *const u4 = windows[4], *const u5 = windows[5];
  const uint8_t *const u6 = windows[6], *const u7 = windows[7];
  const size_t tap_bytes = (size_t)tap_groups * TFQP_X86_GROUP;
  const int8_t *w = weights;
  __m512i a00 = _mm512_setzero_si512(), a01 = a00, a10 = a00, a11 = a00, a20 = a00, a21 = a00;
  __m512i a30 = a00, a31 = a00, a40 = a00, a41 = a00, a50 = a00, a51 = a00, a60 = a00;
  __m512i a61 = a00, a70 = a00, a71 = a00;
  int32_t t;
  for (t = 0; t < taps; ++t) {
    const size_t end = offsets[t] + tap_bytes;
    size_t index;
    for (index = offsets[t]; index < end; index += TFQP_X86_GROUP, w += TFQP_X86_GROUP_BYTES) {
      const __m512i w0 = _mm512_loadu_si512((const void *)w);
      const __m512i w1 = _mm512_loadu_si512((const void *)(w + block_bytes));
      TFQP_AVX512_DOT2(0);
      TFQP_AVX512_DOT2(1);
      TFQP_AVX512_DOT2(2);
      TFQP_AVX512_DOT2(3);
      TFQP_AVX512_DOT2(4);
      TFQP_AVX512_DOT2(5);
      TFQP_AVX512_DOT2(6);
      TFQP_AVX512_DOT2(7);
    }
  }
  if (q != NULL) {
    const requant_constants k = requant_constants_of(q);
    const requant_lanes l0 = requant_lanes_of(q, 0, &k);
    const requant_lanes l1 = requant_lanes_of(q, TFQP_X86_BLOCK, &k);
    TFQP_AVX512_OUTPUT2(0);
    TFQP_AVX512_OUTPUT2(1);
    TFQP_AVX512_OUTPUT2(2);
    TFQP_AVX512_OUTPUT2(3);
    TFQP_AVX512_OUTPUT2(4);
    TFQP_AVX512_OUTPUT2(5);
    TFQP_AVX512_OUTPUT2(6);
    TFQP_AVX512_OUTPUT2(7);
    return;
  }
  TFQP_AVX512_STORE2(0);
  TFQP_AVX512_STORE2(1);
  TFQP_AVX512_STORE2(2);
  TFQP_AVX512_STORE2(3);
  TFQP_AVX512_STORE2(4);
  TFQP_AVX512_STORE2(5);
  TFQP_AVX512_STORE2(6);
  TFQP_AVX512_STORE2(7);
}
#undef TFQP_AVX512_DOT2
#undef TFQP_AVX512_STORE2
#undef TFQP_AVX512_OUTPUT2

TFQP_AVX512 void tfqp_shift_avx512_windows_int8(const uint8_t *const *windows,
                                                const size_t *offsets, int32_t taps,
                                                int32_t tap_groups, const int8_t *weights,
                                                size_t block_bytes, const tfqp_x86_requant *q,
                                                int32_t count, int8_t *out, size_t out_stride) {
  windows_two_blocks(windows, offsets, taps, tap_groups, weights, block_bytes, NULL, q, count,
                     out, out_stride);
}

TFQP_AVX512 void tfqp_shift_avx512_windows(const uint8_t *const *windows, const size_t *offsets,
                                           int32_t taps, int32_t tap_groups,
                                           const int8_t *weights, size_t block_bytes,
                                           int32_t blocks, int32_t *acc) {
  __m512i a[TFQP_AVX512_ROWS];
  const int8_t *w = weights;
  int32_t t, g, r;
  if (blocks == 2) {
    windows_two_blocks(windows, offsets, taps, tap_groups, weights, block_bytes, acc, NULL, 0,
                       NULL, 0);
    return;
  }
  for (r = 0; r < TFQP_AVX512_ROWS; ++r) a[r] = _mm512_setzero_si512();
  for (t = 0; t < taps; ++t) {
    const uint8_t *u[TFQP_AVX512_ROWS];
    for (r = 0; r < TFQP_AVX512_ROWS; ++r) u[r] = windows[r] + offsets[t];
    for (g = 0; g < tap_groups; ++g, w += TFQP_X86_GROUP_BYTES) {
      const __m512i w0 = _mm512_loadu_si512((const void *)w);
      for (r = 0; r < TFQP_AVX512_ROWS; ++r) {
        a[r] = _mm512_dpbusd_epi32(a[r], _mm512_set1_epi32(load_u32(u[r] + 4 * g)), w0);
      }
    }
  }
  for (r = 0; r < TFQP_AVX512_ROWS; ++r) {
    _mm512_storeu_si512((void *)(acc + (size_t)r * 2 * TFQP_X86_BLOCK), a[r]);
    _mm512_storeu_si512((void *)(acc + (size_t)r * 2 * TFQP_X86_BLOCK + TFQP_X86_BLOCK),
                        _mm512_setzero_si512());
  }
}


/* sum[j] += group g's four tap rows of 64 channels from `at` (window +
 * o[t] + at, t < 4), interleaved into [channel][4 taps] lanes, times the
 * group's weight vectors w[j]. */
TFQP_AVX512 static inline void depthwise_group(const uint8_t *window, const size_t *o, size_t at,
                                               const __m512i w[4], __m512i sum[4]) {
  const __m512i t0 = _mm512_loadu_si512((const void *)(window + o[0] + at));
  const __m512i t1 = _mm512_loadu_si512((const void *)(window + o[1] + at));
  const __m512i t2 = _mm512_loadu_si512((const void *)(window + o[2] + at));
  const __m512i t3 = _mm512_loadu_si512((const void *)(window + o[3] + at));
  const __m512i a = _mm512_unpacklo_epi8(t0, t1), b = _mm512_unpackhi_epi8(t0, t1);
  const __m512i c = _mm512_unpacklo_epi8(t2, t3), d = _mm512_unpackhi_epi8(t2, t3);
  sum[0] = _mm512_dpbusd_epi32(sum[0], _mm512_unpacklo_epi16(a, c), w[0]);
  sum[1] = _mm512_dpbusd_epi32(sum[1], _mm512_unpackhi_epi16(a, c), w[1]);
  sum[2] = _mm512_dpbusd_epi32(sum[2], _mm512_unpacklo_epi16(b, d), w[2]);
  sum[3] = _mm512_dpbusd_epi32(sum[3], _mm512_unpackhi_epi16(b, d), w[3]);
}

/* The group's four weight vectors (64 bytes each). */
TFQP_AVX512 static inline void depthwise_weights(const int8_t *w, __m512i vectors[4]) {
  int32_t j;
  for (j = 0; j < 4; ++j) vectors[j] = _mm512_loadu_si512((const void *)(w + 64 * j));
}

/* sum[j] lane L holds channels 16L + 4j .. + 3: the lanes transposed back
 * into channel order, 64 accumulators to out. */
TFQP_AVX512 static inline void store_superblock(const __m512i sum[4], int32_t *out) {
  const __m512i low01 = _mm512_shuffle_i32x4(sum[0], sum[1], 0x44);
  const __m512i low23 = _mm512_shuffle_i32x4(sum[2], sum[3], 0x44);
  const __m512i high01 = _mm512_shuffle_i32x4(sum[0], sum[1], 0xEE);
  const __m512i high23 = _mm512_shuffle_i32x4(sum[2], sum[3], 0xEE);
  _mm512_storeu_si512((void *)out, _mm512_shuffle_i32x4(low01, low23, 0x88));
  _mm512_storeu_si512((void *)(out + 16), _mm512_shuffle_i32x4(low01, low23, 0xDD));
  _mm512_storeu_si512((void *)(out + 32), _mm512_shuffle_i32x4(high01, high23, 0x88));
  _mm512_storeu_si512((void *)(out + 48), _mm512_shuffle_i32x4(high01, high23, 0xDD));
}

TFQP_AVX512 void tfqp_shift_avx512_depthwise(const uint8_t *window, const size_t *offsets,
                                             int32_t groups, int32_t units,
                                             const int8_t *weights, size_t block_bytes,
                                             int32_t *acc) {
  const size_t superblock_bytes = 4 * block_bytes;
  int32_t unit, g, j;
  for (unit = 0; unit < units; ++unit) {
    const size_t at = (size_t)unit * 64;
    const int8_t *w = weights + (size_t)unit * superblock_bytes;
    __m512i sum[4];
    for (j = 0; j < 4; ++j) sum[j] = _mm512_setzero_si512();
    for (g = 0; g < groups; ++g, w += 4 * TFQP_X86_GROUP_BYTES) {
      __m512i vectors[4];
      depthwise_weights(w, vectors);
      depthwise_group(window, offsets + 4 * g, at, vectors, sum);
    }
    store_superblock(sum, acc + at);
  }
}

/* Three groups (3x3 windows): per superblock its 12 weight vectors stay in
 * registers for every row. */
TFQP_AVX512 void tfqp_shift_avx512_depthwise3(const uint8_t *const *windows, int32_t rows,
                                              const size_t *offsets, int32_t units,
                                              const int8_t *weights, size_t block_bytes,
                                              int32_t *acc, size_t acc_stride) {
  int32_t unit, g, j, r;
  for (unit = 0; unit < units; ++unit) {
    const size_t at = (size_t)unit * 64;
    const int8_t *w = weights + (size_t)unit * 4 * block_bytes;
    __m512i vectors[3][4];
    for (g = 0; g < 3; ++g) depthwise_weights(w + (size_t)g * 4 * TFQP_X86_GROUP_BYTES, vectors[g]);
    for (r = 0; r < rows; ++r) {
      __m512i sum[4];
      for (j = 0; j < 4; ++j) sum[j] = _mm512_setzero_si512();
      for (g = 0; g < 3; ++g) depthwise_group(windows[r], offsets + 4 * g, at, vectors[g], sum);
      store_superblock(sum, acc + (size_t)r * acc_stride + at);
    }
  }
}

/* Four blocks per pass over the row: four accumulators share each broadcast. */
TFQP_AVX512 void tfqp_shift_avx512_vector(const uint8_t *u, const int8_t *weights,
                                          size_t block_bytes, int32_t blocks, int32_t groups,
                                          int32_t *acc) {
  int32_t block, g, b;
  for (block = 0; block < blocks; block += 4) {
    const int32_t count = blocks - block < 4 ? blocks - block : 4;
    const int8_t *w = weights + (size_t)block * block_bytes;
    __m512i a[4];
    for (b = 0; b < 4; ++b) a[b] = _mm512_setzero_si512();
    if (count == 4) {
      for (g = 0; g < groups; ++g) {
        const __m512i x = _mm512_set1_epi32(load_u32(u + 4 * g));
        const int8_t *wg = w + (size_t)g * TFQP_X86_GROUP_BYTES;
        a[0] = _mm512_dpbusd_epi32(a[0], x, _mm512_loadu_si512((const void *)wg));
        a[1] = _mm512_dpbusd_epi32(a[1], x, _mm512_loadu_si512((const void *)(wg + block_bytes)));
        a[2] = _mm512_dpbusd_epi32(a[2], x,
                                   _mm512_loadu_si512((const void *)(wg + 2 * block_bytes)));
        a[3] = _mm512_dpbusd_epi32(a[3], x,
                                   _mm512_loadu_si512((const void *)(wg + 3 * block_bytes)));
      }
    } else {
      for (g = 0; g < groups; ++g) {
        const __m512i x = _mm512_set1_epi32(load_u32(u + 4 * g));
        const int8_t *wg = w + (size_t)g * TFQP_X86_GROUP_BYTES;
        for (b = 0; b < count; ++b) {
          a[b] = _mm512_dpbusd_epi32(a[b], x,
                                     _mm512_loadu_si512((const void *)(wg + b * block_bytes)));
        }
      }
    }
    for (b = 0; b < count; ++b) {
      _mm512_storeu_si512((void *)(acc + (size_t)(block + b) * TFQP_X86_BLOCK), a[b]);
    }
  }
}

#else
/* ISO C wants a declaration in every translation unit */
typedef int tfqp_shift_avx512_unused;
#endif
