/* What the validation layer knows about a tensor: element type, shape, byte
 * size and (for int8 tensors) zero point. Adapters fill one per input/output
 * from the TfLiteTensor / TfLiteEvalTensor; nothing here depends on TFLite.
 */
#ifndef TFQP_TENSOR_H_
#define TFQP_TENSOR_H_

#include <stddef.h>
#include <stdint.h>

#include "tfqp/status.h"

#ifdef __cplusplus
extern "C" {
#endif

#define TFQP_MAX_RANK 6

typedef enum {
  TFQP_TYPE_OTHER = 0, /* any element type the TFQP ops do not accept */
  TFQP_TYPE_INT8 = 1,  /* int8 activations */
  TFQP_TYPE_INT32 = 2, /* bit-packed words, per-channel transforms, int32 values */
  TFQP_TYPE_INT16 = 3  /* int16 weights (a float kernel the converter rounded) */
} tfqp_type;

typedef struct {
  tfqp_type type;
  int32_t rank;                /* dims[0..rank) are meaningful when rank <= TFQP_MAX_RANK */
  int32_t dims[TFQP_MAX_RANK];
  size_t bytes;                /* byte size of the tensor's buffer */
  int32_t zero_point;          /* int8 tensors: quantization zero point */
  /* A constant input's data, when the caller has it at prepare (NULL
   * otherwise, and always for activations): an op may read it only to lay
   * out a smaller table, never to decide what it computes, so prepare
   * without it gives the same outputs. Set it only for data aligned for
   * the tensor's element type. */
  const void *data;
} tfqp_tensor;

/* A tensor's quantization as the model gives it: `scale_count` scales and
 * `zero_point_count` zero points (an array may be NULL when its count is 0).
 * The adapters fill it from the tensor's TfLiteAffineQuantization (counts 0
 * when the tensor has none). */
typedef struct {
  int32_t scale_count;
  const float *scales;
  int32_t zero_point_count;
  const int *zero_points; /* TfLiteIntArray's element type */
} tfqp_quantization;

/* The quantization rules of a tensor of a TFQP op, of element type `type`;
 * `constant`: a constant input of the op (weights). TFQP_ERROR_TENSOR_TYPE
 * naming `role` unless:
 *   - a quantized tensor (any count > 0) has scales, each finite and > 0, and
 *     as many zero points as scales, or one shared by all (TFLite's form for
 *     symmetric per-channel weights);
 *   - an int8 activation (not constant) is quantized per tensor: one scale,
 *     one zero point, in [-128, 127];
 *   - int8 / int16 constants, if quantized, are symmetric: every zero point 0
 *     (the int8 ops multiply the stored values).
 * *zero_point: the int8 activation's zero point, else 0. */
tfqp_status tfqp_quantization_check(const tfqp_quantization *q, tfqp_type type, int32_t constant,
                                    const char *role, int32_t *zero_point, tfqp_error *error);

/* Fills *tensor (data NULL); copies min(rank, TFQP_MAX_RANK) dims (a larger
 * rank is kept and rejected later by every op). Never fails. */
void tfqp_tensor_init(tfqp_tensor *tensor, tfqp_type type, int32_t rank,
                      const int32_t *dims, size_t bytes, int32_t zero_point);

/* Checks type, rank, that every dim is >= 1, that the element count fits in
 * int32, that the byte size is at most TFQP_MAX_TENSOR_BYTES (formats.h;
 * TFQP_ERROR_TOO_LARGE) and that bytes == elements * element size. `role` names the tensor
 * in the error ("input", "filter", ...). */
tfqp_status tfqp_tensor_check(const tfqp_tensor *tensor, const char *role,
                              tfqp_type type, int32_t rank, tfqp_error *error);

/* Checks dims[axis] == expected (after tfqp_tensor_check). `what` names the
 * rule in the error message. */
tfqp_status tfqp_tensor_check_dim(const tfqp_tensor *tensor, int32_t axis,
                                  int32_t expected, const char *what,
                                  const char *role, tfqp_error *error);

/* Checks an op's output [N, depth] or [N, OH, OW, depth] (rank 2 or 4):
 * type, rank, dims[0 .. rank-1) == outer[...] (batch, then height and width),
 * then dims[rank-1] == depth; `depth_rule` names that rule in the error. */
tfqp_status tfqp_tensor_check_output(const tfqp_tensor *output, tfqp_type type,
                                     int32_t rank, const int32_t *outer,
                                     int32_t depth, const char *depth_rule,
                                     tfqp_error *error);

#ifdef __cplusplus
}
#endif

#endif /* TFQP_TENSOR_H_ */
