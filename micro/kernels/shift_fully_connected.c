/* TFQP_SHIFT_FULLY_CONNECTED: validation and the patch gather (contract in
 * tfqp/shift_fully_connected.h): the patch of row n is its Cin values minus
 * the zero point. The compute is shift_op.h's. */
#include "tfqp/shift_fully_connected.h"

#include <stddef.h>
#include <string.h>

#include "kbit_arm.h"
#include "shift_fast.h"
#include "shift_op.h"
#include "tfqp/flexbuffer.h"
#include "tfqp/op.h"

static const tfqp_option_key option_keys[] = {
    {"channels_in", offsetof(tfqp_shift_fully_connected_options, channels_in)},
    {"terms", offsetof(tfqp_shift_fully_connected_options, output.terms)},
    {"activation_min", offsetof(tfqp_shift_fully_connected_options, output.activation_min)},
    {"activation_max", offsetof(tfqp_shift_fully_connected_options, output.activation_max)},
    {"output_levels", offsetof(tfqp_shift_fully_connected_options, output.output_levels)},
    {"output_bits", offsetof(tfqp_shift_fully_connected_options, output.output_bits)},
    {"input_bits", offsetof(tfqp_shift_fully_connected_options, output.input_bits)},
    {"input_code_zero", offsetof(tfqp_shift_fully_connected_options, output.input_code_zero)}};
#define OPTION_COUNT ((int32_t)(sizeof option_keys / sizeof option_keys[0]))

tfqp_status tfqp_shift_fully_connected_parse_options(
    const uint8_t *buffer, size_t length, tfqp_shift_fully_connected_options *options,
    tfqp_error *error) {
  const tfqp_status s =
      tfqp_flex_read_option_keys(buffer, length, option_keys, OPTION_COUNT,
                                 TFQP_SHIFT_FC_REQUIRED, options, &options->present, error);
  if (s == TFQP_OK) tfqp_shift_output_defaults(&options->output, options->present, 1);
  return s;
}

static tfqp_status check_input_side(const tfqp_shift_fully_connected_options *o,
                                    const tfqp_tensor *input, const tfqp_tensor *codes,
                                    const tfqp_tensor *code_table, tfqp_type output_type,
                                    tfqp_shift_fully_connected_params *p, tfqp_error *error) {
  int64_t elements = 1;
  int32_t i;
  tfqp_status s;
  if (o == NULL || input == NULL || p == NULL) {
    return tfqp_fail(error, TFQP_ERROR_ARGUMENT, "NULL argument", "shift_fully_connected", 0);
  }
  if (!(o->present & TFQP_SHIFT_FC_REQUIRED)) {
    return tfqp_fail(error, TFQP_ERROR_OPTIONS, "required option missing", "channels_in", 0);
  }
  if ((s = tfqp_check_channels_option(o->channels_in, "channels_in", error))) {
    return s;
  }
  if (input->rank < 1 || input->rank > TFQP_MAX_RANK) {
    return tfqp_fail(error, TFQP_ERROR_TENSOR_SHAPE, "input rank must be in [1, 6]", "input",
                     input->rank);
  }
  if ((s = tfqp_tensor_check(input, "input", TFQP_TYPE_INT8, input->rank, error))) return s;
  for (i = 0; i < input->rank; ++i) elements *= input->dims[i]; /* < 2^31: checked */
  if (elements % o->channels_in != 0) {
    return tfqp_fail(error, TFQP_ERROR_TENSOR_SHAPE,
                     "input elements must be a multiple of channels_in (rows of Cin values)",
                     "input", elements);
  }
  if ((s = tfqp_shift_layer_check_codes(&p->layer, &o->output, o->channels_in, input, codes,
                                        code_table, output_type, error))) {
    return s;
  }
  p->layer.fully_connected = 1;
  p->batch = (int32_t)(elements / o->channels_in);
  p->channels_in = o->channels_in;
  return TFQP_OK;
}

tfqp_status tfqp_shift_fully_connected_output_dims(
    const tfqp_shift_fully_connected_options *options, const tfqp_tensor *input,
    const tfqp_tensor *codes, const tfqp_tensor *code_table, tfqp_type output_type,
    int32_t dims[2], tfqp_error *error) {
  tfqp_shift_fully_connected_params p;
  tfqp_status s;
  memset(&p, 0, sizeof p);
  if ((s = check_input_side(options, input, codes, code_table, output_type, &p, error))) {
    return s;
  }
  dims[0] = p.batch;
  dims[1] = p.layer.output_depth;
  return TFQP_OK;
}

/* The live-code lists' tensor (formats.h): INT32 [Cout + 1 + E] with E <=
 * Cout * R, for one accumulator class and K <= 2^16. */
static tfqp_status check_code_lists_shape(const tfqp_shift_layer *layer,
                                          const tfqp_tensor *code_lists, int32_t *words,
                                          tfqp_error *error) {
  const int64_t starts = (int64_t)layer->channels_out + 1;
  tfqp_status s;
  *words = 0;
  if (code_lists == NULL) return TFQP_OK;
  if ((s = tfqp_tensor_check(code_lists, "code_lists", TFQP_TYPE_INT32, 1, error))) return s;
  if (layer->classes != 1) {
    return tfqp_fail(error, TFQP_ERROR_TENSOR_SHAPE,
                     "live-code lists take one accumulator class (value: the code table's "
                     "classes)",
                     "code_lists", layer->classes);
  }
  if (layer->taps > TFQP_CODE_LIST_MAX_TAPS) {
    return tfqp_fail(error, TFQP_ERROR_TENSOR_SHAPE,
                     "live-code lists need channels_in <= 65536 (a tap fits 16 bits)",
                     "code_lists", layer->taps);
  }
  if (code_lists->dims[0] < starts ||
      code_lists->dims[0] - starts > (int64_t)layer->channels_out * layer->row_codes) {
    return tfqp_fail(error, TFQP_ERROR_TENSOR_SHAPE,
                     "code_lists must hold Cout + 1 starts and at most Cout * terms * taps "
                     "entries (value: its length)",
                     "code_lists", code_lists->dims[0]);
  }
  *words = code_lists->dims[0];
  return TFQP_OK;
}

/* Channel co's list entries [*next, end) against its row: one entry per
 * nonzero code, in row order, each (tap, value) (formats.h). */
static tfqp_status check_channel_list(const tfqp_shift_layer *layer, const tfqp_word *row,
                                      const int16_t *values, const int32_t *entries,
                                      int32_t next, int32_t end, int32_t co,
                                      tfqp_error *error) {
  int32_t r;
  for (r = 0; r < layer->row_codes; ++r) {
    const int32_t value = values[tfqp_code_at(row, r, layer->bits)];
    if (value == 0) continue;
    if (next == end) {
      return tfqp_fail(error, TFQP_ERROR_TENSOR_DATA,
                       "a channel's list has fewer entries than its row has nonzero codes "
                       "(value: the output channel)",
                       "code_lists", co);
    }
    if ((uint32_t)entries[next] != tfqp_code_list_entry(r / layer->terms, value)) {
      return tfqp_fail(error, TFQP_ERROR_TENSOR_DATA,
                       "a list entry differs from its code's (tap, value) (value: the output "
                       "channel)",
                       "code_lists", co);
    }
    ++next;
  }
  if (next != end) {
    return tfqp_fail(error, TFQP_ERROR_TENSOR_DATA,
                     "a channel's list has more entries than its row has nonzero codes (value: "
                     "the output channel)",
                     "code_lists", co);
  }
  return TFQP_OK;
}

/* The lists' starts (0 first, nondecreasing, the entries' count last) and
 * every entry against the codes, before anything reads an entry. */
static tfqp_status check_code_lists(const tfqp_shift_layer *layer, const tfqp_word *codes,
                                    const int16_t *values, const int32_t *lists, int32_t words,
                                    tfqp_error *error) {
  const int32_t cout = layer->channels_out;
  const int32_t *entries = lists + (size_t)cout + 1;
  const int32_t count = words - cout - 1;
  tfqp_status s;
  int32_t co;
  if (lists[0] != 0) {
    return tfqp_fail(error, TFQP_ERROR_TENSOR_DATA, "the first start must be 0 (value: it)",
                     "code_lists", lists[0]);
  }
  if (lists[cout] != count) {
    return tfqp_fail(error, TFQP_ERROR_TENSOR_DATA,
                     "the last start must equal the entries' count (value: it)", "code_lists",
                     lists[cout]);
  }
  for (co = 0; co < cout; ++co) {
    if (lists[co + 1] < lists[co]) {
      return tfqp_fail(error, TFQP_ERROR_TENSOR_DATA,
                       "starts must be nondecreasing (value: the output channel)", "code_lists",
                       co);
    }
  }
  for (co = 0; co < cout; ++co) {
    if ((s = check_channel_list(layer, codes + (size_t)co * (size_t)layer->row_words, values,
                                entries, lists[co], lists[co + 1], co, error))) {
      return s;
    }
  }
  return TFQP_OK;
}

tfqp_status tfqp_shift_fully_connected_prepare(
    const tfqp_shift_fully_connected_options *options, const tfqp_tensor *input,
    const tfqp_tensor *codes, const tfqp_tensor *code_table, const tfqp_tensor *transform,
    const tfqp_tensor *code_lists, const tfqp_tensor *output,
    tfqp_shift_fully_connected_params *p, tfqp_error *error) {
  tfqp_status s;
  if (output == NULL) return tfqp_fail(error, TFQP_ERROR_ARGUMENT, "NULL argument", "output", 0);
  if ((s = check_input_side(options, input, codes, code_table, output->type, p, error))) {
    return s;
  }
  if ((s = tfqp_shift_layer_check_output(&p->layer, transform, output, 2, &p->batch, p->batch,
                                         p->channels_in, 0, 1, error)) ||
      (s = check_code_lists_shape(&p->layer, code_lists, &p->code_list_words, error))) {
    return s;
  }
  {
    const size_t fast = tfqp_shift_fast_fully_connected_scratch_bytes(p);
    if (fast > p->layer.scratch_bytes) p->layer.scratch_bytes = fast;
  }
  return TFQP_OK;
}

tfqp_status tfqp_shift_fully_connected_init_table(
    const tfqp_shift_fully_connected_params *params, const tfqp_word *codes,
    const int16_t *code_table, const int32_t *transform, const int32_t *code_lists,
    int32_t *table, size_t table_bytes, tfqp_error *error) {
  tfqp_status s;
  if (params->code_list_words != 0) {
    if (codes == NULL || code_table == NULL || code_lists == NULL) {
      return tfqp_fail(error, TFQP_ERROR_ARGUMENT, "NULL argument", "code_lists", 0);
    }
    /* the codes' padding bits are checked by init_table below; the lists read
     * only the codes of each row */
    if ((s = check_code_lists(&params->layer, codes, code_table, code_lists,
                              params->code_list_words, error))) {
      return s;
    }
  }
  return tfqp_shift_layer_init_table(&params->layer, codes, code_table, transform,
                                     params->code_list_words != 0 ? code_lists : NULL, table,
                                     table_bytes, error);
}

static void gather_row(const void *params, const int8_t *input, int32_t row, int16_t *patch) {
  const tfqp_shift_fully_connected_params *p = (const tfqp_shift_fully_connected_params *)params;
  const int8_t *q = input + (size_t)row * (size_t)p->channels_in;
  const int32_t zp = p->layer.input_zero_point;
  int32_t ci;
  for (ci = 0; ci < p->channels_in; ++ci) patch[ci] = (int16_t)(q[ci] - zp);
}

void tfqp_shift_fully_connected_eval(const tfqp_shift_fully_connected_params *params,
                                     const int32_t *table, const int8_t *input,
                                     const tfqp_word *codes, const int32_t *transform,
                                     const int32_t *code_lists, void *scratch, void *output) {
  if (tfqp_shift_fast_fully_connected(params, table, transform, input, codes,
                                      params->code_list_words != 0 ? code_lists : NULL,
                                      scratch, output)) {
    return;
  }
  tfqp_shift_eval(&params->layer, table, transform, codes, params, gather_row, input, scratch,
                  output);
}

/* ------------------------------------------------------------- op table row */

static const char *const input_roles[] = {"input", "codes", "code_table", "transform",
                                           "code_lists"};

static tfqp_status op_parse(const uint8_t *buffer, size_t length, tfqp_op_options *options,
                            tfqp_error *error) {
  return tfqp_shift_fully_connected_parse_options(buffer, length,
                                                  &options->shift_fully_connected, error);
}

static tfqp_kbit_options kbit_of(const tfqp_op_options *options) {
  const tfqp_shift_fully_connected_options *o = &options->shift_fully_connected;
  return tfqp_shift_kbit_options(&o->output,
                                 (o->present & TFQP_SHIFT_FC_REQUIRED) ? o->channels_in : 0);
}

/* On the tensors the kernels read: a packed input or codes output as int8. */
static tfqp_status op_output_dims(const tfqp_op_options *options, const tfqp_tensor *inputs,
                                  int32_t input_count, tfqp_type output_type, int32_t *rank,
                                  int32_t dims[TFQP_MAX_RANK], tfqp_error *error) {
  const tfqp_kbit_options k = kbit_of(options);
  tfqp_tensor input;
  tfqp_type type;
  tfqp_status s;
  (void)input_count;
  *rank = 2;
  if ((s = tfqp_kbit_dims_view(&k, inputs, output_type, &input, &type, error)) ||
      (s = tfqp_shift_fully_connected_output_dims(&options->shift_fully_connected, &input,
                                                  &inputs[1], &inputs[2], type, dims, error))) {
    return s;
  }
  if ((s = tfqp_kbit_check_options(&k, error))) return s;
  tfqp_kbit_output_dims(&k, 2, dims);
  return TFQP_OK;
}

static tfqp_status op_prepare(const tfqp_op_options *options, const tfqp_tensor *inputs,
                              int32_t input_count, const tfqp_tensor *outputs,
                              tfqp_op_params *params, tfqp_op_buffers *buffers,
                              tfqp_error *error) {
  tfqp_shift_fully_connected_params *p = &params->shift_fully_connected;
  const tfqp_kbit_options k = kbit_of(options);
  tfqp_tensor input, output;
  tfqp_status s;
  if ((s = tfqp_kbit_prepare_view(&k, inputs, &outputs[0], &input, &output, error)) ||
      (s = tfqp_shift_fully_connected_prepare(&options->shift_fully_connected, &input,
                                              &inputs[1], &inputs[2], &inputs[3],
                                              input_count > 4 ? &inputs[4] : NULL, &output, p,
                                              error)) ||
      (s = tfqp_kbit_io_init(&p->kbit, &k, &input, &output, p->layer.scratch_bytes, error))) {
    return s;
  }
  buffers->table_bytes = p->layer.table_bytes;
  buffers->scratch_bytes = p->kbit.scratch_bytes;
  return TFQP_OK;
}

static tfqp_status op_init_table(const tfqp_op_params *params, const void *const *constants,
                                 int32_t *table, size_t table_bytes, tfqp_error *error) {
  return tfqp_shift_fully_connected_init_table(
      &params->shift_fully_connected, (const tfqp_word *)constants[1],
      (const int16_t *)constants[2], (const int32_t *)constants[3],
      /* constants[4] exists only with the optional input */
      params->shift_fully_connected.code_list_words != 0 ? (const int32_t *)constants[4] : NULL,
      table, table_bytes, error);
}

static void op_eval(const tfqp_op_params *params, const int32_t *table,
                    const void *const *inputs, void *const *outputs, void *scratch) {
  const tfqp_shift_fully_connected_params *p = &params->shift_fully_connected;
  void *const output = tfqp_kbit_output(&p->kbit, outputs[0], scratch);
  /* a packed input on Cortex-M: read as it is, without the unpacked copy */
  if (!tfqp_kbit_arm_fully_connected(p, table, (const int32_t *)inputs[3],
                                     (const tfqp_word *)inputs[0], (const tfqp_word *)inputs[1],
                                     scratch, output)) {
    tfqp_shift_fully_connected_eval(p, table, tfqp_kbit_input(&p->kbit, inputs[0], scratch),
                                    (const tfqp_word *)inputs[1], (const int32_t *)inputs[3],
                                    p->code_list_words != 0 ? (const int32_t *)inputs[4] : NULL,
                                    scratch, output);
  }
  tfqp_kbit_finish(&p->kbit, outputs[0], scratch);
}

const tfqp_op tfqp_op_shift_fully_connected = {
    "TFQP_SHIFT_FULLY_CONNECTED", 4, 5, 1, (1u << 1) | (1u << 2) | (1u << 3) | (1u << 4),
    input_roles,
    option_keys, OPTION_COUNT, offsetof(tfqp_shift_fully_connected_options, present),
    op_parse, op_output_dims, op_prepare, op_init_table, op_eval,
    sizeof(tfqp_shift_fully_connected_params)};
