/* TFQP_BFULLY_CONNECTED: binary (XNOR-popcount) fully-connected layer.
 *
 * Tensors
 *   input 0   int8 [N, Cin] (bit = 1 iff q < input zero point) or packed int32
 *             [N, ceil(Cin/32)]
 *   input 1   packed weights int32 [Cout, ceil(Cin/32)] (formats.h)
 *   input 2   per-channel transform int32: [Cout, 4] rows (W, bias, multiplier,
 *             shift) for int8 output, [Cout, 2] rows (direction, threshold) for
 *             packed output, [Cout, 3] rows (multiplier, shift, bias) for int32
 *             value output
 *   output 0  int8 [N, Cout] or packed int32 [N, ceil(Cout/32)], or with
 *             int32_output 1 int32 values [N, Cout]
 *
 * Custom options (FlexBuffers map of integers): channels_in (>= 1); int8 output
 * only: input_pos (P), input_neg (N) in [-255, 255], act_min <= act_max in
 * [-128, 127]; int32_output (0 or 1, default 0). Unknown or duplicate keys are
 * rejected.
 *
 * Arithmetic: as TFQP_BCONV2D (tfqp/bconv2d.h) with K = Cin taps, all valid.
 * Use: parse_options, prepare, init_table (table of params.table_bytes bytes),
 * eval (scratch of params.scratch_bytes bytes: int8 input is packed there,
 * packed input with Cin % 32 != 0 copied with cleared padding bits); table and
 * scratch 4-byte aligned.
 */
#ifndef TFQP_BFULLY_CONNECTED_H_
#define TFQP_BFULLY_CONNECTED_H_

#include <stddef.h>
#include <stdint.h>

#include "tfqp/binary_op.h"
#include "tfqp/formats.h"
#include "tfqp/status.h"
#include "tfqp/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

enum {
  TFQP_BFC_CHANNELS_IN = 1u << 0,
  TFQP_BFC_INPUT_POS = 1u << 1,
  TFQP_BFC_INPUT_NEG = 1u << 2,
  TFQP_BFC_ACT_MIN = 1u << 3,
  TFQP_BFC_ACT_MAX = 1u << 4,
  TFQP_BFC_INT32_OUTPUT_KEY = 1u << 5,
  TFQP_BFC_REQUIRED = 1u << 0,
  TFQP_BFC_INT8_OUTPUT = (1u << 5) - (1u << 1)
};

typedef struct {
  int32_t channels_in;
  int32_t input_pos;
  int32_t input_neg;
  int32_t act_min;
  int32_t act_max;
  int32_t int32_output; /* 0 or 1 */
  uint32_t present; /* TFQP_BFC_* bits of the options given */
} tfqp_bfully_connected_options;

typedef struct {
  tfqp_binary_io io;       /* sizes and formats of input and output, int8-output options */
  int32_t mask_input;      /* packed input with padding bits: eval masks a copy */
  int32_t padded_channels; /* Cout rounded up to the kernel's channel block */
  int32_t table_base;      /* word offset of the per-channel sums in the table */
  int32_t table_weights;   /* word offset of the repacked weights (vector builds) */
  int32_t arm;             /* Cortex-M builds: eval runs the Cortex-M kernels */
  int32_t table_arm;       /* Cortex-M, int8 output: word offset of the int8 records
                              (a usable flag, then per region and channel); 0: none */
  size_t table_bytes;      /* persistent table for init_table */
  size_t scratch_bytes;    /* scratch for eval: int8 input or packed input with
                              Cin % 32 != 0; else 0 */
} tfqp_bfully_connected_params;

tfqp_status tfqp_bfully_connected_parse_options(
    const uint8_t *buffer, size_t length, tfqp_bfully_connected_options *options,
    tfqp_error *error);

/* Output dims [N, Cout] or [N, ceil(Cout/32)]. */
tfqp_status tfqp_bfully_connected_output_dims(
    const tfqp_bfully_connected_options *options, const tfqp_tensor *input,
    const tfqp_tensor *weights, tfqp_type output_type, int32_t dims[2],
    tfqp_error *error);

tfqp_status tfqp_bfully_connected_prepare(
    const tfqp_bfully_connected_options *options, const tfqp_tensor *input,
    const tfqp_tensor *weights, const tfqp_tensor *transform,
    const tfqp_tensor *output, tfqp_bfully_connected_params *params,
    tfqp_error *error);

/* Validates weight padding bits and transform rows as tfqp_bconv2d_init_table. */
tfqp_status tfqp_bfully_connected_init_table(
    const tfqp_bfully_connected_params *params, const tfqp_word *weights,
    const int32_t *transform, int32_t *table, size_t table_bytes,
    tfqp_error *error);

void tfqp_bfully_connected_eval(const tfqp_bfully_connected_params *params,
                                const int32_t *table, const void *input,
                                const tfqp_word *weights, void *output,
                                void *scratch);

#ifdef __cplusplus
}
#endif

#endif /* TFQP_BFULLY_CONNECTED_H_ */
