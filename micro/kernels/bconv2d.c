/* TFQP_BCONV2D: validation, table set-up and the XNOR-popcount kernel
 * (contract in tfqp/bconv2d.h, table arithmetic in binary_output.h).
 *
 * The kernel is im2col-free: for every output pixel and every block of output
 * channels it walks the valid taps of the receptive field directly in the
 * packed input. With dilation_width 1, the valid taps of one filter row are one
 * contiguous run of words in both the input and the filter (a pixel is
 * input_words consecutive words, pixels of a row are consecutive), so each
 * filter row is a single XOR-popcount run shared by the block's channels.
 * Border pixels use shorter runs; their constant terms (n, S) come from the
 * table, computed once per border region in init_table.
 *
 * Portable path: blocks of four channels, 32-bit words (64-bit on hosts with
 * POPCNT). AVX2 path (xnor_avx2.h): blocks of 16 or 32 channels, one output row
 * at a time so that the block's repacked filter stays in L1. Cortex-M path
 * (xnor_arm.h): the receptive field of each output pixel is gathered into
 * one row of words (padded taps 0), and the assembly kernels count up to 32
 * channels against it; the per-region table entries then describe counts
 * over all taps (see arm_region_value).
 */
#include "tfqp/bconv2d.h"

#include <stddef.h>
#include <string.h>
#include <stdint.h>

#include "binary_output.h"
#include "value_output.h"
#include "tfqp/flexbuffer.h"
#include "tfqp/op.h"
#include "xnor_arm.h"
#include "xnor_avx2.h"
#include "xnor_popcount.h"

/* The options of TFQP_BCONV2D, once: order = the TFQP_BCONV2D_* bit order. */
#define KEY(field) {#field, offsetof(tfqp_bconv2d_options, field)}
static const tfqp_option_key option_keys[] = {
    KEY(channels_in),   KEY(filter_height),          KEY(filter_width),
    KEY(stride_height), KEY(stride_width),           KEY(dilation_height_factor),
    KEY(dilation_width_factor), KEY(padding),        KEY(pad_value),
    KEY(input_pos),     KEY(input_neg),              KEY(act_min),
    KEY(act_max),       KEY(int32_output)};
#undef KEY
#define OPTION_COUNT ((int32_t)(sizeof option_keys / sizeof option_keys[0]))

tfqp_status tfqp_bconv2d_parse_options(const uint8_t *buffer, size_t length,
                                       tfqp_bconv2d_options *options,
                                       tfqp_error *error) {
  return tfqp_flex_read_option_keys(buffer, length, option_keys, OPTION_COUNT,
                                    TFQP_BCONV2D_REQUIRED, options, &options->present, error);
}

/* The errors of the checks shared with TFQP_BFULLY_CONNECTED. */
static const tfqp_binary_op_names names = TFQP_BINARY_OP_NAMES("bconv2d", "filter");

/* The window options of TFQP_BCONV2D (o not NULL). */
static tfqp_window_options window_options(const tfqp_bconv2d_options *o) {
  const tfqp_window_options window = {o->filter_height,          o->filter_width,
                                      o->stride_height,          o->stride_width,
                                      o->dilation_height_factor, o->dilation_width_factor,
                                      o->padding};
  return window;
}

/* Options, input and filter: everything output_dims and prepare share. */
static tfqp_status check_input_side(const tfqp_bconv2d_options *o,
                                    const tfqp_tensor *input,
                                    const tfqp_tensor *filter,
                                    tfqp_bconv2d_params *p, tfqp_error *error) {
  tfqp_window_options window;
  tfqp_status s;
  int32_t words;
  int64_t taps;
  if (o == NULL || input == NULL || filter == NULL || p == NULL) {
    return tfqp_fail(error, TFQP_ERROR_ARGUMENT, "NULL argument", names.op, 0);
  }
  if ((o->present & TFQP_BCONV2D_REQUIRED) != TFQP_BCONV2D_REQUIRED) {
    return tfqp_fail(error, TFQP_ERROR_OPTIONS, "required option missing",
                     names.options, (int64_t)o->present);
  }
  window = window_options(o);
  if ((s = tfqp_check_channels_option(o->channels_in, "channels_in", error)) ||
      (s = tfqp_window_options_check(&window, error)) ||
      (s = tfqp_check_option_range(o->pad_value, 0, 1, "must be 0 or 1", "pad_value", error)) ||
      (s = tfqp_check_option_range(o->int32_output, 0, 1, "must be 0 or 1", "int32_output",
                                   error))) {
    return s;
  }
  words = TFQP_WORDS(o->channels_in);
  /* each factor bounded above: at most 2^54 */
  taps = (int64_t)o->filter_height * o->filter_width * o->channels_in;
  if (taps >= ((int64_t)1 << 30)) {
    return tfqp_fail(error, TFQP_ERROR_OPTION_VALUE,
                     "filter_height * filter_width * channels_in must be < 2^30",
                     "channels_in", taps);
  }
  if ((s = tfqp_binary_op_check_input(input, 4, o->channels_in, &p->io, error))) return s;
  if ((s = tfqp_tensor_check(filter, "filter", TFQP_TYPE_INT32, 4, error)) ||
      (s = tfqp_tensor_check_dim(filter, 1, o->filter_height,
                                 "filter dim 1 must equal filter_height", "filter", error)) ||
      (s = tfqp_tensor_check_dim(filter, 2, o->filter_width,
                                 "filter dim 2 must equal filter_width", "filter", error)) ||
      (s = tfqp_tensor_check_dim(filter, 3, words,
                                 "filter dim 3 must equal ceil(channels_in/32)",
                                 "filter", error))) {
    return s;
  }
  s = tfqp_window_init(&window, input->dims[1], input->dims[2], &p->rows, &p->cols, error);
  if (s != TFQP_OK) return s;
  p->io.channels_out = filter->dims[0];
  p->io.output_words = TFQP_WORDS(p->io.channels_out);
  p->io.output_values = o->int32_output;
  p->filter_words = o->filter_height * o->filter_width * words;
  p->taps = (int32_t)taps;
  p->pad_value = o->pad_value;
  p->mask_input = p->io.input_packed && (o->channels_in % TFQP_WORD_BITS) != 0;
  return TFQP_OK;
}

tfqp_status tfqp_bconv2d_output_dims(const tfqp_bconv2d_options *options,
                                     const tfqp_tensor *input,
                                     const tfqp_tensor *filter,
                                     tfqp_type output_type, int32_t dims[4],
                                     tfqp_error *error) {
  tfqp_bconv2d_params p;
  tfqp_status s;
  memset(&p, 0, sizeof p);
  if ((s = check_input_side(options, input, filter, &p, error)) != TFQP_OK) return s;
  {
    const int32_t outer[3] = {p.io.batch, p.rows.out, p.cols.out};
    return tfqp_binary_op_output_dims(&p.io, output_type, 4, outer, dims, error);
  }
}

/* Input positions the windows of one axis cover, from -pad_before on. */
static int64_t arm_span(const tfqp_window_axis *a) {
  return (int64_t)(a->out - 1) * a->stride + (int64_t)(a->filter - 1) * a->dilation + 1;
}

/* The Cortex-M path reads windows from an image whose padding is explicit
 * when any window leaves the input; these are its dimensions (0: the input
 * is used as it is). */
static int64_t arm_padded_height(const tfqp_bconv2d_params *p) {
  const int pad = p->rows.pad_before > 0 || arm_span(&p->rows) > p->rows.in ||
                  p->cols.pad_before > 0 || arm_span(&p->cols) > p->cols.in;
  return pad ? arm_span(&p->rows) : 0;
}

static int64_t arm_padded_width(const tfqp_bconv2d_params *p) {
  return arm_padded_height(p) > 0 ? arm_span(&p->cols) : 0;
}

/* The Cortex-M path's scratch: one image with its padding made explicit (zero
 * words), the tap pointers of an output row, one output pixel's gathered
 * window, the accumulator-start pointers of an output row, and (int8 output)
 * the counts of every channel and the records of one row of border regions
 * (xnor_arm.h); UINT64_MAX when the padded image alone has
 * more than TFQP_MAX_BUFFER_BYTES pixels. (Spans < 2^31, so their product
 * fits uint64; then pixels <= 2^28 and words <= 2^19: no product overflows.) */
#if TFQP_HAVE_ARM_DSP
#define ARM_OUT8_RECORD_WORDS TFQP_ARM_OUT8_RECORD_WORDS
#else
#define ARM_OUT8_RECORD_WORDS 0 /* no Cortex-M path */
#endif

static uint64_t arm_path_bytes(const tfqp_bconv2d_params *p) {
  const uint64_t padded_pixels = (uint64_t)arm_padded_height(p) * (uint64_t)arm_padded_width(p);
  if (padded_pixels > (uint64_t)TFQP_MAX_BUFFER_BYTES) return UINT64_MAX;
  return (padded_pixels * (uint64_t)p->io.input_words +
          (uint64_t)p->rows.filter * (uint64_t)p->cols.filter + (uint64_t)p->filter_words +
          (uint64_t)p->cols.out * (uint64_t)p->io.output_words +
          (p->io.output_packed ? 0
                               : (uint64_t)p->io.channels_out *
                                     (1 + (uint64_t)p->col_classes * ARM_OUT8_RECORD_WORDS))) *
         sizeof(tfqp_word);
}

/* Whether this build runs the Cortex-M kernels for these parameters (not for
 * int32 value output: every build runs the portable counting for it; not when
 * the explicitly padded image would exceed TFQP_MAX_BUFFER_BYTES, e.g. a huge
 * dilation on a small input: the portable path needs no such copy, so every
 * build accepts the same layers). */
static int arm_path(const tfqp_bconv2d_params *p) {
#if TFQP_HAVE_ARM_DSP
  return tfqp_arm_supported(p->taps) && !p->io.output_values &&
         arm_path_bytes(p) <= (uint64_t)TFQP_MAX_BUFFER_BYTES;
#else
  (void)p;
  (void)arm_path_bytes;
  return 0;
#endif
}

static uint64_t arm_scratch_bytes(const tfqp_bconv2d_params *p) {
  return arm_path(p) ? arm_path_bytes(p) : 0;
}

tfqp_status tfqp_bconv2d_prepare(const tfqp_bconv2d_options *o,
                                 const tfqp_tensor *input,
                                 const tfqp_tensor *filter,
                                 const tfqp_tensor *transform,
                                 const tfqp_tensor *output,
                                 tfqp_bconv2d_params *p, tfqp_error *error) {
  tfqp_binary_layout layout;
  tfqp_status s;
  if ((s = check_input_side(o, input, filter, p, error)) != TFQP_OK) return s;
  {
    const tfqp_binary_int8_options int8 = {o->input_pos, o->input_neg, o->act_min, o->act_max,
                                           o->present, TFQP_BCONV2D_INT8_OUTPUT};
    const int32_t outer[3] = {p->io.batch, p->rows.out, p->cols.out};
    s = tfqp_binary_op_check_output(&names, &int8, output, transform, 4, outer, &p->io, error);
    if (s != TFQP_OK) return s;
  }
  p->row_classes = tfqp_window_axis_class_count(&p->rows);
  p->col_classes = tfqp_window_axis_class_count(&p->cols);
  {
    const uint64_t regions = (uint64_t)p->row_classes * (uint64_t)p->col_classes;
    s = tfqp_binary_op_layout(&p->io, p->mask_input, regions, (uint64_t)p->filter_words,
                              (uint64_t)p->io.batch * (uint64_t)input->dims[1] *
                                  (uint64_t)input->dims[2],
                              arm_scratch_bytes(p), &layout, error);
    if (s != TFQP_OK) return s;
    /* init_table popcounts at most one filter per region and channel (the
     * Cortex-M path twice): regions <= 2^26 and Cout < 2^28 after the layout,
     * so regions * Cout fits uint64 */
    if (regions * (uint64_t)p->io.channels_out >
        (uint64_t)TFQP_MAX_INIT_WORK / (uint64_t)p->filter_words) {
      return tfqp_fail(error, TFQP_ERROR_TOO_LARGE,
                       "set-up work (border regions * Cout * filter words) above 2^27", "filter",
                       (int64_t)(regions * (uint64_t)p->io.channels_out));
    }
  }
  p->padded_channels = layout.padded_channels;
  p->table_base = layout.table_base;
  p->table_filter = layout.table_weights;
  /* what eval would otherwise recompute on every call (the layout above
   * bounds the padded image: it fits in the scratch) */
  p->arm = arm_path(p);
  p->image_words = (size_t)p->rows.in * (size_t)p->cols.in * (size_t)p->io.input_words;
  p->pixels = p->io.batch * p->rows.in * p->cols.in; /* < 2^31: the input's elements */
  p->arm_height = p->arm ? (int32_t)arm_padded_height(p) : 0;
  p->arm_width = p->arm ? (int32_t)arm_padded_width(p) : 0;
  p->table_bytes = layout.table_bytes;
  p->scratch_bytes = layout.scratch_bytes;
  p->table_arm = 0;
#if TFQP_HAVE_ARM_DSP
  if (p->arm && !p->io.output_packed) {
    p->table_arm = tfqp_arm_out8_table(p->io.channels_out, &p->table_bytes);
  }
#endif
  return TFQP_OK;
}

/* popcount of the weight bits of channel `f` over taps [ky0,ky1) x [kx0,kx1) */
static int32_t filter_popcount(const tfqp_bconv2d_params *p, const tfqp_word *f,
                               int32_t ky0, int32_t ky1, int32_t kx0, int32_t kx1) {
  const int32_t words = p->io.input_words;
  int32_t count = 0;
  int32_t ky, kx, w;
  for (ky = ky0; ky < ky1; ++ky) {
    for (kx = kx0; kx < kx1; ++kx) {
      const tfqp_word *t = f + ((size_t)ky * p->cols.filter + kx) * words;
      for (w = 0; w < words; ++w) count += (int32_t)tfqp_popcount32(t[w]);
    }
  }
  return count;
}

#if TFQP_HAVE_ARM_DSP
/* The Cortex-M table entry of channel co for a region with n valid taps, ps of
 * them with weight bit 1 (all_ps over all KH * KW taps). The kernels count x
 * over ALL taps of the gathered window, where padded taps are 0 (input +1):
 *   pad_value 1: padded taps are valid inputs +1: D = K - 2x, S = K - 2 all_ps;
 *   pad_value 0: D = n - 2 x_valid, and every padded tap adds its weight bit to
 *                x, x = x_valid + all_ps - ps: D = E - 2x with
 *                E = n + 2 (all_ps - ps), S = n - 2 ps.
 * packed output: the accumulator start of the bit (tfqp_arm_packed_start);
 * int8 output: base = W * ((P + N) * S + (P - N) * E) / 2 + bias modulo 2^32,
 *   so that base - W * (P - N) * x is the contract's accumulator (the numerator
 *   is even: E and D have the same parity). */
static int32_t arm_region_value(const tfqp_bconv2d_params *p, const int32_t *table,
                                const int32_t *transform, int32_t co, int32_t n,
                                int32_t ps, int32_t all_ps) {
  const int64_t e = p->pad_value == 1 ? (int64_t)p->taps : (int64_t)n + 2 * (int64_t)(all_ps - ps);
  if (p->io.output_packed) {
    return (int32_t)tfqp_arm_packed_start(table[co], table[p->padded_channels + co], e,
                                          p->taps);
  } else {
    const int32_t *row = transform + (size_t)co * TFQP_TRANSFORM_INT8_COLUMNS;
    const int64_t sum_s = p->pad_value == 1 ? (int64_t)p->taps - 2 * (int64_t)all_ps
                                            : (int64_t)n - 2 * (int64_t)ps;
    const int64_t twice = ((int64_t)p->io.input_pos + p->io.input_neg) * sum_s +
                          ((int64_t)p->io.input_pos - p->io.input_neg) * e;
    return (int32_t)(uint32_t)(uint64_t)((int64_t)row[0] * (twice / 2) + row[1]);
  }
}
#endif

tfqp_status tfqp_bconv2d_init_table(const tfqp_bconv2d_params *p,
                                    const tfqp_word *filter,
                                    const int32_t *transform, int32_t *table,
                                    size_t table_bytes, tfqp_error *error) {
  const int32_t cout = p->io.channels_out;
  const int32_t cpad = p->padded_channels;
  const int32_t kh = p->rows.filter;
  const int32_t kw = p->cols.filter;
  int32_t *base = table + p->table_base;
  tfqp_status s;
  int32_t co, rc, cc;
  s = tfqp_binary_op_init_channels(&names, &p->io, filter, (size_t)cout * kh * kw, transform,
                                   p->taps, table, table_bytes, p->table_bytes, error);
  if (s != TFQP_OK) return s;
  for (rc = 0; rc < p->row_classes; ++rc) {
    int32_t ky0, ky1;
    tfqp_window_axis_class_taps(&p->rows, rc, &ky0, &ky1);
    for (cc = 0; cc < p->col_classes; ++cc) {
      int32_t kx0, kx1;
      int32_t *region = base + ((size_t)rc * p->col_classes + cc) * cpad;
      int32_t n;
      tfqp_window_axis_class_taps(&p->cols, cc, &kx0, &kx1);
      n = (ky1 - ky0) * (kx1 - kx0) * p->io.channels_in;
      for (co = cout; co < cpad; ++co) region[co] = 0;
      for (co = 0; co < cout; ++co) {
        const tfqp_word *f = filter + (size_t)co * p->filter_words;
        const int32_t ps = filter_popcount(p, f, ky0, ky1, kx0, kx1);
        int32_t padded_ps = 0;
#if TFQP_HAVE_ARM_DSP
        if (arm_path(p)) {
          region[co] = arm_region_value(p, table, transform, co, n, ps,
                                        filter_popcount(p, f, 0, kh, 0, kw));
          continue;
        }
#endif
        if (p->pad_value == 1) padded_ps = filter_popcount(p, f, 0, kh, 0, kw) - ps;
        if (p->io.output_packed || p->io.output_values) {
          /* D = valid - 2 * (x + padded_ps) */
          region[co] = p->pad_value == 1 ? p->taps - 2 * padded_ps : n;
        } else {
          region[co] = tfqp_binary_base_int8(
              transform + (size_t)co * TFQP_TRANSFORM_INT8_COLUMNS, p->io.input_pos,
              p->io.input_neg, p->pad_value == 1 ? p->taps : n,
              p->pad_value == 1 ? ps + padded_ps : ps, padded_ps);
        }
      }
    }
  }
#if TFQP_HAVE_ARM_DSP
  if (p->table_arm != 0) {
    table[p->table_arm] = tfqp_arm_out8_records((uint32_t *)(table + p->table_arm + 1), table,
                                                cpad, transform, &p->io, p->taps);
  }
#endif
#if TFQP_HAVE_AVX2
  tfqp_avx2_repack(filter, cout, cpad, p->filter_words, (tfqp_word *)(table + p->table_filter));
#endif
  return TFQP_OK;
}

/* Valid taps of one output pixel and where they start in the input. */
typedef struct {
  const tfqp_word *image; /* first word of image n */
  int32_t iy0, ix0;       /* input position of tap (0, 0), may be negative */
  int32_t ky0, ky1, kx0, kx1;
} window;

/* popcount over the window of input XOR filter f, tap by tap (the int32 value
 * output's counting, in every build; the portable path's own kernels below
 * count four channels at once) */
static uint32_t value_counts(const tfqp_bconv2d_params *p, const window *w,
                             const tfqp_word *f) {
  const int32_t words = p->io.input_words;
  const size_t row_words = (size_t)p->cols.in * words;
  uint32_t acc = 0;
  int32_t ky, kx;
  for (ky = w->ky0; ky < w->ky1; ++ky) {
    const tfqp_word *row = w->image + (size_t)(w->iy0 + ky * p->rows.dilation) * row_words;
    const tfqp_word *frow = f + (size_t)ky * p->cols.filter * words;
    for (kx = w->kx0; kx < w->kx1; ++kx) {
      acc += tfqp_xor_popcount_run1(row + (size_t)(w->ix0 + kx * p->cols.dilation) * words,
                                    frow + (size_t)kx * words, words);
    }
  }
  return acc;
}

/* int32 value output, every build: the portable counting over the packed
 * input (clean padding bits) and the original filter; D = base - 2x. */
static TFQP_NOINLINE void conv_values(const tfqp_bconv2d_params *p, const int32_t *table,
                                      const void *input, const tfqp_word *filter,
                                      int32_t *output, void *scratch) {
  const size_t image_words = (size_t)p->rows.in * p->cols.in * p->io.input_words;
  tfqp_word *free_scratch = (tfqp_word *)scratch;
  const tfqp_word *packed = tfqp_binary_op_packed_input(
      &p->io, p->mask_input, input, p->io.batch * p->rows.in * p->cols.in, &free_scratch);
  const int32_t cout = p->io.channels_out;
  const int32_t cpad = p->padded_channels;
  const int32_t *multiplier = table;
  const int32_t *shift = table + cpad;
  const int32_t *bias = table + 2 * cpad;
  int32_t n, oy, ox, co;
  window w;
  for (n = 0; n < p->io.batch; ++n) {
    w.image = packed + (size_t)n * image_words;
    for (oy = 0; oy < p->rows.out; ++oy) {
      const int32_t *base_rows =
          table + p->table_base +
          (size_t)tfqp_window_axis_class(&p->rows, oy) * p->col_classes * cpad;
      w.iy0 = oy * p->rows.stride - p->rows.pad_before;
      tfqp_window_axis_taps(&p->rows, oy, &w.ky0, &w.ky1);
      for (ox = 0; ox < p->cols.out; ++ox) {
        const int32_t *base = base_rows + (size_t)tfqp_window_axis_class(&p->cols, ox) * cpad;
        int32_t *out = output + (((size_t)n * p->rows.out + oy) * p->cols.out + ox) * cout;
        w.ix0 = ox * p->cols.stride - p->cols.pad_before;
        tfqp_window_axis_taps(&p->cols, ox, &w.kx0, &w.kx1);
        for (co = 0; co < cout; ++co) {
          const uint32_t x = value_counts(p, &w, filter + (size_t)co * p->filter_words);
          out[co] = tfqp_value_output((int64_t)base[co] - 2 * (int64_t)x, multiplier[co],
                                      shift[co], bias[co]);
        }
      }
    }
  }
}

#if TFQP_HAVE_AVX2

/* Counts of `blocks` repacked 8-channel blocks starting at f over the window. */
static inline void window_counts(const tfqp_bconv2d_params *p, const window *w,
                                 const tfqp_word *f, tfqp_avx2_counts *c, int32_t blocks) {
  /* image and filter are nibble-split: TFQP_AVX2_SPLIT words per packed word */
  const int32_t words = p->io.input_words;
  const size_t row_words = (size_t)p->cols.in * words;
  const size_t lanes = (size_t)TFQP_AVX2_SPLIT * TFQP_AVX2_LANES;
  const size_t block_stride = (size_t)p->filter_words * lanes;
  const int32_t kw = p->cols.filter;
  const int32_t dh = p->rows.dilation;
  const int32_t dw = p->cols.dilation;
  int32_t ky, kx;
  tfqp_avx2_counts_init(c, blocks);
  if (dw == 1 && (w->ky1 - w->ky0) * (w->kx1 - w->kx0) * words <= TFQP_AVX2_MAX_PENDING) {
    /* the whole window fits in the byte counters: one flush, no chunking */
    const int32_t run = (w->kx1 - w->kx0) * words;
    for (ky = w->ky0; ky < w->ky1; ++ky) {
      const tfqp_word *row =
          w->image + (size_t)(w->iy0 + ky * dh) * row_words * TFQP_AVX2_SPLIT;
      const size_t k = (size_t)ky * kw * words + (size_t)w->kx0 * words;
      tfqp_avx2_counts_run_short(c, row + (size_t)(w->ix0 + w->kx0) * words * TFQP_AVX2_SPLIT,
                                 f + k * lanes, block_stride, run, blocks);
    }
    tfqp_avx2_counts_flush(c, blocks);
    return;
  }
  for (ky = w->ky0; ky < w->ky1; ++ky) {
    const tfqp_word *row = w->image + (size_t)(w->iy0 + ky * dh) * row_words * TFQP_AVX2_SPLIT;
    const size_t k_row = (size_t)ky * kw * words;
    if (dw == 1) {
      const size_t k = k_row + (size_t)w->kx0 * words;
      tfqp_avx2_counts_run(c, row + (size_t)(w->ix0 + w->kx0) * words * TFQP_AVX2_SPLIT,
                           f + k * lanes, block_stride, (w->kx1 - w->kx0) * words, blocks);
    } else {
      for (kx = w->kx0; kx < w->kx1; ++kx) {
        const size_t k = k_row + (size_t)kx * words;
        tfqp_avx2_counts_run(c, row + (size_t)(w->ix0 + kx * dw) * words * TFQP_AVX2_SPLIT,
                             f + k * lanes, block_stride, words, blocks);
      }
    }
  }
  tfqp_avx2_counts_flush(c, blocks);
}

static inline void conv_row_blocks(const tfqp_bconv2d_params *p, const int32_t *table,
                                   window *w, const int32_t *base_rows, int32_t n, int32_t oy,
                                   int32_t co, int32_t blocks, void *output) {
  const int32_t out_w = p->cols.out;
  const tfqp_word *f = (const tfqp_word *)(table + p->table_filter) +
                       (size_t)co * p->filter_words * TFQP_AVX2_SPLIT;
  int32_t ox;
  for (ox = 0; ox < out_w; ++ox) {
    const int32_t *base =
        base_rows + (size_t)tfqp_window_axis_class(&p->cols, ox) * p->padded_channels;
    tfqp_avx2_counts c;
    w->ix0 = ox * p->cols.stride - p->cols.pad_before;
    tfqp_window_axis_taps(&p->cols, ox, &w->kx0, &w->kx1);
    window_counts(p, w, f, &c, blocks);
    tfqp_avx2_outputs(&c, blocks, co, &p->io, table, p->padded_channels, base,
                      ((size_t)n * p->rows.out + oy) * out_w + ox, output);
  }
}

static void conv_rows(const tfqp_bconv2d_params *p, const int32_t *table,
                      const tfqp_word *image, int32_t n, int32_t oy, void *output) {
  const int32_t cpad = p->padded_channels;
  const int32_t out_w = p->cols.out;
  const int32_t *base_rows =
      table + p->table_base +
      (size_t)tfqp_window_axis_class(&p->rows, oy) * p->col_classes * cpad;
  window w;
  int32_t co = 0;
  w.image = image;
  w.iy0 = oy * p->rows.stride - p->rows.pad_before;
  tfqp_window_axis_taps(&p->rows, oy, &w.ky0, &w.ky1);
  if (p->io.output_packed) {
    tfqp_word *out = (tfqp_word *)output + ((size_t)n * p->rows.out + oy) * out_w * p->io.output_words;
    int32_t i;
    for (i = 0; i < out_w * p->io.output_words; ++i) out[i] = 0;
  }
  /* 32 channels per pass where possible (one broadcast feeds four blocks) */
  for (; co + 32 <= cpad; co += 32) conv_row_blocks(p, table, &w, base_rows, n, oy, co, 4, output);
  for (; co < cpad; co += 16) conv_row_blocks(p, table, &w, base_rows, n, oy, co, 2, output);
}

#else /* portable path: blocks of four channels, 32- or 64-bit words */

/* acc[k] += popcount over the window of input XOR filter f + k * filter_words */
static inline void window_counts4(const tfqp_bconv2d_params *p, const window *w,
                                  const tfqp_word *f, uint32_t acc[4]) {
  const int32_t words = p->io.input_words;
  const size_t row_words = (size_t)p->cols.in * words;
  const size_t stride = (size_t)p->filter_words;
  const int32_t kw = p->cols.filter;
  const int32_t dh = p->rows.dilation;
  const int32_t dw = p->cols.dilation;
  int32_t ky, kx;
  for (ky = w->ky0; ky < w->ky1; ++ky) {
    const tfqp_word *row = w->image + (size_t)(w->iy0 + ky * dh) * row_words;
    const tfqp_word *frow = f + (size_t)ky * kw * words;
    if (dw == 1) {
      tfqp_xor_popcount_run4(row + (size_t)(w->ix0 + w->kx0) * words,
                             frow + (size_t)w->kx0 * words, stride,
                             (w->kx1 - w->kx0) * words, acc);
    } else {
      for (kx = w->kx0; kx < w->kx1; ++kx) {
        tfqp_xor_popcount_run4(row + (size_t)(w->ix0 + kx * dw) * words,
                               frow + (size_t)kx * words, stride, words, acc);
      }
    }
  }
}

static inline uint32_t window_counts1(const tfqp_bconv2d_params *p,
                                      const window *w, const tfqp_word *f) {
  const int32_t words = p->io.input_words;
  const size_t row_words = (size_t)p->cols.in * words;
  const int32_t kw = p->cols.filter;
  const int32_t dh = p->rows.dilation;
  const int32_t dw = p->cols.dilation;
  uint32_t acc = 0;
  int32_t ky, kx;
  for (ky = w->ky0; ky < w->ky1; ++ky) {
    const tfqp_word *row = w->image + (size_t)(w->iy0 + ky * dh) * row_words;
    const tfqp_word *frow = f + (size_t)ky * kw * words;
    for (kx = w->kx0; kx < w->kx1; ++kx) {
      acc += tfqp_xor_popcount_run1(row + (size_t)(w->ix0 + kx * dw) * words,
                                    frow + (size_t)kx * words, words);
    }
  }
  return acc;
}

static void pixel_int8(const tfqp_bconv2d_params *p, const window *w,
                       const tfqp_word *filter, const int32_t *table,
                       const int32_t *base, int8_t *out) {
  const int32_t cout = p->io.channels_out;
  const int32_t cpad = p->padded_channels;
  const int32_t *wpn = table;
  const int32_t *multiplier = table + cpad;
  const int32_t *left = table + 2 * cpad;
  const int32_t *right = table + 3 * cpad;
  int32_t co = 0;
  for (; co + 4 <= cout; co += 4) {
    uint32_t acc[4] = {0, 0, 0, 0};
    int32_t k;
    window_counts4(p, w, filter + (size_t)co * p->filter_words, acc);
    for (k = 0; k < 4; ++k) {
      const int32_t c = co + k;
      out[c] = tfqp_binary_output_int8(base[c], wpn[c], acc[k], multiplier[c], left[c], right[c],
                                       p->io.output_zero_point, p->io.act_min, p->io.act_max);
    }
  }
  for (; co < cout; ++co) {
    const uint32_t x = window_counts1(p, w, filter + (size_t)co * p->filter_words);
    out[co] = tfqp_binary_output_int8(base[co], wpn[co], x, multiplier[co], left[co], right[co],
                                      p->io.output_zero_point, p->io.act_min, p->io.act_max);
  }
}

static void pixel_packed(const tfqp_bconv2d_params *p, const window *w,
                         const tfqp_word *filter, const int32_t *table,
                         const int32_t *base, tfqp_word *out) {
  const int32_t cout = p->io.channels_out;
  const int32_t *direction = table;
  const int32_t *threshold = table + p->padded_channels;
  int32_t co = 0;
  int32_t i;
  for (i = 0; i < p->io.output_words; ++i) out[i] = 0;
  for (; co + 4 <= cout; co += 4) {
    uint32_t acc[4] = {0, 0, 0, 0};
    uint32_t bits = 0;
    int32_t k;
    window_counts4(p, w, filter + (size_t)co * p->filter_words, acc);
    for (k = 0; k < 4; ++k) {
      bits |= tfqp_binary_output_bit(base[co + k], acc[k], direction[co + k],
                                     threshold[co + k])
              << k;
    }
    out[TFQP_WORD_INDEX(co)] |= bits << TFQP_BIT_INDEX(co); /* co % 4 == 0 */
  }
  for (; co < cout; ++co) {
    const uint32_t x = window_counts1(p, w, filter + (size_t)co * p->filter_words);
    out[TFQP_WORD_INDEX(co)] |=
        tfqp_binary_output_bit(base[co], x, direction[co], threshold[co])
        << TFQP_BIT_INDEX(co);
  }
}

static void conv_rows(const tfqp_bconv2d_params *p, const int32_t *table,
                      const tfqp_word *image, const tfqp_word *filter, int32_t n, int32_t oy,
                      void *output) {
  const int32_t out_w = p->cols.out;
  const int32_t cpad = p->padded_channels;
  const int32_t *base_rows =
      table + p->table_base +
      (size_t)tfqp_window_axis_class(&p->rows, oy) * p->col_classes * cpad;
  window w;
  int32_t ox;
  w.image = image;
  w.iy0 = oy * p->rows.stride - p->rows.pad_before;
  tfqp_window_axis_taps(&p->rows, oy, &w.ky0, &w.ky1);
  for (ox = 0; ox < out_w; ++ox) {
    const int32_t *base = base_rows + (size_t)tfqp_window_axis_class(&p->cols, ox) * cpad;
    const size_t pixel = ((size_t)n * p->rows.out + oy) * out_w + ox;
    w.ix0 = ox * p->cols.stride - p->cols.pad_before;
    tfqp_window_axis_taps(&p->cols, ox, &w.kx0, &w.kx1);
    if (p->io.output_packed) {
      pixel_packed(p, &w, filter, table, base, (tfqp_word *)output + pixel * p->io.output_words);
    } else {
      pixel_int8(p, &w, filter, table, base, (int8_t *)output + pixel * p->io.channels_out);
    }
  }
}

#if TFQP_HAVE_ARM_DSP
/* dst[0..n) = src[0..n) or 0 (src NULL); returns dst + n. Plain word moves:
 * the empty asm keeps the compiler from turning the loops into memcpy/memset
 * calls, which cost more than these few words. */
static inline tfqp_word *arm_copy(tfqp_word *dst, const tfqp_word *src, int32_t n) {
  if (src == NULL) {
    uint32_t zero = 0;
    __asm__("" : "+r"(zero));
    for (; n > 0; --n) *dst++ = zero;
    return dst;
  }
  for (; n >= 2; n -= 2) {
    uint32_t a = src[0], b = src[1];
    __asm__("" : "+r"(a), "+r"(b));
    dst[0] = a;
    dst[1] = b;
    dst += 2;
    src += 2;
  }
  if (n > 0) *dst++ = *src;
  return dst;
}

/* `image` with its padding as zero words (input +1): arm_padded_height(p) rows
 * of arm_padded_width(p) pixels, covering input positions from -pad_before. */
static void arm_pad_image(const tfqp_bconv2d_params *p, const tfqp_word *image,
                          tfqp_word *padded) {
  const int32_t words = p->io.input_words;
  const int32_t ph = p->arm_height;
  const int32_t pw = p->arm_width;
  const int32_t top = p->rows.pad_before;
  const int32_t left = p->cols.pad_before;
  /* the input columns [x0, x1) that land inside the padded width */
  const int32_t x0 = left;
  const int32_t x1 = left + p->cols.in < pw ? left + p->cols.in : pw;
  int32_t y;
  for (y = 0; y < ph; ++y) {
    const int32_t iy = y - top;
    tfqp_word *row = padded + (size_t)y * pw * words;
    if (iy < 0 || iy >= p->rows.in) {
      arm_copy(row, NULL, pw * words);
      continue;
    }
    {
      const tfqp_word *src = image + (size_t)iy * p->cols.in * words;
      row = arm_copy(row, NULL, x0 * words);
      if (x1 > x0) tfqp_arm_gather(row, &src, 1, 0, (x1 - x0) * words);
      arm_copy(row + (x1 - x0) * words, NULL, (pw - x1) * words);
    }
  }
}

/* One output row on the Cortex-M kernels. `image`: rows of `row_words` words
 * whose window of output (oy, ox) starts at row oy * stride_h, pixel
 * ox * stride_w (the padded image, or the input when no window leaves it).
 * Scratch: taps (KH * KW pointers), starts (OW * output_words pointers, valid
 * for the row class *starts_class: packed output, the accumulator starts; int8
 * output, the records), col (filter_words words), x (int8 output,
 * channels_out words, then the records of col_classes regions). */
static __attribute__((noinline)) void conv_rows_arm(
    const tfqp_bconv2d_params *p, const int32_t *table, const tfqp_word *image,
    size_t row_words, const tfqp_word *filter, int32_t n, int32_t oy, void *output,
    const tfqp_word **taps, const uint32_t **starts, int32_t *starts_class, tfqp_word *col,
    uint32_t *x) {
  const int32_t out_w = p->cols.out;
  const int32_t cpad = p->padded_channels;
  const int32_t words = p->io.input_words;
  const int32_t kh = p->rows.filter;
  const int32_t kw = p->cols.filter;
  /* dilation_width 1: one run of KW * words words per filter row */
  const int32_t runs = p->cols.dilation == 1 ? kh : kh * kw;
  const int32_t run = p->cols.dilation == 1 ? kw * words : words;
  const uint32_t step_bytes = (uint32_t)(p->cols.stride * words) * sizeof(tfqp_word);
  /* the whole-row kernels read a window of three filter rows, each three contiguous
   * words: three runs of three words are that only when each run is a filter row
   * (not a 1x3 filter dilated across its columns) */
  const int row9 = runs == 3 && run == 3 && runs == kh;
  const int32_t row_class = tfqp_window_axis_class(&p->rows, oy);
  const int32_t *base_rows = table + p->table_base + (size_t)row_class * p->col_classes * cpad;
  const size_t first_pixel = ((size_t)n * p->rows.out + oy) * out_w;
  const tfqp_word *row0 = image + (size_t)oy * p->rows.stride * row_words;
  int32_t ox, ky, kx, t = 0;
  if (p->io.output_packed && row9 && p->io.channels_out % 32 == 0) {
    /* windows of three rows of three words: the whole row in assembly */
    tfqp_arm_row9 job;
    int32_t co;
    if (*starts_class != row_class) { /* rows of one class share their starts */
      const tfqp_window_axis *cols = &p->cols;
      for (co = 0; co < p->io.channels_out; co += 32) {
        const uint32_t **s = starts + (size_t)TFQP_WORD_INDEX(co) * out_w;
        const int32_t *b = base_rows + co;
        for (ox = 0; ox < out_w; ++ox) {
          s[ox] = (const uint32_t *)(b + (size_t)tfqp_window_axis_class(cols, ox) * cpad);
        }
      }
      *starts_class = row_class;
    }
    job.col = col;
    job.pos = row0;
    job.row_stride = (uint32_t)((size_t)p->rows.dilation * row_words * sizeof(tfqp_word));
    job.step = step_bytes;
    job.pixels = out_w;
    job.out_stride = (uint32_t)p->io.output_words * sizeof(tfqp_word);
    for (co = 0; co < p->io.channels_out; co += 32) {
      job.starts = starts + (size_t)TFQP_WORD_INDEX(co) * out_w;
      job.f = filter + (size_t)co * 9;
      job.out = (tfqp_word *)output + first_pixel * p->io.output_words + TFQP_WORD_INDEX(co);
      tfqp_arm_conv9_row_asm(&job);
    }
    return;
  }
  const uint32_t *templates =
      p->io.output_packed ? NULL : tfqp_arm_out8_templates(table, p->table_arm);
  uint32_t *records = x + p->io.channels_out; /* int8 output: one row of regions */
  if (templates != NULL && *starts_class != row_class) {
    /* the records of this row's regions, and each pixel's */
    const int32_t cout = p->io.channels_out;
    int32_t cc;
    for (cc = 0; cc < p->col_classes; ++cc) {
      tfqp_arm_out8_place(records + (size_t)cc * cout * TFQP_ARM_OUT8_RECORD_WORDS, templates,
                          base_rows + (size_t)cc * cpad, cout);
    }
    for (ox = 0; ox < out_w; ++ox) {
      starts[ox] = records + (size_t)tfqp_window_axis_class(&p->cols, ox) * cout *
                                 TFQP_ARM_OUT8_RECORD_WORDS;
    }
    *starts_class = row_class;
  }
  if (templates != NULL && row9) {
    /* the same with int8 outputs, every channel of a pixel in one pass */
    int8_t *out = (int8_t *)output + first_pixel * p->io.channels_out;
    tfqp_arm_row9 job;
    job.col = col;
    job.pos = row0;
    job.row_stride = (uint32_t)((size_t)p->rows.dilation * row_words * sizeof(tfqp_word));
    job.step = step_bytes;
    job.pixels = out_w;
    job.f = filter;
    job.starts = starts;
    job.out = (tfqp_word *)(void *)out;
    job.out_stride = (uint32_t)p->io.channels_out;
    tfqp_arm_conv9_out8_row_asm(&job);
    tfqp_arm_clamp_int8(out, (size_t)out_w * p->io.channels_out, p->io.act_min, p->io.act_max);
    return;
  }
  for (ky = 0; ky < kh; ++ky) {
    const tfqp_word *row = row0 + (size_t)ky * p->rows.dilation * row_words;
    for (kx = 0; kx < (p->cols.dilation == 1 ? 1 : kw); ++kx) {
      taps[t++] = row + (size_t)kx * p->cols.dilation * words;
    }
  }
  for (ox = 0; ox < out_w; ++ox) {
    const int32_t *base = base_rows + (size_t)tfqp_window_axis_class(&p->cols, ox) * cpad;
    tfqp_arm_gather(col, taps, runs, (uint32_t)ox * step_bytes, run);
    tfqp_arm_outputs(col, filter, p->filter_words, &p->io, table, cpad, base,
                     templates != NULL ? starts[ox] : NULL, first_pixel + ox, x, output);
  }
}
#endif /* TFQP_HAVE_ARM_DSP */

#endif /* TFQP_HAVE_AVX2 */

/* Packed and int8 outputs, for the typed API and the op table row: one
 * function, so that the compiler inlines the per-row kernels into it as into a
 * single caller. */
static void conv_eval(const tfqp_bconv2d_params *p, const int32_t *table, const void *input,
                      const tfqp_word *filter, void *output, void *scratch) {
  const size_t image_words = p->image_words;
  tfqp_word *free_scratch = (tfqp_word *)scratch;
  const tfqp_word *packed =
      tfqp_binary_op_packed_input(&p->io, p->mask_input, input, p->pixels, &free_scratch);
  int32_t n, oy;
#if TFQP_HAVE_AVX2
  (void)filter;
  tfqp_avx2_split(packed, p->io.batch * image_words, free_scratch);
  for (n = 0; n < p->io.batch; ++n) {
    for (oy = 0; oy < p->rows.out; ++oy) {
      conv_rows(p, table, free_scratch + (size_t)n * image_words * TFQP_AVX2_SPLIT, n, oy,
                output);
    }
  }
#else
#if TFQP_HAVE_ARM_DSP
  if (p->arm) {
    const size_t padded_words = (size_t)p->arm_height * (size_t)p->arm_width * p->io.input_words;
    tfqp_word *padded = free_scratch;
    const tfqp_word **taps = (const tfqp_word **)(void *)(padded + padded_words);
    const uint32_t **starts = (const uint32_t **)(void *)(taps + p->rows.filter * p->cols.filter);
    tfqp_word *col = (tfqp_word *)(void *)(starts + (size_t)p->cols.out * p->io.output_words);
    int32_t starts_class = -1;
    uint32_t *x = col + p->filter_words;
    for (n = 0; n < p->io.batch; ++n) {
      const tfqp_word *image = packed + (size_t)n * image_words;
      size_t row_words = (size_t)p->cols.in * p->io.input_words;
      if (padded_words > 0) {
        arm_pad_image(p, image, padded);
        image = padded;
        row_words = (size_t)p->arm_width * p->io.input_words;
      }
      for (oy = 0; oy < p->rows.out; ++oy) {
        conv_rows_arm(p, table, image, row_words, filter, n, oy, output, taps, starts,
                      &starts_class, col, x);
      }
    }
    return;
  }
#endif
  for (n = 0; n < p->io.batch; ++n) {
    for (oy = 0; oy < p->rows.out; ++oy) {
      conv_rows(p, table, packed + (size_t)n * image_words, filter, n, oy, output);
    }
  }
#endif
}

void tfqp_bconv2d_eval(const tfqp_bconv2d_params *p, const int32_t *table,
                       const void *input, const tfqp_word *filter, void *output,
                       void *scratch) {
  if (p->io.output_values) {
    conv_values(p, table, input, filter, (int32_t *)output, scratch);
  } else {
    conv_eval(p, table, input, filter, output, scratch);
  }
}

/* ------------------------------------------------------------- op table row */

static const char *const input_roles[] = {"input", "filter", "transform", "residual"};

static tfqp_status op_parse(const uint8_t *buffer, size_t length, tfqp_op_options *options,
                            tfqp_error *error) {
  return tfqp_bconv2d_parse_options(buffer, length, &options->bconv2d, error);
}

static tfqp_status op_output_dims(const tfqp_op_options *options, const tfqp_tensor *inputs,
                                  int32_t input_count, tfqp_type output_type, int32_t *rank,
                                  int32_t dims[TFQP_MAX_RANK], tfqp_error *error) {
  (void)input_count;
  *rank = 4;
  return tfqp_bconv2d_output_dims(&options->bconv2d, &inputs[0], &inputs[1], output_type, dims,
                                  error);
}

static tfqp_status op_prepare(const tfqp_op_options *options, const tfqp_tensor *inputs,
                              int32_t input_count, const tfqp_tensor *outputs,
                              tfqp_op_params *params, tfqp_op_buffers *buffers,
                              tfqp_error *error) {
  const tfqp_status s = tfqp_bconv2d_prepare(&options->bconv2d, &inputs[0], &inputs[1],
                                             &inputs[2], &outputs[0], &params->bconv2d, error);
  tfqp_binary_io *io = &params->bconv2d.io;
  if (s != TFQP_OK) return s;
  {
    const tfqp_status r = tfqp_value_prepare_residual(io->output_values, inputs, input_count,
                                                      &outputs[0], &io->residual,
                                                      &io->output_count, error);
    if (r != TFQP_OK) return r;
  }
  buffers->table_bytes = params->bconv2d.table_bytes;
  buffers->scratch_bytes = params->bconv2d.scratch_bytes;
  return TFQP_OK;
}

static tfqp_status op_init_table(const tfqp_op_params *params, const void *const *constants,
                                 int32_t *table, size_t table_bytes, tfqp_error *error) {
  return tfqp_bconv2d_init_table(&params->bconv2d, (const tfqp_word *)constants[1],
                                 (const int32_t *)constants[2], table, table_bytes, error);
}

static void op_eval(const tfqp_op_params *params, const int32_t *table,
                    const void *const *inputs, void *const *outputs, void *scratch) {
  if (params->bconv2d.io.output_values) {
    conv_values(&params->bconv2d, table, inputs[0], (const tfqp_word *)inputs[1],
                (int32_t *)outputs[0], scratch);
    if (params->bconv2d.io.residual) {
      tfqp_value_add_residual((int32_t *)outputs[0], (const int32_t *)inputs[3],
                              params->bconv2d.io.output_count);
    }
    return;
  }
  conv_eval(&params->bconv2d, table, inputs[0], (const tfqp_word *)inputs[1], outputs[0],
            scratch);
}

const tfqp_op tfqp_op_bconv2d = {
    "TFQP_BCONV2D", 3, 4, 1, (1u << 1) | (1u << 2), input_roles,
    option_keys, OPTION_COUNT, offsetof(tfqp_bconv2d_options, present),
    op_parse, op_output_dims, op_prepare, op_init_table, op_eval,
    sizeof(tfqp_bconv2d_params)};
