"""k-bit uniform fake quantization with min/max or moving-average ranges."""

import numbers

import numpy as np
import tensorflow as tf

from tfq_plus.quantizers import grid
from tfq_plus.quantizers.arguments import (
    check_bool,
    check_choice,
    check_fraction,
    check_int_range,
)
from tfq_plus.quantizers.base import ALIASES, QuantizerBase, register

__all__ = ["Uniform"]

# A range narrower than this is widened to it, so that an all-zero tensor quantizes
# to zeros instead of dividing by a zero step.
MIN_RANGE_WIDTH = 1e-6


@register("uniform_quantizer")
class Uniform(QuantizerBase):
    r"""k-bit uniform fake quantization, as TensorFlow / TFLite quantize tensors.

    The range ``[a, b]`` is first made to contain zero: ``a = min(r_min, 0)``,
    ``b = max(r_max, 0)``. ``symmetric=True`` uses ``[-m, m]`` with
    ``m = max(|a|, |b|)`` and the narrow integer range ``q in [1, 2^k - 1]``
    (levels ``-(2^{k-1}-1) .. 2^{k-1}-1`` times the step); ``symmetric=False`` uses
    ``[a, b]`` and ``q in [0, 2^k - 1]``. Ranges narrower than ``1e-6`` are widened
    to ``1e-6`` (``m`` resp. ``b = a + 1e-6``). Then, as in
    ``tf.quantization.fake_quant_with_min_max_vars``:

    \\[
    \Delta = \frac{b - a}{q_{max} - q_{min}}, \quad
    z = \mathrm{round}_{\frac12\uparrow}\!\left(\mathrm{clip}(q_{min} - a/\Delta,
        q_{min}, q_{max})\right), \quad
    a' = (q_{min} - z)\Delta, \ b' = (q_{max} - z)\Delta
    \\]
    \\[
    y = \left\lfloor (\mathrm{clip}(x, a', b') - a') \cdot \Delta^{-1} + \frac12
        \right\rfloor \Delta + a'
    \\]

    (computed in float32, multiplying by the reciprocal ``1/Delta`` as TensorFlow's
    kernel does).

    The range is nudged so that zero is exactly representable; ties round up
    (``floor(. + 1/2)``, TensorFlow's fake-quant rule, not ``round``'s ties-to-even).

    Gradient: straight-through inside the nudged range, ``dy/dx = 1`` for
    ``a' <= x <= b'`` and 0 outside; the range itself gets no gradient.

    Ranges: ``ranges="minmax"`` takes ``r_min, r_max`` from the tensor being
    quantized at each call (weights). ``ranges="moving_average"`` keeps them in the
    non-trainable variables ``range_min`` and ``range_max`` (activations): each call
    with ``training=True`` sets ``r <- momentum * r + (1 - momentum) * r_batch``
    (the first such call sets ``r <- r_batch``; a boolean variable ``initialized``
    records it) and quantizes with the updated range; other calls use the stored
    range as it is (``[-6, 6]`` before any training call).

    Deploy grid: ``UNIFORM`` with the nudged range ``[a', b']`` and step Delta
    (per channel along ``axis`` with ``per_channel``). For ``ranges="minmax"``
    ``deploy_grid`` needs the latent tensor.

    Arguments:
        bits: int k from 2 to 8, default 8: bits per value.
        symmetric: bool, default True: symmetric narrow range around zero, or
            asymmetric.
        per_channel: bool, default False: one range per channel along ``axis``.
        axis: int, default -1: the channel axis for ``per_channel``, checked in
            ``build``.
        ranges: ``"minmax"`` (default) or ``"moving_average"``.
        momentum: float in (0, 1), default 0.99: EMA momentum for
            ``ranges="moving_average"``.
        **kwargs: Keras layer arguments (``name``, ``dtype``).

    Raises:
        ValueError: an argument outside the allowed values (naming it); in
            ``build``, an ``axis`` the input does not have or whose size is unknown.

    Aliases: ``"uniform_quantizer"`` (Keras custom object and larq layers) and
    ``"uniform"`` (``tfq_plus.quantizers.get`` only: as a Keras name it would
    shadow the ``RandomUniform`` initializer).

    Example::

        layer = larq.layers.QuantConv2D(
            32, 3, kernel_quantizer=Uniform(bits=4),
            input_quantizer=Uniform(bits=4, symmetric=False, ranges="moving_average"))
        Uniform(bits=4)(tf.constant([-1.0, 0.4, 0.33, 0.7]))
        # -> [-1.0, 0.4286, 0.2857, 0.7143]: [-1, 1] in 14 steps of 1/7

    Reference:
        Jacob et al. "Quantization and Training of Neural Networks for Efficient
        Integer-Arithmetic-Only Inference", CVPR 2018.
        https://arxiv.org/abs/1712.05877
    """

    RANGES = ("minmax", "moving_average")

    def __init__(
        self,
        bits=8,
        symmetric=True,
        per_channel=False,
        axis=-1,
        ranges="minmax",
        momentum=0.99,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.bits = check_int_range(self.owner, "bits", bits, 2, 8)
        self.precision = self.bits
        self.symmetric = check_bool(self.owner, "symmetric", symmetric)
        self.per_channel = check_bool(self.owner, "per_channel", per_channel)
        if isinstance(axis, bool) or not isinstance(axis, numbers.Integral):
            raise ValueError(f"{self.owner}: `axis` must be an integer, got {axis!r}")
        self.axis = int(axis)
        self.ranges = check_choice(self.owner, "ranges", ranges, self.RANGES)
        self.momentum = check_fraction(self.owner, "momentum", momentum)

    def build(self, input_shape):
        """Check ``axis``; with moving-average ranges create ``range_min``,
        ``range_max`` (non-trainable, [-6, 6] at first) and ``initialized``."""
        input_shape = tf.TensorShape(input_shape)
        if self.per_channel:
            self.resolve_channel_axis(input_shape, self.axis)
            if input_shape[self._channel_axis] is None:
                raise ValueError(
                    f"{self.owner}: per-channel `axis`={self.axis} has unknown size in "
                    f"input shape {input_shape}"
                )
        if self.ranges == "moving_average":
            shape = self.channel_shape(input_shape, self.per_channel)
            # Assigned in `call`, in the replica context under a distribution strategy:
            # MEAN makes every assignment a cross-replica average.
            self.range_min = self.add_weight(
                name="range_min",
                shape=shape,
                initializer=tf.keras.initializers.Constant(-6.0),
                trainable=False,
                aggregation=tf.VariableAggregation.MEAN,
            )
            self.range_max = self.add_weight(
                name="range_max",
                shape=shape,
                initializer=tf.keras.initializers.Constant(6.0),
                trainable=False,
                aggregation=tf.VariableAggregation.MEAN,
            )
            self.initialized = self.add_weight(
                name="initialized",
                shape=(),
                dtype=tf.bool,
                initializer=tf.keras.initializers.Zeros(),
                trainable=False,
                aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA,
            )
        super().build(input_shape)

    def _batch_range(self, inputs):
        axes = self.reduction_axes(inputs.shape.rank, self.per_channel)
        return tf.reduce_min(inputs, axis=axes), tf.reduce_max(inputs, axis=axes)

    def _update_ranges(self, inputs):
        """One EMA step of the stored range; returns the updated range."""
        batch_min, batch_max = self._batch_range(inputs)
        keep = self.momentum
        updated = []
        for variable, batch in ((self.range_min, batch_min), (self.range_max, batch_max)):
            average = keep * variable + (1.0 - keep) * batch
            updated.append(
                tf.convert_to_tensor(variable.assign(tf.where(self.initialized, average, batch)))
            )
        self.initialized.assign(True)
        return tuple(updated)

    def _quantization_range(self, range_min, range_max):
        """The range handed to fake quant: contains zero, not narrower than 1e-6."""
        range_min = tf.minimum(range_min, 0.0)
        range_max = tf.maximum(range_max, 0.0)
        if self.symmetric:
            magnitude = tf.maximum(tf.maximum(-range_min, range_max), MIN_RANGE_WIDTH)
            return -magnitude, magnitude
        return range_min, tf.maximum(range_max, range_min + MIN_RANGE_WIDTH)

    def _fake_quant(self, inputs, range_min, range_max):
        options = dict(num_bits=self.bits, narrow_range=self.symmetric)
        if not self.per_channel:
            return tf.quantization.fake_quant_with_min_max_vars(
                inputs, range_min, range_max, **options
            )
        # The per-channel op takes channels on the last axis only.
        last = inputs.shape.rank - 1
        if self._channel_axis == last:
            return tf.quantization.fake_quant_with_min_max_vars_per_channel(
                inputs, range_min, range_max, **options
            )
        perm = [i for i in range(last + 1) if i != self._channel_axis] + [self._channel_axis]
        inverse = np.argsort(perm).tolist()
        quantized = tf.quantization.fake_quant_with_min_max_vars_per_channel(
            tf.transpose(inputs, perm), range_min, range_max, **options
        )
        return tf.transpose(quantized, inverse)

    def call(self, inputs, training=None):
        """The fake-quantized tensor, same shape and dtype as ``inputs``.

        With moving-average ranges, ``training=True`` updates the stored range
        first; ``training=None`` or False quantizes with the stored range.
        """
        dtype = inputs.dtype
        x = tf.cast(inputs, tf.float32)  # the fake-quant ops take float32 only
        if self.ranges == "minmax":
            range_min, range_max = self._batch_range(tf.stop_gradient(x))
        else:
            stored = (tf.convert_to_tensor(self.range_min), tf.convert_to_tensor(self.range_max))
            if training is None:
                range_min, range_max = stored
            else:
                range_min, range_max = tf.__internal__.smart_cond.smart_cond(
                    training, lambda: self._update_ranges(tf.stop_gradient(x)), lambda: stored
                )
        range_min, range_max = self._quantization_range(range_min, range_max)
        return tf.cast(self._fake_quant(x, range_min, range_max), dtype)

    def deploy_grid(self, latent=None) -> grid.QuantGrid:
        """``UNIFORM`` grid with the nudged range.

        Args:
            latent: the tensor whose min/max set the range, required for
                ``ranges="minmax"``; ignored for ``"moving_average"``.
        """
        if self.ranges == "minmax":
            if latent is None:
                raise ValueError(
                    f"{self.owner}: deploy_grid with ranges='minmax' needs `latent`, "
                    "the tensor whose min/max define the range"
                )
            latent = np.asarray(latent, dtype=np.float32)
            if not self.built:
                self.build(latent.shape)
            axes = tuple(self.reduction_axes(latent.ndim, self.per_channel))
            range_min, range_max = latent.min(axis=axes), latent.max(axis=axes)
        else:
            if not self.built:
                raise ValueError(
                    f"{self.owner}: deploy_grid needs the trained ranges; call the "
                    "quantizer (or build its layer) first"
                )
            range_min = tf.keras.backend.get_value(self.range_min)
            range_max = tf.keras.backend.get_value(self.range_max)
        low, high = (
            np.asarray(bound, np.float32)
            for bound in self._quantization_range(range_min, range_max)
        )
        q_min = 1.0 if self.symmetric else 0.0
        q_max = float(2**self.bits - 1)
        step = (high - low) / np.float32(q_max - q_min)
        zero_point = np.clip(q_min - low / step, q_min, q_max)
        zero_point = np.floor(zero_point + np.float32(0.5))
        return grid.QuantGrid(
            kind=grid.UNIFORM,
            bits=self.bits,
            axis=self._channel_axis if self.per_channel else None,
            scale=step.astype(np.float32),
            range_min=((q_min - zero_point) * step).astype(np.float32),
            range_max=((q_max - zero_point) * step).astype(np.float32),
            signed=bool(np.any(low < 0)),
        )

    def get_config(self):
        """The constructor arguments, for saving and ``from_config``."""
        return {
            **super().get_config(),
            "bits": self.bits,
            "symmetric": self.symmetric,
            "per_channel": self.per_channel,
            "axis": self.axis,
            "ranges": self.ranges,
            "momentum": self.momentum,
        }


# "uniform" for tfq_plus.quantizers.get only: as a Keras custom object it would
# shadow Keras's own "uniform" (the RandomUniform initializer, the default of
# Embedding), so larq layers take "uniform_quantizer" (as larq's "dorefa_quantizer").
ALIASES["uniform"] = Uniform
