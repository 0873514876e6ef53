"""The drop-in builds for users' firmware: micro/tfqp.mk (Makefile projects) and
micro/CMakeLists.txt / micro/tfqp.cmake (CMake projects), and tfqp::RegisterOps.

Each builds a minimal project the way a user would (include the drop-in, compile
its sources with the project's TFLite Micro): the host runner main
(micro/tflm/tests/tflm_runner.cc: registers the builtin ops and the TFQP ops with
tfqp::RegisterOps and runs a .tflite model in tflite::MicroInterpreter) linked
against TFLite Micro's host library, run on a converter deploy model whose output
bytes must equal the host Interpreter's; and, with arm-none-eabi-gcc, the sources
compiled for Cortex-M4 (DSP kernels) and Cortex-M0 (portable path).

Needs a TFLite Micro source tree with its host library (``TFLM_DIR``, as
test_adapters.py); skipped with that reason otherwise.
"""

import os
import pathlib
import shutil
import subprocess

import pytest

from test_adapters import TFLM_DIR, assert_same_bytes, converter_model, needs_tflm, run_tflm

REPO = pathlib.Path(__file__).resolve().parent.parent
MICRO = REPO / "micro"
RUNNER_MAIN = MICRO / "tflm" / "tests" / "tflm_runner.cc"


def tflm_paths():
    """(include directories, host library) of the TFLM tree in TFLM_DIR."""
    root = pathlib.Path(TFLM_DIR)
    downloads = root / "tensorflow/lite/micro/tools/make/downloads"
    includes = [root, downloads / "flatbuffers" / "include", downloads / "gemmlowp",
                downloads / "ruy"]
    library = pathlib.Path(os.environ.get(
        "TFLM_LIB", root / "gen/linux_x86_64_default_gcc/lib/libtensorflow-microlite.a"))
    return includes, library


@pytest.fixture(scope="module")
def tflm_library():
    _, library = tflm_paths()
    if not library.is_file():
        pytest.skip(f"no TFLite Micro host library at {library}: build it with `make -C "
                    f"{TFLM_DIR} -f tensorflow/lite/micro/tools/make/Makefile microlite`")
    return library


@pytest.fixture(scope="module")
def deploy_model():
    """A converter deploy model with builtin and TFQP ops, int8 inputs and the host
    Interpreter's raw outputs."""
    return converter_model("mixed")


def run(command, cwd, timeout=900):
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{' '.join(map(str, command))}:\n{done.stdout}{done.stderr}"
    return done


def assert_runs_like_the_host_interpreter(runner, deploy_model, tmp_path):
    flatbuffer, inputs, expected = deploy_model
    result, outputs = run_tflm(str(runner), flatbuffer, inputs, tmp_path)
    assert result.returncode == 0, result.stderr
    assert_same_bytes(outputs.read_bytes(), expected.tobytes(), str(runner))


# --- micro/tfqp.mk ------------------------------------------------------------------


def makefile_project(directory: pathlib.Path, body: str) -> pathlib.Path:
    """A user's Makefile that includes micro/tfqp.mk, then ``body``."""
    includes, library = tflm_paths()
    (directory / "Makefile").write_text(
        f"include {MICRO}/tfqp.mk\n"
        f"TFLM_INCLUDES := {' '.join(f'-isystem {p}' for p in includes)}\n"
        f"TFLM_LIB := {library}\n"
        "print-flags:\n\t@echo TFQP_FLAGS=$(TFQP_FLAGS)\n"
        + body
    )
    return directory


HOST_RULES = """
runner: $(TFQP_C_SRCS) $(TFQP_CXX_SRCS) main.cc
\tmkdir -p obj
\tfor source in $(TFQP_C_SRCS); do \\
\t  $(CC) -std=c99 -O1 $(TFQP_INCLUDES) $(TFQP_FLAGS) -c $$source -o obj/$$(basename $$source).o || exit 1; \\
\tdone
\t$(CXX) -std=c++17 -O1 -fno-rtti -fno-exceptions -DTF_LITE_STATIC_MEMORY $(TFQP_INCLUDES) \\
\t  $(TFQP_FLAGS) $(TFLM_INCLUDES) $(TFQP_CXX_SRCS) main.cc obj/*.o $(TFLM_LIB) -lm -o $@
"""

ARM_RULES = """
objects:
\tmkdir -p obj
\tfor source in $(TFQP_C_SRCS); do \\
\t  arm-none-eabi-gcc -std=c99 -Os $(CPU) $(TFQP_INCLUDES) $(TFQP_FLAGS) -c $$source -o obj/$$(basename $$source).o || exit 1; \\
\tdone
\tfor source in $(TFQP_CXX_SRCS); do \\
\t  arm-none-eabi-g++ -std=c++17 -Os $(CPU) -fno-rtti -fno-exceptions -DTF_LITE_STATIC_MEMORY \\
\t    $(TFQP_INCLUDES) $(TFQP_FLAGS) $(TFLM_INCLUDES) -c $$source -o obj/$$(basename $$source).o || exit 1; \\
\tdone
"""


@needs_tflm
def test_tfqp_mk_host_project_runs_a_deploy_model(tflm_library, deploy_model, tmp_path):
    project = tmp_path / "project"
    project.mkdir()
    makefile_project(project, HOST_RULES)
    shutil.copy(RUNNER_MAIN, project / "main.cc")
    assert run(["make", "-s", "print-flags"], project).stdout.strip() == "TFQP_FLAGS="
    run(["make", "-s", "runner"], project)
    assert_runs_like_the_host_interpreter(project / "runner", deploy_model, tmp_path)


needs_arm_gcc = pytest.mark.skipif(shutil.which("arm-none-eabi-g++") is None,
                                   reason="arm-none-eabi-g++ is not installed")


@needs_tflm
@needs_arm_gcc
@pytest.mark.parametrize("core, cpu, flags, dsp_kernels", [
    ("cortex-m4+fp", "-mcpu=cortex-m4 -mthumb -mfloat-abi=hard -mfpu=fpv4-sp-d16", "", True),
    ("cortex-m0", "-mcpu=cortex-m0 -mthumb", "-DTFQP_PORTABLE", False),
])
def test_tfqp_mk_compiles_for_cortex_m_with_the_core_kernel_path(core, cpu, flags, dsp_kernels,
                                                                  tmp_path):
    project = tmp_path / "project"
    project.mkdir()
    makefile_project(project, ARM_RULES)
    variables = [f"TFQP_CORE={core}", f"CPU={cpu}"]
    assert run(["make", "-s", "print-flags"] + variables, project).stdout.strip() == \
        f"TFQP_FLAGS={flags}"
    run(["make", "-s", "objects"] + variables, project)
    objects = sorted(str(p) for p in (project / "obj").glob("*.o"))
    assert any(o.endswith("tfqp_ops.cc.o") for o in objects), objects
    symbols = run(["arm-none-eabi-nm", "--defined-only"] + objects, project).stdout
    # the Thumb-2 DSP kernels are linked in only where the core has the extension
    assert ("tfqp_arm_bits_asm" in symbols) == dsp_kernels


# --- micro/CMakeLists.txt + tfqp.cmake ---------------------------------------------------


NO_ROOM_MAIN = """
#include "tfqp/tflm/tfqp_ops.h"
// A resolver with room for the TFQP ops only, one slot already taken by a builtin.
int main() {
  static tflite::MicroMutableOpResolver<tfqp::kOpCount> resolver;
  if (resolver.AddConv2D() != kTfLiteOk) return 3;
  return tfqp::RegisterOps(resolver) == kTfLiteError ? 0 : 1;
}
"""


def cmake_project(directory: pathlib.Path, library: pathlib.Path) -> pathlib.Path:
    """A user's CMake project: TFLite Micro as its own (imported) target, the TFQP ops
    through add_subdirectory(micro) with TFQP_TFLM_TARGET, the runner main and the
    RegisterOps no-room main linked against tfqp::tfqp."""
    includes, _ = tflm_paths()
    (directory / "no_room.cc").write_text(NO_ROOM_MAIN)
    (directory / "CMakeLists.txt").write_text(f"""
cmake_minimum_required(VERSION 3.13)
project(dropin C CXX)
add_library(tflite_micro STATIC IMPORTED)
set_target_properties(tflite_micro PROPERTIES
  IMPORTED_LOCATION "{library}"
  INTERFACE_INCLUDE_DIRECTORIES "{';'.join(str(p) for p in includes)}"
  INTERFACE_COMPILE_DEFINITIONS "TF_LITE_STATIC_MEMORY")
set(TFQP_TFLM_TARGET tflite_micro)
add_subdirectory("{MICRO}" tfqp)
add_executable(runner "{RUNNER_MAIN}")
target_link_libraries(runner PRIVATE tfqp::tfqp)
add_executable(no_room no_room.cc)
target_link_libraries(no_room PRIVATE tfqp::tfqp)
""")
    return directory


@needs_tflm
@pytest.mark.skipif(shutil.which("cmake") is None, reason="cmake is not installed")
def test_cmake_project_runs_a_deploy_model_and_register_ops_reports_no_room(
        tflm_library, deploy_model, tmp_path):
    source = tmp_path / "project"
    source.mkdir()
    cmake_project(source, tflm_library)
    build = tmp_path / "build"
    run(["cmake", "-S", str(source), "-B", str(build), "-DCMAKE_BUILD_TYPE=Release"], tmp_path)
    run(["cmake", "--build", str(build), "-j", "2"], tmp_path)
    assert_runs_like_the_host_interpreter(build / "runner", deploy_model, tmp_path)

    no_room = subprocess.run([str(build / "no_room")], capture_output=True, text=True,
                             timeout=60)
    assert no_room.returncode == 0, (no_room.returncode, no_room.stderr)
    assert "tfqp::RegisterOps: could not add TFQP_" in no_room.stderr, no_room.stderr
    assert "the resolver needs" in no_room.stderr


@needs_tflm
def test_register_ops_rejects_a_resolver_smaller_than_the_op_count_at_compile_time(tmp_path):
    includes, _ = tflm_paths()
    main = tmp_path / "small.cc"
    main.write_text('#include "tfqp/tflm/tfqp_ops.h"\n'
                    "int main() {\n  static tflite::MicroMutableOpResolver<2> resolver;\n"
                    "  return tfqp::RegisterOps(resolver) == kTfLiteOk ? 0 : 1;\n}\n")
    command = ["g++", "-std=c++17", "-fsyntax-only", "-DTF_LITE_STATIC_MEMORY",
               f"-I{MICRO / 'include'}", f"-I{MICRO / 'tflm' / 'include'}", str(main)]
    command += [arg for p in includes for arg in ("-isystem", str(p))]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode != 0
    assert "the resolver's N must count the tfqp::kOpCount TFQP ops" in done.stderr, done.stderr
