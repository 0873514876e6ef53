/* Bounds-checked FlexBuffers map reader (see tfqp/flexbuffer.h).
 *
 * Every access goes through read_unsigned/read_signed/follow_offset, which
 * check position and width against the buffer length before touching a byte.
 */
#include "tfqp/flexbuffer.h"

#include <string.h>

/* FlexBuffers type codes used here (upper six bits of a packed type). */
enum {
  FLEX_INT = 1,
  FLEX_UINT = 2,
  FLEX_INDIRECT_INT = 6,
  FLEX_INDIRECT_UINT = 7,
  FLEX_MAP = 9
};

static int valid_width(uint64_t width) {
  return width == 1 || width == 2 || width == 4 || width == 8;
}

/* Little-endian unsigned of `width` bytes at `pos`; 0 if out of bounds. */
static int read_unsigned(const uint8_t *buffer, size_t length, size_t pos,
                         uint32_t width, uint64_t *value) {
  uint64_t v = 0;
  uint32_t i;
  if (!valid_width(width) || pos > length || length - pos < width) return 0;
  for (i = width; i > 0; --i) v = (v << 8) | buffer[pos + i - 1];
  *value = v;
  return 1;
}

static int read_signed(const uint8_t *buffer, size_t length, size_t pos,
                       uint32_t width, int64_t *value) {
  uint64_t u;
  if (!read_unsigned(buffer, length, pos, width, &u)) return 0;
  if (width < 8 && (u >> (8 * width - 1)) != 0) {
    u |= ~(uint64_t)0 << (8 * width); /* sign-extend */
  }
  /* two's complement reinterpretation without implementation-defined casts */
  *value = (u >> 63) ? -(int64_t)(~u) - 1 : (int64_t)u;
  return 1;
}

/* The unsigned offset stored at `pos` points backwards from `pos`. */
static int follow_offset(const uint8_t *buffer, size_t length, size_t pos,
                         uint32_t width, size_t *target) {
  uint64_t offset;
  if (!read_unsigned(buffer, length, pos, width, &offset)) return 0;
  if (offset > pos) return 0;
  *target = pos - (size_t)offset;
  return 1;
}

static tfqp_status malformed(tfqp_error *error, const char *message,
                             int64_t value) {
  return tfqp_fail(error, TFQP_ERROR_OPTIONS, message, "custom options", value);
}

tfqp_status tfqp_flex_map_open(const uint8_t *buffer, size_t length,
                               tfqp_flex_map *map, tfqp_error *error) {
  uint32_t root_width;
  uint8_t root_type;
  uint32_t width;
  size_t root_pos;
  size_t map_pos;
  size_t keys_pos;
  uint64_t size = 0;
  uint64_t key_width = 0;
  uint64_t key_count = 0;
  if (buffer == NULL || map == NULL) {
    return tfqp_fail(error, TFQP_ERROR_ARGUMENT, "options buffer missing",
                     "custom options", 0);
  }
  if (length < 3) return malformed(error, "flexbuffer shorter than 3 bytes", (int64_t)length);
  root_width = buffer[length - 1];
  root_type = buffer[length - 2];
  if (!valid_width(root_width)) {
    return malformed(error, "flexbuffer root width not 1, 2, 4 or 8", root_width);
  }
  if ((root_type >> 2) != FLEX_MAP) {
    return malformed(error, "flexbuffer root is not a map", root_type >> 2);
  }
  width = 1u << (root_type & 3u);
  if (length - 2 < root_width) {
    return malformed(error, "flexbuffer truncated before root", (int64_t)length);
  }
  root_pos = length - 2 - root_width;
  if (!follow_offset(buffer, length, root_pos, root_width, &map_pos)) {
    return malformed(error, "flexbuffer root offset out of range", (int64_t)root_pos);
  }
  /* The map's prefix (keys offset, keys width, count) sits before map_pos. */
  if (map_pos < 3u * width) {
    return malformed(error, "flexbuffer map header out of range", (int64_t)map_pos);
  }
  if (!read_unsigned(buffer, length, map_pos - width, width, &size)) {
    return malformed(error, "flexbuffer map size out of range", (int64_t)map_pos);
  }
  /* values (width bytes each) and types (1 byte each) must fit after map_pos */
  if (map_pos > length || size > (length - map_pos) / (width + 1u) ||
      size > UINT32_MAX) {
    return malformed(error, "flexbuffer map larger than the buffer", (int64_t)size);
  }
  if (!read_unsigned(buffer, length, map_pos - 2u * width, width, &key_width) ||
      !valid_width(key_width)) {
    return malformed(error, "flexbuffer map key width not 1, 2, 4 or 8",
                     (int64_t)key_width);
  }
  if (!follow_offset(buffer, length, map_pos - 3u * width, width, &keys_pos)) {
    return malformed(error, "flexbuffer map keys offset out of range",
                     (int64_t)map_pos);
  }
  if (keys_pos < key_width ||
      !read_unsigned(buffer, length, keys_pos - (size_t)key_width,
                     (uint32_t)key_width, &key_count)) {
    return malformed(error, "flexbuffer map keys vector out of range",
                     (int64_t)keys_pos);
  }
  if (key_count != size) {
    return malformed(error, "flexbuffer map has different key and value counts",
                     (int64_t)key_count);
  }
  if (keys_pos > length || size > (length - keys_pos) / key_width) {
    return malformed(error, "flexbuffer map keys vector larger than the buffer",
                     (int64_t)size);
  }
  map->buffer = buffer;
  map->length = length;
  map->values = map_pos;
  map->types = map_pos + (size_t)size * width;
  map->keys = keys_pos;
  map->size = (uint32_t)size;
  map->width = (uint8_t)width;
  map->key_width = (uint8_t)key_width;
  return TFQP_OK;
}

tfqp_status tfqp_flex_map_key(const tfqp_flex_map *map, uint32_t index,
                              const char **key, size_t *key_length,
                              tfqp_error *error) {
  size_t key_pos;
  const uint8_t *end;
  if (index >= map->size) return malformed(error, "flexbuffer map index out of range", index);
  if (!follow_offset(map->buffer, map->length,
                     map->keys + (size_t)index * map->key_width, map->key_width,
                     &key_pos) ||
      key_pos >= map->length) {
    return malformed(error, "flexbuffer key offset out of range", index);
  }
  end = (const uint8_t *)memchr(map->buffer + key_pos, 0, map->length - key_pos);
  if (end == NULL) return malformed(error, "flexbuffer key not NUL-terminated", index);
  *key = (const char *)(map->buffer + key_pos);
  *key_length = (size_t)(end - (map->buffer + key_pos));
  return TFQP_OK;
}

tfqp_status tfqp_flex_map_int32(const tfqp_flex_map *map, uint32_t index,
                                const char *name, int32_t *value,
                                tfqp_error *error) {
  const size_t pos = map->values + (size_t)index * map->width;
  uint8_t packed;
  uint32_t type;
  uint32_t width;
  size_t target;
  int64_t v = 0;
  uint64_t u = 0;
  int ok = 0;
  if (index >= map->size) return malformed(error, "flexbuffer map index out of range", index);
  packed = map->buffer[map->types + index]; /* types range checked in open */
  type = packed >> 2;
  width = 1u << (packed & 3u);
  switch (type) {
    case FLEX_INT:
      ok = read_signed(map->buffer, map->length, pos, map->width, &v);
      break;
    case FLEX_UINT:
      ok = read_unsigned(map->buffer, map->length, pos, map->width, &u);
      v = u > (uint64_t)INT32_MAX ? (int64_t)INT32_MAX + 1 : (int64_t)u;
      break;
    case FLEX_INDIRECT_INT:
      ok = follow_offset(map->buffer, map->length, pos, map->width, &target) &&
           read_signed(map->buffer, map->length, target, width, &v);
      break;
    case FLEX_INDIRECT_UINT:
      ok = follow_offset(map->buffer, map->length, pos, map->width, &target) &&
           read_unsigned(map->buffer, map->length, target, width, &u);
      v = u > (uint64_t)INT32_MAX ? (int64_t)INT32_MAX + 1 : (int64_t)u;
      break;
    default:
      return tfqp_fail(error, TFQP_ERROR_OPTIONS, "option value must be an integer",
                       name, type);
  }
  if (!ok) {
    return tfqp_fail(error, TFQP_ERROR_OPTIONS, "option value out of buffer range",
                     name, (int64_t)pos);
  }
  if (v < INT32_MIN || v > INT32_MAX) {
    return tfqp_fail(error, TFQP_ERROR_OPTION_VALUE,
                     "option value does not fit in int32", name, v);
  }
  *value = (int32_t)v;
  return TFQP_OK;
}

tfqp_status tfqp_flex_read_options(const uint8_t *buffer, size_t length,
                                   const tfqp_option_field *fields,
                                   int32_t count, uint32_t *present,
                                   tfqp_error *error) {
  tfqp_flex_map map;
  tfqp_status status;
  uint32_t i;
  *present = 0;
  status = tfqp_flex_map_open(buffer, length, &map, error);
  if (status != TFQP_OK) return status;
  for (i = 0; i < map.size; ++i) {
    const char *key;
    size_t key_length;
    int32_t f;
    status = tfqp_flex_map_key(&map, i, &key, &key_length, error);
    if (status != TFQP_OK) return status;
    for (f = 0; f < count; ++f) {
      if (strlen(fields[f].key) == key_length &&
          memcmp(fields[f].key, key, key_length) == 0) {
        break;
      }
    }
    if (f == count) {
      return tfqp_fail(error, TFQP_ERROR_OPTIONS,
                       "unknown option key (value = its index in the map)",
                       "custom options", i);
    }
    if (*present & (1u << f)) {
      return tfqp_fail(error, TFQP_ERROR_OPTIONS, "option key given twice",
                       fields[f].key, i);
    }
    status = tfqp_flex_map_int32(&map, i, fields[f].key, fields[f].value, error);
    if (status != TFQP_OK) return status;
    *present |= 1u << f;
  }
  return TFQP_OK;
}

tfqp_status tfqp_flex_read_op_options(const uint8_t *buffer, size_t length,
                                      const tfqp_option_field *fields,
                                      int32_t count, uint32_t required,
                                      uint32_t *present, tfqp_error *error) {
  tfqp_status status;
  int32_t i;
  for (i = 0; i < count; ++i) *fields[i].value = 0;
  status = tfqp_flex_read_options(buffer, length, fields, count, present, error);
  if (status != TFQP_OK) return status;
  for (i = 0; i < count; ++i) {
    if ((required & (1u << i)) && !(*present & (1u << i))) {
      return tfqp_fail(error, TFQP_ERROR_OPTIONS, "required option missing",
                       fields[i].key, 0);
    }
  }
  return TFQP_OK;
}

tfqp_status tfqp_flex_read_option_keys(const uint8_t *buffer, size_t length,
                                       const tfqp_option_key *keys, int32_t count,
                                       uint32_t required, void *options,
                                       uint32_t *present, tfqp_error *error) {
  tfqp_option_field fields[32];
  int32_t i;
  if (count < 0 || count > 32) {
    return tfqp_fail(error, TFQP_ERROR_ARGUMENT, "more than 32 option keys", "options", count);
  }
  for (i = 0; i < count; ++i) {
    fields[i].key = keys[i].key;
    fields[i].value = (int32_t *)(void *)((unsigned char *)options + keys[i].offset);
  }
  return tfqp_flex_read_op_options(buffer, length, fields, count, required, present, error);
}
