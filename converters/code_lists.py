"""Whether a shift fully-connected layer gets live-code lists (formats.h, "Live-code
lists": optional input 4 of TFQP_SHIFT_FULLY_CONNECTED), and the lists themselves.

The lists cost flash (4 bytes per nonzero code, beside b / 8 of the codes) and save
Cortex-M instructions in batch 1 where many codes are zero: the Cortex-M path
(``micro/kernels/shift_arm.c``) runs a channel pair from them where they cost fewer
instructions than its dense kernel. ``"auto"`` emits them where the counted model of
those kernels (the same counts as shift_arm.c's cost weights) says the whole layer
costs at most ``AUTO_MARGIN`` of its dense form with them, so a dense layer (or one
pruned a little) never pays their flash; ``True`` emits them for every shift
fully-connected layer that can carry them (one accumulator class, at most 2^16 input
channels), ``False`` for none.
"""

from typing import Optional, Union

import numpy as np

from tfq_plus.converters import packing

SETTINGS = ("auto", True, False)
# auto: lists only where they bring the layer to at most this share of its dense count
AUTO_MARGIN = 0.75

# Cortex-M4 instructions, as shift_arm.c counts them: per eight list entries and per
# list call; per code word of a channel pair in the dense kernel beside its pairs, per
# pair (two channels), per call.
LIST_EIGHT_ENTRIES_COST = 27
LIST_CALL_COST = 35
FC2_WORD_COST = 4
FC2_PAIR_COST = 6
FC2_CALL_COST = 45


def check_setting(setting) -> Union[str, bool]:
    """``"auto"``, ``True`` or ``False`` (the CLI's ``auto`` / ``on`` / ``off``)."""
    if setting in ("on", "off"):
        return setting == "on"
    if isinstance(setting, bool) or setting == "auto":
        return setting
    raise ValueError(f"code_lists must be 'auto', True or False, got {setting!r}")


def dense_instructions(channels_out: int, row_words: int, bits: int) -> int:
    """The dense kernel's count for one batch-1 position: channel pairs, each a call
    on every code word."""
    pairs_per_word = packing.codes_per_word(bits) // 2
    word = FC2_WORD_COST + (pairs_per_word + 3) // 4 + FC2_PAIR_COST * pairs_per_word
    return -(-channels_out // 2) * (FC2_CALL_COST + row_words * word)


def list_instructions(live_per_channel: np.ndarray) -> int:
    """The lists' count for one batch-1 position (a call per channel)."""
    return int(len(live_per_channel) * LIST_CALL_COST
               + live_per_channel.sum() * LIST_EIGHT_ENTRIES_COST // 8)


def lists_for(setting, codes: np.ndarray, table: np.ndarray, bits: int, terms: int,
              batch: int) -> Optional[np.ndarray]:
    """The live-code lists of a shift fully-connected layer's codes ``[Cout, R]`` and
    code table ``[C, 2^b]`` when ``setting`` gives it lists, else None."""
    setting = check_setting(setting)
    taps = codes.shape[1] // terms
    if setting is False or table.shape[0] != 1 or taps > packing.CODE_LIST_MAX_TAPS:
        return None
    if setting == "auto":
        live = (table[0].astype(np.int64)[codes] != 0).sum(axis=1)
        dense = dense_instructions(codes.shape[0], packing.code_words(codes.shape[1], bits), bits)
        if batch != 1 or list_instructions(live) > AUTO_MARGIN * dense:
            return None
    return packing.pack_code_lists(codes, table[0], terms)
