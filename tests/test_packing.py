"""The packed bit format and the custom options, Python (converters/packing.py) against C.

micro/include/tfqp/formats.h defines the format once; packing.py mirrors it. Here one
side packs and the other unpacks, on random tensors with the channel counts where
word boundaries matter, and the options the converter encodes with Python's
FlexBuffers encoder are parsed by the C reader the kernels use.
"""

import tfq_plus  # noqa: F401  (selects Keras 2 before TensorFlow)

import numpy as np
import pytest
from flatbuffers import flexbuffers

from tfq_plus.converters import _tfqp_kernels as kernels
from tfq_plus.converters.ops import BCONV2D, BFULLY_CONNECTED, BMAXPOOL2D  # noqa: F401
from tfq_plus.converters import packing

CHANNELS = [1, 31, 32, 33, 64, 65, 300]


def _int8_codes(rng, shape, zero_point):
    q = rng.integers(-128, 128, size=shape).astype(np.int8)
    q.flat[:: 7] = zero_point  # exact zeros: sign(0) = +1
    return q


@pytest.mark.parametrize("channels", CHANNELS)
def test_python_pack_equals_c_pack(channels):
    rng = np.random.default_rng(channels)
    for shape, zero_point in [((2, 3, 4, channels), 0), ((5, channels), -7), ((channels,), 100)]:
        q = _int8_codes(rng, shape, zero_point)
        python = packing.pack_activations(q, zero_point)
        c = kernels.pack(q, zero_point=zero_point)
        assert python.dtype == c.dtype == np.int32
        assert python.shape == c.shape == shape[:-1] + (packing.packed_words(channels),)
        np.testing.assert_array_equal(python, c)


@pytest.mark.parametrize("channels", CHANNELS)
def test_pack_on_one_side_unpack_on_the_other(channels):
    rng = np.random.default_rng(100 + channels)
    q = _int8_codes(rng, (3, 5, 2, channels), 3)
    negative = q < 3
    signs = np.where(negative, -1, 1).astype(np.int8)
    # Python packs, C unpacks
    np.testing.assert_array_equal(kernels.unpack(packing.pack_activations(q, 3), channels), signs)
    # C packs, Python unpacks
    np.testing.assert_array_equal(packing.unpack_activations(kernels.pack(q, zero_point=3), channels),
                                  signs)
    np.testing.assert_array_equal(packing.unpack_bits(kernels.pack(q, zero_point=3), channels), negative)
    # custom int8 codes for +1 / -1
    np.testing.assert_array_equal(
        kernels.unpack(packing.pack_bits(negative), channels, positive=17, negative=-90),
        packing.unpack_activations(packing.pack_bits(negative), channels, positive=17, negative=-90),
    )


@pytest.mark.parametrize("channels", CHANNELS)
def test_filters_pack_like_activations_along_input_channels(channels):
    rng = np.random.default_rng(200 + channels)
    weights = rng.normal(size=(4, 3, 2, channels)).astype(np.float32)
    weights[0, 0, 0, 0] = 0.0  # sign(0) = +1
    packed = packing.pack_filter(weights)
    assert packed.shape == (4, 3, 2, packing.packed_words(channels))
    signs = np.where(weights < 0, -1, 1).astype(np.int8)
    np.testing.assert_array_equal(kernels.unpack(packed, channels), signs)
    np.testing.assert_array_equal(packing.unpack_filter(packed, channels), signs)
    np.testing.assert_array_equal(kernels.pack(signs), packed)
    dense = rng.normal(size=(7, channels))
    np.testing.assert_array_equal(kernels.pack(np.where(dense < 0, -1, 1).astype(np.int8)),
                                  packing.pack_filter(dense))


@pytest.mark.parametrize("channels", CHANNELS)
def test_padding_bits_are_zero_and_ignored(channels):
    rng = np.random.default_rng(300 + channels)
    q = -np.ones((6, channels), np.int8)  # every data bit 1
    words = packing.packed_words(channels)
    mask = packing.last_word_mask(channels)
    for packed in (packing.pack_activations(q), kernels.pack(q)):
        unsigned = packed.view(np.uint32)
        assert np.all(unsigned[:, :-1] == 0xFFFFFFFF)
        assert np.all(unsigned[:, -1] == mask)
    garbage = packing.pack_activations(q).view(np.uint32).copy()
    garbage[:, -1] |= rng.integers(0, 2**32, size=6, dtype=np.uint64).astype(np.uint32)
    garbage = garbage.view(np.int32)
    assert garbage.shape[-1] == words
    np.testing.assert_array_equal(kernels.unpack(garbage, channels), q)
    np.testing.assert_array_equal(packing.unpack_activations(garbage, channels), q)


def test_bit_layout_matches_formats_h():
    """Channel c lives in word c // 32, bit c % 32; bit 1 means -1 (value < zero point)."""
    channels = 70
    for c in [0, 1, 31, 32, 33, 63, 64, 69]:
        q = np.zeros((1, channels), np.int8)
        q[0, c] = -1
        expected = np.zeros((1, 3), np.uint32)
        expected[0, c // 32] = np.uint32(1) << np.uint32(c % 32)
        for packed in (packing.pack_activations(q), kernels.pack(q)):
            np.testing.assert_array_equal(packed.view(np.uint32), expected)
    # the int8 rule: bit = q < zero point
    q = np.array([[-128, -1, 0, 1, 4, 5, 6, 127]], np.int8)
    for packed in (packing.pack_activations(q, 5), kernels.pack(q, zero_point=5)):
        assert packed.view(np.uint32)[0, 0] == 0b00011111
    assert packing.packed_words(1) == 1 and packing.packed_words(32) == 1
    assert packing.packed_words(33) == 2 and packing.packed_words(300) == 10
    assert packing.last_word_mask(32) == 0xFFFFFFFF and packing.last_word_mask(33) == 1
    assert packing.last_word_mask(300) == (1 << 12) - 1


def test_packing_rejects_bad_arguments():
    with pytest.raises(ValueError, match="rank >= 1"):
        packing.pack_bits(np.zeros((3, 0), bool))
    with pytest.raises(ValueError, match="ceil"):
        packing.unpack_bits(np.zeros((2, 3), np.int32), 33)
    with pytest.raises(ValueError, match="int32"):
        packing.unpack_bits(np.zeros((2, 2), np.float32), 33)
    with pytest.raises(ValueError, match="channels"):
        packing.packed_words(0)
    with pytest.raises(ValueError, match="pack_filter"):
        packing.pack_filter(np.zeros((3, 3, 3)))
    with pytest.raises(ValueError, match="zero_point"):
        kernels.pack(np.zeros((2, 3), np.int8), zero_point=200)
    with pytest.raises(ValueError, match="int8"):
        kernels.pack(np.zeros((2, 3), np.float32))
    with pytest.raises(ValueError, match="words"):
        kernels.unpack(np.zeros((2, 3), np.int32), 33)


# ----------------------------------------------------------------------------- options


def _random_options(rng):
    """Random valid option values of each op, with widths from 1 to 4 bytes."""
    def value(low, high):
        return int(rng.integers(low, high + 1))

    big = 1 << int(rng.integers(0, 24))
    conv = dict(
        channels_in=value(1, 2**20), filter_height=value(1, 7), filter_width=value(1, 7),
        stride_height=value(1, 300), stride_width=value(1, 70000), dilation_height_factor=big,
        dilation_width_factor=value(1, 3), padding=value(0, 1), pad_value=value(0, 1),
    )
    conv["channels_in"] = min(conv["channels_in"], (2**30 - 1) // (conv["filter_height"] * conv["filter_width"]))
    int8 = dict(input_pos=value(-255, 255), input_neg=value(-255, 255), act_min=value(-128, 0),
                act_max=value(0, 127))
    pool = dict(channels=value(1, 5000), filter_height=value(1, 5), filter_width=value(1, 5),
                stride_height=value(1, 5), stride_width=value(1, 5), padding=value(0, 1))
    return conv, int8, pool


def test_c_parser_reads_python_encoded_options():
    rng = np.random.default_rng(9)
    for _ in range(200):
        conv, int8, pool = _random_options(rng)
        for options, expected in [
            (BCONV2D.encode(**conv), conv),
            (BCONV2D.encode(**conv, **int8), {**conv, **int8}),
        ]:
            assert kernels.parse_options("TFQP_BCONV2D", options) == expected
            assert flexbuffers.Loads(options) == expected  # the encoder's own reading
        fc = dict(channels_in=conv["channels_in"])
        assert kernels.parse_options("TFQP_BFULLY_CONNECTED", BFULLY_CONNECTED.encode(**fc)) == fc
        assert kernels.parse_options(
            "TFQP_BFULLY_CONNECTED", BFULLY_CONNECTED.encode(**fc, **int8)
        ) == {**fc, **int8}
        assert kernels.parse_options("TFQP_BMAXPOOL2D", BMAXPOOL2D.encode(**pool)) == pool


def test_option_encoding_is_deterministic_and_names_padding():
    a = BCONV2D.encode(channels_in=64, filter_height=3, filter_width=3, padding="valid")
    b = BCONV2D.encode(channels_in=64, filter_height=3, filter_width=3, padding=1)
    assert a == b and isinstance(a, bytes)
    assert kernels.parse_options("TFQP_BCONV2D", a)["padding"] == packing.PADDING_VALID
    assert kernels.parse_options(
        "TFQP_BMAXPOOL2D",
        BMAXPOOL2D.encode(channels=3, filter_height=2, filter_width=2, padding="SAME"),
    )["padding"] == packing.PADDING_SAME


def test_c_parser_rejects_malformed_and_foreign_options():
    good = BFULLY_CONNECTED.encode(channels_in=300)
    for bad in [b"", good[:-1], good[:5], bytes(len(good)), good[:-2] + b"\x05\x01"]:
        with pytest.raises(ValueError, match="TFQP_BFULLY_CONNECTED"):
            kernels.parse_options("TFQP_BFULLY_CONNECTED", bad)
    with pytest.raises(ValueError, match="unknown option key"):
        kernels.parse_options("TFQP_BFULLY_CONNECTED", bytes(flexbuffers.Dumps({"channels_in": 3, "bias": 1})))
    with pytest.raises(ValueError, match="must be an integer"):
        kernels.parse_options("TFQP_BFULLY_CONNECTED", bytes(flexbuffers.Dumps({"channels_in": 3.0})))
    with pytest.raises(ValueError, match="does not fit in int32"):
        kernels.parse_options("TFQP_BFULLY_CONNECTED", bytes(flexbuffers.Dumps({"channels_in": 2**31})))
    with pytest.raises(ValueError, match="required option missing"):
        kernels.parse_options("TFQP_BMAXPOOL2D", bytes(flexbuffers.Dumps({"channels": 3})))
    with pytest.raises(ValueError, match="op must be"):
        kernels.parse_options("CONV_2D", good)
