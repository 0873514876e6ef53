"""The rewrite against an independent numpy model of the binary ops' contract.

The numpy functions below are written from the contract (notes/binary_ops.md:
D and S over valid taps, acc = W((P+N)S + (P-N)D)/2 + bias, TFLite's
MultiplyByQuantizedMultiplier, bit = direction * D < threshold) and from TFLite's
documented geometry, not by calling the code under test. Every TFQP op of the deploy
models is evaluated on the reference model's own tensors; int8 outputs must equal the
reference tensors byte for byte, and the host C kernels must equal the numpy model.
"""

import numpy as np
import pytest
import tensorflow as tf
from flatbuffers import flexbuffers
from tensorflow.lite.python import schema_py_generated as fb

from test_converter_models import converted, samples

from tfq_plus.converters import _tfqp_kernels
from tfq_plus.converters.rewrite import (
    comparison_is_exact,
    multiply_by_quantized_multiplier,
    quantize_multiplier,
    rewrite,
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
                checked["packed"] += 1
            else:
                np.testing.assert_array_equal(kernel, emulated)
                np.testing.assert_array_equal(emulated, expected_ref.reshape(emulated.shape))
                checked["int8"] += 1
    if which == "mixed":
        assert checked["int8"] and checked["packed"] and checked["pool"], checked
    else:
        assert checked["packed"] and checked["pool"], checked


def test_packed_thresholds_are_the_keras_sign(pool_bn):
    """The first binary layer's packed bits against the Keras layers in float64."""
    model = pool_bn.model
    conv = next(layer for layer in model.layers if layer.name.startswith("quant_conv2d"))
    batch_norm = next(
        layer for layer in model.layers
        if isinstance(layer, tf.keras.layers.BatchNormalization)
        and isinstance(layer.inbound_nodes[0].inbound_layers, tf.keras.layers.MaxPool2D)
    )
    beta, mean, variance = (w.numpy().astype(np.float64) for w in batch_norm.weights)
    multiplier = 1.0 / np.sqrt(variance + batch_norm.epsilon)
    offset = beta - mean * multiplier
    op = next(item for item in tfqp_ops(pool_bn.deploy) if item[1] == "TFQP_BCONV2D")
    _, _, inputs, constants, _, (options, _) = op
    transform = constants[2]
    kernel = np.sign(np.sign(conv.kernel.latent_variable.numpy()) + 0.1)  # larq's sign(0) = +1
    rng = np.random.default_rng(7)
    signs = rng.choice([-1, 1], (4, 6, 6, options["channels_in"]))
    negative_filter = np.transpose(kernel, (3, 0, 1, 2)) < 0
    d, _ = sums_dc(signs, negative_filter, (1, 1), (1, 1), True, options["pad_value"])
    keras = multiplier * d + offset  # BatchNorm(conv(+-1)) in float64
    bits = packed_output(d, transform)
    decided = np.abs(keras) > 1e-3
    np.testing.assert_array_equal(bits[decided], (keras < 0)[decided])


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
