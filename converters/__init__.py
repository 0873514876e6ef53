"""tfq_plus.converters: Keras model -> TFLite flatbuffer whose quantized layers are TFQP ops.

    deploy, reference = convert_with_reference(model, representative_dataset=x_calibration)
    print(verify(model, deploy, x_test[:500], labels=y_test[:500], reference=reference))
    print(Interpreter(deploy).predict(x_test[:10]))      # run what you deploy
    write_c_array(deploy, "firmware/model", "bnn")       # C array + op resolver
    print(report(deploy, reference=reference))

Pipeline (docs/design.md): ``export`` plans every quantized layer (``planning``: op,
kernel grid, the Keras layers its output folds, packed / int8 / int32 output) and
writes an equivalent model of standard ops -> the stock full-int8 converter gives
the reference model (builtin ops only, the baseline) -> ``rewrite`` replaces each
planned layer's ops by a TFQP op whose signs and values come from the Keras
model's own float32 computation (``thresholds``), so the deploy model computes
what the Keras model computes.

Main entries:

- ``convert_keras_model(model, representative_dataset=...)`` -> deploy (or, with
  ``custom_ops=False``, reference) flatbuffer bytes; ``convert_with_reference``
  gives both from one conversion.
- ``verify(model, deploy, samples, ...)`` -> ``VerifyReport``; raises
  ``VerificationError`` when the deploy model does not compute what Keras does.
- ``report(flatbuffer, reference=...)`` -> ``ModelReport``: per-op shapes, weight
  bytes, MACs by kind, flash and tensor arena.
- ``Interpreter(flatbuffer)``: run a deploy model on the host (``predict``,
  ``invoke``), builtin ops in TFLite Micro, TFQP ops in their C kernels.
- ``write_c_array(flatbuffer, out_dir, name)``: C array and op resolver header
  for a TFLite Micro firmware.
- ``plan(model)``: what each layer deploys to, without converting;
  ``kernel_form`` / ``activation_form`` / ``deploy_grid``: the same for one
  quantizer; ``export(model)``: the standard-op model the stock converter takes.
- ``check_model(flatbuffer)``: the validation every reader applies.

Errors and warnings: ``ModelError`` (a malformed .tflite, naming the tensor or
op), ``UnsupportedLayerError`` (a layer the converter cannot lower),
``CalibrationDataError`` / ``CalibrationDataWarning`` (calibration data),
``NothingQuantizedWarning`` (a model without quantized layers). The ``tfq-plus``
command (``cli``) wraps convert, verify and report.
"""

import warnings
from typing import Callable, Optional

import tensorflow as tf

from tfq_plus.converters.calibration import CalibrationData, CalibrationDataError, CalibrationDataWarning
from tfq_plus.converters.deploy_table import activation_form, deploy_grid, kernel_form
from tfq_plus.converters.emit import write_c_array
from tfq_plus.converters.export import BinarizeActivations, export
from tfq_plus.converters.interpreter import Interpreter
from tfq_plus.converters.model_check import check_model
from tfq_plus.converters.model_error import ModelError
from tfq_plus.converters.plans import NothingQuantizedWarning
from tfq_plus.converters.report import ModelReport, report
from tfq_plus.converters.unsupported import UnsupportedLayerError
from tfq_plus.converters.verify import VerificationError, VerifyReport, verify


def convert_keras_model(model, *, representative_dataset=None, custom_ops: bool = True,
                        target: str = "micro", inference_input_type=tf.int8,
                        inference_output_type=tf.int8, int4_builtin: bool = True,
                        code_lists=False, pack_activations: bool = True,
                        progress: Optional[Callable[[str], None]] = None) -> bytes:
    """Convert a trained Keras model (larq / tfq_plus quantizers) to a .tflite flatbuffer.

    Args:
        model: a Sequential or functional tf_keras model; it is cloned, never changed.
        representative_dataset: calibration inputs for the float layers, as the
            model saw them in training: an array of input samples [n, ...] (fed one
            at a time, in order), a list of arrays (one per model input), a callable
            yielding batches (an array, a list with one array per input, or a dict
            input name -> array), or a ``tf.data.Dataset`` of such batches. Required.
            Data that does not look like training inputs (integer or raw 8-bit
            pixel values, float64, constant) warns with ``CalibrationDataWarning``
            (see ``calibration``).
            A model without any quantized layer warns with
            ``NothingQuantizedWarning`` (its deploy model is the int8 model).
        custom_ops: True (default): the deploy model (planned layers as TFQP ops).
            False: the reference model (the stock converter's builtin int8 ops only).
        target: "micro" (default: every builtin op must be one TFLite Micro has) or
            "tflite".
        inference_input_type, inference_output_type: tf.int8 (default), tf.uint8 or
            tf.float32: the model's input / output tensor types.
        int4_builtin: a 4-bit uniform kernel (levels in [-8, 7]) on int8 values with
            an int8 output deploys as its builtin op with an INT4 filter, which stock
            TFLite Micro, CMSIS-NN and TFLite run, where they all can (convolutions;
            depthwise ones but with an odd number of input channels and a depth
            multiplier above 1; fully-connected layers with one filter scale);
            False, or elsewhere: a TFQP coded-weight op. Default True.
        code_lists: live-code lists (flash) for the TFQP_SHIFT_FULLY_CONNECTED layers,
            which a Cortex-M runs pruned channels from in batch 1 (4 bytes per nonzero
            code). "auto": where the counted Cortex-M instructions of the layer drop to
            at most 3/4 of its dense form's with them (heavily pruned layers; never a
            dense one); True: every shift fully-connected layer with one accumulator
            class; False (default): none. The lists cost flash (a 75 %-pruned 1024x256
            4-bit layer: 262 KB beside its 131 KB of codes) for speed (0.5x its dense
            instructions), so they are asked for, not given by default.
        pack_activations: 4- and 2-bit activation codes (grids of up to 16 levels)
            between TFQP ops are stored packed, 8 or 16 per int32 word (max-pools on
            them become TFQP_MAX_POOL_CODES), so the tensor arena shrinks; False:
            one int8 per code. A codes tensor a builtin op reads stays int8. Default True.
        progress: called with one line of text as each step starts (planning, the
            stock conversion, the rewrite), e.g. ``print``; None (default): silent.

    Returns:
        The flatbuffer bytes; the same model and data give identical bytes.

    Raises:
        CalibrationDataError: no / empty calibration data, a batch that does not fit
            the model's inputs, NaN or infinite values.
        UnsupportedLayerError: a layer the stock converter cannot lower (an LSTM, a
            custom layer with ops TFLite lacks), naming the layer and its class;
            TensorFlow's error is the ``__cause__``.
        ValueError: a layer or quantizer without a deploy form (naming the layer and
            why), a planned layer the rewrite could not place, or an op TFLite Micro
            lacks with target="micro".
    """
    deploy, reference = _convert(model, representative_dataset, custom_ops, target,
                                 inference_input_type, inference_output_type, int4_builtin,
                                 code_lists, pack_activations, progress)
    return deploy if custom_ops else reference


def convert_with_reference(model, *, representative_dataset=None, target: str = "micro",
                           inference_input_type=tf.int8, inference_output_type=tf.int8,
                           int4_builtin: bool = True, code_lists=False,
                           pack_activations: bool = True,
                           progress: Optional[Callable[[str], None]] = None):
    """``(deploy, reference)`` from one stock conversion (arguments as
    ``convert_keras_model``: ``representative_dataset``, ``target``,
    ``inference_input_type``, ``inference_output_type``, ``int4_builtin``,
    ``code_lists``, ``pack_activations``, ``progress``): the reference is the baseline ``verify`` and ``report`` compare
    with.

    Returns:
        A tuple of two flatbuffers (bytes): the deploy model (TFQP ops) and the
        reference model (the stock converter's builtin int8 ops only), with the
        same input and output types.

    Raises:
        As ``convert_keras_model``.
    """
    return _convert(model, representative_dataset, True, target, inference_input_type,
                    inference_output_type, int4_builtin, code_lists, pack_activations,
                    progress)


def _convert(model, representative_dataset, custom_ops, target, inference_input_type,
             inference_output_type, int4_builtin=True, code_lists=False,
             pack_activations=True, progress=None):
    # (the package's `export` / `verify` / `report` names are the functions, so the
    # modules are imported by their members)
    from tfq_plus.converters.export import export_and_plan
    from tfq_plus.converters.reference import convert_reference
    from tfq_plus.converters.rewrite import rewrite
    from tfq_plus.converters.streams import calibrate_streams
    from tfq_plus.converters.unsupported import check_one_subgraph

    from tfq_plus.converters.code_lists import check_setting

    code_lists = check_setting(code_lists)  # before the slow stock conversion
    say = progress or (lambda text: None)
    say("planning: which layers deploy as TFQP ops, on which grids")
    exported, plans = export_and_plan(model, int4_builtin=int4_builtin)
    calibration = CalibrationData(exported, representative_dataset)
    say(f"{len(plans)} quantized layer(s) planned; stock full-int8 conversion (the reference "
        "model; TensorFlow's converter, the slowest step)")
    reference_model = convert_reference(
        exported, calibration, target=target,
        inference_input_type=inference_input_type,
        inference_output_type=inference_output_type,
    )
    if not custom_ops:
        return None, reference_model
    if not len(plans):
        warnings.warn(NothingQuantizedWarning(
            f"model {model.name!r} has no quantized layer (a larq Quant* layer with a kernel or "
            "input quantizer, e.g. QuantConv2D(..., kernel_quantizer=tfq_plus.quantizers."
            "PowerOfTwo(bits=4))): nothing deploys as a TFQP op, the deploy model is the stock "
            "int8 model; quantize layers before training, or ask for that model with "
            "custom_ops=False"), stacklevel=3)
    check_one_subgraph(reference_model, exported)
    scales = {}
    if plans.streams:
        say(f"calibrating {len(set(plans.streams.values()))} residual stream scale(s)")
        scales = calibrate_streams(model, plans, calibration.samples())
    say("rewriting: TFQP ops in place of the planned layers' builtin ops")
    result = rewrite(reference_model, plans, model_name=exported.name, stream_scales=scales,
                     code_lists=code_lists, pack_activations=pack_activations)
    return result.flatbuffer, reference_model


def plan(model, int4_builtin: bool = True):
    """What each layer of ``model`` deploys to (``plans.Plans``: one ``LayerPlan``
    per layer that becomes a TFQP op, or a builtin op with an INT4 filter).

    Args:
        model: a built Sequential or functional tf_keras model (not changed).
        int4_builtin: bool, default True: as for ``convert_keras_model``.

    Returns:
        The ``Plans``: ``print(plans)`` gives a table, one row per planned layer;
        ``len(plans)`` their number.

    Raises:
        ValueError: not a built Sequential or functional tf_keras model, or a layer
            or quantizer without a deploy form, naming it and why.
    """
    from tfq_plus.converters.export import check_keras_model
    from tfq_plus.converters.planning import plan as _plan

    check_keras_model(model)
    return _plan(model, int4_builtin)


__all__ = [
    "BinarizeActivations",
    "NothingQuantizedWarning",
    "CalibrationDataError",
    "CalibrationDataWarning",
    "Interpreter",
    "ModelError",
    "ModelReport",
    "UnsupportedLayerError",
    "VerificationError",
    "VerifyReport",
    "activation_form",
    "check_model",
    "convert_keras_model",
    "convert_with_reference",
    "deploy_grid",
    "export",
    "kernel_form",
    "plan",
    "report",
    "verify",
    "write_c_array",
]
