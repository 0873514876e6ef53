/* CMSIS-NN int8 and int4-weight baselines (see cmsis_nn_baseline.h). */
#include "cmsis_nn_baseline.h"

#if defined(BENCH_CMSIS_NN) && BENCH_CMSIS_NN
#include "arm_nnfunctions.h"

static void fill_dims(cmsis_nn_dims *d, int32_t n, int32_t h, int32_t w, int32_t c) {
  d->n = n;
  d->h = h;
  d->w = w;
  d->c = c;
}

static void fill_activation(const bench_int8_conv_params *p, cmsis_nn_activation *a) {
  a->min = p->act_min;
  a->max = p->act_max;
}

static void fill_window(const bench_int8_conv_params *p, cmsis_nn_tile *stride,
                        cmsis_nn_tile *padding, cmsis_nn_tile *dilation) {
  stride->h = p->stride_height;
  stride->w = p->stride_width;
  padding->h = p->pad_top;
  padding->w = p->pad_left;
  dilation->h = 1;
  dilation->w = 1;
}

/* The four tensors' dims: the filter is [filter_n, KH, KW, filter_c] (conv: Cout, Cin;
 * depthwise: 1, Cout; fully connected, a 1x1 layer: Cin, Cout). */
typedef struct {
  cmsis_nn_dims input, filter, bias, output;
} tensor_dims;

static void fill_tensor_dims(const bench_int8_conv_params *p, int32_t filter_n, int32_t filter_c,
                             tensor_dims *d) {
  fill_dims(&d->input, 1, p->in_height, p->in_width, p->channels_in);
  fill_dims(&d->filter, filter_n, p->filter_height, p->filter_width, filter_c);
  fill_dims(&d->bias, 1, 1, 1, p->channels_out);
  fill_dims(&d->output, 1, p->out_height, p->out_width, p->channels_out);
}

static int32_t bench_status(arm_cmsis_nn_status status) {
  return status == ARM_CMSIS_NN_SUCCESS ? BENCH_CMSIS_NN_OK : BENCH_CMSIS_NN_FAILED;
}

/* What a convolution call takes besides the data (the buffer: scratch). */
typedef struct {
  cmsis_nn_conv_params conv;
  cmsis_nn_per_channel_quant_params quant;
  tensor_dims d;
  cmsis_nn_context ctx;
} conv_call;

static void fill_conv_call(const bench_int8_conv_params *p, const int32_t *multiplier,
                           const int32_t *shift, void *scratch, conv_call *c) {
  c->conv.input_offset = p->input_offset;
  c->conv.output_offset = p->output_offset;
  fill_window(p, &c->conv.stride, &c->conv.padding, &c->conv.dilation);
  fill_activation(p, &c->conv.activation);
  /* CMSIS-NN's API takes non-const arrays it does not write */
  c->quant.multiplier = (int32_t *)(uintptr_t)multiplier;
  c->quant.shift = (int32_t *)(uintptr_t)shift;
  fill_tensor_dims(p, p->channels_out, p->channels_in, &c->d);
  c->ctx.buf = scratch;
}

int32_t bench_cmsis_nn_conv2d(const bench_int8_conv_params *p, const int8_t *input,
                              const int8_t *filter, const int32_t *bias,
                              const int32_t *multiplier, const int32_t *shift,
                              int8_t *output, void *scratch, int32_t scratch_bytes) {
  conv_call c;
  fill_conv_call(p, multiplier, shift, scratch, &c);
  c.ctx.size = arm_convolve_wrapper_s8_get_buffer_size(&c.conv, &c.d.input, &c.d.filter,
                                                       &c.d.output);
  if (c.ctx.size > scratch_bytes) return BENCH_CMSIS_NN_FAILED;
  return bench_status(arm_convolve_wrapper_s8(&c.ctx, &c.conv, &c.quant, &c.d.input, input,
                                              &c.d.filter, filter, &c.d.bias, bias, &c.d.output,
                                              output));
}

int32_t bench_cmsis_nn_conv2d_s4(const bench_int8_conv_params *p, const int8_t *input,
                                 const int8_t *filter, const int32_t *bias,
                                 const int32_t *multiplier, const int32_t *shift,
                                 int8_t *output, void *scratch, int32_t scratch_bytes) {
  conv_call c;
  fill_conv_call(p, multiplier, shift, scratch, &c);
  c.ctx.size = arm_convolve_wrapper_s4_get_buffer_size(&c.conv, &c.d.input, &c.d.filter,
                                                       &c.d.output);
  if (c.ctx.size > scratch_bytes) return BENCH_CMSIS_NN_FAILED;
  return bench_status(arm_convolve_wrapper_s4(&c.ctx, &c.conv, &c.quant, &c.d.input, input,
                                              &c.d.filter, filter, &c.d.bias, bias, &c.d.output,
                                              output));
}

int32_t bench_cmsis_nn_depthwise_conv2d(const bench_int8_conv_params *p, const int8_t *input,
                                        const int8_t *filter, const int32_t *bias,
                                        const int32_t *multiplier, const int32_t *shift,
                                        int8_t *output, void *scratch, int32_t scratch_bytes) {
  cmsis_nn_dw_conv_params conv;
  cmsis_nn_per_channel_quant_params quant;
  tensor_dims d;
  cmsis_nn_context ctx;
  conv.input_offset = p->input_offset;
  conv.output_offset = p->output_offset;
  conv.ch_mult = p->channels_out / p->channels_in;
  fill_window(p, &conv.stride, &conv.padding, &conv.dilation);
  fill_activation(p, &conv.activation);
  quant.multiplier = (int32_t *)(uintptr_t)multiplier;
  quant.shift = (int32_t *)(uintptr_t)shift;
  fill_tensor_dims(p, 1, p->channels_out, &d);
  ctx.buf = scratch;
  ctx.size = arm_depthwise_conv_wrapper_s8_get_buffer_size(&conv, &d.input, &d.filter,
                                                           &d.output);
  if (ctx.size > scratch_bytes) return BENCH_CMSIS_NN_FAILED;
  return bench_status(arm_depthwise_conv_wrapper_s8(&ctx, &conv, &quant, &d.input, input,
                                                    &d.filter, filter, &d.bias, bias, &d.output,
                                                    output));
}

/* What a fully-connected call takes besides the data. */
typedef struct {
  cmsis_nn_fc_params fc;
  cmsis_nn_per_tensor_quant_params quant;
  tensor_dims d;
  cmsis_nn_context ctx;
} fc_call;

static void fill_fc_call(const bench_int8_conv_params *p, const int32_t *multiplier,
                         const int32_t *shift, fc_call *c) {
  c->fc.input_offset = p->input_offset;
  c->fc.filter_offset = 0;
  c->fc.output_offset = p->output_offset;
  fill_activation(p, &c->fc.activation);
  c->quant.multiplier = multiplier[0];
  c->quant.shift = shift[0];
  fill_tensor_dims(p, p->channels_in, p->channels_out, &c->d);
}

int32_t bench_cmsis_nn_fully_connected(const bench_int8_conv_params *p, const int8_t *input,
                                       const int8_t *weights, const int32_t *bias,
                                       const int32_t *multiplier, const int32_t *shift,
                                       int8_t *output, void *scratch, int32_t scratch_bytes) {
  fc_call c;
  fill_fc_call(p, multiplier, shift, &c);
  c.ctx.size = arm_fully_connected_s8_get_buffer_size(&c.d.filter);
  if (c.ctx.size > scratch_bytes) return BENCH_CMSIS_NN_FAILED;
  /* with the DSP extension CMSIS-NN needs no buffer (no precomputed kernel sums), as in
   * TFLite Micro's Cortex-M4 build */
  c.ctx.buf = c.ctx.size == 0 ? 0 : scratch;
  return bench_status(arm_fully_connected_s8(&c.ctx, &c.fc, &c.quant, &c.d.input, input,
                                             &c.d.filter, weights, &c.d.bias, bias, &c.d.output,
                                             output));
}

int32_t bench_cmsis_nn_fully_connected_s4(const bench_int8_conv_params *p, const int8_t *input,
                                          const int8_t *weights, const int32_t *bias,
                                          const int32_t *multiplier, const int32_t *shift,
                                          int8_t *output, void *scratch, int32_t scratch_bytes) {
  fc_call c;
  (void)scratch, (void)scratch_bytes;
  fill_fc_call(p, multiplier, shift, &c);
  /* arm_fully_connected_s4 takes no buffer (TFLite Micro passes none) */
  c.ctx.buf = 0;
  c.ctx.size = 0;
  return bench_status(arm_fully_connected_s4(&c.ctx, &c.fc, &c.quant, &c.d.input, input,
                                             &c.d.filter, weights, &c.d.bias, bias, &c.d.output,
                                             output));
}

#else /* built without CMSIS-NN */

int32_t bench_cmsis_nn_conv2d(const bench_int8_conv_params *p, const int8_t *input,
                              const int8_t *filter, const int32_t *bias,
                              const int32_t *multiplier, const int32_t *shift,
                              int8_t *output, void *scratch, int32_t scratch_bytes) {
  (void)p, (void)input, (void)filter, (void)bias, (void)multiplier, (void)shift;
  (void)output, (void)scratch, (void)scratch_bytes;
  return BENCH_CMSIS_NN_MISSING;
}

int32_t bench_cmsis_nn_depthwise_conv2d(const bench_int8_conv_params *p, const int8_t *input,
                                        const int8_t *filter, const int32_t *bias,
                                        const int32_t *multiplier, const int32_t *shift,
                                        int8_t *output, void *scratch, int32_t scratch_bytes) {
  return bench_cmsis_nn_conv2d(p, input, filter, bias, multiplier, shift, output, scratch,
                               scratch_bytes);
}

int32_t bench_cmsis_nn_fully_connected(const bench_int8_conv_params *p, const int8_t *input,
                                       const int8_t *weights, const int32_t *bias,
                                       const int32_t *multiplier, const int32_t *shift,
                                       int8_t *output, void *scratch, int32_t scratch_bytes) {
  return bench_cmsis_nn_conv2d(p, input, weights, bias, multiplier, shift, output, scratch,
                               scratch_bytes);
}

int32_t bench_cmsis_nn_conv2d_s4(const bench_int8_conv_params *p, const int8_t *input,
                                 const int8_t *filter, const int32_t *bias,
                                 const int32_t *multiplier, const int32_t *shift,
                                 int8_t *output, void *scratch, int32_t scratch_bytes) {
  return bench_cmsis_nn_conv2d(p, input, filter, bias, multiplier, shift, output, scratch,
                               scratch_bytes);
}

int32_t bench_cmsis_nn_fully_connected_s4(const bench_int8_conv_params *p, const int8_t *input,
                                          const int8_t *weights, const int32_t *bias,
                                          const int32_t *multiplier, const int32_t *shift,
                                          int8_t *output, void *scratch, int32_t scratch_bytes) {
  return bench_cmsis_nn_conv2d(p, input, weights, bias, multiplier, shift, output, scratch,
                               scratch_bytes);
}
#endif
