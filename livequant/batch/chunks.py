"""Long files cut into chunks at scene cuts (and long shots at keyframes), and the quietest frame for a seam: pure
functions of frame times and frames.
"""

from __future__ import annotations

from dataclasses import dataclass

from livequant.frames import QuantizedFrame
from livequant.report import still_change

__all__ = ["Chunk", "REPLAY_SECONDS", "SEAM_WINDOW_SECONDS", "WARM_SECONDS", "plan_chunks", "quietest_seam"]

#: Default seconds from a shot's start within which a chunk replays the shot before it (and is exact).
REPLAY_SECONDS = 30.0
#: Seconds before a keyframe cut that a chunk further into its shot quantizes without writing them.
WARM_SECONDS = 2.0
#: Seconds after a keyframe cut inside a shot in which the seam moves to the quietest frame.
SEAM_WINDOW_SECONDS = 1.0


@dataclass(frozen=True)
class Chunk:
    """Frames ``first .. first + count - 1`` of a file, after ``warm`` frames quantized but not written.

    A seam with a window (``window`` at the start, ``next_window`` at the end)
    moves to the quietest of the window's frames: the chunk then writes from
    that frame of its first window, and up to that frame of its last.
    """

    first: int
    count: int
    warm: int
    start: float  # time of frame ``first - warm`` (where decoding starts), from the file's start (its origin)
    offset: float  # time of frame ``first`` after the file's first frame
    window: int = 0  # frames from ``first`` where the chunk's first written frame may be
    next_window: int = 0  # frames from ``first + count`` where the next chunk's first frame may be
    end: float | None = None  # the last chunk's: when its last frame stops showing (the file's end), if known


def plan_chunks(times, cuts, keyframes, *, chunk_frames: int, warm_frames: int, replay_frames: int = 0,
                window_frames: int = 0) -> list[Chunk]:
    """Group the shots between scene cuts into chunks of about ``chunk_frames`` frames.

    Whole shots are grouped while they fit; a shot longer than ``chunk_frames``
    is cut at the keyframes nearest each multiple of ``chunk_frames`` into it.
    A chunk that starts at such a keyframe at most ``replay_frames`` into its
    shot replays the shot from its start, and its seam gets a window of
    ``window_frames`` (at most half of ``chunk_frames``) to move in; one further
    in warms up over the ``warm_frames`` frames before it.

    Parameters
    ----------
    times : sequence of float
        Each frame's time, in decoding order.
    cuts : sequence of int
        Scene-cut frame indices (> 0, ascending).
    keyframes : sequence of int
        Frame indices of the keyframes (ascending).
    chunk_frames, warm_frames, replay_frames, window_frames : int

    Returns
    -------
    list of Chunk
        In frame order, covering every frame once.
    """
    n = len(times)
    bounds = [0, *[c for c in cuts if 0 < c < n], n]
    starts = []  # (first frame, first frame of its shot)
    group = None  # first frame of the chunk that short shots are added to
    for a, b in zip(bounds, bounds[1:]):
        if b - a > chunk_frames:
            starts.append((a, a))
            s = a
            while b - s > chunk_frames + chunk_frames // 2:
                target = s + chunk_frames
                near = [k for k in keyframes if s + chunk_frames // 2 <= k <= b - chunk_frames // 2]
                if not near:
                    break
                s = min(near, key=lambda k: (abs(k - target), k))
                starts.append((s, a))
            group = None
        elif group is None or b - group > chunk_frames:
            starts.append((a, a))
            group = a
    ends = [first for first, _ in starts[1:]] + [n]
    t0 = times[0]
    window_frames = max(0, min(window_frames, chunk_frames // 2))
    windows = [min(window_frames, end - first) if shot < first <= shot + replay_frames else 0
               for (first, shot), end in zip(starts, ends)]
    chunks = []
    for (first, shot), end, window, next_window in zip(starts, ends, windows, windows[1:] + [0]):
        warm = first - shot if first - shot <= replay_frames else min(warm_frames, first - shot)
        chunks.append(Chunk(first, end - first, warm, times[first - warm], times[first] - t0, window, next_window))
    return chunks


def quietest_seam(before: QuantizedFrame, window: list[QuantizedFrame]) -> int:
    """Where in ``window`` (frames following ``before``) a seam shows least.

    Returns
    -------
    int
        The index of the frame whose output changes least, summed over the pixels
        where its source stands still, from the frame before it; the first on a tie.
    """
    changes = [still_change(a.source, b.source, a.rgb, b.rgb)[0] for a, b in zip([before, *window], window)]
    return changes.index(min(changes))
