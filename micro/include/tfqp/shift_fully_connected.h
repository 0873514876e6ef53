/* TFQP_SHIFT_FULLY_CONNECTED: fully-connected layer of int8 activations with
 * coded weights, int8 or packed sign output.
 *
 * Tensors (tfqp/shift_layer.h for what every shift op shares)
 *   input 0   int8 of any rank 1..6 whose element count is a multiple of
 *             Cin = channels_in (TFLite's FULLY_CONNECTED: N = elements / Cin
 *             rows of Cin values), per-tensor zero point zp_in
 *   input 1   constant codes INT32 [Cout, W_row]: row co holds the codes of
 *             output channel co over ci, K = Cin taps, T codes per tap
 *             (formats.h, "Coded weights")
 *   input 2   constant code table INT16 [C, 2^b]
 *   input 3   constant transform INT32 [Cout, 5] (d, B, M0, M1, s) for int8
 *             output, [Cout, 2] (d, threshold) for packed output
 *   input 4   optional constant live-code lists INT32 [Cout + 1 + E]
 *             (formats.h, "Live-code lists"; one accumulator class, K <=
 *             2^16): checked against the codes at init_table; the Cortex-M
 *             path runs the channels whose lists cost less from them in
 *             batch 1, every other path ignores them
 *   output 0  int8 [N, Cout] (zero point zp_out) or packed INT32
 *             [N, ceil(Cout/32)]
 *
 * Custom options (FlexBuffers map of integers): channels_in (>= 1), terms
 * (T >= 1, default 1), activation_min, activation_max (int8 output only;
 * defaults -128, 127), output_levels (0 = absent, or 2..256: the int8 codes
 * output, tfqp/shift_layer.h), output_bits, input_bits, input_code_zero
 * (packed k-bit activations, tfqp/kbit_activations.h: a packed input is
 * [..., ceil(Cin / P)], rows of Cin codes). Unknown or duplicate keys are
 * rejected.
 *
 * Arithmetic, output (n, co): A_c = sum over ci of (q - zp_in) * w_c[ci],
 * then the output transform of tfqp/shift_layer.h.
 *
 * Use: parse_options, prepare, init_table (table of params.layer.table_bytes
 * bytes, 4-byte aligned), eval with scratch of params.layer.scratch_bytes.
 */
#ifndef TFQP_SHIFT_FULLY_CONNECTED_H_
#define TFQP_SHIFT_FULLY_CONNECTED_H_

#include <stddef.h>
#include <stdint.h>

#include "tfqp/formats.h"
#include "tfqp/shift_layer.h"
#include "tfqp/status.h"
#include "tfqp/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

enum {
  TFQP_SHIFT_FC_REQUIRED = 1u << 0 /* channels_in */
};

typedef struct {
  int32_t channels_in;
  tfqp_shift_output_options output; /* terms, activation_min, activation_max,
                                       output_levels, output_bits, input_bits,
                                       input_code_zero */
  uint32_t present;
} tfqp_shift_fully_connected_options;

typedef struct {
  tfqp_shift_layer layer;
  int32_t batch;
  int32_t channels_in;
  tfqp_kbit_io kbit; /* packed k-bit input / output (the op table row's) */
  int32_t code_list_words; /* elements of input 4; 0 without it */
} tfqp_shift_fully_connected_params;

tfqp_status tfqp_shift_fully_connected_parse_options(
    const uint8_t *buffer, size_t length, tfqp_shift_fully_connected_options *options,
    tfqp_error *error);

/* Output dims [N, Cout] (int8) or [N, ceil(Cout/32)] (int32). */
tfqp_status tfqp_shift_fully_connected_output_dims(
    const tfqp_shift_fully_connected_options *options, const tfqp_tensor *input,
    const tfqp_tensor *codes, const tfqp_tensor *code_table, tfqp_type output_type,
    int32_t dims[2], tfqp_error *error);

/* code_lists: input 4, or NULL when the op has none. */
tfqp_status tfqp_shift_fully_connected_prepare(
    const tfqp_shift_fully_connected_options *options, const tfqp_tensor *input,
    const tfqp_tensor *codes, const tfqp_tensor *code_table, const tfqp_tensor *transform,
    const tfqp_tensor *code_lists, const tfqp_tensor *output,
    tfqp_shift_fully_connected_params *params, tfqp_error *error);

/* code_lists: input 4's data (params.code_list_words elements), or NULL. */
tfqp_status tfqp_shift_fully_connected_init_table(
    const tfqp_shift_fully_connected_params *params, const tfqp_word *codes,
    const int16_t *code_table, const int32_t *transform, const int32_t *code_lists,
    int32_t *table, size_t table_bytes, tfqp_error *error);

void tfqp_shift_fully_connected_eval(const tfqp_shift_fully_connected_params *params,
                                     const int32_t *table, const int8_t *input,
                                     const tfqp_word *codes, const int32_t *transform,
                                     const int32_t *code_lists, void *scratch, void *output);

#ifdef __cplusplus
}
#endif

#endif /* TFQP_SHIFT_FULLY_CONNECTED_H_ */
