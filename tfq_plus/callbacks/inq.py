"""Incremental Network Quantization: freeze power-of-two weights group by group."""

import numbers
from typing import List

import numpy as np
import tensorflow as tf

from tfq_plus import quantizers as tq
from tfq_plus.callbacks.quantized_layers import QuantizedTensor, find_quantized_tensors
from tfq_plus.callbacks.schedules import PiecewiseSchedule
from tfq_plus.quantizers.arguments import check_choice, resolve_axis
from tfq_plus.quantizers.base import QuantizerBase, register
from tfq_plus.quantizers.log import LOG2_OF_BASE, LogQuantizer
from tfq_plus.quantizers.power_of_two import PowerOfTwo, round_to_powers_of_two

__all__ = ["INQQuantizer", "INQSchedule"]

STRATEGIES = ("magnitude", "random")


@register("inq")
class INQQuantizer(QuantizerBase):
    r"""A kernel whose entries are frozen, group by group, at their power-of-two value.

    INQ (Zhou et al., 2017) quantizes a trained network in steps: at step t the
    weights of each layer are split into a group A_t to quantize and a group to keep
    training; A_t grows to a fraction sigma_t of the layer, the weights in it are
    set to their power-of-two value and frozen, the others are retrained in float to
    compensate; at sigma = 1 the layer is fully quantized. With the binary mask
    T (1 = frozen) and the frozen values Q, the forward pass is

    \\[ \hat W = T \odot Q + (1 - T) \odot W \\]

    (computed as ``tf.where(T, Q, W)``), so the gradient reaches the latent W only
    where T = 0, and the value of a frozen entry is Q, whatever happens to its latent
    weight afterwards (optimizer momentum, Adam moments, weight decay): Q is a
    non-trainable variable that only ``freeze`` writes, and only at entries not yet
    frozen. The paper's update W <- W - gamma dE/dW * (1 - T) is thus exact for the
    kernel the layer computes with, for any optimizer.

    Q is the ``base`` quantizer's value in a window fixed at the first freeze: INQ
    computes its exponent window once, n_1 = floor(log2(4 s / 3)) with s = max |W| of
    the trained layer (``PowerOfTwo``; per channel with ``per_channel``), and keeps
    it while the rest of the layer retrains. The anchor s is stored (variable
    ``anchor``); the window is the base quantizer's own ``deploy_grid`` of it, and Q
    its own rounding (``round_to_powers_of_two``, the function ``PowerOfTwo`` calls;
    for ``LogQuantizer`` a copy with ``fsr`` fixed at the window's top). So
    ``deploy_grid`` reports exactly the grid the frozen values lie on, and the
    fully frozen kernel is a fixed point of the base quantizer itself (its largest
    magnitude is at most the window's top, so the base's own window, anchored at the
    kernel's max, contains every frozen value).

    Why a wrapping quantizer: INQ's state (mask, frozen values, anchor) has the shape
    of the kernel and must be saved with the model for ``ModelCheckpoint`` and
    ``BackupAndRestore`` to resume exactly; as variables of the kernel's quantizer,
    created when the layer is built (inside the strategy scope under
    ``tf.distribute``), it is saved, restored and mirrored like any layer weight. A
    callback that installed variables into existing layers would create them after
    the model was built and outside the strategy scope; and ``PowerOfTwo`` itself
    stays the stateless quantizer it is. ``INQSchedule`` decides what to freeze and
    when; this layer owns how.

    Before the first freeze the kernel is the float latent kernel (INQ starts from a
    trained float network).

    Variables (non-trainable): ``frozen_mask`` (bool, kernel shape),
    ``frozen_values`` (kernel shape), ``anchor`` (max |W| at the first freeze; per
    channel, broadcastable, with a per-channel ``PowerOfTwo``), ``anchored`` (bool).

    Deploy grid: the base's ``POWER_OF_TWO`` grid anchored at ``anchor``, once every
    weight is frozen (a partly frozen kernel still has float weights and raises).

    Arguments:
        base: the quantizer giving the frozen values: a ``PowerOfTwo`` or
            ``LogQuantizer`` instance, alias (``"po2"``, ``"log2"``, ``"log_sqrt2"``)
            or config; None (default) is ``PowerOfTwo(bits=4)``.
        **kwargs: Keras layer arguments (``name``, ``dtype``).

    Raises:
        ValueError: ``base`` is another quantizer; in ``build``, a kernel shape that
            is not fully known.

    Example::

        layer = larq.layers.QuantConv2D(
            32, 3, kernel_quantizer=INQQuantizer(PowerOfTwo(bits=5)))
        model.fit(x, y, epochs=8, callbacks=[INQSchedule({0: 0.5, 2: 0.75, 4: 0.875, 6: 1.0})])

    Reference:
        Zhou, Yao, Guo, Xu, Chen. "Incremental Network Quantization: Towards Lossless
        CNNs with Low-Precision Weights", ICLR 2017. https://arxiv.org/abs/1702.03044
    """

    def __init__(self, base=None, **kwargs):
        super().__init__(**kwargs)
        base = PowerOfTwo(bits=4) if base is None else tq.get(base)
        if not isinstance(base, (PowerOfTwo, LogQuantizer)):
            raise ValueError(
                f"{self.owner}: `base` must be a PowerOfTwo or LogQuantizer (instance, "
                f"alias 'po2' / 'log2' / 'log_sqrt2', or config), got {base!r}"
            )
        self.base = base
        self.precision = base.precision

    def _anchor_axis(self, rank: int):
        """The channel axis of a per-channel PowerOfTwo base, else None."""
        if isinstance(self.base, PowerOfTwo) and self.base.per_channel:
            return resolve_axis(self.owner, "base.axis", self.base.axis, rank)
        return None

    def build(self, input_shape):
        """Create the non-trainable state: ``frozen_mask``, ``frozen_values``,
        ``anchor`` and ``anchored`` (all zero / False: nothing frozen)."""
        shape = tf.TensorShape(input_shape)
        if not shape.is_fully_defined():
            raise ValueError(
                f"{self.owner}: INQ quantizes weights of a known shape, got {shape}; use "
                "it as a kernel quantizer"
            )
        axis = self._anchor_axis(shape.rank)
        anchor_shape = [] if axis is None else [1] * shape.rank
        if axis is not None:
            anchor_shape[axis] = shape[axis]

        def state(name, shape, dtype):
            # Written only by `freeze`, in the cross-replica context: every replica
            # holds the same value, and the first replica's is the one to save.
            return self.add_weight(
                name=name,
                shape=shape,
                dtype=dtype,
                initializer=tf.keras.initializers.Zeros(),
                trainable=False,
                aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA,
            )

        self.frozen_mask = state("frozen_mask", shape, tf.bool)
        self.frozen_values = state("frozen_values", shape, self.dtype)
        self.anchor = state("anchor", anchor_shape, self.dtype)
        self.anchored = state("anchored", (), tf.bool)
        super().build(input_shape)

    def call(self, inputs):
        """``where(frozen_mask, frozen_values, inputs)``: the gradient reaches the
        unfrozen entries only."""
        frozen = tf.cast(self.frozen_values, inputs.dtype)
        return tf.where(tf.convert_to_tensor(self.frozen_mask), frozen, inputs)

    def frozen_fraction(self) -> float:
        """The fraction of entries frozen (0 before the layer is built)."""
        if not self.built:
            return 0.0
        return float(np.mean(self.frozen_mask.numpy()))

    def _window_grid(self):
        return self.base.deploy_grid(self.anchor.numpy())

    def quantize_in_window(self, latent: np.ndarray) -> np.ndarray:
        """The base quantizer's values of ``latent`` in the anchored window."""
        if not bool(self.anchored.numpy()):
            raise ValueError(f"{self.owner}: no window yet; `freeze` sets it")
        latent = np.asarray(latent, dtype=self.dtype)
        window = self._window_grid()
        w = tf.constant(latent)
        if isinstance(self.base, PowerOfTwo):
            low, high = (np.asarray(e, np.float64) for e in window.exponent_range)
            anchor_shape = self.anchor.shape.as_list()
            low, high = low.reshape(anchor_shape), high.reshape(anchor_shape)
            magnitude = round_to_powers_of_two(tf.abs(w), low, high)
            # PowerOfTwo's sign(w) * magnitude, except that zeros are +0.0, never -0.0.
            quantized = tf.where(tf.logical_and(w < 0, magnitude > 0), -magnitude, magnitude)
        else:
            step = LOG2_OF_BASE[self.base.base]
            top = int(round(float(window.exponent_range[1]) / step))
            fixed = LogQuantizer(bits=self.base.bits, base=self.base.base, fsr=top)
            quantized = fixed(w)
        return np.asarray(quantized.numpy(), dtype=latent.dtype)

    def freeze(self, latent: np.ndarray, entries: np.ndarray) -> np.ndarray:
        """Quantize ``latent`` at ``entries`` (bool, kernel shape) and freeze them.

        The window is anchored at max |latent| on the first call. Entries frozen
        before keep their values. Returns the effective kernel (frozen values where
        frozen, ``latent`` elsewhere).
        """
        latent = np.asarray(latent, dtype=self.dtype)
        entries = np.asarray(entries, dtype=bool)
        if latent.shape != tuple(self.frozen_mask.shape) or entries.shape != latent.shape:
            raise ValueError(
                f"{self.owner}: freeze needs arrays of the kernel shape "
                f"{tuple(self.frozen_mask.shape)}, got {latent.shape} and {entries.shape}"
            )
        if not bool(self.anchored.numpy()):
            axis = self._anchor_axis(latent.ndim)
            axes = None if axis is None else tuple(i for i in range(latent.ndim) if i != axis)
            anchor = np.max(np.abs(latent), axis=axes, keepdims=axis is not None)
            self.anchor.assign(np.asarray(anchor, dtype=self.dtype))
            self.anchored.assign(True)
        mask = self.frozen_mask.numpy()
        frozen = self.frozen_values.numpy()
        new = entries & ~mask
        frozen = np.where(new, self.quantize_in_window(latent), frozen)
        mask = mask | new
        self.frozen_values.assign(frozen)
        self.frozen_mask.assign(mask)
        return np.where(mask, frozen, latent)

    def deploy_grid(self, latent=None):
        """The base's ``POWER_OF_TWO`` grid in the anchored window (``latent`` unused).

        Raises:
            ValueError: not every weight is frozen yet.
        """
        fraction = self.frozen_fraction()
        if fraction < 1.0:
            raise ValueError(
                f"{self.owner}: {fraction:.1%} of the kernel is frozen; it deploys as a "
                "power-of-two kernel once INQ has frozen every weight (a schedule "
                "reaching 1.0)"
            )
        return self._window_grid()

    def get_config(self):
        """The constructor arguments (``base`` serialized), for saving and ``from_config``."""
        return {**super().get_config(), "base": tq.serialize(self.base)}


def _check_fraction(position, fraction):
    if (
        isinstance(fraction, bool)
        or not isinstance(fraction, numbers.Real)
        or not 0 < fraction <= 1
    ):
        raise ValueError(
            f"INQSchedule: fractions must be numbers in (0, 1], got {fraction!r} at {position}"
        )
    return float(fraction)


class INQSchedule(PiecewiseSchedule):
    """Freeze a growing fraction of every ``INQQuantizer`` kernel at its power-of-two value.

    ``INQSchedule({0: 0.5, 2: 0.75, 4: 0.875, 6: 1.0})``: at the beginning of epoch
    0, half of each INQ kernel is quantized and frozen, at epoch 2 three quarters, ...,
    at epoch 6 all of it (the paper's accumulated portions). The fractions are
    cumulative: at each key a layer of n weights has round(fraction * n) frozen
    entries (half-up), chosen among those not yet frozen:

    - ``"magnitude"``: the largest |w| first (the paper's pruning-inspired
      partition: large weights matter most and are quantized first); ties go to the
      lower flat index.
    - ``"random"``: uniformly at random, from a generator seeded by
      (``seed``, the layer's position among the model's INQ kernels, the schedule
      key), so the choice does not depend on when training was interrupted.

    State lives in the quantizers' variables (``INQQuantizer``); the epoch (or
    ``model.optimizer.iterations`` with ``unit="step"``) is restored by
    ``BackupAndRestore``, and applying the schedule is idempotent, so a resumed run
    freezes the same entries at the same values as an uninterrupted one. Frozen
    entries are never unfrozen; a schedule that asks for fewer changes nothing.

    After freezing, the latent weights of the frozen entries are set to their frozen
    values, so the latent kernel is the quantized one at that moment (the forward
    pass does not depend on it).

    Arguments:
        schedule: dict ``{epoch or step: fraction}``: integer keys >= 0, fractions
            in (0, 1] increasing with the key.
        strategy: ``"magnitude"`` (default) or ``"random"``.
        seed: int >= 0, default 0: the seed of ``"random"``.
        unit: ``"epoch"`` (default) or ``"step"``.

    Raises:
        ValueError: a bad argument (naming it); at the beginning of ``fit``, a model
            without an ``INQQuantizer`` kernel, or one that is not built.
    """

    def __init__(self, schedule, strategy="magnitude", seed=0, unit="epoch"):
        owner = "INQSchedule"
        super().__init__(owner, schedule, unit, _check_fraction)
        fractions = [f for _, f in self.schedule]
        if any(b <= a for a, b in zip(fractions, fractions[1:])):
            raise ValueError(
                f"{owner}: fractions must increase with the key, got {dict(self.schedule)}"
            )
        self.strategy = check_choice(owner, "strategy", strategy, STRATEGIES)
        if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
            raise ValueError(f"{owner}: `seed` must be an integer >= 0, got {seed!r}")
        self.seed = int(seed)
        self._targets: List[QuantizedTensor] = []

    def on_train_begin(self, logs=None):
        """Find the model's ``INQQuantizer`` kernels (raises if there is none)."""
        super().on_train_begin(logs)
        self._targets = [
            t
            for t in find_quantized_tensors(self.model)
            if isinstance(t.quantizer, INQQuantizer) and t.variable is not None
        ]
        if not self._targets:
            raise ValueError(
                f"{self.owner}: the model has no weight quantized by an INQQuantizer; use "
                "e.g. kernel_quantizer=INQQuantizer(PowerOfTwo(bits=4))"
            )
        for target in self._targets:
            if not target.quantizer.built:
                raise ValueError(f"{self.owner}: {target.name} is not built; build the model first")

    def _choose(self, ordinal: int, key: int, latent: np.ndarray, mask: np.ndarray, count: int):
        """``count`` not-yet-frozen entries of one kernel, as a bool array."""
        candidates = np.flatnonzero(~mask.reshape(-1))
        if self.strategy == "magnitude":
            priority = -np.abs(latent.reshape(-1)[candidates])
        else:
            rng = np.random.default_rng([self.seed, ordinal, key])
            priority = rng.random(mask.size)[candidates]
        chosen = candidates[np.argsort(priority, kind="stable")[:count]]
        entries = np.zeros(mask.size, dtype=bool)
        entries[chosen] = True
        return entries.reshape(mask.shape)

    def apply(self, position, fraction):
        """Freeze every INQ kernel up to ``fraction`` of its entries; the latent
        weights of the newly frozen entries are set to their frozen values."""
        key = self.key_at(position)
        for ordinal, target in enumerate(self._targets):
            quantizer = target.quantizer
            mask = quantizer.frozen_mask.numpy()
            wanted = int(np.floor(fraction * mask.size + 0.5))
            count = wanted - int(mask.sum())
            if count <= 0:
                continue
            latent = target.variable.numpy()
            entries = self._choose(ordinal, key, latent, mask, count)
            target.variable.assign(quantizer.freeze(latent, entries))
