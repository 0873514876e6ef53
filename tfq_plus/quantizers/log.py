"""Logarithmic quantization (LogNet): values rounded in the log domain, base 2 or sqrt(2)."""

import math

import numpy as np
import tensorflow as tf

from tfq_plus.quantizers import grid
from tfq_plus.quantizers.arguments import check_choice, check_int_range
from tfq_plus.quantizers.base import QuantizerBase, register

__all__ = ["LogQuantizer", "LogSqrt2Quantizer"]

# log2 of each base: the step between adjacent magnitudes, in units of log2.
LOG2_OF_BASE = {"2": 1.0, "sqrt2": 0.5}


@register("log2")
class LogQuantizer(QuantizerBase):
    r"""Log-domain quantization to {0, +-base^e} with a full-scale-range window.

    Forward (Miyashita et al., Eq. 3, with base 2 or sqrt(2)):

    \\[
    q(x) = \begin{cases} 0 & x = 0 \\\
      \mathrm{sign}(x)\, \mathrm{base}^{\tilde{x}} & \text{otherwise} \end{cases},
    \qquad
    \tilde{x} = \mathrm{Clip}\!\left(\mathrm{Round}(\log_{\mathrm{base}} |x|),\;
      \mathrm{FSR} - 2^{b-1} + 1,\; \mathrm{FSR}\right)
    \\]

    with the paper's Clip(e, min, max) = 0-code (q = 0) if e <= min, max if e >= max,
    e otherwise. So ``b = bits`` gives 1 sign bit and 2^(b-1) magnitude codes: zero
    and the 2^(b-1) - 1 exponents FSR - 2^(b-1) + 2 .. FSR (the same count as
    ``PowerOfTwo``). Round(v) = floor(v + 1/2); ties are unreachable from exact
    inputs, since base^(k + 1/2) is irrational. For base sqrt(2) the exponents are in
    units of log_sqrt2, i.e. steps of 1/2 in log2.

    FSR is the top exponent (in log_base units): ``fsr`` if given, else
    Round(log_base max|x|) of the tensor being quantized. The paper's Clip maps
    e >= FSR to FSR - 1; here ``fsr`` names the top exponent itself (paper FSR =
    ``fsr`` + 1).

    Gradient: straight-through, dq/dx = 1.

    It quantizes weights and activations alike; on non-negative activations the
    sign bit goes unused.

    Deploy grid: ``POWER_OF_TWO`` with ``base`` 2 or sqrt(2) and ``exponent_range``
    in units of log2 (half-integers for sqrt(2)), ``scale = 1``.

    Arguments:
        bits: int from 2 to 8, default 4: total bits per value.
        base: ``"2"`` (default) or ``"sqrt2"`` (a string).
        fsr: int from -64 to 64 or None (default): the top exponent, in log_base
            units; None anchors it at the tensor's max |x| on every call.
        **kwargs: Keras layer arguments (``name``, ``dtype``).

    Raises:
        ValueError: an argument outside the allowed values (naming it).

    Example::

        layer = larq.layers.QuantConv2D(32, 3, kernel_quantizer=LogQuantizer(bits=4))
        LogQuantizer(bits=3)(tf.constant([0.9, -0.3, 0.1, 0.0]))
        # -> [1.0, -0.25, 0.0, 0.0]: FSR = Round(log2 0.9) = 0, exponents -2 .. 0

    Reference:
        Miyashita, Lee, Murmann. "Convolutional Neural Networks using Logarithmic
        Data Representation", 2016. https://arxiv.org/abs/1603.01025
    """

    def __init__(self, bits=4, base="2", fsr=None, **kwargs):
        super().__init__(**kwargs)
        self.bits = check_int_range(self.owner, "bits", bits, 2, 8)
        self.base = check_choice(self.owner, "base", base, tuple(LOG2_OF_BASE))
        self.fsr = None if fsr is None else check_int_range(self.owner, "fsr", fsr, -64, 64)
        self.precision = self.bits

    @property
    def _zero_code_exponent(self) -> int:
        """How far below the top exponent the paper's Clip minimum lies."""
        return 2 ** (self.bits - 1) - 1

    def call(self, inputs):
        """The log-quantized tensor, same shape as ``inputs``; gradient straight-through."""
        step = LOG2_OF_BASE[self.base]
        log_base = math.log(2.0) * step
        fsr = self.fsr
        below_top = self._zero_code_exponent

        def power(exponent):
            """base^exponent: for sqrt2, 2^floor(e/2) times sqrt2 if e is odd."""
            two = tf.constant(2.0, exponent.dtype)
            if step == 1.0:
                return tf.pow(two, exponent)
            half = tf.floor(exponent / 2.0)
            odd = tf.not_equal(exponent, 2.0 * half)
            root = tf.where(odd, tf.constant(math.sqrt(2.0), exponent.dtype), 1.0)
            return tf.pow(two, half) * root

        def log_round(magnitude):
            return tf.floor(tf.math.log(magnitude) / log_base + 0.5)

        @tf.custom_gradient
        def log_quantize(x):
            abs_x = tf.abs(x)
            nonzero = abs_x > 0
            safe = tf.where(nonzero, abs_x, tf.ones_like(abs_x))
            if fsr is None:
                largest = tf.reduce_max(abs_x)
                top = log_round(tf.where(largest > 0, largest, tf.ones_like(largest)))
            else:
                top = tf.constant(float(fsr), x.dtype)
            exponent = tf.minimum(log_round(safe), top)
            keep = tf.logical_and(nonzero, exponent > top - below_top)
            q = tf.where(keep, tf.sign(x) * power(exponent), tf.zeros_like(x))
            return q, lambda dy: dy

        return log_quantize(inputs)

    def deploy_grid(self, latent=None) -> grid.QuantGrid:
        """``POWER_OF_TWO`` grid; needs ``latent`` unless ``fsr`` is fixed."""
        if self.fsr is not None:
            top = self.fsr
        elif latent is None:
            raise ValueError(
                f"{self.owner}: with fsr=None the window is anchored at max |x|; "
                "pass `latent` to deploy_grid or construct with a fixed `fsr`"
            )
        else:
            largest = float(np.max(np.abs(np.asarray(getattr(latent, "latent_variable", latent)))))
            if largest > 0:
                top = int(np.floor(np.log(largest) / np.log(2.0) / LOG2_OF_BASE[self.base] + 0.5))
            else:
                top = 0
        step = LOG2_OF_BASE[self.base]
        bottom = top - self._zero_code_exponent + 1
        return grid.QuantGrid(
            kind=grid.POWER_OF_TWO,
            bits=self.bits,
            scale=np.asarray(1.0, np.float32),
            exponent_range=(np.float64(bottom * step), np.float64(top * step)),
            base=2.0 ** step,
        )

    def get_config(self):
        """The constructor arguments, for saving and ``from_config``."""
        return {**super().get_config(), "bits": self.bits, "base": self.base, "fsr": self.fsr}


@register("log_sqrt2")
class LogSqrt2Quantizer(LogQuantizer):
    """``LogQuantizer`` with ``base="sqrt2"`` by default, for the ``log_sqrt2`` alias.

    Magnitudes are sqrt(2)^e: twice as many levels per octave as base 2, over half
    the range, for the same ``bits``.

    Arguments:
        bits: int from 2 to 8, default 4: total bits per value.
        base: default ``"sqrt2"``; ``"2"`` makes it a plain ``LogQuantizer``.
        fsr: int from -64 to 64 or None (default): the top exponent in units of
            log_sqrt2 (half steps of log2); None anchors it at max |x| per call.
        **kwargs: Keras layer arguments (``name``, ``dtype``).

    Example::

        LogSqrt2Quantizer(bits=3)(tf.constant([0.9, -0.3, 0.1, 0.0]))
        # -> [1.0, 0.0, 0.0, 0.0]: magnitudes {1, 2^-1/2, 1/2}; 0.3 is below the window
    """

    def __init__(self, bits=4, base="sqrt2", fsr=None, **kwargs):
        super().__init__(bits=bits, base=base, fsr=fsr, **kwargs)
