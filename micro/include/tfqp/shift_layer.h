/* What the three shift ops share (TFQP_SHIFT_CONV2D, TFQP_SHIFT_DEPTHWISE_CONV2D,
 * TFQP_SHIFT_FULLY_CONNECTED; their geometry in tfqp/shift_conv2d.h,
 * tfqp/shift_depthwise_conv2d.h, tfqp/shift_fully_connected.h): int8
 * activations, coded weights, exact int32 accumulators and one output
 * transform per output channel.
 *
 * Tensors
 *   input 0   int8 activations, per-tensor zero point zp_in
 *   input 1   constant codes INT32 [Cout, W_row] (formats.h, "Coded weights":
 *             b-bit codes, T terms per tap, rows of R = T*K codes)
 *   input 2   constant code table INT16 [C, 2^b], C in {1, 2} accumulator
 *             classes, |entry| <= 2^14; b and C come from its shape
 *   input 3   constant transform INT32: [Cout, 5] rows (d, B, M0, M1, s) for
 *             int8 output, [Cout, 2] rows (d, threshold) for packed output,
 *             [Cout, 1 + output_levels] rows (d, base, t_1 .. t_L) for the
 *             codes output
 *   output 0  int8 values (zero point zp_out), or packed INT32 bits
 *             (formats.h): the output tensor's type chooses
 *
 * Options every shift op has: terms (T >= 1, default 1), activation_min and
 * activation_max (int8 output only: given with a packed output they are
 * rejected; defaults -128 and 127; -128 <= min <= max <= 127), output_levels
 * (0 = absent = no codes output, else 2..256: the int8 output is a k-bit
 * activation's code; rejected with a packed output, activation_min /
 * activation_max or two accumulator classes).
 *
 * Accumulators, per output position and channel, for each class c < C:
 *   w_c[k] = sum over t of table[c][code(k, t)]
 *   A_c    = sum over the taps k inside the image (padded taps contribute 0)
 *            of (q - zp_in) * w_c[k]
 * exact in int32: init_table checks, per output channel and class,
 *   sum_k |w_c[k]| * 255 + |B| < 2^31   (B = 0 for packed output)
 * so A_c and d*A_0 + B are int32 whatever taps are valid. (The kernels may
 * sum code by code modulo 2^32: the result is the same integer.)
 *
 * Output (n, ..., co), with d in {+1, -1}:
 *   int8, C == 1:  V = d*A_0 + B
 *                  out = clamp(zp_out + MultiplyByQuantizedMultiplier(V, M0, s),
 *                              activation_min, activation_max)
 *                  TFLite's double-rounding arithmetic (tfqp/requantize.h);
 *                  M0 in [0, 2^31), s in [-31, 30], M1 = 0
 *   int8, C == 2:  out = clamp(zp_out + RoundHalfAwayFromZero((V*M0 + d*A_1*M1)
 *                              / 2^s), activation_min, activation_max)
 *                  exact in int64: M0, M1 in [0, 2^31), s in [0, 62]
 *   packed:        bit = 1 (negative) iff d*A_0 < threshold (C == 1 only:
 *                  prepare rejects two classes with a packed output)
 *   codes (output_levels = L + 1, C == 1, int8 output):
 *                  out = base + #{ i : d*A_0 >= t_i }, no zero point, no clamp;
 *                  init_table checks base in [-128, 127 - L] and
 *                  t_1 <= ... <= t_L (the converter's thresholds on A of a
 *                  trained grid, which absorb the bias: B = 0 in the bound)
 *
 * Work skipping: a word of codes whose codes all decode to 0 in every class
 * (a dead word) adds nothing; init_table marks such words in the table. The
 * portable eval never reads them; a fast path may read a row with dead words
 * whole where that costs less than skipping them (their codes, whichever
 * zero codes they are, add nothing either way).
 */
#ifndef TFQP_SHIFT_LAYER_H_
#define TFQP_SHIFT_LAYER_H_

#include <stddef.h>
#include <stdint.h>

#include "tfqp/formats.h"
#include "tfqp/kbit_activations.h"
#include "tfqp/status.h"
#include "tfqp/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

#define TFQP_SHIFT_TRANSFORM_INT8_COLUMNS 5   /* d, B, M0, M1, s */
#define TFQP_SHIFT_TRANSFORM_PACKED_COLUMNS 2 /* d, threshold */

/* The options every shift op has, at the end of its options struct (its
 * option keys point into it), and whether activation_min / activation_max
 * were given (set by tfqp_shift_output_defaults). */
typedef struct {
  int32_t terms;
  int32_t activation_min;
  int32_t activation_max;
  int32_t output_levels; /* 0: no codes output */
  /* packed k-bit activations (tfqp/kbit_activations.h); 0 when absent */
  int32_t output_bits;
  int32_t input_bits;
  int32_t input_code_zero;
  int32_t activation_given;
} tfqp_shift_output_options;

/* After an op's parse read its keys: the defaults of the options absent from
 * `present`, whose bits for terms, activation_min, activation_max,
 * output_levels, output_bits, input_bits and input_code_zero are `first_bit`
 * .. `first_bit` + 6. */
void tfqp_shift_output_defaults(tfqp_shift_output_options *options, uint32_t present,
                                int32_t first_bit);

/* The k-bit options of a shift op whose channels_in option is `channels_in`. */
tfqp_kbit_options tfqp_shift_kbit_options(const tfqp_shift_output_options *options,
                                          int32_t channels_in);

/* The codes, the output and the table layout of one shift op (prepare fills
 * it; the op's params hold it). */
typedef struct {
  int32_t bits;            /* b */
  int32_t codes_per_word;  /* P(b) */
  int32_t terms;           /* T */
  int32_t taps;            /* K */
  int32_t row_codes;       /* R = T * K */
  int32_t row_words;       /* W_row */
  int32_t classes;         /* C */
  int32_t channels_out;    /* Cout */
  int32_t input_zero_point;
  int32_t output_packed;   /* packed int32 output, else int8 */
  int32_t output_levels;   /* codes output: L + 1 levels; 0: none */
  int32_t codes_only;      /* the codes are packed (output_bits): no base added */
  int32_t output_depth;    /* Cout or ceil(Cout / 32) */
  int32_t output_zero_point;
  int32_t activation_min;
  int32_t activation_max;
  /* 1 for TFQP_SHIFT_FULLY_CONNECTED, 0 for the convolutions: a fast path may
   * lay out its table differently for a fully-connected op's rows */
  int32_t fully_connected;
  /* eval: `pixels` output positions, each reading a patch of patch_values
   * int16 values (q - zp_in, 0 for padded taps); channel co reads the K
   * values at (co / depth_multiplier) * patch_step of its pixel's patch. */
  int32_t pixels;
  int32_t patch_values;
  int32_t patch_step;
  int32_t depth_multiplier;
  /* table (int32 words from its start): code values [C][2^b], then the
   * channel fields (int8 output: d, B, M0, M1, s; packed: d, threshold),
   * each [Cout] (codes output: none, eval reads the transform rows in place,
   * kernels/level_output.h), then the live-word bitmap [Cout][live_words] (bit w % 32 of
   * word w / 32 of a row: word w of the codes row has work); channel co's
   * row at co * live_stride: live_stride 0 when prepare saw that no word is
   * dead (the constants' data, tfqp/tensor.h), the table then holding one
   * all-live row for every channel */
  int32_t live_words;
  size_t live_stride;
  size_t channels_at;
  size_t live_at;
  size_t table_bytes;
  size_t scratch_bytes;
} tfqp_shift_layer;

/* Checks the options, the input's zero point, the codes and the code table
 * against `taps` (K) and the output type, and fills the codes and output
 * fields of `layer` (Cout from codes dim 0; the op checks it further). */
tfqp_status tfqp_shift_layer_check_codes(tfqp_shift_layer *layer,
                                         const tfqp_shift_output_options *options,
                                         int64_t taps, const tfqp_tensor *input,
                                         const tfqp_tensor *codes,
                                         const tfqp_tensor *code_table,
                                         tfqp_type output_type, tfqp_error *error);

/* Checks the output tensor (rank `rank`: dims outer[0 .. rank-1) then the
 * output depth) and the transform, sets the output zero point and the eval
 * fields from pixels / patch_values / patch_step / depth_multiplier, and
 * lays out the table and scratch. */
tfqp_status tfqp_shift_layer_check_output(tfqp_shift_layer *layer, const tfqp_tensor *transform,
                                          const tfqp_tensor *output, int32_t rank,
                                          const int32_t *outer, int64_t pixels,
                                          int64_t patch_values, int32_t patch_step,
                                          int32_t depth_multiplier, tfqp_error *error);

/* Validates the constants (code table entries, padding bits of the codes,
 * transform rows, the accumulator bound) and fills the table. code_lists: a
 * fully-connected op's live-code lists (formats.h), already checked against
 * the codes (tfqp_shift_code_lists_check), or NULL. */
tfqp_status tfqp_shift_layer_init_table(const tfqp_shift_layer *layer, const tfqp_word *codes,
                                        const int16_t *code_table, const int32_t *transform,
                                        const int32_t *code_lists, int32_t *table,
                                        size_t table_bytes, tfqp_error *error);

#ifdef __cplusplus
}
#endif

#endif /* TFQP_SHIFT_LAYER_H_ */
