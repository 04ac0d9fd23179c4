"""Video files (MP4, MOV, MKV, WebM and whatever else FFmpeg writes): `VideoWriter`, its encoder chosen and set for
the suffix and the user's choices.
"""

from __future__ import annotations

import io
import math
import numbers
import os
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from livequant.errors import SinkError
from livequant.frames import QuantizedFrame, check_fps, on_background
from livequant.palette import Palette
from livequant.sinks.audio import AudioTrack
from livequant.sinks.encoding import EncoderSink, OneBehind
from livequant.sources import AudioFeed

__all__ = ["CRF_RANGES", "DEFAULT_QUANTIZER", "QUANTIZER_ENCODERS", "VIDEO_SUFFIXES", "VideoWriter", "muxer_options"]

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


def _reads_video(path: Path) -> bool:
    """Whether FFmpeg decodes a frame of video from ``path``."""
    try:
        with av.open(str(path)) as written:
            return bool(written.streams.video) and next(written.decode(video=0), None) is not None
    except av.error.FFmpegError:
        return False


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
        raise ValueError(f"codec '{codec}' is not an FFmpeg video encoder here; try libx264, libvpx-vp9, "
                         "ffv1") from None
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


class VideoWriter(EncoderSink):
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
