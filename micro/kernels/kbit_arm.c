/* The Cortex-M (Thumb-2 with the DSP extension) path of
 * TFQP_SHIFT_FULLY_CONNECTED in batch 1 on packed 2- or 4-bit activations
 * with 2- or 4-bit uniform weights (hook in kbit_arm.h), giving the portable
 * path's bytes exactly.
 *
 * Weights. A uniform grid's code table is affine in the code: the converter
 * (converters/uniform_codes.py) lists the levels in ascending order,
 * value[c] = alpha * c + beta, and a two's-complement table (value[c] =
 * alpha * sext(c)) is affine in c ^ 2^(b-1). With flip 0 or 2^(b-1) such
 * that value[c] = alpha * (c ^ flip) + beta for all 2^b codes,
 *
 *   A = sum_k value[c_k] x_k = alpha * sum_k (c_k ^ flip) x_k + beta * sum_k x_k
 *
 * (mod 2^32, as the portable path sums), so the kernels decode nothing: an
 * AND of the code word shifted right by j * b with the mask 0x000M000M
 * (M = 2^b - 1) leaves codes j and j + P/2 of the word as the two int16
 * halves an SMLAD multiplies with an activation pair. Per word of P codes and
 * two output channels: two LDRs, two EORs (flip != 0 only), P/8 LDMs of four
 * activation pairs, P ANDs and P SMLADs (tfqp_kbit_arm_fc2_b<b>): 1.19 (b = 2)
 * and 1.31 (b = 4) instructions per MAC without the EORs, 1.25 and 1.44 with.
 * Other code tables (po2, ternary, per-channel zero points) are left to the
 * shift path, which decodes pairs through a table.
 *
 * Activations. The packed input codes u are read as x = u - input_code_zero
 * straight into the pairs the kernels read, once per eval (pair j of code
 * word w: inputs P*w + j and P*w + j + P/2, 0 past Cin so that the row's
 * padding codes add nothing), with sum_k x_k beside them: no unpacked copy of
 * the input and no zero-point term folded into the bias. The output is the
 * portable path's (tfqp_shift_output) from A.
 */
#include "kbit_arm.h"

#if TFQP_HAVE_ARM_DSP

#include <arm_acle.h>
#include <stddef.h>

#include "shift_op.h"

typedef struct {
  const tfqp_word *codes;     /* channel 0's row */
  const tfqp_word *codes_end; /* the end of that row */
  const uint32_t *x;          /* the activation pairs, P / 2 per code word */
  int32_t *acc;               /* two accumulators */
  int32_t stride;             /* bytes from channel 0's row to channel 1's (0: one channel) */
} kbit_job;

typedef void (*kbit_kernel)(const kbit_job *job);
void tfqp_kbit_arm_fc2_b2(const kbit_job *);
void tfqp_kbit_arm_fc2_b2_flip(const kbit_job *);
void tfqp_kbit_arm_fc2_b4(const kbit_job *);
void tfqp_kbit_arm_fc2_b4_flip(const kbit_job *);

/* Registers: r0 channel 0's codes, r1 stride, r2 x, r3 the mask, r4 and r5
 * the accumulators, r6-r9 activation pairs, r10 and r11 the two channels'
 * code words, r12 the masked codes, lr the end. */
__asm__(
    "  .syntax unified\n"
    "  .thumb\n"
    ".macro TFQP_KBIT_FUNC name\n"
    "  .text\n"
    "  .balign 4\n"
    "  .global \\name\n"
    "  .type \\name, %function\n"
    "  .thumb_func\n"
    "\\name:\n"
    ".endm\n"
    /* codes (shift / b) and (shift / b + P/2) of both words times pair xr */
    ".macro TFQP_KBIT_PAIR shift, xr\n"
    "  .if \\shift == 0\n"
    "  and   r12, r3, r10\n"
    "  smlad r4, r12, \\xr, r4\n"
    "  and   r12, r3, r11\n"
    "  .else\n"
    "  and   r12, r3, r10, lsr #\\shift\n"
    "  smlad r4, r12, \\xr, r4\n"
    "  and   r12, r3, r11, lsr #\\shift\n"
    "  .endif\n"
    "  smlad r5, r12, \\xr, r5\n"
    ".endm\n"
    /* four pairs from one LDM: shifts first, first + b, ... */
    ".macro TFQP_KBIT_GROUP first, width\n"
    "  ldmia r2!, {r6-r9}\n"
    "  TFQP_KBIT_PAIR (\\first), r6\n"
    "  TFQP_KBIT_PAIR (\\first + \\width), r7\n"
    "  TFQP_KBIT_PAIR (\\first + 2 * \\width), r8\n"
    "  TFQP_KBIT_PAIR (\\first + 3 * \\width), r9\n"
    ".endm\n"
    ".macro TFQP_KBIT_FC2 name, width, mask, flip\n"
    "  TFQP_KBIT_FUNC \\name\n"
    "  push  {r4-r11, lr}\n"
    "  ldr   r12, [r0, #12]\n"
    "  push  {r12}\n"
    "  ldrd  r4, r5, [r12]\n"
    "  ldr   r1, [r0, #16]\n"
    "  ldr   lr, [r0, #4]\n"
    "  ldr   r2, [r0, #8]\n"
    "  ldr   r0, [r0]\n"
    "  mov   r3, #\\mask\n"
    "1:\n"
    "  ldr   r11, [r0, r1]\n"
    "  ldr   r10, [r0], #4\n"
    "  .if \\flip\n"
    "  eor   r10, r10, #\\flip\n"
    "  eor   r11, r11, #\\flip\n"
    "  .endif\n"
    "  TFQP_KBIT_GROUP 0, \\width\n"
    "  .if \\width == 2\n"
    "  TFQP_KBIT_GROUP 8, \\width\n"
    "  .endif\n"
    "  cmp   r0, lr\n"
    "  bne   1b\n"
    "  pop   {r12}\n"
    "  strd  r4, r5, [r12]\n"
    "  pop   {r4-r11, pc}\n"
    "  .size \\name, . - \\name\n"
    ".endm\n"
    "  TFQP_KBIT_FC2 tfqp_kbit_arm_fc2_b2, 2, 0x00030003, 0\n"
    "  TFQP_KBIT_FC2 tfqp_kbit_arm_fc2_b2_flip, 2, 0x00030003, 0xAAAAAAAA\n"
    "  TFQP_KBIT_FC2 tfqp_kbit_arm_fc2_b4, 4, 0x000F000F, 0\n"
    "  TFQP_KBIT_FC2 tfqp_kbit_arm_fc2_b4_flip, 4, 0x000F000F, 0x88888888\n"
    "  .purgem TFQP_KBIT_FC2\n"
    "  .purgem TFQP_KBIT_GROUP\n"
    "  .purgem TFQP_KBIT_PAIR\n"
    "  .purgem TFQP_KBIT_FUNC\n");

/* value[c] = alpha * (c ^ flip) + beta for every code c. */
typedef struct {
  int32_t flip, alpha, beta;
} affine_codes;

/* Whether the code values (class 0, 2^bits of them) are affine in c ^ flip
 * for flip 0 or 2^(bits - 1); *a gets the first that is. |value| <= 2^14, so
 * alpha and alpha * c fit int32. */
static int find_affine(const int32_t *values, int32_t bits, affine_codes *a) {
  const int32_t count = 1 << bits;
  int32_t f, c;
  for (f = 0; f < 2; ++f) {
    const int32_t flip = f == 0 ? 0 : count >> 1;
    const int32_t beta = values[flip]; /* c = flip: c ^ flip = 0 */
    const int32_t alpha = values[flip ^ 1] - beta;
    for (c = 0; c < count && values[c] == alpha * (c ^ flip) + beta; ++c) {
    }
    if (c == count) {
      a->flip = flip;
      a->alpha = alpha;
      a->beta = beta;
      return 1;
    }
  }
  return 0;
}

/* What the pairs are built from: the packed input row and its reading. */
typedef struct {
  const tfqp_word *words;
  int32_t channels; /* Cin */
  int32_t bits;     /* input_bits */
  int32_t log2_per_word; /* log2(32 / bits) */
  int32_t code_zero;
} packed_row;

/* x of input i: u - code_zero, 0 past Cin. */
static inline int32_t input_value(const packed_row *in, int32_t i) {
  const int32_t slot = i & ((1 << in->log2_per_word) - 1);
  if (i >= in->channels) return 0;
  return (int32_t)((in->words[i >> in->log2_per_word] >> (slot * in->bits)) &
                   TFQP_CODE_MASK(in->bits)) -
         in->code_zero;
}

/* The activation pairs of code words [0, words) (see the top; b the weights'
 * bits, half = P(b) / 2) into x; returns sum_k x_k mod 2^32. Code words whose
 * inputs all lie in one input word of the same width take a word-wise path
 * (the common case: the widths match). */
static uint32_t build_pairs(const packed_row *in, int32_t bits, int32_t words, uint32_t *x) {
  const int32_t half = TFQP_CODES_PER_WORD(bits) / 2;
  const uint32_t pair_mask = TFQP_CODE_MASK(bits) * 0x00010001u;
  const uint32_t zeros = (uint32_t)in->code_zero * 0x00010001u;
  uint32_t sum = 0;
  int32_t w, j;
  for (w = 0; w < words; ++w) {
    const int32_t first = w * 2 * half;
    if (in->bits == bits && first + 2 * half <= in->channels) {
      const uint32_t word = in->words[w];
      for (j = 0; j < half; ++j) {
        const uint32_t pair = __ssub16((word >> (j * bits)) & pair_mask, zeros);
        sum = (uint32_t)__smlad(pair, 0x00010001u, (int32_t)sum);
        *x++ = pair;
      }
      continue;
    }
    for (j = 0; j < half; ++j) {
      const int32_t lo = input_value(in, first + j);
      const int32_t hi = input_value(in, first + half + j);
      sum += (uint32_t)lo + (uint32_t)hi;
      *x++ = ((uint32_t)lo & 0xFFFFu) | (uint32_t)hi << 16;
    }
  }
  return sum;
}

static kbit_kernel kernel_of(int32_t bits, int32_t flip) {
  if (bits == 2) return flip ? tfqp_kbit_arm_fc2_b2_flip : tfqp_kbit_arm_fc2_b2;
  return flip ? tfqp_kbit_arm_fc2_b4_flip : tfqp_kbit_arm_fc2_b4;
}

int tfqp_kbit_arm_fully_connected(const tfqp_shift_fully_connected_params *params,
                                  const int32_t *table, const int32_t *transform,
                                  const tfqp_word *input, const tfqp_word *codes,
                                  void *scratch, void *output) {
  const tfqp_shift_layer *layer = &params->layer;
  const size_t row_words = (size_t)layer->row_words;
  const size_t pairs = row_words * (size_t)(layer->codes_per_word / 2);
  const int32_t cout = layer->channels_out;
  uint32_t *const x = (uint32_t *)scratch;
  affine_codes a;
  packed_row in;
  kbit_kernel kernel;
  kbit_job job;
  uint32_t sum;
  int32_t co, c;
  if (!TFQP_KBIT_VALID(params->kbit.input_bits) || !TFQP_KBIT_VALID(layer->bits) ||
      layer->pixels != 1 || layer->classes != 1 || layer->terms != 1 ||
      pairs * sizeof(uint32_t) > params->kbit.output_at || !find_affine(table, layer->bits, &a)) {
    return 0;
  }
  in.words = input;
  in.channels = params->channels_in;
  in.bits = params->kbit.input_bits;
  in.log2_per_word = in.bits == 2 ? 4 : 3;
  in.code_zero = layer->input_zero_point;
  sum = build_pairs(&in, layer->bits, layer->row_words, x);
  kernel = kernel_of(layer->bits, a.flip);
  if (layer->output_packed) {
    for (c = 0; c < layer->output_depth; ++c) ((tfqp_word *)output)[c] = 0;
  }
  job.x = x;
  for (co = 0; co < cout; co += 2) {
    const int32_t two = co + 1 < cout;
    int32_t acc[2] = {0, 0};
    job.codes = codes + (size_t)co * row_words;
    job.codes_end = job.codes + row_words;
    job.acc = acc;
    job.stride = two ? (int32_t)(row_words * sizeof(tfqp_word)) : 0;
    kernel(&job);
    for (c = 0; c <= two; ++c) {
      const uint32_t values[TFQP_CODE_CLASSES_MAX] = {
          (uint32_t)a.alpha * (uint32_t)acc[c] + (uint32_t)a.beta * sum, 0};
      tfqp_shift_output(layer, table, transform, co + c, values, output);
    }
  }
  return 1;
}

#else
/* ISO C wants a declaration in every translation unit */
typedef int tfqp_kbit_arm_unused;
#endif /* TFQP_HAVE_ARM_DSP */
