"""livequant: live webcam and video files to limited-palette video, in real time.

>>> import livequant
>>> q = livequant.Quantizer(16, dither="bayer")
>>> out = q.quantize(frame)                      # doctest: +SKIP
>>> still = livequant.quantize(image, 64)        # doctest: +SKIP
"""

from livequant import presets
from livequant.colorspace import COLOR_SPACES
from livequant.dither import DITHERS
from livequant.errors import LivequantError, SinkError, SourceError
from livequant.frames import QuantizedFrame
from livequant.palette import Palette
from livequant.quantizer import Quantizer, quantize

__version__ = "0.1.0"

__all__ = [
    "COLOR_SPACES",
    "DITHERS",
    "LivequantError",
    "Palette",
    "QuantizedFrame",
    "Quantizer",
    "SinkError",
    "SourceError",
    "__version__",
    "presets",
    "quantize",
]
