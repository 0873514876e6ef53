/* Cortex-M XOR-popcount kernels (see xnor_arm.h), in Thumb-2 assembly.
 *
 * Cortex-M4 has no popcount instruction. Per 32-bit word and channel the
 * SWAR popcount costs about ten instructions when written plainly; these
 * kernels spend 22 instructions per group of three words and channel
 * (7.3 per word, 0.23 per binary MAC) by
 *   - loading three window words and three filter words with two LDMs;
 *   - stage 1, 2-bit counts:  t = y - ((y & 0xAAAAAAAA) >> 1)        (2 ops)
 *   - stage 2, 4-bit counts:  t - 3 * ((t >> 2) & 0x33333333)        (2 ops:
 *     AND with a shifted register, MLS): every nibble holds lo + hi <= 4;
 *   - adding the three words' nibbles (<= 12, no carry) before reducing;
 *   - reducing with USADA8, sum of the four bytes: byte i of n holds
 *     lo_i + 16 * hi_i, byte i of ror(n, 4) holds hi_i + 16 * lo_(i+1), so
 *     USADA8(n) + USADA8(ror(n, 4)) = 17 * (sum of all nibbles) (3 ops).
 * The accumulators therefore count 17 * x. For packed outputs the threshold
 * is folded into the accumulator's start value (tfqp_arm_bit_start) and the
 * output bit is its sign bit, shifted into the result with ADCS; for int8
 * outputs x is recovered exactly as 17 * x times 17^-1 modulo 2^32.
 *
 * Registers of the kernels: r0 window, r1 filter, r2 accumulator array, r3
 * output bits with a sentinel one bit above them (the loop ends when it
 * shifts out), r4-r9 data, r10 0x33333333, r11 3, r12 accumulator, lr 0.
 * Rows are handled per call as (tail words, groups of three): the tail
 * (n mod 3 words) first, then the groups, entered Duff-style into an
 * unrolled run of TFQP_ARM_GROUPS groups; longer rows are cut into pieces by
 * the C driver, with a per-channel skip of the other pieces' filter words.
 * Channel c's filter words follow channel c - 1's, so the filter pointer
 * simply runs on. Two specializations drop the computed entry: rows of nine
 * words (3x3 filters on <= 32 channels) two channels per loop
 * (tfqp_arm_bits9_asm), and the same for a whole output row of a conv, the
 * window gathered with LDM/STM (tfqp_arm_conv9_row_asm). tfqp_arm_gather
 * copies receptive fields for the general conv path.
 */
#include "xnor_arm.h"

#if TFQP_HAVE_ARM_DSP

#include "binary_output.h"

#include <stddef.h>
#include <string.h>

#define TFQP_ARM_GROUPS 12 /* groups of three words in one unrolled run */

/* What the kernels read from their first argument (copied to their stack). */
typedef struct {
  const tfqp_word *window; /* first window word of this piece */
  uintptr_t entry;         /* per channel: skip stub, tail block or groups */
  uintptr_t after_skip;    /* tail block or groups */
  uintptr_t groups_entry;  /* into the unrolled run, `groups` before its end */
  int32_t skip_bytes;      /* added to the filter pointer before each channel */
} tfqp_arm_job;

/* bits (channel 0 highest) of start[c] + 17 * x_c >= 2^31; count in [1, 32] */
uint32_t tfqp_arm_bits_asm(const tfqp_arm_job *job, const tfqp_word *f,
                           const uint32_t *start, int32_t count);
/* tfqp_arm_bits_asm for rows of nine words and an even count */
uint32_t tfqp_arm_bits9_asm(const tfqp_word *window, const tfqp_word *f,
                            const uint32_t *start, int32_t count);
/* acc[c] += 17 * x_c, count in [1, 32] */
void tfqp_arm_counts_asm(const tfqp_arm_job *job, const tfqp_word *f, uint32_t *acc,
                         int32_t count);

/* the int8 outputs of channels up to the record flagged last (TFQP_OUT8) */
void tfqp_arm_out8_asm(const tfqp_arm_job *job, const tfqp_word *f, const uint32_t *records,
                       int8_t *out);

/* code addresses inside the kernels (Thumb code: entered with bit 0 set) */
extern const char tfqp_arm_bits_asm_skip[], tfqp_arm_bits_asm_tail1[],
    tfqp_arm_bits_asm_tail2[], tfqp_arm_bits_asm_g1[], tfqp_arm_bits_asm_g2[],
    tfqp_arm_bits_asm_end[];
extern const char tfqp_arm_counts_asm_skip[], tfqp_arm_counts_asm_tail1[],
    tfqp_arm_counts_asm_tail2[], tfqp_arm_counts_asm_g1[], tfqp_arm_counts_asm_g2[],
    tfqp_arm_counts_asm_end[];
extern const char tfqp_arm_out8_asm_skip[], tfqp_arm_out8_asm_tail1[], tfqp_arm_out8_asm_tail2[],
    tfqp_arm_out8_asm_g1[], tfqp_arm_out8_asm_g2[], tfqp_arm_out8_asm_end[];

typedef struct {
  const char *skip, *tail1, *tail2, *g1, *g2, *end;
} kernel_labels;

static const kernel_labels bits_labels = {
    tfqp_arm_bits_asm_skip, tfqp_arm_bits_asm_tail1, tfqp_arm_bits_asm_tail2,
    tfqp_arm_bits_asm_g1,   tfqp_arm_bits_asm_g2,    tfqp_arm_bits_asm_end};
static const kernel_labels counts_labels = {
    tfqp_arm_counts_asm_skip, tfqp_arm_counts_asm_tail1, tfqp_arm_counts_asm_tail2,
    tfqp_arm_counts_asm_g1,   tfqp_arm_counts_asm_g2,    tfqp_arm_counts_asm_end};
static const kernel_labels int8_labels = {
    tfqp_arm_out8_asm_skip, tfqp_arm_out8_asm_tail1, tfqp_arm_out8_asm_tail2,
    tfqp_arm_out8_asm_g1,   tfqp_arm_out8_asm_g2,    tfqp_arm_out8_asm_end};

/* The entry chain of a piece of `tail` words then `groups` groups. */
static void job_entries(tfqp_arm_job *job, const kernel_labels *k, int32_t tail,
                        int32_t groups, int32_t skip_bytes) {
  const uintptr_t group_bytes = (uintptr_t)(k->g2 - k->g1);
  job->groups_entry = ((uintptr_t)k->end - (uintptr_t)groups * group_bytes) | 1u;
  job->after_skip = tail == 0 ? job->groups_entry
                              : ((uintptr_t)(tail == 1 ? k->tail1 : k->tail2) | 1u);
  job->entry = skip_bytes == 0 ? job->after_skip : ((uintptr_t)k->skip | 1u);
  job->skip_bytes = skip_bytes;
}

__asm__(
    "  .syntax unified\n"
    "  .thumb\n"
    "  .text\n"
    /* one group: three window words (r0!) against three filter words (r1!),
     * added to `acc` (r12, or lr = 0 to start the count) into r12 */
    ".macro TFQP_GROUP acc=r12\n"
    "  ldmia r0!, {r4, r5, r6}\n"
    "  ldmia r1!, {r7, r8, r9}\n"
    "  eor   r7, r7, r4\n"
    "  eor   r8, r8, r5\n"
    "  eor   r9, r9, r6\n"
    "  and   r4, r7, #0xAAAAAAAA\n"
    "  sub   r7, r7, r4, lsr #1\n"
    "  and   r5, r8, #0xAAAAAAAA\n"
    "  sub   r8, r8, r5, lsr #1\n"
    "  and   r6, r9, #0xAAAAAAAA\n"
    "  sub   r9, r9, r6, lsr #1\n"
    "  and   r4, r10, r7, lsr #2\n"
    "  mls   r7, r4, r11, r7\n"
    "  and   r5, r10, r8, lsr #2\n"
    "  mls   r8, r5, r11, r8\n"
    "  and   r6, r10, r9, lsr #2\n"
    "  mls   r9, r6, r11, r9\n"
    "  add   r7, r7, r8\n"
    "  add   r7, r7, r9\n"
    "  ror   r8, r7, #4\n"
    "  usada8 r12, r7, lr, \\acc\n"
    "  usada8 r12, r8, lr, r12\n"
    ".endm\n"
    /* the int8 output of one channel from r12 = 17 x (see xnor_arm.h): loads
     * its record from r2!, stores the byte at r3!, and leaves Z clear after
     * the channel whose record carries the last-channel flag */
    ".macro TFQP_OUT8\n"
    "  ldmia r2!, {r0, r4-r9}\n"  /* B, W, M, M2, C low, C high, K */
    "  mls   r12, r4, r12, r0\n"  /* a = B - W * 17x = 2^left * acc */
    "  smlal r7, r8, r12, r5\n"   /* N = C + a M (+ a M2) */
    "  smlal r7, r8, r12, r6\n"
    "  lsr   r4, r12, #31\n"
    "  smlal r7, r8, r4, r9\n"    /* - 2^31 [a < 0] when K = INT32_MIN */
    "  ldr   r0, [r2], #4\n"      /* shift | flags */
    "  asr   r8, r8, r0\n"
    "  ssat  r8, #8, r8\n"
    "  strb  r8, [r3], #1\n"
    "  tst   r0, #256\n"
    ".endm\n"
    /* the popcount of r7 (one word, already XORed) into r12 */
    ".macro TFQP_WORD_TO_NIBBLES reg, tmp\n"
    "  and   \\tmp, \\reg, #0xAAAAAAAA\n"
    "  sub   \\reg, \\reg, \\tmp, lsr #1\n"
    "  and   \\tmp, r10, \\reg, lsr #2\n"
    "  mls   \\reg, \\tmp, r11, \\reg\n"
    ".endm\n"
    /* A kernel. mode 0: bits (returns them), mode 1: counts (acc[c] += 17 x),
     * mode 2: int8 outputs (r2 records, r3 output; see TFQP_OUT8).
     * Stack frame: [sp] window, [sp+4] channel entry, [sp+8] entry after the
     * skip, [sp+12] group entry, [sp+16] skip bytes. */
    ".macro TFQP_KERNEL name, mode\n"
    "  .global \\name\n"
    "  .type \\name, %function\n"
    "  .thumb_func\n"
    "\\name:\n"
    "  push  {r4-r11, lr}\n"
    "  sub   sp, sp, #20\n"
    "  ldmia r0, {r4-r8}\n" /* window, entry, after skip, groups entry, skip */
    "  stmia sp, {r4-r8}\n"
    "  .if \\mode != 2\n" /* sentinel above `count` result bits (mode 2: r3 output) */
    "  rsb   r3, r3, #32\n"
    "  movs  r4, #1\n"
    "  lsl   r3, r4, r3\n"
    "  .endif\n"
    "  mov   r10, #0x33333333\n"
    "  movs  r11, #3\n"
    "  mov   lr, #0\n"
    "  .balign 4\n"
    "\\name\\()_channel:\n"
    "  ldr   r0, [sp, #0]\n"
    "  .if \\mode == 0\n"
    "  ldr   r12, [r2], #4\n"
    "  .elseif \\mode == 1\n"
    "  ldr   r12, [r2]\n"
    "  .else\n"
    "  mov   r12, #0\n"
    "  .endif\n"
    "  ldr   pc, [sp, #4]\n"
    "  .balign 4\n"
    "  .global \\name\\()_skip\n"
    "\\name\\()_skip:\n"
    "  ldr   r4, [sp, #16]\n"
    "  add   r1, r1, r4\n"
    "  ldr   pc, [sp, #8]\n"
    "  .balign 4\n"
    "  .global \\name\\()_tail1\n"
    "\\name\\()_tail1:\n"
    "  ldr   r4, [r0], #4\n"
    "  ldr   r7, [r1], #4\n"
    "  eor   r7, r7, r4\n"
    "  TFQP_WORD_TO_NIBBLES r7, r4\n"
    "  ror   r8, r7, #4\n"
    "  usada8 r12, r7, lr, r12\n"
    "  usada8 r12, r8, lr, r12\n"
    "  ldr   pc, [sp, #12]\n"
    "  .balign 4\n"
    "  .global \\name\\()_tail2\n"
    "\\name\\()_tail2:\n"
    "  ldmia r0!, {r4, r5}\n"
    "  ldmia r1!, {r7, r8}\n"
    "  eor   r7, r7, r4\n"
    "  eor   r8, r8, r5\n"
    "  TFQP_WORD_TO_NIBBLES r7, r4\n"
    "  TFQP_WORD_TO_NIBBLES r8, r5\n"
    "  add   r7, r7, r8\n"
    "  ror   r8, r7, #4\n"
    "  usada8 r12, r7, lr, r12\n"
    "  usada8 r12, r8, lr, r12\n"
    "  ldr   pc, [sp, #12]\n"
    "  .balign 4\n"
    "  .global \\name\\()_g1\n"
    "\\name\\()_g1:\n"
    "  TFQP_GROUP\n"
    "  .global \\name\\()_g2\n"
    "\\name\\()_g2:\n"
    "  .rept 11\n" /* TFQP_ARM_GROUPS - 1 */
    "  TFQP_GROUP\n"
    "  .endr\n"
    "  .global \\name\\()_end\n"
    "\\name\\()_end:\n"
    "  .if \\mode == 0\n"
    "  cmp   r12, #0x80000000\n" /* C = the output bit */
    "  adcs  r3, r3, r3\n"       /* in at bit 0; C = the sentinel */
    "  bcc   \\name\\()_channel\n"
    "  mov   r0, r3\n"
    "  .elseif \\mode == 1\n"
    "  str   r12, [r2], #4\n"
    "  adds  r3, r3, r3\n"
    "  bcc   \\name\\()_channel\n"
    "  .else\n"
    "  TFQP_OUT8\n"
    "  beq   \\name\\()_channel\n"
    "  .endif\n"
    "  add   sp, sp, #20\n"
    "  pop   {r4-r11, pc}\n"
    "  .size \\name, . - \\name\n"
    ".endm\n"
    "  .balign 4\n"
    "  TFQP_KERNEL tfqp_arm_bits_asm, 0\n"
    "  .balign 4\n"
    "  TFQP_KERNEL tfqp_arm_counts_asm, 1\n"
    "  .balign 4\n"
    "  TFQP_KERNEL tfqp_arm_out8_asm, 2\n"
    /* Rows of exactly three groups (nine words: a 3x3 filter on 32 channels),
     * two channels per loop, no computed entry: the per-channel overhead is
     * 4.5 instructions instead of 6. count must be even. r0 = window. */
    "  .balign 4\n"
    "  .global tfqp_arm_bits9_asm\n"
    "  .type tfqp_arm_bits9_asm, %function\n"
    "  .thumb_func\n"
    "tfqp_arm_bits9_asm:\n"
    "  push  {r4-r11, lr}\n"
    "  sub   sp, sp, #4\n"
    "  str   r0, [sp]\n"
    "  rsb   r3, r3, #32\n"
    "  movs  r4, #1\n"
    "  lsl   r3, r4, r3\n"
    "  mov   r10, #0x33333333\n"
    "  movs  r11, #3\n"
    "  mov   lr, #0\n"
    "  .balign 4\n"
    "1:\n"
    "  ldr   r0, [sp]\n"
    "  ldr   r12, [r2], #4\n"
    "  TFQP_GROUP\n"
    "  TFQP_GROUP\n"
    "  TFQP_GROUP\n"
    "  cmp   r12, #0x80000000\n"
    "  adcs  r3, r3, r3\n"
    "  ldr   r0, [sp]\n"
    "  ldr   r12, [r2], #4\n"
    "  TFQP_GROUP\n"
    "  TFQP_GROUP\n"
    "  TFQP_GROUP\n"
    "  cmp   r12, #0x80000000\n"
    "  adcs  r3, r3, r3\n"
    "  bcc   1b\n"
    "  mov   r0, r3\n"
    "  add   sp, sp, #4\n"
    "  pop   {r4-r11, pc}\n"
    "  .size tfqp_arm_bits9_asm, . - tfqp_arm_bits9_asm\n"
    /* tfqp_arm_conv9_row_asm(job): a run of output pixels of a conv whose
     * window is three rows of three words (a 3x3 filter on <= 32 channels):
     * per pixel it gathers the window into col with LDM/STM, then
     * mode 0: counts 32 channels like tfqp_arm_bits9_asm and stores the
     *         output word (out advances by out stride);
     * mode 2 (tfqp_arm_conv9_out8_row_asm): every channel's count (the first
     *         group starts it from lr = 0) and TFQP_OUT8 with the pixel's
     *         records, the bytes of consecutive pixels consecutive.
     * Frame: the tfqp_arm_row9 job, copied. */
    ".macro TFQP_ROW9 name, mode\n"
    "  .balign 4\n"
    "  .global \\name\n"
    "  .type \\name, %function\n"
    "  .thumb_func\n"
    "\\name:\n"
    "  push  {r4-r11, lr}\n"
    "  sub   sp, sp, #36\n"
    "  ldmia r0, {r1-r9}\n"
    "  stmia sp, {r1-r9}\n" /* [sp]: col, pos, row stride, step, pixels, f, starts, out, out stride */
    "  mul   r5, r5, r9\n"     /* [sp+16]: pixels -> end of the output */
    "  add   r5, r5, r8\n"
    "  str   r5, [sp, #16]\n"
    "  mov   r10, #0x33333333\n"
    "  movs  r11, #3\n"
    "  mov   lr, #0\n"
    "  .balign 4\n"
    "1:\n" /* pixel */
    "  ldr   r0, [sp, #0]\n"
    "  ldr   r4, [sp, #4]\n"
    "  ldr   r12, [sp, #8]\n"
    "  ldmia r4, {r5, r6, r7}\n"
    "  stmia r0!, {r5, r6, r7}\n"
    "  add   r8, r4, r12\n"
    "  ldmia r8, {r5, r6, r7}\n"
    "  stmia r0!, {r5, r6, r7}\n"
    "  add   r8, r8, r12\n"
    "  ldmia r8, {r5, r6, r7}\n"
    "  stmia r0!, {r5, r6, r7}\n"
    "  ldr   r5, [sp, #12]\n"
    "  add   r4, r4, r5\n"
    "  str   r4, [sp, #4]\n"
    "  ldr   r1, [sp, #20]\n"
    "  ldr   r4, [sp, #24]\n"
    "  ldr   r2, [r4], #4\n"
    "  str   r4, [sp, #24]\n"
    "  .if \\mode == 0\n"
    "  movs  r3, #1\n" /* sentinel: 32 result bits */
    "2:\n" /* two channels */
    "  ldr   r0, [sp]\n"
    "  ldr   r12, [r2], #4\n"
    "  TFQP_GROUP\n"
    "  TFQP_GROUP\n"
    "  TFQP_GROUP\n"
    "  cmp   r12, #0x80000000\n"
    "  adcs  r3, r3, r3\n"
    "  ldr   r0, [sp]\n"
    "  ldr   r12, [r2], #4\n"
    "  TFQP_GROUP\n"
    "  TFQP_GROUP\n"
    "  TFQP_GROUP\n"
    "  cmp   r12, #0x80000000\n"
    "  adcs  r3, r3, r3\n"
    "  bcc   2b\n"
    "  rbit  r3, r3\n" /* channel 0 to bit 0 */
    "  ldr   r4, [sp, #28]\n"
    "  str   r3, [r4]\n"
    "  ldr   r5, [sp, #32]\n"
    "  add   r4, r4, r5\n"
    "  .else\n"
    "  ldr   r3, [sp, #28]\n"
    "2:\n" /* channel */
    "  ldr   r0, [sp]\n"
    "  TFQP_GROUP lr\n"
    "  TFQP_GROUP\n"
    "  TFQP_GROUP\n"
    "  TFQP_OUT8\n"
    "  beq   2b\n"
    "  mov   r4, r3\n"
    "  .endif\n"
    "  str   r4, [sp, #28]\n"
    "  ldr   r5, [sp, #16]\n"
    "  cmp   r4, r5\n"
    "  bne   1b\n"
    "  add   sp, sp, #36\n"
    "  pop   {r4-r11, pc}\n"
    "  .size \\name, . - \\name\n"
    ".endm\n"
    "  TFQP_ROW9 tfqp_arm_conv9_row_asm, 0\n"
    "  TFQP_ROW9 tfqp_arm_conv9_out8_row_asm, 2\n"
    /* tfqp_arm_gather(col, rows, kh, offset_bytes, run): for each of the kh
     * row pointers, copy `run` words from row + offset_bytes to col (col runs
     * on). Three words per LDM/STM pair, then the one or two left over. */
    "  .balign 4\n"
    "  .global tfqp_arm_gather\n"
    "  .type tfqp_arm_gather, %function\n"
    "  .thumb_func\n"
    "tfqp_arm_gather:\n"
    "  push  {r4-r8, lr}\n"
    "  ldr   r4, [sp, #24]\n"
    "1:\n"
    "  ldr   r5, [r1], #4\n"
    "  add   r5, r5, r3\n"
    "  subs  r6, r4, #3\n"
    "  blt   3f\n"
    "2:\n"
    "  ldmia r5!, {r7, r8, lr}\n"
    "  stmia r0!, {r7, r8, lr}\n"
    "  subs  r6, r6, #3\n"
    "  bge   2b\n"
    "3:\n"
    "  adds  r6, r6, #3\n"
    "  beq   5f\n"
    "4:\n"
    "  ldr   r7, [r5], #4\n"
    "  str   r7, [r0], #4\n"
    "  subs  r6, r6, #1\n"
    "  bne   4b\n"
    "5:\n"
    "  subs  r2, r2, #1\n"
    "  bne   1b\n"
    "  pop   {r4-r8, pc}\n"
    "  .size tfqp_arm_gather, . - tfqp_arm_gather\n"
    "  .purgem TFQP_GROUP\n"
    "  .purgem TFQP_ROW9\n"
    "  .purgem TFQP_OUT8\n"
    "  .purgem TFQP_WORD_TO_NIBBLES\n"
    "  .purgem TFQP_KERNEL\n");

uint32_t tfqp_arm_bit_start(int64_t threshold, int32_t taps, int32_t flip) {
  const int64_t limit = (int64_t)taps + 1;
  const int64_t u = threshold < 0 ? 0 : (threshold > limit ? limit : threshold);
  /* x >= u  <=>  2^31 - 17u + 17x >= 2^31;  x < u  <=>  2^32 - 17u + 17x >= 2^31
   * (it wraps below 2^31 from x = u on) */
  return flip ? (uint32_t)0u - (uint32_t)(17 * u) : 0x80000000u - (uint32_t)(17 * u);
}

/* floor(v / 2) */
static int64_t floor_half(int64_t v) { return v >= 0 ? v / 2 : -((1 - v) / 2); }

uint32_t tfqp_arm_packed_start(int32_t direction, int32_t threshold, int64_t e, int32_t taps) {
  if (direction > 0) return tfqp_arm_bit_start(floor_half(e - threshold) + 1, taps, 0);
  return tfqp_arm_bit_start(-floor_half(-(e + (int64_t)threshold)), taps, 1);
}

/* A row of n words in pieces: the first with the tail (n mod 3 words) and up
 * to TFQP_ARM_GROUPS groups, the others with up to TFQP_ARM_GROUPS groups. */
static int32_t piece_words(int32_t n, int32_t done, int32_t *tail, int32_t *groups) {
  const int32_t left = n - done;
  *tail = done == 0 ? left % 3 : 0;
  *groups = (left - *tail) / 3 < TFQP_ARM_GROUPS ? (left - *tail) / 3 : TFQP_ARM_GROUPS;
  return *tail + 3 * *groups;
}

/* The job of the piece starting at word `done`; returns the filter pointer to
 * pass (the kernel adds skip_bytes before every channel, so it starts that far
 * before the piece) through *f_piece. */
static int32_t piece_job(tfqp_arm_job *job, const kernel_labels *k, const tfqp_word *window,
                         const tfqp_word *f, int32_t n, int32_t done,
                         const tfqp_word **f_piece) {
  int32_t tail, groups;
  const int32_t words = piece_words(n, done, &tail, &groups);
  const int32_t skip = (int32_t)((n - words) * sizeof(tfqp_word));
  job_entries(job, k, tail, groups, skip);
  job->window = window + done;
  *f_piece = (const tfqp_word *)((uintptr_t)(f + done) - (uintptr_t)skip);
  return words;
}

uint32_t tfqp_arm_xor_bits(const tfqp_word *window, const tfqp_word *f, int32_t n,
                           const uint32_t *start, int32_t count) {
  tfqp_arm_job job;
  const tfqp_word *fp;
  uint32_t bits;
  if (n == 9 && count % 2 == 0) {
    bits = tfqp_arm_bits9_asm(window, f, start, count);
  } else if (n <= 3 * TFQP_ARM_GROUPS + 2) { /* one piece: the usual case */
    job.window = window;
    job_entries(&job, &bits_labels, n % 3, n / 3, 0);
    bits = tfqp_arm_bits_asm(&job, f, start, count);
  } else {
    uint32_t acc[32];
    int32_t done = 0, c;
    for (c = 0; c < count; ++c) acc[c] = start[c];
    for (;;) {
      int32_t tail, groups;
      if (done + piece_words(n, done, &tail, &groups) == n) break;
      done += piece_job(&job, &counts_labels, window, f, n, done, &fp);
      tfqp_arm_counts_asm(&job, fp, acc, count);
    }
    piece_job(&job, &bits_labels, window, f, n, done, &fp);
    bits = tfqp_arm_bits_asm(&job, fp, acc, count);
  }
  /* channel 0 came first and sits highest: reverse the bit order */
  __asm__("rbit %0, %1" : "=r"(bits) : "r"(bits));
  return bits >> (32 - count);
}

void tfqp_arm_xor_counts(const tfqp_word *window, const tfqp_word *f, int32_t n,
                         uint32_t *x, int32_t count) {
  int32_t first, c;
  for (first = 0; first < count; first += 32) {
    const int32_t block = count - first < 32 ? count - first : 32;
    const tfqp_word *fb = f + (size_t)first * n;
    tfqp_arm_job job;
    const tfqp_word *fp;
    int32_t done = 0;
    for (c = 0; c < block; ++c) x[first + c] = 0;
    while (done < n) {
      done += piece_job(&job, &counts_labels, window, fb, n, done, &fp);
      tfqp_arm_counts_asm(&job, fp, x + first, block);
    }
    /* 17 x -> x: exact division, multiplying by 17^-1 modulo 2^32 */
    for (c = 0; c < block; ++c) x[first + c] *= 0xF0F0F0F1u;
  }
}

int tfqp_arm_out8_record(uint32_t *record, int32_t wpn, int32_t multiplier, int32_t left,
                         int32_t right, int32_t zero_point, int64_t max_abs_acc, int32_t last) {
  const uint32_t flags = last ? TFQP_ARM_OUT8_LAST : 0u;
  int64_t magnitude, v_max, constant, product_max;
  uint32_t scale;
  int k;
  if (multiplier == INT32_MIN || left > 30 || max_abs_acc > (INT32_MAX >> left)) return 0;
  magnitude = multiplier < 0 ? -(int64_t)multiplier : multiplier;
  /* |a| <= 2^31 - 1: |a M| < 2^62 and |v| <= |a M| / 2^31 + 1 */
  product_max = (max_abs_acc << left) * magnitude;
  v_max = (product_max >> 31) + 1;
  for (k = 0; k < TFQP_ARM_OUT8_RECORD_WORDS; ++k) record[k] = 0;
  if (right > 0 && v_max + 1 <= ((int64_t)1 << (right - 1))) {
    /* 0 <= v - [v < 0] + 2^(e-1) < 2^e for every v: the output is the zero
     * point, N = zero_point * 2^32, shift 0 */
    record[5] = (uint32_t)zero_point;
    record[7] = flags;
    return 1;
  }
  /* e = 0: N = 2 (a M + 2^30 + zero_point 2^31), the output its high word;
   * e > 0: N = a M + 2^30 + 2^(30+e) + zero_point 2^(31+e) - 2^31 [a < 0],
   * the output its high word >> (e - 1). |N| < 2^63 for every a: */
  if (right > 24) return 0; /* (a record with v_max < 2^23 is constant above) */
  if (right == 0 && product_max > ((int64_t)1 << 62) - ((int64_t)1 << 40)) return 0;
  constant = right == 0 ? ((int64_t)1 << 31) + (int64_t)zero_point * ((int64_t)1 << 32)
                        : ((int64_t)1 << 30) + ((int64_t)1 << (30 + right)) +
                              (int64_t)zero_point * ((int64_t)1 << (31 + right));
  /* 2^left (base - wpn * x) = base * scale - (wpn * 17^-1 * scale) * 17x
   * modulo 2^32; a negative multiplier: the same product with a and M negated */
  scale = (uint32_t)1 << left;
  if (multiplier < 0) scale = 0u - scale;
  record[0] = scale;
  record[1] = (uint32_t)wpn * 0xF0F0F0F1u * scale;
  record[2] = (uint32_t)magnitude;
  record[3] = right == 0 ? (uint32_t)magnitude : 0u;
  record[4] = (uint32_t)((uint64_t)constant & 0xFFFFFFFFu);
  record[5] = (uint32_t)((uint64_t)constant >> 32);
  record[6] = right == 0 ? 0u : 0x80000000u;
  record[7] = (uint32_t)(right == 0 ? 0 : right - 1) | flags;
  return 1;
}

int64_t tfqp_arm_out8_max_abs_acc(const int32_t *transform_row, int32_t input_pos,
                                  int32_t input_neg, int32_t taps) {
  const int64_t w = transform_row[0] < 0 ? -(int64_t)transform_row[0] : transform_row[0];
  const int64_t bias = transform_row[1] < 0 ? -(int64_t)transform_row[1] : transform_row[1];
  const int64_t p = input_pos < 0 ? -(int64_t)input_pos : input_pos;
  const int64_t n = input_neg < 0 ? -(int64_t)input_neg : input_neg;
  return w * (p > n ? p : n) * taps + bias; /* validated: <= 2^31 - 1 */
}

int tfqp_arm_out8_records(uint32_t *records, const int32_t *table, int32_t cpad,
                          const int32_t *transform, const tfqp_binary_io *io, int32_t taps) {
  const int32_t cout = io->channels_out;
  int32_t co;
  for (co = 0; co < cout; ++co) {
    const int32_t *row = transform + (size_t)co * TFQP_TRANSFORM_INT8_COLUMNS;
    if (!tfqp_arm_out8_record(records + (size_t)co * TFQP_ARM_OUT8_RECORD_WORDS, table[co],
                              table[cpad + co], table[2 * cpad + co], table[3 * cpad + co],
                              io->output_zero_point,
                              tfqp_arm_out8_max_abs_acc(row, io->input_pos, io->input_neg, taps),
                              co == cout - 1)) {
      return 0;
    }
  }
  return 1;
}

void tfqp_arm_out8_place(uint32_t *records, const uint32_t *templates, const int32_t *base,
                         int32_t channels) {
  int32_t co;
  for (co = 0; co < channels; ++co) {
    /* word by word (records may be templates): the compiler pairs the moves */
    const uint32_t *t = templates + (size_t)co * TFQP_ARM_OUT8_RECORD_WORDS;
    uint32_t *r = records + (size_t)co * TFQP_ARM_OUT8_RECORD_WORDS;
    const uint32_t t1 = t[1], t2 = t[2], t3 = t[3], t4 = t[4], t5 = t[5], t6 = t[6], t7 = t[7];
    r[0] = (uint32_t)base[co] * t[0];
    r[1] = t1;
    r[2] = t2;
    r[3] = t3;
    r[4] = t4;
    r[5] = t5;
    r[6] = t6;
    r[7] = t7;
  }
}

void tfqp_arm_clamp_int8(int8_t *out, size_t count, int32_t act_min, int32_t act_max) {
  const uint32_t low = 0x01010101u * (uint8_t)act_min;
  const uint32_t high = 0x01010101u * (uint8_t)act_max;
  if (act_min == -128 && act_max == 127) return; /* SSAT did it */
  /* four bytes at once: SSUB8 sets each byte's GE flag, SEL picks by it */
  for (; count >= 4; count -= 4, out += 4) {
    uint32_t w, t;
    memcpy(&w, out, sizeof w);
    __asm__("ssub8 %0, %1, %2\n\tsel %0, %1, %2" : "=&r"(t) : "r"(w), "r"(low));
    __asm__("ssub8 %0, %2, %1\n\tsel %0, %1, %2" : "=&r"(w) : "r"(t), "r"(high));
    memcpy(out, &w, sizeof w);
  }
  for (; count > 0; --count, ++out) {
    if (*out < act_min) *out = (int8_t)act_min;
    if (*out > act_max) *out = (int8_t)act_max;
  }
}

void tfqp_arm_outputs(const tfqp_word *window, const tfqp_word *f, int32_t n,
                      const tfqp_binary_io *io, const int32_t *table, int32_t cpad,
                      const int32_t *base, const uint32_t *records, size_t pixel, uint32_t *x,
                      void *output) {
  const int32_t channels_out = io->channels_out;
  int32_t co;
  if (!io->output_packed && records != NULL && n <= 3 * TFQP_ARM_GROUPS + 2) {
    int8_t *out = (int8_t *)output + pixel * channels_out;
    tfqp_arm_job job;
    job.window = window;
    job_entries(&job, &int8_labels, n % 3, n / 3, 0);
    tfqp_arm_out8_asm(&job, f, records, out);
    tfqp_arm_clamp_int8(out, (size_t)channels_out, io->act_min, io->act_max);
    return;
  }
  if (io->output_packed) {
    tfqp_word *out = (tfqp_word *)output + pixel * io->output_words;
    for (co = 0; co < channels_out; co += 32) {
      out[TFQP_WORD_INDEX(co)] =
          tfqp_arm_xor_bits(window, f + (size_t)co * n, n, (const uint32_t *)base + co,
                            channels_out - co < 32 ? channels_out - co : 32);
    }
  } else {
    int8_t *out = (int8_t *)output + pixel * channels_out;
    tfqp_arm_xor_counts(window, f, n, x, channels_out);
    for (co = 0; co < channels_out; ++co) {
      out[co] = tfqp_arm_output_int8(base[co], table[co], x[co], table[cpad + co],
                                     table[2 * cpad + co], table[3 * cpad + co],
                                     io->output_zero_point, io->act_min, io->act_max);
    }
  }
}

#else
/* ISO C wants a declaration in every translation unit */
typedef int tfqp_arm_unused;
#endif /* TFQP_HAVE_ARM_DSP */
