"""Animated outputs: GIF (frame differencing, colour tables), WebP and APNG, decoded frame by frame."""

from __future__ import annotations

import dataclasses
import struct

import av
import numpy as np
import pytest

from conftest import gif_blocks, write_gif_ending_on_a_pause
from livequant import Quantizer, presets
from livequant.cli import main
from livequant.errors import SinkError
from livequant.frames import QuantizedFrame
from livequant.gif import GifEncoder, split_file_parts
from livequant.kernels import lzw_encode, neighbour_gaps, transparent_codes
from livequant.palette import Palette
from livequant.sinks import AnimationWriter, GifWriter, VideoWriter

Image = pytest.importorskip("PIL.Image", reason="Pillow decodes animated WebP (FFmpeg's decoder does not)")


def _scene(i: int, k: int, height: int = 40, width: int = 56) -> np.ndarray:
    """Index map ``i`` of a still background (horizontal bands) with a 6 x 9 box moving right."""
    indices = (np.arange(height)[:, None] // 5 % k).repeat(width, axis=1).astype(np.uint8)
    indices[10:16, 3 * i : 3 * i + 9] = k - 1 - (i % max(k - 1, 1)) if k > 1 else 0
    return indices


def _qframes(colors_per_frame, times=None):
    palettes = [Palette(np.asarray(c, np.uint8)) for c in colors_per_frame]
    out = []
    for i, palette in enumerate(palettes):
        indices = _scene(i, len(palette))
        t = i / 10 if times is None else times[i]
        out.append(QuantizedFrame(palette.colors[indices], indices, palette, t))
    return out


def _pillow_frames(path):
    """Every frame of an animation as RGB arrays and its duration in ms, decoded by Pillow."""
    frames, durations = [], []
    with Image.open(path) as image:
        for i in range(image.n_frames):
            image.seek(i)
            frames.append(np.asarray(image.convert("RGB")))
            durations.append(image.info.get("duration"))
    return frames, durations


def _pyav_frames(path):
    with av.open(str(path)) as container:
        frames = list(container.decode(video=0))
    return [f.to_ndarray(format="rgb24") for f in frames], [f.time for f in frames]


def _write_all(sink, qframes):
    with sink:
        for q in qframes:
            sink.write(q)


# Frames without times


def _untimed_frames(n):
    """``n`` different frames through a `Quantizer` called as the README shows, without times."""
    q = Quantizer(4)
    colors = np.array([[0, 0, 0], [255, 0, 0], [0, 255, 0], [0, 0, 255]], np.uint8)
    return [q.process(np.ascontiguousarray(colors[_scene(i, 4)])) for i in range(n)]


@pytest.mark.parametrize(("name", "writer"), [
    ("out.gif", lambda path: GifWriter(path, fps=10)),
    ("out.webp", lambda path: AnimationWriter(path, fps=10)),
    ("out.apng", lambda path: AnimationWriter(path, fps=10)),
    ("out.mkv", lambda path: VideoWriter(path, 10, lossless=True)),
])
def test_frames_without_times_are_shown_a_frame_interval_apart(tmp_path, name, writer):
    """`Quantizer.process(frame)` gives no time: each frame follows the one before by ``1 / fps`` (the first
    at 0; the last as long as the one before)."""
    qframes = _untimed_frames(6)
    assert all(q.time is None for q in qframes)
    path = tmp_path / name
    _write_all(writer(path), qframes)
    if path.suffix == ".mkv":
        frames, times = _pyav_frames(path)
        np.testing.assert_allclose(times, np.arange(6) / 10, atol=2e-3)
    else:
        frames, durations = _pillow_frames(path)
        assert [round(d) for d in durations] == [100] * 6
    assert len(frames) == 6
    for qframe, frame in zip(qframes, frames):
        np.testing.assert_array_equal(frame, qframe.rgb)


@pytest.mark.parametrize("name", ["out.gif", "out.webp"])
def test_frames_without_times_need_a_frame_rate(tmp_path, name):
    writer = GifWriter if name == "out.gif" else AnimationWriter
    with pytest.raises(SinkError, match=r"^frame 2 has no time and '.*out\.(gif|webp)' no frame rate to place it "
                                        r"by; pass each frame's time \(Quantizer\.process\(frame, time\)\) or "
                                        r"the writer's fps=$"):
        _write_all(writer(tmp_path / name), _untimed_frames(2))
    assert not list(tmp_path.iterdir())  # neither the output nor a partial file


# GIF


@pytest.mark.parametrize("k", [1, 2, 16, 256])
def test_gif_frames_decode_exactly_and_are_cropped_to_the_change(tmp_path, rng, k):
    colors = rng.integers(0, 256, (k, 3), dtype=np.uint8)
    colors = np.unique(colors, axis=0) if k > 1 else colors  # distinct colours: a changed index is a change
    qframes = _qframes([colors] * 8)
    qframes.append(dataclasses.replace(qframes[-1], time=0.8))  # nothing changed, 1/10 s later
    path = tmp_path / "out.gif"
    _write_all(GifWriter(path), qframes)
    for decode in (_pyav_frames, _pillow_frames):
        frames = decode(path)[0]
        assert len(frames) == len(qframes)
        for q, frame in zip(qframes, frames):
            np.testing.assert_array_equal(frame, q.rgb)
    global_size, images = gif_blocks(path.read_bytes())
    assert global_size >= len(colors) and all(local == 0 for *_, local, _, _ in images)  # one palette: no local
    assert images[0][:4] == (0, 0, 56, 40)
    if k > 1:  # the box moved 3 pixels: the change is within rows 10..15 and columns 3i-3..3i+8
        for i, (x, y, w, h, *_) in enumerate(images[1:-1], start=1):
            assert 10 <= y and y + h <= 16 and 3 * i - 3 <= x and x + w <= 3 * i + 9
    assert images[-1][2:4] == (1, 1)  # an unchanged frame is one pixel


def test_gif_writes_a_local_table_only_for_frames_needing_new_colours(tmp_path, rng):
    first = np.unique(rng.integers(0, 256, (16, 3), dtype=np.uint8), axis=0)
    refit = first.copy()
    refit[0] = (1, 2, 3)  # a refit changed slot 0, which the top band uses
    qframes = _qframes([first, first, refit, refit, first])
    path = tmp_path / "out.gif"
    _write_all(GifWriter(path), qframes)
    frames, _ = _pyav_frames(path)
    for q, frame in zip(qframes, frames):
        np.testing.assert_array_equal(frame, q.rgb)
    _, images = gif_blocks(path.read_bytes())
    # frame 2 shows the new colour; frame 3 only moves the box (old colours); frame 4 goes back to the first
    assert [local > 0 for *_, local, _, _ in images] == [False, False, True, False, False]
    x, y, w, h, local, transparent, _ = images[2]
    assert (y, y + h) == (0, 16) and transparent is not None  # top band to the box; the rest unchanged
    assert local == 8  # the 4 colours the changed pixels use, and a free entry for transparency


def test_gif_unchanged_pixels_continue_the_run_before_them():
    changed = np.array([[1, 1, 0, 0, 0, 1, 0, 0], [0, 0, 1, 0, 0, 0, 0, 1]], bool)
    codes = np.array([[1, 1, 1, 2, -1, 3, 3, 0], [0, 5, 4, 4, 2, 2, -1, 6]], np.int32)  # -1: not in the table
    expected = [[1, 1, 1, 7, 7, 3, 3, 7], [7, 7, 4, 4, 7, 7, 7, 6]]  # scan order: row 2 follows row 1's end
    indices = np.arange(codes.size, dtype=np.uint8).reshape(codes.shape)  # pixel i has entry i: lut is codes
    runs, plain = transparent_codes(indices, changed, codes.ravel(), 7)
    np.testing.assert_array_equal(runs, expected)
    np.testing.assert_array_equal(plain, np.where(changed, codes, 7))


def test_gif_writes_a_frame_over_the_last_the_smaller_way():
    colors = np.unique(np.random.default_rng(0).integers(0, 256, (40, 3), dtype=np.uint8), axis=0)[:15]
    sizes_differ = 0  # 15 colours: a table of 16 has one entry left for transparency
    for seed in range(8):
        rng = np.random.default_rng(seed)
        first = np.repeat(rng.integers(0, 15, (24, 4)), 8, axis=1).astype(np.uint8)  # runs of 8 along rows
        second = first.copy()
        moved = rng.random(first.shape) < rng.uniform(0.1, 0.6)
        second[moved] = rng.integers(0, 15, moved.sum())
        encoder = GifEncoder(32, 24, colors)
        encoder.image(first, colors)
        image, transparent = encoder.image(second, colors)
        changed = second != first  # distinct colours: a changed index is a changed colour
        rows, cols = np.flatnonzero(changed.any(axis=1)), np.flatnonzero(changed.any(axis=0))
        box = (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))
        ways = transparent_codes(second[box], changed[box], np.arange(len(colors), dtype=np.int32), transparent)
        np.testing.assert_array_equal(ways[1], np.where(changed[box], second[box], transparent))
        sizes = [len(lzw_encode(codes.ravel(), 4)) for codes in ways]
        n = min(sizes)
        assert len(image) == 10 + 1 + n + -(-n // 255) + 1  # descriptor (no local table), code size, blocks, end
        sizes_differ += sizes[0] != sizes[1]
    assert sizes_differ  # the choice was made


def test_gif_transparency_never_takes_a_used_colour(tmp_path, rng):
    colors = np.unique(rng.integers(0, 256, (300, 3), dtype=np.uint8), axis=0)[:256]
    first = rng.integers(0, 256, (16, 16)).astype(np.uint8)
    second = first.copy()
    second[4:8, 4:8] = rng.integers(0, 256, (4, 4))
    palette = Palette(colors)
    qframes = [QuantizedFrame(colors[i], i, palette, t) for t, i in enumerate([first, second])]
    path = tmp_path / "full.gif"
    _write_all(GifWriter(path), qframes)
    frames, _ = _pyav_frames(path)
    np.testing.assert_array_equal(frames[1], qframes[1].rgb)
    _, images = gif_blocks(path.read_bytes())
    transparent = images[1][5]
    if transparent is not None:  # an index the 16 changed pixels do not use
        assert transparent not in set(second[4:8, 4:8].ravel().tolist())


def test_gif_delays_and_loop(tmp_path, rng):
    colors = np.unique(rng.integers(0, 256, (8, 3), dtype=np.uint8), axis=0)
    times = [0.0, 0.1, 0.25, 0.3]
    path = tmp_path / "once.gif"
    _write_all(GifWriter(path, loop=-1), _qframes([colors] * 4, times))
    data = path.read_bytes()
    assert [delay for *_, delay in gif_blocks(data)[1]] == [10, 15, 5, 5]
    assert b"NETSCAPE2.0" not in data
    path = tmp_path / "thrice.gif"
    _write_all(GifWriter(path, loop=3), _qframes([colors] * 2))
    data = path.read_bytes()
    assert data[data.index(b"NETSCAPE2.0") + 13 : data.index(b"NETSCAPE2.0") + 15] == b"\x03\x00"


def test_gif_packets_split_into_the_file_header_and_frames_without_the_trailer(tmp_path, rng):
    colors = np.unique(rng.integers(0, 256, (8, 3), dtype=np.uint8), axis=0)
    path = tmp_path / "loop.gif"
    _write_all(GifWriter(path, loop=3), _qframes([colors] * 3))
    with av.open(str(path)) as container:
        packets = [bytes(packet) for packet in container.demux(video=0) if packet.size]
    parts = [split_file_parts(packet) for packet in packets]
    header = parts[0][0]
    assert header.startswith(b"GIF89a") and header.endswith(b"NETSCAPE2.0\x03\x01\x03\x00\x00")
    assert [h for h, _ in parts[1:]] == [b"", b""] and packets[-1].endswith(b";")
    assert all(frame.startswith(b"\x21\xf9") and frame.endswith(b"\x00") for _, frame in parts)
    assert header + b"".join(frame for _, frame in parts) + b";" == path.read_bytes()


@pytest.mark.parametrize(("times", "delays"), [
    ([0.0, 0.01, 0.03, 0.1, 0.11], [3, 7, 2]),  # 0.01 and 0.11 follow a kept frame within 2/100 s: left out
    ([0.0, 0.1, 0.111, 0.12], [10, 3]),  # 0.12 would end 1/100 s later: left out, the one before lasts instead
])
def test_gif_delays_are_at_least_2_100_s_and_add_up_to_the_duration(times, delays):
    colors = np.array([[0, 0, 0], [255, 255, 255]], np.uint8)
    encoder = GifEncoder(4, 4, colors)
    data = encoder.header()
    for i, t in enumerate(times):
        data += encoder.add(np.full((4, 4), i % 2, np.uint8), colors, t)
    data += encoder.end()
    assert [delay for *_, delay in gif_blocks(data)[1]] == delays
    assert (encoder.frames, encoder.dropped) == (len(delays), len(times) - len(delays))


@pytest.mark.parametrize(("transparent", "shown"), [(False, [0, 2, 3]), (True, [0, 1, 3])])
def test_of_two_gif_frames_under_2_100_s_apart_the_second_takes_the_place_of_the_first(tmp_path, transparent,
                                                                                          shown):
    """Frame 1 was on screen 1/100 s and frame 2 for 14/100: frame 1 was kept for both, and frame 2 never showed.
    Unless frame 2 is transparent where frame 1 is not: frame 0 was cleared for frame 1 only."""
    colors = np.array([[200, 0, 0], [0, 200, 0], [0, 0, 200], [200, 200, 0]], np.uint8)
    clear = np.ones((4, 4), bool)
    clear[0, 0] = not transparent
    encoder = GifEncoder(4, 4, colors, alpha=True)
    data = encoder.header()
    for i, t in enumerate([0.0, 0.1, 0.11, 0.25]):
        data += encoder.add(np.full((4, 4), i, np.uint8), colors, t, clear if i == 2 else None)
    (tmp_path / "out.gif").write_bytes(data + encoder.end(0.35))
    frames, durations = _pillow_frames(tmp_path / "out.gif")
    assert [int(np.argmax((colors == frame[1, 1]).all(axis=1))) for frame in frames] == shown
    assert durations == [100, 150, 100] and (encoder.frames, encoder.dropped) == (3, 1)


@pytest.mark.parametrize(("end_time", "last"), [(None, 10), (1.3, 100), (0.3, 10), (0.32, 2)])
def test_a_gif_s_last_frame_lasts_until_the_end_time_given(end_time, last):
    """Until a later end time (at least 2/100 s), else as long as the interval before it."""
    colors = np.array([[0, 0, 0], [255, 255, 255]], np.uint8)
    encoder = GifEncoder(4, 4, colors)
    data = encoder.header()
    for i, t in enumerate([0.0, 0.1, 0.2, 0.3]):
        data += encoder.add(np.full((4, 4), i % 2, np.uint8), colors, t)
    data += encoder.end(end_time)
    assert [delay for *_, delay in gif_blocks(data)[1]] == [10, 10, 10, last]


@pytest.mark.parametrize("n_colors", [256, 16, 4])  # code sizes 8, 4, 2: each its own dictionary layout
def test_lzw_round_trips_through_two_decoders_past_4096_codes(tmp_path, rng, n_colors):
    noise = rng.integers(0, n_colors, (300, 200)).astype(np.uint8)  # random: the code table fills and clears often
    colors = (np.arange(3 * n_colors).reshape(n_colors, 3) * 7 % 256).astype(np.uint8)
    encoder = GifEncoder(200, 300, colors)
    path = tmp_path / "noise.gif"
    image, transparent = encoder.image(noise, colors)
    path.write_bytes(encoder.header() + encoder.control(10, transparent) + image + b";")
    np.testing.assert_array_equal(_pyav_frames(path)[0][0], colors[noise])
    np.testing.assert_array_equal(_pillow_frames(path)[0][0], colors[noise])
    assert len(lzw_encode(np.zeros(1, np.uint8), 2)) > 0


def _gif_bytes(qframes, lossy):
    encoder = GifEncoder(qframes[0].indices.shape[1], qframes[0].indices.shape[0], qframes[0].palette.colors,
                         lossy=lossy)
    data = encoder.header() + b"".join(encoder.add(q.indices, q.palette.colors, q.time) for q in qframes)
    return data + encoder.end()


def _noisy_pan(n: int, height: int = 72, width: int = 96, seed: int = 0) -> list[np.ndarray]:
    """A diagonal colour ramp panning right a pixel a frame, under sensor-like noise (sigma 2 levels)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[:height, : width + n]
    scene = np.dstack([x * 2, y * 3, (x + y) * 1.5]) % 256
    return [np.clip(scene[:, i : i + width] + rng.normal(0, 2, (height, width, 3)), 0, 255).astype(np.uint8)
            for i in range(n)]


@pytest.mark.parametrize("levels", [8.0, 16.0])
def test_a_lossy_gif_shows_every_pixel_within_its_levels_in_a_smaller_file(tmp_path, levels):
    """Decoded frame by frame, each pixel of the lossy GIF lies within ``levels`` (RGB distance) of the exact
    GIF's, the file is smaller, and still pixels stay still: the encoder's picture of what is shown is right."""
    with Quantizer(256) as quantizer:
        qframes = [quantizer.process(frame, time=i / 10) for i, frame in enumerate(_noisy_pan(12))]
    paths = {}
    for lossy in (0.0, levels):
        paths[lossy] = tmp_path / f"lossy-{lossy:g}.gif"
        paths[lossy].write_bytes(_gif_bytes(qframes, lossy))
    exact, _ = _pyav_frames(paths[0.0])
    lossy, _ = _pyav_frames(paths[levels])
    assert len(lossy) == len(exact) == len(qframes)
    for q, want, got in zip(qframes, exact, lossy):
        np.testing.assert_array_equal(want, q.rgb)
        assert np.sqrt(((got.astype(np.int32) - want) ** 2).sum(axis=2)).max() <= levels
    assert paths[levels].stat().st_size < 0.97 * paths[0.0].stat().st_size
    still = [(got != before).any(axis=2) & (want == want_before).all(axis=2)
             for before, got, want_before, want in zip(lossy, lossy[1:], exact, exact[1:])]
    assert not any(moved.any() for moved in still)  # what the exact GIF holds still, the lossy one does too


def test_a_lossy_gif_keeps_flat_areas_exact_and_strays_no_farther_than_the_neighbours(tmp_path, rng):
    """A stray colour shows on a flat area and is lost in a busy one: a pixel drawn may take another code no
    farther from its colour than its farthest neighbour's colour is. Flat bands of greys 4 levels apart beside
    noise: the bands stay exact but at their edges, and the noise packs smaller."""
    grays = Palette(np.repeat(np.arange(256, dtype=np.uint8)[:, None], 3, axis=1))
    indices = np.repeat(100 + 4 * (np.arange(48) // 12), 64).reshape(48, 64).T.copy().astype(np.uint8)
    indices = np.concatenate([indices, rng.integers(100, 140, (64, 48), dtype=np.uint8)], axis=1)
    qframes = [QuantizedFrame(grays.colors[indices], indices, grays, 0.0)]
    path = tmp_path / "bands.gif"
    path.write_bytes(_gif_bytes(qframes, 24.0))
    shown = _pyav_frames(path)[0][0][..., 0].astype(int)
    wanted = indices.astype(int)
    padded = np.pad(wanted, 1, mode="edge")
    farthest = np.max([np.abs(padded[1 + dy:65 + dy, 1 + dx:97 + dx] - wanted)
                       for dy in (-1, 0, 1) for dx in (-1, 0, 1)], axis=0) * np.sqrt(3)
    assert (np.abs(shown - wanted) * np.sqrt(3) <= farthest).all()
    assert (shown[farthest == 0] == wanted[farthest == 0]).all() and (farthest == 0).sum() > 1000
    assert (shown[:, 48:] != wanted[:, 48:]).mean() > 0.1  # the noise took other codes
    assert path.stat().st_size < 0.9 * len(_gif_bytes(qframes, 0.0))


def test_neighbour_gaps_are_the_farthest_neighbours_squared_distances(rng):
    colours = rng.integers(0, 1 << 24, (9, 13)).astype(np.uint32)
    colours[rng.random((9, 13)) < 0.2] = 1 << 24  # no colour: counts as far
    rgb = np.stack([colours >> 16, (colours >> 8) & 255, colours & 255], axis=-1).astype(np.int64)
    for most in (50, 1 << 20):
        want = np.zeros((9, 13), np.int64)
        for y, x in np.ndindex(9, 13):
            for v, u in np.ndindex(3, 3):
                v, u = y + v - 1, x + u - 1
                if 0 <= v < 9 and 0 <= u < 13:
                    far = most if colours[v, u] >> 24 else ((rgb[y, x] - rgb[v, u]) ** 2).sum()
                    want[y, x] = max(want[y, x], far)
        shows = colours < 1 << 24  # a pixel that shows no colour has no reach to speak of
        np.testing.assert_array_equal(neighbour_gaps(colours, most)[shows], np.minimum(want, most)[shows])


def test_a_lossy_gif_frees_an_index_for_transparency_when_changed_pixels_use_all_256_colours(tmp_path, rng):
    """Half the picture changes, through all 256 greys: without a free index every pixel would be drawn. Lossy
    moves the pixels of one grey to the next (1 level a channel), and the rest shows through the transparent
    index."""
    grays = Palette(np.repeat(np.arange(256, dtype=np.uint8)[:, None], 3, axis=1))
    first = rng.permutation(np.arange(64 * 64) % 256).reshape(64, 64).astype(np.uint8)
    second = first.copy()
    second[:32] = rng.permutation(np.arange(32 * 64) % 256).reshape(32, 64)
    qframes = [QuantizedFrame(grays.colors[i], i, grays, t) for t, i in enumerate([first, second])]
    for lossy, transparent in ((0.0, None), (2.0, True)):
        path = tmp_path / f"grays-{lossy:g}.gif"
        path.write_bytes(_gif_bytes(qframes, lossy))
        _, images = gif_blocks(path.read_bytes())
        assert (images[1][5] is not None) == bool(transparent)
        frames, _ = _pyav_frames(path)
        assert np.abs(frames[1].astype(int) - qframes[1].rgb).max() <= lossy
        np.testing.assert_array_equal(frames[1][32:], frames[0][32:])  # the still half shows through


def test_gif_refuses_pictures_over_65535_pixels_wide(tmp_path):
    indices = np.zeros((1, 65536), np.uint8)
    palette = Palette(np.array([[0, 0, 0]], np.uint8))
    with pytest.raises(SinkError, match="65535"):
        with GifWriter(tmp_path / "wide.gif") as sink:
            sink.write(QuantizedFrame(palette.colors[indices], indices, palette))
    assert not list(tmp_path.iterdir())


# WebP and APNG


def _riff_chunks(path):
    """``(loop count, [frame durations in ms])`` of an animated WebP."""
    data, pos, loop, durations = path.read_bytes(), 12, None, []
    while pos < len(data):
        tag, size = data[pos : pos + 4], struct.unpack("<I", data[pos + 4 : pos + 8])[0]
        body = data[pos + 8 : pos + 8 + size]
        if tag == b"ANIM":
            loop = struct.unpack("<H", body[4:6])[0]
        elif tag == b"ANMF":
            durations.append(int.from_bytes(body[12:15], "little"))
        pos += 8 + size + (size & 1)
    return loop, durations


@pytest.mark.parametrize("suffix", [".webp", ".apng"])
@pytest.mark.parametrize("k", [2, 16, 256])
def test_lossless_animations_keep_every_frame_exactly(tmp_path, rng, suffix, k):
    colors = rng.integers(0, 256, (k, 3), dtype=np.uint8)
    refit = colors.copy()
    refit[0] = 255 - refit[0]
    times = [0.0, 0.1, 0.25, 0.3, 0.4]
    qframes = _qframes([colors, colors, refit, refit, refit], times)
    path = tmp_path / f"out{suffix}"
    _write_all(AnimationWriter(path), qframes)
    frames, durations = _pillow_frames(path)
    assert len(frames) == len(qframes)
    for q, frame in zip(qframes, frames):
        np.testing.assert_array_equal(frame, q.rgb)
    assert [round(d) for d in durations] == [100, 150, 50, 100, 100]  # the last as long as the one before
    if suffix == ".apng":
        frames, decoded_times = _pyav_frames(path)  # FFmpeg reads APNG too
        assert len(frames) == len(qframes) and decoded_times == pytest.approx(times, abs=1e-3)
    else:
        assert _riff_chunks(path) == (0, [100, 150, 50, 100, 100])  # 0: loops forever


@pytest.mark.parametrize("suffix", [".webp", ".apng"])
@pytest.mark.parametrize(("end", "last"), [(None, 100), (2.0, 1600), (0.45, 50)])
def test_an_animation_s_last_frame_lasts_until_the_end_given(tmp_path, rng, suffix, end, last):
    """Neither format takes the last frame's duration from FFmpeg's packets: each gets it written into its last
    frame, so it lasts until `end_at` says. A WebP's last frame could not be shorter than its mean frame (100
    ms here, for 50); an APNG's was as long as the one before, then was followed by a repeat of it."""
    colors = rng.integers(0, 256, (16, 3), dtype=np.uint8)
    qframes = _qframes([colors] * 5, [0.0, 0.1, 0.25, 0.3, 0.4])
    path = tmp_path / f"out{suffix}"
    with AnimationWriter(path) as sink:
        for qframe in qframes:
            sink.write(qframe)
        if end is not None:
            sink.end_at(end)
    frames, durations = _pillow_frames(path)
    assert [round(d) for d in durations] == [100, 150, 50, 100, last] and len(frames) == 5
    for qframe, frame in zip(qframes, frames):
        np.testing.assert_array_equal(frame, qframe.rgb)
    if suffix == ".apng":  # FFmpeg reads it so too
        with av.open(str(path), format="apng") as container:
            decoded = [(round(float(f.time), 3), round(f.duration * f.time_base * 1000)) for f in
                       container.decode(video=0)]
        assert decoded == [(0.0, 100), (0.1, 150), (0.25, 50), (0.3, 100), (0.4, last)]


@pytest.mark.parametrize("suffix", [".webp", ".apng"])
def test_an_animation_of_a_gif_ending_on_a_pause_keeps_it(tmp_path, suffix):
    write_gif_ending_on_a_pause(tmp_path / "pause.gif")
    out = tmp_path / f"out{suffix}"
    assert main(["transcode", str(tmp_path / "pause.gif"), str(out), "-q", "-k", "4"]) == 0
    _, durations = _pillow_frames(out)
    assert [round(d) for d in durations[:3]] + [round(sum(durations[3:]))] == [100, 100, 100, 1000]


@pytest.mark.parametrize(("end", "quality", "loop", "duration"), [
    (None, None, 0, 3000), (5.0, None, 0, 5000), (None, 80, 2, 3000)])
def test_a_webp_of_identical_frames_keeps_its_duration(tmp_path, end, quality, loop, duration):
    """libwebp merges each frame into the one before when they are the same, and writes the one frame left
    as a still picture: 3 s of a still scene came out as a picture without a duration."""
    qframe = _qframes([presets.get("pico8").colors])[0]
    path = tmp_path / "still_scene.webp"
    with AnimationWriter(path, quality=quality, loop=loop) as sink:
        for i in range(30):
            sink.write(dataclasses.replace(qframe, time=i / 10))
        if end is not None:
            sink.end_at(end)
    assert _riff_chunks(path) == ({0: 0, 2: 3}[loop], [duration])
    frames, durations = _pillow_frames(path)
    assert durations == [duration]
    error = np.abs(frames[0].astype(int) - qframe.rgb).mean()
    assert error == 0 if quality is None else error < 12


def test_webp_lossy_and_loop_counts(tmp_path, rng):
    colors = rng.integers(0, 256, (16, 3), dtype=np.uint8)
    qframes = _qframes([colors] * 4)
    path = tmp_path / "lossy.webp"
    _write_all(AnimationWriter(path, quality=90, loop=2), qframes)
    frames, _ = _pillow_frames(path)
    assert len(frames) == 4
    for q, frame in zip(qframes, frames):
        error = np.abs(frame.astype(int) - q.rgb).mean()
        assert 0 < error < 12  # lossy, and close
    assert _riff_chunks(path)[0] == 3  # plays 3 times: repeats twice
    path = tmp_path / "once.apng"
    _write_all(AnimationWriter(path, loop=-1), qframes)
    with Image.open(path) as image:
        assert image.info["loop"] == 1


@pytest.mark.parametrize(("path", "options", "error"), [
    ("out.apng", {"quality": 50}, "quality applies to .webp only"),
    ("out.webp", {"quality": 101}, "0..100"),
    ("out.mkv", {}, "use .webp or .apng"),
    ("out.webp", {"loop": -2}, "loop must be"),
])
def test_bad_animation_arguments(tmp_path, path, options, error):
    with pytest.raises(ValueError, match=error):
        AnimationWriter(tmp_path / path, **options)


@pytest.mark.parametrize("lossy", [-20, 443, float("nan"), "8", True])
def test_a_gif_s_lossy_outside_0_to_442_levels_is_refused(tmp_path, lossy):
    """-20 wrote a GIF as lossy as 20, '8' failed on the second frame and NaN on the first."""
    with pytest.raises(ValueError, match=r"lossy is how far a pixel may be shown from its colour, in RGB levels "
                                         r"0\.\.442 \(0: exact\), got "):
        GifWriter(tmp_path / "out.gif", lossy=lossy)
    assert not list(tmp_path.iterdir())


# through the command line


@pytest.mark.parametrize("suffix", [".gif", ".webp", ".apng"])
def test_transcode_to_animations_keeps_every_frame_in_the_palette(tmp_path, clip, suffix):
    out = tmp_path / f"out{suffix}"
    assert main(["transcode", str(clip.path), str(out), "--palette", "pico8", "-q"]) == 0
    frames, durations = _pillow_frames(out)
    assert len(frames) == clip.frames and frames[0].shape == (48, 64, 3)
    pico8 = {tuple(c) for c in presets.get("pico8").colors.tolist()}
    for frame in frames:
        assert {tuple(c) for c in frame.reshape(-1, 3).tolist()} <= pico8
    assert sum(durations) == pytest.approx(1000 * clip.duration, abs=10 * clip.frames)


def test_transcode_gif_with_a_global_palette_has_one_colour_table(tmp_path, clip, capsys):
    out = tmp_path / "global.gif"
    assert main(["transcode", str(clip.path), str(out), "-k", "8", "--gif-palette", "global", "-q"]) == 0
    global_size, images = gif_blocks(out.read_bytes())
    assert len(images) == clip.frames and global_size == 8 and all(local == 0 for *_, local, _, _ in images)
    frames, _ = _pyav_frames(out)
    colours = set()
    for frame in frames:
        colours |= {tuple(c) for c in frame.reshape(-1, 3).tolist()}
    assert len(colours) <= 8
    assert main(["transcode", "--help"]) == 0
    assert "reads the input twice" in " ".join(capsys.readouterr().out.split())


@pytest.mark.parametrize(("argv", "status", "message"), [
    (["{clip}", "{tmp}/still.png"], 1, "'{tmp}/still.png' holds one picture but the input has more frames; write"),
    (["{clip}", "{tmp}/still.jpg"], 1, "{tmp}/still.apng, .webp or .gif for an animation"),
    (["{clip}", "{tmp}/out.gif", "--quality", "80"], 2, "--quality applies to animated WebP (.webp) only"),
    (["{clip}", "{tmp}/out.apng", "--quality", "80"], 2, "--quality applies to animated WebP"),
    (["{clip}", "{tmp}/out.gif", "--gif-palette", "global", "--palette", "pico8"], 2, "leave out --palette"),
    (["{clip}", "{tmp}/out.mp4", "--gif-lossy", "8"], 2, "--gif-lossy applies to GIF (.gif) only"),
])
def test_outputs_that_cannot_hold_the_animation_are_refused(tmp_path, clip, capsys, argv, status, message):
    argv = [a.format(clip=clip.path, tmp=tmp_path) for a in argv]
    assert main(["transcode", *argv, "-q"]) == status
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message.format(tmp=tmp_path) in err, err
    assert not list(tmp_path.iterdir())  # nothing written, no partial file left


def test_a_one_frame_input_still_makes_a_png(tmp_path, make_clip):
    one = make_clip("one.mp4", frames=1)
    out = tmp_path / "still.png"
    assert main(["transcode", str(one.path), str(out), "-k", "4", "-q"]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
