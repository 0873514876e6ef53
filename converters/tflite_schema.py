"""Reading, editing and writing TFLite flatbuffers through TensorFlow's object API.

TensorFlow ships the generated schema (``schema_py_generated``) and
``flatbuffer_utils``; this module adds only what the converter needs on top:
op names, constant tensor data as numpy, quantization parameters, and removal of
everything no op uses any more (tensors, buffers, operator codes).
"""

from typing import Dict, List, Optional

import numpy as np
from tensorflow.lite.python import schema_py_generated as fb
from tensorflow.lite.tools import flatbuffer_utils

BuiltinOperator = fb.BuiltinOperator
TensorType = fb.TensorType
BuiltinOptions = fb.BuiltinOptions
Padding = fb.Padding
ActivationFunctionType = fb.ActivationFunctionType

BUILTIN_NAMES: Dict[int, str] = {
    value: name for name, value in vars(BuiltinOperator).items() if not name.startswith("_")
}
TENSOR_TYPE_NAMES: Dict[int, str] = {
    value: name for name, value in vars(TensorType).items() if not name.startswith("_")
}
NUMPY_TYPES = {
    TensorType.INT8: np.int8,
    TensorType.UINT8: np.uint8,
    TensorType.INT16: np.int16,
    TensorType.INT32: np.int32,
    TensorType.INT64: np.int64,
    TensorType.FLOAT32: np.float32,
    TensorType.BOOL: np.bool_,
}
# INT4: two values a byte, the tensor's elements in order, element 2i in the low
# nibble of byte i, 2i + 1 in the high one (TFLite's and CMSIS-NN's packed int4).
INT4_RANGE = (-8, 7)
# Custom options are a flexbuffer (CustomOptionsFormat.FLEXBUFFERS).
FLEXBUFFERS = 0


def read(flatbuffer: bytes) -> fb.ModelT:
    """The mutable object tree of a .tflite flatbuffer."""
    return flatbuffer_utils.convert_bytearray_to_object(bytearray(flatbuffer))


def write(model: fb.ModelT) -> bytes:
    """Serialize the object tree (deterministic: same tree, same bytes)."""
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def builtin_code(model: fb.ModelT, op: fb.OperatorT) -> int:
    code = model.operatorCodes[op.opcodeIndex]
    return max(code.builtinCode, code.deprecatedBuiltinCode)


def is_custom(model: fb.ModelT, op: fb.OperatorT) -> bool:
    return builtin_code(model, op) == BuiltinOperator.CUSTOM


def op_name(model: fb.ModelT, op: fb.OperatorT) -> str:
    """Builtin op name (CONV_2D, ...) or the custom code of a custom op."""
    if is_custom(model, op):
        code = model.operatorCodes[op.opcodeIndex].customCode
        return code.decode(errors="replace") if isinstance(code, bytes) else str(code)
    return BUILTIN_NAMES.get(builtin_code(model, op), f"BUILTIN_{builtin_code(model, op)}")


def tensor_name(tensor: fb.TensorT) -> str:
    name = tensor.name
    return name.decode(errors="replace") if isinstance(name, bytes) else (name or "")


def shape(tensor: fb.TensorT) -> List[int]:
    return [int(d) for d in (tensor.shape if tensor.shape is not None else [])]


def constant(model: fb.ModelT, tensor: fb.TensorT) -> Optional[np.ndarray]:
    """The tensor's constant data as numpy (None for a non-constant tensor)."""
    if tensor.buffer <= 0 or tensor.buffer >= len(model.buffers):
        return None
    data = model.buffers[tensor.buffer].data
    if data is None or len(data) == 0:
        return None
    if tensor.type == TensorType.INT4:
        count = int(np.prod(shape(tensor), dtype=np.int64))
        return unpack_int4(np.asarray(data, dtype=np.uint8), count).reshape(shape(tensor))
    dtype = NUMPY_TYPES.get(tensor.type)
    if dtype is None:
        return None
    raw = np.asarray(data, dtype=np.uint8).tobytes()
    return np.frombuffer(raw, dtype=np.dtype(dtype).newbyteorder("<")).reshape(shape(tensor))


def int4_bytes(count: int) -> int:
    return (count + 1) // 2


def pack_int4(values) -> np.ndarray:
    """int values in [-8, 7] (any shape, taken flat) as packed INT4 bytes (uint8)."""
    flat = np.asarray(values, dtype=np.int64).reshape(-1)
    low, high = INT4_RANGE
    if np.any((flat < low) | (flat > high)):
        raise ValueError(f"pack_int4: values must be in [{low}, {high}], got {int(flat[(flat < low) | (flat > high)][0])}")
    nibbles = np.zeros(2 * int4_bytes(flat.size), dtype=np.uint8)
    nibbles[:flat.size] = flat & 0xF
    return (nibbles[0::2] | (nibbles[1::2] << 4)).astype(np.uint8)


def unpack_int4(data: np.ndarray, count: int) -> np.ndarray:
    """The first ``count`` values (int8, sign-extended) of packed INT4 bytes."""
    data = np.asarray(data, dtype=np.uint8)
    nibbles = np.stack([data & 0xF, data >> 4], axis=-1).reshape(-1)[:count].astype(np.int8)
    return np.where(nibbles > 7, nibbles - 16, nibbles).astype(np.int8)


def quantization(tensor: fb.TensorT):
    """(scales float32 array, zero points int64 array, quantized dimension) or None."""
    q = tensor.quantization
    if q is None or q.scale is None or len(q.scale) == 0:
        return None
    scales = np.asarray(q.scale, dtype=np.float32)
    zero_points = np.asarray(q.zeroPoint if q.zeroPoint is not None else [0] * len(scales), dtype=np.int64)
    return scales, zero_points, int(q.quantizedDimension)


def per_tensor_quantization(tensor: fb.TensorT):
    """(scale as float32, zero point) of a per-tensor quantized tensor, else None."""
    params = quantization(tensor)
    if params is None or len(params[0]) != 1:
        return None
    return np.float32(params[0][0]), int(params[1][0])


def add_buffer(model: fb.ModelT, data: np.ndarray) -> int:
    """Append a buffer holding ``data`` (little-endian bytes); returns its index."""
    buffer = fb.BufferT()
    array = np.ascontiguousarray(data)
    buffer.data = np.frombuffer(array.astype(array.dtype.newbyteorder("<")).tobytes(), dtype=np.uint8)
    model.buffers.append(buffer)
    return len(model.buffers) - 1


def add_tensor(model: fb.ModelT, name: str, tensor_shape, tensor_type: int, *,
               data: Optional[np.ndarray] = None, quant=None) -> int:
    """Append a tensor to subgraph 0 (constant if ``data`` is given); returns its index."""
    tensor = fb.TensorT()
    tensor.name = name.encode()
    tensor.shape = np.asarray(list(tensor_shape), dtype=np.int32)
    tensor.type = tensor_type
    tensor.buffer = add_buffer(model, data) if data is not None else 0
    tensor.quantization = quant
    graph = model.subgraphs[0]
    graph.tensors.append(tensor)
    return len(graph.tensors) - 1


def opcode_index(model: fb.ModelT, builtin: int, custom_code: Optional[str] = None) -> int:
    """Index of the operator code (added if missing)."""
    for index, code in enumerate(model.operatorCodes):
        if max(code.builtinCode, code.deprecatedBuiltinCode) != builtin:
            continue
        existing = code.customCode.decode() if isinstance(code.customCode, bytes) else code.customCode
        if builtin != BuiltinOperator.CUSTOM or existing == custom_code:
            return index
    code = fb.OperatorCodeT()
    code.builtinCode = builtin
    # The deprecated int8 field holds builtin codes < 127 (placeholder 127 above).
    code.deprecatedBuiltinCode = min(builtin, 127)
    code.customCode = custom_code.encode() if custom_code is not None else None
    code.version = 1
    model.operatorCodes.append(code)
    return len(model.operatorCodes) - 1


def custom_op(model: fb.ModelT, custom_code: str, inputs, outputs, options: bytes) -> fb.OperatorT:
    op = fb.OperatorT()
    op.opcodeIndex = opcode_index(model, BuiltinOperator.CUSTOM, custom_code)
    op.inputs = np.asarray(list(inputs), dtype=np.int32)
    op.outputs = np.asarray(list(outputs), dtype=np.int32)
    op.customOptions = np.frombuffer(bytes(options), dtype=np.uint8)
    op.customOptionsFormat = FLEXBUFFERS
    return op


def producers(graph: fb.SubGraphT) -> Dict[int, int]:
    """tensor index -> index of the op writing it."""
    return {int(t): i for i, op in enumerate(graph.operators) for t in op.outputs}


def consumers(graph: fb.SubGraphT) -> Dict[int, List[int]]:
    """tensor index -> indices of the ops reading it (in op order)."""
    readers: Dict[int, List[int]] = {}
    for i, op in enumerate(graph.operators):
        for t in op.inputs:
            if t >= 0:
                readers.setdefault(int(t), []).append(i)
    return readers


def remove_dead_ops(graph: fb.SubGraphT):
    """Drop ops none of whose outputs is read by another op or is a graph output."""
    outputs = {int(t) for t in graph.outputs}
    while True:
        read = {int(t) for op in graph.operators for t in op.inputs if t >= 0} | outputs
        alive = [op for op in graph.operators if any(int(t) in read for t in op.outputs)]
        if len(alive) == len(graph.operators):
            return
        graph.operators = alive


def compact(model: fb.ModelT):
    """Remove tensors, buffers and operator codes nothing refers to; renumber the rest.

    Buffer 0 (the empty sentinel) and buffers referenced by metadata are kept.
    """
    for graph in model.subgraphs:
        used = sorted(
            {int(t) for op in graph.operators for t in list(op.inputs) + list(op.outputs) if t >= 0}
            | {int(t) for t in graph.inputs}
            | {int(t) for t in graph.outputs}
            | {int(t) for op in graph.operators for t in (op.intermediates if op.intermediates is not None else [])}
        )
        new_index = {old: new for new, old in enumerate(used)}
        renumber = lambda ids: np.asarray([new_index[int(t)] if t >= 0 else -1 for t in ids], dtype=np.int32)  # noqa: E731
        for op in graph.operators:
            op.inputs = renumber(op.inputs)
            op.outputs = renumber(op.outputs)
            if op.intermediates is not None:
                op.intermediates = renumber(op.intermediates)
        graph.inputs = renumber(graph.inputs)
        graph.outputs = renumber(graph.outputs)
        graph.tensors = [graph.tensors[old] for old in used]
        for signature in model.signatureDefs or []:
            for entry in list(signature.inputs or []) + list(signature.outputs or []):
                entry.tensorIndex = new_index[int(entry.tensorIndex)]

    used_buffers = {0}
    used_buffers |= {t.buffer for graph in model.subgraphs for t in graph.tensors}
    used_buffers |= {m.buffer for m in model.metadata or []}
    used_buffers |= {int(b) for b in (model.metadataBuffer if model.metadataBuffer is not None else [])}
    kept = sorted(used_buffers)
    buffer_index = {old: new for new, old in enumerate(kept)}
    model.buffers = [model.buffers[old] for old in kept]
    for graph in model.subgraphs:
        for tensor in graph.tensors:
            tensor.buffer = buffer_index[tensor.buffer]
    for entry in model.metadata or []:
        entry.buffer = buffer_index[entry.buffer]
    if model.metadataBuffer is not None:
        model.metadataBuffer = np.asarray([buffer_index[int(b)] for b in model.metadataBuffer], dtype=np.int32)

    used_codes = sorted({op.opcodeIndex for graph in model.subgraphs for op in graph.operators})
    code_index = {old: new for new, old in enumerate(used_codes)}
    model.operatorCodes = [model.operatorCodes[old] for old in used_codes]
    for graph in model.subgraphs:
        for op in graph.operators:
            op.opcodeIndex = code_index[op.opcodeIndex]
