/* prepare / init_table reject every inconsistency between options, tensor
 * descriptions and constant data, with the documented status. */
#include <string.h>

#include "check.h"
#include "tfqp/bconv2d.h"
#include "tfqp/bfully_connected.h"
#include "tfqp/bmaxpool2d.h"

static void set(tfqp_tensor *t, tfqp_type type, int32_t rank, int32_t d0, int32_t d1, int32_t d2,
                int32_t d3, int32_t zero_point) {
  const int32_t dims[4] = {d0, d1, d2, d3};
  size_t count = 1;
  int32_t i;
  for (i = 0; i < rank; ++i) count *= (size_t)dims[i];
  tfqp_tensor_init(t, type, rank, dims, count * (type == TFQP_TYPE_INT8 ? 1 : 4), zero_point);
}

/* ---------------------------------------------------------------- bconv2d */

/* A valid TFQP_BCONV2D: int8 [1,5,5,40] or packed [1,5,5,2] in, filter
 * [8,3,3,2], int8 [1,5,5,8] or packed [1,5,5,1] out. */
typedef struct {
  tfqp_bconv2d_options o;
  tfqp_tensor input, filter, transform, output;
} conv_case;

static conv_case conv_valid(int packed_in, int packed_out) {
  conv_case c;
  memset(&c, 0, sizeof c);
  c.o.channels_in = 40;
  c.o.filter_height = 3;
  c.o.filter_width = 3;
  c.o.stride_height = 1;
  c.o.stride_width = 1;
  c.o.dilation_height_factor = 1;
  c.o.dilation_width_factor = 1;
  c.o.padding = TFQP_PADDING_SAME;
  c.o.pad_value = 0;
  c.o.input_pos = 1;
  c.o.input_neg = -1;
  c.o.act_min = -128;
  c.o.act_max = 127;
  c.o.present = TFQP_BCONV2D_REQUIRED | TFQP_BCONV2D_INT8_OUTPUT;
  if (packed_in) {
    set(&c.input, TFQP_TYPE_INT32, 4, 1, 5, 5, 2, 0);
  } else {
    set(&c.input, TFQP_TYPE_INT8, 4, 1, 5, 5, 40, -3);
  }
  set(&c.filter, TFQP_TYPE_INT32, 4, 8, 3, 3, 2, 0);
  if (packed_out) {
    set(&c.transform, TFQP_TYPE_INT32, 2, 8, 2, 0, 0, 0);
    set(&c.output, TFQP_TYPE_INT32, 4, 1, 5, 5, 1, 0);
  } else {
    set(&c.transform, TFQP_TYPE_INT32, 2, 8, 4, 0, 0, 0);
    set(&c.output, TFQP_TYPE_INT8, 4, 1, 5, 5, 8, 5);
  }
  return c;
}

static tfqp_status conv_prepare(const conv_case *c, tfqp_bconv2d_params *p) {
  tfqp_error e;
  tfqp_status s;
  memset(&e, 0, sizeof e);
  s = tfqp_bconv2d_prepare(&c->o, &c->input, &c->filter, &c->transform, &c->output, p, &e);
  if (s != TFQP_OK) CHECK(e.status == s && e.message != NULL && e.name != NULL);
  return s;
}

static tfqp_status conv_check(const conv_case *c) {
  tfqp_bconv2d_params p;
  return conv_prepare(c, &p);
}

static void test_conv_prepare(void) {
  conv_case c;
  tfqp_bconv2d_params p;
  int packed_in, packed_out;
  for (packed_in = 0; packed_in < 2; ++packed_in) {
    for (packed_out = 0; packed_out < 2; ++packed_out) {
      c = conv_valid(packed_in, packed_out);
      CHECK_EQ(conv_prepare(&c, &p), TFQP_OK);
      CHECK_EQ(p.rows.out, 5);
      CHECK_EQ(p.rows.pad_before, 1);
      CHECK_EQ(p.row_classes, 3);
      CHECK_EQ(p.col_classes, 3);
      CHECK_EQ(p.taps, 360);
      /* int8 input is packed, packed input (40 channels: padding bits) masked
       * into the scratch (vector builds add their own working copy) */
      CHECK(p.scratch_bytes >= 25 * 2 * 4);
      CHECK_EQ(p.mask_input, packed_in);
      CHECK(p.padded_channels >= 8);
      /* per-channel constants (4 or 2 per channel) and 9 region sums */
      CHECK(p.table_bytes >= (size_t)((packed_out ? 2 : 4) + 9) * p.padded_channels * 4);
    }
  }

#define OPTION_CASE(field, value, status) \
  c = conv_valid(0, 0);                   \
  c.o.field = (value);                    \
  CHECK_EQ(conv_check(&c), status);
  OPTION_CASE(channels_in, 0, TFQP_ERROR_OPTION_VALUE)
  OPTION_CASE(channels_in, -40, TFQP_ERROR_OPTION_VALUE)
  OPTION_CASE(channels_in, 41, TFQP_ERROR_TENSOR_SHAPE)
  OPTION_CASE(channels_in, 1 << 27, TFQP_ERROR_OPTION_VALUE) /* 9 * 2^27 taps >= 2^30 */
  OPTION_CASE(filter_height, 0, TFQP_ERROR_OPTION_VALUE)
  OPTION_CASE(filter_width, 2, TFQP_ERROR_TENSOR_SHAPE)
  OPTION_CASE(stride_height, 0, TFQP_ERROR_OPTION_VALUE)
  OPTION_CASE(stride_width, -1, TFQP_ERROR_OPTION_VALUE)
  OPTION_CASE(stride_width, 2, TFQP_ERROR_TENSOR_SHAPE) /* output width 3, not 5 */
  OPTION_CASE(dilation_height_factor, 0, TFQP_ERROR_OPTION_VALUE)
  OPTION_CASE(dilation_width_factor, INT32_MIN, TFQP_ERROR_OPTION_VALUE)
  OPTION_CASE(dilation_width_factor, INT32_MAX, TFQP_ERROR_OPTION_VALUE) /* dilated size */
  OPTION_CASE(padding, 2, TFQP_ERROR_OPTION_VALUE)
  OPTION_CASE(padding, TFQP_PADDING_VALID, TFQP_ERROR_TENSOR_SHAPE) /* output 3x3 */
  OPTION_CASE(pad_value, 2, TFQP_ERROR_OPTION_VALUE)
  OPTION_CASE(pad_value, -1, TFQP_ERROR_OPTION_VALUE)
  OPTION_CASE(input_pos, 256, TFQP_ERROR_OPTION_VALUE)
  OPTION_CASE(input_neg, -256, TFQP_ERROR_OPTION_VALUE)
  OPTION_CASE(act_min, -129, TFQP_ERROR_OPTION_VALUE)
  OPTION_CASE(act_max, 128, TFQP_ERROR_OPTION_VALUE)
  OPTION_CASE(present, TFQP_BCONV2D_REQUIRED, TFQP_ERROR_OPTIONS) /* int8 out without P, N */
  OPTION_CASE(present, TFQP_BCONV2D_REQUIRED & ~TFQP_BCONV2D_PAD_VALUE, TFQP_ERROR_OPTIONS)
#undef OPTION_CASE
  c = conv_valid(0, 0);
  c.o.act_min = 10;
  c.o.act_max = 9;
  CHECK_EQ(conv_check(&c), TFQP_ERROR_OPTION_VALUE);
  c = conv_valid(0, 1); /* packed output ignores the int8-only options */
  c.o.present = TFQP_BCONV2D_REQUIRED;
  CHECK_EQ(conv_check(&c), TFQP_OK);
  c = conv_valid(0, 0);
  c.o.filter_height = 7; /* VALID with a filter taller than the input */
  c.o.padding = TFQP_PADDING_VALID;
  set(&c.filter, TFQP_TYPE_INT32, 4, 8, 7, 3, 2, 0);
  CHECK_EQ(conv_check(&c), TFQP_ERROR_TENSOR_SHAPE);

#define TENSOR_CASE(packed_in, packed_out, statement, status) \
  c = conv_valid(packed_in, packed_out);                      \
  statement;                                                  \
  CHECK_EQ(conv_check(&c), status);
  /* input */
  TENSOR_CASE(0, 0, c.input.type = TFQP_TYPE_OTHER, TFQP_ERROR_TENSOR_TYPE)
  TENSOR_CASE(0, 0, c.input.rank = 3, TFQP_ERROR_TENSOR_SHAPE)
  TENSOR_CASE(0, 0, c.input.rank = 7, TFQP_ERROR_TENSOR_SHAPE)
  TENSOR_CASE(0, 0, c.input.dims[3] = 39, TFQP_ERROR_TENSOR_BYTES) /* bytes no longer match */
  TENSOR_CASE(0, 0, set(&c.input, TFQP_TYPE_INT8, 4, 1, 5, 5, 39, 0), TFQP_ERROR_TENSOR_SHAPE)
  TENSOR_CASE(0, 0, c.input.bytes -= 1, TFQP_ERROR_TENSOR_BYTES)
  TENSOR_CASE(0, 0, c.input.bytes = 0, TFQP_ERROR_TENSOR_BYTES)
  TENSOR_CASE(0, 0, c.input.dims[0] = 0, TFQP_ERROR_TENSOR_SHAPE)
  TENSOR_CASE(0, 0, c.input.dims[1] = -5, TFQP_ERROR_TENSOR_SHAPE)
  TENSOR_CASE(0, 0, c.input.zero_point = 128, TFQP_ERROR_TENSOR_DATA)
  TENSOR_CASE(1, 0, set(&c.input, TFQP_TYPE_INT32, 4, 1, 5, 5, 40, 0), TFQP_ERROR_TENSOR_SHAPE)
  TENSOR_CASE(1, 0, c.input.bytes = 200 / 4, TFQP_ERROR_TENSOR_BYTES)
  /* element count beyond int32: 65536 x 65536 image */
  TENSOR_CASE(1, 0, (c.input.dims[1] = 65536, c.input.dims[2] = 65536), TFQP_ERROR_TENSOR_SHAPE)
  /* filter */
  TENSOR_CASE(0, 0, c.filter.type = TFQP_TYPE_INT8, TFQP_ERROR_TENSOR_TYPE)
  TENSOR_CASE(0, 0, c.filter.rank = 2, TFQP_ERROR_TENSOR_SHAPE)
  TENSOR_CASE(0, 0, set(&c.filter, TFQP_TYPE_INT32, 4, 8, 2, 3, 2, 0), TFQP_ERROR_TENSOR_SHAPE)
  TENSOR_CASE(0, 0, set(&c.filter, TFQP_TYPE_INT32, 4, 8, 3, 3, 1, 0), TFQP_ERROR_TENSOR_SHAPE)
  TENSOR_CASE(0, 0, set(&c.filter, TFQP_TYPE_INT32, 4, 9, 3, 3, 2, 0), TFQP_ERROR_TENSOR_SHAPE)
  TENSOR_CASE(0, 0, c.filter.bytes += 4, TFQP_ERROR_TENSOR_BYTES)
  /* transform */
  TENSOR_CASE(0, 0, set(&c.transform, TFQP_TYPE_INT32, 2, 8, 2, 0, 0, 0), TFQP_ERROR_TENSOR_SHAPE)
  TENSOR_CASE(0, 1, set(&c.transform, TFQP_TYPE_INT32, 2, 8, 4, 0, 0, 0), TFQP_ERROR_TENSOR_SHAPE)
  TENSOR_CASE(0, 0, set(&c.transform, TFQP_TYPE_INT32, 2, 7, 4, 0, 0, 0), TFQP_ERROR_TENSOR_SHAPE)
  TENSOR_CASE(0, 0, set(&c.transform, TFQP_TYPE_INT32, 1, 32, 0, 0, 0, 0), TFQP_ERROR_TENSOR_SHAPE)
  TENSOR_CASE(0, 0, c.transform.type = TFQP_TYPE_INT8, TFQP_ERROR_TENSOR_TYPE)
  /* output */
  TENSOR_CASE(0, 0, c.output.type = TFQP_TYPE_OTHER, TFQP_ERROR_TENSOR_TYPE)
  TENSOR_CASE(0, 0, set(&c.output, TFQP_TYPE_INT8, 4, 2, 5, 5, 8, 0), TFQP_ERROR_TENSOR_SHAPE)
  TENSOR_CASE(0, 0, set(&c.output, TFQP_TYPE_INT8, 4, 1, 4, 5, 8, 0), TFQP_ERROR_TENSOR_SHAPE)
  TENSOR_CASE(0, 0, set(&c.output, TFQP_TYPE_INT8, 4, 1, 5, 6, 8, 0), TFQP_ERROR_TENSOR_SHAPE)
  TENSOR_CASE(0, 0, set(&c.output, TFQP_TYPE_INT8, 4, 1, 5, 5, 1, 0), TFQP_ERROR_TENSOR_SHAPE)
  TENSOR_CASE(0, 0, set(&c.output, TFQP_TYPE_INT8, 3, 5, 5, 8, 0, 0), TFQP_ERROR_TENSOR_SHAPE)
  TENSOR_CASE(0, 0, c.output.zero_point = -129, TFQP_ERROR_TENSOR_DATA)
  TENSOR_CASE(0, 0, c.output.bytes *= 2, TFQP_ERROR_TENSOR_BYTES)
  TENSOR_CASE(0, 1, set(&c.output, TFQP_TYPE_INT32, 4, 1, 5, 5, 8, 0), TFQP_ERROR_TENSOR_SHAPE)
#undef TENSOR_CASE
  {
    tfqp_error e;
    c = conv_valid(0, 0);
    CHECK_EQ(tfqp_bconv2d_prepare(&c.o, NULL, &c.filter, &c.transform, &c.output, &p, &e),
             TFQP_ERROR_ARGUMENT);
    CHECK_EQ(tfqp_bconv2d_prepare(&c.o, &c.input, &c.filter, NULL, &c.output, &p, &e),
             TFQP_ERROR_ARGUMENT);
  }
}

static void test_conv_output_dims(void) {
  conv_case c = conv_valid(0, 0);
  int32_t dims[4];
  tfqp_error e;
  c.o.stride_height = 2;
  c.o.dilation_width_factor = 2;
  c.o.padding = TFQP_PADDING_VALID;
  CHECK_EQ(tfqp_bconv2d_output_dims(&c.o, &c.input, &c.filter, TFQP_TYPE_INT8, dims, &e), TFQP_OK);
  CHECK_EQ(dims[0], 1);
  CHECK_EQ(dims[1], 2); /* (5 - 3) / 2 + 1 */
  CHECK_EQ(dims[2], 1); /* dilated width 5 */
  CHECK_EQ(dims[3], 8);
  CHECK_EQ(tfqp_bconv2d_output_dims(&c.o, &c.input, &c.filter, TFQP_TYPE_INT32, dims, &e), TFQP_OK);
  CHECK_EQ(dims[3], 1);
  CHECK_EQ(tfqp_bconv2d_output_dims(&c.o, &c.input, &c.filter, TFQP_TYPE_OTHER, dims, &e),
           TFQP_ERROR_TENSOR_TYPE);
}

/* init_table: buffer checks and constant-data validation. */
static void test_conv_init_table(void) {
  static int32_t table[1024];
  static tfqp_word filter[8 * 3 * 3 * 2];
  int32_t transform[8 * 4];
  conv_case c = conv_valid(0, 0);
  tfqp_bconv2d_params p;
  tfqp_error e;
  int32_t i;
  memset(filter, 0, sizeof filter);
  for (i = 0; i < 8; ++i) {
    transform[4 * i + 0] = 127;
    transform[4 * i + 1] = -1000;
    transform[4 * i + 2] = 1 << 30;
    transform[4 * i + 3] = -5;
  }
  CHECK_EQ(conv_prepare(&c, &p), TFQP_OK);
  CHECK(p.table_bytes <= sizeof table);
  CHECK_EQ(tfqp_bconv2d_init_table(&p, filter, transform, table, p.table_bytes, &e), TFQP_OK);
  CHECK_EQ(tfqp_bconv2d_init_table(&p, filter, transform, table, p.table_bytes - 1, &e),
           TFQP_ERROR_BUFFER);
  CHECK_EQ(tfqp_bconv2d_init_table(&p, filter, transform,
                                   (int32_t *)(void *)((char *)table + 2), p.table_bytes, &e),
           TFQP_ERROR_BUFFER);
  CHECK_EQ(tfqp_bconv2d_init_table(&p, NULL, transform, table, p.table_bytes, &e),
           TFQP_ERROR_ARGUMENT);
  /* filter padding bits: channels 40..63 of word 1 */
  filter[5 * 2 + 1] = 1u << 8;
  CHECK_EQ(tfqp_bconv2d_init_table(&p, filter, transform, table, p.table_bytes, &e),
           TFQP_ERROR_TENSOR_DATA);
  filter[5 * 2 + 1] = 0xFFu; /* data bits only */
  CHECK_EQ(tfqp_bconv2d_init_table(&p, filter, transform, table, p.table_bytes, &e), TFQP_OK);
  /* shift range */
  transform[4 * 3 + 3] = 32;
  CHECK_EQ(tfqp_bconv2d_init_table(&p, filter, transform, table, p.table_bytes, &e),
           TFQP_ERROR_TENSOR_DATA);
  transform[4 * 3 + 3] = -32;
  CHECK_EQ(tfqp_bconv2d_init_table(&p, filter, transform, table, p.table_bytes, &e),
           TFQP_ERROR_TENSOR_DATA);
  transform[4 * 3 + 3] = 31;
  CHECK_EQ(tfqp_bconv2d_init_table(&p, filter, transform, table, p.table_bytes, &e), TFQP_OK);
  /* accumulator bound: |W| * max(|P|,|N|) * K + |bias| with K = 360, P = 1 */
  transform[4 * 2 + 0] = (INT32_MAX - 1000) / 360;
  CHECK_EQ(tfqp_bconv2d_init_table(&p, filter, transform, table, p.table_bytes, &e), TFQP_OK);
  transform[4 * 2 + 0] = (INT32_MAX - 1000) / 360 + 1;
  CHECK_EQ(tfqp_bconv2d_init_table(&p, filter, transform, table, p.table_bytes, &e),
           TFQP_ERROR_TENSOR_DATA);
  transform[4 * 2 + 0] = 0;
  transform[4 * 2 + 1] = INT32_MIN; /* |bias| = 2^31 */
  CHECK_EQ(tfqp_bconv2d_init_table(&p, filter, transform, table, p.table_bytes, &e),
           TFQP_ERROR_TENSOR_DATA);
  transform[4 * 2 + 1] = INT32_MIN + 1;
  CHECK_EQ(tfqp_bconv2d_init_table(&p, filter, transform, table, p.table_bytes, &e), TFQP_OK);
  /* packed output: direction must be +-1 */
  {
    int32_t rows[8 * 2];
    c = conv_valid(1, 1);
    CHECK_EQ(conv_prepare(&c, &p), TFQP_OK);
    for (i = 0; i < 8; ++i) {
      rows[2 * i] = (i % 2) ? 1 : -1;
      rows[2 * i + 1] = INT32_MIN + i;
    }
    CHECK_EQ(tfqp_bconv2d_init_table(&p, filter, rows, table, p.table_bytes, &e), TFQP_OK);
    rows[2 * 6] = 0;
    CHECK_EQ(tfqp_bconv2d_init_table(&p, filter, rows, table, p.table_bytes, &e),
             TFQP_ERROR_TENSOR_DATA);
    rows[2 * 6] = 2;
    CHECK_EQ(tfqp_bconv2d_init_table(&p, filter, rows, table, p.table_bytes, &e),
             TFQP_ERROR_TENSOR_DATA);
  }
}

/* ------------------------------------------------------- fully connected */

typedef struct {
  tfqp_bfully_connected_options o;
  tfqp_tensor input, weights, transform, output;
} fc_case;

static fc_case fc_valid(int packed_in, int packed_out) {
  fc_case c;
  memset(&c, 0, sizeof c);
  c.o.channels_in = 100;
  c.o.input_pos = 128;
  c.o.input_neg = -127;
  c.o.act_min = -128;
  c.o.act_max = 127;
  c.o.present = TFQP_BFC_REQUIRED | TFQP_BFC_INT8_OUTPUT;
  if (packed_in) {
    set(&c.input, TFQP_TYPE_INT32, 2, 3, 4, 0, 0, 0);
  } else {
    set(&c.input, TFQP_TYPE_INT8, 2, 3, 100, 0, 0, 1);
  }
  set(&c.weights, TFQP_TYPE_INT32, 2, 10, 4, 0, 0, 0);
  if (packed_out) {
    set(&c.transform, TFQP_TYPE_INT32, 2, 10, 2, 0, 0, 0);
    set(&c.output, TFQP_TYPE_INT32, 2, 3, 1, 0, 0, 0);
  } else {
    set(&c.transform, TFQP_TYPE_INT32, 2, 10, 4, 0, 0, 0);
    set(&c.output, TFQP_TYPE_INT8, 2, 3, 10, 0, 0, 0);
  }
  return c;
}

static tfqp_status fc_check(const fc_case *c) {
  tfqp_bfully_connected_params p;
  tfqp_error e;
  return tfqp_bfully_connected_prepare(&c->o, &c->input, &c->weights, &c->transform, &c->output,
                                       &p, &e);
}

static void test_fc_prepare(void) {
  fc_case c;
  int packed_in, packed_out;
  for (packed_in = 0; packed_in < 2; ++packed_in) {
    for (packed_out = 0; packed_out < 2; ++packed_out) {
      c = fc_valid(packed_in, packed_out);
      CHECK_EQ(fc_check(&c), TFQP_OK);
    }
  }
#define FC_CASE(packed_in, packed_out, statement, status) \
  c = fc_valid(packed_in, packed_out);                    \
  statement;                                              \
  CHECK_EQ(fc_check(&c), status);
  FC_CASE(0, 0, c.o.channels_in = 0, TFQP_ERROR_OPTION_VALUE)
  FC_CASE(0, 0, c.o.channels_in = 1 << 30, TFQP_ERROR_OPTION_VALUE)
  FC_CASE(0, 0, c.o.channels_in = 99, TFQP_ERROR_TENSOR_SHAPE)
  FC_CASE(1, 0, c.o.channels_in = 129, TFQP_ERROR_TENSOR_SHAPE) /* 5 words, input has 4 */
  FC_CASE(1, 0, c.o.channels_in = 97, TFQP_OK)                  /* also 4 words */
  FC_CASE(0, 0, c.o.present = TFQP_BFC_REQUIRED, TFQP_ERROR_OPTIONS)
  FC_CASE(0, 0, c.o.present = 0, TFQP_ERROR_OPTIONS)
  FC_CASE(0, 0, c.o.act_max = -129, TFQP_ERROR_OPTION_VALUE)
  FC_CASE(0, 0, c.o.input_pos = 300, TFQP_ERROR_OPTION_VALUE)
  FC_CASE(0, 0, set(&c.input, TFQP_TYPE_INT8, 4, 3, 1, 1, 100, 0), TFQP_ERROR_TENSOR_SHAPE)
  FC_CASE(0, 0, c.input.type = TFQP_TYPE_OTHER, TFQP_ERROR_TENSOR_TYPE)
  FC_CASE(0, 0, c.input.bytes = 301, TFQP_ERROR_TENSOR_BYTES)
  FC_CASE(0, 0, c.input.zero_point = 1000, TFQP_ERROR_TENSOR_DATA)
  FC_CASE(0, 0, set(&c.weights, TFQP_TYPE_INT32, 2, 10, 3, 0, 0, 0), TFQP_ERROR_TENSOR_SHAPE)
  FC_CASE(0, 0, set(&c.weights, TFQP_TYPE_INT8, 2, 10, 4, 0, 0, 0), TFQP_ERROR_TENSOR_TYPE)
  FC_CASE(0, 0, set(&c.transform, TFQP_TYPE_INT32, 2, 11, 4, 0, 0, 0), TFQP_ERROR_TENSOR_SHAPE)
  FC_CASE(0, 1, set(&c.transform, TFQP_TYPE_INT32, 2, 10, 4, 0, 0, 0), TFQP_ERROR_TENSOR_SHAPE)
  FC_CASE(0, 0, set(&c.output, TFQP_TYPE_INT8, 2, 3, 11, 0, 0, 0), TFQP_ERROR_TENSOR_SHAPE)
  FC_CASE(0, 0, set(&c.output, TFQP_TYPE_INT8, 2, 2, 10, 0, 0, 0), TFQP_ERROR_TENSOR_SHAPE)
  FC_CASE(0, 1, set(&c.output, TFQP_TYPE_INT32, 2, 3, 2, 0, 0, 0), TFQP_ERROR_TENSOR_SHAPE)
#undef FC_CASE
  {
    static int32_t table[512];
    tfqp_word weights[40];
    int32_t transform[40];
    tfqp_bfully_connected_params p;
    tfqp_error e;
    int32_t i;
    c = fc_valid(0, 0);
    memset(weights, 0, sizeof weights);
    for (i = 0; i < 10; ++i) {
      transform[4 * i] = 100;
      transform[4 * i + 1] = 0;
      transform[4 * i + 2] = 1 << 30;
      transform[4 * i + 3] = 0;
    }
    CHECK_EQ(tfqp_bfully_connected_prepare(&c.o, &c.input, &c.weights, &c.transform, &c.output, &p,
                                           &e),
             TFQP_OK);
    CHECK(p.table_bytes <= sizeof table);
    CHECK_EQ(tfqp_bfully_connected_init_table(&p, weights, transform, table, p.table_bytes, &e),
             TFQP_OK);
    weights[4 * 7 + 3] = 1u << 4; /* channel 100 of 100: padding */
    CHECK_EQ(tfqp_bfully_connected_init_table(&p, weights, transform, table, p.table_bytes, &e),
             TFQP_ERROR_TENSOR_DATA);
    weights[4 * 7 + 3] = 0;
    transform[4 * 9] = 2000000; /* 2e6 * 128 * 100 > 2^31 */
    CHECK_EQ(tfqp_bfully_connected_init_table(&p, weights, transform, table, p.table_bytes, &e),
             TFQP_ERROR_TENSOR_DATA);
    CHECK_EQ(tfqp_bfully_connected_init_table(&p, weights, transform, table, 8, &e),
             TFQP_ERROR_BUFFER);
  }
}

/* ------------------------------------------------------------ maxpool */

static void test_maxpool_prepare(void) {
  tfqp_bmaxpool2d_options o;
  tfqp_tensor input, output;
  tfqp_bmaxpool2d_params p;
  tfqp_error e;
  int32_t dims[4];
  memset(&o, 0, sizeof o);
  o.channels = 70;
  o.filter_height = 2;
  o.filter_width = 3;
  o.stride_height = 2;
  o.stride_width = 2;
  o.padding = TFQP_PADDING_SAME;
  o.present = TFQP_BMAXPOOL2D_REQUIRED;
  set(&input, TFQP_TYPE_INT32, 4, 2, 7, 9, 3, 0);
  set(&output, TFQP_TYPE_INT32, 4, 2, 4, 5, 3, 0);
  CHECK_EQ(tfqp_bmaxpool2d_prepare(&o, &input, &output, &p, &e), TFQP_OK);
  CHECK_EQ(tfqp_bmaxpool2d_output_dims(&o, &input, dims, &e), TFQP_OK);
  CHECK_EQ(dims[1], 4);
  CHECK_EQ(dims[2], 5);
  CHECK_EQ(dims[3], 3);
  o.channels = 100; /* 4 words */
  CHECK_EQ(tfqp_bmaxpool2d_prepare(&o, &input, &output, &p, &e), TFQP_ERROR_TENSOR_SHAPE);
  o.channels = 70;
  o.padding = 1;
  CHECK_EQ(tfqp_bmaxpool2d_prepare(&o, &input, &output, &p, &e), TFQP_ERROR_TENSOR_SHAPE);
  o.padding = 5;
  CHECK_EQ(tfqp_bmaxpool2d_prepare(&o, &input, &output, &p, &e), TFQP_ERROR_OPTION_VALUE);
  o.padding = 0;
  o.stride_width = 0;
  CHECK_EQ(tfqp_bmaxpool2d_prepare(&o, &input, &output, &p, &e), TFQP_ERROR_OPTION_VALUE);
  o.stride_width = 2;
  o.present = TFQP_BMAXPOOL2D_REQUIRED & ~TFQP_BMAXPOOL2D_PADDING;
  CHECK_EQ(tfqp_bmaxpool2d_prepare(&o, &input, &output, &p, &e), TFQP_ERROR_OPTIONS);
  o.present = TFQP_BMAXPOOL2D_REQUIRED;
  input.type = TFQP_TYPE_INT8;
  CHECK_EQ(tfqp_bmaxpool2d_prepare(&o, &input, &output, &p, &e), TFQP_ERROR_TENSOR_TYPE);
  set(&input, TFQP_TYPE_INT32, 4, 2, 7, 9, 3, 0);
  set(&output, TFQP_TYPE_INT32, 4, 1, 4, 5, 3, 0);
  CHECK_EQ(tfqp_bmaxpool2d_prepare(&o, &input, &output, &p, &e), TFQP_ERROR_TENSOR_SHAPE);
  set(&output, TFQP_TYPE_INT8, 4, 2, 4, 5, 3, 0);
  CHECK_EQ(tfqp_bmaxpool2d_prepare(&o, &input, &output, &p, &e), TFQP_ERROR_TENSOR_TYPE);
}

/* ------------------------------------------------- quantization (adapters) */

static tfqp_status quantization(int32_t scales, float scale, int32_t zero_points, int zero_point,
                                tfqp_type type, int32_t constant, int32_t *zp_out) {
  const float scale_values[2] = {scale, scale};
  const int zero_point_values[2] = {zero_point, zero_point};
  tfqp_quantization q;
  tfqp_error e;
  tfqp_status s;
  q.scale_count = scales;
  q.scales = scales > 0 ? scale_values : NULL;
  q.zero_point_count = zero_points;
  q.zero_points = zero_points > 0 ? zero_point_values : NULL;
  memset(&e, 0, sizeof e);
  s = tfqp_quantization_check(&q, type, constant, "input", zp_out, &e);
  if (s != TFQP_OK) CHECK(e.status == s && e.message != NULL && strcmp(e.name, "input") == 0);
  return s;
}

static void test_quantization_rules(void) {
  const float inf = 1e38f * 10.0f;
  volatile float zero = 0.0f;
  const float nan = zero / zero;
  int32_t zp = 99;
  /* int8 activations: per tensor, zero point in range, returned */
  CHECK_EQ(quantization(1, 0.02f, 1, -7, TFQP_TYPE_INT8, 0, &zp), TFQP_OK);
  CHECK_EQ(zp, -7);
  CHECK_EQ(quantization(0, 0, 0, 0, TFQP_TYPE_INT8, 0, &zp), TFQP_ERROR_TENSOR_TYPE); /* none */
  CHECK_EQ(quantization(1, 0.02f, 0, 0, TFQP_TYPE_INT8, 0, &zp), TFQP_ERROR_TENSOR_TYPE);
  CHECK_EQ(quantization(2, 0.02f, 2, 0, TFQP_TYPE_INT8, 0, &zp), TFQP_ERROR_TENSOR_TYPE);
  CHECK_EQ(quantization(1, 0.02f, 1, 128, TFQP_TYPE_INT8, 0, &zp), TFQP_ERROR_TENSOR_TYPE);
  CHECK_EQ(quantization(1, -0.02f, 1, 0, TFQP_TYPE_INT8, 0, &zp), TFQP_ERROR_TENSOR_TYPE);
  CHECK_EQ(quantization(1, 0.0f, 1, 0, TFQP_TYPE_INT8, 0, &zp), TFQP_ERROR_TENSOR_TYPE);
  CHECK_EQ(quantization(1, nan, 1, 0, TFQP_TYPE_INT8, 0, &zp), TFQP_ERROR_TENSOR_TYPE);
  CHECK_EQ(quantization(1, inf, 1, 0, TFQP_TYPE_INT8, 0, &zp), TFQP_ERROR_TENSOR_TYPE);
  /* int32 tensors (packed bits, values): quantization optional, sane if given */
  CHECK_EQ(quantization(0, 0, 0, 0, TFQP_TYPE_INT32, 0, &zp), TFQP_OK);
  CHECK_EQ(zp, 0);
  CHECK_EQ(quantization(1, 1.0f, 1, 0, TFQP_TYPE_INT32, 0, &zp), TFQP_OK);
  CHECK_EQ(quantization(1, -1.0f, 1, 0, TFQP_TYPE_INT32, 0, &zp), TFQP_ERROR_TENSOR_TYPE);
  CHECK_EQ(quantization(0, 0, 1, 0, TFQP_TYPE_INT32, 0, &zp), TFQP_ERROR_TENSOR_TYPE);
  CHECK_EQ(quantization(2, 1.0f, 0, 0, TFQP_TYPE_INT32, 1, &zp), TFQP_ERROR_TENSOR_TYPE);
  /* weights: unquantized, or symmetric (one zero point for all scales allowed) */
  CHECK_EQ(quantization(0, 0, 0, 0, TFQP_TYPE_INT8, 1, &zp), TFQP_OK);
  CHECK_EQ(quantization(2, 0.5f, 1, 0, TFQP_TYPE_INT8, 1, &zp), TFQP_OK);
  CHECK_EQ(quantization(2, 0.5f, 2, 0, TFQP_TYPE_INT16, 1, &zp), TFQP_OK);
  CHECK_EQ(quantization(2, 0.5f, 2, 3, TFQP_TYPE_INT8, 1, &zp), TFQP_ERROR_TENSOR_TYPE);
  CHECK_EQ(quantization(1, 0.5f, 1, -1, TFQP_TYPE_INT16, 1, &zp), TFQP_ERROR_TENSOR_TYPE);
  {
    tfqp_quantization q = {1, NULL, 0, NULL};
    tfqp_error e;
    CHECK_EQ(tfqp_quantization_check(&q, TFQP_TYPE_INT32, 0, "x", &zp, &e),
             TFQP_ERROR_TENSOR_TYPE);
  }
}

/* Every tensor's byte size is bounded by TFQP_MAX_TENSOR_BYTES (formats.h). */
static void test_tensor_size_limit(void) {
  tfqp_tensor t;
  tfqp_error e;
  set(&t, TFQP_TYPE_INT8, 2, 1 << 14, 1 << 14, 0, 0, 0); /* 2^28 bytes: the limit */
  CHECK_EQ(tfqp_tensor_check(&t, "input", TFQP_TYPE_INT8, 2, &e), TFQP_OK);
  set(&t, TFQP_TYPE_INT32, 2, 1 << 14, 1 << 12, 0, 0, 0); /* 2^28 bytes of int32 */
  CHECK_EQ(tfqp_tensor_check(&t, "input", TFQP_TYPE_INT32, 2, &e), TFQP_OK);
  set(&t, TFQP_TYPE_INT32, 2, 1 << 14, (1 << 12) + 1, 0, 0, 0);
  CHECK_EQ(tfqp_tensor_check(&t, "input", TFQP_TYPE_INT32, 2, &e), TFQP_ERROR_TOO_LARGE);
  CHECK(strcmp(e.name, "input") == 0);
}

void test_validation(void) {
  test_quantization_rules();
  test_tensor_size_limit();
  test_conv_prepare();
  test_conv_output_dims();
  test_conv_init_table();
  test_fc_prepare();
  test_maxpool_prepare();
}
