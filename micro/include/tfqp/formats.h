/* The bit-packed tensor format of the binary TFQP ops and the coded weights of
 * the shift ops (at the end), defined once.
 *
 * Mirrored in converters/packing.py; tests/test_packing.py packs on one side and
 * unpacks on the other.
 *
 * Words
 *   Packed data is stored in 32-bit words (TFLite tensors of type INT32, the
 *   words reinterpreted as uint32_t). MCUs are 32-bit; hosts may read two words
 *   at once, but the layout is always defined in 32-bit words.
 *
 * Bits
 *   Channel c of a pixel lives in word c / 32 of that pixel, bit c % 32, where
 *   bit 0 is the least significant bit. Bit value 1 means -1, bit value 0 means
 *   +1. sign(0) = +1 (larq's convention: x >= 0 -> +1 -> bit 0).
 *   An int8 tensor with zero point zp is binarized as: bit = 1 iff q < zp, i.e.
 *   iff the real value it encodes is negative.
 *
 * Padding bits
 *   A pixel of C channels occupies TFQP_WORDS(C) = ceil(C / 32) words. The bits
 *   of channels >= C in the last word are padding and are 0. Producers guarantee
 *   this; consumers never use padding bits of an input as data (they mask the
 *   last word with TFQP_LAST_WORD_MASK(C)).
 *
 * Layouts (all row-major, last dimension fastest)
 *   activations   [N, H, W, TFQP_WORDS(C)]        (NHWC with C packed)
 *   FC activations [N, TFQP_WORDS(C)]
 *   conv filter   [Cout, KH, KW, TFQP_WORDS(Cin)]  (OHWI, as TFLite conv filters)
 *   FC weights    [Cout, TFQP_WORDS(Cin)]
 */
#ifndef TFQP_FORMATS_H_
#define TFQP_FORMATS_H_

#include <stdint.h>

/* One packed word: 32 channels. */
typedef uint32_t tfqp_word;

#define TFQP_WORD_BITS 32

/* Bit value that encodes -1 (and TFQP_BIT_POSITIVE encodes +1). */
#define TFQP_BIT_NEGATIVE 1u
#define TFQP_BIT_POSITIVE 0u

/* Words per pixel for `channels` channels (channels >= 0, no overflow). */
#define TFQP_WORDS(channels) \
  ((channels) / TFQP_WORD_BITS + (((channels) % TFQP_WORD_BITS) != 0))

/* Word index and bit index of channel c inside a pixel. */
#define TFQP_WORD_INDEX(c) ((c) / TFQP_WORD_BITS)
#define TFQP_BIT_INDEX(c) ((c) % TFQP_WORD_BITS)

/* Mask of the data bits of the last word of a pixel of `channels` channels
 * (channels >= 1): all ones when channels is a multiple of 32. */
#define TFQP_LAST_WORD_MASK(channels)            \
  (((channels) % TFQP_WORD_BITS) == 0            \
       ? 0xFFFFFFFFu                             \
       : ((1u << ((channels) % TFQP_WORD_BITS)) - 1u))

/* Coded weights (TFQP_SHIFT_CONV2D, TFQP_SHIFT_DEPTHWISE_CONV2D,
 * TFQP_SHIFT_FULLY_CONNECTED; arithmetic in tfqp/shift_layer.h)
 *
 * Mirrored in converters/packing.py (pack_codes / unpack_codes); the C and
 * Python sides are cross-tested in tests/test_kernels_shift.py.
 *
 * Codes
 *   A weight is T >= 1 codes ("terms") of b bits each, b in 1..5: unsigned
 *   integers in [0, 2^b) that the layer's code table decodes (the converter
 *   chooses what each code means).
 *
 * Words
 *   Codes are stored in 32-bit words (INT32 tensors read as uint32_t). A word
 *   holds P(b) = floor(32 / b) codes (32, 16, 10, 8, 6 for b = 1..5); code j of
 *   a word lives in bits [j*b, j*b + b), bit 0 the least significant. No code
 *   crosses a word; the top 32 - P(b)*b bits of every word are 0.
 *
 * Rows
 *   Every output channel is one row of R = T*K codes, K the channel's taps in
 *   this order: convolution OHWI (ky, kx, ci) with ci fastest, K = KH*KW*Cin;
 *   depthwise (ky, kx), K = KH*KW; fully connected ci, K = Cin. Code t of tap
 *   k is row code k*T + t. A row starts on a word and takes
 *   W_row = ceil(R / P(b)) words; the codes past R in its last word are 0
 *   bits and never read as data. Codes tensor: INT32 [Cout, W_row].
 *
 * Code table
 *   INT16 [C, 2^b], C in {1, 2} accumulator classes, every |entry| <= 2^14:
 *   the integer weight of tap k for class c is
 *   w_c[k] = sum over t of table[c][code(k, t)].
 */
#define TFQP_CODE_BITS_MIN 1
#define TFQP_CODE_BITS_MAX 5
#define TFQP_CODE_CLASSES_MAX 2
#define TFQP_CODE_VALUE_MAX (1 << 14) /* |table entry| <= 2^14 */

/* P(b): codes per word (bits in 1..5). */
#define TFQP_CODES_PER_WORD(bits) (TFQP_WORD_BITS / (bits))

/* The value mask of one code. */
#define TFQP_CODE_MASK(bits) ((1u << (bits)) - 1u)

/* Words of a row of `count` codes (count >= 0, no overflow). */
#define TFQP_CODE_WORDS(count, bits) \
  ((count) / TFQP_CODES_PER_WORD(bits) + (((count) % TFQP_CODES_PER_WORD(bits)) != 0))

/* Code `index` of a row starting at `row` (bits in 1..5). */
static inline uint32_t tfqp_code_at(const tfqp_word *row, int32_t index, int32_t bits) {
  const int32_t per_word = TFQP_CODES_PER_WORD(bits);
  return (row[index / per_word] >> ((index % per_word) * bits)) & TFQP_CODE_MASK(bits);
}

/* The bits of a row's word that hold its first `codes` codes (codes in
 * 1..P(b)); every other bit of the word is padding and 0. */
static inline uint32_t tfqp_code_word_mask(int32_t codes, int32_t bits) {
  const int32_t used = codes * bits;
  return used >= TFQP_WORD_BITS ? 0xFFFFFFFFu : (1u << used) - 1u;
}

#endif /* TFQP_FORMATS_H_ */
