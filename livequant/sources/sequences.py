"""Pictures FFmpeg reads as a video: numbered (``frames/%04d.png``) or matched by a glob pattern (``frames/*.png``)."""

from __future__ import annotations

import collections
import glob
import os
import re
from pathlib import Path

from livequant.sources.base import IMAGE_SUFFIXES, SEQUENCE_NUMBER

__all__ = ["first_number", "first_picture", "is_glob", "is_picture_sequence", "pictures_in", "sequence_problem"]


def is_picture_sequence(path: str) -> bool:
    """Whether ``path`` names pictures that FFmpeg reads as a video: numbered (``frames/%04d.png``) or matched
    by a glob pattern (``frames/*.png``, in name order)."""
    return "://" not in path and Path(path).suffix.lower() in IMAGE_SUFFIXES and (
        SEQUENCE_NUMBER.search(path) is not None or is_glob(path))


def is_glob(path: str) -> bool:
    """Whether ``path`` is a glob pattern rather than a file (a file's name may hold ``*?[`` too)."""
    return any(c in path for c in "*?[") and not os.path.isfile(path)


def _numbered(pattern: str, number: int) -> str:
    """The file numbered pictures ``pattern`` name ``number``: ``frame-%04d.png``, 7: ``frame-0007.png``."""
    return SEQUENCE_NUMBER.sub(lambda spec: spec.group(0) % number, pattern, count=1)


def _numbers(pattern: str) -> list[int]:
    """The numbers of the files that numbered pictures ``pattern`` names, in order."""
    head, tail = SEQUENCE_NUMBER.split(pattern, maxsplit=1)
    named = re.compile(re.escape(head) + r"(\d+)" + re.escape(tail))
    found = (named.fullmatch(name) for name in glob.glob(glob.escape(head) + "*" + glob.escape(tail)))
    return sorted({int(match.group(1)) for match in found if match and _numbered(pattern, int(match.group(1)))
                   == match.group(0)})


def first_number(pattern: str) -> int | None:
    """The lowest number among the files that numbered pictures ``pattern`` names; None if there are none."""
    return min(_numbers(pattern), default=None)


def sequence_problem(path: str) -> str | None:
    """Why the pictures ``path`` names cannot be read (None: they can, or it names none): a glob pattern that
    matches no file, or numbered pictures with a gap (`_sequence_gap`)."""
    if not is_picture_sequence(path):
        return None
    if SEQUENCE_NUMBER.search(path) is not None:
        return _sequence_gap(path)
    return None if glob.glob(path) else f"cannot read the pictures '{path}': no file matches; check the pattern"


def _sequence_gap(pattern: str) -> str | None:
    """Why numbered pictures ``pattern`` cannot be read whole: FFmpeg stops at the first number missing and
    leaves out the pictures after it. None when they run without a gap (or there are none)."""
    numbers = _numbers(pattern)
    for expected, number in enumerate(numbers, start=numbers[0] if numbers else 0):
        if number != expected:
            after = len(numbers) - (expected - numbers[0])
            return (f"cannot read the pictures '{pattern}' whole: '{_numbered(pattern, expected)}' is missing, and "
                    f"the {after} numbered after it would be left out; number them without a gap")
    return None


def pictures_in(folder: str) -> str | None:
    """Numbered pictures in ``folder`` as a pattern (``folder/frame-%04d.png``), the most common naming; None if
    there are none."""
    namings = collections.Counter()
    try:
        names = os.listdir(folder)
    except OSError:  # unreadable: FFmpeg says so next
        return None
    for name in names:
        match = re.fullmatch(r"(.*?)(\d+)(\.\w+)", name)
        if match and match.group(3).lower() in IMAGE_SUFFIXES:
            namings[match.group(1), len(match.group(2)), match.group(3)] += 1
    if not namings:
        return None
    head, width, suffix = namings.most_common(1)[0][0]
    return os.path.join(folder, f"{head}%0{width}d{suffix}")


def first_picture(path: str) -> str | None:
    """The first file of a picture sequence (`is_picture_sequence`) in the order FFmpeg plays it; None if none."""
    if SEQUENCE_NUMBER.search(path) is None:
        return min(glob.glob(path), default=None)
    first = first_number(path)
    return None if first is None else _numbered(path, first)
