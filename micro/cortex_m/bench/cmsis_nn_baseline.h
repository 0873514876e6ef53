/* CMSIS-NN's own int8 kernels as baselines of the instruction-count benchmark
 * (benchmark only). CMSIS-NN is not part of this repository: the image links
 * them only when it is built with CMSIS_NN=<CMSIS-NN source tree> (see the
 * Makefile and README "Microcontroller"); without it these functions return
 * BENCH_CMSIS_NN_MISSING and the benchmark does not list the rows.
 *
 * The parameters are the int8 baselines' (int8_baseline.h, TFLite's int8
 * semantics); each function fills CMSIS-NN's structs and makes the one call
 * TFLite Micro's CMSIS-NN kernels make: arm_convolve_wrapper_s8,
 * arm_depthwise_conv_wrapper_s8, arm_fully_connected_s8 (per-tensor
 * requantization: multiplier[0], shift[0]). Batch 1.
 *
 * The _s4 functions run CMSIS-NN's int4-weight kernels (arm_convolve_wrapper_s4,
 * arm_fully_connected_s4: TFLite's INT4 filters) on the same parameters; their
 * filter is the packed int4 one: the OHWI (conv) or [Cout, Cin] (fully connected)
 * weights flattened, two per byte, even element in the low nibble (TFLite's
 * packing; a row may end inside a byte).
 */
#ifndef TFQP_BENCH_CMSIS_NN_BASELINE_H_
#define TFQP_BENCH_CMSIS_NN_BASELINE_H_

#include <stdint.h>

#include "int8_baseline.h"

#define BENCH_CMSIS_NN_OK 0
#define BENCH_CMSIS_NN_MISSING 1 /* the image was built without CMSIS_NN */
#define BENCH_CMSIS_NN_FAILED 2  /* CMSIS-NN returned an error, or scratch too small */

/* scratch: at least scratch_bytes; the functions check CMSIS-NN's own size. */
int32_t bench_cmsis_nn_conv2d(const bench_int8_conv_params *p, const int8_t *input,
                              const int8_t *filter, const int32_t *bias,
                              const int32_t *multiplier, const int32_t *shift,
                              int8_t *output, void *scratch, int32_t scratch_bytes);

int32_t bench_cmsis_nn_depthwise_conv2d(const bench_int8_conv_params *p, const int8_t *input,
                                        const int8_t *filter, const int32_t *bias,
                                        const int32_t *multiplier, const int32_t *shift,
                                        int8_t *output, void *scratch, int32_t scratch_bytes);

int32_t bench_cmsis_nn_fully_connected(const bench_int8_conv_params *p, const int8_t *input,
                                       const int8_t *weights, const int32_t *bias,
                                       const int32_t *multiplier, const int32_t *shift,
                                       int8_t *output, void *scratch, int32_t scratch_bytes);

int32_t bench_cmsis_nn_conv2d_s4(const bench_int8_conv_params *p, const int8_t *input,
                                 const int8_t *filter, const int32_t *bias,
                                 const int32_t *multiplier, const int32_t *shift,
                                 int8_t *output, void *scratch, int32_t scratch_bytes);

int32_t bench_cmsis_nn_fully_connected_s4(const bench_int8_conv_params *p, const int8_t *input,
                                          const int8_t *weights, const int32_t *bias,
                                          const int32_t *multiplier, const int32_t *shift,
                                          int8_t *output, void *scratch, int32_t scratch_bytes);

#endif /* TFQP_BENCH_CMSIS_NN_BASELINE_H_ */
