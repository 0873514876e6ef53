#!/usr/bin/env bash
# Long fuzzing run of every libFuzzer target of micro/fuzz (option parser,
# pack/unpack, every op of the C op table on each kernel path), under
# AddressSanitizer and UndefinedBehaviorSanitizer.
#
#   bash benchmarks/fuzz_long.sh                  # an hour per target, one at a time
#   FUZZ_SECONDS=600 FUZZ_JOBS=2 bash benchmarks/fuzz_long.sh
#   FUZZ_SECONDS=600 bash benchmarks/fuzz_long.sh avx2/fuzz_bconv2d portable/fuzz_bconv2d
#
# Prints per target the executions, libFuzzer's coverage (cov: edges, ft:
# features) and the first error line of a crash; exits 1 if any target crashed.
# The corpora grow in micro/build/fuzz/corpus (kept across runs, so later runs go
# deeper); crash reproducers land in micro/build/fuzz/artifacts. Needs clang and
# libclang-rt-14-dev (Debian).
#
# Variables: FUZZ_SECONDS (per target, default 3600), FUZZ_JOBS (targets at
# once, default 1), FUZZ_SEED (default 1), FUZZ_BUILD (default micro/build/fuzz),
# PYTHON (default .venv/bin/python, else python3: the seed corpus uses the
# flatbuffers package).
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-.venv/bin/python}
[ -x "$python" ] || python=python3
only=()
[ $# -gt 0 ] && only=(--only "$@")
exec "$python" micro/fuzz/run_fuzzers.py --seconds "${FUZZ_SECONDS:-3600}" \
  --jobs "${FUZZ_JOBS:-1}" --seed "${FUZZ_SEED:-1}" --build "${FUZZ_BUILD:-micro/build/fuzz}" \
  "${only[@]}"
