"""A palette taken from a photo and saved for GIMP (Windows > Dockable Dialogs > Palettes, then import).

    python samples/palette_from_photo.py --source photo.jpg -k 8 -o photo.gpl
    python samples/palette_from_photo.py --source test -o test.gpl   # a frame of the test pattern
"""

import argparse
from pathlib import Path

import livequant

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("--source", default="test", help="an image file, or `test` for a test-pattern frame")
parser.add_argument("-k", "--colors", type=int, default=8, help="number of colours (default: 8)")
parser.add_argument("-o", "--output", default="palette.gpl", help=".gpl (GIMP), .act, .json, .hex or .png")
args = parser.parse_args()

# Any source gives (H, W, 3) uint8 RGB frames; take the first.
with livequant.open_source(args.source) as source:
    photo, _ = next(iter(source))

# An adaptive quantizer fits K colours to the picture (k-means in OKLab, a perceptual space).
with livequant.Quantizer(args.colors, color_space="oklab") as quantizer:
    fitted = quantizer.process(photo).palette

# Palettes are immutable values; give it a name and write it: the suffix picks the format.
palette = livequant.Palette(fitted.colors, name=Path(args.output).stem)
palette.save(args.output)
print(" ".join(palette.to_hex()))
print(f"wrote {args.output}: {len(palette)} colours")
