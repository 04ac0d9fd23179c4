"""Video files, URLs, pipes and numbered pictures, decoded with PyAV: `VideoFile`, and `AudioFeed` for the sound it
demuxes with the pictures.
"""

from __future__ import annotations

import collections
import contextlib
import errno
import itertools
import logging
import math
import numbers
import os
import re

import av
import numpy as np

from livequant import hdr
from livequant.errors import SourceError
from livequant.frames import WHITE, check_fps, flatten_alpha, split_alpha
from livequant.icc import to_srgb
from livequant.sources.animations import animation_kind, whole_gif_images
from livequant.sources.base import (MAX_PIXELS, PIPED_ANIMATIONS, SEQUENCE_NUMBER, STDIN, BaseSource, check_limit,
                                    check_max_pixels, is_pipe, megapixels)
from livequant.sources.images import not_a_file, profile_transform
from livequant.sources.scaling import resize_rgba, scale_options
from livequant.sources.sequences import first_number, first_picture, is_picture_sequence, sequence_problem

__all__ = ["AUDIO_READ_ON", "AudioFeed", "CUT_SHORT_SECONDS", "GIF_SHORTEST_DELAY", "GIF_SHORT_DELAY_SHOWN",
           "HDR_SIDE_DATA", "SEEK_BACK", "VideoFile"]

log = logging.getLogger("livequant")

#: `av.open`'s arguments for a file's metadata: PyAV before 19 decodes it strictly unless told (a tag in another
#: encoding than UTF-8 failed the open); 19 reads it as UTF-8 with surrogateescape and has no such argument.
_METADATA = {"metadata_errors": "replace"} if int(av.__version__.split(".")[0]) < 19 else {}
#: Seconds of the input read on past the last frame for its sound (`VideoFile` with ``carry_audio``): files
#: interleave a frame's sound up to a second or so after it.
AUDIO_READ_ON = 5.0
#: A file whose last frame comes this many seconds (or 2 frames, if more) before the end its header says is
#: taken as cut short, and the frames missing there are counted as undecodable.
CUT_SHORT_SECONDS = 0.5
#: Seconds before a --start to seek to first where the demuxer lands after the start (`VideoFile._seek`).
SEEK_BACK = 1.0
#: Browsers show a GIF frame whose delay is under 2/100 s for 1/10 s (`livequant.gif.MIN_DELAY`).
GIF_SHORTEST_DELAY, GIF_SHORT_DELAY_SHOWN = 0.02, 0.1
#: The side data of an HDR10 frame that say its peak (`livequant.hdr.content_peak`), in the order it takes them.
HDR_SIDE_DATA = (av.sidedata.sidedata.Type.CONTENT_LIGHT_LEVEL, av.sidedata.sidedata.Type.MASTERING_DISPLAY_METADATA)


def _past_the_end(named: str, start: float, length: int) -> str:
    """The message for a ``start`` (seconds) at or past the end of ``named``, which lasts ``length`` microseconds."""
    return (f"cannot read {named}: no frames from {start:g} s on (it lasts {length / 1e6:.2f} s); start earlier, "
            "or check that the file is complete")


class AudioFeed:
    """The sound of a `VideoFile`, demuxed with its pictures and handed to an output on another thread.

    A pipe can be read once and a live stream shows each moment once, so their sound cannot be read
    on its own beside the video, as a file's is.

    Attributes
    ----------
    stream : av.AudioStream
        The input's first audio stream (its codec and layout, and the decoder of its packets).
    finished : bool
        Whether the source has put every packet it will.
    """

    def __init__(self, stream):
        self.stream = stream
        self.finished = False
        self._packets = collections.deque()  # appended on the reader's thread, taken on the writer's

    def put(self, packet: av.Packet) -> None:
        """Add a demuxed packet."""
        self._packets.append(packet)

    def copies(self) -> list[av.Packet]:
        """Copies of the packets waiting now (their data and times), for a trial; the packets stay for the
        output."""
        copies = []
        for packet in list(self._packets):
            copy = av.Packet(bytes(packet))
            copy.pts, copy.dts, copy.duration = packet.pts, packet.dts, packet.duration
            copy.time_base = packet.time_base
            copies.append(copy)
        return copies

    def packets(self):
        """Yield the packets in order as they come, and None whenever none is waiting; end once finished."""
        while True:
            finished = self.finished  # read first: a packet put before the flag is still taken below
            if self._packets:
                yield self._packets.popleft()
            elif finished:
                return
            else:
                yield None


class VideoFile(BaseSource):
    """Frames of a video file or URL, decoded with PyAV.

    Every frame is kept (none dropped) with its true timestamp, so variable
    frame rate survives; rotation metadata is applied; transparent pixels are
    flattened on ``background``, or kept with ``alpha``. Frames that fail to
    decode are skipped and counted in ``undecodable``: packets the decoder
    refuses as they come, and, once the whole file is read, packets that gave
    no picture and frames the file's index lists but its data lacks (a
    truncated file). Frames the decoder returns patched over errors (flagged
    corrupt, as FFmpeg shows them) are kept and counted in ``damaged``. A
    VideoFile is read once: iterating it again raises `SourceError`.

    Parameters
    ----------
    path_or_url : str or os.PathLike
        Anything FFmpeg opens.
    start : float, optional
        Seconds from the file's start (`origin`), as FFmpeg's ``-ss``. The
        frame showing then comes first, timed at ``origin + start`` even when
        it began before; unless less than half of it is left to show, when
        the next frame comes first, timed there (a start 1 ms before a frame
        starts on that frame).
    duration : float, optional
        Seconds to read from ``start`` (or from the first frame).
    fps : float, optional
        For pictures (`is_picture_sequence`: ``frames/%04d.png``,
        ``frames/*.png``), the rate they play at (FFmpeg's default: 25); a
        video keeps its own times.
    max_pixels : int
        Refuse a stream whose frames have more pixels than this (`SourceError`
        before anything is decoded); frames above it later are not decoded.
    carry_audio : bool
        Demux the first audio stream with the video into ``audio``, for an
        output to carry (standard input and URLs, which cannot be read
        again for it). Set only when something takes the packets.
    alpha : bool
        Keep transparency: yield ``(frame, time, opaque)`` triples, as
        `livequant.frames.split_alpha` splits each frame (``opaque`` None for
        a frame that shows whole, and for every frame of a stream without alpha).
    background : (int, int, int)
        The colour transparent pixels are flattened on without ``alpha``.

    Attributes
    ----------
    origin : float
        When the file starts on its own clock, in seconds, which the frames'
        times are on (an MPEG-TS clock starts anywhere; 0 where the file does
        not say).
    has_audio : bool
        Whether the file has an audio stream.
    has_alpha : bool
        With ``alpha``, whether its frames may have transparent pixels (a
        pixel format with alpha or a palette: every GIF).
    audio_tracks : int
        How many: the outputs carry the first.
    audio : AudioFeed or None
        Its packets, with ``carry_audio``.
    end_time : float or None
        Once the frames have run out: when the last one stops showing (its
        time plus its duration, within ``duration``); None before, or when
        the file does not say.
    endless : bool
        Whether the input may never end: a URL whose container does not say
        how long it lasts and that is not a picture (a live stream).
    seconds_left : float or None
        How long the file lasts from ``start`` on, as its container says
        (None where it does not).
    codec : str
        FFmpeg's name of the video codec (``"h264"``, ``"gif"``, ...).
    """

    def __init__(self, path_or_url, start: float | None = None, duration: float | None = None, *,
                 fps: float | None = None, max_pixels: int = MAX_PIXELS, carry_audio: bool = False,
                 alpha: bool = False, background: tuple[int, int, int] = WHITE):
        for name, value in (("start", start), ("duration", duration)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, numbers.Real)):
                raise TypeError(f"{name} must be a number of seconds, got {value!r}")
        if start is not None and not 0 <= start < math.inf:
            raise ValueError(f"start must be a finite number >= 0 (seconds), got {start}")
        if duration is not None and not duration > 0:
            raise ValueError(f"duration must be > 0 seconds, got {duration}")
        check_max_pixels(max_pixels)
        self.path = os.fspath(path_or_url)
        self._named = "standard input" if self.path == STDIN else f"video '{self.path}'"  # in messages
        if fps is not None:
            check_fps(fps)
            if not is_picture_sequence(self.path):
                raise ValueError(f"fps sets the rate of pictures ('frames/%04d.png', 'frames/*.png'), not of "
                                 f"'{self.path}', which keeps its own times; retime it with "
                                 "livequant.adapters.adapt(source, fps=...)")
        if cause := not_a_file("video", self.path) or sequence_problem(self.path):
            raise SourceError(cause)
        # FFmpeg decodes a first frame to probe the stream; the limit stops it allocating a bomb's frame.
        limit = {"max_pixels": str(max_pixels)}
        apng = animation_kind(self.path) == "apng"
        try:
            self._container = av.open(self.path, options=limit | self._sequence_options(fps),
                                      format="apng" if apng else None,  # an APNG read as PNG: one frame
                                      **_METADATA)
        except av.error.FFmpegError as e:
            raise SourceError(f"cannot open {self._named}: {e.strerror}; {_open_hint(self.path, e)}") from e
        if not self._container.streams.video:
            sound = " (only sound)" if self._container.streams.audio else ""
            self._container.close()
            raise SourceError(f"cannot read {self._named}: it has no video stream{sound}; give a video file")
        self._stream = stream = self._container.streams.video[0]
        context = stream.codec_context
        try:
            if context is None:  # PyAV's answer for a codec FFmpeg cannot decode
                raise SourceError(f"cannot read {self._named}: FFmpeg has no decoder for its video codec; "
                                  "is the file complete, and a common format (H.264, VP9, ...)?")
            size = (context.width, context.height)
            if not all(size):  # the probe's decoder was refused the size (FFV1, raw video): as the container says
                size = _declared_size(self.path, max_pixels)
            check_limit("video", self.path, *size, max_pixels)
        except SourceError:
            self._container.close()
            raise
        self.codec = context.name
        self._gif = self.codec == "gif"  # retimed as browsers show it (`_timed`), so read from its start
        self._seeked = bool(start) and not is_pipe(self.path) and not self._gif  # a pipe is read up to the start
        build = _x264_build(self._container, stream) if self._seeked else None  # it reads a packet
        context.options = limit if build is None else {**limit, "x264_build": str(build)}
        stream.thread_type = "AUTO"
        self._refused = False  # a frame was over max_pixels
        rate = stream.average_rate or stream.guessed_rate
        self.fps = float(rate) if rate else None
        if start is None and duration is None:
            self.frame_count = stream.frames or None
        self.has_audio = bool(self._container.streams.audio)
        self.audio_tracks = len(self._container.streams.audio)
        self.audio = AudioFeed(self._container.streams.audio[0]) if carry_audio and self.has_audio else None
        picture = self._container.format.name == "image2" or self._container.format.name.endswith("_pipe")
        self.endless = "://" in self.path and not self._container.duration and not picture
        lasts = self._container.duration / 1e6 if self._container.duration else None
        self.seconds_left = None if lasts is None else max(lasts - (start or 0.0), 0.0)
        self.end_time = None
        # where the stream's picture ends, as its container says (an MP4's edit list): with B-frames a frame's
        # duration is a decode-time step, not how long it shows
        self._stream_end = (float(((stream.start_time or 0) + stream.duration) * stream.time_base)
                            if stream.duration and stream.time_base else None)
        self.origin = self._container.start_time / 1e6 if self._container.start_time is not None else 0.0
        # when the whole picture ends, as the file's header says: the video's length, else the file's when it
        # holds nothing else (with sound that may outlast the picture); None where it is not said, or not read
        whole = start is None and duration is None and not picture and not is_pipe(self.path)
        said = self._container.duration and not self.has_audio
        lasts = self.origin + self._container.duration / 1e6 if said else None
        self._length = (self._stream_end or _tagged_end(stream) or lasts) if whole else None
        target = None if start is None else self.origin + start  # --start counts from the file's start, as -ss
        if self._seeked:
            try:
                self._seek(target, self.origin)
            except (av.error.FFmpegError, OverflowError) as e:
                length = self._container.duration  # microseconds, where the container says
                self._container.close()
                past = isinstance(e, av.error.FFmpegError) and length and start >= length / 1e6
                if past:  # numbered pictures: FFmpeg refuses a seek past their end
                    raise SourceError(_past_the_end(self._named, start, length)) from e
                raise SourceError(f"cannot seek to {start:g} s in {self._named}: "
                                  f"{getattr(e, 'strerror', None) or 'too far'}; try without --start") from e
        self._packets = None  # the demuxer, once reading starts
        self._closed = False
        self._frames = self._decode(target, duration)
        self._first = next(self._frames, None)
        if self._first is None:
            length = self._container.duration  # microseconds, where the container says
            self.close()
            if self._refused:
                raise SourceError(f"cannot read {self._named}: no frame could be decoded within the limit of "
                                  f"{megapixels(max_pixels)} megapixels; if you trust the file, raise the limit with "
                                  "--max-pixels")
            if self.undecodable and animation_kind(self.path) == "webp":
                raise SourceError(f"cannot read {self._named}: FFmpeg here cannot decode animated WebP; open it "
                                  "with livequant.sources.open_video (an AnimatedWebP, through Pillow)")
            cause = "no frame could be decoded" if self.undecodable else "no frames"
            where = f" from {start:g} s on" if start else ""
            if start and not self.undecodable and length:
                raise SourceError(_past_the_end(self._named, start, length))
            if is_pipe(self.path):
                raise SourceError(f"cannot read {self._named}: {cause}{where}; a pipe cannot be seeked, so MP4 "
                                  "and MOV read from one need their index first (ffmpeg -movflags +faststart): pipe "
                                  "MKV or MPEG-TS instead (ffmpeg ... -f matroska -), or give the file; "
                                  f"{PIPED_ANIMATIONS}")
            raise SourceError(f"cannot read {self._named}: {cause}{where}; is the file complete?")
        first = self._first[0]
        self.size = (first.width, first.height) if _quarter_turns(first) % 2 == 0 else (first.height, first.width)
        self._scaled = False
        self.alpha, self.background = bool(alpha), tuple(background)
        self.has_alpha = self.alpha and _has_alpha(first)
        picture = self.path if apng else first_picture(self.path) if is_picture_sequence(self.path) else None
        self._transform = None  # to sRGB, from the pictures' ICC profile: the first one's for a sequence
        if picture is not None:
            with contextlib.suppress(OSError), open(picture, "rb") as f:
                self._transform = profile_transform(picture, f.read())
        aspect = stream.sample_aspect_ratio or context.sample_aspect_ratio
        if aspect and aspect != 1:  # pixels wider or taller than square (anamorphic video): made square, as
            width = max(1, round(first.width * aspect))  # players show them (FFmpeg: scale=iw*sar:ih)
            self.scale((width, first.height) if _quarter_turns(first) % 2 == 0 else (first.height, width))
        self._transfer = first.color_trc if first.color_trc in hdr.TRANSFERS else None  # HDR: tone-mapped
        if self._transfer is not None:
            side_data = first.side_data
            self._peak = hdr.PEAK_NITS if self._transfer == hdr.HLG else hdr.content_peak(
                *(_bytes_or_none(side_data.get(kind)) for kind in HDR_SIDE_DATA))
            log.info("%s is HDR (%s): tone-mapped to SDR, %.0f nits and above shown white", self._named,
                     hdr.TRANSFERS[self._transfer], self._peak)
        self._wide_gamut = self._transfer is None and first.color_primaries == hdr.BT2020
        if self._wide_gamut:
            log.info("%s is in BT.2020 primaries: converted to BT.709's", self._named)

    def _seek(self, target: float, origin: float) -> None:
        """Seek to the keyframe at or before ``target`` (seconds, the file's clock). Where the demuxer lands
        after it (MPEG-TS and MPEG-PS search by bytes), seek `SEEK_BACK` seconds earlier, then twice as far
        each time, until before ``origin``, the file's start (where a seek to the start itself can land late)."""
        back = 0.0
        while True:
            at = int((target - back) / self._stream.time_base)
            self._container.seek(at, stream=self._stream)
            first = self._first_time()
            if (first is not None and first <= target + 1e-6) or target - back < origin:  # None: no keyframe
                break
            back = max(SEEK_BACK, 2 * back)
        self._container.seek(at, stream=self._stream)  # to read from there again

    def _first_time(self) -> float | None:
        """The time of the first frame decoded from where the demuxer is (None: none before the end)."""
        for packet in self._container.demux(self._stream):
            try:
                frames = packet.decode()
            except av.error.FFmpegError:
                continue
            if frames and frames[0].time is not None:
                return frames[0].time
        return None

    def _sequence_options(self, fps: float | None) -> dict:
        """FFmpeg's options for pictures: the rate (``fps``), and a glob pattern as such or the first number on
        disk of numbered ones (FFmpeg looks only 5 numbers past 0)."""
        if not is_picture_sequence(self.path):
            return {}
        rate = {} if fps is None else {"framerate": repr(fps)}
        if SEQUENCE_NUMBER.search(self.path) is None:
            return {**rate, "pattern_type": "glob"}
        first = first_number(self.path)
        return {**rate, **({} if first is None else {"start_number": str(first)})}

    def scale(self, size) -> None:
        """Scale the frames still to come to ``size`` ``(W, H)`` (upright) in the decoder, with swscale."""
        self.size = (int(size[0]), int(size[1]))
        self._scaled = True

    def _rgb(self, frame: av.VideoFrame) -> np.ndarray:
        """A decoded frame as an RGB array: scaled, alpha flattened on `background`, turned upright, in sRGB."""
        turns = _quarter_turns(frame)
        options = {}
        if self._scaled:
            options = scale_options((frame.width, frame.height), self.size if turns % 2 == 0 else self.size[::-1])
        if _has_alpha(frame):
            rgb = flatten_alpha(frame.to_ndarray(format="rgba", **options), self.background)
        elif self._transfer is not None:
            rgb = hdr.to_sdr(frame.to_ndarray(format="rgb48le", **options), self._transfer, self._peak)
        elif self._wide_gamut:
            rgb = hdr.bt2020_to_bt709(frame.to_ndarray(format="rgb48le", **options))
        else:
            rgb = frame.to_ndarray(format="rgb24", **options)  # may be a padded, strided view
        if turns:
            rgb = np.rot90(rgb, turns)
        return to_srgb(np.ascontiguousarray(rgb), self._transform)

    def _split(self, frame: av.VideoFrame) -> tuple[np.ndarray, np.ndarray | None]:
        """A decoded frame as ``(rgb, opaque)`` (`split_alpha`): turned upright, scaled with its alpha
        (`resize_rgba`), split, in sRGB."""
        if not _has_alpha(frame):
            return self._rgb(frame), None
        rgba = np.rot90(frame.to_ndarray(format="rgba"), _quarter_turns(frame))
        if self._scaled:
            rgba = resize_rgba(rgba, self.size)
        rgb, opaque = split_alpha(rgba)
        return to_srgb(rgb, self._transform), opaque

    def _decoded(self):
        packets = frames = 0
        first = last = None  # the times of the first and the last frame decoded
        for packet in self._demuxed():
            # after a seek, packets before the first keyframe give no picture: not damage
            packets += bool(packet.size) and not packet.is_discard and (frames > 0 or not self._seeked)
            try:
                decoded = packet.decode()
            except av.error.FFmpegError as e:
                self._refused |= e.errno == errno.EINVAL  # what the decoder says to a frame over max_pixels
                self.undecodable += 1
                continue
            frames += len(decoded)
            if decoded and decoded[-1].time is not None:
                last = decoded[-1].time
                first = decoded[0].time if first is None else first
            yield from decoded
        # The end: count packets that gave no picture, frames the index promises but the file lacks, and, in a
        # file cut short, those its length promises but it did not show (with B-frames, some before the last)
        lacking = 0
        if self._length is not None and first is not None and self.fps:
            if self._length - last - 1 / self.fps > max(CUT_SHORT_SECONDS, 2 / self.fps):
                lacking = round((self._length - first) * self.fps) - frames
        self.undecodable = max(self.undecodable, max(packets, self.frame_count or 0) - frames, lacking)
        if self._gif and not is_pipe(self.path):  # FFmpeg shows a GIF's last image patched where its data ends
            images, cut_short = whole_gif_images(self.path)
            self.damaged += cut_short and images == frames

    def _demuxed(self):
        """The stream's packets; a read error (a damaged file, a dropped connection) ends them, counted as
        one undecodable frame at least. With `audio`, its packets go there."""
        return (packet for packet in self._read() if packet.stream.index == self._stream.index)

    def _read(self):
        """Packets of the video stream, and of the audio one with `audio`, from where the reading is; the
        audio ones are put in `audio` as they come."""
        if self._packets is None:
            streams = (self._stream,) if self.audio is None else (self._stream, self.audio.stream)
            self._packets = self._container.demux(*streams)
        while True:
            try:
                packet = next(self._packets)
            except StopIteration:
                return
            except av.error.FFmpegError:
                self.undecodable += 1
                return
            if packet.stream.index != self._stream.index and packet.size:
                self.audio.put(packet)
            yield packet

    def _read_sound_until(self, end: float | None) -> None:
        """After the last frame: the sound up to ``end`` (the video's end), which the file may put after it;
        read for at most `AUDIO_READ_ON` seconds of the input past it."""
        if self.audio is None or self.audio.finished:
            return
        if end is not None:
            for packet in self._read():
                if packet.pts is None:
                    continue
                at = float(packet.pts * packet.time_base)
                if (packet.stream.index != self._stream.index and at >= end) or at > end + AUDIO_READ_ON:
                    break
        self.audio.finished = True

    def _timed(self):
        """``(frame, time, until)`` for each decoded frame: ``until`` is when it stops showing, if the file says.

        A GIF's frame of 1/100 s shows for `GIF_SHORT_DELAY_SHOWN`, as browsers show it (FFmpeg does so for
        a delay of 0 only), and the frames after it later.
        """
        late = 0.0  # seconds such GIF frames have added so far
        for index, frame in enumerate(self._decoded()):
            t = (frame.time if frame.time is not None else index / (self.fps or 1.0)) + late
            shows = float(frame.duration * frame.time_base) if frame.duration and frame.time_base else None
            if self._gif and shows is not None and shows < GIF_SHORTEST_DELAY:
                late += GIF_SHORT_DELAY_SHOWN - shows
                if self._stream_end is not None:
                    self._stream_end += GIF_SHORT_DELAY_SHOWN - shows
                shows = GIF_SHORT_DELAY_SHOWN
            yield frame, t, None if shows is None else t + shows

    def _from(self, start):
        """`_timed` from ``start`` on (all of it when None). The frame showing at ``start`` comes first: one
        before it, which shows until the next frame (or its own end, or the stream's), is moved to ``start``;
        if less than half of it is left to show, the next frame is, in its place."""
        timed = self._timed()
        if start is None:
            yield from timed
            return
        before = None  # the last frame before the start, when it starts and when it ends
        for frame, t, until in timed:
            if t >= start - 1e-6:
                if before is not None and t > start + 1e-6:
                    if t - start >= (t - before[1]) / 2:
                        yield before[0], float(start), t
                    else:
                        t = float(start)
                yield frame, t, until
                break
            before = frame, t, until
        else:  # no frame from the start on: the last one may still show then
            ends = [] if before is None else [e for e in (before[2], self._stream_end) if e is not None]
            if ends and min(ends) > start + 1e-6:
                yield before[0], float(start), min(ends)
            return
        yield from ((frame, t, until) for frame, t, until in timed if t >= start - 1e-6)

    def _decode(self, start, duration):
        end = None if duration is None or start is None else start + duration
        last_end = None  # when the last frame yielded stops showing, if the file says
        t = None
        for frame, t, until in self._from(start):
            if end is None and duration is not None:
                end = t + duration
            if end is not None and t >= end - 1e-6:
                last_end = end  # the frame before shows until this one, which starts at the end or later
                break
            self.damaged += frame.is_corrupt  # shown, patched: counted (those before the start are not shown)
            last_end = until
            yield frame, t
        if t is not None and self._stream_end is not None and self._stream_end > t + 1e-6:
            last_end = self._stream_end if last_end is None else min(last_end, self._stream_end)
        self.end_time = last_end if end is None or last_end is None else min(last_end, end)
        self._read_sound_until(self.end_time if self.end_time is not None else t)

    def __iter__(self):
        if self._closed:
            raise SourceError(f"{self._named} was closed; open a new VideoFile to read it")
        if self._first is None:
            raise SourceError(f"{self._named} was read already: a VideoFile is read once; open a new one to "
                              "read it again")
        first, self._first = self._first, None
        for frame, t in itertools.chain([first], self._frames):
            if self.alpha:
                rgb, opaque = self._split(frame)
                yield rgb, t, opaque
            else:
                yield self._rgb(frame), t

    def close(self) -> None:
        """Close the file."""
        self._closed = True
        self._frames.close()
        if self.audio is not None:
            self.audio.finished = True
        self._container.close()


def _has_alpha(frame: av.VideoFrame) -> bool:
    """Whether ``frame``'s pixel format can make a pixel transparent: it has alpha or a palette."""
    return frame.format.has_palette or any(c.is_alpha for c in frame.format.components)


def _bytes_or_none(side_data) -> bytes | None:
    """The bytes of a frame's side data (`av.sidedata.SideData`), or None where it has none of that kind."""
    return None if side_data is None else bytes(side_data)


def _quarter_turns(frame: av.VideoFrame) -> int:
    """Quarter turns (counterclockwise) that make ``frame`` upright, from its rotation metadata."""
    return round(frame.rotation / 90) if frame.rotation else 0


def _x264_build(container, stream) -> int | None:
    """The x264 build named in an H.264 stream's first packet (the SEI x264 writes there), if any.

    FFmpeg's decoder works around the bugs of old x264 builds by this number (4:4:4 before build 151:
    the frames decode to green blocks without it), and a decoder that starts at a seek never sees
    that packet, so it is read first and passed as the decoder's ``x264_build`` option.
    """
    if stream.codec_context.name != "h264":
        return None
    try:
        first = next(container.demux(stream), None)
    except av.error.FFmpegError:
        return None
    found = None if first is None else re.search(rb"x264 - core (\d+)", bytes(first))
    return int(found[1]) if found else None


def _declared_size(path: str, max_pixels: int) -> tuple[int, int]:
    """``(W, H)`` of the first video stream of ``path`` as its container declares it; ``(0, 0)`` where it does
    not say, or the file cannot be opened again.

    Opening a decoder on a stream over ``max_pixels`` sets its size to 0x0, as FFmpeg does while it probes
    codecs whose size only the container holds (FFV1, raw video); here no decoder may open (a
    ``codec_whitelist`` that names none), so the container's size stays. The limit stays too, should one open
    anyway.
    """
    try:
        with av.open(path, options={"max_pixels": str(max_pixels), "codec_whitelist": "none"},
                     **_METADATA) as container:
            context = container.streams.video[0].codec_context
            return context.width, context.height
    except (av.error.FFmpegError, IndexError):
        return 0, 0


def _open_hint(path: str, error: Exception) -> str:
    """What to do about an FFmpeg error opening ``path``."""
    if path == STDIN:
        return ("send a picture or a video into it (MKV, MPEG-TS, or MP4 with its index first: ffmpeg -movflags "
                f"+faststart); {PIPED_ANIMATIONS}")
    if "://" in path and isinstance(error, av.error.InvalidDataError):
        return "what the server sent is not a video FFmpeg reads; check that the URL leads to the video itself"
    if "://" in path and isinstance(error, av.error.HTTPClientError):
        return "check the URL"
    if "://" in path:
        return "check the URL, and that the server is up and reachable"
    if isinstance(error, FileNotFoundError) and (path == "test" or path.isdigit()):
        return (f"the test pattern and cameras are sources of `livequant preview {path} --record out.gif`, which "
                "needs a display; `livequant demo` writes examples with neither")
    if isinstance(error, FileNotFoundError):
        return "check the path"
    if getattr(error, "errno", None) == errno.ELOOP:
        return "the name is a symbolic link that leads back to itself; give the file it should point to"
    return "is it a complete video file?"


def _tagged_end(stream) -> float | None:
    """When ``stream``'s last frame ends, as a Matroska or WebM file's track tag says (``DURATION``,
    ``HH:MM:SS.nnnnnnnnn``, which FFmpeg's muxer writes and a cut leaves in the header); None where none is."""
    hours, _, rest = stream.metadata.get("DURATION", "").partition(":")
    minutes, _, seconds = rest.partition(":")
    try:
        return int(hours) * 3600 + int(minutes) * 60 + float(seconds)
    except ValueError:
        return None
