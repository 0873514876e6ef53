"""One training run for tests/test_resume.py, in a process of its own.

    python tests/resume_run.py OUT.npz [--inq] [--input numpy|dataset]
        [--steps-per-execution N] [--backup DIR --callback exact|keras --save-freq epoch|N]
        [--pause-after-batches N | --pause-at-epoch E]

Trains a small model on the first SAMPLES scikit-learn digits with everything
random that ``fit`` consumes: ``shuffle=True`` (or a seeded ``tf.data`` shuffle),
Dropout, INQ with the random partition, and a callback drawing from Python's and
numpy's global generators. It prints ``START epoch step`` at its first batch. With
a pause option it prints ``PAUSED`` after that many batches (or at the beginning of
that epoch) and waits to be killed; else it writes every weight, optimizer variable
and random-layer generator state to OUT.npz. tests/test_resume.py also calls
``train`` in its own process.
"""

import argparse
import random
import signal
import sys

import tfq_plus  # noqa: F401  (first: selects Keras 2)

import larq as lq  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from tfq_plus import quantizers as tq  # noqa: E402
from tfq_plus.callbacks import ExactBackupAndRestore, INQQuantizer, INQSchedule  # noqa: E402
from tfq_plus.callbacks.resume import random_layer_generators  # noqa: E402

SAMPLES = 200
BATCH = 20  # 10 steps per epoch
EPOCHS = 4
SEED = 0
SCHEDULE = {0: 0.5, 1: 0.75, 3: 0.875}


def digits():
    data = tfq_plus.datasets.load("digits")
    return data.x_train[:SAMPLES], data.y_train[:SAMPLES]


def build_model(inq: bool, steps_per_execution: int = 1):
    def quantizer(bits):
        return INQQuantizer(tq.PowerOfTwo(bits=bits)) if inq else None

    model = tf.keras.Sequential(
        [
            tf.keras.Input((8, 8, 1)),
            tf.keras.layers.Flatten(),
            lq.layers.QuantDense(
                24, activation="relu", kernel_quantizer=quantizer(4), name="hidden"
            ),
            tf.keras.layers.Dropout(0.3, name="dropout"),
            lq.layers.QuantDense(10, kernel_quantizer=quantizer(3), name="out"),
        ]
    )
    model.compile(
        tf.keras.optimizers.Adam(0.01),
        tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        steps_per_execution=steps_per_execution,
    )
    return model


class HostJitter(tf.keras.callbacks.Callback):
    """A user callback drawing from Python's and numpy's global generators every
    batch: it nudges the output bias. (Seeded: run() calls
    tf.keras.utils.set_random_seed(SEED), which seeds both; the test is that
    ExactBackupAndRestore saves and restores where they stand.)"""

    def on_train_batch_begin(self, batch, logs=None):
        bias = self.model.get_layer("out").bias
        noise = np.random.normal(0.0, 1e-3, bias.shape) * random.random()
        bias.assign_add(noise.astype(np.float32))


class ReportStart(tf.keras.callbacks.Callback):
    """Prints ``START epoch step`` at the first batch this process trains."""

    def __init__(self):
        super().__init__()
        self.epoch = None
        self.reported = False

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_begin(self, batch, logs=None):
        if not self.reported:
            print(f"START {self.epoch} {batch}", flush=True)
            self.reported = True


class Pause(tf.keras.callbacks.Callback):
    """Prints PAUSED and waits for the signal that kills the process."""

    def __init__(self, after_batches=None, at_epoch=None):
        super().__init__()
        self.after_batches, self.at_epoch = after_batches, at_epoch
        self.batches = 0

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.at_epoch:
            self.pause()

    def on_train_batch_end(self, batch, logs=None):
        self.batches += 1
        if self.batches == self.after_batches:
            self.pause()

    @staticmethod
    def pause():
        print("PAUSED", flush=True)
        while True:
            signal.pause()


def training_input(kind, x, y):
    if kind == "numpy":
        return dict(x=x, y=y, batch_size=BATCH, shuffle=True)
    dataset = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(SAMPLES, seed=7).batch(BATCH)
    return dict(x=dataset)


def state_arrays(model):
    """Every weight, optimizer variable and random-layer generator state, in order.

    Kernels are read from their latent variables: what the checkpoint holds, and
    independent of larq's quantized scope (which a larq layer raising in ``call``
    leaves switched on for the rest of the process).
    """
    arrays = {
        f"weight {i:02d} {v.name}": getattr(v, "latent_variable", v).numpy()
        for i, v in enumerate(model.weights)
    }
    # Optimizer variables by position: their names depend on where the optimizer
    # was built ("Adam/m/..." in fit, "m/..." when BackupAndRestore builds it).
    for i, v in enumerate(model.optimizer.variables):
        arrays[f"optimizer {i:02d}"] = v.numpy()
    for i, generator in enumerate(random_layer_generators(model)):
        arrays[f"generator {i}"] = generator.state.numpy()
    return arrays


def parse_args(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("--inq", action="store_true")
    parser.add_argument("--input", choices=("numpy", "dataset"), default="numpy")
    parser.add_argument("--steps-per-execution", type=int, default=1)
    parser.add_argument("--backup")
    parser.add_argument("--callback", choices=("exact", "keras"), default="exact")
    parser.add_argument("--save-freq", default="epoch")
    parser.add_argument("--pause-after-batches", type=int)
    parser.add_argument("--pause-at-epoch", type=int)
    return parser.parse_args(argv)


def train(args, strategy=None, extra_callbacks=()):
    """The run ``args`` describe, under ``strategy`` (default: none); returns the model."""
    tf.keras.backend.experimental.enable_tf_random_generator()
    tf.keras.utils.set_random_seed(SEED)
    x, y = digits()
    with (strategy or tf.distribute.get_strategy()).scope():
        model = build_model(args.inq, args.steps_per_execution)
    callbacks = []
    if args.backup:
        save_freq = args.save_freq if args.save_freq == "epoch" else int(args.save_freq)
        keras = tf.keras.callbacks.BackupAndRestore
        backup = ExactBackupAndRestore if args.callback == "exact" else keras
        callbacks.append(backup(args.backup, save_freq=save_freq))
    if args.inq:
        callbacks.append(INQSchedule(SCHEDULE, strategy="random", seed=3))
    callbacks += [HostJitter(), ReportStart(), *extra_callbacks]
    if args.pause_after_batches or args.pause_at_epoch is not None:
        callbacks.append(Pause(args.pause_after_batches, args.pause_at_epoch))
    model.fit(**training_input(args.input, x, y), epochs=EPOCHS, verbose=0, callbacks=callbacks)
    return model


def main(argv=None):
    args = parse_args(argv)
    np.savez(args.out, **state_arrays(train(args)))


if __name__ == "__main__":
    sys.exit(main())
