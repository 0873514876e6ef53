"""TensorFlow's start-up logs: hidden for the command line, untouched for library users."""

import os
import subprocess
import sys

import pytest

from tfq_plus import tensorflow_logs


def test_bad_setting_names_the_variable_and_the_allowed_values(monkeypatch):
    monkeypatch.setenv("TFQ_PLUS_TF_LOGS", "quiet")
    with pytest.raises(ValueError, match=r"TFQ_PLUS_TF_LOGS='quiet'.*'hide'.*'show'"):
        tensorflow_logs.hidden()


def _write_to_descriptor_2(text: bytes):
    os.write(2, text)


def test_hidden_import_keeps_what_descriptor_2_received(monkeypatch, capfd):
    monkeypatch.setenv("TFQ_PLUS_TF_LOGS", "hide")
    monkeypatch.setattr(tensorflow_logs, "import_log", [])
    with tensorflow_logs.quiet_import():
        _write_to_descriptor_2(b"oneDNN custom operations are on\n")
    assert capfd.readouterr().err == ""
    assert tensorflow_logs.import_log == ["oneDNN custom operations are on\n"]


def test_failed_hidden_import_shows_the_logs(monkeypatch, capfd):
    monkeypatch.setenv("TFQ_PLUS_TF_LOGS", "hide")
    monkeypatch.setattr(tensorflow_logs, "import_log", [])
    with pytest.raises(ImportError):
        with tensorflow_logs.quiet_import():
            _write_to_descriptor_2(b"libcudart.so: cannot open shared object file\n")
            raise ImportError("no module")
    assert "libcudart.so" in capfd.readouterr().err


def test_shown_by_default(monkeypatch, capfd):
    monkeypatch.delenv("TFQ_PLUS_TF_LOGS", raising=False)
    monkeypatch.setattr(tensorflow_logs, "import_log", [])
    with tensorflow_logs.quiet_import():
        _write_to_descriptor_2(b"a library user's log\n")
    assert "a library user's log" in capfd.readouterr().err
    assert tensorflow_logs.import_log == []


def test_command_line_hides_unless_verbose(monkeypatch):
    monkeypatch.delenv("TFQ_PLUS_TF_LOGS", raising=False)
    tensorflow_logs.hide_by_default(["report", "model.tflite"])
    assert os.environ["TFQ_PLUS_TF_LOGS"] == "hide"
    monkeypatch.delenv("TFQ_PLUS_TF_LOGS")
    tensorflow_logs.hide_by_default(["--verbose", "report"])
    assert os.environ["TFQ_PLUS_TF_LOGS"] == "show"


def test_tfq_plus_help_prints_no_tensorflow_logs():
    """The installed console script, in a fresh process (TensorFlow imported there)."""
    command = os.path.join(os.path.dirname(sys.executable), "tfq-plus")
    environment = {k: v for k, v in os.environ.items() if k not in ("TFQ_PLUS_TF_LOGS", "TF_CPP_MIN_LOG_LEVEL")}
    done = subprocess.run([command, "--help"], capture_output=True, text=True, env=environment, timeout=300)
    assert done.returncode == 0
    assert "usage: tfq-plus" in done.stdout
    assert done.stderr == ""


def test_hidden_call_keeps_the_stock_converters_progress_lines(monkeypatch, capfd):
    monkeypatch.setenv("TFQ_PLUS_TF_LOGS", "hide")
    monkeypatch.setattr(tensorflow_logs, "call_log", [])
    with tensorflow_logs.quiet_call():
        _write_to_descriptor_2(b"fully_quantize: 0, inference_type: 6, input_inference_type: INT8\n")
    assert capfd.readouterr().err == ""
    assert tensorflow_logs.call_log == ["fully_quantize: 0, inference_type: 6, input_inference_type: INT8\n"]
    with pytest.raises(RuntimeError):
        with tensorflow_logs.quiet_call():
            _write_to_descriptor_2(b"error: 'tf.Erf' op is neither a custom op nor a flex op\n")
            raise RuntimeError("conversion failed")
    assert "tf.Erf" in capfd.readouterr().err


def test_hidden_import_leaves_nothing_for_the_first_model_to_log():
    """TensorFlow's device probe (``failed call to cuInit`` on a machine without a GPU)
    runs inside the hidden import, not at the user's first model, in a fresh process."""
    script = (
        "import os, tfq_plus, tensorflow as tf\n"
        "os.write(2, b'imported\\n')\n"
        "model = tf.keras.Sequential([tf.keras.Input((3,)), tf.keras.layers.Dense(2)])\n"
        "model.predict(tf.ones((1, 3)), verbose=0)\n"
    )
    environment = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    environment["TFQ_PLUS_TF_LOGS"] = "hide"
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env=environment, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stderr == "imported\n"
