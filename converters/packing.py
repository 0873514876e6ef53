"""Bit-packing of binary tensors, and the coded weights of the shift ops.

Mirrors ``micro/include/tfqp/formats.h`` (the one definition of the formats; the
C and Python sides are cross-tested in ``tests/test_packing.py`` and, for coded
weights, ``tests/test_kernels_shift.py``):

- Packed data is stored in 32-bit words (TFLite ``INT32`` tensors). Channel ``c``
  of a pixel lives in word ``c // 32``, bit ``c % 32`` (bit 0 = least significant).
- Bit 1 means -1, bit 0 means +1; ``sign(0) = +1`` (larq: ``x >= 0 -> +1``). An
  int8 tensor with zero point ``zp`` is binarized as ``bit = q < zp``.
- A pixel of ``C`` channels takes ``ceil(C / 32)`` words; the bits of channels
  ``>= C`` in the last word are 0.
- Activations ``[N, H, W, ceil(C/32)]`` (``[N, ceil(C/32)]`` for fully-connected
  inputs); conv filters OHWI ``[Cout, KH, KW, ceil(Cin/32)]``; fully-connected
  weights ``[Cout, ceil(Cin/32)]``. Packing always runs along the last axis.

Coded weights (:func:`pack_codes`): unsigned ``bits``-bit codes, ``bits`` in 1..5,
``floor(32 / bits)`` per 32-bit word, code ``j`` of a word in bits ``[j*bits, j*bits
+ bits)``; every row (output channel) starts on a word and takes ``ceil(count /
floor(32 / bits))`` words; unused bits are 0.

The ops' custom options are encoded by their registry entries (``ops``), not here:
this module is the packed formats only.
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


CODE_BITS = (1, 2, 3, 4, 5)


def _check_code_bits(function: str, bits) -> int:
    bits = check_int_range(function, "bits", bits, 1, 5)
    return bits


def codes_per_word(bits: int) -> int:
    """``floor(32 / bits)``: 32, 16, 10, 8, 6 codes for 1..5 bits."""
    return WORD_BITS // _check_code_bits("codes_per_word", bits)


def code_words(count: int, bits: int) -> int:
    """Words of a row of ``count`` codes: ``ceil(count / floor(32 / bits))``."""
    count = check_int_range("code_words", "count", count, 1, _INT32_MAX)
    return -(-count // codes_per_word(bits))


def pack_codes(codes, bits: int) -> np.ndarray:
    """Packs codes ``uint8 [Cout, R]`` (each ``< 2^bits``) into int32 ``[Cout, W_row]``."""
    bits = _check_code_bits("pack_codes", bits)
    codes = np.asarray(codes)
    if codes.ndim != 2 or codes.shape[0] < 1 or codes.shape[1] < 1:
        raise ValueError(f"pack_codes: codes must be a 2-D array [Cout, R] with Cout, R >= 1, "
                         f"got shape {codes.shape}")
    if not np.issubdtype(codes.dtype, np.integer):
        raise ValueError(f"pack_codes: codes must be integers, got {codes.dtype}")
    outside = (codes < 0) | (codes >= 1 << bits)
    if outside.any():
        row, position = (int(i) for i in np.argwhere(outside)[0])
        raise ValueError(f"pack_codes: codes must be in [0, {(1 << bits) - 1}] for {bits}-bit "
                         f"codes, got {int(codes[row, position])} in row {row} at code "
                         f"{position}")
    per_word = codes_per_word(bits)
    rows, count = codes.shape
    words = code_words(count, bits)
    padded = np.zeros((rows, words * per_word), dtype=np.uint32)
    padded[:, :count] = codes
    shifts = np.arange(per_word, dtype=np.uint32) * np.uint32(bits)
    fields = padded.reshape(rows, words, per_word) << shifts
    return np.bitwise_or.reduce(fields, axis=-1).astype(np.uint32).view(np.int32)


def unpack_codes(words, bits: int, count: int) -> np.ndarray:
    """Inverse of :func:`pack_codes`: ``uint8 [Cout, count]``. The padding bits of
    every word must be 0 (the format's rule; the C ops reject them too)."""
    bits = _check_code_bits("unpack_codes", bits)
    row_words = code_words(count, bits)
    words = np.asarray(words)
    if words.dtype not in (np.int32, np.uint32):
        raise ValueError(f"unpack_codes: words must be int32 or uint32, got {words.dtype}")
    if words.ndim != 2 or words.shape[1] != row_words:
        raise ValueError(f"unpack_codes: words must be [Cout, ceil({count} / {codes_per_word(bits)})]"
                         f" = [Cout, {row_words}], got shape {words.shape}")
    per_word = codes_per_word(bits)
    unsigned = words.view(np.uint32)
    shifts = np.arange(per_word, dtype=np.uint32) * np.uint32(bits)
    fields = (unsigned[..., None] >> shifts) & np.uint32((1 << bits) - 1)
    codes = fields.reshape(len(words), row_words * per_word)
    used = np.zeros(row_words * per_word, dtype=bool)
    used[:count] = True
    repacked = np.bitwise_or.reduce(
        (codes * used).reshape(len(words), row_words, per_word) << shifts, axis=-1)
    stray = repacked.astype(np.uint32) != unsigned
    if stray.any():
        row, word = (int(i) for i in np.argwhere(stray)[0])
        raise ValueError(f"unpack_codes: padding bits must be 0 (bits above the word's last code, "
                         f"or codes past {count} in a row's last word): row {row}, word {word} is "
                         f"{int(unsigned[row, word]):#010x}")
    return codes[:, :count].astype(np.uint8)


# ----------------------------------------------------------------------------- k-bit activations
# formats.h, "Packed k-bit activations": codes u in [0, 2^k), k in {2, 4}, P = 32 / k per
# word, channel c of a pixel in bits [(c % P) * k, +k) of word c / P, each pixel on its
# own words, padding codes 0 (the coded weights' row layout with a pixel as the row).

KBIT_BITS = (2, 4)


def _check_kbit_bits(function: str, bits) -> int:
    if isinstance(bits, bool) or bits not in KBIT_BITS:
        raise ValueError(f"{function}: `bits` must be 2 or 4, got {bits!r}")
    return int(bits)


def kbit_words(channels: int, bits: int) -> int:
    """Words of one pixel of ``channels`` k-bit codes: ceil(C / (32 / k))."""
    return code_words(channels, _check_kbit_bits("kbit_words", bits))


def pack_kbit_activations(codes, bits: int) -> np.ndarray:
    """Packs codes ``[..., C]`` (each in [0, 2^bits)) into int32 ``[..., ceil(C / P)]``."""
    bits = _check_kbit_bits("pack_kbit_activations", bits)
    codes = np.asarray(codes)
    if codes.ndim < 1 or codes.shape[-1] < 1:
        raise ValueError(f"pack_kbit_activations: codes must be [..., C] with C >= 1, got "
                         f"shape {codes.shape}")
    rows = codes.reshape(-1, codes.shape[-1])
    if rows.shape[0] == 0:
        return np.zeros(codes.shape[:-1] + (kbit_words(codes.shape[-1], bits),), np.int32)
    words = pack_codes(rows, bits)
    return words.reshape(codes.shape[:-1] + (words.shape[-1],))


def unpack_kbit_activations(words, bits: int, channels: int) -> np.ndarray:
    """The codes ``uint8 [..., C]`` of packed k-bit activations ``[..., ceil(C / P)]``
    (ValueError if a padding code is not 0)."""
    bits = _check_kbit_bits("unpack_kbit_activations", bits)
    words = np.asarray(words)
    if words.ndim < 1:
        raise ValueError("unpack_kbit_activations: words must be [..., ceil(C / P)]")
    codes = unpack_codes(words.reshape(-1, words.shape[-1]), bits, channels)
    return codes.reshape(words.shape[:-1] + (channels,))


# ----------------------------------------------------------------------------- live-code lists
# formats.h, "Live-code lists": optional input 4 of TFQP_SHIFT_FULLY_CONNECTED (one
# accumulator class), INT32 [Cout + 1 + E]: the starts s[0 .. Cout] (s[0] = 0,
# nondecreasing, s[Cout] = E), then E entries; channel co's entries [s[co], s[co + 1])
# are its row's codes of nonzero value in row order, each (tap << 16) | (value & 0xFFFF).

CODE_LIST_MAX_TAPS = 2**16


def pack_code_lists(codes, values, terms: int = 1) -> np.ndarray:
    """The live-code lists of codes ``[Cout, R]`` (R = terms * taps, row order) whose
    values are ``values[code]`` (the code table's one row): int32 ``[Cout + 1 + E]``."""
    codes = np.asarray(codes)
    values = np.asarray(values)
    terms = check_int_range("pack_code_lists", "terms", terms, 1, _INT32_MAX)
    if codes.ndim != 2 or codes.shape[0] < 1 or codes.shape[1] < 1 or codes.shape[1] % terms:
        raise ValueError(f"pack_code_lists: codes must be [Cout, terms * taps] with Cout, taps "
                         f">= 1, got shape {codes.shape} for terms {terms}")
    if values.ndim != 1 or not np.issubdtype(values.dtype, np.integer) or \
            np.any(np.abs(values.astype(np.int64)) > 2**14):
        raise ValueError(f"pack_code_lists: values must be the code table's one row of integers "
                         f"within +-2^14, got shape {values.shape} ({values.dtype})")
    if not np.issubdtype(codes.dtype, np.integer) or codes.min() < 0 or codes.max() >= len(values):
        raise ValueError(f"pack_code_lists: codes must be integers in [0, {len(values) - 1}]")
    taps = codes.shape[1] // terms
    if taps > CODE_LIST_MAX_TAPS:
        raise ValueError(f"pack_code_lists: at most {CODE_LIST_MAX_TAPS} taps (a tap fits 16 "
                         f"bits), got {taps}")
    decoded = values.astype(np.int64)[codes]  # [Cout, R]
    live = decoded != 0
    rows, positions = np.nonzero(live)  # row-major: per channel, in row order
    entries = ((positions // terms).astype(np.uint32) << np.uint32(16)) | \
        (decoded[rows, positions].astype(np.int64) & 0xFFFF).astype(np.uint32)
    starts = np.concatenate([[0], np.cumsum(live.sum(axis=1))]).astype(np.uint32)
    return np.concatenate([starts, entries.astype(np.uint32)]).view(np.int32)


def unpack_code_lists(lists, channels_out: int):
    """Inverse of :func:`pack_code_lists`: per output channel ``(taps, values)`` of its
    entries (int64 arrays), after checking the starts."""
    lists = np.asarray(lists)
    channels_out = check_int_range("unpack_code_lists", "channels_out", channels_out, 1,
                                   _INT32_MAX)
    if lists.dtype not in (np.int32, np.uint32) or lists.ndim != 1 or len(lists) < channels_out + 1:
        raise ValueError(f"unpack_code_lists: lists must be int32 [Cout + 1 + E] with Cout = "
                         f"{channels_out}, got {lists.dtype} shape {lists.shape}")
    signed = lists.view(np.int32).astype(np.int64)
    starts, entries = signed[:channels_out + 1], lists.view(np.uint32)[channels_out + 1:]
    if starts[0] != 0 or np.any(np.diff(starts) < 0) or starts[-1] != len(entries):
        raise ValueError(f"unpack_code_lists: starts must run from 0, nondecreasing, to the "
                         f"{len(entries)} entries, got {starts[:4].tolist()} ... "
                         f"{int(starts[-1])}")
    taps = (entries >> np.uint32(16)).astype(np.int64)
    low = (entries & np.uint32(0xFFFF)).astype(np.int64)
    values = np.where(low >= 2**15, low - 2**16, low)
    return [(taps[a:b], values[a:b]) for a, b in zip(starts[:-1], starts[1:])]
