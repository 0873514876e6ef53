"""Host speed of the binary TFQP kernels against TFLite and larq-compute-engine.

    python benchmarks/kernels_host.py [--runs 25] [--lce-python /work/bench-venv/bin/python]
    python benchmarks/kernels_host.py --suite shift [--runs 25]

Layers (batch 1): TFQP_BCONV2D on L1 32x32x64->64, L2 16x16x128->128, L3 8x8x256->256,
M1 16x16x32->32 (3x3, stride 1, SAME), and TFQP_BFULLY_CONNECTED on D1 1024->256.
Contenders, all single-threaded, each timed as "input array in -> output array out"
through its Python binding:

- ``tfqp int8``: the host build of our kernel (``tfq_plus.converters._tfqp_kernels``)
  prepared once, int8 input (binarized inside the op) -> int8 output; what a deploy
  model runs at its first binary layer, and the configuration LCE's int8 model runs;
- ``tfqp packed``: the same kernel, bit-packed input -> bit-packed output (between
  binary layers of a deploy model);
- ``tflite int8`` / ``tflite float``: the same layer as a stock Conv2D / Dense in
  ``tf.lite.Interpreter`` (num_threads=1, default XNNPACK delegate), full int8 or float;
- ``lce``: larq-compute-engine's converter and interpreter on the larq layer
  (``QuantConv2D`` with ``ste_sign`` input and kernel quantizers, ``pad_values=1``),
  int8 in/out (LceQuantize + LceBconv2d), ``use_indirect_bgemm=True``. LCE pins its own
  TensorFlow, so it runs in a separate virtualenv (``--lce-python``), as a worker process
  that this script drives sample by sample. LCE has no binary fully-connected op: its
  converter leaves ``QuantDense`` a float FULLY_CONNECTED, which is what its D1 column
  times.

The machine may be shared: times are CPU time of the calling thread
(``time.thread_time``; every contender runs single-threaded in the calling thread), so
time the scheduler gives to other processes is not counted, though their cache and
core contention still is; the contenders are interleaved (every round times each of
them once, in a rotating order, one layer at a time) and each figure is the median of
``--runs`` rounds; a sample is the mean of enough calls to last ~``--sample-ms``. The
load average before and after is printed. MAC counts are multiply-accumulates of the
layer (binary MACs for tfqp / lce), G = 1e9 per second.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
import warnings
from dataclasses import dataclass

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import tfq_plus  # noqa: E402,F401  (selects Keras 2 before TensorFlow)
from tfq_plus.converters.ops import BCONV2D, BFULLY_CONNECTED, BMAXPOOL2D  # noqa: F401

import numpy as np  # noqa: E402


@dataclass(frozen=True)
class Layer:
    name: str
    kind: str  # "conv" or "dense"
    size: int  # H = W (conv)
    channels_in: int
    channels_out: int

    @property
    def macs(self) -> int:
        if self.kind == "dense":
            return self.channels_in * self.channels_out
        if self.kind == "depthwise":
            return self.size * self.size * self.channels_in * 9
        return self.size * self.size * self.channels_in * self.channels_out * 9

    @property
    def input_shape(self):
        if self.kind == "dense":
            return (1, self.channels_in)
        return (1, self.size, self.size, self.channels_in)

    def describe(self) -> str:
        if self.kind == "dense":
            return f"{self.channels_in}->{self.channels_out}"
        if self.kind == "depthwise":
            return f"{self.size}x{self.size}x{self.channels_in} depthwise"
        return f"{self.size}x{self.size}x{self.channels_in}->{self.channels_out}"


LAYERS = [
    Layer("L1", "conv", 32, 64, 64),
    Layer("L2", "conv", 16, 128, 128),
    Layer("L3", "conv", 8, 256, 256),
    Layer("M1", "conv", 16, 32, 32),
    Layer("D1", "dense", 0, 1024, 256),
]

# The shift ops' layers (--suite shift), the shapes of benchmarks/mcu_cycles.py.
SHIFT_LAYERS = [
    Layer("M1", "conv", 16, 32, 32),
    Layer("L2", "conv", 8, 128, 128),
    Layer("D1", "dense", 0, 1024, 256),
    Layer("DW", "depthwise", 16, 64, 64),
]
SHIFT_KINDS = ("po2", "ternary")

# int8 codes of +1 / -1 after a sign quantized with scale 2/255, zero point -1.
INPUT_POS, INPUT_NEG, INPUT_ZERO_POINT = 128, -127, -1


# --- contenders in this process ------------------------------------------------------


def load_candidate(path: str):
    """A candidate build of the host extension (a .so built from modified sources), to
    time next to the installed one."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("tfq_plus.converters._tfqp_kernels", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def tfqp_contenders(layer: Layer, rng, kernels=None, label="tfqp"):
    """(int8 -> int8, packed -> packed) prepared TFQP ops and their inputs."""
    from tfq_plus.converters import packing

    if kernels is None:
        from tfq_plus.converters import _tfqp_kernels as kernels

    cin, cout = layer.channels_in, layer.channels_out
    taps = cin if layer.kind == "dense" else 9 * cin
    if layer.kind == "dense":
        weights = packing.pack_filter(rng.choice([-1, 1], (cout, cin)))
        int8_options = BFULLY_CONNECTED.encode(
            channels_in=cin, input_pos=INPUT_POS, input_neg=INPUT_NEG, act_min=-128, act_max=127)
        packed_options = BFULLY_CONNECTED.encode(channels_in=cin)
        prepare = kernels.prepare_bfully_connected
    else:
        weights = packing.pack_filter(rng.choice([-1, 1], (cout, 3, 3, cin)))
        common = dict(channels_in=cin, filter_height=3, filter_width=3, padding="same",
                      pad_value=1)
        int8_options = BCONV2D.encode(**common, input_pos=INPUT_POS,
                                               input_neg=INPUT_NEG, act_min=-128, act_max=127)
        packed_options = BCONV2D.encode(**common)
        prepare = kernels.prepare_bconv2d
    shift = -int(np.log2(127 * 128 * taps)) + 8
    int8_transform = np.stack([
        rng.choice([-127, 127], cout), rng.integers(-1000, 1000, cout),
        rng.integers(1 << 30, (1 << 31) - 1, cout), np.full(cout, shift),
    ], axis=1).astype(np.int32)
    packed_transform = np.stack([
        rng.choice([-1, 1], cout), rng.integers(-taps // 4, taps // 4, cout),
    ], axis=1).astype(np.int32)
    x8 = rng.integers(-128, 128, layer.input_shape, dtype=np.int8)
    xp = packing.pack_activations(x8, INPUT_ZERO_POINT)
    int8_op = prepare(x8, weights, int8_transform, int8_options,
                      input_zero_point=INPUT_ZERO_POINT, output_zero_point=0)
    packed_op = prepare(xp, weights, packed_transform, packed_options, packed_output=True)
    return {
        f"{label} int8": lambda: int8_op(x8),
        f"{label} packed": lambda: packed_op(xp),
    }, kernels.kernel_variant()


def keras_layer_model(layer: Layer):
    import tensorflow as tf

    inputs = tf.keras.Input(layer.input_shape[1:], batch_size=1)
    if layer.kind == "dense":
        outputs = tf.keras.layers.Dense(layer.channels_out, use_bias=False)(inputs)
    elif layer.kind == "depthwise":
        outputs = tf.keras.layers.DepthwiseConv2D(3, padding="same", use_bias=False)(inputs)
    else:
        outputs = tf.keras.layers.Conv2D(layer.channels_out, 3, padding="same",
                                         use_bias=False)(inputs)
    return tf.keras.Model(inputs, outputs)


def tflite_contenders(layer: Layer, rng):
    """Stock TFLite float and full-int8 models of the layer, 1 thread, default XNNPACK."""
    import tensorflow as tf

    model = keras_layer_model(layer)
    calibration = rng.uniform(-1, 1, (8,) + layer.input_shape[1:]).astype(np.float32)

    def representative():
        for sample in calibration:
            yield [sample[None]]

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    float_model = converter.convert()
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    int8_model = converter.convert()

    contenders = {}
    for name, flatbuffer, dtype in (("tflite int8", int8_model, np.int8),
                                    ("tflite float", float_model, np.float32)):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            interpreter = tf.lite.Interpreter(model_content=flatbuffer, num_threads=1)
        interpreter.allocate_tensors()
        source = interpreter.get_input_details()[0]["index"]
        target = interpreter.get_output_details()[0]["index"]
        x = (rng.integers(-128, 128, layer.input_shape) if dtype == np.int8
             else rng.uniform(-1, 1, layer.input_shape)).astype(dtype)

        def call(interpreter=interpreter, source=source, target=target, x=x):
            interpreter.set_tensor(source, x)
            interpreter.invoke()
            return interpreter.get_tensor(target)

        contenders[name] = call
    return contenders


def shift_contenders(layer: Layer, rng, kernels=None, label="tfqp"):
    """Prepared TFQP shift ops of the layer (benchmarks/shift_layers.py), one per kind,
    int8 in -> int8 out."""
    import shift_layers

    if kernels is None:
        from tfq_plus.converters import _tfqp_kernels as kernels
    op = layer.kind if layer.kind != "dense" else "dense"
    contenders = {}
    for kind in SHIFT_KINDS:
        built = shift_layers.shift_layer(rng, op, kind, height=layer.size, width=layer.size,
                                         cin=layer.channels_in, cout=layer.channels_out)
        prepared = kernels.prepare(built.spec.name, built.inputs, built.options,
                                   output_type="int8",
                                   input_zero_point=shift_layers.INPUT_ZERO_POINT,
                                   output_zero_point=shift_layers.OUTPUT_ZERO_POINT)
        x = built.inputs[0]
        contenders[f"{label} {kind}"] = lambda prepared=prepared, x=x: prepared(x)
    return contenders, kernels.kernel_variant()


# --- larq-compute-engine worker --------------------------------------------------------

LCE_WORKER = textwrap.dedent('''
    import json, os, sys, time
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    import numpy as np
    import tensorflow as tf
    import larq as lq
    import larq_compute_engine as lce
    from larq_compute_engine.tflite.python.interpreter import Interpreter

    def model_for(spec):
        inputs = tf.keras.Input(spec["input_shape"][1:], batch_size=1)
        binary = dict(input_quantizer="ste_sign", kernel_quantizer="ste_sign",
                      kernel_constraint="weight_clip", use_bias=False)
        if spec["kind"] == "dense":
            outputs = lq.layers.QuantDense(spec["channels_out"], **binary)(inputs)
        else:
            outputs = lq.layers.QuantConv2D(spec["channels_out"], 3, padding="same",
                                            pad_values=1.0, **binary)(inputs)
        return tf.keras.Model(inputs, outputs)

    def ops_of(flatbuffer):
        from tensorflow.lite.python import schema_py_generated as fb
        model = fb.ModelT.InitFromObj(fb.Model.GetRootAsModel(bytearray(flatbuffer), 0))
        names = {v: k for k, v in vars(fb.BuiltinOperator).items() if not k.startswith("_")}
        found = []
        for op in model.subgraphs[0].operators:
            code = model.operatorCodes[op.opcodeIndex]
            builtin = max(code.builtinCode, code.deprecatedBuiltinCode)
            found.append(code.customCode.decode() if builtin == fb.BuiltinOperator.CUSTOM
                         else names[builtin])
        return found

    interpreters = {}
    print(json.dumps({"ready": lce.__version__, "tensorflow": tf.__version__}), flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        if request["cmd"] == "load":
            spec = request["layer"]
            flatbuffer = lce.convert_keras_model(
                model_for(spec), inference_input_type=tf.int8, inference_output_type=tf.int8,
                experimental_default_int8_range=(-3.0, 3.0))
            interpreter = Interpreter(flatbuffer, num_threads=1, use_indirect_bgemm=True)
            x = np.random.default_rng(0).integers(-128, 128, spec["input_shape"], dtype=np.int8)
            interpreters[spec["name"]] = (interpreter, [x])
            print(json.dumps({"ops": ops_of(flatbuffer)}), flush=True)
        elif request["cmd"] == "sample":
            interpreter, inputs = interpreters[request["name"]]
            calls = request["calls"]
            start = time.thread_time()
            for _ in range(calls):
                interpreter.interpreter.predict(inputs)
            print(json.dumps({"seconds": (time.thread_time() - start) / calls}), flush=True)
''')


class LceWorker:
    """larq-compute-engine in its own virtualenv, driven over stdin/stdout."""

    def __init__(self, python: str):
        self.script = tempfile.NamedTemporaryFile("w", suffix="_lce_worker.py", delete=False)
        self.script.write(LCE_WORKER)
        self.script.close()
        self.process = subprocess.Popen(
            [python, self.script.name], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL, text=True, env={**os.environ, "PYTHONPATH": ""})
        self.version = self._read()

    def _read(self):
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError("the larq-compute-engine worker exited (is LCE installed in "
                               "the --lce-python environment?)")
        return json.loads(line)

    def request(self, **message):
        self.process.stdin.write(json.dumps(message) + "\n")
        self.process.stdin.flush()
        return self._read()

    def load(self, layer: Layer):
        spec = dict(name=layer.name, kind=layer.kind, input_shape=list(layer.input_shape),
                    channels_out=layer.channels_out)
        return self.request(cmd="load", layer=spec)["ops"]

    def contender(self, layer: Layer):
        return lambda calls: self.request(cmd="sample", name=layer.name, calls=calls)["seconds"]

    def close(self):
        self.process.stdin.close()
        self.process.wait(timeout=60)
        os.unlink(self.script.name)


# --- timing ---------------------------------------------------------------------------


def local_sampler(function):
    """A sampler: calls -> CPU seconds of this thread per call (mean over `calls`)."""
    def sample(calls):
        start = time.thread_time()
        for _ in range(calls):
            function()
        return (time.thread_time() - start) / calls
    return sample


def our_samplers(contenders, layer, rng, candidate_path):
    """Samplers of our contenders of the layer (``contenders``: tfqp_contenders or
    shift_contenders), with a candidate build's next to them when one is given; and the
    installed build's kernel path."""
    ours, variant = contenders(layer, rng)
    samplers = {name: local_sampler(f) for name, f in ours.items()}
    if candidate_path:
        candidate, _ = contenders(layer, rng, load_candidate(candidate_path), "cand")
        samplers.update({name: local_sampler(f) for name, f in candidate.items()})
    return samplers, variant


def calibrate(sampler, sample_seconds):
    """Calls per sample so that a sample lasts about `sample_seconds`."""
    sampler(2)  # warm up (first calls allocate, fill caches)
    per_call = sampler(3)
    return max(1, int(sample_seconds / max(per_call, 1e-7)))


def time_layer(samplers, runs, sample_seconds):
    """Median seconds per call of each contender over `runs` interleaved rounds."""
    calls = {name: calibrate(sampler, sample_seconds) for name, sampler in samplers.items()}
    names = list(samplers)
    times = {name: [] for name in names}
    for round_index in range(runs):
        shift = round_index % len(names)
        for name in names[shift:] + names[:shift]:
            times[name].append(samplers[name](calls[name]))
    return {name: float(np.median(values)) for name, values in times.items()}


def run_shift_suite(args) -> None:
    """The shift ops against TFLite int8 (XNNPACK, 1 thread) on SHIFT_LAYERS."""
    selected = [layer for layer in SHIFT_LAYERS if layer.name in args.layers.split(",")]
    rng = np.random.default_rng(0)
    load_before = os.getloadavg()
    results, variant = [], None
    for layer in selected:
        samplers, variant = our_samplers(shift_contenders, layer, rng, args.candidate)
        tflite = tflite_contenders(layer, rng)
        samplers["tflite int8"] = local_sampler(tflite["tflite int8"])
        seconds = time_layer(samplers, args.runs, args.sample_ms / 1000)
        results.append({"layer": layer.name, "shape": layer.describe(), "macs": layer.macs,
                        "seconds": seconds})
        times = ", ".join(f"{name} {value * 1e6:.2f} us" for name, value in seconds.items())
        print(f"{layer.name} done: {times}", file=sys.stderr)
    load_after = os.getloadavg()
    names = list(results[0]["seconds"])
    ours = [name for name in names if name != "tflite int8"]
    print(f"\nshift ops, kernel path: {variant}; {os.cpu_count()} CPUs; load average before "
          f"{load_before[0]:.2f}, after {load_after[0]:.2f}; median of {args.runs} interleaved "
          "rounds of thread CPU time; G int8-MAC/s (one MAC per tap and output), higher is "
          "better")
    header = ["layer", "shape", "MACs"] + names + [f"{name} / TFLite int8" for name in ours]
    print("\n| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for r in results:
        s = r["seconds"]
        row = [r["layer"], r["shape"], f"{r['macs'] / 1e6:.2f}M"]
        row += [f"{r['macs'] / s[name] / 1e9:.1f}" for name in names]
        row += [f"{s['tflite int8'] / s[name]:.2f}x" for name in ours]
        print("| " + " | ".join(row) + " |")
    if args.json:
        with open(args.json, "w") as stream:
            json.dump({"variant": variant, "load_before": load_before, "load_after": load_after,
                       "results": results}, stream, indent=2)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=25, help="interleaved rounds (>= 20)")
    parser.add_argument("--sample-ms", type=float, default=20.0,
                        help="duration of one sample (calls are repeated to fill it)")
    parser.add_argument("--lce-python", default="/work/bench-venv/bin/python",
                        help="python of a virtualenv with larq-compute-engine ('' to skip)")
    parser.add_argument("--layers", default=",".join(layer.name for layer in LAYERS))
    parser.add_argument("--json", help="also write the results to this file")
    parser.add_argument("--candidate", help="a candidate build of _tfqp_kernels (.so) to time "
                        "as 'cand int8' / 'cand packed' next to the installed one")
    parser.add_argument("--suite", choices=("binary", "shift"), default="binary",
                        help="binary: the binary ops against LCE and TFLite (LAYERS); shift: "
                             "the shift ops against TFLite int8 (SHIFT_LAYERS)")
    args = parser.parse_args(argv)
    if args.runs < 20:
        parser.error("--runs must be >= 20")
    if args.suite == "shift":
        if args.layers == parser.get_default("layers"):
            args.layers = ",".join(layer.name for layer in SHIFT_LAYERS)
        run_shift_suite(args)
        return
    selected = [layer for layer in LAYERS if layer.name in args.layers.split(",")]
    rng = np.random.default_rng(0)

    load_before = os.getloadavg()
    lce = None
    if args.lce_python:
        if os.path.exists(args.lce_python):
            lce = LceWorker(args.lce_python)
        else:
            print(f"no larq-compute-engine python at {args.lce_python}: LCE column skipped")
    variant = None
    results = []
    for layer in selected:
        samplers, variant = our_samplers(tfqp_contenders, layer, rng, args.candidate)
        samplers.update({name: local_sampler(f)
                         for name, f in tflite_contenders(layer, rng).items()})
        lce_ops = None
        if lce is not None:
            lce_ops = lce.load(layer)
            samplers["lce"] = lce.contender(layer)
        seconds = time_layer(samplers, args.runs, args.sample_ms / 1000)
        results.append({"layer": layer.name, "shape": layer.describe(), "macs": layer.macs,
                        "seconds": seconds, "lce_ops": lce_ops})
        times = ", ".join(f"{name} {value * 1e6:.1f} us" for name, value in seconds.items())
        print(f"{layer.name} done: {times}", file=sys.stderr)
    load_after = os.getloadavg()
    if lce is not None:
        lce.close()

    columns = ["tfqp int8", "tfqp packed", "cand int8", "cand packed", "lce", "tflite int8",
               "tflite float"]
    print(f"\nkernel path: {variant}; {os.cpu_count()} CPUs; load average before "
          f"{load_before[0]:.2f}, after {load_after[0]:.2f}; median of {args.runs} interleaved "
          "rounds of thread CPU time; G(binary-)MAC/s, higher is better")
    if lce is not None:
        print(f"larq-compute-engine {lce.version['ready']} (TensorFlow "
              f"{lce.version['tensorflow']}), use_indirect_bgemm=True; ops per layer: "
              + "; ".join(f"{r['layer']} {'+'.join(r['lce_ops'])}" for r in results))
    header = ["layer", "shape", "MACs"] + [c for c in columns if c in results[0]["seconds"]]
    header += ["int8 / LCE", "int8 / TFLite int8", "packed / LCE", "packed / TFLite int8"]
    print("\n| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for r in results:
        s = r["seconds"]
        rate = {name: r["macs"] / value / 1e9 for name, value in s.items()}
        row = [r["layer"], r["shape"], f"{r['macs'] / 1e6:.2f}M"]
        row += [f"{rate[c]:.1f}" for c in columns if c in s]
        for ours in ("tfqp int8", "tfqp packed"):
            row.append(f"{s['lce'] / s[ours]:.2f}x" if "lce" in s else "n/a")
            row.append(f"{s['tflite int8'] / s[ours]:.2f}x")
        print("| " + " | ".join(row) + " |")
    if args.candidate:
        print("\ncandidate / installed speed: " + "; ".join(
            f"{r['layer']} int8 {r['seconds']['tfqp int8'] / r['seconds']['cand int8']:.2f}x, "
            f"packed {r['seconds']['tfqp packed'] / r['seconds']['cand packed']:.2f}x, "
            f"int8 / TFLite int8 {r['seconds']['tflite int8'] / r['seconds']['cand int8']:.2f}x"
            for r in results))
    if args.json:
        with open(args.json, "w") as stream:
            json.dump({"variant": variant, "load_before": load_before, "load_after": load_after,
                       "results": results}, stream, indent=2)


if __name__ == "__main__":
    main()
