"""The ``tfq-plus`` command: help, convert -> verify -> report on a saved model, and
one line (never a traceback) for every mistake."""

import pathlib
import re
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from test_converter_models import converted, pool_then_batch_norm_model, samples

from tfq_plus import converters
from tfq_plus.converters import cli


def test_help_explains_the_commands(capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["--help"])
    assert exit_.value.code == 0
    text = capsys.readouterr().out
    for word in ("convert", "verify", "report", "Typical session", ".npz"):
        assert word in text
    for command in ("convert", "verify", "report"):
        with pytest.raises(SystemExit) as exit_:
            cli.main([command, "--help"])
        assert exit_.value.code == 0
    assert "--calibration" in capsys.readouterr().out


def test_convert_verify_report_round_trip(tmp_path, capsys):
    model = pool_then_batch_norm_model()
    model_path = tmp_path / "bnn.h5"
    model.save(model_path)
    data = tmp_path / "data.npz"
    x = samples(model, 16, seed=3)
    np.savez(data, x=x, y=np.argmax(model.predict(x, verbose=0), axis=1))
    deploy, reference = tmp_path / "out" / "bnn.tflite", tmp_path / "out" / "bnn_ref.tflite"

    assert cli.main(["convert", str(model_path), "--calibration", str(data), "-o", str(deploy),
                     "--reference-out", str(reference), "--c-array", str(tmp_path / "c"), "--name", "bnn"]) == 0
    assert deploy.exists() and reference.exists() and (tmp_path / "c" / "bnn_op_resolver.h").exists()
    assert deploy.stat().st_size < reference.stat().st_size
    # one line per step as it starts, the conversion's own steps indented under it
    lines = capsys.readouterr().out.splitlines()
    steps = [line for line in lines if line.startswith("-- ")]
    assert steps == ["-- loading the model", "-- converting", "-- writing the output"]
    converting = lines[lines.index("-- converting") + 1:lines.index("-- writing the output")]
    assert [line.split(":")[0].strip() for line in converting] == [
        "planning", f"{len(converters.plan(model))} quantized layer(s) planned; stock full-int8 conversion (the reference model; "
        "TensorFlow's converter, the slowest step)", "rewriting"]

    assert cli.main(["verify", str(model_path), str(deploy), str(reference), "--samples", str(data),
                     "--count", "4", "--min-agreement", "0"]) == 0
    out = capsys.readouterr().out
    assert "tfq-plus verify: OK" in out and "Keras accuracy 100.00 %" in out
    assert "   deploy model and Keras on samples 1-4 of 4" in out
    assert "   the reference model on the 4 samples (TFLite Micro)" in out
    assert "Keras ~ reference" in out  # the optional reference, for comparison

    # without a reference; a percentage where a fraction is meant is refused
    assert cli.main(["verify", str(model_path), str(deploy), "--samples", str(data), "--count", "4",
                     "--min-agreement", "0"]) == 0
    assert "Keras ~ reference" not in capsys.readouterr().out
    assert cli.main(["verify", str(model_path), str(deploy), "--samples", str(data), "--min-agreement", "95"]) == 1
    assert "must be a fraction from 0 to 1 (0.99 means 99 %), got 95" in capsys.readouterr().err

    assert cli.main(["report", str(deploy), "--reference", str(reference)]) == 0
    assert "TFQP_BCONV2D" in capsys.readouterr().out


# --- mistakes: one line on stderr, exit status 1, never a traceback ------------------


class Doubling(tf.keras.layers.Layer):
    """A custom layer: a saved model holding it loads only where the class is known."""

    def call(self, inputs):
        return 2.0 * inputs


class Workspace:
    """A saved model, its conversions and data files, and files of the wrong kind."""

    def __init__(self, root):
        converted_model = converted("pool_bn")
        self.root = root
        self.model = str(root / "bnn.h5")
        converted_model.model.save(self.model)
        self.deploy, self.reference = str(root / "bnn.tflite"), str(root / "bnn_ref.tflite")
        (root / "bnn.tflite").write_bytes(converted_model.deploy)
        (root / "bnn_ref.tflite").write_bytes(converted_model.reference)
        x = samples(converted_model.model, 8, seed=3)
        self.data = self._npz("data.npz", x=x, y=np.arange(8) % 10)
        self.short_labels = self._npz("short_labels.npz", x=x, y=np.arange(7) % 10)
        with_nan = x.copy()
        with_nan[2, 0, 0, 0] = np.nan
        self.nan = self._npz("nan.npz", x=with_nan)
        self.empty = self._npz("empty.npz", x=x[:0])
        self.npy = str(root / "plain.npy")
        np.save(self.npy, x)
        self.text = str(root / "notes.txt")
        (root / "notes.txt").write_text("not a model")
        self.a_file = self.text
        self.directory = str(root / "out.tflite")
        (root / "out.tflite").mkdir()
        inputs = tf.keras.Input((6, 4))
        lstm = tf.keras.Model(inputs, tf.keras.layers.Dense(3)(tf.keras.layers.LSTM(4)(inputs)))
        self.lstm = str(root / "lstm.h5")
        lstm.save(self.lstm)
        self.sequences = self._npz("sequences.npz", x=samples(lstm, 4))
        self.custom = str(root / "custom.h5")
        inputs = tf.keras.Input((4,))
        tf.keras.Model(inputs, Doubling()(inputs)).save(self.custom)
        self.corrupt = str(root / "corrupt.npz")
        (root / "corrupt.npz").write_bytes(b"PK\x03\x04 not really a zip")

    def _npz(self, name, **arrays):
        path = str(self.root / name)
        np.savez(path, **arrays)
        return path

    def out(self, name="new.tflite"):
        return str(self.root / "written" / name)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    return Workspace(tmp_path_factory.mktemp("cli"))


MISTAKES = {
    "no command": (lambda w: [], "the following arguments are required: command"),
    "missing model": (lambda w: ["convert", w.model + ".missing.h5", "--calibration", w.data, "-o", w.out()],
                      "model '.*missing.h5' does not exist"),
    "tflite as the model": (lambda w: ["convert", w.deploy, "--calibration", w.data, "-o", w.out()],
                            "must be a .h5 / .keras file or a SavedModel directory"),
    "unwritable -o": (lambda w: ["convert", w.model, "--calibration", w.data, "-o", "/proc/tfq-plus/model.tflite"],
                      r"-o '/proc/tfq-plus/model.tflite': cannot write in '/proc'"),
    "-o is a directory": (lambda w: ["convert", w.model, "--calibration", w.data, "-o", w.directory],
                          "-o '.*out.tflite' is a directory"),
    "-o under a file": (lambda w: ["convert", w.model, "--calibration", w.data, "-o", w.a_file + "/m.tflite"],
                        "-o .*notes.txt' is a file, so no directory can be made there"),
    "-o without .tflite": (lambda w: ["convert", w.model, "--calibration", w.data, "-o", w.out("model.h5")],
                           "-o '.*model.h5': the file name must end in .tflite"),
    "-o twice": (lambda w: ["convert", w.model, "--calibration", w.data, "-o", w.out(), "--reference-out", w.out()],
                 "-o and --reference-out are the same file"),
    "--c-array is a file": (lambda w: ["convert", w.model, "--calibration", w.data, "-o", w.out(),
                                       "--c-array", w.a_file], "--c-array '.*notes.txt' is a file"),
    "--name not a C identifier": (lambda w: ["convert", w.model, "--calibration", w.data, "-o", w.out(),
                                             "--name", "1-model"], "argument --name: must be a C identifier"),
    "missing calibration": (lambda w: ["convert", w.model, "--calibration", w.data + ".gone", "-o", w.out()],
                            "--calibration '.*gone' does not exist"),
    ".npy calibration": (lambda w: ["convert", w.model, "--calibration", w.npy, "-o", w.out()],
                         r"--calibration '.*plain.npy' holds one array \(.npy\), not an .npz archive"),
    "text as calibration": (lambda w: ["convert", w.model, "--calibration", w.text, "-o", w.out()],
                            "--calibration '.*notes.txt' is not a readable .npz file"),
    "corrupt calibration": (lambda w: ["convert", w.model, "--calibration", w.corrupt, "-o", w.out()],
                            r"--calibration '.*corrupt.npz' is not a readable .npz file \(File is not a zip file\)"),
    "a model with a custom layer": (lambda w: ["convert", w.custom, "--calibration", w.data, "-o", w.out()],
                                    r"model '.*custom.h5' cannot be loaded \(ValueError: Unknown layer: 'Doubling'.*"
                                    r"convert a model with custom layers from Python"),
    "empty calibration": (lambda w: ["convert", w.model, "--calibration", w.empty, "-o", w.out()],
                          r"array 'x' holds no samples \(shape \[0, 12, 12, 1\]\)"),
    "no such --key": (lambda w: ["convert", w.model, "--calibration", w.data, "-o", w.out(), "--key", "images"],
                      r"has no array 'images' \(--key\); its arrays: \['x', 'y'\]"),
    "--count 0": (lambda w: ["convert", w.model, "--calibration", w.data, "-o", w.out(), "--count", "0"],
                  "argument --count: must be a whole number of samples >= 1, got 0"),
    "NaN calibration": (lambda w: ["convert", w.model, "--calibration", w.nan, "-o", w.out()],
                        "input 'input_.*' holds 1 NaN and 0 infinite values .* cannot be calibrated"),
    "LSTM": (lambda w: ["convert", w.lstm, "--calibration", w.sequences, "-o", w.out()],
             r"layer 'lstm' \(LSTM\) cannot be converted.*unroll=True"),
    "labels of the wrong length": (lambda w: ["verify", w.model, w.deploy, "--samples", w.short_labels],
                                   r"7 labels in 'y' \(--labels-key\) for 8 samples in 'x'"),
    "Keras model as the deploy model": (lambda w: ["verify", w.model, w.model, "--samples", w.data],
                                        "deploy model '.*bnn.h5' is a Keras model, not a .tflite flatbuffer"),
    "a percentage as --min-agreement": (lambda w: ["verify", w.model, w.deploy, "--samples", w.data,
                                                   "--min-agreement", "95"],
                                        r"must be a fraction from 0 to 1 \(0.99 means 99 %\), got 95"),
    "negative --max-error-lsb": (lambda w: ["verify", w.model, w.deploy, "--samples", w.data,
                                            "--max-error-lsb", "-1"], "must be a number of output LSBs >= 0"),
    "Keras model to report": (lambda w: ["report", w.model], "model '.*bnn.h5' is a Keras model"),
    "text to report": (lambda w: ["report", w.text], "is not a .tflite flatbuffer"),
}


@pytest.mark.parametrize("mistake", sorted(MISTAKES))
def test_a_mistake_gets_one_line_naming_the_argument_and_no_traceback(workspace, capsys, mistake):
    argv, expected = MISTAKES[mistake]
    assert cli.main(argv(workspace)) == 1
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err + captured.out
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, lines
    assert re.match(r"tfq-plus( \w+)?: ", lines[0]), lines[0]
    assert re.search(expected, lines[0]), lines[0]
    assert not (workspace.root / "written").exists()  # nothing half-written


def test_calibration_warnings_are_one_line_each(workspace, capsys, tmp_path):
    pixels = tmp_path / "pixels.npz"
    x = samples(converted("pool_bn").model, 8, seed=3)
    np.savez(pixels, x=np.round((x + 1) * 127.5).astype(np.uint8))
    assert cli.main(["convert", workspace.model, "--calibration", str(pixels), "-o", str(tmp_path / "m.tflite")]) == 0
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("tfq-plus convert: warning: calibration data")
    assert "it is uint8 data (values 0..255)" in lines[0] and "x / 255.0" in lines[0]


def test_an_unexpected_error_names_the_step_and_debug_shows_the_traceback(workspace, capsys, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("the converter broke")

    monkeypatch.setattr(converters, "convert_keras_model", broken)
    argv = ["convert", workspace.model, "--calibration", workspace.data, "-o", workspace.out()]
    assert cli.main(argv) == 1
    err = capsys.readouterr().err
    assert err.strip() == ("tfq-plus convert: converting failed with RuntimeError: the converter broke "
                           "(rerun with --debug for the traceback)")
    assert cli.main(["--debug"] + argv) == 1
    err = capsys.readouterr().err
    assert "Traceback" in err and "in broken" in err
    assert err.strip().endswith("converting failed with RuntimeError: the converter broke")
    assert cli.main(argv + ["--debug"]) == 1  # after the command too
    assert "Traceback" in capsys.readouterr().err


def test_no_pack_activations_reaches_the_converter(workspace, monkeypatch):
    """--no-pack-activations converts with pack_activations=False (default True)."""
    seen = []

    def convert(model, **kwargs):
        seen.append(kwargs["pack_activations"])
        return b"TFL3"

    monkeypatch.setattr(converters, "convert_keras_model", convert)
    argv = ["convert", workspace.model, "--calibration", workspace.data, "-o", workspace.out()]
    assert cli.main(argv) == 0
    assert cli.main(argv + ["--no-pack-activations"]) == 0
    assert seen == [True, False]


def test_a_library_check_is_printed_as_it_is(workspace):
    """ValueErrors raised by tfq_plus's own checks are messages for the user;
    others (numpy's, TensorFlow's) are unexpected."""
    def raised(function):
        try:
            function()
        except ValueError as error:
            return error

    check = raised(lambda: converters.convert_keras_model(converted("pool_bn").model, representative_dataset=None))
    assert cli.is_library_check(check)
    assert not cli.is_library_check(raised(lambda: np.zeros(3) + np.zeros(4)))
    assert not cli.is_library_check(raised(lambda: int("x")))


def test_the_console_script_prints_no_traceback(workspace):
    """The installed command, as a user runs it (TensorFlow's start-up log lines
    aside, stderr is the one sentence)."""
    script = pathlib.Path(sys.executable).parent / "tfq-plus"
    command = [str(script)] if script.exists() else [sys.executable, "-m", "tfq_plus.converters.cli"]
    result = subprocess.run(command + ["convert", workspace.model, "--calibration", workspace.data,
                                       "-o", "/proc/tfq-plus/model.tflite"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("tfq-plus convert: -o '/proc/tfq-plus/model.tflite'")
