"""Packed k-bit activations between TFQP ops: the deploy model's last rewrite step.

A k-bit codes tensor (``patterns.codes``: int8 q = base + u of a grid of at most
16 levels) is stored packed (formats.h, "Packed k-bit activations": 32 / k codes
per int32 word, each pixel on its own words) when every op on it can take that:

- its producer is a TFQP op with a codes output (``output_levels``); it gains
  ``output_bits`` = k and writes the codes u;
- a builtin MAX_POOL_2D on it becomes TFQP_MAX_POOL_CODES (a max of codes is the
  code of the max: a code's value (u - code_zero) * step increases with u), whose
  output is packed in turn;
- a RESHAPE on it stays a RESHAPE of words when both its input's and its output's
  last dims are multiples of 32 / k (no pixel's words hold padding codes, so the
  words are the codes in the same order); any other reshape keeps the chain int8;
- a TFQP op reading it as input 0 (the five int8-activation ops) gains
  ``input_bits`` = k, ``input_code_zero`` and ``channels_in``: it computes with
  u - input_code_zero, which is the int8 tensor's q - zero point.

A chain (producer, pools, reshapes, readers) any other op reads, or that holds a
model output, stays int8 (no TFQP_UNPACK_CODES is inserted: unpacking right
after packing would only add a tensor). k = 2 for grids of up to 4 levels, else
4 (a 3-bit grid is stored as 4 bits). The packed tensors keep the grid's scale and
take zero point code_zero, so (u - zero point) * scale is still the value.
"""

from dataclasses import dataclass, field
from typing import Dict, List, Optional

import numpy as np

from tfq_plus.converters import packing
from tfq_plus.converters import tflite_schema as schema
from tfq_plus.converters.ops import kbit as kbit_ops
from tfq_plus.converters.ops.registry import decode_options, spec

# the ops with a codes output and a packed input (registry.KBIT_OPTIONS)
KBIT_OPS = ("TFQP_CONV2D_INT8", "TFQP_FULLY_CONNECTED_INT8", "TFQP_SHIFT_CONV2D",
            "TFQP_SHIFT_DEPTHWISE_CONV2D", "TFQP_SHIFT_FULLY_CONNECTED")
# the readers that take the channel count from channels_in, whatever the input's rank
DENSE_OPS = ("TFQP_FULLY_CONNECTED_INT8", "TFQP_SHIFT_FULLY_CONNECTED")


def storage_bits(levels: int) -> Optional[int]:
    """The packed width of a grid of ``levels`` codes (2 or 4), or None past 16."""
    if levels <= 4:
        return 2
    if levels <= 16:
        return 4
    return None


@dataclass
class _Chain:
    """One producer's codes tensors and the ops on them."""

    producer: int
    bits: int
    code_zero: int
    tensors: List[int] = field(default_factory=list)
    pools: List[int] = field(default_factory=list)
    reshapes: List[int] = field(default_factory=list)
    readers: List[int] = field(default_factory=list)


def pack_code_tensors(model) -> List[str]:
    """Store the k-bit codes tensors of ``model`` (a rewritten deploy model, edited in
    place) packed where the module doc allows; returns the names of the tensors
    packed."""
    graph = model.subgraphs[0]
    chains = [chain for chain in (_chain(model, graph, index) for index in range(len(graph.operators)))
              if chain is not None]
    packed = []
    for chain in chains:
        packed.extend(_pack(model, graph, chain))
    if chains:
        schema.compact(model)
    return packed


def _name(model, op) -> str:
    return schema.op_name(model, op)


def _chain(model, graph, index: int) -> Optional[_Chain]:
    """The chain of op ``index`` if it writes int8 codes the module doc lets pack."""
    op = graph.operators[index]
    if _name(model, op) not in KBIT_OPS:
        return None
    options = decode_options(op.customOptions)
    levels = options.get("output_levels", 0)
    output = graph.tensors[int(op.outputs[0])]
    bits = storage_bits(levels) if levels else None
    if bits is None or options.get("output_bits") or output.type != schema.TensorType.INT8:
        return None
    transform = schema.constant(model, graph.tensors[int(op.inputs[-1])])
    base = int(transform[0, 1])
    code_zero = schema.per_tensor_quantization(output)[1] - base
    if not 0 <= code_zero < 1 << bits:
        return None
    chain = _Chain(index, bits, code_zero)
    readers = schema.consumers(graph)
    outputs = {int(t) for t in graph.outputs}
    pending = [int(op.outputs[0])]
    per_word = 32 // bits
    while pending:
        tensor = pending.pop()
        if tensor in outputs:
            return None
        chain.tensors.append(tensor)
        for reader in readers.get(tensor, []):
            reader_op = graph.operators[reader]
            name = _name(model, reader_op)
            if name == "MAX_POOL_2D" and _plain_pool(reader_op):
                chain.pools.append(reader)
                pending.append(int(reader_op.outputs[0]))
            elif name == "RESHAPE" and int(reader_op.inputs[0]) == tensor and all(
                    schema.shape(graph.tensors[int(t)])[-1] % per_word == 0
                    for t in (reader_op.inputs[0], reader_op.outputs[0])):
                chain.reshapes.append(reader)
                pending.append(int(reader_op.outputs[0]))
            elif name in KBIT_OPS and int(reader_op.inputs[0]) == tensor and tensor not in [
                    int(t) for t in list(reader_op.inputs)[1:]]:
                if decode_options(reader_op.customOptions).get("input_bits"):
                    return None
                chain.readers.append(reader)
            else:
                return None
    return chain


def _plain_pool(op) -> bool:
    """A max-pool without a fused activation (one on codes never has one)."""
    return int(getattr(op.builtinOptions, "fusedActivationFunction", 0) or 0) == 0


def _pack(model, graph, chain: _Chain) -> List[str]:
    channels: Dict[int, int] = {}  # tensor -> its logical last dim
    for tensor in chain.tensors:
        t = graph.tensors[tensor]
        dims = schema.shape(t)
        channels[tensor] = dims[-1]
        t.shape = np.asarray(dims[:-1] + [packing.kbit_words(dims[-1], chain.bits)], np.int32)
        if getattr(t, "shapeSignature", None) is not None:
            t.shapeSignature = np.asarray(t.shape, np.int32)
        t.type = schema.TensorType.INT32
        scale = np.asarray(t.quantization.scale, np.float32)
        t.quantization.zeroPoint = np.asarray([chain.code_zero] * len(scale), np.int64)
    producer = graph.operators[chain.producer]
    _set_options(model, producer, output_bits=chain.bits)
    for index in chain.pools:
        graph.operators[index] = _pool_op(model, graph, graph.operators[index], chain, channels)
    for index in chain.reshapes:
        _reshape_words(model, graph, graph.operators[index])
    for index in chain.readers:
        op = graph.operators[index]
        source = int(op.inputs[0])
        logical = channels[source]
        if _name(model, op) in DENSE_OPS:
            logical = int(decode_options(op.customOptions).get("channels_in", logical))
        _set_options(model, op, input_bits=chain.bits, input_code_zero=chain.code_zero,
                     channels_in=logical)
    return [schema.tensor_name(graph.tensors[t]) for t in chain.tensors]


def _set_options(model, op, **extra) -> None:
    name = _name(model, op)
    options = dict(decode_options(op.customOptions), **extra)
    if not options.get("input_code_zero"):
        options.pop("input_code_zero", None)
    op.customOptions = np.frombuffer(spec(name).encode(**options), np.uint8)


def _pool_op(model, graph, op, chain: _Chain, channels: Dict[int, int]):
    pool = op.builtinOptions
    source = int(op.inputs[0])
    options = kbit_ops.MAX_POOL_CODES.encode(
        channels=channels[source], bits=chain.bits, filter_height=int(pool.filterHeight),
        filter_width=int(pool.filterWidth), stride_height=int(pool.strideH),
        stride_width=int(pool.strideW),
        padding=int(pool.padding))  # TFLite's Padding enum: 0 SAME, 1 VALID, as the op's
    return schema.custom_op(model, kbit_ops.MAX_POOL_CODES.name, [source], [int(op.outputs[0])], options)


def _reshape_words(model, graph, op) -> None:
    """The RESHAPE's new shape: its (already packed) output's words."""
    target = schema.shape(graph.tensors[int(op.outputs[0])])
    if len(op.inputs) > 1 and op.inputs[1] >= 0:
        name = schema.tensor_name(graph.tensors[int(op.inputs[1])])
        shape_tensor = schema.add_tensor(model, name, [len(target)], schema.TensorType.INT32,
                                         data=np.asarray(target, np.int32))
        op.inputs = np.asarray([op.inputs[0], shape_tensor], np.int32)
    if op.builtinOptions is not None and getattr(op.builtinOptions, "newShape", None) is not None:
        op.builtinOptions.newShape = np.asarray(target, np.int32)


__all__ = ["pack_code_tensors", "storage_bits", "KBIT_OPS"]
