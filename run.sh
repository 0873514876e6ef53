#!/usr/bin/env bash
# The two commands of tfq-plus on a fresh Debian/Ubuntu machine:
#   bash run.sh demo   set up, then train a binarized model on offline data, convert and
#                      verify it, and leave it ready for firmware in out/binary_mnist
#   bash run.sh test   set up, then run the test suite
# Set-up (idempotent): system packages if missing (as root), a virtualenv in .venv,
# and the package installed editable with its dev extras.
set -euo pipefail
cd "$(dirname "$0")"
here=$(pwd)

usage() { echo "usage: bash run.sh demo|test [args passed on]" >&2; exit 2; }
[ $# -ge 1 ] || usage
command=$1; shift

pick_python() {
  for candidate in ${PYTHON:-} python3.12 python3.11 python3.10 python3; do
    [ -n "$candidate" ] || continue
    # (stderr muted: a pyenv shim of a version it lacks says so on every probe)
    if command -v "$candidate" >/dev/null 2>&1 &&
       "$candidate" -c 'import sys; sys.exit(not (3, 10) <= sys.version_info[:2] <= (3, 12))' 2>/dev/null; then
      echo "$candidate"; return 0
    fi
  done
  echo "run.sh: needs Python 3.10, 3.11 or 3.12 (TensorFlow 2.21); set PYTHON=..." >&2
  return 1
}

apt_install() {
  # Installs Debian packages when missing; only as root (CI, containers).
  local missing=()
  for package in "$@"; do
    dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" != 0 ]; then
    echo "run.sh: please install: sudo apt-get install ${missing[*]}" >&2; return 1
  fi
  echo "run.sh: installing system packages ${missing[*]} (once; usually under a minute)" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}

setup() {
  if command -v dpkg >/dev/null 2>&1; then
    apt_install gcc make
  fi
  local python; python=$(pick_python)
  if [ ! -x .venv/bin/python ]; then
    echo "run.sh: creating the virtualenv .venv with $("$python" --version 2>&1)" >&2
    if ! "$python" -m venv .venv 2>/dev/null; then
      rm -rf .venv
      command -v dpkg >/dev/null 2>&1 && apt_install python3-venv
      "$python" -m venv .venv
    fi
  fi
  local stamp=.venv/.tfq_plus_installed
  if [ ! -f "$stamp" ] || [ setup.cfg -nt "$stamp" ] || [ setup.py -nt "$stamp" ]; then
    echo "run.sh: installing tfq-plus into .venv with TensorFlow, tf_keras, larq, TFMOT and its" \
         "test tools (once; 2-5 minutes, mostly downloads)" >&2
    local started=$SECONDS log=.venv/install.log
    # pip's own warnings (index locations, setuptools' deprecations) go to the log,
    # shown only when the install fails
    if ! { .venv/bin/python -m pip install --upgrade pip setuptools wheel &&
           .venv/bin/python -m pip install -e ".[dev]"; } >"$log" 2>&1; then
      tail -n 40 "$log" >&2
      echo "run.sh: the install failed; the whole log is $here/$log" >&2
      return 1
    fi
    touch "$stamp"
    echo "run.sh: installed in $((SECONDS - started)) s (log: $log); activate with: source .venv/bin/activate" >&2
  fi
  # Offline data: the shared MNIST/Fashion-MNIST folder beside the checkout, if any.
  if [ -z "${TFQ_PLUS_DATA_DIR:-}" ] && [ -d "$here/../shared/data/mnist" ]; then
    export TFQ_PLUS_DATA_DIR="$here/../shared/data"
  fi
  export TF_CPP_MIN_LOG_LEVEL=${TF_CPP_MIN_LOG_LEVEL:-2}
}

case "$command" in
  demo)
    setup
    # TensorFlow's start-up logs hidden, as the tfq-plus command does (--verbose shows them)
    export TFQ_PLUS_TF_LOGS=${TFQ_PLUS_TF_LOGS:-hide}
    exec .venv/bin/python examples/binary_mnist_to_mcu.py "$@" ;;
  test)
    setup
    # Cortex-M cross compiler, newlib and emulator for tests/test_cortex_m.py. Outside
    # CI the test is skipped, naming what is missing, when they cannot be installed; in
    # CI (CI=true) a failed install fails the run.
    if command -v dpkg >/dev/null 2>&1; then
      if [ "${CI:-}" = true ]; then
        apt_install gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm
      else
        apt_install gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm || true
      fi
    fi
    # clang with libFuzzer and the sanitizers for tests/test_fuzz.py, installed and
    # skipped the same way.
    if command -v dpkg >/dev/null 2>&1; then
      if [ "${CI:-}" = true ]; then
        apt_install clang libclang-rt-14-dev
      else
        apt_install clang libclang-rt-14-dev || true
      fi
    fi
    exec .venv/bin/python -m pytest "$@" ;;
  *) usage ;;
esac
