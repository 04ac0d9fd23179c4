"""`livequant image` (one picture quantized) and `livequant palette` (a palette fitted to a picture or a video, or
a preset or a palette file converted).
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import os
import sys
from pathlib import Path

import numpy as np

from livequant import presets
from livequant.adapters import adapt, enlarge
from livequant.cli.common import (IMAGE_FORMATS, input_files, is_streamed, output_complete, output_name, quality_report,
                                  read_files, save_report, standard_output, warn_damage)
from livequant.colorspace import unique_rgb
from livequant.errors import SourceError, UsageError, counted
from livequant.frames import QuantizedFrame
from livequant.options import fit_palette, frame_size, sampled_pixels, transparency
from livequant.palette import SUFFIXES as PALETTE_SUFFIXES, Palette, file_format
from livequant.quantizer import quantize
from livequant.sinks import VIDEO_SUFFIXES, GifWriter, ImageWriter, check_target, numbered_files
from livequant.sources import IMAGE_SUFFIXES, STDIN, Images, VideoFile, is_animated, open_video

__all__ = ["image_command", "palette_command"]


def _indexed(rgb: np.ndarray) -> QuantizedFrame:
    """A `QuantizedFrame` of an image of at most 256 colours: its colours become the palette."""
    colors, inverse, _ = unique_rgb(rgb.reshape(-1, 3))
    return QuantizedFrame(rgb, inverse.reshape(rgb.shape[:2]).astype(np.uint8), Palette(colors))


def image_command(args) -> int:
    with standard_output(args, IMAGE_FORMATS):
        return _image_file(args)


def _image_file(args) -> int:
    suffix = Path(args.output).suffix.lower()
    if suffix in VIDEO_SUFFIXES:
        raise UsageError(f"`livequant image` writes one picture, not '{args.output}'; write .png, .gif or .jpg, or "
                          "use `livequant transcode` for video")
    if numbered_files(args.input):
        raise _one_picture_only(args, "names numbered pictures")
    inputs = read_files(args)
    report = quality_report(args, inputs)
    try:
        if suffix == ".gif":  # a still GIF: its one frame, the exact palette
            sink = GifWriter(args.output, loop=-1, overwrite=args.overwrite, inputs=inputs)
        else:
            sink = ImageWriter(args.output, overwrite=args.overwrite, inputs=inputs)
    except ValueError as e:
        raise UsageError(str(e)) from None
    streamed = is_streamed(args.input)
    if not streamed and is_animated(args.input):
        raise _not_one_picture(args, "is animated")
    if not streamed and Path(args.input).suffix.lower() not in IMAGE_SUFFIXES and _is_video(args.input):
        raise _not_one_picture(args, "is a video")
    with sink, (VideoFile if streamed else Images)(args.input, max_pixels=args.max_pixels,
                                                   **transparency(args)) as image:
        if not streamed and image.frame_count > 1:
            raise _one_picture_only(args, f"matches {image.frame_count} pictures")
        size, n, shown = frame_size(image.size, args)
        frames = list(itertools.islice(adapt(image, size=size), 2))
        if len(frames) > 1:
            raise _not_one_picture(args, "is a video")
        frame, _, *opaque = frames[0]
        opaque = opaque[0] if opaque else None
        rgb = quantize(frame, args.colors, palette=args.palette, dither=args.dither,
                       color_space=args.color_space, dither_strength=args.dither_strength, opaque=opaque)
        qframe = dataclasses.replace(_indexed(rgb), opaque=opaque)
        enlarge(sink, n, shown).write(qframe)
    if not args.quiet:
        lossy = " before JPEG's compression, which adds others" if suffix in (".jpg", ".jpeg") else ""
        print(f"wrote {output_name(args, sink.path)}: {counted(len(qframe.palette), 'colour')}{lossy}",
              file=sys.stderr)
    if report is not None:
        report.write(dataclasses.replace(qframe, source=frame))
        save_report(report, args)
    output_complete()
    return 0


def _is_video(path: str) -> bool:
    """Whether FFmpeg reads the file ``path`` as a video of two frames or more (`livequant image` was given one;
    FFmpeg reads an AVIF or HEIF still as a video of one frame)."""
    try:
        with VideoFile(path) as video:
            return len(list(itertools.islice(video, 2))) > 1
    except SourceError:
        return False


def _not_one_picture(args, what: str) -> UsageError:
    """The error for `livequant image` given a video or an animation (``what`` the input is)."""
    given = "-" if args.input == STDIN else args.input
    return UsageError(f"'{given}' {what}, and `livequant image` quantizes one picture; use `livequant "
                      f"transcode '{given}' '{Path(args.output).with_suffix('.gif')}'`")


def _one_picture_only(args, what: str) -> UsageError:
    """The error for `livequant image` given many pictures (``what`` the input does), with the command for all."""
    out = Path(args.output)
    return UsageError(f"'{args.input}' {what} and `livequant image` quantizes one; name one, or quantize them all "
                      f"with `livequant transcode '{args.input}' '{out.with_name(out.stem + '-%04d' + out.suffix)}'`")


def palette_command(args) -> int:
    output = None if args.output is None else Path(args.output)
    if output is None and args.overwrite:
        raise UsageError("-y replaces the palette file given with -o, and there is none; leave out -y")
    if output is not None:
        if args.output == "-" or output.is_dir():
            where = "standard output" if args.output == "-" else f"'{output}', a folder"
            raise UsageError(f"-o names the palette file to write, not {where}; the colours are printed either way: "
                             "give -o a file name (.gpl .act .json .hex .txt .png), or leave it out")
        try:
            file_format(output)  # is the suffix a palette format? Checked before any work
        except ValueError as e:
            raise UsageError(str(e)) from None
        # the input itself, a folder there, or a file for a folder, or -y missing
        check_target(output, args.overwrite, input_files(args.input))
    name = "" if output is None else os.fsencode(output.stem).decode(errors="replace")  # a palette's name is text
    given = _given_palette(args.input)
    if given is not None:
        for option, flag in (("colors", "-k"), ("color_space", "--color-space")):
            if getattr(args, option) is not None:
                raise UsageError(f"{flag} applies to a palette fitted to a picture, and '{args.input}' is a "
                                 f"palette already; leave out {flag}")
        _print_and_save(Palette(given.colors, name=name or given.name), output, args)
        return 0
    args.colors = 16 if args.colors is None else args.colors
    args.color_space = args.color_space or "oklab"
    picture = (Path(args.input).suffix.lower() in IMAGE_SUFFIXES and not is_streamed(args.input)
               and not is_animated(args.input))
    if picture and not numbered_files(args.input):
        with Images(args.input, max_pixels=args.max_pixels, alpha=True) as source:  # every image of a glob
            pixels = sampled_pixels(source, most=source.frame_count)
    else:
        with open_video(args.input, max_pixels=args.max_pixels, alpha=True) as video:
            if video.endless:
                raise UsageError(f"`livequant palette` reads its input through, and '{args.input}' does not say how "
                                 "long it lasts (a live stream?); save a stretch of it first: `livequant transcode "
                                 f"'{args.input}' clip.mkv --lossless --duration 10`")
            pixels = sampled_pixels(video, most=32)
        warn_damage(video.undecodable, video.damaged)
    if not len(pixels):
        raise UsageError(f"'{args.input}' is wholly transparent: no colour shows to fit a palette to")
    _print_and_save(fit_palette(pixels, args, name), output, args)
    return 0


def _given_palette(text: str) -> Palette | None:
    """The palette ``text`` names for `livequant palette` to convert: a preset that is not a file there, or a
    palette file other than a PNG swatch (a PNG is a picture to fit to); None for anything else."""
    if not os.path.exists(text):
        with contextlib.suppress(ValueError):
            return presets.get(text)
    suffix = Path(text).suffix.lower()
    if suffix in PALETTE_SUFFIXES and suffix not in IMAGE_SUFFIXES:
        try:
            return Palette.from_file(text)
        except ValueError as e:  # not that format inside
            raise UsageError(str(e)) from None
    return None


def _print_and_save(palette: Palette, output: Path | None, args) -> None:
    """Print ``palette``'s colours as hex codes and, given ``output``, save it there."""
    print(" ".join(palette.to_hex()))
    if output is not None:
        palette.save(output, overwrite=args.overwrite)
        if not args.quiet:
            print(f"wrote {output}: {counted(len(palette), 'colour')}", file=sys.stderr)
