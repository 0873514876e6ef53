"""Report: what a flatbuffer costs on the device.

Per op: input/output shapes, constant (weight) bytes, MACs (binary XNOR-popcount MACs
for TFQP ops, int8 MACs for builtin conv / depthwise / fully-connected). Totals: flash
(the flatbuffer's size) and RAM:

- tensor arena, measured: TFLite Micro's own allocator (``tflite_micro`` Python
  interpreter, ``RecordingMicroAllocator``) after one invoke. It cannot load custom
  ops, so for a deploy model the arena is measured on its reference model (pass
  ``reference=``): an upper bound of the deploy model's arena, whose packed tensors
  are 8x smaller.
- activation peak, estimated for the model itself: the largest sum of tensors alive
  at once when ops run in order (no arena alignment, no in-place reuse), so deploy
  and reference can be compared.
"""

import re
from typing import List, NamedTuple, Optional

import numpy as np

from tfq_plus.converters import tflite_schema as schema
from tfq_plus.converters.micro_interpreter import MicroInterpreter
from tfq_plus.converters.model_check import TFLITE_MICRO_RUNTIME, check_model
from tfq_plus.converters.model_error import MODEL, ModelError
from tfq_plus.converters.ops import shift as shift_ops
from tfq_plus.converters.ops.registry import REGISTRY, OpView
from tfq_plus.converters.tflite_schema import BuiltinOperator as Op


class OpRow(NamedTuple):
    index: int
    op: str
    input_shape: List[int]
    output_shape: List[int]
    weight_bytes: int
    binary_macs: int
    int8_macs: int
    check: str = ""  # how verify checks a TFQP op (its registry's verify policy)
    weight_bits: int = 0  # bits a weight is stored in (a coded op's code width; 0: no weights)


class ModelReport(NamedTuple):
    ops: List[OpRow]
    flash_bytes: int  # the flatbuffer
    weight_bytes: int  # constant tensor data
    binary_macs: int
    int8_macs: int
    activation_peak_bytes: int  # estimate (see module doc)
    arena_bytes: Optional[int]  # measured by TFLite Micro, None if not measurable
    arena_source: str  # what the arena was measured on

    def __str__(self):
        header = (f"{'#':>3}  {'op':22s} {'input':18s} {'output':18s} {'weights B':>10} {'binary MACs':>12} "
                  f"{'int8 MACs':>11} {'bits':>4}  verify check")
        lines = [header, "-" * len(header)]
        for r in self.ops:
            lines.append(
                f"{r.index:3d}  {r.op:22s} {_dims(r.input_shape):18s} {_dims(r.output_shape):18s} "
                f"{r.weight_bytes:10d} {r.binary_macs:12d} {r.int8_macs:11d} {r.weight_bits or '-':>4}  {r.check}"
            )
        lines.append("-" * len(header))
        lines.append(f"flash (flatbuffer): {self.flash_bytes} bytes, of which weights {self.weight_bytes} bytes")
        lines.append(f"MACs: {self.binary_macs} binary, {self.int8_macs} int8")
        lines.append(f"activation peak (estimate): {self.activation_peak_bytes} bytes")
        if self.arena_bytes is None:
            lines.append(f"tensor arena: not measured ({self.arena_source})")
        else:
            lines.append(f"tensor arena (TFLite Micro, measured on {self.arena_source}): {self.arena_bytes} bytes")
        return "\n".join(lines)


def _dims(shape) -> str:
    return "x".join(str(d) for d in shape) if shape else "-"


_ELEMENT_BYTES = {
    schema.TensorType.INT8: 1, schema.TensorType.UINT8: 1, schema.TensorType.BOOL: 1,
    schema.TensorType.INT16: 2, schema.TensorType.INT32: 4, schema.TensorType.FLOAT32: 4,
    schema.TensorType.INT64: 8,
}


def _tensor_bytes(tensor) -> int:
    return int(np.prod(schema.shape(tensor), dtype=np.int64)) * _ELEMENT_BYTES.get(tensor.type, 4)


def _macs(model, index: int, graph) -> tuple:
    """(binary MACs, int8 MACs) of one op: TFQP ops by their registry entry,
    builtin convolutions and fully-connected layers as int8 MACs."""
    op = graph.operators[index]
    name = schema.op_name(model, op)
    spec = REGISTRY.get(name)
    if spec is not None:
        if spec.macs is None:
            return 0, 0
        count = spec.macs(OpView(model, index))
        return (count, 0) if spec.mac_kind == "binary" else (0, count)
    tensors = [graph.tensors[t] if t >= 0 else None for t in op.inputs]
    output = schema.shape(graph.tensors[op.outputs[0]])
    code = schema.builtin_code(model, op)
    if code == Op.CONV_2D:
        cout, kh, kw, cin = schema.shape(tensors[1])
        return 0, int(np.prod(output[:3])) * cout * kh * kw * cin
    if code == Op.DEPTHWISE_CONV_2D:
        _, kh, kw, channels = schema.shape(tensors[1])
        return 0, int(np.prod(output[:3])) * channels * kh * kw
    if code == Op.FULLY_CONNECTED:
        cout, cin = schema.shape(tensors[1])
        return 0, int(np.prod(output[:-1])) * cout * cin
    return 0, 0


_TYPE_BITS = {schema.TensorType.INT4: 4, schema.TensorType.INT8: 8, schema.TensorType.INT16: 16}
_WEIGHTED_BUILTINS = (Op.CONV_2D, Op.DEPTHWISE_CONV_2D, Op.FULLY_CONNECTED)


def _weight_bits(model, index: int, graph) -> int:
    """Bits per stored weight: a coded op's code width, 1 for a binary op's packed
    signs, else the weights tensor's type (a builtin op's filter); 0 without weights."""
    op = graph.operators[index]
    spec = REGISTRY.get(schema.op_name(model, op))
    if spec is not None:
        if spec.weights_input is None:
            return 0
        if spec.name in shift_ops.SHIFT_OPS:
            return shift_ops.code_bits(OpView(model, index))
        if spec.mac_kind == "binary":
            return 1
        position = spec.weights_input
    elif not schema.is_custom(model, op) and schema.builtin_code(model, op) in _WEIGHTED_BUILTINS:
        position = 1
    else:
        return 0
    return _TYPE_BITS.get(graph.tensors[op.inputs[position]].type, 0)


def _activation_peak(graph) -> int:
    """Largest sum of live non-constant tensors while ops run in order."""
    last_use = {}
    first_def = {}
    for index, op in enumerate(graph.operators):
        for t in op.inputs:
            if t >= 0:
                last_use[int(t)] = index
        for t in op.outputs:
            first_def.setdefault(int(t), index)
    for t in graph.inputs:
        first_def[int(t)] = -1
    for t in graph.outputs:
        last_use[int(t)] = len(graph.operators)
    peak = 0
    for index in range(-1, len(graph.operators)):
        live = sum(
            _tensor_bytes(graph.tensors[t])
            for t, start in first_def.items()
            if start <= index <= last_use.get(t, start)
        )
        peak = max(peak, live)
    return peak


def measure_arena(flatbuffer) -> int:
    """Tensor-arena bytes TFLite Micro allocates for the model (one invoke on zeros).

    Args:
        flatbuffer: a builtin-only model (bytes-like, a path or a CheckedModel).

    Raises:
        ModelError: the model is malformed, has custom ops or ops TFLite Micro
            cannot run.
    """
    checked = check_model(flatbuffer, runtime=TFLITE_MICRO_RUNTIME)
    _require_builtin_only(checked)
    try:
        text = MicroInterpreter(checked.runtime_bytes).print_allocations()
    except ModelError as error:
        raise ModelError(f"{checked.label}: {error}", error.check) from error
    match = re.search(r"Arena allocation total (\d+) bytes", text)
    if match is None:
        raise ValueError(f"TFLite Micro printed no arena total: {text.strip()!r}")
    return int(match.group(1))


def _require_builtin_only(checked):
    """A reference model holds builtin ops only (TFLite Micro runs it)."""
    model = checked.model
    for index, op in enumerate(model.subgraphs[0].operators):
        if schema.is_custom(model, op):
            raise ModelError(
                f"{checked.label}: op {index} is the custom op {schema.op_name(model, op)}, but a reference "
                "model has builtin ops only (convert_with_reference's second model, --reference-out); were "
                "the deploy and reference models swapped?", MODEL)


def report(flatbuffer, *, reference=None, measure: bool = True) -> ModelReport:
    """Per-op table and totals of ``flatbuffer`` (deploy or reference model).

    Args:
        flatbuffer: the model: bytes, bytearray, memoryview or the path of a
            .tflite file.
        reference: the reference model of a deploy model (same types), to measure
            the arena on (TFLite Micro cannot load TFQP ops).
        measure: run TFLite Micro to measure the arena.

    Raises:
        ModelError: a malformed model (or reference), naming the tensor or op and
            what is wrong; a reference with TFQP ops.
        TypeError: a model neither bytes-like nor a path.
    """
    checked = check_model(flatbuffer, argument="model")
    model = checked.model
    graph = model.subgraphs[0]
    rows = []
    counted_buffers = set()
    weight_total = 0
    for index, op in enumerate(graph.operators):
        weight_bytes = 0
        for t in op.inputs:
            if t < 0:
                continue
            data = schema.constant(model, graph.tensors[t])
            if data is None:
                continue
            stored = len(model.buffers[graph.tensors[t].buffer].data)  # packed int4: half the values
            weight_bytes += stored
            if graph.tensors[t].buffer not in counted_buffers:
                counted_buffers.add(graph.tensors[t].buffer)
                weight_total += stored
        binary, int8 = _macs(model, index, graph)
        first_input = next((t for t in op.inputs if t >= 0 and schema.constant(model, graph.tensors[t]) is None), None)
        spec = REGISTRY.get(schema.op_name(model, op))
        rows.append(OpRow(
            index, schema.op_name(model, op),
            schema.shape(graph.tensors[first_input]) if first_input is not None else [],
            schema.shape(graph.tensors[op.outputs[0]]), weight_bytes, binary, int8,
            spec.policy if spec is not None else "", _weight_bits(model, index, graph),
        ))
    has_custom = any(schema.is_custom(model, op) for op in graph.operators)
    arena, source = None, "not requested"
    if measure:
        if not has_custom:
            arena, source = measure_arena(checked), "this model"
        elif reference is not None:
            arena = measure_arena(check_model(reference, argument="reference"))
            source = "the reference model (upper bound)"
        else:
            source = "the model has TFQP ops, which TFLite Micro's Python interpreter cannot load; pass reference="
    return ModelReport(
        rows, len(checked.data), weight_total, sum(r.binary_macs for r in rows),
        sum(r.int8_macs for r in rows), _activation_peak(graph), arena, source,
    )
