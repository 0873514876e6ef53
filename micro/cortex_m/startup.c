/* Bare-metal start-up for the Cortex-M images (mps2-an386 Cortex-M4,
 * mps3-an547 Cortex-M55): vector table, reset handler, fault reporting.
 *
 * Reset sequence
 *   1. The core loads the initial stack pointer (word 0 of the vector table)
 *      and jumps to Reset_Handler (word 1).
 *   2. Reset_Handler grants full access to the floating-point coprocessors
 *      CP10/CP11 in CPACR (also the M-profile vector extension on the M55)
 *      before any hard-float code can run: the image is built with
 *      -mfloat-abi=hard, and the compiler may use FP registers anywhere, even
 *      in memcpy. It is written in assembly so that nothing runs before it.
 *   3. startup_c copies .data from its load address, zeroes .bss, runs the
 *      static constructors (.init_array, C++ firmware), calls main() and reports main's return value as the exit status through
 *      semihosting (qemu-system-arm exits with it).
 * Symbols __data_load, __data_start, __data_end, __bss_start, __bss_end,
 * __init_array_start/end and __stack_top come from the linker script (mps2_an386.ld / mps3_an547.ld).
 */
#include <stdint.h>

#include "semihosting.h"

extern uint32_t __data_load[], __data_start[], __data_end[];
extern uint32_t __bss_start[], __bss_end[];
extern uint32_t __stack_top[];
typedef void (*constructor)(void);
extern const constructor __init_array_start[], __init_array_end[];

int main(void);
void Reset_Handler(void);
void startup_c(void) __attribute__((noreturn, used));

__attribute__((naked, noreturn)) void Reset_Handler(void) {
  __asm__ volatile(
      "ldr r0, =0xE000ED88      \n" /* CPACR */
      "ldr r1, [r0]             \n"
      "orr r1, r1, #(0xF << 20) \n" /* CP10, CP11: full access */
      "str r1, [r0]             \n"
      "dsb                      \n" /* the write completes ...          */
      "isb                      \n" /* ... before the next instruction  */
      "b startup_c              \n"
      ".ltorg                   \n");
}

void startup_c(void) {
  const uint32_t *src = __data_load;
  uint32_t *dst;
  const constructor *init;
  for (dst = __data_start; dst < __data_end; ++dst) *dst = *src++;
  for (dst = __bss_start; dst < __bss_end; ++dst) *dst = 0u;
  for (init = __init_array_start; init < __init_array_end; ++init) (*init)();
  semihosting_exit(main());
}

/* Any fault or unexpected interrupt: say which and where, exit with 128 +
 * exception number so that a crash never looks like a pass. */
__attribute__((used, noreturn)) void report_fault(const uint32_t *frame);
void report_fault(const uint32_t *frame) {
  uint32_t ipsr;
  __asm__ volatile("mrs %0, ipsr" : "=r"(ipsr));
  semihosting_write("\nFAULT: exception ");
  semihosting_write_int((int64_t)(ipsr & 0x1FFu));
  semihosting_write(" CFSR=");
  semihosting_write_hex(*(volatile const uint32_t *)0xE000ED28u);
  semihosting_write(" PC=");
  semihosting_write_hex(frame[6]); /* stacked r0-r3, r12, lr, pc, xpsr */
  semihosting_write("\n");
  semihosting_exit(128 + (int)(ipsr & 0x7Fu));
}

/* Picks the stack the exception frame was pushed to (EXC_RETURN bit 2). */
__attribute__((naked)) static void Fault_Handler(void) {
  __asm__ volatile(
      "tst lr, #4      \n"
      "ite eq          \n"
      "mrseq r0, msp   \n"
      "mrsne r0, psp   \n"
      "b report_fault  \n");
}

/* Vector table: placed first in the image by the linker script
 * (section .vectors). 16 system entries; no device interrupts are used. */
__attribute__((section(".vectors"), used)) static void (*const vector_table[16])(void) = {
    (void (*)(void))(uintptr_t)__stack_top, /* initial MSP */
    Reset_Handler,
    Fault_Handler, /* NMI */
    Fault_Handler, /* HardFault */
    Fault_Handler, /* MemManage */
    Fault_Handler, /* BusFault */
    Fault_Handler, /* UsageFault */
    Fault_Handler, /* SecureFault (Armv8-M) */
    0,
    0,
    0,
    Fault_Handler, /* SVCall */
    Fault_Handler, /* DebugMonitor */
    0,
    Fault_Handler, /* PendSV */
    Fault_Handler, /* SysTick */
};
