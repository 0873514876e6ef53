"""The tensors of a codes output (``plans.CODES``) and the ops that read them.

The producing op writes int8 codes q = base + u of the plan's k-bit grid into a
new tensor of scale = step and the grid's zero point
(``activation_codes.CodeGrid.quantization``); the chain's max-pools become builtin
int8 MAX_POOL_2D ops (exact: a max of codes is the code of the max, the quantizer
being non-decreasing) and its flatten a RESHAPE, each into a tensor of the same
quantization. The convolution / dense ops that read the codes in the stock model
(after the stock clip and fake-quant of the grid, which then go) read the final
tensor instead: never a calibrated range (a builtin one with its bias rescaled to
the new input scale).
"""

from typing import List, Tuple

import numpy as np

from tfq_plus.converters import plans as P
from tfq_plus.converters import tflite_schema as schema
from tfq_plus.converters.patterns.context import Context, tensor_name
from tfq_plus.converters.tflite_schema import BuiltinOperator as Op

CODES = "codes"  # tensor names "tfqp/<Keras layer>/codes"
READER_OPS = (Op.CONV_2D, Op.DEPTHWISE_CONV_2D, Op.FULLY_CONNECTED)
PADDING = {"same": 0, "valid": 1}  # TFLite's Padding enum


def new_codes(ctx: Context, plan: P.LayerPlan, keras_layer: str, dims: List[int]) -> int:
    scale, zero_point = plan.output_grid.quantization
    quant = schema.fb.QuantizationParametersT()
    quant.scale = np.asarray([scale], dtype=np.float32)
    quant.zeroPoint = np.asarray([zero_point], dtype=np.int64)
    return ctx.graph.add_tensor(tensor_name(keras_layer, CODES), list(dims), schema.TensorType.INT8,
                                quant=quant)


def _max_pool(ctx: Context, layer, source: int, target: int):
    options = schema.fb.Pool2DOptionsT()
    options.padding = PADDING[layer.padding]
    options.strideH, options.strideW = (int(s) for s in layer.strides)
    options.filterHeight, options.filterWidth = (int(s) for s in layer.pool_size)
    options.fusedActivationFunction = 0
    return ctx.graph.builtin_op(Op.MAX_POOL_2D, [source], [target],
                                schema.BuiltinOptions.Pool2DOptions, options)


def output_tensors(ctx: Context, plan: P.LayerPlan, dims: List[int]) -> Tuple[int, list]:
    """(the op's codes output tensor, the chain's ops after it); the readers of the
    chain's end are rewired to the last tensor."""
    g = ctx.graph
    output = new_codes(ctx, plan, plan.name, dims)
    current, shape, ops = output, list(dims), []
    channels = int(dims[-1])
    for step in plan.chain:
        if step.kind == P.MAX_POOL:
            out_shape = [shape[0]] + [int(d) for d in step.layer.output_shape[1:3]] + [channels]
            target = new_codes(ctx, plan, step.name, out_shape)
            ops.append(_max_pool(ctx, step.layer, current, target))
        elif step.kind == P.FLATTEN:
            out_shape = [shape[0], int(np.prod(shape[1:]))]
            target = new_codes(ctx, plan, step.name, out_shape)
            ops.append(g.reshape_op(current, target))
        else:
            continue
        current, shape = target, out_shape
    for reader in ctx.plans.code_readers[plan.output_layer]:
        _rewire(ctx, plan, reader, current)
    ctx.codes[plan.output_layer] = current
    return output, ops


def _rewire(ctx: Context, plan: P.LayerPlan, reader: str, codes: int) -> None:
    """The stock convolution / dense op of Keras layer ``reader`` reads ``codes``."""
    g = ctx.graph
    planned = ctx.plans.layers.get(reader)
    if planned is not None:
        found = [ctx.anchor(planned)]
    else:
        # named by its output, or (writing a model output, named after that) by the
        # codes it reads: the stock clip and fake-quant of the reader's input quantizer
        found = [index for index, op in enumerate(g.ops) if g.code(index) in READER_OPS
                 and any(g.names_layer(int(t), reader) for t in (op.outputs[0], op.inputs[0]))]
    if len(found) != 1:
        raise ValueError(
            f"layer {reader!r} reads the k-bit codes of {plan.output_layer!r}, but the stock model has "
            f"{len(found)} convolution / dense ops named after it (expected one); k-bit codes deploy "
            "into convolution and dense layers"
        )
    op = g.ops[found[0]]
    stock = int(op.inputs[0])
    if int(np.prod(g.shape(stock))) != int(np.prod(g.shape(codes))):
        raise ValueError(
            f"layer {reader!r}: its stock op reads a tensor of shape {g.shape(stock)}, the codes of "
            f"{plan.output_layer!r} have shape {g.shape(codes)}"
        )
    inputs = np.asarray(op.inputs, dtype=np.int32).copy()
    inputs[0] = codes
    if planned is None and len(inputs) > 2 and inputs[2] >= 0:
        inputs[2] = _rescaled_bias(ctx, reader, stock, int(inputs[2]), plan.output_grid.quantization[0])
    op.inputs = inputs


def _rescaled_bias(ctx: Context, reader: str, stock: int, bias: int, scale: np.float32) -> int:
    """A builtin op's int32 bias (scale = input scale x filter scale) for its input
    read at ``scale`` instead of the stock tensor's: the bias is the one value the
    stock converter computed from the input scale (TFLite derives the rest at run
    time from the tensors)."""
    g = ctx.graph
    old_scale = g.per_tensor(stock)
    values = g.const(bias)
    tensor = g.tensors[bias]
    if old_scale is None or values is None or tensor.quantization is None:
        raise ValueError(f"layer {reader!r}: its stock op's input or bias is not quantized as int8 / int32")
    ratio = float(old_scale[0]) / float(scale)
    rescaled = np.clip(np.round(values.astype(np.float64) * ratio), -(2**31), 2**31 - 1).astype(np.int32)
    quant = schema.fb.QuantizationParametersT()
    quant.scale = (np.asarray(tensor.quantization.scale, np.float64) / ratio).astype(np.float32)
    quant.zeroPoint = np.zeros(len(quant.scale), dtype=np.int64)
    quant.quantizedDimension = tensor.quantization.quantizedDimension
    index = ctx.constant(f"tfqp/{reader}/bias", rescaled)
    g.tensors[index].quantization = quant
    return index
