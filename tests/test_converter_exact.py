"""Keras-exact binary activations on trained models (issue "Deploy what Keras computes").

Four models whose every binarized layer has its kernel on a trained grid (binary,
the first layer included: a binary kernel on the int8 image): a BNN trained one
epoch on 10,000 MNIST images, the same on Fashion-MNIST, a Bi-Real-style model
whose real-valued shortcuts are binarized again (residual int32 streams), and a
binary student distilled from a float teacher. On 1000 test images not one
binarized activation of the deploy model may differ from Keras's (float32 ties,
counted separately, below 1 in 10^6), and the argmax agrees on >= 99 %.
"""

import pytest

import tfq_plus
from bnn_models import build

from tfq_plus import converters

TEST_IMAGES = 1000


def _data(name):
    try:
        return tfq_plus.datasets.load(name)
    except ValueError as error:
        pytest.skip(f"{name} not available offline: {error}")


@pytest.mark.parametrize("kind, dataset", [
    ("bnn", "mnist"), ("bnn", "fashion_mnist"), ("bireal", "mnist"), ("student", "mnist"),
])
def test_every_binarized_activation_equals_keras(kind, dataset):
    data = _data(dataset)
    model = build(kind, data)
    deploy, reference = converters.convert_with_reference(model, representative_dataset=data.x_train[:200])
    report = converters.verify(model, deploy, data.x_test[:TEST_IMAGES], labels=data.y_test[:TEST_IMAGES],
                               reference=reference, min_argmax_agreement=0.99)
    print(report)
    assert report.compared_signs > 1_000_000
    assert report.differing_signs == 0, [s for s in report.signs if s.differing]
    assert report.sign_ties <= report.compared_signs * 1e-6
    assert all(c.differing == 0 for c in report.ops)
    # every op on its own input, and the first layer's kernel is a trained grid
    first = next(iter(converters.plan(model)))
    assert first.kernel.exact and first.input == "int8"
    # the stock int8 model (the baseline) drifts from Keras; the deploy model does not
    assert report.argmax_agreement >= report.reference_argmax_agreement


def test_a_float_stem_flips_only_what_its_rounded_kernel_causes_and_verify_reports_them():
    """The demo's recipe: a float first convolution. Its kernel is rounded by the
    converter (a grid Keras never saw): verify reports its flipped signs per layer
    (not a failure); the binary layers after it are exact on their own inputs."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
    import tensorflow as tf
    from binary_mnist_to_mcu import build_model

    data = _data("mnist")
    tf.keras.utils.set_random_seed(0)
    model = build_model(data.input_shape, data.num_classes)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    model.fit(data.x_train[:10_000], data.y_train[:10_000], epochs=1, batch_size=64, verbose=0, shuffle=False)
    deploy = converters.convert_keras_model(model, representative_dataset=data.x_train[:200])
    report = converters.verify(model, deploy, data.x_test[:TEST_IMAGES], min_argmax_agreement=0.99)
    stem = report.ops[0]
    assert stem.op == "TFQP_CONV2D_INT8" and not stem.exact
    assert all(c.differing == 0 for c in report.ops if c.exact)
    flips = report.signs[0].differing + report.signs[0].ties
    assert flips <= report.signs[0].bits * 1e-5, report.signs[0]


def test_an_8_bit_uniform_stem_trained_on_its_deploy_grid_is_exact():
    """The README's fix for a float stem: an 8-bit symmetric Uniform kernel quantizer,
    so training sees the int8 codes the op deploys; then its signs are exact too."""
    import larq as lq
    import tensorflow as tf

    from bnn_models import BINARY, train
    from tfq_plus import quantizers as tq

    data = _data("mnist")
    tf.keras.utils.set_random_seed(0)
    inputs = tf.keras.Input(data.input_shape)
    x = lq.layers.QuantConv2D(16, 3, padding="same", use_bias=False,
                              kernel_quantizer=tq.Uniform(bits=8, symmetric=True, per_channel=True))(inputs)
    x = tf.keras.layers.MaxPool2D(2)(x)
    x = tf.keras.layers.BatchNormalization()(x)
    x = lq.layers.QuantConv2D(32, 3, padding="same", pad_values=1.0, **BINARY)(x)
    x = tf.keras.layers.BatchNormalization()(x)
    x = tf.keras.layers.Flatten()(x)
    x = lq.layers.QuantDense(data.num_classes, **BINARY)(x)
    x = tf.keras.layers.BatchNormalization()(x)
    model = train(tf.keras.Model(inputs, tf.keras.layers.Activation("softmax")(x)), data, samples=5000)
    stem = next(iter(converters.plan(model)))
    assert (stem.kernel.kind, stem.kernel.exact) == ("uniform", True)
    assert int(abs(stem.kernel.codes).max()) <= 127
    deploy = converters.convert_keras_model(model, representative_dataset=data.x_train[:200])
    report = converters.verify(model, deploy, data.x_test[:300], min_argmax_agreement=0.99)
    assert report.differing_signs == 0 and report.sign_ties == 0
