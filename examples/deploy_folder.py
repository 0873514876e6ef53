"""The examples' last step: a trained Keras model -> a firmware-ready folder.

``deploy_to_folder`` runs the user path of ``tfq_plus.converters`` with one progress
line per step, and leaves everything in one folder:

    model.h5                     the trained Keras model (reload with tfq_plus imported)
    deploy.tflite                quantized layers as TFQP ops (what the firmware runs)
    reference.tflite             the stock int8 model of the same network (the baseline)
    NAME.h, NAME.cc              the deploy model as a C array, for TFLite Micro
    NAME_op_resolver.h           an op resolver registering exactly the ops it uses
    test.npz                     the first test images (x, y), for the firmware's sample.h
    verify.txt, report.txt       verify's and report's full text
    report.png                   weight bytes and MACs per layer (``report --plot``)

It ends with the summary every example prints: Keras vs deploy accuracy and argmax
agreement, flash, arena and MACs by kind; and the folder's path, last.
"""

import pathlib
import warnings
from typing import NamedTuple

import numpy as np

from tfq_plus import converters
from tfq_plus.converters.ops.registry import MAC_KINDS
from tfq_plus.converters.report_plot import plot_report

CALIBRATION_IMAGES = 200
FIRMWARE_TEST_IMAGES = 100


class Deployed(NamedTuple):
    folder: pathlib.Path
    verified: converters.VerifyReport
    report: converters.ModelReport


def _step(text: str) -> None:
    print(f"-- {text}", flush=True)


def _substep(text: str) -> None:
    print(f"   {text}", flush=True)


def deploy_to_folder(model, data, out, name: str, *, verify_samples: int,
                     min_agreement: float = 0.99) -> Deployed:
    """Convert ``model`` (trained on ``data``), verify it on the first
    ``verify_samples`` test images (fails below ``min_agreement`` argmax agreement,
    and on any TFQP op that does not compute what its Keras layer computes), and
    write the folder ``out`` (see the module doc); ``name`` names the C array."""
    folder = pathlib.Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():  # h5 on purpose: the format tfq-plus convert reads
        warnings.filterwarnings("ignore", message="You are saving your model as an HDF5 file")
        model.save(folder / "model.h5")
    np.savez(folder / "test.npz", x=data.x_test[:FIRMWARE_TEST_IMAGES],
             y=data.y_test[:FIRMWARE_TEST_IMAGES])

    _step(f"converting (calibration: {min(CALIBRATION_IMAGES, len(data.x_train))} training images)")
    deploy, reference = converters.convert_with_reference(
        model, representative_dataset=data.x_train[:CALIBRATION_IMAGES], progress=_substep)
    (folder / "deploy.tflite").write_bytes(deploy)
    (folder / "reference.tflite").write_bytes(reference)

    count = min(verify_samples, len(data.x_test))
    _step(f"verifying on {count} images")
    verified = converters.verify(model, deploy, data.x_test[:count], labels=data.y_test[:count],
                                 reference=reference, min_argmax_agreement=min_agreement)
    (folder / "verify.txt").write_text(str(verified) + "\n")
    print(verified)

    _step("writing C array")
    converters.write_c_array(deploy, folder, name)

    _step("report")
    report = converters.report(deploy, reference=reference)
    (folder / "report.txt").write_text(str(report) + "\n")
    plot_report(report, str(folder / "report.png"), title=f"{model.name} on {data.name}")
    print(report)
    print_summary(verified, report)
    print(f"everything is in {folder.resolve()}", flush=True)
    return Deployed(folder, verified, report)


def print_summary(verified: converters.VerifyReport, report: converters.ModelReport) -> None:
    """The closing lines every example prints."""
    deploy = verified.deploy[0]
    print(f"Keras accuracy {100 * verified.keras_accuracy:.2f} %, deploy accuracy "
          f"{100 * deploy.accuracy:.2f} % on {verified.samples} test images; "
          f"Keras vs deploy argmax agreement {100 * verified.argmax_agreement:.2f} % "
          f"(stock int8 reference: {100 * verified.reference_argmax_agreement:.2f} %)")
    if report.arena_bytes is None:
        arena = f"not measured ({report.arena_source})"
    elif report.arena_source == "this model":
        arena = f"{report.arena_bytes} bytes"
    else:  # TFLite Micro's Python interpreter cannot load TFQP ops
        arena = (f"of the int8 reference model {report.arena_bytes} bytes (the deploy model's: "
                 "a TFLite Micro build, benchmarks/firmware_e2e.py)")
    print(f"flash {report.flash_bytes} bytes (weights {report.weight_bytes}), tensor arena {arena}")
    kinds = ", ".join(f"{kind} {report.macs[kind]}" for kind in MAC_KINDS if report.macs.get(kind))
    print(f"MACs by kind: {kinds}")
