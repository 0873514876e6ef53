"""The C op table through the host extension, and the ops and variants added with it.

``_tfqp_kernels.ops()`` describes every row; ``prepare`` / ``run`` drive any op through
its row (the life cycle of the TFLM and TFLite adapters) and must equal the op's own
functions. The new variants are checked against numpy references written from their
contracts (micro/include/tfqp/*.h):

- TFQP_BMAXPOOL2D with an ``or_mask``: OR of the window's bits where the mask is 1;
- ``int32_output`` of TFQP_BCONV2D / TFQP_BFULLY_CONNECTED: saturate(B + floor((M D +
  2^(s-1)) / 2^s)) of the exact sum D;
- TFQP_CONV2D_INT8 / TFQP_FULLY_CONNECTED_INT8: A = sum of (q - zp) w over an image
  padded with zp, then a packed bit (direction A < threshold) or the value;
- TFQP_BINARIZE: q < zp (int8) or v < 0 (int32), packed.
"""

import itertools

import tfq_plus  # noqa: F401  (selects Keras 2 before TensorFlow)

import numpy as np
import pytest
from flatbuffers import flexbuffers

from test_kernels_binary import (
    INT32_MAX,
    INT32_MIN,
    _window,
    random_int8_input,
    random_packed_input,
    reference_maxpool_bits,
    reference_sums,
)
from tfq_plus.converters import _tfqp_kernels as kernels
from tfq_plus.converters.ops import BCONV2D, BFULLY_CONNECTED, BMAXPOOL2D  # noqa: F401
from tfq_plus.converters import packing


def options(**values) -> bytes:
    """A custom-options flexbuffer map of integers."""
    return bytes(flexbuffers.Dumps({key: int(value) for key, value in values.items()}))


def with_options(encoded: bytes, **extra) -> bytes:
    return options(**{**flexbuffers.Loads(encoded), **extra})


def reference_values(acc, transform):
    """saturate_int32(B + floor((M * acc + 2^(s-1)) / 2^s)) in Python integers (// is
    the floor division), channel by channel on the last axis."""
    acc = np.asarray(acc, np.int64)
    rows = []
    for row in acc.reshape(-1, acc.shape[-1]):
        values = []
        for a, (m, s, b) in zip(row.tolist(), transform.tolist()):
            v = (m * a + ((1 << (s - 1)) if s > 0 else 0)) // (1 << s) + b
            values.append(min(max(v, INT32_MIN), INT32_MAX))
        rows.append(values)
    return np.array(rows, np.int32).reshape(acc.shape)


def random_value_transform(rng, cout):
    multiplier = rng.integers(-5000, 5001, size=cout)
    multiplier[::3] = rng.integers(INT32_MIN, INT32_MAX, size=len(multiplier[::3]),
                                   dtype=np.int64)
    shift = rng.integers(0, 41, size=cout)
    bias = rng.integers(-1000, 1001, size=cout)
    bias[1::4] = rng.integers(INT32_MIN, INT32_MAX, size=len(bias[1::4]), dtype=np.int64)
    return np.stack([multiplier, shift, bias], axis=1).astype(np.int32)


# ----------------------------------------------------------------------------- the table

EXPECTED_OPS = {
    "TFQP_BCONV2D": (3, 4, (1, 2), ("input", "filter", "transform", "residual")),
    "TFQP_BFULLY_CONNECTED": (3, 4, (1, 2), ("input", "weights", "transform", "residual")),
    "TFQP_BMAXPOOL2D": (1, 2, (1,), ("input", "or_mask")),
    "TFQP_BINARIZE": (1, 1, (), ("input",)),
    "TFQP_CONV2D_INT8": (3, 4, (1, 2), ("input", "weights", "transform", "residual")),
    "TFQP_FULLY_CONNECTED_INT8": (3, 4, (1, 2), ("input", "weights", "transform", "residual")),
    "TFQP_SHIFT_CONV2D": (4, 4, (1, 2, 3), ("input", "codes", "code_table", "transform")),
    "TFQP_SHIFT_DEPTHWISE_CONV2D": (4, 4, (1, 2, 3), ("input", "codes", "code_table", "transform")),
    "TFQP_SHIFT_FULLY_CONNECTED": (4, 5, (1, 2, 3, 4),
                                   ("input", "codes", "code_table", "transform", "code_lists")),
    "TFQP_UNPACK": (1, 1, (), ("input",)),
    "TFQP_UNPACK_CODES": (1, 1, (), ("input",)),
    "TFQP_MAX_POOL_CODES": (1, 1, (), ("input",)),
}


def test_ops_describe_every_row():
    ops = {op["name"]: op for op in kernels.ops()}
    assert set(ops) == set(EXPECTED_OPS)
    for name, (low, high, constants, roles) in EXPECTED_OPS.items():
        op = ops[name]
        assert (op["min_inputs"], op["max_inputs"], op["outputs"]) == (low, high, 1)
        assert op["constant_inputs"] == constants and op["input_roles"] == roles
    assert ops["TFQP_BCONV2D"]["option_keys"][-1] == "int32_output"
    assert ops["TFQP_CONV2D_INT8"]["option_keys"] == (
        "channels_in", "filter_height", "filter_width", "stride_height", "stride_width",
        "dilation_height_factor", "dilation_width_factor", "padding", "int32_output",
        "output_levels", "output_bits", "input_bits", "input_code_zero")
    assert ops["TFQP_BINARIZE"]["option_keys"] == ()
    # parse_options reads every op's keys through the table
    for op in ops.values():
        for key in op["option_keys"]:
            try:
                parsed = kernels.parse_options(op["name"], options(**{key: 1}))
            except ValueError as error:
                assert "required option missing" in str(error)
            else:
                assert parsed == {key: 1}
    with pytest.raises(ValueError, match="op must be 'TFQP_BCONV2D', .* or "
                                         "'TFQP_UNPACK_CODES', got 'TFQP_NONE'"):
        kernels.parse_options("TFQP_NONE", b"")


def test_generic_run_equals_the_ops_own_functions():
    rng = np.random.default_rng(40)
    x, _ = random_int8_input(rng, (2, 6, 7, 40), 3)
    filt = packing.pack_filter(rng.choice([-1, 1], (9, 3, 3, 40)))
    transform = np.stack([rng.choice([-1, 1], 9), rng.integers(-50, 50, 9)], 1).astype(np.int32)
    conv = BCONV2D.encode(channels_in=40, filter_height=3, filter_width=3)
    old = kernels.bconv2d(x, filt, transform, conv, input_zero_point=3, packed_output=True)
    new = kernels.run("TFQP_BCONV2D", [x, filt, transform], conv, output_type="int32",
                      input_zero_point=3)
    np.testing.assert_array_equal(old, new)
    prepared = kernels.prepare("TFQP_BCONV2D", (x, filt, transform), conv, output_type=np.int32,
                               input_zero_point=3)
    assert prepared.op == "TFQP_BCONV2D" and prepared.output_shape == old.shape
    np.testing.assert_array_equal(prepared(x), old)
    np.testing.assert_array_equal(prepared(input=x), old)
    pool = BMAXPOOL2D.encode(channels=64, filter_height=2, filter_width=2,
                                      stride_height=2, stride_width=2)
    packed, _ = random_packed_input(rng, (1, 4, 4, 64))
    np.testing.assert_array_equal(
        kernels.bmaxpool2d(packed, pool),
        kernels.run("TFQP_BMAXPOOL2D", [packed], pool, output_type="int32"))
    with pytest.raises(ValueError, match=r"TFQP_BCONV2D: wrong number of inputs "
                                         r"\(inputs = 2\) \[invalid argument\]"):
        kernels.run("TFQP_BCONV2D", [x, filt], conv, output_type="int32")
    with pytest.raises(ValueError, match="output_type must be int8 or int32"):
        kernels.run("TFQP_BCONV2D", [x, filt, transform], conv, output_type="float32")
    with pytest.raises(TypeError, match="non-constant inputs"):
        prepared(x, x)


# ----------------------------------------------------------------------------- or_mask


@pytest.mark.parametrize("channels", [1, 33, 70])
@pytest.mark.parametrize("kernel,stride,padding", [(2, 2, "valid"), (3, 2, "same"), (3, 1, "same")])
def test_bmaxpool2d_or_mask_matches_reference(channels, kernel, stride, padding):
    rng = np.random.default_rng(channels * 3 + kernel + stride)
    x, signs = random_packed_input(rng, (2, 7, 6, channels))  # garbage padding bits
    mask_bits = rng.random(channels) < 0.5
    mask = packing.pack_bits(mask_bits)
    encoded = BMAXPOOL2D.encode(channels=channels, filter_height=kernel,
                                         filter_width=kernel, stride_height=stride,
                                         stride_width=stride, padding=padding)
    got = kernels.run("TFQP_BMAXPOOL2D", [x, mask], encoded, output_type="int32")
    and_bits = reference_maxpool_bits(signs, (kernel, kernel), (stride, stride), padding)
    # mask bit 1: a max-pool of a decreasing function of the values, i.e. the sign of
    # their min: -1 iff any value of the window is -1 (the OR of the bits)
    or_bits = _min_is_negative(signs, kernel, stride, padding)
    expected = np.where(mask_bits, or_bits, and_bits)
    np.testing.assert_array_equal(packing.unpack_bits(got, channels), expected)
    tail = got.view(np.uint32)[..., -1] & np.uint32(~packing.last_word_mask(channels) & 0xFFFFFFFF)
    assert not tail.any()
    assert (and_bits != or_bits).any()  # the mask matters here


def _min_is_negative(signs, kernel, stride, padding):
    n, h, w, c = signs.shape
    oh, top, _ = _window(h, kernel, stride, 1, padding)
    ow, left, _ = _window(w, kernel, stride, 1, padding)
    out = np.empty((n, oh, ow, c), bool)
    for y, x in itertools.product(range(oh), range(ow)):
        y0, x0 = y * stride - top, x * stride - left
        window = signs[:, max(y0, 0): y0 + kernel, max(x0, 0): x0 + kernel, :]
        out[:, y, x, :] = window.min(axis=(1, 2)) < 0
    return out


def test_bmaxpool2d_or_mask_validation():
    x = np.zeros((1, 4, 4, 2), np.int32)
    encoded = BMAXPOOL2D.encode(channels=40, filter_height=2, filter_width=2,
                                         stride_height=2, stride_width=2)
    mask = np.array([0, 1 << 8], np.int32)  # channel 40 is padding
    with pytest.raises(ValueError, match=r"TFQP_BMAXPOOL2D: or_mask padding bits \(bits of "
                                         r"channels >= C\) must be 0 \(or_mask = 256\)"):
        kernels.run("TFQP_BMAXPOOL2D", [x, mask], encoded, output_type="int32")
    with pytest.raises(ValueError, match=r"or_mask must be \[ceil\(channels/32\)\]"):
        kernels.run("TFQP_BMAXPOOL2D", [x, np.zeros(3, np.int32)], encoded, output_type="int32")
    with pytest.raises(ValueError, match="wrong number of inputs"):
        kernels.run("TFQP_BMAXPOOL2D", [x, mask, mask], encoded, output_type="int32")
    prepared = kernels.prepare("TFQP_BMAXPOOL2D", [x, np.array([-1, 0], np.int32)], encoded,
                               output_type="int32")
    assert prepared.table_bytes == 8
    assert prepared(x).shape == (1, 2, 2, 2)


# ----------------------------------------------------------------------------- int32 values


@pytest.mark.parametrize("kernel,stride,dilation,padding,pad_value,input_kind", list(
    itertools.product([1, 3], [1, 2], [1, 2], ["same", "valid"], [0, 1], ["int8", "packed"]))[::3])
def test_bconv2d_int32_output_matches_reference(kernel, stride, dilation, padding, pad_value,
                                                input_kind):
    rng = np.random.default_rng(kernel * 100 + stride * 10 + dilation + pad_value)
    cin, cout = [1, 33, 64, 70][(kernel + stride) % 4], [1, 5, 32, 37][(dilation + pad_value) % 4]
    shape = (2, 8, 9, cin)
    if input_kind == "int8":
        x, signs = random_int8_input(rng, shape, 4)
    else:
        x, signs = random_packed_input(rng, shape)
    weights = rng.choice(np.array([-1, 1]), size=(cout, kernel, kernel, cin))
    d, _ = reference_sums(signs, weights, (stride, stride), (dilation, dilation), padding,
                          pad_value)
    transform = random_value_transform(rng, cout)
    encoded = with_options(BCONV2D.encode(
        channels_in=cin, filter_height=kernel, filter_width=kernel, stride_height=stride,
        stride_width=stride, dilation_height_factor=dilation, dilation_width_factor=dilation,
        padding=padding, pad_value=pad_value), int32_output=1)
    got = kernels.run("TFQP_BCONV2D", [x, packing.pack_filter(weights), transform], encoded,
                      output_type="int32", input_zero_point=4 if input_kind == "int8" else 0)
    assert got.shape == d.shape and got.dtype == np.int32
    np.testing.assert_array_equal(got, reference_values(d, transform))


@pytest.mark.parametrize("cin", [1, 32, 65, 300])
@pytest.mark.parametrize("input_kind", ["int8", "packed"])
def test_bfully_connected_int32_output_matches_reference(cin, input_kind):
    rng = np.random.default_rng(cin + len(input_kind))
    cout = 23
    if input_kind == "int8":
        x, signs = random_int8_input(rng, (3, cin), -2)
    else:
        x, signs = random_packed_input(rng, (3, cin))
    weights = rng.choice(np.array([-1, 1]), size=(cout, cin))
    d = signs.astype(np.int64) @ weights.T.astype(np.int64)
    transform = random_value_transform(rng, cout)
    encoded = options(channels_in=cin, int32_output=1)
    got = kernels.run("TFQP_BFULLY_CONNECTED", [x, packing.pack_filter(weights), transform],
                      encoded, output_type="int32",
                      input_zero_point=-2 if input_kind == "int8" else 0)
    np.testing.assert_array_equal(got, reference_values(d, transform))


def test_value_output_rounds_half_up_and_saturates():
    """D = Cin - 2 * popcount: a one-input FC gives D = +-1 exactly."""
    x = np.array([[0], [-1]], np.int8)  # +1, -1 (zero point 0)
    weights = packing.pack_filter(np.ones((6, 1)))
    transform = np.array([[3, 1, 0],          # 3 * +-1 / 2: 1.5 -> 2, -1.5 -> -1 (half up)
                          [5, 2, 0],          # +-5 / 4: 1.25 -> 1, -1.25 -> -1
                          [INT32_MAX, 0, INT32_MAX],  # saturates at INT32_MAX / 0
                          [INT32_MIN, 0, INT32_MIN],  # INT32_MIN + INT32_MIN, -(-2^31) - 2^31
                          [1, 40, 7],         # tiny: the bias
                          [-7, 1, 0]], np.int32)  # -3.5 -> -3, 3.5 -> 4
    got = kernels.run("TFQP_BFULLY_CONNECTED", [x, weights, transform],
                      options(channels_in=1, int32_output=1), output_type="int32")
    np.testing.assert_array_equal(got, [[2, 1, INT32_MAX, INT32_MIN, 7, -3],
                                        [-1, -1, 0, 0, 7, 4]])


def test_int32_output_validation():
    x = np.zeros((1, 32), np.int8)
    weights = np.zeros((2, 1), np.int32)
    encoded = options(channels_in=32, int32_output=1)
    good = np.array([[1, 0, 0], [1, 40, 0]], np.int32)
    assert kernels.run("TFQP_BFULLY_CONNECTED", [x, weights, good], encoded,
                       output_type="int32").shape == (1, 2)
    with pytest.raises(ValueError, match=r"transform shift must be in \[0, 40\] "
                                         r"\(transform\[:, 1\] = 41\)"):
        kernels.run("TFQP_BFULLY_CONNECTED", [x, weights, np.array([[1, 0, 0], [1, 41, 0]],
                                                                    np.int32)],
                    encoded, output_type="int32")
    with pytest.raises(ValueError, match=r"transform must be \[Cout, 3\] for int32 value output"):
        kernels.run("TFQP_BFULLY_CONNECTED", [x, weights, good[:, :2].copy()], encoded,
                    output_type="int32")
    with pytest.raises(ValueError, match="int32_output 1 needs an int32 output"):
        kernels.run("TFQP_BFULLY_CONNECTED", [x, weights, good], encoded, output_type="int8")
    with pytest.raises(ValueError, match=r"must be 0 or 1 \(int32_output = 2\)"):
        kernels.run("TFQP_BFULLY_CONNECTED", [x, weights, good],
                    options(channels_in=32, int32_output=2), output_type="int32")
    with pytest.raises(ValueError, match=r"must be 0 or 1 \(int32_output = -1\)"):
        kernels.run("TFQP_BCONV2D", [np.zeros((1, 2, 2, 1), np.int32),
                                     np.zeros((2, 1, 1, 1), np.int32), good],
                    with_options(BCONV2D.encode(channels_in=32, filter_height=1,
                                                         filter_width=1), int32_output=-1),
                    output_type="int32")


# ----------------------------------------------------------------------------- int8 ops


def reference_int8_conv(x, weights, zero_point, stride, dilation, padding):
    """A = sum of (q - zp) * w over the image padded with zp (padded taps add 0)."""
    n, h, w, _ = x.shape
    cout, kh, kw, _ = weights.shape
    oh, top, bottom = _window(h, kh, stride[0], dilation[0], padding)
    ow, left, right = _window(w, kw, stride[1], dilation[1], padding)
    q = np.pad(x.astype(np.int64) - zero_point, ((0, 0), (top, bottom), (left, right), (0, 0)))
    acc = np.zeros((n, oh, ow, cout), np.int64)
    for ky, kx in itertools.product(range(kh), range(kw)):
        rows = slice(ky * dilation[0], ky * dilation[0] + (oh - 1) * stride[0] + 1, stride[0])
        cols = slice(kx * dilation[1], kx * dilation[1] + (ow - 1) * stride[1] + 1, stride[1])
        acc += np.einsum("nyxc,oc->nyxo", q[:, rows, cols, :],
                         weights[:, ky, kx, :].astype(np.int64))
    return acc


def packed_transform(rng, cout, spread):
    transform = np.stack([rng.choice([-1, 1], cout), rng.integers(-spread, spread + 1, cout)],
                         axis=1).astype(np.int32)
    transform[0, 1] = INT32_MIN
    if cout > 1:
        transform[1, 1] = INT32_MAX
    return transform


@pytest.mark.parametrize("kernel,stride,dilation,padding,output_kind", list(itertools.product(
    [1, 3], [1, 2], [1, 2], ["same", "valid"], ["packed", "values"])))
def test_conv2d_int8_matches_reference(kernel, stride, dilation, padding, output_kind):
    rng = np.random.default_rng(kernel * 1000 + stride * 100 + dilation * 10 + len(padding))
    cin, cout = [1, 7, 32][(kernel + dilation) % 3], [1, 33, 40][(stride + len(padding)) % 3]
    zero_point = int(rng.integers(-128, 128))
    x = rng.integers(-128, 128, size=(2, 7, 8, cin)).astype(np.int8)
    weights = rng.integers(-127, 128, size=(cout, kernel, kernel, cin)).astype(np.int8)
    acc = reference_int8_conv(x, weights, zero_point, (stride, stride), (dilation, dilation),
                              padding)
    values = output_kind == "values"
    transform = (random_value_transform(rng, cout) if values
                 else packed_transform(rng, cout, int(np.sqrt(kernel * kernel * cin) * 3000)))
    encoded = options(channels_in=cin, filter_height=kernel, filter_width=kernel,
                      stride_height=stride, stride_width=stride,
                      dilation_height_factor=dilation, dilation_width_factor=dilation,
                      padding=packing.PADDING_SAME if padding == "same" else packing.PADDING_VALID,
                      int32_output=int(values))
    got = kernels.run("TFQP_CONV2D_INT8", [x, weights, transform], encoded, output_type="int32",
                      input_zero_point=zero_point)
    if values:
        np.testing.assert_array_equal(got, reference_values(acc, transform))
    else:
        bits = transform[:, 0].astype(np.int64) * acc < transform[:, 1].astype(np.int64)
        np.testing.assert_array_equal(packing.unpack_bits(got, cout), bits)
        if cout > 2:
            assert bits.any() and not bits.all()


@pytest.mark.parametrize("cin", [1, 40, 1024])
@pytest.mark.parametrize("output_kind", ["packed", "values"])
def test_fully_connected_int8_matches_reference(cin, output_kind):
    rng = np.random.default_rng(cin + len(output_kind))
    cout, zero_point = 37, int(rng.integers(-128, 128))
    x = rng.integers(-128, 128, size=(3, cin)).astype(np.int8)
    weights = rng.integers(-127, 128, size=(cout, cin)).astype(np.int8)
    acc = (x.astype(np.int64) - zero_point) @ weights.T.astype(np.int64)
    values = output_kind == "values"
    transform = (random_value_transform(rng, cout) if values
                 else packed_transform(rng, cout, int(np.sqrt(cin) * 3000)))
    got = kernels.run("TFQP_FULLY_CONNECTED_INT8", [x, weights, transform],
                      options(channels_in=cin, int32_output=int(values)), output_type="int32",
                      input_zero_point=zero_point)
    if values:
        np.testing.assert_array_equal(got, reference_values(acc, transform))
    else:
        bits = transform[:, 0].astype(np.int64) * acc < transform[:, 1].astype(np.int64)
        np.testing.assert_array_equal(packing.unpack_bits(got, cout), bits)


def test_int8_ops_extreme_accumulators_are_exact():
    """K = 66311 taps of (127 - (-128)) * 127: |A| just below 2^31."""
    cin = 66311
    x = np.full((1, cin), 127, np.int8)
    weights = np.stack([np.full(cin, 127), np.full(cin, -127)]).astype(np.int8)
    transform = np.array([[1, 0, 0], [1, 0, 0]], np.int32)
    got = kernels.run("TFQP_FULLY_CONNECTED_INT8", [x, weights, transform],
                      options(channels_in=cin, int32_output=1), output_type="int32",
                      input_zero_point=-128)
    assert got.tolist() == [[cin * 255 * 127, -cin * 255 * 127]]
    assert cin * 255 * 127 < 2**31 <= (cin + 1) * 255 * 127


def test_int8_ops_validation():
    x = np.zeros((1, 5, 5, 4), np.int8)
    weights = np.ones((3, 3, 3, 4), np.int8)
    transform = np.tile(np.array([[1, 0]], np.int32), (3, 1))
    encoded = options(channels_in=4, filter_height=3, filter_width=3, stride_height=1,
                      stride_width=1, dilation_height_factor=1, dilation_width_factor=1,
                      padding=0)
    assert kernels.run("TFQP_CONV2D_INT8", [x, weights, transform], encoded,
                       output_type="int32").shape == (1, 5, 5, 1)
    bad = weights.copy()
    bad[2, 0, 0, 3] = -128
    with pytest.raises(ValueError, match=r"TFQP_CONV2D_INT8: weights must be in \[-127, 127\] "
                                         r"\(value: the flat index\) \(weights = 75\)"):
        kernels.run("TFQP_CONV2D_INT8", [x, bad, transform], encoded, output_type="int32")
    with pytest.raises(ValueError, match="transform direction must be"):
        kernels.run("TFQP_CONV2D_INT8", [x, weights, transform * 0], encoded, output_type="int32")
    with pytest.raises(ValueError, match="output must be int32"):
        kernels.run("TFQP_CONV2D_INT8", [x, weights, transform], encoded, output_type="int8")
    with pytest.raises(ValueError, match=r"must be <= 66311 .*\(channels_in = 66312\)"):
        big = options(channels_in=7368, filter_height=3, filter_width=3, stride_height=1,
                      stride_width=1, dilation_height_factor=1, dilation_width_factor=1,
                      padding=0)
        kernels.run("TFQP_CONV2D_INT8", [np.zeros((1, 3, 3, 7368), np.int8),
                                         np.zeros((1, 3, 3, 7368), np.int8),
                                         np.array([[1, 0]], np.int32)], big, output_type="int32")
    with pytest.raises(ValueError, match="required option missing"):
        kernels.run("TFQP_CONV2D_INT8", [x, weights, transform], options(channels_in=4),
                    output_type="int32")
    with pytest.raises(ValueError, match="unknown option key"):
        kernels.run("TFQP_CONV2D_INT8", [x, weights, transform],
                    with_options(encoded, pad_value=1), output_type="int32")
    with pytest.raises(ValueError, match="weights dim 3 must equal channels_in"):
        kernels.run("TFQP_CONV2D_INT8", [x, weights[..., :3].copy(), transform], encoded,
                    output_type="int32")
    with pytest.raises(ValueError, match=r"must be in \[1, 66311\]"):
        kernels.run("TFQP_FULLY_CONNECTED_INT8",
                    [np.zeros((1, 66312), np.int8), np.zeros((1, 66312), np.int8),
                     np.array([[1, 0]], np.int32)], options(channels_in=66312),
                    output_type="int32")


# ----------------------------------------------------------------------------- binarize


@pytest.mark.parametrize("shape", [(5,), (3, 33), (2, 3, 4, 70), (1, 2, 1, 2, 1, 64)])
def test_binarize_matches_reference(shape):
    rng = np.random.default_rng(len(shape))
    q = rng.integers(-128, 128, size=shape).astype(np.int8)
    q.reshape(-1)[::5] = 7
    got = kernels.run("TFQP_BINARIZE", [q], b"", output_type="int32", input_zero_point=7)
    np.testing.assert_array_equal(got, packing.pack_bits(q < 7))
    np.testing.assert_array_equal(got, kernels.pack(q, zero_point=7))
    v = rng.integers(INT32_MIN, INT32_MAX, size=shape, dtype=np.int64).astype(np.int32)
    v.reshape(-1)[::5] = 0
    v.reshape(-1)[1::7] = -1
    got = kernels.run("TFQP_BINARIZE", [v], options(), output_type="int32")
    np.testing.assert_array_equal(got, packing.pack_bits(v < 0))


def test_binarize_validation():
    x = np.zeros((2, 40), np.int8)
    with pytest.raises(ValueError, match="TFQP_BINARIZE: unknown option key"):
        kernels.run("TFQP_BINARIZE", [x], options(channels=40), output_type="int32")
    with pytest.raises(ValueError, match="TFQP_BINARIZE: tensor must be int32"):
        kernels.run("TFQP_BINARIZE", [x], b"", output_type="int8")
    with pytest.raises(ValueError, match="wrong number of inputs"):
        kernels.run("TFQP_BINARIZE", [x, x], b"", output_type="int32")
    assert kernels.parse_options("TFQP_BINARIZE", b"") == {}
    prepared = kernels.prepare("TFQP_BINARIZE", [x], b"", output_type="int32",
                               input_zero_point=-3)
    assert prepared.output_shape == (2, 2) and prepared.table_bytes == 0


# --- int16 weights, residual inputs, unpack: the C kernels against tfqp_numpy ---------


def test_int8_ops_with_int16_weights_and_a_residual_equal_numpy():
    import tfqp_numpy
    from tfq_plus.converters.ops import int8_layers

    rng = np.random.default_rng(41)
    for case in range(12):
        conv = case % 2 == 0
        cin, cout = int(rng.integers(1, 20)), int(rng.integers(1, 40))
        zp = int(rng.integers(-128, 128))
        if conv:
            x = rng.integers(-128, 128, (2, 7, 6, cin)).astype(np.int8)
            w = rng.integers(-3000, 3001, (cout, 3, 2, cin)).astype(np.int16)
            o = dict(channels_in=cin, filter_height=3, filter_width=2, stride_height=1 + case % 3,
                     stride_width=1, dilation_height_factor=1, dilation_width_factor=1 + case % 2,
                     padding=case % 4 // 2, int32_output=1)
            spec = int8_layers.CONV2D_INT8
        else:
            x = rng.integers(-128, 128, (3, cin)).astype(np.int8)
            w = rng.integers(-30000, 30001, (cout, cin)).astype(np.int16)
            o = dict(channels_in=cin, int32_output=1)
            spec = int8_layers.FULLY_CONNECTED_INT8
        transform = np.stack([rng.integers(-(2**20), 2**20, cout), rng.integers(0, 30, cout),
                              rng.integers(-1000, 1000, cout)], 1).astype(np.int32)
        reference = tfqp_numpy.conv2d_int8 if conv else tfqp_numpy.fully_connected_int8
        expected_plain = reference(x, w, transform, o, input_zero_point=zp, output_kind="int32")
        residual = rng.integers(-(2**31), 2**31, expected_plain.shape, dtype=np.int64).astype(np.int32)
        expected = reference(x, w, transform, o, input_zero_point=zp, output_kind="int32", residual=residual)
        options = spec.encode(**o)
        got = kernels.run(spec.name, [x, w, transform, residual], options, output_type="int32",
                          input_zero_point=zp)
        np.testing.assert_array_equal(got, expected)
        plain = kernels.run(spec.name, [x, w, transform], options, output_type="int32", input_zero_point=zp)
        np.testing.assert_array_equal(plain, expected_plain)


def test_binary_ops_with_a_residual_equal_numpy():
    import tfqp_numpy
    from tfq_plus.converters.ops import binary

    rng = np.random.default_rng(42)
    x = packing.pack_bits(rng.random((2, 5, 5, 40)) < 0.5)
    filt = packing.pack_filter(rng.choice([-1, 1], (9, 3, 3, 40)))
    transform = np.stack([rng.integers(-(2**20), 2**20, 9), rng.integers(0, 20, 9),
                          rng.integers(-100, 100, 9)], 1).astype(np.int32)
    o = dict(channels_in=40, filter_height=3, filter_width=3, stride_height=1, stride_width=1,
             dilation_height_factor=1, dilation_width_factor=1, padding=0, pad_value=1, int32_output=1)
    residual = rng.integers(-(2**31), 2**31, (2, 5, 5, 9), dtype=np.int64).astype(np.int32)
    expected = tfqp_numpy.bconv2d(x, filt, transform, o, output_kind="int32", residual=residual)
    got = kernels.run("TFQP_BCONV2D", [x, filt, transform, residual], binary.BCONV2D.encode(**o),
                      output_type="int32")
    np.testing.assert_array_equal(got, expected)
    with pytest.raises(ValueError, match="residual input needs the int32 value output"):
        o["int32_output"] = 0
        packed_transform = np.stack([np.ones(9), np.zeros(9)], 1).astype(np.int32)
        kernels.run("TFQP_BCONV2D", [x, filt, packed_transform, residual], binary.BCONV2D.encode(**o),
                    output_type="int32")


def test_unpack_equals_numpy_and_rejects_bad_options():
    import tfqp_numpy
    from tfq_plus.converters.ops import signs

    rng = np.random.default_rng(43)
    words = rng.integers(-(2**31), 2**31, (3, 4, 2), dtype=np.int64).astype(np.int32)
    o = dict(channels=45, positive=101, negative=-7)
    got = kernels.run("TFQP_UNPACK", [words], signs.UNPACK.encode(**o), output_type="int8")
    np.testing.assert_array_equal(got, tfqp_numpy.unpack(words, o))
    with pytest.raises(ValueError, match=r"packed input depth must equal \(channels/group\) \* ceil\(group/32\)"):
        kernels.run("TFQP_UNPACK", [words], signs.UNPACK.encode(channels=80, positive=1, negative=-1),
                    output_type="int8")


def test_python_registry_mirrors_the_c_op_table():
    """One registry per language, the same ops: names, arity, constant inputs, input
    roles and option keys of every OpSpec equal the C row's."""
    from tfq_plus.converters.ops import REGISTRY

    rows = {op["name"]: op for op in kernels.ops()}
    assert set(REGISTRY) == set(rows)
    for name, spec in REGISTRY.items():
        row = rows[name]
        assert tuple(spec.inputs) == tuple(row["input_roles"]), name
        assert (len(spec.inputs) - spec.optional_inputs, len(spec.inputs)) == (row["min_inputs"], row["max_inputs"])
        assert tuple(spec.constant_inputs) == tuple(row["constant_inputs"]), name
        assert tuple(o.key for o in spec.options) == tuple(row["option_keys"]), name
