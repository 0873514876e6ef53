/* Internal: what the x86 fast path of the shift ops shares between its files
 * (shift_avx2.c: layout, drivers and the AVX2 kernels; shift_avx512.c: the
 * AVX-512 VNNI kernels it calls when the CPU has them).
 *
 * Weights. init_table decodes every output channel's codes once into int8
 * weights w_c[k] (the T terms of a tap summed), in blocks of 16 channels:
 * block b, tap group g holds bytes [16 channels][4 taps 4g .. 4g + 3], 64
 * bytes, taps past K zero. A convolution / fully-connected layer's taps are
 * K = KH*KW*Cin (or Cin), a depthwise layer's KH*KW.
 *
 * Activations are read as u = q + 128 (q XOR 0x80, unsigned bytes: the
 * operand VPMADDUBSW / VPDPBUSD multiply with signed weights), padded taps as
 * zp_in + 128, so every accumulator is sum_k u_k w_k = A + (zp_in + 128) *
 * sum_k w_k: init_table folds -d * (zp_in + 128) * sum_k w_k into the
 * channel's bias (modulo 2^32).
 */
#ifndef TFQP_KERNELS_SHIFT_X86_H_
#define TFQP_KERNELS_SHIFT_X86_H_

#include <stddef.h>
#include <stdint.h>

#define TFQP_X86_BLOCK 16      /* output channels per weight block */
#define TFQP_X86_SUPERBLOCK 64 /* depthwise channels per AVX-512 kernel pass */
#define TFQP_X86_GROUP 4       /* taps per group (one VPDPBUSD lane) */
#define TFQP_X86_GROUP_BYTES (TFQP_X86_BLOCK * TFQP_X86_GROUP)

/* Rows (output positions) per call of the position kernels. */
#define TFQP_AVX2_ROWS 4
#define TFQP_AVX512_ROWS 8

/* acc[r * 16 * blocks + c] = sum over the groups g < groups of the dot
 * product of the 4 bytes rows[r] + 4g (u values) with channel c's 4 weights,
 * for r < ROWS and c < 16 * blocks (blocks 1 or 2, the second block
 * block_bytes after the first). */
void tfqp_shift_avx2_rows(const uint8_t *const *rows, const int8_t *weights, size_t block_bytes,
                          int32_t blocks, int32_t groups, int32_t *acc);
void tfqp_shift_avx512_rows(const uint8_t *const *rows, const int8_t *weights,
                            size_t block_bytes, int32_t blocks, int32_t groups, int32_t *acc);

/* The same product when the rows are windows of an image whose taps start
 * at windows[r] + offsets[t] (t < taps) with 4 * tap_groups bytes each (a
 * convolution on Cin = 4 * tap_groups channels): group g of the weights is
 * tap g / tap_groups, channels 4 * (g % tap_groups) on. */
void tfqp_shift_avx2_windows(const uint8_t *const *windows, const size_t *offsets, int32_t taps,
                             int32_t tap_groups, const int8_t *weights, size_t block_bytes,
                             int32_t blocks, int32_t *acc);
void tfqp_shift_avx512_windows(const uint8_t *const *windows, const size_t *offsets,
                               int32_t taps, int32_t tap_groups, const int8_t *weights,
                               size_t block_bytes, int32_t blocks, int32_t *acc);

/* int8 outputs clamp(zp_out + MultiplyByQuantizedMultiplier(base - wpn * acc,
 * mult, left - right)) of channels [0, count) (fields[f * stride + c]: base,
 * wpn = -d in {+1, -1}, mult, left, right) for `rows` positions:
 * acc + r * acc_stride in, out + r * out_stride out. */
typedef struct {
  const int32_t *fields; /* base, wpn, mult, left, right arrays, stride apart */
  size_t stride;
  int32_t zero_point, act_min, act_max;
} tfqp_x86_requant;

void tfqp_shift_avx512_outputs_int8(const tfqp_x86_requant *q, const int32_t *acc,
                                    size_t acc_stride, int32_t rows, int32_t count, int8_t *out,
                                    size_t out_stride);

/* tfqp_shift_avx512_windows on two blocks (32 channels) followed by
 * tfqp_shift_avx512_outputs_int8 of the first `count` positions, from the
 * accumulators in registers. */
void tfqp_shift_avx512_windows_int8(const uint8_t *const *windows, const size_t *offsets,
                                    int32_t taps, int32_t tap_groups, const int8_t *weights,
                                    size_t block_bytes, const tfqp_x86_requant *q, int32_t count,
                                    int8_t *out, size_t out_stride);

/* One row (batch 1 fully connected): acc[c] for every channel c < 16 *
 * blocks, blocks block_bytes apart. */
void tfqp_shift_avx2_vector(const uint8_t *u, const int8_t *weights, size_t block_bytes,
                            int32_t blocks, int32_t groups, int32_t *acc);
void tfqp_shift_avx512_vector(const uint8_t *u, const int8_t *weights, size_t block_bytes,
                              int32_t blocks, int32_t groups, int32_t *acc);

/* Depthwise: acc[c] = sum over the groups g of the dot product of channel
 * c's bytes window[offsets[4g + t] + c] (t < 4, u values) with its 4
 * weights. AVX2: every channel c < 16 * units, blocks block_bytes apart.
 * AVX-512: c < 64 * units, weights in superblocks of 64 channels: superblock
 * s, group g holds four 64-byte vectors j, vector j the channels 64s + 16L +
 * 4j + i at 32-bit lane 4L + i (the order VPUNPCK{L,H}BW / WD of four tap
 * rows of 64 channels produce); the accumulators are put back in channel
 * order with four 128-bit lane transposes. */
void tfqp_shift_avx2_depthwise(const uint8_t *window, const size_t *offsets, int32_t groups,
                               int32_t units, const int8_t *weights, size_t block_bytes,
                               int32_t *acc);
void tfqp_shift_avx512_depthwise(const uint8_t *window, const size_t *offsets, int32_t groups,
                                 int32_t units, const int8_t *weights, size_t block_bytes,
                                 int32_t *acc);

/* AVX-512, three groups (a 3x3 window): the depthwise sums of `rows`
 * positions, windows[r] their windows, acc + r * acc_stride their sums. */
void tfqp_shift_avx512_depthwise3(const uint8_t *const *windows, int32_t rows,
                                  const size_t *offsets, int32_t units, const int8_t *weights,
                                  size_t block_bytes, int32_t *acc, size_t acc_stride);

/* Whether this CPU runs the AVX-512 VNNI kernels (CPUID, once). */
int tfqp_shift_avx512_available(void);

#endif /* TFQP_KERNELS_SHIFT_X86_H_ */
