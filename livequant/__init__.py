"""livequant: live webcam and video files to limited-palette video, in real time.

>>> import livequant
>>> q = livequant.Quantizer(16, dither="bayer")
>>> out = q.quantize(frame)                      # doctest: +SKIP
>>> still = livequant.quantize(image, 64)        # doctest: +SKIP
>>> with livequant.VideoFile("in.mp4") as src, livequant.Quantizer(16, background=True) as q, \
...         livequant.GifWriter("out.gif") as gif:  # doctest: +SKIP
...     stats = livequant.run(src, q, [gif])
"""

import importlib

# Names are loaded on first use (PEP 562): `python -m livequant` then starts
# with a light import, so a Ctrl-C during start-up ends quietly (see __main__).
_HOMES = {
    "AnimationWriter": "livequant.sinks",
    "COLOR_SPACES": "livequant.colorspace",
    "DITHERS": "livequant.dither",
    "GifWriter": "livequant.sinks",
    "ImageWriter": "livequant.sinks",
    "Images": "livequant.sources",
    "LivequantError": "livequant.errors",
    "Palette": "livequant.palette",
    "Preview": "livequant.sinks",
    "QuantizedFrame": "livequant.frames",
    "Quantizer": "livequant.quantizer",
    "SinkError": "livequant.errors",
    "SourceError": "livequant.errors",
    "Stats": "livequant.pipeline",
    "TestPattern": "livequant.sources",
    "VideoFile": "livequant.sources",
    "VideoWriter": "livequant.sinks",
    "Webcam": "livequant.sources",
    "list_cameras": "livequant.sources",
    "open_source": "livequant.sources",
    "quantize": "livequant.quantizer",
    "run": "livequant.pipeline",
}


def __getattr__(name: str):
    if name == "presets":
        return importlib.import_module("livequant.presets")
    if name not in _HOMES:
        raise AttributeError(f"module 'livequant' has no attribute {name!r}")
    # Only the home module is imported: `livequant.Palette` loads neither OpenCV nor FFmpeg. The modules
    # that use both import cv2 before av themselves (PyAV#978: the other order hangs OpenCV windows).
    return getattr(importlib.import_module(_HOMES[name]), name)


def __dir__() -> list[str]:
    return sorted(__all__)


__version__ = "0.1.0"

__all__ = [
    "AnimationWriter",
    "COLOR_SPACES",
    "DITHERS",
    "GifWriter",
    "ImageWriter",
    "Images",
    "LivequantError",
    "Palette",
    "Preview",
    "QuantizedFrame",
    "Quantizer",
    "SinkError",
    "SourceError",
    "Stats",
    "TestPattern",
    "VideoFile",
    "VideoWriter",
    "Webcam",
    "__version__",
    "list_cameras",
    "open_source",
    "presets",
    "quantize",
    "run",
]
