/* TFQP_BFULLY_CONNECTED: validation, table set-up and kernel (contract in
 * tfqp/bfully_connected.h, table arithmetic in binary_output.h). */
#include "tfqp/bfully_connected.h"

#include <stddef.h>
#include <string.h>
#include <stdint.h>

#include "binary_output.h"
#include "value_output.h"
#include "tfqp/flexbuffer.h"
#include "tfqp/op.h"
#include "xnor_arm.h"
#include "xnor_avx2.h"
#include "xnor_popcount.h"

/* The options of TFQP_BFULLY_CONNECTED, once: order = the TFQP_BFC_* bit order. */
#define KEY(field) {#field, offsetof(tfqp_bfully_connected_options, field)}
static const tfqp_option_key option_keys[] = {KEY(channels_in), KEY(input_pos), KEY(input_neg),
                                              KEY(act_min),     KEY(act_max),   KEY(int32_output)};
#undef KEY
#define OPTION_COUNT ((int32_t)(sizeof option_keys / sizeof option_keys[0]))

tfqp_status tfqp_bfully_connected_parse_options(
    const uint8_t *buffer, size_t length, tfqp_bfully_connected_options *options,
    tfqp_error *error) {
  return tfqp_flex_read_option_keys(buffer, length, option_keys, OPTION_COUNT, TFQP_BFC_REQUIRED,
                                    options, &options->present, error);
}

/* The errors of the checks shared with TFQP_BCONV2D. */
static const tfqp_binary_op_names names =
    TFQP_BINARY_OP_NAMES("bfully_connected", "weights");

static tfqp_status check_input_side(const tfqp_bfully_connected_options *o,
                                    const tfqp_tensor *input,
                                    const tfqp_tensor *weights,
                                    tfqp_bfully_connected_params *p,
                                    tfqp_error *error) {
  tfqp_status s;
  int32_t words;
  if (o == NULL || input == NULL || weights == NULL || p == NULL) {
    return tfqp_fail(error, TFQP_ERROR_ARGUMENT, "NULL argument", names.op, 0);
  }
  if (!(o->present & TFQP_BFC_CHANNELS_IN)) {
    return tfqp_fail(error, TFQP_ERROR_OPTIONS, "required option missing",
                     "channels_in", 0);
  }
  if ((s = tfqp_check_channels_option(o->channels_in, "channels_in", error)) ||
      (s = tfqp_check_option_range(o->int32_output, 0, 1, "must be 0 or 1", "int32_output",
                                   error))) {
    return s;
  }
  words = TFQP_WORDS(o->channels_in);
  if ((s = tfqp_binary_op_check_input(input, 2, o->channels_in, &p->io, error))) return s;
  if ((s = tfqp_tensor_check(weights, "weights", TFQP_TYPE_INT32, 2, error)) ||
      (s = tfqp_tensor_check_dim(weights, 1, words,
                                 "weights dim 1 must equal ceil(channels_in/32)",
                                 "weights", error))) {
    return s;
  }
  p->io.channels_out = weights->dims[0];
  p->io.output_words = TFQP_WORDS(p->io.channels_out);
  p->io.output_values = o->int32_output;
  p->mask_input = p->io.input_packed && (o->channels_in % TFQP_WORD_BITS) != 0;
  return TFQP_OK;
}

tfqp_status tfqp_bfully_connected_output_dims(
    const tfqp_bfully_connected_options *options, const tfqp_tensor *input,
    const tfqp_tensor *weights, tfqp_type output_type, int32_t dims[2],
    tfqp_error *error) {
  tfqp_bfully_connected_params p;
  tfqp_status s;
  memset(&p, 0, sizeof p);
  if ((s = check_input_side(options, input, weights, &p, error)) != TFQP_OK) return s;
  return tfqp_binary_op_output_dims(&p.io, output_type, 2, &p.io.batch, dims, error);
}

/* Whether this build runs the Cortex-M kernels (xnor_arm.h) for these
 * parameters. They count the same x as the portable path, so only the packed
 * output's table entries differ: accumulator starts instead of D at x = 0. */
static int arm_path(const tfqp_bfully_connected_params *p) {
#if TFQP_HAVE_ARM_DSP
  return tfqp_arm_supported(p->io.channels_in) && !p->io.output_values;
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
  tfqp_binary_layout layout;
  tfqp_status s;
  if ((s = check_input_side(o, input, weights, p, error)) != TFQP_OK) return s;
  {
    const tfqp_binary_int8_options int8 = {o->input_pos, o->input_neg, o->act_min, o->act_max,
                                           o->present, TFQP_BFC_INT8_OUTPUT};
    s = tfqp_binary_op_check_output(&names, &int8, output, transform, 2, &p->io.batch, &p->io,
                                    error);
    if (s != TFQP_OK) return s;
  }
  /* one region (every tap is valid); Cortex-M builds, int8 output: the count
   * of every channel in the scratch */
  s = tfqp_binary_op_layout(&p->io, p->mask_input, 1, (uint64_t)p->io.input_words,
                            (uint64_t)p->io.batch,
                            (TFQP_HAVE_ARM_DSP && arm_path(p) && !p->io.output_packed)
                                ? (uint64_t)p->io.channels_out * sizeof(uint32_t)
                                : 0,
                            &layout, error);
  if (s != TFQP_OK) return s;
  p->padded_channels = layout.padded_channels;
  p->table_base = layout.table_base;
  p->table_weights = layout.table_weights;
  p->arm = arm_path(p);
  p->table_bytes = layout.table_bytes;
  p->table_arm = 0;
#if TFQP_HAVE_ARM_DSP
  if (p->arm && !p->io.output_packed) {
    p->table_arm = tfqp_arm_out8_table(p->io.channels_out, &p->table_bytes);
  }
#endif
  p->scratch_bytes = layout.scratch_bytes;
  return TFQP_OK;
}

tfqp_status tfqp_bfully_connected_init_table(
    const tfqp_bfully_connected_params *p, const tfqp_word *weights,
    const int32_t *transform, int32_t *table, size_t table_bytes,
    tfqp_error *error) {
  const int32_t cout = p->io.channels_out;
  const int32_t cpad = p->padded_channels;
  const int32_t words = p->io.input_words;
  int32_t *base = table + p->table_base;
  tfqp_status s;
  int32_t co, w;
  s = tfqp_binary_op_init_channels(&names, &p->io, weights, (size_t)cout, transform,
                                   p->io.channels_in, table, table_bytes, p->table_bytes, error);
  if (s != TFQP_OK) return s;
  for (co = 0; co < cpad; ++co) base[co] = 0;
  for (co = 0; co < cout; ++co) {
    const tfqp_word *row = weights + (size_t)co * words;
    int32_t ps = 0;
    for (w = 0; w < words; ++w) ps += (int32_t)tfqp_popcount32(row[w]);
    base[co] = (p->io.output_packed || p->io.output_values)
                   ? p->io.channels_in
                   : tfqp_binary_base_int8(transform + (size_t)co * TFQP_TRANSFORM_INT8_COLUMNS,
                                           p->io.input_pos, p->io.input_neg, p->io.channels_in, ps,
                                           0);
#if TFQP_HAVE_ARM_DSP
    if (p->io.output_packed && arm_path(p)) {
      base[co] = (int32_t)tfqp_arm_packed_start(table[co], table[cpad + co], p->io.channels_in,
                                                p->io.channels_in);
    }
#endif
  }
#if TFQP_HAVE_ARM_DSP
  if (p->table_arm != 0) {
    /* one region: the records themselves */
    uint32_t *records = (uint32_t *)(table + p->table_arm + 1);
    table[p->table_arm] = tfqp_arm_out8_records(records, table, cpad, transform, &p->io,
                                                p->io.channels_in);
    tfqp_arm_out8_place(records, records, base, cout);
  }
#endif
#if TFQP_HAVE_AVX2
  tfqp_avx2_repack(weights, cout, cpad, words, (tfqp_word *)(table + p->table_weights));
#endif
  return TFQP_OK;
}

/* int32 value output, every build: portable counting over the packed input and
 * the original weights; D = Cin - 2x. */
static void fc_values(const tfqp_bfully_connected_params *p, const int32_t *table,
                      const tfqp_word *packed, const tfqp_word *weights, int32_t *output) {
  const int32_t cout = p->io.channels_out;
  const int32_t cpad = p->padded_channels;
  const int32_t words = p->io.input_words;
  const int32_t *base = table + p->table_base;
  int32_t n, co;
  for (n = 0; n < p->io.batch; ++n) {
    const tfqp_word *a = packed + (size_t)n * words;
    int32_t *out = output + (size_t)n * cout;
    for (co = 0; co < cout; ++co) {
      const uint32_t x = tfqp_xor_popcount_run1(a, weights + (size_t)co * words, words);
      out[co] = tfqp_value_output((int64_t)base[co] - 2 * (int64_t)x, table[co], table[cpad + co],
                                  table[2 * cpad + co]);
    }
  }
}

#if TFQP_HAVE_AVX2

static void fc_row(const tfqp_bfully_connected_params *p, const int32_t *table,
                   const tfqp_word *a, int32_t n, void *output) {
  const int32_t cout = p->io.channels_out;
  const int32_t words = p->io.input_words;
  const tfqp_word *weights = (const tfqp_word *)(table + p->table_weights);
  int32_t co, i;
  if (p->io.output_packed) {
    tfqp_word *out = (tfqp_word *)output + (size_t)n * p->io.output_words;
    for (i = 0; i < p->io.output_words; ++i) out[i] = 0;
  }
  for (co = 0; co < cout; co += 2 * TFQP_AVX2_LANES) {
    const tfqp_word *f = weights + (size_t)co * words * TFQP_AVX2_SPLIT;
    tfqp_avx2_counts c;
    tfqp_avx2_counts_init(&c, 2);
    tfqp_avx2_counts_run(&c, a, f, (size_t)words * TFQP_AVX2_SPLIT * TFQP_AVX2_LANES, words, 2);
    tfqp_avx2_counts_flush(&c, 2);
    tfqp_avx2_outputs(&c, 2, co, &p->io, table, p->padded_channels, table + p->table_base,
                      (size_t)n, output);
  }
}

#else

static void fc_row(const tfqp_bfully_connected_params *p, const int32_t *table,
                   const tfqp_word *a, const tfqp_word *weights, int32_t n, void *output) {
  const int32_t cout = p->io.channels_out;
  const int32_t cpad = p->padded_channels;
  const int32_t words = p->io.input_words;
  const int32_t *base = table + p->table_base;
  int8_t *out8 = p->io.output_packed ? NULL : (int8_t *)output + (size_t)n * cout;
  tfqp_word *outw =
      p->io.output_packed ? (tfqp_word *)output + (size_t)n * p->io.output_words : NULL;
  int32_t co = 0, i;
  if (outw != NULL) {
    for (i = 0; i < p->io.output_words; ++i) outw[i] = 0;
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
                                          p->io.output_zero_point, p->io.act_min, p->io.act_max);
      } else {
        outw[TFQP_WORD_INDEX(c)] |=
            tfqp_binary_output_bit(base[c], acc[k], table[c], table[cpad + c])
            << TFQP_BIT_INDEX(c);
      }
    }
  }
}

#endif /* TFQP_HAVE_AVX2 */

static inline void fc_eval(const tfqp_bfully_connected_params *p, const int32_t *table,
                           const void *input, const tfqp_word *weights, void *output,
                           void *scratch) {
  tfqp_word *free_scratch = (tfqp_word *)scratch;
  const tfqp_word *packed =
      tfqp_binary_op_packed_input(&p->io, p->mask_input, input, p->io.batch, &free_scratch);
  int32_t n;
  if (p->io.output_values) {
    fc_values(p, table, packed, weights, (int32_t *)output);
    return;
  }
#if TFQP_HAVE_AVX2
  (void)weights;
  tfqp_avx2_split(packed, (size_t)p->io.batch * p->io.input_words, free_scratch);
  for (n = 0; n < p->io.batch; ++n) {
    fc_row(p, table, free_scratch + (size_t)n * p->io.input_words * TFQP_AVX2_SPLIT, n, output);
  }
#else
#if TFQP_HAVE_ARM_DSP
  if (p->arm) {
    for (n = 0; n < p->io.batch; ++n) {
      /* x: the counts of every channel (int8 output) */
      tfqp_arm_outputs(packed + (size_t)n * p->io.input_words, weights, p->io.input_words, &p->io,
                       table, p->padded_channels, table + p->table_base,
                       tfqp_arm_out8_templates(table, p->table_arm),
                       (size_t)n, (uint32_t *)free_scratch, output);
    }
    return;
  }
#endif
  for (n = 0; n < p->io.batch; ++n) {
    fc_row(p, table, packed + (size_t)n * p->io.input_words, weights, n, output);
  }
#endif
}

void tfqp_bfully_connected_eval(const tfqp_bfully_connected_params *p,
                                const int32_t *table, const void *input,
                                const tfqp_word *weights, void *output,
                                void *scratch) {
  fc_eval(p, table, input, weights, output, scratch);
}

/* ------------------------------------------------------------- op table row */

static const char *const input_roles[] = {"input", "weights", "transform", "residual"};

static tfqp_status op_parse(const uint8_t *buffer, size_t length, tfqp_op_options *options,
                            tfqp_error *error) {
  return tfqp_bfully_connected_parse_options(buffer, length, &options->bfully_connected, error);
}

static tfqp_status op_output_dims(const tfqp_op_options *options, const tfqp_tensor *inputs,
                                  int32_t input_count, tfqp_type output_type, int32_t *rank,
                                  int32_t dims[TFQP_MAX_RANK], tfqp_error *error) {
  (void)input_count;
  *rank = 2;
  return tfqp_bfully_connected_output_dims(&options->bfully_connected, &inputs[0], &inputs[1],
                                           output_type, dims, error);
}

static tfqp_status op_prepare(const tfqp_op_options *options, const tfqp_tensor *inputs,
                              int32_t input_count, const tfqp_tensor *outputs,
                              tfqp_op_params *params, tfqp_op_buffers *buffers,
                              tfqp_error *error) {
  const tfqp_status s =
      tfqp_bfully_connected_prepare(&options->bfully_connected, &inputs[0], &inputs[1],
                                    &inputs[2], &outputs[0], &params->bfully_connected, error);
  tfqp_binary_io *io = &params->bfully_connected.io;
  if (s != TFQP_OK) return s;
  {
    const tfqp_status r = tfqp_value_prepare_residual(io->output_values, inputs, input_count,
                                                      &outputs[0], &io->residual,
                                                      &io->output_count, error);
    if (r != TFQP_OK) return r;
  }
  buffers->table_bytes = params->bfully_connected.table_bytes;
  buffers->scratch_bytes = params->bfully_connected.scratch_bytes;
  return TFQP_OK;
}

static tfqp_status op_init_table(const tfqp_op_params *params, const void *const *constants,
                                 int32_t *table, size_t table_bytes, tfqp_error *error) {
  return tfqp_bfully_connected_init_table(&params->bfully_connected,
                                          (const tfqp_word *)constants[1],
                                          (const int32_t *)constants[2], table, table_bytes,
                                          error);
}

static void op_eval(const tfqp_op_params *params, const int32_t *table,
                    const void *const *inputs, void *const *outputs, void *scratch) {
  fc_eval(&params->bfully_connected, table, inputs[0], (const tfqp_word *)inputs[1], outputs[0],
          scratch);
  if (params->bfully_connected.io.residual) {
    tfqp_value_add_residual((int32_t *)outputs[0], (const int32_t *)inputs[3],
                            params->bfully_connected.io.output_count);
  }
}

const tfqp_op tfqp_op_bfully_connected = {
    "TFQP_BFULLY_CONNECTED", 3, 4, 1, (1u << 1) | (1u << 2), input_roles,
    option_keys, OPTION_COUNT, offsetof(tfqp_bfully_connected_options, present),
    op_parse, op_output_dims, op_prepare, op_init_table, op_eval,
    sizeof(tfqp_bfully_connected_params)};
