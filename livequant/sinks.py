"""Where quantized frames go: video files, GIFs, images and a preview window.

Every sink is a context manager with ``write(qframe)`` taking a
`~livequant.frames.QuantizedFrame`. File sinks write to a hidden partial file
beside the target (``.name.partial.mp4``) and rename it when complete. Leaving
the ``with`` block normally or by ``KeyboardInterrupt`` finishes the file (it
plays up to the last frame written); any other exception removes it.
"""

from __future__ import annotations

import collections
import os
import re
import sys
import time
from fractions import Fraction
from pathlib import Path

import cv2  # before av: PyAV's bundled libxcb loaded first makes OpenCV windows hang (PyAV#978)
import av  # isort: skip
import numpy as np

from livequant import presets
from livequant.errors import SinkError, _write_hint
from livequant.frames import QuantizedFrame, check_frame
from livequant.quantizer import DITHERS

__all__ = ["GifWriter", "ImageWriter", "Preview", "VideoWriter"]

_VIDEO_TIME_BASE = Fraction(1, 90000)


def _partial(path: Path) -> Path:
    """The hidden file beside ``path`` that is written first; keeps the suffix for FFmpeg and OpenCV."""
    return path.with_name(f".{path.stem}.partial{path.suffix}")


def _check_target(path: Path, overwrite: bool) -> None:
    parent = path.parent
    if parent.exists() and not parent.is_dir():
        raise SinkError(f"cannot write '{path}': '{parent}' is a file, not a directory; write elsewhere")
    if not parent.is_dir():
        raise SinkError(f"cannot write '{path}': directory '{parent}' does not exist; create it or write elsewhere")
    if not os.access(parent, os.W_OK):
        raise SinkError(f"cannot write '{path}': directory '{parent}' is not writable; write elsewhere")
    if path.is_dir():
        raise SinkError(f"output '{path}' is a directory; give a file name, such as '{path / 'out'}{path.suffix}'")
    if path.exists() and not overwrite:
        raise SinkError(f"output '{path}' exists; use -y to overwrite")


def _failed(action: str, path: Path, error: Exception) -> SinkError:
    """A `SinkError` for an OS or FFmpeg error writing ``path``, with what to do about it."""
    return SinkError(f"cannot {action} '{path}': {getattr(error, 'strerror', None) or error}; {_write_hint(error)}")


def _pal8(qframe: QuantizedFrame, unused_alpha: int) -> av.VideoFrame:
    """A ``pal8`` frame: the index map plus the palette as the ``(256, 4)`` ARGB array PyAV wants."""
    colors = np.asarray(qframe.palette.colors, np.uint8)
    argb = np.zeros((256, 4), np.uint8)
    argb[:, 0] = unused_alpha
    argb[: len(colors), 0] = 255
    argb[: len(colors), 1:] = colors
    return av.VideoFrame.from_ndarray((np.ascontiguousarray(qframe.indices, np.uint8), argb), format="pal8")


def _write_still(path: Path, qframe: QuantizedFrame) -> None:
    """Write one frame: an 8-bit palette PNG for ``.png``, else whatever OpenCV writes for the suffix."""
    if path.suffix.lower() == ".png":
        png = av.CodecContext.create("png", "w")
        png.width, png.height, png.pix_fmt = qframe.indices.shape[1], qframe.indices.shape[0], "pal8"
        packets = png.encode(_pal8(qframe, unused_alpha=255)) + png.encode(None)
        path.write_bytes(b"".join(bytes(p) for p in packets))
    elif not cv2.imwrite(str(path), cv2.cvtColor(qframe.rgb, cv2.COLOR_RGB2BGR)):
        raise SinkError(f"cannot write image '{path}': OpenCV failed to write it; check the free space and the folder")


class _FileSink:
    """Partial file, rename on success, cleanup on failure; subclasses fill in `_write`, `_finish`, `_release`."""

    def __init__(self, path, overwrite: bool):
        self.path = Path(path)
        _check_target(self.path, overwrite)
        self._tmp: Path | None = _partial(self.path)
        self.frames = 0
        self.finished = False  # the output is complete and in place
        self._done = False

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None or (issubclass(exc_type, KeyboardInterrupt) and self.frames):
            self.close()
        else:
            self.abort()

    def write(self, qframe: QuantizedFrame) -> None:
        """Append one quantized frame."""
        check_frame(qframe.rgb, "qframe.rgb")
        try:
            self._write(qframe)
        except SinkError:
            raise
        except (av.error.FFmpegError, OSError) as e:
            raise _failed("write", self.path, e) from e
        self.frames += 1

    def close(self) -> None:
        """Finish the output and move it into place; raises `SinkError` if no frame was written.

        If finishing fails or is interrupted (a second Ctrl-C), the partial file is removed.
        """
        if self._done:
            return
        if not self.frames:
            self.abort()
            raise SinkError(f"nothing was written to '{self.path}': no frames arrived")
        try:
            self._finish()
            if self._tmp is not None:
                os.replace(self._tmp, self.path)
        except BaseException as e:
            self.abort()
            if isinstance(e, (av.error.FFmpegError, OSError)) and not isinstance(e, SinkError):
                raise _failed("finish", self.path, e) from e
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


class _EncoderSink(_FileSink):
    """A PyAV container whose video stream `_open` makes at the first frame (when the size is known);
    `_frame` turns a quantized frame into an ``av.VideoFrame``."""

    _min_step = 1  # smallest pts increment between frames, in the stream's time base

    def __init__(self, path, overwrite: bool):
        super().__init__(path, overwrite)
        self._out = None
        self._stream = None
        self._t0 = None
        self._last_pts = None
        self._interval = None

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
        frame = self._frame(qframe)
        frame.time_base = self._stream.codec_context.time_base
        frame.pts = self._pts(qframe.time)
        for packet in self._stream.encode(frame):
            self._mux(packet)

    def _mux(self, packet: av.Packet) -> None:
        self._out.mux(packet)

    def _finish(self) -> None:
        for packet in self._stream.encode(None):
            self._mux(packet)
        self._out.close()

    def _release(self) -> None:
        if self._out is not None:
            try:
                self._out.close()
            except av.error.FFmpegError:
                pass  # the partial file is deleted next


def _encoder(suffix: str, codec: str | None, crf: float | None, lossless: bool) -> tuple[str, str, dict]:
    """Return ``(codec, pix_fmt, options)`` for an output suffix and the user's choices."""
    if codec is None:
        lossless_codec = {".mkv": "ffv1", ".webm": "libvpx-vp9"}.get(suffix, "libx264rgb")
        codec = lossless_codec if lossless else "libvpx-vp9" if suffix == ".webm" else "libx264"
    try:
        formats = [f.name for f in av.Codec(codec, "w").video_formats or ()]
    except av.codec.codec.UnknownCodecError:
        raise ValueError(f"codec '{codec}' is not an FFmpeg video encoder here; try libx264, libvpx-vp9, ffv1") from None
    if codec in ("libx264", "libx264rgb"):
        quality = {"qp": "0"} if lossless else {"crf": f"{20 if crf is None else crf:g}"}
        return codec, "rgb24" if codec == "libx264rgb" else "yuv420p", {"preset": "veryfast", **quality}
    if codec == "libvpx-vp9":
        quality = {"lossless": "1"} if lossless else {"crf": f"{32 if crf is None else crf:g}", "b": "0"}
        options = {"deadline": "realtime", "cpu-used": "8", "row-mt": "1", **quality}
        return codec, "gbrp" if lossless else "yuv420p", options
    if codec == "ffv1":
        return codec, "bgr0", {}
    pix_fmt = "yuv420p" if "yuv420p" in formats or not formats else formats[0]
    return codec, pix_fmt, {} if crf is None else {"crf": f"{crf:g}"}


class AudioTrack:
    """The first audio stream of a file, carried into an output alongside the video.

    Stream copy when the output container accepts the codec, else decoded and
    re-encoded (Opus for WebM, AAC otherwise). Times are on the input's clock;
    ``offset`` (the first video frame's time) becomes zero in the output.
    """

    def __init__(self, input_container, output, suffix: str):
        self._in = input_container
        self._src = input_container.streams.audio[0]
        self._copy = self._src.codec_context.name in output.supported_codecs
        if self._copy:
            self._dst = output.add_stream_from_template(self._src)
        else:
            webm = suffix == ".webm"
            self._dst = output.add_stream("libopus" if webm else "aac", rate=48000 if webm else self._src.rate)
            self._dst.layout = self._src.layout if self._src.channels <= 2 else "stereo"
        self._output = output
        self._items = self._timed_items()
        self._pending = None

    def _timed_items(self):
        """Yield ``(start, end, packet_or_frame)`` in input order."""
        for packet in self._in.demux(self._src):
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
                yield frame.time, frame.time + frame.samples / frame.sample_rate, frame

    def mux_until(self, limit: float, offset: float) -> None:
        """Mux what starts before ``limit``, shifted by ``-offset``; drop what ends before ``offset``."""
        while True:
            item = self._pending or next(self._items, None)
            self._pending = None
            if item is None:
                return
            start, end, obj = item
            if start >= limit:
                self._pending = item
                return
            if end <= offset:
                continue
            shift = round(offset / obj.time_base)
            obj.pts -= shift
            if self._copy:
                if obj.dts is not None:
                    obj.dts -= shift
                obj.stream = self._dst
                self._output.mux(obj)
            else:
                for packet in self._dst.encode(obj):
                    self._output.mux(packet)

    def finish(self, end: float, offset: float) -> None:
        """Mux the rest up to ``end`` (the video's end), flush the encoder, close the input."""
        self.mux_until(end, offset)
        if not self._copy:
            for packet in self._dst.encode(None):
                self._output.mux(packet)
        self._in.close()


class VideoWriter(_EncoderSink):
    """Encode quantized frames to a video file with PyAV.

    The format follows the suffix: ``.mp4``/``.mov``/``.mkv`` H.264 (libx264,
    yuv420p, ``crf`` 20), ``.webm`` VP9 (``crf`` 32). ``lossless`` keeps RGB
    exactly: FFV1 in ``.mkv``, VP9 gbrp in ``.webm``, libx264rgb (qp 0)
    otherwise. With chroma subsampling an odd width or height is padded to even
    by repeating the last column or row. YUV output is converted and tagged as
    BT.709. Frame times set the timestamps (the first frame at 0), so a variable
    frame rate is kept; ``fps`` is the nominal rate.

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
    audio_from : str or os.PathLike, optional
        File whose first audio stream is carried through (copied when the container
        accepts its codec, else re-encoded) and cut to the video's length.
    overwrite : bool
        Replace an existing ``path``.
    pix_fmt : str, optional
        Pixel format, overriding the codec's default.
    """

    _min_step = 90  # 1 ms at 1/90000 s

    def __init__(self, path, fps: float, *, codec=None, crf=None, lossless=False, audio_from=None,
                 overwrite=False, pix_fmt=None):
        if not fps > 0:
            raise ValueError(f"fps must be > 0, got {fps}")
        suffix = Path(path).suffix.lower()
        if codec is None and suffix not in (".mp4", ".mov", ".mkv", ".webm"):
            raise ValueError(f"cannot tell the video format of '{path}' from its suffix; use .mp4, .mov, .mkv or .webm")
        self.codec, default_pix_fmt, self._options = _encoder(suffix, codec, crf, lossless)
        self.pix_fmt = pix_fmt or default_pix_fmt
        self._format = av.VideoFormat(self.pix_fmt)  # ValueError "not a pixel format: ..." if unknown
        self.fps = fps
        super().__init__(path, overwrite)
        self._audio_in = None
        if audio_from is not None:
            try:
                self._audio_in = av.open(os.fspath(audio_from))
            except av.error.FFmpegError as e:
                raise SinkError(f"cannot read audio from '{audio_from}': {e.strerror}") from e
            if not self._audio_in.streams.audio:
                self._audio_in.close()
                self._audio_in = None
        self._audio = None

    def _open(self, height: int, width: int) -> None:
        fmt = self._format
        self._pad = ((-height) % (4 // fmt.chroma_height(4)), (-width) % (4 // fmt.chroma_width(4)))
        self._out = av.open(str(self._tmp), "w")
        rate = Fraction(self.fps).limit_denominator(1001)
        self._stream = self._out.add_stream(self.codec, rate=rate, options=self._options)
        self._stream.width, self._stream.height = width + self._pad[1], height + self._pad[0]
        self._stream.pix_fmt = self.pix_fmt
        context = self._stream.codec_context
        context.time_base = _VIDEO_TIME_BASE
        self._yuv = not fmt.is_rgb
        if self._yuv:  # convert with BT.709 and tag it so, as players assume for HD; untagged is ambiguous
            context.colorspace = context.color_primaries = context.color_trc = 1  # BT.709
            context.color_range = 1  # limited ("MPEG") range
        if self._audio_in is not None:
            self._audio = AudioTrack(self._audio_in, self._out, self.path.suffix.lower())

    def _frame(self, qframe: QuantizedFrame) -> av.VideoFrame:
        rgb = qframe.rgb
        if any(self._pad):
            rgb = np.pad(rgb, ((0, self._pad[0]), (0, self._pad[1]), (0, 0)), mode="edge")
        frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
        if self._yuv:
            frame = frame.reformat(format=self.pix_fmt, dst_colorspace="ITU709", dst_color_range="MPEG")
        return frame

    def _write(self, qframe: QuantizedFrame) -> None:
        super()._write(qframe)
        if self._audio is not None:
            self._audio.mux_until(qframe.time, self._t0)

    def _finish(self) -> None:
        if self._audio is not None:
            last = self._interval or round(1 / (self.fps * _VIDEO_TIME_BASE))
            self._audio.finish(self._t0 + float((self._last_pts + last) * _VIDEO_TIME_BASE), self._t0)
        super()._finish()

    def _release(self) -> None:
        super()._release()
        if self._audio_in is not None:
            self._audio_in.close()


class GifWriter(_EncoderSink):
    """Write an animated GIF straight from the palette indices (no second quantization).

    Frame delays come from the frame times (GIF counts in 1/100 s); the last
    frame lasts as long as the one before it.

    Parameters
    ----------
    path : str or os.PathLike
        Output file.
    loop : int
        0 loops forever, -1 plays once, n > 0 repeats n times.
    overwrite : bool
        Replace an existing ``path``.
    local_palettes : bool
        Give every frame its own palette, even one equal to the file's global
        palette, so the frames can be copied into another GIF (what
        ``livequant batch`` does to join chunks).
    """

    def __init__(self, path, *, loop: int = 0, overwrite: bool = False, local_palettes: bool = False):
        if not isinstance(loop, int) or loop < -1:
            raise ValueError(f"loop must be an int >= -1 (0 loops forever, -1 plays once), got {loop!r}")
        self.loop = loop
        self.local_palettes = local_palettes
        super().__init__(path, overwrite)

    def _open(self, height: int, width: int) -> None:
        self._out = av.open(str(self._tmp), "w", format="gif", options={"loop": str(self.loop)})
        self._stream = self._out.add_stream("gif", options={"global_palette": "0"} if self.local_palettes else {})
        self._stream.width, self._stream.height, self._stream.pix_fmt = width, height, "pal8"
        self._stream.codec_context.time_base = self._stream.time_base = Fraction(1, 100)

    def _frame(self, qframe: QuantizedFrame) -> av.VideoFrame:
        return _pal8(qframe, unused_alpha=0)

    def _mux(self, packet: av.Packet) -> None:
        packet.duration = self._interval or 10
        self._out.mux(packet)


class ImageWriter(_FileSink):
    """Write frames as images: PNG with a palette (exact colours, small) or any format OpenCV writes.

    A path with a ``{}``/``{:04d}`` or ``%d``/``%04d`` pattern receives a
    sequence numbered from 1, one file per frame; a plain path receives the
    last frame written.

    Parameters
    ----------
    path : str or os.PathLike
        Output file or pattern; the suffix picks the format.
    overwrite : bool
        Replace existing files.
    """

    def __init__(self, path, overwrite: bool = False):
        text = os.fspath(path)
        if not cv2.haveImageWriter(text):
            raise ValueError(f"cannot write images of type '{Path(text).suffix}' ('{text}'); use .png, .jpg, .bmp...")
        self._pattern = text if re.search(r"\{[^{}]*\}|%0?\d*d", text) else None
        self._overwrite = overwrite
        self._last = None
        super().__init__(self._name(1) if self._pattern else text, overwrite)
        if self._pattern:
            self._tmp = None

    def _name(self, number: int) -> Path:
        return Path(self._pattern.format(number) if "%" not in self._pattern else self._pattern % number)

    def _write(self, qframe: QuantizedFrame) -> None:
        if self._pattern is None:
            self._last = qframe
            return
        target = self._name(self.frames + 1)
        if self.frames and target.exists() and not self._overwrite:
            raise SinkError(f"output '{target}' exists; use -y to overwrite")
        try:
            _write_still(_partial(target), qframe)
            os.replace(_partial(target), target)
        except BaseException:
            _partial(target).unlink(missing_ok=True)
            raise

    def _finish(self) -> None:
        if self._pattern is None:
            _write_still(self._tmp, self._last)


def _check_display() -> None:
    """Raise `SinkError` where no window can open (Qt would abort the process instead)."""
    display = os.environ.get("DISPLAY")
    local = re.fullmatch(r":(\d+)(\.\d+)?", display or "")
    if not sys.platform.startswith("linux"):
        return
    if not display:
        cause = "no display ($DISPLAY is not set)"
    elif local and not Path(f"/tmp/.X11-unix/X{local[1]}").exists():
        cause = f"no X server answers on $DISPLAY={display}"
    else:
        return
    raise SinkError(f"cannot open a preview window: {cause}; use `livequant transcode` to write a file instead")


class Preview:
    """Show frames in a window with a HUD and a palette strip, and take keys.

    Keys: ``+``/``=`` and ``-`` double or halve the colours (2..256), ``d``
    cycles the dither, ``p`` cycles the presets (``adaptive`` included), space
    freezes the palette, ``s`` saves ``livequant-snapshot-N.png`` in the
    current directory, ``q`` or Esc (or closing the window) sets
    ``quit_requested``. Without ``quantizer`` only ``s`` and quitting work.

    Parameters
    ----------
    title : str
        Window title.
    quantizer : livequant.quantizer.Quantizer, optional
        The quantizer the keys reconfigure.
    show_source : bool
        Show the input frame beside the quantized one.
    """

    def __init__(self, title: str = "livequant", quantizer=None, show_source: bool = False):
        _check_display()
        self.title = title
        self.quantizer = quantizer
        self.show_source = show_source
        self.quit_requested = False
        self._times = collections.deque(maxlen=30)
        self._last = None
        self._frozen = False
        self._preset = 0
        self._closed = False
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
        self._times.append(time.monotonic())
        cv2.imshow(self.title, self._compose(qframe))
        self.handle_key(cv2.waitKey(1))
        if not self._visible():
            self._closed = self.quit_requested = True

    def _visible(self) -> bool:
        try:
            return cv2.getWindowProperty(self.title, cv2.WND_PROP_VISIBLE) >= 1
        except cv2.error:  # Qt's answer once the user has closed the last window
            return False

    def _compose(self, qframe: QuantizedFrame) -> np.ndarray:
        """The window image (BGR): frame(s) scaled up to >= 480 px wide, HUD on top, palette strip below."""
        rgb = check_frame(qframe.rgb, "qframe.rgb")
        if self.show_source and qframe.source is not None and qframe.source.shape == rgb.shape:
            rgb = np.hstack([qframe.source, rgb])
        scale = -(-480 // rgb.shape[1])
        if scale > 1:
            rgb = cv2.resize(rgb, None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST)
        colors = np.asarray(qframe.palette.colors, np.uint8)
        width = rgb.shape[1]
        strip = np.broadcast_to(colors[np.arange(width) * len(colors) // width], (16, width, 3))
        image = cv2.cvtColor(np.vstack([rgb, strip]), cv2.COLOR_RGB2BGR)
        cv2.rectangle(image, (0, 0), (width, 22), (0, 0, 0), cv2.FILLED)
        cv2.putText(image, self._hud(qframe), (6, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 255), 1, cv2.LINE_AA)
        return image

    def _hud(self, qframe: QuantizedFrame) -> str:
        span = self._times[-1] - self._times[0]
        fps = (len(self._times) - 1) / span if span > 0 else 0.0
        dither = self.quantizer.dither if self.quantizer is not None else "-"
        name = getattr(qframe.palette, "name", "") or "adaptive"
        frozen = "  frozen" if self._frozen else ""
        lag = f"  lag {qframe.palette_lag}" if name == "adaptive" else ""
        return f"{fps:5.1f} fps  K={len(qframe.palette.colors)}  dither={dither}  palette={name}{lag}{frozen}"

    def handle_key(self, key: int) -> None:
        """Act on a key code as returned by ``cv2.waitKey`` (-1 for none)."""
        key &= 0xFF
        if key in (ord("q"), 27):
            self.quit_requested = True
        elif key == ord("s") and self._last is not None:
            self.snapshot()
        elif self.quantizer is None:
            return
        elif key in (ord("+"), ord("=")):
            self.quantizer.configure(n_colors=min(256, self.quantizer.n_colors * 2))
        elif key == ord("-"):
            self.quantizer.configure(n_colors=max(2, self.quantizer.n_colors // 2))
        elif key == ord("d"):
            current = DITHERS.index(self.quantizer.dither) if self.quantizer.dither in DITHERS else -1
            self.quantizer.configure(dither=DITHERS[(current + 1) % len(DITHERS)])
        elif key == ord("p"):
            cycle = ["adaptive", *presets.names()]
            self._preset = (self._preset + 1) % len(cycle)
            self.quantizer.configure(palette=cycle[self._preset])
        elif key == ord(" "):
            self._frozen = not self._frozen
            self.quantizer.configure(frozen=self._frozen)

    def snapshot(self) -> Path:
        """Save the last frame as ``livequant-snapshot-N.png`` (first free N) in the cwd; print and return it."""
        number = 1
        while (path := Path(f"livequant-snapshot-{number}.png")).exists():
            number += 1
        _write_still(path, self._last)
        print(f"saved {path}")
        return path

    def close(self) -> None:
        """Close the window (if the user has not already)."""
        if not self._closed and self._visible():
            self._closed = True
            cv2.destroyWindow(self.title)
            cv2.waitKey(1)
