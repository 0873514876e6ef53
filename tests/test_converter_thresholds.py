"""thresholds: sign thresholds and output transforms against brute force.

For every accumulator value a channel can take, the Keras layers after the
planned layer are evaluated (float32, the user's layers) and the sign compared
with what the threshold gives; the int8 / int32 transforms are run through
TFLite's integer arithmetic (``tflite_arithmetic``, tested against gemmlowp by
hand in test_converter_rewrite.py) and compared with the exact real value.
"""

import larq as lq
import numpy as np
import pytest
import tensorflow as tf

from test_converter_models import BINARY

from tfq_plus import converters
from tfq_plus.converters import thresholds
from tfq_plus.converters.tflite_arithmetic import multiply_by_quantized_multiplier_array


def chain_model(channels=24, activation=None, negative=True, seed=0):
    """conv -> BatchNorm (mixed signs) [-> activation] -> sign."""
    rng = np.random.default_rng(seed)
    inputs = tf.keras.Input((5, 5, 8))
    x = lq.layers.QuantConv2D(channels, 3, padding="same", pad_values=1.0, **BINARY)(inputs)
    x = tf.keras.layers.BatchNormalization()(x)
    if activation:
        x = tf.keras.layers.Activation(activation)(x)
    x = lq.layers.QuantConv2D(4, 1, **BINARY)(x)
    model = tf.keras.Model(inputs, x)
    gamma = rng.uniform(0.2, 3.0, channels) * (rng.choice([-1, 1], channels) if negative else 1)
    beta = rng.normal(0, 3, channels)
    beta[:3] = [0.0, 1e-7, -1e-7]  # thresholds right at an integer and beside it
    mean = rng.normal(0, 5, channels).round()  # integer means: the sign flips at an exact D
    model.layers[2].set_weights([gamma, beta, mean, rng.uniform(0.5, 4, channels)])
    return model


@pytest.mark.parametrize("activation", [None, "relu", "tanh"])
def test_sign_threshold_equals_keras_sign_at_every_accumulator(activation):
    model = chain_model(activation=activation)
    plan = converters.plan(model).layers[model.layers[1].name]
    taps = plan.kernel.taps
    transform = thresholds.sign_transform(plan, plan.kernel.scale, np.full(24, -taps), np.full(24, taps))
    d = np.arange(-taps, taps + 1)
    keras = thresholds.chain_values(plan, np.repeat(d[:, None], 24, axis=1).astype(np.float32))
    direction, threshold = transform.rows[:, 0].astype(np.int64), transform.rows[:, 1].astype(np.int64)
    bits = direction[None, :] * d[:, None] < threshold[None, :]
    np.testing.assert_array_equal(bits, keras < 0)


def test_long_ranges_are_searched_exactly():
    """An int8-input layer's accumulator spans ~10^6 values: the grid search must
    find the same threshold as evaluating every value."""
    model = chain_model(negative=True, seed=3)
    plan = converters.plan(model).layers[model.layers[1].name]
    unit = np.full(24, 1e-4)
    low, high = np.full(24, -700_000), np.full(24, 650_000)
    transform = thresholds.sign_transform(plan, unit, low, high)
    for c in range(0, 24, 5):
        acc = np.arange(low[c], high[c] + 1, dtype=np.int64)
        y = np.zeros((len(acc), 24), np.float32)
        y[:, c] = thresholds.layer_values(plan, acc[:, None].repeat(24, 1), unit)[:, c]
        keras = thresholds.chain_values(plan, y)[:, c] < 0
        direction, threshold = transform.rows[c]
        np.testing.assert_array_equal(direction * acc < threshold, keras)


def test_non_monotone_chain_is_rejected_naming_the_layer():
    inputs = tf.keras.Input((5, 5, 8))
    x = lq.layers.QuantConv2D(4, 3, **BINARY)(inputs)
    x = tf.keras.layers.Lambda(lambda t: t * t - 4.0)(x)
    model = tf.keras.Model(inputs, lq.layers.QuantConv2D(4, 1, **BINARY)(x))
    plan = converters.plan(model).layers[model.layers[1].name]
    # the planner does not fold a Lambda; force it to show the check
    from tfq_plus.converters import plans as P

    plan.chain = [P.ChainStep(model.layers[2], P.ELEMENTWISE, np.ones(4), None,
                              lambda t: model.layers[2](t))]
    with pytest.raises(ValueError, match=f"{plan.name}.*not a step function"):
        thresholds.sign_transform(plan, plan.kernel.scale, np.full(4, -72), np.full(4, 72))


def test_int8_transform_rounds_the_exact_value_for_every_d():
    rng = np.random.default_rng(5)
    taps = 576
    a = rng.normal(0, 0.05, 32) * rng.choice([-1, 1], 32)
    a[0] = 0.0  # a constant channel
    b = rng.normal(0, 2, 32)
    scale = 0.07
    rows = thresholds.int8_transform(a, b, taps, scale).astype(np.int64)
    d = np.arange(-taps, taps + 1)[:, None]
    acc = rows[:, 0] * d + rows[:, 1]  # P = 1, N = -1
    got = multiply_by_quantized_multiplier_array(acc, rows[:, 2], rows[:, 3])
    exact = (a * d + b) / np.float64(np.float32(scale))
    assert np.max(np.abs(got - exact)) <= 0.5 + 2.0**-8


def test_int32_transform_error_is_the_rounding_of_its_three_terms():
    rng = np.random.default_rng(6)
    a = rng.normal(0, 0.3, 16)
    b = rng.normal(0, 4, 16)
    bound = 900_000
    scale = float(np.max(np.abs(a)) * bound + np.max(np.abs(b))) / 2**30
    rows = thresholds.int32_transform(a, b, scale, bound)
    acc = np.linspace(-bound, bound, 2001).astype(np.int64)[:, None].repeat(16, 1)
    got = thresholds.int32_values(rows, acc).astype(np.float64)
    # B rounded (1/2), the result rounded (1/2), M rounded to 2^-s (|acc| / 2^(s+1))
    bound_units = 1.0 + np.abs(acc) * 2.0 ** (-rows[:, 1].astype(np.float64) - 1)
    assert np.all(np.abs(got - (a * acc + b) / scale) <= bound_units + 1e-6)
    with pytest.raises(ValueError, match="scale is too small"):
        thresholds.int32_transform(np.array([1.0]), np.array([0.0]), 1e-12, bound)
