/* int8 convolution baseline (see int8_baseline.h). */
#include "int8_common.h"

#if BENCH_DSP
/* Receptive field of output pixel (oy, ox) as widened int16 pairs into one
 * column of the interleaved im2col buffer (col: column 0, col + 2: column 1):
 * per group of four taps the words (col0 even, col0 odd, col1 even, col1
 * odd). Padded taps are 0 (the zero point after the offset). */
static void im2col(const bench_int8_conv_params *p, const int8_t *input, int32_t oy,
                   int32_t ox, uint32_t offset2, uint32_t *col) {
  const int32_t cin = p->channels_in;
  int32_t ky, kx, i;
  for (ky = 0; ky < p->filter_height; ++ky) {
    const int32_t iy = oy * p->stride_height - p->pad_top + ky;
    for (kx = 0; kx < p->filter_width; ++kx) {
      const int32_t ix = ox * p->stride_width - p->pad_left + kx;
      if (iy < 0 || iy >= p->in_height || ix < 0 || ix >= p->in_width) {
        for (i = 0; i < cin; i += 4) {
          col[i] = 0;
          col[i + 1] = 0;
        }
      } else {
        widen_with_offset(input + ((size_t)iy * p->in_width + ix) * cin, cin, offset2, col,
                          4);
      }
      col += cin; /* cin / 4 groups of 4 words */
    }
  }
}

/* Two output channels x two pixels: 16 MACs per 4 taps with 8 SMLAD; the
 * second channel's weights are `taps` bytes after the first's. */
static void dot_2x2(const int8_t *w, const uint32_t *col, int32_t taps, int32_t acc[4]) {
  int32_t a00 = acc[0], a01 = acc[1], a10 = acc[2], a11 = acc[3];
  const int8_t *end = w + taps;
  while (w < end) {
    const uint32_t v0 = load4(w), v1 = load4(w + taps);
    const uint32_t w0e = __sxtb16(v0), w0o = sxtb16_odd(v0);
    const uint32_t w1e = __sxtb16(v1), w1o = sxtb16_odd(v1);
    const uint32_t x0e = col[0], x0o = col[1], x1e = col[2], x1o = col[3];
    w += 4;
    col += 4;
    a00 = __smlad(w0e, x0e, a00);
    a00 = __smlad(w0o, x0o, a00);
    a01 = __smlad(w0e, x1e, a01);
    a01 = __smlad(w0o, x1o, a01);
    a10 = __smlad(w1e, x0e, a10);
    a10 = __smlad(w1o, x0o, a10);
    a11 = __smlad(w1e, x1e, a11);
    a11 = __smlad(w1o, x1o, a11);
  }
  acc[0] = a00;
  acc[1] = a01;
  acc[2] = a10;
  acc[3] = a11;
}

/* One channel x two pixels (odd channel count). */
static void dot_1x2(const int8_t *w, const uint32_t *col, int32_t taps, int32_t acc[2]) {
  int32_t a0 = acc[0], a1 = acc[1];
  const int8_t *end = w + taps;
  while (w < end) {
    const uint32_t v = load4(w);
    const uint32_t we = __sxtb16(v), wo = sxtb16_odd(v);
    a0 = __smlad(we, col[0], a0);
    a0 = __smlad(wo, col[1], a0);
    a1 = __smlad(we, col[2], a1);
    a1 = __smlad(wo, col[3], a1);
    w += 4;
    col += 4;
  }
  acc[0] = a0;
  acc[1] = a1;
}
#endif /* BENCH_DSP */

void bench_int8_conv2d(const bench_int8_conv_params *params, const int8_t *input,
                       const int8_t *filter, const int32_t *bias,
                       const int32_t *multiplier, const int32_t *shift,
                       int8_t *output, int16_t *scratch) {
  /* a local copy: stores through int8_t * could alias *params and force
   * every field to be reloaded after each output byte */
  const bench_int8_conv_params local = *params;
  const bench_int8_conv_params *const p = &local;
  const int32_t cout = p->channels_out;
  const int32_t pixels = p->out_height * p->out_width;
  int32_t pixel, co;
#if BENCH_DSP
  const int32_t taps = p->filter_height * p->filter_width * p->channels_in;
  const uint32_t offset2 = (uint16_t)p->input_offset * 0x10001u;
  uint32_t *col = (uint32_t *)(void *)scratch;
  if (p->channels_in % 4 == 0) {
    for (pixel = 0; pixel < pixels; pixel += 2) {
      /* an odd last pixel is paired with itself; its second result is dropped */
      const int32_t next = pixel + 1 < pixels ? pixel + 1 : pixel;
      int8_t *out0 = output + (size_t)pixel * cout;
      int8_t *out1 = output + (size_t)next * cout;
      im2col(p, input, pixel / p->out_width, pixel % p->out_width, offset2, col);
      im2col(p, input, next / p->out_width, next % p->out_width, offset2, col + 2);
      for (co = 0; co + 2 <= cout; co += 2) {
        int32_t acc[4] = {bias[co], bias[co], bias[co + 1], bias[co + 1]};
        dot_2x2(filter + (size_t)co * taps, col, taps, acc);
        out1[co] = requantize(p, acc[1], multiplier[co], shift[co]);
        out1[co + 1] = requantize(p, acc[3], multiplier[co + 1], shift[co + 1]);
        out0[co] = requantize(p, acc[0], multiplier[co], shift[co]);
        out0[co + 1] = requantize(p, acc[2], multiplier[co + 1], shift[co + 1]);
      }
      if (co < cout) {
        int32_t acc[2] = {bias[co], bias[co]};
        dot_1x2(filter + (size_t)co * taps, col, taps, acc);
        out1[co] = requantize(p, acc[1], multiplier[co], shift[co]);
        out0[co] = requantize(p, acc[0], multiplier[co], shift[co]);
      }
    }
    return;
  }
#else
  (void)scratch;
#endif
  for (pixel = 0; pixel < pixels; ++pixel) {
    for (co = 0; co < cout; ++co) {
      const int32_t acc = bias[co] + conv_output_c(p, input, filter, pixel / p->out_width,
                                                   pixel % p->out_width, co, 0);
      output[(size_t)pixel * cout + co] = requantize(p, acc, multiplier[co], shift[co]);
    }
  }
}

