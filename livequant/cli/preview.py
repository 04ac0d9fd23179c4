"""`livequant preview`: a camera, a file or the test pattern quantized live in a window, with `PreviewKeys`, and
``--record``.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path

from livequant import presets
from livequant.adapters import adapt, enlarge
from livequant.cli.common import TRANSCODE_FORMATS, is_still, open_input
from livequant.dither import DITHERS
from livequant.errors import UsageError, counted
from livequant.options import ANIMATIONS, check_size, make_quantizer, open_output, pixel_blocks
from livequant.palette import Palette
from livequant.pipeline import run
from livequant.quantizer import Quantizer
from livequant.sinks import Preview
from livequant.sources import (Images, Looping, Reconnecting, TestPattern, Webcam, is_picture_sequence, is_pipe,
                               list_cameras, loop_count)

__all__ = ["PreviewKeys", "preview_command"]


def preview_command(args) -> int:
    if args.list_cameras:
        found = list_cameras()
        print("\n".join(f"camera {i}" for i in found) if found else "no cameras found")
        return 0
    if args.size:
        check_size(f"--size {args.size[0]}x{args.size[1]}", *args.size, args.max_pixels)
    if args.reconnect and not args.source.isdigit():
        raise UsageError(f"--reconnect reopens a camera that stops, and '{args.source}' is not one (a camera is an "
                         "index such as 0); leave out --reconnect")
    if args.loop is not None and (args.source.isdigit() or args.source == "test" or is_pipe(args.source)):
        kind = "standard input, which can be read once" if is_pipe(args.source) else "a live source"
        raise UsageError(f"--loop plays a file again, and '{args.source}' is {kind}; leave out --loop")
    if args.source.isdigit():
        def camera():
            return Webcam(int(args.source), size=args.size, fps=args.fps)

        source = Reconnecting(camera) if args.reconnect else camera()
        loop = 0
    elif args.source == "test":
        source = TestPattern(size=args.size or (640, 360), fps=args.fps or 30.0, live=True)
        loop = 0
    elif is_still(args.source):
        # a still, shown over and over until the window closes, so the keys act on it
        if args.loop is not None:
            raise UsageError(f"--loop plays a file again, and '{args.source}' is a picture, shown until the window "
                             "closes; leave out --loop")
        source = adapt(Images(args.source, fps=args.fps or 10.0, max_pixels=args.max_pixels, repeat=True,
                              alpha=True), size=args.size, paced=True)
        loop = 0
    else:  # a video or pictures: shown at their own pace, dropping frames when quantizing falls behind
        def video():  # transparency kept for --record; the window shows it on a checkerboard
            return open_input(args.source, args.fps, args.max_pixels, alpha=True)

        loop = next((n for n in (args.loop, loop_count(args.source)) if n is not None), -1)
        played = video() if loop == -1 else Looping(video, loop)
        source = adapt(played, size=args.size, fps=None if is_picture_sequence(args.source) else args.fps,
                       paced=True)
    with source:
        shown = source.size
        size, n = pixel_blocks(shown, args.pixelate or 1, args.max_pixels)
        played = adapt(source, size=size) if n > 1 else source
        with _recorder(args, source, loop) as recorder, make_quantizer(args, background=True) as quantizer:
            keys = PreviewKeys(quantizer, args.palette)
            with Preview("livequant", on_key=keys, status=keys.status) as window:
                sinks = [enlarge(window, n, shown)] + ([enlarge(recorder, n, shown)] if recorder else [])
                stats = run(played, quantizer, sinks)
    print(f"{counted(stats.frames, 'frame')} at {stats.fps:.1f} fps, {stats.dropped} dropped, "
          f"{stats.latency_ms:.0f} ms from frame to quantized", file=sys.stderr)
    if recorder is not None:
        print(f"wrote {counted(recorder.frames, 'frame')} to {args.record}", file=sys.stderr)
    return 0


def _recorder(args, source, loop: int):
    """The sink `preview --record` writes what the window shows to, without sound (a null context without
    --record); it checks the file before the window opens. An animation holds every play the window showed:
    it plays once, or forever where the window played the source so (``loop`` 0: a live source, a still, a
    file that loops forever)."""
    if args.record is None:
        return contextlib.nullcontext()
    if Path(args.record).suffix.lower() not in TRANSCODE_FORMATS:
        raise UsageError(f"--record writes a video or an animation ({' '.join(TRANSCODE_FORMATS)}), not "
                         f"'{args.record}' (s in the window saves a picture); give one of those suffixes")
    plays = None if Path(args.record).suffix.lower() not in ANIMATIONS else 0 if loop == 0 else -1
    options = argparse.Namespace(output=args.record, input=args.source, fps=args.fps, codec=None, crf=None,
                                 lossless=False, loop=plays, no_audio=True, overwrite=args.overwrite)
    return open_output(options, source, [args.source] if Path(args.source).is_file() else [])


class PreviewKeys:
    """The preview's keys, wired to ``quantizer.configure``: ``+``/``=`` and ``-`` double or halve the colours
    (1..256; under a fixed palette, adaptive palettes of twice or half its colours), ``d`` cycles the dither,
    ``p`` cycles the presets (``adaptive`` included), space freezes the palette. Pass it as `Preview`'s
    ``on_key`` and its `status` as ``status``; ``palette`` is the fixed palette in force, if any."""

    def __init__(self, quantizer: Quantizer, palette: Palette | None = None):
        self.quantizer = quantizer
        self._cycle = ["adaptive", *presets.names()]
        shown = palette.name if palette is not None else "adaptive"  # ``p`` goes on from a preset in force
        self._preset = self._cycle.index(shown) if shown in self._cycle else 0
        self._fixed_colors = len(palette) if palette is not None else None
        self._frozen = False

    def __call__(self, key: int) -> None:
        q = self.quantizer
        if key in (ord("+"), ord("="), ord("-")):
            colors = q.n_colors if self._fixed_colors is None else self._fixed_colors
            colors = min(256, colors * 2) if key != ord("-") else max(1, colors // 2)
            q.configure(n_colors=colors, palette=None if self._fixed_colors is None else "adaptive")
            self._preset, self._fixed_colors = 0, None
        elif key == ord("d"):
            current = DITHERS.index(q.dither) if q.dither in DITHERS else -1
            q.configure(dither=DITHERS[(current + 1) % len(DITHERS)])
        elif key == ord("p"):
            self._preset = (self._preset + 1) % len(self._cycle)
            name = self._cycle[self._preset]
            self._fixed_colors = None if name == "adaptive" else len(presets.get(name))
            q.configure(palette=name)
        elif key == ord(" "):
            self._frozen = not self._frozen
            q.configure(frozen=self._frozen)

    def status(self) -> str:
        """The dither, and whether the palette is frozen, for the HUD."""
        return f"dither={self.quantizer.dither}{'  frozen' if self._frozen else ''}"
