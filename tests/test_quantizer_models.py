"""Every quantizer inside Keras models: config round trips, saving and reloading,
training on real data, larq's summary, and MirroredStrategy.

The per-class tests (forward values, gradients, argument checks) live in each
quantizer's own test file; here each quantizer is used the way users use it, in
larq's ``QuantConv2D`` / ``QuantDepthwiseConv2D`` / ``QuantDense`` and as a standalone
layer. Weight quantizers are ``kernel_quantizer`` / ``depthwise_quantizer``,
activation quantizers ``input_quantizer`` and a standalone layer.

Two variants per quantizer: ``alias`` (string aliases with default arguments, as in
``kernel_quantizer="po2"``) and ``configured`` (instances with non-default
arguments, per channel where the class supports it), so that a reload that drops an
argument or falls back to a default is caught.
"""

import math
from typing import Callable, NamedTuple, Optional

import larq as lq
import numpy as np
import pytest
import tensorflow as tf

from tfq_plus import quantizers as tq


class Case(NamedTuple):
    """One quantizer family in a model.

    kernel / inputs: the alias (``alias`` variant) or None where the family is not
    used in that role. configured_kernel(axis) / configured_inputs(): the
    ``configured`` variant; ``axis`` is the channel axis of the kernel (-1 for
    Conv2D/Dense, -2 for a depthwise kernel, whose channels are its third axis).
    relu: put a ReLU before the quantized layers. Sign-type input quantizers are the
    nonlinearity themselves (after a ReLU every sign would be +1).
    clip_weights: larq's ``weight_clip`` constraint on the latent kernels, for
    quantizers whose straight-through window is |w| <= 1: outside it a weight gets no
    gradient and stays there ("starved").
    """

    id: str
    kernel: Optional[str]
    inputs: Optional[str]
    configured_kernel: Optional[Callable]
    configured_inputs: Optional[Callable]
    relu: bool
    clip_weights: bool = False


CASES = [
    Case("ste_sign", "ste_sign", "ste_sign",
         lambda axis: tq.SteSign(clip_value=1.5), lambda: tq.SteSign(clip_value=1.5), False, True),
    Case("approx_sign", "approx_sign", "approx_sign",
         lambda axis: tq.ApproxSign(), lambda: tq.ApproxSign(), False, True),
    Case("swish_sign", "swish_sign", "swish_sign",
         lambda axis: tq.SwishSign(beta=3.0), lambda: tq.SwishSign(beta=3.0), False, True),
    Case("ste_tern", "ste_tern", None,
         lambda axis: tq.SteTern(threshold_value=0.03, clip_value=1.5), None, True, True),
    Case("dorefa", None, "dorefa_quantizer",
         lambda axis: tq.DoReFa(k_bit=3, mode="weights"), lambda: tq.DoReFa(k_bit=3), False),
    Case("scaled_sign", "scaled_sign", None,
         lambda axis: tq.ScaledSign(clip_value=2.0, per_channel=True, axis=axis), None, True,
         True),
    Case("ttq", "ttq", None,
         lambda axis: tq.TTQ(threshold=0.1, scale_init=0.5), None, True),
    Case("po2", "po2", None,
         lambda axis: tq.PowerOfTwo(bits=3, per_channel=True, axis=axis), None, True),
    Case("log2", "log2", None,
         lambda axis: tq.LogQuantizer(bits=5, base="2"),
         lambda: tq.LogQuantizer(bits=4, base="2", fsr=2), True),
    Case("log_sqrt2", "log_sqrt2", None,
         lambda axis: tq.LogQuantizer(bits=5, base="sqrt2", fsr=-1), None, True),
    Case("shift", "shift", None,
         lambda axis: tq.ShiftQuantizer(bits=4, num_shifts=3, per_channel=True, axis=axis),
         None, True),
    Case("pact", None, "pact",
         None, lambda: tq.PACT(bits=3, alpha_init=4.0, alpha_regularization=1e-3), False),
    Case("lsq", None, "lsq",
         lambda axis: tq.LSQ(bits=3, signed=True, per_channel=True, axis=axis),
         lambda: tq.LSQ(bits=3), False),
    Case("uniform", "uniform_quantizer", None,
         lambda axis: tq.Uniform(bits=4, symmetric=True, per_channel=True, axis=axis),
         lambda: tq.Uniform(bits=6, symmetric=False, ranges="moving_average", momentum=0.9),
         True),
    # INQ (tfq_plus.callbacks): float until INQSchedule freezes entries; _move_state
    # freezes half of each kernel so that its mask and frozen values are checked.
    Case("inq", "inq", None,
         lambda axis: tq.ALIASES["inq"](base=tq.PowerOfTwo(bits=3, per_channel=True, axis=axis)),
         None, True),
]
CASE_IDS = [case.id for case in CASES]
VARIANTS = ["alias", "configured"]


def test_every_registered_alias_is_covered():
    # A quantizer added to the package without a case here fails this test.
    covered = {case.kernel for case in CASES} | {case.inputs for case in CASES}
    # "uniform" is Uniform's short name for tfq_plus.quantizers.get only (not a Keras
    # custom object: see test_uniform_short_alias_is_tfq_plus_get_only)
    assert set(tq.ALIASES) - {"uniform"} <= covered, sorted(set(tq.ALIASES) - covered)


def _quantizers(case: Case, variant: str):
    """(kernel factory taking the channel axis, input factory), either may be None."""
    if variant == "alias":
        kernel = case.kernel and (lambda axis: case.kernel)
        inputs = case.inputs and (lambda: case.inputs)
        return kernel, inputs
    return case.configured_kernel, case.configured_inputs


def _standalone(identifier):
    return tq.get(identifier) if isinstance(identifier, str) else identifier


def build_model(case: Case, variant: str, input_shape, num_classes, filters=(8, 16), seed=0):
    """A small conv net with the case's quantizers in every quantized role.

    Float stem (the usual practice: the first layer sees raw pixels), then a
    QuantConv2D, a QuantDepthwiseConv2D and a QuantDense classifier; an activation
    quantizer also stands alone as a layer after the stem.
    """
    tf.keras.utils.set_random_seed(seed)
    kernel, inputs_quantizer = _quantizers(case, variant)
    kernel_for = kernel or (lambda axis: None)
    input_for = inputs_quantizer or (lambda: None)
    layers = tf.keras.layers
    pool = input_shape[0] >= 16

    constraint = "weight_clip" if case.clip_weights and kernel else None

    def nonlinearity(x):
        return layers.ReLU()(x) if case.relu else x

    inputs = tf.keras.Input(input_shape)
    x = layers.Conv2D(filters[0], 3, padding="same", use_bias=False)(inputs)
    if pool:
        x = layers.MaxPool2D(2)(x)
    x = layers.BatchNormalization(momentum=0.9)(x)
    x = nonlinearity(x)
    if inputs_quantizer is not None:
        x = _standalone(input_for())(x)
    x = lq.layers.QuantConv2D(
        filters[1], 3, padding="same", use_bias=False,
        input_quantizer=input_for(), kernel_quantizer=kernel_for(-1),
        kernel_constraint=constraint,
    )(x)
    x = layers.MaxPool2D(2)(x)
    x = layers.BatchNormalization(momentum=0.9)(x)
    x = nonlinearity(x)
    x = lq.layers.QuantDepthwiseConv2D(
        3, padding="same", use_bias=False,
        input_quantizer=input_for(), depthwise_quantizer=kernel_for(-2),
        depthwise_constraint=constraint,
    )(x)
    x = layers.BatchNormalization(momentum=0.9)(x)
    x = nonlinearity(x)
    if pool:
        x = layers.MaxPool2D(2)(x)
    x = layers.Flatten()(x)
    x = lq.layers.QuantDense(
        num_classes, input_quantizer=input_for(), kernel_quantizer=kernel_for(-1),
        kernel_constraint=constraint,
    )(x)
    # Binary/ternary logits are sums of hundreds of +-1 terms: BN brings them to a
    # scale softmax can learn from (the usual BNN classifier head).
    x = layers.BatchNormalization(momentum=0.9)(x)
    outputs = layers.Activation("softmax")(x)
    return tf.keras.Model(inputs, outputs, name=f"{case.id}_{variant}")


def _quantizer_attributes(layer):
    return [
        (name, getattr(layer, name))
        for name in ("input_quantizer", "kernel_quantizer", "depthwise_quantizer")
        if getattr(layer, name, None) is not None
    ]


def _all_quantizers(model):
    """(layer name, role, quantizer) for every quantizer in the model."""
    found = []
    for layer in model.layers:
        if isinstance(layer, lq.quantizers.Quantizer) or type(layer) in tq.ALIASES.values():
            found.append((layer.name, "standalone", layer))
        for role, quantizer in _quantizer_attributes(layer):
            found.append((layer.name, role, quantizer))
    return found


# --------------------------------------------------------------------------------------
# Config round trips
# --------------------------------------------------------------------------------------


def _configured_instances(case):
    made = []
    if case.configured_kernel:
        made += [case.configured_kernel(-1), case.configured_kernel(-2)]
    if case.configured_inputs:
        made.append(case.configured_inputs())
    for alias in (case.kernel, case.inputs):
        if alias:
            made.append(tq.get(alias))
    return made


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_get_config_round_trip(case):
    for quantizer in _configured_instances(case):
        config = quantizer.get_config()
        # Directly through the class ...
        again = type(quantizer).from_config(config)
        assert again.get_config() == config
        # ... and through the serialized form that larq layers store, resolved by the
        # registered class name alone (no custom_objects).
        serialized = tq.serialize(quantizer)
        assert serialized["class_name"] == type(quantizer).__name__
        revived = tf.keras.utils.deserialize_keras_object(serialized)
        assert type(revived) is type(quantizer)
        assert revived.get_config() == config
        assert type(lq.quantizers.get(serialized)) is type(quantizer)
        assert getattr(revived, "precision", None) == getattr(quantizer, "precision", None)


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_alias_resolves_in_larq_layers(case):
    for alias, kwargs in ((case.kernel, "kernel_quantizer"), (case.inputs, "input_quantizer")):
        if alias is None:
            continue
        expected = tq.ALIASES[alias]
        layer = lq.layers.QuantDense(3, **{kwargs: alias})
        assert type(getattr(layer, kwargs)) is expected
        assert type(lq.quantizers.get(alias)) is expected
        assert type(tq.get(alias)) is expected


# --------------------------------------------------------------------------------------
# Saving and reloading
# --------------------------------------------------------------------------------------

# SavedModel without traced functions: the reload goes through the Keras config and
# the registered classes, as with traces, at a tenth of the cost. A model with the
# stateful quantizers is saved with traces below (test_saved_model_with_traces).
SAVE_FORMATS = {
    "h5": ("model.h5", dict(save_format="h5")),
    "tf": ("saved_model", dict(save_format="tf", save_traces=False)),
    "keras": ("model.keras", dict()),
}


def _move_state(model, rng):
    """Move every piece of quantizer state off its initial value: one training-mode
    call (LSQ's first-batch step, moving-average ranges, BN statistics), every
    trainable variable (PACT alpha, LSQ step, TTQ scales, kernels) scaled by a random
    factor per element, and half of every INQ kernel frozen."""
    model(rng.normal(size=(16,) + model.input_shape[1:]).astype(np.float32), training=True)
    for variable in model.trainable_weights:
        factor = rng.uniform(0.5, 1.5, size=variable.shape).astype(np.float32)
        variable.assign(variable.numpy() * factor)
    for layer in model.layers:
        for role, quantizer in _quantizer_attributes(layer):
            if isinstance(quantizer, tq.ALIASES["inq"]):
                kernel = layer.depthwise_kernel if role == "depthwise_quantizer" else layer.kernel
                latent = kernel.latent_variable.numpy()
                quantizer.freeze(latent, rng.uniform(size=latent.shape) < 0.5)


def _state(model):
    """(variable name without its layer scope, value) in ``model.weights`` order.

    The scope is dropped because tf_keras' ``.keras`` loader creates larq layers'
    variables without it (``kernel:0`` instead of ``quant_conv2d/kernel:0``).
    """
    return [(w.name.split("/")[-1], np.array(w.numpy())) for w in model.weights]


def _assert_same_model(copy, model, state, probe, expected, label):
    """Same quantizers (class and config), same variables (``state`` of ``model``
    when saved), bit-identical outputs (``expected`` on ``probe`` when saved)."""
    original_quantizers = _all_quantizers(model)
    copy_quantizers = _all_quantizers(copy)
    assert [type(q) for _, _, q in copy_quantizers] == [
        type(q) for _, _, q in original_quantizers
    ], label
    for (_, role, original_q), (_, _, copy_q) in zip(original_quantizers, copy_quantizers):
        unnamed = lambda config: {**config, "name": None}  # noqa: E731
        assert unnamed(copy_q.get_config()) == unnamed(original_q.get_config()), (label, role)
    copy_state = _state(copy)
    assert [name for name, _ in copy_state] == [name for name, _ in state], label
    for (name, value), (_, copy_value) in zip(state, copy_state):
        np.testing.assert_array_equal(copy_value, value, err_msg=f"{label}: {name}")
    actual = copy(probe, training=False).numpy()
    assert np.array_equal(actual, expected), (
        f"{label}: predictions differ by up to {np.max(np.abs(actual - expected))}"
    )


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_save_and_reload(case, variant, tmp_path):
    if _quantizers(case, variant) == (None, None):
        pytest.skip(f"{case.id} has no {variant} quantizers")
    rng = np.random.RandomState(0)
    model = build_model(case, variant, (8, 8, 3), 5, filters=(4, 6))
    _move_state(model, rng)
    probe = rng.normal(size=(16, 8, 8, 3)).astype(np.float32)
    expected = model(probe, training=False).numpy()
    state = _state(model)

    reloaded = {}
    for fmt, (name, options) in SAVE_FORMATS.items():
        path = str(tmp_path / name)
        model.save(path, **options)
        # No custom_objects: class-name registration must be enough.
        reloaded[fmt] = tf.keras.models.load_model(path)

    # Training-mode output from the saved state, computed once because a training
    # call moves BN statistics and moving-average ranges: a reloaded model that
    # re-initialises LSQ's step or a moving-average range differs here.
    batch = rng.normal(size=(16, 8, 8, 3)).astype(np.float32)
    expected_training = model(batch, training=True).numpy()

    for fmt, copy in reloaded.items():
        _assert_same_model(copy, model, state, probe, expected, fmt)
        actual_training = copy(batch, training=True).numpy()
        assert np.array_equal(actual_training, expected_training), (
            f"{fmt}: training-mode outputs differ by up to "
            f"{np.max(np.abs(actual_training - expected_training))}"
        )


# Quantizers with variables (read inside custom gradients, assigned under tf.cond):
# the ones whose tracing into a SavedModel can go wrong beyond what the per-case
# test checks. Tracing costs ~1 s per quantized layer, so only these are traced.
STATEFUL_CASES = ("ttq", "pact", "lsq", "uniform")


def _stateful_quantizer_model():
    """One model with the stateful cases' configured quantizers, a branch each."""
    tf.keras.utils.set_random_seed(0)
    inputs = tf.keras.Input((6, 6, 2))
    branches = []
    for case in CASES:
        if case.id not in STATEFUL_CASES:
            continue
        x = inputs
        if case.configured_inputs:
            x = case.configured_inputs()(x)  # standalone
        kernel = case.configured_kernel or (lambda axis: None)
        x = lq.layers.QuantConv2D(
            3, 3, input_quantizer=case.configured_inputs and case.configured_inputs(),
            kernel_quantizer=kernel(-1), name=f"conv_{case.id}",
        )(x)
        branches.append(tf.keras.layers.Flatten()(x))
    outputs = tf.keras.layers.Concatenate()(branches)
    return tf.keras.Model(inputs, outputs, name="stateful_quantizers")


def test_saved_model_with_traces(tmp_path):
    # The default SavedModel (with traced call functions, so that it also serves
    # without the Python classes) must trace the quantizers' calls, custom
    # gradients and first-call initialisation included, and reload through Keras
    # to the same model.
    rng = np.random.RandomState(0)
    model = _stateful_quantizer_model()
    _move_state(model, rng)
    probe = rng.normal(size=(4, 6, 6, 2)).astype(np.float32)
    expected = model(probe, training=False).numpy()
    path = str(tmp_path / "saved_model")
    model.save(path, save_format="tf")
    copy = tf.keras.models.load_model(path)
    _assert_same_model(copy, model, _state(model), probe, expected, "tf with traces")
    # The traced function alone (no Keras, no tfq_plus classes) computes the same up
    # to float rounding: it runs as a graph that TensorFlow's optimizer may rewrite
    # (e.g. fold x * (a / b) differently), while `expected` was computed eagerly;
    # outputs are sums of O(10) terms of magnitude <= ~50, so one ulp of the
    # largest terms is ~4e-6.
    served = tf.saved_model.load(path)
    actual = served(tf.constant(probe), training=False).numpy()
    np.testing.assert_allclose(actual, expected, rtol=1e-6, atol=1e-5)


# --------------------------------------------------------------------------------------
# Training on real data
# --------------------------------------------------------------------------------------

# (training examples, epochs) per dataset; batch 32, Adam 1e-2, filters (8, 16).
TRAINING = {"mnist": (2000, 2), "digits": (None, 6)}
# Test accuracy after that training (first 1000 test images), measured on this
# machine with TF 2.21 (CPU), seed 0:
#   mnist:  ste_sign .675, approx_sign .663, swish_sign .558; ste_tern .872,
#           dorefa .840, scaled_sign .817, ttq .890, po2 .910, log2 .916,
#           log_sqrt2 .907, shift .923, pact .916, lsq .923, uniform .927;
#           configured: dorefa (3-bit weights+activations) .810, lsq (signed
#           per-channel weights) .874, uniform (moving-average activations) .888.
#   digits: (6 epochs, all 1438 examples) see MEASURED_DIGITS below.
# Binary weights *and* activations in so small a net learn slowest; the thresholds
# leave a margin for other CPUs / thread schedules and are far above chance (10%).
MIN_ACCURACY = {
    "mnist": {"binary": 0.45, "other": 0.70},
    "digits": {"binary": 0.60, "other": 0.85},
}
BINARY_ACTIVATIONS = {"ste_sign", "approx_sign", "swish_sign"}
TRAINING_RUNS = [(case, "alias") for case in CASES] + [
    (case, "configured") for case in CASES if case.id in ("dorefa", "lsq", "uniform")
]


@pytest.mark.parametrize(
    "case, variant", TRAINING_RUNS, ids=[f"{c.id}-{v}" for c, v in TRAINING_RUNS]
)
def test_trains_on_real_data(case, variant, dataset):
    examples, epochs = TRAINING[dataset.name]
    x_train, y_train = dataset.x_train[:examples], dataset.y_train[:examples]
    x_test, y_test = dataset.x_test[:1000], dataset.y_test[:1000]
    model = build_model(case, variant, dataset.input_shape, dataset.num_classes)
    model.compile(
        optimizer=tf.keras.optimizers.Adam(1e-2), loss="sparse_categorical_crossentropy"
    )
    history = model.fit(x_train, y_train, batch_size=32, epochs=epochs, verbose=0)
    losses = history.history["loss"]
    assert np.all(np.isfinite(losses)) and losses[-1] < losses[0], losses
    predicted = np.argmax(model(x_test, training=False).numpy(), axis=1)
    accuracy = float(np.mean(predicted == y_test))
    family = "binary" if case.id in BINARY_ACTIVATIONS else "other"
    minimum = MIN_ACCURACY[dataset.name][family]
    assert accuracy >= minimum, (
        f"{case.id} ({variant}) on {dataset.name}: test accuracy {accuracy:.3f} < {minimum}"
    )


# --------------------------------------------------------------------------------------
# larq.models.summary
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_larq_summary_reports_precision(case, variant):
    if _quantizers(case, variant) == (None, None):
        pytest.skip(f"{case.id} has no {variant} quantizers")
    model = build_model(case, variant, (8, 8, 1), 10, filters=(4, 6))
    lines = []
    lq.models.summary(model, print_fn=lines.append)
    text = "\n".join(lines)
    profile = lq.models.ModelProfile(model)
    checked = 0
    for layer, layer_profile in zip(model.layers, profile.layer_profiles):
        for role, quantizer in _quantizer_attributes(layer):
            assert isinstance(quantizer.precision, int), (layer.name, role)
            if role == "input_quantizer":
                assert layer_profile.input_precision == quantizer.precision
            else:
                kernel = layer.depthwise_kernel if role == "depthwise_quantizer" else layer.kernel
                bitwidths = [
                    p.bitwidth for p in layer_profile.weight_profiles if p._weight is kernel
                ]
                assert bitwidths == [quantizer.precision], (layer.name, role, bitwidths)
                # The table has a column for this weight precision.
                assert f"{quantizer.precision}-bit" in text
            checked += 1
    assert checked >= 3


# --------------------------------------------------------------------------------------
# tf.distribute.MirroredStrategy
# --------------------------------------------------------------------------------------


def _trainable_quantizer_model(num_classes, input_shape):
    """PACT, LSQ (activations and signed per-channel weights) and TTQ, all trained.

    No BatchNormalization: under MirroredStrategy each replica normalises with its
    own half-batch statistics, which legitimately differs from one device."""
    layers = tf.keras.layers
    inputs = tf.keras.Input(input_shape)
    x = layers.Conv2D(8, 3, strides=2, padding="same")(inputs)
    x = tq.PACT(bits=4, alpha_init=0.5)(x)
    x = lq.layers.QuantConv2D(
        16, 3, strides=2, padding="same",
        input_quantizer=tq.LSQ(bits=4), kernel_quantizer=tq.TTQ(threshold=0.05),
    )(x)
    x = layers.Flatten()(x)
    x = lq.layers.QuantDense(
        num_classes, input_quantizer=tq.PACT(bits=3, alpha_init=3.0),
        kernel_quantizer=tq.LSQ(bits=4, signed=True, per_channel=True),
    )(x)
    outputs = layers.Activation("softmax")(x)
    return tf.keras.Model(inputs, outputs)


def _quantizer_variables(model):
    """Trainable quantizer variables, keyed by position (layer names differ between
    two models built in one session)."""
    return {
        f"{index}:{type(quantizer).__name__}:{role}:{v.name.split('/')[-1]}": v
        for index, (_, role, quantizer) in enumerate(_all_quantizers(model))
        for v in quantizer.trainable_weights
    }


def _fit_losses(strategy, build, x, y, epochs, batch, learning_rate):
    tf.keras.utils.set_random_seed(0)
    with strategy.scope():
        model = build()
        model.compile(
            optimizer=tf.keras.optimizers.SGD(learning_rate, momentum=0.9),
            loss="sparse_categorical_crossentropy",
        )
    initial = {k: np.array(v.numpy()) for k, v in _quantizer_variables(model).items()}
    history = model.fit(x, y, batch_size=batch, epochs=epochs, shuffle=False, verbose=0)
    return model, initial, np.array(history.history["loss"])


def test_mirrored_strategy_matches_single_device(dataset, logical_cpus, mirrored_strategy):
    # Same seed (same initial weights), same data in the same order, same global
    # batch (32 examples per replica). Per-replica gradients are summed across
    # replicas, so every update equals the single-device one up to float rounding.
    # But quantized training amplifies rounding: oneDNN sums a convolution over a
    # 32-example batch in another order than over 64 examples, a pre-activation one
    # ulp off zero switches PACT's gradient window, and the trajectories drift apart.
    # Measured on this model (MNIST, 3 epochs): per-epoch losses within 5e-4, 9e-3,
    # 1.3e-2 relative of single-device training. Tolerance: 5e-2. For comparison,
    # gradients scaled by 2 or 1/2 (a replica gradient counted twice or dropped)
    # change the losses by 3e-2 to 6e-2 in epoch 1 and ~0.3 in epochs 2 and 3.
    examples, epochs, batch, learning_rate = 512, 3, 64, 0.01
    x, y = dataset.x_train[:examples], dataset.y_train[:examples]

    def build():
        return _trainable_quantizer_model(dataset.num_classes, dataset.input_shape)

    single, _, single_losses = _fit_losses(
        tf.distribute.OneDeviceStrategy(logical_cpus[0]), build, x, y, epochs, batch,
        learning_rate,
    )
    mirrored, initial, mirrored_losses = _fit_losses(
        mirrored_strategy, build, x, y, epochs, batch, learning_rate
    )
    # Training worked at all: the loss fell well below chance level (ln 10 = 2.30).
    assert single_losses[-1] < 0.5 * math.log(dataset.num_classes), single_losses
    np.testing.assert_allclose(mirrored_losses, single_losses, rtol=5e-2)

    mirrored_vars = _quantizer_variables(mirrored)
    # PACT alpha x2, LSQ step x2, TTQ positive and negative scales.
    assert len(mirrored_vars) == 6, sorted(mirrored_vars)
    for name, variable in mirrored_vars.items():
        replicas = [np.array(value.numpy()) for value in variable.values]
        assert len(replicas) == 2, name
        np.testing.assert_array_equal(replicas[0], replicas[1], err_msg=name)
        assert not np.array_equal(replicas[0], initial[name]), f"{name} was not trained"


def test_mirrored_strategy_lsq_initialises_from_the_global_batch(logical_cpus, mirrored_strategy):
    # LSQ sets its step from the first training batch: 2 mean|x| / sqrt(Q_P). Under
    # MirroredStrategy the first batch is the global batch, so the first step's
    # forward pass must use the same step as on one device, not each replica's
    # half-batch statistic (that would also disagree with the stored, averaged step).
    # Made exact here: inputs on the 1/32 grid and 32 x 64 values per replica (a
    # power of two), so the whole-batch mean and the mean of the two half-batch means
    # are computed without rounding; no quantizer sits after the float Dense layer,
    # so its batch-size-dependent rounding (~1e-7) is not amplified. Measured: the
    # first-step losses agree to 1e-7 relative when the forward pass uses the
    # averaged step, and differ by 9e-3 when each replica uses its own half-batch
    # statistic. Tolerance: 1e-6.
    rng = np.random.RandomState(0)
    x = (rng.randint(0, 32, size=(64, 64)) / 32).astype(np.float32)
    y = rng.randint(0, 10, size=64)

    def build():
        inputs = tf.keras.Input((64,))
        hidden = tq.LSQ(bits=4)(inputs)
        hidden = lq.layers.QuantDense(
            10, kernel_quantizer=tq.LSQ(bits=4, signed=True, per_channel=True)
        )(hidden)
        return tf.keras.Model(inputs, tf.keras.layers.Activation("softmax")(hidden))

    single, _, single_loss = _fit_losses(
        tf.distribute.OneDeviceStrategy(logical_cpus[0]), build, x, y, 1, 64, 0.05
    )
    mirrored, _, mirrored_loss = _fit_losses(mirrored_strategy, build, x, y, 1, 64, 0.05)
    np.testing.assert_allclose(mirrored_loss, single_loss, rtol=1e-6)
    for single_w, mirrored_w in zip(single.weights, mirrored.weights):
        expected = single_w.numpy()
        if expected.dtype == bool:  # LSQ's `initialized` flag
            np.testing.assert_array_equal(mirrored_w.numpy(), expected)
            continue
        np.testing.assert_allclose(
            mirrored_w.numpy(), expected, rtol=1e-5, atol=1e-7, err_msg=single_w.name
        )
