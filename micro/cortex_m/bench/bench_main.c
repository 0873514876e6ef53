/* The instruction-count benchmark image: runs every layer of bench_layers[]
 * between two calls of bench_mark, whose start the counting plugin
 * (insn_count_plugin.c) logs with the number of instructions executed so far.
 *
 * Marker sequence (benchmarks/mcu_cycles.py parses it):
 *   4 marks   bench_count_loop_check(COUNT_LOOP_N): the counter's validation
 *   2 marks   an empty measurement: mark(); mark();
 *   per layer, twice: mark(); <one kernel call>; mark();
 * The kernel's set-up (TFQP ops: through the op table, arity, parse,
 * output_dims, prepare, init_table) runs before the first mark; what lies
 * between the marks is the call alone (TFQP ops: the row's eval). After each call the
 * output is compared with the expected bytes.
 *
 * Output (semihosting): "layer <i> <name>: ok|FAIL ..." per layer.
 * Exit status: 0 iff every layer's output was right both times.
 */
#include <stdint.h>
#include <string.h>

#include "bench_layer.h"
#include "semihosting.h"
#include "tfqp/op.h"
#include "tfqp/tfqp.h"

#ifndef BENCH_ARENA_BYTES
#define BENCH_ARENA_BYTES (1024 * 1024)
#endif
#define COUNT_LOOP_N 1000

void bench_mark(void);
void bench_count_loop_check(int32_t n);

static uint32_t arena[BENCH_ARENA_BYTES / 4];

static void describe(const kernel_case_tensor *t, tfqp_tensor *out) {
  tfqp_tensor_init(out, t->type, t->rank, t->dims, t->bytes, t->zero_point);
}

static int report(uint32_t index, const bench_layer *layer, const char *problem) {
  semihosting_write("layer ");
  semihosting_write_int(index);
  semihosting_write(" ");
  semihosting_write(layer->name);
  semihosting_write(problem == NULL ? ": ok\n" : ": FAIL ");
  if (problem != NULL) {
    semihosting_write(problem);
    semihosting_write("\n");
  }
  return problem == NULL ? 0 : 1;
}

/* The call between the markers; the compiler must not move work across them
 * (bench_mark is an external assembly function, so it cannot). */
#define MEASURED(call) \
  do {                 \
    bench_mark();      \
    call;              \
    bench_mark();      \
  } while (0)

/* An op of the C op table: set-up through the table (not measured), then the
 * row's eval between the marks. */
static int run_op_layer(uint32_t index, const bench_layer *l) {
  uint8_t *out = (uint8_t *)arena;
  uint8_t *next = out + ((l->output.bytes + 15u) & ~15u);
  uint8_t *const end = (uint8_t *)arena + sizeof arena;
  const tfqp_op *op = tfqp_find_op(l->op, strlen(l->op));
  tfqp_tensor inputs[TFQP_OP_MAX_INPUTS], output;
  const void *data[TFQP_OP_MAX_INPUTS] = {0};
  const void *constants[TFQP_OP_MAX_INPUTS] = {0};
  void *outputs[TFQP_OP_MAX_OUTPUTS];
  tfqp_op_options options;
  tfqp_op_params params;
  tfqp_op_buffers buffers;
  tfqp_error error;
  int32_t i, rank, dims[TFQP_MAX_RANK];
  const int32_t count = (int32_t)l->input_count;
  int rep;
  int32_t *table = NULL;
  void *scratch;
  if (op == NULL) return report(index, l, "unknown op");
  for (i = 0; i < count; ++i) {
    describe(&l->inputs[i], &inputs[i]);
    data[i] = l->inputs[i].data;
    if (op->constant_inputs & (1u << i)) constants[i] = data[i];
  }
  describe(&l->output, &output);
  outputs[0] = out;
  if (tfqp_op_check_arity(op, count, 1, &error) != TFQP_OK ||
      op->parse(l->options, l->options_bytes, &options, &error) != TFQP_OK ||
      op->output_dims(&options, inputs, count, output.type, &rank, dims, &error) != TFQP_OK ||
      op->prepare(&options, inputs, count, &output, &params, &buffers, &error) != TFQP_OK) {
    return report(index, l, error.message);
  }
  if (buffers.table_bytes > 0) table = (int32_t *)(void *)next;
  scratch = next + ((buffers.table_bytes + 15u) & ~15u);
  if ((uint8_t *)scratch + buffers.scratch_bytes > end) return report(index, l, "arena too small");
  if (op->init_table != NULL &&
      op->init_table(&params, constants, table, buffers.table_bytes, &error) != TFQP_OK) {
    return report(index, l, error.message);
  }
  for (rep = 0; rep < 2; ++rep) {
    memset(out, 0xA5, l->output.bytes);
    MEASURED(op->eval(&params, table, data, outputs, scratch));
    if (memcmp(out, l->output.data, l->output.bytes) != 0) {
      return report(index, l, "output differs from the expected bytes");
    }
  }
  return report(index, l, NULL);
}

/* One measured call of a CMSIS-NN baseline; NULL or what went wrong. */
static const char *run_cmsis_nn(const bench_layer *l, uint8_t *out, void *scratch) {
  const int8_t *input = (const int8_t *)l->inputs[0].data;
  const int8_t *filter = (const int8_t *)l->inputs[1].data;
  const int32_t scratch_bytes = (int32_t)((uint8_t *)arena + sizeof arena - (uint8_t *)scratch);
  int32_t status = BENCH_CMSIS_NN_FAILED;
  switch (l->kind) {
    case BENCH_CMSIS_NN_CONV2D:
      MEASURED(status = bench_cmsis_nn_conv2d(&l->int8, input, filter, l->bias, l->multiplier,
                                              l->shift, (int8_t *)out, scratch, scratch_bytes));
      break;
    case BENCH_CMSIS_NN_DEPTHWISE:
      MEASURED(status = bench_cmsis_nn_depthwise_conv2d(&l->int8, input, filter, l->bias,
                                                        l->multiplier, l->shift, (int8_t *)out,
                                                        scratch, scratch_bytes));
      break;
    case BENCH_CMSIS_NN_CONV2D_S4:
      MEASURED(status = bench_cmsis_nn_conv2d_s4(&l->int8, input, filter, l->bias, l->multiplier,
                                                 l->shift, (int8_t *)out, scratch,
                                                 scratch_bytes));
      break;
    case BENCH_CMSIS_NN_FULLY_CONNECTED_S4:
      MEASURED(status = bench_cmsis_nn_fully_connected_s4(&l->int8, input, filter, l->bias,
                                                          l->multiplier, l->shift, (int8_t *)out,
                                                          scratch, scratch_bytes));
      break;
    default:
      MEASURED(status = bench_cmsis_nn_fully_connected(&l->int8, input, filter, l->bias,
                                                       l->multiplier, l->shift, (int8_t *)out,
                                                       scratch, scratch_bytes));
      break;
  }
  if (status == BENCH_CMSIS_NN_MISSING) return "image built without CMSIS-NN (CMSIS_NN=<dir>)";
  return status == BENCH_CMSIS_NN_OK ? NULL : "CMSIS-NN call failed";
}

/* The packing utility and the int8 baselines, called directly. */
static int run_layer(uint32_t index, const bench_layer *l) {
  uint8_t *out = (uint8_t *)arena;
  uint8_t *next = out + ((l->output.bytes + 15u) & ~15u);
  void *scratch = next;
  int rep;
  if (l->kind == BENCH_OP) return run_op_layer(index, l);
  for (rep = 0; rep < 2; ++rep) {
    memset(out, 0xA5, l->output.bytes);
    switch (l->kind) {
      case BENCH_PACK: {
        const int32_t channels = l->inputs[0].dims[l->inputs[0].rank - 1];
        MEASURED(tfqp_pack_int8((const int8_t *)l->inputs[0].data,
                                (int32_t)(l->inputs[0].bytes / (uint32_t)channels), channels,
                                l->pack_zero_point, (tfqp_word *)(void *)out));
        break;
      }
      case BENCH_INT8_CONV2D:
        MEASURED(bench_int8_conv2d(&l->int8, (const int8_t *)l->inputs[0].data,
                                   (const int8_t *)l->inputs[1].data, l->bias, l->multiplier,
                                   l->shift, (int8_t *)out, (int16_t *)scratch));
        break;
      case BENCH_INT8_DEPTHWISE:
        MEASURED(bench_int8_depthwise_conv2d(&l->int8, (const int8_t *)l->inputs[0].data,
                                             (const int8_t *)l->inputs[1].data, l->bias,
                                             l->multiplier, l->shift, (int8_t *)out));
        break;
      case BENCH_INT8_FULLY_CONNECTED:
        MEASURED(bench_int8_fully_connected(&l->int8, (const int8_t *)l->inputs[0].data,
                                            (const int8_t *)l->inputs[1].data, l->bias,
                                            l->multiplier, l->shift, (int8_t *)out,
                                            (int16_t *)scratch));
        break;
      case BENCH_CMSIS_NN_CONV2D:
      case BENCH_CMSIS_NN_DEPTHWISE:
      case BENCH_CMSIS_NN_FULLY_CONNECTED:
      case BENCH_CMSIS_NN_CONV2D_S4:
      case BENCH_CMSIS_NN_FULLY_CONNECTED_S4: {
        const char *problem = run_cmsis_nn(l, out, scratch);
        if (problem != NULL) return report(index, l, problem);
        break;
      }
      default:
        return report(index, l, "unknown kernel kind");
    }
    if (memcmp(out, l->output.data, l->output.bytes) != 0) {
      return report(index, l, "output differs from the expected bytes");
    }
  }
  return report(index, l, NULL);
}

int main(void) {
  uint32_t i;
  int failures = 0;
  bench_count_loop_check(COUNT_LOOP_N);
  bench_mark(); /* the empty measurement */
  bench_mark();
  for (i = 0; i < bench_layer_count; ++i) failures += run_layer(i, &bench_layers[i]);
  return failures == 0 ? 0 : 1;
}
