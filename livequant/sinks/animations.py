"""Animated WebP and APNG: `AnimationWriter`, through FFmpeg's encoders, with the loop count and the last frame's
duration written into the file.
"""

from __future__ import annotations

import os
import zlib
from fractions import Fraction
from pathlib import Path

import av

from livequant.frames import QuantizedFrame, join_alpha, on_background
from livequant.sinks.base import check_loop, optional_fps
from livequant.sinks.encoding import EncoderSink

__all__ = ["AnimationWriter"]


def _riff_chunk(tag: bytes, body: bytes) -> bytes:
    """A RIFF chunk: tag, little-endian size, body, padded to an even length."""
    return tag + len(body).to_bytes(4, "little") + body + bytes(len(body) & 1)


def _webp_chunks(data: bytes):
    """``(tag, start, end)`` of each chunk of a WebP file's bytes: its header at ``start``, its body at
    ``start + 8``, the next chunk at ``end`` (the body is padded to even)."""
    pos = 12
    while pos + 8 <= len(data):
        size = int.from_bytes(data[pos + 4 : pos + 8], "little")
        yield data[pos : pos + 4], pos, pos + 8 + size + (size & 1)
        pos += 8 + size + (size & 1)


def _animated_webp(still: bytes, width: int, height: int, duration: int, plays: int) -> bytes:
    """The picture of a still WebP file as an animated WebP that shows it for ``duration`` ms and plays
    ``plays`` times (0: forever); a picture shown longer than an ANMF chunk can say (about 4.6 hours) is
    shown in several frames."""
    flags, picture = 0, b""
    for tag, start, end in _webp_chunks(still):
        if tag == b"VP8X":
            flags = still[start + 8] & 0x10  # alpha
        elif tag in (b"ALPH", b"VP8 ", b"VP8L"):
            picture += still[start:end]
    canvas = (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little")
    frames = b""
    while duration > 0:
        shown = min(duration, 0xFFFFFF)
        frames += _riff_chunk(b"ANMF", bytes(6) + canvas + shown.to_bytes(3, "little") + b"\x02" + picture)
        duration -= shown
    return _riff_chunk(b"RIFF", b"WEBP" + _riff_chunk(b"VP8X", bytes([flags | 0x02, 0, 0, 0]) + canvas)
                       + _riff_chunk(b"ANIM", b"\xff" * 4 + plays.to_bytes(2, "little")) + frames)


def _webp_ending_at(data: bytes, end: int) -> bytes:
    """An animated WebP file's bytes with its last frame shown until ``end`` ms after the first frame starts
    (libwebp gives it the mean frame's duration); as they are where it starts at or after ``end``."""
    frames = [pos for tag, pos, _ in _webp_chunks(data) if tag == b"ANMF"]  # body: position, size, duration (ms)
    if not frames:
        return data
    last = frames[-1]
    start = sum(int.from_bytes(data[pos + 20 : pos + 23], "little") for pos in frames[:-1])
    if start >= end:
        return data
    return data[: last + 20] + min(end - start, 0xFFFFFF).to_bytes(3, "little") + data[last + 23 :]


def _set_last_apng_delay(path: Path, milliseconds: int) -> None:
    """Show the last frame of the APNG file ``path`` for ``milliseconds``: its frame control chunk (fcTL) is
    rewritten in place, delay and checksum. FFmpeg's apng muxer gives it the delay of the frame before, and
    reads its ``final_delay`` option before the last frame's duration is known."""
    with open(path, "r+b") as f:
        f.seek(8)  # the PNG signature
        last = None
        while header := f.read(8):
            length, kind = int.from_bytes(header[:4], "big"), header[4:]
            if kind == b"fcTL":
                last = f.tell() - 8
            f.seek(length + 4, os.SEEK_CUR)  # the data and its CRC
        if last is None:
            return
        f.seek(last + 8)
        control = bytearray(f.read(26))  # sequence, width, height, x, y (4 bytes each), delay, its unit, ops
        unit = next(u for u in (1000, 100, 10, 1) if round(milliseconds * u / 1000) <= 0xFFFF or u == 1)
        control[20:24] = min(round(milliseconds * unit / 1000), 0xFFFF).to_bytes(2, "big") + unit.to_bytes(2, "big")
        f.seek(last + 8)
        f.write(control + zlib.crc32(b"fcTL" + control).to_bytes(4, "big"))


class AnimationWriter(EncoderSink):
    """Write an animated WebP (``.webp``) or APNG (``.apng``) with PyAV's libwebp_anim and apng encoders.

    WebP is lossless unless ``quality`` is given (then lossy, 0..100, larger
    is better); APNG is always lossless. Frame times set the frame durations
    (in 1/1000 s); the last frame lasts until `end_at` says, else as long as
    the one before it: that duration is written into the file's last frame
    (FFmpeg's apng muxer gives it the one before's, libwebp the mean frame's).
    Frames that repeat the one before are merged into it in WebP; where that
    leaves one frame of several, libwebp writes a still picture, which is
    written as a one-frame animation instead, so the duration stays. A lone
    frame makes a still picture in either format (which is what viewers show).

    Parameters
    ----------
    path : str or os.PathLike
        Output file, ``.webp`` or ``.apng``.
    loop : int
        0 loops forever, -1 plays once, n > 0 repeats n times.
    quality : float, optional
        Lossy WebP quality, 0..100.
    overwrite : bool
        Replace an existing ``path``.
    inputs : sequence of str or os.PathLike
        Files the output must not be (compared by device and inode).
    fps : float, optional
        Frame rate for frames without a time: each shows ``1 / fps`` after
        the one before. Without it such frames are an error.
    alpha : bool
        Keep the frames' transparency (`QuantizedFrame.opaque`): an APNG then
        has an alpha channel (a WebP always has one); without, it shows on white.

    Raises
    ------
    ValueError
        If the suffix is neither, ``quality`` is out of range or given for APNG, or FFmpeg here lacks the encoder.
    """

    _FORMATS = {".webp": ("webp", "libwebp_anim", "bgra", "loop"), ".apng": ("apng", "apng", "rgb24", "plays")}

    def __init__(self, path, *, loop: int = 0, quality: float | None = None, overwrite: bool = False, inputs=(),
                 fps: float | None = None, alpha: bool = False):
        check_loop(loop)
        self.fps = optional_fps(fps)
        suffix = Path(path).suffix.lower()
        if suffix not in self._FORMATS:
            raise ValueError(f"'{path}' is not an animation format here; use .webp or .apng (or .gif)")
        if quality is not None and (suffix != ".webp" or not 0 <= quality <= 100):
            raise ValueError(f"quality applies to .webp only, 0..100, got {quality} for '{path}'; "
                             "APNG and GIF are lossless")
        self._format, self.codec, self.pix_fmt, loop_option = self._FORMATS[suffix]
        self.alpha = bool(alpha)
        if self.alpha and self.pix_fmt == "rgb24":
            self.pix_fmt = "rgba"
        try:
            av.Codec(self.codec, "w")
        except av.codec.codec.UnknownCodecError:
            raise ValueError(f"FFmpeg here has no {self.codec} encoder for '{path}'; write .gif instead") from None
        plays = 0 if loop == 0 else 1 if loop == -1 else loop + 1  # 0: forever
        self._container_options = {loop_option: str(plays)}
        self._plays = plays
        self._ends: int | None = None  # ms: when the animation ends, set as it is finished
        self._options = {} if suffix == ".apng" else \
            {"lossless": "1"} if quality is None else {"lossless": "0", "quality": f"{quality:g}"}
        self.loop, self.quality = loop, quality
        super().__init__(path, overwrite, inputs)

    def _open(self, height: int, width: int) -> None:
        self._out = av.open(str(self._tmp), "w", format=self._format, options=self._container_options)
        self._stream = self._out.add_stream(self.codec, options=self._options)
        self._stream.width, self._stream.height, self._stream.pix_fmt = width, height, self.pix_fmt
        self._stream.codec_context.time_base = Fraction(1, 1000)
        self._stream.codec_context.sample_aspect_ratio = Fraction(1, 1)  # APNG's pHYs said 0:1 (unknown) else

    def _frame(self, qframe: QuantizedFrame) -> av.VideoFrame:
        if qframe.opaque is None or not self.alpha:
            frame = av.VideoFrame.from_ndarray(on_background(qframe.rgb, qframe.opaque), format="rgb24")
        else:
            frame = av.VideoFrame.from_ndarray(join_alpha(qframe.rgb, qframe.opaque), format="rgba")
        return frame if frame.format.name == self.pix_fmt else frame.reformat(format=self.pix_fmt)

    def _encode(self, frame: av.VideoFrame | None) -> None:
        """Encode ``frame``; at the end (None) of a WebP of several frames, end its last frame when the
        animation should end, and where libwebp has made a still picture (every frame the same), mux it as
        an animation that lasts as long as they do."""
        if frame is not None or self._format != "webp" or self.frames < 2:
            super()._encode(frame)
            return
        for packet in self._stream.encode(None):
            data = bytes(packet)
            if data[12:16] != b"VP8X" or not data[20] & 0x02:  # no animation flag
                written = _animated_webp(data, self._stream.width, self._stream.height, self._ends, self._plays)
            else:
                written = data if self._ends is None else _webp_ending_at(data, self._ends)
            if written != data:
                ended = av.Packet(written)
                ended.pts, ended.dts, ended.time_base = packet.pts, packet.dts, packet.time_base
                ended.stream = packet.stream
                packet = ended
            self._muxer.mux(packet)

    def _finish(self) -> None:
        wanted = self._last_duration()
        self._ends = None if wanted is None else self._last_pts + wanted
        super()._finish()
        if self._format == "apng" and self.frames > 1 and wanted is not None:
            _set_last_apng_delay(self._tmp, wanted)
