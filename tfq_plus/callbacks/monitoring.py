"""Per-layer quantization statistics, each epoch, to TensorBoard and to ``logs``."""

from typing import Dict, Optional

import numpy as np
import tensorflow as tf
from tensorflow.core.framework import summary_pb2

from tfq_plus import quantizers as tq
from tfq_plus.callbacks.inq import INQQuantizer
from tfq_plus.callbacks.quantized_layers import QuantizedTensor, find_quantized_tensors
from tfq_plus.callbacks.schedules import StagedQuantizer

__all__ = ["QuantizationMonitor"]


# TensorBoard's scalar format (plugin "scalars", an empty ScalarPluginData, data class
# scalar), written with tf.summary.write: tf.summary.scalar needs the tensorboard
# package, which TensorFlow 2.21 no longer depends on; the event files are the same.
_SCALAR_METADATA = summary_pb2.SummaryMetadata(
    plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="scalars", content=b""),
    data_class=summary_pb2.DATA_CLASS_SCALAR,
).SerializeToString()


def _reported(quantizer):
    """The quantizer whose statistics are reported: a staged wrapper's active stage,
    or while that is float (a ``DelayedQuantizer`` not yet switched on) the last
    stage, whose parameters exist all along, so every epoch logs the same keys."""
    while isinstance(quantizer, StagedQuantizer):
        active = quantizer.active_quantizer
        quantizer = active if active is not None else quantizer.stages[-1]
    return quantizer


class QuantizationMonitor(tf.keras.callbacks.Callback):
    """Logs per-layer quantization scalars at the end of every epoch.

    For each tensor of the model (named as in ``find_quantized_tensors``:
    ``"<layer>/kernel"``, ``"<layer>/input"``, ``"<quantizer layer>"``):

    - ``<name>/flip_ratio``: binary weights (kernel quantizer of precision 1): the
      fraction of latent weights whose sign (``w >= 0``, larq's ``sign(0) = +1``)
      differs from the start of the epoch. A ratio that stays high means the binary
      weights have not settled (Helwegen et al., 2019, "Latent weights do not
      exist").
    - ``<name>/alpha``: PACT's clipping level.
    - ``<name>/step``: LSQ's step size (``step_mean``, ``step_min``, ``step_max``
      for a per-channel step).
    - ``<name>/inq_frozen_fraction``: the fraction of an INQ kernel frozen.
    - ``<name>/sparsity``: the fraction of exact zeros in the kernel the layer
      computes with (the quantizer's output, or the float kernel if it has none).

    A staged quantizer (``DelayedQuantizer``, ``ProgressiveQuantizer``) is reported
    through its active stage (a delayed one through its quantizer also while it is
    still float, so that every epoch has the same keys).

    The values are added to ``logs`` (so ``History``, ``CSVLogger`` and a
    ``TensorBoard`` callback listed after this one see them) and, with ``log_dir``,
    written to TensorBoard event files as scalars at step = epoch (TensorBoard's
    scalar format, written with ``tf.summary.write``, which needs no tensorboard
    package).

    Arguments:
        log_dir: str or None (default): the directory for TensorBoard event files;
            None writes only to ``logs``.

    Raises:
        ValueError: ``log_dir`` is neither a string nor None.

    Example::

        history = model.fit(x, y, epochs=3, callbacks=[QuantizationMonitor("logs/q")])
        history.history["conv/input/alpha"]  # PACT's alpha after each epoch
    """

    def __init__(self, log_dir: Optional[str] = None):
        super().__init__()
        if log_dir is not None and not isinstance(log_dir, str):
            raise ValueError(
                f"QuantizationMonitor: `log_dir` must be a path string or None, got {log_dir!r}"
            )
        self.log_dir = log_dir
        self._writer = None
        self._signs: Dict[str, np.ndarray] = {}

    def _tensors(self):
        return find_quantized_tensors(self.model)

    @staticmethod
    def _is_binary_weight(tensor: QuantizedTensor) -> bool:
        quantizer = _reported(tensor.quantizer)
        return tensor.variable is not None and getattr(quantizer, "precision", None) == 1

    def on_train_begin(self, logs=None):
        """Open the TensorBoard writer (with ``log_dir``)."""
        if self.log_dir is not None and self._writer is None:
            self._writer = tf.summary.create_file_writer(self.log_dir)

    def on_epoch_begin(self, epoch, logs=None):
        """Remember the signs of the binary latent weights, for the flip ratio."""
        self._signs = {
            t.name: t.variable.numpy() >= 0 for t in self._tensors() if self._is_binary_weight(t)
        }

    def scalars(self) -> Dict[str, float]:
        """The current values of the statistics other than the flip ratio."""
        values: Dict[str, float] = {}
        for tensor in self._tensors():
            quantizer = tensor.quantizer
            if isinstance(quantizer, INQQuantizer):
                values[f"{tensor.name}/inq_frozen_fraction"] = quantizer.frozen_fraction()
            reported = _reported(quantizer)
            if isinstance(reported, tq.PACT) and reported.built:
                values[f"{tensor.name}/alpha"] = float(reported.alpha.numpy())
            if isinstance(reported, tq.LSQ) and reported.built:
                step = reported.step.numpy()
                if step.ndim == 0:
                    values[f"{tensor.name}/step"] = float(step)
                else:
                    values[f"{tensor.name}/step_mean"] = float(np.mean(step))
                    values[f"{tensor.name}/step_min"] = float(np.min(step))
                    values[f"{tensor.name}/step_max"] = float(np.max(step))
            if tensor.variable is not None:
                latent = tf.convert_to_tensor(tensor.variable)
                kernel = latent if quantizer is None else quantizer(latent)
                values[f"{tensor.name}/sparsity"] = float(np.mean(kernel.numpy() == 0))
        return values

    def on_epoch_end(self, epoch, logs=None):
        """Add the epoch's scalars to ``logs`` and write them to TensorBoard."""
        values = {}
        for tensor in self._tensors():
            before = self._signs.get(tensor.name)
            if before is not None and self._is_binary_weight(tensor):
                after = tensor.variable.numpy() >= 0
                values[f"{tensor.name}/flip_ratio"] = float(np.mean(after != before))
        values.update(self.scalars())
        if logs is not None:
            logs.update(values)
        if self._writer is not None:
            with self._writer.as_default(step=int(epoch)):
                for tag, value in values.items():
                    tf.summary.write(tag, tf.constant(value, tf.float32), metadata=_SCALAR_METADATA)
            self._writer.flush()

    def on_train_end(self, logs=None):
        """Close the TensorBoard writer."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None
