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

Run: python benchmarks/bench_quality.py [--quick]
"""

from __future__ import annotations

import time
from functools import partial

import imagequant
import numpy as np
import skimage.data
import sklearn.datasets
from _common import (
    Image,
    PaletteGenUse,
    PaletteUse,
    Targets,
    bgra_frame,
    data_file,
    ffmpeg_global_palette,
    load_metrics,
    parse_args,
    print_load,
    print_machine,
    print_table,
    quantizer_default,
    read_frames,
)
from sklearn.cluster import KMeans, MiniBatchKMeans
from threadpoolctl import threadpool_limits

import livequant
from livequant import Quantizer

K = 64
DE_PIXELS = 50_000
#: Clip -> frames used (None: all), full and quick runs.
CLIPS = {"cockatoo.mp4": 120, "realshort.mp4": None, "newtonscradle.gif": 60}
QUICK_CLIPS = {"cockatoo.mp4": 24, "realshort.mp4": None, "newtonscradle.gif": 60}
LIVEQUANT = ("livequant oklab (default)", "livequant rgb")
MBK, FFMPEG, TWO_PASS = "MiniBatchKMeans per frame", "FFmpeg palettegen+paletteuse per frame", "FFmpeg two-pass"
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


#: Streaming video methods: name -> factory(size) -> function(frame) -> frame, one per clip.
VIDEO = {
    "livequant oklab (default)": lambda size: Quantizer(K).quantize,
    "livequant rgb": lambda size: Quantizer(K, color_space="rgb").quantize,
    MBK: lambda size: partial(minibatch_kmeans, k=K),
    FFMPEG: lambda size: PaletteGenUse(size, K),
    "libimagequant per frame": lambda size: partial(libimagequant, k=K),
    "Pillow median cut per frame": lambda size: partial(pillow, k=K, method=Image.Quantize.MEDIANCUT),
    "Pillow fast octree per frame": lambda size: partial(pillow, k=K, method=Image.Quantize.FASTOCTREE),
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

    def __init__(self, name: str, limit: int | None, metrics):
        self.name = name
        self.frames = read_frames(data_file(name), limit)
        self.size = (self.frames[0].shape[1], self.frames[0].shape[0])
        self.labs = [metrics.lab_sample(f, DE_PIXELS) for f in self.frames]
        self.metrics = metrics

    def score(self, quantize, setup_ms: float = 0.0) -> dict[str, float]:
        """Stream the clip through ``quantize``: the metrics summary, plus ``ms``, the mean per frame
        (``setup_ms`` spread over the frames), and ``p50``, the median frame."""
        video = self.metrics.VideoMetrics(de_max_pixels=DE_PIXELS)
        spent = []
        for frame, lab in zip(self.frames, self.labs):
            start = time.perf_counter()
            out = quantize(frame)
            spent.append((time.perf_counter() - start) * 1000)
            video.update(frame, out, ref_lab=lab)
        return {**video.summary(), "ms": (setup_ms + sum(spent)) / len(spent), "p50": float(np.median(spent))}

    def two_pass(self) -> dict[str, float]:
        """FFmpeg palettegen over the whole clip, then paletteuse on each frame (not streamable)."""
        start = time.perf_counter()
        colors = ffmpeg_global_palette(self.frames, K)
        use = PaletteUse(self.size, colors, "none")
        return self.score(lambda frame: use.rgb(use(bgra_frame(frame))), (time.perf_counter() - start) * 1000)


def video_table(clip: Clip) -> dict[str, dict]:
    for factory in VIDEO.values():  # warm-up: compiled kernels, imports, first-call costs
        factory(clip.size)(clip.frames[0])
    results = {name: clip.score(factory(clip.size)) for name, factory in VIDEO.items()}
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
    args = parse_args(__doc__.splitlines()[0])
    print_machine()
    metrics = load_metrics()
    targets = Targets()
    clips = {name: Clip(name, limit, metrics) for name, limit in (QUICK_CLIPS if args.quick else CLIPS).items()}
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
