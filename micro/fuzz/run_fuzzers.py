"""Builds the libFuzzer targets of micro/fuzz, seeds them and runs each for a
bounded time; prints per target the executions, libFuzzer's coverage (cov: edges,
ft: features) and whether it crashed.

    python micro/fuzz/run_fuzzers.py --seconds 10           # every target, 10 s each
    python micro/fuzz/run_fuzzers.py --seconds 600 --jobs 2 --only avx2/fuzz_bconv2d

Used by tests/test_fuzz.py (CI: a few seconds per target) and
benchmarks/fuzz_long.sh (an hour per target). Every run is seeded (-seed) and its
seed corpus generated here (nothing binary is committed): realistic option
buffers from the converter's FlexBuffers encoder for the option parser, fixed
pseudo-random inputs for the others. A crash leaves libFuzzer's reproducer in
<build>/artifacts/; every crash found so far is a regression test in
micro/tests/test_hardening.c.
"""

import argparse
import concurrent.futures
import dataclasses
import os
import pathlib
import random
import re
import shutil
import subprocess
import sys
from typing import Callable, List, Optional

HERE = pathlib.Path(__file__).resolve().parent
MICRO = HERE.parent
DEFAULT_BUILD = MICRO / "build" / "fuzz"

# The options the converter writes, per op: seeds of the option-parser target.
REALISTIC_OPTIONS = [
    dict(channels_in=64, filter_height=3, filter_width=3, stride_height=1, stride_width=1,
         dilation_height_factor=1, dilation_width_factor=1, padding=0, pad_value=1,
         input_pos=127, input_neg=-127, act_min=-128, act_max=127),
    dict(channels_in=300, filter_height=3, filter_width=5, stride_height=2, stride_width=2,
         dilation_height_factor=2, dilation_width_factor=1, padding=1, pad_value=0,
         int32_output=1),
    dict(channels_in=1024, input_pos=128, input_neg=-127, act_min=-128, act_max=127),
    dict(channels=96, filter_height=2, filter_width=2, stride_height=2, stride_width=2,
         padding=1),
    dict(channels_in=3, filter_height=3, filter_width=3, stride_height=1, stride_width=1,
         dilation_height_factor=1, dilation_width_factor=1, padding=0, int32_output=0),
    dict(channels=32, positive=127, negative=-127, group=16),
    dict(filter_height=3, filter_width=3, stride_height=1, stride_width=1,
         dilation_height_factor=1, dilation_width_factor=1, padding=0, terms=2,
         activation_min=-128, activation_max=127),
    dict(filter_height=3, filter_width=3, stride_height=2, stride_width=2,
         dilation_height_factor=1, dilation_width_factor=1, padding=1, depth_multiplier=2),
    dict(channels_in=256, terms=1, activation_min=0, activation_max=127),
    {},
]


@dataclasses.dataclass
class Result:
    target: str            # "path/fuzz_name"
    executions: int
    coverage: int          # libFuzzer's cov: (edges)
    features: int          # libFuzzer's ft:
    crashed: bool
    reason: str            # the first error line of a crash
    output: str


def clang_missing() -> Optional[str]:
    """What is missing to build the targets (None: clang with libFuzzer works)."""
    clang = shutil.which(os.environ.get("CLANG", "clang"))
    if clang is None:
        return "clang is not installed (Debian: apt-get install clang libclang-rt-14-dev)"
    probe = subprocess.run(
        [clang, "-fsanitize=fuzzer,address,undefined", "-x", "c", "-", "-o", os.devnull],
        input="#include <stdint.h>\n#include <stddef.h>\n"
              "int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { (void)d; (void)n; return 0; }\n",
        capture_output=True, text=True,
    )
    if probe.returncode != 0:
        return ("clang cannot link -fsanitize=fuzzer,address,undefined (Debian: apt-get install "
                f"libclang-rt-14-dev): {probe.stderr.strip()[:300]}")
    return None


def make(build: pathlib.Path, *targets: str, jobs: int = 2) -> str:
    command = ["make", "-C", str(HERE), f"BUILD={build}", f"-j{jobs}", *targets]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{done.stdout[-4000:]}{done.stderr[-4000:]}")
    return done.stdout


def targets(build: pathlib.Path) -> List[str]:
    return make(build, "-s", "list").split()


def _flexbuffer_seeds() -> List[bytes]:
    from flatbuffers import flexbuffers

    return [bytes(flexbuffers.Dumps(options)) for options in REALISTIC_OPTIONS if options] + [
        bytes(flexbuffers.Dumps({}))]


def write_seeds(target: str, corpus: pathlib.Path, count: int = 24):
    """Seed corpus of one target (deterministic)."""
    corpus.mkdir(parents=True, exist_ok=True)
    name = target.split("/")[-1]
    if name == "fuzz_flexbuffer":
        seeds = _flexbuffer_seeds()
    else:
        rng = random.Random(name)
        # op targets read their first 96 bytes as decisions, the rest as data
        seeds = [bytes(rng.randrange(256) for _ in range(96 + rng.randrange(0, 512)))
                 for _ in range(count)]
    for index, seed in enumerate(seeds):
        (corpus / f"seed-{index:03d}").write_bytes(seed)


def _last_counts(output: str):
    executions = coverage = features = 0
    match = re.search(r"stat::number_of_executed_units:\s*(\d+)", output)
    if match:
        executions = int(match.group(1))
    for line in output.splitlines():
        found = re.search(r"cov: (\d+) ft: (\d+)", line)
        if found:
            coverage, features = int(found.group(1)), int(found.group(2))
    return executions, coverage, features


def _crash_reason(output: str) -> str:
    for line in output.splitlines():
        if re.search(r"ERROR: AddressSanitizer|runtime error|fuzz_\w+ TFQP_\w+:|fuzz_\w+: |"
                     r"reference: |ERROR: libFuzzer", line):
            return line.strip()
    return "nonzero exit"


# libFuzzer's -rss_limit_mb reads the peak RSS (getrusage's ru_maxrss), which
# Linux carries over from the process that forks and execs the target: from a
# pytest process that has loaded TensorFlow (~2.3 GB) every target "ran out of
# memory" in its first second. A shell that forks the target (no exec: the
# command after it keeps it from exec'ing directly) starts it with the shell's
# small peak instead.
RSS_FRESH_PREFIX = ["sh", "-c", '"$0" "$@"; exit $?']
# A run of a fixed number of executions is stopped only if it hangs.
WATCHDOG_SECONDS = 900


def run(binary: pathlib.Path, target: str, seconds: float, corpus: pathlib.Path,
        artifacts: pathlib.Path, seed: int = 1, extra: Optional[List[str]] = None,
        runs: Optional[int] = None) -> Result:
    """One target for `seconds` on `corpus` (grown in place); with `runs`, for
    that many executions instead (no time limit: the same inputs on every machine,
    however fast, so a test's outcome does not depend on timing)."""
    artifacts.mkdir(parents=True, exist_ok=True)
    limit = f"-runs={runs}" if runs is not None else f"-max_total_time={int(seconds)}"
    command = [str(binary), limit, f"-seed={seed}",
               "-print_final_stats=1", "-timeout=25", "-rss_limit_mb=2048",
               f"-artifact_prefix={artifacts}/{target.replace('/', '_')}-", *(extra or []),
               str(corpus)]
    done = subprocess.run(RSS_FRESH_PREFIX + command, capture_output=True, text=True,
                          timeout=(seconds if runs is None else WATCHDOG_SECONDS) + 120,
                          env={**os.environ, "TFQP_FUZZ_STATS": "1"})
    output = done.stdout + done.stderr
    executions, coverage, features = _last_counts(output)
    crashed = done.returncode != 0
    return Result(target, executions, coverage, features, crashed,
                  _crash_reason(output) if crashed else "", output)


def run_all(build: pathlib.Path, seconds: float, jobs: int = 1, only: Optional[List[str]] = None,
            seed: int = 1, done: Optional[Callable[[Result], None]] = None,
            runs: Optional[int] = None) -> List[Result]:
    """Every target (or `only`), `jobs` at once; `done` sees each result as its
    target finishes (a long run's partial results survive an interruption)."""
    make(build)
    names = [t for t in targets(build) if not only or t in only]
    corpora = build / "corpus"
    for name in names:
        corpus = corpora / name.replace("/", "_")
        if not corpus.exists():
            write_seeds(name, corpus)

    def one(name: str) -> Result:
        result = run(build / name, name, seconds, corpora / name.replace("/", "_"),
                     build / "artifacts", seed, runs=runs)
        if done is not None:
            done(result)
        return result

    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        return list(pool.map(one, names))


HEADER = f"{'target':34} {'executions':>12} {'cov':>6} {'ft':>7}  crash"


def row(r: Result) -> str:
    return (f"{r.target:34} {r.executions:>12,} {r.coverage:>6} {r.features:>7}  "
            f"{r.reason if r.crashed else 'none'}")


def total(results: List[Result]) -> str:
    return (f"{'total':34} {sum(r.executions for r in results):>12,}  "
            f"crashes: {sum(r.crashed for r in results)}")


def table(results: List[Result]) -> str:
    return "\n".join([HEADER] + [row(r) for r in results] + [total(results)])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10, help="per target")
    parser.add_argument("--jobs", type=int, default=1, help="targets run at once")
    parser.add_argument("--build", type=pathlib.Path, default=DEFAULT_BUILD)
    parser.add_argument("--only", nargs="*", help="targets (path/fuzz_name) to run")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    missing = clang_missing()
    if missing:
        print(f"run_fuzzers: {missing}", file=sys.stderr)
        return 2
    print(HEADER, flush=True)
    results = run_all(args.build.resolve(), args.seconds, args.jobs, args.only, args.seed,
                      done=lambda r: print(row(r), flush=True))
    print(total(results))
    return 1 if any(r.crashed for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
