"""Binary TFQP kernels (host C build) against an independent numpy reference and TFLite.

The reference is written from the op contract (micro/include/tfqp/bconv2d.h): a plain
+-1 convolution with TFLite's padding arithmetic and larq's pad values, then the
contract's integer requantization with a numpy MultiplyByQuantizedMultiplier. The
last tests build int8 models with the stock TFLiteConverter and require the kernel's
output bytes to equal TFLite's own CONV_2D / FULLY_CONNECTED (reference kernels):
the deploy model's core invariant.
"""

import itertools

import tfq_plus  # noqa: F401  (selects Keras 2 before TensorFlow)

import numpy as np
import pytest

from tfq_plus.converters import _tfqp_kernels as kernels
from tfq_plus.converters.ops import BCONV2D, BFULLY_CONNECTED, BMAXPOOL2D  # noqa: F401
from tfq_plus.converters import packing

INT32_MIN = -(2**31)
INT32_MAX = 2**31 - 1

# ----------------------------------------------------------------------------- reference


def _window(size, kernel, stride, dilation, padding):
    """(out, pad_before, pad_after) as TFLite's ComputePaddingHeightWidth."""
    effective = (kernel - 1) * dilation + 1
    if padding == "same":
        out = -(-size // stride)
    else:
        out = (size - effective) // stride + 1
    total = max(0, (out - 1) * stride + effective - size)
    return out, total // 2, total - total // 2


def reference_sums(signs, weights, stride, dilation, padding, pad_value):
    """D and S of the contract for +-1 ``signs`` [N,H,W,Cin] and ``weights`` [Cout,KH,KW,Cin].

    Padded taps are 0 for pad_value 0 (they drop out of both sums) and +1 inputs
    for pad_value 1."""
    n, h, w, _ = signs.shape
    cout, kh, kw, _ = weights.shape
    oh, top, bottom = _window(h, kh, stride[0], dilation[0], padding)
    ow, left, right = _window(w, kw, stride[1], dilation[1], padding)
    fill = 1 if pad_value == 1 else 0
    pad = ((0, 0), (top, bottom), (left, right), (0, 0))
    x = np.pad(signs.astype(np.int64), pad, constant_values=fill)
    valid = np.pad(np.ones_like(signs, dtype=np.int64), pad, constant_values=fill)
    d = np.zeros((n, oh, ow, cout), np.int64)
    s = np.zeros((n, oh, ow, cout), np.int64)
    for ky, kx in itertools.product(range(kh), range(kw)):
        rows = slice(ky * dilation[0], ky * dilation[0] + (oh - 1) * stride[0] + 1, stride[0])
        cols = slice(kx * dilation[1], kx * dilation[1] + (ow - 1) * stride[1] + 1, stride[1])
        w_tap = weights[:, ky, kx, :].astype(np.int64)
        d += np.einsum("nyxc,oc->nyxo", x[:, rows, cols, :], w_tap)
        s += np.einsum("nyxc,oc->nyxo", valid[:, rows, cols, :], w_tap)
    return d, s


def _wrap_int32(x):
    return ((np.asarray(x, np.int64) + 2**31) % 2**32) - 2**31


def multiply_by_quantized_multiplier(x, multiplier, shift):
    """TFLite's reference MultiplyByQuantizedMultiplier (gemmlowp double rounding)."""
    x = np.asarray(x, np.int64)
    multiplier = np.broadcast_to(np.asarray(multiplier, np.int64), x.shape)
    shift = np.broadcast_to(np.asarray(shift, np.int64), x.shape)
    left = np.maximum(shift, 0)
    right = np.maximum(-shift, 0)
    a = _wrap_int32(x << left)
    ab = a * multiplier
    nudge = np.where(ab >= 0, 1 << 30, 1 - (1 << 30))
    total = ab + nudge
    high = np.where(total >= 0, total // 2**31, -((-total) // 2**31))  # C division
    high = np.where((a == INT32_MIN) & (multiplier == INT32_MIN), INT32_MAX, high)
    mask = (np.int64(1) << right) - 1
    remainder = high & mask
    threshold = (mask >> 1) + (high < 0)
    return (high >> right) + (remainder > threshold)


def reference_int8(d, s, transform, p, n, zero_point, act_min, act_max):
    w, bias, multiplier, shift = (transform[:, i].astype(np.int64) for i in range(4))
    numerator = (p + n) * s + (p - n) * d
    assert np.all(numerator % 2 == 0)
    acc = w * (numerator // 2) + bias
    assert np.all((acc >= INT32_MIN) & (acc <= INT32_MAX))
    out = zero_point + multiply_by_quantized_multiplier(acc, multiplier, shift)
    return np.clip(out, act_min, act_max).astype(np.int8)


def reference_bits(d, transform):
    """Packed output: bit (True = -1) iff direction * D < threshold."""
    return transform[:, 0].astype(np.int64) * d < transform[:, 1].astype(np.int64)


# ----------------------------------------------------------------------------- inputs


def random_int8_input(rng, shape, zero_point):
    """int8 codes around ``zero_point`` including exact zeros (sign(0) = +1)."""
    q = rng.integers(-128, 128, size=shape, dtype=np.int64)
    q[rng.random(shape) < 0.1] = zero_point
    q = q.astype(np.int8)
    return q, np.where(q < zero_point, -1, 1)


def random_packed_input(rng, shape):
    """Random packed activations whose padding bits hold garbage: consumers must mask."""
    channels = shape[-1]
    signs = rng.choice(np.array([-1, 1]), size=shape)
    packed = packing.pack_bits(signs < 0).view(np.uint32)
    if channels % 32:
        garbage = rng.integers(0, 2**32, size=packed.shape[:-1], dtype=np.uint64)
        garbage = garbage.astype(np.uint32) & np.uint32(~packing.last_word_mask(channels) & 0xFFFFFFFF)
        packed[..., -1] |= garbage
    return packed.view(np.int32), signs


def random_int8_transform(rng, cout, taps, p, n):
    """Random per-channel rows (W, bias, multiplier, shift) scaled to span int8."""
    w = rng.integers(-127, 128, size=cout)
    bias = rng.integers(-3000, 3001, size=cout)
    multiplier = rng.integers(2**30, 2**31, size=cout)
    magnitude = np.maximum(np.abs(w), 1) * max(abs(p), abs(n), 1) * np.sqrt(taps)
    shift = np.round(np.log2(60.0 / magnitude)).astype(np.int64) + rng.integers(-1, 2, size=cout)
    return np.stack([w, bias, multiplier, np.clip(shift, -31, 31)], axis=1).astype(np.int32)


def random_packed_transform(rng, cout, taps):
    direction = rng.choice(np.array([-1, 1]), size=cout)
    threshold = rng.integers(-taps, taps + 1, size=cout)
    threshold[: min(cout, 2)] = [INT32_MIN, INT32_MAX][: min(cout, 2)]  # never / always
    return np.stack([direction, threshold], axis=1).astype(np.int32)


# ----------------------------------------------------------------------------- bconv2d

CONV_CASES = list(
    itertools.product(
        [1, 3, 5],  # kernel size
        [1, 2],  # stride
        [1, 2],  # dilation
        ["same", "valid"],
        [0, 1],  # pad value
        ["int8", "packed"],  # input
        ["int8", "packed"],  # output
    )
)


@pytest.mark.parametrize("kernel,stride,dilation,padding,pad_value,input_kind,output_kind", CONV_CASES)
def test_bconv2d_matches_reference(kernel, stride, dilation, padding, pad_value, input_kind, output_kind):
    case = CONV_CASES.index((kernel, stride, dilation, padding, pad_value, input_kind, output_kind))
    rng = np.random.default_rng(1000 + case)
    cin = [1, 31, 32, 33, 64, 65, 70][case % 7]
    cout = [1, 5, 32, 37, 8][case % 5]
    batch, h, w = 2, 9 + case % 3, 10 + case % 2
    shape = (batch, h, w, cin)
    if input_kind == "int8":
        zero_point = int(rng.integers(-20, 21))
        x, signs = random_int8_input(rng, shape, zero_point)
    else:
        zero_point = 0
        x, signs = random_packed_input(rng, shape)
    weights = rng.choice(np.array([-1, 1]), size=(cout, kernel, kernel, cin))
    d, s = reference_sums(signs, weights, (stride, stride), (dilation, dilation), padding, pad_value)
    taps = kernel * kernel * cin
    common = dict(
        channels_in=cin, filter_height=kernel, filter_width=kernel, stride_height=stride,
        stride_width=stride, dilation_height_factor=dilation, dilation_width_factor=dilation,
        padding=padding, pad_value=pad_value,
    )
    if output_kind == "int8":
        p, n = int(rng.integers(0, 256)), int(rng.integers(-255, 0))
        transform = random_int8_transform(rng, cout, taps, p, n)
        out_zero_point = int(rng.integers(-10, 11))
        act_min, act_max = (-128, 127) if case % 2 else (out_zero_point, 120)
        options = BCONV2D.encode(
            **common, input_pos=p, input_neg=n, act_min=act_min, act_max=act_max
        )
        expected = reference_int8(d, s, transform, p, n, out_zero_point, act_min, act_max)
        got = kernels.bconv2d(
            x, packing.pack_filter(weights), transform, options,
            input_zero_point=zero_point, output_zero_point=out_zero_point,
        )
        assert got.dtype == np.int8
        np.testing.assert_array_equal(got, expected)
        if expected.size >= 50:  # the case is informative: not all outputs clamped
            assert len(np.unique(expected)) >= min(4, len(np.unique(d)))
    else:
        transform = random_packed_transform(rng, cout, taps)
        options = BCONV2D.encode(**common)
        got = kernels.bconv2d(
            x, packing.pack_filter(weights), transform, options,
            input_zero_point=zero_point, packed_output=True,
        )
        assert got.dtype == np.int32
        np.testing.assert_array_equal(packing.unpack_bits(got, cout), reference_bits(d, transform))
        # padding bits of the packed output are 0
        tail = got.view(np.uint32)[..., -1] & np.uint32(~packing.last_word_mask(cout) & 0xFFFFFFFF)
        assert not tail.any()


def test_bconv2d_rectangular_and_mixed_geometry():
    """Different strides/dilations/filter sizes per axis, a wide layer, batch 3."""
    rng = np.random.default_rng(7)
    for kh, kw, sh, sw, dh, dw, padding, pad_value in [
        (3, 5, 1, 2, 2, 1, "same", 0),
        (5, 3, 2, 1, 1, 3, "same", 1),
        (2, 4, 3, 1, 1, 1, "same", 0),
        (3, 1, 1, 1, 3, 1, "valid", 0),
    ]:
        cin, cout = 96, 67
        x, signs = random_packed_input(rng, (3, 11, 13, cin))
        weights = rng.choice(np.array([-1, 1]), size=(cout, kh, kw, cin))
        d, s = reference_sums(signs, weights, (sh, sw), (dh, dw), padding, pad_value)
        p, n = 127, -128
        transform = random_int8_transform(rng, cout, kh * kw * cin, p, n)
        options = BCONV2D.encode(
            channels_in=cin, filter_height=kh, filter_width=kw, stride_height=sh,
            stride_width=sw, dilation_height_factor=dh, dilation_width_factor=dw,
            padding=padding, pad_value=pad_value, input_pos=p, input_neg=n,
            act_min=-128, act_max=127,
        )
        got = kernels.bconv2d(x, packing.pack_filter(weights), transform, options, output_zero_point=-3)
        np.testing.assert_array_equal(got, reference_int8(d, s, transform, p, n, -3, -128, 127))


def test_bconv2d_tiny_image_with_empty_windows():
    """Dilated SAME windows larger than the image: some windows have no valid tap."""
    rng = np.random.default_rng(8)
    x, signs = random_packed_input(rng, (1, 2, 2, 5))
    weights = rng.choice(np.array([-1, 1]), size=(3, 2, 2, 5))
    d, s = reference_sums(signs, weights, (1, 1), (3, 3), "same", 0)
    assert np.any(s == 0) and np.any(d == 0)
    transform = np.array([[5, 7, 2**30, 1], [-3, -9, 2**30 + 5, 0], [1, 0, 2**31 - 1, 2]], np.int32)
    options = BCONV2D.encode(
        channels_in=5, filter_height=2, filter_width=2, dilation_height_factor=3,
        dilation_width_factor=3, input_pos=3, input_neg=-2, act_min=-128, act_max=127,
    )
    got = kernels.bconv2d(x, packing.pack_filter(weights), transform, options)
    np.testing.assert_array_equal(got, reference_int8(d, s, transform, 3, -2, 0, -128, 127))


# ----------------------------------------------------------------------------- fully connected


@pytest.mark.parametrize("cin", [1, 31, 32, 33, 64, 65, 300])
@pytest.mark.parametrize("input_kind,output_kind", list(itertools.product(["int8", "packed"], repeat=2)))
def test_bfully_connected_matches_reference(cin, input_kind, output_kind):
    rng = np.random.default_rng(cin * 7 + len(input_kind) * 3 + len(output_kind))
    batch = 3
    cout = [1, 3, 4, 33, 70][cin % 5]
    if input_kind == "int8":
        zero_point = int(rng.integers(-5, 6))
        x, signs = random_int8_input(rng, (batch, cin), zero_point)
    else:
        zero_point = 0
        x, signs = random_packed_input(rng, (batch, cin))
    weights = rng.choice(np.array([-1, 1]), size=(cout, cin))
    d = signs.astype(np.int64) @ weights.T.astype(np.int64)
    s = np.broadcast_to(weights.sum(axis=1), d.shape)
    if output_kind == "int8":
        p, n = int(rng.integers(0, 256)), int(rng.integers(-255, 0))
        transform = random_int8_transform(rng, cout, cin, p, n)
        options = BFULLY_CONNECTED.encode(
            channels_in=cin, input_pos=p, input_neg=n, act_min=-100, act_max=127
        )
        got = kernels.bfully_connected(
            x, packing.pack_filter(weights), transform, options,
            input_zero_point=zero_point, output_zero_point=4,
        )
        np.testing.assert_array_equal(got, reference_int8(d, s, transform, p, n, 4, -100, 127))
    else:
        transform = random_packed_transform(rng, cout, cin)
        options = BFULLY_CONNECTED.encode(channels_in=cin)
        got = kernels.bfully_connected(
            x, packing.pack_filter(weights), transform, options,
            input_zero_point=zero_point, packed_output=True,
        )
        assert got.shape == (batch, packing.packed_words(cout))
        np.testing.assert_array_equal(packing.unpack_bits(got, cout), reference_bits(d, transform))


def test_requantization_edge_cases():
    """MultiplyByQuantizedMultiplier on extreme accumulators, multipliers and shifts.

    A one-input FC with W = 0 makes the accumulator equal to the bias exactly."""
    rng = np.random.default_rng(3)
    accs = np.array([0, 1, -1, 2, -2, 3, -3, 2**30, -(2**30), INT32_MAX, INT32_MIN + 1, 12345, -12345,
                     2**20 + 1, -(2**20) - 1, 255, -255, 256, -256], np.int64)
    multipliers = np.array([0, 1, 2**30, 2**31 - 1, 1518500250, INT32_MIN, -(2**30), -1], np.int64)
    shifts = np.array([-31, -30, -17, -8, -1, 0, 1, 2, 8, 30, 31], np.int64)
    rows = np.array(list(itertools.product(accs, multipliers, shifts)), np.int64)
    rows = np.concatenate([rows, np.stack([rng.integers(-(2**31) + 1, 2**31, 2000),
                                           rng.integers(-(2**31), 2**31, 2000),
                                           rng.integers(-31, 32, 2000)], axis=1)])
    cout = len(rows)
    transform = np.stack([np.zeros(cout), rows[:, 0], rows[:, 1], rows[:, 2]], axis=1).astype(np.int32)
    options = BFULLY_CONNECTED.encode(
        channels_in=1, input_pos=1, input_neg=-1, act_min=-128, act_max=127
    )
    x = np.zeros((1, 1), np.int8)
    got = kernels.bfully_connected(x, packing.pack_filter(np.ones((cout, 1))), transform, options)
    expected = np.clip(multiply_by_quantized_multiplier(rows[:, 0], rows[:, 1], rows[:, 2]), -128, 127)
    np.testing.assert_array_equal(got[0], expected.astype(np.int8))
    # the comparison is informative only where the result is not clamped
    unclamped = np.abs(multiply_by_quantized_multiplier(rows[:, 0], rows[:, 1], rows[:, 2])) < 100
    assert unclamped.sum() > 200


# ----------------------------------------------------------------------------- maxpool


def reference_maxpool_bits(signs, kernel, stride, padding):
    n, h, w, c = signs.shape
    oh, top, _ = _window(h, kernel[0], stride[0], 1, padding)
    ow, left, _ = _window(w, kernel[1], stride[1], 1, padding)
    out = np.empty((n, oh, ow, c), np.int64)
    for y, x in itertools.product(range(oh), range(ow)):
        y0, x0 = y * stride[0] - top, x * stride[1] - left
        window = signs[:, max(y0, 0) : y0 + kernel[0], max(x0, 0) : x0 + kernel[1], :]
        out[:, y, x, :] = window.max(axis=(1, 2))
    return out < 0


@pytest.mark.parametrize("channels", [1, 33, 64, 300])
@pytest.mark.parametrize("kernel,stride,padding", [(2, 2, "valid"), (3, 2, "same"), (3, 1, "same"), (2, 3, "same"), (3, 3, "valid")])
def test_bmaxpool2d_matches_reference(channels, kernel, stride, padding):
    rng = np.random.default_rng(channels + kernel * 10 + stride)
    x, signs = random_packed_input(rng, (2, 7, 8, channels))
    # mostly -1 so that the AND of the bits is often 1
    signs = np.where(rng.random(signs.shape) < 0.8, -1, signs)
    x = packing.pack_bits(signs < 0)
    options = BMAXPOOL2D.encode(
        channels=channels, filter_height=kernel, filter_width=kernel, stride_height=stride,
        stride_width=stride, padding=padding,
    )
    got = kernels.bmaxpool2d(x, options)
    expected = reference_maxpool_bits(signs, (kernel, kernel), (stride, stride), padding)
    np.testing.assert_array_equal(packing.unpack_bits(got, channels), expected)
    assert expected.any() and not expected.all()


def test_bmaxpool2d_masks_input_padding_bits():
    rng = np.random.default_rng(5)
    x, signs = random_packed_input(rng, (1, 4, 4, 33))
    options = BMAXPOOL2D.encode(channels=33, filter_height=2, filter_width=2, stride_height=2,
                                         stride_width=2)
    got = kernels.bmaxpool2d(x, options).view(np.uint32)
    assert not (got[..., -1] & np.uint32(0xFFFFFFFE)).any()
    expected = reference_maxpool_bits(signs, (2, 2), (2, 2), "valid")
    np.testing.assert_array_equal(packing.unpack_bits(got.view(np.int32), 33), expected)


# ----------------------------------------------------------------------------- validation


def _conv_call(**overrides):
    args = dict(
        input=np.zeros((1, 5, 5, 40), np.int8),
        filter=np.zeros((8, 3, 3, 2), np.int32),
        transform=np.zeros((8, 4), np.int32),
        options=BCONV2D.encode(channels_in=40, filter_height=3, filter_width=3, input_pos=1,
                                        input_neg=-1, act_min=-128, act_max=127),
    )
    args.update(overrides)
    return kernels.bconv2d(**args)


@pytest.mark.parametrize(
    "overrides,message",
    [
        (dict(input=np.zeros((1, 5, 5, 41), np.int8)), "int8 input depth must equal channels_in"),
        (dict(input=np.zeros((1, 5, 5, 3), np.int32)), "packed input depth"),
        (dict(input=np.zeros((5, 5, 40), np.int8)), "wrong rank"),
        (dict(input=np.zeros((1, 5, 5, 40), np.float32)), "dtype int8 or int32"),
        (dict(filter=np.zeros((8, 3, 2, 2), np.int32)), "filter dim 2 must equal filter_width"),
        (dict(filter=np.zeros((8, 3, 3, 2), np.int8)), "must be int32"),
        (dict(transform=np.zeros((8, 2), np.int32)), "transform must be [Cout, 4]"),
        (dict(transform=np.zeros((7, 4), np.int32)), "transform dim 0"),
        (dict(transform=np.array([[0, 0, 0, 32]] * 8, np.int32)), "shift must be in [-31, 31]"),
        (dict(transform=np.array([[127, 2**31 - 1000, 0, 0]] * 8, np.int32)), "could overflow"),
        (dict(filter=np.full((8, 3, 3, 2), 1 << 9, np.int32)), "filter padding bits"),
        (dict(options=BCONV2D.encode(channels_in=40, filter_height=3, filter_width=3)),
         "int8 output needs options"),
        (dict(options=b"\x00\x01\x02"), "malformed options"),
        (dict(options=BMAXPOOL2D.encode(channels=40, filter_height=2, filter_width=2)),
         "unknown option key"),
    ],
)
def test_bconv2d_rejects_inconsistent_tensors(overrides, message):
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        _conv_call(**overrides)


def test_packed_output_rejects_bad_direction():
    with pytest.raises(ValueError, match="direction must be"):
        kernels.bconv2d(
            np.zeros((1, 4, 4, 1), np.int32), np.zeros((3, 1, 1, 1), np.int32),
            np.array([[1, 0], [0, 0], [-1, 0]], np.int32),
            BCONV2D.encode(channels_in=32, filter_height=1, filter_width=1),
            packed_output=True,
        )


def test_option_encoders_reject_bad_values():
    with pytest.raises(ValueError, match="pad_value"):
        BCONV2D.encode(channels_in=3, filter_height=3, filter_width=3, pad_value=2)
    with pytest.raises(ValueError, match="padding"):
        BCONV2D.encode(channels_in=3, filter_height=3, filter_width=3, padding="full")
    with pytest.raises(ValueError, match="needs all of"):
        BFULLY_CONNECTED.encode(channels_in=3, input_pos=1)
    with pytest.raises(ValueError, match="act_max"):
        BFULLY_CONNECTED.encode(channels_in=3, input_pos=1, input_neg=-1, act_min=5, act_max=4)


# ----------------------------------------------------------------------------- TFLite


def _quantize_multiplier(real):
    """TFLite's QuantizeMultiplier (frexp, round half away from zero)."""
    import math

    if real == 0.0:
        return 0, 0
    fraction, shift = math.frexp(real)
    fixed = int(math.floor(fraction * 2**31 + 0.5))
    if fixed == 2**31:
        fixed //= 2
        shift += 1
    if shift < -31:
        return 0, 0
    return fixed, shift


def _tensor(interpreter, index):
    for detail in interpreter.get_tensor_details():
        if detail["index"] == index:
            return detail
    raise KeyError(index)


CONV_SPECS = {  # output channels identify the op in the converted model
    6: dict(kernel_size=3, strides=1, padding="same", dilation_rate=1, activation=None),
    5: dict(kernel_size=5, strides=2, padding="valid", dilation_rate=1, activation="relu"),
    7: dict(kernel_size=3, strides=1, padding="same", dilation_rate=2, activation=None),
    4: dict(kernel_size=1, strides=2, padding="same", dilation_rate=1, activation=None),
    3: dict(kernel_size=(3, 2), strides=(2, 1), padding="same", dilation_rate=1, activation="relu"),
}
DENSE_UNITS = 9


@pytest.fixture(scope="module")
def tflite_binary_model():
    """An int8 TFLite model of convs/dense with +-c_k weights per channel, one input."""
    import tensorflow as tf

    rng = np.random.default_rng(11)
    inputs = tf.keras.Input((9, 10, 40), batch_size=1)
    outputs = []
    for filters, spec in CONV_SPECS.items():
        layer = tf.keras.layers.Conv2D(filters, **spec)
        outputs.append(layer(inputs))
        kh, kw = layer.kernel_size
        signs = rng.choice(np.array([-1.0, 1.0]), size=(kh, kw, 40, filters))
        magnitude = rng.uniform(0.2, 2.0, size=filters)
        layer.set_weights([(signs * magnitude).astype(np.float32),
                           rng.normal(0, 3, filters).astype(np.float32)])
    dense = tf.keras.layers.Dense(DENSE_UNITS)
    outputs.append(dense(tf.keras.layers.Flatten()(inputs)))
    signs = rng.choice(np.array([-1.0, 1.0]), size=(9 * 10 * 40, DENSE_UNITS))
    dense.set_weights([(signs * rng.uniform(0.2, 2.0, DENSE_UNITS)).astype(np.float32),
                       rng.normal(0, 3, DENSE_UNITS).astype(np.float32)])
    model = tf.keras.Model(inputs, outputs)

    def representative():
        for _ in range(16):
            yield [rng.choice(np.array([-1.0, 1.0], np.float32), size=(1, 9, 10, 40))]

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    return converter.convert()


def _run_tflite(model_content, x, resolver):
    import tensorflow as tf

    interpreter = tf.lite.Interpreter(
        model_content=model_content, experimental_op_resolver_type=resolver, num_threads=1
    )
    interpreter.allocate_tensors()
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], x)
    interpreter.invoke()
    outputs = {d["shape"][-1]: interpreter.get_tensor(d["index"]) for d in interpreter.get_output_details()}
    return interpreter, outputs


def _binary_op_arguments(interpreter, op):
    """Packed weights, transform rows and act range of one int8 CONV_2D / FULLY_CONNECTED."""
    data, weights_index, bias_index = op["inputs"][:3]
    in_q = _tensor(interpreter, data)["quantization_parameters"]
    w_detail = _tensor(interpreter, weights_index)
    out_detail = _tensor(interpreter, op["outputs"][0])
    weights = interpreter.get_tensor(weights_index).astype(np.int64)
    bias = interpreter.get_tensor(bias_index).astype(np.int64)
    cout = weights.shape[0]
    magnitude = np.abs(weights.reshape(cout, -1))
    assert np.all(magnitude == magnitude[:, :1]), "weights must be +-W per output channel"
    w_scales = np.broadcast_to(w_detail["quantization_parameters"]["scales"], (cout,))
    out_scale = float(out_detail["quantization_parameters"]["scales"][0])
    out_zero_point = int(out_detail["quantization_parameters"]["zero_points"][0])
    in_scale = float(in_q["scales"][0])
    rows = []
    for co in range(cout):
        multiplier, shift = _quantize_multiplier(in_scale * float(w_scales[co]) / out_scale)
        rows.append([magnitude[co, 0], bias[co], multiplier, shift])
    return packing.pack_filter(weights), np.array(rows, np.int32), out_zero_point


@pytest.mark.parametrize("resolver_name", ["BUILTIN_REF", "BUILTIN_WITHOUT_DEFAULT_DELEGATES"])
def test_int8_output_equals_tflite_builtin_ops(tflite_binary_model, resolver_name):
    """Kernel output bytes == TFLite's int8 CONV_2D / FULLY_CONNECTED on a binarized input."""
    import tensorflow as tf

    resolver = getattr(tf.lite.experimental.OpResolverType, resolver_name)
    rng = np.random.default_rng(12)
    probe = tf.lite.Interpreter(model_content=tflite_binary_model)
    zp_in = int(probe.get_input_details()[0]["quantization_parameters"]["zero_points"][0])
    checked = []
    # (P, N): the extremes the int8 input allows, a mid pair, and +1 at the zero point
    pairs = [(127 - zp_in, -128 - zp_in), (min(40, 127 - zp_in), max(-3, -128 - zp_in)), (0, -1)]
    for p, n in pairs:
        signs = rng.choice(np.array([-1, 1]), size=(1, 9, 10, 40))
        x = np.where(signs > 0, zp_in + p, zp_in + n).astype(np.int8)
        interpreter, outputs = _run_tflite(tflite_binary_model, x, resolver)
        for op in interpreter._get_ops_details():
            if op["op_name"] not in ("CONV_2D", "FULLY_CONNECTED"):
                continue
            packed, transform, out_zp = _binary_op_arguments(interpreter, op)
            cout = transform.shape[0]
            if op["op_name"] == "CONV_2D":
                spec = CONV_SPECS[cout]
                kh, kw = (spec["kernel_size"],) * 2 if isinstance(spec["kernel_size"], int) else spec["kernel_size"]
                sh, sw = (spec["strides"],) * 2 if isinstance(spec["strides"], int) else spec["strides"]
                options = BCONV2D.encode(
                    channels_in=40, filter_height=kh, filter_width=kw, stride_height=sh, stride_width=sw,
                    dilation_height_factor=spec["dilation_rate"], dilation_width_factor=spec["dilation_rate"],
                    padding=spec["padding"], input_pos=p, input_neg=n,
                    act_min=max(-128, out_zp) if spec["activation"] == "relu" else -128, act_max=127,
                )
                got = kernels.bconv2d(x, packed, transform, options, input_zero_point=zp_in,
                                      output_zero_point=out_zp)
            else:
                options = BFULLY_CONNECTED.encode(
                    channels_in=9 * 10 * 40, input_pos=p, input_neg=n, act_min=-128, act_max=127
                )
                got = kernels.bfully_connected(x.reshape(1, -1), packed, transform, options,
                                               input_zero_point=zp_in, output_zero_point=out_zp)
            expected = outputs[cout]
            assert got.tobytes() == expected.tobytes(), (op["op_name"], cout, p, n)
            assert len(np.unique(expected)) > 3
            checked.append(cout)
    assert sorted(set(checked)) == sorted(list(CONV_SPECS) + [DENSE_UNITS])


# ----------------------------------------------------------------------------- prepared ops


def test_prepared_op_runs_many_inputs_like_one_shot_calls():
    rng = np.random.default_rng(21)
    x0, _ = random_packed_input(rng, (2, 6, 7, 45))
    weights = rng.choice(np.array([-1, 1]), size=(19, 3, 3, 45))
    packed_filter = packing.pack_filter(weights)
    transform = random_int8_transform(rng, 19, 9 * 45, 100, -100)
    options = BCONV2D.encode(channels_in=45, filter_height=3, filter_width=3, stride_width=2,
                                      input_pos=100, input_neg=-100, act_min=-128, act_max=127)
    op = kernels.prepare_bconv2d(x0, packed_filter, transform, options, output_zero_point=2)
    assert op.input_shape == (2, 6, 7, 2) and op.output_shape == (2, 6, 4, 19)
    assert op.table_bytes > 0 and op.scratch_bytes >= x0.nbytes  # 45 channels: masked copy
    packed_filter[...] = 0  # the prepared op keeps its own copy
    for _ in range(3):
        x, signs = random_packed_input(rng, (2, 6, 7, 45))
        d, s = reference_sums(signs, weights, (1, 2), (1, 1), "same", 0)
        np.testing.assert_array_equal(op(x), reference_int8(d, s, transform, 100, -100, 2, -128, 127))
    with pytest.raises(ValueError, match=r"shape \(2, 6, 7, 2\) as prepared"):
        op(np.zeros((1, 6, 7, 2), np.int32))
    with pytest.raises(ValueError, match="as prepared"):
        op(np.zeros((2, 6, 7, 45), np.int8))
    fc = kernels.prepare_bfully_connected(
        np.zeros((1, 64), np.int8), packing.pack_filter(np.ones((5, 64))),
        np.tile(np.array([[1, 0]], np.int32), (5, 1)),
        BFULLY_CONNECTED.encode(channels_in=64), packed_output=True,
    )
    assert fc.output_shape == (1, 1) and fc.scratch_bytes >= 8  # int8 input packed
    got = fc(np.full((1, 64), -3, np.int8))  # all -1 against all +1 weights: D = -64 < 0
    assert got.view(np.uint32)[0, 0] == 0b11111
