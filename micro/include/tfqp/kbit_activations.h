/* Packed k-bit activations in and out of the int8-activation ops
 * (TFQP_SHIFT_CONV2D, TFQP_SHIFT_DEPTHWISE_CONV2D, TFQP_SHIFT_FULLY_CONNECTED,
 * TFQP_CONV2D_INT8, TFQP_FULLY_CONNECTED_INT8; format in formats.h, "Packed
 * k-bit activations").
 *
 * Options every one of them has:
 *   input_bits       0 (absent: int8 input) or k in {2, 4}: the input is packed
 *                    INT32 [..., ceil(C / P)], read as (u - input_code_zero)
 *                    where an int8 input is read as (q - zp_in); its own zero
 *                    point is ignored. C is the op's channels_in option
 *                    (required then).
 *   input_code_zero  in [0, 2^input_bits) (absent: 0); only with input_bits.
 *   output_bits      0 (absent) or k in {2, 4}, with output_levels in
 *                    [2, 2^k]: the output is packed INT32 [..., ceil(Cout / P)]
 *                    holding the code u = #{i : d*A >= t_i} of the codes
 *                    output (tfqp/shift_layer.h; base validated, not added).
 *
 * How: the op's row describes a packed input as the int8 tensor [..., C] of
 * its codes (zero point input_code_zero) and a packed output as the int8
 * tensor [..., Cout] of its codes, so the op's checks and every kernel path
 * run unchanged; eval unpacks the input into scratch before and packs the
 * codes from scratch after. The tensors between ops stay packed (2 or 4 bits
 * per value); the scratch holds the op's own, the unpacked input and the
 * codes. A dense op converts its whole tensors (the input's elements and the
 * output's in bytes). A convolution (tfqp_kbit_io_init_rows) runs its kernel
 * on one output row at a time (tfqp_window_axis_band: the same taps, the same
 * bytes): the scratch then holds only the input rows one output row reads
 * and one output row of codes, so packing shrinks the tensor arena.
 */
#ifndef TFQP_KBIT_ACTIVATIONS_H_
#define TFQP_KBIT_ACTIVATIONS_H_

#include <stddef.h>
#include <stdint.h>

#include "tfqp/formats.h"
#include "tfqp/geometry.h"
#include "tfqp/status.h"
#include "tfqp/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* An op's k-bit options (the members of its options struct) and its C. */
typedef struct {
  int32_t input_bits;
  int32_t input_code_zero;
  int32_t output_bits;
  int32_t output_levels;
  int32_t channels_in; /* C of a packed input (the op's option; 0: not given) */
} tfqp_kbit_options;

/* The prepared conversions of one op (in its params). */
typedef struct {
  int32_t input_bits;   /* 0: the input is read as it is */
  int32_t input_rows;   /* pixels of the packed input */
  int32_t input_channels;
  int32_t output_bits;  /* 0: the op writes its output itself */
  int32_t output_rows;
  int32_t output_channels;
  size_t input_at;      /* scratch offsets of the unpacked input and the codes */
  size_t output_at;
  size_t scratch_bytes; /* the op's own scratch first, then those two */
  /* a convolution run one output row at a time (tfqp_kbit_io_init_rows): */
  int32_t banded;          /* 1: eval by tfqp_kbit_eval_rows */
  int32_t batch;
  tfqp_window_axis rows;   /* the op's height axis */
  int32_t in_width;        /* input pixels per row */
  int32_t out_width;       /* output pixels per row */
  size_t in_pixel_bytes;   /* an int8 input pixel (unpacked: C) */
  size_t in_pixel_words;   /* a packed input pixel */
  size_t out_pixel_bytes;  /* an output pixel as the kernel writes it */
  size_t out_pixel_words;  /* a packed output pixel */
} tfqp_kbit_io;

/* The op's kernel on one band of output rows: `rows` the band's height axis
 * (tfqp_window_axis_band), batch 1; input the band's first input row (int8),
 * output its first output row; scratch the op's own. */
typedef void (*tfqp_kbit_rows_kernel)(const void *params, const int32_t *table,
                                      const tfqp_window_axis *rows, const int8_t *input,
                                      const void *const *inputs, void *output, void *scratch);

/* The options of an op (channels_in 0 when the op has none given). */
tfqp_kbit_options tfqp_kbit_options_of(int32_t input_bits, int32_t input_code_zero,
                                       int32_t output_bits, int32_t output_levels,
                                       int32_t channels_in);

/* Checks the options' ranges and rules (names the option at fault). */
tfqp_status tfqp_kbit_check_options(const tfqp_kbit_options *o, tfqp_error *error);

/* The tensor the op's checks and kernels read for input 0: a packed input as
 * int8 [..., C] with zero point input_code_zero (checked: INT32, last dim
 * ceil(C / P)); otherwise *input itself. */
tfqp_status tfqp_kbit_logical_input(const tfqp_kbit_options *o, const tfqp_tensor *input,
                                    tfqp_tensor *logical, tfqp_error *error);

/* The output type the op computes: int8 codes for a packed codes output
 * (output_type must then be INT32), else output_type. */
tfqp_status tfqp_kbit_logical_output_type(const tfqp_kbit_options *o, tfqp_type output_type,
                                          tfqp_type *logical, tfqp_error *error);

/* The tensor the op's checks read for output 0: a packed codes output as int8
 * [..., Cout] (checked: INT32, last dim ceil(Cout / P)), Cout = channels_out;
 * otherwise *output itself. */
tfqp_status tfqp_kbit_logical_output(const tfqp_kbit_options *o, const tfqp_tensor *output,
                                     int32_t channels_out, tfqp_tensor *logical,
                                     tfqp_error *error);

/* The packed output's dims from the op's int8 codes dims (last dim -> words). */
void tfqp_kbit_output_dims(const tfqp_kbit_options *o, int32_t rank,
                           int32_t dims[TFQP_MAX_RANK]);

/* output_dims of an op's row: *input = the logical input 0 of `inputs`,
 * *type = the logical output type (then the op's output_dims, then
 * tfqp_kbit_check_options: the op's own options are checked first). */
tfqp_status tfqp_kbit_dims_view(const tfqp_kbit_options *o, const tfqp_tensor *inputs,
                                tfqp_type output_type, tfqp_tensor *input, tfqp_type *type,
                                tfqp_error *error);

/* prepare of an op's row: *input / *output = the logical input 0 of
 * `inputs` and the logical `output`, Cout = input 1's dim 0 (the codes or
 * weights); input_bits / output_bits other than 2 or 4 leave them as they
 * are (tfqp_kbit_io_init then rejects the options). */
tfqp_status tfqp_kbit_prepare_view(const tfqp_kbit_options *o, const tfqp_tensor *inputs,
                                   const tfqp_tensor *output, tfqp_tensor *input,
                                   tfqp_tensor *logical_output, tfqp_error *error);

/* After the op's prepare on the logical tensors: checks the options
 * (tfqp_kbit_check_options), lays out the scratch after the op's own
 * `op_scratch` bytes; fails past TFQP_MAX_BUFFER_BYTES. */
tfqp_status tfqp_kbit_io_init(tfqp_kbit_io *io, const tfqp_kbit_options *o,
                              const tfqp_tensor *logical_input,
                              const tfqp_tensor *logical_output, size_t op_scratch,
                              tfqp_error *error);

/* tfqp_kbit_io_init for a convolution: input NHWC, output [N, OH, OW, ...]
 * as `rows` (the op's height axis) gives them; with a packed input or output
 * the op runs by rows (tfqp_kbit_eval_rows) and the k-bit scratch holds the
 * input rows of one output row and one output row of codes. */
tfqp_status tfqp_kbit_io_init_rows(tfqp_kbit_io *io, const tfqp_kbit_options *o,
                                   const tfqp_tensor *logical_input,
                                   const tfqp_tensor *logical_output,
                                   const tfqp_window_axis *rows, size_t op_scratch,
                                   tfqp_error *error);

/* The input rows one output row reads at most (the rows scratch a banded op
 * needs: `rows` of the band of the worst output row). */
void tfqp_kbit_worst_band(const tfqp_window_axis *rows, tfqp_window_axis *band);

/* eval of a banded op (io->banded): per image and output row, the input rows
 * it reads (unpacked into scratch if packed), `kernel` on them, the codes
 * packed into the output (if packed). */
void tfqp_kbit_eval_rows(const tfqp_kbit_io *io, tfqp_kbit_rows_kernel kernel,
                         const void *params, const int32_t *table, const void *const *inputs,
                         void *output, void *scratch);

/* eval: the input the op reads (the unpacked codes in scratch, or input). */
const int8_t *tfqp_kbit_input(const tfqp_kbit_io *io, const void *input, void *scratch);

/* eval: where the op writes its output (the codes in scratch, or output). */
void *tfqp_kbit_output(const tfqp_kbit_io *io, void *output, void *scratch);

/* eval, after the op: packs the codes into the output (if packed). */
void tfqp_kbit_finish(const tfqp_kbit_io *io, void *output, const void *scratch);

#ifdef __cplusplus
}
#endif

#endif /* TFQP_KBIT_ACTIVATIONS_H_ */
