"""The structure of a .tflite flatbuffer, checked before anything reads it.

TensorFlow's object API (``tflite_schema.read``) trusts the bytes: an offset past
the end raises ``struct.error`` or ``IndexError`` somewhere inside it, and a
negative one silently reads from the end of the file (Python's ``unpack_from``
counts negative offsets from the end). ``check_structure`` walks every table,
vtable, vector and string the object API will read, by TFLite's schema (the fields
below, slot numbers as ``schema_py_generated`` has them), and raises ``ModelError``
naming the first one that does not lie inside the file, before the object API runs.

Only what tfq-plus can run is accepted: no sparse tensors, external or offset
buffers, custom quantization, variant tensors or ``builtin_options_2`` (StableHLO
ops); a builtin options table must be one whose fields the object API reads as
scalars (or one of the few with a vector declared in ``_OPTION_TABLES``).
"""

import struct
from typing import Dict, NamedTuple, Optional

from tfq_plus.converters.model_error import STRUCTURE, ModelError
from tfq_plus.converters.tflite_schema import fb

# field kinds
SCALAR, STRING, VECTOR, TABLES, TABLE, UNION, UNSUPPORTED = (
    "scalar", "string", "vector", "tables", "table", "union", "unsupported")


class Field(NamedTuple):
    name: str
    kind: str
    # SCALAR / VECTOR: struct format of the value / element; TABLE(S): table name;
    # UNION: slot of the union's type field; UNSUPPORTED: (what it is, the struct
    # format of a scalar that may be present as zero, or None: must be absent)
    detail: object


def _fields(*fields) -> Dict[int, Field]:
    return {slot: Field(*field) for slot, field in enumerate(fields) if field is not None}


# TFLite's schema (tensorflow/lite/schema/schema.fbs), the fields the object API reads.
TABLES_OF_THE_SCHEMA: Dict[str, Dict[int, Field]] = {
    "Model": _fields(
        ("version", SCALAR, "<I"), ("operator_codes", TABLES, "OperatorCode"),
        ("subgraphs", TABLES, "SubGraph"), ("description", STRING, None), ("buffers", TABLES, "Buffer"),
        ("metadata_buffer", VECTOR, "<i"), ("metadata", TABLES, "Metadata"),
        ("signature_defs", TABLES, "SignatureDef"),
        ("external_buffer_groups", UNSUPPORTED, ("external buffers", None)),
        ("external_buffers", UNSUPPORTED, ("external buffers", None)),
    ),
    "SubGraph": _fields(
        ("tensors", TABLES, "Tensor"), ("inputs", VECTOR, "<i"), ("outputs", VECTOR, "<i"),
        ("operators", TABLES, "Operator"), ("name", STRING, None), ("debug_metadata_index", SCALAR, "<i"),
    ),
    "Tensor": _fields(
        ("shape", VECTOR, "<i"), ("type", SCALAR, "<b"), ("buffer", SCALAR, "<I"), ("name", STRING, None),
        ("quantization", TABLE, "QuantizationParameters"), ("is_variable", SCALAR, "<B"),
        ("sparsity", UNSUPPORTED, ("sparse tensors", None)), ("shape_signature", VECTOR, "<i"),
        ("has_rank", SCALAR, "<B"), ("variant_tensors", UNSUPPORTED, ("variant tensors", None)),
        ("external_buffer", UNSUPPORTED, ("external buffers", "<I")),
    ),
    "QuantizationParameters": _fields(
        ("min", VECTOR, "<f"), ("max", VECTOR, "<f"), ("scale", VECTOR, "<f"), ("zero_point", VECTOR, "<q"),
        ("details_type", UNSUPPORTED, ("custom quantization", "<B")),
        ("details", UNSUPPORTED, ("custom quantization", None)),
        ("quantized_dimension", SCALAR, "<i"),
    ),
    "Buffer": _fields(
        ("data", VECTOR, "<B"), ("offset", UNSUPPORTED, ("buffer data outside the flatbuffer", "<Q")),
        ("size", UNSUPPORTED, ("buffer data outside the flatbuffer", "<Q")),
    ),
    "Operator": _fields(
        ("opcode_index", SCALAR, "<I"), ("inputs", VECTOR, "<i"), ("outputs", VECTOR, "<i"),
        ("builtin_options_type", SCALAR, "<B"), ("builtin_options", UNION, 3),
        ("custom_options", VECTOR, "<B"), ("custom_options_format", SCALAR, "<b"),
        ("mutating_variable_inputs", VECTOR, "<B"), ("intermediates", VECTOR, "<i"),
        ("large_custom_options_offset", UNSUPPORTED, ("custom options outside the flatbuffer", "<Q")),
        ("large_custom_options_size", UNSUPPORTED, ("custom options outside the flatbuffer", "<Q")),
        ("builtin_options_2_type", UNSUPPORTED, ("builtin_options_2 (StableHLO ops)", "<B")),
        ("builtin_options_2", UNSUPPORTED, ("builtin_options_2 (StableHLO ops)", None)),
        ("debug_metadata_index", SCALAR, "<i"),
    ),
    "OperatorCode": _fields(
        ("deprecated_builtin_code", SCALAR, "<b"), ("custom_code", STRING, None), ("version", SCALAR, "<i"),
        ("builtin_code", SCALAR, "<i"),
    ),
    "Metadata": _fields(("name", STRING, None), ("buffer", SCALAR, "<I")),
    "SignatureDef": _fields(
        ("inputs", TABLES, "TensorMap"), ("outputs", TABLES, "TensorMap"), ("signature_key", STRING, None),
        None, ("subgraph_index", SCALAR, "<I"),
    ),
    "TensorMap": _fields(("name", STRING, None), ("tensor_index", SCALAR, "<I")),
}

# Builtin options tables with fields that are not scalars (the rest are read as
# scalars only); None: not supported.
_OPTION_TABLES: Dict[str, Optional[Dict[int, Field]]] = {
    "ReshapeOptions": _fields(("new_shape", VECTOR, "<i")),
    "SqueezeOptions": _fields(("squeeze_dims", VECTOR, "<i")),
    "BucketizeOptions": None,
    "ConcatEmbeddingsOptions": None,
    "VarHandleOptions": None,
}
BUILTIN_OPTIONS_NAMES = {value: name for name, value in vars(fb.BuiltinOptions).items()
                         if not name.startswith("_")}

IDENTIFIER = b"TFL3"


class _Table(NamedTuple):
    position: int  # of the table (its soffset to the vtable)
    vtable: int
    vtable_size: int
    inline_size: int
    where: str


class _Walker:
    """Bounds-checked reads of one flatbuffer."""

    def __init__(self, data: bytes):
        self.data = data
        # Every table, vector and string occupies at least 4 bytes of its own, so a
        # file of n bytes holds at most n / 4 of them; more visits mean offsets
        # shared in a way no writer produces (and could multiply the work).
        self.budget = len(data) // 4 + 16

    def fail(self, where: str, what: str):
        raise ModelError(f"the flatbuffer is truncated or corrupt: {where}: {what} (file of "
                         f"{len(self.data)} bytes)", STRUCTURE)

    def read(self, fmt: str, position: int, where: str):
        size = struct.calcsize(fmt)
        if position < 0 or position + size > len(self.data):
            self.fail(where, f"{size}-byte value at offset {position} lies outside the file")
        return struct.unpack_from(fmt, self.data, position)[0]

    def spend(self, where: str):
        self.budget -= 1
        if self.budget < 0:
            self.fail(where, "more tables and vectors are referenced than the file can hold")

    def table(self, position: int, where: str) -> _Table:
        self.spend(where)
        vtable = position - self.read("<i", position, where)
        vtable_size = self.read("<H", vtable, f"{where} vtable")
        inline_size = self.read("<H", vtable + 2, f"{where} vtable")
        if vtable_size < 4 or vtable_size % 2 or vtable + vtable_size > len(self.data):
            self.fail(where, f"vtable at offset {vtable} of {vtable_size} bytes lies outside the file")
        if inline_size < 4 or position + inline_size > len(self.data):
            self.fail(where, f"table at offset {position} of {inline_size} bytes lies outside the file")
        return _Table(position, vtable, vtable_size, inline_size, where)

    def field_position(self, table: _Table, slot: int, size: int, name: str) -> Optional[int]:
        """Where field ``slot`` of ``size`` bytes is (None: absent, the default)."""
        entry = 4 + 2 * slot
        if entry + 2 > table.vtable_size:
            return None
        offset = self.read("<H", table.vtable + entry, table.where)
        if offset == 0:
            return None
        if offset + size > table.inline_size:
            self.fail(f"{table.where}.{name}", f"field at {offset} of a {table.inline_size}-byte table")
        return table.position + offset

    def target(self, table: _Table, slot: int, name: str) -> Optional[int]:
        """The object an offset field refers to (None: absent)."""
        position = self.field_position(table, slot, 4, name)
        if position is None:
            return None
        return position + self.read("<I", position, f"{table.where}.{name}")

    def vector(self, position: int, element_size: int, where: str):
        """(first element's position, length) of the vector at ``position``."""
        self.spend(where)
        length = self.read("<I", position, where)
        start = position + 4
        if start + length * element_size > len(self.data):
            self.fail(where, f"vector of {length} elements of {element_size} bytes at offset {position} "
                      "extends past the end of the file")
        return start, length

    def string(self, position: int, where: str):
        start, length = self.vector(position, 1, where)
        if start + length >= len(self.data) or self.data[start + length] != 0:
            self.fail(where, "string is not terminated")


def _check_table(walker: _Walker, position: int, name: str, where: str, fields: Dict[int, Field]):
    table = walker.table(position, where)
    for slot, field in fields.items():
        _check_field(walker, table, slot, field)


def _check_field(walker: _Walker, table: _Table, slot: int, field: Field):
    where = f"{table.where}.{field.name}"
    if field.kind == UNSUPPORTED:
        what, scalar = field.detail
        position = walker.field_position(table, slot, struct.calcsize(scalar or "<I"), field.name)
        if position is not None and (scalar is None or walker.read(scalar, position, where) != 0):
            raise ModelError(f"{where}: {what} are not supported by tfq-plus", STRUCTURE)
        return
    if field.kind == SCALAR:
        walker.field_position(table, slot, struct.calcsize(field.detail), field.name)
        return
    if field.kind == UNION:
        _check_union(walker, table, slot, field)
        return
    target = walker.target(table, slot, field.name)
    if target is None:
        return
    if field.kind == STRING:
        walker.string(target, where)
    elif field.kind == VECTOR:
        walker.vector(target, struct.calcsize(field.detail), where)
    elif field.kind == TABLE:
        _check_table(walker, target, field.detail, where, TABLES_OF_THE_SCHEMA[field.detail])
    elif field.kind == TABLES:
        start, length = walker.vector(target, 4, where)
        for index in range(length):
            element = start + 4 * index
            _check_table(walker, element + walker.read("<I", element, where), field.detail,
                         f"{where}[{index}]", TABLES_OF_THE_SCHEMA[field.detail])


def _check_union(walker: _Walker, table: _Table, slot: int, field: Field):
    """Builtin options: a table of the type its type field names."""
    type_position = walker.field_position(table, field.detail, 1, "builtin_options_type")
    union_type = 0 if type_position is None else walker.data[type_position]
    target = walker.target(table, slot, field.name)
    if target is None or union_type == 0:
        return
    where = f"{table.where}.{field.name}"
    name = BUILTIN_OPTIONS_NAMES.get(union_type)
    if name is None:
        raise ModelError(f"{where}: builtin options type {union_type} is not one TFLite defines", STRUCTURE)
    fields = _OPTION_TABLES.get(name, {})
    if fields is None:
        raise ModelError(f"{where}: {name} (the options of an op tfq-plus cannot run) are not supported",
                         STRUCTURE)
    _check_table(walker, target, name, f"{where} ({name})", fields)


def check_structure(data: bytes):
    """Raises ``ModelError`` unless every part of ``data`` the object API reads lies
    inside it (``data`` begins with a root offset and the TFLite identifier)."""
    walker = _Walker(data)
    if len(data) < 8 or data[4:8] != IDENTIFIER:
        walker.fail("header", f"no TFLite identifier {IDENTIFIER!r} at bytes 4..7")
    root = walker.read("<I", 0, "root offset")
    _check_table(walker, root, "Model", "model", TABLES_OF_THE_SCHEMA["Model"])
