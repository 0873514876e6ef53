"""The public ``Interpreter``: run a deploy model from Python as the device runs it."""

import numpy as np
import pytest

from test_converter_models import converted, samples

from tfq_plus.converters import Interpreter, ModelError
from tfq_plus.converters.micro_interpreter import MicroInterpreter


@pytest.fixture(scope="module")
def pool_bn():
    return converted("pool_bn")


def test_predict_quantizes_runs_each_sample_and_dequantizes(pool_bn):
    interpreter = Interpreter(pool_bn.deploy)
    x = samples(pool_bn.model, 5, seed=2)
    probabilities = interpreter.predict(x)
    assert probabilities.shape == (5, 10) and probabilities.dtype == np.float32
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=0.05)  # a softmax output
    codes = interpreter.predict(interpreter.quantize(x), raw=True)
    assert codes.dtype == np.int8
    np.testing.assert_array_equal(interpreter.dequantize(codes), probabilities)
    one = interpreter.invoke([interpreter.quantize(x[:1])])[0]
    np.testing.assert_array_equal(one[0], codes[0])


def test_builtin_only_models_run_like_tflite_micro(pool_bn):
    """On the reference model (builtin ops only) the Interpreter is TFLite Micro."""
    interpreter = Interpreter(pool_bn.reference)
    micro = MicroInterpreter(pool_bn.reference)
    q = interpreter.quantize(samples(pool_bn.model, 4, seed=3))
    expected = np.concatenate([micro.run(q[i:i + 1]) for i in range(4)])
    np.testing.assert_array_equal(interpreter.predict(q, raw=True), expected)


def test_tensors_are_kept_on_request_and_errors_name_the_problem(pool_bn):
    interpreter = Interpreter(pool_bn.deploy, keep_tensors=True)
    details = interpreter.input_details[0]
    interpreter.invoke([np.zeros(details["shape"], np.int8)])
    assert interpreter.tensor(details["name"]).dtype == np.int8
    signs = [name for name in (t.name.decode() for t in interpreter.graph.tensors) if name.endswith("/signs")]
    assert signs and interpreter.tensor(signs[0]).dtype == np.int32  # packed words
    with pytest.raises(ValueError, match="must be int8"):
        interpreter.invoke([np.zeros(details["shape"], np.float32)])
    with pytest.raises(ValueError, match="the model has 1 inputs, got 2"):
        interpreter.invoke([np.zeros(details["shape"], np.int8)] * 2)
    with pytest.raises(ValueError, match="keep_tensors=True"):
        Interpreter(pool_bn.deploy).tensor(0)
    with pytest.raises(ValueError, match="no single tensor named"):
        interpreter.tensor("no such tensor")


def test_inputs_by_name_and_in_keras_order():
    from test_converter_verify import two_in_two_out

    from tfq_plus import converters

    model = two_in_two_out()
    rng = np.random.default_rng(4)
    data = [rng.uniform(-1, 1, (8, 6, 6, 2)).astype(np.float32) for _ in range(2)]
    deploy = converters.convert_keras_model(model, representative_dataset=data)
    interpreter = Interpreter(deploy)
    by_list = interpreter.predict(data)
    by_name = interpreter.predict({"left": data[0], "right": data[1]})
    for a, b in zip(by_list, by_name):
        np.testing.assert_array_equal(a, b)
    assert [o.shape[1] for o in by_list] == [4, 3]  # first, second: the Keras order
    with pytest.raises(ValueError, match="missing"):
        interpreter.predict({"left": data[0]})


def test_unknown_custom_ops_are_refused():
    from tfq_plus.converters import tflite_schema as schema

    model = schema.read(converted("pool_bn").deploy)
    for code in model.operatorCodes:
        if code.customCode:
            code.customCode = b"NOT_OURS"
            break
    with pytest.raises(ModelError, match=r"op 0 \(NOT_OURS\) is a custom op that is not a TFQP op") as error:
        Interpreter(schema.write(model))
    assert error.value.check == "operators"
