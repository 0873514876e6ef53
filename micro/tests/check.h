/* Minimal test assertions for the TFQP C tests (host and bare-metal). */
#ifndef TFQP_TESTS_CHECK_H_
#define TFQP_TESTS_CHECK_H_

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

extern long tfqp_test_checks;
extern long tfqp_test_failures;

#define CHECK(cond)                                                          \
  do {                                                                       \
    ++tfqp_test_checks;                                                      \
    if (!(cond)) {                                                           \
      ++tfqp_test_failures;                                                  \
      fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
    }                                                                        \
  } while (0)

#define CHECK_EQ(actual, expected)                                                 \
  do {                                                                             \
    const long long check_a_ = (long long)(actual);                                \
    const long long check_e_ = (long long)(expected);                              \
    ++tfqp_test_checks;                                                            \
    if (check_a_ != check_e_) {                                                    \
      ++tfqp_test_failures;                                                        \
      fprintf(stderr, "%s:%d: CHECK_EQ failed: %s = %lld, expected %s = %lld\n",    \
              __FILE__, __LINE__, #actual, check_a_, #expected, check_e_);         \
    }                                                                              \
  } while (0)

/* Folds bytes into the run's digest (FNV-1a 64): builds with different kernel
 * paths must print the same digest. */
void digest_bytes(const void *data, size_t size);

/* Deterministic PRNG (xorshift64*) for random cases. */
uint32_t test_random(void);
int32_t test_random_range(int32_t low, int32_t high); /* inclusive */

void test_flexbuffer(void);
void test_validation(void);
void test_kernels(void);
void test_op_table(void);
void test_new_ops(void);
void test_shift(void);

#endif /* TFQP_TESTS_CHECK_H_ */
