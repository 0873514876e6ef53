"""Export: a trained Keras model -> an equivalent model of standard Keras/TF ops, and
the plans of the layers that deploy as TFQP ops (``planning``).

The stock ``TFLiteConverter`` knows nothing of larq's ``Quant*`` layers' training
machinery (latent weights, straight-through gradients). ``export`` clones the model
(the user's model is never touched) and replaces every larq ``Quant*`` layer by a
standard layer with its quantized weights materialized, preceded by its input
quantizer in a form the converter turns into builtin int8 ops:

    QuantConv2D(input_quantizer=ste_sign, kernel_quantizer=..., pad_values=1.0,
                padding="same")
      ->  BinarizeActivations  ->  tf.pad(..., constant_values=+1)  ->
          Conv2D(padding="valid", kernel = quantized kernel)

The clone computes exactly what the Keras model computes in float (the sign
included); the stock converter makes the reference model from it (the baseline),
and the rewrite finds each planned layer's ops there by the layer's name. A
``MaxPool2D -> BatchNormalization`` with positive multipliers (larq's usual block
order) is computed in the equal order BatchNorm -> MaxPool (``AffineThenMaxPool``,
exact in float32: a non-decreasing function commutes with max) so the stock
converter folds the BatchNorm. Convolutions go through ``tf.nn.conv2d`` so dilated
ones stay one CONV_2D. Pruning wrappers (TFMOT) are stripped with their masks
applied. What a quantizer deploys to comes from ``deploy_table``.

Supported larq layers: QuantConv2D, QuantDense, QuantDepthwiseConv2D (int8 ops);
others raise ValueError naming the layer.
"""

import os
from typing import Dict, List, NamedTuple, Optional

import larq as lq
import numpy as np
import tensorflow as tf

from tfq_plus.converters import deploy_table
from tfq_plus.converters.activation_codes import code_grid
from tfq_plus.converters.unsupported import UnsupportedLayerError, brief, describe

# The int8 grid of binarized activations: fake-quant range [-128/127, 1] gives
# scale 1/127 and zero point 0, so -1 and +1 are exactly -127 and +127.
BINARY_RANGE_MIN = -128.0 / 127.0
BINARY_RANGE_MAX = 1.0


class BinarizeActivations(tf.keras.layers.Layer):
    r"""sign(x) with sign(0) = +1, expressed in int8 ops TFLite Micro has.

    \[ b(x) = \begin{cases} +1 & x \geq 0 \\ -1 & x < 0 \end{cases} \]

    In float it is exactly larq's sign (the exported model computes what Keras
    computes). The stock full-int8 converter turns it into GREATER_EQUAL(x, 0) +
    SELECT_V2 (``tf.sign`` would become DEQUANTIZE -> SIGN -> QUANTIZE: TFLite Micro
    has no SIGN kernel, and sign(0) = 0). The output fake-quant range [-128/127, 1]
    pins the +-1 tensor to scale 1/127, zero point 0: the two values are exactly
    +-127. The compared tensor keeps the quantization calibration gives it: the
    reference model binarizes its int8 values, which is what a user gets without
    tfq-plus (the deploy model takes its signs from exact accumulators instead).
    """

    @tf.autograph.experimental.do_not_convert  # static Python control flow only
    def call(self, inputs, training=None):  # inference only: `training` is ignored
        """+-1 of ``inputs`` (any shape, float), fake-quantized to [-128/127, 1]."""
        # Scalar branches: SELECT_V2 broadcasts them (ones_like would add SHAPE and
        # BROADCAST_TO ops).
        signs = tf.where(
            inputs >= 0, tf.constant(1.0, inputs.dtype), tf.constant(-1.0, inputs.dtype)
        )
        return tf.quantization.fake_quant_with_min_max_vars(
            signs, BINARY_RANGE_MIN, BINARY_RANGE_MAX, num_bits=8, narrow_range=False
        )

    def compute_output_shape(self, input_shape):
        """The input's shape (elementwise)."""
        return input_shape


class QuantizeToCodes(tf.keras.layers.Layer):
    """A k-bit activation grid (``activation_codes.CodeGrid``) as ops the stock
    converter keeps: clip to the grid's range, then an 8-bit fake-quant of that
    range. The stock converter rejects fake-quants of fewer than 8 bits, and one
    wider than the values (which would give the tensor scale = step) makes it
    compute a convolution and BatchNormalization after it wrongly (measured, TF
    2.21), so the reference model holds the grid's range on 8 bits: what a user
    gets without tfq-plus. The deploy model's producing op writes Keras's own codes
    into a tensor of scale = step (``patterns.codes``).
    """

    def __init__(self, grid, **kwargs):
        super().__init__(**kwargs)
        step = float(grid.step)
        self.low = grid.offset * step
        self.high = (grid.offset + grid.levels - 1) * step

    @tf.autograph.experimental.do_not_convert  # static Python control flow only
    def call(self, inputs, training=None):  # inference only: `training` is ignored
        clipped = tf.clip_by_value(inputs, self.low, self.high)
        return tf.quantization.fake_quant_with_min_max_vars(
            clipped, self.low, self.high, num_bits=8, narrow_range=False
        )

    def compute_output_shape(self, input_shape):
        return input_shape


def same_padding(size: int, kernel: int, stride: int, dilation: int):
    """TensorFlow's SAME padding (before, after) along one spatial axis."""
    effective = (kernel - 1) * dilation + 1
    out = (size + stride - 1) // stride
    total = max((out - 1) * stride + effective - size, 0)
    return total // 2, total - total // 2


class ExportedQuantLayer(tf.keras.layers.Layer):
    """A larq ``Quant*`` layer as standard ops: [binarize] -> [explicit pad] -> layer.

    ``inner`` is a standard Keras layer (Conv2D, DepthwiseConv2D, Dense) holding the
    materialized quantized weights. ``pad_value`` (not None) pads SAME explicitly
    with that value before a VALID ``inner``, as larq does for ``pad_values != 0``.
    """

    def __init__(self, inner, binarize_input: bool, pad_value: Optional[float] = None,
                 codes_grid=None, **kwargs):
        super().__init__(**kwargs)
        self.inner = inner
        self.binarize = BinarizeActivations(name="binarize") if binarize_input else None
        self.codes = QuantizeToCodes(codes_grid, name="codes") if codes_grid is not None else None
        self.pad_value = pad_value

    @tf.autograph.experimental.do_not_convert  # static Python control flow only
    def call(self, inputs, training=None):  # inference only: `training` is ignored
        x = inputs
        if self.binarize is not None:
            x = self.binarize(x)
        if self.codes is not None:
            x = self.codes(x)
        if self.pad_value is not None:
            height, width = x.shape[1], x.shape[2]
            if height is None or width is None:
                raise ValueError(
                    f"layer {self.name!r}: pad_values needs static spatial input sizes, "
                    f"got shape {x.shape}"
                )
            pads = [
                same_padding(size, k, s, d)
                for size, k, s, d in zip(
                    (height, width),
                    self.inner.kernel_size,
                    self.inner.strides,
                    self.inner.dilation_rate,
                )
            ]
            x = tf.pad(
                x, [[0, 0], list(pads[0]), list(pads[1]), [0, 0]],
                constant_values=self.pad_value,
            )
        if type(self.inner) is tf.keras.layers.Conv2D:
            return self._conv2d(x)
        return self.inner(x)

    def _conv2d(self, x):
        """Conv2D through tf.nn.conv2d: Keras' Conv2D lowers dilated convolutions to
        SPACE_TO_BATCH_ND -> CONV_2D -> BATCH_TO_SPACE_ND (and then BatchNorm does not
        fold); the raw op keeps one CONV_2D with its dilation factors."""
        conv = self.inner
        if not conv.built:
            conv.build(x.shape)
        y = tf.nn.conv2d(
            x, conv.kernel, strides=conv.strides, padding=conv.padding.upper(),
            dilations=conv.dilation_rate,
        )
        if conv.use_bias:
            y = tf.nn.bias_add(y, conv.bias)
        return conv.activation(y)

    def compute_output_shape(self, input_shape):
        return self.inner.compute_output_shape(input_shape)


class AffineThenMaxPool(tf.keras.layers.Layer):
    """``MaxPool2D -> BatchNormalization`` computed as ``BatchNormalization -> MaxPool2D``.

    With a positive BatchNorm multiplier gamma / sqrt(var + eps) per channel the two
    orders are equal: max_w(c * y_w + d) = c * max_w(y_w) + d for c > 0. In this
    order the stock converter folds the BatchNorm into the preceding convolution
    (instead of int8 MUL and ADD ops that round twice), and a binary convolution
    followed by max-pool and binarization deploys with packed output and
    TFQP_BMAXPOOL2D.
    """

    def __init__(self, batch_norm, pool, **kwargs):
        super().__init__(**kwargs)
        self.batch_norm = batch_norm
        self.pool = pool

    @tf.autograph.experimental.do_not_convert  # static Python control flow only
    def call(self, inputs, training=None):  # inference only: `training` is ignored
        return self.pool(self.batch_norm(inputs, training=False))

    def compute_output_shape(self, input_shape):
        return self.pool.compute_output_shape(input_shape)


def _positive_batch_norm(layer) -> bool:
    if not isinstance(layer, tf.keras.layers.BatchNormalization):
        return False
    axis = layer.axis if isinstance(layer.axis, (list, tuple)) else [layer.axis]
    if list(axis) not in ([-1], [len(layer.input_shape) - 1]):
        return False
    variance = layer.moving_variance.numpy()
    gamma = layer.gamma.numpy() if layer.gamma is not None else np.ones_like(variance)
    return bool(np.all(gamma / np.sqrt(variance + layer.epsilon) > 0))


def _pools_before_batch_norm(model) -> Dict[str, object]:
    """MaxPool2D layers whose only consumer is a positive BatchNormalization that reads
    nothing else: maxpool name -> the BatchNorm layer."""
    pairs = {}
    for layer in model.layers:
        if not isinstance(layer, tf.keras.layers.MaxPool2D) or len(layer.outbound_nodes) != 1:
            continue
        following = layer.outbound_nodes[0].outbound_layer
        if len(following.inbound_nodes) != 1 or not _positive_batch_norm(following):
            continue
        pairs[layer.name] = following
    return pairs


class _QuantLayerKind(NamedTuple):
    standard: type
    kernel_attribute: str
    quantizer_attribute: str


# larq layer -> its standard counterpart; other Quant* layers are rejected by name.
QUANT_LAYERS: Dict[type, _QuantLayerKind] = {
    lq.layers.QuantConv2D: _QuantLayerKind(tf.keras.layers.Conv2D, "kernel", "kernel_quantizer"),
    lq.layers.QuantDense: _QuantLayerKind(tf.keras.layers.Dense, "kernel", "kernel_quantizer"),
    lq.layers.QuantDepthwiseConv2D: _QuantLayerKind(
        tf.keras.layers.DepthwiseConv2D, "depthwise_kernel", "depthwise_quantizer"
    ),
}

_QUANT_ONLY_KEYS = (
    "input_quantizer", "kernel_quantizer", "depthwise_quantizer", "pad_values", "metrics",
    "kernel_constraint", "depthwise_constraint", "bias_constraint",
    "kernel_regularizer", "depthwise_regularizer", "bias_regularizer", "activity_regularizer",
)


def _latent(variable) -> np.ndarray:
    return np.asarray(getattr(variable, "latent_variable", variable).numpy())


def _quantized_kernel(layer, kind: _QuantLayerKind):
    """(kernel values as deployed, kernel deploy form)."""
    latent = _latent(getattr(layer, kind.kernel_attribute))
    quantizer = getattr(layer, kind.quantizer_attribute)
    form = deploy_table.kernel_form(layer.name, quantizer, latent)
    if form.form == deploy_table.FLOAT:
        return latent, form
    quantized = np.asarray(quantizer(tf.constant(latent)).numpy(), dtype=np.float32)
    return quantized, form


def _standard_config(layer, kind: _QuantLayerKind) -> dict:
    config = {k: v for k, v in layer.get_config().items() if k not in _QUANT_ONLY_KEYS}
    config["name"] = {
        tf.keras.layers.Conv2D: "conv2d",
        tf.keras.layers.Dense: "dense",
        tf.keras.layers.DepthwiseConv2D: "depthwise_conv2d",
    }[kind.standard]
    config["trainable"] = False
    return config


def _check_layer_options(layer, kind: _QuantLayerKind):
    if kind.standard is tf.keras.layers.Dense:
        return
    if layer.data_format != "channels_last":
        raise ValueError(
            f"layer {layer.name!r}: data_format={layer.data_format!r} is not supported; "
            "TFLite convolutions are channels_last"
        )
    if getattr(layer, "groups", 1) != 1:
        raise ValueError(f"layer {layer.name!r}: grouped convolutions (groups={layer.groups}) are not supported")


def _rebuilt(layer, cls, get_config):
    """``cls.from_config(get_config())``, the clone of ``layer``; a layer that cannot
    be rebuilt from its config (a custom layer without ``get_config``, a lambda
    activation) raises ValueError naming it."""
    try:
        return cls.from_config(get_config())
    except Exception as error:  # whatever the layer's own get_config / __init__ raise
        raise UnsupportedLayerError(
            f"layer {describe([layer])} cannot be cloned for conversion: rebuilding it "
            f"from its config failed ({type(error).__name__}: {brief(str(error))}); "
            "the converter never changes the user's model, so it converts a clone: a custom "
            "layer needs a get_config() returning its constructor arguments, and activations "
            "must be named Keras activations or registered functions, not lambdas",
            [layer],
        ) from error


def _check_no_nested_quant_layers(layer):
    """A layer other than a model holding larq layers in its own ``call`` (a custom
    block): the converter would lower their training ops (sign with straight-through
    gradients) as float ops instead of deploying them."""
    nested = [inner for inner in layer.submodules if isinstance(inner, lq.layers_base.BaseLayer)]
    if nested:
        raise UnsupportedLayerError(
            f"layer {describe([layer])} holds larq layers {describe(nested)} inside its own "
            "call(); the converter deploys larq layers that are nodes of the model's layer "
            "graph: build the block with the functional API (or as a nested "
            "tf.keras.Model) instead of a custom layer",
            [layer],
        )


class _Exporter:
    """clone_model's clone function plus the weights to load once layers are built."""

    def __init__(self, model):
        self.pending: List[tuple] = []  # (new layer, weights)
        self.pools_before = _pools_before_batch_norm(model)
        self.moved_batch_norms = {bn.name for bn in self.pools_before.values()}

    def __call__(self, layer):
        if layer.name in self.pools_before:
            batch_norm = self.pools_before[layer.name]
            moved = batch_norm.__class__.from_config(batch_norm.get_config())
            self.pending.append((moved, batch_norm.get_weights()))
            pool = layer.__class__.from_config(layer.get_config())
            return AffineThenMaxPool(moved, pool, name=layer.name)
        if layer.name in self.moved_batch_norms:
            return tf.keras.layers.Activation("linear", name=layer.name)
        if type(layer).__name__ == "PruneLowMagnitude":
            return self._strip_pruning(layer)
        if isinstance(layer, tf.keras.Model):
            return _export_model(layer)
        kind = QUANT_LAYERS.get(type(layer))
        if kind is not None:
            return self._export_quant_layer(layer, kind)
        if isinstance(layer, lq.layers_base.BaseLayer) or type(layer).__module__.startswith("larq.layers"):
            raise ValueError(
                f"layer {layer.name!r}: {type(layer).__name__} is not supported by the converter "
                f"(supported larq layers: {sorted(cls.__name__ for cls in QUANT_LAYERS)})"
            )
        if isinstance(layer, lq.quantizers.Quantizer):
            return self._export_quantizer_layer(layer)
        if type(layer) is tf.keras.layers.Conv2D:
            return self._export_conv2d(layer)
        _check_no_nested_quant_layers(layer)
        clone = _rebuilt(layer, layer.__class__, layer.get_config)
        self.pending.append((clone, layer.get_weights()))
        return clone

    def _strip_pruning(self, wrapper):
        inner = wrapper.layer
        masks = {id(weight): mask for weight, mask, _ in getattr(wrapper, "pruning_vars", [])}
        weights = [
            w.numpy() * masks[id(w)].numpy() if id(w) in masks else w.numpy()
            for w in inner.weights
        ]
        clone = self(inner)
        if self.pending and self.pending[-1][0] is getattr(clone, "inner", clone):
            self.pending[-1] = (self.pending[-1][0], _exported_weights(inner, weights))
        return clone

    def _export_quantizer_layer(self, quantizer):
        form = deploy_table.activation_form(quantizer.name, quantizer, role="quantizer layer")
        if form.form == deploy_table.BINARIZE:
            return BinarizeActivations(name=quantizer.name)
        if form.form == deploy_table.CODES:
            return QuantizeToCodes(code_grid(quantizer.name, quantizer, "quantizer layer"), name=quantizer.name)
        return tf.keras.layers.Activation("linear", name=quantizer.name)

    def _export_conv2d(self, layer):
        """A plain Conv2D through tf.nn.conv2d (one CONV_2D op, dilation kept)."""
        config = layer.get_config()
        config["name"] = "conv2d"
        inner = tf.keras.layers.Conv2D.from_config(config)
        self.pending.append((inner, layer.get_weights()))
        return ExportedQuantLayer(inner, False, None, name=layer.name)

    def _export_quant_layer(self, layer, kind: _QuantLayerKind):
        _check_layer_options(layer, kind)
        input_form = deploy_table.activation_form(layer.name, layer.input_quantizer)
        binarize = input_form.form == deploy_table.BINARIZE
        codes = code_grid(layer.name, layer.input_quantizer) if input_form.form == deploy_table.CODES else None
        kernel, _ = _quantized_kernel(layer, kind)
        config = _standard_config(layer, kind)
        pad_value = None
        pad_values = getattr(layer, "pad_values", 0.0)
        if tf.is_tensor(pad_values) or isinstance(pad_values, tf.Variable):
            pad_values = float(tf.keras.backend.get_value(pad_values))
        if kind.standard is not tf.keras.layers.Dense and layer.padding == "same" and pad_values != 0.0:
            # larq pads the raw input, then quantizes: pad the binarized input with
            # the quantized pad value instead (sign(pad_values) for binary inputs).
            pad_value = float(np.where(pad_values >= 0, 1.0, -1.0)) if binarize else float(pad_values)
            config["padding"] = "valid"
        inner = _rebuilt(layer, kind.standard, lambda: config)
        wrapper = ExportedQuantLayer(inner, binarize, pad_value, codes, name=layer.name)
        weights = [kernel] + ([layer.bias.numpy()] if getattr(layer, "use_bias", False) else [])
        self.pending.append((inner, weights))
        return wrapper


def _exported_weights(layer, weights):
    """A pruned layer's masked weights in the form its exported clone loads them:
    a quantized kernel re-quantized from the masked latent values."""
    kind = QUANT_LAYERS.get(type(layer))
    if kind is None:
        return weights
    names = [w.name for w in layer.weights]
    values = dict(zip(names, weights))
    kernel_variable = getattr(layer, kind.kernel_attribute)
    latent = values[kernel_variable.name]
    quantizer = getattr(layer, kind.quantizer_attribute)
    form = deploy_table.kernel_form(layer.name, quantizer, latent)
    kernel = latent if form.form == deploy_table.FLOAT else np.asarray(quantizer(tf.constant(latent)).numpy())
    result = [kernel]
    if getattr(layer, "use_bias", False):
        result.append(values[layer.bias.name])
    return result


def check_keras_model(model):
    """Raise ValueError unless ``model`` is a built Sequential or functional tf_keras
    model, naming what it is instead."""
    if isinstance(model, (str, os.PathLike)):
        raise ValueError(
            f"export: model is a path ({os.fspath(model)!r}); load it first: "
            "tf.keras.models.load_model(path, compile=False) after import tfq_plus"
        )
    if type(model).__module__.startswith("keras."):
        raise ValueError(
            f"export: model is a Keras 3 model ({type(model).__name__}); the converter takes tf_keras "
            "(Keras 2) models: build and train it with tf.keras after import tfq_plus, which selects "
            "Keras 2"
        )
    if not isinstance(model, tf.keras.Model):
        raise ValueError(f"export: expected a tf_keras Model, got {type(model).__name__}")
    if not (isinstance(model, tf.keras.Sequential) or getattr(model, "_is_graph_network", False)):
        raise ValueError(
            f"export: model {model.name!r} is a subclassed model; the converter needs a "
            "Sequential or functional model (its layer graph)"
        )
    if not model.built:
        raise ValueError(f"export: model {model.name!r} is not built; call it or give it an Input")


def _export_model(model):
    check_keras_model(model)
    exporter = _Exporter(model)
    exported = tf.keras.models.clone_model(model, clone_function=exporter)
    for layer, weights in exporter.pending:
        if weights:
            layer.set_weights(weights)
    return exported


def export(model) -> tf.keras.Model:
    """A clone of ``model`` made of standard Keras/TF ops, ready for the stock converter.

    The clone computes what ``model`` computes in inference (binarizations as
    ``BinarizeActivations``, quantized kernels materialized, pruning masks applied,
    dilated convolutions as one op); the user's model is never changed.

    Args:
        model: a built Sequential or functional tf_keras model.

    Returns:
        The exported ``tf.keras.Model`` (float; the stock converter quantizes it).

    Raises:
        ValueError: a layer or quantizer without a deploy form, naming it and why.
    """
    return export_and_plan(model)[0]


def export_and_plan(model, int4_builtin: bool = True):
    """``(exported model, plans)``: the stock converter's input and the plan of every
    layer that deploys as a TFQP op (``plans.Plans``)."""
    from tfq_plus.converters.planning import plan

    check_keras_model(model)
    plans = plan(model, int4_builtin)
    return _export_model(model), plans
