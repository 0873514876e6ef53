"""Weight quantizer families: ScaledSign, TTQ, PowerOfTwo, LogQuantizer, ShiftQuantizer.

Every expected value comes from a numpy reference written here from the paper's
formula (never from the code under test): forward values on random kernels and edge
cases, gradients against the analytic pseudo-gradients, argument checks, config
round trips, aliases inside larq layers, larq's summary, and deploy grids that
contain every quantized value.
"""

import inspect
import itertools

import tfq_plus  # noqa: F401  (selects Keras 2 before TensorFlow is imported)

import larq as lq
import numpy as np
import pytest
import tensorflow as tf

from tfq_plus import quantizers
from tfq_plus.quantizers import grid as qgrid
from tfq_plus.quantizers import (
    TTQ,
    LogQuantizer,
    LogSqrt2Quantizer,
    PowerOfTwo,
    ScaledSign,
    ShiftQuantizer,
)

RNG = np.random.RandomState(20240601)
CONV = (RNG.randn(3, 3, 4, 8) * 0.2).astype(np.float32)  # Conv2D kernel, 8 output channels
DENSE = RNG.randn(16, 10).astype(np.float32)  # Dense kernel, 10 output units
ONE_CHANNEL = RNG.randn(7, 1).astype(np.float32)  # per-channel with a single channel
KERNELS = {"conv": CONV, "dense": DENSE, "one_channel": ONE_CHANNEL}


def normal(*shape, seed=7):
    """Fixed standard-normal data for one test, independent of which tests run."""
    return np.random.RandomState(seed).randn(*shape)


def run(quantizer, w):
    return quantizer(tf.constant(w)).numpy()


def gradients(quantizer, w, dy, extra=()):
    """d(sum(q * dy)) / d(w, *extra): the upstream gradient dy pulled back."""
    w = tf.Variable(w)
    with tf.GradientTape() as tape:
        q = quantizer(w)
        loss = tf.reduce_sum(q * dy)
    return [g.numpy() for g in tape.gradient(loss, [w, *extra])]


# ---------------------------------------------------------------- numpy references


def np_sign(x):
    """larq's sign: sign(0) = +1."""
    return np.where(x >= 0, 1.0, -1.0)


def per_slice(reference, w, axis, **kwargs):
    """Apply a per-tensor reference to each slice along ``axis``."""
    moved = np.moveaxis(w, axis, 0)
    out = np.stack([reference(moved[c], **kwargs) for c in range(moved.shape[0])])
    return np.moveaxis(out, 0, axis)


def ref_scaled_sign(w):
    alpha = np.mean(np.abs(w.astype(np.float64)))
    return alpha * np_sign(w)


def ref_scaled_sign_grad(w, dy, clip_value):
    """XNOR-Net: dL/dw = dL/dq * (1/n + alpha * 1{|w| <= clip})."""
    alpha = np.mean(np.abs(w.astype(np.float64)))
    window = np.ones_like(w) if clip_value is None else (np.abs(w) <= clip_value)
    return dy * (1.0 / w.size + alpha * window)


def ref_ttq(w, threshold, w_p, w_n):
    delta = threshold * np.max(np.abs(w))
    return np.where(w > delta, w_p, np.where(w < -delta, -w_n, 0.0))


def ref_ttq_grads(w, dy, threshold, w_p, w_n):
    delta = threshold * np.max(np.abs(w))
    positive, negative = w > delta, w < -delta
    d_w = dy * np.where(positive, w_p, np.where(negative, w_n, 1.0))
    return d_w, np.sum(dy[positive]), -np.sum(dy[negative])


def ref_inq(w, bits):
    """INQ Eq. 4 with n1 = floor(log2(4 s / 3)), literally: loop over adjacent pairs of P."""
    w = w.astype(np.float64)
    a = np.abs(w)
    s = a.max()
    q = np.zeros_like(w)
    if s == 0:
        return q
    n1 = np.floor(np.log2(4.0 * s / 3.0))
    n2 = n1 - (2 ** (bits - 1) - 1) + 1
    powers = [0.0] + [2.0**e for e in np.arange(n2, n1 + 1)]
    for alpha, beta in zip(powers[:-1], powers[1:]):
        q[((alpha + beta) / 2 <= a) & (a < 1.5 * beta)] = beta
    return q * np.sign(w)


def ref_log(x, bits, base, fsr=None):
    """LogNet: sign(x) * base^Clip(Round(log_base |x|), FSR - 2^(b-1) + 1, FSR)."""
    b = 2.0 if base == "2" else np.sqrt(2.0)
    x = x.astype(np.float64)
    a = np.abs(x)

    def log_round(v):
        return np.floor(np.log(v) / np.log(b) + 0.5)

    if fsr is None:
        fsr = log_round(a.max()) if a.max() > 0 else 0.0
    q = np.zeros_like(x)
    nonzero = a > 0
    e = np.minimum(log_round(a[nonzero]), fsr)  # Clip: e >= max -> max
    keep = e > fsr - 2 ** (bits - 1) + 1  # Clip: e <= min -> the zero code
    q[nonzero] = np.where(keep, np.sign(x[nonzero]) * b**e, 0.0)
    return q


def ref_shift(w, bits, num_shifts):
    """ShiftCNN: greedy argmin over the codebook; ties to the larger magnitude."""
    s = np.max(np.abs(w))
    if s == 0:
        return np.zeros(w.shape)
    magnitudes = [2.0**-k for k in range(2 ** (bits - 1) - 1)]
    codebook = np.array([0.0] + magnitudes + [-m for m in magnitudes])
    assert codebook.size == 2**bits - 1
    residual = (w.astype(np.float32) / np.float32(s)).astype(np.float64)
    total = np.zeros(w.shape)
    for _ in range(num_shifts):
        distance = np.abs(residual[..., None] - codebook)
        nearest = distance == distance.min(axis=-1, keepdims=True)
        pick = np.argmax(np.where(nearest, np.abs(codebook), -1.0), axis=-1)
        term = codebook[pick]
        total += term
        residual -= term
    return float(s) * total


# ---------------------------------------------------------------- ScaledSign


@pytest.mark.parametrize("name", sorted(KERNELS))
@pytest.mark.parametrize("per_channel", [True, False])
def test_scaled_sign_forward(name, per_channel):
    w = KERNELS[name]
    expected = per_slice(ref_scaled_sign, w, -1) if per_channel else ref_scaled_sign(w)
    actual = run(ScaledSign(per_channel=per_channel), w)
    np.testing.assert_allclose(actual, expected, rtol=1e-6)


def test_scaled_sign_axis_and_edge_cases():
    # Per input channel of a depthwise kernel (axis=2).
    np.testing.assert_allclose(
        run(ScaledSign(axis=2), CONV), per_slice(ref_scaled_sign, CONV, 2), rtol=1e-6
    )
    # sign(0) = +1: a zero weight gets +alpha of its channel.
    w = np.array([[0.0, -0.5], [0.0, 0.5], [-3.0, 0.0]], np.float32)
    expected = [[1.0, -1 / 3], [1.0, 1 / 3], [-1.0, 1 / 3]]
    np.testing.assert_allclose(run(ScaledSign(), w), expected, rtol=1e-6)
    # All-zero and all-equal tensors.
    assert np.all(run(ScaledSign(), np.zeros((3, 3, 2, 4), np.float32)) == 0.0)
    equal = np.full((5, 3), -0.3, np.float32)
    np.testing.assert_allclose(run(ScaledSign(), equal), -0.3, rtol=1e-6)


@pytest.mark.parametrize("per_channel", [True, False])
@pytest.mark.parametrize("clip_value", [1.0, 0.25, None])
def test_scaled_sign_gradient(per_channel, clip_value):
    # Include weights exactly at the clip bound (gradient window is inclusive) and beyond it.
    w = CONV * 4.0
    w[0, 0, 0, :2] = 0.25
    w[0, 0, 1, :2] = -1.0
    w[0, 0, 2, :2] = np.nextafter(np.float32(1.0), np.float32(2.0))
    dy = normal(*w.shape).astype(np.float32)
    (actual,) = gradients(ScaledSign(clip_value=clip_value, per_channel=per_channel), w, dy)
    if per_channel:
        expected = np.stack(
            [
                ref_scaled_sign_grad(w[..., c], dy[..., c], clip_value)
                for c in range(w.shape[-1])
            ],
            -1,
        )
    else:
        expected = ref_scaled_sign_grad(w, dy, clip_value)
    np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-7)
    if clip_value == 1.0:
        # Only the 1/n term survives outside the window.
        n = w.size // w.shape[-1] if per_channel else w.size
        np.testing.assert_allclose(actual[0, 0, 2, :2], dy[0, 0, 2, :2] / n, rtol=1e-5)


# ---------------------------------------------------------------- TTQ


def make_ttq(w, threshold=0.05, w_p=0.7, w_n=1.3):
    quantizer = TTQ(threshold=threshold)
    quantizer.build(w.shape)
    quantizer.positive_scale.assign(w_p)
    quantizer.negative_scale.assign(w_n)
    return quantizer


@pytest.mark.parametrize("name", sorted(KERNELS))
@pytest.mark.parametrize("threshold", [0.05, 0.5])
def test_ttq_forward(name, threshold):
    w = KERNELS[name]
    actual = run(make_ttq(w, threshold), w)
    np.testing.assert_allclose(actual, ref_ttq(w, threshold, 0.7, 1.3), rtol=1e-6)
    assert set(np.unique(actual)) <= {np.float32(-1.3), 0.0, np.float32(0.7)}


def test_ttq_threshold_ties_and_edge_cases():
    # max |w| = 1 and t = 0.25 make Delta = 0.25 exactly; |w| = Delta is zero.
    above = np.nextafter(np.float32(0.25), np.float32(1.0))
    w = np.array([1.0, 0.25, -0.25, above, -above, 0.0, -1.0], np.float32)
    actual = run(make_ttq(w, threshold=0.25), w)
    np.testing.assert_allclose(actual, [0.7, 0, 0, 0.7, -1.3, 0, -1.3], rtol=1e-6)
    np.testing.assert_allclose(actual, ref_ttq(w, 0.25, 0.7, 1.3), rtol=1e-6)
    # All zeros: Delta = 0, everything is zero, gradients finite.
    zeros = np.zeros((3, 4), np.float32)
    quantizer = make_ttq(zeros)
    assert np.all(run(quantizer, zeros) == 0.0)
    scales = [quantizer.positive_scale, quantizer.negative_scale]
    grads = gradients(quantizer, zeros, np.ones_like(zeros), scales)
    np.testing.assert_array_equal(grads[0], np.ones_like(zeros))
    assert grads[1] == 0.0 and grads[2] == 0.0
    # All equal: every weight is above Delta.
    equal = np.full((3, 4), 0.3, np.float32)
    np.testing.assert_allclose(run(make_ttq(zeros), equal), 0.7, rtol=1e-6)


@pytest.mark.parametrize("name", sorted(KERNELS))
def test_ttq_gradients(name):
    w = KERNELS[name].copy()
    tie = np.argmin(np.abs(w))
    w.flat[tie] = 0.5 * np.abs(w).max()  # exactly at Delta for t = 0.5: inside the zero band
    dy = normal(*w.shape).astype(np.float32)
    quantizer = make_ttq(w, threshold=0.5)
    scales = [quantizer.positive_scale, quantizer.negative_scale]
    d_w, d_wp, d_wn = gradients(quantizer, w, dy, scales)
    e_w, e_wp, e_wn = ref_ttq_grads(w, dy, 0.5, 0.7, 1.3)
    np.testing.assert_allclose(d_w, e_w, rtol=1e-6)
    np.testing.assert_allclose(d_wp, e_wp, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(d_wn, e_wn, rtol=1e-5, atol=1e-6)
    assert d_w.flat[tie] == dy.flat[tie]


def test_ttq_scales_train_inside_a_larq_layer():
    """TTQ as kernel_quantizer: its scales are layer weights with the paper's gradients
    (checked through a Dense layer in a tf.function, where dL/dq = x^T g)."""
    layer = lq.layers.QuantDense(6, kernel_quantizer=TTQ(threshold=0.3), use_bias=False)
    x = tf.constant(normal(5, 16).astype(np.float32))
    g = tf.constant(normal(5, 6, seed=8).astype(np.float32))
    layer(x)  # builds the layer, and the quantizer on its first kernel read
    quantizer = layer.kernel_quantizer
    quantizer.positive_scale.assign(0.9)
    quantizer.negative_scale.assign(0.4)
    names = {v.name.split("/")[-1] for v in layer.trainable_weights}
    assert {"kernel:0", "positive_scale:0", "negative_scale:0"} <= names

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(layer(x) * g)
        scales = [quantizer.positive_scale, quantizer.negative_scale]
        return tape.gradient(loss, [layer.kernel, *scales])

    d_kernel, d_wp, d_wn = [t.numpy() for t in step()]
    latent = layer.kernel.latent_variable.numpy()
    d_q = x.numpy().T @ g.numpy()
    e_kernel, e_wp, e_wn = ref_ttq_grads(latent, d_q, 0.3, 0.9, 0.4)
    np.testing.assert_allclose(d_kernel, e_kernel, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(d_wp, e_wp, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(d_wn, e_wn, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(
        layer(x).numpy(), x.numpy() @ ref_ttq(latent, 0.3, 0.9, 0.4), rtol=1e-5, atol=1e-6
    )


# ---------------------------------------------------------------- PowerOfTwo


@pytest.mark.parametrize("name", sorted(KERNELS))
@pytest.mark.parametrize("bits", [2, 3, 4, 5, 8])
@pytest.mark.parametrize("per_channel", [False, True])
def test_power_of_two_forward(name, bits, per_channel):
    w = KERNELS[name]
    if per_channel:
        expected = per_slice(ref_inq, w, -1, bits=bits)
    else:
        expected = ref_inq(w, bits)
    # Powers of two are exact: no tolerance.
    np.testing.assert_array_equal(run(PowerOfTwo(bits=bits, per_channel=per_channel), w), expected)


def test_power_of_two_boundaries():
    # max |w| = 1: n1 = floor(log2(4/3)) = 0; bits=3 gives P = {0, 1/4, 1/2, 1}.
    below = lambda v: np.nextafter(np.float32(v), np.float32(0))  # noqa: E731
    w = np.array(
        [1.0, 0.75, below(0.75), 0.375, below(0.375), 0.125, below(0.125), 0.0, -0.75, -0.125],
        np.float32,
    )
    expected = [1.0, 1.0, 0.5, 0.5, 0.25, 0.25, 0.0, 0.0, -1.0, -0.25]
    np.testing.assert_array_equal(run(PowerOfTwo(bits=3), w), expected)
    np.testing.assert_array_equal(ref_inq(w, 3), expected)
    # The anchor itself at its boundary: s = 3/4 gives n1 = 0, just below gives n1 = -1.
    at_anchor = np.array([0.75, 0.3], np.float32)
    below_anchor = np.array([below(0.75), 0.3], np.float32)
    np.testing.assert_array_equal(run(PowerOfTwo(bits=2), at_anchor), [1.0, 0.0])
    np.testing.assert_array_equal(run(PowerOfTwo(bits=2), below_anchor), [0.5, 0.5])
    # All-zero tensor / channel, all-equal tensor.
    zeros = np.zeros((3, 3, 2, 4), np.float32)
    out = run(PowerOfTwo(bits=4, per_channel=True), zeros)
    assert np.all(out == 0.0) and not np.any(np.isnan(out))
    mixed = DENSE.copy()
    mixed[:, 3] = 0.0
    np.testing.assert_array_equal(
        run(PowerOfTwo(bits=4, per_channel=True), mixed), per_slice(ref_inq, mixed, -1, bits=4)
    )
    np.testing.assert_array_equal(run(PowerOfTwo(), np.full((4, 4), -0.3, np.float32)), -0.25)


def test_power_of_two_boundaries_across_scales():
    """Anchors exactly at 3 * 2^(k-2) (n1 = k) and one float below (n1 = k - 1), for
    k = -30 .. 30: a float32 log2 misjudges floor(log2(4 s / 3)) at some of these."""
    k = np.arange(-30, 31)
    at = (3.0 * 2.0 ** (k - 2)).astype(np.float32)
    below = np.nextafter(at, np.float32(0))
    exact_anchor = np.stack([at, at / 2, below / 2])  # one channel per k
    low_anchor = np.stack([below, at / 2, below / 2])
    cases = (
        (exact_anchor, k, [2.0**k, 2.0 ** (k - 1), 2.0 ** (k - 2)]),
        (low_anchor, k - 1, [2.0 ** (k - 1), 2.0 ** (k - 1), 2.0 ** (k - 2)]),
    )
    for kernel, top, expected in cases:
        quantizer = PowerOfTwo(bits=3, per_channel=True)
        actual = run(quantizer, kernel)
        np.testing.assert_array_equal(actual, np.array(expected))
        np.testing.assert_array_equal(actual, per_slice(ref_inq, kernel, -1, bits=3))
        low, high = quantizer.deploy_grid(kernel).exponent_range
        np.testing.assert_array_equal(high, top)
        np.testing.assert_array_equal(low, top - 2)


# ---------------------------------------------------------------- LogQuantizer


@pytest.mark.parametrize("name", sorted(KERNELS))
@pytest.mark.parametrize("base", ["2", "sqrt2"])
@pytest.mark.parametrize("bits", [2, 3, 4, 6])
def test_log_forward(name, base, bits):
    w = KERNELS[name]
    for fsr in (None, -2):
        actual = run(LogQuantizer(bits=bits, base=base, fsr=fsr), w)
        np.testing.assert_allclose(actual, ref_log(w, bits, base, fsr=fsr), rtol=1e-6)


def test_log_on_activations():
    x = np.maximum(normal(4, 6, 6, 3).astype(np.float32), 0.0)  # ReLU output
    for base in ("2", "sqrt2"):
        out = run(LogQuantizer(bits=4, base=base), x)
        np.testing.assert_allclose(out, ref_log(x, 4, base), rtol=1e-6)
        assert np.all(out >= 0.0)


def test_log_clip_bounds():
    # fsr = 0, bits = 3: exponents <= 0 - 4 + 1 = -3 are the zero code; window -2 .. 0.
    w = np.array([2.0**-3, 2.0**-2, 1.0, 8.0, -8.0, 2.0**-2.49, 2.0**-2.51, 0.0, -0.3], np.float32)
    expected = [0.0, 0.25, 1.0, 1.0, -1.0, 0.25, 0.0, 0.0, -0.25]
    np.testing.assert_array_equal(run(LogQuantizer(bits=3, fsr=0), w), expected)
    np.testing.assert_array_equal(ref_log(w, 3, "2", fsr=0), expected)
    # Base sqrt(2), fsr = 2 (top value 2): window sqrt2^0 .. sqrt2^2 = {1, 1.414, 2}.
    w = np.array([0.8, 0.9, 1.2, 1.5, 5.0, 0.0], np.float32)
    expected = [0.0, 1.0, np.sqrt(2.0), np.sqrt(2.0), 2.0, 0.0]
    np.testing.assert_allclose(run(LogSqrt2Quantizer(bits=3, fsr=2), w), expected, rtol=1e-6)
    np.testing.assert_allclose(ref_log(w, 3, "sqrt2", fsr=2), expected, rtol=1e-12)
    # Zeros stay zero (no NaN), all-equal tensors land on one level.
    assert np.all(run(LogQuantizer(), np.zeros((2, 3), np.float32)) == 0.0)
    np.testing.assert_array_equal(run(LogQuantizer(), np.full((2, 3), 3.0, np.float32)), 4.0)


# ---------------------------------------------------------------- ShiftQuantizer


@pytest.mark.parametrize("name", sorted(KERNELS))
@pytest.mark.parametrize("bits,num_shifts", [(2, 1), (3, 2), (4, 2), (3, 3), (5, 4)])
@pytest.mark.parametrize("per_channel", [False, True])
def test_shift_forward(name, bits, num_shifts, per_channel):
    w = KERNELS[name]
    quantizer = ShiftQuantizer(bits=bits, num_shifts=num_shifts, per_channel=per_channel)
    if per_channel:
        expected = per_slice(ref_shift, w, -1, bits=bits, num_shifts=num_shifts)
    else:
        expected = ref_shift(w, bits, num_shifts)
    np.testing.assert_allclose(run(quantizer, w), expected, rtol=1e-6)


def test_shift_ties_and_edge_cases():
    # s = 1, bits = 3: C = {0, +-1, +-1/2, +-1/4}. Ties go to the larger magnitude.
    w = np.array([1.0, 0.75, 0.375, 0.125, -0.75, 0.625, 0.3, 0.0, -1.0], np.float32)
    one = [1.0, 1.0, 0.5, 0.25, -1.0, 0.5, 0.25, 0.0, -1.0]
    # Second terms: 0.375 -> 0.5 - 1/4 (residual -1/8 is a tie), 0.125 -> 1/4 - 1/4,
    # 0.625 -> 0.5 + 1/4 (residual 1/8 is a tie).
    two = [1.0, 0.75, 0.25, 0.0, -0.75, 0.75, 0.25, 0.0, -1.0]
    np.testing.assert_array_equal(run(ShiftQuantizer(bits=3, num_shifts=1), w), one)
    np.testing.assert_array_equal(run(ShiftQuantizer(bits=3, num_shifts=2), w), two)
    np.testing.assert_array_equal(ref_shift(w, 3, 1), one)
    np.testing.assert_array_equal(ref_shift(w, 3, 2), two)
    # Zeros, a zero channel, all-equal.
    assert np.all(run(ShiftQuantizer(per_channel=True), np.zeros((3, 3, 2, 4), np.float32)) == 0.0)
    mixed = CONV.copy()
    mixed[..., 5] = 0.0
    np.testing.assert_allclose(
        run(ShiftQuantizer(per_channel=True), mixed),
        per_slice(ref_shift, mixed, -1, bits=3, num_shifts=2),
        rtol=1e-6,
    )
    equal = np.full((4, 2), 0.3, np.float32)
    np.testing.assert_allclose(run(ShiftQuantizer(), equal), 0.3, rtol=1e-7)


# ---------------------------------------------------------------- STE gradients


@pytest.mark.parametrize(
    "quantizer",
    [
        PowerOfTwo(bits=4),
        PowerOfTwo(bits=3, per_channel=True),
        LogQuantizer(bits=4),
        LogSqrt2Quantizer(bits=3, fsr=-1),
        ShiftQuantizer(bits=3, num_shifts=2, per_channel=True),
    ],
    ids=lambda q: type(q).__name__,
)
def test_straight_through_gradient(quantizer):
    w = CONV.copy()
    w[0, 0, 0, 0] = 0.0
    dy = normal(*w.shape).astype(np.float32)
    (actual,) = gradients(quantizer, w, dy)
    np.testing.assert_array_equal(actual, dy)


# ---------------------------------------------------------------- arguments


@pytest.mark.parametrize(
    "factory,argument",
    [
        (lambda: ScaledSign(clip_value=0.0), "clip_value"),
        (lambda: ScaledSign(clip_value=-1.0), "clip_value"),
        (lambda: ScaledSign(per_channel="yes"), "per_channel"),
        (lambda: ScaledSign(axis=1.0), "axis"),
        (lambda: TTQ(threshold=0.0), "threshold"),
        (lambda: TTQ(threshold=1.0), "threshold"),
        (lambda: TTQ(threshold=-0.05), "threshold"),
        (lambda: TTQ(scale_init=0.0), "scale_init"),
        (lambda: PowerOfTwo(bits=1), "bits"),
        (lambda: PowerOfTwo(bits=9), "bits"),
        (lambda: PowerOfTwo(bits=4.0), "bits"),
        (lambda: PowerOfTwo(per_channel=1), "per_channel"),
        (lambda: LogQuantizer(bits=1), "bits"),
        (lambda: LogQuantizer(bits=9), "bits"),
        (lambda: LogQuantizer(base="e"), "base"),
        (lambda: LogQuantizer(base=2), "base"),
        (lambda: LogQuantizer(fsr=0.5), "fsr"),
        (lambda: LogQuantizer(fsr=100), "fsr"),
        (lambda: ShiftQuantizer(bits=1), "bits"),
        (lambda: ShiftQuantizer(num_shifts=0), "num_shifts"),
        (lambda: ShiftQuantizer(num_shifts=5), "num_shifts"),
        (lambda: ShiftQuantizer(axis=7), "axis"),
    ],
)
def test_invalid_arguments(factory, argument):
    with pytest.raises(ValueError, match=f"`{argument}`") as info:
        factory()
    assert "got" in str(info.value)


def test_invalid_argument_messages_list_allowed_values():
    message = r"PowerOfTwo.*`bits` must be an integer from 2 to 8, got 9"
    with pytest.raises(ValueError, match=message):
        PowerOfTwo(bits=9)
    with pytest.raises(ValueError, match=r"`base` must be one of \['2', 'sqrt2'\], got 'e'"):
        LogQuantizer(base="e")
    with pytest.raises(ValueError, match=r"`num_shifts` must be an integer from 1 to 4, got 0"):
        ShiftQuantizer(num_shifts=0)


@pytest.mark.parametrize(
    "quantizer",
    [
        ScaledSign(axis=2),
        ScaledSign(axis=-3),
        PowerOfTwo(per_channel=True, axis=2),
        ShiftQuantizer(per_channel=True, axis=-3),
    ],
    ids=lambda q: type(q).__name__,
)
def test_axis_checked_against_rank_at_build(quantizer):
    with pytest.raises(ValueError, match=r"`axis`=-?\d+ is not an axis of a rank-2 input"):
        quantizer(tf.constant(DENSE))
    with pytest.raises(ValueError, match="`axis`"):
        clone = type(quantizer).from_config(quantizer.get_config())
        lq.layers.QuantDense(4, kernel_quantizer=clone)(tf.zeros((1, 16)))


def test_axis_ignored_per_tensor():
    # Without per_channel, axis names no statistic and is not checked against the rank.
    np.testing.assert_array_equal(run(PowerOfTwo(axis=3), DENSE), ref_inq(DENSE, 4))


# ---------------------------------------------------------------- config, aliases, larq


ALL_CONFIGURED = [
    ScaledSign(clip_value=0.5, per_channel=False, axis=2),
    ScaledSign(clip_value=None),
    TTQ(threshold=0.1, scale_init=0.5),
    PowerOfTwo(bits=5, per_channel=True, axis=-2),
    LogQuantizer(bits=3, base="sqrt2", fsr=-1),
    LogSqrt2Quantizer(bits=5),
    ShiftQuantizer(bits=4, num_shifts=3, per_channel=True, axis=0),
]


@pytest.mark.parametrize("quantizer", ALL_CONFIGURED, ids=lambda q: type(q).__name__)
def test_get_config_round_trip(quantizer):
    config = quantizer.get_config()
    arguments = set(inspect.signature(type(quantizer).__init__).parameters) - {"self", "kwargs"}
    assert arguments <= set(config), arguments - set(config)
    clone = type(quantizer).from_config(config)
    assert clone.get_config() == config
    assert clone.precision == quantizer.precision
    # Through larq's serialization (what saved models use), by registered class name.
    restored = lq.quantizers.get(quantizers.serialize(quantizer))
    assert type(restored) is type(quantizer)
    assert {k: v for k, v in restored.get_config().items() if k != "name"} == {
        k: v for k, v in config.items() if k != "name"
    }
    np.testing.assert_array_equal(run(clone, CONV), run(quantizer, CONV))


@pytest.mark.parametrize(
    "alias,cls,precision,base",
    [
        ("scaled_sign", ScaledSign, 1, None),
        ("ttq", TTQ, 2, None),
        ("po2", PowerOfTwo, 4, None),
        ("log2", LogQuantizer, 4, "2"),
        ("log_sqrt2", LogSqrt2Quantizer, 4, "sqrt2"),
        ("shift", ShiftQuantizer, 6, None),
    ],
)
def test_alias_in_larq_layers(alias, cls, precision, base):
    quantizer = quantizers.get(alias)
    assert type(quantizer) is cls and quantizer.precision == precision
    via_larq = lq.quantizers.get(alias)
    assert type(via_larq) is cls
    assert {**via_larq.get_config(), "name": None} == {**quantizer.get_config(), "name": None}
    if base is not None:
        assert quantizer.base == base

    x = tf.constant(normal(2, 7, 7, 4).astype(np.float32))
    conv = lq.layers.QuantConv2D(8, 3, kernel_quantizer=alias)
    y = conv(x)
    assert isinstance(conv.kernel_quantizer, cls)
    assert conv.kernel.precision == precision
    effective = conv.kernel_quantizer(tf.convert_to_tensor(conv.kernel.latent_variable))
    expected = tf.nn.conv2d(x, effective, 1, "VALID") + conv.bias
    np.testing.assert_allclose(y.numpy(), expected.numpy(), rtol=1e-5, atol=1e-5)

    dense = lq.layers.QuantDense(5, kernel_quantizer=alias, use_bias=False)
    flat = tf.reshape(x, (2, -1))
    np.testing.assert_allclose(
        dense(flat).numpy(),
        (flat @ dense.kernel_quantizer(tf.convert_to_tensor(dense.kernel.latent_variable))).numpy(),
        rtol=1e-5,
        atol=1e-5,
    )

    depthwise = lq.layers.QuantDepthwiseConv2D(3, depthwise_quantizer=alias, use_bias=False)
    kernel_out = depthwise(x)
    latent = tf.convert_to_tensor(depthwise.depthwise_kernel.latent_variable)
    effective = depthwise.depthwise_quantizer(latent)
    expected = tf.nn.depthwise_conv2d(x, effective, [1, 1, 1, 1], "VALID")
    np.testing.assert_allclose(kernel_out.numpy(), expected.numpy(), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("quantizer", ALL_CONFIGURED, ids=lambda q: type(q).__name__)
def test_standalone_layer_and_summary(quantizer):
    quantizer = type(quantizer).from_config(quantizer.get_config())
    inputs = tf.keras.Input((6, 6, 3))
    x = lq.layers.QuantConv2D(
        4, 3, kernel_quantizer=quantizer, input_quantizer=LogQuantizer(bits=3)
    )(inputs)
    outputs = type(quantizer).from_config({**quantizer.get_config(), "name": "standalone"})(x)
    model = tf.keras.Model(inputs, outputs)
    data = normal(2, 6, 6, 3).astype(np.float32)
    hidden = tf.keras.Model(inputs, x).predict(data, verbose=0)
    np.testing.assert_allclose(
        model.predict(data, verbose=0),
        run(model.get_layer("standalone"), hidden),
        rtol=1e-6,
        atol=1e-7,
    )

    lines = []
    lq.models.summary(model, print_fn=lines.append)
    table = "\n".join(lines)
    assert f"# {quantizer.precision}-bit" in table
    row = next(line for line in table.splitlines() if line.startswith("| quant_conv2d"))
    assert row.split()[2] == "3"  # input precision of the LogQuantizer(bits=3) input
    assert "108" in row.split()  # the 3*3*3*4 kernel weights counted at their precision


# ---------------------------------------------------------------- deploy grids


def grid_values(g, channel):
    """Every value a QuantGrid allows in one channel, enumerated from its fields."""

    def pick(value):
        value = np.asarray(value)
        return value[channel] if value.ndim else value

    if g.kind == qgrid.BINARY:
        return np.array([-pick(g.scale), pick(g.scale)])
    if g.kind == qgrid.TERNARY:
        return np.array([-pick(g.negative_scale), 0.0, pick(g.scale)])
    low, high = (pick(e) for e in g.exponent_range)
    step = np.log2(g.base)
    magnitudes = 2.0 ** np.arange(low, high + step / 2, step)
    if g.kind == qgrid.POWER_OF_TWO:
        assert magnitudes.size == 2 ** (g.bits - 1) - 1
        return pick(g.scale) * np.concatenate([[0.0], magnitudes, -magnitudes])
    assert g.kind == qgrid.SHIFT_SUM
    assert magnitudes.size == 2 ** (g.bits // g.num_terms - 1) - 1
    terms = np.concatenate([[0.0], magnitudes, -magnitudes])
    sums = {sum(c) for c in itertools.product(terms, repeat=g.num_terms)}
    return pick(g.scale) * np.array(sorted(sums))


def assert_on_grid(values, allowed):
    distance = np.min(np.abs(values.reshape(-1, 1) - allowed.reshape(1, -1)), axis=1)
    tolerance = 1e-6 * np.max(np.abs(allowed)) + 1e-12
    assert np.all(distance <= tolerance), values.reshape(-1)[distance > tolerance]


@pytest.mark.parametrize(
    "quantizer,latent",
    [
        (ScaledSign(), CONV),
        (ScaledSign(per_channel=False), DENSE),
        (ScaledSign(axis=2), CONV),
        (TTQ(threshold=0.2), CONV),
        (PowerOfTwo(bits=4), CONV),
        (PowerOfTwo(bits=3, per_channel=True), DENSE),
        (PowerOfTwo(bits=5, per_channel=True), ONE_CHANNEL),
        (LogQuantizer(bits=4), DENSE),
        (LogQuantizer(bits=3, base="sqrt2"), CONV),
        (LogQuantizer(bits=4, fsr=-3), CONV),
        (ShiftQuantizer(bits=3, num_shifts=2), CONV),
        (ShiftQuantizer(bits=2, num_shifts=3, per_channel=True), DENSE),
    ],
    ids=lambda v: type(v).__name__ if not isinstance(v, np.ndarray) else str(v.shape),
)
def test_deploy_grid_contains_every_output(quantizer, latent):
    quantizer = type(quantizer).from_config(quantizer.get_config())
    values = run(quantizer, latent)
    if isinstance(quantizer, TTQ):
        quantizer.positive_scale.assign(0.6)
        quantizer.negative_scale.assign(0.8)
        values = run(quantizer, latent)
    g = quantizer.deploy_grid(tf.Variable(latent))
    assert g.kind in qgrid.GRID_KINDS and g.bits == quantizer.precision
    per_channel = getattr(quantizer, "per_channel", False)
    if per_channel:
        assert g.axis == quantizer.axis % latent.ndim
        moved = np.moveaxis(values, g.axis, 0)
        for channel in range(moved.shape[0]):
            assert_on_grid(moved[channel], grid_values(g, channel))
    else:
        assert g.axis is None
        assert_on_grid(values, grid_values(g, None))


def test_deploy_grid_needs_latent_where_it_depends_on_it():
    for quantizer in (ScaledSign(), PowerOfTwo(), LogQuantizer(), ShiftQuantizer()):
        with pytest.raises(ValueError, match="latent"):
            quantizer.deploy_grid()
    assert LogQuantizer(bits=3, fsr=2).deploy_grid().exponent_range == (0.0, 2.0)
    with pytest.raises(ValueError, match="scales"):
        TTQ().deploy_grid()
