"""Built-in palettes of classic hardware, each with the source of its values.

Names are found whatever their case, spaces, hyphens and underscores ("PICO-8" is
``"pico8"``); ``"grayN"`` (N in 2..256) gives N evenly spaced
grays, and ``"cga"`` is an alias of ``"cga1-high"``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np

from livequant.palette import SUFFIXES, Palette

__all__ = ["descriptions", "get", "grayscale", "names", "resolve"]

# IBM 5153 colour display, 4-bit RGBI: low intensity 0xAA, high adds 0x55, and
# colour 6 is brown (#aa5500, green halved) rather than dark yellow. Source:
# Wikipedia, "Color Graphics Adapter", section "Color palette".
_RGBI = {
    "black": "#000000", "blue": "#0000aa", "green": "#00aa00", "cyan": "#00aaaa",
    "red": "#aa0000", "magenta": "#aa00aa", "brown": "#aa5500", "light gray": "#aaaaaa",
    "dark gray": "#555555", "light blue": "#5555ff", "light green": "#55ff55", "light cyan": "#55ffff",
    "light red": "#ff5555", "light magenta": "#ff55ff", "yellow": "#ffff55", "white": "#ffffff",
}

# The CGA 4-colour graphics sets, background black: palettes 0 and 1 and the
# mode 5 set, each at low and high intensity (same source as above).
_CGA = {
    "cga0": ("palette 0, low", "black", "green", "red", "brown"),
    "cga0-high": ("palette 0, high", "black", "light green", "light red", "yellow"),
    "cga1": ("palette 1, low", "black", "cyan", "magenta", "light gray"),
    "cga1-high": ("palette 1, high (alias: cga)", "black", "light cyan", "light magenta", "white"),
    "cga-mode5": ("mode 5, low", "black", "cyan", "red", "light gray"),
    "cga-mode5-high": ("mode 5, high", "black", "light cyan", "light red", "white"),
}

# ZX Spectrum: colours 0..7 (black, blue, red, magenta, green, cyan, yellow, white)
# at normal level 0xD7 then BRIGHT at 0xFF; black appears once. The normal level
# varies by model and emulator (0xC0..0xD8); 0xD7 is the commonly used value.
# Source: Wikipedia, "ZX Spectrum graphic modes", section "Colour palette".
_ZX = [f"#{(c >> 1 & 1) * v:02x}{(c >> 2 & 1) * v:02x}{(c & 1) * v:02x}"
       for v in (0xD7, 0xFF) for c in range(1 if v == 0xFF else 0, 8)]

# Web-safe: every combination of 0x00, 0x33, ..., 0xFF (Netscape/HTML 3.2 era).
_WEBSAFE = [f"#{r:02x}{g:02x}{b:02x}"
            for r in range(0, 256, 51) for g in range(0, 256, 51) for b in range(0, 256, 51)]

# NES 2C02: the FCEUX default palette (palettes/FCEUX.pal), rows $00-$3F with the
# nine extra blacks ($0E-$0F, $1D-$1F, $2E-$2F, $3E-$3F) and the second white
# ($30) removed, leaving its 54 distinct colours.
_NES = """
747474 24188c 0000a8 44009c 8c0074 a80010 a40000 7c0800 402c00 004400 005000 003c14 183c5c 000000
bcbcbc 0070ec 2038ec 8000f0 bc00bc e40058 d82800 c84c0c 887000 009400 00a800 009038 008088
fcfcfc 3cbcfc 5c94fc cc88fc f478fc fc74b4 fc7460 fc9838 f0bc3c 80d010 4cdc48 58f898 00e8d8 787878
a8e4fc c4d4fc d4c8fc fcc4fc fcc4d8 fcbcb0 fcd8a8 fce4a0 e0fca0 a8f0bc b0fccc 9cfcf0 c4c4c4
"""

# name -> (description, colours)
_PRESETS: dict[str, tuple[str, str | list[str]]] = {
    # The four greens commonly used for the DMG-01 LCD in emulators and pixel-art palette lists.
    "gameboy": ("Game Boy DMG: 4 greens", "#0f380f #306230 #8bac0f #9bbc0f"),
    **{name: (f"CGA {title}: {', '.join(colors)}", [_RGBI[c] for c in colors])
       for name, (title, *colors) in _CGA.items()},
    # The EGA default palette is the 16 RGBI colours above, in index order.
    "ega": ("EGA default 16 colours (RGBI)", list(_RGBI.values())),
    # Pepto's VIC-II palette (2001), http://www.pepto.de/projects/colorvic/2001/ ; VICE's "pepto-pal".
    "c64": ("Commodore 64, Pepto's palette: 16 colours",
            "#000000 #ffffff #68372b #70a4b2 #6f3d86 #588d43 #352879 #b8c76f "
            "#6f4f25 #433900 #9a6759 #444444 #6c6c6c #9ad284 #6c5eb5 #959595"),
    # The 16 colours of the PICO-8 manual (Lexaloffle), indices 0..15.
    "pico8": ("PICO-8: 16 colours",
              "#000000 #1d2b53 #7e2553 #008751 #ab5236 #5f574f #c2c3c7 #fff1e8 "
              "#ff004d #ffa300 #ffec27 #00e436 #29adff #83769c #ff77a8 #ffccaa"),
    "zx-spectrum": ("ZX Spectrum: 8 normal + 7 bright colours", _ZX),
    "nes": ("NES 2C02 (FCEUX palette): 54 distinct colours", _NES),
    "websafe": ("Web-safe: 216 colours, 6 levels per channel", _WEBSAFE),
}
_ALIASES = {"cga": "cga1-high"}
_GRAY_NAMES = ("gray2", "gray4", "gray8", "gray16")
_GRAY = re.compile(r"gr[ae]y(\d{1,4})")


def _squashed(name: str) -> str:
    """``name`` in lower case without spaces, hyphens and underscores ("PICO-8" -> "pico8"; a path stays one)."""
    return re.sub(r"[\s_-]", "", name.lower())


#: Each name squashed (`_squashed`), so "PICO-8", "Game Boy" and "zx_spectrum" find theirs.
_BY_SQUASHED = {_squashed(name): _ALIASES.get(name, name) for name in [*_PRESETS, *_ALIASES]}


def names() -> list[str]:
    """Return the preset names, in a stable order (``grayN`` for a few N)."""
    return [*_PRESETS, *_GRAY_NAMES]


def descriptions() -> dict[str, str]:
    """Return a one-line description for each name in `names`."""
    grays = {name: f"{name[4:]} evenly spaced grays" for name in _GRAY_NAMES}
    return {name: description for name, (description, _) in _PRESETS.items()} | grays


def get(name: str) -> Palette:
    """Return the preset palette called ``name`` (case, spaces, hyphens and underscores aside: "PICO-8").

    Raises
    ------
    ValueError
        If ``name`` is not a preset; the message lists the known names.
    """
    if not isinstance(name, str):
        raise TypeError(f"preset name must be a str, got {type(name).__name__}")
    key = _squashed(name)
    key = _BY_SQUASHED.get(key, key)
    if key in _PRESETS:
        return Palette.from_hex(_PRESETS[key][1], name=key)
    gray = _GRAY.fullmatch(key)
    if gray:
        return grayscale(int(gray.group(1)))
    raise ValueError(f"unknown palette preset {name!r}; known: {', '.join([*_PRESETS, *_ALIASES])}, "
                     "grayN for N in 2..256")


def grayscale(n: int) -> Palette:
    """Return ``n`` grays evenly spaced from black to white, named ``grayN``.

    Parameters
    ----------
    n : int
        Number of grays, 2..256.
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
        raise TypeError(f"grayscale n must be an int, got {type(n).__name__}")
    if not 2 <= n <= 256:
        raise ValueError(f"grayscale n must be in 2..256, got {n}")
    levels = np.round(np.linspace(0, 255, n)).astype(np.uint8)
    return Palette(np.repeat(levels[:, None], 3, axis=1), name=f"gray{n}")


def resolve(spec: Palette | str | os.PathLike) -> Palette:
    """Return ``spec`` if a Palette, else the preset or palette file it names.

    Raises
    ------
    ValueError
        If ``spec`` is neither a preset nor a palette file, or the file is invalid.
    SourceError
        If a palette file cannot be read.
    """
    if isinstance(spec, Palette):
        return spec
    if not isinstance(spec, (str, os.PathLike)):
        raise TypeError(f"palette must be a Palette, preset name or file path, got {type(spec).__name__}")
    if isinstance(spec, str):
        try:
            return get(spec)
        except ValueError:
            pass
    path = Path(spec)
    if path.exists() or path.suffix.lower() in SUFFIXES:
        return Palette.from_file(path)
    raise ValueError(f"unknown palette {os.fspath(spec)!r}: not a preset "
                     f"(known: {', '.join(names())}, grayN for N in 2..256) nor a palette file")
