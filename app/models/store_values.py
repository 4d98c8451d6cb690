"""Small helpers the parts of the Store share: the "leave it alone" marker and value checks."""

from __future__ import annotations

import enum


class _Unset(enum.Enum):
    UNSET = enum.auto()


UNSET = _Unset.UNSET  # "leave this field alone" in update methods; None means "clear it"


def check(value: str, allowed: frozenset[str], what: str) -> None:
    if value not in allowed:
        raise ValueError(f"unknown {what} {value!r}; expected one of {sorted(allowed)}")
