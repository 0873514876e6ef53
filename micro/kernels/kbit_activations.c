/* Packed k-bit activations in and out of the int8-activation ops (contract in
 * tfqp/kbit_activations.h, format in formats.h). */
#include "tfqp/kbit_activations.h"

#include <stddef.h>

#include "tfqp/packing.h"

static size_t round4(size_t bytes) { return (bytes + 3u) & ~(size_t)3u; }

static tfqp_status check_bits(int32_t bits, const char *option, tfqp_error *error) {
  if (bits == 0 || TFQP_KBIT_VALID(bits)) return TFQP_OK;
  return tfqp_fail(error, TFQP_ERROR_OPTION_VALUE, "must be 0 (absent), 2 or 4", option, bits);
}

tfqp_kbit_options tfqp_kbit_options_of(int32_t input_bits, int32_t input_code_zero,
                                       int32_t output_bits, int32_t output_levels,
                                       int32_t channels_in) {
  tfqp_kbit_options k;
  k.input_bits = input_bits;
  k.input_code_zero = input_code_zero;
  k.output_bits = output_bits;
  k.output_levels = output_levels;
  k.channels_in = channels_in;
  return k;
}

tfqp_status tfqp_kbit_check_options(const tfqp_kbit_options *o, tfqp_error *error) {
  tfqp_status s;
  if ((s = check_bits(o->input_bits, "input_bits", error)) ||
      (s = check_bits(o->output_bits, "output_bits", error))) {
    return s;
  }
  if (o->input_bits == 0 && o->input_code_zero != 0) {
    return tfqp_fail(error, TFQP_ERROR_OPTIONS, "input_code_zero needs input_bits (a packed input)",
                     "input_code_zero", o->input_code_zero);
  }
  if (o->input_bits != 0) {
    if ((s = tfqp_check_option_range(o->input_code_zero, 0, (1 << o->input_bits) - 1,
                                     "must be in [0, 2^input_bits)", "input_code_zero", error))) {
      return s;
    }
  }
  if (o->output_bits != 0 &&
      (o->output_levels < 2 || o->output_levels > (1 << o->output_bits))) {
    return tfqp_fail(error, TFQP_ERROR_OPTIONS,
                     "output_bits (packed codes) needs output_levels in [2, 2^output_bits]",
                     "output_bits", o->output_bits);
  }
  return TFQP_OK;
}

/* *logical = *packed with the last dim `channels` and int8 elements. */
static void as_int8(const tfqp_tensor *packed, int32_t channels, int32_t zero_point,
                    tfqp_tensor *logical) {
  int64_t elements = channels;
  int32_t i;
  for (i = 0; i < packed->rank - 1; ++i) elements *= packed->dims[i];
  *logical = *packed;
  logical->type = TFQP_TYPE_INT8;
  logical->dims[packed->rank - 1] = channels;
  logical->zero_point = zero_point;
  /* a past-the-bound size: the op's tfqp_tensor_check rejects it (TOO_LARGE) */
  logical->bytes = elements > TFQP_MAX_TENSOR_BYTES ? (size_t)TFQP_MAX_TENSOR_BYTES + 1u
                                                    : (size_t)elements;
}

/* Checks a packed tensor: INT32, rank 1..6, last dim ceil(channels / P). */
static tfqp_status check_packed(const tfqp_tensor *t, int32_t bits, int32_t channels,
                                const char *role, const char *rule, tfqp_error *error) {
  tfqp_status s;
  if (t->type != TFQP_TYPE_INT32) {
    return tfqp_fail(error, TFQP_ERROR_TENSOR_TYPE, "packed k-bit tensor must be int32", role,
                     t->type);
  }
  if (t->rank < 1 || t->rank > TFQP_MAX_RANK) {
    return tfqp_fail(error, TFQP_ERROR_TENSOR_SHAPE, "rank must be in [1, 6]", role, t->rank);
  }
  if ((s = tfqp_tensor_check(t, role, TFQP_TYPE_INT32, t->rank, error))) return s;
  return tfqp_tensor_check_dim(t, t->rank - 1, TFQP_KBIT_WORDS(channels, bits), rule, role,
                               error);
}

tfqp_status tfqp_kbit_logical_input(const tfqp_kbit_options *o, const tfqp_tensor *input,
                                    tfqp_tensor *logical, tfqp_error *error) {
  tfqp_status s;
  if (!TFQP_KBIT_VALID(o->input_bits)) {
    *logical = *input; /* tfqp_kbit_io_init rejects other values of input_bits */
    return TFQP_OK;
  }
  if (o->channels_in == 0) {
    return tfqp_fail(error, TFQP_ERROR_OPTIONS,
                     "a packed input (input_bits) needs channels_in (its channels)",
                     "channels_in", 0);
  }
  if ((s = tfqp_check_channels_option(o->channels_in, "channels_in", error)) ||
      (s = check_packed(input, o->input_bits, o->channels_in, "input",
                        "packed input depth must equal ceil(channels_in / (32 / input_bits))",
                        error))) {
    return s;
  }
  as_int8(input, o->channels_in, o->input_code_zero, logical);
  return TFQP_OK;
}

tfqp_status tfqp_kbit_logical_output_type(const tfqp_kbit_options *o, tfqp_type output_type,
                                          tfqp_type *logical, tfqp_error *error) {
  *logical = output_type;
  if (!TFQP_KBIT_VALID(o->output_bits)) return TFQP_OK;
  if (output_type != TFQP_TYPE_INT32) {
    return tfqp_fail(error, TFQP_ERROR_TENSOR_TYPE,
                     "output must be int32 (packed codes) with output_bits", "output",
                     output_type);
  }
  *logical = TFQP_TYPE_INT8;
  return TFQP_OK;
}

tfqp_status tfqp_kbit_logical_output(const tfqp_kbit_options *o, const tfqp_tensor *output,
                                     int32_t channels_out, tfqp_tensor *logical,
                                     tfqp_error *error) {
  tfqp_status s;
  if (!TFQP_KBIT_VALID(o->output_bits)) {
    *logical = *output;
    return TFQP_OK;
  }
  if (channels_out < 1) {
    return tfqp_fail(error, TFQP_ERROR_TENSOR_SHAPE, "output channels (weights dim 0) must be >= 1",
                     "output", channels_out);
  }
  if ((s = check_packed(output, o->output_bits, channels_out, "output",
                        "packed codes output depth must equal ceil(Cout / (32 / output_bits))",
                        error))) {
    return s;
  }
  as_int8(output, channels_out, 0, logical);
  return TFQP_OK;
}

tfqp_status tfqp_kbit_dims_view(const tfqp_kbit_options *o, const tfqp_tensor *inputs,
                                tfqp_type output_type, tfqp_tensor *input, tfqp_type *type,
                                tfqp_error *error) {
  tfqp_status s;
  /* the widths first: they decide what the tensors are */
  if ((s = check_bits(o->input_bits, "input_bits", error)) ||
      (s = check_bits(o->output_bits, "output_bits", error)) ||
      (s = tfqp_kbit_logical_input(o, &inputs[0], input, error))) {
    return s;
  }
  return tfqp_kbit_logical_output_type(o, output_type, type, error);
}

tfqp_status tfqp_kbit_prepare_view(const tfqp_kbit_options *o, const tfqp_tensor *inputs,
                                   const tfqp_tensor *output, tfqp_tensor *input,
                                   tfqp_tensor *logical_output, tfqp_error *error) {
  const int32_t channels_out = inputs[1].rank >= 1 ? inputs[1].dims[0] : 0;
  const tfqp_status s = tfqp_kbit_logical_input(o, &inputs[0], input, error);
  return s ? s : tfqp_kbit_logical_output(o, output, channels_out, logical_output, error);
}

void tfqp_kbit_output_dims(const tfqp_kbit_options *o, int32_t rank,
                           int32_t dims[TFQP_MAX_RANK]) {
  if (o->output_bits != 0 && rank >= 1) {
    dims[rank - 1] = TFQP_KBIT_WORDS(dims[rank - 1], o->output_bits);
  }
}

tfqp_status tfqp_kbit_io_init(tfqp_kbit_io *io, const tfqp_kbit_options *o,
                              const tfqp_tensor *logical_input,
                              const tfqp_tensor *logical_output, size_t op_scratch,
                              tfqp_error *error) {
  /* the logical tensors passed the op's checks: < 2^28 bytes each */
  const uint64_t input_bytes = o->input_bits ? (uint64_t)logical_input->bytes : 0u;
  const uint64_t output_bytes = o->output_bits ? (uint64_t)logical_output->bytes : 0u;
  const uint64_t total = (uint64_t)round4(op_scratch) + ((input_bytes + 3u) & ~(uint64_t)3u) +
                         ((output_bytes + 3u) & ~(uint64_t)3u);
  const int32_t in_depth = logical_input->dims[logical_input->rank - 1];
  const int32_t out_depth = logical_output->dims[logical_output->rank - 1];
  const tfqp_status s = tfqp_kbit_check_options(o, error);
  if (s != TFQP_OK) return s;
  if (total > (uint64_t)TFQP_MAX_BUFFER_BYTES) {
    return tfqp_fail(error, TFQP_ERROR_TOO_LARGE,
                     "the scratch (the op's, the unpacked input, the codes) would exceed 2^28 "
                     "bytes",
                     "input", (int64_t)total);
  }
  io->input_bits = o->input_bits;
  io->input_channels = in_depth;
  io->input_rows = o->input_bits ? (int32_t)(input_bytes / (uint64_t)in_depth) : 0;
  io->output_bits = o->output_bits;
  io->output_channels = out_depth;
  io->output_rows = o->output_bits ? (int32_t)(output_bytes / (uint64_t)out_depth) : 0;
  io->input_at = round4(op_scratch);
  io->output_at = io->input_at + round4((size_t)input_bytes);
  io->scratch_bytes = (size_t)total;
  io->banded = 0;
  return TFQP_OK;
}

void tfqp_kbit_worst_band(const tfqp_window_axis *rows, tfqp_window_axis *band) {
  int32_t oy, first;
  tfqp_window_axis_band(rows, 0, 1, band, &first);
  for (oy = 1; oy < rows->out; ++oy) {
    tfqp_window_axis candidate;
    tfqp_window_axis_band(rows, oy, 1, &candidate, &first);
    if (candidate.in > band->in) *band = candidate;
  }
}

tfqp_status tfqp_kbit_io_init_rows(tfqp_kbit_io *io, const tfqp_kbit_options *o,
                                   const tfqp_tensor *logical_input,
                                   const tfqp_tensor *logical_output,
                                   const tfqp_window_axis *rows, size_t op_scratch,
                                   tfqp_error *error) {
  tfqp_window_axis band;
  size_t input_bytes, output_bytes;
  int64_t out_pixels;
  /* the whole tensors' conversions checked first: the rows' are smaller */
  const tfqp_status s =
      tfqp_kbit_io_init(io, o, logical_input, logical_output, op_scratch, error);
  if (s != TFQP_OK || (o->input_bits == 0 && o->output_bits == 0)) return s;
  tfqp_kbit_worst_band(rows, &band);
  io->banded = 1;
  io->batch = logical_input->dims[0];
  io->rows = *rows;
  io->in_width = logical_input->dims[2];
  io->out_width = logical_output->dims[2];
  io->in_pixel_bytes = (size_t)io->input_channels;
  io->in_pixel_words = o->input_bits ? (size_t)TFQP_KBIT_WORDS(io->input_channels, o->input_bits)
                                     : 0u;
  out_pixels = (int64_t)logical_output->dims[0] * logical_output->dims[1] *
               logical_output->dims[2]; /* >= 1: a checked output */
  io->out_pixel_bytes = logical_output->bytes / (size_t)out_pixels;
  io->out_pixel_words =
      o->output_bits ? (size_t)TFQP_KBIT_WORDS(io->output_channels, o->output_bits) : 0u;
  input_bytes = o->input_bits ? (size_t)band.in * (size_t)io->in_width * io->in_pixel_bytes : 0u;
  output_bytes = o->output_bits ? (size_t)io->out_width * (size_t)io->output_channels : 0u;
  io->input_at = round4(op_scratch);
  io->output_at = io->input_at + round4(input_bytes);
  io->scratch_bytes = io->output_at + round4(output_bytes);
  return TFQP_OK;
}

void tfqp_kbit_eval_rows(const tfqp_kbit_io *io, tfqp_kbit_rows_kernel kernel,
                         const void *params, const int32_t *table, const void *const *inputs,
                         void *output, void *scratch) {
  uint8_t *const codes_in = (uint8_t *)scratch + io->input_at;
  uint8_t *const codes_out = (uint8_t *)scratch + io->output_at;
  int32_t n, oy;
  for (n = 0; n < io->batch; ++n) {
    for (oy = 0; oy < io->rows.out; ++oy) {
      const size_t out_row = (size_t)n * (size_t)io->rows.out + (size_t)oy;
      tfqp_window_axis band;
      int32_t first;
      size_t in_row;
      const int8_t *x;
      void *y;
      tfqp_window_axis_band(&io->rows, oy, 1, &band, &first);
      in_row = (size_t)n * (size_t)io->rows.in + (size_t)first;
      if (io->input_bits) {
        /* codes u < 2^k <= 16: the same values as int8 */
        tfqp_unpack_codes((const tfqp_word *)inputs[0] + in_row * io->in_width * io->in_pixel_words,
                          band.in * io->in_width, io->input_channels, io->input_bits, codes_in);
        x = (const int8_t *)codes_in;
      } else {
        x = (const int8_t *)inputs[0] + in_row * io->in_width * io->in_pixel_bytes;
      }
      y = io->output_bits ? (void *)codes_out
                          : (void *)((uint8_t *)output + out_row * io->out_width * io->out_pixel_bytes);
      kernel(params, table, &band, x, inputs, y, scratch);
      if (io->output_bits) {
        tfqp_pack_codes(codes_out, io->out_width, io->output_channels, io->output_bits,
                        (tfqp_word *)output + out_row * io->out_width * io->out_pixel_words);
      }
    }
  }
}

const int8_t *tfqp_kbit_input(const tfqp_kbit_io *io, const void *input, void *scratch) {
  uint8_t *codes;
  if (io->input_bits == 0) return (const int8_t *)input;
  codes = (uint8_t *)scratch + io->input_at;
  /* codes u < 2^k <= 16: the same values as int8 */
  tfqp_unpack_codes((const tfqp_word *)input, io->input_rows, io->input_channels,
                    io->input_bits, codes);
  return (const int8_t *)codes;
}

void *tfqp_kbit_output(const tfqp_kbit_io *io, void *output, void *scratch) {
  return io->output_bits == 0 ? output : (unsigned char *)scratch + io->output_at;
}

void tfqp_kbit_finish(const tfqp_kbit_io *io, void *output, const void *scratch) {
  if (io->output_bits == 0) return;
  /* the codes are in [0, 2^k) (bases 0 in the table, at most 2^k - 1 steps) */
  tfqp_pack_codes((const uint8_t *)scratch + io->output_at, io->output_rows,
                  io->output_channels, io->output_bits, (tfqp_word *)output);
}
