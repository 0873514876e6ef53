/* TFQP_CONV2D_INT8: int8 2-D convolution with a packed sign output, an int32
 * value output or the int8 codes output of a k-bit activation grid (no
 * requantized int8 output: builtin CONV_2D does that).
 *
 * Tensors
 *   input 0   int8 [N, H, W, Cin], per-tensor zero point zp_in
 *   input 1   constant weights OHWI [Cout, KH, KW, Cin], symmetric (zero point
 *             0): int8 in [-127, 127], or int16 (a float kernel the converter
 *             rounded finely) with sum |w| * 255 < 2^31 over each output
 *             channel's taps (both checked by init_table)
 *   input 2   constant int32 transform: [Cout, 2] rows (direction, threshold)
 *             for packed output, [Cout, 3] rows (multiplier M, shift s, bias B)
 *             for int32 value output, [Cout, 1 + output_levels] rows (d, base,
 *             t_1 .. t_L) for the codes output
 *   input 3   optional, int32_output 1 only: residual int32 values [N, OH, OW,
 *             Cout], added to the values (value_output.h)
 *   output 0  int32: packed bits [N, OH, OW, ceil(Cout/32)] (formats.h), or with
 *             int32_output 1 values [N, OH, OW, Cout]; with output_levels int8
 *             codes [N, OH, OW, Cout]
 *
 * Custom options (FlexBuffers map of integers): channels_in, filter_height,
 * filter_width, stride_height, stride_width, dilation_height_factor,
 * dilation_width_factor (all >= 1), padding (0 = SAME, 1 = VALID; TFLite's
 * output size and padding split), int32_output (0 or 1, default 0),
 * output_levels (0 = absent, or 2..256; excludes int32_output 1),
 * output_bits, input_bits, input_code_zero (packed k-bit activations,
 * tfqp/kbit_activations.h). No
 * pad_value: padded taps contribute 0 (TFLite pads int8 convolutions with the
 * input zero point). Unknown or duplicate keys are rejected.
 *
 * Arithmetic, output (n, y, x, co):
 *   A = sum over the taps (ky, kx, ci) inside the image of (q - zp_in) * w,
 *   exact in int32: K = KH * KW * Cin <= 66311, so |A| <= K * 255 * 127 < 2^31
 *   with int8 weights; int16 weights are bounded per channel by init_table.
 *   packed output: bit = 1 iff direction * A < threshold, direction in {+1, -1};
 *   int32 value output: value = saturate_int32(B + ((M * A + (s > 0 ? 2^(s-1)
 *     : 0)) >> s)) in int64, >> the floor (arithmetic) shift, s in [0, 40].
 *   codes output (output_levels = L + 1): out = base + #{ i : d * A >= t_i },
 *     d in {+1, -1}, base in [-128, 127 - L], t_1 <= ... <= t_L (init_table
 *     checks): a k-bit activation's code from thresholds the converter found
 *     on Keras's own float computation, so it rounds as Keras does.
 *
 * Use: parse_options, prepare, init_table (table of params.table_bytes bytes,
 * 4-byte aligned; 0 for the codes output, whose eval reads the transform rows
 * where they are: table may then be NULL), eval. No scratch.
 */
#ifndef TFQP_CONV2D_INT8_H_
#define TFQP_CONV2D_INT8_H_

#include <stddef.h>
#include <stdint.h>

#include "tfqp/formats.h"
#include "tfqp/kbit_activations.h"
#include "tfqp/geometry.h"
#include "tfqp/status.h"
#include "tfqp/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

enum {
  TFQP_CONV2D_INT8_REQUIRED = (1u << 8) - 1u, /* all but int32_output */
  TFQP_CONV2D_INT8_INT32_OUTPUT = 1u << 8,
  TFQP_CONV2D_INT8_OUTPUT_LEVELS = 1u << 9
};

typedef struct {
  int32_t channels_in;
  int32_t filter_height;
  int32_t filter_width;
  int32_t stride_height;
  int32_t stride_width;
  int32_t dilation_height_factor;
  int32_t dilation_width_factor;
  int32_t padding;
  int32_t int32_output; /* 0 or 1 */
  int32_t output_levels; /* 0 (absent) or 2..256: the int8 codes output */
  /* packed k-bit activations (tfqp/kbit_activations.h); 0 when absent */
  int32_t output_bits;
  int32_t input_bits;
  int32_t input_code_zero;
  uint32_t present;
} tfqp_conv2d_int8_options;

typedef struct {
  int32_t batch;
  int32_t channels_in;
  int32_t channels_out;
  int32_t input_zero_point;
  int32_t int32_output;
  int32_t output_levels; /* codes output: L + 1 levels; 0: none */
  int32_t codes_only;    /* the codes are packed (output_bits): bases 0 */
  tfqp_kbit_io kbit;     /* packed k-bit input / output (the op table row's) */
  int32_t taps;     /* K */
  int32_t output_depth; /* Cout or ceil(Cout/32) */
  int32_t weights_int16; /* int16 weights, else int8 */
  int32_t residual;      /* int32 values plus input 3 */
  size_t output_count;   /* output elements */
  tfqp_window_axis rows;
  tfqp_window_axis cols;
  size_t table_bytes;
} tfqp_conv2d_int8_params;

tfqp_status tfqp_conv2d_int8_parse_options(const uint8_t *buffer, size_t length,
                                           tfqp_conv2d_int8_options *options,
                                           tfqp_error *error);

/* Output dims [N, OH, OW, ceil(Cout/32)] or [N, OH, OW, Cout] (int32_output). */
tfqp_status tfqp_conv2d_int8_output_dims(const tfqp_conv2d_int8_options *options,
                                         const tfqp_tensor *input, const tfqp_tensor *weights,
                                         int32_t dims[4], tfqp_error *error);

tfqp_status tfqp_conv2d_int8_prepare(const tfqp_conv2d_int8_options *options,
                                     const tfqp_tensor *input, const tfqp_tensor *weights,
                                     const tfqp_tensor *transform, const tfqp_tensor *output,
                                     tfqp_conv2d_int8_params *params, tfqp_error *error);

tfqp_status tfqp_conv2d_int8_init_table(const tfqp_conv2d_int8_params *params,
                                        const void *weights, const int32_t *transform,
                                        int32_t *table, size_t table_bytes, tfqp_error *error);

/* transform: the constant transform (the codes output reads its rows). */
void tfqp_conv2d_int8_eval(const tfqp_conv2d_int8_params *params, const int32_t *table,
                           const int8_t *input, const void *weights, const int32_t *transform,
                           void *output);

#ifdef __cplusplus
}
#endif

#endif /* TFQP_CONV2D_INT8_H_ */
