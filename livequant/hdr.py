"""HDR video (PQ, HLG) as an SDR screen shows it: tone-mapped to sRGB at the input edge.

A BT.2100 signal is taken to linear light (PQ's EOTF; HLG's inverse OETF, then its OOTF for a display of
`PEAK_NITS`), relative to HDR reference white (`REFERENCE_WHITE_NITS`, BT.2408), and from BT.2020 to BT.709
primaries. Its luminance is then tone-mapped: up to `KNEE` of reference white as it is, above it compressed
(an extended Reinhard curve, its slope 1 at the knee) so that `PEAK_NITS` comes out white; each colour keeps
its hue (its channels scaled by its luminance's change; where one still lies above white, all dimmed until
none does, which keeps its saturation) and is encoded as sRGB. Read as they are, such frames came out washed out
and dim.

SDR video in BT.2020 primaries (`BT2020`) is taken to BT.709's the same way, with no tone curve: from the light of
a BT.1886 screen (`SCREEN_GAMMA`) and back. Read as it is, it came out dull (BT.2020's red at code value 200 as
sRGB's (200, 40, 40) rather than (246, 0, 18)).
"""

from __future__ import annotations

import functools
import struct

import numba as nb
import numpy as np

from livequant.colorspace import linear_to_srgb

__all__ = ["BT2020", "HLG", "PQ", "TRANSFERS", "bt2020_to_bt709", "content_peak", "to_sdr"]

#: FFmpeg's AVColorTransferCharacteristic of the HDR signals tone-mapped here, and their names.
PQ, HLG = 16, 18
TRANSFERS = {PQ: "PQ, SMPTE ST 2084", HLG: "HLG, ARIB STD-B67"}
#: HDR reference white (diffuse white, BT.2408): a PQ signal of 58%, an HLG one of 75%.
REFERENCE_WHITE_NITS = 203.0
#: The peak that comes out white: HLG's reference display; for PQ the default where the video does not say
#: its own (`content_peak`), what most HDR10 video is mastered at. Light above it comes out white too.
PEAK_NITS = 1000.0
#: A PQ video's own peak is believed within these nits (MaxCLL is 0 where unknown, and sometimes wrong).
TRUSTED_PEAKS = (400.0, 10000.0)
#: Luminance up to this share of reference white is kept; above it is compressed (reference white comes out at
#: 80% of white's light, 91% of its sRGB level).
KNEE = 0.6
#: HLG's OOTF: display light is ``PEAK_NITS * Ys ** (HLG_GAMMA - 1) * E`` for scene light E (BT.2100, at 1000 nits).
HLG_GAMMA = 1.2
#: Steps of the table of ``Ys ** (HLG_GAMMA - 1)`` over 0..1 (a power per pixel took HLG 28 ms a 720p frame, PQ 15).
HLG_GAIN_STEPS = 65536
#: `_tone_map`'s gains for PQ, which has no OOTF to apply.
NO_GAINS = np.zeros(0, np.float32)
#: Linear BT.2020 RGB to linear BT.709 RGB (BT.2087).
BT2020_TO_BT709 = np.array([[1.6605, -0.5876, -0.0728],
                            [-0.1246, 1.1329, -0.0083],
                            [-0.0182, -0.1006, 1.1187]], dtype=np.float32)
#: Luma weights of BT.2020 and BT.709 RGB.
BT2020_LUMA = np.array([0.2627, 0.6780, 0.0593], dtype=np.float32)
BT709_LUMA = np.array([0.2126, 0.7152, 0.0722], dtype=np.float32)
#: Steps of the table that encodes linear light as sRGB.
SRGB_STEPS = 4096
#: FFmpeg's AVColorPrimaries of BT.2020: SDR video in them is converted to BT.709's (`bt2020_to_bt709`).
BT2020 = 9
#: SDR video's R'G'B' is the light of a BT.1886 screen raised to 1 / this.
SCREEN_GAMMA = 2.4
#: Steps of the table that encodes linear light as R'G'B' for that screen (a power: near black it needs finer
#: steps than sRGB's curve, whose foot is straight; 65536 keep every level within half a level).
SCREEN_STEPS = 65536


def to_sdr(rgb: np.ndarray, transfer: int, peak_nits: float = PEAK_NITS) -> np.ndarray:
    """An HDR frame as an SDR screen shows it.

    Parameters
    ----------
    rgb : (H, W, 3) uint16 ndarray
        The signal's R'G'B' (BT.2020 primaries), full range 0..65535.
    transfer : {PQ, HLG}
    peak_nits : float
        PQ light that comes out white (`content_peak`); HLG's is `PEAK_NITS`.

    Returns
    -------
    (H, W, 3) uint8 ndarray
        sRGB.
    """
    out = np.empty(rgb.shape, np.uint8)
    peak = np.float32((PEAK_NITS if transfer == HLG else peak_nits) / REFERENCE_WHITE_NITS)
    _tone_map(rgb, _linear_light(transfer), _hlg_gains() if transfer == HLG else NO_GAINS, BT2020_TO_BT709,
              BT2020_LUMA, BT709_LUMA, peak, np.float32(KNEE), _srgb_levels(), out)
    return out


def bt2020_to_bt709(rgb: np.ndarray) -> np.ndarray:
    """An SDR frame in BT.2020 primaries as a screen of BT.709 primaries shows it.

    Parameters
    ----------
    rgb : (H, W, 3) uint16 ndarray
        The signal's R'G'B', full range 0..65535.

    Returns
    -------
    (H, W, 3) uint8 ndarray
        R'G'B' in BT.709 primaries: the same light through the same transfer, where it fits; a colour outside
        BT.709 keeps its hue (its negative channels 0, and dimmed where one lies above white).
    """
    out = np.empty(rgb.shape, np.uint8)
    no_curve = np.float32(1.0)  # a peak at white: the tone curve is the identity up to white
    _tone_map(rgb, _screen_light(), NO_GAINS, BT2020_TO_BT709, BT2020_LUMA, BT709_LUMA, no_curve, np.float32(KNEE),
              _screen_levels(), out)
    return out


def content_peak(light_level: bytes | None, mastering: bytes | None) -> float:
    """The brightest light, in nits, a PQ video says it holds: its MaxCLL, else its mastering display's peak,
    else `PEAK_NITS`; a figure outside `TRUSTED_PEAKS` is passed over.

    Parameters
    ----------
    light_level : bytes or None
        FFmpeg's AVContentLightMetadata (MaxCLL, MaxFALL: two native unsigned ints).
    mastering : bytes or None
        FFmpeg's AVMasteringDisplayMetadata (10 rationals, then has_primaries and has_luminance).
    """
    claims = []
    if light_level is not None and len(light_level) >= 8:
        claims.append(float(struct.unpack_from("=I", light_level)[0]))
    if mastering is not None and len(mastering) >= 88:
        values = struct.unpack_from("=22i", mastering)
        numerator, denominator, has_luminance = values[18], values[19], values[21]
        if has_luminance and denominator > 0:
            claims.append(numerator / denominator)
    low, high = TRUSTED_PEAKS
    return next((nits for nits in claims if low <= nits <= high), PEAK_NITS)


@functools.cache
def _linear_light(transfer: int) -> np.ndarray:
    """Light of each 16-bit code value, ``(65536,) float32``: PQ's display light relative to reference white;
    HLG's scene light (0..1), before its OOTF."""
    e = np.arange(65536, dtype=np.float64) / 65535
    if transfer == PQ:
        m1, m2, c1, c2, c3 = 2610 / 16384, 2523 / 4096 * 128, 3424 / 4096, 2413 / 4096 * 32, 2392 / 4096 * 32
        p = e ** (1 / m2)
        light = 10000 * (np.maximum(p - c1, 0) / (c2 - c3 * p)) ** (1 / m1) / REFERENCE_WHITE_NITS
    elif transfer == HLG:
        a, b, c = 0.17883277, 0.28466892, 0.55991073
        light = np.where(e <= 0.5, e * e / 3, (np.exp((e - c) / a) + b) / 12)
    else:
        raise ValueError(f"transfer {transfer} is not HDR: expected {PQ} (PQ) or {HLG} (HLG)")
    table = light.astype(np.float32)
    table.flags.writeable = False
    return table


@functools.cache
def _screen_light() -> np.ndarray:
    """A BT.1886 screen's light (0..1) for each 16-bit code value, ``(65536,) float32``."""
    table = (np.arange(65536, dtype=np.float64) / 65535) ** SCREEN_GAMMA
    table = table.astype(np.float32)
    table.flags.writeable = False
    return table


@functools.cache
def _screen_levels() -> np.ndarray:
    """The 8-bit code value of each step of that screen's light 0..1, ``(SCREEN_STEPS,) uint8``."""
    table = np.rint(255 * np.linspace(0.0, 1.0, SCREEN_STEPS) ** (1 / SCREEN_GAMMA)).astype(np.uint8)
    table.flags.writeable = False
    return table


@functools.cache
def _hlg_gains() -> np.ndarray:
    """``Ys ** (HLG_GAMMA - 1)`` at each step of scene luminance 0..1, ``(HLG_GAIN_STEPS,) float32``."""
    table = (np.linspace(0.0, 1.0, HLG_GAIN_STEPS) ** (HLG_GAMMA - 1)).astype(np.float32)
    table.flags.writeable = False
    return table


@functools.cache
def _srgb_levels() -> np.ndarray:
    """sRGB level of each step of linear light 0..1, ``(SRGB_STEPS,) uint8``."""
    table = np.rint(linear_to_srgb(np.linspace(0.0, 1.0, SRGB_STEPS))).astype(np.uint8)
    table.flags.writeable = False
    return table


@nb.njit(parallel=True, nogil=True, cache=True)
def _tone_map(rgb, light, gains, matrix, luma_in, luma_out, peak, knee, levels, out):  # pragma: no cover - compiled
    """`to_sdr`'s work, a row at a time in parallel: ``light`` maps each code value to linear light, ``gains``
    (HLG; empty for PQ) each step of scene luminance to its OOTF's gain, ``levels`` each step of 0..1 to an 8-bit
    level."""
    h, w = rgb.shape[0], rgb.shape[1]
    room = np.float32(1.0) - knee  # what is left above the knee once compressed
    stretch = (peak - knee) / room  # the knee-to-peak span, in units of that room
    last = levels.shape[0] - 1
    hlg, top_gain = gains.shape[0] > 0, gains.shape[0] - 1
    for y in nb.prange(h):
        for x in range(w):
            r, g, b = light[rgb[y, x, 0]], light[rgb[y, x, 1]], light[rgb[y, x, 2]]
            if hlg:
                ys = luma_in[0] * r + luma_in[1] * g + luma_in[2] * b
                gain = peak * gains[min(np.intp(ys * top_gain + np.float32(0.5)), top_gain)]
                r, g, b = r * gain, g * gain, b * gain
            r, g, b = (matrix[0, 0] * r + matrix[0, 1] * g + matrix[0, 2] * b,
                       matrix[1, 0] * r + matrix[1, 1] * g + matrix[1, 2] * b,
                       matrix[2, 0] * r + matrix[2, 1] * g + matrix[2, 2] * b)
            r, g, b = max(r, np.float32(0.0)), max(g, np.float32(0.0)), max(b, np.float32(0.0))
            lum = luma_out[0] * r + luma_out[1] * g + luma_out[2] * b
            mapped = lum
            if lum > knee:
                t = (lum - knee) / room
                mapped = min(knee + room * t * (1 + t / (stretch * stretch)) / (1 + t), np.float32(1.0))
            scale = mapped / lum if lum > 0 else np.float32(0.0)
            r, g, b = r * scale, g * scale, b * scale
            top = max(r, g, b)
            if top > 1:  # a channel above white: the colour dimmed until none is, keeping its hue and saturation
                r, g, b = r / top, g / top, b / top
            out[y, x, 0] = levels[min(max(np.intp(r * last + np.float32(0.5)), 0), last)]
            out[y, x, 1] = levels[min(max(np.intp(g * last + np.float32(0.5)), 0), last)]
            out[y, x, 2] = levels[min(max(np.intp(b * last + np.float32(0.5)), 0), last)]
