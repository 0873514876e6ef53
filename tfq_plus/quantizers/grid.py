"""The deploy grid: what a trained quantizer's values are, as the converter needs it.

Every tfq_plus quantizer describes its trained grid through one method,
``quantizer.deploy_grid(latent=None) -> QuantGrid``. The converter maps a
``QuantGrid.kind`` to a deploy form (bit-packed binary, ternary codes, power-of-two
codes, uniform k-bit grid carried as a fake-quant range), so adding a quantizer never
means editing the rewrite logic.
"""

from typing import NamedTuple, Optional, Tuple

import numpy as np

BINARY = "binary"  # values {-scale, +scale}
TERNARY = "ternary"  # values {-negative_scale, 0, +positive_scale}
POWER_OF_TWO = "power_of_two"  # values {0, +-scale * base**e}, e in exponent_range
SHIFT_SUM = "shift_sum"  # sums of num_terms power-of-two terms, times scale
UNIFORM = "uniform"  # values range_min + step * k, k = 0 .. 2**bits - 1 (or narrow)

GRID_KINDS = (BINARY, TERNARY, POWER_OF_TWO, SHIFT_SUM, UNIFORM)


class QuantGrid(NamedTuple):
    """A quantizer's value grid at the current training state.

    Attributes:
        kind: one of ``GRID_KINDS``.
        bits: bits per value in the deploy format (1 for binary, 2 for ternary, ...).
        axis: the per-channel axis of ``scale`` / ranges, or None for per-tensor.
        scale: multiplier of the integer codes: the binary/ternary magnitude, the
            power-of-two anchor (1.0 if the exponents alone carry the magnitude), or
            the uniform step. Scalar or per-channel numpy array.
        negative_scale: ternary only, the magnitude of the negative level where it
            differs from the positive one (TTQ), else None.
        range_min, range_max: uniform grids: the representable interval, as a
            fake-quant range (scalar or per-channel arrays).
        exponent_range: power-of-two / shift grids: inclusive (min, max) exponents of
            the non-zero magnitudes, in units of log2 (may be half-integers for base
            sqrt(2)); per-channel arrays when anchored per channel.
        base: 2.0 or sqrt(2) for power-of-two grids.
        num_terms: shift grids: number of power-of-two terms summed per weight.
        signed: whether negative values occur.
    """

    kind: str
    bits: int
    axis: Optional[int] = None
    scale: Optional[np.ndarray] = None
    negative_scale: Optional[np.ndarray] = None
    range_min: Optional[np.ndarray] = None
    range_max: Optional[np.ndarray] = None
    exponent_range: Optional[Tuple[np.ndarray, np.ndarray]] = None
    base: float = 2.0
    num_terms: int = 1
    signed: bool = True
