/* Conversions between int8 activations and the packed format of formats.h, and
 * between codes and the coded-weights format. */
#ifndef TFQP_PACKING_H_
#define TFQP_PACKING_H_

#include <stdint.h>

#include "tfqp/formats.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Packs `pixels` rows of `channels` int8 values (channels >= 1):
 * bit = 1 iff q < zero_point, zero_point in [-128, 127]. Writes pixels * TFQP_WORDS(channels) words,
 * padding bits 0. */
void tfqp_pack_int8(const int8_t *input, int32_t pixels, int32_t channels,
                    int32_t zero_point, tfqp_word *output);

/* Unpacks `pixels` rows of TFQP_WORDS(channels) words into int8 values:
 * bit 0 -> positive, bit 1 -> negative. Padding bits are ignored. */
void tfqp_unpack_int8(const tfqp_word *input, int32_t pixels, int32_t channels,
                      int8_t positive, int8_t negative, int8_t *output);

/* Copies `pixels` rows of TFQP_WORDS(channels) words, clearing the padding
 * bits of each row's last word. */
void tfqp_mask_packed(const tfqp_word *input, int32_t pixels, int32_t channels,
                      tfqp_word *output);

/* Packs `rows` rows of `count` codes (count >= 1, bits in 1..5, every code
 * < 2^bits) into rows of TFQP_CODE_WORDS(count, bits) words (formats.h,
 * "Coded weights"); padding bits 0. */
void tfqp_pack_codes(const uint8_t *codes, int32_t rows, int32_t count, int32_t bits,
                     tfqp_word *output);

/* Unpacks `rows` rows of TFQP_CODE_WORDS(count, bits) words into `count` codes
 * per row (count >= 1, bits in 1..5). Padding bits are ignored. */
void tfqp_unpack_codes(const tfqp_word *words, int32_t rows, int32_t count, int32_t bits,
                       uint8_t *codes);

#ifdef __cplusplus
}
#endif

#endif /* TFQP_PACKING_H_ */
