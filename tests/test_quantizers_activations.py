"""PACT, LSQ and Uniform: forward values, gradients, range state, arguments, config.

Every expected value comes from a numpy reference written here from the formula in
the quantizer's docstring (and the paper), never from the code under test. Tie rules:
PACT and LSQ round with ``tf.round`` (ties to even, like ``np.round``); Uniform uses
TensorFlow's fake-quant rule ``floor(v + 1/2)`` (ties up).
"""

import io
import math
import re

import larq as lq
import numpy as np
import pytest
import tensorflow as tf

import tfq_plus
from tfq_plus.quantizers import LSQ, PACT, QuantGrid, Uniform
from tfq_plus.quantizers import grid as grid_kinds

F32 = np.float32


def _random(shape, seed, scale=1.0):
    return (np.random.RandomState(seed).randn(*shape) * scale).astype(F32)


# --------------------------------------------------------------------------------------
# numpy references, from the formulas
# --------------------------------------------------------------------------------------


def pact_reference(x, alpha, bits):
    """Choi et al. Eq. 1-2: y = clip(x, 0, alpha); round(y (2^k-1)/alpha) alpha/(2^k-1)."""
    x, alpha = np.asarray(x, F32), F32(alpha)
    levels = F32(2**bits - 1)
    y = np.clip(x, F32(0), alpha)
    return (np.round(y * (levels / alpha)) * (alpha / levels)).astype(F32)


def lsq_levels(bits, signed):
    """(Q_N, Q_P) of Esser et al."""
    if signed:
        return 2 ** (bits - 1), 2 ** (bits - 1) - 1
    return 0, 2**bits - 1


def lsq_reference(v, step, bits, signed):
    """Esser et al. Eq. 1-2: round(clip(v/s, -Q_N, Q_P)) s, with v/s as v * (1/s)."""
    q_n, q_p = lsq_levels(bits, signed)
    v, step = np.asarray(v, F32), np.asarray(step, F32)
    scaled = np.clip(v * (F32(1) / step), F32(-q_n), F32(q_p))
    return (np.round(scaled) * step).astype(F32)


def lsq_step_gradient_terms(v, step, bits, signed):
    """d v_hat / d s before the gradient scale, and d v_hat / d v (Eq. 3-4)."""
    q_n, q_p = lsq_levels(bits, signed)
    ratio = np.asarray(v, np.float64) / np.asarray(step, np.float64)
    inside = (ratio > -q_n) & (ratio < q_p)
    d_step = np.where(inside, -ratio + np.round(ratio), np.where(ratio <= -q_n, -q_n, q_p))
    return d_step, inside.astype(np.float64)


def fake_quant_range(low, high, bits, symmetric):
    """Uniform's docstring: the range made to contain zero, symmetric, >= 1e-6 wide,
    then nudged as TensorFlow's fake quant does. Returns (nudged_min, nudged_max, step)."""
    low = np.minimum(np.asarray(low, F32), F32(0))
    high = np.maximum(np.asarray(high, F32), F32(0))
    if symmetric:
        magnitude = np.maximum(np.maximum(-low, high), F32(1e-6))
        low, high = -magnitude, magnitude
        q_min, q_max = F32(1), F32(2**bits - 1)
    else:
        high = np.maximum(high, low + F32(1e-6))
        q_min, q_max = F32(0), F32(2**bits - 1)
    step = ((high - low) / (q_max - q_min)).astype(F32)
    zero_point_from_min = q_min - low / step
    zero_point = np.where(
        zero_point_from_min < q_min,
        q_min,
        np.where(zero_point_from_min > q_max, q_max, np.floor(zero_point_from_min + F32(0.5))),
    ).astype(F32)
    nudged_min = ((q_min - zero_point) * step).astype(F32)
    nudged_max = ((q_max - zero_point) * step).astype(F32)
    return nudged_min, nudged_max, step


def fake_quant_reference(x, low, high, bits, symmetric, axis=None):
    """y = floor((clip(x, a', b') - a') * (1/step) + 1/2) * step + a', per tensor or
    per channel along ``axis``."""
    x = np.asarray(x, F32)
    nudged_min, nudged_max, step = fake_quant_range(low, high, bits, symmetric)
    if axis is not None:
        shape = [1] * x.ndim
        shape[axis] = -1
        nudged_min, nudged_max, step = (t.reshape(shape) for t in (nudged_min, nudged_max, step))
    clipped = np.minimum(np.maximum(x, nudged_min), nudged_max)
    inverse = F32(1) / step
    return (np.floor((clipped - nudged_min) * inverse + F32(0.5)) * step + nudged_min).astype(F32)


def _quantize(quantizer, x, training=None):
    return quantizer(tf.constant(x), training=training).numpy()


def _gradients(quantizer, x, upstream, variables, training=None, kernel=False):
    """d sum(upstream * q(x)) / d (x, *variables)."""
    x = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(x)
        with lq.context.quantized_scope(kernel):
            y = quantizer(x, training=training)
        loss = tf.reduce_sum(tf.constant(upstream) * y)
    return [g.numpy() for g in tape.gradient(loss, [x, *variables])]


# --------------------------------------------------------------------------------------
# PACT
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("bits", [1, 2, 4, 8])
@pytest.mark.parametrize("alpha", [0.75, 2.5, 10.0])
def test_pact_forward_matches_reference(bits, alpha):
    x = _random((4, 5, 6, 3), seed=bits, scale=alpha)
    quantizer = PACT(bits=bits, alpha_init=alpha)
    expected = pact_reference(x, alpha, bits)
    np.testing.assert_allclose(_quantize(quantizer, x), expected, rtol=1e-6, atol=1e-7)


def test_pact_edge_cases():
    # alpha = 3 with 2 bits: levels 0, 1, 2, 3 (step 1), so halfway values are exact.
    quantizer = PACT(bits=2, alpha_init=3.0)
    x = np.array([0.0, -0.0, -1.0, 3.0, 3.5, 1e9, -1e9, 0.5, 1.5, 2.5, 1.0, 2.0], F32)
    expected = np.array([0, 0, 0, 3, 3, 3, 0, 0, 2, 2, 1, 2], F32)  # ties to even
    y = _quantize(quantizer, x)
    np.testing.assert_array_equal(y, expected)
    np.testing.assert_array_equal(y, pact_reference(x, 3.0, 2))
    for value in (0.0, 1.7, 5.0, -2.0):  # all-equal tensors
        flat = np.full((3, 4), value, F32)
        expected = pact_reference(flat, 3.0, 2)
        np.testing.assert_allclose(_quantize(quantizer, flat), expected, rtol=1e-6)


def test_pact_gradients_follow_the_paper():
    alpha = 2.0
    quantizer = PACT(bits=3, alpha_init=alpha)
    x = np.concatenate(
        [
            np.array([0.0, alpha, -0.5, 2.5, 1e-3, alpha - 1e-3], F32),
            _random((40,), seed=1, scale=2.0),
        ]
    )
    upstream = _random(x.shape, seed=2)
    quantizer.build(x.shape)
    d_x, d_alpha = _gradients(quantizer, x, upstream, [quantizer.alpha])
    window = (x >= 0) & (x < alpha)  # [0, alpha): x = 0 passes, x = alpha does not
    np.testing.assert_allclose(d_x, upstream * window, rtol=1e-6)
    np.testing.assert_allclose(d_alpha, upstream[x >= alpha].sum(), rtol=1e-5)
    assert d_x[0] == upstream[0] and d_x[1] == 0  # the bounds, explicitly


def test_pact_alpha_regularization_enters_losses():
    quantizer = PACT(bits=4, alpha_init=3.0, alpha_regularization=0.01)
    model = tf.keras.Sequential([tf.keras.Input((5,)), tf.keras.layers.Dense(5), quantizer])
    assert len(model.losses) == 1
    np.testing.assert_allclose(model.losses[0].numpy(), 0.01 * 3.0**2, rtol=1e-6)
    with tf.GradientTape() as tape:
        penalty = tf.add_n(model.losses)
    d_alpha = tape.gradient(penalty, quantizer.alpha).numpy()
    np.testing.assert_allclose(d_alpha, 2 * 0.01 * 3.0, rtol=1e-6)
    unregularized = tf.keras.Sequential([tf.keras.Input((5,)), PACT(bits=4, alpha_init=3.0)])
    assert unregularized.losses == []


def test_pact_deploy_grid_holds_the_outputs():
    quantizer = PACT(bits=3, alpha_init=1.5)
    x = np.linspace(-1, 2, 1001, dtype=F32)
    y = _quantize(quantizer, x)
    grid = quantizer.deploy_grid()
    assert isinstance(grid, QuantGrid) and grid.kind == grid_kinds.UNIFORM and grid.bits == 3
    assert not grid.signed and grid.axis is None
    np.testing.assert_allclose(
        [grid.range_min, grid.range_max, grid.scale], [0.0, 1.5, 1.5 / 7], rtol=1e-6
    )
    codes = (y - grid.range_min) / grid.scale
    np.testing.assert_allclose(codes, np.round(codes), atol=1e-4)
    assert set(np.round(codes).astype(int)) == set(range(8))


# --------------------------------------------------------------------------------------
# LSQ
# --------------------------------------------------------------------------------------


def _lsq_with_step(step, input_shape, **kwargs):
    quantizer = LSQ(**kwargs)
    quantizer.build(input_shape)
    quantizer.step.assign(np.asarray(step, F32))
    quantizer.initialized.assign(True)
    return quantizer


@pytest.mark.parametrize(
    "bits, signed",
    [(1, False), (2, False), (4, False), (8, False), (2, True), (3, True), (8, True)],
)
def test_lsq_forward_matches_reference(bits, signed):
    x = _random((4, 6, 6, 3), seed=bits + 10 * signed, scale=2.0)
    step = 4.0 / 2**bits
    quantizer = _lsq_with_step(step, x.shape, bits=bits, signed=signed)
    for training in (None, False, True):  # initialised: training does not change values
        y = _quantize(quantizer, x, training=training)
        np.testing.assert_allclose(y, lsq_reference(x, step, bits, signed), rtol=1e-6, atol=1e-7)


def test_lsq_edge_cases_signed():
    # 2-bit signed: Q_N = 2, Q_P = 1; s = 0.5, so the bounds are -1.0 and 0.5.
    quantizer = _lsq_with_step(0.5, (10,), bits=2, signed=True)
    v = np.array([0.0, -1.0, 0.5, -3.0, 4.0, 0.25, -0.25, -0.75, 0.3, -0.0], F32)
    expected = np.array([0, -1.0, 0.5, -1.0, 0.5, 0, 0, -1.0, 0.5, 0], F32)  # ties to even
    y = _quantize(quantizer, v)
    np.testing.assert_array_equal(y, expected)
    np.testing.assert_array_equal(y, lsq_reference(v, 0.5, 2, True))


def test_lsq_edge_cases_unsigned():
    # 3-bit unsigned: Q_P = 7; s = 0.25: ties at 0.125 + k/4.
    quantizer = _lsq_with_step(0.25, (9,), bits=3, signed=False)
    v = np.array([0.125, 0.375, 0.625, 1.625, 1.75, 1.875, -0.5, 0.0, 100.0], F32)
    expected = np.array([0, 0.5, 0.5, 1.5, 1.75, 1.75, 0, 0, 1.75], F32)
    np.testing.assert_array_equal(_quantize(quantizer, v), expected)
    flat = np.full((2, 3), 0.3, F32)  # all-equal tensor
    np.testing.assert_array_equal(_quantize(quantizer, flat), np.full((2, 3), 0.25, F32))


def test_lsq_per_channel_forward():
    x = _random((5, 4, 3), seed=3, scale=3.0)
    steps = np.array([0.1, 0.5, 1.0], F32)
    quantizer = _lsq_with_step(steps, x.shape, bits=4, signed=True, per_channel=True)
    np.testing.assert_allclose(
        _quantize(quantizer, x), lsq_reference(x, steps.reshape(1, 1, 3), 4, True), rtol=1e-6
    )
    # Channels on axis 0, e.g. a layout with channels first.
    steps0 = np.array([0.2, 0.7, 0.05, 1.5, 0.3], F32)
    quantizer0 = _lsq_with_step(steps0, x.shape, bits=4, signed=True, per_channel=True, axis=0)
    np.testing.assert_allclose(
        _quantize(quantizer0, x), lsq_reference(x, steps0.reshape(5, 1, 1), 4, True), rtol=1e-6
    )
    # One channel: identical to per-tensor with the same step.
    single = x[..., :1]
    per_channel = _lsq_with_step([0.3], single.shape, bits=3, signed=True, per_channel=True)
    per_tensor = _lsq_with_step(0.3, single.shape, bits=3, signed=True)
    np.testing.assert_array_equal(_quantize(per_channel, single), _quantize(per_tensor, single))


@pytest.mark.parametrize("bits, signed", [(2, True), (4, False), (3, True)])
def test_lsq_step_gradient_for_activations(bits, signed):
    shape = (6, 5, 4, 3)
    x = _random(shape, seed=bits, scale=1.5)
    step = 0.25
    q_n, q_p = lsq_levels(bits, signed)
    # Values exactly at the clip bounds and exactly on levels.
    x[0, 0, 0] = [-q_n * step, q_p * step, step]
    upstream = _random(shape, seed=7)
    quantizer = _lsq_with_step(step, shape, bits=bits, signed=signed)
    d_x, d_step = _gradients(quantizer, x, upstream, [quantizer.step])
    d_step_terms, inside = lsq_step_gradient_terms(x, step, bits, signed)
    features = 5 * 4 * 3  # elements per example
    scale = 1 / math.sqrt(features * q_p)
    np.testing.assert_allclose(d_x, upstream * inside, rtol=1e-6)
    np.testing.assert_allclose(d_step, scale * np.sum(upstream * d_step_terms), rtol=1e-4)
    if signed:
        assert d_x[0, 0, 0, 0] == 0 and d_x[0, 0, 0, 1] == 0  # bounds: clipped branch


def test_lsq_step_gradient_for_weights_inside_a_larq_layer():
    """As ``kernel_quantizer``, N counts the layer's weights, per channel one column."""
    inputs = _random((8, 6), seed=4)
    upstream = _random((8, 5), seed=5)
    for per_channel in (False, True):
        quantizer = LSQ(bits=3, signed=True, per_channel=per_channel)
        layer = lq.layers.QuantDense(5, kernel_quantizer=quantizer, use_bias=False)
        layer.build((None, 6))
        kernel = layer.kernel.latent_variable.numpy()
        steps = np.array([0.3] * 5 if per_channel else 0.3, F32)
        quantizer.build(kernel.shape)
        quantizer.step.assign(steps)
        quantizer.initialized.assign(True)
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(upstream * layer(inputs, training=True))
        d_step = tape.gradient(loss, quantizer.step).numpy()
        d_kernel_hat = inputs.T @ upstream  # dL / d(quantized kernel) of y = x W_hat
        terms, _ = lsq_step_gradient_terms(kernel, steps, 3, True)
        _, q_p = lsq_levels(3, True)
        if per_channel:
            expected = np.sum(d_kernel_hat * terms, axis=0) / np.sqrt(6 * q_p)
        else:
            expected = np.sum(d_kernel_hat * terms) / np.sqrt(30 * q_p)
        np.testing.assert_allclose(d_step, expected, rtol=1e-4)


def test_lsq_per_channel_step_gradient_for_activations():
    shape = (4, 3, 2)
    x = _random(shape, seed=8)
    upstream = _random(shape, seed=9)
    steps = np.array([0.2, 0.4], F32)
    quantizer = _lsq_with_step(steps, shape, bits=2, signed=False, per_channel=True)
    _, d_step = _gradients(quantizer, x, upstream, [quantizer.step])
    terms, _ = lsq_step_gradient_terms(x, steps.reshape(1, 1, 2), 2, False)
    expected = np.sum(upstream * terms, axis=(0, 1)) / np.sqrt(3 * 3)  # 3 features/channel
    np.testing.assert_allclose(d_step, expected, rtol=1e-4)


@pytest.mark.parametrize("per_channel", [False, True])
def test_lsq_step_initialised_once_from_the_first_training_batch(per_channel):
    bits = 4
    _, q_p = lsq_levels(bits, False)
    first, second = _random((8, 5, 3), seed=11), _random((8, 5, 3), seed=12, scale=4.0)
    quantizer = LSQ(bits=bits, per_channel=per_channel)
    axes = (0, 1) if per_channel else None

    _quantize(quantizer, first, training=False)  # inference does not initialise
    assert not quantizer.initialized.numpy()
    np.testing.assert_array_equal(quantizer.step.numpy(), np.ones_like(quantizer.step.numpy()))

    y = _quantize(quantizer, first, training=True)
    expected = 2 * np.mean(np.abs(first.astype(np.float64)), axis=axes) / np.sqrt(q_p)
    np.testing.assert_allclose(quantizer.step.numpy(), expected, rtol=1e-6)
    assert quantizer.initialized.numpy()
    # The first batch is already quantized with the initial step.
    step_b = quantizer.step.numpy().reshape((1, 1, -1) if per_channel else ())
    np.testing.assert_allclose(y, lsq_reference(first, step_b, bits, False), rtol=1e-6)

    _quantize(quantizer, second, training=True)  # not again
    np.testing.assert_allclose(quantizer.step.numpy(), expected, rtol=1e-6)

    # The flag travels with the weights: a copy does not initialise either.
    copy = LSQ.from_config(quantizer.get_config())
    copy.build(first.shape)
    copy.set_weights(quantizer.get_weights())
    _quantize(copy, second, training=True)
    np.testing.assert_allclose(copy.step.numpy(), expected, rtol=1e-6)


def test_lsq_initialisation_inside_tf_function():
    quantizer = LSQ(bits=2, signed=True)
    batches = [_random((4, 10), seed=s) for s in (20, 21, 22)]

    @tf.function
    def train_call(x):
        return quantizer(x, training=True)

    for batch in batches:
        train_call(tf.constant(batch))
    expected = 2 * np.mean(np.abs(batches[0].astype(np.float64))) / np.sqrt(1)
    np.testing.assert_allclose(quantizer.step.numpy(), expected, rtol=1e-6)


def test_lsq_all_zero_first_batch_gives_no_nan():
    quantizer = LSQ(bits=4, per_channel=True)
    zeros = np.zeros((3, 4), F32)
    np.testing.assert_array_equal(_quantize(quantizer, zeros, training=True), zeros)
    x = _random((3, 4), seed=6)
    assert np.all(np.isfinite(_quantize(quantizer, x)))


def test_zero_or_negative_trained_step_and_alpha_use_the_documented_guard():
    x = _random((4, 6), seed=14, scale=2.0)
    lsq = _lsq_with_step(-0.5, x.shape, bits=3, signed=True)  # |s| is used
    np.testing.assert_allclose(_quantize(lsq, x), lsq_reference(x, 0.5, 3, True), rtol=1e-6)
    lsq.step.assign(0.0)  # floored at 1e-8
    np.testing.assert_allclose(_quantize(lsq, x), lsq_reference(x, 1e-8, 3, True), rtol=1e-6)
    pact = PACT(bits=2, alpha_init=1.0)
    pact.build(x.shape)
    pact.alpha.assign(-1.5)
    np.testing.assert_allclose(_quantize(pact, x), pact_reference(x, 1.5, 2), rtol=1e-6)
    pact.alpha.assign(0.0)
    np.testing.assert_allclose(_quantize(pact, x), pact_reference(x, 1e-8, 2), rtol=1e-6)


def test_lsq_kernel_step_initialised_from_the_kernel_in_training():
    quantizer = LSQ(bits=4, signed=True)
    layer = lq.layers.QuantDense(4, kernel_quantizer=quantizer)
    x = _random((2, 6), seed=13)
    layer(x)  # inference call: builds, does not initialise
    assert not quantizer.initialized.numpy()
    layer(x, training=True)
    kernel = layer.kernel.latent_variable.numpy().astype(np.float64)
    expected = 2 * np.mean(np.abs(kernel)) / np.sqrt(7)
    np.testing.assert_allclose(quantizer.step.numpy(), expected, rtol=1e-6)


def test_lsq_deploy_grid():
    quantizer = _lsq_with_step([0.1, 0.2], (3, 2), bits=3, signed=True, per_channel=True)
    grid = quantizer.deploy_grid()
    assert grid.kind == grid_kinds.UNIFORM and grid.bits == 3 and grid.signed and grid.axis == 1
    np.testing.assert_allclose(grid.scale, [0.1, 0.2])
    np.testing.assert_allclose(grid.range_min, [-0.4, -0.8], rtol=1e-6)
    np.testing.assert_allclose(grid.range_max, [0.3, 0.6], rtol=1e-6)
    unsigned = _lsq_with_step(0.5, (3,), bits=2).deploy_grid()
    assert not unsigned.signed and unsigned.axis is None
    np.testing.assert_allclose([unsigned.range_min, unsigned.range_max], [0.0, 1.5])


# --------------------------------------------------------------------------------------
# Uniform
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("bits", [2, 4, 8])
@pytest.mark.parametrize("symmetric", [True, False])
def test_uniform_minmax_matches_reference(bits, symmetric):
    x = _random((3, 4, 4, 5), seed=bits, scale=2.0) + 0.5
    quantizer = Uniform(bits=bits, symmetric=symmetric)
    expected = fake_quant_reference(x, x.min(), x.max(), bits, symmetric)
    np.testing.assert_allclose(_quantize(quantizer, x), expected, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("symmetric", [True, False])
@pytest.mark.parametrize("axis", [-1, 0, 1])
def test_uniform_minmax_per_channel(symmetric, axis):
    x = _random((3, 3, 4, 6), seed=5) * np.linspace(0.1, 3, 6, dtype=F32)
    quantizer = Uniform(bits=4, symmetric=symmetric, per_channel=True, axis=axis)
    reduce = tuple(i for i in range(4) if i != axis % 4)
    expected = fake_quant_reference(
        x, x.min(axis=reduce), x.max(axis=reduce), 4, symmetric, axis=axis % 4
    )
    np.testing.assert_allclose(_quantize(quantizer, x), expected, rtol=1e-6, atol=1e-6)


def test_uniform_per_channel_with_one_channel_equals_per_tensor():
    x = _random((7, 1), seed=9)
    per_channel = Uniform(bits=3, symmetric=False, per_channel=True)
    per_tensor = Uniform(bits=3, symmetric=False)
    np.testing.assert_array_equal(_quantize(per_channel, x), _quantize(per_tensor, x))


def test_uniform_edge_cases():
    asymmetric = Uniform(bits=2, symmetric=False)
    # Range [0, 3] with 2 bits: step 1, zero point 0; ties round up (fake-quant rule).
    x = np.array([0.0, 3.0, 0.5, 1.5, 2.5, 1.0], F32)
    np.testing.assert_array_equal(_quantize(asymmetric, x), [0, 3, 1, 2, 3, 1])
    # Symmetric 3 bits, max |x| = 3: narrow levels -3..3 with step 1.
    symmetric = Uniform(bits=3, symmetric=True)
    x = np.array([-3.0, 3.0, -0.5, 0.5, -1.5, 2.5, 0.0], F32)
    np.testing.assert_array_equal(_quantize(symmetric, x), [-3, 3, 0, 1, -1, 3, 0])
    for quantizer in (asymmetric, symmetric, Uniform(bits=8, per_channel=True)):
        zeros = np.zeros((4, 3), F32)
        np.testing.assert_array_equal(_quantize(quantizer, zeros), zeros)
    for value in (0.7, -2.0):  # all-equal tensors: the range is [min(c, 0), max(c, 0)]
        flat = np.full((4, 3), value, F32)
        for symmetric_range in (True, False):
            quantizer = Uniform(bits=4, symmetric=symmetric_range)
            expected = fake_quant_reference(flat, value, value, 4, symmetric_range)
            np.testing.assert_allclose(_quantize(quantizer, flat), expected, rtol=1e-6)
            np.testing.assert_allclose(_quantize(quantizer, flat), flat, rtol=1e-6)


def test_uniform_asymmetric_range_is_nudged_to_hold_zero():
    x = np.array([-0.3, 0.0, 0.8, 1.7, -0.05], F32)
    quantizer = Uniform(bits=3, symmetric=False)
    y = _quantize(quantizer, x)
    np.testing.assert_allclose(y, fake_quant_reference(x, -0.3, 1.7, 3, False), rtol=1e-6)
    assert y[1] == 0.0


def _moving_average_uniform(low, high, shape, **kwargs):
    quantizer = Uniform(ranges="moving_average", **kwargs)
    quantizer.build(shape)
    quantizer.range_min.assign(np.asarray(low, F32))
    quantizer.range_max.assign(np.asarray(high, F32))
    quantizer.initialized.assign(True)
    return quantizer


def test_uniform_moving_average_follows_numpy_ema():
    momentum = 0.9
    batches = [_random((6, 4), seed=30 + i, scale=1 + i) for i in range(4)]
    for per_channel in (False, True):
        quantizer = Uniform(
            bits=4,
            symmetric=False,
            ranges="moving_average",
            momentum=momentum,
            per_channel=per_channel,
        )
        axis = 0 if per_channel else None
        channel_axis = 1 if per_channel else None
        low, high = None, None
        for batch in batches[:3]:
            batch_min, batch_max = batch.min(axis=axis), batch.max(axis=axis)
            if low is None:
                low, high = batch_min, batch_max
            else:
                low = momentum * low + (1 - momentum) * batch_min
                high = momentum * high + (1 - momentum) * batch_max
            y = _quantize(quantizer, batch, training=True)
            expected = fake_quant_reference(batch, low, high, 4, False, axis=channel_axis)
            np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(quantizer.range_min.numpy(), low, rtol=1e-5)
        np.testing.assert_allclose(quantizer.range_max.numpy(), high, rtol=1e-5)
        # Inference: stored ranges used as they are, not updated.
        y = _quantize(quantizer, batches[3], training=False)
        np.testing.assert_allclose(quantizer.range_min.numpy(), low, rtol=1e-5)
        np.testing.assert_allclose(quantizer.range_max.numpy(), high, rtol=1e-5)
        expected = fake_quant_reference(batches[3], low, high, 4, False, axis=channel_axis)
        np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-5)


def test_uniform_moving_average_values_at_and_beyond_the_range():
    quantizer = _moving_average_uniform(-1.0, 1.0, (6,), bits=8, symmetric=True)
    x = np.array([-1.0, 1.0, -1.5, 2.0, 0.0, 0.5], F32)
    y = _quantize(quantizer, x)
    np.testing.assert_allclose(y, fake_quant_reference(x, -1.0, 1.0, 8, True), rtol=1e-6)
    np.testing.assert_allclose(y[:4], [-1, 1, -1, 1], rtol=1e-6)


def test_uniform_gradient_is_straight_through_inside_the_range():
    quantizer = _moving_average_uniform(-1.0, 1.0, (7,), bits=8, symmetric=True)
    x = np.array([-1.5, -1.0, -0.3, 0.0, 0.7, 1.0, 1.2], F32)
    upstream = _random(x.shape, seed=3)
    (d_x,) = _gradients(quantizer, x, upstream, [])
    np.testing.assert_array_equal(d_x, upstream * np.array([0, 1, 1, 1, 1, 1, 0], F32))
    # minmax: every value lies in its own range, and the range passes no gradient
    # (through min/max) back to the extreme values.
    x = _random((5, 6), seed=4)
    upstream = _random(x.shape, seed=5)
    for per_channel in (False, True):
        (d_x,) = _gradients(Uniform(bits=4, per_channel=per_channel), x, upstream, [])
        np.testing.assert_allclose(d_x, upstream, rtol=1e-6)
    # Nudging can leave an extreme value just outside the range ([-0.3, 1.7] with
    # 3 bits nudges to [-2/7, 12/7]): it gets no gradient, also not through min/max.
    x = np.array([-0.3, 0.0, 0.8, 1.7], F32)
    nudged_min, nudged_max, _ = fake_quant_range(-0.3, 1.7, 3, symmetric=False)
    assert x[0] < nudged_min and x[-1] <= nudged_max
    (d_x,) = _gradients(Uniform(bits=3, symmetric=False), x, np.ones(4, F32), [])
    np.testing.assert_array_equal(d_x, [0, 1, 1, 1])


def test_uniform_deploy_grid_holds_the_outputs():
    x = np.linspace(-3, 3, 4001, dtype=F32)  # beyond the range on both sides
    for symmetric in (True, False):
        quantizer = _moving_average_uniform(-0.7, 2.3, x.shape, bits=4, symmetric=symmetric)
        y = _quantize(quantizer, x)
        grid = quantizer.deploy_grid()
        assert grid.kind == grid_kinds.UNIFORM and grid.bits == 4 and grid.axis is None
        codes = (y - grid.range_min) / grid.scale
        np.testing.assert_allclose(codes, np.round(codes), atol=1e-3)
        count = 15 if symmetric else 16
        assert set(np.round(codes).astype(int)) == set(range(count))
        np.testing.assert_allclose([y.min(), y.max()], [grid.range_min, grid.range_max], rtol=1e-6)
    weights = _random((3, 3, 2, 4), seed=1)
    minmax = Uniform(bits=8, per_channel=True)
    with pytest.raises(ValueError, match="latent"):
        minmax.deploy_grid()
    grid = minmax.deploy_grid(weights)
    assert grid.axis == 3 and grid.scale.shape == (4,)
    magnitude = np.abs(weights).max(axis=(0, 1, 2))
    np.testing.assert_allclose(grid.range_max, magnitude, rtol=1e-5)
    np.testing.assert_allclose(grid.scale, magnitude / 127, rtol=1e-5)


# --------------------------------------------------------------------------------------
# arguments, configuration, aliases, larq integration
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "factory, argument",
    [
        (lambda: PACT(bits=0), "bits"),
        (lambda: PACT(bits=9), "bits"),
        (lambda: PACT(bits=2.0), "bits"),
        (lambda: PACT(bits=True), "bits"),
        (lambda: PACT(alpha_init=0.0), "alpha_init"),
        (lambda: PACT(alpha_init=-1.0), "alpha_init"),
        (lambda: PACT(alpha_init=float("inf")), "alpha_init"),
        (lambda: PACT(alpha_init="1"), "alpha_init"),
        (lambda: PACT(alpha_regularization=-0.1), "alpha_regularization"),
        (lambda: PACT(alpha_regularization=float("nan")), "alpha_regularization"),
        (lambda: LSQ(bits=0), "bits"),
        (lambda: LSQ(bits=9), "bits"),
        (lambda: LSQ(bits=1, signed=True), "bits"),
        (lambda: LSQ(signed=1), "signed"),
        (lambda: LSQ(per_channel="yes"), "per_channel"),
        (lambda: LSQ(axis=1.5), "axis"),
        (lambda: Uniform(bits=1), "bits"),
        (lambda: Uniform(bits=9), "bits"),
        (lambda: Uniform(symmetric=None), "symmetric"),
        (lambda: Uniform(ranges="ema"), "ranges"),
        (lambda: Uniform(momentum=0.0), "momentum"),
        (lambda: Uniform(momentum=1.0), "momentum"),
        (lambda: Uniform(momentum=1.5), "momentum"),
        (lambda: Uniform(axis="channels"), "axis"),
    ],
)
def test_invalid_arguments_raise_value_error_naming_the_argument(factory, argument):
    with pytest.raises(ValueError, match=f"`{argument}`") as error:
        factory()
    assert "got" in str(error.value)


def test_allowed_values_are_stated():
    with pytest.raises(ValueError, match="from 2 to 8"):
        LSQ(bits=1, signed=True)
    with pytest.raises(ValueError, match="from 1 to 8"):
        PACT(bits=0)
    with pytest.raises(ValueError, match="minmax"):
        Uniform(ranges="ema")


@pytest.mark.parametrize(
    "quantizer, shape",
    [
        (LSQ(per_channel=True, axis=2), (4, 3)),
        (LSQ(per_channel=True, axis=-3), (4, 3)),
        (Uniform(per_channel=True, axis=4), (2, 2, 2, 2)),
        (Uniform(per_channel=True, axis=-2, ranges="moving_average"), (5,)),
    ],
)
def test_wrong_axis_for_the_input_rank_fails_at_build(quantizer, shape):
    with pytest.raises(ValueError, match="`axis`"):
        quantizer(tf.zeros(shape))


def test_per_channel_layer_with_wrong_axis_fails_when_the_model_is_built():
    with pytest.raises(ValueError, match="`axis`"):
        layer = lq.layers.QuantDense(3, kernel_quantizer=LSQ(per_channel=True, axis=2))
        layer(tf.zeros((1, 4)))


CONFIGURED = [
    PACT(bits=3, alpha_init=6.0, alpha_regularization=1e-4),
    LSQ(bits=2, signed=True, per_channel=True, axis=0),
    Uniform(
        bits=5, symmetric=False, per_channel=True, axis=1, ranges="moving_average", momentum=0.9
    ),
]


@pytest.mark.parametrize("quantizer", CONFIGURED, ids=lambda q: type(q).__name__)
def test_get_config_round_trips(quantizer):
    config = quantizer.get_config()
    rebuilt = type(quantizer).from_config(config)
    assert rebuilt.get_config() == config
    restored = tfq_plus.quantizers.get(tfq_plus.quantizers.serialize(quantizer))
    assert type(restored) is type(quantizer) and restored.get_config() == config
    assert restored.precision == quantizer.precision == config["bits"]


@pytest.mark.parametrize("alias, cls", [("pact", PACT), ("lsq", LSQ), ("uniform_quantizer", Uniform)])
def test_aliases_resolve(alias, cls):
    assert isinstance(tfq_plus.quantizers.get(alias), cls)
    assert isinstance(lq.quantizers.get(alias), cls)
    layer = lq.layers.QuantConv2D(2, 3, input_quantizer=alias, kernel_quantizer=alias)
    assert isinstance(layer.input_quantizer, cls) and isinstance(layer.kernel_quantizer, cls)
    y = layer(tf.constant(_random((1, 5, 5, 2), seed=1)))
    assert y.shape == (1, 3, 3, 2) and np.all(np.isfinite(y.numpy()))


def test_uniform_short_alias_is_tfq_plus_get_only():
    assert isinstance(tfq_plus.quantizers.get("uniform"), Uniform)
    # Keras's own "uniform" (RandomUniform, Embedding's default initializer) is untouched
    assert isinstance(tf.keras.initializers.get("uniform"), tf.keras.initializers.RandomUniform)
    embedding = tf.keras.layers.Embedding(10, 4)
    assert embedding(tf.constant([[1, 2]])).shape == (1, 2, 4)


def test_quantizer_variables_are_tracked_by_the_larq_layer():
    layer = lq.layers.QuantConv2D(
        2, 3, input_quantizer=PACT(), kernel_quantizer=LSQ(signed=True, per_channel=True)
    )
    layer(tf.zeros((1, 5, 5, 2)))
    names = sorted(w.name.split("/")[-1] for w in layer.weights)
    assert names == ["alpha:0", "bias:0", "initialized:0", "kernel:0", "step:0"]
    non_trainable = [w.name.split("/")[-1] for w in layer.non_trainable_weights]
    assert non_trainable == ["initialized:0"]


def test_larq_summary_reports_the_precisions():
    model = tf.keras.Sequential(
        [
            tf.keras.Input((8, 8, 3)),
            lq.layers.QuantConv2D(
                4, 3, input_quantizer="lsq", kernel_quantizer=LSQ(bits=3, signed=True)
            ),
            PACT(bits=2),
            lq.layers.QuantConv2D(
                4, 3, input_quantizer=PACT(bits=5), kernel_quantizer=Uniform(bits=6)
            ),
            Uniform(bits=8, ranges="moving_average"),
        ]
    )
    lines = io.StringIO()
    lq.models.summary(model, print_fn=lambda line: lines.write(line + "\n"))
    text = lines.getvalue()
    # Kernel precisions count parameters; MACs take the wider of input and kernel.
    for column in ("# 3-bit", "# 6-bit", "4-bit MACs", "6-bit MACs"):
        assert column in text, text
    input_precisions = re.findall(r"^\| quant_conv2d\S*\s+(\d+)\s", text, re.MULTILINE)
    assert input_precisions == ["4", "5"], text
    y = model(_random((2, 8, 8, 3), seed=2))
    assert y.shape == (2, 4, 4, 4)
