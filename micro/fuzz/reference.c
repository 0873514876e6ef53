/* Naive references of the TFQP ops (see reference.h). */
#include "reference.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void broken_contract(const char *op, const char *rule) {
  fprintf(stderr, "reference: %s accepted a case that breaks its contract: %s\n", op, rule);
  abort();
}

/* ------------------------------------------------------------- arithmetic */

static int64_t floor_div_pow2(int64_t v, int32_t shift) {
  const int64_t d = (int64_t)1 << shift;
  int64_t q = v / d;
  if (v % d != 0 && v < 0) q -= 1;
  return q;
}

static int32_t saturate_int32(int64_t v) {
  return v > INT32_MAX ? INT32_MAX : v < INT32_MIN ? INT32_MIN : (int32_t)v;
}

/* gemmlowp's SaturatingRoundingDoublingHighMul: (a * b + nudge) / 2^31
 * truncated toward zero, nudge 2^30 or 1 - 2^30 by the product's sign. */
static int64_t doubling_high_mul(int64_t a, int64_t b) {
  const int64_t product = a * b;
  const int64_t nudge = product >= 0 ? ((int64_t)1 << 30) : 1 - ((int64_t)1 << 30);
  if (a == INT32_MIN && b == INT32_MIN) return INT32_MAX;
  return (product + nudge) / ((int64_t)1 << 31);
}

/* gemmlowp's RoundingDivideByPOT: round half away from zero. */
static int64_t rounding_divide(int64_t x, int32_t exponent) {
  const int64_t d = (int64_t)1 << exponent;
  const int64_t magnitude = x < 0 ? -x : x;
  const int64_t q = (magnitude + d / 2) / d;
  return x < 0 ? -q : q;
}

/* TFLite's int8 output: MultiplyByQuantizedMultiplier (the accumulator's left
 * shift wraps modulo 2^32 as the reference's int32 product does), the zero
 * point, the activation clamp. */
static int8_t requantize(const char *op, int64_t acc, int32_t multiplier, int32_t shift,
                         int32_t zero_point, int32_t act_min, int32_t act_max) {
  const int32_t left = shift > 0 ? shift : 0;
  const int32_t right = shift > 0 ? 0 : -shift;
  int64_t shifted, v;
  if (acc > INT32_MAX || acc < -INT32_MAX) broken_contract(op, "accumulator beyond int32");
  shifted = (int64_t)(int32_t)(uint32_t)((uint64_t)acc << left);
  v = rounding_divide(doubling_high_mul(shifted, multiplier), right) + zero_point;
  return (int8_t)(v < act_min ? act_min : v > act_max ? act_max : v);
}

/* The int32 value output: saturate(B + floor((M * D + 2^(s-1)) / 2^s)). */
static int32_t value_output(const char *op, int64_t d, const int32_t *row) {
  const int64_t m = row[0];
  const int64_t limit = (int64_t)1 << 62;
  if (d != 0 && (m > limit / (d < 0 ? -d : d) || m < -(limit / (d < 0 ? -d : d)))) {
    broken_contract(op, "|M * D| >= 2^62");
  }
  return saturate_int32(row[2] + floor_div_pow2(m * d + (row[1] > 0 ? (int64_t)1 << (row[1] - 1)
                                                                      : 0),
                                                row[1]));
}

/* ----------------------------------------------------------------- geometry */

typedef struct {
  int64_t out, pad;
} axis;

static axis window_axis(int64_t in, int64_t filter, int64_t stride, int64_t dilation,
                        int32_t padding) {
  const int64_t effective = (filter - 1) * dilation + 1;
  axis a;
  int64_t total;
  a.out = padding == 0 ? (in + stride - 1) / stride : (in - effective) / stride + 1;
  total = (a.out - 1) * stride + effective - in;
  a.pad = total > 0 ? total / 2 : 0;
  return a;
}

/* ------------------------------------------------------------- tensor data */

static int32_t word_bit(const int32_t *words, int64_t word, int64_t bit) {
  return (int32_t)(((uint32_t)words[word] >> bit) & 1u);
}

static int64_t words_of(int64_t channels) { return (channels + 31) / 32; }

/* The sign (+1 / -1) of channel c of pixel `pixel` of a binary op's input:
 * int8 (q < zp -> -1) or packed (bit 1 -> -1). */
static int32_t input_sign(const tfqp_tensor *t, const void *data, int64_t channels, int64_t pixel,
                          int64_t c) {
  if (t->type == TFQP_TYPE_INT8) {
    return ((const int8_t *)data)[pixel * channels + c] < t->zero_point ? -1 : 1;
  }
  return word_bit((const int32_t *)data, pixel * words_of(channels) + c / 32, c % 32) ? -1 : 1;
}

static void set_bit(int32_t *words, int64_t word, int64_t bit) {
  words[word] = (int32_t)((uint32_t)words[word] | (1u << bit));
}

/* ------------------------------------------------- binary conv / fc (D, S) */

typedef struct {
  int64_t cin, kh, kw, sh, sw, dh, dw;
  int32_t padding, pad_value, int32_output;
  int32_t input_pos, input_neg, act_min, act_max;
} binary_geometry;

/* Output element (n, oy, ox, co) of TFQP_BCONV2D / TFQP_BFULLY_CONNECTED. */
static void binary_element(const char *op, const op_harness_case *c, const binary_geometry *g,
                           axis rows, axis cols, int64_t n, int64_t oy, int64_t ox, int64_t co,
                           int64_t pixel, void *out) {
  const tfqp_tensor *in = &c->inputs[0];
  const int64_t h = in->rank == 4 ? in->dims[1] : 1, w = in->rank == 4 ? in->dims[2] : 1;
  const int32_t *filter = (const int32_t *)c->data[1];
  const int32_t *transform = (const int32_t *)c->data[2];
  const int64_t cout = c->inputs[1].dims[0];
  int64_t d = 0, s = 0, ky, kx, ci;
  for (ky = 0; ky < g->kh; ++ky) {
    for (kx = 0; kx < g->kw; ++kx) {
      const int64_t iy = oy * g->sh - rows.pad + ky * g->dh;
      const int64_t ix = ox * g->sw - cols.pad + kx * g->dw;
      const int inside = iy >= 0 && iy < h && ix >= 0 && ix < w;
      for (ci = 0; ci < g->cin; ++ci) {
        const int64_t tap = (co * g->kh + ky) * g->kw + kx;
        const int32_t weight = word_bit(filter, tap * words_of(g->cin) + ci / 32, ci % 32) ? -1 : 1;
        if (inside) {
          d += weight * input_sign(in, c->data[0], g->cin, (n * h + iy) * w + ix, ci);
          s += weight;
        } else if (g->pad_value == 1) {
          d += weight;
          s += weight;
        }
      }
    }
  }
  if (g->int32_output) {
    const int32_t *row = transform + co * 3;
    int32_t v = value_output(op, d, row);
    if (c->input_count == 4) v = saturate_int32((int64_t)v + ((const int32_t *)c->data[3])[pixel * cout + co]);
    ((int32_t *)out)[pixel * cout + co] = v;
  } else if (c->output.type == TFQP_TYPE_INT32) {
    const int32_t *row = transform + co * 2;
    if ((row[0] > 0 ? d : -d) < row[1]) set_bit((int32_t *)out, pixel * words_of(cout) + co / 32, co % 32);
  } else {
    const int32_t *row = transform + co * 4;
    const int64_t twice = ((int64_t)g->input_pos + g->input_neg) * s +
                          ((int64_t)g->input_pos - g->input_neg) * d;
    if (twice % 2 != 0) broken_contract(op, "odd (P + N) * S + (P - N) * D");
    ((int8_t *)out)[pixel * cout + co] =
        requantize(op, row[0] * (twice / 2) + row[1], row[2], row[3], c->output.zero_point,
                   g->act_min, g->act_max);
  }
}

static void binary_op(const char *op, const op_harness_case *c, const binary_geometry *g,
                      void *out) {
  const tfqp_tensor *in = &c->inputs[0];
  const int64_t batch = in->dims[0];
  const int64_t h = in->rank == 4 ? in->dims[1] : 1, w = in->rank == 4 ? in->dims[2] : 1;
  const int64_t cout = c->inputs[1].dims[0];
  const axis rows = window_axis(h, g->kh, g->sh, g->dh, g->padding);
  const axis cols = window_axis(w, g->kw, g->sw, g->dw, g->padding);
  int64_t n, oy, ox, co;
  memset(out, 0, c->output.bytes);
  for (n = 0; n < batch; ++n) {
    for (oy = 0; oy < rows.out; ++oy) {
      for (ox = 0; ox < cols.out; ++ox) {
        const int64_t pixel = (n * rows.out + oy) * cols.out + ox;
        for (co = 0; co < cout; ++co) binary_element(op, c, g, rows, cols, n, oy, ox, co, pixel, out);
      }
    }
  }
}

static void bconv2d(const op_harness_case *c, void *out) {
  const tfqp_bconv2d_options *o = &c->options.bconv2d;
  const binary_geometry g = {o->channels_in, o->filter_height, o->filter_width,
                             o->stride_height, o->stride_width, o->dilation_height_factor,
                             o->dilation_width_factor, o->padding, o->pad_value, o->int32_output,
                             o->input_pos, o->input_neg, o->act_min, o->act_max};
  binary_op("TFQP_BCONV2D", c, &g, out);
}

static void bfully_connected(const op_harness_case *c, void *out) {
  const tfqp_bfully_connected_options *o = &c->options.bfully_connected;
  const binary_geometry g = {o->channels_in, 1, 1, 1, 1, 1, 1, 1, 0, o->int32_output,
                             o->input_pos, o->input_neg, o->act_min, o->act_max};
  binary_op("TFQP_BFULLY_CONNECTED", c, &g, out);
}

/* ------------------------------------------------------------------ max-pool */

static void bmaxpool2d(const op_harness_case *c, void *out) {
  const tfqp_bmaxpool2d_options *o = &c->options.bmaxpool2d;
  const tfqp_tensor *in = &c->inputs[0];
  const int32_t *input = (const int32_t *)c->data[0];
  const int32_t *mask = c->input_count > 1 ? (const int32_t *)c->data[1] : NULL;
  const int64_t batch = in->dims[0], h = in->dims[1], w = in->dims[2];
  const int64_t words = words_of(o->channels);
  const axis rows = window_axis(h, o->filter_height, o->stride_height, 1, o->padding);
  const axis cols = window_axis(w, o->filter_width, o->stride_width, 1, o->padding);
  int64_t n, oy, ox, ch, iy, ix;
  memset(out, 0, c->output.bytes);
  for (n = 0; n < batch; ++n) {
    for (oy = 0; oy < rows.out; ++oy) {
      for (ox = 0; ox < cols.out; ++ox) {
        const int64_t pixel = (n * rows.out + oy) * cols.out + ox;
        /* the window's input positions, clipped to the image (the filter
         * may be far larger than the image) */
        const int64_t y0 = oy * o->stride_height - rows.pad, x0 = ox * o->stride_width - cols.pad;
        const int64_t y_first = y0 < 0 ? 0 : y0, x_first = x0 < 0 ? 0 : x0;
        const int64_t y_end = y0 + o->filter_height < h ? y0 + o->filter_height : h;
        const int64_t x_end = x0 + o->filter_width < w ? x0 + o->filter_width : w;
        for (ch = 0; ch < o->channels; ++ch) {
          int32_t all = 1, any = 0, seen = 0, bit;
          for (iy = y_first; iy < y_end; ++iy) {
            for (ix = x_first; ix < x_end; ++ix) {
              bit = word_bit(input, ((n * h + iy) * w + ix) * words + ch / 32, ch % 32);
              all &= bit;
              any |= bit;
              seen = 1;
            }
          }
          if (!seen) broken_contract("TFQP_BMAXPOOL2D", "a window without an input position");
          bit = (mask != NULL && word_bit(mask, ch / 32, ch % 32)) ? any : all;
          if (bit) set_bit((int32_t *)out, pixel * words + ch / 32, ch % 32);
        }
      }
    }
  }
}

/* ------------------------------------------------------------------ binarize */

static void binarize(const op_harness_case *c, void *out) {
  const tfqp_tensor *in = &c->inputs[0];
  const int64_t channels = in->dims[in->rank - 1];
  const int64_t pixels = (int64_t)(in->bytes / (in->type == TFQP_TYPE_INT8 ? 1 : 4)) / channels;
  int64_t p, ch;
  memset(out, 0, c->output.bytes);
  for (p = 0; p < pixels; ++p) {
    for (ch = 0; ch < channels; ++ch) {
      const int negative = in->type == TFQP_TYPE_INT8
                               ? ((const int8_t *)c->data[0])[p * channels + ch] < in->zero_point
                               : ((const int32_t *)c->data[0])[p * channels + ch] < 0;
      if (negative) set_bit((int32_t *)out, p * words_of(channels) + ch / 32, ch % 32);
    }
  }
}

/* ------------------------------------------------------- int8 conv / fc (A) */

typedef struct {
  int64_t cin, kh, kw, sh, sw, dh, dw;
  int32_t padding, int32_output;
} int8_geometry;

static void int8_op(const char *op, const op_harness_case *c, const int8_geometry *g,
                    void *out) {
  const tfqp_tensor *in = &c->inputs[0];
  const int8_t *input = (const int8_t *)c->data[0];
  const int32_t *transform = (const int32_t *)c->data[2];
  const int is16 = c->inputs[1].type == TFQP_TYPE_INT16;
  const int64_t batch = in->dims[0];
  const int64_t h = in->rank == 4 ? in->dims[1] : 1, w = in->rank == 4 ? in->dims[2] : 1;
  const int64_t cout = c->inputs[1].dims[0];
  const axis rows = window_axis(h, g->kh, g->sh, g->dh, g->padding);
  const axis cols = window_axis(w, g->kw, g->sw, g->dw, g->padding);
  int64_t n, oy, ox, co, ky, kx, ci;
  memset(out, 0, c->output.bytes);
  for (n = 0; n < batch; ++n) {
    for (oy = 0; oy < rows.out; ++oy) {
      for (ox = 0; ox < cols.out; ++ox) {
        const int64_t pixel = (n * rows.out + oy) * cols.out + ox;
        for (co = 0; co < cout; ++co) {
          int64_t a = 0;
          for (ky = 0; ky < g->kh; ++ky) {
            for (kx = 0; kx < g->kw; ++kx) {
              const int64_t iy = oy * g->sh - rows.pad + ky * g->dh;
              const int64_t ix = ox * g->sw - cols.pad + kx * g->dw;
              if (iy < 0 || iy >= h || ix < 0 || ix >= w) continue; /* zero-point padding */
              for (ci = 0; ci < g->cin; ++ci) {
                const int64_t at = ((co * g->kh + ky) * g->kw + kx) * g->cin + ci;
                const int64_t weight = is16 ? ((const int16_t *)c->data[1])[at]
                                            : ((const int8_t *)c->data[1])[at];
                a += ((int64_t)input[((n * h + iy) * w + ix) * g->cin + ci] - in->zero_point) *
                     weight;
              }
            }
          }
          if (a > INT32_MAX || a < -INT32_MAX) broken_contract(op, "accumulator beyond int32");
          if (g->int32_output) {
            int32_t v = value_output(op, a, transform + co * 3);
            if (c->input_count == 4) {
              v = saturate_int32((int64_t)v + ((const int32_t *)c->data[3])[pixel * cout + co]);
            }
            ((int32_t *)out)[pixel * cout + co] = v;
          } else {
            const int32_t *row = transform + co * 2;
            if ((row[0] > 0 ? a : -a) < row[1]) {
              set_bit((int32_t *)out, pixel * words_of(cout) + co / 32, co % 32);
            }
          }
        }
      }
    }
  }
}

static void conv2d_int8(const op_harness_case *c, void *out) {
  const tfqp_conv2d_int8_options *o = &c->options.conv2d_int8;
  const int8_geometry g = {o->channels_in, o->filter_height, o->filter_width, o->stride_height,
                           o->stride_width, o->dilation_height_factor,
                           o->dilation_width_factor, o->padding, o->int32_output};
  int8_op("TFQP_CONV2D_INT8", c, &g, out);
}

static void fully_connected_int8(const op_harness_case *c, void *out) {
  const tfqp_fully_connected_int8_options *o = &c->options.fully_connected_int8;
  const int8_geometry g = {o->channels_in, 1, 1, 1, 1, 1, 1, 1, o->int32_output};
  int8_op("TFQP_FULLY_CONNECTED_INT8", c, &g, out);
}

/* -------------------------------------------------------------------- unpack */

static void unpack(const op_harness_case *c, void *out) {
  const tfqp_unpack_options *o = &c->options.unpack;
  const int64_t group = (o->present & TFQP_UNPACK_GROUP) ? o->group : o->channels;
  const int64_t pixels = (int64_t)c->output.bytes / o->channels;
  int64_t p, ch;
  for (p = 0; p < pixels; ++p) {
    for (ch = 0; ch < o->channels; ++ch) {
      const int64_t word = p * (o->channels / group) * words_of(group) +
                           (ch / group) * words_of(group) + (ch % group) / 32;
      ((int8_t *)out)[p * o->channels + ch] =
          (int8_t)(word_bit((const int32_t *)c->data[0], word, (ch % group) % 32) ? o->negative
                                                                                   : o->positive);
    }
  }
}

/* -------------------------------------------------------------- unpack codes */

/* formats.h "Packed k-bit activations": code ch of a pixel in bits
 * [(ch % P) * k, +k) of its word ch / P, P = 32 / k; q = zp_out + u - code_zero. */
static void unpack_codes(const op_harness_case *c, void *out) {
  const tfqp_unpack_codes_options *o = &c->options.unpack_codes;
  const int64_t bits = o->bits, per_word = 32 / bits;
  const int64_t words = (o->channels + per_word - 1) / per_word;
  const int64_t pixels = (int64_t)c->output.bytes / o->channels;
  const int64_t zero = (o->present & TFQP_UNPACK_CODES_ZERO) ? o->code_zero : 0;
  const int64_t offset = (int64_t)c->output.zero_point - zero;
  int64_t p, ch;
  if (bits != 2 && bits != 4) broken_contract("TFQP_UNPACK_CODES", "bits 2 or 4");
  if (offset < -128 || offset + (1 << bits) - 1 > 127) {
    broken_contract("TFQP_UNPACK_CODES", "every code's value within int8");
  }
  for (p = 0; p < pixels; ++p) {
    for (ch = 0; ch < o->channels; ++ch) {
      const uint32_t word = (uint32_t)((const int32_t *)c->data[0])[p * words + ch / per_word];
      const int64_t u = (word >> ((ch % per_word) * bits)) & ((1u << bits) - 1u);
      ((int8_t *)out)[p * o->channels + ch] = (int8_t)(offset + u);
    }
  }
}

/* ----------------------------------------------------------- max-pool codes */

/* The max of each channel's code over the window's in-image positions; the
 * output's padding codes 0. */
static void max_pool_codes(const op_harness_case *c, void *out) {
  const tfqp_max_pool_codes_options *o = &c->options.max_pool_codes;
  const tfqp_tensor *in = &c->inputs[0];
  const uint32_t *input = (const uint32_t *)c->data[0];
  const int64_t batch = in->dims[0], h = in->dims[1], w = in->dims[2];
  const int64_t bits = o->bits, per_word = 32 / (bits == 2 || bits == 4 ? bits : 1);
  const int64_t words = (o->channels + per_word - 1) / per_word;
  const axis rows = window_axis(h, o->filter_height, o->stride_height, 1, o->padding);
  const axis cols = window_axis(w, o->filter_width, o->stride_width, 1, o->padding);
  int64_t n, oy, ox, ch, iy, ix;
  if (bits != 2 && bits != 4) broken_contract("TFQP_MAX_POOL_CODES", "bits 2 or 4");
  memset(out, 0, c->output.bytes);
  for (n = 0; n < batch; ++n) {
    for (oy = 0; oy < rows.out; ++oy) {
      for (ox = 0; ox < cols.out; ++ox) {
        const int64_t pixel = (n * rows.out + oy) * cols.out + ox;
        const int64_t y0 = oy * o->stride_height - rows.pad, x0 = ox * o->stride_width - cols.pad;
        const int64_t y_first = y0 < 0 ? 0 : y0, x_first = x0 < 0 ? 0 : x0;
        const int64_t y_end = y0 + o->filter_height < h ? y0 + o->filter_height : h;
        const int64_t x_end = x0 + o->filter_width < w ? x0 + o->filter_width : w;
        for (ch = 0; ch < o->channels; ++ch) {
          const int64_t shift = (ch % per_word) * bits;
          uint32_t best = 0;
          int seen = 0;
          for (iy = y_first; iy < y_end; ++iy) {
            for (ix = x_first; ix < x_end; ++ix) {
              const uint32_t word = input[((n * h + iy) * w + ix) * words + ch / per_word];
              const uint32_t u = (word >> shift) & ((1u << bits) - 1u);
              if (u > best) best = u;
              seen = 1;
            }
          }
          if (!seen) broken_contract("TFQP_MAX_POOL_CODES", "a window without an input position");
          ((uint32_t *)out)[pixel * words + ch / per_word] |= best << shift;
        }
      }
    }
  }
}

/* ---------------------------------------------------------------- shift ops */

/* The geometry of one shift op: taps of output channel co at output position
 * (n, oy, ox) (a fully connected op: one 1x1 VALID tap per input channel, rows
 * n of the flattened input). */
typedef struct {
  int64_t cin, kh, kw, sh, sw, dh, dw, depth_multiplier;
  int32_t padding, terms, activation_min, activation_max, depthwise;
} shift_geometry;

/* Code j of row `row` (formats.h: P(b) = 32 / b codes per word, code j of a
 * word in bits [j*b, j*b + b)). */
static int32_t shift_code(const int32_t *words, int64_t row_words, int32_t bits, int64_t row,
                          int64_t j) {
  const int64_t per_word = 32 / bits;
  const uint32_t word = (uint32_t)words[row * row_words + j / per_word];
  return (int32_t)((word >> ((j % per_word) * bits)) & ((1u << bits) - 1u));
}

/* w_c[k] of output channel co: the sum over its T terms of table[c][code]. */
static int64_t shift_weight(const op_harness_case *c, int32_t bits, int32_t terms, int64_t co,
                            int64_t k, int64_t cls) {
  const int32_t *words = (const int32_t *)c->data[1];
  const int16_t *table = (const int16_t *)c->data[2];
  const int64_t row_words = c->inputs[1].dims[1];
  const int64_t columns = (int64_t)1 << bits;
  int64_t t, w = 0;
  for (t = 0; t < terms; ++t) w += table[cls * columns + shift_code(words, row_words, bits, co, k * terms + t)];
  return w;
}

/* What init_table promises about an accepted case, checked from the contract:
 * table entries within 2^14, zero padding bits, transform rows in range and
 * sum_k |w_c[k]| * 255 + |B| < 2^31 per channel and class. */
static void shift_check_constants(const char *op, const op_harness_case *c, int32_t bits,
                                  int32_t terms, int64_t taps, int32_t classes, int packed) {
  const int16_t *table = (const int16_t *)c->data[2];
  const int32_t *words = (const int32_t *)c->data[1];
  const int32_t *transform = (const int32_t *)c->data[3];
  const int64_t cout = c->inputs[1].dims[0], row_words = c->inputs[1].dims[1];
  const int64_t per_word = 32 / bits, row_codes = taps * terms;
  int64_t i, co, k, cls;
  if (row_words != (row_codes + per_word - 1) / per_word) broken_contract(op, "codes row words");
  for (i = 0; i < classes * ((int64_t)1 << bits); ++i) {
    if (table[i] > (1 << 14) || table[i] < -(1 << 14)) broken_contract(op, "|table entry| > 2^14");
  }
  for (co = 0; co < cout; ++co) {
    const int32_t *row = transform + co * (packed ? 2 : 5);
    const int64_t bias = packed ? 0 : row[1];
    for (i = row_codes; i < row_words * per_word; ++i) {
      if (shift_code(words, row_words, bits, co, i) != 0) broken_contract(op, "codes past R not 0");
    }
    for (i = 0; i < row_words; ++i) {
      if (per_word * bits < 32 && ((uint32_t)words[co * row_words + i] >> (per_word * bits)) != 0) {
        broken_contract(op, "top bits of a codes word not 0");
      }
    }
    if (row[0] != 1 && row[0] != -1) broken_contract(op, "d not +-1");
    if (!packed) {
      if (row[2] < 0 || (classes == 2 && row[3] < 0)) broken_contract(op, "negative multiplier");
      if (classes == 1 && (row[3] != 0 || row[4] < -31 || row[4] > 30)) {
        broken_contract(op, "one class: M1 not 0 or s outside [-31, 30]");
      }
      if (classes == 2 && (row[4] < 0 || row[4] > 62)) broken_contract(op, "s outside [0, 62]");
    }
    for (cls = 0; cls < classes; ++cls) {
      int64_t sum = bias < 0 ? -bias : bias;
      for (k = 0; k < taps; ++k) {
        const int64_t w = shift_weight(c, bits, terms, co, k, cls);
        sum += (w < 0 ? -w : w) * 255;
      }
      if (sum >= ((int64_t)1 << 31)) broken_contract(op, "sum |w| * 255 + |B| >= 2^31");
    }
  }
}

/* Output element `at` from the accumulators a[0..classes) (shift_layer.h). */
static void shift_output(const char *op, const op_harness_case *c, const shift_geometry *g,
                         int32_t classes, const int64_t *a, int64_t co, int64_t at,
                         int64_t cout, void *out) {
  const int32_t *transform = (const int32_t *)c->data[3];
  if (c->output.type == TFQP_TYPE_INT32) {
    const int32_t *row = transform + co * 2;
    if (row[0] * a[0] < row[1]) set_bit((int32_t *)out, at * words_of(cout) + co / 32, co % 32);
  } else {
    const int32_t *row = transform + co * 5;
    const int64_t v = row[0] * a[0] + row[1];
    if (classes == 1) {
      ((int8_t *)out)[at * cout + co] = requantize(op, v, row[2], row[4], c->output.zero_point,
                                                   g->activation_min, g->activation_max);
    } else {
      const int64_t sum = v * row[2] + row[0] * a[1] * row[3];
      const int64_t r = rounding_divide(sum, row[4]) + c->output.zero_point;
      if (v > INT32_MAX || v < -INT32_MAX) broken_contract(op, "d*A_0 + B beyond int32");
      ((int8_t *)out)[at * cout + co] =
          (int8_t)(r < g->activation_min ? g->activation_min
                                         : r > g->activation_max ? g->activation_max : r);
    }
  }
}

static void shift_op(const char *op, const op_harness_case *c, const shift_geometry *g,
                     void *out) {
  const tfqp_tensor *in = &c->inputs[0];
  const int8_t *input = (const int8_t *)c->data[0];
  const int64_t cout = c->inputs[1].dims[0];
  const int64_t columns = c->inputs[2].dims[1];
  const int32_t classes = c->inputs[2].dims[0];
  const int packed = c->output.type == TFQP_TYPE_INT32;
  /* a fully connected op: rows of the flattened input, one 1x1 image each */
  const int conv = strcmp(op, "TFQP_SHIFT_FULLY_CONNECTED") != 0;
  const int64_t batch = conv ? in->dims[0] : (int64_t)in->bytes / g->cin;
  const int64_t h = conv ? in->dims[1] : 1, w = conv ? in->dims[2] : 1;
  const int64_t taps = g->depthwise ? g->kh * g->kw : g->kh * g->kw * g->cin;
  const axis rows = window_axis(h, g->kh, g->sh, g->dh, g->padding);
  const axis cols = window_axis(w, g->kw, g->sw, g->dw, g->padding);
  int32_t bits = 0;
  int64_t n, oy, ox, co, ky, kx, ci, cls;
  while (((int64_t)1 << bits) < columns) ++bits;
  if (((int64_t)1 << bits) != columns || bits < 1 || bits > 5) broken_contract(op, "2^b columns, b in 1..5");
  if (classes < 1 || classes > 2 || (packed && classes != 1)) broken_contract(op, "classes");
  shift_check_constants(op, c, bits, g->terms, taps, classes, packed);
  memset(out, 0, c->output.bytes);
  for (n = 0; n < batch; ++n) {
    for (oy = 0; oy < rows.out; ++oy) {
      for (ox = 0; ox < cols.out; ++ox) {
        const int64_t pixel = (n * rows.out + oy) * cols.out + ox;
        for (co = 0; co < cout; ++co) {
          int64_t a[2] = {0, 0};
          for (ky = 0; ky < g->kh; ++ky) {
            for (kx = 0; kx < g->kw; ++kx) {
              const int64_t iy = oy * g->sh - rows.pad + ky * g->dh;
              const int64_t ix = ox * g->sw - cols.pad + kx * g->dw;
              if (iy < 0 || iy >= h || ix < 0 || ix >= w) continue; /* padded: contributes 0 */
              for (ci = 0; ci < (g->depthwise ? 1 : g->cin); ++ci) {
                const int64_t channel = g->depthwise ? co / g->depth_multiplier : ci;
                const int64_t k = (ky * g->kw + kx) * (g->depthwise ? 1 : g->cin) + ci;
                const int64_t q = (int64_t)input[((n * h + iy) * w + ix) * g->cin + channel] -
                                  in->zero_point;
                for (cls = 0; cls < classes; ++cls) a[cls] += q * shift_weight(c, bits, g->terms, co, k, cls);
              }
            }
          }
          for (cls = 0; cls < classes; ++cls) {
            if (a[cls] > INT32_MAX || a[cls] < -INT32_MAX) broken_contract(op, "accumulator beyond int32");
          }
          shift_output(op, c, g, classes, a, co, pixel, cout, out);
        }
      }
    }
  }
}

static shift_geometry shift_window(const tfqp_window_options *o, int64_t cin,
                                   int64_t depth_multiplier, const tfqp_shift_output_options *out,
                                   int32_t depthwise) {
  shift_geometry g;
  g.cin = cin;
  g.kh = o->filter_height;
  g.kw = o->filter_width;
  g.sh = o->stride_height;
  g.sw = o->stride_width;
  g.dh = o->dilation_height;
  g.dw = o->dilation_width;
  g.depth_multiplier = depth_multiplier;
  g.padding = o->padding;
  g.terms = out->terms;
  g.activation_min = out->activation_min;
  g.activation_max = out->activation_max;
  g.depthwise = depthwise;
  return g;
}

static void shift_conv2d(const op_harness_case *c, void *out) {
  const tfqp_shift_conv2d_options *o = &c->options.shift_conv2d;
  const shift_geometry g = shift_window(&o->window, c->inputs[0].dims[3], 1, &o->output, 0);
  shift_op("TFQP_SHIFT_CONV2D", c, &g, out);
}

static void shift_depthwise_conv2d(const op_harness_case *c, void *out) {
  const tfqp_shift_depthwise_conv2d_options *o = &c->options.shift_depthwise_conv2d;
  const shift_geometry g =
      shift_window(&o->window, c->inputs[0].dims[3], o->depth_multiplier, &o->output, 1);
  if (c->inputs[1].dims[0] != c->inputs[0].dims[3] * (int64_t)o->depth_multiplier) {
    broken_contract("TFQP_SHIFT_DEPTHWISE_CONV2D", "Cout = Cin * depth_multiplier");
  }
  shift_op("TFQP_SHIFT_DEPTHWISE_CONV2D", c, &g, out);
}

static void shift_fully_connected(const op_harness_case *c, void *out) {
  const tfqp_shift_fully_connected_options *o = &c->options.shift_fully_connected;
  const tfqp_window_options one_tap = {1, 1, 1, 1, 1, 1, 1};
  const shift_geometry g = shift_window(&one_tap, o->channels_in, 1, &o->output, 0);
  if (c->inputs[0].bytes % (size_t)o->channels_in != 0) {
    broken_contract("TFQP_SHIFT_FULLY_CONNECTED", "input elements a multiple of channels_in");
  }
  shift_op("TFQP_SHIFT_FULLY_CONNECTED", c, &g, out);
}

void reference_run(const op_harness_case *c, void *expected) {
  const char *name = c->op->name;
  if (strcmp(name, "TFQP_BCONV2D") == 0) bconv2d(c, expected);
  else if (strcmp(name, "TFQP_BFULLY_CONNECTED") == 0) bfully_connected(c, expected);
  else if (strcmp(name, "TFQP_BMAXPOOL2D") == 0) bmaxpool2d(c, expected);
  else if (strcmp(name, "TFQP_BINARIZE") == 0) binarize(c, expected);
  else if (strcmp(name, "TFQP_CONV2D_INT8") == 0) conv2d_int8(c, expected);
  else if (strcmp(name, "TFQP_FULLY_CONNECTED_INT8") == 0) fully_connected_int8(c, expected);
  else if (strcmp(name, "TFQP_UNPACK") == 0) unpack(c, expected);
  else if (strcmp(name, "TFQP_UNPACK_CODES") == 0) unpack_codes(c, expected);
  else if (strcmp(name, "TFQP_MAX_POOL_CODES") == 0) max_pool_codes(c, expected);
  else if (strcmp(name, "TFQP_SHIFT_CONV2D") == 0) shift_conv2d(c, expected);
  else if (strcmp(name, "TFQP_SHIFT_DEPTHWISE_CONV2D") == 0) shift_depthwise_conv2d(c, expected);
  else if (strcmp(name, "TFQP_SHIFT_FULLY_CONNECTED") == 0) shift_fully_connected(c, expected);
  else broken_contract(name, "no reference for this op");
}
