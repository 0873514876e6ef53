/* TFQP_FULLY_CONNECTED_INT8: int8 fully-connected layer with a packed sign
 * output, an int32 value output or the int8 codes output of a k-bit
 * activation grid (no requantized int8 output: builtin FULLY_CONNECTED does
 * that).
 *
 * Tensors
 *   input 0   int8 [N, Cin], per-tensor zero point zp_in
 *   input 1   constant weights [Cout, Cin], symmetric: int8 in [-127, 127] or
 *             int16 with sum |w| * 255 < 2^31 per output channel
 *   input 2   constant int32 transform: [Cout, 2] (direction, threshold) for
 *             packed output, [Cout, 3] (multiplier M, shift s, bias B) for
 *             int32 value output, [Cout, 1 + output_levels] (d, base, t_1 ..
 *             t_L) for the codes output
 *   input 3   optional, int32_output 1 only: residual int32 values [N, Cout]
 *   output 0  int32: packed bits [N, ceil(Cout/32)], or with int32_output 1
 *             values [N, Cout]; with output_levels int8 codes [N, Cout]
 *
 * Custom options (FlexBuffers map of integers): channels_in (>= 1, <= 66311),
 * int32_output (0 or 1, default 0), output_levels (0 = absent, or 2..256;
 * excludes int32_output 1), output_bits, input_bits, input_code_zero (packed
 * k-bit activations, tfqp/kbit_activations.h). Unknown or duplicate keys are
 * rejected.
 *
 * Arithmetic: as TFQP_CONV2D_INT8 (tfqp/conv2d_int8.h) with K = Cin taps, all
 * valid: A = sum of (q - zp_in) * w.
 */
#ifndef TFQP_FULLY_CONNECTED_INT8_H_
#define TFQP_FULLY_CONNECTED_INT8_H_

#include <stddef.h>
#include <stdint.h>

#include "tfqp/formats.h"
#include "tfqp/kbit_activations.h"
#include "tfqp/status.h"
#include "tfqp/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

enum {
  TFQP_FC_INT8_REQUIRED = 1u << 0,
  TFQP_FC_INT8_INT32_OUTPUT = 1u << 1,
  TFQP_FC_INT8_OUTPUT_LEVELS = 1u << 2
};

typedef struct {
  int32_t channels_in;
  int32_t int32_output;
  int32_t output_levels; /* 0 (absent) or 2..256: the int8 codes output */
  /* packed k-bit activations (tfqp/kbit_activations.h); 0 when absent */
  int32_t output_bits;
  int32_t input_bits;
  int32_t input_code_zero;
  uint32_t present;
} tfqp_fully_connected_int8_options;

typedef struct {
  int32_t batch;
  int32_t channels_in;
  int32_t channels_out;
  int32_t input_zero_point;
  int32_t int32_output;
  int32_t output_levels; /* codes output: L + 1 levels; 0: none */
  int32_t codes_only;    /* the codes are packed (output_bits): bases 0 */
  tfqp_kbit_io kbit;     /* packed k-bit input / output (the op table row's) */
  int32_t output_depth;
  int32_t weights_int16; /* int16 weights, else int8 */
  int32_t residual;      /* int32 values plus input 3 */
  size_t output_count;   /* output elements */
  size_t table_bytes;
} tfqp_fully_connected_int8_params;

tfqp_status tfqp_fully_connected_int8_parse_options(const uint8_t *buffer, size_t length,
                                                    tfqp_fully_connected_int8_options *options,
                                                    tfqp_error *error);

tfqp_status tfqp_fully_connected_int8_output_dims(
    const tfqp_fully_connected_int8_options *options, const tfqp_tensor *input,
    const tfqp_tensor *weights, int32_t dims[2], tfqp_error *error);

tfqp_status tfqp_fully_connected_int8_prepare(const tfqp_fully_connected_int8_options *options,
                                              const tfqp_tensor *input,
                                              const tfqp_tensor *weights,
                                              const tfqp_tensor *transform,
                                              const tfqp_tensor *output,
                                              tfqp_fully_connected_int8_params *params,
                                              tfqp_error *error);

tfqp_status tfqp_fully_connected_int8_init_table(const tfqp_fully_connected_int8_params *params,
                                                 const void *weights,
                                                 const int32_t *transform, int32_t *table,
                                                 size_t table_bytes, tfqp_error *error);

/* transform: the constant transform (the codes output reads its rows). */
void tfqp_fully_connected_int8_eval(const tfqp_fully_connected_int8_params *params,
                                    const int32_t *table, const int8_t *input,
                                    const void *weights, const int32_t *transform,
                                    void *output);

#ifdef __cplusplus
}
#endif

#endif /* TFQP_FULLY_CONNECTED_INT8_H_ */
