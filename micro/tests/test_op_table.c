/* The op table (tfqp/op.h): every row is found by its name, unknown names are
 * rejected, and each row's metadata (arity, constant inputs, roles, option
 * keys) is what the op's contract says. */
#include <string.h>

#include "check.h"
#include "tfqp/op.h"

typedef struct {
  const char *name;
  int32_t min_inputs, max_inputs;
  uint32_t constant_inputs;
  const char *roles[TFQP_OP_MAX_INPUTS];
  int32_t option_count;
  const char *first_key;
} expected_row;

static const expected_row expected_rows[] = {
    {"TFQP_BCONV2D", 3, 4, 0x6u, {"input", "filter", "transform", "residual"}, 14, "channels_in"},
    {"TFQP_BFULLY_CONNECTED", 3, 4, 0x6u, {"input", "weights", "transform", "residual"}, 6,
     "channels_in"},
    {"TFQP_BMAXPOOL2D", 1, 2, 0x2u, {"input", "or_mask"}, 6, "channels"},
    {"TFQP_BINARIZE", 1, 1, 0x0u, {"input"}, 0, NULL},
    {"TFQP_CONV2D_INT8", 3, 4, 0x6u, {"input", "weights", "transform", "residual"}, 13,
     "channels_in"},
    {"TFQP_FULLY_CONNECTED_INT8", 3, 4, 0x6u, {"input", "weights", "transform", "residual"}, 6,
     "channels_in"},
    {"TFQP_MAX_POOL_CODES", 1, 1, 0x0u, {"input"}, 7, "channels"},
    {"TFQP_SHIFT_CONV2D", 4, 4, 0xEu, {"input", "codes", "code_table", "transform"}, 15,
     "filter_height"},
    {"TFQP_SHIFT_DEPTHWISE_CONV2D", 4, 4, 0xEu, {"input", "codes", "code_table", "transform"},
     16, "filter_height"},
    {"TFQP_SHIFT_FULLY_CONNECTED", 4, 5, 0x1Eu,
     {"input", "codes", "code_table", "transform", "code_lists"}, 8, "channels_in"},
    {"TFQP_UNPACK", 1, 1, 0x0u, {"input"}, 4, "channels"},
    {"TFQP_UNPACK_CODES", 1, 1, 0x0u, {"input"}, 3, "channels"},
};

#define EXPECTED_COUNT ((int32_t)(sizeof expected_rows / sizeof expected_rows[0]))

static void test_rows_found_by_name(void) {
  int32_t i, j;
  CHECK_EQ(tfqp_op_count, TFQP_OP_COUNT);
  CHECK_EQ(tfqp_op_count, EXPECTED_COUNT);
  for (i = 0; i < tfqp_op_count; ++i) {
    const tfqp_op *op = tfqp_ops[i];
    char padded[64];
    CHECK(op != NULL);
    CHECK(tfqp_find_op(op->name, strlen(op->name)) == op);
    /* the length bounds the name: trailing bytes are not read */
    memset(padded, 'X', sizeof padded);
    memcpy(padded, op->name, strlen(op->name));
    CHECK(tfqp_find_op(padded, strlen(op->name)) == op);
    CHECK(tfqp_find_op(op->name, strlen(op->name) - 1) == NULL); /* a prefix */
    CHECK(tfqp_find_op(padded, strlen(op->name) + 1) == NULL);   /* a longer name */
    for (j = 0; j < i; ++j) CHECK(strcmp(tfqp_ops[j]->name, op->name) != 0);
  }
  CHECK(tfqp_find_op("", 0) == NULL);
  CHECK(tfqp_find_op(NULL, 0) == NULL);
  CHECK(tfqp_find_op("TFQP_CONV2D", 11) == NULL);
  CHECK(tfqp_find_op("tfqp_bconv2d", 12) == NULL); /* names are case-sensitive */
}

static void test_row_metadata(void) {
  int32_t i, j;
  for (i = 0; i < EXPECTED_COUNT; ++i) {
    const expected_row *x = &expected_rows[i];
    const tfqp_op *op = tfqp_find_op(x->name, strlen(x->name));
    tfqp_error e;
    CHECK(op != NULL);
    if (op == NULL) continue;
    CHECK_EQ(op->min_inputs, x->min_inputs);
    CHECK_EQ(op->max_inputs, x->max_inputs);
    CHECK(op->min_inputs >= 1 && op->max_inputs <= TFQP_OP_MAX_INPUTS);
    CHECK_EQ(op->outputs, 1);
    CHECK_EQ(op->constant_inputs, x->constant_inputs);
    CHECK_EQ(op->constant_inputs & 1u, 0); /* input 0 is never a constant */
    CHECK_EQ(op->constant_inputs >> op->max_inputs, 0);
    for (j = 0; j < op->max_inputs; ++j) CHECK(strcmp(op->input_roles[j], x->roles[j]) == 0);
    CHECK_EQ(op->option_count, x->option_count);
    if (x->first_key != NULL) CHECK(strcmp(op->option_keys[0].key, x->first_key) == 0);
    for (j = 0; j < op->option_count; ++j) {
      CHECK(op->option_keys[j].offset + sizeof(int32_t) <= sizeof(tfqp_op_options));
      CHECK(op->option_keys[j].offset != op->present_offset);
    }
    CHECK(op->parse != NULL && op->output_dims != NULL && op->prepare != NULL &&
          op->eval != NULL);
    /* the op's own member of the params union (op_harness runs every op on a
     * copy of exactly these bytes, as the TFLite Micro adapter keeps them) */
    CHECK(op->params_bytes > 0 && op->params_bytes <= sizeof(tfqp_op_params));
    CHECK_EQ(op->params_bytes % sizeof(int32_t), 0);
    /* arity: every count in [min, max] with one output, nothing else */
    for (j = 0; j <= TFQP_OP_MAX_INPUTS + 1; ++j) {
      const int ok = j >= op->min_inputs && j <= op->max_inputs;
      memset(&e, 0, sizeof e);
      CHECK_EQ(tfqp_op_check_arity(op, j, 1, &e), ok ? TFQP_OK : TFQP_ERROR_ARGUMENT);
      if (!ok) CHECK(strcmp(e.name, "inputs") == 0 && e.value == j);
    }
    CHECK_EQ(tfqp_op_check_arity(op, op->min_inputs, 0, &e), TFQP_ERROR_ARGUMENT);
    CHECK(strcmp(e.name, "outputs") == 0);
    CHECK_EQ(tfqp_op_check_arity(op, op->min_inputs, 2, &e), TFQP_ERROR_ARGUMENT);
  }
  CHECK_EQ(tfqp_op_check_arity(NULL, 1, 1, NULL), TFQP_ERROR_ARGUMENT);
}

/* A FlexBuffers map {key: 7} of one key (keys up to 30 bytes), built by hand:
 * key string, keys vector, map with byte-wide children, root. */
static size_t one_key_map(const char *key, uint8_t *out) {
  const size_t n = strlen(key);
  size_t p = 0;
  size_t key_at, keys_at, values_at;
  key_at = p;
  memcpy(out + p, key, n + 1);
  p += n + 1;
  out[p++] = 1; /* keys vector: count */
  keys_at = p;
  out[p] = (uint8_t)(keys_at - key_at); /* offset back to the key */
  ++p;
  out[p] = (uint8_t)(p - keys_at); /* map: offset back to the keys vector */
  ++p;
  out[p++] = 1;                      /* keys vector byte width */
  out[p++] = 1;                      /* count */
  values_at = p;
  out[p++] = 7;                /* value */
  out[p++] = (uint8_t)(1 << 2); /* FBT_INT, width 1 */
  out[p] = (uint8_t)(p - values_at); /* root: offset back to the map's values */
  ++p;
  out[p++] = (uint8_t)((9 << 2) | 0); /* FBT_MAP, child width 1 */
  out[p++] = 1;                       /* root width */
  return p;
}

/* Every key of every row parses into its own field (present bit i), whatever
 * else the op requires. */
static void test_option_keys_parse_into_their_fields(void) {
  int32_t i, k;
  for (i = 0; i < tfqp_op_count; ++i) {
    const tfqp_op *op = tfqp_ops[i];
    for (k = 0; k < op->option_count; ++k) {
      uint8_t buffer[64];
      const size_t length = one_key_map(op->option_keys[k].key, buffer);
      tfqp_op_options options;
      tfqp_error e;
      const tfqp_status s = op->parse(buffer, length, &options, &e);
      /* OK, or only a missing required key: the key itself was read */
      CHECK(s == TFQP_OK || (s == TFQP_ERROR_OPTIONS &&
                             strcmp(e.message, "required option missing") == 0));
      if (s == TFQP_OK) {
        CHECK_EQ(tfqp_op_options_present(op, &options), 1u << k);
        CHECK_EQ(tfqp_op_option_value(op, &options, k), 7);
      }
    }
  }
}

void test_op_table(void) {
  test_rows_found_by_name();
  test_row_metadata();
  test_option_keys_parse_into_their_fields();
}
