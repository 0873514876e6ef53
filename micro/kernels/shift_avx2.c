/* The x86-64 fast path of the shift ops (hooks in shift_fast.h), selected at
 * compile time with AVX2 like the binary ops' path; on CPUs with AVX-512
 * VNNI it runs the kernels of shift_avx512.c instead, chosen at run time
 * (CPUID, once per init_table): the only run-time dispatch of the kernels,
 * because the stock int8 kernels it is measured against (XNNPACK) use VNNI
 * where the CPU has it. Both give the portable path's bytes exactly.
 *
 * The layout (shift_x86.h): init_table decodes the codes into int8 weights in
 * blocks of 16 channels x 4 taps; the layer runs as an int8 matrix product
 * of u = q + 128 with them, its zero-point term folded into each channel's
 * bias. Layers whose decoded weights do not fit the kernels (|w| > 127; with
 * AVX2 alone |w| > 64, where VPMADDUBSW's int16 pair sums could saturate)
 * stay on the portable path.
 *
 *   convolution   output positions in rows of 4 (AVX2) or 8 (AVX-512), their
 *                 receptive fields gathered as u bytes, times 32 channels
 *   fully conn.   batch 1: the input row times every block (matrix-vector);
 *                 batches: as a 1x1 convolution
 *   depthwise     per position, per block of 16 channels: each tap group's
 *                 bytes transposed to [channel][4 taps] and multiplied
 *                 (depth multiplier > 1: the input row expanded per tap)
 * Outputs: 8 channels at a time with the binary ops' bit-exact AVX2
 * requantization (xnor_avx2.h, V = base - wpn * acc with wpn = -d), packed
 * bits by comparing V with the thresholds; two classes in int64 C.
 */
#include "shift_fast.h"

#if TFQP_HAVE_AVX2

#include <immintrin.h>
#include <string.h>

#include "shift_op.h"
#include "shift_x86.h"
#include "xnor_avx2.h"

/* The fast region (the table's last tfqp_shift_fast_table_bytes bytes):
 * header words, the channel fields [F_COUNT][cout_pad], then the weights
 * [classes][blocks][groups][16][4] bytes. */
enum { H_USABLE, H_AVX512, H_WORDS };
/* (the AVX-512 kernels' depthwise weights are in the superblock order of
 * shift_x86.h) */
enum { F_BASE, F_WPN, F_MULT, F_LEFT, F_RIGHT, F_COUNT };        /* int8, one class */
enum { F_THRESHOLD = F_MULT };                                   /* packed */
enum { F_MULT1 = F_LEFT, F_SHIFT = F_RIGHT, F_BIAS1 = F_COUNT }; /* two classes */
#define FIELDS (F_COUNT + 1)

/* Depthwise windows of more taps (4 per group) stay on the portable path. */
#define MAX_DEPTHWISE_GROUPS 64

/* Weights above this many bytes stay on the portable path (the table must
 * stay far below 2^31 bytes). */
#define MAX_WEIGHT_BYTES ((uint64_t)1 << 28)

typedef struct {
  int32_t groups;   /* ceil(K / 4) */
  int32_t blocks;   /* ceil(Cout / 16) */
  int32_t cout_pad; /* 16 * blocks */
  uint64_t weight_bytes;
} x86_shape;

/* A depthwise layer (its patch_step is its taps; 0 for the others): its
 * channels are padded to the AVX-512 kernel's 64. */
static int is_depthwise(const tfqp_shift_layer *layer) { return layer->patch_step != 0; }

static x86_shape shape_of(const tfqp_shift_layer *layer) {
  const int32_t unit = is_depthwise(layer) ? TFQP_X86_SUPERBLOCK : TFQP_X86_BLOCK;
  x86_shape s;
  s.groups = (int32_t)(((int64_t)layer->taps + TFQP_X86_GROUP - 1) / TFQP_X86_GROUP);
  s.cout_pad = (int32_t)(((int64_t)layer->channels_out + unit - 1) / unit * unit);
  s.blocks = s.cout_pad / TFQP_X86_BLOCK;
  s.weight_bytes = (uint64_t)layer->classes * (uint64_t)s.blocks * (uint64_t)s.groups *
                   TFQP_X86_GROUP_BYTES;
  return s;
}

static int shape_fits(const x86_shape *s) { return s->weight_bytes <= MAX_WEIGHT_BYTES; }

size_t tfqp_shift_fast_table_bytes(const tfqp_shift_layer *layer) {
  const x86_shape s = shape_of(layer);
  if (!shape_fits(&s)) return H_WORDS * sizeof(int32_t);
  return (H_WORDS + (size_t)FIELDS * (size_t)s.cout_pad) * sizeof(int32_t) +
         (size_t)s.weight_bytes;
}

/* A batch element's input with its padding made explicit, as u bytes: rows
 * of `width` pixels of `depth` bytes (padding zp_in + 128); a depthwise
 * layer's pixels hold its Cout channels (input channel c / depth multiplier)
 * padded to the weight blocks. */
typedef struct {
  int32_t height, width, depth;
} x86_image;

/* Padded extent of one axis: every window of every output fits. */
static int64_t padded_extent(const tfqp_window_axis *a) {
  const int64_t extent =
      (int64_t)(a->out - 1) * a->stride + (int64_t)(a->filter - 1) * a->dilation + 1;
  const int64_t inside = (int64_t)a->pad_before + a->in;
  return extent > inside ? extent : inside;
}

/* Scratch regions, in this order: the image, ROWS u rows of 4 * groups bytes
 * (+ 64 bytes of slack), two accumulator arrays, the tap offsets. */
typedef struct {
  uint64_t image, rows, acc, offsets, total;
} x86_plan;

static x86_plan plan_of(const x86_shape *s, uint64_t image_bytes) {
  x86_plan plan;
  /* ROWS positions of every channel (depthwise), or of two blocks */
  const uint64_t acc = TFQP_AVX512_ROWS * (uint64_t)(s->cout_pad > 2 * TFQP_X86_BLOCK
                                                         ? s->cout_pad
                                                         : 2 * TFQP_X86_BLOCK);
  plan.image = (image_bytes + 63u) & ~(uint64_t)63u;
  plan.rows = TFQP_AVX512_ROWS * (uint64_t)s->groups * TFQP_X86_GROUP + 64u;
  plan.acc = 2 * acc * sizeof(int32_t);
  plan.offsets = 4 * (uint64_t)s->groups * sizeof(size_t); /* >= the taps */
  plan.total = plan.image + plan.rows + plan.acc + plan.offsets;
  return plan;
}

static size_t plan_bytes(const x86_shape *s, const x86_plan *plan) {
  return !shape_fits(s) || plan->total > ((uint64_t)1 << 30) ? 0 : (size_t)plan->total;
}

static x86_image image_of(const tfqp_shift_conv2d_params *params, int depthwise) {
  x86_image image;
  const x86_shape s = shape_of(&params->layer);
  image.height = (int32_t)padded_extent(&params->rows);
  image.width = (int32_t)padded_extent(&params->cols);
  image.depth = depthwise ? s.cout_pad : params->channels_in;
  return image;
}

static uint64_t image_bytes(const tfqp_shift_conv2d_params *params, int depthwise) {
  const x86_shape s = shape_of(&params->layer);
  const uint64_t depth = depthwise ? (uint64_t)s.cout_pad : (uint64_t)params->channels_in;
  /* + 16: a depthwise block reads 16 bytes from its first channel */
  return (uint64_t)padded_extent(&params->rows) * (uint64_t)padded_extent(&params->cols) * depth +
         16u;
}

size_t tfqp_shift_fast_conv2d_scratch_bytes(const tfqp_shift_conv2d_params *params,
                                            int depthwise) {
  const x86_shape s = shape_of(&params->layer);
  const x86_plan plan = plan_of(&s, image_bytes(params, depthwise));
  return plan_bytes(&s, &plan);
}

size_t tfqp_shift_fast_fully_connected_scratch_bytes(
    const tfqp_shift_fully_connected_params *params) {
  const x86_shape s = shape_of(&params->layer);
  const x86_plan plan = plan_of(&s, 0);
  return plan_bytes(&s, &plan);
}

static int32_t *fast_region(const tfqp_shift_layer *layer, int32_t *table) {
  return table + (layer->table_bytes - tfqp_shift_fast_table_bytes(layer)) / sizeof(int32_t);
}

static const int32_t *fast_region_c(const tfqp_shift_layer *layer, const int32_t *table) {
  return table + (layer->table_bytes - tfqp_shift_fast_table_bytes(layer)) / sizeof(int32_t);
}

/* ------------------------------------------------------------------ init */

/* Decodes channel co's row into its weights per class (w_c[k], T terms
 * summed) at weights[c] (blocked layout), and their sums; 0 if a weight is
 * outside [-limit, limit]. */
static int decode_row(const tfqp_shift_layer *layer, const x86_shape *s, const tfqp_word *row,
                      const int32_t *values, int32_t co, int32_t limit, int superblocks,
                      int8_t *weights, int64_t sums[TFQP_CODE_CLASSES_MAX]) {
  const int32_t bits = layer->bits;
  const int32_t per_word = layer->codes_per_word;
  const size_t stride = (size_t)1 << bits;
  const size_t class_bytes = (size_t)s->blocks * (size_t)s->groups * TFQP_X86_GROUP_BYTES;
  /* channel co's bytes: 4 consecutive taps at `first` + group * group_step */
  const size_t group_step = superblocks ? 4 * TFQP_X86_GROUP_BYTES : TFQP_X86_GROUP_BYTES;
  int8_t *first =
      superblocks
          ? weights +
                (size_t)(co / TFQP_X86_SUPERBLOCK) * (size_t)s->groups * 4 * TFQP_X86_GROUP_BYTES +
                (size_t)(co % 16 / 4) * TFQP_X86_GROUP_BYTES +
                (size_t)(co % TFQP_X86_SUPERBLOCK / 16 * 4 + co % 4) * TFQP_X86_GROUP
          : weights + (size_t)(co / TFQP_X86_BLOCK) * (size_t)s->groups * TFQP_X86_GROUP_BYTES +
                (size_t)(co % TFQP_X86_BLOCK) * TFQP_X86_GROUP;
  int32_t k, t, c;
  int32_t r = 0;
  sums[0] = sums[1] = 0;
  for (k = 0; k < layer->taps; ++k) {
    int32_t w[TFQP_CODE_CLASSES_MAX] = {0, 0};
    for (t = 0; t < layer->terms; ++t, ++r) {
      const uint32_t code = tfqp_code_at(row, r, bits);
      for (c = 0; c < layer->classes; ++c) w[c] += values[(size_t)c * stride + code];
    }
    for (c = 0; c < layer->classes; ++c) {
      if (w[c] < -limit || w[c] > limit) return 0;
      first[(size_t)c * class_bytes + (size_t)(k / TFQP_X86_GROUP) * group_step +
            (size_t)(k % TFQP_X86_GROUP)] = (int8_t)w[c];
      sums[c] += w[c];
    }
  }
  (void)per_word;
  return 1;
}

/* x mod 2^32 as int32 (two's complement, no implementation-defined cast). */
static int32_t wrap32(int64_t x) { return tfqp_shift_int32((uint32_t)(uint64_t)x); }

void tfqp_shift_fast_init_table(const tfqp_shift_layer *layer, const tfqp_word *codes,
                                const int32_t *transform, const int32_t *code_lists,
                                int32_t *table) {
  const x86_shape s = shape_of(layer);
  int32_t *fast = fast_region(layer, table);
  int32_t *fields = fast + H_WORDS;
  int8_t *weights = (int8_t *)(fields + (size_t)FIELDS * s.cout_pad);
  const size_t cout = (size_t)layer->channels_out;
  const size_t pad = (size_t)s.cout_pad;
  const int32_t *portable = table + layer->channels_at;
  const int64_t offset = (int64_t)layer->input_zero_point + 128;
  const int avx512 = tfqp_shift_avx512_available();
  const int32_t limit = avx512 ? 127 : 64;
  (void)code_lists;
  size_t co;
  fast[H_USABLE] = 0;
  fast[H_AVX512] = avx512;
  if (!shape_fits(&s)) return;
  memset(fields, 0, (FIELDS * pad) * sizeof(int32_t) + (size_t)s.weight_bytes);
  for (co = 0; co < cout; ++co) {
    /* the codes output's d is in its transform row (level_output.h) */
    const int32_t d = layer->output_levels != 0
                          ? tfqp_level_direction(transform, layer->output_levels, (int32_t)co)
                          : portable[TFQP_SHIFT_D * cout + co];
    int64_t sums[TFQP_CODE_CLASSES_MAX];
    if (!decode_row(layer, &s, codes + co * (size_t)layer->row_words, table, (int32_t)co, limit,
                    avx512 && is_depthwise(layer), weights, sums)) {
      return;
    }
    fields[F_WPN * pad + co] = -d;
    if (layer->output_packed || layer->output_levels != 0) {
      /* V = d * A: compared with the threshold(s) */
      fields[F_BASE * pad + co] = wrap32(-d * offset * sums[0]);
      if (layer->output_packed) {
        fields[F_THRESHOLD * pad + co] = portable[TFQP_SHIFT_THRESHOLD * cout + co];
      }
      continue;
    }
    fields[F_BASE * pad + co] = wrap32(portable[TFQP_SHIFT_B * cout + co] - d * offset * sums[0]);
    fields[F_MULT * pad + co] = portable[TFQP_SHIFT_M0 * cout + co];
    if (layer->classes == 1) {
      const int32_t shift = portable[TFQP_SHIFT_S * cout + co];
      fields[F_LEFT * pad + co] = shift > 0 ? shift : 0;
      fields[F_RIGHT * pad + co] = shift > 0 ? 0 : -shift;
    } else {
      fields[F_MULT1 * pad + co] = portable[TFQP_SHIFT_M1 * cout + co];
      fields[F_SHIFT * pad + co] = portable[TFQP_SHIFT_S * cout + co];
      fields[F_BIAS1 * pad + co] = wrap32(-offset * sums[1]);
    }
  }
  fast[H_USABLE] = 1;
}

/* ------------------------------------------------------------------ outputs */

typedef struct {
  const tfqp_shift_layer *layer;
  x86_shape shape;
  const int32_t *fields;   /* [FIELDS][cout_pad] */
  const int8_t *weights;   /* class 0 */
  size_t class_bytes;      /* to class 1's weights */
  const int32_t *levels;   /* codes output: the transform rows (level_output.h) */
  int avx512;
} x86_layer;

static x86_layer view_of(const tfqp_shift_layer *layer, const int32_t *table,
                         const int32_t *transform) {
  x86_layer v;
  const int32_t *fast = fast_region_c(layer, table);
  v.layer = layer;
  v.shape = shape_of(layer);
  v.fields = fast + H_WORDS;
  v.weights = (const int8_t *)(v.fields + (size_t)FIELDS * v.shape.cout_pad);
  v.class_bytes =
      (size_t)v.shape.blocks * (size_t)v.shape.groups * TFQP_X86_GROUP_BYTES;
  v.levels = transform;
  v.avx512 = fast[H_AVX512];
  return v;
}

/* Whether the outputs are TFLite-requantized int8 values of one class (what
 * the AVX-512 output kernels compute). */
static int requantized_int8(const tfqp_shift_layer *layer) {
  return layer->classes == 1 && !layer->output_packed && layer->output_levels == 0;
}

static const int32_t *field(const x86_layer *v, int32_t f) {
  return v->fields + (size_t)f * (size_t)v->shape.cout_pad;
}

/* The int8 requantization of channels first on (AVX-512 kernels). */
static tfqp_x86_requant requant_of(const x86_layer *v, int32_t first) {
  tfqp_x86_requant q;
  q.fields = field(v, F_BASE) + first;
  q.stride = (size_t)v->shape.cout_pad;
  q.zero_point = v->layer->output_zero_point;
  q.act_min = v->layer->activation_min;
  q.act_max = v->layer->activation_max;
  return q;
}

/* The outputs of channels [first, first + count) of one position from acc
 * (acc[i]: channel first + i; acc1 the second class's or NULL). */
static void position_outputs(const x86_layer *v, const int32_t *acc, const int32_t *acc1,
                             int32_t first, int32_t count, void *position) {
  const tfqp_shift_layer *layer = v->layer;
  int32_t i;
  if (layer->output_packed) {
    tfqp_word *out = (tfqp_word *)position;
    for (i = 0; i < count; i += TFQP_AVX2_LANES) {
      const int32_t c = first + i;
      const __m256i value = _mm256_sub_epi32(
          tfqp_avx2_load(field(v, F_BASE) + c),
          _mm256_mullo_epi32(tfqp_avx2_load(field(v, F_WPN) + c), tfqp_avx2_load(acc + i)));
      const __m256i below = _mm256_cmpgt_epi32(tfqp_avx2_load(field(v, F_THRESHOLD) + c), value);
      uint32_t bits = (uint32_t)_mm256_movemask_ps(_mm256_castsi256_ps(below));
      const int32_t n = count - i < TFQP_AVX2_LANES ? count - i : TFQP_AVX2_LANES;
      if (n < TFQP_AVX2_LANES) bits &= (1u << n) - 1u;
      /* 8 channels never straddle a word: first and i are multiples of 8 */
      out[TFQP_WORD_INDEX(c)] |= bits << TFQP_BIT_INDEX(c);
    }
    return;
  }
  if (layer->output_levels != 0) {
    for (i = 0; i < count; i += TFQP_AVX2_LANES) {
      const int32_t c = first + i;
      const int32_t n = count - i < TFQP_AVX2_LANES ? count - i : TFQP_AVX2_LANES;
      int32_t signed_acc[TFQP_AVX2_LANES], j;
      _mm256_storeu_si256(
          (__m256i *)(void *)signed_acc,
          _mm256_sub_epi32(tfqp_avx2_load(field(v, F_BASE) + c),
                           _mm256_mullo_epi32(tfqp_avx2_load(field(v, F_WPN) + c),
                                              tfqp_avx2_load(acc + i))));
      for (j = 0; j < n; ++j) {
        ((int8_t *)position)[c + j] = (int8_t)tfqp_level_output(
            v->levels, layer->output_levels, layer->codes_only, c + j, signed_acc[j]);
      }
    }
    return;
  }
  if (layer->classes == 1 && v->avx512) {
    const tfqp_x86_requant q = requant_of(v, first);
    tfqp_shift_avx512_outputs_int8(&q, acc, 0, 1, count, (int8_t *)position + first, 0);
    return;
  }
  if (layer->classes == 1) {
    const __m256i zero_point = _mm256_set1_epi32(layer->output_zero_point);
    const __m256i act_min = _mm256_set1_epi32(layer->activation_min);
    const __m256i act_max = _mm256_set1_epi32(layer->activation_max);
    for (i = 0; i < count; i += TFQP_AVX2_LANES) {
      const int32_t c = first + i;
      const int32_t n = count - i < TFQP_AVX2_LANES ? count - i : TFQP_AVX2_LANES;
      const __m256i out = tfqp_avx2_output_int8(
          tfqp_avx2_load(acc + i), field(v, F_BASE) + c, field(v, F_WPN) + c,
          field(v, F_MULT) + c, field(v, F_LEFT) + c, field(v, F_RIGHT) + c, zero_point,
          act_min, act_max);
      tfqp_avx2_store_int8((int8_t *)position + c, out, n);
    }
    return;
  }
  for (i = 0; i < count; ++i) {
    const int32_t c = first + i;
    const int32_t d = -field(v, F_WPN)[c];
    const int32_t value =
        tfqp_shift_int32((uint32_t)field(v, F_BASE)[c] + (uint32_t)d * (uint32_t)acc[i]);
    const int32_t a1 = tfqp_shift_int32((uint32_t)acc1[i] + (uint32_t)field(v, F_BIAS1)[c]);
    const int64_t sum = (int64_t)value * field(v, F_MULT)[c] +
                        (int64_t)(d > 0 ? a1 : -a1) * field(v, F_MULT1)[c];
    int64_t out = tfqp_shift_round_pot(sum, field(v, F_SHIFT)[c]) + layer->output_zero_point;
    if (out < layer->activation_min) out = layer->activation_min;
    if (out > layer->activation_max) out = layer->activation_max;
    ((int8_t *)position)[c] = (int8_t)out;
  }
}

static size_t position_bytes(const tfqp_shift_layer *layer) {
  return (size_t)layer->output_depth * (layer->output_packed ? sizeof(tfqp_word) : 1u);
}

/* ------------------------------------------------------------------ activations */

/* u = q + 128 of `count` int8 values. */
static void flip_bytes(const int8_t *q, int32_t count, uint8_t *u) {
  const __m256i flip = _mm256_set1_epi8((char)0x80);
  int32_t i = 0;
  for (; i + 32 <= count; i += 32) {
    const __m256i x = _mm256_loadu_si256((const __m256i *)(const void *)(q + i));
    _mm256_storeu_si256((__m256i *)(void *)(u + i), _mm256_xor_si256(x, flip));
  }
  for (; i < count; ++i) u[i] = (uint8_t)((uint8_t)q[i] ^ 0x80u);
}

/* Batch element n's image (see x86_image). */
static void build_image(const tfqp_shift_conv2d_params *p, const x86_image *image,
                        const int8_t *input, int32_t n, uint8_t *out) {
  const tfqp_shift_layer *layer = &p->layer;
  const uint8_t padded = (uint8_t)(layer->input_zero_point + 128);
  const int32_t cin = p->channels_in, dm = layer->depth_multiplier;
  const int32_t cout = layer->channels_out;
  const size_t depth = (size_t)image->depth;
  const size_t row_bytes = (size_t)image->width * depth;
  const int32_t left = p->cols.pad_before, in_width = p->cols.in;
  const int8_t *first = input + (size_t)n * p->rows.in * in_width * cin;
  int32_t y, x, c;
  for (y = 0; y < image->height; ++y) {
    uint8_t *row = out + (size_t)y * row_bytes;
    const int32_t iy = y - p->rows.pad_before;
    const int8_t *q;
    if (iy < 0 || iy >= p->rows.in) {
      memset(row, padded, row_bytes);
      continue;
    }
    /* only for a row inside the input: a padding row's offset would wrap */
    q = first + (size_t)iy * in_width * cin;
    memset(row, padded, (size_t)left * depth);
    memset(row + (size_t)(left + in_width) * depth, padded,
           (size_t)(image->width - left - in_width) * depth);
    row += (size_t)left * depth;
    if (depth == (size_t)cin && dm == 1) {
      flip_bytes(q, in_width * cin, row);
      continue;
    }
    for (x = 0; x < in_width; ++x, q += cin, row += depth) {
      for (c = 0; c < cout; ++c) row[c] = (uint8_t)((uint8_t)q[c / dm] ^ 0x80u);
      for (; c < image->depth; ++c) row[c] = padded;
    }
  }
}

/* Byte offsets of the window's taps from its first tap, (ky, kx) order. */
static void tap_offsets(const tfqp_shift_conv2d_params *p, const x86_image *image,
                        size_t *offsets) {
  int32_t ky, kx;
  for (ky = 0; ky < p->rows.filter; ++ky) {
    for (kx = 0; kx < p->cols.filter; ++kx) {
      *offsets++ = ((size_t)ky * p->rows.dilation * image->width +
                    (size_t)kx * p->cols.dilation) *
                   (size_t)image->depth;
    }
  }
}

/* Byte offset of output position (oy, ox)'s first tap in the image. */
static size_t window_at(const tfqp_shift_conv2d_params *p, const x86_image *image, int32_t oy,
                        int32_t ox) {
  return ((size_t)oy * p->rows.stride * image->width + (size_t)ox * p->cols.stride) *
         (size_t)image->depth;
}

/* windows[r] = the image's window of position first + r for r < count
 * (positions in row-major order; one division for the block, not one per
 * position), the first position's for count <= r < rows. */
static void block_windows(const tfqp_shift_conv2d_params *p, const x86_image *image,
                          const uint8_t *base, int32_t first, int32_t count, int32_t rows,
                          const uint8_t **windows) {
  int32_t oy = first / p->cols.out, ox = first % p->cols.out, r;
  for (r = 0; r < count; ++r) {
    windows[r] = base + window_at(p, image, oy, ox);
    if (++ox == p->cols.out) {
      ox = 0;
      ++oy;
    }
  }
  for (; r < rows; ++r) windows[r] = windows[0];
}

/* ------------------------------------------------------------------ drivers */

typedef struct {
  uint8_t *image;
  uint8_t *rows;   /* ROWS u rows of 4 * groups bytes */
  int32_t *acc;    /* accumulators */
  int32_t *acc1;   /* the second class's */
  size_t *offsets;  /* the convolution's tap offsets */
} x86_scratch;

static x86_scratch split_scratch(const x86_shape *s, uint64_t image, void *scratch) {
  const x86_plan plan = plan_of(s, image);
  unsigned char *p = (unsigned char *)scratch;
  x86_scratch x;
  x.image = (uint8_t *)p;
  p += plan.image;
  x.rows = (uint8_t *)p;
  p += plan.rows;
  x.acc = (int32_t *)(void *)p;
  x.acc1 = x.acc + plan.acc / (2 * sizeof(int32_t));
  p += plan.acc;
  x.offsets = (size_t *)(void *)p;
  return x;
}

typedef void (*rows_kernel)(const uint8_t *const *rows, const int8_t *weights, size_t block_bytes,
                            int32_t blocks, int32_t groups, int32_t *acc);
typedef void (*vector_kernel)(const uint8_t *u, const int8_t *weights, size_t block_bytes,
                              int32_t blocks, int32_t groups, int32_t *acc);

/* The outputs of channels [first, first + channels) (at most two blocks) of
 * positions [0, count) from their sums s->acc (and s->acc1), rows of two
 * blocks; output: position 0's. */
static void pair_outputs(const x86_layer *v, const x86_scratch *s, int32_t first,
                         int32_t channels, int32_t count, void *output) {
  const tfqp_shift_layer *layer = v->layer;
  const int32_t width = 2 * TFQP_X86_BLOCK;
  int32_t r;
  if (v->avx512 && requantized_int8(layer)) {
    const tfqp_x86_requant q = requant_of(v, first);
    tfqp_shift_avx512_outputs_int8(&q, s->acc, (size_t)width, count, channels,
                                   (int8_t *)output + first, position_bytes(layer));
    return;
  }
  for (r = 0; r < count; ++r) {
    position_outputs(v, s->acc + (size_t)r * width, s->acc1 + (size_t)r * width, first,
                     channels, (unsigned char *)output + (size_t)r * position_bytes(layer));
  }
}

/* The outputs of positions [0, count) whose u rows are rows[0 .. count)
 * (rows up to the kernel's width repeat row 0); output: position 0's. */
static void rows_outputs(const x86_layer *v, const uint8_t *const *rows, int32_t count,
                         const x86_scratch *s, void *output) {
  const tfqp_shift_layer *layer = v->layer;
  const rows_kernel kernel = v->avx512 ? tfqp_shift_avx512_rows : tfqp_shift_avx2_rows;
  const size_t block_bytes = (size_t)v->shape.groups * TFQP_X86_GROUP_BYTES;
  int32_t block;
  for (block = 0; block < v->shape.blocks; block += 2) {
    const int32_t blocks = v->shape.blocks - block >= 2 ? 2 : 1;
    const int32_t first = block * TFQP_X86_BLOCK;
    const int32_t left = layer->channels_out - first;
    const int32_t channels = left < blocks * TFQP_X86_BLOCK ? left : blocks * TFQP_X86_BLOCK;
    const int8_t *weights = v->weights + (size_t)block * block_bytes;
    kernel(rows, weights, block_bytes, blocks, v->shape.groups, s->acc);
    if (layer->classes == 2) {
      kernel(rows, weights + v->class_bytes, block_bytes, blocks, v->shape.groups, s->acc1);
    }
    pair_outputs(v, s, first, channels, count, output);
  }
}

typedef void (*windows_kernel)(const uint8_t *const *windows, const size_t *offsets,
                               int32_t taps, int32_t tap_groups, const int8_t *weights,
                               size_t block_bytes, int32_t blocks, int32_t *acc);

/* The outputs of positions [0, count) whose windows start at windows[0 ..
 * count) (up to the kernel's width repeat window 0); output: position 0's. */
static void windows_outputs(const x86_layer *v, const tfqp_shift_conv2d_params *p,
                            const uint8_t *const *windows, const size_t *offsets, int32_t count,
                            const x86_scratch *s, void *output) {
  const tfqp_shift_layer *layer = v->layer;
  const windows_kernel kernel =
      v->avx512 ? tfqp_shift_avx512_windows : tfqp_shift_avx2_windows;
  const size_t block_bytes = (size_t)v->shape.groups * TFQP_X86_GROUP_BYTES;
  const int32_t taps = p->rows.filter * p->cols.filter;
  const int32_t tap_groups = p->channels_in / TFQP_X86_GROUP;
  int32_t block;
  for (block = 0; block < v->shape.blocks; block += 2) {
    const int32_t blocks = v->shape.blocks - block >= 2 ? 2 : 1;
    const int32_t first = block * TFQP_X86_BLOCK;
    const int32_t left = layer->channels_out - first;
    const int32_t channels = left < blocks * TFQP_X86_BLOCK ? left : blocks * TFQP_X86_BLOCK;
    const int8_t *weights = v->weights + (size_t)block * block_bytes;
    if (v->avx512 && requantized_int8(layer) && channels == 2 * TFQP_X86_BLOCK) {
      /* requantized from the kernel's registers */
      const tfqp_x86_requant q = requant_of(v, first);
      tfqp_shift_avx512_windows_int8(windows, offsets, taps, tap_groups, weights, block_bytes,
                                     &q, count, (int8_t *)output + first, position_bytes(layer));
      continue;
    }
    kernel(windows, offsets, taps, tap_groups, weights, block_bytes, blocks, s->acc);
    if (layer->classes == 2) {
      kernel(windows, offsets, taps, tap_groups, weights + v->class_bytes, block_bytes, blocks,
             s->acc1);
    }
    pair_outputs(v, s, first, channels, count, output);
  }
}

/* Convolution: per batch element its image, then positions in rows of the
 * kernel's width: on Cin in fours the kernel reads the windows in the image,
 * otherwise each row's taps are copied from it first. */
static void convolution(const x86_layer *v, const tfqp_shift_conv2d_params *p,
                        const int8_t *input, const x86_scratch *s, void *output) {
  const tfqp_shift_layer *layer = v->layer;
  const x86_image image = image_of(p, 0);
  const int32_t per_call = v->avx512 ? TFQP_AVX512_ROWS : TFQP_AVX2_ROWS;
  const int32_t positions = p->rows.out * p->cols.out;
  const int32_t tap_count = p->rows.filter * p->cols.filter;
  const size_t cin = (size_t)p->channels_in;
  const size_t row_bytes = (size_t)v->shape.groups * TFQP_X86_GROUP;
  const size_t used = (size_t)tap_count * cin;
  size_t *offsets = s->offsets;
  const int in_place = p->channels_in % TFQP_X86_GROUP == 0;
  const uint8_t *rows[TFQP_AVX512_ROWS];
  int32_t n, first, r, t;
  tap_offsets(p, &image, offsets);
  if (layer->output_packed) {
    memset(output, 0, (size_t)layer->pixels * position_bytes(layer));
  }
  for (n = 0; n < p->batch; ++n) {
    build_image(p, &image, input, n, s->image);
    for (first = 0; first < positions; first += per_call) {
      const int32_t count = positions - first < per_call ? positions - first : per_call;
      unsigned char *out =
          (unsigned char *)output + ((size_t)n * positions + first) * position_bytes(layer);
      if (in_place) {
        block_windows(p, &image, s->image, first, count, per_call, rows);
        windows_outputs(v, p, rows, offsets, count, s, out);
        continue;
      }
      for (r = 0; r < per_call; ++r) {
        uint8_t *row = s->rows + (size_t)r * row_bytes;
        const int32_t position = first + r;
        rows[r] = r < count ? row : s->rows;
        if (r >= count) continue;
        {
          const uint8_t *window =
              s->image + window_at(p, &image, position / p->cols.out, position % p->cols.out);
          for (t = 0; t < tap_count; ++t) memcpy(row + (size_t)t * cin, window + offsets[t], cin);
          memset(row + used, 0, row_bytes - used);
        }
      }
      rows_outputs(v, rows, count, s, out);
    }
  }
}

/* Fully connected: batch 1 as a matrix-vector product over every block,
 * batches in rows of the row kernel's width. */
static void fully_connected(const x86_layer *v, const tfqp_shift_fully_connected_params *p,
                            const int8_t *input, const x86_scratch *s, void *output) {
  const tfqp_shift_layer *layer = v->layer;
  const int32_t per_call = v->avx512 ? TFQP_AVX512_ROWS : TFQP_AVX2_ROWS;
  const size_t cin = (size_t)p->channels_in;
  const size_t row_bytes = (size_t)v->shape.groups * TFQP_X86_GROUP;
  const uint8_t *rows[TFQP_AVX512_ROWS];
  int32_t first, r;
  if (layer->output_packed) {
    memset(output, 0, (size_t)layer->pixels * position_bytes(layer));
  }
  if (layer->pixels == 1) {
    const vector_kernel kernel = v->avx512 ? tfqp_shift_avx512_vector : tfqp_shift_avx2_vector;
    const size_t block_bytes = (size_t)v->shape.groups * TFQP_X86_GROUP_BYTES;
    flip_bytes(input, (int32_t)cin, s->rows);
    memset(s->rows + cin, 0, row_bytes - cin);
    kernel(s->rows, v->weights, block_bytes, v->shape.blocks, v->shape.groups, s->acc);
    if (layer->classes == 2) {
      kernel(s->rows, v->weights + v->class_bytes, block_bytes, v->shape.blocks,
             v->shape.groups, s->acc1);
    }
    position_outputs(v, s->acc, s->acc1, 0, layer->channels_out, output);
    return;
  }
  for (first = 0; first < layer->pixels; first += per_call) {
    const int32_t count = layer->pixels - first < per_call ? layer->pixels - first : per_call;
    for (r = 0; r < per_call; ++r) {
      uint8_t *row = s->rows + (size_t)r * row_bytes;
      rows[r] = r < count ? row : s->rows;
      if (r >= count) continue;
      flip_bytes(input + (size_t)(first + r) * cin, (int32_t)cin, row);
      memset(row + cin, 0, row_bytes - cin);
    }
    rows_outputs(v, rows, count, s,
                 (unsigned char *)output + (size_t)first * position_bytes(layer));
  }
}

typedef void (*depthwise_kernel)(const uint8_t *window, const size_t *offsets, int32_t groups,
                                 int32_t blocks, const int8_t *weights, size_t block_bytes,
                                 int32_t *acc);

/* Depthwise: per batch element its image (Cout channels per pixel, blocks
 * padded), then per position every block's channels (taps past the window
 * read the window's first: their weights are 0), the int8 outputs of up to
 * ROWS positions together. */
static void depthwise(const x86_layer *v, const tfqp_shift_conv2d_params *p,
                      const int8_t *input, const x86_scratch *s, void *output) {
  const tfqp_shift_layer *layer = v->layer;
  const depthwise_kernel kernel =
      v->avx512 ? tfqp_shift_avx512_depthwise : tfqp_shift_avx2_depthwise;
  /* the AVX-512 kernel takes superblocks of 4 blocks */
  const int32_t units = v->avx512 ? v->shape.blocks / 4 : v->shape.blocks;
  const x86_image image = image_of(p, 1);
  const int32_t tap_count = p->rows.filter * p->cols.filter;
  const int32_t groups = v->shape.groups;
  const int32_t positions = p->rows.out * p->cols.out;
  const size_t block_bytes = (size_t)groups * TFQP_X86_GROUP_BYTES;
  const size_t pad = (size_t)v->shape.cout_pad;
  const int together = v->avx512 && requantized_int8(layer);
  const int32_t per_call = together ? TFQP_AVX512_ROWS : 1;
  size_t offsets[4 * MAX_DEPTHWISE_GROUPS];
  int32_t n, first, r, t;
  tap_offsets(p, &image, offsets);
  for (t = tap_count; t < 4 * groups; ++t) offsets[t] = 0;
  if (layer->output_packed) memset(output, 0, (size_t)layer->pixels * position_bytes(layer));
  for (n = 0; n < p->batch; ++n) {
    build_image(p, &image, input, n, s->image);
    for (first = 0; first < positions; first += per_call) {
      const int32_t count = positions - first < per_call ? positions - first : per_call;
      unsigned char *out =
          (unsigned char *)output + ((size_t)n * positions + first) * position_bytes(layer);
      if (together && groups == 3) {
        /* 3x3: the weights stay in registers over the positions */
        const uint8_t *windows[TFQP_AVX512_ROWS];
        block_windows(p, &image, s->image, first, count, count, windows);
        tfqp_shift_avx512_depthwise3(windows, count, offsets, units, v->weights, block_bytes,
                                     s->acc, pad);
      }
      for (r = 0; r < count && !(together && groups == 3); ++r) {
        const int32_t position = first + r;
        const uint8_t *window =
            s->image + window_at(p, &image, position / p->cols.out, position % p->cols.out);
        kernel(window, offsets, groups, units, v->weights, block_bytes, s->acc + (size_t)r * pad);
        if (layer->classes == 2) {
          kernel(window, offsets, groups, units, v->weights + v->class_bytes, block_bytes,
                 s->acc1);
        }
        if (!together) position_outputs(v, s->acc, s->acc1, 0, layer->channels_out, out);
      }
      if (together) {
        const tfqp_x86_requant q = requant_of(v, 0);
        tfqp_shift_avx512_outputs_int8(&q, s->acc, pad, count, layer->channels_out,
                                       (int8_t *)out, position_bytes(layer));
      }
    }
  }
}

/* ------------------------------------------------------------------ hooks */

/* The fast region decoded the layer and its scratch holds this path's. */
static int takes(const tfqp_shift_layer *layer, const int32_t *table, size_t need) {
  return fast_region_c(layer, table)[H_USABLE] && need != 0 && need <= layer->scratch_bytes;
}

int tfqp_shift_fast_conv2d(const tfqp_shift_conv2d_params *params, int depthwise_op,
                           const int32_t *table, const int32_t *transform, const int8_t *input,
                           const tfqp_word *codes, void *scratch, void *output) {
  const tfqp_shift_layer *layer = &params->layer;
  x86_layer v;
  x86_scratch s;
  (void)codes; /* the weights were decoded into the table */
  if (!takes(layer, table, tfqp_shift_fast_conv2d_scratch_bytes(params, depthwise_op))) return 0;
  v = view_of(layer, table, transform);
  if (depthwise_op && v.shape.groups > MAX_DEPTHWISE_GROUPS) return 0;
  s = split_scratch(&v.shape, image_bytes(params, depthwise_op), scratch);
  if (depthwise_op) {
    depthwise(&v, params, input, &s, output);
  } else {
    convolution(&v, params, input, &s, output);
  }
  return 1;
}

int tfqp_shift_fast_fully_connected(const tfqp_shift_fully_connected_params *params,
                                    const int32_t *table, const int32_t *transform,
                                    const int8_t *input, const tfqp_word *codes,
                                    const int32_t *code_lists, void *scratch, void *output) {
  const tfqp_shift_layer *layer = &params->layer;
  x86_layer v;
  x86_scratch s;
  (void)codes;
  (void)code_lists; /* the dense kernels beat lists on x86 */
  if (!takes(layer, table, tfqp_shift_fast_fully_connected_scratch_bytes(params))) return 0;
  v = view_of(layer, table, transform);
  s = split_scratch(&v.shape, 0, scratch);
  fully_connected(&v, params, input, &s, output);
  return 1;
}

/* ------------------------------------------------------------------ AVX2 kernels */

/* dot4(u bytes, weights) per 32-bit lane: VPMADDUBSW pairs (exact for
 * |w| <= 64: 2 * 255 * 64 < 2^15), VPMADDWD adds the two pairs. */
static inline __m256i dot4(__m256i u, __m256i w, __m256i ones) {
  return _mm256_madd_epi16(_mm256_maddubs_epi16(u, w), ones);
}

static inline int32_t load_u32(const uint8_t *p) {
  int32_t v;
  memcpy(&v, p, sizeof v);
  return v;
}

/* The weights of one group of four taps for one or two blocks of 16 output
 * channels (the second block's zero when blocks is 1). */
static inline void load_group_weights(const int8_t *w, size_t block_bytes, int32_t blocks,
                                      __m256i wv[4]) {
  wv[0] = _mm256_loadu_si256((const __m256i *)(const void *)w);
  wv[1] = _mm256_loadu_si256((const __m256i *)(const void *)(w + 32));
  if (blocks == 2) {
    wv[2] = _mm256_loadu_si256((const __m256i *)(const void *)(w + block_bytes));
    wv[3] = _mm256_loadu_si256((const __m256i *)(const void *)(w + block_bytes + 32));
  } else {
    wv[2] = wv[3] = _mm256_setzero_si256();
  }
}

/* a[r] += the four bytes at u[r] + at, broadcast, times the group's weights. */
static inline void accumulate_group(const uint8_t *const *u, size_t at, const __m256i wv[4],
                                    __m256i a[TFQP_AVX2_ROWS][4]) {
  const __m256i ones = _mm256_set1_epi16(1);
  int32_t r, h;
  for (r = 0; r < TFQP_AVX2_ROWS; ++r) {
    const __m256i x = _mm256_set1_epi32(load_u32(u[r] + at));
    for (h = 0; h < 4; ++h) a[r][h] = _mm256_add_epi32(a[r][h], dot4(x, wv[h], ones));
  }
}

static inline void clear_accumulators(__m256i a[TFQP_AVX2_ROWS][4]) {
  int32_t r, h;
  for (r = 0; r < TFQP_AVX2_ROWS; ++r) {
    for (h = 0; h < 4; ++h) a[r][h] = _mm256_setzero_si256();
  }
}

/* Row r's accumulators of the blocks to acc + r * 2 * TFQP_X86_BLOCK. */
static inline void store_accumulators(__m256i a[TFQP_AVX2_ROWS][4], int32_t blocks,
                                      int32_t *acc) {
  int32_t r, h;
  for (r = 0; r < TFQP_AVX2_ROWS; ++r) {
    for (h = 0; h < 2 * blocks; ++h) {
      _mm256_storeu_si256((__m256i *)(void *)(acc + (size_t)r * 2 * TFQP_X86_BLOCK + 8 * h),
                          a[r][h]);
    }
  }
}

void tfqp_shift_avx2_rows(const uint8_t *const *rows, const int8_t *weights, size_t block_bytes,
                          int32_t blocks, int32_t groups, int32_t *acc) {
  __m256i a[TFQP_AVX2_ROWS][4];
  int32_t g;
  clear_accumulators(a);
  for (g = 0; g < groups; ++g) {
    __m256i wv[4];
    load_group_weights(weights + (size_t)g * TFQP_X86_GROUP_BYTES, block_bytes, blocks, wv);
    accumulate_group(rows, 4 * (size_t)g, wv, a);
  }
  store_accumulators(a, blocks, acc);
}

void tfqp_shift_avx2_windows(const uint8_t *const *windows, const size_t *offsets, int32_t taps,
                             int32_t tap_groups, const int8_t *weights, size_t block_bytes,
                             int32_t blocks, int32_t *acc) {
  const int8_t *w = weights;
  __m256i a[TFQP_AVX2_ROWS][4];
  int32_t t, g, r;
  clear_accumulators(a);
  for (t = 0; t < taps; ++t) {
    const uint8_t *u[TFQP_AVX2_ROWS];
    for (r = 0; r < TFQP_AVX2_ROWS; ++r) u[r] = windows[r] + offsets[t];
    for (g = 0; g < tap_groups; ++g, w += TFQP_X86_GROUP_BYTES) {
      __m256i wv[4];
      load_group_weights(w, block_bytes, blocks, wv);
      accumulate_group(u, 4 * (size_t)g, wv, a);
    }
  }
  store_accumulators(a, blocks, acc);
}

/* Bytes [at, at + 16) of four taps (u bytes) as [channel][4 taps]: two
 * 256-bit halves, channels 0-7 and 8-15. */
static inline void transpose16x4(const uint8_t *window, const size_t *offsets, size_t at,
                                 __m256i *low, __m256i *high) {
  const __m128i t0 = _mm_loadu_si128((const __m128i *)(const void *)(window + offsets[0] + at));
  const __m128i t1 = _mm_loadu_si128((const __m128i *)(const void *)(window + offsets[1] + at));
  const __m128i t2 = _mm_loadu_si128((const __m128i *)(const void *)(window + offsets[2] + at));
  const __m128i t3 = _mm_loadu_si128((const __m128i *)(const void *)(window + offsets[3] + at));
  const __m128i a = _mm_unpacklo_epi8(t0, t1), b = _mm_unpackhi_epi8(t0, t1);
  const __m128i c = _mm_unpacklo_epi8(t2, t3), d = _mm_unpackhi_epi8(t2, t3);
  *low = _mm256_set_m128i(_mm_unpackhi_epi16(a, c), _mm_unpacklo_epi16(a, c));
  *high = _mm256_set_m128i(_mm_unpackhi_epi16(b, d), _mm_unpacklo_epi16(b, d));
}

void tfqp_shift_avx2_depthwise(const uint8_t *window, const size_t *offsets, int32_t groups,
                               int32_t blocks, const int8_t *weights, size_t block_bytes,
                               int32_t *acc) {
  const __m256i ones = _mm256_set1_epi16(1);
  int32_t block, g;
  for (block = 0; block < blocks; ++block) {
    const int8_t *w = weights + (size_t)block * block_bytes;
    __m256i low = _mm256_setzero_si256(), high = _mm256_setzero_si256();
    for (g = 0; g < groups; ++g) {
      const int8_t *wg = w + (size_t)g * TFQP_X86_GROUP_BYTES;
      __m256i u0, u1;
      transpose16x4(window, offsets + 4 * g, (size_t)block * TFQP_X86_BLOCK, &u0, &u1);
      low = _mm256_add_epi32(
          low, dot4(u0, _mm256_loadu_si256((const __m256i *)(const void *)wg), ones));
      high = _mm256_add_epi32(
          high, dot4(u1, _mm256_loadu_si256((const __m256i *)(const void *)(wg + 32)), ones));
    }
    _mm256_storeu_si256((__m256i *)(void *)(acc + (size_t)block * TFQP_X86_BLOCK), low);
    _mm256_storeu_si256((__m256i *)(void *)(acc + (size_t)block * TFQP_X86_BLOCK + 8), high);
  }
}

void tfqp_shift_avx2_vector(const uint8_t *u, const int8_t *weights, size_t block_bytes,
                            int32_t blocks, int32_t groups, int32_t *acc) {
  const __m256i ones = _mm256_set1_epi16(1);
  int32_t block, g, h;
  for (block = 0; block < blocks; block += 2) {
    const int32_t halves = blocks - block >= 2 ? 4 : 2;
    const int8_t *w = weights + (size_t)block * block_bytes;
    __m256i a[4];
    for (h = 0; h < 4; ++h) a[h] = _mm256_setzero_si256();
    for (g = 0; g < groups; ++g) {
      const __m256i x = _mm256_set1_epi32(load_u32(u + 4 * g));
      const int8_t *wg = w + (size_t)g * TFQP_X86_GROUP_BYTES;
      a[0] = _mm256_add_epi32(
          a[0], dot4(x, _mm256_loadu_si256((const __m256i *)(const void *)wg), ones));
      a[1] = _mm256_add_epi32(
          a[1], dot4(x, _mm256_loadu_si256((const __m256i *)(const void *)(wg + 32)), ones));
      if (halves == 4) {
        a[2] = _mm256_add_epi32(
            a[2],
            dot4(x, _mm256_loadu_si256((const __m256i *)(const void *)(wg + block_bytes)), ones));
        a[3] = _mm256_add_epi32(
            a[3], dot4(x,
                       _mm256_loadu_si256((const __m256i *)(const void *)(wg + block_bytes + 32)),
                       ones));
      }
    }
    for (h = 0; h < halves; ++h) {
      _mm256_storeu_si256((__m256i *)(void *)(acc + (size_t)block * TFQP_X86_BLOCK + 8 * h),
                          a[h]);
    }
  }
}

#else
/* ISO C wants a declaration in every translation unit */
typedef int tfqp_shift_avx2_unused;
#endif /* TFQP_HAVE_AVX2 */
