"""A webcam retro filter in a plain OpenCV loop: read, quantize to a CGA palette, show.

    python samples/webcam_retro.py                 # camera 0; q quits
    python samples/webcam_retro.py --source test   # the built-in test pattern instead of a camera
"""

import argparse

import cv2  # OpenCV before livequant's PyAV (PyAV#978: the other order can hang OpenCV windows)

import livequant

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("--source", default="0", help="camera index, or `test` for the test pattern")
parser.add_argument("--palette", default="cga", help="a preset (cga, gameboy, pico8, ...) or a palette file")
parser.add_argument("--frames", type=int, help="stop after this many frames (default: until q)")
parser.add_argument("--save", help="write the last frame to this PNG file")
parser.add_argument("--no-window", action="store_true", help="do not open a window (for scripts and tests)")
args = parser.parse_args()



def camera(index: int):
    """RGB frames from a camera until it stops."""
    capture = cv2.VideoCapture(index)
    while True:
        ok, bgr = capture.read()
        if not ok:
            return
        yield cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)  # OpenCV is BGR; livequant works on RGB


if args.source == "test":  # livequant's sources yield RGB frames already
    frames = (rgb for rgb, _ in livequant.TestPattern((640, 360), fps=30, live=not args.no_window))
else:
    frames = camera(int(args.source))

# A fixed palette with ordered dithering: no flicker, and the look of the hardware.
quantizer = livequant.Quantizer(palette=args.palette, dither="bayer4")
shown = 0
for rgb in frames:
    retro = quantizer.quantize(rgb)  # (H, W, 3) uint8 RGB, every pixel a palette colour
    shown += 1
    if not args.no_window:
        cv2.imshow("retro (q quits)", cv2.cvtColor(retro, cv2.COLOR_RGB2BGR))
        if cv2.waitKey(1) & 0xFF == ord("q"):
            break
    if args.frames and shown >= args.frames:
        break

if args.save:
    cv2.imwrite(args.save, cv2.cvtColor(retro, cv2.COLOR_RGB2BGR))
print(f"{shown} frames; palette {quantizer.palette.name}: {' '.join(quantizer.palette.to_hex())}")
cv2.destroyAllWindows()
