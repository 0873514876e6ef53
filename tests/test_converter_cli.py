"""The ``tfq-plus`` command: help, and convert -> verify -> report on a saved model."""

import numpy as np
import pytest

from test_converter_models import pool_then_batch_norm_model, samples

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

    assert cli.main(["verify", str(model_path), str(deploy), str(reference), "--samples", str(data),
                     "--count", "4", "--min-agreement", "0"]) == 0
    out = capsys.readouterr().out
    assert "tfq-plus verify: OK" in out and "Keras accuracy 100.00 %" in out
    assert "Keras ~ reference" in out  # the optional reference, for comparison

    # without a reference; a percentage where a fraction is meant is refused
    assert cli.main(["verify", str(model_path), str(deploy), "--samples", str(data), "--count", "4",
                     "--min-agreement", "0"]) == 0
    assert "Keras ~ reference" not in capsys.readouterr().out
    with pytest.raises(SystemExit):
        cli.main(["verify", str(model_path), str(deploy), "--samples", str(data), "--min-agreement", "95"])
    assert "must be a fraction from 0 to 1 (0.99 means 99 %), got 95" in capsys.readouterr().err

    assert cli.main(["report", str(deploy), "--reference", str(reference)]) == 0
    assert "TFQP_BCONV2D" in capsys.readouterr().out


def test_bad_inputs_fail_with_a_message(tmp_path, capsys):
    with pytest.raises(SystemExit, match="does not exist"):
        cli.main(["report", str(tmp_path / "missing.tflite")])
    (tmp_path / "model.txt").write_text("x")
    with pytest.raises(SystemExit, match="must be a .h5"):
        cli.load_model(str(tmp_path / "model.txt"))
