"""A TFLite model as the rewrite edits it: lookups by op and by Keras scope, new
tensors and ops, and the final op order.

Tensor names of the stock converter's output name the Keras layers they came from:
``<model>/<layer>/<op>``, several such pieces joined by ``;`` where the converter
fused ops (a convolution with the BatchNormalization folded into it names both).
``scopes(tensor)`` reads them; the rewrite finds a planned layer's ops that way.
"""

from typing import Dict, List, Optional, Sequence, Set

import numpy as np

from tfq_plus.converters import tflite_schema as schema
from tfq_plus.converters.tflite_schema import BuiltinOperator as Op


class Graph:
    """Subgraph 0 of a model, with producer / reader maps of the original ops and
    the edits to apply (replacements and insertions, by original op index)."""

    def __init__(self, model, model_name: Optional[str] = None):
        self.model = model
        self.graph = model.subgraphs[0]
        self.tensors = self.graph.tensors
        self.ops = list(self.graph.operators)
        self.producer = schema.producers(self.graph)
        self.readers = schema.consumers(self.graph)
        self.outputs = [int(t) for t in self.graph.outputs]
        self.inputs = [int(t) for t in self.graph.inputs]
        self.model_name = model_name
        self._replace: Dict[int, list] = {}
        self._after: Dict[int, list] = {}

    # --- reading -----------------------------------------------------------------

    def code(self, index: int) -> int:
        return schema.builtin_code(self.model, self.ops[index])

    def name(self, tensor: int) -> str:
        return schema.tensor_name(self.tensors[tensor])

    def shape(self, tensor: int) -> List[int]:
        return schema.shape(self.tensors[tensor])

    def const(self, tensor: int) -> Optional[np.ndarray]:
        if tensor < 0:
            return None
        return schema.constant(self.model, self.tensors[tensor])

    def per_tensor(self, tensor: int):
        """(scale float32, zero point) of an int8 per-tensor quantized tensor, else None."""
        t = self.tensors[tensor]
        if t.type != schema.TensorType.INT8:
            return None
        return schema.per_tensor_quantization(t)

    def scopes(self, tensor: int) -> List[List[str]]:
        """The ``/``-separated components of each ``;``-separated piece of the name."""
        return [piece.split("/") for piece in self.name(tensor).split(";") if piece]

    def names_layer(self, tensor: int, layer: str, anywhere: bool = False) -> bool:
        """Whether the tensor's name comes from Keras layer ``layer`` of the model
        (component 1 of a piece, after the model name; ``anywhere``: any component,
        for layers nested in an exported wrapper)."""
        for parts in self.scopes(tensor):
            if anywhere and layer in parts[1:]:
                return True
            if len(parts) > 1 and parts[1] == layer and (self.model_name is None or parts[0] == self.model_name):
                return True
        return False

    def ops_of(self, layer: str, codes: Sequence[int] = ()) -> List[int]:
        """Indices of the original ops one of whose outputs is named by ``layer``."""
        found = []
        for index, op in enumerate(self.ops):
            if codes and self.code(index) not in codes:
                continue
            if any(self.names_layer(int(t), layer) for t in op.outputs):
                found.append(index)
        return found

    def tensor_of(self, layer: str) -> Optional[int]:
        """The int8 tensor holding Keras layer ``layer``'s output: the output of the
        last original op named by it."""
        ops = self.ops_of(layer)
        for index in reversed(ops):
            for t in self.ops[index].outputs:
                if self.names_layer(int(t), layer) and self.tensors[int(t)].type == schema.TensorType.INT8:
                    return int(t)
        return None

    def find_binarize(self, scope: str):
        """(GREATER_EQUAL op, SELECT_V2 op) of the binarization in Keras layer
        ``scope`` (a layer binarizing its input, or a quantizer layer), else None."""
        compares = self.ops_of(scope, (Op.GREATER_EQUAL,))
        selects = self.ops_of(scope, (Op.SELECT_V2,))
        if len(compares) != 1 or len(selects) != 1:
            return None
        return compares[0], selects[0]

    # --- editing -----------------------------------------------------------------

    def add_tensor(self, name: str, shape, tensor_type: int, *, data=None, quant=None) -> int:
        index = schema.add_tensor(self.model, name, shape, tensor_type, data=data, quant=quant)
        return index

    def custom_op(self, code: str, inputs, outputs, options: bytes):
        return schema.custom_op(self.model, code, inputs, outputs, options)

    def builtin_op(self, code: int, inputs, outputs, options_type=0, options=None):
        op = schema.fb.OperatorT()
        op.opcodeIndex = schema.opcode_index(self.model, code)
        op.inputs = np.asarray(list(inputs), dtype=np.int32)
        op.outputs = np.asarray(list(outputs), dtype=np.int32)
        op.builtinOptionsType = options_type
        op.builtinOptions = options
        return op

    def reshape_op(self, source: int, target: int):
        """A builtin RESHAPE of ``source`` to the shape of ``target``."""
        new_shape = self.shape(target)
        shape_tensor = self.add_tensor(
            self.name(target) + "/shape", [len(new_shape)], schema.TensorType.INT32,
            data=np.asarray(new_shape, dtype=np.int32),
        )
        options = schema.fb.ReshapeOptionsT()
        options.newShape = np.asarray(new_shape, dtype=np.int32)
        return self.builtin_op(Op.RESHAPE, [source, shape_tensor], [target],
                               schema.BuiltinOptions.ReshapeOptions, options)

    def replace(self, index: int, ops: list):
        """Ops to run instead of original op ``index``."""
        if index in self._replace:
            raise ValueError(f"rewrite: op {index} ({self.name(int(self.ops[index].outputs[0]))}) replaced twice")
        self._replace[index] = list(ops)

    def insert_after(self, index: int, ops: list):
        """Ops to run right after original op ``index`` (or its replacement)."""
        self._after.setdefault(index, []).extend(ops)

    def replaced(self, index: int) -> bool:
        return index in self._replace

    def commit(self) -> Set[int]:
        """Apply the edits, drop the ops nothing reads any more and everything only
        they used; returns the original op indices that survive unchanged."""
        operators = []
        kept: Set[int] = set()
        for index, op in enumerate(self.ops):
            if index in self._replace:
                operators.extend(self._replace[index])
            else:
                operators.append(op)
                kept.add(id(op))
            operators.extend(self._after.get(index, []))
        self.graph.operators = operators
        schema.remove_dead_ops(self.graph)
        alive = {id(op) for op in self.graph.operators}
        schema.compact(self.model)
        return {index for index, op in enumerate(self.ops) if id(op) in kept and id(op) in alive}
