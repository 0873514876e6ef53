"""The host build of the C kernels (``_tfqp_kernels``) behind the registry: one
prepared op per TFQP op of a model, called on its inputs.

Every call goes through the C op table's life cycle (parse -> output_dims ->
prepare -> init_table once, then eval), the same code the TFLite Micro and TFLite
adapters run.
"""

from typing import Callable, List

import numpy as np

from tfq_plus.converters import tflite_schema as schema
from tfq_plus.converters.ops.registry import OpView, spec


def kernels():
    from tfq_plus.converters import _tfqp_kernels

    return _tfqp_kernels


def _zero_point(tensor) -> int:
    if tensor is None or tensor.type != schema.TensorType.INT8:
        return 0
    quantization = schema.per_tensor_quantization(tensor)
    return int(quantization[1]) if quantization else 0


def prepare_op(view: OpView, example_inputs: List[np.ndarray]):
    """``view``'s op prepared by the C op table (``_tfqp_kernels.PreparedOp``) for
    non-constant inputs shaped like ``example_inputs`` (in input order)."""
    op_spec = spec(view.name)
    k = kernels()
    options = bytes(np.asarray(view.op.customOptions if view.op.customOptions is not None else [],
                               dtype=np.uint8))
    output = view.tensor(0, output=True)
    arrays = []
    example = iter(example_inputs)
    for position in range(len(view.op.inputs)):
        tensor = view.tensor(position)
        if tensor is None:
            continue
        data = view.constant(position)
        if data is None:
            arrays.append(np.ascontiguousarray(next(example)))
        else:
            arrays.append(np.ascontiguousarray(data))
    output_type = {schema.TensorType.INT8: "int8", schema.TensorType.INT32: "int32"}.get(output.type)
    if output_type is None:
        raise ValueError(f"{view.name}: output type {output.type} is not int8 or int32")
    return k.prepare(op_spec.name, arrays, options, output_type=output_type,
                     input_zero_point=_zero_point(view.tensor(0)),
                     output_zero_point=_zero_point(output))


def prepare(view: OpView, example_inputs: List[np.ndarray]) -> Callable[[List[np.ndarray]], np.ndarray]:
    """A callable running ``view``'s op on its non-constant inputs (list, in input
    order), prepared once for inputs shaped like ``example_inputs``."""
    prepared = prepare_op(view, example_inputs)

    def run(inputs: List[np.ndarray]) -> np.ndarray:
        return prepared(*[np.ascontiguousarray(value) for value in inputs])

    return run
