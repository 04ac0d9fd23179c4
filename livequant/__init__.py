"""livequant: live webcam and video files to limited-palette video, in real time.

>>> import livequant
>>> q = livequant.Quantizer(16, dither="bayer")
>>> out = q.quantize(frame)                      # doctest: +SKIP
>>> still = livequant.quantize(image, 64)        # doctest: +SKIP
>>> with livequant.VideoFile("in.mp4") as src, livequant.Quantizer(16, background=True) as q, \
...         livequant.GifWriter("out.gif") as gif:  # doctest: +SKIP
...     stats = livequant.run(src, q, [gif])
"""

# The sources first: they import cv2 before av (PyAV#978: the other order hangs OpenCV windows).
from livequant.sources import Images, TestPattern, VideoFile, Webcam, list_cameras, open_source  # isort: skip
from livequant import presets
from livequant.colorspace import COLOR_SPACES
from livequant.dither import DITHERS
from livequant.errors import LivequantError, SinkError, SourceError
from livequant.frames import QuantizedFrame
from livequant.palette import Palette
from livequant.pipeline import Stats, run
from livequant.quantizer import Quantizer, quantize
from livequant.sinks import GifWriter, ImageWriter, Preview, VideoWriter

__version__ = "0.1.0"

__all__ = [
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
