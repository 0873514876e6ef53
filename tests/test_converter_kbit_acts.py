"""Trained k-bit activation grids deploy exactly (issue "k-bit grids deploy", item 1).

PACT, LSQ (unsigned and signed), Uniform and larq's DoReFa activations at 2 to 8
bits, on a layer's input or as a quantizer layer: the deploy tensor's quantization
is the grid's (scale = step, zero point from the grid, never calibrated), and the
op that produces it writes Keras's codes from its exact accumulator against
integer thresholds. Small seeded models on synthetic images on the 1/255 grid (so
the int8 model input holds them exactly): their codes equal Keras's on every
image, per op and end to end; unsupported placements raise errors naming the layer.
"""

import larq as lq
import numpy as np
import pytest
import tensorflow as tf

from tfq_plus import converters
from tfq_plus import quantizers as tq
from tfq_plus.callbacks import BitWidthSchedule, DelayedQuantizer, ProgressiveQuantizer, QuantizationDelay
from tfq_plus.converters import packing
from tfq_plus.converters import plans as P
from tfq_plus.converters import tflite_schema as schema
from tfq_plus.converters import thresholds
from tfq_plus.converters.interpreter import Interpreter
from test_converter_shift import _randomize_batch_norms

INPUT_SHAPE = (8, 8, 1)
IMAGES = 120


def _images(count, seed=0):
    """Pixels k / 255 with 0 and 1 present: the int8 input (scale 1/255, zero point
    -128) holds them exactly."""
    images = np.random.default_rng(seed).integers(0, 256, (count,) + INPUT_SHAPE) / 255.0
    images[0, 0, 0, 0], images[0, 0, 1, 0] = 0.0, 1.0
    return images.astype(np.float32)


def _model(quantizer, activation="relu", kernel=lambda: tq.PowerOfTwo(bits=4), conv_channels=6):
    """stem (8-bit symmetric Uniform kernel: exact int8 codes) -> BN -> act -> pool ->
    conv (k-bit input codes, coded-weight kernel) -> BN -> act -> flatten -> fc
    (k-bit input codes) -> BN."""
    tf.keras.utils.set_random_seed(3)
    inputs = tf.keras.Input(INPUT_SHAPE)
    x = lq.layers.QuantConv2D(8, 3, padding="same", use_bias=False, name="stem",
                              kernel_quantizer=tq.Uniform(bits=8, symmetric=True, per_channel=True))(inputs)
    x = tf.keras.layers.BatchNormalization(name="stem_bn")(x)
    x = tf.keras.layers.Activation(activation, name="stem_act")(x)
    x = tf.keras.layers.MaxPool2D(2, name="pool")(x)
    x = lq.layers.QuantConv2D(conv_channels, 3, padding="same", use_bias=False, name="conv",
                              input_quantizer=quantizer(), kernel_quantizer=kernel())(x)
    x = tf.keras.layers.BatchNormalization(name="conv_bn")(x)
    x = tf.keras.layers.Activation(activation, name="conv_act")(x)
    x = tf.keras.layers.Flatten(name="flatten")(x)
    x = lq.layers.QuantDense(4, use_bias=False, name="fc", input_quantizer=quantizer(), kernel_quantizer=kernel())(x)
    model = tf.keras.Model(inputs, tf.keras.layers.BatchNormalization(name="fc_bn")(x))
    _randomize_batch_norms(model, np.random.default_rng(5))
    model(_images(64, seed=9), training=True)  # LSQ steps and Uniform ranges from data
    return model


# (name, quantizer factory, activation before it, expected (step, offset) from the
# quantizer's own parameters)
def _pact(bits):
    return lambda: tq.PACT(bits=bits, alpha_init=2.5)


def _lsq(bits, signed=False):
    return lambda: tq.LSQ(bits=bits, signed=signed)


def _uniform(bits, symmetric):
    # ranges (almost) from the batch the model is first called on in training
    return lambda: tq.Uniform(bits=bits, symmetric=symmetric, ranges="moving_average", momentum=0.01)


def _dorefa(bits):
    return lambda: lq.quantizers.DoReFa(k_bit=bits, mode="activations")


GRIDS = [
    ("pact2", _pact(2), "relu"), ("pact4", _pact(4), "relu"), ("pact8", _pact(8), "linear"),
    ("lsq2", _lsq(2), "relu"), ("lsq4", _lsq(4), "relu"), ("lsq4_signed", _lsq(4, True), "linear"),
    ("lsq3_signed", _lsq(3, True), "linear"),
    ("uniform4_symmetric", _uniform(4, True), "linear"), ("uniform8", _uniform(8, False), "linear"),
    ("dorefa2", _dorefa(2), "linear"), ("dorefa4", _dorefa(4), "linear"),
]


def _expected_grid(quantizer):
    """(step, offset: value = (u + offset) * step, levels) from the quantizer's own
    trained parameters, not from the converter's description of them."""
    if isinstance(quantizer, tq.PACT):
        alpha = np.float32(abs(quantizer.alpha.numpy()))
        return alpha / np.float32(2**quantizer.bits - 1), 0, 2**quantizer.bits
    if isinstance(quantizer, tq.LSQ):
        step = np.float32(abs(quantizer.step.numpy()))
        return step, -quantizer.q_n, quantizer.q_n + quantizer.q_p + 1
    if isinstance(quantizer, lq.quantizers.DoReFa):
        return np.float32(1.0 / (2**quantizer.precision - 1)), 0, 2**quantizer.precision
    values = np.unique(quantizer(tf.constant(np.linspace(-20, 20, 200001, dtype=np.float32))).numpy())
    step = np.float32(np.min(np.diff(values)))
    return step, int(np.rint(values[0] / step)), len(values)


def _codes_tensors(flatbuffer):
    model = schema.read(flatbuffer)
    graph = model.subgraphs[0]
    return {schema.tensor_name(t): schema.per_tensor_quantization(t) for t in graph.tensors
            if schema.tensor_name(t).endswith("/codes")}, model


@pytest.mark.parametrize("name, quantizer, activation", GRIDS, ids=[g[0] for g in GRIDS])
def test_codes_equal_keras_and_the_tensor_holds_the_grid(name, quantizer, activation):
    model = _model(quantizer, activation)
    images = _images(IMAGES)
    deploy = converters.convert_keras_model(model, representative_dataset=images[:32])
    codes, flat = _codes_tensors(deploy)
    # the stem writes the conv's input codes (after the pool), the conv the fc's (after the flatten)
    assert {"tfqp/stem/codes", "tfqp/pool/codes", "tfqp/conv/codes", "tfqp/flatten/codes"} <= set(codes)
    for layer, tensor in (("conv", "tfqp/pool/codes"), ("fc", "tfqp/flatten/codes")):
        quantizer = model.get_layer(layer).input_quantizer
        step, offset, levels = _expected_grid(quantizer)
        scale, zero_point = codes[tensor]
        if isinstance(quantizer, tq.Uniform):  # step measured from its values: float32 rounding
            np.testing.assert_allclose(scale, step, rtol=1e-5)
        else:
            assert scale == np.float32(step), (tensor, scale, step)
        # int8 q = zero point + offset + u holds every code
        assert -128 <= zero_point + offset and zero_point + offset + levels - 1 <= 127
    ops = [schema.op_name(flat, op) for op in flat.subgraphs[0].operators]
    assert ops.count("TFQP_CONV2D_INT8") == 1 and ops.count("TFQP_SHIFT_CONV2D") == 1
    report = converters.verify(model, deploy, images, min_argmax_agreement=None)
    coded = [c for c in report.ops if c.policy == "keras codes"]
    assert [c.layer for c in coded] == ["stem", "conv"]
    assert all(c.differing == 0 and c.compared > 0 for c in coded), report
    assert report.compared_codes == IMAGES * (8 * 8 * 8 + 4 * 4 * 8 + 4 * 4 * 6 * 2)
    assert report.differing_codes == 0, report
    assert report.code_ties <= report.compared_codes * 1e-4


def test_codes_are_the_quantizers_on_the_deploy_input():
    """Independently of verify: the deploy model's conv input codes, run on the host,
    are PACT's codes of Keras's pooled stem output."""
    model = _model(_pact(4))
    images = _images(40)
    deploy = converters.convert_keras_model(model, representative_dataset=images[:32])
    interpreter = Interpreter(deploy, keep_tensors=True)
    graph = interpreter.model.subgraphs[0]
    pooled = next(i for i, t in enumerate(graph.tensors) if schema.tensor_name(t) == "tfqp/pool/codes")
    scale, zero_point = schema.per_tensor_quantization(graph.tensors[pooled])
    probe = tf.keras.Model(model.inputs, model.get_layer("pool").output)
    keras = model.get_layer("conv").input_quantizer(probe(images)).numpy()
    assert graph.tensors[pooled].type == schema.TensorType.INT32  # packed 4-bit codes
    for index in range(len(images)):
        interpreter.invoke([interpreter.quantize(images[index:index + 1], 0)])
        codes = packing.unpack_kbit_activations(interpreter.tensor(pooled), 4, 8)
        got = (codes.astype(np.float32) - zero_point) * scale
        np.testing.assert_array_equal(got, keras[index:index + 1])


def test_a_builtin_reader_reads_the_exact_codes():
    """Float kernels: conv becomes TFQP_CONV2D_INT8 (its codes output from the
    converter's rounding of its kernel, reported, not exact), fc a builtin
    FULLY_CONNECTED reading conv's codes at scale = step (its bias rescaled)."""
    model = _model(_pact(4), kernel=lambda: None)
    images = _images(IMAGES)
    deploy = converters.convert_keras_model(model, representative_dataset=images[:32])
    codes, flat = _codes_tensors(deploy)
    graph = flat.subgraphs[0]
    readers = [schema.op_name(flat, op) for op in graph.operators
               if schema.tensor_name(graph.tensors[int(op.inputs[0])]) == "tfqp/flatten/codes"]
    assert readers == ["FULLY_CONNECTED"]
    alpha = np.float32(model.get_layer("fc").input_quantizer.alpha.numpy())
    assert codes["tfqp/flatten/codes"] == (alpha / np.float32(15), 0)
    report = converters.verify(model, deploy, images, min_argmax_agreement=0.99)
    checks = {c.layer: c for c in report.ops if c.policy == "keras codes"}
    assert checks["stem"].exact and checks["stem"].differing == 0
    assert not checks["conv"].exact  # a rounded float kernel: its flips are reported


@pytest.mark.parametrize("levels_of, unit, accumulators, expected", [
    # y = acc * 0.125, PACT 4-bit alpha 3.75: y / step = acc / 2: ties round half to even
    (lambda: tq.PACT(bits=4, alpha_init=3.75), 0.125, [-3, 0, 1, 2, 3, 5, 7, 9, 59, 60, 61, 200],
     [0, 0, 0, 1, 2, 2, 4, 4, 15, 15, 15, 15]),
    # LSQ signed 2-bit, step 0.5: codes of -1, -0.5, 0, 0.5 are u = 0 .. 3
    (lambda: tq.LSQ(bits=2, signed=True), 0.125, [-20, -6, -5, -3, -2, -1, 0, 1, 2, 3, 6, 20],
     [0, 0, 1, 1, 2, 2, 2, 2, 2, 3, 3, 3]),
])
def test_thresholds_round_ties_half_to_even_as_keras(levels_of, unit, accumulators, expected):
    inputs = tf.keras.Input((4,))
    dense = lq.layers.QuantDense(1, use_bias=False, name="dense")
    quantizer = levels_of()
    model = tf.keras.Model(inputs, lq.layers.QuantDense(1, input_quantizer=quantizer, name="reader")(dense(inputs)))
    model(np.zeros((1, 4), np.float32))
    if isinstance(quantizer, tq.LSQ):
        quantizer.step.assign(0.5)
    plan = converters.plan(model).layers["dense"]
    assert plan.output == P.CODES
    low, high = np.array([-1000]), np.array([1000])
    rows = thresholds.code_transform(plan, np.array([unit]), low, high)
    got = thresholds.codes_of(rows, np.array(accumulators)[:, None])[:, 0]
    np.testing.assert_array_equal(got, expected)
    # and every accumulator of the range: the thresholds' codes are Keras's
    every = np.arange(-1000, 1001)[:, None]
    keras = quantizer(tf.constant((every * unit).astype(np.float32))).numpy()
    step = float(plan.output_grid.step)
    np.testing.assert_array_equal(thresholds.codes_of(rows, every),
                                  np.rint(keras / step) - plan.output_grid.offset)


def test_a_decreasing_chain_gets_direction_minus_one():
    inputs = tf.keras.Input((3,))
    x = lq.layers.QuantDense(2, use_bias=False, name="dense")(inputs)
    norm = tf.keras.layers.BatchNormalization(name="norm")
    x = norm(x)
    model = tf.keras.Model(inputs, lq.layers.QuantDense(1, input_quantizer=tq.PACT(bits=3, alpha_init=2.0))(x))
    model(np.zeros((1, 3), np.float32))
    norm.set_weights([np.array([-1.0, 2.0]), np.array([0.5, -0.5]), np.zeros(2), np.ones(2)])
    plan = converters.plan(model).layers["dense"]
    every = np.arange(-400, 401)[:, None].repeat(2, axis=1)
    unit = np.array([0.01, 0.01])
    rows = thresholds.code_transform(plan, unit, np.array([-400, -400]), np.array([400, 400]))
    assert list(rows[:, 0]) == [-1, 1]
    values = norm(tf.constant((every * 0.01).astype(np.float32)), training=False)
    keras = plan.output_grid.codes(values.numpy())
    np.testing.assert_array_equal(thresholds.codes_of(rows, every), keras)


def _convert(model):
    return converters.convert_keras_model(model, representative_dataset=_images(16))


def test_a_quantizer_layer_deploys_its_codes_too():
    tf.keras.utils.set_random_seed(4)
    inputs = tf.keras.Input(INPUT_SHAPE)
    x = lq.layers.QuantConv2D(4, 3, use_bias=False, name="stem",
                              kernel_quantizer=tq.Uniform(bits=8, symmetric=True, per_channel=True))(inputs)
    x = tf.keras.layers.BatchNormalization(name="stem_bn")(x)
    x = tq.PACT(bits=3, alpha_init=1.5, name="pact")(x)
    x = lq.layers.QuantConv2D(3, 3, use_bias=False, name="conv", kernel_quantizer="ste_tern")(x)
    model = tf.keras.Model(inputs, x)
    _randomize_batch_norms(model, np.random.default_rng(1))
    images = _images(60)
    deploy = _convert(model)
    codes, _ = _codes_tensors(deploy)
    assert codes["tfqp/stem/codes"] == (np.float32(1.5) / np.float32(7), 0)
    report = converters.verify(model, deploy, images, min_argmax_agreement=None)
    assert report.compared_codes == 60 * 6 * 6 * 4 and report.differing_codes == 0, report


def _reading(quantizer_factory, before):
    """input -> [before] -> QuantConv2D(input quantizer) model."""
    inputs = tf.keras.Input(INPUT_SHAPE)
    x = before(inputs)
    reader = lq.layers.QuantConv2D(2, 3, name="reader", input_quantizer=quantizer_factory(),
                                   kernel_quantizer="ste_tern")
    return tf.keras.Model(inputs, reader(x))


def test_codes_of_the_model_input_name_the_layer_and_what_is_supported():
    model = _reading(_pact(4), lambda x: x)
    with pytest.raises(ValueError, match=r"layer 'reader': its 4-bit PACT input codes need a producing TFQP op; "
                                         r"'input_\d+' \(InputLayer\) is not one: k-bit activations deploy after"):
        _convert(model)


def test_codes_after_an_average_pool_are_rejected():
    model = _reading(_pact(2), lambda x: tf.keras.layers.AveragePooling2D(2, name="avg")(
        tf.keras.layers.Conv2D(3, 3, name="c")(x)))
    with pytest.raises(ValueError, match=r"layer 'reader'.*'avg' \(AveragePooling2D\) is not one"):
        _convert(model)


def test_a_coded_tensor_also_read_unquantized_is_rejected():
    inputs = tf.keras.Input(INPUT_SHAPE)
    x = tf.keras.layers.Conv2D(3, 3, name="c")(inputs)
    a = lq.layers.QuantConv2D(2, 3, name="reader", input_quantizer=tq.PACT(bits=4), kernel_quantizer="ste_tern")(x)
    b = tf.keras.layers.Conv2D(2, 3, name="other")(x)
    model = tf.keras.Model(inputs, [a, b])
    with pytest.raises(ValueError, match=r"layer 'reader': its 4-bit PACT codes of 'c' deploy only where every "
                                         r"reader of 'c' quantizes it to that grid; \['other'\] read it unquantized"):
        _convert(model)


def test_two_grids_on_one_tensor_are_rejected():
    inputs = tf.keras.Input(INPUT_SHAPE)
    x = tf.keras.layers.Conv2D(3, 3, name="c")(inputs)
    a = lq.layers.QuantConv2D(2, 3, name="r4", input_quantizer=tq.PACT(bits=4), kernel_quantizer="ste_tern")(x)
    b = lq.layers.QuantConv2D(2, 3, name="r2", input_quantizer=tq.PACT(bits=2), kernel_quantizer="ste_tern")(x)
    model = tf.keras.Model(inputs, [a, b])
    with pytest.raises(ValueError, match="layers 'r4' and 'r2' quantize the output of 'c' to different k-bit grids"):
        _convert(model)


def test_a_decreasing_step_after_a_max_pool_is_rejected():
    inputs = tf.keras.Input(INPUT_SHAPE)
    x = tf.keras.layers.Conv2D(3, 3, name="c")(inputs)
    x = tf.keras.layers.MaxPool2D(2, name="pool")(x)
    norm = tf.keras.layers.BatchNormalization(name="norm")
    x = norm(x)
    model = tf.keras.Model(inputs, lq.layers.QuantConv2D(2, 2, name="reader", input_quantizer=tq.PACT(bits=4),
                                                         kernel_quantizer="ste_tern")(x))
    norm.set_weights([np.array([1.0, -1.0, 1.0]), np.zeros(3), np.zeros(3), np.ones(3)])
    with pytest.raises(ValueError, match=r"layer 'c': 'norm' after max-pool decreases in some channels"):
        _convert(model)


def test_per_channel_activation_steps_are_rejected():
    model = _reading(lambda: tq.LSQ(bits=4, per_channel=True), lambda x: tf.keras.layers.Conv2D(3, 3, name="c")(x))
    model(_images(4), training=True)
    with pytest.raises(ValueError, match="layer 'reader': input quantizer LSQ has a per-channel grid"):
        _convert(model)


def _fit(model, callback, epochs):
    images = _images(64, seed=2)
    labels = np.random.default_rng(3).normal(size=(64, 4)).astype(np.float32)
    model.compile(optimizer=tf.keras.optimizers.Adam(1e-3), loss="mse")
    model.fit(images, labels, batch_size=16, epochs=epochs, callbacks=[callback], verbose=0)


@pytest.mark.parametrize("make, callback, bits", [
    (lambda: ProgressiveQuantizer(tq.PACT(alpha_init=2.0), bits=(8, 4)), lambda: BitWidthSchedule({0: 8, 1: 4}), 4),
    (lambda: ProgressiveQuantizer(tq.LSQ(), bits=(4, 2)), lambda: BitWidthSchedule({0: 4, 1: 2}), 2),
    (lambda: DelayedQuantizer(tq.PACT(bits=3, alpha_init=2.0)), lambda: QuantizationDelay(epochs=1), 3),
], ids=["progressive_pact", "progressive_lsq", "delayed_pact"])
def test_a_schedule_converts_at_the_width_training_ended_with(make, callback, bits):
    model = _model(make)
    _fit(model, callback(), epochs=2)
    plans = converters.plan(model)
    assert plans.layers["stem"].output_grid.bits == bits
    images = _images(40)
    deploy = _convert(model)
    report = converters.verify(model, deploy, images, min_argmax_agreement=None)
    assert report.compared_codes > 0 and report.differing_codes == 0, report
    levels = {c.op: c.detail for c in report.ops if c.policy == "keras codes"}
    assert levels == {"TFQP_CONV2D_INT8": f"{bits}-bit codes", "TFQP_SHIFT_CONV2D": f"{bits}-bit codes"}


def test_a_depthwise_shift_op_writes_codes():
    tf.keras.utils.set_random_seed(6)
    inputs = tf.keras.Input(INPUT_SHAPE)
    x = lq.layers.QuantConv2D(4, 3, padding="same", use_bias=False, name="stem",
                              kernel_quantizer=tq.Uniform(bits=8, symmetric=True, per_channel=True))(inputs)
    x = tf.keras.layers.BatchNormalization(name="stem_bn")(x)
    x = lq.layers.QuantDepthwiseConv2D(3, padding="same", use_bias=False, name="depthwise",
                                       input_quantizer=tq.PACT(bits=4, alpha_init=2.0),
                                       depthwise_quantizer=tq.PowerOfTwo(bits=4))(x)
    x = tf.keras.layers.BatchNormalization(name="depthwise_bn")(x)
    x = lq.layers.QuantConv2D(3, 3, name="conv", input_quantizer=lq.quantizers.DoReFa(k_bit=2, mode="activations"),
                              kernel_quantizer="ste_tern")(x)
    model = tf.keras.Model(inputs, x)
    _randomize_batch_norms(model, np.random.default_rng(2))
    images = _images(60)
    deploy = _convert(model)
    codes, flat = _codes_tensors(deploy)
    assert codes["tfqp/depthwise/codes"] == (np.float32(1.0 / 3.0), 0)
    report = converters.verify(model, deploy, images, min_argmax_agreement=None)
    checks = {c.op: c for c in report.ops if c.policy == "keras codes"}
    assert set(checks) == {"TFQP_CONV2D_INT8", "TFQP_SHIFT_DEPTHWISE_CONV2D"}
    assert all(c.differing == 0 for c in checks.values()), report
    assert report.compared_codes == 60 * 8 * 8 * 4 * 2 and report.differing_codes == 0, report


# ----------------------------------------------------------------------------- packed codes

def _tensor(flat, name):
    graph = flat.subgraphs[0]
    return next(t for t in graph.tensors if schema.tensor_name(t) == name)


def _options(flat, op_name):
    from tfq_plus.converters.ops import decode_options

    return [decode_options(op.customOptions) for op in flat.subgraphs[0].operators
            if schema.op_name(flat, op) == op_name]


def _outputs(deploy, images):
    interpreter = Interpreter(deploy)
    return np.concatenate([interpreter.invoke([interpreter.quantize(images[i:i + 1], 0)])[0]
                           for i in range(len(images))])


# (grid, conv channels, packed width, code_zero of the conv's and the fc's input):
# unsigned 2- and 4-bit, signed 4-bit (code_zero 8), signed 3-bit stored as 4 bits;
# 6 conv channels: the flatten's pixels hold padding codes, so conv -> fc stays int8
PACKED = [("pact2", _pact(2), "relu", 16, 2, 0), ("pact4", _pact(4), "relu", 6, 4, 0),
          ("lsq4_signed", _lsq(4, True), "linear", 8, 4, 8),
          ("lsq3_signed", _lsq(3, True), "linear", 8, 4, 4)]


@pytest.mark.parametrize("name, quantizer, activation, channels, bits, code_zero", PACKED,
                         ids=[p[0] for p in PACKED])
def test_codes_between_tfqp_ops_are_packed(name, quantizer, activation, channels, bits, code_zero):
    """The default conversion stores the codes between TFQP ops packed (the pool a
    TFQP_MAX_POOL_CODES, a flatten of whole words a RESHAPE of words); the deploy
    model computes the same outputs as with pack_activations=False on every image,
    verify finds Keras's codes per op and end to end, and the activation peak
    shrinks."""
    model = _model(quantizer, activation, conv_channels=channels)
    images = _images(IMAGES)
    deploy = converters.convert_keras_model(model, representative_dataset=images[:32])
    unpacked = converters.convert_keras_model(model, representative_dataset=images[:32],
                                              pack_activations=False)
    flat, plain = schema.read(deploy), schema.read(unpacked)
    per_word = 32 // bits
    for tensor, dims in (("tfqp/stem/codes", [1, 8, 8, 8]), ("tfqp/pool/codes", [1, 4, 4, 8])):
        assert _tensor(plain, tensor).type == schema.TensorType.INT8
        assert _tensor(flat, tensor).type == schema.TensorType.INT32
        assert schema.shape(_tensor(flat, tensor)) == dims[:-1] + [-(-dims[-1] // per_word)]
        # the grid's step; zero point code_zero: (u - zero point) * step is the value
        scale, zero_point = schema.per_tensor_quantization(_tensor(flat, tensor))
        assert scale == schema.per_tensor_quantization(_tensor(plain, tensor))[0]
        assert zero_point == code_zero
    names = [schema.op_name(flat, op) for op in flat.subgraphs[0].operators]
    assert "MAX_POOL_2D" not in names and names.count("TFQP_MAX_POOL_CODES") == 1
    pool, = _options(flat, "TFQP_MAX_POOL_CODES")
    assert pool == {"channels": 8, "bits": bits, "filter_height": 2, "filter_width": 2,
                    "stride_height": 2, "stride_width": 2, "padding": 1}
    stem, = _options(flat, "TFQP_CONV2D_INT8")
    conv, = _options(flat, "TFQP_SHIFT_CONV2D")
    fc, = _options(flat, "TFQP_SHIFT_FULLY_CONNECTED")
    assert stem["output_bits"] == bits and "input_bits" not in stem
    assert (conv["input_bits"], conv.get("input_code_zero", 0), conv["channels_in"]) == (bits, code_zero, 8)
    flatten = _tensor(flat, "tfqp/flatten/codes")
    if channels % per_word == 0:  # whole words per pixel: the flatten is a reshape of words
        assert conv["output_bits"] == bits
        assert schema.shape(flatten) == [1, 4 * 4 * channels // per_word]
        assert (fc["input_bits"], fc["channels_in"]) == (bits, 4 * 4 * channels)
    else:
        assert "output_bits" not in conv and "input_bits" not in fc
        assert flatten.type == schema.TensorType.INT8
    np.testing.assert_array_equal(_outputs(deploy, images), _outputs(unpacked, images))
    report = converters.verify(model, deploy, images, min_argmax_agreement=None)
    coded = [c for c in report.ops if c.policy == "keras codes"]
    assert [c.layer for c in coded] == ["stem", "conv"] and all(c.differing == 0 for c in coded)
    assert [c.op for c in report.ops if c.policy == "boolean"] == ["TFQP_MAX_POOL_CODES"]
    assert report.compared_codes == IMAGES * (8 * 8 * 8 + 4 * 4 * 8 + 4 * 4 * channels * 2)
    assert report.differing_codes == 0, report
    peak = converters.report(deploy, measure=False).activation_peak_bytes
    assert peak < converters.report(unpacked, measure=False).activation_peak_bytes
