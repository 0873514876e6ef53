"""Verify: prove the deploy model computes what the Keras model computes.

Invariant 2 (reference == deploy), op by op: the reference model runs in TFLite
Micro's interpreter (``tflite_micro``, the runtime it is made for) with all tensors
preserved; every TFQP op of the deploy model runs
through the host build of its C kernel (``_tfqp_kernels``) on the very input the
reference had at that point, and its output must be

- int8 output: byte-identical to the reference tensor it replaces;
- packed output (a binary layer's, ``TFQP_BMAXPOOL2D``'s): bit for bit the signs
  q < zp of the reference tensor it mirrors, which is what the reference's binarize
  ops compare (for max-pool: max of int8 values < zp <=> every input < zp).

and the deploy model, run end to end on the host (``HostInterpreter``), must give
the reference's output bytes on every sample.

Invariant 1 (Keras ~ reference), and Keras ~ deploy: argmax agreement, output error
in output LSBs, accuracies with labels.

Deploy tensors are matched to reference tensors by name: the rewrite keeps the
names of the tensors it reuses and names new ones ``<reference name>/tfqp_packed``
(packed signs of that tensor) or ``<reference name>/tfqp_reshaped``.
"""

from typing import Dict, List, NamedTuple, Optional

import numpy as np

from tfq_plus.converters import packing
from tfq_plus.converters import rewrite as rewrites
from tfq_plus.converters.host_interpreter import HostInterpreter
from tfq_plus.converters.micro_interpreter import MicroInterpreter
from tfq_plus.converters import tflite_schema as schema


class VerificationError(ValueError):
    """The deploy model does not compute what the reference (or Keras) computes."""


class OpCheck(NamedTuple):
    index: int  # op index in the deploy model
    op: str
    output: str  # output tensor name
    check: str  # what it was compared with
    elements: int  # output values compared, over all samples


class VerifyReport(NamedTuple):
    samples: int
    ops: List[OpCheck]
    argmax_agreement: float  # Keras vs reference
    max_error_lsb: float  # max |Keras - reference| in reference output LSBs
    mean_error_lsb: float
    deploy_argmax_agreement: float  # Keras vs deploy (run end to end on the host)
    deploy_max_error_lsb: float
    deploy_mean_error_lsb: float
    keras_accuracy: Optional[float] = None  # with labels
    reference_accuracy: Optional[float] = None
    deploy_accuracy: Optional[float] = None

    def __str__(self):
        lines = [f"verified on {self.samples} samples"]
        lines.append("invariant 2 (reference == deploy), per TFQP op and end to end:")
        for c in self.ops:
            lines.append(f"  op {c.index:3d} {c.op:22s} {c.check}: {c.elements} values OK")
        lines.append(f"  end to end: deploy output bytes == reference output bytes on {self.samples} samples")
        lines.append(
            f"invariant 1 (Keras ~ reference): argmax agreement {100 * self.argmax_agreement:.2f} %, "
            f"output error max {self.max_error_lsb:.2f} LSB, mean {self.mean_error_lsb:.3f} LSB"
        )
        lines.append(
            f"Keras ~ deploy (end to end): argmax agreement {100 * self.deploy_argmax_agreement:.2f} %, "
            f"output error max {self.deploy_max_error_lsb:.2f} LSB, mean {self.deploy_mean_error_lsb:.3f} LSB"
        )
        if self.keras_accuracy is not None:
            lines.append(
                f"accuracy: Keras {100 * self.keras_accuracy:.2f} %, reference "
                f"{100 * self.reference_accuracy:.2f} %, deploy {100 * self.deploy_accuracy:.2f} %"
            )
        return "\n".join(lines)


def _kernels():
    from tfq_plus.converters import _tfqp_kernels

    return _tfqp_kernels


def _round_half_away(values: np.ndarray) -> np.ndarray:
    return np.sign(values) * np.floor(np.abs(values) + 0.5)


def quantize_input(samples: np.ndarray, details: dict) -> np.ndarray:
    """Float samples -> the reference input type (TFLite's QUANTIZE rounding)."""
    dtype = details["dtype"]
    if dtype == np.float32:
        return samples.astype(np.float32)
    scale, zero_point = details["quantization"]
    info = np.iinfo(dtype)
    q = _round_half_away(samples.astype(np.float64) / scale) + zero_point
    return np.clip(q, info.min, info.max).astype(dtype)


def dequantize(values: np.ndarray, details: dict) -> np.ndarray:
    if details["dtype"] == np.float32:
        return values.astype(np.float64)
    scale, zero_point = details["quantization"]
    return (values.astype(np.float64) - zero_point) * scale


class _Reference:
    """The reference model in TFLite Micro with every tensor preserved.

    TFLite Micro, not ``tf.lite.Interpreter``: the reference is made for it, and the
    TFQP kernels reproduce its arithmetic (see ``micro_interpreter``).
    """

    def __init__(self, flatbuffer: bytes):
        try:
            self.interpreter = MicroInterpreter(flatbuffer, preserve_all_tensors=True)
        except ValueError as error:
            raise VerificationError(f"the reference model: {error}") from error
        self.input = self.interpreter.input
        self.output = self.interpreter.output
        graph = schema.read(flatbuffer).subgraphs[0]
        self.index: Dict[str, int] = {}
        duplicated = set()
        self.zero_point: Dict[int, int] = {}
        for index, tensor in enumerate(graph.tensors):
            name = schema.tensor_name(tensor)
            if name in self.index:
                duplicated.add(name)
            self.index[name] = index
            quantization = schema.per_tensor_quantization(tensor)
            self.zero_point[index] = int(quantization[1]) if quantization else 0
        for name in duplicated:
            del self.index[name]

    def run(self, sample: np.ndarray) -> np.ndarray:
        return self.interpreter.run(sample[None])[0]

    def tensor(self, name: str):
        """(values, zero point) of a reference tensor by name."""
        if name not in self.index:
            raise VerificationError(
                f"the reference model has no tensor {name!r} (or more than one): is the deploy "
                "model the rewrite of this reference?"
            )
        index = self.index[name]
        return self.interpreter.tensor(index), self.zero_point[index]


def _deploy_input(reference: _Reference, tensor) -> np.ndarray:
    """The value the reference had for a deploy tensor (matched by name)."""
    name = schema.tensor_name(tensor)
    if name.endswith(rewrites.PACKED_SUFFIX):
        values, zero_point = reference.tensor(name[: -len(rewrites.PACKED_SUFFIX)])
        return packing.pack_activations(values, zero_point)
    if name.endswith(rewrites.RESHAPED_SUFFIX):
        values, _ = reference.tensor(name[: -len(rewrites.RESHAPED_SUFFIX)])
        return np.ascontiguousarray(values.reshape(schema.shape(tensor)))
    return np.ascontiguousarray(reference.tensor(name)[0])


class _TfqpOp(NamedTuple):
    index: int
    name: str
    op: object
    inputs: list
    output: object


def _tfqp_ops(model) -> List[_TfqpOp]:
    graph = model.subgraphs[0]
    found = []
    for index, op in enumerate(graph.operators):
        name = schema.op_name(model, op)
        if name in rewrites.TFQP_OPS:
            found.append(_TfqpOp(index, name, op, [graph.tensors[t] for t in op.inputs],
                                 graph.tensors[op.outputs[0]]))
    return found


def _run_kernel(model, tfqp: _TfqpOp, activation: np.ndarray) -> np.ndarray:
    kernels = _kernels()
    options = bytes(np.asarray(tfqp.op.customOptions, dtype=np.uint8))
    if tfqp.name == rewrites.BMAXPOOL2D:
        return kernels.bmaxpool2d(activation, options)
    weights = np.ascontiguousarray(schema.constant(model, tfqp.inputs[1]))
    transform = np.ascontiguousarray(schema.constant(model, tfqp.inputs[2]))
    input_q = schema.per_tensor_quantization(tfqp.inputs[0])
    output_q = schema.per_tensor_quantization(tfqp.output)
    run = kernels.bconv2d if tfqp.name == rewrites.BCONV2D else kernels.bfully_connected
    return run(
        activation, weights, transform, options,
        input_zero_point=input_q[1] if input_q else 0,
        output_zero_point=output_q[1] if output_q else 0,
        packed_output=tfqp.output.type == schema.TensorType.INT32,
    )


def verify(model, deploy: bytes, reference: bytes, samples, *, labels=None,
           min_argmax_agreement: Optional[float] = 0.99,
           max_error_lsb: Optional[float] = None) -> VerifyReport:
    """Check both invariants on ``samples`` (float inputs of the Keras model).

    Args:
        model: the Keras model that was converted (None skips the Keras checks).
        deploy: the deploy flatbuffer (``convert_keras_model(..., custom_ops=True)``).
        reference: the reference flatbuffer (``custom_ops=False``) of the same model.
        samples: float array [n, ...] of model inputs.
        labels: optional int labels [n] to report accuracies.
        min_argmax_agreement: raise if Keras agrees with the reference or with the
            deploy model on fewer samples (None: report only).
        max_error_lsb: raise if the Keras-vs-reference or Keras-vs-deploy output error
            exceeds this many output LSBs (None: report only).

    Raises:
        VerificationError: a TFQP op's output differs from the reference (op index, op
            name, output tensor, sample, differing values or bits), the deploy model's
            output differs from the reference's, or invariant 1 misses a bound.
    """
    samples = np.asarray(samples, dtype=np.float32)
    if samples.ndim < 2 or len(samples) == 0:
        raise ValueError(f"verify: samples must be an array [n, ...] with n >= 1, got shape {samples.shape}")
    ref = _Reference(reference)
    deploy_model = schema.read(deploy)
    expected_shape = tuple(ref.input["shape"][1:])
    if tuple(samples.shape[1:]) != expected_shape:
        raise ValueError(f"verify: samples of shape {samples.shape[1:]} do not fit the model input {expected_shape}")
    tfqp_ops = _tfqp_ops(deploy_model)
    counts = {t.index: 0 for t in tfqp_ops}

    host = HostInterpreter(deploy)
    reference_outputs, deploy_outputs = [], []
    for sample_index, sample in enumerate(samples):
        quantized = quantize_input(sample, ref.input)
        reference_outputs.append(ref.run(quantized))
        for tfqp in tfqp_ops:
            activation = _deploy_input(ref, tfqp.inputs[0])
            try:
                got = _run_kernel(deploy_model, tfqp, activation)
            except ValueError as error:
                raise VerificationError(
                    f"deploy op {tfqp.index} ({tfqp.name}): the C kernel rejected the op: {error}"
                ) from error
            if tfqp.output.type == schema.TensorType.INT8:
                _compare_int8(tfqp, got, ref.tensor(schema.tensor_name(tfqp.output))[0], sample_index)
                counts[tfqp.index] += got.size
            else:
                counts[tfqp.index] += _compare_packed(tfqp, got, ref, sample_index)
        try:
            deploy_outputs.append(host.run(quantized))
        except ValueError as error:
            raise VerificationError(f"the deploy model fails on sample {sample_index}: {error}") from error
        _compare_outputs(deploy_outputs[-1], reference_outputs[-1], sample_index)
    checks = [
        OpCheck(t.index, t.name, schema.tensor_name(t.output), _check_name(t), counts[t.index])
        for t in tfqp_ops
    ]
    return _invariant_one(model, samples, np.stack(reference_outputs), np.stack(deploy_outputs), ref,
                          checks, labels, min_argmax_agreement, max_error_lsb)


def _check_name(tfqp: _TfqpOp) -> str:
    if tfqp.output.type == schema.TensorType.INT8:
        return "int8, bit-exact with reference"
    return "packed, bit-exact with reference signs"


def _compare_int8(tfqp, got, expected, sample_index):
    expected = expected.reshape(got.shape)
    if not np.array_equal(got, expected):
        diff = np.abs(got.astype(np.int32) - expected.astype(np.int32))
        raise VerificationError(
            f"deploy op {tfqp.index} ({tfqp.name}, output {schema.tensor_name(tfqp.output)!r}) "
            f"differs from the reference on sample {sample_index}: max difference {diff.max()} "
            f"(int8 steps) at {np.count_nonzero(diff)} of {diff.size} values"
        )


def _compare_packed(tfqp, got, ref, sample_index) -> int:
    """Packed bits against the signs q < zp of the reference tensor; returns the bits compared."""
    out_name = schema.tensor_name(tfqp.output)
    values, zero_point = ref.tensor(out_name[: -len(rewrites.PACKED_SUFFIX)])
    bits = packing.unpack_bits(got, values.shape[-1]).reshape(values.shape)
    differ = bits != (values < zero_point)
    if np.any(differ):
        raise VerificationError(
            f"deploy op {tfqp.index} ({tfqp.name}, output {out_name!r}) differs from the reference's "
            f"signs on sample {sample_index}: {np.count_nonzero(differ)} of {differ.size} bits"
        )
    return bits.size


def _compare_outputs(got, expected, sample_index):
    """The deploy model's output, run end to end, against the reference's: same bytes."""
    if got.shape != expected.shape or got.dtype != expected.dtype:
        raise VerificationError(
            f"the deploy model's output is {got.dtype} {list(got.shape)}, the reference's "
            f"{expected.dtype} {list(expected.shape)}"
        )
    if got.tobytes() != expected.tobytes():
        diff = np.abs(got.astype(np.float64) - expected.astype(np.float64))
        raise VerificationError(
            f"the deploy model's output differs from the reference's on sample {sample_index}: "
            f"max difference {diff.max()} at {np.count_nonzero(diff)} of {diff.size} values"
        )


class _Agreement(NamedTuple):
    argmax: float
    max_lsb: float
    mean_lsb: float
    accuracy: Optional[float]


def _agreement(keras_outputs, outputs, lsb, labels) -> _Agreement:
    flat_keras = keras_outputs.reshape(len(keras_outputs), -1)
    flat = outputs.reshape(len(outputs), -1)
    error = np.abs(flat_keras - flat) / lsb
    accuracy = None
    if labels is not None:
        accuracy = float(np.mean(np.argmax(flat, 1) == labels))
    return _Agreement(float(np.mean(np.argmax(flat_keras, 1) == np.argmax(flat, 1))),
                      float(error.max()), float(error.mean()), accuracy)


def _invariant_one(model, samples, reference_outputs, deploy_outputs, ref, checks, labels,
                   min_agreement, max_lsb):
    reference_real = dequantize(reference_outputs, ref.output)
    deploy_real = dequantize(deploy_outputs, ref.output)
    nan = float("nan")
    if model is None:
        return VerifyReport(len(samples), checks, nan, nan, nan, nan, nan, nan)
    keras_outputs = np.asarray(model.predict(samples, verbose=0, batch_size=256), dtype=np.float64)
    lsb = 1.0 if ref.output["dtype"] == np.float32 else float(ref.output["quantization"][0])
    if labels is not None:
        labels = np.asarray(labels).reshape(-1)
    to_reference = _agreement(keras_outputs, reference_real, lsb, labels)
    to_deploy = _agreement(keras_outputs, deploy_real, lsb, labels)
    keras_accuracy = None
    if labels is not None:
        keras_accuracy = float(np.mean(np.argmax(keras_outputs.reshape(len(samples), -1), 1) == labels))
    report = VerifyReport(
        len(samples), checks, to_reference.argmax, to_reference.max_lsb, to_reference.mean_lsb,
        to_deploy.argmax, to_deploy.max_lsb, to_deploy.mean_lsb,
        keras_accuracy, to_reference.accuracy, to_deploy.accuracy,
    )
    for what, agreement in (("reference", to_reference), ("deploy", to_deploy)):
        if min_agreement is not None and agreement.argmax < min_agreement:
            raise VerificationError(
                f"Keras and {what} agree on the argmax of only {100 * agreement.argmax:.2f} % of "
                f"{len(samples)} samples (required {100 * min_agreement:.2f} %)\n{report}"
            )
        if max_lsb is not None and agreement.max_lsb > max_lsb:
            raise VerificationError(
                f"Keras and {what} outputs differ by up to {agreement.max_lsb:.2f} LSB "
                f"(allowed {max_lsb})\n{report}"
            )
    return report
