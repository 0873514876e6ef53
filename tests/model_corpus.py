"""Runs the malformed-model corpus (``malformed_models.py``) through ``report``,
``verify`` and ``Interpreter``, each mutant in a worker subprocess.

A worker takes the jobs (mutant, tool) in order from a start index, printing
``BEGIN <job>`` before and ``END <job> <json outcome>`` after each; the driver reads
these lines, so when a worker dies of a signal the signal belongs to the job that
began and did not end, and a new worker continues after it. A job that runs longer
than ``JOB_TIMEOUT`` seconds is a hang: the driver ends that worker (by its pid).

Outcomes: ``ok`` (the tool returned; for the Interpreter, whether the outputs equal
the base model's), ``rejected: <check>`` (a ``ModelError`` naming the check),
``verify failed`` (a ``VerificationError``: verify found the difference),
``traceback: <type>`` (any other exception), ``signal <name>``, ``hang``.

    python tests/model_corpus.py CORPUS_DIR [--python PYTHON] [--workers N] [--json OUT]

runs a corpus written by ``python tests/malformed_models.py CORPUS_DIR`` (with
another ``--python``, against another checkout's code) and prints the outcome
counts per tool.
"""

import argparse
import collections
import json
import os
import pathlib
import selectors
import signal
import subprocess
import sys
import time
from typing import Dict, List, NamedTuple, Optional

TOOLS = ("report", "verify", "interpreter")
JOB_TIMEOUT = 120.0
# the worker refuses to build inputs larger than this (its own memory, not the tool's)
MAX_INPUT_ELEMENTS = 1 << 24
CLEAN_PREFIXES = ("ok", "rejected: ", "verify failed")


class Outcome(NamedTuple):
    mutant: str
    kind: str
    tool: str
    outcome: str
    message: str
    seconds: float


def clean(outcome: str) -> bool:
    """A correct result or an error of the documented classes."""
    return outcome.startswith(CLEAN_PREFIXES)


# --- worker ----------------------------------------------------------------------


def classify(error: Optional[BaseException]) -> str:
    if error is None:
        return "ok"
    name = type(error).__name__
    if name == "ModelError":
        return f"rejected: {getattr(error, 'check', '?')}"
    if name == "VerificationError":
        return "verify failed"
    return f"traceback: {name}"


class _Base:
    """A base model's Keras model, flatbuffers, samples and Interpreter outputs."""

    def __init__(self, directory: pathlib.Path, paths: dict):
        import numpy as np

        from tfq_plus.converters.cli import load_model

        self.model = load_model(str(directory / paths["keras"]))
        self.deploy = (directory / paths["deploy"]).read_bytes()
        self.reference = (directory / paths["reference"]).read_bytes()
        rng = np.random.default_rng(7)
        self.samples = rng.uniform(-1, 1, (3,) + tuple(self.model.input_shape[1:])).astype(np.float32)
        self.outputs = {}

    def outputs_of(self, which: str, details):
        """The base flatbuffer's Interpreter outputs on ``interpreter_inputs``."""
        from tfq_plus.converters import Interpreter

        if which not in self.outputs:
            interpreter = Interpreter(getattr(self, which))
            inputs = interpreter_inputs(interpreter.input_details)
            self.outputs[which] = (_signature(interpreter.input_details), interpreter.invoke(inputs))
        signature, outputs = self.outputs[which]
        return outputs if signature == _signature(details) else None


def _signature(details):
    return [(tuple(int(d) for d in x["shape"]), str(x["dtype"])) for x in details]


def interpreter_inputs(details):
    """Seeded inputs for input details (raw model types)."""
    import numpy as np

    rng = np.random.default_rng(11)
    inputs = []
    for d in details:
        dtype = np.dtype(d["dtype"])
        shape = tuple(int(x) for x in d["shape"])
        if dtype.kind in "iu":
            info = np.iinfo(dtype)
            inputs.append(rng.integers(info.min, info.max, shape, endpoint=True).astype(dtype))
        else:
            inputs.append(rng.uniform(-1, 1, shape).astype(dtype))
    return inputs


def run_tool(tool: str, mutant: dict, data: bytes, base: _Base) -> str:
    """Runs one tool on one mutant; returns what kind of ``ok`` it was."""
    import numpy as np

    from tfq_plus.converters import Interpreter, report, verify

    reference_mutant = mutant["model"] == "reference"
    if tool == "report":
        result = report(data) if reference_mutant else report(data, reference=base.reference)
        str(result)  # the table, as the CLI prints it
        return "reported"
    if tool == "verify":
        # (no argmax bound: the untrained base models need not agree on 3 samples;
        # weights, every TFQP op and every sign are checked)
        if reference_mutant:
            verify(base.model, base.deploy, base.samples, reference=data, min_argmax_agreement=None)
        else:
            verify(base.model, data, base.samples, min_argmax_agreement=None)
        return "verified"
    interpreter = Interpreter(data)
    elements = sum(int(np.prod(d["shape"], dtype=np.int64)) for d in interpreter.input_details)
    if elements > MAX_INPUT_ELEMENTS:
        return "not invoked: inputs too large"
    outputs = interpreter.invoke(interpreter_inputs(interpreter.input_details))
    expected = base.outputs_of("reference" if reference_mutant else "deploy", interpreter.input_details)
    if expected is None:
        return "ran, inputs unlike the base model's"
    same = len(expected) == len(outputs) and all(
        np.array_equal(a, b) and a.dtype == b.dtype for a, b in zip(outputs, expected))
    return "ran, same outputs as the base model" if same else "ran, outputs differ from the base model's"


def worker(directory: str, start: int, stop: int):
    """Runs jobs [start, stop), one BEGIN / END line pair each on the original
    stdout (file descriptor 1 then goes to stderr, where C code may print)."""
    protocol = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    import tfq_plus  # noqa: F401  (Keras 2 before TensorFlow)

    directory = pathlib.Path(directory)
    manifest = json.loads((directory / "manifest.json").read_text())
    bases: Dict[str, _Base] = {}
    jobs = [(m, tool) for m in manifest["mutants"] for tool in TOOLS]
    for number in range(start, min(stop, len(jobs))):
        mutant, tool = jobs[number]
        print(f"BEGIN {number}", file=protocol, flush=True)
        began = time.perf_counter()
        error, detail = None, ""
        try:
            base = bases.get(mutant["base"])
            if base is None:
                base = bases[mutant["base"]] = _Base(directory, manifest["bases"][mutant["base"]])
            detail = run_tool(tool, mutant, (directory / mutant["path"]).read_bytes(), base)
        except Exception as caught:  # noqa: BLE001  (every exception is an outcome)
            error = caught
        outcome = classify(error)
        message = detail if error is None else f"{type(error).__name__}: {error}"
        record = {"outcome": outcome, "message": message[:400], "seconds": time.perf_counter() - began}
        print(f"END {number} {json.dumps(record)}", file=protocol, flush=True)


# --- driver ----------------------------------------------------------------------


def _signal_name(returncode: int) -> str:
    try:
        return signal.Signals(-returncode).name
    except ValueError:
        return f"signal {-returncode}"


def _run_range(directory: pathlib.Path, jobs: List[tuple], start: int, stop: int, python: str,
               log, outcomes: Dict[int, Outcome]):
    """Runs jobs [start, stop) in workers, a new worker after each death."""
    environment = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    script = pathlib.Path(__file__).resolve()
    while start < stop:
        process = subprocess.Popen(
            [python, str(script), "--worker", str(directory), str(start), str(stop)],
            stdout=subprocess.PIPE, stderr=log, text=True, env=environment, cwd=str(script.parent),
        )
        current, began = None, time.monotonic()
        selector = selectors.DefaultSelector()
        selector.register(process.stdout, selectors.EVENT_READ)
        killed = False
        while True:
            if current is not None and time.monotonic() - began > JOB_TIMEOUT:
                process.kill()
                killed = True
                break
            if not selector.select(timeout=1.0):
                if process.poll() is not None:
                    break
                continue
            line = process.stdout.readline()
            if not line:
                break
            words = line.split(" ", 2)
            if words[0] == "BEGIN":
                current, began = int(words[1]), time.monotonic()
            elif words[0] == "END":
                number = int(words[1])
                record = json.loads(words[2])
                mutant, tool = jobs[number]
                outcomes[number] = Outcome(mutant["name"], mutant["kind"], tool, record["outcome"],
                                           record["message"], record["seconds"])
                current = None
        process.wait()
        selector.close()
        process.stdout.close()
        if current is None:
            return
        mutant, tool = jobs[current]
        outcome = "hang" if killed else (_signal_name(process.returncode) if process.returncode < 0
                                         else f"exit {process.returncode}")
        outcomes[current] = Outcome(mutant["name"], mutant["kind"], tool,
                                    outcome if killed else f"signal {outcome}",
                                    mutant["detail"], time.monotonic() - began)
        start = current + 1


def run_corpus(directory, *, python: str = sys.executable, workers: int = 1, log_path=None) -> List[Outcome]:
    """Every (mutant, tool) job of the corpus in ``directory``, in job order."""
    import threading

    directory = pathlib.Path(directory)
    manifest = json.loads((directory / "manifest.json").read_text())
    jobs = [(m, tool) for m in manifest["mutants"] for tool in TOOLS]
    outcomes: Dict[int, Outcome] = {}
    log = open(log_path or os.devnull, "w")
    try:
        bounds = [len(jobs) * i // workers for i in range(workers + 1)]
        threads = [threading.Thread(target=_run_range,
                                    args=(directory, jobs, bounds[i], bounds[i + 1], python, log, outcomes))
                   for i in range(workers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        log.close()
    missing = [n for n in range(len(jobs)) if n not in outcomes]
    for number in missing:
        mutant, tool = jobs[number]
        outcomes[number] = Outcome(mutant["name"], mutant["kind"], tool, "not run", "", 0.0)
    return [outcomes[n] for n in range(len(jobs))]


def summary(outcomes: List[Outcome]) -> str:
    """Outcome counts per tool, then every unclean outcome."""
    lines = [f"{len({o.mutant for o in outcomes})} mutants, {len(outcomes)} runs"]
    for tool in TOOLS:
        mine = [o for o in outcomes if o.tool == tool]
        counts = collections.Counter(o.outcome if o.outcome != "ok" else f"ok ({o.message})" for o in mine)
        lines.append(f"{tool}: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items(), key=lambda kv: -kv[1])))
    unclean = [o for o in outcomes if not clean(o.outcome)]
    signals = sum(o.outcome.startswith("signal") for o in outcomes)
    lines.append(f"signals {signals}, tracebacks {sum(o.outcome.startswith('traceback') for o in outcomes)}, "
                 f"hangs {sum(o.outcome == 'hang' for o in outcomes)}")
    for o in unclean:
        lines.append(f"  {o.tool:11s} {o.mutant:34s} {o.outcome}: {o.message[:160]}")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("corpus", help="directory written by malformed_models.py")
    parser.add_argument("--python", default=sys.executable, help="interpreter whose tfq_plus runs the tools")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--json", help="write every outcome here")
    parser.add_argument("--log", help="the workers' stderr")
    args = parser.parse_args(argv)
    began = time.monotonic()
    outcomes = run_corpus(args.corpus, python=args.python, workers=args.workers, log_path=args.log)
    print(summary(outcomes))
    print(f"{time.monotonic() - began:.0f} s")
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps([o._asdict() for o in outcomes], indent=1))


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--worker":
        worker(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    else:
        main()
