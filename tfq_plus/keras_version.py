"""Select Keras 2 (``tf_keras``) before TensorFlow is first imported.

TensorFlow >= 2.16 binds ``tf.keras`` to Keras 3, but larq and the TensorFlow Model
Optimization Toolkit are written against Keras 2. TensorFlow decides which Keras
``tf.keras`` means from the ``TF_USE_LEGACY_KERAS`` environment variable the first
time ``tf.keras`` is resolved, so the variable must be set before that happens.
This module is imported first by ``tfq_plus/__init__.py``.
"""

import os
import sys

_LEGACY_VALUES = ("1", "true", "True")

_FIX = (
    "tfq_plus needs Keras 2 (the `tf_keras` package) as `tf.keras`, because larq and "
    "tensorflow-model-optimization do not support Keras 3. Either `import tfq_plus` "
    "before importing tensorflow, or set the environment variable TF_USE_LEGACY_KERAS=1 "
    "before Python starts (e.g. `export TF_USE_LEGACY_KERAS=1`)."
)


def _keras_major_version(tf_module) -> int:
    # tf_keras does not expose `__version__` through `tf.keras`; the module that
    # defines `Layer` tells the two apart (tf_keras.src... vs keras.src...).
    layer_module = tf_module.keras.layers.Layer.__module__
    return 2 if layer_module.startswith("tf_keras.") else 3


def select_legacy_keras() -> None:
    """Set ``TF_USE_LEGACY_KERAS=1`` or fail if Keras 3 is already bound.

    Raises:
        ImportError: TensorFlow was imported earlier and ``tf.keras`` resolves to
            Keras 3 (or the user explicitly set ``TF_USE_LEGACY_KERAS`` to another
            value), naming the fix.
    """
    current = os.environ.get("TF_USE_LEGACY_KERAS")
    if current is not None and current not in _LEGACY_VALUES:
        raise ImportError(f"TF_USE_LEGACY_KERAS={current!r} selects Keras 3. " + _FIX)
    tf_module = sys.modules.get("tensorflow")
    if tf_module is not None and current is None:
        # TensorFlow read its Keras choice when it was imported (the module path
        # `tensorflow.keras` is bound then, even though the attribute `tf.keras`
        # resolves lazily), so setting the variable now would give a mix of both.
        raise ImportError(
            "TensorFlow was imported before tfq_plus without TF_USE_LEGACY_KERAS=1, so "
            "`tensorflow.keras` is Keras 3. " + _FIX
        )
    os.environ["TF_USE_LEGACY_KERAS"] = "1"
    if tf_module is None:
        return
    try:
        major = _keras_major_version(tf_module)
    except ImportError as error:  # tf_keras missing
        raise ImportError("The `tf_keras` package is not installed. " + _FIX) from error
    if major != 2:
        raise ImportError(
            f"TensorFlow was imported before tfq_plus with Keras {major} active as "
            "`tf.keras`. " + _FIX
        )
