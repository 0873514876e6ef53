"""``QuantizationMonitor``: per-layer scalars in ``logs`` and TensorBoard event files.

A small model on scikit-learn's digits with one layer of each kind (binary kernel,
PACT input with a per-channel LSQ kernel, an INQ kernel behind a delayed PACT input,
a standalone LSQ activation quantizer, a float layer) trains for two epochs, with
and without ``tf.distribute.MirroredStrategy``. A recorder reads the variables at the
same points as the monitor; the expected scalars are computed from them with numpy
(flip ratio from the signs, LSQ's rounding for zeros of the quantized kernel, the
INQ schedule's fractions), and the event files are read back with TensorFlow's
summary iterator.
"""

import glob
import os

import larq as lq
import numpy as np
import pytest
import tensorflow as tf

import tfq_plus
from tfq_plus import quantizers as tq
from tfq_plus.callbacks import (
    DelayedQuantizer,
    INQQuantizer,
    INQSchedule,
    QuantizationDelay,
    QuantizationMonitor,
)

EPOCHS = 2
INQ_FRACTIONS = {0: 0.5, 1: 1.0}

_MIRRORED = {}


def make_strategy(name, devices):
    """The default strategy or one MirroredStrategy per module; reduction through one
    device, since collective keys of separate strategy objects collide (see
    tests/test_inq.py)."""
    if name != "mirrored":
        return tf.distribute.get_strategy()
    if "mirrored" not in _MIRRORED:
        _MIRRORED["mirrored"] = tf.distribute.MirroredStrategy(
            devices, cross_device_ops=tf.distribute.ReductionToOneDevice()
        )
    return _MIRRORED["mirrored"]


def build_model(strategy):
    with strategy.scope():
        model = tf.keras.Sequential(
            [
                tf.keras.Input((64,)),
                lq.layers.QuantDense(
                    32, name="binary", kernel_quantizer="ste_sign", kernel_constraint="weight_clip"
                ),
                lq.layers.QuantDense(
                    16,
                    name="pact",
                    input_quantizer=tq.PACT(bits=3, alpha_init=3.0),
                    kernel_quantizer=tq.LSQ(bits=3, signed=True, per_channel=True),
                ),
                lq.layers.QuantDense(
                    16,
                    name="inq",
                    input_quantizer=DelayedQuantizer(tq.PACT(bits=4, alpha_init=2.0)),
                    kernel_quantizer=INQQuantizer(tq.PowerOfTwo(bits=2)),
                ),
                tq.LSQ(bits=2, name="act_lsq"),
                tf.keras.layers.Dense(10, name="out"),
            ]
        )
        model.compile(
            tf.keras.optimizers.Adam(0.01),
            tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        )
    return model


class Recorder(tf.keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.begin, self.end = {}, {}

    def on_epoch_begin(self, epoch, logs=None):
        self.begin[epoch] = self.model.get_layer("binary").kernel.latent_variable.numpy()

    def on_epoch_end(self, epoch, logs=None):
        get = self.model.get_layer
        inq = get("inq").kernel_quantizer
        self.end[epoch] = dict(
            binary=get("binary").kernel.latent_variable.numpy(),
            alpha=float(get("pact").input_quantizer.alpha.numpy()),
            delayed_alpha=float(get("inq").input_quantizer.quantizer.alpha.numpy()),
            lsq_step=get("pact").kernel_quantizer.step.numpy(),
            lsq_kernel=get("pact").kernel.latent_variable.numpy(),
            act_step=float(get("act_lsq").step.numpy()),
            inq_mask=inq.frozen_mask.numpy(),
            inq_frozen=inq.frozen_values.numpy(),
            inq_latent=get("inq").kernel.latent_variable.numpy(),
            out_kernel=get("out").kernel.numpy(),
        )


def read_events(log_dir):
    """{tag: {step: value}} from the event files in ``log_dir``."""
    values = {}
    for path in glob.glob(os.path.join(log_dir, "events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                assert value.metadata.plugin_data.plugin_name == "scalars"
                values.setdefault(value.tag, {})[event.step] = float(tf.make_ndarray(value.tensor))
    return values


@pytest.mark.parametrize("strategy_name", ["default", "mirrored"])
def test_monitor_logs_per_layer_scalars(strategy_name, logical_cpus, tmp_path):
    strategy = make_strategy(strategy_name, logical_cpus)
    data = tfq_plus.datasets.load("digits")
    x = data.x_train[:256].reshape(256, 64)
    y = data.y_train[:256]
    tf.keras.utils.set_random_seed(0)
    model = build_model(strategy)
    recorder = Recorder()
    log_dir = str(tmp_path / "tb")
    history = model.fit(
        x,
        y,
        batch_size=64,
        epochs=EPOCHS,
        shuffle=False,
        verbose=0,
        callbacks=[
            INQSchedule(INQ_FRACTIONS),
            QuantizationDelay(epochs=1),
            QuantizationMonitor(log_dir),
            recorder,
        ],
    ).history

    expected = {}
    for epoch in range(EPOCHS):
        end = recorder.end[epoch]
        values = {}
        values["binary/kernel/flip_ratio"] = np.mean(
            (recorder.begin[epoch] >= 0) != (end["binary"] >= 0)
        )
        values["binary/kernel/sparsity"] = 0.0  # sign(0) = +1: binary kernels have no zeros
        values["pact/input/alpha"] = end["alpha"]
        values["pact/kernel/step_mean"] = np.mean(end["lsq_step"])
        values["pact/kernel/step_min"] = np.min(end["lsq_step"])
        values["pact/kernel/step_max"] = np.max(end["lsq_step"])
        # LSQ signed 3 bits: round(clip(w / s, -4, 3)) is 0 where |w / s| <= 1/2.
        codes = np.round(np.clip(end["lsq_kernel"] / end["lsq_step"], -4, 3))
        values["pact/kernel/sparsity"] = np.mean(codes == 0)
        values["inq/input/alpha"] = end["delayed_alpha"]
        values["inq/kernel/inq_frozen_fraction"] = INQ_FRACTIONS[epoch]
        effective = np.where(end["inq_mask"], end["inq_frozen"], end["inq_latent"])
        values["inq/kernel/sparsity"] = np.mean(effective == 0)
        values["act_lsq/step"] = end["act_step"]
        values["out/kernel/sparsity"] = np.mean(end["out_kernel"] == 0)
        expected[epoch] = values

    for key in expected[0]:
        assert key in history, (key, sorted(history))
        assert len(history[key]) == EPOCHS
        for epoch in range(EPOCHS):
            assert history[key][epoch] == pytest.approx(
                expected[epoch][key], rel=1e-6, abs=1e-7
            ), key
    monitored = {k for k in history if "/" in k}
    assert monitored == set(expected[0])
    # The statistics are not trivially constant.
    assert max(history["binary/kernel/flip_ratio"]) > 0
    assert min(history["pact/kernel/sparsity"]) > 0 and min(history["inq/kernel/sparsity"]) > 0
    assert history["pact/input/alpha"][-1] != 3.0

    events = read_events(log_dir)
    assert set(events) == set(expected[0])
    for key, by_step in events.items():
        assert sorted(by_step) == list(range(EPOCHS))
        for epoch, value in by_step.items():
            assert value == np.float32(history[key][epoch]), (key, epoch)


def test_monitor_without_log_dir_only_fills_logs():
    model = tf.keras.Sequential(
        [tf.keras.Input((3,)), lq.layers.QuantDense(2, kernel_quantizer="ste_sign", name="q")]
    )
    monitor = QuantizationMonitor()
    monitor.set_model(model)
    monitor.on_train_begin()
    monitor.on_epoch_begin(0)
    logs = {"loss": 1.0}
    monitor.on_epoch_end(0, logs)
    monitor.on_train_end()
    assert logs == {
        "loss": 1.0,
        "q/kernel/flip_ratio": 0.0,
        "q/kernel/sparsity": 0.0,
    }


def test_bad_log_dir():
    with pytest.raises(
        ValueError, match="QuantizationMonitor: `log_dir` must be a path string or None, got 3"
    ):
        QuantizationMonitor(log_dir=3)
