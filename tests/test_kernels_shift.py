"""The shift ops (TFQP_SHIFT_CONV2D, TFQP_SHIFT_DEPTHWISE_CONV2D,
TFQP_SHIFT_FULLY_CONNECTED) of the host build against the numpy references of
``tfqp_numpy`` (written from ``micro/include/tfqp/shift_layer.h``), the coded-weights
format across C and Python, validation, and a deploy model in the Interpreter.

Random data comes from ``micro/cortex_m/kernel_vectors.py`` (the same builders make
the Cortex-M vectors); every case is seeded.
"""

import itertools
import sys
from pathlib import Path

import tfq_plus  # noqa: F401  (selects Keras 2 before TensorFlow)

import numpy as np
import pytest
from flatbuffers import flexbuffers

import tfqp_numpy
from tfq_plus.converters import _tfqp_kernels as kernels
from tfq_plus.converters import packing
from tfq_plus.converters.ops import (
    SHIFT_CONV2D, SHIFT_DEPTHWISE_CONV2D, SHIFT_FULLY_CONNECTED, OpView, decode_options,
)
from tfq_plus.converters.ops import shift

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "micro" / "cortex_m"))
import kernel_vectors  # noqa: E402

REFERENCES = {
    SHIFT_CONV2D.name: tfqp_numpy.shift_conv2d,
    SHIFT_DEPTHWISE_CONV2D.name: tfqp_numpy.shift_depthwise_conv2d,
    SHIFT_FULLY_CONNECTED.name: tfqp_numpy.shift_fully_connected,
}


def options_of(encoded: bytes):
    return decode_options(np.frombuffer(encoded, np.uint8))


def reference(case):
    """tfqp_numpy's output of a kernel_vectors case."""
    x, words, table, transform = case.inputs
    return REFERENCES[case.op](
        x, words, table, transform, options_of(case.options),
        input_zero_point=case.input_zero_point, output_zero_point=case.output_zero_point,
        output_kind="packed" if case.output.dtype == np.int32 else "int8")


def assert_matches_reference(case):
    expected = reference(case)
    assert case.output.dtype == expected.dtype and case.output.shape == expected.shape
    np.testing.assert_array_equal(case.output, expected, err_msg=case.name)


def run(case, **changes):
    """The host build's output of ``case`` with some inputs / options replaced."""
    inputs = list(changes.pop("inputs", case.inputs))
    options = changes.pop("options", case.options)
    return kernels.run(case.op, inputs, options,
                       output_type=changes.pop("output_type", case.output.dtype.name),
                       input_zero_point=case.input_zero_point,
                       output_zero_point=case.output_zero_point)


def with_options(encoded: bytes, **extra) -> bytes:
    return bytes(flexbuffers.Dumps({**flexbuffers.Loads(encoded), **extra}))


# ----------------------------------------------------------------------------- the format


def test_code_layout_is_the_formats_definition():
    """3-bit codes: 10 per word at bits 3j, top 2 bits 0; rows start on a word."""
    codes = np.array([[1, 2, 3, 4, 5, 6, 7, 0, 1, 2, 3, 4],
                      [7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7]], np.uint8)
    words = packing.pack_codes(codes, 3)
    first = sum(int(c) << (3 * j) for j, c in enumerate(codes[0, :10]))
    assert words.view(np.uint32).tolist() == [[first, 3 | 4 << 3], [2**30 - 1, 63]]
    assert [packing.codes_per_word(b) for b in packing.CODE_BITS] == [32, 16, 10, 8, 6]
    assert packing.code_words(12, 3) == 2 and packing.code_words(10, 3) == 1


@pytest.mark.parametrize("bits", packing.CODE_BITS)
def test_codes_pack_on_one_side_and_unpack_on_the_other(bits):
    rng = np.random.default_rng(bits)
    for count in [1, 5, packing.codes_per_word(bits), packing.codes_per_word(bits) + 1, 97]:
        codes = rng.integers(0, 1 << bits, (7, count)).astype(np.uint8)
        in_python, in_c = packing.pack_codes(codes, bits), kernels.pack_codes(codes, bits)
        assert in_python.dtype == in_c.dtype == np.int32
        np.testing.assert_array_equal(in_python, in_c)
        np.testing.assert_array_equal(kernels.unpack_codes(in_python, bits, count), codes)
        np.testing.assert_array_equal(packing.unpack_codes(in_c, bits, count), codes)
        np.testing.assert_array_equal(tfqp_numpy.shift_codes(in_c, bits, count), codes)


def test_code_packing_rejects_what_the_format_forbids():
    with pytest.raises(ValueError, match=r"pack_codes: codes must be in \[0, 7\] for 3-bit "
                                         r"codes, got 8 in row 1 at code 2"):
        packing.pack_codes(np.array([[0, 0, 0], [0, 0, 8]]), 3)
    with pytest.raises(ValueError, match="codes must be < 2\\^3, got 8 at flat index 5"):
        kernels.pack_codes(np.array([[0, 0, 0], [0, 0, 8]], np.uint8), 3)
    with pytest.raises(ValueError, match="pack_codes: `bits` must be an integer from 1 to 5, got 6"):
        packing.pack_codes(np.zeros((1, 1), np.uint8), 6)
    with pytest.raises(ValueError, match=r"bits must be in \[1, 5\], got 0"):
        kernels.pack_codes(np.zeros((1, 1), np.uint8), 0)
    words = packing.pack_codes(np.ones((2, 12), np.uint8), 3)
    stray = words.copy()
    stray.view(np.uint32)[1, 1] |= np.uint32(1 << 6)  # code 12 of 12: past the row
    with pytest.raises(ValueError, match="padding bits must be 0 .*row 1, word 1"):
        packing.unpack_codes(stray, 3, 12)
    stray = words.copy()
    stray.view(np.uint32)[0, 0] |= np.uint32(1 << 31)  # above the word's 10th code
    with pytest.raises(ValueError, match="row 0, word 0"):
        packing.unpack_codes(stray, 3, 12)
    with pytest.raises(ValueError, match=r"words must be \[Cout, ceil\(21 / 10\)\] = \[Cout, 3\], got shape \(2, 2\)"):
        packing.unpack_codes(words, 3, 21)


# ----------------------------------------------------------------------------- live-code lists


def _listed_dense(seed, bits=4, terms=1, batch=1, output_kind="int8", dead_words=0.7, cin=70,
                  cout=9):
    rng = np.random.default_rng(seed)
    return kernel_vectors.shift_case(rng, "lists", "dense", batch=batch, cin=cin, cout=cout,
                                     bits=bits, terms=terms, output_kind=output_kind,
                                     dead_words=dead_words, code_lists=True)


def test_code_lists_layout_is_the_formats_definition():
    """Starts, then (tap << 16 | value & 0xFFFF) per nonzero code in row order; two terms
    share a tap; zero codes (whatever their number) are left out."""
    codes = np.array([[0, 1, 2, 0], [0, 0, 0, 0], [3, 0, 3, 3]])
    values = np.array([0, 5, -3, 16384])
    lists = packing.pack_code_lists(codes, values, terms=2)
    assert lists.view(np.uint32).tolist() == [
        0, 2, 2, 5, 0 << 16 | 5, 1 << 16 | (-3 & 0xFFFF), 0 << 16 | 16384, 1 << 16 | 16384,
        1 << 16 | 16384]
    unpacked = packing.unpack_code_lists(lists, 3)
    assert [(t.tolist(), v.tolist()) for t, v in unpacked] == [
        ([0, 1], [5, -3]), ([], []), ([0, 1, 1], [16384, 16384, 16384])]


@pytest.mark.parametrize("bits,terms", [(1, 1), (2, 2), (3, 1), (4, 1), (5, 2)])
def test_code_lists_pack_in_python_and_check_in_c(bits, terms):
    """Lists packed here pass the C op's check at init_table and change no output byte
    (batch 1 and 2; the host paths ignore them); unpacked, they are the row's nonzero
    weights."""
    case = _listed_dense(bits, bits=bits, terms=terms, batch=1 + terms % 2)
    assert len(case.inputs) == 5
    np.testing.assert_array_equal(run(case, inputs=case.inputs[:4]), case.output)
    codes = packing.unpack_codes(case.inputs[1], bits, 70 * terms)
    decoded = case.inputs[2][0].astype(np.int64)[codes]
    for co, (taps, values) in enumerate(packing.unpack_code_lists(case.inputs[4], 9)):
        live = np.flatnonzero(decoded[co])
        np.testing.assert_array_equal(taps, live // terms)
        np.testing.assert_array_equal(values, decoded[co, live])


def test_malformed_code_lists_are_rejected_by_the_c_op():
    """Every malformed or inconsistent list is rejected at prepare / init_table with an
    error naming code_lists, never read."""
    case = _listed_dense(7)
    lists = case.inputs[4]
    starts = 10  # Cout + 1

    def rejects(edit, message):
        array = lists.copy()
        array = edit(array)
        with pytest.raises(ValueError, match=message):
            run(case, inputs=case.inputs[:4] + [array])

    def at(index, value):
        def edit(array):
            array[index] = value
            return array
        return edit

    rejects(at(0, 1), r"first start must be 0.*code_lists")
    rejects(at(starts - 1, lists[starts - 1] + 1), r"last start must equal the entries' count")
    rejects(at(2, lists[1] - 1), r"starts must be nondecreasing.*\(code_lists = 1\)")
    rejects(at(starts, lists[starts] ^ (1 << 16)), r"differs from its code's \(tap, value\)")
    rejects(at(starts, lists[starts] ^ 1), r"differs from its code's \(tap, value\)")
    def one_more(array):  # an entry past the last channel's nonzero codes
        array = np.append(array, array[-1])
        array[starts - 1] += 1
        return array

    rejects(one_more, r"more entries than its row.*\(code_lists = 8\)")
    rejects(lambda a: a[:starts - 1], r"code_lists must hold Cout \+ 1 starts")
    rejects(lambda a: a.astype(np.int16), r"code_lists")
    rejects(lambda a: a.reshape(1, -1), r"code_lists")
    two_classes = np.concatenate([case.inputs[2]] * 2)
    with pytest.raises(ValueError, match=r"one accumulator class.*code_lists"):
        run(case, inputs=[case.inputs[0], case.inputs[1], two_classes,
                          kernel_vectors.shift_transform(np.random.default_rng(0),
                                                         np.zeros((2, 9, 70)), False), lists])


def test_code_list_packing_rejects_what_the_format_forbids():
    with pytest.raises(ValueError, match="taps"):
        packing.pack_code_lists(np.ones((1, 2**16 + 1), np.uint8), np.array([0, 1]))
    with pytest.raises(ValueError, match="within"):
        packing.pack_code_lists(np.ones((1, 4), np.uint8), np.array([0, 2**14 + 1]))
    with pytest.raises(ValueError, match=r"codes must be \[Cout, terms \* taps\]"):
        packing.pack_code_lists(np.ones((2, 5), np.uint8), np.array([0, 1]), terms=2)
    with pytest.raises(ValueError, match="starts must run from 0"):
        packing.unpack_code_lists(np.array([0, 3, 1], np.int32), 2)


# ----------------------------------------------------------------------------- the ops


COMBOS = [(op, bits, terms, classes, output) for op, bits, terms, (classes, output) in
          itertools.product(["conv", "depthwise", "dense"], packing.CODE_BITS, [1, 2, 3],
                            [(1, "int8"), (2, "int8"), (1, "packed")])]


@pytest.mark.parametrize("op,bits,terms,classes,output", COMBOS)
def test_every_code_width_terms_classes_and_output(op, bits, terms, classes, output):
    """Batch 2, odd channel counts, a random input zero point, a 3x3 SAME window."""
    rng = np.random.default_rng(bits * 100 + terms * 10 + classes + len(op) + len(output))
    case = kernel_vectors.shift_case(
        rng, "combo", op, batch=2, height=5, width=6, cin=[5, 3, 37][len(op) % 3], cout=33,
        kh=3, kw=3, depth_multiplier=1 + bits % 2, bits=bits, terms=terms, classes=classes,
        output_kind=output)
    assert_matches_reference(case)


GEOMETRY = [combo for combo in itertools.product(
    ["conv", "depthwise"], [1, 2], [(1, 1), (3, 3), (2, 3)], [(1, 1), (2, 1), (1, 3)],
    [(1, 1), (2, 2), (1, 2)], ["same", "valid"]) if combo[0] == "depthwise" or combo[1] == 1]


@pytest.mark.parametrize("seed,op,multiplier,kernel,stride,dilation,padding",
                         [(i,) + g for i, g in enumerate(GEOMETRY)])
def test_strides_dilations_padding_and_depth_multipliers(seed, op, multiplier, kernel, stride,
                                                         dilation, padding):
    rng = np.random.default_rng(seed)
    case = kernel_vectors.shift_case(
        rng, "geometry", op, batch=2, height=7, width=8, cin=7, cout=9, kh=kernel[0],
        kw=kernel[1], stride=stride, dilation=dilation, padding=padding,
        depth_multiplier=multiplier, bits=int(rng.integers(1, 6)), terms=1 + seed % 2,
        output_kind=["int8", "packed"][seed % 2])
    assert_matches_reference(case)


def test_tiny_image_with_windows_outside_it():
    """Dilated SAME windows larger than a 2x2 image: some positions have no valid tap
    (A = 0: the output is the transform of B alone)."""
    rng = np.random.default_rng(5)
    for op in ["conv", "depthwise"]:
        case = kernel_vectors.shift_case(rng, "tiny", op, height=2, width=2, cin=3, cout=4,
                                         kh=3, kw=3, dilation=(3, 3), bits=4)
        assert_matches_reference(case)


def test_input_zero_point_extremes_and_saturation_at_both_ends():
    rng = np.random.default_rng(7)
    outputs = []
    for zero_point in [-128, 127]:
        case = kernel_vectors.shift_case(rng, "saturation", "conv", batch=2, height=6, width=6,
                                         cin=8, cout=40, kh=3, kw=3, bits=4, dead_words=0.0)
        x = np.full_like(case.input, zero_point)
        x[0] = rng.integers(-128, 128, x[0].shape)
        case.input_zero_point = zero_point
        case.inputs[0] = x
        case.output = run(case)
        assert_matches_reference(case)
        assert (case.output[1] == np.clip(case.output_zero_point + _bias_only(case), -128, 127)).all()
        outputs.append(case.output)
    values = np.concatenate([o.ravel() for o in outputs])
    assert (values == -128).any() and (values == 127).any() and len(np.unique(values)) > 150


def _bias_only(case):
    """The int8 output of A = 0 (an input equal to the zero point): requantized B."""
    from tfq_plus.converters.tflite_arithmetic import multiply_by_quantized_multiplier_array

    transform = case.inputs[3].astype(np.int64)
    return multiply_by_quantized_multiplier_array(transform[:, 1], transform[:, 2], transform[:, 4])


@pytest.mark.parametrize("op", ["conv", "depthwise", "dense"])
def test_activation_clamps(op):
    rng = np.random.default_rng(len(op))
    case = kernel_vectors.shift_case(rng, "clamps", op, batch=2, height=5, width=5, cin=6,
                                     cout=10, kh=3, kw=3, bits=3, activation=(-20, 35),
                                     classes=1 + len(op) % 2)
    assert_matches_reference(case)
    assert case.output.min() == -20 and case.output.max() == 35
    unclamped = run(case, options=with_options(case.options, activation_min=-128,
                                               activation_max=127))
    np.testing.assert_array_equal(np.clip(unclamped, -20, 35), case.output)
    assert (unclamped < -20).any() and (unclamped > 35).any()


@pytest.mark.parametrize("activation", [None, (-20, 35)])
def test_conv_channel_pairs_requantized_in_the_kernel(activation):
    """Cin in fours, Cout a multiple of 32 and code values that decode to int8: the x86
    AVX-512 path requantizes every block of 8 positions x 32 channels from its kernel's
    registers (5x5 positions: a last block of one position per batch element)."""
    rng = np.random.default_rng(32 + (activation is None))
    case = kernel_vectors.shift_case(rng, "channel pairs", "conv", batch=2, height=5, width=5,
                                     cin=32, cout=64, kh=3, kw=3, bits=4, activation=activation)
    x, words, table, _ = case.inputs
    small = rng.integers(-64, 65, size=table.shape).astype(np.int16)
    small[:, 0] = 0
    codes = packing.unpack_codes(words, 4, 9 * 32)
    weights = kernel_vectors.decoded_weights(codes, small, 1)
    case.inputs = [x, words, small, kernel_vectors.shift_transform(rng, weights, False)]
    case.output = run(case)
    assert_matches_reference(case)
    values = np.unique(case.output)
    assert len(values) > 40
    if activation is not None:
        assert values.min() == -20 and values.max() == 35


@pytest.mark.parametrize("cout", [1, 31, 32, 33, 70])
@pytest.mark.parametrize("op", ["conv", "dense"])
def test_packed_outputs_leave_padding_bits_zero(cout, op):
    rng = np.random.default_rng(cout)
    case = kernel_vectors.shift_case(rng, "packed", op, batch=2, height=4, width=3, cin=9,
                                     cout=cout, kh=2, kw=2, bits=2, output_kind="packed")
    assert_matches_reference(case)
    assert case.output.shape[-1] == -(-cout // 32)
    padding = np.uint32(~packing.last_word_mask(cout) & 0xFFFFFFFF)
    assert not (case.output.view(np.uint32)[..., -1] & padding).any()
    bits = packing.unpack_bits(case.output, cout)
    assert not bits[..., 0].any()  # the never row (threshold -2^31)
    if cout > 2:
        assert bits[..., 1].all()  # the always row (threshold 2^31 - 1)
        assert bits[..., 2:].any() and not bits[..., 2:].all()


def test_dense_input_of_any_rank_is_rows_of_channels_in():
    rng = np.random.default_rng(11)
    case = kernel_vectors.shift_case(rng, "rank", "dense", cin=12, cout=7, bits=5,
                                     input_shape=(2, 3, 4, 12))
    assert case.output.shape == (24, 7)
    assert_matches_reference(case)
    flat = run(case, inputs=[case.input.reshape(24, 12)] + case.inputs[1:])
    np.testing.assert_array_equal(flat, case.output)


def test_zero_words_give_the_same_bytes_as_any_other_zero_code():
    """Words of zero-decoding codes are skipped: the output equals the one computed
    with those words holding another code that decodes to 0 (here code 5, 0 in every
    class), which the kernels must decode and add; and a layer of dead words only
    outputs the transform of B alone."""
    rng = np.random.default_rng(13)
    case = kernel_vectors.shift_case(rng, "dead", "conv", batch=2, height=5, width=5, cin=6,
                                     cout=12, kh=3, kw=3, bits=3, classes=2, dead_words=0.6)
    table = case.inputs[2].copy()
    table[:, 5] = 0
    skipped = run(case, inputs=[case.input, case.inputs[1], table, case.inputs[3]])
    codes = packing.unpack_codes(case.inputs[1], 3, 6 * 9)
    assert (codes == 0).mean() > 0.55
    decoded = np.where(codes == 0, 5, codes).astype(np.uint8)
    computed = run(case, inputs=[case.input, packing.pack_codes(decoded, 3), table,
                                 case.inputs[3]])
    np.testing.assert_array_equal(skipped, computed)
    dead = kernel_vectors.shift_case(rng, "all dead", "dense", cin=40, cout=5, bits=2,
                                     dead_words=1.0)
    assert not dead.inputs[1].any()
    assert_matches_reference(dead)
    np.testing.assert_array_equal(dead.output, np.broadcast_to(dead.output[0], dead.output.shape))


def test_accumulator_bound_edge_is_exact():
    """K * |w| * 255 + |B| = 2^31 - 1 is accepted and computed exactly; one more unit of
    B is rejected naming the channel."""
    k = 8421  # 8421 * 1000 * 255 = 2147355000
    x = np.concatenate([np.full((1, k), 127), np.full((1, k), -128)]).astype(np.int8)
    codes = np.stack([np.zeros(k), np.ones(k)]).astype(np.uint8)  # +1000, -1000
    table = np.array([[1000, -1000]], np.int16)
    slack = 2**31 - 1 - k * 1000 * 255
    transform = np.array([[1, slack, 2**30, 0, 0], [-1, slack, 2**30, 0, -30]], np.int32)
    options = SHIFT_FULLY_CONNECTED.encode(channels_in=k)
    inputs = [x, packing.pack_codes(codes, 1), table, transform]
    got = kernels.run(SHIFT_FULLY_CONNECTED.name, inputs, options, output_type="int8",
                      input_zero_point=-128)
    expected = tfqp_numpy.shift_fully_connected(*inputs, options_of(options),
                                                input_zero_point=-128, output_kind="int8")
    np.testing.assert_array_equal(got, expected)
    # channel 1: d = -1, A_1 = -2147355000: V = 2^31 - 1, (2^31 - 1) / 2 / 2^30 -> 1
    assert got[0, 1] == 1 and got[0, 0] == 127
    transform[1, 1] += 1
    with pytest.raises(ValueError, match=r"sum over the taps of \|w\| \* 255 \+ \|B\| must be "
                                         r"< 2\^31 \(value: the output channel\) \(codes = 1\)"):
        kernels.run(SHIFT_FULLY_CONNECTED.name, inputs, options, output_type="int8",
                    input_zero_point=-128)


def test_two_classes_round_half_away_from_zero():
    """C == 2: round((V*M0 + d*A_1*M1) / 2^s) with halves away from zero, exactly (one
    tap of weight 1 in each class, chosen inputs)."""
    x = np.array([[1], [-1], [3], [-3]], np.int8)  # zp 0: A_0 = A_1 = q
    table = np.array([[0, 1], [0, 1]], np.int16)
    codes = packing.pack_codes(np.ones((1, 1), np.uint8), 1)
    transform = np.array([[1, 0, 1, 0, 1]], np.int32)  # q / 2
    options = SHIFT_FULLY_CONNECTED.encode(channels_in=1)
    got = kernels.run(SHIFT_FULLY_CONNECTED.name, [x, codes, table, transform], options,
                      output_type="int8")
    assert got.ravel().tolist() == [1, -1, 2, -2]  # 0.5 -> 1, -0.5 -> -1, 1.5 -> 2
    transform = np.array([[-1, 0, 0, 2**30, 31]], np.int32)  # d * A_1 * 2^30 / 2^31 = -q / 2
    got = kernels.run(SHIFT_FULLY_CONNECTED.name, [x, codes, table, transform], options,
                      output_type="int8")
    assert got.ravel().tolist() == [-1, 1, -2, 2]  # -0.5, 0.5, -1.5, 1.5
    transform = np.array([[-1, 4, 3, 2**30, 31]], np.int32)  # (3(4 - q) - 2^30 q) / 2^31
    got = kernels.run(SHIFT_FULLY_CONNECTED.name, [x, codes, table, transform], options,
                      output_type="int8")
    assert got.ravel().tolist() == [0, 1, -1, 2]  # -0.49999..., 0.50000..., -1.4999..., 1.5000...


# ----------------------------------------------------------------------------- validation


@pytest.fixture(scope="module")
def base():
    rng = np.random.default_rng(17)
    return {
        "conv": kernel_vectors.shift_case(rng, "conv", "conv", height=5, width=5, cin=3, cout=6,
                                          kh=3, kw=3, bits=3, terms=2),
        "depthwise": kernel_vectors.shift_case(rng, "dw", "depthwise", height=5, width=5, cin=3,
                                               kh=3, kw=3, depth_multiplier=2, bits=2),
        "packed": kernel_vectors.shift_case(rng, "fc", "dense", cin=20, cout=6, bits=4,
                                            output_kind="packed"),
    }


def replaced(case, index, array):
    inputs = list(case.inputs)
    inputs[index] = array
    return inputs


def test_malformed_options_are_rejected(base):
    conv, dw, packed = base["conv"], base["depthwise"], base["packed"]
    cases = [
        (conv, with_options(conv.options, pad_value=0), "unknown option key"),
        (conv, with_options(conv.options, channels_in=4),
         r"int8 input depth must equal channels_in \(when given\) \(input = 3\)"),
        (conv, with_options(conv.options, terms=0), r"must be >= 1 \(terms = 0\)"),
        (conv, with_options(conv.options, activation_min=9, activation_max=8),
         r"must be in \[activation_min, 127\] \(activation_max = 8\)"),
        (conv, with_options(conv.options, activation_min=-129), r"activation_min = -129"),
        (conv, with_options(conv.options, padding=2), r"\(padding = 2\)"),
        (conv, with_options(conv.options, stride_width=0), r"\(stride_width = 0\)"),
        (conv, bytes(flexbuffers.Dumps({"filter_height": 3})), "required option missing"),
        (conv, conv.options[:-4], "malformed options"),
        (dw, with_options(dw.options, depth_multiplier=0), r"\(depth_multiplier = 0\)"),
        (dw, with_options(dw.options, depth_multiplier=3),
         r"codes dim 0 must equal input depth \* depth_multiplier \(codes = 6\)"),
        (packed, with_options(packed.options, activation_max=5),
         r"apply to the int8 output only.*\(activation_min = -128\)"),
        (packed, with_options(packed.options, channels_in=7),
         r"input elements must be a multiple of channels_in"),
    ]
    for case, options, message in cases:
        with pytest.raises(ValueError, match=message):
            run(case, options=options)
    # the registry's encoder checks the same rules before anything is written
    with pytest.raises(ValueError, match="activation_min 9 > activation_max 8"):
        SHIFT_CONV2D.encode(filter_height=1, filter_width=1, activation_min=9, activation_max=8)
    with pytest.raises(ValueError, match="terms \\* taps must be <= 2\\^31 - 1"):
        SHIFT_FULLY_CONNECTED.encode(channels_in=2**20, terms=2**12)


def test_malformed_tensors_are_rejected(base):
    conv, packed = base["conv"], base["packed"]
    words, table, transform = conv.inputs[1:]
    checks = [
        (conv, replaced(conv, 1, words[:, :-1].copy()),
         r"codes dim 1 must equal ceil\(terms \* taps / codes per word\)"),
        (conv, replaced(conv, 2, np.zeros((1, 6), np.int16)), r"2\^b columns.*\(code_table = 6\)"),
        (conv, replaced(conv, 2, np.zeros((3, 8), np.int16)), r"1 or 2 rows.*\(code_table = 3\)"),
        (conv, replaced(conv, 2, table.astype(np.int32)), "tensor must be int16"),
        (conv, replaced(conv, 3, transform[:, :2].copy()), r"transform must be \[Cout, 5\]"),
        (conv, replaced(conv, 3, transform[:-1].copy()), "transform dim 0 must equal codes dim 0"),
        (packed, replaced(packed, 2, np.concatenate([packed.inputs[2]] * 2)),
         "two accumulator classes need the int8 output"),
        (conv, replaced(conv, 0, conv.input[..., :2].copy()), "codes dim 1 must equal"),
    ]
    for case, inputs, message in checks:
        with pytest.raises(ValueError, match=message):
            run(case, inputs=inputs)
    with pytest.raises(ValueError, match="wrong number of inputs"):
        kernels.run(conv.op, conv.inputs[:3], conv.options, output_type="int8")


def test_malformed_constants_are_rejected_naming_the_channel(base):
    conv = base["conv"]
    words, table, transform = conv.inputs[1:]

    def rejects(index, edit, message):
        array = [words, table, transform][index - 1].copy()
        edit(array)
        with pytest.raises(ValueError, match=message):
            run(conv, inputs=replaced(conv, index, array))

    rejects(2, lambda t: t.__setitem__((0, 3), 2**14 + 1),
            r"code table entries must be in \[-16384, 16384\].*\(code_table = 3\)")
    rejects(1, lambda w: w.view(np.uint32).__setitem__((4, 0), 1 << 30),
            r"codes padding bits .* \(codes = 4\)")
    last = (conv.inputs[1].shape[1] - 1, (3 * 3 * 3 * 2) % 10 * 3)  # the first code past R
    rejects(1, lambda w: w.view(np.uint32).__setitem__((5, last[0]), 1 << last[1]),
            r"codes padding bits .* \(codes = 5\)")
    rejects(3, lambda t: t.__setitem__((2, 0), 0), r"transform d must be \+1 or -1.*= 2\)")
    rejects(3, lambda t: t.__setitem__((3, 2), -1), r"transform M0 must be in \[0, 2\^31\).*= 3\)")
    rejects(3, lambda t: t.__setitem__((1, 3), 1), r"M1 must be 0 with one accumulator class")
    rejects(3, lambda t: t.__setitem__((0, 4), 31), r"s must be in \[-31, 30\]")
    rejects(3, lambda t: t.__setitem__((5, 1), 2**31 - 1), r"accumulator could overflow.*= 5\)")


# ----------------------------------------------------------------------------- registry


def test_registry_specs_encode_what_the_c_ops_parse():
    encoded = SHIFT_DEPTHWISE_CONV2D.encode(filter_height=3, filter_width=3, padding="valid")
    assert kernels.parse_options(SHIFT_DEPTHWISE_CONV2D.name, encoded) == {
        "filter_height": 3, "filter_width": 3, "stride_height": 1, "stride_width": 1,
        "dilation_height_factor": 1, "dilation_width_factor": 1, "padding": 1,
        "depth_multiplier": 1}
    encoded = SHIFT_FULLY_CONNECTED.encode(channels_in=9, terms=2, activation_min=-5)
    assert kernels.parse_options(SHIFT_FULLY_CONNECTED.name, encoded) == {
        "channels_in": 9, "terms": 2, "activation_min": -5}
    for spec in (SHIFT_CONV2D, SHIFT_DEPTHWISE_CONV2D):
        assert spec.inputs == ("input", "codes", "code_table", "transform")
        assert spec.constant_inputs == (1, 2, 3) and spec.weights_input == 1
        assert spec.optional_inputs == 0
    assert SHIFT_FULLY_CONNECTED.inputs == ("input", "codes", "code_table", "transform",
                                            "code_lists")
    assert SHIFT_FULLY_CONNECTED.constant_inputs == (1, 2, 3, 4)
    assert SHIFT_FULLY_CONNECTED.optional_inputs == 1


# ----------------------------------------------------------------------------- a deploy model


def test_interpreter_runs_a_model_of_shift_ops():
    from tfq_plus.converters.interpreter import Interpreter
    from tfq_plus.converters.report import _macs
    from tfq_plus.converters import tflite_schema as schema

    from test_adapters import shift_chain_model, shift_layers

    model, steps = shift_chain_model(), shift_layers()
    flatbuffer = model.flatbuffer
    x = np.random.default_rng(1).integers(-128, 128, (2, 6, 6, 4)).astype(np.int8)
    got = Interpreter(flatbuffer).invoke([x])[0]
    assert got.tobytes() == model.expected([x])  # the host kernels op by op
    value, zero_point = x, 3
    for case, output_zero_point, _ in steps:
        value = REFERENCES[case.op](
            value, *case.inputs[1:], options_of(case.options), input_zero_point=zero_point,
            output_zero_point=output_zero_point,
            output_kind="packed" if case.output.dtype == np.int32 else "int8")
        zero_point = output_zero_point
    assert got.shape == (2, 2) and got.dtype == np.int32
    np.testing.assert_array_equal(got, value)
    # the registry reads the model: MACs per tap and the decoded integer weights
    parsed = schema.read(flatbuffer)
    views = [OpView(parsed, i) for i in range(3)]
    def kind(table):  # shift: every nonzero weight a signed power of two, else k-bit
        magnitudes = np.abs(np.asarray(table, np.float64)).ravel()
        magnitudes = magnitudes[magnitudes > 0]
        return "shift" if np.all(np.log2(magnitudes) == np.round(np.log2(magnitudes))) else "k-bit"

    counts = [2 * 6 * 6 * 8 * 3 * 3 * 4, 2 * 3 * 3 * 16 * 3 * 3, 2 * 40 * 144]
    assert [_macs(parsed, i, parsed.subgraphs[0]) for i in range(3)] == [
        {kind(case.inputs[2]): count} for (case, _, _), count in zip(steps, counts)]
    for view, (case, _, _) in zip(views, steps):
        weights = view.spec.unpack_weights(view)
        decoded = kernel_vectors.decoded_weights(
            packing.unpack_codes(case.inputs[1], shift.code_bits(view),
                                 shift.taps(view) * view.options.get("terms", 1)),
            case.inputs[2], view.options.get("terms", 1))
        if view.name == SHIFT_CONV2D.name:  # OHWI
            np.testing.assert_array_equal(weights, decoded[0].reshape(8, 3, 3, 4))
        elif view.name == SHIFT_DEPTHWISE_CONV2D.name:  # classes, then [1, KH, KW, Cout]
            np.testing.assert_array_equal(weights[:, 0], decoded.reshape(2, 16, 3, 3)
                                          .transpose(0, 2, 3, 1))
            assert weights.shape == (2, 1, 3, 3, 16)
        else:
            np.testing.assert_array_equal(weights, decoded[0])
