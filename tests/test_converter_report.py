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


def keras_layer_channels(model):
    """Output channels of every larq layer, max-pool and flatten, in model order (Keras's own shapes)."""
    return [layer.output_shape[-1] for layer in model.layers
            if type(layer).__name__ in ("QuantConv2D", "QuantDense", "MaxPooling2D", "Flatten")]


def test_packed_tensors_are_shown_in_channels_and_marked(pool_bn):
    result = report(pool_bn.deploy, reference=pool_bn.reference)
    packed_outputs = [row for row in result.ops if row.output_packed]
    assert packed_outputs, "the deploy model of pool_bn has packed activations"
    # every packed output says as many channels as the Keras layer it computes has
    # (a packed word holds 32, so word counts would be 32x smaller)
    keras_channels = keras_layer_channels(pool_bn.model)
    for row in packed_outputs:
        assert row.output_shape[-1] in keras_channels, (row, keras_channels)
    assert max(row.output_shape[-1] for row in packed_outputs) > 32
    text = str(result)
    assert "packed signs" in text and f"x{packed_outputs[0].output_shape[-1]}p" in text


def test_macs_by_kind_and_weights_per_layer(pool_bn):
    result = report(pool_bn.deploy, reference=pool_bn.reference)
    binary, int8 = keras_macs(pool_bn.model)
    assert result.macs.get("binary", 0) == binary and result.macs.get("int8", 0) == int8
    for row in result.ops:
        assert len(row.macs) <= 1
    # each layer's weights as the Keras kernel counts them
    kernels = sorted(int(layer.kernel.shape.num_elements()) for layer in pool_bn.model.layers
                     if hasattr(layer, "kernel"))
    assert sorted(row.weight_count for row in result.ops if row.weight_count) == kernels


def test_plot_draws_an_image(pool_bn, tmp_path):
    from tfq_plus.converters.report_plot import plot_report

    result = report(pool_bn.deploy, reference=pool_bn.reference)
    path = plot_report(result, str(tmp_path / "report.png"), title="pool_bn")
    with open(path, "rb") as image:
        assert image.read(8) == b"\x89PNG\r\n\x1a\n"
    assert (tmp_path / "report.png").stat().st_size > 10_000


def test_plot_of_a_model_without_weights_is_refused(pool_bn, tmp_path):
    from tfq_plus.converters.report_plot import plot_report

    result = report(pool_bn.deploy, reference=pool_bn.reference)
    empty = result._replace(ops=[row for row in result.ops if row.weight_count == 0])
    with pytest.raises(ValueError, match="no convolution or fully-connected op"):
        plot_report(empty, str(tmp_path / "x.png"))
