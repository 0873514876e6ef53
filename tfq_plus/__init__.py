"""tfq-plus: train sub-8-bit Keras models and deploy them to TFLite / TFLite Micro."""

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
