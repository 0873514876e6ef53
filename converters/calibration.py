"""The calibration data (``representative_dataset``): its accepted forms, and checks
that it looks like what the model was trained on.

Full-int8 conversion picks the int8 range of every float tensor from the values the
calibration data produces there. Data on another scale than the training inputs
gives ranges that clip or waste the real values, and the converted model then
disagrees with Keras on real inputs, silently. So each input array is checked:

- errors (``CalibrationDataError``): no data at all, an empty generator, a batch
  whose number of arrays or shape does not fit the model's inputs, NaN or infinite
  values (they have no int8 range), non-numeric data;
- warnings (``CalibrationDataWarning``), naming the input and what is odd:
  * integer data for a float input, unless the model rescales that input itself;
  * data that looks like raw 8-bit pixels (every value a whole number in
    0..255, the largest above 1) for a float input the model does not rescale;
  * float64 data (converted to float32, the model's input type);
  * data where every value of an input is the same.

The pixel heuristic: a float input that no ``Rescaling`` or ``Normalization`` layer
reads directly is taken to expect values on the scale the network computes in
(~[0, 1], [-1, 1] or standardized), as every model in this package and its examples
does; whole numbers in 0..255 there are raw pixels that the training pipeline
scaled (x / 255.0) and the calibration data did not. A model trained on raw pixels
without such a layer gets the warning wrongly: filter ``CalibrationDataWarning``.
"""

import warnings
from typing import Callable, Iterator, List, NamedTuple, Optional

import numpy as np
import tensorflow as tf

ARGUMENT = "calibration data (representative_dataset, --calibration)"


class CalibrationDataError(ValueError):
    """Calibration data that cannot calibrate the model (empty, wrong shape, NaN)."""


class CalibrationDataWarning(UserWarning):
    """Calibration data that does not look like the model's training inputs."""


class ModelInput(NamedTuple):
    name: str
    shape: tuple  # without the batch dimension; None where any size fits
    dtype: np.dtype
    rescaled: bool  # a Rescaling / Normalization layer reads it directly

    def describe_shape(self) -> str:
        return "[n, " + ", ".join("?" if d is None else str(d) for d in self.shape) + "]"


def model_inputs(model) -> List[ModelInput]:
    found = []
    for tensor in model.inputs:
        name = getattr(tensor, "name", "input").split(":")[0]
        dtype = np.dtype(tf.as_dtype(tensor.dtype).as_numpy_dtype)
        found.append(ModelInput(name, tuple(tensor.shape[1:]), dtype, _rescaled(tensor)))
    return found


def _rescaled(tensor) -> bool:
    """Whether a Rescaling or Normalization layer reads the model input ``tensor``."""
    history = getattr(tensor, "_keras_history", None)
    input_layer = getattr(history, "layer", None)
    scaling = (tf.keras.layers.Rescaling, tf.keras.layers.Normalization)
    for node in getattr(input_layer, "outbound_nodes", []):
        if isinstance(node.outbound_layer, scaling):
            return True
    return False


class _InputStatistics:
    """What the checks need of one input over all batches."""

    def __init__(self):
        self.count = 0
        self.dtypes = set()
        self.low = np.inf
        self.high = -np.inf
        self.whole_numbers = True
        self.first: Optional[float] = None
        self.constant = True

    def add(self, array: np.ndarray):
        self.dtypes.add(array.dtype)
        if array.size == 0:
            return
        values = array.astype(np.float64, copy=False)
        if self.first is None:
            self.first = float(values.flat[0])
        self.count += array.shape[0]
        low, high = float(values.min()), float(values.max())
        self.low, self.high = min(self.low, low), max(self.high, high)
        self.constant = self.constant and low == high == self.first
        if self.whole_numbers and not np.issubdtype(array.dtype, np.integer):
            self.whole_numbers = bool(np.all(values == np.round(values)))

    def oddities(self, spec: ModelInput) -> List[str]:
        """What does not look like training inputs, one clause each."""
        found = []
        floating_input = np.issubdtype(spec.dtype, np.floating)
        integer_dtypes = sorted(d.name for d in self.dtypes if np.issubdtype(d, np.integer) or d == np.bool_)
        looks_like_pixels = (self.whole_numbers and self.low >= 0 and 1 < self.high <= 255)
        scale_hint = (
            "the model does not rescale this input (no Rescaling or Normalization layer reads "
            "it), so it was most likely trained on scaled values (e.g. x / 255.0): pass the "
            "calibration data exactly as the training data was fed to fit()"
        )
        if floating_input and integer_dtypes and not spec.rescaled:
            found.append(f"it is {'/'.join(integer_dtypes)} data (values {self._range()}) for a "
                         f"{spec.dtype.name} input; {scale_hint}")
        elif floating_input and looks_like_pixels and not spec.rescaled:
            found.append(f"its values are whole numbers in {self._range()}, like raw 8-bit pixels; "
                         f"{scale_hint}")
        if np.dtype(np.float64) in self.dtypes and spec.dtype != np.float64:
            found.append(f"it is float64 data; it is converted to {spec.dtype.name}, the model's "
                         "input type (fine if the values are those of training)")
        if self.constant and self.count > 0:
            found.append(
                f"every value is {self.first:g} (over {self.count} samples); the int8 ranges "
                "calibrated on constant data do not cover real inputs: use a few hundred "
                "training samples"
            )
        return found

    def _range(self) -> str:
        return f"{self.low:g}..{self.high:g}"


class CalibrationData:
    """A model's calibration data in any accepted form, checked as it is read.

    Forms: an array of input samples [n, ...] (fed one sample at a time, in
    order, so the calibration is deterministic), a list of such arrays (one per
    model input), a callable returning an iterable of batches (each an array for
    a one-input model, a list / tuple with one array per input, or a dict
    input name -> array), or a ``tf.data.Dataset`` of such batches.

    ``batches`` is the stock converter's ``representative_dataset``; it raises
    ``CalibrationDataError`` when a batch is malformed or nothing was yielded, and
    warns (``CalibrationDataWarning``, once) after the first full pass.
    """

    def __init__(self, model, data):
        self.inputs = model_inputs(model)
        self._statistics = [_InputStatistics() for _ in self.inputs]
        self._warned = False
        self._source = self._source_of(data)

    @classmethod
    def of(cls, model, data) -> "CalibrationData":
        return data if isinstance(data, cls) else cls(model, data)

    # --- forms -----------------------------------------------------------------

    def _source_of(self, data) -> Callable[[], Iterator]:
        if data is None:
            raise CalibrationDataError(
                "representative_dataset is required: full-int8 conversion calibrates the "
                "ranges of the float layers (stem, BatchNorm outputs) on real inputs; pass "
                "an array of input samples or a callable yielding [batch] lists"
            )
        if isinstance(data, tf.data.Dataset):
            return lambda: iter(data)
        if callable(data):
            return data
        if hasattr(data, "__next__"):
            raise CalibrationDataError(
                f"{ARGUMENT} is an iterator (e.g. a generator object), which can be read only "
                "once; pass the function that makes it (representative_dataset=make_batches, "
                "not make_batches()) or an array of samples"
            )
        arrays = list(data) if isinstance(data, (list, tuple)) else [data]
        if len(arrays) != len(self.inputs):
            raise CalibrationDataError(
                f"{ARGUMENT}: the model has {len(self.inputs)} inputs ({self._input_names()}), got "
                f"{len(arrays)} arrays; pass one array of samples per input"
            )
        arrays = [self._checked(array, spec, whole=True) for array, spec in zip(arrays, self.inputs)]
        counts = [array.shape[0] for array in arrays]
        if counts[0] == 0:
            raise CalibrationDataError(f"{ARGUMENT}: no samples given (an array of 0 samples)")
        if len(set(counts)) > 1:
            raise CalibrationDataError(
                f"{ARGUMENT}: the arrays for inputs {self._input_names()} hold {counts} samples; "
                "every input needs the same number"
            )
        for statistics, array in zip(self._statistics, arrays):
            statistics.add(array)
        self._warn()
        arrays = [array.astype(spec.dtype, copy=False) for array, spec in zip(arrays, self.inputs)]
        return lambda: ([a[i : i + 1] for a in arrays] for i in range(counts[0]))

    # --- checks ----------------------------------------------------------------

    def _input_names(self) -> str:
        return ", ".join(repr(spec.name) for spec in self.inputs)

    def _checked(self, value, spec: ModelInput, whole: bool) -> np.ndarray:
        """``value`` as an array (its own dtype) after the type, shape and value
        checks; ``whole``: all the samples of the input, else one yielded batch."""
        what = "samples" if whole else "a batch"
        try:
            array = np.asarray(value)
        except (ValueError, TypeError) as error:
            raise CalibrationDataError(
                f"{ARGUMENT}: {what} for input {spec.name!r} is not an array ({error})"
            ) from error
        if not (np.issubdtype(array.dtype, np.number) or array.dtype == np.bool_):
            raise CalibrationDataError(
                f"{ARGUMENT}: {what} for input {spec.name!r} has dtype {array.dtype} (type "
                f"{type(value).__name__}); expected numbers of shape {spec.describe_shape()}"
            )
        fits = array.ndim == len(spec.shape) + 1 and all(
            expected is None or expected == got for expected, got in zip(spec.shape, array.shape[1:])
        )
        if not fits:
            raise CalibrationDataError(
                f"{ARGUMENT}: {what} of shape {list(array.shape)} {'do' if whole else 'does'} not "
                f"fit model input {spec.name!r}, which takes {spec.describe_shape()} (n samples first)"
            )
        self._check_finite(array, spec, "" if whole else " of a batch")
        return array

    def _check_finite(self, array: np.ndarray, spec: ModelInput, within: str):
        if not np.issubdtype(array.dtype, np.floating):
            return
        bad = ~np.isfinite(array)
        if not bad.any():
            return
        nan = int(np.isnan(array).sum())
        sample = int(np.argwhere(bad)[0][0])
        raise CalibrationDataError(
            f"{ARGUMENT}: input {spec.name!r} holds {nan} NaN and {int(bad.sum()) - nan} infinite "
            f"values (the first in sample {sample}{within}); they cannot be calibrated (an int8 "
            "range needs finite values): drop or repair those samples"
        )

    def _batch(self, item) -> List[np.ndarray]:
        """One yielded batch as a list of checked arrays in model input order."""
        if isinstance(item, dict):
            missing = [spec.name for spec in self.inputs if spec.name not in item]
            if missing:
                raise CalibrationDataError(
                    f"{ARGUMENT}: a batch dict has keys {sorted(item)}, not the model inputs "
                    f"{missing}"
                )
            values = [item[spec.name] for spec in self.inputs]
        elif isinstance(item, (list, tuple)):
            values = list(item)
        else:
            values = [item]
        if len(values) != len(self.inputs):
            raise CalibrationDataError(
                f"{ARGUMENT}: each batch must hold {len(self.inputs)} array(s), one per model input "
                f"({self._input_names()}), got {len(values)}; a dataset of (x, y) pairs: keep x only "
                "(dataset.map(lambda x, y: x))"
            )
        return [self._checked(value, spec, whole=False) for value, spec in zip(values, self.inputs)]

    def _warn(self):
        if self._warned:
            return
        self._warned = True
        for spec, statistics in zip(self.inputs, self._statistics):
            for oddity in statistics.oddities(spec):
                warnings.warn(
                    f"{ARGUMENT} for input {spec.name!r} does not look like training inputs: "
                    f"{oddity}",
                    CalibrationDataWarning,
                    stacklevel=2,
                )

    # --- reading ---------------------------------------------------------------

    def batches(self) -> Iterator[List[np.ndarray]]:
        """Every batch, checked (the stock converter's ``representative_dataset``)."""
        first_pass = not self._warned
        yielded = 0
        for item in self._source():
            batch = self._batch(item)
            if first_pass:
                for statistics, array in zip(self._statistics, batch):
                    statistics.add(array)
            yielded += 1
            yield [array.astype(spec.dtype, copy=False) for array, spec in zip(batch, self.inputs)]
        if yielded == 0:
            raise CalibrationDataError(
                f"{ARGUMENT} was empty: it yielded no batches (an exhausted "
                "iterator or an empty dataset?); the float layers need real inputs to calibrate"
            )
        self._warn()

    def samples(self, limit: int = 1000) -> List[np.ndarray]:
        """The first ``limit`` samples as one array per model input."""
        collected: List[List[np.ndarray]] = [[] for _ in self.inputs]
        count = 0
        for batch in self.batches():
            for store, array in zip(collected, batch):
                store.append(array)
            count += len(batch[0])
            if count >= limit:
                break
        return [np.concatenate(store)[:limit] for store in collected]
