"""Quantization schedules: train in float first, lower the bit-width step by step.

Two wrapper quantizers carry the schedule's state, two callbacks drive it:

- ``DelayedQuantizer(q)`` computes the identity until switched on, then ``q``;
  ``QuantizationDelay(steps=N)`` or ``QuantizationDelay(epochs=N)`` switches every
  one of them in the model on after N optimizer steps or epochs.
- ``ProgressiveQuantizer(q, bits=(8, 4, 2))`` holds one copy of ``q`` per bit-width;
  ``BitWidthSchedule({0: 8, 3: 4, 6: 2})`` selects the copy with the scheduled
  bit-width at each epoch (or step).

Why wrappers: a quantizer's bit-width is a Python constant of its forward pass
(``PACT``'s level count, ``Uniform``'s fake-quant ``num_bits``, ``PowerOfTwo``'s
exponent window), fixed when the training function is traced. A variable that
selects among quantizers built for each bit-width changes the forward pass of the
traced function without retracing, lives in checkpoints (``ModelCheckpoint`` and
``BackupAndRestore`` resume in the same stage), and is the same on every replica
under a ``tf.distribute`` strategy.
"""

import numbers
from typing import Callable, Dict, List, Optional, Tuple

import tensorflow as tf

from tfq_plus import quantizers as tq
from tfq_plus.callbacks.quantized_layers import all_layers
from tfq_plus.quantizers.arguments import check_choice
from tfq_plus.quantizers.base import QuantizerBase, register

__all__ = [
    "StagedQuantizer",
    "DelayedQuantizer",
    "ProgressiveQuantizer",
    "PiecewiseSchedule",
    "QuantizationDelay",
    "BitWidthSchedule",
]

UNITS = ("epoch", "step")


def _is_int(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def check_schedule(owner: str, schedule, check_value: Callable) -> List[Tuple[int, object]]:
    """``schedule`` as sorted ``(position, value)`` pairs.

    ``schedule`` must be a non-empty dict from non-negative integer positions (epochs
    or steps) to values; ``check_value(position, value)`` validates (and may convert)
    each value.
    """
    if not isinstance(schedule, dict) or not schedule:
        raise ValueError(
            f"{owner}: `schedule` must be a non-empty dict {{epoch or step: value}}, "
            f"got {schedule!r}"
        )
    for position in schedule:
        if not _is_int(position) or position < 0:
            raise ValueError(
                f"{owner}: schedule keys must be integers >= 0 (epochs or steps), "
                f"got {position!r}"
            )
    return [(int(p), check_value(int(p), schedule[p])) for p in sorted(schedule)]


class PiecewiseSchedule(tf.keras.callbacks.Callback):
    """A value that changes at given epochs or optimizer steps; subclasses apply it.

    ``unit="epoch"``: at the beginning of each epoch the value of the largest key
    <= the epoch index is in force. ``unit="step"``: before each training batch the
    value of the largest key <= ``model.optimizer.iterations`` (the optimizer steps
    taken so far) is in force, so a key N takes effect after N optimizer steps. Both
    positions are restored by ``BackupAndRestore`` and by loading a checkpoint, so a
    resumed run applies the same values at the same positions. Before the first key
    nothing is applied.

    Subclasses implement ``apply(position, value)``, which must be idempotent (it is
    called again after every restart), and may override ``on_train_begin`` to find
    their quantizers.

    Arguments:
        owner: str, how error messages name the schedule (``"INQSchedule"``).
        schedule: dict ``{epoch or step: value}``, integer keys >= 0, not empty.
        unit: ``"epoch"`` or ``"step"``.
        check_value: ``check_value(position, value)`` validates each value and
            returns it (possibly converted); it raises ``ValueError`` on a bad one.

    Raises:
        ValueError: an empty schedule, a key that is not an integer >= 0, a bad
            value or ``unit``.
    """

    def __init__(self, owner: str, schedule, unit: str, check_value: Callable):
        super().__init__()
        self.owner = owner
        self.unit = check_choice(owner, "unit", unit, UNITS)
        self.schedule = check_schedule(owner, schedule, check_value)
        self._applied_key = None

    def key_at(self, position: int) -> Optional[int]:
        """The schedule key in force at ``position``, or None before the first."""
        key = None
        for boundary, _ in self.schedule:
            if boundary <= position:
                key = boundary
        return key

    def value_of(self, key: int):
        """The value scheduled at ``key`` (a key of the schedule)."""
        return dict(self.schedule)[key]

    def apply(self, position: int, value) -> None:
        """Put ``value`` in force at ``position`` (epoch or step); subclasses implement it."""
        raise NotImplementedError

    def _update(self, position: int) -> None:
        key = self.key_at(position)
        if key is None or key == self._applied_key:
            return
        self.apply(position, self.value_of(key))
        self._applied_key = key

    def on_train_begin(self, logs=None):
        """Forget what was applied: the first epoch or step applies its value again."""
        # Re-applied after every (re)start: the restored state decides what changes.
        self._applied_key = None

    def on_epoch_begin(self, epoch, logs=None):
        """With ``unit="epoch"``: apply the value in force at ``epoch`` if it changed."""
        if self.unit == "epoch":
            self._update(int(epoch))

    def on_train_batch_begin(self, batch, logs=None):
        """With ``unit="step"``: apply the value in force at the optimizer's step."""
        if self.unit == "step":
            self._update(int(self.model.optimizer.iterations.numpy()))

    def _implements_train_batch_hooks(self):
        # Per-batch hooks make Keras synchronise with the host after every batch;
        # only step schedules need them.
        return self.unit == "step"


# ---------------------------------------------------------------------------
# Quantizers with stages


def _carry_alpha(previous, new):
    """PACT -> PACT: the trained clipping level carries over to the new bit-width."""
    if isinstance(previous, tq.PACT) and previous.built and new.built:
        new.alpha.assign(previous.alpha)


def _reinitialize_step(previous, new):
    """LSQ: the step is initialised again from the data of its first training step in
    the new stage, as the LSQ paper initialises a network at a new precision."""
    if new.built:
        new.initialized.assign(False)


# What a quantizer takes over when its stage becomes active. Quantizers not listed
# need nothing: they are stateless, or (Uniform with moving-average ranges) their
# state kept tracking the data while inactive, because every stage is computed.
HAND_OVER: Dict[type, Callable] = {
    tq.PACT: _carry_alpha,
    tq.LSQ: _reinitialize_step,
}


def _quantizer_or_none(owner: str, identifier):
    if identifier is None:
        return None
    quantizer = tq.get(identifier)
    if not callable(quantizer):
        raise ValueError(f"{owner}: a stage must be a quantizer or None, got {identifier!r}")
    return quantizer


class StagedQuantizer(QuantizerBase):
    r"""The forward pass of one of several quantizers (stages), chosen by a variable.

    \\[ y = q_s(x), \qquad s = \texttt{stage} \\]

    where ``stage`` is a non-trainable integer variable of this layer (saved in
    checkpoints, mirrored under a distribution strategy) and a stage ``None`` is the
    identity (float). Every stage is computed and the active output selected with
    ``tf.where``, so gradients reach only the active stage, and stages whose state
    updates in the forward pass (``LSQ`` initialisation, ``Uniform`` moving-average
    ranges) keep their updates outside control flow, as a distribution strategy
    requires. Regularization losses of inactive stages (PACT's alpha penalty) still
    count in the model's loss.

    Stage changes go through ``enter_stage``, which hands state over to the new
    stage (``HAND_OVER``: PACT copies the previous stage's alpha, LSQ initialises its
    step again from data). The schedule callbacks call it; a model that is saved and
    reloaded keeps its stage.

    ``precision`` is the last stage's: what the layer deploys as once the schedule
    has run. ``deploy_grid`` describes the active stage (None while it is float).

    Arguments:
        stages: a non-empty list whose entries are quantizers (instances, aliases
            or configs) or None (float).
        **kwargs: Keras layer arguments (``name``, ``dtype``).

    Raises:
        ValueError: ``stages`` is empty or not a list, or an entry is not a quantizer.
    """

    def __init__(self, stages, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(stages, (list, tuple)) or not stages:
            raise ValueError(
                f"{self.owner}: `stages` must be a non-empty list of quantizers or None, "
                f"got {stages!r}"
            )
        self.stages = [_quantizer_or_none(self.owner, stage) for stage in stages]
        self.precision = getattr(self.stages[-1], "precision", None)

    def build(self, input_shape):
        """Create the non-trainable int32 ``stage`` variable (0: the first stage)."""
        # Assigned from callbacks in the cross-replica context; every replica holds
        # the same value.
        self.stage = self.add_weight(
            name="stage",
            shape=(),
            dtype=tf.int32,
            initializer=tf.keras.initializers.Zeros(),
            trainable=False,
            aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA,
        )
        super().build(input_shape)

    def call(self, inputs):
        """The active stage's output (every stage is computed); same shape as ``inputs``."""
        stage = tf.convert_to_tensor(self.stage)
        outputs = [inputs if q is None else q(inputs) for q in self.stages]
        result = outputs[0]
        for index, output in enumerate(outputs[1:], start=1):
            result = tf.where(tf.equal(stage, index), output, result)
        return result

    @property
    def active_stage(self) -> int:
        """The index of the active stage (0 before the layer is built)."""
        return int(self.stage.numpy()) if self.built else 0

    @property
    def active_quantizer(self):
        """The active stage's quantizer, or None for float."""
        return self.stages[self.active_stage]

    def enter_stage(self, index: int) -> bool:
        """Make stage ``index`` active, handing state over; False if it already was."""
        if not _is_int(index) or not 0 <= index < len(self.stages):
            raise ValueError(
                f"{self.owner}: stage must be an integer from 0 to {len(self.stages) - 1}, "
                f"got {index!r}"
            )
        if not self.built:
            raise ValueError(f"{self.owner}: build the model (call it once) before changing stages")
        current = self.active_stage
        if index == current:
            return False
        new = self.stages[index]
        hand_over = HAND_OVER.get(type(new))
        if hand_over is not None:
            hand_over(self.stages[current], new)
        self.stage.assign(index)
        return True

    def deploy_grid(self, latent=None):
        """The active stage's grid; None while the active stage is float.

        larq's quantizers are described by the converter's table, which is asked
        here so that any quantizer the converter knows can be a stage.
        """
        active = self.active_quantizer
        if active is None:
            return None
        if isinstance(active, QuantizerBase):
            return active.deploy_grid(latent)
        from tfq_plus.converters import deploy_table  # the converter's table of larq grids

        return deploy_table.deploy_grid(active, latent)

    def get_config(self):
        """The constructor arguments (stages serialized), for saving and ``from_config``."""
        return {
            **super().get_config(),
            "stages": [None if q is None else tq.serialize(q) for q in self.stages],
        }


@register()
class DelayedQuantizer(StagedQuantizer):
    r"""Identity (float) until switched on, then ``quantizer``: quantization delay.

    \\[ y = \begin{cases} x & \text{before the switch} \\\
        q(x) & \text{after} \end{cases} \\]

    The switch is stage 1 of a ``StagedQuantizer``; ``QuantizationDelay`` flips it
    after a number of steps or epochs. Training the float network first and
    quantizing once it has converged is the ``quant_delay`` of TensorFlow 1's
    quantization-aware training, ``tf.contrib.quantize`` (Jacob et al., 2018).

    Arguments:
        quantizer: the quantizer in force after the delay (instance, alias or config).
        **kwargs: Keras layer arguments (``name``, ``dtype``).

    Example::

        layer = larq.layers.QuantDense(10, input_quantizer=DelayedQuantizer(PACT(bits=4)))
        model.fit(x, y, epochs=6, callbacks=[QuantizationDelay(epochs=2)])  # float for 2 epochs
    """

    def __init__(self, quantizer, **kwargs):
        kwargs.pop("stages", None)
        super().__init__(stages=[None, quantizer], **kwargs)
        if self.stages[1] is None:
            raise ValueError(f"{self.owner}: `quantizer` must be a quantizer, got None")

    @property
    def quantizer(self):
        """The wrapped quantizer (stage 1)."""
        return self.stages[1]

    @property
    def active(self) -> bool:
        """Whether the quantizer is switched on."""
        return self.active_stage == 1

    def get_config(self):
        """The constructor arguments (``quantizer`` serialized), for saving and ``from_config``."""
        config = super().get_config()
        config.pop("stages")
        return {**config, "quantizer": tq.serialize(self.quantizer)}


@register()
class ProgressiveQuantizer(StagedQuantizer):
    r"""One copy of a quantizer per bit-width; the schedule selects the bit-width.

    Stage i is ``quantizer`` rebuilt from its config with ``bits=bits[i]``: e.g.
    ``ProgressiveQuantizer(PACT(alpha_init=6.0), bits=(8, 4, 2))``. Lowering the
    precision step by step (8 -> 4 -> 2) while training, each stage starting from the
    network trained at the previous one, is progressive quantization (Zhuang et al.,
    2018). ``BitWidthSchedule`` selects the stage; when it changes, a PACT stage takes
    over the trained alpha and an LSQ stage re-initialises its step from data
    (``StagedQuantizer.enter_stage``).

    Arguments:
        quantizer: the template (instance, alias or config) of a quantizer class
            with a ``bits`` argument (PACT, LSQ, Uniform, PowerOfTwo, LogQuantizer,
            ShiftQuantizer); its own ``bits`` is replaced by each entry of ``bits``.
        bits: the bit-widths, a list or tuple of distinct integers in schedule order,
            default ``(8, 4, 2)``; each must be allowed by the quantizer class.
        **kwargs: Keras layer arguments (``name``, ``dtype``).

    Raises:
        ValueError: a quantizer without ``bits``, bad ``bits``, or a bit-width the
            quantizer class does not allow (its own error).

    Reference:
        Zhuang, Shen, Tan, Liu, Reid. "Towards Effective Low-bitwidth Convolutional
        Neural Networks", CVPR 2018. https://arxiv.org/abs/1711.00205
    """

    def __init__(self, quantizer, bits=(8, 4, 2), **kwargs):
        kwargs.pop("stages", None)
        owner = f"{type(self).__name__}(name={kwargs.get('name')!r})"
        template = tq.get(quantizer)
        config = template.get_config() if hasattr(template, "get_config") else {}
        if "bits" not in config:
            raise ValueError(
                f"{owner}: `quantizer` must be a quantizer class with a `bits` argument "
                "(e.g. PACT, LSQ, Uniform, PowerOfTwo, LogQuantizer), got "
                f"{quantizer!r}"
            )
        if (
            not isinstance(bits, (list, tuple))
            or not bits
            or not all(_is_int(b) for b in bits)
            or len(set(bits)) != len(bits)
        ):
            raise ValueError(
                f"{owner}: `bits` must be a non-empty sequence of distinct integers, "
                f"got {bits!r}"
            )
        # The class itself, not from_config, so that its ValueError reaches the user.
        stages = [
            type(template)(**{**config, "bits": int(b), "name": f"{config['name']}_{b}bit"})
            for b in bits
        ]
        super().__init__(stages=stages, **kwargs)
        self.bits = tuple(int(b) for b in bits)
        self._template = tq.serialize(template)

    def stage_of_bits(self, bits: int) -> int:
        """The stage index of bit-width ``bits``."""
        if bits not in self.bits:
            raise ValueError(
                f"{self.owner}: no stage with {bits!r} bits; its bit-widths are "
                f"{list(self.bits)}"
            )
        return self.bits.index(bits)

    def get_config(self):
        """The constructor arguments (the template serialized), for saving and ``from_config``."""
        config = super().get_config()
        config.pop("stages")
        return {**config, "quantizer": self._template, "bits": list(self.bits)}


def _staged_quantizers(model, kind: type) -> List[StagedQuantizer]:
    quantizers = [layer for layer in all_layers(model) if isinstance(layer, kind)]
    for quantizer in quantizers:
        if not quantizer.built:
            raise ValueError(
                f"{quantizer.owner} is not built: build the model before training "
                "(an Input layer or one call on data)"
            )
    return quantizers


class QuantizationDelay(PiecewiseSchedule):
    """Switch every ``DelayedQuantizer`` of the model on after N steps or N epochs.

    With ``steps=N`` the first N optimizer steps (``model.optimizer.iterations``
    0 .. N-1) run in float and step N+1 onwards quantized; with ``epochs=N`` epochs
    0 .. N-1 run in float. The switch is the ``stage`` variable of each
    ``DelayedQuantizer`` (checkpointed), and the step or epoch counter it is
    compared with is restored by ``BackupAndRestore``, so a resumed run switches at
    the same point. ``N = 0`` quantizes from the start.

    Arguments:
        steps: int N >= 0 in optimizer steps, or None (default).
        epochs: int N >= 0 in epochs, or None (default). Exactly one of ``steps`` /
            ``epochs``.

    Raises:
        ValueError: both or neither of ``steps`` / ``epochs``, or a negative N; at
            the beginning of ``fit``, a model without a ``DelayedQuantizer`` or one
            that is not built.
    """

    def __init__(self, steps=None, epochs=None):
        owner = "QuantizationDelay"
        if (steps is None) == (epochs is None):
            raise ValueError(
                f"{owner}: give exactly one of `steps` and `epochs`, got steps={steps!r}, "
                f"epochs={epochs!r}"
            )
        delay = steps if epochs is None else epochs
        name = "steps" if epochs is None else "epochs"
        if not _is_int(delay) or delay < 0:
            raise ValueError(f"{owner}: `{name}` must be an integer >= 0, got {delay!r}")
        schedule = {0: delay == 0} if delay == 0 else {0: False, int(delay): True}
        super().__init__(owner, schedule, "step" if epochs is None else "epoch", lambda p, v: v)
        self.delay = int(delay)
        self._quantizers: List[DelayedQuantizer] = []

    def on_train_begin(self, logs=None):
        """Find the model's ``DelayedQuantizer`` layers (raises if there is none)."""
        super().on_train_begin(logs)
        self._quantizers = _staged_quantizers(self.model, DelayedQuantizer)
        if not self._quantizers:
            raise ValueError(
                f"{self.owner}: the model has no DelayedQuantizer; wrap the quantizers "
                "to delay, e.g. kernel_quantizer=DelayedQuantizer(PACT(4))"
            )

    def apply(self, position, value):
        """Switch every ``DelayedQuantizer`` on (``value`` True) or off."""
        for quantizer in self._quantizers:
            quantizer.enter_stage(1 if value else 0)


class BitWidthSchedule(PiecewiseSchedule):
    """Set the bit-width of every ``ProgressiveQuantizer`` by epoch (or step).

    ``BitWidthSchedule({0: 8, 3: 4, 6: 2})``: 8 bits in epochs 0-2, 4 bits in epochs
    3-5, 2 bits from epoch 6 on. With ``unit="step"`` the keys are optimizer steps
    (``model.optimizer.iterations``). The active bit-width is each quantizer's
    ``stage`` variable (checkpointed), so ``BackupAndRestore`` resumes at the same
    bit-width. Every ``ProgressiveQuantizer`` in the model must have every scheduled
    bit-width.

    Arguments:
        schedule: dict ``{epoch or step: bits}``; must have the key 0, so that the
            bit-width is defined from the start.
        unit: ``"epoch"`` (default) or ``"step"``.

    Raises:
        ValueError: a bit-width outside 1 .. 8, no key 0; at the beginning of
            ``fit``, a model without a ``ProgressiveQuantizer``, one that is not
            built, or one without a scheduled bit-width.
    """

    def __init__(self, schedule, unit="epoch"):
        owner = "BitWidthSchedule"

        def check_bits(position, bits):
            if not _is_int(bits) or not 1 <= bits <= 8:
                raise ValueError(
                    f"{owner}: bit-widths must be integers from 1 to 8, got {bits!r} "
                    f"at {position}"
                )
            return int(bits)

        super().__init__(owner, schedule, unit, check_bits)
        if self.schedule[0][0] != 0:
            raise ValueError(
                f"{owner}: the schedule must start at 0 so that the bit-width is defined "
                f"from the start, got keys {[p for p, _ in self.schedule]}"
            )
        self._quantizers: List[ProgressiveQuantizer] = []

    def on_train_begin(self, logs=None):
        """Find the model's ``ProgressiveQuantizer`` layers and check that each has
        every scheduled bit-width."""
        super().on_train_begin(logs)
        self._quantizers = _staged_quantizers(self.model, ProgressiveQuantizer)
        if not self._quantizers:
            raise ValueError(
                f"{self.owner}: the model has no ProgressiveQuantizer; use e.g. "
                "input_quantizer=ProgressiveQuantizer(PACT(), bits=(8, 4, 2))"
            )
        for quantizer in self._quantizers:
            for _, bits in self.schedule:
                quantizer.stage_of_bits(bits)  # raises naming the quantizer

    def apply(self, position, bits):
        """Make ``bits`` the active bit-width of every ``ProgressiveQuantizer``."""
        for quantizer in self._quantizers:
            quantizer.enter_stage(quantizer.stage_of_bits(bits))
