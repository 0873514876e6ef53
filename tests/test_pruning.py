"""TFMOT pruning of larq layers with tfq_plus quantizers (tfq_plus.pruning)."""

import larq as lq
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_model_optimization as tfmot

import tfq_plus
from tfq_plus import pruning
from tfq_plus import quantizers as tq
from tfq_plus.pruning import PruneLowMagnitude

sparsity = tfmot.sparsity.keras


@pytest.fixture(scope="module")
def digits():
    return tfq_plus.datasets.load("digits")


def _quantized(variable) -> np.ndarray:
    """The kernel a larq layer computes with (its quantizer applied), as numpy."""
    with lq.context.quantized_scope(True):
        return np.asarray(tf.convert_to_tensor(variable))


def _latent(variable) -> np.ndarray:
    return np.asarray(tf.convert_to_tensor(getattr(variable, "latent_variable", variable)))


# Quantizers whose grid has a zero, each on the layer kind it is meant for.
ZERO_FORMATS = [
    ("po2", lambda: tq.PowerOfTwo(bits=4)),
    ("po2_per_channel", lambda: tq.PowerOfTwo(bits=3, per_channel=True)),
    ("ttq", lambda: tq.TTQ()),
    ("twn", lambda: lq.quantizers.SteTern(ternary_weight_networks=True)),
    ("ste_tern", lambda: lq.quantizers.SteTern()),
    ("log2", lambda: tq.LogQuantizer(bits=4)),
    ("log_sqrt2", lambda: tq.LogSqrt2Quantizer(bits=4)),
    ("shift", lambda: tq.ShiftQuantizer(bits=3, num_shifts=2)),
    ("uniform_symmetric", lambda: tq.Uniform(bits=4)),
    ("uniform_asymmetric", lambda: tq.Uniform(bits=4, symmetric=False)),
    ("lsq_signed", lambda: tq.LSQ(bits=4, signed=True)),
    ("float", lambda: None),
]

LAYERS = {
    "conv": lambda q: lq.layers.QuantConv2D(6, 3, kernel_quantizer=q, name="pruned"),
    "dense": lambda q: lq.layers.QuantDense(7, kernel_quantizer=q, name="pruned"),
    "depthwise": lambda q: lq.layers.QuantDepthwiseConv2D(
        3, depth_multiplier=2, depthwise_quantizer=q, name="pruned"
    ),
}
INPUT_SHAPES = {"conv": (6, 6, 4), "dense": (24,), "depthwise": (6, 6, 4)}


def _pruned_layer(kind, quantizer, target=0.75):
    """A model with one TFMOT-wrapped larq layer whose mask was updated once."""
    inputs = tf.keras.Input(INPUT_SHAPES[kind])
    wrapper = sparsity.prune_low_magnitude(
        LAYERS[kind](quantizer),
        pruning_schedule=sparsity.ConstantSparsity(target, begin_step=0, frequency=1),
    )
    model = tf.keras.Model(inputs, wrapper(inputs))
    # What UpdatePruningStep and one training step do: step 1, mask update, masking.
    wrapper.pruning_step.assign(1)
    wrapper.pruning_obj.conditional_mask_update()
    wrapper.pruning_obj.weight_mask_op()
    return model, wrapper


@pytest.mark.parametrize("kind", sorted(LAYERS))
@pytest.mark.parametrize("name,make", ZERO_FORMATS, ids=[n for n, _ in ZERO_FORMATS])
def test_pruned_zeros_survive_quantization(kind, name, make):
    model, wrapper = _pruned_layer(kind, make())
    layer = wrapper.layer
    weight = layer.depthwise_kernel if kind == "depthwise" else layer.kernel
    (pruned_variable,) = [w for w, _, _ in wrapper.pruning_vars]
    # TFMOT masks the latent variable, not larq's QuantizedVariable wrapper.
    assert pruned_variable is getattr(weight, "latent_variable", weight)
    mask = np.asarray(wrapper.pruning_vars[0][1])
    kept = int(np.round(mask.size * 0.25))
    assert int(mask.sum()) == kept
    latent = _latent(weight)
    assert np.all(latent[mask == 0] == 0.0)
    quantized = _quantized(weight)
    assert np.all(quantized[mask == 0] == 0.0), f"{name}: a pruned weight quantized to non-zero"
    assert np.mean(quantized == 0.0) >= 0.75 - 0.5 / mask.size
    report = pruning.kernel_sparsity(model)
    (entry,) = report.values()
    assert entry.latent == pytest.approx(1 - kept / mask.size)
    assert entry.quantized == pytest.approx(np.mean(quantized == 0.0))


BINARY = [
    ("ste_sign", lambda: "ste_sign"),
    ("approx_sign", lambda: lq.quantizers.ApproxSign()),
    ("swish_sign", lambda: lq.quantizers.SwishSign()),
    ("scaled_sign", lambda: tq.ScaledSign()),
    ("scaled_sign_per_tensor", lambda: tq.ScaledSign(per_channel=False)),
]


@pytest.mark.parametrize("kind", ["conv", "dense", "depthwise"])
@pytest.mark.parametrize("name,make", BINARY, ids=[n for n, _ in BINARY])
def test_binary_kernel_pruning_raises(kind, name, make):
    inputs = tf.keras.Input(INPUT_SHAPES[kind])
    layer = LAYERS[kind](make())
    message = r"layer 'pruned' \(Quant.*binary \(precision 1\).*no zero"
    with pytest.raises(ValueError, match=message):
        schedule = sparsity.ConstantSparsity(0.5, 0)
        sparsity.prune_low_magnitude(layer, pruning_schedule=schedule)(inputs)


def test_quantizer_without_zero_level_raises():
    """larq's DoReFa weight mode has levels 2i/(2^k-1) - 1: 0 becomes 1/(2^k-1)."""
    inputs = tf.keras.Input((6, 6, 4))
    layer = lq.layers.QuantConv2D(
        4, 3, kernel_quantizer=lq.quantizers.DoReFa(k_bit=2, mode="weights"), name="dorefa"
    )
    model = tf.keras.Model(inputs, layer(inputs))
    with pytest.raises(ValueError, match=r"layer 'dorefa'.*maps an exact zero to 0.333333"):
        sparsity.prune_low_magnitude(model, pruning_schedule=sparsity.ConstantSparsity(0.5, 0))


def _float_cnn(num_classes=10, name="float_cnn"):
    inputs = tf.keras.Input((8, 8, 1))
    x = tf.keras.layers.Conv2D(8, 3, padding="same", use_bias=False, name="stem")(inputs)
    x = tf.keras.layers.BatchNormalization(name="bn0")(x)
    x = tf.keras.layers.Activation("relu")(x)
    x = tf.keras.layers.Conv2D(16, 3, padding="same", name="conv")(x)
    x = tf.keras.layers.BatchNormalization(name="bn1")(x)
    x = tf.keras.layers.Activation("relu")(x)
    x = tf.keras.layers.MaxPool2D(2)(x)
    x = tf.keras.layers.DepthwiseConv2D(3, padding="same", name="depthwise")(x)
    x = tf.keras.layers.Flatten()(x)
    x = tf.keras.layers.Dense(32, activation="relu", name="hidden")(x)
    outputs = tf.keras.layers.Dense(num_classes, name="logits")(x)
    return tf.keras.Model(inputs, outputs, name=name)


def _compile(model):
    model.compile(
        optimizer=tf.keras.optimizers.Adam(3e-3),
        loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )


def _check_stripped(stripped, target, quantized_layers):
    assert not any(
        isinstance(l, PruneLowMagnitude) for l in stripped._flatten_layers(include_self=False)
    )
    report = pruning.kernel_sparsity(stripped)
    for name in quantized_layers:
        layer = stripped.get_layer(name)
        weight_name = "depthwise_kernel" if hasattr(layer, "depthwise_kernel") else "kernel"
        weight = getattr(layer, weight_name)
        latent, quantized = _latent(weight), _quantized(weight)
        kept = int(np.round(latent.size * (1 - target)))
        # At most TFMOT's count of kept weights, and every pruned zero still zero.
        assert int(np.count_nonzero(latent)) <= kept
        assert np.all(quantized[latent == 0.0] == 0.0)
        assert np.mean(quantized == 0.0) >= 1 - kept / latent.size
        measured = report[f"{name}/{weight_name}"]
        assert measured.quantized == pytest.approx(np.mean(quantized == 0.0))


def test_prune_and_quantize_reaches_target_and_round_trips(digits, tmp_path):
    tf.keras.utils.set_random_seed(1)
    model = _float_cnn()
    _compile(model)
    model.fit(digits.x_train, digits.y_train, epochs=2, batch_size=64, verbose=0)
    float_accuracy = model.evaluate(digits.x_test, digits.y_test, verbose=0)[1]
    original = [w.copy() for w in model.get_weights()]

    steps_per_epoch = int(np.ceil(len(digits.x_train) / 64))
    pruned, callbacks = pruning.prune_and_quantize(
        model,
        target_sparsity=0.75,
        kernel_quantizer=tq.PowerOfTwo(bits=4),
        schedule="polynomial",
        end_step=2 * steps_per_epoch,
        frequency=5,
        exclude=["stem"],
    )
    # The original is untouched; the copy starts from its weights.
    for before, after in zip(original, model.get_weights()):
        np.testing.assert_array_equal(before, after)
    assert type(pruned.get_layer("stem")) is tf.keras.layers.Conv2D
    wrapped = {l.layer.name: l.layer for l in pruned.layers if isinstance(l, PruneLowMagnitude)}
    assert sorted(wrapped) == ["conv", "depthwise", "hidden", "logits"]
    assert type(wrapped["conv"]) is lq.layers.QuantConv2D
    assert type(wrapped["depthwise"]) is lq.layers.QuantDepthwiseConv2D
    assert isinstance(wrapped["hidden"].kernel_quantizer, tq.PowerOfTwo)
    assert wrapped["hidden"].kernel_quantizer is not wrapped["logits"].kernel_quantizer
    np.testing.assert_array_equal(
        _latent(wrapped["hidden"].kernel), model.get_layer("hidden").kernel.numpy()
    )

    _compile(pruned)
    pruned.fit(
        digits.x_train, digits.y_train, epochs=3, batch_size=64, verbose=0, callbacks=callbacks
    )
    stripped = pruning.strip(pruned)
    assert type(stripped.get_layer("conv")) is lq.layers.QuantConv2D
    _check_stripped(stripped, 0.75, ["conv", "depthwise", "hidden", "logits"])
    _compile(stripped)
    accuracy = stripped.evaluate(digits.x_test, digits.y_test, verbose=0)[1]
    assert accuracy > float_accuracy - 0.1, (accuracy, float_accuracy)

    predicted = stripped.predict(digits.x_test, verbose=0)
    for suffix in ("keras", "h5"):
        path = str(tmp_path / f"stripped.{suffix}")
        stripped.save(path)
        reloaded = tf.keras.models.load_model(path)
        np.testing.assert_array_equal(reloaded.predict(digits.x_test, verbose=0), predicted)
        _check_stripped(reloaded, 0.75, ["conv", "depthwise", "hidden", "logits"])


def test_stripped_model_owns_its_layers_and_keeps_quantizer_state(digits):
    """TFMOT's strip_pruning reuses the layers, which stay wired into the pruned
    model's graph (``layer.output`` was the pruned model's tensor, so probing a layer
    of the stripped model, as verify does, failed with "Graph disconnected"). The
    stripped model computes what the pruned one does, with the same trained state
    (here LSQ's step sizes)."""
    tf.keras.utils.set_random_seed(3)
    pruned, callbacks = pruning.prune_and_quantize(
        _float_cnn(), 0.5, kernel_quantizer=tq.LSQ(bits=4, signed=True), end_step=4,
        frequency=1, exclude=["stem"])
    _compile(pruned)
    pruned.fit(digits.x_train[:256], digits.y_train[:256], epochs=1, batch_size=32, verbose=0,
               callbacks=callbacks)
    stripped = pruning.strip(pruned)

    probe = tf.keras.Model(stripped.inputs, [layer.output for layer in stripped.layers[1:]])
    images = digits.x_test[:64]
    np.testing.assert_allclose(probe.predict(images, verbose=0)[-1],
                               stripped.predict(images, verbose=0), rtol=0, atol=1e-6)
    np.testing.assert_allclose(stripped.predict(images, verbose=0),
                               pruned.predict(images, verbose=0), rtol=0, atol=1e-6)
    inner = {layer.name: layer for layer in pruned.layers}
    inner.update({l.layer.name: l.layer for l in pruned.layers if isinstance(l, PruneLowMagnitude)})
    for layer in stripped.layers:
        assert layer is not inner[layer.name]
        for mine, theirs in zip(layer.weights, inner[layer.name].weights):
            np.testing.assert_array_equal(mine.numpy(), theirs.numpy())
    step = stripped.get_layer("hidden").kernel_quantizer.step.numpy()
    np.testing.assert_array_equal(step, inner["hidden"].kernel_quantizer.step.numpy())
    assert np.all(step != 1.0)  # initialised from the data, not the variable's initializer


def test_tfmot_prunes_a_whole_larq_model_and_reloads(digits, tmp_path):
    """TFMOT's own API on a model of larq layers, a quantizer used as a layer, and a
    ConstantSparsity schedule; the wrapped model saves and reloads mid-training."""
    tf.keras.utils.set_random_seed(2)
    inputs = tf.keras.Input((8, 8, 1))
    x = lq.layers.QuantConv2D(8, 3, kernel_quantizer=tq.TTQ(), name="ttq_conv")(inputs)
    x = tf.keras.layers.BatchNormalization()(x)
    x = tq.PACT(bits=4, alpha_init=4.0, name="pact")(x)
    x = tf.keras.layers.Flatten()(x)
    x = lq.layers.QuantDense(
        10, input_quantizer=tq.LSQ(bits=4), kernel_quantizer=tq.LSQ(bits=4, signed=True),
        name="lsq_dense",
    )(x)
    model = tf.keras.Model(inputs, x)
    pruned = sparsity.prune_low_magnitude(
        model, pruning_schedule=sparsity.ConstantSparsity(0.6, begin_step=0, frequency=4)
    )
    _compile(pruned)
    pruned.fit(
        digits.x_train, digits.y_train, epochs=2, batch_size=64, verbose=0,
        callbacks=[sparsity.UpdatePruningStep()],
    )
    path = str(tmp_path / "pruned.h5")
    pruned.save(path)
    with sparsity.prune_scope():
        reloaded = tf.keras.models.load_model(path)
    images = digits.x_test[:64]
    np.testing.assert_array_equal(
        reloaded.predict(images, verbose=0), pruned.predict(images, verbose=0)
    )
    stripped = sparsity.strip_pruning(reloaded)
    _check_stripped(stripped, 0.6, ["ttq_conv", "lsq_dense"])


def test_prune_and_quantize_under_mirrored_strategy(digits, logical_cpus):
    # Reduction through one device: separate MirroredStrategy objects in one process
    # share collective keys, and other test modules create their own.
    strategy = tf.distribute.MirroredStrategy(
        logical_cpus, cross_device_ops=tf.distribute.ReductionToOneDevice()
    )
    assert strategy.num_replicas_in_sync == 2
    tf.keras.utils.set_random_seed(3)
    with strategy.scope():
        inputs = tf.keras.Input((8, 8, 1))
        x = tf.keras.layers.Conv2D(8, 3, name="conv")(inputs)
        x = tf.keras.layers.Flatten()(x)
        x = tf.keras.layers.Dense(16, activation="relu", name="hidden")(x)
        model = tf.keras.Model(inputs, tf.keras.layers.Dense(10, name="logits")(x))
        pruned, callbacks = pruning.prune_and_quantize(
            model, 0.5, kernel_quantizer="ttq", schedule="constant", frequency=3
        )
        _compile(pruned)
    pruned.fit(
        digits.x_train[:640], digits.y_train[:640], epochs=1, batch_size=64, verbose=0,
        callbacks=callbacks,
    )
    stripped = pruning.strip(pruned)
    _check_stripped(stripped, 0.5, ["conv", "hidden", "logits"])
    # Mirrored copies of every pruned latent kernel agree.
    for name in ("conv", "hidden"):
        latent = stripped.get_layer(name).kernel.latent_variable
        copies = [np.asarray(v) for v in latent.values]
        assert len(copies) == 2
        np.testing.assert_array_equal(copies[0], copies[1])


def test_prune_and_quantize_rejects_binary_layers_unless_excluded():
    inputs = tf.keras.Input((8, 8, 1))
    x = tf.keras.layers.Conv2D(4, 3, name="stem")(inputs)
    x = lq.layers.QuantConv2D(
        4, 3, input_quantizer="ste_sign", kernel_quantizer="ste_sign",
        kernel_constraint="weight_clip", name="binary",
    )(x)
    x = tf.keras.layers.Flatten()(x)
    model = tf.keras.Model(inputs, tf.keras.layers.Dense(10, name="head")(x))
    with pytest.raises(ValueError, match=r"layer 'binary'.*binary.*exclude=\['binary'\]"):
        pruning.prune_and_quantize(model, 0.5, kernel_quantizer="po2", schedule="constant")
    pruned, _ = pruning.prune_and_quantize(
        model, 0.5, kernel_quantizer="po2", schedule="constant", exclude=["binary"]
    )
    assert type(pruned.get_layer("binary")) is lq.layers.QuantConv2D
    assert isinstance(pruned.get_layer("prune_low_magnitude_head"), PruneLowMagnitude)


@pytest.mark.parametrize(
    "kwargs,message",
    [
        (dict(target_sparsity=1.0), r"`target_sparsity` must be a number in \(0, 1\), got 1.0"),
        (
            dict(target_sparsity=0.5, schedule="linear"),
            r"`schedule` must be one of \['polynomial', 'constant'\]",
        ),
        (dict(target_sparsity=0.5), r"schedule='polynomial' needs `end_step`"),
        (dict(target_sparsity=0.5, end_step=0), r"`end_step` must be an integer >= 1, got 0"),
        (
            dict(target_sparsity=0.5, schedule="constant", frequency=0),
            r"`frequency` must be an integer >= 1",
        ),
        (dict(target_sparsity=0.5, schedule=sparsity.ConstantSparsity(0.5, 0)), r"not both"),
        (
            dict(target_sparsity=0.5, schedule="constant", exclude=["nope"]),
            r"`exclude` names layers .*\['nope'\]",
        ),
        (
            dict(target_sparsity=0.5, schedule="constant", kernel_quantizer="po3"),
            r"unknown quantizer 'po3'",
        ),
    ],
)
def test_prune_and_quantize_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        pruning.prune_and_quantize(_float_cnn(), **kwargs)


def test_prune_and_quantize_accepts_a_pruning_schedule():
    schedule = sparsity.PolynomialDecay(0.1, 0.8, begin_step=0, end_step=10)
    pruned, callbacks = pruning.prune_and_quantize(
        _float_cnn(), None, kernel_quantizer="log2", schedule=schedule
    )
    wrapper = pruned.get_layer("prune_low_magnitude_conv")
    assert wrapper.pruning_schedule is schedule
    assert isinstance(wrapper.layer.kernel_quantizer, tq.LogQuantizer)
    assert isinstance(callbacks[0], sparsity.UpdatePruningStep)


def _small_pruned(end_step):
    tf.keras.utils.set_random_seed(3)
    model = _float_cnn()
    pruned, callbacks = pruning.prune_and_quantize(
        model, target_sparsity=0.75, kernel_quantizer=tq.PowerOfTwo(bits=4),
        end_step=end_step, frequency=1, exclude=["stem"],
    )
    _compile(pruned)
    return pruned, callbacks


def _polynomial_sparsity(step, end_step, final=0.75):
    """Zhu & Gupta's schedule (TFMOT PolynomialDecay, power 3, from 0 at step 0)."""
    progress = min(step, end_step) / end_step
    return final * (1 - (1 - progress) ** 3)


def test_schedule_longer_than_the_fit_warns_at_the_start(digits):
    # 3 epochs of ceil(n / 64) batches, schedule ending far beyond
    steps = 3 * int(np.ceil(len(digits.x_train) / 64))
    end_step = 4 * steps
    pruned, callbacks = _small_pruned(end_step)
    with pytest.warns(UserWarning) as caught:
        pruned.fit(digits.x_train, digits.y_train, epochs=3, batch_size=64, verbose=0,
                   callbacks=callbacks)
    messages = [str(w.message) for w in caught if "pruning schedule" in str(w.message)]
    assert len(messages) == 1, messages
    expected = _polynomial_sparsity(steps - 1, end_step)
    assert f"target sparsity 75% at step {end_step}" in messages[0]
    assert f"this fit ends at step {steps - 1}" in messages[0]
    assert f"about {expected:.1%} sparse" in messages[0]
    # what the kernels reached agrees with the warning
    stripped = pruning.strip(pruned)
    reached = pruning.kernel_sparsity(stripped)["conv/kernel"].latent
    assert reached == pytest.approx(expected, abs=0.02)


def test_schedule_within_the_fit_does_not_warn(digits):
    steps = 2 * int(np.ceil(len(digits.x_train) / 64))
    pruned, callbacks = _small_pruned(steps - 1)
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        pruned.fit(digits.x_train, digits.y_train, epochs=2, batch_size=64, verbose=0,
                   callbacks=callbacks)
    assert not [w for w in caught if "pruning schedule" in str(w.message)]


def test_fit_of_unknown_length_warns_when_it_ends_short(digits):
    # a filtered dataset has no cardinality: Keras does not know the run's length
    data = tf.data.Dataset.from_tensor_slices((digits.x_train, digits.y_train)).batch(64)
    data = data.filter(lambda x, y: True)
    batches = int(np.ceil(len(digits.x_train) / 64))
    pruned, callbacks = _small_pruned(10 * batches)
    with pytest.warns(UserWarning, match=f"but training stopped at step {batches - 1}: "):
        pruned.fit(data, epochs=1, verbose=0, callbacks=callbacks)
