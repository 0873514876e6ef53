"""Residual streams: tensors held as int32 values so their signs stay exact.

A Bi-Real-style shortcut adds a layer's output to a real-valued tensor whose sign is
taken later: x1 = x0 + BN(bconv(sign(x0))). No per-channel threshold on one
accumulator gives sign(x1); the stock model's int8 tensors would round x0 and x1
before the sign. tfq-plus keeps such tensors (a "stream") as int32 values on one
fixed scale S per stream: each planned layer writes round((a * acc + b) / S) (plus
the residual operand it absorbs, see ``plans.AddPlan``), every sign is the sign of
an exact integer sum, and a builtin QUANTIZE leaves the stream where an int8 layer
reads it.

The scale puts the largest magnitude the calibration data reaches at 2^28: values
up to 8x beyond it still fit in int32, and the resolution (2^-28 of that range) is
finer than float32's rounding of the terms Keras adds.
"""

from typing import Dict

import numpy as np
import tensorflow as tf

from tfq_plus.converters import plans as P

STREAM_FULL_SCALE = 2.0**28


def stream_values(model, names, samples) -> Dict[str, np.ndarray]:
    """Keras outputs of layers ``names`` on ``samples`` (a list of input arrays)."""
    outputs = [model.get_layer(name).output for name in names]
    probe = tf.keras.Model(model.inputs, outputs)
    values = probe.predict(samples if len(samples) > 1 else samples[0], verbose=0, batch_size=64)
    if len(names) == 1:
        values = [values]
    return {name: np.asarray(v) for name, v in zip(names, values)}


def calibrate_streams(model, plans: P.Plans, samples) -> Dict[int, float]:
    """Stream id -> scale S (float32-representable) from the calibration samples."""
    names = sorted(plans.streams)
    values = stream_values(model, names, samples)
    peaks: Dict[int, float] = {}
    for name in names:
        stream = plans.streams[name]
        peaks[stream] = max(peaks.get(stream, 0.0), float(np.max(np.abs(values[name]))))
    return {stream: float(np.float32(peak / STREAM_FULL_SCALE if peak > 0 else 2.0**-28))
            for stream, peak in peaks.items()}
