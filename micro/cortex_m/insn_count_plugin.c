/* A QEMU TCG plugin that counts executed guest instructions exactly and
 * reports the count each time the guest executes a marker address.
 *
 *   qemu-system-arm ... -plugin insn_count_plugin.so,mark=0x1234,out=counts.txt
 *
 * Every translated instruction gets an inline "add 1" to one 64-bit counter
 * (no helper call, so counting does not change what the guest executes). The
 * first instruction at `mark` (the marker function of bench_main.c) also gets
 * a callback that appends "mark <count>" to `out`; at exit "total <count>" is
 * appended. The instructions executed between two markers are the difference
 * of their counts: the same for the same image, every run (single vCPU, no
 * interrupts, no timing dependence).
 *
 * Debian's qemu-system-arm 7.2 loads plugins but ships no qemu-plugin.h, so
 * the few declarations used are written out below. They are the plugin ABI of
 * QEMU 7.2 (API version 1; see docs/devel/tcg-plugins.rst there).
 * Build: gcc -shared -fPIC -O2 -o insn_count_plugin.so insn_count_plugin.c
 */
#include <inttypes.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* --- the QEMU 7.2 plugin API subset ------------------------------------- */
#define QEMU_PLUGIN_EXPORT __attribute__((visibility("default")))

typedef uint64_t qemu_plugin_id_t;

typedef struct {
  const char *target_name;
  struct {
    int min;
    int cur;
  } version;
  bool system_emulation;
  union {
    struct {
      int smp_vcpus;
      int max_vcpus;
    } system;
  };
} qemu_info_t;

struct qemu_plugin_tb;
struct qemu_plugin_insn;

enum qemu_plugin_cb_flags { QEMU_PLUGIN_CB_NO_REGS };
enum qemu_plugin_op { QEMU_PLUGIN_INLINE_ADD_U64 };

typedef void (*qemu_plugin_udata_cb_t)(qemu_plugin_id_t id, void *userdata);
typedef void (*qemu_plugin_vcpu_udata_cb_t)(unsigned int vcpu_index, void *userdata);
typedef void (*qemu_plugin_vcpu_tb_trans_cb_t)(qemu_plugin_id_t id,
                                               struct qemu_plugin_tb *tb);

void qemu_plugin_register_vcpu_tb_trans_cb(qemu_plugin_id_t id,
                                           qemu_plugin_vcpu_tb_trans_cb_t cb);
void qemu_plugin_register_vcpu_insn_exec_cb(struct qemu_plugin_insn *insn,
                                            qemu_plugin_vcpu_udata_cb_t cb,
                                            enum qemu_plugin_cb_flags flags,
                                            void *userdata);
void qemu_plugin_register_vcpu_insn_exec_inline(struct qemu_plugin_insn *insn,
                                                enum qemu_plugin_op op, void *ptr,
                                                uint64_t imm);
void qemu_plugin_register_atexit_cb(qemu_plugin_id_t id, qemu_plugin_udata_cb_t cb,
                                    void *userdata);
size_t qemu_plugin_tb_n_insns(const struct qemu_plugin_tb *tb);
struct qemu_plugin_insn *qemu_plugin_tb_get_insn(const struct qemu_plugin_tb *tb,
                                                 size_t idx);
uint64_t qemu_plugin_insn_vaddr(const struct qemu_plugin_insn *insn);

QEMU_PLUGIN_EXPORT int qemu_plugin_version = 1;
QEMU_PLUGIN_EXPORT int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info,
                                           int argc, char **argv);

/* --- the counter ---------------------------------------------------------- */
static uint64_t executed;   /* guest instructions executed so far */
static uint64_t mark_address = UINT64_MAX;
static FILE *out;

static void on_mark(unsigned int vcpu_index, void *userdata) {
  (void)vcpu_index;
  (void)userdata;
  fprintf(out, "mark %" PRIu64 "\n", executed);
}

static void on_translate(qemu_plugin_id_t id, struct qemu_plugin_tb *tb) {
  const size_t n = qemu_plugin_tb_n_insns(tb);
  size_t i;
  (void)id;
  for (i = 0; i < n; ++i) {
    struct qemu_plugin_insn *insn = qemu_plugin_tb_get_insn(tb, i);
    qemu_plugin_register_vcpu_insn_exec_inline(insn, QEMU_PLUGIN_INLINE_ADD_U64,
                                               &executed, 1);
    if (qemu_plugin_insn_vaddr(insn) == mark_address) {
      qemu_plugin_register_vcpu_insn_exec_cb(insn, on_mark, QEMU_PLUGIN_CB_NO_REGS,
                                             NULL);
    }
  }
}

static void on_plugin_exit(qemu_plugin_id_t id, void *userdata) {
  (void)id;
  (void)userdata;
  fprintf(out, "total %" PRIu64 "\n", executed);
  fclose(out);
}

int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info, int argc,
                        char **argv) {
  const char *path = NULL;
  int i;
  (void)info;
  for (i = 0; i < argc; ++i) {
    if (strncmp(argv[i], "mark=", 5) == 0) {
      /* Thumb function symbols carry bit 0; instruction addresses do not */
      mark_address = strtoull(argv[i] + 5, NULL, 0) & ~(uint64_t)1;
    } else if (strncmp(argv[i], "out=", 4) == 0) {
      path = argv[i] + 4;
    } else {
      fprintf(stderr, "insn_count_plugin: unknown argument '%s' (mark=ADDR, out=FILE)\n",
              argv[i]);
      return 1;
    }
  }
  out = path != NULL ? fopen(path, "w") : stderr;
  if (out == NULL) {
    fprintf(stderr, "insn_count_plugin: cannot open '%s'\n", path);
    return 1;
  }
  qemu_plugin_register_vcpu_tb_trans_cb(id, on_translate);
  qemu_plugin_register_atexit_cb(id, on_plugin_exit, NULL);
  return 0;
}
