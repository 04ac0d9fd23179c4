"""Quality next to speed on real footage and stills: livequant against per-frame and global peers.

Video, K=64, no dither, streamed (each frame quantized before the next is
read; only FFmpeg two-pass sees the whole clip first): livequant's defaults
(OKLab) and RGB mode; MiniBatchKMeans, FFmpeg palettegen+paletteuse,
libimagequant, Pillow median cut and fast octree, each on every frame alone;
FFmpeg two-pass (one palettegen over all frames, then paletteuse). Metrics
from ../shared/quality/metrics.py: mean PSNR, mean CIEDE2000 (on a fixed
50,000-pixel subsample of each frame), static-region flicker. ms/frame is the
mean over the clip of the method alone (frames in memory; metrics not timed;
p50 ms, the median frame, is the figure a burst of load elsewhere moves least).
Then livequant's stability / refit_every trade on cockatoo, then stills.

MiniBatchKMeans (default settings, random_state=0, one OpenMP thread: its
steps are tiny, and on a shared 2-core machine two threads spin) is fitted on
every pixel given as the distinct colours weighted by their pixel counts.
scikit-learn >= 1.9 draws each mini-batch with replacement with probability
proportional to weight, so the batches follow the same distribution as on the
raw pixels, but a draw costs O(distinct colours) instead of O(pixels): raw
720p frames take 1-40 s each here. The full run checks the two agree.

With ``--panel``: issue 11's panel instead. Every clip (cockatoo at 640x360,
realshort, newtonscradle; generated: cut, fade, pan, zoom, still noise, flash)
at K = 16, 64 and 256: livequant's defaults (oklab, rgb) next to per-frame
MiniBatchKMeans, FFmpeg and libimagequant and FFmpeg two-pass; each floor and
goal marked met or not; PSNR over the 3 frames after each cut or flash
against a fresh start; the fade's tracking, and the fade played slower (can
an output that lags meet its flicker floor?); the worst frame; the stability
curve over the whole panel.

With ``--dither``: error diffusion on video, over the same panel at K = 16
and 64: livequant (Floyd-Steinberg, Sierra Lite) with its temporal hold (a
still pixel keeps its index and passes on the error of its colour), the same
with every frame diffused afresh (what it did before), and FFmpeg two-pass
with the same dither, on every frame and with ``diff_mode=rectangle``
(only the box around what changed is dithered again). PSNR of the frames
blurred (sigma 1.2 px) is the colour a dither shows from a little way off.
Then the retro palettes (CGA, PICO-8, Game Boy: colours far apart) with
Floyd-Steinberg on the panel's clips and on still photographs under sensor
noise: the default hold, a hold of 1 level and each frame afresh, with the
share of pixels that change from one frame to the next (the crawl).

With ``--spaces``: why the default oklab mode flickers more than rgb where it
does (issue 11 asked): over the panel at K = 16, 64 and 256, each space's
flicker split by the frames where a new palette lands and the others, how
far a moved slot moves, what still pixels that took another index show, and
flicker and palette slots by the pixels' lightness.

With ``--holdout``: clips the defaults were not tuned on (pans and zooms of
other pictures: scikit-image's, and ../shared/data's stills where present;
and four made like the footage issue 11 keeps back, through H.264: a cartoon
with cuts, a low-resolution talking head, a street pan, a wall with traffic;
and eight kinds of footage added after the tuning, `footage_clips`: a sky,
auto-exposure, a handheld camera, a webcam, a colour wheel, low light, flat
art, later frames of cockatoo; and six more, `late_clips`: overcast, a studio
shot, night, a sunset pan, a video call, slides) at K = 16, 64 and 256, livequant's defaults against the
floor (FFmpeg per frame). Keep it out of tuning: it is there to show whether what the panel
taught holds.

With ``--tune``: for trying a change to the defaults, issue 11's checks in a
minute or two: the panel's goal rows at K = 16 and 64 (where goals are
missed) and, as a check, the hold-out's floor at K = 16; the peers' scores
and the hold-out's clips are kept in benchmarks/.tune-cache/ by the first
run (about 4 minutes). ``--ks``, ``--seeds`` and ``--options`` (JSON) run
the checks at other palette sizes, over seeds, with other `Quantizer`
options; ``--save`` and ``--against`` compare two runs.

Run: python benchmarks/bench_quality.py [--quick] [--panel | --holdout | --dither | --spaces | --tune [--ks 8,16,32]
     [--seeds 0,1,2] [--options JSON] [--save F.json] [--against F.json]]
"""

from __future__ import annotations

import collections
import io
import json
import pickle
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import av
import cv2
import imagequant
import numpy as np
import skimage.data
import sklearn.datasets
from _common import (
    BLUR_SIGMA,
    DATA,
    DITHERS_COMPARED,
    Image,
    PaletteGenUse,
    PaletteUse,
    Targets,
    bgra_frame,
    blurred_psnr,
    data_file,
    ffmpeg_global_palette,
    load_metrics,
    parse_args,
    print_load,
    print_machine,
    print_table,
    quantizer_default,
    read_frames,
    resize,
)
from sklearn.cluster import KMeans, MiniBatchKMeans
from threadpoolctl import threadpool_limits

import livequant
from livequant import Quantizer
from livequant.colorspace import largest_channel
from livequant.sources import read_image
from livequant.track import scene_cuts

K = 64
DE_PIXELS = 50_000
#: Clip -> frames used (None: all), full and quick runs.
CLIPS = {"cockatoo.mp4": 120, "realshort.mp4": None, "newtonscradle.gif": 60}
QUICK_CLIPS = {"cockatoo.mp4": 24, "realshort.mp4": None, "newtonscradle.gif": 60}
LIVEQUANT = ("livequant oklab (default)", "livequant rgb")
MBK, FFMPEG, TWO_PASS = "MiniBatchKMeans per frame", "FFmpeg palettegen+paletteuse per frame", "FFmpeg two-pass"
LIQ = "libimagequant per frame"
STILLS_K = (16, 64)
SKIMAGE_STILLS = ("astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry")


# ------------------------------------------------------------------ methods: (H, W, 3) uint8 in and out


def _distinct(image: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distinct colours of ``image`` as float32, their pixel counts, and each pixel's colour index."""
    flat = image.reshape(-1, 3)
    packed = (flat[:, 0].astype(np.uint32) << 16) | (flat[:, 1].astype(np.uint32) << 8) | flat[:, 2]
    unique, inverse, counts = np.unique(packed, return_inverse=True, return_counts=True)
    colors = np.stack([unique >> 16, (unique >> 8) & 255, unique & 255], axis=1).astype(np.float32)
    return colors, counts, inverse.ravel()


def _centres_image(model, labels: np.ndarray, shape) -> np.ndarray:
    """Each pixel in the colour of its (rounded) cluster centre."""
    centres = np.clip(np.rint(model.cluster_centers_), 0, 255).astype(np.uint8)
    return centres[labels].reshape(shape)


def minibatch_kmeans(image: np.ndarray, k: int) -> np.ndarray:
    """Per-image MiniBatchKMeans, default settings, on every pixel (as weighted distinct colours)."""
    colors, counts, inverse = _distinct(image)
    if len(colors) <= k:  # fewer colours than clusters: each is its own (k-means would refuse)
        return image.copy()
    with threadpool_limits(1):
        model = MiniBatchKMeans(n_clusters=k, random_state=0).fit(colors, sample_weight=counts)
    return _centres_image(model, model.labels_[inverse], image.shape)


def minibatch_kmeans_raw(image: np.ndarray, k: int) -> np.ndarray:
    """The same on the raw pixel array (the slow form, to check the two agree)."""
    with threadpool_limits(1):
        model = MiniBatchKMeans(n_clusters=k, random_state=0).fit(image.reshape(-1, 3).astype(np.float32))
    return _centres_image(model, model.labels_, image.shape)


def kmeans(image: np.ndarray, k: int) -> np.ndarray:
    """scikit-learn KMeans on every pixel, one k-means++ start (``n_init=1``), default threads."""
    model = KMeans(n_clusters=k, n_init=1, random_state=0).fit(image.reshape(-1, 3).astype(np.float32))
    return _centres_image(model, model.labels_, image.shape)


def libimagequant(image: np.ndarray, k: int) -> np.ndarray:
    out = imagequant.quantize_pil_image(Image.fromarray(image), dithering_level=0.0, max_colors=k)
    return np.asarray(out.convert("RGB"))


def pillow(image: np.ndarray, k: int, method: Image.Quantize) -> np.ndarray:
    out = Image.fromarray(image).quantize(k, method=method, dither=Image.Dither.NONE)
    return np.asarray(out.convert("RGB"))


#: Streaming video methods: name -> factory(size, k) -> function(frame) -> frame, one per clip.
VIDEO = {
    "livequant oklab (default)": lambda size, k: Quantizer(k).quantize,
    "livequant rgb": lambda size, k: Quantizer(k, color_space="rgb").quantize,
    MBK: lambda size, k: partial(minibatch_kmeans, k=k),
    FFMPEG: lambda size, k: PaletteGenUse(size, k),
    LIQ: lambda size, k: partial(libimagequant, k=k),
    "Pillow median cut per frame": lambda size, k: partial(pillow, k=k, method=Image.Quantize.MEDIANCUT),
    "Pillow fast octree per frame": lambda size, k: partial(pillow, k=k, method=Image.Quantize.FASTOCTREE),
}

#: Still methods: name -> function(image, k) -> image.
STILLS = {
    "livequant rgb": lambda image, k: livequant.quantize(image, k, color_space="rgb"),
    "livequant oklab": lambda image, k: livequant.quantize(image, k),
    "KMeans (n_init=1)": kmeans,
    "MiniBatchKMeans": minibatch_kmeans,
    "libimagequant": libimagequant,
    "Pillow median cut": partial(pillow, method=Image.Quantize.MEDIANCUT),
}


# ------------------------------------------------------------------ video


class Clip:
    """Frames of one clip in memory, with their CIEDE2000 reference samples computed once."""

    def __init__(self, name: str, frames: list[np.ndarray], metrics):
        self.name = name
        self.frames = frames
        self.size = (self.frames[0].shape[1], self.frames[0].shape[0])
        self.labs = [metrics.lab_sample(f, DE_PIXELS) for f in self.frames]
        self.metrics = metrics

    @classmethod
    def read(cls, name: str, limit: int | None, metrics, size: tuple[int, int] | None = None) -> Clip:
        """The first ``limit`` frames of ``../shared/data/name``, resized to ``size`` (W, H) when given."""
        frames = read_frames(data_file(name), limit)
        return cls(name, [resize(f, size) for f in frames] if size else frames, metrics)

    def score(self, quantize, setup_ms: float = 0.0, blurred: bool = False) -> dict:
        """Stream the clip through ``quantize``: the metrics summary, plus ``ms``, the mean per frame
        (``setup_ms`` spread over the frames), ``p50``, the median frame, ``psnrs``, each frame's PSNR, and with
        ``blurred``, ``blurred``: the mean `blurred_psnr`; ``changed``: the share of pixels whose colour changed
        from one frame to the next, mean over pairs."""
        video = self.metrics.VideoMetrics(de_max_pixels=DE_PIXELS)
        spent, psnrs, blurs, changed, before = [], [], [], [], None
        for frame, lab in zip(self.frames, self.labs):
            start = time.perf_counter()
            out = quantize(frame)
            spent.append((time.perf_counter() - start) * 1000)
            video.update(frame, out, ref_lab=lab)
            psnrs.append(self.metrics.psnr(frame, out))
            if blurred:
                blurs.append(blurred_psnr(self.metrics, frame, out))
            if before is not None:
                changed.append(np.count_nonzero((out != before).any(axis=2)) / (out.shape[0] * out.shape[1]))
            before = out
        result = {**video.summary(), "ms": (setup_ms + sum(spent)) / len(spent), "p50": float(np.median(spent)),
                  "psnrs": psnrs, "changed": float(np.mean(changed)) if changed else 0.0}
        if blurred:
            result["blurred"] = float(np.mean(np.minimum(blurs, PSNR_CAP)))
        return result

    def two_pass(self, k: int = K, dither: str = "none", diff_mode: str = "none", blurred: bool = False) -> dict:
        """FFmpeg palettegen over the whole clip, then paletteuse on each frame (not streamable)."""
        start = time.perf_counter()
        colors = ffmpeg_global_palette(self.frames, k)
        use = PaletteUse(self.size, colors, dither, diff_mode)
        return self.score(lambda frame: use.rgb(use(bgra_frame(frame))), (time.perf_counter() - start) * 1000,
                          blurred)


def video_table(clip: Clip) -> dict[str, dict]:
    for factory in VIDEO.values():  # warm-up: compiled kernels, imports, first-call costs
        factory(clip.size, K)(clip.frames[0])
    results = {name: clip.score(factory(clip.size, K)) for name, factory in VIDEO.items()}
    results[TWO_PASS] = clip.two_pass()
    first = next(iter(results.values()))
    h, w = clip.frames[0].shape[:2]
    print(f"{clip.name}: {first['frames']} frames {w}x{h}, K={K}, no dither; static pixels "
          f"{100 * first['static_frac']:.0f}% of pairs; CIEDE2000 on {min(DE_PIXELS, w * h)} px/frame")
    print_table(
        ["method", "PSNR dB", "dE2000", "flicker", "ms/frame", "p50 ms", "streams"],
        [[name, r["psnr"], r["de2000"], r["flicker"], r["ms"], r["p50"], "no" if name == TWO_PASS else "yes"]
         for name, r in results.items()],
    )
    return results


def sweep(clip: Clip, quick: bool) -> None:
    """livequant's flicker / error trade over ``stability`` and ``refit_every``."""
    default = (quantizer_default("stability"), quantizer_default("refit_every"))
    if quick:
        points = [(s, default[1]) for s in (0, default[0], 150)] + [(default[0], r) for r in (1, 10)]
    else:
        points = [(s, r) for s in sorted({0, 10, 30, 60, 150, default[0]}) for r in sorted({1, 3, 10, default[1]})]
    rows = []
    for space in ("rgb", "oklab"):
        for stability, every in points:
            r = clip.score(Quantizer(K, color_space=space, stability=stability, refit_every=every).quantize)
            mark = "<- default" if (stability, every) == default else ""
            rows.append([space, f"{stability:g}", every, r["psnr"], r["de2000"], r["flicker"], r["ms"], r["p50"], mark])
    print(f"stability curve: {clip.name}, {len(clip.frames)} frames, K={K}")
    print_table(["space", "stability", "refit_every", "PSNR dB", "dE2000", "flicker", "ms/frame", "p50 ms", ""], rows)


def check_minibatch(clip: Clip, frames: int = 2) -> None:
    """Weighted distinct colours against raw pixels for MiniBatchKMeans, on the first frames."""
    rows = []
    for i, frame in enumerate(clip.frames[:frames]):
        for name, fn in (("distinct colours, weighted", minibatch_kmeans), ("raw pixels", minibatch_kmeans_raw)):
            start = time.perf_counter()
            out = fn(frame, K)
            rows.append([i, name, clip.metrics.psnr(frame, out), (time.perf_counter() - start) * 1000])
    print(f"MiniBatchKMeans check on {clip.name}: the same fit on weighted distinct colours and on raw pixels")
    print_table(["frame", "fitted on", "PSNR dB", "ms"], rows)


# ------------------------------------------------------------------ panel: every clip, K in {16, 64, 256}

#: Real clips of the panel -> size (W, H) they are scaled to (None: as they are).
PANEL_REAL = {"cockatoo.mp4": (640, 360), "realshort.mp4": None, "newtonscradle.gif": None}
PANEL_FRAMES, QUICK_PANEL_FRAMES = 36, 24  # 36: realshort and newtonscradle's length; the machine is shared
PANEL_KS, QUICK_PANEL_KS = (16, 64, 256), (64,)
TUNE_KS = (16, 64)  # `--tune`: where the goals are missed; K=256 meets every one but the infeasible
TUNE_HOLDOUT_KS = (16,)  # `--tune` without `--ks`: the hold-out's floor binds at 16
TUNE_CACHE = Path(__file__).parent / ".tune-cache"  # `--tune`'s peers' scores and hold-out clips (not in git)
PANEL_SIZE = (320, 180)  # (W, H) of the generated clips
PANEL_METHODS = (*LIVEQUANT, MBK, FFMPEG, LIQ)
PEERS = (MBK, FFMPEG, LIQ)
#: Frames after a cut over which the sequential run must be as good as a fresh start.
AFTER_CUT = 3
#: A frame reproduced exactly scores infinite PSNR; the panel counts it as this many dB, so means stay finite.
PSNR_CAP = 100.0
SWEEP_STABILITY = (0, 3, 10, 30, 100)
#: The picture the fade darkens and the flash lights: scikit-image's chelsea, cropped (y, x, h, w).
FADE_PICTURE = ("chelsea", (0, 0, 253, 451))


@dataclass
class PanelClip:
    """A clip of the panel: its frames, and the frames at which the picture changes at once (cuts, flashes)."""

    name: str
    frames: list[np.ndarray]
    events: list[int]


def _photo(name: str, crop: tuple[int, int, int, int] | None = None, size=PANEL_SIZE) -> np.ndarray:
    """A scikit-image sample photograph, cropped to ``(y, x, h, w)`` and resized to ``size``, as float32."""
    image = getattr(skimage.data, name)()
    if crop:
        y, x, h, w = crop
        image = image[y : y + h, x : x + w]
    return resize(np.ascontiguousarray(image), size).astype(np.float32)


def _sensor(image: np.ndarray, rng: np.random.Generator, sigma: float) -> np.ndarray:
    """``image`` with sensor-like noise (luma and chroma parts), rounded to uint8."""
    luma = rng.normal(0, sigma, image.shape[:2] + (1,))
    chroma = rng.normal(0, sigma / 2, image.shape)
    return np.clip(np.rint(image + luma + chroma), 0, 255).astype(np.uint8)


def fade_frame(picture: np.ndarray, t: float) -> np.ndarray:
    """The fade's frame at time ``t`` (frames, fractions too): ``picture`` darkened by ``t`` / 255."""
    return np.floor(picture * (255 - t) / 255).astype(np.uint8)


def generated_clips(n: int) -> list[PanelClip]:
    """The panel's generated clips, ``n`` frames of `PANEL_SIZE` each, made from scikit-image's photographs.

    - cut: three shots (astronaut, coffee, rocket), each drifting slowly under light noise;
    - fade: chelsea darkening by at most one level a frame (every pixel "still" for the flicker metric);
    - pan: a window sliding 4 px a frame across rocket, light noise;
    - zoom: astronaut's face growing to twice its size, light noise;
    - noise: coffee, still, under strong sensor noise (sigma 3);
    - flash: chelsea, still, light noise, with a warm light flashing on for 2 frames every 12.
    """
    rng = np.random.default_rng(7)
    w, h = PANEL_SIZE
    clips = []
    shots = [("astronaut", (0, 0, 288, 512)), ("coffee", (0, 0, 338, 600)), ("rocket", (0, 0, 360, 640))]
    bounds = [0, n // 3, 2 * n // 3, n]
    frames = []
    for (name, crop), start, stop in zip(shots, bounds, bounds[1:]):
        y, x, ch, cw = crop
        big = _photo(name, (y, x, ch, cw), (w + 40, h + 24))
        frames += [_sensor(big[t // 2 % 24 : t // 2 % 24 + h, t % 40 : t % 40 + w], rng, 1.0)
                   for t in range(stop - start)]
    clips.append(PanelClip("gen: cut", frames, bounds[1:-1]))

    cat = _photo(*FADE_PICTURE)
    clips.append(PanelClip("gen: fade", [fade_frame(cat, t) for t in range(n)], []))

    rocket = _photo("rocket", (67, 0, 360, 640), (w + 4 * n, h))
    clips.append(PanelClip("gen: pan", [_sensor(rocket[:, 4 * t : 4 * t + w], rng, 1.0) for t in range(n)], []))

    face = getattr(skimage.data, "astronaut")()[20:308, 0:512]
    zoom = []
    for t in range(n):
        scale = 2 ** (-t / max(n - 1, 1))  # the crop halves over the clip
        ch, cw = int(288 * scale), int(512 * scale)
        y0, x0 = (288 - ch) // 3, (512 - cw) // 2
        zoom.append(_sensor(resize(np.ascontiguousarray(face[y0 : y0 + ch, x0 : x0 + cw]), (w, h)).astype(np.float32),
                            rng, 1.0))
    clips.append(PanelClip("gen: zoom", zoom, []))

    coffee = _photo("coffee", (0, 0, 338, 600))
    clips.append(PanelClip("gen: noise", [_sensor(coffee, rng, 3.0) for _ in range(n)], []))

    yy, xx = np.mgrid[:h, :w].astype(np.float32)
    glow = np.exp(-((xx - 0.7 * w) ** 2 + (yy - 0.3 * h) ** 2) / (2 * (0.12 * w) ** 2))[..., None] * [200, 160, 60]
    lit = [t % 12 in (6, 7) for t in range(n)]
    flash = [_sensor(cat + glow if on else cat, rng, 1.0) for on in lit]
    clips.append(PanelClip("gen: flash", flash, [t for t in range(1, n) if lit[t] != lit[t - 1]]))
    return clips


def panel_clips(n: int) -> list[PanelClip]:
    """The real clips (first ``n`` frames; cuts as `livequant.scene_cuts` finds them), then the generated ones."""
    real = []
    for name, size in PANEL_REAL.items():
        frames = [resize(f, size) if size else f for f in read_frames(data_file(name), n)]
        real.append(PanelClip(name, frames, scene_cuts(frames)))
    return real + generated_clips(n)


def panel_scores(clip: PanelClip, k: int, metrics, methods=PANEL_METHODS, makers=VIDEO) -> dict[str, dict]:
    """Every method of the panel on ``clip`` at palette size ``k``, streamed (``makers``: as `VIDEO`); FFmpeg
    two-pass; and for livequant, ``after``: per event, PSNR over the `AFTER_CUT` frames from it minus a fresh
    start's."""
    scored = Clip(clip.name, clip.frames, metrics)
    results = {name: scored.score(makers[name](scored.size, k)) for name in methods}
    results[TWO_PASS] = scored.two_pass(k)
    for x in results.values():
        x["psnrs"] = np.minimum(x["psnrs"], PSNR_CAP)
        x["psnr"] = float(np.mean(x["psnrs"]))
    for name in (name for name in LIVEQUANT if name in methods):
        space = "rgb" if "rgb" in name else "oklab"
        after = []
        for event in clip.events:
            shown = clip.frames[event : event + AFTER_CUT]
            fresh = Quantizer(k, color_space=space)
            ref = np.mean([min(metrics.psnr(f, fresh.quantize(f)), PSNR_CAP) for f in shown])
            after.append(np.mean(results[name]["psnrs"][event : event + AFTER_CUT]) - ref)
        results[name]["after"] = after
    return results


def input_change(frames: list[np.ndarray]) -> float:
    """Mean |I_t - I_{t-1}| over pixels, channels and pairs: what `excess` is measured against."""
    return float(np.mean([np.abs(b.astype(np.int16) - a).mean() for a, b in zip(frames, frames[1:])]))


def copy_flicker(frames: list[np.ndarray], metrics) -> float:
    """The flicker an exact copy of the clip scores (its still pixels' own change), pooled as ``VideoMetrics``
    pools: where FFmpeg per frame is exact, the floor's flicker bound is a quarter of this."""
    pairs = [metrics.static_flicker(a, b, a, b) for a, b in zip(frames, frames[1:])]
    count = sum(n for _, n in pairs)
    return sum(value * n for value, n in pairs if n) / count if count else float("nan")


def _mark(ok: bool, value: str) -> str:
    return f"{value} {'met' if ok else 'NOT'}"


def _times(value: float, bound: float) -> str:
    """``value`` as a multiple of ``bound`` ("0.25x"); a bound of 0 (a peer with no flicker at all) gives "0x" or
    "inf"."""
    if bound:
        return f"{value / bound:.2f}x"
    return "0x" if value == 0 else "inf"


def goal_rows(clip: PanelClip, k: int, r: dict[str, dict]) -> list[list]:
    """One row per livequant mode: each floor and goal of issue 11 as its margin and met / NOT."""
    ffmpeg, two, mbk = r[FFMPEG], r[TWO_PASS], r[MBK]
    best_de = min(r[p]["de2000"] for p in PEERS)
    rows = []
    for name in LIVEQUANT:
        ours, rgb = r[name], "rgb" in name
        quality = (_mark(ours["psnr"] >= mbk["psnr"] - 0.3, f"{ours['psnr'] - mbk['psnr']:+.2f} dB") if rgb
                   else _mark(ours["de2000"] <= best_de, f"{ours['de2000'] - best_de:+.3f} dE"))
        worst = min(ours["psnrs"]) - min(ffmpeg["psnrs"])
        after = min(ours["after"], default=np.nan)
        rows.append([
            clip.name, k, "rgb" if rgb else "oklab",
            _mark(ours["psnr"] >= ffmpeg["psnr"], f"{ours['psnr'] - ffmpeg['psnr']:+.2f} dB"),
            _mark(ours["flicker"] <= ffmpeg["flicker"] / 4, _times(ours["flicker"], ffmpeg["flicker"] / 4)),
            quality,
            _mark(ours["flicker"] <= two["flicker"], _times(ours["flicker"], two["flicker"])),
            _mark(worst >= 0, f"{worst:+.2f} dB"),
            "" if np.isnan(after) else _mark(after >= -0.5, f"{after:+.2f} dB"),
        ])
    return rows


GOAL_HEADER = ["clip", "K", "mode", "floor: PSNR - FFmpeg/frame", "floor: flicker / (FFmpeg/frame / 4)",
               "goal: rgb PSNR - MBK | oklab dE - best peer", "goal: flicker / two-pass",
               "worst frame - FFmpeg/frame's", f"{AFTER_CUT} frames after events - fresh"]


def panel(quick: bool, metrics) -> None:
    """Issue 11's panel: every clip, K in {16, 64, 256}, livequant's defaults next to the peers, the goals
    marked; then the fade's tracking and the stability curve over the whole panel."""
    n, ks = (QUICK_PANEL_FRAMES, QUICK_PANEL_KS) if quick else (PANEL_FRAMES, PANEL_KS)
    clips = panel_clips(n)
    for name in PANEL_METHODS:  # warm-up: compiled kernels, imports, first-call costs
        VIDEO[name](PANEL_SIZE, 16)(clips[-1].frames[0])
    print(f"panel: {n} frames a clip (fewer where the clip is shorter), no dither, streamed; cockatoo scaled to "
          f"640x360, generated clips {PANEL_SIZE[0]}x{PANEL_SIZE[1]}; CIEDE2000 on <= {DE_PIXELS} px/frame. "
          f"events = cuts (generated: known; real: livequant.scene_cuts) and flash on/off")
    goals, results = [], {}
    for clip in clips:
        h, w = clip.frames[0].shape[:2]
        rows = []
        for k in ks:
            r = results[clip.name, k] = panel_scores(clip, k, metrics)
            rows += [[k, name, x["psnr"], x["de2000"], x["flicker"], min(x["psnrs"]), x["excess"], x["ms"]]
                     for name, x in r.items()]
            goals += goal_rows(clip, k, r)
        print(f"{clip.name}: {len(clip.frames)} frames {w}x{h}, events {clip.events or 'none'}, "
              f"input change {input_change(clip.frames):.2f} levels/frame, "
              f"an exact copy flickers {copy_flicker(clip.frames, metrics):.3f}")
        print_table(["K", "method", "PSNR dB", "dE2000", "flicker", "worst PSNR", "excess", "ms/frame"], rows)
        print_load(f"after {clip.name}")
    print("goals (issue 11) at livequant's defaults; margins: dB or dE (ours - peer) and flicker ratios")
    print_table(GOAL_HEADER, goals)
    marks = [cell.endswith("met") for row in goals for cell in row[3:] if cell]
    floors = [row[c].endswith("met") for row in goals for c in (3, 4)]
    print(f"met: {sum(marks)} of {len(marks)} checks; the floor: {sum(floors)} of {len(floors)}")
    print()
    fade = next(c for c in clips if c.name == "gen: fade")
    change = input_change(fade.frames)
    print(f"fade tracking (gen: fade): input moves {change:.2f} levels/frame on every pixel; excess = mean |dOut| - "
          "|dIn|; tracked = share of the input's change the output shows (a frozen palette shows ~0)")
    print_table(["K", "method", "excess", "tracked", "PSNR last 8 frames"],
                [[k, name, x["excess"], (x["excess"] + change) / change, float(np.mean(x["psnrs"][-8:]))]
                 for k in ks for name, x in results[fade.name, k].items()])
    lagging_fade(fade, results, ks, metrics)
    panel_sweep(clips, results, 64 if 64 in ks else ks[0], metrics, quick)


def lagging_fade(fade: PanelClip, results: dict, ks, metrics, speeds=(1.0, 0.8, 0.7)) -> None:
    """Can anything meet the fade's flicker floor? livequant's output of the fade played at ``speeds`` of its
    pace (``t`` -> ``speed * t``), scored against the true frames: a lagging output changes less."""
    cat = _photo(*FADE_PICTURE)
    rows = []
    for k in ks:
        ffmpeg = results[fade.name, k][FFMPEG]
        for speed in speeds:
            quantizer = Quantizer(k)
            shown = iter([quantizer.quantize(fade_frame(cat, speed * t)) for t in range(len(fade.frames))])
            x = Clip(fade.name, fade.frames, metrics).score(lambda frame: next(shown))
            rows.append([k, speed, f"{np.mean(x['psnrs']) - np.mean(ffmpeg['psnrs']):+.2f}",
                         f"{x['flicker'] / (ffmpeg['flicker'] / 4):.2f}x", x["excess"]])
    print("the fade played slower (livequant oklab): an output that lags changes less than the input; the floor "
          "needs both PSNR >= FFmpeg per frame and flicker <= its bound")
    print_table(["K", "speed", "PSNR - FFmpeg/frame (dB)", "flicker / bound", "excess"], rows)


def panel_sweep(clips: list[PanelClip], results: dict, k: int, metrics, quick: bool) -> None:
    """The (quality, flicker) curve over ``stability`` on the whole panel, at palette size ``k``."""
    default = quantizer_default("stability")
    rows = []
    for space in ("oklab",):  # the default mode; rgb's curve has the same shape and doubles the cost
        for stability in sorted({0, default, SWEEP_STABILITY[-1]} if quick else {*SWEEP_STABILITY, default}):
            psnr, de, flicker, floor = [], [], [], 0
            for clip in clips:
                peers = results[clip.name, k]
                x = Clip(clip.name, clip.frames, metrics).score(
                    Quantizer(k, color_space=space, stability=stability).quantize)
                ours = float(np.mean(np.minimum(x["psnrs"], PSNR_CAP)))
                psnr.append(ours - peers[MBK]["psnr"])
                de.append(x["de2000"] - min(peers[p]["de2000"] for p in PEERS))
                flicker.append(x["flicker"] / peers[TWO_PASS]["flicker"])
                floor += ours >= peers[FFMPEG]["psnr"] and x["flicker"] <= peers[FFMPEG]["flicker"] / 4
            rows.append([space, f"{stability:g}", float(np.median(psnr)), float(np.median(de)),
                         float(np.exp(np.mean(np.log(flicker)))), float(np.max(flicker)), f"{floor} of {len(clips)}",
                         "<- default" if stability == default else ""])
    print(f"stability curve over the panel ({len(clips)} clips), K={k}: medians over clips, flicker ratios' "
          "geometric mean and worst clip, clips where the floor holds")
    print_table(["space", "stability", "PSNR - MBK dB", "dE - best peer", "flicker / two-pass",
                 "worst clip", "floor holds", ""], rows)


# ------------------------------------------------------------------ error diffusion on video

DITHER_KS, QUICK_DITHER_KS = (16, 64), (16,)
HELD, AFRESH = "livequant (hold, the default)", "livequant, each frame afresh"
ONE_LEVEL = "livequant, hold of 1 level"
#: Fixed palettes whose colours lie far apart, for `retro_panel`.
RETRO_PRESETS, RETRO_DITHER = ("cga", "pico8", "gameboy"), "floyd-steinberg"
STILL_NOISY, STILL_NOISE_SIGMAS = "still: ", (1, 2)
FFMPEG_DITHERED, FFMPEG_RECTANGLE = "FFmpeg two-pass", "FFmpeg two-pass, diff_mode=rectangle"


def diffused_afresh(dither: str, **options):
    """livequant's quantize (a `Quantizer` of ``options``) with the hold forgotten before every frame: each
    frame diffused afresh, the same palettes as with the hold."""
    quantizer = Quantizer(dither=dither, **options)

    def quantize(frame: np.ndarray) -> np.ndarray:
        quantizer.hold.reset()
        return quantizer.quantize(frame)
    return quantize


def dither_panel(quick: bool, metrics) -> None:
    """Error diffusion on the panel's clips: livequant with and without its hold, and FFmpeg two-pass."""
    n, ks = (QUICK_PANEL_FRAMES, QUICK_DITHER_KS) if quick else (PANEL_FRAMES, DITHER_KS)
    clips = panel_clips(n)
    print(f"error diffusion on video: issue 11's panel, {n} frames a clip, streamed; blurred = PSNR of both "
          f"blurred (Gaussian, sigma {BLUR_SIGMA} px)")
    summary = []
    for dither, ffmpeg_name in DITHERS_COMPARED.items():
        for k in ks:
            rows, held, afresh, ffmpeg = [], [], [], []
            for clip in clips:
                scored = Clip(clip.name, clip.frames, metrics)
                r = {HELD: scored.score(Quantizer(k, dither=dither).quantize, blurred=True),
                     AFRESH: scored.score(diffused_afresh(dither, n_colors=k), blurred=True),
                     FFMPEG_DITHERED: scored.two_pass(k, ffmpeg_name, blurred=True),
                     FFMPEG_RECTANGLE: scored.two_pass(k, ffmpeg_name, "rectangle", blurred=True)}
                rows += [[clip.name, name, x["psnr"], x["blurred"], x["de2000"], x["flicker"], x["ms"]]
                         for name, x in r.items()]
                held.append(r[HELD])
                afresh.append(r[AFRESH])
                ffmpeg.append(r[FFMPEG_RECTANGLE])
            print(f"{dither}, K={k}")
            print_table(["clip", "method", "PSNR dB", "blurred dB", "dE2000", "flicker", "ms/frame"], rows)
            print_load(f"after {dither}, K={k}")
            summary.append([dither, k, *_dither_margins(held, afresh), *_dither_margins(held, ffmpeg)])
    print("the hold against each frame afresh, and against FFmpeg two-pass with diff_mode=rectangle: medians over "
          "clips (blurred PSNR, dB), flicker ratios' geometric mean and worst clip")
    print_table(["dither", "K", "blurred - afresh", "flicker / afresh", "worst", "blurred - FFmpeg rect.",
                 "flicker / FFmpeg rect.", "worst"], summary)
    retro_panel(clips, metrics)


LUMA = np.array([0.299, 0.587, 0.114])
LUMA_BANDS = (0, 64, 128, 192, 256)


def space_flicker(quick: bool, metrics) -> None:
    """Why oklab flickers more than rgb where it does: each space's flicker on the frames where a new palette
    lands and on the others, how far a moved slot moves (RGB levels), what the still pixels that took another
    index show, and flicker and slots by the pixels' lightness (luma bands)."""
    n, ks = (QUICK_PANEL_FRAMES, QUICK_PANEL_KS) if quick else (PANEL_FRAMES, PANEL_KS)
    rows, bands = [], []
    for clip in panel_clips(n):
        for k in ks:
            for space in ("oklab", "rgb"):
                x = _space_run(clip.frames, Quantizer(k, color_space=space), metrics)
                rows.append([clip.name, k, space, *(f"{x[key]:.3f}" for key in ("flicker", "landing", "between",
                                                                                 "reindexed")),
                             f"{x['changes']} / {x['fits']}", f"{x['move']:.1f}"])
                bands.append([clip.name, k, space, *(f"{v:.3f}" for v in x["band_flicker"]),
                              *(f"{v:.1f}" for v in x["band_slots"])])
    print(f"oklab against rgb: livequant's defaults in each space on the panel ({n} frames a clip). Flicker "
          "(pooled over still pixels, as the metric) split by the frames where a new palette lands and the others "
          "(each part over all still pixels: they add up); 'reindexed': the part of the landing frames' flicker from "
          "still pixels that took another index; frames whose palette changed (recalls of an earlier palette "
          "too) and fits run; a moved slot's mean change a channel, RGB levels")
    print_table(["clip", "K", "space", "flicker", "on landings", "between", "reindexed", "palette changes / fits",
                 "move"], rows)
    edges = [f"{a}-{b - 1}" for a, b in zip(LUMA_BANDS, LUMA_BANDS[1:])]
    print("by the input's luma: flicker of the still pixels in each band, and palette slots in each band (mean over "
          "frames)")
    print_table(["clip", "K", "space", *(f"flicker {e}" for e in edges), *(f"slots {e}" for e in edges)], bands)


def _space_run(frames: list[np.ndarray], quantizer: Quantizer, metrics) -> dict:
    """`space_flicker`'s figures for one clip through one quantizer."""
    still_pixels = 0
    landing = between = reindexed = 0.0
    band_sums, band_pixels, slots = np.zeros(4), np.zeros(4), np.zeros(4)
    moves, changes, before = [], 0, None
    for t, frame in enumerate(frames):
        out = quantizer.process(frame)
        slots += np.bincount(_luma_band(out.palette.colors), minlength=4) / len(frames)
        if before is not None:
            still = largest_channel(np.abs(frame.astype(np.int16) - frames[t - 1])) < metrics.STATIC_THRESHOLD
            change = np.abs(out.rgb.astype(np.int16) - before.rgb).sum(axis=2)[still] / 3.0
            still_pixels += int(still.sum())
            old, new = before.palette.colors.astype(np.int16), out.palette.colors.astype(np.int16)
            if np.array_equal(old, new):
                between += change.sum()
            else:
                changes += 1
                landing += change.sum()
                reindexed += change[(out.indices != before.indices)[still]].sum()
                if len(old) == len(new):
                    moved = np.abs(new - old).max(axis=1) > 0
                    moves.append(np.abs(new - old)[moved].mean())
            band = _luma_band(frame[still])
            band_sums += np.bincount(band, weights=change, minlength=4)
            band_pixels += np.bincount(band, minlength=4)
        before = out
    per_pixel = 1 / max(still_pixels, 1)
    return {"flicker": (landing + between) * per_pixel, "landing": landing * per_pixel,
            "between": between * per_pixel, "reindexed": reindexed * per_pixel, "changes": changes,
            "fits": quantizer.stats["fits"], "move": float(np.mean(moves)) if moves else 0.0,
            "band_flicker": [float(v) for v in band_sums / np.maximum(band_pixels, 1)],
            "band_slots": [float(v) for v in slots]}


def _luma_band(colors: np.ndarray) -> np.ndarray:
    """Which of `LUMA_BANDS` each of ``(N, 3)`` RGB colours' luma falls in, 0 to 3."""
    return np.digitize(colors @ LUMA, LUMA_BANDS[1:-1])


def retro_panel(clips: list[PanelClip], metrics) -> None:
    """`RETRO_DITHER` with `RETRO_PRESETS` (colours far apart) on the panel's clips and `still_noisy_clips`:
    the default hold (it covers the noise there), a hold of 1 level, and each frame afresh."""
    n = len(clips[0].frames)
    clips = clips + still_noisy_clips(n)
    print(f"error diffusion ({RETRO_DITHER}) with fixed palettes of far-apart colours; changed: the share of "
          "pixels whose colour changes from one frame to the next, mean over pairs")
    summary = []
    for preset in RETRO_PRESETS:
        rows, held, afresh = [], [], []
        for clip in clips:
            scored = Clip(clip.name, clip.frames, metrics)
            r = {HELD: scored.score(Quantizer(palette=preset, dither=RETRO_DITHER).quantize, blurred=True),
                 ONE_LEVEL: scored.score(Quantizer(palette=preset, dither=RETRO_DITHER, hold=1).quantize, blurred=True),
                 AFRESH: scored.score(diffused_afresh(RETRO_DITHER, palette=preset), blurred=True)}
            rows += [[clip.name, name, x["blurred"], x["flicker"], 100 * x["changed"], x["ms"]]
                     for name, x in r.items()]
            held.append(r[HELD])
            afresh.append(r[AFRESH])
            if clip.name.startswith(STILL_NOISY):
                summary.append([preset, clip.name, *(100 * r[name]["changed"] for name in (HELD, ONE_LEVEL, AFRESH))])
        print(f"palette {preset}")
        print_table(["clip", "method", "blurred dB", "flicker", "changed %", "ms/frame"], rows)
        print_load(f"after {preset}")
        blurred, flicker, worst = _dither_margins(held, afresh)
        print(f"{preset}, the default hold against each frame afresh over all clips: blurred {blurred:+.2f} dB "
              f"(median), flicker x{flicker:.2f} (geometric mean), worst clip x{worst:.2f}")
    print("still scenes under sensor noise: pixels changed a frame, %")
    print_table(["palette", "clip", HELD, ONE_LEVEL, AFRESH], summary)


def still_noisy_clips(n: int) -> list[PanelClip]:
    """``n`` frames of two still photographs under sensor-like noise of each of `STILL_NOISE_SIGMAS`."""
    rng = np.random.default_rng(11)
    clips = []
    for name in ("coffee", "astronaut"):
        picture = _photo(name)
        for sigma in STILL_NOISE_SIGMAS:
            clips.append(PanelClip(f"{STILL_NOISY}{name}, sigma {sigma:g}",
                                   [_sensor(picture, rng, sigma) for _ in range(n)], []))
    return clips


def _dither_margins(ours: list[dict], theirs: list[dict]) -> list[float]:
    """Median blurred-PSNR margin, and the geometric mean and largest of the flicker ratios (0 counts as 0.001)."""
    ratios = [max(a["flicker"], 1e-3) / max(b["flicker"], 1e-3) for a, b in zip(ours, theirs)]
    return [float(np.median([a["blurred"] - b["blurred"] for a, b in zip(ours, theirs)])),
            float(np.exp(np.mean(np.log(ratios)))), float(np.max(ratios))]


# ------------------------------------------------------------------ hold-out: clips nothing was tuned on

#: Pans over pictures the panel does not use: (picture, px a frame, diagonal); a name with a dot is a still in
#: ../shared/data (skipped when absent), others scikit-image's.
HOLDOUT_PANS = (("coffee", 3, False), ("immunohistochemistry", 6, False), ("bricks.jpg", 2, False),
                ("wood.jpg", 8, False), ("rommel.jpg", 4, True), ("hubble_deep_field", 5, False))
#: Zooms: (picture, out): the crop halves over the clip (in) or doubles (out).
HOLDOUT_ZOOMS = (("chelsea", True), ("coffee", False))


def _picture(name: str) -> np.ndarray | None:
    """A hold-out picture as an RGB array, or None for a still of ../shared/data that is absent."""
    if "." not in name:
        return getattr(skimage.data, name)()[..., :3]
    return read_image(str(DATA / name)) if (DATA / name).is_file() else None


def holdout_clips(n: int) -> list[PanelClip]:
    """`HOLDOUT_PANS` and `HOLDOUT_ZOOMS` as ``n``-frame clips of `PANEL_SIZE` under light sensor noise."""
    rng = np.random.default_rng(11)
    w, h = PANEL_SIZE
    clips = []
    for name, speed, diagonal in HOLDOUT_PANS:
        picture = _picture(name)
        if picture is None:
            continue
        big = resize(np.ascontiguousarray(picture), (w + speed * n, h + speed * n * diagonal)).astype(np.float32)
        frames = [_sensor(big[speed * t * diagonal:][:h, speed * t : speed * t + w], rng, 1.0) for t in range(n)]
        clips.append(PanelClip(f"pan {name} {speed} px{' diagonal' if diagonal else ''}", frames, []))
    for name, out in HOLDOUT_ZOOMS:
        picture = _picture(name)
        frames = []
        for t in range(n):
            scale = 2 ** (-(n - 1 - t if out else t) / max(n - 1, 1))
            ph, pw = picture.shape[:2]
            ch, cw = int(ph * scale), int(pw * scale)
            crop = picture[(ph - ch) // 2 :][:ch, (pw - cw) // 2 :][:, :cw]
            frames.append(_sensor(resize(np.ascontiguousarray(crop), (w, h)).astype(np.float32), rng, 1.0))
        clips.append(PanelClip(f"zoom {'out of' if out else 'into'} {name}", frames, []))
    return clips


def _h264(frames: list[np.ndarray], crf: int) -> list[np.ndarray]:
    """``frames`` through libx264 (4:2:0, ``crf``) and back: the blocks, ringing and chroma blur of real video."""
    buffer = io.BytesIO()
    h, w = frames[0].shape[:2]
    with av.open(buffer, "w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=24, options={"crf": str(crf), "preset": "medium"})
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        for frame in frames:
            out.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        out.mux(stream.encode())
    buffer.seek(0)
    with av.open(buffer) as video:
        return [np.ascontiguousarray(f.to_ndarray(format="rgb24")) for f in video.decode(video=0)]


def _cartoon(n: int, size=PANEL_SIZE) -> tuple[list[np.ndarray], list[int]]:
    """Three shots of flat, outlined shapes drifting over a flat sky and ground (anti-aliased edges), and the
    frames the second and third begin at."""
    w, h = size
    frames, cuts = [], []
    for shot in range(3):
        cuts.append(len(frames))
        rng = np.random.default_rng(shot)
        sky, ground = (tuple(int(c) for c in rng.integers(40, 230, 3)) for _ in range(2))
        shapes = [(rng.integers(0, w, 2), rng.integers(10, 50, 2), tuple(int(c) for c in rng.integers(0, 256, 3)),
                   rng.normal(0, 3, 2)) for _ in range(7)]
        for t in range(n // 3 + (shot < n % 3)):
            image = np.empty((h, w, 3), np.uint8)
            image[: h // 2], image[h // 2 :] = sky, ground
            cv2.rectangle(image, (w // 3, h // 4), (w // 3 + 60, h // 2 + 30), tuple(c // 2 for c in ground), -1,
                          cv2.LINE_AA)
            for centre, axes, color, velocity in shapes:
                at = tuple(int(c) for c in centre + velocity * t)
                cv2.ellipse(image, at, tuple(int(a) for a in axes), 0, 0, 360, color, -1, cv2.LINE_AA)
                cv2.ellipse(image, at, tuple(int(a) for a in axes), 0, 0, 360, (20, 20, 20), 2, cv2.LINE_AA)
            frames.append(image)
    return frames, cuts[1:]


def encoded_clips(n: int) -> list[PanelClip]:
    """Clips like the footage issue 11 keeps back, through H.264, ``n`` frames each.

    - cartoon: `_cartoon`, three shots (two cuts), crf 20;
    - talking head: a face (astronaut's) bobbing over a still room (coffee), 192x144, noisy, crf 26;
    - street: a pan of 4 px a frame right and 1 down over rommel.jpg (rocket when absent), crf 24;
    - city: a still wall (bricks.jpg; brick when absent) with three vehicles crossing, noisy, crf 23.
    """
    rng = np.random.default_rng(13)
    w, h = PANEL_SIZE
    cartoon, cuts = _cartoon(n)
    clips = [PanelClip("h264 cartoon, cuts", _h264(cartoon, 20), cuts)]

    room = resize(np.ascontiguousarray(skimage.data.coffee()), (192, 144)).astype(np.float32)
    face = resize(np.ascontiguousarray(skimage.data.astronaut()[30:330, 100:400]), (90, 90)).astype(np.float32)
    head = []
    for t in range(n):
        image = room.copy()
        y, x = 40 + int(2 * np.sin(t / 3)), 50 + int(4 * np.sin(t / 4))
        image[y : y + 90, x : x + 90] = face
        head.append(_sensor(image, rng, 2.0))
    clips.append(PanelClip("h264 talking head 192x144", _h264(head, 26), []))

    street = _picture("rommel.jpg")
    street = resize(np.ascontiguousarray(street if street is not None else skimage.data.rocket()), (w + 4 * n, h + n))
    street = street.astype(np.float32)
    clips.append(PanelClip("h264 street, pan", _h264([_sensor(street[t : t + h, 4 * t : 4 * t + w], rng, 1.0)
                                                       for t in range(n)], 24), []))

    wall = _picture("bricks.jpg")
    wall = np.ascontiguousarray(wall if wall is not None else np.repeat(skimage.data.brick()[..., None], 3, axis=2))
    wall = resize(wall, (w, h))
    city = []
    for t in range(n):
        image = wall.astype(np.float32)
        for lane, color in enumerate([(200, 30, 30), (30, 60, 200), (230, 230, 230)]):
            x = (40 * lane + 6 * t * (1 + lane % 2)) % (w + 60) - 60
            image[120 + 15 * lane : 140 + 15 * lane, max(x, 0) : max(x + 50, 0)] = color
        city.append(_sensor(image, rng, 2.0))
    clips.append(PanelClip("h264 city, traffic", _h264(city, 23), []))
    return clips


def _vertical_ramp(top, bottom, size) -> np.ndarray:
    """A picture of ``size`` (W, H) fading row by row from colour ``top`` to ``bottom``, float64."""
    rows = np.linspace(0, 1, size[1])[:, None, None]
    return (np.array(top) * (1 - rows) + np.array(bottom) * rows) * np.ones((1, size[0], 1))


def footage_clips(n: int) -> list[PanelClip]:
    """Kinds of footage neither the panel nor the other hold-out clips have, ``n`` frames each (added
    2026-12-06, sixth session, after every change above was made; `PANEL_SIZE` unless said):

    - a sky: a smooth ramp from orange to blue under faint noise (sigma 0.7), a dark bird crossing;
    - auto-exposure: retina brightening by 3% a frame over frames 8-20, steady before and after;
    - a handheld camera: the motorcycle shaking by a random walk of up to 7 px;
    - a webcam: the motorcycle still, a green ball crossing it;
    - a colour wheel turning 3 degrees a frame;
    - low light: coffee at a quarter of its brightness under strong noise (sigma 4), still;
    - flat art: scikit-image's logo (anti-aliased, on white) sliding 2 px right and 1 down a frame, no noise;
    - real footage: cockatoo's frames 200-235 at 480x270 (the panel has its first 36; skipped when absent).
    """
    rng = np.random.default_rng(101)
    w, h = PANEL_SIZE
    clips = []
    sky = _vertical_ramp((250, 140, 60), (40, 50, 120), (w, h))
    frames = []
    for t in range(n):
        image = sky.astype(np.float32)
        cv2.ellipse(image, (10 + 9 * t, 60), (14, 4), 0, 0, 360, (20, 20, 25), -1, cv2.LINE_AA)
        frames.append(_sensor(image, rng, 0.7))
    clips.append(PanelClip("sky, a bird crossing", frames, []))

    retina = resize(np.ascontiguousarray(skimage.data.retina()[200:1200, 100:1300]), (w, h)).astype(np.float32)
    gains = [1 + 0.03 * min(max(t - 8, 0), 12) for t in range(n)]
    clips.append(PanelClip("auto-exposure", [_sensor(np.minimum(retina * g, 255), rng, 1.0) for g in gains], []))

    motorcycle = skimage.data.stereo_motorcycle()[0]
    big = resize(np.ascontiguousarray(motorcycle), (w + 16, h + 16)).astype(np.float32)
    shake = np.clip(np.cumsum(rng.normal(0, 1.5, (n, 2)), axis=0), -7, 7).astype(int) + 8
    clips.append(PanelClip("handheld shake", [_sensor(big[y : y + h, x : x + w], rng, 1.5) for y, x in shake], []))

    frames = []
    for t in range(n):
        image = big[8 : 8 + h, 8 : 8 + w].copy()
        cv2.circle(image, (20 + 8 * t, int(90 + 30 * np.sin(t / 5))), 22, (40, 200, 90), -1, cv2.LINE_AA)
        frames.append(_sensor(image, rng, 1.5))
    clips.append(PanelClip("webcam, a ball crossing", frames, []))

    wheel = skimage.data.colorwheel()
    frames = []
    for t in range(n):
        turned = cv2.warpAffine(wheel, cv2.getRotationMatrix2D((185, 185), 3 * t, 1.0), (371, 370),
                                borderValue=(255, 255, 255))
        canvas = np.full((h, w, 3), 30, np.float32)
        canvas[:, (w - h) // 2 : (w + h) // 2] = resize(np.ascontiguousarray(turned), (h, h))
        frames.append(_sensor(canvas, rng, 1.0))
    clips.append(PanelClip("colour wheel turning", frames, []))

    coffee = _photo("coffee", (0, 0, 338, 600))
    clips.append(PanelClip("low light, noisy", [_sensor(coffee * 0.25, rng, 4.0) for _ in range(n)], []))

    logo = skimage.data.logo().astype(np.float32)
    on_white = logo[..., :3] * logo[..., 3:] / 255 + 255 * (1 - logo[..., 3:] / 255)
    big = resize(on_white, (w + 2 * n, h + n))
    clips.append(PanelClip("flat art sliding", [np.ascontiguousarray(big[t : t + h, 2 * t : 2 * t + w].round()
                                                                     .astype(np.uint8)) for t in range(n)], []))

    if (DATA / "cockatoo.mp4").is_file():
        frames = [resize(f, (480, 270)) for f in read_frames(DATA / "cockatoo.mp4", 200 + n)[200:]]
        clips.append(PanelClip(f"cockatoo 200-{199 + n}, 480x270", frames, scene_cuts(frames)))
    return clips


def late_clips(n: int) -> list[PanelClip]:
    """Six more kinds of footage, ``n`` frames each at `PANEL_SIZE` (added 2026-12-06, seventh session, before
    the hold's threshold was made to weigh the noise against the palette's spacing, and first run after it):

    - overcast: a grey-blue sky over dark roofs (brick, darkened), still, noise sigma 1.2;
    - studio: coffee's cup sliding 1 px a frame over a light grey backdrop, low noise (sigma 0.5);
    - night: rocket at 30% of its brightness, a warm light crossing, noise sigma 1.5;
    - sunset: a warm horizon behind the camera's silhouette, panning 1 px a frame, noise sigma 0.6;
    - video call: astronaut's face swaying over a still, blurred room (immunohistochemistry), noise sigma 1;
    - slides: a slide drawn in code (title bar, text strokes, bars) breathing 2% in brightness, noise sigma 0.3.
    """
    rng = np.random.default_rng(202)
    w, h = PANEL_SIZE
    clips = []
    overcast = _vertical_ramp((150, 160, 175), (200, 205, 210), (w, h))
    brick = np.repeat(skimage.data.brick()[..., None], 3, axis=2).astype(np.float32)
    overcast[2 * h // 3 :] = resize(brick, (w, h - 2 * h // 3)) * 0.35
    clips.append(PanelClip("overcast, still", [_sensor(overcast, rng, 1.2) for _ in range(n)], []))

    backdrop = _vertical_ramp((205, 205, 200), (170, 170, 168), (w, h))
    cup = resize(np.ascontiguousarray(skimage.data.coffee()[20:330, 130:470]), (110, 100)).astype(np.float32)
    frames = []
    for t in range(n):
        image = backdrop.astype(np.float32)
        image[40:140, 60 + t : 170 + t] = cup
        frames.append(_sensor(image, rng, 0.5))
    clips.append(PanelClip("studio, a cup sliding", frames, []))

    night = _photo("rocket", (0, 0, 427, 640)) * 0.3
    yy, xx = np.mgrid[:h, :w].astype(np.float32)
    frames = []
    for t in range(n):
        glow = np.exp(-((xx - 9 * t) ** 2 + (yy - 0.6 * h) ** 2) / (2 * 12.0**2))[..., None] * [230, 170, 80]
        frames.append(_sensor(np.minimum(night + glow, 255), rng, 1.5))
    clips.append(PanelClip("night, a light crossing", frames, []))

    wide = w + n
    cols = np.linspace(0, 1, wide)[None, :, None]
    sunset = _vertical_ramp((255, 170, 90), (120, 60, 90), (wide, h)) * (0.9 + 0.1 * cols)
    camera = resize(np.ascontiguousarray(skimage.data.camera()), (wide, h))
    sunset[camera < 60] = 25
    clips.append(PanelClip("sunset pan", [_sensor(sunset[:, t : t + w], rng, 0.6) for t in range(n)], []))

    room = cv2.GaussianBlur(_photo("immunohistochemistry"), (0, 0), 3)
    face = resize(np.ascontiguousarray(skimage.data.astronaut()[20:320, 120:400]), (100, 110)).astype(np.float32)
    frames = []
    for t in range(n):
        image = room.copy()
        x = 110 + int(round(6 * np.sin(t / 4)))
        image[h - 110 :, x : x + 100] = face
        frames.append(_sensor(image, rng, 1.0))
    clips.append(PanelClip("video call", frames, []))

    slide = np.full((h, w, 3), 250, np.uint8)
    slide[:28] = (30, 70, 140)
    cv2.putText(slide, "Quarterly results", (10, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 1, cv2.LINE_AA)
    for line in range(4):
        cv2.putText(slide, "- point number %d" % line, (14, 52 + 22 * line), cv2.FONT_HERSHEY_SIMPLEX, 0.45,
                    (40, 40, 40), 1, cv2.LINE_AA)
    for bar, color in enumerate([(220, 80, 60), (60, 160, 90), (240, 190, 40)]):
        cv2.rectangle(slide, (200 + 36 * bar, 150 - 30 * (bar + 1)), (226 + 36 * bar, 150), color, -1)
    clips.append(PanelClip("slides, breathing", [_sensor(slide * (1 + 0.02 * np.sin(t / 3)), rng, 0.3)
                                                 for t in range(n)], []))
    return clips


def all_holdout_clips(n: int) -> list[PanelClip]:
    """Every hold-out clip: `holdout_clips`, `encoded_clips`, `footage_clips` and `late_clips`."""
    return holdout_clips(n) + encoded_clips(n) + footage_clips(n) + late_clips(n)


def holdout(quick: bool, metrics) -> None:
    """The floor of issue 11 on `all_holdout_clips`: livequant's defaults against FFmpeg per frame."""
    n, ks = (QUICK_PANEL_FRAMES, QUICK_PANEL_KS) if quick else (PANEL_FRAMES, PANEL_KS)
    print(f"hold-out: {n} frames a clip, {PANEL_SIZE[0]}x{PANEL_SIZE[1]}, no dither, streamed; not tuned on")
    holdout_floor(all_holdout_clips(n), ks, metrics, lambda clip, k, score: score(FFMPEG))


HOLDOUT_HEADER = ["clip", "K", "mode", "floor: PSNR - FFmpeg/frame", "floor: flicker / (FFmpeg/frame / 4)",
                  "dE - FFmpeg/frame"]


def holdout_floor(clips: list[PanelClip], ks, metrics, ffmpeg_scores, makers=VIDEO) -> list[list]:
    """Print and return the hold-out's floor rows, and print the tallies; ``ffmpeg_scores(clip, k, score)``
    gives FFmpeg per frame's scores, where ``score(method)`` scores a method of ``makers`` (as `VIDEO`) on the
    clip."""
    rows = []
    for clip in clips:
        scored = Clip(clip.name, clip.frames, metrics)
        for k in ks:

            def score(method: str, k: int = k) -> dict:
                return scored.score(makers[method](scored.size, k))

            ffmpeg = ffmpeg_scores(clip, k, score)
            for name in LIVEQUANT:
                ours = score(name)
                psnr = np.mean(np.minimum(ours["psnrs"], PSNR_CAP)) - np.mean(np.minimum(ffmpeg["psnrs"], PSNR_CAP))
                floor = ffmpeg["flicker"] / 4
                rows.append([clip.name, k, "rgb" if "rgb" in name else "oklab", _mark(psnr >= 0, f"{psnr:+.2f} dB"),
                             _mark(ours["flicker"] <= floor, _times(ours["flicker"], floor)),
                             f"{ours['de2000'] - ffmpeg['de2000']:+.3f}"])
        print_load(f"after {clip.name}")
    print_table(HOLDOUT_HEADER, rows)
    for mode in ("oklab", "rgb"):
        floors = [row[c].endswith("met") for row in rows if row[2] == mode for c in (3, 4)]
        print(f"{mode}: the floor met on {sum(floors)} of {len(floors)} checks")
    return rows


def tune(quick: bool, metrics, ks=TUNE_KS, holdout_ks=TUNE_HOLDOUT_KS, seeds=(None,),
         options: dict | None = None) -> list[dict]:
    """Issue 11's checks in a minute or two, for trying a change: the panel's goal rows at ``ks`` and the
    hold-out's floor at ``holdout_ks``, livequant scored afresh with
    `Quantizer` ``options`` (`tuned_makers`) on each of ``seeds`` (None: the default seed). Returns the
    checks as records (`check_records`). The peers' scores are kept in `TUNE_CACHE` from the first run
    (delete it after changing the panel, the hold-out or a peer), and the hold-out's clips too: libx264 here
    does not encode the same frames the same way twice in one process (the cartoon's second encoding differs
    from its first in a few pixels; the first is the same from process to process)."""
    n = QUICK_PANEL_FRAMES if quick else PANEL_FRAMES
    peers = [name for name in PANEL_METHODS if name not in LIVEQUANT]
    clips = _cached(f"holdout-clips-{n}", lambda: [(c.name, c.frames, c.events) for c in all_holdout_clips(n)])
    records = []
    for seed in seeds:
        makers = tuned_makers(options or {}, seed)
        named = "" if seed is None else f"seed {seed}, "
        for k in ks:
            goals = []
            for clip in panel_clips(n):
                r = _cached(f"panel-{n}-{k}-{clip.name}", lambda: panel_scores(clip, k, metrics, methods=peers))
                ours = panel_scores(clip, k, metrics, methods=LIVEQUANT, makers=makers)
                goals += goal_rows(clip, k, {**r, **{name: ours[name] for name in LIVEQUANT}})
            marks = [cell.endswith("met") for row in goals for cell in row[3:] if cell]
            print(f"{named}K={k}: {sum(marks)} of {len(marks)} checks met")
            print_table(GOAL_HEADER, goals)
            records += check_records(goals, GOAL_HEADER, seed, "panel")
        if holdout_ks:
            print(f"{named}hold-out, K={', '.join(map(str, holdout_ks))}")
            rows = holdout_floor([PanelClip(*clip) for clip in clips], holdout_ks, metrics,
                                 lambda clip, k, score: _cached(f"holdout-{n}-{k}-{clip.name}", lambda: score(FFMPEG)),
                                 makers=makers)
            records += check_records(rows, HOLDOUT_HEADER, seed, "hold-out")
    return records


def tuned_makers(options: dict, seed: int | None) -> dict:
    """`VIDEO` with livequant's two modes made with `Quantizer` ``options``: keys are its keywords, or
    "oklab" / "rgb" (a dict of keywords for that mode alone), or "max_k" (the options apply to palettes
    of at most that many colours); and ``seed`` when not None."""
    options = dict(options)
    max_k = options.pop("max_k", 256)
    own = {mode: options.pop(mode, {}) for mode in ("oklab", "rgb")}
    per_mode = {mode: {**options, **own[mode]} for mode in own}
    seeded = {} if seed is None else {"seed": seed}

    def maker(mode: str):
        space = {} if mode == "oklab" else {"color_space": "rgb"}
        return lambda size, k: Quantizer(k, **space, **seeded, **(per_mode[mode] if k <= max_k else {})).quantize

    return {**VIDEO, LIVEQUANT[0]: maker("oklab"), LIVEQUANT[1]: maker("rgb")}


def check_records(rows: list[list], header: list[str], seed: int | None, kind: str) -> list[dict]:
    """Rows of `goal_rows` or `holdout_floor` as records: ``seed``, ``set`` (``kind``), ``clip``, ``k``,
    ``mode`` and ``checks``, column -> ``[value, met]`` (marked columns only)."""
    records = []
    for row in rows:
        checks = {column: [cell.rsplit(" ", 1)[0], cell.endswith(" met")] for column, cell in zip(header[3:], row[3:])
                  if cell.endswith((" met", " NOT"))}
        records.append({"seed": seed, "set": kind, "clip": row[0], "k": row[1], "mode": row[2], "checks": checks})
    return records


def _record_key(record: dict) -> tuple:
    """What identifies a record of `check_records` across runs: seed, set, clip, K and mode."""
    return record["seed"], record["set"], record["clip"], record["k"], record["mode"]


def tune_summary(records: list[dict], title: str) -> None:
    """Print, by K and mode over all seeds, the floor (panel and hold-out), the panel's goals and the sum of
    the quality goal's margins (oklab dE or rgb dB)."""
    totals: dict[tuple, collections.Counter] = collections.defaultdict(collections.Counter)
    for record in records:
        figures = totals[record["k"], record["mode"]]
        for column, (value, met) in record["checks"].items():
            kind = "floor" if column.startswith("floor") else "goals"
            if kind == "floor" or record["set"] == "panel":
                figures[kind] += 1
                figures[f"{kind} met"] += met
            if column == GOAL_HEADER[5]:
                figures["margins"] += float(value.split()[0])
    print(title)
    print_table(["K", "mode", "floor met", "goals met", "quality margins summed"],
                [[k, mode, f"{f['floor met']} of {f['floor']}", f"{f['goals met']} of {f['goals']}",
                  f"{f['margins']:+.3f}"] for (k, mode), f in sorted(totals.items())])


def tune_report(records: list[dict], against: list[dict] | None) -> None:
    """The summary of `tune`'s ``records``, the floor's misses, and with ``against`` (records of an earlier
    run, saved with ``--save``) the checks met in one run and not in the other, and its summary over the
    seeds, sizes and clips of this run."""
    tune_summary(records, f"summary over {len({r['seed'] for r in records})} seed(s):")
    misses = [[*_record_key(r), column, value]
              for r in records for column, (value, met) in r["checks"].items()
              if column.startswith("floor") and not met]
    print(f"the floor's misses ({len(misses)}):")
    print_table(["seed", "set", "clip", "K", "mode", "check", "value"], misses)
    if against is None:
        return
    before = {_record_key(r): r["checks"] for r in against}
    changed = []
    for r in records:
        old = before.get(_record_key(r), {})
        for column, (value, met) in r["checks"].items():
            if column in old and old[column][1] != met:
                changed.append([*_record_key(r), column, old[column][0], value, "now met" if met else "now NOT"])
    print(f"met in one run and not in the other ({len(changed)} checks):")
    print_table(["seed", "set", "clip", "K", "mode", "check", "before", "now", ""], changed)
    shared = {_record_key(r) for r in records}
    tune_summary([r for r in against if _record_key(r) in shared],
                 "the earlier run's summary, on the same seeds, sizes and clips:")


def _cached(name: str, compute):
    """``compute()``, kept in `TUNE_CACHE` under ``name`` for later runs."""
    path = TUNE_CACHE / f"{name.replace('/', '_')}.pkl"
    if path.exists():
        return pickle.loads(path.read_bytes())
    value = compute()
    TUNE_CACHE.mkdir(exist_ok=True)
    path.write_bytes(pickle.dumps(value))
    return value


# ------------------------------------------------------------------ stills


def load_stills(quick: bool) -> dict[str, np.ndarray]:
    bundle = sklearn.datasets.load_sample_images()
    images = {name.rsplit("/", 1)[-1].split(".")[0]: image for name, image in zip(bundle.filenames, bundle.images)}
    images.update({name: getattr(skimage.data, name)() for name in SKIMAGE_STILLS})
    return dict(list(images.items())[::3]) if quick else images


def stills_table(images: dict[str, np.ndarray], metrics) -> dict[tuple[int, str], dict]:
    first = next(iter(images.values()))
    for fn in STILLS.values():  # warm-up
        fn(np.ascontiguousarray(first[:64, :64]), 4)
    results = {}
    for k in STILLS_K:
        for name, fn in STILLS.items():
            scores = []
            for image in images.values():
                start = time.perf_counter()
                out = fn(image, k)
                ms = (time.perf_counter() - start) * 1000
                scores.append((metrics.psnr(image, out), metrics.mean_delta_e2000(image, out), ms))
            results[k, name] = dict(zip(("psnr", "de2000", "ms"), np.mean(scores, axis=0)))
    print(f"stills: {', '.join(images)} (mean over {len(images)} images; CIEDE2000 on <= "
          f"{metrics.DE_MAX_PIXELS} px each); KMeans with n_init=1 to keep it affordable")
    print_table(
        ["K", "method", "PSNR dB", "dE2000", "ms/image", "KMeans ms / ms"],
        [[k, name, r["psnr"], r["de2000"], r["ms"], results[k, "KMeans (n_init=1)"]["ms"] / r["ms"]]
         for (k, name), r in results.items()],
    )
    return results


# ------------------------------------------------------------------ targets


def video_targets(targets: Targets, clip: str, r: dict[str, dict]) -> None:
    rgb, oklab, ffmpeg, mbk, two = r["livequant rgb"], r["livequant oklab (default)"], r[FFMPEG], r[MBK], r[TWO_PASS]
    bound = ffmpeg["flicker"] / 4
    targets.check(f"{clip} rgb PSNR >= FFmpeg per-frame", rgb["psnr"] >= ffmpeg["psnr"],
                  f"{rgb['psnr']:.2f} vs {ffmpeg['psnr']:.2f} dB")
    for name, ours in (("rgb", rgb), ("oklab", oklab)):
        targets.check(f"{clip} {name} flicker <= FFmpeg per-frame / 4", ours["flicker"] <= bound,
                      f"{ours['flicker']:.3f} vs {bound:.3f} (FFmpeg {ffmpeg['flicker']:.3f})")
    best = min(mbk["de2000"], ffmpeg["de2000"])
    targets.check(f"{clip} oklab dE <= min(MBK, FFmpeg per-frame)", oklab["de2000"] <= best,
                  f"{oklab['de2000']:.3f} vs {best:.3f} (MBK {mbk['de2000']:.3f}, FFmpeg {ffmpeg['de2000']:.3f})")
    targets.check(f"{clip} goal: rgb PSNR within 0.3 dB of MBK per frame", rgb["psnr"] >= mbk["psnr"] - 0.3,
                  f"{rgb['psnr']:.2f} vs {mbk['psnr']:.2f} dB ({rgb['psnr'] - mbk['psnr']:+.2f})")
    for name, ours in (("rgb", rgb), ("oklab", oklab)):
        targets.check(f"{clip} goal: {name} flicker <= FFmpeg two-pass", ours["flicker"] <= two["flicker"],
                      f"{ours['flicker']:.3f} vs {two['flicker']:.3f}")


def stills_targets(targets: Targets, r: dict) -> None:
    for k in STILLS_K:
        rgb, oklab = r[k, "livequant rgb"], r[k, "livequant oklab"]
        km, iq = r[k, "KMeans (n_init=1)"], r[k, "libimagequant"]
        targets.check(f"stills K={k} rgb PSNR within 0.2 dB of KMeans", rgb["psnr"] >= km["psnr"] - 0.2,
                      f"{rgb['psnr']:.2f} vs {km['psnr']:.2f} dB ({rgb['psnr'] - km['psnr']:+.2f})")
        targets.check(f"stills K={k} rgb PSNR ahead of libimagequant", rgb["psnr"] > iq["psnr"],
                      f"{rgb['psnr']:.2f} vs {iq['psnr']:.2f} dB")
        targets.check(f"stills K={k} rgb >= 20x faster than KMeans", km["ms"] >= 20 * rgb["ms"],
                      f"{km['ms'] / rgb['ms']:.1f}x ({rgb['ms']:.0f} vs {km['ms']:.0f} ms)")
        targets.check(f"stills K={k} oklab dE no worse than KMeans", oklab["de2000"] <= km["de2000"],
                      f"{oklab['de2000']:.3f} vs {km['de2000']:.3f}")


def main() -> None:
    args = parse_args(__doc__.splitlines()[0], {"panel": "issue 11's panel: every clip, K in {16, 64, 256}, "
                                                         "the goals marked (instead of the default run)",
                                                "holdout": "issue 11's floor on clips nothing was tuned on",
                                                "dither": "error diffusion on video: the hold against each frame "
                                                          "afresh and FFmpeg",
                                                "spaces": "why oklab flickers more than rgb where it does: "
                                                          "flicker split by palette landings and by lightness",
                                                "tune": "issue 11's checks fast, for trying a change: goals at K=16 "
                                                        "and 64, the hold-out's floor at 16, peers cached"},
                      {"ks": {"help": "--tune: palette sizes of goals and hold-out, e.g. 8,16,32 (default: goals "
                                      "at 16,64, the hold-out at 16)"},
                       "seeds": {"help": "--tune: Quantizer seeds, e.g. 0,1,2 (default: its default seed)"},
                       "options": {"default": "{}", "help": "--tune: Quantizer options as JSON, e.g. "
                                   "'{\"sample_size\": 16384, \"rgb\": {\"stability\": 12}, \"max_k\": 32}' "
                                   "(\"oklab\" / \"rgb\": one mode's; \"max_k\": only up to that K)"},
                       "save": {"help": "--tune: write the checks to this JSON file"},
                       "against": {"help": "--tune: compare with the checks of an earlier run saved with --save"}})
    tuning = (args.ks, args.seeds, args.options != "{}", args.save, args.against)
    if any(tuning) and not args.tune:
        raise SystemExit("--ks, --seeds, --options, --save and --against apply to --tune; add --tune")
    try:
        options = json.loads(args.options)
    except json.JSONDecodeError as e:
        raise SystemExit(f"--options is not JSON ({e}); give it as '{{\"stability\": 12}}'") from None
    try:  # before the run, not after it
        against = json.loads(Path(args.against).read_text()) if args.against else None
    except (OSError, json.JSONDecodeError) as e:
        raise SystemExit(f"--against {args.against}: cannot read it ({e}); give a file --save wrote") from None
    if args.save and not Path(args.save).resolve().parent.is_dir():
        raise SystemExit(f"--save {args.save}: no such folder; give a path in an existing folder")
    print_machine()
    metrics = load_metrics()
    if args.tune:
        seeds = [int(seed) for seed in args.seeds.split(",")] if args.seeds else [None]
        ks = [int(k) for k in args.ks.split(",")] if args.ks else TUNE_KS
        holdout_ks = ks if args.ks else TUNE_HOLDOUT_KS
        print(f"--tune at K={', '.join(map(str, ks))} (hold-out {', '.join(map(str, holdout_ks))}), seeds "
              f"{args.seeds or 'default'}, options {options}")
        records = tune(args.quick, metrics, ks, holdout_ks, seeds, options)
        tune_report(records, against)
        if args.save:
            Path(args.save).write_text(json.dumps(records, indent=1))
        print_load("at end")
        return
    if args.panel or args.holdout or args.dither or args.spaces:
        run = panel if args.panel else holdout if args.holdout else dither_panel if args.dither else space_flicker
        run(args.quick, metrics)
        print_load("at end")
        return
    targets = Targets()
    clips = {name: Clip.read(name, limit, metrics) for name, limit in (QUICK_CLIPS if args.quick else CLIPS).items()}
    for name, clip in clips.items():
        video_targets(targets, name, video_table(clip))
    if not args.quick:
        check_minibatch(clips["cockatoo.mp4"])
    sweep(clips["cockatoo.mp4"], args.quick)
    stills_targets(targets, stills_table(load_stills(args.quick), metrics))
    targets.print()
    print_load("at end")


if __name__ == "__main__":
    main()
