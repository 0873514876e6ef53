"""``tfq-plus``: convert, verify and report on the command line.

    tfq-plus convert model.h5 --calibration calib.npz -o model.tflite \\
        --reference-out model_ref.tflite --c-array firmware/ --name bnn
    tfq-plus verify model.h5 model.tflite model_ref.tflite --samples test.npz
    tfq-plus report model.tflite --reference model_ref.tflite
"""

import argparse
import contextlib
import linecache
import math
import os
import sys
import tempfile
import traceback
import warnings
import zipfile
from typing import List

import tfq_plus  # (selects Keras 2 before TensorFlow is imported)
from tfq_plus import tensorflow_logs
from tfq_plus.converters.micro_interpreter import captured_stderr
from tfq_plus.converters.unsupported import first_line

DESCRIPTION = """\
Convert trained Keras models with quantized (larq / tfq_plus) layers into TFLite
flatbuffers whose quantized layers run as TFQP custom ops (bit-packed binary
layers, shift and k-bit coded weights, exact integer thresholds), check that the
result computes what the Keras model computes, and report its flash / RAM cost.

Typical session:
  1. tfq-plus convert my_bnn.h5 --calibration calib.npz -o bnn.tflite --reference-out bnn_ref.tflite
  2. tfq-plus verify my_bnn.h5 bnn.tflite bnn_ref.tflite --samples test.npz
  3. tfq-plus report bnn.tflite --reference bnn_ref.tflite
  4. tfq-plus convert ... --c-array firmware/model --name bnn   (C array + op resolver)

Models: a Keras .h5 or .keras file, or a SavedModel directory, saved from tf_keras
(Keras 2) with larq / tfq_plus layers. Data: an .npz file; the inputs are the array
named by --key (default: "x", else the first array), in the range the model was
trained on (as fed to fit); labels (optional) under --labels-key (default "y").

Errors are one line on stderr and exit status 1; --debug adds the traceback.
"""

MODEL_SUFFIXES = (".h5", ".hdf5", ".keras")
TFLITE_IDENTIFIER = b"TFL3"  # bytes 4..8 of every .tflite flatbuffer
_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
_ZIP_SIGNATURE = b"PK\x03\x04"  # .keras and .npz files
# where tfq_plus and tfq_plus.converters (this folder) live
_LIBRARY_DIRS = (
    os.path.dirname(os.path.abspath(tfq_plus.__file__)) + os.sep,
    os.path.dirname(os.path.abspath(__file__)) + os.sep,
)


# --- errors ----------------------------------------------------------------------


class CommandFailed(Exception):
    """The command failed; the message is written for the user."""


class UsageError(CommandFailed):
    """A mistake on the command line; the message names the argument and the fix."""


class StepFailed(Exception):
    """``error`` raised while the command was ``step`` ("converting", ...)."""

    def __init__(self, step: str, error: BaseException):
        super().__init__(step)
        self.step = step
        self.error = error


@contextlib.contextmanager
def step(name: str, announce: bool = True):
    """Say which step the command starts (one line on stdout: the long steps are
    not silent; ``announce=False``: quietly), and tag an exception raised inside
    with it."""
    if announce:
        print(f"-- {name}", flush=True)
    try:
        yield
    except (CommandFailed, StepFailed):
        raise
    except Exception as error:
        raise StepFailed(name, error) from error


def progress(text: str) -> None:
    """A long step's progress, one indented line on stdout."""
    print(f"   {text}", flush=True)


def is_library_check(error: BaseException) -> bool:
    """A ValueError raised by a ``raise`` statement in tfq_plus itself: a check
    whose message is written for the user (else an unexpected failure)."""
    if not isinstance(error, ValueError) or error.__traceback__ is None:
        return False
    last = error.__traceback__
    while last.tb_next is not None:
        last = last.tb_next
    filename = os.path.abspath(last.tb_frame.f_code.co_filename)
    line = linecache.getline(filename, last.tb_lineno).strip()
    return filename.startswith(_LIBRARY_DIRS) and line.startswith("raise")


def failure_sentence(failure: StepFailed, debug: bool) -> str:
    """The library's own message, else the step, the exception and its first line."""
    error = failure.error
    if is_library_check(error):
        return str(error)
    hint = "" if debug else " (rerun with --debug for the traceback)"
    return f"{failure.step} failed with {type(error).__name__}: {first_line(str(error))}{hint}"


class ArgumentParser(argparse.ArgumentParser):
    """argparse that raises UsageError (one line, exit 1) instead of printing the
    usage and exiting with status 2."""

    def error(self, message):
        raise UsageError(f"{self.prog}: {message} (see {self.prog} --help)")


@contextlib.contextmanager
def one_line_warnings(notes: List[str]):
    """tfq_plus's own warnings into ``notes`` (printed as one line each)."""
    show = warnings.showwarning

    def show_line(message, category, filename, lineno, file=None, line=None):
        if category.__module__.startswith("tfq_plus"):
            notes.append(str(message))
        else:
            show(message, category, filename, lineno, file, line)

    with warnings.catch_warnings():
        warnings.showwarning = show_line
        yield


# --- arguments -------------------------------------------------------------------


def _head(path: str, size: int = 8) -> bytes:
    with open(path, "rb") as stream:
        return stream.read(size)


def check_model_path(path: str):
    if not os.path.exists(path):
        raise UsageError(f"model {path!r} does not exist")
    if os.path.isdir(path):
        if not os.path.exists(os.path.join(path, "saved_model.pb")):
            raise UsageError(f"model {path!r} is a directory without saved_model.pb; give a .h5 / .keras "
                             "file or a SavedModel directory")
        return
    if not path.endswith(MODEL_SUFFIXES):
        hint = " (a .tflite is converted already: it goes to verify / report)" if path.endswith(".tflite") else ""
        raise UsageError(f"model {path!r} must be a .h5 / .keras file or a SavedModel directory{hint}")


def load_model(path: str):
    """A tf_keras model from .h5 / .keras / a SavedModel directory."""
    import tensorflow as tf

    import tfq_plus.quantizers  # noqa: F401  (registers the custom objects)

    check_model_path(path)
    try:
        return tf.keras.models.load_model(path, compile=False)
    except (OSError, ValueError, TypeError, KeyError, ImportError) as error:
        unknown = "Unknown" in str(error)
        fix = ("the command line knows Keras, larq and tfq_plus layers only: convert a model with "
               "custom layers from Python (tfq_plus.converters.convert_keras_model)" if unknown else
               "save it from tf_keras (Keras 2) with model.save()")
        raise UsageError(f"model {path!r} cannot be loaded ({type(error).__name__}: "
                         f"{first_line(str(error))}); {fix}") from error


def check_tflite_path(path: str, argument: str):
    """``path`` exists and holds a .tflite flatbuffer (its file identifier)."""
    if not os.path.exists(path):
        raise UsageError(f"{argument} {path!r} does not exist")
    if os.path.isdir(path):
        raise UsageError(f"{argument} {path!r} is a directory, not a .tflite file")
    try:
        head = _head(path)
    except OSError as error:
        raise UsageError(f"{argument} {path!r} cannot be read ({error.strerror})") from error
    if head[4:8] == TFLITE_IDENTIFIER:
        return
    if head.startswith(_HDF5_SIGNATURE) or (head.startswith(_ZIP_SIGNATURE) and path.endswith(".keras")):
        what = "a Keras model, not a .tflite flatbuffer (convert it first: tfq-plus convert)"
    elif head.startswith(_ZIP_SIGNATURE):
        what = "a zip / .npz file, not a .tflite flatbuffer"
    else:
        what = f"not a .tflite flatbuffer (no {TFLITE_IDENTIFIER.decode()} identifier)"
    raise UsageError(f"{argument} {path!r} is {what}")


def read_tflite(path: str, argument: str) -> bytes:
    check_tflite_path(path, argument)
    with open(path, "rb") as stream:
        return stream.read()


def check_output_file(path: str, argument: str, suffix: str = ".tflite"):
    """``path`` can be written: the right suffix, not a directory, and its nearest
    existing directory writable (missing directories are created when writing)."""
    if not path or not path.endswith(suffix):
        raise UsageError(f"{argument} {path!r}: the file name must end in {suffix}")
    if os.path.isdir(path):
        raise UsageError(f"{argument} {path!r} is a directory; give a file path such as "
                         f"{os.path.join(path, 'model' + suffix)!r}")
    if os.path.exists(path) and not os.access(path, os.W_OK):
        raise UsageError(f"{argument} {path!r} exists and is read-only; choose another path")
    check_output_directory(os.path.dirname(os.path.abspath(path)), argument, path)


def check_output_directory(directory: str, argument: str, given: str):
    existing = directory
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        raise UsageError(f"{argument} {given!r}: {existing!r} is a file, so no directory can be made there")
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as error:
        raise UsageError(f"{argument} {given!r}: cannot write in {existing!r} ({error.strerror}); "
                         "choose a writable location") from error


def check_distinct(paths: dict):
    """No file is both read and written, nor written twice."""
    seen = {}
    for argument, path in paths.items():
        if not path:
            continue
        key = os.path.realpath(path)
        if key in seen:
            raise UsageError(f"{seen[key]} and {argument} are the same file {path!r}; give different paths")
        seen[key] = argument


def load_arrays(path: str, argument: str, key=None, labels_key=None, count=None):
    """(inputs, labels or None) from an .npz file; ``labels_key`` None: "y" if present."""
    import numpy as np

    if not os.path.exists(path):
        raise UsageError(f"{argument} {path!r} does not exist")
    try:
        data = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
        raise UsageError(f"{argument} {path!r} is not a readable .npz file ({error}); write one with "
                         "numpy.savez(path, x=inputs, y=labels)") from error
    if not hasattr(data, "files"):
        raise UsageError(f"{argument} {path!r} holds one array (.npy), not an .npz archive; write one "
                         "with numpy.savez(path, x=inputs, y=labels)")
    with data:
        names = list(data.files)
        if not names:
            raise UsageError(f"{argument} {path!r} holds no arrays")
        name = key or ("x" if "x" in names else names[0])
        if name not in names:
            raise UsageError(f"{argument} {path!r} has no array {name!r} (--key); its arrays: {names}")
        if labels_key is not None and labels_key not in names:
            raise UsageError(f"{argument} {path!r} has no array {labels_key!r} (--labels-key); its arrays: {names}")
        labels_name = labels_key or ("y" if "y" in names else None)
        try:
            inputs = data[name]
            labels = data[labels_name] if labels_name is not None and labels_name != name else None
        except ValueError as error:  # object arrays: pickles are never loaded
            raise UsageError(f"{argument} {path!r}: {error}; store numeric arrays") from error
    if inputs.ndim < 1 or len(inputs) == 0:
        raise UsageError(f"{argument} {path!r}: array {name!r} holds no samples (shape {list(inputs.shape)})")
    if labels is not None and len(labels) != len(inputs):
        raise UsageError(f"{argument} {path!r}: {len(labels)} labels in {labels_name!r} (--labels-key) for "
                         f"{len(inputs)} samples in {name!r}; they must pair up one to one")
    if count is not None:
        inputs = inputs[:count]
        labels = None if labels is None else labels[:count]
    return inputs, labels


def _write(path: str, data: bytes):
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    with open(path, "wb") as stream:
        stream.write(data)


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number from 0 to 1, got {text!r}") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(
            f"must be a fraction from 0 to 1 (0.99 means 99 %), got {text}"
        )
    return value


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number of samples >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number of samples >= 1, got {text}")
    return value


def _lsb(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0.0 <= value < math.inf:
        raise argparse.ArgumentTypeError(f"must be a number of output LSBs >= 0, got {text!r}")
    return value


def _c_identifier(text: str) -> str:
    if not text.isidentifier() or not text.isascii():
        raise argparse.ArgumentTypeError(f"must be a C identifier (letters, digits, _; not starting "
                                         f"with a digit), got {text!r}")
    return text


def default_array_name(output: str) -> str:
    """A C identifier from the output file name (model-v2.tflite -> model_v2)."""
    stem = os.path.splitext(os.path.basename(output))[0]
    name = "".join(c if c.isascii() and (c.isalnum() or c == "_") else "_" for c in stem)
    return name if name and not name[0].isdigit() else f"model_{name}"


def _inference_type(name: str):
    import tensorflow as tf

    return {"int8": tf.int8, "uint8": tf.uint8, "float32": tf.float32}[name]


# --- commands --------------------------------------------------------------------


def convert(args) -> int:
    from tfq_plus import converters

    check_model_path(args.model)
    check_output_file(args.output, "-o")
    if args.reference_out:
        check_output_file(args.reference_out, "--reference-out")
    if args.c_array:
        if os.path.exists(args.c_array) and not os.path.isdir(args.c_array):
            raise UsageError(f"--c-array {args.c_array!r} is a file; give a directory for the C files")
        check_output_directory(os.path.abspath(args.c_array), "--c-array", args.c_array)
    check_distinct({"the model": args.model, "--calibration": args.calibration, "-o": args.output,
                    "--reference-out": args.reference_out})
    calibration, _ = load_arrays(args.calibration, "--calibration", args.key, None, args.count)
    with step("loading the model"):
        model = load_model(args.model)
    common = dict(
        representative_dataset=calibration, target=args.target,
        inference_input_type=_inference_type(args.input_type),
        inference_output_type=_inference_type(args.output_type),
    )
    if not args.no_custom_ops:
        common["int4_builtin"] = not args.no_int4_builtin
        common["code_lists"] = {"on": True, "off": False}.get(args.code_lists, "auto")
        common["pack_activations"] = not args.no_pack_activations
    with step("converting"):
        reference = None
        if args.reference_out and not args.no_custom_ops:
            flatbuffer, reference = converters.convert_with_reference(model, progress=progress, **common)
        else:
            flatbuffer = converters.convert_keras_model(
                model, custom_ops=not args.no_custom_ops, progress=progress, **common
            )
            if args.reference_out:
                reference = flatbuffer
    with step("writing the output"):
        _write(args.output, flatbuffer)
        print(f"wrote {args.output} ({len(flatbuffer)} bytes)")
        if reference is not None:
            _write(args.reference_out, reference)
            print(f"wrote {args.reference_out} ({len(reference)} bytes)")
        if args.c_array:
            name = args.name or default_array_name(args.output)
            for path in converters.write_c_array(flatbuffer, args.c_array, name):
                print(f"wrote {path}")
    return 0


def verify(args) -> int:
    from tfq_plus import converters

    check_model_path(args.model)
    deploy = read_tflite(args.deploy, "deploy model")
    reference = read_tflite(args.reference, "reference model") if args.reference else None
    samples, labels = load_arrays(args.samples, "--samples", args.key, args.labels_key, args.count)
    with step("loading the model"):
        model = load_model(args.model)
    with step("verifying"):
        try:
            result = converters.verify(
                model, deploy, samples, labels=labels, reference=reference,
                min_argmax_agreement=args.min_agreement, max_error_lsb=args.max_error_lsb,
                progress=progress,
            )
        except converters.VerificationError as error:
            raise CommandFailed(f"FAILED\n{error}") from error
    print(result)
    print("tfq-plus verify: OK")
    return 0


def report(args) -> int:
    from tfq_plus import converters
    from tfq_plus.converters.report_plot import plot_report

    model = read_tflite(args.model, "model")
    reference = read_tflite(args.reference, "--reference") if args.reference else None
    with step("reporting"):
        result = converters.report(model, reference=reference, measure=not args.no_arena)
    print(result)
    if args.plot:
        with step("drawing the report"):
            plot_report(result, args.plot, title=os.path.basename(args.model))
        print(f"picture: {args.plot}")
    return 0


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(
        prog="tfq-plus", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--debug", action="store_true", help="show the traceback of an error")
    parser.add_argument("--verbose", action="store_true",
                        help="show TensorFlow's logs (start-up, converter), hidden by default")
    commands = parser.add_subparsers(dest="command", required=True, metavar="command")
    # --debug after the command too (SUPPRESS: absent, it keeps the top level's value)
    debug = ArgumentParser(add_help=False)
    debug.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                       help="show the traceback of an error")
    debug.add_argument("--verbose", action="store_true", default=argparse.SUPPRESS,
                       help="show TensorFlow's logs (start-up, converter), hidden by default")

    p = commands.add_parser(
        "convert", help="Keras model -> .tflite (deploy model with TFQP ops, or reference)",
        description="Convert a Keras model to a .tflite flatbuffer. The float layers are "
        "calibrated on --calibration (full int8); quantized layers become TFQP custom ops "
        "(bit-packed binary weights, coded shift / k-bit weights) unless --no-custom-ops.", parents=[debug],
    )
    p.add_argument("model", help="Keras model: .h5 / .keras file or SavedModel directory")
    p.add_argument("--calibration", required=True, metavar="NPZ",
                   help="calibration inputs (a few hundred training samples, scaled as for fit)")
    p.add_argument("-o", "--output", required=True, metavar="TFLITE", help="flatbuffer to write (.tflite)")
    p.add_argument("--reference-out", metavar="TFLITE",
                   help="also write the reference model (builtin ops only), needed by verify / report")
    p.add_argument("--no-custom-ops", action="store_true",
                   help="write the reference model as --output (no TFQP ops)")
    p.add_argument("--no-int4-builtin", action="store_true",
                   help="4-bit uniform kernels as TFQP coded-weight ops, never as builtin ops with INT4 filters")
    p.add_argument("--code-lists", choices=("auto", "on", "off"), default="off",
                   help="live-code lists (flash) of shift fully-connected layers, which a "
                        "Cortex-M runs pruned channels from, trading flash for speed: auto "
                        "(where they cut the counted instructions to 3/4 or less), on (every "
                        "one-class layer), off (default)")
    p.add_argument("--no-pack-activations", action="store_true",
                   help="store 4- and 2-bit activation codes one per byte, not packed between TFQP ops")
    p.add_argument("--target", choices=("micro", "tflite"), default="micro",
                   help="micro: every builtin op must exist in TFLite Micro (default)")
    p.add_argument("--input-type", choices=("int8", "uint8", "float32"), default="int8",
                   help="type of the model's input tensors (default int8)")
    p.add_argument("--output-type", choices=("int8", "uint8", "float32"), default="int8",
                   help="type of the model's output tensors (default int8)")
    p.add_argument("--key", help="array name of the inputs in the .npz (default: x, else the first)")
    p.add_argument("--count", type=_count, help="use only the first COUNT samples")
    p.add_argument("--c-array", metavar="DIR",
                   help="also write NAME.h, NAME.cc (the flatbuffer) and NAME_op_resolver.h into DIR")
    p.add_argument("--name", type=_c_identifier,
                   help="C identifier of the array (default: from the output file name)")
    p.set_defaults(run=convert)

    p = commands.add_parser(
        "verify", help="check that the deploy model computes what the Keras model computes",
        description="Run the deploy model on the host (builtin ops in TFLite Micro, TFQP ops in "
        "their C kernels) and the Keras model on the same samples: every TFQP op's weights "
        "against the Keras kernel, every TFQP op against its Keras layer on the op's own "
        "input, every binarized activation against Keras's signs, and the outputs end to end "
        "(argmax agreement, error in output LSBs, accuracy with labels); with a reference "
        "model, Keras vs the stock int8 model as a comparison.", parents=[debug],
    )
    p.add_argument("model", help="the Keras model that was converted")
    p.add_argument("deploy", help="deploy .tflite (from convert)")
    p.add_argument("reference", nargs="?",
                   help="optional reference .tflite (from convert --reference-out), for comparison")
    p.add_argument("--samples", required=True, metavar="NPZ", help="test inputs (and labels)")
    p.add_argument("--key", help="array name of the inputs (default: x, else the first)")
    p.add_argument("--labels-key", help="array name of the labels (default: y, if present)")
    p.add_argument("--count", type=_count, help="use only the first COUNT samples")
    p.add_argument("--min-agreement", type=_fraction, default=0.99, metavar="FRACTION",
                   help="fail if Keras and the deploy model agree on the argmax of fewer than "
                   "this fraction of the samples (0..1, default 0.99)")
    p.add_argument("--max-error-lsb", type=_lsb, help="fail if outputs differ by more LSBs")
    p.set_defaults(run=verify)

    p = commands.add_parser(
        "report", help="per-op table, flash and RAM of a .tflite",
        description="Per op: shapes (packed tensors in channels), weight bytes, MACs by kind "
        "(binary, shift, k-bit, int8). Totals: flash, and "
        "the tensor arena TFLite Micro allocates (measured on the reference model for deploy "
        "models, whose TFQP ops TFLite Micro's Python interpreter cannot load).", parents=[debug],
    )
    p.add_argument("model", help=".tflite flatbuffer (deploy or reference)")
    p.add_argument("--reference", help="reference .tflite of a deploy model (for the arena)")
    p.add_argument("--no-arena", action="store_true", help="do not run TFLite Micro")
    p.add_argument("--plot", metavar="IMAGE",
                   help="also draw weight bytes (float32 / int8 / deployed) and MACs by kind per "
                   "layer into IMAGE (.png, .svg or .pdf)")
    p.set_defaults(run=report)
    return parser


def main(argv=None) -> int:
    """Run one command. Every error is one line on stderr and exit status 1;
    TensorFlow's own logs (start-up notices, C++ diagnostics, converter progress)
    are kept from the terminal unless --verbose or --debug (which also prints the
    traceback)."""
    try:
        args = build_parser().parse_args(argv)
    except CommandFailed as error:
        print(error, file=sys.stderr)
        return 1
    prog = f"tfq-plus {args.command}"
    notes: List[str] = []
    logs: List[str] = []
    status, message, error = 1, None, None
    try:
        with one_line_warnings(notes), captured_stderr(logs):
            try:
                with step(f"running {prog}", announce=False):
                    status = args.run(args)
            finally:
                sys.stderr.flush()
    except CommandFailed as failure:
        message = str(failure)
    except StepFailed as failure:
        message, error = failure_sentence(failure, args.debug), failure.error
    except KeyboardInterrupt:
        status, message = 130, "interrupted"
    if args.debug or args.verbose:
        sys.stderr.write("".join(tensorflow_logs.import_log + tensorflow_logs.call_log + logs))
        if error is not None:
            traceback.print_exception(error)
    for note in notes:
        print(f"{prog}: warning: {note}", file=sys.stderr)
    if message is not None:
        print(f"{prog}: {message}", file=sys.stderr)
    return status


if __name__ == "__main__":
    sys.exit(main())
