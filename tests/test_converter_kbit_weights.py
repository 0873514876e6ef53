"""Uniform 2- to 5-bit kernels deploy as coded-weight ops (issue "k-bit grids").

LSQ (signed, per tensor and per channel), Uniform (symmetric and asymmetric), larq's
DoReFa in weights mode and a ProgressiveQuantizer at its final width, on a tiny
seeded model (conv -> BN -> ReLU -> pool [-> depthwise] -> dense): every quantized
layer becomes a TFQP_SHIFT_* op with b = k bit codes, a code table of the grid's
integer levels, the Keras kernel recovered from codes, table and per-channel unit;
int8 outputs within one step of the Keras layer on the op's own input.
"""

import larq as lq
import numpy as np
import pytest
import tensorflow as tf

from tfq_plus import converters
from tfq_plus import quantizers as tq
from tfq_plus.callbacks import ProgressiveQuantizer
from tfq_plus.converters import plans as P
from tfq_plus.converters import shift_codes
from tfq_plus.converters import tflite_schema as schema

from test_converter_shift import _flip_code_bit, build, samples

SHIFT_OPS = ("TFQP_SHIFT_CONV2D", "TFQP_SHIFT_DEPTHWISE_CONV2D", "TFQP_SHIFT_FULLY_CONNECTED")


def _lsq(bits, **kwargs):
    return lambda: tq.LSQ(bits=bits, signed=True, **kwargs)


def _progressive_lsq():
    return ProgressiveQuantizer(tq.LSQ(bits=8, signed=True), bits=(8, 4, 3))


# name -> (kernel factory, bits, the grid's integer levels in code order)
QUANTIZERS = {
    "LSQ 2-bit": (_lsq(2), 2, [-2, -1, 0, 1]),
    "LSQ 3-bit per channel": (_lsq(3, per_channel=True), 3, list(range(-4, 4))),
    "LSQ 4-bit": (_lsq(4), 4, list(range(-8, 8))),
    "DoReFa 2-bit": (lambda: lq.quantizers.DoReFa(k_bit=2, mode="weights"), 2, [-3, -1, 1, 3]),
    "DoReFa 3-bit": (lambda: lq.quantizers.DoReFa(k_bit=3, mode="weights"), 3, list(range(-7, 8, 2))),
    "DoReFa 4-bit": (lambda: lq.quantizers.DoReFa(k_bit=4, mode="weights"), 4, list(range(-15, 16, 2))),
    "Uniform 4-bit symmetric": (lambda: tq.Uniform(bits=4, symmetric=True), 4, list(range(-7, 8)) + [0]),
    "Uniform 3-bit asymmetric": (lambda: tq.Uniform(bits=3, symmetric=False), 3, None),
    "Progressive LSQ at 3 bits": (_progressive_lsq, 3, list(range(-4, 4))),
}


def _model(name, depthwise=True):
    kernel = QUANTIZERS[name][0]
    model = build(kernel, depthwise=kernel if depthwise else None)
    for layer in model.layers:
        quantizer = getattr(layer, "kernel_quantizer", None) or getattr(layer, "depthwise_quantizer", None)
        if isinstance(quantizer, ProgressiveQuantizer):
            quantizer.enter_stage(quantizer.stage_of_bits(3))
    model(samples(8), training=True)  # LSQ steps from data, Uniform ranges
    return model


def _keras_rows(layer, op):
    if op == P.DEPTHWISE:
        variable, quantizer = layer.depthwise_kernel, layer.depthwise_quantizer
    else:
        variable, quantizer = layer.kernel, layer.kernel_quantizer
    latent = getattr(variable, "latent_variable", variable)
    return shift_codes.rows(quantizer(tf.constant(latent.numpy())).numpy(), op)


@pytest.mark.parametrize("name", list(QUANTIZERS))
def test_uniform_kernels_deploy_as_coded_ops_equal_to_keras(name):
    _, bits, table = QUANTIZERS[name]
    model = _model(name)
    plans = converters.plan(model)
    assert [plan.name for plan in plans if plan.family == "shift"] == ["conv", "depthwise", "fc"]
    for plan in plans:
        codes = plan.kernel.shift
        assert codes.bits == bits and codes.classes == 1 and codes.family == f"uniform {bits}-bit"
        if table is not None:
            assert codes.table[0].tolist() == table[:2**bits]
        # the Keras kernel is the integer level times the channel's unit
        keras = _keras_rows(model.get_layer(plan.name), plan.op)
        weights = shift_codes.decode(codes.codes, codes.table, 1)[0]
        assert np.allclose(weights * codes.scales[0][:, None], keras, rtol=0, atol=2.0**-20)
        assert np.array_equal(weights, np.round(keras / codes.scales[0][:, None]))
    deploy, reference = converters.convert_with_reference(model, representative_dataset=samples(64, seed=2))
    report = converters.verify(model, deploy, samples(), reference=reference, min_argmax_agreement=None)
    shift_checks = [c for c in report.ops if c.op in SHIFT_OPS and c.policy != "stock bytes"]
    assert [c.layer for c in shift_checks] == ["conv", "depthwise", "fc"], report
    assert all(c.differing == 0 and c.exact for c in report.ops), report
    assert report.weights_checked == 3
    assert report.deploy[0].mean_error_lsb <= report.reference[0].mean_error_lsb + 1.0, report


def _bytes_model(kernel):
    """conv 3x3 16 -> 32 and dense 512 -> 64: taps that fill whole code words."""
    tf.keras.utils.set_random_seed(3)
    inputs = tf.keras.Input((4, 4, 16))
    x = lq.layers.QuantConv2D(32, 3, padding="same", kernel_quantizer=kernel(), name="conv")(inputs)
    x = tf.keras.layers.Flatten()(x)
    outputs = lq.layers.QuantDense(64, kernel_quantizer=kernel(), name="fc")(x)
    model = tf.keras.Model(inputs, outputs)
    data = np.random.default_rng(4).uniform(-1, 1, (16, 4, 4, 16)).astype(np.float32)
    model(data, training=True)
    return model, data


def _filter_bytes(flatbuffer, op_index, input_index=1):
    model = schema.read(flatbuffer)
    graph = model.subgraphs[0]
    op = graph.operators[op_index]
    return int(schema.constant(model, graph.tensors[op.inputs[input_index]]).nbytes)


@pytest.mark.parametrize("bits, limit", [(4, 0.55), (2, 0.3)])
def test_weight_bytes_of_k_bit_codes_against_the_int8_reference(bits, limit):
    model, data = _bytes_model(_lsq(bits))
    deploy, reference = converters.convert_with_reference(model, representative_dataset=data)
    deploy_rows = [r for r in converters.report(deploy).ops if r.op in SHIFT_OPS]
    reference_rows = [r for r in converters.report(reference).ops if r.op in ("CONV_2D", "FULLY_CONNECTED")]
    assert len(deploy_rows) == len(reference_rows) == 2
    for coded, stock in zip(deploy_rows, reference_rows):
        codes = _filter_bytes(deploy, coded.index)
        filters = _filter_bytes(reference, stock.index)
        # conv: 32 x 144 taps, dense: 64 x 512 taps; int8: one byte a weight
        assert filters == {0: 32 * 144, 1: 64 * 512}[reference_rows.index(stock)]
        assert codes == filters * bits // 8
        assert codes <= limit * filters
        # the report's rows show the storage width
        assert (coded.weight_bits, stock.weight_bits) == (bits, 8)
    assert f"{'bits':>4}" in str(converters.report(deploy))


@pytest.mark.parametrize(
    "kernel, message",
    [
        (lambda: tq.LSQ(bits=6, signed=True), r"6 bits\): uniform kernels deploy with 2 to 5 bits"),
        (lambda: tq.Uniform(bits=8, symmetric=False), r"8 bits\): uniform kernels deploy with 2 to 5 bits"),
        (lambda: tq.LSQ(bits=3, signed=True, per_channel=True, axis=2),
         r"its kernel quantizer's step varies within an output channel \(per-channel axis 2\)"),
        (lambda: tq.Uniform(bits=5, symmetric=False, per_channel=True),
         r"per-channel zero points spread the grid over \d+ levels; coded weights hold at most 2\^5"),
    ],
)
def test_unsupported_uniform_kernels_raise_naming_the_layer(kernel, message):
    tf.keras.utils.set_random_seed(5)
    inputs = tf.keras.Input((6, 6, 3))
    layer = lq.layers.QuantConv2D(4, 3, kernel_quantizer=kernel(), name="odd_conv")
    model = tf.keras.Model(inputs, layer(inputs))
    rng = np.random.default_rng(5)
    latent = rng.normal(0, 0.3, layer.kernel.shape)
    latent[..., 0] *= 10.0  # per-channel ranges far apart
    latent[..., 1] += 0.5
    layer.kernel.latent_variable.assign(latent)
    model(rng.uniform(-1, 1, (4, 6, 6, 3)).astype(np.float32), training=True)
    with pytest.raises(ValueError, match=f"layer 'odd_conv'.*{message}"):
        converters.plan(model)


def test_a_flipped_code_bit_of_a_dorefa_kernel_fails_verify():
    """The tolerance for DoReFa's float32 roundings still tells one level from the next."""
    model = _model("DoReFa 2-bit", depthwise=False)
    deploy, _ = converters.convert_with_reference(model, representative_dataset=samples(16, seed=2))
    converters.verify(model, deploy, samples(4), min_argmax_agreement=None)
    with pytest.raises(converters.VerificationError,
                       match=r"TFQP_SHIFT_CONV2D, Keras layer 'conv'\).*weights are not the Keras kernel: 1 weights"):
        converters.verify(model, _flip_code_bit(deploy, "conv"), samples(4), min_argmax_agreement=None)


def test_a_kernel_off_its_grid_is_named():
    """Keras's kernel against a grid whose step is three times the trained one: the
    values sit between its levels."""
    model = _model("LSQ 4-bit", depthwise=False)
    quantizer = model.get_layer("conv").kernel_quantizer
    codes = converters.plan(model).layers["conv"].kernel.shift
    grid = quantizer.deploy_grid()
    from tfq_plus.converters import uniform_codes

    wide = grid._replace(scale=grid.scale * 3, range_min=grid.range_min * 3, range_max=grid.range_max * 3)
    keras = model.get_layer("conv").kernel_quantizer(
        tf.constant(model.get_layer("conv").kernel.latent_variable.numpy())).numpy()
    with pytest.raises(ValueError, match=r"layer 'conv': kernel value .* is not on the uniform grid"):
        uniform_codes.uniform_codes("conv", wide, keras, P.CONV2D)
    assert codes.bits == 4
