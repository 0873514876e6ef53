"""Bit-packing of binary tensors and the custom options of the binary TFQP ops.

Mirrors ``micro/include/tfqp/formats.h`` (the one definition of the format; the
C and Python sides are cross-tested in ``tests/test_packing.py``):

- Packed data is stored in 32-bit words (TFLite ``INT32`` tensors). Channel ``c``
  of a pixel lives in word ``c // 32``, bit ``c % 32`` (bit 0 = least significant).
- Bit 1 means -1, bit 0 means +1; ``sign(0) = +1`` (larq: ``x >= 0 -> +1``). An
  int8 tensor with zero point ``zp`` is binarized as ``bit = q < zp``.
- A pixel of ``C`` channels takes ``ceil(C / 32)`` words; the bits of channels
  ``>= C`` in the last word are 0.
- Activations ``[N, H, W, ceil(C/32)]`` (``[N, ceil(C/32)]`` for fully-connected
  inputs); conv filters OHWI ``[Cout, KH, KW, ceil(Cin/32)]``; fully-connected
  weights ``[Cout, ceil(Cin/32)]``. Packing always runs along the last axis.

The ops' custom options are encoded by their registry entries (``ops``), not here:
this module is the packed format only.
"""

import numbers

import numpy as np

from tfq_plus.quantizers.arguments import check_int_range

WORD_BITS = 32
PADDING_SAME = 0
PADDING_VALID = 1
_INT32_MAX = 2**31 - 1


def packed_words(channels: int) -> int:
    """Words per pixel: ``ceil(channels / 32)``."""
    channels = check_int_range("packed_words", "channels", channels, 1, _INT32_MAX)
    return -(-channels // WORD_BITS)


def last_word_mask(channels: int) -> int:
    """Data bits of a pixel's last word (as an unsigned 32-bit integer)."""
    channels = check_int_range("last_word_mask", "channels", channels, 1, _INT32_MAX)
    tail = channels % WORD_BITS
    return 0xFFFFFFFF if tail == 0 else (1 << tail) - 1


def pack_bits(negative) -> np.ndarray:
    """Packs a boolean array ``[..., C]`` (True = -1) into int32 ``[..., ceil(C/32)]``."""
    negative = np.asarray(negative, dtype=bool)
    if negative.ndim < 1 or negative.shape[-1] < 1:
        raise ValueError(
            f"pack_bits: needs an array of rank >= 1 with >= 1 channel on the last axis, "
            f"got shape {negative.shape}"
        )
    channels = negative.shape[-1]
    words = packed_words(channels)
    padded = np.zeros(negative.shape[:-1] + (words * WORD_BITS,), dtype=np.uint32)
    padded[..., :channels] = negative
    bits = padded.reshape(negative.shape[:-1] + (words, WORD_BITS))
    weights = np.left_shift(np.uint32(1), np.arange(WORD_BITS, dtype=np.uint32))
    packed = np.bitwise_or.reduce(bits * weights, axis=-1).astype(np.uint32)
    return packed.view(np.int32)


def unpack_bits(packed, channels: int) -> np.ndarray:
    """Inverse of :func:`pack_bits`: boolean ``[..., channels]`` (True = -1).

    Padding bits of the last word are ignored."""
    channels = check_int_range("unpack_bits", "channels", channels, 1, _INT32_MAX)
    packed = np.asarray(packed)
    if packed.dtype not in (np.int32, np.uint32):
        raise ValueError(f"unpack_bits: packed must be int32 or uint32, got {packed.dtype}")
    words = packed_words(channels)
    if packed.ndim < 1 or packed.shape[-1] != words:
        raise ValueError(
            f"unpack_bits: last axis must hold ceil({channels}/32) = {words} words, "
            f"got shape {packed.shape}"
        )
    unsigned = packed.view(np.uint32)[..., :, None]
    bits = (unsigned >> np.arange(WORD_BITS, dtype=np.uint32)) & np.uint32(1)
    bits = bits.reshape(packed.shape[:-1] + (words * WORD_BITS,))
    return bits[..., :channels].astype(bool)


def pack_activations(values, zero_point: int = 0) -> np.ndarray:
    """Binarizes and packs activations along the last axis: ``bit = values < zero_point``.

    ``values`` are int8 codes with their tensor's zero point, or real values with
    ``zero_point=0`` (``sign(0) = +1``)."""
    values = np.asarray(values)
    if not (np.issubdtype(values.dtype, np.integer) or np.issubdtype(values.dtype, np.floating)):
        raise ValueError(f"pack_activations: values must be numeric, got {values.dtype}")
    if not isinstance(zero_point, numbers.Integral) or isinstance(zero_point, bool):
        raise ValueError(f"pack_activations: zero_point must be an integer, got {zero_point!r}")
    return pack_bits(values < zero_point)


def unpack_activations(packed, channels: int, positive: int = 1, negative: int = -1):
    """Packed activations -> int8 ``[..., channels]``: bit 0 -> ``positive``, 1 -> ``negative``."""
    positive = check_int_range("unpack_activations", "positive", positive, -128, 127)
    negative = check_int_range("unpack_activations", "negative", negative, -128, 127)
    bits = unpack_bits(packed, channels)
    return np.where(bits, np.int8(negative), np.int8(positive)).astype(np.int8)


def pack_filter(weights) -> np.ndarray:
    """Packs binary weights by sign (``w < 0`` -> bit 1) along the input-channel axis.

    ``weights``: conv filter OHWI ``[Cout, KH, KW, Cin]`` (TFLite's layout; a Keras
    kernel HWIO must be transposed first) or fully-connected ``[Cout, Cin]``."""
    weights = np.asarray(weights)
    if weights.ndim not in (2, 4):
        raise ValueError(
            f"pack_filter: weights must be [Cout, KH, KW, Cin] or [Cout, Cin], "
            f"got shape {weights.shape}"
        )
    return pack_bits(weights < 0)


def unpack_filter(packed, channels_in: int) -> np.ndarray:
    """Packed filter -> int8 signs (+1 / -1) with ``channels_in`` on the last axis."""
    return unpack_activations(packed, channels_in)
