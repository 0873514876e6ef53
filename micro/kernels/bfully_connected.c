/* TFQP_BFULLY_CONNECTED: validation, table set-up and kernel (contract in
 * tfqp/bfully_connected.h, table arithmetic in binary_output.h). */
#include "tfqp/bfully_connected.h"

#include <stddef.h>
#include <string.h>
#include <stdint.h>

#include "binary_output.h"
#include "tfqp/flexbuffer.h"
#include "tfqp/packing.h"
#include "xnor_arm.h"
#include "xnor_avx2.h"
#include "xnor_popcount.h"

#define OPTION_COUNT 5

tfqp_status tfqp_bfully_connected_parse_options(
    const uint8_t *buffer, size_t length, tfqp_bfully_connected_options *options,
    tfqp_error *error) {
  const tfqp_option_field fields[OPTION_COUNT] = {
      {"channels_in", &options->channels_in},
      {"input_pos", &options->input_pos},
      {"input_neg", &options->input_neg},
      {"act_min", &options->act_min},
      {"act_max", &options->act_max}};
  tfqp_status status;
  int32_t i;
  for (i = 0; i < OPTION_COUNT; ++i) *fields[i].value = 0;
  status = tfqp_flex_read_options(buffer, length, fields, OPTION_COUNT,
                                  &options->present, error);
  if (status != TFQP_OK) return status;
  if (!(options->present & TFQP_BFC_CHANNELS_IN)) {
    return tfqp_fail(error, TFQP_ERROR_OPTIONS, "required option missing",
                     "channels_in", 0);
  }
  return TFQP_OK;
}

static tfqp_status check_range(int32_t value, int32_t low, int32_t high,
                               const char *message, const char *name,
                               tfqp_error *error) {
  if (value < low || value > high) {
    return tfqp_fail(error, TFQP_ERROR_OPTION_VALUE, message, name, value);
  }
  return TFQP_OK;
}

static tfqp_status check_input_side(const tfqp_bfully_connected_options *o,
                                    const tfqp_tensor *input,
                                    const tfqp_tensor *weights,
                                    tfqp_bfully_connected_params *p,
                                    tfqp_error *error) {
  tfqp_status s;
  int32_t words;
  if (o == NULL || input == NULL || weights == NULL || p == NULL) {
    return tfqp_fail(error, TFQP_ERROR_ARGUMENT, "NULL argument", "bfully_connected", 0);
  }
  if (!(o->present & TFQP_BFC_CHANNELS_IN)) {
    return tfqp_fail(error, TFQP_ERROR_OPTIONS, "required option missing",
                     "channels_in", 0);
  }
  if ((s = check_range(o->channels_in, 1, (1 << 30) - 1, "must be in [1, 2^30)",
                       "channels_in", error))) {
    return s;
  }
  words = TFQP_WORDS(o->channels_in);
  if (input->type == TFQP_TYPE_INT8) {
    if ((s = tfqp_tensor_check(input, "input", TFQP_TYPE_INT8, 2, error)) ||
        (s = tfqp_tensor_check_dim(input, 1, o->channels_in,
                                   "int8 input depth must equal channels_in", "input",
                                   error))) {
      return s;
    }
    if (input->zero_point < -128 || input->zero_point > 127) {
      return tfqp_fail(error, TFQP_ERROR_TENSOR_DATA,
                       "int8 zero point must be in [-128, 127]", "input",
                       input->zero_point);
    }
  } else if (input->type == TFQP_TYPE_INT32) {
    if ((s = tfqp_tensor_check(input, "input", TFQP_TYPE_INT32, 2, error)) ||
        (s = tfqp_tensor_check_dim(input, 1, words,
                                   "packed input depth must equal ceil(channels_in/32)",
                                   "input", error))) {
      return s;
    }
  } else {
    return tfqp_fail(error, TFQP_ERROR_TENSOR_TYPE,
                     "input must be int8 or packed int32", "input", input->type);
  }
  if ((s = tfqp_tensor_check(weights, "weights", TFQP_TYPE_INT32, 2, error)) ||
      (s = tfqp_tensor_check_dim(weights, 1, words,
                                 "weights dim 1 must equal ceil(channels_in/32)",
                                 "weights", error))) {
    return s;
  }
  p->batch = input->dims[0];
  p->channels_in = o->channels_in;
  p->input_words = words;
  p->channels_out = weights->dims[0];
  p->output_words = TFQP_WORDS(p->channels_out);
  p->input_packed = input->type == TFQP_TYPE_INT32;
  p->input_zero_point = p->input_packed ? 0 : input->zero_point;
  p->last_word_mask = TFQP_LAST_WORD_MASK(o->channels_in);
  p->mask_input = p->input_packed && (o->channels_in % TFQP_WORD_BITS) != 0;
  return TFQP_OK;
}

tfqp_status tfqp_bfully_connected_output_dims(
    const tfqp_bfully_connected_options *options, const tfqp_tensor *input,
    const tfqp_tensor *weights, tfqp_type output_type, int32_t dims[2],
    tfqp_error *error) {
  tfqp_bfully_connected_params p;
  tfqp_status s;
  memset(&p, 0, sizeof p);
  s = check_input_side(options, input, weights, &p, error);
  if (s != TFQP_OK) return s;
  if (output_type != TFQP_TYPE_INT8 && output_type != TFQP_TYPE_INT32) {
    return tfqp_fail(error, TFQP_ERROR_TENSOR_TYPE,
                     "output must be int8 or packed int32", "output", output_type);
  }
  dims[0] = p.batch;
  dims[1] = output_type == TFQP_TYPE_INT8 ? p.channels_out : p.output_words;
  return TFQP_OK;
}

/* Whether this build runs the Cortex-M kernels (xnor_arm.h) for these
 * parameters. They count the same x as the portable path, so only the packed
 * output's table entries differ: accumulator starts instead of D at x = 0. */
static int arm_path(const tfqp_bfully_connected_params *p) {
#if TFQP_HAVE_ARM_DSP
  return tfqp_arm_supported(p->channels_in);
#else
  (void)p;
  return 0;
#endif
}

tfqp_status tfqp_bfully_connected_prepare(
    const tfqp_bfully_connected_options *o, const tfqp_tensor *input,
    const tfqp_tensor *weights, const tfqp_tensor *transform,
    const tfqp_tensor *output, tfqp_bfully_connected_params *p,
    tfqp_error *error) {
  tfqp_status s;
  int32_t depth;
  if ((s = check_input_side(o, input, weights, p, error)) != TFQP_OK) return s;
  if (transform == NULL || output == NULL) {
    return tfqp_fail(error, TFQP_ERROR_ARGUMENT, "NULL argument", "bfully_connected", 0);
  }
  if (output->type == TFQP_TYPE_INT8) {
    p->output_packed = 0;
    depth = p->channels_out;
    if ((o->present & TFQP_BFC_INT8_OUTPUT) != TFQP_BFC_INT8_OUTPUT) {
      return tfqp_fail(error, TFQP_ERROR_OPTIONS,
                       "int8 output needs options input_pos, input_neg, act_min, act_max",
                       "bfully_connected options", (int64_t)o->present);
    }
  } else if (output->type == TFQP_TYPE_INT32) {
    p->output_packed = 1;
    depth = p->output_words;
  } else {
    return tfqp_fail(error, TFQP_ERROR_TENSOR_TYPE,
                     "output must be int8 or packed int32", "output", output->type);
  }
  if (o->present & TFQP_BFC_INT8_OUTPUT) {
    if ((s = check_range(o->input_pos, -255, 255, "must be in [-255, 255]", "input_pos", error)) ||
        (s = check_range(o->input_neg, -255, 255, "must be in [-255, 255]", "input_neg", error)) ||
        (s = check_range(o->act_min, -128, 127, "must be in [-128, 127]", "act_min", error)) ||
        (s = check_range(o->act_max, o->act_min, 127, "must be in [act_min, 127]", "act_max",
                         error))) {
      return s;
    }
  }
  if ((s = tfqp_tensor_check(output, "output", output->type, 2, error)) ||
      (s = tfqp_tensor_check_dim(output, 0, p->batch, "output batch must equal input batch",
                                 "output", error)) ||
      (s = tfqp_tensor_check_dim(output, 1, depth,
                                 p->output_packed
                                     ? "packed output depth must equal ceil(weights dim 0 / 32)"
                                     : "int8 output depth must equal weights dim 0",
                                 "output", error))) {
    return s;
  }
  if (!p->output_packed && (output->zero_point < -128 || output->zero_point > 127)) {
    return tfqp_fail(error, TFQP_ERROR_TENSOR_DATA,
                     "int8 zero point must be in [-128, 127]", "output",
                     output->zero_point);
  }
  if ((s = tfqp_tensor_check(transform, "transform", TFQP_TYPE_INT32, 2, error)) ||
      (s = tfqp_tensor_check_dim(transform, 0, p->channels_out,
                                 "transform dim 0 must equal weights dim 0", "transform",
                                 error)) ||
      (s = tfqp_tensor_check_dim(transform, 1,
                                 p->output_packed ? TFQP_TRANSFORM_PACKED_COLUMNS
                                                  : TFQP_TRANSFORM_INT8_COLUMNS,
                                 p->output_packed
                                     ? "transform must be [Cout, 2] for packed output"
                                     : "transform must be [Cout, 4] for int8 output",
                                 "transform", error))) {
    return s;
  }
  p->output_zero_point = p->output_packed ? 0 : output->zero_point;
  p->input_pos = o->input_pos;
  p->input_neg = o->input_neg;
  p->act_min = o->act_min;
  p->act_max = o->act_max;
  {
    const int64_t padded = tfqp_padded_channels(p->channels_out);
    const uint64_t channel_words =
        (uint64_t)padded * (p->output_packed ? TFQP_PACKED_CHANNEL_FIELDS : TFQP_INT8_CHANNEL_FIELDS);
    /* vector builds: weights repacked in nibble-split form (2 words per word) */
    const uint64_t weight_words = TFQP_HAVE_AVX2 ? (uint64_t)padded * p->input_words * 2 : 0;
    const uint64_t table_words = channel_words + (uint64_t)padded + weight_words;
    const uint64_t input_bytes = (uint64_t)p->batch * p->input_words * sizeof(tfqp_word);
    /* Cortex-M builds, int8 output: every channel's count */
    const uint64_t arm_bytes = (TFQP_HAVE_ARM_DSP && arm_path(p) && !p->output_packed)
                                   ? (uint64_t)p->channels_out * sizeof(uint32_t)
                                   : 0;
    /* a clean packed copy of the input, then (vector builds) its split form */
    const uint64_t scratch = ((p->input_packed && !p->mask_input) ? 0 : input_bytes) +
                             (TFQP_HAVE_AVX2 ? 2 * input_bytes : 0) + arm_bytes;
    if (table_words > INT32_MAX || table_words > SIZE_MAX / sizeof(int32_t) ||
        scratch > SIZE_MAX) {
      return tfqp_fail(error, TFQP_ERROR_TENSOR_SHAPE,
                       "table or scratch size exceeds the address space", "weights",
                       p->channels_out);
    }
    p->padded_channels = (int32_t)padded;
    p->table_base = (int32_t)channel_words;
    p->table_weights = (int32_t)(channel_words + (uint64_t)padded);
    p->table_bytes = (size_t)table_words * sizeof(int32_t);
    p->scratch_bytes = (size_t)scratch;
  }
  return TFQP_OK;
}

tfqp_status tfqp_bfully_connected_init_table(
    const tfqp_bfully_connected_params *p, const tfqp_word *weights,
    const int32_t *transform, int32_t *table, size_t table_bytes,
    tfqp_error *error) {
  const int32_t cout = p->channels_out;
  const int32_t cpad = p->padded_channels;
  const int32_t words = p->input_words;
  int32_t *base = table + p->table_base;
  tfqp_status s;
  int32_t co, w;
  if (weights == NULL || transform == NULL || table == NULL) {
    return tfqp_fail(error, TFQP_ERROR_ARGUMENT, "NULL argument", "bfully_connected", 0);
  }
  if (table_bytes < p->table_bytes || ((uintptr_t)table % sizeof(int32_t)) != 0) {
    return tfqp_fail(error, TFQP_ERROR_BUFFER,
                     "table smaller than params.table_bytes or not 4-byte aligned",
                     "table", (int64_t)table_bytes);
  }
  for (co = 0; co < cout; ++co) {
    if (weights[(size_t)co * words + words - 1] & ~p->last_word_mask) {
      return tfqp_fail(error, TFQP_ERROR_TENSOR_DATA,
                       "weights padding bits (channels >= channels_in) must be 0",
                       "weights", co);
    }
  }
  s = tfqp_binary_channel_table(transform, cout, cpad, p->output_packed, p->input_pos,
                                p->input_neg, p->channels_in, table, error);
  if (s != TFQP_OK) return s;
  for (co = 0; co < cpad; ++co) base[co] = 0;
  for (co = 0; co < cout; ++co) {
    const tfqp_word *row = weights + (size_t)co * words;
    int32_t ps = 0;
    for (w = 0; w < words; ++w) ps += (int32_t)tfqp_popcount32(row[w]);
    base[co] = p->output_packed
                   ? p->channels_in
                   : tfqp_binary_base_int8(transform + (size_t)co * TFQP_TRANSFORM_INT8_COLUMNS,
                                           p->input_pos, p->input_neg, p->channels_in, ps, 0);
#if TFQP_HAVE_ARM_DSP
    if (p->output_packed && arm_path(p)) {
      base[co] = (int32_t)tfqp_arm_packed_start(table[co], table[cpad + co], p->channels_in,
                                                p->channels_in);
    }
#endif
  }
#if TFQP_HAVE_AVX2
  tfqp_avx2_repack(weights, cout, cpad, words, (tfqp_word *)(table + p->table_weights));
#endif
  return TFQP_OK;
}

#if TFQP_HAVE_AVX2

static void fc_row(const tfqp_bfully_connected_params *p, const int32_t *table,
                   const tfqp_word *a, int32_t n, void *output) {
  const int32_t cout = p->channels_out;
  const int32_t cpad = p->padded_channels;
  const int32_t words = p->input_words;
  const int32_t *base = table + p->table_base;
  const tfqp_word *weights = (const tfqp_word *)(table + p->table_weights);
  const __m256i zero_point = _mm256_set1_epi32(p->output_zero_point);
  const __m256i act_min = _mm256_set1_epi32(p->act_min);
  const __m256i act_max = _mm256_set1_epi32(p->act_max);
  int32_t co, i;
  if (p->output_packed) {
    tfqp_word *out = (tfqp_word *)output + (size_t)n * p->output_words;
    for (i = 0; i < p->output_words; ++i) out[i] = 0;
  }
  for (co = 0; co < cout; co += 2 * TFQP_AVX2_LANES) {
    const tfqp_word *f = weights + (size_t)co * words * TFQP_AVX2_SPLIT;
    tfqp_avx2_counts c;
    int32_t half;
    tfqp_avx2_counts_init(&c, 2);
    tfqp_avx2_counts_run(&c, a, f, (size_t)words * TFQP_AVX2_SPLIT * TFQP_AVX2_LANES, words, 2);
    tfqp_avx2_counts_flush(&c, 2);
    for (half = 0; half < 2; ++half) {
      const int32_t first = co + half * TFQP_AVX2_LANES;
      const __m256i x = c.count[half];
      const int32_t count = cout - first < TFQP_AVX2_LANES ? cout - first : TFQP_AVX2_LANES;
      if (count <= 0) break;
      if (p->output_packed) {
        const uint32_t bits =
            tfqp_avx2_output_bits(x, base + first, table + first, table + cpad + first) &
            ((count == 8) ? 0xFFu : ((1u << count) - 1u));
        ((tfqp_word *)output)[(size_t)n * p->output_words + TFQP_WORD_INDEX(first)] |=
            bits << TFQP_BIT_INDEX(first);
      } else {
        const __m256i v = tfqp_avx2_output_int8(
            x, base + first, table + first, table + cpad + first, table + 2 * cpad + first,
            table + 3 * cpad + first, zero_point, act_min, act_max);
        tfqp_avx2_store_int8((int8_t *)output + (size_t)n * cout + first, v, count);
      }
    }
  }
}

#else

static void fc_row(const tfqp_bfully_connected_params *p, const int32_t *table,
                   const tfqp_word *a, const tfqp_word *weights, int32_t n, void *output) {
  const int32_t cout = p->channels_out;
  const int32_t cpad = p->padded_channels;
  const int32_t words = p->input_words;
  const int32_t *base = table + p->table_base;
  int8_t *out8 = p->output_packed ? NULL : (int8_t *)output + (size_t)n * cout;
  tfqp_word *outw =
      p->output_packed ? (tfqp_word *)output + (size_t)n * p->output_words : NULL;
  int32_t co = 0, i;
  if (outw != NULL) {
    for (i = 0; i < p->output_words; ++i) outw[i] = 0;
  }
  for (; co < cout; co += 4) {
    uint32_t acc[4] = {0, 0, 0, 0};
    const int32_t block = cout - co < 4 ? cout - co : 4;
    int32_t k;
    if (block == 4) {
      tfqp_xor_popcount_run4(a, weights + (size_t)co * words, (size_t)words, words, acc);
    } else {
      for (k = 0; k < block; ++k) {
        acc[k] = tfqp_xor_popcount_run1(a, weights + (size_t)(co + k) * words, words);
      }
    }
    for (k = 0; k < block; ++k) {
      const int32_t c = co + k;
      if (out8 != NULL) {
        out8[c] = tfqp_binary_output_int8(base[c], table[c], acc[k], table[cpad + c],
                                          table[2 * cpad + c], table[3 * cpad + c],
                                          p->output_zero_point, p->act_min, p->act_max);
      } else {
        outw[TFQP_WORD_INDEX(c)] |=
            tfqp_binary_output_bit(base[c], acc[k], table[c], table[cpad + c])
            << TFQP_BIT_INDEX(c);
      }
    }
  }
}

#endif /* TFQP_HAVE_AVX2 */

#if TFQP_HAVE_ARM_DSP
/* One input row on the Cortex-M kernels; x: channels_out words (int8 output). */
static void fc_row_arm(const tfqp_bfully_connected_params *p, const int32_t *table,
                       const tfqp_word *a, const tfqp_word *weights, int32_t n, void *output,
                       uint32_t *x) {
  const int32_t cout = p->channels_out;
  const int32_t cpad = p->padded_channels;
  const int32_t words = p->input_words;
  const int32_t *base = table + p->table_base;
  int32_t co;
  if (p->output_packed) {
    tfqp_word *out = (tfqp_word *)output + (size_t)n * p->output_words;
    for (co = 0; co < cout; co += 32) {
      out[TFQP_WORD_INDEX(co)] =
          tfqp_arm_xor_bits(a, weights + (size_t)co * words, words, (const uint32_t *)base + co,
                            cout - co < 32 ? cout - co : 32);
    }
  } else {
    int8_t *out = (int8_t *)output + (size_t)n * cout;
    tfqp_arm_xor_counts(a, weights, words, x, cout);
    for (co = 0; co < cout; ++co) {
      out[co] = tfqp_arm_output_int8(base[co], table[co], x[co], table[cpad + co],
                                     table[2 * cpad + co], table[3 * cpad + co],
                                     p->output_zero_point, p->act_min, p->act_max);
    }
  }
}
#endif

void tfqp_bfully_connected_eval(const tfqp_bfully_connected_params *p,
                                const int32_t *table, const void *input,
                                const tfqp_word *weights, void *output,
                                void *scratch) {
  const size_t words = (size_t)p->batch * p->input_words;
  const tfqp_word *packed = (const tfqp_word *)input;
  tfqp_word *free_scratch = (tfqp_word *)scratch;
  int32_t n;
  if (!p->input_packed) {
    tfqp_pack_int8((const int8_t *)input, p->batch, p->channels_in, p->input_zero_point,
                   free_scratch);
    packed = free_scratch;
    free_scratch += words;
  } else if (p->mask_input) {
    tfqp_mask_packed((const tfqp_word *)input, p->batch, p->channels_in, free_scratch);
    packed = free_scratch;
    free_scratch += words;
  }
#if TFQP_HAVE_AVX2
  (void)weights;
  tfqp_avx2_split(packed, words, free_scratch);
  for (n = 0; n < p->batch; ++n) {
    fc_row(p, table, free_scratch + (size_t)n * p->input_words * TFQP_AVX2_SPLIT, n, output);
  }
#else
#if TFQP_HAVE_ARM_DSP
  if (arm_path(p)) {
    for (n = 0; n < p->batch; ++n) {
      fc_row_arm(p, table, packed + (size_t)n * p->input_words, weights, n, output,
                 (uint32_t *)free_scratch);
    }
    return;
  }
#endif
  for (n = 0; n < p->batch; ++n) {
    fc_row(p, table, packed + (size_t)n * p->input_words, weights, n, output);
  }
#endif
}
