"""Uniform levels with a trained step size: Learned Step Size Quantization."""

import math
import numbers

import larq as lq
import numpy as np
import tensorflow as tf

from tfq_plus.quantizers import grid
from tfq_plus.quantizers.arguments import check_bool, check_int_range
from tfq_plus.quantizers.base import QuantizerBase, register

__all__ = ["LSQ"]

# Floor of the step's magnitude. A step initialised to zero (a channel that is
# all zeros in the first batch) or trained to zero would divide by zero; at the
# floor the gradient still reaches the step (TensorFlow's maximum passes ties to its
# first argument), so it can grow again.
MIN_STEP = 1e-8


def grad_scale(x, scale):
    """LSQ's ``grad_scale``: forward ``x``, gradient multiplied by ``scale``.

    The paper writes ``(x - x*scale).detach() + x*scale``; the terms are regrouped
    here so that the forward value is exactly ``x`` (the paper's sum can be one ulp
    off), the gradient is the same.
    """
    scaled = x * scale
    return tf.stop_gradient(x) + (scaled - tf.stop_gradient(scaled))


def round_pass(x):
    """LSQ's ``round_pass``: forward ``round(x)`` (ties to even), gradient 1."""
    return x + tf.stop_gradient(tf.round(x) - x)


def clip_open_window(x, low: float, high: float):
    """``clip(x, low, high)`` whose gradient is 1 for ``low < x < high`` only.

    TensorFlow's clip passes the gradient at the bounds too; the paper's gradient
    (Eq. 3) sends values exactly at a bound to the clipped branch.
    """

    @tf.custom_gradient
    def clip(x):
        def grad(dy):
            # A 0/1 factor: a tf.where costs several times a product on CPU.
            return dy * tf.cast(tf.logical_and(x > low, x < high), dy.dtype)

        return tf.clip_by_value(x, low, high), grad

    return clip(x)


@register("lsq")
class LSQ(QuantizerBase):
    r"""Learned Step Size Quantization: ``2^b`` uniform levels with a trained step s.

    Levels: unsigned ``Q_N = 0, Q_P = 2^b - 1``; signed ``Q_N = 2^{b-1},
    Q_P = 2^{b-1} - 1``. Forward (Esser et al., Eq. 1 and 2):

    \\[
    \hat v = \mathrm{round}\!\left(\mathrm{clip}\!\left(\frac{v}{s}, -Q_N, Q_P\right)
             \right) \cdot s
    \\]

    with ``round`` rounding ties to even (TensorFlow's and PyTorch's rule), and v/s
    computed in the input's dtype as ``v * (1/s)``.

    Gradients (the paper's Eq. 3 and 4, straight-through estimator on ``round``):

    \\[
    \frac{\partial \hat v}{\partial v} = \begin{cases} 1 & -Q_N < v/s < Q_P \\\
      0 & \text{otherwise} \end{cases}, \qquad
    \frac{\partial \hat v}{\partial s} = \begin{cases}
      -v/s + \mathrm{round}(v/s) & -Q_N < v/s < Q_P \\\
      -Q_N & v/s \le -Q_N \\\
      Q_P & v/s \ge Q_P \end{cases}
    \\]

    and the step's gradient is scaled by ``g = 1 / sqrt(N * Q_P)``, implemented with
    the paper's ``grad_scale`` and ``round_pass`` (section 2.2). N is the number of
    weights of the layer when LSQ quantizes a kernel, the number of features of one
    example (all elements but the batch axis) when it quantizes activations; with
    ``per_channel`` both count one channel. A kernel is recognised the way larq
    quantizes it: read through a ``QuantizedVariable`` inside
    ``larq.context.quantized_scope`` (``kernel_quantizer=``), whereas a larq layer
    calls its ``input_quantizer`` outside that scope.

    Initialisation (paper, section 2.1): on the first call with ``training=True`` the
    step becomes ``2 * mean(|v|) / sqrt(Q_P)`` of that batch (per channel with
    ``per_channel``). A boolean variable ``initialized`` records it, so a reloaded or
    distributed model does not initialise again. Before that first training call the
    step is 1.

    Guard (not in the paper): the forward pass uses ``max(|s|, 1e-8)`` as the step,
    and the initial step is at least ``1e-8``, so that a zero or negative step never
    divides by zero; for ``s >= 1e-8`` this is exactly the paper's formula and
    gradient.

    Deploy grid: ``UNIFORM`` on ``[-Q_N s, Q_P s]`` with step s (per channel along
    ``axis`` with ``per_channel``).

    Arguments:
        bits: int b, default 4: bits per value, 1 to 8 unsigned, 2 to 8 signed.
        signed: bool, default False: signed levels (weights, activations that can
            be negative) or unsigned (activations after ReLU).
        per_channel: bool, default False: one step per channel along ``axis``
            instead of one per tensor.
        axis: int, default -1: the channel axis for ``per_channel`` (-1: output
            channels of a Dense/Conv2D kernel, channels of NHWC activations);
            checked against the input rank in ``build``.
        **kwargs: Keras layer arguments (``name``, ``dtype``).

    Raises:
        ValueError: an argument outside the allowed values (naming it); in
            ``build``, an ``axis`` the input does not have or whose size is unknown.

    Example::

        layer = larq.layers.QuantDense(
            10, input_quantizer=LSQ(bits=4), kernel_quantizer=LSQ(bits=4, signed=True))
        q = LSQ(bits=2)  # unsigned: Q_N = 0, Q_P = 3
        q(tf.constant([[-1.0, 0.4, 1.6, 5.0]]), training=True)
        # -> [[0.0, 0.0, 2.309, 4.619]]: s = 2 * mean|v| / sqrt(3) = 2.309 on this
        #    first training call; levels {0, s, 2s, 3s}

    Reference:
        Esser, McKinstry, Bablani, Appuswamy, Modha. "Learned Step Size
        Quantization", ICLR 2020. https://arxiv.org/abs/1902.08153
    """

    def __init__(self, bits=4, signed=False, per_channel=False, axis=-1, **kwargs):
        super().__init__(**kwargs)
        self.signed = check_bool(self.owner, "signed", signed)
        self.bits = check_int_range(self.owner, "bits", bits, 2 if self.signed else 1, 8)
        self.precision = self.bits
        self.per_channel = check_bool(self.owner, "per_channel", per_channel)
        if isinstance(axis, bool) or not isinstance(axis, numbers.Integral):
            raise ValueError(f"{self.owner}: `axis` must be an integer, got {axis!r}")
        self.axis = int(axis)
        if self.signed:
            self.q_n, self.q_p = 2 ** (self.bits - 1), 2 ** (self.bits - 1) - 1
        else:
            self.q_n, self.q_p = 0, 2**self.bits - 1

    def build(self, input_shape):
        """Create the trainable ``step`` (scalar, or one per channel) and ``initialized``."""
        input_shape = tf.TensorShape(input_shape)
        if self.per_channel:
            self.resolve_channel_axis(input_shape, self.axis)
            if input_shape[self._channel_axis] is None:
                raise ValueError(
                    f"{self.owner}: per-channel `axis`={self.axis} has unknown size in "
                    f"input shape {input_shape}"
                )
        # Assigned in `call` (in the replica context under a distribution strategy):
        # MEAN makes the assignment a cross-replica average, identical on every
        # replica; ONLY_FIRST_REPLICA suits the flag, which is the same everywhere.
        self.step = self.add_weight(
            name="step",
            shape=self.channel_shape(input_shape, self.per_channel),
            initializer=tf.keras.initializers.Ones(),
            trainable=True,
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

    def _data_step(self, inputs):
        """``2 mean|v| / sqrt(Q_P)``, per channel with ``per_channel``."""
        axes = self.reduction_axes(inputs.shape.rank, self.per_channel)
        step = 2.0 * tf.reduce_mean(tf.abs(inputs), axis=axes) / math.sqrt(self.q_p)
        return tf.maximum(step, MIN_STEP)

    def _initialize_step(self, inputs, step):
        """On the first training call, set the step from the data; return the step.

        Only the data statistic sits in a ``tf.cond``: the assignments stay outside
        it, because a cross-replica assignment cannot run inside control flow.
        """
        # No gradient through the cond: differentiating it would make the taken
        # branch materialise the other branch's intermediates (tensors of the
        # input's size) on every step.
        inputs = tf.stop_gradient(tf.cast(inputs, step.dtype))
        value = tf.stop_gradient(
            tf.cond(
                self.initialized,
                lambda: tf.identity(step),
                lambda: self._data_step(inputs),
            )
        )
        replica = tf.distribute.get_replica_context()
        if replica is not None and replica.num_replicas_in_sync > 1:
            # Under a multi-replica strategy the first batch is the GLOBAL batch: use the
            # mean of the replicas' statistics in this very forward pass (the shards are
            # equal, so it is the global statistic), not each replica's own half-batch
            # value, which only the MEAN-aggregated assignment would average later.
            value = replica.all_reduce(tf.distribute.ReduceOp.MEAN, value)
        self.step.assign(value)
        self.initialized.assign(True)
        # Forward value `value` exactly, gradient to the step variable.
        return value + (step - tf.stop_gradient(step))

    def _features(self, inputs) -> tf.Tensor:
        """N of the gradient scale: weights of the layer or features of one example."""
        shape = inputs.shape
        is_kernel = lq.context.should_quantize()
        counted = shape if is_kernel else shape[1:]
        if counted.is_fully_defined():
            count = float(counted.num_elements())
        else:
            dynamic = tf.shape(inputs)
            count = tf.cast(tf.reduce_prod(dynamic if is_kernel else dynamic[1:]), tf.float32)
        if self.per_channel:
            count = count / float(shape[self._channel_axis])
        return count

    def call(self, inputs, training=None):
        """The quantized tensor, same shape as ``inputs``; gradients as in the class doc.

        ``training=True`` initialises the step from ``inputs`` on the first such
        call; ``training=None`` or False leaves it as it is.
        """
        step = tf.convert_to_tensor(self.step)
        if training is not None:
            step = tf.__internal__.smart_cond.smart_cond(
                training, lambda: self._initialize_step(inputs, step), lambda: step
            )
        step = tf.maximum(tf.abs(step), MIN_STEP)
        rank = inputs.shape.rank
        step = self.broadcast_channels(tf.cast(step, inputs.dtype), rank, self.per_channel)
        gradient_scale = tf.cast(tf.math.rsqrt(self._features(inputs) * self.q_p), inputs.dtype)
        step = grad_scale(step, gradient_scale)
        # v * (1/s): a product per element instead of a quotient, and a cheaper
        # gradient for s.
        scaled = clip_open_window(inputs * (1.0 / step), -float(self.q_n), float(self.q_p))
        return round_pass(scaled) * step

    def deploy_grid(self, latent=None) -> grid.QuantGrid:
        """``UNIFORM`` grid ``[-Q_N s, Q_P s]`` (``latent`` is not needed)."""
        if not self.built:
            raise ValueError(
                f"{self.owner}: deploy_grid needs the trained step; call the "
                "quantizer (or build its layer) first"
            )
        step = np.asarray(tf.keras.backend.get_value(self.step), dtype=np.float32)
        step = np.maximum(np.abs(step), np.float32(MIN_STEP))
        return grid.QuantGrid(
            kind=grid.UNIFORM,
            bits=self.bits,
            axis=self._channel_axis if self.per_channel else None,
            scale=step,
            range_min=-np.float32(self.q_n) * step,
            range_max=np.float32(self.q_p) * step,
            signed=self.signed,
        )

    def get_config(self):
        """The constructor arguments, for saving and ``from_config``."""
        return {
            **super().get_config(),
            "bits": self.bits,
            "signed": self.signed,
            "per_channel": self.per_channel,
            "axis": self.axis,
        }
