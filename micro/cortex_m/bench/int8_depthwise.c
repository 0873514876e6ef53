/* int8 depthwise convolution baseline (see int8_baseline.h). */
#include "int8_common.h"

void bench_int8_depthwise_conv2d(const bench_int8_conv_params *params,
                                 const int8_t *input, const int8_t *filter,
                                 const int32_t *bias, const int32_t *multiplier,
                                 const int32_t *shift, int8_t *output) {
  /* a local copy: stores through int8_t * could alias *params and force
   * every field to be reloaded after each output byte */
  const bench_int8_conv_params local = *params;
  const bench_int8_conv_params *const p = &local;
  const int32_t channels = p->channels_out;
  int32_t oy, ox, c;
#if BENCH_DSP
  if (channels % 4 == 0) {
    /* every field in a local: stores through int8_t * may alias *p */
    const int32_t in_h = p->in_height, in_w = p->in_width;
    const int32_t kh = p->filter_height, kw = p->filter_width;
    const int32_t out_h = p->out_height, out_w = p->out_width;
    const int32_t sh = p->stride_height, sw = p->stride_width;
    const int32_t pad_top = p->pad_top, pad_left = p->pad_left;
    const uint32_t offset2 = (uint16_t)p->input_offset * 0x10001u;
    const size_t row_bytes = (size_t)in_w * channels;
    const size_t filter_row_bytes = (size_t)kw * channels;
    for (oy = 0; oy < out_h; ++oy) {
      const int32_t iy0 = oy * sh - pad_top;
      const int32_t ky0 = iy0 < 0 ? -iy0 : 0;
      const int32_t ky1 = in_h - iy0 < kh ? in_h - iy0 : kh;
      for (ox = 0; ox < out_w; ++ox) {
        const int32_t ix0 = ox * sw - pad_left;
        const int32_t kx0 = ix0 < 0 ? -ix0 : 0;
        const int32_t kx1 = in_w - ix0 < kw ? in_w - ix0 : kw;
        /* first valid tap, in the input and in the filter */
        const int8_t *in = input + (size_t)(iy0 + ky0) * row_bytes + (size_t)(ix0 + kx0) * channels;
        const int8_t *w = filter + (size_t)ky0 * filter_row_bytes + (size_t)kx0 * channels;
        int8_t *out = output + ((size_t)oy * out_w + ox) * channels;
        for (c = 0; c < channels; c += 4) {
          /* accumulators of channels c, c+2 (even bytes) and c+1, c+3 (odd) */
          int32_t a0 = bias[c], a1 = bias[c + 1], a2 = bias[c + 2], a3 = bias[c + 3];
          const int8_t *in_row = in + c;
          const int8_t *w_row = w + c;
          int32_t ky, kx;
          for (ky = ky0; ky < ky1; ++ky) {
            const int8_t *x_tap = in_row;
            const int8_t *w_tap = w_row;
            for (kx = kx0; kx < kx1; ++kx) {
              const uint32_t x = load4(x_tap), v = load4(w_tap);
              const uint32_t xe = __sadd16(__sxtb16(x), offset2);
              const uint32_t xo = __sadd16(sxtb16_odd(x), offset2);
              const uint32_t we = __sxtb16(v), wo = sxtb16_odd(v);
              a0 = __smlabb(xe, we, a0);
              a2 = __smlatt(xe, we, a2);
              a1 = __smlabb(xo, wo, a1);
              a3 = __smlatt(xo, wo, a3);
              x_tap += channels;
              w_tap += channels;
            }
            in_row += row_bytes;
            w_row += filter_row_bytes;
          }
          out[c] = requantize(p, a0, multiplier[c], shift[c]);
          out[c + 1] = requantize(p, a1, multiplier[c + 1], shift[c + 1]);
          out[c + 2] = requantize(p, a2, multiplier[c + 2], shift[c + 2]);
          out[c + 3] = requantize(p, a3, multiplier[c + 3], shift[c + 3]);
        }
      }
    }
    return;
  }
#endif
  for (oy = 0; oy < p->out_height; ++oy) {
    for (ox = 0; ox < p->out_width; ++ox) {
      for (c = 0; c < channels; ++c) {
        const int32_t acc = bias[c] + conv_output_c(p, input, filter, oy, ox, c, 1);
        output[((size_t)oy * p->out_width + ox) * channels + c] =
            requantize(p, acc, multiplier[c], shift[c]);
      }
    }
  }
}
