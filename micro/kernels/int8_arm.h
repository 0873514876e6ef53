/* Internal: the Cortex-M (Thumb-2 with the DSP extension) path of
 * TFQP_CONV2D_INT8 and TFQP_FULLY_CONNECTED_INT8, selected at compile time like
 * xnor_arm.h (TFQP_HAVE_ARM_DSP; -DTFQP_PORTABLE keeps the portable path). Its
 * outputs equal the portable path's bit for bit (see int8_arm.c for why).
 *
 * The ops' op-table rows call it: prepare asks for the extra table and scratch
 * bytes below, init_table fills the table extension after the portable table,
 * eval runs these kernels instead of the portable ones. Builds without the DSP
 * extension ask for 0 bytes and never call the rest.
 *
 * Table extension (int32 words, after the portable table's words):
 *   packed output: flip[ceil(Cout / 32)], then the records;
 *   value and codes outputs ("accumulate": the kernels give each channel's
 *   accumulator, the portable output functions finish it): the records.
 * A channel's weights are P int16 pairs (tap 2i in the low half, 2i+1 in the
 * high half, taps past K zero), P = ceil(K / 2), rounded up to a multiple of 4
 * above 5. Windows of P <= 5: one record per channel, (start, P pairs, T),
 * start 2^31 (packed) or 0 (values). Longer windows: channels in pairs (an odd
 * Cout gets a zero channel), per pair for each block of four weight pairs the
 * even channel's four then the odd one's, then the two Ts. T (packed): the
 * unsigned threshold of the bit's comparison (int8_arm.c); 0 when accumulating.
 * Scratch: the window of one output as P int16 pairs, then (conv) the offset of
 * each tap in the input (int32, K rounded up to even), then one accumulator
 * per record (accumulating).
 */
#ifndef TFQP_KERNELS_INT8_ARM_H_
#define TFQP_KERNELS_INT8_ARM_H_

#include <stddef.h>
#include <stdint.h>

#include "tfqp/conv2d_int8.h"
#include "tfqp/fully_connected_int8.h"
#include "tfqp/status.h"
#include "xnor_arm.h" /* TFQP_HAVE_ARM_DSP */

#if TFQP_HAVE_ARM_DSP

/* Extra table bytes of an op with `taps` (K) taps per output channel;
 * `accumulate`: the value or the codes output (no packed bits). */
size_t tfqp_arm_int8_table_bytes(int32_t accumulate, int32_t channels_out, int32_t taps);

/* Scratch bytes of the op: one output's window, with `gathered` (conv) the
 * taps' offsets in the input, and one accumulator per channel. */
size_t tfqp_arm_int8_scratch_bytes(int32_t taps, int32_t channels_out, int32_t gathered);

/* Fills the extension at table + portable_bytes from the weights (checked by
 * the portable init_table first) and the portable table; table_bytes is what
 * the caller allocated. */
tfqp_status tfqp_arm_int8_init_table(int32_t accumulate, const void *weights,
                                     int32_t weights_int16, int32_t channels_out,
                                     int32_t taps, int32_t *table, size_t table_bytes,
                                     size_t portable_bytes, tfqp_error *error);

/* transform: the op's constant transform (the codes output reads its rows). */
void tfqp_arm_conv2d_int8_eval(const tfqp_conv2d_int8_params *p, const int32_t *table,
                               const int32_t *transform, const int8_t *input, void *output,
                               void *scratch);

void tfqp_arm_fully_connected_int8_eval(const tfqp_fully_connected_int8_params *p,
                                        const int32_t *table, const int32_t *transform,
                                        const int8_t *input, void *output, void *scratch);

#else

static inline size_t tfqp_arm_int8_table_bytes(int32_t accumulate, int32_t channels_out,
                                               int32_t taps) {
  (void)accumulate;
  (void)channels_out;
  (void)taps;
  return 0;
}

static inline size_t tfqp_arm_int8_scratch_bytes(int32_t taps, int32_t channels_out,
                                                 int32_t gathered) {
  (void)taps;
  (void)channels_out;
  (void)gathered;
  return 0;
}

static inline tfqp_status tfqp_arm_int8_init_table(int32_t accumulate, const void *weights,
                                                   int32_t weights_int16, int32_t channels_out,
                                                   int32_t taps, int32_t *table,
                                                   size_t table_bytes, size_t portable_bytes,
                                                   tfqp_error *error) {
  (void)accumulate;
  (void)weights;
  (void)weights_int16;
  (void)channels_out;
  (void)taps;
  (void)table;
  (void)table_bytes;
  (void)portable_bytes;
  (void)error;
  return TFQP_OK;
}

#endif /* TFQP_HAVE_ARM_DSP */

#endif /* TFQP_KERNELS_INT8_ARM_H_ */
