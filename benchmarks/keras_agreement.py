"""Keras vs deploy on the full test sets: how exactly the deploy models compute what
the Keras models compute, beside the stock int8 model (the baseline).

Trains each model (seeded), converts it once (deploy model with TFQP ops, and the
stock full-int8 reference), runs ``verify`` on every test image and prints one row
per model: accuracies (Keras, deploy, reference), argmax agreement of Keras with
the deploy model and with the reference, and the binarized activations of the
deploy model that differ from Keras's (float32 ties counted apart).

Models:
  demo      the README demo (examples/binary_mnist_to_mcu.py): float stem, binary blocks,
            2 epochs on all of MNIST
  bnn       a BNN whose first layer has a binary kernel on the int8 image, 1 epoch
            on 10,000 MNIST images (tests/bnn_models.py)
  fashion   the same on Fashion-MNIST
  bireal    Bi-Real-style shortcuts binarized again (int32 residual streams), 1 epoch
  student   a binary student distilled from a float teacher, 1 epoch

    python benchmarks/keras_agreement.py                 # every model, ~6 min on 2 cores
    python benchmarks/keras_agreement.py --only demo,bnn --markdown
"""

import argparse
import os
import sys
import time

import tfq_plus  # noqa: F401  (selects Keras 2 before TensorFlow is imported)

import tensorflow as tf

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests"))
sys.path.insert(0, os.path.join(HERE, "..", "examples"))

import bnn_models  # noqa: E402
import binary_mnist_to_mcu  # noqa: E402

from tfq_plus import converters, datasets  # noqa: E402

MODELS = ("demo", "bnn", "fashion", "bireal", "student")


def build(name):
    """(trained model, dataset)."""
    if name == "demo":
        data = datasets.load("mnist")
        tf.keras.utils.set_random_seed(0)
        model = binary_mnist_to_mcu.build_model(data.input_shape, data.num_classes)
        model.compile(optimizer=tf.keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy",
                      metrics=["accuracy"])
        model.fit(data.x_train, data.y_train, batch_size=128, epochs=2, validation_split=0.1, verbose=0)
        return model, data
    data = datasets.load("fashion_mnist" if name == "fashion" else "mnist")
    return bnn_models.build("bnn" if name == "fashion" else name, data), data


def measure(name, test_images):
    started = time.time()
    model, data = build(name)
    trained = time.time() - started
    deploy, reference = converters.convert_with_reference(model, representative_dataset=data.x_train[:200])
    count = min(test_images, len(data.x_test))
    report = converters.verify(model, deploy, data.x_test[:count], labels=data.y_test[:count],
                               reference=reference, min_argmax_agreement=None)
    return dict(
        model=name, dataset=data.name, images=count, train_s=trained,
        keras=report.keras_accuracy, deploy=report.deploy[0].accuracy, reference=report.reference[0].accuracy,
        agree_deploy=report.argmax_agreement, agree_reference=report.reference_argmax_agreement,
        signs=report.compared_signs, differing=report.differing_signs, ties=report.sign_ties,
        op_failures=sum(c.differing for c in report.ops if c.exact),
        rounded=sum(c.differing + c.ties for c in report.ops if not c.exact),
    ), report


def row(r, markdown):
    cells = [
        r["model"], r["dataset"], f"{r['images']}", f"{100 * r['keras']:.2f} %", f"{100 * r['deploy']:.2f} %",
        f"{100 * r['reference']:.2f} %", f"**{100 * r['agree_deploy']:.2f} %**" if markdown else
        f"{100 * r['agree_deploy']:.2f} %", f"{100 * r['agree_reference']:.2f} %",
        f"{r['differing']:,} / {r['signs']:,}", f"{r['ties']:,}", f"{r['rounded']:,}",
    ]
    return "| " + " | ".join(cells) + " |" if markdown else "  ".join(f"{c:>14}" for c in cells)


HEADER = ["model", "data", "test images", "Keras acc", "deploy acc", "reference acc",
          "Keras~deploy", "Keras~reference", "signs differing", "float32 ties", "rounded-kernel flips"]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default=",".join(MODELS), help=f"comma-separated subset of {MODELS}")
    parser.add_argument("--test-images", type=int, default=10_000)
    parser.add_argument("--markdown", action="store_true", help="print the README table")
    parser.add_argument("--verbose", action="store_true", help="print each verify report")
    args = parser.parse_args(argv)
    names = [n for n in args.only.split(",") if n]
    unknown = sorted(set(names) - set(MODELS))
    if unknown:
        parser.error(f"unknown models {unknown}; choose from {MODELS}")
    results = []
    for name in names:
        result, report = measure(name, args.test_images)
        results.append(result)
        if args.verbose:
            print(report)
        print(row(result, False), flush=True)
    print()
    if args.markdown:
        print("| " + " | ".join(HEADER) + " |")
        print("|" + "---|" * len(HEADER))
    else:
        print("  ".join(f"{h:>14}" for h in HEADER))
    for result in results:
        print(row(result, args.markdown))


if __name__ == "__main__":
    main()
