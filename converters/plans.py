"""Plans: what export decides once for every quantized layer, and rewrite follows.

A ``LayerPlan`` says what one Keras layer (a convolution or dense layer) deploys
to: the kind of its input (signs or int8 values), its kernel on an integer grid
(codes and per-channel scales: the trained grid, or the converter's int8 rounding
of a float kernel), the Keras layers after it whose computation its output
transform folds (BatchNormalization, activations, max-pools, a flatten), and what
its output is (packed signs, int8 values, or int32 values of a residual stream).
An ``AddPlan`` is a residual ``Add`` whose operands are int32 streams.

Rewrite looks plans up by layer name and never re-derives a layer's kind from the
stock model's int8 weights. The plans keep references to the user's Keras layers,
whose float32 computation the thresholds and output transforms are taken from.
"""

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

import numpy as np

# What a layer's input is.
SIGNS = "signs"  # {-1, +1}: a binarized tensor (packed, or int8 binarized on the fly)
INT8 = "int8"  # int8 values of a real tensor (the stock model's quantization)

# What a planned layer's output is.
PACKED = "packed"  # signs of the chain's end, bit-packed (formats.h)
INT8_VALUES = "int8"  # int8 values (the stock tensor's quantization)
INT32_VALUES = "int32"  # int32 values of a residual stream (scale = the stream's)
CODES = "codes"  # int8 codes of a k-bit activation grid (``activation_codes.CodeGrid``)

# Steps of a chain.
ELEMENTWISE = "elementwise"
MAX_POOL = "max_pool"
FLATTEN = "flatten"

# Kernel grids.
BINARY_KERNEL = "binary"  # codes +-1, a scale per output channel (trained grid)
UNIFORM_KERNEL = "uniform"  # symmetric k-bit codes, k <= 8, a step per channel (trained grid)
ROUNDED_KERNEL = "rounded"  # int16 codes of a float kernel the converter rounded
SHIFT_KERNEL = "shift"  # b-bit codes through a code table (TFQP_SHIFT_* ops, ``ShiftCodes``)

# Op kinds of a planned layer.
CONV2D = "conv2d"
DEPTHWISE = "depthwise"
DENSE = "dense"


@dataclass
class ShiftCodes:
    """A kernel on a shift-family grid as TFQP_SHIFT_* ops store it (formats.h).

    Per output channel co and tap k (TFLite's tap order: conv (ky, kx, ci), depthwise
    (ky, kx), dense ci), ``terms`` codes of ``bits`` bits: code t of tap k is
    ``codes[co, k * terms + t]``. Class c's integer weight of the tap is
    ``w_c = sum_t table[c, code]``; the Keras kernel's value is
    ``float32(sum_c w_c * scales[c, co])`` exactly (``shift_codes.decode``).

    Attributes:
        family: the grid family, for messages and the report ("power of two",
            "log sqrt2", "shift sum", "ternary", "binary").
        codes: uint8 [Cout, K * terms].
        bits: code width b, 1 to 5.
        terms: codes per weight (ShiftCNN's num_shifts; 1 otherwise).
        table: int16 [C, 2^bits], C = 1 or 2 accumulator classes.
        scales: float64 [C, Cout]: each class's value of one integer unit.
        values: float32 [Cout, K]: the Keras layer's quantized kernel (rows).
        tolerance: 0 where the weights times the scales are ``values`` bit for bit;
            else how far (a fraction of the channel's scale) Keras's float32 kernel
            may be from them (uniform grids Keras computes in two roundings,
            ``uniform_codes``).
    """

    family: str
    codes: np.ndarray
    bits: int
    terms: int
    table: np.ndarray
    scales: np.ndarray
    values: np.ndarray
    tolerance: float = 0.0

    @property
    def classes(self) -> int:
        return int(self.table.shape[0])

    @property
    def taps(self) -> int:
        return int(self.codes.shape[1]) // self.terms


@dataclass
class KernelGrid:
    """The layer's kernel as integers: value = codes * scale[channel].

    ``codes``: int array in TFLite's layout (OHWI for convolutions, [Cout, Cin] for
    dense). ``scale``: float64 [Cout]. ``exact``: the codes times the scales are the
    values the Keras layer computes with (a trained grid); False for a float kernel
    rounded to int8 by the converter (a grid Keras never saw).
    """

    kind: str
    codes: np.ndarray
    scale: np.ndarray
    exact: bool
    shift: Optional[ShiftCodes] = None  # SHIFT_KERNEL: codes, table and class scales

    @property
    def channels_out(self) -> int:
        return int(self.codes.shape[0])

    @property
    def taps(self) -> int:
        """Multiply-accumulates per output value (K)."""
        if self.shift is not None:
            return self.shift.taps
        return int(np.prod(self.codes.shape[1:]))


@dataclass
class ChainStep:
    """One Keras layer after the planned layer, folded into its output."""

    layer: object
    kind: str  # ELEMENTWISE, MAX_POOL or FLATTEN
    # elementwise: per-channel direction (+1 non-decreasing, -1 non-increasing)
    direction: Optional[np.ndarray] = None
    # elementwise: the per-channel affine map (a, b), float64, if the step is affine
    affine: Optional[Tuple[np.ndarray, np.ndarray]] = None
    # elementwise: the float32 computation, tensor -> tensor (the Keras layer called
    # in inference mode, or the planned layer's own activation function)
    function: Optional[object] = None
    # the planned layer's own `activation` argument (not a layer of its own)
    own_activation: bool = False

    @property
    def name(self) -> str:
        return self.layer.name


@dataclass
class Geometry:
    """Window of a convolution (TFLite's conventions; padding 'same' or 'valid')."""

    filter_height: int = 1
    filter_width: int = 1
    stride_height: int = 1
    stride_width: int = 1
    dilation_height: int = 1
    dilation_width: int = 1
    padding: str = "valid"
    pad_value: int = 0  # signs input with SAME padding: 1 pads with +1, 0 with 0
    depth_multiplier: int = 1  # depthwise convolutions


@dataclass
class LayerPlan:
    """One convolution or dense layer that deploys as a TFQP op.

    Attributes:
        name: the Keras layer's name (the model's node; for a pruning wrapper, the
            wrapper's name).
        scope: the name the layer has in the exported model, hence in the stock
            model's tensor names (a pruning wrapper's inner layer).
        layer: the Keras layer of the user's model.
        op: CONV2D, DEPTHWISE (shift kernels only) or DENSE.
        input: SIGNS or INT8.
        input_layer: the Keras layer whose output the layer reads (before the
            binarization, for signs input).
        binarizer: for SIGNS input, the Keras layer whose scope holds the
            binarization in the stock model (the layer itself when its
            input_quantizer binarizes, else the quantizer layer).
        kernel: the kernel grid; bias: the Keras bias (float32 [Cout]) or None.
        chain: the folded Keras layers after it, in order.
        output: PACKED, INT8_VALUES, INT32_VALUES or CODES.
        output_layer: the Keras layer whose output is the chain's end.
        output_grid: for CODES, the k-bit grid every consumer of the chain's end
            quantizes it to (``activation_codes.CodeGrid``).
    """

    name: str
    scope: str
    layer: object
    op: str
    input: str
    input_layer: str
    binarizer: Optional[str]
    kernel: KernelGrid
    bias: Optional[np.ndarray]
    geometry: Geometry
    chain: List[ChainStep] = field(default_factory=list)
    output: str = INT8_VALUES
    output_layer: str = ""
    input_is_model_input: bool = False
    residual_add: Optional[str] = None  # the AddPlan this layer's op computes
    output_grid: Optional[object] = None
    # a 4-bit uniform kernel the stock op runs with an INT4 filter (``patterns.int4``)
    int4_builtin: bool = False

    @property
    def family(self) -> str:
        """The rewrite pattern: "int4" (the stock op with an INT4 filter), "shift"
        (a kernel of codes through a table, int8 input), "binary" (signs input) or
        "int8" (int8 input, int8 codes)."""
        if self.int4_builtin:
            return "int4"
        if self.kernel.kind == SHIFT_KERNEL:
            return "shift"
        return "binary" if self.input == SIGNS else "int8"

    @property
    def keras_layers(self) -> List[str]:
        return [self.name] + [step.name for step in self.steps]

    @property
    def exact(self) -> bool:
        """The op computes what Keras computes on the same input (up to float32
        ties): its kernel is on a trained grid. A float kernel rounded to int8 by
        the converter is not."""
        return self.kernel.exact

    @property
    def steps(self) -> List["ChainStep"]:
        """The chain's Keras layers (the layer's own activation excluded)."""
        return [step for step in self.chain if not step.own_activation]


@dataclass
class AddPlan:
    """A residual Add of int32 stream values, fused into a planned layer's op.

    ``absorbed_by``: the plan whose output is one operand; its TFQP op takes the
    other operand, ``residual`` (a stream tensor), as an extra input and writes the
    sum (TFLite Micro's int32 ADD only adds unquantized tensors, and the stream's
    scale must travel with the values for the QUANTIZE that leaves the stream).
    """

    name: str
    layer: object
    inputs: List[str]
    absorbed_by: str
    residual: str


def _kernel_summary(kernel: KernelGrid) -> str:
    """The kernel's grid in a few words: "binary", "uniform", "power of two 4-bit
    (1 class)", "rounded int16 (float kernel)" (a float kernel the converter rounded)."""
    if kernel.kind == SHIFT_KERNEL and kernel.shift is not None:
        classes = "class" if kernel.shift.classes == 1 else "classes"
        terms = f" x{kernel.shift.terms} terms" if kernel.shift.terms > 1 else ""
        return f"{kernel.shift.family} {kernel.shift.bits}-bit{terms} ({kernel.shift.classes} {classes})"
    if kernel.kind == ROUNDED_KERNEL:
        return "rounded int16 (float kernel)"
    return kernel.kind


class NothingQuantizedWarning(UserWarning):
    """A deploy conversion found no layer to run as a TFQP op: the model has no
    quantized layer, so the deploy model is the stock int8 model."""


@dataclass
class Plans:
    """Everything export planned for one model."""

    layers: Dict[str, LayerPlan] = field(default_factory=dict)  # by Keras name
    adds: Dict[str, AddPlan] = field(default_factory=dict)
    # Keras layer name -> stream id, for every tensor held as int32 stream values
    streams: Dict[str, int] = field(default_factory=dict)
    # Keras layers whose output feeds binarizations (name -> binarizing consumers)
    binarized: Dict[str, List[str]] = field(default_factory=dict)
    # quantizer layers used as layers that binarize: name -> the layer they read
    sign_layers: Dict[str, str] = field(default_factory=dict)
    # Keras layers whose output every consumer quantizes to one k-bit grid:
    # name -> (the grid, the consumers)
    coded: Dict[str, Tuple[object, List[str]]] = field(default_factory=dict)
    # coded tensor -> the layers whose convolution / dense op reads the codes (the
    # coding layers; a quantizer layer's consumers)
    code_readers: Dict[str, List[str]] = field(default_factory=dict)

    def by_output(self, keras_name: str) -> Optional[LayerPlan]:
        """The plan whose chain ends at ``keras_name``'s output."""
        for plan in self.layers.values():
            if plan.output_layer == keras_name:
                return plan
        return None

    def __iter__(self):
        return iter(self.layers.values())

    def __str__(self) -> str:
        """One line per planned layer: its op, kernel grid, input and output forms
        and the Keras layers its op folds (``print(converters.plan(model))``)."""
        header = ("layer", "op", "pattern", "kernel", "input", "output", "folds")
        rows = [header] + [
            (plan.name, plan.op, plan.family, _kernel_summary(plan.kernel), plan.input,
             plan.output, ", ".join(step.name for step in plan.steps) or "-")
            for plan in self
        ]
        widths = [max(len(row[column]) for row in rows) for column in range(len(header) - 1)]
        lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)) + "  " + row[-1]
                 for row in rows]
        if not self.layers:
            lines.append("(no layer deploys as a TFQP op: the deploy model is the stock int8 model)")
        return "\n".join(lines)

    def __len__(self):
        return len(self.layers)
