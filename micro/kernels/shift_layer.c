/* Validation and table of the shift ops (contract in tfqp/shift_layer.h; the
 * table layout in shift_op.h). Every size is computed in 64 bits and bounded
 * before it is stored, so the kernels' int32 / size_t index arithmetic cannot
 * overflow on 32-bit targets either. */
#include "tfqp/shift_layer.h"

#include <stddef.h>

#include "level_output.h"
#include "shift_fast.h"
#include "shift_op.h"

/* Table and scratch: the bound of every op (formats.h), far below int32 offsets. */
#define MAX_BUFFER_BYTES ((uint64_t)TFQP_MAX_BUFFER_BYTES)

static int64_t abs64(int64_t v) { return v < 0 ? -v : v; }

/* b of a code table with `columns` = 2^b columns, b in 1..5; 0 otherwise. */
static int32_t code_bits(int32_t columns) {
  int32_t bits;
  for (bits = TFQP_CODE_BITS_MIN; bits <= TFQP_CODE_BITS_MAX; ++bits) {
    if (columns == (1 << bits)) return bits;
  }
  return 0;
}

void tfqp_shift_output_defaults(tfqp_shift_output_options *options, uint32_t present,
                                int32_t first_bit) {
  if (!(present & (1u << first_bit))) options->terms = 1;
  if (!(present & (1u << (first_bit + 1)))) options->activation_min = -128;
  if (!(present & (1u << (first_bit + 2)))) options->activation_max = 127;
  if (!(present & (1u << (first_bit + 3)))) options->output_levels = 0;
  if (!(present & (1u << (first_bit + 4)))) options->output_bits = 0;
  if (!(present & (1u << (first_bit + 5)))) options->input_bits = 0;
  if (!(present & (1u << (first_bit + 6)))) options->input_code_zero = 0;
  options->activation_given = (present >> (first_bit + 1) & 3u) != 0;
}

tfqp_kbit_options tfqp_shift_kbit_options(const tfqp_shift_output_options *options,
                                          int32_t channels_in) {
  return tfqp_kbit_options_of(options->input_bits, options->input_code_zero,
                              options->output_bits, options->output_levels, channels_in);
}

static tfqp_status check_options(const tfqp_shift_output_options *o, tfqp_type output_type,
                                 tfqp_error *error) {
  tfqp_status s;
  if ((s = tfqp_check_option_range(o->terms, 1, INT32_MAX, "must be >= 1", "terms", error))) {
    return s;
  }
  if (output_type != TFQP_TYPE_INT8 && output_type != TFQP_TYPE_INT32) {
    return tfqp_fail(error, TFQP_ERROR_TENSOR_TYPE,
                     "output must be int8 (values) or int32 (packed bits)", "output",
                     output_type);
  }
  if (o->activation_given && output_type == TFQP_TYPE_INT32) {
    return tfqp_fail(error, TFQP_ERROR_OPTIONS,
                     "activation_min / activation_max apply to the int8 output only, not to a "
                     "packed output",
                     "activation_min", o->activation_min);
  }
  if ((s = tfqp_levels_check_option(o->output_levels, "output_levels", error))) return s;
  if (o->output_levels != 0 && output_type != TFQP_TYPE_INT8) {
    return tfqp_fail(error, TFQP_ERROR_OPTIONS,
                     "output_levels (the codes output) needs an int8 output tensor, not a packed "
                     "sign output",
                     "output_levels", o->output_levels);
  }
  if (o->output_levels != 0 && o->activation_given) {
    return tfqp_fail(error, TFQP_ERROR_OPTIONS,
                     "output_levels (the codes output) excludes activation_min / "
                     "activation_max: the thresholds give the codes' range",
                     "output_levels", o->output_levels);
  }
  if ((s = tfqp_check_option_range(o->activation_min, -128, 127, "must be in [-128, 127]",
                                   "activation_min", error))) {
    return s;
  }
  return tfqp_check_option_range(o->activation_max, o->activation_min, 127,
                                 "must be in [activation_min, 127]", "activation_max", error);
}

/* Bit `code` set iff the code decodes to 0 in every class of the code table
 * (int16 [classes][2^bits]). */
static uint32_t zero_codes(const int16_t *code_table, int32_t classes, int32_t bits) {
  const size_t stride = (size_t)1 << bits;
  uint32_t zero = 0;
  size_t code, c;
  for (code = 0; code < stride; ++code) {
    uint32_t all_zero = 1;
    for (c = 0; c < (size_t)classes; ++c) all_zero &= code_table[c * stride + code] == 0;
    zero |= all_zero << code;
  }
  return zero;
}

/* Whether the layer may have a dead word (one whose codes all decode to 0 in
 * every class): 1 unless prepare was given the codes and the code table
 * (tfqp/tensor.h) and no row has one. Reads only words the dims checked. */
static int32_t may_have_dead_words(const tfqp_shift_layer *layer, const tfqp_tensor *codes,
                                   const tfqp_tensor *code_table) {
  const int16_t *values = (const int16_t *)code_table->data;
  const tfqp_word *words = (const tfqp_word *)codes->data;
  uint32_t zero;
  size_t w;
  if (values == NULL || words == NULL || ((uintptr_t)words % sizeof(tfqp_word)) != 0 ||
      ((uintptr_t)values % sizeof(int16_t)) != 0 ||
      /* beyond the set-up work bound: lay_out_table rejects the layer */
      (uint64_t)layer->channels_out * (uint64_t)layer->row_codes > (uint64_t)TFQP_MAX_INIT_WORK) {
    return 1;
  }
  zero = zero_codes(values, layer->classes, layer->bits);
  if (zero == 0) return 0; /* no code decodes to 0: no word can be dead */
  for (w = 0; w < (size_t)layer->channels_out * (size_t)layer->row_words; ++w) {
    const int32_t first = (int32_t)(w % (size_t)layer->row_words) * layer->codes_per_word;
    const int32_t rest = layer->row_codes - first;
    const int32_t n = rest < layer->codes_per_word ? rest : layer->codes_per_word;
    uint32_t word = words[w];
    int32_t j, dead = 1;
    for (j = 0; j < n && dead; ++j, word >>= layer->bits) {
      dead = (int32_t)((zero >> (word & TFQP_CODE_MASK(layer->bits))) & 1u);
    }
    if (dead) return 1;
  }
  return 0;
}

tfqp_status tfqp_shift_layer_check_codes(tfqp_shift_layer *layer,
                                         const tfqp_shift_output_options *options,
                                         int64_t taps, const tfqp_tensor *input,
                                         const tfqp_tensor *codes,
                                         const tfqp_tensor *code_table,
                                         tfqp_type output_type, tfqp_error *error) {
  tfqp_status s;
  int64_t row_codes;
  int32_t bits;
  if (layer == NULL || options == NULL || input == NULL || codes == NULL || code_table == NULL) {
    return tfqp_fail(error, TFQP_ERROR_ARGUMENT, "NULL argument", "shift layer", 0);
  }
  if ((s = check_options(options, output_type, error))) return s;
  if (input->zero_point < -128 || input->zero_point > 127) {
    return tfqp_fail(error, TFQP_ERROR_TENSOR_DATA, "int8 zero point must be in [-128, 127]",
                     "input", input->zero_point);
  }
  if ((s = tfqp_tensor_check(code_table, "code_table", TFQP_TYPE_INT16, 2, error))) return s;
  if (code_table->dims[0] > TFQP_CODE_CLASSES_MAX) {
    return tfqp_fail(error, TFQP_ERROR_TENSOR_SHAPE,
                     "code table must have 1 or 2 rows (accumulator classes)", "code_table",
                     code_table->dims[0]);
  }
  bits = code_bits(code_table->dims[1]);
  if (bits == 0) {
    return tfqp_fail(error, TFQP_ERROR_TENSOR_SHAPE,
                     "code table must have 2^b columns, b in 1..5 (2, 4, 8, 16 or 32)",
                     "code_table", code_table->dims[1]);
  }
  if (code_table->dims[0] == 2 && options->output_levels != 0) {
    return tfqp_fail(error, TFQP_ERROR_TENSOR_SHAPE,
                     "two accumulator classes cannot give the codes output (output_levels "
                     "takes one class)",
                     "code_table", code_table->dims[0]);
  }
  if (code_table->dims[0] == 2 && output_type == TFQP_TYPE_INT32) {
    return tfqp_fail(error, TFQP_ERROR_TENSOR_SHAPE,
                     "two accumulator classes need the int8 output (a packed output takes one "
                     "class)",
                     "code_table", code_table->dims[0]);
  }
  /* taps <= 2^31 - 1 first: then the product is < 2^62 */
  row_codes = taps >= 1 && taps <= INT32_MAX ? taps * options->terms : (int64_t)INT32_MAX + 1;
  if (row_codes > INT32_MAX) {
    return tfqp_fail(error, TFQP_ERROR_OPTION_VALUE,
                     "terms * taps (codes per output channel) must be <= 2^31 - 1 (value: the "
                     "taps)",
                     "terms", taps);
  }
  if ((s = tfqp_tensor_check(codes, "codes", TFQP_TYPE_INT32, 2, error)) ||
      (s = tfqp_tensor_check_dim(codes, 1, TFQP_CODE_WORDS((int32_t)row_codes, bits),
                                 "codes dim 1 must equal ceil(terms * taps / codes per word)",
                                 "codes", error))) {
    return s;
  }
  layer->bits = bits;
  layer->codes_per_word = TFQP_CODES_PER_WORD(bits);
  layer->terms = options->terms;
  layer->taps = (int32_t)taps;
  layer->row_codes = (int32_t)row_codes;
  layer->row_words = codes->dims[1];
  layer->classes = code_table->dims[0];
  layer->channels_out = codes->dims[0];
  layer->input_zero_point = input->zero_point;
  layer->output_packed = output_type == TFQP_TYPE_INT32;
  layer->output_levels = options->output_levels;
  layer->codes_only = options->output_bits != 0;
  layer->output_depth =
      layer->output_packed ? TFQP_WORDS(layer->channels_out) : layer->channels_out;
  layer->output_zero_point = 0;
  layer->activation_min = options->activation_min;
  layer->activation_max = options->activation_max;
  layer->fully_connected = 0; /* the fully-connected op sets it */
  layer->live_words = TFQP_WORDS(layer->row_words);
  /* no dead word: one shared all-live bitmap row instead of Cout of them
   * (the table is RAM; the codes were checked against the layer's dims and
   * the set-up work bound above) */
  layer->live_stride =
      may_have_dead_words(layer, codes, code_table) ? (size_t)layer->live_words : 0u;
  return TFQP_OK;
}

/* Columns of the transform, and channel fields of the table, of the layer's
 * output. */
static int32_t transform_columns(const tfqp_shift_layer *layer) {
  if (layer->output_levels != 0) return TFQP_LEVELS_COLUMNS(layer->output_levels);
  return layer->output_packed ? TFQP_SHIFT_TRANSFORM_PACKED_COLUMNS
                              : TFQP_SHIFT_TRANSFORM_INT8_COLUMNS;
}

/* The table layout of tfqp_shift_layer; fails if it exceeds MAX_BUFFER_BYTES.
 * The codes output has no channel fields: it reads the transform rows. */
static tfqp_status lay_out_table(tfqp_shift_layer *layer, tfqp_error *error) {
  const uint64_t cout = (uint64_t)layer->channels_out;
  const uint64_t fields =
      layer->output_levels != 0 ? 0u : (uint64_t)transform_columns(layer);
  const uint64_t values = (uint64_t)layer->classes << layer->bits;
  const uint64_t live = (layer->live_stride != 0 ? cout : 1u) * (uint64_t)layer->live_words;
  /* the fast path's region (shift_fast.h) ends the table */
  const uint64_t words = values + fields * cout + live +
                         tfqp_shift_fast_table_bytes(layer) / sizeof(int32_t);
  if (words * sizeof(int32_t) > MAX_BUFFER_BYTES) {
    return tfqp_fail(error, TFQP_ERROR_TOO_LARGE,
                     "the op's table (code values, channel fields, live-word bitmap) would "
                     "exceed 2^28 bytes",
                     "codes", (int64_t)words);
  }
  /* init_table decodes every code once: bounded like the binary ops' set-up work
   * (row_codes < 2^31 and channels_out < 2^28, so the product fits uint64) */
  if (cout * (uint64_t)layer->row_codes > (uint64_t)TFQP_MAX_INIT_WORK) {
    return tfqp_fail(error, TFQP_ERROR_TOO_LARGE,
                     "decoding the codes (channels_out * codes per channel) would exceed 2^27 "
                     "codes of set-up work",
                     "codes", (int64_t)(cout * (uint64_t)layer->row_codes));
  }
  layer->channels_at = (size_t)values;
  layer->live_at = (size_t)(values + fields * cout);
  layer->table_bytes = (size_t)(words * sizeof(int32_t));
  return TFQP_OK;
}

tfqp_status tfqp_shift_layer_check_output(tfqp_shift_layer *layer, const tfqp_tensor *transform,
                                          const tfqp_tensor *output, int32_t rank,
                                          const int32_t *outer, int64_t pixels,
                                          int64_t patch_values, int32_t patch_step,
                                          int32_t depth_multiplier, tfqp_error *error) {
  const int32_t columns = transform_columns(layer);
  uint64_t scratch;
  tfqp_status s;
  if (transform == NULL || output == NULL) {
    return tfqp_fail(error, TFQP_ERROR_ARGUMENT, "NULL argument", "output", 0);
  }
  if ((s = tfqp_tensor_check_output(
           output, layer->output_packed ? TFQP_TYPE_INT32 : TFQP_TYPE_INT8, rank, outer,
           layer->output_depth,
           layer->output_packed ? "packed output depth must equal ceil(codes dim 0 / 32)"
                                : "int8 output depth must equal codes dim 0",
           error)) ||
      (s = tfqp_tensor_check(transform, "transform", TFQP_TYPE_INT32, 2, error)) ||
      (s = tfqp_tensor_check_dim(transform, 0, layer->channels_out,
                                 "transform dim 0 must equal codes dim 0", "transform", error)) ||
      (layer->output_levels != 0 &&
       (s = tfqp_levels_check_transform(transform, layer->channels_out, layer->output_levels,
                                        error))) ||
      (s = tfqp_tensor_check_dim(transform, 1, columns,
                                 layer->output_packed
                                     ? "transform must be [Cout, 2] (d, threshold) for packed "
                                       "output"
                                     : "transform must be [Cout, 5] (d, B, M0, M1, s) for int8 "
                                       "output",
                                 "transform", error))) {
    return s;
  }
  if (!layer->output_packed) {
    if (output->zero_point < -128 || output->zero_point > 127) {
      return tfqp_fail(error, TFQP_ERROR_TENSOR_DATA, "int8 zero point must be in [-128, 127]",
                       "output", output->zero_point);
    }
    layer->output_zero_point = output->zero_point;
  }
  scratch = (uint64_t)TFQP_SHIFT_PIXEL_BLOCK * (uint64_t)patch_values * sizeof(int16_t);
  scratch = (scratch + 3u) & ~(uint64_t)3u;
  if (patch_values < 1 || scratch > MAX_BUFFER_BYTES) {
    return tfqp_fail(error,
                     patch_values < 1 ? TFQP_ERROR_TENSOR_SHAPE : TFQP_ERROR_TOO_LARGE,
                     "the input patch of one output position would exceed 2^28 bytes of "
                     "scratch",
                     "input", patch_values);
  }
  layer->pixels = (int32_t)pixels; /* <= the output's elements < 2^31 */
  layer->patch_values = (int32_t)patch_values;
  layer->patch_step = patch_step;
  layer->depth_multiplier = depth_multiplier;
  layer->scratch_bytes = (size_t)scratch;
  return lay_out_table(layer, error);
}

/* ------------------------------------------------------------------ table */

/* Checks channel co's transform row and writes its fields; *bias gets |B|. */
static tfqp_status channel_fields(const tfqp_shift_layer *layer, const int32_t *row, int32_t co,
                                  int32_t *table, int64_t *bias, tfqp_error *error) {
  const size_t cout = (size_t)layer->channels_out;
  int32_t *fields = table + layer->channels_at + (size_t)co;
  int32_t f;
  if (layer->output_levels != 0) {
    *bias = 0; /* tfqp_levels_check_rows checked the row; eval reads it */
    return TFQP_OK;
  }
  if (row[0] != 1 && row[0] != -1) {
    return tfqp_fail(error, TFQP_ERROR_TENSOR_DATA,
                     "transform d must be +1 or -1 (value: the output channel)", "transform[:, 0]",
                     co);
  }
  if (layer->output_packed) {
    fields[TFQP_SHIFT_D * cout] = row[0];
    fields[TFQP_SHIFT_THRESHOLD * cout] = row[1];
    *bias = 0;
    return TFQP_OK;
  }
  if (row[TFQP_SHIFT_M0] < 0) {
    return tfqp_fail(error, TFQP_ERROR_TENSOR_DATA,
                     "transform M0 must be in [0, 2^31) (value: the output channel)",
                     "transform[:, 2]", co);
  }
  if (layer->classes == 1) {
    if (row[TFQP_SHIFT_M1] != 0) {
      return tfqp_fail(error, TFQP_ERROR_TENSOR_DATA,
                       "transform M1 must be 0 with one accumulator class (value: the output "
                       "channel)",
                       "transform[:, 3]", co);
    }
    if (row[TFQP_SHIFT_S] < -31 || row[TFQP_SHIFT_S] > 30) {
      return tfqp_fail(error, TFQP_ERROR_TENSOR_DATA,
                       "transform s must be in [-31, 30] with one accumulator class (value: the "
                       "output channel)",
                       "transform[:, 4]", co);
    }
  } else {
    if (row[TFQP_SHIFT_M1] < 0) {
      return tfqp_fail(error, TFQP_ERROR_TENSOR_DATA,
                       "transform M1 must be in [0, 2^31) (value: the output channel)",
                       "transform[:, 3]", co);
    }
    if (row[TFQP_SHIFT_S] < 0 || row[TFQP_SHIFT_S] > 62) {
      return tfqp_fail(error, TFQP_ERROR_TENSOR_DATA,
                       "transform s must be in [0, 62] with two accumulator classes (value: the "
                       "output channel)",
                       "transform[:, 4]", co);
    }
  }
  for (f = 0; f < TFQP_SHIFT_TRANSFORM_INT8_COLUMNS; ++f) fields[(size_t)f * cout] = row[f];
  *bias = abs64(row[TFQP_SHIFT_B]);
  return TFQP_OK;
}

/* Walks channel co's codes row: checks its padding bits, marks its live words
 * in `live` (zeroed; NULL: the layer shares one all-live row) and sums |w_c[k]| over its taps into sums[c]. `zero`: bit
 * `code` set iff the code decodes to 0 in every class. */
static tfqp_status walk_row(const tfqp_shift_layer *layer, const tfqp_word *row,
                            const int32_t *values, uint32_t zero, int32_t co, uint32_t *live,
                            int64_t sums[TFQP_CODE_CLASSES_MAX], tfqp_error *error) {
  const int32_t bits = layer->bits;
  const int32_t per_word = layer->codes_per_word;
  const size_t classes = (size_t)layer->classes;
  const size_t stride = (size_t)1 << bits;
  int64_t tap[TFQP_CODE_CLASSES_MAX] = {0, 0};
  int32_t w, j, t = 0;
  size_t c;
  for (w = 0; w < layer->row_words; ++w) {
    const int32_t rest = layer->row_codes - w * per_word;
    const int32_t n = rest < per_word ? rest : per_word;
    uint32_t word = row[w];
    uint32_t has_work = 0;
    if ((word & ~tfqp_code_word_mask(n, bits)) != 0) {
      return tfqp_fail(error, TFQP_ERROR_TENSOR_DATA,
                       "codes padding bits (above the last code of a word, or codes past "
                       "terms * taps in a row's last word) must be 0 (value: the output channel)",
                       "codes", co);
    }
    for (j = 0; j < n; ++j, word >>= bits) {
      const uint32_t code = word & TFQP_CODE_MASK(bits);
      has_work |= ~(zero >> code) & 1u;
      for (c = 0; c < classes; ++c) tap[c] += values[c * stride + code];
      if (++t == layer->terms) {
        t = 0;
        for (c = 0; c < classes; ++c) {
          sums[c] += abs64(tap[c]);
          tap[c] = 0;
        }
      }
    }
    if (live != NULL) live[w / TFQP_WORD_BITS] |= has_work << (w % TFQP_WORD_BITS);
  }
  return TFQP_OK;
}

tfqp_status tfqp_shift_layer_init_table(const tfqp_shift_layer *layer, const tfqp_word *codes,
                                        const int16_t *code_table, const int32_t *transform,
                                        const int32_t *code_lists, int32_t *table,
                                        size_t table_bytes, tfqp_error *error) {
  const size_t value_count = (size_t)layer->classes << layer->bits;
  const int32_t columns = transform_columns(layer);
  uint32_t *live = (uint32_t *)(table + layer->live_at);
  uint32_t zero;
  size_t i;
  int32_t co;
  tfqp_status s;
  if (codes == NULL || code_table == NULL || transform == NULL || table == NULL) {
    return tfqp_fail(error, TFQP_ERROR_ARGUMENT, "NULL argument", "table", 0);
  }
  if (table_bytes < layer->table_bytes || ((uintptr_t)table % sizeof(int32_t)) != 0) {
    return tfqp_fail(error, TFQP_ERROR_BUFFER,
                     "table smaller than params.table_bytes or not 4-byte aligned", "table",
                     (int64_t)table_bytes);
  }
  for (i = 0; i < value_count; ++i) {
    if (code_table[i] < -TFQP_CODE_VALUE_MAX || code_table[i] > TFQP_CODE_VALUE_MAX) {
      return tfqp_fail(error, TFQP_ERROR_TENSOR_DATA,
                       "code table entries must be in [-16384, 16384] (value: the flat index)",
                       "code_table", (int64_t)i);
    }
    table[i] = code_table[i];
  }
  zero = zero_codes(code_table, layer->classes, layer->bits);
  if (layer->live_stride != 0) {
    for (i = 0; i < (size_t)layer->channels_out * layer->live_stride; ++i) live[i] = 0;
  } else {
    /* the shared row: every word of a row live */
    for (i = 0; i < (size_t)layer->live_words; ++i) {
      const int32_t rest = layer->row_words - (int32_t)i * TFQP_WORD_BITS;
      live[i] = rest >= TFQP_WORD_BITS ? 0xFFFFFFFFu : (1u << rest) - 1u;
    }
  }
  if (layer->output_levels != 0 &&
      (s = tfqp_levels_check_rows(transform, layer->channels_out, layer->output_levels,
                                  error))) {
    return s;
  }
  for (co = 0; co < layer->channels_out; ++co) {
    int64_t sums[TFQP_CODE_CLASSES_MAX] = {0, 0};
    int64_t bias = 0;
    int32_t c;
    if ((s = channel_fields(layer, transform + (size_t)co * (size_t)columns, co, table, &bias,
                            error)) ||
        (s = walk_row(layer, codes + (size_t)co * (size_t)layer->row_words, table, zero, co,
                      layer->live_stride != 0 ? live + (size_t)co * layer->live_stride : NULL,
                      sums, error))) {
      return s;
    }
    for (c = 0; c < layer->classes; ++c) {
      /* sums[c] <= R * 2^14 < 2^45: no overflow */
      if (sums[c] * 255 + bias > INT32_MAX) {
        return tfqp_fail(error, TFQP_ERROR_TENSOR_DATA,
                         "accumulator could overflow: sum over the taps of |w| * 255 + |B| must "
                         "be < 2^31 (value: the output channel)",
                         "codes", co);
      }
    }
  }
  tfqp_shift_fast_init_table(layer, codes, transform, code_lists, table);
  return TFQP_OK;
}
