/* A FlexBuffers encoder of what the TFQP ops read (a map of integer options),
 * written from the format description in tfqp/flexbuffer.h and independent of
 * the reader: the fuzz targets build valid option buffers with it and check
 * that the reader gives back what was encoded. */
#ifndef TFQP_FUZZ_FLEX_ENCODE_H_
#define TFQP_FUZZ_FLEX_ENCODE_H_

#include <stddef.h>
#include <stdint.h>

enum { FLEX_ENCODE_INT = 1, FLEX_ENCODE_UINT = 2, FLEX_ENCODE_INDIRECT_INT = 6,
       FLEX_ENCODE_INDIRECT_UINT = 7 };

typedef struct {
  const char *key;
  int64_t value;  /* UINT types: the value as uint64 */
  uint8_t type;   /* FLEX_ENCODE_* */
} flex_entry;

/* Encodes the map {key: value} of `count` entries (in the order given) into
 * out[0 .. capacity); values and offsets take the smallest byte width that
 * holds them, but at least `min_width` (1, 2, 4 or 8). Returns the length, or
 * 0 when it does not fit in `capacity`. */
size_t flex_encode_map(const flex_entry *entries, int32_t count, uint32_t min_width, uint8_t *out,
                       size_t capacity);

#endif /* TFQP_FUZZ_FLEX_ENCODE_H_ */
