/* int8 fully-connected baseline (see int8_baseline.h). */
#include "int8_common.h"

void bench_int8_fully_connected(const bench_int8_conv_params *params,
                                const int8_t *input, const int8_t *weights,
                                const int32_t *bias, const int32_t *multiplier,
                                const int32_t *shift, int8_t *output,
                                int16_t *scratch) {
  /* a local copy: stores through int8_t * could alias *params and force
   * every field to be reloaded after each output byte */
  const bench_int8_conv_params local = *params;
  const bench_int8_conv_params *const p = &local;
  const int32_t cin = p->channels_in;
  const int32_t cout = p->channels_out;
  int32_t co, k;
#if BENCH_DSP
  if (cin % 4 == 0 && cout % 4 == 0) {
    uint32_t *x = (uint32_t *)(void *)scratch;
    widen_with_offset(input, cin, (uint16_t)p->input_offset * 0x10001u, x, 2);
    for (co = 0; co < cout; co += 4) {
      const int8_t *w0 = weights + (size_t)co * cin;
      const int8_t *w1 = w0 + cin, *w2 = w1 + cin, *w3 = w2 + cin;
      int32_t a0 = bias[co], a1 = bias[co + 1], a2 = bias[co + 2], a3 = bias[co + 3];
      const uint32_t *xp = x;
      for (k = 0; k < cin; k += 4) {
        const uint32_t xe = xp[0], xo = xp[1];
        const uint32_t v0 = load4(w0 + k), v1 = load4(w1 + k);
        const uint32_t v2 = load4(w2 + k), v3 = load4(w3 + k);
        xp += 2;
        a0 = __smlad(__sxtb16(v0), xe, a0);
        a0 = __smlad(sxtb16_odd(v0), xo, a0);
        a1 = __smlad(__sxtb16(v1), xe, a1);
        a1 = __smlad(sxtb16_odd(v1), xo, a1);
        a2 = __smlad(__sxtb16(v2), xe, a2);
        a2 = __smlad(sxtb16_odd(v2), xo, a2);
        a3 = __smlad(__sxtb16(v3), xe, a3);
        a3 = __smlad(sxtb16_odd(v3), xo, a3);
      }
      output[co] = requantize(p, a0, multiplier[co], shift[co]);
      output[co + 1] = requantize(p, a1, multiplier[co + 1], shift[co + 1]);
      output[co + 2] = requantize(p, a2, multiplier[co + 2], shift[co + 2]);
      output[co + 3] = requantize(p, a3, multiplier[co + 3], shift[co + 3]);
    }
    return;
  }
#else
  (void)scratch;
#endif
  for (co = 0; co < cout; ++co) {
    int32_t acc = bias[co];
    for (k = 0; k < cin; ++k) acc += (input[k] + p->input_offset) * weights[(size_t)co * cin + k];
    output[co] = requantize(p, acc, multiplier[co], shift[co]);
  }
}
