/* Internal: the Cortex-M (Thumb-2 with the DSP extension) path of
 * TFQP_SHIFT_FULLY_CONNECTED on packed k-bit activations (kbit_arm.c),
 * giving the portable path's bytes exactly.
 *
 *   tfqp_kbit_arm_fully_connected   the whole compute of a batch-1 layer
 *                                   whose input is packed 2- or 4-bit codes
 *                                   and whose 2- or 4-bit weights are a
 *                                   uniform grid (see kbit_arm.c); 0 when it
 *                                   does not take the layer (the op then
 *                                   unpacks the input and runs the shift
 *                                   path, shift_fast.h)
 *
 * The op's eval (shift_fully_connected.c) calls it with the packed input and
 * the output the op writes (tfqp_kbit_output: the codes scratch of a packed
 * output); it reads no unpacked input, so its own scratch is everything
 * before the codes (params->kbit.output_at bytes). Without the DSP extension
 * (TFQP_PORTABLE, other targets) it is an inline 0.
 */
#ifndef TFQP_KERNELS_KBIT_ARM_H_
#define TFQP_KERNELS_KBIT_ARM_H_

#include <stdint.h>

#include "tfqp/formats.h"
#include "tfqp/shift_fully_connected.h"
#include "xnor_arm.h"

#if TFQP_HAVE_ARM_DSP

int tfqp_kbit_arm_fully_connected(const tfqp_shift_fully_connected_params *params,
                                  const int32_t *table, const int32_t *transform,
                                  const tfqp_word *input, const tfqp_word *codes,
                                  void *scratch, void *output);

#else

static inline int tfqp_kbit_arm_fully_connected(const tfqp_shift_fully_connected_params *params,
                                                const int32_t *table, const int32_t *transform,
                                                const tfqp_word *input, const tfqp_word *codes,
                                                void *scratch, void *output) {
  (void)params;
  (void)transform;
  (void)table;
  (void)input;
  (void)codes;
  (void)scratch;
  (void)output;
  return 0;
}

#endif /* TFQP_HAVE_ARM_DSP */

#endif /* TFQP_KERNELS_KBIT_ARM_H_ */
