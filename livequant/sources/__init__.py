"""Where frames come from: cameras, video files, still images and a test pattern.

Every source is a context manager and an iterable of ``(frame, time)`` pairs:
``frame`` is an ``(H, W, 3) uint8`` RGB C-contiguous array and ``time`` its
presentation time in seconds. Sources share the attributes ``fps``, ``size``
(``(W, H)``), ``live``, ``frame_count``, ``undecodable``, ``damaged`` and
``path``.

The modules: `~livequant.sources.video` (files, URLs, pipes and numbered pictures,
through PyAV), `~livequant.sources.images` (picture files),
`~livequant.sources.animations` (animated GIF, APNG and WebP files),
`~livequant.sources.camera`, `~livequant.sources.pattern` (the test pattern) and
`~livequant.sources.wrappers` (looping, reconnecting); what they share:
`~livequant.sources.base`, `~livequant.sources.sequences` (numbered pictures)
and `~livequant.sources.scaling`.
"""

from __future__ import annotations

import os
from pathlib import Path

# OpenCV before PyAV, whichever module is imported first: PyAV's bundled libxcb loaded first makes OpenCV windows
# hang (PyAV#978).
import cv2  # noqa: F401  # isort: skip

from livequant.sources.animations import AnimatedWebP, animation_kind, is_animated, loop_count
from livequant.sources.base import (IMAGE_SUFFIXES, MAX_PIXELS, SEQUENCE_NUMBER, STDIN, BaseSource, c_stderr,
                                    damage_note, is_pipe)
from livequant.sources.camera import Webcam, list_cameras
from livequant.sources.images import Images, read_image, read_image_alpha
from livequant.sources.pattern import Pacer, TestPattern
from livequant.sources.scaling import resize, resize_opaque, resize_rgba
from livequant.sources.sequences import is_picture_sequence
from livequant.sources.video import AUDIO_READ_ON, AudioFeed, VideoFile
from livequant.sources.wrappers import Looping, Reconnecting

__all__ = ["AUDIO_READ_ON", "AnimatedWebP", "AudioFeed", "IMAGE_SUFFIXES", "Images", "Looping", "MAX_PIXELS", "Pacer",
           "Reconnecting", "SEQUENCE_NUMBER", "STDIN", "TestPattern", "VideoFile", "Webcam", "c_stderr", "damage_note",
           "is_animated", "is_picture_sequence", "is_pipe", "list_cameras", "loop_count", "open_source", "open_video",
           "read_image", "read_image_alpha", "resize", "resize_opaque", "resize_rgba"]


def open_video(path, **kw) -> VideoFile | AnimatedWebP:
    """A `VideoFile` of ``path``, or for an animated WebP file (which FFmpeg here cannot decode) an
    `AnimatedWebP`: keyword arguments go to it (``fps`` and ``carry_audio`` only to a `VideoFile`)."""
    if animation_kind(path) != "webp":
        return VideoFile(path, **kw)
    kw.pop("carry_audio", None)
    kw.pop("fps", None)
    return AnimatedWebP(path, **kw)


def open_source(spec, **kw) -> BaseSource:
    """Open a source from a command-line style ``spec``.

    ``"test"`` gives a `TestPattern`, an int or digit string a `Webcam`, a
    picture `Images`, an animated WebP `AnimatedWebP`, anything else a `VideoFile`: a video, or pictures
    numbered or matched by a glob (`is_picture_sequence`: ``frames/%04d.png``,
    ``frames/*.png``), played at ``fps`` (FFmpeg's 25 unless given).
    Keyword arguments go to the source's constructor.
    """
    if isinstance(spec, int) and not isinstance(spec, bool):
        return Webcam(spec, **kw)
    text = os.fspath(spec)
    if text.isdigit():
        return Webcam(int(text), **kw)
    if text == "test":
        return TestPattern(**kw)
    if Path(text).suffix.lower() in IMAGE_SUFFIXES and not is_picture_sequence(text) and not is_animated(text):
        return Images(text, **kw)
    return open_video(text, **kw)
