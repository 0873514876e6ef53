"""Inputs of the Cortex-M4 firmware example: a trained binary model, and test images.

    python firmware_inputs.py train OUT_DIR [--epochs 2] [--dataset auto] [--arch bnn]
        trains a small binarized CNN on the offline data (MNIST from TFQ_PLUS_DATA_DIR,
        else scikit-learn's 8x8 digits) and writes OUT_DIR/model.h5,
        OUT_DIR/calibration.npz (x: 64 training images) and OUT_DIR/test.npz (x, y);
        ``--arch small_bnn`` is a 98 k-weight BNN (for --dataset fashion_mnist)
    python firmware_inputs.py sample MODEL.tflite TEST.npz -o sample.h [--index 0] [--count 1]
        writes test images index .. index + count - 1 as the model's int8 input codes,
        with their labels

Between the two: ``tfq-plus convert OUT_DIR/model.h5 --calibration
OUT_DIR/calibration.npz -o OUT_DIR/mnist_bnn.tflite --c-array OUT_DIR --name mnist_bnn``.
"""

import argparse
import os
import sys

import tfq_plus  # noqa: F401  (selects Keras 2 before TensorFlow is imported)

import numpy as np


# larq's binarized layers: sign of the input and of the kernel, clipped latent weights
BINARY = dict(input_quantizer="ste_sign", kernel_quantizer="ste_sign",
              kernel_constraint="weight_clip", use_bias=False)


def binary_classifier(x, hidden, num_classes):
    """Flatten, a binary dense layer of ``hidden`` units and one of ``num_classes``
    (each with its batch norm), softmax."""
    import larq as lq
    import tensorflow as tf

    x = tf.keras.layers.Flatten()(x)
    x = lq.layers.QuantDense(hidden, **BINARY)(x)
    x = tf.keras.layers.BatchNormalization(scale=False)(x)
    x = lq.layers.QuantDense(num_classes, **BINARY)(x)
    x = tf.keras.layers.BatchNormalization(scale=False)(x)
    return tf.keras.layers.Activation("softmax")(x)


def build_model(input_shape, num_classes):
    """A full-precision stem (a Keras Conv2D on the image; converted, an int8-input
    TFQP_CONV2D_INT8 with packed sign output, or an int8 CONV_2D in the reference),
    binary conv blocks with a binary max-pool between them, binary dense layers:
    every TFQP op (int8 and packed inputs and outputs) in a few kilobytes."""
    import larq as lq
    import tensorflow as tf

    stride = 2 if input_shape[0] >= 16 else 1
    inputs = tf.keras.Input(input_shape)
    x = tf.keras.layers.Conv2D(32, 3, strides=stride, padding="same", use_bias=False)(inputs)
    x = tf.keras.layers.BatchNormalization(scale=False)(x)
    x = lq.layers.QuantConv2D(32, 3, padding="same", pad_values=1.0, **BINARY)(x)
    x = tf.keras.layers.BatchNormalization(scale=False)(x)
    x = tf.keras.layers.MaxPool2D(2)(x)
    x = lq.layers.QuantConv2D(64, 3, padding="same", pad_values=1.0, **BINARY)(x)
    x = tf.keras.layers.BatchNormalization(scale=False)(x)
    return tf.keras.Model(inputs, binary_classifier(x, 128, num_classes), name="firmware_bnn")


def build_small_model(input_shape, num_classes):
    """A BNN of about 98 k weights (28x28 inputs), the size MCU users deploy: a
    full-precision stem of 16 channels, three binary convs each followed by a binary
    max-pool, two binary dense layers."""
    import larq as lq
    import tensorflow as tf

    inputs = tf.keras.Input(input_shape)
    x = tf.keras.layers.Conv2D(16, 3, padding="same", use_bias=False)(inputs)
    x = tf.keras.layers.BatchNormalization(scale=False)(x)
    for channels in (32, 64, 64):
        x = lq.layers.QuantConv2D(channels, 3, padding="same", pad_values=1.0, **BINARY)(x)
        x = tf.keras.layers.BatchNormalization(scale=False)(x)
        x = tf.keras.layers.MaxPool2D(2)(x)
    return tf.keras.Model(inputs, binary_classifier(x, 64, num_classes),
                          name="firmware_small_bnn")


ARCHITECTURES = {"bnn": build_model, "small_bnn": build_small_model}


def train(args) -> int:
    import tensorflow as tf

    from tfq_plus import datasets

    data = datasets.load(args.dataset)
    tf.keras.utils.set_random_seed(0)
    model = ARCHITECTURES[args.arch](data.input_shape, data.num_classes)
    model.compile(tf.keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    model.fit(data.x_train, data.y_train, batch_size=128, epochs=args.epochs, verbose=2)
    _, accuracy = model.evaluate(data.x_test, data.y_test, verbose=0)
    os.makedirs(args.out_dir, exist_ok=True)
    model.save(os.path.join(args.out_dir, "model.h5"))
    np.savez(os.path.join(args.out_dir, "calibration.npz"), x=data.x_train[:64])
    np.savez(os.path.join(args.out_dir, "test.npz"), x=data.x_test, y=data.y_test)
    print(f"{data.name}: {model.count_params():,} parameters, test accuracy {accuracy:.4f}; "
          f"wrote model.h5, calibration.npz, test.npz to {args.out_dir}")
    return 0


def input_codes(model_path, images):
    """``images`` (float, the training scale) as the int8 input codes of the converted
    model at ``model_path`` (its input tensor's scale and zero point, rounded half away
    from zero as TFLite's quantizer does); raises ValueError when the input is not int8."""
    from tfq_plus.converters import tflite_schema as schema

    with open(model_path, "rb") as stream:
        model = schema.read(stream.read())
    graph = model.subgraphs[0]
    tensor = graph.tensors[graph.inputs[0]]
    if tensor.type != schema.TensorType.INT8:
        raise ValueError("firmware_inputs: the model's input must be int8 "
                         "(tfq-plus convert's default)")
    scale, zero_point = schema.per_tensor_quantization(tensor)
    scaled = np.asarray(images, np.float64) / scale
    codes = np.clip(np.sign(scaled) * np.floor(np.abs(scaled) + 0.5) + zero_point, -128, 127)
    return codes.astype(np.int8), float(scale), int(zero_point)


def sample_header(codes, labels, source: str) -> str:
    """sample.h: ``sample_inputs[count][bytes]`` (int8 codes), ``sample_labels[count]``."""
    count = len(codes)
    flat = codes.reshape(count, -1)
    images = []
    for image in flat:
        rows = [", ".join(str(int(v)) for v in image[i:i + 16]) for i in range(0, len(image), 16)]
        images.append("  {\n    " + ",\n    ".join(rows) + "}")
    return (f"// Generated by firmware_inputs.py: {source}\n"
            "// as the int8 input codes of the model, with their labels.\n"
            "#ifndef FIRMWARE_SAMPLE_H_\n#define FIRMWARE_SAMPLE_H_\n\n#include <stdint.h>\n\n"
            f"static const int sample_count = {count};\n"
            f"static const unsigned int sample_input_bytes = {flat.shape[1]};\n"
            f"static const int8_t sample_inputs[{count}][{flat.shape[1]}] = {{\n"
            + ",\n".join(images)
            + "};\n"
            f"static const int sample_labels[{count}] = {{"
            + ", ".join(str(int(label)) for label in labels)
            + "};\n\n#endif  // FIRMWARE_SAMPLE_H_\n")


def sample(args) -> int:
    if args.count < 1:
        print("firmware_inputs: --count must be at least 1", file=sys.stderr)
        return 1
    with np.load(args.test) as data:
        stop = args.index + args.count
        if args.index < 0 or stop > len(data["y"]):
            print(f"firmware_inputs: images {args.index}..{stop - 1} are not all in {args.test} "
                  f"({len(data['y'])} images)", file=sys.stderr)
            return 1
        images, labels = data["x"][args.index:stop], data["y"][args.index:stop]
    try:
        codes, _, _ = input_codes(args.model, images)
    except ValueError as error:
        print(error, file=sys.stderr)
        return 1
    source = f"test images {args.index}..{stop - 1} of {args.test}"
    with open(args.output, "w", encoding="ascii") as stream:
        stream.write(sample_header(codes, labels, source))
    print(f"wrote {args.output} (labels {', '.join(str(int(v)) for v in labels)})")
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser("train", help="train and save the example model")
    p.add_argument("out_dir")
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--dataset", default="auto", choices=("auto", "mnist", "fashion_mnist", "digits"))
    p.add_argument("--arch", default="bnn", choices=sorted(ARCHITECTURES))
    p.set_defaults(run=train)
    p = commands.add_parser("sample", help="write one test image as sample.h")
    p.add_argument("model", help="the converted .tflite (its input quantization is used)")
    p.add_argument("test", help="test.npz from `train`")
    p.add_argument("-o", "--output", required=True)
    p.add_argument("--index", type=int, default=0, help="the first test image")
    p.add_argument("--count", type=int, default=1, help="how many test images")
    p.set_defaults(run=sample)
    args = parser.parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
