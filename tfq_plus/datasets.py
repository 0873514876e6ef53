"""Offline image-classification data for examples, tests and benchmarks.

Reads the original MNIST / Fashion-MNIST IDX files (gzip-compressed, as distributed)
from the folder named by ``TFQ_PLUS_DATA_DIR``; where that holds nothing, falls back
to scikit-learn's bundled 8x8 digits, which ship with scikit-learn and need no
network. Nothing here downloads anything.
"""

import gzip
import os
import pathlib
from typing import NamedTuple, Optional

import numpy as np

DATA_DIR_ENV = "TFQ_PLUS_DATA_DIR"
IDX_DATASETS = ("mnist", "fashion_mnist")
ALL_DATASETS = IDX_DATASETS + ("digits",)

_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


class Dataset(NamedTuple):
    """Images as float32 in [0, 1] with a trailing channel axis, labels as int64."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray

    @property
    def num_classes(self) -> int:
        return int(max(self.y_train.max(), self.y_test.max())) + 1

    @property
    def input_shape(self):
        return self.x_train.shape[1:]


def read_idx(path) -> np.ndarray:
    """Read one IDX file (optionally gzip-compressed) into a numpy array.

    IDX: two zero bytes, a type byte, a dimension count byte, one big-endian int32
    per dimension, then the raw data in row-major order.
    """
    path = pathlib.Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as stream:
        raw = stream.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise ValueError(f"{path}: not an IDX file (bad magic {raw[:4]!r})")
    type_code, ndim = raw[2], raw[3]
    if type_code not in _IDX_DTYPES:
        raise ValueError(f"{path}: unknown IDX element type 0x{type_code:02x}")
    header = 4 + 4 * ndim
    shape = tuple(int(d) for d in np.frombuffer(raw[4:header], dtype=">i4"))
    dtype = np.dtype(_IDX_DTYPES[type_code])
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(raw) - header != expected:
        raise ValueError(
            f"{path}: IDX header promises {shape} ({expected} bytes) but the file holds "
            f"{len(raw) - header} bytes of data"
        )
    return np.frombuffer(raw[header:], dtype=dtype).reshape(shape)


def data_dir() -> Optional[pathlib.Path]:
    """The folder named by ``TFQ_PLUS_DATA_DIR``, or None if unset."""
    value = os.environ.get(DATA_DIR_ENV)
    return pathlib.Path(value) if value else None


def _idx_files(folder: pathlib.Path):
    names = {
        "x_train": "train-images-idx3-ubyte",
        "y_train": "train-labels-idx1-ubyte",
        "x_test": "t10k-images-idx3-ubyte",
        "y_test": "t10k-labels-idx1-ubyte",
    }
    files = {}
    for key, stem in names.items():
        for candidate in (folder / (stem + ".gz"), folder / stem):
            if candidate.is_file():
                files[key] = candidate
                break
    return files


def available(name: str) -> bool:
    """Whether ``name`` can be loaded without a network."""
    if name == "digits":
        return True
    root = data_dir()
    return root is not None and len(_idx_files(root / name)) == 4


def _load_idx(name: str) -> Dataset:
    root = data_dir()
    files = _idx_files(root / name)
    arrays = {key: read_idx(path) for key, path in files.items()}
    scale = lambda images: (images.astype(np.float32) / 255.0)[..., np.newaxis]  # noqa: E731
    return Dataset(
        name,
        scale(arrays["x_train"]),
        arrays["y_train"].astype(np.int64),
        scale(arrays["x_test"]),
        arrays["y_test"].astype(np.int64),
    )


def _load_digits() -> Dataset:
    from sklearn.datasets import load_digits

    digits = load_digits()
    # The 17 gray levels 0..16 on the 8-bit grid k/255 of MNIST's pixels, so a model's
    # int8 input (scale 1/255 for [0, 1]) holds every pixel exactly, as it does MNIST's.
    levels = np.round(digits.images * (255.0 / 16.0)).astype(np.float32) / np.float32(255.0)
    images = levels[..., np.newaxis]
    labels = digits.target.astype(np.int64)
    # A fixed permutation so that every caller sees the same split.
    order = np.random.RandomState(0).permutation(len(labels))
    images, labels = images[order], labels[order]
    split = int(round(0.8 * len(labels)))
    return Dataset("digits", images[:split], labels[:split], images[split:], labels[split:])


def load(name: str = "auto") -> Dataset:
    """Load a dataset by name.

    Args:
        name: ``"mnist"``, ``"fashion_mnist"``, ``"digits"``, or ``"auto"``: MNIST
            where ``TFQ_PLUS_DATA_DIR`` holds it, else scikit-learn's digits.

    Raises:
        ValueError: unknown name, or an IDX dataset that is not in ``TFQ_PLUS_DATA_DIR``.
    """
    if name == "auto":
        name = "mnist" if available("mnist") else "digits"
    if name not in ALL_DATASETS:
        raise ValueError(f"dataset name must be one of {ALL_DATASETS + ('auto',)}, got {name!r}")
    if name == "digits":
        return _load_digits()
    if not available(name):
        raise ValueError(
            f"dataset {name!r} needs its four IDX files in ${DATA_DIR_ENV}/{name}/ "
            f"({DATA_DIR_ENV}={os.environ.get(DATA_DIR_ENV)!r}); nothing is downloaded"
        )
    return _load_idx(name)
