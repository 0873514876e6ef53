"""Builds and runs the plain-C tests of micro/ (make -C micro test / test-sanitize).

The C tests cover the flexbuffer option reader on valid, truncated and corrupted
buffers, the validation layer, and every kernel against a per-tap reference, once
per compile-time kernel path (portable C99, and the x86-64 fast paths the host
supports), requiring identical output bytes from all paths. The sanitizer build runs
the same tests under AddressSanitizer and UndefinedBehaviorSanitizer: a malformed
model must never cause an out-of-bounds access.
"""

import importlib.util
import os
import pathlib
import shutil
import subprocess

import pytest

MICRO = pathlib.Path(__file__).resolve().parent.parent / "micro"


def _c_compiler():
    for name in (os.environ.get("CC"), "cc", "gcc", "clang"):
        if name and shutil.which(name):
            return name
    return None


def _run_make(target, build_dir, timeout=600, **env):
    compiler = _c_compiler()
    if compiler is None or shutil.which("make") is None:
        pytest.skip("no C compiler or make on this machine: the C kernel tests cannot be built")
    result = subprocess.run(
        ["make", "-C", str(MICRO), target, f"BUILD={build_dir}", f"CC={compiler}"],
        capture_output=True, text=True, timeout=timeout, env={**os.environ, **env},
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"make {target} failed:\n{output[-6000:]}"
    return output


def test_c_tests_pass_on_every_kernel_path(tmp_path):
    output = _run_make("test", tmp_path)
    variants = output.count("ALL TESTS PASSED")
    assert variants >= 1, output[-3000:]
    assert "identical output digests" in output
    assert " 0 failed" in output and "FAIL" not in output


def test_c_tests_pass_under_address_and_undefined_sanitizers(tmp_path):
    if _c_compiler() is None:
        pytest.skip("no C compiler on this machine: the C kernel tests cannot be built")
    probe = subprocess.run(
        [_c_compiler(), "-fsanitize=address,undefined", "-x", "c", "-", "-o",
         str(tmp_path / "probe")],
        input="int main(void){return 0;}", capture_output=True, text=True,
    )
    if probe.returncode != 0:
        pytest.skip(f"the C compiler cannot build with sanitizers: {probe.stderr.strip()[:200]}")
    output = _run_make("test-sanitize", tmp_path)
    assert output.count("ALL TESTS PASSED") >= 1
    assert "identical output digests" in output
    assert "runtime error" not in output and "AddressSanitizer" not in output


def test_flexbuffer_vectors_header_is_what_the_python_encoder_produces():
    spec = importlib.util.spec_from_file_location(
        "make_flexbuffer_vectors", MICRO / "tests" / "make_flexbuffer_vectors.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert (MICRO / "tests" / "flexbuffer_vectors.h").read_text() == module.render(), (
        "micro/tests/flexbuffer_vectors.h is stale: run python micro/tests/make_flexbuffer_vectors.py"
    )


def test_kernels_compile_for_cortex_m4(tmp_path):
    if shutil.which("arm-none-eabi-gcc") is None:
        pytest.skip("arm-none-eabi-gcc is not installed")
    output = _run_make("cortex-m4", tmp_path)
    assert "kernels compile for Cortex-M4" in output
