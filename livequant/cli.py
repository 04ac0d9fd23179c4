"""The ``livequant`` command: preview, transcode, batch, image, palette and demo.

Each command parses its options, opens the source and sinks (which check the
output before any work), and hands them to `livequant.pipeline.run`. Errors a
user can fix print one line, ``livequant: error: ...``, and exit 2 (bad usage)
or 1; Ctrl-C and SIGTERM finish the output written so far and exit 130 / 143.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import glob
import inspect
import itertools
import logging
import math
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from numba.core.event import Listener, install_listener

from livequant import __version__, presets
from livequant.adapters import adapt, enlarge
from livequant.colorspace import COLOR_SPACES, unique_rgb
from livequant.demo import SETTINGS, run_demo
from livequant.dither import DITHERS
from livequant.errors import (LivequantError, SinkError, SourceError, UsageError, appeared_meanwhile, counted,
                              write_failed)
from livequant.frames import QuantizedFrame
from livequant.gif import MAX_LOSSY
from livequant.interrupts import interrupts_held
from livequant.options import (ALPHA_OUTPUTS, ANIMATIONS, carries_audio, check_size, fit_palette, frame_size,
                               global_palette, make_quantizer, open_output, pixel_blocks, sampled_pixels, transparency)
from livequant.palette import SUFFIXES as PALETTE_SUFFIXES, Palette, file_format
from livequant.pipeline import run
from livequant.quantizer import Quantizer, quantize
from livequant.report import QualityReport, check_path
from livequant.sinks import (MAX_LOOP, NUMBERED, VIDEO_SUFFIXES, GifWriter, ImageWriter, Preview, VideoWriter,
                             check_target, numbered_files)
from livequant.sources import (IMAGE_SUFFIXES, MAX_PIXELS, STDIN, Images, Looping, Reconnecting, TestPattern, VideoFile,
                               Webcam, damage_note, is_animated, is_picture_sequence, is_pipe, list_cameras, loop_count,
                               open_video)

__all__ = ["PreviewKeys", "main"]

_DEFAULTS = {name: p.default for name, p in inspect.signature(Quantizer).parameters.items()}
_COLOUR_DEFAULTS = {"colors": 16, "dither_strength": _DEFAULTS["dither_strength"],
                    "refit_every": _DEFAULTS["refit_every"], "stability": _DEFAULTS["stability"]}
_EXACT_COLOURS = ("Exact colours: 4:2:0 video (the default for .mp4 .mov .webm) blurs a palette's colours at\n"
                  "edges; use --lossless (FFV1 in .mkv, libx264rgb in .mp4) or write .gif or .png for exact ones.\n"
                  "In 4:2:0 video an odd width or height is padded to even by repeating the last column or row.")
_EXAMPLES = """examples:
  livequant demo                             see what it does (no camera or download needed)
  livequant preview                          camera 0, live; `livequant preview test` without a camera
  livequant transcode in.mp4 out.gif -k 16 --dither bayer
  livequant transcode in.mp4 out.webp -k 64 --report quality.png
  livequant transcode in.mp4 out.mp4 --palette gameboy --pixelate 4
  livequant image photo.jpg small.png --palette pico8 --dither floyd-steinberg
  livequant palette photo.jpg -o photo.gpl -k 8
  livequant palette pico8 -o pico8.gpl            a preset, in GIMP's format
  livequant batch clips/ -o out/ --to gif -k 32   every video of clips/, on all cores

`livequant COMMAND --help` describes each command."""


class _Terminated(KeyboardInterrupt):
    """SIGTERM, handled as Ctrl-C is (the sinks finish their files), then exit status 143."""


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line, raised as `UsageError` so `main` returns 2."""

    def error(self, message: str):
        raise UsageError(f"{message}; see `{self.prog} --help`")


# ----------------------------------------------------------------- option types

def _number(kind, low=None, high=None, *, above=None):
    """An argparse type: ``kind(text)`` checked against ``low <= value <= high`` and ``value > above``."""
    allowed = (f"in {low}..{high}" if high is not None else f">= {low}" if low is not None else f"> {above}")

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {'an integer' if kind is int else 'a number'}, "
                                             f"got {text!r}") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
        if (low is not None and value < low) or (high is not None and value > high) or \
                (above is not None and not value > above):
            raise argparse.ArgumentTypeError(f"must be {allowed}, got {text}")
        return value

    return parse


def _size(text: str) -> tuple[int, int]:
    width, _, height = text.lower().partition("x")
    if not (width.isdigit() and height.isdigit() and int(width) >= 16 and int(height) >= 16):
        raise argparse.ArgumentTypeError(f"expected WxH such as 640x360 (each >= 16), got {text!r}")
    return int(width), int(height)


class _PaletteOption(argparse.Action):
    """``--palette``: the preset or palette file, resolved; a file's path is kept in ``palette_file``, since
    no output may replace it."""

    def __call__(self, parser, namespace, text, option_string=None):
        try:
            namespace.palette = presets.resolve(text)
        except (ValueError, SourceError) as e:
            raise argparse.ArgumentError(self, str(e)) from None
        namespace.palette_file = text if os.path.isfile(text) else None


# ---------------------------------------------------------------- the parser

def _add_colour_options(parser: argparse.ArgumentParser, *, video: bool) -> None:
    group = parser.add_argument_group("palette and colours")
    # Options of fitted palettes and of dithers default to None here, so that one given where it does nothing
    # (-k with --palette, --dither-strength without --dither) is an error; `_check_colour_options` fills in
    # the defaults.
    group.add_argument("-k", "--colors", type=_number(int, 1, 256), metavar="K",
                       help=f"palette size when the palette is fitted to the picture, 1..256 (default: "
                            f"{_COLOUR_DEFAULTS['colors']})")
    group.add_argument("--palette", action=_PaletteOption, metavar="NAME|FILE",
                       help="a fixed palette: a preset (listed below) or a palette file (.gpl .act .json .hex "
                            ".png); default: adaptive, fitted to the picture")
    group.add_argument("--dither", choices=DITHERS, default="none", metavar="NAME",
                       help=f"{', '.join(DITHERS)} (default: none)")
    group.add_argument("--dither-strength", type=_number(float, 0, 2), metavar="S",
                       help=f"0..2, scales the dither (default: {_COLOUR_DEFAULTS['dither_strength']:g})")
    group.add_argument("--color-space", choices=COLOR_SPACES, default="oklab",
                       help="where colours are fitted and compared: oklab (perceptual) or rgb (default: oklab)")
    if video:
        group.add_argument("--refit-every", type=_number(int, 0), metavar="N",
                           help="consider refitting an adaptive palette every N frames; 0: only on a drift "
                                f"or scene cut (default: {_COLOUR_DEFAULTS['refit_every']})")
        group.add_argument("--stability", type=_number(float, 0), metavar="S",
                           help="how much refits avoid flicker on still parts; 0 takes every refit "
                                f"(default: {_COLOUR_DEFAULTS['stability']:g})")
    parser.set_defaults(palette_file=None)


def _check_colour_options(args) -> None:
    """Refuse the colour options given where they do nothing, then fill in the defaults of those not given."""
    fitted = ("colors", "refit_every", "stability")
    given = [name for name in fitted if getattr(args, name, None) is not None]
    if args.palette is not None and given:
        raise UsageError(f"{_flag(given[0])} applies to palettes fitted to the picture, and --palette gives a "
                         "fixed one; leave out one")
    if getattr(args, "gif_palette", None) == "global" and set(given) & {"refit_every", "stability"}:
        option = _flag(next(name for name in given if name != "colors"))
        raise UsageError(f"{option} applies to a palette that follows the video, and --gif-palette global fits "
                         "one for every frame; leave out one")
    if args.dither_strength is not None and args.dither == "none":
        raise UsageError("--dither-strength scales a dither; add --dither NAME or leave it out")
    for name, default in _COLOUR_DEFAULTS.items():
        if hasattr(args, name) and getattr(args, name) is None:
            setattr(args, name, default)


def _flag(name: str) -> str:
    return {"colors": "-k/--colors"}.get(name, "--" + name.replace("_", "-"))


def _colour(text: str) -> tuple[int, int, int]:
    """A colour option: white, black or a hex code (#rrggbb)."""
    named = {"white": "#ffffff", "black": "#000000"}.get(text.lower(), text)
    try:
        return tuple(Palette.from_hex([named]).colors[0].tolist())
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a colour; give white, black or a hex code such as "
                                         "'#20a0ff'") from None


def _add_background_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--background", type=_colour, metavar="COLOUR",
                        help="flatten transparent pixels on COLOUR: white, black or #rrggbb (default: keep them "
                             f"where the output holds transparency, {' '.join(ALPHA_OUTPUTS)}, else white)")


def _add_size_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("size")
    scale = group.add_mutually_exclusive_group()
    scale.add_argument("--scale", type=_number(float, above=0), metavar="F", help="resize by F, keeping the aspect")
    scale.add_argument("--width", type=_number(int, 2), metavar="W", help="resize to W pixels wide, keeping the aspect")
    _add_pixelate(group)


def _add_pixelate(parser) -> None:
    parser.add_argument("--pixelate", type=_number(int, 2), metavar="N",
                        help="the pixel-art look: shrink N times, quantize, enlarge N times with hard pixel edges")


def _add_encoding_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("video encoding")
    group.add_argument("--crf", type=_number(float, 0), help="quality: lower is better and larger, 0..51 for "
                       "H.264 and H.265, 0..63 for VP9 and AV1 (libsvtav1), the quantizer 1..31 for MPEG-4 part 2, "
                       "MPEG-1/2 and Motion JPEG (FFmpeg's -q:v); other encoders take none (default: 20 for H.264, "
                       "32 for VP9, 3 for the quantizer)")
    group.add_argument("--codec", help="FFmpeg encoder, such as libx264, libvpx-vp9, ffv1 (default: by suffix)")
    group.add_argument("--lossless", action="store_true", help="keep every pixel exact: FFV1 in .mkv, VP9 in "
                       ".webm, libx264rgb otherwise (larger files); with --codec, one of those three")
    group.add_argument("--no-audio", action="store_true", help="leave the input's audio out")


def _add_output_flags(parser: argparse.ArgumentParser, overwrite: str, quiet: str | None = None) -> None:
    """-y (with its help text ``overwrite``), -q when ``quiet`` says what it silences, and --max-pixels."""
    parser.add_argument("-y", "--overwrite", action="store_true", help=overwrite)
    if quiet:
        parser.add_argument("-q", "--quiet", action="store_true", help=quiet)
    _add_max_pixels(parser)


#: ``-`` as an output: standard output.
STDOUT = "-"


def _add_standard_output(parser: argparse.ArgumentParser, formats: str) -> None:
    """--to, the format of standard output (``formats``: examples for the help)."""
    parser.add_argument("--to", metavar="SUFFIX", help=f"with - as the output, what to write to standard output: "
                        f"{formats}; it goes out once complete")


def _add_max_pixels(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--max-pixels", type=_number(int, 1, 2**31 - 1), default=MAX_PIXELS, metavar="N",
                        help="refuse input pictures, and frame sizes the options ask for, of more than N pixels, "
                             "which guards against decompression bombs and exhausted memory "
                             f"(default: {MAX_PIXELS}, 100 megapixels)")


def _add_report_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--report", metavar="FILE",
                        help="write a quality report of every quantized frame, before encoding (so not of a lossy "
                             "video's own loss; frames a GIF leaves out, under 2/100 s apart, are in it; with "
                             "--pixelate, the frames before they are enlarged): .json (PSNR, CIEDE2000 and "
                             "flicker per frame, refits, scene cuts, each palette) or .png .svg .pdf (a palette "
                             "timeline with PSNR and flicker; needs matplotlib: pip install 'livequant[report]')")


def _add_animation_options(parser: argparse.ArgumentParser, *, report: bool = True) -> None:
    group = parser.add_argument_group("animated outputs (.gif .webp .apng)" + (" and the report" if report else ""))
    group.add_argument("--quality", type=_number(float, 0, 100), metavar="Q",
                       help="lossy animated WebP at quality Q, 0..100 (default: lossless)")
    group.add_argument("--loop", type=_number(int, -1, MAX_LOOP), metavar="N",
                       help="how often the animation plays: 0 loops forever, -1 plays once, N > 0 repeats N times "
                            "(default: as often as an input GIF does, else forever)")
    group.add_argument("--gif-palette", choices=("track", "global"), default="track",
                       help="track: the palette follows the video as it goes (default); global: one palette "
                            "fitted to frames sampled from the whole input, then used for every frame (offline: "
                            "reads the input twice)")
    group.add_argument("--gif-lossy", type=_number(float, 0, MAX_LOSSY), default=0.0, metavar="LEVELS",
                       help="GIF: a pixel may keep the colour it shows already up to LEVELS away (RGB distance, "
                            "0..442), and show another colour of the frame's table where that lets LZW pack it with "
                            "the pixels before it, at most LEVELS away and no farther than its neighbours' colours "
                            "are (flat areas stay exact): smaller files for a little error, as gifsicle --lossy "
                            "(default: 0, every pixel exact)")
    if report:
        _add_report_option(group)


def _presets_epilog() -> str:
    lines = [f"  {name:<16}{text}" for name, text in presets.descriptions().items()]
    lines.append(f"  {'grayN':<16}N evenly spaced grays, N in 2..256")
    return "palette presets (--palette NAME):\n" + "\n".join(lines)


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="livequant", description="Turn webcam and video into limited-palette video, live.",
                     epilog=_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"livequant {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, summary: str, description: str, epilog: str | None = None):
        return commands.add_parser(name, help=summary, description=f"{summary}.\n\n{description}", epilog=epilog,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)

    p = command("preview", "Show a camera, video or test pattern quantized, live, in a window",
                "Keys: + / - double or halve the colours, d cycles the dither, p cycles the presets, space\n"
                "freezes the palette, s saves a PNG snapshot in the current folder, q or Esc quits.",
                _presets_epilog())
    p.add_argument("source", nargs="?", default="0",
                   help="camera index (default: 0), `test` for the built-in test pattern, a video file or URL, - "
                        "(standard input), pictures (frames/%%04d.png, 'frames/*.png'), or a picture, shown until "
                        "the window closes")
    p.add_argument("--list-cameras", action="store_true", help="list the cameras that can be opened, and exit")
    p.add_argument("--size", type=_size, metavar="WxH",
                   help="frame size: asked of the camera or test pattern; a video or pictures are resized to it")
    p.add_argument("--fps", type=_number(float, 0.01, 1000), help="frame rate, 0.01..1000: asked of the camera or "
                   "test pattern; pictures (frames/%%04d.png, 'frames/*.png') play at it (else 25); a video is "
                   "shown at it, frames dropped or repeated by their timestamps")
    p.add_argument("--reconnect", action="store_true",
                   help="if the camera stops delivering frames, try to reopen it once a second for up to 30 s, "
                        "showing the last frame meanwhile, instead of ending")
    p.add_argument("--loop", type=_number(int, -1, MAX_LOOP), metavar="N",
                   help="how often a video, pictures or an animation plays: 0 until the window closes, -1 once, "
                        "N > 0 repeats N times (default: as often as a GIF says, else once)")
    _add_pixelate(p)
    p.add_argument("--record", metavar="FILE", help="also write what the window shows to FILE, without sound: "
                   f"{' '.join(VIDEO_SUFFIXES)} video, or a .gif .webp .apng animation (which keep the input's "
                   "transparency; the window shows it on a checkerboard)")
    p.add_argument("-y", "--overwrite", action="store_true", help="replace the --record file if it exists")
    _add_max_pixels(p)
    _add_colour_options(p, video=True)
    p.set_defaults(func=_preview)

    p = command("transcode", "Quantize a video into a video, a GIF or images",
                f"The output type follows its suffix: .gif (an animated GIF with the exact palette), .webp\n"
                f"(animated WebP, lossless unless --quality), .apng (animated PNG, lossless), .png/.jpg (one\n"
                f"picture: an input of one frame, or one file per frame with a pattern such as frame-%04d.png),\n"
                f".mp4 .mov .mkv .webm a video with the input's audio (another container with --codec).\n"
                f"Transparency is kept in .gif .webp .apng .png .tif (a GIF then holds 255 colours a frame and\n"
                f"the transparent one) and flattened on white elsewhere or on --background; frames that cannot\n"
                f"be decoded are skipped and counted.\n\n{_EXACT_COLOURS}",
                _presets_epilog())
    p.add_argument("input", help="video file or URL, - (standard input: MKV, MPEG-TS, or MP4 with its index "
                   "first), or pictures: numbered, frames/%%04d.png, or a quoted glob, 'frames/*.png' (played at "
                   "--fps, else 25 fps)")
    p.add_argument("output", help="output file: .mp4 .mov .mkv .webm .gif .webp .apng .png .jpg, or an image "
                   "pattern; - for standard output (with --to)")
    _add_standard_output(p, "gif, mp4, mkv, webm, webp, apng, ...")
    _add_colour_options(p, video=True)
    _add_size_options(p)
    group = p.add_argument_group("time")
    group.add_argument("--fps", type=_number(float, 0.01, 1000), help="output frame rate, 0.01..1000: frames are "
                       "dropped or repeated by their timestamps (default: the input's timing; a GIF shows at most 50 "
                       "fps, as players do, keeping the duration)")
    group.add_argument("--start", type=_number(float, 0), metavar="SECONDS", help="start this far into the input")
    group.add_argument("--duration", type=_number(float, above=0), metavar="SECONDS", help="transcode this long")
    _add_encoding_options(p)
    _add_animation_options(p)
    _add_background_option(p)
    _add_output_flags(p, "replace the output if it exists", "no progress or summary on stderr")
    p.set_defaults(func=_transcode)

    p = command("batch", "Quantize many videos, or long ones in chunks, on a Dask cluster",
                "Inputs are files, folders (their videos at any depth) or globs; each output keeps its name\n"
                "relative to the folder or to the glob's fixed part, under OUTDIR. By default a local cluster\n"
                "of --workers processes runs here; --scheduler uses a running Dask cluster (`dask scheduler`,\n"
                "`dask worker` on each machine, the paths on a shared filesystem). Files longer than 1.5 x\n"
                "--chunk-seconds are cut at scene cuts (and long shots at keyframes) into chunks encoded in\n"
                "parallel and joined without re-encoding (not with --report or --gif-palette global, which\n"
                "measure or fit over the whole file). OUTDIR/livequant-manifest.jsonl records each file\n"
                f"done or failed; --resume skips what is done with the same settings.\n\n{_EXACT_COLOURS}",
                _presets_epilog())
    p.add_argument("inputs", nargs="+", metavar="INPUT",
                   help="video files, folders (their videos and animated pictures) or globs (quoted)")
    p.add_argument("-o", "--output", required=True, type=Path, metavar="OUTDIR", help="folder for the outputs")
    p.add_argument("--to", metavar="SUFFIX", help="output format: mp4, webm, mkv, gif, ... (default: each "
                   "input's own)")
    p.add_argument("--workers", type=_number(int, 1), metavar="N",
                   help="worker processes of the local cluster (default: the number of cores)")
    p.add_argument("--scheduler", metavar="ADDRESS", help="a running Dask scheduler, such as tcp://host:8786")
    p.add_argument("--resume", action="store_true", help="skip the files the manifest records as done with the "
                   "same settings and an unchanged input; redo the rest")
    p.add_argument("--chunk-seconds", type=_number(float, 0), default=20.0, metavar="S",
                   help="length of the chunks long files are cut into; 0: never cut (default: 20)")
    p.add_argument("--replay-seconds", type=_number(float, 0), default=30.0, metavar="S",
                   help="a chunk that starts inside a long shot, within S seconds of the shot's start, first "
                        "quantizes the shot from its start without writing it, and is then exactly the "
                        "sequential transcode with an invisible seam; one further in warms up over 2 s and "
                        "starts close to it (default: 30)")
    p.add_argument("--report", choices=("json", "png"),
                   help="also write a quality report beside each output, NAME.report.json or .png (see "
                        "`livequant transcode --help`); files are then transcoded whole, not cut into chunks, "
                        "since the report measures the flicker between every pair of frames")
    _add_colour_options(p, video=True)
    _add_background_option(p)
    _add_size_options(p)
    _add_encoding_options(p)
    _add_animation_options(p, report=False)
    _add_output_flags(p, "replace outputs that exist", "no progress bar")
    p.set_defaults(func=_batch)

    p = command("image", "Quantize a still image",
                "PNG output is an indexed PNG of the palette's exact colours, GIF output a still GIF.\n"
                "Transparency is kept in .png .gif .webp .tif and flattened on white elsewhere or on\n"
                "--background.", _presets_epilog())
    p.add_argument("input", help="image file (.png .jpg .bmp .tif .webp ...), URL, or - (standard input)")
    p.add_argument("output", help="output image (.png and .gif keep the exact palette); - for standard output "
                   "(with --to)")
    _add_standard_output(p, "png, gif, jpg, ...")
    _add_colour_options(p, video=False)
    _add_background_option(p)
    _add_size_options(p)
    _add_report_option(p)
    _add_output_flags(p, "replace the output if it exists", "no summary on stderr")
    p.set_defaults(func=_image)

    p = command("palette", "Extract a palette from an image or a video, or convert one",
                "A video is sampled at frames spread over its length; transparent pixels are left out. The\n"
                "colours are printed as hex codes. A preset or a palette file (.gpl .act .json .hex .txt) is\n"
                "printed as it is, and saved in the format -o asks for: `livequant palette pico8 -o pico8.gpl`.",
                _presets_epilog())
    p.add_argument("input", help="image or video file, URL, or - (standard input); or a palette to convert: a "
                                 "preset or a palette file")
    p.add_argument("-o", "--output", metavar="FILE",
                   help="also save the palette: the suffix picks the format: .gpl .act .json .hex .txt .png")
    p.add_argument("-k", "--colors", type=_number(int, 1, 256), metavar="K",
                   help="number of colours, 1..256 (default: 16)")
    p.add_argument("--color-space", choices=COLOR_SPACES, help="oklab (perceptual, the default) or rgb")
    _add_output_flags(p, "replace the output if it exists", "no summary on stderr (the colours still print)")
    p.set_defaults(func=_extract_palette)

    p = command("demo", "Quantize a built-in scene a few ways: MP4, GIF and a contact sheet",
                "Needs no camera and no download. Writes into DIR (created if missing) NAME.mp4 and NAME.gif\n"
                f"for each NAME of {', '.join(stem for stem, _, _ in SETTINGS)},\n"
                "and contact-sheet.png (the original beside each version). Running it again replaces these\n"
                "files and touches nothing else in DIR; files of these names it did not write stay, unless -y.")
    p.add_argument("-o", "--output", type=Path, default=Path("livequant-demo"), metavar="DIR",
                   help="folder for the files (default: ./livequant-demo)")
    p.add_argument("--frames", type=_number(int, 1, 9000), default=45, metavar="N",
                   help="length of the scene in frames at 15 fps, 1..9000 (default: 45)")
    p.add_argument("-y", "--overwrite", action="store_true",
                   help="replace files of the demo's names in DIR that it did not write")
    p.set_defaults(func=_demo)
    return parser


# ------------------------------------------------------------------ helpers

class _Progress:
    """``on_frame`` for `run`: frames, fps and ETA as a tqdm bar on stderr, from 0.5 s into the run (redrawn
    every 0.25 s on a terminal, else a line every 5 s)."""

    def __init__(self, total: int | None, enabled: bool = True):
        from tqdm import tqdm  # 25 ms of imports, not paid by --help and errors

        tty = sys.stderr.isatty()
        self._bar = tqdm(total=total, unit="frame", disable=not enabled, dynamic_ncols=True, smoothing=0.1,
                         mininterval=0.25 if tty else 5.0, delay=0.5 if tty else 5.0)

    def __call__(self, qframe, stats) -> None:
        self._bar.update(stats.frames - self._bar.n)

    def close(self) -> None:
        """End the bar."""
        self._bar.close()


# ------------------------------------------------------------------ commands

def _input_files(spec: str) -> list[str]:
    """The files an input names (outputs must be none of them): itself (also without FFmpeg's ``file:``
    prefix), the files its glob pattern matches, or those its image-sequence pattern numbers."""
    path = spec.removeprefix("file:")
    found = [spec, path, *(glob.glob(path) if any(c in path for c in "*?[") else ())]
    numbered = numbered_files(path)
    if numbered:
        anything = "*".join(glob.escape(part) for part in NUMBERED.split(path))
        found += [name for name in glob.glob(anything) if numbered.fullmatch(os.path.abspath(name))]
    return found


def _read_files(args) -> list[str]:
    """The files a command reads, which no output may replace: the input's (`_input_files`) and the
    ``--palette`` file."""
    return _input_files(args.input) + ([args.palette_file] if args.palette_file else [])


def _expected_frames(source, args) -> int | None:
    """How many frames the output will have, if it can be told (for the ETA)."""
    if source.frame_count and not args.fps:
        return source.frame_count
    rate = args.fps or source.fps
    length = (source.frame_count / source.fps if source.frame_count and source.fps
              else getattr(source, "seconds_left", None))
    seconds = min(filter(None, (args.duration, length)), default=None)  # --duration may outlast the input
    return round(seconds * rate) if seconds and rate and math.isfinite(seconds * rate) else None


def _report(args, inputs) -> QualityReport | None:
    """A `QualityReport` when ``--report`` asks for one; its file is checked before any work (as an output:
    not one of ``inputs``, nor the output itself)."""
    if not args.report:
        return None
    try:
        path = check_path(args.report)
    except ValueError as e:
        raise UsageError(str(e)) from None
    numbered = numbered_files(args.output)
    if os.path.abspath(path) == os.path.abspath(args.output) or numbered and numbered.fullmatch(os.path.abspath(path)):
        raise UsageError(f"--report '{args.report}' is the output; give the report another name")
    check_target(path, args.overwrite, inputs)
    return QualityReport()


def _save_report(report: QualityReport | None, args) -> None:
    if report is not None:
        try:
            report.save(args.report, overwrite=args.overwrite)
        except FileExistsError:
            raise appeared_meanwhile(args.report, "report") from None
        except OSError as e:
            raise write_failed("write the report", args.report, e) from e
        if not getattr(args, "quiet", False):
            print(f"wrote {args.report}: {report.summary()}", file=sys.stderr)


def _open_video(path: str, fps: float | None, max_pixels: int, carry_audio: bool = False, **options):
    """``path`` as a `VideoFile`, or an `AnimatedWebP` (`open_video`; ``options``: its start, duration, alpha,
    background); pictures (numbered or a glob) play at ``fps`` (else FFmpeg's 25), a video at its own times.
    With ``carry_audio``, a URL's or standard input's sound is demuxed with the video."""
    return open_video(path, **options, fps=fps if is_picture_sequence(path) else None, max_pixels=max_pixels,
                      carry_audio=carry_audio and _streamed(path))


def _is_still(path: str) -> bool:
    """Whether ``path`` is one picture file (not numbered ones, a glob, an animation, a URL or a pipe)."""
    return (Path(path).suffix.lower() in IMAGE_SUFFIXES and not _streamed(path)
            and not is_picture_sequence(path) and not is_animated(path))


def _streamed(path: str) -> bool:
    """Whether ``path`` is a URL or standard input, which FFmpeg reads (a picture there too)."""
    return "://" in path or is_pipe(path)


def _global_palette(args, timing: dict) -> Palette:
    """``--gif-palette global``: one palette fitted to frames sampled over the input (a first reading)."""
    with _open_video(args.input, args.fps, args.max_pixels, **timing, **transparency(args)) as video:
        if video.endless and "duration" not in timing:
            raise UsageError(f"--gif-palette global reads the input through before writing, and '{args.input}' "
                             "does not say how long it lasts (a live stream?); add --duration, or leave out "
                             "--gif-palette global")
        return global_palette(args, video)


#: What `livequant transcode` and `livequant image` write to standard output (``--to``).
TRANSCODE_FORMATS = (".gif", *VIDEO_SUFFIXES, ".webp", ".apng")  # one picture: `livequant image`
IMAGE_FORMATS = (".png", ".gif", ".jpg", ".webp", ".bmp", ".tif")


@contextlib.contextmanager
def _standard_output(args, formats: tuple[str, ...]):
    """Within, ``args.output`` is the output file; for ``-``, a temporary file of --to's format (one of
    ``formats``), which goes to standard output once the command has written it: complete, as muxers go back
    to fill in what they could not know at the start (an MP4's index, a WebP's size)."""
    if args.output != STDOUT:
        if args.to is not None:
            raise UsageError(f"--to says what to write to standard output (the output -), and '{args.output}' is a "
                             "file, whose suffix says it; leave out --to")
        yield
        return
    names = " ".join(suffix.lstrip(".") for suffix in formats)
    if args.to is None:
        raise UsageError(f"the output - is standard output: add --to with what to write there ({names})")
    suffix = "." + args.to.lower().lstrip(".")
    if suffix not in formats:
        one = "; for one picture, use `livequant image`" if suffix in IMAGE_FORMATS else ""
        raise UsageError(f"--to {args.to}: standard output takes {names}{one}")
    if sys.stdout.isatty():
        raise UsageError(f"standard output is a terminal, which shows no {suffix} file; send it to a file (> "
                         f"out{suffix}) or a pipe")
    with tempfile.TemporaryDirectory(prefix="livequant-") as folder:
        args.output = os.path.join(folder, "output" + suffix)
        try:
            yield
            if os.path.exists(args.output):
                _send(args.output)
        finally:
            args.output = STDOUT


def _send(path: str) -> None:
    """Copy the file at ``path`` to standard output."""
    try:
        with open(path, "rb") as written:
            shutil.copyfileobj(written, sys.stdout.buffer)
        sys.stdout.buffer.flush()
    except BrokenPipeError:
        nowhere = os.open(os.devnull, os.O_WRONLY)
        os.dup2(nowhere, sys.stdout.fileno())  # else Python's last flush of it fails again, with a traceback
        os.close(nowhere)
        raise SinkError("standard output was closed before all of the output went out (the program reading it "
                        "stopped)") from None


def _output_name(args, name) -> str:
    """The output as messages name it: ``name``, or standard output and its format."""
    return f"standard output ({args.to.lower().lstrip('.')})" if args.to else str(name)


def _check_gif_palette(args) -> None:
    """Refuse --palette with --gif-palette global, which fits its own."""
    if args.gif_palette == "global" and args.palette is not None:
        raise UsageError("--gif-palette global fits its own palette; leave out --palette")


def _transcode(args) -> int:
    with _standard_output(args, TRANSCODE_FORMATS):
        return _transcode_file(args)


def _transcode_file(args) -> int:
    inputs = _read_files(args)
    timing = {k: v for k, v in (("start", args.start), ("duration", args.duration)) if v is not None}
    _check_gif_palette(args)
    if args.gif_palette == "global" and is_pipe(args.input):
        raise UsageError("--gif-palette global reads the input twice, and a pipe can be read once; leave out "
                         "--gif-palette global, or give a file")
    timed = [flag for flag, value in (("--duration", args.duration), ("--fps", args.fps)) if value is not None]
    if timed and _is_still(args.input):
        raise UsageError(f"{' and '.join(timed)} time{'s' if len(timed) == 1 else ''} a video or an animation, and "
                         f"'{args.input}' is one picture (one frame out); leave {'it' if len(timed) == 1 else 'them'} "
                         "out, or give numbered pictures ('frames/%04d.png') to play as a video")
    report = _report(args, inputs)
    sink = None
    try:
        with _open_video(args.input, args.fps, args.max_pixels, carries_audio(args), **timing,
                         **transparency(args)) as source:
            size, n, shown = frame_size(source.size, args)
            with open_output(args, source, inputs) as sink:
                if getattr(source, "has_audio", False) and not (args.no_audio or args.quiet or
                                                                isinstance(sink, VideoWriter)):
                    named = _output_name(args, f"'{args.output}'")
                    print(f"livequant: note: {named} cannot hold sound, so the input's audio is left out (write "
                          f"{' '.join(VIDEO_SUFFIXES)} to keep it; --no-audio or -q silences this)", file=sys.stderr)
                elif getattr(source, "audio_tracks", 0) > 1 and not (args.no_audio or args.quiet):
                    print(f"livequant: note: the input has {source.audio_tracks} audio tracks and the output carries "
                          "the first (for another, pick it with ffmpeg -map first; -q silences this)", file=sys.stderr)
                if (is_pipe(args.input) and getattr(source, "codec", None) == "gif" and args.loop is None
                        and Path(args.output).suffix.lower() in ANIMATIONS and not args.quiet):
                    print("livequant: note: how often a GIF read from standard input plays cannot be read, so the "
                          "output loops forever; --loop N sets it (-q silences this)", file=sys.stderr)
                if args.gif_palette == "global":
                    args.palette = _global_palette(args, timing)
                with make_quantizer(args) as quantizer:
                    progress = _Progress(_expected_frames(source, args), enabled=not args.quiet)
                    try:
                        stats = run(adapt(source, size=size, fps=args.fps), quantizer,
                                    [enlarge(sink, n, shown)] + ([report] if report else []), on_frame=progress)
                    finally:
                        progress.close()
    except KeyboardInterrupt as stop:
        if sink is None:
            raise
        done = (f"wrote {counted(sink.frames, 'frame')} to {_output_name(args, sink.written)}" if sink.finished
                else f"nothing written to {_output_name(args, sink.path)}")
        if sink.finished and getattr(sink, "kept", None):
            done += f"; '{sink.kept}', which -y replaces with a whole output only, is left as it was"
        print(f"{'terminated' if isinstance(stop, _Terminated) else 'interrupted'}: {done}", file=sys.stderr)
        _done()
        return 143 if isinstance(stop, _Terminated) else 130
    _warn_damage(stats.undecodable, stats.damaged)
    if not args.quiet:
        dropped = getattr(sink, "dropped", 0)
        shown = f" ({dropped} under 2/100 s apart left out: GIF players show at most 50 fps)" if dropped else ""
        print(f"wrote {counted(sink.frames, 'frame')} to {_output_name(args, sink.written)}{shown} in "
              f"{stats.seconds:.1f} s ({stats.fps:.1f} fps)", file=sys.stderr)
    _save_report(report, args)
    _done()
    return 0


def _batch(args) -> int:
    with interrupts_held() as interrupted:  # see `interrupts_held`
        from livequant import batch  # Dask loads only for this command
    if interrupted:
        raise KeyboardInterrupt

    if args.to and f".{args.to.lstrip('.').lower()}" not in batch.OUTPUT_SUFFIXES:
        names = " ".join(sorted(suffix.lstrip(".") for suffix in batch.OUTPUT_SUFFIXES))
        raise UsageError(f"--to takes one of {names}, got {args.to!r}")
    _check_gif_palette(args)
    items = batch.find_inputs(args.inputs, to=args.to, outdir=args.output)
    options = argparse.Namespace(**{k: v for k, v in vars(args).items() if k != "func"})
    settings = {k: getattr(args, k) for k in ("colors", "dither", "dither_strength", "color_space", "refit_every",
                                              "stability", "scale", "width", "pixelate", "crf", "codec",
                                              "lossless", "no_audio", "quality", "loop", "gif_palette",
                                              "gif_lossy")}
    settings["palette"] = None if args.palette is None else args.palette.to_hex()
    settings["report"] = args.report
    if args.report:
        try:
            check_path(f"report.{args.report}")  # a .png report needs matplotlib
        except ValueError as e:
            raise UsageError(str(e).replace("'report.png'", "--report png")) from None
    whole = args.report or args.gif_palette == "global"  # each measured, or fitted, over the whole file
    failures, warnings = batch.run_batch(items, args.output, options, settings, workers=args.workers,
                                         scheduler=args.scheduler, resume=args.resume, overwrite=args.overwrite,
                                         chunk_seconds=0 if whole else args.chunk_seconds,
                                         replay_seconds=args.replay_seconds, quiet=args.quiet)
    for line in warnings:
        print(f"livequant: warning: {line}", file=sys.stderr)
    for line in failures:
        print(f"livequant: error: {line}", file=sys.stderr)
    if not args.quiet:
        print(f"{len(items) - len(failures)} of {len(items)} files done in {args.output}", file=sys.stderr)
    return 1 if failures else 0


def _warn_damage(undecodable: int, damaged: int) -> None:
    if note := damage_note(undecodable, damaged):
        print(f"livequant: warning: {note}", file=sys.stderr)


def _preview(args) -> int:
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
    elif _is_still(args.source):
        # a still, shown over and over until the window closes, so the keys act on it
        if args.loop is not None:
            raise UsageError(f"--loop plays a file again, and '{args.source}' is a picture, shown until the window "
                             "closes; leave out --loop")
        source = adapt(Images(args.source, fps=args.fps or 10.0, max_pixels=args.max_pixels, repeat=True,
                              alpha=True), size=args.size, paced=True)
        loop = 0
    else:  # a video or pictures: shown at their own pace, dropping frames when quantizing falls behind
        def video():  # transparency kept for --record; the window shows it on a checkerboard
            return _open_video(args.source, args.fps, args.max_pixels, alpha=True)

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


def _indexed(rgb: np.ndarray) -> QuantizedFrame:
    """A `QuantizedFrame` of an image of at most 256 colours: its colours become the palette."""
    colors, inverse, _ = unique_rgb(rgb.reshape(-1, 3))
    return QuantizedFrame(rgb, inverse.reshape(rgb.shape[:2]).astype(np.uint8), Palette(colors))


def _image(args) -> int:
    with _standard_output(args, IMAGE_FORMATS):
        return _image_file(args)


def _image_file(args) -> int:
    suffix = Path(args.output).suffix.lower()
    if suffix in VIDEO_SUFFIXES:
        raise UsageError(f"`livequant image` writes one picture, not '{args.output}'; write .png, .gif or .jpg, or "
                          "use `livequant transcode` for video")
    if numbered_files(args.input):
        raise _one_picture_only(args, "names numbered pictures")
    inputs = _read_files(args)
    report = _report(args, inputs)
    try:
        if suffix == ".gif":  # a still GIF: its one frame, the exact palette
            sink = GifWriter(args.output, loop=-1, overwrite=args.overwrite, inputs=inputs)
        else:
            sink = ImageWriter(args.output, overwrite=args.overwrite, inputs=inputs)
    except ValueError as e:
        raise UsageError(str(e)) from None
    streamed = _streamed(args.input)
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
        print(f"wrote {_output_name(args, sink.path)}: {counted(len(qframe.palette), 'colour')}{lossy}",
              file=sys.stderr)
    if report is not None:
        report.write(dataclasses.replace(qframe, source=frame))
        _save_report(report, args)
    _done()
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


def _extract_palette(args) -> int:
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
        check_target(output, args.overwrite, _input_files(args.input))
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
    picture = (Path(args.input).suffix.lower() in IMAGE_SUFFIXES and not _streamed(args.input)
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
        _warn_damage(video.undecodable, video.damaged)
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


def _demo(args) -> int:
    existing = next(p for p in (args.output, *args.output.absolute().parents) if p.exists())
    if not existing.is_dir():
        raise UsageError(f"demo output '{args.output}': '{existing}' is a file, not a folder; give a folder name "
                          "with -o (it is created if missing)")
    start = time.perf_counter()
    run_demo(args.output, args.frames, overwrite=args.overwrite)
    print(f"done in {time.perf_counter() - start:.1f} s; open {args.output / 'contact-sheet.png'} first")
    return 0


# ---------------------------------------------------------------------- main

def _terminate(signum, frame):
    raise _Terminated()


def _done() -> None:
    """The command's output is complete: a Ctrl-C or SIGTERM from now on is ignored (`main` puts the handlers
    back). The command's objects are let go after this, and a signal raised in a finalizer or ``__del__`` is
    not raised but printed, with a traceback."""
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGINT, signal.SIGTERM):
            if callable(signal.getsignal(signum)):
                signal.signal(signum, signal.SIG_IGN)


class _Warnings(logging.Handler):
    """Shows the ``livequant`` logger's records (a reconnecting camera, a failed refit: the run goes on) as
    ``livequant: warning: ...`` lines on the current stderr."""

    def emit(self, record: logging.LogRecord) -> None:
        print(f"livequant: warning: {record.getMessage()}", file=sys.stderr)


class _CompileNotice(Listener):
    """Says once, on stderr, that livequant's kernels are being compiled: on the first run on a machine
    (numba's cache empty) a transcode waited 30-60 s for its first frame, with nothing else to show."""

    def __init__(self):
        super().__init__()
        self.said = False

    def on_start(self, event) -> None:
        if not self.said and event.data["dispatcher"].py_func.__module__.startswith("livequant."):
            self.said = True
            print("livequant: note: compiling the pixel kernels for this machine: the first run only, up to a "
                  "minute (then they are cached)", file=sys.stderr, flush=True)

    def on_end(self, event) -> None:
        pass


def main(argv: list[str] | None = None) -> int:
    """Run the ``livequant`` command line.

    Parameters
    ----------
    argv : list of str, optional
        Arguments without the program name; default ``sys.argv[1:]``.

    Returns
    -------
    int
        Exit status: 0 success, 1 error, 2 bad usage, 130 interrupted (Ctrl-C), 143 terminated (SIGTERM).
    """
    in_main_thread = threading.current_thread() is threading.main_thread()
    interrupt = signal.getsignal(signal.SIGINT) if in_main_thread else None
    previous = signal.signal(signal.SIGTERM, _terminate) if in_main_thread else None
    warnings = _Warnings(logging.WARNING)
    logging.getLogger("livequant").addHandler(warnings)
    try:
        try:
            args = _parser().parse_args(argv)
        except SystemExit as done:  # --help and --version
            return done.code or 0
        if hasattr(args, "dither"):
            _check_colour_options(args)
        for name in ("input", "source"):  # `-`: standard input, as FFmpeg names it
            if getattr(args, name, None) == "-":
                setattr(args, name, STDIN)
        quiet = getattr(args, "quiet", False)
        with contextlib.nullcontext() if quiet else install_listener("numba:compile", _CompileNotice()):
            return args.func(args)
    except UsageError as e:
        print(f"livequant: error: {e}", file=sys.stderr)
        return 2
    except (LivequantError, FileNotFoundError) as e:
        print(f"livequant: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as stop:
        print("terminated" if isinstance(stop, _Terminated) else "interrupted", file=sys.stderr)
        return 143 if isinstance(stop, _Terminated) else 130
    finally:
        logging.getLogger("livequant").removeHandler(warnings)
        if in_main_thread:
            signal.signal(signal.SIGTERM, previous)
            if interrupt is not None:  # None: not set from Python, nothing to put back
                signal.signal(signal.SIGINT, interrupt)
