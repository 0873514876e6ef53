"""Tensor arena in TFLite Micro of the k-bit models of ``benchmarks/accuracy.py`` (PACT and
LSQ, 4 and 2 bits): deploy models with packed activations against the int8 reference.

    export TFQ_PLUS_DATA_DIR=../shared/data TF_CPP_MIN_LOG_LEVEL=2
    python benchmarks/kbit_arena.py --models out/models --tflm-dir /path/to/tflite-micro \\
        [--cmsis-nn /path/to/CMSIS-NN --cmsis /path/to/CMSIS_6] [--work build/kbit_arena] \\
        [--markdown]

For each trained model (``<row>.h5`` in ``--models``, from ``accuracy.py --save-models``)
the script converts once with its reference (calibration: the first 200 MNIST
training images, as ``kbit_agreement.py``) and once more with
``pack_activations=False``, and runs the three models in ``tflite::MicroInterpreter``
on the host: ``micro/tflm/tests/tflm_runner.cc`` built against the TFLite Micro tree's
host library with the TFQP ops' portable kernels (``make -C micro/tflm``, the
``portable`` variant: the kernels a microcontroller without a DSP path runs, and the
scratch and tables they ask for), on the first MNIST test image; the deploy models'
outputs must equal the host ``Interpreter``'s. It prints ``arena_used_bytes()`` of
each, split as TFLite Micro's recording allocator reports it: the head (tensors and
the ops' scratch, planned) and the tail (persistent: the TFQP ops' tables, op data,
tensor structs), and the ratio deploy / reference. The issue's goal: the arena of a
4-bit-activation model <= 0.6x of the int8 reference's.

With ``--cmsis-nn`` and ``--cmsis`` (or ``CMSIS_NN_PATH`` / ``CMSIS_PATH``) it also builds
each deploy model and its reference into the Cortex-M4 firmware example
(``micro/examples/cortex_m4``, as ``benchmarks/firmware_e2e.py`` does: TFLite Micro's
CMSIS-NN builtin kernels, the TFQP ops' Cortex-M DSP kernels, 32-bit pointers) and runs it
under qemu (mps2-an386) on 3 test images: ``arena_used_bytes()`` and the instructions of
one inference, the classes checked against the host ``Interpreter``'s. That is the arena a
Cortex-M4 user ships, with the DSP kernels' tables and scratch.

Without a TFLite Micro tree and its host library (``--tflm-dir`` or ``TFLM_DIR``;
``make -f tensorflow/lite/micro/tools/make/Makefile microlite`` builds it) the script
prints why and exits with status 0.
"""

import argparse
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

import tfq_plus  # noqa: F401  (selects Keras 2 before TensorFlow is imported)

import tensorflow as tf

from tfq_plus import converters, datasets

ROOT = Path(__file__).resolve().parent.parent
MODELS = {"pact4": "PACT 4-bit", "lsq4": "LSQ 4-bit", "pact2": "PACT 2-bit", "lsq2": "LSQ 2-bit"}
GOAL = 0.6  # deploy arena / reference arena, 4-bit activations
HOST_LIBRARY = "gen/linux_x86_64_default_gcc/lib/libtensorflow-microlite.a"


def missing_tflm(tflm_dir) -> str:
    """Why the arena cannot be measured here ('' when it can)."""
    if not tflm_dir:
        return "no TFLite Micro tree: pass --tflm-dir or set TFLM_DIR"
    if not (Path(tflm_dir) / HOST_LIBRARY).is_file():
        return (f"no TFLite Micro host library at {Path(tflm_dir) / HOST_LIBRARY}: build it with "
                f"`make -C {tflm_dir} -f tensorflow/lite/micro/tools/make/Makefile microlite`")
    return ""


def build_runner(tflm_dir: str, work: Path) -> Path:
    """micro/tflm's portable host runner (its Makefile), built into ``work``."""
    build = (work / "tflm").resolve()
    runner = build / "portable" / "tflm_runner"
    subprocess.run(["make", "-s", "-C", str(ROOT / "micro" / "tflm"), str(runner),
                    f"TFLM_DIR={Path(tflm_dir).resolve()}", f"BUILD={build}"],
                   check=True, capture_output=True, text=True)
    return runner


def run_arena(runner: Path, flatbuffer: bytes, sample: np.ndarray, work: Path, name: str):
    """(total, head, tail) arena bytes of one model, and its raw output bytes."""
    model, inputs, outputs = (work / f"{name}.tflite", work / f"{name}.in", work / f"{name}.out")
    model.write_bytes(flatbuffer)
    inputs.write_bytes(np.ascontiguousarray(sample).tobytes())
    done = subprocess.run([str(runner), str(model), str(inputs), str(outputs), "1"],
                          capture_output=True, text=True, timeout=300)
    text = done.stdout + done.stderr
    if done.returncode != 0:
        raise RuntimeError(f"{name}: the TFLite Micro runner failed ({done.returncode}):\n{text}")
    found = {key: re.search(rf"{pattern} (\d+)", text) for key, pattern in (
        ("total", "arena_used_bytes"), ("head", "Arena allocation head"),
        ("tail", "Arena allocation tail"))}
    if not all(found.values()):
        raise RuntimeError(f"{name}: the runner printed no arena breakdown:\n{text}")
    return {key: int(match.group(1)) for key, match in found.items()}, outputs.read_bytes()


def cortex_m4(key: str, flatbuffers: dict, data, work: Path, args) -> dict:
    """arena_used_bytes() and instructions of the deploy model and the reference built
    into the Cortex-M4 firmware example with CMSIS-NN (firmware_e2e's steps)."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import firmware_e2e  # noqa: E402  (needs micro/cortex_m and the example on sys.path)

    test = work / "m4_test.npz"
    np.savez(test, x=data.x_test[:3], y=data.y_test[:3])
    build_dir = (work / "m4_build").resolve()
    plugin_args = argparse.Namespace(jobs=2, tflm_dir=str(Path(args.tflm_dir).resolve()),
                                     cmsis_nn=str(Path(args.cmsis_nn).resolve()),
                                     cmsis=str(Path(args.cmsis).resolve()))
    result = {}
    for name in ("deploy", "reference"):
        model_name = f"{key}_{name[:3]}"
        path = work / f"{model_name}.tflite"
        path.write_bytes(flatbuffers[name])
        host, _ = firmware_e2e.write_model_dir(path, test, 3, work / model_name, model_name)
        elf = firmware_e2e.build(work / model_name, model_name, "cmsis_nn", plugin_args,
                                 build_dir)
        counts, _, classes, arena = firmware_e2e.run_counted(
            elf, build_dir / "insn_count_plugin.so")
        if classes != host:
            raise RuntimeError(f"{key} {name}: the Cortex-M4 classes {classes} differ from the "
                               f"host Interpreter's {host}")
        result[name] = {"arena": arena, "instructions": min(counts)}
    return result


def host_output(flatbuffer: bytes, sample: np.ndarray) -> bytes:
    interpreter = converters.Interpreter(flatbuffer)
    return b"".join(np.ascontiguousarray(o).tobytes() for o in interpreter.invoke([sample]))


def measure(key: str, path: str, data, runner: Path, work: Path, args) -> dict:
    model = tf.keras.models.load_model(path, compile=False)
    calibration = data.x_train[:200]
    deploy, reference = converters.convert_with_reference(model, representative_dataset=calibration)
    unpacked = converters.convert_keras_model(model, representative_dataset=calibration,
                                              pack_activations=False)
    image = data.x_test[:1]
    sample = converters.Interpreter(deploy).quantize(image, 0)
    row = {"key": key, "label": MODELS[key]}
    for name, flatbuffer in (("deploy", deploy), ("unpacked", unpacked), ("reference", reference)):
        arena, output = run_arena(runner, flatbuffer, sample, work, f"{key}_{name}")
        if name != "reference" and output != host_output(flatbuffer, sample):
            raise RuntimeError(f"{key} {name}: TFLite Micro's output differs from the host Interpreter's")
        row[name] = arena
    row["peak"] = converters.report(deploy, measure=False).activation_peak_bytes
    if args.cmsis_nn and args.cmsis:
        row["m4"] = cortex_m4(key, {"deploy": deploy, "reference": reference}, data, work, args)
    return row


HEADER = ["model", "arena deploy (packed): total = tensors and scratch + persistent",
          "deploy, codes one per byte", "int8 reference", "deploy / reference", "tensors and scratch: "
          "deploy / reference", "goal (4-bit)", "met"]


def ratio(a: int, b: int) -> str:
    return f"{a / b:.2f}x"


M4_HEADER = ["model", "Cortex-M4 arena: deploy / int8 reference (CMSIS-NN)", "ratio",
             "instructions / inference: deploy / int8 reference", "ratio", "goal (4-bit)", "met"]


def cells(r: dict) -> list:
    d, u, ref = r["deploy"], r["unpacked"], r["reference"]
    four_bit = r["key"].endswith("4")
    met = d["total"] <= GOAL * ref["total"]
    return [r["label"], f"{d['total']:,} = {d['head']:,} + {d['tail']:,}",
            f"{u['total']:,} = {u['head']:,} + {u['tail']:,}",
            f"{ref['total']:,} = {ref['head']:,} + {ref['tail']:,}", ratio(d["total"], ref["total"]),
            ratio(d["head"], ref["head"]), f"<= {GOAL}x" if four_bit else "-",
            ("yes" if met else "no") if four_bit else "-"]


def m4_cells(r: dict) -> list:
    d, ref = r["m4"]["deploy"], r["m4"]["reference"]
    four_bit = r["key"].endswith("4")
    met = d["arena"] <= GOAL * ref["arena"]
    return [r["label"], f"{d['arena']:,} / {ref['arena']:,}", ratio(d["arena"], ref["arena"]),
            f"{d['instructions']:,} / {ref['instructions']:,}",
            ratio(d["instructions"], ref["instructions"]), f"<= {GOAL}x" if four_bit else "-",
            ("yes" if met else "no") if four_bit else "-"]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", required=True, help="folder of accuracy.py --save-models (<row>.h5)")
    parser.add_argument("--only", default=",".join(MODELS), help=f"comma-separated subset of {list(MODELS)}")
    parser.add_argument("--tflm-dir", default=os.environ.get("TFLM_DIR"),
                        help="TFLite Micro source tree with its host library (default: $TFLM_DIR)")
    parser.add_argument("--cmsis-nn", default=os.environ.get("CMSIS_NN_PATH"),
                        help="CMSIS-NN source tree: also measure the Cortex-M4 firmware build "
                             "(default: $CMSIS_NN_PATH)")
    parser.add_argument("--cmsis", default=os.environ.get("CMSIS_PATH"),
                        help="CMSIS_6 source tree CMSIS-NN needs (default: $CMSIS_PATH)")
    parser.add_argument("--work", help="folder for the runner and the models (default: a temporary one)")
    parser.add_argument("--markdown", action="store_true", help="print the README table")
    args = parser.parse_args(argv)
    keys = [k for k in args.only.split(",") if k]
    unknown = sorted(set(keys) - set(MODELS))
    if unknown:
        parser.error(f"unknown models {unknown}; choose from {list(MODELS)}")
    reason = missing_tflm(args.tflm_dir)
    if reason:
        print(f"skipped: {reason}")
        return []
    for key in keys:
        if not os.path.exists(os.path.join(args.models, f"{key}.h5")):
            parser.error(f"{args.models}/{key}.h5 not found: train it with benchmarks/accuracy.py --only "
                         f"{key} --save-models {args.models}")
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(args.work or scratch)
        work.mkdir(parents=True, exist_ok=True)
        runner = build_runner(args.tflm_dir, work)
        data = datasets.load("mnist")
        rows = []
        for key in keys:
            row = measure(key, os.path.join(args.models, f"{key}.h5"), data, runner, work, args)
            rows.append(row)
            print("  ".join(cells(row)), flush=True)
            if "m4" in row:
                print("  Cortex-M4:", "  ".join(m4_cells(row)[1:]), flush=True)
    if args.markdown:
        print()
        print("| " + " | ".join(HEADER) + " |")
        print("|" + "---|" * len(HEADER))
        for row in rows:
            print("| " + " | ".join(cells(row)) + " |")
        if rows and all("m4" in row for row in rows):
            print()
            print("| " + " | ".join(M4_HEADER) + " |")
            print("|" + "---|" * len(M4_HEADER))
            for row in rows:
                print("| " + " | ".join(m4_cells(row)) + " |")
    return rows


if __name__ == "__main__":
    sys.exit(0 if main() is not None else 1)
