/* Error reporting of the TFQP validation layer.
 *
 * Every parse/prepare function returns a tfqp_status and, on failure, fills a
 * tfqp_error: the status, a static message saying which rule was broken, the
 * name of the option or tensor concerned and the offending value. Adapters turn
 * it into their framework's error ("TFQP_BCONV2D: <message> (<name> = <value>)").
 * No heap, no globals: messages are string literals.
 */
#ifndef TFQP_STATUS_H_
#define TFQP_STATUS_H_

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
  TFQP_OK = 0,
  TFQP_ERROR_OPTIONS = 1,      /* malformed flexbuffer, missing/unknown/duplicate key, wrong type */
  TFQP_ERROR_OPTION_VALUE = 2, /* option value outside its allowed range */
  TFQP_ERROR_TENSOR_TYPE = 3,  /* tensor element type not allowed here */
  TFQP_ERROR_TENSOR_SHAPE = 4, /* rank or dimension inconsistent with the options/other tensors */
  TFQP_ERROR_TENSOR_BYTES = 5, /* byte size does not match the shape */
  TFQP_ERROR_TENSOR_DATA = 6,  /* constant tensor content outside its allowed range */
  TFQP_ERROR_BUFFER = 7,       /* caller-provided table/scratch buffer too small or misaligned */
  TFQP_ERROR_ARGUMENT = 8,     /* NULL pointer or other API misuse */
  TFQP_ERROR_TOO_LARGE = 9     /* a tensor, table, scratch or set-up work beyond the limits of formats.h */
} tfqp_status;

typedef struct {
  tfqp_status status;
  const char *message; /* which rule was broken (string literal) */
  const char *name;    /* option key or tensor role concerned (string literal) */
  int64_t value;       /* the offending value */
} tfqp_error;

/* Fills *error (if not NULL) and returns status. */
tfqp_status tfqp_fail(tfqp_error *error, tfqp_status status, const char *message,
                      const char *name, int64_t value);

/* Fails with TFQP_ERROR_OPTION_VALUE (message, name, value) unless
 * low <= value <= high: the range rule of every integer option. */
tfqp_status tfqp_check_option_range(int32_t value, int32_t low, int32_t high,
                                    const char *message, const char *name,
                                    tfqp_error *error);

/* tfqp_check_option_range(value, 1, TFQP_MAX_CHANNELS, ...): the rule of every
 * channel-count option (limits in tfqp/formats.h). */
tfqp_status tfqp_check_channels_option(int32_t value, const char *name, tfqp_error *error);

/* A short name for a status ("malformed options", ...). */
const char *tfqp_status_name(tfqp_status status);

/* The kernel path selected at compile time: "portable c99", "x86-64 popcnt64",
 * ... (all produce identical bytes). */
const char *tfqp_kernel_variant(void);

#ifdef __cplusplus
}
#endif

#endif /* TFQP_STATUS_H_ */
