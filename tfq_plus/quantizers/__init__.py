"""Quantizers: one module per family, each class a Keras layer on larq's protocol.

larq's binary/ternary/DoReFa quantizers are re-exported, not rewritten. Every
quantizer here is reachable by class name and by its string alias, also from larq
layers: ``larq.layers.QuantConv2D(64, 3, kernel_quantizer="scaled_sign")``.

Each class's docstring gives the forward formula, the gradient and the paper.

    class (alias)                          what it computes
    ScaledSign (scaled_sign)               sign(w) * mean |w| per channel (XNOR-Net)
    TTQ (ttq)                              {-W_n, 0, +W_p} with trained scales (TTQ)
    PowerOfTwo (po2)                       {0, +-2^e} anchored at max |w| (INQ)
    LogQuantizer (log2)                    {0, +-2^e} rounded in the log domain (LogNet)
    LogSqrt2Quantizer (log_sqrt2)          the same with base sqrt(2)
    ShiftQuantizer (shift)                 sums of N powers of two (ShiftCNN)
    PACT (pact)                            k-bit levels on [0, alpha], alpha trained
    LSQ (lsq)                              k-bit levels with a trained step
    Uniform (uniform_quantizer)            k-bit fake quantization, as TFLite's
    SteSign, ApproxSign, SwishSign,        larq's, re-exported (ste_sign, approx_sign,
    SteTern, DoReFa                        swish_sign, ste_tern, dorefa_quantizer)

Helpers: ``get`` (alias / config / instance -> quantizer), ``serialize``,
``register`` (add a quantizer class under aliases), ``ALIASES`` (alias -> class),
``QuantizerBase`` (the base class: ``precision``, ``deploy_grid``), ``QuantGrid``
and ``GRID_KINDS`` (the trained grid a quantizer reports to the converter).
The training schedules that wrap quantizers (INQ, delay, bit-width schedules)
are in ``tfq_plus.callbacks``.
"""

import larq as lq

from tfq_plus.quantizers.base import ALIASES, QuantizerBase, register
from tfq_plus.quantizers.grid import GRID_KINDS, QuantGrid

# Reused from larq (registered there under these aliases already).
SteSign = lq.quantizers.SteSign
ApproxSign = lq.quantizers.ApproxSign
SwishSign = lq.quantizers.SwishSign
SteTern = lq.quantizers.SteTern
DoReFa = lq.quantizers.DoReFa
for _alias, _cls in (
    ("ste_sign", SteSign),
    ("approx_sign", ApproxSign),
    ("swish_sign", SwishSign),
    ("ste_tern", SteTern),
    ("dorefa_quantizer", DoReFa),
):
    ALIASES[_alias] = _cls

from tfq_plus.quantizers.binary import ScaledSign  # noqa: E402
from tfq_plus.quantizers.log import LogQuantizer, LogSqrt2Quantizer  # noqa: E402
from tfq_plus.quantizers.lsq import LSQ  # noqa: E402
from tfq_plus.quantizers.pact import PACT  # noqa: E402
from tfq_plus.quantizers.power_of_two import PowerOfTwo  # noqa: E402
from tfq_plus.quantizers.shift import ShiftQuantizer  # noqa: E402
from tfq_plus.quantizers.ternary import TTQ  # noqa: E402
from tfq_plus.quantizers.uniform import Uniform  # noqa: E402

__all__ = [
    "ALIASES", "GRID_KINDS", "QuantGrid", "QuantizerBase", "register", "get", "serialize",
    "SteSign", "ApproxSign", "SwishSign", "SteTern", "DoReFa",
    "ScaledSign", "TTQ", "PowerOfTwo", "LogQuantizer", "LogSqrt2Quantizer",
    "ShiftQuantizer", "PACT", "LSQ", "Uniform",
]


def get(identifier):
    """Resolve a quantizer from an alias, a class name, a config dict or an instance.

    Args:
        identifier: an alias of ``ALIASES`` (``"po2"``), the name of a registered
            quantizer class (``"PowerOfTwo"``), a config dict from ``serialize``,
            a quantizer instance or any callable (returned as it is), or None.

    Returns:
        A new quantizer with default arguments for a string, the rebuilt quantizer
        for a dict, else ``identifier`` itself.

    Raises:
        ValueError: an unknown alias or an identifier of another type, listing the
            aliases that exist.
    """
    import tensorflow as tf

    if identifier is None or callable(identifier) and not isinstance(identifier, type):
        return identifier
    if isinstance(identifier, str):
        if identifier in ALIASES:
            return ALIASES[identifier]()
        known = tf.keras.utils.get_custom_objects()
        if identifier in known and isinstance(known[identifier], type) and issubclass(
            known[identifier], lq.quantizers.Quantizer
        ):
            return known[identifier]()
        raise ValueError(
            f"unknown quantizer {identifier!r}; allowed aliases: {sorted(ALIASES)}"
        )
    if isinstance(identifier, dict):
        return lq.quantizers.get(identifier)
    raise ValueError(
        "quantizer identifier must be a string alias, a config dict, a quantizer "
        f"instance or None, got {identifier!r}"
    )


def serialize(quantizer):
    """The config dict that ``get`` turns back into an equal quantizer.

    ``{"class_name": "PACT", "config": {"bits": 3, ...}}`` (Keras's legacy format,
    which larq layers store in their own configs).
    """
    return lq.quantizers.serialize(quantizer, use_legacy_format=True)
