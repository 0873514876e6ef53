"""k-bit models of ``benchmarks/accuracy.py`` (PACT and LSQ, 4 and 2 bits): deploy with
Keras's activation codes, Keras vs deploy on the MNIST test set, weight bytes and RAM.

For each trained model the script converts once (deploy model and the stock
full-int8 reference), runs ``verify`` on the test images (every TFQP op on its own
input: k-bit codes against Keras's quantizer, weights against the Keras kernel;
every k-bit activation tensor end to end against Keras's codes; outputs end to
end), and compares the quantized layers' weight bytes (codes and code table) with
the reference's int8 filters of the same layers, and the activation memory: the
peak of live activation tensors of both models (``report``'s estimate, the same
rule for both) and the reference's tensor arena measured in TFLite Micro (TFLite
Micro's Python interpreter cannot load TFQP ops).

    export TFQ_PLUS_DATA_DIR=../shared/data TF_CPP_MIN_LOG_LEVEL=2
    python benchmarks/accuracy.py --only pact4,pact2,lsq4,lsq2 --float-weights out/float \\
        --save-models out/models
    python benchmarks/kbit_agreement.py --models out/models --markdown

Goals (issue "k-bit grids deploy"): Keras vs deploy argmax agreement >= 99.5 %;
activation codes equal Keras's (float32 ties counted); weight bytes <= 0.55x (4-bit),
<= 0.3x (2-bit) of the reference's.
"""

import os
import sys
import time

import tfq_plus  # noqa: F401  (selects Keras 2 before TensorFlow is imported)

import tensorflow as tf

from tfq_plus import converters

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from accuracy import QUANTIZED_LAYERS  # noqa: E402
from shift_agreement import AGREEMENT_GOAL, reference_layer_bytes, run_table, shift_layer_bytes  # noqa: E402

# row -> (label, weight-bytes goal as a fraction of the int8 reference's)
MODELS = {
    "pact4": ("PACT 4-bit", 0.55),
    "pact2": ("PACT 2-bit", 0.30),
    "lsq4": ("LSQ 4-bit", 0.55),
    "lsq2": ("LSQ 2-bit", 0.30),
}


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
    deploy_costs = converters.report(deploy, reference=reference)
    reference_costs = converters.report(reference)
    label, goal = MODELS[key]
    ratio = sum(b for _, b, _ in deploy_bytes.values()) / sum(reference_bytes.values())
    coded = [c for c in report.ops if c.policy == "keras codes"]
    return dict(
        key=key, label=label, images=count, convert_s=converted,
        coded_ops=len(coded),
        bits="/".join(str(deploy_bytes[n][2]) for n in QUANTIZED_LAYERS if n in deploy_bytes),
        keras=report.keras_accuracy, deploy=report.deploy[0].accuracy, reference=report.reference[0].accuracy,
        agree_deploy=report.argmax_agreement, agree_reference=report.reference_argmax_agreement,
        op_codes=sum(c.compared for c in coded), op_codes_off=sum(c.differing for c in coded),
        op_codes_exact_off=sum(c.differing for c in coded if c.exact),
        codes=report.compared_codes, codes_off=report.differing_codes, code_ties=report.code_ties,
        deploy_bytes=sum(b for _, b, _ in deploy_bytes.values()), reference_bytes=sum(reference_bytes.values()),
        ratio=ratio, goal=goal,
        peak_deploy=deploy_costs.activation_peak_bytes, peak_reference=reference_costs.activation_peak_bytes,
        arena_reference=reference_costs.arena_bytes,
        met=(report.argmax_agreement >= AGREEMENT_GOAL and ratio <= goal),
    ), report


HEADER = ["model", "coded ops", "kernel code bits (conv2/conv3/fc1/fc2)", "Keras acc", "deploy acc",
          "reference acc", "Keras~deploy", "Keras~reference",
          "codes off Keras end to end (ties)", "codes off per op: exact ops / rounded stem",
          "weight bytes deploy / int8", "activation peak deploy / int8 (reference arena)", "goal", "met"]


def cells(r, markdown):
    agreement = f"{100 * r['agree_deploy']:.2f} %"
    return [
        r["label"], str(r["coded_ops"]), r["bits"],
        f"{100 * r['keras']:.2f} %", f"{100 * r['deploy']:.2f} %", f"{100 * r['reference']:.2f} %",
        f"**{agreement}**" if markdown else agreement, f"{100 * r['agree_reference']:.2f} %",
        f"{r['codes_off']:,} / {r['codes']:,} ({r['code_ties']:,})",
        f"{r['op_codes_exact_off']:,} / {r['op_codes_off'] - r['op_codes_exact_off']:,} of {r['op_codes']:,}",
        f"{r['deploy_bytes']:,} / {r['reference_bytes']:,} = {r['ratio']:.3f}x",
        f"{r['peak_deploy']:,} / {r['peak_reference']:,} ({r['arena_reference']:,})",
        f"<= {r['goal']:.2f}x, >= {100 * AGREEMENT_GOAL:.1f} %", "yes" if r["met"] else "NO",
    ]


def main(argv=None):
    return run_table(argv, __doc__.splitlines()[0], MODELS, measure, cells, HEADER)


if __name__ == "__main__":
    main()
