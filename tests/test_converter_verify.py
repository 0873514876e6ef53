"""verify(): both invariants, and clear failures on a corrupted deploy model."""

import numpy as np
import pytest
from tensorflow.lite.python import schema_py_generated as fb
from tensorflow.lite.tools import flatbuffer_utils

from test_converter_models import converted, samples

from tfq_plus import converters
from tfq_plus.converters.host_interpreter import HostInterpreter


@pytest.fixture(scope="module")
def mixed():
    return converted("mixed")


@pytest.fixture(scope="module")
def pool_bn():
    return converted("pool_bn")


def test_verify_is_bit_exact_per_op_and_reports_both_invariants(mixed):
    report = converters.verify(mixed.model, mixed.deploy, mixed.reference, samples(mixed.model, 6, seed=9),
                               min_argmax_agreement=None)
    ops = [c.op for c in report.ops]
    assert ops.count("TFQP_BCONV2D") == 3 and ops.count("TFQP_BFULLY_CONNECTED") == 2
    assert "TFQP_BMAXPOOL2D" in ops
    assert all(c.elements > 0 for c in report.ops)
    packed = [c for c in report.ops if c.check == "packed, bit-exact with reference signs"]
    assert {c.op for c in packed} == {"TFQP_BCONV2D", "TFQP_BMAXPOOL2D", "TFQP_BFULLY_CONNECTED"}
    assert report.samples == 6
    assert 0.0 <= report.argmax_agreement <= 1.0 and report.max_error_lsb >= 0
    assert "invariant 2" in str(report) and "invariant 1" in str(report)


def test_deploy_runs_end_to_end_on_the_host(pool_bn):
    """The fully packed model: deploy gives the reference's output bytes (checked by
    verify), so it agrees with Keras exactly as well as the reference does."""
    x = samples(pool_bn.model, 12, seed=4)
    report = converters.verify(pool_bn.model, pool_bn.deploy, pool_bn.reference, x, min_argmax_agreement=None)
    assert report.deploy_argmax_agreement == report.argmax_agreement
    assert report.deploy_max_error_lsb == report.max_error_lsb
    host = HostInterpreter(pool_bn.deploy)
    out = host.run(np.zeros(pool_bn.model.input_shape[1:], np.int8))
    assert out.shape == (10,) and out.dtype == np.int8


def _tamper(deploy: bytes, op_name: str, edit) -> tuple:
    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(deploy))
    graph = model.subgraphs[0]
    for index, op in enumerate(graph.operators):
        code = model.operatorCodes[op.opcodeIndex]
        if code.customCode is not None and code.customCode.decode() == op_name and edit(model, graph, op):
            return bytes(flatbuffer_utils.convert_object_to_bytearray(model)), index
    raise AssertionError(f"no {op_name} op to tamper with")


def _shift_int8_bias(model, graph, op):
    output = graph.tensors[op.outputs[0]]
    if output.type != fb.TensorType.INT8:
        return False
    transform = graph.tensors[op.inputs[2]]
    data = np.frombuffer(bytes(model.buffers[transform.buffer].data), np.int32).reshape(transform.shape).copy()
    data[0, 1] += 1 << 20  # bias of channel 0
    model.buffers[transform.buffer].data = np.frombuffer(data.tobytes(), np.uint8)
    return True


def _flip_threshold_direction(model, graph, op):
    output = graph.tensors[op.outputs[0]]
    if output.type != fb.TensorType.INT32:
        return False
    transform = graph.tensors[op.inputs[2]]
    data = np.frombuffer(bytes(model.buffers[transform.buffer].data), np.int32).reshape(transform.shape).copy()
    data[:, 0] = -data[:, 0]
    model.buffers[transform.buffer].data = np.frombuffer(data.tobytes(), np.uint8)
    return True


def _shift_thresholds_by_two(model, graph, op):
    """Every non-constant threshold + 2 (D moves in steps of 2): the smallest change
    that flips bits, like the former real-valued sign where the reference rounds to zp."""
    output = graph.tensors[op.outputs[0]]
    if output.type != fb.TensorType.INT32:
        return False
    transform = graph.tensors[op.inputs[2]]
    data = np.frombuffer(bytes(model.buffers[transform.buffer].data), np.int32).reshape(transform.shape).copy()
    data[np.abs(data[:, 1]) < 1 << 20, 1] += 2
    model.buffers[transform.buffer].data = np.frombuffer(data.tobytes(), np.uint8)
    return True


def _corrupt_options(model, graph, op):
    op.customOptions = np.frombuffer(b"\x00" * 5, np.uint8)
    return True


@pytest.mark.parametrize(
    "op_name, edit, message",
    [
        ("TFQP_BFULLY_CONNECTED", _shift_int8_bias, r"differs from the reference on sample 0: max difference \d+"),
        ("TFQP_BCONV2D", _flip_threshold_direction, r"differs from the reference's signs on sample 0: \d+ of \d+ bits"),
        ("TFQP_BCONV2D", _shift_thresholds_by_two, r"differs from the reference's signs on sample \d+: \d+ of \d+ bits"),
        ("TFQP_BCONV2D", _corrupt_options, "the C kernel rejected the op"),
    ],
)
def test_verify_names_the_op_that_differs(mixed, op_name, edit, message):
    tampered, index = _tamper(mixed.deploy, op_name, edit)
    with pytest.raises(converters.VerificationError, match=message) as error:
        converters.verify(mixed.model, tampered, mixed.reference, samples(mixed.model, 2), min_argmax_agreement=None)
    assert f"deploy op {index} ({op_name}" in str(error.value)


def _shift_builtin_conv_bias(deploy: bytes) -> bytes:
    """The float stem's CONV_2D (a builtin op, not checked per op) with its bias moved."""
    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(deploy))
    graph = model.subgraphs[0]
    for op in graph.operators:
        if model.operatorCodes[op.opcodeIndex].customCode is None and len(op.inputs) > 2:
            bias = graph.tensors[op.inputs[2]]
            data = np.frombuffer(bytes(model.buffers[bias.buffer].data), np.int32).copy()
            data += 1 << 16
            model.buffers[bias.buffer].data = np.frombuffer(data.tobytes(), np.uint8)
            return bytes(flatbuffer_utils.convert_object_to_bytearray(model))
    raise AssertionError("no builtin op with a bias")


def test_verify_checks_the_deploy_output_end_to_end(pool_bn):
    """Every TFQP op still matches on the reference's inputs; the deploy model's own
    output does not."""
    tampered = _shift_builtin_conv_bias(pool_bn.deploy)
    with pytest.raises(converters.VerificationError, match="the deploy model's output differs from the reference's"):
        converters.verify(None, tampered, pool_bn.reference, samples(pool_bn.model, 2))


def test_verify_rejects_a_deploy_model_of_another_reference(mixed, pool_bn):
    with pytest.raises((converters.VerificationError, ValueError)):
        converters.verify(None, pool_bn.deploy, mixed.reference, samples(mixed.model, 1))


def test_invariant_one_bound_raises(pool_bn):
    with pytest.raises(converters.VerificationError, match="LSB"):
        converters.verify(pool_bn.model, pool_bn.deploy, pool_bn.reference, samples(pool_bn.model, 3),
                          min_argmax_agreement=None, max_error_lsb=-1.0)
