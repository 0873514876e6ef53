"""The builtin ops tfq-plus runs (in TFLite Micro), and what each must satisfy.

TFLite Micro's kernels check much in their Prepare (and fail cleanly), but some
take a model's word: an input index past the op's inputs, a stride of 0 (a division
by zero), a softmax whose beta makes its multiplier <= 1 (an abort), options of
another op's type read as this op's. So every builtin op is checked here before a
runtime sees it: its arity, its options (their type, strides, windows, padding,
activation), its tensors' types, quantization where the kernel requantizes, and
the shapes the kernel assumes. An op without a rule here is refused where TFLite
Micro would run it (``check_runtime``), naming the op.
"""

import math
from typing import Callable, Dict, List, NamedTuple, Optional, Tuple

import numpy as np

from tfq_plus.converters import tflite_schema as schema
from tfq_plus.converters.model_error import OPERATORS, ModelError

Op = schema.BuiltinOperator
Options = schema.BuiltinOptions
TensorType = schema.TensorType
Activation = schema.ActivationFunctionType

# Strides, dilation factors and dilated filter extents (of builtin and TFQP ops):
# far beyond any image model, and small enough that a kernel's index arithmetic
# on them (positions, paddings, extents added and multiplied) never leaves int32.
# The same bound as TFQP_MAX_WINDOW in micro/include/tfqp/formats.h (the C ops').
MAX_WINDOW = 1 << 15
# the activations TFLite Micro's fused-activation code implements
FUSED_ACTIVATIONS = (Activation.NONE, Activation.RELU, Activation.RELU_N1_TO_1, Activation.RELU6)
QUANTIZED = (TensorType.INT8, TensorType.UINT8, TensorType.INT16)
# a convolution's or fully-connected layer's bias, by its input's type
BIAS_TYPES = {TensorType.INT8: (TensorType.INT32,), TensorType.INT16: (TensorType.INT64, TensorType.INT32),
              TensorType.FLOAT32: (TensorType.FLOAT32,)}
# TFLite Micro's softmax: beta * input scale * 2^(31 - 5) must exceed 1
# (QuantizeMultiplierGreaterThanOne)
SOFTMAX_SCALED_DIFF_BITS = 5


class BuiltinOp:
    """One builtin op of a model, as the rules read it."""

    def __init__(self, model, graph, index: int):
        self.model, self.graph, self.index = model, graph, index
        self.op = graph.operators[index]
        self.name = schema.op_name(model, self.op)
        self.where = f"op {index} ({self.name})"
        self.inputs = [int(t) for t in self.op.inputs]
        self.outputs = [int(t) for t in self.op.outputs]
        self.options = self.op.builtinOptions

    def fail(self, what: str):
        raise ModelError(f"{self.where}: {what}", OPERATORS)

    def tensor(self, position: int, output: bool = False):
        indices = self.outputs if output else self.inputs
        if position >= len(indices) or indices[position] < 0:
            return None
        return self.graph.tensors[indices[position]]

    def shape(self, position: int, output: bool = False) -> List[int]:
        tensor = self.tensor(position, output)
        return schema.shape(tensor) if tensor is not None else []

    def type(self, position: int, output: bool = False) -> Optional[int]:
        tensor = self.tensor(position, output)
        return None if tensor is None else tensor.type

    def constant(self, position: int) -> Optional[np.ndarray]:
        tensor = self.tensor(position)
        return None if tensor is None else schema.constant(self.model, tensor)

    def describe(self, position: int, output: bool = False) -> str:
        index = (self.outputs if output else self.inputs)[position]
        name = schema.tensor_name(self.graph.tensors[index])
        return f"{'output' if output else 'input'} {position} (tensor {index} {name!r})"


class Rule(NamedTuple):
    inputs: Tuple[int, int]  # the op takes from .. to inputs
    outputs: Tuple[int, int]
    options: Tuple[int, ...]  # builtin options types it accepts (NONE: no table)
    checks: Tuple[Callable[[BuiltinOp], None], ...] = ()


# --- shared checks ----------------------------------------------------------------


def _type_name(tensor_type) -> str:
    return schema.TENSOR_TYPE_NAMES.get(tensor_type, str(tensor_type))


def _require_inputs(op: BuiltinOp, count: int):
    for position in range(count):
        if op.tensor(position) is None:
            op.fail(f"input {position} is absent")


def same_types(op: BuiltinOp):
    """Every (present) value input and the output share one type."""
    types = {op.type(i) for i in range(len(op.inputs)) if op.tensor(i) is not None} | {op.type(0, True)}
    if len(types) != 1:
        op.fail(f"inputs and output must have one type, got {sorted(_type_name(t) for t in types)}")


def first_input_type_is_output_type(op: BuiltinOp):
    if op.type(0) != op.type(0, True):
        op.fail(f"{op.describe(0)} is {_type_name(op.type(0))} but the output is {_type_name(op.type(0, True))}")


def same_shape(op: BuiltinOp):
    if op.shape(0) != op.shape(0, True):
        op.fail(f"output shape {op.shape(0, True)} differs from {op.describe(0)} shape {op.shape(0)}")


def quantized_values(op: BuiltinOp):
    """Int8 / int16 inputs and outputs (not the constants) carry per-tensor
    quantization: the kernel requantizes with their scales."""
    positions = [(i, False) for i in range(len(op.inputs)) if op.tensor(i) is not None and op.constant(i) is None]
    positions += [(i, True) for i in range(len(op.outputs))]
    for position, output in positions:
        tensor = op.tensor(position, output)
        if tensor.type in QUANTIZED and schema.per_tensor_quantization(tensor) is None:
            op.fail(f"{op.describe(position, output)} is {_type_name(tensor.type)} without per-tensor "
                    "quantization (one scale and zero point)")


def fused_activation(op: BuiltinOp):
    activation = getattr(op.options, "fusedActivationFunction", Activation.NONE)
    if activation not in FUSED_ACTIVATIONS:
        op.fail(f"fused activation {activation}; TFLite Micro implements NONE, RELU, RELU_N1_TO_1 and RELU6")


def broadcast_to_output(op: BuiltinOp):
    """The value inputs broadcast (numpy's rules) to the output's shape."""
    shapes = [op.shape(i) for i in range(len(op.inputs))]
    try:
        result = list(np.broadcast_shapes(*[tuple(s) for s in shapes]))
    except ValueError:
        op.fail(f"input shapes {shapes} do not broadcast")
    if result != op.shape(0, True) or len(result) > 6:
        op.fail(f"input shapes {shapes} broadcast to {result}, but the output is {op.shape(0, True)}")


def window_problem(axis: str, filter_size: int, stride: int, dilation: int) -> Optional[str]:
    """What is wrong with one axis of a window (None: nothing): filter size, stride
    and dilation >= 1; stride, dilation and the dilated filter extent at most
    MAX_WINDOW, so that every index a kernel computes from them fits an int32."""
    if min(filter_size, stride, dilation) < 1:
        return f"{axis} filter {filter_size}, stride {stride}, dilation {dilation}: each must be >= 1"
    extent = (filter_size - 1) * dilation + 1
    if max(stride, dilation, extent) > MAX_WINDOW:
        return (f"{axis} stride {stride}, dilation {dilation}, dilated filter extent {extent}: each must be at "
                f"most {MAX_WINDOW}")
    return None


def _window(op: BuiltinOp, filter_hw, stride_hw, dilation_hw):
    """Both axes within window_problem's bounds; padding SAME / VALID."""
    for axis, filter_size, stride, dilation in zip(("height", "width"), filter_hw, stride_hw, dilation_hw):
        problem = window_problem(axis, filter_size, stride, dilation)
        if problem:
            op.fail(problem)
    if op.options.padding not in (schema.Padding.SAME, schema.Padding.VALID):
        op.fail(f"padding {op.options.padding}: must be SAME (0) or VALID (1)")


def _output_size(size: int, filter_size: int, stride: int, dilation: int, padding: int) -> int:
    extent = (filter_size - 1) * dilation + 1
    if padding == schema.Padding.SAME:
        return (size + stride - 1) // stride
    return (size - extent + stride) // stride


def _check_spatial(op: BuiltinOp, filter_hw, stride_hw, dilation_hw, channels: int):
    """The window's bounds, and the output shape it gives."""
    _window(op, filter_hw, stride_hw, dilation_hw)
    shape, output = op.shape(0), op.shape(0, True)
    if len(shape) != 4:
        op.fail(f"{op.describe(0)} has shape {shape}; it must be [batch, height, width, channels]")
    expected = [shape[0]] + [
        _output_size(shape[1 + axis], filter_hw[axis], stride_hw[axis], dilation_hw[axis], op.options.padding)
        for axis in range(2)] + [channels]
    if output != expected:
        op.fail(f"output shape {output}; input {shape} with this window gives {expected}")


def _bias(op: BuiltinOp, position: int, channels: int):
    if op.tensor(position) is None:
        return
    if op.shape(position) != [channels]:
        op.fail(f"{op.describe(position)} (the bias) has shape {op.shape(position)}; expected [{channels}]")
    if op.type(position) not in BIAS_TYPES.get(op.type(0), ()):
        op.fail(f"{op.describe(position)} (the bias) is {_type_name(op.type(position))} for "
                f"{_type_name(op.type(0))} inputs")


def _weights(op: BuiltinOp, position: int, rank: int, quantized_dimension: int, int4_per_channel: bool = True):
    """Weights: a constant of the rank, int8 (or packed int4) for int8 inputs and int8
    for int16 inputs (per-channel scales along quantized_dimension; int4 weights of a
    fully-connected layer per tensor only, as TFLite Micro and CMSIS-NN read them),
    float32 for float inputs."""
    shape = op.shape(position)
    if op.constant(position) is None or len(shape) != rank:
        op.fail(f"{op.describe(position)} (the weights) must be a constant of rank {rank}, got shape {shape}")
    expected = TensorType.FLOAT32 if op.type(0) == TensorType.FLOAT32 else TensorType.INT8
    int4 = op.type(position) == TensorType.INT4 and op.type(0) == TensorType.INT8
    if op.type(position) != expected and not int4:
        op.fail(f"{op.describe(position)} (the weights) is {_type_name(op.type(position))} for "
                f"{_type_name(op.type(0))} inputs; expected {_type_name(expected)}")
    tensor = op.tensor(position)
    params = schema.quantization(tensor)
    if expected == TensorType.INT8:
        if params is None:
            op.fail(f"{op.describe(position)} (int8 weights) has no quantization")
        if len(params[0]) > 1 and params[2] != quantized_dimension:
            op.fail(f"{op.describe(position)}: per-channel scales along dimension {params[2]}; the kernel "
                    f"reads them along dimension {quantized_dimension}")
        if int4 and len(params[0]) > 1 and not int4_per_channel:
            op.fail(f"{op.describe(position)}: int4 weights with per-channel scales; TFLite Micro reads "
                    "int4 weights of this op with one scale only")


def _value_types(op: BuiltinOp, allowed=(TensorType.INT8, TensorType.INT16, TensorType.FLOAT32)):
    if op.type(0) not in allowed or op.type(0, True) != op.type(0):
        op.fail(f"input {_type_name(op.type(0))} and output {_type_name(op.type(0, True))}: both one of "
                f"{[_type_name(t) for t in allowed]}")


# --- the ops ----------------------------------------------------------------------


def _convolution_input(op: BuiltinOp, quantized_dimension: int):
    """CONV_2D's and DEPTHWISE_CONV_2D's input and weights; (filter shape, input
    channels)."""
    _require_inputs(op, 2)
    _value_types(op)
    _weights(op, 1, 4, quantized_dimension)
    return op.shape(1), (op.shape(0)[-1] if op.shape(0) else 0)


def _convolution_output(op: BuiltinOp, filter_shape, channels_out: int):
    options = op.options
    _check_spatial(op, filter_shape[1:3], (options.strideH, options.strideW),
                   (options.dilationHFactor, options.dilationWFactor), channels_out)
    _bias(op, 2, channels_out)


def check_conv(op: BuiltinOp):
    filter_shape, channels = _convolution_input(op, 0)
    if channels % filter_shape[3] or filter_shape[0] % (channels // filter_shape[3] or 1):
        op.fail(f"{op.describe(1)} has shape {filter_shape} ([out, height, width, in]) for {channels} input "
                "channels: in must divide the input channels, and the groups the output channels")
    _convolution_output(op, filter_shape, filter_shape[0])


def check_depthwise_conv(op: BuiltinOp):
    filter_shape, channels = _convolution_input(op, 3)
    multiplier = filter_shape[3] // max(channels, 1)
    if filter_shape[0] != 1 or multiplier < 1 or filter_shape[3] != channels * multiplier \
            or op.options.depthMultiplier not in (0, multiplier):
        op.fail(f"{op.describe(1)} has shape {filter_shape} for {channels} input channels and depth "
                f"multiplier {op.options.depthMultiplier}: expected [1, height, width, channels x multiplier]")
    _convolution_output(op, filter_shape, filter_shape[3])


def check_fully_connected(op: BuiltinOp):
    _require_inputs(op, 2)
    _value_types(op)
    if op.options is not None and op.options.weightsFormat != schema.fb.FullyConnectedOptionsWeightsFormat.DEFAULT:
        op.fail(f"weights format {op.options.weightsFormat}; TFLite Micro reads the DEFAULT format only")
    _weights(op, 1, 2, 0, int4_per_channel=False)
    units, depth = op.shape(1)
    elements = math.prod(op.shape(0))
    if elements % depth:
        op.fail(f"{op.describe(0)} of shape {op.shape(0)} is not a whole number of rows of {depth} "
                f"(the weights' input size)")
    if math.prod(op.shape(0, True)) != elements // depth * units or op.shape(0, True)[-1:] != [units]:
        op.fail(f"output shape {op.shape(0, True)}; {elements // depth} rows of {units} units expected")
    _bias(op, 2, units)


def check_pool(op: BuiltinOp):
    _value_types(op)
    options = op.options
    shape = op.shape(0)
    _check_spatial(op, (options.filterHeight, options.filterWidth), (options.strideH, options.strideW), (1, 1),
                   shape[-1] if shape else 0)


def check_softmax(op: BuiltinOp):
    _value_types(op)
    same_shape(op)
    beta = np.float32(op.options.beta)
    if not (np.isfinite(beta) and beta > 0):
        op.fail(f"beta {beta}: must be finite and > 0")
    params = schema.per_tensor_quantization(op.tensor(0))
    if op.type(0) != TensorType.FLOAT32 and params is not None \
            and float(beta) * float(params[0]) * 2.0 ** (31 - SOFTMAX_SCALED_DIFF_BITS) <= 1.0:
        op.fail(f"beta {beta} x input scale {params[0]} is too small for TFLite Micro's softmax "
                f"(their product times 2^{31 - SOFTMAX_SCALED_DIFF_BITS} must exceed 1)")


def check_reshape(op: BuiltinOp):
    first_input_type_is_output_type(op)
    if math.prod(op.shape(0)) != math.prod(op.shape(0, True)):
        op.fail(f"output shape {op.shape(0, True)} holds another number of elements than {op.describe(0)} "
                f"shape {op.shape(0)}")
    if op.tensor(1) is not None and op.type(1) not in (TensorType.INT32, TensorType.INT64):
        op.fail(f"{op.describe(1)} (the new shape) is {_type_name(op.type(1))}, not int32")


def check_concatenation(op: BuiltinOp):
    same_types(op)
    shapes = [op.shape(i) for i in range(len(op.inputs))]
    output = op.shape(0, True)
    axis = op.options.axis
    if not -len(output) <= axis < len(output):
        op.fail(f"axis {axis} for rank {len(output)}")
    axis %= len(output)
    for position, shape in enumerate(shapes):
        if len(shape) != len(output) or any(a != b for i, (a, b) in enumerate(zip(shape, output)) if i != axis):
            op.fail(f"{op.describe(position)} shape {shape} does not fit output {output} along axis {axis}")
    if sum(s[axis] for s in shapes) != output[axis]:
        op.fail(f"inputs add up to {sum(s[axis] for s in shapes)} along axis {axis}; the output has "
                f"{output[axis]}")


def check_pad(op: BuiltinOp):
    _require_inputs(op, 2)
    first_input_type_is_output_type(op)
    paddings = op.constant(1)
    rank = len(op.shape(0))
    if paddings is None or paddings.shape != (rank, 2) or np.any(paddings < 0):
        op.fail(f"{op.describe(1)} (the paddings) must be a constant [{rank}, 2] of values >= 0")
    expected = [d + int(p.sum()) for d, p in zip(op.shape(0), paddings)]
    if op.shape(0, True) != expected:
        op.fail(f"output shape {op.shape(0, True)}; the paddings give {expected}")
    if op.tensor(2) is not None and (op.type(2) != op.type(0) or math.prod(op.shape(2)) != 1):
        op.fail(f"{op.describe(2)} (the pad value) must be one {_type_name(op.type(0))} value")


def check_select(op: BuiltinOp):
    _require_inputs(op, 3)
    if op.type(0) != TensorType.BOOL:
        op.fail(f"{op.describe(0)} (the condition) is {_type_name(op.type(0))}, not bool")
    if op.type(1) != op.type(2) or op.type(1) != op.type(0, True):
        op.fail("the two value inputs and the output must have one type")
    broadcast_to_output(op)


def check_comparison(op: BuiltinOp):
    _require_inputs(op, 2)
    if op.type(0) != op.type(1) or op.type(0, True) != TensorType.BOOL:
        op.fail(f"inputs {_type_name(op.type(0))}, {_type_name(op.type(1))} and output "
                f"{_type_name(op.type(0, True))}: two inputs of one type and a bool output")
    broadcast_to_output(op)


def check_mean(op: BuiltinOp):
    _require_inputs(op, 2)
    first_input_type_is_output_type(op)
    axes = op.constant(1)
    rank = len(op.shape(0))
    if axes is None or op.type(1) != TensorType.INT32 or np.any((axes < -rank) | (axes >= rank)):
        op.fail(f"{op.describe(1)} (the axes) must be a constant int32 of axes of a rank-{rank} input")
    kept = [d for axis, d in enumerate(op.shape(0)) if axis not in {int(a) % rank for a in axes.reshape(-1)}]
    if math.prod(op.shape(0, True)) != math.prod(kept):
        op.fail(f"output shape {op.shape(0, True)} does not hold the reduction of {op.shape(0)} over "
                f"axes {axes.reshape(-1).tolist()}")


def check_leaky_relu(op: BuiltinOp):
    if not np.isfinite(np.float32(op.options.alpha)):
        op.fail(f"alpha {op.options.alpha}: must be finite")


def check_quantize(op: BuiltinOp):
    same_shape(op)
    if op.type(0, True) not in QUANTIZED:
        op.fail(f"output is {_type_name(op.type(0, True))}; QUANTIZE writes int8, uint8 or int16")


def check_dequantize(op: BuiltinOp):
    same_shape(op)
    if op.type(0) not in QUANTIZED + (TensorType.FLOAT32,) or op.type(0, True) != TensorType.FLOAT32:
        op.fail(f"input {_type_name(op.type(0))} and output {_type_name(op.type(0, True))}: DEQUANTIZE reads "
                "int8, uint8 or int16 and writes float32")


def _unary(*extra):
    return (first_input_type_is_output_type, same_shape, quantized_values) + extra


def _binary(*extra):
    return (same_types, broadcast_to_output, quantized_values, fused_activation) + extra


NONE = Options.NONE
RULES: Dict[int, Rule] = {
    Op.CONV_2D: Rule((2, 3), (1, 1), (Options.Conv2DOptions,), (check_conv, quantized_values, fused_activation)),
    Op.DEPTHWISE_CONV_2D: Rule((2, 3), (1, 1), (Options.DepthwiseConv2DOptions,),
                               (check_depthwise_conv, quantized_values, fused_activation)),
    Op.FULLY_CONNECTED: Rule((2, 3), (1, 1), (NONE, Options.FullyConnectedOptions),
                             (check_fully_connected, quantized_values, fused_activation)),
    Op.MAX_POOL_2D: Rule((1, 1), (1, 1), (Options.Pool2DOptions,), (check_pool, quantized_values, fused_activation)),
    Op.AVERAGE_POOL_2D: Rule((1, 1), (1, 1), (Options.Pool2DOptions,),
                             (check_pool, quantized_values, fused_activation)),
    Op.SOFTMAX: Rule((1, 1), (1, 1), (Options.SoftmaxOptions,), (check_softmax, quantized_values)),
    Op.RESHAPE: Rule((1, 2), (1, 1), (NONE, Options.ReshapeOptions), (check_reshape,)),
    Op.SQUEEZE: Rule((1, 1), (1, 1), (NONE, Options.SqueezeOptions), (check_reshape,)),
    Op.EXPAND_DIMS: Rule((2, 2), (1, 1), (NONE, Options.ExpandDimsOptions), (check_reshape,)),
    Op.CONCATENATION: Rule((1, 64), (1, 1), (Options.ConcatenationOptions,),
                           (check_concatenation, quantized_values, fused_activation)),
    Op.ADD: Rule((2, 2), (1, 1), (NONE, Options.AddOptions), _binary()),
    Op.SUB: Rule((2, 2), (1, 1), (NONE, Options.SubOptions), _binary()),
    Op.MUL: Rule((2, 2), (1, 1), (NONE, Options.MulOptions), _binary()),
    Op.MAXIMUM: Rule((2, 2), (1, 1), (NONE, Options.MaximumMinimumOptions), (same_types, broadcast_to_output)),
    Op.MINIMUM: Rule((2, 2), (1, 1), (NONE, Options.MaximumMinimumOptions), (same_types, broadcast_to_output)),
    Op.PAD: Rule((2, 2), (1, 1), (NONE, Options.PadOptions), (check_pad,)),
    Op.PADV2: Rule((3, 3), (1, 1), (NONE, Options.PadV2Options), (check_pad,)),
    Op.MEAN: Rule((2, 2), (1, 1), (NONE, Options.ReducerOptions), (check_mean, quantized_values)),
    Op.SELECT_V2: Rule((3, 3), (1, 1), (NONE, Options.SelectV2Options), (check_select,)),
    Op.GREATER_EQUAL: Rule((2, 2), (1, 1), (NONE, Options.GreaterEqualOptions), (check_comparison,)),
    Op.GREATER: Rule((2, 2), (1, 1), (NONE, Options.GreaterOptions), (check_comparison,)),
    Op.LESS: Rule((2, 2), (1, 1), (NONE, Options.LessOptions), (check_comparison,)),
    Op.LESS_EQUAL: Rule((2, 2), (1, 1), (NONE, Options.LessEqualOptions), (check_comparison,)),
    Op.EQUAL: Rule((2, 2), (1, 1), (NONE, Options.EqualOptions), (check_comparison,)),
    Op.NOT_EQUAL: Rule((2, 2), (1, 1), (NONE, Options.NotEqualOptions), (check_comparison,)),
    Op.QUANTIZE: Rule((1, 1), (1, 1), (NONE, Options.QuantizeOptions), (check_quantize, quantized_values)),
    Op.DEQUANTIZE: Rule((1, 1), (1, 1), (NONE, Options.DequantizeOptions), (check_dequantize, quantized_values)),
    Op.RELU: Rule((1, 1), (1, 1), (NONE,), _unary()),
    Op.RELU6: Rule((1, 1), (1, 1), (NONE,), _unary()),
    Op.LOGISTIC: Rule((1, 1), (1, 1), (NONE,), _unary()),
    Op.TANH: Rule((1, 1), (1, 1), (NONE,), _unary()),
    Op.HARD_SWISH: Rule((1, 1), (1, 1), (NONE, Options.HardSwishOptions), _unary()),
    Op.LEAKY_RELU: Rule((1, 1), (1, 1), (Options.LeakyReluOptions,), _unary(check_leaky_relu)),
}
def check_builtin(model, graph, index: int):
    """Raises ModelError unless builtin op ``index`` satisfies its rule (an op
    without a rule is left to ``check_runtime``)."""
    op = BuiltinOp(model, graph, index)
    rule = RULES.get(schema.builtin_code(model, op.op))
    if rule is None:
        return
    low, high = rule.inputs
    if not low <= len(op.inputs) <= high or not rule.outputs[0] <= len(op.outputs) <= rule.outputs[1]:
        op.fail(f"{len(op.inputs)} inputs and {len(op.outputs)} outputs; it takes {low} to {high} inputs and "
                f"{rule.outputs[0]} output")
    options_type = op.op.builtinOptionsType
    if options_type not in rule.options or (options_type != NONE and op.options is None):
        names = [name for name, value in vars(Options).items() if value in rule.options]
        op.fail(f"builtin options of type {options_type}; {op.name} takes {' or '.join(names)}")
    for check in rule.checks:
        check(op)


def check_runtime(model, graph):
    """Raises ModelError for the first builtin op TFLite Micro would run that has no
    rule here."""
    for index, op in enumerate(graph.operators):
        if schema.is_custom(model, op) or schema.builtin_code(model, op) in RULES:
            continue
        known = ", ".join(sorted(schema.BUILTIN_NAMES[code] for code in RULES))
        raise ModelError(f"op {index} ({schema.op_name(model, op)}): tfq-plus checks and runs these builtin ops "
                         f"only: {known}", OPERATORS)
