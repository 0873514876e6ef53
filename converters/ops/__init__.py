"""The TFQP ops (see ``registry``): importing the package registers every spec."""

from tfq_plus.converters.ops import binary, int8_layers, kbit, maxpool, shift, signs  # noqa: F401
from tfq_plus.converters.ops.binary import BCONV2D, BFULLY_CONNECTED  # noqa: F401
from tfq_plus.converters.ops.int8_layers import CONV2D_INT8, FULLY_CONNECTED_INT8  # noqa: F401
from tfq_plus.converters.ops.maxpool import BMAXPOOL2D  # noqa: F401
from tfq_plus.converters.ops.shift import (  # noqa: F401
    SHIFT_CONV2D, SHIFT_DEPTHWISE_CONV2D, SHIFT_FULLY_CONNECTED,
)
from tfq_plus.converters.ops.kbit import MAX_POOL_CODES, UNPACK_CODES  # noqa: F401
from tfq_plus.converters.ops.signs import BINARIZE, UNPACK  # noqa: F401
from tfq_plus.converters.ops.registry import (  # noqa: F401
    BOOLEAN, KERAS_SIGNS, KERAS_VALUES, REGISTRY, OpSpec, OpView, decode_options, is_tfqp, spec,
)
