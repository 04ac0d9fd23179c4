"""Where quantized frames go: video files, GIFs, animated WebP and APNG, images and a preview window.

Every sink is a context manager with ``write(qframe)`` taking a
`~livequant.frames.QuantizedFrame`. File sinks write to a new, uniquely named
hidden file beside the target (``.name.XXXXXXXX.partial.mp4``, see
`livequant.files`) and rename it when complete; an output that is one of the
inputs (the same file by device and inode, however it is spelled) is refused
before anything is written. Leaving
the ``with`` block normally or by ``KeyboardInterrupt`` finishes the file (it
plays up to the last frame written; cut short, it goes beside a file that was
there instead of replacing it); any other exception removes it.

The modules, one a kind of output: `~livequant.sinks.video`, `~livequant.sinks.gif`,
`~livequant.sinks.animations` (WebP, APNG), `~livequant.sinks.images` and
`~livequant.sinks.preview`; what they share: `~livequant.sinks.base` (the target,
the partial file, times), `~livequant.sinks.encoding` (PyAV's encoders and muxers)
and `~livequant.sinks.audio` (the sound carried into a video).
"""

# OpenCV before PyAV, whichever module is imported first: PyAV's bundled libxcb loaded first makes OpenCV windows
# hang (PyAV#978).
import cv2  # noqa: F401  # isort: skip

from livequant.sinks.animations import AnimationWriter
from livequant.sinks.audio import AudioTrack
from livequant.sinks.base import MAX_LOOP, NUMBERED, check_target, numbered_files
from livequant.sinks.encoding import OneBehind
from livequant.sinks.gif import GifWriter
from livequant.sinks.images import ALPHA_PICTURES, ImageWriter
from livequant.sinks.preview import Preview
from livequant.sinks.video import (CRF_RANGES, DEFAULT_QUANTIZER, QUANTIZER_ENCODERS, VIDEO_SUFFIXES, VideoWriter,
                                   muxer_options)

__all__ = ["ALPHA_PICTURES", "AnimationWriter", "AudioTrack", "CRF_RANGES", "DEFAULT_QUANTIZER", "GifWriter",
           "ImageWriter", "MAX_LOOP", "NUMBERED", "OneBehind", "Preview", "QUANTIZER_ENCODERS", "VIDEO_SUFFIXES",
           "VideoWriter", "check_target", "muxer_options", "numbered_files"]
