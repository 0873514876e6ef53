"""verify(): the deploy model against the Keras model, and clear failures."""

import larq as lq
import numpy as np
import pytest
import tensorflow as tf
from tensorflow.lite.tools import flatbuffer_utils

from test_converter_models import BINARY, converted, samples

from tfq_plus import converters
from tfq_plus.converters import Interpreter, tflite_schema as schema


@pytest.fixture(scope="module")
def pool_bn():
    return converted("pool_bn")


@pytest.fixture(scope="module")
def mixed():
    return converted("mixed")


def test_verify_checks_weights_every_op_and_every_sign(pool_bn):
    x = samples(pool_bn.model, 20, seed=9)
    report = converters.verify(pool_bn.model, pool_bn.deploy, x, reference=pool_bn.reference,
                               min_argmax_agreement=None)
    assert report.samples == 20
    assert report.weights_checked == 4
    policies = {c.op: c.policy for c in report.ops}
    assert policies["TFQP_BCONV2D"] == "keras signs" and policies["TFQP_BMAXPOOL2D"] == "boolean"
    assert all(c.differing == 0 for c in report.ops if c.exact)
    assert all(c.compared > 0 for c in report.ops)
    # the binary layers are exact; the float stem (rounded kernel) may flip signs
    binary = [s for s in report.signs if s.layer not in ("conv2d_1", "conv2d")]
    assert binary and report.compared_signs > 0
    assert report.reference is not None and 0.0 <= report.reference_argmax_agreement <= 1.0
    text = str(report)
    assert "each TFQP op on its own input" in text and "Keras ~ deploy" in text and "Keras ~ reference" in text


def _edit(deploy: bytes, op_name: str, edit) -> bytes:
    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(deploy))
    graph = model.subgraphs[0]
    for op in graph.operators:
        if schema.op_name(model, op) == op_name and edit(model, graph, op):
            return bytes(flatbuffer_utils.convert_object_to_bytearray(model))
    raise AssertionError(f"no {op_name} op to edit")


def _flip_weight_bit(model, graph, op):
    buffer = model.buffers[graph.tensors[op.inputs[1]].buffer]
    data = np.array(buffer.data, dtype=np.uint8)
    data[5] ^= 0x10
    buffer.data = data
    return True


def _shift_threshold(model, graph, op):
    tensor = graph.tensors[op.inputs[2]]
    if tuple(tensor.shape)[1] != 2:
        return False
    buffer = model.buffers[tensor.buffer]
    rows = np.frombuffer(bytes(np.array(buffer.data, dtype=np.uint8)), dtype="<i4").reshape(-1, 2).copy()
    rows[:, 1] += 6  # every threshold moves by 6 accumulator steps
    buffer.data = np.frombuffer(rows.astype("<i4").tobytes(), dtype=np.uint8)
    return True


def test_one_flipped_weight_bit_fails_on_ten_samples(pool_bn):
    broken = _edit(pool_bn.deploy, "TFQP_BCONV2D", _flip_weight_bit)
    with pytest.raises(converters.VerificationError, match=r"TFQP_BCONV2D, Keras layer .*weights are not the Keras kernel: 1 weights differ"):
        converters.verify(pool_bn.model, broken, samples(pool_bn.model, 10), min_argmax_agreement=None)


def test_a_wrong_threshold_fails_naming_the_op_and_layer(pool_bn):
    broken = _edit(pool_bn.deploy, "TFQP_BFULLY_CONNECTED", _shift_threshold)
    with pytest.raises(converters.VerificationError,
                       match=r"deploy op \d+ \(TFQP_BFULLY_CONNECTED, Keras layer 'quant_dense.*'\) does not compute"):
        converters.verify(pool_bn.model, broken, samples(pool_bn.model, 30), min_argmax_agreement=None)


def test_a_deploy_model_of_another_keras_model_is_rejected(pool_bn, mixed):
    with pytest.raises(converters.VerificationError, match="is the deploy model a conversion of this Keras model"):
        converters.verify(pool_bn.model, mixed.deploy, samples(pool_bn.model, 2), min_argmax_agreement=None)


def test_agreement_bound_and_arguments(pool_bn):
    x = samples(pool_bn.model, 8)
    report = converters.verify(pool_bn.model, pool_bn.deploy, x, min_argmax_agreement=None)
    assert report.reference is None
    with pytest.raises(ValueError, match=r"min_argmax_agreement must be a fraction in \[0, 1\].*95"):
        converters.verify(pool_bn.model, pool_bn.deploy, x, min_argmax_agreement=95)
    with pytest.raises(ValueError, match="3 labels for 8 samples"):
        converters.verify(pool_bn.model, pool_bn.deploy, x, labels=[1, 2, 3])
    with pytest.raises(ValueError, match="do not fit model input"):
        converters.verify(pool_bn.model, pool_bn.deploy, np.zeros((2, 5, 5, 1), np.float32))
    with pytest.raises(ValueError, match=r"samples must be an array \[n, \.\.\.\]"):
        converters.verify(pool_bn.model, pool_bn.deploy, np.zeros((0, 12, 12, 1), np.float32))


@pytest.mark.parametrize("labels, message", [
    (lambda y: np.eye(10)[y], r"labels of shape \[8, 10\] look one-hot; labels must hold one class index per "
     r"sample \(shape \[8\], integers 0..9\): pass labels.argmax\(axis=1\)"),
    (lambda y: y[:7], r"7 labels for 8 samples; labels must hold one class index per sample \(shape \[8\]"),
    (lambda y: y + 0.5, "labels of dtype float64 are not whole numbers"),
    (lambda y: np.array([str(v) for v in y]), "labels of dtype <U1 are not whole numbers"),
    (lambda y: y + 5, r"labels range over 5..12 but output 0 has 10 classes"),
    (lambda y: y.reshape(2, 4), r"labels of shape \[2, 4\]; labels must hold one class index per sample"),
])
def test_labels_must_be_one_class_index_per_sample(pool_bn, labels, message):
    """Before: one-hot labels read as "80 labels for 8 samples", and float or string
    labels were compared with the argmax silently (accuracy 0)."""
    x = samples(pool_bn.model, 8)
    y = np.arange(8) % 8
    with pytest.raises(ValueError, match="verify: " + message):
        converters.verify(pool_bn.model, pool_bn.deploy, x, labels=labels(y), min_argmax_agreement=None)


def test_labels_as_a_column_or_whole_floats_count_as_indices(pool_bn):
    x = samples(pool_bn.model, 8)
    y = np.argmax(pool_bn.model.predict(x, verbose=0), axis=1)
    expected = converters.verify(pool_bn.model, pool_bn.deploy, x, labels=y, min_argmax_agreement=None)
    assert expected.keras_accuracy == 1.0
    for form in (y[:, None], y.astype(np.float32), list(y)):
        report = converters.verify(pool_bn.model, pool_bn.deploy, x, labels=form, min_argmax_agreement=None)
        assert report.keras_accuracy == 1.0 and report.deploy[0].accuracy == expected.deploy[0].accuracy


def test_samples_with_nan_and_a_bad_lsb_bound_are_refused(pool_bn):
    x = samples(pool_bn.model, 8)
    x[3, 1, 1, 0] = np.nan
    with pytest.raises(ValueError, match=r"verify: samples \(input 0\) hold 1 NaN or infinite values"):
        converters.verify(pool_bn.model, pool_bn.deploy, x, min_argmax_agreement=None)
    for bound in (-1.0, float("nan"), "2"):
        with pytest.raises(ValueError, match="max_error_lsb must be a number >= 0"):
            converters.verify(pool_bn.model, pool_bn.deploy, samples(pool_bn.model, 8), max_error_lsb=bound)


def test_missing_the_bound_names_the_option(pool_bn):
    """A bound no conversion meets (more than 100 % is impossible, so use a model
    whose deploy output is compared with a different Keras output: its own
    agreement below 1.0 on random data)."""
    x = samples(pool_bn.model, 40, seed=3)
    report = converters.verify(pool_bn.model, pool_bn.deploy, x, min_argmax_agreement=None)
    if report.argmax_agreement < 1.0:
        with pytest.raises(converters.VerificationError, match=r"min_argmax_agreement \(--min-agreement\) requires 100.00 %"):
            converters.verify(pool_bn.model, pool_bn.deploy, x, min_argmax_agreement=1.0)
    else:  # every sample agrees: the bound holds at 1.0
        assert converters.verify(pool_bn.model, pool_bn.deploy, x, min_argmax_agreement=1.0).argmax_agreement == 1.0


def two_in_two_out():
    """Two image inputs, each binarized by a binary conv, joined, and two heads."""
    a = tf.keras.Input((6, 6, 2), name="left")
    b = tf.keras.Input((6, 6, 2), name="right")
    x = lq.layers.QuantConv2D(8, 3, padding="same", pad_values=1.0, **BINARY)(a)
    y = lq.layers.QuantConv2D(8, 3, padding="same", pad_values=1.0, **BINARY)(b)
    x = tf.keras.layers.BatchNormalization()(x)
    y = tf.keras.layers.BatchNormalization()(y)
    joined = tf.keras.layers.Concatenate()([x, y])
    z = lq.layers.QuantConv2D(8, 3, **BINARY)(joined)
    z = tf.keras.layers.Flatten()(z)
    first = tf.keras.layers.Dense(4, name="first")(z)
    second = tf.keras.layers.Dense(3, name="second")(z)
    return tf.keras.Model([a, b], [first, second])


def test_multi_input_multi_output_models_verify_and_run():
    model = two_in_two_out()
    rng = np.random.default_rng(2)
    data = [rng.uniform(-1, 1, (24, 6, 6, 2)).astype(np.float32) for _ in range(2)]
    deploy, reference = converters.convert_with_reference(model, representative_dataset=data)
    report = converters.verify(model, deploy, [d[:10] for d in data], reference=reference,
                               labels=rng.integers(0, 4, 10), min_argmax_agreement=None)
    assert [c.name for c in report.deploy] == ["first", "second"]  # the Keras model's order
    assert len(report.deploy) == 2 and len(report.reference) == 2
    outputs = Interpreter(deploy).predict([d[:3] for d in data])
    assert [o.shape for o in outputs] == [(3, 4), (3, 3)]
    with pytest.raises(ValueError, match="the model has 2 inputs, got 1 sample arrays"):
        converters.verify(model, deploy, data[0], min_argmax_agreement=None)
