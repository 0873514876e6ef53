"""Keep TensorFlow's start-up logs off the terminal of the CLI and the examples.

Importing TensorFlow 2.21 writes about eight lines to file descriptor 2 from C++
(absl's "WARNING: All log messages before absl::InitializeLog()", oneDNN, CUDA and
CPU-feature notices), before any Python logging setting can act, and
``TF_CPP_MIN_LOG_LEVEL`` does not silence the absl ones. A user of the command line
cannot act on any of them, so the command line and the examples hide them: they set
``TFQ_PLUS_TF_LOGS=hide`` before importing tfq_plus (``--verbose`` keeps them), and
``tfq_plus/__init__.py`` imports TensorFlow inside :func:`quiet_import`, which
redirects descriptor 2 into a buffer for that import only and keeps the text in
:data:`import_log`. Without the variable (a library user's own program) nothing
changes: the text is written to stderr as TensorFlow would.

``hide`` also sets ``TF_CPP_MIN_LOG_LEVEL=2`` (unless the user set it), which keeps
TensorFlow's later C++ INFO and WARNING lines quiet; errors still show.
"""

import contextlib
import os
import sys
import tempfile
from typing import Iterator, List

ENVIRONMENT_VARIABLE = "TFQ_PLUS_TF_LOGS"
HIDE = "hide"
SHOW = "show"

# What TensorFlow wrote while it was imported by quiet_import (empty if shown).
import_log: List[str] = []
# What TensorFlow's C++ wrote during later calls run under quiet_call (same rule).
call_log: List[str] = []


def hidden() -> bool:
    """Whether TFQ_PLUS_TF_LOGS asks to hide TensorFlow's logs.

    Raises:
        ValueError: the variable holds something other than "hide" or "show".
    """
    value = os.environ.get(ENVIRONMENT_VARIABLE, SHOW)
    if value not in (HIDE, SHOW):
        raise ValueError(
            f"{ENVIRONMENT_VARIABLE}={value!r}: allowed values are {HIDE!r} (keep TensorFlow's "
            f"start-up and C++ logs off the terminal) and {SHOW!r} (the default)"
        )
    return value == HIDE


COMMAND = "tfq-plus"  # the console script setup.cfg installs


def started_as_command() -> bool:
    """Whether this process is the ``tfq-plus`` command (its console script)."""
    return bool(sys.argv) and os.path.basename(sys.argv[0]) == COMMAND


def hide_by_default(argv: List[str]) -> None:
    """For a command line or an example, before tfq_plus is imported: hide
    TensorFlow's logs unless ``--verbose`` is among ``argv`` or the user already
    chose with TFQ_PLUS_TF_LOGS."""
    if "--verbose" in argv:
        os.environ.setdefault(ENVIRONMENT_VARIABLE, SHOW)
    else:
        os.environ.setdefault(ENVIRONMENT_VARIABLE, HIDE)


def _replay(text: List[str]) -> None:
    """Write kept text to descriptor 2 itself, so that whoever redirects it (the
    command line keeps a failing command's logs for --verbose) gets it too."""
    sys.stderr.flush()
    os.write(2, "".join(text).encode())


@contextlib.contextmanager
def descriptor_2_into(text: List[str]) -> Iterator[None]:
    """Redirect file descriptor 2 (where C++ code writes) into ``text`` inside."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            text.append(captured.read().decode(errors="replace"))


@contextlib.contextmanager
def quiet_import() -> Iterator[None]:
    """Run the imports inside with TensorFlow's logs hidden if :func:`hidden`.

    If an import fails, what TensorFlow wrote is shown after all: it may say why.
    """
    if not hidden():
        yield
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    failed = True
    try:
        with descriptor_2_into(import_log):
            yield
        failed = False
    finally:
        if failed:
            _replay(import_log)


@contextlib.contextmanager
def quiet_call() -> Iterator[None]:
    """Run a TensorFlow call whose C++ writes progress to descriptor 2 (the stock
    converter's ``fully_quantize: 0, inference_type: 6, ...``) with it hidden if
    :func:`hidden`; the text is kept in :data:`call_log`, and shown if the call fails."""
    if not hidden():
        yield
        return
    failed = True
    before = len(call_log)
    try:
        with descriptor_2_into(call_log):
            yield
        failed = False
    finally:
        if failed:
            _replay(call_log[before:])
