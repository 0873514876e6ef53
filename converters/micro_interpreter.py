"""TFLite Micro's Python interpreter (``tflite_micro``), for builtin-op models.

The reference model is made to run on TFLite Micro, so TFLite Micro's kernels are
what its int8 arithmetic means: ``verify`` runs it here with every tensor preserved,
and ``report`` measures the tensor arena here. (``tf.lite.Interpreter`` is not the
same arithmetic: in TF 2.21 its per-channel int8 FULLY_CONNECTED rounds the
requantization differently from TFLite Micro's — gemmlowp's doubling high multiply
and rounding shift — and gives 1 LSB more or less on rounding ties.)

TFLite Micro reports errors on stderr, not in its exceptions, so loading and the
first ``invoke`` capture stderr and raise ``ModelError`` (a ValueError) with that
text. TFLite Micro trusts the flatbuffer: give it models that passed
``model_check`` (their ``runtime_bytes``), never bytes straight from a user.
"""

from typing import List, Sequence

import numpy as np

from tfq_plus import tensorflow_logs

from tfq_plus.converters import tflite_schema as schema
from tfq_plus.converters.model_error import TFLITE_MICRO, ModelError

# TFLite Micro allocates every tensor in one arena; this is plenty for the models
# it can hold, and only address space until used.
_MIN_ARENA = 8 << 20


# TFLite Micro's C++ writes to descriptor 2: its text is kept for messages
captured_stderr = tensorflow_logs.descriptor_2_into


def _details(details: dict) -> dict:
    """tflite_micro's tensor details in ``tf.lite.Interpreter``'s form."""
    quantization = details.get("quantization_parameters") or {}
    scales = np.asarray(quantization.get("scales", []), dtype=np.float64)
    zero_points = np.asarray(quantization.get("zero_points", []), dtype=np.int64)
    return {
        "dtype": details["dtype"],
        "shape": np.asarray(details["shape"]),
        "quantization": (
            float(scales[0]) if scales.size else 0.0,
            int(zero_points[0]) if zero_points.size else 0,
        ),
    }


class MicroInterpreter:
    """A builtin-op model in TFLite Micro (subgraph 0).

    Args:
        flatbuffer: the model.
        preserve_all_tensors: keep every intermediate tensor readable after
            ``invoke`` (``tensor``); otherwise TFLite Micro reuses their memory.

    Raises:
        ModelError: TFLite Micro cannot load or run the model (e.g. it has custom
            ops), with TFLite Micro's own message.
    """

    def __init__(self, flatbuffer: bytes, *, preserve_all_tensors: bool = False):
        from tflite_micro.python.tflite_micro import runtime

        flatbuffer = bytes(flatbuffer)
        graph = schema.read(flatbuffer).subgraphs[0]
        config = (
            runtime.InterpreterConfig.kPreserveAllTensors
            if preserve_all_tensors
            else runtime.InterpreterConfig.kAllocationRecording
        )
        arena_size = max(16 * len(flatbuffer), _MIN_ARENA)
        text: List[str] = []
        try:
            with captured_stderr(text):
                # (sic: the keyword is spelled this way in tflite_micro)
                self.interpreter = runtime.Interpreter.from_bytes(
                    flatbuffer, arena_size=arena_size, intrepreter_config=config
                )
                get = self.interpreter
                self.inputs = [_details(get.get_input_details(i)) for i in range(len(graph.inputs))]
                self.outputs = [_details(get.get_output_details(i)) for i in range(len(graph.outputs))]
                # Allocation errors surface at the first invoke.
                self.invoke([np.zeros(d["shape"], dtype=d["dtype"]) for d in self.inputs])
        except RuntimeError as error:
            raise ModelError(f"TFLite Micro cannot run the model: {error}; {''.join(text).strip()}",
                             TFLITE_MICRO) from error
        self.input, self.output = self.inputs[0], self.outputs[0]

    def invoke(self, inputs: Sequence[np.ndarray]) -> List[np.ndarray]:
        """All outputs for the given inputs (model shapes, batch dimension included),
        copied: the arena is reused by the next invoke."""
        for index, (values, details) in enumerate(zip(inputs, self.inputs)):
            self.interpreter.set_input(np.ascontiguousarray(values, dtype=details["dtype"]), index)
        self.interpreter.invoke()
        return [np.array(self.interpreter.get_output(i)) for i in range(len(self.outputs))]

    def run(self, batch: np.ndarray) -> np.ndarray:
        """Output 0 for input 0."""
        return self.invoke([batch])[0]

    def tensor(self, index: int) -> np.ndarray:
        """Tensor ``index`` of subgraph 0 after the last invoke (preserve_all_tensors)."""
        return self.interpreter.GetTensor(index, 0)["tensor_data"]

    def print_allocations(self) -> str:
        """TFLite Micro's allocation summary (kAllocationRecording), as text."""
        text: List[str] = []
        with captured_stderr(text):
            self.interpreter.print_allocations()
        return "".join(text)
