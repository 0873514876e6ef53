"""The Python op registry: one ``OpSpec`` per TFQP op.

Everything the converter needs to know about an op lives in its spec: its option
schema and encoder, which inputs are constant, how its weights unpack (so verify can
compare them with the Keras kernel), its MACs (report), how verify checks it, and how
the host build of its C kernel runs it. ``rewrite``, ``verify``, ``report``, ``emit``
and the ``Interpreter`` read the registry instead of naming ops; adding an op is its
C kernel plus one row in ``micro/kernels/op_table.c`` and one spec here.

The C side is the authority on option values: the encoders check the same ranges
the C parsers and ``prepare`` functions enforce, so a model the converter writes is
never rejected by the kernels.
"""

import numbers
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np
from flatbuffers import flexbuffers

from tfq_plus.converters import tflite_schema as schema

PREFIX = "TFQP_"
INT32_MAX = 2**31 - 1

# Verify policies (what an op's output is compared with).
KERAS_SIGNS = "keras signs"  # packed bits == Keras's signs on the op's own input
KERAS_VALUES = "keras values"  # int8 / int32 values within rounding of Keras's
BOOLEAN = "boolean"  # a format conversion / pool: exact against its numpy definition


@dataclass(frozen=True)
class Option:
    """One integer option of an op's flexbuffer map.

    ``default``: what the encoder writes when the caller leaves it out (the C parser
    still requires it where ``required``). ``names``: strings the encoder accepts
    for values ("same" / "valid" for padding)."""

    key: str
    low: int
    high: int
    required: bool = True
    default: Optional[int] = None
    names: Tuple[Tuple[str, int], ...] = ()


@dataclass(frozen=True)
class OpSpec:
    name: str
    summary: str
    inputs: Tuple[str, ...]  # roles; the last ``optional_inputs`` may be absent
    options: Tuple[Option, ...]
    constant_inputs: Tuple[int, ...] = ()
    optional_inputs: int = 0
    weights_input: Optional[int] = None
    policy: str = BOOLEAN
    mac_kind: Optional[str] = None  # report column: "binary", "int8"
    # (OpView) -> MACs of one invocation
    macs: Optional[Callable[["OpView"], int]] = None
    # (OpView) -> the weight codes as the Keras kernel has them (TFLite layout)
    unpack_weights: Optional[Callable[["OpView"], np.ndarray]] = None
    # (values dict) -> None or raise ValueError: rules across options
    check: Optional[Callable[[Dict[str, int]], None]] = None

    def encode(self, **values) -> bytes:
        """The flexbuffer options, after checking every value (keys in schema order)."""
        known = {option.key: option for option in self.options}
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise ValueError(f"{self.name}: unknown options {unknown} (known: {list(known)})")
        checked = {}
        for option in self.options:
            value = values.get(option.key)
            if value is None:
                value = option.default
            if value is None:
                if option.required:
                    raise ValueError(f"{self.name}: option {option.key!r} is required")
                continue
            if isinstance(value, str) and option.names:
                names = dict(option.names)
                if value.lower() not in names:
                    raise ValueError(
                        f"{self.name}: option {option.key!r} must be one of {sorted(names)} "
                        f"(or {option.low} to {option.high}), got {value!r}"
                    )
                value = names[value.lower()]
            if isinstance(value, (bool, np.bool_)) or not isinstance(value, (numbers.Integral, np.integer)):
                raise ValueError(f"{self.name}: option {option.key!r} must be an integer, got {value!r}")
            if not option.low <= int(value) <= option.high:
                raise ValueError(
                    f"{self.name}: option {option.key!r} must be an integer from {option.low} to "
                    f"{option.high}, got {value!r}"
                )
            checked[option.key] = int(value)
        if self.check is not None:
            self.check(checked)
        return bytes(flexbuffers.Dumps(checked))


def decode_options(data) -> Dict[str, int]:
    """A custom op's flexbuffer options as a dict (empty for no options)."""
    raw = bytes(np.asarray(data if data is not None else [], dtype=np.uint8))
    if not raw:
        return {}
    decoded = flexbuffers.Loads(raw)
    return {str(k): int(v) for k, v in decoded.items()}


class OpView:
    """One op of a flatbuffer, as the specs read it."""

    def __init__(self, model, index: int, graph=None):
        self.model = model
        self.graph = graph if graph is not None else model.subgraphs[0]
        self.index = index
        self.op = self.graph.operators[index]
        self.name = schema.op_name(model, self.op)
        self.spec = REGISTRY.get(self.name)
        self.options = decode_options(self.op.customOptions) if schema.is_custom(model, self.op) else {}

    def tensor(self, position: int, output: bool = False):
        indices = self.op.outputs if output else self.op.inputs
        if position >= len(indices) or indices[position] < 0:
            return None
        return self.graph.tensors[int(indices[position])]

    def shape(self, position: int, output: bool = False) -> List[int]:
        tensor = self.tensor(position, output)
        return schema.shape(tensor) if tensor is not None else []

    def constant(self, position: int) -> Optional[np.ndarray]:
        tensor = self.tensor(position)
        return None if tensor is None else schema.constant(self.model, tensor)

    @property
    def input_count(self) -> int:
        return len([t for t in self.op.inputs])

    def output_type(self) -> int:
        return self.tensor(0, output=True).type


# The window options the convolutions share (TFLite's geometry: padding 0 SAME, 1 VALID).
PADDING_NAMES = (("same", 0), ("valid", 1))
WINDOW_OPTIONS = (
    Option("filter_height", 1, INT32_MAX),
    Option("filter_width", 1, INT32_MAX),
    Option("stride_height", 1, INT32_MAX, default=1),
    Option("stride_width", 1, INT32_MAX, default=1),
    Option("dilation_height_factor", 1, INT32_MAX, default=1),
    Option("dilation_width_factor", 1, INT32_MAX, default=1),
    Option("padding", 0, 1, default=0, names=PADDING_NAMES),
)

# The codes output (option ``output_levels``) of the int8-activation TFQP ops: the
# int8 output is base + #{i : d*A >= t_i}, transform rows (d, base, t_1 .. t_L).
OUTPUT_LEVELS = Option("output_levels", 0, 256, required=False)


def check_output_levels(name: str, values: Dict[str, int], excluded: Tuple[str, ...]):
    """``output_levels`` is 0 (absent) or in [2, 256], and excludes the options of the
    other output forms (``excluded``: given with it, the C op rejects the model)."""
    levels = values.get("output_levels", 0)
    if levels == 1:
        raise ValueError(f"{name}: output_levels must be 0 (no codes output) or from 2 to 256, "
                         f"got 1")
    clashes = [key for key in excluded if key in values and (key != "int32_output"
                                                             or values[key] == 1)]
    if levels and clashes:
        raise ValueError(f"{name}: output_levels (the codes output) excludes {clashes[0]}")


# Packed k-bit activations (formats.h, "Packed k-bit activations"; C contract in
# tfqp/kbit_activations.h) in and out of the same five ops: a packed input read as
# (u - input_code_zero), packed codes written with output_bits.
KBIT_OPTIONS = (
    Option("output_bits", 0, 4, required=False),
    Option("input_bits", 0, 4, required=False),
    Option("input_code_zero", 0, 15, required=False),
)


def check_kbit_options(name: str, values: Dict[str, int]):
    """The rules of KBIT_OPTIONS: bits 0, 2 or 4; input_code_zero in [0, 2^input_bits)
    and only with input_bits, which needs channels_in; output_bits with output_levels
    in [2, 2^output_bits]."""
    for key in ("output_bits", "input_bits"):
        if values.get(key, 0) not in (0, 2, 4):
            raise ValueError(f"{name}: {key} must be 0 (absent), 2 or 4, got {values[key]}")
    bits, zero = values.get("input_bits", 0), values.get("input_code_zero", 0)
    if zero and not bits:
        raise ValueError(f"{name}: input_code_zero needs input_bits (a packed input)")
    if bits and zero >= 1 << bits:
        raise ValueError(f"{name}: input_code_zero must be in [0, 2^input_bits) = "
                         f"[0, {1 << bits}), got {zero}")
    if bits and not values.get("channels_in"):
        raise ValueError(f"{name}: a packed input (input_bits) needs channels_in")
    out_bits, levels = values.get("output_bits", 0), values.get("output_levels", 0)
    if out_bits and not 2 <= levels <= 1 << out_bits:
        raise ValueError(f"{name}: output_bits {out_bits} (packed codes) needs output_levels in "
                         f"[2, {1 << out_bits}], got {levels}")


REGISTRY: Dict[str, OpSpec] = {}


def register(spec: OpSpec) -> OpSpec:
    if spec.name in REGISTRY:
        raise ValueError(f"op {spec.name} registered twice")
    REGISTRY[spec.name] = spec
    return spec


def spec(name: str) -> OpSpec:
    """The spec of a TFQP op (ValueError naming the known ops otherwise)."""
    if name not in REGISTRY:
        raise ValueError(f"{name!r} is not a TFQP op (known: {sorted(REGISTRY)})")
    return REGISTRY[name]


def is_tfqp(name: str) -> bool:
    return name.startswith(PREFIX)
