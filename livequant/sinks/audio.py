"""An input's sound carried into a video output: `AudioTrack` copies its packets where the container takes the
codec, else re-encodes them with every channel kept.
"""

from __future__ import annotations

from fractions import Fraction

import av
import numpy as np

from livequant.errors import SinkError

__all__ = ["AudioTrack", "TS_SOUND"]

#: Sound codecs an MPEG-TS file carries as they are: FFmpeg's muxer takes them, while PyAV lists only MPEG-2's own
#: as what the format holds.
TS_SOUND = frozenset({"aac", "mp3", "mp2", "ac3", "eac3", "opus"})


def _opens(codec: str, rate: int, layout: av.AudioLayout) -> bool:
    """Whether FFmpeg's ``codec`` audio encoder takes ``layout`` at ``rate``."""
    context = av.CodecContext.create(codec, "w")
    context.sample_rate, context.layout, context.format = rate, layout, context.codec.audio_formats[0]
    try:
        context.open()
    except av.error.FFmpegError:
        return False
    return True


def _named(layout: av.AudioLayout) -> av.AudioLayout:
    """``layout``, or FFmpeg's standard layout for its channel count where it names no channels (Matroska's
    PCM): 5.1 for 6."""
    count = layout.nb_channels
    return av.AudioLayout(f"{count}c") if layout == av.AudioLayout(f"{count}C") else layout


def _encoded_layout(codec: str, rate: int, given: av.AudioLayout) -> av.AudioLayout | None:
    """The layout ``codec`` encodes the channels of ``given`` (a `_named` one) in, each channel kept, never
    mixed down: ``given`` itself, else with side surrounds named back ones, which is all Opus knows them by
    (5.1(side) as 5.1); None if the encoder takes neither."""
    names = [channel.name for channel in given.channels]
    candidates = [given]
    if {"SL", "SR"} <= set(names) and not {"BL", "BR"} & set(names):
        candidates.append(av.AudioLayout("+".join({"SL": "BL", "SR": "BR"}.get(n, n) for n in names)))
    return next((layout for layout in candidates if _opens(codec, rate, layout)), None)


class AudioTrack:
    """An input's audio stream, carried into an output alongside the video.

    Stream copy when the output container accepts the codec, else decoded and
    re-encoded (Opus for WebM, AAC otherwise, or the container's own codec
    where it takes no AAC: MP2 in MPEG-PS) with every channel kept: a layout
    the encoder cannot keep raises `SinkError` rather than being mixed down.
    Times are on the input's clock; ``offset`` (the first video frame's time)
    becomes zero in the output.

    Parameters
    ----------
    stream : av.AudioStream
        The input's audio stream.
    packets : iterator of av.Packet or None
        Its packets in order; None where none is there yet (`livequant.sources.AudioFeed.packets`).
    output : av.container.OutputContainer
    suffix : str
        The output's suffix, which picks the encoder when the codec cannot be copied.
    copy : bool
        Copy the packets where the container takes the codec.
    own_codec : bool
        Re-encode with the container's default audio codec instead of AAC.

    Attributes
    ----------
    stream : av.AudioStream
        The input's audio stream.
    """

    def __init__(self, stream, packets, output, suffix: str, copy: bool = True, own_codec: bool = False):
        self.stream = stream
        self._packets = packets
        self._copy = self.copies(stream, output, copy)
        self._resampler = None
        if self._copy:
            self._dst = output.add_stream_from_template(self.stream)
        else:
            codec, rate = ("libopus", 48000) if suffix == ".webm" else (
                output.default_audio_codec if own_codec else "aac", self.stream.rate)
            rates = av.Codec(codec, "w").audio_rates
            if rates and rate not in rates:  # MP2 codes 16-48 kHz
                rate = min(rates, key=lambda r: abs(r - rate))
            given = _named(self.stream.layout)
            layout = _encoded_layout(codec, rate, given)
            if layout is None:
                other = ", or write .mkv (which keeps the audio as it is)" if suffix != ".mkv" else ""
                raise SinkError(f"a {suffix} file cannot keep the {given.nb_channels}-channel ({given.name}) audio "
                                f"of '{stream.container.name}': its {codec} encoder takes no such layout, and "
                                f"livequant does not mix channels down; use --no-audio{other}")
            self._dst = output.add_stream(codec, rate=rate)
            self._dst.layout = layout
            self._resampler = av.AudioResampler(format=self._dst.format, layout=self._dst.layout, rate=self._dst.rate)
        self._output = output
        self._keeps_lead_in = suffix != ".avi"  # AVI has no edit list to skip it (`_mux`)
        self._items = self._timed_items()
        self._pending = None
        self._lead_in: av.Packet | None = None  # the last copied packet before the output's start

    @staticmethod
    def copies(stream, output, copy: bool = True) -> bool:
        """Whether a track of ``stream`` into ``output`` copies its packets (else decodes and re-encodes them)."""
        if output.format.name == "mpegts":
            return copy and stream.codec_context.codec.canonical_name in TS_SOUND
        return copy and stream.codec_context.name in output.supported_codecs

    def _timed_items(self):
        """Yield ``(start, end, packet_or_frame)`` in input order, and None where no packet is there yet."""
        ends = None  # where the decoded sound so far ends
        for packet in self._packets:
            if packet is None:
                yield None
                continue
            if self._copy:
                if packet.pts is not None:
                    start = float(packet.pts * packet.time_base)
                    yield start, start + float(packet.duration * packet.time_base), packet
                continue
            try:
                frames = packet.decode()
            except av.error.FFmpegError:
                continue  # a broken audio packet is a short gap, not a failure
            for frame in frames:
                start = frame.time
                if ends is not None and abs(start - ends) <= frame.time_base:
                    start = ends  # it follows on from the one before, its time rounded (Matroska's: to 1 ms)
                ends = start + frame.samples / frame.sample_rate
                yield start, ends, frame

    def mux_until(self, limit: float, offset: float) -> None:
        """Mux what comes before ``limit``, shifted by ``-offset``; drop what ends before ``offset``.

        Copied packets go whole: those that start before ``limit``, and the
        last one that ends before ``offset``, the decoder's lead-in to the first
        one kept (AAC's priming packet, which ends at 0 in files FFmpeg or a
        phone wrote; the packet before a ``--start`` cut). Decoded sound is cut
        at the sample at ``offset``, and what goes on past ``limit`` waits for
        the next call, or is cut at `finish`'s end.
        """
        while True:
            item = self._pending or next(self._items, None)
            self._pending = None
            if item is None:
                return
            start, end, obj = item
            if start >= limit or (not self._copy and end > limit):
                self._pending = item
                return
            if end <= offset:
                self._lead_in = obj if self._copy else None
                continue
            if self._lead_in is not None:
                self._mux_copy(self._lead_in, offset)
                self._lead_in = None
            if self._copy:
                self._mux_copy(obj, offset)
            else:
                self._encode_span(obj, start, end, offset)

    def _encode_span(self, frame: av.AudioFrame, start: float, stop: float, offset: float) -> None:
        """Encode decoded ``frame``, which starts at ``start``, from ``offset`` to ``stop``, shifted by
        ``-offset``."""
        rate = frame.sample_rate
        first = max(0, round((offset - start) * rate))
        count = min(frame.samples, round((stop - start) * rate)) - first
        if count <= 0:
            return
        if count < frame.samples:
            width = 1 if frame.format.is_planar else frame.layout.nb_channels  # packed: channels interleaved
            part = np.ascontiguousarray(frame.to_ndarray()[:, first * width:(first + count) * width])
            frame = av.AudioFrame.from_ndarray(part, format=frame.format.name, layout=frame.layout)
            frame.sample_rate = rate
        frame.pts, frame.time_base = round((start - offset) * rate) + first, Fraction(1, rate)
        for encoded in self._resampler.resample(frame):
            self._mux(self._dst.encode(encoded))

    def _mux(self, packets: list[av.Packet]) -> None:
        """Mux ``packets``; in AVI, which has no edit list to skip it, not a lead-in (a packet that ends at or
        before 0: AAC's priming packet, the one before a cut): its sound played first, 21 ms late all through."""
        for packet in packets:
            if self._keeps_lead_in or packet.pts is None or packet.pts + packet.duration > 0:
                self._output.mux(packet)

    def _mux_copy(self, packet: av.Packet, offset: float) -> None:
        """Mux a copied ``packet`` shifted by ``-offset``."""
        shift = round(offset / packet.time_base)
        packet.pts -= shift
        if packet.dts is not None:
            packet.dts -= shift
        packet.stream = self._dst
        self._mux([packet])

    def finish(self, end: float, offset: float) -> None:
        """Mux the rest up to ``end`` (the video's end; decoded sound is cut there) and flush the encoder."""
        self.mux_until(end, offset)
        if not self._copy:
            if self._pending is not None and self._pending[0] < end:
                start, _, frame = self._pending
                self._encode_span(frame, start, end, offset)
            for frame in self._resampler.resample(None):
                self._mux(self._dst.encode(frame))
            self._mux(self._dst.encode(None))
