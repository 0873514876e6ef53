"""Small trained binary networks for the converter's exactness tests.

Every binarized layer of these models has a kernel on a trained grid (binary
weights, including the first layer, whose input is the int8 image): their deploy
models must binarize exactly as Keras does. Training is seeded and short (one
epoch on a slice of the training set) so a test builds one in seconds.
"""

import larq as lq
import numpy as np
import tensorflow as tf

import tfq_plus

BINARY = dict(input_quantizer="ste_sign", kernel_quantizer="ste_sign",
              kernel_constraint="weight_clip", use_bias=False)
BINARY_KERNEL = dict(kernel_quantizer="ste_sign", kernel_constraint="weight_clip", use_bias=False)


def bnn(input_shape, classes, name="bnn"):
    """Binary stem on the int8 image (binary kernel, real inputs), binary blocks,
    binary classifier: every layer's kernel on a trained grid."""
    inputs = tf.keras.Input(input_shape)
    x = lq.layers.QuantConv2D(32, 3, padding="same", **BINARY_KERNEL)(inputs)
    x = tf.keras.layers.MaxPool2D(2)(x)
    x = tf.keras.layers.BatchNormalization(momentum=0.9)(x)
    x = lq.layers.QuantConv2D(64, 3, padding="same", pad_values=1.0, **BINARY)(x)
    x = tf.keras.layers.MaxPool2D(2)(x)
    x = tf.keras.layers.BatchNormalization(momentum=0.9)(x)
    x = lq.layers.QuantConv2D(64, 3, padding="same", pad_values=1.0, **BINARY)(x)
    x = tf.keras.layers.BatchNormalization(momentum=0.9)(x)
    x = tf.keras.layers.Flatten()(x)
    x = lq.layers.QuantDense(128, **BINARY)(x)
    x = tf.keras.layers.BatchNormalization(momentum=0.9)(x)
    x = lq.layers.QuantDense(classes, **BINARY)(x)
    x = tf.keras.layers.BatchNormalization(momentum=0.9)(x)
    outputs = tf.keras.layers.Activation("softmax")(x)
    return tf.keras.Model(inputs, outputs, name=name)


def bireal(input_shape, classes, name="bireal", width=32):
    """Bi-Real Net style: real-valued shortcuts around binary convolutions, whose
    sums are binarized again (a residual stream)."""
    inputs = tf.keras.Input(input_shape)
    x = lq.layers.QuantConv2D(width, 3, strides=2, padding="same", **BINARY_KERNEL)(inputs)
    x = tf.keras.layers.BatchNormalization(momentum=0.9)(x)
    for _ in range(2):
        y = lq.layers.QuantConv2D(width, 3, padding="same", pad_values=1.0, **BINARY)(x)
        y = tf.keras.layers.BatchNormalization(momentum=0.9)(y)
        x = tf.keras.layers.Add()([x, y])
    x = lq.layers.QuantConv2D(64, 3, strides=2, padding="same", pad_values=1.0, **BINARY)(x)
    x = tf.keras.layers.BatchNormalization(momentum=0.9)(x)
    x = tf.keras.layers.Flatten()(x)
    x = lq.layers.QuantDense(classes, **BINARY)(x)
    x = tf.keras.layers.BatchNormalization(momentum=0.9)(x)
    outputs = tf.keras.layers.Activation("softmax")(x)
    return tf.keras.Model(inputs, outputs, name=name)


def float_teacher(input_shape, classes):
    inputs = tf.keras.Input(input_shape)
    x = tf.keras.layers.Conv2D(16, 3, strides=2, activation="relu")(inputs)
    x = tf.keras.layers.Flatten()(x)
    outputs = tf.keras.layers.Dense(classes)(x)
    return tf.keras.Model(inputs, outputs, name="teacher")


def train(model, data, *, samples=10_000, epochs=1, seed=0, batch_size=64):
    tf.keras.utils.set_random_seed(seed)
    model.compile(optimizer=tf.keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    model.fit(data.x_train[:samples], data.y_train[:samples], epochs=epochs, batch_size=batch_size,
              verbose=0, shuffle=False)
    return model


def distilled_student(data, *, samples=10_000, seed=0):
    """A binary student distilled (Hinton KD) from a float teacher trained first."""
    from tfq_plus.distillation import Distiller

    tf.keras.utils.set_random_seed(seed)
    teacher = float_teacher(data.input_shape, data.num_classes)
    teacher.compile(optimizer="adam",
                    loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    teacher.fit(data.x_train[:samples], data.y_train[:samples], epochs=1, batch_size=64, verbose=0,
                shuffle=False)
    student = bnn(data.input_shape, data.num_classes, name="student")
    distiller = Distiller(student, teacher, temperature=4.0, alpha=0.7)
    distiller.compile(optimizer=tf.keras.optimizers.Adam(1e-3))
    distiller.fit(data.x_train[:samples], data.y_train[:samples], epochs=1, batch_size=64, verbose=0,
                  shuffle=False)
    return student


def build(kind: str, data, **kwargs):
    """A trained model by name: "bnn", "bireal", "student"."""
    if kind == "student":
        return distilled_student(data, **kwargs)
    builder = {"bnn": bnn, "bireal": bireal}[kind]
    tf.keras.utils.set_random_seed(kwargs.get("seed", 0))
    return train(builder(data.input_shape, data.num_classes), data, **kwargs)
