"""The development data in two parts: one to choose settings, checkpoints and recipes on
(`selection`), one that is only ever reported on (`report`).

Which part a video (or a still) falls in follows from its name alone, through a fixed
hash, so that the split is the same on every machine and cannot be tuned by hand.
"""

from __future__ import annotations

import zlib

SELECTION, REPORT = "selection", "report"
PARTS = (SELECTION, REPORT)
_SALT = b"lgdk-split-1:"


def part_of(name: str) -> str:
    """The part a sequence or image name belongs to: `selection` or `report` (half each,
    on average)."""
    return PARTS[zlib.crc32(_SALT + name.encode()) & 1]


def in_part(name: str, part: str | None) -> bool:
    """Whether a name is in the part; every name is when part is None or "all"."""
    if part in (None, "all"):
        return True
    if part not in PARTS:
        raise ValueError(f"unknown part '{part}'; choose one of {', '.join(PARTS)} or all")
    return part_of(name) == part
