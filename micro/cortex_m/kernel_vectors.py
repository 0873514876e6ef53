"""Test vectors for the on-target kernel tests (kernel_tests.c), from the host build.

Every case is one call of a TFQP kernel: random inputs, weights and per-channel
transforms spanning kernel sizes, strides, dilations, SAME/VALID padding, pad values,
int8 and bit-packed inputs and outputs, batch > 1 and channel counts around word
boundaries, plus malformed calls that must be rejected with the same message. The
expected output bytes are what the HOST build of the same C sources computes
(``tfq_plus.converters._tfqp_kernels``, which ``tests/test_kernels_binary.py`` checks
against an independent numpy reference): the target must reproduce them exactly.

    cases = random_cases(seed=0)
    write_c_source(cases, "vectors.c")   # + vectors.c.bin, linked into the test image

Layers of a converted model are added with :func:`model_cases`: each TFQP op with the
activation it receives when the deploy model runs on real inputs.
"""

import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

import numpy as np
from flatbuffers import flexbuffers

from tfq_plus.converters import _tfqp_kernels as kernels
from tfq_plus.converters.ops import BCONV2D, BFULLY_CONNECTED, BMAXPOOL2D  # noqa: F401
from tfq_plus.converters.ops import shift
from tfq_plus.converters import packing

INT32_MIN = -(2**31)
INT32_MAX = 2**31 - 1

# tfqp_type values of micro/include/tfqp/tensor.h
_TYPE_INT8 = 1
_TYPE_INT32 = 2
_TYPE_INT16 = 3
MAX_INPUTS = 5  # TFQP_OP_MAX_INPUTS (micro/include/tfqp/op.h)
MAX_RANK = 6  # TFQP_MAX_RANK (micro/include/tfqp/tensor.h)
# the packing utilities, which are no ops of the table
UTILITIES = ("pack", "unpack")


@dataclass
class KernelCase:
    """One kernel call and its host result (``expected_error`` when the host rejects it).

    ``op`` is the name of an op of the C op table (``"TFQP_BCONV2D"``) or one of
    UTILITIES; ``inputs`` are the op's inputs in order (constant ones included)."""

    name: str
    op: str
    inputs: List[np.ndarray]
    output: np.ndarray
    options: bytes = b""
    input_zero_point: int = 0
    output_zero_point: int = 0
    args: Tuple[int, ...] = ()
    expected_error: Optional[str] = None

    @property
    def input(self) -> np.ndarray:
        return self.inputs[0]

    @property
    def filter(self) -> Optional[np.ndarray]:
        """Input 1 (a binary op's filter / weights, a max-pool's OR mask)."""
        return self.inputs[1] if len(self.inputs) > 1 else None

    @property
    def transform(self) -> Optional[np.ndarray]:
        return self.inputs[2] if len(self.inputs) > 2 else None

    @property
    def output_packed(self) -> bool:
        return self.output.dtype == np.int32


def run_host(op: str, inputs, options: bytes, output_dtype, input_zero_point=0,
             output_zero_point=0) -> np.ndarray:
    """The host build's output of ``op`` (through the op table)."""
    return kernels.run(op, [np.ascontiguousarray(x) for x in inputs], options,
                       output_type=np.dtype(output_dtype).name,
                       input_zero_point=input_zero_point, output_zero_point=output_zero_point)


# ----------------------------------------------------------------------------- random data


def random_int8(rng, shape, zero_point):
    """int8 codes around ``zero_point``, 10 % of them exactly the zero point (sign(0) = +1)."""
    q = rng.integers(-128, 128, size=shape)
    q[rng.random(shape) < 0.1] = zero_point
    return q.astype(np.int8)


def random_packed(rng, shape, channels, garbage_padding=True):
    """Packed activations [..., ceil(C/32)]; padding bits hold garbage if asked (consumers mask)."""
    packed = packing.pack_bits(rng.random(tuple(shape) + (channels,)) < 0.5).view(np.uint32)
    mask = packing.last_word_mask(channels)
    if garbage_padding and mask != 0xFFFFFFFF:
        garbage = rng.integers(0, 2**32, size=packed.shape[:-1], dtype=np.uint64).astype(np.uint32)
        packed[..., -1] |= garbage & np.uint32(~mask & 0xFFFFFFFF)
    return packed.view(np.int32)


def random_signs_filter(rng, cout, kh, kw, cin):
    return packing.pack_filter(rng.choice(np.array([-1, 1]), size=(cout, kh, kw, cin)))


def random_int8_transform(rng, cout, taps, p, n):
    """Rows (W, bias, multiplier, shift) whose outputs span the int8 range (not all clamped)."""
    w = rng.integers(-127, 128, size=cout)
    bias = rng.integers(-3000, 3001, size=cout)
    multiplier = rng.integers(2**30, 2**31, size=cout)
    spread = np.maximum(np.abs(w), 1) * max(abs(p), abs(n), 1) * np.sqrt(taps)
    shift = np.round(np.log2(60.0 / spread)).astype(np.int64) + rng.integers(-1, 2, size=cout)
    return np.stack([w, bias, multiplier, np.clip(shift, -31, 31)], axis=1).astype(np.int32)


def edge_int8_transform(rng, cout, taps, p, n, unusable=False):
    """Rows (W, bias, multiplier, shift) through every branch of the Cortex-M int8 output
    (xnor_arm.h): channel c % 7 has 0: a negative multiplier, 1: shift 0 and a small multiplier,
    2: a left shift, 3: accumulators near 2^31 with a right shift of about 20 (the converter's
    rows: W a power of two near 2^23, shift -22), 4: shift -31
    (every output the zero point), 5: multiplier 0, 1 or -1, 6: a right shift of 1 or 2 and a
    small multiplier (many exact halves, rounded away from zero). With `unusable`, the first three
    channels (of cout >= 3) have rows the Cortex-M records cannot take (so the layer takes the C
    requantization): multiplier INT32_MIN; accumulators near 2^30 with a left shift (TFLite's
    shift wraps); accumulators near 2^29 with a right shift of 26."""
    largest = max(abs(p), abs(n), 1)
    spread = lambda w: max(abs(int(w)), 1) * largest * np.sqrt(taps)
    rows = []
    for c in range(cout):
        kind = c % 7
        w = int(rng.integers(-127, 128))
        bias = int(rng.integers(-3000, 3001))
        sign = int(rng.choice([-1, 1]))
        if kind == 0:
            multiplier = -int(rng.integers(2**30, 2**31))
            shift = int(np.round(np.log2(60.0 / spread(w)))) + int(rng.integers(-1, 2))
        elif kind in (1, 2):
            shift = 0 if kind == 1 else 2
            multiplier = sign * int(np.clip(60.0 * 2**31 / spread(w) / 2**shift, 1, 2**31 - 1))
        elif kind == 3:
            w = sign * ((2**31 - 1 - 3000) // (largest * taps))
            multiplier = int(rng.integers(2**30, 2**31))
            shift = int(np.round(np.log2(60.0 / spread(w))))
        elif kind == 4:
            multiplier, shift = int(rng.integers(-2**31 + 1, 2**31)), -31
        elif kind == 5:
            multiplier, shift = int(rng.choice([0, 1, -1])), int(rng.integers(-3, 4))
        else:
            shift = -int(rng.integers(1, 3))
            multiplier = sign * int(np.clip(60.0 * 2**31 * 2**-shift / spread(w), 1, 2**31 - 1))
        rows.append([w, bias, multiplier, int(np.clip(shift, -31, 31))])
    if unusable:
        rows[0][2] = INT32_MIN
        rows[1][0], rows[1][3] = 2**30 // (largest * taps), 2
        rows[2][0], rows[2][2], rows[2][3] = 2**29 // (largest * taps), 2**31 - 1, -26
    return np.array(rows, dtype=np.int64).astype(np.int32)


def random_packed_transform(rng, cout, taps):
    """Rows (direction, threshold); the first channels get the constant never/always rows."""
    direction = rng.choice(np.array([-1, 1]), size=cout)
    threshold = rng.integers(-taps, taps + 1, size=cout)
    constant = [INT32_MIN, INT32_MAX][: min(cout, 2)]
    threshold[: len(constant)] = constant
    return np.stack([direction, threshold], axis=1).astype(np.int32)


# ----------------------------------------------------------------------------- op calls


def _int8_transform(rng, kind, cout, taps, p, n):
    """`kind`: "random" (random_int8_transform), "edge" or "unusable" (edge_int8_transform)."""
    if kind == "random":
        return random_int8_transform(rng, cout, taps, p, n)
    return edge_int8_transform(rng, cout, taps, p, n, unusable=kind == "unusable")


def _int8_output_options(rng, case_index):
    p, n = int(rng.integers(0, 256)), int(rng.integers(-255, 0))
    zero_point = int(rng.integers(-10, 11))
    act_min, act_max = (-128, 127) if case_index % 2 else (zero_point, 120)
    return p, n, zero_point, act_min, act_max


def conv_case(rng, name, *, batch, height, width, cin, cout, kh, kw, stride=(1, 1),
              dilation=(1, 1), padding="same", pad_value=0, input_kind="packed",
              output_kind="int8", index=0, transform="random") -> KernelCase:
    """A TFQP_BCONV2D call on random data, run on the host (int8 output: rows of
    _int8_transform's `transform` kind)."""
    if input_kind == "int8":
        input_zero_point = int(rng.integers(-20, 21))
        x = random_int8(rng, (batch, height, width, cin), input_zero_point)
    else:
        input_zero_point = 0
        x = random_packed(rng, (batch, height, width), cin)
    filt = random_signs_filter(rng, cout, kh, kw, cin)
    geometry = dict(
        channels_in=cin, filter_height=kh, filter_width=kw, stride_height=stride[0],
        stride_width=stride[1], dilation_height_factor=dilation[0],
        dilation_width_factor=dilation[1], padding=padding, pad_value=pad_value,
    )
    taps = kh * kw * cin
    if output_kind == "values":
        options = with_options(BCONV2D.encode(**geometry), int32_output=1)
        transform = random_value_transform(rng, cout)
        out = run_host("TFQP_BCONV2D", [x, filt, transform], options, np.int32,
                       input_zero_point=input_zero_point)
        return KernelCase(name, "TFQP_BCONV2D", [x, filt, transform], out, options,
                          input_zero_point)
    if output_kind == "int8":
        p, n, zero_point, act_min, act_max = _int8_output_options(rng, index)
        transform = _int8_transform(rng, transform, cout, taps, p, n)
        options = BCONV2D.encode(**geometry, input_pos=p, input_neg=n,
                                          act_min=act_min, act_max=act_max)
    else:
        zero_point = 0
        transform = random_packed_transform(rng, cout, taps)
        options = BCONV2D.encode(**geometry)
    out = kernels.bconv2d(x, filt, transform, options, input_zero_point=input_zero_point,
                          output_zero_point=zero_point, packed_output=output_kind == "packed")
    return KernelCase(name, "TFQP_BCONV2D", [x, filt, transform], out, options, input_zero_point,
                      zero_point)


def fc_case(rng, name, *, batch, cin, cout, input_kind="packed", output_kind="int8",
            index=0, transform="random") -> KernelCase:
    """A TFQP_BFULLY_CONNECTED call on random data, run on the host (int8 output: rows of
    _int8_transform's `transform` kind)."""
    if input_kind == "int8":
        input_zero_point = int(rng.integers(-20, 21))
        x = random_int8(rng, (batch, cin), input_zero_point)
    else:
        input_zero_point = 0
        x = random_packed(rng, (batch,), cin)
    weights = packing.pack_filter(rng.choice(np.array([-1, 1]), size=(cout, cin)))
    if output_kind == "values":
        options = with_options(BFULLY_CONNECTED.encode(channels_in=cin), int32_output=1)
        transform = random_value_transform(rng, cout)
        out = run_host("TFQP_BFULLY_CONNECTED", [x, weights, transform], options, np.int32,
                       input_zero_point=input_zero_point)
        return KernelCase(name, "TFQP_BFULLY_CONNECTED", [x, weights, transform], out, options,
                          input_zero_point)
    if output_kind == "int8":
        p, n, zero_point, act_min, act_max = _int8_output_options(rng, index)
        transform = _int8_transform(rng, transform, cout, cin, p, n)
        options = BFULLY_CONNECTED.encode(channels_in=cin, input_pos=p, input_neg=n,
                                                   act_min=act_min, act_max=act_max)
    else:
        zero_point = 0
        transform = random_packed_transform(rng, cout, cin)
        options = BFULLY_CONNECTED.encode(channels_in=cin)
    out = kernels.bfully_connected(x, weights, transform, options,
                                   input_zero_point=input_zero_point,
                                   output_zero_point=zero_point,
                                   packed_output=output_kind == "packed")
    return KernelCase(name, "TFQP_BFULLY_CONNECTED", [x, weights, transform], out, options,
                      input_zero_point, zero_point)


def int8_output_cases(rng) -> List[KernelCase]:
    """The binary ops' int8 output through each Cortex-M path (xnor_arm.h): the whole-row
    kernel (3x3 on <= 32 channels), the generic kernel (windows up to 38 words), the C
    requantization (longer windows, or a layer whose records are not usable), with
    edge_int8_transform's rows, odd channel counts, padding, strides, batch 2 and both the
    full int8 range and clamps at both ends."""
    cases = []
    convs = [  # (kh, cin, cout, stride, padding, pad_value, batch, transform)
        (3, 32, 7, 1, "same", 0, 2, "edge"),
        (3, 20, 13, 2, "same", 0, 1, "edge"),
        (3, 32, 6, 1, "same", 1, 1, "edge"),
        (3, 32, 5, 1, "valid", 0, 2, "unusable"),
        (3, 64, 11, 1, "same", 0, 2, "edge"),
        (3, 64, 5, 2, "same", 1, 1, "edge"),
        (1, 33, 9, 1, "valid", 0, 2, "edge"),
        (3, 130, 7, 1, "same", 0, 1, "edge"),
        (3, 64, 6, 1, "same", 0, 1, "unusable"),
    ]
    for i, (k, cin, cout, stride, padding, pad_value, batch, transform) in enumerate(convs):
        for index in (0, 1):  # clamps at both ends, the full int8 range
            cases.append(conv_case(
                rng, f"conv int8 out {k}x{k} s{stride} {padding} pad{pad_value} cin{cin} "
                     f"cout{cout} {transform} act{index}",
                batch=batch, height=5, width=6, cin=cin, cout=cout, kh=k, kw=k,
                stride=(stride, stride), padding=padding, pad_value=pad_value,
                output_kind="int8", index=index, transform=transform))
    for cin, cout, batch, transform in [(100, 13, 2, "edge"), (1024, 7, 1, "edge"),
                                        (1300, 5, 1, "edge"), (64, 6, 2, "unusable")]:
        for index in (0, 1):
            cases.append(fc_case(rng, f"fc int8 out cin{cin} cout{cout} {transform} act{index}",
                                 batch=batch, cin=cin, cout=cout, output_kind="int8",
                                 index=index, transform=transform))
    return cases


def maxpool_case(rng, name, *, batch, height, width, channels, kh, kw, stride, padding,
                 or_mask=False):
    x = random_packed(rng, (batch, height, width), channels, garbage_padding=or_mask)
    options = BMAXPOOL2D.encode(channels=channels, filter_height=kh, filter_width=kw,
                                         stride_height=stride[0], stride_width=stride[1],
                                         padding=padding)
    if not or_mask:
        return KernelCase(name, "TFQP_BMAXPOOL2D", [x], kernels.bmaxpool2d(x, options), options)
    mask = random_packed(rng, (), channels, garbage_padding=False)
    inputs = [x, mask]
    return KernelCase(name, "TFQP_BMAXPOOL2D", inputs,
                      run_host("TFQP_BMAXPOOL2D", inputs, options, np.int32), options)


# ----------------------------------------------------------------------------- newer ops


def with_options(options: bytes, **extra) -> bytes:
    """The flexbuffer map ``options`` with ``extra`` integer keys added."""
    values = flexbuffers.Loads(options) if options else {}
    values.update(extra)
    return bytes(flexbuffers.Dumps({key: int(value) for key, value in values.items()}))


def random_value_transform(rng, cout):
    """int32 value-output rows (multiplier, shift in [0, 40], bias), saturating ones too."""
    multiplier = rng.integers(-5000, 5001, size=cout)
    multiplier[::4] = rng.integers(INT32_MIN, INT32_MAX, size=len(multiplier[::4]),
                                   dtype=np.int64)
    shift = rng.integers(0, 41, size=cout)
    bias = rng.integers(-1000, 1001, size=cout)
    bias[1::5] = rng.integers(INT32_MIN, INT32_MAX, size=len(bias[1::5]), dtype=np.int64)
    return np.stack([multiplier, shift, bias], axis=1).astype(np.int32)


def random_weights(rng, shape, wide: bool) -> np.ndarray:
    """int8 codes in [-127, 127], or int16 codes bounded so sum |w| * 255 < 2^31
    per output channel (the int8-input ops' rule)."""
    if not wide:
        return rng.integers(-127, 128, size=shape).astype(np.int8)
    taps = int(np.prod(shape[1:]))
    limit = min(32767, (2**31 - 1) // (255 * taps))
    return rng.integers(-limit, limit + 1, size=shape).astype(np.int16)


def int8_conv_case(rng, name, *, batch, height, width, cin, cout, kh, kw, stride=(1, 1),
                   dilation=(1, 1), padding="same", output_kind="packed", wide=False,
                   residual=False, levels=0, input_codes=None) -> KernelCase:
    """A TFQP_CONV2D_INT8 call on random data, run on the host (int16 weights with
    ``wide``; a residual input with ``residual``, value outputs only; ``input_codes``:
    see :func:`random_input`)."""
    x, zero_point = random_input(rng, (batch, height, width, cin), input_codes)
    weights = random_weights(rng, (cout, kh, kw, cin), wide)
    options = dict(channels_in=cin, filter_height=kh, filter_width=kw, stride_height=stride[0],
                   stride_width=stride[1], dilation_height_factor=dilation[0],
                   dilation_width_factor=dilation[1],
                   padding=packing.PADDING_SAME if padding == "same" else packing.PADDING_VALID)
    return _int8_op_case(rng, name, "TFQP_CONV2D_INT8", x, weights, options, zero_point,
                         kh * kw * cin, output_kind, residual, levels)


def int8_fc_case(rng, name, *, batch, cin, cout, output_kind="packed", wide=False,
                 residual=False, levels=0, input_codes=None) -> KernelCase:
    """A TFQP_FULLY_CONNECTED_INT8 call on random data, run on the host."""
    x, zero_point = random_input(rng, (batch, cin), input_codes)
    weights = random_weights(rng, (cout, cin), wide)
    return _int8_op_case(rng, name, "TFQP_FULLY_CONNECTED_INT8", x, weights,
                         dict(channels_in=cin), zero_point, cin, output_kind, residual, levels)


def random_residual(rng, shape) -> np.ndarray:
    """int32 residual values, some at the int32 ends (the sums saturate)."""
    values = rng.integers(INT32_MIN, INT32_MAX, size=shape, dtype=np.int64)
    values.reshape(-1)[::3] //= 2**16
    return values.astype(np.int32)


def _int8_op_case(rng, name, op, x, weights, options, zero_point, taps, output_kind,
                  residual=False, levels=0):
    cout = weights.shape[0]
    if output_kind == "codes":
        return _int8_codes_case(rng, name, op, x, weights, options, zero_point, levels)
    if output_kind == "values":
        options = dict(options, int32_output=1)
        transform = random_value_transform(rng, cout)
    else:
        spread = int(np.sqrt(taps) * 128 * 60)
        transform = np.stack([rng.choice(np.array([-1, 1]), size=cout),
                              rng.integers(-spread, spread + 1, size=cout)],
                             axis=1).astype(np.int32)
    encoded = with_options(b"", **options)
    inputs = [x, weights, transform]
    if residual:
        shape = run_host(op, inputs, encoded, np.int32, input_zero_point=zero_point).shape
        inputs.append(random_residual(rng, shape))
    out = run_host(op, inputs, encoded, np.int32, input_zero_point=zero_point)
    return KernelCase(name, op, inputs, out, encoded, zero_point)


# ----------------------------------------------------------------------------- codes output

CODE_LEVELS = (2, 3, 4, 16, 256)


def int8_accumulators(op, x, weights, options, zero_point) -> np.ndarray:
    """The exact accumulators A [..., Cout] of an int8 / int16-weight layer (``op``:
    TFQP_CONV2D_INT8 or TFQP_FULLY_CONNECTED_INT8), from the host's int32 value
    output with the identity rows (M 1, s 0, B 0): value = A."""
    identity = np.tile(np.array([[1, 0, 0]], np.int32), (weights.shape[0], 1))
    encoded = with_options(b"", **dict(options, int32_output=1))
    return run_host(op, [x, weights, identity], encoded, np.int32,
                    input_zero_point=zero_point).astype(np.int64)


def level_transform(rng, signed, levels):
    """Rows (d, base, t_1 .. t_L) for accumulators ``signed`` [..., Cout] (d * A
    already applied by the caller with its ``d``, given back as column 0 by it): about
    half the thresholds are values d * A takes (ties: the code steps exactly there),
    some repeat (equal thresholds: a code never produced), the rest spread over the
    range; channel 0 steps below every value (top code), channel 1 above (base)."""
    flat = signed.reshape(-1, signed.shape[-1])
    count = levels - 1
    rows = []
    for co in range(flat.shape[1]):
        values = flat[:, co]
        low, high = int(values.min()) - 3, int(values.max()) + 3
        taken = rng.choice(values, size=count)
        spread = rng.integers(low, high + 1, size=count)
        thresholds = np.where(rng.random(count) < 0.5, taken, spread)
        if count >= 3:
            thresholds[rng.integers(0, count)] = thresholds[rng.integers(0, count)]
        if co == 0:
            thresholds = np.full(count, INT32_MIN)
        elif co == 1:
            thresholds = np.full(count, INT32_MAX)
        base = int(rng.integers(-128, 128 - count))
        rows.append(np.concatenate([[base], np.sort(thresholds)]))
    return np.array(rows, np.int64)


def _codes_rows(rng, accumulators, levels):
    """Transform rows (d, base, t_1 .. t_L) for accumulators A [..., Cout]: random d."""
    d = rng.choice(np.array([-1, 1]), size=accumulators.shape[-1])
    rows = level_transform(rng, d * accumulators, levels)
    return np.concatenate([d[:, None], rows], axis=1).astype(np.int32)


def _int8_codes_case(rng, name, op, x, weights, options, zero_point, levels) -> KernelCase:
    transform = _codes_rows(rng, int8_accumulators(op, x, weights, options, zero_point), levels)
    encoded = with_options(b"", **dict(options, output_levels=levels))
    out = run_host(op, [x, weights, transform], encoded, np.int8, input_zero_point=zero_point)
    return KernelCase(name, op, [x, weights, transform], out, encoded, zero_point)


def shift_accumulators(op, x, weights, geometry, zero_point) -> np.ndarray:
    """A [..., Cout] of a shift op (``op``: "conv", "depthwise", "dense") whose integer
    weights are ``weights`` [Cout, K] (one class, |w| <= 2^15 - 1), computed by the
    host's int8-input ops with the weights as int16 (a depthwise layer as the
    convolution whose filter co reads only input channel co / depth_multiplier)."""
    cout = weights.shape[0]
    if op == "dense":
        cin = geometry["channels_in"]
        rows = x.reshape(-1, cin)
        acc = int8_accumulators("TFQP_FULLY_CONNECTED_INT8", rows, weights.astype(np.int16),
                                dict(channels_in=cin), zero_point)
        return acc.reshape(x.shape[:-1] + (cout,))
    kh, kw, cin = geometry["filter_height"], geometry["filter_width"], x.shape[3]
    if op == "depthwise":
        full = np.zeros((cout, kh, kw, cin), np.int64)
        full[np.arange(cout), :, :, np.arange(cout) // geometry["depth_multiplier"]] = (
            weights.reshape(cout, kh, kw))
    else:
        full = weights.reshape(cout, kh, kw, cin)
    conv = {key: value for key, value in geometry.items() if key != "depth_multiplier"}
    conv["padding"] = packing.PADDING_SAME if conv["padding"] == "same" else packing.PADDING_VALID
    return int8_accumulators("TFQP_CONV2D_INT8", x, full.astype(np.int16),
                             dict(conv, channels_in=cin), zero_point)


def random_input(rng, shape, input_codes=None):
    """(int8 input, its zero point): random int8 values around a random zero point, or
    with ``input_codes`` = (k, code_zero) k-bit codes u in [0, 2^k) read with zero point
    code_zero (what :func:`packed_io_case` packs)."""
    if input_codes is None:
        return (rng.integers(-128, 128, size=shape).astype(np.int8),
                int(rng.integers(-128, 128)))
    bits, code_zero = input_codes
    return rng.integers(0, 1 << bits, size=shape).astype(np.int8), code_zero


def packed_io_case(case: KernelCase, name, *, input_bits=0, output_bits=0) -> KernelCase:
    """``case`` (an output of one of the five int8-activation ops, built with
    ``input_codes`` when ``input_bits``) with its input packed as k-bit activations
    (options input_bits, input_code_zero, channels_in) and / or its output written as
    packed codes (output_bits), rerun on the host."""
    x = case.inputs[0]
    inputs, extra = list(case.inputs), {}
    if input_bits:
        inputs[0] = packing.pack_kbit_activations(x.astype(np.uint8), input_bits)
        extra.update(input_bits=input_bits, input_code_zero=case.input_zero_point,
                     channels_in=x.shape[-1])
    if output_bits:
        extra.update(output_bits=output_bits)
    options = with_options(case.options, **extra)
    output_dtype = np.int32 if output_bits or case.output.dtype == np.int32 else np.int8
    out = run_host(case.op, inputs, options, output_dtype)
    return KernelCase(name, case.op, inputs, out, options)


def unpack_codes_case(rng, name, *, shape, channels, bits, code_zero, output_zero_point):
    """A TFQP_UNPACK_CODES call on random packed codes."""
    codes = rng.integers(0, 1 << bits, size=tuple(shape) + (channels,))
    x = packing.pack_kbit_activations(codes, bits)
    options = with_options(b"", channels=channels, bits=bits,
                           **({"code_zero": code_zero} if code_zero else {}))
    out = run_host("TFQP_UNPACK_CODES", [x], options, np.int8,
                   output_zero_point=output_zero_point)
    return KernelCase(name, "TFQP_UNPACK_CODES", [x], out, options, 0, output_zero_point)


def max_pool_codes_case(rng, name, *, shape, channels, bits, pool, stride, padding):
    """A TFQP_MAX_POOL_CODES call on random packed codes [N, H, W, C] (``shape`` = N, H,
    W; ``pool`` / ``stride``: (height, width); padding "same" or "valid")."""
    codes = rng.integers(0, 1 << bits, size=tuple(shape) + (channels,))
    x = packing.pack_kbit_activations(codes, bits)
    options = with_options(b"", channels=channels, bits=bits, filter_height=pool[0],
                           filter_width=pool[1], stride_height=stride[0],
                           stride_width=stride[1],
                           padding=packing.PADDING_SAME if padding == "same" else packing.PADDING_VALID)
    out = run_host("TFQP_MAX_POOL_CODES", [x], options, np.int32)
    return KernelCase(name, "TFQP_MAX_POOL_CODES", [x], out, options)


# (shape, channels, bits, pool, stride, padding): the accuracy.py geometry (2x2 / 2,
# odd sizes dropping a row), SAME windows cut by the border, overlapping windows,
# partial last words and a word-multiple depth
MAX_POOL_CODES_SHAPES = [
    ((1, 7, 7), 64, 4, (2, 2), (2, 2), "valid"),
    ((2, 5, 6), 9, 4, (3, 3), (2, 2), "same"),
    ((1, 6, 5), 17, 2, (2, 3), (1, 2), "same"),
    ((2, 4, 4), 32, 2, (2, 2), (2, 2), "valid"),
    ((1, 5, 5), 3, 4, (3, 2), (1, 1), "valid"),
]


def kbit_cases(rng) -> List[KernelCase]:
    """Packed 4- and 2-bit activations into and out of each of the five ops,
    TFQP_UNPACK_CODES and TFQP_MAX_POOL_CODES."""
    cases: List[KernelCase] = []
    builders = [
        ("shift conv", lambda codes, levels: shift_case(
            rng, "", "conv", batch=2, height=4, width=5, cin=9, cout=7, kh=3, kw=3, bits=3,
            output_kind="codes", levels=levels, input_codes=codes)),
        ("shift depthwise", lambda codes, levels: shift_case(
            rng, "", "depthwise", batch=1, height=5, width=4, cin=17, kh=3, kw=3, bits=2,
            padding="valid", output_kind="codes", levels=levels, input_codes=codes)),
        ("shift dense", lambda codes, levels: shift_case(
            rng, "", "dense", batch=2, cin=37, cout=11, bits=4, output_kind="codes",
            levels=levels, input_codes=codes)),
        ("conv int8", lambda codes, levels: int8_conv_case(
            rng, "", batch=1, height=4, width=4, cin=10, cout=9, kh=3, kw=3, stride=(2, 1),
            output_kind="codes", levels=levels, input_codes=codes)),
        ("fc int8", lambda codes, levels: int8_fc_case(
            rng, "", batch=2, cin=33, cout=5, output_kind="codes", levels=levels,
            input_codes=codes)),
    ]
    for i, (label, build) in enumerate(builders):
        for input_bits, output_bits in [(4, 4), (2, 2), (4, 0), (0, 2)]:
            code_zero = [0, 8, 1, 3][(i + input_bits) % 4] % (1 << (input_bits or 2))
            levels = 1 << (output_bits or 2)
            base = build((input_bits, code_zero) if input_bits else None,
                         levels - (i + output_bits) % 2)
            cases.append(packed_io_case(base, f"{label} k{input_bits}->k{output_bits}",
                                        input_bits=input_bits, output_bits=output_bits))
    for i, (shape, channels, bits) in enumerate([((3,), 5, 4), ((2, 2), 17, 2), ((1, 2, 3), 40, 4),
                                                 ((2,), 16, 2)]):
        cases.append(unpack_codes_case(rng, f"unpack codes k{bits} c{channels}", shape=shape,
                                       channels=channels, bits=bits, code_zero=[0, 2, 8, 1][i],
                                       output_zero_point=[-5, 0, 3, -127][i]))
    for shape, channels, bits, pool, stride, padding in MAX_POOL_CODES_SHAPES:
        cases.append(max_pool_codes_case(
            rng, f"max pool codes k{bits} c{channels} {pool[0]}x{pool[1]}/{stride[0]}x{stride[1]} "
                 f"{padding}", shape=shape, channels=channels, bits=bits, pool=pool, stride=stride,
            padding=padding))
    return cases


def uniform_dense_cases(rng) -> List[KernelCase]:
    """TFQP_SHIFT_FULLY_CONNECTED on a packed input with 2- and 4-bit uniform weights
    (the Cortex-M path of micro/kernels/kbit_arm.c in batch 1): code tables affine in the
    code and in its two's complement, activation widths equal to and other than the
    weights', Cin a multiple of a word's codes and not, odd Cout, input_code_zero 0 and
    not, codes, int8 and packed-bit outputs; batch 2 runs the shift path."""
    cases: List[KernelCase] = []
    rows = [  # weight bits, flip, input bits, code zero, output bits, output kind, cin, cout
        (2, 2, 4, 8, 4, "codes", 45, 9),
        (4, 0, 4, 0, 4, "codes", 64, 6),
        (2, 0, 2, 1, 2, "codes", 37, 5),
        (4, 8, 2, 3, 0, "int8", 21, 3),
        (2, 2, 4, 5, 0, "packed", 70, 33),
        (4, 8, 4, 8, 4, "codes", 16, 1),
    ]
    for i, (bits, flip, input_bits, code_zero, output_bits, kind, cin, cout) in enumerate(rows):
        for batch in (1, 2) if i < 2 else (1,):
            levels = 1 << output_bits if kind == "codes" else 0
            base = shift_case(rng, "", "dense", batch=batch, cin=cin, cout=cout, bits=bits,
                              output_kind=kind, levels=levels,
                              input_codes=(input_bits, code_zero), uniform_flip=flip)
            cases.append(packed_io_case(
                base, f"shift dense uniform b{bits} flip{flip} k{input_bits}->{kind}"
                      f"{output_bits or ''} cin{cin} cout{cout} batch{batch}",
                input_bits=input_bits, output_bits=output_bits))
    return cases


def rejected_kbit_cases(rng) -> List[KernelCase]:
    """Malformed calls of the packed k-bit inputs and outputs."""
    dense = packed_io_case(int8_fc_case(rng, "", batch=2, cin=20, cout=6, output_kind="codes",
                                        levels=4, input_codes=(4, 3)),
                           "fc int8 k4->k2 base", input_bits=4, output_bits=2)
    conv = packed_io_case(shift_case(rng, "", "conv", height=4, width=4, cin=9, cout=5, kh=3,
                                     kw=3, bits=2, output_kind="codes", levels=3,
                                     input_codes=(2, 1)),
                          "shift conv k2->k2 base", input_bits=2, output_bits=2)
    unpack = unpack_codes_case(rng, "unpack codes base", shape=(2,), channels=9, bits=4,
                               code_zero=4, output_zero_point=0)
    pool = max_pool_codes_case(rng, "max pool codes base", shape=(1, 4, 4), channels=9, bits=4,
                               pool=(2, 2), stride=(2, 2), padding="valid")
    return [
        rejected(dense, "reject output_bits 3", options=with_options(dense.options,
                                                                     output_bits=3)),
        rejected(dense, "reject output_levels past 2^output_bits",
                 options=with_options(dense.options, output_levels=5),
                 transform=np.concatenate([dense.inputs[2], dense.inputs[2][:, -1:]], axis=1)),
        rejected(dense, "reject input_code_zero 16", options=with_options(dense.options,
                                                                          input_code_zero=16)),
        rejected(dense, "reject packed input depth", filter=dense.inputs[1][:, :9].copy(),
                 options=with_options(dense.options, channels_in=9)),
        rejected(conv, "reject packed conv without channels_in",
                 options=with_options(b"", **{k: v for k, v in flexbuffers.Loads(conv.options)
                                              .items() if k != "channels_in"})),
        rejected(conv, "reject packed codes into an int8 output",
                 output=np.zeros((1, 4, 4, 5), np.int8)),
        rejected(unpack, "reject unpack codes bits 3", options=with_options(unpack.options,
                                                                            bits=3)),
        rejected(unpack, "reject unpack codes past int8", output_zero_point=120),
        rejected(pool, "reject max pool codes bits 3", options=with_options(pool.options,
                                                                              bits=3)),
        rejected(pool, "reject max pool codes input depth",
                 options=with_options(pool.options, channels=17)),
        rejected(pool, "reject max pool codes padding 2",
                 options=with_options(pool.options, padding=2)),
        rejected(pool, "reject max pool codes window past the input",
                 options=with_options(pool.options, filter_height=5)),
    ]


def unpack_op_case(rng, name, *, pixels, channels, group=None) -> KernelCase:
    """A TFQP_UNPACK call: packed signs (groups of ``group`` channels) -> int8 codes."""
    group = group or channels
    x = random_packed(rng, (pixels, channels // group), group).reshape(pixels, -1)
    options = with_options(b"", channels=channels, positive=int(rng.integers(-128, 128)),
                           negative=int(rng.integers(-128, 128)),
                           **({"group": group} if group != channels else {}))
    return KernelCase(name, "TFQP_UNPACK", [x], run_host("TFQP_UNPACK", [x], options, np.int8),
                      options)


def binarize_case(rng, name, *, shape, int32_input):
    """A TFQP_BINARIZE call (int8 with a zero point, or int32 values), run on the host."""
    if int32_input:
        zero_point = 0
        x = rng.integers(INT32_MIN, INT32_MAX, size=shape, dtype=np.int64).astype(np.int32)
        x.reshape(-1)[::7] = 0
        x.reshape(-1)[1::11] = -1
    else:
        zero_point = int(rng.integers(-128, 128))
        x = random_int8(rng, shape, zero_point)
    return KernelCase(name, "TFQP_BINARIZE", [x],
                      run_host("TFQP_BINARIZE", [x], b"", np.int32,
                               input_zero_point=zero_point), b"", zero_point)


def pack_case(rng, name, *, shape, zero_point):
    x = random_int8(rng, shape, zero_point)
    return KernelCase(name, "pack", [x], kernels.pack(x, zero_point=zero_point),
                      args=(zero_point,))


def unpack_case(rng, name, *, pixels, channels, positive, negative):
    x = random_packed(rng, (pixels,), channels)
    out = kernels.unpack(x, channels, positive=positive, negative=negative)
    return KernelCase(name, "unpack", [x], out, args=(channels, positive, negative))


def with_residual(rng, case: KernelCase) -> KernelCase:
    """``case`` (a value output) with a residual input added, rerun on the host."""
    inputs = list(case.inputs) + [random_residual(rng, case.output.shape)]
    output = run_host(case.op, inputs, case.options, np.int32, case.input_zero_point)
    return KernelCase(case.name, case.op, inputs, output, case.options, case.input_zero_point)


def rejected(case: KernelCase, name: str, **changes) -> KernelCase:
    """``case`` with some inputs replaced, which the host must reject; the output
    description stays the valid one (the op fails before it writes anything).
    ``changes``: fields of KernelCase, or inputs by role (``input``, ``filter``,
    ``transform``: inputs 0, 1, 2; ``inputs`` replaces the list)."""
    inputs = list(changes.pop("inputs", case.inputs))
    for index, role in enumerate(("input", "filter", "transform")):
        if role in changes:
            inputs[index] = changes.pop(role)
    broken = KernelCase(**{**case.__dict__, "name": name, "inputs": inputs, **changes})
    try:
        run_host(broken.op, broken.inputs, broken.options, broken.output.dtype,
                 broken.input_zero_point, broken.output_zero_point)
    except ValueError as error:
        broken.expected_error = str(error)
        return broken
    raise AssertionError(f"{name}: the host build accepted a malformed call")


# ----------------------------------------------------------------------------- shift ops

SHIFT_SPECS = {"conv": shift.SHIFT_CONV2D, "depthwise": shift.SHIFT_DEPTHWISE_CONV2D,
               "dense": shift.SHIFT_FULLY_CONNECTED}


def random_code_table(rng, bits, classes, count):
    """int16 code table [classes, 2^bits] for rows of ``count`` codes: code 0 decodes to 0
    in every class (pruned weights, skipped words); the other entries are random with
    |entry| <= min(2^14, what keeps count * |entry| * 255 below 2^30), the ends included,
    and some 0 in one class only."""
    limit = int(min(2**14, (2**30) // (255 * count)))
    table = rng.integers(-limit, limit + 1, size=(classes, 1 << bits))
    table[:, 1::5] = limit * rng.choice(np.array([-1, 1]), size=table[:, 1::5].shape)
    if classes == 2 and bits > 1:
        table[1, 2] = 0
    table[:, 0] = 0
    return table.astype(np.int16)


def uniform_code_table(rng, bits, count, flip):
    """int16 code table [1, 2^bits] of a uniform grid: alpha * (c ^ flip) + beta with
    random alpha != 0 and beta (flip 0: the converter's ascending levels, flip 2^(b-1):
    two's complement when beta = -alpha * flip), |entry| within random_code_table's
    limit."""
    limit = int(min(2**14, (2**30) // (255 * count)))
    levels = 1 << bits
    alpha = int(rng.integers(1, max(limit // levels, 1) + 1)) * int(rng.choice([-1, 1]))
    beta = int(rng.integers(-(limit // 2), limit // 2 + 1)) - alpha * (levels // 2)
    beta = int(np.clip(beta, -limit + levels * abs(alpha), limit - levels * abs(alpha)))
    return (alpha * (np.arange(levels) ^ flip) + beta)[None].astype(np.int16)


def random_codes(rng, cout, count, bits, dead_words=0.3):
    """uint8 codes [Cout, count]; about ``dead_words`` of the words hold only code 0 (work
    the kernels skip)."""
    per_word = packing.codes_per_word(bits)
    codes = rng.integers(0, 1 << bits, size=(cout, count))
    dead = rng.random((cout, packing.code_words(count, bits))) < dead_words
    codes[np.repeat(dead, per_word, axis=1)[:, :count]] = 0
    return codes.astype(np.uint8)


def decoded_weights(codes, table, terms):
    """w_c[k] = sum_t table[c][code(k, t)]: int64 [C, Cout, K]."""
    return table.astype(np.int64)[:, codes.reshape(len(codes), -1, terms)].sum(axis=-1)


def shift_transform(rng, weights, packed):
    """Per-channel rows for ``weights`` [C, Cout, K] spreading the outputs over the int8
    range (some past its ends): (d, B, M0, M1, s); packed: (d, threshold), the first two
    channels the never / always rows."""
    classes, cout, _ = weights.shape
    typical = 100 * np.sqrt((weights.astype(np.float64) ** 2).sum(axis=-1)) + 1  # |A_c|
    d = rng.choice(np.array([-1, 1]), size=cout)
    if packed:
        threshold = np.round(rng.normal(0, 0.5, cout) * typical[0]).astype(np.int64)
        threshold[: min(cout, 2)] = [INT32_MIN, INT32_MAX][: min(cout, 2)]
        return np.stack([d, threshold], axis=1).astype(np.int32)
    slack = 2**31 - 1 - 255 * np.abs(weights).sum(axis=-1).max(axis=0)
    bias = np.minimum(np.round(rng.normal(0, 0.3, cout) * typical[0]), slack)
    m0 = rng.integers(2**30, 2**31, size=cout)
    if classes == 1:
        m1 = np.zeros(cout, np.int64)
        s = np.clip(np.round(np.log2(90 / typical[0])) + rng.integers(-1, 2, cout), -31, 30)
    else:
        m0 = rng.integers(2**29, 2**31, size=cout)
        m1 = rng.integers(2**29, 2**31, size=cout)
        s = np.clip(np.round(np.log2(typical.sum(axis=0) * 2**30.5 / 90))
                    + rng.integers(-1, 2, cout), 0, 62)
    return np.stack([d, bias, m0, m1, s], axis=1).astype(np.int32)


def shift_case(rng, name, op, *, batch=1, height=1, width=1, cin, cout=1, kh=1, kw=1,
               stride=(1, 1), dilation=(1, 1), padding="same", depth_multiplier=1, bits=4,
               terms=1, classes=1, output_kind="int8", activation=None, input_shape=None,
               dead_words=0.3, levels=0, input_codes=None, uniform_flip=None,
               code_lists=False) -> KernelCase:
    """A call of a shift op (``op``: "conv", "depthwise" or "dense") on random data, run
    on the host. ``input_shape`` gives a dense layer's input another rank (rows of
    ``cin`` values); ``activation``: (activation_min, activation_max); output_kind
    "codes": the codes output of ``levels`` levels (one class); ``input_codes``: see
    :func:`random_input`; ``uniform_flip``: a uniform grid's code table
    (:func:`uniform_code_table`) instead of random values; ``code_lists`` (dense, one
    class): with the live-code lists input (``packing.pack_code_lists``)."""
    spec = SHIFT_SPECS[op]
    if op == "dense":
        shape = input_shape or (batch, cin)
        taps, geometry = cin, dict(channels_in=cin)
    else:
        shape = (batch, height, width, cin)
        geometry = dict(filter_height=kh, filter_width=kw, stride_height=stride[0],
                        stride_width=stride[1], dilation_height_factor=dilation[0],
                        dilation_width_factor=dilation[1], padding=padding)
        taps = kh * kw * cin
        if op == "depthwise":
            taps, cout = kh * kw, cin * depth_multiplier
            geometry["depth_multiplier"] = depth_multiplier
    x, zero_point = random_input(rng, shape, input_codes)
    codes = random_codes(rng, cout, taps * terms, bits, dead_words)
    table = (random_code_table(rng, bits, classes, taps * terms) if uniform_flip is None
             else uniform_code_table(rng, bits, taps * terms, uniform_flip))
    packed = output_kind == "packed"
    weights = decoded_weights(codes, table, terms)
    if output_kind == "codes":
        transform = _codes_rows(rng, shift_accumulators(op, x, weights[0], geometry, zero_point),
                                levels)
        geometry["output_levels"] = levels
    else:
        transform = shift_transform(rng, weights, packed)
    if terms != 1:
        geometry["terms"] = terms
    if activation is not None:
        geometry["activation_min"], geometry["activation_max"] = activation
    options = spec.encode(**geometry)
    output_zero_point = 0 if packed else int(rng.integers(-20, 21))
    inputs = [x, packing.pack_codes(codes, bits), table, transform]
    if code_lists:
        inputs.append(packing.pack_code_lists(codes, table[0], terms))
    out = run_host(spec.name, inputs, options, np.int32 if packed else np.int8, zero_point,
                   output_zero_point)
    return KernelCase(name, spec.name, inputs, out, options, zero_point, output_zero_point)


def shift_cases(rng) -> List[KernelCase]:
    """Every code width, 1-3 terms, one and two accumulator classes, int8 and packed
    outputs across the three shift ops, with strides, dilations, SAME/VALID, depth
    multipliers 1 and 2, batch 2, activation clamps and odd channel counts (small
    tensors: the vectors share 4 MB with the Cortex-M55's constants)."""
    cases: List[KernelCase] = []
    combos = [(b, t, c, o) for b, t, c, o in itertools.product(
        [1, 2, 3, 4, 5], [1, 2, 3], [1, 2], ["int8", "packed"]) if not (c == 2 and o == "packed")]
    for i, (bits, terms, classes, output_kind) in enumerate(combos):
        op = ["conv", "depthwise", "dense"][i % 3]
        common = dict(bits=bits, terms=terms, classes=classes, output_kind=output_kind,
                      activation=(-100, 90) if i % 4 == 1 and output_kind == "int8" else None)
        label = f"shift {op} b{bits} T{terms} C{classes} ->{output_kind}"
        if op == "dense":
            cin, cout = [1, 7, 33, 64, 90][i % 5], [1, 5, 33, 40][i % 4]
            shape = (2, 3, cin) if i % 5 == 2 else None  # a rank-3 input: rows of cin
            cases.append(shift_case(rng, f"{label} cin{cin} cout{cout}", op, batch=1 + i % 2,
                                    cin=cin, cout=cout, input_shape=shape, **common))
            continue
        k, s, d = [(1, 1, 1), (3, 1, 1), (3, 2, 1), (3, 1, 2), (2, 2, 1)][i % 5]
        padding = ["same", "valid"][(i // 3) % 2]
        cin = [1, 3, 8, 5, 12][i % 5] if op == "conv" else [1, 7, 16, 33, 4][i % 5]
        cout = [1, 5, 33, 9][i % 4]
        multiplier = 1 + (i // 3) % 2 if op == "depthwise" else 1
        cases.append(shift_case(
            rng, f"{label} k{k} s{s} d{d} {padding} cin{cin}"
                 + (f" dm{multiplier}" if op == "depthwise" else f" cout{cout}"),
            op, batch=1 + (i // 2) % 2, height=5, width=5 + i % 2, cin=cin, cout=cout, kh=k,
            kw=k, stride=(s, s), dilation=(d, d), padding=padding,
            depth_multiplier=multiplier, **common))
    # the codes output: every level count on each op (256 levels: [Cout, 257] transforms,
    # so few channels)
    for i, (levels, op) in enumerate(itertools.product(CODE_LEVELS,
                                                       ["conv", "depthwise", "dense"])):
        bits = [1, 2, 3, 4, 5][i % 5]
        label = f"shift {op} b{bits} ->codes L{levels}"
        few = levels == 256
        if op == "dense":
            cases.append(shift_case(rng, label, op, batch=1 + i % 2, cin=[7, 33, 64][i % 3],
                                    cout=3 if few else [5, 33, 40][i % 3], bits=bits,
                                    output_kind="codes", levels=levels))
            continue
        cin = [3, 8, 5][i % 3] if op == "conv" else (4 if few else [7, 16, 4][i % 3])
        cases.append(shift_case(
            rng, label, op, batch=1 + i % 2, height=4, width=5, cin=cin,
            cout=3 if few else [5, 9, 33][i % 3], kh=3, kw=3, stride=(1 + i % 2, 1),
            padding=["same", "valid"][i % 2], depth_multiplier=1 + (i // 3) % 2, bits=bits,
            output_kind="codes", levels=levels))
    # live-code lists (flash): every code width, one and two terms, each output kind,
    # odd Cout, rows from all dead to none dead; batch 2 ignores them
    for i, bits in enumerate([1, 2, 3, 4, 5, 4, 2]):
        kind = ["int8", "packed", "codes"][i % 3]
        cases.append(shift_case(
            rng, f"shift dense lists b{bits} ->{kind}", "dense", batch=1 + (i == 6),
            cin=[90, 300, 64, 33, 130, 200, 17][i], cout=[33, 7, 40, 5, 9, 33, 3][i], bits=bits,
            terms=1 + (i % 4 == 1), output_kind=kind, levels=4 if kind == "codes" else 0,
            dead_words=[0.9, 0.6, 1.0, 0.0, 0.8, 0.95, 0.5][i], code_lists=True))
    # every word dead, and none
    cases.append(shift_case(rng, "shift conv all words dead", "conv", height=4, width=4, cin=8,
                            cout=9, kh=3, kw=3, dead_words=1.0))
    cases.append(shift_case(rng, "shift dense no word dead", "dense", cin=70, cout=6,
                            dead_words=0.0))
    return cases


def rejected_shift_cases(rng) -> List[KernelCase]:
    """Malformed calls of the shift ops: the target must reject each like the host."""
    conv = shift_case(rng, "shift conv base", "conv", height=4, width=4, cin=3, cout=5, kh=3,
                      kw=3, bits=3, terms=2)
    packed = shift_case(rng, "shift dense packed base", "dense", cin=20, cout=6, bits=2,
                        output_kind="packed")
    big_entry = conv.inputs[2].copy()
    big_entry[0, 3] = 2**14 + 1
    stray_bit = conv.inputs[1].copy()
    stray_bit[2, 0] |= np.int32(1 << 31)  # above the word's last code
    no_direction = conv.inputs[3].copy()
    no_direction[4, 0] = 0
    one_class_m1 = conv.inputs[3].copy()
    one_class_m1[1, 3] = 5
    two_classes = np.concatenate([packed.inputs[2]] * 2)
    listed = shift_case(rng, "shift dense lists base", "dense", cin=40, cout=5, bits=4,
                        dead_words=0.7, code_lists=True)
    bad_start, bad_entry = listed.inputs[4].copy(), listed.inputs[4].copy()
    bad_start[2] = bad_start[1] - 1
    bad_entry[-1] ^= 1 << 16  # another tap
    return [
        rejected(listed, "reject shift code lists start", inputs=[*listed.inputs[:4], bad_start]),
        rejected(listed, "reject shift code lists entry", inputs=[*listed.inputs[:4], bad_entry]),
        rejected(listed, "reject shift code lists short",
                 inputs=[*listed.inputs[:4], listed.inputs[4][:listed.filter.shape[0]].copy()]),
        rejected(conv, "reject shift code table entry", inputs=[*conv.inputs[:2], big_entry,
                                                                conv.inputs[3]]),
        rejected(conv, "reject shift codes padding bit", filter=stray_bit),
        rejected(conv, "reject shift transform d", inputs=[*conv.inputs[:3], no_direction]),
        rejected(conv, "reject shift M1 with one class", inputs=[*conv.inputs[:3], one_class_m1]),
        rejected(conv, "reject shift codes one word short", filter=conv.inputs[1][:, :-1].copy()),
        rejected(conv, "reject shift terms 0", options=with_options(conv.options, terms=0)),
        rejected(packed, "reject shift activation with packed output",
                 options=with_options(packed.options, activation_min=-5)),
        rejected(packed, "reject shift two classes with packed output",
                 inputs=[*packed.inputs[:2], two_classes, packed.inputs[3]]),
    ] + rejected_codes_cases(rng)


def rejected_codes_cases(rng) -> List[KernelCase]:
    """Malformed calls of the codes output (output_levels)."""
    codes = shift_case(rng, "shift conv codes base", "conv", height=4, width=4, cin=3, cout=5,
                       kh=3, kw=3, bits=3, output_kind="codes", levels=4)
    dense = int8_fc_case(rng, "fc int8 codes base", batch=2, cin=9, cout=4, output_kind="codes",
                         levels=3)
    unsorted = codes.inputs[3].copy()
    unsorted[2, 2:] = [5, 4, 6]
    high_base = codes.inputs[3].copy()
    high_base[3, 1] = 125  # 127 - 3 is the highest base of 4 levels
    low_base = dense.inputs[2].copy()
    low_base[1, 1] = -129
    direction = dense.inputs[2].copy()
    direction[0, 0] = 0
    table = codes.inputs[2]
    return [
        rejected(codes, "reject codes unsorted thresholds", inputs=[*codes.inputs[:3], unsorted]),
        rejected(codes, "reject codes base above 127 - L", inputs=[*codes.inputs[:3], high_base]),
        rejected(codes, "reject codes transform columns",
                 inputs=[*codes.inputs[:3], codes.inputs[3][:, :-1].copy()]),
        rejected(codes, "reject codes with activation clamp",
                 options=with_options(codes.options, activation_max=100)),
        rejected(codes, "reject output_levels 1", options=with_options(codes.options,
                                                                       output_levels=1)),
        rejected(codes, "reject output_levels 257", options=with_options(codes.options,
                                                                         output_levels=257)),
        rejected(codes, "reject codes with two classes",
                 inputs=[*codes.inputs[:2], np.concatenate([table, table]), codes.inputs[3]]),
        rejected(codes, "reject codes with packed output", output=np.zeros((1, 4, 4, 1), np.int32)),
        rejected(dense, "reject int8 codes base below -128", transform=low_base),
        rejected(dense, "reject int8 codes direction 0", transform=direction),
        rejected(dense, "reject int8 codes with int32_output",
                 options=with_options(dense.options, int32_output=1)),
        rejected(dense, "reject int8 codes with int32 output", output=np.zeros((2, 4), np.int32)),
    ]


# ----------------------------------------------------------------------------- case sets


def random_cases(seed: int = 0) -> List[KernelCase]:
    """The fixed random suite: every geometry/format combination on small tensors,
    shapes of the benchmark layers, and malformed calls."""
    rng = np.random.default_rng(seed)
    cases: List[KernelCase] = []
    combos = itertools.product([1, 3, 5], [1, 2], [1, 2], ["same", "valid"], [0, 1],
                               ["int8", "packed"], ["int8", "packed"])
    for i, (k, s, d, padding, pad_value, input_kind, output_kind) in enumerate(combos):
        if padding == "valid" and pad_value == 1:
            continue  # pad_value only matters with SAME
        cin = [1, 31, 32, 33, 64, 65, 70][i % 7]
        cout = [1, 5, 32, 37, 8, 64][i % 6]
        size = (k - 1) * d + 1 + 4 + i % 3
        cases.append(conv_case(
            rng, f"conv k{k} s{s} d{d} {padding} pad{pad_value} {input_kind}->{output_kind} "
                 f"cin{cin} cout{cout}",
            batch=1 + i % 2, height=size, width=size + 1, cin=cin, cout=cout, kh=k, kw=k,
            stride=(s, s), dilation=(d, d), padding=padding, pad_value=pad_value,
            input_kind=input_kind, output_kind=output_kind, index=i))
    mixed = [  # (kh, kw, sh, sw, dh, dw, padding, pad_value, cin, cout)
        (3, 5, 1, 2, 2, 1, "same", 0, 96, 67),
        (5, 3, 2, 1, 1, 3, "same", 1, 96, 67),
        (2, 4, 3, 1, 1, 1, "same", 0, 40, 33),
        (3, 1, 1, 1, 3, 1, "valid", 0, 130, 9),
        (1, 1, 1, 1, 1, 1, "valid", 0, 256, 64),
        (2, 2, 2, 2, 1, 1, "same", 1, 128, 36),
        # three taps of three words that are not a 3x3 window: a 1x3 filter dilated
        # across 65-96 channels (the whole-row 3x3 kernels must not take it)
        (1, 3, 1, 1, 1, 2, "same", 0, 80, 32),
        (1, 3, 1, 1, 1, 2, "valid", 0, 96, 64),
    ]
    for i, (kh, kw, sh, sw, dh, dw, padding, pad_value, cin, cout) in enumerate(mixed):
        for output_kind in ["int8", "packed"]:
            cases.append(conv_case(
                rng, f"conv {kh}x{kw} s{sh}x{sw} d{dh}x{dw} {padding} pad{pad_value} "
                     f"cin{cin} cout{cout} ->{output_kind}",
                batch=3 if i % 2 else 1, height=9, width=11, cin=cin, cout=cout, kh=kh, kw=kw,
                stride=(sh, sw), dilation=(dh, dw), padding=padding, pad_value=pad_value,
                output_kind=output_kind, index=i))
    # dilated SAME windows larger than the image: some windows have no valid tap
    cases.append(conv_case(rng, "conv tiny image, empty windows", batch=1, height=2, width=2,
                           cin=5, cout=3, kh=2, kw=2, dilation=(3, 3), index=1))
    # the benchmark layers' shapes (smaller images), every input/output format
    for cin, cout, size in [(32, 32, 8), (128, 128, 5), (64, 96, 6)]:
        for input_kind, output_kind in itertools.product(["int8", "packed"], repeat=2):
            cases.append(conv_case(
                rng, f"conv 3x3 same {size}x{size}x{cin}->{cout} {input_kind}->{output_kind}",
                batch=1, height=size, width=size, cin=cin, cout=cout, kh=3, kw=3,
                input_kind=input_kind, output_kind=output_kind, index=cin))
    for i, cin in enumerate([1, 31, 32, 33, 64, 65, 300, 1024]):
        for input_kind, output_kind in itertools.product(["int8", "packed"], repeat=2):
            # cin 1024 with 80 outputs, not the D1 benchmark's 256: the M55 image's 4 MB of constants
            cout = [1, 3, 4, 33, 70, 256, 5, 80][i]
            cases.append(fc_case(rng, f"fc cin{cin} cout{cout} {input_kind}->{output_kind}",
                                 batch=1 + i % 3, cin=cin, cout=cout, input_kind=input_kind,
                                 output_kind=output_kind, index=i))
    cases.extend(int8_output_cases(rng))
    for i, (k, s, padding, channels) in enumerate(itertools.product(
            [1, 2, 3], [1, 2], ["same", "valid"], [1, 32, 33, 70])):
        cases.append(maxpool_case(rng, f"maxpool {k}x{k} s{s} {padding} c{channels}",
                                  batch=1 + i % 2, height=7, width=6, channels=channels,
                                  kh=k, kw=k, stride=(s, s), padding=padding))
    for i, (k, s, padding, channels) in enumerate(itertools.product(
            [2, 3], [1, 2], ["same", "valid"], [1, 33, 70])):
        cases.append(maxpool_case(rng, f"maxpool or_mask {k}x{k} s{s} {padding} c{channels}",
                                  batch=1 + i % 2, height=7, width=6, channels=channels,
                                  kh=k, kw=k, stride=(s, s), padding=padding, or_mask=True))
    # int32 value output of the binary ops (small images: the vectors share 4 MB with
    # the Cortex-M55's constants)
    for i, (k, d, padding, pad_value) in enumerate(itertools.product(
            [1, 3], [1, 2], ["same", "valid"], [0, 1])):
        cin, cout = [1, 33, 64, 70][i % 4], [1, 5, 9, 37][i % 4]
        input_kind = ["int8", "packed"][i % 2]
        cases.append(conv_case(
            rng, f"conv values k{k} d{d} {padding} pad{pad_value} {input_kind} cin{cin} cout{cout}",
            batch=1 + i % 2, height=5, width=5, cin=cin, cout=cout, kh=k, kw=k,
            stride=(1 + i % 2, 1), dilation=(d, d), padding=padding, pad_value=pad_value,
            input_kind=input_kind, output_kind="values"))
    for i, cin in enumerate([1, 33, 64, 300]):
        for input_kind in ["int8", "packed"]:
            cases.append(fc_case(rng, f"fc values cin{cin} {input_kind}", batch=1 + i % 3,
                                 cin=cin, cout=[3, 40, 64, 7][i], input_kind=input_kind,
                                 output_kind="values"))
    # int8-input ops, packed and value outputs
    for i, (k, s, d, padding) in enumerate(itertools.product([1, 3], [1, 2], [1, 2],
                                                              ["same", "valid"])):
        cin, cout = [1, 3, 8, 17, 32][i % 5], [1, 5, 32, 33, 40][i % 5]
        for output_kind in ["packed", "values"]:
            cases.append(int8_conv_case(
                rng, f"conv int8 k{k} s{s} d{d} {padding} ->{output_kind} cin{cin} cout{cout}",
                batch=1, height=5 + i % 2, width=5, cin=cin, cout=cout, kh=k, kw=k,
                stride=(s, s), dilation=(d, d), padding=padding, output_kind=output_kind))
    cases.append(int8_conv_case(rng, "conv int8 3x5 s2x1 d1x2 same ->packed", batch=2,
                                height=7, width=8, cin=12, cout=70, kh=3, kw=5, stride=(2, 1),
                                dilation=(1, 2), output_kind="packed"))
    for i, cin in enumerate([1, 16, 100, 1024]):
        for output_kind in ["packed", "values"]:
            cases.append(int8_fc_case(rng, f"fc int8 cin{cin} ->{output_kind}", batch=1 + i % 3,
                                      cin=cin, cout=[1, 33, 64, 5][i], output_kind=output_kind))
    # int16 weights (a float kernel rounded by the converter) and residual inputs
    for i, output_kind in enumerate(["packed", "values", "values"]):
        cases.append(int8_conv_case(
            rng, f"conv int16 3x3 ->{output_kind}{' residual' if i == 2 else ''}", batch=1,
            height=6, width=5, cin=[1, 3, 8][i], cout=[32, 9, 12][i], kh=3, kw=3,
            stride=(1 + i % 2, 1), output_kind=output_kind, wide=True, residual=i == 2))
        cases.append(int8_fc_case(rng, f"fc int16 ->{output_kind}{' residual' if i == 2 else ''}",
                                  batch=2, cin=[7, 64, 90][i], cout=[3, 33, 8][i],
                                  output_kind=output_kind, wide=True, residual=i == 2))
    # the Cortex-M int8 kernels (int8_arm.c): stems of 1-3 input channels (windows of
    # 5, 9 and 14 int16 pairs), int8 and int16 weights, odd channel counts, both
    # paddings and strides, batch 2; fully-connected rows of every window size
    # (1-5 pairs stay in registers, longer ones run in blocks of 4)
    for i, (cin, wide, stride, padding) in enumerate(itertools.product(
            [1, 2, 3], [False, True], [1, 2], ["same", "valid"])):
        output_kind = ["packed", "values"][i % 2]
        cases.append(int8_conv_case(
            rng, f"conv stem cin{cin} {'int16' if wide else 'int8'} s{stride} {padding} "
                 f"->{output_kind}", batch=2, height=5 + i % 2, width=5, cin=cin,
            cout=[33, 5, 64, 7][i % 4], kh=3, kw=3, stride=(stride, stride), padding=padding,
            output_kind=output_kind, wide=wide))
    for i, cin in enumerate([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 17]):
        cases.append(int8_fc_case(rng, f"fc int8 window cin{cin}", batch=1 + i % 2, cin=cin,
                                  cout=[3, 32, 35][i % 3], output_kind=["packed", "values"][i % 2],
                                  wide=i % 3 == 1))
    # the codes output of the int8-input ops
    for i, levels in enumerate(CODE_LEVELS):
        few = levels == 256
        cases.append(int8_conv_case(
            rng, f"conv int8 ->codes L{levels}", batch=1 + i % 2, height=5, width=4,
            cin=[3, 8, 5][i % 3], cout=3 if few else [5, 33, 9][i % 3], kh=3, kw=3,
            stride=(1 + i % 2, 1), padding=["same", "valid"][i % 2], output_kind="codes",
            wide=i == 3, levels=levels))
        cases.append(int8_fc_case(rng, f"fc int8 ->codes L{levels}", batch=1 + i % 2,
                                  cin=[7, 64, 33][i % 3], cout=3 if few else [33, 5, 40][i % 3],
                                  output_kind="codes", wide=i == 2, levels=levels))
    cases.append(int8_conv_case(rng, "conv int8 ->values residual", batch=2, height=4, width=4,
                                cin=5, cout=7, kh=3, kw=3, output_kind="values", residual=True))
    cases.append(with_residual(rng, conv_case(
        rng, "conv values residual", batch=1, height=5, width=5, cin=33, cout=9, kh=3, kw=3,
        padding="same", pad_value=1, input_kind="packed", output_kind="values")))
    cases.append(with_residual(rng, fc_case(rng, "fc values residual", batch=2, cin=70, cout=5,
                                            input_kind="packed", output_kind="values")))
    for pixels, channels, group in [(3, 40, None), (2, 45, 5), (1, 96, 32), (4, 33, 33)]:
        cases.append(unpack_op_case(rng, f"unpack op c{channels} g{group}", pixels=pixels,
                                    channels=channels, group=group))
    for shape, int32_input in [((40,), False), ((2, 33), True), ((1, 3, 4, 70), False),
                               ((2, 2, 2, 32), True), ((3, 1, 5), False)]:
        cases.append(binarize_case(rng, f"binarize {'int32' if int32_input else 'int8'} "
                                        f"{'x'.join(map(str, shape))}", shape=shape,
                                   int32_input=int32_input))
    for channels in [1, 31, 32, 33, 64, 65, 300]:
        zero_point = int(rng.integers(-30, 31))
        cases.append(pack_case(rng, f"pack c{channels} zp{zero_point}", shape=(2, 3, channels),
                               zero_point=zero_point))
        cases.append(unpack_case(rng, f"unpack c{channels}", pixels=5, channels=channels,
                                 positive=127, negative=-128))
    cases.extend(shift_cases(rng))
    cases.extend(kbit_cases(rng))
    cases.extend(uniform_dense_cases(rng))
    cases.extend(rejected_cases(rng))
    return cases


def rejected_cases(rng) -> List[KernelCase]:
    """Malformed calls: the target must reject each with the host's exact message."""
    conv = conv_case(rng, "conv base", batch=1, height=6, width=6, cin=40, cout=5, kh=3, kw=3,
                     index=1)
    fc = fc_case(rng, "fc base", batch=2, cin=40, cout=6, output_kind="packed")
    bad_filter = conv.filter.copy()
    bad_filter.view(np.uint32)[2, 1, 1, -1] |= np.uint32(1 << 31)  # a padding bit set
    bad_transform = conv.transform.copy()
    bad_transform[3, 3] = 40  # shift outside [-31, 31]
    return [
        rejected(conv, "reject truncated options", options=conv.options[:-3]),
        rejected(conv, "reject unknown option", options=conv.options.replace(b"pad_value", b"pad_vxlue")),
        rejected(conv, "reject filter padding bits", filter=bad_filter),
        rejected(conv, "reject transform shift", transform=bad_transform),
        rejected(conv, "reject transform shape", transform=conv.transform[:, :2].copy()),
        rejected(fc, "reject fc weights shape", filter=fc.filter[:, :1].copy()),
        rejected(fc, "reject fc int8 output without options", output=np.zeros((2, 6), np.int8)),
    ] + rejected_new_op_cases(rng) + rejected_shift_cases(rng) + rejected_kbit_cases(rng)


def rejected_new_op_cases(rng) -> List[KernelCase]:
    """Malformed calls of the ops and variants added with the op table."""
    pool = maxpool_case(rng, "maxpool base", batch=1, height=4, width=4, channels=40, kh=2, kw=2,
                        stride=(2, 2), padding="valid", or_mask=True)
    bad_mask = pool.inputs[1].copy()
    bad_mask.view(np.uint32)[-1] |= np.uint32(1 << 31)  # a padding bit set
    conv8 = int8_conv_case(rng, "conv int8 base", batch=1, height=5, width=5, cin=4, cout=6,
                           kh=3, kw=3, output_kind="values")
    bad_weights = conv8.inputs[1].copy()
    bad_weights[1, 1, 1, 1] = -128
    bad_shift = conv8.inputs[2].copy()
    bad_shift[2, 1] = 41
    values = conv_case(rng, "conv values base", batch=1, height=5, width=5, cin=40, cout=5,
                       kh=3, kw=3, output_kind="values")
    binarize = binarize_case(rng, "binarize base", shape=(2, 40), int32_input=False)
    packed8 = int8_conv_case(rng, "conv int8 packed base", batch=1, height=5, width=5, cin=4,
                             cout=6, kh=3, kw=3, output_kind="packed")
    unpack = unpack_op_case(rng, "unpack base", pixels=2, channels=45, group=5)
    return [
        rejected(pool, "reject or_mask padding bits", inputs=[pool.input, bad_mask]),
        rejected(pool, "reject or_mask shape", inputs=[pool.input, pool.inputs[1][:1].copy()]),
        rejected(conv8, "reject int8 weight -128", filter=bad_weights),
        rejected(conv8, "reject value shift 41", transform=bad_shift),
        rejected(conv8, "reject int8 conv packed transform for values",
                 transform=conv8.inputs[2][:, :2].copy()),
        rejected(values, "reject binary values transform [Cout, 4]",
                 transform=np.zeros((5, 4), np.int32)),
        rejected(binarize, "reject binarize option key", options=with_options(b"", channels=40)),
        rejected(binarize, "reject binarize two inputs",
                 inputs=[binarize.input, binarize.input]),
        rejected(conv8, "reject residual shape",
                 inputs=list(conv8.inputs) + [np.zeros((1, 5, 5, 5), np.int32)]),
        rejected(packed8, "reject residual with packed output",
                 inputs=list(packed8.inputs) + [np.zeros((1, 5, 5, 6), np.int32)]),
        rejected(unpack, "reject unpack group", options=with_options(
            b"", channels=45, positive=1, negative=-1, group=4)),
    ]


# ----------------------------------------------------------------------------- model layers


def quantize_input(flatbuffer: bytes, samples) -> np.ndarray:
    """Float samples [n, ...] -> the model's int8 input codes (TFLite's QUANTIZE rounding)."""
    from tfq_plus.converters import tflite_schema as schema

    model = schema.read(bytes(flatbuffer))
    graph = model.subgraphs[0]
    scale, zero_point = schema.per_tensor_quantization(graph.tensors[graph.inputs[0]])
    scaled = np.asarray(samples, np.float64) / scale
    rounded = np.sign(scaled) * np.floor(np.abs(scaled) + 0.5)  # half away from zero
    return np.clip(rounded + zero_point, -128, 127).astype(np.int8)


def model_cases(deploy: bytes, inputs, prefix: str) -> List[KernelCase]:
    """Every TFQP op call of a deploy model on real inputs (int8 codes, one sample per
    row): the op's constant inputs and options from the flatbuffer, the tensors it
    receives when the whole model runs on the host (``Interpreter``: builtin ops in
    TFLite Micro, TFQP ops in the host build), and the host output."""
    from tfq_plus.converters import tflite_schema as schema
    from tfq_plus.converters.interpreter import Interpreter
    from tfq_plus.converters.ops.registry import is_tfqp

    interpreter = Interpreter(deploy, keep_tensors=True)
    model = interpreter.model
    graph = model.subgraphs[0]
    ops = [op for op in graph.operators if is_tfqp(schema.op_name(model, op))]
    cases: List[KernelCase] = []
    for sample in inputs:
        interpreter.invoke([np.asarray(sample)[None]])
        for index, op in enumerate(ops):
            name = schema.op_name(model, op)
            label = f"{prefix} op {index} {name}"
            options = bytes(np.asarray(op.customOptions if op.customOptions is not None else [],
                                       dtype=np.uint8))
            tensors = [graph.tensors[t] for t in op.inputs]
            arrays = []
            for t, tensor in zip(op.inputs, tensors):
                data = schema.constant(model, tensor)
                arrays.append(np.ascontiguousarray(data if data is not None else interpreter.tensor(int(t))))
            output = np.ascontiguousarray(interpreter.tensor(int(op.outputs[0])))
            input_q = schema.per_tensor_quantization(tensors[0])
            output_q = schema.per_tensor_quantization(graph.tensors[op.outputs[0]])
            cases.append(KernelCase(
                label, name, arrays, output, options,
                input_q[1] if input_q and arrays[0].dtype == np.int8 else 0,
                output_q[1] if output_q and output.dtype == np.int8 else 0))
    return cases


# ----------------------------------------------------------------------------- C source


class DataBlob:
    """The data of generated C sources as one binary file linked into the image.

    Large tables as C initializers take the compiler seconds per megabyte; the
    assembler copies a binary file with ``.incbin`` at once. Every block starts on a
    16-byte boundary; C initializers refer to blocks as ``<symbol> + <offset>``."""

    def __init__(self, symbol: str):
        self.symbol = symbol
        self.data = bytearray()

    def add(self, data: bytes) -> str:
        """Appends ``data``; returns a C expression for its address."""
        self.data.extend(b"\0" * (-len(self.data) % 16))
        offset = len(self.data)
        self.data.extend(data)
        return f"(const void *)({self.symbol} + {offset}u)"

    def declaration(self, path) -> str:
        """C code that links ``path`` (where :meth:`write` puts the data) as ``symbol``."""
        quoted = str(Path(path).resolve()).replace("\\", "\\\\").replace('"', '\\"')
        return (
            f'__asm__(".section .rodata.{self.symbol}, \\"a\\"\\n"\n'
            f'        ".balign 16\\n"\n'
            f'        "{self.symbol}:\\n"\n'
            f'        ".incbin \\"{quoted}\\"\\n"\n'
            f'        ".previous\\n");\n'
            f"extern const uint8_t {self.symbol}[];\n"
        )

    def write(self, path) -> None:
        Path(path).write_bytes(bytes(self.data))


def c_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def c_tensor(blob: DataBlob, array: Optional[np.ndarray], zero_point: int, what: str) -> str:
    """A ``kernel_case_tensor`` initializer whose data goes into ``blob``."""
    if array is None:
        return "{0, 0, {0, 0, 0, 0, 0, 0}, 0, 0, 0}"
    if array.dtype == np.int8:
        kind = _TYPE_INT8
    elif array.dtype == np.int32:
        kind = _TYPE_INT32
    elif array.dtype == np.int16:
        kind = _TYPE_INT16
    else:
        raise ValueError(f"kernel_vectors: {what} has dtype {array.dtype}; int8, int16 or int32 allowed")
    if array.ndim > MAX_RANK:
        raise ValueError(f"kernel_vectors: {what} has rank {array.ndim}; at most {MAX_RANK} "
                         "allowed")
    data = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<")).tobytes()
    dims = list(array.shape) + [0] * (MAX_RANK - array.ndim)
    return (f"{{{kind}, {array.ndim}, {{{', '.join(map(str, dims))}}}, {zero_point}, "
            f"{blob.add(data)}, {len(data)}u}}")


def c_inputs(blob: DataBlob, inputs, input_zero_point: int, what: str) -> str:
    """``input_count, {inputs[TFQP_OP_MAX_INPUTS]}`` of an op call (input 0 carries the
    int8 zero point)."""
    if len(inputs) > MAX_INPUTS:
        raise ValueError(f"kernel_vectors: {what} has {len(inputs)} inputs; at most "
                         f"{MAX_INPUTS} allowed")
    tensors = [c_tensor(blob, array, input_zero_point if index == 0 else 0,
                        f"{what}: input {index}") for index, array in enumerate(inputs)]
    tensors += [c_tensor(blob, None, 0, what)] * (MAX_INPUTS - len(inputs))
    return f"{len(inputs)}u, {{" + ",\n    ".join(tensors) + "}"


def c_options(blob: DataBlob, options: bytes) -> str:
    return f"(const uint8_t *){blob.add(options)}, {len(options)}u" if options else "0, 0u"


def c_case(blob: DataBlob, case: KernelCase) -> str:
    """A ``kernel_test_case`` initializer."""
    args = list(case.args) + [0] * (3 - len(case.args))
    error = c_string(case.expected_error) if case.expected_error is not None else "0"
    return (f"  {{{c_string(case.name)}, {c_string(case.op)}, {c_options(blob, case.options)},\n   "
            + c_inputs(blob, case.inputs, case.input_zero_point, case.name) + ",\n   "
            + c_tensor(blob, case.output, case.output_zero_point, f"{case.name}: output")
            + f",\n   {{{', '.join(map(str, args))}}}, {error}}}")


def write_c_source(cases: Sequence[KernelCase], path) -> None:
    """Writes ``path`` (C: ``kernel_test_cases`` / ``kernel_test_case_count`` of
    kernel_test_case.h) and, beside it, ``<path>.bin`` with the tensors' bytes."""
    path = Path(path)
    blob = DataBlob("kernel_test_data")
    rows: List[str] = []
    for case in cases:
        rows.append(c_case(blob, case))
    data_path = path.with_name(path.name + ".bin")
    blob.write(data_path)
    path.write_text(
        "/* Generated by micro/cortex_m/kernel_vectors.py from the host build's outputs. */\n"
        '#include "kernel_test_case.h"\n\n'
        + blob.declaration(data_path)
        + "\nconst kernel_test_case kernel_test_cases[] = {\n"
        + ",\n".join(rows)
        + "};\n"
        + f"const uint32_t kernel_test_case_count = {len(cases)}u;\n",
        encoding="ascii",
    )
