"""GIF bytes from index maps: frame differencing, colour tables, LZW. No I/O.

`GifEncoder` turns each quantized frame into the bytes of one GIF image:

- cropped to the rectangle whose colours changed since the previous frame
  (what a viewer shows, so it also holds across palette changes);
- inside it, pixels whose colour did not change become the transparent index,
  which LZW packs into long runs, or keep their own index where that continues
  the run of the pixel before them (`livequant.kernels.transparent_codes`):
  both show the same picture, so the frame is compressed both ways and the
  smaller is written. The transparent index costs no colour: it is a padding
  entry of the table (tables have a power-of-two size) or an entry no changed
  pixel uses; a frame with neither keeps its pixels as they are;
- with the global colour table (the first frame's palette) when every colour
  the frame needs is in it, else with a local table of just those colours.

Every frame is drawn over the previous one (disposal "do not dispose"),
except where frames have transparent pixels of their own (``opaque``): a
frame whose pixels the next one shows transparent is cleared after it
(disposal "restore to background", its rectangle grown to cover them), so
each frame is encoded once the next one has come.

Frame delays come from the frame times, rounded to GIF's 1/100 s. Players show
a delay under 2/100 s (`MIN_DELAY`) as 10/100 s, so a frame that would follow
the last one kept by less than that is left out and the one before stays up in
its place: a fast source plays at up to 50 fps, for its true duration. The last
frame lasts as long as the last interval between frame times; if that leaves it
under 2/100 s, it is left out and the frame before lasts until the end.
"""

from __future__ import annotations

import numbers

import numpy as np

from livequant.colorspace import pack_rgb
from livequant.kernels import (changed_pixels, colours_within, lzw_encode, lzw_encode_lossy, neighbour_gaps,
                               parallel_launch, transparent_codes, used_entries)

__all__ = ["GifEncoder", "MAX_LOSSY", "MIN_DELAY", "check_lossy", "split_file_parts"]

MIN_DELAY = 2  # 1/100 s: players show a shorter delay as 10/100 s
MAX_LOSSY = 442  # RGB levels: past the farthest two colours are (255 * sqrt(3))
_CLEAR = np.uint32(1 << 24)  # what the canvas holds where it shows nothing: no 0xRRGGBB colour


def check_lossy(lossy) -> float:
    """``lossy`` (`GifEncoder`'s) as a float; `ValueError` unless a number of RGB levels in 0..`MAX_LOSSY`."""
    if isinstance(lossy, bool) or not isinstance(lossy, numbers.Real) or not 0 <= lossy <= MAX_LOSSY:
        raise ValueError(f"lossy is how far a pixel may be shown from its colour, in RGB levels 0..{MAX_LOSSY} "
                         f"(0: exact), got {lossy!r}")
    return float(lossy)


def _bits(n: int) -> int:
    """Bits for a colour table of ``n`` entries (tables hold 2..256)."""
    return max(1, int(n - 1).bit_length())


def _squared_gaps(packed: np.ndarray) -> np.ndarray:
    """Squared RGB distances between packed colours (``0xRRGGBB``; `_CLEAR` counts as red 256), ``(n, n)
    int32``."""
    rgb = np.stack([packed >> 16, (packed >> 8) & 255, packed & 255], axis=1).astype(np.int32)
    return ((rgb[:, None, :] - rgb[None, :, :]) ** 2).sum(axis=2)


def _disposal(clear: np.ndarray | None) -> int:
    """What becomes of a frame that must ``clear`` these pixels once shown: 2, its rectangle is cleared; else 1,
    it stays under the next."""
    return 2 if clear is not None and clear.any() else 1


def _table_bytes(packed: np.ndarray, bits: int) -> bytes:
    """A colour table of ``2**bits`` RGB entries, padded with black."""
    table = np.zeros((1 << bits, 3), np.uint8)
    table[: len(packed), 0] = packed >> 16
    table[: len(packed), 1] = (packed >> 8) & 255
    table[: len(packed), 2] = packed & 255
    return table.tobytes()


def _sub_blocks(data: np.ndarray) -> bytes:
    """``data`` in GIF data sub-blocks (a length byte, up to 255 bytes), then the block terminator."""
    n = len(data)
    full, rest = divmod(n, 255)
    blocks = np.empty(full * 256 + (rest + 1 if rest else 0) + 1, np.uint8)
    body = blocks[: full * 256].reshape(full, 256)
    body[:, 0] = 255
    body[:, 1:] = data[: full * 255].reshape(full, 255)
    if rest:
        blocks[full * 256] = rest
        blocks[full * 256 + 1 : -1] = data[full * 255 :]
    blocks[-1] = 0
    return blocks.tobytes()


def _reach(shown: np.ndarray, most: int) -> np.ndarray:
    """`neighbour_gaps` of ``shown`` within ``most``, launched in turn (see `parallel_launch`)."""
    with parallel_launch():
        return neighbour_gaps(shown, most)


def split_file_parts(data: bytes) -> tuple[bytes, bytes]:
    """``(file header, frame)`` of a GIF packet as FFmpeg's demuxer hands it: the first carries the file's
    header (signature, screen descriptor, global colour table, extensions such as the loop count), the
    last its trailer. The header part is empty for other packets; the frame never has the trailer. To
    join GIFs, keep the first header and write the frames."""
    i = 0
    if data[:6] in (b"GIF87a", b"GIF89a"):
        flags = data[10]
        i = 13 + (3 << ((flags & 7) + 1) if flags & 0x80 else 0)
        while data[i] == 0x21 and data[i + 1] != 0xF9:  # an extension other than the frame's control block
            i += 2
            while data[i]:  # its sub-blocks, up to the empty one
                i += data[i] + 1
            i += 1
    end = len(data) - 1 if data.endswith(b"\x00\x3b") else len(data)  # a frame ends with an empty block
    return data[:i], data[i:end]


class GifEncoder:
    """The bytes of an animated GIF, frame by frame: `header`, then `add` for each frame, then `end`.

    `image` and `control` are the two blocks `add` writes a frame with, for a GIF assembled by hand.

    Parameters
    ----------
    width, height : int
        Picture size, 1..65535.
    colors : (K, 3) uint8 ndarray
        The global colour table: the first frame's palette, or the one palette of the whole animation.
    loop : int
        0 loops forever, -1 plays once (no NETSCAPE2.0 extension), n > 0 repeats n times.
    local_tables : bool
        Give every frame a colour table of its own, so its image can be copied
        into another GIF (``livequant batch`` joins chunks of frames without
        transparency so).
    alpha : bool
        The frames may have transparent pixels: the first frame's control
        block names a transparent index even where that frame has none, where
        its table has room (Pillow decodes the frames after a first without one
        as opaque).
    lossy : float
        How far (Euclidean distance in RGB levels) a pixel may be shown from
        its colour: a pixel keeps what the canvas shows there within that (it
        is not drawn), and where that lets LZW match a longer string a pixel
        drawn may show another colour of the table, or what the canvas shows
        (the transparent index), no farther from its colour than the farthest
        of its 8 neighbours' colours is, a transparent one counting as far
        (`lzw_encode_lossy`, `neighbour_gaps`): a stray colour shows on a flat
        area, and is lost in a busy one. 0: every pixel exactly.
    """

    def __init__(self, width: int, height: int, colors: np.ndarray, loop: int = 0, local_tables: bool = False,
                 alpha: bool = False, lossy: float = 0.0):
        if not (1 <= width <= 65535 and 1 <= height <= 65535):
            raise ValueError(f"GIF pictures are at most 65535 x 65535 pixels, got {width} x {height}")
        self.width, self.height, self.loop = width, height, loop
        self.local_only = local_tables
        self.alpha = alpha
        self.lossy = check_lossy(lossy)
        self._gaps_key: bytes | None = None
        self._gaps: np.ndarray | None = None
        self._global = pack_rgb(np.asarray(colors, np.uint8))
        self._global_bits = _bits(len(self._global))
        self._canvas: np.ndarray | None = None  # (H, W) uint32 colours the viewer shows now
        self._mapping_key: bytes | None = None
        self._mapping: np.ndarray | None = None
        self.frames = 0  # frames kept
        self.dropped = 0  # frames left out: under MIN_DELAY after the one before, or before the end
        self._t0: float | None = None
        self._times: tuple[float | None, float | None] = (None, None)  # the last two frame times given, kept or not
        # (start in 1/100 s, image, transparent index, disposal) of the last two frames encoded: a frame's delay
        # is known at the next one, and at `end` the last may be left out, the one before then lasting until the end
        self._held: list[tuple[int, bytes, int | None, int]] = []
        # (start, indices, colors, opaque) of the last frame kept, encoded once the next one says what it clears
        self._pending: tuple | None = None

    def header(self) -> bytes:
        """Signature, screen descriptor, global colour table and (unless ``loop`` is -1) the loop extension."""
        flags = 0x80 | 0x70 | (self._global_bits - 1)  # global table, 8-bit colour resolution, table size
        data = b"GIF89a" + self.width.to_bytes(2, "little") + self.height.to_bytes(2, "little")
        data += bytes([flags, 0, 0]) + _table_bytes(self._global, self._global_bits)
        if self.loop >= 0:
            data += b"\x21\xff\x0bNETSCAPE2.0\x03\x01" + self.loop.to_bytes(2, "little") + b"\x00"
        return data

    @staticmethod
    def control(delay: int, transparent: int | None, disposal: int = 1) -> bytes:
        """The graphic control extension: ``delay`` in 1/100 s, the transparent index (None: none), and what
        becomes of the frame before the next is drawn: 1 it stays, 2 its rectangle is cleared."""
        flags = (disposal << 2) | (transparent is not None)
        return bytes([0x21, 0xF9, 4, flags]) + min(delay, 65535).to_bytes(2, "little") + \
            bytes([transparent or 0, 0])

    def _to_global(self, packed: np.ndarray) -> np.ndarray:
        """Position of each palette colour in the global table, -1 where absent (cached per palette)."""
        key = packed.tobytes()
        if key != self._mapping_key:
            where = {int(c): i for i, c in reversed(list(enumerate(self._global)))}
            self._mapping = np.array([where.get(int(c), -1) for c in packed], np.int32)
            self._mapping_key = key
        return self._mapping

    def image(self, indices: np.ndarray, colors: np.ndarray, opaque: np.ndarray | None = None,
              clear: np.ndarray | None = None) -> tuple[bytes, int | None]:
        """Encode one frame; returns ``(image bytes, transparent index or None)`` for `control`.

        Parameters
        ----------
        indices : (H, W) uint8 ndarray
            Palette index of each pixel.
        colors : (K, 3) uint8 ndarray
            The frame's palette.
        opaque : (H, W) bool ndarray, optional
            Which pixels show; the others are transparent (None: all show).
        clear : (H, W) bool ndarray, optional
            Pixels to clear once the frame has been shown: the frame's rectangle
            grows to cover them, and where any is true, `control` must be given
            disposal 2.

        Raises
        ------
        ValueError
            If the frame has transparent pixels and needs all 256 colours of
            its palette, which leaves GIF no index for transparency.
        """
        packed = pack_rgb(np.asarray(colors, np.uint8))
        if opaque is not None:  # transparent pixels take an entry of their own, after the palette's
            indices = np.where(opaque, indices, np.uint16(len(packed)))
            packed = np.append(packed, _CLEAR)
        first = self._canvas is None
        first_clear = first and opaque is not None
        most = int(self.lossy**2)  # squared RGB distances are whole
        if first_clear:  # nothing shows yet: drawn over a clear canvas
            self._canvas = np.full(indices.shape, _CLEAR)
        if self._canvas is None:
            shown, changed = packed[indices], None
            reach = _reach(shown, most) if self.lossy else None
            top, bottom, left, right = 0, self.height, 0, self.width
        else:
            shown, changed = changed_pixels(indices, packed, self._canvas)
            if self.lossy:  # what is shown already stays where it is within `lossy` of the frame's colour
                reach = _reach(shown, most)  # from the frame's own colours, before kept pixels change them
                kept = changed & colours_within(shown, self._canvas, np.broadcast_to(np.int32(most), shown.shape))
                changed &= ~kept
                shown[kept] = self._canvas[kept]
            covered = changed if clear is None else changed | clear
            rows, cols = np.flatnonzero(covered.any(axis=1)), np.flatnonzero(covered.any(axis=0))
            if rows.size:
                top, bottom, left, right = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
            else:  # nothing changed: one unchanged pixel
                top, bottom, left, right = 0, 1, 0, 1
                changed[0, 0] = True
            changed = changed[top:bottom, left:right]
        disposal = _disposal(clear)
        region = indices[top:bottom, left:right]
        clear_index = None if opaque is None else len(packed) - 1  # the entry of transparent pixels
        needed = (np.bincount(region.ravel(), minlength=len(packed)) > 0 if changed is None
                  else used_entries(region, changed, len(packed)))
        # a transparent index: for transparent pixels, and because decoders start from a clear canvas, and clear
        # to it, where the frame's control block has one (FFmpeg: else the background colour)
        index_needed = (clear_index is not None and bool((region == clear_index).any())) or first_clear or \
            disposal == 2
        if clear_index is not None:
            needed[clear_index] = False
        # lossy: pixels kept within `lossy` show through the transparent index, or snap back to their colour
        lossy_index = self.lossy > 0 and changed is not None and not changed.all()
        if lossy_index and not index_needed and needed.sum() == 256:  # room for it: one colour's pixels moved
            region = self._without_one_colour(region, changed, packed, needed)
            shown[top:bottom, left:right] = np.where(changed, packed[region], shown[top:bottom, left:right])
        wants_index = index_needed or (lossy_index and needed.sum() < 256)  # a local table would have room
        to_global = self._to_global(packed)
        free = np.ones(1 << self._global_bits, bool)
        free[to_global[needed]] = False
        if not self.local_only and (to_global[needed] >= 0).all() and (free.any() or not wants_index):
            lut, bits, table = to_global.copy(), self._global_bits, None
        else:  # a local table of the colours this frame needs
            used = np.flatnonzero(needed)
            if index_needed and len(used) == 256:
                raise ValueError("a frame has transparent pixels and uses all 256 colours of its palette, and GIF "
                                 "needs an index for transparency: use -k 255 or fewer, or flatten with "
                                 "--background")
            lut = np.full(len(packed), -1, np.int32)  # -1: not in the table (some unchanged pixels' colours)
            lut[used] = np.arange(len(used))
            bits = _bits(len(used) + ((changed is not None or index_needed) and len(used) < 256))
            free = np.arange(1 << bits) >= len(used)
            table = packed[used]
        transparent = None
        min_code_size = max(2, bits)
        if (index_needed or (first and self.alpha) or (changed is not None and not changed.all())) and free.any():
            transparent = int(np.flatnonzero(free)[-1])
            if clear_index is not None:
                lut[clear_index] = transparent
        if transparent is not None and changed is not None:
            choices = transparent_codes(region, changed, lut, transparent)
        else:  # every pixel drawn (a first frame, cleared after it where the next shows transparent pixels)
            choices = (lut[region].astype(np.uint8),)
        box = (slice(top, bottom), slice(left, right))
        if self.lossy:
            canvas = None if self._canvas is None else self._canvas[box]
            compressed, shown[box] = self._lossy_image(choices, region, changed, lut,
                                                       self._global if table is None else table, transparent, bits,
                                                       shown[box], canvas, np.ascontiguousarray(reach[box]))
        else:
            compressed = min((lzw_encode(codes.ravel(), min_code_size) for codes in choices), key=len)
        self._canvas = shown
        if disposal == 2:
            shown[box] = _CLEAR
        data = bytes([0x2C]) + b"".join(int(v).to_bytes(2, "little") for v in (left, top, right - left, bottom - top))
        if table is None:
            data += b"\x00"
        else:
            data += bytes([0x80 | (bits - 1)]) + _table_bytes(table, bits)
        data += bytes([min_code_size]) + _sub_blocks(compressed)
        return data, transparent

    def _lossy_image(self, choices: tuple[np.ndarray, ...], region: np.ndarray, changed: np.ndarray | None,
                     lut: np.ndarray, codes_colours: np.ndarray, transparent: int | None, bits: int,
                     shown: np.ndarray, canvas: np.ndarray | None,
                     reach: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The smallest LZW of a frame's ``choices`` of codes (for its pixels ``region``), each pixel free to
        take a code within ``reach`` (squared, a pixel) of its colour in ``shown`` (`lzw_encode_lossy`) or to
        keep what ``canvas`` shows within that; a pixel not ``changed`` only the latter. Returns the LZW bytes
        and what the frame then shows there."""
        own = lut[region].astype(np.int32)
        own[own == (-1 if transparent is None else transparent)] = -1  # transparent pixels stay so
        if changed is not None:
            own[~changed] = -1  # a still pixel shows what it showed: no flicker
        if transparent is None or canvas is None:
            canvas_ok = np.zeros(region.shape, bool)
        else:  # showing the canvas: the transparent index
            canvas_ok = colours_within(shown, canvas, reach)
        gaps = self._code_gaps(codes_colours, transparent, bits)
        best = None
        for codes in choices:
            chosen = np.empty(codes.size, np.uint8)
            compressed = lzw_encode_lossy(codes.ravel(), max(2, bits), own.ravel(), gaps, reach.ravel(),
                                          canvas_ok.ravel(), transparent or 0, chosen)
            if best is None or len(compressed) < len(best[0]):
                best = compressed, chosen.reshape(region.shape)
        compressed, chosen = best
        colours = codes_colours[np.minimum(chosen, len(codes_colours) - 1)]
        if transparent is not None:  # the canvas shows through, or nothing where the pixel is transparent
            through = shown if canvas is None else np.where(shown == _CLEAR, _CLEAR, canvas)
            colours = np.where(chosen == transparent, through, colours)
        return compressed, colours

    def _without_one_colour(self, region: np.ndarray, changed: np.ndarray, packed: np.ndarray,
                            needed: np.ndarray) -> np.ndarray:
        """``region`` with the ``changed`` pixels of one ``needed`` colour moved to another within `lossy`: the
        colour whose pixels lose least so (fewest pixels times squared distance), which ``needed`` then drops.
        ``region`` as it was where no colour is that close. (Within `lossy` only, not within the pixels'
        neighbours' reach: without the index that frees, every pixel kept would be drawn.)"""
        gaps = _squared_gaps(packed).astype(np.float64)
        gaps[:, ~needed] = np.inf
        np.fill_diagonal(gaps, np.inf)
        nearest = gaps.argmin(axis=1)
        loss = np.bincount(region[changed], minlength=len(packed)) * gaps[np.arange(len(packed)), nearest]
        loss[~needed | (gaps.min(axis=1) > self.lossy**2)] = np.inf
        drop = int(np.argmin(loss))
        if not np.isfinite(loss[drop]):
            return region
        needed[drop] = False
        return np.where(changed & (region == drop), nearest[drop], region).astype(region.dtype)

    def _code_gaps(self, codes_colours: np.ndarray, transparent: int | None, bits: int) -> np.ndarray:
        """Squared RGB distances between the codes of a table of ``2**bits`` (``codes_colours`` packed, then
        padding), ``(2**bits, 2**bits) int32``; to padding and to ``transparent``, more than any `lossy` allows
        (cached per table)."""
        key = codes_colours.tobytes() + bytes([bits, 255 if transparent is None else transparent])
        if key != self._gaps_key:
            n = len(codes_colours)
            gaps = np.full((1 << bits, 1 << bits), 1 << 30, np.int32)
            gaps[:n, :n] = _squared_gaps(codes_colours)
            if transparent is not None:
                gaps[:, transparent] = 1 << 30
            self._gaps, self._gaps_key = gaps, key
        return self._gaps

    def add(self, indices: np.ndarray, colors: np.ndarray, time: float, opaque: np.ndarray | None = None) -> bytes:
        """Take the frame shown from ``time`` (seconds); return the bytes now complete, maybe none.

        A frame is encoded once the next has come (which says what it must clear) and held back until one
        more has: its delay is known at the next one, and the last but one may yet have to last until the
        end. Of two frames under `MIN_DELAY` apart one is left out (counted in ``dropped``): the first, whose
        place the second takes (it is on screen longer), unless the second is transparent where the first
        is not (the frame before was cleared for the first only); then the second.

        Parameters
        ----------
        indices, colors, opaque : ndarray
            The frame, as `image` takes it.
        time : float
            When the frame is shown, in seconds; the first frame's time is the start.
        """
        self._times = (self._times[1], time)
        if self._t0 is None:
            self._t0 = time
        start = self._ticks(time)
        if self._pending is not None and start < self._pending[0] + MIN_DELAY:
            self.dropped += 1
            first_shows = self._pending[3]
            newly_clear = None if opaque is None else ~opaque if first_shows is None else first_shows & ~opaque
            if newly_clear is None or not newly_clear.any():  # what the frame before was cleared for still holds
                self._pending = (self._pending[0], indices, colors, opaque)  # on screen longer: shown in its place
            return b""
        self.frames += 1
        data = self._encode_pending(opaque)
        self._pending = (start, indices, colors, opaque)
        return data

    def _encode_pending(self, next_opaque: np.ndarray | None) -> bytes:
        """Encode the frame kept last, clearing what the next frame (``next_opaque``) shows transparent; the
        bytes of the frame before it, now complete."""
        if self._pending is None:
            return b""
        start, indices, colors, opaque = self._pending
        self._pending = None
        clear = None
        if next_opaque is not None:
            clear = ~next_opaque if opaque is None else opaque & ~next_opaque
        self._held.append((start, *self.image(indices, colors, opaque, clear), _disposal(clear)))
        if len(self._held) < 3:
            return b""
        return self._shown(self._held.pop(0), until=self._held[0][0])

    def end(self, end_time: float | None = None) -> bytes:
        """The frames still held and the trailer: the end of the GIF, after at least one `add`.

        The last frame lasts until ``end_time`` (seconds) when it is later than that frame's time, else as
        long as the interval before it (0.1 s after a lone frame).
        """
        data = self._encode_pending(None)
        before, last = self._times
        if end_time is None or end_time <= last:
            end_time = last + (last - before if before is not None else 0.1)
        end = self._ticks(end_time)
        if len(self._held) == 2 and end - self._held[1][0] < MIN_DELAY:
            self._held.pop()  # too close to the end: the frame before lasts until then
            self.frames -= 1
            self.dropped += 1
        ends = [held[0] for held in self._held[1:]] + [max(end, self._held[-1][0] + MIN_DELAY)]
        data += b"".join(self._shown(held, until) for held, until in zip(self._held, ends))
        self._held = []
        return data + b";"

    def _ticks(self, time: float) -> int:
        """``time`` in 1/100 s since the first frame."""
        return round((time - self._t0) * 100)

    def _shown(self, held: tuple[int, bytes, int | None, int], until: int) -> bytes:
        """A held frame's control extension and image, shown from its start ``until`` (1/100 s)."""
        start, image, transparent, disposal = held
        return self.control(until - start, transparent, disposal) + image
