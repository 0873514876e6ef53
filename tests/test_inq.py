"""INQ: ``INQQuantizer`` kernels frozen by ``INQSchedule``.

Checked against numpy references written from the definitions (INQ's exponent
window and Eq. 4 rounding as ``PowerOfTwo`` documents them, LogNet's rounding as
``LogQuantizer`` documents it), on a small CNN trained on scikit-learn's digits,
with and without ``tf.distribute.MirroredStrategy`` over two logical CPUs:

- after each schedule step the frozen count is round(fraction * n) (within one
  weight), chosen by magnitude among the not yet frozen, frozen at the reference
  value of the latent weight at that moment, inside the window anchored at the
  first step;
- frozen values stay bit-identical to the end, although the optimizer (momentum,
  Adam with weight decay) keeps moving their latent weights;
- the final kernel is fully quantized, a fixed point of the base quantizer, and the
  model computes with it on every replica;
- killing a run mid-schedule and resuming with ``BackupAndRestore`` gives the
  masks, frozen values and weights of an uninterrupted run.
"""

import math

import larq as lq
import numpy as np
import pytest
import tensorflow as tf

import tfq_plus
from tfq_plus import quantizers as tq
from tfq_plus.callbacks import INQQuantizer, INQSchedule

SCHEDULE = {0: 0.5, 2: 0.75, 4: 0.875, 6: 1.0}
EPOCHS = 7
BATCH = 64
SAMPLES = 256


# --------------------------------------------------------------------------
# numpy references


def po2_window(anchor, bits):
    """PowerOfTwo's window: n1 = floor(log2(4 s / 3)), 2^(b-1) - 1 exponents down to n2."""
    s = np.where(anchor > 0, np.asarray(anchor, np.float64), 1.0)
    n1 = np.floor(np.log2(4.0 * s / 3.0))
    return n1 - (2 ** (bits - 1) - 1) + 1, n1


def po2_round(w, n2, n1):
    """Nearest element of {0, 2^n2, ..., 2^n1} to |w| (ties to the larger), signed."""
    w = np.asarray(w, np.float64)
    n2, n1 = np.broadcast_to(n2, w.shape), np.broadcast_to(n1, w.shape)
    out = np.zeros_like(w)
    for index in np.ndindex(w.shape):
        m = abs(w[index])
        levels = [0.0] + [2.0**e for e in range(int(n2[index]), int(n1[index]) + 1)]
        distances = [abs(m - level) for level in levels]
        best = min(range(len(levels)), key=lambda i: (distances[i], -levels[i]))
        out[index] = math.copysign(levels[best], w[index]) if levels[best] else 0.0
    return out


def log2_top(anchor):
    """LogQuantizer's top exponent: Round(log2 max|x|), Round(v) = floor(v + 1/2)."""
    return np.floor(np.log2(float(anchor)) + 0.5)


def log2_round(w, top, bits):
    """LogNet's base-2 rounding: Round(log2|x|) clipped to top; at or below
    top - 2^(b-1) + 1 the value is zero."""
    w = np.asarray(w, np.float64)
    out = np.zeros_like(w)
    nonzero = w != 0
    exponent = np.minimum(np.floor(np.log2(np.abs(w[nonzero])) + 0.5), top)
    keep = exponent > top - (2 ** (bits - 1) - 1)
    out[nonzero] = np.where(keep, np.sign(w[nonzero]) * 2.0**exponent, 0.0)
    return out


def scheduled_fraction(epoch):
    keys = [k for k in SCHEDULE if k <= epoch]
    return SCHEDULE[max(keys)] if keys else 0.0


# --------------------------------------------------------------------------
# model, data, runs


@pytest.fixture(scope="module")
def digits():
    data = tfq_plus.datasets.load("digits")
    return data.x_train[:SAMPLES], data.y_train[:SAMPLES]


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


# (layer name, base quantizer, numpy window + rounding) for the three INQ kernels.
LAYERS = ("conv", "hidden", "out")


def build_model(strategy, optimizer):
    with strategy.scope():
        model = tf.keras.Sequential(
            [
                tf.keras.Input((8, 8, 1)),
                lq.layers.QuantConv2D(
                    8,
                    3,
                    activation="relu",
                    name="conv",
                    kernel_quantizer=INQQuantizer(tq.PowerOfTwo(bits=3, per_channel=True)),
                ),
                tf.keras.layers.MaxPool2D(2),
                tf.keras.layers.Flatten(),
                lq.layers.QuantDense(
                    16,
                    activation="relu",
                    name="hidden",
                    kernel_quantizer=INQQuantizer(tq.LogQuantizer(bits=4)),
                ),
                lq.layers.QuantDense(
                    10, name="out", kernel_quantizer=INQQuantizer(tq.PowerOfTwo(bits=4))
                ),
            ]
        )
        if optimizer == "adamw":
            opt = tf.keras.optimizers.Adam(0.01, weight_decay=0.05)
        else:
            opt = tf.keras.optimizers.SGD(0.1, momentum=0.9)
        model.compile(opt, tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


def reference_quantize(name, w, anchor):
    """The reference frozen value of latent ``w`` given the first-step latent kernel."""
    if name == "conv":  # PowerOfTwo(3), per output channel
        n2, n1 = po2_window(np.max(np.abs(anchor), axis=(0, 1, 2)), 3)
        return po2_round(w, n2, n1), (n2, n1)
    if name == "out":  # PowerOfTwo(4), per tensor
        n2, n1 = po2_window(np.max(np.abs(anchor)), 4)
        return po2_round(w, n2, n1), (n2, n1)
    top = log2_top(np.max(np.abs(anchor)))  # LogQuantizer(4), base 2
    return log2_round(w, top, 4), (top - (2**3 - 1) + 1, top)


def kernels(model):
    return {name: model.get_layer(name) for name in LAYERS}


class Recorder(tf.keras.callbacks.Callback):
    """Snapshots of latent weights and INQ state at every epoch begin."""

    def __init__(self, store):
        super().__init__()
        self.store = store

    def on_epoch_begin(self, epoch, logs=None):
        snapshot = {}
        for name, layer in kernels(self.model).items():
            quantizer = layer.kernel_quantizer
            latent = layer.kernel.latent_variable
            snapshot[name] = dict(
                latent=latent.numpy(),
                mask=quantizer.frozen_mask.numpy(),
                frozen=quantizer.frozen_values.numpy(),
                effective=quantizer(tf.convert_to_tensor(latent)).numpy(),
            )
        self.store.setdefault(epoch, []).append(snapshot)


def train(model, data, callbacks, epochs=EPOCHS):
    x, y = data
    model.fit(x, y, batch_size=BATCH, epochs=epochs, shuffle=False, verbose=0, callbacks=callbacks)


# (strategy, selection, optimizer). The random selection is checked on its own in
# test_random_strategy_is_seeded; what happens after freezing does not depend on it.
RUNS = [
    ("default", "magnitude", "adamw"),
    ("mirrored", "magnitude", "sgd_momentum"),
]
_RUN_CACHE = {}


def uninterrupted_run(run, data, devices):
    """Trains the model of ``run`` = (strategy, selection, optimizer) once per module;
    the resume test reuses it as its uninterrupted reference."""
    if run not in _RUN_CACHE:
        strategy_name, selection, optimizer = run
        strategy = make_strategy(strategy_name, devices)
        tf.keras.utils.set_random_seed(1)
        model = build_model(strategy, optimizer)
        initial = model.get_weights()
        store = {}
        # A recorder before the schedule sees the latent weights it freezes from;
        # one after it, the frozen state.
        train(
            model,
            data,
            [Recorder(store), INQSchedule(SCHEDULE, strategy=selection, seed=5), Recorder(store)],
        )
        _RUN_CACHE[run] = dict(
            strategy=strategy,
            strategy_name=strategy_name,
            selection=selection,
            optimizer=optimizer,
            model=model,
            initial=initial,
            store=store,
        )
    return _RUN_CACHE[run]


@pytest.fixture(scope="module", params=RUNS, ids=["-".join(r) for r in RUNS])
def inq_run(request, digits, logical_cpus):
    return uninterrupted_run(request.param, digits, logical_cpus)


# --------------------------------------------------------------------------
# the schedule


def test_frozen_fraction_follows_schedule(inq_run):
    store = inq_run["store"]
    for epoch in range(EPOCHS):
        for name in LAYERS:
            mask = store[epoch][1][name]["mask"]
            expected = scheduled_fraction(epoch) * mask.size
            assert abs(int(mask.sum()) - expected) <= 1, (epoch, name, mask.sum(), expected)


def test_frozen_entries_are_reference_values_in_the_window(inq_run):
    store = inq_run["store"]
    for name in LAYERS:
        anchor = store[0][0][name]["latent"]
        previous_mask = np.zeros_like(store[0][0][name]["mask"])
        for epoch in range(EPOCHS):
            before, after = store[epoch][0][name], store[epoch][1][name]
            new = after["mask"] & ~previous_mask
            assert np.array_equal(after["mask"] & previous_mask, previous_mask)  # never unfreezes
            if new.any():
                expected, (n2, n1) = reference_quantize(name, before["latent"], anchor)
                assert np.array_equal(after["frozen"][new], expected[new].astype(np.float32))
                # Every frozen value: 0 or +-2^e with n2 <= e <= n1.
                frozen = after["frozen"]
                n2 = np.broadcast_to(n2, frozen.shape)[after["mask"]]
                n1 = np.broadcast_to(n1, frozen.shape)[after["mask"]]
                values = np.abs(frozen[after["mask"]]).astype(np.float64)
                nonzero = values > 0
                exponents = np.log2(values[nonzero])
                assert np.array_equal(exponents, np.round(exponents))
                assert np.all(exponents >= n2[nonzero]) and np.all(exponents <= n1[nonzero])
                if inq_run["selection"] == "magnitude":
                    remaining = ~after["mask"]
                    if remaining.any():
                        magnitude = np.abs(before["latent"])
                        assert magnitude[new].min() >= magnitude[remaining].max()
            previous_mask = after["mask"]


def test_frozen_values_are_bit_identical_to_the_end(inq_run):
    store, model = inq_run["store"], inq_run["model"]
    drifted = 0
    for name, layer in kernels(model).items():
        quantizer = layer.kernel_quantizer
        latent = layer.kernel.latent_variable.numpy()
        final = quantizer(tf.convert_to_tensor(latent)).numpy()
        for epoch in range(EPOCHS):
            after = store[epoch][1][name]
            mask = after["mask"]
            assert np.array_equal(
                final[mask].view(np.int32), after["effective"][mask].view(np.int32)
            ), (name, epoch)
        # The optimizer moved latent weights of frozen entries (momentum / weight
        # decay): the forward pass does not read them.
        mask = quantizer.frozen_mask.numpy()
        drifted += int(np.sum(latent[mask] != quantizer.frozen_values.numpy()[mask]))
    assert drifted > 0


def test_final_kernel_is_fully_quantized(inq_run):
    store, model = inq_run["store"], inq_run["model"]
    anchors = {name: store[0][0][name]["latent"] for name in LAYERS}
    for name, layer in kernels(model).items():
        quantizer = layer.kernel_quantizer
        assert quantizer.frozen_fraction() == 1.0
        final = quantizer(tf.convert_to_tensor(layer.kernel.latent_variable)).numpy()
        assert np.array_equal(final, quantizer.frozen_values.numpy())
        # A fixed point of the base quantizer (anchored at its own max |w|).
        assert np.array_equal(quantizer.base(tf.constant(final)).numpy(), final)
        # The deploy grid is the window the values were frozen in.
        _, (n2, n1) = reference_quantize(name, anchors[name], anchors[name])
        grid = quantizer.deploy_grid()
        assert grid.kind == "power_of_two" and grid.bits == quantizer.base.bits
        assert np.array_equal(np.ravel(grid.exponent_range[0]), np.ravel(n2))
        assert np.array_equal(np.ravel(grid.exponent_range[1]), np.ravel(n1))
        if inq_run["strategy_name"] == "mirrored":
            for variable in (quantizer.frozen_mask, quantizer.frozen_values, quantizer.anchor):
                replicas = [v.numpy() for v in variable.values]
                assert len(replicas) == 2 and np.array_equal(replicas[0], replicas[1])


def test_model_computes_with_frozen_kernels(inq_run, digits):
    """The replicas' forward pass uses the frozen kernels: predictions equal a numpy
    forward pass with the frozen values (not the drifted latent weights)."""
    model = inq_run["model"]
    x = digits[0][:32]
    w = {
        name: layer.kernel_quantizer.frozen_values.numpy() for name, layer in kernels(model).items()
    }
    b = {name: layer.bias.numpy() for name, layer in kernels(model).items()}
    x64 = x.astype(np.float64)
    conv = np.zeros((len(x), 6, 6, 8))
    for i in range(6):
        for j in range(6):
            patch = x64[:, i : i + 3, j : j + 3, :]
            conv[:, i, j, :] = np.tensordot(patch, w["conv"], axes=([1, 2, 3], [0, 1, 2]))
    h = np.maximum(conv + b["conv"], 0)
    h = h.reshape(len(x), 3, 2, 3, 2, 8).max(axis=(2, 4)).reshape(len(x), -1)
    h = np.maximum(h @ w["hidden"] + b["hidden"], 0)
    expected = h @ w["out"] + b["out"]
    predicted = model.predict(x, batch_size=16, verbose=0)
    np.testing.assert_allclose(predicted, expected, rtol=1e-4, atol=1e-4)


# --------------------------------------------------------------------------
# resuming


class KillAt(tf.keras.callbacks.Callback):
    """Raises in the middle of an epoch, as a preempted job dies."""

    def __init__(self, epoch, batch):
        super().__init__()
        self.at = (epoch, batch)
        self.epoch = None

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if (self.epoch, batch) == self.at:
            raise RuntimeError("killed")


@pytest.mark.parametrize("run", RUNS, ids=["-".join(r) for r in RUNS])
def test_backup_and_restore_resumes_exactly(run, digits, logical_cpus, tmp_path):
    reference_run = uninterrupted_run(run, digits, logical_cpus)
    reference, initial = reference_run["model"], reference_run["initial"]

    def run_from_initial(callbacks):
        model = build_model(reference_run["strategy"], reference_run["optimizer"])
        model.set_weights(initial)
        train(model, digits, callbacks)
        return model

    backup = str(tmp_path / "backup")
    killed_store = {}
    with pytest.raises(RuntimeError, match="killed"):
        run_from_initial(
            [
                tf.keras.callbacks.BackupAndRestore(backup),
                INQSchedule(SCHEDULE, seed=5),
                Recorder(killed_store),
                KillAt(epoch=4, batch=1),
            ]
        )
    assert max(killed_store) == 4  # died after the epoch-4 freeze, mid-epoch

    # A new process: a fresh model from the initial weights, restored by the callback.
    resumed_store = {}
    resumed = run_from_initial(
        [
            tf.keras.callbacks.BackupAndRestore(backup),
            Recorder(resumed_store),
            INQSchedule(SCHEDULE, seed=5),
        ]
    )
    first = min(resumed_store)
    assert first == 4
    assert resumed_store[4][0]["out"]["mask"].mean() == pytest.approx(0.75, abs=1 / 160)

    for name in LAYERS:
        a = reference.get_layer(name).kernel_quantizer
        b = resumed.get_layer(name).kernel_quantizer
        assert np.array_equal(a.frozen_mask.numpy(), b.frozen_mask.numpy())
        assert np.array_equal(
            a.frozen_values.numpy().view(np.int32), b.frozen_values.numpy().view(np.int32)
        )
        assert np.array_equal(a.anchor.numpy(), b.anchor.numpy())
    for wa, wb in zip(reference.get_weights(), resumed.get_weights()):
        assert np.array_equal(wa, wb)


# --------------------------------------------------------------------------
# the quantizer and the callback on their own


def test_random_strategy_is_seeded():
    def masks(seed, restart=False):
        layer = lq.layers.QuantDense(20, kernel_quantizer=INQQuantizer(tq.PowerOfTwo(bits=4)))
        model = tf.keras.Sequential([tf.keras.Input((10,)), layer])
        layer.kernel.latent_variable.assign(
            np.linspace(-1, 1, 200, dtype=np.float32).reshape(10, 20)
        )
        result = []
        for epoch in range(2):
            if epoch == 0 or restart:  # a restarted run has a new callback object
                schedule = INQSchedule({0: 0.3, 1: 0.6}, strategy="random", seed=seed)
                schedule.set_model(model)
                schedule.on_train_begin()
            schedule.on_epoch_begin(epoch)
            result.append(layer.kernel_quantizer.frozen_mask.numpy())
        return result

    first, again, restarted, other = masks(7), masks(7), masks(7, restart=True), masks(8)
    assert [int(m.sum()) for m in first] == [60, 120]
    assert np.array_equal(first[0] & first[1], first[0])
    for same in (again, restarted):
        assert all(np.array_equal(a, b) for a, b in zip(first, same))
    assert not np.array_equal(first[0], other[0])
    # Random, not by magnitude: the 60 largest |w| are not what was chosen.
    magnitude = np.abs(np.linspace(-1, 1, 200))
    assert not np.array_equal(
        np.sort(np.flatnonzero(first[0])), np.sort(np.argsort(-magnitude)[:60])
    )


def test_log_sqrt2_base_freezes_on_its_grid():
    layer = lq.layers.QuantDense(8, kernel_quantizer=INQQuantizer("log_sqrt2"))
    model = tf.keras.Sequential([tf.keras.Input((6,)), layer])
    latent = np.random.default_rng(3).normal(0, 0.3, size=(6, 8)).astype(np.float32)
    layer.kernel.latent_variable.assign(latent)
    schedule = INQSchedule({0: 1.0})
    schedule.set_model(model)
    schedule.on_train_begin()
    schedule.on_epoch_begin(0)
    frozen = layer.kernel_quantizer.frozen_values.numpy()
    # Reference (base sqrt2, 4 bits): exponents in half-units of log2.
    top = np.floor(2 * np.log2(np.abs(latent).max()) + 0.5)
    exponent = np.minimum(np.floor(2 * np.log2(np.abs(latent)) + 0.5), top)
    expected = np.where(exponent > top - 7, np.sign(latent) * 2.0 ** (exponent / 2), 0.0)
    np.testing.assert_allclose(frozen, expected, rtol=1e-6, atol=0)
    grid = layer.kernel_quantizer.deploy_grid()
    assert grid.base == pytest.approx(math.sqrt(2))
    assert grid.exponent_range == (pytest.approx((top - 6) / 2), pytest.approx(top / 2))


def test_config_round_trip_and_save_keeps_state(tmp_path):
    quantizer = INQQuantizer(tq.PowerOfTwo(bits=5, per_channel=True, axis=-1), name="inq_k")
    clone = INQQuantizer.from_config(quantizer.get_config())
    assert clone.get_config() == quantizer.get_config()
    assert isinstance(clone.base, tq.PowerOfTwo) and clone.base.bits == 5 and clone.base.per_channel
    assert isinstance(tq.get("inq"), INQQuantizer)

    layer = lq.layers.QuantDense(4, kernel_quantizer=quantizer)
    model = tf.keras.Sequential([tf.keras.Input((3,)), layer])
    schedule = INQSchedule({0: 0.5})
    schedule.set_model(model)
    schedule.on_train_begin()
    schedule.on_epoch_begin(0)
    path = str(tmp_path / "model.keras")
    model.save(path)
    reloaded = tf.keras.models.load_model(path)
    restored = reloaded.layers[0].kernel_quantizer
    assert isinstance(restored, INQQuantizer)
    assert np.array_equal(restored.frozen_mask.numpy(), quantizer.frozen_mask.numpy())
    assert np.array_equal(restored.frozen_values.numpy(), quantizer.frozen_values.numpy())
    x = np.random.default_rng(0).normal(size=(5, 3)).astype(np.float32)
    np.testing.assert_array_equal(reloaded.predict(x, verbose=0), model.predict(x, verbose=0))


def test_deploy_grid_needs_a_fully_frozen_kernel():
    layer = lq.layers.QuantDense(4, kernel_quantizer=INQQuantizer())
    model = tf.keras.Sequential([tf.keras.Input((3,)), layer])
    with pytest.raises(ValueError, match=r"INQQuantizer.*0.0% of the kernel is frozen"):
        layer.kernel_quantizer.deploy_grid()
    del model


@pytest.mark.parametrize(
    "make, message",
    [
        (
            lambda: INQQuantizer("ste_sign"),
            r"INQQuantizer.*`base` must be a PowerOfTwo or LogQuantizer",
        ),
        (lambda: INQSchedule({0: 0.5, 2: 0.25}), r"INQSchedule: fractions must increase"),
        (
            lambda: INQSchedule({0: 1.5}),
            r"INQSchedule: fractions must be numbers in \(0, 1\], got 1.5",
        ),
        (
            lambda: INQSchedule({-1: 0.5}),
            r"INQSchedule: schedule keys must be integers >= 0 \(epochs or steps\), got -1",
        ),
        (lambda: INQSchedule({}), r"INQSchedule: `schedule` must be a non-empty dict"),
        (
            lambda: INQSchedule({0: 1.0}, strategy="largest"),
            r"INQSchedule: `strategy` must be one of \['magnitude', 'random'\], got 'largest'",
        ),
        (
            lambda: INQSchedule({0: 1.0}, seed=-2),
            r"INQSchedule: `seed` must be an integer >= 0, got -2",
        ),
        (
            lambda: INQSchedule({0: 1.0}, unit="batch"),
            r"INQSchedule: `unit` must be one of \['epoch', 'step'\], got 'batch'",
        ),
    ],
)
def test_bad_arguments(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_model_without_inq_kernels_is_an_error():
    model = tf.keras.Sequential(
        [tf.keras.Input((3,)), lq.layers.QuantDense(2, kernel_quantizer="po2")]
    )
    model.compile("sgd", "mse")
    with pytest.raises(
        ValueError, match="INQSchedule: the model has no weight quantized by an INQQuantizer"
    ):
        model.fit(np.zeros((4, 3)), np.zeros((4, 2)), verbose=0, callbacks=[INQSchedule({0: 1.0})])
