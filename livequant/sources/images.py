"""Picture files: decoding (OpenCV) with the pixel limit checked in the header first, EXIF orientation, embedded
ICC profiles, and `Images`, a still or a list of them played as frames.
"""

from __future__ import annotations

import glob
import io
import itertools
import logging
import os
import re
import struct
import zlib

import cv2
import numpy as np

from livequant.errors import SourceError
from livequant.frames import WHITE, check_fps, split_alpha, to_rgb8
from livequant.icc import srgb_transform, to_srgb
from livequant.png import SIGNATURE as PNG_SIGNATURE
from livequant.sources.base import MAX_PIXELS, BaseSource, c_stderr, check_limit, check_max_pixels, quiet_opencv
from livequant.sources.scaling import resize, resize_rgba
from livequant.sources.sequences import is_glob, pictures_in

__all__ = ["Images", "MAX_PROFILE_BYTES", "MAX_TIFF_PAGES", "file_chunks", "is_chunked", "not_a_file",
           "profile_transform", "read_image", "read_image_alpha"]

log = logging.getLogger("livequant")

#: The most pages of a TIFF file counted (`not_a_file` refuses more than one; a crafted chain of directories could
#: hold millions).
MAX_TIFF_PAGES = 10_000
#: The largest ICC profile read from a PNG (profiles are kilobytes; this bounds what a crafted one unpacks to).
MAX_PROFILE_BYTES = 1 << 24


def not_a_file(kind: str, path: str) -> str | None:
    """The cause when ``path`` names no readable regular file (None for a URL or a file that has bytes)."""
    if "://" in path:
        return None
    if os.path.isdir(path):
        pictures = pictures_in(path) if kind == "video" else None
        also = f", or its pictures as '{pictures}'" if pictures else ""
        return f"cannot read {kind} '{path}': it is a directory; give a file{also}"
    if os.path.isfile(path) and os.path.getsize(path) == 0:
        return f"cannot read {kind} '{path}': the file is empty (0 bytes)"
    if os.path.isfile(path) and (pages := _tiff_pages(path)) > 1:  # (not a pipe: that would read from it)
        return (f"cannot read {kind} '{path}': it is a TIFF of {pages} pages, and a picture file is one picture "
                "to livequant; save the pages as pictures of their own (page-%03d.png) and give those")
    return None


def _tiff_pages(path: str) -> int:
    """The pages (images) of the TIFF file ``path``: its image file directories, counted along their chain up to
    `MAX_TIFF_PAGES` (a chain that loops or leaves the file ends there); 0 for any other file and one that cannot
    be read."""
    try:
        with open(path, "rb") as f:
            head = f.read(8)
            order = {b"II*\0": "<", b"MM\0*": ">"}.get(head[:4])
            if order is None or len(head) < 8:
                return 0
            at, seen = struct.unpack(order + "I", head[4:])[0], set()
            while at and at not in seen and len(seen) < MAX_TIFF_PAGES:
                f.seek(at)
                count = f.read(2)
                if len(count) < 2:  # past the end: no directory there
                    break
                seen.add(at)
                f.seek(12 * struct.unpack(order + "H", count)[0], os.SEEK_CUR)  # its entries, then the next's offset
                after = f.read(4)
                at = struct.unpack(order + "I", after)[0] if len(after) == 4 else 0
            return len(seen)
    except OSError:
        return 0


def _image_size(path: str) -> tuple[int, int] | None:
    """``(W, H)`` from the header of a PNG, JPEG, BMP, WebP, TIFF or PNM file; None for other formats."""
    with open(path, "rb") as f:
        head = f.read(32)
        if head.startswith(PNG_SIGNATURE) and head[12:16] == b"IHDR":
            return struct.unpack(">II", head[16:24])
        if head.startswith(b"BM") and len(head) >= 26:
            width, height = struct.unpack("<ii", head[18:26])
            return abs(width), abs(height)
        if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
            kind, body = head[12:16], head[20:30]
            if kind == b"VP8X":
                return 1 + int.from_bytes(body[4:7], "little"), 1 + int.from_bytes(body[7:10], "little")
            if kind == b"VP8L":
                bits = int.from_bytes(body[1:5], "little")
                return 1 + (bits & 0x3FFF), 1 + (bits >> 14 & 0x3FFF)
            if kind == b"VP8 ":
                width, height = struct.unpack("<HH", body[6:10])
                return width & 0x3FFF, height & 0x3FFF
        if head[:1] == b"P" and head[1:2] in b"123456" and len(head) > 2:
            numbers = re.findall(rb"\d+", re.sub(rb"#[^\n]*", b"", head[2:] + f.read(480)))
            return (int(numbers[0]), int(numbers[1])) if len(numbers) >= 2 else None
        if head[:4] in (b"II*\0", b"MM\0*"):
            order = "<" if head[0] == ord("I") else ">"
            f.seek(struct.unpack(order + "I", head[4:8])[0])
            count = struct.unpack(order + "H", f.read(2) or b"\0\0")[0]
            found = {}
            for entry in struct.iter_unpack(order + "HHI4s", f.read(12 * count)):
                tag, kind, _, value = entry
                if tag in (256, 257):
                    found[tag] = struct.unpack(order + ("H" if kind == 3 else "I"), value[: 2 if kind == 3 else 4])[0]
            return (found[256], found[257]) if len(found) == 2 else None
        if head.startswith(b"\xff\xd8"):
            f.seek(2)
            while (marker := f.read(4)) and len(marker) == 4 and marker[0] == 0xFF:
                length = int.from_bytes(marker[2:4], "big")
                if length < 2:  # a broken segment; OpenCV will say so
                    return None
                if 0xC0 <= marker[1] <= 0xCF and marker[1] not in (0xC4, 0xC8, 0xCC):  # a start-of-frame segment
                    height, width = struct.unpack(">xHH", f.read(5))
                    return width, height
                f.seek(length - 2, os.SEEK_CUR)
    return None


def profile_transform(path: str, data: bytes):
    """The conversion to sRGB of the ICC profile that the picture file ``path``'s bytes ``data`` embed
    (`livequant.icc.srgb_transform`); None where there is none or nothing to convert, and, with a warning, where
    the profile cannot be read."""
    profile = _embedded_profile(data)
    if profile is None:
        return None
    try:
        return srgb_transform(profile)
    except ValueError as e:
        log.warning("image '%s' embeds an ICC profile, but %s; its colours are taken as sRGB", path, e)
        return None


def _embedded_profile(data: bytes) -> bytes | None:
    """The ICC profile a PNG (iCCP chunk), WebP (ICCP chunk), JPEG (APP2 segments) or TIFF (tag 34675) file's
    bytes ``data`` embed; None if none, or if it is damaged."""
    if data[:4] in (b"II*\0", b"MM\0*"):
        return _tiff_profile(data)
    if data[:2] == b"\xff\xd8":
        parts = {body[12]: body[14:] for marker, body in _jpeg_segments(data)
                 if marker == 0xE2 and body[:12] == b"ICC_PROFILE\0" and len(body) > 14}  # sequence number, count
        return b"".join(parts[n] for n in sorted(parts)) or None
    for kind, body in _chunks(data):
        if kind == b"ICCP":
            return body
        if kind == b"iCCP":  # a name, NUL, the compression method (0: zlib), the compressed profile
            named = body.find(b"\0")
            if named < 0 or body[named + 1:named + 2] != b"\0":
                return None
            try:
                return zlib.decompressobj().decompress(body[named + 2:], MAX_PROFILE_BYTES) or None
            except zlib.error:
                return None
        if kind in (b"IDAT", b"VP8 ", b"VP8L", b"ANMF"):  # the picture: a profile comes before it
            return None
    return None


def _jpeg_segments(data: bytes):
    """``(marker, body)`` of each segment of a JPEG file's bytes before its first scan."""
    at = 2
    while at + 4 <= len(data) and data[at] == 0xFF:
        marker = data[at + 1]
        if marker == 0xFF:  # a fill byte
            at += 1
            continue
        if marker in (0xD9, 0xDA):  # the end, or the first scan: no header segment follows
            return
        length = struct.unpack(">H", data[at + 2:at + 4])[0]
        if length < 2:
            return
        yield marker, data[at + 4:at + 2 + length]
        at += 2 + length


def _exif_orientation(data: bytes) -> int:
    """The EXIF orientation (1-8; 1: as stored) of a PNG (its eXIf chunk) or WebP (its EXIF chunk) file's
    bytes; 1 where there is none or it cannot be read."""
    return next((_tiff_orientation(body) for kind, body in _chunks(data) if kind in (b"eXIf", b"EXIF")), 1)


def is_chunked(head: bytes) -> bool:
    """Whether a file that starts with ``head`` (12 bytes or more) is a PNG or a WebP: `_chunks` reads it."""
    return head[:8] == PNG_SIGNATURE or (head[:4] == b"RIFF" and head[8:12] == b"WEBP")


def _chunks(data: bytes):
    """``(type, data)`` of each chunk of a PNG or WebP file's bytes; none for other files."""
    return file_chunks(io.BytesIO(data), data[:12]) if is_chunked(data) else iter(())


def file_chunks(f, head: bytes, most: int | None = None):
    """``(type, data)`` of each chunk of an open PNG or WebP file that starts with ``head``: PNG's length, type,
    data, CRC; RIFF's type, length, data padded to even. The data of a chunk over ``most`` bytes is skipped
    (``b""``): an animation's controls are a few bytes, its images are not read."""
    png = head[:8] == PNG_SIGNATURE
    f.seek(8 if png else 12)
    while len(header := f.read(8)) == 8:
        if png:
            length, kind, after = struct.unpack(">I", header[:4])[0], header[4:], 4
        else:
            kind, length = header[:4], struct.unpack("<I", header[4:])[0]
            after = length & 1
        if most is None or length <= most:
            body = f.read(length)
            yield kind, body
            f.seek(after, os.SEEK_CUR)
        else:
            yield kind, b""
            f.seek(length + after, os.SEEK_CUR)


def _tiff_orientation(exif: bytes) -> int:
    """Tag 0x0112 of the first directory of EXIF data (a TIFF header, after "Exif\\0\\0" where written); 1 if
    absent or malformed."""
    exif = exif[6:] if exif[:6] == b"Exif\x00\x00" else exif
    entry = _tiff_entry(exif, 0x0112)
    value = None if entry is None else struct.unpack(entry[0] + "H", entry[2][:2])[0]
    return value if value is not None and 1 <= value <= 8 else 1


def _tiff_profile(tiff: bytes) -> bytes | None:
    """The ICC profile of a TIFF file's bytes (tag 34675 of its first directory: the profile's bytes, at an
    offset from the file's start); None if none, or if it is malformed."""
    entry = _tiff_entry(tiff, 34675)
    if entry is None:
        return None
    order, count, value = entry
    at = struct.unpack(order + "I", value)[0]
    return tiff[at:at + count] if count > 4 and at + count <= len(tiff) else None


def _tiff_entry(tiff: bytes, tag: int) -> tuple[str, int, bytes] | None:
    """``(byte order, count, value or offset)`` of ``tag`` in the first directory of TIFF data; None if it is
    absent or the data is malformed."""
    order = {b"II": "<", b"MM": ">"}.get(tiff[:2])
    if order is None:
        return None
    try:
        directory = struct.unpack(order + "I", tiff[4:8])[0]
        for n in range(struct.unpack(order + "H", tiff[directory:directory + 2])[0]):
            found, _, count = struct.unpack(order + "HHI", tiff[directory + 2 + 12 * n:directory + 10 + 12 * n])
            value = tiff[directory + 10 + 12 * n:directory + 14 + 12 * n]
            if found == tag and len(value) == 4:
                return order, count, value
    except struct.error:  # cut short
        return None
    return None


def _upright(image: np.ndarray, orientation: int) -> np.ndarray:
    """``image`` (rows first) turned and flipped as its EXIF ``orientation`` (1-8) says it is shown."""
    turned = {1: image, 2: image[:, ::-1], 3: image[::-1, ::-1], 4: image[::-1], 5: np.swapaxes(image, 0, 1),
              6: np.rot90(image, -1), 7: np.rot90(image, 2).swapaxes(0, 1), 8: np.rot90(image, 1)}
    return np.ascontiguousarray(turned[orientation])


def read_image(path: str, max_pixels: int = MAX_PIXELS, *, opaque: bool = False, managed: bool = True,
               background: tuple[int, int, int] = WHITE) -> np.ndarray:
    """Decode the picture in ``path`` as an ``(H, W, 3) uint8`` RGB frame, refusing one over ``max_pixels``
    (checked in the header before decoding where the format allows). Transparency is flattened on
    ``background``; with ``opaque``, the ``(N, 3)`` colours of the pixels that are not wholly transparent
    instead. With ``managed``, colours tagged with another RGB profile than sRGB are converted to sRGB
    (`livequant.icc`); without, the values are taken as they are (a palette file's colours, as an indexed PNG's
    table is).

    Raises
    ------
    SourceError
        If the file is missing, damaged, not a picture OpenCV reads, or over the limit.
    """
    image, transform = _decoded_image(path, max_pixels, managed)
    rgb = to_srgb(to_rgb8(image, background), transform)
    if not opaque:
        return rgb
    return rgb[image[..., 3] > 0] if image.ndim == 3 and image.shape[2] == 4 else rgb.reshape(-1, 3)


def read_image_alpha(path: str, max_pixels: int = MAX_PIXELS, size=None) -> tuple[np.ndarray, np.ndarray | None]:
    """Decode the picture in ``path`` as `read_image` does, keeping its transparency: ``(rgb, opaque)`` as
    `livequant.frames.split_alpha` gives them (``opaque`` None for a picture without alpha), resized to
    ``size`` ``(W, H)`` if given (`resize_rgba`)."""
    image, transform = _decoded_image(path, max_pixels, managed=True)
    if not (image.ndim == 3 and image.shape[2] == 4):
        rgb = to_srgb(to_rgb8(image), transform)
        return (rgb if size is None else resize(rgb, size)), None
    rgba = np.concatenate([to_rgb8(image[..., :3]), to_rgb8(image[..., 3])[..., :1]], axis=2)
    rgb, shown = split_alpha(rgba if size is None else resize_rgba(rgba, size))
    return to_srgb(rgb, transform), shown


def _decoded_image(path: str, max_pixels: int, managed: bool):
    """``(image, transform)``: the picture in ``path`` as OpenCV decodes it, upright, channels in RGB(A) order,
    and the transform of its colours to sRGB (None: none, or not ``managed``); see `read_image`."""
    if cause := not_a_file("image", path):
        raise SourceError(cause)
    if not os.path.isfile(path):
        raise SourceError(f"cannot read image '{path}': no such file; check the path")
    try:
        size = _image_size(path)
    except struct.error:
        raise SourceError(f"cannot read image '{path}': its header is cut short; is the file complete?") from None
    except OSError as e:
        raise SourceError(f"cannot read image '{path}': {e.strerror or e}; check that it is a readable file") from e
    if size is not None:
        check_limit("image", path, *size, max_pixels)
    try:
        with open(path, "rb") as f:  # OpenCV gets bytes, never the name (which it mishandles unless UTF-8)
            raw = f.read()
        data = np.frombuffer(raw, np.uint8)
    except OSError as e:
        raise SourceError(f"cannot read image '{path}': {e.strerror or e}; check that it is a readable file") from e
    # EXIF orientation is applied, as FFmpeg does for `transcode`: by OpenCV for a JPEG (no alpha), here for the
    # others, which are decoded unchanged to keep their alpha (OpenCV then ignores it)
    jpeg = raw[:2] == b"\xff\xd8"
    flags = cv2.IMREAD_ANYDEPTH | cv2.IMREAD_ANYCOLOR if jpeg else cv2.IMREAD_UNCHANGED
    try:  # the decoders' own messages become the cause in the one-line error, or a warning
        with quiet_opencv(), c_stderr() as said:
            image = cv2.imdecode(data, flags)
    except cv2.error as e:  # OpenCV's own size limit, a broken header
        raise SourceError(f"cannot read image '{path}': OpenCV refused it ({e.err}); is it a valid image?") from e
    last = said[0].strip().splitlines()[-1] if said and said[0].strip() else None
    if image is None:
        cause = f"it is damaged ({last})" if last else "not an image, or a format OpenCV cannot read"
        raise SourceError(f"cannot read image '{path}': {cause}; give a complete PNG, JPEG, BMP, TIFF or WebP file")
    if last:
        log.warning("image '%s' may be damaged: %s", path, last)
    if not jpeg:
        image = _upright(image, _exif_orientation(raw))
    check_limit("image", path, image.shape[1], image.shape[0], max_pixels)
    if image.ndim == 3 and image.shape[2] in (3, 4):
        image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB if image.shape[2] == 3 else cv2.COLOR_BGRA2RGBA)
    return image, profile_transform(path, raw) if managed else None


class Images(BaseSource):
    """One still image or a sequence of them, shown at ``fps``.

    Parameters
    ----------
    paths_or_glob : str, os.PathLike or sequence of them
        A file, a glob pattern (``"frames/*.png"``, sorted by name) or a list of files.
        16-bit images are scaled to 8 bits.
    fps : float
        Rate at which the sequence plays: frame ``i`` has time ``i / fps``.
    max_pixels : int
        Refuse an image with more pixels than this (`SourceError`); the header
        of PNG, JPEG, BMP, WebP, TIFF and PNM files is checked before decoding.
    repeat : bool
        Start again after the last image, for ever (a live preview of a still
        keeps showing it, so its keys act on it); ``frame_count`` is then None.
    alpha : bool
        Keep transparency: yield ``(frame, time, opaque)`` triples (`read_image_alpha`).
    background : (int, int, int)
        The colour transparent pixels are flattened on without ``alpha``.

    Attributes
    ----------
    has_alpha : bool
        With ``alpha``, whether the first picture has transparent pixels.
    """

    def __init__(self, paths_or_glob, fps: float = 10.0, *, max_pixels: int = MAX_PIXELS, repeat: bool = False,
                 alpha: bool = False, background: tuple[int, int, int] = WHITE):
        check_fps(fps)
        check_max_pixels(max_pixels)
        self._max_pixels = max_pixels
        if isinstance(paths_or_glob, (str, os.PathLike)):
            self.path = os.fspath(paths_or_glob)
            pattern = is_glob(self.path)
            paths = sorted(glob.glob(self.path)) if pattern else [self.path]
            if not paths:
                raise SourceError(f"no images match '{self.path}'; check the pattern")
        else:
            paths = [os.fspath(p) for p in paths_or_glob]
            if not paths:
                raise ValueError("paths_or_glob is an empty sequence; give at least one image")
            self.path = paths[0]
        self._paths = paths
        self.fps = float(fps)
        self.repeat = bool(repeat)
        self.frame_count = None if repeat else len(paths)
        self.alpha, self.background = bool(alpha), tuple(background)
        self._size = None  # resized to, with alpha
        self._first = self._read(paths[0])
        self.has_alpha = self.alpha and self._first[1] is not None
        self.size = (self._first[0].shape[1], self._first[0].shape[0])

    def scale(self, size) -> None:
        """Scale the pictures to ``size`` ``(W, H)``: with ``alpha``, with their transparency (`resize_rgba`);
        without, as `resize` does."""
        self.size = (int(size[0]), int(size[1]))
        self._size = self.size
        self._first = None  # read again, scaled

    def _read(self, path: str) -> tuple[np.ndarray, np.ndarray | None]:
        if self.alpha:
            return read_image_alpha(path, self._max_pixels, self._size)
        rgb = read_image(path, self._max_pixels, background=self.background)
        return (rgb if self._size is None else resize(rgb, self._size)), None

    def __iter__(self):
        for i in itertools.count() if self.repeat else range(len(self._paths)):
            n = i % len(self._paths)
            if n == 0 and self._first is None:
                self._first = self._read(self._paths[0])
            rgb, opaque = self._first if n == 0 else self._read(self._paths[n])
            yield (rgb, i / self.fps, opaque) if self.alpha else (rgb, i / self.fps)
