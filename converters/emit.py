"""Emit: the deploy flatbuffer as C/C++ sources for a TFLite Micro firmware.

``write_c_array(flatbuffer, out_dir, name)`` writes

- ``name.h`` / ``name.cc``: ``alignas(16) const unsigned char name[]`` (TFLite Micro
  reads the flatbuffer in place; 16-byte alignment keeps its int32/int64 buffers
  aligned) and ``const unsigned int name_len``;
- ``name_op_resolver.h``: ``name_op_count`` (the number of distinct ops), the type
  ``name_op_resolver = tflite::MicroMutableOpResolver<name_op_count>`` and
  ``TfLiteStatus name_register_ops(name_op_resolver&)``, which adds exactly the
  builtin ops (``resolver.AddConv2D()``, ...) and TFQP custom ops
  (``resolver.AddCustom("TFQP_BCONV2D", tfqp::Register_TFQP_BCONV2D())``) the model
  uses, in first-use order.

The builtin table mirrors the ``Add*`` methods of TFLite Micro's
``tensorflow/lite/micro/micro_mutable_op_resolver.h``.
"""

import os
import re
from typing import List

from tfq_plus.converters import tflite_schema as schema
from tfq_plus.converters.ops.registry import REGISTRY

# BuiltinOperator name -> MicroMutableOpResolver method (TFLite Micro builtins).
MICRO_BUILTINS = {
    "ABS": "AddAbs",
    "ADD": "AddAdd",
    "ADD_N": "AddAddN",
    "ARG_MAX": "AddArgMax",
    "ARG_MIN": "AddArgMin",
    "ASSIGN_VARIABLE": "AddAssignVariable",
    "AVERAGE_POOL_2D": "AddAveragePool2D",
    "BATCH_MATMUL": "AddBatchMatMul",
    "BATCH_TO_SPACE_ND": "AddBatchToSpaceNd",
    "BROADCAST_ARGS": "AddBroadcastArgs",
    "BROADCAST_TO": "AddBroadcastTo",
    "CALL_ONCE": "AddCallOnce",
    "CAST": "AddCast",
    "CEIL": "AddCeil",
    "CONCATENATION": "AddConcatenation",
    "CONV_2D": "AddConv2D",
    "COS": "AddCos",
    "CUMSUM": "AddCumSum",
    "DEPTH_TO_SPACE": "AddDepthToSpace",
    "DEPTHWISE_CONV_2D": "AddDepthwiseConv2D",
    "DEQUANTIZE": "AddDequantize",
    "DIV": "AddDiv",
    "DYNAMIC_UPDATE_SLICE": "AddDynamicUpdateSlice",
    "EMBEDDING_LOOKUP": "AddEmbeddingLookup",
    "ELU": "AddElu",
    "EQUAL": "AddEqual",
    "EXP": "AddExp",
    "EXPAND_DIMS": "AddExpandDims",
    "FILL": "AddFill",
    "FLOOR": "AddFloor",
    "FLOOR_DIV": "AddFloorDiv",
    "FLOOR_MOD": "AddFloorMod",
    "FULLY_CONNECTED": "AddFullyConnected",
    "GATHER": "AddGather",
    "GATHER_ND": "AddGatherNd",
    "GREATER": "AddGreater",
    "GREATER_EQUAL": "AddGreaterEqual",
    "HARD_SWISH": "AddHardSwish",
    "IF": "AddIf",
    "L2_NORMALIZATION": "AddL2Normalization",
    "L2_POOL_2D": "AddL2Pool2D",
    "LEAKY_RELU": "AddLeakyRelu",
    "LESS": "AddLess",
    "LESS_EQUAL": "AddLessEqual",
    "LOG": "AddLog",
    "LOGICAL_AND": "AddLogicalAnd",
    "LOGICAL_NOT": "AddLogicalNot",
    "LOGICAL_OR": "AddLogicalOr",
    "LOGISTIC": "AddLogistic",
    "LOG_SOFTMAX": "AddLogSoftmax",
    "MAXIMUM": "AddMaximum",
    "MAX_POOL_2D": "AddMaxPool2D",
    "MIRROR_PAD": "AddMirrorPad",
    "MEAN": "AddMean",
    "MINIMUM": "AddMinimum",
    "MUL": "AddMul",
    "NEG": "AddNeg",
    "NOT_EQUAL": "AddNotEqual",
    "PACK": "AddPack",
    "PAD": "AddPad",
    "PADV2": "AddPadV2",
    "PRELU": "AddPrelu",
    "QUANTIZE": "AddQuantize",
    "READ_VARIABLE": "AddReadVariable",
    "REDUCE_ALL": "AddReduceAll",
    "REDUCE_MAX": "AddReduceMax",
    "REDUCE_MIN": "AddReduceMin",
    "RELU": "AddRelu",
    "RELU6": "AddRelu6",
    "RESHAPE": "AddReshape",
    "RESIZE_BILINEAR": "AddResizeBilinear",
    "RESIZE_NEAREST_NEIGHBOR": "AddResizeNearestNeighbor",
    "REVERSE_V2": "AddReverseV2",
    "ROUND": "AddRound",
    "RSQRT": "AddRsqrt",
    "SELECT_V2": "AddSelectV2",
    "SHAPE": "AddShape",
    "SIN": "AddSin",
    "SLICE": "AddSlice",
    "SOFTMAX": "AddSoftmax",
    "SPACE_TO_BATCH_ND": "AddSpaceToBatchNd",
    "SPACE_TO_DEPTH": "AddSpaceToDepth",
    "SPLIT": "AddSplit",
    "SPLIT_V": "AddSplitV",
    "SQUEEZE": "AddSqueeze",
    "SQRT": "AddSqrt",
    "SQUARE": "AddSquare",
    "SQUARED_DIFFERENCE": "AddSquaredDifference",
    "STRIDED_SLICE": "AddStridedSlice",
    "SUB": "AddSub",
    "SUM": "AddSum",
    "SVDF": "AddSvdf",
    "TANH": "AddTanh",
    "TRANSPOSE_CONV": "AddTransposeConv",
    "TRANSPOSE": "AddTranspose",
    "UNPACK": "AddUnpack",
    "UNIDIRECTIONAL_SEQUENCE_LSTM": "AddUnidirectionalSequenceLSTM",
    "VAR_HANDLE": "AddVarHandle",
    "WHILE": "AddWhile",
    "ZEROS_LIKE": "AddZerosLike",
}

# micro/tflm's header declaring tfqp::Register_<op>() for every TFQP op.
TFQP_TFLM_HEADER = "tfqp/tflm/tfqp_ops.h"


def tfqp_registration(op: str) -> str:
    """The C++ expression of a TFQP op's TFLMRegistration* (micro/tflm)."""
    return f"tfqp::Register_{op}()"

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_BYTES_PER_LINE = 12


def used_ops(flatbuffer: bytes) -> List[str]:
    """Names of the distinct ops of the model (builtin names / custom codes), first use first."""
    model = schema.read(flatbuffer)
    names: List[str] = []
    for graph in model.subgraphs:
        for op in graph.operators:
            name = schema.op_name(model, op)
            if name not in names:
                names.append(name)
    return names


def op_resolver_header(flatbuffer: bytes, name: str) -> str:
    """C++ header registering exactly the model's ops into a MicroMutableOpResolver."""
    _check_name(name)
    ops = used_ops(flatbuffer)
    lines = []
    for op in ops:
        if op in MICRO_BUILTINS:
            lines.append(f"  status = resolver.{MICRO_BUILTINS[op]}();")
        elif op in REGISTRY:
            lines.append(f'  status = resolver.AddCustom("{op}", {tfqp_registration(op)});')
        else:
            raise ValueError(
                f"write_c_array: op {op!r} of the model is neither a TFLite Micro builtin nor a "
                f"TFQP op ({sorted(REGISTRY)}); it cannot be registered"
            )
        lines.append("  if (status != kTfLiteOk) return status;")
    guard = f"{name.upper()}_OP_RESOLVER_H_"
    includes = ['#include "tensorflow/lite/micro/micro_mutable_op_resolver.h"']
    if any(op in REGISTRY for op in ops):
        includes.append(f'#include "{TFQP_TFLM_HEADER}"')
    body = "\n".join(lines)
    return f"""// Generated by tfq-plus: the ops of model `{name}` ({", ".join(ops)}).
#ifndef {guard}
#define {guard}

{chr(10).join(includes)}

constexpr unsigned int {name}_op_count = {len(ops)};
using {name}_op_resolver = tflite::MicroMutableOpResolver<{name}_op_count>;

// Adds exactly the ops `{name}` uses to `resolver` (call once, before
// constructing the tflite::MicroInterpreter).
inline TfLiteStatus {name}_register_ops({name}_op_resolver& resolver) {{
  TfLiteStatus status = kTfLiteOk;
{body}
  return kTfLiteOk;
}}

#endif  // {guard}
"""


def _check_name(name: str):
    if not isinstance(name, str) or not _IDENTIFIER.match(name):
        raise ValueError(f"write_c_array: name must be a C identifier (letters, digits, _), got {name!r}")


def write_c_array(flatbuffer: bytes, out_dir, name: str) -> List[str]:
    """Write ``name.h``, ``name.cc`` and ``name_op_resolver.h`` into ``out_dir``.

    Args:
        flatbuffer: the model's bytes (bytes-like; not a path).
        out_dir: the directory (str or path-like), created if missing; files of the
            same names in it are overwritten.
        name: a C identifier: the array's name and the files' stem.

    Returns:
        The paths written (a list of three str).

    Raises:
        ValueError: ``name`` is not a C identifier, ``flatbuffer`` is a path,
            ``out_dir`` is a file, or the model has an op that is neither a
            TFLite Micro builtin nor a TFQP op.

    Example::

        write_c_array(deploy, "firmware/model", "bnn")
        # firmware/model/bnn.h, bnn.cc, bnn_op_resolver.h; in the firmware:
        #   bnn_op_resolver resolver; bnn_register_ops(resolver);
        #   tflite::MicroInterpreter interpreter(tflite::GetModel(bnn), resolver, ...);
    """
    _check_name(name)
    if isinstance(flatbuffer, (str, os.PathLike)):
        raise ValueError(
            f"write_c_array: flatbuffer is a path ({os.fspath(flatbuffer)!r}); pass the model's "
            "bytes (open(path, 'rb').read() or what convert_keras_model returned)"
        )
    if os.path.exists(out_dir) and not os.path.isdir(out_dir):
        raise ValueError(f"write_c_array: out_dir {os.fspath(out_dir)!r} is a file; give a directory")
    flatbuffer = bytes(flatbuffer)
    resolver = op_resolver_header(flatbuffer, name)
    os.makedirs(out_dir, exist_ok=True)
    guard = f"{name.upper()}_H_"
    header = f"""// Generated by tfq-plus: the flatbuffer of model `{name}` ({len(flatbuffer)} bytes).
#ifndef {guard}
#define {guard}

extern const unsigned char {name}[];
extern const unsigned int {name}_len;

#endif  // {guard}
"""
    rows = []
    for start in range(0, len(flatbuffer), _BYTES_PER_LINE):
        chunk = flatbuffer[start : start + _BYTES_PER_LINE]
        rows.append("  " + ", ".join(f"0x{b:02x}" for b in chunk) + ",")
    source = f"""// Generated by tfq-plus: the flatbuffer of model `{name}`.
#include "{name}.h"

alignas(16) const unsigned char {name}[] = {{
{chr(10).join(rows)}
}};
const unsigned int {name}_len = {len(flatbuffer)};
"""
    paths = []
    for filename, text in ((f"{name}.h", header), (f"{name}.cc", source), (f"{name}_op_resolver.h", resolver)):
        path = os.path.join(out_dir, filename)
        with open(path, "w") as stream:
            stream.write(text)
        paths.append(path)
    return paths
