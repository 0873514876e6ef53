"""tfq-plus: train sub-8-bit Keras models and deploy them to TFLite / TFLite Micro."""

from tfq_plus.keras_version import select_legacy_keras as _select_legacy_keras

_select_legacy_keras()

from tfq_plus import datasets, quantizers  # noqa: E402  (must follow the Keras selection)
from tfq_plus import callbacks  # noqa: E402  (uses quantizers)
from tfq_plus import distillation, pruning  # noqa: E402  (pruning makes larq layers prunable)

__version__ = "0.1.0"

__all__ = ["callbacks", "datasets", "distillation", "pruning", "quantizers", "__version__"]
