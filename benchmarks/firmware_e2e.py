"""End to end on a Cortex-M4: the firmware example's networks as deploy models (TFQP
ops) and as int8 references (builtin ops only), each built with TFLite Micro's
CMSIS-NN kernels and with its reference kernels, run under qemu (mps2-an386).

    python benchmarks/firmware_e2e.py --tflm-dir /path/to/tflite-micro \\
        --cmsis-nn /path/to/CMSIS-NN --cmsis /path/to/CMSIS_6 [--work build/fw_e2e]

The networks (micro/examples/cortex_m4/firmware_inputs.py, trained seeded): the
example's MNIST BNN (``bnn``, 2 epochs) and a 98 k-weight Fashion-MNIST BNN
(``small_bnn``, 3 epochs); ``--networks`` picks, ``--inputs NAME=DIR`` takes a
directory `firmware_inputs.py train` wrote instead of training. Steps (the README's
firmware recipe, scripted): train, convert (``tfq-plus convert --reference-out``),
write the C arrays and 10 test images as int8 codes (sample.h), build each model x
kernel set with micro/examples/cortex_m4/Makefile and run it with the
instruction-counting TCG plugin. Per network it prints the deploy model's test
accuracy (host Interpreter, whole test set); per build:

- instructions of one inference: counted between bench_mark() calls around each
  image's Invoke() (exact, the same every run; the range over the images if they
  differ);
- the per-op breakdown: one more Invoke() of image 0 under a profiler whose
  BeginEvent / EndEvent call the marker (each op's count includes the few
  instructions of the profiler calls);
- flash: text + data of the image (arm-none-eabi-size; code, constants, the model);
- the flatbuffer's bytes and the tensor arena the model uses (arena_used_bytes);
- the predicted classes of the images, which must equal the host
  ``tfq_plus.converters.Interpreter``'s (exit status 1 otherwise).

The goal the issue sets (#13): deploy + CMSIS-NN needs >= 8x fewer instructions
than the int8 reference + CMSIS-NN, with <= 0.15x its flatbuffer bytes and <= its
arena; the summary line says which parts are met.
"""

import argparse
import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "micro" / "examples" / "cortex_m4"
sys.path.insert(0, str(ROOT / "micro" / "cortex_m"))
sys.path.insert(0, str(EXAMPLE))

import tfq_plus  # noqa: E402,F401  (selects Keras 2 before TensorFlow)

import firmware_inputs  # noqa: E402
import qemu_runner  # noqa: E402

KERNEL_SETS = ("cmsis_nn", "reference")


@dataclass(frozen=True)
class Network:
    name: str  # as the table shows it
    key: str  # --networks / --inputs / file names
    dataset: str
    arch: str  # firmware_inputs.ARCHITECTURES
    epochs: int


NETWORKS = {
    "mnist": Network("MNIST BNN", "mnist", "mnist", "bnn", 2),
    "fashion": Network("Fashion-MNIST BNN (98 k weights)", "fashion", "fashion_mnist",
                       "small_bnn", 3),
}
GOAL_SPEED_UP = 8.0
GOAL_FLATBUFFER_RATIO = 0.15


@dataclass
class Firmware:
    """One model x kernel set, built and run."""
    network: str
    model: str
    kernels: str
    flatbuffer_bytes: int
    instructions: List[int]  # per image
    ops: List[Tuple[str, int]]  # (op name, instructions) of image 0's profiled run
    flash_bytes: int
    arena_bytes: int
    classes: List[int]
    host_classes: List[int]
    labels: List[int] = field(default_factory=list)


# --- inputs: the trained model, the two flatbuffers, their C arrays -----------------


def train_inputs(work: Path, network: Network) -> Path:
    """firmware_inputs.py train (seeded) into work/inputs_<key>; kept for later runs."""
    directory = work / f"inputs_{network.key}"
    if not (directory / "model.h5").is_file():
        code = firmware_inputs.main(["train", str(directory), "--epochs", str(network.epochs),
                                     "--dataset", network.dataset, "--arch", network.arch])
        if code != 0:
            raise RuntimeError(f"firmware_e2e: training the {network.name} failed")
    return directory


def model_names(network: Network) -> Dict[str, str]:
    """C array names of the deploy model and the int8 reference."""
    return {"deploy": f"{network.key}_bnn", "int8 reference": f"{network.key}_ref"}


def convert(inputs: Path, work: Path, network: Network) -> Dict[str, Path]:
    """The deploy model and its int8 reference (tfq-plus convert --reference-out)."""
    from tfq_plus.converters import cli

    paths = {model: work / f"{name}.tflite" for model, name in model_names(network).items()}
    code = cli.main(["convert", str(inputs / "model.h5"),
                     "--calibration", str(inputs / "calibration.npz"),
                     "-o", str(paths["deploy"]), "--reference-out", str(paths["int8 reference"])])
    if code != 0:
        raise RuntimeError("firmware_e2e: tfq-plus convert failed (its message is above)")
    return paths


def host_accuracy(flatbuffer_path: Path, test_path: Path) -> float:
    """Test accuracy of a converted model in the host Interpreter (the whole test set)."""
    from tfq_plus.converters import Interpreter

    interpreter = Interpreter(flatbuffer_path.read_bytes())
    with np.load(test_path) as data:
        x, y = data["x"], data["y"]
    correct = 0
    for start in range(0, len(x), 500):
        codes, _, _ = firmware_inputs.input_codes(flatbuffer_path, x[start:start + 500])
        raw = interpreter.predict(codes, raw=True).reshape(len(codes), -1)
        correct += int(np.sum(np.argmax(raw, axis=1) == y[start:start + 500]))
    return correct / len(x)


def write_model_dir(flatbuffer_path: Path, test_path: Path, images: int, directory: Path,
                    name: str) -> Tuple[List[int], List[int]]:
    """The C array, op resolver and sample.h of one model; returns the host
    Interpreter's classes of the images and their labels."""
    from tfq_plus.converters import Interpreter, write_c_array

    flatbuffer = flatbuffer_path.read_bytes()
    directory.mkdir(parents=True, exist_ok=True)
    write_c_array(flatbuffer, directory, name)
    with np.load(test_path) as data:
        x, labels = data["x"][:images], data["y"][:images]
    codes, _, _ = firmware_inputs.input_codes(flatbuffer_path, x)
    (directory / "sample.h").write_text(
        firmware_inputs.sample_header(codes, labels, f"test images 0..{images - 1}"),
        encoding="ascii")
    raw = Interpreter(flatbuffer).predict(codes, raw=True)
    host_classes = [int(c) for c in np.argmax(raw.reshape(len(codes), -1), axis=1)]
    return host_classes, [int(v) for v in labels]


# --- build and run ---------------------------------------------------------------------


def build(model_dir: Path, name: str, kernels: str, args, build_dir: Path) -> Path:
    """make -C micro/examples/cortex_m4 ... (with CMSIS_NN_DIR / CMSIS_DIR for cmsis_nn)."""
    command = ["make", "-s", "-j", str(args.jobs), "-C", str(EXAMPLE), "all",
               str(build_dir / "insn_count_plugin.so"), f"TFLM_DIR={args.tflm_dir}",
               f"MODEL_DIR={model_dir}", f"MODEL={name}", f"BUILD={build_dir}"]
    if kernels == "cmsis_nn":
        command += [f"CMSIS_NN_DIR={args.cmsis_nn}", f"CMSIS_DIR={args.cmsis}"]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"firmware_e2e: {' '.join(command)} failed:\n{done.stdout}{done.stderr}")
    return build_dir / f"{name}.elf"


def flash_bytes(elf: Path) -> int:
    """text + data of the image (arm-none-eabi-size, Berkeley format)."""
    listing = subprocess.run(["arm-none-eabi-size", str(elf)], capture_output=True, text=True,
                             check=True).stdout.splitlines()
    text, data = listing[1].split()[:2]
    return int(text) + int(data)


def parse_output(output: str):
    """(image count, classes, arena bytes, op names) from the firmware's console."""
    images = re.search(r"^images: (\d+)$", output, re.M)
    arena = re.search(r"^arena bytes used: (\d+)$", output, re.M)
    if images is None or arena is None:
        raise RuntimeError(f"firmware_e2e: unexpected firmware output:\n{output}")
    classes = [int(c) for c in re.findall(r"^image \d+: class (\d+)", output, re.M)]
    ops = re.findall(r"^op \d+: (\S+)$", output, re.M)
    return int(images.group(1)), classes, int(arena.group(1)), ops


def run_counted(elf: Path, plugin: Path) -> Tuple[List[int], List[Tuple[str, int]], List[int], int]:
    """Runs the image with the counter: per-image instructions, per-op instructions,
    the classes and the arena bytes."""
    result, marks = qemu_runner.count_instructions(elf, "m4", plugin, elf.with_suffix(".marks.txt"),
                                                   timeout=3600)
    if result.returncode != 0:
        raise RuntimeError(f"firmware_e2e: {elf.name} exited with {result.returncode}:\n"
                           f"{result.output}")
    images, classes, arena, ops = parse_output(result.output)
    if len(classes) != images or len(marks) != 2 * images + 2 * len(ops):
        raise RuntimeError(f"firmware_e2e: {elf.name}: {len(marks)} marks for {images} images "
                           f"and {len(ops)} ops:\n{result.output}")
    # between two marks: the work plus bench_mark's BX LR and the BL to the next mark
    spans = [marks[i + 1] - marks[i] - 2 for i in range(0, len(marks), 2)]
    return spans[:images], list(zip(ops, spans[images:])), classes, arena


# --- report ------------------------------------------------------------------------------


def instructions_text(counts: List[int]) -> str:
    low, high = min(counts), max(counts)
    return f"{low:,}" if low == high else f"{low:,}–{high:,}"


def summary_table(runs: List[Firmware]) -> str:
    by_key = {(r.network, r.model, r.kernels): r for r in runs}
    lines = ["| network | model | builtin kernels | instructions / inference | vs int8 reference, same "
             "kernels | flatbuffer bytes | flash (text+data) | tensor arena | classes of 10 "
             "test images (= host Interpreter) |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in runs:
        reference = by_key.get((r.network, "int8 reference", r.kernels))
        ratio = (f"{min(reference.instructions) / min(r.instructions):.2f}x fewer"
                 if reference is not None and r is not reference else "")
        same = "yes" if r.classes == r.host_classes else f"**no** (host {r.host_classes})"
        lines.append(f"| {r.network} | {r.model} | {r.kernels} | {instructions_text(r.instructions)} | {ratio} "
                     f"| {r.flatbuffer_bytes:,} | {r.flash_bytes:,} | {r.arena_bytes:,} | "
                     f"{' '.join(map(str, r.classes))} ({same}) |")
    return "\n".join(lines)


def ops_table(run: Firmware) -> str:
    total = min(run.instructions)
    grouped: Dict[str, List[int]] = {}
    for name, count in run.ops:
        grouped.setdefault(name, []).append(count)
    lines = [f"{run.network}, {run.model} + {run.kernels}: per op (image 0, profiled run)", "",
             "| op | calls | instructions | share of the inference |", "| --- | --- | --- | --- |"]
    for name, counts in sorted(grouped.items(), key=lambda item: -sum(item[1])):
        lines.append(f"| {name} | {len(counts)} | {sum(counts):,} | {sum(counts) / total:.1%} |")
    return "\n".join(lines)


def goal_line(runs: List[Firmware], network: str) -> Optional[str]:
    by_key = {(r.network, r.model, r.kernels): r for r in runs}
    deploy = by_key.get((network, "deploy", "cmsis_nn"))
    reference = by_key.get((network, "int8 reference", "cmsis_nn"))
    if deploy is None or reference is None:
        return None
    speed_up = min(reference.instructions) / min(deploy.instructions)
    flatbuffer = deploy.flatbuffer_bytes / reference.flatbuffer_bytes
    parts = [
        f"instructions {speed_up:.2f}x fewer (goal >= {GOAL_SPEED_UP:g}x: "
        f"{'met' if speed_up >= GOAL_SPEED_UP else 'not met'})",
        f"flatbuffer {flatbuffer:.3f}x (goal <= {GOAL_FLATBUFFER_RATIO}x: "
        f"{'met' if flatbuffer <= GOAL_FLATBUFFER_RATIO else 'not met'})",
        f"arena {deploy.arena_bytes:,} vs {reference.arena_bytes:,} bytes (goal <=: "
        f"{'met' if deploy.arena_bytes <= reference.arena_bytes else 'not met'})",
    ]
    return f"{network}, deploy + CMSIS-NN vs int8 reference + CMSIS-NN: " + "; ".join(parts)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tflm-dir", default=os.environ.get("TFLM_DIR"),
                        help="TensorFlow Lite Micro source tree (default $TFLM_DIR)")
    parser.add_argument("--cmsis-nn", default=os.environ.get("CMSIS_NN_PATH"),
                        help="CMSIS-NN source tree at TFLM's pin (default $CMSIS_NN_PATH)")
    parser.add_argument("--cmsis", default=os.environ.get("CMSIS_PATH"),
                        help="CMSIS_6 tree at TFLM's pin (default $CMSIS_PATH)")
    parser.add_argument("--work", default=str(ROOT / "build" / "fw_e2e"),
                        help="working directory (the trained model is kept there)")
    parser.add_argument("--networks", default="mnist,fashion",
                        help=f"comma-separated, of {', '.join(NETWORKS)} (default: both)")
    parser.add_argument("--inputs", action="append", default=[], metavar="NAME=DIR",
                        help="take network NAME's model from DIR (what `firmware_inputs.py "
                             "train` wrote) instead of training it")
    parser.add_argument("--kernels", default=",".join(KERNEL_SETS),
                        help="comma-separated builtin kernel sets, of cmsis_nn, reference "
                             "(default: both; cmsis_nn alone skips the slow reference build)")
    parser.add_argument("--images", type=int, default=10)
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args(argv)
    unknown = set(args.networks.split(",")) - set(NETWORKS)
    if unknown:
        parser.error(f"--networks: each of {', '.join(NETWORKS)}, got {args.networks!r}")
    if not args.tflm_dir:
        parser.error("--tflm-dir (or TFLM_DIR) is required: a TensorFlow Lite Micro tree")
    if bool(args.cmsis_nn) != bool(args.cmsis):
        parser.error("--cmsis-nn and --cmsis go together (CMSIS-NN needs the CMSIS_6 core headers)")
    missing = qemu_runner.missing_tools()
    if missing:
        parser.error(f"missing tools: {', '.join(missing)}")

    # make runs in the example's directory: every path absolute
    args.tflm_dir = Path(args.tflm_dir).resolve()
    if args.cmsis_nn:
        args.cmsis_nn, args.cmsis = Path(args.cmsis_nn).resolve(), Path(args.cmsis).resolve()
    work = Path(args.work).resolve()
    work.mkdir(parents=True, exist_ok=True)
    networks = [NETWORKS[key] for key in args.networks.split(",")]
    given = dict(item.split("=", 1) for item in args.inputs)
    kernel_sets = args.kernels.split(",")
    if not set(kernel_sets) <= set(KERNEL_SETS):
        parser.error(f"--kernels: each of {', '.join(KERNEL_SETS)}, got {args.kernels!r}")
    if "cmsis_nn" in kernel_sets and not args.cmsis_nn:
        parser.error("--kernels cmsis_nn needs --cmsis-nn and --cmsis (or leave it out)")
    runs, accuracies = [], {}
    for network in networks:
        inputs = (Path(given[network.key]).resolve() if network.key in given
                  else train_inputs(work, network))
        flatbuffers = convert(inputs, work, network)
        accuracies[network.name] = host_accuracy(flatbuffers["deploy"], inputs / "test.npz")
        for model, name in model_names(network).items():
            model_dir = work / name
            host_classes, labels = write_model_dir(flatbuffers[model], inputs / "test.npz",
                                                   args.images, model_dir, name)
            for kernels in kernel_sets:
                build_dir = work / f"build_{kernels}"  # TFLM's objects shared by the models
                elf = build(model_dir, name, kernels, args, build_dir)
                counts, ops, classes, arena = run_counted(elf, build_dir / "insn_count_plugin.so")
                runs.append(Firmware(network.name, model, kernels,
                                     flatbuffers[model].stat().st_size, counts, ops,
                                     flash_bytes(elf), arena, classes, host_classes, labels))
                print(f"{network.name}, {model} + {kernels}: {instructions_text(counts)} "
                      "instructions", flush=True)

    print()
    print(summary_table(runs))
    print()
    for network in networks:
        labels = next(r.labels for r in runs if r.network == network.name)
        print(f"{network.name}: deploy model test accuracy {accuracies[network.name]:.2%} "
              f"(host Interpreter); labels of the images: {' '.join(map(str, labels))}")
        goal = goal_line(runs, network.name)
        if goal:
            print(goal)
    for run in runs:
        print()
        print(ops_table(run))
    return 0 if all(r.classes == r.host_classes for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
