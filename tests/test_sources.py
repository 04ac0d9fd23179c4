"""Sources read real media written in the tests: clips from PyAV, images from OpenCV."""

import itertools
import re
import struct
import time
from fractions import Fraction

import av
import cv2
import numpy as np
import pytest

from conftest import ADOBE_RGB_COLORANTS, ADOBE_RGB_GAMMA, garble_pictures, icc_profile, write_clip
from livequant.errors import SourceError
from livequant.hdr import HLG, PEAK_NITS, PQ, bt2020_to_bt709, content_peak, to_sdr
from livequant.sinks import AnimationWriter, GifWriter
from livequant.sources import (Images, Looping, TestPattern, VideoFile, Webcam, loop_count, open_source,
                               read_image)


def _check_frames(frames, size):
    for frame in frames:
        assert frame.shape == (size[1], size[0], 3) and frame.dtype == np.uint8 and frame.flags.c_contiguous


# VideoFile


#: BT.2020's YUV matrix (AVCOL_SPC_BT2020_NCL) for PyAV's reformat, by number: PyAV before 18 has no name for it.
BT2020 = 9
#: BT.2100 code values (0..1) of HDR reference white, 203 nits (BT.2408), and of 1000 nits.
REFERENCE_WHITE = {PQ: 0.5806, HLG: 0.75}
THOUSAND_NITS = {PQ: 0.7518, HLG: 1.0}


def _bt2020_file(path, transfer: int, patches) -> None:
    """Two frames of 10-bit video in BT.2020 primaries (FFV1) tagged with ``transfer``, of vertical stripes of
    the R'G'B' code values (0..1) ``patches``."""
    width = 16 * len(patches)
    rgb = np.repeat(np.round(np.array(patches) * 65535).astype(np.uint16), 16, axis=0)[None].repeat(16, axis=0)
    with av.open(str(path), "w") as out:
        video = out.add_stream("ffv1", rate=10)
        video.width, video.height, video.pix_fmt = width, 16, "yuv444p10le"
        context = video.codec_context
        context.color_trc, context.color_primaries, context.colorspace, context.color_range = transfer, 9, BT2020, 1
        for _ in range(2):
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb48le").reformat(
                format="yuv444p10le", dst_colorspace=BT2020, dst_color_range=1)
            frame.colorspace, frame.color_range = BT2020, 1
            out.mux(video.encode(frame))
        out.mux(video.encode(None))


@pytest.mark.parametrize("transfer", [PQ, HLG])
def test_hdr_video_is_tone_mapped_to_sdr(tmp_path, caplog, transfer):
    """Black stays black, HDR reference white comes out a light grey (the same for PQ and HLG, as BT.2408 has
    them the same light), 1000 nits white, and BT.2020's green the most saturated sRGB green."""
    white, peak = REFERENCE_WHITE[transfer], THOUSAND_NITS[transfer]
    patches = [(0, 0, 0), (white,) * 3, (peak,) * 3, (0, white, 0)]
    _bt2020_file(tmp_path / "hdr.mkv", transfer, patches)
    with caplog.at_level("INFO", logger="livequant"), VideoFile(tmp_path / "hdr.mkv") as source:
        frames = [frame for frame, _ in source]
    assert len(frames) == 2 and "tone-mapped" in caplog.text
    shown = frames[0][8, 8::16].astype(int)
    assert (shown[0] <= 1).all() and (shown[2] >= 254).all()
    assert (abs(shown[1] - 231) <= 2).all()  # 80% of white's light
    assert shown[3][1] >= 250 and shown[3][[0, 2]].max() <= 3  # read as it is: (0, 150, 0)-ish and dull


def _pq_code(nits: float) -> float:
    """PQ's code value (0..1) for ``nits`` (SMPTE ST 2084's inverse EOTF)."""
    m1, m2, c1, c2, c3 = 2610 / 16384, 2523 / 4096 * 128, 3424 / 4096, 2413 / 4096 * 32, 2392 / 4096 * 32
    y = (nits / 10000) ** m1
    return ((c1 + c2 * y) / (1 + c3 * y)) ** m2


def test_hdr10_video_is_tone_mapped_to_its_own_peak(tmp_path, caplog):
    """A PQ video that says its brightest pixel is 4000 nits (MaxCLL) shows 1000 and 2000 nits apart and under
    white, where one that says nothing shows 1000 nits and above white."""
    assert abs(_pq_code(203) - REFERENCE_WHITE[PQ]) < 1e-3 and abs(_pq_code(1000) - THOUSAND_NITS[PQ]) < 1e-3
    patches = [(_pq_code(nits),) * 3 for nits in (1000, 2000, 4000)]
    path = tmp_path / "hdr10.mkv"
    rgb = np.repeat(np.round(np.array(patches) * 65535).astype(np.uint16), 16, axis=0)[None].repeat(16, axis=0)
    params = "log-level=error:hdr10=1:max-cll=4000,400"
    with av.open(str(path), "w") as out:
        video = out.add_stream("libx265", rate=10, options={"x265-params": params})
        video.width, video.height, video.pix_fmt = rgb.shape[1], 16, "yuv420p10le"
        context = video.codec_context
        context.color_trc, context.color_primaries, context.colorspace, context.color_range = PQ, 9, BT2020, 1
        frame = av.VideoFrame.from_ndarray(rgb, format="rgb48le").reformat(
            format="yuv420p10le", dst_colorspace=BT2020, dst_color_range=1)
        packets = video.encode(frame) + video.encode(None)
        for packet in packets:  # libx265 leaves a lone frame's decode time unset: garbage, refused when over its pts
            packet.dts = packet.pts
        out.mux(packets)
    with caplog.at_level("INFO", logger="livequant"), VideoFile(path) as source:
        shown = next(iter(source))[0][8, 8::16, 1].astype(int)
    assert "4000 nits" in caplog.text
    assert shown[0] <= 252 and shown[0] < shown[1] <= shown[2] and shown[2] >= 254
    _bt2020_file(tmp_path / "unsaid.mkv", PQ, patches)
    with VideoFile(tmp_path / "unsaid.mkv") as source:
        assert (next(iter(source))[0][8, 8::16] >= 254).all()


def test_a_pq_video_s_peak_is_its_maxcll_else_its_mastering_display_s():
    light = struct.pack("=II", 4000, 400)
    mastering = struct.pack("=22i", *[1] * 18, 2000, 1, 1, 1)  # max luminance 2000/1, has_luminance
    assert content_peak(light, mastering) == 4000
    assert content_peak(struct.pack("=II", 0, 0), mastering) == 2000  # MaxCLL 0: unknown
    assert content_peak(None, mastering) == 2000
    assert content_peak(None, struct.pack("=22i", *[1] * 18, 2000, 1, 1, 0)) == PEAK_NITS  # no luminance said
    assert content_peak(struct.pack("=II", 50, 0), None) == PEAK_NITS  # not believed
    assert content_peak(None, None) == PEAK_NITS


def test_sdr_video_is_read_as_it_is(tmp_path, caplog):
    path = tmp_path / "sdr.mkv"
    with av.open(str(path), "w") as out:
        video = out.add_stream("libx264rgb", rate=10)
        video.width, video.height, video.pix_fmt = 32, 32, "rgb24"
        video.codec_context.color_trc = 1  # BT.709
        for i in range(3):
            frame = av.VideoFrame.from_ndarray(np.full((32, 32, 3), 60 * i, np.uint8), format="rgb24")
            out.mux(video.encode(frame))
        out.mux(video.encode(None))
    with caplog.at_level("INFO", logger="livequant"), VideoFile(path) as source:
        assert [int(frame[0, 0, 0]) for frame, _ in source] == [0, 60, 120]
    assert "HDR" not in caplog.text


def test_sdr_video_in_bt2020_primaries_is_shown_in_bt709_s(tmp_path, caplog):
    """Greys stay as they are; BT.2020's red, read as it is a dull sRGB red, comes out as saturated as it is."""
    patches = [(0, 0, 0), (0.5, 0.5, 0.5), (1, 1, 1), (0.8, 0.2, 0.2)]
    _bt2020_file(tmp_path / "wide.mkv", 1, patches)  # the BT.709 transfer, as such video has
    with caplog.at_level("INFO", logger="livequant"), VideoFile(tmp_path / "wide.mkv") as source:
        shown = next(iter(source))[0][8, 8::16].astype(int)
    assert "BT.2020 primaries" in caplog.text and "HDR" not in caplog.text
    assert shown[0].max() <= 1 and (abs(shown[1] - 128) <= 1).all() and shown[2].min() >= 254
    assert (abs(shown[3] - (251, 0, 39)) <= 2).all()  # BT.2087's matrix in light; read as it is: (204, 51, 51)


def test_bt2020_to_bt709_keeps_greys_and_takes_primaries_to_the_gamut_s_edge():
    levels = np.arange(256, dtype=np.uint16) * 257
    greys = bt2020_to_bt709(np.repeat(levels[:, None], 3, axis=1)[None])[0]
    assert (np.abs(greys.astype(int) - np.arange(256)[:, None]) <= 1).all()
    primaries = bt2020_to_bt709(np.eye(3, dtype=np.uint16)[None] * 65535)[0]
    assert (primaries[1] == (0, 255, 0)).all()  # BT.2020's green lies outside BT.709: its most saturated green
    assert primaries[0][0] == 255 and primaries[2][2] == 255 and primaries[0][1:].max() <= 40


def test_the_tone_curve_keeps_order_and_ends():
    ramp = np.arange(0, 65536, 64, dtype=np.uint16)
    for transfer in (PQ, HLG):
        levels = to_sdr(np.repeat(ramp[:, None], 3, axis=1)[None], transfer)[0, :, 0].astype(int)
        assert levels[0] == 0 and levels[-1] == 255 and (np.diff(levels) >= 0).all()
    with pytest.raises(ValueError, match="not HDR"):
        to_sdr(ramp[:3].reshape(1, 1, 3), 1)


def test_video_file_reads_every_frame_with_its_time(clip):
    with VideoFile(clip.path) as src:
        assert (src.fps, src.frame_count, src.size, src.has_audio, src.live) == (12.0, 24, (64, 48), True, False)
        frames, times = zip(*src)
    assert len(frames) == clip.frames and src.undecodable == 0
    _check_frames(frames, clip.size)
    np.testing.assert_allclose(times, np.arange(clip.frames) / clip.fps, atol=1e-3)
    assert np.abs(frames[5].astype(int) - clip.expected(5)).mean() < 8  # H.264 is lossy


def test_a_video_file_read_again_says_so(clip):
    """Read once: a second pass (after all of it, or after a first frame peeked at) is an error, not nothing
    (a second `run` over it wrote an output of no frames)."""
    with VideoFile(clip.path) as src:
        assert len(list(src)) == clip.frames
        with pytest.raises(SourceError, match="read already.*open a new one"):
            list(src)
    with VideoFile(clip.path) as src:
        next(iter(src))
        with pytest.raises(SourceError, match="read already"):
            next(iter(src))
    src = VideoFile(clip.path)
    src.close()
    with pytest.raises(SourceError, match="was closed; open a new VideoFile"):  # it gave the first frame
        list(src)


@pytest.mark.parametrize(
    ("start", "duration", "expected"), [(1.0, 0.5, np.arange(12, 18) / 12), (None, 0.25, [0, 1 / 12, 2 / 12])]
)
def test_start_and_duration_select_a_window(clip, start, duration, expected):
    with VideoFile(clip.path, start=start, duration=duration) as src:
        times = [t for _, t in src]
        assert src.seconds_left == pytest.approx(2.0 - (start or 0.0), abs=0.1)  # what is left, whatever duration
    np.testing.assert_allclose(times, expected, atol=1e-3)


def write_slides(path) -> None:
    """Write a 16x16 GIF of three slides of 2 s each with PyAV: red, green, blue (6 s in all)."""
    with av.open(str(path), "w") as out:
        stream = out.add_stream("gif", rate=Fraction(1, 2))
        stream.width, stream.height, stream.pix_fmt = 16, 16, "rgb8"
        for i in range(3):
            rgb = np.zeros((16, 16, 3), np.uint8)
            rgb[..., i] = 255
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            frame.pts = i
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))


@pytest.mark.parametrize(("start", "duration", "expected", "end"), [
    (1.0, None, [(1.0, "red"), (2.0, "green"), (4.0, "blue")], 6.0),
    (1.0, 2.0, [(1.0, "red"), (2.0, "green")], 3.0),
    (5.0, None, [(5.0, "blue")], 6.0),
    (2.0, 1.0, [(2.0, "green")], 3.0),  # a start where a frame starts keeps it as it is
])
def test_a_start_inside_a_frame_shows_that_frame_from_the_start(tmp_path, start, duration, expected, end):
    """The frame showing at the start was dropped: ``--start 1`` on these slides gave 4 s, not 5."""
    write_slides(tmp_path / "slides.gif")
    with VideoFile(tmp_path / "slides.gif", start=start, duration=duration) as src:
        shown = [(t, ("red", "green", "blue")[int(np.argmax(frame[0, 0]))]) for frame, t in src]
    assert shown == expected and all(type(t) is float for t, _ in shown) and src.end_time == end


@pytest.mark.parametrize(("start", "duration", "end"), [(0.0, 1.15, 1.15), (0.3, 0.85, 1.15), (0.35, 0.5, 0.85)])
def test_a_duration_that_ends_inside_a_long_frame_lasts_to_its_end(tmp_path, start, duration, end):
    """The last frame lasted as long as the file's rate guessed (0.1 s): a VFR file with --duration 1.2
    came out 1.0 s long."""
    times = [0.0, 0.3, 0.9, 1.2]
    with av.open(str(tmp_path / "vfr.mkv"), "w") as out:
        stream = out.add_stream("ffv1", rate=10)
        stream.width, stream.height, stream.pix_fmt = 16, 16, "bgr0"
        stream.codec_context.time_base = Fraction(1, 1000)
        for i, t in enumerate(times):
            frame = av.VideoFrame.from_ndarray(np.full((16, 16, 3), 60 * i, np.uint8), format="rgb24")
            frame = frame.reformat(format="bgr0")
            frame.pts, frame.time_base = round(t * 1000), Fraction(1, 1000)
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    with VideoFile(tmp_path / "vfr.mkv", start=start, duration=duration) as src:
        shown = [t for _, t in src]
    assert src.end_time == pytest.approx(end) and shown == pytest.approx([t for t in times if start <= t < end]
                                                                         or [start])


@pytest.mark.parametrize(("start", "expected"), [(None, [(0.0, 0), (0.1, 1), (0.2, 2), (0.25, 3)]),
                                                 (0.15, [(0.15, 1), (0.2, 2), (0.25, 3)])])
def test_gif_frames_of_a_hundredth_of_a_second_show_for_a_tenth_as_browsers_show_them(tmp_path, start, expected):
    """Delays of 1/100 s were read as such (frames a browser shows for 1/10 s flashed past, and a GIF written
    from them dropped them); FFmpeg reads a delay of 0 as 1/10 s itself."""
    from PIL import Image

    frames = [Image.fromarray(np.full((8, 8, 3), 60 * i, np.uint8)) for i in range(4)]
    frames[0].save(tmp_path / "a.gif", save_all=True, append_images=frames[1:], duration=[10, 0, 50, 10], loop=0)
    with VideoFile(tmp_path / "a.gif", start=start) as src:
        shown = [(t, int(frame[0, 0, 0]) // 60) for frame, t in src]
    times, pictures = zip(*expected)
    assert [t for t, _ in shown] == pytest.approx(times) and [i for _, i in shown] == list(pictures)
    assert src.end_time == pytest.approx(0.35)


def test_a_gif_cut_short_inside_its_last_image_counts_that_frame_damaged(tmp_path, rng):
    """FFmpeg shows such an image patched where its data ends (a third of its pixels wrong here), and nothing
    said so; a GIF that only lacks its trailer is whole."""
    from PIL import Image

    frames = [Image.fromarray(rng.integers(0, 256, (32, 32, 3), np.uint8)) for _ in range(3)]
    frames[0].save(tmp_path / "whole.gif", save_all=True, append_images=frames[1:], duration=100, loop=0)
    data = (tmp_path / "whole.gif").read_bytes()
    (tmp_path / "cut.gif").write_bytes(data[: len(data) * 9 // 10])
    (tmp_path / "no-trailer.gif").write_bytes(data[:-1])
    for name, damaged in (("whole.gif", 0), ("cut.gif", 1), ("no-trailer.gif", 0)):
        with VideoFile(tmp_path / name) as src:
            assert sum(1 for _ in src) == 3 and (src.damaged, src.undecodable) == (damaged, 0), name


@pytest.mark.parametrize("audio_seconds", [None, 2.0])
def test_a_file_cut_short_counts_the_frames_its_header_promises(tmp_path, audio_seconds):
    """The first half of a 2 s MKV gave its first second and said nothing; the whole file counts none. With
    sound, the file's length is the sound's too: the video track's own (Matroska's DURATION tag) counts."""
    clip = write_clip(tmp_path / "whole.mkv", size=(64, 48), frames=50, fps=25, audio_seconds=audio_seconds)
    data = clip.path.read_bytes()
    (tmp_path / "half.mkv").write_bytes(data[: len(data) // 2])
    with VideoFile(clip.path) as whole:
        assert sum(1 for _ in whole) == 50 and whole.undecodable == 0
    with VideoFile(tmp_path / "half.mkv") as half:
        shown = sum(1 for _ in half)
    assert 10 < shown < 40 and abs(half.undecodable - (50 - shown)) <= 2


def test_anamorphic_video_is_shown_with_square_pixels(tmp_path):
    """160x240 stored pixels twice as wide as tall show as 320x240 (a player's 4:3); they came out 160x240."""
    path = tmp_path / "wide.mp4"
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 160, 240, "yuv420p"
        stream.codec_context.sample_aspect_ratio = Fraction(2, 1)
        stripes = np.zeros((240, 160, 3), np.uint8)
        stripes[:, 80:] = 255  # the right half white
        for i in range(3):
            frame = av.VideoFrame.from_ndarray(stripes, format="rgb24")
            frame.pts = i
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    with VideoFile(path) as src:
        frames = [frame for frame, _ in src]
    assert src.size == (320, 240) and all(frame.shape == (240, 320, 3) for frame in frames)
    assert frames[0][:, :150].max() < 30 and frames[0][:, 170:].min() > 225


@pytest.mark.parametrize("form, codec, clock", [("mpegts", "libx264", 0), ("mpegts", "libx264", 1000),
                                                 ("mpeg", "mpeg2video", 0)], ids=["ts", "ts at 1000 s", "ps"])
def test_a_start_in_mpeg_ts_and_ps_counts_from_the_file_s_start(tmp_path, form, codec, clock):
    """MPEG-TS and MPEG-PS seek by bytes and land after the start (it began up to a keyframe late, or found
    no frames), and their clocks start anywhere (a start was taken on the clock, so at 1000 s it did nothing)."""
    path = tmp_path / f"grey.{form}"
    with av.open(str(path), "w", format=form) as out:
        stream = out.add_stream(codec, rate=25, options={"g": "50"})
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for i in range(250):  # frame i is grey i
            frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), i, np.uint8), format="rgb24")
            frame.pts = i + 25 * clock
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    for start in (1.0, 3.32, 7.0):
        with VideoFile(path, start=start, duration=1.0) as src:
            frames, times = zip(*src)
        greys = [int(frame.mean()) for frame in frames]
        assert len(frames) == 25 and abs(greys[0] - round(start * 25)) <= 3, (start, greys[:3])
        assert np.all(np.diff(greys) >= 0) and abs(greys[-1] - greys[0] - 24) <= 4  # one second, in order
        assert times[-1] - times[0] == pytest.approx(0.96, abs=0.03)
        assert src.undecodable == 0


def test_a_start_between_two_video_frames_shows_the_earlier_one_from_the_start(clip):
    with VideoFile(clip.path) as src:
        eleventh = [frame for frame, _ in src][11]  # 11/12 s: the frame showing at 0.95 s
    with VideoFile(clip.path, start=0.95, duration=0.5) as src:
        frames, times = zip(*src)
    np.testing.assert_allclose(times, [0.95, *np.arange(12, 18) / 12], atol=1e-3)
    assert np.array_equal(frames[0], eleventh) and src.end_time == pytest.approx(1.45)


def test_a_start_just_before_a_frame_starts_on_that_frame(clip):
    """The frame showing at 0.99 s was timed there and showed for 10 ms: a first frame of 1 ms after
    ``--start 1.0323`` on a 30 fps clip."""
    with VideoFile(clip.path) as src:
        twelfth = [frame for frame, _ in src][12]  # 12/12 s
    with VideoFile(clip.path, start=0.99, duration=0.5) as src:
        frames, times = zip(*src)
    np.testing.assert_allclose(times, [0.99, *np.arange(13, 18) / 12], atol=1e-3)
    assert np.array_equal(frames[0], twelfth) and src.end_time == pytest.approx(1.49)


def test_a_start_in_an_old_x264_444_file_decodes_the_frames_played_from_the_beginning(shared_data):
    """cockatoo.mp4 is x264 build 142, 4:4:4: FFmpeg's decoder needs the build (from the first frame's SEI)
    to decode it; started at a seek without it, every frame came out green."""
    path = shared_data("cockatoo.mp4")
    with VideoFile(path, start=12.0, duration=0.5) as src:
        started = list(src)
    with VideoFile(path) as src:
        played = {round(t, 3): frame for frame, t in src if 12.0 - 1e-6 <= t < 12.5 - 1e-6}
    assert [round(t, 3) for _, t in started] == list(played) and len(played) == 10 and src.damaged == 0
    assert all(np.array_equal(frame, played[round(t, 3)]) for frame, t in started)


def test_variable_frame_rate_timestamps_are_kept(make_clip):
    times = [0.0, 0.1, 0.15, 0.4, 0.45, 1.0]
    clip = make_clip("vfr.mkv", times=times)
    with VideoFile(clip.path) as src:
        np.testing.assert_allclose([t for _, t in src], times, atol=1e-3)


@pytest.mark.parametrize("rotation", [90, -90, 180])
def test_rotation_metadata_is_applied(make_clip, rotation):
    clip = make_clip("rot.mp4", rotation=rotation, frames=2)
    expected = np.rot90(clip.expected(0), rotation // 90)  # the display matrix turns counterclockwise
    with VideoFile(clip.path) as src:
        frame, _ = next(iter(src))
        assert src.size == (expected.shape[1], expected.shape[0])
    assert frame.flags.c_contiguous
    assert np.abs(frame.astype(int) - expected).mean() < 8


def test_broken_packets_are_counted_and_skipped(make_clip):
    path = make_clip("png.mov", codec="png", pix_fmt="rgb24", frames=10).path
    data = bytearray(path.read_bytes())
    signature = b"\x89PNG\r\n\x1a\n"
    fifth = [i for i in range(len(data)) if data.startswith(signature, i)][4]
    data[fifth : fifth + 16] = b"\x00" * 16
    path.write_bytes(data)
    with VideoFile(path) as src:
        frames = list(src)
    assert (len(frames), src.undecodable) == (9, 1)


def test_frames_the_decoder_patches_are_kept_and_counted(make_clip):
    clip = make_clip("clip.mp4", frames=24)
    garble_pictures(clip.path)
    with VideoFile(clip.path) as src:
        frames = list(src)
    assert src.damaged >= 1 and len(frames) + src.undecodable == 24


def test_a_file_that_is_not_a_video_names_file_and_cause(tmp_path):
    bad = tmp_path / "notes.mp4"
    bad.write_text("not a video\n" * 10)
    with pytest.raises(SourceError, match=r"cannot open video '.*notes\.mp4': Invalid data .*; is it a complete video"):
        VideoFile(bad)
    with pytest.raises(SourceError, match=r"cannot open video '.*missing\.mp4': No such file .*; check the path"):
        VideoFile(tmp_path / "missing.mp4")


def test_start_beyond_the_end_says_so(clip):
    with pytest.raises(SourceError, match="no frames from 5 s on"):
        VideoFile(clip.path, start=5.0)


@pytest.mark.parametrize(("option", "value"), [("start", -1.0), ("duration", 0.0)])
def test_bad_window_arguments(clip, option, value):
    with pytest.raises(ValueError, match=option):
        VideoFile(clip.path, **{option: value})


@pytest.mark.parametrize(
    ("name", "frames", "size"), [("realshort.mp4", 36, (320, 240)), ("newtonscradle.gif", 36, (200, 150))]
)
def test_real_footage_decodes_completely(shared_data, name, frames, size):
    with VideoFile(shared_data(name)) as src:
        decoded = list(src)
    assert (len(decoded), src.size, src.undecodable) == (frames, size, 0)
    _check_frames([f for f, _ in decoded], size)


# loop_count


@pytest.mark.parametrize("loop", [-1, 0, 3])
@pytest.mark.parametrize("suffix", [".gif", ".webp", ".apng"])
def test_loop_count_reads_the_loop_the_writers_wrote(tmp_path, make_qframe, loop, suffix):
    """APNG and WebP counts were not read: a looping one played once in the preview, and became a GIF that
    looped forever whatever it said."""
    path = tmp_path / f"out{suffix}"
    with (GifWriter(path, loop=loop) if suffix == ".gif" else AnimationWriter(path, loop=loop)) as sink:
        for i in range(2):
            sink.write(make_qframe(np.full((4, 4), i), time=i / 10))
    assert loop_count(path) == loop


@pytest.mark.parametrize(("suffix", "chunk"), [(".apng", b"acTL"), (".webp", b"ANIM")])
def test_loop_count_of_a_still_or_a_broken_animation_is_none(tmp_path, make_qframe, suffix, chunk):
    path = tmp_path / f"out{suffix}"
    with AnimationWriter(path, loop=2) as sink:
        for i in range(2):
            sink.write(make_qframe(np.full((4, 4), i), time=i / 10))
    data = path.read_bytes()
    assert loop_count(path) == 2
    path.write_bytes(data.replace(chunk, b"xxxx"))  # no animation control before the images: a still
    assert loop_count(path) is None
    path.write_bytes(data[:data.index(chunk) + 8])  # cut inside the chunk
    assert loop_count(path) is None


def _netscape(count: int, name: bytes = b"NETSCAPE2.0") -> bytes:
    """An application extension with a loop count."""
    return b"\x21\xff\x0b" + name + b"\x03\x01" + count.to_bytes(2, "little") + b"\x00"


def _gif(*blocks: bytes, table: bytes = bytes(6), version: bytes = b"GIF89a", after: bytes = b"") -> bytes:
    """A 1x1 GIF: header, screen descriptor, global colour ``table`` (2, 4, 8 ... entries; without one, the image
    has a local table), ``blocks``, one image, ``after`` it, and the trailer."""
    flags = (0x80 | ((len(table) // 3).bit_length() - 2)) if table else 0
    local = b"" if table else bytes(6)
    image = b"\x2c" + struct.pack("<HHHHB", 0, 0, 1, 1, 0 if table else 0x80) + local
    image += b"\x02\x02\x44\x01\x00"  # LZW: clear, index 0, end of data
    return version + struct.pack("<HHBBB", 1, 1, flags, 0, 0) + table + b"".join(blocks) + image + after + b"\x3b"


# What a byte search for NETSCAPE2.0 would take for a loop count of 5: inside a comment, a colour table
FAKE = b"\x0bNETSCAPE2.0\x03\x01\x05\x00"
COMMENT = b"\x21\xfe" + bytes([len(FAKE)]) + FAKE + b"\x00"
CONTROL = b"\x21\xf9\x04\x00\x0a\x00\x00\x00"  # a graphic control extension: 1/10 s


@pytest.mark.parametrize(("data", "expected"), [
    pytest.param(_gif(), -1, id="no extension"),
    pytest.param(_gif(_netscape(0)), 0, id="forever"),
    pytest.param(_gif(_netscape(3)), 3, id="3"),
    pytest.param(_gif(_netscape(65535)), 65535, id="65535"),
    pytest.param(_gif(_netscape(2, b"ANIMEXTS1.0")), 2, id="ANIMEXTS1.0"),
    pytest.param(_gif(COMMENT, CONTROL, _netscape(2)), 2, id="after other extensions"),
    pytest.param(_gif(COMMENT), -1, id="one in a comment"),
    pytest.param(_gif(table=b"\x21\xff" + FAKE + bytes(48 - 2 - len(FAKE))), -1, id="one in the colour table"),
    pytest.param(_gif(b"\x21\xff\x0bNETSCAPE2.0\x05\x02\x00\x10\x00\x00\x03\x01\x04\x00\x00"), 4,
                 id="buffering sub-block first"),
    pytest.param(_gif(after=_netscape(0)), -1, id="after the first image"),
    pytest.param(_gif(version=b"GIF87a"), -1, id="GIF87a"),
    pytest.param(_gif(_netscape(1), table=b""), 1, id="no global table"),
    pytest.param(_gif(_netscape(3))[:30], None, id="cut in the extension"),
    pytest.param(_gif()[:13], None, id="cut after the screen"),
    pytest.param(b"GIF89a", None, id="cut in the screen"),
    pytest.param(b"", None, id="empty"),
    pytest.param(b"\x89PNG\r\n\x1a\n" + bytes(40), None, id="PNG"),
])
def test_loop_count_walks_a_gif_s_blocks_up_to_the_first_image(tmp_path, data, expected):
    (tmp_path / "in.gif").write_bytes(data)
    assert loop_count(tmp_path / "in.gif") == expected
    assert loop_count(str(tmp_path / "in.gif")) == expected


def test_loop_count_is_none_for_what_is_not_an_animation_file(tmp_path, clip):
    for what in (clip.path, tmp_path, tmp_path / "missing.gif", "https://example.com/a.gif", 0):
        assert loop_count(what) is None, what


# Looping


def _four_frames(path, make_qframe):
    """A GIF of 4 frames 0.1 s apart, each a different grey."""
    with GifWriter(path) as sink:
        for i in range(4):
            sink.write(make_qframe(np.full((4, 4), i), time=i / 10))
    return path


@pytest.mark.parametrize("loop, plays", [(-1, 1), (1, 2), (2, 3)])
def test_looping_plays_again_with_times_that_follow_on(tmp_path, make_qframe, loop, plays):
    path = _four_frames(tmp_path / "a.gif", make_qframe)
    with Looping(lambda: VideoFile(path), loop) as source:
        got = list(source)
    assert [int(frame[0, 0, 0]) for frame, _ in got] == [int(f[0, 0, 0]) for f, _ in got[:4]] * plays
    np.testing.assert_allclose([t for _, t in got], np.arange(4 * plays) / 10, atol=1e-3)
    assert source.end_time == pytest.approx(0.4 * plays, abs=1e-3)


def test_looping_forever_stops_when_closed(tmp_path, make_qframe):
    path = _four_frames(tmp_path / "a.gif", make_qframe)
    opened = []

    def opener():
        opened.append(VideoFile(path))
        return opened[-1]

    source = Looping(opener)
    frames = iter(source)
    times = [t for _, t in itertools.islice(frames, 10)]
    np.testing.assert_allclose(times, np.arange(10) / 10, atol=1e-3)
    source.close()
    assert list(frames) == [] and len(opened) == 3  # the play in progress ends, and no other starts


@pytest.mark.parametrize("loop", [-2, 1.5, True, "0"])
def test_looping_refuses_a_loop_that_is_not_one(tmp_path, make_qframe, loop):
    path = _four_frames(tmp_path / "a.gif", make_qframe)
    with pytest.raises(ValueError, match="loop must be"):
        Looping(lambda: VideoFile(path), loop)


# Webcam, driven by a video file since there is no camera here


def test_webcam_thread_delivers_newest_frames_then_reports_the_stall(clip):
    cam = Webcam(str(clip.path), timeout=0.3)
    assert cam.live and cam.size == clip.size
    received = []
    with cam, pytest.raises(SourceError, match=r"camera '.*clip\.mp4' stopped delivering frames"):
        for frame, t in cam:
            received.append((frame, t))
            time.sleep(0.02)  # a slow consumer: the reader keeps only the newest frame
    assert 1 <= len(received) <= clip.frames
    assert len(received) + cam.dropped == clip.frames
    _check_frames([f for f, _ in received], clip.size)
    assert np.all(np.diff([t for _, t in received]) > 0)
    assert not cam._thread.is_alive()


class HungCapture:
    """Stands in for a capture whose ``read`` blocks (a camera that hangs), for a second at a time."""

    def read(self):
        time.sleep(1.0)
        return False, None

    def release(self):
        pass


def test_a_camera_that_hangs_in_read_is_reported_after_the_timeout(clip):
    cam = Webcam(str(clip.path), timeout=0.3)
    cam._cap.release()
    cam._cap = HungCapture()
    with cam:
        start = time.monotonic()
        with pytest.raises(SourceError, match=r"stopped delivering frames \(nothing for 0.3 s\)"):
            next(iter(cam))
        assert 0.3 <= time.monotonic() - start < 1.0  # before the read returns
    assert not cam._thread.is_alive()  # close waited for the read to return


def test_close_stops_the_reader_thread(clip):
    with Webcam(str(clip.path)) as cam:
        next(iter(cam))
    assert not cam._thread.is_alive()


def test_missing_camera_points_to_the_list():
    hint = (r"cannot open camera 7: no such device; list cameras with `livequant preview --list-cameras`, or play "
            r"the built-in test pattern with `livequant preview test`$")
    with pytest.raises(SourceError, match=hint):
        Webcam(7)


@pytest.mark.parametrize("index", [-1, True, 1.5, None])
def test_a_camera_index_that_is_no_index_is_refused(index):
    """OpenCV crashed the process on -1 (no camera here) and raised its own error on True or 1.5."""
    with pytest.raises(ValueError if index == -1 else TypeError, match="camera index"):
        Webcam(index)


# Images


@pytest.mark.parametrize("suffix", ["png", "webp"])
def test_pictures_are_turned_as_their_exif_orientation_says(tmp_path, suffix):
    """PNG and WebP carry EXIF too; read unchanged (to keep alpha), OpenCV ignored it, so `livequant image`
    showed them as stored while `transcode` (FFmpeg) turned them. Every orientation against Pillow's."""
    from PIL import Image, ImageOps

    from livequant.sources import read_image

    picture = np.zeros((20, 40, 3), np.uint8)
    picture[:, :10] = (255, 0, 0)
    picture[:5, 10:] = (0, 0, 255)  # a red left quarter and a blue top strip: every turn and flip differs
    for orientation in range(1, 9):
        image = Image.fromarray(picture)
        exif = image.getexif()
        exif[0x0112] = orientation
        path = tmp_path / f"turned-{orientation}.{suffix}"
        image.save(path, exif=exif, **({"lossless": True} if suffix == "webp" else {}))
        expected = np.asarray(ImageOps.exif_transpose(Image.open(path)).convert("RGB"))
        np.testing.assert_array_equal(read_image(str(path)), expected, err_msg=f"orientation {orientation}")


def test_image_sequence_from_a_glob_in_name_order(tmp_path):
    for i in (2, 0, 1):
        cv2.imwrite(str(tmp_path / f"f{i}.png"), np.full((6, 8, 3), (10 * i, 0, 0), np.uint8))  # BGR on disk
    with Images(str(tmp_path / "f*.png"), fps=5) as src:
        assert (src.frame_count, src.size, src.fps) == (3, (8, 6), 5.0)
        frames, times = zip(*src)
    assert [f[0, 0].tolist() for f in frames] == [[0, 0, 0], [0, 0, 10], [0, 0, 20]]  # RGB in memory
    assert times == (0.0, 0.2, 0.4)


def test_images_repeat_for_ever_when_asked(tmp_path):
    for i in (0, 1):
        cv2.imwrite(str(tmp_path / f"f{i}.png"), np.full((6, 8, 3), (10 * i, 0, 0), np.uint8))
    with Images(str(tmp_path / "f*.png"), fps=5, repeat=True) as src:
        assert src.frame_count is None
        frames, times = zip(*itertools.islice(src, 5))
    assert [int(f[0, 0, 2]) for f in frames] == [0, 10, 0, 10, 0]
    np.testing.assert_allclose(times, [0, 0.2, 0.4, 0.6, 0.8])


def test_alpha_is_flattened_on_white_and_16_bit_is_scaled(tmp_path):
    bgra = np.zeros((4, 4, 4), np.uint8)
    bgra[:2] = (0, 0, 255, 255)  # opaque red
    cv2.imwrite(str(tmp_path / "a.png"), bgra)
    cv2.imwrite(str(tmp_path / "b.png"), np.full((4, 4, 3), 65535, np.uint16))
    (a, _), (b, _) = Images([tmp_path / "a.png", tmp_path / "b.png"])
    assert a[0, 0].tolist() == [255, 0, 0] and a[3, 3].tolist() == [255, 255, 255]
    assert b.dtype == np.uint8 and b[0, 0].tolist() == [255, 255, 255]


def test_real_photograph(shared_data):
    (frame, t), = Images(shared_data("bricks.jpg"))
    assert frame.shape == (512, 512, 3) and t == 0.0


def test_unreadable_images_raise_source_error(tmp_path):
    (tmp_path / "junk.png").write_bytes(b"junk")
    with pytest.raises(SourceError, match=r"cannot read image '.*junk\.png': not an image"):
        Images(tmp_path / "junk.png")
    with pytest.raises(SourceError, match=r"cannot read image '.*nope\.png': no such file"):
        Images(tmp_path / "nope.png")
    with pytest.raises(SourceError, match=r"no images match"):
        Images(str(tmp_path / "*.jpg"))


# ICC profiles (read_image, and so Images)

#: sRGB's primaries adapted to D50, as its ICC profile holds them: the columns are red, green and blue's XYZ.
SRGB_D50 = np.array([[0.4361, 0.3851, 0.1431], [0.2225, 0.7169, 0.0606], [0.0139, 0.0971, 0.7141]])
#: Colours inside both Adobe RGB's and sRGB's gamuts.
TAGGED = np.array([[120, 150, 100], [200, 80, 60], [60, 90, 200], [128, 128, 128]], np.uint8)


def _adobe_rgb_in_srgb(rgb: np.ndarray) -> np.ndarray:
    """Adobe RGB values as sRGB ones, from the colorants and curve of `icc_profile`, worked out here."""
    xyz = (rgb / 255) ** ADOBE_RGB_GAMMA @ np.array(ADOBE_RGB_COLORANTS)
    linear = np.clip(np.linalg.solve(SRGB_D50, xyz.T).T, 0, 1)
    return 255 * np.where(linear <= 0.0031308, 12.92 * linear, 1.055 * linear ** (1 / 2.4) - 0.055)


def _tagged_picture(path, profile: bytes) -> None:
    """Four 8x8 blocks of the `TAGGED` colours, with ``profile`` embedded (Pillow: lossless, JPEG at 4:4:4)."""
    from PIL import Image

    blocks = np.repeat(np.repeat(TAGGED[None], 8, axis=0), 8, axis=1)
    options = {".jpg": {"quality": 100, "subsampling": 0}, ".webp": {"lossless": True}}.get(path.suffix, {})
    Image.fromarray(blocks).save(path, icc_profile=profile, **options)


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".webp", ".tif"])
def test_a_picture_in_adobe_rgb_is_read_as_the_srgb_colours_it_means(tmp_path, suffix):
    """Its values were taken as sRGB: greens and reds came out dull, as a colour-managed viewer does not show
    them (ICC profiles of stills were neither read nor written)."""
    path = tmp_path / f"adobe{suffix}"
    _tagged_picture(path, icc_profile())
    with Images(path) as source:
        (frame, _), = list(source)
    shown = frame[4, 4::8].astype(float)
    np.testing.assert_allclose(shown, _adobe_rgb_in_srgb(TAGGED), atol=2)
    assert np.abs(shown - TAGGED).max() > 10  # far from the values as they are


@pytest.mark.parametrize("name", ["%02d.png", "*.png", "anim.apng"])
def test_tagged_pictures_read_as_a_video_are_converted_as_a_still_is(tmp_path, name):
    """Numbered pictures and APNGs go through FFmpeg, which does not convert: ``transcode 'frames/*.png'``
    showed other colours than ``preview`` of the same pictures."""
    from PIL import Image

    still, folder = tmp_path / "still.png", tmp_path / "frames"
    _tagged_picture(still, icc_profile())
    picture = Image.open(still)
    folder.mkdir()
    if name.endswith(".apng"):
        picture.save(folder / name, save_all=True, append_images=[picture.copy()], icc_profile=icc_profile())
    else:
        for i in (3, 4):  # a sequence not numbered from 0
            picture.save(folder / f"{i:02d}.png", icc_profile=icc_profile())
    with VideoFile(str(folder / name)) as source:
        frames = [frame for frame, _ in source]
    assert len(frames) == 2 and all(np.array_equal(frame, read_image(str(still))) for frame in frames)


@pytest.mark.parametrize("suffix", [".png", ".jpg"])
def test_a_picture_tagged_srgb_is_read_as_it_is(tmp_path, suffix):
    from PIL import ImageCms

    tagged, plain = tmp_path / f"tagged{suffix}", tmp_path / f"plain{suffix}"
    _tagged_picture(tagged, ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes())
    _tagged_picture(plain, b"")
    assert np.array_equal(read_image(str(tagged)), read_image(str(plain)))


def test_a_picture_whose_profile_cannot_be_read_is_taken_as_srgb_with_a_warning(tmp_path, caplog):
    path = tmp_path / "broken.png"
    _tagged_picture(path, icc_profile()[:100])  # cut inside the header
    with caplog.at_level("WARNING", logger="livequant"):
        frame = read_image(str(path))
    assert np.array_equal(frame[4, 4::8], TAGGED)
    assert "embeds an ICC profile, but LittleCMS cannot read it" in caplog.text and "taken as sRGB" in caplog.text


# TestPattern


def test_pattern_moves_and_is_deterministic():
    frames = [f for f, _ in TestPattern((160, 120), fps=10, frames=5)]
    again = [f for f, _ in TestPattern((160, 120), fps=10, frames=5)]
    assert len(frames) == 5
    _check_frames(frames, (160, 120))
    assert all(np.array_equal(a, b) for a, b in zip(frames, again))
    assert not np.array_equal(frames[0], frames[4])
    assert len(np.unique(frames[0].reshape(-1, 3), axis=0)) > 500  # gradients, not flat fills


def test_pattern_at_1080p_moves_over_a_still_background():
    frames = [f for f, _ in TestPattern((1920, 1080), frames=3)]
    _check_frames(frames, (1920, 1080))
    for before, after in zip(frames, frames[1:]):
        moved = (before != after).any(axis=2).mean()
        assert 0.001 < moved < 0.1, moved  # the shapes and the counter move (0.9% here), the rest stays


def test_live_pattern_paces_to_its_frame_rate():
    pattern = TestPattern((32, 24), fps=50, frames=6, live=True)
    start = time.monotonic()
    times = [t for _, t in pattern]
    assert pattern.live and time.monotonic() - start >= 0.09
    np.testing.assert_allclose(times, np.arange(6) / 50)


def test_pattern_rejects_bad_arguments():
    with pytest.raises(ValueError, match="size"):
        TestPattern((8, 8))
    with pytest.raises(ValueError, match="fps"):
        TestPattern(fps=0)


# Numbered pictures (FFmpeg's image2, through VideoFile)


def _numbered_pictures(folder, first=1000, n=4):
    """Pictures ``frame_1000.png`` ... in ``folder`` (numbers past FFmpeg's own search from 0), each its own
    grey level; returns their RGB frames."""
    frames = [np.full((6, 8, 3), 40 * i, np.uint8) for i in range(n)]
    for i, frame in enumerate(frames):
        cv2.imwrite(str(folder / f"frame_{first + i:04d}.png"), frame)
    return frames


@pytest.mark.parametrize("pattern", ["frame_%04d.png", "frame_*.png"])
@pytest.mark.parametrize(("fps", "times"), [(8, [0, 0.125, 0.25, 0.375]), (None, [0, 0.04, 0.08, 0.12])])
def test_pictures_play_at_the_rate_given_numbered_from_their_first_number(tmp_path, pattern, fps, times):
    pictures = _numbered_pictures(tmp_path)
    with VideoFile(str(tmp_path / pattern), fps=fps) as src:
        frames, read_times = zip(*src)
    assert [f[0, 0, 0] for f in frames] == [p[0, 0, 0] for p in pictures]
    np.testing.assert_allclose(read_times, times, atol=1e-6)  # FFmpeg's rate is 25 unless told


@pytest.mark.parametrize("pattern", ["frame_%04d.png", "frame_*.png"])
@pytest.mark.parametrize("start", [0.5, 3.0])
def test_a_start_past_numbered_pictures_says_how_long_they_last(tmp_path, pattern, start):
    """FFmpeg refuses to seek past their end: that said "cannot seek ...: Invalid argument"."""
    _numbered_pictures(tmp_path)
    with pytest.raises(SourceError, match=rf"^cannot read video '.*': no frames from {start:g} s on \(it lasts "
                                          r"0\.50 s\); start earlier"):
        VideoFile(str(tmp_path / pattern), start=start, fps=8)


def test_fps_is_for_numbered_pictures_only(clip):
    with pytest.raises(ValueError, match=r"^fps sets the rate of pictures \('frames/%04d\.png', 'frames/\*\.png'\), "
                                         r"not of '.*', which keeps its own times; retime it with livequant\.adapters"):
        VideoFile(clip.path, fps=10)


def test_a_folder_of_pictures_is_named_as_their_pattern(tmp_path):
    _numbered_pictures(tmp_path)
    (tmp_path / "notes.txt").write_text("not a picture")
    pattern = str(tmp_path / "frame_%04d.png")
    with pytest.raises(SourceError, match=f"a directory; give a file, or its pictures as '{re.escape(pattern)}'$"):
        VideoFile(str(tmp_path))
    with open_source(pattern) as src:  # the pattern named opens
        assert isinstance(src, VideoFile) and len(list(src)) == 4


# open_source


def test_open_source_dispatches_on_the_spec(clip, tmp_path):
    cv2.imwrite(str(tmp_path / "still.png"), np.zeros((4, 4, 3), np.uint8))
    assert isinstance(open_source("test", frames=1), TestPattern)
    assert isinstance(open_source(tmp_path / "still.png"), Images)
    with open_source(str(tmp_path / "*.png"), fps=5) as pictures:  # pictures play as a video does
        assert isinstance(pictures, VideoFile) and pictures.fps == 5
    with open_source(clip.path) as src:
        assert isinstance(src, VideoFile)
    for spec in (7, "7"):
        with pytest.raises(SourceError, match="camera 7"):
            open_source(spec)


def test_the_sound_demuxed_with_the_video_ends_with_it(tmp_path):
    """With ``carry_audio`` the packets up to the video's end are read, whatever the interleaving, and then no
    further into a long file."""
    clip = write_clip(tmp_path / "long.mkv", fps=10, frames=100, audio_seconds=10.0)
    with VideoFile(clip.path, start=2.0, duration=1.0, carry_audio=True) as video:
        times = [t for _, t in video]
        assert video.audio.finished
        sound = [float(p.pts * p.time_base) for p in video.audio.packets()]
    assert times[0] == 2.0 and times[-1] == pytest.approx(2.9)
    assert sound[0] <= 2.0 and sound[-1] >= 3.0  # covers the video
    assert sound[-1] < 4.0 and sound == sorted(sound)  # the decoder reads a few frames ahead, not to 10 s


@pytest.mark.parametrize("pages", [1, 2, 5])
def test_a_tiff_s_pages_are_counted_as_pillow_counts_them(tmp_path, pages):
    from PIL import Image

    from livequant.sources.images import not_a_file

    frames = [Image.fromarray(np.full((8, 12, 3), 40 * i, np.uint8)) for i in range(pages)]
    frames[0].save(tmp_path / "scan.tif", save_all=True, append_images=frames[1:])
    with Image.open(tmp_path / "scan.tif") as tiff:
        assert tiff.n_frames == pages
    said = not_a_file("image", str(tmp_path / "scan.tif"))
    assert said is None if pages == 1 else f"it is a TIFF of {pages} pages" in said


@pytest.mark.parametrize("order", [b"II", b"MM"])
@pytest.mark.parametrize("last_points_to", [0, 8, 14, 20, 1 << 30])
def test_a_tiff_s_chain_of_directories_that_loops_or_leaves_the_file_ends_the_count(tmp_path, order, last_points_to):
    """Three empty directories at 8, 14 and 20 (a count of 0 entries, then the next one's offset), the last
    pointing nowhere (0), back to the first or the second, to itself, or past the end: counted once each."""
    from livequant.sources.images import not_a_file

    fmt = "<" if order == b"II" else ">"
    head = order + struct.pack(fmt + "HI", 42, 8)
    directories = b"".join(struct.pack(fmt + "HI", 0, following) for following in (14, 20, last_points_to))
    (tmp_path / "chain.tif").write_bytes(head + directories)
    assert "it is a TIFF of 3 pages" in not_a_file("image", str(tmp_path / "chain.tif"))
