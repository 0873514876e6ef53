"""Malformed .tflite models: seeded mutants of the converter's own deploy and
reference models, for the corpus test (``test_malformed_models.py``).

The base models (``BASES``, from ``test_converter_models``) hold every op family the
converter emits: TFQP_BCONV2D (with an int32 residual input), TFQP_BFULLY_CONNECTED,
TFQP_BMAXPOOL2D, TFQP_BINARIZE, TFQP_CONV2D_INT8 and TFQP_FULLY_CONNECTED_INT8 (int8
and int16 weights), TFQP_UNPACK, and the builtin ops around them. A mutant is one of

- a truncation, bit flips, or a byte range overwritten (the file as bytes);
- a schema-aware edit through TFLite's object API: a tensor's type, shape or buffer
  index, its quantization vectors, an op's opcode index, inputs or outputs, a TFQP
  op's custom options, a builtin op's options, a weight buffer, the subgraph's
  inputs / outputs, an operator code, the model's structure.

Each flatbuffer is also in the corpus unchanged (kind "original"), a control that
every tool must run. The same seed and base models give the same mutants, byte for
byte.

    python tests/malformed_models.py OUT_DIR     # writes the corpus and manifest.json
"""

import hashlib
import json
import pathlib
import sys
from typing import Callable, Dict, List, NamedTuple, Optional

import numpy as np

SEED = 12
BASES = ("mixed", "pool_bn", "bireal", "signs_float", "dense_first", "shift")
DEPLOY, REFERENCE = "deploy", "reference"

# mutants per base model: (byte-level kind, count) and schema edits per kind
DEPLOY_COUNTS = {"truncate": 8, "flip_bits": 12, "overwrite": 8, "edit": 4}
REFERENCE_COUNTS = {"truncate": 3, "flip_bits": 5, "overwrite": 3, "edit": 1}

INT32_MAX = 2**31 - 1


class Mutant(NamedTuple):
    name: str  # base/model/kind/number: unique, stable
    base: str
    model: str  # DEPLOY or REFERENCE: which of the base's flatbuffers was mutated
    kind: str
    detail: str  # what was changed
    data: bytes


# --- the file as bytes -----------------------------------------------------------


def truncate(data: bytes, rng) -> tuple:
    length = int(rng.choice([0, 3, 7, 8, 16, 64, len(data) // 2, len(data) - 1,
                             int(rng.integers(1, len(data)))]))
    return data[:length], f"first {length} of {len(data)} bytes"


def flip_bits(data: bytes, rng) -> tuple:
    flipped = bytearray(data)
    count = int(rng.integers(1, 5))
    positions = rng.integers(0, 8 * len(data), count)
    for bit in positions:
        flipped[bit // 8] ^= 1 << (bit % 8)
    return bytes(flipped), f"bits {sorted(int(b) for b in positions)} flipped"


def overwrite(data: bytes, rng) -> tuple:
    start = int(rng.integers(0, len(data)))
    length = int(min(rng.integers(1, 33), len(data) - start))
    fill = ["random", "zeros", "ones"][int(rng.integers(0, 3))]
    if fill == "random":
        new = rng.integers(0, 256, length, dtype=np.uint8).tobytes()
    else:
        new = (b"\x00" if fill == "zeros" else b"\xff") * length
    return data[:start] + new + data[start + length:], f"bytes {start}..{start + length - 1} set to {fill}"


BYTE_MUTATIONS: Dict[str, Callable] = {"truncate": truncate, "flip_bits": flip_bits, "overwrite": overwrite}


# --- schema-aware edits ----------------------------------------------------------
#
# Each takes the model's object tree and an rng, changes the tree, and returns what
# it changed (None where the model has nothing to change of that kind).


def _schema():
    from tfq_plus.converters import tflite_schema

    return tflite_schema


def _pick(rng, items):
    items = list(items)
    return items[int(rng.integers(0, len(items)))] if items else None


def _graph(model):
    return model.subgraphs[0]


def _constants(model):
    schema = _schema()
    graph = _graph(model)
    return [i for i, t in enumerate(graph.tensors) if schema.constant(model, t) is not None]


def edit_tensor_type(model, rng):
    schema = _schema()
    index = int(rng.integers(0, len(_graph(model).tensors)))
    tensor = _graph(model).tensors[index]
    new = _pick(rng, [t for t in list(schema.TENSOR_TYPE_NAMES) + [100] if t != tensor.type])
    old = tensor.type
    tensor.type = new
    return f"tensor {index} type {old} -> {new}"


def edit_tensor_shape(model, rng):
    index = int(rng.integers(0, len(_graph(model).tensors)))
    tensor = _graph(model).tensors[index]
    shape = [int(d) for d in (tensor.shape if tensor.shape is not None else [])]
    change = _pick(rng, ["negative", "zero", "huge", "large", "extra axis", "drop axis", "plus one", "scalar"])
    position = int(rng.integers(0, len(shape))) if shape else 0
    if change == "extra axis":
        shape.append(3)
    elif change == "drop axis":
        shape = shape[1:]
    elif change == "scalar":
        shape = []
    elif shape:
        shape[position] = {"negative": -7, "zero": 0, "huge": INT32_MAX, "large": 1 << 20,
                           "plus one": shape[position] + 1}[change]
    tensor.shape = np.asarray(shape, dtype=np.int32)
    return f"tensor {index} shape: {change} -> {shape}"


def edit_buffer_index(model, rng):
    constants = _constants(model)
    graph = _graph(model)
    index = _pick(rng, constants) if constants and rng.random() < 0.7 else int(rng.integers(0, len(graph.tensors)))
    tensor = graph.tensors[index]
    count = len(model.buffers)
    new = _pick(rng, [count, count + 5, 2**32 - 1, 0, _pick(rng, range(count))])
    old = tensor.buffer
    tensor.buffer = new
    return f"tensor {index} buffer {old} -> {new} (of {count})"


def edit_quantization(model, rng):
    graph = _graph(model)
    quantized = [i for i, t in enumerate(graph.tensors)
                 if t.quantization is not None and t.quantization.scale is not None
                 and len(t.quantization.scale)]
    index = _pick(rng, quantized)
    if index is None:
        return None
    q = graph.tensors[index].quantization
    change = _pick(rng, ["empty zero points", "empty scales", "negative scale", "zero scale", "nan scale",
                         "inf scale", "huge scale", "zero point 300", "zero point -2^40",
                         "scales per channel mismatch", "quantized dimension 5", "quantized dimension -1",
                         "no quantization"])
    scales = list(np.asarray(q.scale, dtype=np.float32))
    zero_points = list(np.asarray(q.zeroPoint if q.zeroPoint is not None else [0] * len(scales)))
    if change == "empty zero points":
        zero_points = []
    elif change == "empty scales":
        scales = []
    elif change.endswith("scale"):
        scales[0] = {"negative scale": -abs(scales[0]), "zero scale": 0.0, "nan scale": np.nan,
                     "inf scale": np.inf, "huge scale": 3e38}[change]
    elif change == "zero point 300":
        zero_points[0] = 300
    elif change == "zero point -2^40":
        zero_points[0] = -(2**40)
    elif change == "scales per channel mismatch":
        scales = scales + [scales[0]] * 2
    elif change.startswith("quantized dimension"):
        q.quantizedDimension = int(change.split()[-1])
    if change == "no quantization":
        graph.tensors[index].quantization = None
    else:
        q.scale = np.asarray(scales, dtype=np.float32)
        q.zeroPoint = np.asarray(zero_points, dtype=np.int64)
    return f"tensor {index} quantization: {change}"


def edit_opcode_index(model, rng):
    graph = _graph(model)
    index = int(rng.integers(0, len(graph.operators)))
    count = len(model.operatorCodes)
    new = _pick(rng, [count, count + 100, _pick(rng, range(count))])
    graph.operators[index].opcodeIndex = new
    return f"op {index} opcode index -> {new} (of {count})"


def edit_op_inputs(model, rng):
    schema = _schema()
    graph = _graph(model)
    index = int(rng.integers(0, len(graph.operators)))
    op = graph.operators[index]
    inputs = [int(t) for t in op.inputs]
    count = len(graph.tensors)
    position = int(rng.integers(0, len(inputs)))
    producers = schema.producers(graph)
    later = [t for t, p in producers.items() if p > index]
    change = _pick(rng, ["out of range", "-2", "absent", "drop last", "extra", "swap", "own output",
                         "produced later", "none"])
    if change == "out of range":
        inputs[position] = count
    elif change == "-2":
        inputs[position] = -2
    elif change == "absent":
        inputs[position] = -1
    elif change == "drop last":
        inputs = inputs[:-1]
    elif change == "extra":
        inputs.append(int(rng.integers(0, count)))
    elif change == "swap" and len(inputs) > 1:
        inputs[0], inputs[-1] = inputs[-1], inputs[0]
    elif change == "own output":
        inputs[position] = int(op.outputs[0])
    elif change == "produced later" and later:
        inputs[position] = _pick(rng, later)
    elif change == "none":
        inputs = []
    op.inputs = np.asarray(inputs, dtype=np.int32)
    return f"op {index} inputs: {change} -> {inputs}"


def edit_op_outputs(model, rng):
    graph = _graph(model)
    index = int(rng.integers(0, len(graph.operators)))
    op = graph.operators[index]
    outputs = [int(t) for t in op.outputs]
    count = len(graph.tensors)
    constants = _constants(model)
    others = [int(t) for i, o in enumerate(graph.operators) if i != index for t in o.outputs]
    change = _pick(rng, ["none", "extra", "out of range", "constant", "graph input", "another op's"])
    if change == "none":
        outputs = []
    elif change == "extra":
        outputs.append(int(rng.integers(0, count)))
    elif change == "out of range":
        outputs[0] = count + 3
    elif change == "constant" and constants:
        outputs[0] = _pick(rng, constants)
    elif change == "graph input":
        outputs[0] = int(graph.inputs[0])
    elif change == "another op's" and others:
        outputs[0] = _pick(rng, others)
    op.outputs = np.asarray(outputs, dtype=np.int32)
    return f"op {index} outputs: {change} -> {outputs}"


def _custom_ops(model):
    schema = _schema()
    return [i for i, op in enumerate(_graph(model).operators) if schema.is_custom(model, op)]


def edit_custom_options(model, rng):
    from flatbuffers import flexbuffers

    from tfq_plus.converters.ops.registry import decode_options

    index = _pick(rng, _custom_ops(model))
    if index is None:
        return None
    op = _graph(model).operators[index]
    raw = bytes(np.asarray(op.customOptions if op.customOptions is not None else [], dtype=np.uint8))
    options = decode_options(np.frombuffer(raw, dtype=np.uint8))
    change = _pick(rng, ["truncated", "random bytes", "one byte", "empty", "value", "value", "value",
                         "key removed", "unknown key", "float value"])
    if change == "truncated":
        raw = raw[:int(rng.integers(0, max(len(raw), 1)))]
    elif change == "random bytes":
        raw = rng.integers(0, 256, len(raw), dtype=np.uint8).tobytes()
    elif change == "one byte" and raw:
        position = int(rng.integers(0, len(raw)))
        raw = raw[:position] + bytes([int(rng.integers(0, 256))]) + raw[position + 1:]
    elif change == "empty":
        raw = b""
    elif change == "value" and options:
        key = _pick(rng, sorted(options))
        options[key] = int(_pick(rng, [0, -1, 2, 33, 1 << 16, 1 << 30, INT32_MAX - 1, INT32_MAX,
                                       -INT32_MAX - 1, 2**40]))
        change = f"{key} = {options[key]}"
        raw = bytes(flexbuffers.Dumps(options))
    elif change == "key removed" and options:
        key = _pick(rng, sorted(options))
        del options[key]
        change = f"{key} removed"
        raw = bytes(flexbuffers.Dumps(options))
    elif change == "unknown key":
        options["stride"] = 2
        raw = bytes(flexbuffers.Dumps(options))
    elif change == "float value" and options:
        key = _pick(rng, sorted(options))
        options[key] = 1.5
        change = f"{key} = 1.5"
        raw = bytes(flexbuffers.Dumps(options))
    op.customOptions = np.frombuffer(raw, dtype=np.uint8)
    return f"op {index} custom options: {change}"


def edit_builtin_options(model, rng):
    """A builtin op's options: window and stride values, the options type, the
    activation, a reshape's shape."""
    schema = _schema()
    fb = schema.fb
    graph = _graph(model)
    builtin = [i for i, op in enumerate(graph.operators) if not schema.is_custom(model, op)]
    index = _pick(rng, builtin)
    if index is None:
        return None
    op = graph.operators[index]
    options = op.builtinOptions
    change = _pick(rng, ["options type", "field", "field", "field"])
    if change == "options type" or options is None:
        op.builtinOptionsType = _pick(rng, [fb.BuiltinOptions.Conv2DOptions, fb.BuiltinOptions.ReshapeOptions,
                                            fb.BuiltinOptions.NONE, fb.BuiltinOptions.Pool2DOptions])
        op.builtinOptions = {fb.BuiltinOptions.Conv2DOptions: fb.Conv2DOptionsT,
                             fb.BuiltinOptions.ReshapeOptions: fb.ReshapeOptionsT,
                             fb.BuiltinOptions.Pool2DOptions: fb.Pool2DOptionsT}.get(op.builtinOptionsType,
                                                                                     lambda: None)()
        return f"op {index} options type -> {op.builtinOptionsType}"
    fields = [name for name, value in vars(options).items() if value is not None]
    field = _pick(rng, fields)
    if field is None:
        return None
    value = getattr(options, field)
    if isinstance(value, (list, np.ndarray)):
        new = np.asarray(list(value)[:-1] + [int(_pick(rng, [-3, 0, 7, INT32_MAX]))], dtype=np.int32)
    elif isinstance(value, bool):
        new = not value
    elif isinstance(value, float):
        new = float(_pick(rng, [np.nan, -1.0, 0.0, np.inf]))
    elif any(word in field.lower() for word in ("stride", "filter", "dilation")):  # int32 fields
        new = int(_pick(rng, [0, -1, 5, 100, INT32_MAX, -INT32_MAX - 1]))
    else:  # the rest may be int8 / bool fields
        new = int(_pick(rng, [0, -1, 5, 100]))
    setattr(options, field, new)
    return f"op {index} options {field}: {value} -> {new}"


def edit_window(model, rng):
    """A TFQP op's window made huge along one axis (a filter of 2 taps with a
    dilation near 2^31, the overflow of issue #12; or a huge window or stride),
    the filter tensor reshaped to match."""
    from flatbuffers import flexbuffers

    from tfq_plus.converters.ops.registry import decode_options

    schema = _schema()
    graph = _graph(model)
    windowed = [i for i in _custom_ops(model)
                if "filter_height" in decode_options(graph.operators[i].customOptions)]
    index = _pick(rng, windowed)
    if index is None:
        return None
    op = graph.operators[index]
    options = decode_options(op.customOptions)
    axis = _pick(rng, ["height", "width"])
    if "dilation_height_factor" in options:  # a convolution: its filter tensor follows the options
        options[f"filter_{axis}"] = 2
        options[f"dilation_{axis}_factor"] = int(_pick(rng, [INT32_MAX - 1, 1 << 30, (1 << 16) + 1, 3]))
        options["padding"] = 0
        weights = graph.tensors[int(op.inputs[1])]
        shape = schema.shape(weights)
        if len(shape) == 4:  # OHWI filters; a shift op's codes [Cout, words] keep their shape
            shape[1 if axis == "height" else 2] = 2
            weights.shape = np.asarray(shape, np.int32)
            buffer = model.buffers[weights.buffer]
            size = int(np.prod(shape)) * np.dtype(schema.NUMPY_TYPES[weights.type]).itemsize
            buffer.data = np.resize(np.asarray(buffer.data, np.uint8), size)
    else:
        options[f"filter_{axis}"] = int(_pick(rng, [INT32_MAX, (1 << 16) + 1]))
        options[f"stride_{axis}"] = int(_pick(rng, [INT32_MAX, 1]))
    op.customOptions = np.frombuffer(bytes(flexbuffers.Dumps(options)), dtype=np.uint8)
    return f"op {index} window: {options}"


def edit_weights(model, rng):
    graph = _graph(model)
    index = _pick(rng, _constants(model))
    if index is None:
        return None
    buffer = model.buffers[graph.tensors[index].buffer]
    data = np.asarray(buffer.data, dtype=np.uint8)
    change = _pick(rng, ["random", "truncated", "extended", "emptied", "extreme word"])
    if change == "random":
        data = rng.integers(0, 256, len(data), dtype=np.uint8)
    elif change == "truncated":
        data = data[:int(rng.integers(0, len(data)))]
    elif change == "extended":
        data = np.concatenate([data, np.full(4, 0x7F, np.uint8)])
    elif change == "emptied":
        data = np.zeros(0, np.uint8)
    elif len(data) >= 4:
        words = data.copy().view(np.int32) if len(data) % 4 == 0 else None
        if words is None:
            return f"tensor {index} weights: {change} (not whole words)"
        words[int(rng.integers(0, len(words)))] = int(_pick(rng, [INT32_MAX, -INT32_MAX - 1, 64, -64, 0]))
        data = words.view(np.uint8)
    buffer.data = data
    return f"tensor {index} weights (buffer {graph.tensors[index].buffer}): {change}"


def edit_graph_io(model, rng):
    graph = _graph(model)
    which = _pick(rng, ["inputs", "outputs"])
    values = [int(t) for t in getattr(graph, which)]
    constants = _constants(model)
    change = _pick(rng, ["none", "out of range", "constant", "-1", "extra", "intermediate"])
    if change == "none":
        values = []
    elif change == "out of range":
        values[0] = len(graph.tensors) + 1
    elif change == "constant" and constants:
        values[0] = _pick(rng, constants)
    elif change == "-1":
        values[0] = -1
    elif change == "extra":
        values.append(int(rng.integers(0, len(graph.tensors))))
    elif change == "intermediate":
        values[0] = int(graph.operators[0].outputs[0])
    setattr(graph, which, np.asarray(values, dtype=np.int32))
    return f"subgraph {which}: {change} -> {values}"


def edit_operator_code(model, rng):
    from tfq_plus.converters.ops.registry import REGISTRY

    schema = _schema()
    index = int(rng.integers(0, len(model.operatorCodes)))
    code = model.operatorCodes[index]
    change = _pick(rng, ["custom name", "other TFQP op", "builtin code", "deprecated code", "version",
                         "custom to builtin"])
    if change == "custom name":
        code.builtinCode = code.deprecatedBuiltinCode = schema.BuiltinOperator.CUSTOM
        code.customCode = b"TFQP_NOT_AN_OP"
    elif change == "other TFQP op":
        code.builtinCode = code.deprecatedBuiltinCode = schema.BuiltinOperator.CUSTOM
        code.customCode = _pick(rng, sorted(REGISTRY)).encode()
    elif change == "builtin code":
        code.builtinCode = int(_pick(rng, [schema.BuiltinOperator.CONV_2D, schema.BuiltinOperator.SOFTMAX,
                                           schema.BuiltinOperator.LSTM, 4000, -5]))
        code.deprecatedBuiltinCode = min(max(code.builtinCode, -128), 127)
    elif change == "deprecated code":
        code.deprecatedBuiltinCode = int(_pick(rng, [-100, 126, 127]))
    elif change == "version":
        code.version = int(_pick(rng, [0, -1, 99]))
    else:
        code.builtinCode = code.deprecatedBuiltinCode = schema.BuiltinOperator.RESHAPE
        code.customCode = None
    return f"operator code {index}: {change}"


def edit_structure(model, rng):
    import copy

    change = _pick(rng, ["two subgraphs", "no subgraphs", "no buffers", "no operator codes", "no tensors",
                         "no operators"])
    if change == "two subgraphs":
        model.subgraphs.append(copy.deepcopy(model.subgraphs[0]))
    elif change == "no subgraphs":
        model.subgraphs = []
    elif change == "no buffers":
        model.buffers = []
    elif change == "no operator codes":
        model.operatorCodes = []
    elif change == "no tensors":
        _graph(model).tensors = []
    else:
        _graph(model).operators = []
    return f"model: {change}"


SCHEMA_EDITS: Dict[str, Callable] = {
    "tensor_type": edit_tensor_type,
    "tensor_shape": edit_tensor_shape,
    "buffer_index": edit_buffer_index,
    "quantization": edit_quantization,
    "opcode_index": edit_opcode_index,
    "op_inputs": edit_op_inputs,
    "op_outputs": edit_op_outputs,
    "custom_options": edit_custom_options,
    "builtin_options": edit_builtin_options,
    "window": edit_window,
    "weights": edit_weights,
    "graph_io": edit_graph_io,
    "operator_code": edit_operator_code,
    "structure": edit_structure,
}


# --- the corpus ------------------------------------------------------------------


def schema_edit(data: bytes, edit: Callable, rng) -> Optional[tuple]:
    schema = _schema()
    model = schema.read(data)
    detail = edit(model, rng)
    if detail is None:
        return None
    return schema.write(model), detail


def mutants_of(data: bytes, base: str, model: str, counts: Dict[str, int], seed: int = SEED) -> List[Mutant]:
    """The mutants of one flatbuffer (``model`` says which of ``base``'s it is)."""
    rng = np.random.default_rng([seed, BASES.index(base), [DEPLOY, REFERENCE].index(model)])
    result: List[Mutant] = []

    def add(kind, mutated, detail):
        name = f"{base}/{model}/{kind}/{sum(m.kind == kind for m in result)}"
        result.append(Mutant(name, base, model, kind, detail, mutated))

    add("original", data, "the base model itself (a control: every tool must run it)")
    for kind, mutate in BYTE_MUTATIONS.items():
        for _ in range(counts[kind]):
            add(kind, *mutate(data, rng))
    for kind, edit in SCHEMA_EDITS.items():
        for _ in range(counts["edit"]):
            edited = schema_edit(data, edit, rng)
            if edited is not None:
                add(kind, *edited)
    return result


def corpus(bases: Dict[str, object], seed: int = SEED) -> List[Mutant]:
    """Every mutant of the base models (name -> object with .deploy and .reference)."""
    result = []
    for base in BASES:
        converted = bases[base]
        result += mutants_of(converted.deploy, base, DEPLOY, DEPLOY_COUNTS, seed)
        result += mutants_of(converted.reference, base, REFERENCE, REFERENCE_COUNTS, seed)
    return result


def write_corpus(directory, bases: Dict[str, object], seed: int = SEED) -> pathlib.Path:
    """Writes each mutant, each base model (deploy, reference, Keras .h5) and
    manifest.json (what the corpus runner reads) into ``directory``."""
    directory = pathlib.Path(directory)
    (directory / "mutants").mkdir(parents=True, exist_ok=True)
    manifest = {"seed": seed, "bases": {}, "mutants": []}
    for base in BASES:
        converted = bases[base]
        paths = {}
        for model in (DEPLOY, REFERENCE):
            path = directory / f"{base}_{model}.tflite"
            path.write_bytes(getattr(converted, model))
            paths[model] = path.name
        keras_path = directory / f"{base}.h5"
        converted.model.save(keras_path, save_format="h5")
        paths["keras"] = keras_path.name
        paths["sha256"] = hashlib.sha256(converted.deploy).hexdigest()
        manifest["bases"][base] = paths
    for number, mutant in enumerate(corpus(bases, seed)):
        path = directory / "mutants" / f"{number:04d}.tflite"
        path.write_bytes(mutant.data)
        manifest["mutants"].append({
            "name": mutant.name, "base": mutant.base, "model": mutant.model, "kind": mutant.kind,
            "detail": mutant.detail, "path": str(path.relative_to(directory)),
        })
    manifest_path = directory / "manifest.json"
    manifest_path.write_text(json.dumps(manifest, indent=1))
    return manifest_path


def converted_bases() -> Dict[str, object]:
    from test_converter_models import converted

    return {base: converted(base) for base in BASES}


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python tests/malformed_models.py OUT_DIR")
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
    import tfq_plus  # noqa: F401  (Keras 2 before TensorFlow)

    written = write_corpus(sys.argv[1], converted_bases())
    print(f"wrote {written} ({len(json.loads(written.read_text())['mutants'])} mutants)")
