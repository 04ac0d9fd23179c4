"""GIF files: `GifWriter`, through livequant's own encoder (`livequant.gif`)."""

from __future__ import annotations

import contextlib

from livequant.errors import SinkError
from livequant.frames import QuantizedFrame
from livequant.gif import GifEncoder, check_lossy
from livequant.sinks.base import FileSink, check_loop, check_same_size, optional_fps

__all__ = ["GifWriter"]


class GifWriter(FileSink):
    """Write an animated GIF straight from the palette indices (no second quantization).

    Each frame is cropped to the rectangle that changed, its unchanged pixels
    are transparent (as are its own transparent pixels, `QuantizedFrame.opaque`:
    a GIF then holds 255 colours a frame), and it carries a local colour
    table only when it needs colours the global table (the first frame's
    palette) lacks. Frame delays
    come from the frame times, rounded to GIF's 1/100 s; of two frames under
    2/100 s apart one is left out (counted in ``dropped``; the second shows in
    the first's place), as players show shorter delays as 10/100 s. The last frame lasts until `end_at` says
    (`livequant.pipeline.run` passes the source's end on), else as long as
    the interval before it. See `livequant.gif.GifEncoder`.

    Parameters
    ----------
    path : str or os.PathLike
        Output file.
    loop : int
        0 loops forever, -1 plays once, n > 0 repeats n times.
    overwrite : bool
        Replace an existing ``path``.
    inputs : sequence of str or os.PathLike
        Files the output must not be (compared by device and inode).
    local_palettes : bool
        Give every frame its own palette, even one equal to the file's global
        palette, so the frames can be copied into another GIF (what
        ``livequant batch`` does to join chunks).
    fps : float, optional
        Frame rate for frames without a time: each shows ``1 / fps`` after
        the one before. Without it such frames are an error.
    alpha : bool
        The frames may have transparent pixels (see `livequant.gif.GifEncoder`);
        they are kept either way.
    lossy : float
        How far a pixel may be shown from its colour for a smaller file (RGB
        levels; 0: exact; see `livequant.gif.GifEncoder`).
    """

    _late_frame = "it is left out"

    def __init__(self, path, *, loop: int = 0, overwrite: bool = False, inputs=(), local_palettes: bool = False,
                 fps: float | None = None, alpha: bool = False, lossy: float = 0.0):
        check_loop(loop)
        self.fps = optional_fps(fps)
        self.loop = loop
        self.local_palettes = local_palettes
        self.alpha = alpha
        self.lossy = check_lossy(lossy)
        self.dropped = 0
        super().__init__(path, overwrite, inputs)
        self._file = None
        self._gif = None

    def write(self, qframe: QuantizedFrame) -> None:
        """Append one quantized frame; within 2/100 s of the last one kept, one of the two is left out."""
        super().write(qframe)
        self.frames, self.dropped = self._gif.frames, self._gif.dropped

    def _write(self, qframe: QuantizedFrame) -> None:
        if self._gif is None:
            height, width = qframe.indices.shape
            try:
                self._gif = GifEncoder(width, height, qframe.palette.colors, self.loop,
                                       local_tables=self.local_palettes, alpha=self.alpha, lossy=self.lossy)
            except ValueError as e:
                raise SinkError(f"cannot write '{self.path}': {e}; resize with --width or --scale") from None
            self._file = open(self._tmp, "wb")
            self._file.write(self._gif.header())
        check_same_size(qframe, (self._gif.height, self._gif.width), self)
        with self._encoding():
            self._file.write(self._gif.add(qframe.indices, qframe.palette.colors, qframe.time, qframe.opaque))

    @contextlib.contextmanager
    def _encoding(self):
        """Within, the encoder's refusal of a frame (transparency and 256 colours) is a `SinkError`."""
        try:
            yield
        except ValueError as e:
            raise SinkError(f"cannot write '{self.path}': {e}") from None

    def _finish(self) -> None:
        with self._encoding():
            self._file.write(self._gif.end(self._end))
        self._file.close()
        self.frames, self.dropped = self._gif.frames, self._gif.dropped

    def _release(self) -> None:
        if self._file is not None:
            try:
                self._file.close()
            except OSError:
                pass  # flushing failed (a full disk): the partial file is deleted next
