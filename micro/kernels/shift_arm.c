/* The Cortex-M (Thumb-2 with the DSP extension) fast path of the shift ops
 * (hooks in shift_fast.h), giving the portable path's bytes exactly.
 *
 * Decoding. Two consecutive codes of a row (a "pair": 2b bits, never split
 * across words since P(b) is even) index a table of 2^(2b) words: the pair's
 * two integer weights as int16 halves, exactly the operand SMLAD multiplies
 * with an int16 pair of activations. One UBFX and one LDR decode two weights;
 * code values are <= 2^14 in magnitude and activations int8, so every product
 * and the pair sum fit. The pair tables are built at the start of every call
 * into the op's scratch (fill_pair_tables: about 4 instructions an entry,
 * 1 K for 4-bit codes), not kept: scratch is shared by the model's ops, the
 * table is not, and 1 KB a 4-bit layer (4 KB a 5-bit one) is what a model's
 * arena would otherwise keep per coded layer.
 *
 * Activations. The kernels multiply the raw int8 values q (padded taps read
 * q = zp_in from a row of zero points), so sum (q - zp) w = sum q w - zp sum w
 * over every tap: init_table folds -d * zp * sum_k w[k] into each channel's
 * bias (modulo 2^32; the true V is int32, so the wrapped sum is exact).
 * With T terms per tap the activation stream repeats each value T times
 * (x'[r] = q[r / T]) and the codes are decoded as if T were 1.
 *
 * Convolution (and fully connected with a batch > 1): four output positions
 * at a time. Their activation pairs are interleaved (pair j of position p at
 * word 4j + p), so one LDM loads the four positions' pairs that one decoded
 * weight pair multiplies: per pair UBFX, LDR, LDM and four SMLADs, seven
 * instructions for eight MACs (tfqp_shift_arm_conv4_b<b>). When at least
 * TFQP_SHIFT_ARM_SPARSE_PERCENT of the pairs are zero pairs (code 0, worth 0
 * in every class, twice), a variant skips them with CBZ (two instructions
 * for a zero pair, nine for another; conv4s).
 * Fully connected, batch 1: two output channels share each LDM of four
 * activation pairs (tfqp_shift_arm_fc2_b<b>). With the op's live-code lists
 * (input 4, constant: flash, formats.h), pruned rows run from them instead:
 * per nonzero code its tap and value, an LDM of eight entries, then LSR,
 * LDRSB of the raw int8 input and SMLABB each (tfqp_shift_arm_code_list,
 * 3.4 instructions a live code against 3.6 a pair of codes and channel for
 * the dense kernel), nothing for a zero code; a channel pair whose lists
 * cost fewer instructions than its dense kernel call takes them
 * (code_lists_are_cheaper). No RAM beyond the records and flags.
 * Depthwise: per position the activation pairs of four channels are built
 * from one word of each tap (SXTB16, PKHBT/PKHTB), then each channel's codes
 * are decoded in C (ACLE SMLAD).
 * Dead words (codes worth 0 in every class: they add nothing, whoever reads
 * them) are skipped where that pays: a row runs one kernel call per run of
 * live words only where the dead words' decoding costs more than the extra
 * calls (long dead stretches: dead rows, structured pruning); otherwise the
 * kernel reads the row whole, as a dense one (unstructured pruning leaves
 * few dead words in many runs; runs_are_cheaper, fc2_runs_are_cheaper).
 * So a pruned layer never costs more than its dense form.
 * The output: TFLite's MultiplyByQuantizedMultiplier, bit-exact, as
 * tfqp_arm_output_int8 computes it (no saturation case: M0 < 2^31).
 */
#include "shift_fast.h"

#if TFQP_HAVE_ARM_DSP

#include <arm_acle.h>
#include <string.h>

#include "shift_op.h"

/* Pairs whose two codes are 0 and worth 0 in every class, in percent of all
 * pairs, from which the skipping kernels run instead of the dense ones: a
 * zero pair costs them 2 instructions instead of 7, another 9. */
#define TFQP_SHIFT_ARM_SPARSE_PERCENT 30

/* Output positions per block of the convolution kernels. */
#define BLOCK 4

/* The fast region of the table (the table's last tfqp_shift_fast_table_bytes
 * bytes), in int32 words: a header, one record per output channel
 * (record_words(layer) words: only what the layer's output reads, the table
 * being RAM), then one byte of flags per output channel (whole words). */
enum { HEADER_SPARSE, HEADER_ALL_LIVE, HEADER_WORDS };
#define RECORD 8 /* int8 output (the dw9 kernels step 32 bytes a channel) */
enum { R_D, R_BIAS, R_MULT, R_LEFT, R_RIGHT, R_MASK };  /* int8, one class */
enum { R_MULT1 = 3, R_SHIFT = 4, R_BIAS1 = 5 };        /* two classes: R_D, R_BIAS, R_MULT, ... */
enum { R_THRESHOLD = 2, RECORD_PACKED = 3 };          /* packed output: R_D, R_BIAS, R_THRESHOLD */
/* codes output: one word, the folded zero-point term (d is read from the
 * transform row in flash, with the thresholds) */
enum { R_LEVEL_BIAS = 0, RECORD_LEVELS = 1 };
#define FLAG_ALL_LIVE 1 /* flags: no dead word in the channel's row */
#define FLAG_WHOLE 2    /* flags: the kernels read the row whole, dead words too */
#define FLAG_CODE_LIST 4 /* flags: fully connected, batch 1: the live-code list */

/* Instructions a kernel call on a run of live words costs beyond the words'
 * work (job set-up, finding the run, the kernel's prologue and epilogue),
 * measured on the Cortex-M4, and a word's work beyond its pairs in conv4 (LDR,
 * CMP, BNE): the weights of runs_are_cheaper. */
#define RUN_COST 65
#define CONV4_WORD_COST 3

/* The weights of code_lists_are_cheaper and fc2_runs_are_cheaper, counted in
 * the kernels' code and checked against qemu's counts of short and long rows:
 * instructions per eight list entries (an LDM of eight, then LSR, LDRSB and
 * SMLABB each, the loop's CMP and BNE), a list's call beyond its entries
 * (the C side, the prologue, the remainder's tests and single entries at 5
 * each on average, the epilogue), per code word of a channel pair in
 * tfqp_shift_arm_fc2_b<b> beside its pairs (two LDRs, CMP, BNE), per pair of
 * it (UBFX, LDR, SMLAD per channel) and its call (fc2_channels' set-up,
 * prologue, epilogue). */
#define LIST_EIGHT_ENTRIES_COST 27
#define LIST_CALL_COST 35
#define FC2_WORD_COST 4
#define FC2_PAIR_COST 6
#define FC2_CALL_COST 45

typedef struct {
  const tfqp_word *codes;     /* conv4: the row; fc2: channel 0's row */
  const tfqp_word *codes_end; /* the end of that row */
  const uint32_t *x;          /* conv4: [pair][4] words; fc2: [pair] words */
  const uint32_t *pairs;      /* the class's pair table */
  int32_t *acc;               /* conv4: 4 accumulators; fc2: 2 */
  int32_t stride;             /* fc2: bytes from channel 0's row to channel 1's */
} arm_job;

typedef void (*arm_kernel)(const arm_job *job);

/* The sum over the live-code list entries [entries, end) (formats.h) of
 * the entry's value times input[its tap] (SMLABB, modulo 2^32). */
int32_t tfqp_shift_arm_code_list(const int32_t *entries, const int32_t *end,
                                 const int8_t *input);

#define TFQP_SHIFT_ARM_DECLARE(b)                  \
  void tfqp_shift_arm_conv4_b##b(const arm_job *); \
  void tfqp_shift_arm_conv4s_b##b(const arm_job *); \
  void tfqp_shift_arm_fc2_b##b(const arm_job *);
TFQP_SHIFT_ARM_DECLARE(1)
TFQP_SHIFT_ARM_DECLARE(2)
TFQP_SHIFT_ARM_DECLARE(3)
TFQP_SHIFT_ARM_DECLARE(4)
TFQP_SHIFT_ARM_DECLARE(5)

/* What tfqp_shift_arm_dw9_b<b> reads (in this order). */
typedef struct {
  const int8_t *const *taps; /* the 9 tap rows of the position */
  int32_t channels;          /* a multiple of 4 */
  const tfqp_word *codes;    /* rows of W_row words, channel after channel */
  const uint32_t *pairs;     /* the pair table */
  const int32_t *records;    /* RECORD words per channel */
  int8_t *out;               /* the position's outputs */
  int32_t zero_point;        /* zp_out */
  int32_t low, high;         /* activation_min / _max minus zp_out */
} arm_dw9_job;

typedef void (*arm_dw9_kernel)(const arm_dw9_job *job);
void tfqp_shift_arm_dw9_b1(const arm_dw9_job *);
void tfqp_shift_arm_dw9_b2(const arm_dw9_job *);
void tfqp_shift_arm_dw9_b3(const arm_dw9_job *);
void tfqp_shift_arm_dw9_b4(const arm_dw9_job *);
void tfqp_shift_arm_dw9_b5(const arm_dw9_job *);
static const arm_dw9_kernel dw9_kernels[] = {0, tfqp_shift_arm_dw9_b1, tfqp_shift_arm_dw9_b2,
                                             tfqp_shift_arm_dw9_b3, tfqp_shift_arm_dw9_b4,
                                             tfqp_shift_arm_dw9_b5};

static const arm_kernel conv4_kernels[] = {0, tfqp_shift_arm_conv4_b1, tfqp_shift_arm_conv4_b2,
                                           tfqp_shift_arm_conv4_b3, tfqp_shift_arm_conv4_b4,
                                           tfqp_shift_arm_conv4_b5};
static const arm_kernel conv4s_kernels[] = {
    0, tfqp_shift_arm_conv4s_b1, tfqp_shift_arm_conv4s_b2, tfqp_shift_arm_conv4s_b3,
    tfqp_shift_arm_conv4s_b4, tfqp_shift_arm_conv4s_b5};
static const arm_kernel fc2_kernels[] = {0, tfqp_shift_arm_fc2_b1, tfqp_shift_arm_fc2_b2,
                                         tfqp_shift_arm_fc2_b3, tfqp_shift_arm_fc2_b4,
                                         tfqp_shift_arm_fc2_b5};

/* The kernels, generated per code width b by assembler macros: a pair field
 * is 2b bits wide, a word holds P(b) / 2 pairs (16, 8, 5, 4, 3).
 * conv4 registers: r0 codes, lr end, r2 x, r3 pair table, r4-r7 the four
 * accumulators, r8-r11 the four positions' activation pairs, r12 the code
 * word, r1 the field / weight pair.
 * fc2 registers: r0 channel 0's codes, r1 stride, r2 x, r3 pair table, r4 and
 * r5 the accumulators, r6-r9 activation pairs, r10 and r11 the two channels'
 * code words, r12 the field / weight pair, lr end. */
__asm__(
    "  .syntax unified\n"
    "  .thumb\n"
    ".macro TFQP_FUNC name\n"
    "  .text\n"
    "  .balign 4\n"
    "  .global \\name\n"
    "  .type \\name, %function\n"
    "  .thumb_func\n"
    "\\name:\n"
    ".endm\n"
    ".macro TFQP_CONV4_PAIR pos, width\n"
    "  ubfx  r1, r12, #\\pos, #\\width\n"
    "  ldr   r1, [r3, r1, lsl #2]\n"
    "  ldmia r2!, {r8-r11}\n"
    "  smlad r4, r1, r8, r4\n"
    "  smlad r5, r1, r9, r5\n"
    "  smlad r6, r1, r10, r6\n"
    "  smlad r7, r1, r11, r7\n"
    ".endm\n"
    ".macro TFQP_CONV4S_PAIR pos, width, index\n"
    "  ubfx  r1, r12, #\\pos, #\\width\n"
    "  cbz   r1, 2f\n"
    "  ldr   r1, [r3, r1, lsl #2]\n"
    "  ldrd  r8, r9, [r2, #(16 * \\index)]\n"
    "  ldrd  r10, r11, [r2, #(16 * \\index + 8)]\n"
    "  smlad r4, r1, r8, r4\n"
    "  smlad r5, r1, r9, r5\n"
    "  smlad r6, r1, r10, r6\n"
    "  smlad r7, r1, r11, r7\n"
    "2:\n"
    ".endm\n"
    ".macro TFQP_CONV4 name, width, pairs, sparse\n"
    "  TFQP_FUNC \\name\n"
    "  push  {r4-r11, lr}\n"
    "  ldr   r12, [r0, #16]\n"
    "  push  {r12}\n"
    "  ldmia r12, {r4-r7}\n"
    "  ldmia r0, {r0, r1, r2, r3}\n"
    "  mov   lr, r1\n"
    "1:\n"
    "  ldr   r12, [r0], #4\n"
    "  .set tfqp_pos, 0\n"
    "  .set tfqp_index, 0\n"
    "  .rept \\pairs\n"
    "  .if \\sparse\n"
    "  TFQP_CONV4S_PAIR tfqp_pos, \\width, tfqp_index\n"
    "  .else\n"
    "  TFQP_CONV4_PAIR tfqp_pos, \\width\n"
    "  .endif\n"
    "  .set tfqp_pos, tfqp_pos + \\width\n"
    "  .set tfqp_index, tfqp_index + 1\n"
    "  .endr\n"
    "  .if \\sparse\n"
    "  add   r2, r2, #(16 * \\pairs)\n"
    "  .endif\n"
    "  cmp   r0, lr\n"
    "  bne   1b\n"
    "  pop   {r12}\n"
    "  stmia r12, {r4-r7}\n"
    "  pop   {r4-r11, pc}\n"
    "  .size \\name, . - \\name\n"
    ".endm\n"
    ".macro TFQP_FC2_PAIR pos, width, x\n"
    "  ubfx  r12, r10, #\\pos, #\\width\n"
    "  ldr   r12, [r3, r12, lsl #2]\n"
    "  smlad r4, r12, \\x, r4\n"
    "  ubfx  r12, r11, #\\pos, #\\width\n"
    "  ldr   r12, [r3, r12, lsl #2]\n"
    "  smlad r5, r12, \\x, r5\n"
    ".endm\n"
    /* up to four pairs whose activations one LDM loads */
    ".macro TFQP_FC2_GROUP width, count\n"
    "  .if \\count == 4\n"
    "  ldmia r2!, {r6-r9}\n"
    "  .elseif \\count == 3\n"
    "  ldmia r2!, {r6-r8}\n"
    "  .elseif \\count == 2\n"
    "  ldmia r2!, {r6-r7}\n"
    "  .else\n"
    "  ldr   r6, [r2], #4\n"
    "  .endif\n"
    "  TFQP_FC2_PAIR tfqp_pos, \\width, r6\n"
    "  .set tfqp_pos, tfqp_pos + \\width\n"
    "  .if \\count > 1\n"
    "  TFQP_FC2_PAIR tfqp_pos, \\width, r7\n"
    "  .set tfqp_pos, tfqp_pos + \\width\n"
    "  .endif\n"
    "  .if \\count > 2\n"
    "  TFQP_FC2_PAIR tfqp_pos, \\width, r8\n"
    "  .set tfqp_pos, tfqp_pos + \\width\n"
    "  .endif\n"
    "  .if \\count > 3\n"
    "  TFQP_FC2_PAIR tfqp_pos, \\width, r9\n"
    "  .set tfqp_pos, tfqp_pos + \\width\n"
    "  .endif\n"
    ".endm\n"
    ".macro TFQP_FC2 name, width, pairs\n"
    "  TFQP_FUNC \\name\n"
    "  push  {r4-r11, lr}\n"
    "  ldr   r12, [r0, #16]\n"
    "  push  {r12}\n"
    "  ldrd  r4, r5, [r12]\n"
    "  ldr   r1, [r0, #20]\n"
    "  ldr   lr, [r0, #4]\n"
    "  ldr   r2, [r0, #8]\n"
    "  ldr   r3, [r0, #12]\n"
    "  ldr   r0, [r0]\n"
    "1:\n"
    "  ldr   r11, [r0, r1]\n"
    "  ldr   r10, [r0], #4\n"
    "  .set tfqp_pos, 0\n"
    "  .set tfqp_left, \\pairs\n"
    "  .rept (\\pairs + 3) / 4\n"
    "  .if tfqp_left >= 4\n"
    "  TFQP_FC2_GROUP \\width, 4\n"
    "  .set tfqp_left, tfqp_left - 4\n"
    "  .else\n"
    "  TFQP_FC2_GROUP \\width, tfqp_left\n"
    "  .set tfqp_left, 0\n"
    "  .endif\n"
    "  .endr\n"
    "  cmp   r0, lr\n"
    "  bne   1b\n"
    "  pop   {r12}\n"
    "  strd  r4, r5, [r12]\n"
    "  pop   {r4-r11, pc}\n"
    "  .size \\name, . - \\name\n"
    ".endm\n"
    "  TFQP_CONV4 tfqp_shift_arm_conv4_b1, 2, 16, 0\n"
    "  TFQP_CONV4 tfqp_shift_arm_conv4_b2, 4, 8, 0\n"
    "  TFQP_CONV4 tfqp_shift_arm_conv4_b3, 6, 5, 0\n"
    "  TFQP_CONV4 tfqp_shift_arm_conv4_b4, 8, 4, 0\n"
    "  TFQP_CONV4 tfqp_shift_arm_conv4_b5, 10, 3, 0\n"
    "  TFQP_CONV4 tfqp_shift_arm_conv4s_b1, 2, 16, 1\n"
    "  TFQP_CONV4 tfqp_shift_arm_conv4s_b2, 4, 8, 1\n"
    "  TFQP_CONV4 tfqp_shift_arm_conv4s_b3, 6, 5, 1\n"
    "  TFQP_CONV4 tfqp_shift_arm_conv4s_b4, 8, 4, 1\n"
    "  TFQP_CONV4 tfqp_shift_arm_conv4s_b5, 10, 3, 1\n"
    "  TFQP_FC2 tfqp_shift_arm_fc2_b1, 2, 16\n"
    "  TFQP_FC2 tfqp_shift_arm_fc2_b2, 4, 8\n"
    "  TFQP_FC2 tfqp_shift_arm_fc2_b3, 6, 5\n"
    "  TFQP_FC2 tfqp_shift_arm_fc2_b4, 8, 4\n"
    "  TFQP_FC2 tfqp_shift_arm_fc2_b5, 10, 3\n"
    /* code_list: r0 entries, r1 end, r2 the int8 input, r12 the sum, lr the
     * tap / its input; blocks of eight entries, then single ones */
    ".macro TFQP_CODE_ENTRY entry\n"
    "  lsr   lr, \\entry, #16\n"
    "  ldrsb lr, [r2, lr]\n"
    "  smlabb r12, \\entry, lr, r12\n"
    ".endm\n"
    "  TFQP_FUNC tfqp_shift_arm_code_list\n"
    "  push  {r4-r11, lr}\n"
    "  movs  r12, #0\n"
    "  subs  r3, r1, r0\n"
    "  bic   r3, r3, #31\n"
    "  add   r3, r3, r0\n"
    "  cmp   r0, r3\n"
    "  beq   2f\n"
    "1:\n"
    "  ldmia r0!, {r4-r11}\n"
    "  TFQP_CODE_ENTRY r4\n"
    "  TFQP_CODE_ENTRY r5\n"
    "  TFQP_CODE_ENTRY r6\n"
    "  TFQP_CODE_ENTRY r7\n"
    "  TFQP_CODE_ENTRY r8\n"
    "  TFQP_CODE_ENTRY r9\n"
    "  TFQP_CODE_ENTRY r10\n"
    "  TFQP_CODE_ENTRY r11\n"
    "  cmp   r0, r3\n"
    "  bne   1b\n"
    "2:\n"
    "  cmp   r0, r1\n"
    "  beq   4f\n"
    "3:\n"
    "  ldr   r4, [r0], #4\n"
    "  TFQP_CODE_ENTRY r4\n"
    "  cmp   r0, r1\n"
    "  bne   3b\n"
    "4:\n"
    "  mov   r0, r12\n"
    "  pop   {r4-r11, pc}\n"
    "  .size tfqp_shift_arm_code_list, . - tfqp_shift_arm_code_list\n"
    /* dw9: one output position of a 3x3 depthwise conv (one term per tap,
     * depth multiplier 1, one class, int8 output, every row live), all
     * channels, four at a time: phase A builds the four channels' five tap
     * pairs on the stack (as dw9_pairs does), phase B decodes each channel's
     * row (W words: 1 for b <= 3, 2 for b = 4, 5) and requantizes (as
     * requantize does, the clamp range shifted by -zp_out).
     * Frame: [sp, #0..79] pairs [4][5]; locals from sp + 80. */
    ".equ TFQP_DW_C, 80\n"
    ".equ TFQP_DW_TAPS, 84\n"
    ".equ TFQP_DW_END, 88\n"
    ".equ TFQP_DW_CODES, 92\n"
    ".equ TFQP_DW_PAIRS, 96\n"
    ".equ TFQP_DW_RECORDS, 100\n"
    ".equ TFQP_DW_OUT, 104\n"
    ".equ TFQP_DW_ZP, 108\n"
    ".equ TFQP_DW_LOW, 112\n"
    ".equ TFQP_DW_HIGH, 116\n"
    ".equ TFQP_DW_FRAME, 120\n"
    ".macro TFQP_DW_TAP_PAIR j\n"
    "  ldrd  r0, r1, [r12, #(8 * \\j)]\n"
    "  ldr   r0, [r0, r9]\n"
    "  ldr   r1, [r1, r9]\n"
    "  sxtb16 r2, r0\n"
    "  sxtb16 r3, r1\n"
    "  sxtb16 r0, r0, ror #8\n"
    "  sxtb16 r1, r1, ror #8\n"
    "  pkhbt r4, r2, r3, lsl #16\n"
    "  pkhbt r5, r0, r1, lsl #16\n"
    "  pkhtb r6, r3, r2, asr #16\n"
    "  pkhtb r7, r1, r0, asr #16\n"
    "  str   r4, [sp, #(4 * \\j)]\n"
    "  str   r5, [sp, #(20 + 4 * \\j)]\n"
    "  str   r6, [sp, #(40 + 4 * \\j)]\n"
    "  str   r7, [sp, #(60 + 4 * \\j)]\n"
    ".endm\n"
    /* phase B pair j: field at bit pos of word reg w, times x pair xj */
    ".macro TFQP_DW_PAIR w, pos, width, xj, first\n"
    "  ubfx  r7, \\w, #\\pos, #\\width\n"
    "  ldr   r7, [r10, r7, lsl #2]\n"
    "  .if \\first\n"
    "  smuad r8, r7, \\xj\n"
    "  .else\n"
    "  smlad r8, r7, \\xj, r8\n"
    "  .endif\n"
    ".endm\n"
    /* r10 pair table, r11 codes, lr records, r12 out, sp-relative pairs at
     * r9 = sp + 20 * channel in the group */
    ".macro TFQP_DW_CHANNEL width, words\n"
    "  ldmia r9!, {r0-r4}\n"
    "  .if \\words == 2\n"
    "  ldmia r11!, {r5, r6}\n"
    "  .else\n"
    "  ldr   r5, [r11], #4\n"
    "  .endif\n"
    "  .if \\width == 2\n"
    "  TFQP_DW_PAIR r5, 0, 2, r0, 1\n"
    "  TFQP_DW_PAIR r5, 2, 2, r1, 0\n"
    "  TFQP_DW_PAIR r5, 4, 2, r2, 0\n"
    "  TFQP_DW_PAIR r5, 6, 2, r3, 0\n"
    "  TFQP_DW_PAIR r5, 8, 2, r4, 0\n"
    "  .elseif \\width == 4\n"
    "  TFQP_DW_PAIR r5, 0, 4, r0, 1\n"
    "  TFQP_DW_PAIR r5, 4, 4, r1, 0\n"
    "  TFQP_DW_PAIR r5, 8, 4, r2, 0\n"
    "  TFQP_DW_PAIR r5, 12, 4, r3, 0\n"
    "  TFQP_DW_PAIR r5, 16, 4, r4, 0\n"
    "  .elseif \\width == 6\n"
    "  TFQP_DW_PAIR r5, 0, 6, r0, 1\n"
    "  TFQP_DW_PAIR r5, 6, 6, r1, 0\n"
    "  TFQP_DW_PAIR r5, 12, 6, r2, 0\n"
    "  TFQP_DW_PAIR r5, 18, 6, r3, 0\n"
    "  TFQP_DW_PAIR r5, 24, 6, r4, 0\n"
    "  .elseif \\width == 8\n"
    "  TFQP_DW_PAIR r5, 0, 8, r0, 1\n"
    "  TFQP_DW_PAIR r5, 8, 8, r1, 0\n"
    "  TFQP_DW_PAIR r5, 16, 8, r2, 0\n"
    "  TFQP_DW_PAIR r5, 24, 8, r3, 0\n"
    "  TFQP_DW_PAIR r6, 0, 8, r4, 0\n"
    "  .else\n"
    "  TFQP_DW_PAIR r5, 0, 10, r0, 1\n"
    "  TFQP_DW_PAIR r5, 10, 10, r1, 0\n"
    "  TFQP_DW_PAIR r5, 20, 10, r2, 0\n"
    "  TFQP_DW_PAIR r6, 0, 10, r3, 0\n"
    "  TFQP_DW_PAIR r6, 10, 10, r4, 0\n"
    "  .endif\n"
    /* r8 = acc; record: d, bias, mult, left, right, mask */
    "  ldmia lr, {r0-r5}\n"
    "  add   lr, lr, #32\n"
    "  mla   r8, r0, r8, r1\n"
    "  lsl   r8, r8, r3\n"
    "  mov   r0, #0x40000000\n"
    "  movs  r1, #0\n"
    "  smlal r0, r1, r8, r2\n"
    "  lsrs  r0, r0, #31\n"
    "  orr   r8, r0, r1, lsl #1\n"
    "  and   r0, r8, r5\n"
    "  lsrs  r1, r5, #1\n"
    "  add   r1, r1, r8, lsr #31\n"
    "  subs  r1, r1, r0\n"
    "  asr   r8, r8, r4\n"
    "  add   r8, r8, r1, lsr #31\n"
    "  ldrd  r0, r1, [sp, #TFQP_DW_LOW]\n"
    "  cmp   r8, r0\n"
    "  it    lt\n"
    "  movlt r8, r0\n"
    "  cmp   r8, r1\n"
    "  it    gt\n"
    "  movgt r8, r1\n"
    "  ldr   r0, [sp, #TFQP_DW_ZP]\n"
    "  add   r8, r8, r0\n"
    "  strb  r8, [r12], #1\n"
    ".endm\n"
    ".macro TFQP_DW9 name, width, words\n"
    "  TFQP_FUNC \\name\n"
    "  push  {r4-r11, lr}\n"
    "  sub   sp, sp, #TFQP_DW_FRAME\n"
    "  ldmia r0, {r1-r9}\n" /* taps, channels, codes, pairs, records, out, zp, low, high */
    "  movs  r0, #0\n"
    "  str   r0, [sp, #TFQP_DW_C]\n"
    "  str   r1, [sp, #TFQP_DW_TAPS]\n"
    "  str   r2, [sp, #TFQP_DW_END]\n"
    "  add   r0, sp, #TFQP_DW_CODES\n"
    "  stmia r0, {r3-r9}\n"
    "1:\n"
    "  ldr   r12, [sp, #TFQP_DW_TAPS]\n"
    "  ldr   r9, [sp, #TFQP_DW_C]\n"
    "  TFQP_DW_TAP_PAIR 0\n"
    "  TFQP_DW_TAP_PAIR 1\n"
    "  TFQP_DW_TAP_PAIR 2\n"
    "  TFQP_DW_TAP_PAIR 3\n"
    "  ldr   r0, [r12, #32]\n"
    "  ldr   r0, [r0, r9]\n"
    "  adds  r9, r9, #4\n"
    "  str   r9, [sp, #TFQP_DW_C]\n"
    "  sxtb16 r2, r0\n"
    "  sxtb16 r0, r0, ror #8\n"
    "  uxth  r4, r2\n"
    "  uxth  r5, r0\n"
    "  lsrs  r6, r2, #16\n"
    "  lsrs  r7, r0, #16\n"
    "  str   r4, [sp, #16]\n"
    "  str   r5, [sp, #36]\n"
    "  str   r6, [sp, #56]\n"
    "  str   r7, [sp, #76]\n"
    "  add   r0, sp, #TFQP_DW_CODES\n"
    "  ldmia r0, {r10, r11, lr}\n" /* codes, pairs, records */
    "  mov   r11, r10\n"
    "  ldr   r10, [sp, #TFQP_DW_PAIRS]\n"
    "  ldr   r12, [sp, #TFQP_DW_OUT]\n"
    "  mov   r9, sp\n"
    "  TFQP_DW_CHANNEL \\width, \\words\n"
    "  TFQP_DW_CHANNEL \\width, \\words\n"
    "  TFQP_DW_CHANNEL \\width, \\words\n"
    "  TFQP_DW_CHANNEL \\width, \\words\n"
    "  str   r11, [sp, #TFQP_DW_CODES]\n"
    "  str   lr, [sp, #TFQP_DW_RECORDS]\n"
    "  str   r12, [sp, #TFQP_DW_OUT]\n"
    "  ldr   r0, [sp, #TFQP_DW_C]\n"
    "  ldr   r1, [sp, #TFQP_DW_END]\n"
    "  cmp   r0, r1\n"
    "  bne   1b\n"
    "  add   sp, sp, #TFQP_DW_FRAME\n"
    "  pop   {r4-r11, pc}\n"
    "  .size \\name, . - \\name\n"
    ".endm\n"
    "  TFQP_DW9 tfqp_shift_arm_dw9_b1, 2, 1\n"
    "  TFQP_DW9 tfqp_shift_arm_dw9_b2, 4, 1\n"
    "  TFQP_DW9 tfqp_shift_arm_dw9_b3, 6, 1\n"
    "  TFQP_DW9 tfqp_shift_arm_dw9_b4, 8, 2\n"
    "  TFQP_DW9 tfqp_shift_arm_dw9_b5, 10, 2\n"
    "  .purgem TFQP_DW9\n"
    "  .purgem TFQP_DW_CHANNEL\n"
    "  .purgem TFQP_DW_PAIR\n"
    "  .purgem TFQP_DW_TAP_PAIR\n"
    "  .purgem TFQP_CONV4\n"
    "  .purgem TFQP_CONV4_PAIR\n"
    "  .purgem TFQP_CONV4S_PAIR\n"
    "  .purgem TFQP_FC2\n"
    "  .purgem TFQP_FC2_PAIR\n"
    "  .purgem TFQP_FC2_GROUP\n"
    "  .purgem TFQP_CODE_ENTRY\n"
    "  .purgem TFQP_FUNC\n");

/* ------------------------------------------------------------------ layout */

static size_t pair_count(const tfqp_shift_layer *layer) {
  return (size_t)1 << (2 * layer->bits);
}

/* Activation pairs of one position's codes row (padding pairs included). */
static size_t row_pairs(const tfqp_shift_layer *layer) {
  return (size_t)layer->row_words * (size_t)(layer->codes_per_word / 2);
}

/* Words of a channel's record. */
static size_t record_words(const tfqp_shift_layer *layer) {
  if (layer->output_packed) return RECORD_PACKED;
  return layer->output_levels != 0 ? RECORD_LEVELS : RECORD;
}

static size_t round4(size_t bytes) { return (bytes + 3u) & ~(size_t)3u; }

size_t tfqp_shift_fast_table_bytes(const tfqp_shift_layer *layer) {
  const size_t cout = (size_t)layer->channels_out;
  return sizeof(int32_t) * (HEADER_WORDS + record_words(layer) * cout) + round4(cout);
}

/* Scratch: the pair tables, the zero-point row, the tap pointers of BLOCK
 * positions and the activation pairs of BLOCK positions; 0 beyond 2^30
 * bytes. */
static size_t scratch_bytes(const tfqp_shift_layer *layer, int32_t channels_in,
                            int32_t tap_rows) {
  const uint64_t bytes = (uint64_t)layer->classes * pair_count(layer) * sizeof(uint32_t) +
                         (((uint64_t)channels_in + 3u) & ~(uint64_t)3u) +
                         BLOCK * (uint64_t)tap_rows * sizeof(const int8_t *) +
                         (uint64_t)layer->row_words * BLOCK *
                             (uint64_t)(layer->codes_per_word / 2) * sizeof(uint32_t);
  return bytes > ((uint64_t)1 << 30) ? 0 : (size_t)bytes;
}

size_t tfqp_shift_fast_conv2d_scratch_bytes(const tfqp_shift_conv2d_params *params,
                                            int depthwise) {
  (void)depthwise;
  return scratch_bytes(&params->layer, params->channels_in,
                       params->rows.filter * params->cols.filter);
}

size_t tfqp_shift_fast_fully_connected_scratch_bytes(
    const tfqp_shift_fully_connected_params *params) {
  return scratch_bytes(&params->layer, params->channels_in, 1);
}

/* Whether the layer's scratch holds this path's. */
static int scratch_fits(const tfqp_shift_layer *layer, int32_t channels_in, int32_t tap_rows) {
  const size_t bytes = scratch_bytes(layer, channels_in, tap_rows);
  return bytes != 0 && bytes <= layer->scratch_bytes;
}

/* The records and the flags of the fast region. */
static int32_t *records_of(int32_t *fast) { return fast + HEADER_WORDS; }
static const int32_t *records_of_c(const int32_t *fast) { return fast + HEADER_WORDS; }
static uint8_t *flags_of(const tfqp_shift_layer *layer, int32_t *fast) {
  return (uint8_t *)(fast + HEADER_WORDS + record_words(layer) * (size_t)layer->channels_out);
}
static const uint8_t *flags_of_c(const tfqp_shift_layer *layer, const int32_t *fast) {
  return (const uint8_t *)(fast + HEADER_WORDS +
                           record_words(layer) * (size_t)layer->channels_out);
}

static int32_t *fast_region(const tfqp_shift_layer *layer, int32_t *table) {
  return table + (layer->table_bytes - tfqp_shift_fast_table_bytes(layer)) / sizeof(int32_t);
}

static const int32_t *fast_region_c(const tfqp_shift_layer *layer, const int32_t *table) {
  return table + (layer->table_bytes - tfqp_shift_fast_table_bytes(layer)) / sizeof(int32_t);
}

/* ------------------------------------------------------------------ init */

/* The pair tables [C][2^(2b)] from the code values (table[c * 2^b + code]):
 * entry (hi << b) | lo holds v[lo] in its low half and v[hi] in its high. */
static void fill_pair_tables(const tfqp_shift_layer *layer, const int32_t *values,
                             uint32_t *pairs) {
  const uint32_t codes = 1u << layer->bits;
  uint32_t low[1 << TFQP_CODE_BITS_MAX];
  int32_t c;
  uint32_t hi, lo;
  for (c = 0; c < layer->classes; ++c) {
    const int32_t *v = values + (size_t)c * codes;
    uint32_t *out = pairs + ((size_t)c << (2 * layer->bits));
    for (lo = 0; lo < codes; ++lo) low[lo] = (uint32_t)v[lo] & 0xFFFFu;
    for (hi = 0; hi < codes; ++hi) {
      const uint32_t high = (uint32_t)v[hi] << 16;
      for (lo = 0; lo < codes; ++lo) *out++ = low[lo] | high;
    }
  }
}

/* Per class the sum of w over the row's codes (the sum of w_c[k] over k),
 * and its zero pairs (both codes 0). */
static void row_sums(const tfqp_shift_layer *layer, const tfqp_word *row, const int32_t *values,
                     int64_t sums[TFQP_CODE_CLASSES_MAX], uint32_t *zero_pairs) {
  const int32_t bits = layer->bits;
  const int32_t per_word = layer->codes_per_word;
  const size_t stride = (size_t)1 << bits;
  int32_t w, j, c;
  sums[0] = sums[1] = 0;
  for (w = 0; w < layer->row_words; ++w) {
    const int32_t rest = layer->row_codes - w * per_word;
    const int32_t n = rest < per_word ? rest : per_word;
    uint32_t word = row[w];
    for (j = 0; j < per_word; j += 2) {
      *zero_pairs += ((word >> (j * bits)) & ((1u << (2 * bits)) - 1u)) == 0;
    }
    for (j = 0; j < n; ++j, word >>= bits) {
      for (c = 0; c < layer->classes; ++c) sums[c] += values[(size_t)c * stride + (word & ((1u << bits) - 1u))];
    }
  }
}

static int row_all_live(const tfqp_shift_layer *layer, const uint32_t *live) {
  int32_t w;
  for (w = 0; w < layer->row_words; ++w) {
    if (!((live[w / 32] >> (w % 32)) & 1u)) return 0;
  }
  return 1;
}

/* Whether a row with dead words costs fewer instructions as one conv4 call
 * per run of live words than as one call on the whole row (its dead words
 * decoded like the others: 2 instructions a pair with the skipping kernels,
 * 7 without). */
static int runs_are_cheaper(const tfqp_shift_layer *layer, const uint32_t *live, int sparse) {
  const int64_t word_cost =
      CONV4_WORD_COST + (int64_t)(layer->codes_per_word / 2) * (sparse ? 2 : 7);
  int64_t dead = 0, runs = 0;
  int32_t w, previous = 0;
  for (w = 0; w < layer->row_words; ++w) {
    const int32_t bit = (int32_t)((live[w / 32] >> (w % 32)) & 1u);
    dead += !bit;
    runs += bit && !previous;
    previous = bit;
  }
  return dead * word_cost > (runs - 1) * RUN_COST;
}

/* Instructions of tfqp_shift_arm_fc2_b<b> per word of a channel pair. */
static int64_t fc2_word_cost(const tfqp_shift_layer *layer) {
  const int64_t per_word = layer->codes_per_word / 2;
  return FC2_WORD_COST + (per_word + 3) / 4 + FC2_PAIR_COST * per_word;
}

/* The instructions of channels co and (two) co + 1 of a fully-connected
 * layer in batch 1 as fc2_channels' kernel calls per run (words live in both
 * rows, then those live in one: a call each; bitmaps live_stride apart). */
static int64_t fc2_runs_cost(const tfqp_shift_layer *layer, const uint32_t *live, int two) {
  const uint32_t *live1 = live + layer->live_stride;
  const int32_t words = layer->row_words;
  int64_t calls = 0, read = 0;
  int32_t chunk, kind;
  for (chunk = 0; chunk * 32 < words; ++chunk) {
    const uint32_t valid = words - chunk * 32 >= 32 ? ~0u : (1u << (words - chunk * 32)) - 1u;
    const uint32_t m0 = live[chunk] & valid, m1 = two ? live1[chunk] & valid : 0u;
    const uint32_t runs[3] = {m0 & m1, m0 & ~m1, m1 & ~m0};
    for (kind = 0; kind < 3; ++kind) {
      /* a run starts at each set bit whose lower neighbour is clear */
      calls += __builtin_popcount(runs[kind] & ~(runs[kind] << 1));
      read += __builtin_popcount(runs[kind]);
    }
  }
  return calls * FC2_CALL_COST + read * fc2_word_cost(layer);
}

/* Whether fc2_runs_cost is below one call on both rows whole. */
static int fc2_runs_are_cheaper(const tfqp_shift_layer *layer, const uint32_t *live, int two) {
  return fc2_runs_cost(layer, live, two) <
         FC2_CALL_COST + (int64_t)layer->row_words * fc2_word_cost(layer);
}

/* Whether channels co and (two) co + 1 of a fully-connected layer in batch 1
 * cost fewer instructions from their live-code lists (entries0 + entries1
 * entries, a call each) than through fc2_channels (`runs`: its calls per run
 * of live words, else one call on both rows whole). */
static int code_lists_are_cheaper(const tfqp_shift_layer *layer, const uint32_t *live,
                                  int32_t entries0, int32_t entries1, int two, int runs) {
  const int64_t lists = (int64_t)(1 + two) * LIST_CALL_COST +
                        ((int64_t)entries0 + entries1) * LIST_EIGHT_ENTRIES_COST / 8;
  return lists < (runs ? fc2_runs_cost(layer, live, two)
                       : FC2_CALL_COST + (int64_t)layer->row_words * fc2_word_cost(layer));
}

/* x mod 2^32 as int32 (two's complement, no implementation-defined cast). */
static int32_t wrap32(int64_t x) { return tfqp_shift_int32((uint32_t)(uint64_t)x); }

void tfqp_shift_fast_init_table(const tfqp_shift_layer *layer, const tfqp_word *codes,
                                const int32_t *transform, const int32_t *code_lists,
                                int32_t *table) {
  int32_t *fast = fast_region(layer, table);
  int32_t *records = records_of(fast);
  uint8_t *flags = flags_of(layer, fast);
  const size_t cout = (size_t)layer->channels_out;
  const size_t rec = record_words(layer);
  const int32_t *fields = table + layer->channels_at;
  const int64_t zp = layer->input_zero_point;
  const size_t stride = (size_t)1 << layer->bits;
  const uint32_t *live = (const uint32_t *)table + layer->live_at;
  uint32_t zero_pairs = 0;
  int32_t c, zero_code = 1;
  size_t co;
  for (c = 0; c < layer->classes; ++c) zero_code &= table[(size_t)c * stride] == 0;
  for (co = 0; co < cout; ++co) {
    int32_t *r = records + co * rec;
    int64_t sums[TFQP_CODE_CLASSES_MAX];
    int32_t d;
    row_sums(layer, codes + co * (size_t)layer->row_words, table, sums, &zero_pairs);
    flags[co] = row_all_live(layer, live + co * layer->live_stride) ? FLAG_ALL_LIVE : 0;
    if (layer->output_levels != 0) {
      /* d * A + this: compared with the thresholds (output_level) */
      d = tfqp_level_direction(transform, layer->output_levels, (int32_t)co);
      r[R_LEVEL_BIAS] = wrap32(-d * zp * sums[0]);
      continue;
    }
    d = fields[TFQP_SHIFT_D * cout + co];
    memset(r, 0, rec * sizeof *r);
    r[R_D] = d;
    if (layer->output_packed) {
      /* d * A: compared with the threshold */
      r[R_BIAS] = wrap32(-d * zp * sums[0]);
      r[R_THRESHOLD] = fields[TFQP_SHIFT_THRESHOLD * cout + co];
      continue;
    }
    r[R_BIAS] = wrap32(fields[TFQP_SHIFT_B * cout + co] - d * zp * sums[0]);
    r[R_MULT] = fields[TFQP_SHIFT_M0 * cout + co];
    if (layer->classes == 1) {
      const int32_t s = fields[TFQP_SHIFT_S * cout + co];
      r[R_LEFT] = s > 0 ? s : 0;
      r[R_RIGHT] = s > 0 ? 0 : -s;
      r[R_MASK] = (int32_t)((1u << r[R_RIGHT]) - 1u);
    } else {
      r[R_MULT1] = fields[TFQP_SHIFT_M1 * cout + co];
      r[R_SHIFT] = fields[TFQP_SHIFT_S * cout + co];
      r[R_BIAS1] = wrap32(-zp * sums[1]);
    }
  }
  for (co = cout; co < round4(cout); ++co) flags[co] = 0;
  fast[HEADER_ALL_LIVE] = 1;
  for (co = 0; co < cout; ++co) fast[HEADER_ALL_LIVE] &= flags[co] & FLAG_ALL_LIVE;
  fast[HEADER_SPARSE] =
      zero_code && (uint64_t)zero_pairs * 100u >=
                       (uint64_t)TFQP_SHIFT_ARM_SPARSE_PERCENT * cout * row_pairs(layer);
  if (layer->fully_connected && layer->pixels == 1) {
    /* fc2_channels: channel pairs */
    for (co = 0; co < cout; co += 2) {
      const int32_t two = co + 1 < cout;
      const uint32_t *pair_live = live + co * layer->live_stride;
      const int runs = fc2_runs_are_cheaper(layer, pair_live, two);
      uint8_t flag = runs ? 0 : FLAG_WHOLE;
      if (code_lists != NULL &&
          code_lists_are_cheaper(layer, pair_live, code_lists[co + 1] - code_lists[co],
                                 two ? code_lists[co + 2] - code_lists[co + 1] : 0, two, runs)) {
        flag = FLAG_CODE_LIST;
      }
      flags[co] |= flag;
      if (two) flags[co + 1] |= flag;
    }
  } else {
    for (co = 0; co < cout; ++co) {
      if (!(flags[co] & FLAG_ALL_LIVE) &&
          !runs_are_cheaper(layer, live + co * layer->live_stride, fast[HEADER_SPARSE])) {
        flags[co] |= FLAG_WHOLE;
      }
    }
  }
}

/* ------------------------------------------------------------------ output */

/* The int8 outputs of one channel, one class (GCC on Arm: int32 conversions
 * wrap). */
typedef struct {
  int32_t zero_point, act_min, act_max;
} arm_output_range;

/* clamp(zp_out + MultiplyByQuantizedMultiplier(v, mult, s)), s = left - right,
 * mult in [0, 2^31): SaturatingRoundingDoublingHighMul is
 * floor((a * mult + 2^30) / 2^31) (see xnor_arm.h) and never saturates here;
 * RoundingDivideByPOT adds 1 when the remainder exceeds mask / 2 (+1 below 0). */
static inline int8_t requantize(uint32_t v, int32_t left, int32_t mult, int32_t right,
                                uint32_t mask, const arm_output_range *range) {
  const int64_t product = (int64_t)(int32_t)(v << left) * mult + (1 << 30);
  const int32_t high = (int32_t)(uint32_t)((uint64_t)product >> 31);
  const uint32_t threshold = (mask >> 1) + ((uint32_t)high >> 31);
  /* clamped before the zero point is added (a value near INT32_MIN plus zp
   * must not wrap): the contract's clamp(v, act_min - zp, act_max - zp) + zp */
  int32_t out = (high >> right) + (int32_t)((threshold - ((uint32_t)high & mask)) >> 31);
  if (out < range->act_min - range->zero_point) out = range->act_min - range->zero_point;
  if (out > range->act_max - range->zero_point) out = range->act_max - range->zero_point;
  return (int8_t)(out + range->zero_point);
}

/* out[p * step] for p < count from channel record r and accumulators acc.
 * With the full int8 range the clamp is one SSAT (fewer live registers). */
static void channel_int8(const int32_t *r, const int32_t *acc, int32_t count,
                         const arm_output_range *range, int8_t *out, size_t step) {
  const uint32_t d = (uint32_t)r[R_D], bias = (uint32_t)r[R_BIAS];
  const int32_t left = r[R_LEFT], mult = r[R_MULT], right = r[R_RIGHT];
  const uint32_t mask = (1u << right) - 1u;
  int32_t p;
  if (range->act_min == -128 && range->act_max == 127) {
    const int32_t zero_point = range->zero_point;
    for (p = 0; p < count; ++p, out += step) {
      const uint32_t v = d * (uint32_t)acc[p] + bias;
      const int64_t product = (int64_t)(int32_t)(v << left) * mult + (1 << 30);
      const int32_t high = (int32_t)(uint32_t)((uint64_t)product >> 31);
      const uint32_t threshold = (mask >> 1) + ((uint32_t)high >> 31);
      /* 16-bit saturation first: the clamp before the zero point (|zp| <= 128) */
      *out = (int8_t)__ssat(__ssat((high >> right) +
                                       (int32_t)((threshold - ((uint32_t)high & mask)) >> 31),
                                   16) +
                                zero_point,
                            8);
    }
    return;
  }
  for (p = 0; p < count; ++p, out += step) {
    *out = requantize(d * (uint32_t)acc[p] + bias, left, mult, right, mask, range);
  }
}

static inline int8_t output_int8(uint32_t v, const int32_t *r, const tfqp_shift_layer *layer) {
  const arm_output_range range = {layer->output_zero_point, layer->activation_min,
                                  layer->activation_max};
  return requantize(v, r[R_LEFT], r[R_MULT], r[R_RIGHT], (1u << r[R_RIGHT]) - 1u, &range);
}

/* Two classes: exact int64 (tfqp/shift_layer.h). */
static int8_t output_two_classes(uint32_t a0, uint32_t a1, const int32_t *r,
                                 const tfqp_shift_layer *layer) {
  const int32_t v = tfqp_shift_int32((uint32_t)r[R_D] * a0 + (uint32_t)r[R_BIAS]);
  const int32_t a = tfqp_shift_int32(a1 + (uint32_t)r[R_BIAS1]);
  const int64_t sum = (int64_t)v * r[R_MULT] + (int64_t)(r[R_D] > 0 ? a : -a) * r[R_MULT1];
  int64_t out = tfqp_shift_round_pot(sum, r[R_SHIFT]) + layer->output_zero_point;
  if (out < layer->activation_min) out = layer->activation_min;
  if (out > layer->activation_max) out = layer->activation_max;
  return (int8_t)out;
}

/* 1 iff d * A < threshold (A = A_raw + the folded zero-point term). */
static inline uint32_t output_bit(uint32_t a, const int32_t *r) {
  return tfqp_shift_int32((uint32_t)r[R_D] * a + (uint32_t)r[R_BIAS]) < r[R_THRESHOLD];
}

/* The codes output of channel co (A = A_raw + the folded zero-point term). */
static inline int8_t output_level(uint32_t a, const int32_t *r, const tfqp_shift_layer *layer,
                                  const int32_t *transform, int32_t co) {
  const uint32_t d = (uint32_t)tfqp_level_direction(transform, layer->output_levels, co);
  return (int8_t)tfqp_level_output(transform, layer->output_levels, layer->codes_only, co,
                                   tfqp_shift_int32(d * a + (uint32_t)r[R_LEVEL_BIAS]));
}

/* ------------------------------------------------------------------ activations */

static inline uint32_t load4(const int8_t *p) {
  uint32_t v;
  memcpy(&v, p, sizeof v);
  return v;
}

static inline uint32_t sxtb16_ror8(uint32_t x) {
  uint32_t r;
  __asm__("sxtb16 %0, %1, ror #8" : "=r"(r) : "r"(x));
  return r;
}

/* (low half of a, low half of b) */
static inline uint32_t pack_low(uint32_t a, uint32_t b) {
  uint32_t r;
  __asm__("pkhbt %0, %1, %2, lsl #16" : "=r"(r) : "r"(a), "r"(b));
  return r;
}

/* (high half of a, high half of b) */
static inline uint32_t pack_high(uint32_t a, uint32_t b) {
  uint32_t r;
  __asm__("pkhtb %0, %2, %1, asr #16" : "=r"(r) : "r"(a), "r"(b));
  return r;
}

/* One position's activation stream as pairs: x'[r] = q[r / T] where q runs
 * over `taps` rows of `width` values each (taps[i]), then zero pairs up to the
 * row's pair count; pair j goes to out[j * step]. */
static void position_pairs(const tfqp_shift_layer *layer, const int8_t *const *taps,
                           int32_t tap_count, int32_t width, uint32_t *out, size_t step) {
  const size_t total = row_pairs(layer);
  size_t written = 0;
  int32_t t, i;
  if (layer->terms == 1 && width % 4 == 0) {
    for (t = 0; t < tap_count; ++t) {
      const int8_t *q = taps[t];
      for (i = 0; i < width; i += 4) {
        const uint32_t v = load4(q + i);
        const uint32_t even = __sxtb16(v), odd = sxtb16_ror8(v);
        out[0] = pack_low(even, odd);   /* (q0, q1) */
        out[step] = pack_high(even, odd); /* (q2, q3) */
        out += 2 * step;
      }
    }
    written = (size_t)tap_count * (size_t)width / 2;
  } else {
    const int32_t terms = layer->terms;
    uint32_t low = 0;
    int32_t half = 0, repeat;
    for (t = 0; t < tap_count; ++t) {
      for (i = 0; i < width; ++i) {
        const uint32_t value = (uint32_t)(int32_t)taps[t][i] & 0xFFFFu;
        for (repeat = 0; repeat < terms; ++repeat) {
          if (half == 0) {
            low = value;
          } else {
            *out = low | value << 16;
            out += step;
            ++written;
          }
          half ^= 1;
        }
      }
    }
    if (half) {
      *out = low;
      out += step;
      ++written;
    }
  }
  for (; written < total; ++written, out += step) *out = 0;
}

/* ------------------------------------------------------------------ live words */

/* The next run [*begin, *end) of words marked live in a row's bitmap (the
 * portable table's live-word bits), at or after `from`; 0 when none is left.
 * Dead words (every code worth 0 in every class) are never read. */
static int next_live_run(const uint32_t *live, int32_t words, int32_t from, int32_t *begin,
                         int32_t *end) {
  int32_t w = from;
  while (w < words) {
    const uint32_t bits = live[w / 32] >> (w % 32);
    if (bits == 0) {
      w = (w / 32 + 1) * 32;
      continue;
    }
    w += __builtin_ctz(bits);
    break;
  }
  if (w >= words) return 0;
  *begin = w;
  while (w < words) {
    const uint32_t gaps = ~live[w / 32] >> (w % 32);
    if (gaps == 0) {
      w = (w / 32 + 1) * 32;
      continue;
    }
    w += __builtin_ctz(gaps);
    break;
  }
  *end = w < words ? w : words;
  return 1;
}

/* The runs [*begin, *end) of set bits of `mask`, lowest first: 0 when none
 * is left (the run is cleared from *mask). */
static int next_bit_run(uint32_t *mask, int32_t *begin, int32_t *end) {
  uint32_t rest;
  if (*mask == 0) return 0;
  *begin = __builtin_ctz(*mask);
  rest = ~(*mask >> *begin);
  *end = rest == 0 ? 32 : *begin + __builtin_ctz(rest);
  *mask &= *end == 32 ? 0u : ~0u << *end;
  return 1;
}

/* ------------------------------------------------------------------ blocks */

/* Scratch pointers of one eval. */
typedef struct {
  const uint32_t *pairs; /* the pair tables [C][2^(2b)], filled */
  int8_t *zero_points;   /* round4(Cin) bytes of zp_in */
  const int8_t **taps;   /* BLOCK * taps pointers */
  uint32_t *x;           /* BLOCK * row_pairs words */
} arm_scratch;

/* The scratch of one eval, its pair tables filled from the table's code
 * values and its zero-point row set. */
static arm_scratch split_scratch(const tfqp_shift_layer *layer, const int32_t *table,
                                 int32_t channels_in, int32_t tap_count, void *scratch) {
  arm_scratch s;
  unsigned char *p = (unsigned char *)scratch;
  fill_pair_tables(layer, table, (uint32_t *)(void *)p);
  s.pairs = (const uint32_t *)(void *)p;
  p += (size_t)layer->classes * pair_count(layer) * sizeof(uint32_t);
  s.zero_points = (int8_t *)p;
  memset(s.zero_points, layer->input_zero_point, round4((size_t)channels_in));
  p += round4((size_t)channels_in);
  s.taps = (const int8_t **)(void *)p;
  p += BLOCK * (size_t)tap_count * sizeof(const int8_t *);
  s.x = (uint32_t *)(void *)p;
  return s;
}

/* acc[0..3] += output channel co's live words times the four positions'
 * pairs s->x (pairs: a class's pair table), one kernel call per run. */
static void conv4_runs(const tfqp_shift_layer *layer, arm_kernel kernel, const int32_t *table,
                       const tfqp_word *codes, int32_t co, const uint32_t *pairs,
                       const uint32_t *x, int32_t *acc) {
  const size_t words_pairs = (size_t)(layer->codes_per_word / 2) * BLOCK;
  const tfqp_word *row = codes + (size_t)co * (size_t)layer->row_words;
  const uint32_t *live = (const uint32_t *)table + layer->live_at + (size_t)co * layer->live_stride;
  int32_t begin, end = 0;
  arm_job job;
  job.pairs = pairs;
  job.acc = acc;
  job.stride = 0;
  while (next_live_run(live, layer->row_words, end, &begin, &end)) {
    job.codes = row + begin;
    job.codes_end = row + end;
    job.x = x + (size_t)begin * words_pairs;
    kernel(&job);
  }
}

/* acc[0..3] += output channel co's live words times the four positions'
 * pairs s->x: one call on the whole row (no dead word, or FLAG_WHOLE), or
 * conv4_runs. */
static void conv4_channel(const tfqp_shift_layer *layer, arm_kernel kernel,
                          const int32_t *table, uint32_t flags, const tfqp_word *codes,
                          int32_t co, const uint32_t *pairs, const arm_scratch *s,
                          int32_t *acc) {
  arm_job job;
  if (!(flags & (FLAG_ALL_LIVE | FLAG_WHOLE))) {
    conv4_runs(layer, kernel, table, codes, co, pairs, s->x, acc);
    return;
  }
  job.codes = codes + (size_t)co * (size_t)layer->row_words;
  job.codes_end = job.codes + layer->row_words;
  job.x = s->x;
  job.pairs = pairs;
  job.acc = acc;
  job.stride = 0;
  kernel(&job);
}

/* The outputs of positions [first, first + count) for every channel, their
 * activation pairs interleaved in s->x. */
static void block_outputs(const tfqp_shift_layer *layer, const int32_t *table,
                          const int32_t *transform, const int32_t *fast, const tfqp_word *codes,
                          const arm_scratch *s, int32_t first, int32_t count, void *output) {
  const uint32_t *pairs = s->pairs;
  const int32_t *records = records_of_c(fast);
  const uint8_t *flags = flags_of_c(layer, fast);
  const size_t rec = record_words(layer);
  const arm_kernel kernel =
      (fast[HEADER_SPARSE] ? conv4s_kernels : conv4_kernels)[layer->bits];
  const int32_t cout = layer->channels_out;
  const arm_output_range range = {layer->output_zero_point, layer->activation_min,
                                  layer->activation_max};
  uint32_t bits[BLOCK] = {0, 0, 0, 0};
  int32_t co, p;
  arm_job job;
  job.x = s->x;
  job.pairs = pairs;
  job.stride = 0;
  const int32_t *r = records;
  for (co = 0; co < cout; ++co, r += rec) {
    int32_t acc[BLOCK] = {0, 0, 0, 0};
    /* conv4_channel, inline for class 0: a call per channel and block costs
     * the dense layers 2 % */
    if (flags[co] & (FLAG_ALL_LIVE | FLAG_WHOLE)) {
      job.codes = codes + (size_t)co * (size_t)layer->row_words;
      job.codes_end = job.codes + layer->row_words;
      job.acc = acc;
      kernel(&job);
    } else {
      conv4_runs(layer, kernel, table, codes, co, pairs, s->x, acc);
    }
    if (layer->output_packed) {
      for (p = 0; p < BLOCK; ++p) bits[p] |= output_bit((uint32_t)acc[p], r) << (co % 32);
      if (co % 32 == 31 || co == cout - 1) {
        for (p = 0; p < count; ++p) {
          ((tfqp_word *)output)[(size_t)(first + p) * layer->output_depth + co / 32] = bits[p];
          bits[p] = 0;
        }
      }
    } else if (layer->output_levels != 0) {
      for (p = 0; p < count; ++p) {
        ((int8_t *)output)[(size_t)(first + p) * cout + co] =
            output_level((uint32_t)acc[p], r, layer, transform, co);
      }
    } else if (layer->classes == 1) {
      channel_int8(r, acc, count, &range, (int8_t *)output + (size_t)first * cout + co,
                   (size_t)cout);
    } else {
      int32_t acc1[BLOCK] = {0, 0, 0, 0};
      conv4_channel(layer, kernel, table, flags[co], codes, co, pairs + pair_count(layer), s,
                    acc1);
      for (p = 0; p < count; ++p) {
        ((int8_t *)output)[(size_t)(first + p) * cout + co] =
            output_two_classes((uint32_t)acc[p], (uint32_t)acc1[p], r, layer);
      }
    }
  }
}

/* The tap rows of output position `pixel` of a convolution: tap (ky, kx)
 * reads its input pixel's Cin values, or the zero-point row when padded. */
static void conv_taps(const tfqp_shift_conv2d_params *p, const int8_t *input, int32_t pixel,
                      const int8_t *zero_points, const int8_t **taps) {
  const int32_t per_image = p->rows.out * p->cols.out;
  const int32_t oy = pixel % per_image / p->cols.out;
  const int32_t ox = pixel % p->cols.out;
  const size_t cin = (size_t)p->channels_in;
  const size_t row_step = (size_t)p->rows.dilation * (size_t)p->cols.in * cin;
  const size_t col_step = (size_t)p->cols.dilation * cin;
  const int32_t kh = p->rows.filter, kw = p->cols.filter;
  const int8_t *image = input + (size_t)(pixel / per_image) * p->rows.in * p->cols.in * cin;
  /* offset of tap (0, 0), possibly outside the image: pointers are formed
   * for valid taps only */
  ptrdiff_t row = ((ptrdiff_t)(oy * p->rows.stride - p->rows.pad_before) * p->cols.in +
                   (ox * p->cols.stride - p->cols.pad_before)) *
                  (ptrdiff_t)cin;
  int32_t ky0, ky1, kx0, kx1, ky, kx;
  tfqp_window_axis_taps(&p->rows, oy, &ky0, &ky1);
  tfqp_window_axis_taps(&p->cols, ox, &kx0, &kx1);
  for (ky = 0; ky < kh; ++ky, row += (ptrdiff_t)row_step) {
    ptrdiff_t tap = row;
    if (ky < ky0 || ky >= ky1) {
      for (kx = 0; kx < kw; ++kx) *taps++ = zero_points;
      continue;
    }
    for (kx = 0; kx < kw; ++kx, tap += (ptrdiff_t)col_step) {
      *taps++ = kx < kx0 || kx >= kx1 ? zero_points : image + tap;
    }
  }
}

/* ------------------------------------------------------------------ depthwise */

/* One channel's accumulator over its first `count` activation pairs x (one
 * position), dead words skipped. */
static int32_t channel_dot(const tfqp_shift_layer *layer, const tfqp_word *row,
                           const uint32_t *live, const uint32_t *pairs, const uint32_t *x,
                           int32_t count) {
  const int32_t width = 2 * layer->bits;
  const int32_t per_word = layer->codes_per_word / 2;
  const uint32_t mask = (1u << width) - 1u;
  int32_t acc = 0, w, j = 0;
  for (w = 0; j < count; ++w) {
    uint32_t word = row[w];
    int32_t i;
    if (!((live[w / 32] >> (w % 32)) & 1u)) {
      j += per_word;
      continue;
    }
    for (i = 0; i < per_word && j < count; ++i, ++j, word >>= width) {
      acc = __smlad((int16x2_t)pairs[word & mask], (int16x2_t)x[j], acc);
    }
  }
  return acc;
}

/* 3x3 depthwise, one term per tap, a row without dead words: the five pairs
 * unrolled per code width (pair j in word j / (P(b) / 2)). */
typedef int32_t (*dw9_dot)(const tfqp_word *row, const uint32_t *pairs, const uint32_t *x);

#define TFQP_SHIFT_ARM_DW9(b)                                                               \
  static int32_t dw9_dot_b##b(const tfqp_word *row, const uint32_t *pairs,                 \
                              const uint32_t *x) {                                         \
    enum { PER_WORD = 32 / (b) / 2, WIDTH = 2 * (b) };                                     \
    const uint32_t mask = (1u << WIDTH) - 1u;                                              \
    int32_t acc = 0, j;                                                                    \
    for (j = 0; j < 5; ++j) {                                                              \
      const uint32_t field = (row[j / PER_WORD] >> (WIDTH * (j % PER_WORD))) & mask;       \
      acc = __smlad((int16x2_t)pairs[field], (int16x2_t)x[j], acc);                        \
    }                                                                                      \
    return acc;                                                                            \
  }
TFQP_SHIFT_ARM_DW9(1)
TFQP_SHIFT_ARM_DW9(2)
TFQP_SHIFT_ARM_DW9(3)
TFQP_SHIFT_ARM_DW9(4)
TFQP_SHIFT_ARM_DW9(5)
static const dw9_dot dw9_dots[] = {0, dw9_dot_b1, dw9_dot_b2, dw9_dot_b3, dw9_dot_b4,
                                   dw9_dot_b5};

/* The five tap pairs of channels c .. c + 3 of a 3x3 window (taps[k] + c):
 * x[i][j] = (q of tap 2j, q of tap 2j + 1) of channel c + i, x[i][4] =
 * (tap 8, 0). SXTB16 splits a word into channels (c, c + 2) and, rotated,
 * (c + 1, c + 3); PKHBT / PKHTB pair two taps' halves. */
static void dw9_pairs(const int8_t *const *taps, int32_t c, uint32_t x[4][5]) {
  int32_t j;
  for (j = 0; j < 4; ++j) {
    const uint32_t a = load4(taps[2 * j] + c), b = load4(taps[2 * j + 1] + c);
    const uint32_t ea = __sxtb16(a), oa = sxtb16_ror8(a);
    const uint32_t eb = __sxtb16(b), ob = sxtb16_ror8(b);
    x[0][j] = pack_low(ea, eb);
    x[1][j] = pack_low(oa, ob);
    x[2][j] = pack_high(ea, eb);
    x[3][j] = pack_high(oa, ob);
  }
  {
    const uint32_t a = load4(taps[8] + c);
    const uint32_t ea = __sxtb16(a), oa = sxtb16_ror8(a);
    x[0][4] = ea & 0xFFFFu;
    x[1][4] = oa & 0xFFFFu;
    x[2][4] = ea >> 16;
    x[3][4] = oa >> 16;
  }
}

/* One input channel's tap pairs, any window and terms (x'[r] = q[r / T]). */
static void channel_pairs(const tfqp_shift_layer *layer, const int8_t *const *taps,
                          int32_t tap_count, int32_t c, uint32_t *x) {
  const int32_t terms = layer->terms;
  uint32_t low = 0;
  int32_t half = 0, k, repeat;
  for (k = 0; k < tap_count; ++k) {
    const uint32_t value = (uint32_t)(int32_t)taps[k][c] & 0xFFFFu;
    for (repeat = 0; repeat < terms; ++repeat) {
      if (half == 0) {
        low = value;
      } else {
        *x++ = low | value << 16;
      }
      half ^= 1;
    }
  }
  if (half) *x = low;
}

typedef struct {
  const tfqp_shift_layer *layer;
  const tfqp_word *codes;
  const uint32_t *live;
  const uint32_t *tables;  /* the pair tables (scratch) */
  const int32_t *records;  /* rec words a channel */
  size_t rec;
  const uint8_t *flags;
  const int32_t *transform; /* the codes output's rows (level_output.h) */
  arm_output_range range;
  int32_t pairs; /* activation pairs of one channel: ceil(R / 2) */
} dw_context;

/* The outputs of the dm channels that read input channel ci, from its pairs. */
static void dw_outputs(const dw_context *k, int32_t ci, const uint32_t *x, int32_t pixel,
                       void *output) {
  const tfqp_shift_layer *layer = k->layer;
  const int32_t dm = layer->depth_multiplier;
  const dw9_dot dot9 =
      layer->terms == 1 && k->pairs == 5 ? dw9_dots[layer->bits] : (dw9_dot)0;
  int32_t m;
  for (m = 0; m < dm; ++m) {
    const int32_t co = ci * dm + m;
    const int32_t *r = k->records + (size_t)co * k->rec;
    const tfqp_word *row = k->codes + (size_t)co * layer->row_words;
    const uint32_t *row_live = k->live + (size_t)co * layer->live_stride;
    const int32_t a0 = dot9 != 0 && (k->flags[co] & FLAG_ALL_LIVE)
                           ? dot9(row, k->tables, x)
                           : channel_dot(layer, row, row_live, k->tables, x, k->pairs);
    if (layer->output_packed) {
      ((tfqp_word *)output)[(size_t)pixel * layer->output_depth + co / 32] |=
          output_bit((uint32_t)a0, r) << (co % 32);
    } else if (layer->output_levels != 0) {
      ((int8_t *)output)[(size_t)pixel * layer->channels_out + co] =
          output_level((uint32_t)a0, r, layer, k->transform, co);
    } else if (layer->classes == 1) {
      channel_int8(r, &a0, 1, &k->range,
                   (int8_t *)output + (size_t)pixel * layer->channels_out + co, 1);
    } else {
      const int32_t a1 = channel_dot(layer, row, row_live, k->tables + pair_count(layer), x,
                                     k->pairs);
      ((int8_t *)output)[(size_t)pixel * layer->channels_out + co] =
          output_two_classes((uint32_t)a0, (uint32_t)a1, r, layer);
    }
  }
}

static void depthwise(const tfqp_shift_conv2d_params *p, const int32_t *table,
                      const int32_t *transform, const int32_t *fast, const int8_t *input,
                      const tfqp_word *codes, const arm_scratch *s, void *output) {
  const tfqp_shift_layer *layer = &p->layer;
  const int32_t tap_count = p->rows.filter * p->cols.filter;
  const int32_t cin = p->channels_in;
  const int32_t window9 = tap_count == 9 && layer->terms == 1;
  dw_context k;
  int32_t pixel, ci, t;
  k.layer = layer;
  k.codes = codes;
  k.live = (const uint32_t *)table + layer->live_at;
  k.transform = transform;
  k.tables = s->pairs;
  k.records = records_of_c(fast);
  k.rec = record_words(layer);
  k.flags = flags_of_c(layer, fast);
  k.range.zero_point = layer->output_zero_point;
  k.range.act_min = layer->activation_min;
  k.range.act_max = layer->activation_max;
  k.pairs = (layer->row_codes + 1) / 2;
  if (window9 && layer->depth_multiplier == 1 && cin % 4 == 0 && layer->classes == 1 &&
      !layer->output_packed && layer->output_levels == 0 && fast[HEADER_ALL_LIVE]) {
    arm_dw9_job job;
    job.taps = s->taps;
    job.channels = cin;
    job.pairs = k.tables;
    job.zero_point = layer->output_zero_point;
    job.low = layer->activation_min - layer->output_zero_point;
    job.high = layer->activation_max - layer->output_zero_point;
    for (pixel = 0; pixel < layer->pixels; ++pixel) {
      conv_taps(p, input, pixel, s->zero_points, s->taps);
      job.codes = codes;
      job.records = k.records;
      job.out = (int8_t *)output + (size_t)pixel * layer->channels_out;
      dw9_kernels[layer->bits](&job);
    }
    return;
  }
  for (pixel = 0; pixel < layer->pixels; ++pixel) {
    conv_taps(p, input, pixel, s->zero_points, s->taps);
    if (layer->output_packed) {
      for (t = 0; t < layer->output_depth; ++t) {
        ((tfqp_word *)output)[(size_t)pixel * layer->output_depth + t] = 0;
      }
    }
    for (ci = 0; ci < cin;) {
      if (window9 && ci + 4 <= cin) {
        uint32_t x[4][5];
        dw9_pairs(s->taps, ci, x);
        for (t = 0; t < 4; ++t) dw_outputs(&k, ci + t, x[t], pixel, output);
        ci += 4;
      } else {
        channel_pairs(layer, s->taps, tap_count, ci, s->x);
        dw_outputs(&k, ci, s->x, pixel, output);
        ci += 1;
      }
    }
  }
}

/* acc[0], acc[1] += channel 0's and (two) channel 1's live words (rows
 * row_words apart, bitmaps live_stride apart) times the pairs x. Rows with no
 * dead word or FLAG_WHOLE: one call of the two-channel kernel on the rows
 * whole. Otherwise per 32 words: the runs live in both rows go through it,
 * the runs live in one row through it with both channels reading that row,
 * into the one accumulator. */
static void fc2_channels(const tfqp_shift_layer *layer, arm_kernel kernel, const tfqp_word *row,
                         const uint32_t *live, const uint8_t *flags, int32_t two,
                         const uint32_t *pairs, const uint32_t *x, int32_t *acc) {
  const int32_t words = layer->row_words;
  const size_t word_pairs = (size_t)(layer->codes_per_word / 2);
  const uint32_t *live1 = live + layer->live_stride;
  const int32_t row_bytes = (int32_t)((size_t)words * sizeof(tfqp_word));
  const int32_t flags0 = flags[0], flags1 = two ? flags[1] : flags0;
  int32_t chunk;
  arm_job job;
  job.pairs = pairs;
  if ((flags0 & (FLAG_ALL_LIVE | FLAG_WHOLE)) && (flags1 & (FLAG_ALL_LIVE | FLAG_WHOLE))) {
    job.x = x;
    job.acc = acc;
    /* without a channel 1, channel 0 twice (acc[1] is not used) */
    job.stride = two ? row_bytes : 0;
    job.codes = row;
    job.codes_end = job.codes + words;
    kernel(&job);
    return;
  }
  for (chunk = 0; chunk * 32 < words; ++chunk) {
    const uint32_t valid = words - chunk * 32 >= 32 ? ~0u : (1u << (words - chunk * 32)) - 1u;
    const uint32_t m0 = live[chunk] & valid, m1 = two ? live1[chunk] & valid : 0u;
    uint32_t runs[3];
    int32_t kind, begin, end;
    runs[0] = m0 & m1;
    runs[1] = m0 & ~m1;
    runs[2] = m1 & ~m0;
    for (kind = 0; kind < 3; ++kind) {
      while (next_bit_run(&runs[kind], &begin, &end)) {
        const int32_t w = chunk * 32 + begin;
        int32_t single[2] = {0, 0};
        job.x = x + (size_t)w * word_pairs;
        job.codes = row + (kind == 2 ? words : 0) + w;
        job.codes_end = job.codes + (end - begin);
        job.stride = kind == 0 ? row_bytes : 0;
        job.acc = kind == 0 ? acc : single;
        kernel(&job);
        if (kind != 0) acc[kind - 1] += single[0];
      }
    }
  }
}

/* Channel co's accumulator from its live-code list (FLAG_CODE_LIST) and the
 * position's raw int8 input. */
static int32_t list_sum(const tfqp_shift_layer *layer, const int32_t *code_lists, int32_t co,
                        const int8_t *input) {
  const int32_t *entries = code_lists + (size_t)layer->channels_out + 1;
  return tfqp_shift_arm_code_list(entries + code_lists[co], entries + code_lists[co + 1], input);
}

/* ------------------------------------------------------------------ hooks */

int tfqp_shift_fast_conv2d(const tfqp_shift_conv2d_params *params, int depthwise_op,
                           const int32_t *table, const int32_t *transform, const int8_t *input,
                           const tfqp_word *codes, void *scratch, void *output) {
  const tfqp_shift_layer *layer = &params->layer;
  const int32_t tap_count = params->rows.filter * params->cols.filter;
  const int32_t *fast = fast_region_c(layer, table);
  const size_t pairs = row_pairs(layer);
  arm_scratch s;
  int32_t first, p;
  if (!scratch_fits(layer, params->channels_in, tap_count)) return 0;
  s = split_scratch(layer, table, params->channels_in, tap_count, scratch);
  if (depthwise_op) {
    depthwise(params, table, transform, fast, input, codes, &s, output);
    return 1;
  }
  for (first = 0; first < layer->pixels; first += BLOCK) {
    const int32_t count = layer->pixels - first < BLOCK ? layer->pixels - first : BLOCK;
    for (p = 0; p < BLOCK; ++p) {
      const int8_t **taps = s.taps + (size_t)p * tap_count;
      if (p < count) {
        conv_taps(params, input, first + p, s.zero_points, taps);
        position_pairs(layer, taps, tap_count, params->channels_in, s.x + p, BLOCK);
      } else {
        size_t j;
        for (j = 0; j < pairs; ++j) s.x[j * BLOCK + p] = 0;
      }
    }
    block_outputs(layer, table, transform, fast, codes, &s, first, count, output);
  }
  return 1;
}

int tfqp_shift_fast_fully_connected(const tfqp_shift_fully_connected_params *params,
                                    const int32_t *table, const int32_t *transform,
                                    const int8_t *input, const tfqp_word *codes,
                                    const int32_t *code_lists, void *scratch, void *output) {
  const tfqp_shift_layer *layer = &params->layer;
  const int32_t cin = params->channels_in;
  const int32_t *fast = fast_region_c(layer, table);
  const size_t pairs = row_pairs(layer);
  arm_scratch s;
  int32_t first, p;
  if (!scratch_fits(layer, cin, 1)) return 0;
  s = split_scratch(layer, table, cin, 1, scratch);
  if (layer->pixels == 1) {
    /* two channels per kernel call, sharing the activation loads */
    const uint32_t *tables = s.pairs;
    const int32_t *records = records_of_c(fast);
    const uint8_t *flags = flags_of_c(layer, fast);
    const size_t rec = record_words(layer);
    const size_t row_words = (size_t)layer->row_words;
    const int32_t cout = layer->channels_out;
    const uint32_t *live = (const uint32_t *)table + layer->live_at;
    uint32_t bits = 0;
    int32_t co, c;
    s.taps[0] = input;
    position_pairs(layer, s.taps, 1, cin, s.x, 1);
    for (co = 0; co < cout; co += 2) {
      const int32_t two = co + 1 < cout;
      int32_t acc[TFQP_CODE_CLASSES_MAX][2] = {{0, 0}, {0, 0}};
      if (flags[co] & FLAG_CODE_LIST) {
        /* one class, both channels of the pair listed */
        for (c = 0; c <= two; ++c) acc[0][c] = list_sum(layer, code_lists, co + c, input);
      } else {
        for (c = 0; c < layer->classes; ++c) {
          fc2_channels(layer, fc2_kernels[layer->bits], codes + (size_t)co * row_words,
                       live + (size_t)co * layer->live_stride, flags + co,
                       two, tables + (size_t)c * pair_count(layer), s.x, acc[c]);
        }
      }
      for (c = 0; c <= two; ++c) {
        const int32_t *r = records + (size_t)(co + c) * rec;
        if (layer->output_packed) {
          bits |= output_bit((uint32_t)acc[0][c], r) << ((co + c) % 32);
          if ((co + c) % 32 == 31 || co + c == cout - 1) {
            ((tfqp_word *)output)[(co + c) / 32] = bits;
            bits = 0;
          }
        } else if (layer->output_levels != 0) {
          ((int8_t *)output)[co + c] =
              output_level((uint32_t)acc[0][c], r, layer, transform, co + c);
        } else if (layer->classes == 1) {
          ((int8_t *)output)[co + c] = output_int8(
              (uint32_t)r[R_D] * (uint32_t)acc[0][c] + (uint32_t)r[R_BIAS], r, layer);
        } else {
          ((int8_t *)output)[co + c] =
              output_two_classes((uint32_t)acc[0][c], (uint32_t)acc[1][c], r, layer);
        }
      }
    }
    return 1;
  }
  for (first = 0; first < layer->pixels; first += BLOCK) {
    const int32_t count = layer->pixels - first < BLOCK ? layer->pixels - first : BLOCK;
    for (p = 0; p < BLOCK; ++p) {
      if (p < count) {
        s.taps[0] = input + (size_t)(first + p) * (size_t)cin;
        position_pairs(layer, s.taps, 1, cin, s.x + p, BLOCK);
      } else {
        size_t j;
        for (j = 0; j < pairs; ++j) s.x[j * BLOCK + p] = 0;
      }
    }
    block_outputs(layer, table, transform, fast, codes, &s, first, count, output);
  }
  return 1;
}

#else
/* ISO C wants a declaration in every translation unit */
typedef int tfqp_shift_arm_unused;
#endif /* TFQP_HAVE_ARM_DSP */
