"""Exact instruction counts of the TFQP kernels on Cortex-M4 (qemu-system-arm).

    python benchmarks/mcu_cycles.py                # table of the LAYERS below
    python benchmarks/mcu_cycles.py --markdown     # the README table
    python benchmarks/mcu_cycles.py --only M1      # layers whose name starts with M1
    python benchmarks/mcu_cycles.py --cmsis-nn DIR # with CMSIS-NN's int8 kernels (README)

Every layer of LAYERS is built into one bare-metal image (micro/cortex_m/bench) with
random data; the image calls each kernel between two calls of a marker function and a
QEMU TCG plugin (micro/cortex_m/insn_count_plugin.c) logs how many guest instructions
had executed at each marker. A kernel call's count is the difference of its two
markers minus the difference of an empty marker pair (the BX/BL of the markers).
The numbers are exact and deterministic: the image runs twice and both runs must
give the same counts. Before any number is trusted, the counter is validated on a
loop whose count is known exactly (micro/cortex_m/bench/count_loop.S). Every call's
output is checked against the host build (TFQP ops) or a numpy int8 reference
(baselines), so a fast wrong kernel cannot be reported.

CMSIS-NN's own int8 kernels (arm_convolve_wrapper_s8, arm_depthwise_conv_wrapper_s8,
arm_fully_connected_s8) and int4-weight kernels (arm_convolve_wrapper_s4,
arm_fully_connected_s4: int4-range weights packed two per byte, int8 activations) are
rows too when a CMSIS-NN source tree is given (``--cmsis-nn`` or ``CMSIS_NN_PATH``; the
README names the commit TFLite Micro pins): the image then
compiles its integer sources as TFLite Micro does (-O2) and calls them through
micro/cortex_m/bench/cmsis_nn_baseline.c; their code bytes are the functions the call can
reach in the linked image. Without a tree those rows are left out.

"Instructions per MAC" divides by multiply-accumulates: binary MACs (one per weight
bit per output) for the TFQP ops, int8 MACs for the baselines; max-pool and packing
are reported per output / input element. Code size: ``arm-none-eabi-size`` text of
the kernel's object files at -O2 (for the TFQP ops: validation, table set-up and
eval, with the shared output transform binary_output.o).

Adding a layer is one row in LAYERS; adding a kernel is one row in KERNELS (a builder
that makes its data and expected output). TFQP ops run through the C op table in
bench_main.c (set-up with the row's parse / prepare / init_table, the measured call is
the row's eval); only baselines need their own case there.
"""

import argparse
import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, NamedTuple, Optional

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "micro" / "cortex_m"))
sys.path.insert(0, str(ROOT / "benchmarks"))

import tfq_plus  # noqa: E402,F401  (selects Keras 2 before TensorFlow)

import kernel_vectors  # noqa: E402
import qemu_runner  # noqa: E402
import shift_layers  # noqa: E402

COUNT_LOOP_N = 1000  # bench_main.c


# ----------------------------------------------------------------------------- layers


@dataclass(frozen=True)
class Layer:
    """One benchmark row: a name, the kernel (key of KERNELS) and its shape arguments."""

    name: str
    kernel: str
    shape: tuple  # (key, value) pairs: kept hashable

    def arg(self, key, default=None):
        return dict(self.shape).get(key, default)


def _layer(name, kernel, **shape):
    return Layer(name, kernel, tuple(sorted(shape.items())))


M1 = dict(height=16, width=16, cin=32, cout=32, k=3)
L2 = dict(height=8, width=8, cin=128, cout=128, k=3)
D1 = dict(cin=1024, cout=256)
DW = dict(height=16, width=16, channels=64, k=3)
# the firmware BNN's float stem (micro/examples/cortex_m4/firmware_inputs.py) and a
# three-channel (RGB) stem
S1 = dict(height=28, width=28, cin=1, cout=32, k=3, stride=2)
S3 = dict(height=32, width=32, cin=3, cout=32, k=3)
# the first layer of the k-bit models of benchmarks/accuracy.py (PACT / LSQ): the int8
# image in, 16-level codes out, packed (benchmarks/kbit_arena.py)
K1 = dict(height=28, width=28, cin=1, cout=32, k=3)

LAYERS = [
    _layer("M1 shift conv2d 4-bit po2", "shift_conv2d", **M1, weights="po2"),
    _layer("M1 shift conv2d 4-bit po2, 75 % pruned", "shift_conv2d", **M1, weights="po2",
           pruned=75),
    _layer("M1 shift conv2d ternary", "shift_conv2d", **M1, weights="ternary"),
    _layer("M1 shift conv2d binary weights", "shift_conv2d", **M1, weights="binary"),
    _layer("M1 bconv2d packed->packed", "bconv2d", **M1, input="packed", output="packed"),
    _layer("M1 bconv2d packed->int8", "bconv2d", **M1, input="packed", output="int8"),
    _layer("M1 bconv2d int8->packed", "bconv2d", **M1, input="int8", output="packed"),
    _layer("M1 shift conv2d 4-bit uniform, 4-bit act", "shift_conv2d", **M1, weights="uniform4",
           activation_bits=4),
    _layer("M1 shift conv2d 2-bit uniform, 4-bit act", "shift_conv2d", **M1, weights="uniform2",
           activation_bits=4),
    _layer("M1 int8 conv2d", "int8_conv2d", **M1),
    _layer("M1 CMSIS-NN int8 conv2d", "cmsis_nn_conv2d", **M1),
    _layer("M1 CMSIS-NN int4-weight conv2d (s4)", "cmsis_nn_conv2d_s4", **M1, weight_bits=4),
    _layer("L2 shift conv2d 4-bit po2", "shift_conv2d", **L2, weights="po2"),
    _layer("L2 shift conv2d ternary", "shift_conv2d", **L2, weights="ternary"),
    _layer("L2 bconv2d packed->packed", "bconv2d", **L2, input="packed", output="packed"),
    _layer("L2 bconv2d packed->int8", "bconv2d", **L2, input="packed", output="int8"),
    _layer("L2 shift conv2d 4-bit uniform, 4-bit act", "shift_conv2d", **L2, weights="uniform4",
           activation_bits=4),
    _layer("L2 shift conv2d 2-bit uniform, 4-bit act", "shift_conv2d", **L2, weights="uniform2",
           activation_bits=4),
    _layer("L2 int8 conv2d", "int8_conv2d", **L2),
    _layer("L2 CMSIS-NN int8 conv2d", "cmsis_nn_conv2d", **L2),
    _layer("L2 CMSIS-NN int4-weight conv2d (s4)", "cmsis_nn_conv2d_s4", **L2, weight_bits=4),
    _layer("D1 shift fully_connected 4-bit po2", "shift_fully_connected", **D1, weights="po2"),
    _layer("D1 shift fully_connected 4-bit po2, 75 % pruned", "shift_fully_connected", **D1,
           weights="po2", pruned=75),
    _layer("D1 shift fully_connected 4-bit po2, 75 % pruned, code lists",
           "shift_fully_connected", **D1, weights="po2", pruned=75, code_lists=True),
    _layer("D1 shift fully_connected ternary", "shift_fully_connected", **D1,
           weights="ternary"),
    _layer("D1 bfully_connected packed->packed", "bfully_connected", **D1, input="packed",
           output="packed"),
    _layer("D1 bfully_connected packed->int8", "bfully_connected", **D1, input="packed",
           output="int8"),
    _layer("D1 shift fully_connected 4-bit uniform, 4-bit act", "shift_fully_connected", **D1,
           weights="uniform4", activation_bits=4),
    _layer("D1 shift fully_connected 2-bit uniform, 4-bit act", "shift_fully_connected", **D1,
           weights="uniform2", activation_bits=4),
    _layer("D1 int8 fully_connected", "int8_fully_connected", **D1),
    _layer("D1 CMSIS-NN int8 fully_connected", "cmsis_nn_fully_connected", **D1),
    _layer("D1 CMSIS-NN int4-weight fully_connected (s4)", "cmsis_nn_fully_connected_s4", **D1,
           weight_bits=4),
    _layer("DW shift depthwise 16x16x64 3x3 4-bit po2", "shift_depthwise", **DW, weights="po2"),
    _layer("DW shift depthwise 16x16x64 3x3 ternary", "shift_depthwise", **DW,
           weights="ternary"),
    _layer("DW int8 depthwise 16x16x64 3x3", "int8_depthwise", **DW),
    _layer("DW CMSIS-NN int8 depthwise 16x16x64 3x3", "cmsis_nn_depthwise", **DW),
    _layer("S1 TFQP_CONV2D_INT8 28x28x1->14x14x32 3x3/2, int16 weights ->packed",
           "conv2d_int8", **S1, wide=True),
    _layer("S1 TFQP_CONV2D_INT8, int8 weights ->packed", "conv2d_int8", **S1),
    _layer("S1 CMSIS-NN int8 conv2d 28x28x1->14x14x32 3x3/2", "cmsis_nn_conv2d", **S1),
    _layer("S3 TFQP_CONV2D_INT8 32x32x3->32 3x3, int8 weights ->packed", "conv2d_int8", **S3),
    _layer("S3 CMSIS-NN int8 conv2d 32x32x3->32 3x3", "cmsis_nn_conv2d", **S3),
    _layer("K1 TFQP_CONV2D_INT8 28x28x1->28x28x32 3x3, int8 weights ->packed 4-bit codes",
           "conv2d_int8", **K1, output_bits=4),
    _layer("K1 CMSIS-NN int8 conv2d 28x28x1->28x28x32 3x3", "cmsis_nn_conv2d", **K1),
    _layer("D1 TFQP_FULLY_CONNECTED_INT8 1024->256, int8 weights ->packed",
           "fully_connected_int8", **D1),
    _layer("P1 bmaxpool2d 16x16x32 2x2/2", "bmaxpool2d", height=16, width=16, channels=32, k=2,
           stride=2),
    _layer("Q1 pack int8 16x16x32", "pack", height=16, width=16, channels=32),
]


# ----------------------------------------------------------------------------- int8 reference


def multiply_by_quantized_multiplier(x, multiplier, shift):
    """TFLite's MultiplyByQuantizedMultiplier (gemmlowp SaturatingRoundingDoublingHighMul,
    then RoundingDivideByPOT), in int64 numpy."""
    x = np.asarray(x, np.int64)
    multiplier = np.broadcast_to(np.asarray(multiplier, np.int64), x.shape)
    shift = np.broadcast_to(np.asarray(shift, np.int64), x.shape)
    left, right = np.maximum(shift, 0), np.maximum(-shift, 0)
    a = ((x << left) + 2**31) % 2**32 - 2**31
    ab = a * multiplier
    total = ab + np.where(ab >= 0, 1 << 30, 1 - (1 << 30))
    high = np.where(total >= 0, total // 2**31, -((-total) // 2**31))
    high = np.where((a == -(2**31)) & (multiplier == -(2**31)), 2**31 - 1, high)
    mask = (np.int64(1) << right) - 1
    return (high >> right) + ((high & mask) > ((mask >> 1) + (high < 0)))


def int8_conv_reference(x, w, bias, multiplier, shift, zp_in, zp_out, pad, depthwise=False,
                        stride=1):
    """TFLite int8 (depthwise) convolution, zero-point padding (``pad``: before the first
    row and column); x [H,W,C]. The stride-1 outputs whose windows start at multiples of
    ``stride`` are the strided ones."""
    h, wd, _ = x.shape
    kh, kw = w.shape[1:3]
    xq = np.pad(x.astype(np.int64) - zp_in, ((pad[0], kh - 1 - pad[0]), (pad[1], kw - 1 - pad[1]),
                                            (0, 0)))
    acc = np.zeros((h, wd, w.shape[0] if not depthwise else w.shape[3]), np.int64)
    for ky in range(kh):
        for kx in range(kw):
            window = xq[ky:ky + h, kx:kx + wd, :]
            if depthwise:
                acc += window * w[0, ky, kx, :].astype(np.int64)
            else:
                acc += window @ w[:, ky, kx, :].astype(np.int64).T
    acc = acc[::stride, ::stride] + bias
    out = multiply_by_quantized_multiplier(acc, multiplier, shift) + zp_out
    return np.clip(out, -128, 127).astype(np.int8)


def _requant_rows(rng, count, taps):
    multiplier = rng.integers(2**30, 2**31, size=count)
    shift = np.full(count, -int(np.round(np.log2(np.sqrt(taps) * 127 * 128 / 60.0))))
    return multiplier.astype(np.int32), shift.astype(np.int32)


# ----------------------------------------------------------------------------- builders


BENCH_OP, BENCH_PACK, BENCH_INT8_CONV2D, BENCH_INT8_DEPTHWISE, BENCH_INT8_FC = 1, 4, 5, 6, 7
BENCH_CMSIS_NN_CONV2D, BENCH_CMSIS_NN_DEPTHWISE, BENCH_CMSIS_NN_FC = 8, 9, 10
BENCH_CMSIS_NN_CONV2D_S4, BENCH_CMSIS_NN_FC_S4 = 11, 12


class BenchCase(NamedTuple):
    kind: int  # bench_kind of bench_layer.h (BENCH_OP: an op of the C op table)
    inputs: list  # the op's inputs in order (baselines: input, filter)
    output: np.ndarray  # expected
    macs: int  # work units the per-MAC column divides by
    unit: str
    options: bytes = b""
    op: str = ""  # BENCH_OP: the op's name
    input_zero_point: int = 0
    output_zero_point: int = 0
    int8: tuple = ()  # bench_int8_conv_params fields
    bias: Optional[np.ndarray] = None
    multiplier: Optional[np.ndarray] = None
    shift: Optional[np.ndarray] = None
    pack_zero_point: int = 0


def build_bconv2d(rng, layer):
    h, w, cin, cout, k = (layer.arg(key) for key in ("height", "width", "cin", "cout", "k"))
    case = kernel_vectors.conv_case(rng, layer.name, batch=1, height=h, width=w, cin=cin,
                                    cout=cout, kh=k, kw=k, input_kind=layer.arg("input"),
                                    output_kind=layer.arg("output"), index=1)
    return BenchCase(BENCH_OP, case.inputs, case.output, h * w * cout * k * k * cin,
                     "binary MAC", case.options, case.op, case.input_zero_point,
                     case.output_zero_point)


def build_bfully_connected(rng, layer):
    cin, cout = layer.arg("cin"), layer.arg("cout")
    case = kernel_vectors.fc_case(rng, layer.name, batch=1, cin=cin, cout=cout,
                                  input_kind=layer.arg("input"), output_kind=layer.arg("output"),
                                  index=1)
    return BenchCase(BENCH_OP, case.inputs, case.output, cin * cout, "binary MAC", case.options,
                     case.op, case.input_zero_point, case.output_zero_point)


def build_bmaxpool2d(rng, layer):
    h, w, c, k, s = (layer.arg(key) for key in ("height", "width", "channels", "k", "stride"))
    case = kernel_vectors.maxpool_case(rng, layer.name, batch=1, height=h, width=w, channels=c,
                                       kh=k, kw=k, stride=(s, s), padding="valid")
    return BenchCase(BENCH_OP, case.inputs, case.output, int(np.prod(case.output.shape[:3])) * c,
                     "output value", case.options, case.op)


def build_pack(rng, layer):
    h, w, c = layer.arg("height"), layer.arg("width"), layer.arg("channels")
    case = kernel_vectors.pack_case(rng, layer.name, shape=(1, h, w, c), zero_point=3)
    return BenchCase(BENCH_PACK, case.inputs, case.output, h * w * c, "input value",
                     pack_zero_point=3)


def same_pad_before(size, k, stride):
    """TFLite's SAME padding before the first position (the smaller half)."""
    out = -(-size // stride)
    return max((out - 1) * stride + k - size, 0) // 2


def pack_int4(weights: np.ndarray) -> np.ndarray:
    """TFLite's (and CMSIS-NN's) INT4 tensor bytes: the values flattened, two per byte,
    the even element in the low nibble; an odd count leaves the last high nibble 0."""
    flat = np.asarray(weights, np.int64).reshape(-1) & 0xF
    if flat.size % 2:
        flat = np.append(flat, 0)
    return (flat[0::2] | flat[1::2] << 4).astype(np.uint8).view(np.int8)


def draw_weights(rng, shape, bits: int) -> np.ndarray:
    """Symmetric int8 weights [-127, 127], or (bits 4) the int4 range [-8, 7]."""
    low, high = (-8, 8) if bits == 4 else (-127, 128)
    return rng.integers(low, high, size=shape).astype(np.int8)


def _int8_conv(rng, layer, depthwise, kind=None):
    """An int8 (depthwise) convolution's data and expected bytes; a layer with
    ``weight_bits`` 4 draws int4-range weights, which the s4 kinds take packed."""
    h, w, k = layer.arg("height"), layer.arg("width"), layer.arg("k")
    stride = layer.arg("stride", 1)
    oh, ow = -(-h // stride), -(-w // stride)
    cin = layer.arg("channels") if depthwise else layer.arg("cin")
    cout = cin if depthwise else layer.arg("cout")
    zp_in, zp_out = -7, 5
    x = rng.integers(-128, 128, size=(1, h, w, cin)).astype(np.int8)
    weights = draw_weights(rng, (1, k, k, cin) if depthwise else (cout, k, k, cin),
                           layer.arg("weight_bits", 8))
    taps = k * k * (1 if depthwise else cin)
    bias = rng.integers(-5000, 5001, size=cout).astype(np.int32)
    multiplier, shift = _requant_rows(rng, cout, taps)
    pad = (same_pad_before(h, k, stride), same_pad_before(w, k, stride))
    expected = int8_conv_reference(x[0], weights, bias, multiplier, shift, zp_in, zp_out, pad,
                                   depthwise, stride)[None]
    params = (h, w, cin, oh, ow, cout, k, k, stride, stride, pad[0], pad[1], -zp_in, zp_out,
              -128, 127)
    if kind is None:
        kind = BENCH_INT8_DEPTHWISE if depthwise else BENCH_INT8_CONV2D
    filter_data = pack_int4(weights) if kind == BENCH_CMSIS_NN_CONV2D_S4 else weights
    return BenchCase(kind, [x, filter_data], expected, oh * ow * cout * taps, "int8 MAC",
                     input_zero_point=zp_in,
                     output_zero_point=zp_out, int8=params, bias=bias, multiplier=multiplier,
                     shift=shift)


def build_int8_fully_connected(rng, layer, kind=BENCH_INT8_FC):
    """Per-channel requantization for our baseline; CMSIS-NN's arm_fully_connected_s8
    (and _s4) take one multiplier (TFLite's int8 Dense is per-tensor), so its rows repeat
    row 0. ``weight_bits`` 4: int4-range weights (packed for the s4 kind)."""
    cin, cout = layer.arg("cin"), layer.arg("cout")
    zp_in, zp_out = 4, -3
    x = rng.integers(-128, 128, size=(1, cin)).astype(np.int8)
    weights = draw_weights(rng, (cout, cin), layer.arg("weight_bits", 8))
    bias = rng.integers(-5000, 5001, size=cout).astype(np.int32)
    multiplier, shift = _requant_rows(rng, cout, cin)
    if kind in (BENCH_CMSIS_NN_FC, BENCH_CMSIS_NN_FC_S4):
        multiplier, shift = np.full_like(multiplier, multiplier[0]), np.full_like(shift, shift[0])
    acc = (x.astype(np.int64) - zp_in) @ weights.astype(np.int64).T + bias
    expected = np.clip(multiply_by_quantized_multiplier(acc, multiplier, shift) + zp_out,
                       -128, 127).astype(np.int8)
    params = (1, 1, cin, 1, 1, cout, 1, 1, 1, 1, 0, 0, -zp_in, zp_out, -128, 127)
    filter_data = pack_int4(weights) if kind == BENCH_CMSIS_NN_FC_S4 else weights
    return BenchCase(kind, [x, filter_data], expected, cin * cout, "int8 MAC",
                     input_zero_point=zp_in, output_zero_point=zp_out, int8=params, bias=bias,
                     multiplier=multiplier, shift=shift)


def build_int8_op(rng, layer):
    """TFQP_CONV2D_INT8 / TFQP_FULLY_CONNECTED_INT8 with packed output (int16 weights with
    ``wide``; with ``output_bits`` the 2^output_bits-level codes output, packed),
    expected bytes from the host build."""
    wide = layer.arg("wide", False)
    output_bits = layer.arg("output_bits", 0)
    codes = dict(output_kind="codes", levels=1 << output_bits) if output_bits else {}
    if layer.kernel == "fully_connected_int8":
        cin, cout = layer.arg("cin"), layer.arg("cout")
        case = kernel_vectors.int8_fc_case(rng, layer.name, batch=1, cin=cin, cout=cout,
                                           wide=wide, **codes)
        macs = cin * cout
    else:
        k, stride = layer.arg("k"), layer.arg("stride", 1)
        case = kernel_vectors.int8_conv_case(
            rng, layer.name, batch=1, height=layer.arg("height"), width=layer.arg("width"),
            cin=layer.arg("cin"), cout=layer.arg("cout"), kh=k, kw=k, stride=(stride, stride),
            wide=wide, **codes)
        macs = int(np.prod(case.output.shape[:3])) * layer.arg("cout") * k * k * layer.arg("cin")
    if output_bits:
        case = kernel_vectors.packed_io_case(case, layer.name, output_bits=output_bits)
    return BenchCase(BENCH_OP, case.inputs, case.output, macs, "int8 MAC", case.options, case.op,
                     case.input_zero_point)


def needs_cmsis_nn(layer: Layer) -> bool:
    return layer.kernel.startswith("cmsis_nn")


def build_shift(rng, layer):
    """A shift op (benchmarks/shift_layers.py) whose expected bytes are the host build's."""
    op = {"shift_conv2d": "conv", "shift_depthwise": "depthwise",
          "shift_fully_connected": "dense"}[layer.kernel]
    if op == "depthwise":
        shape = dict(height=layer.arg("height"), width=layer.arg("width"),
                     cin=layer.arg("channels"), k=layer.arg("k"))
    elif op == "conv":
        shape = {key: layer.arg(key) for key in ("height", "width", "cin", "cout", "k")}
    else:
        shape = dict(cin=layer.arg("cin"), cout=layer.arg("cout"))
    activation_bits = layer.arg("activation_bits", 0)
    built = shift_layers.shift_layer(rng, op, layer.arg("weights"), pruned=layer.arg("pruned", 0),
                                     activation_bits=activation_bits,
                                     code_lists=layer.arg("code_lists", False), **shape)
    zp_in, zp_out = shift_layers.INPUT_ZERO_POINT, shift_layers.OUTPUT_ZERO_POINT
    if activation_bits:  # packed codes in and out: no zero points
        zp_in = zp_out = 0
    expected = kernel_vectors.run_host(built.spec.name, built.inputs, built.options,
                                       np.int32 if activation_bits else np.int8, zp_in, zp_out)
    return BenchCase(BENCH_OP, built.inputs, expected, built.macs, "int8 MAC", built.options,
                     built.spec.name, zp_in, zp_out)


class Kernel(NamedTuple):
    build: Callable  # (rng, Layer) -> BenchCase
    objects: tuple = ()  # object files of its code (code size)
    # or: the bench wrapper whose callees are the code (CMSIS-NN: every function its
    # call can reach in the linked image, libc's memcpy / memset not counted)
    code_root: str = ""


INT8_OP_OBJECTS = ("kernels/int8_op.o", "kernels/int8_arm.o", "kernels/value_output.o",
                   "kernels/level_output.o", "kernels/kbit_activations.o")
SHIFT_OBJECTS = ("kernels/shift_layer.o", "kernels/shift_op.o", "kernels/shift_arm.o",
                 "kernels/level_output.o", "kernels/kbit_activations.o")

KERNELS: Dict[str, Kernel] = {
    "shift_conv2d": Kernel(build_shift, ("kernels/shift_conv2d.o",) + SHIFT_OBJECTS),
    "shift_depthwise": Kernel(build_shift, ("kernels/shift_conv2d.o",) + SHIFT_OBJECTS),
    "shift_fully_connected": Kernel(build_shift, ("kernels/shift_fully_connected.o",
                                                  "kernels/kbit_arm.o") + SHIFT_OBJECTS),
    "bconv2d": Kernel(build_bconv2d, ("kernels/bconv2d.o", "kernels/binary_output.o",
                                      "kernels/xnor_arm.o")),
    "bfully_connected": Kernel(build_bfully_connected,
                               ("kernels/bfully_connected.o", "kernels/binary_output.o",
                                "kernels/xnor_arm.o")),
    "conv2d_int8": Kernel(build_int8_op, ("kernels/conv2d_int8.o",) + INT8_OP_OBJECTS),
    "fully_connected_int8": Kernel(build_int8_op,
                                   ("kernels/fully_connected_int8.o",) + INT8_OP_OBJECTS),
    "bmaxpool2d": Kernel(build_bmaxpool2d, ("kernels/bmaxpool2d.o",)),
    "pack": Kernel(build_pack, ("kernels/packing.o",)),
    "int8_conv2d": Kernel(lambda rng, layer: _int8_conv(rng, layer, False),
                          ("bench/int8_conv2d.o",)),
    "int8_depthwise": Kernel(lambda rng, layer: _int8_conv(rng, layer, True),
                             ("bench/int8_depthwise.o",)),
    "int8_fully_connected": Kernel(build_int8_fully_connected,
                                   ("bench/int8_fully_connected.o",)),
    # CMSIS-NN, built from its sources (--cmsis-nn)
    "cmsis_nn_conv2d": Kernel(
        lambda rng, layer: _int8_conv(rng, layer, False, BENCH_CMSIS_NN_CONV2D),
        code_root="bench_cmsis_nn_conv2d"),
    "cmsis_nn_depthwise": Kernel(
        lambda rng, layer: _int8_conv(rng, layer, True, BENCH_CMSIS_NN_DEPTHWISE),
        code_root="bench_cmsis_nn_depthwise_conv2d"),
    "cmsis_nn_fully_connected": Kernel(
        lambda rng, layer: build_int8_fully_connected(rng, layer, BENCH_CMSIS_NN_FC),
        code_root="bench_cmsis_nn_fully_connected"),
    "cmsis_nn_conv2d_s4": Kernel(
        lambda rng, layer: _int8_conv(rng, layer, False, BENCH_CMSIS_NN_CONV2D_S4),
        code_root="bench_cmsis_nn_conv2d_s4"),
    "cmsis_nn_fully_connected_s4": Kernel(
        lambda rng, layer: build_int8_fully_connected(rng, layer, BENCH_CMSIS_NN_FC_S4),
        code_root="bench_cmsis_nn_fully_connected_s4"),
}


# ----------------------------------------------------------------------------- C source


def write_layers_c_source(layers: List[Layer], cases: List[BenchCase], path: Path) -> None:
    """``bench_layers`` / ``bench_layer_count`` of bench_layer.h in ``path``, the data
    in ``<path>.bin``."""
    blob = kernel_vectors.DataBlob("bench_data")
    rows: List[str] = []
    for layer, case in zip(layers, cases):
        vectors = ["0" if getattr(case, field) is None else
                   "(const int32_t *)" + blob.add(np.ascontiguousarray(getattr(case, field),
                                                                       "<i4").tobytes())
                   for field in ("bias", "multiplier", "shift")]
        int8 = "{" + ", ".join(str(v) for v in (case.int8 or (0,) * 16)) + "}"
        rows.append(f"  {{{kernel_vectors.c_string(layer.name)}, {case.kind}, "
                    f"{kernel_vectors.c_string(case.op)}, "
                    f"{kernel_vectors.c_options(blob, case.options)},\n   "
                    + kernel_vectors.c_inputs(blob, case.inputs, case.input_zero_point,
                                              layer.name)
                    + ",\n   " + kernel_vectors.c_tensor(blob, case.output,
                                                         case.output_zero_point,
                                                         f"{layer.name}: output")
                    + f",\n   {int8}, {', '.join(vectors)}, {case.pack_zero_point}}}")
    data_path = path.with_name(path.name + ".bin")
    blob.write(data_path)
    path.write_text("/* Generated by benchmarks/mcu_cycles.py. */\n#include \"bench_layer.h\"\n\n"
                    + blob.declaration(data_path) + "\nconst bench_layer bench_layers[] = {\n"
                    + ",\n".join(rows) + "};\n"
                    + f"const uint32_t bench_layer_count = {len(layers)}u;\n")


# ----------------------------------------------------------------------------- measuring


class Measurement(NamedTuple):
    layer: Layer
    case: BenchCase
    instructions: int
    text_bytes: int


def check_count_loop(counts: List[int]) -> None:
    """The first four marks come from bench_count_loop_check(COUNT_LOOP_N)."""
    deltas = [b - a for a, b in zip(counts[:4], counts[1:4])]
    expected = [2, 3, 2 * COUNT_LOOP_N + 2]
    if deltas != expected:
        raise RuntimeError(f"instruction counter failed its check: marks {deltas}, "
                           f"expected {expected} exactly")


def layer_instructions(counts: List[int], layer_count: int) -> List[int]:
    """Instructions of each layer's call (second repetition) minus the empty pair's."""
    if len(counts) != 6 + 4 * layer_count:
        raise RuntimeError(f"expected {6 + 4 * layer_count} marks, got {len(counts)}")
    empty = counts[5] - counts[4]
    result = []
    for i in range(layer_count):
        first = counts[7 + 4 * i] - counts[6 + 4 * i] - empty
        second = counts[9 + 4 * i] - counts[8 + 4 * i] - empty
        if first != second:
            raise RuntimeError(f"layer {i}: the two calls executed {first} and {second} "
                               "instructions")
        result.append(second)
    return result


def measure(layers: List[Layer], build_dir: Path, *, core: str = "m4", seed: int = 0,
            runs: int = 2, extra_cflags: str = "",
            cmsis_nn: Optional[Path] = None) -> List[Measurement]:
    """Builds the benchmark image for ``layers`` and returns exact instruction counts;
    the image is run ``runs`` times and every run must give the same counts.
    ``extra_cflags`` (e.g. -DTFQP_PORTABLE: the portable C path) go to every source;
    ``cmsis_nn`` (a CMSIS-NN source tree) is needed by the CMSIS-NN rows."""
    missing = qemu_runner.missing_tools()
    if missing:
        raise RuntimeError(f"mcu_cycles: missing {', '.join(missing)} (apt-get install "
                           "gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm)")
    if cmsis_nn is None and any(needs_cmsis_nn(layer) for layer in layers):
        raise ValueError("mcu_cycles: the CMSIS-NN rows need a CMSIS-NN source tree "
                         "(--cmsis-nn DIR or CMSIS_NN_PATH)")
    make_variables = {"CMSIS_NN": Path(cmsis_nn).resolve()} if cmsis_nn is not None else {}
    rng = np.random.default_rng(seed)
    cases = [KERNELS[layer.kernel].build(rng, layer) for layer in layers]
    build_dir.mkdir(parents=True, exist_ok=True)
    source = build_dir / "layers.c"
    write_layers_c_source(layers, cases, source)
    qemu_runner.make_image("bench", core, build_dir, LAYERS=source, EXTRA_CFLAGS=extra_cflags,
                           **make_variables)
    qemu_runner.make_image("plugin", core, build_dir)
    elf = build_dir / "bench.elf"
    plugin = build_dir.parent / "insn_count_plugin.so"
    all_counts = []
    for run in range(runs):
        result, counts = qemu_runner.count_instructions(elf, core, plugin,
                                                        build_dir / f"marks{run}.txt")
        if result.returncode != 0:
            raise RuntimeError(f"benchmark image failed (exit {result.returncode}):\n"
                               f"{result.output}")
        check_count_loop(counts)
        all_counts.append(layer_instructions(counts, len(layers)))
    if any(counts != all_counts[0] for counts in all_counts):
        raise RuntimeError(f"instruction counts differ between runs: {all_counts}")
    objects = sorted({build_dir / o for layer in layers for o in KERNELS[layer.kernel].objects})
    sizes = qemu_runner.section_sizes(objects) if objects else {}

    def code_bytes(kernel: Kernel) -> int:
        if kernel.code_root:
            return qemu_runner.reachable_code_bytes(elf, kernel.code_root,
                                                    exclude=("memcpy", "memset"))
        return sum(sizes[Path(o).stem][0] for o in kernel.objects)

    return [Measurement(layer, case, count, code_bytes(KERNELS[layer.kernel]))
            for layer, case, count in zip(layers, cases, all_counts[0])]


def table(measurements: List[Measurement], markdown: bool) -> str:
    header = ["layer", "instructions", "work", "instructions per unit", "code bytes"]
    rows = []
    for m in measurements:
        rows.append([m.layer.name, f"{m.instructions:,}", f"{m.case.macs:,} {m.case.unit}s",
                     f"{m.instructions / m.case.macs:.4f}", f"{m.text_bytes:,}"])
    if markdown:
        lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
        lines += ["| " + " | ".join(row) + " |" for row in rows]
        return "\n".join(lines)
    widths = [max(len(str(r[i])) for r in rows + [header]) for i in range(len(header))]
    return "\n".join("  ".join(str(c).ljust(w) for c, w in zip(row, widths))
                     for row in [header] + rows)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default="", help="layers whose name starts with this")
    parser.add_argument("--markdown", action="store_true", help="print a markdown table")
    parser.add_argument("--build-dir", type=Path, default=None,
                        help="where to build (default: a temporary directory)")
    parser.add_argument("--core", default="m4", choices=sorted(qemu_runner.CORES))
    parser.add_argument("--cflags", default="",
                        help="extra C flags for every kernel source, e.g. -DTFQP_PORTABLE")
    parser.add_argument("--portable", action="store_true",
                        help="measure the portable C path (-DTFQP_PORTABLE) instead of the "
                             "Cortex-M kernels")
    parser.add_argument("--cmsis-nn", type=Path, default=os.environ.get("CMSIS_NN_PATH"),
                        help="a CMSIS-NN source tree (default: $CMSIS_NN_PATH): adds the rows "
                             "of CMSIS-NN's own int8 kernels (README: the pinned commit)")
    args = parser.parse_args(argv)
    layers = [layer for layer in LAYERS if layer.name.startswith(args.only)]
    if args.cmsis_nn is None:
        skipped = [layer.name for layer in layers if needs_cmsis_nn(layer)]
        layers = [layer for layer in layers if not needs_cmsis_nn(layer)]
        if skipped:
            print(f"no --cmsis-nn tree: {len(skipped)} CMSIS-NN rows left out", file=sys.stderr)
    elif not (args.cmsis_nn / "Include" / "arm_nnfunctions.h").is_file():
        parser.error(f"--cmsis-nn {args.cmsis_nn} is not a CMSIS-NN source tree "
                     "(no Include/arm_nnfunctions.h)")
    if not layers:
        parser.error(f"no layer name starts with {args.only!r}")
    with tempfile.TemporaryDirectory() as scratch:
        build_dir = args.build_dir or Path(scratch) / args.core
        measurements = measure(layers, build_dir, core=args.core,
                               extra_cflags=" ".join(
                                   flag for flag in ("-DTFQP_PORTABLE" if args.portable else "",
                                                     args.cflags) if flag),
                               cmsis_nn=args.cmsis_nn)
    print(f"Cortex-{args.core.upper()} (qemu {qemu_runner.CORES[args.core][0]}), "
          f"{'portable C path' if args.portable else 'Cortex-M kernels'}, executed "
          "instructions per kernel call, arm-none-eabi-gcc -O2; counter validated, "
          "2 runs identical")
    print(table(measurements, args.markdown))
    return 0


if __name__ == "__main__":
    sys.exit(main())
