"""``Interpreter``: run a deploy model from Python, as the device runs it.

Neither ``tf.lite.Interpreter`` nor TFLite Micro's Python interpreter can load the
TFQP custom ops. ``Interpreter`` runs a model op by op: each builtin op as a one-op
flatbuffer in TFLite Micro's interpreter (the runtime the model is made for, see
``micro_interpreter``), each TFQP op through the host build of its C kernel, the
same C code the firmware links (``ops.host``). Its outputs are the bytes the
device computes; ``predict`` takes and returns float arrays like a Keras model.

    interpreter = Interpreter(deploy)
    probabilities = interpreter.predict(x_test[:100])     # float in, float out
    codes = interpreter.invoke([x_int8])                  # model types, one sample
"""

from typing import Callable, Dict, List, Optional, Sequence, Union

import numpy as np

from tfq_plus.converters import tflite_schema as schema
from tfq_plus.converters.micro_interpreter import MicroInterpreter
from tfq_plus.converters.model_check import TFLITE_MICRO_RUNTIME, check_model
from tfq_plus.converters.model_error import TFQP_KERNEL, ModelError
from tfq_plus.converters.ops import host
from tfq_plus.converters.ops.registry import OpView
from tfq_plus.converters.tflite_arithmetic import quantize_values


def _one_op_model(model, op) -> bytes:
    """A flatbuffer holding only ``op``: its tensors, constant buffers and op code."""
    fb = schema.fb
    graph = model.subgraphs[0]
    used = [int(t) for t in list(op.inputs) + list(op.outputs) if t >= 0]
    order = list(dict.fromkeys(used))
    index = {old: new for new, old in enumerate(order)}
    single = fb.ModelT()
    single.version = model.version
    single.description = b"tfq-plus host op"
    single.buffers = [fb.BufferT()]
    tensors = []
    for old in order:
        source = graph.tensors[old]
        tensor = fb.TensorT()
        tensor.name = source.name
        tensor.shape = source.shape
        tensor.type = source.type
        tensor.quantization = source.quantization
        tensor.buffer = 0
        if schema.constant(model, source) is not None:
            buffer = fb.BufferT()  # the stored bytes (packed INT4 stays packed)
            buffer.data = np.asarray(model.buffers[source.buffer].data, dtype=np.uint8)
            single.buffers.append(buffer)
            tensor.buffer = len(single.buffers) - 1
        tensors.append(tensor)
    copy = fb.OperatorT()
    copy.opcodeIndex = 0
    copy.inputs = np.asarray([index[int(t)] if t >= 0 else -1 for t in op.inputs], dtype=np.int32)
    copy.outputs = np.asarray([index[int(t)] for t in op.outputs], dtype=np.int32)
    copy.builtinOptionsType = op.builtinOptionsType
    copy.builtinOptions = op.builtinOptions
    single.operatorCodes = [model.operatorCodes[op.opcodeIndex]]
    subgraph = fb.SubGraphT()
    subgraph.tensors = tensors
    subgraph.operators = [copy]
    subgraph.inputs = np.asarray(
        [index[int(t)] for t in op.inputs if t >= 0 and schema.constant(model, graph.tensors[t]) is None],
        dtype=np.int32,
    )
    subgraph.outputs = np.asarray([index[int(t)] for t in op.outputs], dtype=np.int32)
    single.subgraphs = [subgraph]
    return schema.write(single)


def signature_names(model) -> Dict[int, str]:
    """Tensor index -> its name in the model's first signature (the Keras input /
    output names), where the model has one."""
    names: Dict[int, str] = {}
    for signature in (model.signatureDefs or [])[:1]:
        for entry in list(signature.inputs or []) + list(signature.outputs or []):
            name = entry.name.decode() if isinstance(entry.name, bytes) else str(entry.name)
            names[int(entry.tensorIndex)] = name
    return names


def tensor_details(model, index: int) -> dict:
    """``tf.lite.Interpreter``-style details of tensor ``index`` of subgraph 0, with
    ``signature_name``: its Keras name where the model has a signature, else None."""
    tensor = model.subgraphs[0].tensors[index]
    quantization = schema.per_tensor_quantization(tensor)
    return {
        "name": schema.tensor_name(tensor),
        "signature_name": signature_names(model).get(index),
        "index": index,
        "shape": np.asarray(schema.shape(tensor)),
        "dtype": schema.NUMPY_TYPES.get(tensor.type, np.float32),
        "quantization": (float(quantization[0]), int(quantization[1])) if quantization else (0.0, 0),
    }


def _signature_order(model, details, which: str) -> List[int]:
    """Positions of the graph's inputs / outputs in the signature's order (the Keras
    model's), or the graph's order where the model has no signature."""
    signatures = model.signatureDefs or []
    if not signatures:
        return list(range(len(details)))
    entries = list(getattr(signatures[0], which) or [])
    index = {d["index"]: position for position, d in enumerate(details)}
    order = [index[int(e.tensorIndex)] for e in entries if int(e.tensorIndex) in index]
    return order if sorted(order) == list(range(len(details))) else list(range(len(details)))


class _Step:
    def __init__(self, name: str, op, inputs: List[int], outputs: List[int]):
        self.name = name
        self.op = op
        self.inputs = inputs  # non-constant input tensors
        self.outputs = outputs
        self.run: Optional[Callable] = None


class Interpreter:
    """A (deploy) flatbuffer on the host: builtin ops in TFLite Micro, TFQP ops in
    their C kernels.

    Args:
        flatbuffer: the model: bytes, bytearray, memoryview, or the path of a
            .tflite file. It is checked first (``model_check``).
        keep_tensors: bool, default False: keep every tensor of the last run,
            readable with ``tensor``.

    Attributes:
        input_details, output_details: one dict per model input / output (name,
            index, shape, dtype, quantization (scale, zero point)), as
            ``tf.lite.Interpreter`` gives them.

    Raises:
        ModelError: a malformed model or one tfq-plus cannot run (a ValueError
            naming the tensor or op): more than one subgraph, a custom op that is
            not a TFQP op, an op TFLite Micro or the TFQP kernels reject, ...
        TypeError: ``flatbuffer`` is neither bytes-like nor a path.
    """

    def __init__(self, flatbuffer, *, keep_tensors: bool = False):
        self.model = check_model(flatbuffer, argument="Interpreter: model", runtime=TFLITE_MICRO_RUNTIME).model
        self.graph = self.model.subgraphs[0]
        self.keep_tensors = keep_tensors
        self.input_details = [tensor_details(self.model, int(t)) for t in self.graph.inputs]
        self.output_details = [tensor_details(self.model, int(t)) for t in self.graph.outputs]
        self.input_order = _signature_order(self.model, self.input_details, "inputs")
        self.output_order = _signature_order(self.model, self.output_details, "outputs")
        self._values: Dict[int, np.ndarray] = {}
        self.steps: List[_Step] = []
        for index, op in enumerate(self.graph.operators):
            name = schema.op_name(self.model, op)
            inputs = [int(t) for t in op.inputs
                      if t >= 0 and schema.constant(self.model, self.graph.tensors[t]) is None]
            step = _Step(name, op, inputs, [int(t) for t in op.outputs])
            if schema.is_custom(self.model, op):
                step.view = OpView(self.model, index)
            else:
                try:
                    micro = MicroInterpreter(_one_op_model(self.model, op))
                except ModelError as error:
                    raise ModelError(f"Interpreter: op {index} ({name}): {error}", error.check) from error
                step.run = micro.invoke
            self.steps.append(step)

    def _prepare(self, step: _Step, inputs: List[np.ndarray]):
        try:
            prepared = host.prepare(step.view, inputs)
        except ValueError as error:
            raise ModelError(f"Interpreter: op {step.view.index} ({step.name}): {error}", TFQP_KERNEL) from error
        step.run = lambda arrays, prepared=prepared: [prepared(arrays)]

    def invoke(self, inputs: Sequence[np.ndarray]) -> List[np.ndarray]:
        """Raw outputs for raw inputs (the model's types and shapes, batch included),
        one array per model input / output.

        Args:
            inputs: one array per input, in ``input_details`` order (the
                flatbuffer's), each of exactly that input's dtype and shape.

        Returns:
            One array per output, in ``output_details`` order, in the output's type.

        Raises:
            ValueError: a wrong number of inputs, or an input of another dtype or
                shape (naming it).
            ModelError: a TFQP kernel rejects its op when first run.
        """
        if len(inputs) != len(self.input_details):
            raise ValueError(f"Interpreter: the model has {len(self.input_details)} inputs, got {len(inputs)}")
        values: Dict[int, np.ndarray] = {}
        for details, array in zip(self.input_details, inputs):
            array = np.asarray(array)
            if tuple(array.shape) != tuple(details["shape"]) or array.dtype != details["dtype"]:
                raise ValueError(
                    f"Interpreter: input {details['name']!r} must be {np.dtype(details['dtype']).name} "
                    f"{list(details['shape'])}, got {array.dtype.name} {list(array.shape)}"
                )
            values[details["index"]] = array
        for step in self.steps:
            arrays = [values[t] for t in step.inputs]
            if step.run is None:
                self._prepare(step, arrays)
            outputs = step.run(arrays)
            for tensor, output in zip(step.outputs, outputs):
                values[tensor] = output
        if self.keep_tensors:
            self._values = values
        return [values[d["index"]] for d in self.output_details]

    def tensor(self, tensor: Union[int, str]) -> np.ndarray:
        """A tensor of the last ``invoke`` (``keep_tensors=True``), by index or name."""
        if not self.keep_tensors:
            raise ValueError("Interpreter: tensor() needs keep_tensors=True")
        if isinstance(tensor, str):
            names = [schema.tensor_name(t) for t in self.graph.tensors]
            if names.count(tensor) != 1:
                raise ValueError(f"Interpreter: no single tensor named {tensor!r}")
            tensor = names.index(tensor)
        if tensor not in self._values:
            raise ValueError(f"Interpreter: tensor {tensor} holds no value (a constant, or not run yet)")
        return self._values[tensor]

    def quantize(self, samples, position: int = 0) -> np.ndarray:
        """Float samples [n, ...] -> model input ``position``'s type (TFLite's QUANTIZE).

        ``position`` indexes ``input_details`` (the flatbuffer's input order); a
        float32 input is returned as it is.
        """
        details = self.input_details[position]
        samples = np.asarray(samples, dtype=np.float32)
        if details["dtype"] == np.float32:
            return samples
        scale, zero_point = details["quantization"]
        return quantize_values(samples, scale, zero_point, details["dtype"])

    def dequantize(self, values, position: int = 0) -> np.ndarray:
        """Output codes -> float32: ``(values - zero_point) * scale`` of output
        ``position`` (an index of ``output_details``); float32 outputs pass as they are."""
        details = self.output_details[position]
        if details["dtype"] == np.float32:
            return np.asarray(values, dtype=np.float32)
        scale, zero_point = details["quantization"]
        return ((np.asarray(values, np.float64) - zero_point) * scale).astype(np.float32)

    def predict(self, x, *, raw: bool = False):
        """Outputs for a batch of inputs, like ``keras.Model.predict``.

        Args:
            x: float array [n, ...]; for several inputs a list in the Keras model's
                input order (the model's signature) or a dict by input name. In the
                range the Keras model takes: quantized to the model's input types.
                With ``raw=True``, already in the model's input types.

        Returns:
            float32 array [n, ...] (a list in the Keras model's output order for
            several outputs), dequantized; with ``raw=True`` the output codes.
        """
        if isinstance(x, dict):
            names = [self.input_details[i]["signature_name"] for i in self.input_order]
            missing = sorted(set(names) - set(x))
            if missing or None in names:
                raise ValueError(f"Interpreter.predict: inputs by name need {names}; missing {missing}")
            x = [x[name] for name in names]
        ordered = list(x) if isinstance(x, (list, tuple)) else [x]
        if len(ordered) != len(self.input_details):
            raise ValueError(f"Interpreter.predict: the model has {len(self.input_details)} inputs, got {len(ordered)}")
        arrays = [None] * len(ordered)
        for array, position in zip(ordered, self.input_order):
            arrays[position] = array
        count = len(arrays[0])
        if any(len(a) != count for a in arrays):
            raise ValueError("Interpreter.predict: every input needs the same number of samples")
        quantized = [np.asarray(a) if raw else self.quantize(a, i) for i, a in enumerate(arrays)]
        outputs = [[] for _ in self.output_details]
        for sample in range(count):
            result = self.invoke([q[sample:sample + 1] for q in quantized])
            for store, value in zip(outputs, result):
                store.append(value[0])
        stacked = [np.stack(o) for o in outputs]
        if not raw:
            stacked = [self.dequantize(o, i) for i, o in enumerate(stacked)]
        stacked = [stacked[position] for position in self.output_order]
        return stacked[0] if len(stacked) == 1 else stacked
