/* TFQP_SHIFT_DEPTHWISE_CONV2D: depthwise 2-D convolution of int8 activations
 * with coded weights, int8 or packed sign output.
 *
 * Tensors (tfqp/shift_layer.h for what every shift op shares)
 *   input 0   int8 [N, H, W, Cin], per-tensor zero point zp_in
 *   input 1   constant codes INT32 [Cout, W_row], Cout = Cin * depth_multiplier:
 *             row co holds the codes of output channel co's filter in (ky, kx)
 *             order, K = KH*KW taps, T codes per tap (formats.h)
 *   input 2   constant code table INT16 [C, 2^b]
 *   input 3   constant transform INT32 [Cout, 5] (d, B, M0, M1, s) for int8
 *             output, [Cout, 2] (d, threshold) for packed output
 *   output 0  int8 [N, OH, OW, Cout] (zero point zp_out) or packed INT32
 *             [N, OH, OW, ceil(Cout/32)]
 *
 * Custom options: those of TFQP_SHIFT_CONV2D (tfqp/shift_conv2d.h, channels_in
 * included) plus depth_multiplier (>= 1, required).
 *
 * Arithmetic, output (n, y, x, co): as TFQP_SHIFT_CONV2D over the taps
 * (ky, kx) of input channel ci = co / depth_multiplier (TFLite's
 * convention): A_c = sum over the taps inside the image of
 * (q[ci] - zp_in) * w_c[k].
 *
 * Use: as TFQP_SHIFT_CONV2D; params are tfqp_shift_conv2d_params.
 */
#ifndef TFQP_SHIFT_DEPTHWISE_CONV2D_H_
#define TFQP_SHIFT_DEPTHWISE_CONV2D_H_

#include <stddef.h>
#include <stdint.h>

#include "tfqp/shift_conv2d.h"

#ifdef __cplusplus
extern "C" {
#endif

enum {
  TFQP_SHIFT_DEPTHWISE_CONV2D_REQUIRED = (1u << 8) - 1u, /* window, depth_multiplier */
  TFQP_SHIFT_DEPTHWISE_CONV2D_CHANNELS_IN = 1u << 15
};

typedef struct {
  tfqp_window_options window; /* as TFQP_SHIFT_CONV2D's */
  int32_t depth_multiplier;
  tfqp_shift_output_options output; /* terms, activation_min, activation_max,
                                       output_levels, output_bits, input_bits,
                                       input_code_zero */
  int32_t channels_in; /* 0: not given (required with input_bits) */
  uint32_t present;
} tfqp_shift_depthwise_conv2d_options;

tfqp_status tfqp_shift_depthwise_conv2d_parse_options(
    const uint8_t *buffer, size_t length, tfqp_shift_depthwise_conv2d_options *options,
    tfqp_error *error);

/* Output dims [N, OH, OW, Cout] (int8) or [N, OH, OW, ceil(Cout/32)] (int32). */
tfqp_status tfqp_shift_depthwise_conv2d_output_dims(
    const tfqp_shift_depthwise_conv2d_options *options, const tfqp_tensor *input,
    const tfqp_tensor *codes, const tfqp_tensor *code_table, tfqp_type output_type,
    int32_t dims[4], tfqp_error *error);

tfqp_status tfqp_shift_depthwise_conv2d_prepare(
    const tfqp_shift_depthwise_conv2d_options *options, const tfqp_tensor *input,
    const tfqp_tensor *codes, const tfqp_tensor *code_table, const tfqp_tensor *transform,
    const tfqp_tensor *output, tfqp_shift_conv2d_params *params, tfqp_error *error);

/* init_table: tfqp_shift_conv2d_init_table. */

void tfqp_shift_depthwise_conv2d_eval(const tfqp_shift_conv2d_params *params,
                                      const int32_t *table, const int8_t *input,
                                      const tfqp_word *codes, const int32_t *transform,
                                      void *scratch, void *output);

#ifdef __cplusplus
}
#endif

#endif /* TFQP_SHIFT_DEPTHWISE_CONV2D_H_ */
