"""Train a binarized CNN, convert it to TFLite with TFQP ops, verify it, emit a C array.

Data: MNIST from ``TFQ_PLUS_DATA_DIR`` where present, else scikit-learn's bundled 8x8
digits. The whole user path: train (larq layers, binary weights and activations) ->
``convert_with_reference`` (the deploy model with TFQP ops, and the stock int8
reference as a baseline) -> ``verify`` (the deploy model against Keras: weights, every
TFQP op, every binarized activation, the outputs) -> ``report`` -> C array for
TFLite Micro.

    python examples/train_binary.py [--epochs N] [--dataset mnist|fashion_mnist|digits]
                                    [--out DIR] [--verbose]
"""

import argparse
import os
import pathlib
import sys

# TensorFlow's start-up logs stay off the terminal unless --verbose (tfq_plus reads
# this when it imports TensorFlow)
os.environ.setdefault("TFQ_PLUS_TF_LOGS", "show" if "--verbose" in sys.argv else "hide")
import tfq_plus  # noqa: E402  (selects Keras 2 before TensorFlow is imported)

import larq as lq
import numpy as np
import tensorflow as tf


def build_model(input_shape, num_classes):
    """Float stem, binary conv blocks (larq), float classifier: the usual BNN recipe."""
    binary = dict(
        input_quantizer="ste_sign",
        kernel_quantizer="ste_sign",
        kernel_constraint="weight_clip",
        use_bias=False,
    )
    small = input_shape[0] < 16
    inputs = tf.keras.Input(input_shape)
    x = tf.keras.layers.Conv2D(32, 3, padding="same", use_bias=False)(inputs)
    if not small:  # 28x28 inputs: a cheap float stride-2 stage keeps the demo fast
        x = tf.keras.layers.MaxPool2D(2)(x)
    x = tf.keras.layers.BatchNormalization(momentum=0.9, scale=False)(x)
    x = lq.layers.QuantConv2D(64, 3, padding="same", pad_values=1.0, **binary)(x)
    x = tf.keras.layers.MaxPool2D(2)(x)
    x = tf.keras.layers.BatchNormalization(momentum=0.9, scale=False)(x)
    x = lq.layers.QuantConv2D(64, 3, padding="same", pad_values=1.0, **binary)(x)
    if not small:
        x = tf.keras.layers.MaxPool2D(2)(x)
    x = tf.keras.layers.BatchNormalization(momentum=0.9, scale=False)(x)
    x = tf.keras.layers.Flatten()(x)
    x = lq.layers.QuantDense(128, **binary)(x)
    x = tf.keras.layers.BatchNormalization(momentum=0.9, scale=False)(x)
    x = lq.layers.QuantDense(num_classes, **binary)(x)
    x = tf.keras.layers.BatchNormalization(momentum=0.9, scale=False)(x)
    outputs = tf.keras.layers.Activation("softmax")(x)
    return tf.keras.Model(inputs, outputs, name="binary_cnn")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="auto", choices=tfq_plus.datasets.ALL_DATASETS + ("auto",))
    parser.add_argument("--epochs", type=int, default=None, help="default: 2 (MNIST) / 30 (digits)")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="out/binary_cnn", help="folder for .tflite files and the C array")
    parser.add_argument("--verify-samples", type=int, default=300)
    parser.add_argument("--verbose", action="store_true", help="show TensorFlow's start-up logs")
    args = parser.parse_args(argv)

    tf.keras.utils.set_random_seed(args.seed)
    data = tfq_plus.datasets.load(args.dataset)
    epochs = args.epochs or (30 if data.name == "digits" else 2)
    print(f"dataset: {data.name}  train {data.x_train.shape}  test {data.x_test.shape}")

    model = build_model(data.input_shape, data.num_classes)
    model.compile(
        optimizer=tf.keras.optimizers.Adam(1e-3),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    lq.models.summary(model)
    model.fit(
        data.x_train, data.y_train, batch_size=args.batch_size, epochs=epochs,
        validation_split=0.1, verbose=2,
    )
    _, accuracy = model.evaluate(data.x_test, data.y_test, verbose=0)
    predicted = np.argmax(model.predict(data.x_test, verbose=0), axis=1)
    assert np.isclose(np.mean(predicted == data.y_test), accuracy, atol=1e-6)
    print(f"test accuracy ({data.name}, binary weights and activations): {accuracy:.4f}")

    # Convert: calibration data for the float layers comes from the training set.
    from tfq_plus import converters

    calibration = data.x_train[:200]
    deploy, reference = converters.convert_with_reference(model, representative_dataset=calibration)
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "deploy.tflite").write_bytes(deploy)
    (out / "reference.tflite").write_bytes(reference)
    print(f"deploy model: {len(deploy)} bytes (reference int8 model: {len(reference)} bytes)")

    # Check: the weights and every TFQP op against Keras (raises on any difference);
    # every binarized activation and the outputs end to end, Keras vs deploy (and Keras
    # vs the stock int8 reference, for comparison). The argmax bound is reported here
    # rather than enforced: the float stem's kernel is rounded to int8 (a grid Keras
    # never saw), and on the tiny 8x8 digits fallback its few flipped signs weigh more.
    count = min(args.verify_samples, len(data.x_test))
    result = converters.verify(
        model, deploy, data.x_test[:count], labels=data.y_test[:count], reference=reference,
        min_argmax_agreement=None,
    )
    print(result)
    verdict = "meets" if result.argmax_agreement >= 0.99 else "MISSES"
    print(f"Keras vs deploy argmax agreement {100 * result.argmax_agreement:.2f} % {verdict} the 99 % bound "
          f"(stock int8 reference: {100 * result.reference_argmax_agreement:.2f} %)")
    print(converters.report(deploy, reference=reference))
    written = converters.write_c_array(deploy, out / "c_array", "binary_cnn")
    print("C array for TFLite Micro:", ", ".join(str(p) for p in written))
    return model, data


if __name__ == "__main__":
    main()
