/* TFQP_BMAXPOOL2D: max-pool on bit-packed tensors.
 *
 * Tensors: input 0 packed int32 [N, H, W, ceil(C/32)], output 0 packed int32
 * [N, OH, OW, ceil(C/32)].
 * Custom options (FlexBuffers map of integers): channels, filter_height,
 * filter_width, stride_height, stride_width (all >= 1), padding (0 = SAME,
 * 1 = VALID). Unknown or duplicate keys are rejected.
 *
 * The max of values in {+1, -1} is -1 only if all are -1: the output bit is the
 * AND of the input bits over the window's in-image positions (TFLite's max
 * pool ignores padded positions; with its padding every window has at least
 * one). Output padding bits are 0.
 */
#ifndef TFQP_BMAXPOOL2D_H_
#define TFQP_BMAXPOOL2D_H_

#include <stddef.h>
#include <stdint.h>

#include "tfqp/formats.h"
#include "tfqp/geometry.h"
#include "tfqp/status.h"
#include "tfqp/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

enum {
  TFQP_BMAXPOOL2D_CHANNELS = 1u << 0,
  TFQP_BMAXPOOL2D_FILTER_HEIGHT = 1u << 1,
  TFQP_BMAXPOOL2D_FILTER_WIDTH = 1u << 2,
  TFQP_BMAXPOOL2D_STRIDE_HEIGHT = 1u << 3,
  TFQP_BMAXPOOL2D_STRIDE_WIDTH = 1u << 4,
  TFQP_BMAXPOOL2D_PADDING = 1u << 5,
  TFQP_BMAXPOOL2D_REQUIRED = (1u << 6) - 1u
};

typedef struct {
  int32_t channels;
  int32_t filter_height;
  int32_t filter_width;
  int32_t stride_height;
  int32_t stride_width;
  int32_t padding;
  uint32_t present;
} tfqp_bmaxpool2d_options;

typedef struct {
  int32_t batch;
  int32_t channels;
  int32_t words;
  tfqp_window_axis rows;
  tfqp_window_axis cols;
  uint32_t last_word_mask;
} tfqp_bmaxpool2d_params;

tfqp_status tfqp_bmaxpool2d_parse_options(const uint8_t *buffer, size_t length,
                                          tfqp_bmaxpool2d_options *options,
                                          tfqp_error *error);

/* Output dims [N, OH, OW, ceil(C/32)]. */
tfqp_status tfqp_bmaxpool2d_output_dims(const tfqp_bmaxpool2d_options *options,
                                        const tfqp_tensor *input, int32_t dims[4],
                                        tfqp_error *error);

tfqp_status tfqp_bmaxpool2d_prepare(const tfqp_bmaxpool2d_options *options,
                                    const tfqp_tensor *input,
                                    const tfqp_tensor *output,
                                    tfqp_bmaxpool2d_params *params,
                                    tfqp_error *error);

void tfqp_bmaxpool2d_eval(const tfqp_bmaxpool2d_params *params,
                          const tfqp_word *input, tfqp_word *output);

#ifdef __cplusplus
}
#endif

#endif /* TFQP_BMAXPOOL2D_H_ */
