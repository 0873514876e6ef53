/* TFQP_UNPACK: packed signs as the int8 codes of +1 / -1 a builtin op reads.
 *
 * Tensors
 *   input 0   packed int32 [..., G * ceil(group/32)] (formats.h; padding bits
 *             ignored): G = C / group groups of `group` channels, each packed
 *             on its own words (a flatten of packed pixels keeps each pixel's
 *             words: group = the pixel's channels)
 *   output 0  int8 [..., C], the input's other dims unchanged: bit 0 -> positive,
 *             bit 1 -> negative
 *
 * Custom options (FlexBuffers map of integers): channels (C >= 1), positive and
 * negative (int8 codes in [-128, 127]: the output tensor's quantization of +1
 * and -1, e.g. 127 and -127 for scale 1/127), group (optional, default C; must
 * divide C). Unknown or duplicate keys are rejected.
 *
 * No table, no scratch. A deploy model writes with it the stock model's int8
 * +-1 tensor that builtin layers on binarized inputs read (a layer with a float
 * kernel on signs), from the exact packed signs.
 */
#ifndef TFQP_UNPACK_H_
#define TFQP_UNPACK_H_

#include <stddef.h>
#include <stdint.h>

#include "tfqp/formats.h"
#include "tfqp/status.h"
#include "tfqp/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

enum { TFQP_UNPACK_REQUIRED = (1u << 3) - 1u, TFQP_UNPACK_GROUP = 1u << 3 };

typedef struct {
  int32_t channels;
  int32_t positive;
  int32_t negative;
  int32_t group; /* channels per packed group (0: not given, = channels) */
  uint32_t present;
} tfqp_unpack_options;

typedef struct {
  int32_t pixels;   /* elements of the output / group */
  int32_t channels; /* group */
  int8_t positive;
  int8_t negative;
} tfqp_unpack_params;

tfqp_status tfqp_unpack_parse_options(const uint8_t *buffer, size_t length,
                                      tfqp_unpack_options *options, tfqp_error *error);

/* Output rank (the input's) and dims [..., channels]. */
tfqp_status tfqp_unpack_output_dims(const tfqp_unpack_options *options, const tfqp_tensor *input,
                                    int32_t *rank, int32_t dims[TFQP_MAX_RANK],
                                    tfqp_error *error);

tfqp_status tfqp_unpack_prepare(const tfqp_unpack_options *options, const tfqp_tensor *input,
                                const tfqp_tensor *output, tfqp_unpack_params *params,
                                tfqp_error *error);

void tfqp_unpack_eval(const tfqp_unpack_params *params, const tfqp_word *input, int8_t *output);

#ifdef __cplusplus
}
#endif

#endif /* TFQP_UNPACK_H_ */
