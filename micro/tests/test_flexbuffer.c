/* The custom-options reader on buffers from Python's FlexBuffers encoder, on
 * hand-made buffers, and on truncated / corrupted ones (run under ASan/UBSan:
 * no out-of-bounds read may happen whatever the bytes). */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "flexbuffer_vectors.h"
#include "tfqp/bconv2d.h"
#include "tfqp/bfully_connected.h"
#include "tfqp/bmaxpool2d.h"
#include "tfqp/flexbuffer.h"

static void test_valid_vectors(void) {
  tfqp_bconv2d_options c;
  tfqp_bfully_connected_options f;
  tfqp_bmaxpool2d_options m;
  tfqp_error e;

  CHECK_EQ(tfqp_bconv2d_parse_options(kFlex_bconv2d_int8, sizeof kFlex_bconv2d_int8, &c, &e),
           TFQP_OK);
  CHECK_EQ(c.channels_in, 300);
  CHECK_EQ(c.filter_height, 3);
  CHECK_EQ(c.filter_width, 5);
  CHECK_EQ(c.stride_height, 1);
  CHECK_EQ(c.stride_width, 2);
  CHECK_EQ(c.dilation_height_factor, 2);
  CHECK_EQ(c.dilation_width_factor, 1);
  CHECK_EQ(c.padding, 0);
  CHECK_EQ(c.pad_value, 1);
  CHECK_EQ(c.input_pos, 255);
  CHECK_EQ(c.input_neg, -255);
  CHECK_EQ(c.act_min, -128);
  CHECK_EQ(c.act_max, 127);
  CHECK_EQ(c.present, TFQP_BCONV2D_REQUIRED | TFQP_BCONV2D_INT8_OUTPUT);

  CHECK_EQ(tfqp_bconv2d_parse_options(kFlex_bconv2d_packed, sizeof kFlex_bconv2d_packed, &c, &e),
           TFQP_OK);
  CHECK_EQ(c.channels_in, 64);
  CHECK_EQ(c.padding, 1);
  CHECK_EQ(c.present, TFQP_BCONV2D_REQUIRED);

  CHECK_EQ(tfqp_bconv2d_parse_options(kFlex_bconv2d_wide, sizeof kFlex_bconv2d_wide, &c, &e),
           TFQP_OK);
  CHECK_EQ(c.channels_in, 1 << 20);
  CHECK_EQ(c.filter_width, 3);

  CHECK_EQ(tfqp_bfully_connected_parse_options(kFlex_bfc_int8, sizeof kFlex_bfc_int8, &f, &e),
           TFQP_OK);
  CHECK_EQ(f.channels_in, 1024);
  CHECK_EQ(f.input_pos, 128);
  CHECK_EQ(f.input_neg, -127);
  CHECK_EQ(f.act_min, -128);
  CHECK_EQ(f.act_max, 127);
  CHECK_EQ(f.present, TFQP_BFC_REQUIRED | TFQP_BFC_INT8_OUTPUT);

  CHECK_EQ(tfqp_bmaxpool2d_parse_options(kFlex_bmaxpool2d, sizeof kFlex_bmaxpool2d, &m, &e),
           TFQP_OK);
  CHECK_EQ(m.channels, 96);
  CHECK_EQ(m.filter_height, 2);
  CHECK_EQ(m.stride_width, 2);
  CHECK_EQ(m.padding, 1);

  CHECK_EQ(tfqp_bfully_connected_parse_options(kFlex_bfc_indirect, sizeof kFlex_bfc_indirect, &f,
                                               &e),
           TFQP_OK);
  CHECK_EQ(f.channels_in, 300);
  CHECK_EQ(tfqp_bfully_connected_parse_options(kFlex_bfc_uint, sizeof kFlex_bfc_uint, &f, &e),
           TFQP_OK);
  CHECK_EQ(f.channels_in, 70);
}

static void check_rejected(const uint8_t *buffer, size_t length, tfqp_status expected,
                           const char *name_or_null) {
  tfqp_bfully_connected_options f;
  tfqp_error e;
  memset(&e, 0, sizeof e);
  CHECK_EQ(tfqp_bfully_connected_parse_options(buffer, length, &f, &e), expected);
  CHECK_EQ(e.status, expected);
  CHECK(e.message != NULL);
  if (name_or_null != NULL) CHECK(e.name != NULL && strcmp(e.name, name_or_null) == 0);
}

static void test_rejected_vectors(void) {
  check_rejected(kFlex_bfc_uint_too_big, sizeof kFlex_bfc_uint_too_big, TFQP_ERROR_OPTION_VALUE,
                 "channels_in");
  check_rejected(kFlex_bfc_int64, sizeof kFlex_bfc_int64, TFQP_ERROR_OPTION_VALUE, "channels_in");
  check_rejected(kFlex_bfc_float, sizeof kFlex_bfc_float, TFQP_ERROR_OPTIONS, "channels_in");
  check_rejected(kFlex_bfc_string, sizeof kFlex_bfc_string, TFQP_ERROR_OPTIONS, "channels_in");
  check_rejected(kFlex_bfc_bool, sizeof kFlex_bfc_bool, TFQP_ERROR_OPTIONS, "channels_in");
  check_rejected(kFlex_bfc_duplicate, sizeof kFlex_bfc_duplicate, TFQP_ERROR_OPTIONS,
                 "channels_in");
  check_rejected(kFlex_bfc_unknown_key, sizeof kFlex_bfc_unknown_key, TFQP_ERROR_OPTIONS, NULL);
  check_rejected(kFlex_bfc_missing_key, sizeof kFlex_bfc_missing_key, TFQP_ERROR_OPTIONS,
                 "channels_in");
  check_rejected(kFlex_root_vector, sizeof kFlex_root_vector, TFQP_ERROR_OPTIONS, NULL);
  check_rejected(kFlex_bfc_int8, 0, TFQP_ERROR_OPTIONS, NULL);
  {
    /* the map of another op: keys unknown to this op */
    tfqp_bmaxpool2d_options m;
    tfqp_error e;
    CHECK_EQ(tfqp_bmaxpool2d_parse_options(kFlex_bfc_int8, sizeof kFlex_bfc_int8, &m, &e),
             TFQP_ERROR_OPTIONS);
  }
}

/* A map written by hand from the format description, one-byte widths:
 *   0 'a' 1 'b'  2 key count 1  3 key offset 3 (-> 0)  4 keys offset 1 (-> 3)
 *   5 key width 1  6 size 1  7 value 5  8 type INT/w1 (0x04)  9 root offset 2
 *   (-> 7)  10 root type MAP/w1 (0x24)  11 root width 1.
 * With 'b' the key has no NUL inside the buffer (no byte is 0). */
static void test_hand_made_map(void) {
  uint8_t buffer[12] = {0x61, 0x62, 0x01, 0x03, 0x01, 0x01, 0x01, 0x05, 0x04, 0x02, 0x24, 0x01};
  int32_t value = 0;
  const tfqp_option_field fields[1] = {{"a", &value}};
  uint32_t present = 0;
  tfqp_error e;
  CHECK_EQ(tfqp_flex_read_options(buffer, sizeof buffer, fields, 1, &present, &e),
           TFQP_ERROR_OPTIONS);
  CHECK(strstr(e.message, "NUL") != NULL);
  buffer[1] = 0; /* key "a" */
  CHECK_EQ(tfqp_flex_read_options(buffer, sizeof buffer, fields, 1, &present, &e), TFQP_OK);
  CHECK_EQ(value, 5);
  CHECK_EQ(present, 1);
  buffer[7] = 0xFB; /* INT is signed: -5 */
  CHECK_EQ(tfqp_flex_read_options(buffer, sizeof buffer, fields, 1, &present, &e), TFQP_OK);
  CHECK_EQ(value, -5);
  buffer[8] = 0x08; /* UINT/w1: 251 */
  CHECK_EQ(tfqp_flex_read_options(buffer, sizeof buffer, fields, 1, &present, &e), TFQP_OK);
  CHECK_EQ(value, 251);
}

/* Corrupts one field of the Python-encoded FC map (26 bytes for channels_in 300:
 * key at 0, keys vector count at 12 and offset at 13, map prefix at 14/16/18
 * (two-byte width), value at 20, type at 22, root at 23, root type 24, root
 * width 25) and checks the reader rejects it. */
static void test_corrupted_fields(void) {
  static const uint8_t original[26] = {0x63, 0x68, 0x61, 0x6e, 0x6e, 0x65, 0x6c, 0x73, 0x5f,
                                       0x69, 0x6e, 0x00, 0x01, 0x0d, 0x01, 0x00, 0x01, 0x00,
                                       0x01, 0x00, 0x2c, 0x01, 0x05, 0x03, 0x25, 0x01};
  static const struct {
    int pos;
    uint8_t byte;
    const char *what;
  } corruptions[] = {
      {25, 3, "root width 3"},         {25, 8, "root width 8: offset beyond the buffer"},
      {25, 0, "root width 0"},         {24, 0x05, "root is an int, not a map"},
      {23, 0xFF, "root offset before the buffer start"},
      {23, 23, "map header before the buffer start"},
      {18, 0xFF, "map size larger than the buffer"}, {19, 0x7F, "huge map size"},
      {16, 3, "key width 3"},          {14, 0xFF, "keys offset before the buffer start"},
      {12, 2, "key count differs from value count"},
      {13, 0x0E, "key offset before the buffer start"},
      {22, 0x0D, "value type FLOAT"},  {22, 0x24, "value type MAP"},
      {22, 0x19, "indirect int offset beyond"},
  };
  size_t i;
  uint8_t buffer[26];
  tfqp_bfully_connected_options f;
  tfqp_error e;
  memcpy(buffer, original, sizeof buffer);
  CHECK_EQ(tfqp_bfully_connected_parse_options(buffer, sizeof buffer, &f, &e), TFQP_OK);
  CHECK_EQ(f.channels_in, 300);
  for (i = 0; i < sizeof corruptions / sizeof corruptions[0]; ++i) {
    tfqp_status s;
    memcpy(buffer, original, sizeof buffer);
    buffer[corruptions[i].pos] = corruptions[i].byte;
    s = tfqp_bfully_connected_parse_options(buffer, sizeof buffer, &f, &e);
    if (s == TFQP_OK) fprintf(stderr, "accepted corrupted buffer: %s\n", corruptions[i].what);
    CHECK(s != TFQP_OK);
  }
}

/* Every prefix of every valid buffer is rejected; every single-byte change is
 * either rejected or parsed (never read out of bounds: ASan/UBSan build). */
static void test_truncation_and_byte_flips(void) {
  static const struct {
    const uint8_t *data;
    size_t size;
  } buffers[] = {
      {kFlex_bconv2d_int8, sizeof kFlex_bconv2d_int8},
      {kFlex_bfc_int8, sizeof kFlex_bfc_int8},
      {kFlex_bmaxpool2d, sizeof kFlex_bmaxpool2d},
      {kFlex_bfc_indirect, sizeof kFlex_bfc_indirect},
      {kFlex_bconv2d_wide, sizeof kFlex_bconv2d_wide},
  };
  size_t b, length, pos;
  long accepted_flips = 0, flips = 0;
  for (b = 0; b < sizeof buffers / sizeof buffers[0]; ++b) {
    const size_t size = buffers[b].size;
    /* exactly sized heap copies: AddressSanitizer traps any read past the end */
    uint8_t *buffer = (uint8_t *)malloc(size);
    tfqp_bconv2d_options c;
    tfqp_bfully_connected_options f;
    tfqp_bmaxpool2d_options m;
    tfqp_error e;
    CHECK(buffer != NULL);
    if (buffer == NULL) return;
    for (length = 0; length < size; ++length) {
      uint8_t *prefix = (uint8_t *)malloc(length > 0 ? length : 1);
      CHECK(prefix != NULL);
      if (prefix == NULL) break;
      memcpy(prefix, buffers[b].data, length);
      CHECK(tfqp_bconv2d_parse_options(prefix, length, &c, &e) != TFQP_OK);
      CHECK(tfqp_bfully_connected_parse_options(prefix, length, &f, &e) != TFQP_OK);
      CHECK(tfqp_bmaxpool2d_parse_options(prefix, length, &m, &e) != TFQP_OK);
      free(prefix);
    }
    for (pos = 0; pos < size; ++pos) {
      unsigned v;
      for (v = 0; v < 256; v += 1) {
        tfqp_status s1, s2, s3;
        memcpy(buffer, buffers[b].data, size);
        if (buffer[pos] == (uint8_t)v) continue;
        buffer[pos] = (uint8_t)v;
        s1 = tfqp_bconv2d_parse_options(buffer, size, &c, &e);
        s2 = tfqp_bfully_connected_parse_options(buffer, size, &f, &e);
        s3 = tfqp_bmaxpool2d_parse_options(buffer, size, &m, &e);
        ++flips;
        accepted_flips += (s1 == TFQP_OK || s2 == TFQP_OK || s3 == TFQP_OK);
      }
    }
    free(buffer);
  }
  /* most corruptions are caught; the rest changed a value or a key to another
   * valid one (validated later by prepare) */
  CHECK(flips > 100000);
  CHECK(accepted_flips < flips / 4);
  printf("flexbuffer: %ld single-byte corruptions, %ld parsed as another valid map\n", flips,
         accepted_flips);
}

void test_flexbuffer(void) {
  test_valid_vectors();
  test_rejected_vectors();
  test_hand_made_map();
  test_corrupted_fields();
  test_truncation_and_byte_flips();
}
