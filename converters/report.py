"""Report: what a flatbuffer costs on the device.

Per op: input/output shapes (packed signs and packed k-bit codes in channels, marked), constant
(weight) bytes, MACs and their kind (``registry.MAC_KINDS``: binary XNOR-popcount,
shift, k-bit, int8; builtin conv / depthwise / fully-connected count as int8, or k-bit
with INT4 filters). Totals: flash (the flatbuffer's size) and RAM:

- tensor arena, measured: TFLite Micro's own allocator (``tflite_micro`` Python
  interpreter, ``RecordingMicroAllocator``) after one invoke. It cannot load custom
  ops, so for a deploy model the arena is measured on its reference model (pass
  ``reference=``), not the deploy model's own: its packed tensors are smaller, but
  its TFQP ops keep tables in the arena's persistent part
  (``benchmarks/kbit_arena.py`` measures deploy models in a TFLite Micro build).
- activation peak, estimated for the model itself: the largest sum of tensors alive
  at once when ops run in order (packed tensors at their int32 words' bytes; no
  arena alignment, no in-place reuse, no scratch or tables), so deploy and reference
  can be compared.
"""

import re
from typing import Dict, List, NamedTuple, Optional

import numpy as np

from tfq_plus.converters import tflite_schema as schema
from tfq_plus.converters.micro_interpreter import MicroInterpreter
from tfq_plus.converters.model_check import TFLITE_MICRO_RUNTIME, check_model
from tfq_plus.converters.model_error import MODEL, ModelError
from tfq_plus.converters.ops import shift as shift_ops
from tfq_plus.converters.ops.registry import MAC_KINDS, REGISTRY, OpView, mac_kind
from tfq_plus.converters.tflite_schema import BuiltinOperator as Op


# A packed tensor's shape is shown in channels, marked with this suffix.
PACKED_MARK = "p"


def binary_macs(macs: Dict[str, int]) -> int:
    """The binary (XNOR-popcount) MACs of a {kind: count} dict."""
    return macs.get("binary", 0)


def int8_macs(macs: Dict[str, int]) -> int:
    """MACs on int8 activations that are not binary (int8, shift and k-bit weights)."""
    return sum(count for kind, count in macs.items() if kind != "binary")


class OpRow(NamedTuple):
    """One op of ``ModelReport.ops``: its shapes, weights and MACs.

    Shapes of packed-sign tensors are in channels (``input_packed`` /
    ``output_packed`` say which); ``weight_bytes`` counts the op's constant inputs
    as stored; ``macs`` has one entry ``{kind: count}`` (kinds: ``MAC_KINDS``) for
    ops that multiply, none otherwise.
    """

    index: int
    op: str
    input_shape: List[int]  # packed tensors: in channels (see the *_packed flags)
    output_shape: List[int]
    weight_bytes: int
    macs: Dict[str, int]  # MAC kind (registry.MAC_KINDS) -> count; one kind per op
    check: str = ""  # how verify checks a TFQP op (its registry's verify policy)
    weight_count: int = 0  # weights (kernel elements) the MACs use
    weight_bits: int = 0  # bits a weight is stored in (a coded op's code width; 0: no weights)
    input_packed: bool = False
    output_packed: bool = False
    input_code_bits: int = 0  # a packed k-bit codes tensor: k (its mark p<k>); else 0
    output_code_bits: int = 0

    binary_macs = property(lambda self: binary_macs(self.macs), doc="The op's binary MACs.")
    int8_macs = property(lambda self: int8_macs(self.macs), doc="The op's other MACs (int8 activations).")


class ModelReport(NamedTuple):
    """What ``report`` measured; ``print(report)`` gives the table.

    Attributes:
        ops: one ``OpRow`` per op, in execution order.
        flash_bytes: the flatbuffer's size.
        weight_bytes: constant tensor data, each buffer counted once.
        macs: ``{kind: count}`` over the model (kinds: binary, shift, k-bit, int8).
        activation_peak_bytes: the largest sum of tensors alive at once (estimate,
            see the module doc).
        arena_bytes: the tensor arena TFLite Micro allocated, or None if not
            measured.
        arena_source: what the arena was measured on, or why it was not.
    """

    ops: List[OpRow]
    flash_bytes: int  # the flatbuffer
    weight_bytes: int  # constant tensor data
    macs: Dict[str, int]  # MAC kind -> count over the model
    activation_peak_bytes: int  # estimate (see module doc)
    arena_bytes: Optional[int]  # measured by TFLite Micro, None if not measurable
    arena_source: str  # what the arena was measured on

    binary_macs = property(lambda self: binary_macs(self.macs), doc="The model's binary (XNOR-popcount) MACs.")
    int8_macs = property(lambda self: int8_macs(self.macs),
                         doc="The model's MACs on int8 activations (int8, shift and k-bit weights).")

    def plot(self, path: str, *, title: Optional[str] = None) -> str:
        """Draw the report (weight bytes float / int8 / deployed and MACs by kind per
        layer, the arena) into the image ``path`` (.png, .svg, .pdf) and return it;
        ``tfq-plus report --plot`` on the command line (``report_plot.plot_report``)."""
        from tfq_plus.converters.report_plot import plot_report

        return plot_report(self, path, title=title)

    def __str__(self):
        header = (f"{'#':>3}  {'op':22s} {'input':18s} {'output':18s} {'weights B':>10} {'bits':>4} "
                  f"{'MACs':>12} {'kind':6s}  verify check")
        lines = [header, "-" * len(header)]
        for r in self.ops:
            kind, count = next(iter(r.macs.items()), ("", 0))
            lines.append(
                f"{r.index:3d}  {r.op:22s} {_dims(r.input_shape, r.input_packed, r.input_code_bits):18s} "
                f"{_dims(r.output_shape, r.output_packed, r.output_code_bits):18s} "
                f"{r.weight_bytes:10d} {r.weight_bits or '-':>4} {count:12d} {kind:6s}  {r.check}"
            )
        lines.append("-" * len(header))
        if any(r.input_packed and not r.input_code_bits or r.output_packed and not r.output_code_bits
               for r in self.ops):
            lines.append(f"{PACKED_MARK}: packed signs, 1 bit per channel in int32 words (shown in channels)")
        if any(r.input_code_bits or r.output_code_bits for r in self.ops):
            lines.append(f"{PACKED_MARK}4 / {PACKED_MARK}2: packed 4- / 2-bit codes, 8 / 16 per int32 word "
                         "(shown in channels)")
        lines.append(f"flash (flatbuffer): {self.flash_bytes} bytes, of which weights {self.weight_bytes} bytes")
        kinds = ", ".join(f"{self.macs[kind]} {kind}" for kind in MAC_KINDS if self.macs.get(kind))
        lines.append(f"MACs: {kinds or 0}")
        lines.append(f"activation peak (estimate): {self.activation_peak_bytes} bytes")
        if self.arena_bytes is None:
            lines.append(f"tensor arena: not measured ({self.arena_source})")
        else:
            lines.append(f"tensor arena (TFLite Micro, measured on {self.arena_source}): {self.arena_bytes} bytes")
        return "\n".join(lines)


def _dims(shape, packed: bool = False, code_bits: int = 0) -> str:
    if not shape:
        return "-"
    mark = (PACKED_MARK + (str(code_bits) if code_bits else "")) if packed else ""
    return "x".join(str(d) for d in shape) + mark


_ELEMENT_BYTES = {
    schema.TensorType.INT8: 1, schema.TensorType.UINT8: 1, schema.TensorType.BOOL: 1,
    schema.TensorType.INT16: 2, schema.TensorType.INT32: 4, schema.TensorType.FLOAT32: 4,
    schema.TensorType.INT64: 8,
}


def _tensor_bytes(tensor) -> int:
    return int(np.prod(schema.shape(tensor), dtype=np.int64)) * _ELEMENT_BYTES.get(tensor.type, 4)


def _macs(model, index: int, graph) -> Dict[str, int]:
    """{kind: MACs} of one op: TFQP ops by their registry entry, builtin
    convolutions and fully-connected layers as int8 MACs (INT4 filters as k-bit)."""
    op = graph.operators[index]
    name = schema.op_name(model, op)
    spec = REGISTRY.get(name)
    if spec is not None:
        if spec.macs is None:
            return {}
        view = OpView(model, index, graph)
        return {mac_kind(view): spec.macs(view)}
    tensors = [graph.tensors[t] if t >= 0 else None for t in op.inputs]
    output = schema.shape(graph.tensors[op.outputs[0]])
    code = schema.builtin_code(model, op)
    count = 0
    if code == Op.CONV_2D:
        cout, kh, kw, cin = schema.shape(tensors[1])
        count = int(np.prod(output[:3])) * cout * kh * kw * cin
    elif code == Op.DEPTHWISE_CONV_2D:
        _, kh, kw, channels = schema.shape(tensors[1])
        count = int(np.prod(output[:3])) * channels * kh * kw
    elif code == Op.FULLY_CONNECTED:
        cout, cin = schema.shape(tensors[1])
        count = int(np.prod(output[:-1])) * cout * cin
    if not count:
        return {}
    int4 = getattr(schema.TensorType, "INT4", None)
    return {"k-bit" if int4 is not None and tensors[1].type == int4 else "int8": count}


# TFQP ops whose packed output has as many channels as their input (window ops).
_SAME_CHANNELS = ("TFQP_BMAXPOOL2D", "TFQP_MAX_POOL_CODES")


def packed_code_bits(model, graph) -> Dict[int, int]:
    """Tensor index -> k, for the packed k-bit codes tensors of a deploy model
    (``packed_activations``): a codes output with ``output_bits``, the max-pools and
    reshapes after it."""
    bits: Dict[int, int] = {}
    for index, op in enumerate(graph.operators):
        if not op.outputs or op.outputs[0] < 0:
            continue
        output = int(op.outputs[0])
        first = int(op.inputs[0]) if len(op.inputs) and op.inputs[0] >= 0 else None
        options = OpView(model, index, graph).options
        if options.get("output_bits"):
            bits[output] = options["output_bits"]
        elif schema.op_name(model, op) == "TFQP_MAX_POOL_CODES":
            bits[output] = options["bits"]
        elif schema.builtin_code(model, op) == Op.RESHAPE and first in bits:
            bits[output] = bits[first]
    return bits


def packed_channels(model, graph) -> Dict[int, int]:
    """Tensor index -> channels, for the packed-sign tensors (int32 words) of a
    deploy model, followed through the graph in op order: a TFQP op with weights
    writes as many channels as its weights have rows, TFQP_BINARIZE as its input
    has, max-pool keeps them, and a reshape of a packed tensor (a flatten) holds
    pixels x channels."""
    channels: Dict[int, int] = {}
    for index, op in enumerate(graph.operators):
        if not op.outputs or op.outputs[0] < 0:
            continue
        output = int(op.outputs[0])
        if graph.tensors[output].type != schema.TensorType.INT32:
            continue
        name = schema.op_name(model, op)
        view = OpView(model, index, graph)
        first = int(op.inputs[0]) if len(op.inputs) and op.inputs[0] >= 0 else None
        if name in _SAME_CHANNELS and first in channels:
            channels[output] = channels[first]
        elif name == "TFQP_BINARIZE":
            channels[output] = view.shape(0)[-1]
        elif schema.builtin_code(model, op) == Op.RESHAPE and first in channels:
            pixels = int(np.prod(schema.shape(graph.tensors[first])[1:-1], dtype=np.int64))
            channels[output] = pixels * channels[first]
        elif name == "TFQP_MAX_POOL_CODES":
            channels[output] = view.options["channels"]
        elif REGISTRY.get(name) is not None and REGISTRY[name].weights_input is not None:
            if view.options.get("int32_output", 0) == 0:
                channels[output] = view.shape(REGISTRY[name].weights_input)[0]
    return channels


def _shown_shape(graph, tensor_index, channels: Dict[int, int]):
    shape = schema.shape(graph.tensors[tensor_index])
    if tensor_index in channels and shape:
        return shape[:-1] + [channels[tensor_index]], True
    return shape, False


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
            the arena on (TFLite Micro cannot load TFQP ops); default None.
        measure: bool, default True: run TFLite Micro to measure the arena.

    Returns:
        A ``ModelReport``; ``print`` it for the table, ``.plot(path)`` draws it.

    Raises:
        ModelError: a malformed model (or reference), naming the tensor or op and
            what is wrong; a reference with TFQP ops.
        TypeError: a model neither bytes-like nor a path.
    """
    checked = check_model(flatbuffer, argument="model")
    model = checked.model
    graph = model.subgraphs[0]
    rows = []
    channels = packed_channels(model, graph)
    code_bits = packed_code_bits(model, graph)
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
        macs = _macs(model, index, graph)
        first_input = next((t for t in op.inputs if t >= 0 and schema.constant(model, graph.tensors[t]) is None), None)
        spec = REGISTRY.get(schema.op_name(model, op))
        input_shape, input_packed = (
            _shown_shape(graph, first_input, channels) if first_input is not None else ([], False))
        output_shape, output_packed = _shown_shape(graph, op.outputs[0], channels)
        positions = int(np.prod(schema.shape(graph.tensors[op.outputs[0]])[:-1], dtype=np.int64))
        rows.append(OpRow(
            index, schema.op_name(model, op), input_shape, output_shape, weight_bytes, macs,
            spec.policy if spec is not None else "",
            weight_bits=_weight_bits(model, index, graph),
            weight_count=sum(macs.values()) // max(positions, 1),
            input_packed=input_packed, output_packed=output_packed,
            input_code_bits=code_bits.get(first_input, 0) if input_packed else 0,
            output_code_bits=code_bits.get(int(op.outputs[0]), 0) if output_packed else 0,
        ))
    has_custom = any(schema.is_custom(model, op) for op in graph.operators)
    arena, source = None, "not requested"
    if measure:
        if not has_custom:
            arena, source = measure_arena(checked), "this model"
        elif reference is not None:
            arena = measure_arena(check_model(reference, argument="reference"))
            source = "the reference model"
        else:
            source = "the model has TFQP ops, which TFLite Micro's Python interpreter cannot load; pass reference="
    totals: Dict[str, int] = {}
    for row in rows:
        for kind, count in row.macs.items():
            totals[kind] = totals.get(kind, 0) + count
    return ModelReport(
        rows, len(checked.data), weight_total, totals, _activation_peak(graph), arena, source,
    )
