"""The small MNIST CNN of the shift and k-bit examples, float or quantized.

    stem  Conv2D 32 3x3 -> BN -> act -> MaxPool   28x28 -> 14x14   (always float)
    conv2 Conv2D 32 3x3 -> BN -> act -> MaxPool   14x14 -> 7x7
    conv3 Conv2D 64 3x3 -> BN -> act -> MaxPool   7x7   -> 3x3
    fc1   Dense 64      -> BN -> act
    fc2   Dense 10      -> BN                      logits

Quantized, conv2, conv3, fc1 and fc2 are larq ``Quant*`` layers with the given
kernel (and optionally input) quantizer; the stem reads the image and stays float
(int8 on the device), as in the INQ, TTQ, PACT and LSQ papers. The usual recipe:
train the float model, copy its weights into the quantized one, fine-tune.
"""

from typing import Callable, Optional

import larq as lq
import tensorflow as tf

QUANTIZED_LAYERS = ("conv2", "conv3", "fc1", "fc2")


def build(name: str, kernel_quantizer: Optional[Callable[[], object]] = None,
          input_quantizer: Optional[Callable[[], object]] = None, activation: str = "relu",
          input_shape=(28, 28, 1), num_classes: int = 10) -> tf.keras.Model:
    """The CNN; ``kernel_quantizer`` / ``input_quantizer`` make a fresh quantizer per
    layer (quantizers with trained variables cannot be shared). Where the input
    quantizer is the activation (PACT, LSQ on inputs), pass ``activation="linear"``."""
    quantized = kernel_quantizer is not None or input_quantizer is not None

    def quantizers():
        return dict(kernel_quantizer=kernel_quantizer() if kernel_quantizer else None,
                    input_quantizer=input_quantizer() if input_quantizer else None)

    def conv(filters, layer_name):
        if quantized:
            return lq.layers.QuantConv2D(filters, 3, padding="same", use_bias=False,
                                         name=layer_name, **quantizers())
        return tf.keras.layers.Conv2D(filters, 3, padding="same", use_bias=False, name=layer_name)

    def dense(units, layer_name):
        if quantized:
            return lq.layers.QuantDense(units, use_bias=False, name=layer_name, **quantizers())
        return tf.keras.layers.Dense(units, use_bias=False, name=layer_name)

    def norm(layer_name):
        return tf.keras.layers.BatchNormalization(momentum=0.9, name=f"{layer_name}_bn")

    pool = input_shape[0] >= 16  # the 8x8 digits fallback keeps its resolution
    inputs = tf.keras.Input(input_shape)
    x = tf.keras.layers.Conv2D(32, 3, padding="same", use_bias=False, name="stem")(inputs)
    x = tf.keras.layers.Activation(activation)(norm("stem")(x))
    x = tf.keras.layers.MaxPool2D(2)(x) if pool else x
    for filters, layer_name in ((32, "conv2"), (64, "conv3")):
        x = conv(filters, layer_name)(x)
        x = tf.keras.layers.Activation(activation)(norm(layer_name)(x))
        x = tf.keras.layers.MaxPool2D(2)(x)
    x = tf.keras.layers.Flatten()(x)
    x = tf.keras.layers.Activation(activation)(norm("fc1")(dense(64, "fc1")(x)))
    outputs = norm("fc2")(dense(num_classes, "fc2")(x))
    return tf.keras.Model(inputs, outputs, name=name)


def copy_float_weights(source: tf.keras.Model, target: tf.keras.Model) -> None:
    """Kernels (into a quantized layer's latent weights) and batch-norm statistics, by
    layer name."""
    for layer in target.layers:
        if not layer.weights:
            continue
        original = source.get_layer(layer.name)
        if isinstance(layer, tf.keras.layers.BatchNormalization):
            layer.set_weights(original.get_weights())
        else:
            latent = getattr(layer.kernel, "latent_variable", layer.kernel)
            latent.assign(original.kernel)


def quantized_copy(float_model: tf.keras.Model, name: str, data, **quantization) -> tf.keras.Model:
    """``build(name, **quantization)`` for ``data``'s shapes, starting from
    ``float_model``'s weights (``copy_float_weights``)."""
    model = build(name, input_shape=data.input_shape, num_classes=data.num_classes, **quantization)
    copy_float_weights(float_model, model)
    return model


def compile_for_logits(model, learning_rate: float) -> None:
    model.compile(optimizer=tf.keras.optimizers.Adam(learning_rate),
                  loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])


def train_float(data, epochs: int, batch_size: int) -> tf.keras.Model:
    """The float model, trained (Adam 2e-3, Keras progress bars)."""
    model = build("float_cnn", input_shape=data.input_shape, num_classes=data.num_classes)
    compile_for_logits(model, 2e-3)
    print(f"float pre-training, {epochs} epoch(s)", flush=True)
    model.fit(data.x_train, data.y_train, batch_size=batch_size, epochs=epochs, verbose=1)
    return model


def fine_tune(model, data, epochs: int, batch_size: int, learning_rate: float = 5e-4,
              callbacks=()) -> float:
    """Fine-tune a quantized model (progress bars); returns its test accuracy."""
    compile_for_logits(model, learning_rate)
    model.fit(data.x_train, data.y_train, batch_size=batch_size, epochs=epochs, verbose=1,
              callbacks=list(callbacks))
    _, accuracy = model.evaluate(data.x_test, data.y_test, verbose=0)
    print(f"Keras test accuracy on all {len(data.x_test)} test images: {100 * accuracy:.2f} %")
    return accuracy
