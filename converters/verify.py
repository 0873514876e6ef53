"""Verify: prove the deploy model computes what the Keras model computes.

Invariant 2 (reference == deploy), op by op: the reference model runs in
``tf.lite.Interpreter`` (TFLite's reference kernels, the fixed-point arithmetic of
TFLite Micro) with all tensors preserved; every TFQP op of the deploy model runs
through the host build of its C kernel (``_tfqp_kernels``) on the very input the
reference had at that point, and its output must be

- int8 output: byte-identical to the reference tensor it replaces;
- ``TFQP_BMAXPOOL2D``: identical to the signs of the reference's MAX_POOL_2D output
  (max of int8 values < zp  <=>  every input < zp: exact);
- packed output of a binary layer (the documented deviation, see ``rewrite``): the
  sign of the layer's real output before int8 rounding. Checked twice: against the
  reference (a bit may differ only where the reference value lies within its int8
  rounding and bias-scale error of zero, ``_reference_op``), and against the Keras
  layers themselves, run on the same +-1 input (a bit may differ only where
  |Keras output| is below one bias step plus float32 rounding).

Invariant 1 (Keras ~ reference), and Keras ~ deploy with the deploy model run end to
end on the host (``HostInterpreter``): argmax agreement, output error in output
LSBs, accuracies with labels.

Deploy tensors are matched to reference tensors by name: the rewrite keeps the
names of the tensors it reuses and names new ones ``<reference name>/tfqp_packed``
(packed signs of that tensor) or ``<reference name>/tfqp_reshaped``.
"""

import warnings
from typing import Dict, List, NamedTuple, Optional

import numpy as np

from tfq_plus.converters import packing
from tfq_plus.converters import rewrite as rewrites
from tfq_plus.converters.host_interpreter import HostInterpreter
from tfq_plus.converters import tflite_schema as schema


class VerificationError(ValueError):
    """The deploy model does not compute what the reference (or Keras) computes."""


class OpCheck(NamedTuple):
    index: int  # op index in the deploy model
    op: str
    output: str  # output tensor name
    check: str  # what it was compared with
    elements: int  # output values compared, over all samples
    deviations: int  # documented deviations (packed signs where the reference rounded to 0)
    keras_checked: bool


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
        lines.append("invariant 2 (reference == deploy), per TFQP op:")
        for c in self.ops:
            keras = ", Keras signs checked" if c.keras_checked else ""
            deviation = f", {c.deviations} documented sign deviations" if c.deviations else ""
            lines.append(
                f"  op {c.index:3d} {c.op:22s} {c.check}: {c.elements} values OK{deviation}{keras}"
            )
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
    """The reference model in tf.lite.Interpreter with every tensor preserved."""

    def __init__(self, flatbuffer: bytes):
        import tensorflow as tf

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            # TFLite's reference kernels: the fixed-point arithmetic TFLite Micro runs
            # (the default XNNPACK delegate requantizes int8 in float and differs by 1).
            self.interpreter = tf.lite.Interpreter(
                model_content=bytes(flatbuffer), experimental_preserve_all_tensors=True,
                experimental_op_resolver_type=tf.lite.experimental.OpResolverType.BUILTIN_REF,
            )
        self.interpreter.allocate_tensors()
        self.input = self.interpreter.get_input_details()[0]
        self.output = self.interpreter.get_output_details()[0]
        details = self.interpreter.get_tensor_details()
        self.index: Dict[str, int] = {}
        duplicated = set()
        for d in details:
            if d["name"] in self.index:
                duplicated.add(d["name"])
            self.index[d["name"]] = d["index"]
        for name in duplicated:
            del self.index[name]
        self.zero_point = {d["index"]: int(d["quantization"][1]) for d in details}

    def run(self, sample: np.ndarray) -> np.ndarray:
        self.interpreter.set_tensor(self.input["index"], sample[None])
        self.interpreter.invoke()
        return self.interpreter.get_tensor(self.output["index"])[0]

    def tensor(self, name: str):
        """(values, zero point) of a reference tensor by name."""
        if name not in self.index:
            raise VerificationError(
                f"the reference model has no tensor {name!r} (or more than one): is the deploy "
                "model the rewrite of this reference?"
            )
        index = self.index[name]
        return self.interpreter.get_tensor(index), self.zero_point[index]


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


class _KerasSigns:
    """The Keras float output of a binary layer (and the layers folded into it) on a
    given +-1 input, for the packed-output check."""

    def __init__(self, model, reference_model):
        self.model = model
        self.layers = {}
        if model is not None:
            for layer in _all_layers(model):
                self.layers[layer.name] = layer
        self.reference_model = reference_model

    def chain(self, reference_op):
        """Keras layers from the binary layer (named by the reference op's input tensor)
        to the one whose output the reference op writes (BatchNorm folded into the
        conv), or None where the layers do not form a single chain."""
        import tensorflow as tf

        if not self.layers or reference_op is None:
            return None
        input_name, output_name = reference_op
        mentioned = _name_parts(output_name)
        start = next((p for p in _name_parts(input_name) if p in self.layers), None)
        if start is None:
            return None
        layer = self.layers[start]
        chain = [layer]
        while True:
            nodes = layer.outbound_nodes
            if len(nodes) != 1:
                break
            following = nodes[0].outbound_layer
            if isinstance(following, tf.keras.layers.MaxPool2D):
                # The export computes MaxPool -> BatchNorm as BatchNorm -> MaxPool
                # (export.AffineThenMaxPool): the BatchNorm folds into the conv, the
                # pool is a later op. Skip it, never apply it.
                layer = following
                continue
            if following.name not in mentioned:
                break
            chain.append(following)
            layer = following
        if chain[-1].name not in mentioned:
            return None
        return chain

    @staticmethod
    def run(chain, signs: np.ndarray) -> np.ndarray:
        import tensorflow as tf

        x = tf.constant(signs.astype(np.float32))
        for layer in chain:
            x = layer(x, training=False)
        return x.numpy()


def _all_layers(model):
    import tensorflow as tf

    for layer in model.layers:
        yield layer
        if isinstance(layer, tf.keras.Model):
            yield from _all_layers(layer)


def _name_parts(name: str) -> List[str]:
    return [part for piece in name.split(";") for part in piece.split("/")]


class _ReferenceOp(NamedTuple):
    """What the packed checks need of the reference conv / FC a packed op replaced."""

    names: tuple  # (activation input name, output name): name the Keras layers
    bias_scales: np.ndarray  # per channel
    sign_margin: np.ndarray  # per channel: int8 steps the reference may be off zero


def _reference_op(reference_model, output_name: str) -> Optional[_ReferenceOp]:
    """The reference op writing ``output_name`` (looking through a PADV2 input).

    The packed sign uses the real bias (bias * bias scale), the reference's int8
    kernel bias * input scale * weight scale; the difference e (per channel), plus
    the reference's int8 rounding, bounds how far from its zero point the
    reference may be where the two signs differ: 1 + ceil(e / output scale) steps.
    """
    graph = reference_model.subgraphs[0]
    producers = schema.producers(graph)
    for op in graph.operators:
        out = graph.tensors[op.outputs[0]]
        if schema.tensor_name(out) != output_name or len(op.inputs) < 2:
            continue
        input_q = schema.quantization(graph.tensors[op.inputs[0]])
        weight_q = schema.quantization(graph.tensors[op.inputs[1]])
        output_q = schema.quantization(out)
        if input_q is None or weight_q is None or output_q is None:
            return None
        channels = schema.shape(out)[-1]
        weight_scales = np.broadcast_to(weight_q[0].astype(np.float64), (channels,))
        bias_scales = np.zeros(channels)
        bias = np.zeros(channels)
        if len(op.inputs) > 2 and op.inputs[2] >= 0:
            bias_tensor = graph.tensors[op.inputs[2]]
            bias = schema.constant(reference_model, bias_tensor).astype(np.float64)
            bias_q = schema.quantization(bias_tensor)
            if bias_q is not None:
                bias_scales = np.broadcast_to(bias_q[0].astype(np.float64), (channels,))
        kernel_bias_scales = float(input_q[0][0]) * weight_scales
        error = np.abs(bias) * np.abs(bias_scales - kernel_bias_scales)
        margin = 1 + np.ceil(error / float(output_q[0][0]))
        activation = int(op.inputs[0])
        pad = producers.get(activation)
        if pad is not None and schema.op_name(reference_model, graph.operators[pad]) == "PADV2":
            activation = int(graph.operators[pad].inputs[0])
        names = (schema.tensor_name(graph.tensors[activation]), output_name)
        return _ReferenceOp(names, np.array(bias_scales), margin.astype(np.int64))
    return None


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
            name, output tensor, sample, max difference), or invariant 1 misses a bound.
    """
    samples = np.asarray(samples, dtype=np.float32)
    if samples.ndim < 2 or len(samples) == 0:
        raise ValueError(f"verify: samples must be an array [n, ...] with n >= 1, got shape {samples.shape}")
    ref = _Reference(reference)
    deploy_model = schema.read(deploy)
    reference_model = schema.read(reference)
    expected_shape = tuple(ref.input["shape"][1:])
    if tuple(samples.shape[1:]) != expected_shape:
        raise ValueError(f"verify: samples of shape {samples.shape[1:]} do not fit the model input {expected_shape}")
    tfqp_ops = _tfqp_ops(deploy_model)
    keras_check = _KerasCheck(_KerasSigns(model, reference_model))
    counts = {t.index: [0, 0, False] for t in tfqp_ops}

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
            count = counts[tfqp.index]
            if tfqp.output.type == schema.TensorType.INT8:
                _compare_int8(tfqp, got, ref.tensor(schema.tensor_name(tfqp.output))[0], sample_index)
                count[0] += got.size
            else:
                elements, deviations = _compare_packed(
                    tfqp, got, ref, keras_check, reference_model, activation, sample_index
                )
                count[0] += elements
                count[1] += deviations
        try:
            deploy_outputs.append(host.run(quantized))
        except ValueError as error:
            raise VerificationError(f"the deploy model fails on sample {sample_index}: {error}") from error
    keras_check.run(counts)
    checks = [
        OpCheck(t.index, t.name, schema.tensor_name(t.output), _check_name(t), counts[t.index][0],
                counts[t.index][1], counts[t.index][2])
        for t in tfqp_ops
    ]
    return _invariant_one(model, samples, np.stack(reference_outputs), np.stack(deploy_outputs), ref,
                          checks, labels, min_argmax_agreement, max_error_lsb)


def _check_name(tfqp: _TfqpOp) -> str:
    if tfqp.output.type == schema.TensorType.INT8:
        return "int8, bit-exact with reference"
    if tfqp.name == rewrites.BMAXPOOL2D:
        return "packed, bit-exact with reference signs"
    return "packed, signs vs reference and Keras"


def _compare_int8(tfqp, got, expected, sample_index):
    expected = expected.reshape(got.shape)
    if not np.array_equal(got, expected):
        diff = np.abs(got.astype(np.int32) - expected.astype(np.int32))
        raise VerificationError(
            f"deploy op {tfqp.index} ({tfqp.name}, output {schema.tensor_name(tfqp.output)!r}) "
            f"differs from the reference on sample {sample_index}: max difference {diff.max()} "
            f"(int8 steps) at {np.count_nonzero(diff)} of {diff.size} values"
        )


def _compare_packed(tfqp, got, ref, keras_check, reference_model, activation, sample_index):
    """Packed output checks; returns (bits compared, documented deviations)."""
    out_name = schema.tensor_name(tfqp.output)
    base = out_name[: -len(rewrites.PACKED_SUFFIX)]
    values, zero_point = ref.tensor(base)
    channels = values.shape[-1]
    bits = packing.unpack_bits(got, channels).reshape(values.shape)
    reference_bits = values < zero_point
    if tfqp.name == rewrites.BMAXPOOL2D:
        if not np.array_equal(bits, reference_bits):
            raise VerificationError(
                f"deploy op {tfqp.index} ({tfqp.name}, output {out_name!r}) differs from the signs of "
                f"the reference's max-pool on sample {sample_index}: "
                f"{np.count_nonzero(bits != reference_bits)} of {bits.size} bits"
            )
        return bits.size, 0
    found = _reference_op(reference_model, base)
    if found is None:
        raise VerificationError(
            f"deploy op {tfqp.index} ({tfqp.name}): no reference conv / fully-connected writes {base!r}"
        )
    differ = bits != reference_bits
    # Allowed: the reference's value is within its rounding and bias error of zero.
    distance = np.abs(values.astype(np.int64) - zero_point)
    unexplained = differ & (distance > found.sign_margin)
    if np.any(unexplained):
        raise VerificationError(
            f"deploy op {tfqp.index} ({tfqp.name}, output {out_name!r}) writes signs that contradict "
            f"the reference on sample {sample_index}: {np.count_nonzero(unexplained)} of {bits.size} "
            f"bits, where the reference is up to {distance[unexplained].max()} int8 steps from zero "
            f"(allowed: {int(found.sign_margin.max())})"
        )
    keras_check.add(tfqp, bits, found, activation, base, sample_index)
    return bits.size, int(np.count_nonzero(differ))


class _KerasCheck:
    """Packed signs against the Keras layers, run once per op on all samples' inputs."""

    def __init__(self, keras_signs: _KerasSigns):
        self.keras_signs = keras_signs
        self.pending: Dict[int, list] = {}  # op index -> [(sample, signs, bits)]
        self.context: Dict[int, tuple] = {}  # op index -> (tfqp, chain, reference op, name)

    def add(self, tfqp, bits, found, activation, base, sample_index):
        if tfqp.index not in self.context:
            self.context[tfqp.index] = (tfqp, self.keras_signs.chain(found.names), found, base)
        chain = self.context[tfqp.index][1]
        if chain is None:
            return
        if tfqp.inputs[0].type == schema.TensorType.INT32:
            negative = packing.unpack_bits(activation, int(chain[0].input_shape[-1]))
        else:
            negative = activation < schema.per_tensor_quantization(tfqp.inputs[0])[1]
        signs = np.where(negative, -1.0, 1.0).reshape(tuple(chain[0].input_shape[1:]))
        self.pending.setdefault(tfqp.index, []).append((sample_index, signs, bits))

    def run(self, counts):
        for index, items in self.pending.items():
            tfqp, chain, found, base = self.context[index]
            try:
                outputs = _KerasSigns.run(chain, np.stack([signs for _, signs, _ in items]))
            except Exception:  # a layer that cannot run on these inputs: reference check only
                continue
            for (sample_index, _, bits), keras_output in zip(items, outputs):
                keras_output = keras_output.reshape(bits.shape)
                # One bias step (its int32 rounding), plus float32 rounding.
                tolerance = found.bias_scales + 1e-5 * np.max(
                    np.abs(keras_output), axis=tuple(range(keras_output.ndim - 1))
                )
                wrong = (bits != (keras_output < 0)) & (np.abs(keras_output) > tolerance)
                if np.any(wrong):
                    raise VerificationError(
                        f"deploy op {tfqp.index} ({tfqp.name}, output {base!r}) writes signs that "
                        f"contradict the Keras layers {[layer.name for layer in chain]} on sample "
                        f"{sample_index}: {np.count_nonzero(wrong)} of {bits.size} bits, largest "
                        f"|Keras value| {np.max(np.abs(keras_output[wrong])):.4g}"
                    )
            counts[index][2] = True


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
