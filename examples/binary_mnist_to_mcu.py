"""Binarized CNN on MNIST -> a folder ready for a microcontroller's firmware.

Train a BNN (larq layers: binary weights and activations, a float stem on the
image), convert it to TFLite with TFQP ops (``convert_with_reference``: the deploy
model and the stock int8 model as a baseline), verify the deploy model against
Keras (every weight, every TFQP op on its own input, every binarized activation, the
outputs), write it as a C array with its op-resolver header, and report flash,
arena and MACs. ``bash run.sh demo`` runs this script.

    python examples/binary_mnist_to_mcu.py                 # 2 epochs on MNIST, ~5 min on 2 cores
    python examples/binary_mnist_to_mcu.py --quick         # 4096 images, 1 epoch: a smoke run
    python examples/binary_mnist_to_mcu.py --use-tfds      # MNIST from tensorflow-datasets

The folder (``--out``, default out/binary_mnist) then holds model.h5, deploy.tflite,
reference.tflite, binary_cnn.h / .cc / _op_resolver.h, test.npz, verify.txt,
report.txt and report.png. Into a Cortex-M4 image (README, "Firmware example"):

    python micro/examples/cortex_m4/firmware_inputs.py sample out/binary_mnist/deploy.tflite \
        out/binary_mnist/test.npz -o out/binary_mnist/sample.h
    make -C micro/examples/cortex_m4 TFLM_DIR=/path/to/tflite-micro \
        MODEL_DIR=$PWD/out/binary_mnist MODEL=binary_cnn run
"""

import example_data  # (options first, TensorFlow later: --help answers at once)


def build_model(input_shape, num_classes):
    """Float stem, binary conv blocks (larq), binary classifier: the usual BNN recipe."""
    import tfq_plus  # noqa: F401  (selects Keras 2 before TensorFlow is imported)
    import larq as lq
    import tensorflow as tf

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
    parser = example_data.parser(__doc__, "out/binary_mnist", default_epochs=2)
    args, data = example_data.start(parser, argv)
    import larq as lq
    import tensorflow as tf
    from deploy_folder import deploy_to_folder

    model = build_model(data.input_shape, data.num_classes)
    model.compile(optimizer=tf.keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    lq.models.summary(model)
    model.fit(data.x_train, data.y_train, batch_size=args.batch_size, epochs=args.epochs,
              validation_split=0.1, verbose=1)
    _, accuracy = model.evaluate(data.x_test, data.y_test, verbose=0)
    print(f"Keras test accuracy on all {len(data.x_test)} test images: {100 * accuracy:.2f} %")

    deploy_to_folder(model, data, args.out, "binary_cnn", verify_samples=args.verify_samples,
                     min_agreement=args.min_agreement)


if __name__ == "__main__":
    main()
