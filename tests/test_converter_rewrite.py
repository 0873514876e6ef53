"""The rewrite against an independent numpy model of the binary ops' contract.

The numpy functions below are written from the contract (notes/binary_ops.md:
D and S over valid taps, acc = W((P+N)S + (P-N)D)/2 + bias, TFLite's
MultiplyByQuantizedMultiplier, bit = direction * D < threshold) and from TFLite's
documented geometry, not by calling the code under test. Every TFQP op of the deploy
models is evaluated on the reference model's own tensors; int8 outputs must equal the
reference tensors byte for byte, packed outputs the reference tensors' signs q < zp
bit for bit, and the host C kernels must equal the numpy model. The packed thresholds
are checked against the numpy requantization for every reachable D, and a BNN trained
on real data must give the reference's output bytes when its deploy model runs end
to end.
"""

import larq as lq
import numpy as np
import pytest
import tensorflow as tf
from flatbuffers import flexbuffers
from tensorflow.lite.python import schema_py_generated as fb

from test_converter_models import BINARY, converted, samples

from tfq_plus import converters
from tfq_plus.converters import _tfqp_kernels
from tfq_plus.converters.host_interpreter import HostInterpreter
from tfq_plus.converters.rewrite import (
    INT32_MAX,
    INT32_MIN,
    comparison_is_exact,
    multiply_by_quantized_multiplier,
    quantize_multiplier,
    rewrite,
    sign_threshold,
)

# --- numpy model of the contract ----------------------------------------------------


def unpack_negative(words: np.ndarray, channels: int) -> np.ndarray:
    """bit c%32 of word c//32 (LSB first); 1 = -1."""
    words = words.astype(np.int64) & 0xFFFFFFFF
    bits = (words[..., :, None] >> np.arange(32)) & 1
    return bits.reshape(words.shape[:-1] + (-1,))[..., :channels].astype(bool)


def tf_output_size(size, kernel, stride, dilation, same):
    effective = (kernel - 1) * dilation + 1
    if same:
        out = -(-size // stride)
        total = max((out - 1) * stride + effective - size, 0)
        return out, total // 2
    return (size - effective) // stride + 1, 0


def sums_dc(signs_in, negative_filter, stride, dilation, same, pad_value):
    """D = sum s*a and S = sum s over the valid taps, per output (N, OH, OW, Cout)."""
    n, h, w, _ = signs_in.shape
    cout, kh, kw, _ = negative_filter.shape
    weights = np.where(negative_filter, -1, 1).astype(np.int64)
    oh, top = tf_output_size(h, kh, stride[0], dilation[0], same)
    ow, left = tf_output_size(w, kw, stride[1], dilation[1], same)
    d = np.zeros((n, oh, ow, cout), np.int64)
    s = np.zeros((n, oh, ow, cout), np.int64)
    for ky in range(kh):
        for kx in range(kw):
            rows = np.arange(oh) * stride[0] - top + ky * dilation[0]
            cols = np.arange(ow) * stride[1] - left + kx * dilation[1]
            inside = ((rows >= 0) & (rows < h))[:, None] & ((cols >= 0) & (cols < w))[None, :]
            values = signs_in[:, np.clip(rows, 0, h - 1)][:, :, np.clip(cols, 0, w - 1)].astype(np.int64)
            if pad_value == 1:
                values = np.where(inside[None, :, :, None], values, 1)
                valid = np.ones_like(inside)
            else:
                values = np.where(inside[None, :, :, None], values, 0)
                valid = inside
            d += values @ weights[:, ky, kx, :].T
            s += valid[None, :, :, None] * weights[:, ky, kx, :].sum(axis=1)
    return d, s


def srdhm(a, b):
    a = np.asarray(a, np.int64)
    product = a * np.int64(b) if np.ndim(b) == 0 else a * np.asarray(b, np.int64)
    nudge = np.where(product >= 0, 1 << 30, 1 - (1 << 30))
    total = product + nudge
    return np.sign(total) * (np.abs(total) >> 31)


def rounding_shift(x, exponent):
    exponent = np.asarray(exponent, np.int64)
    mask = (np.int64(1) << exponent) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (x < 0)
    return (x >> exponent) + (remainder > threshold)


def mbqm(x, multiplier, shift):
    """TFLite's MultiplyByQuantizedMultiplier (double rounding), vectorized."""
    left = np.maximum(shift, 0)
    right = np.maximum(-shift, 0)
    shifted = (np.asarray(x, np.int64) << left).astype(np.int32).astype(np.int64)
    return rounding_shift(srdhm(shifted, multiplier), right)


def int8_output(d, s, transform, options, zero_point):
    w, bias, multiplier, shift = (transform[:, i].astype(np.int64) for i in range(4))
    p, n = options["input_pos"], options["input_neg"]
    acc = (w * ((p + n) * s + (p - n) * d)) // 2 + bias
    out = zero_point + mbqm(acc, multiplier, shift)
    return np.clip(out, options["act_min"], options["act_max"]).astype(np.int8)


def packed_output(d, transform):
    return transform[:, 0].astype(np.int64) * d < transform[:, 1]


def emulate(op_name, activation, input_zero_point, weights, transform, options, output_zero_point, packed):
    """One TFQP op on numpy arrays; packed results as booleans (True = -1)."""
    if op_name == "TFQP_BMAXPOOL2D":
        negative = unpack_negative(activation, options["channels"])
        n, h, w, c = negative.shape
        same = options["padding"] == 0
        oh, top = tf_output_size(h, options["filter_height"], options["stride_height"], 1, same)
        ow, left = tf_output_size(w, options["filter_width"], options["stride_width"], 1, same)
        out = np.ones((n, oh, ow, c), bool)
        for y in range(oh):
            for x in range(ow):
                r0, c0 = y * options["stride_height"] - top, x * options["stride_width"] - left
                window = negative[:, max(r0, 0):r0 + options["filter_height"], max(c0, 0):c0 + options["filter_width"]]
                out[:, y, x] = window.all(axis=(1, 2))
        return out
    channels = options["channels_in"]
    if activation.dtype == np.int8:
        negative_in = activation < input_zero_point
    else:
        negative_in = unpack_negative(activation, channels)
    signs = np.where(negative_in, -1, 1)
    negative_filter = unpack_negative(weights, channels)
    if op_name == "TFQP_BFULLY_CONNECTED":
        signs = signs[:, None, None, :]
        negative_filter = negative_filter[:, None, None, :]
        geometry = dict(stride=(1, 1), dilation=(1, 1), same=False, pad_value=0)
    else:
        geometry = dict(
            stride=(options["stride_height"], options["stride_width"]),
            dilation=(options["dilation_height_factor"], options["dilation_width_factor"]),
            same=options["padding"] == 0, pad_value=options["pad_value"],
        )
    d, s = sums_dc(signs, negative_filter, **geometry)
    if op_name == "TFQP_BFULLY_CONNECTED":
        d, s = d[:, 0, 0], s[:, 0, 0]
    if packed:
        return packed_output(d, transform)
    return int8_output(d, s, transform, options, output_zero_point)


# --- TFLite arithmetic, from hand-computed values ---------------------------------------


def test_quantize_multiplier_matches_hand_computed_values():
    assert quantize_multiplier(0.5) == (1 << 30, 0)
    assert quantize_multiplier(0.75) == (1610612736, 0)
    # 1/3 = 0.6667 * 2^-1; round(2^31 * 2/3) = 1431655765
    assert quantize_multiplier(1.0 / 3.0) == (1431655765, -1)
    assert quantize_multiplier(3.0) == (3 << 29, 2)
    assert quantize_multiplier(0.0) == (0, 0)
    assert quantize_multiplier(2.0**-40) == (0, 0)  # below 2^-31: flushed to zero


def test_multiply_by_quantized_multiplier_matches_gemmlowp_by_hand():
    # SaturatingRoundingDoublingHighMul(a, b) = (a*b + nudge) / 2^31 truncated toward
    # zero, nudge = 2^30 (a*b >= 0) or 1 - 2^30: ties go toward +infinity.
    assert multiply_by_quantized_multiplier(100, 1 << 30, 0) == 50
    assert multiply_by_quantized_multiplier(3, 1 << 30, 0) == 2  # 1.5 -> 2
    assert multiply_by_quantized_multiplier(-3, 1 << 30, 0) == -1  # -1.5 -> -1
    # Double rounding: 5 * 0.5 = 2.5 -> 3, then RoundingDivideByPOT(3, 1) = 1.5 -> 2
    # (5 * 0.25 = 1.25 would round to 1 in one step).
    assert multiply_by_quantized_multiplier(5, 1 << 30, -1) == 2
    # -5 * 0.5 = -2.5 -> -2, then RoundingDivideByPOT(-2, 1) = -1 exactly.
    assert multiply_by_quantized_multiplier(-5, 1 << 30, -1) == -1
    # RoundingDivideByPOT rounds halves away from zero: -3 * 0.5 = -1.5 -> -1 (first
    # step), so use an exact first step: -6 * 0.5 = -3, -3 / 2 = -1.5 -> -2.
    assert multiply_by_quantized_multiplier(-6, 1 << 30, -1) == -2
    assert multiply_by_quantized_multiplier(7, 1 << 30, 2) == 14  # 7 * 4 * 0.5


@pytest.mark.parametrize("scale, exact", [(1 / 256, True), (1 / 512, True), (0.0019, False), (0.0428, True), (0.0005, False)])
def test_comparison_exactness_is_256_times_scale_at_least_one_half(scale, exact):
    # (q - zp) = -1 becomes round(-256 * scale): negative iff 256 * scale >= 0.5
    assert comparison_is_exact(scale) is exact


# --- the deploy models ------------------------------------------------------------------


@pytest.fixture(scope="module")
def mixed():
    return converted("mixed")


@pytest.fixture(scope="module")
def pool_bn():
    return converted("pool_bn")


def reference_tensors(reference: bytes, sample: np.ndarray):
    interpreter = tf.lite.Interpreter(
        model_content=reference, experimental_preserve_all_tensors=True,
        experimental_op_resolver_type=tf.lite.experimental.OpResolverType.BUILTIN_REF,
    )
    interpreter.allocate_tensors()
    detail = interpreter.get_input_details()[0]
    scale, zero_point = detail["quantization"]
    q = np.clip(np.round(sample / scale) + zero_point, -128, 127).astype(np.int8)
    interpreter.set_tensor(detail["index"], q[None])
    interpreter.invoke()
    return {d["name"]: (interpreter.get_tensor(d["index"]), int(d["quantization"][1]))
            for d in interpreter.get_tensor_details()}


def tfqp_ops(deploy: bytes):
    model = fb.ModelT.InitFromObj(fb.Model.GetRootAsModel(bytearray(deploy), 0))
    graph = model.subgraphs[0]
    for index, op in enumerate(graph.operators):
        code = model.operatorCodes[op.opcodeIndex]
        if code.customCode is None:
            continue
        tensors = [graph.tensors[t] for t in op.inputs]
        output = graph.tensors[op.outputs[0]]
        constants = [None if t.buffer == 0 or model.buffers[t.buffer].data is None
                     else np.frombuffer(bytes(model.buffers[t.buffer].data), np.int32).reshape(t.shape)
                     for t in tensors]
        raw = bytes(op.customOptions)
        yield index, code.customCode.decode(), tensors, constants, output, (flexbuffers.Loads(raw), raw)


def value_of(tensors, tensor):
    """The reference's value of a deploy tensor (names: rewrite's documented convention)."""
    name = tensor.name.decode()
    for suffix in ("/tfqp_packed", "/tfqp_reshaped"):
        if name.endswith(suffix):
            values, zero_point = tensors[name[: -len(suffix)]]
            if suffix == "/tfqp_reshaped":
                return values.reshape(tensor.shape), zero_point
            return values, zero_point
    return tensors[name]


def pack_negative(negative):
    channels = negative.shape[-1]
    padded = np.zeros(negative.shape[:-1] + (-(-channels // 32) * 32,), np.int64)
    padded[..., :channels] = negative
    words = (padded.reshape(negative.shape[:-1] + (-1, 32)) << np.arange(32)).sum(-1)
    return words.astype(np.uint32).view(np.int32)


@pytest.mark.parametrize("which", ["mixed", "pool_bn"])
def test_tfqp_ops_match_the_contract_and_the_reference(which, request):
    converted = request.getfixturevalue(which)
    checked = {"int8": 0, "packed": 0, "pool": 0}
    for sample in samples(converted.model, 3, seed=5):
        tensors = reference_tensors(converted.reference, sample)
        for _, name, inputs, constants, output, (options, raw) in tfqp_ops(converted.deploy):
            values, zero_point = value_of(tensors, inputs[0])
            if inputs[0].type == fb.TensorType.INT32:
                activation = pack_negative(values < zero_point)
            else:
                activation = np.ascontiguousarray(values)
            packed = output.type == fb.TensorType.INT32
            expected_ref, out_zp = value_of(tensors, output)
            emulated = emulate(name, activation, zero_point, constants[1] if len(constants) > 1 else None,
                               constants[2] if len(constants) > 2 else None, options, out_zp, packed)
            if name == "TFQP_BMAXPOOL2D":
                kernel = _tfqp_kernels.bmaxpool2d(activation, raw)
                np.testing.assert_array_equal(unpack_negative(kernel, options["channels"]), emulated)
                # max of int8 < zp  <=>  every input < zp: exact with the reference
                np.testing.assert_array_equal(emulated, (expected_ref < out_zp).reshape(emulated.shape))
                checked["pool"] += 1
                continue
            run = _tfqp_kernels.bconv2d if name == "TFQP_BCONV2D" else _tfqp_kernels.bfully_connected
            kernel = run(activation, np.ascontiguousarray(constants[1]), np.ascontiguousarray(constants[2]),
                         raw, input_zero_point=zero_point,
                         output_zero_point=out_zp, packed_output=packed)
            if packed:
                np.testing.assert_array_equal(unpack_negative(kernel, emulated.shape[-1]), emulated)
                # what the reference's binarize ops compare: int8 output q < zp
                np.testing.assert_array_equal(emulated, (expected_ref < out_zp).reshape(emulated.shape))
                checked["packed"] += 1
            else:
                np.testing.assert_array_equal(kernel, emulated)
                np.testing.assert_array_equal(emulated, expected_ref.reshape(emulated.shape))
                checked["int8"] += 1
    if which == "mixed":
        assert checked["int8"] and checked["packed"] and checked["pool"], checked
    else:
        assert checked["packed"] and checked["pool"], checked


# --- packed thresholds against TFLite's requantization -----------------------------------


def requantized_negative(d, slope, bias, multiplier, shift, zero_point, act_min, act_max):
    """The reference's bit for accumulator slope * D + bias: TFLite's int8 output
    clamp(zp + MultiplyByQuantizedMultiplier(acc), act_min, act_max), then q < zp."""
    q = zero_point + mbqm(slope * np.asarray(d, np.int64) + bias, multiplier, shift)
    return np.clip(q, act_min, act_max) < zero_point


def int32_wraps(slope, bias, shift, taps):
    """Whether acc or acc * 2^left leaves int32 for some |D| <= taps (affine: the ends)."""
    ends = [slope * d + bias for d in (-taps, taps)]
    return any(not -(2**31) <= v * 2 ** max(shift, 0) < 2**31 or not -(2**31) <= v < 2**31 for v in ends)


EDGE_CASES = [
    # slope, bias, multiplier, shift, zero_point, act_min, act_max, taps
    (127 * 5, 300, 0, 0, 3, -128, 127, 99),  # multiplier 0: q = zp, never negative
    (0, -(10**6), 1 << 30, -8, 3, -128, 127, 99),  # slope 0: constant, always negative
    (127, -50, 1 << 30, -6, -128, -128, 127, 500),  # zp = -128: q < zp impossible
    (127, -5000, 1 << 30, -6, -20, -20, 127, 500),  # ReLU: act_min = zp, never negative
    (127, 5000, 1 << 30, -6, 20, -128, 10, 500),  # act_max < zp: always negative
    (127, 1, 1 << 30, -8, 0, -128, 127, 700),  # acc in (-256, 0) rounds to q = zp
    (-127, 1, 1 << 30, -8, 0, -128, 127, 700),  # negative slope: direction -1
    (127, 1, -(1 << 30), -8, 0, -128, 127, 700),  # negative multiplier
    (-127, 1, -(1 << 30), -8, 0, -128, 127, 700),  # both negative: increasing again
    (3, -7, 1610612736, 2, 5, -128, 127, 1000),  # shift > 0 without wrap
    (1 << 20, 0, 1 << 30, -20, 0, -128, 127, 1 << 12),  # acc overflows int32: None
    (1 << 10, 0, 1 << 30, 12, 0, -128, 127, 1 << 12),  # acc * 2^12 wraps: None
    (127, -127 * 600, 1 << 30, -10, 0, -128, 127, 600),  # crossing at D = +taps
    (127, 127 * 600 - 1, 1 << 30, -10, 0, -128, 127, 600),  # crossing at D = -taps
]


def random_cases(count, seed):
    """Multipliers as QuantizeMultiplier makes them (and 0, negative), shifts mostly
    right, zero points anywhere, ReLU-like and narrowed clamps, biases that put the
    sign change inside the reachable range, and some that make int32 wrap."""
    rng = np.random.default_rng(seed)
    for _ in range(count):
        taps = int(rng.integers(1, 3000))
        slope = int(rng.integers(0, 65)) * int(rng.choice([-1, 1])) * int(rng.integers(1, 128))
        kind = rng.random()
        multiplier = int(rng.integers(1 << 30, 1 << 31))
        if kind < 0.05:
            multiplier = 0
        elif kind < 0.15:
            multiplier = -multiplier + 1  # never INT32_MIN (gemmlowp's saturation case)
        shift = int(rng.integers(-20, 1)) if rng.random() < 0.85 else int(rng.integers(1, 6))
        zero_point = int(rng.integers(-128, 128))
        act_min, act_max = -128, 127
        clamp = rng.random()
        if clamp < 0.1:
            act_min = zero_point
        elif clamp < 0.2:
            act_min, act_max = sorted(int(v) for v in rng.integers(-128, 128, 2))
        crossing = int(rng.integers(-taps, taps + 1))
        bias = -slope * crossing + int(rng.integers(-(2**12), 2**12))
        if rng.random() < 0.05:  # one end of the range leaves int32 (unless slope is 0)
            bias = int(rng.choice([-1, 1])) * (2**31 - 1 - abs(slope) * taps // 2)
        yield slope, bias, multiplier, shift, zero_point, act_min, act_max, taps


def test_sign_threshold_is_tflite_requantization_then_sign_for_every_reachable_d():
    """direction * D < threshold == (q < zp) for every D in [-taps, taps], q from the
    numpy model of TFLite's requantization above; None exactly where int32 wraps."""
    counts = {"step": 0, "constant": 0, "wraps": 0, "float_sign_differs": 0}
    for case in EDGE_CASES + list(random_cases(400, seed=11)):
        slope, bias, multiplier, shift, zero_point, act_min, act_max, taps = case
        got = sign_threshold(*case)
        if int32_wraps(slope, bias, shift, taps):
            assert got is None, case
            counts["wraps"] += 1
            continue
        assert got is not None, case
        direction, threshold = got
        assert direction in (1, -1) and INT32_MIN <= threshold <= INT32_MAX, (case, got)
        d = np.arange(-taps, taps + 1, dtype=np.int64)
        expected = requantized_negative(d, slope, bias, multiplier, shift, zero_point, act_min, act_max)
        bits = direction * d < threshold
        mismatch = np.flatnonzero(bits != expected)
        assert mismatch.size == 0, (case, got, d[mismatch[:5]])
        if expected.all() or not expected.any():
            assert got in ((1, INT32_MAX), (1, INT32_MIN)), (case, got)  # constant bits
            counts["constant"] += 1
        else:
            counts["step"] += 1
        # The real value's sign (the accumulator's) disagrees where q rounds to zp.
        counts["float_sign_differs"] += bool(np.any((slope * d + bias < 0) != expected))
    assert counts["step"] >= 250 and counts["constant"] >= 10 and counts["wraps"] >= 10, counts
    assert counts["float_sign_differs"] >= 50, counts


def test_sign_threshold_edge_cases_by_hand():
    # multiplier 0.5 * 2^-8: q = acc / 512 rounded, halves away from zero (the high
    # multiply gives acc / 2 exactly for even acc, then the shift rounds -0.5 to -1):
    # acc in (-256, 0) gives q = zp, acc = -256 gives zp - 1. With acc = D + 1 the bit
    # is D + 1 <= -256 <=> D < -256 (the real value's sign would say D < -1).
    assert sign_threshold(1, 1, 1 << 30, -8, 0, -128, 127, 700) == (1, -256)
    # slope -1: acc = 1 - D <= -256 <=> D >= 257 <=> -D < -256
    assert sign_threshold(-1, 1, 1 << 30, -8, 0, -128, 127, 700) == (-1, -256)
    assert sign_threshold(127, 300, 0, 0, 3, -128, 127, 99) == (1, INT32_MIN)
    assert sign_threshold(0, -(10**6), 1 << 30, -8, 3, -128, 127, 99) == (1, INT32_MAX)
    assert sign_threshold(1 << 20, 0, 1 << 30, -20, 0, -128, 127, 1 << 12) is None


# --- end to end on real data ------------------------------------------------------------


def real_data_bnn(input_shape):
    """larq's block order with packed outputs between all binary layers: conv -> pool ->
    BN -> flatten (32 channels) -> dense -> BN -> dense -> BN (int8 logits)."""
    inputs = tf.keras.Input(input_shape)
    x = tf.keras.layers.Conv2D(16, 3, strides=2, padding="same", use_bias=False)(inputs)
    x = tf.keras.layers.BatchNormalization(momentum=0.9, scale=False)(x)
    x = lq.layers.QuantConv2D(32, 3, padding="same", pad_values=1.0, **BINARY)(x)
    x = tf.keras.layers.MaxPool2D(2)(x)
    x = tf.keras.layers.BatchNormalization(momentum=0.9, scale=False)(x)
    x = tf.keras.layers.Flatten()(x)
    x = lq.layers.QuantDense(64, **BINARY)(x)
    x = tf.keras.layers.BatchNormalization(momentum=0.9, scale=False)(x)
    x = lq.layers.QuantDense(10, **BINARY)(x)
    outputs = tf.keras.layers.BatchNormalization(momentum=0.9, scale=False)(x)
    return tf.keras.Model(inputs, outputs)


def test_deploy_output_equals_reference_bytes_on_real_data(dataset):
    """An under-trained BNN (many values near zero): the deploy model, run end to end
    on the host, gives the reference model's output bytes on every test image, the
    reference run in TFLite Micro: the arithmetic the MCU runs, and the TFQP kernels'
    (TF 2.21's tf.lite per-channel int8 FULLY_CONNECTED is 1 LSB off it on some values)."""
    from tflite_micro.python.tflite_micro import runtime

    tf.keras.utils.set_random_seed(1)
    model = real_data_bnn(dataset.input_shape)
    model.compile(optimizer=tf.keras.optimizers.Adam(1e-3),
                  loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(dataset.x_train[:2000], dataset.y_train[:2000], batch_size=64, epochs=1, verbose=0)
    deploy, reference = converters.convert_with_reference(model, representative_dataset=dataset.x_train[-100:])
    packed = [item for item in tfqp_ops(deploy) if item[4].type == fb.TensorType.INT32]
    assert {item[1] for item in packed} == {"TFQP_BCONV2D", "TFQP_BMAXPOOL2D", "TFQP_BFULLY_CONNECTED"}

    micro = runtime.Interpreter.from_bytes(reference, arena_size=1 << 20)
    interpreter = tf.lite.Interpreter(model_content=reference)
    detail = interpreter.get_input_details()[0]
    scale, zero_point = detail["quantization"]
    host = HostInterpreter(deploy)
    images = dataset.x_test[:300]
    differing = 0
    for image in images:
        q = np.clip(np.round(image / scale) + zero_point, -128, 127).astype(np.int8)
        micro.set_input(q[None], 0)
        micro.invoke()
        expected = micro.get_output(0)[0]
        got = host.run(q)
        assert got.dtype == expected.dtype == np.int8
        differing += got.tobytes() != expected.tobytes()
    assert differing == 0, f"{differing} of {len(images)} images"


def test_rewrite_without_packing_keeps_int8_between_layers(mixed):
    result = rewrite(mixed.reference, packed=False)
    assert result.packed_outputs == 0 and result.maxpools == 0
    ops = [item[1] for item in tfqp_ops(result.flatbuffer)]
    assert ops.count("TFQP_BMAXPOOL2D") == 0
    assert len(ops) == 5


def test_rewrite_is_deterministic_and_removes_unused_data(mixed):
    first, second = rewrite(mixed.reference), rewrite(mixed.reference)
    assert first.flatbuffer == second.flatbuffer
    model = fb.ModelT.InitFromObj(fb.Model.GetRootAsModel(bytearray(first.flatbuffer), 0))
    graph = model.subgraphs[0]
    used = {int(t) for op in graph.operators for t in list(op.inputs) + list(op.outputs) if t >= 0}
    used |= {int(t) for t in graph.inputs} | {int(t) for t in graph.outputs}
    assert used == set(range(len(graph.tensors)))
    referenced = {t.buffer for t in graph.tensors} | {m.buffer for m in model.metadata or []} | {0}
    assert referenced == set(range(len(model.buffers)))
    assert len({op.opcodeIndex for op in graph.operators}) == len(model.operatorCodes)
