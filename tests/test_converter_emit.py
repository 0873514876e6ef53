"""write_c_array: the flatbuffer as a C array and an op resolver that compiles."""

import os
import re
import shutil
import subprocess

import pytest
from tensorflow.lite.python import schema_py_generated as fb

from test_converter_models import converted

from tfq_plus.converters import write_c_array
from tfq_plus.converters.emit import MICRO_BUILTINS, used_ops
from tfq_plus.converters.ops import REGISTRY


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    deploy = converted("mixed").deploy
    out = tmp_path_factory.mktemp("c_array")
    paths = write_c_array(deploy, str(out), "mixed_bnn")
    return deploy, out, paths


def test_array_holds_the_flatbuffer_16_byte_aligned(written):
    deploy, out, paths = written
    assert [os.path.basename(p) for p in paths] == ["mixed_bnn.h", "mixed_bnn.cc", "mixed_bnn_op_resolver.h"]
    source = (out / "mixed_bnn.cc").read_text()
    assert "alignas(16) const unsigned char mixed_bnn[]" in source
    body = source[source.index("{") + 1 : source.index("};")]
    data = bytes(int(h, 16) for h in re.findall(r"0x([0-9a-f]{2})", body))
    assert data == deploy
    assert f"const unsigned int mixed_bnn_len = {len(deploy)};" in source
    header = (out / "mixed_bnn.h").read_text()
    assert "extern const unsigned char mixed_bnn[];" in header and "extern const unsigned int mixed_bnn_len;" in header


def test_resolver_registers_exactly_the_ops_of_the_model(written):
    deploy, out, _ = written
    model = fb.ModelT.InitFromObj(fb.Model.GetRootAsModel(bytearray(deploy), 0))
    distinct = {op.opcodeIndex for op in model.subgraphs[0].operators}
    resolver = (out / "mixed_bnn_op_resolver.h").read_text()
    assert f"constexpr unsigned int mixed_bnn_op_count = {len(distinct)};" in resolver
    calls = re.findall(r"resolver\.(\w+)\(", resolver)
    assert len(calls) == len(distinct) == len(used_ops(deploy))
    customs = re.findall(r'AddCustom\("(\w+)"', resolver)
    assert sorted(customs) == sorted(n for n in used_ops(deploy) if n.startswith("TFQP_"))
    builtins = [c for c in calls if c != "AddCustom"]
    assert sorted(builtins) == sorted(MICRO_BUILTINS[n] for n in used_ops(deploy) if n in MICRO_BUILTINS)


def test_name_must_be_a_c_identifier(tmp_path):
    with pytest.raises(ValueError, match="C identifier"):
        write_c_array(converted("mixed").deploy, str(tmp_path), "my-model")


def test_a_path_for_the_bytes_or_a_file_for_the_folder_is_named(tmp_path):
    """Before: "string argument without an encoding" and FileExistsError."""
    model = tmp_path / "model.tflite"
    model.write_bytes(converted("mixed").deploy)
    with pytest.raises(ValueError, match=r"flatbuffer is a path \('.*model.tflite'\); pass the model's bytes"):
        write_c_array(str(model), str(tmp_path / "c"), "bnn")
    with pytest.raises(ValueError, match=r"out_dir '.*model.tflite' is a file; give a directory"):
        write_c_array(model.read_bytes(), str(model), "bnn")


FAKE_RESOLVER = """
#pragma once
typedef enum { kTfLiteOk = 0, kTfLiteError = 1 } TfLiteStatus;
struct TFLMRegistration { int unused; };
namespace tflite {
template <unsigned int tOpCount>
class MicroMutableOpResolver {
 public:
  TfLiteStatus AddCustom(const char* name, const TFLMRegistration* registration);
%s
};
}  // namespace tflite
"""

FAKE_TFQP = """
#pragma once
namespace tfqp {
%s
}
"""


@pytest.mark.skipif(shutil.which("g++") is None, reason="needs g++")
def test_sources_compile_against_the_resolver_api(written, tmp_path):
    """g++ -fsyntax-only against a stub of TFLite Micro's MicroMutableOpResolver with the
    method names of MICRO_BUILTINS (the real headers are checked by the test below when
    a TFLite Micro tree is available)."""
    _, out, _ = written
    include = tmp_path / "include"
    (include / "tensorflow/lite/micro").mkdir(parents=True)
    (include / "tfqp/tflm").mkdir(parents=True)
    methods = "\n".join(f"  TfLiteStatus {m}();" for m in sorted(set(MICRO_BUILTINS.values())))
    (include / "tensorflow/lite/micro/micro_mutable_op_resolver.h").write_text(FAKE_RESOLVER % methods)
    registrations = "\n".join(
        f"TFLMRegistration* Register_{name}();" for name in REGISTRY
    )
    (include / "tfqp/tflm/tfqp_ops.h").write_text(FAKE_TFQP % registrations)
    main = tmp_path / "main.cc"
    main.write_text(
        '#include "mixed_bnn.h"\n#include "mixed_bnn_op_resolver.h"\n'
        "int main() { static mixed_bnn_op_resolver r; return mixed_bnn_register_ops(r) + mixed_bnn[0] * 0; }\n"
    )
    result = subprocess.run(
        ["g++", "-std=c++17", "-Wall", "-Werror", "-fsyntax-only", f"-I{out}", f"-I{include}",
         str(main), str(out / "mixed_bnn.cc")],
        capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stderr


TFLM_INCLUDES = os.environ.get("TFQP_TFLM_INCLUDES")  # "tflm_root:flatbuffers/include:gemmlowp"
ADAPTER_INCLUDE = os.path.join(os.path.dirname(__file__), "..", "micro", "tflm", "include")


@pytest.mark.skipif(not TFLM_INCLUDES, reason="set TFQP_TFLM_INCLUDES to a TFLite Micro tree and its "
                    "flatbuffers and gemmlowp include folders (colon-separated) to compile against them")
def test_sources_compile_against_tflite_micro_and_the_adapter_header(written, tmp_path):
    """The real MicroMutableOpResolver and micro/tflm's tfqp/tflm/tfqp_ops.h."""
    _, out, _ = written
    main = tmp_path / "main.cc"
    main.write_text(
        '#include "mixed_bnn.h"\n#include "mixed_bnn_op_resolver.h"\n'
        "TfLiteStatus Setup() { static mixed_bnn_op_resolver r; return mixed_bnn_register_ops(r); }\n"
    )
    includes = [f"-isystem{p}" for p in TFLM_INCLUDES.split(":")]
    result = subprocess.run(
        ["g++", "-std=c++17", "-Wall", "-Werror", "-fsyntax-only", "-DTF_LITE_STATIC_MEMORY", f"-I{out}",
         f"-I{ADAPTER_INCLUDE}", *includes, str(main), str(out / "mixed_bnn.cc")],
        capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stderr
