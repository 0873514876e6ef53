"""Test session set-up: run the tests the way users run tfq_plus.

Runs at import time, before pytest collects any test module, because three things
must happen before anything else touches TensorFlow:

1. ``import tfq_plus`` first: it selects Keras 2 (``tf_keras``) as ``tf.keras``.
2. ``TFQ_PLUS_DATA_DIR`` defaults to ``../shared/data`` beside the checkout (as
   ``.ci/run`` and ``run.sh`` set it), so the tests read MNIST where it exists.
3. The physical CPU is split into two logical devices, so that
   ``tf.distribute.MirroredStrategy`` tests can run in the same process. TensorFlow
   fixes its devices when the runtime first initialises (the first op), after which
   the configuration cannot change; with two logical CPUs nothing else changes for
   ordinary tests (ops are placed on ``/cpu:0``).
"""

import os
import pathlib

_REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent
_SHARED_DATA = _REPO_ROOT.parent / "shared" / "data"
if not os.environ.get("TFQ_PLUS_DATA_DIR") and _SHARED_DATA.is_dir():
    os.environ["TFQ_PLUS_DATA_DIR"] = str(_SHARED_DATA)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tfq_plus  # noqa: E402  (selects Keras 2 before TensorFlow is imported)

import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

LOGICAL_CPUS = 2


def _split_cpu(count: int) -> None:
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(count)]
    )


_split_cpu(LOGICAL_CPUS)


@pytest.fixture(scope="session")
def dataset():
    """Real data for training tests: MNIST where ``TFQ_PLUS_DATA_DIR`` holds it,
    else scikit-learn's bundled 8x8 digits (``tfq_plus.datasets.load("auto")``)."""
    return tfq_plus.datasets.load("auto")


@pytest.fixture(scope="session")
def logical_cpus():
    """Names of the logical CPU devices configured above, for MirroredStrategy."""
    devices = [device.name for device in tf.config.list_logical_devices("CPU")]
    if len(devices) < LOGICAL_CPUS:
        pytest.fail(
            f"expected {LOGICAL_CPUS} logical CPUs from conftest, found {devices}: "
            "TensorFlow was initialised before conftest split the CPU"
        )
    return devices[:LOGICAL_CPUS]


@pytest.fixture(scope="session")
def mirrored_strategy(logical_cpus):
    """One MirroredStrategy over the two logical CPUs for the whole session.

    Tests share it because two MirroredStrategy objects in one process number their
    collective all-reduce instances independently, and TF 2.21's collective executor
    then mixes them up ("Shape mismatch in the collective instance ...").
    """
    strategy = tf.distribute.MirroredStrategy(logical_cpus)
    assert strategy.num_replicas_in_sync == LOGICAL_CPUS
    return strategy


# Every scope starts from the same random state (Python, numpy, TensorFlow): Keras
# initialises kernels from the global generators, so a model built in a test or a
# fixture is the same on every run and in every test order. (Autouse fixtures run
# before the other fixtures of their scope.)
@pytest.fixture(scope="module", autouse=True)
def _seed_module():
    tf.keras.utils.set_random_seed(0)


@pytest.fixture(autouse=True)
def _seed_test():
    tf.keras.utils.set_random_seed(0)
