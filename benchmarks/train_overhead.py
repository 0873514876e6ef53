"""Training-step overhead of each quantizer family against float, in one run.

Reference net (input 32x32x3, CIFAR-shaped synthetic data): six 3x3 convolutions
32-32-pool-64-64-pool-128-128-pool, each followed by BatchNormalization, then a
dense head. The first convolution and the dense head stay float in every family
(the usual practice); the other five convolutions carry the family's quantizers.
All convolutions are larq ``QuantConv2D`` layers, with no quantizers for the float
baseline, so only the quantizers differ between rows.

Timing: every model is built and compiled first, and its ``train_function`` is
traced and warmed up (``--warmup`` steps, not timed). Then ``--rounds`` rounds run;
in each round every family (in a new random order) trains ``--steps`` steps with
``model.fit``, each block immediately preceded by a float block of the same length:
the float baseline is re-run interleaved, so that load changes on a shared machine
hit both sides of a ratio alike. A callback records each step's wall time and the
process's CPU time (all threads) from ``on_train_batch_begin`` to
``on_train_batch_end``; the first step of every ``fit`` call is dropped (iterator
set-up). Reported per family: the median step time over all its timed steps, and
the ratio = median over its blocks of (median family step / median step of the
float block just before it), for wall and for CPU time. On a loaded machine the CPU
ratio is the steadier one: time the process waits for a core is not in it.
Last column: the CPU time of the family's quantizers alone (forward and backward,
on the same kernels and on inputs of the same shapes, no convolutions), median of
``--isolated-repeats`` runs, and that time as a share of the float step's CPU time:
roughly what the quantizers add to a step (in the full step some of it may overlap
with other ops), free of the whole-step noise.

    python benchmarks/train_overhead.py [--batch-size 32] [--rounds 15] [--steps 4]
        [--families float,binary_larq,...]
"""

import argparse
import os
import statistics
import time

import tfq_plus  # noqa: F401  (selects Keras 2 before TensorFlow is imported)

import larq as lq
import numpy as np
import tensorflow as tf

from tfq_plus import quantizers as tq

# family -> (description, factory of (input_quantizer, kernel_quantizer, relu) per layer)
# relu: ReLU after BN for families whose activations are not quantized by a clipping
# quantizer; sign / PACT / LSQ / DoReFa / Uniform inputs are the nonlinearity.
FAMILIES = {
    "float": ("no quantizers", lambda: (None, None, True)),
    "binary_larq": (
        "larq ste_sign inputs + ste_sign kernels (weight_clip)",
        lambda: ("ste_sign", "ste_sign", False),
    ),
    "scaled_sign": (
        "ste_sign inputs + ScaledSign kernels (XNOR-Net)",
        lambda: ("ste_sign", tq.ScaledSign(), False),
    ),
    "ste_tern": ("larq SteTern kernels, float activations", lambda: (None, "ste_tern", True)),
    "ttq": ("TTQ kernels, float activations", lambda: (None, tq.TTQ(), True)),
    "po2": ("PowerOfTwo(4) kernels, float activations", lambda: (None, tq.PowerOfTwo(bits=4), True)),
    "log2": ("LogQuantizer(4, base 2) kernels", lambda: (None, tq.LogQuantizer(bits=4), True)),
    "shift": (
        "ShiftQuantizer(3 bits, 2 shifts) kernels",
        lambda: (None, tq.ShiftQuantizer(bits=3, num_shifts=2), True),
    ),
    "pact": ("PACT(4) inputs, float kernels", lambda: (tq.PACT(bits=4), None, False)),
    "lsq": (
        "LSQ(4) inputs + LSQ(4, signed) kernels",
        lambda: (tq.LSQ(bits=4), tq.LSQ(bits=4, signed=True), False),
    ),
    "uniform": (
        "Uniform(8, moving average) inputs + Uniform(8, minmax) kernels",
        lambda: (
            tq.Uniform(bits=8, symmetric=False, ranges="moving_average"),
            tq.Uniform(bits=8),
            True,
        ),
    ),
    "dorefa": (
        "larq DoReFa(4) inputs + DoReFa(4, weights) kernels",
        lambda: (tq.DoReFa(k_bit=4), tq.DoReFa(k_bit=4, mode="weights"), False),
    ),
}
# Goals from issue 2: binary and ternary families <= 1.05x float, trainable ones <= 1.15x.
GOALS = {
    "binary_larq": 1.05, "scaled_sign": 1.05, "ste_tern": 1.05, "ttq": 1.15,
    "pact": 1.15, "lsq": 1.15,
}
FILTERS = (32, 32, None, 64, 64, None, 128, 128, None)  # None: 2x2 max-pool


def build_model(family: str, num_classes: int = 10) -> tf.keras.Model:
    """The reference net with ``family``'s quantizers in convolutions 2 to 6."""
    layers = tf.keras.layers
    make = FAMILIES[family][1]
    inputs = tf.keras.Input((32, 32, 3))
    x = inputs
    first = True
    for filters in FILTERS:
        if filters is None:
            x = layers.MaxPool2D(2)(x)
            continue
        input_quantizer, kernel_quantizer, relu = (None, None, True) if first else make()
        binary_kernel = kernel_quantizer in ("ste_sign",) or isinstance(
            kernel_quantizer, tq.ScaledSign
        )
        x = lq.layers.QuantConv2D(
            filters, 3, padding="same", use_bias=False,
            input_quantizer=input_quantizer, kernel_quantizer=kernel_quantizer,
            kernel_constraint="weight_clip" if binary_kernel else None,
        )(x)
        x = layers.BatchNormalization(momentum=0.9)(x)
        if relu:
            x = layers.ReLU()(x)
        first = False
    x = layers.Flatten()(x)
    x = layers.Dense(num_classes)(x)
    outputs = layers.Activation("softmax")(x)
    return tf.keras.Model(inputs, outputs, name=f"reference_{family}")


class StepTimer(tf.keras.callbacks.Callback):
    """Wall and process CPU time of each training step of one ``fit`` call."""

    def __init__(self):
        super().__init__()
        self.wall, self.cpu = [], []
        self._start = None

    def on_train_batch_begin(self, batch, logs=None):
        self._start = (time.perf_counter(), time.process_time())

    def on_train_batch_end(self, batch, logs=None):
        self.wall.append(time.perf_counter() - self._start[0])
        self.cpu.append(time.process_time() - self._start[1])


def timed_block(model, dataset, steps: int):
    """(wall, cpu) seconds of ``steps`` steps; one extra first step is run and dropped."""
    timer = StepTimer()
    model.fit(dataset, epochs=1, steps_per_epoch=steps + 1, verbose=0, callbacks=[timer])
    return timer.wall[1:], timer.cpu[1:]


def quantizer_step(model: tf.keras.Model, batch_size: int):
    """A tf.function running forward and backward of the model's quantizers alone.

    Each quantized convolution's own quantizer layers are applied to its latent
    kernel and to a random tensor of its input's shape (at ``batch_size``), as in one
    training step; the sum of all outputs is returned with the gradients with
    respect to the kernels, the inputs and the quantizers' variables (so that
    neither the forward nor the backward pass is pruned). None if the model has no
    quantizers.
    """
    rng = np.random.RandomState(0)
    parts = []
    for layer in model.layers:
        if not isinstance(layer, lq.layers.QuantConv2D):
            continue
        if layer.input_quantizer is None and layer.kernel_quantizer is None:
            continue
        shape = (batch_size,) + tuple(layer.input_shape[1:])
        inputs = tf.constant(rng.uniform(-1.0, 1.0, size=shape).astype(np.float32))
        # With a kernel quantizer, larq wraps the kernel in a QuantizedVariable.
        kernel = getattr(layer.kernel, "latent_variable", layer.kernel)
        parts.append((layer.input_quantizer, layer.kernel_quantizer, kernel, inputs))
    if not parts:
        return None
    sources = [kernel for _, _, kernel, _ in parts]
    sources += [inputs for *_, inputs in parts]
    for input_quantizer, kernel_quantizer, _, _ in parts:
        for quantizer in (input_quantizer, kernel_quantizer):
            if quantizer is not None:
                sources += quantizer.trainable_weights

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            tape.watch([inputs for *_, inputs in parts])
            outputs = []
            for input_quantizer, kernel_quantizer, kernel, inputs in parts:
                if kernel_quantizer is not None:
                    latent = tf.convert_to_tensor(kernel)
                    outputs.append(tf.reduce_sum(kernel_quantizer(latent, training=True)))
                if input_quantizer is not None:
                    outputs.append(tf.reduce_sum(input_quantizer(inputs, training=True)))
            total = tf.add_n(outputs)
        return total, tape.gradient(total, sources, unconnected_gradients="zero")

    return step


def synthetic_dataset(batch_size: int, seed: int = 0) -> tf.data.Dataset:
    """CIFAR-shaped random data: 32x32x3 in [0, 1], 10 classes, repeated forever."""
    rng = np.random.RandomState(seed)
    x = rng.uniform(size=(8 * batch_size, 32, 32, 3)).astype(np.float32)
    y = rng.randint(0, 10, size=8 * batch_size).astype(np.int64)
    return tf.data.Dataset.from_tensor_slices((x, y)).batch(batch_size).repeat().prefetch(2)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--steps", type=int, default=4, help="timed steps per block")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--isolated-repeats", type=int, default=30,
                        help="timed runs of each family's quantizers alone")
    parser.add_argument("--families", default=",".join(FAMILIES))
    args = parser.parse_args(argv)
    families = [name for name in args.families.split(",") if name]
    unknown = sorted(set(families) - set(FAMILIES))
    if unknown:
        parser.error(f"unknown families {unknown}; known: {sorted(FAMILIES)}")
    if "float" not in families:
        families.insert(0, "float")

    tf.keras.utils.set_random_seed(0)
    dataset = synthetic_dataset(args.batch_size)
    models = {}
    for family in families:
        model = build_model(family)
        model.compile(
            optimizer=tf.keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy"
        )
        started = time.perf_counter()
        model.fit(dataset, epochs=1, steps_per_epoch=args.warmup, verbose=0)
        print(f"built and warmed up {family:12s} in {time.perf_counter() - started:5.1f} s",
              flush=True)
        models[family] = model

    order = [family for family in families if family != "float"]
    # The quantizers alone, in CPU time (steady under load): how much of a step they
    # can account for, independently of the noise in the whole-step timings.
    isolated = {family: quantizer_step(models[family], args.batch_size) for family in order}
    isolated_cpu = {family: [] for family in order}
    for family in order:
        isolated[family]()  # trace
    for _ in range(args.isolated_repeats):
        for family in order:
            started = time.process_time()
            isolated[family]()
            isolated_cpu[family].append(time.process_time() - started)

    wall = {family: [] for family in families}
    cpu = {family: [] for family in families}
    ratios = {family: [] for family in families if family != "float"}
    cpu_ratios = {family: [] for family in families if family != "float"}
    rng = np.random.RandomState(1)
    for round_index in range(args.rounds):
        # A new order every round, so that no family always follows the same one.
        for family in rng.permutation(order):
            float_wall, float_cpu = timed_block(models["float"], dataset, args.steps)
            family_wall, family_cpu = timed_block(models[family], dataset, args.steps)
            wall["float"] += float_wall
            cpu["float"] += float_cpu
            wall[family] += family_wall
            cpu[family] += family_cpu
            ratios[family].append(statistics.median(family_wall) / statistics.median(float_wall))
            cpu_ratios[family].append(statistics.median(family_cpu) / statistics.median(float_cpu))
        print(f"round {round_index + 1}/{args.rounds} done", flush=True)

    load = os.getloadavg()
    print()
    print(f"Training-step time, reference conv net 32x32x3, batch {args.batch_size}, "
          f"{args.rounds} rounds x {args.steps} steps per family "
          f"(load average at the end {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f}, "
          f"{os.cpu_count()} CPUs)")
    print()
    float_cpu_ms = 1000 * statistics.median(cpu["float"])
    print("| family | quantizers in conv 2-6 | median ms/step | ratio vs float | "
          "median CPU ms/step | CPU ratio | quantizers alone, CPU ms/step | goal |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | --- |")
    print(f"| float | {FAMILIES['float'][0]} | {1000 * statistics.median(wall['float']):.1f} | "
          f"1.00 | {float_cpu_ms:.1f} | 1.00 | 0 | |")
    misses = []
    for family in order:
        ratio = statistics.median(ratios[family])
        goal = GOALS.get(family)
        verdict = ""
        if goal is not None:
            met = ratio <= goal
            verdict = f"<= {goal:.2f}x: {'met' if met else 'MISSED'}"
            if not met:
                misses.append(family)
        print(f"| {family} | {FAMILIES[family][0]} | "
              f"{1000 * statistics.median(wall[family]):.1f} | {ratio:.2f} | "
              f"{1000 * statistics.median(cpu[family]):.1f} | "
              f"{statistics.median(cpu_ratios[family]):.2f} | "
              f"{1000 * statistics.median(isolated_cpu[family]):.1f} "
              f"(+{100 * statistics.median(isolated_cpu[family]) * 1000 / float_cpu_ms:.0f} %) | "
              f"{verdict} |")
    print()
    for family in order:
        quartiles = np.percentile(ratios[family], [25, 75])
        print(f"{family}: wall ratio per block, quartiles {quartiles[0]:.2f} .. {quartiles[1]:.2f}")
    if misses:
        print("goal missed: " + ", ".join(misses))


if __name__ == "__main__":
    main()
