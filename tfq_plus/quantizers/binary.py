"""Binary weights with a real-valued scale: XNOR-Net's binary-weight approximation."""

import larq as lq
import numpy as np
import tensorflow as tf

from tfq_plus.quantizers import grid
from tfq_plus.quantizers.arguments import (
    check_bool,
    check_int_range,
    check_positive,
    resolve_axis,
)
from tfq_plus.quantizers.base import QuantizerBase, register

__all__ = ["ScaledSign"]


@register("scaled_sign")
class ScaledSign(QuantizerBase):
    r"""Sign of the weights times the mean absolute weight of their output channel.

    Forward (XNOR-Net's binary-weight approximation W ~ alpha * B):

    \\[
    q_i = \alpha_c \, \mathrm{sign}(w_i), \qquad
    \alpha_c = \frac{1}{n} \sum_{j \in c} |w_j|
    \\]

    with ``sign(0) = +1`` (larq's convention), ``c`` the output channel of ``w_i``
    (the slice at one index of ``axis``) and ``n`` the number of weights per channel.
    With ``per_channel=False`` a single alpha is the mean over the whole tensor.

    Gradient, the paper's formula (Sec. 3.1, "Training Binary-Weights-Networks"):

    \\[
    \frac{\partial L}{\partial w_i} = \frac{\partial L}{\partial q_i}
      \left(\frac{1}{n} + \alpha_c \, 1_{|w_i| \le \text{clip\_value}}\right)
    \\]

    The ``1/n`` term is the paper's simplification of the path through alpha; the
    second term is the clipped straight-through estimate of d sign / dw. With
    ``clip_value=None`` the indicator is always 1.

    Deploy grid: ``BINARY`` with ``scale = alpha`` (one per channel).

    For ``QuantDepthwiseConv2D`` kernels (kh, kw, in_channels, multiplier) pass
    ``axis=2`` to scale per input channel.

    Arguments:
        clip_value: float > 0 or None, default 1.0: |w| above which the sign's
            straight-through gradient is zero; None for no clipping.
        per_channel: bool, default True: one alpha per index of ``axis`` (True) or
            one per tensor.
        axis: int from -5 to 4, default -1: the channel axis; -1 is the output
            channels of Dense/Conv kernels. Checked against the kernel's rank in
            ``build``.
        **kwargs: Keras layer arguments (``name``, ``dtype``).

    Raises:
        ValueError: an argument outside the allowed values (naming it).

    Example::

        layer = larq.layers.QuantDense(10, kernel_quantizer=ScaledSign())
        ScaledSign()(tf.constant([[0.5, -0.25], [-1.5, 0.05]]))
        # -> [[1.0, -0.15], [-1.0, 0.15]]: alpha = (1.0, 0.15), one per column

    Reference:
        Rastegari, Ordonez, Redmon, Farhadi. "XNOR-Net: ImageNet Classification
        Using Binary Convolutional Neural Networks", ECCV 2016.
        https://arxiv.org/abs/1603.05279
    """

    precision = 1

    def __init__(self, clip_value=1.0, per_channel=True, axis=-1, **kwargs):
        super().__init__(**kwargs)
        self.clip_value = (
            None if clip_value is None else check_positive(self.owner, "clip_value", clip_value)
        )
        self.per_channel = check_bool(self.owner, "per_channel", per_channel)
        # Kernels (Dense .. Conv3D) have rank 2 to 5, so a channel axis is -5 .. 4.
        self.axis = check_int_range(self.owner, "axis", axis, -5, 4)

    def build(self, input_shape):
        """Check ``axis`` against the kernel's rank (with ``per_channel``)."""
        if self.per_channel:
            self.resolve_channel_axis(input_shape, self.axis)
        super().build(input_shape)

    def call(self, inputs):
        """``alpha * sign(inputs)``, same shape; the gradient is the class doc's."""
        axes = self.reduction_axes(inputs.shape.rank, self.per_channel)
        clip_value = self.clip_value

        @tf.custom_gradient
        def scaled_sign(w):
            abs_w = tf.abs(w)
            alpha = tf.reduce_mean(abs_w, axis=axes, keepdims=True)
            # Elements per channel, as the paper's 1/n.
            n = tf.cast(tf.size(w), w.dtype) / tf.cast(tf.size(alpha), w.dtype)

            def grad(dy):
                if clip_value is None:
                    straight_through = tf.ones_like(w)
                else:
                    straight_through = tf.cast(abs_w <= clip_value, w.dtype)
                return dy * (1.0 / n + alpha * straight_through)

            return alpha * lq.math.sign(w), grad

        return scaled_sign(inputs)

    def deploy_grid(self, latent=None) -> grid.QuantGrid:
        """``BINARY`` grid with ``scale`` = mean |latent| per channel (or per tensor)."""
        if latent is None:
            raise ValueError(
                f"{self.owner}: deploy_grid needs `latent` (the latent weights): "
                "the scale is their mean absolute value"
            )
        w = np.asarray(getattr(latent, "latent_variable", latent))
        if self.per_channel:
            axis = resolve_axis(self.owner, "axis", self.axis, w.ndim)
            others = tuple(i for i in range(w.ndim) if i != axis)
            scale = np.mean(np.abs(w), axis=others)
        else:
            axis = None
            scale = np.mean(np.abs(w))
        return grid.QuantGrid(kind=grid.BINARY, bits=1, axis=axis, scale=np.asarray(scale))

    def get_config(self):
        """The constructor arguments, for saving and ``from_config``."""
        return {
            **super().get_config(),
            "clip_value": self.clip_value,
            "per_channel": self.per_channel,
            "axis": self.axis,
        }
