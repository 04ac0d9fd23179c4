"""The command line's options: types that check values as they are parsed, the options the commands share, and
`build_parser`, which makes the ``livequant`` parser with a subcommand each.
"""

from __future__ import annotations

import argparse
import inspect
import math
import os
from pathlib import Path

from livequant import __version__, presets
from livequant.colorspace import COLOR_SPACES
from livequant.demo import SETTINGS
from livequant.dither import DITHERS
from livequant.errors import SourceError, UsageError
from livequant.gif import MAX_LOSSY
from livequant.options import ALPHA_OUTPUTS
from livequant.palette import Palette
from livequant.quantizer import Quantizer
from livequant.sinks import MAX_LOOP, VIDEO_SUFFIXES
from livequant.sources import MAX_PIXELS


__all__ = ["build_parser", "check_colour_options"]

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


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line, raised as `UsageError` so `main` returns 2."""

    def error(self, message: str):
        raise UsageError(f"{message}; see `{self.prog} --help`")


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


def _add_colour_options(parser: argparse.ArgumentParser, *, video: bool) -> None:
    group = parser.add_argument_group("palette and colours")
    # Options of fitted palettes and of dithers default to None here, so that one given where it does nothing
    # (-k with --palette, --dither-strength without --dither) is an error; `check_colour_options` fills in
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


def check_colour_options(args) -> None:
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


def build_parser() -> argparse.ArgumentParser:
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
    return parser
