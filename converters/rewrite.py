"""Rewrite: the stock int8 model + the plans -> the deploy model with TFQP ops.

For every plan (in the Keras model's layer order) the pattern of its op family
finds the layer's op in the stock model by name (``Context.anchor``), and puts in
its place the TFQP op that computes what the Keras layer and its folded chain
compute (``patterns``): inputs from the signs or stream values earlier plans
produced, outputs as the plan says. Then signs that builtin ops read are unpacked,
residual streams leave through QUANTIZE where int8 ops read them, and the stock ops
nothing reads any more are dropped with their tensors and buffers; last, k-bit codes
tensors between TFQP ops are stored packed (``packed_activations``).

A plan that cannot be placed is an error naming the layer; the rewrite never looks
at the stock model's int8 weights to decide what a layer is.
"""

from typing import Dict, List, NamedTuple, Optional

from tfq_plus.converters import plans as P
from tfq_plus.converters import tflite_schema as schema
from tfq_plus.converters.code_lists import check_setting as code_lists_setting
from tfq_plus.converters.graph import Graph
from tfq_plus.converters.ops import REGISTRY
from tfq_plus.converters.packed_activations import pack_code_tensors
from tfq_plus.converters.patterns import binary, int4, int8, shift, signs
from tfq_plus.converters.patterns.context import Context

# op family (``LayerPlan.family``) -> pattern
PATTERNS = {"binary": binary.apply, "int4": int4.apply, "int8": int8.apply, "shift": shift.apply}


class RewriteResult(NamedTuple):
    flatbuffer: bytes
    ops: Dict[str, List[str]]  # Keras layer -> the TFQP ops it became
    fallback_signs: List[str]  # layers whose input signs come from builtin int8 tensors


def rewrite(flatbuffer: bytes, plans: P.Plans, *, model_name: Optional[str] = None,
            stream_scales: Optional[Dict[int, float]] = None,
            code_lists=False, pack_activations: bool = True) -> RewriteResult:
    """Replace the planned layers of a reference model by TFQP ops.

    Args:
        flatbuffer: the reference model (stock converter output of the exported model).
        plans: ``planning.plan`` of the Keras model.
        model_name: the exported model's name (the first component of tensor names).
        stream_scales: residual stream id -> int32 scale (``streams.calibrate_streams``).
        code_lists: live-code lists of shift fully-connected layers, "auto", True or
            False (``code_lists``).
        pack_activations: store k-bit codes tensors between TFQP ops packed
            (``packed_activations``); False: one int8 per code.
    """
    model = schema.read(flatbuffer)
    if len(model.subgraphs) != 1:
        raise ValueError(f"rewrite: expected a model with one subgraph, got {len(model.subgraphs)}")
    graph = Graph(model, model_name)
    ctx = Context(graph, plans, dict(stream_scales or {}),
                  code_lists=code_lists_setting(code_lists))
    for plan in plans:
        PATTERNS[plan.family](ctx, plan)
    signs.unpack_for_builtins(ctx)
    signs.leave_streams(ctx)
    graph.commit()
    if pack_activations:
        pack_code_tensors(model)
    check_graph(model)
    return RewriteResult(schema.write(model), ctx.replaced, ctx.fallback_signs)


def _holds_no_values(model, tensor) -> bool:
    """A constant, a variable (state TFLite keeps between runs), or a tensor of
    zero elements: nothing an earlier op has to write."""
    return (schema.constant(model, tensor) is not None or bool(tensor.isVariable)
            or 0 in schema.shape(tensor))


def check_graph(model) -> None:
    """Every tensor an op reads is a constant, a model input, or written by an
    earlier op; every TFQP op is a known one."""
    graph = model.subgraphs[0]
    written = {int(t) for t in graph.inputs}
    for index, op in enumerate(graph.operators):
        name = schema.op_name(model, op)
        if schema.is_custom(model, op) and name not in REGISTRY:
            raise ValueError(f"rewrite: op {index} is an unknown custom op {name!r}")
        for t in op.inputs:
            t = int(t)
            if t < 0 or t in written or _holds_no_values(model, graph.tensors[t]):
                continue
            raise ValueError(
                f"rewrite: op {index} ({name}) reads tensor {schema.tensor_name(graph.tensors[t])!r} "
                "that no earlier op writes (a stock op the plans replaced is still needed)"
            )
        written.update(int(t) for t in op.outputs)
    for t in graph.outputs:
        if int(t) not in written:
            raise ValueError(f"rewrite: model output {schema.tensor_name(graph.tensors[int(t)])!r} is never written")
