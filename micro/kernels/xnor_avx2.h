/* Internal: the AVX2 fast path of the binary ops (x86-64 hosts, selected at
 * compile time by TFQP_HAVE_AVX2; identical bytes to the portable path).
 *
 * Bits are counted per byte with a 4-bit lookup (vpshufb). The XOR commutes
 * with splitting bytes into nibbles, (a ^ w) & 0xF = (a & 0xF) ^ (w & 0xF), so
 * both operands are split once, outside the inner loop:
 *   - the filter, in init_table, repacked so that for every block of eight
 *     output channels and every filter word k, the eight channels' low nibbles
 *     of word k form one 256-bit vector and their high nibbles (shifted down)
 *     the next one;
 *   - the input, in eval, into (low nibbles, high nibbles) word pairs.
 * The inner loop then broadcasts the input word's two halves, XORs each with
 * a filter vector and looks both up: six vector operations per 256 binary
 * MACs. Byte counts are summed for up to 31 words (31 * 8 < 256), then widened
 * to one 32-bit count per channel. Up to four blocks share each broadcast.
 *
 * The requantization is TFLite's MultiplyByQuantizedMultiplier on eight lanes:
 * SaturatingRoundingDoublingHighMul(a, m) = floor((a * m + 2^30) / 2^31) for
 * every input but a = m = INT32_MIN (gemmlowp's truncating division with its
 * sign-dependent nudge reduces to this single expression), and
 * RoundingDivideByPOT as in gemmlowp.
 */
#ifndef TFQP_KERNELS_XNOR_AVX2_H_
#define TFQP_KERNELS_XNOR_AVX2_H_

#include "tfqp/binary_op.h"
#include "xnor_popcount.h"

#if TFQP_HAVE_AVX2
#include <immintrin.h>

#define TFQP_AVX2_LANES 8
#define TFQP_AVX2_MAX_PENDING 31 /* words whose byte counts fit in 8 bits */

/* Bit counts of up to TFQP_AVX2_MAX_BLOCKS 8-channel blocks over a stream of
 * input words. `blocks` is a compile-time constant at every call site, so the
 * loops over blocks unroll and the accumulators live in registers. */
#define TFQP_AVX2_MAX_BLOCKS 4
typedef struct {
  __m256i bytes[TFQP_AVX2_MAX_BLOCKS]; /* per-byte counts since the last flush */
  __m256i count[TFQP_AVX2_MAX_BLOCKS]; /* per-channel 32-bit counts */
  int32_t pending;
} tfqp_avx2_counts;

static inline void tfqp_avx2_counts_init(tfqp_avx2_counts *c, int32_t blocks) {
  int32_t b;
  for (b = 0; b < blocks; ++b) c->bytes[b] = c->count[b] = _mm256_setzero_si256();
  c->pending = 0;
}

static inline __m256i tfqp_avx2_widen(__m256i bytes) {
  /* sum the four byte counts of each 32-bit lane */
  const __m256i pairs = _mm256_maddubs_epi16(bytes, _mm256_set1_epi8(1));
  return _mm256_madd_epi16(pairs, _mm256_set1_epi16(1));
}

static inline void tfqp_avx2_counts_flush(tfqp_avx2_counts *c, int32_t blocks) {
  int32_t b;
  for (b = 0; b < blocks; ++b) {
    c->count[b] = _mm256_add_epi32(c->count[b], tfqp_avx2_widen(c->bytes[b]));
    c->bytes[b] = _mm256_setzero_si256();
  }
  c->pending = 0;
}

/* Words of the nibble-split forms: two per packed word. */
#define TFQP_AVX2_SPLIT 2

/* counts += popcount(a[j] ^ f[j]) for j < len, for `blocks` blocks of eight
 * channels. `a` is nibble-split input (two words per input word), `f` the
 * split repacked filter at the run's first word (16 words per j); block b
 * starts block_stride words after block b - 1. */
static inline void tfqp_avx2_counts_run(tfqp_avx2_counts *c, const tfqp_word *a,
                                        const tfqp_word *f, size_t block_stride, int32_t len,
                                        int32_t blocks) {
  const __m256i lut = _mm256_setr_epi8(0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4, 0, 1, 1,
                                       2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4);
  int32_t j = 0;
  while (j < len) {
    int32_t chunk = len - j;
    int32_t t, b;
    if (chunk > TFQP_AVX2_MAX_PENDING - c->pending) chunk = TFQP_AVX2_MAX_PENDING - c->pending;
    for (t = 0; t < chunk; ++t, ++j) {
      const __m256i low = _mm256_set1_epi32((int)a[TFQP_AVX2_SPLIT * j]);
      const __m256i high = _mm256_set1_epi32((int)a[TFQP_AVX2_SPLIT * j + 1]);
      for (b = 0; b < blocks; ++b) {
        const tfqp_word *w = f + b * block_stride + (size_t)2 * TFQP_AVX2_LANES * j;
        const __m256i w_low = _mm256_loadu_si256((const __m256i *)(const void *)w);
        const __m256i w_high =
            _mm256_loadu_si256((const __m256i *)(const void *)(w + TFQP_AVX2_LANES));
        const __m256i bits = _mm256_add_epi8(
            _mm256_shuffle_epi8(lut, _mm256_xor_si256(low, w_low)),
            _mm256_shuffle_epi8(lut, _mm256_xor_si256(high, w_high)));
        c->bytes[b] = _mm256_add_epi8(c->bytes[b], bits);
      }
    }
    c->pending += chunk;
    if (c->pending == TFQP_AVX2_MAX_PENDING) tfqp_avx2_counts_flush(c, blocks);
  }
}

/* As tfqp_avx2_counts_run for a run the caller knows fits in the byte counters
 * (c->pending + len <= TFQP_AVX2_MAX_PENDING): no chunking, no flush. */
static inline void tfqp_avx2_counts_run_short(tfqp_avx2_counts *c, const tfqp_word *a,
                                              const tfqp_word *f, size_t block_stride,
                                              int32_t len, int32_t blocks) {
  const __m256i lut = _mm256_setr_epi8(0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4, 0, 1, 1,
                                       2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4);
  int32_t j, b;
  for (j = 0; j < len; ++j) {
    const __m256i low = _mm256_set1_epi32((int)a[TFQP_AVX2_SPLIT * j]);
    const __m256i high = _mm256_set1_epi32((int)a[TFQP_AVX2_SPLIT * j + 1]);
    for (b = 0; b < blocks; ++b) {
      const tfqp_word *w = f + b * block_stride + (size_t)2 * TFQP_AVX2_LANES * j;
      const __m256i w_low = _mm256_loadu_si256((const __m256i *)(const void *)w);
      const __m256i w_high =
          _mm256_loadu_si256((const __m256i *)(const void *)(w + TFQP_AVX2_LANES));
      c->bytes[b] = _mm256_add_epi8(
          c->bytes[b], _mm256_add_epi8(_mm256_shuffle_epi8(lut, _mm256_xor_si256(low, w_low)),
                                       _mm256_shuffle_epi8(lut, _mm256_xor_si256(high, w_high))));
    }
  }
  c->pending += len;
}

/* Splits `words` packed words into (low nibbles, high nibbles >> 4) pairs. */
static inline void tfqp_avx2_split(const tfqp_word *in, size_t words, tfqp_word *out) {
  size_t i;
  for (i = 0; i < words; ++i) {
    out[TFQP_AVX2_SPLIT * i] = in[i] & 0x0F0F0F0Fu;
    out[TFQP_AVX2_SPLIT * i + 1] = (in[i] >> 4) & 0x0F0F0F0Fu;
  }
}

static inline __m256i tfqp_avx2_load(const int32_t *p) {
  return _mm256_loadu_si256((const __m256i *)(const void *)p);
}

/* clamp(zero_point + MultiplyByQuantizedMultiplier(base - wpn * x, ...)) on
 * eight channels, clamped before the zero point is added (no wrap); the per-channel arrays start at channel co. */
static inline __m256i tfqp_avx2_output_int8(__m256i x, const int32_t *base, const int32_t *wpn,
                                            const int32_t *multiplier, const int32_t *left,
                                            const int32_t *right, __m256i zero_point,
                                            __m256i act_min, __m256i act_max) {
  const __m256i acc = _mm256_sub_epi32(tfqp_avx2_load(base),
                                       _mm256_mullo_epi32(tfqp_avx2_load(wpn), x));
  const __m256i m = tfqp_avx2_load(multiplier);
  const __m256i r = tfqp_avx2_load(right);
  const __m256i a = _mm256_sllv_epi32(acc, tfqp_avx2_load(left));
  const __m256i nudge = _mm256_set1_epi64x((long long)1 << 30);
  const __m256i int32_min = _mm256_set1_epi32(INT32_MIN);
  const __m256i one = _mm256_set1_epi32(1);
  __m256i even = _mm256_add_epi64(_mm256_mul_epi32(a, m), nudge);
  __m256i odd = _mm256_add_epi64(
      _mm256_mul_epi32(_mm256_srli_epi64(a, 32), _mm256_srli_epi64(m, 32)), nudge);
  __m256i high, mask, remainder, threshold, v;
  even = _mm256_srli_epi64(even, 31); /* bits 31..62 into the low half */
  odd = _mm256_slli_epi64(odd, 1);    /* bits 31..62 into the high half */
  high = _mm256_blend_epi32(even, odd, 0xAA);
  high = _mm256_blendv_epi8(
      high, _mm256_set1_epi32(INT32_MAX),
      _mm256_and_si256(_mm256_cmpeq_epi32(a, int32_min), _mm256_cmpeq_epi32(m, int32_min)));
  mask = _mm256_sub_epi32(_mm256_sllv_epi32(one, r), one);
  remainder = _mm256_and_si256(high, mask);
  threshold = _mm256_sub_epi32(_mm256_srli_epi32(mask, 1),
                               _mm256_cmpgt_epi32(_mm256_setzero_si256(), high));
  v = _mm256_sub_epi32(_mm256_srav_epi32(high, r), _mm256_cmpgt_epi32(remainder, threshold));
  /* the clamp before the zero point, as tfqp_binary_output_int8 (no wrap) */
  v = _mm256_min_epi32(_mm256_max_epi32(v, _mm256_sub_epi32(act_min, zero_point)),
                       _mm256_sub_epi32(act_max, zero_point));
  return _mm256_add_epi32(v, zero_point);
}

/* Stores the low byte of each of the first `count` (<= 8) lanes. */
static inline void tfqp_avx2_store_int8(int8_t *out, __m256i v, int32_t count) {
  const __m256i gather = _mm256_setr_epi8(0, 4, 8, 12, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
                                          -1, -1, 0, 4, 8, 12, -1, -1, -1, -1, -1, -1, -1, -1,
                                          -1, -1, -1, -1);
  const __m256i bytes = _mm256_permutevar8x32_epi32(_mm256_shuffle_epi8(v, gather),
                                                    _mm256_setr_epi32(0, 4, 0, 0, 0, 0, 0, 0));
  if (count == TFQP_AVX2_LANES) {
    /* a direct 8-byte store: the variable-length memcpy went through the stack */
    _mm_storel_epi64((__m128i *)(void *)out, _mm256_castsi256_si128(bytes));
  } else {
    const long long packed = _mm_cvtsi128_si64(_mm256_castsi256_si128(bytes));
    memcpy(out, &packed, (size_t)count);
  }
}

/* Output bits (1 iff direction * (dbase - 2x) < threshold) of eight channels. */
static inline uint32_t tfqp_avx2_output_bits(__m256i x, const int32_t *dbase,
                                             const int32_t *direction,
                                             const int32_t *threshold) {
  const __m256i d = _mm256_sub_epi32(tfqp_avx2_load(dbase), _mm256_slli_epi32(x, 1));
  const __m256i signed_d = _mm256_sign_epi32(d, tfqp_avx2_load(direction));
  const __m256i below = _mm256_cmpgt_epi32(tfqp_avx2_load(threshold), signed_d);
  return (uint32_t)_mm256_movemask_ps(_mm256_castsi256_ps(below));
}

/* The outputs of channels [co, co + 8 * blocks) (those < Cout) of
 * output pixel `pixel` (a conv pixel, an fc row) from their counts; table
 * layout as binary_output.h, `base` the pixel's region sums. Packed output
 * ORs the bits into the pixel's output words, which the caller cleared. */
static inline void tfqp_avx2_outputs(const tfqp_avx2_counts *c, int32_t blocks, int32_t co,
                                     const tfqp_binary_io *io, const int32_t *table,
                                     int32_t cpad, const int32_t *base, size_t pixel,
                                     void *output) {
  const int32_t channels_out = io->channels_out;
  int32_t b;
  for (b = 0; b < blocks; ++b) {
    const int32_t first = co + b * TFQP_AVX2_LANES;
    const int32_t count =
        channels_out - first < TFQP_AVX2_LANES ? channels_out - first : TFQP_AVX2_LANES;
    if (count <= 0) break;
    if (io->output_packed) {
      const uint32_t bits =
          tfqp_avx2_output_bits(c->count[b], base + first, table + first, table + cpad + first) &
          ((count == 8) ? 0xFFu : ((1u << count) - 1u));
      ((tfqp_word *)output)[pixel * io->output_words + TFQP_WORD_INDEX(first)] |=
          bits << TFQP_BIT_INDEX(first);
    } else {
      const __m256i v = tfqp_avx2_output_int8(
          c->count[b], base + first, table + first, table + cpad + first,
          table + 2 * cpad + first, table + 3 * cpad + first,
          _mm256_set1_epi32(io->output_zero_point), _mm256_set1_epi32(io->act_min),
          _mm256_set1_epi32(io->act_max));
      tfqp_avx2_store_int8((int8_t *)output + pixel * channels_out + first, v, count);
    }
  }
}

/* Repacks `channels` rows of `words` words (row co at co * words) into split
 * blocks of eight channels: for block B = co / 8, lane L = co % 8 and word k,
 *   out[B * words * 16 + k * 16 + L]     = row co word k & 0x0F0F0F0F
 *   out[B * words * 16 + k * 16 + 8 + L] = (row co word k >> 4) & 0x0F0F0F0F;
 * rows >= channels (up to padded_channels) are zero. */
static inline void tfqp_avx2_repack(const tfqp_word *rows, int32_t channels,
                                    int32_t padded_channels, int32_t words, tfqp_word *out) {
  int32_t co, k;
  for (co = 0; co < padded_channels; ++co) {
    tfqp_word *block =
        out + (size_t)(co / TFQP_AVX2_LANES) * words * TFQP_AVX2_SPLIT * TFQP_AVX2_LANES;
    for (k = 0; k < words; ++k) {
      const tfqp_word word = co < channels ? rows[(size_t)co * words + k] : 0u;
      tfqp_word *lanes = block + (size_t)k * TFQP_AVX2_SPLIT * TFQP_AVX2_LANES;
      lanes[co % TFQP_AVX2_LANES] = word & 0x0F0F0F0Fu;
      lanes[TFQP_AVX2_LANES + co % TFQP_AVX2_LANES] = (word >> 4) & 0x0F0F0F0Fu;
    }
  }
}

#endif /* TFQP_HAVE_AVX2 */

#endif /* TFQP_KERNELS_XNOR_AVX2_H_ */
