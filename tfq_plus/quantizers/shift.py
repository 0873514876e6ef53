"""Sums of power-of-two terms chosen greedily per weight: ShiftCNN's quantizer."""

import numpy as np
import tensorflow as tf

from tfq_plus.quantizers import grid
from tfq_plus.quantizers.arguments import check_bool, check_int_range, resolve_axis
from tfq_plus.quantizers.base import QuantizerBase, register
from tfq_plus.quantizers.power_of_two import round_to_powers_of_two

__all__ = ["ShiftQuantizer"]


@register("shift")
class ShiftQuantizer(QuantizerBase):
    r"""Each weight becomes s times a sum of ``num_shifts`` codebook values.

    Forward (Gudovskiy & Rigazio, Sec. 3): with s = max |w| (per output channel if
    ``per_channel``) and the codebook of ``b = bits``-bit codes

    \\[
    C = \{0, \pm 2^0, \pm 2^{-1}, \dots, \pm 2^{-M}\}, \qquad M = 2^{b-1} - 2
    \\]

    (2^b - 1 values: a sign bit and 2^(b-1) magnitude codes, one of them zero), the
    residual r = w / s is reduced greedily:

    \\[
    c_n = \arg\min_{c \in C} |r_{n} - c|, \quad r_{n+1} = r_n - c_n, \quad
    q = s \sum_{n=1}^{N} c_n
    \\]

    for n = 1 .. N = ``num_shifts``. Tie rule: when r lies exactly halfway between
    two codebook values, the one of larger magnitude is taken (e.g. 0.75 -> 1,
    2^-(M+1) -> 2^-M), the same rule as INQ's rounding in ``PowerOfTwo``; c_n has
    the sign of r_n. An all-zero tensor (or channel) quantizes to zeros.

    Gradient: straight-through, dq/dw = 1.

    Deploy grid: ``SHIFT_SUM`` with ``num_terms = num_shifts``, ``scale = s`` (1 for
    an all-zero channel), ``exponent_range = (-M, 0)``; its ``bits`` is the
    precision, bits * num_shifts (``bits`` per term code).

    Arguments:
        bits: int from 2 to 8, default 3: bits per term code (the paper's B).
        num_shifts: int from 1 to 4, default 2: terms per weight (the paper's N).
        per_channel: bool, default False: normalise by each channel's max |w|
            instead of the tensor's.
        axis: int from -5 to 4, default -1: the channel axis; -1 is the output
            channels of Dense/Conv kernels.
        **kwargs: Keras layer arguments (``name``, ``dtype``).

    Raises:
        ValueError: an argument outside the allowed values (naming it).

    Example::

        layer = larq.layers.QuantConv2D(32, 3, kernel_quantizer=ShiftQuantizer(3, 2))
        ShiftQuantizer(bits=3, num_shifts=2)(tf.constant([0.9, -0.3, 0.1, 0.7]))
        # -> [0.9, -0.225, 0.0, 0.675]: s = 0.9, C = {0, +-1, +-1/2, +-1/4};
        #    -0.3 / s = -1/3 -> -1/4 + 0, 0.7 / s = 0.78 -> 1 - 1/4

    Reference:
        Gudovskiy, Rigazio. "ShiftCNN: Generalized Low-Precision Architecture for
        Inference of Convolutional Neural Networks", 2017.
        https://arxiv.org/abs/1706.02393
    """

    def __init__(self, bits=3, num_shifts=2, per_channel=False, axis=-1, **kwargs):
        super().__init__(**kwargs)
        self.bits = check_int_range(self.owner, "bits", bits, 2, 8)
        self.num_shifts = check_int_range(self.owner, "num_shifts", num_shifts, 1, 4)
        self.per_channel = check_bool(self.owner, "per_channel", per_channel)
        # Kernels (Dense .. Conv3D) have rank 2 to 5, so a channel axis is -5 .. 4.
        self.axis = check_int_range(self.owner, "axis", axis, -5, 4)
        self.precision = self.bits * self.num_shifts

    @property
    def smallest_exponent(self) -> int:
        """-M: the codebook's smallest non-zero magnitude is 2^-M."""
        return -(2 ** (self.bits - 1) - 2)

    def build(self, input_shape):
        """Check ``axis`` against the kernel's rank (with ``per_channel``)."""
        if self.per_channel:
            self.resolve_channel_axis(input_shape, self.axis)
        super().build(input_shape)

    def call(self, inputs):
        """The sum-of-shifts tensor, same shape as ``inputs``; gradient straight-through."""
        axes = self.reduction_axes(inputs.shape.rank, self.per_channel)
        low = self.smallest_exponent
        num_shifts = self.num_shifts

        @tf.custom_gradient
        def shift(w):
            s = tf.reduce_max(tf.abs(w), axis=axes, keepdims=True)
            # An all-zero channel has r = 0 for any finite s.
            s = tf.where(s > 0, s, tf.ones_like(s))
            residual = w / s
            total = tf.zeros_like(w)
            for _ in range(num_shifts):
                term = tf.sign(residual) * round_to_powers_of_two(tf.abs(residual), low, 0)
                total += term
                residual -= term
            return s * total, lambda dy: dy

        return shift(inputs)

    def deploy_grid(self, latent=None) -> grid.QuantGrid:
        """``SHIFT_SUM`` grid with ``scale`` = max |latent| per channel (or tensor)."""
        if latent is None:
            raise ValueError(
                f"{self.owner}: deploy_grid needs `latent` (the latent weights): "
                "the scale is their max |w|"
            )
        w = np.abs(np.asarray(getattr(latent, "latent_variable", latent)))
        if self.per_channel:
            axis = resolve_axis(self.owner, "axis", self.axis, w.ndim)
            scale = np.max(w, axis=tuple(i for i in range(w.ndim) if i != axis))
        else:
            axis = None
            scale = np.max(w)
        return grid.QuantGrid(
            kind=grid.SHIFT_SUM,
            bits=self.precision,
            axis=axis,
            scale=np.where(scale > 0, scale, 1.0).astype(w.dtype),
            exponent_range=(self.smallest_exponent, 0),
            base=2.0,
            num_terms=self.num_shifts,
        )

    def get_config(self):
        """The constructor arguments, for saving and ``from_config``."""
        return {
            **super().get_config(),
            "bits": self.bits,
            "num_shifts": self.num_shifts,
            "per_channel": self.per_channel,
            "axis": self.axis,
        }
