"""The codes output (option ``output_levels``) of the five int8-activation TFQP ops
(TFQP_SHIFT_CONV2D, TFQP_SHIFT_DEPTHWISE_CONV2D, TFQP_SHIFT_FULLY_CONNECTED,
TFQP_CONV2D_INT8, TFQP_FULLY_CONNECTED_INT8): the host build against
``tfqp_numpy.codes_output`` on ``tfqp_numpy``'s own accumulators (written from the
contracts in ``micro/include/tfqp/shift_layer.h`` and ``conv2d_int8.h``), with
thresholds exactly at accumulator values (ties), equal thresholds and d = -1, and the
validation of options and transforms.

The cases come from ``micro/cortex_m/kernel_vectors.py`` (the same builders make the
Cortex-M vectors); every case is seeded.
"""

import sys
from pathlib import Path

import tfq_plus  # noqa: F401  (selects Keras 2 before TensorFlow)

import numpy as np
import pytest
from flatbuffers import flexbuffers

import tfqp_numpy
from tfq_plus.converters import _tfqp_kernels as kernels
from tfq_plus.converters.ops import (
    CONV2D_INT8, FULLY_CONNECTED_INT8, SHIFT_CONV2D, SHIFT_FULLY_CONNECTED, decode_options,
)

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "micro" / "cortex_m"))
import kernel_vectors  # noqa: E402

LEVELS = (2, 3, 4, 16, 256)
OPS = ("conv", "depthwise", "dense", "conv int8", "dense int8")


def build(op, levels, seed):
    """A codes-output case of ``op`` (batch 2, odd channel counts, zp_in != 0)."""
    rng = np.random.default_rng(seed)
    if op == "conv int8":
        return kernel_vectors.int8_conv_case(
            rng, op, batch=2, height=6, width=5, cin=5, cout=9, kh=3, kw=3, stride=(2, 1),
            padding="same", output_kind="codes", levels=levels, wide=levels == 16)
    if op == "dense int8":
        return kernel_vectors.int8_fc_case(rng, op, batch=2, cin=37, cout=11, output_kind="codes",
                                           levels=levels, wide=levels == 3)
    if op == "dense":
        return kernel_vectors.shift_case(rng, op, "dense", batch=2, cin=45, cout=13, bits=3,
                                         output_kind="codes", levels=levels)
    return kernel_vectors.shift_case(
        rng, op, op, batch=2, height=5, width=6, cin=7 if op == "conv" else 5, cout=11, kh=3,
        kw=3, padding="valid" if levels == 4 else "same", depth_multiplier=3, bits=4,
        output_kind="codes", levels=levels)


def reference(case, output_kind):
    """tfqp_numpy's codes (or accumulators) of a case."""
    options = decode_options(np.frombuffer(case.options, np.uint8))
    if case.op == CONV2D_INT8.name:
        x, weights, transform = case.inputs
        return tfqp_numpy.conv2d_int8(x, weights, transform, options,
                                      input_zero_point=case.input_zero_point,
                                      output_kind=output_kind)
    if case.op == FULLY_CONNECTED_INT8.name:
        x, weights, transform = case.inputs
        return tfqp_numpy.fully_connected_int8(x, weights, transform, options,
                                               input_zero_point=case.input_zero_point,
                                               output_kind=output_kind)
    function = {SHIFT_CONV2D.name: tfqp_numpy.shift_conv2d,
                SHIFT_FULLY_CONNECTED.name: tfqp_numpy.shift_fully_connected}.get(
                    case.op, tfqp_numpy.shift_depthwise_conv2d)
    return function(*case.inputs, options, input_zero_point=case.input_zero_point,
                    output_kind=output_kind)


@pytest.mark.parametrize("levels", LEVELS)
@pytest.mark.parametrize("op", OPS)
def test_codes_equal_numpy_with_ties_equal_thresholds_and_both_directions(op, levels):
    case = build(op, levels, seed=levels * 7 + OPS.index(op))
    expected = reference(case, "codes")
    assert case.output.dtype == np.int8 and case.output.shape == expected.shape
    np.testing.assert_array_equal(case.output, expected, err_msg=case.name)
    transform = case.inputs[-1]
    d, thresholds = transform[:, 0].astype(np.int64), transform[:, 2:].astype(np.int64)
    signed = d * reference(case, "accumulator")
    # what the case exercises: a tie, both directions, the input zero point, two images
    assert (signed[..., None] == thresholds).any(), "no accumulator exactly at a threshold"
    assert set(d.tolist()) == {-1, 1}
    assert case.input_zero_point != 0 and case.output.shape[0] == 2
    if levels > 3:
        assert (np.diff(thresholds, axis=1) == 0).any(), "no equal thresholds"
    # channel 0 steps below every accumulator (top code), channel 1 above (base)
    np.testing.assert_array_equal(case.output[..., 0], transform[0, 1] + levels - 1)
    np.testing.assert_array_equal(case.output[..., 1], transform[1, 1])


def test_a_tie_takes_the_upper_code_and_equal_thresholds_skip_a_code():
    """One dense channel, hand-made: A = 10 against (10, 10, 11) gives base + 2 (both
    10s are <= A); d = -1 flips A to -10: only the thresholds <= -10 count."""
    x = np.array([[3, 4]], np.int8)  # zp 1: q - zp = (2, 3)
    weights = np.array([[2, 2]], np.int8)  # A = 4 + 6 = 10
    options = FULLY_CONNECTED_INT8.encode(channels_in=2, output_levels=4)
    for d, thresholds, code in [(1, (10, 10, 11), 2), (1, (11, 11, 11), 0), (1, (-5, 9, 10), 3),
                                (-1, (-10, -10, -9), 2), (-1, (-11, -10, 0), 2)]:
        transform = np.array([[d, -7, *thresholds]], np.int32)
        got = kernels.run(FULLY_CONNECTED_INT8.name, [x, weights, transform], options,
                          output_type="int8", input_zero_point=1)
        assert got.tolist() == [[-7 + code]], (d, thresholds)


def test_extreme_thresholds_and_bases():
    """Thresholds at the int32 ends and bases at both ends of [-128, 127 - L]."""
    rng = np.random.default_rng(5)
    x = rng.integers(-128, 128, size=(2, 16)).astype(np.int8)
    weights = rng.integers(-127, 128, size=(3, 16)).astype(np.int8)
    options = FULLY_CONNECTED_INT8.encode(channels_in=16, output_levels=256)
    int32_min, int32_max = -(2**31), 2**31 - 1
    transform = np.array([[1, -128] + [int32_min] * 255,
                          [-1, -128] + [int32_max] * 255,
                          [1, -128] + [int32_min] * 100 + [int32_max] * 155], np.int32)
    got = kernels.run(FULLY_CONNECTED_INT8.name, [x, weights, transform], options,
                      output_type="int8", input_zero_point=-3)
    assert got.tolist() == [[127, -128, -28]] * 2


def with_options(encoded: bytes, **extra) -> bytes:
    return bytes(flexbuffers.Dumps({**flexbuffers.Loads(encoded), **extra}))


def test_malformed_options_and_transforms_are_rejected():
    shift_case = build("conv", 4, seed=1)
    int8_case = build("dense int8", 3, seed=2)

    def rejects(case, message, *, options=None, transform=None, output_type="int8", table=None):
        inputs = list(case.inputs)
        if transform is not None:
            inputs[-1] = transform
        if table is not None:
            inputs[2] = table
        with pytest.raises(ValueError, match=message):
            kernels.run(case.op, inputs, options or case.options, output_type=output_type,
                        input_zero_point=case.input_zero_point)

    for levels in (1, 257, -1):
        message = rf"must be 0 \(no codes output\) or in \[2, 256\] \(output_levels = {levels}\)"
        rejects(shift_case, message, options=with_options(shift_case.options, output_levels=levels))
        rejects(int8_case, message, options=with_options(int8_case.options, output_levels=levels))
    rejects(shift_case, "excludes activation_min / activation_max",
            options=with_options(shift_case.options, activation_min=-128))
    rejects(shift_case, "needs an int8 output tensor", output_type="int32")
    rejects(shift_case, "two accumulator classes cannot give the codes output",
            table=np.concatenate([shift_case.inputs[2]] * 2))
    rejects(int8_case, r"excludes int32_output 1",
            options=with_options(int8_case.options, int32_output=1))
    rejects(int8_case, r"output must be int8 \(codes\) with output_levels", output_type="int32")
    for case in (shift_case, int8_case):
        transform = case.inputs[-1]
        rejects(case, r"transform must be \[Cout, 1 \+ output_levels\]",
                transform=np.ascontiguousarray(transform[:, :-1]))
        rejects(case, r"transform must be \[Cout, 1 \+ output_levels\]",
                transform=np.concatenate([transform, transform[:, -1:]], axis=1))
        bad = transform.copy()
        bad[3, 0] = 0
        rejects(case, r"transform d must be \+1 or -1 .*\(transform\[:, 0\] = 3\)", transform=bad)
        levels = transform.shape[1] - 1
        bad = transform.copy()
        bad[4, 1] = 128 - levels + 1  # one above 127 - L
        rejects(case, r"transform base must be in \[-128, 127 - \(output_levels - 1\)\].*= 4\)",
                transform=bad)
        bad[4, 1] = -129
        rejects(case, "transform base must be in", transform=bad)
        bad = transform.copy()
        bad[2, 2:] = np.arange(levels - 1)[::-1] if levels > 2 else bad[2, 2:]
        if levels > 2:
            rejects(case, r"thresholds must be non-decreasing .*\(transform\[:, 2:\] = 2\)",
                    transform=bad)


def test_registry_encoders_check_output_levels():
    with pytest.raises(ValueError, match="output_levels must be 0 .* got 1"):
        SHIFT_FULLY_CONNECTED.encode(channels_in=3, output_levels=1)
    with pytest.raises(ValueError, match="must be an integer from 0 to 256, got 257"):
        SHIFT_CONV2D.encode(filter_height=1, filter_width=1, output_levels=257)
    with pytest.raises(ValueError, match="excludes activation_max"):
        SHIFT_CONV2D.encode(filter_height=1, filter_width=1, output_levels=4, activation_max=9)
    with pytest.raises(ValueError, match="excludes int32_output"):
        CONV2D_INT8.encode(channels_in=1, filter_height=1, filter_width=1, output_levels=4,
                           int32_output=1)
    with pytest.raises(ValueError, match="excludes int32_output"):
        FULLY_CONNECTED_INT8.encode(channels_in=3, output_levels=16, int32_output=1)
    encoded = FULLY_CONNECTED_INT8.encode(channels_in=3, output_levels=16, int32_output=0)
    assert kernels.parse_options(FULLY_CONNECTED_INT8.name, encoded)["output_levels"] == 16


@pytest.mark.parametrize("op", OPS)
def test_thresholds_are_read_from_the_transform_not_copied_into_the_table(op):
    """The codes output keeps no RAM copy of its thresholds (the table is the RAM a
    microcontroller's arena pays; the transform tensor stays in flash): the int8 ops keep
    no table at all, a shift op's table holds no per-channel threshold words."""
    case = build(op, 256, seed=11)
    options = case.options
    prepared = kernels.prepare(case.op, case.inputs, options, output_type="int8",
                               input_zero_point=case.input_zero_point)
    transform = case.inputs[-1]
    cout = transform.shape[0]
    if op.endswith("int8"):
        assert prepared.table_bytes == 0
    else:
        assert prepared.table_bytes < 4 * cout * 255  # 255 thresholds a channel
    non_constant = [case.inputs[0]]
    np.testing.assert_array_equal(prepared(*non_constant), case.output)


def test_a_layer_without_dead_words_keeps_one_live_word_row():
    """The constants' data at prepare shrinks a coded layer's table when no word of its
    codes is dead (every code of it worth 0): one shared live-word row instead of one per
    channel; with a dead word the rows are all kept. The outputs are the same."""
    rng = np.random.default_rng(3)
    cin, cout, bits = 300, 6, 4  # 300 codes: 38 words a row, 2 bitmap words
    per_word, row_words = 8, 38
    x = rng.integers(-128, 128, size=(1, cin)).astype(np.int8)
    code_table = np.array([[0, 1, -1, 2, -2, 3, -3, 4, -4, 5, -5, 6, -6, 7, -7, 8]], np.int16)
    codes = rng.integers(1, 16, size=(cout, cin))  # no zero code: no dead word
    transform = np.array([[1, 0, 1 << 30, 0, -6]] * cout, np.int32)
    options = SHIFT_FULLY_CONNECTED.encode(channels_in=cin)

    def packed(c):
        from tfq_plus.converters.packing import pack_codes
        return pack_codes(c.astype(np.uint8), bits)

    def expected(c):
        return tfqp_numpy.shift_fully_connected(
            x, packed(c), code_table, transform, decode_options(np.frombuffer(options, np.uint8)),
            input_zero_point=2, output_kind="int8")

    dense = kernels.prepare(SHIFT_FULLY_CONNECTED.name, [x, packed(codes), code_table, transform],
                            options, output_type="int8", input_zero_point=2)
    pruned_codes = codes.copy()
    pruned_codes[3, 2 * per_word:3 * per_word] = 0  # word 2 of channel 3 dead
    pruned = kernels.prepare(SHIFT_FULLY_CONNECTED.name,
                             [x, packed(pruned_codes), code_table, transform], options,
                             output_type="int8", input_zero_point=2)
    assert pruned.table_bytes - dense.table_bytes == (cout - 1) * 2 * 4
    assert row_words == -(-cin // per_word)
    for prepared, c in ((dense, codes), (pruned, pruned_codes)):
        np.testing.assert_array_equal(prepared(x), expected(c))
