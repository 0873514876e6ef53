"""Training callbacks: INQ, quantization schedules, monitoring.

Each schedule keeps its state in variables of the quantizers it drives (a wrapping
quantizer per method), so checkpoints, ``BackupAndRestore`` and ``tf.distribute``
strategies carry it like any other weight:

- ``INQSchedule`` with ``INQQuantizer`` kernels: Incremental Network Quantization.
- ``QuantizationDelay`` with ``DelayedQuantizer``: float first, quantized after N
  steps or epochs.
- ``BitWidthSchedule`` with ``ProgressiveQuantizer``: bit-widths lowered by epoch.
- ``QuantizationMonitor``: per-layer flip ratio, PACT alpha, LSQ step, INQ frozen
  fraction and sparsity, to TensorBoard and ``logs``.
- ``ExactBackupAndRestore``: ``BackupAndRestore`` that also saves the random state
  ``fit`` consumes (Dropout generators, the input's shuffle position), so a run
  killed with ``shuffle=True`` or Dropout resumes bit-identically.

Building blocks: ``StagedQuantizer`` (the base of the two wrappers: one of several
quantizers, chosen by a variable), ``PiecewiseSchedule`` (the base of the
schedules: a value by epoch or step), ``find_quantized_tensors(model)`` (every
kernel and quantized activation as a ``QuantizedTensor``, named as the monitor
names them).

    from tfq_plus.callbacks import BitWidthSchedule, ProgressiveQuantizer
    layer = larq.layers.QuantConv2D(
        32, 3, input_quantizer=ProgressiveQuantizer(PACT(), bits=(8, 4, 2)))
    model.fit(x, y, epochs=9, callbacks=[BitWidthSchedule({0: 8, 3: 4, 6: 2})])
"""

from tfq_plus.callbacks.inq import INQQuantizer, INQSchedule
from tfq_plus.callbacks.monitoring import QuantizationMonitor
from tfq_plus.callbacks.quantized_layers import QuantizedTensor, find_quantized_tensors
from tfq_plus.callbacks.resume import ExactBackupAndRestore
from tfq_plus.callbacks.schedules import (
    BitWidthSchedule,
    DelayedQuantizer,
    PiecewiseSchedule,
    ProgressiveQuantizer,
    QuantizationDelay,
    StagedQuantizer,
)

__all__ = [
    "ExactBackupAndRestore",
    "INQQuantizer",
    "INQSchedule",
    "QuantizationMonitor",
    "QuantizedTensor",
    "find_quantized_tensors",
    "BitWidthSchedule",
    "DelayedQuantizer",
    "PiecewiseSchedule",
    "ProgressiveQuantizer",
    "QuantizationDelay",
    "StagedQuantizer",
]
