"""Conversions between sRGB and OKLab (Ottosson 2020), vectorized.

OKLab is a perceptual space: Euclidean distance in it follows perceived colour
difference far better than in sRGB, which is why palettes are fitted and
matched in it by default. Coefficients from https://bottosson.github.io/posts/oklab/.
"""

from __future__ import annotations

import numpy as np

__all__ = ["COLOR_SPACES", "channel_curve", "from_space", "kernel_coefficients", "largest_channel", "linear_to_srgb",
           "oklab_to_srgb", "pack_rgb", "squared_norms", "srgb_to_oklab", "to_space", "unique_rgb", "working_space"]

#: The colour spaces a user chooses between.
COLOR_SPACES = ("oklab", "rgb")

#: Weight of OKLab lightness in the working space. Weighing it under 1 tracks CIEDE2000 far better (at 0.5:
#: 9-15% lower mean CIEDE2000 than plain OKLab on our stills and footage); 0.7 keeps most of that and holds
#: PSNR on low-chroma textures (issue 11: the floor, PSNR >= FFmpeg per frame, on 76 instead of 70 of 84
#: panel and hold-out checks at K = 16 and 64, the panel's own unchanged; mean CIEDE2000 margin to the best
#: per-frame peer -0.07 -> 0.00, on 25 instead of 34 of 42 rows at or under it).
LIGHTNESS_WEIGHT = 0.7
#: Palettes of more than `LARGE_PALETTE` colours weigh lightness this much ("oklab-large"): at 0.7 the GIF
#: of cockatoo at K=256 came out 0.9% larger than FFmpeg's; 0.6 keeps it smaller with the same floor.
LARGE_LIGHTNESS_WEIGHT = 0.6
LARGE_PALETTE = 64
#: OKLab working spaces: name -> weights of L, a and b.
_OKLAB_WEIGHTS = {
    "oklab": np.array([LIGHTNESS_WEIGHT, 1.0, 1.0], dtype=np.float32),
    "oklab-large": np.array([LARGE_LIGHTNESS_WEIGHT, 1.0, 1.0], dtype=np.float32),
}


def working_space(color_space: str, n_colors: int) -> str:
    """The space a palette of ``n_colors`` is fitted and matched in, for the user's ``color_space``.

    ``"rgb"`` is itself; ``"oklab"`` is ``"oklab-large"`` above `LARGE_PALETTE` colours.
    """
    return "oklab-large" if color_space == "oklab" and n_colors > LARGE_PALETTE else color_space

_LINEAR_TO_LMS = np.array(
    [
        [0.4122214708, 0.5363325363, 0.0514459929],
        [0.2119034982, 0.6806995451, 0.1073969566],
        [0.0883024619, 0.2817188376, 0.6299787005],
    ],
    dtype=np.float64,
)
_LMS_TO_OKLAB = np.array(
    [
        [0.2104542553, 0.7936177850, -0.0040720468],
        [1.9779984951, -2.4285922050, 0.4505937099],
        [0.0259040371, 0.7827717662, -0.8086757660],
    ],
    dtype=np.float64,
)
_OKLAB_TO_LMS = np.linalg.inv(_LMS_TO_OKLAB)
_LINEAR_TO_LMS_32, _LMS_TO_OKLAB_32 = _LINEAR_TO_LMS.T.astype(np.float32), _LMS_TO_OKLAB.T.astype(np.float32)
_LMS_TO_LINEAR = np.linalg.inv(_LINEAR_TO_LMS)


def _srgb_to_linear(c: np.ndarray) -> np.ndarray:
    c = c / 255.0
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


def linear_to_srgb(c: np.ndarray) -> np.ndarray:
    """sRGB levels (0-255, float) of linear light ``c`` (clipped to 0-1)."""
    c = np.clip(c, 0.0, 1.0)
    return 255.0 * np.where(c <= 0.0031308, 12.92 * c, 1.055 * c ** (1 / 2.4) - 0.055)


_SRGB8_TO_LINEAR = _srgb_to_linear(np.arange(256, dtype=np.float64)).astype(np.float32)


def _power(values: np.ndarray, exponent: float) -> np.ndarray:
    """``sign(values) * |values| ** exponent`` in float32, by exp and log: numpy's cbrt and float64 powers are
    not vectorised and took 3-5 times as long on a refit's samples."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.copysign(np.exp(np.log(np.abs(values)) * np.float32(exponent)), values)


def _srgb_to_linear32(rgb: np.ndarray) -> np.ndarray:
    """`_srgb_to_linear` of 0-255 values, in float32."""
    c = rgb.astype(np.float32) * np.float32(1 / 255)
    curve = _power((c + np.float32(0.055)) * np.float32(1 / 1.055), 2.4)
    return np.where(c <= 0.04045, c * np.float32(1 / 12.92), curve)


def srgb_to_oklab(rgb: np.ndarray) -> np.ndarray:
    """Convert sRGB colours to OKLab.

    Parameters
    ----------
    rgb : (..., 3) uint8 or float ndarray
        sRGB values on the 0-255 scale.

    Returns
    -------
    (..., 3) float32 ndarray
        OKLab ``L, a, b`` with L in [0, 1].
    """
    rgb = np.asarray(rgb)
    linear = _SRGB8_TO_LINEAR[rgb] if rgb.dtype == np.uint8 else _srgb_to_linear32(rgb)
    return _power(linear @ _LINEAR_TO_LMS_32, 1 / 3) @ _LMS_TO_OKLAB_32


def oklab_to_srgb(lab: np.ndarray) -> np.ndarray:
    """Convert OKLab colours to sRGB on the 0-255 scale (float64, clipped to the gamut)."""
    lms = np.asarray(lab, dtype=np.float64) @ _OKLAB_TO_LMS.T
    return linear_to_srgb((lms**3) @ _LMS_TO_LINEAR.T)


def channel_curve(color_space: str) -> np.ndarray:
    """Each 8-bit channel value on the scale ordered dither offsets work in, ``(256,) float64`` from 0 to 255.

    The value itself in ``"rgb"``; in OKLab the cube root of its linear light,
    which is how OKLab measures lightness: offsets there stay about as far,
    as OKLab sees it, on either side of a dark colour as of a light one.
    """
    values = np.arange(256, dtype=np.float64)
    if color_space in _OKLAB_WEIGHTS:
        return 255.0 * np.cbrt(_srgb_to_linear(values))
    return values


def kernel_coefficients(values: np.ndarray, color_space: str) -> np.ndarray:
    """`to_space` for compiled code, which converts one colour at a time whose channels are among ``values``.

    Returns
    -------
    (len(values) + 22,) float64 ndarray
        First each of ``values`` as linear light (``"oklab"``) or as itself;
        then the two 3 x 3 matrices applied in turn, row by row (identities
        for ``"rgb"``); the three weights applied last, in float32; and 1 when
        a cube root is taken between the matrices, else 0.
    """
    values = np.asarray(values, dtype=np.float64)
    if color_space in _OKLAB_WEIGHTS:
        weights = _OKLAB_WEIGHTS[color_space]
        parts = [_srgb_to_linear(values), _LINEAR_TO_LMS.ravel(), _LMS_TO_OKLAB.ravel(), weights, [1.0]]
    else:
        parts = [values, np.eye(3).ravel(), np.eye(3).ravel(), np.ones(3), [0.0]]
    return np.concatenate([np.asarray(part, dtype=np.float64) for part in parts])


def to_space(rgb: np.ndarray, color_space: str) -> np.ndarray:
    """sRGB (0-255) to the working space as float32.

    ``"rgb"`` is sRGB itself; ``"oklab"`` is OKLab with lightness weighted by
    `LIGHTNESS_WEIGHT` (``"oklab-large"``: `LARGE_LIGHTNESS_WEIGHT`), so
    Euclidean distance there is the matching metric.
    """
    if color_space in _OKLAB_WEIGHTS:
        return srgb_to_oklab(rgb) * _OKLAB_WEIGHTS[color_space]
    return np.asarray(rgb, dtype=np.float32)


def from_space(values: np.ndarray, color_space: str) -> np.ndarray:
    """Working-space values back to ``(..., 3) uint8`` sRGB, rounded and clipped."""
    if color_space in _OKLAB_WEIGHTS:
        rgb = oklab_to_srgb(np.asarray(values, dtype=np.float64) / _OKLAB_WEIGHTS[color_space])
    else:
        rgb = np.asarray(values, dtype=np.float64)
    return np.clip(np.rint(rgb), 0, 255).astype(np.uint8)


def squared_norms(differences: np.ndarray) -> np.ndarray:
    """Squared length of each of ``(N, 3)`` colour differences, ``(N,)``.

    The three columns are added one by one: numpy's reduction over a length-3
    axis takes twice as long, and a refit runs several over its samples.
    """
    squares = differences * differences
    return squares[:, 0] + squares[:, 1] + squares[:, 2]


def largest_channel(values: np.ndarray) -> np.ndarray:
    """The largest of each of ``(..., 3)`` values' three channels, ``(...)``: compared column by column,
    as `squared_norms` adds, which took a twelfth of the time of ``max(axis=-1)`` on a refit's samples."""
    return np.maximum(np.maximum(values[..., 0], values[..., 1]), values[..., 2])


def pack_rgb(rgb: np.ndarray) -> np.ndarray:
    """``(..., 3) uint8`` colours as one ``uint32`` each, ``0xRRGGBB``."""
    c = np.asarray(rgb).astype(np.uint32)
    return (c[..., 0] << 16) | (c[..., 1] << 8) | c[..., 2]


def unique_rgb(pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The distinct colours of ``(N, 3) uint8`` pixels, ascending as ``0xRRGGBB``.

    Returns
    -------
    colors : (M, 3) uint8 ndarray
    inverse : (N,) int ndarray
        Position of each pixel's colour in ``colors``.
    counts : (M,) int ndarray
        Pixels of each colour.
    """
    values, inverse, counts = np.unique(pack_rgb(pixels), return_inverse=True, return_counts=True)
    colors = np.stack([values >> 16, (values >> 8) & 255, values & 255], axis=1).astype(np.uint8)
    return colors, inverse.ravel(), counts
