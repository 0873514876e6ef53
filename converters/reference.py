"""The reference model: the exported Keras model through the stock full-int8 converter.

Builtin ops only. For ``target="micro"`` every op must be one TFLite Micro has
(checked here, so a model that would not run on a microcontroller fails at
conversion, naming the op and the layer it came from).
"""

import warnings

import tensorflow as tf

from tfq_plus import tensorflow_logs

from tfq_plus.converters import tflite_schema as schema
from tfq_plus.converters import unsupported
from tfq_plus.converters.calibration import CalibrationData, CalibrationDataError

TARGETS = ("micro", "tflite")
INFERENCE_TYPES = (tf.int8, tf.uint8, tf.float32)


def check_target(target: str):
    if target not in TARGETS:
        raise ValueError(f"target must be one of {list(TARGETS)}, got {target!r}")


def check_inference_type(name: str, value):
    if value not in INFERENCE_TYPES:
        raise ValueError(
            f"{name} must be one of {[t.name for t in INFERENCE_TYPES]}, got {value!r}"
        )


def convert_reference(exported_model, representative_dataset, *, target="micro",
                      inference_input_type=tf.int8, inference_output_type=tf.int8) -> bytes:
    """Stock full-int8 conversion of an exported model (see ``export.export``).

    ``representative_dataset``: any form ``calibration.CalibrationData`` takes, or
    one. A layer the stock converter cannot lower raises
    ``unsupported.UnsupportedLayerError`` naming it (TensorFlow's error is the cause).
    """
    check_target(target)
    check_inference_type("inference_input_type", inference_input_type)
    check_inference_type("inference_output_type", inference_output_type)
    calibration = CalibrationData.of(exported_model, representative_dataset)
    converter = tf.lite.TFLiteConverter.from_keras_model(exported_model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = calibration.batches
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = inference_input_type
    converter.inference_output_type = inference_output_type
    with warnings.catch_warnings():
        # The int8 input type makes the converter look for input statistics it then
        # does not need (the input quantization comes from the calibration).
        warnings.filterwarnings("ignore", message="Statistics for quantized inputs")
        try:
            with tensorflow_logs.quiet_call():
                flatbuffer = bytes(converter.convert())
        except CalibrationDataError:
            raise
        except Exception as error:  # TensorFlow's ConverterError, RuntimeError, ...
            raise unsupported.stock_converter_failure(exported_model, error) from error
    if target == "micro":
        check_micro_ops(flatbuffer, exported_model)
    return flatbuffer


def check_micro_ops(flatbuffer: bytes, keras_model=None):
    """Raise ValueError if an op of the model is not a TFLite Micro builtin (naming
    the layer of ``keras_model`` it came from, when given)."""
    from tfq_plus.converters.emit import MICRO_BUILTINS

    model = schema.read(flatbuffer)
    for index, op in enumerate(model.subgraphs[0].operators):
        name = schema.op_name(model, op)
        if schema.is_custom(model, op):
            continue
        if name not in MICRO_BUILTINS:
            tensor = schema.tensor_name(model.subgraphs[0].tensors[op.outputs[0]])
            layers = unsupported.layers_named_in(keras_model, [tensor]) if keras_model is not None else []
            layer = f" of layer {unsupported.describe(layers)}" if layers else ""
            raise ValueError(
                f"op {index} ({name}, output {tensor!r}){layer} has no TFLite "
                "Micro kernel; use target='tflite' or change the layer that produced it"
            )
