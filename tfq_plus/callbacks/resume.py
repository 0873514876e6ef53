"""Exact resume: ``BackupAndRestore`` that also saves the random state ``fit`` consumes."""

import itertools
import json
import random
from typing import List, Optional, Tuple

import numpy as np
import tensorflow as tf
from tensorflow.python.eager import context  # the global seed has no public getter

from tfq_plus.callbacks.quantized_layers import all_layers

__all__ = ["ExactBackupAndRestore"]

OWNER = "ExactBackupAndRestore"

# TF1 stateful random ops: their position in the random stream is a counter inside
# the op kernel, which no checkpoint can read or set.
KERNEL_STATE_RANDOM_OPS = frozenset(
    {
        "Multinomial",
        "ParameterizedTruncatedNormal",
        "RandomCrop",
        "RandomGamma",
        "RandomPoisson",
        "RandomPoissonV2",
        "RandomShuffle",
        "RandomStandardNormal",
        "RandomUniform",
        "RandomUniformInt",
        "TruncatedNormal",
    }
)

ENABLE_GENERATOR = "tf.keras.backend.experimental.enable_tf_random_generator()"


class ExactBackupAndRestore(tf.keras.callbacks.BackupAndRestore):
    """``BackupAndRestore`` whose resumed run is bit-identical to an uninterrupted one.

    ``tf.keras.callbacks.BackupAndRestore`` saves the model, the optimizer and the
    epoch and batch reached, but not where ``fit``'s random streams and its input
    stood, so a run resumed with ``shuffle=True`` or Dropout draws other batches and
    other masks than the uninterrupted run would have. This callback writes, into the
    same checkpoint as those (so a kill can never separate them):

    - the state of every ``tf.random.Generator`` the model's random layers draw from
      (Dropout, SpatialDropout, GaussianNoise, AlphaDropout, RNN cell dropout, random
      preprocessing layers). tf_keras draws these from TF1 stateful ops by default,
      whose position lives inside the op kernel and cannot be saved;
      ``tf.keras.backend.experimental.enable_tf_random_generator()``, called before
      the model is built, makes them draw from a ``tf.random.Generator`` whose
      state is a variable. The model's generators are not in the checkpoint of
      ``BackupAndRestore`` (tf_keras leaves them out of ``model.weights``).
    - the position of ``fit``'s input: the iterators it has read and the batches
      drawn from the last one. On resume the input is replayed up to that
      position: batches are drawn again and dropped, and iterators recreated each
      epoch are created again, so every pipeline whose order is a function of its
      seeds continues where it was. This covers ``shuffle=True`` on numpy arrays
      and tensors (one ``tf.random.shuffle`` per epoch inside tf_keras' pipeline,
      seeded from the global seed), ``tf.data`` pipelines with seeded or unseeded
      ``shuffle`` (the seeds of each epoch's order are drawn when the epoch's
      iterator is created), and resuming in the middle of an epoch
      (``save_freq`` in batches), where tf_keras itself would restart the epoch's
      input from its first batch.
    - Python's ``random`` and numpy's global ``np.random`` state, for callbacks and
      generators that draw from them.

    ``INQSchedule(strategy="random")`` needs nothing saved: its choice is a function
    of its seed, the layer and the schedule key.

    Required, checked before training starts (``ValueError`` naming the fix):
    a global seed (``tf.keras.utils.set_random_seed(seed)`` before the model is
    built: the input's shuffles derive from it), and no random op whose state
    cannot be saved: no Keras random layer built without
    ``enable_tf_random_generator()`` (checked at ``on_train_begin``) and no TF1
    stateful random op (``tf.random.uniform``, ``tf.random.shuffle``, ...) in the
    training step (checked when the step is traced, before the first batch).
    Random ops in custom layers must draw from a ``tf.random.Generator`` the layer
    owns (an attribute of the layer is saved with the model).

    The resumed run must be the same program: the same seed, model, data,
    ``batch_size``, ``epochs``, ``steps_per_epoch`` and callbacks. On GPUs, also
    ``tf.config.experimental.enable_op_determinism()``: bit-identical results need
    deterministic kernels, resumed or not. Supported inputs: numpy arrays, tensors
    and ``tf.data.Dataset``; under a ``tf.distribute`` strategy, an input read by
    one iterator for the whole of ``fit`` (numpy arrays, or a repeated dataset with
    ``steps_per_epoch``). Logged metrics of a resumed epoch cover the batches run
    after the resume only.

    Example:
        ```python
        import tfq_plus
        import tensorflow as tf
        from tfq_plus.callbacks import ExactBackupAndRestore, INQSchedule

        tf.keras.backend.experimental.enable_tf_random_generator()
        tf.keras.utils.set_random_seed(0)
        model = build_model()  # Dropout, INQQuantizer kernels, ...
        model.fit(x, y, epochs=8, shuffle=True, callbacks=[
            ExactBackupAndRestore("backup", save_freq=100),
            INQSchedule({0: 0.5, 4: 1.0}, strategy="random")])
        ```

    Arguments:
        backup_dir: str, the directory of the backup, as for ``BackupAndRestore``.
        save_freq: ``"epoch"`` (default) or an int, the number of batches between
            backups.
        delete_checkpoint: bool, default True: delete the backup when training ends.

    Raises:
        ValueError: at the beginning of ``fit``, a requirement above is not met, or
            the backup was written by another callback (no random state in it).
        RuntimeError: ``fit``'s input is read in a way the replay cannot reproduce.
    """

    def __init__(self, backup_dir, save_freq="epoch", delete_checkpoint=True):
        super().__init__(backup_dir, save_freq=save_freq, delete_checkpoint=delete_checkpoint)
        self._state: Optional[RandomState] = None
        self._replay: Optional[InputReplay] = None

    def on_train_begin(self, logs=None):
        """Check the requirements, restore the model and random state from a backup
        (if there is one) and wrap ``model.train_function`` to replay the input."""
        strategy = self.model.distribute_strategy
        if isinstance(strategy, tf.distribute.experimental.ParameterServerStrategy):
            raise ValueError(
                f"{OWNER}: ParameterServerStrategy is not supported (its workers read the "
                "input outside fit's training step)"
            )
        check_global_seed()
        generators = random_layer_generators(self.model)
        super().on_train_begin(logs)  # restores the model, epoch and batch
        self._state = RandomState(generators)
        manager = self._training_state.read_checkpoint_manager
        manager.checkpoint.random_state = self._state  # written with every backup
        resume = None
        if manager.latest_checkpoint:
            self._state.restore(manager.latest_checkpoint)
            iterators, batches = self._state.input_position()
            at_epoch_start = self.save_freq == "epoch" or batches == self.params.get("steps")
            resume = (iterators, batches, at_epoch_start)
        train_function = self.model.train_function
        if isinstance(train_function, InputReplay):  # left by a fit that raised
            train_function = train_function.step
        self._replay = InputReplay(train_function, self.model, self.params.get("steps"), resume)
        self.model.train_function = self._replay

    def on_epoch_begin(self, epoch, logs=None):
        """Count the epoch's input iterator (for the replay on resume)."""
        super().on_epoch_begin(epoch, logs)
        self._replay.epoch_began()

    def on_train_batch_end(self, batch, logs=None):
        """Record the step's last batch as the one reached, then back up as due."""
        # fit passes the step's last batch here and its first to on_train_batch_begin,
        # where BackupAndRestore records the batch: with steps_per_execution > 1 a
        # resume would repeat all but one batch of the step.
        self._training_state._ckpt_saved_batch.assign(batch)
        super().on_train_batch_end(batch, logs)

    def _backup(self, epoch, batch=0):
        self._state.record(*self._replay.position())
        super()._backup(epoch, batch)

    def on_train_end(self, logs=None):
        """Unwrap ``model.train_function``; delete the backup if asked to."""
        self.model.train_function = self._replay.step
        super().on_train_end(logs)
        # BackupAndRestore deletes the attribute, and the next fit without it then
        # fails reading it (tf_keras 2.21); None is what fit expects.
        self.model._training_state = None


def check_global_seed():
    """Raises unless TensorFlow's global seed is set."""
    if context.global_seed() is None:
        raise ValueError(
            f"{OWNER}: TensorFlow's global seed is not set, so the order of shuffle=True "
            "and of unseeded tf.data shuffles differs in every process; call "
            "tf.keras.utils.set_random_seed(seed) before building the model"
        )


def random_layer_generators(model) -> List[tf.random.Generator]:
    """The ``tf.random.Generator`` of every random layer of ``model``, in layer order.

    Raises:
        ValueError: a random layer draws from TF1 stateful ops (built without
            ``enable_tf_random_generator()``), or is not built yet.
    """
    generators = []
    for layer in all_layers(model):
        source = getattr(layer, "_random_generator", None)
        rng_type = getattr(source, "_rng_type", None)
        if rng_type is None or rng_type == "stateless":  # not random, or a pure function
            continue
        if rng_type == "legacy_stateful":
            raise ValueError(
                f"{OWNER}: layer '{layer.name}' ({type(layer).__name__}) draws from TF1 "
                "stateful random ops, whose position cannot be saved; call "
                f"{ENABLE_GENERATOR} before building the model"
            )
        if getattr(source, "_generator", None) is None:
            raise ValueError(f"{OWNER}: layer '{layer.name}' is not built; build the model first")
        generators.append(source._generator)
    return generators


def check_train_step(step, iterator):
    """Raises if the traced training step runs a TF1 stateful random op.

    A step run eagerly (``run_eagerly=True``) has no graph to check; its Keras
    random layers are checked by ``random_layer_generators``.
    """
    if not hasattr(step, "get_concrete_function"):
        return
    graph_def = step.get_concrete_function(iterator).graph.as_graph_def()
    nodes = itertools.chain(graph_def.node, *(f.node_def for f in graph_def.library.function))
    for node in nodes:
        if node.op in KERNEL_STATE_RANDOM_OPS:
            raise ValueError(
                f"{OWNER}: the training step runs the stateful random op '{node.name}' "
                f"({node.op}), whose position cannot be saved; draw from a "
                "tf.random.Generator owned by the layer instead (Keras random layers: "
                f"call {ENABLE_GENERATOR} before building the model)"
            )


def host_rng_state() -> str:
    """Python's ``random`` and numpy's global state, as JSON."""
    version, internal, gauss = random.getstate()
    kind, keys, position, has_gauss, cached = np.random.get_state()
    return json.dumps(
        {
            "python": [version, list(internal), gauss],
            "numpy": [kind, keys.tolist(), int(position), int(has_gauss), float(cached)],
        }
    )


def set_host_rng_state(text: str):
    state = json.loads(text)
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    kind, keys, position, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), position, has_gauss, cached))


class RandomState(tf.Module):
    """What the backup holds besides the model: generator states, input position,
    host generators."""

    def __init__(self, generators: List[tf.random.Generator]):
        super().__init__(name="random_state")
        self.generators = list(generators)
        self.input_iterators = tf.Variable(0, dtype=tf.int64, trainable=False)
        self.input_batches = tf.Variable(0, dtype=tf.int64, trainable=False)
        self.host = tf.Variable("", dtype=tf.string, trainable=False)

    def record(self, iterators: int, batches: int):
        self.input_iterators.assign(iterators)
        self.input_batches.assign(batches)
        self.host.assign(host_rng_state())

    def input_position(self) -> Tuple[int, int]:
        return int(self.input_iterators.numpy()), int(self.input_batches.numpy())

    def restore(self, path: str):
        """Reads this state from the checkpoint at ``path`` and sets the host generators.

        Raises:
            ValueError: the checkpoint holds no random state, or another number of
                random layers.
        """
        status = tf.train.Checkpoint(random_state=self).read(path)
        try:
            status.expect_partial().assert_existing_objects_matched()
        except AssertionError as error:
            raise ValueError(
                f"{OWNER}: the backup {path} has no random state of this model's "
                f"{len(self.generators)} random layer(s): it was written by another "
                "callback (tf.keras.callbacks.BackupAndRestore?) or for another model; "
                "resume it with the callback that wrote it, or delete it"
            ) from error
        set_host_rng_state(self.host.numpy().decode())


def recreated_each_epoch(iterator, steps_per_epoch: Optional[int]) -> bool:
    """Whether tf_keras creates a new iterator of this input at every epoch.

    tf_keras does for a ``tf.data.Dataset`` without ``steps_per_epoch`` or with
    ``steps_per_epoch`` equal to its cardinality (``DatasetAdapter``), and keeps one
    iterator otherwise; for numpy arrays and tensors it reads one repeated dataset
    of unknown cardinality. ``InputReplay`` checks the prediction at every epoch.
    """
    dataset = getattr(iterator, "_dataset", None)
    if not isinstance(dataset, tf.data.Dataset):
        return False
    return steps_per_epoch is None or int(dataset.cardinality()) == steps_per_epoch


class InputReplay:
    """``model.train_function`` wrapped: counts the iterators and batches the training
    step reads and, in a resumed run, first moves the input to the backup's position.

    fit calls ``model.train_function(iterator)`` once per step (``steps_per_execution``
    batches), so this is where the iterator of each epoch can be seen and replaced.
    """

    def __init__(self, step, model, steps_per_epoch, resume: Optional[Tuple[int, int, bool]]):
        self.step = step
        self._model = model
        self._steps_per_epoch = steps_per_epoch
        self._resume = resume
        self._iterators = 0
        self._batches = 0
        self._given = None  # the iterator fit passed last
        self._read = None  # the iterator the step reads in its place
        self._per_epoch = False
        self._new_epoch = False

    def position(self) -> Tuple[int, int]:
        """(iterators read so far, batches drawn from the last)."""
        return self._iterators, self._batches

    def epoch_began(self):
        self._new_epoch = True

    def __call__(self, iterator):
        if self._given is None:
            self._start(iterator)
        elif self._new_epoch:
            self._next_epoch(iterator)
        self._new_epoch = False
        batches = int(self._model._steps_per_execution.numpy())
        outputs = self.step(self._read)
        self._batches += batches
        return outputs

    def _start(self, iterator):
        check_train_step(self.step, iterator)
        self._per_epoch = recreated_each_epoch(iterator, self._steps_per_epoch)
        self._given, self._read = iterator, iterator
        self._iterators, self._batches = 1, 0
        if self._resume is not None:
            self._replay(iterator, *self._resume)

    def _replay(self, iterator, iterators: int, batches: int, at_epoch_start: bool):
        if self._per_epoch:
            if at_epoch_start:  # the backup's epoch ended: the next one reads a new iterator
                iterators, batches = iterators + 1, 0
            # fit created two iterators of the dataset before this step (one it
            # drops); the uninterrupted run's iterator number `iterators` comes
            # after `iterators - 1` more.
            for _ in range(iterators - 1):
                self._read = iter(iterator._dataset)
        elif iterators != 1:
            raise RuntimeError(
                f"{OWNER}: the backup was written after {iterators} input iterators, but "
                "this fit reads one iterator for all epochs; resume with the same input "
                "and steps_per_epoch"
            )
        for _ in range(batches):
            next(self._read)
        self._iterators, self._batches = iterators, batches

    def _next_epoch(self, iterator):
        recreated = iterator is not self._given
        if recreated != self._per_epoch:
            raise RuntimeError(
                f"{OWNER}: fit's input was {'recreated' if recreated else 'kept'} at an "
                "epoch start, which the replay did not predict; exact resume supports "
                "numpy arrays, tensors and tf.data.Dataset inputs (under a tf.distribute "
                "strategy: one iterator for all epochs, i.e. numpy arrays or a repeated "
                "dataset with steps_per_epoch)"
            )
        if recreated:
            self._given, self._read = iterator, iterator
            self._iterators, self._batches = self._iterators + 1, 0
