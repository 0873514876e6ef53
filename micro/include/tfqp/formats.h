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

/* Limits
 *
 * A deployed model is parsed by firmware that must not crash, so validation
 * (tfqp_tensor_check, tfqp_window_options_check and every op's prepare and
 * output_dims) enforces these bounds before any size or index arithmetic.
 * They are far above any layer that fits a microcontroller, and they make
 * every index, size and accumulator of the kernels provably fit its type:
 *
 *   TFQP_MAX_TENSOR_BYTES  2^28  bytes of any tensor (so < 2^28 elements and
 *                                every dim <= 2^28). Microcontrollers have a
 *                                few MiB of SRAM and at most tens of MiB of
 *                                external memory; hosts run batches far below.
 *   TFQP_MAX_CHANNELS      2^24  every channel-count option (channels_in,
 *                                channels; a packed pixel is then <= 2 MiB)
 *   TFQP_MAX_WINDOW        2^15  filter size, stride and dilation factor of a
 *                                sliding window, per axis
 *   TFQP_MAX_BUFFER_BYTES  2^28  the table and the scratch an op asks for, as
 *                                the portable build lays them out (vector
 *                                builds add at most twice the weights and the
 *                                input, still < 2^31 words; the Cortex-M path
 *                                runs only when its padded image fits too)
 *   TFQP_MAX_INIT_WORK     2^27  words init_table may popcount (about 0.3 s on
 *                                a desktop core; realistic layers need < 2^24:
 *                                a 7x7 SAME conv counts its filter 49 times)
 *
 * Why they suffice (in, out: a window axis' input and output sizes; f, s, d:
 * its filter, stride and dilation; all >= 1):
 *   - effective filter e = (f - 1) * d + 1 < 2^30.
 *   - SAME: out = ceil(in / s), so (out - 1) * s < in and the total padding
 *     (out - 1) * s + e - in < e: pad_before < 2^29. VALID: out = (in - e) / s
 *     + 1 needs in >= e, and (out - 1) * s <= in - e.
 *   - so every window start o * s - pad_before (o < out) lies in (-2^29, 2^28),
 *     and -start + d - 1, start + (f - 1) * d and in - 1 - start all lie in
 *     (-2^31, 2^31): tfqp_window_axis_taps computes in int32 without overflow;
 *     a valid tap's position start + k * d is in [0, in).
 *   - element counts < 2^28: N * H * W, pixel and channel offsets fit int32
 *     and size_t (kernels form byte offsets in size_t).
 *   - taps K = KH * KW * Cin <= 2^15 * 2^15 * 2^24 = 2^54 fits int64 when
 *     computed from bounded options; the binary ops then require K < 2^30
 *     (counts x <= K fit uint32 and D = n - 2x fits int32), the int8 ops
 *     K <= 66311 (|A| <= K * 255 * 127 < 2^31).
 *   - accumulators and requantization: init_table bounds every accumulator by
 *     2^31 - 1 from the constant data (per op), and the int8 outputs clamp the
 *     requantized value to [act_min - zp, act_max - zp] before adding the zero
 *     point zp (both in [-128, 127]), so no sum wraps.
 *   - table and scratch < 2^28 bytes, init_table work < 2^27 words: set-up
 *     takes a fraction of a second and fits memory (TFQP_ERROR_TOO_LARGE
 *     otherwise).
 */
#define TFQP_MAX_TENSOR_BYTES ((int64_t)1 << 28)
#define TFQP_MAX_CHANNELS (1 << 24)
#define TFQP_MAX_WINDOW (1 << 15)
#define TFQP_MAX_BUFFER_BYTES ((int64_t)1 << 28)
#define TFQP_MAX_INIT_WORK ((int64_t)1 << 27)

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

/* Live-code lists (optional input 4 of TFQP_SHIFT_FULLY_CONNECTED, one
 * accumulator class; written by the converter, read from flash by the
 * Cortex-M path in batch 1, checked and ignored by every other path)
 *
 * Mirrored in converters/packing.py (pack_code_lists / unpack_code_lists),
 * cross-tested in tests/test_kernels_shift.py.
 *
 * Tensor
 *   INT32 [Cout + 1 + E]: the starts s[0 .. Cout] (s[0] = 0, nondecreasing,
 *   s[Cout] = E), then E entries; channel co's entries are [s[co], s[co + 1]).
 *
 * Entries
 *   One per code of the channel's row whose value in the code table (its one
 *   row) is not 0, in row order (r = k*T + t ascending): bits 0..15 the
 *   value as int16 (two's complement), bits 16..31 the tap k = r / T. So a
 *   channel's entries list its nonzero weights' codes, each with the input it
 *   multiplies: 4 bytes per live code (the codes take b / 8).
 *
 * Limits
 *   K <= TFQP_CODE_LIST_MAX_TAPS (a tap fits 16 bits); E <= Cout * R, so the
 *   tensor stays inside TFQP_MAX_TENSOR_BYTES with the codes. The lists must
 *   agree with the codes exactly: prepare checks the shape, init_table every
 *   start and entry against the codes (TFQP_ERROR_TENSOR_SHAPE / _DATA naming
 *   "code_lists"), before anything reads an entry.
 */
#define TFQP_CODE_LIST_MAX_TAPS (1 << 16)

/* The entry of a code of value `value` (|value| <= 2^14) at tap `tap`. */
static inline uint32_t tfqp_code_list_entry(int32_t tap, int32_t value) {
  return (uint32_t)tap << 16 | ((uint32_t)value & 0xFFFFu);
}

/* Packed k-bit activations (4-bit and 2-bit activation tensors between TFQP
 * ops; the producing op's codes output with option output_bits, a consumer's
 * options input_bits / input_code_zero, TFQP_UNPACK_CODES for builtin ops)
 *
 * Mirrored in converters/packing.py (pack_kbit_activations /
 * unpack_kbit_activations), cross-tested in tests/test_kernels_kbit.py.
 *
 * Codes
 *   An activation is a code u in [0, 2^k), k in {2, 4}; the consumer reads
 *   the value u - input_code_zero (its option), the producer writes the
 *   count of thresholds its accumulator reaches (tfqp/shift_layer.h, codes
 *   output).
 *
 * Words
 *   INT32 tensors read as uint32_t words of P = 32 / k codes (16 or 8):
 *   channel c of a pixel is code c % P of the pixel's word c / P, in bits
 *   [(c % P) * k, (c % P) * k + k). Each pixel's channels start on a word, so
 *   a convolution gathers a pixel with whole words.
 *
 * Padding codes
 *   A pixel of C channels takes TFQP_KBIT_WORDS(C, k) = ceil(C / P) words; the
 *   codes past C in its last word are 0 (producers guarantee it; consumers
 *   never read them as data).
 *
 * Layouts: activations [N, H, W, ceil(C / P)], dense [..., ceil(C / P)].
 * For k dividing 32 this is the coded weights' row layout above with a pixel
 * as the row: the same pack / unpack functions serve both.
 */
#define TFQP_KBIT_VALID(bits) ((bits) == 2 || (bits) == 4)
#define TFQP_KBIT_WORDS(channels, bits) TFQP_CODE_WORDS(channels, bits)

#endif /* TFQP_FORMATS_H_ */
