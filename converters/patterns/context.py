"""What the patterns share while one model is rewritten."""

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Set, Tuple

import numpy as np

from tfq_plus.converters import plans as P
from tfq_plus.converters import tflite_schema as schema
from tfq_plus.converters.graph import Graph
from tfq_plus.converters.tflite_schema import BuiltinOperator as Op

# a planned layer's op kind -> the stock op it replaces
ANCHOR_CODES = {P.CONV2D: (Op.CONV_2D, "CONV_2D"), P.DEPTHWISE: (Op.DEPTHWISE_CONV_2D, "DEPTHWISE_CONV_2D"),
                P.DENSE: (Op.FULLY_CONNECTED, "FULLY_CONNECTED")}

# Names of the tensors the rewrite adds: "tfqp/<Keras layer>/<what>".
SIGNS = "signs"  # packed signs of the chain evaluated at that layer's output
VALUES = "values"  # int32 stream values of that layer's output


def tensor_name(keras_layer: str, what: str) -> str:
    return f"tfqp/{keras_layer}/{what}"


def parse_tensor_name(name: str) -> Optional[Tuple[str, str]]:
    """(Keras layer, what) of a tensor the rewrite added, else None."""
    parts = name.split("/")
    if len(parts) == 3 and parts[0] == "tfqp":
        return parts[1], parts[2]
    return None


@dataclass
class PaddedFlatten:
    """A flatten of packed [N, H, W, ceil(C/32)] words with C % 32 != 0: the dense
    layer reading it sees H * W * 32 * ceil(C/32) bit positions, the padding ones
    0 (+1) in both input and weights."""

    height: int
    width: int
    channels: int

    @property
    def words(self) -> int:
        return -(-self.channels // 32)

    @property
    def padding_taps(self) -> int:
        return self.height * self.width * (32 * self.words - self.channels)


@dataclass
class Context:
    graph: Graph
    plans: P.Plans
    stream_scales: Dict[int, float]
    # Keras layer -> packed tensor of the signs of its output
    signs: Dict[str, int] = field(default_factory=dict)
    # Keras layer -> int32 stream tensor of its output
    values: Dict[str, int] = field(default_factory=dict)
    # Keras layer -> int8 tensor of the k-bit codes of its output
    codes: Dict[str, int] = field(default_factory=dict)
    # Keras layer -> the original op after which its deploy tensors exist
    position: Dict[str, int] = field(default_factory=dict)
    padded_flatten: Dict[int, PaddedFlatten] = field(default_factory=dict)
    # stock int8 +-1 tensors of binarizations that TFQP ops read (shift ops on signs)
    int8_signs_read: Set[int] = field(default_factory=set)
    # what was done, for the result
    replaced: Dict[str, List[str]] = field(default_factory=dict)  # plan -> op names
    fallback_signs: List[str] = field(default_factory=list)  # layers whose signs come from int8
    # live-code lists of shift fully-connected layers: "auto", True, False (code_lists.py)
    code_lists: object = "auto"

    def anchor(self, plan: P.LayerPlan) -> int:
        """The original op of a planned layer: its one CONV_2D / FULLY_CONNECTED."""
        code, code_name = ANCHOR_CODES[plan.op]
        codes = (code,)
        found = self.graph.ops_of(plan.scope, codes)
        if not found:
            # an op writing a model output is named after the output, not the layer:
            # its input (the layer's binarization) or weights name the layer then, or
            # its folded weights and bias name a BatchNormalization of its chain
            folded = [step.name for step in plan.steps if step.kind == P.ELEMENTWISE]
            found = [index for index, op in enumerate(self.graph.ops)
                     if self.graph.code(index) in codes
                     and (any(self.graph.names_layer(int(t), plan.scope) for t in list(op.inputs)[:2] if t >= 0)
                          or int(op.outputs[0]) in self.graph.outputs
                          and any(self.graph.names_layer(int(t), name) for t in list(op.inputs)[1:] if t >= 0
                                  for name in folded))]
        if len(found) != 1:
            raise ValueError(
                f"layer {plan.name!r} was planned as a TFQP op, but the stock model has "
                f"{len(found)} {code_name} ops "
                "named after it (expected one); convert with custom_ops=False to inspect "
                "the reference model"
            )
        return found[0]

    def stream_scale(self, keras_layer: str) -> float:
        stream = self.plans.streams.get(keras_layer)
        if stream is None or stream not in self.stream_scales:
            raise ValueError(f"layer {keras_layer!r}: no residual-stream scale was calibrated")
        return self.stream_scales[stream]

    def new_packed(self, keras_layer: str, dims: List[int]) -> int:
        """A packed tensor [..., ceil(C/32)] for the signs of an [..., C] tensor."""
        shape = list(dims[:-1]) + [-(-int(dims[-1]) // 32)]
        return self.graph.add_tensor(tensor_name(keras_layer, SIGNS), shape, schema.TensorType.INT32)

    def new_values(self, keras_layer: str, dims: List[int], scale: float) -> int:
        """An int32 stream tensor of scale ``scale``, zero point 0."""
        quant = schema.fb.QuantizationParametersT()
        quant.scale = np.asarray([scale], dtype=np.float32)
        quant.zeroPoint = np.asarray([0], dtype=np.int64)
        return self.graph.add_tensor(tensor_name(keras_layer, VALUES), list(dims), schema.TensorType.INT32,
                                     quant=quant)

    def constant(self, name: str, data: np.ndarray) -> int:
        data = np.ascontiguousarray(data)
        tensor_type = {np.dtype(np.int32): schema.TensorType.INT32,
                       np.dtype(np.int16): schema.TensorType.INT16,
                       np.dtype(np.int8): schema.TensorType.INT8}[data.dtype]
        return self.graph.add_tensor(name, list(data.shape), tensor_type, data=data)
