"""Where quantized frames go: video files, GIFs, animated WebP and APNG, images and a preview window.

Every sink is a context manager with ``write(qframe)`` taking a
`~livequant.frames.QuantizedFrame`. File sinks write to a new, uniquely named
hidden file beside the target (``.name.XXXXXXXX.partial.mp4``, see
`livequant.files`) and rename it when complete; an output that is one of the
inputs (the same file by device and inode, however it is spelled) is refused
before anything is written. Leaving
the ``with`` block normally or by ``KeyboardInterrupt`` finishes the file (it
plays up to the last frame written; cut short, it goes beside a file that was
there instead of replacing it); any other exception removes it.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import io
import logging
import math
import numbers
import os
import re
import socket
import sys
import time
import weakref
import zlib
from dataclasses import replace
from fractions import Fraction
from pathlib import Path

import cv2  # before av: PyAV's bundled libxcb loaded first makes OpenCV windows hang (PyAV#978)
import av  # isort: skip
import numpy as np

from livequant.errors import SinkError, appeared_meanwhile, write_failed
from livequant.files import move_beside, move_into_place, partial_file
from livequant.frames import (FpsCounter, QuantizedFrame, check_fps, check_frame, join_alpha, on_background,
                              on_checkerboard)
from livequant.gif import GifEncoder, check_lossy
from livequant.palette import Palette
from livequant.png import indexed_png
from livequant.sources import SEQUENCE_NUMBER, AudioFeed, c_stderr, quiet_opencv

__all__ = ["ALPHA_PICTURES", "AnimationWriter", "CRF_RANGES", "DEFAULT_QUANTIZER", "GifWriter", "ImageWriter",
           "MAX_LOOP", "NUMBERED", "OneBehind", "Preview", "QUANTIZER_ENCODERS", "VideoWriter", "check_target",
           "numbered_files"]

log = logging.getLogger("livequant")
#: The most repeats an animation's loop count holds (GIF and WebP store the plays in 16 bits).
MAX_LOOP = 65534
#: Encoders that code each frame at a quantizer scale (FFmpeg's ``-q:v``, 1..31) and have no constant rate
#: factor: MPEG-4 part 2, MPEG-1/2, Motion JPEG and their kin. Left to FFmpeg's rate control they get 200 kb/s
#: (cockatoo at 720p: 3.3 levels off a pixel on average in MPEG-4, against 1.5 for H.264 at CRF 20).
QUANTIZER_ENCODERS = ("mpeg4", "msmpeg4v2", "msmpeg4", "mpeg1video", "mpeg2video", "mjpeg", "h263", "h263p", "flv",
                      "wmv1", "wmv2")
#: Their quantizer unless --crf says: 3 took cockatoo's first 2 s at 720p to 1.72 levels off in MPEG-4 (0.94 MB;
#: 2: 1.56, 1.39 MB; 4: 1.87, 0.73 MB), 1.64 in MPEG-2, 1.44 in Motion JPEG; H.264 at CRF 20 1.53 (0.48 MB).
DEFAULT_QUANTIZER = 3
#: The encoders that take --crf, and its range for each (lower is better and larger): a constant rate factor,
#: or for `QUANTIZER_ENCODERS` the quantizer.
CRF_RANGES = {"libx264": (0, 51), "libx264rgb": (0, 51), "libx265": (0, 51), "libvpx-vp9": (0, 63),
              "libsvtav1": (0, 63), **{codec: (1, 31) for codec in QUANTIZER_ENCODERS}}
#: A number's place in an image-sequence pattern: ``{}``, ``{:04d}``, ``%d`` or ``%04d``.
NUMBERED = re.compile(r"\{[^{}]*\}|" + SEQUENCE_NUMBER.pattern)  # Python's {} or FFmpeg's %04d
#: Ticks a second of video time at least (MPEG's 90 kHz clock); see ``_video_time_base``.
_VIDEO_TICKS = 90000
#: Encoders that refuse a time base that fine: MPEG-4 part 2 takes time-base denominators up to 65535.
_CODEC_TIME_BASES = {"mpeg4": Fraction(1, 60000)}
_BLACK = (np.zeros((128, 256, 3), np.uint8), np.zeros((128, 256), np.uint8), Palette(np.zeros((1, 3), np.uint8)))


VIDEO_SUFFIXES = (".mp4", ".mov", ".mkv", ".webm")
#: The YUV matrix to convert with and tag, by encoder: BT.709, as players assume for HD, except where the
#: bitstream cannot say and decoders assume BT.601 (VP8: FFmpeg's decoder reports BT.470BG whatever the tag;
#: Motion JPEG, as JFIF says).
_MATRICES = {"libvpx": ("ITU601", 5), "mjpeg": ("ITU601", 5)}
_BT709 = ("ITU709", 1)
#: Encoders whose YUV is full range: JPEG's (JFIF: BT.601, 0-255; FFmpeg refuses limited range there).
_FULL_RANGE = {"mjpeg"}
#: 8-bit RGB layouts, in the order taken for an encoder that is lossless only (`_encoder`).
_RGB_FORMATS = ("rgb24", "bgr24", "gbrp", "bgra", "rgba", "bgr0")
_CONTAINERS = {suffix: av.open(io.BytesIO(), "w", format=name)  # what each can hold
               for suffix, name in zip(VIDEO_SUFFIXES, ("mp4", "mov", "matroska", "webm"))}


def _partial(path: Path) -> Path:
    """`partial_file` beside ``path``, its failure a `SinkError` naming ``path``."""
    try:
        return partial_file(path)
    except OSError as e:
        raise write_failed("write", path, e) from e


def _same_file(a, b) -> bool:
    """Whether ``a`` and ``b`` are one file (device and inode: links and other spellings included)."""
    try:
        return os.path.samefile(a, b)
    except (OSError, ValueError):
        return False


def numbered_files(pattern: str) -> re.Pattern | None:
    """A regular expression the absolute path of every file an image-sequence ``pattern`` numbers matches
    in full (``frame-%04d.png``: ``/here/frame-0001.png`` ...); None for a plain path."""
    parts = NUMBERED.split(os.path.abspath(pattern))
    return re.compile(r"\d+".join(map(re.escape, parts))) if len(parts) > 1 else None


def check_target(path: Path, overwrite: bool, inputs=()) -> None:
    """Raise `SinkError` unless ``path`` can be written: not one of ``inputs``, in a writable folder, not a
    folder itself, and absent unless ``overwrite``."""
    for given in inputs:
        if _same_file(path, given):
            raise SinkError(f"output '{path}' is the input '{os.fspath(given)}'; give another output name")
    try:
        os.stat(path)
    except FileNotFoundError:
        pass
    except OSError as e:  # a name too long, a loop of links
        raise SinkError(f"cannot write '{path}': {e.strerror}; give another output name") from None
    parent = path.parent
    if parent.exists() and not parent.is_dir():
        raise SinkError(f"cannot write '{path}': '{parent}' is a file, not a directory; write elsewhere")
    if not parent.is_dir():
        raise SinkError(f"cannot write '{path}': directory '{parent}' does not exist; create it or write elsewhere")
    if not os.access(parent, os.W_OK):
        raise SinkError(f"cannot write '{path}': directory '{parent}' is not writable; write elsewhere")
    if path.is_dir():
        raise SinkError(f"output '{path}' is a directory; give a file name, such as '{path / 'out'}{path.suffix}'")
    if os.path.lexists(path) and not overwrite:  # a link to a missing file is there too
        raise SinkError(f"output '{path}' exists; use -y to overwrite")


def _check_same_size(qframe: QuantizedFrame, size: tuple[int, int], sink) -> None:
    """Raise `SinkError` unless ``qframe`` is ``size`` (H, W): a video or animation holds one frame size."""
    if qframe.indices.shape != size:
        (h, w), (height, width) = qframe.indices.shape, size
        raise SinkError(f"frame {sink.frames + 1} is {w}x{h} but '{sink.path}' holds {width}x{height} frames; "
                        "give every frame the first one's size (livequant.adapters.adapt(source, size=...))")


#: Sound codecs an MPEG-TS file carries as they are: FFmpeg's muxer takes them, while PyAV lists only MPEG-2's own
#: as what the format holds.
TS_SOUND = frozenset({"aac", "mp3", "mp2", "ac3", "eac3", "opus"})
#: Picture suffixes whose files keep transparency (`_write_still`).
ALPHA_PICTURES = (".png", ".webp", ".tif", ".tiff")


def _encoded(suffix: str, bgr: np.ndarray) -> bytes | None:
    """``bgr`` encoded by OpenCV as a ``suffix`` image, or None where OpenCV cannot (in memory: OpenCV never
    sees a file name, which it mishandles when the name is not UTF-8)."""
    if not suffix.isascii():
        return None
    params = []
    if suffix == ".avif":  # quality 100 keeps every pixel; OpenCV's default, 95, made 1,486 colours of 8
        quality = getattr(cv2, "IMWRITE_AVIF_QUALITY", None)
        if quality is None:
            return None
        params = [quality, 100]
    if suffix == ".jp2":  # 1000 keeps every pixel; OpenCV's default made 31,602 colours of 16 at 512x512
        params = [cv2.IMWRITE_JPEG2000_COMPRESSION_X1000, 1000]
    try:
        with quiet_opencv():
            ok, data = cv2.imencode(suffix, bgr, params)
    except cv2.error:
        return None
    return data.tobytes() if ok else None


def _write_still(path: Path, qframe: QuantizedFrame, name: Path | None = None) -> None:
    """Write one frame to ``path`` (errors name ``name``, the output the user asked for): an indexed PNG of
    the palette's colours for ``.png`` (`livequant.png`), else whatever OpenCV encodes for the suffix; with
    its transparency (`QuantizedFrame.opaque`) where the format holds it (PNG, WebP, TIFF; a PNG of 256
    colours and transparent pixels is RGBA)."""
    suffix = path.suffix.lower()
    data = indexed_png(qframe.indices, qframe.palette.colors, qframe.opaque) if suffix == ".png" else None
    if data is None:
        if qframe.opaque is not None and suffix in ALPHA_PICTURES:
            bgr = cv2.cvtColor(join_alpha(qframe.rgb, qframe.opaque), cv2.COLOR_RGBA2BGRA)
        else:
            bgr = cv2.cvtColor(on_background(qframe.rgb, qframe.opaque), cv2.COLOR_RGB2BGR)
        data = _encoded(suffix, bgr)
    if data is None:
        raise SinkError(f"cannot write image '{name or path}': OpenCV cannot encode this picture as {suffix}; "
                        "write .png instead")
    path.write_bytes(data)


def _reads_video(path: Path) -> bool:
    """Whether FFmpeg decodes a frame of video from ``path``."""
    try:
        with av.open(str(path)) as written:
            return bool(written.streams.video) and next(written.decode(video=0), None) is not None
    except av.error.FFmpegError:
        return False


class _FileSink:
    """Partial file, rename on success, cleanup on failure; subclasses fill in `_write`, `_finish`, `_release`.

    A frame without a time (`QuantizedFrame.time` None) is shown ``1 / fps`` after the frame before, the first
    at 0; a sink of pictures (``timed`` False) needs no times.
    """

    interactive = False
    timed = True
    fps: float | None = None
    _tmp: Path | None = None
    _late_frame = "it is shown just after that one"  # what becomes of a frame timed before the one written last

    def __init__(self, path, overwrite: bool, inputs=()):
        self.path = Path(path)
        self._inputs = tuple(inputs)
        self._overwrite = overwrite
        check_target(self.path, overwrite, self._inputs)
        self.kept: Path | None = None  # the file -y would have replaced, left as it was by an interrupt
        if not getattr(self, "_pattern", None):
            self._replacing = os.path.lexists(self.path)
            self._tmp = _partial(self.path)
            weakref.finalize(self, self._tmp.unlink, missing_ok=True)  # a sink dropped unclosed leaves nothing
        self.frames = 0
        self.finished = False  # the output is complete and in place
        self._done = False
        self._end: float | None = None  # when the last frame stops showing (`end_at`); None: not said
        self._last_time: float | None = None  # the time the last frame written was shown at
        self._out_of_order = False  # a frame timed before the one written last came, and was warned of

    @property
    def written(self) -> str:
        """The output's name as a summary gives it."""
        return str(self.path)

    def end_at(self, time: float) -> None:
        """Show the last frame until ``time`` (seconds, on the frames' clock) instead of for as long as the
        frame interval before it (GIF and video; a picture has no duration)."""
        self._end = time

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None or (issubclass(exc_type, KeyboardInterrupt) and self.frames):
            self.close(cut_short=exc_type is not None)
        else:
            self.abort()

    def write(self, qframe: QuantizedFrame) -> None:
        """Append one quantized frame."""
        if not isinstance(qframe, QuantizedFrame):
            raise TypeError(f"write takes a QuantizedFrame (from Quantizer.process), got {type(qframe).__name__}")
        if self._done:
            raise SinkError(f"'{self.path}' is {'finished' if self.finished else 'closed'}; open a new writer "
                            "to write more")
        check_frame(qframe.rgb, "qframe.rgb")
        if qframe.time is None and self.timed:
            qframe = replace(qframe, time=self._untimed_frame_time())
        elif self.timed and self._last_time is not None and qframe.time < self._last_time and not self._out_of_order:
            self._out_of_order = True
            log.warning(f"'{self.path}': a frame timed {qframe.time:.3f} s came after one timed {self._last_time:.3f} "
                        f"s; {self._late_frame} (said once a file)")
        try:
            self._write(qframe)
        except SinkError:
            raise
        except (av.error.FFmpegError, OSError) as e:
            raise write_failed("write", self.path, e) from e
        self.frames += 1
        self._last_time = qframe.time

    def _untimed_frame_time(self) -> float:
        """When a frame without a time shows: at 0 if it is the first, else ``1 / fps`` after the frame before."""
        if self._last_time is None:
            return 0.0
        if self.fps is None:
            raise SinkError(f"frame {self.frames + 1} has no time and '{self.path}' no frame rate to place it by; "
                            "pass each frame's time (Quantizer.process(frame, time)) or the writer's fps=")
        return self._last_time + 1 / self.fps

    def close(self, cut_short: bool = False) -> None:
        """Finish the output and move it into place; raises `SinkError` if no frame was written.

        Output ``cut_short`` (by an interrupt) never replaces a file: where one was there (-y), it stays and
        the output goes beside it (`livequant.files.move_beside`), named in ``path`` (the file kept in
        ``kept``). If finishing fails or is interrupted (a second Ctrl-C), the partial file is removed.
        """
        if self._done:
            return
        if not self.frames:
            self.abort()
            raise SinkError(f"nothing was written to '{self.path}': no frames arrived")
        try:
            self._finish()
            if self._tmp is not None and cut_short and self._replacing:
                self.kept, self.path = self.path, move_beside(self._tmp, self.path, "interrupted")
            elif self._tmp is not None:
                move_into_place(self._tmp, self.path, replace=self._overwrite)
        except BaseException as e:
            self.abort()
            if isinstance(e, FileExistsError):
                raise appeared_meanwhile(self.path) from None
            if isinstance(e, (av.error.FFmpegError, OSError)) and not isinstance(e, SinkError):
                raise write_failed("finish", self.path, e) from e
            raise
        self._done = self.finished = True

    def abort(self) -> None:
        """Stop writing and remove the partial output."""
        if self._done:
            return
        self._done = True
        self._release()
        if self._tmp is not None:
            self._tmp.unlink(missing_ok=True)

    def _release(self) -> None:
        """Free resources without finishing the output."""


def _refusal_logged(context: av.codec.context.CodecContext) -> str | None:
    """FFmpeg's reason for refusing to open ``context``, read from its log on a second try; None if it gave none.

    PyAV logs nothing unless a level is set, and a level left set hangs a run: an FFmpeg decoding thread
    that logs waits for the GIL while the GIL's holder, freeing that decoder, waits for the thread. So the
    level is set only for this try, on the way to an error, and every thread's logs are captured meanwhile.
    """
    level = av.logging.get_level()
    with av.logging.Capture(local=False) as logs:
        av.logging.set_level(av.logging.ERROR)
        try:
            context.open()
        except av.error.FFmpegError:
            pass
        finally:
            av.logging.set_level(level)
    reasons = [message for _, name, message in logs if name == context.name]
    return reasons[-1].strip().rstrip(".") if reasons else None


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


class _EncoderSink(_FileSink):
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
        _check_same_size(qframe, self._size, self)
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


def muxer_options(suffix: str) -> dict[str, str]:
    """FFmpeg muxer options for a video file of ``suffix``: MP4 and MOV put their index first ("faststart"),
    so the file plays while it downloads and can be read from a pipe. AVI, which counts frames and has no edit
    list, keeps the video's times as they are: shifted by the audio's lead-in (AAC's 1,024 samples before 0),
    the first frame lasted two frames' time and every later one came a frame late."""
    suffix = suffix.lower()
    if suffix in (".mp4", ".mov"):
        return {"movflags": "+faststart"}
    return {"avoid_negative_ts": "disabled"} if suffix == ".avi" else {}


def _encoder(suffix: str, codec: str | None, crf: float | None, lossless: bool) -> tuple[str, str, dict]:
    """Return ``(codec, pix_fmt, options)`` for an output suffix and the user's choices.

    Raises `ValueError` for choices the encoder cannot honour: ``lossless`` with an encoder that would not
    keep every RGB pixel (libx264 codes 4:2:0 YUV even at qp 0), ``crf`` with ``lossless``, ``crf`` with an
    encoder that takes none (FFmpeg passes it on to them unread), or a ``crf`` outside the encoder's range.
    """
    if codec is None:
        lossless_codec = {".mkv": "ffv1", ".webm": "libvpx-vp9"}.get(suffix, "libx264rgb")
        codec = lossless_codec if lossless else "libvpx-vp9" if suffix == ".webm" else "libx264"
    if lossless and crf is not None:
        raise ValueError("--crf sets the quality of lossy video and --lossless keeps every pixel; leave out one")
    if crf is not None and (isinstance(crf, bool) or not isinstance(crf, numbers.Real) or not math.isfinite(crf)):
        raise ValueError(f"crf must be a number (lower is better), got {crf!r}")
    crf_range = CRF_RANGES.get(codec)
    if crf is not None and crf_range is None:
        raise ValueError(f"--crf sets the quality of libx264, libx265, libvpx-vp9, libsvtav1 and "
                         f"{', '.join(QUANTIZER_ENCODERS)}, and {codec} takes none; leave out --crf, or choose one of "
                         "those with --codec")
    if crf is not None and not crf_range[0] <= crf <= crf_range[1]:
        raise ValueError(f"--crf {crf:g} is out of {codec}'s range {crf_range[0]}..{crf_range[1]}; use a value in "
                         "it (lower is better)")
    if crf is not None and codec in QUANTIZER_ENCODERS and crf != int(crf):
        raise ValueError(f"--crf sets {codec}'s quantizer, a whole number 1..31, not {crf:g}; round it")
    try:
        found = av.Codec(codec, "w")
    except av.codec.codec.UnknownCodecError:
        raise ValueError(f"codec '{codec}' is not an FFmpeg video encoder here; try libx264, libvpx-vp9, ffv1") from None
    if found.type != "video":
        raise ValueError(f"codec '{codec}' is an {found.type} encoder, not a video one; try libx264, libvpx-vp9, ffv1")
    formats = [f.name for f in found.video_formats or ()]
    lossless_only = found.lossless and not found.lossy  # FFV1, PNG, QuickTime RLE, Ut Video, raw video, ...
    if lossless and not (lossless_only or codec in ("libx264rgb", "libvpx-vp9")):
        raise ValueError(f"--lossless needs an encoder that keeps every RGB pixel, and {codec} does not; use "
                         "--codec ffv1 (.mkv), libx264rgb (.mp4 .mov .mkv) or libvpx-vp9 (.webm .mkv), or leave "
                         "out --codec")
    if codec in ("libx264", "libx264rgb"):
        quality = {"qp": "0"} if lossless else {"crf": f"{20 if crf is None else crf:g}"}
        return codec, "rgb24" if codec == "libx264rgb" else "yuv420p", {"preset": "veryfast", **quality}
    if codec == "libvpx-vp9":
        # lossless with frames held back for alt-ref frames (libvpx's default lag of 25) failed on some clips
        # ("Invalid data found": 6 of 60 small quantized clips): none held back, 0 of 150
        quality = ({"lossless": "1", "lag-in-frames": "0"} if lossless
                   else {"crf": f"{32 if crf is None else crf:g}", "b": "0"})
        options = {"deadline": "realtime", "cpu-used": "8", "row-mt": "1", **quality}
        return codec, "gbrp" if lossless else "yuv420p", options
    if codec == "ffv1":
        return codec, "bgr0", {}
    pix_fmt = "yuv420p" if "yuv420p" in formats or not formats else formats[0]
    if lossless_only:  # RGB, where 4:2:0 would lose colours; raw video (no list) as RGBA, the one RGB layout
        # that Matroska, AVI and MOV all read back
        pix_fmt = next((f for f in _RGB_FORMATS if f in formats), pix_fmt) if formats else "rgba"
    depths = [c.bits for c in av.VideoFormat(pix_fmt).components]
    if len(depths) < 3 or min(depths) < 8:  # the GIF encoder's rgb8 (3-3-2 bits) moved colours 54 levels
        raise ValueError(f"{codec} stores video as {pix_fmt}, which cannot hold the palette's colours; choose "
                         f"another --codec{', or write a .gif file' if codec == 'gif' else ''}")
    options = {} if crf is None else {"crf": f"{crf:g}"}
    if codec in QUANTIZER_ENCODERS:  # the quantizer held at one value, whatever the rate control asks
        quantizer = f"{DEFAULT_QUANTIZER if crf is None else int(crf)}"
        options = {"qmin": quantizer, "qmax": quantizer}
    if codec == "dnxhd":  # DNxHD's own profile takes a few broadcast sizes and bit rates; DNxHR HQ any from 256x120
        options["profile"] = "dnxhr_hq"
    if codec == "libx265":  # x265 prints its info lines itself, whatever FFmpeg's log level
        options["x265-params"] = "log-level=error"
    if codec == "libsvtav1":  # so does SVT-AV1, to the level its library reads from the environment
        os.environ.setdefault("SVT_LOG", "1")
    return codec, pix_fmt, options


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


def _video_time_base(codec: str, rate: Fraction, suffix: str) -> Fraction:
    """The time base of ``codec`` video at the nominal frame ``rate`` in a file of ``suffix``: 1 /
    ``_VIDEO_TICKS``, or the nearest finer one in which a frame lasts a whole number of ticks; the encoder's own
    where it takes no such one.

    23.976 fps (24000/1001) gets 1/96000, 4004 ticks a frame: at 1/90000 frames lasted 3753 and 3754 ticks in
    turn, which editors may take for a variable frame rate. Encoders that list the frame rates they take (MPEG-1
    and MPEG-2 video, which code the rate in the stream) take one frame as the time base, and no other; so does
    AVI, which counts frames (its header's frame rate is one over the time base: at MPEG-4's 1/60000 a 25 fps
    file said 600 fps, and 1,200 frames for 50, 23 of every 24 of them empty).
    """
    if suffix == ".avi" or av.Codec(codec, "w").frame_rates:
        return 1 / rate
    if codec in _CODEC_TIME_BASES:
        return _CODEC_TIME_BASES[codec]
    return Fraction(1, rate.numerator * -(-_VIDEO_TICKS // rate.numerator))


class VideoWriter(_EncoderSink):
    """Encode quantized frames to a video file with PyAV.

    The format follows the suffix: ``.mp4``/``.mov``/``.mkv`` H.264 (libx264,
    yuv420p, ``crf`` 20), ``.webm`` VP9 (``crf`` 32). ``lossless`` keeps RGB
    exactly: FFV1 in ``.mkv``, VP9 gbrp in ``.webm``, libx264rgb (qp 0)
    otherwise. With chroma subsampling an odd width or height is padded to even
    by repeating the last column or row. YUV output is converted and tagged as
    BT.709 (VP8, which cannot name it and is decoded as BT.601: BT.601).
    Frame times set the timestamps (the first frame at 0), so a variable
    frame rate is kept; ``fps`` is the nominal rate, and places frames that
    have no time ``1 / fps`` after the one before.

    Parameters
    ----------
    path : str or os.PathLike
        Output file.
    fps : float
        Nominal frame rate.
    codec : str, optional
        FFmpeg encoder name, overriding the default for the suffix.
    crf : float, optional
        Constant rate factor (lower is better quality, larger files).
    lossless : bool
        Store the frames without loss.
    audio_from : str, os.PathLike or livequant.sources.AudioFeed, optional
        File whose first audio stream is carried through (copied when the container
        accepts its codec, else re-encoded with every channel) and cut to the video's length;
        or the sound a `~livequant.sources.VideoFile` demuxes with its pictures (``carry_audio``).
    overwrite : bool
        Replace an existing ``path``.
    pix_fmt : str, optional
        Pixel format, overriding the codec's default.
    inputs : sequence of str or os.PathLike
        Files the output must not be (compared by device and inode).

    Raises
    ------
    ValueError
        If the suffix names no video format, or the codec is unknown, not a video
        encoder, or one the container cannot hold: checked here, before any frame.
    SinkError
        If the output cannot be written, or the audio cannot go into it.
    """

    def __init__(self, path, fps: float, *, codec=None, crf=None, lossless=False, audio_from=None,
                 overwrite=False, pix_fmt=None, inputs=()):
        check_fps(fps)
        suffix = Path(path).suffix.lower()
        if (codec is None and suffix not in VIDEO_SUFFIXES) or not suffix:
            raise ValueError(f"cannot tell the video format of '{path}' from its suffix; use .mp4, .mov, .mkv or .webm")
        self.codec, default_pix_fmt, self._options = _encoder(suffix, codec, crf, lossless)
        self._default_codec = _encoder(suffix, None, None, lossless)[0] if suffix in VIDEO_SUFFIXES else None
        self.pix_fmt = pix_fmt or default_pix_fmt
        self._format = av.VideoFormat(self.pix_fmt)  # ValueError "not a pixel format: ..." if unknown
        self.fps = fps
        super().__init__(path, overwrite, inputs)
        self._audio_from = audio_from
        self._audio_in = None
        self._audio = None
        self._copy_audio = True
        self._own_audio_codec = False  # re-encode with the container's codec, not AAC (`AudioTrack`)
        try:
            if audio_from is not None and not self._fed:
                self._open_audio()
                if not self._audio_in.streams.audio:
                    self._audio_from = None
                self._release_output()
            self._check()
        except BaseException:
            self.abort()
            raise

    @property
    def _fed(self) -> bool:
        """Whether the audio comes from a source's `~livequant.sources.AudioFeed`, not a file of its own."""
        return isinstance(self._audio_from, AudioFeed)

    def _audio_stream(self, trial: bool = False):
        """The input's audio stream, and an iterator of its packets; for a ``trial`` from a feed, copies of
        those waiting where they are copied into the output (none to re-encode: the feed's decoder is the
        output's)."""
        if self._fed:
            stream = self._audio_from.stream
            if trial:
                copied = AudioTrack.copies(stream, self._out, self._copy_audio)
                return stream, iter(self._audio_from.copies() if copied else [])
            return stream, self._audio_from.packets()
        self._open_audio()
        stream = self._audio_in.streams.audio[0]
        return stream, self._audio_in.demux(stream)

    def _open_audio(self) -> None:
        try:
            self._audio_in = av.open(os.fspath(self._audio_from))
        except av.error.FFmpegError as e:
            raise SinkError(f"cannot read audio from '{self._audio_from}': {e.strerror}") from e

    def _start(self, height: int, width: int, audio: bool, trial: bool = False) -> None:
        """Open the container on the temporary file with the video stream (and the audio track)."""
        fmt = self._format
        self._pad = ((-height) % (4 // fmt.chroma_height(4)), (-width) % (4 // fmt.chroma_width(4)))
        try:
            self._out = av.open(str(self._tmp), "w", container_options=muxer_options(self.path.suffix))
        except (av.error.FFmpegError, ValueError):
            raise ValueError(f"FFmpeg knows no video format for '{self.path.suffix}' files ('{self.path}'); "
                             "use .mp4, .mov, .mkv or .webm") from None
        rate = Fraction(self.fps).limit_denominator(1001)
        rates = av.Codec(self.codec, "w").frame_rates
        if rates:  # it codes one of these in the stream (MPEG-1 and -2 video): 23.976 is 24000/1001 there
            nearest = min(rates, key=lambda r: abs(r - rate))
            if abs(nearest - rate) >= 1e-4 * rate:
                raise ValueError(f"{self.codec} cannot encode {float(rate):.4g} fps; add --fps {float(nearest):.5g} "
                                 "(the nearest frame rate it takes), or choose another --codec")
            rate = Fraction(nearest.numerator, nearest.denominator)
        try:
            self._stream = self._out.add_stream(self.codec, rate=rate, options=self._options)
        except ValueError:  # PyAV asks FFmpeg: "'webm' format does not support 'libx264' codec"
            raise ValueError(self._cannot_hold()) from None
        self._stream.width, self._stream.height = width + self._pad[1], height + self._pad[0]
        self._stream.pix_fmt = self.pix_fmt
        context = self._stream.codec_context
        context.time_base = self._time_base = _video_time_base(self.codec, rate, self.path.suffix.lower())
        self._min_step = max(round(self._time_base.denominator / 1000 / self._time_base.numerator), 1)  # 1 ms
        self._yuv = not fmt.is_rgb
        self._matrix, tag = _MATRICES.get(self.codec, _BT709)
        self._range = "JPEG" if self.codec in _FULL_RANGE else "MPEG"
        if self._yuv:  # convert with a matrix and tag it so (`_MATRICES`); untagged is ambiguous
            context.colorspace = tag
            context.color_primaries = context.color_trc = 1  # BT.709, which sRGB shares
            context.color_range = 2 if self._range == "JPEG" else 1  # full, or limited ("MPEG") range
        if self.codec == "libx265" and self.path.suffix.lower() in (".mp4", ".mov"):
            context.codec_tag = "hvc1"  # Apple's players take HEVC tagged so, FFmpeg's default hev1 not
        if audio and self._audio_from is not None:
            stream, packets = self._audio_stream(trial)
            self._audio = AudioTrack(stream, packets, self._out, self.path.suffix.lower(), copy=self._copy_audio,
                                     own_codec=self._own_audio_codec)

    def _trial(self, audio: bool) -> str:
        """Write the output with one black 256x128 frame (DNxHR's least is 256x120) and 0.1 s of the audio (of
        a feed's, copies of those waiting), and read its video back: "taken", "unreadable" (FFmpeg wrote it but
        reads no video back) or "refused"."""
        try:
            self._start(*_BLACK[1].shape, audio, trial=True)
            frame = self._frame(QuantizedFrame(*_BLACK))
            frame.pts, frame.time_base = 0, self._time_base
            muxer = OneBehind(self._out)
            for packet in [*self._stream.encode(frame), *self._stream.encode(None)]:
                muxer.mux(packet)
            muxer.finish(None)
            if self._audio is not None:
                stream = self._audio.stream
                start = float((stream.start_time or 0) * stream.time_base)
                self._audio.finish(start + 0.1, start)
            self._out.close()
        except av.error.FFmpegError:
            return "refused"
        finally:
            self._release_output()
            self._audio = None
        return "taken" if _reads_video(self._tmp) else "unreadable"

    def _check(self) -> None:
        """Open the output once before any frame, so what FFmpeg refuses (a codec the container cannot hold,
        an encoder option, audio the container cannot take) fails now, naming its cause, not after the job.

        Audio the container cannot hold as it is (such as 5.1 PCM in MP4) is re-encoded instead, with the
        container's own codec where it takes no AAC. The trial's
        video is read back: FFmpeg writes some codecs into containers that cannot name them (FFV1 in MPEG-TS).
        """
        outcome = self._trial(audio=True)
        if outcome == "refused" and self._audio_from is not None:
            self._copy_audio = False
            outcome = self._trial(audio=True)
            if outcome == "refused":  # a container that takes no AAC (MPEG-PS)
                self._own_audio_codec = True
                outcome = self._trial(audio=True)
            if outcome == "refused" and self._trial(audio=False) == "taken":
                src, _ = self._audio_stream()
                what = f"{src.codec_context.name}, {src.layout.name}"
                raise SinkError(f"cannot carry the audio of '{src.container.name}' ({what}) into '{self.path}': "
                                "FFmpeg refused it; use --no-audio")
        if outcome == "taken":
            return
        if outcome == "unreadable":
            raise ValueError(self._cannot_hold())
        options = " ".join(f"{k}={v}" for k, v in self._options.items())
        fix = ("leave --codec and --crf out for the defaults" if self._default_codec else
               f"try another --codec, or write {' '.join(VIDEO_SUFFIXES)}")
        raise ValueError(f"cannot encode '{self.path}' with {self.codec} ({self.pix_fmt}{', ' if options else ''}"
                         f"{options}): FFmpeg refused it; {fix}")

    def _cannot_hold(self) -> str:
        holders = [s for s in VIDEO_SUFFIXES if self.codec in _CONTAINERS[s].supported_codecs]
        fixes = ([f"leave --codec out (the default is {self._default_codec})"] if self._default_codec else []) + (
            [f"write {' or '.join(holders)}"] if holders else [])
        return (f"a {self.path.suffix} file cannot hold {self.codec} video ('{self.path}'); "
                f"{', or '.join(fixes) or 'choose another --codec'}")

    def _open(self, height: int, width: int) -> None:
        self._start(height, width, audio=True)
        context = self._stream.codec_context
        try:  # now, not at the first packet: what the trial's frame passed, this size may not (DNxHR under 256x120)
            context.open()
        except av.error.FFmpegError as e:
            why = _refusal_logged(context) or e.strerror.rstrip(".")
            raise SinkError(f"cannot encode '{self.path}' with {self.codec} at {width}x{height}: {why}; resize with "
                            "--width or --scale, or choose another --codec") from None

    def _frame(self, qframe: QuantizedFrame) -> av.VideoFrame:
        rgb = on_background(qframe.rgb, qframe.opaque)
        if any(self._pad):
            rgb = np.pad(rgb, ((0, self._pad[0]), (0, self._pad[1]), (0, 0)), mode="edge")
        frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
        if self._yuv:
            frame = frame.reformat(format=self.pix_fmt, dst_colorspace=self._matrix, dst_color_range=self._range)
        return frame

    def _write(self, qframe: QuantizedFrame) -> None:
        super()._write(qframe)
        if self._audio is not None:
            self._audio.mux_until(qframe.time, self._t0)

    def _finish(self) -> None:
        if self._audio is not None:
            last = self._last_duration() or round(1 / (self.fps * self._time_base))
            self._audio.finish(self._t0 + float((self._last_pts + last) * self._time_base), self._t0)
        super()._finish()
        self._release_output()

    def _release_output(self) -> None:
        super()._release_output()
        if self._audio_in is not None:
            self._audio_in.close()
            self._audio_in = None


class GifWriter(_FileSink):
    """Write an animated GIF straight from the palette indices (no second quantization).

    Each frame is cropped to the rectangle that changed, its unchanged pixels
    are transparent (as are its own transparent pixels, `QuantizedFrame.opaque`:
    a GIF then holds 255 colours a frame), and it carries a local colour
    table only when it needs colours the global table (the first frame's
    palette) lacks. Frame delays
    come from the frame times, rounded to GIF's 1/100 s; of two frames under
    2/100 s apart one is left out (counted in ``dropped``; the second shows in
    the first's place), as players show shorter delays as 10/100 s. The last frame lasts until `end_at` says
    (`livequant.pipeline.run` passes the source's end on), else as long as
    the interval before it. See `livequant.gif.GifEncoder`.

    Parameters
    ----------
    path : str or os.PathLike
        Output file.
    loop : int
        0 loops forever, -1 plays once, n > 0 repeats n times.
    overwrite : bool
        Replace an existing ``path``.
    inputs : sequence of str or os.PathLike
        Files the output must not be (compared by device and inode).
    local_palettes : bool
        Give every frame its own palette, even one equal to the file's global
        palette, so the frames can be copied into another GIF (what
        ``livequant batch`` does to join chunks).
    fps : float, optional
        Frame rate for frames without a time: each shows ``1 / fps`` after
        the one before. Without it such frames are an error.
    alpha : bool
        The frames may have transparent pixels (see `livequant.gif.GifEncoder`);
        they are kept either way.
    lossy : float
        How far a pixel may be shown from its colour for a smaller file (RGB
        levels; 0: exact; see `livequant.gif.GifEncoder`).
    """

    _late_frame = "it is left out"

    def __init__(self, path, *, loop: int = 0, overwrite: bool = False, inputs=(), local_palettes: bool = False,
                 fps: float | None = None, alpha: bool = False, lossy: float = 0.0):
        _check_loop(loop)
        self.fps = _optional_fps(fps)
        self.loop = loop
        self.local_palettes = local_palettes
        self.alpha = alpha
        self.lossy = check_lossy(lossy)
        self.dropped = 0
        super().__init__(path, overwrite, inputs)
        self._file = None
        self._gif = None

    def write(self, qframe: QuantizedFrame) -> None:
        """Append one quantized frame; within 2/100 s of the last one kept, one of the two is left out."""
        super().write(qframe)
        self.frames, self.dropped = self._gif.frames, self._gif.dropped

    def _write(self, qframe: QuantizedFrame) -> None:
        if self._gif is None:
            height, width = qframe.indices.shape
            try:
                self._gif = GifEncoder(width, height, qframe.palette.colors, self.loop,
                                       local_tables=self.local_palettes, alpha=self.alpha, lossy=self.lossy)
            except ValueError as e:
                raise SinkError(f"cannot write '{self.path}': {e}; resize with --width or --scale") from None
            self._file = open(self._tmp, "wb")
            self._file.write(self._gif.header())
        _check_same_size(qframe, (self._gif.height, self._gif.width), self)
        with self._encoding():
            self._file.write(self._gif.add(qframe.indices, qframe.palette.colors, qframe.time, qframe.opaque))

    @contextlib.contextmanager
    def _encoding(self):
        """Within, the encoder's refusal of a frame (transparency and 256 colours) is a `SinkError`."""
        try:
            yield
        except ValueError as e:
            raise SinkError(f"cannot write '{self.path}': {e}") from None

    def _finish(self) -> None:
        with self._encoding():
            self._file.write(self._gif.end(self._end))
        self._file.close()
        self.frames, self.dropped = self._gif.frames, self._gif.dropped

    def _release(self) -> None:
        if self._file is not None:
            try:
                self._file.close()
            except OSError:
                pass  # flushing failed (a full disk): the partial file is deleted next


def _optional_fps(fps: float | None) -> float | None:
    """``fps`` once `check_fps` has passed it, or None."""
    if fps is not None:
        check_fps(fps)
    return fps


def _check_loop(loop) -> None:
    if not isinstance(loop, int) or isinstance(loop, bool) or not -1 <= loop <= MAX_LOOP:
        raise ValueError(f"loop must be an int in -1..{MAX_LOOP} (0 loops forever, -1 plays once), got {loop!r}")


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


class AnimationWriter(_EncoderSink):
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
        _check_loop(loop)
        self.fps = _optional_fps(fps)
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


class ImageWriter(_FileSink):
    """Write frames as images: PNG with a palette (exact colours, small) or any format OpenCV writes.

    A path with a ``{}``/``{:04d}`` or ``%d``/``%04d`` pattern receives a
    sequence numbered from 1, one file per frame (if writing fails, or is
    aborted, the files it made are removed; an interrupt keeps the frames so
    far); a plain path receives the last frame written, or with
    ``one_frame`` refuses a second frame.

    Parameters
    ----------
    path : str or os.PathLike
        Output file or pattern; the suffix picks the format.
    overwrite : bool
        Replace existing files.
    inputs : sequence of str or os.PathLike
        Files no output may be (compared by device and inode).
    one_frame : bool
        Raise `SinkError` when a second frame arrives for a plain path, rather than keep the last.

    Raises
    ------
    ValueError
        If OpenCV cannot encode a colour picture as the suffix's type, or the pattern cannot number files.
    """

    timed = False  # pictures: no frame times

    def __init__(self, path, overwrite: bool = False, inputs=(), *, one_frame: bool = False):
        text = os.fspath(path)
        suffix = Path(text).suffix.lower()
        if suffix != ".png" and _encoded(suffix, np.zeros((64, 64, 3), np.uint8)) is None:  # .jp2 needs 32x32
            raise ValueError(f"cannot write '{text}': OpenCV here cannot write colour pictures as "
                             f"'{suffix or 'no suffix'}'; use .png, .jpg, .bmp, .tif, .webp or .ppm")
        self._pattern = text if NUMBERED.search(text) else None
        self._one_frame = one_frame
        self._last = None
        self._created: list[Path] = []  # the sequence's files this writer made new (removed if it fails)
        if self._pattern:
            try:
                first = self._name(1)
            except (KeyError, IndexError, ValueError, TypeError):
                raise ValueError(f"cannot number files with the pattern '{text}'; use one {{}} or %04d, such as "
                                 "frame-%04d.png") from None
        super().__init__(first if self._pattern else text, overwrite, inputs)

    @property
    def written(self) -> str:
        """The output's name, or for a sequence of several files the first and the last: 'f-0001.png .. f-0036.png'."""
        if self._pattern is None or self.frames < 2:
            return str(self.path)
        return f"{self.path} .. {self._name(self.frames)}"

    def _name(self, number: int) -> Path:
        return Path(self._pattern.format(number) if "%" not in self._pattern else self._pattern % number)

    def _write(self, qframe: QuantizedFrame) -> None:
        if self._pattern is None:
            if self._one_frame and self._last is not None:
                stem, suffix = self.path.with_suffix(""), self.path.suffix
                raise SinkError(f"'{self.path}' holds one picture but the input has more frames; write "
                                f"{stem}.apng, .webp or .gif for an animation, or {stem}-%04d{suffix} for one "
                                "file per frame")
            self._last = qframe
            return
        target = self._name(self.frames + 1)
        if self.frames:
            check_target(target, self._overwrite, self._inputs)
        new = not target.exists()
        tmp = _partial(target)
        try:
            _write_still(tmp, qframe, target)
            move_into_place(tmp, target, replace=self._overwrite)
        except BaseException as e:
            tmp.unlink(missing_ok=True)
            if isinstance(e, FileExistsError):
                raise appeared_meanwhile(target) from None
            if isinstance(e, OSError) and not isinstance(e, SinkError):
                raise write_failed("write", target, e) from e  # the file that failed, not the first
            raise
        if new:
            self._created.append(target)

    def _finish(self) -> None:
        if self._pattern is None:
            _write_still(self._tmp, self._last, self.path)
        elif self._name(self.frames + 1).exists():
            log.warning(f"'{self._name(self.frames + 1)}' and any after it are from an earlier run, not this "
                        f"one's {self.frames} frames; remove them before using the sequence")

    def _release(self) -> None:
        """A sequence that fails midway leaves none of the files it made (those it replaced with
        ``overwrite`` are gone either way)."""
        for path in self._created:
            path.unlink(missing_ok=True)


#: Seconds to wait for an X server to take a connection before calling the display dead.
X_CONNECT_SECONDS = 2.0
#: Connection setups tried, this many seconds apart, before the server is taken to refuse this process.
X_CONNECT_TRIES, X_RETRY_SECONDS = 5, 0.05


@contextlib.contextmanager
def _display_held():
    """Raise `SinkError` where no window can open (Qt would abort the process instead); else hold a connection to
    the X server while the block opens the window: a server resets when its last client leaves (Xvfb as xvfb-run
    starts it), and a connection made during the reset fails (145 of 2,000 here), which Qt answers by aborting."""
    display = os.environ.get("DISPLAY")
    if not sys.platform.startswith("linux"):
        yield
        return
    if not display:
        cause = "no display ($DISPLAY is not set)"
    elif not _x_server_answers(display):
        cause = f"no X server answers on $DISPLAY={display}"
    else:
        with _x_connection(display) as let_in:
            if let_in:
                yield
                return
        cause = (f"the X server on $DISPLAY={display} refused the connection (no authorization it takes: check "
                 "$XAUTHORITY, as after sudo or su; or it has too many clients)")
    raise SinkError(f"cannot open a preview window: {cause}; use `livequant transcode` to write a file instead")


def _x_server_answers(display: str) -> bool:
    """Whether the X server ``display`` names (``[host]:number[.screen]``) takes a connection: its socket in
    /tmp/.X11-unix for a local one, TCP port 6000 + number for a host's (an SSH forwarding that outlived its
    session refuses it). True for a form not known here: Xlib may know it."""
    named = re.fullmatch(r"(?P<host>[^:/]*):(?P<number>\d+)(\.\d+)?", display)
    if named is None:
        return True
    host, number = named["host"], int(named["number"])
    try:
        if host in ("", "unix"):
            with socket.socket(socket.AF_UNIX) as link:
                link.settimeout(X_CONNECT_SECONDS)
                link.connect(f"/tmp/.X11-unix/X{number}")
        else:
            socket.create_connection((host, 6000 + number), X_CONNECT_SECONDS).close()
    except OSError:
        return False
    return True


@contextlib.contextmanager
def _x_connection(display: str):
    """A connection to the X server ``display`` names, set up with the authorization $XAUTHORITY holds (libxcb,
    as Qt connects) and held while the block runs; yields whether the server let this process in (one that
    refuses made Qt abort the process). True, and no connection, where libxcb is not found."""
    name = ctypes.util.find_library("xcb")
    if name is None:
        yield True
        return
    xcb = ctypes.CDLL(name)
    xcb.xcb_connect.restype = ctypes.c_void_p
    xcb.xcb_connect.argtypes = [ctypes.c_char_p, ctypes.c_void_p]
    xcb.xcb_connection_has_error.argtypes = [ctypes.c_void_p]
    xcb.xcb_disconnect.argtypes = [ctypes.c_void_p]
    for attempt in range(X_CONNECT_TRIES):  # a server resetting (its last client just left) refuses a moment
        with c_stderr():  # libxcb prints the server's reason for refusing
            connection = xcb.xcb_connect(display.encode(), None)
        let_in = xcb.xcb_connection_has_error(connection) == 0
        if let_in or attempt == X_CONNECT_TRIES - 1:
            break
        xcb.xcb_disconnect(connection)
        time.sleep(X_RETRY_SECONDS)
    try:
        yield let_in
    finally:
        xcb.xcb_disconnect(connection)


def _quiet_qt() -> None:
    """Point OpenCV's Qt at an existing font folder: for the missing one OpenCV names, Qt prints five
    "QFontDatabase: Cannot find font directory" warnings when the first window opens."""
    fonts = os.environ.get("QT_QPA_FONTDIR")
    if fonts is not None and not os.path.isdir(fonts):
        system = "/usr/share/fonts"
        os.environ["QT_QPA_FONTDIR"] = system if os.path.isdir(system) else os.path.dirname(cv2.__file__)


class Preview:
    """Show frames in a window with a HUD and a palette strip, and take keys.

    ``s`` saves ``livequant-snapshot-N.png`` in the current directory, ``q`` or
    Esc (or closing the window) sets ``quit_requested``; every other key goes
    to ``on_key``.

    Parameters
    ----------
    title : str
        Window title.
    on_key : callable, optional
        ``on_key(key)`` with the key's code (``ord("d")``), such as a handler
        that reconfigures the quantizer.
    status : callable, optional
        ``status()`` returns text for the end of the HUD line, such as the dither.
    show_source : bool
        Show the input frame beside the quantized one.
    """

    interactive = True

    def __init__(self, title: str = "livequant", on_key=None, status=None, show_source: bool = False):
        _quiet_qt()
        self.title = title
        self.on_key = on_key
        self.status = status
        self.show_source = show_source
        self.quit_requested = False
        self._fps = FpsCounter()
        self._rate = 0.0
        self._last = None
        self._closed = False
        with _display_held():
            try:
                cv2.namedWindow(title, cv2.WINDOW_AUTOSIZE)
            except cv2.error as e:
                raise SinkError(f"cannot open a preview window: {e.err}; use `livequant transcode` instead") from e

    def __enter__(self):
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def write(self, qframe: QuantizedFrame) -> None:
        """Show one frame and handle the keys pressed since the last (nothing once the window is closed)."""
        if self._closed:
            return  # imshow would open the window again
        self._last = qframe
        self._rate = self._fps.tick()
        cv2.imshow(self.title, self._compose(qframe))
        self.idle()

    def idle(self) -> None:
        """Handle the keys pressed since the last call, and the window closed by the user (call it between
        frames when they come slowly; `livequant.pipeline.run` does)."""
        if self._closed:
            return
        self.handle_key(cv2.waitKey(1))
        if self._last is not None and not self._visible():  # before its first frame the window may not be shown
            self._closed = self.quit_requested = True

    def _visible(self) -> bool:
        try:
            return cv2.getWindowProperty(self.title, cv2.WND_PROP_VISIBLE) >= 1
        except cv2.error:  # Qt's answer once the user has closed the last window
            return False

    def _compose(self, qframe: QuantizedFrame) -> np.ndarray:
        """The window image (BGR): frame(s) scaled up to >= 480 px wide, transparency on a checkerboard, HUD on
        top, palette strip below."""
        rgb, opaque = check_frame(qframe.rgb, "qframe.rgb"), qframe.opaque
        if self.show_source and qframe.source is not None and qframe.source.shape == rgb.shape:
            rgb = np.hstack([qframe.source, rgb])
            opaque = None if opaque is None else np.hstack([opaque, opaque])
        scale = -(-480 // rgb.shape[1])
        if scale > 1:
            rgb = cv2.resize(rgb, None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST)
            opaque = None if opaque is None else opaque.repeat(scale, axis=0).repeat(scale, axis=1)
        rgb = on_checkerboard(rgb, opaque)
        colors = np.asarray(qframe.palette.colors, np.uint8)
        width = rgb.shape[1]
        strip = np.broadcast_to(colors[np.arange(width) * len(colors) // width], (16, width, 3))
        image = cv2.cvtColor(np.vstack([rgb, strip]), cv2.COLOR_RGB2BGR)
        cv2.rectangle(image, (0, 0), (width, 22), (0, 0, 0), cv2.FILLED)
        cv2.putText(image, self._hud(qframe), (6, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 255), 1, cv2.LINE_AA)
        return image

    def _hud(self, qframe: QuantizedFrame) -> str:
        name = qframe.palette.name or "adaptive"
        lag = f"  lag {qframe.palette_lag}" if name == "adaptive" else ""
        status = f"  {self.status()}" if self.status is not None else ""
        return f"{self._rate:5.1f} fps  K={len(qframe.palette.colors)}  palette={name}{lag}{status}"

    def handle_key(self, key: int) -> None:
        """Act on a key code as returned by ``cv2.waitKey`` (-1 for none)."""
        key &= 0xFF
        if key in (ord("q"), 27):
            self.quit_requested = True
        elif key == ord("s") and self._last is not None:
            self.snapshot()
        elif key != 0xFF and self.on_key is not None:
            self.on_key(key)

    def snapshot(self) -> Path | None:
        """Save the last frame as ``livequant-snapshot-N.png`` (first free N) in the cwd; print and return it
        (None, with a warning, where it cannot be written)."""
        number = 1
        while (path := Path(f"livequant-snapshot-{number}.png")).exists():
            number += 1
        try:
            _write_still(path, self._last)
        except OSError as e:  # the preview goes on
            log.warning(str(write_failed("save the snapshot", path.resolve(), e)))
            return None
        print(f"saved {path}")
        return path

    def close(self) -> None:
        """Close the window (if the user has not already)."""
        if not self._closed and self._visible():
            self._closed = True
            cv2.destroyWindow(self.title)
            cv2.waitKey(1)
