"""Power-of-two weights {0, +-2^e} anchored at the largest weight: INQ's quantizer."""

import math

import larq as lq
import numpy as np
import tensorflow as tf

from tfq_plus.quantizers import grid
from tfq_plus.quantizers.arguments import (
    check_bool,
    check_int_range,
    resolve_axis,
)
from tfq_plus.quantizers.base import QuantizerBase, register

__all__ = ["PowerOfTwo"]


def _inq_exponent(magnitude: tf.Tensor) -> tf.Tensor:
    """floor(log2(4 m / 3)) for m > 0, exact at the boundaries m = 3 * 2^(k-2).

    The log gives the exponent to within one; comparing m with the exactly
    representable boundaries 3 * 2^(e-2) and 3 * 2^(e-1) then corrects it, so a
    value exactly at a boundary is never misplaced by the rounding of the log.
    """
    two = tf.constant(2.0, magnitude.dtype)
    estimate = tf.floor(tf.math.log(magnitude * (4.0 / 3.0)) / math.log(2.0))
    too_small = magnitude >= 3.0 * tf.pow(two, estimate - 1.0)
    too_large = magnitude < 3.0 * tf.pow(two, estimate - 2.0)
    return estimate + tf.cast(too_small, magnitude.dtype) - tf.cast(too_large, magnitude.dtype)


def round_to_powers_of_two(magnitude: tf.Tensor, low, high) -> tf.Tensor:
    r"""Round magnitudes to the set P = {0, 2^low, ..., 2^high} as INQ's Eq. 4 does.

    With alpha < beta adjacent in P (alpha = 0 below 2^low), a magnitude m goes to
    beta where (alpha + beta) / 2 <= m < 3 beta / 2; magnitudes >= 3 * 2^(high-1) go
    to 2^high and magnitudes below 2^(low-1) to 0. This is rounding to the nearest
    element of P with ties going to the larger one.

    Args:
        magnitude: non-negative tensor.
        low, high: the smallest and largest exponent (numbers or tensors that
            broadcast against ``magnitude``, integer-valued).
    """
    dtype = magnitude.dtype
    two = tf.constant(2.0, dtype)
    low = tf.cast(low, dtype)
    high = tf.cast(high, dtype)
    nonzero = magnitude > 0
    # The log of zero is -inf; zeros are masked out at the end.
    safe = tf.where(nonzero, magnitude, tf.ones_like(magnitude))
    exponent = tf.minimum(_inq_exponent(safe), high)
    # Between 2^(low-1) and 3 * 2^(low-2) the exponent is low-1, yet Eq. 4 (with
    # alpha = 0) still rounds up to 2^low.
    smallest = tf.where(safe >= tf.pow(two, low - 1.0), tf.pow(two, low), tf.zeros_like(safe))
    rounded = tf.where(exponent >= low, tf.pow(two, exponent), smallest)
    return tf.where(nonzero, rounded, tf.zeros_like(magnitude))


def _np_inq_exponent(magnitude: np.ndarray) -> np.ndarray:
    """floor(log2(4 m / 3)) for m > 0, exactly, from the binary exponent (numpy)."""
    mantissa, exponent = np.frexp(magnitude)  # m = mantissa * 2^exponent, mantissa in [0.5, 1)
    return exponent - 1 + (mantissa >= 0.75)


@register("po2")
class PowerOfTwo(QuantizerBase):
    r"""Weights rounded to {0, +-2^e}, the exponent window anchored at max |w| (INQ).

    Forward (Zhou et al., Sec. 2.1): with s = max |w| (per output channel if
    ``per_channel``),

    \\[
    n_1 = \lfloor \log_2(4s/3) \rfloor, \qquad n_2 = n_1 - (2^{b-1} - 1) + 1
    \\]

    so the ``b = bits`` code has 1 sign bit and 2^(b-1) magnitude codes: one for zero
    and 2^(b-1) - 1 exponents e in [n_2, n_1]. With P = {0, 2^n_2, ..., 2^n_1} sorted
    and alpha < beta adjacent in P, Eq. 4 gives

    \\[
    q_i = \begin{cases}
      \beta \, \mathrm{sgn}(w_i) & (\alpha + \beta)/2 \le |w_i| < 3\beta/2 \\\
      0 & \text{otherwise}
    \end{cases}
    \\]

    i.e. rounding in the log domain to the nearest power with ties at (alpha+beta)/2
    going to beta. |w| <= s < 3 * 2^(n_1 - 1), so no weight lies above the window.
    An all-zero tensor (or channel) quantizes to zeros.

    Gradient: straight-through, dq/dw = 1. (INQ's incremental freezing of weight
    groups is a training schedule, not part of the quantizer.)

    Deploy grid: ``POWER_OF_TWO`` with ``exponent_range = (n_2, n_1)`` (per-channel
    arrays if ``per_channel``), ``scale = 1``, base 2.

    Arguments:
        bits: int from 2 to 8, default 4: total bits per weight (b = 5 in the paper:
            15 exponents + zero).
        per_channel: bool, default False: anchor the window at each channel's max |w|
            instead of the tensor's.
        axis: int from -5 to 4, default -1: the channel axis; -1 is the output
            channels of Dense/Conv kernels.
        **kwargs: Keras layer arguments (``name``, ``dtype``).

    Raises:
        ValueError: an argument outside the allowed values (naming it).

    Example::

        layer = larq.layers.QuantConv2D(32, 3, kernel_quantizer=PowerOfTwo(bits=4))
        PowerOfTwo(bits=3)(tf.constant([0.9, -0.3, 0.1, 0.0]))
        # -> [1.0, -0.25, 0.0, 0.0]: n_1 = 0, n_2 = -2, P = {0, 1/4, 1/2, 1}

    Reference:
        Zhou, Yao, Guo, Xu, Chen. "Incremental Network Quantization: Towards Lossless
        CNNs with Low-Precision Weights", ICLR 2017. https://arxiv.org/abs/1702.03044
    """

    def __init__(self, bits=4, per_channel=False, axis=-1, **kwargs):
        super().__init__(**kwargs)
        self.bits = check_int_range(self.owner, "bits", bits, 2, 8)
        self.per_channel = check_bool(self.owner, "per_channel", per_channel)
        # Kernels (Dense .. Conv3D) have rank 2 to 5, so a channel axis is -5 .. 4.
        self.axis = check_int_range(self.owner, "axis", axis, -5, 4)
        self.precision = self.bits

    @property
    def num_exponents(self) -> int:
        """Non-zero magnitudes: 2^(bits-1) codes, one of which encodes zero."""
        return 2 ** (self.bits - 1) - 1

    def build(self, input_shape):
        """Check ``axis`` against the kernel's rank (with ``per_channel``)."""
        if self.per_channel:
            self.resolve_channel_axis(input_shape, self.axis)
        super().build(input_shape)

    def call(self, inputs):
        """The power-of-two tensor, same shape as ``inputs``; gradient straight-through."""
        axes = self.reduction_axes(inputs.shape.rank, self.per_channel)
        window = self.num_exponents - 1

        @tf.custom_gradient
        def power_of_two(w):
            abs_w = tf.abs(w)
            s = tf.reduce_max(abs_w, axis=axes, keepdims=True)
            # An all-zero channel has no anchor; any finite one gives it zeros.
            s = tf.where(s > 0, s, tf.ones_like(s))
            top = _inq_exponent(s)
            magnitude = round_to_powers_of_two(abs_w, top - window, top)
            return lq.math.sign(w) * magnitude, lambda dy: dy

        return power_of_two(inputs)

    def _exponent_window(self, latent):
        """(n_2, n_1) for the latent weights: integers, or per-channel arrays."""
        w = np.abs(np.asarray(getattr(latent, "latent_variable", latent)))
        if self.per_channel:
            axis = resolve_axis(self.owner, "axis", self.axis, w.ndim)
            s = np.max(w, axis=tuple(i for i in range(w.ndim) if i != axis))
        else:
            axis = None
            s = np.max(w)
        s = np.where(s > 0, s, 1.0)
        top = _np_inq_exponent(s).astype(np.int32)
        return axis, (top - (self.num_exponents - 1), top)

    def deploy_grid(self, latent=None) -> grid.QuantGrid:
        """``POWER_OF_TWO`` grid; the window is anchored at max |latent|."""
        if latent is None:
            raise ValueError(
                f"{self.owner}: deploy_grid needs `latent` (the latent weights): "
                "the exponent window is anchored at their max |w|"
            )
        axis, exponents = self._exponent_window(latent)
        return grid.QuantGrid(
            kind=grid.POWER_OF_TWO,
            bits=self.bits,
            axis=axis,
            scale=np.asarray(1.0, np.float32),
            exponent_range=exponents,
            base=2.0,
        )

    def get_config(self):
        """The constructor arguments, for saving and ``from_config``."""
        return {
            **super().get_config(),
            "bits": self.bits,
            "per_channel": self.per_channel,
            "axis": self.axis,
        }
