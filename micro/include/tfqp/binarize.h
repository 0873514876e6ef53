/* TFQP_BINARIZE: signs of an int8 or int32 tensor as packed bits.
 *
 * Tensors
 *   input 0   int8 [..., C] (bit = 1 iff q < input zero point) or int32 values
 *             [..., C] (bit = 1 iff v < 0); rank 1 to TFQP_MAX_RANK
 *   output 0  packed int32 [..., ceil(C/32)] (formats.h: padding bits 0), the
 *             input's other dims unchanged
 *
 * Custom options: none. An empty buffer (no options) or an empty FlexBuffers
 * map is accepted; any key is rejected as unknown.
 *
 * No table, no scratch. The int8 path is tfqp_pack_int8 (with its vector and
 * Cortex-M paths).
 */
#ifndef TFQP_BINARIZE_H_
#define TFQP_BINARIZE_H_

#include <stddef.h>
#include <stdint.h>

#include "tfqp/formats.h"
#include "tfqp/status.h"
#include "tfqp/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
  uint32_t present; /* no option keys: always 0 */
} tfqp_binarize_options;

typedef struct {
  int32_t pixels;     /* elements / C */
  int32_t channels;   /* C */
  int32_t int32_input; /* int32 values, else int8 */
  int32_t zero_point; /* int8 input */
} tfqp_binarize_params;

tfqp_status tfqp_binarize_parse_options(const uint8_t *buffer, size_t length,
                                        tfqp_binarize_options *options, tfqp_error *error);

/* Output rank (the input's) and dims. */
tfqp_status tfqp_binarize_output_dims(const tfqp_tensor *input, int32_t *rank,
                                      int32_t dims[TFQP_MAX_RANK], tfqp_error *error);

tfqp_status tfqp_binarize_prepare(const tfqp_tensor *input, const tfqp_tensor *output,
                                  tfqp_binarize_params *params, tfqp_error *error);

void tfqp_binarize_eval(const tfqp_binarize_params *params, const void *input,
                        tfqp_word *output);

#ifdef __cplusplus
}
#endif

#endif /* TFQP_BINARIZE_H_ */
