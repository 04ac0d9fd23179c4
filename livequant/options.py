"""What the command-line options make: the size frames are quantized at, the palette fitted ahead, the quantizer
and the output.

Shared by the ``livequant`` commands (`livequant.cli`) and by the tasks of
``livequant batch`` (`livequant.batch`), which run on Dask workers from the
same options. ``args`` is the `argparse.Namespace` of a command. An option
that cannot be used raises `~livequant.errors.UsageError` (the CLI exits 2).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from livequant.colorspace import working_space
from livequant.errors import UsageError
from livequant.fit import PaletteFitter
from livequant.frames import WHITE
from livequant.palette import Palette
from livequant.quantizer import Quantizer
from livequant.sinks import ALPHA_PICTURES, VIDEO_SUFFIXES, AnimationWriter, GifWriter, ImageWriter, VideoWriter
from livequant.sources import IMAGE_SUFFIXES, loop_count
from livequant.sources.base import megapixels

__all__ = ["ALPHA_OUTPUTS", "ANIMATIONS", "animation_loop", "carries_audio", "check_size", "fit_palette", "frame_size",
           "global_palette", "keeps_alpha", "make_quantizer", "open_output", "pixel_blocks", "sampled_pixels",
           "transparency"]


def check_size(option: str, width: float, height: float, max_pixels: int) -> None:
    """Raise `UsageError` if the ``width`` x ``height`` frames ``option`` makes are over ``max_pixels``."""
    if width * height > max_pixels:
        if not math.isfinite(width * height):
            made = "frames too large to count"
        else:
            shown = f"{width:.0f}x{height:.0f}" if max(width, height) < 1e9 else f"{width:.2g}x{height:.2g}"
            made = f"{shown} frames ({megapixels(width * height)} megapixels)"
        raise UsageError(f"{option} makes {made}, over the limit of {megapixels(max_pixels)} megapixels; use a "
                         "smaller value, or raise --max-pixels")


def frame_size(size, args) -> tuple[tuple[int, int], int, tuple[int, int]]:
    """``(size to quantize at, enlargement, size shown)`` from the first frame's ``size``, --scale, --width
    and --pixelate (sizes are ``(width, height)``).

    With --pixelate N the frame is quantized at 1/N of the size shown, rounded up, and enlarged N times then
    cut to the size shown. Every size they make is checked against --max-pixels before anything is allocated.
    """
    width, height = size
    target, option = size, None
    if args.scale:
        target, option = (width * args.scale, height * args.scale), f"--scale {args.scale:g}"
    elif args.width:
        target, option = (args.width, height * args.width / width), f"--width {args.width}"
    if option:
        check_size(option, *target, args.max_pixels)
        if min(target) < 1:
            raise UsageError(f"{option} makes {target[0]:.3g}x{target[1]:.3g} frames of {width}x{height}, "
                             "under a pixel a side; use a larger value")
        target = (round(target[0]), round(target[1]))
    blocks, n = pixel_blocks(target, args.pixelate or 1, args.max_pixels)
    return blocks, n, tuple(target)


def pixel_blocks(size, n: int, max_pixels: int) -> tuple[tuple[int, int], int]:
    """``(size to quantize at, n)`` for --pixelate ``n`` of frames shown at ``size`` ``(width, height)``: 1/n
    of it, rounded up (the enlarged frame is cut to ``size``); ``size`` itself for 1."""
    if n == 1:
        return tuple(size), 1
    if n > min(size):
        fix = f"use at most {min(size)}" if min(size) >= 2 else "leave out --pixelate (it takes 2 or more)"
        raise UsageError(f"--pixelate {n} makes blocks larger than the {size[0]}x{size[1]} frame; {fix}")
    blocks = (-(-size[0] // n), -(-size[1] // n))
    check_size(f"--pixelate {n}", blocks[0] * n, blocks[1] * n, max_pixels)
    return blocks, n


def make_quantizer(args, **extra) -> Quantizer:
    """The `Quantizer` of the colour options (and --refit-every, --stability where the command has them)."""
    options = {"n_colors": args.colors, "palette": args.palette, "dither": args.dither,
               "color_space": args.color_space, "dither_strength": args.dither_strength}
    if hasattr(args, "refit_every"):
        options.update(refit_every=args.refit_every, stability=args.stability)
    return Quantizer(**options, **extra)


def sampled_pixels(source, most: int) -> np.ndarray:
    """Pixels of frames spread over ``source`` (every ``stride``-th frame, the stride doubling to keep at most
    ``most``), each thinned so that all of them hold about 4 megapixels; ``(N, 1, 3)``, frames of any size.
    Transparent pixels (a source's ``opaque`` masks) are left out."""
    kept, stride = [], 1
    for index, (frame, _, *opaque) in enumerate(source):
        if index % stride == 0:
            step = max(1, round(math.sqrt(frame.shape[0] * frame.shape[1] * most / 4e6)))
            shown = frame[::step, ::step]
            if opaque and opaque[0] is not None:
                shown = shown[opaque[0][::step, ::step]]
            kept.append(shown.reshape(-1, 3))
            if len(kept) > most:
                kept, stride = kept[::2], stride * 2
    return np.concatenate(kept)[:, None]


def fit_palette(pixels: np.ndarray, args, name: str = "") -> Palette:
    """A palette of ``args.colors`` in ``args.color_space`` fitted carefully (64K samples, 30 refinement steps,
    seed 0) to ``pixels``."""
    fitter = PaletteFitter(args.colors, color_space=working_space(args.color_space, args.colors), sample_size=65536,
                           seed=0, refine_steps=30)
    return Palette(fitter.fit(fitter.sample(pixels)).colors, name=name)


def global_palette(args, video) -> Palette:
    """--gif-palette global: one palette (`fit_palette`) for frames sampled over the whole of ``video``, a
    reading of the input before the one that is written."""
    pixels = sampled_pixels(video, most=32)
    if not len(pixels):
        raise UsageError(f"'{args.input}' is wholly transparent: no colour shows to fit a palette to; leave out "
                         "--gif-palette global")
    return fit_palette(pixels, args)


def animation_loop(args) -> int:
    """How often an animation plays (the sinks' ``loop``): as --loop says, else as often as an input GIF, APNG
    or animated WebP does (`livequant.sources.loop_count`), else forever (0)."""
    return next((n for n in (getattr(args, "loop", None), loop_count(args.input)) if n is not None), 0)


def _is_picture(suffix: str) -> bool:
    """Whether `open_output` writes a picture or an animation (no sound) for an output of ``suffix``."""
    return suffix in ANIMATIONS or suffix in IMAGE_SUFFIXES


def carries_audio(args) -> bool:
    """Whether the output of ``args`` takes the input's sound, if it has any: a video, without --no-audio."""
    return not (args.no_audio or _is_picture(Path(args.output).suffix.lower()))


#: The animations `open_output` writes, which play as often as --loop says.
ANIMATIONS = (".gif", ".webp", ".apng")
#: Outputs that keep transparency: animations, and pictures (`livequant.sinks.ALPHA_PICTURES`).
ALPHA_OUTPUTS = (".gif", ".apng", *ALPHA_PICTURES)


def keeps_alpha(args) -> bool:
    """Whether the output of ``args`` keeps the input's transparency: one that holds it, without --background."""
    return getattr(args, "background", None) is None and Path(args.output).suffix.lower() in ALPHA_OUTPUTS


def transparency(args) -> dict:
    """A source's options for transparency: kept (``alpha``) where `keeps_alpha`, else flattened on
    ``background`` (--background, else white)."""
    return {"alpha": keeps_alpha(args), "background": getattr(args, "background", None) or WHITE}


def open_output(args, source, inputs):
    """The sink for the suffix of ``args.output``; it checks the output (exists, folder, not one of
    ``inputs``, codec and container) before any work. An animation plays as `animation_loop` says."""
    suffix = Path(args.output).suffix.lower()
    animation = suffix in (".webp", ".apng")  # .webp is a picture to `livequant image`, an animation here
    picture = _is_picture(suffix)
    quality = getattr(args, "quality", None)
    if getattr(args, "loop", None) is not None and suffix not in ANIMATIONS:
        raise UsageError(f"--loop applies to animations (.gif .webp .apng), not to '{args.output}'; leave it out")
    if picture and (args.codec or args.crf is not None):
        raise UsageError(f"--codec and --crf apply to video outputs ({' '.join(VIDEO_SUFFIXES)}), not to "
                         f"'{args.output}'; leave them out")
    if picture and getattr(args, "lossless", False):
        if suffix in (".jpg", ".jpeg"):
            raise UsageError(f"--lossless keeps every pixel and JPEG ('{args.output}') does not; write .png, or "
                             "leave out --lossless")
        if suffix == ".webp" and quality is not None:
            raise UsageError("--quality makes lossy WebP and --lossless keeps every pixel; leave out one")
    if not picture and args.codec is None and suffix not in VIDEO_SUFFIXES:
        raise UsageError(f"cannot tell what to write from the suffix of '{args.output}'; use "
                         f"{' '.join(VIDEO_SUFFIXES)} for video, .gif .webp .apng for animations, or .png .jpg for "
                         "pictures; another container FFmpeg writes takes --codec with an encoder it holds (.avi: "
                         "--codec mpeg4)")
    try:
        if quality is not None and suffix != ".webp":
            raise ValueError(f"--quality applies to animated WebP (.webp) only, not '{args.output}'")
        lossy = getattr(args, "gif_lossy", 0.0)
        if lossy and suffix != ".gif":
            raise ValueError(f"--gif-lossy applies to GIF (.gif) only, not '{args.output}'; write a .gif, or leave it "
                             "out")
        loop = animation_loop(args)
        if suffix == ".gif":
            return GifWriter(args.output, loop=loop, overwrite=args.overwrite, inputs=inputs,
                             alpha=getattr(source, "has_alpha", False), lossy=lossy)
        if animation:
            return AnimationWriter(args.output, loop=loop, quality=quality, overwrite=args.overwrite, inputs=inputs,
                                   alpha=getattr(source, "has_alpha", False))
        if picture:
            return ImageWriter(args.output, overwrite=args.overwrite, inputs=inputs, one_frame=True)
        audio = None  # a file's sound is read from it again; a pipe's or a URL's comes demuxed with the video
        if carries_audio(args) and getattr(source, "has_audio", False):
            audio = getattr(source, "audio", None) or args.input
        return VideoWriter(args.output, args.fps or source.fps or 30.0, codec=args.codec, crf=args.crf,
                           lossless=args.lossless, audio_from=audio, overwrite=args.overwrite, inputs=inputs)
    except ValueError as e:  # an unknown suffix or codec, or one the container cannot hold
        raise UsageError(str(e)) from None
