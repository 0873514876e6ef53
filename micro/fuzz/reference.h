/* Naive references of the TFQP ops, written from the contracts in
 * micro/include/tfqp/ (one header per op) and independent of the kernels: every output element
 * is computed on its own, tap by tap, in int64, with the geometry recomputed
 * from TFLite's formulas. The op fuzz targets compare the kernels' output
 * bytes with these. */
#ifndef TFQP_FUZZ_REFERENCE_H_
#define TFQP_FUZZ_REFERENCE_H_

#include "op_harness.h"

/* Writes the expected output (c->output.bytes bytes) of a case the op
 * accepted; every c->data[i] must be given. Aborts, naming the rule, if the
 * accepted case breaks a bound the contract promises (an accumulator beyond
 * int32, a window without an input position). */
void reference_run(const op_harness_case *c, void *expected);

#endif /* TFQP_FUZZ_REFERENCE_H_ */
