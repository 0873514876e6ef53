"""Ternary weights with trained asymmetric scales: Trained Ternary Quantization."""

import numpy as np
import tensorflow as tf

from tfq_plus.quantizers import grid
from tfq_plus.quantizers.arguments import check_fraction, check_positive
from tfq_plus.quantizers.base import QuantizerBase, register

__all__ = ["TTQ"]


@register("ttq")
class TTQ(QuantizerBase):
    r"""Trained Ternary Quantization: {-W_n, 0, +W_p} with trained W_p, W_n.

    Forward (Zhu et al., Eq. 6), with one threshold per layer:

    \\[
    \Delta = t \cdot \max_j |w_j|, \qquad
    q_i = \begin{cases}
      +W_p & w_i > \Delta \\\
      0 & |w_i| \le \Delta \\\
      -W_n & w_i < -\Delta
    \end{cases}
    \\]

    ``W_p`` and ``W_n`` are trainable scalars of this layer (created in ``build``,
    initialised to ``scale_init``), so a larq layer using TTQ as its
    ``kernel_quantizer`` trains them with its other weights. They are meant to stay
    positive, as in the paper; they are not constrained.

    Gradients, with I_p = {i : w_i > Delta}, I_n = {i : w_i < -Delta}:

    \\[
    \frac{\partial L}{\partial W_p} = \sum_{i \in I_p} \frac{\partial L}{\partial q_i},
    \qquad
    \frac{\partial L}{\partial W_n} = -\sum_{i \in I_n} \frac{\partial L}{\partial q_i}
    \\]

    (the chain rule for ``q_i = -W_n``; the paper's Eq. 7 prints the W_n gradient
    without the minus sign), and for the latent weights the paper's Eq. 8:

    \\[
    \frac{\partial L}{\partial w_i} = \frac{\partial L}{\partial q_i} \cdot
    \begin{cases} W_p & w_i > \Delta \\\ 1 & |w_i| \le \Delta \\\
    W_n & w_i < -\Delta \end{cases}
    \\]

    The threshold Delta gets no gradient (it is a statistic of the weights).

    Deploy grid: ``TERNARY`` with ``scale = W_p`` and ``negative_scale = W_n``.

    Arguments:
        threshold: float t in (0, 1), default 0.05 (the paper's): the threshold as a
            fraction of max |w|.
        scale_init: float > 0, default 1.0: initial value of W_p and W_n.
        **kwargs: Keras layer arguments (``name``, ``dtype``).

    Raises:
        ValueError: an argument outside the allowed values (naming it).

    Example::

        layer = larq.layers.QuantConv2D(32, 3, kernel_quantizer=TTQ(threshold=0.05))
        TTQ(threshold=0.1)(tf.constant([0.9, -0.3, 0.05, -0.01]))
        # -> [1.0, -1.0, 0.0, 0.0]: Delta = 0.09, W_p = W_n = 1.0 before training

    Reference:
        Zhu, Han, Mao, Dally. "Trained Ternary Quantization", ICLR 2017.
        https://arxiv.org/abs/1612.01064
    """

    precision = 2

    def __init__(self, threshold=0.05, scale_init=1.0, **kwargs):
        super().__init__(**kwargs)
        self.threshold = check_fraction(self.owner, "threshold", threshold)
        self.scale_init = check_positive(self.owner, "scale_init", scale_init)

    def build(self, input_shape):
        """Create the trainable scalars ``positive_scale`` (W_p), ``negative_scale`` (W_n)."""
        initializer = tf.keras.initializers.Constant(self.scale_init)
        self.positive_scale = self.add_weight(
            name="positive_scale", shape=(), initializer=initializer, trainable=True
        )
        self.negative_scale = self.add_weight(
            name="negative_scale", shape=(), initializer=initializer, trainable=True
        )
        super().build(input_shape)

    def call(self, inputs):
        """The ternary tensor, same shape as ``inputs``; gradients as in the class doc."""
        # Read the variables here and pass them in as tensors: their gradients are
        # then returned by `grad` like any input's, also under a distribution
        # strategy, where the read gives the replica's copy.
        positive_scale = tf.cast(self.positive_scale, inputs.dtype)
        negative_scale = tf.cast(self.negative_scale, inputs.dtype)
        threshold = self.threshold

        @tf.custom_gradient
        def ttq(w, w_p, w_n):
            delta = threshold * tf.reduce_max(tf.abs(w))
            positive = w > delta
            negative = w < -delta
            zeros = tf.zeros_like(w)
            q = tf.where(positive, w_p, tf.where(negative, -w_n, zeros))

            def grad(dy):
                zero_grads = tf.zeros_like(dy)
                d_w = dy * tf.where(positive, w_p, tf.where(negative, w_n, tf.ones_like(dy)))
                d_w_p = tf.reduce_sum(tf.where(positive, dy, zero_grads))
                d_w_n = -tf.reduce_sum(tf.where(negative, dy, zero_grads))
                return d_w, d_w_p, d_w_n

            return q, grad

        return ttq(inputs, positive_scale, negative_scale)

    def deploy_grid(self, latent=None) -> grid.QuantGrid:
        """``TERNARY`` grid with the trained scales (``latent`` is not needed)."""
        if not self.built:
            raise ValueError(
                f"{self.owner}: deploy_grid needs the trained scales; call the "
                "quantizer (or build its layer) first"
            )
        return grid.QuantGrid(
            kind=grid.TERNARY,
            bits=2,
            scale=np.asarray(self.positive_scale.numpy()),
            negative_scale=np.asarray(self.negative_scale.numpy()),
        )

    def get_config(self):
        """The constructor arguments, for saving and ``from_config``."""
        return {
            **super().get_config(),
            "threshold": self.threshold,
            "scale_init": self.scale_init,
        }
