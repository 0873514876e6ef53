"""``ModelError``: a .tflite model that tfq-plus will not run, and why.

Raised by model validation (``model_check``) before ``report``, ``verify`` or the
``Interpreter`` touch a model, and by the runtimes behind them when they refuse a
model (TFLite Micro, the TFQP kernels). ``check`` names the check that failed,
one of the names below.
"""

FORMAT = "file format"  # not a TFLite flatbuffer at all (an .h5 file, ...)
STRUCTURE = "flatbuffer structure"  # offsets, vtables, vectors outside the file
MODEL = "model"  # version, subgraphs, buffers, operator codes, signatures
TENSORS = "tensors"  # types, shapes, buffers and their sizes
QUANTIZATION = "quantization"  # scales, zero points, quantized dimension
GRAPH = "graph"  # inputs, outputs, tensor indices, the order ops produce tensors
OPERATORS = "operators"  # op codes, arity, builtin options, supported ops
TFQP_OPTIONS = "TFQP options"  # custom options against the op registry
TFQP_KERNEL = "TFQP kernel"  # the C op table's parse / prepare / init_table
TFLITE_MICRO = "TFLite Micro"  # TFLite Micro refuses to load or run the model

CHECKS = (FORMAT, STRUCTURE, MODEL, TENSORS, QUANTIZATION, GRAPH, OPERATORS, TFQP_OPTIONS, TFQP_KERNEL,
          TFLITE_MICRO)


class ModelError(ValueError):
    """A malformed model, or one tfq-plus cannot run: the message names the part
    (tensor or op, by index and name) and what is wrong; ``check`` is the check
    that failed (see ``CHECKS``).

    Args:
        message: str, the one-sentence description.
        check: str, one of ``CHECKS`` (``"tensors"``, ``"TFLite Micro"``, ...).
    """

    def __init__(self, message: str, check: str):
        super().__init__(message)
        self.check = check
