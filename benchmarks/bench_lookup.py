"""Lookup + dither speed with a given palette, against frame.copy(), FFmpeg paletteuse and Pillow.

Frames are a frame of real footage (../shared/data/cockatoo.mp4, 720p) resized
with area interpolation to each size; the palette is fitted once per K on it
and every method maps to that same palette. Only the mapping is timed: ours is
``Quantizer(palette=..., dither=..., hold=0).process(frame)`` (indices and RGB),
plus the held path (default ``hold=3``) on the same static frame, which is what
video sees; FFmpeg is push + pull of a ``bgra`` frame through paletteuse (``pal8``
out); Pillow is ``Image.quantize(palette=...)`` (``P`` out). Uniform noise, the
worst case for every cache, is timed separately.

Run: python benchmarks/bench_lookup.py [--quick]
"""

from __future__ import annotations

from functools import partial

import numba
import numpy as np
from _common import (
    SIZES,
    Image,
    PaletteUse,
    Targets,
    bgra_frame,
    data_file,
    median_ms,
    nearest_share,
    parse_args,
    pillow_palette,
    print_load,
    print_machine,
    print_table,
    read_frames,
    resize,
)

from livequant import Palette, Quantizer
from livequant.fit import PaletteFitter
from livequant.lookup import build_table, map_frame

OURS = ("none", "bayer", "bluenoise", "floyd-steinberg", "sierra-lite")
#: Reference method -> (how it is called, our method it is compared with).
FFMPEG = {"none": "none", "bayer": "bayer", "floyd_steinberg": "floyd-steinberg"}
PILLOW = {"none": (Image.Dither.NONE, "none"), "floyd-steinberg": (Image.Dither.FLOYDSTEINBERG, "floyd-steinberg")}
KEY = ("1080p", 64)
#: (our dither, reference, how many times faster ours should be) at KEY.
TARGETS = (
    ("none", "paletteuse none", 8),
    ("none", "pillow none", 2),
    ("bayer", "paletteuse bayer", 6),
    ("bluenoise", "paletteuse bayer", 6),
    ("floyd-steinberg", "paletteuse floyd_steinberg", 4),
)


def fit_palette(frame: np.ndarray, k: int) -> np.ndarray:
    """A K-colour palette for ``frame``, fitted as the Quantizer fits one."""
    fitter = PaletteFitter(k, color_space="oklab", sample_size=max(8192, 64 * k), seed=0)
    return fitter.fit(fitter.sample(frame)).colors


def methods(frame: np.ndarray, colors: np.ndarray, dithers=OURS, held: bool = True) -> dict[str, tuple]:
    """Name -> (function of no arguments, name of our row it is compared with).

    References are included where the matching dither of ours is.
    """
    palette = Palette(colors)
    h, w = frame.shape[:2]
    rows = {"frame.copy()": (frame.copy, None)}
    for dither in dithers:
        rows[f"ours {dither}"] = (partial(Quantizer(palette=palette, dither=dither, hold=0).process, frame), None)
    if "none" in dithers:
        table = build_table(colors, "oklab")
        out = np.empty(frame.shape[:2], np.uint8), np.empty_like(frame)
        kernel = partial(map_frame, frame, table.table, table.fine, table.colors, np.zeros((1, 1), np.int16), *out)
        rows["ours none, map_frame only"] = (kernel, None)
    if held:
        rows["ours none, held (hold=3)"] = (partial(Quantizer(palette=palette).process, frame), None)
    vf = bgra_frame(frame)
    for option, ours in FFMPEG.items():
        if ours in dithers:
            rows[f"paletteuse {option}"] = (partial(PaletteUse((w, h), colors, option), vf), f"ours {ours}")
    image, pal = Image.fromarray(frame), pillow_palette(colors)
    for name, (mode, ours) in PILLOW.items():
        if ours in dithers:
            rows[f"pillow {name}"] = (partial(image.quantize, palette=pal, dither=mode), f"ours {ours}")
    return rows


def measure(frame: np.ndarray, colors: np.ndarray, repeat: int, **options) -> tuple[dict, dict]:
    rows = methods(frame, colors, **options)
    ms = median_ms({name: fn for name, (fn, _) in rows.items()}, repeat)
    return ms, {name: ref for name, (_, ref) in rows.items()}


def table_rows(label: list, ms: dict, refs: dict) -> list[list]:
    copy = ms["frame.copy()"]
    out = []
    for name, t in ms.items():
        ref = refs[name]
        out.append([*label, name, t, 1000 / t, t / copy, None if ref is None else t / ms[ref]])
    return out


def check_nearest(frame: np.ndarray, colors: np.ndarray) -> list[list]:
    """Does each no-dither method give the nearest palette colour? Share of sampled pixels, per metric."""
    h, w = frame.shape[:2]
    ours = Quantizer(palette=Palette(colors), hold=0).quantize(frame)
    use = PaletteUse((w, h), colors, "none")
    ffmpeg = use.rgb(use(bgra_frame(frame)))
    image = Image.fromarray(frame).quantize(palette=pillow_palette(colors), dither=Image.Dither.NONE)
    pillow = colors[np.asarray(image)]
    rows = []
    outputs = (("ours none", ours, "ours"), ("paletteuse none", ffmpeg, "oklab"), ("pillow none", pillow, "rgb"))
    for name, out, own in outputs:
        shares = [100 * nearest_share(frame, out, colors, space) for space in (own, "rgb", "oklab")]
        rows.append([len(colors), name, *shares])
    return rows


def main() -> None:
    args = parse_args(__doc__.splitlines()[0])
    print_machine()
    source = read_frames(data_file("cockatoo.mp4"), limit=61)[60]
    sizes = ("480p", "1080p") if args.quick else tuple(SIZES)
    ks = (16, 64) if args.quick else (4, 16, 64, 256)
    palettes = {k: fit_palette(source, k) for k in ks}
    repeat = 5 if args.quick else 11

    rows, checks, measured = [], [], {}
    for size in sizes:
        frame = resize(source, SIZES[size])
        for k in ks:
            ms, refs = measure(frame, palettes[k], repeat if size != "2160p" else max(3, repeat // 2))
            rows += table_rows([size, k], ms, refs)
            measured[size, k] = ms
            if size == KEY[0]:
                checks += check_nearest(frame, palettes[k])
        print(f"  measured {size}", flush=True)
    print()
    print("lookup + dither, palette given (cockatoo frame 60, area-resized); ms = median per frame")
    print("x copy: ms / frame.copy() ms;  ref/ours: reference ms / our matching method's ms (> 1: ours faster)")
    print_table(["size", "K", "method", "ms", "fps", "x copy", "ref/ours"], rows)

    print(f"nearest-colour check, dither none, {KEY[0]}: % of 4096 sampled pixels given an exact nearest colour")
    print("own metric: ours OKLab with half-weight lightness (its working space), FFmpeg >= 6 OKLab, Pillow RGB")
    print_table(["K", "method", "% own metric", "% rgb", "% oklab"], checks)

    frame = resize(source, SIZES[KEY[0]])
    colors = palettes[KEY[1]]
    noise = np.random.default_rng(0).integers(0, 256, frame.shape, dtype=np.uint8)
    ms, refs = measure(noise, colors, repeat, dithers=("none",), held=False)
    print(f"worst case: uniform noise at {KEY[0]}, K={KEY[1]} (no cache or table locality helps)")
    print_table(["method", "ms", "fps", "x copy", "ref/ours"], table_rows([], ms, refs))

    threads = numba.get_num_threads()
    numba.set_num_threads(1)
    single, refs = measure(frame, colors, repeat, held=False)
    numba.set_num_threads(threads)
    print(f"one thread: ours with numba.set_num_threads(1) at {KEY[0]}, K={KEY[1]} "
          "(paletteuse and Pillow are single-threaded)")
    print_table(["method", "ms", "fps", "x copy", "ref/ours"], table_rows([], single, refs))

    key = measured[KEY]
    label = f"{KEY[0]} K={KEY[1]}"
    copy = key["frame.copy()"]
    print(f"distance from frame.copy() at {label}: copy {copy:.2f} ms; ours none {key['ours none'] / copy:.1f}x, "
          f"held {key['ours none, held (hold=3)'] / copy:.1f}x, bayer {key['ours bayer'] / copy:.1f}x, "
          f"floyd-steinberg {key['ours floyd-steinberg'] / copy:.1f}x")
    print()
    targets = Targets()
    for ours, ref, factor in TARGETS:
        ratio = key[ref] / key[f"ours {ours}"]
        targets.check(f"{label} ours {ours} vs {ref} >= {factor}x", ratio >= factor,
                      f"{ratio:.1f}x ({key[f'ours {ours}']:.2f} vs {key[ref]:.2f} ms; "
                      f"one thread {single[ref] / single[f'ours {ours}']:.1f}x)")
    targets.print()
    print_load("at end")


if __name__ == "__main__":
    main()
