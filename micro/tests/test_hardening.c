/* Reproducers of kernel bugs found by probing and fuzzing (issue #12), each run
 * through the op table on exact-size heap buffers (op_harness.h) as an adapter
 * would run it: before the fixes these cases were accepted and then read out of
 * bounds, overflowed, or gave a wrong byte; now validation rejects them or the
 * kernels compute the contract's value. */
#include <string.h>

#include "check.h"
#include "op_harness.h"
#include "tfqp/op.h"

static const tfqp_op *op_named(const char *name) { return tfqp_find_op(name, strlen(name)); }

static void describe(tfqp_tensor *t, tfqp_type type, int32_t rank, int32_t d0, int32_t d1,
                     int32_t d2, int32_t d3, int32_t zero_point) {
  const int32_t dims[4] = {d0, d1, d2, d3};
  size_t count = 1;
  int32_t i;
  for (i = 0; i < rank; ++i) count *= (size_t)dims[i];
  const size_t element_bytes = type == TFQP_TYPE_INT8 ? 1 : type == TFQP_TYPE_INT16 ? 2 : 4;
  tfqp_tensor_init(t, type, rank, dims, count * element_bytes, zero_point);
}

/* TFLite's requantization of an int64 accumulator followed by the clamp, in
 * int64 throughout (no intermediate wraps), shift <= 0. */
static int32_t reference_int8(int64_t acc, int32_t multiplier, int32_t shift, int32_t zero_point,
                              int32_t act_min, int32_t act_max) {
  const int64_t product = acc * multiplier;
  const int64_t nudge = product >= 0 ? ((int64_t)1 << 30) : 1 - ((int64_t)1 << 30);
  int64_t high = (product + nudge) / ((int64_t)1 << 31);
  int64_t v;
  if (shift < 0) {
    const int64_t mask = ((int64_t)1 << -shift) - 1;
    const int64_t remainder = high & mask;
    const int64_t threshold = (mask >> 1) + (high < 0 ? 1 : 0);
    high = (high >> -shift) + (remainder > threshold ? 1 : 0);
  }
  v = high + zero_point;
  return (int32_t)(v < act_min ? act_min : v > act_max ? act_max : v);
}

/* A TFQP_BCONV2D of Cin = 1 on a 1x1 int8 image: filter [1, fh, 1, 1] of +1
 * weights, int8 output [1,1,1,1] with P = 1, N = -1, and transform `row`. */
static op_harness_case bconv2d_1x1(int32_t filter_height, int32_t dilation_height,
                                   int32_t pad_value, const int32_t *row) {
  op_harness_case c;
  tfqp_bconv2d_options *o;
  memset(&c, 0, sizeof c);
  c.op = op_named("TFQP_BCONV2D");
  o = &c.options.bconv2d;
  o->channels_in = 1;
  o->filter_height = filter_height;
  o->filter_width = 1;
  o->stride_height = 1;
  o->stride_width = 1;
  o->dilation_height_factor = dilation_height;
  o->dilation_width_factor = 1;
  o->padding = TFQP_PADDING_SAME;
  o->pad_value = pad_value;
  o->input_pos = 1;
  o->input_neg = -1;
  o->act_min = -128;
  o->act_max = 127;
  o->present = TFQP_BCONV2D_REQUIRED | TFQP_BCONV2D_INT8_OUTPUT;
  c.input_count = 3;
  describe(&c.inputs[0], TFQP_TYPE_INT8, 4, 1, 1, 1, 1, 0);
  describe(&c.inputs[1], TFQP_TYPE_INT32, 4, 1, filter_height, 1, 1, 0);
  describe(&c.inputs[2], TFQP_TYPE_INT32, 2, 1, 4, 0, 0, 0);
  c.data[2] = row;
  describe(&c.output, TFQP_TYPE_INT8, 4, 1, 1, 1, 1, 0);
  return c;
}

/* Issue #12: filter height 2, dilation 2^31 - 2, SAME, 1x1 input was accepted,
 * then (-start + dilation - 1) overflowed int32 in tfqp_window_axis_taps and
 * eval read far outside the input (SIGSEGV in `tfq-plus verify`). */
static void test_huge_dilation_is_rejected(void) {
  static const int32_t row[4] = {1, 100, 1 << 30, 0};
  op_harness_case c = bconv2d_1x1(2, INT32_MAX - 1, 0, row);
  op_harness_result r = op_harness_run(&c, NULL);
  CHECK_EQ(r.status, TFQP_ERROR_OPTION_VALUE);
  CHECK(r.error.name != NULL && strcmp(r.error.name, "dilation_height_factor") == 0);
  CHECK_EQ(r.error.value, INT32_MAX - 1);
}

/* The largest dilation validation accepts, on the same 1x1 image: the two taps
 * both fall into the padding (pad_before = dilation / 2), so D = S = 0 with
 * pad_value 0 (acc = bias) and D = S = 2 with pad_value 1 (+1 weights on +1
 * padding: acc = ((P + N) * 2 + (P - N) * 2) / 2 + bias). */
static void test_largest_dilation_computes_the_contract(void) {
  static const int32_t row[4] = {1, 100, 1 << 30, 0};
  int32_t pad_value;
  for (pad_value = 0; pad_value <= 1; ++pad_value) {
    op_harness_case c = bconv2d_1x1(2, TFQP_MAX_WINDOW, pad_value, row);
    int8_t out = 0;
    const op_harness_result r = op_harness_run(&c, &out);
    const int64_t acc = pad_value ? (0 * 2 + 2 * 2) / 2 + 100 : 100;
    CHECK_EQ(r.status, TFQP_OK);
    CHECK_EQ(out, reference_int8(acc, 1 << 30, 0, 0, -128, 127));
    digest_bytes(&out, 1);
  }
  {
    op_harness_case c = bconv2d_1x1(2, TFQP_MAX_WINDOW + 1, 0, row);
    CHECK_EQ(op_harness_run(&c, NULL).status, TFQP_ERROR_OPTION_VALUE);
  }
}

/* Issue #12: filter_height * filter_width * channels_in was computed in int64
 * from the options before any bound: 2^22 each is 2^66, which wrapped to 0 and
 * passed the "< 2^30 taps" rule (signed overflow: undefined behaviour). The
 * options are now bounded one by one first. Same in TFQP_CONV2D_INT8. */
static void test_taps_product_of_huge_options_is_rejected(void) {
  const int32_t huge = 1 << 22;
  static const int32_t row[4] = {1, 0, 1 << 30, 0};
  op_harness_case c = bconv2d_1x1(1, 1, 0, row);
  op_harness_result r;
  c.options.bconv2d.channels_in = huge;
  c.options.bconv2d.filter_height = huge;
  c.options.bconv2d.filter_width = huge;
  describe(&c.inputs[0], TFQP_TYPE_INT8, 4, 1, 1, 1, huge, 0);
  r = op_harness_run(&c, NULL);
  CHECK_EQ(r.status, TFQP_ERROR_OPTION_VALUE);
  CHECK(r.error.name != NULL && strcmp(r.error.name, "filter_height") == 0);

  memset(&c, 0, sizeof c);
  c.op = op_named("TFQP_CONV2D_INT8");
  c.options.conv2d_int8.channels_in = huge;
  c.options.conv2d_int8.filter_height = huge;
  c.options.conv2d_int8.filter_width = huge;
  c.options.conv2d_int8.stride_height = 1;
  c.options.conv2d_int8.stride_width = 1;
  c.options.conv2d_int8.dilation_height_factor = 1;
  c.options.conv2d_int8.dilation_width_factor = 1;
  c.options.conv2d_int8.present = TFQP_CONV2D_INT8_REQUIRED;
  c.input_count = 3;
  describe(&c.inputs[0], TFQP_TYPE_INT8, 4, 1, 1, 1, huge, 0);
  describe(&c.inputs[1], TFQP_TYPE_INT8, 4, 1, 1, 1, 1, 0);
  describe(&c.inputs[2], TFQP_TYPE_INT32, 2, 1, 2, 0, 0, 0);
  describe(&c.output, TFQP_TYPE_INT32, 4, 1, 1, 1, 1, 0);
  r = op_harness_run(&c, NULL);
  CHECK_EQ(r.status, TFQP_ERROR_OPTION_VALUE);
  CHECK(r.error.name != NULL && strcmp(r.error.name, "filter_height") == 0);
}

/* Issue #12: the int8 output added the zero point to the requantized value in
 * int32 before the clamp. Transform W 1, bias -2147483646, multiplier 2^31 - 1
 * (K = 1, |W| * max(|P|, |N|) * K + |bias| = 2^31 - 1: accepted), zero point
 * -128: the sum wrapped to a large positive value and clamped to 127; the
 * clamp of the true value is -128. Mirrored at the top: bias 2147483646, zero
 * point 127 gave -128 for 127. Checked on TFQP_BCONV2D and
 * TFQP_BFULLY_CONNECTED (each kernel path computes the output on its own). */
static void test_output_zero_point_does_not_wrap(void) {
  static const int32_t low[4] = {1, -2147483646, INT32_MAX, 0};
  static const int32_t high[4] = {1, 2147483646, INT32_MAX, 0};
  static const int8_t positive = 5; /* q >= zp: sign +1, D = +1 with a +1 weight */
  int32_t side, fully_connected;
  for (side = 0; side < 2; ++side) {
    const int32_t *row = side ? high : low;
    const int32_t zero_point = side ? 127 : -128;
    const int32_t expected = reference_int8((int64_t)1 + row[1], row[2], row[3], zero_point,
                                            -128, 127);
    CHECK_EQ(expected, side ? 127 : -128);
    for (fully_connected = 0; fully_connected < 2; ++fully_connected) {
      op_harness_case c = bconv2d_1x1(1, 1, 0, row);
      op_harness_result r;
      int8_t out = 0;
      if (fully_connected) {
        tfqp_bfully_connected_options *o = &c.options.bfully_connected;
        memset(&c.options, 0, sizeof c.options);
        c.op = op_named("TFQP_BFULLY_CONNECTED");
        o->channels_in = 1;
        o->input_pos = 1;
        o->input_neg = -1;
        o->act_min = -128;
        o->act_max = 127;
        o->present = TFQP_BFC_REQUIRED | TFQP_BFC_INT8_OUTPUT;
        describe(&c.inputs[0], TFQP_TYPE_INT8, 2, 1, 1, 0, 0, 0);
        describe(&c.inputs[1], TFQP_TYPE_INT32, 2, 1, 1, 0, 0, 0);
        describe(&c.output, TFQP_TYPE_INT8, 2, 1, 1, 0, 0, zero_point);
      } else {
        c.output.zero_point = zero_point;
      }
      c.data[0] = &positive;
      r = op_harness_run(&c, &out);
      CHECK_EQ(r.status, TFQP_OK);
      CHECK_EQ(out, expected);
      digest_bytes(&out, 1);
    }
  }
}

/* A TFQP_SHIFT_FULLY_CONNECTED case on one row of `cin` int8 values: codes
 * [cout, row_words], a one-class table of `columns` entries, the int8 output's
 * transform [cout, 5], full activation range, output zero point `zp_out`. */
static op_harness_case shift_fc_case(int32_t cin, int32_t cout, int32_t row_words,
                                     int32_t columns, int32_t zp_out) {
  op_harness_case c;
  memset(&c, 0, sizeof c);
  c.op = op_named("TFQP_SHIFT_FULLY_CONNECTED");
  c.options.shift_fully_connected.channels_in = cin;
  c.options.shift_fully_connected.output.terms = 1;
  c.options.shift_fully_connected.output.activation_min = -128;
  c.options.shift_fully_connected.output.activation_max = 127;
  c.options.shift_fully_connected.present = TFQP_SHIFT_FC_REQUIRED;
  c.input_count = 4;
  describe(&c.inputs[0], TFQP_TYPE_INT8, 2, 1, cin, 0, 0, 0);
  describe(&c.inputs[1], TFQP_TYPE_INT32, 2, cout, row_words, 0, 0, 0);
  describe(&c.inputs[2], TFQP_TYPE_INT16, 2, 1, columns, 0, 0, 0);
  describe(&c.inputs[3], TFQP_TYPE_INT32, 2, cout, 5, 0, 0, 0);
  describe(&c.output, TFQP_TYPE_INT8, 2, 1, cout, 0, 0, zp_out);
  return c;
}

/* Found by fuzzing (avx2/fuzz_shift_depthwise_conv2d): the AVX-512 shift path
 * added the output zero point to a requantized value near INT32_MIN before
 * saturating, which wrapped to +127 where the contract (clamp, then add the
 * zero point) gives -128. A shift FC whose accumulator is 0 (input at its zero
 * point): B = 2842 shifted left by 30 wraps to INT32_MIN as TFLite's int32
 * product does, times M0 = 2^31 - 1 is -2^31 + 1 (rounded), plus zp -99
 * clamps to -128 on every kernel path. */
static void test_shift_output_zero_point_does_not_wrap(void) {
  static int8_t input[32];
  static int32_t codes[32][2];
  static const int16_t table[4] = {0, 1, -1, 0};
  static int32_t transform[32][5];
  static int8_t out[32];
  op_harness_case c = shift_fc_case(32, 32, 2, 4, -99);
  op_harness_result r;
  int32_t co, w;
  memset(input, 0, sizeof input);
  for (co = 0; co < 32; ++co) {
    for (w = 0; w < 2; ++w) codes[co][w] = 0x55555555; /* 16 codes of 1 (+1) per word */
    transform[co][0] = 1;          /* d */
    transform[co][1] = 2842;       /* B */
    transform[co][2] = INT32_MAX;  /* M0 */
    transform[co][3] = 0;          /* M1 */
    transform[co][4] = 30;         /* s */
  }
  c.data[0] = input;
  c.data[1] = codes;
  c.data[2] = table;
  c.data[3] = transform;
  r = op_harness_run(&c, out);
  CHECK_EQ(r.status, TFQP_OK);
  for (co = 0; co < 32; ++co) CHECK_EQ(out[co], -128);
  digest_bytes(out, sizeof out);
}

/* Issue #12: absurd but consistent widths made init_table count popcounts for
 * 10-18 s (a 4000-wide SAME filter on a 4000-wide row: 4000 border regions of
 * up to 4000 taps, for each of 1000 channels). prepare now rejects a layer
 * whose set-up work exceeds TFQP_MAX_INIT_WORK (formats.h). */
static void test_absurd_set_up_work_is_rejected(void) {
  static const int32_t row[4] = {1, 0, 1 << 30, 0};
  op_harness_case c = bconv2d_1x1(1, 1, 0, row);
  op_harness_result r;
  c.options.bconv2d.filter_width = 4000;
  describe(&c.inputs[0], TFQP_TYPE_INT8, 4, 1, 1, 4000, 1, 0);
  describe(&c.inputs[1], TFQP_TYPE_INT32, 4, 1000, 1, 4000, 1, 0);
  describe(&c.inputs[2], TFQP_TYPE_INT32, 2, 1000, 4, 0, 0, 0);
  describe(&c.output, TFQP_TYPE_INT8, 4, 1, 1, 4000, 1000, 0);
  c.data[2] = NULL; /* zero rows: only reached if prepare accepted the layer */
  r = op_harness_run(&c, NULL);
  CHECK_EQ(r.status, TFQP_ERROR_TOO_LARGE);
  CHECK(r.step != NULL && strcmp(r.step, "prepare") == 0);
}

/* Beyond the reproducers: every op of the table bounds its window and channel
 * options (formats.h) before any arithmetic on them. Options all 1 but one,
 * tensors left empty (options are checked first): the one at its limit passes
 * the option checks, beyond it fails naming the key. */
static int is_window_key(const char *key) {
  return strncmp(key, "filter_", 7) == 0 || strncmp(key, "stride_", 7) == 0 ||
         strncmp(key, "dilation_", 9) == 0;
}

static void set_option(const tfqp_op *op, tfqp_op_options *options, int32_t key, int32_t value) {
  memcpy((unsigned char *)options + op->option_keys[key].offset, &value, sizeof value);
}

static tfqp_status prepare_with(const tfqp_op *op, int32_t key, int32_t value, tfqp_error *e) {
  tfqp_op_options options;
  tfqp_tensor tensors[TFQP_OP_MAX_INPUTS + 1];
  tfqp_op_params params;
  tfqp_op_buffers buffers;
  const uint32_t all = op->option_count == 32 ? 0xFFFFFFFFu : (1u << op->option_count) - 1u;
  int32_t k;
  memset(&options, 0, sizeof options);
  memset(tensors, 0, sizeof tensors);
  for (k = 0; k < op->option_count; ++k) set_option(op, &options, k, 1);
  set_option(op, &options, key, value);
  memcpy((unsigned char *)&options + op->present_offset, &all, sizeof all);
  memset(e, 0, sizeof *e);
  return op->prepare(&options, tensors, op->min_inputs, &tensors[TFQP_OP_MAX_INPUTS], &params,
                     &buffers, e);
}

static void test_every_op_bounds_its_options(void) {
  static const int32_t beyond_window[] = {TFQP_MAX_WINDOW + 1, INT32_MAX - 1, INT32_MAX};
  int32_t i, k, v, bounded = 0;
  for (i = 0; i < tfqp_op_count; ++i) {
    const tfqp_op *op = tfqp_ops[i];
    for (k = 0; k < op->option_count; ++k) {
      const char *key = op->option_keys[k].key;
      tfqp_error e;
      const int window = is_window_key(key);
      const int channels = strcmp(key, "channels_in") == 0 || strcmp(key, "channels") == 0 ||
                           strcmp(key, "depth_multiplier") == 0;
      if (!window && !channels) continue;
      ++bounded;
      for (v = 0; v < 3; ++v) {
        const int32_t value = window ? beyond_window[v]
                                     : v == 0 ? TFQP_MAX_CHANNELS + 1 : beyond_window[v];
        CHECK_EQ(prepare_with(op, k, value, &e), TFQP_ERROR_OPTION_VALUE);
        CHECK(e.name != NULL && strcmp(e.name, key) == 0);
      }
      /* at the limit the option itself passes (the empty tensors fail later) */
      prepare_with(op, k, window ? TFQP_MAX_WINDOW : 1, &e);
      CHECK(e.name == NULL || strcmp(e.name, key) != 0);
    }
  }
  /* bconv2d 7, bfully_connected 1, bmaxpool2d 5, conv2d_int8 7, fully_connected_int8 1,
   * unpack 1, shift_conv2d 7, shift_depthwise_conv2d 8, shift_fully_connected 1,
   * unpack_codes 1, max_pool_codes 5 */
  CHECK_EQ(bounded, 44);
}

/* Tables beyond TFQP_MAX_BUFFER_BYTES: TFQP_ERROR_TOO_LARGE from prepare, with
 * tensors that are within their own limit (no data is needed). */
static void test_tables_beyond_the_limit_are_rejected(void) {
  op_harness_case c;
  op_harness_result r;
  /* TFQP_BFULLY_CONNECTED, 2^24 output channels of one word: 7 * 2^24 table words */
  memset(&c, 0, sizeof c);
  c.op = op_named("TFQP_BFULLY_CONNECTED");
  c.options.bfully_connected.channels_in = 32;
  c.options.bfully_connected.present = TFQP_BFC_REQUIRED;
  c.input_count = 3;
  describe(&c.inputs[0], TFQP_TYPE_INT32, 2, 1, 1, 0, 0, 0);
  describe(&c.inputs[1], TFQP_TYPE_INT32, 2, 1 << 24, 1, 0, 0, 0);
  describe(&c.inputs[2], TFQP_TYPE_INT32, 2, 1 << 24, 2, 0, 0, 0);
  describe(&c.output, TFQP_TYPE_INT32, 2, 1, 1 << 19, 0, 0, 0);
  r = op_harness_run(&c, NULL);
  CHECK_EQ(r.status, TFQP_ERROR_TOO_LARGE);
  CHECK(r.error.name != NULL && strcmp(r.error.name, "table") == 0);
  /* TFQP_FULLY_CONNECTED_INT8, 2^25 output channels: the [Cout, 3] transform
   * (and so the table, its copy) beyond TFQP_MAX_TENSOR_BYTES */
  memset(&c, 0, sizeof c);
  c.op = op_named("TFQP_FULLY_CONNECTED_INT8");
  c.options.fully_connected_int8.channels_in = 1;
  c.options.fully_connected_int8.int32_output = 1;
  c.options.fully_connected_int8.present = TFQP_FC_INT8_REQUIRED | TFQP_FC_INT8_INT32_OUTPUT;
  c.input_count = 3;
  describe(&c.inputs[0], TFQP_TYPE_INT8, 2, 1, 1, 0, 0, 0);
  describe(&c.inputs[1], TFQP_TYPE_INT8, 2, 1 << 25, 1, 0, 0, 0);
  describe(&c.inputs[2], TFQP_TYPE_INT32, 2, 1 << 25, 3, 0, 0, 0);
  describe(&c.output, TFQP_TYPE_INT32, 2, 1, 1 << 25, 0, 0, 0);
  r = op_harness_run(&c, NULL);
  CHECK_EQ(r.status, TFQP_ERROR_TOO_LARGE);
  CHECK(r.error.name != NULL && strcmp(r.error.name, "transform") == 0);
  /* TFQP_SHIFT_FULLY_CONNECTED, 2^20 channels of 1024 one-bit codes: codes of
   * 2^27 bytes (within the tensor limit), but 2^30 codes to decode in set-up */
  c = shift_fc_case(1024, 1 << 20, 32, 2, 0);
  r = op_harness_run(&c, NULL);
  CHECK_EQ(r.status, TFQP_ERROR_TOO_LARGE);
  CHECK(r.error.name != NULL && strcmp(r.error.name, "codes") == 0);
}

void test_hardening(void) {
  test_every_op_bounds_its_options();
  test_tables_beyond_the_limit_are_rejected();
  test_huge_dilation_is_rejected();
  test_largest_dilation_computes_the_contract();
  test_taps_product_of_huge_options_is_rejected();
  test_output_zero_point_does_not_wrap();
  test_shift_output_zero_point_does_not_wrap();
  test_absurd_set_up_work_is_rejected();
}
