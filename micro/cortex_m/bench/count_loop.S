/* The instruction-count markers of the benchmark and the counter's check.
 *
 * bench_mark: an empty function (one instruction, BX LR) whose address the
 * counting plugin (insn_count_plugin.c) watches: it logs the number of
 * instructions executed so far each time bench_mark starts.
 *
 * bench_count_loop_check(n), n >= 1: a sequence whose instruction counts
 * between markers are known exactly, to validate the counter:
 *   mark 0 -> mark 1: 2       (BX LR of bench_mark, BL)
 *   mark 1 -> mark 2: 3       (BX LR, MOV, BL)
 *   mark 2 -> mark 3: 2n + 2  (BX LR, n x (SUBS, BNE), BL)
 */
  .syntax unified
  .thumb
  .text

  .global bench_mark
  .type bench_mark, %function
  .thumb_func
bench_mark:
  bx lr
  .size bench_mark, . - bench_mark

  .global bench_count_loop_check
  .type bench_count_loop_check, %function
  .thumb_func
bench_count_loop_check:
  push {r4, lr}
  mov r4, r0
  bl bench_mark
  bl bench_mark
  mov r0, r4
  bl bench_mark
1:
  subs r0, r0, #1
  bne 1b
  bl bench_mark
  pop {r4, pc}
  .size bench_count_loop_check, . - bench_count_loop_check
