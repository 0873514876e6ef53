"""tfq_plus.converters: Keras model -> TFLite flatbuffer with TFQP custom ops.

    deploy = convert_keras_model(model, representative_dataset=x_calibration)
    reference = convert_keras_model(model, representative_dataset=x_calibration,
                                    custom_ops=False)
    # or both from one conversion:
    deploy, reference = convert_with_reference(model, representative_dataset=x_calibration)
    print(verify(model, deploy, reference, x_test[:200]))
    write_c_array(deploy, "firmware/model", "bnn")
    print(report(deploy, reference=reference))

Pipeline (DESIGN.md): ``export`` (larq layers -> standard ops with materialized
quantized weights) -> stock full-int8 ``TFLiteConverter`` (the reference model,
builtin ops only) -> ``rewrite`` (binary layers -> TFQP ops with packed weights).
"""

import tensorflow as tf

from tfq_plus.converters.deploy_table import activation_form, deploy_grid, kernel_form
from tfq_plus.converters.emit import write_c_array
from tfq_plus.converters.export import BinarizeActivations, binary_layers, export
from tfq_plus.converters.report import ModelReport, report
from tfq_plus.converters.verify import VerificationError, VerifyReport, verify


def convert_keras_model(model, *, representative_dataset=None, custom_ops: bool = True,
                        target: str = "micro", inference_input_type=tf.int8,
                        inference_output_type=tf.int8, packed: bool = True) -> bytes:
    """Convert a trained Keras model (larq / tfq_plus quantizers) to a .tflite flatbuffer.

    Args:
        model: a Sequential or functional tf_keras model; it is cloned, never changed.
        representative_dataset: calibration inputs for the float layers: an array of
            input samples [n, ...] (fed one at a time, in order) or a callable yielding
            ``[batch]`` lists as the stock converter expects. Required.
        custom_ops: True: the deploy model (binary layers as TFQP ops with packed
            weights). False: the reference model (builtin int8 ops only).
        target: "micro" (every builtin op must be one TFLite Micro has) or "tflite".
        inference_input_type, inference_output_type: tf.int8, tf.uint8 or tf.float32.
        packed: let binary layers whose consumers all binarize write packed outputs
            (and max-pools between them run as TFQP_BMAXPOOL2D); False keeps int8
            between all layers.

    Returns:
        The flatbuffer bytes; the same model and data give identical bytes.

    Raises:
        ValueError: a layer or quantizer without a deploy form (naming the layer and
            why), a binary layer the rewrite could not turn into a TFQP op, or an op
            TFLite Micro lacks with target="micro".
    """
    deploy, reference = _convert(model, representative_dataset, custom_ops, target,
                                 inference_input_type, inference_output_type, packed)
    return deploy if custom_ops else reference


def convert_with_reference(model, *, representative_dataset=None, target: str = "micro",
                           inference_input_type=tf.int8, inference_output_type=tf.int8,
                           packed: bool = True):
    """``(deploy, reference)`` from one stock conversion (arguments as
    ``convert_keras_model``): what ``verify`` and ``report`` need."""
    return _convert(model, representative_dataset, True, target, inference_input_type,
                    inference_output_type, packed)


def _convert(model, representative_dataset, custom_ops, target, inference_input_type,
             inference_output_type, packed):
    # (the package's `export` / `verify` / `report` names are the functions, so the
    # modules are imported by their members)
    from tfq_plus.converters.export import _export
    from tfq_plus.converters.reference import convert_reference
    from tfq_plus.converters.rewrite import rewrite

    exported, binary = _export(model)
    reference_model = convert_reference(
        exported, representative_dataset, target=target,
        inference_input_type=inference_input_type,
        inference_output_type=inference_output_type,
    )
    if not custom_ops:
        return None, reference_model
    result = rewrite(reference_model, packed=packed)
    _check_all_rewritten(binary, result)
    return result.flatbuffer, reference_model


def _check_all_rewritten(binary, result):
    """Every binary Keras layer must have become a TFQP op (the reference's tensor names
    name the Keras layers, e.g. ``model/quant_conv2d/binarize/SelectV2``)."""
    found = set()
    for layer in result.layers:
        for name in layer.tensor_names:
            found.update(part for piece in name.split(";") for part in piece.split("/"))
    missing = [b.name for b in binary if b.name not in found]
    if missing:
        raise ValueError(
            f"binary layers {missing} were not turned into TFQP ops: their binarized input or "
            "their +-W int8 weights were not found in the reference model (e.g. pad_values "
            "other than 0 and 1, a Dense on a rank > 2 input, or a fused activation the "
            "converter moved); convert with custom_ops=False to inspect the reference model"
        )


__all__ = [
    "BinarizeActivations",
    "ModelReport",
    "VerificationError",
    "VerifyReport",
    "activation_form",
    "binary_layers",
    "convert_keras_model",
    "convert_with_reference",
    "deploy_grid",
    "export",
    "kernel_form",
    "report",
    "verify",
    "write_c_array",
]
