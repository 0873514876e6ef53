"""Naming the Keras layer a conversion fails on.

The stock TFLite converter reports a layer it cannot lower as an MLIR diagnostic
about a TensorFlow op (``'tf.Erf' op is neither a custom op nor a flex op``), a
``RuntimeError`` from its calibration interpreter (sometimes with an empty message),
or, for control flow, a model of several subgraphs the rewrite cannot edit. Those
become ``UnsupportedLayerError``: the layer's name and class, the failing op, what
the converter supports, and TensorFlow's own error as the ``__cause__``.

The layer comes from the op's location: TensorFlow names every op of a traced
Keras model ``<model>/<layer>/<op>`` (and tensor names keep it), so the first
component that is a layer of the model names it. Errors without a location
(calibration) name the model's custom layers (classes outside Keras, larq and
tfq_plus), the usual culprits; when there are none the error says so.
"""

import re
from typing import Iterable, List, Sequence

import tensorflow as tf

from tfq_plus.converters import tflite_schema as schema
from tfq_plus.converters.tflite_schema import BuiltinOperator as Op

SUPPORTED = (
    "the converter takes Sequential or functional tf_keras models of larq QuantConv2D / "
    "QuantDense / QuantDepthwiseConv2D layers and Keras layers the stock full-int8 TFLite "
    "converter lowers to builtin ops (Conv2D, Dense, DepthwiseConv2D, pooling, "
    "BatchNormalization, activations, Add, Concatenate, Flatten, Reshape, ...)"
)

# Modules whose layers are not the user's own code.
_LIBRARY_MODULES = ("tf_keras.", "keras.", "tensorflow.", "larq.", "tfq_plus.")

# TFLite ops that hold control flow or state in extra subgraphs / resources.
_CONTROL_FLOW_OPS = {Op.WHILE, Op.IF, Op.CALL_ONCE, Op.VAR_HANDLE, Op.READ_VARIABLE, Op.ASSIGN_VARIABLE}


class UnsupportedLayerError(ValueError):
    """A layer the converter cannot deploy; ``layers`` names them (name, class).

    Args:
        message: str, the sentence naming the layer, the failing op and what the
            converter supports.
        layers: the Keras layers at fault; stored as ``layers``, a list of
            ``(name, class name)`` pairs.
    """

    def __init__(self, message: str, layers: Sequence = ()):
        super().__init__(message)
        self.layers = [(layer.name, type(layer).__name__) for layer in layers]


def describe(layers) -> str:
    return ", ".join(f"{layer.name!r} ({type(layer).__name__})" for layer in layers)


def is_custom(layer) -> bool:
    return not type(layer).__module__.startswith(_LIBRARY_MODULES)


def layers_named_in(model, names: Iterable[str]) -> List:
    """The model's layers that TensorFlow op / tensor ``names`` come from, in order."""
    by_name = {layer.name: layer for layer in model.layers}
    found = []
    for name in names:
        for part in re.split(r"[/;]", name.split("@")[0]):
            layer = by_name.get(part)
            if layer is not None and layer not in found:
                found.append(layer)
                break
    return found


def _hint(layers) -> str:
    if any(isinstance(layer, (tf.keras.layers.RNN, tf.keras.layers.Bidirectional)) for layer in layers):
        return "recurrent layers convert only unrolled (unroll=True, a fixed number of time steps); "
    if any(is_custom(layer) for layer in layers):
        return "a custom layer must compute with TensorFlow ops TFLite has as builtin int8 ops; "
    return ""


def first_line(text: str) -> str:
    """The first non-empty line of a (TensorFlow) message, at most 240 characters."""
    line = next((line.strip() for line in str(text).splitlines() if line.strip()), "")
    return line[:240] if line else "no message"


def brief(text: str) -> str:
    """A message of wrapped lines as one line, at most 240 characters."""
    line = " ".join(str(text).split())
    return (line[:237] + "...") if len(line) > 240 else (line or "no message")


def _diagnostics(error):
    """(op type, first message line, location names) of each converter diagnostic."""
    found = []
    for data in getattr(error, "errors", None) or []:
        op = data.operator.name if data.HasField("operator") else ""
        names = re.findall(r'name: "([^"]+)"', str(data.location))
        found.append((op.replace("tf.", "", 1), first_line(data.error_message), names))
    return found


def stock_converter_failure(model, error: Exception) -> ValueError:
    """The error to raise when the stock converter fails on ``model`` (the exported
    Keras model) with ``error``."""
    diagnostics = _diagnostics(error)
    for op, message, names in diagnostics:
        layers = layers_named_in(model, names)
        if layers and op not in ("", "Const"):
            return UnsupportedLayerError(
                f"layer {describe(layers[:1])} cannot be converted: the stock TFLite converter "
                f"failed on its TensorFlow op {op} ({message}); {_hint(layers[:1])}{SUPPORTED}",
                layers[:1],
            )
    summary = f"{type(error).__name__}: {first_line(diagnostics[0][1] if diagnostics else error)}"
    custom = [layer for layer in model.layers if is_custom(layer)]
    if custom:
        return UnsupportedLayerError(
            f"the stock TFLite converter failed ({summary}) on a model with custom layers "
            f"{describe(custom)}: {_hint(custom)}{SUPPORTED}",
            custom,
        )
    return ValueError(
        f"the stock TFLite converter failed on the exported model ({summary}) without naming a "
        f"layer; {SUPPORTED}"
    )


def check_one_subgraph(flatbuffer: bytes, model):
    """Raise UnsupportedLayerError if the converted model has control flow or state
    (several subgraphs, resource variables): the rewrite edits one subgraph."""
    tflite = schema.read(flatbuffer)
    graph = tflite.subgraphs[0]
    ops = [op for op in graph.operators if schema.builtin_code(tflite, op) in _CONTROL_FLOW_OPS]
    if len(tflite.subgraphs) == 1 and not ops:
        return
    names = [schema.tensor_name(graph.tensors[int(t)]) for op in ops for t in list(op.inputs) + list(op.outputs)
             if t >= 0]
    op_names = sorted({schema.op_name(tflite, op) for op in ops})
    layers = layers_named_in(model, names) or [layer for layer in model.layers if is_custom(layer)]
    culprit = f"layer {describe(layers)}" if layers else "a layer"
    raise UnsupportedLayerError(
        f"{culprit} cannot be converted with TFQP ops: it computes control flow or keeps state "
        f"(tf.cond, tf.while_loop, a variable it updates), which the stock converter made into "
        f"{'/'.join(op_names) or 'control-flow'} ops and {len(tflite.subgraphs) - 1} extra subgraph(s), "
        "and the rewrite edits models of one subgraph: compute it with plain ops (e.g. tf.where "
        "instead of tf.cond), or convert with custom_ops=False (the reference model only)",
        layers,
    )
