"""Shift-family kernels as codes: what a TFQP_SHIFT_* op stores (``plans.ShiftCodes``).

A kernel on a trained shift-family grid (power of two and INQ, log base 2 or
sqrt(2), ShiftCNN sums, ternary, binary) is written, per output channel co and tap
k, as integer weights of one or two accumulator classes times a per-(class,
channel) scale, exactly as Keras computes the kernel:

    Keras value[co, k] = float32( sum_c w_c[co, k] * scales[c, co] ),
    w_c[co, k] = sum_t table[c, codes[co, k * T + t]].

Each family decomposes the Keras layer's quantized kernel (never the stock model's
int8 weights, which cannot hold these grids) into signed integer levels, one class
per level (``Levels``); ``encode`` then gives every distinct (class, level) a code,
the table, and the code width b (the fewest bits that hold the layer's codes; an
error above 5). Levels are taken relative to each channel's smallest magnitude of
their class, which goes into the scale (and so into the op's output multiplier).

Classes: one, except where a single scale cannot express the grid exactly:
log base sqrt(2) (class 0 the even exponents 2^j, class 1 the odd ones
sqrt(2) * 2^j, the float32 sqrt(2) Keras multiplies by in the class-1 scale) and
ternary grids with two different magnitudes (TTQ's trained W_p != W_n: class 0
the positive level, class 1 the negative one).
"""

from typing import NamedTuple

import numpy as np
import tensorflow as tf

from tfq_plus.converters import plans as P

MAX_BITS = 5
MAX_ENTRY = 2**14  # |table entry| (formats.h)
ACCUMULATOR_LIMIT = 2**31  # sum_k |w_c[k]| * 255 + |B| < 2^31 per channel and class
SQRT2 = float(np.float32(np.sqrt(2.0)))  # the multiplier Keras's sqrt(2) grid uses
STOCK_LEVEL = 127  # a one-class sign kernel's level: the stock int8 filters' +-127


class Levels(NamedTuple):
    """A kernel as signed integer levels [Cout, K, T] with the class of each
    (0 for zero levels) and the scale of each class per channel [C, Cout]."""

    levels: np.ndarray
    classes: np.ndarray
    scales: np.ndarray


def rows(kernel: np.ndarray, op: str) -> np.ndarray:
    """A Keras kernel (HWIO conv, [Cin, Cout] dense, (kh, kw, cin, multiplier)
    depthwise; extra trailing axes kept) as rows [Cout, K, ...] in TFLite's tap
    order (conv (ky, kx, ci), depthwise (ky, kx), dense ci)."""
    kernel = np.asarray(kernel)
    extra = kernel.shape[{P.DENSE: 2}.get(op, 4):]
    if op == P.DENSE:
        moved = np.moveaxis(kernel, 1, 0)
    elif op == P.DEPTHWISE:
        kh, kw, cin, multiplier = kernel.shape[:4]
        # output channel co = ci * multiplier + m (TFLite's convention)
        moved = np.moveaxis(kernel.reshape((kh, kw, cin * multiplier) + extra), 2, 0)
    else:
        moved = np.moveaxis(kernel, 3, 0)
    return moved.reshape((moved.shape[0], -1) + extra)


def _class_minimum(exponents: np.ndarray, classes: np.ndarray, nonzero: np.ndarray,
                   count: int) -> np.ndarray:
    """Per class and channel, the least exponent among the channel's nonzero levels
    of that class (0 where there are none) [C, Cout]."""
    channels = exponents.shape[0]
    flat = exponents.reshape(channels, -1)
    minimum = np.zeros((count, channels), np.int64)
    for c in range(count):
        mask = (nonzero & (classes == c)).reshape(channels, -1)
        masked = np.where(mask, flat, np.iinfo(np.int64).max)
        found = mask.any(axis=1)
        minimum[c] = np.where(found, masked.min(axis=1, initial=np.iinfo(np.int64).max), 0)
    return minimum


def power_of_two_levels(layer: str, values: np.ndarray) -> Levels:
    """{0, +-2^e} (PowerOfTwo, INQ, LogQuantizer base 2) and {0, +-2^e, +-sqrt(2) 2^e}
    (LogQuantizer base sqrt(2)): rows [Cout, K] of float32 values."""
    values = np.asarray(values, np.float32)
    magnitude = np.abs(values).astype(np.float64)
    nonzero = magnitude > 0
    mantissa, exponent = np.frexp(np.where(nonzero, magnitude, 1.0))
    odd = mantissa == SQRT2 / 2
    if not np.all(~nonzero | (mantissa == 0.5) | odd):
        bad = np.argwhere(nonzero & (mantissa != 0.5) & ~odd)[0]
        raise ValueError(
            f"layer {layer!r}: kernel value {values[tuple(bad)]!r} (output channel {bad[0]}) is "
            "not on the power-of-two grid (+-2^e, or +-sqrt(2) 2^e for base sqrt(2))"
        )
    classes = np.where(nonzero & odd, 1, 0)
    exponent = exponent.astype(np.int64) - 1
    return _relative_levels(layer, values, classes, exponent, nonzero, base_scales=(1.0, SQRT2))


def _relative_levels(layer, values, classes, exponent, nonzero, base_scales) -> Levels:
    """Levels sign * 2^(e - e_min[class, channel]) with scales base * 2^e_min;
    classes renumbered to the ones present (class 0 always)."""
    present = [c for c in range(len(base_scales)) if np.any(nonzero & (classes == c))] or [0]
    renumber = np.zeros(len(base_scales), np.int64)
    renumber[present] = np.arange(len(present))
    classes = renumber[classes]
    minimum = _class_minimum(exponent, classes, nonzero, len(present))
    channel_minimum = np.take_along_axis(
        minimum.T, classes.reshape(len(values), -1), axis=1).reshape(classes.shape)
    shift = np.where(nonzero, exponent - channel_minimum, 0)
    if shift.max(initial=0) > 14:
        raise ValueError(
            f"layer {layer!r}: its levels span 2^{int(shift.max())} within a channel; shift kernels hold "
            f"integer levels up to 2^14 (at most 15 exponents per class)"
        )
    levels = np.where(nonzero, np.sign(values).astype(np.int64) << shift, 0)
    base = np.asarray([base_scales[c] for c in present], np.float64)[:, None]
    scales = base * np.ldexp(1.0, minimum)
    return Levels(levels[..., None], classes[..., None], scales)


def sign_levels(layer: str, values: np.ndarray) -> Levels:
    """{-n, 0, +p} per channel (binary, ternary TWN / SteTern, TTQ): one class with
    levels +-127 and scale p / 127 where every channel's p equals its n (the stock
    int8 reference's per-channel weights of such a channel, so the op can compute
    its bytes: ``stock_identity``), else two classes (positive level +1 in class 0,
    negative level -1 in class 1)."""
    values = np.asarray(values, np.float32)
    channels = len(values)
    flat = values.reshape(channels, -1).astype(np.float64)
    positive = np.where(flat > 0, flat, np.nan)
    negative = np.where(flat < 0, -flat, np.nan)
    with np.errstate(all="ignore"):
        p_high, p_low = np.nanmax(positive, axis=1), np.nanmin(positive, axis=1)
        n_high, n_low = np.nanmax(negative, axis=1), np.nanmin(negative, axis=1)
    uneven = (p_high != p_low) & ~np.isnan(p_high) | (n_high != n_low) & ~np.isnan(n_high)
    if np.any(uneven):
        channel = int(np.argmax(uneven))
        raise ValueError(
            f"layer {layer!r}: output channel {channel} has more than one positive or negative "
            "magnitude; a binary / ternary kernel has values {-n, 0, +p} per channel"
        )
    p = np.where(np.isnan(p_high), n_high, p_high)
    n = np.where(np.isnan(n_high), p, n_high)
    p = np.where(np.isnan(p), 1.0, p)
    n = np.where(np.isnan(n), 1.0, n)
    signs = np.sign(flat).astype(np.int64).reshape(values.shape)
    if np.array_equal(p, n):
        return Levels(signs[..., None] * STOCK_LEVEL, np.zeros_like(signs)[..., None], p[None, :] / STOCK_LEVEL)
    classes = (signs < 0).astype(np.int64)
    return Levels(signs[..., None], classes[..., None], np.stack([p, n]))


def shift_sum_levels(layer: str, quantizer, latent: np.ndarray, op: str) -> Levels:
    """ShiftCNN: each weight s * sum of num_shifts terms +-2^-m (or 0), the terms
    computed by the quantizer's own greedy rounding; per channel, levels
    sign * 2^(m_max - m) and scale s * 2^-m_max."""
    from tfq_plus.quantizers.power_of_two import round_to_powers_of_two

    from tfq_plus.quantizers.arguments import resolve_axis

    latent = tf.constant(np.asarray(latent, np.float32))
    rank = latent.shape.rank
    axes = list(range(rank))
    if quantizer.per_channel:
        axis = resolve_axis(quantizer.owner, "axis", quantizer.axis, rank)
        axes = [i for i in range(rank) if i != axis]
    s = tf.reduce_max(tf.abs(latent), axis=axes, keepdims=True)
    s = tf.where(s > 0, s, tf.ones_like(s))
    residual = latent / s
    terms = []
    for _ in range(quantizer.num_shifts):
        term = tf.sign(residual) * round_to_powers_of_two(tf.abs(residual), quantizer.smallest_exponent, 0)
        terms.append(term.numpy())
        residual -= term
    stacked = rows(np.stack(terms, axis=-1), op)  # [Cout, K, T]
    scale = rows(np.broadcast_to(s.numpy(), latent.shape), op)[:, 0].astype(np.float64)
    nonzero = stacked != 0
    _, exponent = np.frexp(np.where(nonzero, np.abs(stacked), 1.0))
    exponent = exponent.astype(np.int64) - 1
    minimum = np.where(nonzero, exponent, np.iinfo(np.int64).max).reshape(len(stacked), -1).min(axis=1)
    minimum = np.where(minimum == np.iinfo(np.int64).max, 0, minimum)
    shift = np.where(nonzero, exponent - minimum[:, None, None], 0)
    levels = np.where(nonzero, np.sign(stacked).astype(np.int64) << shift, 0)
    scales = (scale * np.ldexp(1.0, minimum))[None, :]
    return Levels(levels, np.zeros_like(levels), scales)


class Encoded(NamedTuple):
    codes: np.ndarray  # uint8 [Cout, K * T]
    bits: int
    table: np.ndarray  # int16 [C, 2^bits]


def encode(layer: str, levels: Levels) -> Encoded:
    """One code per distinct (class, level) of the layer: 0 for the zero level when
    there is one, then each class's positive levels ascending and negative levels by
    magnitude; b the fewest bits holding them all."""
    level, classes = levels.levels, levels.classes
    if np.abs(level).max(initial=0) > MAX_ENTRY:
        raise ValueError(f"layer {layer!r}: a level exceeds 2^14, the largest code-table entry")
    count = int(levels.scales.shape[0])
    pairs = sorted(set(zip(classes.reshape(-1).tolist(), level.reshape(-1).tolist())),
                   key=lambda cl: (cl[1] != 0, cl[0], cl[1] < 0, abs(cl[1])))
    if pairs and pairs[0][1] == 0:
        pairs = [(0, 0)] + [pair for pair in pairs if pair[1] != 0]
    bits = max(1, int(np.ceil(np.log2(len(pairs)))))
    if bits > MAX_BITS:
        raise ValueError(
            f"layer {layer!r}: its kernel has {len(pairs)} distinct levels; shift kernels hold at "
            f"most 2^{MAX_BITS} = {2**MAX_BITS} codes (b <= {MAX_BITS} bits)"
        )
    table = np.zeros((count, 2**bits), np.int16)
    code_of = {}
    for code, (cls, value) in enumerate(pairs):
        table[cls, code] = value
        code_of[(cls, value)] = code
    lookup = np.vectorize(lambda c, v: code_of[(c, v)], otypes=[np.uint8])
    codes = lookup(classes, level).reshape(len(level), -1)
    return Encoded(codes, bits, table)


def decode(codes: np.ndarray, table: np.ndarray, terms: int) -> np.ndarray:
    """Integer weights per class [C, Cout, K] of codes [Cout, K * terms]."""
    codes = np.asarray(codes, np.int64)
    channels = codes.shape[0]
    per_term = np.asarray(table, np.int64)[:, codes]  # [C, Cout, K * T]
    return per_term.reshape(len(table), channels, -1, terms).sum(axis=-1)


def kernel_values(weights: np.ndarray, scales: np.ndarray) -> np.ndarray:
    """float32 kernel rows [Cout, K] of class weights [C, Cout, K] and scales [C, Cout]
    (exact products in float64, one rounding to float32 as Keras's one multiply)."""
    return (weights.astype(np.float64) * scales[:, :, None]).sum(axis=0).astype(np.float32)


def check_accumulator(layer: str, weights: np.ndarray) -> None:
    """sum_k |w_c[k]| * 255 < 2^31 per channel and class (the op's int32 bound)."""
    largest = int(np.abs(weights).sum(axis=-1).max(initial=0)) * 255
    if largest >= ACCUMULATOR_LIMIT:
        raise ValueError(
            f"layer {layer!r}: its integer weights sum to {largest // 255} in a channel; the shift "
            "ops' int32 accumulator needs sum |w| * 255 < 2^31"
        )


def shift_codes(layer: str, family: str, levels: Levels, values: np.ndarray, terms: int = 1) -> P.ShiftCodes:
    """Codes of ``levels`` after checking that they decode to the Keras kernel
    ``values`` (rows [Cout, K]) exactly."""
    encoded = encode(layer, levels)
    weights = decode(encoded.codes, encoded.table, terms)
    check_accumulator(layer, weights)
    values = np.asarray(values, np.float32).reshape(len(values), -1)
    decoded = kernel_values(weights, levels.scales)
    if not np.array_equal(decoded, values):
        differ = np.argwhere(decoded != values)[0]
        raise ValueError(
            f"layer {layer!r}: the {family} codes decode to {decoded[tuple(differ)]!r} where Keras's "
            f"kernel holds {values[tuple(differ)]!r} (output channel {differ[0]}); the kernel is "
            "not on the grid its quantizer describes"
        )
    return P.ShiftCodes(family, encoded.codes, encoded.bits, terms, encoded.table,
                        np.asarray(levels.scales, np.float64), values)
