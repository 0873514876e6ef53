/* The instruction-count benchmark image: runs every layer of bench_layers[]
 * between two calls of bench_mark, whose start the counting plugin
 * (insn_count_plugin.c) logs with the number of instructions executed so far.
 *
 * Marker sequence (benchmarks/mcu_cycles.py parses it):
 *   4 marks   bench_count_loop_check(COUNT_LOOP_N): the counter's validation
 *   2 marks   an empty measurement: mark(); mark();
 *   per layer, twice: mark(); <one kernel call>; mark();
 * The kernel's set-up (options, prepare, tables) runs before the first mark;
 * what lies between the marks is the eval call alone. After each call the
 * output is compared with the expected bytes.
 *
 * Output (semihosting): "layer <i> <name>: ok|FAIL ..." per layer.
 * Exit status: 0 iff every layer's output was right both times.
 */
#include <stdint.h>
#include <string.h>

#include "bench_layer.h"
#include "semihosting.h"
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

static int run_layer(uint32_t index, const bench_layer *l) {
  uint8_t *out = (uint8_t *)arena;
  uint8_t *next = out + ((l->output.bytes + 15u) & ~15u);
  uint8_t *const end = (uint8_t *)arena + sizeof arena;
  tfqp_tensor input, filter, transform, output;
  tfqp_error error;
  int rep;
  union {
    tfqp_bconv2d_params conv;
    tfqp_bfully_connected_params fc;
    tfqp_bmaxpool2d_params pool;
  } params;
  void *table = NULL;
  void *scratch = next;
  describe(&l->input, &input);
  describe(&l->filter, &filter);
  describe(&l->transform, &transform);
  describe(&l->output, &output);
  switch (l->kind) { /* set-up, not measured */
    case BENCH_BCONV2D: {
      tfqp_bconv2d_options o;
      if (tfqp_bconv2d_parse_options(l->options, l->options_bytes, &o, &error) != TFQP_OK ||
          tfqp_bconv2d_prepare(&o, &input, &filter, &transform, &output, &params.conv,
                               &error) != TFQP_OK) {
        return report(index, l, error.message);
      }
      table = next;
      scratch = next + ((params.conv.table_bytes + 15u) & ~15u);
      if ((uint8_t *)scratch + params.conv.scratch_bytes > end) {
        return report(index, l, "arena too small");
      }
      if (tfqp_bconv2d_init_table(&params.conv, (const tfqp_word *)l->filter.data,
                                  (const int32_t *)l->transform.data, (int32_t *)table,
                                  params.conv.table_bytes, &error) != TFQP_OK) {
        return report(index, l, error.message);
      }
      break;
    }
    case BENCH_BFULLY_CONNECTED: {
      tfqp_bfully_connected_options o;
      if (tfqp_bfully_connected_parse_options(l->options, l->options_bytes, &o, &error) !=
              TFQP_OK ||
          tfqp_bfully_connected_prepare(&o, &input, &filter, &transform, &output, &params.fc,
                                        &error) != TFQP_OK) {
        return report(index, l, error.message);
      }
      table = next;
      scratch = next + ((params.fc.table_bytes + 15u) & ~15u);
      if ((uint8_t *)scratch + params.fc.scratch_bytes > end) {
        return report(index, l, "arena too small");
      }
      if (tfqp_bfully_connected_init_table(&params.fc, (const tfqp_word *)l->filter.data,
                                           (const int32_t *)l->transform.data,
                                           (int32_t *)table, params.fc.table_bytes,
                                           &error) != TFQP_OK) {
        return report(index, l, error.message);
      }
      break;
    }
    case BENCH_BMAXPOOL2D: {
      tfqp_bmaxpool2d_options o;
      if (tfqp_bmaxpool2d_parse_options(l->options, l->options_bytes, &o, &error) != TFQP_OK ||
          tfqp_bmaxpool2d_prepare(&o, &input, &output, &params.pool, &error) != TFQP_OK) {
        return report(index, l, error.message);
      }
      break;
    }
    default:
      break;
  }
  for (rep = 0; rep < 2; ++rep) {
    memset(out, 0xA5, l->output.bytes);
    switch (l->kind) {
      case BENCH_BCONV2D:
        MEASURED(tfqp_bconv2d_eval(&params.conv, (const int32_t *)table, l->input.data,
                                   (const tfqp_word *)l->filter.data, out, scratch));
        break;
      case BENCH_BFULLY_CONNECTED:
        MEASURED(tfqp_bfully_connected_eval(&params.fc, (const int32_t *)table, l->input.data,
                                            (const tfqp_word *)l->filter.data, out,
                                            scratch));
        break;
      case BENCH_BMAXPOOL2D:
        MEASURED(tfqp_bmaxpool2d_eval(&params.pool, (const tfqp_word *)l->input.data,
                                      (tfqp_word *)(void *)out));
        break;
      case BENCH_PACK: {
        const int32_t channels = l->input.dims[l->input.rank - 1];
        MEASURED(tfqp_pack_int8((const int8_t *)l->input.data,
                                (int32_t)(l->input.bytes / (uint32_t)channels), channels,
                                l->pack_zero_point, (tfqp_word *)(void *)out));
        break;
      }
      case BENCH_INT8_CONV2D:
        MEASURED(bench_int8_conv2d(&l->int8, (const int8_t *)l->input.data,
                                   (const int8_t *)l->filter.data, l->bias, l->multiplier,
                                   l->shift, (int8_t *)out, (int16_t *)scratch));
        break;
      case BENCH_INT8_DEPTHWISE:
        MEASURED(bench_int8_depthwise_conv2d(&l->int8, (const int8_t *)l->input.data,
                                             (const int8_t *)l->filter.data, l->bias,
                                             l->multiplier, l->shift, (int8_t *)out));
        break;
      case BENCH_INT8_FULLY_CONNECTED:
        MEASURED(bench_int8_fully_connected(&l->int8, (const int8_t *)l->input.data,
                                            (const int8_t *)l->filter.data, l->bias,
                                            l->multiplier, l->shift, (int8_t *)out,
                                            (int16_t *)scratch));
        break;
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
