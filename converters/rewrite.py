"""Rewrite: the reference int8 model -> the deploy model with TFQP binary ops.

Patterns found in the reference (what ``export`` + the stock converter produce):

    binarize:  x(int8) -> GREATER_EQUAL(x, 0) -> [RESHAPE(bool)]* -> SELECT_V2(+1, -1) -> y
    binary layer:  y -> [PADV2(+1)] -> CONV_2D / FULLY_CONNECTED with int8 weights
                   that are +-W per output channel (BatchNorm folded)

Each binary layer becomes ``TFQP_BCONV2D`` / ``TFQP_BFULLY_CONNECTED`` (contract:
notes of the binary ops, ``micro/include/tfqp/bconv2d.h``) with the filter packed to
1 bit per weight and the per-channel transform (W, bias, multiplier, shift) taken
exactly as TFLite computes it, so the int8 output is bit-exact with the reference:

- input: the int8 tensor ``x`` the binarize ops read (bit = q < zp of ``x``), or a
  packed tensor when the producer writes one;
- output int8 (bit-exact), or packed when every consumer of the output binarizes
  it (directly, or after MAX_POOL_2D -> ``TFQP_BMAXPOOL2D`` and flattening
  RESHAPEs): then bit = 1 iff the reference's int8 output is below its zero point,
  which is what those consumers compare (``packed_thresholds``: TFLite's
  requantization is monotonic in the accumulator, so the int8 rounding folds into
  one integer threshold per channel; bit-exact too. Where TFLite's int32
  arithmetic could wrap there is no such threshold and the output stays int8).

The binarize pattern is only taken where TFLite's int8 GREATER_EQUAL is exactly
q >= zp (``comparison_is_exact``), so "bit = q < zp" of an int8-input TFQP op is
what the reference computes.

Ops whose outputs are no longer read (the binarize ops, PADV2) are removed, and with
them unused tensors, buffers and operator codes.
"""

from typing import Dict, List, NamedTuple, Optional, Tuple

import numpy as np

from tfq_plus.converters import packing
from tfq_plus.converters import tflite_schema as schema
from tfq_plus.converters.tflite_schema import BuiltinOperator as Op

BCONV2D = "TFQP_BCONV2D"
BFULLY_CONNECTED = "TFQP_BFULLY_CONNECTED"
BMAXPOOL2D = "TFQP_BMAXPOOL2D"
TFQP_OPS = (BCONV2D, BFULLY_CONNECTED, BMAXPOOL2D)

PACKED_SUFFIX = "/tfqp_packed"  # packed mirror of the reference tensor of that name
RESHAPED_SUFFIX = "/tfqp_reshaped"  # int8 reshape of the reference tensor of that name

INT32_MIN = -(2**31)
INT32_MAX = 2**31 - 1
WORD_BITS = 32


def words(channels: int) -> int:
    return -(-channels // WORD_BITS)


# --- TFLite's arithmetic, reproduced exactly -----------------------------------------


def quantize_multiplier(real_multiplier: float) -> Tuple[int, int]:
    """TFLite's QuantizeMultiplier (quantization_util.cc): (q31 significand, shift).

    frexp, then round(significand * 2^31) half away from zero (TfLiteRound), with
    the 2^31 carry and the flush to zero below 2^-31 of the original.
    """
    if real_multiplier == 0.0:
        return 0, 0
    significand, shift = np.frexp(np.float64(real_multiplier))
    q_fixed = _round_half_away(float(significand) * 2.0**31)
    if q_fixed == 2**31:
        q_fixed //= 2
        shift += 1
    if shift < -31:
        return 0, 0
    return int(q_fixed), int(shift)


def _round_half_away(value: float) -> int:
    """std::round (TfLiteRound) as an int: halves go away from zero."""
    magnitude = abs(value)
    floor = np.floor(magnitude)
    rounded = int(floor + 1 if magnitude - floor >= 0.5 else floor)
    return -rounded if value < 0 else rounded


def saturating_rounding_doubling_high_mul(a: int, b: int) -> int:
    """gemmlowp's SaturatingRoundingDoublingHighMul on int32 values."""
    if a == b == INT32_MIN:
        return INT32_MAX
    product = a * b
    nudge = (1 << 30) if product >= 0 else 1 - (1 << 30)
    total = product + nudge
    quotient = abs(total) >> 31  # division truncating toward zero
    return quotient if total >= 0 else -quotient


def rounding_divide_by_pot(x: int, exponent: int) -> int:
    """gemmlowp's RoundingDivideByPOT: x / 2^exponent, halves away from zero."""
    mask = (1 << exponent) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (1 if x < 0 else 0)
    return (x >> exponent) + (1 if remainder > threshold else 0)


def multiply_by_quantized_multiplier(x: int, multiplier: int, shift: int) -> int:
    """TFLite's MultiplyByQuantizedMultiplier (double rounding, int32 wrap of x << left)."""
    left, right = max(shift, 0), max(-shift, 0)
    shifted = ((x << left) + 2**31) % 2**32 - 2**31
    return rounding_divide_by_pot(saturating_rounding_doubling_high_mul(shifted, multiplier), right)


def comparison_is_exact(scale) -> bool:
    """Whether TFLite's int8 GREATER_EQUAL(x, 0) is exactly q >= zp for x of ``scale``.

    comparisons.cc rescales each side by its own scale: MultiplyByQuantizedMultiplier(
    (q - zp) * 2^8, QuantizeMultiplier(scale)); q = zp - 1 must stay negative (larger
    differences then do too, the rescaling being monotonic).
    """
    multiplier, shift = quantize_multiplier(float(np.float32(scale)))
    if shift > 0:
        return True
    return multiply_by_quantized_multiplier(-1 << 8, multiplier, shift) < 0


def output_multipliers(kind: str, input_scale, weight_scales, output_scale, channels: int):
    """Per-channel (multiplier, shift) exactly as TFLite / TFLite Micro prepare them.

    Per-channel weights (conv and FC) and per-tensor conv weights:
        double(input_scale) * double(weight_scale) / double(output_scale)
    Per-tensor FULLY_CONNECTED (GetQuantizedConvolutionMultipler):
        double(float(input_scale * weight_scale)) / double(output_scale)
    """
    weight_scales = np.asarray(weight_scales, dtype=np.float32)
    if kind == "dense" and weight_scales.size == 1:
        product = np.float64(np.float32(np.float32(input_scale) * weight_scales[0]))
        reals = [product / np.float64(output_scale)] * channels
    else:
        per_channel = np.broadcast_to(weight_scales, (channels,))
        reals = [
            np.float64(np.float32(input_scale)) * np.float64(s) / np.float64(np.float32(output_scale))
            for s in per_channel
        ]
    pairs = [quantize_multiplier(r) for r in reals]
    return (np.array([p[0] for p in pairs], dtype=np.int64), np.array([p[1] for p in pairs], dtype=np.int64))


def activation_range(activation: int, scale, zero_point: int) -> Tuple[int, int]:
    """TFLite's CalculateActivationRangeQuantized for int8 (float32 arithmetic)."""

    def quantize(value: float) -> int:
        ratio = np.float32(value) / np.float32(scale)
        return zero_point + _round_half_away(float(ratio))

    low, high = -128, 127
    act = schema.ActivationFunctionType
    if activation == act.NONE:
        return low, high
    if activation == act.RELU:
        return max(low, quantize(0.0)), high
    if activation == act.RELU6:
        return max(low, quantize(0.0)), min(high, quantize(6.0))
    if activation == act.RELU_N1_TO_1:
        return max(low, quantize(-1.0)), min(high, quantize(1.0))
    raise ValueError(f"fused activation {activation} has no int8 range")


# --- pattern records -------------------------------------------------------------------


class Binarize(NamedTuple):
    """GREATER_EQUAL(x, 0) -> [RESHAPE]* -> SELECT_V2(+P, N): y = x >= 0 ? +1 : -1."""

    compare: int  # the GREATER_EQUAL op
    source: int  # int8 tensor compared with 0
    output: int  # int8 +-1 tensor
    positive: int  # P: q(+1) - zp(y)
    negative: int  # N: q(-1) - zp(y)
    reshapes: Tuple[int, ...]  # RESHAPE ops on the boolean, in order


class BinaryLayer(NamedTuple):
    """A CONV_2D / FULLY_CONNECTED on binarized input with +-W int8 weights."""

    op: int
    kind: str  # "conv2d" or "dense"
    binarize: Binarize
    pad_value: int  # 1: PADV2 with +1 before a VALID conv; 0 otherwise
    padding: int  # 0 SAME, 1 VALID (as the TFQP op sees it)
    negative_weights: np.ndarray  # bool, True where the weight is -W
    magnitude: np.ndarray  # W per output channel (int64)
    bias: np.ndarray  # int64 per output channel
    multiplier: np.ndarray
    shift: np.ndarray
    act_min: int
    act_max: int
    fused_activation: int
    output: int  # int8 output tensor of the reference op
    output_zero_point: int
    tensor_names: Tuple[str, ...]  # reference names of the op's tensors (name the Keras layers)


class _Graph:
    def __init__(self, model):
        self.model = model
        self.graph = model.subgraphs[0]
        self.tensors = self.graph.tensors
        self.ops = self.graph.operators
        self.producer = schema.producers(self.graph)
        self.readers = schema.consumers(self.graph)
        self.outputs = {int(t) for t in self.graph.outputs}

    def code(self, index: int) -> int:
        return schema.builtin_code(self.model, self.ops[index])

    def produced_by(self, tensor: int, code: int) -> Optional[int]:
        index = self.producer.get(tensor)
        if index is not None and self.code(index) == code:
            return index
        return None

    def const(self, tensor: int) -> Optional[np.ndarray]:
        if tensor < 0:
            return None
        return schema.constant(self.model, self.tensors[tensor])

    def per_tensor(self, tensor: int):
        t = self.tensors[tensor]
        if t.type != schema.TensorType.INT8:
            return None
        return schema.per_tensor_quantization(t)

    def shape(self, tensor: int) -> List[int]:
        return schema.shape(self.tensors[tensor])


def find_binarizes(g: _Graph) -> Dict[int, Binarize]:
    """Binarize patterns keyed by their output tensor y."""
    found = {}
    for index, op in enumerate(g.ops):
        if g.code(index) != Op.SELECT_V2 or len(op.inputs) != 3:
            continue
        condition, when_true, when_false = (int(t) for t in op.inputs)
        output = int(op.outputs[0])
        reshapes = []
        compare = None
        tensor = condition
        while True:
            producer = g.producer.get(tensor)
            if producer is None:
                break
            if g.code(producer) == Op.RESHAPE:
                reshapes.append(producer)
                tensor = int(g.ops[producer].inputs[0])
                continue
            if g.code(producer) == Op.GREATER_EQUAL:
                compare = producer
            break
        if compare is None:
            continue
        source, zero = (int(t) for t in g.ops[compare].inputs)
        source_q, zero_q, output_q = g.per_tensor(source), g.per_tensor(zero), g.per_tensor(output)
        zero_value = g.const(zero)
        if None in (source_q, zero_q, output_q) or zero_value is None:
            continue
        # x >= 0 is q_x >= zp_x when the constant is exactly real 0 and the rescaling
        # of x keeps q_x = zp_x - 1 negative.
        if not np.all(zero_value.astype(np.int64) == zero_q[1]) or not comparison_is_exact(source_q[0]):
            continue
        if g.shape(condition) != g.shape(output):
            continue
        levels = []
        for constant in (when_true, when_false):
            value, params = g.const(constant), g.per_tensor(constant)
            if value is None or value.size != 1 or params != output_q:
                break
            levels.append(int(value.reshape(-1)[0]) - output_q[1])
        if len(levels) != 2 or levels[0] == levels[1]:
            continue
        found[output] = Binarize(compare, source, output, levels[0], levels[1], tuple(reversed(reshapes)))
    return found


def _binary_weights(g: _Graph, tensor: int, channel_axis: int = 0):
    """(negative signs, W per channel, weight scales) for +-W int8 weights, else None."""
    data = g.const(tensor)
    params = schema.quantization(g.tensors[tensor])
    if data is None or params is None or g.tensors[tensor].type != schema.TensorType.INT8:
        return None
    scales, zero_points, axis = params
    if np.any(zero_points != 0) or (len(scales) > 1 and axis != channel_axis):
        return None
    flat = data.reshape(data.shape[0], -1).astype(np.int64)
    magnitude = np.abs(flat).max(axis=1)
    if not np.all(np.abs(flat) == magnitude[:, None]):
        return None
    return data < 0, magnitude, scales


def _same_pads(size, kernel, stride, dilation):
    effective = (kernel - 1) * dilation + 1
    out = -(-size // stride)
    total = max((out - 1) * stride + effective - size, 0)
    return total // 2, total - total // 2


def find_binary_layers(g: _Graph, binarizes: Dict[int, Binarize]) -> List[BinaryLayer]:
    layers = []
    for index, op in enumerate(g.ops):
        code = g.code(index)
        if code not in (Op.CONV_2D, Op.FULLY_CONNECTED):
            continue
        layer = _match_layer(g, binarizes, index, op, "conv2d" if code == Op.CONV_2D else "dense")
        if layer is not None:
            layers.append(layer)
    return layers


def _match_layer(g, binarizes, index, op, kind) -> Optional[BinaryLayer]:
    inputs = [int(t) for t in op.inputs]
    activation, weights = inputs[0], inputs[1]
    bias_tensor = inputs[2] if len(inputs) > 2 else -1
    output = int(op.outputs[0])
    options = op.builtinOptions
    pad_value, padding = 0, None
    binarize = binarizes.get(activation)
    if kind == "conv2d":
        padding = 0 if options.padding == schema.Padding.SAME else 1
        pad_op = g.produced_by(activation, Op.PADV2)
        if binarize is None and pad_op is not None:
            padded_from = int(g.ops[pad_op].inputs[0])
            binarize = binarizes.get(padded_from)
            if binarize is None or padding != 1:
                return None
            pads = g.const(int(g.ops[pad_op].inputs[1]))
            value = g.const(int(g.ops[pad_op].inputs[2]))
            zp = g.per_tensor(padded_from)[1]
            if pads is None or value is None or value.size != 1:
                return None
            level = int(value.reshape(-1)[0]) - zp
            if level != binarize.positive:
                return None  # only larq's pad_values=1.0 (+1) has a TFQP form
            _, height, width, _ = g.shape(padded_from)
            _, kh, kw, _ = g.shape(weights)
            expected = [
                [0, 0],
                list(_same_pads(height, kh, options.strideH, options.dilationHFactor)),
                list(_same_pads(width, kw, options.strideW, options.dilationWFactor)),
                [0, 0],
            ]
            if pads.astype(np.int64).tolist() != expected:
                return None
            pad_value, padding = 1, 0
    if binarize is None:
        return None
    if kind == "dense":
        if len(g.shape(binarize.output)) != 2 or options.weightsFormat != 0:
            return None
    elif options.dilationHFactor < 1 or len(g.shape(weights)) != 4:
        return None
    signs = _binary_weights(g, weights)
    if signs is None:
        return None
    negative, magnitude, weight_scales = signs
    channels = magnitude.shape[0]
    bias = g.const(bias_tensor) if bias_tensor >= 0 else np.zeros(channels, np.int32)
    if bias is None or bias.shape != (channels,):
        return None
    input_q = g.per_tensor(binarize.output)
    output_q = g.per_tensor(output)
    if output_q is None:
        return None
    multiplier, shift = output_multipliers(kind, input_q[0], weight_scales, output_q[0], channels)
    act_min, act_max = activation_range(options.fusedActivationFunction, output_q[0], output_q[1])
    return BinaryLayer(
        op=index, kind=kind, binarize=binarize, pad_value=pad_value, padding=padding,
        negative_weights=negative, magnitude=magnitude, bias=bias.astype(np.int64),
        multiplier=multiplier, shift=shift, act_min=act_min, act_max=act_max,
        fused_activation=options.fusedActivationFunction, output=output,
        output_zero_point=int(output_q[1]),
        tensor_names=tuple(
            schema.tensor_name(g.tensors[t])
            for t in [binarize.output, *inputs, output] if t >= 0
        ),
    )


# --- packed-output decisions ------------------------------------------------------------


class _Chain(NamedTuple):
    """From a binary layer's int8 output to the binarize ops that read it."""

    maxpools: Tuple[int, ...]  # MAX_POOL_2D ops to mirror as TFQP_BMAXPOOL2D
    reshapes: Tuple[int, ...]  # int8 RESHAPE ops to mirror on packed words
    binarizes: Tuple[Binarize, ...]


def _packed_chain(g, tensor, channels, binarize_by_compare, rewritten_inputs) -> Optional[_Chain]:
    """All consumers of ``tensor`` binarize it (possibly after max-pool / flatten)
    for binary layers being rewritten: the chain to mirror, else None."""
    if tensor in g.outputs or not g.readers.get(tensor):
        return None
    maxpools, reshapes, binarizes = [], [], []
    for reader in g.readers[tensor]:
        code = g.code(reader)
        op = g.ops[reader]
        if code == Op.MAX_POOL_2D:
            options = op.builtinOptions
            out = int(op.outputs[0])
            if options.fusedActivationFunction != 0 or g.per_tensor(out) != g.per_tensor(tensor):
                return None
            inner = _packed_chain(g, out, channels, binarize_by_compare, rewritten_inputs)
            if inner is None:
                return None
            maxpools += [reader, *inner.maxpools]
            reshapes += inner.reshapes
            binarizes += inner.binarizes
        elif code == Op.RESHAPE:
            out = int(op.outputs[0])
            if not _flattens(g, tensor, out, channels):
                return None
            inner = _packed_chain(g, out, channels, binarize_by_compare, rewritten_inputs)
            if inner is None or inner.maxpools:
                return None
            reshapes += [reader, *inner.reshapes]
            binarizes += inner.binarizes
        elif code == Op.GREATER_EQUAL and reader in binarize_by_compare:
            binarize = binarize_by_compare[reader]
            if not _flattens(g, tensor, binarize.output, channels):
                return None
            if not _only_rewritten_readers(g, binarize.output, rewritten_inputs):
                return None
            binarizes.append(binarize)
        else:
            return None
    return _Chain(tuple(maxpools), tuple(reshapes), tuple(binarizes))


def _flattens(g, source, target, channels) -> bool:
    """RESHAPE [N, H, W, C] -> [N, H*W*C] keeps the packed layout only if C % 32 == 0."""
    before, after = g.shape(source), g.shape(target)
    if before == after:
        return True
    return (
        len(after) == 2 and before[0] == after[0] and int(np.prod(before)) == int(np.prod(after))
        and channels % WORD_BITS == 0
    )


def _only_rewritten_readers(g, tensor, rewritten_inputs) -> bool:
    """Every reader of ``tensor`` is a rewritten binary layer (directly or via its PADV2)."""
    for reader in g.readers.get(tensor, []):
        if reader in rewritten_inputs.get(tensor, ()):
            continue
        if g.code(reader) == Op.PADV2:
            padded = int(g.ops[reader].outputs[0])
            if all(r in rewritten_inputs.get(tensor, ()) for r in g.readers.get(padded, [])) and g.readers.get(padded):
                continue
        return False
    return tensor not in g.outputs


# --- thresholds of packed outputs --------------------------------------------------------


def sign_threshold(slope: int, bias: int, multiplier: int, shift: int, zero_point: int,
                   act_min: int, act_max: int, taps: int) -> Optional[Tuple[int, int]]:
    """(direction, threshold) such that, for every integer D in [-taps, taps],

        direction * D < threshold   <=>   q(D) < zero_point,
        q(D) = clamp(zero_point + MultiplyByQuantizedMultiplier(slope * D + bias,
                                                                multiplier, shift),
                     act_min, act_max)

    i.e. TFLite's int8 requantization of the accumulator slope * D + bias, then the
    binarize's comparison with the zero point; or None where TFLite's int32
    arithmetic wraps for some D in that range (the accumulator, or the accumulator
    times 2^shift for shift > 0, outside int32), the one case where q need not be
    monotonic in D.

    Otherwise every step (the affine accumulator, the rounding doubling high
    multiply with either sign of multiplier, the rounding shift, the clamp) is
    monotonic, so the bit is a step function of D, found by binary search for the
    first D whose bit is the bit at D = taps. A bit equal at both ends is constant:
    (1, INT32_MAX) always 1, (1, INT32_MIN) never (|D| < 2^30 in the kernels).
    """
    left = max(shift, 0)
    for end in (-taps, taps):
        accumulator = slope * end + bias
        if not (INT32_MIN <= accumulator <= INT32_MAX and INT32_MIN <= accumulator << left <= INT32_MAX):
            return None

    def negative(d: int) -> bool:
        q = zero_point + multiply_by_quantized_multiplier(slope * d + bias, multiplier, shift)
        return min(max(q, act_min), act_max) < zero_point

    low, high = -taps, taps
    at_high = negative(high)
    if negative(low) == at_high:
        return 1, INT32_MAX if at_high else INT32_MIN
    while high - low > 1:  # negative(low) != at_high == negative(high)
        middle = (low + high) // 2
        if negative(middle) == at_high:
            high = middle
        else:
            low = middle
    if at_high:
        return -1, 1 - high  # bit = D >= high  <=>  -D < 1 - high
    return 1, high  # bit = D < high


def packed_thresholds(layer: BinaryLayer) -> Optional[np.ndarray]:
    """int32 [Cout, 2] (direction, threshold) for the kernels' bit = direction * D <
    threshold, equal to what the reference's consumers compute: int8 output q < zp.

    With P + N = 0 (required for packed outputs) the reference's accumulator is
    acc = W * ((P + N) * S + (P - N) * D) / 2 + bias = W * P * D + bias, and
    q = clamp(zp + MultiplyByQuantizedMultiplier(acc, multiplier, shift), act_min,
    act_max) with the layer's exact TFLite multiplier and shift; the binarizes read
    q (through max-pools and reshapes of the same quantization) and compare it with
    zp (``comparison_is_exact``). |D| <= K = the filter's taps per output channel.
    None where a channel has no such threshold (``sign_threshold``).
    """
    taps = int(np.prod(layer.negative_weights.shape[1:]))
    rows = []
    for magnitude, bias, multiplier, shift in zip(
        layer.magnitude.tolist(), layer.bias.tolist(), layer.multiplier.tolist(), layer.shift.tolist()
    ):
        row = sign_threshold(
            magnitude * layer.binarize.positive, bias, multiplier, shift, layer.output_zero_point,
            layer.act_min, layer.act_max, taps,
        )
        if row is None:
            return None
        rows.append(row)
    return np.array(rows, dtype=np.int32)


# --- the rewrite ------------------------------------------------------------------------


class RewriteResult(NamedTuple):
    flatbuffer: bytes
    layers: List[BinaryLayer]  # the reference ops replaced (reference op indices)
    packed_outputs: int
    packed_inputs: int
    maxpools: int


def _conv_options(g, layer: BinaryLayer, int8_output: bool) -> dict:
    op = g.ops[layer.op]
    options = {"channels_in": int(layer.negative_weights.shape[-1])}
    if layer.kind == "conv2d":
        o = op.builtinOptions
        _, kh, kw, _ = layer.negative_weights.shape
        options.update(
            filter_height=int(kh), filter_width=int(kw),
            stride_height=int(o.strideH), stride_width=int(o.strideW),
            dilation_height_factor=int(o.dilationHFactor), dilation_width_factor=int(o.dilationWFactor),
            padding=int(layer.padding), pad_value=int(layer.pad_value),
        )
    if int8_output:
        options.update(
            input_pos=int(layer.binarize.positive), input_neg=int(layer.binarize.negative),
            act_min=int(layer.act_min), act_max=int(layer.act_max),
        )
    return options


def rewrite(flatbuffer: bytes, *, packed: bool = True) -> RewriteResult:
    """Replace the binary layers of a reference model by TFQP ops.

    Args:
        flatbuffer: the reference model (stock converter output).
        packed: also use packed outputs / inputs and TFQP_BMAXPOOL2D where every
            consumer binarizes (False: int8 in and out everywhere).
    """
    model = schema.read(flatbuffer)
    if len(model.subgraphs) != 1:
        raise ValueError(f"rewrite: expected a model with one subgraph, got {len(model.subgraphs)}")
    g = _Graph(model)
    binarizes = find_binarizes(g)
    layers = find_binary_layers(g, binarizes)
    by_op = {layer.op: layer for layer in layers}

    # tensor y (or its PADV2 output) -> binary layer ops reading it
    rewritten_inputs: Dict[int, List[int]] = {}
    for layer in layers:
        rewritten_inputs.setdefault(layer.binarize.output, []).append(layer.op)
    binarize_by_compare = {binarize.compare: binarize for binarize in binarizes.values()}

    chains: Dict[int, _Chain] = {}
    thresholds: Dict[int, np.ndarray] = {}  # reference op index -> packed transform
    if packed:
        for layer in layers:
            if layer.fused_activation != 0 or layer.binarize.positive + layer.binarize.negative != 0:
                continue
            chain = _packed_chain(g, layer.output, layer.magnitude.shape[0], binarize_by_compare, rewritten_inputs)
            if chain is None or not chain.binarizes:
                continue
            # One packed tensor serves every binarize: they must compare with the
            # zero point the thresholds are computed for.
            if any(g.per_tensor(b.source)[1] != layer.output_zero_point for b in chain.binarizes):
                continue
            transform = packed_thresholds(layer)
            if transform is not None:
                chains[layer.op] = chain
                thresholds[layer.op] = transform

    # Which binarize outputs are available packed, and under which new tensor.
    packed_of: Dict[int, int] = {}  # reference int8 tensor -> packed mirror tensor
    new_ops: Dict[int, object] = {}  # reference op index -> replacement op
    inserted: Dict[int, List[object]] = {}  # reference op index -> ops to insert before it
    packed_binarized: Dict[int, int] = {}  # binarize output y -> packed tensor

    def packed_tensor(reference_tensor: int) -> int:
        if reference_tensor not in packed_of:
            t = g.tensors[reference_tensor]
            dims = schema.shape(t)
            packed_of[reference_tensor] = schema.add_tensor(
                model, schema.tensor_name(t) + PACKED_SUFFIX, dims[:-1] + [words(dims[-1])],
                schema.TensorType.INT32,
            )
        return packed_of[reference_tensor]

    for layer_op, chain in chains.items():
        layer = by_op[layer_op]
        channels = layer.magnitude.shape[0]
        packed_tensor(layer.output)
        for pool in chain.maxpools:
            source, out = int(g.ops[pool].inputs[0]), int(g.ops[pool].outputs[0])
            o = g.ops[pool].builtinOptions
            options = {
                "channels": channels, "filter_height": int(o.filterHeight), "filter_width": int(o.filterWidth),
                "stride_height": int(o.strideH), "stride_width": int(o.strideW),
                "padding": 0 if o.padding == schema.Padding.SAME else 1,
            }
            new_ops[pool] = schema.custom_op(
                model, BMAXPOOL2D, [packed_tensor(source)], [packed_tensor(out)],
                packing.bmaxpool2d_options(**options),
            )
        for reshape in chain.reshapes:
            source, out = int(g.ops[reshape].inputs[0]), int(g.ops[reshape].outputs[0])
            new_ops[reshape] = _reshape_op(model, g, packed_tensor(source), packed_tensor(out))
        for binarize in chain.binarizes:
            current = packed_tensor(binarize.source)
            if g.shape(binarize.source) != g.shape(binarize.output):
                # The flattening between comparison and select, on packed words.
                target = packed_tensor(binarize.output)
                inserted.setdefault(min(rewritten_inputs[binarize.output]), []).append(
                    _reshape_op(model, g, current, target)
                )
                current = target
            packed_binarized[binarize.output] = current

    packed_inputs = 0
    for layer in layers:
        if layer.binarize.output in packed_binarized:
            activation = packed_binarized[layer.binarize.output]
            packed_inputs += 1
        else:
            activation = layer.binarize.source
            if layer.binarize.reshapes:
                activation = _int8_reshape(model, g, layer, inserted)
        negative = layer.negative_weights
        filter_data = packing.pack_bits(negative)
        name = schema.tensor_name(g.tensors[int(g.ops[layer.op].inputs[1])])
        filter_tensor = schema.add_tensor(
            model, name + "/tfqp_packed_filter", list(filter_data.shape), schema.TensorType.INT32,
            data=filter_data.astype(np.int32),
        )
        int8_output = layer.op not in chains
        if int8_output:
            transform = np.stack(
                [layer.magnitude, layer.bias, layer.multiplier, layer.shift], axis=1
            ).astype(np.int32)
            output = layer.output
        else:
            transform = thresholds[layer.op]
            output = packed_of[layer.output]
        transform_tensor = schema.add_tensor(
            model, name + "/tfqp_transform", list(transform.shape), schema.TensorType.INT32,
            data=transform,
        )
        options = _conv_options(g, layer, int8_output)
        if layer.kind == "conv2d":
            custom_code, encoded = BCONV2D, packing.bconv2d_options(**options)
        else:
            custom_code, encoded = BFULLY_CONNECTED, packing.bfully_connected_options(**options)
        new_ops[layer.op] = schema.custom_op(
            model, custom_code, [activation, filter_tensor, transform_tensor], [output], encoded
        )

    operators = []
    for index, op in enumerate(g.ops):
        operators.extend(inserted.get(index, []))
        operators.append(new_ops.get(index, op))
    g.graph.operators = operators
    schema.remove_dead_ops(g.graph)
    schema.compact(model)
    return RewriteResult(
        schema.write(model), layers, packed_outputs=len(chains), packed_inputs=packed_inputs,
        maxpools=sum(len(c.maxpools) for c in chains.values()),
    )


def _reshape_options(new_shape):
    options = schema.fb.ReshapeOptionsT()
    options.newShape = np.asarray(new_shape, dtype=np.int32)
    return options


def _reshape_op(model, g, source: int, target: int):
    """A builtin RESHAPE of ``source`` to the shape of the new tensor ``target``."""
    new_shape = schema.shape(g.tensors[target])
    shape_tensor = schema.add_tensor(
        model, schema.tensor_name(g.tensors[target]) + "/shape", [len(new_shape)],
        schema.TensorType.INT32, data=np.asarray(new_shape, dtype=np.int32),
    )
    op = schema.fb.OperatorT()
    op.opcodeIndex = schema.opcode_index(model, Op.RESHAPE)
    op.inputs = np.asarray([source, shape_tensor], dtype=np.int32)
    op.outputs = np.asarray([target], dtype=np.int32)
    op.builtinOptionsType = schema.BuiltinOptions.ReshapeOptions
    op.builtinOptions = _reshape_options(new_shape)
    return op


def _int8_reshape(model, g, layer: BinaryLayer, inserted) -> int:
    """int8 input through the flattening RESHAPEs between the comparison and the select."""
    source = g.tensors[layer.binarize.source]
    target_shape = g.shape(layer.binarize.output)
    target = schema.add_tensor(
        model, schema.tensor_name(source) + RESHAPED_SUFFIX, target_shape, schema.TensorType.INT8,
        quant=source.quantization,
    )
    inserted.setdefault(layer.op, []).append(_reshape_op(model, g, layer.binarize.source, target))
    return target
