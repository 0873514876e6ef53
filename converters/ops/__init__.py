"""The TFQP ops (see ``registry``): importing the package registers every spec."""

from tfq_plus.converters.ops import binary, int8_layers, maxpool, signs  # noqa: F401
from tfq_plus.converters.ops.registry import (  # noqa: F401
    BOOLEAN, KERAS_SIGNS, KERAS_VALUES, REGISTRY, OpSpec, OpView, decode_options, is_tfqp, spec,
)
