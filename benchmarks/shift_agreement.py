"""Shift-kernel models of ``benchmarks/accuracy.py``: deploy as TFQP shift ops, Keras vs
deploy on the MNIST test set, and the quantized layers' weight bytes.

For each trained model (INQ 4-bit, INQ 3-bit, TWN, TTQ, pruned 75 % + power-of-two
4-bit; saved by ``accuracy.py --save-models``) the script converts once (deploy
model and the stock full-int8 reference), counts the TFQP shift ops (one per
quantized layer: conv2, conv3, fc1, fc2), runs ``verify`` on every test image
(each shift op on its own input against its Keras layer, codes against the Keras
kernel, outputs end to end) and compares the quantized layers' weight bytes (codes
and code table) with the reference's int8 filters of the same layers.

    export TFQ_PLUS_DATA_DIR=../shared/data TF_CPP_MIN_LOG_LEVEL=2
    python benchmarks/accuracy.py --only inq4,inq3,twn,ttq,pruned --float-weights out/float \\
        --save-models out/models
    python benchmarks/shift_agreement.py --models out/models --markdown

Goals (issue "Shift kernels"): one shift op per quantized layer; Keras vs deploy
argmax agreement >= 99.5 %; weight bytes <= 0.55x (4-bit), <= 0.45x (3-bit), <= 0.3x
(ternary) of the reference's.
"""

import argparse
import os
import sys
import time

import tfq_plus  # noqa: F401  (selects Keras 2 before TensorFlow is imported)

import tensorflow as tf

from tfq_plus import converters, datasets
from tfq_plus.converters import tflite_schema as schema
from tfq_plus.converters.graph import Graph
from tfq_plus.converters.patterns.context import Context

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from accuracy import QUANTIZED_LAYERS  # noqa: E402

# row -> (label, weight-bytes goal as a fraction of the int8 reference's)
MODELS = {
    "inq4": ("INQ 4-bit", 0.55),
    "inq3": ("INQ 3-bit", 0.45),
    "twn": ("ternary TWN", 0.30),
    "ttq": ("ternary TTQ", 0.30),
    "pruned": ("pruned 75% + po2 4-bit", 0.55),
}
AGREEMENT_GOAL = 0.995


def shift_layer_bytes(deploy: bytes, layers) -> dict:
    """Per layer: bytes of its shift op's codes, code table and (a fully-connected op's
    input 4) live-code lists, and the code width."""
    model = schema.read(deploy)
    graph = model.subgraphs[0]
    found = {}
    for op in graph.operators:
        name = schema.op_name(model, op)
        if not name.startswith("TFQP_SHIFT_"):
            continue
        codes, table = (graph.tensors[int(t)] for t in list(op.inputs)[1:3])
        lists = [graph.tensors[int(t)] for t in list(op.inputs)[4:5]]
        layer = schema.tensor_name(codes).split("/")[1]
        if layer in layers:
            nbytes = sum(schema.constant(model, t).nbytes for t in [codes, table] + lists)
            found[layer] = (name, nbytes, int(schema.shape(table)[1]).bit_length() - 1)
    return found


def reference_layer_bytes(reference: bytes, plans, layers) -> dict:
    """Per layer: bytes of the reference's int8 filter of that layer's op."""
    graph = Graph(schema.read(reference))
    context = Context(graph, plans, {})
    result = {}
    for layer in layers:
        anchor = context.anchor(plans.layers[layer])
        filter_tensor = int(graph.ops[anchor].inputs[1])
        result[layer] = graph.const(filter_tensor).nbytes
    return result


def measure(key: str, path: str, data, test_images: int, code_lists=False) -> dict:
    model = tf.keras.models.load_model(path, compile=False)
    started = time.time()
    deploy, reference = converters.convert_with_reference(
        model, representative_dataset=data.x_train[:200], code_lists=code_lists)
    converted = time.time() - started
    plans = converters.plan(model)
    deploy_bytes = shift_layer_bytes(deploy, QUANTIZED_LAYERS)
    reference_bytes = reference_layer_bytes(reference, plans, QUANTIZED_LAYERS)
    count = min(test_images, len(data.x_test))
    report = converters.verify(model, deploy, data.x_test[:count], labels=data.y_test[:count],
                               reference=reference, min_argmax_agreement=None)
    label, goal = MODELS[key]
    ratio = sum(b for _, b, _ in deploy_bytes.values()) / sum(reference_bytes.values())
    shift_checks = [c for c in report.ops if c.op.startswith("TFQP_SHIFT_")]
    return dict(
        key=key, label=label, images=count, convert_s=converted,
        shift_ops=len(deploy_bytes), layers=len(QUANTIZED_LAYERS),
        bits="/".join(str(deploy_bytes[n][2]) for n in QUANTIZED_LAYERS if n in deploy_bytes),
        classes="/".join(str(plans.layers[n].kernel.shift.classes) for n in QUANTIZED_LAYERS),
        keras=report.keras_accuracy, deploy=report.deploy[0].accuracy, reference=report.reference[0].accuracy,
        agree_deploy=report.argmax_agreement, agree_reference=report.reference_argmax_agreement,
        op_failures=sum(c.differing for c in shift_checks), op_values=sum(c.compared for c in shift_checks),
        deploy_bytes=sum(b for _, b, _ in deploy_bytes.values()), reference_bytes=sum(reference_bytes.values()),
        ratio=ratio, goal=goal,
        met=(len(deploy_bytes) == len(QUANTIZED_LAYERS) and report.argmax_agreement >= AGREEMENT_GOAL
             and ratio <= goal),
    ), report


HEADER = ["model", "shift ops / quantized layers", "code bits (conv2/conv3/fc1/fc2)", "classes",
          "Keras acc", "deploy acc", "reference acc", "Keras~deploy", "Keras~reference",
          "shift-op values off Keras (beyond 1 LSB)", "weight bytes deploy / int8", "goal", "met"]


def cells(r, markdown):
    agreement = f"{100 * r['agree_deploy']:.2f} %"
    return [
        r["label"], f"{r['shift_ops']} / {r['layers']}", r["bits"], r["classes"],
        f"{100 * r['keras']:.2f} %", f"{100 * r['deploy']:.2f} %", f"{100 * r['reference']:.2f} %",
        f"**{agreement}**" if markdown else agreement, f"{100 * r['agree_reference']:.2f} %",
        f"{r['op_failures']:,} / {r['op_values']:,}",
        f"{r['deploy_bytes']:,} / {r['reference_bytes']:,} = {r['ratio']:.3f}x",
        f"<= {r['goal']:.2f}x, >= {100 * AGREEMENT_GOAL:.1f} %", "yes" if r["met"] else "NO",
    ]


def run_table(argv, description: str, models: dict, measure, cells, header):
    """The command line the agreement benchmarks share: parse, measure each model of
    ``--models`` (``measure(key, path, data, test_images, code_lists) -> (row, verify
    report)``), print each row, and the markdown table."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--models", required=True, help="folder of accuracy.py --save-models (<row>.h5)")
    parser.add_argument("--only", default=",".join(models), help=f"comma-separated subset of {list(models)}")
    parser.add_argument("--test-images", type=int, default=10_000)
    parser.add_argument("--markdown", action="store_true", help="print the README table")
    parser.add_argument("--verbose", action="store_true", help="print each verify report")
    parser.add_argument("--code-lists", choices=("auto", "on", "off"), default="off",
                        help="live-code lists of shift fully-connected layers, as convert "
                             "--code-lists (they count in the weight bytes)")
    args = parser.parse_args(argv)
    keys = [k for k in args.only.split(",") if k]
    unknown = sorted(set(keys) - set(models))
    if unknown:
        parser.error(f"unknown models {unknown}; choose from {list(models)}")
    data = datasets.load("mnist")
    results = []
    for key in keys:
        path = os.path.join(args.models, f"{key}.h5")
        if not os.path.exists(path):
            parser.error(f"{path} not found: train it with benchmarks/accuracy.py --only {key} --save-models "
                         f"{args.models}")
        try:
            result, report = measure(key, path, data, args.test_images,
                                     {"on": True, "off": False}.get(args.code_lists, "auto"))
        except converters.VerificationError as error:  # the other models still run
            print(f"{key}: verify failed: {error}", flush=True)
            continue
        results.append(result)
        if args.verbose:
            print(report)
        print("  ".join(cells(result, False)), flush=True)
    print()
    if args.markdown:
        print("| " + " | ".join(header) + " |")
        print("|" + "---|" * len(header))
        for result in results:
            print("| " + " | ".join(cells(result, True)) + " |")
    return results


def main(argv=None):
    return run_table(argv, __doc__.splitlines()[0], MODELS, measure, cells, HEADER)


if __name__ == "__main__":
    main()
