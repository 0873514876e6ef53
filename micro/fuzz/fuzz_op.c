/* libFuzzer target of one TFQP op (FUZZ_OP, its custom code, set when
 * compiling) through the C op table: the input becomes option values (mostly
 * small and consistent, sometimes a raw int32 or a value at a limit of
 * tfqp/formats.h), encoded as a FlexBuffers map; tensor descriptions that
 * match them (sometimes one field broken) and tensor data. Then parse ->
 * output_dims -> prepare -> init_table -> eval on exact-size heap buffers
 * (op_harness.h, under AddressSanitizer and UndefinedBehaviorSanitizer).
 *
 * Aborts on: a failure without its error fields; parsed options that differ
 * from the encoded ones; an accepted case whose output_dims disagree with the
 * output; output bytes that differ from the naive reference (reference.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flex_encode.h"
#include "fuzz_input.h"
#include "op_harness.h"
#include "reference.h"
#include "tfqp/op.h"

#ifndef FUZZ_OP
#error "compile with -DFUZZ_OP='\"TFQP_<NAME>\"'"
#endif

/* Bytes any one tensor may take here: keeps every run fast. */
#define MAX_TENSOR_BYTES (1 << 20)
#define MAX_OPTIONS 16
/* Input bytes read as decisions (shapes, options); the rest is tensor data. */
#define DECISION_BYTES 96

static void fail(const char *what) {
  fprintf(stderr, "fuzz_op %s: %s\n", FUZZ_OP, what);
  abort();
}

/* ---------------------------------------------------------------- options */

typedef struct {
  flex_entry entries[MAX_OPTIONS];
  int32_t count;
} option_list;

/* Values at and around the limits and the types' edges. */
static int32_t interesting_value(fuzz_input *in) {
  static const int32_t values[] = {0,          1,         -1,          2,
                                   31,         32,        33,          255,
                                   256,        -256,      127,         -129,
                                   1 << 15,    (1 << 15) + 1, 1 << 24, (1 << 24) + 1,
                                   1 << 30,    INT32_MAX - 1, INT32_MAX, INT32_MIN};
  return values[fuzz_range(in, 0, (int64_t)(sizeof values / sizeof values[0]) - 1)];
}

/* The option `key` with `value`, or (about 1 in 32) an interesting or raw one
 * instead; returns the value given. */
static int32_t add_option(fuzz_input *in, option_list *list, const char *key, int32_t value) {
  flex_entry *e;
  if (fuzz_one_in(in, 32)) value = fuzz_one_in(in, 2) ? interesting_value(in) : fuzz_raw_int32(in);
  if (fuzz_one_in(in, 40) || list->count == MAX_OPTIONS) return value; /* left out */
  e = &list->entries[list->count++];
  e->key = key;
  e->value = value;
  e->type = FLEX_ENCODE_INT;
  if (fuzz_one_in(in, 16)) e->type = FLEX_ENCODE_INDIRECT_INT;
  if (value >= 0 && fuzz_one_in(in, 16)) e->type = FLEX_ENCODE_UINT;
  return value;
}

/* Encodes the list (sometimes with an unknown key) and parses it with the op's
 * row; checks that every key given reads back as encoded. Returns 1 when the
 * options parsed. */
static int parse_options(fuzz_input *in, const tfqp_op *op, option_list *list,
                         tfqp_op_options *options) {
  uint8_t buffer[1024];
  tfqp_error error;
  size_t length;
  int32_t i, k;
  if (fuzz_one_in(in, 50) && list->count < MAX_OPTIONS) {
    list->entries[list->count].key = "no_such_option";
    list->entries[list->count].value = 1;
    list->entries[list->count].type = FLEX_ENCODE_INT;
    ++list->count;
  }
  length = flex_encode_map(list->entries, list->count, 1u << fuzz_range(in, 0, 3), buffer,
                           sizeof buffer);
  if (length == 0) fail("options do not fit the encoder's buffer");
  memset(&error, 0, sizeof error);
  if (op->parse(buffer, length, options, &error) != TFQP_OK) {
    if (error.message == NULL || error.name == NULL) fail("parse failed without an error");
    return 0;
  }
  for (i = 0; i < list->count; ++i) {
    for (k = 0; k < op->option_count; ++k) {
      if (strcmp(op->option_keys[k].key, list->entries[i].key) == 0) break;
    }
    if (k == op->option_count) fail("an unknown key parsed");
    if (!(tfqp_op_options_present(op, options) & (1u << k)) ||
        tfqp_op_option_value(op, options, k) != list->entries[i].value) {
      fail("a parsed option differs from the encoded one");
    }
  }
  return 1;
}

/* ---------------------------------------------------------------- tensors */

static size_t element_size(tfqp_type type) {
  return type == TFQP_TYPE_INT8 ? 1 : type == TFQP_TYPE_INT16 ? 2 : 4;
}

/* Describes `t` with the dims given; 0 when its byte size is beyond
 * MAX_TENSOR_BYTES (or a dim is not positive: the case is then not built). */
static int describe(tfqp_tensor *t, tfqp_type type, int32_t rank, const int64_t *dims,
                    int32_t zero_point) {
  int32_t d[TFQP_MAX_RANK];
  int64_t bytes = (int64_t)element_size(type);
  int32_t i;
  for (i = 0; i < rank; ++i) {
    if (dims[i] < 1 || dims[i] > MAX_TENSOR_BYTES) return 0;
    bytes *= dims[i];
    if (bytes > MAX_TENSOR_BYTES) return 0;
    d[i] = (int32_t)dims[i];
  }
  tfqp_tensor_init(t, type, rank, d, (size_t)bytes, zero_point);
  return 1;
}

/* Sometimes (1 in 10) breaks one field of one tensor description: the type,
 * the rank, a dim, the byte size or the zero point. */
static void break_one_tensor(fuzz_input *in, op_harness_case *c) {
  tfqp_tensor *t;
  int32_t which;
  if (!fuzz_one_in(in, 10)) return;
  which = (int32_t)fuzz_range(in, 0, c->input_count);
  t = which == c->input_count ? &c->output : &c->inputs[which];
  switch (fuzz_range(in, 0, 4)) {
    case 0: t->type = (tfqp_type)fuzz_range(in, 0, 3); break;
    case 1: t->rank = (int32_t)fuzz_range(in, -1, TFQP_MAX_RANK + 1); break;
    case 2:
      if (t->rank >= 1 && t->rank <= TFQP_MAX_RANK) {
        t->dims[fuzz_range(in, 0, t->rank - 1)] = (int32_t)fuzz_range(in, -1, 70);
      }
      break;
    case 3: t->bytes = (size_t)fuzz_range(in, 0, 4096); break;
    default: t->zero_point = interesting_value(in); break;
  }
}

/* ------------------------------------------------------------------- data */

typedef struct {
  const uint8_t *bytes;
  size_t size, at;
  uint64_t state;
} data_source;

/* The fuzzer's remaining bytes, cycled; a fixed xorshift stream after them
 * (and for inputs that have none left). */
static uint8_t next_byte(data_source *s) {
  if (s->at < s->size) return s->bytes[s->at++];
  s->state ^= s->state << 13;
  s->state ^= s->state >> 7;
  s->state ^= s->state << 17;
  return (uint8_t)s->state;
}

static void *fill(data_source *s, size_t bytes) {
  uint8_t *p = (uint8_t *)malloc(bytes > 0 ? bytes : 1);
  size_t i;
  if (p == NULL) fail("out of memory");
  for (i = 0; i < bytes; ++i) p[i] = next_byte(s);
  return p;
}

static int32_t next_int(data_source *s, int32_t low, int32_t high) {
  uint32_t v = 0;
  int i;
  for (i = 0; i < 4; ++i) v = (v << 8) | next_byte(s);
  const uint32_t span = (uint32_t)high - (uint32_t)low; /* modulo 2^32: no overflow */
  return (int32_t)((int64_t)low + (int64_t)(span == UINT32_MAX ? v : v % (span + 1u)));
}

/* Clears the padding bits of `rows` packed rows of `channels` channels
 * (unless `keep`: then init_table must reject them). */
static void clear_padding(int32_t *words, int64_t rows, int64_t channels, int keep) {
  const int64_t per_row = (channels + 31) / 32;
  int64_t r;
  if (keep || channels % 32 == 0) return;
  for (r = 0; r < rows; ++r) {
    words[r * per_row + per_row - 1] &= (int32_t)((1u << (channels % 32)) - 1u);
  }
}

/* ------------------------------------------------------------ op builders */

typedef struct {
  op_harness_case c;
  void *owned[TFQP_OP_MAX_INPUTS];
  int64_t work; /* the reference's taps (0: small) */
} built_case;

/* Reference taps beyond which a case is only validated (prepare, no eval):
 * keeps every run well under a second. */
#define MAX_REFERENCE_WORK ((int64_t)1 << 22)

static int64_t out_size(int64_t in, int64_t filter, int64_t stride, int64_t dilation,
                        int32_t padding) {
  const int64_t effective = (filter - 1) * dilation + 1;
  if (stride < 1 || dilation < 1 || filter < 1) return 0;
  return padding == 0 ? (in + stride - 1) / stride
                      : (in >= effective ? (in - effective) / stride + 1 : 0);
}

/* The window options of a convolution as add_option gave them (channels_in
 * first; conv 0: a fully connected op, one 1x1 VALID tap). */
typedef struct {
  int32_t cin, kh, kw, sh, sw, dh, dw, padding;
} window_choice;

/* channels_in is an option of the binary and int8 ops; the shift convolutions
 * take Cin from the input (cin_option 0: chosen here in [1, cin_max]). */
static window_choice add_window_and_channels(fuzz_input *in, option_list *options, int conv,
                                             int cin_option, int32_t cin_max) {
  window_choice w = {0, 1, 1, 1, 1, 1, 1, 1};
  w.cin = cin_option ? add_option(in, options, "channels_in", (int32_t)fuzz_range(in, 1, cin_max))
                     : (int32_t)fuzz_range(in, 1, cin_max);
  if (conv) {
    w.kh = add_option(in, options, "filter_height", (int32_t)fuzz_range(in, 1, 4));
    w.kw = add_option(in, options, "filter_width", (int32_t)fuzz_range(in, 1, 4));
    w.sh = add_option(in, options, "stride_height", (int32_t)fuzz_range(in, 1, 3));
    w.sw = add_option(in, options, "stride_width", (int32_t)fuzz_range(in, 1, 3));
    w.dh = add_option(in, options, "dilation_height_factor", (int32_t)fuzz_range(in, 1, 3));
    w.dw = add_option(in, options, "dilation_width_factor", (int32_t)fuzz_range(in, 1, 3));
    w.padding = add_option(in, options, "padding", (int32_t)fuzz_range(in, 0, 1));
  }
  return w;
}

static window_choice add_window_options(fuzz_input *in, option_list *options, int conv) {
  return add_window_and_channels(in, options, conv, 1, 70);
}

/* The output size of an h x w image (1 where VALID leaves none: prepare then
 * rejects the case); 0 when the options make tensors too big to build here. */
static int window_output(const window_choice *c, int64_t h, int64_t w, int64_t *oh, int64_t *ow) {
  if (c->cin < 1 || c->cin > 4096 || c->kh < 1 || c->kw < 1 || c->kh > 64 || c->kw > 64) return 0;
  *oh = out_size(h, c->kh, c->sh, c->dh, c->padding);
  *ow = out_size(w, c->kw, c->sw, c->dw, c->padding);
  if (*oh < 1) *oh = 1;
  if (*ow < 1) *ow = 1;
  return 1;
}

/* Transform rows of the binary / int8 ops' output kinds (0 int8, 1 packed,
 * 2 values), mostly within the bounds init_table accepts. */
static void fill_transform(fuzz_input *in, data_source *s, int32_t *rows, int64_t cout,
                           int kind, int64_t taps) {
  const int64_t columns = kind == 0 ? 4 : kind == 1 ? 2 : 3;
  const int wild = fuzz_one_in(in, 8);
  int64_t co;
  for (co = 0; co < cout; ++co) {
    int32_t *row = rows + co * columns;
    if (kind == 0) {
      row[0] = next_int(s, -8, 8);
      row[1] = next_int(s, -5000, 5000);
      row[2] = next_int(s, 1 << 30, INT32_MAX);
      row[3] = next_int(s, -31, 31);
    } else if (kind == 1) {
      row[0] = next_byte(s) & 1 ? 1 : -1;
      row[1] = next_int(s, (int32_t)-taps - 2, (int32_t)taps + 2);
    } else {
      row[0] = next_int(s, -(1 << 20), 1 << 20);
      row[1] = next_int(s, 0, 40);
      row[2] = next_int(s, -100000, 100000);
    }
    if (wild) row[next_int(s, 0, (int32_t)columns - 1)] = next_int(s, INT32_MIN, INT32_MAX);
  }
}

static int build_binary(fuzz_input *in, data_source *s, const tfqp_op *op, int conv,
                        built_case *b) {
  op_harness_case *c = &b->c;
  option_list options = {{{0, 0, 0}}, 0};
  const int packed_in = fuzz_one_in(in, 2);
  const int kind = (int)fuzz_range(in, 0, 2); /* int8, packed, values */
  const int residual = kind == 2 && fuzz_one_in(in, 2);
  const int64_t batch = fuzz_range(in, 1, 2);
  const int64_t h = conv ? fuzz_range(in, 1, 8) : 1, w = conv ? fuzz_range(in, 1, 8) : 1;
  const int64_t cout = fuzz_range(in, 1, 40);
  const int32_t in_zp = (int32_t)fuzz_range(in, -128, 127);
  const int32_t out_zp = (int32_t)fuzz_range(in, -128, 127);
  const int32_t small_pn = fuzz_one_in(in, 2);
  const window_choice wc = add_window_options(in, &options, conv);
  const int32_t cin = wc.cin, kh = wc.kh, kw = wc.kw;
  int32_t act_min;
  int64_t oh, ow, taps, words;
  if (conv) add_option(in, &options, "pad_value", (int32_t)fuzz_range(in, 0, 1));
  if (kind == 0 || fuzz_one_in(in, 8)) {
    add_option(in, &options, "input_pos", (int32_t)(small_pn ? fuzz_range(in, -2, 2)
                                                             : fuzz_range(in, -255, 255)));
    add_option(in, &options, "input_neg", (int32_t)(small_pn ? fuzz_range(in, -2, 2)
                                                             : fuzz_range(in, -255, 255)));
    act_min = add_option(in, &options, "act_min", (int32_t)fuzz_range(in, -128, 127));
    add_option(in, &options, "act_max", (int32_t)fuzz_range(in, act_min < -128 ? -128 : act_min, 127));
  }
  if (kind == 2 || fuzz_one_in(in, 8)) add_option(in, &options, "int32_output", kind == 2);
  if (!parse_options(in, op, &options, &c->options)) return 0;
  if (!window_output(&wc, h, w, &oh, &ow)) return 0;
  words = (cin + 31) / 32;
  taps = (int64_t)kh * kw * cin;
  c->input_count = residual ? 4 : 3;
  {
    const int64_t in4[4] = {batch, h, w, packed_in ? words : cin};
    const int64_t in2[2] = {batch, packed_in ? words : cin};
    const int64_t f4[4] = {cout, kh, kw, words};
    const int64_t f2[2] = {cout, words};
    const int64_t t2[2] = {cout, kind == 0 ? 4 : kind == 1 ? 2 : 3};
    const int64_t depth = kind == 1 ? (cout + 31) / 32 : cout;
    const int64_t o4[4] = {batch, oh, ow, depth};
    const int64_t o2[2] = {batch, depth};
    const tfqp_type out_type = kind == 0 ? TFQP_TYPE_INT8 : TFQP_TYPE_INT32;
    if (!describe(&c->inputs[0], packed_in ? TFQP_TYPE_INT32 : TFQP_TYPE_INT8, conv ? 4 : 2,
                  conv ? in4 : in2, packed_in ? 0 : in_zp) ||
        !describe(&c->inputs[1], TFQP_TYPE_INT32, conv ? 4 : 2, conv ? f4 : f2, 0) ||
        !describe(&c->inputs[2], TFQP_TYPE_INT32, 2, t2, 0) ||
        !describe(&c->output, out_type, conv ? 4 : 2, conv ? o4 : o2, kind == 0 ? out_zp : 0) ||
        (residual && !describe(&c->inputs[3], TFQP_TYPE_INT32, conv ? 4 : 2, conv ? o4 : o2, 0))) {
      return 0;
    }
  }
  b->work = batch * oh * ow * cout * taps;
  b->owned[0] = fill(s, c->inputs[0].bytes);
  b->owned[1] = fill(s, c->inputs[1].bytes);
  clear_padding((int32_t *)b->owned[1], cout * kh * kw, cin, fuzz_one_in(in, 16));
  b->owned[2] = fill(s, c->inputs[2].bytes);
  fill_transform(in, s, (int32_t *)b->owned[2], cout, kind, taps);
  if (residual) b->owned[3] = fill(s, c->inputs[3].bytes);
  return 1;
}

static int build_bmaxpool2d(fuzz_input *in, data_source *s, const tfqp_op *op, built_case *b) {
  op_harness_case *c = &b->c;
  option_list options = {{{0, 0, 0}}, 0};
  const int mask = fuzz_one_in(in, 2);
  const int64_t batch = fuzz_range(in, 1, 2), h = fuzz_range(in, 1, 9), w = fuzz_range(in, 1, 9);
  int32_t ch, kh, kw, sh, sw, padding;
  int64_t words;
  ch = add_option(in, &options, "channels", (int32_t)fuzz_range(in, 1, 100));
  kh = add_option(in, &options, "filter_height", (int32_t)fuzz_range(in, 1, 4));
  kw = add_option(in, &options, "filter_width", (int32_t)fuzz_range(in, 1, 4));
  sh = add_option(in, &options, "stride_height", (int32_t)fuzz_range(in, 1, 3));
  sw = add_option(in, &options, "stride_width", (int32_t)fuzz_range(in, 1, 3));
  padding = add_option(in, &options, "padding", (int32_t)fuzz_range(in, 0, 1));
  if (!parse_options(in, op, &options, &c->options)) return 0;
  if (ch < 1 || ch > 4096) return 0;
  words = (ch + 31) / 32;
  c->input_count = mask ? 2 : 1;
  {
    int64_t oh = out_size(h, kh, sh, 1, padding), ow = out_size(w, kw, sw, 1, padding);
    const int64_t in4[4] = {batch, h, w, words};
    const int64_t m1[1] = {words};
    int64_t o4[4];
    o4[0] = batch;
    o4[1] = oh < 1 ? 1 : oh;
    o4[2] = ow < 1 ? 1 : ow;
    o4[3] = words;
    if (!describe(&c->inputs[0], TFQP_TYPE_INT32, 4, in4, 0) ||
        (mask && !describe(&c->inputs[1], TFQP_TYPE_INT32, 1, m1, 0)) ||
        !describe(&c->output, TFQP_TYPE_INT32, 4, o4, 0)) {
      return 0;
    }
  }
  b->owned[0] = fill(s, c->inputs[0].bytes);
  if (mask) {
    b->owned[1] = fill(s, c->inputs[1].bytes);
    clear_padding((int32_t *)b->owned[1], 1, ch, fuzz_one_in(in, 16));
  }
  return 1;
}

/* Dims of rank 1 to 4 with `last` as the last one. */
static int32_t outer_dims(fuzz_input *in, int64_t *dims, int64_t last) {
  const int32_t rank = (int32_t)fuzz_range(in, 1, 4);
  int32_t i;
  for (i = 0; i < rank - 1; ++i) dims[i] = fuzz_range(in, 1, 4);
  dims[rank - 1] = last;
  return rank;
}

static int build_binarize(fuzz_input *in, data_source *s, const tfqp_op *op, built_case *b) {
  op_harness_case *c = &b->c;
  option_list options = {{{0, 0, 0}}, 0};
  const int int32_input = fuzz_one_in(in, 2);
  int64_t dims[4];
  const int32_t rank = outer_dims(in, dims, fuzz_range(in, 1, 100));
  if (fuzz_one_in(in, 20)) add_option(in, &options, "channels", 1); /* no keys allowed */
  if (!parse_options(in, op, &options, &c->options)) return 0;
  c->input_count = 1;
  if (!describe(&c->inputs[0], int32_input ? TFQP_TYPE_INT32 : TFQP_TYPE_INT8, rank, dims,
                int32_input ? 0 : (int32_t)fuzz_range(in, -128, 127))) {
    return 0;
  }
  dims[rank - 1] = (dims[rank - 1] + 31) / 32;
  if (!describe(&c->output, TFQP_TYPE_INT32, rank, dims, 0)) return 0;
  b->owned[0] = fill(s, c->inputs[0].bytes);
  return 1;
}

static int build_int8(fuzz_input *in, data_source *s, const tfqp_op *op, int conv,
                      built_case *b) {
  op_harness_case *c = &b->c;
  option_list options = {{{0, 0, 0}}, 0};
  const int values = fuzz_one_in(in, 2);
  const int residual = values && fuzz_one_in(in, 2);
  const int int16 = fuzz_one_in(in, 3);
  const int64_t batch = fuzz_range(in, 1, 2);
  const int64_t h = conv ? fuzz_range(in, 1, 8) : 1, w = conv ? fuzz_range(in, 1, 8) : 1;
  const int64_t cout = fuzz_range(in, 1, 40);
  const window_choice wc = add_window_options(in, &options, conv);
  const int32_t cin = wc.cin, kh = wc.kh, kw = wc.kw;
  int64_t oh, ow, taps, i;
  if (values || fuzz_one_in(in, 8)) add_option(in, &options, "int32_output", values);
  if (!parse_options(in, op, &options, &c->options)) return 0;
  if (!window_output(&wc, h, w, &oh, &ow)) return 0;
  taps = (int64_t)kh * kw * cin;
  c->input_count = residual ? 4 : 3;
  {
    const int64_t in4[4] = {batch, h, w, cin}, in2[2] = {batch, cin};
    const int64_t w4[4] = {cout, kh, kw, cin}, w2[2] = {cout, cin};
    const int64_t t2[2] = {cout, values ? 3 : 2};
    const int64_t depth = values ? cout : (cout + 31) / 32;
    const int64_t o4[4] = {batch, oh, ow, depth}, o2[2] = {batch, depth};
    const int64_t r4[4] = {batch, oh, ow, cout}, r2[2] = {batch, cout};
    if (!describe(&c->inputs[0], TFQP_TYPE_INT8, conv ? 4 : 2, conv ? in4 : in2,
                  (int32_t)fuzz_range(in, -128, 127)) ||
        !describe(&c->inputs[1], int16 ? TFQP_TYPE_INT16 : TFQP_TYPE_INT8, conv ? 4 : 2,
                  conv ? w4 : w2, 0) ||
        !describe(&c->inputs[2], TFQP_TYPE_INT32, 2, t2, 0) ||
        !describe(&c->output, TFQP_TYPE_INT32, conv ? 4 : 2, conv ? o4 : o2, 0) ||
        (residual && !describe(&c->inputs[3], TFQP_TYPE_INT32, conv ? 4 : 2, conv ? r4 : r2, 0))) {
      return 0;
    }
  }
  b->work = batch * oh * ow * cout * taps;
  b->owned[0] = fill(s, c->inputs[0].bytes);
  b->owned[1] = fill(s, c->inputs[1].bytes);
  if (int16 && !fuzz_one_in(in, 8)) {
    /* mostly within the per-channel bound sum |w| * 255 < 2^31 */
    int16_t *weights = (int16_t *)b->owned[1];
    const int32_t bound = (int32_t)((INT32_MAX / 255) / taps);
    for (i = 0; i < cout * taps; ++i) {
      weights[i] = (int16_t)next_int(s, -(bound < 32767 ? bound : 32767),
                                     bound < 32767 ? bound : 32767);
    }
  } else if (!int16 && !fuzz_one_in(in, 16)) {
    int8_t *weights = (int8_t *)b->owned[1];
    for (i = 0; i < cout * taps; ++i) {
      if (weights[i] == -128) weights[i] = -127;
    }
  }
  b->owned[2] = fill(s, c->inputs[2].bytes);
  fill_transform(in, s, (int32_t *)b->owned[2], cout, values ? 2 : 1, taps * 255 * 127);
  if (residual) b->owned[3] = fill(s, c->inputs[3].bytes);
  return 1;
}

static int build_unpack(fuzz_input *in, data_source *s, const tfqp_op *op, built_case *b) {
  op_harness_case *c = &b->c;
  option_list options = {{{0, 0, 0}}, 0};
  const int grouped = fuzz_one_in(in, 2);
  const int32_t group_size = (int32_t)fuzz_range(in, 1, 70);
  const int32_t groups = grouped ? (int32_t)fuzz_range(in, 1, 4) : 1;
  int32_t channels, group, rank;
  int64_t dims[4];
  channels = add_option(in, &options, "channels", group_size * groups);
  add_option(in, &options, "positive", (int32_t)fuzz_range(in, -128, 127));
  add_option(in, &options, "negative", (int32_t)fuzz_range(in, -128, 127));
  group = grouped ? add_option(in, &options, "group", group_size) : channels;
  if (!parse_options(in, op, &options, &c->options)) return 0;
  if (channels < 1 || channels > 4096 || group < 1) return 0;
  c->input_count = 1;
  rank = outer_dims(in, dims, (int64_t)(channels / group) * (((int64_t)group + 31) / 32));
  if (!describe(&c->inputs[0], TFQP_TYPE_INT32, rank, dims, 0)) return 0;
  dims[rank - 1] = channels;
  if (!describe(&c->output, TFQP_TYPE_INT8, rank, dims, 0)) return 0;
  b->owned[0] = fill(s, c->inputs[0].bytes);
  return 1;
}

/* Packed k-bit codes (mostly 2 or 4 bits, any padding codes) to int8 with a
 * random output zero point (prepare rejects the ones that overflow int8). */
static int build_unpack_codes(fuzz_input *in, data_source *s, const tfqp_op *op,
                              built_case *b) {
  op_harness_case *c = &b->c;
  option_list options = {{{0, 0, 0}}, 0};
  const int32_t bits = fuzz_one_in(in, 16) ? (int32_t)fuzz_range(in, 0, 5)
                                           : (fuzz_one_in(in, 2) ? 2 : 4);
  int32_t channels, rank;
  int64_t dims[4];
  channels = add_option(in, &options, "channels", (int32_t)fuzz_range(in, 1, 70));
  add_option(in, &options, "bits", bits);
  if (fuzz_one_in(in, 2)) add_option(in, &options, "code_zero", (int32_t)fuzz_range(in, 0, 15));
  if (!parse_options(in, op, &options, &c->options)) return 0;
  if (channels < 1 || channels > 4096) return 0;
  c->input_count = 1;
  /* the depth of 2-bit (16 per word) or 4-bit codes (8 per word) */
  rank = outer_dims(in, dims, bits == 2 ? (channels + 15) / 16 : (channels + 7) / 8);
  if (!describe(&c->inputs[0], TFQP_TYPE_INT32, rank, dims, 0)) return 0;
  dims[rank - 1] = channels;
  if (!describe(&c->output, TFQP_TYPE_INT8, rank, dims, (int32_t)fuzz_range(in, -128, 127))) {
    return 0;
  }
  b->owned[0] = fill(s, c->inputs[0].bytes);
  return 1;
}

/* Packed k-bit codes (mostly 2 or 4 bits, any padding codes) max-pooled in
 * TFLite's geometry (filters up to past the image, strides, both paddings). */
static int build_max_pool_codes(fuzz_input *in, data_source *s, const tfqp_op *op,
                                built_case *b) {
  op_harness_case *c = &b->c;
  option_list options = {{{0, 0, 0}}, 0};
  const int32_t bits = fuzz_one_in(in, 16) ? (int32_t)fuzz_range(in, 0, 5)
                                           : (fuzz_one_in(in, 2) ? 2 : 4);
  const int64_t batch = fuzz_range(in, 1, 2), h = fuzz_range(in, 1, 9), w = fuzz_range(in, 1, 9);
  int32_t ch, kh, kw, sh, sw, padding;
  int64_t words;
  ch = add_option(in, &options, "channels", (int32_t)fuzz_range(in, 1, 70));
  add_option(in, &options, "bits", bits);
  kh = add_option(in, &options, "filter_height", (int32_t)fuzz_range(in, 1, 4));
  kw = add_option(in, &options, "filter_width", (int32_t)fuzz_range(in, 1, 4));
  sh = add_option(in, &options, "stride_height", (int32_t)fuzz_range(in, 1, 3));
  sw = add_option(in, &options, "stride_width", (int32_t)fuzz_range(in, 1, 3));
  padding = add_option(in, &options, "padding", (int32_t)fuzz_range(in, 0, 1));
  if (!parse_options(in, op, &options, &c->options)) return 0;
  if (ch < 1 || ch > 4096) return 0;
  /* the depth of 2-bit (16 per word) or 4-bit codes (8 per word) */
  words = bits == 2 ? (ch + 15) / 16 : (ch + 7) / 8;
  c->input_count = 1;
  {
    const int64_t oh = out_size(h, kh, sh, 1, padding), ow = out_size(w, kw, sw, 1, padding);
    const int64_t in4[4] = {batch, h, w, words};
    int64_t o4[4];
    o4[0] = batch;
    o4[1] = oh < 1 ? 1 : oh;
    o4[2] = ow < 1 ? 1 : ow;
    o4[3] = words;
    if (!describe(&c->inputs[0], TFQP_TYPE_INT32, 4, in4, 0) ||
        !describe(&c->output, TFQP_TYPE_INT32, 4, o4, 0)) {
      return 0;
    }
  }
  b->owned[0] = fill(s, c->inputs[0].bytes);
  return 1;
}

/* ------------------------------------------------------------- shift ops */

typedef enum { SHIFT_CONV, SHIFT_DEPTHWISE, SHIFT_FC } shift_kind;

/* The largest |table entry| that keeps every channel within init_table's
 * accumulator bound (sum_k |w_c[k]| * 255 + |B| < 2^31, |B| <= 2^16 here)
 * for `row_codes` codes per row, at most 2^14. */
static int32_t shift_entry_limit(int64_t row_codes) {
  const int64_t limit = (((int64_t)1 << 31) - 1 - (1 << 16)) / (255 * row_codes);
  return (int32_t)(limit < 1 ? 1 : limit > TFQP_CODE_VALUE_MAX ? TFQP_CODE_VALUE_MAX : limit);
}

/* A code table of `entries` int16 values, `columns` per class, as the
 * converters make them (powers of two, ternary, small sums, any value up to
 * `limit`) or, `extreme`, every entry +limit or every one -limit (the
 * accumulators at init_table's bound); code 0 decodes to 0 in every class
 * (mostly: that makes zero codes and dead words); sometimes one entry just
 * past 2^14 or a raw int16 that init_table must reject. */
static void fill_code_table(fuzz_input *in, data_source *s, int16_t *table, int64_t entries,
                            int64_t columns, int32_t limit, int extreme) {
  const int64_t family = extreme ? 4 : fuzz_range(in, 0, 3);
  const int32_t extreme_sign = fuzz_one_in(in, 2) ? 1 : -1;
  const int zero_code = !fuzz_one_in(in, 8);
  int32_t top = 0;
  int64_t i;
  while (top < 14 && ((int32_t)1 << (top + 1)) <= limit) ++top;
  for (i = 0; i < entries; ++i) {
    int32_t v;
    if (family == 0) { /* +-2^j */
      v = (int32_t)1 << next_int(s, 0, top);
      if (next_byte(s) & 1) v = -v;
    } else if (family == 1) { /* ternary */
      v = next_int(s, -1, 1) * ((next_byte(s) & 7) == 0 ? (limit < 127 ? limit : 127) : 1);
    } else if (family == 2) {
      v = next_int(s, -2, 2);
    } else if (family == 3) {
      v = next_int(s, -limit, limit);
    } else {
      v = extreme_sign * limit;
    }
    if (zero_code && i % columns == 0) v = 0;
    table[i] = (int16_t)v;
  }
  if (entries > 0 && fuzz_one_in(in, 16)) {
    table[next_int(s, 0, (int32_t)entries - 1)] =
        (int16_t)(fuzz_one_in(in, 2) ? (next_byte(s) & 1 ? 1 : -1) * (TFQP_CODE_VALUE_MAX + 1)
                                     : next_int(s, INT16_MIN, INT16_MAX));
  }
}

/* Shapes the codes rows (`rows` of `row_words` words) as the converters pack
 * rows of `row_codes` b-bit codes: codes zeroed one by one (75 % pruned) or
 * whole words zeroed (dead words) or dense; then the padding bits (the top
 * 32 - P*b bits, the codes past R) cleared unless `keep_padding` (init_table
 * must then reject them). */
static void shape_codes(fuzz_input *in, data_source *s, int32_t *words, int64_t rows,
                        int64_t row_words, int64_t row_codes, int32_t bits, int keep_padding) {
  const int64_t per_word = TFQP_WORD_BITS / bits;
  const uint32_t code_mask = (1u << bits) - 1u;
  const int64_t sparsity = fuzz_range(in, 0, 2); /* dense, pruned codes, dead words */
  int64_t r, w, j;
  for (r = 0; r < rows; ++r) {
    for (w = 0; w < row_words; ++w) {
      uint32_t word = (uint32_t)words[r * row_words + w];
      const int64_t live = row_codes - w * per_word;
      const int64_t codes = live < 0 ? 0 : live > per_word ? per_word : live;
      if (sparsity == 2 && (next_byte(s) & 1)) word = 0;
      if (sparsity == 1) {
        for (j = 0; j < per_word; ++j) {
          if ((next_byte(s) & 3) != 0) word &= ~(code_mask << (j * bits));
        }
      }
      if (!keep_padding) word &= codes * bits >= 32 ? 0xFFFFFFFFu
                                                    : (uint32_t)((1ull << (codes * bits)) - 1u);
      words[r * row_words + w] = (int32_t)word;
    }
  }
}

/* The live-code lists (formats.h) of the codes rows as the converter writes
 * them, from the table's first class (when the table has 2^b columns; other
 * shapes get the lists of an all-zero table), into a new tensor of
 * Cout + 1 + E words; sometimes one word changed to anything, or the length
 * one short or long (init_table / prepare must then reject it). Returns 0
 * when the lists would exceed the fuzz tensor limit. */
static int build_code_lists(fuzz_input *in, data_source *s, built_case *b, int64_t cout,
                            int64_t row_words, int64_t row_codes, int32_t bits,
                            int64_t columns, int32_t terms) {
  const int32_t *words = (const int32_t *)b->owned[1];
  const int16_t *table = (const int16_t *)b->owned[2];
  const int64_t per_word = TFQP_WORD_BITS / bits;
  const int64_t readable = row_words * per_word < row_codes ? row_words * per_word : row_codes;
  int64_t count = 0, length, co, r, next = 0;
  int32_t *lists;
  for (co = 0; co < cout; ++co) {
    for (r = 0; r < readable && columns == ((int64_t)1 << bits); ++r) {
      const uint32_t code = ((uint32_t)words[co * row_words + r / per_word] >>
                             ((r % per_word) * bits)) & ((1u << bits) - 1u);
      count += table[code] != 0;
    }
  }
  length = cout + 1 + count + (fuzz_one_in(in, 24) ? (fuzz_one_in(in, 2) ? 1 : -1) : 0);
  if (length < 1 || length * 4 > MAX_TENSOR_BYTES) return 0;
  if (!describe(&b->c.inputs[4], TFQP_TYPE_INT32, 1, &length, 0)) return 0;
  lists = (int32_t *)fill(s, (size_t)length * 4);
  b->owned[4] = lists;
  for (co = 0; co < cout && cout + 1 + count <= length; ++co) {
    lists[co] = (int32_t)next;
    for (r = 0; r < readable && columns == ((int64_t)1 << bits); ++r) {
      const uint32_t code = ((uint32_t)words[co * row_words + r / per_word] >>
                             ((r % per_word) * bits)) & ((1u << bits) - 1u);
      if (table[code] == 0) continue;
      lists[cout + 1 + next++] =
          (int32_t)tfqp_code_list_entry((int32_t)(r / terms), table[code]);
    }
  }
  if (cout + 1 + count <= length) lists[cout] = (int32_t)next;
  if (fuzz_one_in(in, 6)) {
    lists[next_int(s, 0, (int32_t)length - 1)] = next_int(s, INT32_MIN, INT32_MAX);
  }
  return 1;
}

/* Transform rows (d, B, M0, M1, s) of an int8 output (one or two classes) or
 * (d, threshold) of a packed one, within the contract's ranges (|B| =
 * `extreme_bias` when that is > 0: d*A_0 + B then reaches int32's edges);
 * sometimes one field anywhere in int32 (init_table must reject it unless it
 * is in range). */
static void fill_shift_transform(fuzz_input *in, data_source *s, int32_t *rows, int64_t cout,
                                 int64_t columns, int32_t classes, int32_t extreme_bias) {
  const int wild = fuzz_one_in(in, 8);
  const int wide_shift = fuzz_one_in(in, 4);
  int64_t co;
  for (co = 0; co < cout; ++co) {
    int32_t *row = rows + co * columns;
    if (columns == TFQP_SHIFT_TRANSFORM_INT8_COLUMNS) {
      row[0] = next_byte(s) & 1 ? 1 : -1;
      row[1] = extreme_bias > 0 ? (next_byte(s) & 1 ? extreme_bias : -extreme_bias)
                                : next_int(s, -5000, 5000);
      row[2] = (next_byte(s) & 15) == 0 ? 0 : next_int(s, 1 << 30, INT32_MAX);
      if (classes == 2) {
        row[3] = next_int(s, 0, INT32_MAX);
        row[4] = wide_shift ? next_int(s, 0, 62) : next_int(s, 28, 46);
      } else {
        row[3] = 0;
        row[4] = wide_shift ? next_int(s, -31, 30) : next_int(s, -18, 1);
      }
    } else if (columns == TFQP_SHIFT_TRANSFORM_PACKED_COLUMNS) {
      row[0] = next_byte(s) & 1 ? 1 : -1;
      row[1] = next_int(s, -(1 << 16), 1 << 16);
    }
    if (wild && columns > 0) {
      row[next_int(s, 0, (int32_t)columns - 1)] = next_int(s, INT32_MIN, INT32_MAX);
    }
  }
}

/* The options of a shift op every kind has: terms (sometimes left to its
 * default 1), activation_min / activation_max (int8 output; sometimes given
 * with a packed one, which prepare rejects). */
static void add_shift_output_options(fuzz_input *in, option_list *options, int packed) {
  int32_t act_min;
  if (!fuzz_one_in(in, 4)) {
    add_option(in, options, "terms", (int32_t)(fuzz_one_in(in, 16) ? fuzz_range(in, 0, 5)
                                                                   : fuzz_range(in, 1, 3)));
  }
  if ((!packed && !fuzz_one_in(in, 3)) || fuzz_one_in(in, 24)) {
    act_min = add_option(in, options, "activation_min", (int32_t)fuzz_range(in, -128, 127));
    add_option(in, options, "activation_max",
               (int32_t)(fuzz_one_in(in, 24) ? fuzz_range(in, -128, 127)
                                             : fuzz_range(in, act_min < -128 ? -128 : act_min, 127)));
  }
}

/* The terms the op parsed (its default 1 when absent). */
static int32_t parsed_terms(const tfqp_op_options *o, shift_kind kind) {
  return kind == SHIFT_CONV        ? o->shift_conv2d.output.terms
         : kind == SHIFT_DEPTHWISE ? o->shift_depthwise_conv2d.output.terms
                                   : o->shift_fully_connected.output.terms;
}

static int build_shift(fuzz_input *in, data_source *s, const tfqp_op *op, shift_kind kind,
                       built_case *b) {
  op_harness_case *c = &b->c;
  option_list options = {{{0, 0, 0}}, 0};
  const int packed = fuzz_one_in(in, 3);
  const int32_t bits = (int32_t)(fuzz_one_in(in, 24) ? fuzz_range(in, 0, 6) : fuzz_range(in, 1, 5));
  const int32_t classes = (int32_t)(fuzz_one_in(in, 24) ? fuzz_range(in, 0, 3)
                                    : packed ? 1 : fuzz_range(in, 1, 2));
  const int64_t columns = fuzz_one_in(in, 24) ? fuzz_range(in, 1, 40)
                                              : (int64_t)1 << (bits > 0 && bits < 7 ? bits : 1);
  const int64_t batch = fuzz_range(in, 1, 2);
  const int conv = kind != SHIFT_FC;
  const int64_t h = conv ? fuzz_range(in, 1, 8) : 1, w = conv ? fuzz_range(in, 1, 8) : 1;
  /* extreme: every input value at 255 from the zero point, table entries at
   * their limit, |B| the rest of init_table's bound */
  const int extreme = fuzz_one_in(in, 8);
  const int32_t in_zp = extreme ? (fuzz_one_in(in, 2) ? 127 : -128) : (int32_t)fuzz_range(in, -128, 127);
  const int32_t out_zp = (int32_t)fuzz_range(in, -128, 127);
  const window_choice wc = add_window_and_channels(in, &options, conv, kind == SHIFT_FC,
                                                   kind == SHIFT_FC ? 200 : kind == SHIFT_CONV ? 16 : 24);
  const int64_t transform_columns =
      fuzz_one_in(in, 24) ? fuzz_range(in, 1, 6)
                          : packed ? TFQP_SHIFT_TRANSFORM_PACKED_COLUMNS : TFQP_SHIFT_TRANSFORM_INT8_COLUMNS;
  int32_t multiplier = 1, terms, code_bits, limit;
  int64_t oh, ow, cout, taps, row_codes, row_words, i;
  if (kind == SHIFT_DEPTHWISE) {
    multiplier = add_option(in, &options, "depth_multiplier",
                            (int32_t)(fuzz_one_in(in, 8) ? fuzz_range(in, 3, 4) : fuzz_range(in, 1, 2)));
  }
  add_shift_output_options(in, &options, packed);
  if (!parse_options(in, op, &options, &c->options)) return 0;
  if (!window_output(&wc, h, w, &oh, &ow)) return 0;
  terms = parsed_terms(&c->options, kind);
  if (terms < 1 || terms > 64) terms = 1; /* prepare rejects it; shapes as for one term */
  code_bits = bits >= 1 && bits <= 5 ? bits : 1;
  cout = kind == SHIFT_DEPTHWISE ? (int64_t)wc.cin * (multiplier >= 1 && multiplier <= 64 ? multiplier : 1)
                                 : fuzz_range(in, 1, 40);
  if (kind == SHIFT_DEPTHWISE && fuzz_one_in(in, 24)) cout += 1;
  taps = kind == SHIFT_CONV ? (int64_t)wc.kh * wc.kw * wc.cin
         : kind == SHIFT_DEPTHWISE ? (int64_t)wc.kh * wc.kw : wc.cin;
  row_codes = taps * terms;
  row_words = (row_codes + TFQP_WORD_BITS / code_bits - 1) / (TFQP_WORD_BITS / code_bits);
  if (fuzz_one_in(in, 24)) row_words += fuzz_one_in(in, 2) ? 1 : -1;
  c->input_count = 4;
  {
    const int64_t depth = packed ? (cout + 31) / 32 : cout;
    const int64_t in4[4] = {batch, h, w, wc.cin};
    const int64_t o4[4] = {batch, oh, ow, depth};
    const int64_t codes2[2] = {cout, row_words};
    const int64_t table2[2] = {classes, columns};
    const int64_t transform2[2] = {cout, transform_columns};
    const tfqp_type out_type = packed ? TFQP_TYPE_INT32 : TFQP_TYPE_INT8;
    int64_t fc_in[4], o2[2];
    int32_t fc_rank = 2;
    if (!conv) {
      fc_rank = outer_dims(in, fc_in, wc.cin);
      o2[0] = 1;
      for (i = 0; i < fc_rank - 1; ++i) o2[0] *= fc_in[i];
      o2[1] = depth;
    }
    if (!describe(&c->inputs[0], TFQP_TYPE_INT8, conv ? 4 : fc_rank, conv ? in4 : fc_in, in_zp) ||
        !describe(&c->inputs[1], TFQP_TYPE_INT32, 2, codes2, 0) ||
        !describe(&c->inputs[2], TFQP_TYPE_INT16, 2, table2, 0) ||
        !describe(&c->inputs[3], TFQP_TYPE_INT32, 2, transform2, 0) ||
        !describe(&c->output, out_type, conv ? 4 : 2, conv ? o4 : o2, packed ? 0 : out_zp)) {
      return 0;
    }
    b->work = (conv ? batch * oh * ow : o2[0]) * cout * row_codes;
  }
  b->owned[0] = fill(s, c->inputs[0].bytes);
  if (extreme) memset(b->owned[0], in_zp == 127 ? 0x80 : 0x7F, c->inputs[0].bytes);
  b->owned[1] = fill(s, c->inputs[1].bytes);
  shape_codes(in, s, (int32_t *)b->owned[1], cout, row_words, row_codes, code_bits,
              fuzz_one_in(in, 16));
  b->owned[2] = fill(s, c->inputs[2].bytes);
  limit = !extreme && fuzz_one_in(in, 8) ? TFQP_CODE_VALUE_MAX : shift_entry_limit(row_codes);
  fill_code_table(in, s, (int16_t *)b->owned[2], classes * columns, columns, limit, extreme);
  b->owned[3] = fill(s, c->inputs[3].bytes);
  fill_shift_transform(in, s, (int32_t *)b->owned[3], cout, transform_columns, classes,
                       extreme ? (int32_t)(INT32_MAX - (int64_t)limit * 255 * row_codes) : 0);
  /* the optional live-code lists of a fully-connected op, mostly consistent */
  if (kind == SHIFT_FC && fuzz_one_in(in, 2)) {
    c->input_count = 5;
    if (!build_code_lists(in, s, b, cout, row_words, row_codes, code_bits, columns, terms)) {
      return 0;
    }
  }
  return 1;
}

static int build(fuzz_input *in, data_source *s, const tfqp_op *op, built_case *b) {
  const char *name = op->name;
  if (strcmp(name, "TFQP_BCONV2D") == 0) return build_binary(in, s, op, 1, b);
  if (strcmp(name, "TFQP_BFULLY_CONNECTED") == 0) return build_binary(in, s, op, 0, b);
  if (strcmp(name, "TFQP_BMAXPOOL2D") == 0) return build_bmaxpool2d(in, s, op, b);
  if (strcmp(name, "TFQP_BINARIZE") == 0) return build_binarize(in, s, op, b);
  if (strcmp(name, "TFQP_CONV2D_INT8") == 0) return build_int8(in, s, op, 1, b);
  if (strcmp(name, "TFQP_FULLY_CONNECTED_INT8") == 0) return build_int8(in, s, op, 0, b);
  if (strcmp(name, "TFQP_UNPACK") == 0) return build_unpack(in, s, op, b);
  if (strcmp(name, "TFQP_UNPACK_CODES") == 0) return build_unpack_codes(in, s, op, b);
  if (strcmp(name, "TFQP_MAX_POOL_CODES") == 0) return build_max_pool_codes(in, s, op, b);
  if (strcmp(name, "TFQP_SHIFT_CONV2D") == 0) return build_shift(in, s, op, SHIFT_CONV, b);
  if (strcmp(name, "TFQP_SHIFT_DEPTHWISE_CONV2D") == 0) {
    return build_shift(in, s, op, SHIFT_DEPTHWISE, b);
  }
  if (strcmp(name, "TFQP_SHIFT_FULLY_CONNECTED") == 0) return build_shift(in, s, op, SHIFT_FC, b);
  fail("no case builder for this op");
  return 0;
}

/* --------------------------------------------------------------- the run */

/* Cases per outcome; printed at exit when TFQP_FUZZ_STATS is set (how much of
 * the fuzzing reached eval and the reference comparison). */
static long cases_built, cases_rejected, cases_compared;

static void print_stats(void) {
  fprintf(stderr, "fuzz_op %s: %ld cases built, %ld rejected by validation, %ld compared\n",
          FUZZ_OP, cases_built, cases_rejected, cases_compared);
}

/* A case too big for the reference: prepare alone, whose failures must come
 * with their error fields. */
static void validate_only(const op_harness_case *c) {
  tfqp_op_params params;
  tfqp_op_buffers buffers;
  tfqp_error error;
  tfqp_status s;
  memset(&error, 0, sizeof error);
  s = c->op->prepare(&c->options, c->inputs, c->input_count, &c->output, &params, &buffers,
                     &error);
  if (s != TFQP_OK && (error.status != s || error.message == NULL || error.name == NULL)) {
    fail("prepare failed without its error fields");
  }
}

static void check_and_compare(const op_harness_case *c) {
  void *actual = malloc(c->output.bytes > 0 ? c->output.bytes : 1);
  void *expected = malloc(c->output.bytes > 0 ? c->output.bytes : 1);
  op_harness_result r;
  if (actual == NULL || expected == NULL) fail("out of memory");
  r = op_harness_run(c, actual);
  ++cases_built;
  if (r.status != TFQP_OK) {
    ++cases_rejected;
    if (r.error.status != r.status || r.error.message == NULL || r.error.name == NULL) {
      fail("a step failed without its error fields");
    }
  } else {
    size_t i;
    if (!op_harness_dims_match(&r, &c->output)) fail("output_dims disagrees with prepare");
    reference_run(c, expected);
    ++cases_compared;
    for (i = 0; i < c->output.bytes; ++i) {
      if (((const uint8_t *)actual)[i] != ((const uint8_t *)expected)[i]) {
        fprintf(stderr, "fuzz_op %s: output byte %lu is %d, the reference gives %d\n", FUZZ_OP,
                (unsigned long)i, ((const uint8_t *)actual)[i], ((const uint8_t *)expected)[i]);
        fail("output differs from the reference");
      }
    }
  }
  free(actual);
  free(expected);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const tfqp_op *op = tfqp_find_op(FUZZ_OP, strlen(FUZZ_OP));
  fuzz_input in;
  data_source source;
  built_case b;
  int32_t i;
  static int started = 0;
  if (op == NULL) fail("not in the op table");
  if (!started) {
    started = 1;
    if (getenv("TFQP_FUZZ_STATS") != NULL) atexit(print_stats);
  }
  in.data = data;
  in.size = size;
  in.at = 0;
  memset(&b, 0, sizeof b);
  b.c.op = op;
  /* the first bytes are decisions, the rest tensor data */
  in.size = size < DECISION_BYTES ? size : DECISION_BYTES;
  source.bytes = data + in.size;
  source.size = size - in.size;
  source.at = 0;
  source.state = 0x9E3779B97F4A7C15ull;
  if (build(&in, &source, op, &b)) {
    for (i = 0; i < b.c.input_count; ++i) b.c.data[i] = b.owned[i];
    /* a broken description that validation still accepts has the byte size
     * of the filled buffer (dims of 1 dropped, a zero point changed) */
    break_one_tensor(&in, &b.c);
    if (b.work > MAX_REFERENCE_WORK) {
      validate_only(&b.c);
    } else {
      check_and_compare(&b.c);
    }
  }
  for (i = 0; i < TFQP_OP_MAX_INPUTS; ++i) free(b.owned[i]);
  return 0;
}
