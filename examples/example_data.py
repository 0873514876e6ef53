"""Data and command-line options shared by the examples.

The options are parsed before TensorFlow is imported (this module imports it only
when loading data), so ``--help`` answers at once.

Offline by default: MNIST / Fashion-MNIST IDX files from ``TFQ_PLUS_DATA_DIR``
(``tfq_plus.datasets``; scikit-learn's 8x8 digits where that folder is missing).
``--use-tfds`` loads the same datasets through tensorflow-datasets instead, which
downloads them once (it needs internet the first time).
"""

import argparse
import os
import sys

# --quick: a couple of thousand images and one epoch, for a smoke run
QUICK_TRAIN_IMAGES = 4096
QUICK_TEST_IMAGES = 256
QUICK_VERIFY_SAMPLES = 100
# scikit-learn's 8x8 digits (the fallback without TFQ_PLUS_DATA_DIR) has 1,437 training
# images: an epoch is 40 times shorter than MNIST's
DIGITS_EPOCH_FACTOR = 10


def parser(description: str, default_out: str, default_epochs: int) -> argparse.ArgumentParser:
    """The options every example takes; an example adds its own."""
    result = argparse.ArgumentParser(description=description,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    result.add_argument("--dataset", default="auto",
                        help="mnist, fashion_mnist, digits (scikit-learn's 8x8) or auto (default): "
                             "MNIST where TFQ_PLUS_DATA_DIR holds it, else digits")
    result.add_argument("--use-tfds", action="store_true",
                        help="load --dataset (mnist or fashion_mnist) with tensorflow-datasets "
                             "(downloads it once: needs internet)")
    result.add_argument("--epochs", type=int, default=None,
                        help=f"training epochs (default {default_epochs}; "
                             f"{DIGITS_EPOCH_FACTOR * default_epochs} on the small 8x8 digits)")
    result.set_defaults(default_epochs=default_epochs)
    result.add_argument("--batch-size", type=int, default=128)
    result.add_argument("--seed", type=int, default=0)
    result.add_argument("--verify-samples", type=int, default=1000,
                        help="test images verify runs Keras and the deploy model on")
    result.add_argument("--min-agreement", type=float, default=0.99,
                        help="verify fails below this Keras vs deploy argmax agreement "
                             "(default %(default)s)")
    result.add_argument("--out", default=default_out, help="output folder (default %(default)s)")
    result.add_argument("--quick", action="store_true",
                        help=f"smoke run: {QUICK_TRAIN_IMAGES} training and {QUICK_TEST_IMAGES} "
                             f"test images, 1 epoch, verify on {QUICK_VERIFY_SAMPLES}")
    result.add_argument("--verbose", action="store_true", help="show TensorFlow's start-up logs")
    return result


def start(parser: argparse.ArgumentParser, argv=None):
    """Parse the options, then import tfq_plus (Keras 2, TensorFlow's start-up logs
    off the terminal unless --verbose), seed every generator and load the data.

    Returns:
        ``(args, data)``: the options and a ``tfq_plus.datasets.Dataset``.
    """
    args = parser.parse_args(argv)
    # tfq_plus reads this when it imports TensorFlow
    os.environ.setdefault("TFQ_PLUS_TF_LOGS", "show" if args.verbose else "hide")
    import tfq_plus  # noqa: F401  (selects Keras 2 before TensorFlow is imported)
    import tensorflow as tf

    tf.keras.utils.set_random_seed(args.seed)
    return args, load(args)


def _load_tfds(name: str):
    from tfq_plus import datasets

    try:
        import tensorflow_datasets as tfds
    except ImportError:
        sys.exit("--use-tfds: tensorflow_datasets is not installed (pip install tensorflow-datasets), "
                 f"or drop --use-tfds to read {datasets.DATA_DIR_ENV}")
    try:
        splits = tfds.as_numpy(tfds.load(name, split=["train", "test"], batch_size=-1,
                                          as_supervised=True))
    except Exception as error:  # tfds raises many kinds (network, checksum, disk)
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        sys.exit(f"--use-tfds: tensorflow-datasets could not load {name!r} ({first_line}); "
                 f"it downloads it once and needs internet for that; offline, drop --use-tfds "
                 f"and set {datasets.DATA_DIR_ENV} to a folder holding {name}/'s IDX files")
    (x_train, y_train), (x_test, y_test) = splits
    scale = lambda images: (images.astype("float32") / 255.0)  # noqa: E731  (as tfq_plus.datasets)
    return datasets.Dataset(name, scale(x_train), y_train.astype("int64"), scale(x_test),
                            y_test.astype("int64"))


def load(args):
    """The dataset ``args`` name, cut to the --quick size; sets ``args.epochs`` where
    not given (--quick: 1) and ``args.verify_samples`` for --quick. Returns a
    ``tfq_plus.datasets.Dataset``."""
    from tfq_plus import datasets

    if args.use_tfds:
        name = "mnist" if args.dataset == "auto" else args.dataset
        if name not in datasets.IDX_DATASETS:
            sys.exit(f"--use-tfds loads {' or '.join(datasets.IDX_DATASETS)}, not {name!r}")
        data = _load_tfds(name)
    else:
        try:
            data = datasets.load(args.dataset)
        except ValueError as error:
            sys.exit(f"{error} (or use --use-tfds with internet)")
    if args.epochs is None:
        factor = DIGITS_EPOCH_FACTOR if data.name == "digits" else 1
        args.epochs = 1 if args.quick else factor * args.default_epochs
    if args.quick:
        args.verify_samples = min(args.verify_samples, QUICK_VERIFY_SAMPLES)
        data = data._replace(x_train=data.x_train[:QUICK_TRAIN_IMAGES],
                             y_train=data.y_train[:QUICK_TRAIN_IMAGES],
                             x_test=data.x_test[:QUICK_TEST_IMAGES],
                             y_test=data.y_test[:QUICK_TEST_IMAGES])
    print(f"data: {data.name}, {len(data.x_train)} training and {len(data.x_test)} test images "
          f"of {'x'.join(map(str, data.input_shape))}", flush=True)
    return data

