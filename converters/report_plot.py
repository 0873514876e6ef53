"""A picture of a report: where a model's bytes and work go, layer by layer.

Two panels over the ops that have weights: (1) weight bytes as float32, as int8 and
as deployed (the op's constant data: packed weights, code tables, transforms), on a
log scale, so a 1-bit layer's 32x shows; (2) MACs, coloured by kind (binary, shift,
k-bit, int8). The title carries the totals: flash, the measured tensor arena and the
activation peak. matplotlib renders off-screen (Agg), so it works without a display.
"""

from typing import Optional

import numpy as np

from tfq_plus.converters.ops.registry import MAC_KINDS

_KIND_COLOURS = {"binary": "#1b9e77", "shift": "#7570b3", "k-bit": "#d95f02", "int8": "#7f7f7f"}
_BYTE_SERIES = (("float32", "#c7c7c7"), ("int8", "#7f7f7f"), ("deployed", "#1f77b4"))


def _layer_label(row) -> str:
    name = row.op[5:] if row.op.startswith("TFQP_") else row.op
    return f"{row.index}: {name.lower()}"


def plot_report(result, path: str, *, title: Optional[str] = None) -> str:
    """Draw ``result`` (a ``ModelReport``) into the image file ``path`` (.png, .svg,
    .pdf: the suffix chooses) and return ``path``.

    Raises:
        ImportError: matplotlib is not installed (it is a dependency of tfq-plus).
        ValueError: the model has no op with weights to draw.
    """
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    rows = [row for row in result.ops if row.weight_count > 0]
    if not rows:
        raise ValueError("plot_report: the model has no convolution or fully-connected op to draw")
    labels = [_layer_label(row) for row in rows]
    positions = np.arange(len(rows))
    figure, (bytes_axis, macs_axis) = plt.subplots(
        2, 1, figsize=(max(7.0, 0.9 * len(rows) + 3.0), 7.5), sharex=True)

    width = 0.27
    series = {
        "float32": [4 * row.weight_count for row in rows],
        "int8": [row.weight_count for row in rows],
        "deployed": [row.weight_bytes for row in rows],
    }
    for offset, (name, colour) in zip((-width, 0.0, width), _BYTE_SERIES):
        bytes_axis.bar(positions + offset, series[name], width, label=name, color=colour)
    bytes_axis.set_yscale("log")
    bytes_axis.set_ylabel("weight bytes")
    bytes_axis.legend(loc="upper left", fontsize=8, ncol=3)
    bytes_axis.grid(axis="y", alpha=0.3)

    bottom = np.zeros(len(rows))
    for kind in MAC_KINDS:
        counts = np.array([row.macs.get(kind, 0) for row in rows], dtype=np.float64)
        if counts.any():
            macs_axis.bar(positions, counts, 0.6, bottom=bottom, label=f"{kind} MACs",
                          color=_KIND_COLOURS[kind])
            bottom += counts
    macs_axis.set_ylabel("MACs per inference")
    macs_axis.legend(loc="upper right", fontsize=8)
    macs_axis.grid(axis="y", alpha=0.3)
    macs_axis.set_xticks(positions)
    macs_axis.set_xticklabels(labels, rotation=30, ha="right", fontsize=8)

    if result.arena_bytes is None:
        arena = "arena not measured"
    elif result.arena_source == "this model":
        arena = f"arena {result.arena_bytes:,} B"
    else:  # a deploy model's arena is bounded by its reference's
        arena = f"arena <= {result.arena_bytes:,} B (measured on the reference)"
    totals = (f"flash {result.flash_bytes:,} B (weights {result.weight_bytes:,} B), {arena}, "
              f"activation peak {result.activation_peak_bytes:,} B")
    figure.suptitle((title + "\n" if title else "") + totals, fontsize=9)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path
