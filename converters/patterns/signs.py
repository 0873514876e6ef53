"""Where a binarized tensor's signs come from, and how builtin ops read them.

- ``signs_of``: the packed signs a layer on signs reads (see ``binary``);
- ``binarize_streams``: TFQP_BINARIZE of an int32 stream wherever a planned layer
  binarizes it;
- ``unpack_for_builtins``: TFQP_UNPACK of packed signs into the stock model's
  int8 +-1 tensor wherever a builtin op (a layer not planned as a TFQP op, e.g. a
  float-kernel layer on binarized inputs) or a shift op reads them, so it sees
  Keras's signs;
- ``leave_streams``: QUANTIZE of an int32 stream into the stock int8 tensor a
  builtin op reads.
"""

from tfq_plus.converters import plans as P
from tfq_plus.converters import tflite_schema as schema
from tfq_plus.converters.ops import signs as sign_ops
from tfq_plus.converters.patterns.context import SIGNS, Context, tensor_name
from tfq_plus.converters.tflite_schema import BuiltinOperator as Op


def signs_of(ctx: Context, plan: P.LayerPlan) -> int:
    """The tensor of signs ``plan`` reads: packed (exact), or int8 (from builtins)."""
    source = plan.input_layer
    if source in ctx.signs:
        return ctx.signs[source]
    if source in ctx.values:
        return binarize(ctx, source)
    found = ctx.graph.find_binarize(plan.binarizer)
    if found is None:
        raise ValueError(
            f"layer {plan.name!r}: its binarization (in {plan.binarizer!r}) was not found in "
            "the stock model"
        )
    compare, _ = found
    ctx.fallback_signs.append(plan.name)
    return int(ctx.graph.ops[compare].inputs[0])


def binarize(ctx: Context, keras_layer: str) -> int:
    """TFQP_BINARIZE of a stream tensor's values, after the op that writes them."""
    values = ctx.values[keras_layer]
    dims = ctx.graph.shape(values)
    target = ctx.new_packed(keras_layer, dims)
    op = ctx.graph.custom_op(sign_ops.BINARIZE.name, [values], [target], sign_ops.BINARIZE.encode())
    ctx.graph.insert_after(ctx.position[keras_layer], [op])
    ctx.signs[keras_layer] = target
    return target


def unpack_for_builtins(ctx: Context) -> None:
    """Every binarization of a tensor whose signs exist packed (or as a stream):
    TFQP_UNPACK writes the stock +-1 tensor from the exact signs. Where no builtin
    op reads that tensor any more (a planned layer replaced its reader), the
    unpack is dead and ``Graph.commit`` drops it."""
    g = ctx.graph
    for source, consumers in ctx.plans.binarized.items():
        if source not in ctx.signs and source not in ctx.values:
            continue
        for consumer in consumers:
            found = g.find_binarize(consumer)
            if found is None or g.replaced(found[1]):
                continue
            _, select = found
            target = int(g.ops[select].outputs[0])
            if not any(not g.replaced(r) for r in g.readers.get(target, [])) and target not in g.outputs \
                    and target not in ctx.int8_signs_read:
                continue
            packed = ctx.signs.get(source)
            if packed is None:
                packed = binarize(ctx, source)
            if g.per_tensor(target) is None:
                raise ValueError(f"layer {consumer!r}: its +-1 tensor is not int8 in the stock model")
            positive, negative = _sign_codes(g, select)
            channels = int(g.shape(target)[-1])
            layout = ctx.padded_flatten.get(packed)
            op = g.custom_op(sign_ops.UNPACK.name, [packed], [target], sign_ops.UNPACK.encode(
                channels=channels, positive=positive, negative=negative,
                group=layout.channels if layout is not None else None))
            g.replace(select, [op])


def _sign_codes(g, select: int):
    """The int8 codes of +1 and -1 in the stock SELECT_V2's output."""
    op = g.ops[select]
    values = []
    for tensor in (int(op.inputs[1]), int(op.inputs[2])):
        data = g.const(tensor)
        if data is None or data.size != 1:
            raise ValueError("the stock binarization's SELECT_V2 does not select two constants")
        values.append(int(data.reshape(-1)[0]))
    return values[0], values[1]


def leave_streams(ctx: Context) -> None:
    """QUANTIZE every stream tensor into its stock int8 tensor, in place of the stock
    op that wrote it; where nothing reads that tensor any more, ``Graph.commit``
    drops the QUANTIZE."""
    g = ctx.graph
    for keras_layer, values in ctx.values.items():
        stock = g.tensor_of(keras_layer)
        if stock is None:
            continue
        producer = g.producer.get(stock)
        op = g.builtin_op(Op.QUANTIZE, [values], [stock])
        if producer is not None and not g.replaced(producer):
            g.replace(producer, [])
        g.insert_after(ctx.position[keras_layer], [op])
