/* The validation and set-up TFQP_BCONV2D and TFQP_BFULLY_CONNECTED share (see
 * tfqp/binary_op.h). */
#include "tfqp/binary_op.h"

#include "tfqp/formats.h"

#include "binary_output.h"
#include "tfqp/packing.h"
#include "value_output.h"

static tfqp_status check_zero_point(const tfqp_tensor *tensor, const char *role,
                                    tfqp_error *error) {
  if (tensor->zero_point < -128 || tensor->zero_point > 127) {
    return tfqp_fail(error, TFQP_ERROR_TENSOR_DATA, "int8 zero point must be in [-128, 127]",
                     role, tensor->zero_point);
  }
  return TFQP_OK;
}

tfqp_status tfqp_binary_op_check_input(const tfqp_tensor *input, int32_t rank,
                                       int32_t channels_in, tfqp_binary_io *io,
                                       tfqp_error *error) {
  tfqp_status s;
  if (input->type == TFQP_TYPE_INT8) {
    if ((s = tfqp_tensor_check(input, "input", TFQP_TYPE_INT8, rank, error)) ||
        (s = tfqp_tensor_check_dim(input, rank - 1, channels_in,
                                   "int8 input depth must equal channels_in", "input",
                                   error)) ||
        (s = check_zero_point(input, "input", error))) {
      return s;
    }
  } else if (input->type == TFQP_TYPE_INT32) {
    if ((s = tfqp_tensor_check(input, "input", TFQP_TYPE_INT32, rank, error)) ||
        (s = tfqp_tensor_check_dim(input, rank - 1, TFQP_WORDS(channels_in),
                                   "packed input depth must equal ceil(channels_in/32)",
                                   "input", error))) {
      return s;
    }
  } else {
    return tfqp_fail(error, TFQP_ERROR_TENSOR_TYPE, "input must be int8 or packed int32",
                     "input", input->type);
  }
  io->batch = input->dims[0];
  io->channels_in = channels_in;
  io->input_words = TFQP_WORDS(channels_in);
  io->input_packed = input->type == TFQP_TYPE_INT32;
  io->input_zero_point = io->input_packed ? 0 : input->zero_point;
  io->last_word_mask = TFQP_LAST_WORD_MASK(channels_in);
  return TFQP_OK;
}

static tfqp_status check_output_type(const tfqp_binary_io *io, tfqp_type output_type,
                                     tfqp_error *error) {
  if (io->output_values && output_type != TFQP_TYPE_INT32) {
    return tfqp_fail(error, TFQP_ERROR_TENSOR_TYPE, "int32_output 1 needs an int32 output",
                     "output", output_type);
  }
  if (output_type != TFQP_TYPE_INT8 && output_type != TFQP_TYPE_INT32) {
    return tfqp_fail(error, TFQP_ERROR_TENSOR_TYPE, "output must be int8 or packed int32",
                     "output", output_type);
  }
  return TFQP_OK;
}

/* The output's last dim for its type (int8, packed int32 or int32 values). */
static int32_t output_depth(const tfqp_binary_io *io, tfqp_type output_type) {
  return (output_type == TFQP_TYPE_INT8 || io->output_values) ? io->channels_out
                                                              : io->output_words;
}

tfqp_status tfqp_binary_op_output_dims(const tfqp_binary_io *io, tfqp_type output_type,
                                       int32_t rank, const int32_t *outer, int32_t *dims,
                                       tfqp_error *error) {
  const tfqp_status s = check_output_type(io, output_type, error);
  int32_t axis;
  if (s != TFQP_OK) return s;
  for (axis = 0; axis < rank - 1; ++axis) dims[axis] = outer[axis];
  dims[rank - 1] = output_depth(io, output_type);
  return TFQP_OK;
}

tfqp_status tfqp_binary_op_check_output(const tfqp_binary_op_names *names,
                                        const tfqp_binary_int8_options *options,
                                        const tfqp_tensor *output, const tfqp_tensor *transform,
                                        int32_t rank, const int32_t *outer, tfqp_binary_io *io,
                                        tfqp_error *error) {
  const uint32_t given = options->present & options->int8_bits;
  tfqp_status s;
  int32_t packed;
  if (transform == NULL || output == NULL) {
    return tfqp_fail(error, TFQP_ERROR_ARGUMENT, "NULL argument", names->op, 0);
  }
  if ((s = check_output_type(io, output->type, error)) != TFQP_OK) return s;
  packed = output->type == TFQP_TYPE_INT32 && !io->output_values;
  if (!packed && !io->output_values && given != options->int8_bits) {
    return tfqp_fail(error, TFQP_ERROR_OPTIONS,
                     "int8 output needs options input_pos, input_neg, act_min, act_max",
                     names->options, (int64_t)options->present);
  }
  /* given options are checked even when the output is packed */
  if (given != 0 &&
      ((s = tfqp_check_option_range(options->input_pos, -255, 255, "must be in [-255, 255]",
                                    "input_pos", error)) ||
       (s = tfqp_check_option_range(options->input_neg, -255, 255, "must be in [-255, 255]",
                                    "input_neg", error)) ||
       (s = tfqp_check_option_range(options->act_min, -128, 127, "must be in [-128, 127]",
                                    "act_min", error)) ||
       (s = tfqp_check_option_range(options->act_max, options->act_min, 127,
                                    "must be in [act_min, 127]", "act_max", error)))) {
    return s;
  }
  if ((s = tfqp_tensor_check_output(output, output->type, rank, outer,
                                    output_depth(io, output->type),
                                    io->output_values ? names->values_depth
                                    : packed          ? names->packed_depth
                                                      : names->int8_depth,
                                    error)) ||
      (!packed && !io->output_values && (s = check_zero_point(output, "output", error))) ||
      (s = tfqp_tensor_check(transform, "transform", TFQP_TYPE_INT32, 2, error)) ||
      (s = tfqp_tensor_check_dim(transform, 0, io->channels_out, names->transform_rows,
                                 "transform", error)) ||
      (s = tfqp_tensor_check_dim(
           transform, 1,
           io->output_values ? TFQP_TRANSFORM_VALUE_COLUMNS
           : packed          ? TFQP_TRANSFORM_PACKED_COLUMNS
                             : TFQP_TRANSFORM_INT8_COLUMNS,
           io->output_values ? "transform must be [Cout, 3] for int32 value output"
           : packed          ? "transform must be [Cout, 2] for packed output"
                             : "transform must be [Cout, 4] for int8 output",
           "transform", error))) {
    return s;
  }
  io->output_packed = packed;
  io->output_zero_point = (packed || io->output_values) ? 0 : output->zero_point;
  io->input_pos = options->input_pos;
  io->input_neg = options->input_neg;
  io->act_min = options->act_min;
  io->act_max = options->act_max;
  return TFQP_OK;
}

/* The largest channel block of any build (binary_output.h): the size limits
 * are checked on the largest layout any build makes, so that every build
 * accepts the same layers. */
#define LARGEST_CHANNEL_BLOCK 16

/* Table words of `channels` channels padded to `block`, with or without the
 * repacked weights. */
static uint64_t table_words(const tfqp_binary_io *io, int64_t channels, int64_t block,
                            uint64_t regions, uint64_t weight_words, int repacked) {
  const uint64_t padded = (uint64_t)((channels + block - 1) / block * block);
  const uint64_t fields = io->output_values   ? TFQP_VALUE_CHANNEL_FIELDS
                          : io->output_packed ? TFQP_PACKED_CHANNEL_FIELDS
                                              : TFQP_INT8_CHANNEL_FIELDS;
  /* vector builds: the weights in nibble-split form (2 words per word) */
  return padded * (fields + regions + (repacked ? 2 * weight_words : 0));
}

tfqp_status tfqp_binary_op_layout(const tfqp_binary_io *io, int32_t mask_input, uint64_t regions,
                                  uint64_t weight_words, uint64_t input_pixels,
                                  uint64_t arm_bytes, tfqp_binary_layout *layout,
                                  tfqp_error *error) {
  const uint64_t limit_words = (uint64_t)TFQP_MAX_BUFFER_BYTES / sizeof(int32_t);
  const int64_t padded = tfqp_padded_channels(io->channels_out);
  uint64_t input_bytes, copy_bytes, largest_table, largest_scratch;
  /* each term alone beyond the limit: the products below then fit uint64
   * (channels <= 2^28, every term <= 2^26) */
  if (regions > limit_words || weight_words > limit_words) {
    return tfqp_fail(error, TFQP_ERROR_TOO_LARGE, "precomputed table larger than 2^28 bytes",
                     "table", (int64_t)(regions > weight_words ? regions : weight_words));
  }
  /* input_pixels * input_words <= the input's elements < 2^28 */
  input_bytes = input_pixels * (uint64_t)io->input_words * sizeof(tfqp_word);
  copy_bytes = (io->input_packed && !mask_input) ? 0 : input_bytes;
  /* the largest any build makes: repacked weights, and the input's copy plus
   * its nibble-split form (2 words per word) */
  largest_table =
      table_words(io, io->channels_out, LARGEST_CHANNEL_BLOCK, regions, weight_words, 1) *
      sizeof(int32_t);
  largest_scratch = copy_bytes + 2 * input_bytes;
  if (largest_table > (uint64_t)TFQP_MAX_BUFFER_BYTES) {
    return tfqp_fail(error, TFQP_ERROR_TOO_LARGE, "precomputed table larger than 2^28 bytes",
                     "table", (int64_t)largest_table);
  }
  if (largest_scratch > (uint64_t)TFQP_MAX_BUFFER_BYTES) {
    return tfqp_fail(error, TFQP_ERROR_TOO_LARGE, "scratch larger than 2^28 bytes", "scratch",
                     (int64_t)largest_scratch);
  }
  /* this build's layout: at most the largest one, plus the Cortex-M path's
   * part, which that path bounds by TFQP_MAX_BUFFER_BYTES itself */
  layout->padded_channels = (int32_t)padded;
  layout->table_base = (int32_t)table_words(io, io->channels_out, TFQP_CHANNEL_BLOCK, 0, 0, 0);
  layout->table_weights = (int32_t)table_words(io, io->channels_out, TFQP_CHANNEL_BLOCK, regions,
                                               0, 0);
  layout->table_words =
      table_words(io, io->channels_out, TFQP_CHANNEL_BLOCK, regions, weight_words, TFQP_HAVE_AVX2);
  layout->table_bytes = (size_t)layout->table_words * sizeof(int32_t);
  layout->scratch_bytes = (size_t)(copy_bytes + (TFQP_HAVE_AVX2 ? 2 * input_bytes : 0) + arm_bytes);
  return TFQP_OK;
}

tfqp_status tfqp_binary_op_init_channels(const tfqp_binary_op_names *names,
                                         const tfqp_binary_io *io, const tfqp_word *weights,
                                         size_t rows, const int32_t *transform, int32_t taps,
                                         int32_t *table, size_t table_bytes,
                                         size_t needed_bytes, tfqp_error *error) {
  const int32_t words = io->input_words;
  size_t row;
  if (weights == NULL || transform == NULL || table == NULL) {
    return tfqp_fail(error, TFQP_ERROR_ARGUMENT, "NULL argument", names->op, 0);
  }
  if (table_bytes < needed_bytes || ((uintptr_t)table % sizeof(int32_t)) != 0) {
    return tfqp_fail(error, TFQP_ERROR_BUFFER,
                     "table smaller than params.table_bytes or not 4-byte aligned",
                     "table", (int64_t)table_bytes);
  }
  /* Padding bits of the weights must be 0: they would otherwise count. */
  if (io->last_word_mask != 0xFFFFFFFFu) {
    for (row = 0; row < rows; ++row) {
      if (weights[row * words + words - 1] & ~io->last_word_mask) {
        return tfqp_fail(error, TFQP_ERROR_TENSOR_DATA, names->padding_bits, names->weights,
                         (int64_t)row);
      }
    }
  }
  if (io->output_values) {
    /* |D| <= K */
    return tfqp_value_table(transform, io->channels_out,
                            (int32_t)tfqp_padded_channels(io->channels_out), taps, table, error);
  }
  return tfqp_binary_channel_table(transform, io->channels_out,
                                   (int32_t)tfqp_padded_channels(io->channels_out),
                                   io->output_packed, io->input_pos, io->input_neg, taps, table,
                                   error);
}

const tfqp_word *tfqp_binary_op_packed_input(const tfqp_binary_io *io, int32_t mask_input,
                                             const void *input, int32_t pixels,
                                             tfqp_word **scratch) {
  tfqp_word *copy = *scratch;
  if (!io->input_packed) {
    /* Binarize once; packed words built here have clean padding bits. */
    tfqp_pack_int8((const int8_t *)input, pixels, io->channels_in, io->input_zero_point, copy);
  } else if (mask_input) {
    /* Copy with the padding bits cleared: the kernels then never mask. */
    tfqp_mask_packed((const tfqp_word *)input, pixels, io->channels_in, copy);
  } else {
    return (const tfqp_word *)input;
  }
  *scratch = copy + (size_t)pixels * io->input_words;
  return copy;
}
