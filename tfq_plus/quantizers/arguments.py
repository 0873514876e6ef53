"""Constructor-argument checks shared by all quantizers.

Every message names the quantizer, the argument, the value given and what is allowed,
so a bad configuration fails when the model is built, not as a NaN three epochs later.
"""

import numbers


def _is_int(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def check_int_range(owner: str, name: str, value, low: int, high: int) -> int:
    """``value`` must be an integer in ``[low, high]``."""
    if not _is_int(value) or not low <= value <= high:
        raise ValueError(
            f"{owner}: `{name}` must be an integer from {low} to {high}, got {value!r}"
        )
    return int(value)


def check_positive(owner: str, name: str, value) -> float:
    """``value`` must be a finite number > 0."""
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Real)
        or not value > 0
        or value == float("inf")
    ):
        raise ValueError(f"{owner}: `{name}` must be a finite number > 0, got {value!r}")
    return float(value)


def check_fraction(owner: str, name: str, value, *, inclusive_high: bool = False) -> float:
    """``value`` must be in ``(0, 1)`` (or ``(0, 1]``)."""
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
    ok = ok and 0 < value and (value <= 1 if inclusive_high else value < 1)
    if not ok:
        interval = "(0, 1]" if inclusive_high else "(0, 1)"
        raise ValueError(f"{owner}: `{name}` must be a number in {interval}, got {value!r}")
    return float(value)


def check_choice(owner: str, name: str, value, allowed) -> object:
    """``value`` must be one of ``allowed``."""
    if value not in allowed:
        raise ValueError(
            f"{owner}: `{name}` must be one of {list(allowed)}, got {value!r}"
        )
    return value


def check_bool(owner: str, name: str, value) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{owner}: `{name}` must be True or False, got {value!r}")
    return value


def resolve_axis(owner: str, name: str, axis: int, rank: int) -> int:
    """Normalise a per-channel ``axis`` against the input rank (called in ``build``)."""
    if not _is_int(axis) or not -rank <= axis < rank:
        raise ValueError(
            f"{owner}: `{name}`={axis!r} is not an axis of a rank-{rank} input; "
            f"allowed: integers from {-rank} to {rank - 1}"
        )
    return int(axis) % rank
