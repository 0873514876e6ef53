"""MNIST test accuracy of one small CNN under each tfq_plus training recipe.

    python benchmarks/accuracy.py                   # full run (see "Runtime" below)
    python benchmarks/accuracy.py --quick           # smoke run: 4096 images, 2 epochs a row
    python benchmarks/accuracy.py --only float,lsq4 # selected rows (float always comes first)
    python benchmarks/accuracy.py --markdown        # the table as markdown (for the README)

Data: MNIST from ``TFQ_PLUS_DATA_DIR`` (``tfq_plus.datasets.load("mnist")``), 60000
training and 10000 test images; the test set is used once per row, after training
(no early stopping, no model selection on it).

The network (~95k weights), the same for every row:

    stem  Conv2D 32 3x3 -> BN -> act -> MaxPool   28x28 -> 14x14   (always float)
    conv2 Conv2D 64 3x3 -> BN -> act -> MaxPool   14x14 -> 7x7
    conv3 Conv2D 64 3x3 -> BN -> act -> MaxPool   7x7   -> 3x3
    fc1   Dense 64      -> BN -> act
    fc2   Dense 10      -> BN                      logits

"Quantized" means conv2, conv3, fc1 and fc2 (larq ``Quant*`` layers): their kernels,
and with an activation quantizer their inputs; the stem stays float (it reads the
image), as in the XNOR-Net, TTQ, PACT and LSQ papers' first layers.

Recipes (Adam, cosine learning-rate decay to 0, batch 128, no augmentation; every
quantized row starts from the trained float model's weights):

- float: ReLU, 10 epochs, lr 2e-3.
- binary: ``ste_sign`` inputs and kernels (``weight_clip`` constraint, padding with +1)
  in conv2, conv3 and fc1; fc2, the classifier, reads binary inputs with a float
  kernel (XNOR-Net and Bi-Real Net keep the last layer's weights at higher precision,
  as the stem's); no ReLU (the sign is the activation), 10 epochs, lr 1e-3.
- binary + KD: the same student trained by ``tfq_plus.distillation.Distiller`` from
  the float model (T = 4, alpha = 0.7), same epochs, lr and seed.
- TWN: larq ``SteTern(ternary_weight_networks=True)`` kernels; TTQ: ``TTQ()`` kernels;
  float ReLU activations; 4 epochs, lr 5e-4.
- INQ 4-/3-bit: ``INQQuantizer(PowerOfTwo(bits))`` kernels with
  ``tfq_plus.callbacks.INQSchedule`` freezing 50 / 75 / 87.5 / 100 % of each kernel
  at 0 / 1/4 / 1/2 / 3/4 of the steps (largest weights first, the paper's
  accumulated portions), float activations; 6 epochs, lr 5e-4.
- PACT k-bit: ``PACT(bits=k)`` on the inputs (it is the activation, alpha from 4),
  larq ``DoReFa(k_bit=k, mode="weights")`` kernels (the PACT paper's weights);
  LSQ k-bit: ``LSQ(bits=k)`` unsigned inputs after ReLU, ``LSQ(bits=k, signed=True)``
  kernels; k = 4 and 2; 6 epochs, lr 5e-4.
- pruned 75 % + 4-bit: ``tfq_plus.pruning.prune_and_quantize`` with
  ``PowerOfTwo(bits=4)`` kernels and TFMOT's polynomial schedule reaching 75 % at 60 %
  of the steps (stem excluded), float activations; 6 epochs, lr 5e-4; the table
  notes the fraction of zeros measured in the stripped model's quantized kernels.

Goals (issue 3): float >= 99.2 %; INQ 4-bit, LSQ 4-bit and PACT 4-bit within 0.3
points of float; binary >= 98.5 %; binary with KD above binary without.

Runtime: the full run trains 70 epochs of 469 steps (10 of them the float model),
about 120 ms a step on two cores. A split run shares one float model between
processes: the first trains and saves it, the others load it, and ``--merge``
prints the combined table (the README's table was made this way):

    python benchmarks/accuracy.py --only float --float-weights out/float
    python benchmarks/accuracy.py --threads 1 --float-weights out/float \\
        --only binary,binary_kd,twn,ttq,pruned --save-results out/a.json &
    python benchmarks/accuracy.py --threads 1 --float-weights out/float \\
        --only inq4,inq3,pact4,pact2,lsq4,lsq2 --save-results out/b.json &
    wait; python benchmarks/accuracy.py --merge out/a.json out/b.json --markdown

``--quick`` times the steps of every row (median step after the first two) and
prints the full run's estimated training time from them.
"""

import argparse
import json
import math
import os
import sys
import time
import dataclasses
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Tuple

import tfq_plus  # noqa: F401  (selects Keras 2 before TensorFlow is imported)

import larq as lq
import numpy as np
import tensorflow as tf

from tfq_plus import pruning
from tfq_plus import quantizers as tq
from tfq_plus.callbacks import INQQuantizer, INQSchedule
from tfq_plus.distillation import Distiller

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "examples"))
from small_cnn import copy_float_weights  # noqa: E402  (the examples' recipe: float weights into latents)

BATCH = 128
QUICK_TRAIN, QUICK_TEST, QUICK_EPOCHS = 4096, 1000, 2
QUANTIZED_LAYERS = ("conv2", "conv3", "fc1", "fc2")


# -- the network -------------------------------------------------------------------


@dataclass
class Quantization:
    """How the layers after the stem are quantized (factories: a fresh quantizer per
    layer, since trained quantizers hold variables)."""

    kernel: Optional[Callable[[], object]] = None
    inputs: Optional[Callable[[], object]] = None
    activation: str = "relu"  # "linear" where the input quantizer is the activation
    binary: bool = False
    float_kernels: Tuple[str, ...] = ()  # of QUANTIZED_LAYERS: float kernel, inputs still quantized


FLOAT = Quantization()


def build_cnn(quantization: Quantization, name: str) -> tf.keras.Model:
    quantized = quantization.kernel is not None or quantization.inputs is not None

    def options(layer_name):
        if not quantized:
            return {}
        float_kernel = layer_name in quantization.float_kernels
        extra = (
            dict(kernel_constraint="weight_clip")
            if quantization.binary and not float_kernel else {}
        )
        return dict(
            input_quantizer=quantization.inputs() if quantization.inputs else None,
            kernel_quantizer=(
                quantization.kernel() if quantization.kernel and not float_kernel else None
            ),
            **extra,
        )

    def conv(filters, layer_name):
        if not quantized:
            return tf.keras.layers.Conv2D(
                filters, 3, padding="same", use_bias=False, name=layer_name
            )
        # Binary inputs pad with +1, so that padding is a value of the binary grid.
        pad = dict(pad_values=1.0) if quantization.binary else {}
        return lq.layers.QuantConv2D(
            filters, 3, padding="same", use_bias=False, name=layer_name, **pad, **options(layer_name)
        )

    def dense(units, layer_name):
        if not quantized:
            return tf.keras.layers.Dense(units, use_bias=False, name=layer_name)
        return lq.layers.QuantDense(units, use_bias=False, name=layer_name, **options(layer_name))

    def norm(layer_name):
        return tf.keras.layers.BatchNormalization(momentum=0.9, name=f"{layer_name}_bn")

    activation = quantization.activation
    inputs = tf.keras.Input((28, 28, 1))
    x = tf.keras.layers.Conv2D(32, 3, padding="same", use_bias=False, name="stem")(inputs)
    x = tf.keras.layers.Activation(activation)(norm("stem")(x))
    x = tf.keras.layers.MaxPool2D(2)(x)
    for layer_name in ("conv2", "conv3"):
        x = conv(64, layer_name)(x)
        x = tf.keras.layers.Activation(activation)(norm(layer_name)(x))
        x = tf.keras.layers.MaxPool2D(2)(x)
    x = tf.keras.layers.Flatten()(x)
    x = tf.keras.layers.Activation(activation)(norm("fc1")(dense(64, "fc1")(x)))
    outputs = norm("fc2")(dense(10, "fc2")(x))
    return tf.keras.Model(inputs, outputs, name=name)


def compile_model(model, learning_rate, steps):
    schedule = tf.keras.optimizers.schedules.CosineDecay(learning_rate, decay_steps=max(steps, 1))
    model.compile(
        optimizer=tf.keras.optimizers.Adam(schedule),
        loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )


class StepTimer(tf.keras.callbacks.Callback):
    """Wall time of each training step (batch hooks are called once per step)."""

    def __init__(self):
        super().__init__()
        self.times: List[float] = []
        self._start = 0.0

    def on_train_batch_begin(self, batch, logs=None):
        self._start = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        self.times.append(time.perf_counter() - self._start)

    def median_step(self) -> float:
        steady = self.times[2:] or self.times
        return float(np.median(steady)) if steady else float("nan")


# -- rows --------------------------------------------------------------------------


@dataclass
class Result:
    row: str
    weights: str
    activations: str
    epochs: int
    accuracy: float
    seconds: float
    step_seconds: float
    note: str = ""


@dataclass
class Context:
    data: object
    epochs_scale: Callable[[int], int]
    pruning_frequency: int
    float_weights: str = ""
    float_model: Optional[tf.keras.Model] = None
    results: Dict[str, Result] = field(default_factory=dict)
    # row -> the trained model its accuracy was measured on (for --save-models)
    models: Dict[str, tf.keras.Model] = field(default_factory=dict)

    def steps(self, epochs: int) -> int:
        return epochs * math.ceil(len(self.data.x_train) / BATCH)


def train(context, model, epochs, callbacks=()):
    timer = StepTimer()
    start = time.perf_counter()
    model.fit(
        context.data.x_train, context.data.y_train, batch_size=BATCH, epochs=epochs,
        verbose=0, callbacks=[timer, *callbacks],
    )
    return time.perf_counter() - start, timer.median_step()


def evaluate(context, model) -> float:
    data = context.data
    return float(model.evaluate(data.x_test, data.y_test, batch_size=512, verbose=0)[1])


def run_float(context, spec):
    tf.keras.utils.set_random_seed(spec.seed)
    epochs = context.epochs_scale(spec.epochs)
    model = build_cnn(FLOAT, "float")
    compile_model(model, spec.learning_rate, context.steps(epochs))
    saved = context.float_weights
    if saved and os.path.exists(saved + ".meta.json"):
        # Trained by an earlier process of the same split run (--float-weights).
        with open(saved + ".meta.json") as f:
            record = json.load(f)
        if record["epochs"] != epochs or record["train_images"] != len(context.data.x_train):
            sys.exit(f"--float-weights {saved}: trained with {record}, this run needs "
                     f"{epochs} epochs on {len(context.data.x_train)} images; delete it")
        model.load_weights(saved + ".h5")
        seconds, step = record["seconds"], record["step_seconds"]
        note = "weights from --float-weights"
    else:
        seconds, step = train(context, model, epochs)
        note = ""
        if saved:
            model.save_weights(saved + ".h5")
            with open(saved + ".meta.json", "w") as f:
                json.dump(dict(epochs=epochs, train_images=len(context.data.x_train),
                               seconds=seconds, step_seconds=step), f)
    context.float_model = model
    context.models[spec.key] = model
    return epochs, evaluate(context, model), seconds, step, note


def _from_float(context, spec, quantization, name):
    tf.keras.utils.set_random_seed(spec.seed)
    model = build_cnn(quantization, name)
    copy_float_weights(context.float_model, model)
    return model


def run_quantized(quantization):
    def run(context, spec):
        epochs = context.epochs_scale(spec.epochs)
        model = _from_float(context, spec, quantization, spec.key)
        compile_model(model, spec.learning_rate, context.steps(epochs))
        seconds, step = train(context, model, epochs)
        context.models[spec.key] = model
        return epochs, evaluate(context, model), seconds, step, ""

    return run


def run_binary_kd(temperature, alpha):
    def run(context, spec):
        epochs = context.epochs_scale(spec.epochs)
        student = _from_float(context, spec, BINARY, "binary_kd")
        distiller = Distiller(
            student, context.float_model, temperature=temperature, alpha=alpha,
            student_outputs="logits", teacher_outputs="logits",
        )
        schedule = tf.keras.optimizers.schedules.CosineDecay(
            spec.learning_rate, decay_steps=context.steps(epochs)
        )
        distiller.compile(optimizer=tf.keras.optimizers.Adam(schedule), metrics=["accuracy"])
        seconds, step = train(context, distiller, epochs)
        compile_model(student, spec.learning_rate, 1)
        context.models[spec.key] = student
        note = f"T={temperature:g}, alpha={alpha:g}"
        return epochs, evaluate(context, student), seconds, step, note

    return run


def run_inq(bits):
    def run(context, spec):
        epochs = context.epochs_scale(spec.epochs)
        quantization = Quantization(kernel=lambda: INQQuantizer(tq.PowerOfTwo(bits=bits)))
        model = _from_float(context, spec, quantization, f"inq{bits}")
        steps = context.steps(epochs)
        schedule = INQSchedule(
            {0: 0.5, steps // 4: 0.75, steps // 2: 0.875, (3 * steps) // 4: 1.0}, unit="step"
        )
        compile_model(model, spec.learning_rate, steps)
        seconds, step = train(context, model, epochs, [schedule])
        frozen = [model.get_layer(n).kernel_quantizer.frozen_fraction() for n in QUANTIZED_LAYERS]
        context.models[spec.key] = model
        return epochs, evaluate(context, model), seconds, step, f"frozen {min(frozen):.0%}"

    return run


def run_pruned(target, bits):
    def run(context, spec):
        epochs = context.epochs_scale(spec.epochs)
        tf.keras.utils.set_random_seed(spec.seed)
        steps = context.steps(epochs)
        model, callbacks = pruning.prune_and_quantize(
            context.float_model, target, kernel_quantizer=tq.PowerOfTwo(bits=bits),
            schedule="polynomial", end_step=max(int(0.6 * steps), 1),
            frequency=context.pruning_frequency, exclude=["stem"],
        )
        compile_model(model, spec.learning_rate, steps)
        seconds, step = train(context, model, epochs, callbacks)
        stripped = pruning.strip(model)
        compile_model(stripped, spec.learning_rate, 1)
        report = pruning.kernel_sparsity(stripped)
        sizes = {n: stripped.get_layer(n).kernel.shape.num_elements() for n in QUANTIZED_LAYERS}
        zeros = sum(report[f"{n}/kernel"].quantized * sizes[n] for n in QUANTIZED_LAYERS)
        note = f"{zeros / sum(sizes.values()):.1%} zeros in quantized kernels"
        context.models[spec.key] = stripped
        return epochs, evaluate(context, stripped), seconds, step, note

    return run


# The classifier's (fc2's) kernel stays float, its inputs binary: XNOR-Net, Bi-Real Net
# and most BNN papers keep the weights of both ends at higher precision (with ten
# outputs, the float kernel is 640 weights).
BINARY = Quantization(
    kernel=lambda: "ste_sign", inputs=lambda: "ste_sign", activation="linear", binary=True,
    float_kernels=("fc2",),
)


@dataclass
class Row:
    key: str
    label: str
    weights: str
    activations: str
    epochs: int
    learning_rate: float
    run: Callable
    seed: int = 0


ROWS = [
    Row("float", "float", "float32", "float32", 10, 2e-3, run_float),
    Row("binary", "binary", "1-bit sign (fc2 float)", "1-bit sign", 10, 1e-3, run_quantized(BINARY), seed=1),
    Row("binary_kd", "binary + KD", "1-bit sign (fc2 float)", "1-bit sign", 10, 1e-3,
        run_binary_kd(4.0, 0.7), seed=1),
    Row("twn", "ternary TWN", "ternary (TWN)", "float32", 4, 5e-4,
        run_quantized(Quantization(
            kernel=lambda: lq.quantizers.SteTern(ternary_weight_networks=True)))),
    Row("ttq", "ternary TTQ", "ternary (TTQ)", "float32", 4, 5e-4,
        run_quantized(Quantization(kernel=lambda: tq.TTQ()))),
    Row("inq4", "INQ 4-bit", "power-of-two 4-bit", "float32", 6, 5e-4, run_inq(4)),
    Row("inq3", "INQ 3-bit", "power-of-two 3-bit", "float32", 6, 5e-4, run_inq(3)),
    Row("pact4", "PACT 4-bit", "DoReFa 4-bit", "PACT 4-bit", 6, 5e-4,
        run_quantized(Quantization(
            kernel=lambda: lq.quantizers.DoReFa(k_bit=4, mode="weights"),
            inputs=lambda: tq.PACT(bits=4, alpha_init=4.0), activation="linear"))),
    Row("pact2", "PACT 2-bit", "DoReFa 2-bit", "PACT 2-bit", 6, 5e-4,
        run_quantized(Quantization(
            kernel=lambda: lq.quantizers.DoReFa(k_bit=2, mode="weights"),
            inputs=lambda: tq.PACT(bits=2, alpha_init=4.0), activation="linear"))),
    Row("lsq4", "LSQ 4-bit", "LSQ 4-bit", "LSQ 4-bit", 6, 5e-4,
        run_quantized(Quantization(
            kernel=lambda: tq.LSQ(bits=4, signed=True), inputs=lambda: tq.LSQ(bits=4)))),
    Row("lsq2", "LSQ 2-bit", "LSQ 2-bit", "LSQ 2-bit", 6, 5e-4,
        run_quantized(Quantization(
            kernel=lambda: tq.LSQ(bits=2, signed=True), inputs=lambda: tq.LSQ(bits=2)))),
    Row("pruned", "pruned 75% + 4-bit", "75% pruned, power-of-two 4-bit", "float32", 6, 5e-4,
        run_pruned(0.75, 4)),
]


# -- report ------------------------------------------------------------------------


def goals(results: Dict[str, Result]) -> List[str]:
    lines = []

    def check(text, keys, ok):
        if all(k in results for k in keys):
            lines.append(f"{'met ' if ok() else 'MISS'}  {text}")

    acc = {k: 100 * r.accuracy for k, r in results.items()}
    check("float >= 99.2 %", ["float"], lambda: acc["float"] >= 99.2)
    for key in ("inq4", "lsq4", "pact4"):
        check(
            f"{key} within 0.3 points of float", ["float", key],
            lambda k=key: acc[k] >= acc["float"] - 0.3,
        )
    check("binary >= 98.5 %", ["binary"], lambda: acc["binary"] >= 98.5)
    check("binary + KD > binary", ["binary", "binary_kd"], lambda: acc["binary_kd"] > acc["binary"])
    return lines


def table(results: Dict[str, Result], markdown: bool) -> str:
    float_accuracy = results["float"].accuracy if "float" in results else None
    header = [
        "model", "weights", "activations", "epochs", "test accuracy", "vs float", "train time",
        "note",
    ]
    rows = []
    for result in results.values():
        delta = ""
        if float_accuracy is not None and result.row != "float":
            delta = f"{100 * (result.accuracy - float_accuracy):+.2f}"
        rows.append([
            result.row, result.weights, result.activations, str(result.epochs),
            f"{100 * result.accuracy:.2f} %", delta, f"{result.seconds:.0f} s", result.note,
        ])
    if markdown:
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(r) + " |" for r in rows]
        return "\n".join(lines)
    widths = [max(len(str(c)) for c in column) for column in zip(header, *rows)]
    form = "  ".join(f"{{:<{w}}}" for w in widths)
    lines = [form.format(*header), form.format(*("-" * w for w in widths))]
    return "\n".join(lines + [form.format(*r) for r in rows])


def merged_results(paths: List[str]) -> Dict[str, Result]:
    """Rows of several --save-results files, in ROWS order; a row found in two files
    must agree (the float row is shared through --float-weights, so it does)."""
    found: Dict[str, Result] = {}
    for path in paths:
        with open(path) as f:
            for key, fields in json.load(f).items():
                result = Result(**fields)
                if key in found and found[key].accuracy != result.accuracy:
                    sys.exit(f"--merge: row {key!r} differs between files ({path})")
                found[key] = result
    return {r.key: found[r.key] for r in ROWS if r.key in found}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true",
        help=f"smoke run: {QUICK_TRAIN} training images, {QUICK_EPOCHS} epochs per row",
    )
    parser.add_argument(
        "--only", default="", help=f"comma-separated rows of {[r.key for r in ROWS]}"
    )
    parser.add_argument("--markdown", action="store_true", help="print the table as markdown")
    parser.add_argument(
        "--float-weights", default="",
        help="path prefix: save the trained float model there (PATH.h5, PATH.meta.json), or load "
        "it if present, so several processes can share one float model (split runs)",
    )
    parser.add_argument(
        "--save-results", default="", metavar="PATH",
        help="also write the rows' results to PATH as JSON (for --merge)",
    )
    parser.add_argument(
        "--save-models", default="", metavar="DIR",
        help="also save each row's trained model (the one evaluated) as DIR/<row>.h5, e.g. for "
        "benchmarks/shift_agreement.py",
    )
    parser.add_argument(
        "--merge", nargs="+", default=[], metavar="PATH",
        help="train nothing: print the table and goals of --save-results files of a split run",
    )
    parser.add_argument(
        "--threads", type=int, default=0,
        help="TensorFlow intra-op threads (0: TensorFlow's default, all cores)",
    )
    args = parser.parse_args(argv)
    tf.get_logger().setLevel("ERROR")  # one retracing warning per evaluated model
    if args.threads:
        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
        tf.config.threading.set_inter_op_parallelism_threads(args.threads)

    if args.merge:
        results = merged_results(args.merge)
        print(table(results, args.markdown))
        print()
        print("\n".join(goals(results)))
        return results

    keys = [r.key for r in ROWS]
    selected = [k for k in args.only.split(",") if k] or keys
    unknown = sorted(set(selected) - set(keys))
    if unknown:
        parser.error(f"--only: unknown rows {unknown}; rows are {keys}")
    if "float" not in selected:
        selected = ["float", *selected]  # every other row starts from (or learns from) it

    if not tfq_plus.datasets.available("mnist"):
        sys.exit(
            f"MNIST not found: set {tfq_plus.datasets.DATA_DIR_ENV} to the folder holding the "
            "MNIST IDX files (e.g. ../shared/data)"
        )
    data = tfq_plus.datasets.load("mnist")
    if args.quick:
        data = data._replace(
            x_train=data.x_train[:QUICK_TRAIN], y_train=data.y_train[:QUICK_TRAIN],
            x_test=data.x_test[:QUICK_TEST], y_test=data.y_test[:QUICK_TEST],
        )
    context = Context(
        data=data,
        epochs_scale=(lambda epochs: QUICK_EPOCHS) if args.quick else (lambda epochs: epochs),
        pruning_frequency=2 if args.quick else 50,
        float_weights=args.float_weights,
    )
    print(f"MNIST: {len(data.x_train)} training, {len(data.x_test)} test images"
          f"{' (--quick subset)' if args.quick else ''}", flush=True)
    full_steps_per_epoch = math.ceil(60000 / BATCH)
    estimate = 0.0
    for row in ROWS:
        if row.key not in selected:
            continue
        epochs, accuracy, seconds, step, note = row.run(context, row)
        context.results[row.key] = Result(
            row.label, row.weights, row.activations, epochs, accuracy, seconds, step, note
        )
        estimate += step * row.epochs * full_steps_per_epoch
        timing = f"({seconds:.0f} s, {1000 * step:.0f} ms/step)"
        print(f"{row.label:<20} {100 * accuracy:6.2f} %  {timing}  {note}", flush=True)
        if args.save_models and row.key in context.models:
            os.makedirs(args.save_models, exist_ok=True)
            context.models[row.key].save(os.path.join(args.save_models, f"{row.key}.h5"))

    if args.save_results:
        with open(args.save_results, "w") as f:
            json.dump({k: dataclasses.asdict(r) for k, r in context.results.items()}, f, indent=1)
    print()
    print(table(context.results, args.markdown))
    print()
    print("\n".join(goals(context.results)))
    if args.quick:
        print(
            f"\n--quick: accuracies are from {QUICK_TRAIN} images and {QUICK_EPOCHS} epochs, "
            "not the benchmark (batch-norm moving statistics need more steps than that to "
            "settle). "
            f"Estimated training time of the full run of these rows at the measured step "
            f"times: {estimate / 3600:.1f} h (plus evaluation)."
        )
    return context.results


if __name__ == "__main__":
    main()
