"""Packed 4- and 2-bit activations (``micro/include/tfqp/formats.h``, "Packed k-bit
activations"; ``tfqp/kbit_activations.h``; ``tfqp/unpack_codes.h``): the format on both
sides (``converters/packing.py`` against the C ops), the five int8-activation ops
reading packed inputs and writing packed codes against ``tfqp_numpy`` on the unpacked
values, TFQP_UNPACK_CODES and TFQP_MAX_POOL_CODES against numpy, and the rejections.

Cases come from ``micro/cortex_m/kernel_vectors.py`` (the Cortex-M vectors' builders);
every case is seeded.
"""

import sys
from pathlib import Path

import tfq_plus  # noqa: F401  (selects Keras 2 before TensorFlow)

import numpy as np
import pytest

import tfqp_numpy
from tfq_plus.converters import _tfqp_kernels as kernels
from tfq_plus.converters import packing
from tfq_plus.converters.ops import (
    CONV2D_INT8, FULLY_CONNECTED_INT8, MAX_POOL_CODES, SHIFT_CONV2D, SHIFT_DEPTHWISE_CONV2D,
    UNPACK_CODES, decode_options,
)

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "micro" / "cortex_m"))
import kernel_vectors  # noqa: E402

# ----------------------------------------------------------------------------- the format


def test_layout_is_the_formats_definition():
    """4-bit: 8 codes per word at bits 4j; 2-bit: 16 at bits 2j; each pixel on its own
    words, padding codes 0."""
    codes = np.array([[1, 2, 3, 4, 5, 6, 7, 8, 9], [15, 0, 0, 0, 0, 0, 0, 0, 14]])
    words = packing.pack_kbit_activations(codes, 4).view(np.uint32)
    assert words.tolist() == [[0x87654321, 9], [15, 14]]
    two = packing.pack_kbit_activations(np.array([[3, 0, 1, 2] * 4 + [1]]), 2).view(np.uint32)
    assert two.tolist() == [[sum(v << (2 * j) for j, v in enumerate([3, 0, 1, 2] * 4)), 1]]
    assert packing.kbit_words(17, 2) == 2 and packing.kbit_words(16, 4) == 2


@pytest.mark.parametrize("bits", packing.KBIT_BITS)
def test_python_packs_what_the_c_ops_unpack_and_back(bits):
    rng = np.random.default_rng(bits)
    for channels in [1, 7, 32 // bits, 32 // bits + 1, 45]:
        codes = rng.integers(0, 1 << bits, size=(2, 3, channels))
        words = packing.pack_kbit_activations(codes, bits)
        assert words.shape == (2, 3, packing.kbit_words(channels, bits))
        # the C side's unpack (TFQP_UNPACK_CODES with q = u) and its pack (the codes rows)
        got = kernels.run(UNPACK_CODES.name, [words], UNPACK_CODES.encode(
            channels=channels, bits=bits), output_type="int8")
        np.testing.assert_array_equal(got, codes)
        np.testing.assert_array_equal(
            kernels.pack_codes(codes.reshape(-1, channels).astype(np.uint8), bits),
            words.reshape(-1, words.shape[-1]))
        np.testing.assert_array_equal(packing.unpack_kbit_activations(words, bits, channels),
                                      codes)


def test_packing_rejects_what_the_format_forbids():
    with pytest.raises(ValueError, match="`bits` must be 2 or 4, got 3"):
        packing.pack_kbit_activations(np.zeros((1, 3), np.uint8), 3)
    with pytest.raises(ValueError, match=r"codes must be in \[0, 3\] for 2-bit codes, got 4"):
        packing.pack_kbit_activations(np.array([[0, 4]]), 2)
    words = packing.pack_kbit_activations(np.ones((2, 5), np.uint8), 4)
    words.view(np.uint32)[1, 0] |= np.uint32(7 << 20)  # code 5 of 5: past the pixel
    with pytest.raises(ValueError, match="padding bits must be 0 .*row 1, word 0"):
        packing.unpack_kbit_activations(words, 4, 5)


# ----------------------------------------------------------------------------- the five ops

LABELS = ("shift conv", "shift depthwise", "shift dense", "conv int8", "fc int8")


@pytest.fixture(scope="module")
def kbit_cases():
    return kernel_vectors.kbit_cases(np.random.default_rng(11))


def numpy_codes(case, x, zero_point):
    """tfqp_numpy's codes output u = #{i : d*A >= t_i} of ``case``'s op on the int8 input
    ``x`` read with ``zero_point``."""
    options = decode_options(np.frombuffer(case.options, np.uint8))
    transform = case.inputs[-1].copy()
    transform[:, 1] = 0  # the count alone
    if case.op == CONV2D_INT8.name:
        return tfqp_numpy.conv2d_int8(x, case.inputs[1], transform, options,
                                      input_zero_point=zero_point, output_kind="codes")
    if case.op == FULLY_CONNECTED_INT8.name:
        return tfqp_numpy.fully_connected_int8(x, case.inputs[1], transform, options,
                                               input_zero_point=zero_point, output_kind="codes")
    function = {SHIFT_CONV2D.name: tfqp_numpy.shift_conv2d,
                SHIFT_DEPTHWISE_CONV2D.name: tfqp_numpy.shift_depthwise_conv2d}.get(
                    case.op, tfqp_numpy.shift_fully_connected)
    return function(x, *case.inputs[1:3], transform, options, input_zero_point=zero_point,
                    output_kind="codes")


def test_every_op_reads_packed_inputs_and_writes_packed_codes(kbit_cases):
    """Each op with 4-bit in and out, 2-bit in and out, 4-bit in only, 2-bit out only:
    its output equals numpy's codes on the unpacked input."""
    ops = set()
    for case in kbit_cases:
        if case.op in (UNPACK_CODES.name, MAX_POOL_CODES.name):
            continue
        options = decode_options(np.frombuffer(case.options, np.uint8))
        input_bits, output_bits = options.get("input_bits", 0), options.get("output_bits", 0)
        x, zero_point = case.inputs[0], case.input_zero_point
        if input_bits:
            x = packing.unpack_kbit_activations(x, input_bits, options["channels_in"])
            x, zero_point = x.astype(np.int8), options.get("input_code_zero", 0)
        expected = numpy_codes(case, x, zero_point)
        if output_bits:
            assert case.output.dtype == np.int32
            got = packing.unpack_kbit_activations(case.output, output_bits, expected.shape[-1])
        else:
            got = case.output.astype(np.int64) - case.inputs[-1][:, 1]  # base + u
        np.testing.assert_array_equal(got, expected, err_msg=case.name)
        assert expected.max() > 0, case.name
        ops.add((case.op, input_bits, output_bits))
    assert len(ops) == 5 * 4


def test_a_packed_input_equals_its_int8_codes(kbit_cases):
    """The same layer on the packed input and on its codes as an int8 tensor with zero
    point input_code_zero: the same bytes."""
    for case in kbit_cases:
        options = decode_options(np.frombuffer(case.options, np.uint8))
        if not options.get("input_bits") or options.get("output_bits"):
            continue
        bits, channels = options["input_bits"], options["channels_in"]
        int8_options = {k: v for k, v in options.items()
                        if k not in ("input_bits", "input_code_zero")
                        and not (k == "channels_in" and case.op.startswith("TFQP_SHIFT_")
                                 and case.op != "TFQP_SHIFT_FULLY_CONNECTED")}
        x = packing.unpack_kbit_activations(case.inputs[0], bits, channels).astype(np.int8)
        got = kernels.run(case.op, [x] + case.inputs[1:],
                          kernel_vectors.with_options(b"", **int8_options), output_type="int8",
                          input_zero_point=options.get("input_code_zero", 0))
        np.testing.assert_array_equal(got, case.output, err_msg=case.name)


# (op, stride, dilation, padding, kernel): the geometries a by-rows run must keep:
# windows cut by the top and bottom borders, strides, dilated windows
ROW_GEOMETRIES = [("conv", (1, 1), (1, 1), "same", 3), ("conv", (2, 2), (1, 1), "same", 3),
                  ("conv", (1, 2), (2, 1), "same", 3), ("conv", (3, 1), (2, 2), "valid", 2),
                  ("depthwise", (2, 1), (2, 1), "same", 3), ("depthwise", (1, 1), (1, 1), "valid", 3),
                  ("int8", (1, 1), (2, 2), "same", 3), ("int8", (2, 2), (1, 1), "valid", 3)]


@pytest.mark.parametrize("op, stride, dilation, padding, kernel", ROW_GEOMETRIES)
def test_a_convolution_by_rows_writes_the_whole_tensors_bytes(op, stride, dilation, padding, kernel):
    """A convolution with a packed input and codes output runs one output row at a time
    (tfqp_kbit_eval_rows): the same codes as the op on the unpacked int8 input writing
    int8 codes (the whole tensor at once), and a scratch that holds rows, not the
    tensors."""
    rng = np.random.default_rng(sum(stride) * 7 + sum(dilation) + len(padding) + len(op))
    shape = dict(batch=2, height=9, width=7, kh=kernel, kw=kernel, stride=stride, dilation=dilation,
                 padding=padding, output_kind="codes", levels=16, input_codes=(4, 8))
    if op == "int8":
        base = kernel_vectors.int8_conv_case(rng, "", cin=12, cout=9, **shape)
    else:
        base = kernel_vectors.shift_case(rng, "", op, cin=12, cout=9 if op == "conv" else 12, bits=3,
                                         **shape)
    case = kernel_vectors.packed_io_case(base, "", input_bits=4, output_bits=4)
    codes = packing.unpack_kbit_activations(case.output, 4, base.output.shape[-1])
    np.testing.assert_array_equal(codes, base.output.astype(np.int64) - base.inputs[-1][:, 1])
    assert codes.max() > 0
    prepared = kernels.prepare(case.op, case.inputs, case.options, output_type="int32")
    whole = int(np.prod(base.inputs[0].shape)) + int(np.prod(base.output.shape))
    unpacked = kernels.prepare(base.op, base.inputs, base.options, output_type="int8",
                               input_zero_point=base.input_zero_point)
    rows = kernel + (kernel - 1) * (dilation[0] - 1)
    assert prepared.scratch_bytes <= unpacked.scratch_bytes + rows * 7 * 12 + 7 * 9 + 8
    assert prepared.scratch_bytes < unpacked.scratch_bytes + whole


def test_unpack_codes_equals_numpy(kbit_cases):
    unpacks = [case for case in kbit_cases if case.op == UNPACK_CODES.name]
    assert len(unpacks) == 4
    for case in unpacks:
        options = decode_options(np.frombuffer(case.options, np.uint8))
        codes = packing.unpack_kbit_activations(case.inputs[0], options["bits"],
                                                options["channels"]).astype(np.int64)
        expected = case.output_zero_point + codes - options.get("code_zero", 0)
        np.testing.assert_array_equal(case.output, expected, err_msg=case.name)


def max_pool_codes_numpy(codes, options):
    """Max of each channel's codes over the in-image part of each window, computed
    directly from TFLite's SAME / VALID arithmetic (independent of the op's spec)."""
    n, h, w, c = codes.shape
    fh, fw = options["filter_height"], options["filter_width"]
    sh, sw = options["stride_height"], options["stride_width"]
    if options["padding"] == packing.PADDING_SAME:
        oh, ow = -(-h // sh), -(-w // sw)
        top = max((oh - 1) * sh + fh - h, 0) // 2
        left = max((ow - 1) * sw + fw - w, 0) // 2
    else:
        oh, ow, top, left = (h - fh) // sh + 1, (w - fw) // sw + 1, 0, 0
    out = np.full((n, oh, ow, c), -1)
    for y in range(oh):
        for x in range(ow):
            for ky in range(fh):
                for kx in range(fw):
                    iy, ix = y * sh - top + ky, x * sw - left + kx
                    if 0 <= iy < h and 0 <= ix < w:
                        out[:, y, x] = np.maximum(out[:, y, x], codes[:, iy, ix])
    assert out.min() >= 0  # every window has an in-image position
    return out


def test_max_pool_codes_equals_numpy(kbit_cases):
    """TFQP_MAX_POOL_CODES (host build, the Cortex-M vectors' cases) against the window
    max of the unpacked codes, and against its spec's numpy reference; the output's
    padding codes are 0."""
    from tfq_plus.converters.ops.kbit import max_pool_codes_reference

    pools = [case for case in kbit_cases if case.op == MAX_POOL_CODES.name]
    assert len(pools) == len(kernel_vectors.MAX_POOL_CODES_SHAPES)
    for case in pools:
        options = decode_options(np.frombuffer(case.options, np.uint8))
        bits, channels = options["bits"], options["channels"]
        codes = packing.unpack_kbit_activations(case.inputs[0], bits, channels)
        expected = max_pool_codes_numpy(codes, options)
        # unpack_kbit_activations rejects padding codes that are not 0
        got = packing.unpack_kbit_activations(case.output, bits, channels)
        np.testing.assert_array_equal(got, expected, err_msg=case.name)
        view = type("View", (), {"options": options})()
        np.testing.assert_array_equal(max_pool_codes_reference(view, case.inputs[0]),
                                      case.output, err_msg=case.name)


def test_max_pool_codes_ignores_the_inputs_padding_codes():
    """Codes past C in a pixel's last word are not data: garbage there never reaches the
    output's padding codes."""
    rng = np.random.default_rng(5)
    codes = rng.integers(0, 16, size=(1, 4, 4, 5))
    x = packing.pack_kbit_activations(codes, 4)
    x.view(np.uint32)[..., 0] |= np.uint32(0xFFF00000)  # codes 5, 6, 7: padding
    options = MAX_POOL_CODES.encode(channels=5, bits=4, filter_height=2, filter_width=2,
                                    stride_height=2, stride_width=2, padding="valid")
    got = kernels.run(MAX_POOL_CODES.name, [x], options, output_type="int32")
    np.testing.assert_array_equal(packing.unpack_kbit_activations(got, 4, 5),
                                  max_pool_codes_numpy(codes, decode_options(
                                      np.frombuffer(options, np.uint8))))


def test_max_pool_codes_encoder_checks_bits():
    with pytest.raises(ValueError, match="TFQP_MAX_POOL_CODES: bits must be 2 or 4, got 3"):
        MAX_POOL_CODES.encode(channels=4, bits=3, filter_height=2, filter_width=2)


def test_malformed_packed_io_is_rejected():
    """The kernel_vectors rejections (each raised on the host when built), by message."""
    rejected = {case.name: case.expected_error
                for case in kernel_vectors.rejected_kbit_cases(np.random.default_rng(3))}
    expected = {
        "reject output_levels past 2^output_bits": "needs output_levels in [2, 2^output_bits]",
        "reject input_code_zero 16": "must be in [0, 2^input_bits) (input_code_zero = 16)",
        "reject packed input depth": "packed input depth must equal ceil(channels_in / "
                                     "(32 / input_bits)) (input = 3)",
        "reject packed conv without channels_in": "a packed input (input_bits) needs "
                                                  "channels_in",
        "reject packed codes into an int8 output": "output must be int32 (packed codes) with "
                                                   "output_bits",
        "reject unpack codes bits 3": "must be 2 or 4 (bits = 3)",
        "reject unpack codes past int8": "output zero point - code_zero + every code must lie",
        "reject output_bits 3": "must be 0 (absent), 2 or 4 (output_bits = 3)",
        "reject max pool codes bits 3": "TFQP_MAX_POOL_CODES: must be 2 or 4 (bits = 3)",
        "reject max pool codes input depth": "packed input depth must equal ceil(channels / "
                                             "(32 / bits)) (input = 2)",
        "reject max pool codes padding 2": "must be 0 (SAME) or 1 (VALID) (padding = 2)",
        "reject max pool codes window past the input": "dilated filter larger than the input",
    }
    assert set(rejected) == set(expected)
    for name, message in expected.items():
        assert message in rejected[name], (name, rejected[name])


def test_registry_encoders_check_the_kbit_options():
    with pytest.raises(ValueError, match="input_bits must be 0 .absent., 2 or 4, got 3"):
        FULLY_CONNECTED_INT8.encode(channels_in=4, input_bits=3)
    with pytest.raises(ValueError, match=r"input_code_zero must be in \[0, 2\^input_bits\)"):
        FULLY_CONNECTED_INT8.encode(channels_in=4, input_bits=2, input_code_zero=4)
    with pytest.raises(ValueError, match="input_code_zero needs input_bits"):
        CONV2D_INT8.encode(channels_in=1, filter_height=1, filter_width=1, input_code_zero=1)
    with pytest.raises(ValueError, match="needs channels_in"):
        SHIFT_CONV2D.encode(filter_height=1, filter_width=1, input_bits=4)
    with pytest.raises(ValueError, match=r"needs output_levels in \[2, 4\], got 5"):
        SHIFT_CONV2D.encode(filter_height=1, filter_width=1, output_bits=2, output_levels=5)
    with pytest.raises(ValueError, match="code_zero must be in"):
        UNPACK_CODES.encode(channels=3, bits=2, code_zero=4)
    encoded = SHIFT_DEPTHWISE_CONV2D.encode(filter_height=3, filter_width=3, input_bits=4,
                                            input_code_zero=8, channels_in=5, output_bits=4,
                                            output_levels=16)
    parsed = kernels.parse_options(SHIFT_DEPTHWISE_CONV2D.name, encoded)
    assert {k: parsed[k] for k in ("input_bits", "input_code_zero", "channels_in",
                                   "output_bits")} == {"input_bits": 4, "input_code_zero": 8,
                                                       "channels_in": 5, "output_bits": 4}



def test_unpack_codes_rejects_a_zero_point_that_takes_a_code_past_int8():
    """q = zp + u - code_zero must fit int8 for every code (the C check also holds for
    any int32 zero point: micro/tests/test_shift.c)."""
    words = packing.pack_kbit_activations(np.arange(16).reshape(2, 8), 4)
    options = UNPACK_CODES.encode(channels=8, bits=4)
    with pytest.raises(ValueError, match="every code must lie in .-128, 127."):
        kernels.run(UNPACK_CODES.name, [words], options, output_type="int8",
                    output_zero_point=113)
    shifted = UNPACK_CODES.encode(channels=8, bits=4, code_zero=1)
    with pytest.raises(ValueError, match="every code must lie in .-128, 127."):
        kernels.run(UNPACK_CODES.name, [words], shifted, output_type="int8",
                    output_zero_point=-128)
    got = kernels.run(UNPACK_CODES.name, [words], options, output_type="int8",
                      output_zero_point=112)
    assert got.tolist() == [list(range(112, 120)), list(range(120, 128))]


def test_uniform_dense_cases_equal_numpy():
    """The vectors of the Cortex-M k-bit fully-connected path (kernel_vectors.
    uniform_dense_cases: uniform 2- and 4-bit code tables on packed inputs) hold
    numpy's codes for their codes outputs, and their code tables are affine in the code
    (flip 0) or its two's complement (flip 2^(b-1)) as the path requires."""
    checked = 0
    for case in kernel_vectors.uniform_dense_cases(np.random.default_rng(5)):
        options = decode_options(np.frombuffer(case.options, np.uint8))
        table = case.inputs[2][0].astype(np.int64)
        codes = np.arange(table.size)
        assert any(np.array_equal(table, (table[flip ^ 1] - table[flip]) * (codes ^ flip)
                                  + table[flip]) for flip in (0, table.size // 2)), case.name
        if "output_levels" not in options:
            continue
        x = packing.unpack_kbit_activations(case.inputs[0], options["input_bits"],
                                            options["channels_in"]).astype(np.int8)
        expected = numpy_codes(case, x, options.get("input_code_zero", 0))
        got = packing.unpack_kbit_activations(case.output, options["output_bits"],
                                              expected.shape[-1])
        np.testing.assert_array_equal(got, expected, err_msg=case.name)
        checked += 1
    assert checked >= 4
