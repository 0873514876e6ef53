/* TFQP_BMAXPOOL2D: max-pool on bit-packed tensors.
 *
 * Tensors: input 0 packed int32 [N, H, W, ceil(C/32)]; optional input 1
 * `or_mask`, a constant packed int32 [ceil(C/32)] (formats.h, padding bits 0,
 * checked by init_table); output 0 packed int32 [N, OH, OW, ceil(C/32)].
 * Custom options (FlexBuffers map of integers): channels, filter_height,
 * filter_width, stride_height, stride_width (all >= 1), padding (0 = SAME,
 * 1 = VALID). Unknown or duplicate keys are rejected.
 *
 * The max of values in {+1, -1} is -1 only if all are -1: the output bit is the
 * AND of the input bits over the window's in-image positions (TFLite's max
 * pool ignores padded positions; with its padding every window has at least
 * one). Channels whose or_mask bit is 1 take the OR of the window's bits
 * instead: the output of a max-pool followed by a decreasing per-channel
 * function (its sign flips), i.e. a min-pool of the values. Output padding bits
 * are 0.
 *
 * Use: parse_options, prepare (without a mask) or prepare_or_mask, then with a
 * mask init_table (a table of params.table_bytes bytes: the mask's words),
 * then eval (eval_or_mask with the table).
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
  int32_t or_mask;    /* input 1 given: eval reads its words from the table */
  size_t table_bytes; /* or_mask: words * 4; else 0 */
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

/* prepare with input 1 (`or_mask` NULL: none): [ceil(C/32)] int32. */
tfqp_status tfqp_bmaxpool2d_prepare_or_mask(const tfqp_bmaxpool2d_options *options,
                                            const tfqp_tensor *input,
                                            const tfqp_tensor *or_mask,
                                            const tfqp_tensor *output,
                                            tfqp_bmaxpool2d_params *params,
                                            tfqp_error *error);

/* Checks the mask's padding bits (0) and copies its words into the table. */
tfqp_status tfqp_bmaxpool2d_init_table(const tfqp_bmaxpool2d_params *params,
                                       const tfqp_word *or_mask, int32_t *table,
                                       size_t table_bytes, tfqp_error *error);

/* Without a mask (params.or_mask 0). */
void tfqp_bmaxpool2d_eval(const tfqp_bmaxpool2d_params *params,
                          const tfqp_word *input, tfqp_word *output);

/* Any params: table is init_table's (NULL without a mask). */
void tfqp_bmaxpool2d_eval_or_mask(const tfqp_bmaxpool2d_params *params, const int32_t *table,
                                  const tfqp_word *input, tfqp_word *output);

#ifdef __cplusplus
}
#endif

#endif /* TFQP_BMAXPOOL2D_H_ */
