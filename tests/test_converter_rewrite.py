"""The rewrite: TFLite's integer arithmetic, the deploy graphs it builds from the
plans, and that it never reads what a layer is from the stock model's weights.

Each TFQP op of the deploy models is run through the host C kernels on inputs the
deploy model itself produces and compared with an independent numpy definition of
the op's contract (``tfqp_numpy``); that the op computes what the Keras layer
computes is verify's job (test_converter_verify.py, test_converter_exact.py).
"""

import numpy as np
import pytest
import tensorflow as tf
from tensorflow.lite.python import schema_py_generated as fb

import tfqp_numpy
from test_converter_models import converted, samples

from tfq_plus import converters
from tfq_plus.converters import tflite_schema as schema
from tfq_plus.converters.export import export_and_plan
from tfq_plus.converters.rewrite import check_graph, rewrite
from tfq_plus.converters.interpreter import Interpreter
from tfq_plus.converters.ops import OpView
from tfq_plus.converters.reference import convert_reference
from tfq_plus.converters.tflite_arithmetic import (
    multiply_by_quantized_multiplier,
    multiply_by_quantized_multiplier_array,
    quantize_multiplier,
)

# --- TFLite arithmetic, from hand-computed values ---------------------------------------


def test_quantize_multiplier_matches_hand_computed_values():
    assert quantize_multiplier(0.5) == (1 << 30, 0)
    assert quantize_multiplier(0.75) == (1610612736, 0)
    # 1/3 = 0.6667 * 2^-1; round(2^31 * 2/3) = 1431655765
    assert quantize_multiplier(1.0 / 3.0) == (1431655765, -1)
    assert quantize_multiplier(3.0) == (3 << 29, 2)
    assert quantize_multiplier(0.0) == (0, 0)
    assert quantize_multiplier(2.0**-40) == (0, 0)  # below 2^-31: flushed to zero


def test_multiply_by_quantized_multiplier_matches_gemmlowp_by_hand():
    # SaturatingRoundingDoublingHighMul(a, b) = (a*b + nudge) / 2^31 truncated toward
    # zero, nudge = 2^30 (a*b >= 0) or 1 - 2^30: ties go toward +infinity.
    assert multiply_by_quantized_multiplier(100, 1 << 30, 0) == 50
    assert multiply_by_quantized_multiplier(3, 1 << 30, 0) == 2  # 1.5 -> 2
    assert multiply_by_quantized_multiplier(-3, 1 << 30, 0) == -1  # -1.5 -> -1
    # Double rounding: 5 * 0.5 = 2.5 -> 3, then RoundingDivideByPOT(3, 1) = 1.5 -> 2.
    assert multiply_by_quantized_multiplier(5, 1 << 30, -1) == 2
    assert multiply_by_quantized_multiplier(-5, 1 << 30, -1) == -1
    assert multiply_by_quantized_multiplier(-6, 1 << 30, -1) == -2
    assert multiply_by_quantized_multiplier(7, 1 << 30, 2) == 14  # 7 * 4 * 0.5


def test_vectorised_multiply_equals_the_scalar_one():
    rng = np.random.default_rng(0)
    x = rng.integers(-(2**31), 2**31, 5000)
    multiplier = rng.integers(1 << 30, 2**31, 5000)
    shift = rng.integers(-31, 8, 5000)
    expected = [multiply_by_quantized_multiplier(int(a), int(m), int(s)) for a, m, s in zip(x, multiplier, shift)]
    np.testing.assert_array_equal(multiply_by_quantized_multiplier_array(x, multiplier, shift), expected)


# --- the deploy graphs ------------------------------------------------------------------


@pytest.fixture(scope="module")
def mixed():
    return converted("mixed")


@pytest.fixture(scope="module")
def pool_bn():
    return converted("pool_bn")


def op_names(flatbuffer):
    model = schema.read(flatbuffer)
    return [schema.op_name(model, op) for op in model.subgraphs[0].operators]


def test_every_planned_layer_is_one_tfqp_op_and_no_stock_binarization_is_left(mixed, pool_bn):
    for converted_model in (mixed, pool_bn):
        names = op_names(converted_model.deploy)
        plans = converters.plan(converted_model.model)
        layer_ops = [n for n in names if n in ("TFQP_BCONV2D", "TFQP_BFULLY_CONNECTED", "TFQP_CONV2D_INT8",
                                              "TFQP_FULLY_CONNECTED_INT8")]
        assert len(layer_ops) == len(plans)
        assert not {"GREATER_EQUAL", "SELECT_V2", "PADV2", "SIGN"} & set(names)
    assert op_names(mixed.deploy) == [
        "TFQP_CONV2D_INT8", "TFQP_BCONV2D", "TFQP_BMAXPOOL2D", "TFQP_BCONV2D", "TFQP_BCONV2D", "RESHAPE",
        "TFQP_BFULLY_CONNECTED", "TFQP_BFULLY_CONNECTED",
    ]


def test_rewrite_never_reads_the_stock_weights(pool_bn):
    """Scramble the int8 weights and biases of every stock op a plan replaces: the
    deploy model must not change (the rewrite takes kernels from the plans)."""
    exported, plans = export_and_plan(pool_bn.model)
    model = schema.read(pool_bn.reference)
    graph = model.subgraphs[0]
    rng = np.random.default_rng(1)
    scrambled = 0
    for op in graph.operators:
        if schema.op_name(model, op) in ("CONV_2D", "FULLY_CONNECTED"):
            for t in list(op.inputs)[1:]:
                buffer = model.buffers[graph.tensors[t].buffer]
                if t >= 0 and buffer.data is not None:
                    buffer.data = rng.integers(0, 256, len(buffer.data)).astype(np.uint8)
                    scrambled += 1
    assert scrambled >= 4
    result = rewrite(schema.write(model), plans, model_name=exported.name)
    assert result.flatbuffer == pool_bn.deploy


def test_tfqp_ops_compute_their_contract_on_the_deploy_models_own_tensors(mixed, pool_bn):
    """Run each deploy model, then every TFQP op's C kernel output is compared with
    the numpy contract on the very input it received."""
    for converted_model, count in ((mixed, 3), (pool_bn, 3)):
        interpreter = Interpreter(converted_model.deploy, keep_tensors=True)
        x = samples(converted_model.model, count, seed=11)
        model = interpreter.model
        graph = model.subgraphs[0]
        checked = set()
        for sample in interpreter.quantize(x):
            interpreter.invoke([sample[None]])
            for index, op in enumerate(graph.operators):
                view = OpView(model, index)
                if view.spec is None:
                    continue
                got = interpreter.tensor(int(op.outputs[0]))
                x_in = interpreter.tensor(int(op.inputs[0]))
                expected = _numpy_op(view, x_in)
                np.testing.assert_array_equal(got, expected, err_msg=f"op {index} {view.name}")
                checked.add(view.name)
        assert {"TFQP_BCONV2D", "TFQP_BFULLY_CONNECTED", "TFQP_BMAXPOOL2D", "TFQP_CONV2D_INT8"} <= checked


def _numpy_op(view, x):
    out = view.tensor(0, output=True)
    zp_in = schema.per_tensor_quantization(view.tensor(0))[1] if view.tensor(0).type == fb.TensorType.INT8 else 0
    zp_out = schema.per_tensor_quantization(out)[1] if out.type == fb.TensorType.INT8 else 0
    kind = "int8" if out.type == fb.TensorType.INT8 else ("int32" if view.options.get("int32_output") else "packed")
    o = view.options
    if view.name == "TFQP_BCONV2D":
        return tfqp_numpy.bconv2d(x, view.constant(1), view.constant(2), o, input_zero_point=zp_in,
                                  output_zero_point=zp_out, output_kind=kind)
    if view.name == "TFQP_BFULLY_CONNECTED":
        return tfqp_numpy.bfully_connected(x, view.constant(1), view.constant(2), o, input_zero_point=zp_in,
                                           output_zero_point=zp_out, output_kind=kind)
    if view.name == "TFQP_CONV2D_INT8":
        return tfqp_numpy.conv2d_int8(x, view.constant(1), view.constant(2), o, input_zero_point=zp_in,
                                      output_kind=kind)
    if view.name == "TFQP_FULLY_CONNECTED_INT8":
        return tfqp_numpy.fully_connected_int8(x, view.constant(1), view.constant(2), o,
                                               input_zero_point=zp_in, output_kind=kind)
    if view.name == "TFQP_BMAXPOOL2D":
        return tfqp_numpy.bmaxpool2d(x, o, view.constant(1) if view.tensor(1) is not None else None)
    if view.name == "TFQP_BINARIZE":
        return tfqp_numpy.binarize(x, zp_in)
    return tfqp_numpy.unpack(x, o)


def test_rewrite_is_deterministic_and_drops_what_the_stock_ops_used(pool_bn):
    again = converters.convert_keras_model(pool_bn.model, representative_dataset=pool_bn.calibration)
    assert again == pool_bn.deploy
    model = schema.read(pool_bn.deploy)
    graph = model.subgraphs[0]
    used = {int(t) for op in graph.operators for t in list(op.inputs) + list(op.outputs) if t >= 0}
    assert used | {int(t) for t in graph.inputs} | {int(t) for t in graph.outputs} == set(range(len(graph.tensors)))
    referenced = {t.buffer for t in graph.tensors} | {0} | {m.buffer for m in model.metadata or []}
    assert len(model.buffers) == len(referenced)


def test_a_plan_the_stock_model_does_not_hold_is_an_error_naming_the_layer(pool_bn):
    exported, plans = export_and_plan(pool_bn.model)
    model = schema.read(pool_bn.reference)
    victim = next(iter(plans))
    for tensor in model.subgraphs[0].tensors:  # hide the layer's name from the stock model
        tensor.name = schema.tensor_name(tensor).replace(f"/{victim.scope}/", "/renamed/").encode()
    with pytest.raises(ValueError, match=f"layer '{victim.name}' was planned as a TFQP op"):
        rewrite(schema.write(model), plans, model_name=exported.name)


def test_the_graph_check_names_a_tensor_nothing_writes(pool_bn):
    model = schema.read(pool_bn.deploy)
    graph = model.subgraphs[0]
    graph.operators = list(graph.operators)[1:]  # drop the first op: its output is unwritten
    with pytest.raises(ValueError, match="reads tensor .* that no earlier op writes"):
        check_graph(model)


def test_the_graph_check_takes_empty_constants_and_state_as_written():
    """A constant of zero elements (the stock converter writes one for tf.math.lgamma)
    and a variable tensor (an LSTM's state) are read without any op writing them.
    Before: "op 3 (SUB) reads tensor 'arith.constant' that no earlier op writes"."""
    inputs = tf.keras.Input((6,))
    x = tf.keras.layers.Lambda(lambda t: tf.math.lgamma(t))(tf.keras.layers.Dense(6)(inputs))
    model = tf.keras.Model(inputs, tf.keras.layers.Dense(3)(x))
    deploy = converters.convert_keras_model(model, representative_dataset=samples(model, 4), target="tflite")
    tflite = schema.read(deploy)
    graph = tflite.subgraphs[0]
    empty = [t for t in graph.tensors if 0 in schema.shape(t)]
    assert empty and all(schema.constant(tflite, t) is None for t in empty)  # no data, no writer
    check_graph(tflite)
    written = graph.operators[0].outputs[0]
    graph.tensors[written].isVariable = True  # state: read before anything writes it
    graph.operators = list(graph.operators)[1:]
    check_graph(tflite)
