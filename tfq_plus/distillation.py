"""Knowledge distillation into quantized students: Hinton KD, hints, attention, QKD.

``Distiller(student, teacher, temperature=4.0, alpha=0.9)`` is a ``tf.keras.Model``:
``compile`` / ``fit`` / ``evaluate`` train and score the student against the teacher,
``predict`` (and calling the distiller) runs the student, ``save`` saves the student
alone as a plain Keras model (the form ``tfq_plus.converters`` takes).

The loss per example (Hinton, Vinyals, Dean 2015), with student logits s, teacher
logits t, label y, temperature T and weight alpha:

    L = alpha * T^2 * KL(softmax(t / T) || softmax(s / T)) + (1 - alpha) * CE(y, softmax(s))

KL(p || q) = sum_k p_k (log p_k - log q_k), natural logarithms; CE is the ordinary
cross-entropy at temperature 1; the T^2 keeps the soft term's gradient magnitude
independent of T (Hinton et al., Sec. 2). alpha = 1 is pure distillation, alpha = 0
ordinary training. The batch loss is the (sample-weighted) mean over examples plus
the student's regularization losses. The teacher's side gets no gradient.

Logits or probabilities: each model's output is taken as logits or as probabilities
(``student_outputs`` / ``teacher_outputs``; ``"auto"`` reads the model's last layer: a
softmax activation or ``Softmax`` layer means probabilities, anything else logits).
Probabilities are turned back into logits: the pre-softmax tensor where Keras' own
cross-entropy would find it (the softmax output carries it as ``_keras_logits``, or
is a ``Softmax`` op in a graph), otherwise log(max(p, 1e-7)) (any logits of p up to
an additive constant, which the softmax ignores; Keras clips probabilities at the
same 1e-7 in its cross-entropy). With softmax-output models the loss is thus
computed from the exact logits.

Feature matching (optional), between named layer pairs ``feature_pairs=[(student
layer, teacher layer), ...]``, added as ``feature_weight * sum over pairs``:

- ``"hint"`` (FitNets, Romero et al. 2015, Eq. 3): per example
  1/2 * mean_j (u_j - r(v)_j)^2 with u the teacher's feature, v the student's and
  r a trained regressor (a 1x1 convolution for NHWC features, a Dense layer for
  flat ones) mapping the student's channels to the teacher's. The paper's 1/2 L2^2
  is divided by the feature size here, so that ``feature_weight`` does not depend
  on it. FitNets trains the hint in a stage before KD; here the two terms train
  together. The regressors belong to the distiller, not to the saved student.
- ``"attention"`` (attention transfer, Zagoruyko & Komodakis 2017, Eq. 2, p = 2):
  per example 1/2 * || Q_s / ||Q_s||_2 - Q_t / ||Q_t||_2 ||_2 with
  Q = vec(sum_c A_c^2) the spatial attention map of an NHWC activation A. Spatial
  sizes must match, channel counts may differ.

QKD (Kim et al. 2019) as ``QKDSchedule``: the distiller's ``phase`` is
``"self_studying"`` (the quantized student trains on the labels alone: L = CE),
``"co_studying"`` (the teacher trains too, towards the labels and the student:
per example alpha * T^2 * KL(softmax(s/T) || softmax(t/T)) + (1 - alpha) * CE(y, t),
with its own optimizer, so that it becomes easier to imitate for a quantized
student; the student's loss is L above) or ``"tutoring"`` (teacher frozen, the
student learns with L: plain KD, the default phase). Both sides weigh their two
terms with the same alpha; an unweighted sum CE + T^2 KL is alpha = 0.5 up to a
factor 2 in the learning rate. The teacher's optimizer starts its own step count
(and learning-rate schedule) at the first co-studying step.

Under ``tf.distribute``: build the student, the teacher and the distiller, and
``compile``, inside ``strategy.scope()``; per-replica losses are divided by the
global batch size (``tf.nn.compute_average_loss``), as Keras does.

References:
    Hinton, Vinyals, Dean. "Distilling the Knowledge in a Neural Network", 2015.
    https://arxiv.org/abs/1503.02531
    Romero, Ballas, Kahou, Chassang, Gatta, Bengio. "FitNets: Hints for Thin Deep
    Nets", ICLR 2015. https://arxiv.org/abs/1412.6550
    Zagoruyko, Komodakis. "Paying More Attention to Attention", ICLR 2017.
    https://arxiv.org/abs/1612.03928
    Kim, Bhalgat, Lee, Patel, Kwak. "QKD: Quantization-aware Knowledge
    Distillation", 2019. https://arxiv.org/abs/1911.12491
"""

import numbers
from typing import NamedTuple, Optional, Sequence, Tuple

import tensorflow as tf

from tfq_plus.quantizers.arguments import check_choice

__all__ = [
    "CO_STUDYING",
    "Distiller",
    "PHASES",
    "QKDSchedule",
    "SELF_STUDYING",
    "TUTORING",
    "attention_loss",
    "cross_entropy",
    "hint_loss",
    "kd_divergence",
    "output_form",
    "to_logits",
]

LOGITS = "logits"
PROBABILITIES = "probabilities"
OUTPUT_FORMS = ("auto", LOGITS, PROBABILITIES)
FEATURE_LOSSES = ("hint", "attention")

SELF_STUDYING = "self_studying"
CO_STUDYING = "co_studying"
TUTORING = "tutoring"
PHASES = (SELF_STUDYING, CO_STUDYING, TUTORING)

# Smallest probability turned into a logit (Keras' epsilon in its cross-entropy).
PROBABILITY_FLOOR = 1e-7


def _output_layer(model: tf.keras.Model):
    """The layer producing a single-output functional / Sequential model's output."""
    outputs = getattr(model, "outputs", None)
    if not outputs or not model.layers:
        return None
    if len(outputs) != 1:
        raise ValueError(
            f"Distiller: model {model.name!r} has {len(outputs)} outputs; distillation "
            "needs a single classification output"
        )
    layer = outputs[0]._keras_history.layer
    while isinstance(layer, tf.keras.Model) and getattr(layer, "outputs", None):
        layer = layer.outputs[0]._keras_history.layer
    return layer


def output_form(model: tf.keras.Model) -> str:
    """``"probabilities"`` if the model ends in a softmax, else ``"logits"``.

    Raises:
        ValueError: for a subclassed model (no inspectable output layer).
    """
    layer = _output_layer(model)
    if layer is None:
        raise ValueError(
            f"Distiller: cannot tell whether subclassed model {model.name!r} outputs logits "
            "or probabilities; pass student_outputs= / teacher_outputs= 'logits' or "
            "'probabilities'"
        )
    if isinstance(layer, tf.keras.layers.Softmax):
        return PROBABILITIES
    activation = getattr(layer, "activation", None)
    if getattr(activation, "__name__", None) == "softmax":
        return PROBABILITIES
    return LOGITS


def to_logits(outputs: tf.Tensor, form: str) -> tf.Tensor:
    """Logits of a model output given as ``"logits"`` or ``"probabilities"``.

    For probabilities: the softmax's input where Keras recorded it (``_keras_logits``)
    or the graph shows it (a ``Softmax`` op), else log(max(p, 1e-7)).

    Args:
        outputs: a model's output tensor [batch, classes].
        form: ``"logits"`` (returned as it is) or ``"probabilities"``.
    """
    if form == LOGITS:
        return outputs
    recorded = getattr(outputs, "_keras_logits", None)
    if recorded is not None:
        return recorded
    if not tf.executing_eagerly():
        op = getattr(outputs, "op", None)
        if op is not None and op.type == "Softmax":
            return op.inputs[0]
    return tf.math.log(tf.maximum(outputs, PROBABILITY_FLOOR))


def kd_divergence(teacher_logits, student_logits, temperature: float) -> tf.Tensor:
    """Per example KL(softmax(t / T) || softmax(s / T)) (without the T^2 factor).

    Args:
        teacher_logits: t, [batch, classes].
        student_logits: s, [batch, classes].
        temperature: T > 0.

    Returns:
        A [batch] tensor, in nats.
    """
    teacher_log_p = tf.nn.log_softmax(teacher_logits / temperature, axis=-1)
    student_log_p = tf.nn.log_softmax(student_logits / temperature, axis=-1)
    return tf.reduce_sum(tf.exp(teacher_log_p) * (teacher_log_p - student_log_p), axis=-1)


def cross_entropy(labels, logits) -> tf.Tensor:
    """Per example CE(y, softmax(logits)); one-hot labels if they have the logits'
    shape, else integer class indices."""
    labels = tf.convert_to_tensor(labels)
    if labels.shape.rank == logits.shape.rank and labels.shape[-1] == logits.shape[-1] != 1:
        return tf.nn.softmax_cross_entropy_with_logits(tf.cast(labels, logits.dtype), logits)
    indices = tf.cast(tf.reshape(labels, [-1]), tf.int32)
    return tf.nn.sparse_softmax_cross_entropy_with_logits(indices, logits)


def _flatten_examples(tensor: tf.Tensor) -> tf.Tensor:
    return tf.reshape(tensor, [tf.shape(tensor)[0], -1])


def hint_loss(regressed_student, teacher) -> tf.Tensor:
    """Per example 1/2 * mean_j (teacher_j - regressed_student_j)^2 (FitNets).

    Args:
        regressed_student: the student's feature after the hint regressor, the
            teacher feature's shape [batch, ...].
        teacher: the teacher's feature [batch, ...].

    Returns:
        A [batch] tensor.
    """
    difference = _flatten_examples(teacher - regressed_student)
    return 0.5 * tf.reduce_mean(tf.square(difference), axis=-1)


def attention_map(feature: tf.Tensor) -> tf.Tensor:
    """Q / ||Q||_2 with Q = vec(sum over channels of A^2), for NHWC features."""
    energy = tf.reduce_sum(tf.square(feature), axis=-1)
    return tf.math.l2_normalize(_flatten_examples(energy), axis=-1)


def attention_loss(student, teacher) -> tf.Tensor:
    """Per example 1/2 * ||attention_map(student) - attention_map(teacher)||_2.

    Args:
        student, teacher: NHWC features with the same height and width (channel
            counts may differ).

    Returns:
        A [batch] tensor; the norm is floored at 1e-12 (its gradient at a zero
        difference would be 0/0), so identical maps give 0.5e-12, not 0.
    """
    difference = attention_map(student) - attention_map(teacher)
    # sqrt of a floored sum: the norm's gradient is 0/0 at a zero difference.
    return 0.5 * tf.sqrt(tf.maximum(tf.reduce_sum(tf.square(difference), axis=-1), 1e-24))


def _check_form(name: str, form: str, model: tf.keras.Model) -> str:
    check_choice("Distiller", name, form, OUTPUT_FORMS)
    return output_form(model) if form == "auto" else form


def _feature_outputs(model: tf.keras.Model, names: Sequence[str], role: str):
    """The symbolic outputs of ``names`` in ``model`` (functional / Sequential)."""
    if not getattr(model, "inputs", None):
        raise ValueError(
            f"Distiller: feature matching needs a functional or built Sequential {role} "
            f"with known inputs; {role} {model.name!r} has none"
        )
    outputs = []
    for name in names:
        try:
            layer = model.get_layer(name)
        except ValueError:
            raise ValueError(
                f"Distiller: feature_pairs names {role} layer {name!r}, which {role} "
                f"{model.name!r} does not have (layers: {[l.name for l in model.layers]})"
            ) from None
        outputs.append(layer.output)
    return outputs


class _Losses(NamedTuple):
    """One batch's losses: scaled for gradients, and per-replica means to report."""

    student_scaled: tf.Tensor
    teacher_scaled: Optional[tf.Tensor]
    student_output: tf.Tensor
    report: dict


class Distiller(tf.keras.Model):
    """Train ``student`` to imitate ``teacher`` (see the module doc for the loss).

    Arguments:
        student: the (quantized) model to train and keep; a ``tf.keras.Model`` with
            one classification output.
        teacher: a trained model with the same number of classes; frozen except in
            QKD's co-studying phase.
        temperature: float T > 0, default 4.0.
        alpha: float in [0, 1], default 0.9: the weight of the distillation term;
            1 - alpha weighs the cross-entropy with the labels.
        student_outputs, teacher_outputs: ``"logits"``, ``"probabilities"`` or
            ``"auto"`` (default: read from the model's last layer).
        feature_pairs: ``[(student layer name, teacher layer name), ...]`` to match
            (functional / Sequential models only); default none.
        feature_loss: ``"hint"`` (default, FitNets) or ``"attention"`` (attention
            transfer).
        feature_weight: float > 0, default 1.0: the weight of the summed feature
            losses.
        **kwargs: ``tf.keras.Model`` arguments (``name``).

    Raises:
        ValueError: an argument outside the allowed values (naming it), student and
            teacher with different numbers of classes, or a feature pair that cannot
            be matched (a missing layer, ranks other than both 4 or both 2,
            different spatial sizes, flat features with ``"attention"``).

    Example::

        distiller = Distiller(student, teacher, temperature=4.0, alpha=0.9)
        distiller.compile(tf.keras.optimizers.Adam(1e-3), metrics=["accuracy"])
        distiller.fit(x_train, y_train, epochs=5)
        distiller.save("student.h5")  # the student alone, ready to convert

    ``compile(optimizer, metrics=..., teacher_optimizer=None)`` takes no ``loss``: the
    loss is defined by the arguments above. Metrics are computed on the student's
    output. ``teacher_optimizer`` (QKD co-studying only) defaults to a fresh copy of
    the student's optimizer configuration.

    ``fit`` / ``evaluate`` log ``loss`` (the student's total), ``student_loss`` (CE
    with the labels), ``distillation_loss`` (T^2 KL), ``feature_loss`` with feature
    pairs, ``teacher_loss`` in co-studying, and the compiled metrics.
    """

    def __init__(
        self,
        student: tf.keras.Model,
        teacher: tf.keras.Model,
        temperature: float = 4.0,
        alpha: float = 0.9,
        student_outputs: str = "auto",
        teacher_outputs: str = "auto",
        feature_pairs: Sequence[Tuple[str, str]] = (),
        feature_loss: str = "hint",
        feature_weight: float = 1.0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        for role, model in (("student", student), ("teacher", teacher)):
            if not isinstance(model, tf.keras.Model):
                raise ValueError(
                    f"Distiller: `{role}` must be a tf.keras.Model, got {type(model).__name__}"
                )
        if (
            isinstance(temperature, bool)
            or not isinstance(temperature, numbers.Real)
            or not 0 < temperature < float("inf")
        ):
            raise ValueError(
                f"Distiller: `temperature` must be a finite number > 0, got {temperature!r}"
            )
        if isinstance(alpha, bool) or not isinstance(alpha, numbers.Real) or not 0 <= alpha <= 1:
            raise ValueError(f"Distiller: `alpha` must be a number in [0, 1], got {alpha!r}")
        self.student = student
        self.teacher = teacher
        self.temperature = float(temperature)
        self.alpha = float(alpha)
        self.student_outputs = _check_form("student_outputs", student_outputs, student)
        self.teacher_outputs = _check_form("teacher_outputs", teacher_outputs, teacher)
        self._check_classes()
        self.feature_loss = check_choice("Distiller", "feature_loss", feature_loss, FEATURE_LOSSES)
        if (
            isinstance(feature_weight, bool)
            or not isinstance(feature_weight, numbers.Real)
            or not 0 < feature_weight < float("inf")
        ):
            raise ValueError(
                f"Distiller: `feature_weight` must be a finite number > 0, got {feature_weight!r}"
            )
        self.feature_weight = float(feature_weight)
        self.feature_pairs = [tuple(pair) for pair in feature_pairs]
        if any(len(pair) != 2 for pair in self.feature_pairs):
            raise ValueError(
                "Distiller: `feature_pairs` must be (student layer, teacher layer) name "
                f"pairs, got {feature_pairs!r}"
            )
        self._student_taps, self._teacher_taps, self.regressors = self._build_taps()
        self._phase = TUTORING
        self.teacher_optimizer = None
        self.loss_tracker = tf.keras.metrics.Mean(name="loss")
        self.student_loss_tracker = tf.keras.metrics.Mean(name="student_loss")
        self.distillation_loss_tracker = tf.keras.metrics.Mean(name="distillation_loss")
        self.feature_loss_tracker = tf.keras.metrics.Mean(name="feature_loss")
        self.teacher_loss_tracker = tf.keras.metrics.Mean(name="teacher_loss")

    def _check_classes(self):
        shapes = []
        for model in (self.student, self.teacher):
            try:
                shapes.append(tf.TensorShape(model.output_shape)[-1])
            except (AttributeError, ValueError, TypeError):
                return  # not built / subclassed: checked by the loss at run time
        if shapes[0] is not None and shapes[1] is not None and shapes[0] != shapes[1]:
            raise ValueError(
                f"Distiller: the student predicts {shapes[0]} classes and the teacher "
                f"{shapes[1]}; they must agree"
            )

    def _build_taps(self):
        """Models returning [output, *features], and the hint regressors."""
        if not self.feature_pairs:
            return self.student, self.teacher, []
        student_names = [s for s, _ in self.feature_pairs]
        teacher_names = [t for _, t in self.feature_pairs]
        student_features = _feature_outputs(self.student, student_names, "student")
        teacher_features = _feature_outputs(self.teacher, teacher_names, "teacher")
        regressors = []
        for index, (ours, theirs) in enumerate(zip(student_features, teacher_features)):
            names = (
                f"student {student_names[index]!r} {ours.shape} / "
                f"teacher {teacher_names[index]!r} {theirs.shape}"
            )
            if ours.shape.rank != theirs.shape.rank or ours.shape.rank not in (2, 4):
                raise ValueError(
                    f"Distiller: feature pair {names}: features must both be NHWC (rank 4) "
                    "or both flat (rank 2)"
                )
            if ours.shape.rank == 4 and ours.shape[1:3] != theirs.shape[1:3]:
                raise ValueError(
                    f"Distiller: feature pair {names}: spatial sizes differ; pick layers "
                    "with the same height and width"
                )
            if self.feature_loss == "attention" and ours.shape.rank != 4:
                raise ValueError(
                    f"Distiller: feature pair {names}: attention transfer needs NHWC "
                    "(rank 4) features"
                )
            if self.feature_loss == "hint":
                if ours.shape.rank == 4:
                    regressor = tf.keras.layers.Conv2D(
                        theirs.shape[-1], 1, name=f"hint_regressor_{index}"
                    )
                else:
                    regressor = tf.keras.layers.Dense(
                        theirs.shape[-1], name=f"hint_regressor_{index}"
                    )
                regressor.build(ours.shape)
                regressors.append(regressor)
        student_taps = tf.keras.Model(
            self.student.inputs, [self.student.outputs[0], *student_features],
            name=f"{self.student.name}_taps",
        )
        teacher_taps = tf.keras.Model(
            self.teacher.inputs, [self.teacher.outputs[0], *teacher_features],
            name=f"{self.teacher.name}_taps",
        )
        return student_taps, teacher_taps, regressors

    # -- Keras API ---------------------------------------------------------------

    def call(self, inputs, training=None):
        """The student's output: ``predict`` and ``distiller(x)`` run the student."""
        return self.student(inputs, training=training)

    def compile(self, optimizer="rmsprop", metrics=None, teacher_optimizer=None, **kwargs):
        """``Model.compile`` without ``loss`` (the distiller defines it).

        Args:
            optimizer: the student's optimizer (instance or name), default
                ``"rmsprop"``.
            metrics: metrics of the student's output against the labels.
            teacher_optimizer: the teacher's optimizer in QKD's co-studying phase;
                None (default) copies the student's optimizer configuration.
            **kwargs: other ``Model.compile`` arguments.

        Raises:
            ValueError: a ``loss`` was given.
        """
        if kwargs.get("loss") is not None:
            raise ValueError(
                "Distiller.compile: `loss` is not accepted (got "
                f"{kwargs['loss']!r}); the distiller's loss is set by temperature, alpha, "
                "student_outputs and the feature arguments"
            )
        kwargs.pop("loss", None)
        super().compile(optimizer=optimizer, metrics=metrics, **kwargs)
        with self.distribute_strategy.scope():
            if teacher_optimizer is None:
                teacher_optimizer = type(self.optimizer).from_config(self.optimizer.get_config())
            self.teacher_optimizer = tf.keras.optimizers.get(teacher_optimizer)

    @property
    def phase(self) -> str:
        """QKD phase: ``"self_studying"``, ``"co_studying"`` or ``"tutoring"`` (plain KD)."""
        return self._phase

    @phase.setter
    def phase(self, value: str):
        check_choice("Distiller", "phase", value, PHASES)
        if value == CO_STUDYING and not self.teacher.trainable_variables:
            raise ValueError(
                "Distiller: the co_studying phase trains the teacher, but it has no "
                "trainable weights (teacher.trainable is False?)"
            )
        if value == self._phase:
            return
        self._phase = value
        # The phase decides what the step computes (which model trains): trace anew.
        if self.train_function is not None:
            self.make_train_function(force=True)
        self.test_function = None

    def save(self, filepath, *args, **kwargs):
        """Save the student alone (a plain Keras model that reloads and converts).

        ``save_weights`` still saves the whole distiller (teacher, regressors), for
        resuming training.
        """
        return self.student.save(filepath, *args, **kwargs)

    # -- loss --------------------------------------------------------------------

    def _average(self, per_example, sample_weight):
        """Per-replica (sample-weighted) mean over this replica's examples."""
        return tf.nn.compute_average_loss(
            per_example, sample_weight=sample_weight, global_batch_size=tf.shape(per_example)[0]
        )

    def _batch_losses(self, x, y, sample_weight, training: bool) -> _Losses:
        replicas = self.distribute_strategy.num_replicas_in_sync
        student_outputs = tf.nest.flatten(self._student_taps(x, training=training))
        student_output = student_outputs[0]
        student_logits = tf.cast(to_logits(student_output, self.student_outputs), tf.float32)
        hard = cross_entropy(y, student_logits)
        report = {"student_loss": self._average(hard, sample_weight)}
        per_example = hard
        teacher_scaled = None
        if self._phase != SELF_STUDYING:
            teacher_training = training and self._phase == CO_STUDYING
            teacher_outputs = tf.nest.flatten(self._teacher_taps(x, training=teacher_training))
            teacher_logits = tf.cast(
                to_logits(teacher_outputs[0], self.teacher_outputs), tf.float32
            )
            t_squared = self.temperature**2
            soft = t_squared * kd_divergence(
                tf.stop_gradient(teacher_logits), student_logits, self.temperature
            )
            report["distillation_loss"] = self._average(soft, sample_weight)
            per_example = self.alpha * soft + (1.0 - self.alpha) * hard
            if self.feature_pairs:
                features = self._feature_losses(student_outputs[1:], teacher_outputs[1:])
                report["feature_loss"] = self._average(features, sample_weight)
                per_example = per_example + self.feature_weight * features
            if teacher_training:
                teacher_soft = t_squared * kd_divergence(
                    tf.stop_gradient(student_logits), teacher_logits, self.temperature
                )
                teacher_hard = cross_entropy(y, teacher_logits)
                teacher_total = self._average(
                    self.alpha * teacher_soft + (1.0 - self.alpha) * teacher_hard, sample_weight
                )
                if self.teacher.losses:
                    teacher_total += tf.add_n(self.teacher.losses)
                report["teacher_loss"] = teacher_total
                teacher_scaled = teacher_total / replicas
        total = self._average(per_example, sample_weight)
        regularization = self.student.losses + [l for r in self.regressors for l in r.losses]
        if regularization:
            total += tf.add_n(regularization)
        report["loss"] = total
        return _Losses(total / replicas, teacher_scaled, student_output, report)

    def _feature_losses(self, student_features, teacher_features) -> tf.Tensor:
        total = 0.0
        for index, (ours, theirs) in enumerate(zip(student_features, teacher_features)):
            theirs = tf.stop_gradient(tf.cast(theirs, tf.float32))
            ours = tf.cast(ours, tf.float32)
            if self.feature_loss == "hint":
                total += hint_loss(self.regressors[index](ours), theirs)
            else:
                total += attention_loss(ours, theirs)
        return total

    def _trackers(self) -> dict:
        return {
            "loss": self.loss_tracker,
            "student_loss": self.student_loss_tracker,
            "distillation_loss": self.distillation_loss_tracker,
            "feature_loss": self.feature_loss_tracker,
            "teacher_loss": self.teacher_loss_tracker,
        }

    def _record(self, losses: _Losses, y, sample_weight) -> dict:
        trackers = self._trackers()
        for name, value in losses.report.items():
            trackers[name].update_state(value)
        self.compiled_metrics.update_state(y, losses.student_output, sample_weight)
        logs = {name: trackers[name].result() for name in losses.report}
        for metric in self.compiled_metrics.metrics:
            result = metric.result()
            if isinstance(result, dict):
                logs.update(result)
            else:
                logs[metric.name] = result
        return logs

    def train_step(self, data):
        """One batch: the student's (and regressors') gradient step on its loss, and
        the teacher's on its own loss in the co-studying phase; returns the logs."""
        x, y, sample_weight = tf.keras.utils.unpack_x_y_sample_weight(data)
        student_variables = self.student.trainable_variables + [
            v for r in self.regressors for v in r.trainable_variables
        ]
        teacher_variables = self.teacher.trainable_variables if self._phase == CO_STUDYING else []
        with tf.GradientTape() as tape:
            losses = self._batch_losses(x, y, sample_weight, training=True)
            # Each side's loss sees the other's output through stop_gradient, so one
            # gradient of the sum gives both sides their own gradients.
            objective = losses.student_scaled
            if losses.teacher_scaled is not None:
                objective += losses.teacher_scaled
        gradients = tape.gradient(objective, student_variables + teacher_variables)
        count = len(student_variables)
        self.optimizer.apply_gradients(zip(gradients[:count], student_variables))
        if teacher_variables:
            self.teacher_optimizer.apply_gradients(zip(gradients[count:], teacher_variables))
        return self._record(losses, y, sample_weight)

    def test_step(self, data):
        """The losses and metrics of one batch, without training."""
        x, y, sample_weight = tf.keras.utils.unpack_x_y_sample_weight(data)
        losses = self._batch_losses(x, y, sample_weight, training=False)
        return self._record(losses, y, sample_weight)


class QKDSchedule(tf.keras.callbacks.Callback):
    """QKD's three phases, by epoch, for a ``Distiller``.

    Epochs ``[0, self_studying_epochs)``: self-studying (the student alone, on the
    labels, to settle its quantizers); the next ``co_studying_epochs``: co-studying
    (teacher and student train together); the rest: tutoring (teacher frozen, KD).
    The phase is a function of the epoch index, so a run resumed by
    ``BackupAndRestore`` re-enters the right phase; the teacher's weights changed in
    co-studying are saved with the distiller's weights.

    Arguments:
        self_studying_epochs: int >= 0.
        co_studying_epochs: int >= 0.

    Raises:
        ValueError: a negative or non-integer count; at the beginning of ``fit``, a
            model that is not a ``Distiller``.

    Example::

        distiller.fit(x, y, epochs=10, callbacks=[QKDSchedule(2, 3)])
        # epochs 0-1 self-studying, 2-4 co-studying, 5-9 tutoring
    """

    def __init__(self, self_studying_epochs: int, co_studying_epochs: int):
        super().__init__()
        for name, value in (
            ("self_studying_epochs", self_studying_epochs),
            ("co_studying_epochs", co_studying_epochs),
        ):
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
                raise ValueError(f"QKDSchedule: `{name}` must be an integer >= 0, got {value!r}")
        self.self_studying_epochs = int(self_studying_epochs)
        self.co_studying_epochs = int(co_studying_epochs)

    def phase_at(self, epoch: int) -> str:
        """The phase of epoch index ``epoch`` (one of ``PHASES``)."""
        if epoch < self.self_studying_epochs:
            return SELF_STUDYING
        if epoch < self.self_studying_epochs + self.co_studying_epochs:
            return CO_STUDYING
        return TUTORING

    def on_train_begin(self, logs=None):
        """Check that the model is a ``Distiller``."""
        if not isinstance(self.model, Distiller):
            raise ValueError(
                f"QKDSchedule: the model must be a tfq_plus.distillation.Distiller, got "
                f"{type(self.model).__name__}"
            )

    def on_epoch_begin(self, epoch, logs=None):
        """Set the distiller's ``phase`` for ``epoch``."""
        self.model.phase = self.phase_at(epoch)

    def on_epoch_end(self, epoch, logs=None):
        """Log ``qkd_phase``: the phase's index in ``PHASES`` (0, 1 or 2)."""
        if logs is not None:
            logs["qkd_phase"] = PHASES.index(self.phase_at(epoch))
