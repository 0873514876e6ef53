"""planning: what each layer deploys to, decided once from the Keras graph."""

import larq as lq
import numpy as np
import pytest
import tensorflow as tf

from test_converter_models import BINARY, mixed_model, pool_then_batch_norm_model

from tfq_plus import converters
from tfq_plus.converters import plans as P


def summary(plans):
    return {p.name: (p.op, p.input, p.output, [s.kind for s in p.chain], p.output_layer) for p in plans}


def test_mixed_model_plans_every_binarized_layer():
    model = mixed_model()
    found = summary(converters.plan(model))
    names = [layer.name for layer in model.layers]
    stem, q1, q2, q3, d1, d2 = (n for n in names if n.startswith(("conv2d", "quant_")))
    assert found[stem][:3] == ("conv2d", P.INT8, P.PACKED)  # float stem before a sign
    assert found[q1][1:4] == (P.SIGNS, P.PACKED, [P.ELEMENTWISE, P.MAX_POOL])
    assert found[q2][1:4] == (P.SIGNS, P.PACKED, [P.ELEMENTWISE])
    assert found[q3][1:4] == (P.SIGNS, P.PACKED, [P.ELEMENTWISE, P.FLATTEN])
    assert found[d1][1:3] == (P.SIGNS, P.PACKED)
    assert found[d2][:3] == ("dense", P.SIGNS, P.INT8_VALUES)  # feeds the float output
    plans = converters.plan(model)
    assert plans.layers[stem].kernel.exact is False and plans.layers[q1].kernel.exact is True


def test_kernel_grids_are_the_trained_values_in_tflite_layout():
    model = mixed_model()
    plans = converters.plan(model)
    for plan in plans:
        layer = model.get_layer(plan.name)
        kernel = layer.kernel.numpy()
        if plan.kernel.exact:
            kernel = layer.kernel_quantizer(tf.constant(kernel)).numpy()
        layout = np.transpose(kernel, (3, 0, 1, 2)) if plan.op == "conv2d" else kernel.T
        values = plan.kernel.codes * plan.kernel.scale.reshape((-1,) + (1,) * (layout.ndim - 1))
        if plan.kernel.exact:
            np.testing.assert_array_equal(values.astype(np.float32), layout)
        else:  # rounded: within half a step per channel
            step = plan.kernel.scale.reshape((-1,) + (1,) * (layout.ndim - 1))
            assert np.all(np.abs(values - layout) <= step / 2 + 1e-7)


def test_pool_or_mask_follows_the_sign_of_the_batch_norm_after_the_pool():
    inputs = tf.keras.Input((8, 8, 3))
    x = lq.layers.QuantConv2D(4, 3, padding="same", **BINARY)(inputs)
    x = tf.keras.layers.MaxPool2D(2)(x)
    x = tf.keras.layers.BatchNormalization()(x)
    x = lq.layers.QuantConv2D(4, 3, **BINARY)(x)
    model = tf.keras.Model(inputs, x)
    model.layers[3].set_weights([np.array([1.0, -2.0, 0.5, -0.1]), np.zeros(4), np.zeros(4), np.ones(4)])
    from tfq_plus.converters.thresholds import pool_or_masks

    plan = converters.plan(model).layers[model.layers[1].name]
    assert [s.kind for s in plan.chain] == [P.MAX_POOL, P.ELEMENTWISE]
    np.testing.assert_array_equal(pool_or_masks(plan)[0], [False, True, False, True])


def test_residual_adds_are_fused_into_the_later_operand():
    from bnn_models import bireal

    model = bireal((12, 12, 1), 3)
    plans = converters.plan(model)
    adds = list(plans.adds.values())
    assert [a.name for a in adds] == [layer.name for layer in model.layers if isinstance(layer, tf.keras.layers.Add)]
    first = adds[0]
    stem = model.layers[1].name
    assert plans.layers[stem].output == P.INT32_VALUES  # summed, then binarized
    assert plans.layers[first.absorbed_by].residual_add == first.name
    assert first.residual == plans.layers[stem].output_layer
    assert adds[1].residual == first.name
    assert len(set(plans.streams.values())) == 1  # one stream, one scale


def test_a_layer_read_as_a_value_beside_a_sign_keeps_exact_int32_values():
    inputs = tf.keras.Input((6, 6, 2))
    x = lq.layers.QuantConv2D(8, 3, padding="same", **BINARY)(inputs)
    x = tf.keras.layers.BatchNormalization()(x)
    signs = lq.layers.QuantConv2D(4, 3, **BINARY)(x)
    pooled = tf.keras.layers.GlobalAveragePooling2D()(x)  # a builtin reader of the values
    model = tf.keras.Model(inputs, [signs, pooled])
    plans = converters.plan(model)
    assert plans.layers[model.layers[1].name].output == P.INT32_VALUES


def test_layers_with_nothing_binarized_downstream_stay_builtin_but_binary_kernels():
    inputs = tf.keras.Input((6, 6, 2))
    x = tf.keras.layers.Conv2D(4, 3)(inputs)  # a float kernel: the stock int8 op
    binary = lq.layers.QuantConv2D(4, 3, kernel_quantizer="ste_sign")  # binary kernel, real input
    model = tf.keras.Model(inputs, tf.keras.layers.Flatten()(binary(x)))
    plans = converters.plan(model)
    # the binary kernel is 1-bit codes of a shift op, no longer a builtin int8 op
    assert [(p.name, p.family, p.output, p.kernel.shift.bits) for p in plans] == \
        [(binary.name, "shift", "int8", 1)]


def test_non_monotone_activation_before_a_sign_is_an_error_naming_the_layer():
    inputs = tf.keras.Input((6, 6, 2))
    x = tf.keras.layers.Conv2D(4, 3, activation="swish")(inputs)
    x = lq.layers.QuantConv2D(4, 3, **BINARY)(x)
    model = tf.keras.Model(inputs, x)
    with pytest.raises(ValueError, match=f"{model.layers[1].name}.*swish.*not monotone"):
        converters.plan(model)


def test_residual_add_of_an_unplanned_tensor_is_an_error_naming_the_add():
    inputs = tf.keras.Input((6, 6, 4))
    y = lq.layers.QuantConv2D(4, 3, padding="same", **BINARY)(inputs)
    y = tf.keras.layers.BatchNormalization()(y)
    x = tf.keras.layers.Add()([inputs, y])  # the model input is no quantized layer's output
    x = lq.layers.QuantConv2D(4, 3, **BINARY)(x)
    model = tf.keras.Model(inputs, x)
    add = model.layers[3].name
    with pytest.raises(ValueError, match=f"{add}.*operand"):
        converters.plan(model)


def test_plans_reject_what_has_no_deploy_form():
    inputs = tf.keras.Input((6, 6, 2))
    x = lq.layers.QuantConv2D(4, 3, padding="same", pad_values=0.5, **BINARY)(inputs)
    model = tf.keras.Model(inputs, x)
    with pytest.raises(ValueError, match="pad_values=0.5"):
        converters.plan(model)


def test_pool_then_batch_norm_model_is_fully_packed():
    plans = converters.plan(pool_then_batch_norm_model())
    outputs = [p.output for p in plans]
    assert outputs[:-1] == [P.PACKED] * (len(outputs) - 1) and outputs[-1] == P.INT8_VALUES


def test_sequential_model_whose_first_layer_reads_its_input_layer():
    # A Sequential model leaves its InputLayer out of ``model.layers``; a float stem
    # whose output is binarized reads it (this raised KeyError: 'input_1').
    model = tf.keras.Sequential([
        tf.keras.Input((8, 8, 1)),
        tf.keras.layers.Conv2D(4, 3, use_bias=False),
        lq.layers.QuantConv2D(4, 3, **BINARY),
        tf.keras.layers.Flatten(),
        lq.layers.QuantDense(3, **BINARY),
    ])
    found = summary(converters.plan(model))
    stem, q1, d1 = (layer.name for layer in model.layers if not isinstance(layer, tf.keras.layers.Flatten))
    assert found[stem][:3] == ("conv2d", P.INT8, P.PACKED)
    assert found[q1][1:3] == (P.SIGNS, P.PACKED)
    assert found[d1][1] == P.SIGNS
