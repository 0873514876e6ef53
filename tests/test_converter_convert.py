"""convert_keras_model: the reference (stock converter) and the deploy model."""

import larq as lq
import numpy as np
import pytest
import tensorflow as tf
from tensorflow.lite.python import schema_py_generated as fb

from test_converter_models import converted, mixed_model, samples

from tfq_plus import converters
from tfq_plus.converters.emit import MICRO_BUILTINS


@pytest.fixture(scope="module")
def mixed():
    return converted("mixed")


def op_names(flatbuffer: bytes):
    model = fb.ModelT.InitFromObj(fb.Model.GetRootAsModel(bytearray(flatbuffer), 0))
    names = {v: k for k, v in vars(fb.BuiltinOperator).items() if not k.startswith("_")}
    found = []
    for op in model.subgraphs[0].operators:
        code = model.operatorCodes[op.opcodeIndex]
        builtin = max(code.builtinCode, code.deprecatedBuiltinCode)
        found.append(code.customCode.decode() if builtin == fb.BuiltinOperator.CUSTOM else names[builtin])
    return found, model


def test_reference_runs_in_tflite_micro_bit_exact_with_tflite(mixed):
    from tflite_micro.python.tflite_micro import runtime

    micro = runtime.Interpreter.from_bytes(mixed.reference, arena_size=1 << 20)
    tflite = tf.lite.Interpreter(
        model_content=mixed.reference,
        experimental_op_resolver_type=tf.lite.experimental.OpResolverType.BUILTIN_REF,
    )
    tflite.allocate_tensors()
    detail = tflite.get_input_details()[0]
    rng = np.random.default_rng(0)
    for _ in range(3):
        x = rng.integers(-128, 128, detail["shape"]).astype(np.int8)
        micro.set_input(x, 0)
        micro.invoke()
        tflite.set_tensor(detail["index"], x)
        tflite.invoke()
        np.testing.assert_array_equal(micro.get_output(0), tflite.get_tensor(tflite.get_output_details()[0]["index"]))


def test_reference_has_no_sign_and_only_micro_builtins(mixed):
    names, _ = op_names(mixed.reference)
    assert "SIGN" not in names

    assert set(names) <= set(MICRO_BUILTINS)
    assert {"GREATER_EQUAL", "SELECT_V2", "PADV2"} <= set(names)


def test_deploy_has_one_tfqp_op_per_planned_layer_and_no_float_between(mixed):
    names, model = op_names(mixed.deploy)
    plans = converters.plan(mixed.model)
    layers = [n for n in names if n in ("TFQP_BCONV2D", "TFQP_BFULLY_CONNECTED", "TFQP_CONV2D_INT8")]
    assert len(layers) == len(plans) == 6
    assert names.count("TFQP_BFULLY_CONNECTED") == 2
    assert "TFQP_BMAXPOOL2D" in names
    assert not {"SIGN", "GREATER_EQUAL", "SELECT_V2", "PADV2", "QUANTIZE", "DEQUANTIZE"} & set(names)
    graph = model.subgraphs[0]
    float_tensors = [t.name for t in graph.tensors if t.type == fb.TensorType.FLOAT32]
    assert float_tensors == []
    # the float stem's output is binarized: it becomes an int8-input TFQP op with a
    # packed output, then the binary layers; int8 out of the last one to the head
    assert names[0] == "TFQP_CONV2D_INT8" and names[1] == "TFQP_BCONV2D"
    assert graph.tensors[graph.operators[-1].outputs[0]].type == fb.TensorType.INT8


def test_binary_inputs_of_a_float_kernel_are_unpacked_exact_signs():
    """A layer on binarized inputs with a float kernel (XNOR-Net's classifier) stays
    a builtin op; the signs it reads are the packed exact ones, unpacked to int8."""
    inputs = tf.keras.Input((6, 6, 3))
    x = lq.layers.QuantConv2D(8, 3, padding="same", kernel_quantizer="ste_sign", use_bias=False)(inputs)
    x = tf.keras.layers.BatchNormalization()(x)
    x = tf.keras.layers.Flatten()(x)
    outputs = lq.layers.QuantDense(5, input_quantizer="ste_sign")(x)  # float kernel on signs
    model = tf.keras.Model(inputs, outputs)
    data = samples(model, 16)
    deploy = converters.convert_keras_model(model, representative_dataset=data)
    names, _ = op_names(deploy)
    assert names == ["TFQP_CONV2D_INT8", "RESHAPE", "TFQP_UNPACK", "FULLY_CONNECTED"]
    report = converters.verify(model, deploy, data, min_argmax_agreement=None)
    assert all(c.differing == 0 for c in report.ops)


def test_binary_weights_are_packed_one_bit_each(mixed):
    _, reference = op_names(mixed.reference)
    names, deploy = op_names(mixed.deploy)
    graph = deploy.subgraphs[0]
    for name, op in zip(names, graph.operators):
        if name != "TFQP_BCONV2D":
            continue
        filter_tensor = graph.tensors[op.inputs[1]]
        cout, kh, kw, words = filter_tensor.shape
        assert filter_tensor.type == fb.TensorType.INT32
        assert len(deploy.buffers[filter_tensor.buffer].data) == cout * kh * kw * words * 4


def test_conversion_is_deterministic(mixed):
    deploy, reference = converters.convert_with_reference(mixed.model, representative_dataset=mixed.calibration)
    assert deploy == mixed.deploy
    assert reference == mixed.reference


def test_custom_ops_false_is_the_reference():
    model = converted("pool_bn")
    reference = converters.convert_keras_model(model.model, representative_dataset=model.calibration,
                                               custom_ops=False)
    assert reference == model.reference


def test_calibration_data_is_required_and_checked():
    model = mixed_model()
    with pytest.raises(ValueError, match="representative_dataset is required"):
        converters.convert_keras_model(model)
    with pytest.raises(ValueError, match="do not fit model input"):
        converters.convert_keras_model(model, representative_dataset=np.zeros((2, 3, 3, 3), np.float32))
    with pytest.raises(ValueError, match="target must be one of"):
        converters.convert_keras_model(model, representative_dataset=samples(model, 2), target="gpu")


def test_target_micro_rejects_ops_tflite_micro_lacks():
    inputs = tf.keras.Input((4,))
    outputs = tf.keras.layers.Lambda(lambda t: tf.sign(t) * 0.5)(tf.keras.layers.Dense(4)(inputs))
    model = tf.keras.Model(inputs, outputs)
    data = samples(model, 4)
    with pytest.raises(ValueError, match="SIGN.*no TFLite Micro kernel"):
        converters.convert_keras_model(model, representative_dataset=data, custom_ops=False)
    assert converters.convert_keras_model(model, representative_dataset=data, custom_ops=False, target="tflite")


def test_binary_layer_after_a_standalone_quantizer_layer():
    """The model input binarized by a quantizer layer: its int8 codes are binarized
    inside the op (q < zero point), the one sign source with no accumulator."""
    inputs = tf.keras.Input((6, 6, 4))
    x = lq.quantizers.SteSign()(inputs)
    x = lq.layers.QuantConv2D(8, 3, kernel_quantizer="ste_sign", use_bias=False)(x)
    model = tf.keras.Model(inputs, x)
    names, _ = op_names(converters.convert_keras_model(model, representative_dataset=samples(model, 4)))
    assert names == ["TFQP_BCONV2D"]


def _float_model():
    inputs = tf.keras.Input((6, 6, 1))
    x = tf.keras.layers.Conv2D(4, 3, name="conv")(inputs)
    x = tf.keras.layers.Flatten()(x)
    return tf.keras.Model(inputs, tf.keras.layers.Dense(3, name="logits")(x), name="float_only")


def test_model_without_quantized_layers_warns_that_nothing_is_quantized():
    tf.keras.utils.set_random_seed(4)
    model = _float_model()
    data = samples(model, 8)
    with pytest.warns(converters.NothingQuantizedWarning, match=r"model 'float_only' has no quantized layer"):
        deploy, reference = converters.convert_with_reference(model, representative_dataset=data)
    assert deploy == reference  # what the warning says: the stock int8 model
    names, _ = op_names(deploy)
    assert not [name for name in names if name.startswith("TFQP_")]


def test_reference_conversion_of_a_float_model_does_not_warn():
    import warnings

    tf.keras.utils.set_random_seed(4)
    model = _float_model()
    with warnings.catch_warnings():
        warnings.simplefilter("error", converters.NothingQuantizedWarning)
        converters.convert_keras_model(model, representative_dataset=samples(model, 8), custom_ops=False)


def test_quantized_model_does_not_warn_that_nothing_is_quantized(mixed):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error", converters.NothingQuantizedWarning)
        converters.convert_keras_model(mixed.model, representative_dataset=mixed.calibration)
