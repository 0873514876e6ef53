"""Binary converter on a fully trained MNIST BNN: the two invariants and the sizes.

Trains the float-stem BNN of tests/test_converter_mnist.py on all of MNIST
(``TFQ_PLUS_DATA_DIR``), converts it, verifies it on the test images (per-op
bit-exactness, Keras vs reference vs deploy) and prints the report, then converts the
CIFAR-style BNN of the issue (untrained: its size does not depend on the weights).

    python benchmarks/converter_mnist.py [--epochs 3] [--test-images 1000]

Takes about 5 minutes on two cores.
"""

import argparse
import os
import sys
import time

import tfq_plus  # noqa: F401  (selects Keras 2 before TensorFlow is imported)

import numpy as np
import tensorflow as tf

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
from test_converter_mnist import LCE_CIFAR_BYTES, cifar_bnn, mnist_bnn  # noqa: E402

from tfq_plus import converters  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--test-images", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    data = tfq_plus.datasets.load("mnist")
    tf.keras.utils.set_random_seed(args.seed)
    model = mnist_bnn()
    model.compile(optimizer=tf.keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    start = time.time()
    model.fit(data.x_train, data.y_train, batch_size=128, epochs=args.epochs, verbose=2)
    print(f"trained in {time.time() - start:.0f} s")

    start = time.time()
    deploy, reference = converters.convert_with_reference(model, representative_dataset=data.x_train[-200:])
    print(f"converted in {time.time() - start:.1f} s: reference {len(reference)} B, deploy {len(deploy)} B")
    count = args.test_images
    start = time.time()
    result = converters.verify(model, deploy, reference, data.x_test[:count], labels=data.y_test[:count],
                               min_argmax_agreement=None)
    print(f"verified in {time.time() - start:.1f} s")
    print(result)
    print(converters.report(deploy, reference=reference))

    cifar = cifar_bnn()
    rng = np.random.default_rng(0)
    cifar_deploy = converters.convert_keras_model(
        cifar, representative_dataset=rng.uniform(0, 1, (8, 32, 32, 3)).astype(np.float32)
    )
    print(f"CIFAR-style BNN: deploy {len(cifar_deploy)} B (larq-compute-engine: {LCE_CIFAR_BYTES} B)")


if __name__ == "__main__":
    main()
