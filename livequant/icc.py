"""Colour management at the input edge: pictures tagged with an RGB profile other than sRGB, converted to sRGB.

livequant works in sRGB: palettes, OKLab and the outputs, which carry no
profile and so are shown as sRGB. A picture whose ICC profile says its
values mean other colours (Adobe RGB, a phone's Display P3) is converted with
LittleCMS (Pillow's ``ImageCms``), relative colorimetric, as a colour-managed
viewer shows it: read as sRGB, its colours came out dull or shifted (about
CIEDE2000 4 for Adobe RGB). Profiles within a level of sRGB (the sRGB
profiles cameras and editors embed) leave the pixels as they are.
"""

from __future__ import annotations

import functools
import io

import numpy as np
from PIL import Image, ImageCms

__all__ = ["srgb_transform", "to_srgb"]

#: Levels a channel per axis of the grid of colours on which a profile is compared with sRGB.
GRID_LEVELS = 9
#: A profile whose colours on that grid all come out within this many levels of themselves is taken as sRGB.
SRGB_TOLERANCE = 1


@functools.lru_cache(maxsize=8)
def srgb_transform(profile: bytes) -> ImageCms.ImageCmsTransform | None:
    """The conversion of pixels tagged with the ICC ``profile`` to sRGB; None where there is nothing to convert:
    a profile of another colour space than RGB (grey, CMYK), or one that is sRGB within `SRGB_TOLERANCE`.

    Raises
    ------
    ValueError
        If LittleCMS cannot read the profile.
    """
    try:
        source = ImageCms.ImageCmsProfile(io.BytesIO(profile))
    except (OSError, ImageCms.PyCMSError) as e:
        raise ValueError(f"LittleCMS cannot read it ({e})") from e
    if source.profile.xcolor_space.strip() != "RGB":
        return None
    try:
        transform = ImageCms.buildTransform(source, ImageCms.createProfile("sRGB"), "RGB", "RGB",
                                           renderingIntent=ImageCms.Intent.RELATIVE_COLORIMETRIC)
    except ImageCms.PyCMSError as e:
        raise ValueError(f"LittleCMS cannot convert from it ({e})") from e
    levels = np.linspace(0, 255, GRID_LEVELS).round().astype(np.uint8)
    grid = np.stack(np.meshgrid(levels, levels, levels, indexing="ij"), axis=-1).reshape(1, -1, 3)
    moved = np.abs(_apply(grid, transform).astype(np.int16) - grid).max()
    return None if moved <= SRGB_TOLERANCE else transform


def to_srgb(rgb: np.ndarray, transform: ImageCms.ImageCmsTransform | None) -> np.ndarray:
    """``rgb``, an ``(H, W, 3) uint8`` frame, converted by ``transform`` (`srgb_transform`; None: as it is)."""
    return rgb if transform is None else _apply(rgb, transform)


def _apply(rgb: np.ndarray, transform: ImageCms.ImageCmsTransform) -> np.ndarray:
    return np.array(ImageCms.applyTransform(Image.fromarray(rgb), transform), dtype=np.uint8)
