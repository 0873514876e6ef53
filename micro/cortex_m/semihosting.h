/* Arm semihosting: console output and exit status through the debugger or
 * emulator (qemu-system-arm -semihosting), no UART driver needed.
 *
 * On M-profile cores a semihosting call is `bkpt 0xAB` with the operation in
 * r0 and its argument in r1 (Arm "Semihosting for AArch32 and AArch64",
 * version 2). On a board without a debugger attached the BKPT escalates to a
 * HardFault: these calls are for the emulator, the test runner and a board
 * under a debug probe with semihosting enabled.
 */
#ifndef TFQP_CORTEX_M_SEMIHOSTING_H_
#define TFQP_CORTEX_M_SEMIHOSTING_H_

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Writes a NUL-terminated string to the host console (SYS_WRITE0). */
void semihosting_write(const char *text);

/* Writes `value` in decimal / as 8 hex digits (no allocation, no printf). */
void semihosting_write_int(int64_t value);
void semihosting_write_hex(uint32_t value);

/* Ends the program with exit status `status` (SYS_EXIT_EXTENDED with reason
 * ADP_Stopped_ApplicationExit): qemu-system-arm returns `status` to its
 * caller. Never returns. */
void semihosting_exit(int status) __attribute__((noreturn));

#ifdef __cplusplus
}
#endif

#endif /* TFQP_CORTEX_M_SEMIHOSTING_H_ */
