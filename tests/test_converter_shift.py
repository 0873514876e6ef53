"""Shift-family kernels deploy as TFQP_SHIFT_* ops (issue "Shift kernels").

Every family converts on a tiny seeded model (untrained: random latent weights
and BatchNorm statistics, so every fold is non-trivial): one TFQP shift op per
quantized layer, its codes equal to Keras's quantized kernel exactly, its int8
output within one step of the Keras layer on the op's own input, packed outputs
bit for bit; one flipped code bit fails verify; unsupported combinations raise
errors naming the layer.
"""

import larq as lq
import numpy as np
import pytest
import tensorflow as tf

from tfq_plus import converters
from tfq_plus import quantizers as tq
from tfq_plus.callbacks import INQQuantizer
from tfq_plus.converters import plans as P
from tfq_plus.converters import shift_codes
from tfq_plus.converters import tflite_schema as schema

SHIFT_OPS = ("TFQP_SHIFT_CONV2D", "TFQP_SHIFT_DEPTHWISE_CONV2D", "TFQP_SHIFT_FULLY_CONNECTED")
INPUT_SHAPE = (8, 8, 3)


def _randomize_batch_norms(model, rng):
    for layer in model.layers:
        if isinstance(layer, tf.keras.layers.BatchNormalization):
            channels = layer.gamma.shape[0]
            layer.set_weights([
                rng.uniform(0.5, 1.5, channels) * rng.choice([-1.0, 1.0], channels, p=[0.2, 0.8]),
                rng.normal(0.0, 0.3, channels), rng.normal(0.0, 0.3, channels),
                rng.uniform(0.2, 2.0, channels),
            ])


def _freeze_inq(model):
    for layer in model.layers:
        quantizer = getattr(layer, "kernel_quantizer", None)
        if isinstance(quantizer, INQQuantizer):
            latent = layer.kernel.latent_variable.numpy()
            layer.kernel.latent_variable.assign(quantizer.freeze(latent, np.ones(latent.shape, bool)))


def _set_ttq_scales(model, positive, negative):
    for layer in model.layers:
        quantizer = getattr(layer, "kernel_quantizer", None)
        if isinstance(quantizer, tq.TTQ):
            quantizer.positive_scale.assign(positive)
            quantizer.negative_scale.assign(negative)


def _kill_channels(model):
    """conv: output channel 0 all zero weights, channel 1 a BatchNorm gamma of 0 (the
    output transforms' constant channels)."""
    latent = model.get_layer("conv").kernel.latent_variable
    values = latent.numpy()
    values[..., 0] = 0.0
    latent.assign(values)
    batch_norm = model.get_layer("conv_bn")
    gamma = batch_norm.gamma.numpy()
    gamma[1] = 0.0
    batch_norm.gamma.assign(gamma)


def build(kernel, *, depthwise=None, binarized_output=False, prune=0.0, signs_input=(), dead_channels=False,
          seed=0):
    """conv 3x3 (kernel) -> BN -> ReLU -> max-pool [-> depthwise (depthwise) -> BN
    -> ReLU] -> flatten -> dense (kernel, bias) -> BN; with ``binarized_output`` the
    conv's output is binarized by a binary conv instead (packed output); the layers
    named in ``signs_input`` binarize their input (ste_sign)."""

    def inputs_of(name):
        return dict(input_quantizer="ste_sign") if name in signs_input else {}

    tf.keras.utils.set_random_seed(seed)
    rng = np.random.default_rng(seed)
    inputs = tf.keras.Input(INPUT_SHAPE)
    x = lq.layers.QuantConv2D(8, 3, padding="same", use_bias=False, kernel_quantizer=kernel(),
                              name="conv")(inputs)
    x = tf.keras.layers.BatchNormalization(name="conv_bn")(x)
    if binarized_output:
        x = lq.layers.QuantConv2D(8, 3, padding="same", pad_values=1.0, use_bias=False,
                                  input_quantizer="ste_sign", kernel_quantizer="ste_sign",
                                  name="binary")(x)
        x = tf.keras.layers.BatchNormalization(name="binary_bn")(x)
    else:
        x = tf.keras.layers.Activation("relu")(x)
        x = tf.keras.layers.MaxPool2D(2)(x)
    if depthwise is not None:
        x = lq.layers.QuantDepthwiseConv2D(3, padding="same", depth_multiplier=2, use_bias=False,
                                           depthwise_quantizer=depthwise(), name="depthwise",
                                           **inputs_of("depthwise"))(x)
        x = tf.keras.layers.BatchNormalization(name="depthwise_bn")(x)
        x = tf.keras.layers.Activation("relu")(x)
    x = tf.keras.layers.Flatten()(x)
    x = lq.layers.QuantDense(6, kernel_quantizer=kernel(), name="fc", **inputs_of("fc"))(x)
    outputs = tf.keras.layers.BatchNormalization(name="fc_bn")(x)
    model = tf.keras.Model(inputs, outputs)
    _randomize_batch_norms(model, rng)
    for layer in model.layers:
        if isinstance(layer, (lq.layers.QuantConv2D, lq.layers.QuantDense)):
            latent = layer.kernel.latent_variable
            values = rng.normal(0.0, 0.3, latent.shape)
            if prune:
                values[rng.random(latent.shape) < prune] = 0.0
            latent.assign(values)
        if isinstance(layer, lq.layers.QuantDense):
            layer.bias.assign(rng.normal(0.0, 0.2, layer.bias.shape))
    if dead_channels:
        _kill_channels(model)
    _freeze_inq(model)
    return model


def samples(count=40, seed=1):
    return np.random.default_rng(seed).uniform(-1.0, 1.0, (count,) + INPUT_SHAPE).astype(np.float32)


FAMILIES = {
    "po2 4-bit": dict(kernel=lambda: tq.PowerOfTwo(bits=4)),
    "po2 3-bit per channel": dict(kernel=lambda: tq.PowerOfTwo(bits=3, per_channel=True)),
    "INQ 4-bit": dict(kernel=lambda: INQQuantizer(tq.PowerOfTwo(bits=4))),
    "pruned 75% po2": dict(kernel=lambda: tq.PowerOfTwo(bits=4), prune=0.75),
    "po2 dead channels": dict(kernel=lambda: tq.PowerOfTwo(bits=4), dead_channels=True),
    "log base 2": dict(kernel=lambda: tq.LogQuantizer(bits=4, base="2")),
    "log base sqrt2": dict(kernel=lambda: tq.LogQuantizer(bits=4, base="sqrt2")),
    "ShiftCNN 3-bit x2": dict(kernel=lambda: tq.ShiftQuantizer(bits=3, num_shifts=2)),
    "TWN": dict(kernel=lambda: lq.quantizers.SteTern(ternary_weight_networks=True)),
    "TTQ": dict(kernel=lambda: tq.TTQ(threshold=0.3)),
    "ScaledSign": dict(kernel=lambda: tq.ScaledSign()),
    "MagnitudeAwareSign": dict(kernel=lambda: lq.quantizers.MagnitudeAwareSign()),
    "binary depthwise": dict(kernel=lambda: tq.PowerOfTwo(bits=4), depthwise=lambda: "ste_sign"),
    "po2 depthwise": dict(kernel=lambda: tq.PowerOfTwo(bits=3), depthwise=lambda: tq.PowerOfTwo(bits=4)),
    "packed output": dict(kernel=lambda: tq.PowerOfTwo(bits=4), binarized_output=True),
    # on binarized inputs: the conv's output is packed, unpacked into the stock +-1
    # tensor the shift op reads
    "binary depthwise on signs": dict(kernel=lambda: tq.PowerOfTwo(bits=4), depthwise=lambda: "ste_sign",
                                      signs_input=("depthwise",)),
    "TWN dense on signs": dict(kernel=lambda: lq.quantizers.SteTern(ternary_weight_networks=True),
                               signs_input=("fc",)),
}
# family -> (code bits of conv, accumulator classes of conv)
EXPECTED_CODES = {
    "po2 4-bit": (4, 1), "INQ 4-bit": (4, 1), "log base sqrt2": (4, 2), "ShiftCNN 3-bit x2": (3, 1),
    "TWN": (2, 1), "TTQ": (2, 2), "ScaledSign": (1, 1), "MagnitudeAwareSign": (1, 1),
}


# family -> the layers whose shift op computes the stock op's bytes
STOCK_IDENTICAL = {"TWN": ["conv"], "ScaledSign": ["conv"], "MagnitudeAwareSign": ["conv"],
                   "binary depthwise": ["depthwise"]}
# (a depthwise on the +-1 output of a binarization: the stock converter folds its
# BatchNorm with a doubled bias, so the op keeps the Keras-derived transform)


def _convert(model):
    return converters.convert_with_reference(model, representative_dataset=samples(64, seed=2))


@pytest.mark.parametrize("family", list(FAMILIES))
def test_every_family_deploys_as_shift_ops_equal_to_keras_per_op(family):
    options = dict(FAMILIES[family])
    model = build(**options)
    if family == "TTQ":
        _set_ttq_scales(model, 0.7, 1.3)
    plans = converters.plan(model)
    shift_layers = [plan.name for plan in plans if plan.family == "shift"]
    expected_layers = ["conv", "fc"]
    if options.get("depthwise"):
        expected_layers.insert(1, "depthwise")
    assert shift_layers == expected_layers
    conv = plans.layers["conv"].kernel.shift
    if family in EXPECTED_CODES:
        assert (conv.bits, conv.classes) == EXPECTED_CODES[family]
    if family == "ShiftCNN 3-bit x2":
        assert conv.terms == 2
    if family == "pruned 75% po2":
        zero_codes = np.all(conv.table[:, conv.codes] == 0, axis=0)
        assert zero_codes.mean() > 0.6
    deploy, reference = _convert(model)
    report = converters.verify(model, deploy, samples(), reference=reference, min_argmax_agreement=None)
    shift_checks = [c for c in report.ops if c.op in SHIFT_OPS and c.policy != "stock bytes"]
    assert [c.layer for c in shift_checks] == expected_layers, report
    assert all(c.differing == 0 and c.exact for c in report.ops), report
    assert report.weights_checked == len(report.ops) - sum(c.policy in ("boolean", "stock bytes")
                                                           for c in report.ops)
    # one-class binary / ternary convolutions hold the stock filters' +-127 exactly:
    # their bytes equal the stock op's on the same input
    stock = [c.layer for c in report.ops if c.policy == "stock bytes"]
    assert stock == STOCK_IDENTICAL.get(family, []), report
    # end to end within the stock model's error (the fc's BatchNorm folded into the op
    # writing the model output, whose tensor is not named after it)
    assert report.deploy[0].mean_error_lsb <= report.reference[0].mean_error_lsb + 1.0, report
    packed = "conv" if options.get("binarized_output") or options.get("signs_input") else None
    for check in shift_checks:
        assert check.policy == ("keras signs" if check.layer == packed else "keras int8 1 LSB")
    if options.get("signs_input"):  # the shift op's +-1 input comes from the exact packed signs
        assert "TFQP_UNPACK" in [c.op for c in report.ops]
        assert report.signs and report.differing_signs == 0


def test_codes_decode_to_the_keras_kernel_exactly_for_sqrt2_and_shift_sums():
    """The decomposition itself, without conversion: class weights times class
    scales are Keras's float32 kernel, bit for bit."""
    for kernel in (lambda: tq.LogQuantizer(bits=5, base="sqrt2"), lambda: tq.ShiftQuantizer(bits=4, num_shifts=3)):
        model = build(kernel)
        plan = converters.plan(model).layers["conv"]
        codes = plan.kernel.shift
        layer = model.get_layer("conv")
        keras = layer.kernel_quantizer(layer.kernel.latent_variable).numpy()
        weights = shift_codes.decode(codes.codes, codes.table, codes.terms)
        values = shift_codes.kernel_values(weights, codes.scales)
        assert np.array_equal(values, shift_codes.rows(keras, P.CONV2D))
        assert np.abs(codes.table).max() <= 2**14 and codes.bits <= 5


def _flip_code_bit(deploy: bytes, layer: str) -> bytes:
    model = schema.read(deploy)
    graph = model.subgraphs[0]
    for tensor in graph.tensors:
        if schema.tensor_name(tensor) == f"tfqp/{layer}/weights":
            buffer = model.buffers[tensor.buffer]
            data = np.array(buffer.data, dtype=np.uint8)
            data[1] ^= 0x01  # code bits of the first word of channel 0
            buffer.data = data
            return schema.write(model)
    raise AssertionError(f"no weights of {layer}")


def test_a_flipped_code_bit_fails_verify_naming_the_op_and_layer():
    model = build(**FAMILIES["po2 4-bit"])
    deploy, _ = _convert(model)
    broken = _flip_code_bit(deploy, "conv")
    with pytest.raises(converters.VerificationError,
                       match=r"TFQP_SHIFT_CONV2D, Keras layer 'conv'\).*weights are not the Keras kernel: 1 weights differ, "
                             r"first in output channel 0"):
        converters.verify(model, broken, samples(4), min_argmax_agreement=None)


def test_unsupported_combinations_raise_naming_the_layer():
    # a shift kernel on binarized inputs padded with +1
    inputs = tf.keras.Input(INPUT_SHAPE)
    x = lq.layers.QuantConv2D(4, 3, padding="same", pad_values=1.0, input_quantizer="ste_sign",
                              kernel_quantizer=tq.PowerOfTwo(bits=4), name="signs_po2")(inputs)
    model = tf.keras.Model(inputs, tf.keras.layers.Flatten()(x))
    with pytest.raises(ValueError, match=r"layer 'signs_po2': pad_values=1.0 with a shift-op kernel on binarized "
                                         r"inputs is not supported"):
        converters.plan(model)
    # two accumulator classes whose output is binarized next
    model = build(lambda: tq.LogQuantizer(bits=4, base="sqrt2"), binarized_output=True)
    with pytest.raises(ValueError, match=r"layer 'conv': its output is binarized next, but its log sqrt2 kernel "
                                         r"needs two accumulator classes"):
        converters.plan(model)
    # levels beyond the code table's range (6-bit power of two: 31 exponents)
    model = build(lambda: tq.PowerOfTwo(bits=6))
    layer = model.get_layer("conv")
    spread = np.ldexp(1.0, -np.arange(layer.kernel.shape.num_elements()) % 31).reshape(layer.kernel.shape)
    layer.kernel.latent_variable.assign(spread)
    with pytest.raises(ValueError, match=r"layer 'conv': its levels span 2\^\d+ within a channel"):
        converters.plan(model)


@pytest.mark.parametrize("classes", [1, 2])
def test_the_int8_transform_is_within_the_output_rounding_of_the_real_map(classes):
    """thresholds.shift_int8_transform against the real map zp + (sum_c a_c A_c + b) /
    scale on exact accumulators, through the ops' numpy definition (tfqp_numpy): half
    a step, the bias rounded to a unit of A_0, and (one class) TFLite's second
    rounding; a constant channel (a = 0) lands on its value."""
    import tfqp_numpy

    from tfq_plus.converters import packing, thresholds

    rng = np.random.default_rng(classes)
    channels, taps, zero_point = 12, 40, -5
    table = np.zeros((classes, 4), np.int16)
    table[0, 1], table[classes - 1, 2] = 1, -1
    table[0, 3] = 4
    codes = rng.integers(0, 4, (channels, taps)).astype(np.uint8)
    weights = shift_codes.decode(codes, table, 1)
    slope = rng.uniform(0.002, 0.05, channels) * rng.choice([-1.0, 1.0], channels)
    a = np.stack([slope * rng.uniform(0.5, 1.5, channels) for _ in range(classes)]) * 0.1
    a[:, 0] = 0.0  # a constant channel
    b = rng.normal(0.0, 1.0, channels)
    scale = 0.05
    rows = thresholds.shift_int8_transform(a, b, np.abs(weights).sum(axis=-1), scale)
    x = rng.integers(-128, 128, (300, taps)).astype(np.int8)
    got = tfqp_numpy.shift_fully_connected(
        x, packing.pack_codes(codes, 2), table, rows, dict(channels_in=taps), input_zero_point=3,
        output_zero_point=zero_point, output_kind="int8").astype(np.float64)
    accumulators = np.einsum("nk,cok->cno", x.astype(np.int64) - 3, weights)
    real = zero_point + ((a[:, None, :] * accumulators).sum(axis=0) + b) / scale
    steps = np.abs(a[0]) / scale
    second = 0.5 * 2.0 ** -np.maximum(-np.frexp(steps)[1], 0) if classes == 1 else 0.0
    bound = 0.5 + 0.5 * steps + second + 1e-9
    error = np.abs(got - np.clip(real, -128, 127))
    assert np.all(error <= bound[None, :]), (error - bound).max()
    assert np.all(got[:, 0] == np.clip(np.round(zero_point + b[0] / scale), -128, 127))


def _fc_inputs(deploy: bytes):
    """The inputs of the deploy model's TFQP_SHIFT_FULLY_CONNECTED op (constant data or
    None), and the report row of that op."""
    model = schema.read(deploy)
    graph = model.subgraphs[0]
    (op,) = [op for op in graph.operators
             if schema.op_name(model, op) == "TFQP_SHIFT_FULLY_CONNECTED"]
    return [schema.constant(model, graph.tensors[t]) for t in op.inputs]


def test_code_lists_auto_on_off():
    """Settings x models: "auto" gives the 75 %-pruned layer's fc live-code lists
    (its counted Cortex-M instructions drop to about 0.56x) and the dense one none;
    True forces them on the dense layer, False leaves them off the pruned one. The lists
    are packing.pack_code_lists of the op's own codes, verify stays exact, and report
    counts their bytes in the op's weight bytes."""
    from tfq_plus.converters import code_lists, packing

    pruned, dense = build(lambda: tq.PowerOfTwo(bits=4), prune=0.75), build(lambda: tq.PowerOfTwo(bits=4))
    data = samples(64, seed=2)
    for model, setting, listed in [(pruned, "auto", True), (pruned, False, False),
                                   (dense, "auto", False), (dense, True, True)]:
        deploy = converters.convert_keras_model(model, representative_dataset=data,
                                                code_lists=setting)
        inputs = _fc_inputs(deploy)
        assert len(inputs) == 4 + listed, (setting, len(inputs))
        if not listed:
            continue
        x, words, table, _, lists = inputs
        codes = packing.unpack_codes(words, 4, 128)
        np.testing.assert_array_equal(lists, packing.pack_code_lists(codes, table[0]))
        live = (table[0].astype(np.int64)[codes] != 0).sum(axis=1)
        share = code_lists.list_instructions(live) / code_lists.dense_instructions(6, 16, 4)
        assert (share < 0.6) if model is pruned else (share > 1.0), share
        report = converters.verify(model, deploy, samples(), min_argmax_agreement=None)
        assert all(c.differing == 0 and c.exact for c in report.ops), report
        rows = [r for r in converters.report(deploy, measure=False).ops
                if r.op == "TFQP_SHIFT_FULLY_CONNECTED"]
        assert rows[0].weight_bytes == words.nbytes + table.nbytes + inputs[3].nbytes + lists.nbytes
    with pytest.raises(ValueError, match="code_lists must be 'auto', True or False"):
        converters.convert_keras_model(dense, representative_dataset=data, code_lists="yes")


def test_the_cli_writes_code_lists_as_told(tmp_path):
    """convert --code-lists: off (the default) leaves the pruned fc bare, auto and on list it."""
    from tfq_plus.converters import cli

    model = build(lambda: tq.PowerOfTwo(bits=4), prune=0.75)
    model_path, calibration = tmp_path / "pruned.h5", tmp_path / "data.npz"
    model.save(model_path)
    np.savez(calibration, x=samples(64, seed=2))
    for flags, inputs in (([], 4), (["--code-lists", "auto"], 5), (["--code-lists", "on"], 5)):
        output = tmp_path / f"deploy{len(flags)}{flags[-1:]}.tflite"
        assert cli.main(["convert", str(model_path), "--calibration", str(calibration), "-o",
                         str(output)] + flags) == 0
        assert len(_fc_inputs(output.read_bytes())) == inputs, flags
