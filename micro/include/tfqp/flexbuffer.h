/* A bounds-checked reader for the custom options of the TFQP ops: a FlexBuffers
 * map whose keys are strings and whose values are integers.
 *
 * FlexBuffers layout used here (https://flatbuffers.dev/flexbuffers/):
 *   - the last byte of the buffer is the root's byte width w (1, 2, 4 or 8), the
 *     byte before it the root's packed type (type << 2 | log2 of the child byte
 *     width), the w bytes before that the root value; for a map that value is
 *     an unsigned offset pointing backwards to the map's first value;
 *   - a map with child width m: at -3m the backward offset to the keys vector,
 *     at -2m the keys vector's byte width k, at -m the element count n, then n
 *     values of m bytes, then n packed-type bytes;
 *   - the keys vector: its count at -k, then n backward offsets (k bytes each)
 *     to NUL-terminated key strings.
 *   Integer values: INT/UINT stored inline in m bytes, INDIRECT_INT/UINT via a
 *   backward offset to a value of the packed type's width.
 *
 * Every read is checked against the buffer: a truncated or corrupted buffer is
 * rejected with TFQP_ERROR_OPTIONS and never causes an out-of-bounds read.
 */
#ifndef TFQP_FLEXBUFFER_H_
#define TFQP_FLEXBUFFER_H_

#include <stddef.h>
#include <stdint.h>

#include "tfqp/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
  const uint8_t *buffer;
  size_t length;
  size_t values;     /* offset of value 0 */
  size_t types;      /* offset of the packed type of value 0 */
  size_t keys;       /* offset of the offset to key 0 */
  uint32_t size;     /* number of entries */
  uint8_t width;     /* byte width of the values */
  uint8_t key_width; /* byte width of the key offsets */
} tfqp_flex_map;

/* Opens the root of `buffer` as a map; checks that the whole map structure
 * (values, types, key offsets) lies inside the buffer. */
tfqp_status tfqp_flex_map_open(const uint8_t *buffer, size_t length,
                               tfqp_flex_map *map, tfqp_error *error);

/* Key of entry `index`: a pointer into the buffer and its length (without the
 * NUL, which is checked to lie inside the buffer). */
tfqp_status tfqp_flex_map_key(const tfqp_flex_map *map, uint32_t index,
                              const char **key, size_t *key_length,
                              tfqp_error *error);

/* Integer value of entry `index`; rejects non-integer types and values outside
 * int32. `name` is used in the error. */
tfqp_status tfqp_flex_map_int32(const tfqp_flex_map *map, uint32_t index,
                                const char *name, int32_t *value,
                                tfqp_error *error);

/* One integer option an op accepts. */
typedef struct {
  const char *key;
  int32_t *value;
} tfqp_option_field;

/* Reads every entry of the options map into the matching field. Rejects
 * unknown keys, duplicate keys and non-integer values. Bit i of *present is
 * set iff fields[i] was given (count <= 32). Fields not given keep their
 * value. */
tfqp_status tfqp_flex_read_options(const uint8_t *buffer, size_t length,
                                   const tfqp_option_field *fields,
                                   int32_t count, uint32_t *present,
                                   tfqp_error *error);

/* An op's parse_options: sets every field to 0, reads the map as
 * tfqp_flex_read_options, then fails with "required option missing" (naming
 * the first missing key) unless every field whose bit is set in `required`
 * was given. */
tfqp_status tfqp_flex_read_op_options(const uint8_t *buffer, size_t length,
                                      const tfqp_option_field *fields,
                                      int32_t count, uint32_t required,
                                      uint32_t *present, tfqp_error *error);

/* One integer option of an op, as the op's options struct holds it: the key
 * and the byte offset of its int32_t field. An op lists its keys once (in the
 * order of its present bits); its parse and the host extension's
 * parse_options both read that list. */
typedef struct {
  const char *key;
  size_t offset;
} tfqp_option_key;

/* tfqp_flex_read_op_options on the int32_t fields at `options` + keys[i].offset
 * (count <= 32). */
tfqp_status tfqp_flex_read_option_keys(const uint8_t *buffer, size_t length,
                                       const tfqp_option_key *keys, int32_t count,
                                       uint32_t required, void *options,
                                       uint32_t *present, tfqp_error *error);

#ifdef __cplusplus
}
#endif

#endif /* TFQP_FLEXBUFFER_H_ */
