"""The reference model: the exported Keras model through the stock full-int8 converter.

Builtin ops only. For ``target="micro"`` every op must be one TFLite Micro has
(checked here, so a model that would not run on a microcontroller fails at
conversion, naming the op and the layer it came from).
"""

import warnings
from typing import Callable, Iterable

import numpy as np
import tensorflow as tf

from tfq_plus.converters import tflite_schema as schema

TARGETS = ("micro", "tflite")
INFERENCE_TYPES = (tf.int8, tf.uint8, tf.float32)


def representative_batches(model, samples) -> Callable[[], Iterable[list]]:
    """A ``representative_dataset`` callable from a callable or an array of samples.

    An array (or list of arrays, one per model input) is fed one sample at a time,
    in order, so the calibration is deterministic.
    """
    if samples is None:
        raise ValueError(
            "representative_dataset is required: full-int8 conversion calibrates the "
            "ranges of the float layers (stem, BatchNorm outputs) on real inputs; pass "
            "an array of input samples or a callable yielding [batch] lists"
        )
    if callable(samples):
        return samples
    arrays = [np.asarray(a, dtype=np.float32) for a in (samples if isinstance(samples, (list, tuple)) else [samples])]
    if len(arrays) != len(model.inputs):
        raise ValueError(
            f"representative_dataset: the model has {len(model.inputs)} inputs, got "
            f"{len(arrays)} arrays"
        )
    for array, tensor in zip(arrays, model.inputs):
        if tuple(array.shape[1:]) != tuple(tensor.shape[1:]):
            raise ValueError(
                f"representative_dataset: samples of shape {array.shape[1:]} do not fit "
                f"model input {tensor.name!r} of shape {tuple(tensor.shape[1:])}"
            )
    count = len(arrays[0])
    if count == 0:
        raise ValueError("representative_dataset: no samples given")

    def batches():
        for i in range(count):
            yield [a[i : i + 1] for a in arrays]

    return batches


def representative_samples(model, samples, limit: int = 1000):
    """The calibration inputs as a list of arrays (one per model input), at most
    ``limit`` samples: what the converter evaluates the Keras model on (residual
    stream scales)."""
    batches = representative_batches(model, samples)
    collected = [[] for _ in model.inputs]
    count = 0
    for batch in batches():
        batch = list(batch) if isinstance(batch, (list, tuple)) else [batch]
        for store, array in zip(collected, batch):
            store.append(np.asarray(array, dtype=np.float32))
        count += len(batch[0])
        if count >= limit:
            break
    if count == 0:
        raise ValueError("representative_dataset yielded no samples")
    return [np.concatenate(store)[:limit] for store in collected]


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
    """Stock full-int8 conversion of an exported model (see ``export.export``)."""
    check_target(target)
    check_inference_type("inference_input_type", inference_input_type)
    check_inference_type("inference_output_type", inference_output_type)
    converter = tf.lite.TFLiteConverter.from_keras_model(exported_model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative_batches(exported_model, representative_dataset)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = inference_input_type
    converter.inference_output_type = inference_output_type
    with warnings.catch_warnings():
        # The int8 input type makes the converter look for input statistics it then
        # does not need (the input quantization comes from the calibration).
        warnings.filterwarnings("ignore", message="Statistics for quantized inputs")
        flatbuffer = bytes(converter.convert())
    if target == "micro":
        check_micro_ops(flatbuffer)
    return flatbuffer


def check_micro_ops(flatbuffer: bytes):
    """Raise ValueError if an op of the model is not a TFLite Micro builtin."""
    from tfq_plus.converters.emit import MICRO_BUILTINS

    model = schema.read(flatbuffer)
    for index, op in enumerate(model.subgraphs[0].operators):
        name = schema.op_name(model, op)
        if schema.is_custom(model, op):
            continue
        if name not in MICRO_BUILTINS:
            tensor = model.subgraphs[0].tensors[op.outputs[0]]
            raise ValueError(
                f"op {index} ({name}, output {schema.tensor_name(tensor)!r}) has no TFLite "
                "Micro kernel; use target='tflite' or change the layer that produced it"
            )
