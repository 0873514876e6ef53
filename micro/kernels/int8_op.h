/* Internal: what TFQP_CONV2D_INT8 and TFQP_FULLY_CONNECTED_INT8 share (contracts
 * in tfqp/conv2d_int8.h and tfqp/fully_connected_int8.h): the accumulator bound,
 * the output (packed bits or int32 values) and its per-channel table.
 *
 * Table (int32): packed output: direction[Cout], threshold[Cout]; value output:
 * multiplier[Cout], shift[Cout], bias[Cout] (value_output.h); codes output
 * (output_levels): level_output.h's.
 */
#ifndef TFQP_KERNELS_INT8_OP_H_
#define TFQP_KERNELS_INT8_OP_H_

#include <stddef.h>
#include <stdint.h>

#include "tfqp/formats.h"
#include "tfqp/status.h"
#include "tfqp/tensor.h"
#include "level_output.h"
#include "value_output.h"
#include "xnor_popcount.h" /* TFQP_HAVE_AVX2 */

#if TFQP_HAVE_AVX2
#include <immintrin.h>
#endif

/* |A| <= K * 255 * 127 < 2^31: (q - zp) in [-255, 255], w in [-127, 127]. */
#define TFQP_INT8_OP_MAX_TAPS 66311
#define TFQP_INT8_OP_MAX_PRODUCT (255 * 127)

/* After parse: 0 for the absent optional options, the `count` int32 fields
 * from `first` on whose present bits start at `first_bit` (int32_output,
 * output_levels, output_bits, input_bits, input_code_zero). */
void tfqp_int8_op_defaults(int32_t *first, int32_t count, uint32_t present, int32_t first_bit);

/* Checks the output options: int32_output 0 or 1, output_levels 0 or in
 * [2, 256], not both. */
tfqp_status tfqp_int8_op_check_output_options(int32_t int32_output, int32_t output_levels,
                                              tfqp_error *error);

/* The output's depth: Cout (values, codes) or ceil(Cout / 32) (packed). */
int32_t tfqp_int8_op_output_depth(int32_t int32_output, int32_t output_levels,
                                  int32_t channels_out);

/* The output type the options ask for: int8 for the codes output, else int32. */
tfqp_status tfqp_int8_op_check_output_type(int32_t output_levels, tfqp_type output_type,
                                           tfqp_error *error);

/* Checks the output (int32, rank `rank`, dims outer[0 .. rank-1) then Cout or
 * ceil(Cout / 32); int8 [.., Cout] for the codes output) and the transform
 * ([Cout, 3] values, [Cout, 2] packed, [Cout, 1 + output_levels] codes). The
 * table is the transform's words: TFQP_MAX_TENSOR_BYTES bounds it too. */
tfqp_status tfqp_int8_op_check_output(int32_t int32_output, int32_t output_levels,
                                      const tfqp_tensor *output,
                                      const tfqp_tensor *transform, int32_t rank,
                                      const int32_t *outer, int32_t channels_out,
                                      const char *weights_role, tfqp_error *error);

/* Table bytes for Cout channels: 0 for the codes output, which reads the
 * transform rows themselves (level_output.h). */
size_t tfqp_int8_op_table_bytes(int32_t int32_output, int32_t output_levels,
                                int32_t channels_out);

/* The weights tensor: int8 or int16, rank `rank`, then the op checks its dims;
 * *is_int16 tells which. */
tfqp_status tfqp_int8_op_check_weights(const tfqp_tensor *weights, int32_t rank,
                                       int32_t *is_int16, tfqp_error *error);

/* Checks the weights (int8: in [-127, 127]; int16: sum |w| * 255 < 2^31 over
 * each channel's `taps` weights) and the transform rows, and fills the table
 * (none for the codes output: `table` may then be NULL). `codes_only`: the
 * codes are packed (the bases are validated, not added). */
tfqp_status tfqp_int8_op_init_table(int32_t int32_output, int32_t output_levels,
                                    int32_t codes_only, const void *weights,
                                    int32_t weights_int16, const int32_t *transform,
                                    int32_t channels_out, int32_t taps, int32_t *table,
                                    size_t table_bytes, size_t needed_bytes, tfqp_error *error);

/* sum over n values of (q - zp) * w, exact in int32 when n * 255 * 127 < 2^31
 * (every partial sum is a sum of some of those products). AVX2 builds: 16
 * values at a time in int16 lanes (|q - zp| <= 255), pairs summed by
 * _mm256_madd_epi16 (<= 2 * 255 * 127) into int32 lanes: the same integer. */
static inline int32_t tfqp_int8_dot(const int8_t *q, const int8_t *w, int32_t n, int32_t zp) {
  int32_t acc = 0, i = 0;
#if TFQP_HAVE_AVX2
  if (n >= 16) {
    const __m256i zero_point = _mm256_set1_epi16((short)zp);
    __m256i sum = _mm256_setzero_si256();
    __m128i half;
    for (; i + 16 <= n; i += 16) {
      const __m256i a = _mm256_sub_epi16(
          _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(const void *)(q + i))),
          zero_point);
      const __m256i b =
          _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(const void *)(w + i)));
      sum = _mm256_add_epi32(sum, _mm256_madd_epi16(a, b));
    }
    half = _mm_add_epi32(_mm256_castsi256_si128(sum), _mm256_extracti128_si256(sum, 1));
    half = _mm_add_epi32(half, _mm_shuffle_epi32(half, 0x4E));
    half = _mm_add_epi32(half, _mm_shuffle_epi32(half, 0xB1));
    acc = _mm_cvtsi128_si32(half);
  }
#endif
  for (; i < n; ++i) acc += ((int32_t)q[i] - zp) * (int32_t)w[i];
  return acc;
}

/* As tfqp_int8_dot with int16 weights: exact in int32 when sum |w| * 255 <
 * 2^31 (init_table checks it per channel). AVX2 builds: 16 values at a time,
 * products summed in pairs by _mm256_madd_epi16 (each pair <= 2 * 255 * 32768
 * < 2^31) into int32 lanes: the same integer. */
static inline int32_t tfqp_int16_dot(const int8_t *q, const int16_t *w, int32_t n, int32_t zp) {
  int32_t acc = 0, i = 0;
#if TFQP_HAVE_AVX2
  if (n >= 16) {
    const __m256i zero_point = _mm256_set1_epi16((short)zp);
    __m256i sum = _mm256_setzero_si256();
    __m128i half;
    for (; i + 16 <= n; i += 16) {
      const __m256i a = _mm256_sub_epi16(
          _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(const void *)(q + i))),
          zero_point);
      const __m256i b = _mm256_loadu_si256((const __m256i *)(const void *)(w + i));
      sum = _mm256_add_epi32(sum, _mm256_madd_epi16(a, b));
    }
    half = _mm_add_epi32(_mm256_castsi256_si128(sum), _mm256_extracti128_si256(sum, 1));
    half = _mm_add_epi32(half, _mm_shuffle_epi32(half, 0x4E));
    half = _mm_add_epi32(half, _mm_shuffle_epi32(half, 0xB1));
    acc = _mm_cvtsi128_si32(half);
  }
#endif
  for (; i < n; ++i) acc += ((int32_t)q[i] - zp) * (int32_t)w[i];
  return acc;
}

/* The output row of pixel `pixel` (`depth` elements: int32 values or packed
 * words, int8 codes). */
static inline void *tfqp_int8_op_pixel_output(int32_t int32_output, int32_t output_levels,
                                              void *output, size_t pixel, int32_t depth) {
  (void)int32_output; /* values and packed words are both int32 */
  if (output_levels != 0) return (int8_t *)output + pixel * (size_t)depth;
  return (int32_t *)output + pixel * (size_t)depth;
}

/* Output of channel co for accumulator a into one pixel's output row. */
static inline void tfqp_int8_op_output(int32_t int32_output, int32_t output_levels,
                                       int32_t codes_only, const int32_t *table,
                                       const int32_t *transform, int32_t channels_out,
                                       int32_t co, int32_t a, void *out) {
  if (output_levels != 0) {
    /* the codes output reads its rows from the transform (level_output.h) */
    const int32_t d = tfqp_level_direction(transform, output_levels, co) > 0 ? a : -a;
    ((int8_t *)out)[co] =
        (int8_t)tfqp_level_output(transform, output_levels, codes_only, co, d);
  } else if (int32_output) {
    ((int32_t *)out)[co] = tfqp_value_output(a, table[co], table[channels_out + co],
                                             table[2 * channels_out + co]);
  } else {
    const int32_t d = table[co] > 0 ? a : -a; /* |a| < 2^31 - 1: no overflow */
    ((tfqp_word *)out)[TFQP_WORD_INDEX(co)] |= (tfqp_word)(d < table[channels_out + co])
                                               << TFQP_BIT_INDEX(co);
  }
}

#endif /* TFQP_KERNELS_INT8_OP_H_ */
