"""The output side every accumulator op shares (TFQP_BCONV2D, TFQP_BFULLY_CONNECTED,
TFQP_CONV2D_INT8, TFQP_FULLY_CONNECTED_INT8, the TFQP_SHIFT_* ops): the transform
tensor for the plan's output kind, the output tensor, and the chain's max-pools and
flatten on packed signs or on k-bit codes (``codes``).
"""

from typing import List, NamedTuple, Optional

import numpy as np

from tfq_plus.converters import packing
from tfq_plus.converters import plans as P
from tfq_plus.converters import tflite_schema as schema
from tfq_plus.converters import thresholds
from tfq_plus.converters.ops import maxpool
from tfq_plus.converters.patterns import codes
from tfq_plus.converters.patterns.context import SIGNS, Context, PaddedFlatten, tensor_name
from tfq_plus.converters.tflite_arithmetic import INT32_MAX, INT32_MIN, activation_range


class Accumulator:
    """What the op's integer accumulator means for ``plan``: Keras's layer output is
    acc * unit[c] (+ bias); acc lies in [low[c], high[c]]; ``offset`` positions
    the kernel counts beyond the layer's own taps (a padded flatten's padding bits,
    each adding +1 to D) are subtracted before the Keras map applies."""

    def __init__(self, unit, low, high, offset: int = 0):
        self.unit = np.asarray(unit, np.float64)
        self.low = np.asarray(low, np.int64)
        self.high = np.asarray(high, np.int64)
        self.offset = int(offset)

    @property
    def bound(self) -> int:
        return int(max(np.abs(self.low).max(), np.abs(self.high).max())) + abs(self.offset)


def emit(ctx: Context, plan: P.LayerPlan, anchor: int, spec, input_tensor: int, weights,
         options: dict, accumulator: Accumulator, trailing=()) -> None:
    """Replace original op ``anchor`` by ``spec``'s op on (input, weights) computing
    ``plan``'s output, followed by its chain ops (``weights``: one constant tensor,
    or a list of them; ``trailing``: inputs after the transform, e.g. a shift
    fully-connected layer's live-code lists)."""
    g = ctx.graph
    stock_output = int(g.ops[anchor].outputs[0])
    dims = g.shape(stock_output)
    inputs = [input_tensor] + (list(weights) if isinstance(weights, (list, tuple)) else [weights])
    after: List = []
    if plan.output == P.CODES:
        if accumulator.offset:
            raise ValueError(f"layer {plan.name!r}: a codes output after a padded flatten is not supported")
        rows = thresholds.code_transform(plan, accumulator.unit, accumulator.low, accumulator.high)
        output, after = codes.output_tensors(ctx, plan, dims)
        options = dict(options, output_levels=plan.output_grid.levels)
    elif plan.output == P.PACKED:
        sign = thresholds.sign_transform(plan, accumulator.unit, accumulator.low, accumulator.high)
        rows = _shift_rows(sign.rows, accumulator.offset)
        output = ctx.new_packed(plan.name, dims)
        final, after = chain_ops(ctx, plan, output, dims, sign.or_masks)
        ctx.signs[plan.output_layer] = final
        ctx.position[plan.output_layer] = anchor
    elif plan.output == P.INT32_VALUES:
        a, b = thresholds.affine_map(plan, accumulator.unit)
        b = b - a * accumulator.offset
        layer = plan.residual_add or plan.output_layer
        scale = ctx.stream_scale(layer)
        rows = thresholds.int32_transform(a, b, scale, accumulator.bound)
        output = ctx.new_values(layer, dims, scale)
        options = dict(options, int32_output=1)
        if plan.residual_add is not None:
            add = ctx.plans.adds[plan.residual_add]
            if add.residual not in ctx.values:
                raise ValueError(f"layer {add.name!r}: its operand {add.residual!r} has no int32 values yet")
            inputs_extra = [ctx.values[add.residual]]
        else:
            inputs_extra = []
        ctx.values[layer] = output
        transform = ctx.constant(f"tfqp/{plan.name}/transform", rows.astype(np.int32))
        op = g.custom_op(spec.name, inputs + [transform] + inputs_extra, [output], spec.encode(**options))
        _place(ctx, plan, anchor, op, layer)
        ctx.replaced[plan.name] = [spec.name]
        return
    else:
        rows, act_min, act_max = _int8_rows(ctx, plan, anchor, accumulator)
        output = stock_output
        options = dict(options, input_pos=1, input_neg=-1, act_min=act_min, act_max=act_max)
    transform = ctx.constant(f"tfqp/{plan.name}/transform", rows.astype(np.int32))
    op = g.custom_op(spec.name, inputs + [transform] + list(trailing), [output],
                     spec.encode(**options))
    g.replace(anchor, [op] + after)
    ctx.replaced[plan.name] = [spec.name] + [schema.op_name(ctx.graph.model, o) for o in after]


def _place(ctx: Context, plan: P.LayerPlan, anchor: int, op, layer: str):
    """An int32-output op: at the anchor, or (absorbing a residual Add) at the stock
    ADD, which runs after both operands exist."""
    g = ctx.graph
    if plan.residual_add is None:
        g.replace(anchor, [op])
        ctx.position[layer] = anchor
        return
    from tfq_plus.converters.tflite_schema import BuiltinOperator as Op

    adds = g.ops_of(plan.residual_add, (Op.ADD,))
    if len(adds) != 1:
        raise ValueError(
            f"layer {plan.residual_add!r}: expected one ADD op named after it in the stock model, "
            f"found {len(adds)}"
        )
    g.replace(anchor, [])
    g.replace(adds[0], [op])
    ctx.position[layer] = adds[0]


def _shift_rows(rows: np.ndarray, offset: int) -> np.ndarray:
    """Thresholds on D' = D + offset from thresholds on D (constant rows kept)."""
    if offset == 0:
        return rows
    rows = rows.astype(np.int64).copy()
    constant = (rows[:, 1] == INT32_MAX) | (rows[:, 1] == INT32_MIN)
    rows[~constant, 1] += rows[~constant, 0] * offset
    return rows


def _int8_rows(ctx: Context, plan: P.LayerPlan, anchor: int, accumulator: Accumulator):
    """An int8 output written into the stock tensor of the anchor op (see
    ``int8_target``), as the binary ops' transform rows."""
    target = int8_target(ctx, plan, anchor)
    a = accumulator.unit * target.slope
    b = target.offset - a * accumulator.offset
    rows = thresholds.int8_transform(a, b, accumulator.bound, target.scale)
    return rows, target.act_min, target.act_max


class Int8Target(NamedTuple):
    """The stock int8 output an op writes: the real output is slope * (the layer's
    output without bias) + offset, per channel, rounded to (scale, zero_point) and
    clamped to [act_min, act_max]."""

    slope: np.ndarray
    offset: np.ndarray
    scale: float
    zero_point: int
    act_min: int
    act_max: int


def int8_target(ctx: Context, plan: P.LayerPlan, anchor: int) -> Int8Target:
    """The stock output tensor of the anchor op and the chain steps the stock
    converter folded into that op (named in its output): affine layers, and one
    final fused activation as the clamp."""
    g = ctx.graph
    op = g.ops[anchor]
    stock_output = int(op.outputs[0])
    # a model output is named after the output, not the layers folded into its op:
    # writing it, the op computes the whole chain
    writes_output = stock_output in g.outputs
    folded = [step for step in plan.chain if step.kind == P.ELEMENTWISE
              and (step.own_activation or writes_output or g.names_layer(stock_output, step.name, anywhere=True))]
    fused = int(getattr(op.builtinOptions, "fusedActivationFunction", 0) or 0)
    affine_steps = [s for s in folded if s.affine is not None]
    other = [s for s in folded if s.affine is None]
    if len(other) > 1 or (other and fused == 0) or (other and other[-1] is not folded[-1]):
        raise ValueError(
            f"layer {plan.name!r}: the stock model folded {[s.name for s in folded]} into its op; "
            "an int8 TFQP output folds affine layers and one final fused activation only"
        )
    quantization = g.per_tensor(stock_output)
    if quantization is None:
        raise ValueError(f"layer {plan.name!r}: its stock output is not a per-tensor int8 tensor")
    scale, zero_point = quantization
    slope, offset = thresholds.affine_map(plan, np.ones(plan.kernel.channels_out), affine_steps)
    act_min, act_max = activation_range(fused, scale, zero_point)
    return Int8Target(slope, offset, float(scale), int(zero_point), act_min, act_max)


def chain_ops(ctx: Context, plan: P.LayerPlan, packed: int, dims: List[int],
              or_masks: List[np.ndarray]):
    """The chain's max-pools (TFQP_BMAXPOOL2D) and flatten (RESHAPE of words) after
    the op's packed output; returns (final packed tensor, ops)."""
    g = ctx.graph
    ops = []
    current, shape = packed, list(dims)
    pool_index = 0
    channels = int(dims[-1])
    for step in plan.chain:
        if step.kind == P.MAX_POOL:
            layer = step.layer
            out_shape = [shape[0]] + [int(d) for d in layer.output_shape[1:3]] + [channels]
            target = ctx.new_packed(step.name, out_shape)
            inputs = [current]
            mask = or_masks[pool_index]
            pool_index += 1
            if mask.any():
                inputs.append(ctx.constant(f"tfqp/{step.name}/or_mask", packing.pack_bits(mask)))
            options = maxpool.BMAXPOOL2D.encode(
                channels=channels, filter_height=int(layer.pool_size[0]),
                filter_width=int(layer.pool_size[1]), stride_height=int(layer.strides[0]),
                stride_width=int(layer.strides[1]),
                padding=packing.PADDING_SAME if layer.padding == "same" else packing.PADDING_VALID,
            )
            ops.append(g.custom_op(maxpool.BMAXPOOL2D.name, inputs, [target], options))
            current, shape = target, out_shape
        elif step.kind == P.FLATTEN:
            n, h, w, c = shape
            words = -(-c // 32)
            target = g.add_tensor(tensor_name(step.name, SIGNS), [n, h * w * words], schema.TensorType.INT32)
            ops.append(g.reshape_op(current, target))
            if c % 32:
                ctx.padded_flatten[target] = PaddedFlatten(h, w, c)
            current, shape = target, [n, h * w * c]
    return current, ops


def stock_input(ctx: Context, anchor: int) -> int:
    return int(ctx.graph.ops[anchor].inputs[0])


def conv_options(plan: P.LayerPlan, channels_in: int) -> dict:
    geometry = plan.geometry
    return dict(
        channels_in=channels_in, filter_height=geometry.filter_height,
        filter_width=geometry.filter_width, stride_height=geometry.stride_height,
        stride_width=geometry.stride_width, dilation_height_factor=geometry.dilation_height,
        dilation_width_factor=geometry.dilation_width,
        padding=packing.PADDING_SAME if geometry.padding == "same" else packing.PADDING_VALID,
    )
