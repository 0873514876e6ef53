"""Model validation (``model_check``): every model is checked before report, verify
or the Interpreter run it; each malformed part gets a ModelError naming it.

The user mistakes of issue #12 are here as they were met: a path where bytes are
expected, ``tfq-plus report model.h5``, and deploy and reference swapped in verify.
"""

import inspect
import pathlib
import re

import numpy as np
import pytest
from flatbuffers import flexbuffers

from test_converter_models import converted, samples

from tfq_plus.converters import Interpreter, ModelError, check_model, cli, report, verify
from tfq_plus.converters import flatbuffer_structure, model_error
from tfq_plus.converters import tflite_schema as schema
from tfq_plus.converters.model_check import TFLITE_MICRO_RUNTIME


DENSE_WEIGHTS = r"tfqp/quant_dense(_\d+)?/weights"


@pytest.fixture(scope="module")
def pool_bn():
    return converted("pool_bn")


def edited(flatbuffer: bytes, edit) -> bytes:
    model = schema.read(flatbuffer)
    edit(model, model.subgraphs[0])
    return schema.write(model)


def tensor_named(graph, pattern: str) -> int:
    """The first tensor whose name matches (Keras numbers layer names per session:
    quant_dense, quant_dense_3, ...)."""
    matches = [i for i, t in enumerate(graph.tensors) if re.search(pattern, schema.tensor_name(t))]
    assert matches, pattern
    return matches[0]


def op_named(model, graph, name: str) -> int:
    return [schema.op_name(model, op) for op in graph.operators].index(name)


# --- the user mistakes of issue #12 ----------------------------------------------------


@pytest.mark.parametrize("as_path", [str, pathlib.Path])
def test_a_path_is_accepted_where_bytes_are_expected(pool_bn, tmp_path, as_path):
    """Reproducer: ``report("x.tflite")`` raised TypeError: string argument without
    an encoding (and so did Interpreter and verify)."""
    deploy, reference = tmp_path / "x.tflite", tmp_path / "x_ref.tflite"
    deploy.write_bytes(pool_bn.deploy)
    reference.write_bytes(pool_bn.reference)
    expected = report(pool_bn.deploy, reference=pool_bn.reference)
    assert report(as_path(deploy), reference=as_path(reference)) == expected
    assert report(bytearray(pool_bn.deploy), reference=memoryview(pool_bn.reference)) == expected
    x = samples(pool_bn.model, 3, seed=4)
    np.testing.assert_array_equal(Interpreter(as_path(deploy)).predict(x), Interpreter(pool_bn.deploy).predict(x))
    result = verify(pool_bn.model, as_path(deploy), x, reference=as_path(reference), min_argmax_agreement=None)
    assert result.weights_checked == 4


def test_other_arguments_are_named_with_what_is_accepted(pool_bn, tmp_path):
    for wrong in (12, pool_bn.model, np.frombuffer(pool_bn.deploy, np.uint8)):
        with pytest.raises(TypeError, match=r"model must be a \.tflite model as bytes, bytearray or memoryview, "
                                            r"or the path of a \.tflite file"):
            report(wrong)
    with pytest.raises(FileNotFoundError, match="no file"):
        Interpreter(str(tmp_path / "missing.tflite"))
    with pytest.raises(ModelError, match="is a directory"):
        report(tmp_path)


def test_report_of_a_keras_h5_file_says_what_it_is(pool_bn, tmp_path, capsys):
    """Reproducer: ``tfq-plus report model.h5`` ended in a struct.error traceback."""
    path = tmp_path / "model.h5"
    pool_bn.model.save(path, save_format="h5")
    with pytest.raises(ModelError, match=r"model '.*model\.h5': an HDF5 file \(a Keras \.h5 model\? convert it "
                                         r"first: tfq-plus convert\), not a \.tflite flatbuffer") as error:
        report(path)
    assert error.value.check == model_error.FORMAT
    # the command line says it before reading the file as a flatbuffer
    assert cli.main(["report", str(path)]) == 1
    assert "is a Keras model, not a .tflite flatbuffer (convert it first" in capsys.readouterr().err


def test_verify_says_when_deploy_and_reference_are_swapped(pool_bn, tmp_path, capsys):
    """Reproducer: the swapped pair failed with TFLite Micro's "Failed to get
    registration from op code CUSTOM"."""
    x = samples(pool_bn.model, 3, seed=4)
    with pytest.raises(ModelError, match="deploy and reference were passed in swapped order"):
        verify(pool_bn.model, pool_bn.reference, x, reference=pool_bn.deploy)
    # on the command line
    model_path, data = tmp_path / "bnn.h5", tmp_path / "data.npz"
    pool_bn.model.save(model_path, save_format="h5")
    np.savez(data, x=x)
    (tmp_path / "d.tflite").write_bytes(pool_bn.deploy)
    (tmp_path / "r.tflite").write_bytes(pool_bn.reference)
    assert cli.main(["verify", str(model_path), str(tmp_path / "r.tflite"), str(tmp_path / "d.tflite"),
                     "--samples", str(data)]) == 1
    assert "swapped order" in capsys.readouterr().err
    # a deploy model given as the reference of another deploy model, and to report
    with pytest.raises(ModelError, match="has 5 TFQP ops, but the reference model has builtin ops only$"):
        verify(pool_bn.model, pool_bn.deploy, x, reference=pool_bn.deploy)
    with pytest.raises(ModelError, match="were the deploy and reference models swapped"):
        report(pool_bn.deploy, reference=pool_bn.deploy)


# --- each check, named in its error ----------------------------------------------------


def _buffer_one_past_the_end(model, graph):
    graph.tensors[tensor_named(graph, DENSE_WEIGHTS)].buffer = len(model.buffers)


def _empty_zero_points(model, graph):
    graph.tensors[0].quantization.zeroPoint = np.zeros(0, np.int64)


def _negative_scale(model, graph):
    graph.tensors[0].quantization.scale = np.asarray([-0.5], np.float32)


def _zero_point_outside_int8(model, graph):
    graph.tensors[0].quantization.zeroPoint = np.asarray([300], np.int64)


def _per_channel_scales_of_another_length(model, graph):
    graph.tensors[0].quantization.scale = np.asarray([0.5, 0.5, 0.5], np.float32)
    graph.tensors[0].quantization.zeroPoint = np.zeros(3, np.int64)


def _negative_dimension(model, graph):
    graph.tensors[0].shape = np.asarray([1, -12, 12, 1], np.int32)


def _weights_one_byte_short(model, graph):
    buffer = model.buffers[graph.tensors[tensor_named(graph, DENSE_WEIGHTS)].buffer]
    buffer.data = buffer.data[:-1]


def _unsupported_type(model, graph):
    graph.tensors[0].type = schema.TensorType.FLOAT16


def _opcode_index_out_of_range(model, graph):
    graph.operators[1].opcodeIndex = len(model.operatorCodes)


def _input_index_out_of_range(model, graph):
    graph.operators[1].inputs[0] = len(graph.tensors)


def _input_read_before_written(model, graph):
    graph.operators[0].inputs[0] = graph.operators[1].outputs[0]


def _two_subgraphs(model, graph):
    import copy

    model.subgraphs.append(copy.deepcopy(graph))


def _tfqp_option_out_of_range(model, graph):
    op = graph.operators[op_named(model, graph, "TFQP_BFULLY_CONNECTED")]
    options = flexbuffers.Loads(bytes(op.customOptions))
    options["channels_in"] = 2**30
    op.customOptions = np.frombuffer(bytes(flexbuffers.Dumps(options)), np.uint8)


def _tfqp_options_not_a_flexbuffer(model, graph):
    op = graph.operators[op_named(model, graph, "TFQP_BCONV2D")]
    op.customOptions = np.frombuffer(b"\x01\x02\x03", np.uint8)


def _tfqp_filter_padding_bits(model, graph):
    """A filter word with bits above channels_in (1 of 32 used): the kernel's
    init_table refuses it."""
    op = graph.operators[op_named(model, graph, "TFQP_BCONV2D")]
    buffer = model.buffers[graph.tensors[int(op.inputs[1])].buffer]
    buffer.data = np.full(len(buffer.data), 0xFF, np.uint8)


def _tfqp_output_of_another_shape(model, graph):
    op = graph.operators[op_named(model, graph, "TFQP_BMAXPOOL2D")]
    graph.tensors[int(op.outputs[0])].shape = np.asarray([1, 2, 2, 1], np.int32)


def _tfqp_constant_computed(model, graph):
    op = graph.operators[op_named(model, graph, "TFQP_BCONV2D")]
    op.inputs[1] = graph.inputs[0]


def _softmax_beta_negative(model, graph):
    graph.operators[op_named(model, graph, "SOFTMAX")].builtinOptions.beta = -1.0


def _softmax_options_of_another_op(model, graph):
    op = graph.operators[op_named(model, graph, "SOFTMAX")]
    op.builtinOptionsType = schema.BuiltinOptions.Conv2DOptions
    op.builtinOptions = schema.fb.Conv2DOptionsT()


def _sparse_tensor(model, graph):
    graph.tensors[0].sparsity = schema.fb.SparsityParametersT()


EDITS = [
    (_buffer_one_past_the_end, "tensors", r"tensor \d+ 'tfqp/quant_dense(_\d+)?/weights': buffer index (?P<n>\d+), "
                                          r"but the model has (?P=n) buffers"),
    (_empty_zero_points, "quantization", r"tensor 0 'serving_default_input_\d+:0': 1 scales but 0 zero points"),
    (_negative_scale, "quantization", r"tensor 0 .*: scale -0\.5: scales must be finite and > 0"),
    (_zero_point_outside_int8, "quantization", r"zero point 300 outside \[-128, 127\], the range of INT8"),
    (_per_channel_scales_of_another_length, "quantization", r"3 scales: one, or one per channel of dimension 0"),
    (_negative_dimension, "tensors", r"tensor 0 .*: shape \[1, -12, 12, 1\]: at most 6 dimensions, each >= 1"),
    (_weights_one_byte_short, "tensors", r"'tfqp/quant_dense(_\d+)?/weights': its buffer \d+ holds 575 bytes; INT32 "
                                         r"\[16, 9\] needs 576"),
    (_unsupported_type, "tensors", r"tensor 0 .*: type FLOAT16 is not supported"),
    (_opcode_index_out_of_range, "operators", r"op 1: opcode index \d+; the model has \d+ operator codes"),
    (_input_index_out_of_range, "graph", r"op 1 \(TFQP_BCONV2D\): input tensor index \d+; the subgraph has \d+"),
    (_input_read_before_written, "graph", r"op 0 \(TFQP_CONV2D_INT8\) reads tensor \d+ '.*', which is no subgraph "
                                          r"input, no constant and not written by an earlier op"),
    (_two_subgraphs, "model", r"the model has 2 subgraphs; tfq-plus runs models with exactly one"),
    (_tfqp_option_out_of_range, "TFQP options", r"op \d+ \(TFQP_BFULLY_CONNECTED\): .*channels_in"),
    (_tfqp_options_not_a_flexbuffer, "TFQP options", r"op 1 \(TFQP_BCONV2D\): its custom options are rejected "
                                                     r"by the C parser"),
    (_tfqp_filter_padding_bits, "TFQP kernel", r"op 1 \(TFQP_BCONV2D\): the TFQP kernel rejects it: .*padding bits"),
    (_tfqp_output_of_another_shape, "TFQP kernel", r"op 2 \(TFQP_BMAXPOOL2D\): its output tensor \d+ '.*' has shape "
                                                   r"\[1, 2, 2, 1\], but the op computes \[1, 3, 3, 1\]"),
    (_tfqp_constant_computed, "operators", r"op 1 \(TFQP_BCONV2D\): its filter \(input 1, tensor 0 '.*'\) must be "
                                           r"a constant"),
    (_softmax_beta_negative, "operators", r"op 6 \(SOFTMAX\): beta -1\.0: must be finite and > 0"),
    (_softmax_options_of_another_op, "operators", r"op 6 \(SOFTMAX\): builtin options of type 1; SOFTMAX takes "
                                                  r"SoftmaxOptions"),
    (_sparse_tensor, "flatbuffer structure", r"model\.subgraphs\[0\]\.tensors\[0\]\.sparsity: sparse tensors are "
                                             r"not supported"),
]


@pytest.mark.parametrize("edit, check, message", EDITS, ids=[e[0].__name__.strip("_") for e in EDITS])
def test_each_malformed_part_is_named(pool_bn, edit, check, message):
    flatbuffer = edited(pool_bn.deploy, edit)
    for run in (lambda: report(flatbuffer), lambda: Interpreter(flatbuffer)):
        with pytest.raises(ModelError, match=message) as error:
            run()
        assert error.value.check == check, error.value


def test_the_tflite_micro_crashes_of_the_issue_are_refused_before_tflite_micro(pool_bn):
    """A buffer index one past the end, an empty zero-point vector and a negative
    scale made TFLite Micro's Python interpreter crash (SIGSEGV, SIGABRT) in
    report and verify; the reference model reaches TFLite Micro whole."""
    def last_conv_weights(model, graph):
        conv = [op for op in graph.operators if schema.op_name(model, op) == "CONV_2D"][-1]
        return graph.tensors[int(conv.inputs[1])]

    def one_past_the_end(model, graph):
        last_conv_weights(model, graph).buffer = len(model.buffers)

    def no_zero_points(model, graph):
        last_conv_weights(model, graph).quantization.zeroPoint = np.zeros(0, np.int64)

    def negative_scale(model, graph):
        quantization = last_conv_weights(model, graph).quantization
        quantization.scale = -np.asarray(quantization.scale)

    x = samples(pool_bn.model, 2, seed=4)
    for edit, message in ((one_past_the_end, r"buffer index (\d+), but the model has \1 buffers"),
                          (no_zero_points, r"\d+ scales but 0 zero points"),
                          (negative_scale, "scales must be finite and > 0")):
        reference = edited(pool_bn.reference, edit)
        with pytest.raises(ModelError, match=f"^reference: .*{message}"):
            verify(pool_bn.model, pool_bn.deploy, x, reference=reference)
        with pytest.raises(ModelError, match=f"^model: .*{message}"):
            report(reference)


def test_the_dilation_overflow_of_the_issue_is_refused_before_the_kernel(pool_bn):
    """TFQP_BCONV2D with filter height 2 and dilation 2^31 - 2 (SAME padding): the
    C kernel's prepare accepted it and eval read out of bounds (SIGSEGV); the
    window's bounds refuse it first."""
    def dilated(model, graph):
        op = graph.operators[op_named(model, graph, "TFQP_BCONV2D")]
        options = flexbuffers.Loads(bytes(op.customOptions))
        options.update(filter_height=2, dilation_height_factor=2**31 - 2, padding=0)
        op.customOptions = np.frombuffer(bytes(flexbuffers.Dumps(options)), np.uint8)
        weights = graph.tensors[int(op.inputs[1])]
        weights.shape = np.asarray([weights.shape[0], 2] + list(weights.shape[2:]), np.int32)
        buffer = model.buffers[weights.buffer]
        buffer.data = np.asarray(buffer.data)[:4 * int(np.prod(weights.shape))]

    with pytest.raises(ModelError, match=r"op 1 \(TFQP_BCONV2D\): height stride 1, dilation 2147483646, dilated "
                                         r"filter extent 2147483647: each must be at most 32768") as error:
        Interpreter(edited(pool_bn.deploy, dilated))
    assert error.value.check == "TFQP options"


def test_every_truncation_and_many_bit_flips_are_clean(pool_bn):
    """check_model on every prefix of a deploy model and on 600 seeded single-bit
    flips: a ModelError or a model that passes, nothing else."""
    data = pool_bn.deploy
    outcomes = {"passed": 0}
    for length in range(len(data)):
        with pytest.raises(ModelError) as error:
            check_model(data[:length])
        outcomes[error.value.check] = outcomes.get(error.value.check, 0) + 1
    rng = np.random.default_rng(5)
    for bit in rng.integers(0, 8 * len(data), 600):
        flipped = bytearray(data)
        flipped[bit // 8] ^= 1 << (bit % 8)
        try:
            check_model(bytes(flipped))
            outcomes["passed"] += 1
        except ModelError as error:
            outcomes[error.check] = outcomes.get(error.check, 0) + 1
    assert set(outcomes) <= set(model_error.CHECKS) | {"passed"}
    assert outcomes[model_error.STRUCTURE] > len(data) // 2  # truncations cut offsets


def test_builtin_ops_without_a_rule_are_refused_only_where_tflite_micro_runs_them(pool_bn):
    def reshape_becomes_squared_difference(model, graph):
        code = model.operatorCodes[graph.operators[op_named(model, graph, "RESHAPE")].opcodeIndex]
        code.builtinCode = code.deprecatedBuiltinCode = schema.BuiltinOperator.SQUARED_DIFFERENCE

    flatbuffer = edited(pool_bn.deploy, reshape_becomes_squared_difference)
    assert report(flatbuffer).ops[3].op == "SQUARED_DIFFERENCE"  # no runtime: the costs only
    with pytest.raises(ModelError, match=r"op 3 \(SQUARED_DIFFERENCE\): tfq-plus checks and runs these builtin "
                                         r"ops only: ADD, AVERAGE_POOL_2D, CONCATENATION, CONV_2D") as error:
        check_model(flatbuffer, runtime=TFLITE_MICRO_RUNTIME)
    assert error.value.check == "operators"
    with pytest.raises(ModelError, match=r"SQUARED_DIFFERENCE"):
        Interpreter(flatbuffer)


def _shared_tables_model(count: int) -> bytes:
    """A flatbuffer whose model has ``count`` subgraph offsets, all to one subgraph
    whose ``count`` tensor offsets all lead to one tensor: count^2 tables to visit
    in 8 x count bytes."""
    import struct

    body = bytearray(struct.pack("<I", 0) + flatbuffer_structure.IDENTIFIER)

    def table(vtable_fields, inline_size):
        """A vtable, then its table (soffset, then one uoffset field if any)."""
        vtable = len(body)
        body.extend(struct.pack(f"<HH{len(vtable_fields)}H", 4 + 2 * len(vtable_fields), inline_size,
                                *vtable_fields))
        body.extend(b"\x00" * (-len(body) % 4))
        position = len(body)
        body.extend(struct.pack("<i", position - vtable) + b"\x00" * (inline_size - 4))
        return position

    def vector_to(field_position, count):
        """A vector of ``count`` offsets, referenced from ``field_position``; the
        returned patch writes its elements once their target exists."""
        start = len(body)
        struct.pack_into("<I", body, field_position, start - field_position)
        body.extend(struct.pack("<I", count) + b"\x00" * (4 * count))

        def point_to(target):
            for i in range(count):
                element = start + 4 + 4 * i
                struct.pack_into("<I", body, element, target - element)
        return point_to

    model = table((0, 0, 4), 8)  # slot 2: subgraphs
    struct.pack_into("<I", body, 0, model)
    subgraphs = vector_to(model + 4, count)
    subgraph = table((4,), 8)  # slot 0: tensors
    subgraphs(subgraph)
    tensors = vector_to(subgraph + 4, count)
    tensors(table((), 4))
    return bytes(body)


def test_offsets_shared_beyond_what_the_file_can_hold_are_refused():
    flatbuffer_structure.check_structure(_shared_tables_model(3))  # well formed: 9 tensor visits
    with pytest.raises(ModelError, match="more tables and vectors are referenced than the file can hold"):
        flatbuffer_structure.check_structure(_shared_tables_model(1000))


# --- the structure's schema is TFLite's -----------------------------------------------------


def _accessor_slot(table: str, field: str) -> int:
    method = getattr(getattr(schema.fb, table), "".join(part.capitalize() for part in field.split("_")))
    return (int(re.search(r"Offset\((\d+)\)", inspect.getsource(method)).group(1)) - 4) // 2


def test_the_checked_fields_are_tflites():
    for table, fields in flatbuffer_structure.TABLES_OF_THE_SCHEMA.items():
        for slot, field in fields.items():
            assert _accessor_slot(table, field.name) == slot, (table, field.name)


def test_every_builtin_options_table_with_more_than_scalars_is_declared():
    """The options tables the object API reads vectors, strings or tables from are
    the ones flatbuffer_structure declares (a new one in TensorFlow's schema fails
    here)."""
    module = inspect.getsource(schema.fb)
    classes = dict(re.findall(r"^class (\w+)\(object\):\n(.*?)(?=^class |\Z)", module, re.S | re.M))
    with_offsets = {name for name in flatbuffer_structure.BUILTIN_OPTIONS_NAMES.values()
                    if name != "NONE" and re.search(r"_tab\.(Vector|String|Indirect|Union)\(", classes[name])}
    assert with_offsets == set(flatbuffer_structure._OPTION_TABLES)
