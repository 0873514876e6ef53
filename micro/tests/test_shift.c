/* The shift ops (TFQP_SHIFT_CONV2D, TFQP_SHIFT_DEPTHWISE_CONV2D,
 * TFQP_SHIFT_FULLY_CONNECTED) through their op table rows, against a per-tap
 * reference written from the contract (tfqp/shift_layer.h, formats.h):
 * every weight decoded from its codes and the code table, every output the
 * sum over the taps inside the image, then the output transform with
 * TFLite's rounding written out (round half away from zero, twice) and the
 * two-class transform by division. Each op runs on buffers of exactly the
 * sizes its tensors and prepare give (heap copies: AddressSanitizer sees any
 * access outside them).
 *
 * Also: the codes' pack / unpack round trip, validation (options, shapes,
 * constant data) and work skipping: words whose codes all decode to 0 are
 * marked dead in the table and never read (eval with garbage in them gives
 * the same bytes); the codes output (output_levels) with thresholds at
 * accumulator values the reference found (ties), equal thresholds and both
 * directions, on every path's layouts. Every output goes into the digest. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "shift_op.h"
#include "tfqp/op.h"
#include "tfqp/packing.h"

enum { CONV, DEPTHWISE, FULLY_CONNECTED };

typedef struct {
  int32_t op;
  int32_t batch, height, width, cin, cout;
  int32_t kh, kw, sh, sw, dh, dw, padding, dm;
  int32_t bits, terms, classes, packed;
  int32_t zp_in, zp_out, act_min, act_max, act_given;
  int32_t levels; /* codes output: output_levels; 0: none */
  int32_t lists;  /* fully connected: input 4, the live-code lists code_lists */
} shift_case;

#define MAX_INPUT 20000
#define MAX_CODES 40000
#define MAX_COUT 70
#define MAX_OUTPUT 20000

static int8_t input[MAX_INPUT];
static uint8_t codes[MAX_CODES];
static uint8_t unpacked[MAX_CODES];
static tfqp_word words[MAX_CODES];
static int16_t values[2 * 32];
static int32_t transform[MAX_COUT * 257]; /* up to [Cout, 1 + 256] */
static int64_t weight[2][MAX_INPUT]; /* w_c[co * K + k] */
static uint8_t expected[MAX_OUTPUT];
static uint8_t got[MAX_OUTPUT];
/* live-code lists (formats.h) of the case's codes, code_list_words long */
static int32_t code_lists[MAX_COUT + 1 + MAX_CODES];
static int32_t code_list_words;

static const char *const op_names[] = {"TFQP_SHIFT_CONV2D", "TFQP_SHIFT_DEPTHWISE_CONV2D",
                                       "TFQP_SHIFT_FULLY_CONNECTED"};

static const tfqp_op *op_of(const shift_case *c) {
  return tfqp_find_op(op_names[c->op], strlen(op_names[c->op]));
}

static int32_t taps_of(const shift_case *c) {
  if (c->op == FULLY_CONNECTED) return c->cin;
  return c->kh * c->kw * (c->op == CONV ? c->cin : 1);
}

static int32_t row_words(const shift_case *c) {
  const int32_t per_word = 32 / c->bits;
  return (taps_of(c) * c->terms + per_word - 1) / per_word;
}

/* TFLite's output size and padding before, SAME (0) or VALID (1). */
static void axis(int32_t in, int32_t k, int32_t s, int32_t d, int32_t padding, int32_t *out,
                 int32_t *before) {
  const int32_t effective = (k - 1) * d + 1;
  int32_t total;
  *out = padding == 0 ? (in + s - 1) / s : (in - effective) / s + 1;
  total = (*out - 1) * s + effective - in;
  *before = total > 0 ? total / 2 : 0;
}

static void fill_options(const shift_case *c, tfqp_op_options *o) {
  tfqp_shift_output_options output;
  /* every field: the k-bit options (input_bits ...) are absent, 0 */
  memset(&output, 0, sizeof output);
  output.terms = c->terms;
  output.activation_min = c->act_min;
  output.activation_max = c->act_max;
  output.activation_given = c->act_given;
  output.output_levels = c->levels;
  memset(o, 0, sizeof *o);
  if (c->op == FULLY_CONNECTED) {
    o->shift_fully_connected.channels_in = c->cin;
    o->shift_fully_connected.output = output;
    o->shift_fully_connected.present = TFQP_SHIFT_FC_REQUIRED;
  } else {
    tfqp_window_options window;
    window.filter_height = c->kh;
    window.filter_width = c->kw;
    window.stride_height = c->sh;
    window.stride_width = c->sw;
    window.dilation_height = c->dh;
    window.dilation_width = c->dw;
    window.padding = c->padding;
    if (c->op == CONV) {
      o->shift_conv2d.window = window;
      o->shift_conv2d.output = output;
      o->shift_conv2d.present = TFQP_SHIFT_CONV2D_REQUIRED;
    } else {
      o->shift_depthwise_conv2d.window = window;
      o->shift_depthwise_conv2d.depth_multiplier = c->dm;
      o->shift_depthwise_conv2d.output = output;
      o->shift_depthwise_conv2d.present = TFQP_SHIFT_DEPTHWISE_CONV2D_REQUIRED;
    }
  }
}

/* Columns of the case's transform: (d, base, t_1 .. t_L), (d, threshold) or
 * (d, B, M0, M1, s). */
static int32_t transform_columns(const shift_case *c) {
  return c->levels ? 1 + c->levels : c->packed ? 2 : 5;
}

static void describe(tfqp_tensor *t, tfqp_type type, int32_t rank, const int32_t *dims,
                     int32_t zero_point) {
  size_t count = 1;
  int32_t i;
  for (i = 0; i < rank; ++i) count *= (size_t)dims[i];
  tfqp_tensor_init(t, type, rank, dims,
                   count * (type == TFQP_TYPE_INT8 ? 1 : type == TFQP_TYPE_INT16 ? 2 : 4),
                   zero_point);
}

/* Inputs of case c: 4, or 5 with its live-code lists. */
static int32_t input_count(const shift_case *c) { return c->lists ? 5 : 4; }

/* The inputs and the output of case c (output dims from the contract). */
static void describe_case(const shift_case *c, tfqp_tensor inputs[5], tfqp_tensor *output) {
  int32_t dims[4], oh = 1, ow = 1, before;
  if (c->op == FULLY_CONNECTED) {
    dims[0] = c->batch;
    dims[1] = c->cin;
    describe(&inputs[0], TFQP_TYPE_INT8, 2, dims, c->zp_in);
  } else {
    dims[0] = c->batch;
    dims[1] = c->height;
    dims[2] = c->width;
    dims[3] = c->cin;
    describe(&inputs[0], TFQP_TYPE_INT8, 4, dims, c->zp_in);
    axis(c->height, c->kh, c->sh, c->dh, c->padding, &oh, &before);
    axis(c->width, c->kw, c->sw, c->dw, c->padding, &ow, &before);
  }
  dims[0] = c->cout;
  dims[1] = row_words(c);
  describe(&inputs[1], TFQP_TYPE_INT32, 2, dims, 0);
  dims[0] = c->classes;
  dims[1] = 1 << c->bits;
  describe(&inputs[2], TFQP_TYPE_INT16, 2, dims, 0);
  dims[0] = c->cout;
  dims[1] = transform_columns(c);
  describe(&inputs[3], TFQP_TYPE_INT32, 2, dims, 0);
  dims[0] = code_list_words;
  describe(&inputs[4], TFQP_TYPE_INT32, 1, dims, 0);
  if (c->op == FULLY_CONNECTED) {
    dims[0] = c->batch;
    dims[1] = c->packed ? (c->cout + 31) / 32 : c->cout;
    describe(output, c->packed ? TFQP_TYPE_INT32 : TFQP_TYPE_INT8, 2, dims, c->zp_out);
  } else {
    dims[0] = c->batch;
    dims[1] = oh;
    dims[2] = ow;
    dims[3] = c->packed ? (c->cout + 31) / 32 : c->cout;
    describe(output, c->packed ? TFQP_TYPE_INT32 : TFQP_TYPE_INT8, 4, dims, c->zp_out);
  }
}

/* ------------------------------------------------------------ running an op */

/* An op prepared through its row, with its table built from `constants`. */
typedef struct {
  const tfqp_op *op;
  tfqp_op_params params;
  tfqp_op_buffers buffers;
  int32_t *table;
  void *scratch;
  int32_t *lists; /* the copy of input 4 init_table checked (NULL: none) */
} prepared_op;

static void *copy_of(const void *data, size_t bytes) {
  void *p = malloc(bytes > 0 ? bytes : 1);
  if (p != NULL) memcpy(p, data, bytes);
  return p;
}

/* Life cycle up to init_table; on failure *e holds the error. With
 * `give_data`, prepare sees the constants' data too (tfqp/tensor.h), as the
 * TFLite Micro, TFLite and host adapters give it. */
static tfqp_status prepare_op_with(const shift_case *c, const void *const data[5],
                                   int give_data, prepared_op *p, tfqp_error *e) {
  const int32_t count = input_count(c);
  tfqp_op_options options;
  tfqp_tensor inputs[5], output;
  const void *constants[TFQP_OP_MAX_INPUTS] = {0};
  int32_t rank, dims[TFQP_MAX_RANK], i;
  tfqp_status s;
  memset(p, 0, sizeof *p);
  p->op = op_of(c);
  fill_options(c, &options);
  describe_case(c, inputs, &output);
  for (i = 1; give_data && i < count; ++i) inputs[i].data = data[i];
  if ((s = tfqp_op_check_arity(p->op, count, 1, e)) ||
      (s = p->op->output_dims(&options, inputs, count, output.type, &rank, dims, e)) ||
      (s = p->op->prepare(&options, inputs, count, &output, &p->params, &p->buffers, e))) {
    return s;
  }
  CHECK_EQ(rank, output.rank);
  for (i = 0; i < rank; ++i) CHECK_EQ(dims[i], output.dims[i]);
  for (i = 1; i < count; ++i) constants[i] = copy_of(data[i], inputs[i].bytes);
  p->table = (int32_t *)malloc(p->buffers.table_bytes);
  p->scratch = malloc(p->buffers.scratch_bytes);
  CHECK(p->buffers.table_bytes > 0 && p->buffers.scratch_bytes > 0);
  CHECK(p->table != NULL && p->scratch != NULL);
  s = p->op->init_table(&p->params, constants, p->table, p->buffers.table_bytes, e);
  /* eval reads the lists from its input 4 (constant data stays), not a copy */
  for (i = 1; i < 4; ++i) free((void *)(uintptr_t)constants[i]);
  p->lists = (int32_t *)(uintptr_t)constants[4];
  return s;
}

static tfqp_status prepare_op(const shift_case *c, const void *const data[5], prepared_op *p,
                              tfqp_error *e) {
  return prepare_op_with(c, data, 0, p, e);
}

static void release(prepared_op *p) {
  free(p->table);
  free(p->scratch);
  free(p->lists);
  p->lists = NULL;
  p->table = NULL;
  p->scratch = NULL;
}

/* eval on exact-size copies of the input and `codes_data`; the output into
 * `out` (output bytes). */
static void eval_op(const shift_case *c, prepared_op *p, const tfqp_word *codes_data, void *out) {
  tfqp_tensor inputs[5], output;
  const void *data[5];
  void *outputs[1];
  describe_case(c, inputs, &output);
  data[0] = copy_of(input, inputs[0].bytes);
  data[1] = copy_of(codes_data, inputs[1].bytes);
  data[2] = NULL; /* eval reads the table's code values, not these */
  /* the codes output reads its transform rows at eval (an exact-size copy) */
  data[3] = copy_of(transform, inputs[3].bytes);
  data[4] = p->lists;
  outputs[0] = malloc(output.bytes);
  {
    /* eval on exactly the op's params bytes, as the TFLite Micro adapter keeps them */
    void *kept = copy_of(&p->params, p->op->params_bytes);
    p->op->eval((const tfqp_op_params *)kept, p->table, data, outputs, p->scratch);
    free(kept);
  }
  memcpy(out, outputs[0], output.bytes);
  free(outputs[0]);
  free((void *)(uintptr_t)data[0]);
  free((void *)(uintptr_t)data[1]);
  free((void *)(uintptr_t)data[3]);
}

/* Runs case c end to end on the global data; returns the status. */
static tfqp_status run_case(const shift_case *c, void *out, tfqp_error *e) {
  const void *data[5] = {input, words, values, transform, code_lists};
  prepared_op p;
  tfqp_status s = prepare_op(c, data, &p, e);
  if (s == TFQP_OK) eval_op(c, &p, words, out);
  release(&p);
  return s;
}

/* --------------------------------------------------------------- reference */

/* x / 2^e rounded half away from zero, |x| < 2^63, e in [0, 62], by division. */
static int64_t round_half_away(int64_t x, int32_t e) {
  const int64_t divisor = (int64_t)1 << e;
  int64_t quotient = x / divisor;
  const int64_t remainder = x % divisor;
  if (e > 0 && (remainder < 0 ? -remainder : remainder) >= divisor / 2) {
    quotient += x < 0 ? -1 : 1;
  }
  return quotient;
}

/* TFLite's MultiplyByQuantizedMultiplier, multiplier >= 0: the value shifted
 * left (wrapping at 32 bits), its product with the multiplier / 2^31 rounded
 * half away from zero, then / 2^right rounded half away from zero. */
static int64_t requantize(int32_t v, int32_t multiplier, int32_t shift) {
  const int32_t left = shift > 0 ? shift : 0;
  const uint32_t wrapped = (uint32_t)v << left;
  const int64_t shifted = wrapped >= 0x80000000u ? (int64_t)wrapped - ((int64_t)1 << 32)
                                                 : (int64_t)wrapped;
  return round_half_away(round_half_away(shifted * multiplier, 31), shift > 0 ? 0 : -shift);
}

/* The weights w_c[co * K + k] of the codes in `codes` (unpacked). */
static void decode_weights(const shift_case *c) {
  const int32_t k_count = taps_of(c);
  int32_t co, k, t, cls;
  for (cls = 0; cls < c->classes; ++cls) {
    for (co = 0; co < c->cout; ++co) {
      for (k = 0; k < k_count; ++k) {
        int64_t w = 0;
        for (t = 0; t < c->terms; ++t) {
          const uint8_t code = codes[((size_t)co * k_count + k) * c->terms + t];
          w += values[cls * (1 << c->bits) + code];
        }
        weight[cls][(size_t)co * k_count + k] = w;
      }
    }
  }
}

static int32_t clamp8(const shift_case *c, int64_t v) {
  v += c->zp_out;
  return (int32_t)(v < c->act_min ? c->act_min : v > c->act_max ? c->act_max : v);
}

/* While set, reference() only records up to LEVEL_SAMPLES values of d * A_0
 * per channel (the accumulators the codes output's thresholds tie with). */
#define LEVEL_SAMPLES 16
static int collecting_levels;
static int64_t level_samples[MAX_COUT][LEVEL_SAMPLES];
static int32_t level_sample_count[MAX_COUT];

/* Output element of channel co from A_0, A_1 into output position `position`. */
static void reference_output(const shift_case *c, int64_t a0, int64_t a1, int32_t co,
                             uint8_t *position) {
  const int32_t *row = transform + (size_t)co * (size_t)transform_columns(c);
  const int64_t d = row[0];
  if (c->levels) {
    int32_t i, code = 0;
    if (collecting_levels) {
      int32_t *n = &level_sample_count[co];
      if (*n < LEVEL_SAMPLES) {
        level_samples[co][(*n)++] = d * a0;
      } else {
        level_samples[co][test_random_range(0, LEVEL_SAMPLES - 1)] = d * a0;
      }
      return;
    }
    for (i = 0; i < c->levels - 1; ++i) code += d * a0 >= row[2 + i];
    ((int8_t *)position)[co] = (int8_t)(row[1] + code);
    return;
  }
  if (c->packed) {
    if (d * a0 < row[1]) position[(co / 32) * 4 + (co % 32) / 8] |= (uint8_t)(1u << (co % 8));
    return;
  }
  {
    const int64_t v = d * a0 + row[1];
    const int64_t out = c->classes == 1
                            ? requantize((int32_t)v, row[2], row[4])
                            : round_half_away(v * row[2] + d * a1 * row[3], row[4]);
    ((int8_t *)position)[co] = (int8_t)clamp8(c, out);
  }
}

/* The whole output, tap by tap (packed words little-endian in bytes). */
static void reference(const shift_case *c, uint8_t *out) {
  const int32_t k_count = taps_of(c);
  const int32_t depth_bytes = c->packed ? (c->cout + 31) / 32 * 4 : c->cout;
  int32_t oh = 1, ow = 1, top = 0, left = 0, n, y, x, co, ky, kx, ci;
  decode_weights(c);
  if (c->op != FULLY_CONNECTED) {
    axis(c->height, c->kh, c->sh, c->dh, c->padding, &oh, &top);
    axis(c->width, c->kw, c->sw, c->dw, c->padding, &ow, &left);
  }
  memset(out, 0, (size_t)c->batch * oh * ow * depth_bytes);
  for (n = 0; n < c->batch; ++n) {
    for (y = 0; y < oh; ++y) {
      for (x = 0; x < ow; ++x) {
        uint8_t *position = out + (((size_t)n * oh + y) * ow + x) * depth_bytes;
        for (co = 0; co < c->cout; ++co) {
          int64_t a[2] = {0, 0};
          int32_t cls;
          for (cls = 0; cls < c->classes; ++cls) {
            const int64_t *w = weight[cls] + (size_t)co * k_count;
            if (c->op == FULLY_CONNECTED) {
              for (ci = 0; ci < c->cin; ++ci) {
                a[cls] += (input[(size_t)n * c->cin + ci] - c->zp_in) * w[ci];
              }
              continue;
            }
            for (ky = 0; ky < c->kh; ++ky) {
              for (kx = 0; kx < c->kw; ++kx) {
                const int32_t iy = y * c->sh - top + ky * c->dh;
                const int32_t ix = x * c->sw - left + kx * c->dw;
                const int8_t *q;
                if (iy < 0 || iy >= c->height || ix < 0 || ix >= c->width) continue;
                /* only inside the image: a padded tap's offset would wrap */
                q = input + (((size_t)n * c->height + iy) * c->width + ix) * c->cin;
                if (c->op == DEPTHWISE) {
                  a[cls] += (q[co / c->dm] - c->zp_in) * w[ky * c->kw + kx];
                } else {
                  for (ci = 0; ci < c->cin; ++ci) {
                    a[cls] += (q[ci] - c->zp_in) * w[(ky * c->kw + kx) * c->cin + ci];
                  }
                }
              }
            }
          }
          reference_output(c, a[0], a[1], co, position);
        }
      }
    }
  }
}

static size_t output_bytes(const shift_case *c) {
  tfqp_tensor inputs[5], output;
  describe_case(c, inputs, &output);
  return output.bytes;
}

/* ------------------------------------------------------------- random data */

static void random_input(const shift_case *c) {
  int32_t j;
  for (j = 0; j < c->batch * (c->op == FULLY_CONNECTED ? 1 : c->height * c->width) * c->cin;
       ++j) {
    input[j] = (int8_t)test_random_range(-128, 127);
  }
}

static shift_case random_case(int32_t i) {
  shift_case c;
  memset(&c, 0, sizeof c);
  c.op = i % 3;
  c.batch = test_random_range(1, 2);
  c.bits = 1 + i % 5;
  c.terms = 1 + (i / 5) % 3;
  c.packed = (i / 15) % 3 == 2;
  c.classes = c.packed ? 1 : 1 + (i / 7) % 2;
  c.zp_in = test_random_range(-128, 127);
  c.zp_out = c.packed ? 0 : test_random_range(-20, 20);
  c.act_given = !c.packed && i % 4 == 0;
  c.act_min = c.act_given ? test_random_range(-128, 0) : -128;
  c.act_max = c.act_given ? test_random_range(c.act_min, 127) : 127;
  c.dm = 1;
  if (c.op == FULLY_CONNECTED) {
    c.cin = test_random_range(1, 90);
    c.cout = test_random_range(1, MAX_COUT);
    return c;
  }
  c.height = test_random_range(1, 7);
  c.width = test_random_range(1, 7);
  c.cin = test_random_range(1, c.op == CONV ? 9 : 20);
  c.kh = test_random_range(1, 3);
  c.kw = test_random_range(1, 3);
  c.sh = test_random_range(1, 3);
  c.sw = test_random_range(1, 2);
  c.dh = test_random_range(1, 2);
  c.dw = test_random_range(1, 3);
  c.padding = ((c.kh - 1) * c.dh < c.height && (c.kw - 1) * c.dw < c.width && i % 2) ? 1 : 0;
  if (c.op == DEPTHWISE) {
    c.dm = 1 + (i / 3) % 2;
    c.cout = c.cin * c.dm;
  } else {
    c.cout = test_random_range(1, 40);
  }
  return c;
}

/* Random codes with some words of zero-decoding codes only; code 0 decodes
 * to 0 in every class, and so does code 2^b - 1 when b >= 3 (two zero codes:
 * a word is dead when all its codes are either). */
static void random_codes(const shift_case *c) {
  const int32_t per_word = 32 / c->bits;
  const int32_t count = taps_of(c) * c->terms;
  const int32_t top = (1 << c->bits) - 1;
  int32_t co, r;
  for (co = 0; co < c->cout; ++co) {
    for (r = 0; r < count; ++r) {
      const int32_t word = r / per_word;
      const int dead = (co + word) % 3 == 1 || co % 7 == 3;
      uint8_t code = (uint8_t)test_random_range(0, top);
      if (dead) code = (c->bits >= 3 && (test_random() & 1)) ? (uint8_t)top : 0;
      codes[(size_t)co * count + r] = code;
    }
  }
  tfqp_pack_codes(codes, c->cout, count, c->bits, words);
}

/* Code values within the accumulator bound for these sizes; the outputs'
 * multipliers spread them over (and past) the int8 range. */
static void random_values_and_transform(const shift_case *c) {
  const int32_t columns = 1 << c->bits;
  const int32_t count = taps_of(c) * c->terms;
  int32_t i, co;
  for (i = 0; i < c->classes * columns; ++i) {
    const int32_t code = i % columns;
    int32_t v = test_random_range(-(1 << 14), 1 << 14);
    if (i % 5 == 1) v = (i & 1) ? (1 << 14) : -(1 << 14);
    if (code == 0 || (c->bits >= 3 && code == columns - 1)) v = 0;
    values[i] = (int16_t)v;
  }
  for (co = 0; co < c->cout; ++co) {
    int32_t *row = transform + co * (c->packed ? 2 : 5);
    row[0] = (test_random() & 1) ? 1 : -1;
    if (c->packed) {
      row[1] = test_random_range(-(1 << 20), 1 << 20);
      if (co == 0) row[1] = INT32_MIN; /* never */
      if (co == 1) row[1] = INT32_MAX; /* always */
      continue;
    }
    row[1] = test_random_range(-100000, 100000);
    row[2] = test_random_range(1 << 30, INT32_MAX);
    if (c->classes == 1) {
      /* |A| up to ~ count * 255 * 2^14: s brings it to ~2^8 */
      int32_t magnitude = 0;
      while ((1 << magnitude) < count) ++magnitude;
      row[3] = 0;
      row[4] = -(magnitude / 2 + 14) + test_random_range(-2, 2);
      if (co == 2) row[2] = 0; /* a zero multiplier */
      if (co == 3) row[4] = -31;
    } else {
      int32_t magnitude = 0;
      while ((1 << magnitude) < count) ++magnitude;
      row[3] = test_random_range(1 << 29, INT32_MAX);
      row[4] = 31 + 14 + magnitude / 2 - 6 + test_random_range(-2, 2);
      if (co == 2) row[4] = 0;  /* saturates */
      if (co == 3) row[4] = 62; /* rounds to 0 */
    }
  }
}

/* The codes output's rows (d, base, t_1 .. t_L) for the current input, codes
 * and values: about half the thresholds are accumulators the reference
 * computes (ties), some repeated (equal thresholds), the rest random; channel
 * 0 steps below every accumulator, channel 1 above. */
static void levels_transform(const shift_case *c) {
  const int32_t count = c->levels - 1;
  int32_t co, i, j;
  for (co = 0; co < c->cout; ++co) {
    int32_t *row = transform + (size_t)co * (size_t)(1 + c->levels);
    row[0] = (test_random() & 1) ? 1 : -1;
    row[1] = test_random_range(-128, 127 - count);
    level_sample_count[co] = 0;
  }
  collecting_levels = 1;
  reference(c, expected);
  collecting_levels = 0;
  for (co = 0; co < c->cout; ++co) {
    int32_t *t = transform + (size_t)co * (size_t)(1 + c->levels) + 2;
    const int32_t samples = level_sample_count[co];
    for (i = 0; i < count; ++i) {
      t[i] = samples > 0 && (test_random() & 1)
                 ? (int32_t)level_samples[co][test_random_range(0, samples - 1)]
                 : test_random_range(-(1 << 22), 1 << 22);
      if (i > 0 && test_random_range(0, 9) == 0) t[i] = t[i - 1];
      if (co == 0) t[i] = INT32_MIN;
      if (co == 1) t[i] = INT32_MAX;
    }
    for (i = 1; i < count; ++i) { /* insertion sort */
      const int32_t v = t[i];
      for (j = i; j > 0 && t[j - 1] > v; --j) t[j] = t[j - 1];
      t[j] = v;
    }
  }
}

/* ------------------------------------------------------------------- tests */

static void test_pack_round_trip(void) {
  int32_t bits, count;
  for (bits = 1; bits <= 5; ++bits) {
    for (count = 1; count <= 70; count += 3) {
      const int32_t per_word = 32 / bits;
      const int32_t row = (count + per_word - 1) / per_word;
      int32_t i, r;
      for (i = 0; i < 3 * count; ++i) codes[i] = (uint8_t)test_random_range(0, (1 << bits) - 1);
      tfqp_pack_codes(codes, 3, count, bits, words);
      tfqp_unpack_codes(words, 3, count, bits, unpacked);
      CHECK(memcmp(codes, unpacked, (size_t)3 * count) == 0);
      CHECK_EQ(TFQP_CODE_WORDS(count, bits), row);
      for (r = 0; r < 3; ++r) {
        /* code j of a word at bits [j*b, j*b + b); everything else 0 */
        for (i = 0; i < row * per_word; ++i) {
          const uint32_t code = i < count ? codes[r * count + i] : 0u;
          CHECK_EQ((words[r * row + i / per_word] >> ((i % per_word) * bits)) &
                       ((1u << bits) - 1u),
                   code);
        }
        for (i = 0; i < row; ++i) {
          CHECK_EQ(words[r * row + i] & ~tfqp_code_word_mask(per_word, bits), 0);
        }
      }
      digest_bytes(words, (size_t)3 * row * 4);
    }
  }
}

static void test_ops_against_reference(void) {
  long mismatches = 0, cases = 0;
  int32_t i;
  for (i = 0; i < 360; ++i) {
    const shift_case c = random_case(i);
    tfqp_error e;
    size_t bytes;
    random_input(&c);
    random_codes(&c);
    random_values_and_transform(&c);
    bytes = output_bytes(&c);
    CHECK(bytes <= MAX_OUTPUT);
    reference(&c, expected);
    CHECK_EQ(run_case(&c, got, &e), TFQP_OK);
    if (memcmp(got, expected, bytes) != 0) {
      ++mismatches;
      fprintf(stderr, "shift case %d (%s, b%d T%d C%d packed %d) differs\n", (int)i,
              op_names[c.op], (int)c.bits, (int)c.terms, (int)c.classes, (int)c.packed);
    }
    digest_bytes(got, bytes);
    ++cases;
  }
  CHECK_EQ(mismatches, 0);
  CHECK_EQ(cases, 360);
}

/* `poisoned`: the codes `words` of case c with every dead word (all codes
 * worth 0 in every class) rewritten with other codes worth 0, drawn at random
 * among them, after checking that the prepared op's table marks exactly those
 * words dead; returns their count. A dead word is whatever mix of zero codes
 * the converter wrote, so its contents must never change the output, whether
 * a path skips it (the portable one always does) or reads its row whole
 * (the Cortex-M kernels, where that costs less than skipping). */
static int32_t poison_dead_words(const shift_case *c, const prepared_op *p,
                                 tfqp_word *poisoned) {
  const int32_t per_word = 32 / c->bits;
  const int32_t count = taps_of(c) * c->terms;
  const int32_t row = row_words(c);
  const tfqp_shift_layer *layer = c->op == FULLY_CONNECTED
                                      ? &p->params.shift_fully_connected.layer
                                      : &p->params.shift_conv2d.layer;
  uint8_t zero_codes[32];
  int32_t co, w, j, cls, dead = 0, marked = 0, zeros = 0;
  for (j = 0; j < (1 << c->bits); ++j) {
    int32_t worth = 0;
    for (cls = 0; cls < c->classes; ++cls) worth |= values[cls * (1 << c->bits) + j];
    if (worth == 0) zero_codes[zeros++] = (uint8_t)j;
  }
  memcpy(poisoned, words, (size_t)c->cout * row * 4);
  for (co = 0; co < c->cout; ++co) {
    const uint32_t *live = (const uint32_t *)p->table + layer->live_at +
                           (size_t)co * layer->live_stride;
    for (w = 0; w < row; ++w) {
      int has_work = 0;
      for (j = w * per_word; j < (w + 1) * per_word && j < count; ++j) {
        const uint8_t code = codes[(size_t)co * count + j];
        for (cls = 0; cls < c->classes; ++cls) has_work |= values[cls * (1 << c->bits) + code];
      }
      marked += (int32_t)((live[w / 32] >> (w % 32)) & 1u);
      CHECK_EQ((live[w / 32] >> (w % 32)) & 1u, has_work != 0);
      if (!has_work) {
        uint32_t word = 0;
        ++dead;
        for (j = w * per_word; j < (w + 1) * per_word && j < count; ++j) {
          word |= (uint32_t)zero_codes[test_random_range(0, zeros - 1)]
                  << ((j - w * per_word) * c->bits);
        }
        poisoned[(size_t)co * row + w] = word;
      }
    }
  }
  CHECK_EQ(marked + dead, c->cout * row);
  return dead;
}

/* Case c (global data) against the reference, then with its dead words
 * poisoned (poison_dead_words): the same bytes; returns the dead words. */
static int32_t check_poisoned_case(const shift_case *c) {
  const void *data[5] = {input, words, values, transform, code_lists};
  tfqp_word *poisoned = (tfqp_word *)malloc((size_t)c->cout * row_words(c) * 4);
  prepared_op p;
  tfqp_error e;
  int32_t dead;
  CHECK(poisoned != NULL);
  reference(c, expected);
  CHECK_EQ(prepare_op(c, data, &p, &e), TFQP_OK);
  eval_op(c, &p, words, got);
  CHECK(memcmp(got, expected, output_bytes(c)) == 0);
  dead = poison_dead_words(c, &p, poisoned);
  eval_op(c, &p, poisoned, got);
  CHECK(memcmp(got, expected, output_bytes(c)) == 0);
  digest_bytes(got, output_bytes(c));
  release(&p);
  free(poisoned);
  return dead;
}

/* Dead words: marked in the table (as many as the test counts), and other
 * zero codes in every dead word give the same bytes. */
static void test_dead_words_are_skipped(void) {
  int32_t i;
  for (i = 0; i < 30; ++i) {
    const shift_case c = random_case(i * 7 + 1);
    const void *data[5] = {input, words, values, transform, code_lists};
    tfqp_word *poisoned = (tfqp_word *)malloc((size_t)c.cout * row_words(&c) * 4);
    prepared_op p;
    tfqp_error e;
    CHECK(poisoned != NULL);
    random_input(&c);
    random_codes(&c);
    random_values_and_transform(&c);
    reference(&c, expected);
    CHECK_EQ(prepare_op(&c, data, &p, &e), TFQP_OK);
    CHECK(poison_dead_words(&c, &p, poisoned) > 0);
    eval_op(&c, &p, poisoned, got);
    CHECK(memcmp(got, expected, output_bytes(&c)) == 0);
    release(&p);
    free(poisoned);
  }
}

/* The constants' data at prepare: a layer without a dead word keeps one
 * shared all-live bitmap row (Cout - 1 rows fewer in its table, the RAM a
 * microcontroller's arena pays), one with a dead word every row; the bytes
 * equal the reference's either way. */
static void test_shared_live_row(void) {
  int32_t i, shared = 0, kept = 0;
  for (i = 0; i < 120; ++i) {
    const shift_case c = random_case(i * 3 + 2);
    const void *data[5] = {input, words, values, transform, code_lists};
    prepared_op plain, given;
    const tfqp_shift_layer *layer;
    tfqp_error e;
    int32_t dead;
    tfqp_word *poisoned = (tfqp_word *)malloc((size_t)c.cout * row_words(&c) * 4);
    CHECK(poisoned != NULL);
    random_input(&c);
    random_codes(&c);
    if (i % 2 == 0) {
      /* a dense layer: code 1 (worth +-2^14 in class 0) first in every word */
      const int32_t count = taps_of(&c) * c.terms, per_word = 32 / c.bits;
      int32_t co, r;
      for (co = 0; co < c.cout; ++co) {
        for (r = 0; r < count; r += per_word) codes[(size_t)co * count + r] = 1;
      }
      tfqp_pack_codes(codes, c.cout, count, c.bits, words);
    }
    random_values_and_transform(&c);
    reference(&c, expected);
    CHECK_EQ(prepare_op_with(&c, data, 0, &plain, &e), TFQP_OK);
    CHECK_EQ(prepare_op_with(&c, data, 1, &given, &e), TFQP_OK);
    dead = poison_dead_words(&c, &plain, poisoned); /* checks plain's bitmap */
    layer = c.op == FULLY_CONNECTED ? &given.params.shift_fully_connected.layer
                                    : &given.params.shift_conv2d.layer;
    CHECK_EQ(layer->live_stride, dead > 0 ? (size_t)layer->live_words : 0u);
    CHECK_EQ(given.buffers.table_bytes,
             plain.buffers.table_bytes -
                 (dead > 0 ? 0u
                           : (size_t)(c.cout - 1) * (size_t)layer->live_words * sizeof(uint32_t)));
    eval_op(&c, &given, words, got);
    CHECK(memcmp(got, expected, output_bytes(&c)) == 0);
    eval_op(&c, &plain, words, got);
    CHECK(memcmp(got, expected, output_bytes(&c)) == 0);
    digest_bytes(got, output_bytes(&c));
    if (dead > 0) {
      ++kept;
    } else {
      ++shared;
    }
    release(&plain);
    release(&given);
    free(poisoned);
  }
  CHECK(shared > 0 && kept > 0); /* both layouts ran */
}

/* A valid case of op `op` with one class, int8 output, b = 3, T = 2. */
static shift_case valid_case(int32_t op, int32_t packed) {
  shift_case c;
  memset(&c, 0, sizeof c);
  c.op = op;
  c.batch = 1;
  c.height = 5;
  c.width = 4;
  c.cin = 3;
  c.kh = c.kw = 3;
  c.sh = c.sw = c.dh = c.dw = 1;
  c.dm = 2;
  c.cout = op == DEPTHWISE ? 6 : 5;
  c.bits = 3;
  c.terms = 2;
  c.classes = 1;
  c.packed = packed;
  c.act_min = -128;
  c.act_max = 127;
  random_codes(&c);
  random_values_and_transform(&c);
  return c;
}

/* Expects case c to be rejected with `status` naming `name`. */
static void expect_rejected(const shift_case *c, tfqp_status status, const char *name) {
  tfqp_error e;
  memset(&e, 0, sizeof e);
  CHECK_EQ(run_case(c, got, &e), status);
  CHECK(e.name != NULL && strcmp(e.name, name) == 0);
  if (e.name == NULL || strcmp(e.name, name) != 0) {
    fprintf(stderr, "  rejected as %s (%s), expected %s\n", e.name ? e.name : "?",
            e.message ? e.message : "?", name);
  }
}

static void test_options_and_shapes_rejected(void) {
  int32_t op;
  for (op = CONV; op <= FULLY_CONNECTED; ++op) {
    shift_case c = valid_case(op, 0);
    tfqp_error e;
    CHECK_EQ(run_case(&c, got, &e), TFQP_OK);
    c.terms = 0;
    expect_rejected(&c, TFQP_ERROR_OPTION_VALUE, "terms");
    c = valid_case(op, 0);
    c.act_min = 5;
    c.act_max = 4;
    c.act_given = 1;
    expect_rejected(&c, TFQP_ERROR_OPTION_VALUE, "activation_max");
    c = valid_case(op, 1);
    CHECK_EQ(run_case(&c, got, &e), TFQP_OK);
    c.act_given = 1;
    expect_rejected(&c, TFQP_ERROR_OPTIONS, "activation_min");
    c = valid_case(op, 1);
    c.classes = 2; /* two classes need the int8 output */
    expect_rejected(&c, TFQP_ERROR_TENSOR_SHAPE, "code_table");
    c = valid_case(op, 0);
    c.classes = 3;
    expect_rejected(&c, TFQP_ERROR_TENSOR_SHAPE, "code_table");
    c = valid_case(op, 0);
    c.zp_in = 200;
    expect_rejected(&c, TFQP_ERROR_TENSOR_DATA, "input");
    c = valid_case(op, 0);
    c.zp_out = -129;
    expect_rejected(&c, TFQP_ERROR_TENSOR_DATA, "output");
    if (op != FULLY_CONNECTED) {
      c = valid_case(op, 0);
      c.padding = 2;
      expect_rejected(&c, TFQP_ERROR_OPTION_VALUE, "padding");
      c = valid_case(op, 0);
      c.dw = 0;
      expect_rejected(&c, TFQP_ERROR_OPTION_VALUE, "dilation_width_factor");
      c = valid_case(op, 0);
      c.padding = 1;
      c.kh = 3;
      c.dh = 3; /* VALID: dilated filter 7 > height 5 */
      expect_rejected(&c, TFQP_ERROR_TENSOR_SHAPE, "height");
    }
    if (op == DEPTHWISE) {
      c = valid_case(op, 0);
      c.dm = 0;
      expect_rejected(&c, TFQP_ERROR_OPTION_VALUE, "depth_multiplier");
    }
  }
}

/* Shapes the case description cannot express: one tensor changed. */
static void test_tensors_rejected(void) {
  const shift_case c = valid_case(CONV, 0);
  const tfqp_op *op = op_of(&c);
  tfqp_op_options options;
  tfqp_tensor inputs[5], output, bad;
  tfqp_op_params params;
  tfqp_op_buffers buffers;
  tfqp_error e;
  int32_t dims[4];
  fill_options(&c, &options);
  describe_case(&c, inputs, &output);
  CHECK_EQ(op->prepare(&options, inputs, 4, &output, &params, &buffers, &e), TFQP_OK);
  /* codes one word short */
  bad = inputs[1];
  dims[0] = c.cout;
  dims[1] = row_words(&c) - 1;
  describe(&inputs[1], TFQP_TYPE_INT32, 2, dims, 0);
  CHECK_EQ(op->prepare(&options, inputs, 4, &output, &params, &buffers, &e),
           TFQP_ERROR_TENSOR_SHAPE);
  CHECK(strcmp(e.name, "codes") == 0);
  inputs[1] = bad;
  /* a code table of 3 columns, of int8 */
  bad = inputs[2];
  dims[0] = 1;
  dims[1] = 3;
  describe(&inputs[2], TFQP_TYPE_INT16, 2, dims, 0);
  CHECK_EQ(op->prepare(&options, inputs, 4, &output, &params, &buffers, &e),
           TFQP_ERROR_TENSOR_SHAPE);
  dims[1] = 8;
  describe(&inputs[2], TFQP_TYPE_INT8, 2, dims, 0);
  CHECK_EQ(op->prepare(&options, inputs, 4, &output, &params, &buffers, &e),
           TFQP_ERROR_TENSOR_TYPE);
  inputs[2] = bad;
  /* a packed transform for an int8 output */
  bad = inputs[3];
  dims[0] = c.cout;
  dims[1] = 2;
  describe(&inputs[3], TFQP_TYPE_INT32, 2, dims, 0);
  CHECK_EQ(op->prepare(&options, inputs, 4, &output, &params, &buffers, &e),
           TFQP_ERROR_TENSOR_SHAPE);
  CHECK(strcmp(e.name, "transform") == 0);
  inputs[3] = bad;
  /* an int16 output; an int8 output one channel short */
  bad = output;
  output.type = TFQP_TYPE_INT16;
  CHECK_EQ(op->output_dims(&options, inputs, 4, TFQP_TYPE_INT16, &dims[0], dims, &e),
           TFQP_ERROR_TENSOR_TYPE);
  output = bad;
  output.dims[3] -= 1;
  output.bytes -= (size_t)output.dims[0] * output.dims[1] * output.dims[2];
  CHECK_EQ(op->prepare(&options, inputs, 4, &output, &params, &buffers, &e),
           TFQP_ERROR_TENSOR_SHAPE);
  CHECK(strcmp(e.name, "output") == 0);
  output = bad;
  /* terms * taps past 2^31 - 1 */
  options.shift_conv2d.output.terms = INT32_MAX / 2;
  CHECK_EQ(op->prepare(&options, inputs, 4, &output, &params, &buffers, &e),
           TFQP_ERROR_OPTION_VALUE);
  CHECK(strcmp(e.name, "terms") == 0);
  /* a huge filter whose taps overflow 32 bits before Cin */
  fill_options(&c, &options);
  options.shift_conv2d.window.filter_height = 1 << 20;
  options.shift_conv2d.window.filter_width = 1 << 20;
  CHECK(op->prepare(&options, inputs, 4, &output, &params, &buffers, &e) != TFQP_OK);
  /* a fully connected input whose elements are not rows of Cin */
  {
    const shift_case f = valid_case(FULLY_CONNECTED, 0);
    const tfqp_op *fc = op_of(&f);
    fill_options(&f, &options);
    describe_case(&f, inputs, &output);
    dims[0] = 1;
    dims[1] = 2;
    dims[2] = 2;
    describe(&inputs[0], TFQP_TYPE_INT8, 3, dims, 0); /* 4 values, Cin 3 */
    CHECK_EQ(fc->output_dims(&options, inputs, 4, TFQP_TYPE_INT8, &dims[3], dims, &e),
             TFQP_ERROR_TENSOR_SHAPE);
    dims[0] = 2;
    dims[1] = 1;
    dims[2] = 3;
    describe(&inputs[0], TFQP_TYPE_INT8, 3, dims, 0); /* rank 3: two rows of 3 */
    CHECK_EQ(fc->output_dims(&options, inputs, 4, TFQP_TYPE_INT8, &dims[3], dims, &e), TFQP_OK);
    CHECK_EQ(dims[0], 2);
    CHECK_EQ(dims[1], f.cout);
  }
}

/* Sets *slot (a transform entry or, through its signed view, a code word) to
 * value, expects the case rejected for its data naming `name` with `value_named`
 * (the channel, or the table entry's index), and restores *slot. */
static void expect_data_rejected(const shift_case *c, int32_t *slot, int32_t value,
                                 const char *name, int64_t value_named) {
  const int32_t saved = *slot;
  tfqp_error e;
  memset(&e, 0, sizeof e);
  *slot = value;
  CHECK_EQ(run_case(c, got, &e), TFQP_ERROR_TENSOR_DATA);
  CHECK(e.name != NULL && strcmp(e.name, name) == 0);
  CHECK_EQ(e.value, value_named);
  *slot = saved;
}

/* Constant data init_table rejects, each naming the output channel. */
static void test_constants_rejected(void) {
  const int32_t per_word = 32 / 3;
  shift_case c = valid_case(CONV, 0);
  const int32_t count = taps_of(&c) * c.terms;
  const int32_t row = row_words(&c);
  int32_t *signed_words = (int32_t *)(void *)words;
  int32_t entry;
  tfqp_error e;
  random_codes(&c);
  random_values_and_transform(&c);
  CHECK_EQ(run_case(&c, got, &e), TFQP_OK);
  /* a code table entry past 2^14 (the table is int16: through a copy) */
  entry = values[5];
  values[5] = (1 << 14) + 1;
  CHECK_EQ(run_case(&c, got, &e), TFQP_ERROR_TENSOR_DATA);
  CHECK(strcmp(e.name, "code_table") == 0 && e.value == 5);
  values[5] = -(1 << 14);
  CHECK_EQ(run_case(&c, got, &e), TFQP_OK);
  values[5] = (int16_t)entry;
  /* padding bits: the top 32 - P*b bits of a word; a code past R */
  expect_data_rejected(&c, &signed_words[2 * row + 1], signed_words[2 * row + 1] | INT32_MIN,
                       "codes", 2);
  CHECK(count % per_word != 0); /* the last word has unused codes */
  expect_data_rejected(&c, &signed_words[3 * row + row - 1],
                       signed_words[3 * row + row - 1] | 1 << ((count % per_word) * 3), "codes",
                       3);
  /* transform rows (d, B, M0, M1, s) */
  expect_data_rejected(&c, &transform[5 * 1 + 0], 0, "transform[:, 0]", 1);
  expect_data_rejected(&c, &transform[5 * 2 + 2], -1, "transform[:, 2]", 2);
  expect_data_rejected(&c, &transform[5 * 3 + 3], 7, "transform[:, 3]", 3); /* M1, one class */
  expect_data_rejected(&c, &transform[5 * 4 + 4], 31, "transform[:, 4]", 4);
  expect_data_rejected(&c, &transform[5 * 4 + 4], -32, "transform[:, 4]", 4);
  expect_data_rejected(&c, &transform[5 * 4 + 1], INT32_MAX, "codes", 4); /* |B| past the bound */
  transform[5 * 4 + 4] = -31;
  CHECK_EQ(run_case(&c, got, &e), TFQP_OK);
  /* two classes: M1 >= 0, s in [0, 62] */
  c.classes = 2;
  random_values_and_transform(&c);
  CHECK_EQ(run_case(&c, got, &e), TFQP_OK);
  expect_data_rejected(&c, &transform[5 * 1 + 3], -5, "transform[:, 3]", 1);
  expect_data_rejected(&c, &transform[5 * 1 + 4], 63, "transform[:, 4]", 1);
  expect_data_rejected(&c, &transform[5 * 1 + 4], -1, "transform[:, 4]", 1);
  transform[5 * 1 + 4] = 62;
  CHECK_EQ(run_case(&c, got, &e), TFQP_OK);
}

/* The bound holds exactly at its edge: K taps of weight w with
 * K * |w| * 255 + |B| = 2^31 - 1 is accepted and exact, one more unit is not. */
static void test_accumulator_bound_edge(void) {
  shift_case c;
  tfqp_error e;
  const int32_t k = 8421; /* 8421 * 1000 * 255 = 2147355000 */
  int32_t i;
  memset(&c, 0, sizeof c);
  c.op = FULLY_CONNECTED;
  c.batch = 2;
  c.cin = k;
  c.cout = 2;
  c.bits = 1;
  c.terms = 1;
  c.classes = 1;
  c.zp_in = -128;
  c.act_min = -128;
  c.act_max = 127;
  values[0] = 1000;
  values[1] = -1000;
  for (i = 0; i < k; ++i) {
    codes[i] = 0;     /* channel 0: +1000 everywhere */
    codes[k + i] = 1; /* channel 1: -1000 everywhere */
    input[i] = 127;
    input[k + i] = -128;
  }
  tfqp_pack_codes(codes, 2, k, 1, words);
  for (i = 0; i < 2; ++i) {
    int32_t *row = transform + 5 * i;
    row[0] = 1;
    row[1] = INT32_MAX - k * 1000 * 255; /* 128647 */
    row[2] = 1 << 30;
    row[3] = 0;
    row[4] = -30;
  }
  reference(&c, expected);
  CHECK_EQ(run_case(&c, got, &e), TFQP_OK);
  CHECK(memcmp(got, expected, 4) == 0);
  /* A_0 = 255 * 8421 * 1000 + B = 2^31 - 1: (2^31 - 1) / 2 / 2^30 -> 1 */
  CHECK_EQ(((int8_t *)got)[0], 1);
  transform[1] += 1;
  CHECK_EQ(run_case(&c, got, &e), TFQP_ERROR_TENSOR_DATA);
  CHECK_EQ(e.value, 0);
}

/* ---------------------------------------------------- fast-path layouts */

/* Codes with about `zero_percent` % zero-valued codes (code 0) but no dead
 * word (each word keeps one code of nonzero value in class 0), so the fast
 * paths' dense and zero-skipping kernels run rather than the dead-word
 * handling the random cases above mostly exercise. */
static void live_codes(const shift_case *c, int32_t zero_percent) {
  const int32_t per_word = 32 / c->bits;
  const int32_t count = taps_of(c) * c->terms;
  const int32_t top = (1 << c->bits) - 1;
  int32_t co, r, code, live_code = 0;
  for (code = 1; code <= top && live_code == 0; ++code) {
    if (values[code] != 0) live_code = code;
  }
  CHECK(live_code != 0);
  for (co = 0; co < c->cout; ++co) {
    for (r = 0; r < count; ++r) {
      codes[(size_t)co * count + r] =
          test_random_range(0, 99) < zero_percent ? 0 : (uint8_t)test_random_range(0, top);
      if (r % per_word == per_word - 1 || r == count - 1) {
        int32_t first = r - r % per_word, j, live = 0;
        for (j = first; j <= r; ++j) live |= values[codes[(size_t)co * count + j]] != 0;
        if (!live) codes[(size_t)co * count + first + test_random_range(0, r - first)] = (uint8_t)live_code;
      }
    }
  }
  tfqp_pack_codes(codes, c->cout, count, c->bits, words);
}

static shift_case layout_case(int32_t op, int32_t bits, int32_t cin, int32_t cout) {
  shift_case c;
  memset(&c, 0, sizeof c);
  c.op = op;
  c.batch = 1;
  c.bits = bits;
  c.terms = 1;
  c.classes = 1;
  c.height = 5;
  c.width = 6;
  c.cin = cin;
  c.cout = cout;
  c.kh = c.kw = 3;
  c.sh = c.sw = c.dh = c.dw = 1;
  c.dm = 1;
  c.zp_in = -5;
  c.zp_out = 3;
  c.act_min = -128;
  c.act_max = 127;
  return c;
}

/* Code values in [-limit, limit] (the zero codes kept, the others nonzero),
 * and outputs scaled up by 2^8 to match: decoded weights the x86 path takes
 * (it decodes to int8; |w| <= 64 keeps its AVX2 kernels exact too). */
static void small_values(const shift_case *c, int32_t limit) {
  const int32_t columns = 1 << c->bits;
  int32_t i, co;
  for (i = 0; i < c->classes * columns; ++i) {
    /* nonzero codes stay nonzero (live_codes needs a code of nonzero value) */
    if (values[i] != 0) {
      values[i] = (int16_t)(test_random_range(1, limit) * ((test_random() & 1) ? 1 : -1));
    }
  }
  for (co = 0; co < c->cout && !c->packed && !c->levels; ++co) {
    int32_t *row = transform + co * 5;
    if (c->classes == 1) {
      row[4] = row[4] + 8 > 30 ? 30 : row[4] + 8;
    } else {
      row[4] = row[4] - 8 < 0 ? 0 : row[4] - 8;
    }
  }
}

/* Each case against the reference, its output into the digest; once with
 * code values up to 2^14, once with small ones (see small_values). */
/* check_layout_case's zero_percent for random_codes' pattern of dead words
 * (whole rows and every third word) rather than live words only. */
#define DEAD_WORDS (-1)

static void check_layout_case(const shift_case *c, int32_t zero_percent) {
  int32_t small;
  for (small = 0; small <= 1; ++small) {
    tfqp_error e;
    const size_t bytes = output_bytes(c);
    CHECK(bytes <= MAX_OUTPUT);
    random_input(c);
    random_values_and_transform(c);
    if (small) small_values(c, 64 / c->terms);
    if (zero_percent == DEAD_WORDS) {
      random_codes(c);
    } else {
      live_codes(c, zero_percent);
    }
    if (c->levels) levels_transform(c);
    reference(c, expected);
    CHECK_EQ(run_case(c, got, &e), TFQP_OK);
    if (memcmp(got, expected, bytes) != 0) {
      fprintf(stderr, "layout case (%s, b%d T%d C%d packed %d, cin %d cout %d, small %d) "
              "differs\n", op_names[c->op], (int)c->bits, (int)c->terms, (int)c->classes,
              (int)c->packed, (int)c->cin, (int)c->cout, (int)small);
      CHECK(0);
    }
    digest_bytes(got, bytes);
  }
}

/* The layouts the fast paths (shift_arm.c, shift_avx2.c) special-case, for
 * every code width: 3x3 depthwise on channels in fours (with a narrow
 * activation range, strides and dilations, depth multiplier 2, a channel
 * count that leaves a remainder, more channels than one pass of 64), convolutions on positions in fours
 * (a partial last block, Cin in fours and odd, dense and mostly-zero codes,
 * two terms, two classes, packed output, more channels than two blocks of
 * 16), fully connected in batch 1 on channel pairs (odd Cout) and batched. */
static void test_fast_path_layouts(void) {
  int32_t bits;
  for (bits = 1; bits <= 5; ++bits) {
    shift_case c = layout_case(DEPTHWISE, bits, 8, 8);
    check_layout_case(&c, 30);
    c.act_min = -20;
    c.act_max = 90;
    c.act_given = 1;
    check_layout_case(&c, 30);
    c = layout_case(DEPTHWISE, bits, 12, 12);
    c.sh = c.sw = 2;
    c.dh = 2;
    c.padding = 1;
    check_layout_case(&c, 0);
    c = layout_case(DEPTHWISE, bits, 6, 12);
    c.dm = 2;
    check_layout_case(&c, 50);
    c = layout_case(DEPTHWISE, bits, 8, 8);
    c.packed = 1;
    c.zp_out = 0;
    check_layout_case(&c, 10);
    c = layout_case(DEPTHWISE, bits, 68, 68);
    check_layout_case(&c, 20);

    c = layout_case(CONV, bits, 8, 5);
    c.batch = 2;
    c.height = 3;
    c.width = 3;
    check_layout_case(&c, 0);
    check_layout_case(&c, 75);
    c.cin = 7;
    check_layout_case(&c, 40);
    c.cin = 8;
    c.terms = 2;
    check_layout_case(&c, 20);
    c.terms = 1;
    c.classes = 2;
    check_layout_case(&c, 20);
    c.classes = 1;
    c.packed = 1;
    c.zp_out = 0;
    check_layout_case(&c, 60);
    c = layout_case(CONV, bits, 4, 37);
    c.height = 4;
    c.width = 3;
    check_layout_case(&c, 30);
    /* a block pair of 32 channels requantized in the AVX-512 kernel, clamped */
    c.act_min = -20;
    c.act_max = 90;
    c.act_given = 1;
    check_layout_case(&c, 30);
    c.act_min = -128;
    c.act_max = 127;
    c.act_given = 0;
    c.packed = 1;
    c.zp_out = 0;
    check_layout_case(&c, 30);

    c = layout_case(FULLY_CONNECTED, bits, 24, 45);
    check_layout_case(&c, 20);
    c = layout_case(FULLY_CONNECTED, bits, 40, 7);
    check_layout_case(&c, 0);
    check_layout_case(&c, 75);
    c.classes = 2;
    check_layout_case(&c, 30);
    c.classes = 1;
    c.terms = 3;
    check_layout_case(&c, 30);
    c.terms = 1;
    c.packed = 1;
    c.zp_out = 0;
    check_layout_case(&c, 30);
    c = layout_case(FULLY_CONNECTED, bits, 33, 6);
    c.batch = 3;
    check_layout_case(&c, 50);
    /* batch 1 with dead words (copied rows on Cortex-M): odd Cout, rows of
     * more than 32 words, two classes */
    c = layout_case(FULLY_CONNECTED, bits, 40, 9);
    check_layout_case(&c, DEAD_WORDS);
    c.cin = 350;
    c.terms = 3;
    check_layout_case(&c, DEAD_WORDS);
    c.terms = 1;
    c.classes = 2;
    check_layout_case(&c, DEAD_WORDS);
  }
}

/* Codes whose rows run through every density of zero-valued codes: row co
 * about co * 100 / (Cout - 1) % of them (row 0 none, so no dead word; the
 * last row all, every word dead), code 0 or (b >= 3) code 2^b - 1, the
 * others codes of nonzero value. */
static void graded_codes(const shift_case *c) {
  const int32_t count = taps_of(c) * c->terms;
  const int32_t top = (1 << c->bits) - 1;
  const int32_t live_top = c->bits >= 3 ? top - 1 : top;
  int32_t co, r;
  for (co = 0; co < c->cout; ++co) {
    const int32_t zero_percent = c->cout > 1 ? co * 100 / (c->cout - 1) : 50;
    for (r = 0; r < count; ++r) {
      uint8_t code = (uint8_t)test_random_range(1, live_top);
      if (test_random_range(0, 99) < zero_percent) {
        code = c->bits >= 3 && (test_random() & 1) ? (uint8_t)top : 0;
      }
      codes[(size_t)co * count + r] = code;
    }
  }
  tfqp_pack_codes(codes, c->cout, count, c->bits, words);
}

/* code_lists / code_list_words: the live-code lists of case c's codes
 * (formats.h), built here from the unpacked codes and class 0's values. */
static void build_code_lists(const shift_case *c) {
  const int32_t count = taps_of(c) * c->terms;
  int32_t *entries = code_lists + c->cout + 1;
  int32_t co, r, next = 0;
  for (co = 0; co < c->cout; ++co) {
    code_lists[co] = next;
    for (r = 0; r < count; ++r) {
      const int32_t value = values[codes[(size_t)co * count + r]];
      if (value == 0) continue;
      /* bits 0..15 the value (two's complement), 16..31 the tap */
      entries[next++] = (int32_t)(((uint32_t)(r / c->terms) << 16) | ((uint32_t)value & 0xFFFFu));
    }
  }
  code_lists[c->cout] = next;
  code_list_words = c->cout + 1 + next;
  CHECK((size_t)code_list_words <= sizeof code_lists / sizeof code_lists[0]);
}

/* Fully connected on rows of every density (graded_codes: all-dead and
 * no-dead rows, odd Cout), every code width, rows of one word to past 32
 * words, two terms, packed output: the bytes of the reference, and other
 * zero codes in the dead words change nothing. With `lists` the op gets its
 * live-code lists (batch 3 in some cases: ignored there); on Cortex-M the
 * sparse channel pairs then run from them, the denser ones through the
 * dense kernel, in one layer. */
static void check_graded_fully_connected(int32_t lists) {
  static const int32_t cins[] = {5, 70, 300};
  int32_t bits, i, packed;
  for (bits = 1; bits <= 5; ++bits) {
    for (i = 0; i < 3; ++i) {
      for (packed = 0; packed <= 1; ++packed) {
        shift_case c = layout_case(FULLY_CONNECTED, bits, cins[i], 13);
        c.packed = packed;
        c.zp_out = packed ? 0 : c.zp_out;
        c.terms = 1 + (i == 1 && packed);
        c.batch = lists && i == 2 && packed ? 3 : 1;
        c.lists = lists;
        random_input(&c);
        random_values_and_transform(&c);
        graded_codes(&c);
        if (lists) build_code_lists(&c);
        CHECK(check_poisoned_case(&c) >= row_words(&c));
      }
    }
  }
  code_list_words = 0;
}

static void test_pruned_fully_connected_rows(void) { check_graded_fully_connected(0); }

static void test_code_lists(void) { check_graded_fully_connected(1); }

/* Sets code_lists[index] to value, expects the case rejected as
 * TFQP_ERROR_TENSOR_DATA naming code_lists, restores it. */
static void expect_list_rejected(const shift_case *c, int32_t index, int32_t value) {
  const int32_t saved = code_lists[index];
  code_lists[index] = value;
  expect_rejected(c, TFQP_ERROR_TENSOR_DATA, "code_lists");
  code_lists[index] = saved;
}

/* Malformed or inconsistent lists are rejected by init_table (prepare for
 * the shape) with a status naming code_lists, never read out of bounds
 * (the sanitizer build runs this): starts not from 0, decreasing, past the
 * entries or short of them, an entry of another tap or value, an entry too
 * many or too few, the wrong length, type or rank, two classes. */
static void test_code_lists_rejected(void) {
  shift_case c = layout_case(FULLY_CONNECTED, 4, 40, 5);
  int32_t first, saved_words;
  c.lists = 1;
  random_input(&c);
  random_values_and_transform(&c);
  graded_codes(&c);
  build_code_lists(&c);
  CHECK_EQ(run_case(&c, got, NULL), TFQP_OK);
  first = c.cout + 1 + code_lists[1]; /* channel 1's first entry */
  CHECK(code_lists[2] > code_lists[1]);
  expect_list_rejected(&c, 0, 1);
  expect_list_rejected(&c, 0, -1);
  expect_list_rejected(&c, 2, code_lists[1] - 1);
  expect_list_rejected(&c, 3, code_lists[c.cout] + 1);
  expect_list_rejected(&c, c.cout, code_lists[c.cout] - 1);
  expect_list_rejected(&c, c.cout, INT32_MAX);
  expect_list_rejected(&c, first, code_lists[first] + (1 << 16));     /* another tap */
  expect_list_rejected(&c, first, code_lists[first] ^ 1);             /* another value */
  expect_list_rejected(&c, first, (int32_t)0x7FFF0000);               /* tap past K */
  expect_list_rejected(&c, 2, code_lists[2] - 1);                     /* one too few */
  expect_list_rejected(&c, 1, code_lists[1] - 1);                     /* one too many */
  saved_words = code_list_words;
  code_list_words = c.cout;
  expect_rejected(&c, TFQP_ERROR_TENSOR_SHAPE, "code_lists");
  code_list_words = c.cout + 1 + c.cout * 40 + 1;
  expect_rejected(&c, TFQP_ERROR_TENSOR_SHAPE, "code_lists");
  code_list_words = saved_words;
  c.classes = 2;
  random_values_and_transform(&c);
  expect_rejected(&c, TFQP_ERROR_TENSOR_SHAPE, "code_lists");
  code_list_words = 0;
}

/* The codes output on the layouts of test_fast_path_layouts (every path's
 * kernels and output sites), levels 2, 3, 4, 16 and 256, batch 2 for the
 * convolutions, zp_in != 0, odd channel counts. */
static void test_codes_output(void) {
  static const int32_t levels[] = {2, 3, 4, 16, 256};
  int32_t bits, i;
  for (i = 0; i < 5; ++i) {
    bits = 1 + i;
    {
      shift_case c = layout_case(DEPTHWISE, bits, 8, 8);
      c.levels = levels[i];
      c.zp_out = 0;
      check_layout_case(&c, 30);
      c = layout_case(DEPTHWISE, bits, 6, 12);
      c.levels = levels[i];
      c.dm = 2;
      c.batch = 2;
      check_layout_case(&c, 20);
      c = layout_case(CONV, bits, 8, 37);
      c.levels = levels[i];
      c.batch = 2;
      c.height = 4;
      check_layout_case(&c, 30);
      c = layout_case(CONV, bits, 5, 9);
      c.levels = levels[i];
      c.padding = 1;
      check_layout_case(&c, 0);
      c = layout_case(FULLY_CONNECTED, bits, 40, 7);
      c.levels = levels[i];
      check_layout_case(&c, 30);
      c.cin = 33;
      c.batch = 3;
      check_layout_case(&c, 0);
      c = layout_case(FULLY_CONNECTED, bits, 40, 9);
      c.levels = levels[i];
      check_layout_case(&c, DEAD_WORDS);
    }
  }
}

/* #{i : t_i <= v} by the binary search against a linear count, for every
 * length up to 255, random sorted thresholds with repeats, v at, between,
 * below and above them. */
static void test_level_count(void) {
  static int32_t t[255];
  int32_t count, i, j, trial;
  for (count = 1; count <= 255; ++count) {
    for (trial = 0; trial < 4; ++trial) {
      t[0] = test_random_range(-50, 50);
      for (i = 1; i < count; ++i) t[i] = t[i - 1] + test_random_range(0, trial == 0 ? 0 : 3);
      for (i = 0; i < 2 * count + 4; ++i) {
        const int32_t v = i < count ? t[i] : i < 2 * count ? t[i - count] - 1
                                    : test_random_range(t[0] - 3, t[count - 1] + 3);
        int32_t expected_count = 0;
        for (j = 0; j < count; ++j) expected_count += t[j] <= v;
        CHECK_EQ(tfqp_level_count(t, count, v), expected_count);
      }
    }
  }
  t[0] = INT32_MIN;
  t[1] = INT32_MAX;
  CHECK_EQ(tfqp_level_count(t, 2, INT32_MIN), 1);
  CHECK_EQ(tfqp_level_count(t, 2, INT32_MAX), 2);
  CHECK_EQ(tfqp_level_count(t, 1, INT32_MIN), 1);
}

/* Transform rows and options of the codes output init_table / prepare reject. */
static void test_codes_output_rejected(void) {
  shift_case c = layout_case(CONV, 3, 5, 6);
  tfqp_error e;
  int32_t *row;
  c.levels = 4;
  random_codes(&c);
  random_values_and_transform(&c);
  levels_transform(&c);
  CHECK_EQ(run_case(&c, got, &e), TFQP_OK);
  row = transform + 2 * 5; /* channel 2 */
  expect_data_rejected(&c, &row[0], 0, "transform[:, 0]", 2);
  expect_data_rejected(&c, &row[1], 125, "transform[:, 1]", 2); /* above 127 - 3 */
  expect_data_rejected(&c, &row[1], -129, "transform[:, 1]", 2);
  expect_data_rejected(&c, &row[3], row[2] - 1, "transform[:, 2:]", 2);
  expect_data_rejected(&c, &row[4], row[3] - 1, "transform[:, 2:]", 2);
  c.act_given = 1;
  expect_rejected(&c, TFQP_ERROR_OPTIONS, "output_levels");
  c.act_given = 0;
  c.levels = 1;
  expect_rejected(&c, TFQP_ERROR_OPTION_VALUE, "output_levels");
  c.levels = 257;
  expect_rejected(&c, TFQP_ERROR_OPTION_VALUE, "output_levels");
  c.levels = 4;
  c.packed = 1;
  expect_rejected(&c, TFQP_ERROR_OPTIONS, "output_levels");
  c.packed = 0;
  c.classes = 2;
  expect_rejected(&c, TFQP_ERROR_TENSOR_SHAPE, "code_table");
}

/* Code values of a uniform grid, affine in c ^ flip (the k-bit path of
 * kbit_arm.c): alpha * (c ^ flip) + beta, alpha != 0, within 2^14. */
static void uniform_values(const shift_case *c, int32_t flip) {
  const int32_t columns = 1 << c->bits;
  const int32_t alpha = test_random_range(1, (1 << 14) / columns) * ((test_random() & 1) ? 1 : -1);
  const int32_t beta = test_random_range(-(1 << 13), 1 << 13) / 2 * 2 - alpha * (columns / 2);
  int32_t code;
  for (code = 0; code < columns; ++code) values[code] = (int16_t)(alpha * (code ^ flip) + beta);
}

/* Packed k-bit activations through the op rows (tfqp/kbit_activations.h): the
 * input as packed codes u (read as u - input_code_zero) and the codes output
 * packed, on exact-size heap buffers, against the reference on the int8 codes
 * with zero point input_code_zero. flip >= 0: uniform_values(c, flip). */
static void check_packed_io(shift_case *c, int32_t bits, int32_t flip) {
  const int32_t pixels_in = c->batch * (c->op == FULLY_CONNECTED ? 1 : c->height * c->width);
  const int32_t words_in = TFQP_KBIT_WORDS(c->cin, bits);
  const int32_t words_out = TFQP_KBIT_WORDS(c->cout, bits);
  static tfqp_word packed_in[MAX_INPUT], packed_out[MAX_OUTPUT];
  static uint8_t codes_out[MAX_OUTPUT];
  tfqp_op_options options;
  tfqp_tensor inputs[5], output;
  const void *constants[4] = {0};
  const void *data[4];
  void *outputs[1];
  prepared_op p;
  tfqp_error e;
  int32_t k, rank, dims[TFQP_MAX_RANK], pixels_out, co;
  tfqp_shift_output_options *out_options;
  for (k = 0; k < pixels_in * c->cin; ++k) input[k] = (int8_t)test_random_range(0, (1 << bits) - 1);
  random_codes(c);
  random_values_and_transform(c);
  if (flip >= 0) uniform_values(c, flip);
  levels_transform(c);
  reference(c, expected);
  tfqp_pack_codes((const uint8_t *)input, pixels_in, c->cin, bits, packed_in);
  fill_options(c, &options);
  out_options = c->op == FULLY_CONNECTED ? &options.shift_fully_connected.output
                : c->op == CONV        ? &options.shift_conv2d.output
                                       : &options.shift_depthwise_conv2d.output;
  out_options->input_bits = bits;
  out_options->input_code_zero = c->zp_in;
  out_options->output_bits = bits;
  if (c->op == CONV) options.shift_conv2d.channels_in = c->cin;
  if (c->op == DEPTHWISE) options.shift_depthwise_conv2d.channels_in = c->cin;
  describe_case(c, inputs, &output);
  inputs[0].dims[inputs[0].rank - 1] = words_in;
  tfqp_tensor_init(&inputs[0], TFQP_TYPE_INT32, inputs[0].rank, inputs[0].dims,
                   (size_t)pixels_in * (size_t)words_in * 4u, 0);
  pixels_out = (int32_t)(output.bytes / (size_t)c->cout);
  output.dims[output.rank - 1] = words_out;
  tfqp_tensor_init(&output, TFQP_TYPE_INT32, output.rank, output.dims,
                   (size_t)pixels_out * (size_t)words_out * 4u, 0);
  memset(&p, 0, sizeof p);
  p.op = op_of(c);
  CHECK_EQ(p.op->output_dims(&options, inputs, 4, TFQP_TYPE_INT32, &rank, dims, &e), TFQP_OK);
  CHECK_EQ(dims[rank - 1], words_out);
  CHECK_EQ(p.op->prepare(&options, inputs, 4, &output, &p.params, &p.buffers, &e), TFQP_OK);
  constants[1] = copy_of(words, inputs[1].bytes);
  constants[2] = copy_of(values, inputs[2].bytes);
  constants[3] = copy_of(transform, inputs[3].bytes);
  p.table = (int32_t *)malloc(p.buffers.table_bytes);
  p.scratch = malloc(p.buffers.scratch_bytes);
  CHECK(p.table != NULL && p.scratch != NULL);
  CHECK_EQ(p.op->init_table(&p.params, constants, p.table, p.buffers.table_bytes, &e), TFQP_OK);
  data[0] = copy_of(packed_in, inputs[0].bytes);
  data[1] = copy_of(words, inputs[1].bytes);
  data[2] = NULL;
  data[3] = constants[3]; /* the codes output reads its transform rows at eval */
  outputs[0] = malloc(output.bytes);
  p.op->eval(&p.params, p.table, data, outputs, p.scratch);
  memcpy(packed_out, outputs[0], output.bytes);
  digest_bytes(packed_out, output.bytes);
  tfqp_unpack_codes(packed_out, pixels_out, c->cout, bits, codes_out);
  for (k = 0; k < pixels_out; ++k) {
    for (co = 0; co < c->cout; ++co) {
      const int32_t base = transform[(size_t)co * (size_t)(1 + c->levels) + 1];
      CHECK_EQ(codes_out[(size_t)k * c->cout + co] + base,
               ((int8_t *)expected)[(size_t)k * c->cout + co]);
    }
  }
  for (k = 1; k < 4; ++k) free((void *)(uintptr_t)constants[k]);
  free((void *)(uintptr_t)data[0]);
  free((void *)(uintptr_t)data[1]);
  free(outputs[0]);
  release(&p);
}

/* TFQP_UNPACK_CODES's range check holds for any int32 output zero point (a
 * zero point near INT32_MAX once overflowed it: found by fuzz_unpack_codes). */
static void test_unpack_codes_zero_point_bound(void) {
  static const int32_t zero_points[] = {INT32_MAX - 1, INT32_MAX, INT32_MIN, 113, -129};
  tfqp_unpack_codes_options o;
  tfqp_unpack_codes_params p;
  tfqp_tensor packed, output;
  const int32_t in_dims[2] = {2, 1}, out_dims[2] = {2, 8};
  tfqp_error e;
  size_t i;
  memset(&o, 0, sizeof o);
  o.channels = 8;
  o.bits = 4;
  o.present = TFQP_UNPACK_CODES_REQUIRED;
  tfqp_tensor_init(&packed, TFQP_TYPE_INT32, 2, in_dims, 8, 0);
  for (i = 0; i < sizeof zero_points / sizeof zero_points[0]; ++i) {
    tfqp_tensor_init(&output, TFQP_TYPE_INT8, 2, out_dims, 16, zero_points[i]);
    CHECK_EQ(tfqp_unpack_codes_prepare(&o, &packed, &output, &p, &e), TFQP_ERROR_TENSOR_DATA);
  }
  tfqp_tensor_init(&output, TFQP_TYPE_INT8, 2, out_dims, 16, 112);
  CHECK_EQ(tfqp_unpack_codes_prepare(&o, &packed, &output, &p, &e), TFQP_OK);
}

/* TFQP_MAX_POOL_CODES on a 2x3 image of 9 4-bit channels (two words per pixel,
 * garbage in the padding codes), 2x2 SAME stride 2: the windows at the right
 * border hold one column; every code the max of its window, padding codes 0.
 * Then the malformed output depths. */
static void test_max_pool_codes(void) {
  enum { H = 2, W = 3, C = 9, WORDS = 2 };
  tfqp_max_pool_codes_options o;
  tfqp_max_pool_codes_params p;
  tfqp_tensor packed_in, pooled_out;
  const int32_t in_dims[4] = {1, H, W, WORDS}, out_dims[4] = {1, 1, 2, WORDS};
  const int32_t bad_dims[4] = {1, 1, 2, 1};
  uint8_t image_codes[H * W * C], window_max[2 * C], pooled_codes[2 * C];
  tfqp_word image_words[H * W * WORDS], pooled[2 * WORDS];
  tfqp_error e;
  int32_t i, c, x;
  for (i = 0; i < H * W * C; ++i) image_codes[i] = (uint8_t)(test_random() & 15u);
  tfqp_pack_codes(image_codes, H * W, C, 4, image_words);
  for (i = 0; i < H * W; ++i) image_words[i * WORDS + 1] |= 0xABCDEF00u; /* codes 9..15: padding */
  for (x = 0; x < 2; ++x) {
    for (c = 0; c < C; ++c) {
      uint8_t m = 0;
      int32_t y, ix;
      for (y = 0; y < H; ++y) {
        for (ix = 2 * x; ix < 2 * x + 2 && ix < W; ++ix) {
          const uint8_t v = image_codes[(y * W + ix) * C + c];
          if (v > m) m = v;
        }
      }
      window_max[x * C + c] = m;
    }
  }
  memset(&o, 0, sizeof o);
  o.channels = C;
  o.bits = 4;
  o.filter_height = 2;
  o.filter_width = 2;
  o.stride_height = 2;
  o.stride_width = 2;
  o.padding = 0; /* SAME */
  o.present = TFQP_MAX_POOL_CODES_REQUIRED;
  tfqp_tensor_init(&packed_in, TFQP_TYPE_INT32, 4, in_dims, sizeof image_words, 0);
  tfqp_tensor_init(&pooled_out, TFQP_TYPE_INT32, 4, out_dims, sizeof pooled, 0);
  CHECK_EQ(tfqp_max_pool_codes_prepare(&o, &packed_in, &pooled_out, &p, &e), TFQP_OK);
  tfqp_max_pool_codes_eval(&p, image_words, pooled);
  tfqp_unpack_codes(pooled, 2, C, 4, pooled_codes);
  CHECK(memcmp(pooled_codes, window_max, sizeof pooled_codes) == 0);
  CHECK_EQ(pooled[1] >> 4, 0u);
  CHECK_EQ(pooled[3] >> 4, 0u);
  tfqp_tensor_init(&pooled_out, TFQP_TYPE_INT32, 4, bad_dims, sizeof pooled / 2, 0);
  CHECK_EQ(tfqp_max_pool_codes_prepare(&o, &packed_in, &pooled_out, &p, &e), TFQP_ERROR_TENSOR_SHAPE);
  tfqp_tensor_init(&pooled_out, TFQP_TYPE_INT8, 4, out_dims, sizeof pooled, 0);
  CHECK_EQ(tfqp_max_pool_codes_prepare(&o, &packed_in, &pooled_out, &p, &e), TFQP_ERROR_TENSOR_TYPE);
}

static void test_packed_kbit_io(void) {
  int32_t bits, op;
  for (bits = 2; bits <= 4; bits += 2) {
    for (op = CONV; op <= FULLY_CONNECTED; ++op) {
      shift_case c = layout_case(op, 1 + op + bits / 2, op == DEPTHWISE ? 9 : 17,
                                 op == DEPTHWISE ? 9 : 11);
      c.batch = 2;
      c.levels = bits == 2 ? 3 : 16;
      c.zp_in = bits == 2 ? 1 : 8;
      c.zp_out = 0;
      check_packed_io(&c, bits, -1);
    }
  }
}

/* Fully connected in batch 1 on a packed input with 2- and 4-bit uniform
 * weights (Cortex-M: kbit_arm.c reads the packed input itself): code tables
 * affine in the code and in its two's complement, both activation widths
 * beside both weight widths, Cin a multiple of the words' codes and not
 * (padding codes; a row of one word), odd Cout and Cout 1, input_code_zero 0
 * and not; a po2-like table (not affine) and batch 2 take the shift path. */
static void test_packed_kbit_uniform_fully_connected(void) {
  static const int32_t cins[] = {37, 64, 5};
  static const int32_t couts[] = {11, 6, 1};
  int32_t bits, act_bits, flip, i;
  for (bits = 2; bits <= 4; bits += 2) {
    for (act_bits = 2; act_bits <= 4; act_bits += 2) {
      for (flip = 0; flip <= 1; ++flip) {
        for (i = 0; i < 3; ++i) {
          shift_case c = layout_case(FULLY_CONNECTED, bits, cins[i], couts[i]);
          c.levels = (1 << act_bits) - i % 2;
          c.zp_in = i == 1 ? 0 : (1 << act_bits) / 2 - 1;
          c.zp_out = 0;
          check_packed_io(&c, act_bits, flip ? 1 << (bits - 1) : 0);
        }
      }
      {
        shift_case c = layout_case(FULLY_CONNECTED, bits, 40, 7);
        c.levels = 1 << act_bits;
        c.zp_out = 0;
        c.zp_in = 1;
        check_packed_io(&c, act_bits, -1);
        c.batch = 2;
        check_packed_io(&c, act_bits, 0);
      }
    }
  }
}

/* The live-word walk's lowest set bit, against a scan, for every single bit
 * and random words. */
static void test_lowest_bit(void) {
  int32_t i, bit;
  for (i = 0; i < 2000; ++i) {
    const uint32_t x = i < 32 ? 1u << i : test_random() | 1u << (i % 32);
    for (bit = 0; !((x >> bit) & 1u); ++bit) {
    }
    CHECK_EQ(tfqp_shift_lowest_bit(x), bit);
  }
}

void test_shift(void) {
  test_lowest_bit();
  test_pack_round_trip();
  test_ops_against_reference();
  test_dead_words_are_skipped();
  test_shared_live_row();
  test_pruned_fully_connected_rows();
  test_code_lists();
  test_code_lists_rejected();
  test_options_and_shapes_rejected();
  test_tensors_rejected();
  test_constants_rejected();
  test_accumulator_bound_edge();
  test_fast_path_layouts();
  test_level_count();
  test_codes_output();
  test_codes_output_rejected();
  test_packed_kbit_io();
  test_packed_kbit_uniform_fully_connected();
  test_unpack_codes_zero_point_bound();
  test_max_pool_codes();
}
