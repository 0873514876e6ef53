"""k-bit activation grids as deploy tensors: PACT, LSQ, Uniform and DoReFa codes.

A trained activation quantizer's values are ``(u + offset) * step`` for the codes
u = 0 .. levels - 1 (PACT: offset 0, step alpha / (2^k - 1); LSQ signed: offset
-2^(k-1); Uniform: minus its nudged zero point; DoReFa: offset 0, step 1 / (2^k - 1)).
The deploy tensor holds them exactly as int8 q = base + u with scale = step and
zero point zp = base - offset, so (q - zp) * step is Keras's value: never a
calibrated range. The op that produces the tensor writes q from its exact integer
accumulator against integer thresholds (``thresholds.code_transform``): the codes
of Keras's own float32 computation, evaluated by calling the Keras quantizer.
"""

from dataclasses import dataclass
from typing import Tuple

import numpy as np
import tensorflow as tf

from tfq_plus.converters import deploy_table

# The contract's codes output: output_levels in [2, 256] (formats.h), base in
# [-128, 127 - (levels - 1)].
MAX_LEVELS = 256


@dataclass(frozen=True)
class CodeGrid:
    """A k-bit activation grid as the int8 deploy tensor holds it.

    Attributes:
        layer: the Keras layer that quantizes (for messages).
        quantizer: the Keras quantizer (callable on a float32 tensor): Keras's own
            computation of the codes.
        bits: the quantizer's bit width.
        step: float32: the value of one code (the tensor's scale).
        offset: value = (u + offset) * step.
        levels: number of codes (2^bits, or 2^bits - 1 for a narrow grid).
    """

    layer: str
    quantizer: object
    bits: int
    step: np.float32
    offset: int
    levels: int

    @property
    def base(self) -> int:
        """The int8 value of code 0: ``offset`` itself where the codes fit int8 with
        zero point 0, else -128."""
        if -128 <= self.offset and self.offset + self.levels - 1 <= 127:
            return self.offset
        return -128

    @property
    def zero_point(self) -> int:
        return self.base - self.offset

    @property
    def quantization(self) -> Tuple[np.float32, int]:
        """(scale, zero point) of the deploy tensor."""
        return np.float32(self.step), self.zero_point

    def same_grid(self, other: "CodeGrid") -> bool:
        return (self.bits, float(self.step), self.offset, self.levels) == \
            (other.bits, float(other.step), other.offset, other.levels)

    def values(self, x: np.ndarray) -> np.ndarray:
        """Keras's quantized float32 values of float32 ``x``."""
        return np.asarray(self.quantizer(tf.constant(np.asarray(x, np.float32))), np.float32)

    def codes(self, x: np.ndarray) -> np.ndarray:
        """Keras's codes u (int64) of float32 ``x``: the quantizer's value / step - offset."""
        u = np.rint(self.values(x).astype(np.float64) / float(self.step)) - self.offset
        return np.clip(u, 0, self.levels - 1).astype(np.int64)


def code_grid(layer_name: str, quantizer, role: str = "input quantizer") -> CodeGrid:
    """The ``deploy_table.CODES`` grid of ``quantizer`` (a layer's input quantizer,
    or ``role="quantizer layer"``).

    Raises:
        ValueError: naming the layer, when the grid is per channel, wider than 8
            bits, or has no exact int8 form (a zero outside the grid, a range that
            is not a whole number of steps).
    """
    form = deploy_table.activation_form(layer_name, quantizer, role)
    if form.form != deploy_table.CODES:
        raise ValueError(f"layer {layer_name!r}: {role} is not a k-bit activation grid")
    grid = form.grid
    name = deploy_table.quantizer_name(quantizer)
    where = f"layer {layer_name!r}: {role} {name}"
    if any(np.size(v) != 1 for v in (grid.scale, grid.range_min, grid.range_max)):
        raise ValueError(
            f"{where} has a per-channel grid; k-bit activations deploy with one step per "
            "tensor (use a per-tensor quantizer on activations)"
        )
    step = np.float32(np.asarray(grid.scale).reshape(()))
    low = float(np.asarray(grid.range_min, np.float64).reshape(()))
    high = float(np.asarray(grid.range_max, np.float64).reshape(()))
    if not step > 0:
        raise ValueError(f"{where}: its step {step} is not positive")
    offset = low / float(step)
    span = (high - low) / float(step)
    if abs(offset - round(offset)) > 1e-3 or abs(span - round(span)) > 1e-3:
        raise ValueError(
            f"{where}: its range [{low:g}, {high:g}] is not a whole number of steps {step:g} "
            "from zero; an int8 tensor holds a grid whose zero is one of its values"
        )
    levels = int(round(span)) + 1
    if not 2 <= levels <= min(MAX_LEVELS, 2 ** int(grid.bits)):
        raise ValueError(
            f"{where}: {levels} levels of {grid.bits} bits; k-bit activation codes deploy with "
            f"2 to {MAX_LEVELS} levels (1 to 8 bits)"
        )
    result = CodeGrid(layer_name, quantizer, int(grid.bits), step, int(round(offset)), levels)
    if not -128 <= result.zero_point <= 127:
        raise ValueError(f"{where}: its zero point {result.zero_point} does not fit int8")
    return result
