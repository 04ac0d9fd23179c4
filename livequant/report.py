"""Quality figures of a quantized stream, and the palette-timeline picture.

`QualityReport` is a sink: give it to `livequant.pipeline.run` beside the
output (it compares each `~livequant.frames.QuantizedFrame` with its
``source``), or call ``write(qframe)`` yourself, or pass it as ``on_frame``.
``save(path)`` writes the figures as ``.json`` or draws them as ``.png``,
``.svg`` or ``.pdf`` (which needs matplotlib: ``pip install 'livequant[report]'``).

The figures follow ../shared/quality/metrics.py: per-frame PSNR, mean
CIEDE2000 (sRGB -> CIELAB D65, as scikit-image's ``rgb2lab``), and static-region
flicker (mean output change over pixels whose input changed by less than 2 in
every channel, pooled over all frame pairs). To stay cheap they are measured on
a fixed sample of pixel positions, drawn once with a fixed seed and the same for
every frame: at most ``pixels`` positions (default 8192) for PSNR and flicker,
``de_pixels`` of those (default 1024) for CIEDE2000. Every frame is measured.
``seconds`` is the CPU time the measuring took (in the thread that ran it). A frame with no
more pixels than that is measured whole, so its figures equal the full ones.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import numpy as np

from livequant.colorspace import largest_channel
from livequant.errors import LivequantError, counted
from livequant.files import move_into_place, partial_file
from livequant.frames import QuantizedFrame

__all__ = ["QualityReport", "ciede2000", "srgb_to_lab", "still_change"]

#: An input pixel is static when every channel changed by less than this (metrics.STATIC_THRESHOLD).
STATIC_THRESHOLD = 2
_PICTURES = (".png", ".svg", ".pdf")  # matplotlib draws each, by the suffix
_EXTRA = "pip install 'livequant[report]'"

_XYZ_FROM_RGB = np.array([[0.412453, 0.357580, 0.180423],
                          [0.212671, 0.715160, 0.072169],
                          [0.019334, 0.119193, 0.950227]])
_D65 = np.array([0.95047, 1.0, 1.08883])


def srgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """CIELAB (D65, 2 degree observer) of ``(..., 3) uint8`` sRGB colours, as scikit-image's ``rgb2lab``.

    Returns
    -------
    (..., 3) float64 ndarray
    """
    c = np.asarray(rgb, np.float32).astype(np.float64) / 255.0
    linear = np.where(c > 0.04045, ((c + 0.055) / 1.055) ** 2.4, c / 12.92)
    xyz = linear @ _XYZ_FROM_RGB.T / _D65
    f = np.where(xyz > 0.008856, np.cbrt(xyz), 7.787 * xyz + 16.0 / 116.0)
    return np.stack([116.0 * f[..., 1] - 16.0, 500.0 * (f[..., 0] - f[..., 1]), 200.0 * (f[..., 1] - f[..., 2])], -1)


def ciede2000(lab1: np.ndarray, lab2: np.ndarray) -> np.ndarray:
    """CIEDE2000 colour difference of ``(..., 3)`` CIELAB values (kL = kC = kH = 1; Sharma et al. 2005)."""
    L1, a1, b1 = np.moveaxis(np.asarray(lab1, np.float64), -1, 0)
    L2, a2, b2 = np.moveaxis(np.asarray(lab2, np.float64), -1, 0)
    c_mean = (np.hypot(a1, b1) + np.hypot(a2, b2)) / 2
    g = 0.5 * (1 - np.sqrt(c_mean**7 / (c_mean**7 + 25.0**7)))
    a1, a2 = a1 * (1 + g), a2 * (1 + g)
    c1, c2 = np.hypot(a1, b1), np.hypot(a2, b2)
    h1, h2 = np.arctan2(b1, a1) % (2 * np.pi), np.arctan2(b2, a2) % (2 * np.pi)
    dh = h2 - h1
    dh = np.where(dh > np.pi, dh - 2 * np.pi, np.where(dh < -np.pi, dh + 2 * np.pi, dh))
    dh = np.where(c1 * c2 == 0, 0.0, dh)
    dL, dC, dH = L2 - L1, c2 - c1, 2 * np.sqrt(c1 * c2) * np.sin(dh / 2)
    L_mean, C_mean = (L1 + L2) / 2, (c1 + c2) / 2
    h_sum = h1 + h2
    h_mean = np.where(np.abs(h1 - h2) > np.pi, (h_sum + 2 * np.pi) / 2, h_sum / 2)
    h_mean = np.where(h_mean >= 2 * np.pi, h_mean - 2 * np.pi, h_mean)
    h_mean = np.where(c1 * c2 == 0, h_sum, h_mean)
    t = (1 - 0.17 * np.cos(h_mean - np.pi / 6) + 0.24 * np.cos(2 * h_mean) + 0.32 * np.cos(3 * h_mean + np.pi / 30)
         - 0.20 * np.cos(4 * h_mean - 63 * np.pi / 180))
    s_L = 1 + 0.015 * (L_mean - 50) ** 2 / np.sqrt(20 + (L_mean - 50) ** 2)
    s_C, s_H = 1 + 0.045 * C_mean, 1 + 0.015 * C_mean * t
    rotation = np.deg2rad(60) * np.exp(-(((np.rad2deg(h_mean) - 275) / 25) ** 2))
    r_T = -2 * np.sqrt(C_mean**7 / (C_mean**7 + 25.0**7)) * np.sin(rotation)
    return np.sqrt((dL / s_L) ** 2 + (dC / s_C) ** 2 + (dH / s_H) ** 2 + r_T * (dC / s_C) * (dH / s_H))


def still_change(source_before: np.ndarray, source: np.ndarray, output_before: np.ndarray,
                 output: np.ndarray) -> tuple[int, int]:
    """The output's change where the source stood still, between two frames (or samples of them).

    Parameters
    ----------
    source_before, source, output_before, output : (..., 3) uint8 ndarray
        The same pixels of two consecutive frames, before and after quantizing.

    Returns
    -------
    (int, int)
        The sum over channels of ``|output - output_before|`` over the pixels whose source changed by
        less than `STATIC_THRESHOLD` in every channel, and how many such pixels there are (their mean
        change per channel, ``change / (3 * pixels)``, is the static-region flicker).
    """
    still = largest_channel(np.abs(source.astype(np.int16) - source_before)) < STATIC_THRESHOLD
    change = np.abs(output[still].astype(np.int16) - output_before[still]).sum(dtype=np.int64)
    return int(change), int(np.count_nonzero(still))


def _finite(value: float) -> float | None:
    """``value`` for JSON: None for nan and inf."""
    return value if math.isfinite(value) else None


def check_path(path) -> Path:
    """Raise `ValueError` unless ``path`` is a report this machine can write (``.json``, or a picture,
    ``.png`` ``.svg`` ``.pdf``, with matplotlib installed); return it as a `Path`."""
    path = Path(path)
    if path.suffix.lower() != ".json" and path.suffix.lower() not in _PICTURES:
        raise ValueError(f"a report is .json (the figures) or .png .svg .pdf (the picture), got '{path}'")
    if path.suffix.lower() in _PICTURES:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            raise ValueError(f"drawing the report '{path}' needs matplotlib: {_EXTRA}, "
                             "or write a .json report") from None
    return path


class QualityReport:
    """Quality of quantized frames against their sources, frame by frame, and the palette at each change.

    Parameters
    ----------
    pixels : int
        Pixel positions sampled per frame for PSNR and flicker.
    de_pixels : int
        How many of those are used for CIEDE2000 (the costly one).
    seed : int
        Seed of the sample positions.
    """

    def __init__(self, pixels: int = 8192, de_pixels: int = 1024, seed: int = 12345):
        if not (pixels >= 1 and 1 <= de_pixels <= pixels):
            raise ValueError(f"need pixels >= de_pixels >= 1, got pixels={pixels}, de_pixels={de_pixels}")
        self.pixels, self.de_pixels, self.seed = pixels, de_pixels, seed
        self.frames: list[dict] = []
        self.palettes: list[dict] = []
        self.seconds = 0.0  # CPU time spent measuring
        self._sample: np.ndarray | None = None  # flat positions measured (None: all)
        self._de_sample: np.ndarray | None = None  # positions among those used for CIEDE2000 (None: all)
        self._shape = None
        self._previous = None  # (source sample, output sample, palette colours)
        self._palette_lab = None  # CIELAB of the palette colours
        self._flicker_sum = 0.0
        self._static = 0
        self._pair_pixels = 0

    def _draw(self, shape) -> None:
        """Draw the positions measured in frames of ``shape``, once: flat pixel positions (None: all), and
        the positions among those used for CIEDE2000 (None: all)."""
        if shape == self._shape:
            return
        if self._shape is not None:
            raise ValueError(f"frame size changed from {self._shape} to {shape} within one report")
        self._shape = shape
        rng = np.random.default_rng(self.seed)
        n = shape[0] * shape[1]
        if n > self.pixels:
            self._sample = np.sort(rng.choice(n, self.pixels, replace=False))
        m = min(n, self.pixels)
        if m > self.de_pixels:
            self._de_sample = np.sort(rng.choice(m, self.de_pixels, replace=False))

    def write(self, qframe: QuantizedFrame) -> None:
        """Measure one frame against ``qframe.source`` (which must be set and the same size)."""
        start = time.thread_time()
        if qframe.source is None or qframe.source.shape != qframe.rgb.shape:
            raise ValueError("the report needs each frame's source at the size it was quantized")
        self._draw(qframe.rgb.shape[:2])
        src, out, indices = qframe.source.reshape(-1, 3), qframe.rgb.reshape(-1, 3), qframe.indices.reshape(-1)
        if self._sample is not None:
            src, out, indices = src[self._sample], out[self._sample], indices[self._sample]
        error = src.astype(np.int32) - out
        mse = float(np.square(error).sum()) / error.size
        psnr = math.inf if mse == 0 else 10 * math.log10(255.0**2 / mse)
        colors = np.asarray(qframe.palette.colors, np.uint8)
        if self._previous is None or not np.array_equal(colors, self._previous[2]):
            self._palette_lab = srgb_to_lab(colors)
        src_de, indices_de = (src, indices) if self._de_sample is None else \
            (src[self._de_sample], indices[self._de_sample])
        de = float(np.mean(ciede2000(srgb_to_lab(src_de), self._palette_lab[indices_de])))
        flicker, static = None, 0
        event = qframe.event
        if self._previous is None:
            event = "fresh"
        else:
            src0, out0, colors0 = self._previous
            change, static = still_change(src0, src, out0, out)
            if static:
                flicker = change / (3 * static)
                self._flicker_sum += change
                self._static += static
            self._pair_pixels += len(src)
            if not event and not np.array_equal(colors, colors0):
                event = "refit"  # a frame made without `event`: a palette change is taken as a refit
        if event:
            self.palettes.append({"frame": len(self.frames), "time": qframe.time, "event": event,
                                  "colors": [f"#{r:02x}{g:02x}{b:02x}" for r, g, b in colors.tolist()]})
        self.frames.append({"frame": len(self.frames), "time": qframe.time, "psnr": psnr, "de2000": de,
                            "flicker": flicker, "static": static, "event": event, "palette": len(self.palettes) - 1})
        self._previous = (src, out, colors)
        self.seconds += time.thread_time() - start

    def __call__(self, qframe: QuantizedFrame, stats=None) -> None:
        """``on_frame`` for `livequant.pipeline.run` (runs in the frame loop; as a sink it runs beside it)."""
        self.write(qframe)

    def totals(self) -> dict:
        """The figures over all frames: means of per-frame PSNR and CIEDE2000, pooled flicker, events."""
        psnrs = [f["psnr"] for f in self.frames]
        finite = [p for p in psnrs if math.isfinite(p)]
        events = [f["event"] for f in self.frames]
        return {
            "frames": len(self.frames),
            "psnr": float(np.mean(psnrs)) if psnrs else math.nan,
            "psnr_finite": float(np.mean(finite)) if finite else math.nan,
            "exact_frames": len(psnrs) - len(finite),
            "de2000": float(np.mean([f["de2000"] for f in self.frames])) if self.frames else math.nan,
            "flicker": self._flicker_sum / (3 * self._static) if self._static else math.nan,
            "static_share": self._static / self._pair_pixels if self._pair_pixels else math.nan,
            "refits": events.count("refit"),
            "scene_cuts": events[1:].count("fresh"),
            "palette_changes": len(self.palettes) - 1 if self.palettes else 0,
            "report_cpu_seconds": self.seconds,
        }

    def summary(self) -> str:
        """One line: frames, PSNR, CIEDE2000, flicker, refits and scene cuts."""
        t = self.totals()
        psnr = "exact" if t["frames"] and t["exact_frames"] == t["frames"] else f"{t['psnr_finite']:.2f} dB"
        flicker = "" if math.isnan(t["flicker"]) else f", flicker {t['flicker']:.3f} on static pixels (0-255)"
        return (f"{counted(t['frames'], 'frame')}: PSNR {psnr}, CIEDE2000 {t['de2000']:.2f}{flicker}, "
                f"{counted(t['refits'], 'refit')}, {counted(t['scene_cuts'], 'scene cut')}")

    def as_dict(self) -> dict:
        """Everything `save` writes as JSON (nan and inf become None)."""
        h, w = self._shape or (0, 0)
        measured = min(self.pixels, h * w)
        sampling = {"frame_pixels": h * w, "pixels": measured, "de_pixels": min(self.de_pixels, measured),
                    "how": "the same pixel positions in every frame, drawn once with a fixed seed"}
        totals = {k: _finite(v) if isinstance(v, float) else v for k, v in self.totals().items()}
        frames = [{k: _finite(v) if isinstance(v, float) else v for k, v in f.items()} for f in self.frames]
        return {"summary": self.summary(), "totals": totals, "sampling": sampling, "palettes": self.palettes,
                "frames": frames}

    def save(self, path, *, overwrite: bool = True) -> Path:
        """Write the report: ``.json`` the figures, ``.png`` ``.svg`` ``.pdf`` the palette timeline with PSNR and
        flicker below.

        The file is written to a new partial file beside ``path`` first and moved into place when complete;
        without ``overwrite``, a file at ``path`` stays and `FileExistsError` is raised.
        """
        path = check_path(path)
        if not self.frames:
            raise ValueError("the report has no frames")
        partial = partial_file(path)
        try:
            if path.suffix.lower() == ".json":
                partial.write_text(json.dumps(self.as_dict(), indent=1) + "\n")
            else:
                self.figure().savefig(partial, dpi=100)
            move_into_place(partial, path, replace=overwrite)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        return path

    def timeline(self) -> np.ndarray:
        """The palette timeline, ``(slots, frames, 3) uint8``: column t holds frame t's palette, slot by slot
        (white below a palette with fewer slots)."""
        palettes = [np.array([[int(c[i : i + 2], 16) for i in (1, 3, 5)] for c in p["colors"]], np.uint8)
                    for p in self.palettes]
        slots = max(len(p) for p in palettes)
        stack = np.full((len(palettes), slots, 3), 255, np.uint8)
        for i, p in enumerate(palettes):
            stack[i, : len(p)] = p
        return stack[[f["palette"] for f in self.frames]].transpose(1, 0, 2)

    def figure(self):
        """A matplotlib `~matplotlib.figure.Figure`: the palette timeline, PSNR and flicker per frame."""
        try:
            from matplotlib.figure import Figure
        except ImportError:
            raise LivequantError(f"drawing a report needs matplotlib: {_EXTRA}") from None
        image = self.timeline()
        n = len(self.frames)
        figure = Figure(figsize=(10, 6.5), layout="constrained")
        top, middle, bottom = figure.subplots(3, 1, sharex=True, height_ratios=[2.2, 1, 1])
        top.imshow(image, aspect="auto", interpolation="nearest", extent=(-0.5, n - 0.5, image.shape[0] - 0.5, -0.5))
        top.set_ylabel("palette slot")
        top.set_title(self.summary(), fontsize=9)
        frames = np.arange(n)
        psnr = np.array([f["psnr"] for f in self.frames], float)
        middle.plot(frames, np.where(np.isfinite(psnr), psnr, np.nan), color="tab:blue", linewidth=1)
        middle.set_ylabel("PSNR dB")
        flicker = np.array([np.nan if f["flicker"] is None else f["flicker"] for f in self.frames], float)
        bottom.plot(frames, flicker, color="tab:red", linewidth=1)
        bottom.set_ylabel("flicker (0-255)")
        bottom.set_xlabel("frame")
        for p in self.palettes[1:]:
            for axes in (middle, bottom):
                axes.axvline(p["frame"], color="0.6" if p["event"] == "refit" else "black", linewidth=0.6,
                             linestyle=":" if p["event"] == "refit" else "-")
        for axes in (middle, bottom):
            axes.grid(alpha=0.3)
        bottom.set_xlim(-0.5, n - 0.5)
        return figure
