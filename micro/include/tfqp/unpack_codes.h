/* TFQP_UNPACK_CODES: packed k-bit activations as the int8 values a builtin op
 * reads (formats.h, "Packed k-bit activations").
 *
 * Tensors
 *   input 0   packed int32 [..., ceil(C / P)], P = 32 / bits (padding codes
 *             ignored)
 *   output 0  int8 [..., C], the input's other dims unchanged, zero point
 *             zp_out: q = zp_out + (u - code_zero) for code u, i.e. the value
 *             (u - code_zero) * scale on the output's scale (the grid's step)
 *
 * Custom options (FlexBuffers map of integers): channels (C >= 1), bits (2 or
 * 4), code_zero (optional, default 0; in [0, 2^bits)). prepare checks that
 * every code's q lies in [-128, 127]. Unknown or duplicate keys are rejected.
 *
 * No table, no scratch.
 */
#ifndef TFQP_UNPACK_CODES_H_
#define TFQP_UNPACK_CODES_H_

#include <stddef.h>
#include <stdint.h>

#include "tfqp/formats.h"
#include "tfqp/status.h"
#include "tfqp/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

enum { TFQP_UNPACK_CODES_REQUIRED = (1u << 2) - 1u, TFQP_UNPACK_CODES_ZERO = 1u << 2 };

typedef struct {
  int32_t channels;
  int32_t bits;
  int32_t code_zero; /* 0 when not given */
  uint32_t present;
} tfqp_unpack_codes_options;

typedef struct {
  int32_t pixels;   /* output elements / C */
  int32_t channels; /* C */
  int32_t bits;
  int32_t offset;   /* zp_out - code_zero: q = u + offset */
} tfqp_unpack_codes_params;

tfqp_status tfqp_unpack_codes_parse_options(const uint8_t *buffer, size_t length,
                                            tfqp_unpack_codes_options *options,
                                            tfqp_error *error);

/* Output rank (the input's) and dims [..., channels]. */
tfqp_status tfqp_unpack_codes_output_dims(const tfqp_unpack_codes_options *options,
                                          const tfqp_tensor *input, int32_t *rank,
                                          int32_t dims[TFQP_MAX_RANK], tfqp_error *error);

tfqp_status tfqp_unpack_codes_prepare(const tfqp_unpack_codes_options *options,
                                      const tfqp_tensor *input, const tfqp_tensor *output,
                                      tfqp_unpack_codes_params *params, tfqp_error *error);

void tfqp_unpack_codes_eval(const tfqp_unpack_codes_params *params, const tfqp_word *input,
                            int8_t *output);

#ifdef __cplusplus
}
#endif

#endif /* TFQP_UNPACK_CODES_H_ */
