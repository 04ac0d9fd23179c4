"""Sinks that encode with PyAV: `EncoderSink` opens its container at the first frame and encodes each frame once
its duration is known; `OneBehind` lets the last packet end an MP4 or MOV stream where asked.
"""

from __future__ import annotations

import av

from livequant.frames import QuantizedFrame
from livequant.sinks.base import FileSink, check_same_size

__all__ = ["EncoderSink", "OneBehind"]


class OneBehind:
    """Mux a stream's packets into ``container`` one behind, so that its last packet can end the stream.

    An MP4 or MOV stream plays until the earlier of two ends that its muxer takes from the packets: the
    last packet's decode time plus its duration, and the latest presentation time plus duration. With
    B-frames the last packet is not the last frame shown, and packets copied from another MP4 carry
    decode-time steps as durations, so the stream comes out short. `finish` gives the last packet the
    duration that takes the decode end exactly to the end asked, or, where the packets before it do not
    show until then, the one that takes its own presentation there; so a constant rate keeps every
    frame's duration (the table of decode-time steps then says so). Other containers take the end from
    presentation times and durations, and keep theirs.

    A lone packet is decoded when it is shown: its decode time is set to its presentation time (libx265
    leaves a lone frame's unset, which the MP4 muxer refuses or keeps as nonsense).
    """

    def __init__(self, container):
        self._out = container
        self._held: av.Packet | None = None
        self._first_dts = None
        self._alone = True  # no packet muxed yet
        self._shown_until = None  # the latest presentation time plus duration of the packets muxed

    def mux(self, packet: av.Packet) -> None:
        """Mux the packet before ``packet``; hold ``packet``."""
        self._first_dts = packet.dts if self._first_dts is None else self._first_dts
        if self._held is not None:
            held = self._held
            if held.pts is not None and held.duration:
                self._shown_until = max(self._shown_until or held.pts, held.pts + held.duration)
            self._out.mux(held)
            self._alone = False
        self._held = packet

    def finish(self, end: int | None) -> None:
        """Mux the last packet, ending the stream at ``end`` (in the packets' time base, on the clock of their
        presentation times) where given."""
        if self._held is None:
            return
        if self._alone:
            self._held.dts = self._first_dts = self._held.pts
        if end is not None and self._out.format.name in ("mp4", "mov"):
            held = self._held
            duration = end - held.dts + self._first_dts
            if max(self._shown_until or held.pts, held.pts + duration) < end:
                duration = end - held.pts
            held.duration = max(duration, 1)
        self._out.mux(self._held)
        self._held = None


class EncoderSink(FileSink):
    """A PyAV container whose video stream `_open` makes at the first frame (when the size is known);
    `_frame` turns a quantized frame into an ``av.VideoFrame``.

    Each frame is encoded when the next arrives, so each packet's duration is the time to the next frame
    (the last one's: until `end_at`, else the interval before it): containers take the last frame's from
    it, and with it their duration (MP4 and MOV through `OneBehind`).
    """

    _min_step = 1  # smallest pts increment between frames, in the stream's time base

    def __init__(self, path, overwrite: bool, inputs=()):
        super().__init__(path, overwrite, inputs)
        self._out = None
        self._stream = None
        self._size = None  # (H, W) of the first frame: every frame's
        self._t0 = None
        self._last_pts = None
        self._interval = None
        self._held: av.VideoFrame | None = None  # the last frame, encoded once its duration is known
        self._durations: dict[int, int] = {}  # pts -> ticks shown, for the packets still to come
        self._muxer: OneBehind | None = None  # made with the container

    def _last_duration(self) -> int | None:
        """Ticks the last frame shows: until `end_at` when that is after it, else the interval before it
        (None after a lone frame: the encoder's own)."""
        if self._end is not None:
            end = round((self._end - self._t0) / self._stream.codec_context.time_base)
            if end > self._last_pts:
                return max(end - self._last_pts, self._min_step)
        return self._interval

    def _pts(self, t: float) -> int:
        """Ticks since the first frame, strictly increasing; remembers the last frame interval."""
        if self._t0 is None:
            self._t0 = t
        pts = round((t - self._t0) / self._stream.codec_context.time_base)
        if self._last_pts is not None:
            pts = max(pts, self._last_pts + self._min_step)
            self._interval = pts - self._last_pts
        self._last_pts = pts
        return pts

    def _write(self, qframe: QuantizedFrame) -> None:
        if self._out is None:
            self._open(*qframe.rgb.shape[:2])
            self._muxer = OneBehind(self._out)
            self._size = qframe.indices.shape
        check_same_size(qframe, self._size, self)
        frame = self._frame(qframe)
        frame.time_base = self._stream.codec_context.time_base
        frame.pts = self._pts(qframe.time)
        if self._held is not None:
            self._durations[self._held.pts] = self._interval
            self._encode(self._held)
        self._held = frame

    def _encode(self, frame: av.VideoFrame | None) -> None:
        for packet in self._stream.encode(frame):
            if packet.pts in self._durations:
                packet.duration = self._durations.pop(packet.pts)
            self._muxer.mux(packet)

    def _finish(self) -> None:
        last = self._last_duration()
        if last is not None:
            self._durations[self._held.pts] = last
        self._encode(self._held)
        self._encode(None)
        self._muxer.finish(None if last is None else self._last_pts + last)
        self._out.close()

    def _release(self) -> None:
        self._release_output()

    def _release_output(self) -> None:
        if self._out is not None:
            try:
                self._out.close()
            except av.error.FFmpegError:
                pass  # the partial file is deleted next
            self._out = None
