"""A custom sink: quantized frames to a virtual camera, for video calls or OBS, with pyvirtualcam.

Needs `pip install pyvirtualcam` (not a livequant dependency) and a virtual-camera driver:
v4l2loopback on Linux (`sudo modprobe v4l2loopback`), OBS's virtual camera on Windows and macOS.
Without them it says what is missing and exits cleanly (status 0).

    python samples/virtual_camera.py                 # camera 0
    python samples/virtual_camera.py --source test   # the test pattern
"""

import argparse
import sys

import livequant

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("--source", default="0", help="camera index, a video file, or `test`")
parser.add_argument("--frames", type=int, help="stop after this many frames (default: until Ctrl-C)")
args = parser.parse_args()

try:
    import pyvirtualcam
except ImportError:
    print("skipped: pyvirtualcam is not installed; `pip install pyvirtualcam` and a virtual-camera driver")
    sys.exit(0)


class VirtualCamera:
    """A sink is anything with ``interactive`` and ``write(qframe)``; a context manager closes it."""

    interactive = False  # not a window: run() writes it from its writer thread, like a file

    def __init__(self, width: int, height: int, fps: float):
        self._camera = pyvirtualcam.Camera(width, height, fps, fmt=pyvirtualcam.PixelFormat.RGB)

    def write(self, qframe) -> None:
        self._camera.send(qframe.rgb)  # (H, W, 3) uint8 RGB, which is what pyvirtualcam takes
        self._camera.sleep_until_next_frame()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info) -> None:
        self._camera.close()


live_test = args.source == "test"
with livequant.TestPattern((640, 360), live=True) if live_test else livequant.open_source(args.source) as source:
    try:
        camera = VirtualCamera(*source.size, source.fps or 30.0)
    except RuntimeError as error:  # pyvirtualcam's answer when no driver or device is there
        print(f"skipped: no virtual camera ({error}); install a virtual-camera driver")
        sys.exit(0)
    with camera, livequant.Quantizer(16, dither="bayer4", background=True) as quantizer:
        stats = livequant.run(source, quantizer, [camera], max_frames=args.frames)
print(f"sent {stats.frames} frames at {stats.fps:.1f} fps")
