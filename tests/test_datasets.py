"""tfq_plus.datasets: the IDX reader on hand-made files, MNIST, the digits fallback."""

import gzip
import struct

import numpy as np
import pytest

from tfq_plus import datasets


def _idx_bytes(array: np.ndarray, type_code: int) -> bytes:
    """An IDX file written from the format definition: 0, 0, type, ndim, big-endian
    int32 dimensions, then big-endian row-major data."""
    header = struct.pack(">BBBB", 0, 0, type_code, array.ndim)
    header += struct.pack(f">{array.ndim}i", *array.shape)
    big_endian = array.astype(array.dtype.newbyteorder(">"))
    return header + big_endian.tobytes(order="C")


def _write(path, payload: bytes):
    if path.suffix == ".gz":
        with gzip.open(path, "wb") as stream:
            stream.write(payload)
    else:
        path.write_bytes(payload)
    return path


@pytest.mark.parametrize("suffix", ["", ".gz"])
@pytest.mark.parametrize(
    "dtype, type_code",
    [(np.uint8, 0x08), (np.int8, 0x09), (np.int16, 0x0B), (np.int32, 0x0C), (np.float32, 0x0D),
     (np.float64, 0x0E)],
)
def test_read_idx_round_trip(tmp_path, suffix, dtype, type_code):
    rng = np.random.RandomState(type_code)
    expected = (rng.uniform(-100, 100, size=(3, 4, 5))).astype(dtype)
    if dtype == np.uint8:
        expected = rng.randint(0, 256, size=(3, 4, 5)).astype(np.uint8)
    path = _write(tmp_path / f"data-idx3{suffix}", _idx_bytes(expected, type_code))
    actual = datasets.read_idx(path)
    assert actual.shape == (3, 4, 5)
    np.testing.assert_array_equal(actual, expected)
    assert actual.dtype.kind == np.dtype(dtype).kind
    assert actual.dtype.itemsize == np.dtype(dtype).itemsize


def test_read_idx_one_dimensional_labels(tmp_path):
    labels = np.array([7, 2, 1, 0, 4], dtype=np.uint8)
    path = _write(tmp_path / "labels-idx1.gz", _idx_bytes(labels, 0x08))
    np.testing.assert_array_equal(datasets.read_idx(path), labels)


@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_read_idx_bad_magic(tmp_path, suffix):
    payload = bytearray(_idx_bytes(np.zeros((2, 2), np.uint8), 0x08))
    payload[0] = 0x1F  # the first two bytes of an IDX file are zero
    path = _write(tmp_path / f"bad{suffix}", bytes(payload))
    with pytest.raises(ValueError, match="not an IDX file"):
        datasets.read_idx(path)


def test_read_idx_unknown_type(tmp_path):
    payload = bytearray(_idx_bytes(np.zeros((2, 2), np.uint8), 0x08))
    payload[2] = 0x07
    path = _write(tmp_path / "bad-type", bytes(payload))
    with pytest.raises(ValueError, match="unknown IDX element type 0x07"):
        datasets.read_idx(path)


@pytest.mark.parametrize("delta", [-1, +1])
@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_read_idx_size_mismatch(tmp_path, suffix, delta):
    payload = _idx_bytes(np.arange(12, dtype=np.uint8).reshape(3, 4), 0x08)
    payload = payload[:-1] if delta < 0 else payload + b"\x00"
    path = _write(tmp_path / f"short{suffix}", payload)
    with pytest.raises(ValueError, match=r"promises \(3, 4\) \(12 bytes\)"):
        datasets.read_idx(path)


def test_read_idx_empty_file(tmp_path):
    path = _write(tmp_path / "empty", b"")
    with pytest.raises(ValueError, match="not an IDX file"):
        datasets.read_idx(path)


def _fake_mnist_folder(root, name, train=6, test=4):
    folder = root / name
    folder.mkdir(parents=True)
    rng = np.random.RandomState(1)
    for prefix, count in (("train", train), ("t10k", test)):
        images = rng.randint(0, 256, size=(count, 28, 28)).astype(np.uint8)
        labels = rng.randint(0, 10, size=count).astype(np.uint8)
        _write(folder / f"{prefix}-images-idx3-ubyte.gz", _idx_bytes(images, 0x08))
        _write(folder / f"{prefix}-labels-idx1-ubyte", _idx_bytes(labels, 0x08))  # plain
    return folder


def test_load_reads_data_dir(tmp_path, monkeypatch):
    folder = _fake_mnist_folder(tmp_path, "fashion_mnist")
    monkeypatch.setenv(datasets.DATA_DIR_ENV, str(tmp_path))
    assert datasets.available("fashion_mnist")
    assert not datasets.available("mnist")
    data = datasets.load("fashion_mnist")
    raw = datasets.read_idx(folder / "train-images-idx3-ubyte.gz")
    np.testing.assert_array_equal(data.x_train[..., 0], raw.astype(np.float32) / 255.0)
    assert data.x_train.shape == (6, 28, 28, 1) and data.x_test.shape == (4, 28, 28, 1)
    assert data.y_train.dtype == np.int64
    # "auto" without MNIST in the folder falls back to digits.
    assert datasets.load("auto").name == "digits"


def test_load_missing_idx_dataset(tmp_path, monkeypatch):
    monkeypatch.setenv(datasets.DATA_DIR_ENV, str(tmp_path))
    with pytest.raises(ValueError, match="'mnist'.*nothing is downloaded"):
        datasets.load("mnist")
    monkeypatch.delenv(datasets.DATA_DIR_ENV)
    assert not datasets.available("mnist")
    assert datasets.load("auto").name == "digits"


@pytest.mark.parametrize("name", ["cifar10", "MNIST", ""])
def test_load_bad_name(name):
    with pytest.raises(ValueError, match="dataset name must be one of") as info:
        datasets.load(name)
    assert repr(name) in str(info.value)


@pytest.mark.parametrize("name", ["mnist", "fashion_mnist"])
def test_real_idx_dataset(name):
    if not datasets.available(name):
        pytest.skip(f"{name} IDX files not in ${datasets.DATA_DIR_ENV} ({datasets.data_dir()})")
    data = datasets.load(name)
    assert data.name == name
    assert data.x_train.shape == (60000, 28, 28, 1)
    assert data.x_test.shape == (10000, 28, 28, 1)
    assert data.y_train.shape == (60000,) and data.y_test.shape == (10000,)
    assert data.x_train.dtype == np.float32 and data.y_train.dtype == np.int64
    assert data.x_train.min() == 0.0 and data.x_train.max() == 1.0
    # Images were uint8 / 255: every value is a multiple of 1/255.
    sample = data.x_test[:100] * 255.0
    np.testing.assert_allclose(sample, np.round(sample), atol=1e-4)
    assert set(np.unique(data.y_train)) == set(range(10))
    assert data.num_classes == 10 and data.input_shape == (28, 28, 1)
    # Every class is present in a sensible share (MNIST / Fashion-MNIST are near balanced).
    assert np.bincount(data.y_train).min() > 5000


def test_digits_fallback():
    data = datasets.load("digits")
    assert data.name == "digits"
    assert data.x_train.shape == (1438, 8, 8, 1) and data.x_test.shape == (359, 8, 8, 1)
    assert data.x_train.dtype == np.float32 and data.y_test.dtype == np.int64
    assert data.x_train.min() == 0.0 and data.x_train.max() == 1.0
    assert data.num_classes == 10 and data.input_shape == (8, 8, 1)
    # Pixels on the 8-bit grid k/255, as MNIST's: an int8 input holds them exactly.
    codes = data.x_train * np.float32(255.0)
    np.testing.assert_array_equal(codes, np.round(codes))
    assert len(np.unique(data.x_train)) == 17
    # The split is fixed: the same call gives the same arrays.
    again = datasets.load("digits")
    np.testing.assert_array_equal(again.x_test, data.x_test)
    np.testing.assert_array_equal(again.y_train, data.y_train)


def test_auto_prefers_mnist(dataset):
    # `dataset` is conftest's session fixture: datasets.load("auto").
    expected = "mnist" if datasets.available("mnist") else "digits"
    assert dataset.name == expected
