/* Internal: the hooks through which the shift ops run an instruction set's
 * fast path (shift_arm.c: Cortex-M with the DSP extension; shift_avx2.c:
 * x86-64 AVX2), selected at compile time like the binary ops' paths
 * (xnor_popcount.h, xnor_arm.h). Every fast path gives the portable path's
 * bytes exactly (make -C micro test compares the digests of all host paths,
 * tests/test_cortex_m.py runs the C tests with the Cortex-M path).
 *
 *   tfqp_shift_fast_table_bytes    bytes the path adds at the end of the
 *                                  op's table (prepare adds them)
 *   tfqp_shift_fast_conv2d_scratch_bytes / _fully_connected_scratch_bytes
 *                                  scratch the path needs (prepare takes the
 *                                  larger of this and the portable scratch;
 *                                  0: the path declines the layer)
 *   tfqp_shift_fast_init_table     fills that region once the portable table
 *                                  is filled and validated
 *   tfqp_shift_fast_conv2d /       the whole eval of a convolution (depthwise
 *   tfqp_shift_fast_fully_connected or not) / fully-connected op; 0 when the
 *                                  path does not take this layer, and the
 *                                  portable eval runs instead
 * Without a fast path (TFQP_PORTABLE, other targets) the hooks are inline
 * no-ops.
 */
#ifndef TFQP_KERNELS_SHIFT_FAST_H_
#define TFQP_KERNELS_SHIFT_FAST_H_

#include <stddef.h>
#include <stdint.h>

#include "tfqp/formats.h"
#include "tfqp/shift_conv2d.h"
#include "tfqp/shift_fully_connected.h"
#include "tfqp/shift_layer.h"
#include "xnor_arm.h"
#include "xnor_popcount.h"

#if TFQP_HAVE_ARM_DSP || TFQP_HAVE_AVX2
#define TFQP_SHIFT_HAVE_FAST 1
#else
#define TFQP_SHIFT_HAVE_FAST 0
#endif

#if TFQP_SHIFT_HAVE_FAST

size_t tfqp_shift_fast_table_bytes(const tfqp_shift_layer *layer);

/* params: everything up to the scratch size filled by prepare. */
size_t tfqp_shift_fast_conv2d_scratch_bytes(const tfqp_shift_conv2d_params *params,
                                            int depthwise);
size_t tfqp_shift_fast_fully_connected_scratch_bytes(
    const tfqp_shift_fully_connected_params *params);

/* table: the whole op table (layer->table_bytes), portable part filled;
 * code_lists: a fully-connected op's checked live-code lists (formats.h) or
 * NULL. */
void tfqp_shift_fast_init_table(const tfqp_shift_layer *layer, const tfqp_word *codes,
                                const int32_t *transform, const int32_t *code_lists,
                                int32_t *table);

/* transform: the op's constant transform (the codes output's rows). */
int tfqp_shift_fast_conv2d(const tfqp_shift_conv2d_params *params, int depthwise,
                           const int32_t *table, const int32_t *transform, const int8_t *input,
                           const tfqp_word *codes, void *scratch, void *output);

int tfqp_shift_fast_fully_connected(const tfqp_shift_fully_connected_params *params,
                                    const int32_t *table, const int32_t *transform,
                                    const int8_t *input, const tfqp_word *codes,
                                    const int32_t *code_lists, void *scratch, void *output);

#else

static inline size_t tfqp_shift_fast_table_bytes(const tfqp_shift_layer *layer) {
  (void)layer;
  return 0;
}

static inline size_t tfqp_shift_fast_conv2d_scratch_bytes(
    const tfqp_shift_conv2d_params *params, int depthwise) {
  (void)params;
  (void)depthwise;
  return 0;
}

static inline size_t tfqp_shift_fast_fully_connected_scratch_bytes(
    const tfqp_shift_fully_connected_params *params) {
  (void)params;
  return 0;
}

static inline void tfqp_shift_fast_init_table(const tfqp_shift_layer *layer,
                                              const tfqp_word *codes, const int32_t *transform,
                                              const int32_t *code_lists, int32_t *table) {
  (void)layer;
  (void)codes;
  (void)transform;
  (void)code_lists;
  (void)table;
}

static inline int tfqp_shift_fast_conv2d(const tfqp_shift_conv2d_params *params, int depthwise,
                                         const int32_t *table, const int32_t *transform,
                                         const int8_t *input, const tfqp_word *codes,
                                         void *scratch, void *output) {
  (void)params;
  (void)depthwise;
  (void)table;
  (void)transform;
  (void)input;
  (void)codes;
  (void)scratch;
  (void)output;
  return 0;
}

static inline int tfqp_shift_fast_fully_connected(
    const tfqp_shift_fully_connected_params *params, const int32_t *table,
    const int32_t *transform, const int8_t *input, const tfqp_word *codes,
    const int32_t *code_lists, void *scratch, void *output) {
  (void)params;
  (void)table;
  (void)transform;
  (void)input;
  (void)codes;
  (void)code_lists;
  (void)scratch;
  (void)output;
  return 0;
}

#endif /* TFQP_SHIFT_HAVE_FAST */

#endif /* TFQP_KERNELS_SHIFT_FAST_H_ */
