"""Run a deploy model (builtin + TFQP ops) end to end on the host.

Neither ``tf.lite.Interpreter`` nor TFLite Micro's Python interpreter can load the
TFQP custom ops. ``HostInterpreter`` runs the model op by op: each builtin op as a
one-op flatbuffer in TFLite Micro's interpreter (the runtime the model is made
for, see ``micro_interpreter``), each TFQP op through the host build of its C
kernel. It gives the deploy model's real outputs, for comparing deploy with the
reference and with Keras end to end.
"""

from typing import Dict, List

import numpy as np

from tfq_plus.converters import tflite_schema as schema
from tfq_plus.converters.micro_interpreter import MicroInterpreter

TFQP_PREFIX = "TFQP_"


def _kernels():
    from tfq_plus.converters import _tfqp_kernels

    return _tfqp_kernels


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
        data = schema.constant(model, source)
        if data is not None:
            buffer = fb.BufferT()
            buffer.data = np.frombuffer(np.ascontiguousarray(data).tobytes(), dtype=np.uint8)
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


class HostInterpreter:
    """Executes a (deploy) flatbuffer op by op; ``run(x)`` -> output of one sample."""

    def __init__(self, flatbuffer: bytes):
        self.model = schema.read(bytes(flatbuffer))
        if len(self.model.subgraphs) != 1:
            raise ValueError("HostInterpreter: models with one subgraph only")
        graph = self.model.subgraphs[0]
        self.graph = graph
        self.steps: List[tuple] = []
        for op in graph.operators:
            name = schema.op_name(self.model, op)
            if name.startswith(TFQP_PREFIX):
                self.steps.append(("tfqp", name, op, None))
                continue
            try:
                interpreter = MicroInterpreter(_one_op_model(self.model, op))
            except ValueError as error:
                raise ValueError(f"HostInterpreter: op {name}: {error}") from error
            self.steps.append(("builtin", name, op, interpreter))

    def _tensor(self, index: int):
        return self.graph.tensors[index]

    def run(self, sample: np.ndarray) -> np.ndarray:
        """Output 0 for one input sample (already in the model's input type, no batch axis)."""
        values: Dict[int, np.ndarray] = {int(self.graph.inputs[0]): np.asarray(sample)[None]}
        for kind, name, op, interpreter in self.steps:
            if kind == "builtin":
                inputs = [int(t) for t in op.inputs if t >= 0 and schema.constant(self.model, self._tensor(t)) is None]
                outputs = interpreter.invoke([values[t] for t in inputs])
                for tensor, output in zip(op.outputs, outputs):
                    values[int(tensor)] = output
            else:
                values[int(op.outputs[0])] = self._tfqp(name, op, values)
        return values[int(self.graph.outputs[0])][0]

    def _tfqp(self, name: str, op, values) -> np.ndarray:
        kernels = _kernels()
        activation = np.ascontiguousarray(values[int(op.inputs[0])])
        options = bytes(np.asarray(op.customOptions, dtype=np.uint8))
        if name == "TFQP_BMAXPOOL2D":
            return kernels.bmaxpool2d(activation, options)
        weights = np.ascontiguousarray(schema.constant(self.model, self._tensor(op.inputs[1])))
        transform = np.ascontiguousarray(schema.constant(self.model, self._tensor(op.inputs[2])))
        input_q = schema.per_tensor_quantization(self._tensor(op.inputs[0]))
        output = self._tensor(op.outputs[0])
        output_q = schema.per_tensor_quantization(output)
        run = {"TFQP_BCONV2D": kernels.bconv2d, "TFQP_BFULLY_CONNECTED": kernels.bfully_connected}.get(name)
        if run is None:
            raise ValueError(f"HostInterpreter: no host kernel for custom op {name!r}")
        return run(
            activation, weights, transform, options,
            input_zero_point=input_q[1] if input_q else 0,
            output_zero_point=output_q[1] if output_q else 0,
            packed_output=output.type == schema.TensorType.INT32,
        )
