"""Layers the converter cannot deploy fail naming the layer (name and class) and what
is supported, with TensorFlow's own error kept as the cause."""

import larq as lq
import numpy as np
import pytest
import tensorflow as tf

from test_converter_models import BINARY, samples

from tfq_plus import converters
from tfq_plus.converters import UnsupportedLayerError
from tfq_plus.converters.unsupported import stock_converter_failure


class Elementwise(tf.keras.layers.Layer):
    """A custom layer computing its class's ``function`` of its input."""

    @staticmethod
    def function(inputs):
        return inputs

    def call(self, inputs):
        return tf.ensure_shape(self.function(inputs), inputs.shape)


class SmoothStep(Elementwise):
    function = staticmethod(tf.math.erf)  # no TFLite builtin


class Spectrum(Elementwise):
    @staticmethod
    def function(inputs):  # an RFFT of length 6: TFLite's kernel takes powers of two
        return tf.math.real(tf.signal.fft(tf.cast(inputs, tf.complex64)))


class Gate(Elementwise):
    @staticmethod
    def function(inputs):
        return tf.cond(tf.reduce_sum(inputs) > 0, lambda: inputs * 2.0, lambda: inputs * 3.0)


def around(layer, shape=(6,)):
    """Input -> layer -> Dense."""
    inputs = tf.keras.Input(shape)
    return tf.keras.Model(inputs, tf.keras.layers.Dense(3)(layer(inputs)))


def conversion_error(model, **kwargs) -> UnsupportedLayerError:
    with pytest.raises(UnsupportedLayerError) as error:
        converters.convert_keras_model(model, representative_dataset=samples(model, 4), **kwargs)
    return error.value


def test_an_lstm_is_named_with_how_recurrent_layers_convert():
    """Before: TensorFlow's raw ConverterError about tf.TensorListReserve."""
    model = around(tf.keras.layers.LSTM(4, name="lstm"), shape=(6, 4))
    error = conversion_error(model)
    assert str(error).startswith("layer 'lstm' (LSTM) cannot be converted: the stock TFLite converter failed on "
                                 "its TensorFlow op TensorListReserve")
    assert "recurrent layers convert only unrolled (unroll=True" in str(error)
    assert "the converter takes Sequential or functional tf_keras models of larq QuantConv2D" in str(error)
    assert error.layers == [("lstm", "LSTM")]
    assert type(error.__cause__).__name__ == "ConverterError"  # TensorFlow's message, kept


def test_an_unrolled_lstm_converts_as_the_message_says():
    model = around(tf.keras.layers.LSTM(4, unroll=True), shape=(6, 4))
    assert converters.convert_keras_model(model, representative_dataset=samples(model, 4))


def test_a_custom_layer_with_an_op_tflite_lacks_is_named():
    model = around(SmoothStep(name="smooth_step"))
    error = conversion_error(model, target="tflite")
    assert str(error).startswith("layer 'smooth_step' (SmoothStep) cannot be converted: the stock TFLite "
                                 "converter failed on its TensorFlow op Erf")
    assert "a custom layer must compute with TensorFlow ops TFLite has as builtin int8 ops" in str(error)
    assert type(error.__cause__).__name__ == "ConverterError"


def test_a_custom_layer_failing_in_calibration_is_named():
    """The stock converter's calibration raises a RuntimeError without a location
    (here: an RFFT of a length that is no power of two)."""
    error = conversion_error(around(Spectrum(name="spectrum")), target="tflite")
    assert str(error).startswith("the stock TFLite converter failed (RuntimeError: ")
    assert "on a model with custom layers 'spectrum' (Spectrum)" in str(error)
    assert isinstance(error.__cause__, RuntimeError)


def test_an_empty_runtime_error_still_names_the_custom_layers():
    """Before: ``RuntimeError('')`` reached the user as it was."""
    model = around(SmoothStep(name="mine"))
    error = stock_converter_failure(model, RuntimeError(""))
    assert isinstance(error, UnsupportedLayerError)
    assert str(error).startswith("the stock TFLite converter failed (RuntimeError: no message) on a model with "
                                 "custom layers 'mine' (SmoothStep)")
    plain = around(tf.keras.layers.Dense(4))
    error = stock_converter_failure(plain, RuntimeError(""))
    assert not isinstance(error, UnsupportedLayerError)
    assert str(error).startswith("the stock TFLite converter failed on the exported model (RuntimeError: no "
                                 "message) without naming a layer; the converter takes")


def test_control_flow_in_a_custom_layer_is_named():
    """Before: "rewrite: expected a model with one subgraph, got 3"."""
    model = around(Gate(name="gate"))
    error = conversion_error(model)
    assert str(error).startswith("layer 'gate' (Gate) cannot be converted with TFQP ops: it computes "
                                 "control flow or keeps state")
    assert "IF ops and 2 extra subgraph(s)" in str(error) and "custom_ops=False" in str(error)
    reference = converters.convert_keras_model(model, representative_dataset=samples(model, 4), custom_ops=False)
    assert reference  # the reference model alone has no one-subgraph limit


class Block(tf.keras.layers.Layer):
    """A binary block as a custom layer (its larq layers are no nodes of the model)."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.conv = lq.layers.QuantConv2D(2, 3, padding="same", **BINARY)

    def call(self, inputs):
        return self.conv(inputs) + inputs


def test_larq_layers_inside_a_custom_layer_are_named():
    error = pytest.raises(UnsupportedLayerError, converters.export, around(Block(name="block"), (4, 4, 2))).value
    assert str(error).startswith(f"layer 'block' (Block) holds larq layers '{error_layer_name(error)}' "
                                 "(QuantConv2D) inside its own call()")
    assert "build the block with the functional API" in str(error)


def error_layer_name(error) -> str:
    return str(error).split("holds larq layers '")[1].split("'")[0]


class Scaled(tf.keras.layers.Layer):
    """A custom layer whose constructor takes an array, without get_config."""

    def __init__(self, factors):
        super().__init__()
        self.factors = factors

    def call(self, inputs):
        return inputs * self.factors


@pytest.mark.parametrize("layer, name", [
    (lambda: Scaled(np.arange(6, dtype=np.float32)), "'scaled' (Scaled)"),
    (lambda: lq.layers.QuantDense(6, activation=lambda t: tf.nn.relu(t) * 2.0, **BINARY), "(QuantDense)"),
])
def test_a_layer_that_cannot_be_cloned_is_named(layer, name):
    made = layer()
    with pytest.raises(UnsupportedLayerError, match="cannot be cloned for conversion: rebuilding it from its "
                       "config failed") as error:
        converters.export(around(made))
    assert str(error.value).startswith(f"layer '{made.name}' {name.split(' ')[-1]}")
    assert "a custom layer needs a get_config() returning its constructor arguments" in str(error.value)
