/* TFQP_SHIFT_CONV2D: 2-D convolution of int8 activations with coded weights
 * (power-of-two, log, ShiftCNN sums, ternary and binary kernels), int8 or
 * packed sign output.
 *
 * Tensors (tfqp/shift_layer.h for what every shift op shares)
 *   input 0   int8 [N, H, W, Cin], per-tensor zero point zp_in
 *   input 1   constant codes INT32 [Cout, W_row]: row co holds the codes of
 *             filter co in OHWI order (ky, kx, ci), ci fastest, K = KH*KW*Cin
 *             taps, T codes per tap (formats.h, "Coded weights")
 *   input 2   constant code table INT16 [C, 2^b]
 *   input 3   constant transform INT32 [Cout, 5] (d, B, M0, M1, s) for int8
 *             output, [Cout, 2] (d, threshold) for packed output,
 *             [Cout, 1 + output_levels] (d, base, t_1 .. t_L) for codes
 *   output 0  int8 [N, OH, OW, Cout] (zero point zp_out) or packed INT32
 *             [N, OH, OW, ceil(Cout/32)]
 *
 * Custom options (FlexBuffers map of integers): filter_height, filter_width,
 * stride_height, stride_width, dilation_height_factor, dilation_width_factor
 * (all >= 1), padding (0 = SAME, 1 = VALID; TFLite's output size and padding
 * split), terms (T >= 1, default 1), activation_min, activation_max (int8
 * output only; defaults -128, 127), output_levels (0 = absent, or 2..256: the
 * int8 codes output, tfqp/shift_layer.h), output_bits, input_bits,
 * input_code_zero (packed k-bit activations, tfqp/kbit_activations.h),
 * channels_in (optional: Cin, required with input_bits; otherwise Cin comes
 * from the input and channels_in, if given, must equal it). Unknown or
 * duplicate keys are rejected.
 *
 * Arithmetic, output (n, y, x, co): A_c = sum over the taps (ky, kx, ci)
 * inside the image of (q - zp_in) * w_c[k] (padded taps contribute 0, as
 * TFLite pads int8 convolutions with the zero point), then the output
 * transform of tfqp/shift_layer.h.
 *
 * Use: parse_options, prepare, init_table (table of params.layer.table_bytes
 * bytes, 4-byte aligned), eval with scratch of params.layer.scratch_bytes.
 */
#ifndef TFQP_SHIFT_CONV2D_H_
#define TFQP_SHIFT_CONV2D_H_

#include <stddef.h>
#include <stdint.h>

#include "tfqp/formats.h"
#include "tfqp/geometry.h"
#include "tfqp/kbit_activations.h"
#include "tfqp/shift_layer.h"
#include "tfqp/status.h"
#include "tfqp/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

enum {
  TFQP_SHIFT_CONV2D_REQUIRED = (1u << 7) - 1u, /* the window options */
  TFQP_SHIFT_CONV2D_TERMS = 1u << 7,
  TFQP_SHIFT_CONV2D_ACTIVATION = (1u << 8) | (1u << 9),
  TFQP_SHIFT_CONV2D_CHANNELS_IN = 1u << 14
};

typedef struct {
  /* filter_height, filter_width, stride_height, stride_width,
   * dilation_height_factor, dilation_width_factor, padding */
  tfqp_window_options window;
  tfqp_shift_output_options output; /* terms, activation_min, activation_max,
                                       output_levels, output_bits, input_bits,
                                       input_code_zero */
  int32_t channels_in; /* 0: not given (required with input_bits) */
  uint32_t present;
} tfqp_shift_conv2d_options;

/* Also the params of TFQP_SHIFT_DEPTHWISE_CONV2D. */
typedef struct {
  tfqp_shift_layer layer;
  int32_t batch;
  int32_t channels_in;
  tfqp_window_axis rows;
  tfqp_window_axis cols;
  tfqp_kbit_io kbit; /* packed k-bit input / output (the op table row's) */
} tfqp_shift_conv2d_params;

tfqp_status tfqp_shift_conv2d_parse_options(const uint8_t *buffer, size_t length,
                                            tfqp_shift_conv2d_options *options,
                                            tfqp_error *error);

/* Output dims [N, OH, OW, Cout] (int8) or [N, OH, OW, ceil(Cout/32)] (int32). */
tfqp_status tfqp_shift_conv2d_output_dims(const tfqp_shift_conv2d_options *options,
                                          const tfqp_tensor *input, const tfqp_tensor *codes,
                                          const tfqp_tensor *code_table, tfqp_type output_type,
                                          int32_t dims[4], tfqp_error *error);

tfqp_status tfqp_shift_conv2d_prepare(const tfqp_shift_conv2d_options *options,
                                      const tfqp_tensor *input, const tfqp_tensor *codes,
                                      const tfqp_tensor *code_table,
                                      const tfqp_tensor *transform, const tfqp_tensor *output,
                                      tfqp_shift_conv2d_params *params, tfqp_error *error);

tfqp_status tfqp_shift_conv2d_init_table(const tfqp_shift_conv2d_params *params,
                                         const tfqp_word *codes, const int16_t *code_table,
                                         const int32_t *transform, int32_t *table,
                                         size_t table_bytes, tfqp_error *error);

/* transform: the constant transform (the codes output reads its rows there). */
void tfqp_shift_conv2d_eval(const tfqp_shift_conv2d_params *params, const int32_t *table,
                            const int8_t *input, const tfqp_word *codes,
                            const int32_t *transform, void *scratch, void *output);

#ifdef __cplusplus
}
#endif

#endif /* TFQP_SHIFT_CONV2D_H_ */
