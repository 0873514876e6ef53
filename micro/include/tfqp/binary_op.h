/* What TFQP_BCONV2D and TFQP_BFULLY_CONNECTED share around their XNOR-popcount
 * kernels (contracts in tfqp/bconv2d.h and tfqp/bfully_connected.h):
 *
 *   input      int8, binarized on the fly (bit = 1 iff q < input zero point),
 *              or packed int32 words (formats.h); last axis Cin or ceil(Cin/32)
 *   weights    packed int32 rows of ceil(Cin/32) words, padding bits 0
 *   transform  int32 [Cout, 4] (W, bias, multiplier, shift) for int8 output,
 *              [Cout, 2] (direction, threshold) for packed output,
 *              [Cout, 3] (multiplier, shift, bias) for int32 value output
 *   output     int8, requantized with the int8-output options (input_pos P,
 *              input_neg N, act_min, act_max), or packed int32 bits, or (option
 *              int32_output 1) int32 values of D
 *
 * Each op validates its own options and geometry and calls the checks below
 * where its contract reports their errors; they never read tensor data except
 * in tfqp_binary_op_init_channels and tfqp_binary_op_packed_input.
 */
#ifndef TFQP_BINARY_OP_H_
#define TFQP_BINARY_OP_H_

#include <stddef.h>
#include <stdint.h>

#include "tfqp/formats.h"
#include "tfqp/status.h"
#include "tfqp/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The op's input and output: sizes and formats (filled by prepare). */
typedef struct {
  int32_t batch;
  int32_t channels_in;
  int32_t input_words;       /* ceil(Cin / 32) */
  int32_t input_packed;      /* packed int32 input, else int8 */
  int32_t input_zero_point;  /* int8 input; 0 for packed input */
  uint32_t last_word_mask;   /* TFQP_LAST_WORD_MASK(Cin) */
  int32_t channels_out;
  int32_t output_words;      /* ceil(Cout / 32) */
  int32_t output_packed;     /* packed int32 output, else int8 or values */
  int32_t output_values;     /* int32 value output (option int32_output 1) */
  int32_t residual;          /* value output plus input 3 (value_output.h) */
  size_t output_count;       /* output elements (the residual's) */
  int32_t output_zero_point; /* int8 output; 0 for packed output */
  int32_t input_pos;         /* P */
  int32_t input_neg;         /* N */
  int32_t act_min;
  int32_t act_max;
} tfqp_binary_io;

/* The int8-output options as the op parsed them. */
typedef struct {
  int32_t input_pos;
  int32_t input_neg;
  int32_t act_min;
  int32_t act_max;
  uint32_t present;   /* the op's options.present */
  uint32_t int8_bits; /* the op's present bits of these four options */
} tfqp_binary_int8_options;

/* The op-specific words in the errors of the shared checks (string
 * literals); TFQP_BINARY_OP_NAMES writes each rule once. */
typedef struct {
  const char *op;             /* NULL arguments: "bconv2d" */
  const char *options;        /* missing int8-output options: "bconv2d options" */
  const char *int8_depth;     /* the int8 output's depth rule */
  const char *packed_depth;   /* the packed output's depth rule */
  const char *values_depth;   /* the int32 value output's depth rule */
  const char *transform_rows; /* the transform's dim 0 rule */
  const char *weights;        /* the weights tensor's role: "filter" */
  const char *padding_bits;   /* the weights' padding bits rule */
} tfqp_binary_op_names;

/* The names of op `op` whose weights tensor is called `weights` (both string
 * literals). */
#define TFQP_BINARY_OP_NAMES(op, weights)                                  \
  {op,                                                                     \
   op " options",                                                          \
   "int8 output depth must equal " weights " dim 0",                       \
   "packed output depth must equal ceil(" weights " dim 0 / 32)",          \
   "int32 value output depth must equal " weights " dim 0",                \
   "transform dim 0 must equal " weights " dim 0",                         \
   weights,                                                                \
   weights " padding bits (channels >= channels_in) must be 0"}

/* Checks the input (int8 of depth channels_in with a zero point in
 * [-128, 127], or packed int32 of depth ceil(channels_in / 32); rank `rank`,
 * batch dims[0]) and fills the input fields of *io. */
tfqp_status tfqp_binary_op_check_input(const tfqp_tensor *input, int32_t rank,
                                       int32_t channels_in, tfqp_binary_io *io,
                                       tfqp_error *error);

/* output_dims, once io's sizes and io->output_values are known: the output
 * type must be int8 or packed int32 (int32 with int32_output 1); dims =
 * outer[0 .. rank-1) (batch, then height and width), then the depth for that
 * type. */
tfqp_status tfqp_binary_op_output_dims(const tfqp_binary_io *io, tfqp_type output_type,
                                       int32_t rank, const int32_t *outer, int32_t *dims,
                                       tfqp_error *error);

/* prepare, after the op's own checks: transform and output given; the int8
 * output's options given and in range (P, N in [-255, 255],
 * -128 <= act_min <= act_max <= 127); the output of rank `rank` with dims
 * outer[0 .. rank-1) (see tfqp_tensor_check_output), then depth Cout (int8)
 * or ceil(Cout / 32) (packed), and its zero point; the transform's shape.
 * Fills the output formats and the int8-output options of *io. */
tfqp_status tfqp_binary_op_check_output(const tfqp_binary_op_names *names,
                                        const tfqp_binary_int8_options *options,
                                        const tfqp_tensor *output, const tfqp_tensor *transform,
                                        int32_t rank, const int32_t *outer, tfqp_binary_io *io,
                                        tfqp_error *error);

/* Where the op's table and scratch put what. */
typedef struct {
  int32_t padded_channels; /* Cout rounded up to the kernel's channel block */
  int32_t table_base;      /* word offset of the per-region sums */
  int32_t table_weights;   /* word offset of the repacked weights (vector builds) */
  uint64_t table_words;
  size_t table_bytes;      /* when the layout fits */
  size_t scratch_bytes;    /* when the layout fits */
} tfqp_binary_layout;

/* The table: per-channel constants, `regions` per-region sums per channel,
 * then (vector builds) the weights repacked, two words per word of a
 * channel's `weight_words`. The scratch: a clean packed copy of the input's
 * `input_pixels` pixels when eval needs one (int8 input, or packed input to
 * mask), then (vector builds) its nibble-split form, then `arm_bytes` (the
 * Cortex-M path's own, <= TFQP_MAX_BUFFER_BYTES). Fails with
 * TFQP_ERROR_TOO_LARGE when the largest layout of any build (channels padded
 * to 16, repacked weights, split input) needs a table or a scratch of more
 * than TFQP_MAX_BUFFER_BYTES (formats.h): every build accepts the same
 * layers, and every offset then fits int32. */
tfqp_status tfqp_binary_op_layout(const tfqp_binary_io *io, int32_t mask_input, uint64_t regions,
                                  uint64_t weight_words, uint64_t input_pixels,
                                  uint64_t arm_bytes, tfqp_binary_layout *layout,
                                  tfqp_error *error);

/* init_table, before the op's per-region sums: weights, transform and table
 * given; the table at least `needed_bytes` bytes and 4-byte aligned; the
 * padding bits of each of the `rows` weight rows (input_words words) 0 (the
 * error's value: the row); then the per-channel constants for K = taps
 * (tfqp_binary_channel_table, which checks the transform rows). */
tfqp_status tfqp_binary_op_init_channels(const tfqp_binary_op_names *names,
                                         const tfqp_binary_io *io, const tfqp_word *weights,
                                         size_t rows, const int32_t *transform, int32_t taps,
                                         int32_t *table, size_t table_bytes,
                                         size_t needed_bytes, tfqp_error *error);

/* eval: the input as packed words with clean padding bits. int8 input is
 * packed into *scratch, packed input copied there with its padding bits
 * cleared when mask_input, else used as it is; *scratch then points past what
 * was written. `pixels` rows of channels_in channels. */
const tfqp_word *tfqp_binary_op_packed_input(const tfqp_binary_io *io, int32_t mask_input,
                                             const void *input, int32_t pixels,
                                             tfqp_word **scratch);

#ifdef __cplusplus
}
#endif

#endif /* TFQP_BINARY_OP_H_ */
