/* On-target kernel tests: runs every vector of kernel_test_cases[] (generated
 * by kernel_vectors.py from the host build's outputs) through the TFQP
 * kernels compiled for this core and compares the output bytes.
 *
 * Output (semihosting): the kernel variant, one line per failing case, then
 * "kernel tests: <passed> passed, <failed> failed, <count> cases".
 * Exit status: 0 iff every case passed (qemu-system-arm passes it on).
 *
 * Each output buffer is poisoned before eval and followed by a guard band that
 * must be unchanged afterwards, so a stale result or a write past the end of
 * the output fails the case.
 */
#include <stdint.h>
#include <string.h>

#include "kernel_test_case.h"
#include "semihosting.h"
#include "tfqp/op.h"
#include "tfqp/tfqp.h"

#ifndef KERNEL_TEST_ARENA_BYTES
#define KERNEL_TEST_ARENA_BYTES (256 * 1024)
#endif
#define GUARD_BYTES 64u
#define POISON 0xA5u

static uint32_t arena[KERNEL_TEST_ARENA_BYTES / 4];

/* --- the host extension's error text ---------------------------------------- */

typedef struct {
  char text[256];
  uint32_t length;
} message;

static void append(message *m, const char *s) {
  while (*s != '\0' && m->length + 1 < sizeof m->text) m->text[m->length++] = *s++;
  m->text[m->length] = '\0';
}

static void append_int(message *m, int64_t value) {
  char digits[24];
  char *p = digits + sizeof digits - 1;
  uint64_t magnitude = value < 0 ? 0u - (uint64_t)value : (uint64_t)value;
  *p = '\0';
  do {
    *--p = (char)('0' + magnitude % 10u);
    magnitude /= 10u;
  } while (magnitude != 0u);
  if (value < 0) *--p = '-';
  append(m, p);
}

/* "%s: %s (%s = %lld) [%s]" as in converters/_tfqp_kernels.c raise_tfqp */
static void format_error(message *m, const char *op, const tfqp_error *e) {
  m->length = 0;
  m->text[0] = '\0';
  append(m, op);
  append(m, ": ");
  append(m, e->message != NULL ? e->message : "error");
  append(m, " (");
  append(m, e->name != NULL ? e->name : "?");
  append(m, " = ");
  append_int(m, e->value);
  append(m, ") [");
  append(m, tfqp_status_name(e->status));
  append(m, "]");
}

/* --- running one case --------------------------------------------------------- */

static void describe(const kernel_case_tensor *t, tfqp_tensor *out) {
  tfqp_tensor_init(out, t->type, t->rank, t->dims, t->bytes, t->zero_point);
}

/* Carves 4-byte aligned blocks out of the arena. */
typedef struct {
  uint8_t *next;
  uint8_t *end;
} allocator;

static void *allocate(allocator *a, size_t bytes) {
  uint8_t *p = a->next;
  bytes = (bytes + 3u) & ~(size_t)3u;
  if (bytes > (size_t)(a->end - p)) return NULL;
  a->next = p + bytes;
  return p;
}

typedef enum { CASE_PASSED, CASE_FAILED } case_result;

static case_result fail(const kernel_test_case *c, const char *what) {
  semihosting_write("FAIL ");
  semihosting_write(c->name);
  semihosting_write(": ");
  semihosting_write(what);
  semihosting_write("\n");
  return CASE_FAILED;
}

/* Status of a rejected op against the expected message (or none expected). */
static case_result check_rejection(const kernel_test_case *c, const char *op,
                                   const tfqp_error *error) {
  message got;
  format_error(&got, op, error);
  if (c->expected_error == NULL) return fail(c, got.text);
  if (strcmp(got.text, c->expected_error) != 0) {
    semihosting_write("FAIL ");
    semihosting_write(c->name);
    semihosting_write(": rejected with\n  ");
    semihosting_write(got.text);
    semihosting_write("\nexpected\n  ");
    semihosting_write(c->expected_error);
    semihosting_write("\n");
    return CASE_FAILED;
  }
  return CASE_PASSED;
}

static case_result check_output(const kernel_test_case *c, const uint8_t *out) {
  const uint8_t *expected = (const uint8_t *)c->output.data;
  uint32_t i, first = 0, differing = 0;
  if (c->expected_error != NULL) return fail(c, "accepted an input the host rejects");
  for (i = 0; i < c->output.bytes; ++i) {
    if (out[i] != expected[i]) {
      if (differing++ == 0) first = i;
    }
  }
  for (i = 0; i < GUARD_BYTES; ++i) {
    if (out[c->output.bytes + i] != POISON) return fail(c, "wrote past the end of the output");
  }
  if (differing != 0) {
    semihosting_write("FAIL ");
    semihosting_write(c->name);
    semihosting_write(": ");
    semihosting_write_int(differing);
    semihosting_write(" of ");
    semihosting_write_int(c->output.bytes);
    semihosting_write(" output bytes differ, first at byte ");
    semihosting_write_int(first);
    semihosting_write(": got 0x");
    semihosting_write_hex(out[first]);
    semihosting_write(", host 0x");
    semihosting_write_hex(expected[first]);
    semihosting_write("\n");
    return CASE_FAILED;
  }
  return CASE_PASSED;
}

/* One op of the table: the life cycle every driver runs. */
static case_result run_op(const kernel_test_case *c, const tfqp_op *op, allocator *a,
                          uint8_t *out) {
  tfqp_tensor inputs[TFQP_OP_MAX_INPUTS], output;
  const void *data[TFQP_OP_MAX_INPUTS] = {0};
  const void *constants[TFQP_OP_MAX_INPUTS] = {0};
  void *outputs[TFQP_OP_MAX_OUTPUTS];
  tfqp_op_options options;
  tfqp_op_params params;
  tfqp_op_buffers buffers;
  tfqp_error error;
  int32_t dims[TFQP_MAX_RANK];
  int32_t rank = 0, i;
  const int32_t count = (int32_t)c->input_count;
  void *table, *scratch;
  if (tfqp_op_check_arity(op, count, 1, &error) != TFQP_OK) {
    return check_rejection(c, op->name, &error);
  }
  for (i = 0; i < count; ++i) {
    describe(&c->inputs[i], &inputs[i]);
    data[i] = c->inputs[i].data;
    if (op->constant_inputs & (1u << i)) constants[i] = data[i];
  }
  describe(&c->output, &output);
  if (op->parse(c->options, c->options_bytes, &options, &error) != TFQP_OK ||
      op->output_dims(&options, inputs, count, output.type, &rank, dims, &error) != TFQP_OK ||
      op->prepare(&options, inputs, count, &output, &params, &buffers, &error) != TFQP_OK) {
    return check_rejection(c, op->name, &error);
  }
  if (rank != output.rank || memcmp(dims, output.dims, (size_t)rank * sizeof dims[0]) != 0) {
    return fail(c, "output_dims differ");
  }
  table = allocate(a, buffers.table_bytes);
  scratch = allocate(a, buffers.scratch_bytes);
  if (table == NULL || scratch == NULL) return fail(c, "table/scratch do not fit");
  if (op->init_table != NULL &&
      op->init_table(&params, constants, buffers.table_bytes > 0 ? (int32_t *)table : NULL,
                     buffers.table_bytes, &error) != TFQP_OK) {
    return check_rejection(c, op->name, &error);
  }
  outputs[0] = out;
  op->eval(&params, buffers.table_bytes > 0 ? (const int32_t *)table : NULL, data, outputs,
           scratch);
  return check_output(c, out);
}

static case_result run_case(const kernel_test_case *c) {
  allocator a = {(uint8_t *)arena, (uint8_t *)arena + sizeof arena};
  const tfqp_op *op = tfqp_find_op(c->op, strlen(c->op));
  uint8_t *out = (uint8_t *)allocate(&a, c->output.bytes + GUARD_BYTES);
  if (out == NULL) return fail(c, "output does not fit in KERNEL_TEST_ARENA_BYTES");
  memset(out, POISON, c->output.bytes + GUARD_BYTES);
  if (op != NULL) return run_op(c, op, &a, out);
  if (strcmp(c->op, "pack") == 0) {
    const int32_t channels = c->inputs[0].dims[c->inputs[0].rank - 1];
    tfqp_pack_int8((const int8_t *)c->inputs[0].data, (int32_t)(c->inputs[0].bytes / channels),
                   channels, c->args[0], (tfqp_word *)(void *)out);
    return check_output(c, out);
  }
  if (strcmp(c->op, "unpack") == 0) {
    const int32_t channels = c->args[0];
    const int32_t pixels = (int32_t)(c->inputs[0].bytes / 4u / TFQP_WORDS(channels));
    tfqp_unpack_int8((const tfqp_word *)c->inputs[0].data, pixels, channels,
                     (int8_t)c->args[1], (int8_t)c->args[2], (int8_t *)out);
    return check_output(c, out);
  }
  return fail(c, "unknown op");
}

int main(void) {
  uint32_t i, passed = 0, failed = 0;
  semihosting_write("kernel variant: ");
  semihosting_write(tfqp_kernel_variant());
  semihosting_write("\n");
  for (i = 0; i < kernel_test_case_count; ++i) {
    if (run_case(&kernel_test_cases[i]) == CASE_PASSED) {
      ++passed;
    } else {
      ++failed;
    }
  }
  semihosting_write("kernel tests: ");
  semihosting_write_int(passed);
  semihosting_write(" passed, ");
  semihosting_write_int(failed);
  semihosting_write(" failed, ");
  semihosting_write_int(kernel_test_case_count);
  semihosting_write(" cases\n");
  return failed == 0 && passed == kernel_test_case_count ? 0 : 1;
}
