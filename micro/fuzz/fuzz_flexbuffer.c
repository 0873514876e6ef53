/* libFuzzer target of the custom-options reader (tfqp/flexbuffer.h) through
 * every op's parse: arbitrary bytes must be rejected with an error or parse;
 * whatever parses must encode (flex_encode.h) and parse back to the same
 * options. The map reader's entry points are also walked on every entry of
 * any buffer that opens as a map. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flex_encode.h"
#include "tfqp/flexbuffer.h"
#include "tfqp/op.h"

static void fail(const char *op, const char *what) {
  fprintf(stderr, "fuzz_flexbuffer %s: %s\n", op, what);
  abort();
}

/* Re-encodes the options `op` parsed and parses them again: same keys given,
 * same values. */
static void round_trip(const tfqp_op *op, const tfqp_op_options *parsed) {
  const uint32_t present = tfqp_op_options_present(op, parsed);
  flex_entry entries[32];
  uint8_t buffer[1024];
  tfqp_op_options again;
  tfqp_error error;
  int32_t count = 0, k;
  size_t length;
  for (k = 0; k < op->option_count; ++k) {
    if (!(present & (1u << k))) continue;
    entries[count].key = op->option_keys[k].key;
    entries[count].value = tfqp_op_option_value(op, parsed, k);
    entries[count].type = 1; /* FLEX_ENCODE_INT */
    ++count;
  }
  if (op->option_count == 0 && count == 0) return;
  length = flex_encode_map(entries, count, 1, buffer, sizeof buffer);
  if (length == 0) fail(op->name, "encoder buffer too small");
  if (op->parse(buffer, length, &again, &error) != TFQP_OK) fail(op->name, "re-encoded options rejected");
  if (tfqp_op_options_present(op, &again) != present) fail(op->name, "present bits differ");
  for (k = 0; k < op->option_count; ++k) {
    if ((present & (1u << k)) &&
        tfqp_op_option_value(op, &again, k) != tfqp_op_option_value(op, parsed, k)) {
      fail(op->name, "a value differs after the round trip");
    }
  }
}

static void walk_map(const uint8_t *data, size_t size) {
  tfqp_flex_map map;
  tfqp_error error;
  uint32_t i;
  if (tfqp_flex_map_open(data, size, &map, &error) != TFQP_OK) return;
  for (i = 0; i < map.size && i < 4096; ++i) {
    const char *key;
    size_t length;
    int32_t value;
    if (tfqp_flex_map_key(&map, i, &key, &length, &error) == TFQP_OK &&
        (key < (const char *)data || key + length >= (const char *)data + size)) {
      fail("map", "key outside the buffer");
    }
    (void)tfqp_flex_map_int32(&map, i, "key", &value, &error);
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  /* an exact-size copy: any read past the end is reported */
  uint8_t *copy = (uint8_t *)malloc(size > 0 ? size : 1);
  int32_t i;
  if (copy == NULL) return 0;
  memcpy(copy, data, size);
  for (i = 0; i < tfqp_op_count; ++i) {
    const tfqp_op *op = tfqp_ops[i];
    tfqp_op_options options;
    tfqp_error error;
    memset(&error, 0, sizeof error);
    if (op->parse(copy, size, &options, &error) == TFQP_OK) {
      const uint32_t present = tfqp_op_options_present(op, &options);
      if (op->option_count < 32 && (present >> op->option_count) != 0) {
        fail(op->name, "present bits beyond the op's keys");
      }
      round_trip(op, &options);
    } else if (error.message == NULL || error.name == NULL) {
      fail(op->name, "rejected without an error message");
    }
  }
  walk_map(copy, size);
  free(copy);
  return 0;
}
