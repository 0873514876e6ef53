"""Magnitude pruning (TFMOT) of larq ``Quant*`` layers, and pruning with quantization.

TFMOT prunes a layer that implements its ``PrunableLayer`` protocol: a method
``get_prunable_weights()`` listing the variables to mask. Importing ``tfq_plus``
gives larq's kernel layers that method (see ``PRUNABLE_KERNELS``), so TFMOT's own
``prune_low_magnitude`` (with ``ConstantSparsity`` / ``PolynomialDecay``),
``UpdatePruningStep``, ``strip_pruning`` and the reloading of a saved pruned model
work unchanged on models with larq layers, and a stripped model holds plain larq
layers, the form the converter takes::

    import tfq_plus
    import tensorflow_model_optimization as tfmot

    pruned = tfmot.sparsity.keras.prune_low_magnitude(
        model, pruning_schedule=tfmot.sparsity.keras.ConstantSparsity(0.75, 0))
    pruned.fit(..., callbacks=[tfmot.sparsity.keras.UpdatePruningStep()])
    deployable = tfq_plus.pruning.strip(pruned)

What is pruned is the *latent* (float) kernel behind larq's ``QuantizedVariable``:
TFMOT ranks the latent magnitudes, keeps the mask, and writes ``latent * mask`` back
before every forward pass and at the end of every epoch. A pruned weight is then an
exact 0.0 that the layer's quantizer reads on every call, so the sparsity survives
quantization exactly when the quantizer maps 0 to 0. That holds for the formats with
a zero level: ternary (larq ``SteTern``, ``TTQ``: |0| is below any threshold),
``PowerOfTwo`` and ``LogQuantizer`` (0 is their zero code), ``ShiftQuantizer``
(every term of 0 is 0), ``Uniform`` (its range is nudged so that 0 is a level, in
both the symmetric and the asymmetric form), ``LSQ`` (round(0 / s) = 0) and a
float kernel. It fails for

- binary kernels (``SteSign``, ``ApproxSign``, ``SwishSign``, ``ScaledSign``, any
  quantizer of precision 1 without a zero): sign(0) = +1, every pruned weight would
  become +1 (or +scale);
- larq's ``DoReFa(mode="weights")``: its 2^k levels (2i / (2^k - 1) - 1) are
  symmetric around 0 without containing it, 0 becomes 1 / (2^k - 1).

Rather than relying on a list, ``get_prunable_weights`` checks each kernel's
quantizer when the pruning wrapper is built: it quantizes the layer's current latent
kernel with a checkerboard of entries set to 0 and requires those entries to come
out as exact zeros (``check_zero_survives``). A quantizer that fails raises a
``ValueError`` naming the layer, the quantizer and why (binary: no zero level),
instead of training a model whose deployed kernel is not sparse.

``prune_and_quantize`` is the one-call recipe in the spirit of Deep Compression
(Han et al. 2016: prune, then quantize the surviving weights, fine-tuning) and
Clip-Q (Tung & Mori 2018: pruning and quantization learned jointly in one
fine-tuning run): it gives the float layers of a trained model a kernel quantizer,
wraps every kernel layer in TFMOT's pruning wrapper, and returns the model with the
callbacks to fine-tune it with. Unlike Clip-Q, the sparsity and the bit-width are
chosen by the user, not searched per layer.

References:
    Zhu, Gupta. "To prune, or not to prune: exploring the efficacy of pruning for
    model compression", 2017 (TFMOT's PolynomialDecay). https://arxiv.org/abs/1710.01878
    Han, Mao, Dally. "Deep Compression", ICLR 2016. https://arxiv.org/abs/1510.00149
    Tung, Mori. "CLIP-Q: Deep Network Compression Learning by In-Parallel
    Pruning-Quantization", CVPR 2018.
"""

import numbers
import warnings
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

import larq as lq
import numpy as np
import tensorflow as tf
import tensorflow_model_optimization as tfmot

# The wrapper class itself is not exported by tfmot.sparsity.keras (only the function
# that creates it); it is needed to recognise and build wrappers.
from tensorflow_model_optimization.python.core.sparsity.keras.pruning_wrapper import (
    PruneLowMagnitude,
)

from tfq_plus import quantizers as tq

__all__ = [
    "PRUNABLE_KERNELS",
    "KernelSparsity",
    "PrunedModel",
    "PruningScheduleCheck",
    "check_zero_survives",
    "kernel_sparsity",
    "prunable_latent_weights",
    "prune_and_quantize",
    "strip",
]

_sparsity = tfmot.sparsity.keras

# larq layer class -> (weight attribute, quantizer attribute) of each kernel it prunes.
# As TFMOT does for Keras' own layers, separable convolutions prune their pointwise
# kernel only; QuantDepthwiseConv2D prunes its depthwise kernel.
PRUNABLE_KERNELS: Dict[type, Tuple[Tuple[str, str], ...]] = {
    lq.layers.QuantDense: (("kernel", "kernel_quantizer"),),
    lq.layers.QuantConv1D: (("kernel", "kernel_quantizer"),),
    lq.layers.QuantConv2D: (("kernel", "kernel_quantizer"),),
    lq.layers.QuantConv3D: (("kernel", "kernel_quantizer"),),
    lq.layers.QuantConv2DTranspose: (("kernel", "kernel_quantizer"),),
    lq.layers.QuantConv3DTranspose: (("kernel", "kernel_quantizer"),),
    lq.layers.QuantLocallyConnected1D: (("kernel", "kernel_quantizer"),),
    lq.layers.QuantLocallyConnected2D: (("kernel", "kernel_quantizer"),),
    lq.layers.QuantDepthwiseConv2D: (("depthwise_kernel", "depthwise_quantizer"),),
    lq.layers.QuantSeparableConv1D: (("pointwise_kernel", "pointwise_quantizer"),),
    lq.layers.QuantSeparableConv2D: (("pointwise_kernel", "pointwise_quantizer"),),
}

# Float Keras layer -> (larq layer, its quantizer attribute), for prune_and_quantize.
# Exact classes: larq's layers subclass these and are left as they are.
FLOAT_TO_QUANT: Dict[type, Tuple[type, str]] = {
    tf.keras.layers.Dense: (lq.layers.QuantDense, "kernel_quantizer"),
    tf.keras.layers.Conv1D: (lq.layers.QuantConv1D, "kernel_quantizer"),
    tf.keras.layers.Conv2D: (lq.layers.QuantConv2D, "kernel_quantizer"),
    tf.keras.layers.Conv3D: (lq.layers.QuantConv3D, "kernel_quantizer"),
    tf.keras.layers.DepthwiseConv2D: (lq.layers.QuantDepthwiseConv2D, "depthwise_quantizer"),
}

SCHEDULES = ("polynomial", "constant")


def _latent(variable) -> tf.Variable:
    """The float variable behind larq's ``QuantizedVariable`` (or the variable)."""
    return getattr(variable, "latent_variable", variable)


def _quantizer_name(quantizer) -> str:
    return getattr(quantizer, "name", None) or type(quantizer).__name__


def check_zero_survives(layer, weight_name: str, quantizer, latent) -> None:
    """Raise if ``quantizer`` would turn pruned (zero) entries of ``latent`` non-zero.

    The probe is the layer's current latent kernel with a checkerboard of entries
    (even sum of indices) set to 0, quantized the way the layer reads its kernel
    (inside larq's ``quantized_scope``, not in training mode, so no statistics or
    step initialisation are touched). Every probe zero must come out as exactly 0.0.
    The checkerboard leaves non-zero entries in every slice of every axis with more
    than one entry, so per-channel scales (e.g. ``ScaledSign``'s mean |w|, which is
    0 for an all-zero channel) do not vanish and hide a missing zero level.

    Args:
        layer: the layer that owns the kernel (named in the message).
        weight_name: the kernel's attribute (``"kernel"``, ``"depthwise_kernel"``).
        quantizer: the kernel's quantizer, or None (nothing to check).
        latent: the latent kernel (a variable or tensor).

    Raises:
        ValueError: naming the layer, the weight and the quantizer; for a quantizer
            of precision 1 the message says that a binary format has no zero.
    """
    if quantizer is None:
        return
    with tf.init_scope():
        values = np.array(tf.convert_to_tensor(latent), dtype=np.float32)
        zeroed = np.indices(values.shape).sum(axis=0) % 2 == 0
        probe = tf.constant(np.where(zeroed, np.float32(0.0), values), dtype=latent.dtype)
        with lq.context.quantized_scope(True):
            if isinstance(quantizer, tf.keras.layers.Layer) and quantizer._expects_training_arg:
                quantized = quantizer(probe, training=False)
            else:
                quantized = quantizer(probe)
        quantized = np.asarray(quantized)
    lost = quantized[zeroed]
    if np.all(lost == 0.0):
        return
    owner = f"layer {layer.name!r} ({type(layer).__name__})"
    name = _quantizer_name(quantizer)
    leave_out = (
        f"leave this layer unpruned (prune_and_quantize(..., exclude=[{layer.name!r}]), or "
        "wrap only the other layers with tfmot's prune_low_magnitude)"
    )
    zero_formats = "SteTern, TTQ, PowerOfTwo, LogQuantizer, ShiftQuantizer, Uniform, LSQ"
    if getattr(quantizer, "precision", None) == 1:
        raise ValueError(
            f"{owner}: cannot prune `{weight_name}`: its quantizer {name} is binary "
            f"(precision 1) and has no zero level, so every pruned weight would be "
            f"quantized to {lost.flat[0]:g} and the sparsity would be lost in the "
            f"deployed kernel. Either {leave_out}, or use a kernel quantizer with a "
            f"zero level ({zero_formats})."
        )
    raise ValueError(
        f"{owner}: cannot prune `{weight_name}`: its quantizer {name} maps an exact "
        f"zero to {lost.flat[0]:g} (its grid has no zero level), so the sparsity would "
        f"be lost in the deployed kernel. Either {leave_out}, or use a kernel quantizer "
        f"with a zero level ({zero_formats})."
    )


def prunable_latent_weights(layer) -> List[tf.Variable]:
    """TFMOT's ``get_prunable_weights`` for larq layers: the latent kernels.

    Installed as a method on every class of ``PRUNABLE_KERNELS``; TFMOT's pruning
    wrapper calls it when it is built. Each kernel's quantizer is checked with
    ``check_zero_survives`` first.

    Args:
        layer: a built larq layer of a ``PRUNABLE_KERNELS`` class (or subclass).

    Returns:
        The latent kernel variables to mask, in ``PRUNABLE_KERNELS`` order.
    """
    pairs = PRUNABLE_KERNELS.get(type(layer))
    if pairs is None:
        pairs = next(p for cls, p in PRUNABLE_KERNELS.items() if isinstance(layer, cls))
    weights = []
    for weight_name, quantizer_name in pairs:
        latent = _latent(getattr(layer, weight_name))
        check_zero_survives(layer, weight_name, getattr(layer, quantizer_name, None), latent)
        weights.append(latent)
    return weights


def _no_prunable_weights(layer) -> List[tf.Variable]:
    """A quantizer used as a layer has nothing to prune (like an activation in TFMOT)."""
    return []


def _install_pruning_protocol() -> None:
    """Give larq's kernel layers and quantizers TFMOT's ``PrunableLayer`` protocol.

    A class that already defines ``get_prunable_weights`` keeps its own.
    """
    for cls in PRUNABLE_KERNELS:
        if not hasattr(cls, "get_prunable_weights"):
            cls.get_prunable_weights = prunable_latent_weights
            _sparsity.PrunableLayer.register(cls)
    if not hasattr(lq.quantizers.Quantizer, "get_prunable_weights"):
        lq.quantizers.Quantizer.get_prunable_weights = _no_prunable_weights
        _sparsity.PrunableLayer.register(lq.quantizers.Quantizer)


_install_pruning_protocol()


class KernelSparsity(NamedTuple):
    """Fractions of exact zeros in one kernel (``kernel_sparsity``'s values).

    Attributes:
        latent: in the latent (float) weights, what TFMOT pruned.
        quantized: in the kernel the layer computes with (after its quantizer);
            at least the pruned fraction when the quantizer keeps zeros, more where
            small weights also round to zero.
    """

    latent: float
    quantized: float


def _kernel_layers(model):
    """(layer, weight attribute) of every kernel in ``model``, nested ones included."""
    for layer in model._flatten_layers(include_self=False, recursive=True):
        pairs = PRUNABLE_KERNELS.get(type(layer))
        if pairs is not None:
            for weight_name, _ in pairs:
                yield layer, weight_name
        elif isinstance(layer, tuple(FLOAT_TO_QUANT)) and not isinstance(
            layer, lq.layers_base.BaseLayer
        ):
            yield layer, "depthwise_kernel" if hasattr(layer, "depthwise_kernel") else "kernel"


def kernel_sparsity(model) -> Dict[str, KernelSparsity]:
    """``{"<layer>/<weight>": KernelSparsity}`` for every kernel of ``model``.

    Works on pruned (wrapped) and stripped models. The quantized kernel is read the
    way the layer reads it (larq's ``quantized_scope``), outside training mode.
    """
    report = {}
    for layer, weight_name in _kernel_layers(model):
        variable = getattr(layer, weight_name, None)
        if not isinstance(variable, tf.Variable):
            continue
        latent = np.asarray(tf.convert_to_tensor(_latent(variable)))
        with lq.context.quantized_scope(True):
            quantized = np.asarray(tf.convert_to_tensor(variable))
        report[f"{layer.name}/{weight_name}"] = KernelSparsity(
            latent=float(np.mean(latent == 0.0)), quantized=float(np.mean(quantized == 0.0))
        )
    return report


class PrunedModel(NamedTuple):
    """What ``prune_and_quantize`` returns: ``model, callbacks = prune_and_quantize(...)``.

    Attributes:
        model: the copy with pruning wrappers (and new quantizers), not compiled.
        callbacks: the callbacks to pass to ``fit``.
    """

    model: tf.keras.Model
    callbacks: List[tf.keras.callbacks.Callback]


def _check_int(owner: str, name: str, value, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
        raise ValueError(f"{owner}: `{name}` must be an integer >= {low}, got {value!r}")
    return int(value)


def _pruning_schedule(owner, target_sparsity, schedule, begin_step, end_step, frequency):
    """A TFMOT PruningSchedule from prune_and_quantize's arguments."""
    if isinstance(schedule, _sparsity.PruningSchedule):
        if target_sparsity is not None:
            raise ValueError(
                f"{owner}: pass either `target_sparsity` (with schedule='polynomial' or "
                f"'constant') or a PruningSchedule as `schedule`, not both; got "
                f"target_sparsity={target_sparsity!r} and schedule={schedule!r}"
            )
        return schedule
    if schedule not in SCHEDULES:
        raise ValueError(
            f"{owner}: `schedule` must be one of {list(SCHEDULES)} or a "
            f"tfmot.sparsity.keras.PruningSchedule, got {schedule!r}"
        )
    if (
        isinstance(target_sparsity, bool)
        or not isinstance(target_sparsity, numbers.Real)
        or not 0 < target_sparsity < 1
    ):
        raise ValueError(
            f"{owner}: `target_sparsity` must be a number in (0, 1), got {target_sparsity!r}"
        )
    begin_step = _check_int(owner, "begin_step", begin_step, 0)
    frequency = _check_int(owner, "frequency", frequency, 1)
    if schedule == "constant":
        if end_step is None:
            end_step = -1
        else:
            end_step = _check_int(owner, "end_step", end_step, begin_step + 1)
        return _sparsity.ConstantSparsity(
            float(target_sparsity), begin_step=begin_step, end_step=end_step, frequency=frequency
        )
    if end_step is None:
        raise ValueError(
            f"{owner}: schedule='polynomial' needs `end_step` (the training step at which "
            "the target sparsity is reached), got None"
        )
    end_step = _check_int(owner, "end_step", end_step, begin_step + 1)
    return _sparsity.PolynomialDecay(
        initial_sparsity=0.0,
        final_sparsity=float(target_sparsity),
        begin_step=begin_step,
        end_step=end_step,
        frequency=frequency,
    )


class PruningScheduleCheck(tf.keras.callbacks.Callback):
    """Warns when a ``fit`` is too short for the pruning schedule to reach its target.

    A ``PolynomialDecay`` schedule reaches ``final_sparsity`` only at ``end_step``;
    a run of fewer steps stops part-way (``end_step=2000`` on a 600-step run ends near
    11 % instead of 75 %) and nothing else says so. At the start of training, when
    Keras knows the run's length (``epochs x steps``), this compares the last step
    with the schedule; if the length is unknown (a dataset without a cardinality),
    it checks the step reached at the end instead.

    ``prune_and_quantize`` adds one to its callbacks with a polynomial schedule.

    Arguments:
        schedule: the ``tfmot.sparsity.keras.PruningSchedule``; called with a step
            it gives ``(update?, sparsity)``, the sparsity the warning quotes.
        target_sparsity: float, the schedule's final sparsity.
        end_step: int, the step at which the schedule reaches it.
        owner: str, how the warning names the caller (default
            ``"prune_and_quantize"``).
    """

    def __init__(self, schedule, target_sparsity: float, end_step: int, owner: str = "prune_and_quantize"):
        super().__init__()
        self.schedule = schedule
        self.target_sparsity = float(target_sparsity)
        self.end_step = int(end_step)
        self.owner = owner
        self._warned = False

    def _steps_done(self) -> int:
        """Batches trained so far: UpdatePruningStep gives each batch the optimizer's
        iteration count as its pruning step (0 for the first batch)."""
        return int(tf.keras.backend.get_value(self.model.optimizer.iterations))

    def _warn_if_short(self, last_step: int, when: str) -> None:
        if self._warned or last_step >= self.end_step:
            return
        self._warned = True
        _, sparsity = self.schedule(tf.constant(last_step, tf.int64))
        warnings.warn(
            f"{self.owner}: the pruning schedule reaches its target sparsity "
            f"{self.target_sparsity:.0%} at step {self.end_step}, but {when} at step {last_step}: "
            f"the kernels will be about {float(sparsity):.1%} sparse. Lower `end_step` to at most "
            f"the run's steps (epochs x batches per epoch) or train longer.",
            stacklevel=2,
        )

    def on_train_begin(self, logs=None):
        """Warn if this fit's last step (epochs x steps, when known) is before ``end_step``."""
        self._first_step, self._batches = self._steps_done(), 0
        epochs, steps = self.params.get("epochs"), self.params.get("steps")
        if epochs and steps:
            self._warn_if_short(self._steps_done() + int(epochs) * int(steps) - 1, "this fit ends")

    def on_train_end(self, logs=None):
        """Warn if training stopped before ``end_step`` (once per callback)."""
        # batches counted here: with a dataset of unknown length Keras begins one
        # more batch that finds the data exhausted (and the optimizer counts it)
        self._warn_if_short(max(self._first_step + self._batches - 1, 0), "training stopped")

    def on_train_batch_end(self, batch, logs=None):
        """Count the batch."""
        self._batches += 1


def _fresh_quantizer(owner: str, identifier):
    """A new quantizer per layer (quantizers with variables must not be shared)."""
    if isinstance(identifier, tf.keras.layers.Layer):
        identifier = tq.serialize(identifier)
    quantizer = tq.get(identifier)
    if quantizer is None:
        raise ValueError(f"{owner}: `kernel_quantizer` resolved to None from {identifier!r}")
    return quantizer


def prune_and_quantize(
    model: tf.keras.Model,
    target_sparsity: Optional[float],
    kernel_quantizer=None,
    schedule="polynomial",
    begin_step: int = 0,
    end_step: Optional[int] = None,
    frequency: int = 100,
    exclude: Sequence[str] = (),
    log_dir: Optional[str] = None,
) -> PrunedModel:
    """Prune and quantize a trained model in the same fine-tuning run.

    Returns a copy of ``model`` (the original is not changed; weights are copied)
    in which

    - with ``kernel_quantizer`` given, every float Keras ``Dense`` / ``Conv1D`` /
      ``Conv2D`` / ``Conv3D`` / ``DepthwiseConv2D`` becomes the larq ``Quant*``
      layer with that quantizer (a fresh copy per layer) and the same weights;
      larq layers keep their own quantizers (and quantizer state);
    - every kernel layer (``PRUNABLE_KERNELS`` and the float layers above) is wrapped
      in TFMOT's ``PruneLowMagnitude`` with the schedule below; its latent kernel is
      pruned, and a quantizer that would lose the zeros raises (see the module doc).

    Layers named in ``exclude`` are left exactly as they are (not quantized, not
    pruned), e.g. the first convolution or a binary layer.

    Fine-tune with ``model.fit(..., callbacks=callbacks)`` after ``compile`` (the copy
    has no optimizer), then ``strip(model)``.

    Args:
        model: a built functional or Sequential model (call it inside
            ``strategy.scope()`` to train under a distribution strategy).
        target_sparsity: float in (0, 1), the final fraction of zeros per kernel;
            None when ``schedule`` is a PruningSchedule.
        kernel_quantizer: quantizer alias, config, or instance (copied per layer) for
            the float layers, or None (default) to quantize nothing new.
        schedule: ``"polynomial"`` (TFMOT ``PolynomialDecay`` from 0 to
            ``target_sparsity`` between ``begin_step`` and ``end_step``, Zhu & Gupta's
            cubic ramp), ``"constant"`` (``ConstantSparsity`` from ``begin_step``), or a
            ``tfmot.sparsity.keras.PruningSchedule``. Default ``"polynomial"``.
        begin_step, end_step: int, the training steps (batches) where pruning
            starts (default 0) and where the polynomial ramp reaches the target
            (required for it; for ``"constant"`` None, the default, prunes to the
            end).
        frequency: int >= 1, default 100: steps between mask updates.
        exclude: names of layers to leave alone (a string or a sequence).
        log_dir: str or None (default): if given, TFMOT's ``PruningSummaries``
            writes sparsity there.

    Returns:
        ``PrunedModel(model, callbacks)``: callbacks hold TFMOT's
        ``UpdatePruningStep`` (required), with a polynomial schedule a
        ``PruningScheduleCheck`` (warns when the fit ends before ``end_step``), and
        ``PruningSummaries`` with ``log_dir``.

    Raises:
        ValueError: a model that is not functional / Sequential or not built, a bad
            schedule argument, an ``exclude`` name the model lacks, a bad
            ``kernel_quantizer``, or a kernel quantizer without a zero level
            (``check_zero_survives``).

    Example::

        pruned, callbacks = prune_and_quantize(
            model, 0.5, kernel_quantizer=LSQ(bits=4, signed=True), end_step=2000,
            exclude=["conv_first"])
        pruned.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
        pruned.fit(x, y, epochs=4, batch_size=64, callbacks=callbacks)
        deployable = strip(pruned)
    """
    owner = "prune_and_quantize"
    if not isinstance(model, tf.keras.Model) or not (
        isinstance(model, tf.keras.Sequential) or model._is_graph_network
    ):
        raise ValueError(
            f"{owner}: `model` must be a functional or Sequential tf.keras.Model, got "
            f"{type(model).__name__}"
        )
    if not model.built:
        raise ValueError(f"{owner}: `model` must be built (its weights are copied); build it first")
    pruning_schedule = _pruning_schedule(
        owner, target_sparsity, schedule, begin_step, end_step, frequency
    )
    if isinstance(exclude, str):
        exclude = (exclude,)
    exclude = set(exclude)
    known = {layer.name for layer in model._flatten_layers(include_self=False, recursive=True)}
    unknown = sorted(exclude - known)
    if unknown:
        raise ValueError(f"{owner}: `exclude` names layers the model does not have: {unknown}")
    if kernel_quantizer is not None:
        _fresh_quantizer(owner, kernel_quantizer)  # fail now on a bad identifier
    copies: List[Tuple[tf.keras.layers.Layer, tf.keras.layers.Layer, bool]] = []

    def clone(layer):
        if isinstance(layer, tf.keras.Model):
            return tf.keras.models.clone_model(layer, clone_function=clone)
        if isinstance(layer, tf.keras.layers.InputLayer):
            return layer.__class__.from_config(layer.get_config())
        config = layer.get_config()
        cls = type(layer)
        converted = (
            layer.name not in exclude and kernel_quantizer is not None and cls in FLOAT_TO_QUANT
        )
        if converted:
            cls, attribute = FLOAT_TO_QUANT[cls]
            quantizer = _fresh_quantizer(owner, kernel_quantizer)
            config = {**config, attribute: tq.serialize(quantizer)}
        new = cls.from_config(config)
        copies.append((layer, new, converted))
        if layer.name in exclude or not (cls in PRUNABLE_KERNELS or cls in FLOAT_TO_QUANT):
            return new
        return PruneLowMagnitude(new, pruning_schedule=pruning_schedule)

    pruned = tf.keras.models.clone_model(model, clone_function=clone)
    for old, new, converted in copies:
        if not converted:
            new.set_weights(old.get_weights())
            continue
        # Same kernel and bias; the larq layer's quantizer keeps its own new state.
        for name in ("kernel", "depthwise_kernel", "bias"):
            source = getattr(old, name, None)
            if isinstance(source, tf.Variable):
                getattr(new, name).assign(_latent(source).read_value())
    callbacks: List[tf.keras.callbacks.Callback] = [_sparsity.UpdatePruningStep()]
    if isinstance(pruning_schedule, _sparsity.PolynomialDecay):
        callbacks.append(PruningScheduleCheck(
            pruning_schedule, pruning_schedule.final_sparsity, pruning_schedule.end_step, owner))
    if log_dir is not None:
        callbacks.append(_sparsity.PruningSummaries(log_dir=log_dir))
    return PrunedModel(pruned, callbacks)


def _wrappers(model):
    return [
        layer
        for layer in model._flatten_layers(include_self=False, recursive=True)
        if isinstance(layer, PruneLowMagnitude)
    ]


def strip(model: tf.keras.Model) -> tf.keras.Model:
    """TFMOT's ``strip_pruning``, after applying every wrapper's mask once more.

    ``UpdatePruningStep`` masks the latent weights at the end of each epoch; a model
    trained in a custom loop may end with an optimizer step after the last masking,
    so the masks are applied here too. The result holds plain larq / Keras layers
    (the pruning wrappers' inner layers), with sparse latent kernels: it saves,
    reloads and converts like any model. Its layers are its own (fresh copies with the
    same weights and quantizer state), so ``layer.output`` of each is a tensor of the
    stripped model, as ``converters.verify`` needs when it probes layers.

    Args:
        model: a ``tf.keras.Model`` with ``PruneLowMagnitude`` wrappers (a model
            without them is copied as it is).

    Returns:
        A new model (the input is masked once more but otherwise unchanged).

    Raises:
        ValueError: ``model`` is not a ``tf.keras.Model``.
    """
    if not isinstance(model, tf.keras.Model):
        raise ValueError(f"strip: `model` must be a tf.keras.Model, got {type(model).__name__}")
    for wrapper in _wrappers(model):
        for weight, mask, _ in wrapper.pruning_vars:
            weight.assign(weight.read_value() * tf.cast(mask, weight.dtype))
    stripped = _sparsity.strip_pruning(model)
    # strip_pruning reuses the layers: unwrapped ones and the wrappers' inner layers
    # stay connected to the pruned model's graph too, where their first output lives.
    # (in the model's distribution strategy: mirrored variables stay mirrored)
    with model.distribute_strategy.scope():
        own = tf.keras.models.clone_model(stripped)
    own.set_weights(stripped.get_weights())
    return own
