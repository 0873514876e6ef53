"""The quantizer protocol shared by every tfq_plus quantizer.

A quantizer is a Keras layer (larq's protocol): it is called on a latent tensor and
returns the quantized tensor, with the pseudo-gradient defined by ``tf.custom_gradient``
or ``tf.stop_gradient`` tricks. larq's layers call it on their input
(``input_quantizer=``) or wrap their kernel in a ``QuantizedVariable`` that calls it on
every read (``kernel_quantizer=``). It reports ``precision`` (bits) for
``larq.models.summary``, round-trips through ``get_config``, and describes its trained
grid for the converter through ``deploy_grid``.
"""

from typing import Dict, List, Optional, Type

import larq as lq
import tensorflow as tf

from tfq_plus.quantizers.arguments import resolve_axis
from tfq_plus.quantizers.grid import QuantGrid

# alias -> class, for every quantizer tfq_plus registers (ours and re-exported larq ones).
ALIASES: Dict[str, Type[tf.keras.layers.Layer]] = {}


def register(*aliases: str):
    """Register a quantizer class as a Keras custom object under its class name and
    each alias, so that larq layers resolve ``kernel_quantizer="alias"`` and saved
    models reload without ``custom_objects``.

    Args:
        *aliases: the string names (e.g. ``"po2"``); each is also added to ``ALIASES``.

    Returns:
        A class decorator that returns the class unchanged::

            @register("my_sign")
            class MySign(QuantizerBase): ...
    """

    def decorate(cls):
        lq.utils.register_keras_custom_object(cls)
        for alias in aliases:
            lq.utils.register_alias(alias)(cls)
            ALIASES[alias] = cls
        return cls

    return decorate


class QuantizerBase(lq.quantizers.Quantizer):
    """Base class of tfq_plus quantizers.

    Subclasses set ``precision`` (bits per value), implement ``call`` and
    ``deploy_grid``, and list every constructor argument in ``get_config``.
    The constructor takes Keras layer arguments only (``name``, ``dtype``).
    Per-channel quantizers take ``axis`` (the channel axis, default -1: the output
    channels of a Dense or Conv2D kernel); it is checked against the input rank in
    ``build``.
    """

    precision: Optional[int] = None

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._channel_axis: Optional[int] = None

    def __call__(self, inputs, *args, **kwargs):
        # A variable passed directly (``quantizer(layer.kernel)``, or a MirroredVariable
        # under tf.distribute) is read first: ``tf.custom_gradient`` in the subclasses
        # would otherwise see a variable captured from outside and demand a
        # ``variables`` argument in the gradient function.
        if isinstance(inputs, tf.Variable):
            inputs = tf.convert_to_tensor(inputs)
        return super().__call__(inputs, *args, **kwargs)

    @property
    def owner(self) -> str:
        """How error messages name this quantizer."""
        return f"{type(self).__name__}(name={self.name!r})"

    def resolve_channel_axis(self, input_shape, axis: int) -> int:
        """Normalise ``axis`` for ``input_shape``; call from ``build``."""
        rank = len(input_shape)
        self._channel_axis = resolve_axis(self.owner, "axis", axis, rank)
        return self._channel_axis

    def reduction_axes(self, rank: int, per_channel: bool) -> List[int]:
        """Axes to reduce over for per-tensor / per-channel statistics."""
        if not per_channel:
            return list(range(rank))
        return [i for i in range(rank) if i != self._channel_axis]

    def channel_shape(self, input_shape, per_channel: bool):
        """Shape of a per-channel variable that broadcasts against the input."""
        if not per_channel:
            return ()
        return (int(input_shape[self._channel_axis]),)

    def broadcast_channels(self, value: tf.Tensor, rank: int, per_channel: bool) -> tf.Tensor:
        """Reshape a per-channel vector so it broadcasts along the channel axis."""
        if not per_channel:
            return value
        shape = [1] * rank
        shape[self._channel_axis] = -1
        return tf.reshape(value, shape)

    def deploy_grid(self, latent=None) -> QuantGrid:
        """The trained grid at the current state.

        Args:
            latent: for weight quantizers whose grid depends on the weights (scale
                from mean |w|, power-of-two anchor at max |w|), the latent weights
                (an array of the kernel's shape, or larq's ``QuantizedVariable``).

        Returns:
            A ``QuantGrid``; the converter maps its ``kind`` to a deploy form.

        Raises:
            ValueError: the grid needs ``latent`` and none was given, or needs
                trained variables and the quantizer is not built.
            NotImplementedError: on this base class.
        """
        raise NotImplementedError(f"{type(self).__name__} does not describe a deploy grid")

    def compute_output_shape(self, input_shape):
        """The input's shape: quantizers are elementwise."""
        return input_shape
