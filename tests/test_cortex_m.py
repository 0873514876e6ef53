"""The TFQP kernels on the Cortex-M instruction set, under qemu-system-arm.

Bare-metal images (micro/cortex_m) are cross-built with arm-none-eabi-gcc for a
Cortex-M4F (mps2-an386) and a Cortex-M55 (mps3-an547) and run every kernel on test
vectors whose expected output bytes come from the HOST build of the same C sources
(tfq_plus.converters._tfqp_kernels, itself checked against numpy in
test_kernels_binary.py): identical bytes or the image exits non-zero. The runner is
shown to fail on a corrupted expected vector, and the instruction counter of
benchmarks/mcu_cycles.py is checked against loops of known length and against a
second, independent counting method.

Needs gcc-arm-none-eabi, libnewlib-arm-none-eabi and qemu-system-arm (.ci/run installs
them through run.sh); skipped with the missing tools named when they are absent.
"""

import copy
import subprocess
import sys
from pathlib import Path

import tfq_plus  # noqa: F401  (selects Keras 2 before TensorFlow)

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "micro" / "cortex_m"))
sys.path.insert(0, str(ROOT / "benchmarks"))

import kernel_vectors  # noqa: E402
import qemu_runner  # noqa: E402

_MISSING = qemu_runner.missing_tools()
pytestmark = pytest.mark.skipif(
    bool(_MISSING),
    reason=f"Cortex-M toolchain missing: {', '.join(_MISSING)} (apt-get install "
    "gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm)",
)


def _qemu_has_machine(machine: str) -> bool:
    listing = subprocess.run(["qemu-system-arm", "-machine", "help"], capture_output=True,
                             text=True, check=False).stdout
    return any(line.split()[:1] == [machine] for line in listing.splitlines())


def _trained_binary_mnist():
    """A small BNN (float stem, binary convs with pad value 1 and 0, binary max-pool,
    binary dense layers) trained for one short epoch on real data, and its deploy model."""
    import larq as lq
    import tensorflow as tf

    from tfq_plus import converters, datasets

    data = datasets.load("auto")
    binary = dict(input_quantizer="ste_sign", kernel_quantizer="ste_sign",
                  kernel_constraint="weight_clip", use_bias=False)
    tf.keras.utils.set_random_seed(0)
    inputs = tf.keras.Input(data.input_shape)
    x = tf.keras.layers.Conv2D(16, 3, strides=2, padding="same", use_bias=False)(inputs)
    x = tf.keras.layers.BatchNormalization()(x)
    x = lq.layers.QuantConv2D(32, 3, padding="same", pad_values=1.0, **binary)(x)
    x = tf.keras.layers.BatchNormalization()(x)
    x = tf.keras.layers.MaxPool2D(2)(x)
    x = lq.layers.QuantConv2D(40, 3, padding="same", **binary)(x)
    x = tf.keras.layers.BatchNormalization()(x)
    x = tf.keras.layers.Flatten()(x)
    x = lq.layers.QuantDense(64, **binary)(x)
    x = tf.keras.layers.BatchNormalization()(x)
    x = lq.layers.QuantDense(data.num_classes, **binary)(x)
    x = tf.keras.layers.BatchNormalization()(x)
    model = tf.keras.Model(inputs, tf.keras.layers.Activation("softmax")(x))
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(data.x_train[:3000], data.y_train[:3000], batch_size=100, epochs=1, verbose=0)
    deploy = converters.convert_keras_model(model, representative_dataset=data.x_train[:32])
    return data, deploy


def _trained_bireal():
    """A Bi-Real-style model (shortcuts binarized again: int32 streams, TFQP_BINARIZE)
    trained for one short epoch, and its deploy model."""
    import tensorflow as tf

    from bnn_models import bireal
    from tfq_plus import converters, datasets

    data = datasets.load("auto")
    tf.keras.utils.set_random_seed(0)
    model = bireal(data.input_shape, data.num_classes, width=8)  # small: the M55 image's 4 MB of constants
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(data.x_train[:2000], data.y_train[:2000], batch_size=100, epochs=1, verbose=0)
    return data, converters.convert_keras_model(model, representative_dataset=data.x_train[:32])


def _trained_shift():
    """A small shift network (4-bit power-of-two conv, 3-bit power-of-two depthwise,
    TTQ dense) trained for one short epoch on real data, and its deploy model: one
    TFQP shift op per layer (small tensors: the vectors share the M55 image's 4 MB of constants)."""
    import larq as lq
    import tensorflow as tf

    from tfq_plus import converters, datasets
    from tfq_plus import quantizers as tq

    data = datasets.load("auto")
    tf.keras.utils.set_random_seed(0)
    inputs = tf.keras.Input(data.input_shape)
    x = lq.layers.QuantConv2D(8, 3, strides=2, padding="same", use_bias=False,
                              kernel_quantizer=tq.PowerOfTwo(bits=4))(inputs)
    x = tf.keras.layers.BatchNormalization()(x)
    x = tf.keras.layers.Activation("relu")(x)
    x = lq.layers.QuantDepthwiseConv2D(3, strides=2, padding="same", use_bias=False,
                                       depthwise_quantizer=tq.PowerOfTwo(bits=3))(x)
    x = tf.keras.layers.BatchNormalization()(x)
    x = tf.keras.layers.Activation("relu")(x)
    x = tf.keras.layers.Flatten()(x)
    x = lq.layers.QuantDense(data.num_classes, kernel_quantizer=tq.TTQ(threshold=0.05))(x)
    x = tf.keras.layers.BatchNormalization()(x)
    model = tf.keras.Model(inputs, tf.keras.layers.Activation("softmax")(x))
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(data.x_train[:2000], data.y_train[:2000], batch_size=100, epochs=1, verbose=0)
    return data, converters.convert_keras_model(model, representative_dataset=data.x_train[:32])


@pytest.fixture(scope="module")
def cases():
    data, deploy = _trained_binary_mnist()
    inputs = kernel_vectors.quantize_input(deploy, data.x_test[:2])
    _, bireal = _trained_bireal()
    _, shift = _trained_shift()
    return (kernel_vectors.random_cases(seed=0)
            + kernel_vectors.model_cases(deploy, inputs, prefix=data.name)
            + kernel_vectors.model_cases(bireal, kernel_vectors.quantize_input(bireal, data.x_test[:1]),
                                         prefix="bireal")
            + kernel_vectors.model_cases(shift, kernel_vectors.quantize_input(shift, data.x_test[:1]),
                                         prefix="shift"))


@pytest.fixture(scope="module")
def vectors(cases, tmp_path_factory):
    path = tmp_path_factory.mktemp("vectors") / "vectors.c"
    kernel_vectors.write_c_source(cases, path)
    return path


@pytest.fixture(scope="module")
def build_root(tmp_path_factory):
    """One build directory per core, shared by the images (kernel objects built once)."""
    return tmp_path_factory.mktemp("build")


def _build_and_run(core, vectors, build_root, image="kernel_tests"):
    build_dir = build_root / core
    qemu_runner.make_image("kernel-tests", core, build_dir, VECTORS=vectors, IMAGE=image)
    return qemu_runner.run_image(build_dir / f"{image}.elf", core)


def _summary(count):
    return f"kernel tests: {count} passed, 0 failed, {count} cases"


def test_vectors_cover_every_op_format_and_geometry(cases):
    """The suite is what the on-target runs claim to check, including every TFQP op of
    a trained, converted model on two real test images."""
    model = [c for c in cases if c.name.startswith(("mnist op", "digits op"))]
    assert {c.op for c in model} == {"TFQP_CONV2D_INT8", "TFQP_BCONV2D", "TFQP_BMAXPOOL2D",
                                     "TFQP_BFULLY_CONNECTED"}
    assert len(model) == 2 * 6  # six TFQP ops, two images
    assert {(c.input.dtype.name, c.output.dtype.name) for c in model} >= {
        ("int8", "int32"), ("int32", "int32"), ("int32", "int8")}
    assert any(c.filter.dtype == np.int16 for c in model if c.op == "TFQP_CONV2D_INT8")  # float stem
    bireal = [c for c in cases if c.name.startswith("bireal op")]
    assert {c.op for c in bireal} >= {"TFQP_CONV2D_INT8", "TFQP_BINARIZE", "TFQP_BCONV2D"}
    assert any(len(c.inputs) == 4 for c in bireal)  # a residual input
    # every shift op of the trained shift network (TTQ: two accumulator classes)
    shift = [c for c in cases if c.name.startswith("shift op")]
    assert [c.op for c in shift] == ["TFQP_SHIFT_CONV2D", "TFQP_SHIFT_DEPTHWISE_CONV2D",
                                     "TFQP_SHIFT_FULLY_CONNECTED"]
    assert shift[-1].inputs[2].shape[0] == 2
    ops = {case.op for case in cases}
    assert ops == {op["name"] for op in kernel_vectors.kernels.ops()} | {"pack", "unpack"}
    conv = [c for c in cases if c.op == "TFQP_BCONV2D" and c.expected_error is None]
    formats = {(c.input.dtype.name, c.output.dtype.name) for c in conv}
    assert formats == {(i, o) for i in ("int8", "int32") for o in ("int8", "int32")}
    options = [kernel_vectors.kernels.parse_options("TFQP_BCONV2D", c.options) for c in conv]
    assert {o["filter_height"] for o in options} >= {1, 3, 5}
    assert {o["stride_height"] for o in options} == {1, 2, 3}
    assert {o["dilation_width_factor"] for o in options} == {1, 2, 3}
    assert {(o["padding"], o["pad_value"]) for o in options} >= {(0, 0), (0, 1), (1, 0)}
    assert max(c.input.shape[0] for c in conv) > 1  # batch
    fc = [c for c in cases if c.op == "TFQP_BFULLY_CONNECTED" and c.expected_error is None]
    assert {c.filter.shape[1] * 32 >= 1024 for c in fc} == {True, False}
    assert sum(c.expected_error is not None for c in cases) >= 5
    # the variants added with the op table: or_mask max-pools, int32 value outputs of
    # the binary ops, the int8-input ops with both outputs, binarize of int8 and int32
    valid = [c for c in cases if c.expected_error is None]
    assert any(c.op == "TFQP_BMAXPOOL2D" and len(c.inputs) == 2 for c in valid)
    for op in ("TFQP_BCONV2D", "TFQP_BFULLY_CONNECTED", "TFQP_CONV2D_INT8",
               "TFQP_FULLY_CONNECTED_INT8"):
        outputs = {kernel_vectors.kernels.parse_options(op, c.options).get("int32_output", 0)
                   for c in valid if c.op == op}
        assert outputs == {0, 1}, op
    assert {c.input.dtype.name for c in valid if c.op == "TFQP_BINARIZE"} == {"int8", "int32"}
    assert {c.op for c in cases if c.expected_error} >= {
        "TFQP_BMAXPOOL2D", "TFQP_CONV2D_INT8", "TFQP_BINARIZE"}
    # int8 outputs are informative: not everything clamped
    int8_outputs = np.concatenate([c.output.ravel() for c in conv if c.output.dtype == np.int8])
    assert len(np.unique(int8_outputs)) > 200


def test_vectors_cover_the_int8_output_requantization_branches(cases):
    """The binary ops' int8 outputs go through the Cortex-M records (xnor_arm.h) or the C
    requantization; the vectors reach each branch of both, with clamps at both ends."""
    int8_out = [c for c in cases if c.op in ("TFQP_BCONV2D", "TFQP_BFULLY_CONNECTED")
                and c.expected_error is None and c.output.dtype == np.int8]
    rows = np.concatenate([c.inputs[2] for c in int8_out])
    multiplier, shift = rows[:, 2].astype(np.int64), rows[:, 3]
    assert (multiplier < 0).any() and (multiplier == kernel_vectors.INT32_MIN).any()
    assert (multiplier == 0).any() and (np.abs(multiplier) < 2**30).any()
    assert {0, 1, 2, -1, -2, -31} <= set(shift.tolist())
    options = [kernel_vectors.kernels.parse_options(c.op, c.options) for c in int8_out]
    # accumulator bounds |W| max(|P|, |N|) K + |bias| near 2^29 and near 2^31
    bounds = np.concatenate([
        np.abs(c.inputs[2][:, 0].astype(np.int64)) * max(abs(o["input_pos"]), abs(o["input_neg"]))
        * o["channels_in"] * o.get("filter_height", 1) * o.get("filter_width", 1)
        + np.abs(c.inputs[2][:, 1].astype(np.int64)) for c, o in zip(int8_out, options)])
    assert (bounds > 2**28).any() and (bounds > 2**30).any()
    assert {(o["act_min"] > -128 and o["act_max"] < 127) for o in options} == {True, False}
    windows = {c.filter.shape[1] * c.filter.shape[2] * c.filter.shape[3] if c.filter.ndim == 4
               else c.filter.shape[1] for c in int8_out}
    assert 9 in windows and any(w > 38 for w in windows)  # the row kernel, the C path
    assert any(c.output.shape[-1] % 2 for c in int8_out)
    assert any(c.input.shape[0] == 2 for c in int8_out)


DSP_PATH = "kernel variant: cortex-m dsp (thumb-2 assembly)"


def test_kernels_on_cortex_m4_match_host(cases, vectors, build_root):
    result = _build_and_run("m4", vectors, build_root)
    assert result.returncode == 0, result.output
    assert _summary(len(cases)) in result.output
    assert "FAIL" not in result.output
    assert DSP_PATH in result.output  # the optimized path is the one tested


@pytest.mark.skipif(not _qemu_has_machine("mps3-an547"), reason="qemu has no mps3-an547 (M55)")
def test_kernels_on_cortex_m55_match_host(cases, vectors, build_root):
    result = _build_and_run("m55", vectors, build_root)
    assert result.returncode == 0, result.output
    assert _summary(len(cases)) in result.output
    assert DSP_PATH in result.output


def test_c_test_suite_on_cortex_m4_dsp_path_equals_portable_path(build_root):
    """micro/tests (the kernel core's own C tests: validation and kernels against their
    C reference) on the Cortex-M4, once with the DSP assembly kernels and once with
    -DTFQP_PORTABLE: both pass and digest identical output bytes."""
    digests = []
    for build_dir, flags, variant in [
        (build_root / "m4", "", DSP_PATH),
        (build_root / "m4-portable", "-DTFQP_PORTABLE", "kernel variant: portable c99"),
    ]:
        qemu_runner.make_image("c-tests", "m4", build_dir, EXTRA_CFLAGS=flags)
        result = qemu_runner.run_image(build_dir / "c_tests.elf", "m4")
        assert result.returncode == 0, result.output
        assert "ALL TESTS PASSED" in result.output and variant in result.output
        digests += [line for line in result.output.splitlines() if line.startswith("digest: ")]
    assert len(digests) == 2 and digests[0] == digests[1]


def test_runner_fails_on_a_corrupted_expected_vector(cases, build_root, tmp_path):
    """The runner itself: one expected byte flipped, one expected error message
    changed -> exactly those cases fail and the image exits with status 1."""
    broken = copy.deepcopy(cases[:20] + [c for c in cases if c.expected_error][:1])
    flipped = broken[3]
    flipped.output.view(np.uint8).reshape(-1)[5] ^= 0x10
    reworded = broken[-1]
    reworded.expected_error = reworded.expected_error.replace("]", " (reworded)]")
    path = tmp_path / "broken.c"
    kernel_vectors.write_c_source(broken, path)
    result = _build_and_run("m4", path, build_root, "broken")
    assert result.returncode == 1, result.output
    assert f"FAIL {flipped.name}: 1 of {flipped.output.nbytes} output bytes differ, first at byte 5" \
        in result.output
    assert f"FAIL {reworded.name}: rejected with" in result.output
    assert f"kernel tests: {len(broken) - 2} passed, 2 failed, {len(broken)} cases" in result.output


def test_fault_exits_nonzero(build_root, tmp_path):
    """A crash in the image is reported and never looks like a pass (exit 128 + exception)."""
    source = tmp_path / "crash.c"
    source.write_text(
        '#include "kernel_test_case.h"\n'
        "const kernel_test_case kernel_test_cases[1] = {{\"crash\", \"pack\", 0, 0, 1,\n"
        "  {{TFQP_TYPE_INT8, 1, {4, 0, 0, 0, 0, 0}, 0, (const void *)0x3FFFFFF0, 4}},\n"
        "  {TFQP_TYPE_INT32, 1, {1, 0, 0, 0, 0, 0}, 0, (const void *)0x3FFFFFF0, 4},\n"
        "  {0, 0, 0}, 0}};\n"
        "const uint32_t kernel_test_case_count = 1;\n")
    result = _build_and_run("m4", source, build_root, "crash")
    assert result.returncode == 131, result.output  # HardFault (escalated BusFault)
    assert "FAULT: exception 3" in result.output


# ----------------------------------------------------------------------------- counter


@pytest.fixture(scope="module")
def small_bench(build_root):
    """A benchmark image with small layers and the counting plugin: the strided int8
    conv checks the numpy reference's strides and SAME padding against the C baseline,
    the TFQP_CONV2D_INT8 row the op's builder (its bytes: the host build's)."""
    import mcu_cycles

    build = build_root / "m4"
    layers = [
        mcu_cycles._layer("small bconv2d", "bconv2d", height=4, width=5, cin=40, cout=6, k=3,
                          input="packed", output="int8"),
        mcu_cycles._layer("small int8 fc", "int8_fully_connected", cin=16, cout=8),
        mcu_cycles._layer("small int8 conv s2", "int8_conv2d", height=6, width=5, cin=3,
                          cout=4, k=3, stride=2),
        mcu_cycles._layer("small TFQP_CONV2D_INT8", "conv2d_int8", height=6, width=5, cin=1,
                          cout=33, k=3, stride=2, wide=True),
    ]
    measurements = mcu_cycles.measure(layers, build, runs=2)
    return build, measurements


def test_counter_counts_a_known_loop_exactly(small_bench):
    import mcu_cycles

    build, _ = small_bench
    for run in range(2):
        counts = [int(line.split()[1]) for line in
                  (build / f"marks{run}.txt").read_text().splitlines() if line.startswith("mark")]
        deltas = [b - a for a, b in zip(counts[:4], counts[1:4])]
        assert deltas == [2, 3, 2 * mcu_cycles.COUNT_LOOP_N + 2]
    with pytest.raises(RuntimeError, match="failed its check"):
        mcu_cycles.check_count_loop([0, 2, 5, 2 * mcu_cycles.COUNT_LOOP_N + 8])


def test_counter_agrees_with_single_step_trace(small_bench, tmp_path):
    """Plugin counts == counts of a -singlestep -d exec trace at every marker."""
    build, measurements = small_bench
    plugin_counts = [int(line.split()[1]) for line in
                     (build / "marks0.txt").read_text().splitlines() if line.startswith("mark")]
    result, traced = qemu_runner.single_step_counts(build / "bench.elf", "m4",
                                                    tmp_path / "trace.txt")
    assert result.returncode == 0, result.output
    assert traced == plugin_counts
    assert all(m.instructions > 100 for m in measurements)


def test_reachable_code_bytes_follows_the_calls(small_bench):
    """The CMSIS-NN rows' code bytes: functions a call reaches, callees included."""
    build, _ = small_bench
    elf = build / "bench.elf"
    listing = subprocess.run(["arm-none-eabi-nm", "-S", str(elf)], capture_output=True,
                             text=True, check=True).stdout
    sizes = {p[3]: int(p[1], 16) for p in map(str.split, listing.splitlines()) if len(p) == 4}
    fc = qemu_runner.reachable_code_bytes(elf, "bench_int8_fully_connected")
    graph = qemu_runner.call_graph(elf)
    assert "bench_int8_fully_connected" in graph["main"]
    # main (run_layer is inlined) reaches the FC baseline: its reach holds it and its callees
    assert qemu_runner.reachable_code_bytes(elf, "main") >= (
        fc + sizes["bench_int8_fully_connected"])
    assert qemu_runner.reachable_code_bytes(elf, "main",
                                            exclude=("bench_int8_fully_connected",)) < (
        qemu_runner.reachable_code_bytes(elf, "main"))


def test_cmsis_nn_rows_need_a_cmsis_nn_tree(tmp_path):
    import mcu_cycles

    layer = mcu_cycles._layer("tiny", "cmsis_nn_fully_connected", cin=8, cout=4)
    with pytest.raises(ValueError, match="CMSIS-NN source tree"):
        mcu_cycles.measure([layer], tmp_path / "m4")


@pytest.mark.skipif("CMSIS_NN_PATH" not in __import__("os").environ,
                    reason="CMSIS_NN_PATH (a CMSIS-NN source tree, README) not set")
def test_cmsis_nn_baselines_equal_the_int8_reference(build_root):
    """CMSIS-NN's conv / depthwise / FC, built from its sources, give the numpy
    reference's bytes (the image checks every output) with deterministic counts."""
    import os

    import mcu_cycles

    layers = [
        mcu_cycles._layer("c conv", "cmsis_nn_conv2d", height=5, width=6, cin=8, cout=6, k=3),
        mcu_cycles._layer("c dw", "cmsis_nn_depthwise", height=5, width=4, channels=12, k=3),
        mcu_cycles._layer("c fc", "cmsis_nn_fully_connected", cin=40, cout=12),
    ]
    measurements = mcu_cycles.measure(layers, build_root / "m4_cmsis_nn", runs=2,
                                      cmsis_nn=Path(os.environ["CMSIS_NN_PATH"]))
    assert all(m.instructions > 100 and m.text_bytes > 500 for m in measurements)


def test_int4_packing_is_tflites():
    """The s4 rows' filters: two values per byte, the even one in the low nibble, an
    odd count padded with a zero high nibble (TFLite's INT4 tensor bytes)."""
    import mcu_cycles

    packed = mcu_cycles.pack_int4(np.array([1, -1, -8, 7, 0], np.int8))
    assert packed.view(np.uint8).tolist() == [0xF1, 0x78, 0x00]


@pytest.mark.skipif("CMSIS_NN_PATH" not in __import__("os").environ,
                    reason="CMSIS_NN_PATH (a CMSIS-NN source tree, README) not set")
def test_cmsis_nn_s4_kernels_equal_its_s8_kernels_on_the_same_weights(build_root):
    """arm_convolve_wrapper_s4 / arm_fully_connected_s4 on packed int4 weights give the
    bytes arm_convolve_wrapper_s8 / arm_fully_connected_s8 give on the same weights
    unpacked (each image checks its outputs against the numpy reference; the same seed
    draws the same data). Odd rows (5 x 3 x 3 and 45 taps) end inside a byte."""
    import os

    import mcu_cycles

    shapes = [dict(height=5, width=6, cin=5, cout=6, k=3), dict(cin=45, cout=7)]

    def run(conv, fc, name):
        layers = [mcu_cycles._layer("conv", conv, **shapes[0], weight_bits=4),
                  mcu_cycles._layer("fc", fc, **shapes[1], weight_bits=4)]
        return mcu_cycles.measure(layers, build_root / name, runs=1, seed=3,
                                  cmsis_nn=Path(os.environ["CMSIS_NN_PATH"]))

    s8 = run("cmsis_nn_conv2d", "cmsis_nn_fully_connected", "m4_cmsis_nn_s8")
    s4 = run("cmsis_nn_conv2d_s4", "cmsis_nn_fully_connected_s4", "m4_cmsis_nn_s4")
    for a, b in zip(s8, s4):
        weights = a.case.inputs[1]
        assert weights.min() >= -8 and weights.max() <= 7
        assert np.array_equal(b.case.inputs[1], mcu_cycles.pack_int4(weights))
        assert np.array_equal(a.case.inputs[0], b.case.inputs[0])
        assert np.array_equal(a.case.output, b.case.output)
        assert b.instructions > 100 and b.text_bytes > 500


# ----------------------------------------------------------------------------- work skipping


@pytest.mark.parametrize("path", ["portable", "dsp"])
def test_shift_words_of_zero_codes_cost_no_instructions(build_root, monkeypatch, path):
    """Work skipping, counted (not timed): one 4-bit TFQP_SHIFT_CONV2D layer (8x8x32 -> 16,
    3x3) with none, about 75 % and all of its code words zero, on each Cortex-M4 path,
    every output checked against the host build.

    portable (-DTFQP_PORTABLE): the instructions above the all-zero layer's (gathers,
    outputs, the live-word scan) grow with the live words only, so the 75 %-zero layer
    costs its live fraction of the dense layer's work.
    dsp (shift_arm.c, what a Cortex-M4 runs): activations are gathered into pairs for
    every tap once per block of positions (shared by all channels, whichever words they
    skip) and each run of live words costs a kernel call (rows with few dead words are
    read whole instead, where that costs less), so dead words are cheaper but not free: the pruned
    layer's work above the all-zero layer's stays under 3/4 of the dense layer's, and
    the all-zero layer costs under half the dense one (measured: 402,753 dense, 320,929
    pruned, 127,297 all zero)."""
    import mcu_cycles

    live = {}

    def build(rng, layer):
        case = kernel_vectors.shift_case(rng, layer.name, "conv", height=8, width=8, cin=32,
                                         cout=16, kh=3, kw=3, bits=4,
                                         dead_words=layer.arg("dead"))
        live[layer.name] = float(np.mean(case.inputs[1] != 0))  # code 0 is the zero code
        return mcu_cycles.BenchCase(mcu_cycles.BENCH_OP, case.inputs, case.output,
                                    8 * 8 * 16 * 3 * 3 * 32, "MAC", case.options, case.op,
                                    case.input_zero_point, case.output_zero_point)

    monkeypatch.setitem(mcu_cycles.KERNELS, "shift words", mcu_cycles.Kernel(
        build, ("kernels/shift_conv2d.o",) + mcu_cycles.SHIFT_OBJECTS))
    layers = [mcu_cycles._layer(f"shift dead {dead}", "shift words", dead=dead)
              for dead in (0.0, 0.75, 1.0)]
    dense, pruned, empty = (m.instructions for m in mcu_cycles.measure(
        layers, build_root / f"m4-shift-{path}", runs=1,
        extra_cflags="-DTFQP_PORTABLE" if path == "portable" else ""))
    fraction = live["shift dead 0.75"]
    assert live["shift dead 0.0"] > 0.99 and live["shift dead 1.0"] == 0.0
    assert 0.2 < fraction < 0.3
    assert empty < pruned < dense
    if path == "portable":
        assert empty < 0.1 * dense
        assert abs((pruned - empty) / (dense - empty) - fraction) < 0.03, (dense, pruned, empty)
    else:
        assert empty < 0.5 * dense
        assert pruned - empty < 0.75 * (dense - empty), (dense, pruned, empty)


def test_pruned_shift_fully_connected_never_costs_more_than_dense(build_root):
    """The batch-1 shift FC on the DSP path, default build: unstructured pruning leaves
    few dead words in many runs (0.75^8 ~ 10 % of the words at 75 % zero codes), so
    init_table reads those rows whole instead of calling the kernel per run of live words,
    and a pruned layer never costs more than its dense form (it cost 1.22x before:
    measured 67,966 dense, 82,891 pruned, 512 -> 64); outputs checked against numpy by
    the benchmark image."""
    import mcu_cycles

    layers = [mcu_cycles._layer(f"shift fc pruned {pruned}", "shift_fully_connected",
                                pruned=pruned, cin=512, cout=64, weights="po2")
              for pruned in (0, 60, 75, 90)]
    dense, *pruned = (m.instructions for m in mcu_cycles.measure(
        layers, build_root / "m4-shift-fc-dense", runs=1))
    assert all(count <= dense for count in pruned), (dense, pruned)


def test_pruned_shift_fully_connected_runs_from_flash_lists(build_root):
    """The batch-1 shift FC with the converter's live-code lists (input 4, constant: flash)
    on the DSP path, counted: a 4-bit power-of-two 512 -> 64 layer with 75 % of its codes
    zero (unstructured) runs its channels from the lists (3.4 instructions a nonzero code,
    nothing for a zero one) at well under its dense form's count; the dense layer's
    channels keep the dense kernel (the lists would cost more) and lose nothing. No RAM
    is reserved: the table is the same with and without lists. Outputs are checked
    against the host build by the benchmark image. (Measured: 67,966 dense, 82,891
    pruned before; now 67,843 dense, 67,843 pruned, 36,494 pruned with lists.)"""
    import mcu_cycles

    layers = [mcu_cycles._layer(f"shift fc pruned {pruned} lists {lists}",
                                "shift_fully_connected", pruned=pruned, code_lists=lists,
                                cin=512, cout=64, weights="po2")
              for pruned in (0, 75) for lists in (False, True)]
    dense, dense_lists, pruned, pruned_lists = (m.instructions for m in mcu_cycles.measure(
        layers, build_root / "m4-shift-fc-lists", runs=1))
    assert pruned_lists < 0.6 * dense, (dense, pruned_lists)
    # the dense layer given lists runs its dense kernel: at most the few instructions of
    # the dispatch's look at input 4 more (measured: 1)
    assert dense_lists <= dense + 4 and pruned <= dense, (dense, dense_lists, pruned)
