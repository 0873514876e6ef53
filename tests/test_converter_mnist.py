"""The real-data checks of the binary converter (slow but run: about a minute).

- A binary MNIST CNN trained for real converts with one TFQP op per binary layer;
  verify() passes on 400 test images (every op against Keras on its own input);
  Keras-vs-deploy argmax agreement >= 99 % and deploy test accuracy within 0.5
  points of Keras; the binary layers' weights are >= 6x smaller than in the int8
  reference, which runs in TFLite Micro.
- Size against larq-compute-engine: the CIFAR-style BNN deploys in <= 178,812 bytes
  (what LCE produces for it), and a binary QuantDense(256) on 1024 inputs deploys
  with packed weights (LCE leaves it float: 1.06 MB).
"""

import larq as lq
import pytest
import tensorflow as tf
from tensorflow.lite.python import schema_py_generated as fb

import tfq_plus
from test_converter_models import BINARY, randomize_batch_norms, samples

from tfq_plus import converters

LCE_CIFAR_BYTES = 178_812


def mnist_bnn():
    """Float stem, binary blocks in larq's order (QuantConv2D -> MaxPool -> BatchNorm)."""
    inputs = tf.keras.Input((28, 28, 1))
    x = tf.keras.layers.Conv2D(16, 3, strides=2, padding="same", use_bias=False)(inputs)
    x = tf.keras.layers.BatchNormalization(momentum=0.9, scale=False)(x)
    x = lq.layers.QuantConv2D(32, 3, padding="same", pad_values=1.0, **BINARY)(x)
    x = tf.keras.layers.MaxPool2D(2)(x)
    x = tf.keras.layers.BatchNormalization(momentum=0.9, scale=False)(x)
    x = lq.layers.QuantConv2D(64, 3, padding="same", pad_values=1.0, **BINARY)(x)
    x = tf.keras.layers.MaxPool2D(2)(x)
    x = tf.keras.layers.BatchNormalization(momentum=0.9, scale=False)(x)
    x = tf.keras.layers.Flatten()(x)
    x = lq.layers.QuantDense(128, **BINARY)(x)
    x = tf.keras.layers.BatchNormalization(momentum=0.9, scale=False)(x)
    x = lq.layers.QuantDense(10, **BINARY)(x)
    x = tf.keras.layers.BatchNormalization(momentum=0.9, scale=False)(x)
    outputs = tf.keras.layers.Activation("softmax")(x)
    return tf.keras.Model(inputs, outputs, name="mnist_bnn")


def weight_bytes(flatbuffer: bytes, ops, skip_first=False):
    """Constant bytes (weights, bias / per-channel transform) of the given ops."""
    model = fb.ModelT.InitFromObj(fb.Model.GetRootAsModel(bytearray(flatbuffer), 0))
    graph = model.subgraphs[0]
    total = 0
    for index, op in enumerate(graph.operators):
        code = model.operatorCodes[op.opcodeIndex]
        name = code.customCode.decode() if code.customCode else max(code.builtinCode, code.deprecatedBuiltinCode)
        if name not in ops or (skip_first and index == 0):
            continue
        for tensor in list(op.inputs)[1:]:
            data = model.buffers[graph.tensors[tensor].buffer].data if tensor >= 0 else None
            total += 0 if data is None else len(data)
    return total


def test_trained_binary_mnist_cnn_deploys_smaller_and_agrees_with_keras():
    try:
        data = tfq_plus.datasets.load("mnist")
    except ValueError as error:
        pytest.skip(f"MNIST not available: {error}")
    tf.keras.utils.set_random_seed(0)
    model = mnist_bnn()
    model.compile(optimizer=tf.keras.optimizers.Adam(0.005), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    model.fit(data.x_train[:15000], data.y_train[:15000], batch_size=64, epochs=2, verbose=0)

    deploy, reference = converters.convert_with_reference(model, representative_dataset=data.x_train[-200:])
    result = converters.verify(model, deploy, data.x_test[:400], labels=data.y_test[:400],
                               reference=reference, min_argmax_agreement=0.99)
    print(result)
    print(converters.report(deploy, reference=reference))

    binary_ops = [c for c in result.ops if c.op in ("TFQP_BCONV2D", "TFQP_BFULLY_CONNECTED")]
    assert len(binary_ops) == 4
    assert abs(result.deploy[0].accuracy - result.keras_accuracy) <= 0.005
    assert result.keras_accuracy > 0.9

    # the binary layers: int8 weights + int32 bias vs packed weights + int32 transform
    # (op 0, the float stem, is an int8 CONV_2D in the reference, TFQP_CONV2D_INT8 here)
    reference_weights = weight_bytes(
        reference, (fb.BuiltinOperator.CONV_2D, fb.BuiltinOperator.FULLY_CONNECTED), skip_first=True
    )
    deploy_weights = weight_bytes(deploy, ("TFQP_BCONV2D", "TFQP_BFULLY_CONNECTED"))
    print(f"binary layers' weights: reference {reference_weights} B, deploy {deploy_weights} B")
    assert reference_weights >= 6 * deploy_weights
    assert converters.report(reference).arena_bytes > 0  # runs in TFLite Micro


def cifar_bnn():
    inputs = tf.keras.Input((32, 32, 3))
    x = tf.keras.layers.Conv2D(64, 3, padding="same", use_bias=False)(inputs)
    x = tf.keras.layers.BatchNormalization(momentum=0.9, scale=False)(x)
    for block in (64, 64, "pool", 128, 128, "pool", 256, 256, "pool"):
        if block == "pool":
            x = tf.keras.layers.MaxPool2D(2)(x)
            continue
        x = lq.layers.QuantConv2D(block, 3, padding="same", pad_values=1.0, **BINARY)(x)
        x = tf.keras.layers.BatchNormalization(momentum=0.9, scale=False)(x)
    x = tf.keras.layers.GlobalAveragePooling2D()(x)
    outputs = tf.keras.layers.Dense(10)(x)
    return randomize_batch_norms(tf.keras.Model(inputs, outputs, name="cifar_bnn"), seed=3)


def test_cifar_style_bnn_is_no_larger_than_larq_compute_engine():
    model = cifar_bnn()
    deploy = converters.convert_keras_model(model, representative_dataset=samples(model, 8))
    print(f"CIFAR-style BNN deploy: {len(deploy)} bytes (LCE: {LCE_CIFAR_BYTES})")
    assert len(deploy) <= LCE_CIFAR_BYTES


def test_binary_dense_1024_to_256_deploys_packed():
    inputs = tf.keras.Input((1024,))
    x = lq.layers.QuantDense(256, **BINARY)(inputs)
    outputs = tf.keras.layers.BatchNormalization()(x)
    model = randomize_batch_norms(tf.keras.Model(inputs, outputs), seed=4)
    deploy = converters.convert_keras_model(model, representative_dataset=samples(model, 8))
    # packed weights + the int8-output transform (W, bias, multiplier, shift) per channel
    assert weight_bytes(deploy, ("TFQP_BFULLY_CONNECTED",)) == 256 * 1024 // 8 + 256 * 4 * 4
    assert len(deploy) < 40_000  # float: 1.06 MB
