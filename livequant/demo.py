"""The demo: a colourful scene made in code, quantized a few ways, and a before/after contact sheet.

`Scene` is the sample clip (computed, no files): a sunset sky, a glowing sun,
parallax hills, a rotating colour wheel and a shaded bouncing ball. `run_demo`
quantizes it with each of `SETTINGS` to MP4 and GIF and writes
``contact-sheet.png``; that is what ``livequant demo`` runs.
"""

from __future__ import annotations

import functools
import math
import os
from pathlib import Path

import cv2
import numpy as np

from livequant.errors import SinkError, write_failed
from livequant.pipeline import run
from livequant.quantizer import Quantizer
from livequant.sinks import GifWriter, VideoWriter

__all__ = ["SETTINGS", "Scene", "run_demo"]

#: The file that marks a folder the demo has written to: it replaces its own files there.
FOLDER_MARK = ".livequant-demo"
#: ``(file stem, label, Quantizer options)`` for each version the demo makes.
SETTINGS = (
    ("adaptive16", "adaptive K=16", {"n_colors": 16}),
    ("gameboy-bayer", "gameboy + bayer", {"palette": "gameboy", "dither": "bayer"}),
    ("pico8-floyd-steinberg", "pico8 + floyd-steinberg", {"palette": "pico8", "dither": "floyd-steinberg"}),
    ("adaptive4-bluenoise", "adaptive K=4 + bluenoise", {"n_colors": 4, "dither": "bluenoise"}),
)


class Scene:
    """An animated, colourful scene computed with numpy: the demo's sample clip.

    A source like those of `livequant.sources`: iterate for ``(frame, time)``.

    Parameters
    ----------
    size : (int, int)
        Width and height in pixels.
    fps : float
        Frames per second of the clip.
    frames : int
        Length of the clip in frames.
    """

    live = False
    undecodable = 0
    damaged = 0
    path = "scene"

    def __init__(self, size=(480, 270), fps: float = 15.0, frames: int = 45):
        w, h = size
        if w < 32 or h < 32:
            raise ValueError(f"size must be at least (32, 32), got {size}")
        if frames < 1:
            raise ValueError(f"frames must be >= 1, got {frames}")
        self.size = (int(w), int(h))
        self.fps = float(fps)
        self.frame_count = int(frames)
        y, x = np.mgrid[:h, :w].astype(np.float32)
        self._x, self._y = x / w, y / h  # 0..1

    def __enter__(self):
        return self

    def __exit__(self, *exc_info) -> None:
        pass

    def __iter__(self):
        for i in range(self.frame_count):
            yield self.frame(i / self.fps), i / self.fps

    def frame(self, t: float) -> np.ndarray:
        """The picture at ``t`` seconds, ``(H, W, 3) uint8`` RGB."""
        x, y = self._x, self._y
        h, w = x.shape
        # Sky: deep blue at the top through violet to orange at the horizon, drifting slowly.
        sky_top = np.array([20, 30, 110], np.float32)
        sky_mid = np.array([150, 60, 160], np.float32)
        sky_low = np.array([255, 150, 60], np.float32)
        k = np.clip(y / 0.65 + 0.05 * math.sin(t), 0, 1)[..., None]
        image = np.where(k < 0.5, sky_top + (sky_mid - sky_top) * (2 * k), sky_mid + (sky_low - sky_mid) * (2 * k - 1))
        # Sun: a warm glow and a disc sinking slowly.
        sx, sy = 0.3, 0.42 + 0.04 * t
        r = np.hypot((x - sx) * w / h, y - sy)
        image += np.array([255, 200, 90], np.float32) * (0.6 * np.exp(-((r / 0.22) ** 2)))[..., None]
        image = np.where((r < 0.09)[..., None], np.array([255, 240, 170], np.float32), image)
        # Hills: three layers, nearer ones darker, greener and scrolling faster.
        for layer, (height, color) in enumerate([(0.62, (70, 90, 120)), (0.72, (40, 130, 70)), (0.84, (20, 80, 40))]):
            speed = 0.05 * (layer + 1) ** 2
            ridge = height + 0.05 * np.sin(2 * np.pi * (x[0] * (1.5 + layer) + speed * t) + layer)
            shade = np.clip(1.0 + 0.6 * (ridge[None, :] - y), 0.7, 1.3)[..., None]
            image = np.where((y > ridge[None, :])[..., None], np.array(color, np.float32) * shade, image)
        self._wheel(image, t)
        self._ball(image, t)
        frame = np.ascontiguousarray(np.clip(image, 0, 255).astype(np.uint8))
        cv2.putText(frame, "livequant", (int(0.04 * w), int(0.12 * h)), cv2.FONT_HERSHEY_DUPLEX, h / 300,
                    (255, 255, 255), max(1, h // 150), cv2.LINE_AA)
        return frame

    def _wheel(self, image: np.ndarray, t: float) -> None:
        """A hue wheel (saturation grows outwards) turning in the top right corner."""
        h, w = image.shape[:2]
        cx, cy, radius = 0.8 * w, 0.25 * h, 0.18 * h
        dx, dy = self._x * w - cx, self._y * h - cy
        r = np.hypot(dx, dy) / radius
        inside = r < 1
        hue = (np.degrees(np.arctan2(dy, dx)) + 90 * t) % 360
        hsv = np.stack([hue[inside], r[inside], np.ones_like(hue[inside])], -1)[None]
        image[inside] = cv2.cvtColor(hsv.astype(np.float32), cv2.COLOR_HSV2RGB)[0] * 255

    def _ball(self, image: np.ndarray, t: float) -> None:
        """A shaded ball bouncing across the hills, lit from the sun's side."""
        h, w = image.shape[:2]
        radius = 0.09 * h
        cx = w * (0.15 + 0.7 * (0.5 - 0.5 * math.cos(0.8 * t)))
        cy = h * 0.85 - radius - abs(math.sin(2.2 * t)) * 0.35 * h
        dx, dy = (self._x * w - cx) / radius, (self._y * h - cy) / radius
        rr = dx * dx + dy * dy
        inside = rr < 1
        nz = np.sqrt(np.clip(1 - rr[inside], 0, 1))
        light = np.clip(-0.5 * dx[inside] - 0.5 * dy[inside] + 0.7 * nz, 0, 1)
        base = np.array([230, 40, 90], np.float32)
        image[inside] = base * (0.25 + 0.75 * light[:, None]) + 120 * light[:, None] ** 12


def _label(tile: np.ndarray, text: str) -> np.ndarray:
    """``tile`` with a black caption bar and ``text`` on it (RGB)."""
    bar = np.zeros((22, tile.shape[1], 3), np.uint8)
    cv2.putText(bar, text, (6, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1, cv2.LINE_AA)
    return np.vstack([bar, tile])


def contact_sheet(rows: list[list[tuple[str, np.ndarray]]]) -> np.ndarray:
    """A grid of labelled tiles: one row per frame, one column per version.

    Parameters
    ----------
    rows : list of list of (str, (H, W, 3) uint8 ndarray)
        Label and picture of each tile; all pictures of the same size.

    Returns
    -------
    (H', W', 3) uint8 ndarray
        The sheet, RGB, with a 4-pixel gray gap between tiles.
    """
    gap = 4
    lines = []
    for row in rows:
        tiles = [_label(image, text) for text, image in row]
        spacer = np.full((tiles[0].shape[0], gap, 3), 64, np.uint8)
        lines.append(np.hstack([part for tile in tiles for part in (tile, spacer)][:-1]))
    spacer = np.full((gap, lines[0].shape[1], 3), 64, np.uint8)
    return np.vstack([part for line in lines for part in (line, spacer)][:-1])


def _keep(shown: dict, label: str, qframe, stats) -> None:
    """``run``'s ``on_frame``: add the frames picked for the contact sheet to ``shown``."""
    if stats.frames - 1 in shown:
        shown[stats.frames - 1].append((label, qframe.rgb))


def run_demo(out_dir, frames: int = 45, *, size=(480, 270), fps: float = 15.0, report=print,
             overwrite: bool = False) -> list[Path]:
    """Quantize the `Scene` with each of `SETTINGS` to MP4 and GIF and write a contact sheet.

    The demo's files in ``out_dir`` are replaced, once it has marked the folder its own (`FOLDER_MARK`); a file
    of the same name there before is not (`SinkError`) unless ``overwrite``. Nothing else there is touched.

    Parameters
    ----------
    out_dir : str or os.PathLike
        Folder for the outputs; created if missing.
    frames : int
        Length of the clip in frames.
    size : (int, int)
        ``(W, H)`` of the clip.
    fps : float
        Frame rate of the clip.
    report : callable
        Called with a line of text after each file is written.
    overwrite : bool
        Replace files of the demo's names in a folder the demo has not written to.

    Returns
    -------
    list of Path
        The files written, contact sheet last.
    """
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise write_failed("create the folder", out, e) from e
    names = [f"{stem}{suffix}" for stem, _, _ in SETTINGS for suffix in (".mp4", ".gif")] + ["contact-sheet.png"]
    if not (overwrite or (out / FOLDER_MARK).exists()):
        if taken := next((out / name for name in names if os.path.lexists(out / name)), None):
            raise SinkError(f"'{taken}' exists and the demo did not write it; give the demo another folder with -o, "
                            "or use -y to overwrite")
    try:
        (out / FOLDER_MARK).touch()
    except OSError as e:
        raise write_failed("write to the folder", out, e) from e
    scene = Scene(size, fps, frames)
    picks = sorted({0, frames // 2, frames - 1})
    shown = {i: [("original", scene.frame(i / fps))] for i in picks}
    written = []
    for stem, label, options in SETTINGS:
        paths = [out / f"{stem}.mp4", out / f"{stem}.gif"]
        with (Quantizer(**options) as quantizer,
              VideoWriter(paths[0], fps, overwrite=True) as video, GifWriter(paths[1], overwrite=True) as gif):
            run(scene, quantizer, [video, gif], on_frame=functools.partial(_keep, shown, label))
        written += paths
        report(f"wrote {paths[0]} and {paths[1]}  ({label})")
    sheet = out / "contact-sheet.png"
    if not cv2.imwrite(str(sheet), cv2.cvtColor(contact_sheet([shown[i] for i in picks]), cv2.COLOR_RGB2BGR)):
        raise SinkError(f"cannot write '{sheet}': OpenCV failed to write the PNG; check the disk")
    written.append(sheet)
    report(f"wrote {sheet}  (before/after: original and each version at frames {', '.join(map(str, picks))})")
    return written
