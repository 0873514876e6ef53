"""The layer graph of a functional or Sequential tf_keras model.

Export plans layers by walking this graph: who produces a layer's input, who
reads its output. Only the nodes that belong to the model itself count (a layer
object may also be called in other models, e.g. a distiller's student).
"""

from typing import Dict, List

import tensorflow as tf


class KerasGraph:
    """Producers and consumers of every layer of ``model`` (one call node each).

    ``producers[name]``: names of the layers whose outputs the layer reads, in
    input order (an ``InputLayer`` for a model input). ``consumers[name]``: names of
    the layers reading its output, in model order. ``layers[name]``: the layer.
    ``outputs``: names of the layers whose outputs are model outputs.
    """

    def __init__(self, model):
        if not (isinstance(model, tf.keras.Sequential) or getattr(model, "_is_graph_network", False)):
            raise ValueError(
                f"export: model {model.name!r} is a subclassed model; the converter needs a "
                "Sequential or functional model (its layer graph)"
            )
        self.model = model
        self.layers: Dict[str, object] = {}
        self.producers: Dict[str, List[str]] = {}
        self.consumers: Dict[str, List[str]] = {}
        self.calls: Dict[str, int] = {}
        keys = getattr(model, "_network_nodes", None)
        # A Sequential model's ``layers`` leaves out its InputLayer, which the other
        # layers' producers name; the model's inputs bring it back.
        input_layers = [t._keras_history.layer for t in tf.nest.flatten(model.inputs or [])]
        for layer in input_layers + [layer for layer in model.layers if layer not in input_layers]:
            self.layers[layer.name] = layer
            self.consumers.setdefault(layer.name, [])
        for layer in model.layers:
            for index, node in enumerate(layer.inbound_nodes):
                if keys is not None and f"{layer.name}_ib-{index}" not in keys:
                    continue
                self.calls[layer.name] = self.calls.get(layer.name, 0) + 1
                inputs = tf.nest.flatten(node.input_tensors)
                names = []
                for tensor in inputs:
                    history = getattr(tensor, "_keras_history", None)
                    if history is None:
                        continue
                    names.append(history.layer.name)
                if layer.name in self.producers and not isinstance(layer, tf.keras.layers.InputLayer):
                    # a shared layer: its later calls are not followed
                    continue
                self.producers[layer.name] = names
                for name in names:
                    self.consumers.setdefault(name, []).append(layer.name)
        self.outputs = [t._keras_history.layer.name for t in tf.nest.flatten(model.outputs)]

    def shared(self, name: str) -> bool:
        """Whether the layer is called more than once in the model."""
        return self.calls.get(name, 0) > 1

    def single_consumer(self, name: str):
        """The only layer reading ``name``'s output, or None (several, none, or a
        model output)."""
        readers = self.consumers.get(name, [])
        if len(readers) != 1 or name in self.outputs:
            return None
        return readers[0]

    def input_of(self, name: str):
        """The single producer of a one-input layer, else None."""
        producers = self.producers.get(name, [])
        return producers[0] if len(producers) == 1 else None
