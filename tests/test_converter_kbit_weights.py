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

from test_converter_shift import build, samples

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
