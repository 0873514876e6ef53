/* The ops and variants added with the op table, run through their rows
 * (tfqp/op.h: output_dims, prepare, init_table, eval) and compared with direct
 * references written from their contracts:
 *   TFQP_BMAXPOOL2D with an or_mask    min/max of the +-1 values per channel
 *   TFQP_CONV2D_INT8 / _FULLY_CONNECTED_INT8   sum of (q - zp) * w over an
 *                                      image padded with zp, then the bit or
 *                                      the value (floor division)
 *   TFQP_BINARIZE                      q < zp, v < 0 per element
 * Every output is folded into the digest (all kernel paths must agree). */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "tfqp/op.h"
#include "value_output.h"

#define MAX_VALUES 30000 /* >= 40 * 4 * 4 * 40 weights */
#define MAX_COUT 40

static int8_t in8[MAX_VALUES];
static int32_t in32[MAX_VALUES];
static int8_t weights[MAX_VALUES];
static int16_t weights16[MAX_VALUES];
static int32_t residual[MAX_VALUES];
static int32_t transform[MAX_COUT * 3];
static int32_t table[16384]; /* Cortex-M int8 ops: repacked weights too (int8_arm.h) */
static int32_t scratch[2048]; /* the Cortex-M int8 ops' window (int8_arm.h) */
static int32_t out[MAX_VALUES];
static int8_t signs[MAX_VALUES];

static void set(tfqp_tensor *t, tfqp_type type, int32_t rank, const int32_t *dims, int32_t zp) {
  size_t count = 1;
  int32_t i;
  for (i = 0; i < rank; ++i) count *= (size_t)dims[i];
  tfqp_tensor_init(t, type, rank, dims,
                   count * (type == TFQP_TYPE_INT8 ? 1 : type == TFQP_TYPE_INT16 ? 2 : 4), zp);
}

static const tfqp_op *op_named(const char *name) { return tfqp_find_op(name, strlen(name)); }

/* The life cycle through the row; returns the first failing status. */
static tfqp_status run(const tfqp_op *op, tfqp_op_options *options, const tfqp_tensor *inputs,
                       int32_t count, const void *const *data, const tfqp_tensor *output,
                       void *output_data, tfqp_error *e) {
  tfqp_op_params params;
  tfqp_op_buffers buffers;
  const void *constants[TFQP_OP_MAX_INPUTS] = {0};
  void *outputs[1];
  int32_t rank, dims[TFQP_MAX_RANK], i, same;
  tfqp_status s;
  if ((s = tfqp_op_check_arity(op, count, 1, e))) return s;
  if ((s = op->output_dims(options, inputs, count, output->type, &rank, dims, e))) return s;
  same = rank == output->rank;
  for (i = 0; same && i < rank; ++i) same = dims[i] == output->dims[i];
  if ((s = op->prepare(options, inputs, count, output, &params, &buffers, e))) return s;
  CHECK(same); /* prepare accepts exactly the dims output_dims gives */
  CHECK(buffers.table_bytes <= sizeof table);
  CHECK(buffers.scratch_bytes <= sizeof scratch);
  for (i = 0; i < count; ++i) {
    if (op->constant_inputs & (1u << i)) constants[i] = data[i];
  }
  if (op->init_table != NULL &&
      (s = op->init_table(&params, constants, buffers.table_bytes > 0 ? table : NULL,
                          buffers.table_bytes, e))) {
    return s;
  }
  outputs[0] = output_data;
  {
    /* eval on exactly the op's params bytes, as the TFLite Micro adapter keeps them */
    tfqp_op_params *kept = (tfqp_op_params *)malloc(op->params_bytes);
    CHECK(kept != NULL);
    if (kept == NULL) return TFQP_ERROR_BUFFER;
    memcpy(kept, &params, op->params_bytes);
    op->eval(kept, buffers.table_bytes > 0 ? table : NULL, data, outputs,
             buffers.scratch_bytes > 0 ? scratch : NULL);
    free(kept);
  }
  return TFQP_OK;
}

static void ref_axis(int32_t in, int32_t k, int32_t s, int32_t d, int32_t padding, int32_t *o,
                     int32_t *pad) {
  const int32_t effective = (k - 1) * d + 1;
  int32_t total;
  *o = padding == TFQP_PADDING_SAME ? (in + s - 1) / s : (in - effective) / s + 1;
  total = (*o - 1) * s + effective - in;
  *pad = total > 0 ? total / 2 : 0;
}

/* ------------------------------------------------------ max-pool with or_mask */

static void test_maxpool_or_mask(void) {
  const tfqp_op *op = op_named("TFQP_BMAXPOOL2D");
  long mismatches = 0;
  int32_t i;
  for (i = 0; i < 120; ++i) {
    tfqp_op_options o;
    tfqp_tensor t[2], output;
    tfqp_error e;
    const void *data[2];
    tfqp_word mask[3];
    const int32_t batch = test_random_range(1, 2), h = test_random_range(1, 7),
                  w = test_random_range(1, 7), channels = test_random_range(1, 70);
    const int32_t words = TFQP_WORDS(channels);
    int32_t dims[4], oh, ow, pt, pl, b, y, x, c, k;
    memset(&o, 0, sizeof o);
    o.bmaxpool2d.channels = channels;
    o.bmaxpool2d.filter_height = test_random_range(1, 3);
    o.bmaxpool2d.filter_width = test_random_range(1, 3);
    o.bmaxpool2d.stride_height = test_random_range(1, 3);
    o.bmaxpool2d.stride_width = test_random_range(1, 3);
    o.bmaxpool2d.padding = (o.bmaxpool2d.filter_height <= h && o.bmaxpool2d.filter_width <= w &&
                            i % 2)
                               ? TFQP_PADDING_VALID
                               : TFQP_PADDING_SAME;
    o.bmaxpool2d.present = TFQP_BMAXPOOL2D_REQUIRED;
    for (k = 0; k < batch * h * w * channels; ++k) {
      signs[k] = (int8_t)(test_random() % 3 ? (i % 2 ? -1 : 1) : (i % 2 ? 1 : -1));
    }
    /* packed input with garbage padding bits */
    for (k = 0; k < batch * h * w; ++k) {
      tfqp_word *px = (tfqp_word *)in32 + (size_t)k * words;
      for (c = 0; c < words; ++c) px[c] = 0;
      for (c = 0; c < channels; ++c) {
        if (signs[(size_t)k * channels + c] < 0) px[c / 32] |= 1u << (c % 32);
      }
      if (channels % 32) px[words - 1] |= test_random() & ~TFQP_LAST_WORD_MASK(channels);
    }
    for (c = 0; c < words; ++c) mask[c] = test_random();
    mask[words - 1] &= TFQP_LAST_WORD_MASK(channels);
    if (i % 10 == 0) mask[0] = 0; /* some all-AND / all-OR words */
    if (i % 10 == 1) mask[0] = 0xFFFFFFFFu & (words == 1 ? TFQP_LAST_WORD_MASK(channels) : ~0u);
    ref_axis(h, o.bmaxpool2d.filter_height, o.bmaxpool2d.stride_height, 1, o.bmaxpool2d.padding,
             &oh, &pt);
    ref_axis(w, o.bmaxpool2d.filter_width, o.bmaxpool2d.stride_width, 1, o.bmaxpool2d.padding,
             &ow, &pl);
    dims[0] = batch;
    dims[1] = h;
    dims[2] = w;
    dims[3] = words;
    set(&t[0], TFQP_TYPE_INT32, 4, dims, 0);
    set(&t[1], TFQP_TYPE_INT32, 1, &words, 0);
    dims[1] = oh;
    dims[2] = ow;
    set(&output, TFQP_TYPE_INT32, 4, dims, 0);
    data[0] = in32;
    data[1] = mask;
    CHECK_EQ(run(op, &o, t, 2, data, &output, out, &e), TFQP_OK);
    for (b = 0; b < batch; ++b) {
      for (y = 0; y < oh; ++y) {
        for (x = 0; x < ow; ++x) {
          const tfqp_word *px = (const tfqp_word *)out + (((size_t)b * oh + y) * ow + x) * words;
          for (c = 0; c < words * 32; ++c) {
            int32_t best = -2, worst = 2, ky, kx;
            uint32_t bit = 0;
            for (ky = 0; ky < o.bmaxpool2d.filter_height; ++ky) {
              for (kx = 0; kx < o.bmaxpool2d.filter_width; ++kx) {
                const int32_t iy = y * o.bmaxpool2d.stride_height - pt + ky;
                const int32_t ix = x * o.bmaxpool2d.stride_width - pl + kx;
                if (c < channels && iy >= 0 && iy < h && ix >= 0 && ix < w) {
                  const int8_t v = signs[(((size_t)b * h + iy) * w + ix) * channels + c];
                  if (v > best) best = v;
                  if (v < worst) worst = v;
                }
              }
            }
            if (c < channels) {
              /* mask bit 1: the max of -v (a decreasing function) is -min(v) */
              bit = ((mask[c / 32] >> (c % 32)) & 1u) ? (uint32_t)(worst == -1)
                                                       : (uint32_t)(best == -1);
            }
            mismatches += ((px[c / 32] >> (c % 32)) & 1u) != bit;
          }
        }
      }
    }
    digest_bytes(out, (size_t)batch * oh * ow * words * 4);
    /* the mask's padding bits must be 0; its shape [ceil(C/32)] */
    if (channels % 32) {
      tfqp_status s;
      mask[words - 1] |= 1u << 31;
      s = run(op, &o, t, 2, data, &output, out, &e);
      CHECK_EQ(s, TFQP_ERROR_TENSOR_DATA);
      if (s == TFQP_ERROR_TENSOR_DATA) CHECK(strcmp(e.name, "or_mask") == 0);
    }
    dims[0] = words + 1;
    set(&t[1], TFQP_TYPE_INT32, 1, dims, 0);
    CHECK_EQ(run(op, &o, t, 2, data, &output, out, &e), TFQP_ERROR_TENSOR_SHAPE);
    set(&t[1], TFQP_TYPE_INT8, 1, &words, 0);
    CHECK_EQ(run(op, &o, t, 2, data, &output, out, &e), TFQP_ERROR_TENSOR_TYPE);
    CHECK_EQ(run(op, &o, t, 3, data, &output, out, &e), TFQP_ERROR_ARGUMENT);
  }
  CHECK_EQ(mismatches, 0);
}

/* --------------------------------------------------------------- int8 ops */

/* saturate(B + floor((M * A + 2^(s-1)) / 2^s)), by division */
static int32_t ref_value(int64_t a, const int32_t *row) {
  const int64_t divisor = (int64_t)1 << row[1];
  const int64_t numerator = (int64_t)row[0] * a + (row[1] > 0 ? divisor / 2 : 0);
  int64_t quotient = numerator / divisor, v;
  if (numerator % divisor != 0 && numerator < 0) --quotient;
  v = quotient + row[2];
  return v > INT32_MAX ? INT32_MAX : v < INT32_MIN ? INT32_MIN : (int32_t)v;
}

static void fill_transform(int32_t cout, int values, int64_t spread) {
  int32_t co;
  for (co = 0; co < cout; ++co) {
    if (values) {
      transform[3 * co] = co % 5 == 0 ? (int32_t)test_random() : test_random_range(-5000, 5000);
      transform[3 * co + 1] = test_random_range(0, 40);
      transform[3 * co + 2] = co % 7 == 0 ? (int32_t)test_random() : test_random_range(-99, 99);
    } else {
      transform[2 * co] = (test_random() & 1) ? 1 : -1;
      transform[2 * co + 1] = test_random_range(-(int32_t)spread, (int32_t)spread);
      if (co == 0) transform[1] = INT32_MIN; /* never */
      if (co == 1) transform[3] = INT32_MAX; /* always */
    }
  }
}

/* saturate(saturate(value) + residual) */
static int32_t ref_residual(int32_t value, int32_t add) {
  const int64_t v = (int64_t)value + add;
  return v > INT32_MAX ? INT32_MAX : v < INT32_MIN ? INT32_MIN : (int32_t)v;
}

/* Compares the output element of channel co with the reference of A (plus the
 * residual `add` of the value output, when `with_residual`). */
static long check_output_residual(int values, const void *pixel, int32_t co, int64_t a,
                                  int with_residual, int32_t add) {
  if (values) {
    const int32_t v = ref_value(a, transform + 3 * co);
    return ((const int32_t *)pixel)[co] != (with_residual ? ref_residual(v, add) : v);
  }
  return ((((const tfqp_word *)pixel)[co / 32] >> (co % 32)) & 1u) !=
         (uint32_t)(transform[2 * co] * a < transform[2 * co + 1]);
}

/* Compares the output element of channel co with the reference of A. */
static long check_int8_output(int values, const void *pixel, int32_t co, int64_t a) {
  if (values) return ((const int32_t *)pixel)[co] != ref_value(a, transform + 3 * co);
  return ((((const tfqp_word *)pixel)[co / 32] >> (co % 32)) & 1u) !=
         (uint32_t)(transform[2 * co] * a < transform[2 * co + 1]);
}

static void test_conv2d_int8(void) {
  const tfqp_op *op = op_named("TFQP_CONV2D_INT8");
  long mismatches = 0;
  int32_t i;
  for (i = 0; i < 200; ++i) {
    tfqp_op_options o;
    tfqp_conv2d_int8_options *c = &o.conv2d_int8;
    tfqp_tensor t[4], output;
    tfqp_error e;
    const int wide = i % 3 == 1; /* int16 weights */
    const int values = i % 2;
    const int with_residual = values && i % 4 == 1;
    const void *data[4] = {in8, wide ? (const void *)weights16 : (const void *)weights, transform,
                           residual};
    const int32_t batch = test_random_range(1, 2), h = test_random_range(1, 8),
                  w = test_random_range(1, 8), cin = test_random_range(1, 40),
                  cout = test_random_range(1, MAX_COUT), zp = test_random_range(-128, 127);
    int32_t dims[4], oh, ow, pt, pl, b, y, x, co, k, depth;
    memset(&o, 0, sizeof o);
    c->channels_in = cin;
    c->filter_height = test_random_range(1, 4);
    c->filter_width = test_random_range(1, 4);
    c->stride_height = test_random_range(1, 3);
    c->stride_width = test_random_range(1, 3);
    c->dilation_height_factor = test_random_range(1, 2);
    c->dilation_width_factor = i % 3 ? 1 : 2;
    c->padding = i % 4 == 0 ? TFQP_PADDING_VALID : TFQP_PADDING_SAME;
    if (c->padding == TFQP_PADDING_VALID &&
        ((c->filter_height - 1) * c->dilation_height_factor + 1 > h ||
         (c->filter_width - 1) * c->dilation_width_factor + 1 > w)) {
      c->padding = TFQP_PADDING_SAME;
    }
    c->int32_output = values;
    c->present = TFQP_CONV2D_INT8_REQUIRED | (values ? TFQP_CONV2D_INT8_INT32_OUTPUT : 0u);
    for (k = 0; k < batch * h * w * cin; ++k) {
      in8[k] = (int8_t)(i % 9 == 0 ? (k % 2 ? 127 : -128) : test_random_range(-128, 127));
    }
    for (k = 0; k < cout * c->filter_height * c->filter_width * cin; ++k) {
      weights[k] = (int8_t)(i % 9 == 0 ? (k % 3 ? 127 : -127) : test_random_range(-127, 127));
      /* int16: large magnitudes, bounded so sum |w| * 255 < 2^31 per channel */
      weights16[k] = (int16_t)(k % 5 == 0 ? (k % 2 ? 32767 : -32768)
                                          : test_random_range(-20000, 20000));
    }
    for (k = 0; k < MAX_VALUES; ++k) {
      residual[k] = k % 13 == 0 ? (k % 2 ? INT32_MAX : INT32_MIN) : (int32_t)test_random() / 4;
    }
    fill_transform(cout, values, 3000);
    ref_axis(h, c->filter_height, c->stride_height, c->dilation_height_factor, c->padding, &oh,
             &pt);
    ref_axis(w, c->filter_width, c->stride_width, c->dilation_width_factor, c->padding, &ow, &pl);
    depth = values ? cout : TFQP_WORDS(cout);
    dims[0] = batch; dims[1] = h; dims[2] = w; dims[3] = cin;
    set(&t[0], TFQP_TYPE_INT8, 4, dims, zp);
    dims[0] = cout; dims[1] = c->filter_height; dims[2] = c->filter_width;
    set(&t[1], wide ? TFQP_TYPE_INT16 : TFQP_TYPE_INT8, 4, dims, 0);
    dims[1] = values ? 3 : 2;
    set(&t[2], TFQP_TYPE_INT32, 2, dims, 0);
    dims[0] = batch; dims[1] = oh; dims[2] = ow; dims[3] = depth;
    set(&output, TFQP_TYPE_INT32, 4, dims, 0);
    set(&t[3], TFQP_TYPE_INT32, 4, dims, 0);
    if (wide) {
      /* a channel whose sum |w| * 255 reaches 2^31 is refused by init_table */
      const int32_t taps = c->filter_height * c->filter_width * cin;
      int64_t worst = 0;
      for (co = 0; co < cout; ++co) {
        int64_t sum = 0;
        for (k = 0; k < taps; ++k) {
          const int32_t v = weights16[(size_t)co * taps + k];
          sum += v < 0 ? -v : v;
        }
        if (sum > worst) worst = sum;
      }
      if (worst * 255 > INT32_MAX) {
        CHECK_EQ(run(op, &o, t, 3, data, &output, out, &e), TFQP_ERROR_TENSOR_DATA);
        continue;
      }
    }
    CHECK_EQ(run(op, &o, t, with_residual ? 4 : 3, data, &output, out, &e), TFQP_OK);
    for (b = 0; b < batch; ++b) {
      for (y = 0; y < oh; ++y) {
        for (x = 0; x < ow; ++x) {
          const size_t pixel = ((size_t)b * oh + y) * ow + x;
          const void *px = values ? (const void *)(out + pixel * cout)
                                  : (const void *)((const tfqp_word *)out + pixel * depth);
          for (co = 0; co < cout; ++co) {
            int64_t a = 0;
            int32_t ky, kx, ci;
            for (ky = 0; ky < c->filter_height; ++ky) {
              for (kx = 0; kx < c->filter_width; ++kx) {
                const int32_t iy = y * c->stride_height - pt + ky * c->dilation_height_factor;
                const int32_t ix = x * c->stride_width - pl + kx * c->dilation_width_factor;
                const int inside = iy >= 0 && iy < h && ix >= 0 && ix < w;
                for (ci = 0; ci < cin; ++ci) {
                  /* the image padded with the zero point */
                  const int32_t q = inside ? in8[(((size_t)b * h + iy) * w + ix) * cin + ci] : zp;
                  const size_t at =
                      (((size_t)co * c->filter_height + ky) * c->filter_width + kx) * cin + ci;
                  const int32_t wt = wide ? weights16[at] : weights[at];
                  a += (int64_t)(q - zp) * wt;
                }
              }
            }
            mismatches +=
                check_output_residual(values, px, co, a, with_residual, residual[pixel * cout + co]);
          }
          if (!values && cout % 32) {
            mismatches += (((const tfqp_word *)px)[depth - 1] & ~TFQP_LAST_WORD_MASK(cout)) != 0;
          }
        }
      }
    }
    digest_bytes(out, output.bytes);
    /* a residual needs the value output and the output's shape */
    if (!values) CHECK_EQ(run(op, &o, t, 4, data, &output, out, &e), TFQP_ERROR_ARGUMENT);
    if (values) {
      dims[3] = depth + 1;
      set(&t[3], TFQP_TYPE_INT32, 4, dims, 0);
      CHECK_EQ(run(op, &o, t, 4, data, &output, out, &e), TFQP_ERROR_TENSOR_SHAPE);
    }
    if (wide) continue;
    /* weights -128 and transform rows out of range are rejected by init_table */
    weights[0] = -128;
    CHECK_EQ(run(op, &o, t, 3, data, &output, out, &e), TFQP_ERROR_TENSOR_DATA);
    weights[0] = 1;
    if (values) {
      transform[1] = 41;
    } else {
      transform[0] = 0;
    }
    CHECK_EQ(run(op, &o, t, 3, data, &output, out, &e), TFQP_ERROR_TENSOR_DATA);
  }
  CHECK_EQ(mismatches, 0);
}

static void test_conv2d_int8_validation(void) {
  const tfqp_op *op = op_named("TFQP_CONV2D_INT8");
  tfqp_op_options o;
  tfqp_tensor t[3], output;
  tfqp_error e;
  const void *data[3] = {in8, weights, transform};
  const int32_t in_dims[4] = {1, 4, 4, 8}, w_dims[4] = {3, 3, 3, 8}, t_dims[2] = {3, 2},
                out_dims[4] = {1, 4, 4, 1};
  memset(&o, 0, sizeof o);
  o.conv2d_int8.channels_in = 8;
  o.conv2d_int8.filter_height = o.conv2d_int8.filter_width = 3;
  o.conv2d_int8.stride_height = o.conv2d_int8.stride_width = 1;
  o.conv2d_int8.dilation_height_factor = o.conv2d_int8.dilation_width_factor = 1;
  o.conv2d_int8.present = TFQP_CONV2D_INT8_REQUIRED;
  set(&t[0], TFQP_TYPE_INT8, 4, in_dims, 3);
  set(&t[1], TFQP_TYPE_INT8, 4, w_dims, 0);
  set(&t[2], TFQP_TYPE_INT32, 2, t_dims, 0);
  set(&output, TFQP_TYPE_INT32, 4, out_dims, 0);
  memset(weights, 1, 3 * 9 * 8);
  transform[0] = transform[2] = transform[4] = 1;
  CHECK_EQ(run(op, &o, t, 3, data, &output, out, &e), TFQP_OK);
  /* K = 9 * 7368 = 66312 taps would let |A| reach 2^31 */
  o.conv2d_int8.channels_in = 7368;
  CHECK_EQ(run(op, &o, t, 3, data, &output, out, &e), TFQP_ERROR_OPTION_VALUE);
  CHECK(strcmp(e.name, "channels_in") == 0 && e.value == 66312);
  o.conv2d_int8.channels_in = 8;
  o.conv2d_int8.int32_output = 2;
  CHECK_EQ(run(op, &o, t, 3, data, &output, out, &e), TFQP_ERROR_OPTION_VALUE);
  o.conv2d_int8.int32_output = 0;
  o.conv2d_int8.present = TFQP_CONV2D_INT8_REQUIRED & ~1u;
  CHECK_EQ(run(op, &o, t, 3, data, &output, out, &e), TFQP_ERROR_OPTIONS);
  o.conv2d_int8.present = TFQP_CONV2D_INT8_REQUIRED;
  t[0].zero_point = 128;
  CHECK_EQ(run(op, &o, t, 3, data, &output, out, &e), TFQP_ERROR_TENSOR_DATA);
  t[0].zero_point = 3;
  t[1].type = TFQP_TYPE_INT32;
  CHECK_EQ(run(op, &o, t, 3, data, &output, out, &e), TFQP_ERROR_TENSOR_TYPE);
  set(&t[1], TFQP_TYPE_INT8, 4, w_dims, 0);
  output.type = TFQP_TYPE_INT8;
  CHECK_EQ(run(op, &o, t, 3, data, &output, out, &e), TFQP_ERROR_TENSOR_TYPE);
  set(&output, TFQP_TYPE_INT32, 4, in_dims, 0); /* depth 8: neither 1 nor 3 */
  CHECK_EQ(run(op, &o, t, 3, data, &output, out, &e), TFQP_ERROR_TENSOR_SHAPE);
  set(&output, TFQP_TYPE_INT32, 4, out_dims, 0);
  set(&t[2], TFQP_TYPE_INT32, 2, w_dims, 0); /* [3, 3]: the value transform */
  CHECK_EQ(run(op, &o, t, 3, data, &output, out, &e), TFQP_ERROR_TENSOR_SHAPE);
  CHECK_EQ(run(op, &o, t, 2, data, &output, out, &e), TFQP_ERROR_ARGUMENT);
}

static void test_fully_connected_int8(void) {
  const tfqp_op *op = op_named("TFQP_FULLY_CONNECTED_INT8");
  long mismatches = 0;
  int32_t i;
  for (i = 0; i < 150; ++i) {
    tfqp_op_options o;
    tfqp_tensor t[3], output;
    tfqp_error e;
    const void *data[3] = {in8, weights, transform};
    const int values = i % 2;
    const int32_t batch = test_random_range(1, 4), cin = test_random_range(1, 300),
                  cout = test_random_range(1, MAX_COUT), zp = test_random_range(-128, 127);
    const int32_t depth = values ? cout : TFQP_WORDS(cout);
    int32_t dims[2], b, co, ci, k;
    memset(&o, 0, sizeof o);
    o.fully_connected_int8.channels_in = cin;
    o.fully_connected_int8.int32_output = values;
    o.fully_connected_int8.present = 1u | (values ? 2u : 0u);
    for (k = 0; k < batch * cin; ++k) in8[k] = (int8_t)test_random_range(-128, 127);
    for (k = 0; k < cout * cin; ++k) weights[k] = (int8_t)test_random_range(-127, 127);
    fill_transform(cout, values, 20000);
    dims[0] = batch; dims[1] = cin;
    set(&t[0], TFQP_TYPE_INT8, 2, dims, zp);
    dims[0] = cout;
    set(&t[1], TFQP_TYPE_INT8, 2, dims, 0);
    dims[1] = values ? 3 : 2;
    set(&t[2], TFQP_TYPE_INT32, 2, dims, 0);
    dims[0] = batch; dims[1] = depth;
    set(&output, TFQP_TYPE_INT32, 2, dims, 0);
    CHECK_EQ(run(op, &o, t, 3, data, &output, out, &e), TFQP_OK);
    for (b = 0; b < batch; ++b) {
      const void *px = values ? (const void *)(out + (size_t)b * cout)
                              : (const void *)((const tfqp_word *)out + (size_t)b * depth);
      for (co = 0; co < cout; ++co) {
        int64_t a = 0;
        for (ci = 0; ci < cin; ++ci) {
          a += (int64_t)(in8[b * cin + ci] - zp) * weights[co * cin + ci];
        }
        mismatches += check_int8_output(values, px, co, a);
      }
    }
    digest_bytes(out, output.bytes);
  }
  CHECK_EQ(mismatches, 0);
  {
    tfqp_op_options o;
    tfqp_tensor t[3], output;
    tfqp_error e;
    const void *data[3] = {in8, weights, transform};
    const int32_t in_dims[2] = {1, 66312}, w_dims[2] = {1, 66312}, t_dims[2] = {1, 2},
                  out_dims[2] = {1, 1};
    memset(&o, 0, sizeof o);
    o.fully_connected_int8.channels_in = 66312; /* K * 255 * 127 >= 2^31 */
    o.fully_connected_int8.present = 1u;
    set(&t[0], TFQP_TYPE_INT8, 2, in_dims, 0);
    set(&t[1], TFQP_TYPE_INT8, 2, w_dims, 0);
    set(&t[2], TFQP_TYPE_INT32, 2, t_dims, 0);
    set(&output, TFQP_TYPE_INT32, 2, out_dims, 0);
    CHECK_EQ(run(op, &o, t, 3, data, &output, out, &e), TFQP_ERROR_OPTION_VALUE);
  }
}

/* ---------------------------------------------------------------- binarize */

static void test_binarize(void) {
  const tfqp_op *op = op_named("TFQP_BINARIZE");
  long mismatches = 0;
  int32_t i;
  for (i = 0; i < 120; ++i) {
    tfqp_op_options o;
    tfqp_tensor t, output;
    tfqp_error e;
    const int int32_input = i % 2;
    const void *data[1];
    const int32_t rank = test_random_range(1, 4), zp = test_random_range(-128, 127);
    int32_t dims[4], pixels = 1, channels, k, c;
    for (k = 0; k < rank; ++k) dims[k] = test_random_range(1, 4);
    dims[rank - 1] = channels = test_random_range(1, 100);
    for (k = 0; k < rank - 1; ++k) pixels *= dims[k];
    memset(&o, 0, sizeof o);
    for (k = 0; k < pixels * channels; ++k) {
      in8[k] = (int8_t)(k % 7 == 0 ? zp : test_random_range(-128, 127));
      in32[k] = k % 7 == 0 ? 0 : (int32_t)test_random();
      if (k % 11 == 0) in32[k] = k % 2 ? -1 : INT32_MIN;
    }
    set(&t, int32_input ? TFQP_TYPE_INT32 : TFQP_TYPE_INT8, rank, dims, zp);
    data[0] = int32_input ? (const void *)in32 : (const void *)in8;
    dims[rank - 1] = TFQP_WORDS(channels);
    set(&output, TFQP_TYPE_INT32, rank, dims, 0);
    CHECK_EQ(run(op, &o, &t, 1, data, &output, out, &e), TFQP_OK);
    for (k = 0; k < pixels; ++k) {
      const tfqp_word *px = (const tfqp_word *)out + (size_t)k * TFQP_WORDS(channels);
      for (c = 0; c < TFQP_WORDS(channels) * 32; ++c) {
        const size_t at = (size_t)k * channels + c;
        const uint32_t bit = c >= channels ? 0u
                             : int32_input ? (uint32_t)(in32[at] < 0)
                                           : (uint32_t)(in8[at] < zp);
        mismatches += ((px[c / 32] >> (c % 32)) & 1u) != bit;
      }
    }
    digest_bytes(out, output.bytes);
    /* the output's shape follows the input's */
    dims[rank - 1] += 1;
    set(&output, TFQP_TYPE_INT32, rank, dims, 0);
    CHECK_EQ(op->prepare(&o, &t, 1, &output, (tfqp_op_params *)(void *)table,
                         (tfqp_op_buffers *)(void *)(table + 512), &e),
             TFQP_ERROR_TENSOR_SHAPE);
  }
  CHECK_EQ(mismatches, 0);
  {
    /* options: none, an empty map, or a map with a key (rejected) */
    /* what Python's flexbuffers.Dumps({}) and Dumps({"a": 7}) give */
    static const uint8_t empty_map[] = {0, 0, 1, 0, 0, 36, 1};
    static const uint8_t one_key[] = {97, 0, 1, 3, 1, 1, 1, 7, 4, 2, 36, 1};
    tfqp_op_options o;
    tfqp_error e;
    const tfqp_tensor *none = NULL;
    (void)none;
    CHECK_EQ(op->parse(NULL, 0, &o, &e), TFQP_OK);
    CHECK_EQ(op->parse(empty_map, sizeof empty_map, &o, &e), TFQP_OK);
    CHECK_EQ(op->parse(one_key, sizeof one_key, &o, &e), TFQP_ERROR_OPTIONS);
    CHECK(e.message != NULL && strstr(e.message, "unknown option key") != NULL);
  }
}

/* TFQP_UNPACK: every bit of a packed tensor (padding bits set on purpose: they
 * must be ignored) becomes the positive or negative code. */
static void test_unpack(void) {
  const tfqp_op *op = op_named("TFQP_UNPACK");
  long mismatches = 0;
  int32_t i;
  for (i = 0; i < 80; ++i) {
    tfqp_op_options o;
    tfqp_tensor t, output;
    tfqp_error e;
    const void *data[1];
    const int32_t rank = test_random_range(1, 4);
    int32_t dims[4], pixels = 1, channels, words, k, c;
    for (k = 0; k < rank; ++k) dims[k] = test_random_range(1, 4);
    channels = test_random_range(1, 100);
    words = TFQP_WORDS(channels);
    dims[rank - 1] = words;
    for (k = 0; k < rank - 1; ++k) pixels *= dims[k];
    for (k = 0; k < pixels * words; ++k) in32[k] = (int32_t)test_random();
    memset(&o, 0, sizeof o);
    o.unpack.channels = channels;
    o.unpack.positive = test_random_range(-128, 127);
    o.unpack.negative = test_random_range(-128, 127);
    o.unpack.present = TFQP_UNPACK_REQUIRED;
    set(&t, TFQP_TYPE_INT32, rank, dims, 0);
    data[0] = in32;
    dims[rank - 1] = channels;
    set(&output, TFQP_TYPE_INT8, rank, dims, 0);
    CHECK_EQ(run(op, &o, &t, 1, data, &output, signs, &e), TFQP_OK);
    for (k = 0; k < pixels; ++k) {
      for (c = 0; c < channels; ++c) {
        const uint32_t word = (uint32_t)in32[(size_t)k * words + c / 32];
        const int8_t expected =
            (int8_t)(((word >> (c % 32)) & 1u) ? o.unpack.negative : o.unpack.positive);
        mismatches += signs[(size_t)k * channels + c] != expected;
      }
    }
    digest_bytes(signs, output.bytes);
    /* a packed input of the wrong depth, an output of the wrong type */
    dims[rank - 1] = words + 1;
    set(&t, TFQP_TYPE_INT32, rank, dims, 0);
    dims[rank - 1] = channels;
    CHECK_EQ(op->prepare(&o, &t, 1, &output, (tfqp_op_params *)(void *)table,
                         (tfqp_op_buffers *)(void *)(table + 512), &e),
             TFQP_ERROR_TENSOR_SHAPE);
    dims[rank - 1] = words;
    set(&t, TFQP_TYPE_INT32, rank, dims, 0);
    dims[rank - 1] = channels;
    set(&output, TFQP_TYPE_INT32, rank, dims, 0);
    CHECK_EQ(op->prepare(&o, &t, 1, &output, (tfqp_op_params *)(void *)table,
                         (tfqp_op_buffers *)(void *)(table + 512), &e),
             TFQP_ERROR_TENSOR_TYPE);
  }
  CHECK_EQ(mismatches, 0);
  {
    tfqp_op_options o;
    tfqp_tensor t;
    tfqp_error e;
    const int32_t dims[2] = {1, 1};
    int32_t rank, out_dims[TFQP_MAX_RANK];
    memset(&o, 0, sizeof o);
    set(&t, TFQP_TYPE_INT32, 2, dims, 0);
    o.unpack.channels = 5;
    o.unpack.positive = 1;
    o.unpack.negative = 200; /* not an int8 code */
    o.unpack.present = TFQP_UNPACK_REQUIRED;
    CHECK_EQ(op->output_dims(&o, &t, 1, TFQP_TYPE_INT8, &rank, out_dims, &e),
             TFQP_ERROR_OPTION_VALUE);
    CHECK(strcmp(e.name, "negative") == 0 && e.value == 200);
    o.unpack.negative = -1;
    o.unpack.present = TFQP_UNPACK_REQUIRED & ~2u; /* positive missing */
    CHECK_EQ(op->output_dims(&o, &t, 1, TFQP_TYPE_INT8, &rank, out_dims, &e), TFQP_ERROR_OPTIONS);
    o.unpack.present = TFQP_UNPACK_REQUIRED;
    o.unpack.channels = 33; /* 2 words, the input has 1 */
    CHECK_EQ(op->output_dims(&o, &t, 1, TFQP_TYPE_INT8, &rank, out_dims, &e),
             TFQP_ERROR_TENSOR_SHAPE);
    o.unpack.channels = 6;
    o.unpack.group = 4; /* does not divide 6 */
    o.unpack.present = TFQP_UNPACK_REQUIRED | TFQP_UNPACK_GROUP;
    CHECK_EQ(op->output_dims(&o, &t, 1, TFQP_TYPE_INT8, &rank, out_dims, &e),
             TFQP_ERROR_OPTION_VALUE);
    CHECK(strcmp(e.name, "group") == 0);
  }
  {
    /* groups: 3 pixels of 5 channels flattened, one word each */
    tfqp_op_options o;
    tfqp_tensor t, output;
    tfqp_error e;
    const int32_t in_dims[2] = {2, 3}, out_dims[2] = {2, 15};
    const void *data[1];
    int32_t k;
    memset(&o, 0, sizeof o);
    o.unpack.channels = 15;
    o.unpack.group = 5;
    o.unpack.positive = 9;
    o.unpack.negative = -9;
    o.unpack.present = TFQP_UNPACK_REQUIRED | TFQP_UNPACK_GROUP;
    for (k = 0; k < 6; ++k) in32[k] = (int32_t)(0x5A5A5A40u | (uint32_t)k); /* high bits ignored */
    set(&t, TFQP_TYPE_INT32, 2, in_dims, 0);
    set(&output, TFQP_TYPE_INT8, 2, out_dims, 0);
    data[0] = in32;
    CHECK_EQ(run(op, &o, &t, 1, data, &output, signs, &e), TFQP_OK);
    for (k = 0; k < 30; ++k) {
      const uint32_t word = (uint32_t)in32[k / 5];
      CHECK_EQ(signs[k], ((word >> (k % 5)) & 1u) ? -9 : 9);
    }
  }
}

/* The value output's overflow bound: |M| * max|acc| < 2^62. */
static void test_value_bound(void) {
  int32_t row[3] = {INT32_MIN, 0, 0}, t[3];
  tfqp_error e;
  CHECK_EQ(tfqp_value_table(row, 1, 1, (int64_t)1 << 30, t, &e), TFQP_OK);     /* 2^61 */
  CHECK_EQ(tfqp_value_table(row, 1, 1, (int64_t)1 << 31, t, &e), TFQP_ERROR_TENSOR_DATA);
  row[0] = INT32_MAX;
  CHECK_EQ(tfqp_value_table(row, 1, 1, ((int64_t)1 << 31) + 1, t, &e), TFQP_OK); /* 2^62 - 1 */
  CHECK_EQ(tfqp_value_table(row, 1, 1, ((int64_t)1 << 31) + 2, t, &e), TFQP_ERROR_TENSOR_DATA);
  /* the floor shift: -3 >> 1 = -2, with rounding (-3 + 1) >> 1 = -1 */
  CHECK_EQ(tfqp_value_output(-3, 1, 1, 0), -1);
  CHECK_EQ(tfqp_value_output(-5, 1, 2, 0), -1);   /* floor((-5 + 2) / 4) = -1 */
  CHECK_EQ(tfqp_value_output(-6, 1, 2, 0), -1);   /* floor(-4 / 4) */
  CHECK_EQ(tfqp_value_output(-7, 1, 2, 0), -2);   /* floor(-5 / 4) */
  CHECK_EQ(tfqp_value_output(1000, INT32_MAX, 0, INT32_MAX), INT32_MAX);
  CHECK_EQ(tfqp_value_output(1000, INT32_MIN, 0, 0), INT32_MIN);
}

void test_new_ops(void) {
  test_maxpool_or_mask();
  test_conv2d_int8();
  test_conv2d_int8_validation();
  test_fully_connected_int8();
  test_binarize();
  test_unpack();
  test_value_bound();
}
