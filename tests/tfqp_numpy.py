"""Independent numpy definitions of the TFQP ops, written from the contracts in
``micro/include/tfqp/*.h`` (not from the C kernels): the oracle the kernel tests
and the converter tests compare the C kernels and deploy models with.

Each function takes the op's tensors as numpy arrays and its options as a dict.
"""

import numpy as np

from tfq_plus.converters import packing
from tfq_plus.converters.tflite_arithmetic import multiply_by_quantized_multiplier_array

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1


def window_axis(size, kernel, stride, dilation, padding):
    """(out, pad_before) as TFLite computes them (padding 0 SAME, 1 VALID)."""
    effective = (kernel - 1) * dilation + 1
    if padding == 0:
        out = -(-size // stride)
        total = max((out - 1) * stride + effective - size, 0)
        return out, total // 2
    return (size - effective) // stride + 1, 0


def patches(values, kh, kw, sh, sw, dh, dw, padding, pad):
    """[N, OH, OW, KH, KW, C] windows and a validity mask [OH, OW, KH, KW]
    (positions inside the image); padded positions hold ``pad``."""
    n, h, w, c = values.shape
    oh, top = window_axis(h, kh, sh, dh, padding)
    ow, left = window_axis(w, kw, sw, dw, padding)
    out = np.full((n, oh, ow, kh, kw, c), pad, dtype=values.dtype)
    valid = np.zeros((oh, ow, kh, kw), bool)
    for y in range(oh):
        for x in range(ow):
            for ky in range(kh):
                iy = y * sh - top + ky * dh
                if not 0 <= iy < h:
                    continue
                for kx in range(kw):
                    ix = x * sw - left + kx * dw
                    if 0 <= ix < w:
                        out[:, y, x, ky, kx] = values[:, iy, ix]
                        valid[y, x, ky, kx] = True
    return out, valid


def _signs_input(values, channels, zero_point):
    """+1 / -1 int64 of an int8 (bit = q < zp) or packed input."""
    if values.dtype == np.int8:
        return np.where(values.astype(np.int64) < zero_point, -1, 1)
    return np.where(packing.unpack_bits(values, channels), -1, 1)


def codes_output(acc, transform):
    """The codes output (option output_levels; contract: tfqp/shift_layer.h,
    tfqp/conv2d_int8.h): rows (d, base, t_1 .. t_L), out = base + #{i : d*A >= t_i}."""
    d = transform[:, 0].astype(np.int64)
    base, thresholds = transform[:, 1].astype(np.int64), transform[:, 2:].astype(np.int64)
    steps = (d * np.asarray(acc, np.int64))[..., None] >= thresholds
    return (base + steps.sum(axis=-1)).astype(np.int8)


def _output(acc, transform, options, output_kind, zero_point=0, residual=None, d_or_s=None):
    """The accumulator ops' output transforms (contract: tfqp/bconv2d.h); output_kind
    "accumulator" gives A itself."""
    if output_kind == "accumulator":
        return acc
    if output_kind == "codes":
        return codes_output(acc, transform)
    if output_kind == "packed":
        direction, threshold = transform[:, 0].astype(np.int64), transform[:, 1].astype(np.int64)
        return packing.pack_bits(direction * acc < threshold)
    if output_kind == "int32":
        m, s, b = (transform[:, i].astype(np.int64) for i in range(3))
        rounding = np.where(s > 0, np.left_shift(1, np.maximum(s - 1, 0)), 0)
        v = np.clip(b + ((m * acc + rounding) >> s), INT32_MIN, INT32_MAX)
        if residual is not None:  # saturate, add, saturate again (value_output.h)
            v = np.clip(v + residual.astype(np.int64), INT32_MIN, INT32_MAX)
        return v.astype(np.int32)
    raise ValueError(output_kind)


def bconv2d(x, filt, transform, options, *, input_zero_point=0, output_zero_point=0, output_kind,
            residual=None):
    o = options
    cin = o["channels_in"]
    a = _signs_input(x, cin, input_zero_point)
    s = np.where(packing.unpack_bits(filt, cin), -1, 1)  # [Cout, KH, KW, Cin]
    pad = 1 if o["pad_value"] == 1 else 0
    windows, valid = patches(a, o["filter_height"], o["filter_width"], o["stride_height"],
                             o["stride_width"], o["dilation_height_factor"], o["dilation_width_factor"],
                             o["padding"], pad)
    if pad == 1:
        valid = np.ones_like(valid)
    taps_valid = valid[None, :, :, :, :, None]
    prod = np.einsum("nyxhwc,ohwc->nyxo", windows * taps_valid, s)
    s_sum = np.einsum("yxhw,ohwc->yxo", valid.astype(np.int64), s)[None]
    d = prod
    if output_kind == "int8":
        w, bias, mult, shift = (transform[:, i].astype(np.int64) for i in range(4))
        p, n_ = o["input_pos"], o["input_neg"]
        acc = w * ((p + n_) * s_sum + (p - n_) * d) // 2 + bias
        out = output_zero_point + multiply_by_quantized_multiplier_array(acc, mult, shift)
        return np.clip(out, o["act_min"], o["act_max"]).astype(np.int8)
    return _output(d, transform, o, output_kind, residual=residual)


def bfully_connected(x, weights, transform, options, *, input_zero_point=0, output_zero_point=0,
                     output_kind, residual=None):
    o = options
    cin = o["channels_in"]
    a = _signs_input(x, cin, input_zero_point)
    s = np.where(packing.unpack_bits(weights, cin), -1, 1)
    d = a @ s.T
    if output_kind == "int8":
        w, bias, mult, shift = (transform[:, i].astype(np.int64) for i in range(4))
        p, n_ = o["input_pos"], o["input_neg"]
        acc = w * ((p + n_) * s.sum(axis=1)[None] + (p - n_) * d) // 2 + bias
        out = output_zero_point + multiply_by_quantized_multiplier_array(acc, mult, shift)
        return np.clip(out, o["act_min"], o["act_max"]).astype(np.int8)
    return _output(d, transform, o, output_kind, residual=residual)


def conv2d_int8(x, filt, transform, options, *, input_zero_point, output_kind, residual=None):
    o = options
    q = x.astype(np.int64) - input_zero_point
    windows, _ = patches(q, o["filter_height"], o["filter_width"], o["stride_height"], o["stride_width"],
                         o["dilation_height_factor"], o["dilation_width_factor"], o["padding"], 0)
    acc = np.einsum("nyxhwc,ohwc->nyxo", windows, filt.astype(np.int64))
    return _output(acc, transform, o, output_kind, residual=residual)


def fully_connected_int8(x, weights, transform, options, *, input_zero_point, output_kind, residual=None):
    acc = (x.astype(np.int64) - input_zero_point) @ weights.astype(np.int64).T
    return _output(acc, transform, options, output_kind, residual=residual)


def bmaxpool2d(x, options, or_mask=None):
    o = options
    c = o["channels"]
    bits = packing.unpack_bits(x, c)
    mask = np.zeros(c, bool) if or_mask is None else packing.unpack_bits(or_mask, c)
    n, h, w, _ = bits.shape
    oh, top = window_axis(h, o["filter_height"], o["stride_height"], 1, o["padding"])
    ow, left = window_axis(w, o["filter_width"], o["stride_width"], 1, o["padding"])
    out = np.zeros((n, oh, ow, c), bool)
    for y in range(oh):
        for xx in range(ow):
            ys = slice(max(y * o["stride_height"] - top, 0), min(y * o["stride_height"] - top + o["filter_height"], h))
            xs = slice(max(xx * o["stride_width"] - left, 0), min(xx * o["stride_width"] - left + o["filter_width"], w))
            window = bits[:, ys, xs].reshape(n, -1, c)
            out[:, y, xx] = np.where(mask, window.any(axis=1), window.all(axis=1))
    return packing.pack_bits(out)


def binarize(x, zero_point=0):
    return packing.pack_bits(x.astype(np.int64) < zero_point)


def unpack(x, options):
    group = options.get("group", options["channels"])
    words = -(-group // 32)
    groups = x.reshape(x.shape[:-1] + (options["channels"] // group, words))
    values = packing.unpack_activations(groups, group, options["positive"], options["negative"])
    return values.reshape(x.shape[:-1] + (options["channels"],))


# ----------------------------------------------------------------------------- shift ops
# Contract: micro/include/tfqp/shift_layer.h (and formats.h, "Coded weights").


def shift_codes(words, bits, count):
    """Code r of every row: word r // P, bits [(r % P) * b, (r % P) * b + b), P = 32 // b."""
    per_word = 32 // bits
    r = np.arange(count)
    unsigned = np.asarray(words).view(np.uint32).astype(np.int64)
    return (unsigned[:, r // per_word] >> ((r % per_word) * bits)) & ((1 << bits) - 1)


def shift_weights(words, table, taps, terms):
    """w_c[k] = sum over t of table[c][code(k, t)]: int64 [C, Cout, K]."""
    table = np.asarray(table, dtype=np.int64)
    bits = table.shape[1].bit_length() - 1
    codes = shift_codes(words, bits, taps * terms).reshape(len(words), taps, terms)
    return table[:, codes].sum(axis=-1)


def _round_half_away(x: int, s: int) -> int:
    """x / 2^s rounded half away from zero (Python integers: exact)."""
    if s == 0:
        return x
    magnitude = (abs(x) + (1 << (s - 1))) >> s
    return magnitude if x >= 0 else -magnitude


def _shift_output(acc, transform, options, output_kind, zero_point):
    """acc int64 [C, ..., Cout] -> the int8 values, the packed signs or the codes
    ("accumulator": A_0 itself)."""
    if output_kind == "accumulator":
        return acc[0]
    if output_kind == "codes":
        return codes_output(acc[0], transform)
    d = transform[:, 0].astype(np.int64)
    if output_kind == "packed":
        return packing.pack_bits(d * acc[0] < transform[:, 1].astype(np.int64))
    b, m0, m1, s = (transform[:, i].astype(np.int64) for i in range(1, 5))
    v = d * acc[0] + b
    if len(acc) == 1:
        values = multiply_by_quantized_multiplier_array(v, m0, s)
    else:
        exact = np.frompyfunc(lambda vv, a1, dd, mm0, mm1, ss: _round_half_away(
            int(vv) * int(mm0) + int(dd) * int(a1) * int(mm1), int(ss)), 6, 1)
        values = exact(v, acc[1], d, m0, m1, s).astype(np.int64)
    low, high = options.get("activation_min", -128), options.get("activation_max", 127)
    return np.clip(values + zero_point, low, high).astype(np.int8)


def shift_conv2d(x, words, table, transform, options, *, input_zero_point, output_zero_point=0,
                 output_kind):
    o = options
    kh, kw, cin = o["filter_height"], o["filter_width"], x.shape[3]
    w = shift_weights(words, table, kh * kw * cin, o.get("terms", 1))
    q = x.astype(np.int64) - input_zero_point
    windows, _ = patches(q, kh, kw, o["stride_height"], o["stride_width"],
                         o["dilation_height_factor"], o["dilation_width_factor"], o["padding"], 0)
    acc = np.einsum("nyxhwc,kohwc->knyxo", windows, w.reshape(len(w), len(words), kh, kw, cin))
    return _shift_output(acc, transform, o, output_kind, output_zero_point)


def shift_depthwise_conv2d(x, words, table, transform, options, *, input_zero_point,
                           output_zero_point=0, output_kind):
    """Output channel co reads input channel co // depth_multiplier."""
    o = options
    kh, kw = o["filter_height"], o["filter_width"]
    w = shift_weights(words, table, kh * kw, o.get("terms", 1))
    q = x.astype(np.int64) - input_zero_point
    windows, _ = patches(q, kh, kw, o["stride_height"], o["stride_width"],
                         o["dilation_height_factor"], o["dilation_width_factor"], o["padding"], 0)
    channel_of = np.arange(len(words)) // o["depth_multiplier"]
    acc = np.einsum("nyxhwo,kohw->knyxo", windows[..., channel_of],
                    w.reshape(len(w), len(words), kh, kw))
    return _shift_output(acc, transform, o, output_kind, output_zero_point)


def shift_fully_connected(x, words, table, transform, options, *, input_zero_point,
                          output_zero_point=0, output_kind):
    """Rows of channels_in values of an input of any rank."""
    o = options
    cin = o["channels_in"]
    w = shift_weights(words, table, cin, o.get("terms", 1))
    q = x.astype(np.int64).reshape(-1, cin) - input_zero_point
    acc = np.einsum("nc,koc->kno", q, w)
    return _shift_output(acc, transform, o, output_kind, output_zero_point)
