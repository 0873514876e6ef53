/* int8 baselines for the Cortex-M instruction counts (benchmark only, not a
 * TFQP op): convolution, depthwise convolution and fully-connected layers with
 * TFLite's int8 semantics (per-channel requantization as TFLite's reference
 * ConvPerChannel / DepthwiseConvPerChannel / FullyConnected kernels):
 *   acc = bias[co] + sum over in-image taps of (x + input_offset) * w
 *   out = clamp(MultiplyByQuantizedMultiplier(acc, multiplier[co], shift[co])
 *               + output_offset, act_min, act_max)
 * Out-of-image taps contribute 0 (TFLite pads with the input zero point).
 *
 * Written the way CMSIS-NN's Cortex-M4 kernels are, with the DSP extension:
 * int8 pairs widened with SXTB16 (even and odd bytes, the same permutation on
 * both operands, so no re-ordering), two 16x16 MACs per SMLAD, an im2col
 * buffer of two output pixels' receptive fields (int16, input offset added)
 * shared by two output channels at a time. Without the DSP extension (M55
 * builds of the benchmark, host) the same functions use a plain C loop.
 * Outputs are checked against a numpy int8 reference by the benchmark.
 */
#ifndef TFQP_BENCH_INT8_BASELINE_H_
#define TFQP_BENCH_INT8_BASELINE_H_

#include <stdint.h>

typedef struct {
  int32_t in_height, in_width, channels_in;
  int32_t out_height, out_width, channels_out;
  int32_t filter_height, filter_width;
  int32_t stride_height, stride_width;
  int32_t pad_top, pad_left;
  int32_t input_offset;  /* -input zero point */
  int32_t output_offset; /* output zero point */
  int32_t act_min, act_max;
} bench_int8_conv_params;

/* filter OHWI [Cout, KH, KW, Cin]; channels_in % 4 == 0 for the DSP path.
 * scratch: 2 * KH * KW * Cin int16 (4-byte aligned). Batch 1. */
void bench_int8_conv2d(const bench_int8_conv_params *p, const int8_t *input,
                       const int8_t *filter, const int32_t *bias,
                       const int32_t *multiplier, const int32_t *shift,
                       int8_t *output, int16_t *scratch);

/* Depthwise (depth multiplier 1): filter [1, KH, KW, C], channels_out = C,
 * C % 4 == 0 for the DSP path. Batch 1. */
void bench_int8_depthwise_conv2d(const bench_int8_conv_params *p,
                                 const int8_t *input, const int8_t *filter,
                                 const int32_t *bias, const int32_t *multiplier,
                                 const int32_t *shift, int8_t *output);

/* weights [Cout, Cin], channels_in % 4 == 0 and channels_out % 4 == 0 for the
 * DSP path; scratch: Cin int16. Batch 1 (only channels_in, channels_out,
 * offsets and act_min/max of p are used). */
void bench_int8_fully_connected(const bench_int8_conv_params *p,
                                const int8_t *input, const int8_t *weights,
                                const int32_t *bias, const int32_t *multiplier,
                                const int32_t *shift, int8_t *output,
                                int16_t *scratch);

#endif /* TFQP_BENCH_INT8_BASELINE_H_ */
