"""Where frames come from: cameras, video files, still images and a test pattern.

Every source is a context manager and an iterable of ``(frame, time)`` pairs:
``frame`` is an ``(H, W, 3) uint8`` RGB C-contiguous array and ``time`` its
presentation time in seconds. Sources share the attributes ``fps``, ``size``
(``(W, H)``), ``live``, ``frame_count``, ``undecodable``, ``damaged`` and
``path``.
"""

from __future__ import annotations

import collections
import contextlib
import errno
import glob
import io
import itertools
import logging
import math
import numbers
import os
import re
import stat
import struct
import sys
import tempfile
import threading
import time
import warnings
import zlib
from pathlib import Path

import cv2  # before av: PyAV's bundled libxcb loaded first makes OpenCV windows hang (PyAV#978)
import av  # isort: skip
import numpy as np

from livequant import hdr
from livequant.errors import SourceError
from livequant.frames import ALPHA_CUT, WHITE, check_count, check_fps, flatten_alpha, split_alpha, to_rgb8
from livequant.icc import srgb_transform, to_srgb
from livequant.mailbox import END, Mailbox
from livequant.png import SIGNATURE as PNG_SIGNATURE

__all__ = ["AUDIO_READ_ON", "AnimatedWebP", "AudioFeed", "IMAGE_SUFFIXES", "Images", "Looping", "MAX_PIXELS", "Pacer",
           "Reconnecting", "SEQUENCE_NUMBER", "STDIN", "TestPattern", "VideoFile", "Webcam", "c_stderr", "damage_note",
           "is_animated", "is_picture_sequence", "is_pipe", "list_cameras", "loop_count", "open_source", "open_video",
           "read_image", "read_image_alpha", "resize", "resize_opaque", "resize_rgba"]

log = logging.getLogger("livequant")

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm"})
#: The frame number in the name of a picture sequence FFmpeg reads as a video (its image2 demuxer).
SEQUENCE_NUMBER = re.compile(r"%0?\d*d")
MAX_PIXELS = 100_000_000
"""Default limit on the pixels of one picture (100 megapixels, 10000 x 10000): a file claiming more is
refused before it is decoded, so a small malicious file (a decompression bomb) cannot exhaust memory."""
#: The largest ICC profile read from a PNG (profiles are kilobytes; this bounds what a crafted one unpacks to).
MAX_PROFILE_BYTES = 1 << 24
#: The largest chunk read whole when looking for an APNG's or WebP's animation controls (acTL, ANIM: 8 and 6
#: bytes); larger ones (the images) are skipped, so a folder's large still pictures are not read through.
CONTROL_BYTES = 64
#: `av.open`'s arguments for a file's metadata: PyAV before 19 decodes it strictly unless told (a tag in another
#: encoding than UTF-8 failed the open); 19 reads it as UTF-8 with surrogateescape and has no such argument.
_METADATA = {"metadata_errors": "replace"} if int(av.__version__.split(".")[0]) < 19 else {}


def megapixels(pixels: float) -> str:
    """``pixels`` in megapixels as a person reads them: 0.00307, 4.2, 1,600, 3.2e+21."""
    if not math.isfinite(pixels) or pixels >= 1e15:
        return f"{pixels / 1e6:.2g}"
    return f"{pixels / 1e6:,.0f}" if pixels >= 10_000_000 else f"{pixels / 1e6:.3g}"


def _check_limit(kind: str, path, width: int, height: int, max_pixels: int) -> None:
    if width * height > max_pixels:
        raise SourceError(
            f"cannot read {kind} '{path}': it is {width}x{height} pixels ({megapixels(width * height)} megapixels), "
            f"over the limit of {megapixels(max_pixels)} megapixels; if you trust the file, raise the limit with "
            "--max-pixels"
        )


def _check_max_pixels(max_pixels: int) -> None:
    if isinstance(max_pixels, bool) or not isinstance(max_pixels, (int, np.integer)) or max_pixels < 1:
        raise ValueError(f"max_pixels must be a positive integer, got {max_pixels!r}")


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

#: Standard input, as FFmpeg names it (the command line's ``-``).
STDIN = "pipe:0"
#: What the errors for standard input say of animations, which FFmpeg here cannot read from a pipe.
PIPED_ANIMATIONS = "an animated PNG or WebP cannot come through a pipe: give the file"


def is_pipe(path) -> bool:
    """Whether FFmpeg reads ``path`` from a pipe, which can be read once and not seeked: ``pipe:0`` (standard
    input), a named pipe, or a shell's process substitution (``<(...)``, ``/dev/fd/N``)."""
    path = os.fspath(path)
    if path.startswith("pipe:"):
        return True
    try:
        return stat.S_ISFIFO(os.stat(path).st_mode)
    except (OSError, ValueError):
        return False


def is_picture_sequence(path: str) -> bool:
    """Whether ``path`` names pictures that FFmpeg reads as a video: numbered (``frames/%04d.png``) or matched
    by a glob pattern (``frames/*.png``, in name order)."""
    return "://" not in path and Path(path).suffix.lower() in IMAGE_SUFFIXES and (
        SEQUENCE_NUMBER.search(path) is not None or _is_glob(path))


def _is_glob(path: str) -> bool:
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


def _first_number(pattern: str) -> int | None:
    """The lowest number among the files that numbered pictures ``pattern`` names; None if there are none."""
    return min(_numbers(pattern), default=None)


def _sequence_problem(path: str) -> str | None:
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


def _pictures_in(folder: str) -> str | None:
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


def _not_a_file(kind: str, path: str) -> str | None:
    """The cause when ``path`` names no readable regular file (None for a URL or a file that has bytes)."""
    if "://" in path:
        return None
    if os.path.isdir(path):
        pictures = _pictures_in(path) if kind == "video" else None
        also = f", or its pictures as '{pictures}'" if pictures else ""
        return f"cannot read {kind} '{path}': it is a directory; give a file{also}"
    if os.path.isfile(path) and os.path.getsize(path) == 0:
        return f"cannot read {kind} '{path}': the file is empty (0 bytes)"
    if os.path.isfile(path) and (pages := _tiff_pages(path)) > 1:  # (not a pipe: that would read from it)
        return (f"cannot read {kind} '{path}': it is a TIFF of {pages} pages, and a picture file is one picture "
                "to livequant; save the pages as pictures of their own (page-%03d.png) and give those")
    return None


def _tiff_pages(path: str) -> int:
    """The pages (images) of the TIFF file ``path``; 0 for any other file and one that cannot be read."""
    from PIL import Image

    try:
        with open(path, "rb") as f, warnings.catch_warnings():
            if f.read(4) not in (b"II*\0", b"MM\0*"):
                return 0
            warnings.simplefilter("ignore")  # Pillow's on damaged tags: the decoder says what is wrong next
            with Image.open(f) as tiff:
                return getattr(tiff, "n_frames", 1)
    except Exception:  # noqa: BLE001 - a damaged file, in whatever way Pillow's parser fails on it
        return 0


def _past_the_end(named: str, start: float, length: int) -> str:
    """The message for a ``start`` (seconds) at or past the end of ``named``, which lasts ``length`` microseconds."""
    return (f"cannot read {named}: no frames from {start:g} s on (it lasts {length / 1e6:.2f} s); start earlier, "
            "or check that the file is complete")


def damage_note(undecodable: int, damaged: int) -> str:
    """What a user is told of a source's ``undecodable`` and ``damaged`` frames ("" when there are none)."""
    said = []
    if undecodable:
        said.append("1 frame could not be decoded and was skipped" if undecodable == 1 else
                    f"{undecodable} frames could not be decoded and were skipped")
    if damaged:
        said.append("1 frame had decoding errors and is shown as the decoder patched it" if damaged == 1 else
                    f"{damaged} frames had decoding errors and are shown as the decoder patched them")
    return f"{' and '.join(said)}; the input may be damaged" if said else ""


class _Source:
    """Defaults shared by the sources; ``close`` releases what the source holds."""

    fps: float | None = None
    size: tuple[int, int] | None = None
    live = False
    frame_count: int | None = None
    undecodable = 0
    damaged = 0
    path: object = None

    def __enter__(self):
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def close(self) -> None:
        """Release the device or file; iteration ends."""


@contextlib.contextmanager
def quiet_opencv():
    """Silence OpenCV's log lines while probing devices that may not exist, or formats it may not encode."""
    level = cv2.utils.logging.getLogLevel()
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
    try:
        yield
    finally:
        cv2.utils.logging.setLogLevel(level)


@contextlib.contextmanager
def c_stderr():
    """Collect what C libraries (libpng, libjpeg, libxcb) print on file descriptor 2 meanwhile.

    Yields a list that receives the text once the block ends; nothing is collected where fd 2 is closed.
    """
    said: list[str] = []
    try:
        saved = os.dup(2)
    except OSError:
        yield said
        return
    if sys.stderr is not None:
        sys.stderr.flush()
    with tempfile.TemporaryFile() as caught:
        os.dup2(caught.fileno(), 2)
        try:
            yield said
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            caught.seek(0)
            said.append(caught.read().decode(errors="replace"))


def list_cameras(max_index: int = 10) -> list[int]:
    """Return the camera indices in ``0 .. max_index - 1`` that can be opened."""
    found = []
    for index in range(max_index):
        with quiet_opencv():
            cap = cv2.VideoCapture(index)
            if cap.isOpened():
                found.append(index)
            cap.release()
    return found


class Webcam(_Source):
    """Frames from a camera (or anything ``cv2.VideoCapture`` opens), newest first.

    A reader thread grabs frames as fast as the device delivers them into a
    keep-newest `~livequant.mailbox.Mailbox` of one, so a slow consumer never
    sees stale frames; ``dropped`` counts the frames replaced before anyone
    read them.

    Parameters
    ----------
    index_or_path : int or str
        Camera index, or a device path, URL or file for ``cv2.VideoCapture``.
    size : (int, int), optional
        Requested ``(W, H)``; the device may pick another, see ``.size``.
    fps : float, optional
        Requested frame rate.
    timeout : float
        Seconds without a new frame after which iteration raises `SourceError`.
    """

    live = True

    def __init__(self, index_or_path=0, size=None, fps=None, *, timeout: float = 2.0):
        if isinstance(index_or_path, os.PathLike):
            index_or_path = os.fspath(index_or_path)
        if isinstance(index_or_path, bool) or not isinstance(index_or_path, (int, np.integer, str)):
            raise TypeError(f"index_or_path must be a camera index (an int) or a device path or URL, got "
                            f"{index_or_path!r}")
        if not isinstance(index_or_path, str) and index_or_path < 0:  # OpenCV crashes on some
            raise ValueError(f"camera index must be 0 or more, got {index_or_path}")
        self.path = index_or_path
        self._name = f"camera {index_or_path}" if not isinstance(index_or_path, str) else f"camera '{index_or_path}'"
        with quiet_opencv():
            cap = cv2.VideoCapture(index_or_path)
        if not cap.isOpened():
            raise SourceError(
                f"cannot open {self._name}: no such device; list cameras with `livequant preview --list-cameras`, "
                "or play the built-in test pattern with `livequant preview test`"
            )
        if size is not None:
            cap.set(cv2.CAP_PROP_FRAME_WIDTH, size[0])
            cap.set(cv2.CAP_PROP_FRAME_HEIGHT, size[1])
        if fps is not None:
            cap.set(cv2.CAP_PROP_FPS, fps)
        self.size = (int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)))
        self.fps = cap.get(cv2.CAP_PROP_FPS) or None
        self._cap = cap
        self._timeout = timeout
        self._frames = Mailbox(1, keep_newest=True)
        self._thread = None

    @property
    def dropped(self) -> int:
        """Frames replaced by a newer one before they were read."""
        return self._frames.dropped

    def _stalled(self) -> SourceError:
        return SourceError(
            f"{self._name} stopped delivering frames (nothing for {self._timeout:g} s); "
            "check that it is connected and not used by another program"
        )

    def _read(self, t0: float):
        """``(frame, time)`` as the device delivers them, until `close` or a stall of ``timeout`` seconds."""
        last_ok = time.monotonic()
        while not self._frames.cancelled:
            ok, bgr = self._cap.read()
            now = time.monotonic()
            if ok:
                last_ok = now
                yield cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), now - t0
            elif now - last_ok > self._timeout:
                raise self._stalled()
            else:
                time.sleep(0.01)

    def __iter__(self):
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._frames.fill, args=(self._read(time.monotonic()),), name="livequant-webcam", daemon=True
            )
            self._thread.start()
        while True:
            try:
                item = self._frames.get(self._timeout)
            except TimeoutError:  # the device blocks in read()
                raise self._stalled() from None
            if item is END:  # closed
                return
            yield item

    def close(self) -> None:
        """Stop the reader thread (joining it) and release the device."""
        self._frames.cancel()
        if self._thread is not None:
            self._thread.join(self._timeout + 1.0)
        if self._thread is None or not self._thread.is_alive():
            self._cap.release()


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


class VideoFile(_Source):
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
        _check_max_pixels(max_pixels)
        self.path = os.fspath(path_or_url)
        self._named = "standard input" if self.path == STDIN else f"video '{self.path}'"  # in messages
        if fps is not None:
            check_fps(fps)
            if not is_picture_sequence(self.path):
                raise ValueError(f"fps sets the rate of pictures ('frames/%04d.png', 'frames/*.png'), not of "
                                 f"'{self.path}', which keeps its own times; retime it with "
                                 "livequant.adapters.adapt(source, fps=...)")
        if cause := _not_a_file("video", self.path) or _sequence_problem(self.path):
            raise SourceError(cause)
        # FFmpeg decodes a first frame to probe the stream; the limit stops it allocating a bomb's frame.
        limit = {"max_pixels": str(max_pixels)}
        apng = _animation(self.path) == "apng"
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
            _check_limit("video", self.path, *size, max_pixels)
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
            if self.undecodable and _animation(self.path) == "webp":
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
        picture = self.path if apng else _first_picture(self.path) if is_picture_sequence(self.path) else None
        self._transform = None  # to sRGB, from the pictures' ICC profile: the first one's for a sequence
        if picture is not None:
            with contextlib.suppress(OSError), open(picture, "rb") as f:
                self._transform = _profile_transform(picture, f.read())
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
        first = _first_number(self.path)
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
            options = _scale_options((frame.width, frame.height), self.size if turns % 2 == 0 else self.size[::-1])
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
            images, cut_short = _whole_gif_images(self.path)
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


def _scale_options(old: tuple[int, int], new: tuple[int, int]) -> dict:
    """swscale options for `av.VideoFrame.reformat` from size ``old`` to ``new`` (each ``(W, H)``): area
    averaging when shrinking, bilinear when enlarging, nothing when the size stays."""
    if tuple(old) == tuple(new):
        return {}
    shrink = new[0] * new[1] < old[0] * old[1]
    return {"width": new[0], "height": new[1], "interpolation": "AREA" if shrink else "BILINEAR"}


def resize(frame: np.ndarray, size) -> np.ndarray:
    """``frame`` resized to ``size`` ``(W, H)`` with swscale (area averaging when shrinking, else bilinear).

    Returns
    -------
    (H, W, 3) uint8 ndarray
        ``frame`` itself when it already has that size.
    """
    options = _scale_options((frame.shape[1], frame.shape[0]), size)
    if not options:
        return frame
    return np.ascontiguousarray(av.VideoFrame.from_ndarray(frame, format="rgb24").to_ndarray(**options))


def resize_rgba(rgba: np.ndarray, size) -> np.ndarray:
    """An ``(H, W, 4) uint8`` RGBA image resized to ``size`` ``(W, H)`` as `resize` does, with its colours
    weighed by their alpha (premultiplied), so that a transparent pixel's colour never bleeds into an edge."""
    old = (rgba.shape[1], rgba.shape[0])
    if tuple(old) == tuple(size):
        return rgba
    shrink = size[0] * size[1] < old[0] * old[1]
    alpha = rgba[..., 3:].astype(np.float32)
    weighed = np.concatenate([rgba[..., :3] * alpha, alpha], axis=2)
    scaled = cv2.resize(weighed, tuple(size), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
    coverage = scaled[..., 3:]
    colours = scaled[..., :3] / np.maximum(coverage, 1e-6)
    return np.ascontiguousarray(np.dstack([colours, coverage]).round().clip(0, 255).astype(np.uint8))


def resize_opaque(opaque: np.ndarray | None, size) -> np.ndarray | None:
    """A frame's ``opaque`` mask (`livequant.frames.split_alpha`) resized to ``size`` ``(W, H)`` as `resize`
    resizes the frame: a pixel shows where at least `ALPHA_CUT` of it did."""
    if opaque is None:
        return None
    options = _scale_options((opaque.shape[1], opaque.shape[0]), size)
    if not options:
        return opaque
    coverage = av.VideoFrame.from_ndarray(opaque.view(np.uint8) * np.uint8(255), format="gray").to_ndarray(**options)
    shown = coverage >= ALPHA_CUT
    return None if shown.all() else np.ascontiguousarray(shown)


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


def _image_size(path: str) -> tuple[int, int] | None:
    """``(W, H)`` from the header of a PNG, JPEG, BMP, WebP, TIFF or PNM file; None for other formats."""
    with open(path, "rb") as f:
        head = f.read(32)
        if head.startswith(PNG_SIGNATURE) and head[12:16] == b"IHDR":
            return struct.unpack(">II", head[16:24])
        if head.startswith(b"BM") and len(head) >= 26:
            width, height = struct.unpack("<ii", head[18:26])
            return abs(width), abs(height)
        if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
            kind, body = head[12:16], head[20:30]
            if kind == b"VP8X":
                return 1 + int.from_bytes(body[4:7], "little"), 1 + int.from_bytes(body[7:10], "little")
            if kind == b"VP8L":
                bits = int.from_bytes(body[1:5], "little")
                return 1 + (bits & 0x3FFF), 1 + (bits >> 14 & 0x3FFF)
            if kind == b"VP8 ":
                width, height = struct.unpack("<HH", body[6:10])
                return width & 0x3FFF, height & 0x3FFF
        if head[:1] == b"P" and head[1:2] in b"123456" and len(head) > 2:
            numbers = re.findall(rb"\d+", re.sub(rb"#[^\n]*", b"", head[2:] + f.read(480)))
            return (int(numbers[0]), int(numbers[1])) if len(numbers) >= 2 else None
        if head[:4] in (b"II*\0", b"MM\0*"):
            order = "<" if head[0] == ord("I") else ">"
            f.seek(struct.unpack(order + "I", head[4:8])[0])
            count = struct.unpack(order + "H", f.read(2) or b"\0\0")[0]
            found = {}
            for entry in struct.iter_unpack(order + "HHI4s", f.read(12 * count)):
                tag, kind, _, value = entry
                if tag in (256, 257):
                    found[tag] = struct.unpack(order + ("H" if kind == 3 else "I"), value[: 2 if kind == 3 else 4])[0]
            return (found[256], found[257]) if len(found) == 2 else None
        if head.startswith(b"\xff\xd8"):
            f.seek(2)
            while (marker := f.read(4)) and len(marker) == 4 and marker[0] == 0xFF:
                length = int.from_bytes(marker[2:4], "big")
                if length < 2:  # a broken segment; OpenCV will say so
                    return None
                if 0xC0 <= marker[1] <= 0xCF and marker[1] not in (0xC4, 0xC8, 0xCC):  # a start-of-frame segment
                    height, width = struct.unpack(">xHH", f.read(5))
                    return width, height
                f.seek(length - 2, os.SEEK_CUR)
    return None


def _profile_transform(path: str, data: bytes):
    """The conversion to sRGB of the ICC profile that the picture file ``path``'s bytes ``data`` embed
    (`livequant.icc.srgb_transform`); None where there is none or nothing to convert, and, with a warning, where
    the profile cannot be read."""
    profile = _embedded_profile(data)
    if profile is None:
        return None
    try:
        return srgb_transform(profile)
    except ValueError as e:
        log.warning("image '%s' embeds an ICC profile, but %s; its colours are taken as sRGB", path, e)
        return None


def _first_picture(path: str) -> str | None:
    """The first file of a picture sequence (`is_picture_sequence`) in the order FFmpeg plays it; None if none."""
    if SEQUENCE_NUMBER.search(path) is None:
        return min(glob.glob(path), default=None)
    first = _first_number(path)
    return None if first is None else _numbered(path, first)


def _embedded_profile(data: bytes) -> bytes | None:
    """The ICC profile a PNG (iCCP chunk), WebP (ICCP chunk), JPEG (APP2 segments) or TIFF (tag 34675) file's
    bytes ``data`` embed; None if none, or if it is damaged."""
    if data[:4] in (b"II*\0", b"MM\0*"):
        return _tiff_profile(data)
    if data[:2] == b"\xff\xd8":
        parts = {body[12]: body[14:] for marker, body in _jpeg_segments(data)
                 if marker == 0xE2 and body[:12] == b"ICC_PROFILE\0" and len(body) > 14}  # sequence number, count
        return b"".join(parts[n] for n in sorted(parts)) or None
    for kind, body in _chunks(data):
        if kind == b"ICCP":
            return body
        if kind == b"iCCP":  # a name, NUL, the compression method (0: zlib), the compressed profile
            named = body.find(b"\0")
            if named < 0 or body[named + 1:named + 2] != b"\0":
                return None
            try:
                return zlib.decompressobj().decompress(body[named + 2:], MAX_PROFILE_BYTES) or None
            except zlib.error:
                return None
        if kind in (b"IDAT", b"VP8 ", b"VP8L", b"ANMF"):  # the picture: a profile comes before it
            return None
    return None


def _jpeg_segments(data: bytes):
    """``(marker, body)`` of each segment of a JPEG file's bytes before its first scan."""
    at = 2
    while at + 4 <= len(data) and data[at] == 0xFF:
        marker = data[at + 1]
        if marker == 0xFF:  # a fill byte
            at += 1
            continue
        if marker in (0xD9, 0xDA):  # the end, or the first scan: no header segment follows
            return
        length = struct.unpack(">H", data[at + 2:at + 4])[0]
        if length < 2:
            return
        yield marker, data[at + 4:at + 2 + length]
        at += 2 + length


def _exif_orientation(data: bytes) -> int:
    """The EXIF orientation (1-8; 1: as stored) of a PNG (its eXIf chunk) or WebP (its EXIF chunk) file's
    bytes; 1 where there is none or it cannot be read."""
    return next((_tiff_orientation(body) for kind, body in _chunks(data) if kind in (b"eXIf", b"EXIF")), 1)


def _is_chunked(head: bytes) -> bool:
    """Whether a file that starts with ``head`` (12 bytes or more) is a PNG or a WebP: `_chunks` reads it."""
    return head[:8] == PNG_SIGNATURE or (head[:4] == b"RIFF" and head[8:12] == b"WEBP")


def _chunks(data: bytes):
    """``(type, data)`` of each chunk of a PNG or WebP file's bytes; none for other files."""
    return _file_chunks(io.BytesIO(data), data[:12]) if _is_chunked(data) else iter(())


def _file_chunks(f, head: bytes, most: int | None = None):
    """``(type, data)`` of each chunk of an open PNG or WebP file that starts with ``head``: PNG's length, type,
    data, CRC; RIFF's type, length, data padded to even. The data of a chunk over ``most`` bytes is skipped
    (``b""``): an animation's controls are a few bytes, its images are not read."""
    png = head[:8] == PNG_SIGNATURE
    f.seek(8 if png else 12)
    while len(header := f.read(8)) == 8:
        if png:
            length, kind, after = struct.unpack(">I", header[:4])[0], header[4:], 4
        else:
            kind, length = header[:4], struct.unpack("<I", header[4:])[0]
            after = length & 1
        if most is None or length <= most:
            body = f.read(length)
            yield kind, body
            f.seek(after, os.SEEK_CUR)
        else:
            yield kind, b""
            f.seek(length + after, os.SEEK_CUR)


def _tiff_orientation(exif: bytes) -> int:
    """Tag 0x0112 of the first directory of EXIF data (a TIFF header, after "Exif\\0\\0" where written); 1 if
    absent or malformed."""
    exif = exif[6:] if exif[:6] == b"Exif\x00\x00" else exif
    entry = _tiff_entry(exif, 0x0112)
    value = None if entry is None else struct.unpack(entry[0] + "H", entry[2][:2])[0]
    return value if value is not None and 1 <= value <= 8 else 1


def _tiff_profile(tiff: bytes) -> bytes | None:
    """The ICC profile of a TIFF file's bytes (tag 34675 of its first directory: the profile's bytes, at an
    offset from the file's start); None if none, or if it is malformed."""
    entry = _tiff_entry(tiff, 34675)
    if entry is None:
        return None
    order, count, value = entry
    at = struct.unpack(order + "I", value)[0]
    return tiff[at:at + count] if count > 4 and at + count <= len(tiff) else None


def _tiff_entry(tiff: bytes, tag: int) -> tuple[str, int, bytes] | None:
    """``(byte order, count, value or offset)`` of ``tag`` in the first directory of TIFF data; None if it is
    absent or the data is malformed."""
    order = {b"II": "<", b"MM": ">"}.get(tiff[:2])
    if order is None:
        return None
    try:
        directory = struct.unpack(order + "I", tiff[4:8])[0]
        for n in range(struct.unpack(order + "H", tiff[directory:directory + 2])[0]):
            found, _, count = struct.unpack(order + "HHI", tiff[directory + 2 + 12 * n:directory + 10 + 12 * n])
            value = tiff[directory + 10 + 12 * n:directory + 14 + 12 * n]
            if found == tag and len(value) == 4:
                return order, count, value
    except struct.error:  # cut short
        return None
    return None


def _upright(image: np.ndarray, orientation: int) -> np.ndarray:
    """``image`` (rows first) turned and flipped as its EXIF ``orientation`` (1-8) says it is shown."""
    turned = {1: image, 2: image[:, ::-1], 3: image[::-1, ::-1], 4: image[::-1], 5: np.swapaxes(image, 0, 1),
              6: np.rot90(image, -1), 7: np.rot90(image, 2).swapaxes(0, 1), 8: np.rot90(image, 1)}
    return np.ascontiguousarray(turned[orientation])


def read_image(path: str, max_pixels: int = MAX_PIXELS, *, opaque: bool = False, managed: bool = True,
               background: tuple[int, int, int] = WHITE) -> np.ndarray:
    """Decode the picture in ``path`` as an ``(H, W, 3) uint8`` RGB frame, refusing one over ``max_pixels``
    (checked in the header before decoding where the format allows). Transparency is flattened on
    ``background``; with ``opaque``, the ``(N, 3)`` colours of the pixels that are not wholly transparent
    instead. With ``managed``, colours tagged with another RGB profile than sRGB are converted to sRGB
    (`livequant.icc`); without, the values are taken as they are (a palette file's colours, as an indexed PNG's
    table is).

    Raises
    ------
    SourceError
        If the file is missing, damaged, not a picture OpenCV reads, or over the limit.
    """
    image, transform = _decoded_image(path, max_pixels, managed)
    rgb = to_srgb(to_rgb8(image, background), transform)
    if not opaque:
        return rgb
    return rgb[image[..., 3] > 0] if image.ndim == 3 and image.shape[2] == 4 else rgb.reshape(-1, 3)


def read_image_alpha(path: str, max_pixels: int = MAX_PIXELS, size=None) -> tuple[np.ndarray, np.ndarray | None]:
    """Decode the picture in ``path`` as `read_image` does, keeping its transparency: ``(rgb, opaque)`` as
    `livequant.frames.split_alpha` gives them (``opaque`` None for a picture without alpha), resized to
    ``size`` ``(W, H)`` if given (`resize_rgba`)."""
    image, transform = _decoded_image(path, max_pixels, managed=True)
    if not (image.ndim == 3 and image.shape[2] == 4):
        rgb = to_srgb(to_rgb8(image), transform)
        return (rgb if size is None else resize(rgb, size)), None
    rgba = np.concatenate([to_rgb8(image[..., :3]), to_rgb8(image[..., 3])[..., :1]], axis=2)
    rgb, shown = split_alpha(rgba if size is None else resize_rgba(rgba, size))
    return to_srgb(rgb, transform), shown


def _tagged_end(stream) -> float | None:
    """When ``stream``'s last frame ends, as a Matroska or WebM file's track tag says (``DURATION``,
    ``HH:MM:SS.nnnnnnnnn``, which FFmpeg's muxer writes and a cut leaves in the header); None where none is."""
    hours, _, rest = stream.metadata.get("DURATION", "").partition(":")
    minutes, _, seconds = rest.partition(":")
    try:
        return int(hours) * 3600 + int(minutes) * 60 + float(seconds)
    except ValueError:
        return None


def _decoded_image(path: str, max_pixels: int, managed: bool):
    """``(image, transform)``: the picture in ``path`` as OpenCV decodes it, upright, channels in RGB(A) order,
    and the transform of its colours to sRGB (None: none, or not ``managed``); see `read_image`."""
    if cause := _not_a_file("image", path):
        raise SourceError(cause)
    if not os.path.isfile(path):
        raise SourceError(f"cannot read image '{path}': no such file; check the path")
    try:
        size = _image_size(path)
    except struct.error:
        raise SourceError(f"cannot read image '{path}': its header is cut short; is the file complete?") from None
    except OSError as e:
        raise SourceError(f"cannot read image '{path}': {e.strerror or e}; check that it is a readable file") from e
    if size is not None:
        _check_limit("image", path, *size, max_pixels)
    try:
        with open(path, "rb") as f:  # OpenCV gets bytes, never the name (which it mishandles unless UTF-8)
            raw = f.read()
        data = np.frombuffer(raw, np.uint8)
    except OSError as e:
        raise SourceError(f"cannot read image '{path}': {e.strerror or e}; check that it is a readable file") from e
    # EXIF orientation is applied, as FFmpeg does for `transcode`: by OpenCV for a JPEG (no alpha), here for the
    # others, which are decoded unchanged to keep their alpha (OpenCV then ignores it)
    jpeg = raw[:2] == b"\xff\xd8"
    flags = cv2.IMREAD_ANYDEPTH | cv2.IMREAD_ANYCOLOR if jpeg else cv2.IMREAD_UNCHANGED
    try:  # the decoders' own messages become the cause in the one-line error, or a warning
        with quiet_opencv(), c_stderr() as said:
            image = cv2.imdecode(data, flags)
    except cv2.error as e:  # OpenCV's own size limit, a broken header
        raise SourceError(f"cannot read image '{path}': OpenCV refused it ({e.err}); is it a valid image?") from e
    last = said[0].strip().splitlines()[-1] if said and said[0].strip() else None
    if image is None:
        cause = f"it is damaged ({last})" if last else "not an image, or a format OpenCV cannot read"
        raise SourceError(f"cannot read image '{path}': {cause}; give a complete PNG, JPEG, BMP, TIFF or WebP file")
    if last:
        log.warning("image '%s' may be damaged: %s", path, last)
    if not jpeg:
        image = _upright(image, _exif_orientation(raw))
    _check_limit("image", path, image.shape[1], image.shape[0], max_pixels)
    if image.ndim == 3 and image.shape[2] in (3, 4):
        image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB if image.shape[2] == 3 else cv2.COLOR_BGRA2RGBA)
    return image, _profile_transform(path, raw) if managed else None


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
            if not _is_chunked(head):
                return None
            for kind, body in _file_chunks(f, head, CONTROL_BYTES):
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
    return _animation(path) is not None


def _animation(path) -> str | None:
    """``"gif"``, ``"apng"`` or ``"webp"`` for an animated picture file; None for any other file, one that
    cannot be read, and a pipe (which this would read from, or wait on for a writer)."""
    if "://" in os.fspath(path) or is_pipe(path):
        return None
    try:
        with open(path, "rb") as f:
            head = f.read(13)
            if head[:6] in (b"GIF87a", b"GIF89a"):
                return "gif" if _gif_images(f, head, most=2)[0] > 1 else None
            if not _is_chunked(head):
                return None
            frames = 0
            for kind, body in _file_chunks(f, head, CONTROL_BYTES):
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


def _whole_gif_images(path: str) -> tuple[int, bool]:
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


class Images(_Source):
    """One still image or a sequence of them, shown at ``fps``.

    Parameters
    ----------
    paths_or_glob : str, os.PathLike or sequence of them
        A file, a glob pattern (``"frames/*.png"``, sorted by name) or a list of files.
        16-bit images are scaled to 8 bits.
    fps : float
        Rate at which the sequence plays: frame ``i`` has time ``i / fps``.
    max_pixels : int
        Refuse an image with more pixels than this (`SourceError`); the header
        of PNG, JPEG, BMP, WebP, TIFF and PNM files is checked before decoding.
    repeat : bool
        Start again after the last image, for ever (a live preview of a still
        keeps showing it, so its keys act on it); ``frame_count`` is then None.
    alpha : bool
        Keep transparency: yield ``(frame, time, opaque)`` triples (`read_image_alpha`).
    background : (int, int, int)
        The colour transparent pixels are flattened on without ``alpha``.

    Attributes
    ----------
    has_alpha : bool
        With ``alpha``, whether the first picture has transparent pixels.
    """

    def __init__(self, paths_or_glob, fps: float = 10.0, *, max_pixels: int = MAX_PIXELS, repeat: bool = False,
                 alpha: bool = False, background: tuple[int, int, int] = WHITE):
        check_fps(fps)
        _check_max_pixels(max_pixels)
        self._max_pixels = max_pixels
        if isinstance(paths_or_glob, (str, os.PathLike)):
            self.path = os.fspath(paths_or_glob)
            pattern = _is_glob(self.path)
            paths = sorted(glob.glob(self.path)) if pattern else [self.path]
            if not paths:
                raise SourceError(f"no images match '{self.path}'; check the pattern")
        else:
            paths = [os.fspath(p) for p in paths_or_glob]
            if not paths:
                raise ValueError("paths_or_glob is an empty sequence; give at least one image")
            self.path = paths[0]
        self._paths = paths
        self.fps = float(fps)
        self.repeat = bool(repeat)
        self.frame_count = None if repeat else len(paths)
        self.alpha, self.background = bool(alpha), tuple(background)
        self._size = None  # resized to, with alpha
        self._first = self._read(paths[0])
        self.has_alpha = self.alpha and self._first[1] is not None
        self.size = (self._first[0].shape[1], self._first[0].shape[0])

    def scale(self, size) -> None:
        """Scale the pictures to ``size`` ``(W, H)``: with ``alpha``, with their transparency (`resize_rgba`);
        without, as `resize` does."""
        self.size = (int(size[0]), int(size[1]))
        self._size = self.size
        self._first = None  # read again, scaled

    def _read(self, path: str) -> tuple[np.ndarray, np.ndarray | None]:
        if self.alpha:
            return read_image_alpha(path, self._max_pixels, self._size)
        rgb = read_image(path, self._max_pixels, background=self.background)
        return (rgb if self._size is None else resize(rgb, self._size)), None

    def __iter__(self):
        for i in itertools.count() if self.repeat else range(len(self._paths)):
            n = i % len(self._paths)
            if n == 0 and self._first is None:
                self._first = self._read(self._paths[0])
            rgb, opaque = self._first if n == 0 else self._read(self._paths[n])
            yield (rgb, i / self.fps, opaque) if self.alpha else (rgb, i / self.fps)


class AnimatedWebP(_Source):
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

        _check_max_pixels(max_pixels)
        self.path = os.fspath(path)
        try:
            self._image = Image.open(self.path)
        except (OSError, UnidentifiedImageError) as e:
            raise SourceError(f"cannot read animation '{self.path}': {e}; is the file complete?") from None
        try:
            _check_limit("animation", self.path, *self._image.size, max_pixels)
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


def open_video(path, **kw) -> VideoFile | AnimatedWebP:
    """A `VideoFile` of ``path``, or for an animated WebP file (which FFmpeg here cannot decode) an
    `AnimatedWebP`: keyword arguments go to it (``fps`` and ``carry_audio`` only to a `VideoFile`)."""
    if _animation(path) != "webp":
        return VideoFile(path, **kw)
    kw.pop("carry_audio", None)
    kw.pop("fps", None)
    return AnimatedWebP(path, **kw)


class Pacer:
    """Waits until each frame's time comes in real time; `stop` ends a wait at once.

    The first frame's time is now; a later time ``t`` comes ``t`` minus the
    first's seconds after it.
    """

    def __init__(self):
        self._stopped = threading.Event()
        self._clock = None
        self._last: float | None = None  # the time last waited for

    def wait(self, t: float) -> bool:
        """Sleep until time ``t`` of the stream comes; False if `stop` was called (at once, not at ``t``)."""
        now = time.monotonic()
        self._clock = now - t if self._clock is None else self._clock
        self._last = t
        return not self._stopped.wait(max(0.0, self._clock + t - now))

    def resync(self) -> None:
        """The time last waited for comes now: later ones count from here."""
        if self._last is not None:
            self._clock = time.monotonic() - self._last

    def stop(self) -> None:
        """End the wait under way, and every later one, at once."""
        self._stopped.set()


class TestPattern(_Source):
    """A moving synthetic scene, generated in code and cheap to make.

    A precomputed background (hue and brightness gradients, colour bars, fine
    stripes, text) with a few coloured shapes moving over it and a frame counter.

    Parameters
    ----------
    size : (int, int)
        ``(W, H)`` of the frames.
    fps : float
        Frame rate: frame ``i`` has time ``i / fps``.
    frames : int, optional
        Number of frames; endless if None.
    live : bool
        Pace the frames to ``fps`` in real time, like a camera (`stop` ends
        the frames from another thread).
    """

    __test__ = False  # not a pytest test class

    def __init__(self, size=(1280, 720), fps: float = 30.0, frames: int | None = None, live: bool = False):
        if not (isinstance(size, (tuple, list)) and len(size) == 2
                and all(isinstance(n, numbers.Integral) and not isinstance(n, bool) for n in size)):
            raise TypeError(f"size must be (width, height) in whole pixels, got {size!r}")
        w, h = size
        if w < 16 or h < 16:
            raise ValueError(f"size must be at least (16, 16), got {size}")
        check_fps(fps)
        check_count(frames, "frames")
        self.path = "test"
        self.size = (int(w), int(h))
        self.fps = float(fps)
        self.frame_count = frames
        self.live = live
        self._background = _background(int(w), int(h))
        self._sprites = _sprites(max(4, h // 8))
        self._pacer = Pacer()

    def _frame(self, t: float, index: int) -> np.ndarray:
        frame = self._background.copy()
        h, w = frame.shape[:2]
        for k, (patch, mask) in enumerate(self._sprites):
            ph, pw = mask.shape
            x = int((w - pw) * (0.5 + 0.45 * np.sin(t * (0.7 + 0.3 * k) + 2.0 * k)))
            y = int((h - ph) * (0.5 + 0.45 * np.cos(t * (0.5 + 0.2 * k) + k)))
            np.copyto(frame[y : y + ph, x : x + pw], patch, where=mask[..., None])
        scale = h / 720
        cv2.putText(frame, f"{index:06d}  {t:7.2f} s", (int(20 * scale), int(60 * scale)),
                    cv2.FONT_HERSHEY_SIMPLEX, 1.2 * scale, (255, 255, 255), max(1, round(2 * scale)), cv2.LINE_AA)
        return frame

    def __iter__(self):
        pacer = self._pacer = Pacer()
        index = 0
        while self.frame_count is None or index < self.frame_count:
            t = index / self.fps
            if self.live and not pacer.wait(t):
                return
            yield self._frame(t, index), t
            index += 1

    def stop(self) -> None:
        """End a live pattern's frames now, from another thread (`livequant.pipeline.run` does when it stops)."""
        self._pacer.stop()


class Looping(_Source):
    """A file played again from its start when it ends, as an animation loops.

    Each play is a new source from ``opener()``. Times never go back: each
    play's frames follow on from when the play before ended (its `end_time`,
    else its last frame's time plus one frame at its rate).

    Parameters
    ----------
    opener : callable
        Returns an open source that ends, such as ``lambda: VideoFile("anim.gif")``; called once here.
    loop : int
        As the sinks' ``loop`` (and an animation's own count, `loop_count`): 0 plays until the stream is closed,
        n > 0 repeats n times (n + 1 plays), -1 plays once.
    """

    def __init__(self, opener, loop: int = 0):
        if isinstance(loop, bool) or not isinstance(loop, int) or loop < -1:
            raise ValueError(f"loop must be 0 (forever), a number of repeats, or -1 (once), got {loop!r}")
        self._opener, self._loop = opener, loop
        self._source = opener()
        self.path, self.size, self.fps = self._source.path, self._source.size, self._source.fps
        self.has_alpha = getattr(self._source, "has_alpha", False)
        self.end_time = None
        self._undecodable = self._damaged = 0
        self._closed = False

    @property
    def undecodable(self) -> int:
        """Frames that could not be decoded, over all plays."""
        return self._undecodable + getattr(self._source, "undecodable", 0)

    @property
    def damaged(self) -> int:
        """Frames the decoder patched over errors, over all plays."""
        return self._damaged + getattr(self._source, "damaged", 0)

    def __iter__(self):
        shift, plays = 0.0, 0
        total = {-1: 1, 0: None}.get(self._loop, self._loop + 1)  # None: until closed
        while True:
            first = last = None
            for frame, t, *opaque in self._source:  # (frame, time) or, keeping transparency, (frame, time, opaque)
                first = t if first is None else first
                last = t
                yield frame, shift + t - first, *opaque
            plays += 1
            if self._closed:
                return
            ended = getattr(self._source, "end_time", None)
            if first is None or plays == total:  # a play of no frames would loop for nothing
                self.end_time = None if ended is None or first is None else shift + ended - first
                return
            if ended is None or ended <= last:
                ended = last + 1 / (self.fps or 25.0)
            shift += ended - first
            self._undecodable += getattr(self._source, "undecodable", 0)
            self._damaged += getattr(self._source, "damaged", 0)
            self._source.close()
            self._source = self._opener()

    def close(self) -> None:
        """Close the play in progress; no other starts."""
        self._closed = True
        self._source.close()


class Reconnecting(_Source):
    """A live source reopened when it fails, rather than ending the stream.

    When the source raises `SourceError` (a camera unplugged, a stream cut),
    it is closed and ``opener()`` is tried again every ``interval`` seconds, up
    to ``attempts`` times; each try is logged (logger ``"livequant"``, shown on
    stderr). Meanwhile the last frame is repeated, so a preview window stays
    responsive. Times never go back: from the last frame's time they advance
    with the wall clock while the source is away, and the reopened source's
    times follow on. A source that ends without an error ends the stream.

    Parameters
    ----------
    opener : callable
        Returns an open source, such as ``lambda: Webcam(0)``; called once here.
    attempts : int
        Tries after each failure before giving up (then `SourceError`).
    interval : float
        Seconds between tries.
    """

    live = True

    def __init__(self, opener, *, attempts: int = 30, interval: float = 1.0):
        if isinstance(attempts, bool) or not isinstance(attempts, int) or attempts < 1:
            raise ValueError(f"attempts must be a positive integer, got {attempts!r}")
        if not interval > 0:
            raise ValueError(f"interval must be > 0 seconds, got {interval!r}")
        self._opener, self._attempts, self._interval = opener, attempts, interval
        self._source = opener()
        self.path, self.size, self.fps = self._source.path, self._source.size, self._source.fps
        self.reconnects = 0
        self._dropped = 0

    @property
    def dropped(self) -> int:
        """Frames the cameras replaced before they were read, over all connections."""
        return self._dropped + getattr(self._source, "dropped", 0)

    def __iter__(self):
        offset, last, last_time = 0.0, None, 0.0
        while self._source is not None:
            try:
                for frame, t in self._source:
                    last, last_time = frame, offset + t
                    yield frame, last_time
                return
            except SourceError as error:
                lost = error
            lost_at = time.monotonic()
            self._dropped += getattr(self._source, "dropped", 0)
            self._source.close()
            self._source = None
            for attempt in range(1, self._attempts + 1):
                log.warning("%s; reconnecting (try %d of %d)", lost, attempt, self._attempts)
                wake = time.monotonic() + self._interval
                while (now := time.monotonic()) < wake:
                    if last is not None:
                        yield last, last_time + (now - lost_at)
                    time.sleep(min(0.1, max(0.0, wake - now)))
                try:
                    self._source = self._opener()
                except SourceError as error:
                    lost = error
                    continue
                self.reconnects += 1
                log.warning("reconnected (try %d of %d)", attempt, self._attempts)
                offset = last_time + (time.monotonic() - lost_at)
                break
            else:
                raise SourceError(f"{lost}; gave up after {self._attempts} tries to reconnect")

    def close(self) -> None:
        """Close the source in use."""
        if self._source is not None:
            self._source.close()


def _background(w: int, h: int) -> np.ndarray:
    """Gradients, colour bars, fine stripes, a gray ramp and text, as an RGB frame."""
    x = np.linspace(0.0, 1.0, w, dtype=np.float32)
    y = np.linspace(0.0, 1.0, h, dtype=np.float32)[:, None]
    hsv = np.empty((h, w, 3), np.float32)
    hsv[..., 0] = 300.0 * x
    hsv[..., 1] = 0.25 + 0.6 * y
    hsv[..., 2] = 0.95 - 0.55 * y
    frame = (cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB) * 255.0 + 0.5).astype(np.uint8)
    bars = np.array([[255, 255, 255], [255, 255, 0], [0, 255, 255], [0, 255, 0],
                     [255, 0, 255], [255, 0, 0], [0, 0, 255], [0, 0, 0]], np.uint8)
    bx0, by0, by1 = w // 20, h * 3 // 4, h * 7 // 8
    frame[by0:by1, bx0 : w // 2] = bars[np.arange(w // 2 - bx0) * 8 // (w // 2 - bx0)]
    frame[by1:, :] = (np.arange(w) * 256 // w).astype(np.uint8)[:, None]
    stripes = ((np.arange(w // 4)[None, :] + np.arange(by1 - by0)[:, None]) // 2 % 2 * 255).astype(np.uint8)
    frame[by0:by1, w * 5 // 8 : w * 5 // 8 + w // 4] = stripes[..., None]
    scale = h / 720
    for i, line in enumerate(("livequant test pattern", "The quick brown fox jumps over the lazy dog 0123456789")):
        cv2.putText(frame, line, (int(20 * scale), int((140 + 40 * i) * scale)), cv2.FONT_HERSHEY_SIMPLEX,
                    (1.0 - 0.3 * i) * scale, (20, 20, 20), max(1, round(2 * scale)), cv2.LINE_AA)
    return frame


def _sprites(d: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Small ``(patch, mask)`` pairs: a disc, a square and a triangle in saturated colours."""
    yy, xx = np.mgrid[:d, :d]
    shapes = [
        ((yy - d / 2 + 0.5) ** 2 + (xx - d / 2 + 0.5) ** 2 < (d / 2) ** 2, (230, 40, 40)),
        (np.ones((d, d), bool), (40, 200, 60)),
        (np.abs(xx - d / 2) < yy / 2, (40, 80, 230)),
    ]
    return [(np.broadcast_to(np.array(c, np.uint8), (d, d, 3)), mask) for mask, c in shapes]


def open_source(spec, **kw) -> _Source:
    """Open a source from a command-line style ``spec``.

    ``"test"`` gives a `TestPattern`, an int or digit string a `Webcam`, a
    picture `Images`, an animated WebP `AnimatedWebP`, anything else a `VideoFile`: a video, or pictures
    numbered or matched by a glob (`is_picture_sequence`: ``frames/%04d.png``,
    ``frames/*.png``), played at ``fps`` (FFmpeg's 25 unless given).
    Keyword arguments go to the source's constructor.
    """
    if isinstance(spec, int) and not isinstance(spec, bool):
        return Webcam(spec, **kw)
    text = os.fspath(spec)
    if text.isdigit():
        return Webcam(int(text), **kw)
    if text == "test":
        return TestPattern(**kw)
    if Path(text).suffix.lower() in IMAGE_SUFFIXES and not is_picture_sequence(text) and not is_animated(text):
        return Images(text, **kw)
    return open_video(text, **kw)
