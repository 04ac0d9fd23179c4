"""Lookup + dither speed with a given palette, on one and two threads, against frame.copy(), FFmpeg and Pillow.

Frames are frames 59 and 60 of real footage (../shared/data/cockatoo.mp4, 720p)
resized with area interpolation to each size; the palette is fitted once per K
on frame 60 and every method maps to that same palette. Only the mapping is
timed, through the calls the Quantizer makes: ``lookup.map_pixels`` (no dither,
Bayer, blue noise), ``dither.diffuse`` (Floyd-Steinberg, Sierra Lite; and
Floyd-Steinberg with the temporal hold, `hold.DIFFUSION_HOLD` levels, as
video is diffused) and ``lookup.map_pixels_held`` (temporal hold, threshold 3:
the default video path up to 32 colours). The held methods alternate frames 59
and 60, so each call sees the change between two real frames. Ours runs with ``numba.set_num_threads(1)`` and ``(2)``, interleaved
in the same rounds as the references: FFmpeg ``paletteuse`` (push + pull of a
``bgra`` frame, ``pal8`` out, single-threaded) with the same dither (Sierra
Lite is its ``sierra2_4a``), Pillow ``Image.quantize(palette=...)`` (``P`` out).

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
    parse_args,
    pillow_palette,
    print_load,
    print_machine,
    print_table,
    read_frames,
    resize,
)

from livequant.dither import diffuse, ordered_offsets
from livequant.fit import PaletteFitter
from livequant.hold import DIFFUSION_HOLD
from livequant.lookup import build_table, map_pixels, map_pixels_held

OURS = ("none", "bayer", "bluenoise", "floyd-steinberg", "sierra-lite", "held", "floyd-steinberg held")
#: Our method -> the reference it is compared with.
PEERS = {
    "none": "paletteuse none",
    "bayer": "paletteuse bayer",
    "bluenoise": "paletteuse bayer",
    "floyd-steinberg": "paletteuse floyd_steinberg",
    "sierra-lite": "paletteuse sierra2_4a",
    "held": "paletteuse none",
    "floyd-steinberg held": "paletteuse floyd_steinberg",
}
PALETTEUSE = ("none", "bayer", "floyd_steinberg", "sierra2_4a")
PILLOW = {"none": Image.Dither.NONE, "floyd-steinberg": Image.Dither.FLOYDSTEINBERG}
THREADS = (1, 2)
HOLD = 3


def fit_palette(frame: np.ndarray, k: int) -> np.ndarray:
    """A K-colour palette for ``frame``, fitted as the Quantizer fits one."""
    fitter = PaletteFitter(k, color_space="oklab", sample_size=max(8192, 64 * k), seed=0)
    return fitter.fit(fitter.sample(frame)).colors


def on_threads(n: int, fn, *args) -> None:
    """Call ``fn(*args)`` with ``n`` numba threads."""
    numba.set_num_threads(n)
    fn(*args)


def ours(frames: tuple[np.ndarray, np.ndarray], colors: np.ndarray) -> dict[str, callable]:
    """``"ours <method> <n>t"`` -> a call of no arguments mapping the second frame (held: alternating)."""
    table = build_table(colors, "oklab")
    frame = frames[1]
    out_idx, out_rgb = np.empty(frame.shape[:2], np.uint8), np.empty_like(frame)
    reference, previous = frames[0].copy(), np.empty(frame.shape[:2], np.uint8)
    map_pixels(reference, table, ordered_offsets("none", table, 1.0), previous, out_rgb)
    turn = [0]

    def held() -> None:
        turn[0] ^= 1
        map_pixels_held(frames[turn[0]], table, ordered_offsets("none", table, 1.0), HOLD, -1.0, reference, previous,
                        previous, out_rgb)

    diffused = [frames[0].copy(), np.empty(frame.shape[:2], np.uint8), np.empty_like(frame),
                np.empty(frame.shape[:2], np.uint8)]  # reference, indices, and the next ones
    errors = np.empty(frame.shape, np.int16)  # each index's error when chosen: read where held, written elsewhere
    diffuse(diffused[0], table, "floyd-steinberg", 1.0, diffused[1], out_rgb, errors=errors)

    def held_diffusion() -> None:
        turn[0] ^= 1
        reference, indices, next_reference, next_indices = diffused
        diffuse(frames[turn[0]], table, "floyd-steinberg", 1.0, next_indices, out_rgb, hold=DIFFUSION_HOLD,
                reference=reference, previous=indices, out_reference=next_reference, errors=errors)
        diffused[:] = next_reference, next_indices, reference, indices

    calls = {}
    for method in OURS:
        if method == "held":
            call = held
        elif method == "floyd-steinberg held":
            call = held_diffusion
        elif method in ("floyd-steinberg", "sierra-lite"):
            call = partial(diffuse, frame, table, method, 1.0, out_idx, out_rgb)
        else:
            call = partial(map_pixels, frame, table, ordered_offsets(method, table, 1.0), out_idx, out_rgb)
        for n in THREADS:
            calls[f"ours {method} {n}t"] = partial(on_threads, n, call)
    return calls


def peers(frame: np.ndarray, colors: np.ndarray) -> dict[str, callable]:
    """FFmpeg paletteuse and Pillow on ``frame``, and ``frame.copy()``."""
    h, w = frame.shape[:2]
    calls = {"frame.copy()": frame.copy}
    vf = bgra_frame(frame)
    for option in PALETTEUSE:
        calls[f"paletteuse {option}"] = partial(PaletteUse((w, h), colors, option), vf)
    image, palette = Image.fromarray(frame), pillow_palette(colors)
    for name, mode in PILLOW.items():
        calls[f"pillow {name}"] = partial(image.quantize, palette=palette, dither=mode)
    return calls


def main() -> None:
    args = parse_args(__doc__.splitlines()[0])
    threads = numba.get_num_threads()
    print_machine()
    sources = read_frames(data_file("cockatoo.mp4"), limit=61)[59:61]
    sizes = ("480p", "1080p") if args.quick else tuple(SIZES)
    ks = (16, 64) if args.quick else (4, 16, 64, 256)
    palettes = {k: fit_palette(sources[1], k) for k in ks}
    repeat = 5 if args.quick else 9

    results = {}
    for size in sizes:
        frames = tuple(resize(s, SIZES[size]) for s in sources)
        for k in ks:
            calls = {**peers(frames[1], palettes[k]), **ours(frames, palettes[k])}
            results[size, k] = median_ms(calls, repeat if size != "2160p" else max(3, repeat // 2))
        numba.set_num_threads(threads)
        print(f"  measured {size}", flush=True)
        print_load(f"after {size}")
    print()
    print("lookup + dither, palette given (cockatoo frames 59/60, area-resized); ms = median per frame")
    print("x copy: ms / frame.copy() ms;  peer/ours: the peer's ms / ours (> 1: ours faster); peer: "
          "paletteuse with the same dither (bluenoise: bayer; held: none)")
    for n in THREADS:
        rows = []
        for (size, k), ms in results.items():
            for method in OURS:
                t = ms[f"ours {method} {n}t"]
                peer = PEERS[method]
                rows.append([size, k, method, t, t / ms["frame.copy()"], t / ms[f"ours none {n}t"], peer,
                             ms[peer] / t])
        print(f"\nours on {n} thread{'s' if n > 1 else ''}")
        print_table(["size", "K", "method", "ms", "x copy", "x none", "peer", "peer/ours"], rows)
    rows = [[size, k, name, ms[name]] for (size, k), ms in results.items() for name in peers_names(ms)]
    print("\nreferences (single-threaded)")
    print_table(["size", "K", "method", "ms"], rows)

    targets = Targets()
    for size in ("1080p", "2160p"):
        if (size, 64) not in results:
            continue
        ms = results[size, 64]
        label = f"{size} K=64 one thread"
        none = ms["ours none 1t"]
        check = partial(ratio_check, targets, label, ms)
        check("none", "paletteuse none", 8)
        check("none", "pillow none", 3)
        targets.check(f"{label}: none <= 10x frame.copy() (goal 5x)", none <= 10 * ms["frame.copy()"],
                      f"{none / ms['frame.copy()']:.1f}x ({none:.2f} vs {ms['frame.copy()']:.2f} ms)")
        for method, limit in (("bayer", 1.3), ("bluenoise", 1.3), ("held", 1.2)):
            t = ms[f"ours {method} 1t"]
            targets.check(f"{label}: {method} <= {limit}x none", t <= limit * none,
                          f"{t / none:.2f}x ({t:.2f} vs {none:.2f} ms)")
        check("floyd-steinberg", "paletteuse floyd_steinberg", 6)
        check("sierra-lite", "paletteuse sierra2_4a", 6)
        t, plain = ms["ours floyd-steinberg held 1t"], ms["ours floyd-steinberg 1t"]
        targets.check(f"{label}: floyd-steinberg held <= 1.2x floyd-steinberg", t <= 1.2 * plain,
                      f"{t / plain:.2f}x ({t:.2f} vs {plain:.2f} ms)")
    targets.print()
    print_load("at end")


def peers_names(ms: dict) -> list[str]:
    return [name for name in ms if not name.startswith("ours ")]


def ratio_check(targets: Targets, label: str, ms: dict, method: str, peer: str, factor: float) -> None:
    """Target: our ``method`` on one thread at least ``factor`` times faster than ``peer``."""
    ratio = ms[peer] / ms[f"ours {method} 1t"]
    targets.check(f"{label}: {method} >= {factor}x faster than {peer}", ratio >= factor,
                  f"{ratio:.1f}x ({ms[f'ours {method} 1t']:.2f} vs {ms[peer]:.2f} ms; "
                  f"two threads {ms[peer] / ms[f'ours {method} 2t']:.1f}x)")


if __name__ == "__main__":
    main()
