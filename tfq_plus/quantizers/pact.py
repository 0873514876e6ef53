"""Activations clipped to a trained range: PACT."""

import numbers

import numpy as np
import tensorflow as tf

from tfq_plus.quantizers import grid
from tfq_plus.quantizers.arguments import check_int_range, check_positive
from tfq_plus.quantizers.base import QuantizerBase, register

__all__ = ["PACT"]

# Floor of alpha's magnitude in the forward pass: an alpha trained (or regularized)
# to zero would divide by zero.
MIN_ALPHA = 1e-8


@register("pact")
class PACT(QuantizerBase):
    r"""Parameterized Clipping Activation: k-bit levels on [0, alpha], alpha trained.

    Forward (Choi et al., Eq. 1 and 2):

    \\[
    y = \mathrm{clip}(x, 0, \alpha) = 0.5\,(|x| - |x - \alpha| + \alpha), \qquad
    y_q = \mathrm{round}\!\left(y \cdot \frac{2^k - 1}{\alpha}\right)
          \cdot \frac{\alpha}{2^k - 1}
    \\]

    computed in exactly that grouping (``y * ((2^k-1)/alpha)``, then times
    ``alpha/(2^k-1)``). ``round`` is TensorFlow's: ties go to the even integer.

    Gradients (the paper's Eq. 3, straight-through estimator on ``round``):

    \\[
    \frac{\partial y_q}{\partial x} = \begin{cases} 1 & 0 \le x < \alpha \\\
      0 & \text{otherwise} \end{cases}, \qquad
    \frac{\partial y_q}{\partial \alpha} = \begin{cases} 1 & x \ge \alpha \\\
      0 & \text{otherwise} \end{cases}
    \\]

    At the bounds the paper's half-open window is used: ``x = 0`` passes the
    gradient to x, ``x = alpha`` passes it to alpha only.

    ``alpha`` is a trainable scalar of this layer (created in ``build``, initialised
    to ``alpha_init``), so a larq layer using PACT as its ``input_quantizer`` trains it
    with its other weights. With ``alpha_regularization = lambda > 0`` the L2 penalty
    ``lambda * alpha^2`` is added to the layer's (and the model's) ``losses``, as the
    paper regularizes alpha.

    Guard (not in the paper): the forward pass uses ``max(|alpha|, 1e-8)`` as alpha,
    so that an alpha trained to zero or below never divides by zero; for
    ``alpha >= 1e-8`` this is exactly the paper's formula and gradient.

    Deploy grid: ``UNIFORM`` on ``[0, alpha]`` with ``2^k`` levels and step
    ``alpha / (2^k - 1)``, unsigned.

    Arguments:
        bits: int k from 1 to 8, default 4: bits per value.
        alpha_init: float > 0, default 10.0 (where the paper starts): the initial
            clipping level alpha.
        alpha_regularization: float lambda >= 0, default 0.0: the L2 coefficient on
            alpha; 0 disables it.
        **kwargs: Keras layer arguments (``name``, ``dtype``).

    Raises:
        ValueError: an argument outside the allowed values (naming it).

    Example::

        layer = larq.layers.QuantConv2D(32, 3, input_quantizer=PACT(bits=4), ...)
        PACT(bits=2, alpha_init=3.0)(tf.constant([-1.0, 0.4, 1.6, 5.0]))
        # -> [0.0, 0.0, 2.0, 3.0]: levels {0, 1, 2, 3} (step alpha / 3 = 1)

    Reference:
        Choi, Wang, Venkataramani, Chuang, Srinivasan, Gopalakrishnan. "PACT:
        Parameterized Clipping Activation for Quantized Neural Networks", 2018.
        https://arxiv.org/abs/1805.06085
    """

    def __init__(self, bits=4, alpha_init=10.0, alpha_regularization=0.0, **kwargs):
        super().__init__(**kwargs)
        self.bits = check_int_range(self.owner, "bits", bits, 1, 8)
        self.precision = self.bits
        self.alpha_init = check_positive(self.owner, "alpha_init", alpha_init)
        if (
            isinstance(alpha_regularization, bool)
            or not isinstance(alpha_regularization, numbers.Real)
            or not 0 <= alpha_regularization < float("inf")
        ):
            raise ValueError(
                f"{self.owner}: `alpha_regularization` must be a finite number >= 0, "
                f"got {alpha_regularization!r}"
            )
        self.alpha_regularization = float(alpha_regularization)

    def build(self, input_shape):
        """Create the trainable scalar ``alpha`` (with its L2 penalty, if any)."""
        regularizer = None
        if self.alpha_regularization > 0:
            regularizer = tf.keras.regularizers.L2(self.alpha_regularization)
        self.alpha = self.add_weight(
            name="alpha",
            shape=(),
            initializer=tf.keras.initializers.Constant(self.alpha_init),
            regularizer=regularizer,
            trainable=True,
        )
        super().build(input_shape)

    def call(self, inputs):
        """The clipped, k-bit tensor, same shape as ``inputs``; gradients as in the class doc."""
        # alpha is read here and passed in as a tensor, so `grad` returns its gradient
        # like any input's (under a distribution strategy the read is the replica's).
        alpha = tf.cast(tf.maximum(tf.abs(self.alpha), MIN_ALPHA), inputs.dtype)
        levels = float(2**self.bits - 1)

        @tf.custom_gradient
        def pact(x, alpha):
            y = tf.clip_by_value(x, tf.zeros_like(alpha), alpha)
            y_q = tf.round(y * (levels / alpha)) * (alpha / levels)

            def grad(dy):
                # Masks as 0/1 factors: a broadcasting tf.where costs several
                # times an elementwise product on CPU.
                clipped_high = tf.cast(x >= alpha, dy.dtype)
                d_alpha = tf.reduce_sum(dy * clipped_high)
                d_x = dy * (tf.cast(x >= 0, dy.dtype) - clipped_high)
                return d_x, d_alpha

            return y_q, grad

        return pact(inputs, alpha)

    def deploy_grid(self, latent=None) -> grid.QuantGrid:
        """``UNIFORM`` grid on ``[0, alpha]`` (``latent`` is not needed)."""
        if not self.built:
            raise ValueError(
                f"{self.owner}: deploy_grid needs the trained alpha; call the "
                "quantizer (or build its layer) first"
            )
        alpha = np.asarray(tf.keras.backend.get_value(self.alpha), dtype=np.float32)
        alpha = np.maximum(np.abs(alpha), np.float32(MIN_ALPHA))
        return grid.QuantGrid(
            kind=grid.UNIFORM,
            bits=self.bits,
            scale=alpha / np.float32(2**self.bits - 1),
            range_min=np.zeros_like(alpha),
            range_max=alpha,
            signed=False,
        )

    def get_config(self):
        """The constructor arguments, for saving and ``from_config``."""
        return {
            **super().get_config(),
            "bits": self.bits,
            "alpha_init": self.alpha_init,
            "alpha_regularization": self.alpha_regularization,
        }
