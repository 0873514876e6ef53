/* Internal: the compute of the shift ops (contract in tfqp/shift_layer.h), in
 * pieces a faster path can replace one at a time.
 *
 *   tfqp_shift_eval     the driver every op's eval calls: output positions in
 *                       blocks of TFQP_SHIFT_PIXEL_BLOCK, each position's
 *                       patch gathered by the op (its geometry) into scratch,
 *                       then tfqp_shift_pixels on the block
 *   tfqp_shift_pixels   all output channels of a block of positions
 *                       (shift_op.c: the portable loop over channels)
 *   tfqp_shift_row_dot  one channel's accumulators on one patch: the row's
 *                       live words, code by code through the code values
 *   tfqp_shift_output   one channel's output from its accumulators
 *
 * A fast path (x86 AVX2, Cortex-M DSP) defines TFQP_SHIFT_PIXEL_BLOCK (more
 * positions per block amortize decoding the codes) and its own
 * tfqp_shift_pixels in its own file, selected at compile time like the binary
 * ops' paths; the gathers, the table and the outputs stay shared, and every
 * path must give the same bytes.
 *
 * Table, as tfqp_shift_layer describes it: values[c * 2^b + code] (int32),
 * then the channel fields, then the live-word bitmap. `transform` is the op's
 * constant transform: the codes output reads its rows there
 * (level_output.h), every other output its fields in the table.
 */
#ifndef TFQP_KERNELS_SHIFT_OP_H_
#define TFQP_KERNELS_SHIFT_OP_H_

#include <stddef.h>
#include <stdint.h>

#include "level_output.h"
#include "tfqp/formats.h"
#include "tfqp/requantize.h"
#include "tfqp/shift_layer.h"

/* Output positions gathered and computed together. */
#ifndef TFQP_SHIFT_PIXEL_BLOCK
#define TFQP_SHIFT_PIXEL_BLOCK 1
#endif

/* Channel fields of the table, in this order, each [Cout]. */
enum { TFQP_SHIFT_D, TFQP_SHIFT_B, TFQP_SHIFT_M0, TFQP_SHIFT_M1, TFQP_SHIFT_S };
#define TFQP_SHIFT_THRESHOLD 1 /* packed output: d, threshold */

/* Writes the patch of output position `pixel` (layer->patch_values values:
 * q - zp_in, 0 for padded taps). `params` is the op's params struct. */
typedef void (*tfqp_shift_gather)(const void *params, const int8_t *input, int32_t pixel,
                                  int16_t *patch);

/* Every output position: output + pixel * output_depth elements (int8 or
 * packed words). scratch: layer->scratch_bytes, 4-byte aligned. */
void tfqp_shift_eval(const tfqp_shift_layer *layer, const int32_t *table,
                     const int32_t *transform, const tfqp_word *codes, const void *params,
                     tfqp_shift_gather gather, const int8_t *input, void *scratch,
                     void *output);

/* All channels of `count` positions (count <= TFQP_SHIFT_PIXEL_BLOCK) whose
 * patches follow each other in `patches`; their outputs follow each other
 * from `output`. */
void tfqp_shift_pixels(const tfqp_shift_layer *layer, const int32_t *table,
                       const int32_t *transform, const tfqp_word *codes,
                       const int16_t *patches, int32_t count, void *output);

/* int32 of the two's complement uint32 u, without implementation-defined
 * conversions. */
static inline int32_t tfqp_shift_int32(uint32_t u) {
  return u <= (uint32_t)INT32_MAX ? (int32_t)u : -(int32_t)(~u) - 1;
}

/* Index of the lowest set bit of x != 0, in portable C (de Bruijn: the lowest
 * bit times 0x077CB531 puts a unique 5-bit pattern in the top bits). */
static inline int32_t tfqp_shift_lowest_bit(uint32_t x) {
  static const uint8_t position[32] = {0,  1,  28, 2,  29, 14, 24, 3,  30, 22, 20,
                                       15, 25, 17, 4,  8,  31, 27, 13, 23, 21, 19,
                                       16, 7,  26, 12, 18, 6,  11, 5,  10, 9};
  return position[((x & (0u - x)) * 0x077CB531u) >> 27];
}

/* The n codes of `word` against x[0 .. n), one class: acc + sum x[j] * v[code_j]. */
static inline uint32_t tfqp_shift_word_dot(uint32_t word, int32_t n, int32_t bits,
                                           const int32_t *v, const int16_t *x, uint32_t acc) {
  const uint32_t mask = TFQP_CODE_MASK(bits);
  int32_t j;
  for (j = 0; j < n; ++j, word >>= bits) acc += (uint32_t)(x[j] * v[word & mask]);
  return acc;
}

/* As tfqp_shift_word_dot for two classes at once. */
static inline void tfqp_shift_word_dot2(uint32_t word, int32_t n, int32_t bits,
                                        const int32_t *v0, const int32_t *v1, const int16_t *x,
                                        uint32_t acc[TFQP_CODE_CLASSES_MAX]) {
  const uint32_t mask = TFQP_CODE_MASK(bits);
  uint32_t a0 = acc[0], a1 = acc[1];
  int32_t j;
  for (j = 0; j < n; ++j, word >>= bits) {
    const uint32_t code = word & mask;
    a0 += (uint32_t)(x[j] * v0[code]);
    a1 += (uint32_t)(x[j] * v1[code]);
  }
  acc[0] = a0;
  acc[1] = a1;
}

/* The n codes of `word` from row code `first` on, T > 1 terms per tap: code r
 * multiplies x[r / T]. */
static inline void tfqp_shift_word_terms(uint32_t word, int32_t n, int32_t first, int32_t terms,
                                         int32_t bits, int32_t classes, const int32_t *v0,
                                         const int32_t *v1, const int16_t *x,
                                         uint32_t acc[TFQP_CODE_CLASSES_MAX]) {
  const uint32_t mask = TFQP_CODE_MASK(bits);
  int32_t j, k = first / terms, t = first % terms;
  for (j = 0; j < n; ++j, word >>= bits) {
    const uint32_t code = word & mask;
    acc[0] += (uint32_t)(x[k] * v0[code]);
    if (classes == 2) acc[1] += (uint32_t)(x[k] * v1[code]);
    if (++t == terms) {
      t = 0;
      ++k;
    }
  }
}

/* acc[c] += sum over the codes r of the row (live words only) of
 * x[r / T] * values[c * 2^b + code_r], modulo 2^32, for c < C. */
static inline void tfqp_shift_row_dot(const tfqp_shift_layer *layer, const tfqp_word *row,
                                      const uint32_t *live, const int32_t *values,
                                      const int16_t *x, uint32_t acc[TFQP_CODE_CLASSES_MAX]) {
  const int32_t bits = layer->bits;
  const int32_t per_word = layer->codes_per_word;
  const int32_t *v1 = values + ((size_t)1 << bits);
  int32_t block;
  for (block = 0; block < layer->live_words; ++block) {
    uint32_t marks = live[block];
    /* only the live words: a dead word costs nothing but its bit */
    for (; marks != 0; marks &= marks - 1u) {
      const int32_t w = block * TFQP_WORD_BITS + tfqp_shift_lowest_bit(marks);
      const int32_t first = w * per_word;
      const int32_t rest = layer->row_codes - first;
      const int32_t n = rest < per_word ? rest : per_word;
      if (layer->terms != 1) {
        tfqp_shift_word_terms(row[w], n, first, layer->terms, bits, layer->classes, values, v1,
                              x, acc);
      } else if (layer->classes == 1) {
        acc[0] = tfqp_shift_word_dot(row[w], n, bits, values, x + first, acc[0]);
      } else {
        tfqp_shift_word_dot2(row[w], n, bits, values, v1, x + first, acc);
      }
    }
  }
}

/* RoundHalfAwayFromZero(x / 2^s), |x| < 2^63, s in [0, 62]. */
static inline int64_t tfqp_shift_round_pot(int64_t x, int32_t s) {
  const uint64_t magnitude = x < 0 ? (uint64_t)0 - (uint64_t)x : (uint64_t)x;
  const uint64_t rounded = s == 0 ? magnitude : (magnitude + ((uint64_t)1 << (s - 1))) >> s;
  return x < 0 ? -(int64_t)rounded : (int64_t)rounded;
}

/* Channel co's output from its accumulators (tfqp/shift_layer.h), into one
 * position's output (int8 values, or packed words zeroed beforehand). */
static inline void tfqp_shift_output(const tfqp_shift_layer *layer, const int32_t *table,
                                     const int32_t *transform, int32_t co,
                                     const uint32_t acc[TFQP_CODE_CLASSES_MAX], void *out) {
  const size_t cout = (size_t)layer->channels_out;
  const int32_t *fields = table + layer->channels_at + (size_t)co;
  const int32_t a0 = tfqp_shift_int32(acc[0]);
  int32_t d, signed_a0;
  int64_t value;
  if (layer->output_levels != 0) {
    d = tfqp_level_direction(transform, layer->output_levels, co);
    signed_a0 = d > 0 ? a0 : -a0; /* |A_0| < 2^31 */
    ((int8_t *)out)[co] = (int8_t)tfqp_level_output(transform, layer->output_levels,
                                                    layer->codes_only, co, signed_a0);
    return;
  }
  d = fields[TFQP_SHIFT_D * cout];
  signed_a0 = d > 0 ? a0 : -a0; /* |A_0| < 2^31 - |B| */
  if (layer->output_packed) {
    ((tfqp_word *)out)[TFQP_WORD_INDEX(co)] |=
        (tfqp_word)(signed_a0 < fields[TFQP_SHIFT_THRESHOLD * cout]) << TFQP_BIT_INDEX(co);
    return;
  }
  {
    const int32_t v = signed_a0 + fields[TFQP_SHIFT_B * cout]; /* init_table's bound */
    const int32_t m0 = fields[TFQP_SHIFT_M0 * cout];
    const int32_t s = fields[TFQP_SHIFT_S * cout];
    if (layer->classes == 1) {
      value = (int64_t)tfqp_multiply_by_quantized_multiplier(v, m0, s);
    } else {
      const int32_t a1 = tfqp_shift_int32(acc[1]);
      const int64_t sum = (int64_t)v * m0 +
                          (int64_t)(d > 0 ? a1 : -a1) * fields[TFQP_SHIFT_M1 * cout];
      value = tfqp_shift_round_pot(sum, s);
    }
  }
  value += layer->output_zero_point;
  if (value < layer->activation_min) value = layer->activation_min;
  if (value > layer->activation_max) value = layer->activation_max;
  ((int8_t *)out)[co] = (int8_t)value;
}

#endif /* TFQP_KERNELS_SHIFT_OP_H_ */
