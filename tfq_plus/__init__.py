"""tfq-plus: train sub-8-bit Keras models and deploy them to TFLite / TFLite Micro.

Import ``tfq_plus`` before TensorFlow: it selects Keras 2 (``tf_keras``), which
larq and the TensorFlow Model Optimization toolkit need, as ``tf.keras``.

- ``tfq_plus.quantizers``: quantizers for larq layers (binary, ternary,
  power-of-two, log, shift, PACT, LSQ, uniform), each with its forward formula,
  gradient and paper.
- ``tfq_plus.callbacks``: INQ, quantization delay, bit-width schedules,
  monitoring, exact resume.
- ``tfq_plus.pruning``: TFMOT pruning of larq layers, ``prune_and_quantize``.
- ``tfq_plus.distillation``: ``Distiller`` (KD, hints, attention transfer, QKD).
- ``tfq_plus.datasets``: offline MNIST / Fashion-MNIST / digits.
- ``tfq_plus.converters`` (imported on its own): Keras model -> .tflite with TFQP
  ops, ``verify``, ``report``, ``Interpreter``, C array; the ``tfq-plus`` command.

    import tfq_plus
    import larq as lq
    import tensorflow as tf
    from tfq_plus import quantizers

    inputs = tf.keras.Input((28, 28, 1))
    x = lq.layers.QuantConv2D(32, 3, kernel_quantizer=quantizers.PowerOfTwo(bits=4))(inputs)
    x = tf.keras.layers.Flatten()(x)
    x = lq.layers.QuantDense(10, input_quantizer=quantizers.PACT(bits=4),
                             kernel_quantizer=quantizers.LSQ(bits=4, signed=True))(x)
    model = tf.keras.Model(inputs, x)  # train, then tfq_plus.converters.convert_keras_model
"""

import sys as _sys

from tfq_plus import tensorflow_logs as _tensorflow_logs
from tfq_plus.keras_version import select_legacy_keras as _select_legacy_keras

# The command line hides TensorFlow's start-up logs unless --verbose (it runs this
# file before its own module: the package comes first).
if _tensorflow_logs.started_as_command():
    _tensorflow_logs.hide_by_default(_sys.argv[1:])
_select_legacy_keras()

# (TensorFlow loads more of its C++ libraries, and logs again, while larq, tf_keras
# and TFMOT import it: all of it is inside.)
with _tensorflow_logs.quiet_import():
    from tfq_plus import datasets, quantizers  # noqa: E402  (must follow the Keras selection)
    from tfq_plus import callbacks  # noqa: E402  (uses quantizers)
    from tfq_plus import distillation, pruning  # noqa: E402  (makes larq layers prunable)
    # TensorFlow probes for CUDA (and logs "failed call to cuInit" on a machine
    # without a GPU) when it first lists devices: done here, inside, not at the
    # user's first model.
    import tensorflow as _tf  # noqa: E402

    _tf.config.list_physical_devices("GPU")

__version__ = "0.1.0"

__all__ = ["callbacks", "datasets", "distillation", "pruning", "quantizers", "__version__"]
