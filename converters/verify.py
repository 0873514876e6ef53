"""Verify: prove the deploy model computes what the Keras model computes.

Keras is the oracle (docs/design.md, invariant 1). ``verify`` runs the deploy model on
the host (``Interpreter``: builtin ops in TFLite Micro, TFQP ops in their C
kernels) and the Keras model on the same samples, and checks:

1. **Weights**: every TFQP op's weights, unpacked, equal the Keras layer's kernel
   codes (the plan export makes from the Keras model): one flipped bit fails, on
   any number of samples. A shift op's codes, decoded through its code table and
   times the plan's per-channel scales, equal Keras's quantized kernel exactly.
2. **Each TFQP op on its own input**, by the policy its registry entry names:
   ``keras signs`` ops (layers) run their Keras layer and folded chain on the very
   input the op received (unpacked signs, dequantized int8) and compare: packed
   bits bit for bit, int8 values within the output's rounding, int32 stream values
   within the stream's resolution (a shift op's int8 values: within one step,
   its bias being rounded to a unit of its accumulator). Where Keras's own
   float32 value lies within float32 rounding of zero (|v| <= TIE_TOLERANCE x the channel's largest |v|) a
   differing sign is counted as a tie, not a failure. Ops whose kernel the
   converter rounded to int8 (a float kernel Keras never saw on that grid) report
   their flips without failing. Given the reference, a shift op that computes
   the stock op's arithmetic (its weights held exactly by the stock filter, e.g.
   a ternary convolution as +-127) must also give the stock op's bytes on the same
   input (check "stock bytes", the stock op run alone in TFLite Micro).
   ``boolean`` ops (max-pool on signs, binarize, unpack) must equal their numpy
   definition exactly.
   An op with a codes output (``output_levels``, check "keras codes") writes k-bit
   codes: they must equal Keras's codes (the consumer's quantizer on the Keras
   layer and its folded chain) on the op's own input, except where Keras's float32
   value lies within float32 rounding of a rounding boundary of the grid
   (|v - boundary| <= TIE_TOLERANCE x the channel's largest |v|), counted as ties.
3. **Every binarized activation and k-bit activation end to end**: each packed
   tensor of the deploy model against the signs of the Keras tensor it stands for,
   in Keras's own run, and each codes tensor against Keras's codes of it (the
   headline per layer: how many signs / codes differ, how many of them are ties).
4. **Outputs end to end**: argmax agreement of Keras and the deploy model (the
   bound ``min_argmax_agreement`` applies here), output error in output LSBs,
   accuracies with labels; the reference model (stock int8, the baseline) the
   same way when given.
"""

from typing import Callable, Dict, List, NamedTuple, Optional, Sequence

import numpy as np
import tensorflow as tf

from tfq_plus.converters import packing
from tfq_plus.converters import plans as P
from tfq_plus.converters import shift_codes
from tfq_plus.converters import uniform_codes
from tfq_plus.converters import stock_identity
from tfq_plus.converters import tflite_schema as schema
from tfq_plus.converters.interpreter import Interpreter
from tfq_plus.converters.micro_interpreter import MicroInterpreter
from tfq_plus.converters.model_check import TFLITE_MICRO_RUNTIME, check_model
from tfq_plus.converters.model_error import MODEL, ModelError
from tfq_plus.converters.ops import kbit as kbit_ops, maxpool, shift as shift_ops, signs as sign_ops
from tfq_plus.converters.ops.registry import BOOLEAN, KERAS_SIGNS, OpView, is_tfqp
from tfq_plus.converters.packed_activations import storage_bits
from tfq_plus.converters.patterns.codes import CODES
from tfq_plus.converters.patterns.context import SIGNS, VALUES, parse_tensor_name
from tfq_plus.converters.tflite_arithmetic import quantize_values

# A sign whose Keras value is within this fraction of the channel's largest |value|
# of zero is a float32 tie: Keras's float32 sums and the exact integer accumulator
# may fall on either side.
TIE_TOLERANCE = 2.0**-16

# samples per chunk: both models run chunk by chunk, so memory stays bounded
CHUNK = 250

# the checks of int8 / int32 outputs of ``keras signs`` ops
KERAS_VALUES_INT8 = "keras int8"  # within half an output step
KERAS_VALUES_SHIFT = "keras int8 1 LSB"  # a shift op's int8 output: within one step
KERAS_VALUES_INT32 = "keras int32"
# k-bit codes outputs: equal to Keras's codes on the op's own input (ties counted)
KERAS_CODES = "keras codes"
# a shift op whose weights the stock reference holds exactly: its output bytes equal
# the stock op's on the same input (given the reference)
STOCK_BYTES = "stock bytes"
SHIFT_OPS = shift_ops.SHIFT_OPS
INT4_BUILTINS = (schema.BuiltinOperator.CONV_2D, schema.BuiltinOperator.DEPTHWISE_CONV_2D,
                 schema.BuiltinOperator.FULLY_CONNECTED)


class VerificationError(ValueError):
    """The deploy model does not compute what the Keras model computes."""


class OpCheck(NamedTuple):
    """One TFQP op run on its own input against its Keras layer (``VerifyReport.ops``).

    ``policy`` names the comparison (``keras signs``, ``keras int8``, ``keras
    int32``, ``keras codes``, ``boolean``, ``stock bytes``, ...); ``differing``
    counts the values that differ beyond float32 ties, ``ties`` the differing ones
    where Keras's value is a float32 tie; ``exact`` whether a difference fails
    ``verify``; ``detail`` the largest error where values, not signs, are compared.
    """

    index: int  # op index in the deploy model
    op: str
    layer: str  # the Keras layer it computes
    policy: str
    compared: int  # values compared over all samples
    differing: int  # beyond ties
    ties: int  # differing signs whose Keras value is a float32 tie
    exact: bool  # differences fail verify
    detail: str = ""


class SignCheck(NamedTuple):
    """A packed (binarized) tensor of the deploy model against Keras's signs of the
    tensor it stands for, end to end: ``bits`` signs compared over all samples,
    ``differing`` of them differ beyond ties, and ``ties`` more differ where Keras's
    value is a float32 tie (within rounding of zero)."""

    tensor: str
    layer: str
    bits: int
    differing: int
    ties: int


class CodeCheck(NamedTuple):
    """A k-bit activation tensor of the deploy model against Keras's codes."""

    tensor: str
    layer: str
    width: int  # the grid's bit width
    values: int  # codes compared
    differing: int  # beyond ties
    ties: int


class OutputCheck(NamedTuple):
    """One model output, Keras against a flatbuffer: argmax agreement (fraction of
    samples), output error in output LSBs (the output's quantization step), and
    accuracy with labels (else None)."""

    name: str
    argmax_agreement: float
    max_error_lsb: float
    mean_error_lsb: float
    accuracy: Optional[float]


class VerifyReport(NamedTuple):
    """What ``verify`` found; ``print(report)`` gives the table.

    Attributes:
        samples: the number of samples run.
        weights_checked: TFQP ops whose weights equal the Keras kernel's codes.
        ops: one ``OpCheck`` per TFQP op (and checked builtin op).
        signs: one ``SignCheck`` per packed tensor.
        deploy: one ``OutputCheck`` per model output, Keras vs deploy.
        reference: the same for Keras vs the reference model, or None without one.
        keras_accuracy: the Keras model's accuracy on the labels, or None.
        codes: one ``CodeCheck`` per k-bit activation tensor.
    """

    samples: int
    weights_checked: int  # TFQP ops whose weights were compared with Keras's
    ops: List[OpCheck]
    signs: List[SignCheck]
    deploy: List[OutputCheck]  # Keras vs deploy, per model output
    reference: Optional[List[OutputCheck]]  # Keras vs reference, per model output
    keras_accuracy: Optional[float]
    codes: List[CodeCheck] = []  # k-bit activation tensors, Keras vs deploy end to end

    @property
    def argmax_agreement(self) -> float:
        """Keras vs deploy argmax agreement of output 0 (the headline)."""
        return self.deploy[0].argmax_agreement

    @property
    def reference_argmax_agreement(self) -> Optional[float]:
        """Keras vs reference argmax agreement of output 0, or None without a reference."""
        return None if self.reference is None else self.reference[0].argmax_agreement

    @property
    def differing_signs(self) -> int:
        """Signs that differ from Keras's beyond ties, over every packed tensor."""
        return sum(s.differing for s in self.signs)

    @property
    def sign_ties(self) -> int:
        """Of ``differing_signs``, those where Keras's value is a float32 tie."""
        return sum(s.ties for s in self.signs)

    @property
    def compared_signs(self) -> int:
        """Signs compared, over every packed tensor and sample."""
        return sum(s.bits for s in self.signs)

    @property
    def differing_codes(self) -> int:
        """k-bit activation codes that differ from Keras's (beyond ties)."""
        return sum(c.differing for c in self.codes)

    @property
    def code_ties(self) -> int:
        """k-bit codes that differ where Keras's value is a float32 tie at a code boundary."""
        return sum(c.ties for c in self.codes)

    @property
    def compared_codes(self) -> int:
        """k-bit activation codes compared, over every codes tensor and sample."""
        return sum(c.values for c in self.codes)

    def __str__(self):
        lines = [f"verified on {self.samples} samples; weights of {self.weights_checked} TFQP ops equal "
                 "the Keras kernels"]
        lines.append("each TFQP op on its own input:")
        for c in self.ops:
            verdict = "OK" if c.differing == 0 else ("differs" if c.exact else "rounded kernel")
            tie = f", {c.ties} float32 ties" if c.ties else ""
            detail = f" ({c.detail})" if c.detail else ""
            lines.append(f"  op {c.index:3d} {c.op:26s} {c.layer:24s} {c.policy:12s} "
                         f"{c.differing}/{c.compared} differ{tie}: {verdict}{detail}")
        if self.signs:
            lines.append("binarized activations, Keras vs deploy end to end:")
            for s in self.signs:
                tie = f" ({s.ties} float32 ties)" if s.ties else ""
                lines.append(f"  {s.layer:28s} {s.differing} of {s.bits} signs differ{tie}")
        if self.codes:
            lines.append("k-bit activations, Keras vs deploy end to end:")
            for c in self.codes:
                tie = f" ({c.ties} float32 ties)" if c.ties else ""
                lines.append(f"  {c.layer:28s} {c.differing} of {c.values} {c.width}-bit codes differ{tie}")
        for label, checks in (("Keras ~ deploy", self.deploy), ("Keras ~ reference (stock int8)", self.reference)):
            if checks is None:
                continue
            for c in checks:
                accuracy = f", accuracy {100 * c.accuracy:.2f} %" if c.accuracy is not None else ""
                lines.append(
                    f"{label} [{c.name}]: argmax agreement {100 * c.argmax_agreement:.2f} %, output error "
                    f"max {c.max_error_lsb:.2f} LSB, mean {c.mean_error_lsb:.3f} LSB{accuracy}"
                )
        if self.keras_accuracy is not None:
            lines.append(f"Keras accuracy {100 * self.keras_accuracy:.2f} %")
        return "\n".join(lines)


# --- arguments -------------------------------------------------------------------


def _check_arguments(samples, labels, min_argmax_agreement, max_error_lsb, input_count,
                     class_count: Optional[int] = None):
    arrays = list(samples) if isinstance(samples, (list, tuple)) else [samples]
    try:
        arrays = [np.asarray(a, dtype=np.float32) for a in arrays]
    except (TypeError, ValueError) as error:
        raise ValueError(f"verify: samples must be numeric arrays [n, ...] ({error})") from error
    if len(arrays) != input_count:
        raise ValueError(f"verify: the model has {input_count} inputs, got {len(arrays)} sample arrays")
    count = len(arrays[0]) if arrays[0].ndim >= 1 else 0
    if count == 0 or any(a.ndim < 2 or len(a) != count for a in arrays):
        raise ValueError(
            "verify: samples must be an array [n, ...] (a list of them for several inputs) with "
            f"n >= 1 and the same n for every input, got shapes {[a.shape for a in arrays]}"
        )
    for index, array in enumerate(arrays):
        if not np.all(np.isfinite(array)):
            raise ValueError(
                f"verify: samples (input {index}) hold {int(np.sum(~np.isfinite(array)))} NaN or "
                "infinite values; neither model has a defined output for them: drop those samples"
            )
    if labels is not None:
        labels = _check_labels(labels, count, class_count)
    if min_argmax_agreement is not None:
        if isinstance(min_argmax_agreement, bool) or not isinstance(min_argmax_agreement, (int, float)) \
                or not 0.0 <= float(min_argmax_agreement) <= 1.0:
            raise ValueError(
                "verify: min_argmax_agreement must be a fraction in [0, 1] (e.g. 0.99 for 99 %) or "
                f"None, got {min_argmax_agreement!r}"
            )
    if max_error_lsb is not None and (isinstance(max_error_lsb, bool) or not isinstance(max_error_lsb, (int, float))
                                      or not 0 <= float(max_error_lsb) < np.inf):
        raise ValueError(f"verify: max_error_lsb must be a number >= 0 (output LSBs) or None, got {max_error_lsb!r}")
    return arrays, labels


def _check_labels(labels, count: int, class_count: Optional[int]) -> np.ndarray:
    """Labels as int64 class indices [count]: shape [n] or [n, 1], whole numbers in
    [0, class_count)."""
    fix = f"labels must hold one class index per sample (shape [{count}], integers"
    fix += f" 0..{class_count - 1})" if class_count else ")"
    try:
        array = np.asarray(labels)
    except (TypeError, ValueError) as error:
        raise ValueError(f"verify: labels are not an array ({error}); {fix}") from error
    if array.ndim == 2 and array.shape[1] > 1 and array.shape[0] == count:
        raise ValueError(
            f"verify: labels of shape {list(array.shape)} look one-hot; {fix}: pass "
            "labels.argmax(axis=1)"
        )
    if array.ndim == 2 and array.shape[1] == 1:
        array = array[:, 0]
    if array.ndim != 1:
        raise ValueError(f"verify: labels of shape {list(array.shape)}; {fix}")
    if len(array) != count:
        raise ValueError(f"verify: {len(array)} labels for {count} samples; {fix}")
    numeric = np.issubdtype(array.dtype, np.integer) or (
        np.issubdtype(array.dtype, np.floating) and bool(np.all(np.isfinite(array)))
        and bool(np.all(array == np.round(array))))
    if not numeric:
        raise ValueError(f"verify: labels of dtype {array.dtype} are not whole numbers; {fix}")
    array = array.astype(np.int64)
    if class_count and (array.min() < 0 or array.max() >= class_count):
        raise ValueError(
            f"verify: labels range over {array.min()}..{array.max()} but output 0 has {class_count} "
            f"classes; {fix}"
        )
    return array


def _class_count(model) -> Optional[int]:
    """The number of values of the Keras model's output 0 (what labels index)."""
    dims = tuple(model.outputs[0].shape[1:])
    return int(np.prod(dims)) if dims and all(d is not None for d in dims) else None


# --- Keras side ------------------------------------------------------------------


def _probe(model, names: Sequence[str], arrays) -> Dict[str, np.ndarray]:
    """Keras outputs of the layers ``names`` and the model outputs ("__output_i")."""
    layers = [model.get_layer(name) for name in names]
    outputs = [layer.output for layer in layers] + list(model.outputs)
    probe = tf.keras.Model(model.inputs, outputs)
    values = probe.predict(arrays if len(arrays) > 1 else arrays[0], verbose=0, batch_size=128)
    if not isinstance(values, list):
        values = [values]
    result = {name: np.asarray(v) for name, v in zip(names, values)}
    for index, value in enumerate(values[len(names):]):
        result[f"__output_{index}"] = np.asarray(value)
    return result


def apply_steps(plan: P.LayerPlan, values: np.ndarray, after: int, only=None) -> np.ndarray:
    """The chain's elementwise steps with index > ``after`` on Keras layer outputs
    (the layer's own activation is part of its output already; pools and flatten
    act on several pixels and are skipped: the result is per pixel)."""
    tensor = tf.constant(np.asarray(values, dtype=np.float32))
    for index, step in enumerate(plan.chain):
        if index <= after or step.kind != P.ELEMENTWISE or step.own_activation:
            continue
        if only is not None and step not in only:
            continue
        tensor = step.function(tensor)
    return np.asarray(tensor)


def _locate(plans: P.Plans, layer: str):
    """(plan, chain index) of a Keras layer a packed tensor is named after: the
    planned layer itself (-1) or one of its chain steps; (None, -1) otherwise."""
    for plan in plans:
        if plan.name == layer:
            return plan, -1
        for index, step in enumerate(plan.chain):
            if step.name == layer:
                return plan, index
    return None, -1


def _ties(values: np.ndarray) -> np.ndarray:
    """Where |value| is within TIE_TOLERANCE of each channel's largest |value|."""
    flat = np.abs(values.reshape(-1, values.shape[-1]))
    peak = flat.max(axis=0)
    return (np.abs(values) <= TIE_TOLERANCE * np.maximum(peak, np.finfo(np.float32).tiny))


# --- the checks ------------------------------------------------------------------


def verify(model, deploy, samples, *, labels=None, reference=None,
           min_argmax_agreement: Optional[float] = 0.99,
           max_error_lsb: Optional[float] = None,
           progress: Optional[Callable[[str], None]] = None) -> VerifyReport:
    """Check the deploy model against the Keras model on ``samples``.

    Args:
        model: the Keras model that was converted.
        deploy: the deploy flatbuffer (``convert_keras_model``): bytes, bytearray,
            memoryview or the path of a .tflite file.
        samples: float inputs [n, ...] of the Keras model (a list of arrays for
            several inputs), in the range it was trained on.
        labels: optional int labels [n] (or [n, 1]): accuracies are reported.
        reference: optional reference flatbuffer (``custom_ops=False``, same types
            as ``deploy``): Keras vs reference is reported beside Keras vs deploy.
        min_argmax_agreement: float in [0, 1], default 0.99: fail if Keras and the
            deploy model agree on the argmax of output 0 on fewer than this
            fraction of samples; None reports only.
        max_error_lsb: float or None (default): fail if Keras and deploy outputs
            differ by more output LSBs.
        progress: called with one line of text per chunk of samples run (and
            before the reference model runs), e.g. ``print``; None (default): silent.

    Returns:
        A ``VerifyReport`` (``print`` it for the table).

    Raises:
        VerificationError: naming the op, layer, tensor and difference: weights that
            differ from the Keras kernel, a TFQP op that does not compute what its
            Keras layer computes on its own input, inputs or outputs other than the
            Keras model's, or a bound missed.
        ModelError: a malformed deploy or reference model (naming the tensor or op),
            or the two passed in swapped order.
        ValueError: malformed arguments.
    """
    from tfq_plus.converters.planning import plan as make_plans

    deploy, reference = _checked_models(deploy, reference)
    interpreter = Interpreter(deploy, keep_tensors=True)
    _check_interface("deploy", model, interpreter)
    arrays, labels = _check_arguments(samples, labels, min_argmax_agreement, max_error_lsb,
                                      len(interpreter.input_details), _class_count(model))
    plans = make_plans(model)
    model_ir = interpreter.model
    graph = model_ir.subgraphs[0]
    views = [OpView(model_ir, i) for i, op in enumerate(graph.operators)
             if is_tfqp(schema.op_name(model_ir, op)) or _int4_builtin(model_ir, op)]
    weights_checked = _check_weights(views, plans)
    twins = _stock_twins(views, plans, reference) if reference is not None else {}
    # the samples in the deploy model's input order (Keras order is the signature's)
    graph_arrays = [None] * len(arrays)
    for array, position in zip(arrays, interpreter.input_order):
        graph_arrays[position] = array
    for array, details in zip(graph_arrays, interpreter.input_details):
        if tuple(array.shape[1:]) != tuple(details["shape"][1:]):
            raise ValueError(
                f"verify: samples of shape {array.shape[1:]} do not fit model input {details['name']!r} "
                f"of shape {tuple(details['shape'][1:])}"
            )

    # Run both models chunk by chunk (memory stays bounded on 10,000 samples),
    # keeping what the checks read.
    watched = set()
    for view in views:
        watched.update(int(t) for t in view.op.inputs if t >= 0)
        watched.update(int(t) for t in view.op.outputs)
    for index, tensor in enumerate(graph.tensors):
        if parse_tensor_name(schema.tensor_name(tensor)) is not None:
            watched.add(index)
    watched = {t for t in watched if schema.constant(model_ir, graph.tensors[t]) is None}
    layer_names = {layer.name for layer in model.layers}
    names = sorted({parsed[0] for parsed in (parse_tensor_name(schema.tensor_name(t)) for t in graph.tensors)
                    if parsed is not None and parsed[0] in layer_names})
    quantized = [interpreter.quantize(a, i) for i, a in enumerate(graph_arrays)]
    count = len(arrays[0])
    op_checks: List[OpCheck] = []
    sign_checks: List[SignCheck] = []
    code_checks: List[CodeCheck] = []
    outputs = [[] for _ in interpreter.output_details]
    keras_outputs = [[] for _ in interpreter.output_details]
    for start in range(0, count, CHUNK):
        stop = min(start + CHUNK, count)
        if progress is not None:
            progress(f"deploy model and Keras on samples {start + 1}-{stop} of {count}")
        kept: Dict[int, List[np.ndarray]] = {t: [] for t in watched}
        for sample in range(start, stop):
            try:
                result = interpreter.invoke([q[sample:sample + 1] for q in quantized])
            except ValueError as error:
                raise VerificationError(f"the deploy model fails on sample {sample}: {error}") from error
            for store, value in zip(outputs, result):
                store.append(value)
            for tensor in watched:
                kept[tensor].append(interpreter.tensor(tensor))
        values = {t: np.concatenate(v) for t, v in kept.items() if v}
        keras = _probe(model, names, [a[start:stop] for a in arrays])
        for store, index in zip(keras_outputs, range(len(keras_outputs))):
            store.append(keras[f"__output_{index}"])
        chunk_checks = []
        for view in views:
            chunk_checks.append(_check_op(view, plans, values))
            if view.index in twins:
                chunk_checks.append(_check_stock_bytes(view, twins[view.index], values))
        op_checks = _merge(op_checks, chunk_checks)
        sign_checks = _merge(sign_checks, _check_signs(graph, plans, values, keras))
        code_checks = _merge(code_checks, _check_codes(graph, plans, values, keras))
    deploy_outputs = [np.concatenate(o) for o in outputs]
    keras_outputs = [np.concatenate(o) for o in keras_outputs]
    deploy_checks = _check_outputs(interpreter, keras_outputs, deploy_outputs, labels)
    reference_checks = None
    if reference is not None:
        details = _Details(reference.model)
        _check_interface("reference", model, details)
        if progress is not None:
            progress(f"the reference model on the {count} samples (TFLite Micro)")
        reference_outputs = _run_reference(reference.runtime_bytes, arrays, details)
        reference_checks = _check_outputs(details, keras_outputs, reference_outputs, labels)
    keras_accuracy = None
    if labels is not None:
        keras_accuracy = float(np.mean(np.argmax(keras_outputs[0].reshape(count, -1), 1) == labels))
    report = VerifyReport(count, weights_checked, op_checks, sign_checks, deploy_checks,
                          reference_checks, keras_accuracy, code_checks)
    failing = [c for c in op_checks if c.exact and c.differing]
    if failing:
        c = failing[0]
        raise VerificationError(
            f"deploy op {c.index} ({c.op}, Keras layer {c.layer!r}) does not compute what Keras "
            f"computes on its own input: {c.differing} of {c.compared} values differ ({c.detail})\n{report}"
        )
    headline = deploy_checks[0]
    if min_argmax_agreement is not None and headline.argmax_agreement < float(min_argmax_agreement):
        raise VerificationError(
            f"Keras and the deploy model agree on the argmax of only {100 * headline.argmax_agreement:.2f} % "
            f"of {count} samples; min_argmax_agreement (--min-agreement) requires "
            f"{100 * float(min_argmax_agreement):.2f} %\n{report}"
        )
    if max_error_lsb is not None and headline.max_error_lsb > float(max_error_lsb):
        raise VerificationError(
            f"Keras and deploy outputs differ by up to {headline.max_error_lsb:.2f} LSB "
            f"(max_error_lsb allows {max_error_lsb})\n{report}"
        )
    return report


def _checked_models(deploy, reference):
    """The deploy and reference models checked (``model_check``): a reference of
    builtin ops only, and a deploy model that is not the reference of the two."""
    deploy = check_model(deploy, argument="deploy", runtime=TFLITE_MICRO_RUNTIME)
    if reference is None:
        return deploy, None
    reference = check_model(reference, argument="reference", runtime=TFLITE_MICRO_RUNTIME)
    tfqp_ops = {label: [i for i, op in enumerate(checked.model.subgraphs[0].operators)
                        if schema.is_custom(checked.model, op)]
                for label, checked in (("deploy", deploy), ("reference", reference))}
    if tfqp_ops["reference"]:
        swapped = "" if tfqp_ops["deploy"] else (
            "; the deploy model has none: deploy and reference were passed in swapped order (verify(model, "
            "deploy, samples, reference=reference); on the command line DEPLOY before REFERENCE)")
        raise ModelError(f"{reference.label}: has {len(tfqp_ops['reference'])} TFQP ops, but the reference model "
                         f"has builtin ops only{swapped}", MODEL)
    return deploy, reference


def _check_interface(which: str, model, source):
    """The flatbuffer's inputs and outputs (in the signature's order) are the Keras
    model's, one sample at a time."""
    ends = (("input", model.inputs, source.input_details, source.input_order),
            ("output", model.outputs, source.output_details, source.output_order))
    for kind, keras, details, order in ends:
        if len(keras) != len(details):
            raise VerificationError(f"the {which} model has {len(details)} {kind}s, the Keras model "
                                    f"{len(keras)}: is the {which} model a conversion of this Keras model?")
        for position, tensor in enumerate(keras):
            shape = [int(d) for d in details[order[position]]["shape"]]
            expected = list(tensor.shape[1:])
            fits = shape[:1] == [1] and len(shape) == len(expected) + 1 and all(
                d is None or d == got for d, got in zip(expected, shape[1:]))
            if not fits:
                raise VerificationError(
                    f"the {which} model's {kind} {details[order[position]]['name']!r} has shape {shape}; the Keras "
                    f"model's {kind} {position}, one sample at a time, {[1] + expected}: is the {which} model a "
                    "conversion of this Keras model?")


def _merge(total: list, chunk: list) -> list:
    """Per-op / per-tensor counts of two chunks added (max errors kept)."""
    if not total:
        return chunk
    merged = []
    for a, b in zip(total, chunk):
        fields = a._asdict()
        for key in ("compared", "differing", "ties", "bits", "values"):
            if key in fields:
                fields[key] = getattr(a, key) + getattr(b, key)
        if "detail" in fields and b.detail != a.detail:
            fields["detail"] = _worse(a.detail, b.detail)
        merged.append(type(a)(**fields))
    return merged


def _worse(a: str, b: str) -> str:
    """Of two details "... max error X unit", the one with the larger X."""
    def error(text):
        try:
            return float(text.split("max error ")[1].split()[0])
        except (IndexError, ValueError):
            return -1.0
    return a if error(a) >= error(b) else b


def _int4_builtin(model, op) -> bool:
    """A builtin CONV_2D / DEPTHWISE_CONV_2D / FULLY_CONNECTED with an INT4 filter
    (``patterns.int4``: a 4-bit uniform kernel)."""
    return (not schema.is_custom(model, op) and schema.builtin_code(model, op) in INT4_BUILTINS
            and len(op.inputs) > 1 and op.inputs[1] >= 0
            and model.subgraphs[0].tensors[op.inputs[1]].type == schema.TensorType.INT4)


def _weights_position(view: OpView) -> int:
    return view.spec.weights_input if view.spec is not None else 1  # a builtin op's filter


def _plan_of_weights(view: OpView, plans: P.Plans) -> P.LayerPlan:
    name = schema.tensor_name(view.tensor(_weights_position(view)))
    parts = name.split("/")
    plan = plans.layers.get(parts[1]) if len(parts) == 3 and parts[0] == "tfqp" else None
    if plan is None:
        raise VerificationError(
            f"deploy op {view.index} ({view.name}): its weights {name!r} belong to no layer the Keras "
            "model deploys as a TFQP op: is the deploy model a conversion of this Keras model?"
        )
    return plan


def _keras_codes(view: OpView, plan: P.LayerPlan, codes: np.ndarray) -> np.ndarray:
    """The op's unpacked weight codes in the Keras kernel's layout (a dense layer
    reading a padded flatten sees padding positions, dropped here)."""
    expected = plan.kernel.codes
    if codes.shape == expected.shape:
        return codes
    if plan.op == "dense":
        from tfq_plus.converters.patterns.binary import keras_codes
        from tfq_plus.converters.patterns.context import PaddedFlatten

        shape = plan.layer.input_shape
        source = plan.layer
        flatten_input = None
        producer = getattr(source, "inbound_nodes", [None])[0]
        if producer is not None:
            inbound = producer.inbound_layers
            inbound = inbound[0] if isinstance(inbound, list) else inbound
            flatten_input = getattr(inbound, "input_shape", None)
        if flatten_input is not None and len(flatten_input) == 4:
            _, h, w, c = flatten_input
            return keras_codes(codes, PaddedFlatten(h, w, c))
        raise VerificationError(f"deploy op {view.index}: weights of shape {codes.shape}, Keras {shape}")
    return codes


def _check_shift_weights(view: OpView, plan: P.LayerPlan) -> None:
    """The op's codes decoded through its table, times the plan's per-(class,
    channel) scales, equal Keras's quantized kernel exactly (float32), or within the
    plan's tolerance for a uniform grid Keras rounds twice (``uniform_codes``)."""
    expected = plan.kernel.shift
    weights = shift_ops.class_weights(view)
    if weights.shape[0] != expected.scales.shape[0] or weights.shape[1:] != expected.values.shape:
        raise VerificationError(
            f"deploy op {view.index} ({view.name}, Keras layer {plan.name!r}): its codes decode to "
            f"{weights.shape[0]} classes of {weights.shape[1:]} weights; Keras's kernel has "
            f"{expected.scales.shape[0]} classes of {expected.values.shape}"
        )
    if expected.tolerance:
        differ = uniform_codes.differing(weights, expected.scales, expected.values, expected.tolerance)
    else:
        differ = shift_codes.kernel_values(weights, expected.scales) != expected.values
    if np.any(differ):
        channel = int(np.argmax(differ.any(axis=1)))
        raise VerificationError(
            f"deploy op {view.index} ({view.name}, Keras layer {plan.name!r}): its weights are not the "
            f"Keras kernel: {int(np.count_nonzero(differ))} weights differ, first in output channel {channel}"
        )


def _check_int4_weights(view: OpView, plan: P.LayerPlan) -> None:
    """The builtin op's INT4 filter holds the Keras kernel's integer levels, each
    channel's negated where its folded BatchNorm's slope is negative."""
    table = plan.kernel.shift.table
    # the levels over their common factor (uniform_codes stores them times a power of two)
    common = int(np.gcd.reduce(np.abs(table[0]).astype(np.int64))) or 1
    expected = shift_codes.decode(plan.kernel.shift.codes, table, 1)[0] // common
    filters = np.asarray(view.constant(1), np.int64)
    if plan.op == P.DEPTHWISE:
        rows = filters.reshape(-1, filters.shape[-1]).T
    else:
        rows = filters.reshape(len(filters), -1)
    if rows.shape != expected.shape:
        raise VerificationError(
            f"deploy op {view.index} ({view.name}, Keras layer {plan.name!r}): its INT4 filter holds "
            f"{rows.shape} weights; Keras's kernel has {expected.shape}")
    differ = np.minimum(np.count_nonzero(rows != expected, axis=1), np.count_nonzero(rows != -expected, axis=1))
    if np.any(differ):
        raise VerificationError(
            f"deploy op {view.index} ({view.name}, Keras layer {plan.name!r}): its weights are not the "
            f"Keras kernel: {int(differ.sum())} weights differ, first in output channel {int(np.argmax(differ > 0))}")


def _check_weights(views: List[OpView], plans: P.Plans) -> int:
    checked = 0
    for view in views:
        if view.spec is None:
            _check_int4_weights(view, _plan_of_weights(view, plans))
            checked += 1
            continue
        if view.spec.weights_input is None:
            continue
        plan = _plan_of_weights(view, plans)
        if plan.kernel.shift is not None:
            _check_shift_weights(view, plan)
            checked += 1
            continue
        codes = _keras_codes(view, plan, view.spec.unpack_weights(view))
        expected = plan.kernel.codes
        if codes.shape != expected.shape or not np.array_equal(codes, expected):
            if codes.shape != expected.shape:
                detail = f"shape {codes.shape}, Keras {expected.shape}"
            else:
                differ = codes != expected
                channel = int(np.argmax(differ.reshape(len(differ), -1).any(axis=1)))
                detail = f"{int(np.count_nonzero(differ))} weights differ, first in output channel {channel}"
            raise VerificationError(
                f"deploy op {view.index} ({view.name}, Keras layer {plan.name!r}): its weights are not the "
                f"Keras kernel: {detail}"
            )
        checked += 1
    return checked


def _layer_input(view: OpView, values, plan: P.LayerPlan) -> np.ndarray:
    """The op's input as the Keras layer takes it: +-1 floats or dequantized int8."""
    tensor = view.tensor(0)
    data = values[int(view.op.inputs[0])]
    keras_shape = tuple(plan.layer.input_shape[1:])
    if view.options.get("input_bits"):  # packed k-bit codes, read as u - input_code_zero
        codes = packing.unpack_kbit_activations(data, view.options["input_bits"],
                                                view.options["channels_in"])
        scale = np.float32(schema.per_tensor_quantization(tensor)[0])
        real = (codes.astype(np.float32) - np.float32(view.options.get("input_code_zero", 0))) * scale
        return real.reshape((len(real),) + keras_shape)
    if tensor.type == schema.TensorType.INT32:
        channels = view.options["channels_in"]
        bits = packing.unpack_bits(data, channels)
        if bits.shape[1:] != keras_shape:
            from tfq_plus.converters.patterns.context import PaddedFlatten

            flatten = plan.layer.inbound_nodes[0].inbound_layers
            flatten = flatten[0] if isinstance(flatten, list) else flatten
            _, h, w, c = flatten.input_shape
            layout = PaddedFlatten(h, w, c)
            bits = bits.reshape(len(bits), h * w, 32 * layout.words)[:, :, :c].reshape(len(bits), -1)
        return np.where(bits, -1.0, 1.0).astype(np.float32)
    scale, zero_point = schema.per_tensor_quantization(tensor)
    real = (data.astype(np.float32) - np.float32(zero_point)) * np.float32(scale)
    if plan.input == P.SIGNS:  # the stock +-1 tensor of a binarization (a shift op's input)
        real = np.where(real < 0, -1.0, 1.0).astype(np.float32)
    return real.reshape((len(real),) + keras_shape)


def _check_op(view: OpView, plans: P.Plans, values) -> OpCheck:
    output_tensor = view.tensor(0, output=True)
    output = values[int(view.op.outputs[0])]
    if view.spec is not None and view.spec.policy == BOOLEAN:
        got = output
        source = values[int(view.op.inputs[0])]
        if view.name == maxpool.BMAXPOOL2D.name:
            expected = maxpool.reference(view, source)
        elif view.name == sign_ops.BINARIZE.name:
            tensor = view.tensor(0)
            zero_point = 0
            if tensor.type == schema.TensorType.INT8:
                zero_point = schema.per_tensor_quantization(tensor)[1]
            expected = sign_ops.binarize_reference(source, zero_point)
        elif view.name == kbit_ops.MAX_POOL_CODES.name:
            expected = kbit_ops.max_pool_codes_reference(view, source)
        elif view.name == kbit_ops.UNPACK_CODES.name:
            expected = kbit_ops.unpack_codes_reference(
                view, source, schema.per_tensor_quantization(output_tensor)[1])
        else:
            expected = sign_ops.unpack_reference(view, source)
        differing = int(np.count_nonzero(got != expected))
        layer = (parse_tensor_name(schema.tensor_name(output_tensor)) or ("", ""))[0]
        return OpCheck(view.index, view.name, layer, BOOLEAN, int(got.size), differing, 0, True,
                       "" if not differing else "differs from its numpy definition")
    plan = _plan_of_weights(view, plans)
    x = _layer_input(view, values, plan)
    layer_output = np.asarray(plan.layer(tf.constant(x), training=False))
    int32_output = view.options.get("int32_output", 0) == 1
    if view.options.get("output_levels", 0):
        keras = apply_steps(plan, layer_output, -1)
        codes = _codes_as_int8(plan.output_grid, output, view.options.get("output_bits", 0),
                               keras.shape[-1])
        differ, ties = _compare_codes(plan.output_grid, codes, keras)
        return OpCheck(view.index, view.name, plan.name, KERAS_CODES, int(codes.size),
                       int(np.count_nonzero(differ & ~ties)), int(np.count_nonzero(ties)), plan.exact,
                       f"{plan.output_grid.bits}-bit codes")
    if output_tensor.type == schema.TensorType.INT32 and not int32_output:
        keras = apply_steps(plan, layer_output, -1)
        bits = packing.unpack_bits(output, keras.shape[-1])
        expected = keras < 0
        differ = bits != expected
        ties = differ & _ties(keras)
        return OpCheck(view.index, view.name, plan.name, KERAS_SIGNS, int(bits.size),
                       int(np.count_nonzero(differ & ~ties)), int(np.count_nonzero(ties)), plan.exact,
                       "packed signs")
    scale, zero_point = schema.per_tensor_quantization(output_tensor)
    if int32_output:
        keras = apply_steps(plan, layer_output, -1).astype(np.float64)
        if len(view.op.inputs) > 3 and view.op.inputs[3] >= 0:
            keras = keras + values[int(view.op.inputs[3])].astype(np.float64) * float(scale)
        got = output.astype(np.float64) * float(scale)
        # the stream's resolution, the int32 rounding of each term, and float32's
        # rounding of the terms Keras adds (relative to the channel's magnitudes)
        peak = np.abs(keras.reshape(-1, keras.shape[-1])).max(axis=0)
        tolerance = 4 * float(scale) + 2.0**-20 * peak
        differ = np.abs(got - keras) > tolerance
        error = float(np.max(np.abs(got - keras) / float(scale))) if got.size else 0.0
        return OpCheck(view.index, view.name, plan.name, KERAS_VALUES_INT32, int(got.size),
                       int(np.count_nonzero(differ)), 0, plan.exact, f"int32 values, max error {error:.1f} units")
    writes_output = int(view.op.outputs[0]) in [int(t) for t in view.graph.outputs]
    folded = [s for s in plan.chain if s.kind == P.ELEMENTWISE and not s.own_activation
              and (writes_output or _names(output_tensor, s.name))]
    keras = apply_steps(plan, layer_output, -1, only=folded).astype(np.float64)
    got = (output.astype(np.float64) - zero_point) * float(scale)
    error = np.abs(got - keras) / float(scale)
    act_min = view.options.get("act_min", view.options.get("activation_min", -128))
    act_max = view.options.get("act_max", view.options.get("activation_max", 127))
    clamped = ((output == act_min) & (keras <= got)) | ((output == act_max) & (keras >= got))
    # half an output step, the fixed-point multiply's second rounding, float32's
    # rounding of Keras's value; a shift op's bias is rounded to a unit of its
    # accumulator too: within one step
    coded = plan.kernel.kind == P.SHIFT_KERNEL  # a coded op, or a builtin op with an INT4 filter
    rounding = 1.0 if coded else 0.5 + 2.0**-8
    differ = (error > rounding + 2.0**-20 * np.abs(keras) / float(scale)) & ~clamped
    policy = KERAS_VALUES_SHIFT if coded else KERAS_VALUES_INT8
    return OpCheck(view.index, view.name, plan.name, policy, int(got.size),
                   int(np.count_nonzero(differ)), 0, plan.exact,
                   f"int8 values, max error {float(np.max(np.where(clamped, 0, error))):.3f} LSB")


def _stock_twins(views: List[OpView], plans: P.Plans, reference) -> Dict[int, MicroInterpreter]:
    """Deploy op index -> TFLite Micro running the reference's op of the same layer
    alone, for the shift ops that compute the stock op's bytes (``stock_identity``:
    the stock filter holds their weights and their transform is the stock op's)."""
    from tfq_plus.converters.graph import Graph
    from tfq_plus.converters.interpreter import _one_op_model
    from tfq_plus.converters.patterns.context import Context

    model = schema.read(reference.data)  # a tree of its own: Graph and Context index it
    graph = Graph(model)
    context = Context(graph, plans, {})
    twins = {}
    for view in views:
        if view.name not in SHIFT_OPS or view.output_type() != schema.TensorType.INT8:
            continue
        plan = _plan_of_weights(view, plans)
        try:
            anchor = context.anchor(plan)
        except ValueError:
            continue
        weights = shift_ops.class_weights(view)
        rows = None if len(weights) != 1 else stock_identity.stock_rows(
            model, model.subgraphs[0], graph.ops[anchor], plan, weights[0])
        if rows is not None and np.array_equal(rows, view.constant(3)):
            twins[view.index] = MicroInterpreter(_one_op_model(model, graph.ops[anchor]))
    return twins


def _check_stock_bytes(view: OpView, twin: MicroInterpreter, values) -> OpCheck:
    """The stock op run alone on the deploy op's own input gives the same bytes."""
    source = values[int(view.op.inputs[0])]
    got = values[int(view.op.outputs[0])]
    expected = np.concatenate([twin.invoke([source[i:i + 1]])[0] for i in range(len(source))])
    differing = int(np.count_nonzero(got != expected.reshape(got.shape)))
    layer = schema.tensor_name(view.tensor(1)).split("/")[1]
    return OpCheck(view.index, view.name, layer, STOCK_BYTES, int(got.size), differing, 0, True,
                   "byte-identical with the stock op" if not differing else "differs from the stock op's bytes")


def _names(tensor, layer: str) -> bool:
    name = schema.tensor_name(tensor)
    return any(layer in piece.split("/")[1:] for piece in name.split(";"))


def _unpack_like(packed: np.ndarray, reference: np.ndarray, plan, position: int):
    """Packed signs in the layout of the Keras tensor ``reference`` (a flatten of
    C % 32 != 0 channels keeps each pixel's padding bits: dropped here)."""
    channels = reference.shape[-1]
    words = -(-channels // 32)
    if packed.shape[-1] == words:
        bits = packing.unpack_bits(packed, channels)
        return bits if bits.shape == reference.shape else None
    if plan is not None and position >= 0 and plan.chain[position].kind == P.FLATTEN:
        _, h, w, c = plan.chain[position].layer.input_shape
        pixel_words = -(-c // 32)
        bits = packing.unpack_bits(packed, packed.shape[-1] * 32)
        bits = bits.reshape(len(bits), h * w, 32 * pixel_words)[:, :, :c].reshape(len(bits), -1)
        return bits if bits.shape == reference.shape else None
    return None


def _check_signs(graph, plans: P.Plans, values, keras) -> List[SignCheck]:
    checks = []
    for index, tensor in enumerate(graph.tensors):
        parsed = parse_tensor_name(schema.tensor_name(tensor))
        if parsed is None or parsed[1] != SIGNS or index not in values or parsed[0] not in keras:
            continue
        layer = parsed[0]
        plan, position = _locate(plans, layer)
        reference = keras[layer]
        if plan is not None:
            reference = apply_steps(plan, reference, position)
        bits = _unpack_like(values[index], reference, plan, position)
        if bits is None:
            continue
        expected = reference < 0
        differ = bits != expected
        ties = differ & _ties(reference)
        checks.append(SignCheck(schema.tensor_name(tensor), layer, int(bits.size),
                                int(np.count_nonzero(differ & ~ties)), int(np.count_nonzero(ties))))
    return checks


def _code_ties(grid, values: np.ndarray) -> np.ndarray:
    """Where Keras's value is within float32 rounding (TIE_TOLERANCE x the channel's
    largest |value|) of a boundary between two codes of ``grid``."""
    flat = np.abs(values.reshape(-1, values.shape[-1]))
    peak = np.maximum(flat.max(axis=0), np.finfo(np.float32).tiny)
    step = float(grid.step)
    position = values.astype(np.float64) / step  # the code is round(position) - offset
    distance = np.abs(position - np.floor(position) - 0.5) * step
    return distance <= TIE_TOLERANCE * peak


def _codes_as_int8(grid, data: np.ndarray, bits: int, channels: int) -> np.ndarray:
    """A codes tensor's int8 q = base + u: the tensor itself, or its packed codes
    (``bits`` 2 or 4, ``packed_activations``) unpacked to ``channels`` per row."""
    if not bits:
        return data
    return packing.unpack_kbit_activations(data, bits, channels).astype(np.int64) + grid.base


def _compare_codes(grid, output: np.ndarray, keras: np.ndarray):
    """(differ, ties) of an int8 codes tensor against Keras's float32 values."""
    expected = grid.codes(keras).reshape(output.shape)
    got = output.astype(np.int64) - grid.base
    differ = got != expected
    return differ, differ & _code_ties(grid, keras).reshape(output.shape)


def _check_codes(graph, plans: P.Plans, values, keras) -> List[CodeCheck]:
    checks = []
    for index, tensor in enumerate(graph.tensors):
        parsed = parse_tensor_name(schema.tensor_name(tensor))
        if parsed is None or parsed[1] != CODES or index not in values or parsed[0] not in keras:
            continue
        layer = parsed[0]
        plan, position = _locate(plans, layer)
        if plan is None or plan.output_grid is None:
            continue
        reference = apply_steps(plan, keras[layer], position)
        codes = values[index]
        if tensor.type == schema.TensorType.INT32:  # packed (packed_activations)
            codes = _codes_as_int8(plan.output_grid, codes, storage_bits(plan.output_grid.levels),
                                   reference.shape[-1])
        if reference.size != codes.size:
            continue
        differ, ties = _compare_codes(plan.output_grid, codes, reference)
        checks.append(CodeCheck(schema.tensor_name(tensor), layer, plan.output_grid.bits, int(differ.size),
                                int(np.count_nonzero(differ & ~ties)), int(np.count_nonzero(ties))))
    return checks


class _Details:
    """Input / output details and signature orders of a builtin-only model."""

    def __init__(self, model):
        from tfq_plus.converters.interpreter import _signature_order, tensor_details

        graph = model.subgraphs[0]
        self.input_details = [tensor_details(model, int(t)) for t in graph.inputs]
        self.output_details = [tensor_details(model, int(t)) for t in graph.outputs]
        self.input_order = _signature_order(model, self.input_details, "inputs")
        self.output_order = _signature_order(model, self.output_details, "outputs")

    def dequantize(self, values, position: int = 0):
        details = self.output_details[position]
        if details["dtype"] == np.float32:
            return np.asarray(values, np.float32)
        scale, zero_point = details["quantization"]
        return ((np.asarray(values, np.float64) - zero_point) * scale).astype(np.float32)


def _run_reference(flatbuffer: bytes, arrays, order: "_Details") -> List[np.ndarray]:
    """The reference's raw outputs (graph order) for Keras-ordered float inputs."""
    try:
        micro = MicroInterpreter(flatbuffer)
    except ModelError as error:
        raise ModelError(f"reference: {error}", error.check) from error
    graph_arrays = [None] * len(arrays)
    for array, position in zip(arrays, order.input_order):
        graph_arrays[position] = array
    quantized = []
    for array, details in zip(graph_arrays, micro.inputs):
        if details["dtype"] == np.float32:
            quantized.append(array)
        else:
            scale, zero_point = details["quantization"]
            quantized.append(quantize_values(array, scale, zero_point, details["dtype"]))
    outputs = [[] for _ in micro.outputs]
    for sample in range(len(arrays[0])):
        result = micro.invoke([q[sample:sample + 1] for q in quantized])
        for store, value in zip(outputs, result):
            store.append(value)
    return [np.concatenate(o) for o in outputs]


def _check_outputs(source, keras_outputs, outputs, labels) -> List[OutputCheck]:
    """Per Keras output (Keras order), the model's matching output (by signature)."""
    checks = []
    for keras_position, keras in enumerate(keras_outputs):
        position = source.output_order[keras_position]
        raw = outputs[position]
        details = source.output_details[position]
        real = source.dequantize(raw, position).astype(np.float64)
        lsb = 1.0 if details["dtype"] == np.float32 else float(details["quantization"][0])
        flat_keras = np.asarray(keras, np.float64).reshape(len(keras), -1)
        flat = real.reshape(len(real), -1)
        error = np.abs(flat_keras - flat) / lsb
        agreement = float(np.mean(np.argmax(flat_keras, 1) == np.argmax(flat, 1)))
        accuracy = None
        if labels is not None and keras_position == 0:
            accuracy = float(np.mean(np.argmax(flat, 1) == labels))
        checks.append(OutputCheck(details.get("signature_name") or details["name"], agreement, float(error.max()), float(error.mean()), accuracy))
    return checks
