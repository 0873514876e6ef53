"""The TFLite Micro and TFLite adapters (micro/tflm, micro/tflite) run deploy models.

Each adapter is compiled against its framework and runs whole .tflite models with
TFQP ops in the framework's own interpreter; the outputs must equal, byte for byte,
what the host build of the same C kernels (``tfq_plus.converters._tfqp_kernels``)
computes for the same model:

- TFLite Micro: ``micro/tflm``'s host runner (``tflite::MicroInterpreter``). Needs a
  TFLM source tree with its host library: set ``TFLM_DIR`` (``make -C micro
  tflm-check TFLM_DIR=...`` does, after building the runners); skipped otherwise.
- TFLite: ``micro/tflite`` built into a shared library whose registerer adds the
  TFQP ops to stock ``tf.lite.Interpreter`` (``custom_op_registerers``). Needs the
  TFLite headers of the installed TensorFlow's version: set ``TFLITE_INCLUDE``
  (``make -C micro tflite-check TFLITE_INCLUDE=...``); skipped otherwise.

The models: hand-made flatbuffers holding only TFQP ops (built here with TFLite's
schema and ``converters/packing.py``, so they do not depend on the converter), the
converter's deploy models (builtin and TFQP ops, compared with ``HostInterpreter``),
and corrupted models that both adapters must reject through the portable validation
with its message.
"""

import os
import pathlib
import subprocess

import numpy as np
import pytest
from tensorflow.lite.python import schema_py_generated as fb
from tensorflow.lite.tools import flatbuffer_utils

from tfq_plus.converters import _tfqp_kernels as kernels
from tfq_plus.converters.ops import BCONV2D, BFULLY_CONNECTED, BMAXPOOL2D  # noqa: F401
from tfq_plus.converters import packing

REPO = pathlib.Path(__file__).resolve().parent.parent
MICRO = REPO / "micro"

TFLM_DIR = os.environ.get("TFLM_DIR")
needs_tflm = pytest.mark.skipif(
    not TFLM_DIR,
    reason="TFLM_DIR is not set: the TFLite Micro adapters need a TFLM source tree with its "
    "host library (run `make -C micro tflm-check TFLM_DIR=/path/to/tflite-micro`)",
)

# The input codes of +1 / -1 when int8 activations are quantized with scale 2/255 and
# zero point -1 (the stock converter's sign output): q - zp = 128 and -127.
P, N = 128, -127


# --- hand-made TFQP models -----------------------------------------------------------


class ModelBuilder:
    """A one-subgraph .tflite model written with TFLite's schema object API."""

    def __init__(self):
        self.model = fb.ModelT()
        self.model.version = 3
        self.model.description = b"tfq-plus adapter test"
        self.model.buffers = [fb.BufferT()]
        self.model.operatorCodes = []
        self.graph = fb.SubGraphT()
        self.graph.tensors = []
        self.graph.operators = []
        self.model.subgraphs = [self.graph]

    def tensor(self, shape, dtype, *, data=None, zero_point=None, scale=1.0):
        tensor = fb.TensorT()
        tensor.name = f"t{len(self.graph.tensors)}".encode()
        tensor.shape = np.asarray(shape, dtype=np.int32)
        tensor.type = {np.int8: fb.TensorType.INT8, np.int16: fb.TensorType.INT16,
                       np.int32: fb.TensorType.INT32}[dtype]
        tensor.buffer = 0
        if data is not None:
            buffer = fb.BufferT()
            raw = np.ascontiguousarray(data, dtype=dtype).astype(np.dtype(dtype).newbyteorder("<"))
            buffer.data = np.frombuffer(raw.tobytes(), dtype=np.uint8)
            self.model.buffers.append(buffer)
            tensor.buffer = len(self.model.buffers) - 1
        if zero_point is not None:
            tensor.quantization = fb.QuantizationParametersT()
            tensor.quantization.scale = [float(scale)]
            tensor.quantization.zeroPoint = [int(zero_point)]
        self.graph.tensors.append(tensor)
        return len(self.graph.tensors) - 1

    def custom(self, name, inputs, outputs, options):
        codes = [c.customCode for c in self.model.operatorCodes]
        if name.encode() not in codes:
            code = fb.OperatorCodeT()
            code.builtinCode = code.deprecatedBuiltinCode = fb.BuiltinOperator.CUSTOM
            code.customCode = name.encode()
            code.version = 1
            self.model.operatorCodes.append(code)
            codes.append(name.encode())
        op = fb.OperatorT()
        op.opcodeIndex = codes.index(name.encode())
        op.inputs = np.asarray(inputs, dtype=np.int32)
        op.outputs = np.asarray(outputs, dtype=np.int32)
        op.customOptions = np.frombuffer(bytes(options), dtype=np.uint8)
        op.customOptionsFormat = fb.CustomOptionsFormat.FLEXBUFFERS
        self.graph.operators.append(op)
        return op

    def build(self, inputs, outputs) -> bytes:
        self.graph.inputs = np.asarray(inputs, dtype=np.int32)
        self.graph.outputs = np.asarray(outputs, dtype=np.int32)
        return bytes(flatbuffer_utils.convert_object_to_bytearray(self.model))


def random_filter(rng, shape):
    """Packed sign bits of a random +-1 filter [Cout, ..., Cin] (padding bits 0)."""
    return packing.pack_filter(rng.choice([-1, 1], shape))


def int8_transform(rng, channels, taps):
    """[Cout, 4] rows (W, bias, multiplier, shift) spreading the outputs over int8."""
    weight = rng.choice([-127, 127], channels)
    bias = rng.integers(-2000, 2000, channels)
    multiplier = rng.integers(1 << 30, (1 << 31) - 1, channels)
    # |acc| <= 127 * 128 * taps: a right shift bringing that near 2^7
    shift = np.full(channels, -int(np.log2(127 * 128 * taps)) + 8) + rng.integers(-1, 2, channels)
    return np.stack([weight, bias, multiplier, shift], axis=1).astype(np.int32)


def packed_transform(rng, channels, taps):
    """[Cout, 2] rows (direction, threshold)."""
    direction = rng.choice([-1, 1], channels)
    threshold = rng.integers(-taps // 3, taps // 3 + 1, channels)
    return np.stack([direction, threshold], axis=1).astype(np.int32)


class TfqpModel:
    """A model of TFQP ops only, with its expected outputs from the host kernels."""

    def __init__(self, flatbuffer, input_shape, expected):
        self.flatbuffer = flatbuffer
        self.input_shape = input_shape
        self.expected = expected  # inputs [samples, ...] -> bytes of all outputs per sample


def conv_chain_model(seed=0):
    """int8 [1,9,9,40] -> BCONV2D 3x3 SAME pad 1 -> packed 64 -> BMAXPOOL2D 2x2/2 SAME
    -> BCONV2D 3x3 dilation 2 SAME pad 0 -> int8 33 (zp 3) -> BCONV2D 3x3 stride 2
    VALID from int8 -> packed 20; outputs: the int8 33 and the packed 20."""
    rng = np.random.default_rng(seed)
    b = ModelBuilder()
    x = b.tensor([1, 9, 9, 40], np.int8, zero_point=-1, scale=2 / 255)
    layers = []

    f1, t1 = random_filter(rng, (64, 3, 3, 40)), packed_transform(rng, 64, 360)
    o1 = BCONV2D.encode(channels_in=40, filter_height=3, filter_width=3, padding="same",
                                 pad_value=1)
    y1 = b.tensor([1, 9, 9, 2], np.int32)
    b.custom("TFQP_BCONV2D", [x, b.tensor(f1.shape, np.int32, data=f1),
                              b.tensor(t1.shape, np.int32, data=t1)], [y1], o1)
    layers.append(lambda v: kernels.bconv2d(v, f1, t1, o1, input_zero_point=-1, packed_output=True))

    o2 = BMAXPOOL2D.encode(channels=64, filter_height=2, filter_width=2, stride_height=2,
                                    stride_width=2, padding="same")
    y2 = b.tensor([1, 5, 5, 2], np.int32)
    b.custom("TFQP_BMAXPOOL2D", [y1], [y2], o2)
    layers.append(lambda v: kernels.bmaxpool2d(v, o2))

    f3, t3 = random_filter(rng, (33, 3, 3, 64)), int8_transform(rng, 33, 576)
    o3 = BCONV2D.encode(channels_in=64, filter_height=3, filter_width=3,
                                 dilation_height_factor=2, dilation_width_factor=2, padding="same",
                                 pad_value=0, input_pos=P, input_neg=N, act_min=-128, act_max=127)
    y3 = b.tensor([1, 5, 5, 33], np.int8, zero_point=3, scale=0.05)
    b.custom("TFQP_BCONV2D", [y2, b.tensor(f3.shape, np.int32, data=f3),
                              b.tensor(t3.shape, np.int32, data=t3)], [y3], o3)
    layers.append(lambda v: kernels.bconv2d(v, f3, t3, o3, output_zero_point=3))

    f4, t4 = random_filter(rng, (20, 3, 3, 33)), packed_transform(rng, 20, 297)
    o4 = BCONV2D.encode(channels_in=33, filter_height=3, filter_width=3, stride_height=2,
                                 stride_width=2, padding="valid")
    y4 = b.tensor([1, 2, 2, 1], np.int32)
    b.custom("TFQP_BCONV2D", [y3, b.tensor(f4.shape, np.int32, data=f4),
                              b.tensor(t4.shape, np.int32, data=t4)], [y4], o4)
    layers.append(lambda v: kernels.bconv2d(v, f4, t4, o4, input_zero_point=3, packed_output=True))

    def expected(inputs):
        outputs = b""
        for sample in inputs:
            values = [sample]  # [1, 9, 9, 40]: the model's batch of one
            for layer in layers:
                values.append(layer(np.ascontiguousarray(values[-1])))
            outputs += values[3].tobytes() + values[4].tobytes()
        return outputs

    return TfqpModel(b.build([x], [y3, y4]), (1, 9, 9, 40), expected)


def dense_chain_model(seed=1):
    """int8 [3,100] (batch 3, zp 5) -> BFULLY_CONNECTED -> packed 70 -> BFULLY_CONNECTED
    -> int8 10 (zp -4, clamped to [-100, 90])."""
    rng = np.random.default_rng(seed)
    b = ModelBuilder()
    x = b.tensor([3, 100], np.int8, zero_point=5, scale=0.1)
    w1, t1 = random_filter(rng, (70, 100)), packed_transform(rng, 70, 100)
    o1 = BFULLY_CONNECTED.encode(channels_in=100)
    y1 = b.tensor([3, 3], np.int32)
    b.custom("TFQP_BFULLY_CONNECTED", [x, b.tensor(w1.shape, np.int32, data=w1),
                                       b.tensor(t1.shape, np.int32, data=t1)], [y1], o1)
    w2, t2 = random_filter(rng, (10, 70)), int8_transform(rng, 10, 70)
    o2 = BFULLY_CONNECTED.encode(channels_in=70, input_pos=P, input_neg=N, act_min=-100,
                                          act_max=90)
    y2 = b.tensor([3, 10], np.int8, zero_point=-4, scale=0.3)
    b.custom("TFQP_BFULLY_CONNECTED", [y1, b.tensor(w2.shape, np.int32, data=w2),
                                       b.tensor(t2.shape, np.int32, data=t2)], [y2], o2)

    def expected(inputs):
        outputs = b""
        for sample in inputs:
            hidden = kernels.bfully_connected(np.ascontiguousarray(sample), w1, t1, o1,
                                              input_zero_point=5, packed_output=True)
            outputs += kernels.bfully_connected(hidden, w2, t2, o2, output_zero_point=-4).tobytes()
        return outputs

    return TfqpModel(b.build([x], [y2]), (3, 100), expected)


def _options(**values) -> bytes:
    from flatbuffers import flexbuffers

    return bytes(flexbuffers.Dumps({key: int(value) for key, value in values.items()}))


def _value_transform(rng, channels):
    """[Cout, 3] rows (multiplier, shift, bias) of the int32 value output."""
    return np.stack([rng.integers(-3000, 3000, channels), rng.integers(0, 12, channels),
                     rng.integers(-500, 500, channels)], axis=1).astype(np.int32)


def new_ops_model(seed=2):
    """The ops and variants added with the C op table, chained:
    int8 [1,8,8,8] (zp -5) -> CONV2D_INT8 3x3 SAME -> int32 values 16 -> BINARIZE ->
    packed 16 -> BMAXPOOL2D 2x2/2 with an or_mask -> packed 16 -> BCONV2D 3x3
    int32_output -> int32 values 5; outputs: the pooled bits and the values."""
    rng = np.random.default_rng(seed)
    b = ModelBuilder()
    x = b.tensor([1, 8, 8, 8], np.int8, zero_point=-5, scale=0.1)
    w1 = rng.integers(-127, 128, (16, 3, 3, 8)).astype(np.int8)
    t1 = _value_transform(rng, 16)
    o1 = _options(channels_in=8, filter_height=3, filter_width=3, stride_height=1,
                  stride_width=1, dilation_height_factor=1, dilation_width_factor=1, padding=0,
                  int32_output=1)
    y1 = b.tensor([1, 8, 8, 16], np.int32)
    b.custom("TFQP_CONV2D_INT8", [x, b.tensor(w1.shape, np.int8, data=w1),
                                  b.tensor(t1.shape, np.int32, data=t1)], [y1], o1)
    y2 = b.tensor([1, 8, 8, 1], np.int32)
    b.custom("TFQP_BINARIZE", [y1], [y2], b"")
    mask = packing.pack_bits(rng.random(16) < 0.5)
    o3 = BMAXPOOL2D.encode(channels=16, filter_height=2, filter_width=2,
                                    stride_height=2, stride_width=2)
    y3 = b.tensor([1, 4, 4, 1], np.int32)
    b.custom("TFQP_BMAXPOOL2D", [y2, b.tensor(mask.shape, np.int32, data=mask)], [y3], o3)
    f4, t4 = random_filter(rng, (5, 3, 3, 16)), _value_transform(rng, 5)
    o4 = _options(channels_in=16, filter_height=3, filter_width=3, stride_height=1,
                  stride_width=1, dilation_height_factor=1, dilation_width_factor=1, padding=0,
                  pad_value=1, int32_output=1)
    y4 = b.tensor([1, 4, 4, 5], np.int32)
    b.custom("TFQP_BCONV2D", [y3, b.tensor(f4.shape, np.int32, data=f4),
                              b.tensor(t4.shape, np.int32, data=t4)], [y4], o4)

    def expected(inputs):
        outputs = b""
        for sample in inputs:
            v1 = kernels.run("TFQP_CONV2D_INT8", [np.ascontiguousarray(sample), w1, t1], o1,
                             output_type="int32", input_zero_point=-5)
            v2 = kernels.run("TFQP_BINARIZE", [v1], b"", output_type="int32")
            v3 = kernels.run("TFQP_BMAXPOOL2D", [v2, mask], o3, output_type="int32")
            v4 = kernels.run("TFQP_BCONV2D", [v3, f4, t4], o4, output_type="int32")
            outputs += v3.tobytes() + v4.tobytes()
        return outputs

    return TfqpModel(b.build([x], [y3, y4]), (1, 8, 8, 8), expected)


def new_dense_model(seed=3):
    """int8 [2,50] (zp 7) -> FULLY_CONNECTED_INT8 -> packed 40 -> BFULLY_CONNECTED
    int32_output -> int32 values 6."""
    rng = np.random.default_rng(seed)
    b = ModelBuilder()
    x = b.tensor([2, 50], np.int8, zero_point=7, scale=0.2)
    w1 = rng.integers(-127, 128, (40, 50)).astype(np.int8)
    t1 = np.stack([rng.choice([-1, 1], 40), rng.integers(-3000, 3000, 40)],
                  axis=1).astype(np.int32)
    o1 = _options(channels_in=50)
    y1 = b.tensor([2, 2], np.int32)
    b.custom("TFQP_FULLY_CONNECTED_INT8", [x, b.tensor(w1.shape, np.int8, data=w1),
                                           b.tensor(t1.shape, np.int32, data=t1)], [y1], o1)
    w2, t2 = random_filter(rng, (6, 40)), _value_transform(rng, 6)
    o2 = _options(channels_in=40, int32_output=1)
    y2 = b.tensor([2, 6], np.int32)
    b.custom("TFQP_BFULLY_CONNECTED", [y1, b.tensor(w2.shape, np.int32, data=w2),
                                       b.tensor(t2.shape, np.int32, data=t2)], [y2], o2)

    def expected(inputs):
        outputs = b""
        for sample in inputs:
            v1 = kernels.run("TFQP_FULLY_CONNECTED_INT8", [np.ascontiguousarray(sample), w1, t1],
                             o1, output_type="int32", input_zero_point=7)
            outputs += kernels.run("TFQP_BFULLY_CONNECTED", [v1, w2, t2], o2,
                                   output_type="int32").tobytes()
        return outputs

    return TfqpModel(b.build([x], [y2]), (2, 50), expected)


def _kernel_vectors():
    """micro/cortex_m/kernel_vectors.py (the random shift-op builders)."""
    import sys

    sys.path.insert(0, str(MICRO / "cortex_m"))
    import kernel_vectors

    return kernel_vectors


def shift_layers(seed=0):
    """The three shift ops on random coded weights (kernel_vectors' builders): a 4-bit
    3x3 SAME conv 4 -> 8 (output zp -5), a ternary 2-bit 3x3 stride-2 depthwise with
    multiplier 2 and two classes (output zp 1), a 5-bit T=2 dense layer on the rank-4
    tensor (rows of 3*3*16 = 144) -> packed 40. [(case, output zero point, output shape)]
    for an input [2, 6, 6, 4]."""
    kernel_vectors = _kernel_vectors()
    rng = np.random.default_rng(seed)
    layers = [
        ("conv", dict(kh=3, kw=3, cin=4, cout=8, bits=4), -5, (2, 6, 6, 8)),
        ("depthwise", dict(kh=3, kw=3, cin=8, stride=(2, 2), depth_multiplier=2, bits=2,
                           classes=2), 1, (2, 3, 3, 16)),
        ("dense", dict(cin=144, cout=40, bits=5, terms=2, output_kind="packed"), 0, (2, 2)),
    ]
    return [(kernel_vectors.shift_case(rng, op, op, height=6, width=6, **args), zero_point,
             shape) for op, args, zero_point, shape in layers]


def shift_chain_model(seed=0):
    """int8 [2,6,6,4] (zp 3) -> SHIFT_CONV2D -> SHIFT_DEPTHWISE_CONV2D ->
    SHIFT_FULLY_CONNECTED -> packed 40 (shift_layers)."""
    layers = shift_layers(seed)
    b = ModelBuilder()
    tensor = x = b.tensor([2, 6, 6, 4], np.int8, zero_point=3, scale=0.1)
    for case, zero_point, shape in layers:
        words, table, transform = case.inputs[1:]
        packed = case.output.dtype == np.int32
        y = b.tensor(shape, np.int32 if packed else np.int8,
                     zero_point=None if packed else zero_point, scale=0.2)
        b.custom(case.op, [tensor, b.tensor(words.shape, np.int32, data=words),
                           b.tensor(table.shape, np.int16, data=table),
                           b.tensor(transform.shape, np.int32, data=transform)], [y],
                 case.options)
        tensor = y

    def expected(inputs):
        outputs = b""
        for sample in inputs:
            value, input_zero_point = np.ascontiguousarray(sample), 3
            for case, zero_point, _ in layers:
                value = kernels.run(case.op, [value] + case.inputs[1:], case.options,
                                    output_type=case.output.dtype.name,
                                    input_zero_point=input_zero_point,
                                    output_zero_point=zero_point)
                input_zero_point = zero_point
            outputs += value.tobytes()
        return outputs

    return TfqpModel(b.build([x], [tensor]), (2, 6, 6, 4), expected)


def shift_lists_model(seed=0):
    """int8 [1, 300] (zp -7) -> SHIFT_FULLY_CONNECTED with its optional input 4, the
    live-code lists (most words dead: the Cortex-M path runs from them) -> int8 33."""
    case = _kernel_vectors().shift_case(np.random.default_rng(seed), "lists", "dense", cin=300,
                                     cout=33, bits=4, dead_words=0.8, code_lists=True)
    b = ModelBuilder()
    x = b.tensor([1, 300], np.int8, zero_point=-7, scale=0.1)
    y = b.tensor([1, 33], np.int8, zero_point=4, scale=0.2)
    constants = [b.tensor(c.shape, c.dtype.type, data=c) for c in case.inputs[1:]]
    b.custom(case.op, [x] + constants, [y], case.options)

    def expected(inputs):
        return b"".join(
            kernels.run(case.op, [np.ascontiguousarray(sample)] + case.inputs[1:], case.options,
                        output_type="int8", input_zero_point=-7, output_zero_point=4).tobytes()
            for sample in inputs)

    return TfqpModel(b.build([x], [y]), (1, 300), expected)


MODELS = [conv_chain_model, dense_chain_model, new_ops_model, new_dense_model,
          shift_chain_model, shift_lists_model]


def random_inputs(shape, count, seed):
    return np.random.default_rng(seed).integers(-128, 128, (count,) + tuple(shape), dtype=np.int8)


def corrupted(flatbuffer, edit) -> bytes:
    """The model with `edit(model_object)` applied."""
    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(flatbuffer))
    edit(model)
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def truncate_options(model):
    op = model.subgraphs[0].operators[0]
    op.customOptions = op.customOptions[: len(op.customOptions) // 2]


def wrong_output_height(model):
    graph = model.subgraphs[0]
    graph.tensors[graph.operators[2].outputs[0]].shape[1] += 1


def options_with_channels_in(channels):
    def edit(model):
        op = model.subgraphs[0].operators[0]
        options = BCONV2D.encode(channels_in=channels, filter_height=3, filter_width=3,
                                          padding="same", pad_value=1)
        op.customOptions = np.frombuffer(options, dtype=np.uint8)
    return edit


def pad_value_out_of_range(model):
    from flatbuffers import flexbuffers

    op = model.subgraphs[0].operators[0]
    options = dict(channels_in=40, filter_height=3, filter_width=3, stride_height=1,
                   stride_width=1, dilation_height_factor=1, dilation_width_factor=1,
                   padding=0, pad_value=2)
    op.customOptions = np.frombuffer(bytes(flexbuffers.Dumps(options)), dtype=np.uint8)


def mask_with_padding_bits(model):
    """The new-ops model's or_mask (16 channels) with a padding bit set."""
    graph = model.subgraphs[0]
    mask = graph.tensors[graph.operators[2].inputs[1]]
    data = np.frombuffer(bytes(model.buffers[mask.buffer].data), np.uint32).copy()
    data[0] |= np.uint32(1 << 20)
    model.buffers[mask.buffer].data = np.frombuffer(data.astype("<u4").tobytes(), np.uint8)


def filter_as_graph_input(model):
    graph = model.subgraphs[0]
    graph.tensors[graph.operators[0].inputs[1]].buffer = 0
    graph.inputs = np.append(graph.inputs, graph.operators[0].inputs[1]).astype(np.int32)


def _quantize(model, tensor, scales, zero_points, dimension=0):
    quantization = fb.QuantizationParametersT()
    quantization.scale = [float(v) for v in scales]
    quantization.zeroPoint = [int(v) for v in zero_points]
    quantization.quantizedDimension = dimension
    model.subgraphs[0].tensors[tensor].quantization = quantization


def input_scale_negative(model):
    _quantize(model, model.subgraphs[0].operators[0].inputs[0], [-2 / 255], [-1])


def output_scale_nan(model):
    _quantize(model, model.subgraphs[0].operators[2].outputs[0], [float("nan")], [3])


def input_zero_points_empty(model):
    _quantize(model, model.subgraphs[0].operators[0].inputs[0], [2 / 255], [])


def input_quantized_per_channel(model):
    _quantize(model, model.subgraphs[0].operators[0].inputs[0], [2 / 255] * 40, [-1] * 40, 3)


def output_is_a_constant(model):
    """The int8 output of the third op given a buffer of the model (read-only data)."""
    graph = model.subgraphs[0]
    output = graph.tensors[graph.operators[2].outputs[0]]
    buffer = fb.BufferT()
    buffer.data = np.zeros(int(np.prod(output.shape)), np.uint8)
    model.buffers.append(buffer)
    output.buffer = len(model.buffers) - 1


def weights_zero_point_nonzero(model):
    """The new-ops model's int8 weights (CONV2D_INT8) quantized with zero point 1."""
    _quantize(model, model.subgraphs[0].operators[0].inputs[1], [0.01], [1])


# (edit, op, text the portable validation reports)
CORRUPTIONS = [
    (truncate_options, "TFQP_BCONV2D", "malformed options"),
    (pad_value_out_of_range, "TFQP_BCONV2D", "must be 0 or 1 (pad_value = 2)"),
    (options_with_channels_in(41), "TFQP_BCONV2D", "int8 input depth must equal channels_in"),
    (filter_as_graph_input, "TFQP_BCONV2D", "must be a constant tensor"),
    (input_scale_negative, "TFQP_BCONV2D", "scales must be finite and > 0 (value: the index) (input = 0)"),
    (output_scale_nan, "TFQP_BCONV2D", "scales must be finite and > 0 (value: the index) (output = 0)"),
    (input_zero_points_empty, "TFQP_BCONV2D", "int8 activations need per-tensor quantization"),
    (input_quantized_per_channel, "TFQP_BCONV2D", "int8 activations need per-tensor quantization"),
    (output_is_a_constant, "TFQP_BCONV2D", "output must not be a constant tensor"),
]
# (edit, op, text) on new_ops_model
NEW_OP_CORRUPTIONS = [
    (mask_with_padding_bits, "TFQP_BMAXPOOL2D", "or_mask padding bits"),
    (weights_zero_point_nonzero, "TFQP_CONV2D_INT8", "weights must be symmetric"),
]
# TFLite's model loader itself rejects a zero-point vector shorter than the scales
# ("QuantizationParam has 0 zero_point values and 1 scale values"), before Prepare.
TFLITE_CORRUPTIONS = [c for c in CORRUPTIONS if c[0] is not input_zero_points_empty]
# TFLite Micro cannot resize tensors: an output shape that contradicts the options is
# rejected (TFLite resizes the output instead).
TFLM_CORRUPTIONS = CORRUPTIONS + [
    (wrong_output_height, "TFQP_BCONV2D", "output height does not match the options"),
]


# --- converter deploy models -------------------------------------------------------


CONVERTER_MODELS = ["mixed", "pool_bn", "bireal", "signs_float"]


def converter_model(name):
    """A converter deploy model (every TFQP op: int16 and int8 weights, packed and
    int8 outputs, residual streams, unpack) and the Interpreter's raw outputs on
    int8 samples."""
    from test_converter_models import converted, samples

    from tfq_plus.converters import Interpreter

    result = converted(name)
    interpreter = Interpreter(result.deploy)
    q = interpreter.quantize(samples(result.model, 12, seed=7))
    expected = interpreter.predict(q, raw=True)
    return result.deploy, q, expected


# --- TFLite Micro ---------------------------------------------------------------------


def tflm_runners():
    """Paths of the host runners, one per kernel path (built here if make did not)."""
    given = os.environ.get("TFQP_TFLM_RUNNERS")
    if given:
        return given.split()
    subprocess.run(["make", "-C", str(MICRO / "tflm"), "runner", f"TFLM_DIR={TFLM_DIR}"],
                   check=True, capture_output=True)
    build = MICRO / "build" / "tflm"
    return sorted(str(p) for p in build.glob("*/tflm_runner"))


@pytest.fixture(scope="module")
def runners():
    paths = tflm_runners()
    assert paths, "no TFLM runner was built"
    return paths


def assert_same_bytes(got: bytes, expected: bytes, where: str):
    assert len(got) == len(expected), f"{where}: {len(got)} output bytes, {len(expected)} expected"
    differ = np.flatnonzero(np.frombuffer(got, np.uint8) != np.frombuffer(expected, np.uint8))
    assert differ.size == 0, f"{where}: {differ.size} bytes differ, first at byte {differ[:5]}"


def run_tflm(runner, flatbuffer, inputs, tmp_path):
    model = tmp_path / "model.tflite"
    model.write_bytes(flatbuffer)
    (tmp_path / "inputs.bin").write_bytes(np.ascontiguousarray(inputs).tobytes())
    result = subprocess.run(
        [runner, str(model), str(tmp_path / "inputs.bin"), str(tmp_path / "outputs.bin"),
         str(len(inputs))],
        capture_output=True, text=True, timeout=300,
    )
    return result, tmp_path / "outputs.bin"


@needs_tflm
@pytest.mark.parametrize("build", MODELS)
def test_tflm_runs_tfqp_models_like_the_host_kernels(runners, build, tmp_path):
    model = build()
    inputs = random_inputs(model.input_shape, 16, seed=3)
    expected = model.expected(inputs)
    assert len(set(expected)) > 16  # the outputs are not a constant
    for runner in runners:
        result, outputs = run_tflm(runner, model.flatbuffer, inputs, tmp_path)
        assert result.returncode == 0, result.stderr
        assert_same_bytes(outputs.read_bytes(), expected, runner)
        assert "arena_used_bytes" in result.stdout


@needs_tflm
@pytest.mark.parametrize("name", CONVERTER_MODELS)
def test_tflm_runs_converter_deploy_models_like_the_host_interpreter(runners, name, tmp_path):
    deploy, inputs, expected = converter_model(name)
    for runner in runners:
        result, outputs = run_tflm(runner, deploy, inputs, tmp_path)
        assert result.returncode == 0, result.stderr
        assert_same_bytes(outputs.read_bytes(), expected.tobytes(), runner)


@needs_tflm
@pytest.mark.parametrize("edit, op, message", TFLM_CORRUPTIONS,
                         ids=[c[0].__name__ for c in TFLM_CORRUPTIONS])
def test_tflm_rejects_corrupted_models_with_the_portable_message(runners, edit, op, message,
                                                                  tmp_path):
    model = conv_chain_model()
    flatbuffer = corrupted(model.flatbuffer, edit)
    # AllocateTensors fails before any input is read
    inputs = random_inputs(model.input_shape, 1, seed=0)
    for runner in runners:
        result, _ = run_tflm(runner, flatbuffer, inputs, tmp_path)
        assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
        assert f"{op}: " in result.stderr and message in result.stderr, result.stderr


@needs_tflm
@pytest.mark.parametrize("edit, op, message", NEW_OP_CORRUPTIONS,
                         ids=[c[0].__name__ for c in NEW_OP_CORRUPTIONS])
def test_tflm_rejects_corrupted_new_op_models(runners, edit, op, message, tmp_path):
    model = new_ops_model()
    flatbuffer = corrupted(model.flatbuffer, edit)
    inputs = random_inputs(model.input_shape, 1, seed=0)
    for runner in runners:
        result, _ = run_tflm(runner, flatbuffer, inputs, tmp_path)
        assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
        assert f"{op}: " in result.stderr and message in result.stderr, result.stderr


@needs_tflm
@pytest.mark.parametrize("name", CONVERTER_MODELS)
def test_tflm_op_resolver_emitted_by_the_converter_compiles(name, tmp_path):
    """write_c_array's resolver header compiles against the TFLM adapters' header."""
    from tfq_plus.converters import write_c_array

    deploy, _, _ = converter_model(name)
    write_c_array(deploy, tmp_path, "bnn")
    main = tmp_path / "main.cc"
    main.write_text(
        '#include "bnn.h"\n#include "bnn_op_resolver.h"\n'
        "int main() {\n  static bnn_op_resolver resolver;\n"
        "  return bnn_register_ops(resolver) == kTfLiteOk && bnn_len > 0 ? 0 : 1;\n}\n"
    )
    downloads = pathlib.Path(TFLM_DIR) / "tensorflow/lite/micro/tools/make/downloads"
    command = [
        "g++", "-std=c++17", "-fno-rtti", "-fno-exceptions", "-Wall", "-Wextra", "-Werror",
        "-DTF_LITE_STATIC_MEMORY", "-fsyntax-only",
        f"-I{MICRO / 'include'}", f"-I{MICRO / 'tflm' / 'include'}", f"-I{tmp_path}",
        "-isystem", TFLM_DIR, "-isystem", str(downloads / "flatbuffers" / "include"),
        "-isystem", str(downloads / "gemmlowp"), str(main), str(tmp_path / "bnn.cc"),
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr


# --- TFLite ---------------------------------------------------------------------------


TFLITE_INCLUDE = os.environ.get("TFLITE_INCLUDE")
needs_tflite = pytest.mark.skipif(
    not TFLITE_INCLUDE,
    reason="TFLITE_INCLUDE is not set: the TFLite adapters need the TFLite headers of the "
    "installed TensorFlow, which its pip wheel does not ship (run `make -C micro "
    "tflite-check TFLITE_INCLUDE=...`)",
)


def tflite_libraries():
    """Paths of libtfqp_tflite.so, one per kernel path (built here if make did not)."""
    given = os.environ.get("TFQP_TFLITE_LIBRARIES")
    if given:
        return given.split()
    import sys

    subprocess.run(["make", "-C", str(MICRO / "tflite"), "lib", f"TFLITE_INCLUDE={TFLITE_INCLUDE}",
                    f"PYTHON={sys.executable}"], check=True, capture_output=True)
    return sorted(str(p) for p in (MICRO / "build" / "tflite").glob("*/libtfqp_tflite.so"))


@pytest.fixture(scope="module")
def registerers():
    """[(library path, registerer)]: functions for tf.lite's custom_op_registerers, called
    with the address of the interpreter's MutableOpResolver."""
    import ctypes

    found = []
    for path in tflite_libraries():
        library = ctypes.CDLL(path)  # RTLD_LOCAL (ctypes never unloads it)
        library.TfqpRegisterOps.argtypes = [ctypes.c_void_p]
        library.TfqpRegisterOps.restype = None
        found.append((path, lambda pointer, register=library.TfqpRegisterOps: register(pointer)))
    assert found, "no libtfqp_tflite.so was built"
    return found


def tflite_interpreter(flatbuffer, registerer, reference_kernels=False):
    import tensorflow as tf
    from tensorflow.lite.python.interpreter import InterpreterWithCustomOps

    resolver = (tf.lite.experimental.OpResolverType.BUILTIN_REF if reference_kernels
                else tf.lite.experimental.OpResolverType.AUTO)
    return InterpreterWithCustomOps(model_content=flatbuffer, custom_op_registerers=[registerer],
                                    experimental_op_resolver_type=resolver, num_threads=1)


def run_tflite(interpreter, inputs) -> bytes:
    interpreter.allocate_tensors()
    outputs = b""
    for sample in inputs:
        detail = interpreter.get_input_details()[0]
        interpreter.set_tensor(detail["index"], sample.reshape(detail["shape"]))
        interpreter.invoke()
        for detail in interpreter.get_output_details():
            outputs += interpreter.get_tensor(detail["index"]).tobytes()
    return outputs


@needs_tflite
@pytest.mark.parametrize("build", MODELS)
def test_tflite_runs_tfqp_models_like_the_host_kernels(registerers, build):
    model = build()
    inputs = random_inputs(model.input_shape, 8, seed=4)
    expected = model.expected(inputs)
    for path, registerer in registerers:
        got = run_tflite(tflite_interpreter(model.flatbuffer, registerer), inputs)
        assert_same_bytes(got, expected, path)


@needs_tflite
def test_tflite_resizes_outputs_with_the_input_batch(registerers):
    """TFLite may resize inputs; prepare then resizes the outputs and the scratch."""
    model = dense_chain_model()
    inputs = random_inputs((5, 100), 2, seed=5)
    expected = model.expected(inputs)  # the host kernels take any batch
    for path, registerer in registerers:
        interpreter = tflite_interpreter(model.flatbuffer, registerer)
        interpreter.resize_tensor_input(interpreter.get_input_details()[0]["index"], [5, 100])
        got = run_tflite(interpreter, inputs)
        assert interpreter.get_output_details()[0]["shape"].tolist() == [5, 10]
        assert_same_bytes(got, expected, path)


@needs_tflite
@pytest.mark.parametrize("name", CONVERTER_MODELS)
def test_tflite_runs_converter_deploy_models_like_the_host_interpreter(registerers, name):
    deploy, inputs, expected = converter_model(name)
    for path, registerer in registerers:
        got = run_tflite(tflite_interpreter(deploy, registerer, reference_kernels=True),
                         inputs)
        assert_same_bytes(got, expected.tobytes(), path)


@needs_tflite
@pytest.mark.parametrize("name", CONVERTER_MODELS)
def test_tflite_default_kernels_give_the_same_signs_and_tfqp_outputs(registerers, name):
    """Stock tf.lite with its default kernels (XNNPACK / optimized builtins): every
    TFQP op's output, signs included, is byte-identical with the Interpreter's (and
    TFLite Micro's): no sign depends on a runtime's int8 rounding. Builtin int8 ops
    after them follow each runtime's own rounding; where the model ends in a TFQP op,
    the outputs are identical too."""
    from tfq_plus.converters import Interpreter
    from tfq_plus.converters import tflite_schema as schema
    from tfq_plus.converters.ops.registry import is_tfqp
    from tensorflow.lite.python.interpreter import InterpreterWithCustomOps

    deploy, inputs, expected = converter_model(name)
    model = schema.read(deploy)
    graph = model.subgraphs[0]
    tfqp_outputs = [int(op.outputs[0]) for op in graph.operators if is_tfqp(schema.op_name(model, op))]
    ends_in_tfqp = int(graph.outputs[0]) in tfqp_outputs
    host = Interpreter(deploy, keep_tensors=True)
    for path, registerer in registerers:
        interpreter = InterpreterWithCustomOps(model_content=deploy, custom_op_registerers=[registerer],
                                               experimental_preserve_all_tensors=True)
        interpreter.allocate_tensors()
        detail = interpreter.get_input_details()[0]
        for sample in inputs:
            interpreter.set_tensor(detail["index"], sample[None])
            interpreter.invoke()
            host.invoke([sample[None]])
            for tensor in tfqp_outputs:
                assert_same_bytes(interpreter.get_tensor(tensor).tobytes(), host.tensor(tensor).tobytes(),
                                  f"{path}: tensor {tensor}")
            if ends_in_tfqp:
                output = interpreter.get_output_details()[0]["index"]
                assert_same_bytes(interpreter.get_tensor(output).tobytes(),
                                  host.tensor(int(graph.outputs[0])).tobytes(), path)


@needs_tflite
@pytest.mark.parametrize("edit, op, message", TFLITE_CORRUPTIONS,
                         ids=[c[0].__name__ for c in TFLITE_CORRUPTIONS])
def test_tflite_rejects_corrupted_models_with_the_portable_message(registerers, edit, op,
                                                                    message):
    flatbuffer = corrupted(conv_chain_model().flatbuffer, edit)
    for path, registerer in registerers:
        interpreter = tflite_interpreter(flatbuffer, registerer)
        with pytest.raises(RuntimeError) as error:
            interpreter.allocate_tensors()
        assert f"{op}: " in str(error.value) and message in str(error.value), str(error.value)


@needs_tflite
def test_tflite_registerer_by_symbol_name():
    """The documented path: load the library globally, name the registerer."""
    import ctypes

    from tensorflow.lite.python.interpreter import InterpreterWithCustomOps

    ctypes.CDLL(tflite_libraries()[0], mode=ctypes.RTLD_GLOBAL)
    model = dense_chain_model()
    inputs = random_inputs(model.input_shape, 2, seed=6)
    interpreter = InterpreterWithCustomOps(model_content=model.flatbuffer,
                                           custom_op_registerers=["TfqpRegisterOps"])
    assert_same_bytes(run_tflite(interpreter, inputs), model.expected(inputs), "by name")
