"""A video to an animated GIF in a fixed palette read from a GIMP .gpl file.

    python samples/video_to_gif.py --source in.mp4 --palette mine.gpl -o out.gif
    python samples/video_to_gif.py --source test -o out.gif   # test pattern, PICO-8 palette
"""

import argparse

import livequant
from livequant.adapters import adapt

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("--source", default="test", help="a video file, or `test` for 2 s of the test pattern")
parser.add_argument("--palette", help="a .gpl palette file (default: the PICO-8 preset)")
parser.add_argument("--width", type=int, default=320, help="GIF width in pixels (default: 320)")
parser.add_argument("--fps", type=float, default=12, help="GIF frame rate (default: 12)")
parser.add_argument("-o", "--output", default="out.gif")
args = parser.parse_args()

# A fixed palette: every frame uses exactly these colours, so the GIF has one palette throughout.
palette = livequant.Palette.from_file(args.palette) if args.palette else livequant.presets.get("pico8")

if args.source == "test":
    source = livequant.TestPattern((640, 360), fps=24, frames=48)
else:
    source = livequant.VideoFile(args.source)
width, height = source.size
size = (args.width, round(height * args.width / width))

# adapt() resizes (in the decoder for a video) and re-times to a constant rate; GIFs count in 1/100 s.
with adapt(source, size=size, fps=args.fps) as frames, \
        livequant.Quantizer(palette=palette, dither="bayer4") as quantizer, \
        livequant.GifWriter(args.output, overwrite=True) as gif:
    # The GIF is written from the palette indices: no second quantization by the encoder.
    stats = livequant.run(frames, quantizer, [gif])
print(f"wrote {stats.frames} frames of {size[0]}x{size[1]} in {len(palette)} colours to {args.output}")
