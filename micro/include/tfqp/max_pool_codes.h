/* TFQP_MAX_POOL_CODES: max-pool on packed k-bit activation codes (formats.h,
 * "Packed k-bit activations").
 *
 * Tensors
 *   input 0   packed int32 [N, H, W, ceil(C / P)], P = 32 / bits
 *   output 0  packed int32 [N, OH, OW, ceil(C / P)], the same width
 *
 * Custom options (FlexBuffers map of integers): channels (C >= 1), bits (2 or
 * 4), filter_height, filter_width, stride_height, stride_width (all >= 1),
 * padding (0 = SAME, 1 = VALID): TFLite MAX_POOL_2D's geometry. Unknown or
 * duplicate keys are rejected.
 *
 * Output code c of a pixel = the max of code c over the window's in-image
 * positions (TFLite's max pool ignores padded positions; with its padding
 * every window has at least one). Exact for the tensor's values: a consumer
 * reads a code u as (u - code_zero) * step, increasing in u, so the max of the
 * codes is the code of the max value, whatever the grid's code_zero (signed
 * or unsigned). The output's padding codes are 0 (the input's are 0 too, but
 * the kernel writes 0 whatever they hold).
 *
 * Paths: portable C only. The op is byte-oriented and costs a few compares per
 * code against the convolution's K multiply-adds per code, so no x86 or
 * Cortex-M path (tfqp_max_pool_codes_eval is the one kernel every build runs;
 * the Cortex-M qemu vectors check its bytes there).
 *
 * No table, no scratch.
 */
#ifndef TFQP_MAX_POOL_CODES_H_
#define TFQP_MAX_POOL_CODES_H_

#include <stddef.h>
#include <stdint.h>

#include "tfqp/formats.h"
#include "tfqp/geometry.h"
#include "tfqp/status.h"
#include "tfqp/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

enum { TFQP_MAX_POOL_CODES_REQUIRED = (1u << 7) - 1u };

typedef struct {
  int32_t channels;
  int32_t bits;
  int32_t filter_height;
  int32_t filter_width;
  int32_t stride_height;
  int32_t stride_width;
  int32_t padding;
  uint32_t present;
} tfqp_max_pool_codes_options;

typedef struct {
  int32_t batch;
  int32_t bits;
  int32_t words;          /* per pixel: ceil(C / P) */
  tfqp_window_axis rows;
  tfqp_window_axis cols;
  tfqp_word last_word_mask; /* the codes of channels < C in a pixel's last word */
} tfqp_max_pool_codes_params;

tfqp_status tfqp_max_pool_codes_parse_options(const uint8_t *buffer, size_t length,
                                              tfqp_max_pool_codes_options *options,
                                              tfqp_error *error);

/* Output dims [N, OH, OW, ceil(C / P)]. */
tfqp_status tfqp_max_pool_codes_output_dims(const tfqp_max_pool_codes_options *options,
                                            const tfqp_tensor *input, int32_t dims[4],
                                            tfqp_error *error);

tfqp_status tfqp_max_pool_codes_prepare(const tfqp_max_pool_codes_options *options,
                                        const tfqp_tensor *input, const tfqp_tensor *output,
                                        tfqp_max_pool_codes_params *params, tfqp_error *error);

void tfqp_max_pool_codes_eval(const tfqp_max_pool_codes_params *params, const tfqp_word *input,
                              tfqp_word *output);

#ifdef __cplusplus
}
#endif

#endif /* TFQP_MAX_POOL_CODES_H_ */
