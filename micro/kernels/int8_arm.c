/* Cortex-M path of the int8-input ops (see int8_arm.h), SMLAD in Thumb-2
 * assembly.
 *
 * The accumulator of an output is A = sum (q - zp) * w over its taps (padded
 * taps 0). Each output's window is written once as int16 pairs of q - zp
 * (|q - zp| <= 255), the weights were repacked by init_table as int16 pairs in
 * the same order, so one SMLAD adds two taps: A is the exact int32 sum, every
 * partial sum being bounded like A (init_table's bound, below 2^31).
 *
 * Packed output, bit = 1 iff direction * A < threshold:
 *   direction +1:  A < t        = not (A >= t)
 *   direction -1:  -A < t  <=>  A >= 1 - t
 * so the bit is (A >= T) xor flip with T = t, flip 1 or T = 1 - t, flip 0.
 * |A| <= B = 255 * sum |w| of the channel (< 2^31), so T clamped to
 * [-B, B + 1] gives the same comparisons and fits in int32. The accumulator
 * starts at 2^31: it ends as the unsigned A + 2^31, and one unsigned CMP with
 * T + 2^31 sets the carry to A >= T, shifted into the output word with ADCS
 * (no signed overflow anywhere); flip is XORed into the whole word.
 *
 * Kernels (one call: up to 32 channels of one output, or all channels' int32
 * accumulators):
 *   windows of P <= 5 pairs: the window stays in r4..r8 and one LDM loads a
 *     channel's record (start, P weight pairs, T): P + 4 instructions per
 *     channel and output (the stem of a BNN, 3x3 on one channel: P = 5);
 *   longer windows (P a multiple of 4): two channels per pass over the
 *     window in blocks of four pairs, one LDM for the window block and one per
 *     channel for its weights: 13 instructions per block and channel pair.
 * The channel loop of the packed kernels ends on a sentinel bit shifted out of
 * the output word, as in xnor_arm.c.
 */
#include "int8_arm.h"

#if TFQP_HAVE_ARM_DSP

#include "int8_op.h"
#include "tfqp/geometry.h"
#include "value_output.h"

#define SMALL_PAIRS 5 /* windows of up to this many pairs stay in registers */

/* bits (channel 0 highest) of (A_c >= T_c), count in [1, 32]; `blocks` is
 * P / 4 for the block kernel, unused by the small ones */
typedef uint32_t (*bits_kernel)(const uint32_t *window, const int32_t *records, int32_t count,
                                int32_t blocks);
/* acc[c] = A_c for c < count (>= 1) */
typedef void (*values_kernel)(const uint32_t *window, const int32_t *records, int32_t count,
                              int32_t *acc, int32_t blocks);

uint32_t tfqp_arm_int8_bits1(const uint32_t *, const int32_t *, int32_t, int32_t);
uint32_t tfqp_arm_int8_bits2(const uint32_t *, const int32_t *, int32_t, int32_t);
uint32_t tfqp_arm_int8_bits3(const uint32_t *, const int32_t *, int32_t, int32_t);
uint32_t tfqp_arm_int8_bits4(const uint32_t *, const int32_t *, int32_t, int32_t);
uint32_t tfqp_arm_int8_bits5(const uint32_t *, const int32_t *, int32_t, int32_t);
uint32_t tfqp_arm_int8_bits_blocks(const uint32_t *, const int32_t *, int32_t, int32_t);
void tfqp_arm_int8_values1(const uint32_t *, const int32_t *, int32_t, int32_t *, int32_t);
void tfqp_arm_int8_values2(const uint32_t *, const int32_t *, int32_t, int32_t *, int32_t);
void tfqp_arm_int8_values3(const uint32_t *, const int32_t *, int32_t, int32_t *, int32_t);
void tfqp_arm_int8_values4(const uint32_t *, const int32_t *, int32_t, int32_t *, int32_t);
void tfqp_arm_int8_values5(const uint32_t *, const int32_t *, int32_t, int32_t *, int32_t);
void tfqp_arm_int8_values_blocks(const uint32_t *, const int32_t *, int32_t, int32_t *,
                                 int32_t);
void tfqp_arm_int8_gather(const int8_t *at, const int32_t *offsets, uint32_t *window,
                          int32_t pairs, uint32_t zero_points);

__asm__(
    "  .syntax unified\n"
    "  .thumb\n"
    "  .text\n"
    /* a kernel's symbol and frame: r4-r11 and lr saved, 8 bytes of locals */
    ".macro TFQP_I8_ENTRY name\n"
    "  .global \\name\n"
    "  .type \\name, %function\n"
    "  .thumb_func\n"
    "\\name:\n"
    "  push  {r4-r11, lr}\n"
    "  sub   sp, sp, #8\n"
    ".endm\n"
    ".macro TFQP_I8_EXIT name\n"
    "  add   sp, sp, #8\n"
    "  pop   {r4-r11, pc}\n"
    "  .size \\name, . - \\name\n"
    ".endm\n"
    /* A small kernel: P = n pairs, window in r4.., a record loads into r0
     * (start), r2 r9 r10 r11 r12 (weights, the first n), lr (T). mode 0: bits
     * (r3: output word with the sentinel), mode 1: accumulators to r3. */
    ".macro TFQP_I8_SMALL name, n, mode\n"
    "  TFQP_I8_ENTRY \\name\n"
    "  .if \\n == 1\n"
    "  ldr   r4, [r0]\n"
    "  .elseif \\n == 2\n"
    "  ldmia r0, {r4, r5}\n"
    "  .elseif \\n == 3\n"
    "  ldmia r0, {r4-r6}\n"
    "  .elseif \\n == 4\n"
    "  ldmia r0, {r4-r7}\n"
    "  .else\n"
    "  ldmia r0, {r4-r8}\n"
    "  .endif\n"
    "  .if \\mode == 0\n"
    "  rsb   r2, r2, #32\n"
    "  movs  r3, #1\n"
    "  lsl   r3, r3, r2\n"
    "  .else\n"
    "  add   r2, r3, r2, lsl #2\n" /* end of the accumulators */
    "  str   r2, [sp]\n"
    "  .endif\n"
    "  .balign 4\n"
    "1:\n"
    "  .if \\n == 1\n"
    "  ldmia r1!, {r0, r2, lr}\n"
    "  .elseif \\n == 2\n"
    "  ldmia r1!, {r0, r2, r9, lr}\n"
    "  .elseif \\n == 3\n"
    "  ldmia r1!, {r0, r2, r9, r10, lr}\n"
    "  .elseif \\n == 4\n"
    "  ldmia r1!, {r0, r2, r9, r10, r11, lr}\n"
    "  .else\n"
    "  ldmia r1!, {r0, r2, r9, r10, r11, r12, lr}\n"
    "  .endif\n"
    "  smlad r0, r4, r2, r0\n"
    "  .if \\n >= 2\n"
    "  smlad r0, r5, r9, r0\n"
    "  .endif\n"
    "  .if \\n >= 3\n"
    "  smlad r0, r6, r10, r0\n"
    "  .endif\n"
    "  .if \\n >= 4\n"
    "  smlad r0, r7, r11, r0\n"
    "  .endif\n"
    "  .if \\n >= 5\n"
    "  smlad r0, r8, r12, r0\n"
    "  .endif\n"
    "  .if \\mode == 0\n"
    "  cmp   r0, lr\n"         /* C = A >= T */
    "  adcs  r3, r3, r3\n"     /* in at bit 0; C = the sentinel */
    "  bcc   1b\n"
    "  mov   r0, r3\n"
    "  .else\n"
    "  str   r0, [r3], #4\n"
    "  ldr   r2, [sp]\n"
    "  cmp   r3, r2\n"
    "  bne   1b\n"
    "  .endif\n"
    "  TFQP_I8_EXIT \\name\n"
    ".endm\n"
    /* The block kernel, two channels per pass (records interleaved by
     * blocks, see the table layout): r0 window pointer, r1 records, r2 window
     * end, r3 output word (mode 0) or accumulators (mode 1), r4-r7 window,
     * r8-r11 weights, r12 and lr the two accumulators; [sp] window start,
     * [sp, #4] (mode 1) the end of the accumulators, the fifth argument
     * (blocks) at [sp, #44]. count is even. */
    ".macro TFQP_I8_BLOCKS name, mode\n"
    "  TFQP_I8_ENTRY \\name\n"
    "  str   r0, [sp]\n"
    "  .if \\mode == 0\n"
    "  add   r4, r0, r3, lsl #4\n"
    "  rsb   r2, r2, #32\n"
    "  movs  r3, #1\n"
    "  lsl   r3, r3, r2\n"
    "  mov   r2, r4\n"
    "  .else\n"
    "  ldr   r4, [sp, #44]\n"
    "  add   r2, r3, r2, lsl #2\n"
    "  str   r2, [sp, #4]\n"
    "  add   r2, r0, r4, lsl #4\n"
    "  .endif\n"
    "  .balign 4\n"
    "1:\n"
    "  ldr   r0, [sp]\n"
    "  .if \\mode == 0\n"
    "  mov   r12, #0x80000000\n"
    "  mov   lr, #0x80000000\n"
    "  .else\n"
    "  mov   r12, #0\n"
    "  mov   lr, #0\n"
    "  .endif\n"
    "2:\n"
    "  ldmia r0!, {r4-r7}\n"
    "  ldmia r1!, {r8-r11}\n"
    "  smlad r12, r4, r8, r12\n"
    "  smlad r12, r5, r9, r12\n"
    "  smlad r12, r6, r10, r12\n"
    "  smlad r12, r7, r11, r12\n"
    "  ldmia r1!, {r8-r11}\n"
    "  smlad lr, r4, r8, lr\n"
    "  smlad lr, r5, r9, lr\n"
    "  smlad lr, r6, r10, lr\n"
    "  smlad lr, r7, r11, lr\n"
    "  cmp   r0, r2\n"
    "  bne   2b\n"
    "  ldmia r1!, {r4, r5}\n" /* the two channels' T */
    "  .if \\mode == 0\n"
    "  cmp   r12, r4\n"
    "  adcs  r3, r3, r3\n"
    "  cmp   lr, r5\n"
    "  adcs  r3, r3, r3\n"
    "  bcc   1b\n"
    "  mov   r0, r3\n"
    "  .else\n"
    "  strd  r12, lr, [r3], #8\n"
    "  ldr   r4, [sp, #4]\n"
    "  cmp   r3, r4\n"
    "  bne   1b\n"
    "  .endif\n"
    "  TFQP_I8_EXIT \\name\n"
    ".endm\n"
    "  .balign 4\n"
    "  .global tfqp_arm_int8_gather\n"
    "  .type tfqp_arm_int8_gather, %function\n"
    "  .thumb_func\n"
    "tfqp_arm_int8_gather:\n"
    "  push  {r4-r6, lr}\n"
    "  ldr   r6, [sp, #16]\n"
    "1:\n"
    "  ldrd  r4, r5, [r1], #8\n"
    "  ldrsb r4, [r0, r4]\n"
    "  ldrsb r5, [r0, r5]\n"
    "  pkhbt r4, r4, r5, lsl #16\n"
    "  ssub16 r4, r4, r6\n"
    "  str   r4, [r2], #4\n"
    "  subs  r3, r3, #1\n"
    "  bne   1b\n"
    "  pop   {r4-r6, pc}\n"
    "  .size tfqp_arm_int8_gather, . - tfqp_arm_int8_gather\n"
    "  .balign 4\n"
    "  TFQP_I8_SMALL tfqp_arm_int8_bits1, 1, 0\n"
    "  TFQP_I8_SMALL tfqp_arm_int8_bits2, 2, 0\n"
    "  TFQP_I8_SMALL tfqp_arm_int8_bits3, 3, 0\n"
    "  TFQP_I8_SMALL tfqp_arm_int8_bits4, 4, 0\n"
    "  TFQP_I8_SMALL tfqp_arm_int8_bits5, 5, 0\n"
    "  TFQP_I8_SMALL tfqp_arm_int8_values1, 1, 1\n"
    "  TFQP_I8_SMALL tfqp_arm_int8_values2, 2, 1\n"
    "  TFQP_I8_SMALL tfqp_arm_int8_values3, 3, 1\n"
    "  TFQP_I8_SMALL tfqp_arm_int8_values4, 4, 1\n"
    "  TFQP_I8_SMALL tfqp_arm_int8_values5, 5, 1\n"
    "  TFQP_I8_BLOCKS tfqp_arm_int8_bits_blocks, 0\n"
    "  TFQP_I8_BLOCKS tfqp_arm_int8_values_blocks, 1\n"
    "  .purgem TFQP_I8_ENTRY\n"
    "  .purgem TFQP_I8_EXIT\n"
    "  .purgem TFQP_I8_SMALL\n"
    "  .purgem TFQP_I8_BLOCKS\n");

static const bits_kernel small_bits[SMALL_PAIRS] = {
    tfqp_arm_int8_bits1, tfqp_arm_int8_bits2, tfqp_arm_int8_bits3, tfqp_arm_int8_bits4,
    tfqp_arm_int8_bits5};
static const values_kernel small_values[SMALL_PAIRS] = {
    tfqp_arm_int8_values1, tfqp_arm_int8_values2, tfqp_arm_int8_values3,
    tfqp_arm_int8_values4, tfqp_arm_int8_values5};

/* P: the window's int16 pairs (see int8_arm.h). */
static int32_t window_pairs(int32_t taps) {
  const int32_t pairs = (taps + 1) / 2;
  return pairs <= SMALL_PAIRS ? pairs : (pairs + 3) / 4 * 4;
}

static size_t flip_words(int32_t accumulate, int32_t channels_out) {
  return accumulate ? 0 : (size_t)TFQP_WORDS(channels_out);
}

/* Channels with a record: the block kernel takes them in pairs. */
static int32_t record_channels(int32_t channels_out, int32_t pairs) {
  return pairs <= SMALL_PAIRS ? channels_out : channels_out + channels_out % 2;
}

/* Words per channel: start, pairs, T (small); pairs, T (blocks: the start is
 * a constant of the kernel). */
static int32_t record_words(int32_t pairs) {
  return pairs <= SMALL_PAIRS ? pairs + 2 : pairs + 1;
}

size_t tfqp_arm_int8_table_bytes(int32_t accumulate, int32_t channels_out, int32_t taps) {
  const int32_t pairs = window_pairs(taps);
  return (flip_words(accumulate, channels_out) +
          (size_t)record_words(pairs) * (size_t)record_channels(channels_out, pairs)) *
         sizeof(int32_t);
}

size_t tfqp_arm_int8_scratch_bytes(int32_t taps, int32_t channels_out, int32_t gathered) {
  const int32_t pairs = window_pairs(taps);
  return ((size_t)pairs + (gathered ? (size_t)taps + 1 : 0) +
          (size_t)record_channels(channels_out, pairs)) *
         sizeof(uint32_t);
}

static uint32_t pair(int32_t low, int32_t high) {
  return ((uint32_t)low & 0xFFFFu) | ((uint32_t)high << 16);
}

static int32_t weight(const void *weights, int32_t weights_int16, size_t index) {
  return weights_int16 ? ((const int16_t *)weights)[index] : ((const int8_t *)weights)[index];
}

/* Where channel co's pair i and its T go, from the first record. Small:
 * [start, pairs, T] per channel. Blocks: per channel pair, for each block of
 * four pairs the even channel's four then the odd one's, then the two Ts. */
static size_t pair_slot(int32_t pairs, int32_t co, int32_t i) {
  if (pairs <= SMALL_PAIRS) return (size_t)co * (size_t)(pairs + 2) + 1 + (size_t)i;
  return (size_t)(co / 2) * 2 * (size_t)(pairs + 1) + (size_t)(i / 4) * 8 +
         (size_t)(co % 2) * 4 + (size_t)(i % 4);
}

static size_t threshold_slot(int32_t pairs, int32_t co) {
  if (pairs <= SMALL_PAIRS) return (size_t)co * (size_t)(pairs + 2) + 1 + (size_t)pairs;
  return (size_t)(co / 2) * 2 * (size_t)(pairs + 1) + 2 * (size_t)pairs + (size_t)(co % 2);
}

/* T + 2^31 of channel co, the comparison "A >= T" whose result, xor the flip
 * bit, is the output bit (see the top of this file); `bound` >= |A|. */
static uint32_t unsigned_threshold(int32_t direction, int32_t threshold, int64_t bound) {
  int64_t t = direction > 0 ? (int64_t)threshold : 1 - (int64_t)threshold;
  if (t < -bound) t = -bound;
  if (t > bound + 1) t = bound + 1;
  return (uint32_t)(int32_t)t + 0x80000000u;
}

tfqp_status tfqp_arm_int8_init_table(int32_t accumulate, const void *weights,
                                     int32_t weights_int16, int32_t channels_out,
                                     int32_t taps, int32_t *table, size_t table_bytes,
                                     size_t portable_bytes, tfqp_error *error) {
  const int32_t pairs = window_pairs(taps);
  const size_t flips = flip_words(accumulate, channels_out);
  const size_t words = (size_t)record_words(pairs) * (size_t)record_channels(channels_out, pairs);
  uint32_t *flip = (uint32_t *)table + portable_bytes / sizeof(int32_t);
  int32_t *rec = (int32_t *)(flip + flips);
  int32_t co, i;
  size_t w;
  if (table_bytes < portable_bytes + tfqp_arm_int8_table_bytes(accumulate, channels_out,
                                                                taps)) {
    return tfqp_fail(error, TFQP_ERROR_BUFFER,
                     "table smaller than params.table_bytes or not 4-byte aligned", "table",
                     (int64_t)table_bytes);
  }
  for (w = 0; w < flips; ++w) flip[w] = 0;
  /* zero weights everywhere first: the block layout's padded channel (its bit,
   * never set, is past the output's channels) */
  for (w = 0; w < words; ++w) rec[w] = 0;
  for (co = 0; co < channels_out; ++co) {
    const size_t first = (size_t)co * (size_t)taps;
    int64_t bound = 0;
    for (i = 0; i < pairs; ++i) {
      const int32_t low = 2 * i < taps ? weight(weights, weights_int16, first + 2 * i) : 0;
      const int32_t high =
          2 * i + 1 < taps ? weight(weights, weights_int16, first + 2 * i + 1) : 0;
      bound += 255 * ((int64_t)(low < 0 ? -low : low) + (high < 0 ? -high : high));
      rec[pair_slot(pairs, co, i)] = (int32_t)pair(low, high);
    }
    if (pairs <= SMALL_PAIRS && !accumulate) rec[pair_slot(pairs, co, 0) - 1] = INT32_MIN;
    if (!accumulate) {
      rec[threshold_slot(pairs, co)] =
          (int32_t)unsigned_threshold(table[co], table[channels_out + co], bound);
      if (table[co] > 0) flip[TFQP_WORD_INDEX(co)] |= 1u << TFQP_BIT_INDEX(co);
    }
  }
  if (record_channels(channels_out, pairs) > channels_out && !accumulate) {
    rec[threshold_slot(pairs, channels_out)] = (int32_t)0xFFFFFFFFu; /* A + 2^31 never >= */
  }
  return TFQP_OK;
}

/* What one output needs besides its window. */
typedef struct {
  int32_t channels_out;
  /* the accumulators out (value or codes output), derived once: window_outputs
   * tests it per output position */
  int32_t accumulate;
  int32_t int32_output;  /* the value output */
  int32_t output_levels; /* the codes output (0: none) */
  int32_t codes_only;
  int32_t pairs;
  int32_t record; /* words per channel (record_words) */
  int32_t *accumulators; /* accumulate: the block kernel's (scratch) */
  bits_kernel bits;
  values_kernel values;
  const int32_t *table; /* the portable table (value output fields) */
  const int32_t *transform; /* the codes output's rows (level_output.h) */
  const uint32_t *flip;
  const int32_t *records;
} int8_arm_layout;

static int8_arm_layout layout_of(int32_t int32_output, int32_t output_levels,
                                 int32_t codes_only, int32_t channels_out, int32_t taps,
                                 const int32_t *table, const int32_t *transform,
                                 size_t portable_bytes) {
  int8_arm_layout l;
  l.channels_out = channels_out;
  l.accumulate = int32_output || output_levels != 0;
  l.int32_output = int32_output;
  l.output_levels = output_levels;
  l.codes_only = codes_only;
  l.pairs = window_pairs(taps);
  l.record = record_words(l.pairs);
  l.accumulators = NULL;
  l.bits = l.pairs <= SMALL_PAIRS ? small_bits[l.pairs - 1] : tfqp_arm_int8_bits_blocks;
  l.values = l.pairs <= SMALL_PAIRS ? small_values[l.pairs - 1] : tfqp_arm_int8_values_blocks;
  l.table = table;
  l.transform = transform;
  /* the codes output keeps no portable table (portable_bytes 0) */
  l.flip = (const uint32_t *)(const void *)((const unsigned char *)table + portable_bytes);
  l.records = (const int32_t *)(l.flip + flip_words(l.accumulate, channels_out));
  return l;
}

/* Bytes of one output position of `depth` elements: int8 codes, or int32
 * values or packed words. */
static size_t position_bytes(int32_t output_levels, int32_t depth) {
  return (size_t)depth * (output_levels != 0 ? 1u : sizeof(int32_t));
}

/* The outputs of one window: packed words, int32 values or int8 codes. */
static void window_outputs(const int8_arm_layout *l, const uint32_t *window, void *out) {
  const int32_t cout = l->channels_out;
  const int32_t blocks = l->pairs / 4;
  if (!l->accumulate) {
    tfqp_word *words = (tfqp_word *)out;
    const int32_t *records = l->records;
    int32_t word;
    for (word = 0; word < TFQP_WORDS(cout); ++word, records += 32 * l->record) {
      const int32_t left = cout - 32 * word;
      const int32_t count = record_channels(left < 32 ? left : 32, l->pairs);
      uint32_t bits = l->bits(window, records, count, blocks);
      /* channel 0 came first and sits highest: reverse the bit order */
      __asm__("rbit %0, %1" : "=r"(bits) : "r"(bits));
      words[word] = (bits >> (32 - count)) ^ l->flip[word];
    }
  } else {
    int32_t *acc = l->accumulators;
    int32_t co;
    l->values(window, l->records, record_channels(cout, l->pairs), acc, blocks);
    for (co = 0; co < cout; ++co) {
      tfqp_int8_op_output(l->int32_output, l->output_levels, l->codes_only, l->table,
                          l->transform, cout, co, acc[co], out);
    }
  }
}

/* window[i] = q[i] - zp for i < n (int16 halves) */
static void widen(int16_t *window, const int8_t *q, int32_t n, int32_t zp) {
  int32_t i;
  for (i = 0; i < n; ++i) window[i] = (int16_t)(q[i] - zp);
}

static void zero(int16_t *window, int32_t n) {
  int32_t i;
  for (i = 0; i < n; ++i) window[i] = 0;
}

/* The window of output (oy, ox) of one image, taps in OHWI order, padded taps 0
 * (the pairs past K were zeroed once): the border pixels' path. */
static void border_window(const tfqp_conv2d_int8_params *p, const int8_t *image, int32_t oy,
                          int32_t ox, int16_t *window) {
  const int32_t cin = p->channels_in;
  const int32_t kw = p->cols.filter;
  const int32_t dh = p->rows.dilation;
  const int32_t dw = p->cols.dilation;
  const size_t row_values = (size_t)p->cols.in * cin;
  const int32_t iy0 = oy * p->rows.stride - p->rows.pad_before;
  const int32_t ix0 = ox * p->cols.stride - p->cols.pad_before;
  int32_t ky0, ky1, kx0, kx1, ky, kx;
  tfqp_window_axis_taps(&p->rows, oy, &ky0, &ky1);
  tfqp_window_axis_taps(&p->cols, ox, &kx0, &kx1);
  if (kx0 > kw) kx0 = kw;
  if (kx1 < kx0) kx1 = kx0;
  for (ky = 0; ky < p->rows.filter; ++ky, window += kw * cin) {
    const int8_t *row = image + (size_t)(iy0 + ky * dh) * row_values;
    if (ky < ky0 || ky >= ky1) {
      zero(window, kw * cin);
      continue;
    }
    zero(window, kx0 * cin);
    if (dw == 1) {
      widen(window + kx0 * cin, row + (size_t)(ix0 + kx0) * cin, (kx1 - kx0) * cin,
            p->input_zero_point);
    } else {
      for (kx = kx0; kx < kx1; ++kx) {
        widen(window + kx * cin, row + (size_t)(ix0 + kx * dw) * cin, cin,
              p->input_zero_point);
      }
    }
    zero(window + kx1 * cin, (kw - kx1) * cin);
  }
}

/* offsets[i]: where tap i (OHWI order) is, from the window's first input
 * value; an odd K's last pair points its missing tap at the first one (its
 * weight is 0). */
static void tap_offsets(const tfqp_conv2d_int8_params *p, int32_t *offsets) {
  const int32_t cin = p->channels_in;
  const int32_t row_values = p->cols.in * cin;
  int32_t ky, kx, ci;
  for (ky = 0; ky < p->rows.filter; ++ky) {
    for (kx = 0; kx < p->cols.filter; ++kx) {
      for (ci = 0; ci < cin; ++ci) {
        *offsets++ = ky * p->rows.dilation * row_values + kx * p->cols.dilation * cin + ci;
      }
    }
  }
  if (p->taps % 2) *offsets = 0;
}

static int interior(const tfqp_window_axis *axis, int32_t o) {
  return axis->border_begin <= axis->border_end && o >= axis->border_begin &&
         o < axis->border_end;
}

void tfqp_arm_conv2d_int8_eval(const tfqp_conv2d_int8_params *p, const int32_t *table,
                               const int32_t *transform, const int8_t *input, void *output,
                               void *scratch) {
  int8_arm_layout l = layout_of(p->int32_output, p->output_levels, p->codes_only,
                                p->channels_out, p->taps, table, transform, p->table_bytes);
  const int32_t cin = p->channels_in;
  const size_t row_values = (size_t)p->cols.in * cin;
  const size_t image_values = (size_t)p->rows.in * row_values;
  const size_t out_bytes = position_bytes(p->output_levels, p->output_depth);
  const uint32_t zero_points = pair(p->input_zero_point, p->input_zero_point);
  uint32_t *window = (uint32_t *)scratch;
  int32_t *offsets = (int32_t *)(window + l.pairs); /* K rounded up to even */
  unsigned char *out = (unsigned char *)output;
  int32_t n, oy, ox;
  l.accumulators = offsets + p->taps + 1;
  zero((int16_t *)window + p->taps, 2 * l.pairs - p->taps);
  tap_offsets(p, offsets);
  for (n = 0; n < p->batch; ++n) {
    const int8_t *image = input + (size_t)n * image_values;
    for (oy = 0; oy < p->rows.out; ++oy) {
      const int row_inside = interior(&p->rows, oy);
      const int8_t *row =
          row_inside ? image + (size_t)(oy * p->rows.stride - p->rows.pad_before) * row_values
                     : NULL;
      for (ox = 0; ox < p->cols.out; ++ox, out += out_bytes) {
        if (row_inside && interior(&p->cols, ox)) {
          tfqp_arm_int8_gather(row + (size_t)(ox * p->cols.stride - p->cols.pad_before) * cin,
                               offsets, window, (p->taps + 1) / 2, zero_points);
        } else {
          border_window(p, image, oy, ox, (int16_t *)window);
        }
        window_outputs(&l, window, out);
      }
    }
  }
}

void tfqp_arm_fully_connected_int8_eval(const tfqp_fully_connected_int8_params *p,
                                        const int32_t *table, const int32_t *transform,
                                        const int8_t *input, void *output, void *scratch) {
  int8_arm_layout l = layout_of(p->int32_output, p->output_levels, p->codes_only,
                                p->channels_out, p->channels_in, table, transform,
                                p->table_bytes);
  const size_t out_bytes = position_bytes(p->output_levels, p->output_depth);
  int16_t *window = (int16_t *)scratch;
  int32_t n;
  l.accumulators = (int32_t *)scratch + l.pairs;
  zero(window + p->channels_in, 2 * l.pairs - p->channels_in);
  for (n = 0; n < p->batch; ++n) {
    widen(window, input + (size_t)n * p->channels_in, p->channels_in, p->input_zero_point);
    window_outputs(&l, (const uint32_t *)scratch, (unsigned char *)output + (size_t)n * out_bytes);
  }
}

#else
/* ISO C wants a declaration in every translation unit */
typedef int tfqp_arm_int8_unused;
#endif /* TFQP_HAVE_ARM_DSP */
