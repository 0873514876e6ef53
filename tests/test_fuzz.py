"""The libFuzzer targets of micro/fuzz (clang -fsanitize=fuzzer,address,undefined):
the custom-options parser, the pack/unpack conversions and every op of the C op
table (parse -> prepare -> init_table -> eval, output compared with a naive
reference), once per kernel path, each run for a bounded time with a fixed seed on
a generated seed corpus; none may crash. And once, that the fuzzer catches a
planted out-of-bounds access in a test-only copy of a kernel.

run.sh installs clang and libclang-rt-14-dev in CI (CI=true: a failed install
fails the run); elsewhere the tests are skipped, naming what is missing.
Each target runs a fixed number of executions from its seed corpus with seed 1
(TFQP_FUZZ_RUNS, default 10000), not a fixed time: the same inputs on every machine,
so the outcome does not depend on its speed.
"""

import importlib.util
import os
import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
RUNS = int(os.environ.get("TFQP_FUZZ_RUNS", "10000"))


def _runner():
    spec = importlib.util.spec_from_file_location("run_fuzzers", ROOT / "micro" / "fuzz" / "run_fuzzers.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


run_fuzzers = _runner()


@pytest.fixture(scope="module")
def build(tmp_path_factory):
    missing = run_fuzzers.clang_missing()
    if missing:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI must build the fuzz targets: {missing}")
        pytest.skip(f"fuzz targets cannot be built: {missing}")
    return tmp_path_factory.mktemp("fuzz")


def test_every_target_runs_without_a_crash(build):
    results = run_fuzzers.run_all(build, 0, jobs=1, seed=1, runs=RUNS)
    names = {r.target.split("/")[-1] for r in results}
    ops = {op.lower() for op in _table_op_names()}
    assert {"fuzz_flexbuffer", "fuzz_packing"} <= names
    assert {f"fuzz_{op[len('tfqp_'):]}" for op in ops} <= names, "an op of the table has no target"
    print("\n" + run_fuzzers.table(results))
    crashed = [r for r in results if r.crashed]
    assert not crashed, "\n\n".join(f"{r.target}: {r.reason}\n{r.output[-3000:]}" for r in crashed)
    for r in results:
        assert r.executions > 0 and r.coverage > 0, f"{r.target} ran nothing:\n{r.output[-2000:]}"
        if r.target.split("/")[-1] not in ("fuzz_flexbuffer", "fuzz_packing"):
            # the op targets reach eval and the reference comparison
            compared = re.search(r"(\d+) compared", r.output)
            assert compared and int(compared.group(1)) > 0, r.output[-1500:]


def _table_op_names():
    op_h = (ROOT / "micro" / "include" / "tfqp" / "op.h").read_text()
    return ["TFQP_" + name for name in re.findall(r"^\s*X\(\w+,\s*(\w+)\)", op_h, re.M)]


# executions within which the planted bug must be found (libFuzzer stops at it)
PLANTED_RUNS = 2_000_000


def test_planted_out_of_bounds_access_is_caught(build):
    """micro/fuzz/Makefile's `planted` target builds fuzz_bmaxpool2d against a copy
    of kernels/bmaxpool2d.c whose AND loop runs one word past each pixel: inside the
    image that word is the next pixel's (then overwritten), so only the last output
    pixel's window touches memory past the buffers. From an empty corpus the fuzzer
    must report it as a heap-buffer-overflow in that loop within PLANTED_RUNS executions."""
    run_fuzzers.make(build, "planted")
    corpus = build / "planted-corpus"
    corpus.mkdir()
    result = run_fuzzers.run(build / "planted" / "fuzz_bmaxpool2d", "planted/fuzz_bmaxpool2d",
                             0, corpus, build / "planted-artifacts", seed=1, runs=PLANTED_RUNS)
    assert result.crashed, result.output[-2000:]
    assert "AddressSanitizer: heap-buffer-overflow" in result.output, result.output[-3000:]
    report = result.output[result.output.index("AddressSanitizer"):]
    first_frame = next(line for line in report.splitlines() if line.strip().startswith("#0"))
    assert "pool_eval" in first_frame and "planted/bmaxpool2d.c" in first_frame, report[:2000]
    assert list((build / "planted-artifacts").glob("planted_fuzz_bmaxpool2d-crash-*")), \
        "libFuzzer wrote no reproducer"
