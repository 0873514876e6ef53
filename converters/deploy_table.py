"""The one table: what a quantizer (ours or larq's) deploys to.

A quantizer's trained values form a grid (``tfq_plus.quantizers.grid.QuantGrid``).
tfq_plus quantizers describe theirs with ``deploy_grid(latent)``; larq's quantizers
do not, so ``LARQ_GRIDS`` below describes them once. The grid's ``kind`` then selects
the deploy form in ``KERNEL_FORMS`` (weights) or ``ACTIVATION_FORMS`` (a layer's
input quantizer, or a quantizer used as a layer). Planning (``planning``) and export
only ever ask this module; adding a quantizer means describing its grid, never
editing the rewrite.

Deploy forms:

- ``FLOAT``: no quantizer: the stock converter's int8 quantization applies; before
  a sign the kernel is rounded by the converter (``planning.rounded_grid``).
- ``BIT_PACKED``: binary weights ``{-scale, +scale}`` per output channel: codes
  +-1 and the scale (``TFQP_BCONV2D`` / ``TFQP_BFULLY_CONNECTED`` pack them to 1
  bit; on real-valued inputs ``TFQP_CONV2D_INT8`` holds them as int8).
- ``BINARIZE``: binary activations ``{-1, +1}``, ``sign(0) = +1``: exported as
  builtin int8 ops that TFLite Micro has (see ``export.BinarizeActivations``).
- ``INT_CODES``: an 8-bit symmetric uniform kernel: its int8 codes (a layer before
  a sign deploys them exactly; elsewhere the stock converter quantizes it). A 2- to
  5-bit uniform kernel (LSQ, Uniform, DoReFa weights) takes ``SHIFT_CODES``: its
  grid's integer levels through the code table (``uniform_codes``).
- ``SHIFT_CODES``: power-of-two / INQ / log (base 2 or sqrt(2)), ShiftCNN sums and
  ternary (TWN, TTQ) kernels: b-bit codes through a code table,
  ``TFQP_SHIFT_CONV2D`` / ``TFQP_SHIFT_DEPTHWISE_CONV2D`` / ``TFQP_SHIFT_FULLY_CONNECTED``
  (``shift_codes``; binary kernels on int8 inputs with an int8 output, and binary
  depthwise kernels, take the same ops with 1-bit codes).
- ``CODES``: a uniform k-bit activation grid (PACT, LSQ, Uniform, DoReFa; 1 to 8
  bits, one step per tensor): an int8 tensor of scale = step and the grid's zero
  point, written by the TFQP op that produces it from its exact accumulator
  against integer thresholds (``activation_codes``); never calibrated.

Every other grid kind raises ``ValueError`` naming the layer, the quantizer and why.
"""

from typing import Callable, Dict, NamedTuple, Optional

import larq as lq
import numpy as np

from tfq_plus.quantizers import grid as grids
from tfq_plus.quantizers.base import QuantizerBase

FLOAT = "float"
BIT_PACKED = "bit_packed"
BINARIZE = "binarize"
INT_CODES = "int_codes"
SHIFT_CODES = "shift_codes"
CODES = "codes"


class Unsupported(NamedTuple):
    """A grid kind this converter cannot deploy yet, and the reason given to users."""

    reason: str


# Weights: grid kind -> deploy form.
KERNEL_FORMS: Dict[str, object] = {
    grids.BINARY: BIT_PACKED,
    grids.TERNARY: SHIFT_CODES,
    grids.POWER_OF_TWO: SHIFT_CODES,
    grids.SHIFT_SUM: SHIFT_CODES,
    grids.UNIFORM: INT_CODES,  # see uniform_kernel_form
}

# A uniform kernel deploys as int8 codes when symmetric with 8 bits (a stem whose
# training saw the int8 grid it deploys on), as b-bit codes of the coded-weight ops
# with 2 to 5 bits (symmetric or not: the table holds the levels, zero point and all).
UNIFORM_CODED_BITS = (2, 5)
UNIFORM_KERNEL_RULE = Unsupported(
    "uniform kernels deploy with 2 to 5 bits (coded weights) or symmetric with 8 bits "
    "(int8 codes); 1-, 6- and 7-bit and asymmetric 8-bit uniform kernels are not supported"
)


def uniform_kernel_form(quant_grid):
    """INT_CODES, SHIFT_CODES or UNIFORM_KERNEL_RULE for a uniform kernel grid."""
    if quant_grid.bits == 8 and _symmetric(quant_grid):
        return INT_CODES
    low, high = UNIFORM_CODED_BITS
    if low <= quant_grid.bits <= high:
        return SHIFT_CODES
    return UNIFORM_KERNEL_RULE

# Activations: grid kind -> deploy form.
ACTIVATION_FORMS: Dict[str, object] = {
    grids.BINARY: BINARIZE,
    grids.TERNARY: Unsupported("ternary activations not yet supported"),
    grids.POWER_OF_TWO: Unsupported("power-of-two activations not yet supported"),
    grids.SHIFT_SUM: Unsupported("shift-sum activations not yet supported"),
    grids.UNIFORM: CODES,
}


def _unit_sign(quantizer, latent) -> grids.QuantGrid:
    """larq's sign quantizers: {-1, +1}, sign(0) = +1."""
    return grids.QuantGrid(kind=grids.BINARY, bits=1, scale=np.asarray(1.0, np.float32))


def _magnitude_aware_sign(quantizer, latent) -> grids.QuantGrid:
    """Bi-Real Net's sign times the mean |w| over all axes but the last."""
    if latent is None:
        raise ValueError(
            "MagnitudeAwareSign: the deploy grid needs the latent weights (its scale is "
            "their mean absolute value per output channel)"
        )
    w = np.asarray(latent)
    scale = np.mean(np.abs(w), axis=tuple(range(w.ndim - 1)))
    return grids.QuantGrid(kind=grids.BINARY, bits=1, axis=w.ndim - 1, scale=scale)


def _ste_tern(quantizer, latent) -> grids.QuantGrid:
    return grids.QuantGrid(kind=grids.TERNARY, bits=2)


def _ste_heaviside(quantizer, latent) -> grids.QuantGrid:
    """{0, 1}: a 1-bit uniform grid, not a sign."""
    return grids.QuantGrid(
        kind=grids.UNIFORM, bits=1, scale=np.asarray(1.0), range_min=np.asarray(0.0),
        range_max=np.asarray(1.0), signed=False,
    )


def _dorefa(quantizer, latent) -> grids.QuantGrid:
    bits = int(quantizer.precision)
    if getattr(quantizer, "mode", "activations") == "weights":
        low, high = -1.0, 1.0
    else:
        low, high = 0.0, 1.0
    return grids.QuantGrid(
        kind=grids.UNIFORM, bits=bits, scale=np.asarray((high - low) / (2**bits - 1)),
        range_min=np.asarray(low), range_max=np.asarray(high), signed=low < 0,
    )


# larq's quantizers (classes and the plain functions larq layers also accept).
LARQ_GRIDS: Dict[object, Callable] = {
    lq.quantizers.SteSign: _unit_sign,
    lq.quantizers.ApproxSign: _unit_sign,
    lq.quantizers.SwishSign: _unit_sign,
    lq.quantizers.ste_sign: _unit_sign,
    lq.quantizers.approx_sign: _unit_sign,
    lq.quantizers.swish_sign: _unit_sign,
    lq.quantizers.MagnitudeAwareSign: _magnitude_aware_sign,
    lq.quantizers.SteTern: _ste_tern,
    lq.quantizers.ste_tern: _ste_tern,
    lq.quantizers.SteHeaviside: _ste_heaviside,
    lq.quantizers.ste_heaviside: _ste_heaviside,
    lq.quantizers.DoReFa: _dorefa,
}


def quantizer_name(quantizer) -> str:
    """How messages name a quantizer: a function's name, else its class name."""
    return getattr(quantizer, "__name__", None) or type(quantizer).__name__


def deploy_grid(quantizer, latent=None) -> Optional[grids.QuantGrid]:
    """The trained grid of ``quantizer`` (None for no quantizer / larq's NoOp).

    Args:
        quantizer: a tfq_plus quantizer (asked with its own ``deploy_grid``), a
            larq quantizer of ``LARQ_GRIDS`` (class instance or function), or None.
        latent: the latent weights, for weight quantizers whose grid depends on
            them (see ``QuantizerBase.deploy_grid``).

    Returns:
        A ``tfq_plus.quantizers.QuantGrid``, or None (float).

    Raises:
        ValueError: a quantizer neither tfq_plus nor this table describes.
    """
    if quantizer is None or isinstance(quantizer, lq.quantizers.NoOp):
        return None
    if isinstance(quantizer, QuantizerBase):
        return quantizer.deploy_grid(latent)
    describe = LARQ_GRIDS.get(type(quantizer)) or LARQ_GRIDS.get(quantizer)
    if describe is None:
        raise ValueError(
            f"quantizer {quantizer_name(quantizer)!r} has no deploy form: it is neither a "
            "tfq_plus quantizer (with deploy_grid) nor one of larq's quantizers known to "
            f"the converter ({sorted({quantizer_name(k) for k in LARQ_GRIDS})})"
        )
    return describe(quantizer, latent)


class DeployForm(NamedTuple):
    """What one quantized tensor becomes: ``form`` is FLOAT, BIT_PACKED, BINARIZE, INT_CODES,
    SHIFT_CODES or CODES."""

    form: str
    grid: Optional[grids.QuantGrid] = None


def _form(table, layer_name: str, role: str, quantizer, latent) -> DeployForm:
    try:
        quant_grid = deploy_grid(quantizer, latent)
    except ValueError as error:
        raise ValueError(f"layer {layer_name!r}: {role} {error}") from error
    if quant_grid is None:
        return DeployForm(FLOAT)
    form = table.get(quant_grid.kind)
    if form is None:
        form = Unsupported(f"grid kind {quant_grid.kind!r} is unknown to the converter")
    if form == INT_CODES:
        form = uniform_kernel_form(quant_grid)
    if isinstance(form, Unsupported):
        raise ValueError(
            f"layer {layer_name!r}: {role} {quantizer_name(quantizer)} "
            f"({quant_grid.kind} grid, {quant_grid.bits} bits): {form.reason}"
        )
    return DeployForm(form, quant_grid)


def _symmetric(quant_grid) -> bool:
    low = np.asarray(quant_grid.range_min, np.float64)
    high = np.asarray(quant_grid.range_max, np.float64)
    return bool(np.allclose(low, -high, rtol=1e-6))


def kernel_form(layer_name: str, quantizer, latent) -> DeployForm:
    """Deploy form of a layer's weights quantized by ``quantizer``.

    Args:
        layer_name: the layer, as error messages name it.
        quantizer: its kernel quantizer, or None.
        latent: the latent kernel (array).

    Returns:
        A ``DeployForm``: ``form`` (one of the deploy forms in the module doc) and
        the grid.

    Raises:
        ValueError: naming the layer and quantizer: a quantizer or grid without a
            deploy form for weights.
    """
    return _form(KERNEL_FORMS, layer_name, "kernel quantizer", quantizer, latent)


def activation_form(layer_name: str, quantizer, role: str = "input quantizer") -> DeployForm:
    """Deploy form of activations quantized by ``quantizer`` (a layer's input
    quantizer, or ``role="quantizer layer"`` for a quantizer used as a layer).

    Binary activations must be exactly {-1, +1} (a scale other than 1 is a
    different grid).

    Args:
        layer_name: the layer, as error messages name it.
        quantizer: the activation quantizer, or None.
        role: how messages name the quantizer (default ``"input quantizer"``).

    Returns:
        A ``DeployForm`` (``FLOAT``, ``BINARIZE`` or ``CODES``, with the grid).

    Raises:
        ValueError: naming the layer and quantizer: a quantizer or grid without a
            deploy form for activations, or scaled binary activations.
    """
    form = _form(ACTIVATION_FORMS, layer_name, role, quantizer, None)
    if form.form == BINARIZE and not np.allclose(np.asarray(form.grid.scale), 1.0):
        raise ValueError(
            f"layer {layer_name!r}: {role} {quantizer_name(quantizer)} scales its "
            f"signs by {form.grid.scale}; binary activations deploy only as {{-1, +1}}"
        )
    return form
