/* Error reporting of the validation layer (see tfqp/status.h). */
#include "tfqp/status.h"

#include <stddef.h>

#include "tfqp/formats.h"

tfqp_status tfqp_fail(tfqp_error *error, tfqp_status status, const char *message,
                      const char *name, int64_t value) {
  if (error != NULL) {
    error->status = status;
    error->message = message;
    error->name = name;
    error->value = value;
  }
  return status;
}

tfqp_status tfqp_check_option_range(int32_t value, int32_t low, int32_t high,
                                    const char *message, const char *name,
                                    tfqp_error *error) {
  if (value < low || value > high) {
    return tfqp_fail(error, TFQP_ERROR_OPTION_VALUE, message, name, value);
  }
  return TFQP_OK;
}

tfqp_status tfqp_check_channels_option(int32_t value, const char *name, tfqp_error *error) {
  return tfqp_check_option_range(value, 1, TFQP_MAX_CHANNELS, "must be in [1, 2^24]", name,
                                 error);
}

const char *tfqp_status_name(tfqp_status status) {
  switch (status) {
    case TFQP_OK: return "ok";
    case TFQP_ERROR_OPTIONS: return "malformed options";
    case TFQP_ERROR_OPTION_VALUE: return "option value out of range";
    case TFQP_ERROR_TENSOR_TYPE: return "wrong tensor type";
    case TFQP_ERROR_TENSOR_SHAPE: return "wrong tensor shape";
    case TFQP_ERROR_TENSOR_BYTES: return "wrong tensor byte size";
    case TFQP_ERROR_TENSOR_DATA: return "tensor data out of range";
    case TFQP_ERROR_BUFFER: return "buffer too small or misaligned";
    case TFQP_ERROR_ARGUMENT: return "invalid argument";
    case TFQP_ERROR_TOO_LARGE: return "beyond the size limits";
  }
  return "unknown status";
}
