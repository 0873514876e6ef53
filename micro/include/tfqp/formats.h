/* The bit-packed tensor format of the binary TFQP ops, defined once.
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

#endif /* TFQP_FORMATS_H_ */
