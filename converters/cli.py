"""``tfq-plus``: convert, verify and report on the command line.

    tfq-plus convert model.h5 --calibration calib.npz -o model.tflite \\
        --reference-out model_ref.tflite --c-array firmware/ --name bnn
    tfq-plus verify model.h5 model.tflite model_ref.tflite --samples test.npz
    tfq-plus report model.tflite --reference model_ref.tflite
"""

import argparse
import os
import sys

import tfq_plus  # noqa: F401  (selects Keras 2 before TensorFlow is imported)

DESCRIPTION = """\
Convert trained Keras models with binary (larq / tfq_plus) layers into TFLite
flatbuffers whose binarized layers run as TFQP custom ops (bit-packed signs and
weights, exact integer thresholds), check that the result computes what the Keras
model computes, and report its flash / RAM cost.

Typical session:
  1. tfq-plus convert my_bnn.h5 --calibration calib.npz -o bnn.tflite --reference-out bnn_ref.tflite
  2. tfq-plus verify my_bnn.h5 bnn.tflite bnn_ref.tflite --samples test.npz
  3. tfq-plus report bnn.tflite --reference bnn_ref.tflite
  4. tfq-plus convert ... --c-array firmware/model --name bnn   (C array + op resolver)

Models: a Keras .h5 or .keras file, or a SavedModel directory, saved from tf_keras
(Keras 2) with larq / tfq_plus layers. Data: an .npz file; the inputs are the array
named by --key (default: "x", else the first array), as float32 [n, ...] in the
range the model was trained on; labels (optional) under --labels-key (default "y").
"""


def load_model(path: str):
    """A tf_keras model from .h5 / .keras / a SavedModel directory."""
    import tensorflow as tf

    import tfq_plus.quantizers  # noqa: F401  (registers the custom objects)

    if not os.path.exists(path):
        raise SystemExit(f"tfq-plus: model {path!r} does not exist")
    if not (os.path.isdir(path) or path.endswith((".h5", ".hdf5", ".keras"))):
        raise SystemExit(f"tfq-plus: model {path!r} must be a .h5 / .keras file or a SavedModel directory")
    return tf.keras.models.load_model(path, compile=False)


def load_arrays(path: str, key, labels_key, count):
    import numpy as np

    if not os.path.exists(path):
        raise SystemExit(f"tfq-plus: data file {path!r} does not exist")
    with np.load(path) as data:
        names = list(data.keys())
        if not names:
            raise SystemExit(f"tfq-plus: {path!r} holds no arrays")
        name = key or ("x" if "x" in names else names[0])
        if name not in names:
            raise SystemExit(f"tfq-plus: {path!r} has no array {name!r} (arrays: {names})")
        inputs = np.asarray(data[name], dtype=np.float32)
        labels = None
        if labels_key in names and labels_key != name:
            labels = np.asarray(data[labels_key])
    if count is not None:
        inputs = inputs[:count]
        labels = None if labels is None else labels[:count]
    return inputs, labels


def _read(path: str) -> bytes:
    if not os.path.exists(path):
        raise SystemExit(f"tfq-plus: {path!r} does not exist")
    with open(path, "rb") as stream:
        return stream.read()


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


def _inference_type(name: str):
    import tensorflow as tf

    return {"int8": tf.int8, "uint8": tf.uint8, "float32": tf.float32}[name]


def convert(args) -> int:
    from tfq_plus import converters

    model = load_model(args.model)
    calibration, _ = load_arrays(args.calibration, args.key, "", args.count)
    common = dict(
        representative_dataset=calibration, target=args.target,
        inference_input_type=_inference_type(args.input_type),
        inference_output_type=_inference_type(args.output_type),
    )
    try:
        reference = None
        if args.reference_out and not args.no_custom_ops:
            flatbuffer, reference = converters.convert_with_reference(model, **common)
        else:
            flatbuffer = converters.convert_keras_model(
                model, custom_ops=not args.no_custom_ops, **common
            )
            if args.reference_out:
                reference = flatbuffer
    except ValueError as error:
        print(f"tfq-plus convert: {error}", file=sys.stderr)
        return 1
    _write(args.output, flatbuffer)
    print(f"wrote {args.output} ({len(flatbuffer)} bytes)")
    if reference is not None:
        _write(args.reference_out, reference)
        print(f"wrote {args.reference_out} ({len(reference)} bytes)")
    if args.c_array:
        name = args.name or os.path.splitext(os.path.basename(args.output))[0].replace("-", "_")
        for path in converters.write_c_array(flatbuffer, args.c_array, name):
            print(f"wrote {path}")
    return 0


def verify(args) -> int:
    from tfq_plus import converters

    model = load_model(args.model)
    samples, labels = load_arrays(args.samples, args.key, args.labels_key, args.count)
    reference = _read(args.reference) if args.reference else None
    try:
        result = converters.verify(
            model, _read(args.deploy), samples, labels=labels, reference=reference,
            min_argmax_agreement=args.min_agreement, max_error_lsb=args.max_error_lsb,
        )
    except converters.VerificationError as error:
        print(f"tfq-plus verify: FAILED\n{error}", file=sys.stderr)
        return 1
    except converters.ModelError as error:
        print(f"tfq-plus verify: {error}", file=sys.stderr)
        return 1
    print(result)
    print("tfq-plus verify: OK")
    return 0


def report(args) -> int:
    from tfq_plus import converters

    reference = _read(args.reference) if args.reference else None
    try:
        result = converters.report(_read(args.model), reference=reference, measure=not args.no_arena)
    except ValueError as error:
        print(f"tfq-plus report: {error}", file=sys.stderr)
        return 1
    print(result)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tfq-plus", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="command")

    p = commands.add_parser(
        "convert", help="Keras model -> .tflite (deploy model with TFQP ops, or reference)",
        description="Convert a Keras model to a .tflite flatbuffer. The float layers are "
        "calibrated on --calibration (full int8); binary layers become TFQP custom ops with "
        "bit-packed weights unless --no-custom-ops.",
    )
    p.add_argument("model", help="Keras model: .h5 / .keras file or SavedModel directory")
    p.add_argument("--calibration", required=True, metavar="NPZ",
                   help="calibration inputs (a few hundred training samples)")
    p.add_argument("-o", "--output", required=True, metavar="TFLITE", help="flatbuffer to write")
    p.add_argument("--reference-out", metavar="TFLITE",
                   help="also write the reference model (builtin ops only), needed by verify / report")
    p.add_argument("--no-custom-ops", action="store_true",
                   help="write the reference model as --output (no TFQP ops)")
    p.add_argument("--target", choices=("micro", "tflite"), default="micro",
                   help="micro: every builtin op must exist in TFLite Micro (default)")
    p.add_argument("--input-type", choices=("int8", "uint8", "float32"), default="int8")
    p.add_argument("--output-type", choices=("int8", "uint8", "float32"), default="int8")
    p.add_argument("--key", help="array name of the inputs in the .npz (default: x, else the first)")
    p.add_argument("--count", type=int, help="use only the first COUNT samples")
    p.add_argument("--c-array", metavar="DIR",
                   help="also write NAME.h, NAME.cc (the flatbuffer) and NAME_op_resolver.h into DIR")
    p.add_argument("--name", help="C identifier of the array (default: output file name)")
    p.set_defaults(run=convert)

    p = commands.add_parser(
        "verify", help="check that the deploy model computes what the Keras model computes",
        description="Run the deploy model on the host (builtin ops in TFLite Micro, TFQP ops in "
        "their C kernels) and the Keras model on the same samples: every TFQP op's weights "
        "against the Keras kernel, every TFQP op against its Keras layer on the op's own "
        "input, every binarized activation against Keras's signs, and the outputs end to end "
        "(argmax agreement, error in output LSBs, accuracy with labels); with a reference "
        "model, Keras vs the stock int8 model as a comparison.",
    )
    p.add_argument("model", help="the Keras model that was converted")
    p.add_argument("deploy", help="deploy .tflite (from convert)")
    p.add_argument("reference", nargs="?",
                   help="optional reference .tflite (from convert --reference-out), for comparison")
    p.add_argument("--samples", required=True, metavar="NPZ", help="test inputs (and labels)")
    p.add_argument("--key", help="array name of the inputs (default: x, else the first)")
    p.add_argument("--labels-key", default="y", help="array name of the labels (default: y)")
    p.add_argument("--count", type=int, help="use only the first COUNT samples")
    p.add_argument("--min-agreement", type=_fraction, default=0.99, metavar="FRACTION",
                   help="fail if Keras and the deploy model agree on the argmax of fewer than "
                   "this fraction of the samples (0..1, default 0.99)")
    p.add_argument("--max-error-lsb", type=float, help="fail if outputs differ by more LSBs")
    p.set_defaults(run=verify)

    p = commands.add_parser(
        "report", help="per-op table, flash and RAM of a .tflite",
        description="Per op: shapes, weight bytes, binary and int8 MACs. Totals: flash, and "
        "the tensor arena TFLite Micro allocates (measured on the reference model for deploy "
        "models, whose TFQP ops TFLite Micro's Python interpreter cannot load).",
    )
    p.add_argument("model", help=".tflite flatbuffer (deploy or reference)")
    p.add_argument("--reference", help="reference .tflite of a deploy model (for the arena)")
    p.add_argument("--no-arena", action="store_true", help="do not run TFLite Micro")
    p.set_defaults(run=report)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
