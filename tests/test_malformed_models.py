"""The malformed-model corpus: every mutant of the converter's models, fed to
``report``, ``verify`` and ``Interpreter`` in worker subprocesses, ends in a clean
error (``ModelError`` naming the check, or verify's ``VerificationError``) or a
correct result; no signal, no other exception, no hang.

The corpus (``malformed_models.py``) and its runner (``model_corpus.py``) also run
by hand, against any checkout's Python (``--python``), for the outcome counts:

    python tests/malformed_models.py /tmp/corpus
    python tests/model_corpus.py /tmp/corpus --workers 2
"""

import collections
import hashlib

import pytest

import malformed_models
import model_corpus

from tfq_plus.converters import tflite_schema as schema
from tfq_plus.converters.ops.registry import REGISTRY

# the corpus test's own floor: the issue asks for at least 300 mutants
MIN_MUTANTS = 300


@pytest.fixture(scope="module")
def bases():
    return malformed_models.converted_bases()


def _ops(flatbuffer: bytes):
    """(op name, input types, input count) of every op of a flatbuffer."""
    model = schema.read(flatbuffer)
    graph = model.subgraphs[0]
    return [(schema.op_name(model, op), [graph.tensors[t].type for t in op.inputs if t >= 0], len(op.inputs))
            for op in graph.operators]


def test_the_base_models_hold_every_op_family(bases):
    ops = [op for base in bases.values() for op in _ops(base.deploy)]
    # TFQP_UNPACK_CODES and TFQP_MAX_POOL_CODES live in deploy models of k-bit activation
    # grids, which no base model has: tests/test_kernels_kbit.py, the fuzz targets and
    # tests/test_converter_kbit_acts.py cover them
    assert {name for name, _, _ in ops} >= set(REGISTRY) - {"TFQP_UNPACK_CODES",
                                                              "TFQP_MAX_POOL_CODES"}
    for name in ("TFQP_CONV2D_INT8", "TFQP_FULLY_CONNECTED_INT8"):
        weights = {types[1] for op, types, _ in ops if op == name}
        assert weights == {schema.TensorType.INT8, schema.TensorType.INT16}, name
    # int32 residual inputs (the fourth input) of the binary convolutions
    assert any(name == "TFQP_BCONV2D" and count == 4 for name, _, count in ops)


def test_the_corpus_is_seeded(bases):
    base = bases["pool_bn"]
    first = malformed_models.mutants_of(base.deploy, "pool_bn", malformed_models.DEPLOY,
                                        malformed_models.DEPLOY_COUNTS)
    again = malformed_models.mutants_of(base.deploy, "pool_bn", malformed_models.DEPLOY,
                                        malformed_models.DEPLOY_COUNTS)
    other = malformed_models.mutants_of(base.deploy, "pool_bn", malformed_models.DEPLOY,
                                        malformed_models.DEPLOY_COUNTS, seed=malformed_models.SEED + 1)
    assert [m.data for m in first] == [m.data for m in again]
    assert [m.data for m in first] != [m.data for m in other]
    assert len({hashlib.sha256(m.data).digest() for m in first}) > 0.9 * len(first)


def test_every_mutant_ends_in_a_clean_error_or_a_correct_result(bases, tmp_path):
    manifest = malformed_models.write_corpus(tmp_path, bases)
    outcomes = model_corpus.run_corpus(manifest.parent, workers=2, log_path=tmp_path / "workers.log")
    summary = model_corpus.summary(outcomes)
    mutants = {o.mutant for o in outcomes if o.kind != "original"}
    assert len(mutants) >= MIN_MUTANTS, summary
    kinds = collections.Counter(o.kind for o in outcomes)
    assert set(kinds) >= set(malformed_models.BYTE_MUTATIONS) | set(malformed_models.SCHEMA_EDITS), kinds
    unclean = [o for o in outcomes if not model_corpus.clean(o.outcome)]
    assert not unclean, summary
    # the controls: every tool runs every unchanged base model, with its outputs
    controls = [o for o in outcomes if o.kind == "original"]
    assert len(controls) == 3 * 2 * len(malformed_models.BASES)
    assert all(o.outcome == "ok" for o in controls), summary
    assert all(o.message == "ran, same outputs as the base model" for o in controls if o.tool == "interpreter"), \
        summary
    # most mutants are refused by validation, some still run (a weight changed)
    rejected = sum(o.outcome.startswith("rejected") for o in outcomes)
    assert rejected > len(outcomes) // 2 and any(o.outcome == "ok" for o in outcomes if o.kind != "original")
