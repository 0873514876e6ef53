/* Internal: what TFQP_CONV2D_INT8 and TFQP_FULLY_CONNECTED_INT8 share (contracts
 * in tfqp/conv2d_int8.h and tfqp/fully_connected_int8.h): the accumulator bound,
 * the output (packed bits or int32 values) and its per-channel table.
 *
 * Table (int32): packed output: direction[Cout], threshold[Cout]; value output:
 * multiplier[Cout], shift[Cout], bias[Cout] (value_output.h).
 */
#ifndef TFQP_KERNELS_INT8_OP_H_
#define TFQP_KERNELS_INT8_OP_H_

#include <stddef.h>
#include <stdint.h>

#include "tfqp/formats.h"
#include "tfqp/status.h"
#include "tfqp/tensor.h"
#include "value_output.h"

/* |A| <= K * 255 * 127 < 2^31: (q - zp) in [-255, 255], w in [-127, 127]. */
#define TFQP_INT8_OP_MAX_TAPS 66311
#define TFQP_INT8_OP_MAX_PRODUCT (255 * 127)

/* Checks the output (int32, rank `rank`, dims outer[0 .. rank-1) then Cout or
 * ceil(Cout / 32)) and the transform ([Cout, 3] values, [Cout, 2] packed). */
tfqp_status tfqp_int8_op_check_output(int32_t int32_output, const tfqp_tensor *output,
                                      const tfqp_tensor *transform, int32_t rank,
                                      const int32_t *outer, int32_t channels_out,
                                      const char *weights_role, tfqp_error *error);

/* Table bytes for Cout channels. */
size_t tfqp_int8_op_table_bytes(int32_t int32_output, int32_t channels_out);

/* Checks the weights ([-127, 127]) and the transform rows, fills the table. */
tfqp_status tfqp_int8_op_init_table(int32_t int32_output, const int8_t *weights, size_t count,
                                    const int32_t *transform, int32_t channels_out, int32_t taps,
                                    int32_t *table, size_t table_bytes, size_t needed_bytes,
                                    tfqp_error *error);

/* Output of channel co for accumulator a into one pixel's output row. */
static inline void tfqp_int8_op_output(int32_t int32_output, const int32_t *table,
                                       int32_t channels_out, int32_t co, int32_t a, void *out) {
  if (int32_output) {
    ((int32_t *)out)[co] = tfqp_value_output(a, table[co], table[channels_out + co],
                                             table[2 * channels_out + co]);
  } else {
    const int32_t d = table[co] > 0 ? a : -a; /* |a| < 2^31 - 1: no overflow */
    ((tfqp_word *)out)[TFQP_WORD_INDEX(co)] |= (tfqp_word)(d < table[channels_out + co])
                                               << TFQP_BIT_INDEX(co);
  }
}

#endif /* TFQP_KERNELS_INT8_OP_H_ */
