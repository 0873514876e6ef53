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


# 4-bit kernels with levels in [-8, 7]: conv and depthwise (8 input channels) run as
# builtin ops with INT4 filters; the dense layer's BatchNorm gives each channel its
# own scale, which TFLite Micro's int4 FULLY_CONNECTED cannot take: a coded op
INT4_DEPLOY = ["CONV_2D", "DEPTHWISE_CONV_2D", "TFQP_SHIFT_FULLY_CONNECTED"]
CODED_DEPLOY = list(SHIFT_OPS)
DEPLOYED = {"LSQ 4-bit": INT4_DEPLOY, "Uniform 4-bit symmetric": INT4_DEPLOY}


@pytest.mark.parametrize("name", list(QUANTIZERS))
def test_uniform_kernels_deploy_as_coded_ops_equal_to_keras(name):
    _, bits, table = QUANTIZERS[name]
    model = _model(name)
    plans = converters.plan(model, int4_builtin=False)
    assert [plan.name for plan in plans if plan.family == "shift"] == ["conv", "depthwise", "fc"]
    for plan in plans:
        codes = plan.kernel.shift
        assert codes.bits == bits and codes.classes == 1 and codes.family == f"uniform {bits}-bit"
        if table is not None:
            # the grid's levels times a power of two (a finer accumulator unit, up to 2^8)
            fine = int(np.gcd.reduce(np.abs(codes.table[0]).astype(np.int64)))
            assert fine in [2**m for m in range(9)]
            assert (codes.table[0] // fine).tolist() == table[:2**bits]
            assert np.abs(codes.table[0]).max() * 2 > 2**14 or fine == 2**8
        # the Keras kernel is the integer level times the channel's unit
        keras = _keras_rows(model.get_layer(plan.name), plan.op)
        weights = shift_codes.decode(codes.codes, codes.table, 1)[0]
        assert np.allclose(weights * codes.scales[0][:, None], keras, rtol=0, atol=2.0**-20)
        assert np.array_equal(weights, np.round(keras / codes.scales[0][:, None]))
    for int4_builtin in (False, True):
        deploy, reference = converters.convert_with_reference(
            model, representative_dataset=samples(64, seed=2), int4_builtin=int4_builtin)
        report = converters.verify(model, deploy, samples(), reference=reference, min_argmax_agreement=None)
        checks = [c for c in report.ops if c.policy != "stock bytes"]
        expected = DEPLOYED.get(name, CODED_DEPLOY) if int4_builtin else CODED_DEPLOY
        assert [(c.op, c.layer) for c in checks] == list(zip(expected, ["conv", "depthwise", "fc"])), report
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
    deploy, reference = converters.convert_with_reference(model, representative_dataset=data, int4_builtin=False)
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


def _builtin_model(channels_in=8, multiplier=2, seed=6):
    """conv (LSQ 4-bit) -> BN -> ReLU -> depthwise (LSQ 4-bit) -> flatten -> dense
    (LSQ 4-bit per tensor, bias, no BatchNorm: one filter scale)."""
    tf.keras.utils.set_random_seed(seed)
    rng = np.random.default_rng(seed)
    inputs = tf.keras.Input((6, 6, 3))
    x = lq.layers.QuantConv2D(channels_in, 3, padding="same", kernel_quantizer=tq.LSQ(bits=4, signed=True,
                              per_channel=True), name="conv")(inputs)
    x = tf.keras.layers.BatchNormalization(name="conv_bn")(x)
    x = tf.keras.layers.Activation("relu")(x)
    x = lq.layers.QuantDepthwiseConv2D(3, depth_multiplier=multiplier, padding="same",
                                       depthwise_quantizer=tq.LSQ(bits=4, signed=True), name="depthwise")(x)
    x = tf.keras.layers.Flatten()(x)
    outputs = lq.layers.QuantDense(5, kernel_quantizer=tq.LSQ(bits=4, signed=True), name="fc")(x)
    model = tf.keras.Model(inputs, outputs)
    for layer in model.layers:
        if isinstance(layer, tf.keras.layers.BatchNormalization):
            count = layer.gamma.shape[0]
            layer.set_weights([rng.uniform(0.5, 1.5, count) * rng.choice([-1.0, 1.0], count),
                               rng.normal(0, 0.3, count), rng.normal(0, 0.3, count), rng.uniform(0.2, 2.0, count)])
        if hasattr(layer, "bias") and layer.bias is not None:
            layer.bias.assign(rng.normal(0, 0.2, layer.bias.shape))
    data = rng.uniform(-1, 1, (48, 6, 6, 3)).astype(np.float32)
    model(data, training=True)
    return model, data


def _as_int8_filters(flatbuffer: bytes) -> bytes:
    """The same model with every INT4 filter stored as INT8 (same values, scales)."""
    model = schema.read(flatbuffer)
    for tensor in model.subgraphs[0].tensors:
        if tensor.type == schema.TensorType.INT4:
            values = schema.constant(model, tensor)
            model.buffers[tensor.buffer].data = values.astype(np.int8).view(np.uint8).reshape(-1)
            tensor.type = schema.TensorType.INT8
    return schema.write(model)


def _tflite_outputs(flatbuffer: bytes, inputs: np.ndarray) -> np.ndarray:
    """TFLite's own kernels (not XNNPACK, which takes over int8 filters but not int4
    ones and rounds its requantization otherwise: up to 2 LSB apart on this model)."""
    interpreter = tf.lite.Interpreter(
        model_content=flatbuffer,
        experimental_op_resolver_type=tf.lite.experimental.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    interpreter.allocate_tensors()
    source, target = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    results = []
    for sample in inputs:
        interpreter.set_tensor(source["index"], sample[None])
        interpreter.invoke()
        results.append(interpreter.get_tensor(target["index"]))
    return np.concatenate(results)


def test_int4_builtin_model_runs_in_tflite_micro_and_tflite_with_the_int8_forms_bytes():
    """A model whose every layer deploys as a builtin op with an INT4 filter: no custom
    op; TFLite Micro and TFLite give the bytes the same model with INT8 filters gives
    (the runtimes read the packed nibbles as the converter wrote them); verify passes."""
    from tfq_plus.converters.micro_interpreter import MicroInterpreter

    model, data = _builtin_model()
    deploy, reference = converters.convert_with_reference(model, representative_dataset=data)
    parsed = schema.read(deploy)
    ops = [schema.op_name(parsed, op) for op in parsed.subgraphs[0].operators]
    assert [op for op in ops if op in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")] == \
        ["CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"] and not any(op.startswith("TFQP") for op in ops)
    rows = [r for r in converters.report(deploy).ops if r.weight_bits]
    assert [r.weight_bits for r in rows] == [4, 4, 4]
    int8_form = _as_int8_filters(deploy)
    inputs = np.random.default_rng(7).integers(-128, 128, (16, 6, 6, 3)).astype(np.int8)
    micro = MicroInterpreter(deploy)
    micro_bytes = np.concatenate([micro.run(x[None]) for x in inputs])
    micro_int8 = MicroInterpreter(int8_form)
    assert np.array_equal(micro_bytes, np.concatenate([micro_int8.run(x[None]) for x in inputs]))
    assert np.array_equal(_tflite_outputs(deploy, inputs), _tflite_outputs(int8_form, inputs))
    report = converters.verify(model, deploy, data[:24], reference=reference, min_argmax_agreement=None)
    assert [c.op for c in report.ops] == ["CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"], report
    assert all(c.differing == 0 and c.exact for c in report.ops) and report.weights_checked == 3, report
    # TFLite Micro measures the arena of a builtin-only deploy model itself
    assert converters.report(deploy).arena_source == "this model"


def test_where_a_runtime_cannot_run_int4_the_layer_stays_a_coded_op():
    """A depthwise layer on 5 channels with depth multiplier 2 (CMSIS-NN's s4 depthwise
    kernel computes other values there) and a dense layer after a per-channel
    BatchNorm (one filter scale only in TFLite Micro's int4 FULLY_CONNECTED)."""
    model, data = _builtin_model(channels_in=5)
    deploy, reference = converters.convert_with_reference(model, representative_dataset=data)
    report = converters.verify(model, deploy, data[:16], reference=reference, min_argmax_agreement=None)
    assert [c.op for c in report.ops] == ["CONV_2D", "TFQP_SHIFT_DEPTHWISE_CONV2D", "FULLY_CONNECTED"], report
    assert all(c.differing == 0 for c in report.ops), report


def test_a_flipped_int4_filter_value_fails_verify():
    model, data = _builtin_model()
    deploy, _ = converters.convert_with_reference(model, representative_dataset=data)
    parsed = schema.read(deploy)
    for tensor in parsed.subgraphs[0].tensors:
        if schema.tensor_name(tensor) == "tfqp/conv/weights":
            parsed.buffers[tensor.buffer].data[0] ^= 0x01
    with pytest.raises(converters.VerificationError,
                       match=r"deploy op 0 \(CONV_2D, Keras layer 'conv'\): its weights are not the Keras kernel: "
                             r"1 weights differ, first in output channel 0"):
        converters.verify(model, schema.write(parsed), data[:4], min_argmax_agreement=None)


def test_int4_packing_is_tflites_low_nibble_first():
    """TFLite's tensor_utils unpacking: {0x12, 0x34} holds 2, 1, 4, 3; sign-extended."""
    assert schema.unpack_int4(np.array([0x12, 0x34], np.uint8), 4).tolist() == [2, 1, 4, 3]
    assert schema.unpack_int4(np.array([0xF8, 0x07], np.uint8), 3).tolist() == [-8, -1, 7]
    assert schema.pack_int4([-8, -1, 7]).tolist() == [0xF8, 0x07]  # odd count: high nibble 0
    values = np.random.default_rng(8).integers(-8, 8, 37)
    assert np.array_equal(schema.unpack_int4(schema.pack_int4(values), 37), values)
    with pytest.raises(ValueError, match=r"pack_int4: values must be in \[-8, 7\], got 8"):
        schema.pack_int4([1, 8])


def test_the_cli_converts_int4_filters_unless_told_not_to(tmp_path):
    from tfq_plus.converters import cli

    model, data = _builtin_model()
    model_path, calibration = tmp_path / "lsq4.h5", tmp_path / "data.npz"
    model.save(model_path)
    np.savez(calibration, x=data)
    for flags, expected in (([], "CONV_2D"), (["--no-int4-builtin"], "TFQP_SHIFT_CONV2D")):
        output = tmp_path / f"deploy{len(flags)}.tflite"
        assert cli.main(["convert", str(model_path), "--calibration", str(calibration), "-o", str(output)]
                        + flags) == 0
        parsed = schema.read(output.read_bytes())
        assert schema.op_name(parsed, parsed.subgraphs[0].operators[0]) == expected
