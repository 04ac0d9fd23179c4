"""Animated picture files: GIF, APNG and WebP told from stills by their blocks and chunks, how often they play,
and `AnimatedWebP`, decoded with Pillow (FFmpeg here decodes none).
"""

from __future__ import annotations

import os
import struct

import numpy as np

from livequant.errors import SourceError
from livequant.frames import WHITE, flatten_alpha, split_alpha
from livequant.sources.base import MAX_PIXELS, BaseSource, check_limit, check_max_pixels, is_pipe
from livequant.sources.images import file_chunks, is_chunked
from livequant.sources.scaling import resize_rgba

__all__ = ["AnimatedWebP", "CONTROL_BYTES", "animation_kind", "is_animated", "loop_count", "whole_gif_images"]

#: The largest chunk read whole when looking for an APNG's or WebP's animation controls (acTL, ANIM: 8 and 6
#: bytes); larger ones (the images) are skipped, so a folder's large still pictures are not read through.
CONTROL_BYTES = 64


def loop_count(path) -> int | None:
    """How often the animated picture file ``path`` plays, as the sinks' ``loop`` says it (see
    `livequant.sinks.GifWriter`): 0 loops forever, n > 0 repeats n times, -1 plays once.

    A GIF's NETSCAPE2.0 (or ANIMEXTS1.0) application extension before its first image holds the same number
    (a GIF without one plays once); an APNG's acTL chunk and a WebP's ANIM chunk hold how many times it plays
    (0: forever).

    Returns
    -------
    int or None
        None for a camera index, a URL, a pipe, a file that is not a GIF, APNG or animated WebP or cannot be
        read, or a GIF whose blocks break off before its first image.
    """
    if isinstance(path, int) or is_pipe(path):  # a camera, as `open_source` takes it (`open` would take it for a
        return None  # descriptor); a pipe, which this would read from, or wait on for a writer
    try:
        with open(path, "rb") as f:
            head = f.read(13)  # a GIF's signature, version, then its logical screen descriptor
            if head[:6] in (b"GIF87a", b"GIF89a") and len(head) == 13:
                return _gif_loop(f, head)
            if not is_chunked(head):
                return None
            for kind, body in file_chunks(f, head, CONTROL_BYTES):
                if kind == b"acTL" and len(body) == 8:  # frames, then plays
                    plays = struct.unpack(">I", body[4:])[0]
                elif kind == b"ANIM" and len(body) == 6:  # background colour, then plays
                    plays = struct.unpack("<H", body[4:])[0]
                elif kind in (b"IDAT", b"ANMF"):  # an image before any animation control: a still
                    return None
                else:
                    continue
                return 0 if plays == 0 else plays - 1 if plays > 1 else -1
    except (OSError, ValueError):  # no such file, a URL, a folder; a name with a NUL
        return None
    return None


def _gif_loop(f, head: bytes) -> int | None:
    """`loop_count` of a GIF file, ``f`` just after its 13-byte ``head``: read from its blocks (global colour
    table, then extensions) up to the first image."""
    if head[10] & 0x80:  # a global colour table of 2 ** (n + 1) RGB entries
        f.seek(3 << ((head[10] & 7) + 1), os.SEEK_CUR)
    while (introducer := f.read(1)) == b"\x21":  # an extension: its label, then its sub-blocks
        label = f.read(1)
        blocks = _gif_sub_blocks(f)
        if blocks is None:
            return None
        if label == b"\xff" and blocks and blocks[0] in (b"NETSCAPE2.0", b"ANIMEXTS1.0"):
            for block in blocks[1:]:
                if len(block) == 3 and block[0] == 1:  # the loop sub-block: 1, then a uint16 count
                    return int.from_bytes(block[1:], "little")
    return -1 if introducer in (b"\x2c", b"\x3b") else None  # an image, or the trailer


def is_animated(path) -> bool:
    """Whether the picture file ``path`` holds more than one frame: a GIF of two images or more, an APNG (its
    acTL chunk), an animated WebP (ANMF chunks). False for other files and those that cannot be read."""
    return animation_kind(path) is not None


def animation_kind(path) -> str | None:
    """``"gif"``, ``"apng"`` or ``"webp"`` for an animated picture file; None for any other file, one that
    cannot be read, and a pipe (which this would read from, or wait on for a writer)."""
    if "://" in os.fspath(path) or is_pipe(path):
        return None
    try:
        with open(path, "rb") as f:
            head = f.read(13)
            if head[:6] in (b"GIF87a", b"GIF89a"):
                return "gif" if _gif_images(f, head, most=2)[0] > 1 else None
            if not is_chunked(head):
                return None
            frames = 0
            for kind, body in file_chunks(f, head, CONTROL_BYTES):
                if kind == b"acTL":  # an APNG's: frames, plays; before the first image data
                    return "apng" if len(body) == 8 and struct.unpack(">I", body[:4])[0] > 1 else None
                if kind == b"IDAT":
                    return None
                frames += kind == b"ANMF"
    except (OSError, ValueError):
        return None
    return "webp" if frames > 1 else None


def _gif_images(f, head: bytes, most: int | None = None) -> tuple[int, bool]:
    """Images in a GIF file, ``f`` just after its 13-byte ``head`` (counted up to ``most``), and whether the
    file breaks off inside the last one counted (its data cut short)."""
    if head[10] & 0x80:  # a global colour table
        f.seek(3 << ((head[10] & 7) + 1), os.SEEK_CUR)
    images = 0
    while (most is None or images < most) and (introducer := f.read(1)) in (b"\x21", b"\x2c"):
        if introducer == b"\x21":  # an extension: its label, then its sub-blocks
            f.read(1)
        else:  # an image: its descriptor, local colour table, LZW code size, then its data's sub-blocks
            descriptor = f.read(9)
            if len(descriptor) < 9:
                break
            if descriptor[8] & 0x80:
                f.seek(3 << ((descriptor[8] & 7) + 1), os.SEEK_CUR)
            f.read(1)
            images += 1
        if _gif_sub_blocks(f) is None:
            return images, introducer == b"\x2c"
    return images, False


def whole_gif_images(path: str) -> tuple[int, bool]:
    """`_gif_images` of the whole GIF file ``path``: its images, and whether it breaks off inside the last
    ((0, False) if it cannot be read)."""
    try:
        with open(path, "rb") as f:
            return _gif_images(f, f.read(13))
    except OSError:
        return 0, False


def _gif_sub_blocks(f) -> list[bytes] | None:
    """The data sub-blocks from ``f``'s position up to the empty one that ends them; None if the file ends first."""
    blocks = []
    while size := f.read(1):
        if size == b"\0":
            return blocks
        block = f.read(size[0])
        if len(block) < size[0]:
            return None
        blocks.append(block)
    return None


class AnimatedWebP(BaseSource):
    """The frames of an animated WebP file, decoded with Pillow (FFmpeg here decodes none), each at its time.

    It reads as a `VideoFile` does, without sound: ``start`` and ``duration``
    in seconds, ``alpha`` (``(frame, time, opaque)`` triples) or ``background``,
    and `scale`. A frame Pillow cannot decode ends the frames there, counted in
    ``undecodable``.

    Attributes
    ----------
    has_alpha : bool
        With ``alpha``, true: WebP frames are RGBA.
    end_time : float or None
        Once the frames have run out: when the last one stops showing.
    """

    has_audio, audio, audio_tracks, endless, origin = False, None, 0, False, 0.0

    def __init__(self, path, start: float | None = None, duration: float | None = None, *,
                 max_pixels: int = MAX_PIXELS, alpha: bool = False, background: tuple[int, int, int] = WHITE):
        from PIL import Image, UnidentifiedImageError

        check_max_pixels(max_pixels)
        self.path = os.fspath(path)
        try:
            self._image = Image.open(self.path)
        except (OSError, UnidentifiedImageError) as e:
            raise SourceError(f"cannot read animation '{self.path}': {e}; is the file complete?") from None
        try:
            check_limit("animation", self.path, *self._image.size, max_pixels)
        except SourceError:
            self._image.close()
            raise
        self.size = self._image.size
        self.frame_count = getattr(self._image, "n_frames", 1)
        self.start, self.duration = start, duration
        self.alpha, self.background = bool(alpha), tuple(background)
        self.has_alpha = self.alpha
        self.end_time: float | None = None
        self._size = None  # scaled to
        self._image.load()  # a frame's duration is known once it is decoded
        first = self._image.info.get("duration") or 0
        self.fps = 1000 / first if first > 0 else None  # the first frame's rate

    def scale(self, size) -> None:
        """Scale the frames to ``size`` ``(W, H)``, with their transparency (`resize_rgba`)."""
        self.size = self._size = (int(size[0]), int(size[1]))

    def __iter__(self):
        start = self.start or 0.0
        end = None if self.duration is None else start + self.duration
        t = 0.0
        for i in range(self.frame_count):
            if end is not None and t >= end - 1e-6:
                break
            try:
                self._image.seek(i)
                rgba = np.asarray(self._image.convert("RGBA"))
            except (OSError, ValueError):
                self.undecodable += self.frame_count - i
                break
            until = t + (self._image.info.get("duration") or 0) / 1000
            if until > start + 1e-6 or (until == t and t >= start):
                if self._size is not None:
                    rgba = resize_rgba(rgba, self._size)
                shown = max(t, start)
                self.end_time = until if end is None else min(until, end)
                if self.alpha:
                    rgb, opaque = split_alpha(rgba)
                    yield rgb, shown, opaque
                else:
                    yield flatten_alpha(rgba, self.background), shown
            t = until

    def close(self) -> None:
        """Close the file."""
        self._image.close()
