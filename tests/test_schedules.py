"""Quantization schedules: ``QuantizationDelay`` / ``DelayedQuantizer`` and
``BitWidthSchedule`` / ``ProgressiveQuantizer``.

The forward pass is checked at every training step against numpy references
written from the papers' formulas (PACT's Eq. 1-2, INQ's power-of-two rounding as
``PowerOfTwo`` documents it, LSQ's Eq. 1-2), through ``model.predict_on_batch``, i.e.
through the replicas under ``tf.distribute.MirroredStrategy``. The learning rate is
0 in those tests, so the latent weights are the known ones; state hand-over (PACT's
alpha, LSQ's re-initialisation) is checked on values set by the test. Resuming with
``BackupAndRestore`` after a kill is compared with an uninterrupted run.
"""

import larq as lq
import numpy as np
import pytest
import tensorflow as tf

from tfq_plus import quantizers as tq
from tfq_plus.callbacks import (
    BitWidthSchedule,
    DelayedQuantizer,
    ProgressiveQuantizer,
    QuantizationDelay,
)

FEATURES = 6
UNITS = 4


# --------------------------------------------------------------------------
# numpy references


def pact_reference(x, alpha, bits):
    """PACT (Choi et al., Eq. 1-2) in float32: clip to [0, alpha], then
    round(y * (2^k - 1) / alpha) * alpha / (2^k - 1), round half to even."""
    alpha = np.float32(alpha)
    levels = np.float32(2**bits - 1)
    y = np.clip(x.astype(np.float32), np.float32(0), alpha)
    return np.round(y * (levels / alpha)) * (alpha / levels)


def po2_reference(w, bits):
    """PowerOfTwo per tensor: the nearest of {0, 2^n2, ..., 2^n1} to |w| (ties to the
    larger), n1 = floor(log2(4 max|w| / 3)), 2^(b-1) - 1 exponents."""
    w = np.asarray(w, np.float64)
    n1 = np.floor(np.log2(4.0 * np.abs(w).max() / 3.0))
    n2 = n1 - (2 ** (bits - 1) - 1) + 1
    levels = np.concatenate([2.0 ** np.arange(n1, n2 - 1, -1), [0.0]])  # larger first
    nearest = levels[np.argmin(np.abs(np.abs(w)[..., None] - levels), axis=-1)]
    return (np.sign(w) * nearest).astype(np.float32)


def lsq_reference(v, step, bits):
    """LSQ, signed (Esser et al., Eq. 1-2): round(clip(v / s, -Q_N, Q_P)) * s."""
    q_n, q_p = 2 ** (bits - 1), 2 ** (bits - 1) - 1
    step = np.float32(step)
    return np.round(np.clip(v.astype(np.float32) / step, -q_n, q_p)) * step


# --------------------------------------------------------------------------
# helpers


_MIRRORED = {}


def make_strategy(name, devices):
    """The default strategy, or one MirroredStrategy over the two logical CPUs.

    Reduction goes through one device instead of collective ops: every
    MirroredStrategy object numbers its collective ops from the same keys, and
    TensorFlow caches them per process, so a second strategy object whose model
    has other gradient shapes (in this module or another test module) fails with
    "Shape mismatch in the collective instance 100".
    """
    if name != "mirrored":
        return tf.distribute.get_strategy()
    key = tuple(devices)
    if key not in _MIRRORED:
        _MIRRORED[key] = tf.distribute.MirroredStrategy(
            devices, cross_device_ops=tf.distribute.ReductionToOneDevice()
        )
    return _MIRRORED[key]


def data(samples, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(0.5, 1.0, size=(samples, FEATURES)).astype(np.float32)
    y = rng.normal(size=(samples, UNITS)).astype(np.float32)
    return x, y


PROBE = np.random.default_rng(42).normal(0.5, 1.2, size=(4, FEATURES)).astype(np.float32)


def dense_model(strategy, input_quantizer, kernel_quantizer, learning_rate=0.0):
    with strategy.scope():
        layer = lq.layers.QuantDense(
            UNITS,
            input_quantizer=input_quantizer,
            kernel_quantizer=kernel_quantizer,
            name="dense",
        )
        model = tf.keras.Sequential([tf.keras.Input((FEATURES,)), layer])
        model.compile(tf.keras.optimizers.SGD(learning_rate), "mse")
    return model, layer


class Probe(tf.keras.callbacks.Callback):
    """Before every training batch (after the schedules ran): the step, the epoch,
    the model's output on PROBE as every replica computes it, the latent weights."""

    def __init__(self, records, extra=None):
        super().__init__()
        self.records = records
        self.extra = extra  # optional: model -> dict of more values to record
        self.epoch = None
        self._forward = None

    def on_train_begin(self, logs=None):
        strategy = self.model.distribute_strategy
        model = self.model

        @tf.function
        def forward():
            return strategy.run(lambda: model(tf.constant(PROBE), training=False))

        self._forward = lambda: [
            np.asarray(t) for t in strategy.experimental_local_results(forward())
        ]

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_begin(self, batch, logs=None):
        layer = self.model.get_layer("dense")
        self.records.append(
            dict(
                step=int(self.model.optimizer.iterations.numpy()),
                epoch=self.epoch,
                outputs=self._forward(),  # one per replica
                kernel=layer.kernel.latent_variable.numpy(),
                bias=layer.bias.numpy(),
                **(self.extra(self.model) if self.extra else {}),
            )
        )


def assert_outputs(record, expected, replicas):
    assert len(record["outputs"]) == replicas
    for output in record["outputs"]:
        np.testing.assert_allclose(output, expected, rtol=1e-5, atol=1e-5)


# --------------------------------------------------------------------------
# Both schedules in one training run (per strategy): a PACT input quantizer with
# stages 8/4/2 bits, a kernel that is float for 5 steps and then PowerOfTwo with
# stages 8/4/2 bits (a ProgressiveQuantizer inside a DelayedQuantizer).

DELAY_STEPS = 5
BITS_BY_EPOCH = {0: 8, 1: 4, 2: 2}
EPOCHS, STEPS_PER_EPOCH, BATCH = 3, 4, 8


def scheduled_model(strategy):
    model, layer = dense_model(
        strategy,
        ProgressiveQuantizer(tq.PACT(alpha_init=2.0), bits=(8, 4, 2)),
        DelayedQuantizer(ProgressiveQuantizer(tq.PowerOfTwo(), bits=(8, 4, 2))),
        learning_rate=0.05,
    )
    callbacks = [QuantizationDelay(steps=DELAY_STEPS), BitWidthSchedule(BITS_BY_EPOCH)]
    return model, layer, callbacks


def alphas(model):
    stages = model.get_layer("dense").input_quantizer.stages
    return dict(alphas=[float(stage.alpha.numpy()) for stage in stages])


def fit_scheduled(model, callbacks):
    x, y = data(STEPS_PER_EPOCH * BATCH)
    model.fit(x, y, batch_size=BATCH, epochs=EPOCHS, shuffle=False, verbose=0, callbacks=callbacks)


_RUNS = {}


def scheduled_run(strategy_name, devices):
    """The uninterrupted run, trained once per strategy and shared by the tests."""
    if strategy_name not in _RUNS:
        strategy = make_strategy(strategy_name, devices)
        tf.keras.utils.set_random_seed(3)
        model, layer, callbacks = scheduled_model(strategy)
        initial = model.get_weights()
        records = []
        fit_scheduled(model, callbacks + [Probe(records, alphas)])
        _RUNS[strategy_name] = dict(
            strategy=strategy, model=model, layer=layer, initial=initial, records=records
        )
    return _RUNS[strategy_name]


@pytest.mark.parametrize("strategy_name", ["default", "mirrored"])
def test_schedules_change_the_forward_pass_at_the_stated_step(strategy_name, logical_cpus):
    run = scheduled_run(strategy_name, logical_cpus)
    records = run["records"]
    assert [r["step"] for r in records] == list(range(EPOCHS * STEPS_PER_EPOCH))
    for record in records:
        bits = BITS_BY_EPOCH[record["epoch"]]
        stage = [8, 4, 2].index(bits)
        w, b, alpha = record["kernel"], record["bias"], record["alphas"][stage]
        inputs = pact_reference(PROBE, alpha, bits)
        float_kernel = inputs @ w + b
        quantized_kernel = inputs @ po2_reference(w, bits) + b
        assert np.abs(float_kernel - quantized_kernel).max() > 1e-3  # distinguishable
        expected = quantized_kernel if record["step"] >= DELAY_STEPS else float_kernel
        assert_outputs(record, expected, run["strategy"].num_replicas_in_sync)
        for other in {8, 4, 2} - {bits}:  # and the bit-width is the scheduled one
            wrong = pact_reference(PROBE, alpha, other) @ po2_reference(w, other) + b
            assert np.abs(wrong - quantized_kernel).max() > 1e-3
    kernel = run["layer"].kernel_quantizer
    assert kernel.active and kernel.quantizer.active_stage == 2
    if strategy_name == "mirrored":
        assert [int(v.numpy()) for v in kernel.quantizer.stage.values] == [2, 2]


@pytest.mark.parametrize("strategy_name", ["default", "mirrored"])
def test_pact_alpha_carries_over_to_the_next_bit_width(strategy_name, logical_cpus):
    records = scheduled_run(strategy_name, logical_cpus)["records"]
    last_of_epoch = {r["epoch"]: r for r in records}
    first_of_epoch = {}
    for r in records:
        first_of_epoch.setdefault(r["epoch"], r)
    for epoch, stage in ((1, 1), (2, 2)):
        # The new stage starts from the alpha the previous one was trained to (the
        # previous stage, inactive since, keeps it).
        previous = first_of_epoch[epoch]["alphas"][stage - 1]
        assert first_of_epoch[epoch]["alphas"][stage] == previous
        assert last_of_epoch[epoch - 1]["alphas"][stage - 1] != 2.0  # it did train
    assert records[-1]["alphas"][2] != first_of_epoch[2]["alphas"][2]  # and trains on


class KillAt(tf.keras.callbacks.Callback):
    """Raises in the middle of an epoch, as a preempted job dies."""

    def __init__(self, epoch, batch):
        super().__init__()
        self.at, self.epoch = (epoch, batch), None

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if (self.epoch, batch) == self.at:
            raise RuntimeError("killed")


@pytest.mark.parametrize("strategy_name", ["default", "mirrored"])
def test_schedules_resume_with_backup_and_restore(strategy_name, logical_cpus, tmp_path):
    run = scheduled_run(strategy_name, logical_cpus)
    backup = str(tmp_path / "backup")

    def fresh():
        model, _, callbacks = scheduled_model(run["strategy"])
        model.set_weights(run["initial"])
        return model, [tf.keras.callbacks.BackupAndRestore(backup)] + callbacks

    killed, callbacks = fresh()
    with pytest.raises(RuntimeError, match="killed"):
        fit_scheduled(killed, callbacks + [KillAt(epoch=1, batch=2)])  # after the delay switch

    resumed, callbacks = fresh()  # as a new process would
    records = []
    fit_scheduled(resumed, callbacks + [Probe(records)])
    assert records[0]["epoch"] == 1 and records[0]["step"] == STEPS_PER_EPOCH  # resumed

    reference = run["model"]
    names = [w.name for w in reference.weights]
    assert sum("stage" in n for n in names) == 3 and sum("alpha" in n for n in names) == 3
    for name, a, b in zip(names, reference.get_weights(), resumed.get_weights()):
        assert np.array_equal(a, b), name


def test_epoch_delay_switches_at_the_epoch():
    """QuantizationDelay(epochs=N), driven by its hooks directly (no training)."""
    model, layer = dense_model(
        tf.distribute.get_strategy(), DelayedQuantizer(tq.PACT(bits=2)), None
    )
    delay = QuantizationDelay(epochs=2)
    delay.set_model(model)
    delay.on_train_begin()
    active = []
    for epoch in range(4):
        delay.on_epoch_begin(epoch)
        active.append(layer.input_quantizer.active)
    assert active == [False, False, True, True]
    immediate = QuantizationDelay(steps=0)
    layer.input_quantizer.enter_stage(0)
    immediate.set_model(model)
    immediate.on_train_begin()
    model.optimizer.iterations.assign(0)
    immediate.on_train_batch_begin(0)
    assert layer.input_quantizer.active


class ScaleKernelAtStep(tf.keras.callbacks.Callback):
    """Multiplies the latent kernel by 3 before optimizer step ``step``: a re-initialised
    LSQ step then differs from the one initialised at step 0."""

    def __init__(self, step):
        super().__init__()
        self.step = step

    def on_train_batch_begin(self, batch, logs=None):
        if int(self.model.optimizer.iterations.numpy()) == self.step:
            kernel = self.model.get_layer("dense").kernel.latent_variable
            kernel.assign(kernel * 3.0)


@pytest.mark.parametrize("strategy_name", ["default", "mirrored"])
def test_lsq_stage_is_initialised_again_when_it_becomes_active(strategy_name, logical_cpus):
    """A step-unit BitWidthSchedule on an LSQ kernel (learning rate 0)."""
    strategy = make_strategy(strategy_name, logical_cpus)
    model, layer = dense_model(
        strategy, None, ProgressiveQuantizer(tq.LSQ(signed=True), bits=(4, 2))
    )
    initial = layer.kernel.latent_variable.numpy()
    four, two = layer.kernel_quantizer.stages
    records = []
    x, y = data(32)  # 4 steps
    model.fit(
        x,
        y,
        batch_size=8,
        epochs=1,
        shuffle=False,
        verbose=0,
        callbacks=[
            BitWidthSchedule({0: 4, 2: 2}, unit="step"),
            ScaleKernelAtStep(2),
            Probe(records, lambda m: dict(steps=(four.step.numpy(), two.step.numpy()))),
        ],
    )
    # LSQ's initial step 2 mean|w| / sqrt(Q_P): the 4-bit stage from the step-0
    # kernel, the 2-bit stage again from the kernel of its first training step (3x).
    np.testing.assert_allclose(
        four.step.numpy(), 2 * np.abs(initial).mean() / np.sqrt(7), rtol=1e-6
    )
    np.testing.assert_allclose(two.step.numpy(), 2 * np.abs(3 * initial).mean() / 1.0, rtol=1e-6)
    # Records at step 3 see the re-initialised step; at step 2 (before that training
    # step) the 2-bit stage still has its step-0 initialisation.
    np.testing.assert_allclose(records[2]["steps"][1], 2 * np.abs(initial).mean(), rtol=1e-6)
    np.testing.assert_allclose(records[3]["steps"][1], two.step.numpy(), rtol=0)
    for record in records:
        bits = 4 if record["step"] < 2 else 2
        step = record["steps"][0 if bits == 4 else 1]
        expected = PROBE @ lsq_reference(record["kernel"], step, bits) + record["bias"]
        assert_outputs(record, expected, strategy.num_replicas_in_sync)


# --------------------------------------------------------------------------
# configs, saving, deploy grids, arguments


def test_config_round_trips():
    delayed = DelayedQuantizer(tq.PACT(bits=3, alpha_init=4.0))
    clone = DelayedQuantizer.from_config(delayed.get_config())
    assert clone.get_config() == delayed.get_config()
    assert isinstance(clone.quantizer, tq.PACT) and clone.quantizer.bits == 3

    progressive = ProgressiveQuantizer(tq.PowerOfTwo(per_channel=True), bits=(6, 3))
    clone = ProgressiveQuantizer.from_config(progressive.get_config())
    assert clone.get_config() == progressive.get_config()
    assert [s.bits for s in clone.stages] == [6, 3] and all(s.per_channel for s in clone.stages)
    assert clone.precision == 3


def test_saved_model_keeps_its_stage(tmp_path):
    model, layer = dense_model(
        tf.distribute.get_strategy(), None, ProgressiveQuantizer(tq.PowerOfTwo(), bits=(8, 3))
    )
    assert layer.kernel_quantizer.enter_stage(1)
    path = str(tmp_path / "model.keras")
    model.save(path)
    reloaded = tf.keras.models.load_model(path)
    assert reloaded.get_layer("dense").kernel_quantizer.active_stage == 1
    np.testing.assert_array_equal(
        reloaded.predict(PROBE, verbose=0), model.predict(PROBE, verbose=0)
    )
    np.testing.assert_allclose(
        model.predict(PROBE, verbose=0),
        PROBE @ po2_reference(layer.kernel.latent_variable.numpy(), 3) + layer.bias.numpy(),
        rtol=1e-5,
        atol=1e-6,
    )


def test_deploy_grid_is_the_active_stage():
    model, layer = dense_model(
        tf.distribute.get_strategy(),
        DelayedQuantizer("ste_sign"),
        ProgressiveQuantizer(tq.PowerOfTwo(), bits=(8, 3)),
    )
    latent = layer.kernel.latent_variable.numpy()
    assert layer.input_quantizer.deploy_grid() is None  # still float
    layer.input_quantizer.enter_stage(1)
    assert layer.input_quantizer.deploy_grid().kind == "binary"  # larq's, via the converter's table
    assert layer.kernel_quantizer.deploy_grid(latent).bits == 8
    layer.kernel_quantizer.enter_stage(1)
    grid = layer.kernel_quantizer.deploy_grid(latent)
    n1 = np.floor(np.log2(4 * np.abs(latent).max() / 3))
    assert grid.bits == 3 and grid.exponent_range == (n1 - 2, n1)


@pytest.mark.parametrize(
    "make, message",
    [
        (
            lambda: QuantizationDelay(),
            r"QuantizationDelay: give exactly one of `steps` and `epochs`",
        ),
        (lambda: QuantizationDelay(steps=3, epochs=1), r"QuantizationDelay: give exactly one of"),
        (
            lambda: QuantizationDelay(steps=-1),
            r"QuantizationDelay: `steps` must be an integer >= 0, got -1",
        ),
        (lambda: BitWidthSchedule({1: 4}), r"BitWidthSchedule: the schedule must start at 0"),
        (
            lambda: BitWidthSchedule({0: 9}),
            r"BitWidthSchedule: bit-widths must be integers from 1 to 8, got 9",
        ),
        (
            lambda: BitWidthSchedule({0: 4}, unit="batch"),
            r"BitWidthSchedule: `unit` must be one of",
        ),
        (
            lambda: ProgressiveQuantizer("ste_sign"),
            r"ProgressiveQuantizer.*`quantizer` must be a quantizer class with a `bits` argument",
        ),
        (
            lambda: ProgressiveQuantizer(tq.PACT(), bits=(4, 4)),
            r"ProgressiveQuantizer.*`bits` must be a non-empty sequence of distinct "
            r"integers, got \(4, 4\)",
        ),
        (
            lambda: ProgressiveQuantizer(tq.PowerOfTwo(), bits=(8, 1)),
            r"PowerOfTwo.*`bits` must be an integer from 2 to 8, got 1",
        ),
        (
            lambda: DelayedQuantizer(None),
            r"DelayedQuantizer.*`quantizer` must be a quantizer, got None",
        ),
    ],
)
def test_bad_arguments(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_schedule_needs_matching_quantizers():
    model, _ = dense_model(
        tf.distribute.get_strategy(), None, ProgressiveQuantizer(tq.PACT(), bits=(8, 4))
    )
    x, y = data(8)
    with pytest.raises(
        ValueError, match=r"ProgressiveQuantizer.*no stage with 2 bits; its bit-widths are \[8, 4\]"
    ):
        model.fit(x, y, verbose=0, callbacks=[BitWidthSchedule({0: 8, 1: 2})])
    with pytest.raises(ValueError, match="QuantizationDelay: the model has no DelayedQuantizer"):
        model.fit(x, y, verbose=0, callbacks=[QuantizationDelay(steps=1)])
