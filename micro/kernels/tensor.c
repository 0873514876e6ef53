/* Tensor description checks shared by all ops (see tfqp/tensor.h). */
#include "tfqp/tensor.h"

#include <float.h>

#include "tfqp/formats.h"

static size_t element_size(tfqp_type type) {
  switch (type) {
    case TFQP_TYPE_INT8: return 1;
    case TFQP_TYPE_INT32: return 4;
    case TFQP_TYPE_INT16: return 2;
    case TFQP_TYPE_OTHER: break;
  }
  return 0;
}

void tfqp_tensor_init(tfqp_tensor *tensor, tfqp_type type, int32_t rank,
                      const int32_t *dims, size_t bytes, int32_t zero_point) {
  int32_t i;
  tensor->type = type;
  tensor->rank = rank;
  for (i = 0; i < TFQP_MAX_RANK; ++i) {
    tensor->dims[i] = (dims != NULL && i < rank) ? dims[i] : 0;
  }
  tensor->bytes = bytes;
  tensor->zero_point = zero_point;
  tensor->data = NULL;
}

tfqp_status tfqp_tensor_check(const tfqp_tensor *tensor, const char *role,
                              tfqp_type type, int32_t rank, tfqp_error *error) {
  int64_t elements = 1;
  int32_t i;
  if (tensor == NULL) {
    return tfqp_fail(error, TFQP_ERROR_ARGUMENT, "tensor missing", role, 0);
  }
  if (tensor->type != type) {
    return tfqp_fail(error, TFQP_ERROR_TENSOR_TYPE,
                     type == TFQP_TYPE_INT8    ? "tensor must be int8"
                     : type == TFQP_TYPE_INT16 ? "tensor must be int16"
                                               : "tensor must be int32",
                     role, (int64_t)tensor->type);
  }
  if (tensor->rank != rank) {
    return tfqp_fail(error, TFQP_ERROR_TENSOR_SHAPE, "tensor has the wrong rank",
                     role, tensor->rank);
  }
  for (i = 0; i < rank; ++i) {
    if (tensor->dims[i] < 1) {
      return tfqp_fail(error, TFQP_ERROR_TENSOR_SHAPE,
                       "tensor dimensions must be >= 1", role, tensor->dims[i]);
    }
    elements *= tensor->dims[i];
    if (elements > INT32_MAX) {
      return tfqp_fail(error, TFQP_ERROR_TENSOR_SHAPE,
                       "tensor has more than 2^31-1 elements", role, elements);
    }
  }
  if (elements * (int64_t)element_size(type) > TFQP_MAX_TENSOR_BYTES) {
    return tfqp_fail(error, TFQP_ERROR_TOO_LARGE, "tensor larger than 2^28 bytes", role,
                     elements * (int64_t)element_size(type));
  }
  if ((uint64_t)tensor->bytes != (uint64_t)elements * element_size(type)) {
    return tfqp_fail(error, TFQP_ERROR_TENSOR_BYTES,
                     "tensor byte size does not match its shape", role,
                     (int64_t)tensor->bytes);
  }
  return TFQP_OK;
}

tfqp_status tfqp_tensor_check_dim(const tfqp_tensor *tensor, int32_t axis,
                                  int32_t expected, const char *what,
                                  const char *role, tfqp_error *error) {
  if (tensor->dims[axis] != expected) {
    return tfqp_fail(error, TFQP_ERROR_TENSOR_SHAPE, what, role,
                     tensor->dims[axis]);
  }
  return TFQP_OK;
}

tfqp_status tfqp_tensor_check_output(const tfqp_tensor *output, tfqp_type type,
                                     int32_t rank, const int32_t *outer,
                                     int32_t depth, const char *depth_rule,
                                     tfqp_error *error) {
  /* the rule of each outer axis, in axis order */
  static const char *const outer_rules[3] = {"output batch must equal input batch",
                                             "output height does not match the options",
                                             "output width does not match the options"};
  tfqp_status s = tfqp_tensor_check(output, "output", type, rank, error);
  int32_t axis;
  for (axis = 0; s == TFQP_OK && axis < rank - 1; ++axis) {
    s = tfqp_tensor_check_dim(output, axis, outer[axis], outer_rules[axis], "output", error);
  }
  if (s != TFQP_OK) return s;
  return tfqp_tensor_check_dim(output, rank - 1, depth, depth_rule, "output", error);
}

static tfqp_status quantization_error(const char *message, const char *role, int64_t value,
                                      tfqp_error *error) {
  return tfqp_fail(error, TFQP_ERROR_TENSOR_TYPE, message, role, value);
}

tfqp_status tfqp_quantization_check(const tfqp_quantization *q, tfqp_type type, int32_t constant,
                                    const char *role, int32_t *zero_point, tfqp_error *error) {
  const int quantized = q->scale_count > 0 || q->zero_point_count > 0;
  const int activation = type == TFQP_TYPE_INT8 && !constant;
  int32_t i;
  *zero_point = 0;
  if (q->scale_count < 0 || q->zero_point_count < 0 ||
      (q->scale_count > 0 && q->scales == NULL) ||
      (q->zero_point_count > 0 && q->zero_points == NULL)) {
    return quantization_error("quantization arrays missing (value: the scale count)", role,
                              q->scale_count, error);
  }
  if (activation && (q->scale_count != 1 || q->zero_point_count != 1)) {
    return quantization_error(
        "int8 activations need per-tensor quantization: one scale and one zero point (value: "
        "scales)",
        role, q->scale_count, error);
  }
  if (quantized && q->scale_count == 0) {
    return quantization_error("quantization has zero points but no scale", role,
                              q->zero_point_count, error);
  }
  if (quantized && q->zero_point_count != q->scale_count && q->zero_point_count != 1) {
    return quantization_error(
        "quantization needs one zero point per scale, or one for all (value: zero points)", role,
        q->zero_point_count, error);
  }
  for (i = 0; i < q->scale_count; ++i) {
    /* NaN fails both comparisons */
    if (!(q->scales[i] > 0.0f && q->scales[i] <= FLT_MAX)) {
      return quantization_error("quantization scales must be finite and > 0 (value: the index)",
                                role, i, error);
    }
  }
  if (activation) {
    if (q->zero_points[0] < -128 || q->zero_points[0] > 127) {
      return quantization_error("int8 zero point must be in [-128, 127]", role, q->zero_points[0],
                                error);
    }
    *zero_point = q->zero_points[0];
  }
  if ((type == TFQP_TYPE_INT8 || type == TFQP_TYPE_INT16) && constant) {
    for (i = 0; i < q->zero_point_count; ++i) {
      if (q->zero_points[i] != 0) {
        return quantization_error("int8 / int16 weights must be symmetric (zero points 0)", role,
                                  q->zero_points[i], error);
      }
    }
  }
  return TFQP_OK;
}
