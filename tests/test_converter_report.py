"""report(): per-op costs computed independently from the Keras layer shapes."""

import pytest

from test_converter_models import converted

from tfq_plus.converters import report


@pytest.fixture(scope="module")
def pool_bn():
    return converted("pool_bn")


def keras_macs(model):
    """(binary MACs, int8 MACs) from the Keras layers: binary layers are the larq ones."""
    binary = int8 = 0
    for layer in model.layers:
        kind = type(layer).__name__
        if kind in ("Conv2D", "QuantConv2D"):
            _, oh, ow, cout = layer.output_shape
            kh, kw = layer.kernel_size
            macs = oh * ow * cout * kh * kw * layer.input_shape[-1]
        elif kind in ("Dense", "QuantDense"):
            macs = layer.input_shape[-1] * layer.units
        else:
            continue
        if kind.startswith("Quant"):
            binary += macs
        else:
            int8 += macs
    return binary, int8


def test_macs_and_flash_of_the_deploy_model(pool_bn):
    result = report(pool_bn.deploy, reference=pool_bn.reference)
    assert (result.binary_macs, result.int8_macs) == keras_macs(pool_bn.model)
    assert result.flash_bytes == len(pool_bn.deploy)
    assert 0 < result.weight_bytes < result.flash_bytes
    assert [row.op for row in result.ops].count("TFQP_BMAXPOOL2D") == 1
    assert result.arena_bytes > 0 and "reference" in result.arena_source
    assert "flash (flatbuffer)" in str(result)


def test_reference_report_counts_int8_macs_and_measures_its_own_arena(pool_bn):
    deploy = report(pool_bn.deploy, reference=pool_bn.reference)
    result = report(pool_bn.reference)
    binary, int8 = keras_macs(pool_bn.model)
    assert result.binary_macs == 0 and result.int8_macs == binary + int8
    assert result.arena_bytes == deploy.arena_bytes  # measured on the same model
    assert result.arena_source == "this model"
    # packed activations: the deploy model keeps fewer bytes alive at once
    assert deploy.activation_peak_bytes < result.activation_peak_bytes
    assert result.flash_bytes > deploy.flash_bytes


def test_deploy_report_without_reference_says_why_there_is_no_arena(pool_bn):
    result = report(pool_bn.deploy)
    assert result.arena_bytes is None and "pass reference=" in result.arena_source
