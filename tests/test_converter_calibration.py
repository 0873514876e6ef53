"""Calibration data: the forms convert accepts, errors for data that cannot
calibrate, and warnings for data that does not look like training inputs.

Each mistake goes through ``convert_keras_model`` once (the wiring); its variants
are checked on ``CalibrationData`` itself, which is what convert reads the data
through, without paying for a conversion each.
"""

import warnings

import numpy as np
import pytest
import tensorflow as tf

from test_converter_models import converted, samples

from tfq_plus import converters
from tfq_plus.converters import CalibrationDataError, CalibrationDataWarning
from tfq_plus.converters.calibration import CalibrationData


@pytest.fixture(scope="module")
def pool_bn():
    return converted("pool_bn")


def calibration_warnings(function):
    """(result of ``function()``, CalibrationDataWarning messages it gave)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = function()
    return result, [str(w.message) for w in caught if issubclass(w.category, CalibrationDataWarning)]


def read(model, data):
    """(every batch CalibrationData yields, the warnings it gave)."""
    return calibration_warnings(lambda: list(CalibrationData(model, data).batches()))


def pixels(model, count=16):
    """What the model's [-1, 1] training inputs look like before scaling: 0..255."""
    return np.round((samples(model, count, seed=1) + 1.0) * 127.5)


def input_name(model) -> str:
    return model.inputs[0].name.split(":")[0]


def test_training_like_data_gives_no_warning_and_the_same_bytes(pool_bn):
    flatbuffer, found = calibration_warnings(
        lambda: converters.convert_keras_model(pool_bn.model, representative_dataset=pool_bn.calibration))
    assert found == []
    assert flatbuffer == pool_bn.deploy


def test_raw_pixels_warn_at_conversion_naming_the_input_and_the_fix(pool_bn):
    data = pixels(pool_bn.model).astype(np.uint8)
    _, found = calibration_warnings(lambda: converters.convert_keras_model(
        pool_bn.model, representative_dataset=data, custom_ops=False))
    assert len(found) == 1
    assert found[0].startswith(f"calibration data (representative_dataset, --calibration) for input "
                               f"'{input_name(pool_bn.model)}' does not look like training inputs")
    assert "it is uint8 data (values 0..255) for a float32 input" in found[0]
    assert "trained on scaled values (e.g. x / 255.0)" in found[0]


@pytest.mark.parametrize("dtype, message", [
    (np.int32, "it is int32 data (values 0..255) for a float32 input"),
    (np.float32, "its values are whole numbers in 0..255, like raw 8-bit pixels"),
])
def test_integer_and_pixel_like_data_warn(pool_bn, dtype, message):
    _, found = read(pool_bn.model, pixels(pool_bn.model).astype(dtype))
    assert len(found) == 1 and message in found[0]


def rescaling_model():
    inputs = tf.keras.Input((6, 6, 1))
    x = tf.keras.layers.Rescaling(1.0 / 255.0)(inputs)
    x = tf.keras.layers.Conv2D(4, 3)(x)
    outputs = tf.keras.layers.Dense(2)(tf.keras.layers.Flatten()(x))
    return tf.keras.Model(inputs, outputs)


def test_pixels_into_a_model_that_rescales_them_are_fine():
    model = rescaling_model()
    for dtype in (np.uint8, np.float32):
        _, found = read(model, pixels(model).astype(dtype))
        assert found == []


def test_float64_is_converted_with_a_note_and_gives_the_float32_bytes(pool_bn):
    flatbuffer, found = calibration_warnings(lambda: converters.convert_keras_model(
        pool_bn.model, representative_dataset=pool_bn.calibration.astype(np.float64), custom_ops=False))
    assert len(found) == 1 and "it is float64 data; it is converted to float32" in found[0]
    assert flatbuffer == pool_bn.reference


def test_constant_data_warns(pool_bn):
    _, found = read(pool_bn.model, np.zeros_like(pool_bn.calibration))
    assert len(found) == 1 and "every value is 0 (over 24 samples)" in found[0]
    _, found = read(pool_bn.model, np.full_like(pool_bn.calibration, 0.5))
    assert len(found) == 1 and "every value is 0.5" in found[0]


def test_a_callable_warns_after_its_first_pass(pool_bn):
    data = pixels(pool_bn.model).astype(np.uint8)
    calibration = CalibrationData(pool_bn.model, lambda: ([data[i:i + 1]] for i in range(len(data))))
    batches, found = calibration_warnings(lambda: [next(iter(calibration.batches()))])
    assert found == []  # not before the data was seen
    _, found = calibration_warnings(lambda: list(calibration.batches()))
    assert len(found) == 1 and "it is uint8 data (values 0..255)" in found[0]
    _, found = calibration_warnings(lambda: list(calibration.batches()))
    assert found == []  # once


def test_nan_cannot_be_calibrated(pool_bn):
    data = pool_bn.calibration.copy()
    data[5, 3, 4, 0] = np.nan
    with pytest.raises(CalibrationDataError, match=r"input '.*' holds 1 NaN and 0 infinite values \(the first "
                       r"in sample 5\); they cannot be calibrated"):
        converters.convert_keras_model(pool_bn.model, representative_dataset=data)


def test_inf_cannot_be_calibrated_in_a_batch_either(pool_bn):
    data = pool_bn.calibration.copy()
    data[5, 3, 4, 0] = -np.inf
    one_at_a_time = lambda: ([data[i:i + 1]] for i in range(len(data)))  # noqa: E731
    with pytest.raises(CalibrationDataError, match=r"holds 0 NaN and 1 infinite values \(the first in sample 0 "
                       "of a batch\\)"):
        read(pool_bn.model, one_at_a_time)


def test_an_empty_generator_is_named_empty(pool_bn):
    """Before: the conversion went on and failed later with "its input in the stock
    model is not a per-tensor int8 tensor"."""
    with pytest.raises(CalibrationDataError, match=r"calibration data \(representative_dataset, "
                       r"--calibration\) was empty: it yielded no batches"):
        converters.convert_keras_model(pool_bn.model, representative_dataset=lambda: iter(()))


def test_an_empty_dataset_or_array_is_named_empty(pool_bn):
    with pytest.raises(CalibrationDataError, match="was empty: it yielded no batches"):
        read(pool_bn.model, tf.data.Dataset.from_tensor_slices(pool_bn.calibration[:0]).batch(1))
    with pytest.raises(CalibrationDataError, match="no samples given"):
        read(pool_bn.model, pool_bn.calibration[:0])


def test_a_generator_object_is_refused_with_the_fix(pool_bn):
    batches = ([x[None]] for x in pool_bn.calibration)
    with pytest.raises(CalibrationDataError, match=r"is an iterator .* pass the function that makes it"):
        read(pool_bn.model, batches)


def test_every_form_yields_the_batches_of_the_array(pool_bn):
    data = pool_bn.calibration
    name = input_name(pool_bn.model)
    expected, _ = read(pool_bn.model, data)
    forms = [
        lambda: ([data[i:i + 1]] for i in range(len(data))),  # the stock converter's form
        lambda: (data[i:i + 1] for i in range(len(data))),  # a bare array per batch
        lambda: ({name: data[i:i + 1]} for i in range(len(data))),
        lambda: ((data[i:i + 1].astype(np.float64),) for i in range(len(data))),
        tf.data.Dataset.from_tensor_slices(data).batch(1),
    ]
    for form in forms:
        batches, _ = read(pool_bn.model, form)
        assert len(batches) == len(expected) == len(data)
        for batch, want in zip(batches, expected):
            assert len(batch) == 1 and batch[0].dtype == np.float32
            np.testing.assert_array_equal(batch[0], want[0])


def test_a_dataset_calibrates_to_the_bytes_of_the_array(pool_bn):
    dataset = tf.data.Dataset.from_tensor_slices(pool_bn.calibration).batch(1)
    assert converters.convert_keras_model(pool_bn.model, representative_dataset=dataset,
                                          custom_ops=False) == pool_bn.reference


def test_a_batch_that_does_not_fit_fails_at_conversion_naming_the_expected_shape(pool_bn):
    x = pool_bn.calibration
    with pytest.raises(CalibrationDataError, match=r"a batch of shape \[1, 6, 12, 1\] does not fit model input "
                       r"'.*', which takes \[n, 12, 12, 1\] \(n samples first\)"):
        converters.convert_keras_model(pool_bn.model, representative_dataset=lambda: ([x[i:i + 1, :6]] for i in range(4)))


@pytest.mark.parametrize("data, message", [
    (lambda x: (lambda: ([x[i:i + 1], x[i:i + 1]] for i in range(4))),
     r"each batch must hold 1 array\(s\), one per model input .* got 2; a dataset of \(x, y\) pairs"),
    (lambda x: (lambda: ({"images": x[i:i + 1]} for i in range(4))),
     r"a batch dict has keys \['images'\], not the model inputs \['input_.*'\]"),
    (lambda x: x[..., 0], r"samples of shape \[24, 12, 12\] do not fit model input '.*', which takes \[n, 12, 12, 1\]"),
    (lambda x: [x, x], r"the model has 1 inputs \('input_.*'\), got 2 arrays"),
    (lambda x: np.array(["a"] * 24), "samples for input '.*' has dtype <U1"),
])
def test_data_that_does_not_fit_the_inputs_is_named(pool_bn, data, message):
    with pytest.raises(CalibrationDataError, match=message):
        read(pool_bn.model, data(pool_bn.calibration))
