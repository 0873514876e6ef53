/* TFQP_BCONV2D: binary (XNOR-popcount) 2-D convolution.
 *
 * Tensors
 *   input 0   activations: int8 [N, H, W, Cin] (binarized on the fly: bit = 1 iff
 *             q < input zero point) or packed int32 [N, H, W, ceil(Cin/32)]
 *   input 1   packed filter int32 [Cout, KH, KW, ceil(Cin/32)] (formats.h)
 *   input 2   per-channel transform int32: [Cout, 4] rows (W, bias, multiplier,
 *             shift) for int8 output, [Cout, 2] rows (direction, threshold) for
 *             packed output, [Cout, 3] rows (multiplier M, shift s, bias B) for
 *             int32 value output
 *   output 0  int8 [N, OH, OW, Cout] or packed int32 [N, OH, OW, ceil(Cout/32)],
 *             or with int32_output 1 int32 values [N, OH, OW, Cout]
 *   Input and output formats are given by the tensor types (INT8 / INT32) and
 *   int32_output.
 *
 * Custom options (FlexBuffers map of integers)
 *   channels_in, filter_height, filter_width, stride_height, stride_width,
 *   dilation_height_factor, dilation_width_factor (all >= 1),
 *   padding (0 = SAME, 1 = VALID, TFLite's output size and padding split),
 *   pad_value (0 or 1; it only matters with SAME),
 *   int8 output only: input_pos (P), input_neg (N) in [-255, 255],
 *   act_min <= act_max in [-128, 127];
 *   int32_output (0 or 1, default 0): 1 makes the INT32 output hold values,
 *   not packed bits.
 *   Unknown or duplicate keys are rejected.
 *
 * Arithmetic, for output (n, y, x, co), over the taps (ky, kx, ci):
 *   a_i, s_i in {+1, -1} input and weight signs; a tap is valid when it lies
 *   inside the image; pad_value 1 makes padded taps valid inputs of +1.
 *   D = sum over valid taps of s_i * a_i,  S = sum over valid taps of s_i.
 *   int8 output (bit-exact with TFLite's int8 CONV_2D on inputs zp + P / zp + N
 *   and weights s_i * W):
 *     acc = W * ((P + N) * S + (P - N) * D) / 2 + bias
 *     out = clamp(zp_out + MultiplyByQuantizedMultiplier(acc, multiplier, shift),
 *                 act_min, act_max)                       (tfqp/requantize.h)
 *   packed output: bit = 1 iff direction * D < threshold, direction in {+1, -1}.
 *   int32 value output: value = saturate_int32(B + ((M * D + (s > 0 ? 2^(s-1)
 *     : 0)) >> s)) in int64, >> the floor shift (arithmetic, two's complement),
 *     s in [0, 40], |M| * K < 2^62 (checked by init_table). Every build runs
 *     the portable counting kernel for it.
 *
 * Use
 *   1. tfqp_bconv2d_parse_options (or fill tfqp_bconv2d_options directly);
 *   2. tfqp_bconv2d_prepare: validates options and tensors, fills params
 *      (no tensor data needed);
 *   3. tfqp_bconv2d_init_table: validates the constant filter and transform data
 *      and precomputes per-channel constants and the per-border-region sums (and,
 *      in vector builds, a repacked filter) into a caller-provided table of
 *      params.table_bytes bytes (persistent);
 *   4. tfqp_bconv2d_eval with a scratch buffer of params.scratch_bytes bytes
 *      (int8 input is packed there, packed input with Cin % 32 != 0 copied with
 *      its padding bits cleared; 0 bytes when neither is needed in portable
 *      builds). Table and scratch must be 4-byte aligned.
 * Nothing reads or writes outside the tensors once prepare and init_table have
 * returned TFQP_OK for these tensors.
 */
#ifndef TFQP_BCONV2D_H_
#define TFQP_BCONV2D_H_

#include <stddef.h>
#include <stdint.h>

#include "tfqp/binary_op.h"
#include "tfqp/formats.h"
#include "tfqp/geometry.h"
#include "tfqp/status.h"
#include "tfqp/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Bits of tfqp_bconv2d_options.present. */
enum {
  TFQP_BCONV2D_CHANNELS_IN = 1u << 0,
  TFQP_BCONV2D_FILTER_HEIGHT = 1u << 1,
  TFQP_BCONV2D_FILTER_WIDTH = 1u << 2,
  TFQP_BCONV2D_STRIDE_HEIGHT = 1u << 3,
  TFQP_BCONV2D_STRIDE_WIDTH = 1u << 4,
  TFQP_BCONV2D_DILATION_HEIGHT = 1u << 5,
  TFQP_BCONV2D_DILATION_WIDTH = 1u << 6,
  TFQP_BCONV2D_PADDING = 1u << 7,
  TFQP_BCONV2D_PAD_VALUE = 1u << 8,
  TFQP_BCONV2D_INPUT_POS = 1u << 9,
  TFQP_BCONV2D_INPUT_NEG = 1u << 10,
  TFQP_BCONV2D_ACT_MIN = 1u << 11,
  TFQP_BCONV2D_ACT_MAX = 1u << 12,
  TFQP_BCONV2D_INT32_OUTPUT_KEY = 1u << 13,
  TFQP_BCONV2D_REQUIRED = (1u << 9) - 1u,
  TFQP_BCONV2D_INT8_OUTPUT = (1u << 13) - (1u << 9)
};

typedef struct {
  int32_t channels_in;
  int32_t filter_height;
  int32_t filter_width;
  int32_t stride_height;
  int32_t stride_width;
  int32_t dilation_height_factor;
  int32_t dilation_width_factor;
  int32_t padding;   /* TFQP_PADDING_SAME / TFQP_PADDING_VALID */
  int32_t pad_value; /* 0 or 1 */
  int32_t input_pos; /* P */
  int32_t input_neg; /* N */
  int32_t act_min;
  int32_t act_max;
  int32_t int32_output; /* 0 or 1 */
  uint32_t present;  /* TFQP_BCONV2D_* bits of the options given */
} tfqp_bconv2d_options;

typedef struct {
  tfqp_binary_io io;       /* sizes and formats of input and output, int8-output options */
  tfqp_window_axis rows;
  tfqp_window_axis cols;
  int32_t filter_words; /* KH * KW * input_words: one output channel's filter */
  int32_t taps;         /* K = KH * KW * Cin */
  int32_t pad_value;
  int32_t mask_input;      /* packed input with padding bits: eval masks a copy */
  int32_t row_classes;     /* output rows with distinct valid-tap ranges */
  int32_t col_classes;
  int32_t padded_channels; /* Cout rounded up to the kernel's channel block */
  int32_t table_base;      /* word offset of the per-region sums in the table */
  int32_t table_filter;    /* word offset of the repacked filter (vector builds) */
  int32_t arm;             /* Cortex-M builds: eval runs the Cortex-M kernels */
  int32_t table_arm;       /* Cortex-M, int8 output: word offset of the int8 records
                              (a usable flag, then per region and channel); 0: none */
  int32_t pixels;          /* N * H * W of the input */
  size_t image_words;      /* H * W * ceil(Cin/32): one packed input image */
  int32_t arm_height;      /* Cortex-M kernels: the explicitly padded image's */
  int32_t arm_width;       /*   height and width (0: the input is used as it is) */
  size_t table_bytes;      /* persistent table for tfqp_bconv2d_init_table */
  size_t scratch_bytes;    /* scratch for tfqp_bconv2d_eval: int8 input, or
                              packed input with Cin % 32 != 0; else 0 */
} tfqp_bconv2d_params;

tfqp_status tfqp_bconv2d_parse_options(const uint8_t *buffer, size_t length,
                                       tfqp_bconv2d_options *options,
                                       tfqp_error *error);

/* Output dims [N, OH, OW, Cout] (int8 output) or [N, OH, OW, ceil(Cout/32)]
 * (packed output) for resizing the output tensor; validates the options, the
 * input and the filter like prepare. */
tfqp_status tfqp_bconv2d_output_dims(const tfqp_bconv2d_options *options,
                                     const tfqp_tensor *input,
                                     const tfqp_tensor *filter,
                                     tfqp_type output_type, int32_t dims[4],
                                     tfqp_error *error);

tfqp_status tfqp_bconv2d_prepare(const tfqp_bconv2d_options *options,
                                 const tfqp_tensor *input,
                                 const tfqp_tensor *filter,
                                 const tfqp_tensor *transform,
                                 const tfqp_tensor *output,
                                 tfqp_bconv2d_params *params,
                                 tfqp_error *error);

/* Validates filter padding bits (must be 0) and transform rows (shift in
 * [-31, 31]; direction +-1; no possible int32 accumulator overflow:
 * |W| * max(|P|, |N|) * K + |bias| <= 2^31 - 1 and |W * (P - N)| <= 2^31 - 1;
 * int32 value output: shift in [0, 40], |M| * K < 2^62), then fills `table`. */
tfqp_status tfqp_bconv2d_init_table(const tfqp_bconv2d_params *params,
                                    const tfqp_word *filter,
                                    const int32_t *transform, int32_t *table,
                                    size_t table_bytes, tfqp_error *error);

/* input: int8_t or tfqp_word per params.input_packed; output likewise;
 * filter: the constant filter given to init_table (vector builds read their
 * repacked copy in the table instead). */
void tfqp_bconv2d_eval(const tfqp_bconv2d_params *params, const int32_t *table,
                       const void *input, const tfqp_word *filter, void *output,
                       void *scratch);

#ifdef __cplusplus
}
#endif

#endif /* TFQP_BCONV2D_H_ */
