/* The portable compute of the shift ops (see shift_op.h). */
#include "shift_op.h"

#include <stddef.h>

/* Bytes of one output position. */
static size_t position_bytes(const tfqp_shift_layer *layer) {
  return (size_t)layer->output_depth * (layer->output_packed ? sizeof(tfqp_word) : 1u);
}

void tfqp_shift_eval(const tfqp_shift_layer *layer, const int32_t *table,
                     const int32_t *transform, const tfqp_word *codes, const void *params,
                     tfqp_shift_gather gather, const int8_t *input, void *scratch,
                     void *output) {
  int16_t *patches = (int16_t *)scratch;
  const size_t patch_values = (size_t)layer->patch_values;
  int32_t first, i;
  for (first = 0; first < layer->pixels; first += TFQP_SHIFT_PIXEL_BLOCK) {
    const int32_t left = layer->pixels - first;
    const int32_t count = left < TFQP_SHIFT_PIXEL_BLOCK ? left : TFQP_SHIFT_PIXEL_BLOCK;
    for (i = 0; i < count; ++i) {
      gather(params, input, first + i, patches + (size_t)i * patch_values);
    }
    tfqp_shift_pixels(layer, table, transform, codes, patches, count,
                      (unsigned char *)output + (size_t)first * position_bytes(layer));
  }
}

void tfqp_shift_pixels(const tfqp_shift_layer *layer, const int32_t *table,
                       const int32_t *transform, const tfqp_word *codes,
                       const int16_t *patches, int32_t count, void *output) {
  const int32_t *values = table;
  const uint32_t *live = (const uint32_t *)(table + layer->live_at);
  const size_t row_words = (size_t)layer->row_words;
  const size_t live_stride = layer->live_stride;
  int32_t p, co, i;
  for (p = 0; p < count; ++p) {
    const int16_t *patch = patches + (size_t)p * (size_t)layer->patch_values;
    void *out = (unsigned char *)output + (size_t)p * position_bytes(layer);
    if (layer->output_packed) {
      for (i = 0; i < layer->output_depth; ++i) ((tfqp_word *)out)[i] = 0;
    }
    for (co = 0; co < layer->channels_out; ++co) {
      uint32_t acc[TFQP_CODE_CLASSES_MAX] = {0, 0};
      const int16_t *x =
          patch + (size_t)(co / layer->depth_multiplier) * (size_t)layer->patch_step;
      tfqp_shift_row_dot(layer, codes + (size_t)co * row_words, live + (size_t)co * live_stride,
                         values, x, acc);
      tfqp_shift_output(layer, table, transform, co, acc, out);
    }
  }
}
