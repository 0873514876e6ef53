"""Where a model's quantizers sit and which weights they quantize.

The callbacks act on quantizers inside larq layers (``input_quantizer``,
``kernel_quantizer``, ``depthwise_quantizer``, ``pointwise_quantizer``), on quantizers
used as layers of their own, and on the weights those quantizers read. This module
finds them once, in layer order, also inside nested models and wrappers such as
TFMOT's pruning wrapper, so every callback names a tensor the same way.
"""

from typing import List, NamedTuple, Optional

import larq as lq
import tensorflow as tf

# larq's quantizer attributes and the weight each quantizes (None: the layer input).
QUANTIZER_ATTRIBUTES = (
    ("input_quantizer", None),
    ("kernel_quantizer", "kernel"),
    ("depthwise_quantizer", "depthwise_kernel"),
    ("pointwise_quantizer", "pointwise_kernel"),
)


class QuantizedTensor(NamedTuple):
    """One tensor of a model and the quantizer applied to it.

    Attributes:
        name: ``"<layer>/<weight>"`` for a weight (``"conv/kernel"``),
            ``"<layer>/input"`` for a larq layer's input, ``"<layer>"`` for a
            quantizer used as a layer.
        layer: the layer that owns the tensor (the quantizer itself if standalone).
        quantizer: the quantizer, or None for a weight that is not quantized.
        variable: the latent weight variable (larq's ``QuantizedVariable`` unwrapped),
            or None for activations.
    """

    name: str
    layer: tf.keras.layers.Layer
    quantizer: Optional[object]
    variable: Optional[tf.Variable]


def latent_variable(variable):
    """The float variable behind larq's ``QuantizedVariable`` (or the variable itself)."""
    return getattr(variable, "latent_variable", variable)


def all_layers(model) -> List[tf.keras.layers.Layer]:
    """Every layer of ``model``, nested ones included (quantizers too), in Keras'
    tracking order: a layer comes before the layers it holds."""
    return list(model._flatten_layers(include_self=False, recursive=True))


def _nested_quantizers(quantizer) -> List[object]:
    """Quantizers held by ``quantizer`` (wrappers' stages or base), recursively."""
    found = []
    if isinstance(quantizer, tf.keras.layers.Layer):
        for inner in quantizer._flatten_layers(include_self=False, recursive=True):
            found.append(inner)
    return found


def find_quantized_tensors(model) -> List[QuantizedTensor]:
    """The weights (quantized or not) and quantized activations of ``model``.

    Weights are ``kernel`` / ``depthwise_kernel`` / ``pointwise_kernel`` of every
    layer that has one; activations are larq layers' ``input_quantizer`` and
    quantizers used as layers. A quantizer held by another (a stage of a wrapper)
    is reported through the outer quantizer only.
    """
    layers = all_layers(model)
    owned = set()
    for layer in layers:
        for attribute, _ in QUANTIZER_ATTRIBUTES:
            quantizer = getattr(layer, attribute, None)
            if quantizer is not None:
                owned.add(id(quantizer))
                owned.update(id(inner) for inner in _nested_quantizers(quantizer))
        if isinstance(layer, lq.quantizers.Quantizer):
            owned.update(id(inner) for inner in _nested_quantizers(layer))

    found = []
    for layer in layers:
        if isinstance(layer, lq.quantizers.Quantizer):
            if id(layer) not in owned:
                found.append(QuantizedTensor(layer.name, layer, layer, None))
            continue
        for attribute, weight in QUANTIZER_ATTRIBUTES:
            quantizer = getattr(layer, attribute, None)
            if weight is None:
                if quantizer is not None:
                    found.append(QuantizedTensor(f"{layer.name}/input", layer, quantizer, None))
                continue
            variable = getattr(layer, weight, None)
            if isinstance(variable, tf.Variable):
                found.append(
                    QuantizedTensor(
                        f"{layer.name}/{weight}", layer, quantizer, latent_variable(variable)
                    )
                )
    return found
