"""Planning: which Keras layers deploy as TFQP ops, and how (see ``plans``).

Walks the model's layer graph once and decides, per layer:

- **binarizers**: a larq ``Quant*`` layer whose input quantizer gives signs, or a
  quantizer used as a layer (``lq.quantizers.SteSign()(x)``) whose grid is binary;
- **signs-input layers**: ``QuantConv2D`` / ``QuantDense`` reading binarized
  activations with a binary kernel: ``TFQP_BCONV2D`` / ``TFQP_BFULLY_CONNECTED``;
- **int8-input layers whose output is binarized**: any convolution or dense layer
  (float kernel, or a binary kernel on real inputs) whose output chain ends in a
  binarization: ``TFQP_CONV2D_INT8`` / ``TFQP_FULLY_CONNECTED_INT8``, so no sign is
  ever taken of a builtin op's requantized int8 output;
- **shift-op layers**: convolutions, depthwise convolutions and dense layers whose
  kernel is on a shift-family grid (power of two / INQ, log, ShiftCNN sums,
  ternary), or binary on int8 inputs with an int8 output (a binary depthwise
  always), on int8 inputs or on binarized ones (the stock +-1 int8 tensor):
  ``TFQP_SHIFT_CONV2D`` / ``TFQP_SHIFT_DEPTHWISE_CONV2D`` / ``TFQP_SHIFT_FULLY_CONNECTED``
  with codes through a table (``shift_codes``), int8 or packed output;
- **chains**: from each planned layer's output, the single-consumer layers whose
  float32 computation the TFQP op folds into its output transform: elementwise
  per-channel layers (BatchNormalization, monotone activations, dropout at
  inference), max-pools (convolutions), a final flatten;
- **coders**: a layer whose input quantizer (or a quantizer used as a layer) is a
  k-bit activation grid (PACT, LSQ, Uniform, DoReFa: ``deploy_table.CODES``); the
  layer that computes their input (through its chain) is planned with a codes
  output, so the codes are Keras's (``activation_codes``);
- **outputs**: packed signs where every consumer of the chain's end binarizes it;
  k-bit codes where every consumer quantizes it to one grid;
  int32 stream values where the end is also needed as a value by something whose
  result is binarized later (a residual ``Add``), or by a builtin layer beside a
  binarization; int8 values otherwise.
"""

from typing import Dict, List, Optional

import larq as lq
import numpy as np
import tensorflow as tf

from tfq_plus.converters import deploy_table
from tfq_plus.converters.activation_codes import CodeGrid, code_grid
from tfq_plus.converters import plans as P
from tfq_plus.converters import shift_codes
from tfq_plus.converters import uniform_codes
from tfq_plus.converters.keras_graph import KerasGraph
from tfq_plus.converters.tflite_arithmetic import round_half_away
from tfq_plus.quantizers import grid as grids

CONV_LAYERS = (lq.layers.QuantConv2D, tf.keras.layers.Conv2D)
DENSE_LAYERS = (lq.layers.QuantDense, tf.keras.layers.Dense)

# Activations that are monotone non-decreasing elementwise functions (foldable
# before a sign); "linear" is also affine.
MONOTONE_ACTIVATIONS = {
    "linear", "relu", "relu6", "elu", "selu", "tanh", "sigmoid", "hard_sigmoid",
    "softsign", "softplus", "exponential", "leaky_relu",
}
INFERENCE_IDENTITIES = (
    tf.keras.layers.Dropout, tf.keras.layers.SpatialDropout1D, tf.keras.layers.SpatialDropout2D,
    tf.keras.layers.GaussianNoise, tf.keras.layers.GaussianDropout, tf.keras.layers.AlphaDropout,
    tf.keras.layers.ActivityRegularization,
)


def unwrap(layer):
    """The layer a TFMOT pruning wrapper holds (else the layer itself)."""
    if type(layer).__name__ == "PruneLowMagnitude":
        return layer.layer
    return layer


def pruning_masks(layer) -> Dict[int, np.ndarray]:
    """id(weight) -> mask of a pruning wrapper's pruned weights."""
    if type(layer).__name__ != "PruneLowMagnitude":
        return {}
    return {id(weight): mask.numpy() for weight, mask, _ in getattr(layer, "pruning_vars", [])}


def latent_weights(layer, variable) -> np.ndarray:
    """A weight's float values as the model deploys them (pruning masks applied)."""
    masks = pruning_masks(layer)
    base = getattr(variable, "latent_variable", variable)
    values = np.asarray(base.numpy(), dtype=np.float32)
    for candidate in (variable, base):
        if id(candidate) in masks:
            values = values * masks[id(candidate)]
    return values


def activation_name(function) -> Optional[str]:
    try:
        name = tf.keras.activations.serialize(function)
    except ValueError:
        return None
    return name if isinstance(name, str) else None


# --- binarizers --------------------------------------------------------------------


def binarizes_input(layer) -> bool:
    """The layer's input quantizer (or the layer itself, a quantizer layer) maps its
    input to signs {-1, +1}."""
    inner = unwrap(layer)
    if isinstance(inner, lq.quantizers.Quantizer):
        form = deploy_table.activation_form(inner.name, inner, role="quantizer layer")
        return form.form == deploy_table.BINARIZE
    quantizer = getattr(inner, "input_quantizer", None)
    if quantizer is None:
        return False
    form = deploy_table.activation_form(inner.name, quantizer)
    return form.form == deploy_table.BINARIZE


def coding_grid(layer) -> Optional[CodeGrid]:
    """The k-bit grid the layer's input quantizer (or the layer itself, a quantizer
    layer) maps its input to, else None."""
    inner = unwrap(layer)
    if isinstance(inner, lq.quantizers.Quantizer):
        quantizer, role = inner, "quantizer layer"
    else:
        quantizer, role = getattr(inner, "input_quantizer", None), "input quantizer"
    if quantizer is None:
        return None
    if deploy_table.activation_form(inner.name, quantizer, role).form != deploy_table.CODES:
        return None
    return code_grid(inner.name, quantizer, role)


def is_sign_layer(layer) -> bool:
    """A quantizer used as a layer that binarizes."""
    return isinstance(unwrap(layer), lq.quantizers.Quantizer) and binarizes_input(layer)


# --- chain steps -------------------------------------------------------------------


def _batch_norm_affine(layer):
    variance = layer.moving_variance.numpy().astype(np.float64)
    gamma = layer.gamma.numpy().astype(np.float64) if layer.gamma is not None else np.ones_like(variance)
    beta = layer.beta.numpy().astype(np.float64) if layer.beta is not None else np.zeros_like(variance)
    mean = layer.moving_mean.numpy().astype(np.float64)
    a = gamma / np.sqrt(variance + layer.epsilon)
    return a, beta - mean * a


def _last_axis(layer, rank: int) -> bool:
    axis = layer.axis if isinstance(layer.axis, (list, tuple)) else [layer.axis]
    return list(axis) in ([-1], [rank - 1])


def _call(layer):
    return lambda tensor: layer(tensor, training=False)


def elementwise_step(layer, channels: int, rank: int) -> Optional[P.ChainStep]:
    """A per-channel monotone elementwise layer as a chain step, else None."""
    if isinstance(layer, tf.keras.layers.BatchNormalization):
        if not _last_axis(layer, rank):
            return None
        a, b = _batch_norm_affine(layer)
        if a.shape != (channels,):
            return None
        return P.ChainStep(layer, P.ELEMENTWISE, np.where(a < 0, -1, 1), (a, b), _call(layer))
    ones, zeros = np.ones(channels), np.zeros(channels)
    if isinstance(layer, INFERENCE_IDENTITIES):
        return P.ChainStep(layer, P.ELEMENTWISE, np.ones(channels, np.int64), (ones, zeros), _call(layer))
    if isinstance(layer, tf.keras.layers.Activation):
        name = activation_name(layer.activation)
        if name not in MONOTONE_ACTIVATIONS:
            return None
        affine = (ones, zeros) if name == "linear" else None
        return P.ChainStep(layer, P.ELEMENTWISE, np.ones(channels, np.int64), affine, _call(layer))
    if isinstance(layer, tf.keras.layers.ReLU):
        if float(layer.negative_slope) < 0:
            return None
        return P.ChainStep(layer, P.ELEMENTWISE, np.ones(channels, np.int64), None, _call(layer))
    if isinstance(layer, tf.keras.layers.LeakyReLU):
        if float(layer.alpha) < 0:
            return None
        return P.ChainStep(layer, P.ELEMENTWISE, np.ones(channels, np.int64), None, _call(layer))
    return None


def max_pool_step(layer, rank: int) -> Optional[P.ChainStep]:
    if not isinstance(layer, tf.keras.layers.MaxPool2D) or rank != 4:
        return None
    if layer.data_format != "channels_last":
        return None
    return P.ChainStep(layer, P.MAX_POOL)


def flatten_step(layer, input_shape) -> Optional[P.ChainStep]:
    """A Flatten (or Reshape to [batch, features]) of a [N, H, W, C] tensor."""
    if isinstance(layer, tf.keras.layers.Flatten):
        if getattr(layer, "data_format", "channels_last") not in (None, "channels_last"):
            return None
        return P.ChainStep(layer, P.FLATTEN)
    if isinstance(layer, tf.keras.layers.Reshape):
        target = tuple(layer.target_shape)
        if len(target) == 1 and target[0] in (-1, int(np.prod(input_shape[1:]))):
            return P.ChainStep(layer, P.FLATTEN)
    return None


def _own_activation_step(layer, channels: int) -> Optional[P.ChainStep]:
    """The planned layer's own activation argument as a step (None for linear)."""
    name = activation_name(getattr(layer, "activation", None))
    if name in (None, "linear"):
        return None
    if name not in MONOTONE_ACTIVATIONS:
        raise ValueError(
            f"layer {layer.name!r}: activation {name!r} is not monotone; a TFQP op can only "
            f"fold monotone activations ({sorted(MONOTONE_ACTIVATIONS)}) into its output"
        )
    return P.ChainStep(layer, P.ELEMENTWISE, np.ones(channels, np.int64), None, layer.activation,
                       own_activation=True)


# --- kernels -----------------------------------------------------------------------


def _to_tflite_layout(kernel: np.ndarray, op: str) -> np.ndarray:
    """Keras HWIO conv kernel -> OHWI; Keras dense [Cin, Cout] -> [Cout, Cin]."""
    return np.transpose(kernel, (3, 0, 1, 2)) if op == P.CONV2D else np.transpose(kernel)


# A float kernel before a sign is rounded to int16 codes, not int8: the first
# layer of a BNN (where this happens) has few weights, and 2^8 times finer codes
# make the signs it computes differ from Keras's 2^8 times less often (measured on
# the MNIST demo's float stem: 93,570 of 251 M first-layer signs flipped with int8
# codes). The codes stop where the accumulator could leave int32: sum |w| * 255
# < 2^31 per channel (``TFQP_CONV2D_INT8``'s bound).
ROUNDED_MAX_CODE = 32767


def rounded_grid(values: np.ndarray) -> P.KernelGrid:
    """A float kernel (TFLite layout) rounded symmetrically per output channel to
    integer codes up to ROUNDED_MAX_CODE (fewer where a channel's taps would let
    the int32 accumulator overflow), round half away from zero."""
    flat = values.reshape(values.shape[0], -1).astype(np.float64)
    magnitude = np.abs(flat).max(axis=1)
    taps = flat.shape[1]
    # sum |codes| <= taps * max code; keep 255 * that below 2^31
    max_code = min(ROUNDED_MAX_CODE, (2**31 - 1) // (255 * taps))
    if max_code < 127:
        raise ValueError(
            f"a float kernel of {taps} taps per output channel is too large for an exact int32 "
            "accumulator of int8 inputs (at most 66311 taps)"
        )
    scale = np.where(magnitude > 0, magnitude / max_code, 1.0)
    ratio = flat / scale[:, None]
    codes = np.sign(ratio) * np.floor(np.abs(ratio) + 0.5)
    codes = np.clip(codes, -max_code, max_code).astype(np.int32).reshape(values.shape)
    return P.KernelGrid(P.ROUNDED_KERNEL, codes, scale, exact=False)


def uniform_grid(layer_name: str, values: np.ndarray, grid) -> P.KernelGrid:
    """A symmetric uniform kernel (<= 8 bits) on its trained grid: codes = w / step."""
    bits = int(grid.bits)
    steps = np.broadcast_to(np.asarray(grid.scale, np.float64).reshape(-1), (values.shape[0],)) \
        if np.size(grid.scale) > 1 else np.full(values.shape[0], float(np.asarray(grid.scale)))
    low = np.asarray(grid.range_min, np.float64).reshape(-1)
    high = np.asarray(grid.range_max, np.float64).reshape(-1)
    if bits > 8 or not np.allclose(low, -high, rtol=1e-6):
        raise ValueError(
            f"layer {layer_name!r}: uniform kernels deploy here when symmetric with at most 8 "
            f"bits (got {bits} bits, range [{low.min():g}, {high.max():g}]); use "
            "Uniform(bits<=8, symmetric=True)"
        )
    flat = values.reshape(values.shape[0], -1).astype(np.float64)
    ratio = flat / steps[:, None]
    codes = np.floor(ratio + 0.5)
    if np.max(np.abs(ratio - codes)) > 1e-3:
        raise ValueError(f"layer {layer_name!r}: the kernel's values are not on its uniform grid")
    limit = 2 ** (bits - 1) - 1
    codes = np.clip(codes, -limit, limit).astype(np.int32).reshape(values.shape)
    return P.KernelGrid(P.UNIFORM_KERNEL, codes, steps, exact=True)


def binary_grid(layer_name: str, values: np.ndarray) -> P.KernelGrid:
    """A binary kernel's values (TFLite layout, +-scale per output channel)."""
    flat = values.reshape(values.shape[0], -1).astype(np.float64)
    magnitude = np.abs(flat)
    scale = magnitude[:, 0]
    if not np.allclose(magnitude, scale[:, None], rtol=1e-6, atol=0) or np.any(scale == 0):
        raise ValueError(
            f"layer {layer_name!r}: the kernel quantizer was described as binary but its "
            "values are not +-scale (scale > 0) per output channel"
        )
    codes = np.where(flat < 0, -1, 1).astype(np.int32).reshape(values.shape)
    return P.KernelGrid(P.BINARY_KERNEL, codes, scale, exact=True)


def kernel_parts(layer):
    """(kernel variable, kernel quantizer) of a conv / depthwise / dense layer."""
    inner = unwrap(layer)
    if isinstance(inner, tf.keras.layers.DepthwiseConv2D):
        return inner.depthwise_kernel, getattr(inner, "depthwise_quantizer", None)
    return inner.kernel, getattr(inner, "kernel_quantizer", None)


def kernel_form(layer) -> deploy_table.DeployForm:
    variable, quantizer = kernel_parts(layer)
    return deploy_table.kernel_form(unwrap(layer).name, quantizer, latent_weights(layer, variable))


def kernel_grid(layer, op: str, shift: bool = False) -> P.KernelGrid:
    """The kernel of a conv / depthwise / dense layer (larq or plain) as an integer
    grid: codes through a table for a shift op (``shift``), else int codes."""
    inner = unwrap(layer)
    variable, quantizer = kernel_parts(layer)
    latent = latent_weights(layer, variable)
    form = deploy_table.kernel_form(inner.name, quantizer, latent)
    if form.form == deploy_table.FLOAT:
        return rounded_grid(_to_tflite_layout(latent, op))
    quantized = np.asarray(quantizer(tf.constant(latent)).numpy(), dtype=np.float32)
    if shift:
        return shift_grid(inner.name, quantizer, form.grid, latent, quantized, op)
    if form.form == deploy_table.BIT_PACKED:
        return binary_grid(inner.name, _to_tflite_layout(quantized, op))
    if form.form == deploy_table.INT_CODES:
        return uniform_grid(inner.name, _to_tflite_layout(quantized, op), form.grid)
    raise ValueError(f"layer {inner.name!r}: kernel deploy form {form.form!r} has no TFQP op")


def shift_grid(layer_name: str, quantizer, grid, latent, quantized, op: str) -> P.KernelGrid:
    """A shift-family or 2- to 5-bit uniform kernel (``deploy_table.SHIFT_CODES``, or
    binary) as codes through a table (``shift_codes``, ``uniform_codes``), from Keras's
    quantized kernel."""
    values = shift_codes.rows(quantized, op)
    terms = 1
    if grid.kind == grids.POWER_OF_TWO:
        family = "power of two" if float(grid.base) == 2.0 else "log sqrt2"
        levels = shift_codes.power_of_two_levels(layer_name, values)
    elif grid.kind in (grids.TERNARY, grids.BINARY):
        family = grid.kind
        levels = shift_codes.sign_levels(layer_name, values)
    elif grid.kind == grids.UNIFORM:
        codes = uniform_codes.uniform_codes(layer_name, grid, quantized, op)
        return P.KernelGrid(P.SHIFT_KERNEL, codes.codes, codes.scales[0], exact=True, shift=codes)
    elif grid.kind == grids.SHIFT_SUM and hasattr(quantizer, "num_shifts"):
        family = "shift sum"
        terms = int(quantizer.num_shifts)
        levels = shift_codes.shift_sum_levels(layer_name, quantizer, latent, op)
    else:
        raise ValueError(
            f"layer {layer_name!r}: a {grid.kind} kernel of {deploy_table.quantizer_name(quantizer)} has "
            "no shift-op codes (supported: power-of-two / log, ternary, binary, ShiftQuantizer sums, "
            "2- to 5-bit uniform)"
        )
    codes = shift_codes.shift_codes(layer_name, family, levels, values, terms)
    return P.KernelGrid(P.SHIFT_KERNEL, codes.codes, codes.scales[0], exact=True, shift=codes)


def geometry(layer, op: str, pad_value: int) -> P.Geometry:
    inner = unwrap(layer)
    if op == P.DENSE:
        return P.Geometry()
    kh, kw = inner.kernel_size
    sh, sw = inner.strides
    dh, dw = inner.dilation_rate
    multiplier = int(inner.depth_multiplier) if op == P.DEPTHWISE else 1
    return P.Geometry(kh, kw, sh, sw, dh, dw, inner.padding, pad_value, multiplier)


def pad_values_of(layer) -> float:
    value = getattr(unwrap(layer), "pad_values", 0.0)
    if tf.is_tensor(value) or isinstance(value, tf.Variable):
        value = float(tf.keras.backend.get_value(value))
    return float(value)


def _check_codes_chain(plan: P.LayerPlan) -> None:
    """A max-pool commutes with the codes (a non-decreasing quantizer) only where
    every elementwise step after it is non-decreasing too."""
    pooled = False
    for step in plan.chain:
        if step.kind == P.MAX_POOL:
            pooled = True
        elif pooled and step.kind == P.ELEMENTWISE and np.any(np.asarray(step.direction) < 0):
            raise ValueError(
                f"layer {plan.name!r}: {step.name!r} after max-pool decreases in some channels, so "
                "the pool does not commute with the k-bit codes of its output (a min-pool would be "
                "needed); put the max-pool after the BatchNormalization or keep its multipliers positive"
            )


# --- the planner --------------------------------------------------------------------


def int4_builtin(plan: P.LayerPlan) -> bool:
    """A 4-bit uniform kernel of one class on int8 values with int8 values out: the
    stock op can run it with an INT4 filter (``patterns.int4``, which keeps the coded
    op where a runtime cannot)."""
    codes = plan.kernel.shift
    return (codes is not None and codes.family == f"{uniform_codes.FAMILY} 4-bit" and codes.classes == 1
            and plan.input == P.INT8 and plan.output == P.INT8_VALUES)


class Planner:
    def __init__(self, model, int4_builtin: bool = True):
        self.model = model
        self.int4_builtin = int4_builtin
        self.graph = KerasGraph(model)
        self.plans = P.Plans()
        self._binarizer: Dict[str, bool] = {}

    # layer predicates

    def binarizer(self, name: str) -> bool:
        if name not in self._binarizer:
            layer = self.graph.layers[name]
            self._binarizer[name] = (
                not isinstance(layer, tf.keras.layers.InputLayer) and binarizes_input(layer)
            )
        return self._binarizer[name]

    def signs_input_layer(self, name: str) -> Optional[str]:
        """For a layer reading signs: the layer whose scope binarizes (itself, or the
        quantizer layer it reads)."""
        inner = unwrap(self.graph.layers[name])
        if getattr(inner, "input_quantizer", None) is not None:
            return name if self.binarizer(name) else None
        source = self.graph.input_of(name)
        if source is not None and is_sign_layer(self.graph.layers[source]):
            return source
        return None

    def output_shape(self, name: str):
        return tuple(self.graph.layers[name].output_shape)

    # the walk

    def run(self) -> P.Plans:
        graph = self.graph
        for name, layer in graph.layers.items():
            if is_sign_layer(layer):
                self.plans.sign_layers[name] = graph.input_of(name)
        for name in graph.layers:
            binarizing = [c for c in graph.consumers.get(name, []) if self._binarizes_output_of(c, name)]
            if binarizing:
                self.plans.binarized[name] = binarizing
        self._plan_coded()
        self._exact = self._exact_needed()
        for name, layer in graph.layers.items():
            plan = self._plan_layer(name, layer)
            if plan is not None:
                self.plans.layers[name] = plan
        self._check_coded()
        self._plan_streams()
        return self.plans

    def _plan_coded(self):
        """``plans.coded``: the tensors every reader quantizes to one k-bit grid."""
        graph = self.graph
        for name, layer in graph.layers.items():
            if isinstance(layer, tf.keras.layers.InputLayer):
                continue
            producer = graph.input_of(name)
            grid = coding_grid(layer)
            if grid is None or producer is None:
                continue
            if producer in self.plans.coded:
                known, readers = self.plans.coded[producer]
                if not known.same_grid(grid):
                    raise ValueError(
                        f"layers {readers[0]!r} and {name!r} quantize the output of {producer!r} to "
                        "different k-bit grids; the converter deploys one grid per tensor"
                    )
                readers.append(name)
                continue
            self.plans.coded[producer] = (grid, [name])
        for producer, (grid, readers) in self.plans.coded.items():
            others = [c for c in graph.consumers.get(producer, []) if c not in readers and c != producer]
            if others or producer in graph.outputs:
                what = f"{others} read it unquantized" if others else "it is a model output"
                raise ValueError(
                    f"layer {readers[0]!r}: its {grid.bits}-bit {deploy_table.quantizer_name(grid.quantizer)} "
                    f"codes of {producer!r} deploy only where every reader of {producer!r} quantizes "
                    f"it to that grid; {what}"
                )
            self.plans.code_readers[producer] = [
                reader for name in readers
                for reader in (graph.consumers.get(name, [])
                               if isinstance(unwrap(graph.layers[name]), lq.quantizers.Quantizer) else [name])
            ]

    def _check_coded(self):
        """Every coded tensor is written by a planned layer's codes output."""
        for producer, (grid, readers) in self.plans.coded.items():
            plan = self.plans.by_output(producer)
            if plan is None or plan.output != P.CODES:
                layer = self.graph.layers[producer]
                raise ValueError(
                    f"layer {readers[0]!r}: its {grid.bits}-bit {deploy_table.quantizer_name(grid.quantizer)} "
                    f"input codes need a producing TFQP op; {producer!r} ({type(unwrap(layer)).__name__}) is "
                    "not one: k-bit activations deploy after a Conv2D / Dense (float, int8 or coded-weight "
                    "kernel, on int8 inputs) or a DepthwiseConv2D with a coded-weight kernel, through "
                    "BatchNormalization, bias, monotone activations, max-pools and a flatten"
                )

    def _binarizes_output_of(self, consumer: str, producer: str) -> bool:
        """Whether ``consumer`` binarizes the output of ``producer``."""
        if not self.binarizer(consumer):
            return False
        layer = self.graph.layers[consumer]
        return isinstance(unwrap(layer), lq.quantizers.Quantizer) or \
            getattr(unwrap(layer), "input_quantizer", None) is not None

    def _exact_needed(self) -> Dict[str, bool]:
        """Layer name -> its output's exact values matter for a later sign: it is
        binarized, or added (Add) into a tensor whose exact values matter."""
        needed: Dict[str, bool] = {}
        for name in reversed(list(self.graph.layers)):
            consumers = self.graph.consumers.get(name, [])
            needed[name] = bool(self.plans.binarized.get(name)) or any(
                isinstance(self.graph.layers[c], tf.keras.layers.Add) and needed.get(c, False)
                for c in consumers
            )
        return needed

    def _plan_layer(self, name: str, layer) -> Optional[P.LayerPlan]:
        inner = unwrap(layer)
        if isinstance(inner, tf.keras.layers.DepthwiseConv2D):
            op = P.DEPTHWISE
        elif isinstance(inner, CONV_LAYERS):
            op = P.CONV2D
        elif isinstance(inner, DENSE_LAYERS):
            op = P.DENSE
        else:
            return None
        if self.graph.shared(name):
            return None
        binarizer = self.signs_input_layer(name)
        form = kernel_form(layer).form
        if op == P.DEPTHWISE and form not in (deploy_table.SHIFT_CODES, deploy_table.BIT_PACKED):
            return None  # a float or int8 depthwise kernel: the stock op
        if binarizer is not None:
            if form not in (deploy_table.BIT_PACKED, deploy_table.SHIFT_CODES):
                return None  # signs times a float kernel: a builtin op on unpacked signs
            input_kind = P.SIGNS
        else:
            quantizer = getattr(inner, "input_quantizer", None)
            if quantizer is not None and deploy_table.activation_form(inner.name, quantizer).form \
                    not in (deploy_table.FLOAT, deploy_table.CODES):
                return None
            input_kind = P.INT8  # real values, or k-bit codes (int8 on their grid)
        chain, end = self._chain(name, op, inner)
        output = self._output_kind(end, chain)
        # binary kernels: TFQP_BCONV2D / TFQP_BFULLY_CONNECTED on signs, TFQP_CONV2D_INT8 /
        # TFQP_FULLY_CONNECTED_INT8 before a sign; depthwise ones and int8 outputs of
        # real inputs are 1-bit shift ops
        shift = form == deploy_table.SHIFT_CODES or (
            form == deploy_table.BIT_PACKED
            and (op == P.DEPTHWISE or output == P.CODES
                 or (input_kind == P.INT8 and output == P.INT8_VALUES)))
        if input_kind == P.INT8 and output == P.INT8_VALUES and not shift:
            return None  # nothing binarized downstream: the builtin op is what stock has
        if shift and output == P.INT32_VALUES:
            raise ValueError(
                f"layer {inner.name!r}: a shift-op kernel whose output joins a residual stream "
                "binarized later (int32 stream values) is not supported; shift ops write int8 "
                "values or packed signs"
            )
        self._check_layer(inner, op, input_kind)
        pad_value = 0
        if input_kind == P.SIGNS and op == P.CONV2D and inner.padding == "same":
            pad = pad_values_of(layer)
            if pad not in (0.0, 1.0):
                raise ValueError(
                    f"layer {inner.name!r}: pad_values={pad} has no binary deploy form; "
                    "TFQP_BCONV2D pads binarized inputs with 0 (pad_values=0.0) or +1 "
                    "(pad_values=1.0)"
                )
            pad_value = int(pad)
        if shift and input_kind == P.SIGNS and op != P.DENSE and inner.padding == "same" \
                and pad_values_of(layer) != 0.0:
            raise ValueError(
                f"layer {inner.name!r}: pad_values={pad_values_of(layer)} with a shift-op kernel on "
                "binarized inputs is not supported; shift ops pad with 0 (pad_values=0.0)"
            )
        elif input_kind == P.INT8 and op != P.DENSE and inner.padding == "same" and pad_values_of(layer) != 0.0:
            raise ValueError(
                f"layer {inner.name!r}: pad_values={pad_values_of(layer)} on a real-valued "
                "input has no deploy form; use pad_values=0.0"
            )
        input_layer = self.graph.input_of(binarizer if binarizer not in (None, name) else name)
        if output == P.INT32_VALUES and any(step.affine is None for step in chain):
            raise ValueError(
                f"layer {inner.name!r}: its output {end!r} is added to a residual stream whose "
                "signs are taken later, which needs an affine computation after the layer "
                f"(BatchNormalization, bias); got {[s.name for s in chain if s.affine is None]}"
            )
        bias = latent_weights(layer, inner.bias) if getattr(inner, "use_bias", False) else None
        plan = P.LayerPlan(
            name=name, scope=inner.name, layer=layer, op=op, input=input_kind,
            input_layer=input_layer, binarizer=binarizer if input_kind == P.SIGNS else None,
            kernel=kernel_grid(layer, op, shift), bias=bias,
            geometry=geometry(layer, op, pad_value), chain=chain, output=output, output_layer=end,
        )
        plan.input_is_model_input = isinstance(self.graph.layers.get(input_layer), tf.keras.layers.InputLayer)
        plan.int4_builtin = self.int4_builtin and int4_builtin(plan)
        if output == P.CODES:
            plan.output_grid = self.plans.coded[end][0]
            _check_codes_chain(plan)
        if shift and output in (P.PACKED, P.CODES) and plan.kernel.shift.classes > 1:
            next_step, form = (("binarized", "packed-sign") if output == P.PACKED
                               else ("quantized to k-bit codes", "codes"))
            raise ValueError(
                f"layer {inner.name!r}: its output is {next_step} next, but its {plan.kernel.shift.family} "
                f"kernel needs two accumulator classes (two scales), which have no {form} output; "
                f"{form} outputs need one class (equal ternary scales, or base-2 powers)"
            )
        return plan

    def _check_layer(self, inner, op: str, input_kind: str):
        if op != P.DENSE:
            if inner.data_format != "channels_last":
                raise ValueError(
                    f"layer {inner.name!r}: data_format={inner.data_format!r} is not supported; "
                    "TFLite convolutions are channels_last"
                )
            if getattr(inner, "groups", 1) != 1:
                raise ValueError(
                    f"layer {inner.name!r}: grouped convolutions (groups={inner.groups}) are "
                    "not supported"
                )
        elif len(inner.input_shape) != 2:
            raise ValueError(
                f"layer {inner.name!r}: a quantized Dense needs a [batch, features] input "
                f"(got {inner.input_shape}); put a Flatten before it"
            )

    def _chain(self, name: str, op: str, inner):
        """(steps, name of the layer whose output ends the chain)."""
        shape = self.output_shape(name)
        channels = shape[-1]
        chain: List[P.ChainStep] = []
        own = _own_activation_step(inner, channels)
        if own is not None:
            chain.append(own)
        current = name
        flattened = False
        while True:
            if self.plans.binarized.get(current) and self._all_binarize(current):
                return chain, current
            if current in self.plans.coded:
                return chain, current
            following = self.graph.single_consumer(current)
            if following is None:
                return chain, current
            layer = self.graph.layers[following]
            rank = len(self.output_shape(current))
            step = None
            if not flattened:
                step = elementwise_step(layer, channels, rank)
                if step is None and op != P.DENSE:
                    step = max_pool_step(layer, rank)
            if step is None and rank == 4 and op != P.DENSE and not flattened:
                step = flatten_step(layer, self.output_shape(current))
                if step is not None:
                    # a flatten only belongs to the chain if signs are taken after it
                    if not (self.plans.binarized.get(following) and self._all_binarize(following)
                            or following in self.plans.coded):
                        return chain, current
                    flattened = True
            if step is None:
                return chain, current
            chain.append(step)
            current = following

    def _all_binarize(self, name: str) -> bool:
        consumers = self.graph.consumers.get(name, [])
        return bool(consumers) and name not in self.graph.outputs and all(
            self._binarizes_output_of(c, name) for c in consumers
        )

    def _output_kind(self, end: str, chain) -> str:
        if end in self.plans.coded:
            return P.CODES
        if self.plans.binarized.get(end) and self._all_binarize(end):
            return P.PACKED
        if self._exact.get(end, False):
            return P.INT32_VALUES
        return P.INT8_VALUES

    def _plan_streams(self):
        """Plan the residual Adds and group the streams (tensors added together share
        one int32 scale)."""
        order = {name: index for index, name in enumerate(self.graph.layers)}
        parent: Dict[str, str] = {}

        def find(key: str) -> str:
            while parent.setdefault(key, key) != key:
                key = parent[key]
            return key

        for name, layer in self.graph.layers.items():
            if not (isinstance(layer, tf.keras.layers.Add) and self._exact.get(name, False)):
                continue
            inputs = self.graph.producers.get(name, [])
            if len(inputs) != 2:
                raise ValueError(
                    f"layer {name!r}: a residual Add whose sum is binarized later must add two "
                    f"tensors, got {len(inputs)}"
                )
            candidates = []
            for source in inputs:
                producer = self.plans.by_output(source)
                if (producer is not None and producer.output == P.INT32_VALUES
                        and producer.residual_add is None
                        and self.graph.consumers.get(source) == [name]):
                    candidates.append((order[producer.name], producer, source))
            if not candidates:
                raise ValueError(
                    f"layer {name!r}: a residual Add whose sum is binarized later needs one "
                    "operand computed by a quantized layer's affine output (conv/dense -> "
                    "BatchNormalization) and read by nothing else"
                )
            _, absorber, absorbed = max(candidates, key=lambda item: item[0])
            residual = inputs[1] if inputs[0] == absorbed else inputs[0]
            producer = self.plans.by_output(residual)
            if residual not in self.plans.adds and (producer is None or producer.output != P.INT32_VALUES):
                raise ValueError(
                    f"layer {name!r}: a residual Add whose sum is binarized later needs every "
                    "operand to come from a quantized layer's affine output (conv/dense -> "
                    f"BatchNormalization) or another such Add; operand {residual!r} does not"
                )
            absorber.residual_add = name
            self.plans.adds[name] = P.AddPlan(name, layer, list(inputs), absorber.name, residual)
            parent[find(absorbed)] = find(name)
            parent[find(residual)] = find(name)
        for plan in self.plans.layers.values():
            if plan.output == P.INT32_VALUES:
                find(plan.output_layer)
        roots: Dict[str, int] = {}
        for key in list(parent):
            root = find(key)
            self.plans.streams[key] = roots.setdefault(root, len(roots))


def plan(model, int4_builtin: bool = True) -> P.Plans:
    """The plans of ``model`` (see the module doc); ``int4_builtin``: 4-bit uniform
    kernels with int8 outputs as builtin ops with INT4 filters where the runtimes
    run them (else coded ops)."""
    return Planner(model, int4_builtin).run()
