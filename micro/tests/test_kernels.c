/* Kernels on hand-checkable cases, then on random cases against a direct
 * per-tap reference written from the contract (+-1 sums, TFLite's padding,
 * gemmlowp's requantization). Every output is folded into the run digest. */
#include <string.h>

#include "check.h"
#include "tfqp/bconv2d.h"
#include "tfqp/bfully_connected.h"
#include "tfqp/bmaxpool2d.h"
#include "tfqp/packing.h"

/* Buffers for the largest random case (static: no heap on bare metal). */
#define MAX_BATCH 2
#define MAX_SIZE 10
#define MAX_CIN 100
#define MAX_COUT 40
#define MAX_K 5
#define MAX_IN_BYTES (MAX_BATCH * MAX_SIZE * MAX_SIZE * MAX_CIN)
#define MAX_FILTER_WORDS (MAX_COUT * MAX_K * MAX_K * 4)
#define MAX_OUT (MAX_BATCH * MAX_SIZE * MAX_SIZE * MAX_COUT)
/* per-channel constants, region sums and (vector builds) the repacked filter,
 * channels padded to 48 */
#define MAX_TABLE_WORDS (4 * 48 + MAX_SIZE * MAX_SIZE * 48 + MAX_FILTER_WORDS / MAX_COUT * 48)

static int8_t in_signs[MAX_IN_BYTES];   /* +1 / -1 per input value */
static int8_t in_int8[MAX_IN_BYTES];
static tfqp_word in_packed[MAX_IN_BYTES / 8 + 64];
static int8_t filter_signs[MAX_COUT * MAX_K * MAX_K * MAX_CIN];
static tfqp_word filter_packed[MAX_FILTER_WORDS];
static int32_t transform[MAX_COUT * 4 + 4];
static int32_t table[MAX_TABLE_WORDS];
static tfqp_word scratch[MAX_IN_BYTES / 8 + 64];
static int8_t out_int8[MAX_OUT];
static int32_t out_values[MAX_OUT];
static tfqp_word out_packed[MAX_OUT / 8 + 64];

static void set(tfqp_tensor *t, tfqp_type type, int32_t rank, const int32_t *dims, int32_t zp) {
  size_t count = 1;
  int32_t i;
  for (i = 0; i < rank; ++i) count *= (size_t)dims[i];
  tfqp_tensor_init(t, type, rank, dims, count * (type == TFQP_TYPE_INT8 ? 1 : 4), zp);
}

/* Packs +-1 signs (one per channel) into words; optional garbage padding bits. */
static void pack_signs(const int8_t *signs, int32_t pixels, int32_t channels, int garbage,
                       tfqp_word *out) {
  const int32_t words = TFQP_WORDS(channels);
  int32_t p, c;
  for (p = 0; p < pixels; ++p) {
    tfqp_word *o = out + (size_t)p * words;
    for (c = 0; c < words; ++c) o[c] = 0;
    for (c = 0; c < channels; ++c) {
      if (signs[(size_t)p * channels + c] < 0) o[c / 32] |= 1u << (c % 32);
    }
    if (garbage && channels % 32) o[words - 1] |= test_random() & ~((1u << (channels % 32)) - 1u);
  }
}

/* ------------------------------------------------------------ reference */

static int32_t ref_srdhm(int32_t a, int32_t b) {
  int64_t ab, nudge;
  if (a == INT32_MIN && b == INT32_MIN) return INT32_MAX;
  ab = (int64_t)a * b;
  nudge = ab >= 0 ? (1 << 30) : (1 - (1 << 30));
  return (int32_t)((ab + nudge) / ((int64_t)1 << 31));
}

static int32_t ref_rounding_divide(int32_t x, int32_t e) {
  /* x / 2^e rounded to nearest, ties away from zero */
  const int64_t d = (int64_t)1 << e;
  int64_t q = (x >= 0 ? (int64_t)x : -(int64_t)x) / d;
  const int64_t r = (x >= 0 ? (int64_t)x : -(int64_t)x) % d;
  if (e > 0 && 2 * r >= d) ++q;
  return (int32_t)(x >= 0 ? q : -q);
}

static int32_t ref_requantize(int64_t acc, int32_t multiplier, int32_t shift) {
  const int32_t left = shift > 0 ? shift : 0;
  const int32_t right = shift > 0 ? 0 : -shift;
  const int64_t wide = (int64_t)(int32_t)acc * ((int64_t)1 << left);
  const int32_t wrapped = (int32_t)(uint32_t)(uint64_t)wide;
  return ref_rounding_divide(ref_srdhm(wrapped, multiplier), right);
}

static int8_t ref_int8(int64_t d, int64_t s, const int32_t *row, int32_t p, int32_t n,
                       int32_t zero_point, int32_t act_min, int32_t act_max) {
  const int64_t acc = (int64_t)row[0] * (((int64_t)p + n) * s + ((int64_t)p - n) * d) / 2 + row[1];
  int32_t v = zero_point + ref_requantize(acc, row[2], row[3]);
  CHECK(acc >= INT32_MIN && acc <= INT32_MAX);
  if (v < act_min) v = act_min;
  if (v > act_max) v = act_max;
  return (int8_t)v;
}

static void ref_axis(int32_t in, int32_t k, int32_t s, int32_t d, int32_t padding, int32_t *out,
                     int32_t *pad) {
  const int32_t effective = (k - 1) * d + 1;
  int32_t total;
  *out = padding == TFQP_PADDING_SAME ? (in + s - 1) / s : (in - effective) / s + 1;
  total = (*out - 1) * s + effective - in;
  *pad = total > 0 ? total / 2 : 0;
}

typedef struct {
  int32_t batch, h, w, cin, cout, kh, kw, sh, sw, dh, dw, padding, pad_value;
  int32_t packed_in, packed_out, zp_in, zp_out, p, n, act_min, act_max;
  int32_t values_out; /* int32_output 1: int32 values, transform [Cout, 3] */
} conv_config;

/* The int32 value output by its definition, with floor division instead of a
 * shift: saturate(B + floor((M * D + 2^(s-1)) / 2^s)). */
static int32_t ref_value(int64_t d, const int32_t *row) {
  const int64_t divisor = (int64_t)1 << row[1];
  const int64_t numerator = (int64_t)row[0] * d + (row[1] > 0 ? divisor / 2 : 0);
  int64_t quotient = numerator / divisor;
  int64_t v;
  if (numerator % divisor != 0 && numerator < 0) --quotient; /* floor */
  v = quotient + row[2];
  return v > INT32_MAX ? INT32_MAX : v < INT32_MIN ? INT32_MIN : (int32_t)v;
}

/* Rows (M, s, B) that make values of every size, saturated ones included. */
static void fill_value_transform(int32_t cout, int32_t taps) {
  int32_t co;
  for (co = 0; co < cout; ++co) {
    int32_t *row = transform + 3 * co;
    const int32_t kind = test_random_range(0, 3);
    row[1] = test_random_range(0, 40);
    /* |M| * K < 2^62 holds for any int32 M when K < 2^31 */
    row[0] = kind == 0 ? (int32_t)test_random() : test_random_range(-100000, 100000);
    if (kind == 3) row[0] = INT32_MIN;
    row[2] = kind == 1 ? (int32_t)test_random() : test_random_range(-1000, 1000);
    (void)taps;
  }
}

/* D and S of output (b, oy, ox, co) by definition, tap by tap. */
static void ref_conv_sums(const conv_config *c, int32_t b, int32_t oy, int32_t ox, int32_t co,
                          int32_t pt, int32_t pl, int64_t *d, int64_t *s) {
  int32_t ky, kx, ci;
  *d = 0;
  *s = 0;
  for (ky = 0; ky < c->kh; ++ky) {
    for (kx = 0; kx < c->kw; ++kx) {
      const int32_t iy = oy * c->sh - pt + ky * c->dh;
      const int32_t ix = ox * c->sw - pl + kx * c->dw;
      const int inside = iy >= 0 && iy < c->h && ix >= 0 && ix < c->w;
      if (!inside && c->pad_value == 0) continue;
      for (ci = 0; ci < c->cin; ++ci) {
        const int32_t w = filter_signs[(((size_t)co * c->kh + ky) * c->kw + kx) * c->cin + ci];
        const int32_t a =
            inside ? in_signs[(((size_t)b * c->h + iy) * c->w + ix) * c->cin + ci] : 1;
        *d += w * a;
        *s += w;
      }
    }
  }
}

/* Runs the kernel through parse-free prepare/init/eval and compares every
 * output with the reference. Returns the number of mismatches. */
static long run_conv(const conv_config *c) {
  tfqp_bconv2d_options o;
  tfqp_tensor input, filter, tr, output;
  tfqp_bconv2d_params p;
  tfqp_error e;
  int32_t oh, ow, pt, pl, b, y, x, co;
  const int32_t in_words = TFQP_WORDS(c->cin);
  const int32_t pixels = c->batch * c->h * c->w;
  long mismatches = 0;
  int32_t dims[4];
  ref_axis(c->h, c->kh, c->sh, c->dh, c->padding, &oh, &pt);
  ref_axis(c->w, c->kw, c->sw, c->dw, c->padding, &ow, &pl);
  memset(&o, 0, sizeof o);
  o.channels_in = c->cin;
  o.filter_height = c->kh;
  o.filter_width = c->kw;
  o.stride_height = c->sh;
  o.stride_width = c->sw;
  o.dilation_height_factor = c->dh;
  o.dilation_width_factor = c->dw;
  o.padding = c->padding;
  o.pad_value = c->pad_value;
  o.input_pos = c->p;
  o.input_neg = c->n;
  o.act_min = c->act_min;
  o.act_max = c->act_max;
  o.present = TFQP_BCONV2D_REQUIRED | (c->packed_out ? 0u : (uint32_t)TFQP_BCONV2D_INT8_OUTPUT);
  if (c->values_out) {
    o.int32_output = 1;
    o.present = TFQP_BCONV2D_REQUIRED | TFQP_BCONV2D_INT32_OUTPUT_KEY;
  }
  dims[0] = c->batch;
  dims[1] = c->h;
  dims[2] = c->w;
  dims[3] = c->packed_in ? in_words : c->cin;
  set(&input, c->packed_in ? TFQP_TYPE_INT32 : TFQP_TYPE_INT8, 4, dims, c->zp_in);
  dims[0] = c->cout;
  dims[1] = c->kh;
  dims[2] = c->kw;
  dims[3] = in_words;
  set(&filter, TFQP_TYPE_INT32, 4, dims, 0);
  dims[0] = c->cout;
  dims[1] = c->values_out ? 3 : c->packed_out ? 2 : 4;
  set(&tr, TFQP_TYPE_INT32, 2, dims, 0);
  dims[0] = c->batch;
  dims[1] = oh;
  dims[2] = ow;
  dims[3] = c->packed_out && !c->values_out ? TFQP_WORDS(c->cout) : c->cout;
  set(&output, c->packed_out || c->values_out ? TFQP_TYPE_INT32 : TFQP_TYPE_INT8, 4, dims,
      c->values_out ? 0 : c->zp_out);

  pack_signs(filter_signs, c->cout * c->kh * c->kw, c->cin, 0, filter_packed);
  pack_signs(in_signs, pixels, c->cin, 1, in_packed);
  CHECK_EQ(tfqp_bconv2d_prepare(&o, &input, &filter, &tr, &output, &p, &e), TFQP_OK);
  CHECK(p.table_bytes <= sizeof table && p.scratch_bytes <= sizeof scratch);
  CHECK_EQ(tfqp_bconv2d_init_table(&p, filter_packed, transform, table, sizeof table, &e), TFQP_OK);
  tfqp_bconv2d_eval(&p, table, c->packed_in ? (const void *)in_packed : (const void *)in_int8,
                    filter_packed,
                    c->values_out   ? (void *)out_values
                    : c->packed_out ? (void *)out_packed
                                    : (void *)out_int8,
                    scratch);
  for (b = 0; b < c->batch; ++b) {
    for (y = 0; y < oh; ++y) {
      for (x = 0; x < ow; ++x) {
        const size_t pixel = ((size_t)b * oh + y) * ow + x;
        for (co = 0; co < c->cout; ++co) {
          int64_t d, s;
          ref_conv_sums(c, b, y, x, co, pt, pl, &d, &s);
          if (c->values_out) {
            mismatches += out_values[pixel * c->cout + co] != ref_value(d, transform + 3 * co);
          } else if (c->packed_out) {
            const int32_t *row = transform + 2 * co;
            const uint32_t bit = (uint32_t)(row[0] * d < row[1]);
            const tfqp_word word = out_packed[pixel * TFQP_WORDS(c->cout) + co / 32];
            mismatches += ((word >> (co % 32)) & 1u) != bit;
          } else {
            mismatches += out_int8[pixel * c->cout + co] !=
                          ref_int8(d, s, transform + 4 * co, c->p, c->n, c->zp_out, c->act_min,
                                   c->act_max);
          }
        }
        if (c->packed_out && !c->values_out && c->cout % 32) {
          const tfqp_word last = out_packed[pixel * TFQP_WORDS(c->cout) + TFQP_WORDS(c->cout) - 1];
          mismatches += (last & ~((1u << (c->cout % 32)) - 1u)) != 0; /* padding bits 0 */
        }
      }
    }
  }
  if (c->values_out) {
    digest_bytes(out_values, (size_t)c->batch * oh * ow * c->cout * 4);
  } else if (c->packed_out) {
    digest_bytes(out_packed, (size_t)c->batch * oh * ow * TFQP_WORDS(c->cout) * 4);
  } else {
    digest_bytes(out_int8, (size_t)c->batch * oh * ow * c->cout);
  }
  return mismatches;
}

static void fill_random_transform(const conv_config *c, int32_t taps) {
  int32_t co;
  for (co = 0; co < c->cout; ++co) {
    if (c->packed_out) {
      transform[2 * co] = (test_random() & 1) ? 1 : -1;
      transform[2 * co + 1] = test_random_range(-taps, taps);
    } else {
      /* scale so that outputs spread over int8: |acc| ~ |W| * 255 * sqrt(K),
       * requantized by about 2^shift */
      int64_t magnitude;
      int32_t root = 1, shift = 0;
      while ((root + 1) * (root + 1) <= taps) ++root;
      transform[4 * co] = test_random_range(-127, 127);
      transform[4 * co + 1] = test_random_range(-3000, 3000);
      transform[4 * co + 2] = (int32_t)((1u << 30) + (test_random() >> 2));
      magnitude = (int64_t)((transform[4 * co] < 0 ? -transform[4 * co] : transform[4 * co]) + 1) *
                  255 * root;
      while (magnitude > 64 && shift > -30) {
        magnitude /= 2;
        --shift;
      }
      transform[4 * co + 3] = shift + test_random_range(-1, 1);
    }
  }
}

static void test_conv_random(void) {
  int32_t i;
  long mismatches = 0;
  for (i = 0; i < 400; ++i) {
    conv_config c;
    int32_t j, count;
    memset(&c, 0, sizeof c);
    c.batch = test_random_range(1, MAX_BATCH);
    c.h = test_random_range(1, MAX_SIZE);
    c.w = test_random_range(1, MAX_SIZE);
    c.cin = (i % 4 == 0) ? 32 * test_random_range(1, 3) : test_random_range(1, MAX_CIN);
    c.cout = test_random_range(1, MAX_COUT);
    c.kh = test_random_range(1, MAX_K);
    c.kw = test_random_range(1, MAX_K);
    c.sh = test_random_range(1, 3);
    c.sw = test_random_range(1, 3);
    c.dh = test_random_range(1, 3);
    c.dw = (i % 3 == 0) ? 1 : test_random_range(1, 3);
    c.padding = (i % 5 == 0) ? TFQP_PADDING_VALID : TFQP_PADDING_SAME;
    c.pad_value = test_random_range(0, 1);
    c.packed_in = i % 2;
    c.packed_out = (i / 2) % 2;
    c.zp_in = test_random_range(-20, 20);
    c.zp_out = test_random_range(-10, 10);
    c.p = test_random_range(0, 255);
    c.n = test_random_range(-255, -1);
    c.act_min = (i % 7 == 0) ? c.zp_out : -128;
    c.act_max = 127;
    if (c.padding == TFQP_PADDING_VALID &&
        ((c.kh - 1) * c.dh + 1 > c.h || (c.kw - 1) * c.dw + 1 > c.w)) {
      c.padding = TFQP_PADDING_SAME;
    }
    count = c.batch * c.h * c.w * c.cin;
    for (j = 0; j < count; ++j) {
      int32_t q = test_random_range(-128, 127);
      if (test_random() % 10 == 0) q = c.zp_in; /* sign(0) = +1 */
      in_int8[j] = (int8_t)q;
      in_signs[j] = (int8_t)(c.packed_in ? ((test_random() & 1) ? 1 : -1) : (q < c.zp_in ? -1 : 1));
    }
    count = c.cout * c.kh * c.kw * c.cin;
    for (j = 0; j < count; ++j) filter_signs[j] = (int8_t)((test_random() & 1) ? 1 : -1);
    fill_random_transform(&c, c.kh * c.kw * c.cin);
    mismatches += run_conv(&c);
  }
  CHECK_EQ(mismatches, 0);
}

/* int32 value output (int32_output 1) on random geometries and formats. */
static void test_conv_values_random(void) {
  int32_t i;
  long mismatches = 0;
  for (i = 0; i < 150; ++i) {
    conv_config c;
    int32_t j, count;
    memset(&c, 0, sizeof c);
    c.values_out = 1;
    c.batch = test_random_range(1, MAX_BATCH);
    c.h = test_random_range(1, MAX_SIZE);
    c.w = test_random_range(1, MAX_SIZE);
    c.cin = (i % 4 == 0) ? 32 * test_random_range(1, 3) : test_random_range(1, MAX_CIN);
    c.cout = test_random_range(1, MAX_COUT);
    c.kh = test_random_range(1, MAX_K);
    c.kw = test_random_range(1, MAX_K);
    c.sh = test_random_range(1, 3);
    c.sw = test_random_range(1, 3);
    c.dh = test_random_range(1, 3);
    c.dw = (i % 3 == 0) ? 1 : test_random_range(1, 3);
    c.padding = (i % 5 == 0) ? TFQP_PADDING_VALID : TFQP_PADDING_SAME;
    c.pad_value = test_random_range(0, 1);
    c.packed_in = i % 2;
    c.zp_in = test_random_range(-20, 20);
    if (c.padding == TFQP_PADDING_VALID &&
        ((c.kh - 1) * c.dh + 1 > c.h || (c.kw - 1) * c.dw + 1 > c.w)) {
      c.padding = TFQP_PADDING_SAME;
    }
    count = c.batch * c.h * c.w * c.cin;
    for (j = 0; j < count; ++j) {
      int32_t q = test_random_range(-128, 127);
      if (test_random() % 10 == 0) q = c.zp_in;
      in_int8[j] = (int8_t)q;
      in_signs[j] = (int8_t)(c.packed_in ? ((test_random() & 1) ? 1 : -1) : (q < c.zp_in ? -1 : 1));
    }
    count = c.cout * c.kh * c.kw * c.cin;
    for (j = 0; j < count; ++j) filter_signs[j] = (int8_t)((test_random() & 1) ? 1 : -1);
    fill_value_transform(c.cout, c.kh * c.kw * c.cin);
    mismatches += run_conv(&c);
  }
  CHECK_EQ(mismatches, 0);
}

/* Value-transform validation: shift in [0, 40], |M| * K < 2^62. */
static void test_values_validation(void) {
  tfqp_bconv2d_options o;
  tfqp_tensor input, filter, tr, output;
  tfqp_bconv2d_params p;
  tfqp_error e;
  int32_t dims[4] = {1, 4, 4, 1};
  memset(&o, 0, sizeof o);
  o.channels_in = 32;
  o.filter_height = o.filter_width = 1;
  o.stride_height = o.stride_width = 1;
  o.dilation_height_factor = o.dilation_width_factor = 1;
  o.int32_output = 1;
  o.present = TFQP_BCONV2D_REQUIRED | TFQP_BCONV2D_INT32_OUTPUT_KEY;
  set(&input, TFQP_TYPE_INT32, 4, dims, 0);
  {
    const int32_t f[4] = {2, 1, 1, 1}, t[2] = {2, 3}, out[4] = {1, 4, 4, 2};
    set(&filter, TFQP_TYPE_INT32, 4, f, 0);
    set(&tr, TFQP_TYPE_INT32, 2, t, 0);
    set(&output, TFQP_TYPE_INT32, 4, out, 0);
  }
  CHECK_EQ(tfqp_bconv2d_prepare(&o, &input, &filter, &tr, &output, &p, &e), TFQP_OK);
  memset(filter_packed, 0, 8);
  transform[0] = 5; transform[1] = 40; transform[2] = 0;
  transform[3] = INT32_MIN; transform[4] = 0; transform[5] = 7;
  CHECK_EQ(tfqp_bconv2d_init_table(&p, filter_packed, transform, table, sizeof table, &e), TFQP_OK);
  transform[1] = 41;
  CHECK_EQ(tfqp_bconv2d_init_table(&p, filter_packed, transform, table, sizeof table, &e),
           TFQP_ERROR_TENSOR_DATA);
  CHECK_EQ(e.value, 41);
  transform[1] = -1;
  CHECK_EQ(tfqp_bconv2d_init_table(&p, filter_packed, transform, table, sizeof table, &e),
           TFQP_ERROR_TENSOR_DATA);
  /* the output must be int32 of depth Cout, the transform [Cout, 3] */
  output.type = TFQP_TYPE_INT8;
  output.bytes = 32;
  CHECK_EQ(tfqp_bconv2d_prepare(&o, &input, &filter, &tr, &output, &p, &e), TFQP_ERROR_TENSOR_TYPE);
  {
    const int32_t words[4] = {1, 4, 4, 1}, out[4] = {1, 4, 4, 2}, t2[2] = {2, 2};
    set(&output, TFQP_TYPE_INT32, 4, words, 0); /* the packed depth */
    CHECK_EQ(tfqp_bconv2d_prepare(&o, &input, &filter, &tr, &output, &p, &e),
             TFQP_ERROR_TENSOR_SHAPE);
    set(&output, TFQP_TYPE_INT32, 4, out, 0);
    set(&tr, TFQP_TYPE_INT32, 2, t2, 0);
    CHECK_EQ(tfqp_bconv2d_prepare(&o, &input, &filter, &tr, &output, &p, &e),
             TFQP_ERROR_TENSOR_SHAPE);
  }
  o.int32_output = 2;
  CHECK_EQ(tfqp_bconv2d_prepare(&o, &input, &filter, &tr, &output, &p, &e),
           TFQP_ERROR_OPTION_VALUE);
}

/* 3x3 image, 3x3 filter of +1, W = 1: with multiplier 2^30 and shift 1 the
 * requantization is the identity, so the output is the accumulator. */
static void test_conv_by_hand(void) {
  conv_config c;
  static const int8_t d_all_plus[9] = {4, 6, 4, 6, 9, 6, 4, 6, 4};
  int32_t i;
  memset(&c, 0, sizeof c);
  c.batch = 1;
  c.h = c.w = 3;
  c.cin = 1;
  c.cout = 1;
  c.kh = c.kw = 3;
  c.sh = c.sw = c.dh = c.dw = 1;
  c.packed_in = 1;
  c.p = 1;
  c.n = -1;
  c.act_min = -128;
  c.act_max = 127;
  for (i = 0; i < 9; ++i) {
    in_signs[i] = 1;
    filter_signs[i] = 1;
  }
  transform[0] = 1;
  transform[1] = 0;
  transform[2] = 1 << 30;
  transform[3] = 1;
  CHECK_EQ(run_conv(&c), 0);
  for (i = 0; i < 9; ++i) CHECK_EQ(out_int8[i], d_all_plus[i]); /* valid taps */
  c.pad_value = 1;
  CHECK_EQ(run_conv(&c), 0);
  for (i = 0; i < 9; ++i) CHECK_EQ(out_int8[i], 9);
  /* centre input -1 lies in every window; P = 3, N = -2: acc = 3 (n - 1) - 2 */
  c.pad_value = 0;
  c.p = 3;
  c.n = -2;
  in_signs[4] = -1;
  CHECK_EQ(run_conv(&c), 0);
  for (i = 0; i < 9; ++i) CHECK_EQ(out_int8[i], 3 * (d_all_plus[i] - 1) - 2);
  /* bias 10, zero point -3, act_max 20 clamps the centre (22 + 10 - 3) */
  transform[1] = 10;
  c.zp_out = -3;
  c.act_max = 20;
  CHECK_EQ(run_conv(&c), 0);
  CHECK_EQ(out_int8[0], 3 * 3 - 2 + 10 - 3);
  CHECK_EQ(out_int8[4], 20);
  /* packed output: bit = D < 5 with D = n - 2 = {2, 4, 7} */
  c.packed_out = 1;
  transform[0] = 1;
  transform[1] = 5;
  CHECK_EQ(run_conv(&c), 0);
  for (i = 0; i < 9; ++i) CHECK_EQ(out_packed[i], i == 4 ? 0u : 1u);
  /* 5x5 image, 3x3 filter with dilation 2, SAME (padding 2 each side): valid
   * taps per axis r = {2, 2, 3, 2, 2}, D = r[y] * r[x] */
  c.packed_out = 0;
  c.h = c.w = 5;
  c.dh = c.dw = 2;
  c.p = 1;
  c.n = -1;
  c.zp_out = 0;
  c.act_max = 127;
  for (i = 0; i < 25; ++i) in_signs[i] = 1;
  transform[0] = 1;
  transform[1] = 0;
  transform[2] = 1 << 30;
  transform[3] = 1;
  CHECK_EQ(run_conv(&c), 0);
  {
    static const int8_t r[5] = {2, 2, 3, 2, 2};
    for (i = 0; i < 25; ++i) CHECK_EQ(out_int8[i], r[i / 5] * r[i % 5]);
  }
}

/* ------------------------------------------------------------- fully connected */

static long run_fc(int32_t batch, int32_t cin, int32_t cout, int packed_in, int packed_out,
                   int32_t zp_in, int32_t p, int32_t n, int32_t zp_out) {
  tfqp_bfully_connected_options o;
  tfqp_tensor input, weights, tr, output;
  tfqp_bfully_connected_params prm;
  tfqp_error e;
  int32_t dims[2], b, co, ci;
  long mismatches = 0;
  memset(&o, 0, sizeof o);
  o.channels_in = cin;
  o.input_pos = p;
  o.input_neg = n;
  o.act_min = -128;
  o.act_max = 127;
  o.present = TFQP_BFC_REQUIRED | (packed_out ? 0u : (uint32_t)TFQP_BFC_INT8_OUTPUT);
  dims[0] = batch;
  dims[1] = packed_in ? TFQP_WORDS(cin) : cin;
  set(&input, packed_in ? TFQP_TYPE_INT32 : TFQP_TYPE_INT8, 2, dims, zp_in);
  dims[0] = cout;
  dims[1] = TFQP_WORDS(cin);
  set(&weights, TFQP_TYPE_INT32, 2, dims, 0);
  dims[1] = packed_out ? 2 : 4;
  set(&tr, TFQP_TYPE_INT32, 2, dims, 0);
  dims[0] = batch;
  dims[1] = packed_out ? TFQP_WORDS(cout) : cout;
  set(&output, packed_out ? TFQP_TYPE_INT32 : TFQP_TYPE_INT8, 2, dims, zp_out);
  pack_signs(filter_signs, cout, cin, 0, filter_packed);
  pack_signs(in_signs, batch, cin, 1, in_packed);
  CHECK_EQ(tfqp_bfully_connected_prepare(&o, &input, &weights, &tr, &output, &prm, &e), TFQP_OK);
  CHECK_EQ(tfqp_bfully_connected_init_table(&prm, filter_packed, transform, table, sizeof table, &e),
           TFQP_OK);
  tfqp_bfully_connected_eval(&prm, table, packed_in ? (const void *)in_packed : (const void *)in_int8,
                             filter_packed, packed_out ? (void *)out_packed : (void *)out_int8,
                             scratch);
  for (b = 0; b < batch; ++b) {
    for (co = 0; co < cout; ++co) {
      int64_t d = 0, s = 0;
      for (ci = 0; ci < cin; ++ci) {
        d += filter_signs[co * cin + ci] * in_signs[b * cin + ci];
        s += filter_signs[co * cin + ci];
      }
      if (packed_out) {
        const uint32_t bit = (uint32_t)(transform[2 * co] * d < transform[2 * co + 1]);
        mismatches += ((out_packed[b * TFQP_WORDS(cout) + co / 32] >> (co % 32)) & 1u) != bit;
      } else {
        mismatches += out_int8[b * cout + co] !=
                      ref_int8(d, s, transform + 4 * co, p, n, zp_out, -128, 127);
      }
    }
  }
  digest_bytes(packed_out ? (const void *)out_packed : (const void *)out_int8,
               packed_out ? (size_t)batch * TFQP_WORDS(cout) * 4 : (size_t)batch * cout);
  return mismatches;
}

/* TFQP_BFULLY_CONNECTED with int32_output 1. */
static long run_fc_values(int32_t batch, int32_t cin, int32_t cout, int packed_in,
                          int32_t zp_in) {
  tfqp_bfully_connected_options o;
  tfqp_tensor input, weights, tr, output;
  tfqp_bfully_connected_params prm;
  tfqp_error e;
  int32_t dims[2], b, co, ci;
  long mismatches = 0;
  memset(&o, 0, sizeof o);
  o.channels_in = cin;
  o.int32_output = 1;
  o.present = TFQP_BFC_REQUIRED | TFQP_BFC_INT32_OUTPUT_KEY;
  dims[0] = batch;
  dims[1] = packed_in ? TFQP_WORDS(cin) : cin;
  set(&input, packed_in ? TFQP_TYPE_INT32 : TFQP_TYPE_INT8, 2, dims, zp_in);
  dims[0] = cout;
  dims[1] = TFQP_WORDS(cin);
  set(&weights, TFQP_TYPE_INT32, 2, dims, 0);
  dims[1] = 3;
  set(&tr, TFQP_TYPE_INT32, 2, dims, 0);
  dims[0] = batch;
  dims[1] = cout;
  set(&output, TFQP_TYPE_INT32, 2, dims, 0);
  pack_signs(filter_signs, cout, cin, 0, filter_packed);
  pack_signs(in_signs, batch, cin, 1, in_packed);
  CHECK_EQ(tfqp_bfully_connected_prepare(&o, &input, &weights, &tr, &output, &prm, &e), TFQP_OK);
  CHECK_EQ(tfqp_bfully_connected_init_table(&prm, filter_packed, transform, table, sizeof table, &e),
           TFQP_OK);
  tfqp_bfully_connected_eval(&prm, table, packed_in ? (const void *)in_packed : (const void *)in_int8,
                             filter_packed, out_values, scratch);
  for (b = 0; b < batch; ++b) {
    for (co = 0; co < cout; ++co) {
      int64_t d = 0;
      for (ci = 0; ci < cin; ++ci) d += filter_signs[co * cin + ci] * in_signs[b * cin + ci];
      mismatches += out_values[b * cout + co] != ref_value(d, transform + 3 * co);
    }
  }
  digest_bytes(out_values, (size_t)batch * cout * 4);
  return mismatches;
}

static void test_fc_values(void) {
  long mismatches = 0;
  int32_t i, j;
  for (i = 0; i < 100; ++i) {
    const int32_t batch = test_random_range(1, 3);
    const int32_t cin = (i % 3 == 0) ? 32 * test_random_range(1, 3) : test_random_range(1, MAX_CIN);
    const int32_t cout = test_random_range(1, MAX_COUT);
    const int packed_in = i % 2;
    const int32_t zp_in = test_random_range(-5, 5);
    for (j = 0; j < batch * cin; ++j) {
      const int32_t q = test_random_range(-128, 127);
      in_int8[j] = (int8_t)q;
      in_signs[j] = (int8_t)(packed_in ? ((test_random() & 1) ? 1 : -1) : (q < zp_in ? -1 : 1));
    }
    for (j = 0; j < cout * cin; ++j) filter_signs[j] = (int8_t)((test_random() & 1) ? 1 : -1);
    fill_value_transform(cout, cin);
    mismatches += run_fc_values(batch, cin, cout, packed_in, zp_in);
  }
  CHECK_EQ(mismatches, 0);
}

static void test_fc(void) {
  /* by hand: input codes {5, -7, 0} with zero point 0 -> {+1, -1, +1} */
  static const int8_t rows[6] = {1, 1, 1, -1, 1, -1};
  long mismatches = 0;
  int32_t i;
  in_int8[0] = 5;
  in_int8[1] = -7;
  in_int8[2] = 0;
  in_signs[0] = 1;
  in_signs[1] = -1;
  in_signs[2] = 1;
  memcpy(filter_signs, rows, sizeof rows);
  for (i = 0; i < 2; ++i) {
    transform[4 * i] = 1;
    transform[4 * i + 1] = 10;
    transform[4 * i + 2] = 1 << 30;
    transform[4 * i + 3] = 1;
  }
  CHECK_EQ(run_fc(1, 3, 2, 0, 0, 0, 1, -1, 0), 0);
  CHECK_EQ(out_int8[0], 1 + 10);  /* D = 1 - 1 + 1 */
  CHECK_EQ(out_int8[1], -3 + 10); /* D = -1 - 1 - 1 */
  for (i = 0; i < 200; ++i) {
    const int32_t batch = test_random_range(1, 3);
    const int32_t cin = (i % 3 == 0) ? 32 * test_random_range(1, 3) : test_random_range(1, MAX_CIN);
    const int32_t cout = test_random_range(1, MAX_COUT);
    const int packed_in = i % 2, packed_out = (i / 2) % 2;
    const int32_t zp_in = test_random_range(-5, 5);
    conv_config c;
    int32_t j;
    for (j = 0; j < batch * cin; ++j) {
      const int32_t q = test_random_range(-128, 127);
      in_int8[j] = (int8_t)q;
      in_signs[j] = (int8_t)(packed_in ? ((test_random() & 1) ? 1 : -1) : (q < zp_in ? -1 : 1));
    }
    for (j = 0; j < cout * cin; ++j) filter_signs[j] = (int8_t)((test_random() & 1) ? 1 : -1);
    memset(&c, 0, sizeof c);
    c.cout = cout;
    c.packed_out = packed_out;
    fill_random_transform(&c, cin);
    mismatches += run_fc(batch, cin, cout, packed_in, packed_out, zp_in, test_random_range(0, 255),
                         test_random_range(-255, -1), test_random_range(-10, 10));
  }
  CHECK_EQ(mismatches, 0);
}

/* MultiplyByQuantizedMultiplier on extreme values: a one-input FC with W = 0
 * makes the accumulator equal to the bias, so every (acc, multiplier, shift)
 * combination below reaches the requantization exactly. */
static void test_requantize_edges(void) {
  static const int32_t accs[] = {0, 1, -1, 2, -3, 255, -256, 1 << 20, -(1 << 20) - 1,
                                 1 << 30, -(1 << 30), INT32_MAX, INT32_MIN + 1};
  static const int32_t multipliers[] = {0, 1, 1 << 30, INT32_MAX, 1518500250, INT32_MIN,
                                        -(1 << 30), -1};
  static const int32_t shifts[] = {-31, -30, -17, -1, 0, 1, 2, 8, 30, 31};
  const int32_t total = 13 * 8 * 10;
  long mismatches = 0;
  int32_t start, i;
  in_int8[0] = 0;
  in_signs[0] = 1;
  for (start = 0; start < total; start += MAX_COUT) {
    const int32_t count = total - start < MAX_COUT ? total - start : MAX_COUT;
    for (i = 0; i < count; ++i) {
      const int32_t k = start + i;
      filter_signs[i] = 1;
      transform[4 * i] = 0;
      transform[4 * i + 1] = accs[k / 80];
      transform[4 * i + 2] = multipliers[(k / 10) % 8];
      transform[4 * i + 3] = shifts[k % 10];
    }
    mismatches += run_fc(1, 1, count, 0, 0, 0, 1, -1, 0);
  }
  CHECK_EQ(mismatches, 0);
}

/* ------------------------------------------------------------------- maxpool */

static void test_maxpool(void) {
  int32_t i;
  long mismatches = 0;
  for (i = 0; i < 150; ++i) {
    tfqp_bmaxpool2d_options o;
    tfqp_tensor input, output;
    tfqp_bmaxpool2d_params p;
    tfqp_error e;
    int32_t dims[4], oh, ow, pt, pl, b, y, x, c;
    const int32_t batch = test_random_range(1, 2), h = test_random_range(1, 8),
                  w = test_random_range(1, 8), channels = test_random_range(1, 70);
    memset(&o, 0, sizeof o);
    o.channels = channels;
    o.filter_height = test_random_range(1, 3);
    o.filter_width = test_random_range(1, 3);
    o.stride_height = test_random_range(1, 3);
    o.stride_width = test_random_range(1, 3);
    o.padding = (o.filter_height <= h && o.filter_width <= w && i % 2) ? TFQP_PADDING_VALID
                                                                        : TFQP_PADDING_SAME;
    o.present = TFQP_BMAXPOOL2D_REQUIRED;
    for (b = 0; b < batch * h * w * channels; ++b) {
      in_signs[b] = (int8_t)(test_random() % 4 ? -1 : 1); /* mostly -1: AND is often 1 */
    }
    pack_signs(in_signs, batch * h * w, channels, 1, in_packed);
    ref_axis(h, o.filter_height, o.stride_height, 1, o.padding, &oh, &pt);
    ref_axis(w, o.filter_width, o.stride_width, 1, o.padding, &ow, &pl);
    dims[0] = batch;
    dims[1] = h;
    dims[2] = w;
    dims[3] = TFQP_WORDS(channels);
    set(&input, TFQP_TYPE_INT32, 4, dims, 0);
    dims[1] = oh;
    dims[2] = ow;
    set(&output, TFQP_TYPE_INT32, 4, dims, 0);
    CHECK_EQ(tfqp_bmaxpool2d_prepare(&o, &input, &output, &p, &e), TFQP_OK);
    tfqp_bmaxpool2d_eval(&p, in_packed, out_packed);
    for (b = 0; b < batch; ++b) {
      for (y = 0; y < oh; ++y) {
        for (x = 0; x < ow; ++x) {
          const tfqp_word *out = out_packed + (((size_t)b * oh + y) * ow + x) * TFQP_WORDS(channels);
          for (c = 0; c < TFQP_WORDS(channels) * 32; ++c) {
            int32_t best = -2, ky, kx;
            uint32_t bit;
            for (ky = 0; ky < o.filter_height; ++ky) {
              for (kx = 0; kx < o.filter_width; ++kx) {
                const int32_t iy = y * o.stride_height - pt + ky, ix = x * o.stride_width - pl + kx;
                if (c < channels && iy >= 0 && iy < h && ix >= 0 && ix < w) {
                  const int8_t v = in_signs[(((size_t)b * h + iy) * w + ix) * channels + c];
                  if (v > best) best = v;
                }
              }
            }
            bit = c < channels ? (uint32_t)(best == -1) : 0u; /* padding bits 0 */
            CHECK(c >= channels || best != -2);              /* never an empty window */
            mismatches += ((out[c / 32] >> (c % 32)) & 1u) != bit;
          }
        }
      }
    }
    digest_bytes(out_packed, (size_t)batch * oh * ow * TFQP_WORDS(channels) * 4);
  }
  CHECK_EQ(mismatches, 0);
}

/* ------------------------------------------------------------------- packing */

static void test_packing(void) {
  int8_t values[70];
  tfqp_word words[3];
  int8_t back[70];
  int32_t i;
  for (i = 0; i < 70; ++i) values[i] = 7;
  values[0] = -1;  /* channel 0: bit 0 of word 0 */
  values[32] = -8; /* channel 32: bit 0 of word 1 */
  values[69] = 3;  /* 3 < zero point 7 */
  values[5] = 6;
  tfqp_pack_int8(values, 1, 70, 7, words);
  CHECK_EQ(words[0], 0x21u); /* channels 0 and 5 */
  CHECK_EQ(words[1], 0x1u);
  CHECK_EQ(words[2], 1u << 5); /* channel 69 = word 2, bit 5; bits 6.. are 0 */
  tfqp_unpack_int8(words, 1, 70, 11, -12, back);
  for (i = 0; i < 70; ++i) {
    CHECK_EQ(back[i], (i == 0 || i == 5 || i == 32 || i == 69) ? -12 : 11);
  }
  /* zero point -128: nothing is negative; 127: everything but 127 is */
  values[1] = 127;
  tfqp_pack_int8(values, 1, 70, -128, words);
  CHECK(words[0] == 0 && words[1] == 0 && words[2] == 0);
  tfqp_pack_int8(values, 1, 70, 127, words);
  CHECK_EQ(words[0], 0xFFFFFFFDu);
  CHECK_EQ(words[2], 0x3Fu);
  /* unpack ignores padding bits */
  words[2] |= 0xFFFFFFC0u;
  tfqp_unpack_int8(words, 1, 70, 1, -1, back);
  CHECK_EQ(back[69], -1);
  /* random round trip, several pixels, every channel count up to 100 */
  for (i = 1; i <= MAX_CIN; ++i) {
    int32_t j;
    for (j = 0; j < 3 * i; ++j) in_int8[j] = (int8_t)test_random_range(-128, 127);
    tfqp_pack_int8(in_int8, 3, i, 0, in_packed);
    tfqp_unpack_int8(in_packed, 3, i, 0, -1, out_int8);
    for (j = 0; j < 3 * i; ++j) CHECK_EQ(out_int8[j], in_int8[j] < 0 ? -1 : 0);
    digest_bytes(in_packed, (size_t)3 * TFQP_WORDS(i) * 4);
  }
}

void test_kernels(void) {
  test_packing();
  test_conv_by_hand();
  test_conv_random();
  test_conv_values_random();
  test_values_validation();
  test_fc();
  test_fc_values();
  test_requantize_edges();
  test_maxpool();
}
