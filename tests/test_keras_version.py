"""Keras 2 selection (docs/design.md, "Keras version"), each case in a fresh interpreter.

The test process itself has imported tfq_plus (conftest), which set
``TF_USE_LEGACY_KERAS=1`` in ``os.environ``; every subprocess therefore gets an
environment with that variable removed or set explicitly.
"""

import os
import subprocess
import sys
import textwrap

_FIX_HINTS = ("import tfq_plus", "TF_USE_LEGACY_KERAS=1")


def _run(code: str, legacy_keras=None) -> subprocess.CompletedProcess:
    env = {key: value for key, value in os.environ.items() if key != "TF_USE_LEGACY_KERAS"}
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    if legacy_keras is not None:
        env["TF_USE_LEGACY_KERAS"] = legacy_keras
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )


_REPORT_KERAS = """
    import tensorflow as tf
    import tf_keras
    assert tf.keras.layers.Layer is tf_keras.layers.Layer, tf.keras.layers.Layer.__module__
    assert tf.keras.Model is tf_keras.Model
    import larq
    assert issubclass(larq.layers.QuantConv2D, tf_keras.layers.Layer)
    print("KERAS2-OK")
"""


def test_import_tfq_plus_first_selects_tf_keras():
    result = _run("import tfq_plus\n" + textwrap.dedent(_REPORT_KERAS))
    assert result.returncode == 0, result.stderr[-3000:]
    assert "KERAS2-OK" in result.stdout


_TRY_IMPORT = """
try:
    import tfq_plus
except ImportError as error:
    print("IMPORT-ERROR:", error)
else:
    print("NO-ERROR")
"""
_IMPORT_TF_FIRST = "import tensorflow\n" + _TRY_IMPORT


def test_tensorflow_first_without_variable_raises_with_fix():
    result = _run(_IMPORT_TF_FIRST)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "IMPORT-ERROR:" in result.stdout, result.stdout
    for hint in _FIX_HINTS:
        assert hint in result.stdout, f"the error should say {hint!r}: {result.stdout}"


def test_variable_set_to_zero_raises_with_fix():
    # TF_USE_LEGACY_KERAS=0 explicitly asks for Keras 3, even with tfq_plus imported first.
    result = _run(_TRY_IMPORT, legacy_keras="0")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "IMPORT-ERROR:" in result.stdout, result.stdout
    assert "TF_USE_LEGACY_KERAS='0'" in result.stdout or "TF_USE_LEGACY_KERAS=0" in result.stdout
    for hint in _FIX_HINTS:
        assert hint in result.stdout, f"the error should say {hint!r}: {result.stdout}"


def test_tensorflow_first_with_variable_set_works():
    result = _run("import tensorflow\nimport tfq_plus\n" + textwrap.dedent(_REPORT_KERAS), "1")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "KERAS2-OK" in result.stdout
