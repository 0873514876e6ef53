/* Runs every TFQP C test; prints the output digest and a summary.
 * Exit status 0 iff every check passed. */
#include <stdio.h>

#include "check.h"
#include "tfqp/status.h"

long tfqp_test_checks = 0;
long tfqp_test_failures = 0;

static uint64_t digest = 1469598103934665603ull;
static uint64_t random_state = 0x9E3779B97F4A7C15ull;

void digest_bytes(const void *data, size_t size) {
  const unsigned char *bytes = (const unsigned char *)data;
  size_t i;
  for (i = 0; i < size; ++i) {
    digest ^= bytes[i];
    digest *= 1099511628211ull;
  }
}

uint32_t test_random(void) {
  random_state ^= random_state >> 12;
  random_state ^= random_state << 25;
  random_state ^= random_state >> 27;
  return (uint32_t)((random_state * 2685821657736338717ull) >> 32);
}

int32_t test_random_range(int32_t low, int32_t high) {
  return low + (int32_t)(test_random() % (uint32_t)(high - low + 1));
}

int main(void) {
  printf("kernel variant: %s\n", tfqp_kernel_variant());
  test_flexbuffer();
  test_validation();
  test_kernels();
  test_op_table();
  test_new_ops();
  test_shift();
  printf("digest: %08lx%08lx\n", (unsigned long)(digest >> 32),
         (unsigned long)(digest & 0xFFFFFFFFu));
  printf("%ld checks, %ld failed\n", tfqp_test_checks, tfqp_test_failures);
  if (tfqp_test_failures == 0) printf("ALL TESTS PASSED\n");
  return tfqp_test_failures == 0 ? 0 : 1;
}
