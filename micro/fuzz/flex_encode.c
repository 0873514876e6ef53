/* FlexBuffers map encoder (see flex_encode.h). Layout, front to back: the key
 * strings, the keys vector (count, then offsets back to the keys), the
 * indirect values, the map (offset back to the keys vector, key width, count,
 * values, packed types), the root (offset back to the map, its packed type,
 * the root width). */
#include "flex_encode.h"

#include <string.h>

#define FLEX_MAP 9

static uint32_t log2_width(uint32_t width) {
  return width == 1 ? 0 : width == 2 ? 1 : width == 4 ? 2 : 3;
}

/* Smallest of 1, 2, 4, 8 >= min_width holding `value` (unsigned). */
static uint32_t width_for(uint64_t value, uint32_t min_width) {
  uint32_t width = min_width;
  while (width < 8 && (value >> (8 * width)) != 0) width *= 2;
  return width;
}

/* Likewise for a signed value. */
static uint32_t signed_width_for(int64_t value, uint32_t min_width) {
  uint32_t width = min_width;
  while (width < 8) {
    const int64_t limit = (int64_t)1 << (8 * width - 1);
    if (value >= -limit && value < limit) break;
    width *= 2;
  }
  return width;
}

typedef struct {
  uint8_t *out;
  size_t capacity;
  size_t at;
  int overflow;
} writer;

static void put(writer *w, uint64_t value, uint32_t width) {
  uint32_t i;
  if (w->capacity - w->at < width) {
    w->overflow = 1;
    return;
  }
  for (i = 0; i < width; ++i) w->out[w->at++] = (uint8_t)(value >> (8 * i));
}

size_t flex_encode_map(const flex_entry *entries, int32_t count, uint32_t min_width, uint8_t *out,
                       size_t capacity) {
  size_t key_at[32], indirect_at[32];
  size_t keys_vector, map_at;
  uint32_t key_width, width, root_width;
  writer w;
  int32_t i;
  if (count < 0 || count > 32) return 0;
  w.out = out;
  w.capacity = capacity;
  w.at = 0;
  w.overflow = 0;
  for (i = 0; i < count; ++i) {
    const size_t length = strlen(entries[i].key) + 1;
    key_at[i] = w.at;
    if (capacity - w.at < length) return 0;
    memcpy(out + w.at, entries[i].key, length);
    w.at += length;
  }
  /* offsets to the keys are below the keys vector's end */
  key_width = width_for((uint64_t)w.at + 8u * (uint64_t)count + 8u, 1);
  put(&w, (uint64_t)count, key_width);
  keys_vector = w.at;
  for (i = 0; i < count; ++i) put(&w, (uint64_t)(w.at - key_at[i]), key_width);
  for (i = 0; i < count; ++i) {
    indirect_at[i] = w.at;
    if (entries[i].type == FLEX_ENCODE_INDIRECT_INT || entries[i].type == FLEX_ENCODE_INDIRECT_UINT) {
      put(&w, (uint64_t)entries[i].value, 8);
    }
  }
  /* the map's width holds every inline value and every offset back */
  width = width_for((uint64_t)w.at + 64u * (uint64_t)count + 64u, min_width);
  for (i = 0; i < count; ++i) {
    if (entries[i].type == FLEX_ENCODE_INT) {
      const uint32_t needed = signed_width_for(entries[i].value, width);
      if (needed > width) width = needed;
    } else if (entries[i].type == FLEX_ENCODE_UINT) {
      const uint32_t needed = width_for((uint64_t)entries[i].value, width);
      if (needed > width) width = needed;
    }
  }
  put(&w, (uint64_t)(w.at - keys_vector), width);
  put(&w, key_width, width);
  put(&w, (uint64_t)count, width);
  map_at = w.at;
  for (i = 0; i < count; ++i) {
    const flex_entry *e = &entries[i];
    if (e->type == FLEX_ENCODE_INDIRECT_INT || e->type == FLEX_ENCODE_INDIRECT_UINT) {
      put(&w, (uint64_t)(w.at - indirect_at[i]), width);
    } else {
      put(&w, (uint64_t)e->value, width);
    }
  }
  for (i = 0; i < count; ++i) {
    const uint32_t value_width =
        (entries[i].type == FLEX_ENCODE_INDIRECT_INT || entries[i].type == FLEX_ENCODE_INDIRECT_UINT)
            ? 8
            : width;
    put(&w, (uint64_t)((uint32_t)entries[i].type << 2 | log2_width(value_width)), 1);
  }
  root_width = width_for((uint64_t)(w.at - map_at), 1);
  put(&w, (uint64_t)(w.at - map_at), root_width);
  put(&w, (uint64_t)(FLEX_MAP << 2 | log2_width(width)), 1);
  put(&w, root_width, 1);
  return w.overflow ? 0 : w.at;
}
