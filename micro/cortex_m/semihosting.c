/* Arm semihosting calls used by the bare-metal images (see semihosting.h). */
#include "semihosting.h"

#define SYS_WRITE0 0x04u
#define SYS_EXIT_EXTENDED 0x20u
#define ADP_STOPPED_APPLICATION_EXIT 0x20026u

/* One semihosting call: operation in r0, argument in r1, result in r0. The
 * "memory" clobber makes the compiler write out what r1 points to first. */
static uint32_t semihosting_call(uint32_t operation, const void *argument) {
  register uint32_t r0 __asm__("r0") = operation;
  register const void *r1 __asm__("r1") = argument;
  __asm__ volatile("bkpt 0xAB" : "+r"(r0) : "r"(r1) : "memory");
  return r0;
}

void semihosting_write(const char *text) { semihosting_call(SYS_WRITE0, text); }

void semihosting_write_int(int64_t value) {
  char text[24];
  char *p = text + sizeof text - 1;
  /* negate in unsigned arithmetic: INT64_MIN has no positive int64 */
  uint64_t magnitude = value < 0 ? 0u - (uint64_t)value : (uint64_t)value;
  *p = '\0';
  do {
    *--p = (char)('0' + magnitude % 10u);
    magnitude /= 10u;
  } while (magnitude != 0u);
  if (value < 0) *--p = '-';
  semihosting_write(p);
}

void semihosting_write_hex(uint32_t value) {
  char text[9];
  int i;
  for (i = 7; i >= 0; --i) {
    text[i] = "0123456789abcdef"[value & 15u];
    value >>= 4;
  }
  text[8] = '\0';
  semihosting_write(text);
}

void semihosting_exit(int status) {
  /* SYS_EXIT_EXTENDED takes a pointer to {reason, subcode}; the subcode is
   * the exit status (plain SYS_EXIT on AArch32 can only say 0 or 1). */
  const uint32_t block[2] = {ADP_STOPPED_APPLICATION_EXIT, (uint32_t)status};
  semihosting_call(SYS_EXIT_EXTENDED, block);
  for (;;) {
  }
}
