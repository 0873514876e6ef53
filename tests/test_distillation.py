"""Knowledge distillation (tfq_plus.distillation): Hinton KD, hints, attention, QKD."""

import larq as lq
import numpy as np
import pytest
import tensorflow as tf

import tfq_plus
from tfq_plus import distillation
from tfq_plus import quantizers as tq
from tfq_plus.distillation import Distiller, QKDSchedule

CLASSES = 10


@pytest.fixture(scope="module")
def digits():
    return tfq_plus.datasets.load("digits")


_MIRRORED = {}


def _mirrored(devices):
    """One MirroredStrategy per process, reducing through one device.

    Every MirroredStrategy object numbers its collective ops from the same keys and
    TensorFlow caches them per process, so a second strategy object whose gradients
    have other shapes fails with "Shape mismatch in the collective instance 100"
    (the other test modules avoid collectives the same way).
    """
    key = tuple(devices)
    if key not in _MIRRORED:
        _MIRRORED[key] = tf.distribute.MirroredStrategy(
            devices, cross_device_ops=tf.distribute.ReductionToOneDevice()
        )
    return _MIRRORED[key]


# -- numpy references, written from the papers' formulas --------------------------


def np_log_softmax(z):
    z = np.asarray(z, np.float64)
    shifted = z - z.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def np_hinton(labels, student_logits, teacher_logits, temperature, alpha):
    """Per example: alpha T^2 KL(softmax(t/T) || softmax(s/T)) + (1-alpha) CE(y, s)."""
    log_p_t = np_log_softmax(teacher_logits / temperature)
    log_p_s = np_log_softmax(student_logits / temperature)
    kl = np.sum(np.exp(log_p_t) * (log_p_t - log_p_s), axis=-1)
    ce = -np_log_softmax(student_logits)[np.arange(len(labels)), labels]
    soft = temperature**2 * kl
    return alpha * soft + (1 - alpha) * ce, ce, soft


def np_softmax(z):
    return np.exp(np_log_softmax(z))


# -- fixed-logit models -------------------------------------------------------------


def _slice_model(start, name, head=None):
    """Input (20,) -> columns [start, start+10): fixed logits, no weights."""
    inputs = tf.keras.Input((2 * CLASSES,))
    columns = tf.keras.layers.Lambda(lambda v: v[:, start : start + CLASSES], name=f"{name}_slice")
    outputs = columns(inputs)
    if head is not None:
        outputs = head(outputs)
    return tf.keras.Model(inputs, outputs, name=name)


def _fixed_logits(seed=0, count=64):
    rng = np.random.default_rng(seed)
    x = (3.0 * rng.standard_normal((count, 2 * CLASSES))).astype(np.float32)
    y = rng.integers(0, CLASSES, count)
    return x, y


def _evaluate(distiller, x, y, **kwargs):
    distiller.compile(optimizer="sgd", metrics=["accuracy"])
    return distiller.evaluate(x, y, batch_size=16, verbose=0, return_dict=True, **kwargs)


def _batch_means(per_example, batch=16):
    return float(np.mean(per_example.reshape(-1, batch).mean(axis=1)))


@pytest.mark.parametrize("temperature,alpha", [(1.0, 0.5), (4.0, 0.9), (8.0, 1.0)])
def test_kd_loss_equals_numpy_on_fixed_logits(temperature, alpha):
    x, y = _fixed_logits()
    distiller = Distiller(
        _slice_model(0, "student"), _slice_model(CLASSES, "teacher"),
        temperature=temperature, alpha=alpha,
    )
    assert distiller.student_outputs == distiller.teacher_outputs == "logits"
    logs = _evaluate(distiller, x, y)
    total, ce, soft = np_hinton(y, x[:, :CLASSES], x[:, CLASSES:], temperature, alpha)
    assert logs["loss"] == pytest.approx(_batch_means(total), rel=1e-5)
    assert logs["student_loss"] == pytest.approx(_batch_means(ce), rel=1e-5)
    assert logs["distillation_loss"] == pytest.approx(_batch_means(soft), rel=1e-5)
    accuracy = np.mean(np.argmax(x[:, :CLASSES], axis=1) == y)
    assert logs["accuracy"] == pytest.approx(accuracy)
    # One-hot labels give the same loss.
    onehot = np.eye(CLASSES, dtype=np.float32)[y]
    assert _evaluate(distiller, x, onehot)["loss"] == pytest.approx(logs["loss"], rel=1e-6)


def test_kd_loss_with_sample_weights():
    x, y = _fixed_logits(seed=1)
    weights = np.random.default_rng(2).uniform(0.0, 2.0, len(y)).astype(np.float32)
    distiller = Distiller(
        _slice_model(0, "s"), _slice_model(CLASSES, "t"), temperature=3.0, alpha=0.7
    )
    logs = _evaluate(distiller, x, y, sample_weight=weights)
    total, _, _ = np_hinton(y, x[:, :CLASSES], x[:, CLASSES:], 3.0, 0.7)
    # Keras' reduction: sum(w * loss) / batch size, per batch.
    assert logs["loss"] == pytest.approx(_batch_means(weights * total), rel=1e-5)


def test_probability_outputs_are_converted_to_logits():
    """Softmax outputs give the exact logits' loss (Keras' recorded logits, or the
    graph's Softmax op); other probabilities use log(max(p, 1e-7))."""
    x, y = _fixed_logits(seed=3)
    student = _slice_model(0, "student", tf.keras.layers.Activation("softmax"))
    teacher = _slice_model(CLASSES, "teacher", tf.keras.layers.Lambda(tf.nn.softmax))
    distiller = Distiller(
        student, teacher, temperature=4.0, alpha=0.8, teacher_outputs="probabilities"
    )
    assert distiller.student_outputs == "probabilities"
    total, _, _ = np_hinton(y, x[:, :CLASSES], x[:, CLASSES:], 4.0, 0.8)
    assert _evaluate(distiller, x, y)["loss"] == pytest.approx(_batch_means(total), rel=1e-5)

    def explicit_softmax(v):
        e = tf.exp(v - tf.reduce_max(v, axis=-1, keepdims=True))
        return e / tf.reduce_sum(e, axis=-1, keepdims=True)

    teacher = _slice_model(CLASSES, "teacher2", tf.keras.layers.Lambda(explicit_softmax))
    distiller = Distiller(
        _slice_model(0, "student2"), teacher, temperature=4.0, alpha=0.8,
        teacher_outputs="probabilities",
    )
    p_t = np_softmax(x[:, CLASSES:])
    assert p_t.min() < 1e-7  # the floor matters for these logits
    floored_logits = np.log(np.maximum(p_t, 1e-7))
    total, _, _ = np_hinton(y, x[:, :CLASSES], floored_logits, 4.0, 0.8)
    assert _evaluate(distiller, x, y)["loss"] == pytest.approx(_batch_means(total), rel=1e-4)


def test_output_form_detection():
    def sequential(*layers):
        return tf.keras.Sequential([tf.keras.Input((4,)), *layers])

    dense_softmax = sequential(tf.keras.layers.Dense(3, activation="softmax"))
    softmax_layer = sequential(tf.keras.layers.Dense(3), tf.keras.layers.Softmax())
    logits = sequential(lq.layers.QuantDense(3, kernel_quantizer="ste_sign"))
    assert distillation.output_form(dense_softmax) == "probabilities"
    assert distillation.output_form(softmax_layer) == "probabilities"
    assert distillation.output_form(logits) == "logits"


def test_feature_losses_equal_numpy():
    rng = np.random.default_rng(4)
    student = rng.standard_normal((3, 5, 5, 4)).astype(np.float32)
    teacher = rng.standard_normal((3, 5, 5, 6)).astype(np.float32)

    def np_attention(a):
        q = np.sum(a.astype(np.float64) ** 2, axis=-1).reshape(len(a), -1)
        return q / np.linalg.norm(q, axis=1, keepdims=True)

    expected = 0.5 * np.linalg.norm(np_attention(student) - np_attention(teacher), axis=1)
    np.testing.assert_allclose(distillation.attention_loss(student, teacher), expected, rtol=1e-5)
    regressed = rng.standard_normal((3, 5, 5, 6)).astype(np.float32)
    expected = 0.5 * np.mean((teacher - regressed).reshape(3, -1).astype(np.float64) ** 2, axis=1)
    np.testing.assert_allclose(distillation.hint_loss(regressed, teacher), expected, rtol=1e-5)
    logits_s, logits_t = rng.standard_normal((2, 7, CLASSES))
    _, _, soft = np_hinton(np.zeros(7, int), logits_s, logits_t, 3.0, 1.0)
    np.testing.assert_allclose(
        9.0 * distillation.kd_divergence(logits_t, logits_s, 3.0), soft, rtol=1e-5
    )


# -- training ---------------------------------------------------------------------


def _teacher(name="teacher"):
    inputs = tf.keras.Input((8, 8, 1))
    x = tf.keras.layers.Conv2D(16, 3, padding="same", name="t_conv")(inputs)
    x = tf.keras.layers.BatchNormalization(momentum=0.9)(x)
    x = tf.keras.layers.Activation("relu")(x)
    x = tf.keras.layers.MaxPool2D(2)(x)
    x = tf.keras.layers.Flatten()(x)
    x = tf.keras.layers.Dense(32, activation="relu", name="t_hidden")(x)
    return tf.keras.Model(inputs, tf.keras.layers.Dense(CLASSES, name="t_logits")(x), name=name)


def _quantized_student(name="student"):
    """4-bit power-of-two kernels, 4-bit PACT activations, softmax output."""
    inputs = tf.keras.Input((8, 8, 1))
    x = tf.keras.layers.Conv2D(8, 3, padding="same", name="s_stem")(inputs)
    x = tf.keras.layers.BatchNormalization(momentum=0.9)(x)
    x = lq.layers.QuantConv2D(
        8, 3, padding="same", input_quantizer=tq.PACT(bits=4, alpha_init=3.0),
        kernel_quantizer=tq.PowerOfTwo(bits=4), name="s_conv",
    )(x)
    x = tf.keras.layers.BatchNormalization(momentum=0.9)(x)
    x = tf.keras.layers.MaxPool2D(2)(x)
    x = tf.keras.layers.Flatten()(x)
    x = lq.layers.QuantDense(
        CLASSES, input_quantizer=tq.PACT(bits=4, alpha_init=3.0),
        kernel_quantizer=tq.PowerOfTwo(bits=4), name="s_logits",
    )(x)
    outputs = tf.keras.layers.Activation("softmax")(x)
    return tf.keras.Model(inputs, outputs, name=name)


@pytest.fixture(scope="module")
def trained_teacher(digits):
    tf.keras.utils.set_random_seed(5)
    teacher = _teacher()
    teacher.compile(
        optimizer=tf.keras.optimizers.Adam(3e-3),
        loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    teacher.fit(digits.x_train, digits.y_train, epochs=4, batch_size=64, verbose=0)
    accuracy = teacher.evaluate(digits.x_test, digits.y_test, verbose=0)[1]
    assert accuracy > 0.9
    return teacher


def test_distiller_trains_evaluates_predicts_saves_and_reloads(digits, trained_teacher, tmp_path):
    tf.keras.utils.set_random_seed(6)
    teacher_weights = [w.copy() for w in trained_teacher.get_weights()]
    student = _quantized_student()
    distiller = Distiller(student, trained_teacher, temperature=4.0, alpha=0.7)
    assert (distiller.student_outputs, distiller.teacher_outputs) == ("probabilities", "logits")
    distiller.compile(optimizer=tf.keras.optimizers.Adam(3e-3), metrics=["accuracy"])
    history = distiller.fit(digits.x_train, digits.y_train, epochs=4, batch_size=64, verbose=0)
    losses = history.history["loss"]
    assert losses[-1] < losses[0]
    assert set(history.history) >= {"loss", "student_loss", "distillation_loss", "accuracy"}
    # The teacher is only read.
    for before, after in zip(teacher_weights, trained_teacher.get_weights()):
        np.testing.assert_array_equal(before, after)

    logs = distiller.evaluate(digits.x_test, digits.y_test, verbose=0, return_dict=True)
    assert logs["accuracy"] > 0.8
    predicted = distiller.predict(digits.x_test, verbose=0)
    np.testing.assert_array_equal(predicted, student.predict(digits.x_test, verbose=0))
    assert np.mean(np.argmax(predicted, axis=1) == digits.y_test) == pytest.approx(logs["accuracy"])

    path = str(tmp_path / "student.keras")
    distiller.save(path)
    reloaded = tf.keras.models.load_model(path)
    assert not isinstance(reloaded, Distiller)
    assert [l.name for l in reloaded.layers] == [l.name for l in student.layers]
    assert len(reloaded.weights) == len(student.weights)
    np.testing.assert_array_equal(reloaded.predict(digits.x_test, verbose=0), predicted)


@pytest.mark.parametrize("feature_loss", ["hint", "attention"])
def test_feature_matching(digits, trained_teacher, feature_loss, tmp_path):
    tf.keras.utils.set_random_seed(7)
    student = _quantized_student()
    distiller = Distiller(
        student, trained_teacher, feature_pairs=[("s_conv", "t_conv")],
        feature_loss=feature_loss, feature_weight=2.0,
    )
    distiller.compile(optimizer=tf.keras.optimizers.Adam(3e-3), metrics=["accuracy"])
    regressor_before = [w.numpy().copy() for r in distiller.regressors for w in r.weights]
    history = distiller.fit(
        digits.x_train[:384], digits.y_train[:384], epochs=2, batch_size=64, verbose=0
    )
    feature = history.history["feature_loss"]
    assert np.all(np.isfinite(feature)) and feature[-1] < feature[0]
    if feature_loss == "hint":
        (regressor,) = distiller.regressors
        assert regressor.kernel.shape == (1, 1, 8, 16)  # student channels -> teacher channels
        assert not np.array_equal(regressor_before[0], regressor.kernel.numpy())
    else:
        assert distiller.regressors == []
    path = str(tmp_path / "student.keras")
    distiller.save(path)
    reloaded = tf.keras.models.load_model(path)
    assert len(reloaded.weights) == len(student.weights)  # no regressor, no teacher


def _dense(units, name, seed):
    inputs = tf.keras.Input((2 * CLASSES,))
    layer = tf.keras.layers.Dense(
        units, name=f"{name}_dense", kernel_initializer=tf.keras.initializers.GlorotUniform(seed)
    )
    return tf.keras.Model(inputs, layer(inputs), name=name)


class _Recorder(tf.keras.callbacks.Callback):
    def __init__(self, distiller):
        super().__init__()
        self.distiller = distiller
        self.teacher = [distiller.teacher.get_weights()]
        self.student = [distiller.student.get_weights()]
        self.logs = []
        self.phases = []

    def on_epoch_end(self, epoch, logs=None):
        self.teacher.append(self.distiller.teacher.get_weights())
        self.student.append(self.distiller.student.get_weights())
        self.logs.append(dict(logs))
        self.phases.append(self.distiller.phase)


def _changed(before, after):
    return any(not np.array_equal(a, b) for a, b in zip(before, after))


def test_qkd_schedule_phases():
    x, y = _fixed_logits(seed=8, count=128)
    distiller = Distiller(_dense(CLASSES, "student", 1), _dense(CLASSES, "teacher", 2), alpha=0.5)
    distiller.compile(optimizer=tf.keras.optimizers.SGD(0.05))
    recorder = _Recorder(distiller)
    distiller.fit(
        x, y, epochs=4, batch_size=32, verbose=0, callbacks=[QKDSchedule(1, 2), recorder]
    )
    assert recorder.phases == ["self_studying", "co_studying", "co_studying", "tutoring"]
    assert [log["qkd_phase"] for log in recorder.logs] == [0, 1, 1, 2]
    # Self-studying: labels only, teacher untouched.
    assert "distillation_loss" not in recorder.logs[0]
    assert recorder.logs[0]["loss"] == pytest.approx(recorder.logs[0]["student_loss"])
    assert not _changed(recorder.teacher[0], recorder.teacher[1])
    # Co-studying: the teacher trains, with its own optimizer.
    assert "teacher_loss" in recorder.logs[1] and "teacher_loss" in recorder.logs[2]
    assert _changed(recorder.teacher[1], recorder.teacher[2])
    assert _changed(recorder.teacher[2], recorder.teacher[3])
    assert distiller.teacher_optimizer is not distiller.optimizer
    # Tutoring: the teacher is frozen again; the student trains in every phase.
    assert "teacher_loss" not in recorder.logs[3]
    assert not _changed(recorder.teacher[3], recorder.teacher[4])
    for epoch in range(4):
        assert _changed(recorder.student[epoch], recorder.student[epoch + 1])


def _one_epoch(strategy, phase, x, y, initial):
    """One epoch of SGD on a Dense student (and teacher in co-studying)."""
    with strategy.scope():
        distiller = Distiller(
            _dense(CLASSES, "student", 1), _dense(CLASSES, "teacher", 2), temperature=2.0, alpha=0.6
        )
        distiller.student.set_weights(initial[0])
        distiller.teacher.set_weights(initial[1])
        distiller.phase = phase
        distiller.compile(optimizer=tf.keras.optimizers.SGD(0.5), metrics=["accuracy"])
    logs = distiller.fit(x, y, epochs=1, batch_size=32, verbose=0, shuffle=False).history
    return distiller, logs


@pytest.mark.parametrize("phase", ["tutoring", "co_studying"])
def test_mirrored_strategy_matches_single_device(phase, logical_cpus):
    """Two replicas see half a batch each; the summed gradients must equal one
    device's, so the trained weights (student and co-studying teacher) agree."""
    x, y = _fixed_logits(seed=9, count=96)
    initial = (_dense(CLASSES, "a", 3).get_weights(), _dense(CLASSES, "b", 4).get_weights())
    single, single_logs = _one_epoch(tf.distribute.get_strategy(), phase, x, y, initial)
    mirrored_strategy = _mirrored(logical_cpus)
    mirrored, mirrored_logs = _one_epoch(mirrored_strategy, phase, x, y, initial)
    assert mirrored.distribute_strategy.num_replicas_in_sync == 2
    for a, b in zip(single.student.get_weights(), mirrored.student.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    for a, b in zip(single.teacher.get_weights(), mirrored.teacher.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    if phase == "co_studying":
        assert _changed(initial[1], mirrored.teacher.get_weights())
    else:
        assert not _changed(initial[1], mirrored.teacher.get_weights())
    for key in single_logs:
        assert mirrored_logs[key][0] == pytest.approx(single_logs[key][0], rel=1e-5)
    # The reported loss is the numpy loss under the strategy too.
    if phase == "tutoring":
        with mirrored_strategy.scope():
            fixed = Distiller(
                _slice_model(0, "s"), _slice_model(CLASSES, "t"), temperature=4.0, alpha=0.9
            )
        total, _, _ = np_hinton(y, x[:, :CLASSES], x[:, CLASSES:], 4.0, 0.9)
        assert _evaluate(fixed, x, y)["loss"] == pytest.approx(_batch_means(total), rel=1e-5)


def test_distiller_under_mirrored_strategy_trains_saves_and_reloads(digits, logical_cpus, tmp_path):
    tf.keras.utils.set_random_seed(10)
    strategy = _mirrored(logical_cpus)
    with strategy.scope():
        student = _quantized_student()
        distiller = Distiller(
            student, _teacher(), temperature=3.0, alpha=0.5, feature_pairs=[("s_conv", "t_conv")],
            feature_loss="attention",
        )
        distiller.compile(optimizer=tf.keras.optimizers.Adam(3e-3), metrics=["accuracy"])
    history = distiller.fit(
        digits.x_train[:512], digits.y_train[:512], epochs=1, batch_size=64, verbose=0
    )
    logged = {"loss", "student_loss", "distillation_loss", "feature_loss", "accuracy"}
    assert set(history.history) == logged
    assert np.all(np.isfinite(list(history.history.values())))
    path = str(tmp_path / "student.keras")
    distiller.save(path)
    reloaded = tf.keras.models.load_model(path)
    # Under the strategy each replica normalises with its own copy of the
    # BatchNormalization moving statistics (ON_READ variables); saved are their
    # means, which a single-device copy of the student uses too.
    single = _quantized_student()
    single.set_weights(student.get_weights())
    np.testing.assert_array_equal(
        reloaded.predict(digits.x_test, verbose=0), single.predict(digits.x_test, verbose=0)
    )


# -- bad input ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs,message",
    [
        (dict(temperature=0.0), r"`temperature` must be a finite number > 0, got 0.0"),
        (dict(alpha=1.5), r"`alpha` must be a number in \[0, 1\], got 1.5"),
        (
            dict(student_outputs="softmax"),
            r"`student_outputs` must be one of \['auto', 'logits', 'probabilities'\]",
        ),
        (dict(feature_loss="l2"), r"`feature_loss` must be one of \['hint', 'attention'\]"),
        (dict(feature_weight=-1), r"`feature_weight` must be a finite number > 0"),
        (dict(feature_pairs=[("s_conv", "nope")]), r"teacher layer 'nope'"),
        (dict(feature_pairs=[("s_conv", "t_hidden")]), r"features must both be NHWC"),
        (
            dict(feature_pairs=[("s_logits", "t_hidden")], feature_loss="attention"),
            r"attention transfer needs NHWC",
        ),
    ],
)
def test_distiller_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Distiller(_quantized_student(), _teacher(), **kwargs)


def test_distiller_bad_use():
    with pytest.raises(ValueError, match=r"the student predicts 10 classes and the teacher 3"):
        Distiller(_dense(CLASSES, "s", 0), _dense(3, "t", 0))
    distiller = Distiller(_dense(CLASSES, "s", 0), _dense(CLASSES, "t", 0))
    with pytest.raises(ValueError, match=r"Distiller.compile: `loss` is not accepted"):
        distiller.compile(optimizer="sgd", loss="mse")
    phases = r"`phase` must be one of \['self_studying', 'co_studying', 'tutoring'\]"
    with pytest.raises(ValueError, match=phases):
        distiller.phase = "teaching"
    distiller.teacher.trainable = False
    with pytest.raises(ValueError, match=r"co_studying phase trains the teacher, but it has no"):
        distiller.phase = "co_studying"
    with pytest.raises(ValueError, match=r"`co_studying_epochs` must be an integer >= 0, got -1"):
        QKDSchedule(1, -1)
    model = _dense(CLASSES, "plain", 0)
    model.compile(optimizer="sgd", loss="mse")
    with pytest.raises(ValueError, match=r"QKDSchedule: the model must be a tfq_plus.distillation"):
        model.fit(*_fixed_logits(count=16), epochs=1, verbose=0, callbacks=[QKDSchedule(1, 1)])
